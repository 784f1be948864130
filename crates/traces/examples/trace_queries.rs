//! Trace store at scale, for BENCHMARKS.md: writes `--spans` synthetic spans
//! (default 10M, traces of 10 over the last `--hours` hours, 1 h buckets) in
//! requests of 1000 spans, reporting the in-process ingest rate against the
//! process's CPU time; compacts the closed buckets; then times, over 200 runs
//! each, trace by id (random ids that exist), a search by service and duration,
//! and a search by a non-promoted attribute, and prints p50/p99.
//!
//! `cargo run --profile dev --example trace_queries -p sextant-traces -- [--spans N] [--hours H] [--dir DIR]`
//! (build with `cargo test --workspace --no-run` first: a narrower `-p` build
//! of the library alone would rebuild DuckDB).

#![allow(clippy::print_stdout)] // the figures are the program's output

use std::time::{Duration, Instant};

use sextant_traces::search::SearchRequest;
use sextant_traces::synthetic::{self, Rng, SPANS_PER_TRACE};
use sextant_traces::{TraceId, TraceStore, TraceStoreOptions, traceql};

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)].as_secs_f64() * 1e3;
    (at(0.5), at(0.99))
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let spans: u64 = arg(&args, "--spans").and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let hours: i64 = arg(&args, "--hours").and_then(|v| v.parse().ok()).unwrap_or(10);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = arg(&args, "--dir")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let mut opts = TraceStoreOptions::new(&dir);
    opts.compact_after = Duration::ZERO;
    // Old spans are not counted as span metrics anyway; keep the bench to storage.
    opts.span_metrics.enabled = false;
    let (store, _) = TraceStore::open(opts).expect("open");
    let traces = spans / SPANS_PER_TRACE as u64;
    let per_request = 100u64;
    // Hour-aligned, so a later `--queries-only` run finds the same traces.
    let end = (now_ns() / 3_600_000_000_000 - 1) * 3_600_000_000_000;
    let start = end - hours * 3_600_000_000_000;
    let span_ns = end - start;
    let seed = 42;

    // `--queries-only` reuses a directory an earlier run filled (same --spans and --hours).
    let queries_only = args.iter().any(|a| a == "--queries-only");
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let mut n = if queries_only { traces } else { 0 };
    while n < traces {
        let k = per_request.min(traces - n);
        let req = synthetic::request(seed, n, k, traces, start, span_ns);
        store.write_blocking(&req).expect("write");
        n += k;
    }
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    println!(
        "ingest: spans={} wall_s={wall:.1} cpu_s={cpu:.1} spans_per_s={:.0} spans_per_cpu_s={:.0} (requests of {} spans, generation included)",
        traces * SPANS_PER_TRACE as u64,
        (traces * SPANS_PER_TRACE as u64) as f64 / wall,
        (traces * SPANS_PER_TRACE as u64) as f64 / cpu,
        per_request * SPANS_PER_TRACE as u64,
    );
    let t = Instant::now();
    store.maintain_blocking().expect("compact");
    println!("compaction: wall_s={:.1}", t.elapsed().as_secs_f64());
    let disk: u64 = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "disk: bytes={disk} bytes_per_span={:.1}",
        disk as f64 / (traces * SPANS_PER_TRACE as u64) as f64
    );

    let runs = 200;
    let mut r = Rng(7);
    let mut by_id = Vec::new();
    for _ in 0..runs {
        let id = TraceId(synthetic::trace_id(seed, r.below(traces)));
        let t = Instant::now();
        let found = store.trace(id, None).expect("trace").expect("exists");
        by_id.push(t.elapsed());
        assert_eq!(
            found
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum::<usize>(),
            SPANS_PER_TRACE
        );
    }
    let (p50, p99) = percentiles(by_id);
    println!("trace_by_id: runs={runs} p50_ms={p50:.2} p99_ms={p99:.2}");

    let search = |q: &str, window_h: i64| {
        let filter = traceql::parse(q).expect("query").filter;
        let mut times = Vec::new();
        let mut found = 0;
        for i in 0..runs / 4 {
            // A window ending at a different hour each time.
            let to = end - (i as i64 % hours.max(1)) * 3_600_000_000_000 / 2;
            let t = Instant::now();
            let res = store
                .search(&SearchRequest {
                    filter: filter.clone(),
                    start_ns: to - window_h * 3_600_000_000_000,
                    end_ns: to,
                    limit: 20,
                    spans_per_set: 3,
                })
                .expect("search");
            times.push(t.elapsed());
            found += res.len();
        }
        let (p50, p99) = percentiles(times);
        println!(
            "search {q:?} over {window_h}h: runs={} p50_ms={p50:.1} p99_ms={p99:.1} traces_found_avg={:.1}",
            runs / 4,
            found as f64 / (runs / 4) as f64
        );
    };
    search(r#"{ resource.service.name = "svc-07" && duration > 100ms }"#, 1);
    search(r#"{ resource.service.name = "svc-07" && duration > 100ms }"#, 6);
    search(r#"{ span.user.id = "u4242" }"#, 1);
    search(r#"{ span.user.id = "u4242" }"#, 6);
    search(r#"{ status = error && span.http.route = "/checkout" }"#, 1);
    search("{}", 1);
    search("{}", 6);
}
