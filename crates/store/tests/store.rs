//! Store behaviour through its public API, on a real DuckDB file in a temp directory.

use std::time::Duration;

use prometheus_client::registry::Registry;
use sextant_model::{Labels, MatchOp, Matcher, MetricMetadata, MetricType, Sample, time::now_ms};
use sextant_store::{AppendRequest, ErrorKind, MetricsStore, RevisionRow, SeriesSamples, SliceFilter, StoreOptions};

fn labels(name: &str, job: &str) -> Labels {
    Labels::from_pairs([("__name__", name), ("job", job)]).unwrap()
}

fn series(name: &str, job: &str, samples: &[(i64, f64)]) -> SeriesSamples {
    SeriesSamples {
        labels: labels(name, job),
        samples: samples.iter().map(|(t, v)| Sample::new(*t, *v)).collect(),
    }
}

fn open(dir: &std::path::Path) -> MetricsStore {
    let mut opts = StoreOptions::new(dir);
    opts.retention = None;
    MetricsStore::open(opts, &mut Registry::default()).unwrap()
}

fn eq(name: &str, value: &str) -> Matcher {
    Matcher::new(MatchOp::Equal, name, value).unwrap()
}

#[tokio::test]
async fn append_select_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let req = AppendRequest {
        series: vec![
            series("up", "a", &[(1000, 1.0), (16_000, 0.0)]),
            series("up", "b", &[(1000, 1.0)]),
            // Crosses a two-hour block boundary.
            series("x", "a", &[(7_199_000, 5.0), (7_201_000, 6.0)]),
        ],
        by_ref: vec![],
        samples_by_ref: vec![],
        metadata: vec![(
            "up".into(),
            MetricMetadata {
                metric_type: MetricType::Gauge,
                help: "target up".into(),
                unit: String::new(),
            },
        )],
    };
    let out = store.append(req).await.unwrap();
    assert_eq!((out.accepted, out.new_series), (5, 3));

    let got = store.select(&[eq("__name__", "up")], 0, 20_000).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].labels.get("job"), Some("a"));
    assert_eq!(got[0].samples, vec![Sample::new(1000, 1.0), Sample::new(16_000, 0.0)]);
    let x = store.select(&[eq("__name__", "x")], 0, i64::MAX).await.unwrap();
    assert_eq!(x[0].samples.len(), 2);
    assert_eq!(store.label_values("job", &[], 0, i64::MAX), vec!["a", "b"]);
    assert_eq!(
        store.label_names(&[vec![eq("__name__", "x")]], 0, i64::MAX),
        vec!["__name__", "job"]
    );
    // start/end filter: only x has samples after 20s.
    assert_eq!(store.series(&[], 20_000, i64::MAX).len(), 1);
    store.close().await.unwrap();
    drop(store);

    let store = open(dir.path());
    assert_eq!(store.series_count(), 3);
    let got = store
        .select(&[eq("__name__", "up"), eq("job", "a")], 0, 20_000)
        .await
        .unwrap();
    assert_eq!(got[0].samples.len(), 2);
    assert_eq!(store.metadata(Some("up"), None)["up"][0].help, "target up");
    // Registry state survived: the newest sample is known, so an older one is refused.
    let out = store
        .append(AppendRequest {
            series: vec![series("up", "a", &[(15_000, 3.0)])],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(out.out_of_order, 1);
    store.close().await.unwrap();
}

#[tokio::test]
async fn duplicate_and_out_of_order_rule() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let first = AppendRequest {
        series: vec![series("m", "a", &[(1000, 1.0), (2000, 2.0)])],
        ..Default::default()
    };
    store.append(first.clone()).await.unwrap();
    // A retry of the same request is harmless.
    let retry = store.append(first).await.unwrap();
    assert_eq!((retry.accepted, retry.duplicates), (0, 1), "{retry:?}");
    assert_eq!(retry.out_of_order, 1, "the older sample of the retry is out of order");
    let mixed = store
        .append(AppendRequest {
            series: vec![series("m", "a", &[(2000, 9.0), (500, 1.0), (3000, 3.0)])],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (mixed.accepted, mixed.duplicate_conflicts, mixed.out_of_order),
        (1, 1, 1)
    );
    let got = store.select(&[eq("__name__", "m")], 0, 10_000).await.unwrap();
    let values: Vec<f64> = got[0].samples.iter().map(|s| s.v).collect();
    assert_eq!(values, vec![1.0, 2.0, 3.0]);
    store.close().await.unwrap();
}

#[tokio::test]
async fn invalid_series_rejects_the_whole_request() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let bad = SeriesSamples {
        labels: Labels::from_pairs([("job", "x")]).unwrap(),
        samples: vec![Sample::new(1, 1.0)],
    };
    let err = store
        .append(AppendRequest {
            series: vec![series("ok", "a", &[(1, 1.0)]), bad],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadInput);
    assert_eq!(store.series_count(), 0, "nothing of a rejected request is stored");
    store.close().await.unwrap();
}

#[tokio::test]
async fn retention_drops_old_blocks_and_refuses_old_samples() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = StoreOptions::new(dir.path());
    opts.retention = Some(Duration::from_secs(3600));
    let store = MetricsStore::open(opts, &mut Registry::default()).unwrap();
    let now = now_ms();
    let out = store
        .append(AppendRequest {
            series: vec![series("r", "a", &[(now - 2 * 3_600_000, 1.0), (now, 2.0)])],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((out.accepted, out.too_old), (1, 1));
    store.close().await.unwrap();

    // Write old data with retention off, then reopen with retention on and enforce it.
    let store = open(dir.path());
    let old = now - 10 * 3_600_000;
    store
        .append(AppendRequest {
            series: vec![series("old", "a", &[(old, 1.0)])],
            ..Default::default()
        })
        .await
        .unwrap();
    store.close().await.unwrap();
    let mut opts = StoreOptions::new(dir.path());
    opts.retention = Some(Duration::from_secs(3600));
    let store = MetricsStore::open(opts, &mut Registry::default()).unwrap();
    assert!(store.enforce_retention().await.unwrap() >= 1);
    assert!(
        store
            .select(&[eq("__name__", "old")], 0, i64::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.select(&[eq("__name__", "r")], 0, i64::MAX).await.unwrap()[0]
            .samples
            .len(),
        1
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn concurrent_appends_are_group_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let samples: Vec<(i64, f64)> = (0..100).map(|t| (t * 1000, t as f64)).collect();
            store
                .append(AppendRequest {
                    series: vec![series("c", &format!("j{i}"), &samples)],
                    ..Default::default()
                })
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().accepted, 100);
    }
    let got = store.select(&[eq("__name__", "c")], 0, i64::MAX).await.unwrap();
    assert_eq!(got.len(), 64);
    assert!(got.iter().all(|s| s.samples.len() == 100));
    store.close().await.unwrap();
    assert_eq!(
        store
            .append(AppendRequest {
                series: vec![series("c", "z", &[(1, 1.0)])],
                ..Default::default()
            })
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Unavailable
    );
}

/// Values that must survive compaction bit for bit.
fn awkward_values() -> Vec<f64> {
    vec![
        0.0,
        -0.0,
        1.0,
        2.0,
        2.5,
        f64::NAN,
        sextant_model::stale_nan(),
        f64::INFINITY,
        f64::NEG_INFINITY,
        9_007_199_254_740_992.0, // 2^53
        -3.0,
        -3.25,
        1e300,
        5e-324,
        123_456_789.0,
        123_456_790.0,
        7.0,
        7.0,
        0.1,
        502.94,
        502.95,
        502.97,
        0.3,
        0.1 + 0.2, // not a short decimal in binary: stays a double
        114.90767,
        114.907671,
        1e-7,
        -12.5,
        -12.25,
        2.0,
        1.23456789,
        4_503_599_627_370_496.5,
    ]
}

#[tokio::test]
async fn compaction_round_trips_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // An old block (2023), irregular gaps, three series with different value mixes.
    let base = 1_700_000_000_000 - 1_700_000_000_000 % (2 * 3_600_000);
    let mut want: Vec<SeriesSamples> = Vec::new();
    for (k, job) in ["a", "b", "c"].iter().enumerate() {
        let values: Vec<f64> = match k {
            0 => awkward_values(),
            1 => (0..500).map(|i| (i * 7) as f64).collect(),
            _ => (0..500).map(|i| (i as f64 * 0.37).sin()).collect(),
        };
        let samples: Vec<Sample> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Sample::new(base + (i as i64) * 15_000 + (i as i64 % 3), *v))
            .collect();
        want.push(SeriesSamples {
            labels: labels("comp", job),
            samples,
        });
    }
    store
        .append(AppendRequest {
            series: want.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    // 500 samples 15 s apart span two 2-hour blocks.
    assert_eq!(store.compact_before(i64::MAX).await.unwrap(), 2);
    assert_eq!(
        store.compact_before(i64::MAX).await.unwrap(),
        0,
        "nothing raw left to compact"
    );

    let check = |got: Vec<sextant_store::SeriesData>, want: &[SeriesSamples]| {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!(*g.labels, w.labels);
            assert_eq!(g.samples.len(), w.samples.len(), "{}", w.labels);
            for (a, b) in g.samples.iter().zip(&w.samples) {
                assert_eq!(a.t_ms, b.t_ms);
                assert_eq!(
                    a.v.to_bits(),
                    b.v.to_bits(),
                    "{} at {}: {} vs {}",
                    w.labels,
                    a.t_ms,
                    a.v,
                    b.v
                );
            }
        }
    };
    check(
        store.select(&[eq("__name__", "comp")], 0, i64::MAX).await.unwrap(),
        &want,
    );
    // A time range inside the block.
    let part = store
        .select(&[eq("__name__", "comp"), eq("job", "b")], base + 15_000, base + 45_000)
        .await
        .unwrap();
    let times: Vec<i64> = part[0].samples.iter().map(|s| s.t_ms - base).collect();
    assert_eq!(times, vec![15_001, 30_002, 45_000]);

    // New samples for the compacted block (a new series, and newer samples of an old one)
    // land in a raw table again; reads merge both; the next compaction merges them.
    let late = vec![
        SeriesSamples {
            labels: labels("comp", "d"),
            samples: vec![Sample::new(base + 10, 1.0), Sample::new(base + 20, 1.5)],
        },
        SeriesSamples {
            labels: labels("comp", "b"),
            samples: vec![Sample::new(base + 600 * 15_000, 42.0)],
        },
    ];
    store
        .append(AppendRequest {
            series: late.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    want[1].samples.extend(late[1].samples.clone());
    want.push(late[0].clone());
    check(
        store.select(&[eq("__name__", "comp")], 0, i64::MAX).await.unwrap(),
        &want,
    );
    assert_eq!(
        store.compact_before(i64::MAX).await.unwrap(),
        2,
        "both blocks got late samples"
    );
    check(
        store.select(&[eq("__name__", "comp")], 0, i64::MAX).await.unwrap(),
        &want,
    );
    store.close().await.unwrap();
    drop(store);

    // After a restart: data and per-series bounds come from the compacted tables.
    let store = open(dir.path());
    check(
        store.select(&[eq("__name__", "comp")], 0, i64::MAX).await.unwrap(),
        &want,
    );
    let out = store
        .append(AppendRequest {
            series: vec![series("comp", "b", &[(base + 15_000, 1.0)])],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(out.out_of_order, 1, "the newest sample is known after restart");
    store.close().await.unwrap();
}

mod compaction_props {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            (-1_000_000i64..1_000_000, 0u32..8).prop_map(|(n, k)| n as f64 / 10f64.powi(k as i32)),
            any::<i32>().prop_map(f64::from),
            any::<f64>(),
            any::<u64>().prop_map(f64::from_bits),
            Just(sextant_model::stale_nan()),
            Just(-0.0),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Whatever the values and gaps, compaction returns the same bits.
        #[test]
        fn compaction_is_lossless(values in proptest::collection::vec(value(), 1..300), gaps in proptest::collection::vec(1i64..40_000, 300)) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let store = open(dir.path());
                let mut t = 1_600_000_000_000i64;
                let samples: Vec<Sample> = values.iter().zip(&gaps).map(|(v, g)| { t += g; Sample::new(t, *v) }).collect();
                store.append(AppendRequest { series: vec![SeriesSamples { labels: labels("p", "x"), samples: samples.clone() }], ..Default::default() }).await.unwrap();
                store.compact_before(i64::MAX).await.unwrap();
                let got = store.select(&[eq("__name__", "p")], 0, i64::MAX).await.unwrap();
                let got: Vec<(i64, u64)> = got[0].samples.iter().map(|s| (s.t_ms, s.v.to_bits())).collect();
                let want: Vec<(i64, u64)> = samples.iter().map(|s| (s.t_ms, s.v.to_bits())).collect();
                store.close().await.unwrap();
                prop_assert_eq!(got, want);
                Ok(())
            })?;
        }
    }
}

#[tokio::test]
async fn append_by_reference() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let out = store
        .append(AppendRequest {
            series: vec![series("r", "a", &[(1000, 1.0)]), series("r", "b", &[(1000, 2.0)])],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(out.refs.len(), 2);
    let by_ref = vec![
        (out.refs[1], vec![Sample::new(2000, 3.0)]),
        (out.refs[0], vec![Sample::new(2000, 4.0)]),
    ];
    let again = store
        .append(AppendRequest {
            by_ref,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((again.accepted, again.new_series), (2, 0));
    assert!(again.refs.is_empty(), "refs come back for labeled series only");
    let got = store
        .select(&[eq("__name__", "r"), eq("job", "b")], 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(got[0].samples, vec![Sample::new(1000, 2.0), Sample::new(2000, 3.0)]);
    // The same series by labels gets the same reference back.
    let same = store
        .append(AppendRequest {
            series: vec![series("r", "b", &[(3000, 5.0)])],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(same.refs, vec![out.refs[1]]);
    store.close().await.unwrap();
    drop(store);

    // References stay valid across restarts; a reference from another store is refused.
    let store = open(dir.path());
    let ok = store
        .append(AppendRequest {
            by_ref: vec![(out.refs[0], vec![Sample::new(5000, 1.0)])],
            ..Default::default()
        })
        .await;
    assert_eq!(ok.unwrap().accepted, 1);
    // Single samples by reference, a series more than once, in order; the rule for
    // older samples applies as for any other append.
    let singles = store
        .append(AppendRequest {
            samples_by_ref: vec![
                (out.refs[0], Sample::new(6000, 2.0)),
                (out.refs[1], Sample::new(6000, 7.0)),
                (out.refs[0], Sample::new(7000, 3.0)),
                (out.refs[0], Sample::new(6500, 9.0)),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((singles.accepted, singles.out_of_order), (3, 1));
    let a = store
        .select(&[eq("__name__", "r"), eq("job", "a")], 5000, 7000)
        .await
        .unwrap();
    assert_eq!(
        a[0].samples,
        vec![Sample::new(5000, 1.0), Sample::new(6000, 2.0), Sample::new(7000, 3.0)]
    );
    let other = tempfile::tempdir().unwrap();
    let empty = open(other.path());
    let err = empty
        .append(AppendRequest {
            by_ref: vec![(out.refs[1], vec![Sample::new(1, 1.0)])],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadInput);
    let err = empty
        .append(AppendRequest {
            samples_by_ref: vec![(out.refs[1], Sample::new(1, 1.0))],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadInput);
    store.close().await.unwrap();
    empty.close().await.unwrap();
}

/// SLO slices: appended durably, summed per window in one scan, kept across a reopen,
/// deleted by their own retention.
#[tokio::test]
async fn slo_slices_sum_per_window_and_survive_reopen() {
    use sextant_store::SliceRow;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let minute = 60_000;
    let mut rows = Vec::new();
    for i in 1..=120 {
        // One bad event in ten, and a slice with a 50% error ratio every 30 minutes.
        let bad = if i % 30 == 0 { 50.0 } else { 10.0 };
        rows.push(SliceRow {
            sli: "a".into(),
            t_ms: i * minute,
            bad,
            total: 100.0,
        });
    }
    rows.push(SliceRow {
        sli: "b".into(),
        t_ms: 120 * minute,
        bad: 0.0,
        total: 0.0,
    });
    store.append_slices(rows, Vec::new()).await.unwrap();
    let sums = store
        .slice_sums(120 * minute, vec![5 * minute, 60 * minute], SliceFilter::All, Some(0.8))
        .await
        .unwrap();
    let a = &sums["a"];
    // The last 5 minutes hold slice 120 (50 bad) and four of 10.
    assert_eq!(
        (a[0].bad, a[0].total, a[0].slices, a[0].bad_slices),
        (90.0, 500.0, 5, 1)
    );
    assert_eq!(
        (a[1].bad, a[1].total, a[1].slices, a[1].bad_slices),
        (680.0, 6000.0, 60, 2)
    );
    assert_eq!(sums["b"][0].slices, 1, "a slice with data but no events is covered");
    let revision = RevisionRow {
        sli: "a".into(),
        definition: "events: x / y".into(),
        created_ms: 7,
        computed_from_ms: minute,
        computed_to_ms: 120 * minute,
    };
    store.put_slo_revisions(vec![revision.clone()]).await.unwrap();
    store.close().await.unwrap();
    drop(store);

    let store = open(dir.path());
    assert_eq!(store.slo_revisions().await.unwrap(), vec![revision]);
    assert_eq!(store.slice_bounds().await.unwrap()["a"], (minute, 120 * minute));
    assert_eq!(
        store
            .slice_range("a".into(), 100 * minute, 102 * minute)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(store.drop_slices_before(60 * minute).await.unwrap(), 60);
    let only = store
        .slice_sums(
            120 * minute,
            vec![120 * minute],
            SliceFilter::Keys(vec!["a".into()]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only["a"][0].slices, 60);
    let prefixed = store
        .slice_sums(120 * minute, vec![120 * minute], SliceFilter::Prefix("b".into()), None)
        .await
        .unwrap();
    assert_eq!(prefixed.keys().collect::<Vec<_>>(), ["b"]);
}

// ---- The head and its write-ahead log ----

/// Every sample of every series, by labels, as bit patterns (so NaNs compare).
async fn everything(store: &MetricsStore) -> Vec<(String, Vec<(i64, u64)>)> {
    let all = Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap();
    let got = store.select(&[all], i64::MIN, i64::MAX).await.unwrap();
    got.into_iter()
        .map(|s| {
            (
                s.labels.to_string(),
                s.samples.iter().map(|x| (x.t_ms, x.v.to_bits())).collect(),
            )
        })
        .collect()
}

/// Copies a live data directory, as a crash would leave it: what the store wrote is
/// in the files (the page cache survives `kill -9`), nothing was closed.
fn crash_copy(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            crash_copy(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

const HOUR: i64 = 3_600_000;

#[tokio::test]
async fn head_and_blocks_read_as_one_across_flushes_and_late_samples() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Three blocks of data for two series, all in the head.
    let samples: Vec<(i64, f64)> = (0..(6 * 240)).map(|i| (i * 15_000, (i * 3) as f64 + 0.5)).collect();
    store
        .append(AppendRequest {
            series: vec![series("a", "x", &samples), series("b", "x", &samples[..500])],
            ..Default::default()
        })
        .await
        .unwrap();
    let before = everything(&store).await;
    assert_eq!(before[0].1.len(), 1440);
    // Flush the first two blocks; reads see the same samples, now from DuckDB.
    assert_eq!(store.compact_before(4 * HOUR).await.unwrap(), 2);
    assert_eq!(everything(&store).await, before);
    // A new series backfilled into a flushed block waits in the head, then is merged
    // into the block by the next flush.
    store
        .append(AppendRequest {
            series: vec![series("late", "x", &[(1000, 1.0), (2000, 2.0)])],
            ..Default::default()
        })
        .await
        .unwrap();
    let with_late = everything(&store).await;
    assert_eq!(with_late.len(), 3);
    assert_eq!(store.compact_before(4 * HOUR).await.unwrap(), 1);
    assert_eq!(everything(&store).await, with_late);
    // Rate-style read of a window across the head/block boundary.
    let window = store
        .select(&[eq("__name__", "a")], 4 * HOUR - 60_000, 4 * HOUR + 60_000)
        .await
        .unwrap();
    assert_eq!(window[0].samples.len(), 9);
    store.close().await.unwrap();
    drop(store);
    let store = open(dir.path());
    assert!(store.replay_report().checkpoint);
    assert_eq!(everything(&store).await, with_late);
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_crash_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut expected = 0;
    for round in 0..50i64 {
        let t = 1_000_000 + round * 15_000;
        let series: Vec<SeriesSamples> = (0..200)
            .map(|i| series("m", &format!("j{i}"), &[(t, (round * i) as f64)]))
            .collect();
        expected += store
            .append(AppendRequest {
                series,
                ..Default::default()
            })
            .await
            .unwrap()
            .accepted;
        if round == 25 {
            // A flush in the middle: part of the data is in DuckDB, the log checkpointed.
            store.compact_before(i64::MAX).await.unwrap();
        }
    }
    let want = everything(&store).await;
    assert_eq!(want.iter().map(|s| s.1.len() as u64).sum::<u64>(), expected);
    let copy = tempfile::tempdir().unwrap();
    crash_copy(dir.path(), copy.path());
    let recovered = open(copy.path());
    assert!(recovered.replay_report().records > 0);
    assert_eq!(recovered.replay_report().truncated_bytes, 0);
    assert_eq!(everything(&recovered).await, want);
    recovered.close().await.unwrap();
    store.close().await.unwrap();
}

fn segments(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_torn_or_corrupt_log_is_cut_there_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut sizes = Vec::new();
    for round in 0..3i64 {
        store
            .append(AppendRequest {
                series: vec![series("m", "a", &[(round * 1000 + 1, round as f64)])],
                ..Default::default()
            })
            .await
            .unwrap();
        sizes.push(std::fs::metadata(segments(dir.path()).last().unwrap()).unwrap().len());
    }
    let samples = |s: &[(String, Vec<(i64, u64)>)]| s.first().map_or(0, |x| x.1.len());

    // Torn: the last record lost its last bytes.
    let torn = tempfile::tempdir().unwrap();
    crash_copy(dir.path(), torn.path());
    let seg = segments(torn.path()).pop().unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(sizes[2] - 5).unwrap();
    let s = open(torn.path());
    assert_eq!(s.replay_report().truncated_bytes, sizes[2] - 5 - sizes[1]);
    assert!(s.replay_report().truncated_at.is_some());
    assert_eq!(samples(&everything(&s).await), 2);
    // The store goes on from there.
    s.append(AppendRequest {
        series: vec![series("m", "a", &[(9000, 9.0)])],
        ..Default::default()
    })
    .await
    .unwrap();
    s.close().await.unwrap();
    let s = open(torn.path());
    assert_eq!(s.replay_report().truncated_bytes, 0);
    assert_eq!(samples(&everything(&s).await), 3);
    s.close().await.unwrap();

    // Corrupt: one flipped byte in the middle record's payload.
    let flipped = tempfile::tempdir().unwrap();
    crash_copy(dir.path(), flipped.path());
    let seg = segments(flipped.path()).pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = (sizes[0] + (sizes[1] - sizes[0]) / 2) as usize;
    bytes[at] ^= 0x40;
    std::fs::write(&seg, bytes).unwrap();
    let s = open(flipped.path());
    assert_eq!(s.replay_report().truncated_bytes, sizes[2] - sizes[0]);
    assert_eq!(samples(&everything(&s).await), 1);
    s.close().await.unwrap();
    store.close().await.unwrap();
}

/// Copies the checked-in data directory `tests/fixtures/<name>` (its database
/// gzipped) into `dir`.
fn unpack_fixture(name: &str, dir: &std::path::Path) {
    use std::io::Read;
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::copy(fixture.join("FORMAT"), dir.join("FORMAT")).unwrap();
    let mut db = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(fixture.join("metrics.duckdb.gz")).unwrap())
        .read_to_end(&mut db)
        .unwrap();
    std::fs::write(dir.join("metrics.duckdb"), db).unwrap();
    if fixture.join("wal").exists() {
        std::fs::create_dir(dir.join("wal")).unwrap();
        for f in std::fs::read_dir(fixture.join("wal")).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), dir.join("wal").join(f.file_name())).unwrap();
        }
    }
}

/// Opens a directory of an older format unpacked into `dir`, which holds three series
/// of 600 samples from 2026-01-01 (`up` always 1, the two others decimals), and checks
/// that it is upgraded, that every sample reads back bit for bit, and that it takes
/// new samples that survive a reopen.
async fn check_upgrade(dir: &std::path::Path, from: u32) {
    assert_eq!(
        std::fs::read_to_string(dir.join("FORMAT")).unwrap(),
        format!("sextant-data {from}\n")
    );
    let store = open(dir);
    assert_eq!(
        std::fs::read_to_string(dir.join("FORMAT")).unwrap(),
        format!("sextant-data {}\n", sextant_store::FORMAT_VERSION)
    );
    let t0 = 1_767_225_600_000i64;
    let got = everything(&store).await;
    assert_eq!(got.len(), 3);
    for (labels, samples) in &got {
        let name = labels.split('{').next().unwrap();
        let want: Vec<(i64, u64)> = (0..600)
            .map(|i| {
                let v = if name == "up" {
                    1.0
                } else {
                    (i * 7) as f64 + 0.25 * (i % 3) as f64
                };
                (t0 + i * 15_000, v.to_bits())
            })
            .collect();
        assert_eq!(samples, &want, "{labels}");
    }
    assert_eq!(store.metadata(Some("up"), None)["up"][0].help, "target up");
    let out = store
        .append(AppendRequest {
            series: vec![series("up", "node", &[(t0 + 600 * 15_000, 0.0)])],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(out.accepted, 1);
    // The upgraded blocks are flushed to and read back from the current layout.
    store.compact_before(t0 + 4 * 7_200_000).await.unwrap();
    store.close().await.unwrap();
    let store = open(dir);
    let got = everything(&store).await;
    assert_eq!(got.iter().map(|s| s.1.len()).sum::<usize>(), 1801);
    let up = got.iter().find(|(l, _)| l.starts_with("up{") && l.contains("\"node\""));
    assert_eq!(
        up.and_then(|(_, s)| s.last()),
        Some(&(t0 + 600 * 15_000, 0f64.to_bits())),
        "{got:?}"
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_format_2_directory_is_upgraded_in_place() {
    // Written by the format-2 store: the first two-hour block compacted into rows of
    // one sample each, the rest in a raw table.
    let dir = tempfile::tempdir().unwrap();
    unpack_fixture("format2", dir.path());
    check_upgrade(dir.path(), 2).await;
}

#[tokio::test]
async fn a_format_3_directory_is_upgraded_in_place() {
    // Written by the format-3 store: the first two-hour block in rows of one sample
    // each, the rest in the head, held by the write-ahead log's checkpoint.
    let dir = tempfile::tempdir().unwrap();
    unpack_fixture("format3", dir.path());
    check_upgrade(dir.path(), 3).await;
}

#[tokio::test]
async fn a_format_4_directory_with_fixed_width_log_entries_is_opened() {
    // Written by the format-4 store of e5b98aa, whose log records held samples at fixed
    // width: the first two-hour block flushed to DuckDB and the log checkpointed at a
    // clean stop, then the last 120 samples of each series appended by a second run
    // that exited without closing, so they are only in the log's records, as `kill -9`
    // leaves them. Replay must read those entries as earlier binaries wrote them.
    let dir = tempfile::tempdir().unwrap();
    unpack_fixture("format4", dir.path());
    check_upgrade(dir.path(), 4).await;
}

#[tokio::test]
async fn the_head_series_limit_refuses_new_series_with_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = StoreOptions::new(dir.path());
    opts.retention = None;
    opts.max_head_series = Some(2);
    let store = MetricsStore::open(opts, &mut Registry::default()).unwrap();
    store
        .append(AppendRequest {
            series: vec![series("a", "x", &[(1, 1.0)]), series("b", "x", &[(1, 1.0)])],
            ..Default::default()
        })
        .await
        .unwrap();
    let err = store
        .append(AppendRequest {
            series: vec![series("c", "x", &[(2, 1.0)])],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("max_head_series"), "{err}");
    // Series already in the head still take samples.
    let out = store
        .append(AppendRequest {
            series: vec![series("a", "x", &[(2, 2.0)])],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(out.accepted, 1);
    // Once their block is flushed the head has room again.
    store.compact_before(i64::MAX).await.unwrap();
    store
        .append(AppendRequest {
            series: vec![series("c", "x", &[(3, 1.0)])],
            ..Default::default()
        })
        .await
        .unwrap();
    store.close().await.unwrap();
}

/// A full disk during appends: the appends that cannot be logged fail with a 503's
/// kind, nothing acknowledged is lost, and appends succeed again once there is room.
/// Needs a small file system: a tmpfs mounted for the test (root, as CI runs).
#[tokio::test]
async fn a_full_disk_refuses_appends_and_recovers() {
    use nix::mount::{MntFlags, MsFlags, mount, umount2};
    let dir = tempfile::tempdir().unwrap();
    if let Err(e) = mount(
        Some("tmpfs"),
        dir.path(),
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=8m"),
    ) {
        panic!("this test mounts a small tmpfs and needs root (CAP_SYS_ADMIN): {e}");
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = umount2(&self.0, MntFlags::MNT_DETACH);
        }
    }
    let _unmount = Unmount(dir.path().to_path_buf());
    let data = dir.path().join("data");
    let store = open(&data);
    // Leave little room.
    let filler = dir.path().join("filler");
    let free = nix::sys::statvfs::statvfs(dir.path()).unwrap();
    let room = free.blocks_available() * free.fragment_size();
    std::fs::write(&filler, vec![1u8; (room - 64 * 1024) as usize]).unwrap();

    let mut acknowledged = 0u64;
    let mut refused = Vec::new();
    let round_of = |round: i64| AppendRequest {
        series: (0..100)
            .map(|i| series("m", &format!("j{i}"), &[(1 + round * 1000, round as f64)]))
            .collect(),
        ..Default::default()
    };
    for round in 0..200i64 {
        match store.append(round_of(round)).await {
            Ok(o) => acknowledged += o.accepted,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
                assert!(refused.len() < 3, "an append was refused with room on the disk: {e}");
                refused.push(round);
                if refused.len() == 3 {
                    std::fs::remove_file(&filler).unwrap();
                    // The refused requests sent again, in order, as a remote_write
                    // sender retries them, are stored whole: nothing of a refused
                    // append counted as stored.
                    for &round in &refused {
                        let o = store.append(round_of(round)).await.unwrap();
                        assert_eq!(
                            (o.accepted, o.out_of_order + o.duplicates),
                            (100, 0),
                            "round {round} sent again"
                        );
                        acknowledged += o.accepted;
                    }
                }
            }
        }
    }
    assert_eq!(refused.len(), 3, "the disk never filled");
    assert!(acknowledged > 0);
    let got: u64 = everything(&store).await.iter().map(|s| s.1.len() as u64).sum();
    assert_eq!(got, acknowledged);
    let copy = tempfile::tempdir().unwrap();
    crash_copy(&data, copy.path());
    let recovered = open(copy.path());
    let got: u64 = everything(&recovered).await.iter().map(|s| s.1.len() as u64).sum();
    assert_eq!(got, acknowledged, "acknowledged samples lost over a crash");
    recovered.close().await.unwrap();
    store.close().await.unwrap();
}

#[tokio::test]
async fn retention_reuses_the_space_of_dropped_blocks() {
    // Blocks written and dropped cycle after cycle: the database file stops growing
    // once it holds the blocks kept, since each dropped block's space is reused.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let block_ms = 7_200_000i64;
    let t0 = 1_767_225_600_000i64;
    let mut sizes = Vec::new();
    for c in 0..10i64 {
        let start = t0 + c * block_ms;
        let series: Vec<SeriesSamples> = (0..300)
            .map(|i| {
                let samples: Vec<(i64, f64)> = (0..480)
                    .map(|k| {
                        (
                            start + k * 15_000,
                            ((c * 480 + k) * (i + 1)) as f64 / 1000.0 + 0.5 * (k % 3) as f64,
                        )
                    })
                    .collect();
                series("churn", &i.to_string(), &samples)
            })
            .collect();
        store
            .append(AppendRequest {
                series,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(store.compact_before(start + block_ms).await.unwrap(), 1);
        store.drop_blocks_before(start - block_ms).await.unwrap();
        sizes.push(std::fs::metadata(dir.path().join("metrics.duckdb")).unwrap().len());
    }
    // Two blocks kept from cycle 1 on; the file is at its steady size by cycle 3.
    assert!(sizes[9] <= sizes[3], "the file kept growing: {sizes:?}");
    assert_eq!(
        everything(&store).await.iter().map(|s| s.1.len()).sum::<usize>(),
        300 * 480 * 2
    );
    store.close().await.unwrap();
}
