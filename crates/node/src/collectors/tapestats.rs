//! `tapestats`: SCSI tape drive statistics of `/sys/class/scsi_tape/st*/stats`.

use std::collections::BTreeMap;

use crate::Node;
use crate::error::{CollectError, IoContext, Result};
use crate::out::Out;
use crate::read;

/// (stats file, metric, counter?, help, scale).
const STATS: [(&str, &str, bool, &str, f64); 10] = [
    (
        "in_flight",
        "io_now",
        false,
        "The number of I/Os currently outstanding to this device.",
        1.0,
    ),
    (
        "io_ns",
        "io_time_seconds_total",
        true,
        "The amount of time spent waiting for all I/O to complete (including read and write). This includes tape movement commands such as seeking between file or set marks and implicit tape movement such as when rewind on close tape devices are used.",
        0.000000001,
    ),
    (
        "other_cnt",
        "io_others_total",
        true,
        "The number of I/Os issued to the tape drive other than read or write commands. The time taken to complete these commands uses the following calculation io_time_seconds_total-read_time_seconds_total-write_time_seconds_total",
        1.0,
    ),
    (
        "read_byte_cnt",
        "read_bytes_total",
        true,
        "The number of bytes read from the tape drive.",
        1.0,
    ),
    (
        "read_cnt",
        "reads_completed_total",
        true,
        "The number of read requests issued to the tape drive.",
        1.0,
    ),
    (
        "read_ns",
        "read_time_seconds_total",
        true,
        "The amount of time spent waiting for read requests to complete.",
        0.000000001,
    ),
    (
        "resid_cnt",
        "residual_total",
        true,
        "The number of times during a read or write we found the residual amount to be non-zero. This should mean that a program is issuing a read larger thean the block size on tape. For write not all data made it to tape.",
        1.0,
    ),
    (
        "write_byte_cnt",
        "written_bytes_total",
        true,
        "The number of bytes written to the tape drive.",
        1.0,
    ),
    (
        "write_cnt",
        "writes_completed_total",
        true,
        "The number of write requests issued to the tape drive.",
        1.0,
    ),
    (
        "write_ns",
        "write_time_seconds_total",
        true,
        "The amount of time spent waiting for write requests to complete.",
        0.000000001,
    ),
];

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let class = node.opts.sys("class/scsi_tape");
    let names = read::dir_names(&class).no_data_if_missing(&class)?;
    let mut tapes = Vec::new();
    for name in names {
        // `st0` only: `nst0` (no rewind) and `st0a`/`st0l`/`st0m` (modes) are the same drive.
        let is_drive = name
            .strip_prefix("st")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !is_drive {
            continue;
        }
        let stats = class.join(&name).join("stats");
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        for f in read::dir_names(&stats).no_data_if_missing(&stats)? {
            let p = stats.join(&f);
            values.insert(f, read::sys_file(&p).map_err(|e| CollectError::at(&p, e))?);
        }
        let mut row = Vec::new();
        for (file, _, _, _, _) in STATS {
            let v = match values.get(file) {
                None => 0,
                Some(v) => read::parse_int_base0(v)
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| CollectError::at(&stats.join(file), format_args!("invalid value {v:?}")))?,
            };
            row.push(v);
        }
        tapes.push((name, row));
    }
    for (device, row) in &tapes {
        if node.opts.tapestats_ignored.is_match(device) {
            continue;
        }
        for ((_, metric, counter, help, scale), v) in STATS.iter().zip(row) {
            let name = format!("node_tape_{metric}");
            let v = *v as f64 * scale;
            if *counter {
                out.counter(&name, help, &[("device", device)], v);
            } else {
                out.gauge(&name, help, &[("device", device)], v);
            }
        }
    }
    Ok(())
}
