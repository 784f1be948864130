//! `fibrechannel`: Fibre Channel host adapters of `/sys/class/fc_host`.

use std::path::Path;

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;
use crate::read;

/// (statistics file, metric, help).
const COUNTERS: [(&str, &str, &str); 14] = [
    ("dumped_frames", "dumped_frames_total", "Number of dumped frames"),
    ("error_frames", "error_frames_total", "Number of errors in frames"),
    (
        "invalid_crc_count",
        "invalid_crc_total",
        "Invalid Cyclic Redundancy Check count",
    ),
    ("rx_frames", "rx_frames_total", "Number of frames received"),
    ("rx_words", "rx_words_total", "Number of words received by host port"),
    (
        "tx_frames",
        "tx_frames_total",
        "Number of frames transmitted by host port",
    ),
    ("tx_words", "tx_words_total", "Number of words transmitted by host port"),
    (
        "seconds_since_last_reset",
        "seconds_since_last_reset_total",
        "Number of seconds since last host port reset",
    ),
    (
        "invalid_tx_word_count",
        "invalid_tx_words_total",
        "Number of invalid words transmitted by host port",
    ),
    (
        "link_failure_count",
        "link_failure_total",
        "Number of times the host port link has failed",
    ),
    (
        "loss_of_sync_count",
        "loss_of_sync_total",
        "Number of failures on either bit or transmission word boundaries",
    ),
    (
        "loss_of_signal_count",
        "loss_of_signal_total",
        "Number of times signal has been lost",
    ),
    (
        "nos_count",
        "nos_total",
        "Number Not_Operational Primitive Sequence received by host port",
    ),
    (
        "fcp_packet_aborts",
        "fcp_packet_aborts_total",
        "Number of aborted packets",
    ),
];

/// Attributes every host must have, in the info series' label order (`node_name` is
/// required but not exposed).
const ATTRS: [&str; 11] = [
    "speed",
    "port_state",
    "port_type",
    "port_id",
    "port_name",
    "fabric_name",
    "symbolic_name",
    "supported_classes",
    "supported_speeds",
    "dev_loss_tmo",
    "node_name",
];

struct Host {
    name: String,
    attrs: Vec<String>,
    counters: Vec<u64>,
}

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let class = node.opts.sys("class/fc_host");
    let names = match read::dir_names(&class) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(CollectError::NoData),
        Err(e) => return Err(CollectError::at(&class, e)),
    };
    let mut hosts = Vec::new();
    for name in names {
        hosts.push(host(&class.join(&name), name)?);
    }
    for h in &hosts {
        let mut labels: Vec<(&str, &str)> = vec![("fc_host", &h.name)];
        labels.extend(ATTRS[..10].iter().copied().zip(h.attrs.iter().map(String::as_str)));
        out.gauge(
            "node_fibrechannel_info",
            "Non-numeric data from /sys/class/fc_host/<host>, value is always 1.",
            &labels,
            1.0,
        );
        for ((_, metric, help), v) in COUNTERS.iter().zip(&h.counters) {
            // All ones is the driver's "not supported".
            if *v != u64::MAX {
                out.counter(
                    &format!("node_fibrechannel_{metric}"),
                    help,
                    &[("fc_host", &h.name)],
                    *v as f64,
                );
            }
        }
    }
    Ok(())
}

fn host(dir: &Path, name: String) -> Result<Host> {
    let mut attrs = Vec::new();
    for a in ATTRS {
        let p = dir.join(a);
        let mut v = read::sys_file(&p).map_err(|e| {
            CollectError::at(
                &p,
                format_args!("error obtaining FibreChannel class info: failed to read file: {e}"),
            )
        })?;
        // `0x...` identifiers lose their prefix.
        if matches!(a, "port_id" | "port_name" | "fabric_name" | "node_name") && v.len() > 2 {
            v = v[2..].to_owned();
        }
        attrs.push(v);
    }
    let stats = dir.join("statistics");
    let entries = match std::fs::read_dir(&stats) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(CollectError::NoData),
        Err(e) => return Err(CollectError::at(&stats, e)),
    };
    let mut values = std::collections::BTreeMap::new();
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        if file == "reset_statistics" || !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        match read::sys_file(&e.path()) {
            Ok(v) => {
                values.insert(file, v);
            }
            Err(err)
                if err.kind() == std::io::ErrorKind::NotFound
                    || matches!(err.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL)) => {}
            Err(err) => return Err(CollectError::at(&e.path(), err)),
        }
    }
    let mut counters = Vec::new();
    for (file, _, _) in COUNTERS {
        let v = match values.get(file) {
            // An absent counter reads as 0 and is exposed.
            None => 0,
            Some(v) => read::parse_int_base0(v)
                .map(|n| n as u64)
                .or_else(|| v.strip_prefix("0x").and_then(|h| u64::from_str_radix(h, 16).ok()))
                .or_else(|| v.parse::<u64>().ok())
                .ok_or_else(|| CollectError::at(&stats.join(file), format_args!("invalid value {v:?}")))?,
        };
        counters.push(v);
    }
    Ok(Host { name, attrs, counters })
}
