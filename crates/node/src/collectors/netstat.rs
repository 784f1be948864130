//! `netstat`: protocol statistics of `/proc/net/netstat`, `/proc/net/snmp` and
//! `/proc/net/snmp6` that match the field filter.

use std::collections::BTreeMap;
use std::path::Path;

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;
use crate::read;

/// protocol → field → value text.
type Stats = BTreeMap<String, BTreeMap<String, String>>;

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let mut stats = pairs_file(&node.opts.proc("net/netstat"), "couldn't get netstats")?;
    stats.extend(pairs_file(&node.opts.proc("net/snmp"), "couldn't get SNMP stats")?);
    let snmp6 = node.opts.proc("net/snmp6");
    match read::string(&snmp6) {
        Ok(text) => stats.extend(parse_snmp6(&text)),
        // IPv6 disabled.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(CollectError::at(&snmp6, format_args!("couldn't get SNMP6 stats: {e}"))),
    }
    let mut values = Vec::new();
    for (proto, fields) in &stats {
        for (field, value) in fields {
            let v: f64 = value
                .parse()
                .map_err(|e| CollectError::Failed(format!("invalid value {value} in netstats: {e}")))?;
            let key = format!("{proto}_{field}");
            if node.opts.netstat_fields.is_match(&key) {
                values.push((key, format!("Statistic {proto}{field}."), v));
            }
        }
    }
    for (key, help, v) in values {
        out.untyped(&format!("node_netstat_{key}"), &help, &[], v);
    }
    Ok(())
}

/// `/proc/net/netstat` and `/proc/net/snmp`: a header line (`Proto: Field Field`) and
/// a value line (`Proto: 1 2`) per protocol, split on single spaces.
fn pairs_file(path: &Path, what: &str) -> Result<Stats> {
    let text = read::string(path).map_err(|e| CollectError::at(path, format_args!("{what}: {e}")))?;
    parse_pairs(&text).map_err(|e| CollectError::at(path, format_args!("{what}: {e}")))
}

fn parse_pairs(text: &str) -> std::result::Result<Stats, String> {
    let mut stats = Stats::new();
    let mut lines = text.lines();
    while let Some(header) = lines.next() {
        let values = lines.next().unwrap_or("");
        let names: Vec<&str> = header.split(' ').collect();
        let vals: Vec<&str> = values.split(' ').collect();
        let proto = names[0];
        if proto.is_empty() {
            return Err("empty header line".into());
        }
        let proto = &proto[..proto.len() - proto.chars().last().map_or(0, char::len_utf8)];
        if names.len() != vals.len() {
            return Err(format!("mismatch field count mismatch: {proto}"));
        }
        let fields = names[1..]
            .iter()
            .zip(&vals[1..])
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        stats.insert(proto.to_owned(), fields);
    }
    Ok(stats)
}

/// `/proc/net/snmp6`: `Ip6InOctets  123` lines; the protocol runs to the first `6`.
fn parse_snmp6(text: &str) -> Stats {
    let mut stats = Stats::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 2 {
            continue;
        }
        let Some(i) = f[0].find('6') else { continue };
        let (proto, field) = f[0].split_at(i + 1);
        stats
            .entry(proto.to_owned())
            .or_default()
            .insert(field.to_owned(), f[1].to_owned());
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_snmp6() {
        let s = parse_pairs("Tcp: RtoMin MaxConn\nTcp: 200 -1\nUdp: InDatagrams\nUdp: 5\n").unwrap();
        assert_eq!(s["Tcp"]["MaxConn"], "-1");
        assert_eq!(s["Udp"]["InDatagrams"], "5");
        assert!(parse_pairs("Tcp: A B\nTcp: 1\n").is_err());
        let s6 = parse_snmp6("Ip6InOctets                     \t123\nUdpLite6InErrors 4\nbogus\n");
        assert_eq!(s6["Ip6"]["InOctets"], "123");
        assert_eq!(s6["UdpLite6"]["InErrors"], "4");
    }
}
