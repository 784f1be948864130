//! `diskstats`: block device I/O counters from `/proc/diskstats`, with device,
//! file system and device-mapper details from udev's database.

use std::collections::HashMap;

use crate::Node;
use crate::error::{CollectError, IoContext, Result};
use crate::out::Out;
use crate::read;

/// (metric, counter?, help, scale) for the stats after major, minor and name, in order.
/// Times are milliseconds scaled by multiplication, as node_exporter computes them.
const STATS: [(&str, bool, &str, f64); 17] = [
    (
        "node_disk_reads_completed_total",
        true,
        "The total number of reads completed successfully.",
        1.0,
    ),
    (
        "node_disk_reads_merged_total",
        true,
        "The total number of reads merged.",
        1.0,
    ),
    (
        "node_disk_read_bytes_total",
        true,
        "The total number of bytes read successfully.",
        512.0,
    ),
    (
        "node_disk_read_time_seconds_total",
        true,
        "The total number of seconds spent by all reads.",
        0.001,
    ),
    (
        "node_disk_writes_completed_total",
        true,
        "The total number of writes completed successfully.",
        1.0,
    ),
    (
        "node_disk_writes_merged_total",
        true,
        "The number of writes merged.",
        1.0,
    ),
    (
        "node_disk_written_bytes_total",
        true,
        "The total number of bytes written successfully.",
        512.0,
    ),
    (
        "node_disk_write_time_seconds_total",
        true,
        "This is the total number of seconds spent by all writes.",
        0.001,
    ),
    (
        "node_disk_io_now",
        false,
        "The number of I/Os currently in progress.",
        1.0,
    ),
    (
        "node_disk_io_time_seconds_total",
        true,
        "Total seconds spent doing I/Os.",
        0.001,
    ),
    (
        "node_disk_io_time_weighted_seconds_total",
        true,
        "The weighted # of seconds spent doing I/Os.",
        0.001,
    ),
    (
        "node_disk_discards_completed_total",
        true,
        "The total number of discards completed successfully.",
        1.0,
    ),
    (
        "node_disk_discards_merged_total",
        true,
        "The total number of discards merged.",
        1.0,
    ),
    (
        "node_disk_discarded_sectors_total",
        true,
        "The total number of sectors discarded successfully.",
        1.0,
    ),
    (
        "node_disk_discard_time_seconds_total",
        true,
        "This is the total number of seconds spent by all discards.",
        0.001,
    ),
    (
        "node_disk_flush_requests_total",
        true,
        "The total number of flush requests completed successfully",
        1.0,
    ),
    (
        "node_disk_flush_requests_time_seconds_total",
        true,
        "This is the total number of seconds spent by all flush requests.",
        0.001,
    ),
];

struct Disk<'a> {
    major: &'a str,
    minor: &'a str,
    name: &'a str,
    stats: Vec<u64>,
}

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let path = node.opts.proc("diskstats");
    let text = read::string(&path).at(&path)?;
    let mut disks = Vec::new();
    for line in text.lines() {
        if let Some(d) =
            parse_line(line).map_err(|e| CollectError::at(&path, format_args!("couldn't get diskstats: {e}")))?
        {
            disks.push(d);
        }
    }
    for d in disks {
        if !node.opts.disk_devices.keeps(d.name) {
            continue;
        }
        let udev = udev_properties(node, d.major, d.minor);
        let prop = |k: &str| udev.get(k).map_or("", String::as_str);
        let device = [("device", d.name)];
        out.gauge(
            "node_disk_info",
            "Info of /sys/block/<block_device>.",
            &[
                ("device", d.name),
                ("major", d.major),
                ("minor", d.minor),
                ("path", prop("ID_PATH")),
                ("wwn", prop("ID_WWN")),
                ("model", prop("ID_MODEL")),
                ("serial", prop("ID_SERIAL_SHORT")),
                ("revision", prop("ID_REVISION")),
            ],
            1.0,
        );
        for ((name, counter, help, scale), v) in STATS.iter().zip(&d.stats) {
            let v = *v as f64 * scale;
            if *counter {
                out.counter(name, help, &device, v);
            } else {
                out.gauge(name, help, &device, v);
            }
        }
        if !prop("ID_FS_TYPE").is_empty() {
            out.gauge(
                "node_disk_filesystem_info",
                "Info about disk filesystem.",
                &[
                    ("device", d.name),
                    ("type", prop("ID_FS_TYPE")),
                    ("usage", prop("ID_FS_USAGE")),
                    ("uuid", prop("ID_FS_UUID")),
                    ("version", prop("ID_FS_VERSION")),
                ],
                1.0,
            );
        }
        if !prop("DM_NAME").is_empty() {
            out.gauge(
                "node_disk_device_mapper_info",
                "Info about disk device mapper.",
                &[
                    ("device", d.name),
                    ("name", prop("DM_NAME")),
                    ("uuid", prop("DM_UUID")),
                    ("vg_name", prop("DM_VG_NAME")),
                    ("lv_name", prop("DM_LV_NAME")),
                    ("lv_layer", prop("DM_LV_LAYER")),
                ],
                1.0,
            );
        }
        if !prop("ID_ATA").is_empty() {
            for (key, name, help) in [
                (
                    "ID_ATA_WRITE_CACHE",
                    "node_disk_ata_write_cache",
                    "ATA disk has a write cache.",
                ),
                (
                    "ID_ATA_WRITE_CACHE_ENABLED",
                    "node_disk_ata_write_cache_enabled",
                    "ATA disk has its write cache enabled.",
                ),
                (
                    "ID_ATA_ROTATION_RATE_RPM",
                    "node_disk_ata_rotation_rate_rpm",
                    "ATA disk rotation rate in RPMs (0 for SSDs).",
                ),
            ] {
                if let Some(v) = udev.get(key).and_then(|v| v.parse::<f64>().ok()) {
                    out.gauge(name, help, &device, v);
                }
            }
        }
    }
    Ok(())
}

/// A line as `fmt.Sscanf("%d %d %s %d ...")` reads it: up to 17 decimal stats; a
/// non-number fails the whole file; lines with fewer than 11 stats are skipped.
fn parse_line(line: &str) -> std::result::Result<Option<Disk<'_>>, String> {
    let mut f = line.split_whitespace();
    let (Some(major), Some(minor), Some(name)) = (f.next(), f.next(), f.next()) else {
        return Ok(None);
    };
    for n in [major, minor] {
        n.parse::<u32>().map_err(|_| "expected integer".to_owned())?;
    }
    let mut stats = Vec::with_capacity(17);
    for v in f.take(17) {
        stats.push(v.parse::<u64>().map_err(|_| "expected integer".to_owned())?);
    }
    if stats.len() < 11 {
        return Ok(None);
    }
    Ok(Some(Disk {
        major,
        minor,
        name,
        stats,
    }))
}

/// `E:KEY=value` lines of udev's `b<major>:<minor>` file; empty if there is none.
fn udev_properties(node: &Node, major: &str, minor: &str) -> HashMap<String, String> {
    let Ok(text) = read::string(&node.opts.udev_data.join(format!("b{major}:{minor}"))) else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|l| l.strip_prefix("E:")?.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}
