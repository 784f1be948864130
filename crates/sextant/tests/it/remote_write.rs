//! The remote_write receiver over real HTTP: status codes, limits, the duplicate and
//! out-of-order rule, and durability of acknowledged writes across `kill -9`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::{Sextant, client, eq, get_json, open_store, wait_for};
use sextant_collect::remote_write::{LabelProto, SampleProto, TimeSeries, WriteRequest, encode};

const NO_SCRAPES: &str = "storage:\n  retention: 0s\nserver:\n  remote_write_max_compressed_bytes: 64KiB\n";

pub(crate) fn series(name: &str, labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    let mut l = vec![LabelProto {
        name: "__name__".into(),
        value: name.into(),
    }];
    l.extend(labels.iter().map(|(k, v)| LabelProto {
        name: (*k).into(),
        value: (*v).into(),
    }));
    TimeSeries {
        labels: l,
        samples: samples
            .iter()
            .map(|(t, v)| SampleProto {
                value: *v,
                timestamp: *t,
            })
            .collect(),
        exemplars: vec![],
    }
}

pub(crate) async fn post(sx: &Sextant, body: Vec<u8>) -> (u16, String, Option<String>) {
    let r = client()
        .post(sx.url("/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .await
        .unwrap();
    let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), r.text().await.unwrap(), retry)
}

#[tokio::test(flavor = "multi_thread")]
async fn status_codes_and_rules() {
    let dir = tempfile::tempdir().unwrap();
    let sx = Sextant::start(&dir.path().join("data"), Some(NO_SCRAPES)).await;
    let ok = WriteRequest {
        timeseries: vec![series("rw_metric", &[("job", "w")], &[(1000, 1.0), (2000, 2.0)])],
        metadata: vec![],
    };
    assert_eq!(post(&sx, encode(&ok)).await.0, 204);
    // Re-sending the newest sample is ignored (204); as in Prometheus 2.42's head, an
    // older sample is out of order even when it repeats a stored one.
    let newest = WriteRequest {
        timeseries: vec![series("rw_metric", &[("job", "w")], &[(2000, 2.0)])],
        metadata: vec![],
    };
    assert_eq!(post(&sx, encode(&newest)).await.0, 204);
    let (code, text, _) = post(&sx, encode(&ok)).await;
    assert_eq!(code, 400);
    assert!(
        text.contains("0 samples stored") && text.contains("1 out of order"),
        "{text}"
    );
    let conflict = WriteRequest {
        timeseries: vec![series("rw_metric", &[("job", "w")], &[(2000, 5.0)])],
        metadata: vec![],
    };
    let (code, text, _) = post(&sx, encode(&conflict)).await;
    assert_eq!(code, 400);
    assert!(text.contains("1 duplicate timestamps with different values"), "{text}");
    let s = get_json(&sx.url("/api/v1/series?match[]=rw_metric")).await;
    assert_eq!(s["data"][0]["job"], "w");

    // Garbage: 400 with a reason.
    let (code, text, _) = post(&sx, b"definitely not snappy".to_vec()).await;
    assert_eq!(code, 400);
    assert!(text.contains("snappy"), "{text}");
    // Valid snappy, invalid protobuf.
    let (code, text, _) = post(&sx, snap::raw::Encoder::new().compress_vec(&[0xff; 32]).unwrap()).await;
    assert_eq!((code, text.contains("protobuf")), (400, true), "{text}");
    // Invalid series: 400 and nothing of the request stored.
    let bad = WriteRequest {
        timeseries: vec![
            series("fine", &[], &[(1000, 1.0)]),
            series("bad", &[("0x", "y")], &[(1000, 1.0)]),
        ],
        metadata: vec![],
    };
    let (code, text, _) = post(&sx, encode(&bad)).await;
    assert_eq!(code, 400, "{text}");
    assert_eq!(
        get_json(&sx.url("/api/v1/series?match[]=fine")).await["data"],
        serde_json::json!([])
    );
    // Out of order: 400 naming the count; the in-order samples of the same request are stored.
    let ooo = WriteRequest {
        timeseries: vec![
            series("rw_metric", &[("job", "w")], &[(500, 9.0)]),
            series("rw_other", &[], &[(1000, 1.0)]),
        ],
        metadata: vec![],
    };
    let (code, text, _) = post(&sx, encode(&ooo)).await;
    assert_eq!(code, 400);
    assert!(text.contains("1 out of order"), "{text}");
    assert_eq!(
        get_json(&sx.url("/api/v1/series?match[]=rw_other")).await["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Over the compressed limit (64KiB here): 413 before decompressing.
    // Pseudo-random label values, so snappy cannot shrink the body under the limit.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let big: Vec<TimeSeries> = (0..4000)
        .map(|i| {
            let pad: String = (0..4)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    format!("{x:016x}")
                })
                .collect();
            series("big", &[("i", &i.to_string()), ("pad", &pad)], &[(1000, i as f64)])
        })
        .collect();
    let body = encode(&WriteRequest {
        timeseries: big,
        metadata: vec![],
    });
    assert!(body.len() > 64 << 10, "test body must exceed the limit: {}", body.len());
    let (code, text, _) = post(&sx, body).await;
    assert_eq!(code, 413, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_writes_survive_kill_9() {
    const WRITERS: usize = 6;
    const REQUESTS: usize = 40;
    const SERIES: usize = 50;
    const SAMPLES: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sx = Sextant::start(&data, Some(NO_SCRAPES)).await;
    let url = sx.url("/api/v1/write");
    let acked: Arc<std::sync::Mutex<Vec<(usize, usize)>>> = Arc::default();
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (url, acked, done) = (url.clone(), acked.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let http = client();
            for r in 0..REQUESTS {
                let body = durable_request(w, r, SERIES, SAMPLES);
                match http.post(&url).body(body).send().await {
                    Ok(resp) if resp.status() == 204 => {
                        acked.lock().unwrap().push((w, r));
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                    // The server was killed mid-request: not acknowledged, not checked.
                    _ => return,
                }
            }
        }));
    }
    // Kill while writes are in flight, after a good number were acknowledged.
    while done.load(Ordering::SeqCst) < WRITERS * REQUESTS / 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sx.kill9();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= WRITERS * REQUESTS / 2);

    let store = open_store(&data);
    let stored = stored_durable(&store).await;
    let mut checked = 0;
    for (w, r) in &acked {
        checked += assert_acknowledged(&stored, *w, *r, SERIES, SAMPLES);
    }
    assert_eq!(checked, acked.len() * SERIES * SAMPLES);
    store.close().await.unwrap();
    drop(store);

    // And the binary restarts on the same directory and serves them.
    let sx = Sextant::start(&data, Some(NO_SCRAPES)).await;
    let s = get_json(&sx.url("/api/v1/series?match[]=durable")).await;
    let n = s["data"].as_array().unwrap().len();
    assert!(n >= SERIES, "{n} series after restart");
    assert!(sx.terminate().success());
}

fn value(w: usize, r: usize, s: usize, k: usize) -> f64 {
    (w * 1_000_000 + r * 10_000 + s * 10 + k) as f64 + 0.25
}

/// Writer `w`'s request number `r` of the durability tests: `series` series named
/// `durable`, each with `samples` samples at `(r * samples + k)` seconds.
fn durable_request(w: usize, r: usize, series_count: usize, samples: usize) -> Vec<u8> {
    let timeseries = (0..series_count)
        .map(|s| {
            let points: Vec<(i64, f64)> = (0..samples)
                .map(|k| (((r * samples + k) as i64) * 1000, value(w, r, s, k)))
                .collect();
            series("durable", &[("writer", &w.to_string()), ("s", &s.to_string())], &points)
        })
        .collect();
    encode(&WriteRequest {
        timeseries,
        metadata: vec![],
    })
}

/// The stored `durable` series: `(writer, s)` → time → the value's bits.
async fn stored_durable(store: &sextant_store::MetricsStore) -> BTreeMap<(usize, usize), BTreeMap<i64, u64>> {
    let got = store.select(&[eq("__name__", "durable")], 0, i64::MAX).await.unwrap();
    let mut stored = BTreeMap::new();
    for s in got {
        let w: usize = s.labels.get("writer").unwrap().parse().unwrap();
        let i: usize = s.labels.get("s").unwrap().parse().unwrap();
        stored.insert((w, i), s.samples.iter().map(|x| (x.t_ms, x.v.to_bits())).collect());
    }
    stored
}

/// Asserts that every sample of writer `w`'s request `r` is stored bit for bit;
/// returns how many it checked.
fn assert_acknowledged(
    stored: &BTreeMap<(usize, usize), BTreeMap<i64, u64>>,
    w: usize,
    r: usize,
    series_count: usize,
    samples: usize,
) -> usize {
    for s in 0..series_count {
        for k in 0..samples {
            let t = ((r * samples + k) as i64) * 1000;
            let v = stored.get(&(w, s)).and_then(|m| m.get(&t)).copied();
            assert_eq!(
                v,
                Some(value(w, r, s, k).to_bits()),
                "acknowledged sample lost or changed: writer={w} req={r} series={s} t={t}"
            );
        }
    }
    series_count * samples
}

#[tokio::test(flavor = "multi_thread")]
async fn overload_answers_503_with_retry_after_and_drops_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sx = Sextant::start(&data, Some("storage:\n  retention: 0s\n  max_pending_appends: 1\n")).await;
    let url = sx.url("/api/v1/write");
    let mut tasks = Vec::new();
    for w in 0..48 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let ts: Vec<TimeSeries> = (0..2000)
                .map(|s| {
                    series(
                        "flood",
                        &[("w", &w.to_string()), ("s", &s.to_string())],
                        &[(1000, w as f64), (2000, s as f64)],
                    )
                })
                .collect();
            let r = client()
                .post(&url)
                .body(encode(&WriteRequest {
                    timeseries: ts,
                    metadata: vec![],
                }))
                .send()
                .await
                .unwrap();
            let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            (w, r.status().as_u16(), retry, r.text().await.unwrap())
        }));
    }
    let mut accepted = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (w, code, retry, text) = t.await.unwrap();
        match code {
            204 => accepted.push(w),
            503 => {
                assert_eq!(retry.as_deref(), Some("1"), "503 carries Retry-After");
                assert!(text.contains("write queue is full"), "{text}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {text}"),
        }
    }
    assert!(refused > 0, "a queue of one must overflow under 48 concurrent writers");
    assert!(!accepted.is_empty());
    let metrics = client()
        .get(sx.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "sextant_remote_write_rejected_requests_total{{reason=\"overloaded\"}} {refused}"
        )),
        "{metrics}"
    );
    assert!(sx.terminate().success());

    // Every acknowledged request is stored in full; refused ones left nothing behind.
    let store = open_store(&data);
    let got = store.select(&[eq("__name__", "flood")], 0, i64::MAX).await.unwrap();
    let mut per_writer: BTreeMap<usize, usize> = BTreeMap::new();
    for s in &got {
        assert_eq!(s.samples.len(), 2);
        *per_writer
            .entry(s.labels.get("w").unwrap().parse().unwrap())
            .or_default() += 1;
    }
    let mut want: Vec<usize> = accepted.clone();
    want.sort();
    assert_eq!(per_writer.keys().copied().collect::<Vec<_>>(), want);
    assert!(per_writer.values().all(|n| *n == 2000));
    store.close().await.unwrap();
}

/// Twenty `kill -9`s in a row, each during concurrent remote_write and scrapes, each
/// restart replaying the write-ahead log the last one left: every acknowledged
/// sample is there afterwards, bit for bit, and the scraped series read back in
/// strictly increasing time.
#[tokio::test(flavor = "multi_thread")]
async fn twenty_kill_9s_in_a_row_lose_nothing_acknowledged() {
    const KILLS: usize = 20;
    const WRITERS: usize = 4;
    const REQUESTS: usize = 1000;
    const SERIES: usize = 40;
    const SAMPLES: usize = 3;
    let config = "global:\n  scrape_interval: 250ms\nstorage:\n  retention: 0s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['{{LISTEN}}']\n";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut acked: Vec<(usize, usize, usize)> = Vec::new();
    for kill in 0..KILLS {
        let sx = Sextant::start(&data, Some(config)).await;
        // Each start has a new port, so a new `instance`: wait for its first scrape.
        let query = sx.url("/api/v1/query?query=up%7Bjob%3D%22self%22%7D");
        wait_for("the first self-scrape", Duration::from_secs(30), || {
            let (query, instance) = (query.clone(), format!("127.0.0.1:{}", sx.port));
            async move {
                let v = get_json(&query).await;
                v["data"]["result"]
                    .as_array()?
                    .iter()
                    .any(|r| r["metric"]["instance"] == instance.as_str())
                    .then_some(())
            }
        })
        .await;
        let url = sx.url("/api/v1/write");
        let round: Arc<std::sync::Mutex<Vec<(usize, usize, usize)>>> = Arc::default();
        let done = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let (url, round, done) = (url.clone(), round.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                let http = client();
                for r in 0..REQUESTS {
                    let body = durable_request(w, kill * REQUESTS + r, SERIES, SAMPLES);
                    match http.post(&url).body(body).send().await {
                        Ok(resp) if resp.status() == 204 => {
                            round.lock().unwrap().push((w, kill, r));
                            done.fetch_add(1, Ordering::SeqCst);
                        }
                        _ => return,
                    }
                }
            }));
        }
        // Kill after a varying number of acknowledgements, with writes in flight.
        let target = 20 + 7 * kill;
        while done.load(Ordering::SeqCst) < target {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        sx.kill9();
        for t in tasks {
            t.await.unwrap();
        }
        acked.extend(round.lock().unwrap().iter().copied());
    }

    let store = open_store(&data);
    let stored = stored_durable(&store).await;
    for (w, kill, r) in &acked {
        assert_acknowledged(&stored, *w, kill * REQUESTS + r, SERIES, SAMPLES);
    }
    // Scrapes went on through the kills; what they stored reads back in order.
    let up = store
        .select(&[eq("__name__", "up"), eq("job", "self")], 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(up.len(), KILLS, "one `up` series per start (a new port each time)");
    for s in &up {
        assert!(!s.samples.is_empty());
        assert!(s.samples.windows(2).all(|w| w[0].t_ms < w[1].t_ms), "{}", s.labels);
    }
    store.close().await.unwrap();
}
