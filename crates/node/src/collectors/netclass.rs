//! `netclass`: interface properties from `/sys/class/net/<device>/` (operational state,
//! carrier, MTU, speed, ...).

use std::collections::BTreeMap;

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;
use crate::read;

/// (sysfs attribute, metric suffix, counter?) for the numeric properties.
const NUMBERS: [(&str, &str, bool); 16] = [
    ("addr_assign_type", "address_assign_type", false),
    ("carrier", "carrier", false),
    ("carrier_changes", "carrier_changes_total", true),
    ("carrier_up_count", "carrier_up_changes_total", true),
    ("carrier_down_count", "carrier_down_changes_total", true),
    ("dev_id", "device_id", false),
    ("dormant", "dormant", false),
    ("flags", "flags", false),
    ("ifindex", "iface_id", false),
    ("iflink", "iface_link", false),
    ("link_mode", "iface_link_mode", false),
    ("mtu", "mtu_bytes", false),
    ("name_assign_type", "name_assign_type", false),
    ("netdev_group", "net_dev_group", false),
    ("tx_queue_len", "transmit_queue_length", false),
    ("type", "protocol_type", false),
];

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let class = node.opts.sys("class/net");
    let entries = match std::fs::read_dir(&class) {
        Ok(e) => e,
        Err(e) if read::absent(&e) => return Err(CollectError::NoData),
        Err(e) => return Err(CollectError::at(&class, e)),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| !e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // Every device is read before anything is written: one unreadable device directory
    // means no data at all, as in node_exporter.
    let mut devices = Vec::new();
    for name in names {
        if node.opts.netclass_ignored.is_match(&name) {
            continue;
        }
        let dir = class.join(&name);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if read::absent(&e) => return Err(CollectError::NoData),
            Err(e) => return Err(CollectError::at(&dir, e)),
        };
        let mut attrs: BTreeMap<String, String> = BTreeMap::new();
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let file = entry.file_name().to_string_lossy().into_owned();
            match read::sys_file(&entry.path()) {
                Ok(v) => {
                    attrs.insert(file, v);
                }
                Err(e) if read::absent(&e) || matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL)) => {}
                Err(e) => {
                    return Err(CollectError::at(
                        &entry.path(),
                        format_args!("failed to read file: {e}"),
                    ));
                }
            }
        }
        devices.push((name, attrs));
    }
    for (device, attrs) in &devices {
        let text = |k: &str| attrs.get(k).map_or("", String::as_str);
        // A value that does not parse counts as 0, as procfs' parser leaves it.
        let number = |k: &str| attrs.get(k).map(|v| read::parse_int_base0(v).unwrap_or(0));
        let labels = [("device", device.as_str())];
        out.gauge(
            "node_network_up",
            "Value is 1 if operstate is 'up', 0 otherwise.",
            &labels,
            f64::from(u8::from(text("operstate") == "up")),
        );
        out.gauge(
            "node_network_info",
            "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
            &[
                ("device", device),
                ("address", text("address")),
                ("broadcast", text("broadcast")),
                ("duplex", text("duplex")),
                ("operstate", text("operstate")),
                ("ifalias", text("ifalias")),
            ],
            1.0,
        );
        for (attr, suffix, counter) in NUMBERS {
            let Some(v) = number(attr) else { continue };
            let (name, help) = (
                format!("node_network_{suffix}"),
                format!("Network device property: {suffix}"),
            );
            if counter {
                out.counter(&name, &help, &labels, v as f64);
            } else {
                out.gauge(&name, &help, &labels, v as f64);
            }
        }
        if let Some(mbits) = number("speed")
            && !(node.opts.netclass_ignore_invalid_speed && mbits < 0)
        {
            out.gauge(
                "node_network_speed_bytes",
                "Network device property: speed_bytes",
                &labels,
                (mbits.wrapping_mul(1_000_000) / 8) as f64,
            );
        }
    }
    Ok(())
}
