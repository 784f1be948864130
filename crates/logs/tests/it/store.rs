//! The store: durability through the write-ahead log (replay after a crash,
//! exactly once), limits, and the needle search over many lines.

use std::ops::ControlFlow;
use std::time::Duration;

use sextant_logs::store::Limits;
use sextant_logs::{Direction, Entry, LogStore, LogStoreOptions, PushStream, Selection};
use sextant_model::{Labels, MatchOp, Matcher};

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn stream(app: &str, lines: &[(i64, String)]) -> PushStream {
    PushStream {
        labels: Labels::from_pairs([("app", app)]).unwrap(),
        entries: lines
            .iter()
            .map(|(ts, l)| Entry {
                ts: *ts,
                line: l.clone(),
                metadata: Vec::new(),
            })
            .collect(),
    }
}

fn count(store: &LogStore, needle: Option<&str>) -> usize {
    let sel = Selection {
        matchers: vec![Matcher::new(MatchOp::Regex, "app", ".+").unwrap()],
        from: 0,
        to: i64::MAX,
        needles: needle.map(|n| vec![n.to_owned()]).unwrap_or_default(),
        direction: Direction::Forward,
        fetch: true,
    };
    let mut n = 0;
    store
        .scan(&sel, |_| {
            n += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    n
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn acknowledged_entries_survive_a_crash_before_indexing_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let mut opts = LogStoreOptions::new(&live);
    // The index never commits on its own: everything acknowledged is only in the log.
    opts.commit_interval = Duration::from_secs(3600);
    let (store, _) = LogStore::open(opts).unwrap();
    let t = now_ns();
    for batch in 0..10 {
        let lines: Vec<(i64, String)> = (0..100)
            .map(|i| {
                (
                    t + (batch * 100 + i) as i64,
                    format!("batch {batch} line {i} id-{batch}-{i}"),
                )
            })
            .collect();
        store.push_blocking(vec![stream("a", &lines)]).unwrap();
    }
    // The state a crash leaves: the log as written, no index commit.
    let crashed = dir.path().join("crashed");
    copy_dir(&live, &crashed);
    std::mem::forget(store);

    let (store, stats) = LogStore::open(LogStoreOptions::new(&crashed)).unwrap();
    assert_eq!(stats.replayed_entries, 1000);
    store.flush().unwrap();
    assert_eq!(count(&store, None), 1000);
    assert_eq!(count(&store, Some("id-7-42")), 1);
    drop(store);

    // Reopening an indexed store replays nothing twice.
    let (store, stats) = LogStore::open(LogStoreOptions::new(&crashed)).unwrap();
    store.flush().unwrap();
    assert_eq!(count(&store, None), 1000, "replay added duplicates ({stats:?})");
}

#[test]
fn limits_answer_as_loki_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = LogStoreOptions::new(dir.path());
    opts.limits = Limits {
        max_line_size: 10,
        ingest_rate_bytes: 100.0,
        ingest_burst_bytes: 100.0,
        ..Limits::default()
    };
    let (store, _) = LogStore::open(opts).unwrap();
    let t = now_ns();
    // One line too long: the other is written, the answer is 400 with the reason.
    let err = store
        .push_blocking(vec![stream(
            "a",
            &[(t, "short".into()), (t + 1, "much too long".into())],
        )])
        .unwrap_err();
    assert_eq!(err.status, 400);
    assert_eq!(
        err.message,
        "max entry size '10' bytes exceeded for stream '{app=\"a\"}' while adding an entry with length '13' bytes"
    );
    // Too old.
    let err = store
        .push_blocking(vec![stream("a", &[(t - 8 * 86400 * 1_000_000_000, "old".into())])])
        .unwrap_err();
    assert_eq!(err.status, 400);
    assert!(
        err.message
            .starts_with("entry for stream '{app=\"a\"}' has timestamp too old"),
        "{}",
        err.message
    );
    // Over the rate: 429 and nothing written.
    let many: Vec<(i64, String)> = (0..20).map(|i| (t + 10 + i, "0123456789".to_string())).collect();
    let err = store.push_blocking(vec![stream("b", &many)]).unwrap_err();
    assert_eq!(err.status, 429);
    assert!(
        err.message.starts_with("ingestion rate limit exceeded"),
        "{}",
        err.message
    );
    // An exact duplicate of the stream's last entry is dropped silently.
    let out = store.push_blocking(vec![stream("a", &[(t, "short".into())])]).unwrap();
    assert_eq!((out.accepted, out.duplicates), (0, 1));
    store.flush().unwrap();
    assert_eq!(count(&store, None), 1);
}

#[test]
fn entries_are_enriched_as_loki_enriches_them() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LogStore::open(LogStoreOptions::new(dir.path())).unwrap();
    let t = now_ns();
    let mut s = stream("web", &[(t, "GET / 500 error upstream".into())]);
    s.entries[0].metadata.push(("trace.id".into(), "abc".into()));
    store.push_blocking(vec![s]).unwrap();
    store.flush().unwrap();
    let sel = Selection {
        matchers: vec![Matcher::new(MatchOp::Equal, "service_name", "web").unwrap()],
        from: 0,
        to: i64::MAX,
        needles: Vec::new(),
        direction: Direction::Forward,
        fetch: true,
    };
    let mut seen = Vec::new();
    store
        .scan(&sel, |v| {
            seen.push(v.metadata.to_vec());
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(
        seen,
        vec![vec![
            ("trace_id".to_string(), "abc".to_string()),
            ("detected_level".into(), "error".into())
        ]]
    );
}

#[test]
fn pushes_get_429_while_the_backlog_would_take_longer_than_the_lag_bound_to_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = LogStoreOptions::new(dir.path());
    opts.commit_interval = Duration::from_secs(3600);
    opts.limits = Limits {
        // Far below what a 100 KB push takes to index at any rate.
        max_index_lag: Duration::from_micros(10),
        ..Limits::default()
    };
    let (store, _) = LogStore::open(opts).unwrap();
    let t = now_ns();
    // An empty queue always takes a push.
    let big: Vec<(i64, String)> = (0..2000)
        .map(|i| (t + i, format!("{i:04} {}", "y".repeat(600))))
        .collect();
    store.push_blocking(vec![stream("a", &big)]).unwrap();
    // Before any commit was measured, a slow indexer is assumed.
    let err = store
        .push_blocking(vec![stream("a", &[(t + 3000, "z".repeat(100_000))])])
        .unwrap_err();
    assert_eq!(err.status, 429);
    // The commit measures the rate (over 1 MiB indexed).
    store.flush().unwrap();
    store
        .push_blocking(vec![stream("a", &[(t + 3001, "z".repeat(100_000))])])
        .unwrap();
    let err = store
        .push_blocking(vec![stream("a", &[(t + 3002, "z".repeat(100_000))])])
        .unwrap_err();
    assert_eq!(err.status, 429);
    assert!(err.message.contains("the index is"), "{}", err.message);
    store.flush().unwrap();
    store
        .push_blocking(vec![stream("a", &[(t + 3002, "z".repeat(100_000))])])
        .unwrap();
    store.flush().unwrap();
    assert_eq!(count(&store, None), 2002);
}

#[test]
fn a_backlog_of_unindexed_entries_answers_429_instead_of_growing() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = LogStoreOptions::new(dir.path());
    opts.commit_interval = Duration::from_secs(3600);
    opts.limits = Limits {
        max_unindexed_bytes: 50,
        ..Limits::default()
    };
    let (store, _) = LogStore::open(opts).unwrap();
    let t = now_ns();
    let line = "x".repeat(40);
    store.push_blocking(vec![stream("a", &[(t, line.clone())])]).unwrap();
    let err = store
        .push_blocking(vec![stream("a", &[(t + 1, line.clone())])])
        .unwrap_err();
    assert_eq!(err.status, 429);
    assert!(err.message.starts_with("ingestion backlog"), "{}", err.message);
    // Once indexed, pushes are taken again.
    store.flush().unwrap();
    store.push_blocking(vec![stream("a", &[(t + 1, line)])]).unwrap();
    store.flush().unwrap();
    assert_eq!(count(&store, None), 2);
}
