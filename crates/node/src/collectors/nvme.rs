//! `nvme`: NVMe controllers of `/sys/class/nvme` as info series.

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;
use crate::read;

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let class = node.opts.sys("class/nvme");
    let missing = |e: std::io::Error, p: &std::path::Path| {
        if e.kind() == std::io::ErrorKind::NotFound {
            CollectError::NoData
        } else {
            CollectError::at(p, e)
        }
    };
    let names = read::dir_names(&class).map_err(|e| missing(e, &class))?;
    let mut devices = Vec::new();
    for name in names {
        let dir = class.join(&name);
        let mut attrs = Vec::new();
        for f in ["firmware_rev", "model", "serial", "state"] {
            let p = dir.join(f);
            attrs.push(read::sys_file(&p).map_err(|e| missing(e, &p))?);
        }
        devices.push((name, attrs));
    }
    for (device, a) in &devices {
        out.gauge(
            "node_nvme_info",
            "Non-numeric data from /sys/class/nvme/<device>, value is always 1.",
            &[
                ("device", device),
                ("firmware_revision", &a[0]),
                ("model", &a[1]),
                ("serial", &a[2]),
                ("state", &a[3]),
            ],
            1.0,
        );
    }
    Ok(())
}
