//! `softnet`: per-CPU packet processing statistics from `/proc/net/softnet_stat`.

use crate::Node;
use crate::error::{CollectError, IoContext, Result};
use crate::out::Out;
use crate::read;

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let path = node.opts.proc("net/softnet_stat");
    let text = read::string(&path).at(&path)?;
    // The whole file is parsed before anything is written.
    let mut rows = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 9 {
            return Err(CollectError::at(
                &path,
                format_args!("{} columns were detected, but at least 9 were expected", cols.len()),
            ));
        }
        let hex = |s: &str| {
            u32::from_str_radix(s, 16)
                .map(f64::from)
                .map_err(|e| CollectError::at(&path, format_args!("invalid value {s:?}: {e}")))
        };
        rows.push([hex(cols[0])?, hex(cols[1])?, hex(cols[2])?]);
    }
    // The `cpu` label is the row number, as in node_exporter 1.5 (not the CPU id the
    // kernel appends to newer rows).
    for (i, [processed, dropped, squeezed]) in rows.into_iter().enumerate() {
        let cpu = i.to_string();
        let labels = [("cpu", cpu.as_str())];
        out.counter(
            "node_softnet_processed_total",
            "Number of processed packets",
            &labels,
            processed,
        );
        out.counter(
            "node_softnet_dropped_total",
            "Number of dropped packets",
            &labels,
            dropped,
        );
        out.counter(
            "node_softnet_times_squeezed_total",
            "Number of times processing packets ran out of quota",
            &labels,
            squeezed,
        );
    }
    Ok(())
}
