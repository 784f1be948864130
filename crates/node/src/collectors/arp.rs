//! `arp`: ARP table entries per device from `/proc/net/arp`.

use std::collections::BTreeMap;

use crate::Node;
use crate::error::{CollectError, IoContext, Result};
use crate::out::Out;
use crate::read;

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let path = node.opts.proc("net/arp");
    let text = read::string(&path).at(&path)?;
    let mut entries: BTreeMap<&str, f64> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 {
            return Err(CollectError::at(&path, "unexpected ARP table format"));
        }
        if f[0] == "IP" {
            continue;
        }
        *entries.entry(f[f.len() - 1]).or_default() += 1.0;
    }
    for (device, n) in entries {
        if node.opts.arp_devices.keeps(device) {
            out.gauge("node_arp_entries", "ARP entries by device", &[("device", device)], n);
        }
    }
    Ok(())
}
