//! remote_write load generator for side-by-side ingest benchmarks (Sextant vs
//! Prometheus' receiver). Open loop: request k is due at `k × batch / rate` seconds, and
//! latency is measured from when it was due, so a slow server cannot hide queueing
//! (no coordinated omission). Every request carries fresh timestamps.
//!
//! `cargo run --example rw_load -p sextant -- --url URL --rate SAMPLES_PER_S
//!   [--series 10000] [--batch 2000] [--seconds 10] [--concurrency 16]`
//!
//! Series are split over `--concurrency` shards that each send sequentially, as
//! Prometheus' remote_write shards do.
//!
//! Prints one line: `rate=… achieved=… p50_ms=… p99_ms=… errors=…`.

mod common;
use common::flag;

use std::sync::Arc;
use std::time::{Duration, Instant};

#[allow(clippy::print_stdout)]
fn main() {
    let url = flag("--url", "http://127.0.0.1:9470/api/v1/write");
    let rate: f64 = flag("--rate", "100000").parse().expect("--rate");
    let series: usize = flag("--series", "10000").parse().expect("--series");
    let batch: usize = flag("--batch", "2000").parse().expect("--batch");
    let seconds: f64 = flag("--seconds", "10").parse().expect("--seconds");
    let concurrency: usize = flag("--concurrency", "16").parse().expect("--concurrency");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        // Each series' labels as the `labels` fields of a `TimeSeries` message.
        let labels: Vec<Vec<u8>> = (0..series)
            .map(|i| {
                let mut out = Vec::new();
                for (k, v) in [
                    ("__name__", format!("rw_bench_metric_{}", i % 100)),
                    ("instance", format!("host-{}", i / 100)),
                    ("job", "bench".into()),
                    ("series", i.to_string()),
                ] {
                    let mut label = vec![0x0a];
                    varint(&mut label, k.len() as u64);
                    label.extend_from_slice(k.as_bytes());
                    label.push(0x12);
                    varint(&mut label, v.len() as u64);
                    label.extend_from_slice(v.as_bytes());
                    out.push(0x0a);
                    varint(&mut out, label.len() as u64);
                    out.extend_from_slice(&label);
                }
                out
            })
            .collect();
        // Like a remote_write sender's shards: each shard owns a fixed subset of the
        // series and sends its requests one after another, so samples of one series are
        // never in flight twice and always arrive in order.
        let requests = ((rate * seconds) / batch as f64).ceil() as usize;
        let interval = Duration::from_secs_f64(batch as f64 / rate);
        let start = Instant::now();
        let epoch_ms = sextant_model::time::now_ms();
        let labels = Arc::new(labels);
        let mut shards = Vec::new();
        for shard in 0..concurrency {
            let (http, url, labels) = (http.clone(), url.clone(), labels.clone());
            shards.push(tokio::spawn(async move {
                let mine: Vec<usize> = (shard..series).step_by(concurrency).collect();
                let mut next = 0usize;
                let mut last_ts = vec![0i64; mine.len()];
                let mut results = Vec::new();
                let mut k = shard;
                while k < requests {
                    let due = start + interval * k as u32;
                    tokio::time::sleep_until(due.into()).await;
                    let now_ms = epoch_ms + start.elapsed().as_millis() as i64;
                    // The request is framed by hand around each series' labels,
                    // encoded once up front, so the generator stays cheap enough to
                    // drive a fast server from one core.
                    let mut raw = Vec::with_capacity(batch * 96);
                    for _ in 0..batch {
                        let j = next;
                        next = (next + 1) % mine.len();
                        let t = now_ms.max(last_ts[j] + 1);
                        last_ts[j] = t;
                        let mut sample = vec![0x09];
                        sample.extend_from_slice(&((k as f64).sin() * 100.0).to_le_bytes());
                        sample.push(0x10);
                        varint(&mut sample, t as u64);
                        let labels = &labels[mine[j]];
                        let mut series = Vec::with_capacity(labels.len() + sample.len() + 4);
                        series.extend_from_slice(labels);
                        series.push(0x12);
                        varint(&mut series, sample.len() as u64);
                        series.extend_from_slice(&sample);
                        raw.push(0x0a);
                        varint(&mut raw, series.len() as u64);
                        raw.extend_from_slice(&series);
                    }
                    let body = snap::raw::Encoder::new().compress_vec(&raw).expect("snappy");
                    let r = http
                        .post(&url)
                        .header("Content-Encoding", "snappy")
                        .header("Content-Type", "application/x-protobuf")
                        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                        .body(body)
                        .send()
                        .await;
                    let ok = matches!(&r, Ok(resp) if resp.status().is_success());
                    results.push((due.elapsed(), ok));
                    k += concurrency;
                }
                results
            }));
        }
        let mut lat = Vec::with_capacity(requests);
        let mut errors = 0;
        for s in shards {
            for (d, ok) in s.await.unwrap() {
                if ok {
                    lat.push(d);
                } else {
                    errors += 1;
                }
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        lat.sort();
        let pct = |p: f64| {
            lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
                .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
        };
        let achieved = (lat.len() * batch) as f64 / elapsed;
        println!(
            "rate={rate:.0} achieved={achieved:.0} p50_ms={:.1} p99_ms={:.1} errors={errors}",
            pct(0.5),
            pct(0.99)
        );
    });
}

/// Appends `v` as a protobuf varint.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}
