//! `netdev`: per-interface traffic counters. By default (node_exporter's netlink mode)
//! from the kernel's 64-bit link statistics, which sysfs exposes per device; with
//! `netlink: false`, from `/proc/net/dev`.

use std::collections::BTreeMap;

use crate::Node;
use crate::error::{CollectError, IoContext, Result};
use crate::out::Out;
use crate::read;

/// Metric keys in netlink mode and the sysfs statistics summed into each, as
/// node_exporter folds `rtnl_link_stats64` into /proc/net/dev's columns.
const NETLINK: [(&str, &[&str]); 17] = [
    ("receive_packets", &["rx_packets"]),
    ("transmit_packets", &["tx_packets"]),
    ("receive_bytes", &["rx_bytes"]),
    ("transmit_bytes", &["tx_bytes"]),
    ("receive_errs", &["rx_errors"]),
    ("transmit_errs", &["tx_errors"]),
    ("receive_drop", &["rx_dropped", "rx_missed_errors"]),
    ("transmit_drop", &["tx_dropped"]),
    ("receive_multicast", &["multicast"]),
    ("transmit_colls", &["collisions"]),
    ("receive_fifo", &["rx_fifo_errors"]),
    (
        "receive_frame",
        &["rx_frame_errors", "rx_length_errors", "rx_over_errors", "rx_crc_errors"],
    ),
    ("transmit_fifo", &["tx_fifo_errors"]),
    (
        "transmit_carrier",
        &[
            "tx_carrier_errors",
            "tx_aborted_errors",
            "tx_heartbeat_errors",
            "tx_window_errors",
        ],
    ),
    ("receive_compressed", &["rx_compressed"]),
    ("transmit_compressed", &["tx_compressed"]),
    ("receive_nohandler", &["rx_nohandler"]),
];

/// The columns of `/proc/net/dev`, in order.
const PROC_COLUMNS: [&str; 16] = [
    "receive_bytes",
    "receive_packets",
    "receive_errs",
    "receive_drop",
    "receive_fifo",
    "receive_frame",
    "receive_compressed",
    "receive_multicast",
    "transmit_bytes",
    "transmit_packets",
    "transmit_errs",
    "transmit_drop",
    "transmit_fifo",
    "transmit_colls",
    "transmit_carrier",
    "transmit_compressed",
];

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let devices = if node.opts.netdev_netlink {
        from_sysfs(node)?
    } else {
        from_proc(node)?
    };
    for (device, stats) in &devices {
        if !node.opts.netdev_devices.keeps(device) {
            continue;
        }
        for (key, v) in stats {
            out.counter(
                &format!("node_network_{key}_total"),
                &format!("Network device statistic {key}."),
                &[("device", device)],
                *v,
            );
        }
    }
    Ok(())
}

type Devices = BTreeMap<String, Vec<(&'static str, f64)>>;

fn from_sysfs(node: &Node) -> Result<Devices> {
    let class = node.opts.sys("class/net");
    let mut devices = Devices::new();
    for name in read::dir_names(&class).at(&class)? {
        let stats = class.join(&name).join("statistics");
        if !stats.is_dir() {
            continue;
        }
        let values = NETLINK
            .iter()
            .map(|(key, files)| {
                let sum: u64 = files.iter().filter_map(|f| read::opt_uint(&stats.join(f))).sum();
                (*key, sum as f64)
            })
            .collect();
        devices.insert(name, values);
    }
    Ok(devices)
}

fn from_proc(node: &Node) -> Result<Devices> {
    let path = node.opts.proc("net/dev");
    let text = read::string(&path).at(&path)?;
    let mut devices = Devices::new();
    for line in text.lines().skip(2) {
        let (name, rest) = line
            .rsplit_once(':')
            .ok_or_else(|| CollectError::at(&path, "invalid net/dev line, missing colon"))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(CollectError::at(&path, "invalid net/dev line, empty interface name"));
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() < 16 {
            return Err(CollectError::at(&path, format_args!("invalid net/dev line for {name}")));
        }
        let mut values = Vec::with_capacity(16);
        for (key, f) in PROC_COLUMNS.iter().zip(&fields) {
            let v: u64 = f
                .parse()
                .map_err(|e| CollectError::at(&path, format_args!("invalid value {f:?} of {name}: {e}")))?;
            values.push((*key, v as f64));
        }
        devices.insert(name.to_owned(), values);
    }
    Ok(devices)
}
