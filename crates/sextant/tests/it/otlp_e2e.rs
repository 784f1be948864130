//! The OTLP receiver end to end, with the OpenTelemetry Python SDK's own
//! exporters as the client (HTTP and gRPC), and the specification's answers to
//! what is wrong.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::{Sextant, client, free_port, get_json, loki_recent, wait_for};

fn python() -> PathBuf {
    let p = PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/sextant-venv/bin/python3");
    assert!(p.exists(), "{} is missing: run scripts/install-test-deps", p.display());
    p
}

fn script() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("../../scripts/otlp_client.py")
}

fn run_client(args: &[&str]) {
    let out = std::process::Command::new(python())
        .arg(script())
        .args(args)
        .env("OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED", "false")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "otlp_client.py {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn promql(sx: &Sextant, expr: &str) -> Vec<serde_json::Value> {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", expr)
        .finish();
    let v = get_json(&sx.url(&format!("/api/v1/query?{q}"))).await;
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_logs_and_metrics_over_http_and_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let grpc_port = free_port();
    let config = format!("storage:\n  retention: 0s\nserver:\n  otlp_grpc_listen: 127.0.0.1:{grpc_port}\n");
    let sx = Sextant::start(&dir.path().join("data"), Some(&config)).await;
    let run = format!("r{}", std::process::id());
    let http = sx.url("");
    let grpc = format!("http://127.0.0.1:{grpc_port}");
    let (h, g) = (http.clone(), grpc.clone());
    let r1 = run.clone();
    tokio::task::spawn_blocking(move || {
        run_client(&["logs", "http", &h, &r1, "3"]);
        run_client(&["logs", "grpc", &g, &r1, "3"]);
        run_client(&["metrics", "http", &h, &r1]);
        run_client(&["metrics", "grpc", &g, &r1]);
    })
    .await
    .unwrap();

    for protocol in ["http", "grpc"] {
        let query = format!(r#"{{service_name="otel-test-{protocol}"}} |= "{run}""#);
        let v = wait_for("OTLP logs to be searchable", Duration::from_secs(10), || {
            let (sx, query) = (&sx, query.clone());
            async move {
                let v = loki_recent(sx, &query, 100).await;
                let n: usize = v["data"]["result"]
                    .as_array()
                    .map(|a| a.iter().map(|s| s["values"].as_array().map_or(0, Vec::len)).sum())
                    .unwrap_or(0);
                (n == 3).then_some(v)
            }
        })
        .await;
        let s = &v["data"]["result"][0]["stream"];
        assert_eq!(s["k8s_namespace_name"], "shop", "{s}");
        assert_eq!(s["severity_text"], "WARN", "{s}");
        assert_eq!(s["detected_level"], "warn", "{s}");
        assert_eq!(s["host_name"], "h1", "{s}");
        assert!(s["test_index"].is_string(), "{s}");
        assert!(s["scope_name"].is_string(), "{s}");

        // Metrics under Prometheus' OTLP names, job from service.name.
        let job = format!("otel-test-{protocol}");
        let r = promql(&sx, &format!(r#"sort(http_server_requests_total{{job="{job}"}})"#)).await;
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(r[0]["value"][1], "2");
        assert_eq!(r[0]["metric"]["http_request_method"], "POST");
        assert_eq!(r[0]["metric"]["instance"], run.as_str());
        assert_eq!(r[1]["value"][1], "5");
        let r = promql(
            &sx,
            &format!(r#"http_server_request_duration_seconds_count{{job="{job}"}}"#),
        )
        .await;
        assert_eq!(r[0]["value"][1], "5", "{r:?}");
        let r = promql(
            &sx,
            &format!(r#"http_server_request_duration_seconds_bucket{{job="{job}", le="+Inf"}}"#),
        )
        .await;
        assert_eq!(r[0]["value"][1], "5", "{r:?}");
        let r = promql(&sx, &format!(r#"http_server_active_requests{{job="{job}"}}"#)).await;
        assert_eq!(r[0]["value"][1], "3", "{r:?}");
        let r = promql(&sx, &format!(r#"system_cpu_utilization_ratio{{job="{job}"}}"#)).await;
        assert_eq!(r[0]["value"][1], "0.25", "{r:?}");
        let r = promql(&sx, &format!(r#"target_info{{job="{job}"}}"#)).await;
        assert_eq!(r[0]["metric"]["host_name"], "h1", "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn otlp_http_answers_as_the_specification_says() {
    let dir = tempfile::tempdir().unwrap();
    let sx = Sextant::start(&dir.path().join("data"), Some("server:\n  otlp_grpc_listen: \"\"\n")).await;
    let post = |path: &str, ct: &str, body: Vec<u8>| {
        client()
            .post(sx.url(path))
            .header("Content-Type", ct.to_owned())
            .body(body)
            .send()
    };
    // Other content types: 415.
    let r = post("/v1/logs", "text/plain", b"x".to_vec()).await.unwrap();
    assert_eq!(r.status().as_u16(), 415);
    // Garbage protobuf: 400 with a google.rpc.Status body.
    let r = post("/v1/logs", "application/x-protobuf", vec![0xff, 0xff, 0xff])
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.headers()["content-type"], "application/x-protobuf");
    // Bad JSON: 400 with a JSON Status.
    let r = post(
        "/v1/logs",
        "application/json",
        br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"zz"}]}]}]}"#.to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("traceId"), "{v}");
    // Full success in JSON: `{}`.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let body = serde_json::json!({"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"json-client"}}]},
        "scopeLogs":[{"logRecords":[{"timeUnixNano": now.to_string(), "body":{"stringValue":"json hello"},"traceId":"5B8EFFF798038103D269B633813FC60C"}]}]}]});
    let r = post("/v1/logs", "application/json", body.to_string().into_bytes())
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), "{}");
    // A delta sum cannot be stored: 200 with partial success saying why.
    let body = serde_json::json!({"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"json-client"}}]},
        "scopeMetrics":[{"metrics":[
          {"name":"deltas","sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[{"asInt":"3","timeUnixNano": now.to_string()}]}},
          {"name":"queue.size","unit":"{item}","gauge":{"dataPoints":[{"asDouble":4.5,"timeUnixNano": now.to_string()}]}}]}]}]});
    let r = post("/v1/metrics", "application/json", body.to_string().into_bytes())
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["partialSuccess"]["rejectedDataPoints"], "1", "{v}");
    assert!(
        v["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("cumulative"),
        "{v}"
    );
    let r = promql(&sx, r#"queue_size{job="json-client"}"#).await;
    assert_eq!(r[0]["value"][1], "4.5", "{r:?}");
    // Over the size cap after gzip: 413.
    let mut big = Vec::new();
    {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(&mut big, flate2::Compression::fast());
        gz.write_all(&vec![b' '; 65 << 20]).unwrap();
        gz.finish().unwrap();
    }
    let r = client()
        .post(sx.url("/v1/logs"))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
}
