//! Span ingest load generator for BENCHMARKS.md: exports a synthetic tracing
//! workload (`sextant_traces::synthetic`: traces of 10 spans from 20 services)
//! over OTLP/HTTP protobuf or OTLP/gRPC with `--concurrency` closed-loop
//! senders, then fetches the last trace by id, and reports spans per second of
//! the server's CPU time (read from `/proc/<--pid>/stat`, so the server should
//! run alone on its core) and the request latencies. A 2xx (gRPC status OK)
//! means committed: durable and searchable.
//!
//! `cargo run --example span_load -p sextant -- --url http://127.0.0.1:9470
//!   --grpc http://127.0.0.1:4317 --protocol http|grpc --pid PID [--spans 2000000]
//!   [--batch 1000] [--concurrency 8]`
//!
//! gRPC is spoken directly over HTTP/2 (length-prefixed messages on
//! `/opentelemetry.proto.collector.trace.v1.TraceService/Export`), so the
//! generator needs no gRPC client library. Bodies are encoded before the clock
//! starts.

mod common;
use common::{Attempt, closed_loop, flag, percentile, proc_cpu_seconds};

use std::sync::Arc;
use std::time::{Duration, Instant};

use sextant_traces::synthetic::{self, SPANS_PER_TRACE};

#[allow(clippy::print_stdout)]
fn main() {
    let url = flag("--url", "http://127.0.0.1:9470");
    let grpc = flag("--grpc", "http://127.0.0.1:4317");
    let protocol = flag("--protocol", "http");
    let pid = flag("--pid", "");
    let spans: u64 = flag("--spans", "2000000").parse().expect("--spans");
    let batch: u64 = flag("--batch", "1000").parse().expect("--batch");
    let concurrency: usize = flag("--concurrency", "8").parse().expect("--concurrency");
    let grpc_mode = match protocol.as_str() {
        "http" => false,
        "grpc" => true,
        other => panic!("unknown --protocol {other} (http, grpc)"),
    };

    let traces = spans / SPANS_PER_TRACE as u64;
    let per_request = (batch / SPANS_PER_TRACE as u64).max(1);
    let now = sextant_model::time::now_ms() * 1_000_000;
    // Spread over the last ten minutes, ending a minute ago.
    let (start, width) = (now - 660_000_000_000, 600_000_000_000);
    let seed = now as u64;
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    let mut n = 0;
    while n < traces {
        let k = per_request.min(traces - n);
        let msg = prost::Message::encode_to_vec(&synthetic::request(seed, n, k, traces, start, width));
        bodies.push(if grpc_mode {
            let mut framed = Vec::with_capacity(msg.len() + 5);
            framed.push(0);
            framed.extend_from_slice(&(msg.len() as u32).to_be_bytes());
            framed.extend_from_slice(&msg);
            framed
        } else {
            msg
        });
        n += k;
    }
    let body_bytes: usize = bodies.iter().map(Vec::len).sum();
    let bodies = Arc::new(bodies);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(120));
        if grpc_mode {
            builder = builder.http2_prior_knowledge();
        }
        let client = builder.build().unwrap();
        let target = if grpc_mode {
            format!("{grpc}/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        } else {
            format!("{url}/v1/traces")
        };
        let cpu0 = proc_cpu_seconds(&pid);
        let started = Instant::now();
        let (mut latencies, retries) = closed_loop(bodies.len(), concurrency, Duration::from_millis(50), {
            let (client, target, bodies) = (client.clone(), target.clone(), bodies.clone());
            move |i| {
                let (client, target, bodies) = (client.clone(), target.clone(), bodies.clone());
                async move {
                    let mut req = client.post(&target).body(bodies[i].clone());
                    req = if grpc_mode {
                        req.header("Content-Type", "application/grpc").header("TE", "trailers")
                    } else {
                        req.header("Content-Type", "application/x-protobuf")
                    };
                    let resp = req.send().await.expect("export");
                    let status = resp.status().as_u16();
                    // gRPC errors come as a trailers-only answer: the status in the headers.
                    let grpc_status = resp
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("0")
                        .to_owned();
                    let body = resp.bytes().await.unwrap_or_default();
                    if status == 429 || status == 503 || grpc_status == "14" || grpc_status == "8" {
                        return Attempt::Retry;
                    }
                    assert!(
                        status == 200 && grpc_status == "0",
                        "export answered {status} grpc-status {grpc_status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                    Attempt::Done
                }
            }
        })
        .await;
        let acked = started.elapsed();
        let cpu = proc_cpu_seconds(&pid) - cpu0;
        // Acknowledged means committed: the last trace is there at once.
        let last = format!("{:032x}", synthetic::trace_id(seed, traces - 1));
        let t = Instant::now();
        let found = reqwest::Client::new()
            .get(format!("{url}/api/traces/{last}"))
            .send()
            .await
            .expect("trace by id")
            .status()
            .as_u16();
        let lookup_ms = t.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(found, 200, "the last acknowledged trace is not found");
        let sent = traces * SPANS_PER_TRACE as u64;
        println!(
            "protocol={protocol} spans={sent} requests={} body_mib={:.1} wall_s={:.2} spans_per_s={:.0} server_cpu_s={cpu:.2} spans_per_server_cpu_s={:.0} p50_ms={:.1} p99_ms={:.1} retries={retries} last_trace_found_ms={lookup_ms:.1}",
            bodies.len(),
            body_bytes as f64 / (1 << 20) as f64,
            acked.as_secs_f64(),
            sent as f64 / acked.as_secs_f64(),
            sent as f64 / cpu.max(1e-9),
            percentile(&mut latencies, 0.5),
            percentile(&mut latencies, 0.99),
        );
    });
}
