//! The log's promises: what was acknowledged reads back after reopening, torn and
//! corrupt tails are cut and reported, checkpoints replace what came before them,
//! and concurrent appends share one fsync.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::sync::atomic::Ordering;

use sextant_wal::{Replayed, Wal, WalOptions};

fn reopen(dir: &std::path::Path) -> (Wal, Vec<String>, sextant_wal::ReplayStats) {
    let mut seen = Vec::new();
    let (wal, stats) = Wal::open(WalOptions::new(dir), |r| {
        seen.push(match r {
            Replayed::Checkpoint(b) => format!("ck:{}", String::from_utf8_lossy(b)),
            Replayed::Record(b) => String::from_utf8_lossy(b).into_owned(),
        })
    })
    .unwrap();
    (wal, seen, stats)
}

fn segments(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn acknowledged_records_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, seen, stats) = reopen(dir.path());
    assert!(seen.is_empty());
    assert_eq!(stats.truncated_bytes, 0);
    for i in 0..10 {
        wal.append(vec![format!("r{i}").into_bytes()]).durable().await.unwrap();
    }
    wal.append(vec![b"a".to_vec(), b"b".to_vec()]).durable().await.unwrap();
    drop(wal);
    let (_, seen, stats) = reopen(dir.path());
    let want: Vec<String> = (0..10)
        .map(|i| format!("r{i}"))
        .chain(["a".into(), "b".into()])
        .collect();
    assert_eq!(seen, want);
    assert_eq!(stats.records, 12);
}

#[tokio::test]
async fn concurrent_appends_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = reopen(dir.path());
    let tickets: Vec<_> = (0..1000)
        .map(|i| wal.append(vec![format!("{i}").into_bytes()]))
        .collect();
    for t in tickets {
        t.durable().await.unwrap();
    }
    let syncs = wal.counters().syncs.load(Ordering::Relaxed);
    assert!(syncs < 1000, "{syncs} syncs for 1000 queued appends");
    assert_eq!(wal.counters().records.load(Ordering::Relaxed), 1000);
    drop(wal);
    assert_eq!(reopen(dir.path()).1.len(), 1000);
}

#[tokio::test]
async fn a_torn_tail_is_cut_and_reported_and_the_log_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = reopen(dir.path());
    wal.append(vec![b"one".to_vec(), b"two".to_vec()])
        .durable()
        .await
        .unwrap();
    drop(wal);
    // A write that stopped half way: a header promising more than follows.
    let seg = dir.path().join(&segments(dir.path())[0]);
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 1, b'x']).unwrap();
    drop(f);
    let (wal, seen, stats) = reopen(dir.path());
    assert_eq!(seen, ["one", "two"]);
    assert_eq!(stats.truncated_bytes, 10);
    assert!(stats.truncated_at.is_some());
    wal.append(vec![b"three".to_vec()]).durable().await.unwrap();
    drop(wal);
    let (_, seen, stats) = reopen(dir.path());
    assert_eq!(seen, ["one", "two", "three"]);
    assert_eq!(stats.truncated_bytes, 0);
}

#[tokio::test]
async fn a_corrupt_record_ends_replay_there() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = reopen(dir.path());
    wal.append(vec![b"good".to_vec(), b"flipped".to_vec(), b"after".to_vec()])
        .durable()
        .await
        .unwrap();
    drop(wal);
    let seg = dir.path().join(&segments(dir.path())[0]);
    let mut data = fs::read(&seg).unwrap();
    // The second record starts after the first (9 header bytes + 4); flip a byte of
    // its payload.
    let at = 13 + 9 + 2;
    data[at] ^= 0xff;
    fs::write(&seg, &data).unwrap();
    let (_, seen, stats) = reopen(dir.path());
    assert_eq!(seen, ["good"]);
    assert!(stats.truncated_bytes > 0);
    assert_eq!(fs::metadata(&seg).unwrap().len(), 13);
}

#[tokio::test]
async fn checkpoints_replace_what_came_before_them() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = reopen(dir.path());
    wal.append(vec![b"x".to_vec()]).durable().await.unwrap();
    wal.checkpoint(b"state-after-x".to_vec()).durable().await.unwrap();
    wal.append(vec![b"y".to_vec()]).durable().await.unwrap();
    drop(wal);
    let files = segments(dir.path());
    assert_eq!(files.iter().filter(|f| f.ends_with(".seg")).count(), 1, "{files:?}");
    assert_eq!(
        files.iter().filter(|f| f.starts_with("checkpoint.")).count(),
        1,
        "{files:?}"
    );
    let (wal, seen, stats) = reopen(dir.path());
    assert_eq!(seen, ["ck:state-after-x", "y"]);
    assert!(stats.checkpoint);
    // A second checkpoint removes the first.
    wal.checkpoint(b"state-2".to_vec()).durable().await.unwrap();
    drop(wal);
    let (_, seen, _) = reopen(dir.path());
    assert_eq!(seen, ["ck:state-2"]);
}

#[tokio::test]
async fn segments_rotate_by_size_and_replay_across_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = WalOptions::new(dir.path());
    opts.segment_bytes = 100;
    let (wal, _) = Wal::open(opts, |_| {}).unwrap();
    for i in 0..50 {
        wal.append(vec![format!("record-{i:03}").into_bytes()])
            .durable()
            .await
            .unwrap();
    }
    drop(wal);
    assert!(segments(dir.path()).len() > 5);
    let (_, seen, stats) = reopen(dir.path());
    assert_eq!(seen.len(), 50);
    assert_eq!(seen[49], "record-049");
    assert!(stats.segments > 5);
}

/// Writing on the caller's thread keeps the same promises: records are durable when
/// the call returns, counted as synced, and a checkpoint written that way replaces
/// exactly what was written before it, across segments.
#[test]
fn records_written_on_the_callers_thread_and_their_checkpoints_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = WalOptions::new(dir.path());
    opts.segment_bytes = 64;
    let (wal, _) = Wal::open(opts, |_| {}).unwrap();
    for i in 0..20 {
        wal.append_now(vec![format!("before-{i:02}").into_bytes()]).unwrap();
    }
    assert_eq!(wal.counters().syncs.load(Ordering::Relaxed), 20);
    wal.checkpoint_now(b"state".to_vec()).durable_blocking().unwrap();
    wal.append_now(vec![b"after-1".to_vec(), b"after-2".to_vec()]).unwrap();
    // Dropped without closing: what a crash leaves.
    drop(wal);
    let (_, seen, stats) = reopen(dir.path());
    assert_eq!(seen, ["ck:state", "after-1", "after-2"]);
    assert!(stats.checkpoint);
    assert_eq!(stats.truncated_bytes, 0);
}
