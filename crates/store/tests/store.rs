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
