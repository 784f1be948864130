//! `udp_queues`: bytes queued in UDP sockets' send and receive buffers, from
//! `/proc/net/udp` and `/proc/net/udp6`.

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;
use crate::read;

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let mut missing = 0;
    for (file, ip) in [("net/udp", "v4"), ("net/udp6", "v6")] {
        let path = node.opts.proc(file);
        let what = if ip == "v4" { "udp" } else { "udp6" };
        let text = match read::string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                missing += 1;
                continue;
            }
            Err(e) => {
                return Err(CollectError::at(
                    &path,
                    format_args!("couldn't get {what} queued bytes: {e}"),
                ));
            }
        };
        let (tx, rx) = sum_queues(&text)
            .map_err(|e| CollectError::at(&path, format_args!("couldn't get {what} queued bytes: {e}")))?;
        for (queue, v) in [("tx", tx), ("rx", rx)] {
            out.gauge(
                "node_udp_queues",
                "Number of allocated memory in the kernel for UDP datagrams in bytes.",
                &[("queue", queue), ("ip", ip)],
                v,
            );
        }
    }
    if missing == 2 {
        return Err(CollectError::NoData);
    }
    Ok(())
}

/// Sums `tx_queue:rx_queue` over the socket lines, validating each line as procfs does.
fn sum_queues(text: &str) -> std::result::Result<(f64, f64), String> {
    let (mut tx, mut rx) = (0u64, 0u64);
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            return Err(format!("cannot parse line: {line:?}"));
        }
        let pair = |s: &str| -> std::result::Result<(String, String), String> {
            let parts: Vec<&str> = s.split(':').collect();
            if parts.len() != 2 {
                return Err(format!("cannot parse {s:?}"));
            }
            Ok((parts[0].to_owned(), parts[1].to_owned()))
        };
        let (sl, _) = pair(f[0])?;
        read::parse_int_base0(&sl).ok_or_else(|| format!("cannot parse sl {sl:?}"))?;
        for addr in [f[1], f[2]] {
            let (ip, port) = pair(addr)?;
            if !(ip.len() == 8 || ip.len() == 32) || !ip.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("cannot parse address {addr:?}"));
            }
            u64::from_str_radix(&port, 16).map_err(|e| format!("cannot parse port {port:?}: {e}"))?;
        }
        u64::from_str_radix(f[3], 16).map_err(|e| format!("cannot parse st {:?}: {e}", f[3]))?;
        let (t, r) = pair(f[4])?;
        tx += u64::from_str_radix(&t, 16).map_err(|e| format!("cannot parse tx_queue {t:?}: {e}"))?;
        rx += u64::from_str_radix(&r, 16).map_err(|e| format!("cannot parse rx_queue {r:?}: {e}"))?;
        for v in [f[7], f[9]] {
            read::parse_int_base0(v).ok_or_else(|| format!("cannot parse {v:?}"))?;
        }
    }
    Ok((tx as f64, rx as f64))
}
