//! `sockstat`: socket counts and memory per protocol from `/proc/net/sockstat` and
//! `/proc/net/sockstat6`.

use std::path::Path;

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;
use crate::read;

/// Keys of a protocol line that become series, `inuse` always (0 when absent).
const STATES: [&str; 5] = ["orphan", "tw", "alloc", "mem", "memory"];

/// A protocol line's (key, value) pairs.
type Line = (String, Vec<(String, i64)>);

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as f64;
    for (file, family) in [("net/sockstat", "IPv4"), ("net/sockstat6", "IPv6")] {
        let path = node.opts.proc(file);
        let lines = match read::string(&path) {
            Ok(text) => parse(&text).map_err(|e| fail(&path, family, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(fail(&path, family, e)),
        };
        for (proto, kv) in lines {
            let get = |k: &str| kv.iter().rev().find(|(n, _)| n == k).map(|(_, v)| *v as f64);
            if proto == "sockets" {
                if family == "IPv4" {
                    out.gauge(
                        "node_sockstat_sockets_used",
                        "Number of IPv4 sockets in use.",
                        &[],
                        get("used").unwrap_or(0.0),
                    );
                }
                continue;
            }
            let mut emit = |state: &str, v: f64| {
                out.gauge(
                    &format!("node_sockstat_{proto}_{state}"),
                    &format!("Number of {proto} sockets in state {state}."),
                    &[],
                    v,
                );
            };
            emit("inuse", get("inuse").unwrap_or(0.0));
            for state in STATES {
                if let Some(v) = get(state) {
                    emit(state, v);
                }
            }
            if let Some(pages) = get("mem") {
                emit("mem_bytes", pages * page);
            }
        }
    }
    Ok(())
}

fn fail(path: &Path, family: &str, e: impl std::fmt::Display) -> CollectError {
    CollectError::at(path, format_args!("failed to get {family} sockstat data: {e}"))
}

fn parse(text: &str) -> std::result::Result<Vec<Line>, String> {
    let mut lines = Vec::new();
    for line in text.lines() {
        let items: Vec<&str> = line.split(' ').collect();
        if items.len() < 3 {
            return Err(format!("malformed sockstat line: {line:?}"));
        }
        if !(items.len() - 1).is_multiple_of(2) {
            return Err(format!("odd number of fields in key/value pairs: {line:?}"));
        }
        let proto = items[0].strip_suffix(':').unwrap_or(items[0]).to_owned();
        let mut kv = Vec::new();
        for pair in items[1..].chunks(2) {
            let v = read::parse_int_base0(pair[1]).ok_or_else(|| format!("invalid value {:?}", pair[1]))?;
            kv.push((pair[0].to_owned(), v));
        }
        lines.push((proto, kv));
    }
    Ok(lines)
}
