//! The same workload as `promtool tsdb bench write FILE --metrics=N --scrapes=M`, run
//! against Sextant's store in process: N label sets from FILE, split into shards of
//! 1000 series that append concurrently, M scrapes, each scrape one append (commit) per
//! shard, timestamps 30s apart, appends by series reference after a round's first
//! scrape (as promtool's appender does), values starting at 123456789 and growing by 1000.
//!
//! `cargo run --example bench_write -p sextant-store -- FILE --metrics N --scrapes M --out DIR`
//! Prints samples, wall time, CPU time (user+sys of the whole process) and samples per
//! CPU-second; `scripts/bench-append` runs it beside promtool.
//!
//! `--crash` exits right after the last append, as `kill -9` would leave the
//! directory (the head only in the write-ahead log's records); `--replay DIR` then
//! opens such a directory and prints how long replaying the log into the head took.

use std::time::Instant;

use prometheus_client::registry::Registry;
use sextant_model::{Labels, Sample};
use sextant_store::{AppendRequest, MetricsStore, SeriesRef, SeriesSamples, StoreOptions};

/// The allocator the `sextant` binary ships with, so the figure is the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TIME_DELTA_MS: i64 = 30_000;
const SHARD: usize = 1000;
const ROUND: usize = 100;

#[allow(clippy::print_stdout)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(dir) = args.iter().position(|a| a == "--replay").and_then(|i| args.get(i + 1)) {
        replay(dir);
        return;
    }
    let crash = args.iter().any(|a| a == "--crash");
    let flag = |name: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    };
    let file = args
        .get(1)
        .filter(|a| !a.starts_with("--"))
        .cloned()
        .expect("usage: bench_write FILE [--metrics N] [--scrapes M] [--out DIR]");
    let metrics: usize = flag("--metrics", "10000").parse().expect("--metrics");
    let scrapes: usize = flag("--scrapes", "3000").parse().expect("--scrapes");
    let out = flag("--out", "benchout-sextant");
    let _ = std::fs::remove_dir_all(&out);

    let text = std::fs::read_to_string(&file).expect("read series file");
    let labels: Vec<Labels> = text
        .lines()
        .take(metrics)
        .map(|l| {
            let m: std::collections::BTreeMap<String, String> = serde_json::from_str(l).expect("json label set");
            Labels::from_pairs(m).expect("valid label set")
        })
        .collect();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let total = rt.block_on(async move {
        let mut opts = StoreOptions::new(&out);
        opts.retention = None;
        let store = MetricsStore::open(opts, &mut Registry::default()).expect("open store");
        // Shared, not copied, by each round's tasks (promtool's goroutines share theirs).
        let shards: Vec<std::sync::Arc<[Labels]>> = labels.chunks(SHARD).map(std::sync::Arc::from).collect();
        let mut total = 0u64;
        let mut done = 0;
        while done < scrapes {
            let n = ROUND.min(scrapes - done);
            let mut tasks = Vec::new();
            for shard in &shards {
                let (store, shard) = (store.clone(), shard.clone());
                let base = done as i64;
                tasks.push(tokio::spawn(async move {
                    let mut appended = 0u64;
                    // As promtool does: references live for one round of scrapes; its
                    // first scrape appends by labels, the rest by reference.
                    let mut refs: Vec<SeriesRef> = Vec::new();
                    for i in 0..n as i64 {
                        let t = (base + i + 1) * TIME_DELTA_MS;
                        let v = 123_456_789.0 + 1000.0 * (base + i + 1) as f64;
                        let req = if refs.is_empty() {
                            let series = shard
                                .iter()
                                .map(|l| SeriesSamples {
                                    labels: l.clone(),
                                    samples: vec![Sample::new(t, v)],
                                })
                                .collect();
                            AppendRequest {
                                series,
                                ..Default::default()
                            }
                        } else {
                            let samples_by_ref = refs.iter().map(|r| (*r, Sample::new(t, v))).collect();
                            AppendRequest {
                                samples_by_ref,
                                ..Default::default()
                            }
                        };
                        let o = store.append(req).await.expect("append");
                        appended += o.accepted;
                        if refs.is_empty() {
                            refs = o.refs;
                        }
                    }
                    appended
                }));
            }
            for t in tasks {
                total += t.await.unwrap();
            }
            done += n;
        }
        if crash {
            let wall = started.elapsed().as_secs_f64();
            println!("total samples: {total}");
            println!("wall seconds: {wall:.2}");
            std::process::exit(0);
        }
        store.close().await.unwrap();
        total
    });
    let wall = started.elapsed().as_secs_f64();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).unwrap();
    let cpu = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    let cpu_s = cpu(usage.user_time()) + cpu(usage.system_time());
    println!("total samples: {total}");
    println!("wall seconds: {wall:.2}");
    println!("cpu seconds: {cpu_s:.2}");
    println!("samples per cpu-second: {:.0}", total as f64 / cpu_s);
}

/// Opens a data directory left by `--crash` and reports the replay.
#[allow(clippy::print_stdout)]
fn replay(dir: &str) {
    let log_bytes: u64 = std::fs::read_dir(std::path::Path::new(dir).join("wal"))
        .map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let started = Instant::now();
        let mut opts = StoreOptions::new(dir);
        opts.retention = None;
        let store = MetricsStore::open(opts, &mut Registry::default()).expect("open store");
        let open_s = started.elapsed().as_secs_f64();
        let r = store.replay_report().clone();
        println!(
            "replayed {} samples of {} series from {} log bytes ({} records) in {:.2} s; open took {open_s:.2} s: {:.0} samples/s",
            r.samples,
            store.series_count(),
            log_bytes,
            r.records,
            r.duration.as_secs_f64(),
            r.samples as f64 / r.duration.as_secs_f64()
        );
        store.close().await.unwrap();
    });
}
