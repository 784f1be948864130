//! Log store figures for BENCHMARKS.md (a plain program, not criterion: each
//! figure is one whole pipeline run). Run with
//! `cargo bench --profile dev -p sextant-logs --bench ingest -- [MEGABYTES]`.
//!
//! 1. Ceiling: bare tantivy indexing the documents in-process (same schema and
//!    tokenizer, one writer thread, one commit), MB of lines per CPU-second.
//! 2. The store: pushes of 1,000 entries (validation, enrichment, write-ahead log
//!    with fdatasync, indexing, commits every second) until everything is
//!    searchable, MB per CPU-second and the lag from the last acknowledgement to
//!    searchable.
//! 3. Queries over the 24 hours the entries span: a needle `|= "<uuid>"` in one
//!    stream, and `sum by (app) (count_over_time({app=~".+"}[1m]))` at 1-minute steps,
//!    p50/p99 with the exact expected counts checked.

#![allow(clippy::print_stdout)] // the figures are the program's output

use std::time::{Duration, Instant};

use sextant_logs::logql::{QueryParams, QueryResult, evaluate, parse};
use sextant_logs::{Direction, Entry, LogStore, LogStoreOptions, PushStream};
use sextant_model::Labels;

const S: i64 = 1_000_000_000;

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after ')'.
    (ticks(11) + ticks(12)) / 100.0
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn uuid(r: &mut Rng) -> String {
    let a = r.next();
    let b = r.next();
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let mb: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let start = now - 24 * 3600 * S;
    // Lines of about 200 bytes, 20 streams, spread evenly over the last 24 hours.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let levels = ["info", "info", "info", "warn", "error", "debug"];
    let paths = ["/api/cart", "/api/checkout", "/api/items", "/health", "/login"];
    let mut lines: Vec<(usize, i64, String)> = Vec::new();
    let mut bytes = 0usize;
    let target = mb << 20;
    while bytes < target {
        let i = lines.len();
        let line = format!(
            "ts={} level={} method=GET path={} status={} duration={}ms request_id={} user=u{} msg=\"request served by backend\"",
            i,
            levels[(rng.next() % 6) as usize],
            paths[(rng.next() % 5) as usize],
            [200, 200, 200, 404, 500][(rng.next() % 5) as usize],
            rng.next() % 900,
            uuid(&mut rng),
            rng.next() % 10_000
        );
        bytes += line.len();
        lines.push(((rng.next() % 20) as usize, 0, line));
    }
    let n = lines.len();
    let step = (24 * 3600 * S) / n as i64;
    for (i, l) in lines.iter_mut().enumerate() {
        l.1 = start + i as i64 * step;
    }
    let needle_at = n / 3;
    let needle = lines[needle_at].2.split("request_id=").nth(1).unwrap()[..36].to_owned();
    let needle_app = lines[needle_at].0;
    let per_app: Vec<usize> = (0..20).map(|a| lines.iter().filter(|l| l.0 == a).count()).collect();
    println!("corpus: {n} lines, {:.1} MB, 20 streams over 24 h", bytes as f64 / 1e6);

    // 1. Bare tantivy.
    {
        use tantivy::schema::{FAST, INDEXED, IndexRecordOption, STORED, Schema, TextFieldIndexing, TextOptions};
        use tantivy::tokenizer::{LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer};
        let dir = tempfile::tempdir().unwrap();
        let mut b = Schema::builder();
        let ts = b.add_i64_field("ts", INDEXED | FAST);
        let stream = b.add_u64_field("stream", INDEXED | FAST);
        let len = b.add_u64_field("len", FAST);
        let line = b.add_text_field(
            "line",
            TextOptions::default()
                .set_indexing_options(
                    TextFieldIndexing::default()
                        .set_tokenizer("w")
                        .set_index_option(IndexRecordOption::Basic),
                )
                .set_stored(),
        );
        let _meta = b.add_bytes_field("meta", STORED);
        let index = tantivy::Index::create_in_dir(dir.path(), b.build()).unwrap();
        index.tokenizers().register(
            "w",
            TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(RemoveLongFilter::limit(100))
                .filter(LowerCaser)
                .build(),
        );
        let mut w: tantivy::IndexWriter = index.writer_with_num_threads(1, 32 << 20).unwrap();
        let (c0, t0) = (cpu_seconds(), Instant::now());
        for (app, t, l) in &lines {
            let mut d = tantivy::TantivyDocument::new();
            d.add_i64(ts, *t);
            d.add_u64(stream, *app as u64);
            d.add_u64(len, l.len() as u64);
            d.add_text(line, l);
            w.add_document(d).unwrap();
        }
        w.commit().unwrap();
        let (cpu, wall) = (cpu_seconds() - c0, t0.elapsed().as_secs_f64());
        println!(
            "bare tantivy: {:.1} MB/s per CPU-second ({cpu:.1} CPU-s, {wall:.1} s wall)",
            bytes as f64 / 1e6 / cpu
        );
        drop(w);
    }

    // 2. The store.
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LogStore::open(LogStoreOptions::new(dir.path())).unwrap();
    let labels: Vec<Labels> = (0..20)
        .map(|a| Labels::from_pairs([("app", format!("a{a}")), ("env", "prod".to_string())]).unwrap())
        .collect();
    let (c0, t0) = (cpu_seconds(), Instant::now());
    let mut retries = 0u64;
    for chunk in lines.chunks(1000) {
        let mut streams: Vec<PushStream> = labels
            .iter()
            .map(|l| PushStream {
                labels: l.clone(),
                entries: Vec::new(),
            })
            .collect();
        for (app, t, l) in chunk {
            streams[*app].entries.push(Entry {
                ts: *t,
                line: l.clone(),
                metadata: Vec::new(),
            });
        }
        streams.retain(|s| !s.entries.is_empty());
        // A 429 (the index is behind by more than the lag bound) is retried, as
        // Loki clients retry it.
        loop {
            match store.push_blocking(streams.clone()) {
                Ok(_) => break,
                Err(e) if e.status == 429 => {
                    retries += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("push: {}", e.message),
            }
        }
    }
    let acked = t0.elapsed();
    // Searchable: the last entry found by its needle.
    let last = lines[n - 1].2.split("request_id=").nth(1).unwrap()[..36].to_owned();
    let q = parse(&format!(r#"{{app="a{}"}} |= "{last}""#, lines[n - 1].0)).unwrap();
    let p = QueryParams {
        start,
        end: now + S,
        step: S,
        limit: 10,
        direction: Direction::Backward,
    };
    loop {
        if let Ok((QueryResult::Streams(s), _)) = evaluate(&store, &q, &p)
            && !s.is_empty()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (cpu, wall) = (cpu_seconds() - c0, t0.elapsed().as_secs_f64());
    println!(
        "store (push, WAL, index, searchable): {:.1} MB/s per CPU-second ({cpu:.1} CPU-s, {wall:.1} s wall); last push acknowledged to searchable {:.2} s; {retries} pushes retried after 429; index on disk {:.1} MB",
        bytes as f64 / 1e6 / cpu,
        wall - acked.as_secs_f64(),
        store.disk_bytes() as f64 / 1e6
    );

    // 3. Queries.
    let needle_q = parse(&format!(r#"{{app="a{needle_app}"}} |= "{needle}""#)).unwrap();
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let (r, _) = evaluate(&store, &needle_q, &p).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e3);
        match r {
            QueryResult::Streams(s) => assert_eq!(s.iter().map(|s| s.entries.len()).sum::<usize>(), 1),
            other => panic!("{other:?}"),
        }
    }
    println!(
        "needle |= uuid over 24 h: p50 {:.1} ms, p99 {:.1} ms (1 match, checked)",
        percentile(&mut times.clone(), 0.5),
        percentile(&mut times, 0.99)
    );
    let count_q = parse(r#"sum by (app) (count_over_time({app=~".+"}[1m]))"#).unwrap();
    let range = QueryParams {
        start: start + 60 * S,
        end: now,
        step: 60 * S,
        limit: 100,
        direction: Direction::Backward,
    };
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let (r, _) = evaluate(&store, &count_q, &range).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e3);
        match r {
            QueryResult::Matrix(m) => {
                assert_eq!(m.len(), 20);
                for (l, pts) in &m {
                    let a: usize = l.get("app").unwrap()[1..].parse().unwrap();
                    let total: f64 = pts.iter().map(|(_, v)| v).sum();
                    // Windows tile the range: every entry after the first minute once.
                    assert!(
                        (total as usize) <= per_app[a] && total as usize + 200 >= per_app[a],
                        "{a}: {total} vs {}",
                        per_app[a]
                    );
                }
            }
            other => panic!("{other:?}"),
        }
    }
    println!(
        "sum by (app) (count_over_time({{app=~\".+\"}}[1m])) over 24 h at 1m steps: p50 {:.0} ms, p99 {:.0} ms (20 series; counts checked against the corpus)",
        percentile(&mut times.clone(), 0.5),
        percentile(&mut times, 0.99)
    );
}
