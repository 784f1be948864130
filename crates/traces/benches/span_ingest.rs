//! Span ingest in process: the trace store's write path (validation, split into
//! rows, span, attribute and summary tables, commit) against DuckDB's appender
//! alone writing the same span rows into one table and committing (the
//! ceiling), per request of 1000 spans (100 traces of 10).
//!
//! `cargo bench --workspace --profile dev --bench span_ingest` (a narrower `-p`
//! rebuilds DuckDB).

#![allow(missing_docs)] // criterion's macros generate undocumented items

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sextant_traces::synthetic;
use sextant_traces::{TraceStore, TraceStoreOptions};

const TRACES: u64 = 100;

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn ingest(c: &mut Criterion) {
    let mut g = c.benchmark_group("span_ingest");
    g.throughput(Throughput::Elements(TRACES * synthetic::SPANS_PER_TRACE as u64));
    g.sample_size(20);
    let start = now_ns() - 600_000_000_000;

    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = TraceStore::open(TraceStoreOptions::new(dir.path())).expect("open");
    let mut n = 0u64;
    g.bench_function("store_write_1000_spans", |b| {
        b.iter(|| {
            let req = synthetic::request(7, n * TRACES, TRACES, 1 << 40, start, 1);
            n += 1;
            store.write_blocking(&req).expect("write")
        })
    });

    let bare = tempfile::tempdir().expect("tempdir");
    let conn = duckdb::Connection::open(bare.path().join("bare.duckdb")).expect("open");
    conn.execute_batch(&sextant_traces::store::spans_table_ddl("spans"))
        .expect("ddl");
    let mut m = 0u64;
    g.bench_function("bare_appender_1000_spans", |b| {
        b.iter(|| {
            let req = synthetic::request(7, m * TRACES, TRACES, 1 << 40, start, 1);
            m += 1;
            let split = sextant_traces::span::split(&req);
            let rows: Vec<&sextant_traces::span::SpanRow> = split.rows.iter().collect();
            conn.execute_batch("BEGIN TRANSACTION").expect("begin");
            {
                let mut app = conn.appender("spans").expect("appender");
                sextant_traces::store::append_spans(&mut app, &rows).expect("append");
                app.flush().expect("flush");
            }
            conn.execute_batch("COMMIT").expect("commit");
        })
    });
    g.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
