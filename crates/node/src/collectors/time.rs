//! `time`: the system clock, the local time zone's offset, and the clock sources of
//! `/sys/devices/system/clocksource`.

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;
use crate::read;

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    out.gauge(
        "node_time_seconds",
        "System time in seconds since epoch (1970).",
        &[],
        now.as_nanos() as f64 / 1e9,
    );
    // The local zone as the process sees it: `TZ`, else /etc/localtime.
    let zone = jiff::tz::TimeZone::system();
    let info = zone.to_offset_info(jiff::Timestamp::now());
    out.gauge(
        "node_time_zone_offset_seconds",
        "System time zone offset in seconds.",
        &[("time_zone", info.abbreviation())],
        f64::from(info.offset().seconds()),
    );
    // Every clock source is read before any is written.
    let mut sources = Vec::new();
    let base = node.opts.sys("devices/system/clocksource");
    for (device, (_, dir)) in read::numbered(&base, "clocksource").into_iter().enumerate() {
        let file = |f: &str| {
            let p = dir.join(f);
            read::sys_file(&p)
                .map_err(|e| CollectError::Failed(format!("couldn't get clocksources: {}: {e}", p.display())))
        };
        sources.push((
            device.to_string(),
            file("available_clocksource")?,
            file("current_clocksource")?,
        ));
    }
    for (device, available, current) in &sources {
        for source in available.split_whitespace() {
            out.gauge(
                "node_time_clocksource_available_info",
                "Available clocksources read from '/sys/devices/system/clocksource'.",
                &[("device", device), ("clocksource", source)],
                1.0,
            );
        }
        out.gauge(
            "node_time_clocksource_current_info",
            "Current clocksource read from '/sys/devices/system/clocksource'.",
            &[("device", device), ("clocksource", current)],
            1.0,
        );
    }
    Ok(())
}
