//! `infiniband`: InfiniBand HCAs and their port counters from `/sys/class/infiniband`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::Node;
use crate::error::{CollectError, IoContext, Result};
use crate::out::Out;
use crate::read;

/// (file, metric, help, scale) of `counters/`.
const COUNTERS: [(&str, &str, &str, u64); 22] = [
    (
        "excessive_buffer_overrun_errors",
        "excessive_buffer_overrun_errors_total",
        "Number of times that OverrunErrors consecutive flow control update periods occurred, each having at least one overrun error.",
        1,
    ),
    (
        "link_downed",
        "link_downed_total",
        "Number of times the link failed to recover from an error state and went down",
        1,
    ),
    (
        "link_error_recovery",
        "link_error_recovery_total",
        "Number of times the link successfully recovered from an error state",
        1,
    ),
    (
        "local_link_integrity_errors",
        "local_link_integrity_errors_total",
        "Number of times that the count of local physical errors exceeded the threshold specified by LocalPhyErrors.",
        1,
    ),
    (
        "multicast_rcv_packets",
        "multicast_packets_received_total",
        "Number of multicast packets received (including errors)",
        1,
    ),
    (
        "multicast_xmit_packets",
        "multicast_packets_transmitted_total",
        "Number of multicast packets transmitted (including errors)",
        1,
    ),
    (
        "port_rcv_constraint_errors",
        "port_constraint_errors_received_total",
        "Number of packets received on the switch physical port that are discarded",
        1,
    ),
    (
        "port_xmit_constraint_errors",
        "port_constraint_errors_transmitted_total",
        "Number of packets not transmitted from the switch physical port",
        1,
    ),
    (
        "port_rcv_data",
        "port_data_received_bytes_total",
        "Number of data octets received on all links",
        4,
    ),
    (
        "port_xmit_data",
        "port_data_transmitted_bytes_total",
        "Number of data octets transmitted on all links",
        4,
    ),
    (
        "port_rcv_discards",
        "port_discards_received_total",
        "Number of inbound packets discarded by the port because the port is down or congested",
        1,
    ),
    (
        "port_xmit_discards",
        "port_discards_transmitted_total",
        "Number of outbound packets discarded by the port because the port is down or congested",
        1,
    ),
    (
        "port_rcv_errors",
        "port_errors_received_total",
        "Number of packets containing an error that were received on this port",
        1,
    ),
    (
        "port_rcv_packets",
        "port_packets_received_total",
        "Number of packets received on all VLs by this port (including errors)",
        1,
    ),
    (
        "port_xmit_packets",
        "port_packets_transmitted_total",
        "Number of packets transmitted on all VLs from this port (including errors)",
        1,
    ),
    (
        "port_xmit_wait",
        "port_transmit_wait_total",
        "Number of ticks during which the port had data to transmit but no data was sent during the entire tick",
        1,
    ),
    (
        "unicast_rcv_packets",
        "unicast_packets_received_total",
        "Number of unicast packets received (including errors)",
        1,
    ),
    (
        "unicast_xmit_packets",
        "unicast_packets_transmitted_total",
        "Number of unicast packets transmitted (including errors)",
        1,
    ),
    (
        "port_rcv_remote_physical_errors",
        "port_receive_remote_physical_errors_total",
        "Number of packets marked with the EBP (End of Bad Packet) delimiter received on the port.",
        1,
    ),
    (
        "port_rcv_switch_relay_errors",
        "port_receive_switch_relay_errors_total",
        "Number of packets that could not be forwarded by the switch.",
        1,
    ),
    (
        "symbol_error",
        "symbol_error_total",
        "Number of minor link errors detected on one or more physical lanes.",
        1,
    ),
    (
        "VL15_dropped",
        "vl15_dropped_total",
        "Number of incoming VL15 packets dropped due to resource limitations.",
        1,
    ),
];

/// (file, metric, help, scale) of `counters_ext/`.
const LEGACY: [(&str, &str, &str, u64); 8] = [
    (
        "port_multicast_rcv_packets",
        "legacy_multicast_packets_received_total",
        "Number of multicast packets received",
        1,
    ),
    (
        "port_multicast_xmit_packets",
        "legacy_multicast_packets_transmitted_total",
        "Number of multicast packets transmitted",
        1,
    ),
    (
        "port_rcv_data_64",
        "legacy_data_received_bytes_total",
        "Number of data octets received on all links",
        4,
    ),
    (
        "port_rcv_packets_64",
        "legacy_packets_received_total",
        "Number of data packets received on all links",
        1,
    ),
    (
        "port_unicast_rcv_packets",
        "legacy_unicast_packets_received_total",
        "Number of unicast packets received",
        1,
    ),
    (
        "port_unicast_xmit_packets",
        "legacy_unicast_packets_transmitted_total",
        "Number of unicast packets transmitted",
        1,
    ),
    (
        "port_xmit_data_64",
        "legacy_data_transmitted_bytes_total",
        "Number of data octets transmitted on all links",
        4,
    ),
    (
        "port_xmit_packets_64",
        "legacy_packets_transmitted_total",
        // node_exporter's text says "received" here too.
        "Number of data packets received on all links",
        1,
    ),
];

struct Port {
    number: u64,
    state: u64,
    phys_state: u64,
    rate: u64,
    counters: Vec<(&'static str, &'static str, f64)>,
}

struct Device {
    name: String,
    board_id: String,
    fw_ver: String,
    hca_type: String,
    ports: Vec<Port>,
}

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let class = node.opts.sys("class/infiniband");
    let names = read::dir_names(&class).no_data_if_missing(&class)?;
    let mut devices = Vec::new();
    for name in names {
        devices.push(device(&class.join(&name), name)?);
    }
    for d in &devices {
        out.gauge(
            "node_infiniband_info",
            "Non-numeric data from /sys/class/infiniband/<device>, value is always 1.",
            &[
                ("device", &d.name),
                ("board_id", &d.board_id),
                ("firmware_version", &d.fw_ver),
                ("hca_type", &d.hca_type),
            ],
            1.0,
        );
        for p in &d.ports {
            let port = p.number.to_string();
            let labels = [("device", d.name.as_str()), ("port", port.as_str())];
            out.gauge(
                "node_infiniband_state_id",
                "State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, 4: active, 5: act defer)",
                &labels,
                p.state as f64,
            );
            out.gauge(
                "node_infiniband_physical_state_id",
                "Physical state of the InfiniBand port (0: no change, 1: sleep, 2: polling, 3: disable, 4: shift, 5: link up, 6: link error recover, 7: phytest)",
                &labels,
                p.phys_state as f64,
            );
            out.gauge(
                "node_infiniband_rate_bytes_per_second",
                "Maximum signal transfer rate",
                &labels,
                p.rate as f64,
            );
            for (name, help, v) in &p.counters {
                out.counter(&format!("node_infiniband_{name}"), help, &labels, *v);
            }
        }
    }
    Ok(())
}

fn device(dir: &Path, name: String) -> Result<Device> {
    let attr = |f: &str| read::sys_file(&dir.join(f)).no_data_if_missing(&dir.join(f));
    let board_id = attr("board_id")?;
    let fw_ver = attr("fw_ver")?;
    let hca_type = match read::sys_file(&dir.join("hca_type")) {
        Ok(v) => v,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(CollectError::at(&dir.join("hca_type"), e)),
    };
    let ports_dir = dir.join("ports");
    let mut ports = Vec::new();
    for p in read::dir_names(&ports_dir).no_data_if_missing(&ports_dir)? {
        let number: u64 = p
            .parse()
            .map_err(|_| CollectError::at(&ports_dir, format_args!("failed to convert {p} into uint")))?;
        ports.push(port(&ports_dir.join(&p), number)?);
    }
    ports.sort_by_key(|p| p.number);
    Ok(Device {
        name,
        board_id,
        fw_ver,
        hca_type,
        ports,
    })
}

fn port(dir: &Path, number: u64) -> Result<Port> {
    let state_id = |f: &str| -> Result<u64> {
        let p = dir.join(f);
        let s = read::string(&p).no_data_if_missing(&p)?;
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 2 {
            return Err(CollectError::at(
                dir,
                format_args!("could not parse state file: failed to split {s:?}"),
            ));
        }
        parts[0]
            .trim()
            .parse::<u32>()
            .map(u64::from)
            .map_err(|e| CollectError::at(&p, e))
    };
    let (state, phys_state) = (state_id("state")?, state_id("phys_state")?);
    let rate_file = dir.join("rate");
    let rate_text = read::string(&rate_file).no_data_if_missing(&rate_file)?;
    let Some((gbps, _)) = rate_text.split_once(' ') else {
        return Err(CollectError::at(
            &rate_file,
            format_args!("failed to split {rate_text:?}"),
        ));
    };
    // procfs parses the rate as a 32-bit float.
    let gbps: f32 = gbps.trim().parse().map_err(|e| CollectError::at(&rate_file, e))?;
    let rate = (f64::from(gbps) * 125_000_000.0) as u64;
    let mut counters = Vec::new();
    read_counters(&dir.join("counters"), &COUNTERS, false, &mut counters)?;
    read_counters(&dir.join("counters_ext"), &LEGACY, true, &mut counters)?;
    Ok(Port {
        number,
        state,
        phys_state,
        rate,
        counters,
    })
}

/// Reads a counters directory; a missing one is no data, unless it is `optional`.
fn read_counters(
    dir: &Path,
    table: &'static [(&'static str, &'static str, &'static str, u64)],
    optional: bool,
    into: &mut Vec<(&'static str, &'static str, f64)>,
) -> Result {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(_) if optional => return Ok(()),
        Err(e) => return Err(e).no_data_if_missing(dir),
    };
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for e in entries.flatten() {
        if !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let file = e.file_name().to_string_lossy().into_owned();
        match read::sys_file(&e.path()) {
            Ok(v) => {
                values.insert(file, v);
            }
            Err(err) if read::absent(&err) || matches!(err.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL)) => {}
            Err(err) => return Err(CollectError::at(&e.path(), err)),
        }
    }
    for (file, metric, help, scale) in table {
        let Some(v) = values.get(*file) else { continue };
        match read::parse_int_base0(v)
            .and_then(|n| u64::try_from(n).ok())
            .or_else(|| v.parse::<u64>().ok())
        {
            Some(n) => into.push((metric, help, n.wrapping_mul(*scale) as f64)),
            // A port without a performance management agent.
            None if v.contains("N/A (no PMA)") => {}
            None => {
                return Err(CollectError::at(&dir.join(file), format_args!("invalid value {v:?}")));
            }
        }
    }
    Ok(())
}
