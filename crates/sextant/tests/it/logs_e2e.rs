//! Logs end to end: Loki pushes (JSON and snappy protobuf) into the binary,
//! queried back through Loki's API as Grafana calls it, and `kill -9` during
//! concurrent pushes losing or doubling nothing that was acknowledged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{Sextant, client, wait_for};

const CONFIG: &str = "storage:\n  retention: 0s\n";

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

#[derive(Clone, PartialEq, prost::Message)]
struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    streams: Vec<StreamPb>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StreamPb {
    #[prost(string, tag = "1")]
    labels: String,
    #[prost(message, repeated, tag = "2")]
    entries: Vec<EntryPb>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct EntryPb {
    #[prost(message, optional, tag = "1")]
    timestamp: Option<Ts>,
    #[prost(string, tag = "2")]
    line: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Ts {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

async fn push_json(sx: &Sextant, body: serde_json::Value) -> (u16, String) {
    let r = client()
        .post(sx.url("/loki/api/v1/push"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn with_params(url: String, params: &[(&str, String)]) -> String {
    let q = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    format!("{url}?{q}")
}

async fn get(sx: &Sextant, path: &str, params: &[(&str, String)]) -> (u16, String) {
    let r = client().get(with_params(sx.url(path), params)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn lines_of(body: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    let mut out = Vec::new();
    for s in v["data"]["result"].as_array().unwrap() {
        for e in s["values"].as_array().unwrap() {
            out.push(e[1].as_str().unwrap().to_owned());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn loki_push_and_query_as_grafana_calls_them() {
    let dir = tempfile::tempdir().unwrap();
    let sx = Sextant::start(&dir.path().join("data"), Some(CONFIG)).await;

    // Grafana's health check.
    let (status, body) = get(
        &sx,
        "/loki/api/v1/query",
        &[
            ("query", "vector(1)+vector(1)".into()),
            ("time", "4000000000".into()),
            ("direction", "backward".into()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(v["data"]["result"][0]["value"], serde_json::json!([4000000000i64, "2"]));

    let t = now_ns();
    let (status, body) = push_json(
        &sx,
        serde_json::json!({"streams": [{
            "stream": {"app": "web", "env": "prod"},
            "values": [
                [t.to_string(), "level=info msg=\"hello\" status=200"],
                [(t + 1).to_string(), "level=error msg=\"needle-7f3a failed\" status=500", {"trace_id": "0242ac120002"}]
            ]
        }]}),
    )
    .await;
    assert_eq!((status, body.as_str()), (204, ""));
    let proto = PushRequest {
        streams: vec![StreamPb {
            labels: r#"{app="web", env="dev"}"#.into(),
            entries: vec![EntryPb {
                timestamp: Some(Ts {
                    seconds: t / 1_000_000_000,
                    nanos: (t % 1_000_000_000) as i32 + 2,
                }),
                line: "level=warn msg=\"from protobuf\" status=404".into(),
            }],
        }],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&prost::Message::encode_to_vec(&proto))
        .unwrap();
    let r = client()
        .post(sx.url("/loki/api/v1/push"))
        .header("Content-Type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);

    // Searchable within seconds.
    let range = |q: &str| {
        vec![
            ("query", q.to_owned()),
            ("start", (t - 60_000_000_000).to_string()),
            ("end", (t + 60_000_000_000).to_string()),
            ("limit", "1000".into()),
            ("direction", "backward".into()),
            ("step", "15000ms".into()),
        ]
    };
    // All three entries (two pushes) searchable.
    wait_for("both pushes to be searchable", Duration::from_secs(10), || {
        let p = range(r#"{app="web"}"#);
        let sx = &sx;
        async move {
            let (s, b) = get(sx, "/loki/api/v1/query_range", &p).await;
            (s == 200 && lines_of(&b).len() == 3).then_some(())
        }
    })
    .await;
    let found = wait_for("the needle to be searchable", Duration::from_secs(10), || {
        let p = range(r#"{app="web"} |= "needle-7f3a""#);
        let sx = &sx;
        async move {
            let (s, b) = get(sx, "/loki/api/v1/query_range", &p).await;
            (s == 200 && lines_of(&b).len() == 1).then_some(b)
        }
    })
    .await;
    let v: serde_json::Value = serde_json::from_str(&found).unwrap();
    let stream = &v["data"]["result"][0]["stream"];
    assert_eq!(stream["service_name"], "web");
    assert_eq!(stream["detected_level"], "error");
    assert_eq!(stream["trace_id"], "0242ac120002");
    assert!(v["data"]["stats"]["summary"].is_object());

    // The categorize-labels encoding Grafana asks for.
    let r = client()
        .get(with_params(
            sx.url("/loki/api/v1/query_range"),
            &range(r#"{app="web"} |= "needle-7f3a" | logfmt"#),
        ))
        .header("X-Loki-Response-Encoding-Flags", "categorize-labels")
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["data"]["encodingFlags"], serde_json::json!(["categorize-labels"]));
    let s = &v["data"]["result"][0];
    assert_eq!(
        s["stream"],
        serde_json::json!({"app": "web", "env": "prod", "service_name": "web"})
    );
    assert_eq!(s["values"][0][2]["structuredMetadata"]["trace_id"], "0242ac120002");
    assert_eq!(s["values"][0][2]["parsed"]["status"], "500");

    // Grafana's logs volume query.
    let (status, body) = get(
        &sx,
        "/loki/api/v1/query_range",
        &range(r#"sum by (level, detected_level) (count_over_time({app="web"} | drop __error__[1m]))"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["resultType"], "matrix");
    let levels: Vec<&str> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["metric"]["detected_level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, vec!["error", "info", "warn"]);

    // Metadata calls.
    let (_, body) = get(
        &sx,
        "/loki/api/v1/labels",
        &[
            ("start", (t - 60_000_000_000).to_string()),
            ("end", (t + 60_000_000_000).to_string()),
        ],
    )
    .await;
    assert_eq!(body, r#"{"data":["app","env","service_name"],"status":"success"}"#);
    let (_, body) = get(
        &sx,
        "/loki/api/v1/label/env/values",
        &[
            ("start", (t - 60_000_000_000).to_string()),
            ("end", (t + 60_000_000_000).to_string()),
            ("query", r#"{app="web"}"#.into()),
        ],
    )
    .await;
    assert_eq!(body, r#"{"data":["dev","prod"],"status":"success"}"#);
    let (_, body) = get(
        &sx,
        "/loki/api/v1/index/stats",
        &[
            ("query", r#"{app="web"}"#.into()),
            ("start", (t - 60_000_000_000).to_string()),
            ("end", (t + 60_000_000_000).to_string()),
        ],
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["streams"].as_u64(), v["entries"].as_u64()), (Some(2), Some(3)));

    let (_, body) = get(
        &sx,
        "/loki/api/v1/detected_labels",
        &[
            ("query", r#"{app="web"}"#.into()),
            ("start", (t - 60_000_000_000).to_string()),
            ("end", (t + 60_000_000_000).to_string()),
        ],
    )
    .await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"detectedLabels": [{"label": "app", "cardinality": 1}, {"label": "env", "cardinality": 2}, {"label": "service_name", "cardinality": 1}]})
    );

    // `sextant logs` prints entries with their time and labels.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args([
            "logs",
            r#"{app="web"} |= "needle-7f3a""#,
            "--since",
            "10m",
            "--server",
            &sx.url(""),
        ])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains(r#"app="web""#) && text.contains("needle-7f3a failed"),
        "{text}"
    );
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args([
            "logs",
            r#"sum(count_over_time({app="web"}[10m]))"#,
            "--since",
            "10m",
            "--server",
            &sx.url(""),
        ])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains('3'),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Errors as Loki words them, in plain text.
    let (status, body) = get(&sx, "/loki/api/v1/query_range", &range(r#"{app="web""#)).await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "parse error at line 1, col 11: syntax error: unexpected $end, expecting } or ,"
        )
    );
    let (status, body) = get(&sx, "/loki/api/v1/query", &[("query", r#"{app="web"}"#.into())]).await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "log queries are not supported as an instant query type, please change your query to a range query type"
        )
    );
    let (status, body) = push_json(
        &sx,
        serde_json::json!({"streams": [{"stream": {"app": "x"}, "values": [[1, "numeric ts"]]}]}),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (400, "Value is string, but can't find closing '\"' symbol\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_concurrent_pushes_keeps_every_acknowledged_entry_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sx = Sextant::start(&data, Some(CONFIG)).await;
    let acked: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let url = sx.url("/loki/api/v1/push");
    let mut tasks = Vec::new();
    for w in 0..4 {
        let acked = acked.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            for r in 0..10_000 {
                let t = now_ns();
                let ids: Vec<String> = (0..20).map(|i| format!("w{w}-r{r}-i{i}")).collect();
                let values: Vec<serde_json::Value> = ids.iter().enumerate().map(|(i, id)| serde_json::json!([(t + i as i64).to_string(), format!("entry {id}")])).collect();
                let body = serde_json::json!({"streams": [{"stream": {"app": "load", "worker": w.to_string()}, "values": values}]});
                match client().post(&url).header("Content-Type", "application/json").body(body.to_string()).send().await {
                    Ok(resp) if resp.status().as_u16() == 204 => acked.lock().unwrap().extend(ids),
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
    assert!(
        acked.len() >= 200,
        "only {} entries were acknowledged before the kill",
        acked.len()
    );

    let sx = Sextant::start(&data, Some(CONFIG)).await;
    let t = now_ns();
    let mut seen: HashMap<String, usize> = HashMap::new();
    // Read everything back, oldest first, in pages of 5000.
    let mut start = t - 600_000_000_000;
    loop {
        let (status, body) = get(
            &sx,
            "/loki/api/v1/query_range",
            &[
                ("query", r#"{app="load"}"#.into()),
                ("start", start.to_string()),
                ("end", (t + 1).to_string()),
                ("limit", "5000".into()),
                ("direction", "forward".into()),
            ],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut page: Vec<(i64, String)> = Vec::new();
        for s in v["data"]["result"].as_array().unwrap() {
            for e in s["values"].as_array().unwrap() {
                page.push((
                    e[0].as_str().unwrap().parse().unwrap(),
                    e[1].as_str().unwrap().to_owned(),
                ));
            }
        }
        if page.is_empty() {
            break;
        }
        let last = page.iter().map(|(ts, _)| *ts).max().unwrap();
        // Entries at the page's last timestamp are read again by the next page.
        for (ts, line) in &page {
            if *ts < last || page.len() < 5000 {
                *seen.entry(line.trim_start_matches("entry ").to_owned()).or_default() += 1;
            }
        }
        if page.len() < 5000 {
            break;
        }
        start = last;
    }
    let missing: Vec<&String> = acked.iter().filter(|id| !seen.contains_key(*id)).collect();
    let doubled: Vec<(&String, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
    let startup: Vec<String> = sx
        .log()
        .lines()
        .filter(|l| l.contains("log store"))
        .map(str::to_owned)
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged entries lost, e.g. {:?}; {} read back; restart: {startup:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)],
        seen.len()
    );
    assert!(
        doubled.is_empty(),
        "entries stored twice: {:?}",
        &doubled[..doubled.len().min(5)]
    );
}
