//! Span ingest in process: the trace store's write path (validation, split into
//! rows, span, attribute and summary tables, commit) against DuckDB's appender
//! alone writing the same span rows into one table and committing (the
//! ceiling), per commit of 8,000 spans (800 traces of 10: what eight concurrent
//! exporters of 1,000-span requests put in one group commit). Generating the
//! request (and, for the ceiling, splitting it into rows) is outside the timed
//! part; wall time, so each commit's `fsync` counts.
//!
//! `cargo bench --workspace --profile dev --bench span_ingest` (a narrower `-p`
//! rebuilds DuckDB).

#![allow(missing_docs)] // criterion's macros generate undocumented items

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sextant_traces::synthetic;
use sextant_traces::{TraceStore, TraceStoreOptions};

const TRACES: u64 = 800;

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn ingest(c: &mut Criterion) {
    let mut g = c.benchmark_group("span_ingest");
    g.throughput(Throughput::Elements(TRACES * synthetic::SPANS_PER_TRACE as u64));
    g.sample_size(10);
    let start = now_ns() - 600_000_000_000;

    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = TraceStore::open(TraceStoreOptions::new(dir.path())).expect("open");
    let mut n = 0u64;
    g.bench_function("store_write_8000_spans", |b| {
        b.iter_batched(
            || {
                n += 1;
                synthetic::request(7, n * TRACES, TRACES, 1 << 40, start, 1)
            },
            |req| store.write_blocking(&req).expect("write"),
            criterion::BatchSize::PerIteration,
        )
    });

    let bare = tempfile::tempdir().expect("tempdir");
    let conn = duckdb::Connection::open(bare.path().join("bare.duckdb")).expect("open");
    conn.execute_batch(&sextant_traces::store::spans_table_ddl("spans"))
        .expect("ddl");
    let mut m = 0u64;
    g.bench_function("bare_appender_8000_spans", |b| {
        b.iter_batched(
            || {
                m += 1;
                sextant_traces::span::split(&synthetic::request(7, m * TRACES, TRACES, 1 << 40, start, 1))
            },
            |split| {
                let rows: Vec<&sextant_traces::span::SpanRow> = split.rows.iter().collect();
                conn.execute_batch("BEGIN TRANSACTION").expect("begin");
                {
                    let mut app = conn.appender("spans").expect("appender");
                    sextant_traces::store::append_spans(&mut app, &rows).expect("append");
                    app.flush().expect("flush");
                }
                conn.execute_batch("COMMIT").expect("commit");
            },
            criterion::BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
