//! Log ingest load generator for BENCHMARKS.md: pushes a generated corpus over
//! HTTP in one protocol (Loki snappy protobuf, Loki JSON, or OTLP protobuf) with
//! `--concurrency` closed-loop senders, then pushes a marker entry and waits until
//! it is searchable, and reports throughput against the server's CPU time (read
//! from `/proc/<--pid>/stat`, so the server should run alone on its core).
//!
//! `cargo run --example log_load -p sextant -- --url http://127.0.0.1:9470
//!   --protocol loki-proto|loki-json|otlp --pid PID [--mb 200] [--batch 1000]
//!   [--concurrency 4]`
//!
//! The corpus is about 120-byte logfmt lines in 20 streams spread evenly over the
//! last 24 hours (the in-process `sextant-logs` bench uses a similar shape). Bodies
//! are encoded before the clock starts. Prints one line of `key=value` figures;
//! MB are MiB of log lines (the lines' bytes, not the bodies').

mod common;
use common::{Attempt, closed_loop, flag, percentile, proc_cpu_seconds};

use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use sextant_api::loki::{EntryPb, PushRequestPb, StreamPb, TimestampPb};

const S: i64 = 1_000_000_000;

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
    let (a, b) = (r.next(), r.next());
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// One entry: stream index, timestamp, line.
type Line = (usize, i64, String);

/// A request body and its headers.
struct Body {
    bytes: Vec<u8>,
    content_type: &'static str,
    path: &'static str,
}

fn encode(protocol: &str, entries: &[Line]) -> Body {
    let mut by_stream: Vec<Vec<&Line>> = vec![Vec::new(); 21];
    for e in entries {
        by_stream[e.0].push(e);
    }
    let app = |i: usize| if i == 20 { "marker".to_owned() } else { format!("a{i}") };
    match protocol {
        "loki-json" => {
            let streams: Vec<serde_json::Value> = by_stream
                .iter()
                .enumerate()
                .filter(|(_, v)| !v.is_empty())
                .map(|(i, v)| {
                    serde_json::json!({
                        "stream": {"app": app(i), "env": "bench"},
                        "values": v.iter().map(|e| serde_json::json!([e.1.to_string(), e.2])).collect::<Vec<_>>()
                    })
                })
                .collect();
            Body {
                bytes: serde_json::json!({ "streams": streams }).to_string().into_bytes(),
                content_type: "application/json",
                path: "/loki/api/v1/push",
            }
        }
        "loki-proto" => {
            let req = PushRequestPb {
                streams: by_stream
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(i, v)| StreamPb {
                        labels: format!("{{app=\"{}\", env=\"bench\"}}", app(i)),
                        entries: v
                            .iter()
                            .map(|e| EntryPb {
                                timestamp: Some(TimestampPb {
                                    seconds: e.1 / S,
                                    nanos: (e.1 % S) as i32,
                                }),
                                line: e.2.clone(),
                                structured_metadata: Vec::new(),
                            })
                            .collect(),
                    })
                    .collect(),
            };
            Body {
                bytes: snap::raw::Encoder::new()
                    .compress_vec(&prost::Message::encode_to_vec(&req))
                    .expect("snappy"),
                content_type: "application/x-protobuf",
                path: "/loki/api/v1/push",
            }
        }
        "otlp" => {
            let string = |v: &str| AnyValue {
                value: Some(any_value::Value::StringValue(v.to_owned())),
            };
            let req = ExportLogsServiceRequest {
                resource_logs: by_stream
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(i, v)| ResourceLogs {
                        resource: Some(Resource {
                            attributes: vec![KeyValue {
                                key: "service.name".into(),
                                value: Some(string(&app(i))),
                                ..Default::default()
                            }],
                            ..Default::default()
                        }),
                        scope_logs: vec![ScopeLogs {
                            log_records: v
                                .iter()
                                .map(|e| LogRecord {
                                    time_unix_nano: e.1 as u64,
                                    body: Some(string(&e.2)),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    })
                    .collect(),
            };
            Body {
                bytes: prost::Message::encode_to_vec(&req),
                content_type: "application/x-protobuf",
                path: "/v1/logs",
            }
        }
        other => panic!("unknown --protocol {other} (loki-proto, loki-json, otlp)"),
    }
}

#[allow(clippy::print_stdout)]
fn main() {
    let url = flag("--url", "http://127.0.0.1:9470");
    let protocol = flag("--protocol", "loki-proto");
    let pid = flag("--pid", "");
    let mb: usize = flag("--mb", "200").parse().expect("--mb");
    let batch: usize = flag("--batch", "1000").parse().expect("--batch");
    let concurrency: usize = flag("--concurrency", "4").parse().expect("--concurrency");

    // The corpus, in time order; batches of consecutive entries.
    let now = sextant_model::time::now_ms() * 1_000_000;
    let start = now - 24 * 3600 * S;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let levels = ["info", "info", "info", "warn", "error", "debug"];
    let paths = ["/api/cart", "/api/checkout", "/api/items", "/health", "/login"];
    let target = mb << 20;
    let mut lines: Vec<Line> = Vec::new();
    let mut line_bytes = 0usize;
    while line_bytes < target {
        let r = rng.next();
        let line = format!(
            "level={} method=GET path={} status={} duration_ms={} request_id={} user=u{}",
            levels[(r % 6) as usize],
            paths[((r >> 8) % 5) as usize],
            [200, 200, 200, 404, 500][((r >> 16) % 5) as usize],
            (r >> 24) % 900,
            uuid(&mut rng),
            (r >> 40) % 10_000
        );
        line_bytes += line.len();
        lines.push(((r >> 48) as usize % 20, 0, line));
    }
    let n = lines.len();
    for (i, l) in lines.iter_mut().enumerate() {
        l.1 = start + (i as i64) * (24 * 3600 * S / n as i64);
    }
    let bodies: Arc<Vec<Body>> = Arc::new(lines.chunks(batch).map(|c| encode(&protocol, c)).collect());
    let body_bytes: usize = bodies.iter().map(|b| b.bytes.len()).sum();
    drop(lines);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let cpu0 = proc_cpu_seconds(&pid);
        let started = Instant::now();
        let (mut latencies, retries) = closed_loop(bodies.len(), concurrency, Duration::from_millis(100), {
            let (http, url, bodies) = (http.clone(), url.clone(), bodies.clone());
            move |i| {
                let (http, url, bodies) = (http.clone(), url.clone(), bodies.clone());
                async move {
                    let b = &bodies[i];
                    let resp = http
                        .post(format!("{url}{}", b.path))
                        .header("Content-Type", b.content_type)
                        .body(b.bytes.clone())
                        .send()
                        .await
                        .expect("push");
                    let status = resp.status().as_u16();
                    if status == 429 || status == 503 {
                        return Attempt::Retry;
                    }
                    assert!(resp.status().is_success(), "push answered {status}: {}", resp.text().await.unwrap_or_default());
                    Attempt::Done
                }
            }
        })
        .await;
        let acked = started.elapsed();
        // A marker after everything was acknowledged: once it is searchable, so is
        // all that was queued before it.
        let marker = uuid(&mut Rng(now as u64 | 1));
        let m = encode(&protocol, &[(20, now, format!("marker {marker}"))]);
        let resp = http
            .post(format!("{url}{}", m.path))
            .header("Content-Type", m.content_type)
            .body(m.bytes)
            .send()
            .await
            .expect("marker push");
        assert!(resp.status().is_success(), "marker push answered {}", resp.status());
        let marker_acked = Instant::now();
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", &format!("{{service_name=\"marker\"}} |= \"{marker}\""))
            .append_pair("start", &(now - 60 * S).to_string())
            .append_pair("end", &(now + 60 * S).to_string())
            .finish();
        loop {
            let v: serde_json::Value = http
                .get(format!("{url}/loki/api/v1/query_range?{q}"))
                .send()
                .await
                .expect("query")
                .json()
                .await
                .expect("query answer");
            if v["data"]["result"].as_array().is_some_and(|r| !r.is_empty()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let searchable = started.elapsed();
        let lag = marker_acked.elapsed();
        let cpu = proc_cpu_seconds(&pid) - cpu0;
        let mib = line_bytes as f64 / (1 << 20) as f64;
        println!(
            "protocol={protocol} entries={n} line_mib={mib:.1} body_mib={:.1} ack_s={:.2} searchable_s={:.2} lag_s={:.2} server_cpu_s={cpu:.2} mib_per_cpu_s={:.2} mib_per_s={:.2} p50_ms={:.1} p99_ms={:.1} retries={retries}",
            body_bytes as f64 / (1 << 20) as f64,
            acked.as_secs_f64(),
            searchable.as_secs_f64(),
            lag.as_secs_f64(),
            mib / cpu,
            mib / searchable.as_secs_f64(),
            percentile(&mut latencies, 0.5),
            percentile(&mut latencies, 0.99),
        );
    });
}
