//! Alert ingestion load generator for side-by-side benchmarks (Sextant against
//! Alertmanager 0.25): closed loop, `--concurrency` senders each posting batches of
//! `--batch` alerts (Prometheus sends 64 per request) to `/api/v2/alerts` as fast as
//! the server answers, for `--seconds`. Alerts cycle over `--alerts` distinct label
//! sets in `--groups` groups, each re-sent with a fresh `endsAt` as Prometheus
//! re-sends firing alerts.
//!
//! `cargo run --example alert_load -p sextant -- --url URL [--alerts 10000]
//!   [--groups 100] [--batch 64] [--concurrency 16] [--seconds 10]`
//!
//! Prints one line: `achieved=<alerts/s> requests=… p50_ms=… p99_ms=… errors=…`.

mod common;
use common::flag;

use std::time::{Duration, Instant};

#[allow(clippy::print_stdout)]
fn main() {
    let url = flag("--url", "http://127.0.0.1:9093/api/v2/alerts");
    let alerts: usize = flag("--alerts", "10000").parse().expect("--alerts");
    let groups: usize = flag("--groups", "100").parse().expect("--groups");
    let batch: usize = flag("--batch", "64").parse().expect("--batch");
    let concurrency: usize = flag("--concurrency", "16").parse().expect("--concurrency");
    let seconds: f64 = flag("--seconds", "10").parse().expect("--seconds");

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
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(seconds);
        let mut tasks = Vec::new();
        for sender in 0..concurrency {
            let (http, url) = (http.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut next = sender * batch;
                while Instant::now() < deadline {
                    let now = sextant_model::time::now_ms();
                    let starts = sextant_model::time::format_rfc3339(now - 60_000);
                    let ends = sextant_model::time::format_rfc3339(now + 240_000);
                    let body: Vec<serde_json::Value> = (0..batch)
                        .map(|j| {
                            let i = (next + j) % alerts;
                            serde_json::json!({
                                "labels": {
                                    "alertname": format!("LoadTest{}", i % groups),
                                    "instance": format!("host-{i}"),
                                    "job": "bench",
                                    "severity": "warning",
                                },
                                "annotations": {"summary": "load test alert"},
                                "startsAt": starts,
                                "endsAt": ends,
                                "generatorURL": "http://prometheus.bench/graph?g0.expr=up&g0.tab=1",
                            })
                        })
                        .collect();
                    next = (next + concurrency * batch) % alerts.max(1);
                    let t = Instant::now();
                    let r = http
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .body(serde_json::to_vec(&body).unwrap())
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => latencies.push(t.elapsed()),
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            }));
        }
        let mut latencies = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await.unwrap();
            latencies.extend(l);
            errors += e;
        }
        let elapsed = start.elapsed().as_secs_f64();
        latencies.sort();
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        println!(
            "achieved={:.0} requests={} p50_ms={:.2} p99_ms={:.2} errors={errors}",
            latencies.len() as f64 * batch as f64 / elapsed,
            latencies.len(),
            pct(0.5),
            pct(0.99)
        );
    });
}
