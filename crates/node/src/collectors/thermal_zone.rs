//! `thermal_zone`: temperatures of `/sys/class/thermal/thermal_zone*` and the states of
//! its cooling devices.

use std::path::Path;

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;
use crate::read;

struct Zone {
    name: String,
    typ: String,
    temp: i64,
}

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let class = node.opts.sys("class/thermal");
    // Every zone is read before anything is written: one bad zone fails them all.
    let mut zones = Vec::new();
    for (name, dir) in read::numbered(&class, "thermal_zone") {
        match zone(&dir) {
            Ok(z) => zones.push(Zone { name, ..z }),
            // A sensor that is switched off answers ENODATA: the zone is skipped.
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => {}
            Err(e) => return Err(CollectError::at(&dir, e)),
        }
    }
    for z in &zones {
        out.gauge(
            "node_thermal_zone_temp",
            "Zone temperature in Celsius",
            &[("zone", &z.name), ("type", &z.typ)],
            z.temp as f64 / 1000.0,
        );
    }
    for (name, dir) in read::numbered(&class, "cooling_device") {
        let typ = read::sys_file(&dir.join("type")).map_err(|e| CollectError::at(&dir.join("type"), e))?;
        let state = |file: &str| -> Result<i64> {
            let p = dir.join(file);
            let s = read::sys_file(&p).map_err(|e| CollectError::at(&p, e))?;
            s.parse().map_err(|e| CollectError::at(&p, format_args!("{e}: {s:?}")))
        };
        let (max, cur) = (state("max_state")?, state("cur_state")?);
        let labels = [("name", name.as_str()), ("type", typ.as_str())];
        out.gauge(
            "node_cooling_device_cur_state",
            "Current throttle state of the cooling device",
            &labels,
            cur as f64,
        );
        out.gauge(
            "node_cooling_device_max_state",
            "Maximum throttle state of the cooling device",
            &labels,
            max as f64,
        );
    }
    Ok(())
}

fn invalid(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

fn zone(dir: &Path) -> std::io::Result<Zone> {
    let typ = read::sys_file(&dir.join("type"))?;
    read::sys_file(&dir.join("policy"))?;
    let temp = read::trimmed(&dir.join("temp"))?.parse::<i64>().map_err(invalid)?;
    if let Err(e) = read::sys_file(&dir.join("mode"))
        && !read::absent(&e)
    {
        return Err(e);
    }
    match read::trimmed(&dir.join("passive")) {
        Ok(p) => {
            p.parse::<u64>().map_err(invalid)?;
        }
        Err(e) if read::absent(&e) => {}
        Err(e) => return Err(e),
    }
    Ok(Zone {
        name: String::new(),
        typ,
        temp,
    })
}
