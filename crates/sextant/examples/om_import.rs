//! Imports an OpenMetrics file with explicit timestamps into a fresh Sextant data
//! directory, flushes its closed blocks to DuckDB, closes it (checkpoints), and prints
//! samples, the files' bytes, the bytes the database has in use, and bytes per sample
//! for both. The counterpart of `promtool tsdb create-blocks-from openmetrics`.
//!
//! `cargo run --example om_import -p sextant -- FILE DATA_DIR`

use std::collections::HashMap;

use prometheus_client::registry::Registry;
use sextant_expfmt::{Format, parse};
use sextant_model::{Labels, Sample};
use sextant_store::{AppendRequest, MetricsStore, SeriesSamples, StoreOptions};

const SERIES_PER_APPEND: usize = 200;

#[allow(clippy::print_stdout)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (file, dir) = (args.get(1).expect("FILE"), args.get(2).expect("DATA_DIR"));
    let _ = std::fs::remove_dir_all(dir);
    let body = std::fs::read(file).expect("read file");
    let exposition = parse(&body, Format::OpenMetrics).expect("valid OpenMetrics");
    let mut order: Vec<Labels> = Vec::new();
    let mut by_series: HashMap<Labels, Vec<Sample>> = HashMap::new();
    for s in exposition.samples {
        let t = s.timestamp_ms.expect("samples need timestamps");
        by_series
            .entry(s.labels.clone())
            .or_insert_with(|| {
                order.push(s.labels.clone());
                Vec::new()
            })
            .push(Sample::new(t, s.value));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (total, used) = rt.block_on(async {
        let mut opts = StoreOptions::new(dir);
        opts.retention = None;
        let store = MetricsStore::open(opts, &mut Registry::default()).expect("open");
        let mut total = 0;
        for chunk in order.chunks(SERIES_PER_APPEND) {
            let series = chunk
                .iter()
                .map(|l| SeriesSamples {
                    labels: l.clone(),
                    samples: by_series[l].clone(),
                })
                .collect();
            total += store
                .append(AppendRequest {
                    series,
                    ..Default::default()
                })
                .await
                .expect("append")
                .accepted;
        }
        // Flush the head's blocks that ended over an hour ago to DuckDB, as `serve`
        // does: all of old data; recent data keeps its last hours in the head, which
        // `close` checkpoints into the write-ahead log.
        store.compact().await.expect("flush");
        store.close().await.expect("close");
        drop(store);
        // DuckDB releases the blocks of dropped tables at the checkpoint `close` runs, so
        // measure use on a fresh open.
        let mut opts = StoreOptions::new(dir);
        opts.retention = None;
        let store = MetricsStore::open(opts, &mut Registry::default()).expect("reopen");
        let (_, used) = store.disk_usage().await.expect("disk usage");
        store.close().await.expect("close");
        (total, used)
    });
    let bytes: u64 = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!("samples: {total}");
    println!("bytes: {bytes}");
    println!("used bytes: {used}");
    println!(
        "bytes per sample: {:.2} (file), {:.2} (used)",
        bytes as f64 / total as f64,
        used as f64 / total as f64
    );
}
