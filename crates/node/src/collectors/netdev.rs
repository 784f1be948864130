//! `netdev`: per-interface traffic counters, from `/proc/net/dev`. node_exporter's
//! default (netlink) mode reads the kernel's 64-bit link statistics and folds them into
//! /proc/net/dev's columns, which the kernel prints from the same statistics folded the
//! same way, plus `receive_nohandler`, which only netlink and sysfs carry: so netlink
//! mode here is /proc/net/dev plus each device's `statistics/rx_nohandler` (one file
//! per device rather than the two dozen of sysfs).

use std::collections::BTreeMap;

use crate::Node;
use crate::error::{CollectError, IoContext, Result};
use crate::out::Out;
use crate::read;

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
    let mut devices = from_proc(node)?;
    if node.opts.netdev_netlink {
        let class = node.opts.sys("class/net");
        for (device, stats) in &mut devices {
            let nohandler = read::opt_uint(&class.join(device).join("statistics/rx_nohandler")).unwrap_or(0);
            stats.push(("receive_nohandler", nohandler as f64));
        }
    }
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
