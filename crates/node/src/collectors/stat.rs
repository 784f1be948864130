//! `stat`: kernel and system statistics from `/proc/stat`.

use crate::Node;
use crate::error::{CollectError, IoContext, Result};
use crate::out::Out;
use crate::read;

/// The softirq vectors in `/proc/stat`'s `softirq` line, in order.
const SOFTIRQ_VECTORS: [&str; 10] = [
    "hi",
    "timer",
    "net_tx",
    "net_rx",
    "block",
    "block_iopoll",
    "tasklet",
    "sched",
    "hrtimer",
    "rcu",
];

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let path = node.opts.proc("stat");
    let text = read::string(&path).at(&path)?;
    let mut v = [0.0; 6];
    let mut softirq: Option<Vec<f64>> = None;
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(key), Some(first)) = (f.next(), f.next()) else {
            continue;
        };
        let slot = match key {
            "intr" => 0,
            "ctxt" => 1,
            "processes" => 2,
            "btime" => 3,
            "procs_running" => 4,
            "procs_blocked" => 5,
            "softirq" => {
                // The total, then one count per vector.
                softirq = Some(f.filter_map(|x| x.parse::<u64>().ok()).map(|x| x as f64).collect());
                continue;
            }
            _ => continue,
        };
        v[slot] = first
            .parse::<u64>()
            .map_err(|e| CollectError::at(&path, format_args!("couldn't parse {first:?} ({key}): {e}")))?
            as f64;
    }
    out.counter("node_intr_total", "Total number of interrupts serviced.", &[], v[0]);
    out.counter(
        "node_context_switches_total",
        "Total number of context switches.",
        &[],
        v[1],
    );
    out.counter("node_forks_total", "Total number of forks.", &[], v[2]);
    out.gauge("node_boot_time_seconds", "Node boot time, in unixtime.", &[], v[3]);
    out.gauge(
        "node_procs_running",
        "Number of processes in runnable state.",
        &[],
        v[4],
    );
    out.gauge(
        "node_procs_blocked",
        "Number of processes blocked waiting for I/O to complete.",
        &[],
        v[5],
    );
    if node.opts.stat_softirq {
        let counts = softirq.unwrap_or_default();
        for (i, vector) in SOFTIRQ_VECTORS.iter().enumerate() {
            out.counter(
                "node_softirqs_total",
                "Number of softirq calls.",
                &[("vector", vector)],
                counts.get(i).copied().unwrap_or(0.0),
            );
        }
    }
    Ok(())
}
