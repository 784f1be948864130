//! The database file under retention: blocks are written and the oldest dropped, cycle
//! after cycle, and the file's size is printed beside the space DuckDB has in use, to
//! show whether what dropped blocks free is reused.
//!
//! `cargo run --example retention_churn -p sextant-store -- --series N --keep K --cycles C --out DIR`
//! Each cycle appends one two-hour block of N series at 15 s (a third counters, a third
//! three-decimal random walks, a third noisy floats, as `scripts/gen-bench-data.py
//! randomwalk`), flushes it to DuckDB, and drops the blocks beyond the newest K.
//! `scripts/bench-retention-churn` runs it.

use std::time::Instant;

use prometheus_client::registry::Registry;
use sextant_model::{Labels, Sample};
use sextant_store::{AppendRequest, MetricsStore, SeriesSamples, StoreOptions};

/// The allocator the `sextant` binary ships with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BLOCK_MS: i64 = 2 * 3600 * 1000;
const STEP_MS: i64 = 15_000;
/// 2026-01-01T00:00:00Z, a block boundary.
const T0: i64 = 1_767_225_600_000;

#[allow(clippy::print_stdout)]
#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    };
    let n: usize = flag("--series", "2000").parse().expect("--series");
    let keep: i64 = flag("--keep", "6").parse().expect("--keep");
    let cycles: i64 = flag("--cycles", "24").parse().expect("--cycles");
    let out = flag("--out", "churn-sextant");
    let _ = std::fs::remove_dir_all(&out);
    let mut opts = StoreOptions::new(&out);
    opts.retention = None;
    let store = MetricsStore::open(opts, &mut Registry::default()).expect("open store");

    let labels: Vec<Labels> = (0..n)
        .map(|i| {
            let kind = ["counter", "walk", "noise"][i % 3];
            Labels::from_pairs([("__name__", format!("churn_{kind}")), ("series", i.to_string())]).expect("labels")
        })
        .collect();
    // A small deterministic generator (xorshift), so runs are comparable.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut state = vec![0f64; n];
    let per_block = (BLOCK_MS / STEP_MS) as usize;
    println!("cycle  blocks  samples_kept  file+wal_bytes  (wal)  used_bytes  file_B/sample  used_B/sample");
    let started = Instant::now();
    for c in 0..cycles {
        let start = T0 + c * BLOCK_MS;
        for k in 0..per_block {
            let t = start + k as i64 * STEP_MS;
            let series = labels
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let v = match i % 3 {
                        0 => {
                            state[i] += (rand() * 100.0).floor();
                            state[i]
                        }
                        1 => {
                            state[i] = ((state[i] + (rand() - 0.5) * 2.0) * 1000.0).round() / 1000.0;
                            state[i]
                        }
                        _ => 50.0 + rand() * 10.0,
                    };
                    SeriesSamples {
                        labels: l.clone(),
                        samples: vec![Sample::new(t, v)],
                    }
                })
                .collect();
            store
                .append(AppendRequest {
                    series,
                    ..Default::default()
                })
                .await
                .expect("append");
        }
        store.compact_before(start + BLOCK_MS).await.expect("flush");
        let kept_from = (c + 1 - keep).max(0);
        store
            .drop_blocks_before(T0 + kept_from * BLOCK_MS)
            .await
            .expect("retention");
        let (_, used) = store.disk_usage().await.expect("disk usage");
        // The database file and DuckDB's own log beside it, as `du` would count them.
        let [db, wal] = ["metrics.duckdb", "metrics.duckdb.wal"]
            .map(|f| std::fs::metadata(std::path::Path::new(&out).join(f)).map_or(0, |m| m.len()));
        let file = db + wal;
        let blocks = c + 1 - kept_from;
        let samples = blocks as u64 * (per_block * n) as u64;
        println!(
            "{c:>5}  {blocks:>6}  {samples:>12}  {file:>14}  {wal:>5}  {used:>10}  {:>13.2}  {:>13.2}",
            file as f64 / samples as f64,
            used as f64 / samples as f64
        );
    }
    store.close().await.expect("close");
    let file = std::fs::metadata(std::path::Path::new(&out).join("metrics.duckdb"))
        .expect("database file")
        .len();
    println!(
        "file after close: {file} bytes; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
