//! Logs end to end: Loki pushes (JSON and snappy protobuf) into the binary,
//! queried back through Loki's API as Grafana calls it, and `kill -9` during
//! concurrent pushes losing or doubling nothing that was acknowledged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sextant_api::loki::{EntryPb, PushRequestPb, StreamPb, TimestampPb};

use crate::support::{Sextant, client, wait_for};

const CONFIG: &str = "storage:\n  retention: 0s\n";

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
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
    let proto = PushRequestPb {
        streams: vec![StreamPb {
            labels: r#"{app="web", env="dev"}"#.into(),
            entries: vec![EntryPb {
                timestamp: Some(TimestampPb {
                    seconds: t / 1_000_000_000,
                    nanos: (t % 1_000_000_000) as i32 + 2,
                }),
                line: "level=warn msg=\"from protobuf\" status=404".into(),
                structured_metadata: Vec::new(),
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

/// Reads WebSocket messages until one carries a line containing `want`; returns
/// every line seen on the way, in order.
async fn tail_until<S>(ws: &mut S, want: &str) -> Vec<String>
where
    S: futures_util::Stream<
            Item = Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>,
        > + Unpin,
{
    use futures_util::StreamExt;
    let mut lines = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no tail message with {want:?} in 20 s; lines so far: {lines:?}"))
            .expect("the tail socket closed")
            .expect("tail socket error");
        let tokio_tungstenite::tungstenite::Message::Text(text) = msg else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(v["dropped_entries"].is_null(), "{v}");
        for s in v["streams"].as_array().unwrap() {
            assert_eq!(s["stream"]["app"], "tail", "{v}");
            for e in s["values"].as_array().unwrap() {
                assert_eq!(e.as_array().unwrap().len(), 2, "{v}");
                lines.push(e[1].as_str().unwrap().to_owned());
            }
        }
        if lines.iter().any(|l| l.contains(want)) {
            return lines;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tail_websocket_sends_history_then_new_entries_as_grafana_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let sx = Sextant::start(&dir.path().join("data"), Some(CONFIG)).await;
    let t = now_ns();
    let push = |values: serde_json::Value| {
        push_json(
            &sx,
            serde_json::json!({"streams": [{"stream": {"app": "tail"}, "values": values}]}),
        )
    };
    assert_eq!(
        push(serde_json::json!([[(t - 10_000_000_000).to_string(), "keep old"]]))
            .await
            .0,
        204
    );
    wait_for("the old entry to be searchable", Duration::from_secs(10), || {
        let sx = &sx;
        async move {
            let (s, b) = get(
                sx,
                "/loki/api/v1/query_range",
                &[("query", r#"{app="tail"}"#.into()), ("limit", "10".into())],
            )
            .await;
            (s == 200 && lines_of(&b).len() == 1).then_some(())
        }
    })
    .await;

    // Grafana probes the v2alpha endpoint and uses v1 unless it answers 400.
    assert_eq!(get(&sx, "/loki/api/v2alpha/tail", &[]).await.0, 404);
    // Parameter errors answer 400 before any upgrade, as Loki's do.
    for (params, want) in [
        (
            vec![("query", r#"{app="tail"}"#.to_owned()), ("delay_for", "6".into())],
            "delay_for can't be greater than 5",
        ),
        (
            vec![("query", r#"count_over_time({app="tail"}[1m])"#.to_owned())],
            "tail queries must be log queries",
        ),
        (vec![("query", "{app=".to_owned())], "parse error"),
    ] {
        let (status, body) = get(&sx, "/loki/api/v1/tail", &params).await;
        assert_eq!(status, 400, "{params:?}: {body}");
        assert!(body.contains(want), "{params:?}: {body}");
    }

    // As Grafana's backend dials it: only `query`, so history starts an hour back.
    let ws_url = with_params(
        sx.url("/loki/api/v1/tail").replacen("http://", "ws://", 1),
        &[("query", r#"{app="tail"} |= "keep""#.into())],
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    assert_eq!(tail_until(&mut ws, "keep old").await, vec!["keep old"]);

    let t = now_ns();
    assert_eq!(
        push(serde_json::json!([
            [t.to_string(), "drop new"],
            [(t + 1).to_string(), "keep new"]
        ]))
        .await
        .0,
        204
    );
    // Only what the line filter keeps, once (the old entry is not sent again).
    assert_eq!(tail_until(&mut ws, "keep new").await, vec!["keep new"]);

    // `delay_for` holds entries back and sends them in timestamp order.
    let ws_url = with_params(
        sx.url("/loki/api/v1/tail").replacen("http://", "ws://", 1),
        &[
            ("query", r#"{app="tail"} |= "late""#.into()),
            ("delay_for", "2".into()),
            ("start", now_ns().to_string()),
        ],
    );
    let (mut delayed, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    let t = now_ns();
    assert_eq!(
        push(serde_json::json!([
            [(t + 2).to_string(), "late b"],
            [(t + 1).to_string(), "late a"]
        ]))
        .await
        .0,
        204
    );
    assert_eq!(tail_until(&mut delayed, "late b").await, vec!["late a", "late b"]);
    drop(ws);
    drop(delayed);
}

const LOG_RULES: &str = r#"groups:
  - name: log-derived
    interval: 1s
    rules:
      - record: app:log_errors:count1m
        expr: sum by (app) (count_over_time({app="ruled"} |= "error" [1m]))
      - alert: LogErrors
        expr: sum by (app) (count_over_time({app="ruled"} |= "error" [1m])) > 1
        labels: {severity: ticket}
        annotations: {summary: "{{ $labels.app }} logged {{ $value }} errors"}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn logql_rules_record_series_and_fire_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("log.rules.yml");
    std::fs::write(&rules, LOG_RULES).unwrap();
    // `sextant check rules --logql` takes the file; as PromQL it is refused.
    let check = |logql: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sextant"));
        cmd.args(["check", "rules"]);
        if logql {
            cmd.arg("--logql");
        }
        cmd.arg(&rules).output().unwrap()
    };
    let out = check(true);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS: 2 rules found"));
    assert!(!check(false).status.success());

    let sx = Sextant::start(
        &dir.path().join("data"),
        Some("global:\n  evaluation_interval: 1s\nlogs:\n  rule_files: [log.rules.yml]\n"),
    )
    .await;
    let t = now_ns();
    let (status, body) = push_json(
        &sx,
        serde_json::json!({"streams": [{"stream": {"app": "ruled"}, "values": [
            [t.to_string(), "level=error msg=\"first error\""],
            [(t + 1).to_string(), "level=info msg=fine"],
            [(t + 2).to_string(), "level=error msg=\"second error\""]
        ]}]}),
    )
    .await;
    assert_eq!(status, 204, "{body}");

    // The recorded series, through PromQL.
    wait_for("the LogQL recording rule's series", Duration::from_secs(20), || {
        let sx = &sx;
        async move {
            let (s, b) = get(sx, "/api/v1/query", &[("query", "app:log_errors:count1m".into())]).await;
            let v: serde_json::Value = serde_json::from_str(&b).ok()?;
            (s == 200
                && v["data"]["result"][0]["metric"]
                    == serde_json::json!({"__name__": "app:log_errors:count1m", "app": "ruled"})
                && v["data"]["result"][0]["value"][1] == "2")
                .then_some(())
        }
    })
    .await;
    // The alert, where Loki's ruler lists alerts, with its template expanded.
    let alert = wait_for("the LogQL alert to fire", Duration::from_secs(20), || {
        let sx = &sx;
        async move {
            let (s, b) = get(sx, "/prometheus/api/v1/alerts", &[]).await;
            let v: serde_json::Value = serde_json::from_str(&b).ok()?;
            let a = v["data"]["alerts"].as_array()?.first()?.clone();
            (s == 200 && a["state"] == "firing").then_some(a)
        }
    })
    .await;
    assert_eq!(alert["labels"]["alertname"], "LogErrors");
    assert_eq!(alert["labels"]["app"], "ruled");
    assert_eq!(alert["labels"]["severity"], "ticket");
    assert_eq!(alert["annotations"]["summary"], "ruled logged 2 errors");
    // The rules API shows the LogQL as written, healthy.
    let (_, body) = get(&sx, "/api/v1/rules", &[]).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let rules = &v["data"]["groups"][0]["rules"];
    assert_eq!(
        rules[0]["query"],
        r#"sum by (app) (count_over_time({app="ruled"} |= "error" [1m]))"#
    );
    assert_eq!(rules[0]["health"], "ok", "{body}");
    assert_eq!(rules[1]["health"], "ok", "{body}");
}
