//! `ipvs`: IPVS (kernel load balancer) totals and per-backend connection counts.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::Node;
use crate::error::{CollectError, IoContext, Result};
use crate::out::Out;
use crate::read;

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let stats_path = node.opts.proc("net/ip_vs_stats");
    let stats = read::string(&stats_path).no_data_if_missing(&stats_path)?;
    let parts: Vec<&str> = stats.splitn(4, '\n').collect();
    if parts.len() != 4 {
        return Err(CollectError::at(&stats_path, "ip_vs_stats corrupt: too short"));
    }
    let fields: Vec<&str> = parts[2].split_whitespace().collect();
    if fields.len() != 5 {
        return Err(CollectError::at(
            &stats_path,
            "ip_vs_stats corrupt: unexpected number of fields",
        ));
    }
    let mut totals = [0.0; 5];
    for (t, f) in totals.iter_mut().zip(&fields) {
        *t = u64::from_str_radix(f, 16).map_err(|e| CollectError::at(&stats_path, format_args!("{e}: {f:?}")))? as f64;
    }
    for ((name, help), v) in [
        ("node_ipvs_connections_total", "The total number of connections made."),
        (
            "node_ipvs_incoming_packets_total",
            "The total number of incoming packets.",
        ),
        (
            "node_ipvs_outgoing_packets_total",
            "The total number of outgoing packets.",
        ),
        ("node_ipvs_incoming_bytes_total", "The total amount of incoming data."),
        ("node_ipvs_outgoing_bytes_total", "The total amount of outgoing data."),
    ]
    .into_iter()
    .zip(totals)
    {
        out.counter(name, help, &[], v);
    }

    let path = node.opts.proc("net/ip_vs");
    let fail = |e: String| CollectError::at(&path, format_args!("could not get backend status: {e}"));
    let text = read::string(&path).map_err(|e| fail(e.to_string()))?;
    let wanted = &node.opts.ipvs_backend_labels;
    // Backends grouped by the configured labels, their counts summed.
    let mut groups: BTreeMap<Vec<String>, [f64; 3]> = BTreeMap::new();
    let mut service: Option<[String; 4]> = None; // proto, local address, local port, mark
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() || f[0] == "IP" || f[0] == "Prot" || f.get(1) == Some(&"RemoteAddress:Port") {
            continue;
        }
        match f[0] {
            "TCP" | "UDP" if f.len() >= 2 => {
                let (ip, port) = ip_port(f[1]).map_err(fail)?;
                service = Some([f[0].to_owned(), ip, port.to_string(), String::new()]);
            }
            "FWM" if f.len() >= 2 => {
                service = Some(["FWM".to_owned(), String::new(), "0".to_owned(), f[1].to_owned()]);
            }
            "->" if f.len() >= 6 => {
                let (ip, port) = ip_port(f[1]).map_err(fail)?;
                let num = |s: &str| {
                    s.parse::<u64>()
                        .map(|v| v as f64)
                        .map_err(|e| fail(format!("{e}: {s:?}")))
                };
                let (weight, active, inactive) = (num(f[3])?, num(f[4])?, num(f[5])?);
                let [proto, laddr, lport, mark] = service.clone().unwrap_or_default();
                let value_of = |label: &str| match label {
                    "local_address" => laddr.clone(),
                    "local_port" => lport.clone(),
                    "remote_address" => ip.clone(),
                    "remote_port" => port.to_string(),
                    "proto" => proto.clone(),
                    _ => mark.clone(),
                };
                let key: Vec<String> = wanted.iter().map(|l| value_of(l)).collect();
                let g = groups.entry(key).or_default();
                g[0] += active;
                g[1] += inactive;
                g[2] += weight;
            }
            _ => {}
        }
    }
    for (values, [active, inactive, weight]) in groups {
        let labels: Vec<(&str, &str)> = wanted
            .iter()
            .map(String::as_str)
            .zip(values.iter().map(String::as_str))
            .collect();
        out.gauge(
            "node_ipvs_backend_connections_active",
            "The current active connections by local and remote address.",
            &labels,
            active,
        );
        out.gauge(
            "node_ipvs_backend_connections_inactive",
            "The current inactive connections by local and remote address.",
            &labels,
            inactive,
        );
        out.gauge(
            "node_ipvs_backend_weight",
            "The current backend weight by local and remote address.",
            &labels,
            weight,
        );
    }
    Ok(())
}

/// `0A140064:0050` (IPv4) or `[2001:0db8:...]:0050` (IPv6), hex port.
fn ip_port(s: &str) -> std::result::Result<(String, u16), String> {
    let bad = || format!("unexpected IP:Port: {s}");
    let ip: IpAddr = match s.len() {
        13 => {
            let n = u32::from_str_radix(&s[..8], 16).map_err(|_| bad())?;
            IpAddr::V4(Ipv4Addr::from(n))
        }
        46 => {
            let v6: Ipv6Addr = s[1..40].parse().map_err(|_| bad())?;
            // Go prints IPv4-mapped addresses as dotted quads.
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return Err(bad()),
    };
    let port = u16::from_str_radix(&s[s.len() - 4..], 16).map_err(|_| bad())?;
    Ok((ip.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(ip_port("0A140064:0050").unwrap(), ("10.20.0.100".into(), 80));
        assert_eq!(
            ip_port("[2001:0db8:0000:0000:0000:0000:0a14:0a0b]:01BB").unwrap(),
            ("2001:db8::a14:a0b".into(), 443)
        );
        assert!(ip_port("0A14:0050").is_err());
    }
}
