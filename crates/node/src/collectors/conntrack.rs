//! `conntrack`: netfilter connection tracking table size and statistics.

use std::path::Path;

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;
use crate::read;

/// (column of `/proc/net/stat/nf_conntrack`, metric, help), summed over CPUs.
const STATS: [(usize, &str, &str); 8] = [
    (
        2,
        "node_nf_conntrack_stat_found",
        "Number of searched entries which were successful.",
    ),
    (
        4,
        "node_nf_conntrack_stat_invalid",
        "Number of packets seen which can not be tracked.",
    ),
    (
        5,
        "node_nf_conntrack_stat_ignore",
        "Number of packets seen which are already connected to a conntrack entry.",
    ),
    (
        8,
        "node_nf_conntrack_stat_insert",
        "Number of entries inserted into the list.",
    ),
    (
        9,
        "node_nf_conntrack_stat_insert_failed",
        "Number of entries for which list insertion was attempted but failed.",
    ),
    (
        10,
        "node_nf_conntrack_stat_drop",
        "Number of packets dropped due to conntrack failure.",
    ),
    (
        11,
        "node_nf_conntrack_stat_early_drop",
        "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached.",
    ),
    (
        16,
        "node_nf_conntrack_stat_search_restart",
        "Number of conntrack table lookups which had to be restarted due to hashtable resizes.",
    ),
];

/// A missing file means the module is not loaded (no data); anything else fails.
fn failure(path: &Path, e: impl std::fmt::Display, missing: bool) -> CollectError {
    if missing {
        CollectError::NoData
    } else {
        CollectError::at(path, format_args!("failed to retrieve conntrack stats: {e}"))
    }
}

fn number(path: &Path) -> Result<f64> {
    let s = read::trimmed(path).map_err(|e| failure(path, &e, e.kind() == std::io::ErrorKind::NotFound))?;
    s.parse::<u64>()
        .map(|v| v as f64)
        .map_err(|e| failure(path, format_args!("{e}: {s:?}"), false))
}

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    out.gauge(
        "node_nf_conntrack_entries",
        "Number of currently allocated flow entries for connection tracking.",
        &[],
        number(&node.opts.proc("sys/net/netfilter/nf_conntrack_count"))?,
    );
    out.gauge(
        "node_nf_conntrack_entries_limit",
        "Maximum size of connection tracking table.",
        &[],
        number(&node.opts.proc("sys/net/netfilter/nf_conntrack_max"))?,
    );
    let path = node.opts.proc("net/stat/nf_conntrack");
    let text = read::string(&path).map_err(|e| failure(&path, &e, e.kind() == std::io::ErrorKind::NotFound))?;
    let mut sums = [0.0; 8];
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 17 {
            return Err(failure(&path, "invalid conntrackstat entry, missing fields", false));
        }
        let hex = |i: usize| {
            u64::from_str_radix(f[i], 16)
                .map(|v| v as f64)
                .map_err(|e| failure(&path, format_args!("{e}: {:?}", f[i]), false))
        };
        hex(0)?;
        for (sum, (col, _, _)) in sums.iter_mut().zip(STATS) {
            *sum += hex(col)?;
        }
    }
    for (sum, (_, name, help)) in sums.iter().zip(STATS) {
        out.gauge(name, help, &[], *sum);
    }
    Ok(())
}
