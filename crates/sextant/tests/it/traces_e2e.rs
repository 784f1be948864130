//! Traces end to end: the OpenTelemetry Python SDK exporting an instrumented
//! sample app's spans over OTLP/HTTP protobuf, OTLP/HTTP JSON and gRPC; every
//! span back once through Tempo's API as Grafana's Tempo data source calls it
//! (trace by id decoded with Tempo's `TraceByIDResponse` message); searches that
//! must find exactly the expected traces; span metrics and the service graph
//! against the spans sent; Tempo's answers to bad requests; and `kill -9`
//! during concurrent exports.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use sextant_otlp::proto::collector::trace::v1::ExportTraceServiceRequest;
use sextant_otlp::proto::common::v1::{AnyValue, KeyValue, any_value};
use sextant_otlp::proto::resource::v1::Resource;
use sextant_otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

use crate::support::{Sextant, client, free_port, get_json, wait_for};

/// Tempo's `TraceByIDResponse` and `Trace` (`pkg/tempopb/tempo.proto`), as
/// Grafana's Tempo data source decodes the v2 answer.
#[derive(Clone, PartialEq, prost::Message)]
struct TraceByIdResponse {
    #[prost(message, optional, tag = "1")]
    trace: Option<TempoTrace>,
    #[prost(message, optional, tag = "2")]
    metrics: Option<TraceByIdMetrics>,
    #[prost(int32, tag = "3")]
    status: i32,
    #[prost(string, tag = "4")]
    message: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TempoTrace {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TraceByIdMetrics {
    #[prost(uint64, tag = "1")]
    inspected_bytes: u64,
}

fn python() -> PathBuf {
    let p = PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/sextant-venv/bin/python3");
    assert!(p.exists(), "{} is missing: run scripts/install-test-deps", p.display());
    p
}

fn script() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("../../scripts/otlp_client.py")
}

#[derive(Debug, Clone)]
struct Sent {
    trace_id: String,
    protocol: String,
    failed: bool,
    slow: bool,
}

/// Runs the sample app over one protocol; the traces it reports having sent.
fn send(protocol: &str, endpoint: &str, run: &str, count: usize) -> Vec<Sent> {
    let out = std::process::Command::new(python())
        .arg(script())
        .args(["traces", protocol, endpoint, run, &count.to_string()])
        .env("OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED", "false")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "otlp_client.py traces {protocol}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Sent {
                trace_id: v["trace_id"].as_str().unwrap().to_owned(),
                protocol: protocol.to_owned(),
                failed: v["failed"].as_bool().unwrap(),
                slow: v["slow"].as_bool().unwrap(),
            }
        })
        .collect()
}

async fn get(sx: &Sextant, path: &str, accept: &str) -> (u16, String, Vec<u8>) {
    let r = client()
        .get(sx.url(path))
        .header("Accept", accept)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, r.bytes().await.unwrap().to_vec())
}

/// Trace ids (without leading zeros, as Tempo prints them) a search returns.
async fn search(sx: &Sextant, q: &str) -> HashSet<String> {
    let qs = form_urlencoded::Serializer::new(String::new())
        .append_pair("q", q)
        .append_pair("limit", "1000")
        .finish();
    let (status, _, body) = get(sx, &format!("/api/search?{qs}"), "application/json").await;
    assert_eq!(status, 200, "{q}: {}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["traceID"].as_str().unwrap().to_owned())
        .collect()
}

fn short(id: &str) -> String {
    id.trim_start_matches('0').to_owned()
}

fn ids(sent: &[Sent], keep: impl Fn(&Sent) -> bool) -> HashSet<String> {
    sent.iter().filter(|s| keep(s)).map(|s| short(&s.trace_id)).collect()
}

async fn promql(sx: &Sextant, expr: &str) -> f64 {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", expr)
        .finish();
    let v = get_json(&sx.url(&format!("/api/v1/query?{q}"))).await;
    v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_traces_through_tempos_api_search_and_span_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let grpc_port = free_port();
    let config = format!(
        "storage:\n  retention: 0s\nserver:\n  otlp_grpc_listen: 127.0.0.1:{grpc_port}\ntraces:\n  span_metrics:\n    interval: 1s\n"
    );
    let sx = Sextant::start(&dir.path().join("data"), Some(&config)).await;
    let run = format!("r{}", std::process::id());
    let (http, grpc, r) = (sx.url(""), format!("http://127.0.0.1:{grpc_port}"), run.clone());
    let sent: Vec<Sent> = tokio::task::spawn_blocking(move || {
        let mut all = send("http", &http, &r, 6);
        all.extend(send("json", &http, &r, 6));
        all.extend(send("grpc", &grpc, &r, 6));
        all
    })
    .await
    .unwrap();
    assert_eq!(sent.len(), 18);

    // Every trace whole, every span once: v2 protobuf as Grafana asks for it.
    for s in &sent {
        let (status, ct, body) = get(&sx, &format!("/api/v2/traces/{}", s.trace_id), "application/protobuf").await;
        assert_eq!((status, ct.as_str()), (200, "application/protobuf"));
        let r = TraceByIdResponse::decode(body.as_slice()).unwrap();
        let spans: Vec<(&Span, String)> = r
            .trace
            .as_ref()
            .unwrap()
            .resource_spans
            .iter()
            .flat_map(|rs| {
                let service = rs
                    .resource
                    .as_ref()
                    .unwrap()
                    .attributes
                    .iter()
                    .find(|kv| kv.key == "service.name")
                    .unwrap();
                let service = match &service.value.as_ref().unwrap().value {
                    Some(any_value::Value::StringValue(v)) => v.clone(),
                    _ => panic!("service.name is a string"),
                };
                rs.scope_spans.iter().flat_map(move |ss| {
                    ss.spans.iter().map({
                        let service = service.clone();
                        move |sp| (sp, service.clone())
                    })
                })
            })
            .collect();
        assert_eq!(spans.len(), 4, "trace {} over {}", s.trace_id, s.protocol);
        let span_ids: HashSet<&[u8]> = spans.iter().map(|(sp, _)| sp.span_id.as_slice()).collect();
        assert_eq!(span_ids.len(), 4, "each span once");
        let roots: Vec<_> = spans.iter().filter(|(sp, _)| sp.parent_span_id.is_empty()).collect();
        assert_eq!(roots.len(), 1);
        assert!(
            spans
                .iter()
                .all(|(sp, _)| sp.parent_span_id.is_empty() || span_ids.contains(sp.parent_span_id.as_slice()))
        );
        let services: HashSet<&str> = spans.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(
            services,
            HashSet::from([
                format!("frontend-{}", s.protocol).as_str(),
                format!("cart-{}", s.protocol).as_str()
            ])
        );
        assert!(r.metrics.unwrap().inspected_bytes > 0);
    }
    // v1: protobuf `Trace` (OTLP `TracesData`), and Tempo's `batches` JSON.
    let one = &sent[0].trace_id;
    let (status, _, body) = get(&sx, &format!("/api/traces/{one}"), "application/protobuf").await;
    assert_eq!(status, 200);
    assert_eq!(TempoTrace::decode(body.as_slice()).unwrap().resource_spans.len(), 2);
    let (status, ct, body) = get(&sx, &format!("/api/traces/{}", one.to_uppercase()), "application/json").await;
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let first = &v["batches"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(first["kind"].as_str().map(|k| k.starts_with("SPAN_KIND_")), Some(true));
    assert!(
        first["startTimeUnixNano"].is_string(),
        "64-bit numbers as strings: {first}"
    );
    assert_eq!(first["traceId"].as_str().unwrap().len(), 24, "ids in base64");

    // Searches find exactly the expected traces.
    assert_eq!(
        search(&sx, r#"{ resource.service.name = "cart-http" && status = error }"#).await,
        ids(&sent, |s| s.protocol == "http" && s.failed)
    );
    assert_eq!(
        search(&sx, &format!(r#"{{ .run.id = "{run}" && duration > 200ms }}"#)).await,
        ids(&sent, |s| s.slow)
    );
    assert_eq!(
        search(
            &sx,
            r#"{ span.http.response.status_code >= 500 && resource.service.name = "frontend-json" }"#
        )
        .await,
        ids(&sent, |s| s.protocol == "json" && s.failed)
    );
    assert_eq!(
        search(&sx, r#"{ rootServiceName = "frontend-grpc" && traceDuration > 250ms }"#).await,
        ids(&sent, |s| s.protocol == "grpc" && s.slow)
    );
    assert_eq!(
        search(
            &sx,
            r#"{ .db.system = "redis" && kind = client && resource.service.name =~ "cart-(http|json)" }"#
        )
        .await,
        ids(&sent, |s| s.protocol != "grpc")
    );
    let legacy = form_urlencoded::Serializer::new(String::new())
        .append_pair("tags", "service.name=cart-json http.response.status_code=500")
        .append_pair("minDuration", "1ms")
        .finish();
    let (_, _, body) = get(&sx, &format!("/api/search?{legacy}"), "application/json").await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let found: HashSet<String> = v["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["traceID"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(found, ids(&sent, |s| s.protocol == "json" && s.failed));
    // The limit applies after matching, newest first.
    let qs = "q=%7B%20status%20%3D%20error%20%7D&limit=2&spss=1";
    let (_, _, body) = get(&sx, &format!("/api/search?{qs}"), "application/json").await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let traces = v["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 2);
    let t0: u64 = traces[0]["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let t1: u64 = traces[1]["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(t0 >= t1, "newest first");
    // Tempo's search JSON: exactly its fields, 64-bit numbers as strings.
    let t = &traces[0];
    let keys: HashSet<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        HashSet::from([
            "traceID",
            "rootServiceName",
            "rootTraceName",
            "startTimeUnixNano",
            "durationMs",
            "spanSet",
            "spanSets"
        ])
    );
    assert_eq!(t["rootTraceName"], "GET /cart");
    assert!(t["durationMs"].is_u64());
    let set = &t["spanSets"][0];
    assert_eq!(
        set["matched"], 3,
        "three spans of a failed request have an error status"
    );
    assert_eq!(set["spans"].as_array().unwrap().len(), 1, "spss");
    let span = &set["spans"][0];
    assert_eq!(span["spanID"].as_str().unwrap().len(), 16);
    assert!(span["durationNanos"].is_string());
    assert_eq!(
        span["attributes"][0],
        serde_json::json!({"key": "status", "value": {"stringValue": "error"}})
    );
    assert_eq!(t["spanSet"], t["spanSets"][0]);

    // Tags and values as Grafana's editor lists them.
    let (status, _, body) = get(&sx, "/api/v2/search/tags?limit=5000", "application/json").await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let scope = |name: &str| -> Vec<String> {
        v["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| {
                s["tags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(scope("resource").contains(&"service.name".to_owned()));
    assert!(scope("span").contains(&"http.route".to_owned()));
    assert!(scope("span").contains(&"db.system".to_owned()));
    assert!(scope("intrinsic").contains(&"rootServiceName".to_owned()));
    let (_, _, body) = get(
        &sx,
        "/api/v2/search/tag/resource.service.name/values?limit=5000&tag=resource.service.name&q=%7Bstatus%3Derror%7D",
        "application/json",
    )
    .await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let values: HashSet<String> = v["tagValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["type"], "string");
            t["value"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        values.len(),
        6,
        "both services of each protocol have error spans: {values:?}"
    );
    let (_, _, body) = get(
        &sx,
        "/api/v2/search/tag/span.http.response.status_code/values",
        "application/json",
    )
    .await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["tagValues"],
        serde_json::json!([{"type": "int", "value": "200"}, {"type": "int", "value": "500"}])
    );
    let (_, _, body) = get(&sx, "/api/v2/search/tag/status/values", "application/json").await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["tagValues"][0],
        serde_json::json!({"type": "keyword", "value": "error"})
    );
    // The v1 endpoints older Grafana versions call.
    let (_, _, body) = get(&sx, "/api/search/tags", "application/json").await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        v["tagNames"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("peer.service"))
    );
    let (_, _, body) = get(&sx, "/api/search/tag/peer.service/values", "application/json").await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["tagValues"], serde_json::json!(["redis"]));

    // Tempo's answers to what is wrong, and the health check.
    let (status, ct, body) = get(&sx, "/api/echo", "*/*").await;
    assert_eq!(
        (status, ct.as_str(), body.as_slice()),
        (200, "text/plain; charset=utf-8", &b"echo\n"[..])
    );
    let (status, _, body) = get(&sx, "/api/traces/12z4", "application/protobuf").await;
    assert_eq!(
        (status, String::from_utf8_lossy(&body).as_ref()),
        (
            400,
            "trace IDs can only contain hex characters: invalid character 'z' at position 3"
        )
    );
    let (status, _, body) = get(&sx, "/api/traces/0123456789abcdef0123", "application/protobuf").await;
    assert_eq!((status, body.len()), (404, 0), "v1 not found: 404 with an empty body");
    let (status, _, body) = get(&sx, "/api/v2/traces/0123456789abcdef0123", "application/protobuf").await;
    assert_eq!(status, 200, "v2 not found: an empty trace");
    let r = TraceByIdResponse::decode(body.as_slice()).unwrap();
    assert!(r.trace.is_some() && r.trace.unwrap().resource_spans.is_empty());
    for (q, want) in [
        ("q=foo", "invalid TraceQL query: parse error at line 1, col 1"),
        (
            "q=%7B%20name%20%3D%201%20%7D",
            "invalid TraceQL query: parse error at line 1, col 3: binary operations must operate on the same type",
        ),
        ("limit=0", "invalid limit: must be a positive number"),
        ("spss=101", "spans per span set exceeds 100. received 101"),
        (
            "start=20&end=10",
            "http parameter start must be before end. received start=20 end=10",
        ),
        (
            "q=%7B%7D&tags=a%3Db",
            "invalid request: can't specify tags and q in the same query",
        ),
        (
            "minDuration=2s&maxDuration=1s",
            "invalid maxDuration: must be greater than minDuration",
        ),
        (
            "q=%7B%20.a%20%3D%201%20%7D%20%7C%20count()%20%3E%201",
            "invalid TraceQL query: parse error at line 1, col 12: pipelines (`|`) is not supported",
        ),
    ] {
        let (status, _, body) = get(&sx, &format!("/api/search?{q}"), "application/json").await;
        let body = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(status, 400, "{q}: {body}");
        assert!(body.starts_with(want), "{q}: {body}");
    }

    // Span metrics and the service graph match the spans sent.
    for proto in ["http", "json", "grpc"] {
        let failed = sent.iter().filter(|s| s.protocol == proto && s.failed).count() as f64;
        let calls = wait_for("span metrics", Duration::from_secs(20), || async {
            let v = promql(
                &sx,
                &format!(r#"sum(traces_spanmetrics_calls_total{{service=~".*-{proto}"}})"#),
            )
            .await;
            (v == 24.0).then_some(v)
        })
        .await;
        assert_eq!(calls, 24.0);
        assert_eq!(
            promql(
                &sx,
                &format!(
                    r#"traces_spanmetrics_calls_total{{service="cart-{proto}",span_name="GET /items",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_ERROR"}}"#
                )
            )
            .await,
            failed
        );
        assert_eq!(
            promql(
                &sx,
                &format!(r#"traces_spanmetrics_latency_count{{service="cart-{proto}",span_name="redis GET"}}"#)
            )
            .await,
            6.0
        );
        assert_eq!(
            promql(
                &sx,
                &format!(
                    r#"traces_spanmetrics_latency_bucket{{service="cart-{proto}",span_name="redis GET",le="0.256"}}"#
                )
            )
            .await,
            6.0 - sent.iter().filter(|s| s.protocol == proto && s.slow).count() as f64,
            "300 ms Redis calls land above 0.256 s"
        );
        let edge = format!(r#"client="frontend-{proto}",server="cart-{proto}""#);
        assert_eq!(
            promql(&sx, &format!("traces_service_graph_request_total{{{edge}}}")).await,
            6.0
        );
        assert_eq!(
            promql(&sx, &format!("traces_service_graph_request_failed_total{{{edge}}}")).await,
            failed
        );
        assert_eq!(
            promql(
                &sx,
                &format!(r#"traces_service_graph_request_total{{client="cart-{proto}",server="redis",connection_type="database"}}"#)
            )
            .await,
            6.0
        );
    }
    // The store's own counters.
    let metrics = String::from_utf8(get(&sx, "/metrics", "text/plain").await.2).unwrap();
    assert!(metrics.contains("sextant_traces_spans_stored_total 72"), "{metrics}");
    // An availability SLI over span metrics, as examples/slo/checkout-traces.yml writes it.
    let ratio = promql(
        &sx,
        r#"sum(traces_spanmetrics_calls_total{service="cart-http",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_ERROR"}) / sum(traces_spanmetrics_calls_total{service="cart-http",span_kind="SPAN_KIND_SERVER"})"#,
    )
    .await;
    assert_eq!(ratio, 2.0 / 6.0);
}

/// A log record from OTLP with a trace id is listed with its trace.
#[tokio::test(flavor = "multi_thread")]
async fn a_traces_logs_come_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let sx = Sextant::start(&dir.path().join("data"), Some("storage:\n  retention: 0s\n")).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let trace = "5b8efff798038103d269b633813fc60c";
    let spans = serde_json::json!({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},
        "scopeSpans":[{"spans":[{"traceId":trace,"spanId":"eee19b7ec3c1b174","name":"GET /","kind":2,
        "startTimeUnixNano":(now - 2_000_000).to_string(),"endTimeUnixNano":now.to_string()}]}]}]});
    let logs = serde_json::json!({"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},
        "scopeLogs":[{"logRecords":[
          {"timeUnixNano":(now - 1_000_000).to_string(),"body":{"stringValue":"handling GET /"},"traceId":trace,"spanId":"eee19b7ec3c1b174"},
          {"timeUnixNano":(now - 1_000_000).to_string(),"body":{"stringValue":"another request"},"traceId":"5b8efff798038103d269b633813fc60d"}]}]}]});
    for (path, body) in [("/v1/traces", spans), ("/v1/logs", logs)] {
        let r = client()
            .post(sx.url(path))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    let v = wait_for("the trace's logs", Duration::from_secs(10), || async {
        let v = get_json(&sx.url(&format!("/api/sextant/v1/traces/{trace}/logs"))).await;
        (!v["logs"].as_array().unwrap().is_empty()).then_some(v)
    })
    .await;
    let logs = v["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1, "{v}");
    assert_eq!(logs[0]["line"], "handling GET /");
    assert_eq!(logs[0]["spanID"], "eee19b7ec3c1b174");
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_concurrent_exports_keeps_every_acknowledged_span_once() {
    const SPANS: u64 = 10;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = "storage:\n  retention: 0s\n";
    let sx = Sextant::start(&data, Some(config)).await;
    let acked: Arc<Mutex<Vec<u128>>> = Arc::new(Mutex::new(Vec::new()));
    let attempted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let url = sx.url("/v1/traces");
    let mut tasks = Vec::new();
    for w in 0..4u128 {
        let (acked, attempted, url) = (acked.clone(), attempted.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            for r in 0..100_000u128 {
                let trace = (w << 64) | (r + 1);
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64;
                let spans = (0..SPANS)
                    .map(|i| Span {
                        trace_id: trace.to_be_bytes().to_vec(),
                        span_id: (i + 1).to_be_bytes().to_vec(),
                        parent_span_id: if i == 0 {
                            Vec::new()
                        } else {
                            1u64.to_be_bytes().to_vec()
                        },
                        name: format!("op{i}"),
                        kind: 2,
                        start_time_unix_nano: now + i,
                        end_time_unix_nano: now + 1000 + i,
                        ..Default::default()
                    })
                    .collect();
                let req = ExportTraceServiceRequest {
                    resource_spans: vec![ResourceSpans {
                        resource: Some(Resource {
                            attributes: vec![kv("service.name", &format!("w{w}"))],
                            ..Default::default()
                        }),
                        scope_spans: vec![ScopeSpans {
                            spans,
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                };
                attempted.fetch_add(SPANS, std::sync::atomic::Ordering::SeqCst);
                match client()
                    .post(&url)
                    .header("Content-Type", "application/x-protobuf")
                    .body(req.encode_to_vec())
                    .send()
                    .await
                {
                    Ok(resp) if resp.status().as_u16() == 200 => acked.lock().unwrap().push(trace),
                    _ => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sx.kill9();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let attempted = attempted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        acked.len() >= 20,
        "only {} exports were acknowledged before the kill",
        acked.len()
    );

    let sx = Sextant::start(&data, Some(config)).await;
    // Every acknowledged trace is whole.
    let (_, _, body) = get(&sx, "/api/search?q=%7B%7D&limit=1000000&spss=1", "application/json").await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let matched: HashMap<String, u64> = v["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["traceID"].as_str().unwrap().to_owned(),
                t["spanSets"][0]["matched"].as_u64().unwrap(),
            )
        })
        .collect();
    for t in &acked {
        assert_eq!(matched.get(&format!("{t:x}")), Some(&SPANS), "trace {t:x}");
    }
    // And nothing is stored twice: no more rows than spans sent.
    let log = sx.log();
    let stored: u64 = log
        .lines()
        .find(|l| l.contains("trace store open"))
        .and_then(|l| l.split("spans=").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect("the start-up log counts the stored spans");
    assert!(
        stored >= acked.len() as u64 * SPANS && stored <= attempted,
        "{stored} spans stored, {} acknowledged, {attempted} sent",
        acked.len() as u64 * SPANS
    );
}
