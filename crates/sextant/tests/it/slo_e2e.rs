//! The SLO engine end to end, in the `sextant` binary: an SLO created over two hours of
//! stored history shows its budget at once (backfill); a scraped target that stops
//! turns a firing SLO `unknown`, not healthy; a bad spec on reload keeps the old SLOs;
//! the API answers in the shapes its OpenAPI document describes; `sextant slo status`
//! prints the table.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use serde_json::Value;
use sextant_collect::remote_write::{WriteRequest, encode};

use crate::remote_write::{post, series};
use crate::support::{Sextant, client, get_json, wait_for};

/// A target whose counters grow by 100 requests, one of them failed, per scrape.
async fn start_target() -> (u16, tokio::task::JoinHandle<()>) {
    let scrapes = Arc::new(AtomicU64::new(0));
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let n = scrapes.fetch_add(1, Ordering::Relaxed) + 1;
            async move {
                format!(
                    "live_requests_total{{code=\"200\"}} {}\nlive_requests_total{{code=\"500\"}} {}\n",
                    99 * n,
                    n
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, task)
}

const HISTORY_SLO: &str = r#"version: prometheus/v1
service: history
slos:
  - name: availability
    objective: 95
    sli:
      events:
        error_query: sum(rate(history_requests_total{code="500"}[{{.window}}]))
        total_query: sum(rate(history_requests_total[{{.window}}]))
    alerting: {page_alert: {disable: true}, ticket_alert: {disable: true}}
"#;

const LIVE_SLO: &str = r#"version: prometheus/v1
service: live
slos:
  - name: availability
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(live_requests_total{code="500"}[{{.window}}]))
        total_query: sum(rate(live_requests_total[{{.window}}]))
    alerting:
      name: LiveAvailability
    sextant:
      # Short windows, so the test sees a tier fire and then lose coverage.
      tiers:
        - name: page
          windows: [{long: 1m, short: 30s, burn_rate: 5}]
"#;

async fn slo(sx: &Sextant, id: &str) -> Value {
    get_json(&sx.url(&format!("/api/sextant/v1/slos/{id}"))).await["data"].clone()
}

fn window<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["windows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["window"] == name)
        .unwrap_or_else(|| panic!("no window {name} in {s}"))
}

/// Every key of `value` is a property of the schema `name` (following `$ref`s and
/// `allOf`, one level into arrays and objects): nothing the API answers is missing
/// from its document.
fn check_against_schema(doc: &Value, name: &str, value: &Value, path: &str) {
    let schema = &doc["components"]["schemas"][name];
    assert!(schema.is_object(), "{path}: no schema {name}");
    let mut props = serde_json::Map::new();
    let mut parts = vec![schema.clone()];
    while let Some(p) = parts.pop() {
        if let Some(all) = p["allOf"].as_array() {
            for a in all {
                match a["$ref"].as_str() {
                    Some(r) => parts.push(doc["components"]["schemas"][r.rsplit('/').next().unwrap()].clone()),
                    None => parts.push(a.clone()),
                }
            }
        }
        if let Some(m) = p["properties"].as_object() {
            props.extend(m.clone());
        }
    }
    let Some(obj) = value.as_object() else { return };
    for (k, v) in obj {
        let prop = props
            .get(k)
            .unwrap_or_else(|| panic!("{path}.{k}: not in the {name} schema"));
        let reference = |p: &Value| -> Option<String> {
            p["$ref"]
                .as_str()
                .or_else(|| p["items"]["$ref"].as_str())
                .or_else(|| {
                    p["oneOf"]
                        .as_array()
                        .and_then(|o| o.iter().find_map(|x| x["$ref"].as_str()))
                })
                .map(|r| r.rsplit('/').next().unwrap().to_owned())
        };
        if let Some(r) = reference(prop) {
            match v {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        check_against_schema(doc, &r, item, &format!("{path}.{k}[{i}]"));
                    }
                }
                Value::Object(_) => check_against_schema(doc, &r, v, &format!("{path}.{k}")),
                _ => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn backfill_unknown_on_missing_data_reload_api_and_status() {
    let (target_port, target) = start_target().await;
    let dir = tempfile::tempdir().unwrap();
    let slo_dir = dir.path().join("slos");
    std::fs::create_dir(&slo_dir).unwrap();
    let config = format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\n\
         scrape_configs:\n  - job_name: live\n    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n\
         slo_files: ['slos/*.yml']\n\
         slo: {{slice: 5s, interval: 1s, settle: 2s}}\n"
    );
    let sx = Sextant::start(&dir.path().join("data"), Some(&config)).await;
    let http = client();

    // Two hours of history, 2% errors, written before any SLO exists.
    let now = sextant_model::time::now_ms();
    let now = now - now.rem_euclid(15_000);
    let start = now - 2 * 3_600_000;
    let points = |per_step: f64| -> Vec<(i64, f64)> {
        (0..=480)
            .map(|i| (start + i * 15_000, per_step * (i + 1) as f64))
            .collect()
    };
    let req = WriteRequest {
        timeseries: vec![
            series("history_requests_total", &[("code", "200")], &points(147.0)),
            series("history_requests_total", &[("code", "500")], &points(3.0)),
        ],
        metadata: vec![],
    };
    assert_eq!(post(&sx, encode(&req)).await.0, 204);

    // Now the SLOs arrive, by reload.
    std::fs::write(slo_dir.join("history.yml"), HISTORY_SLO).unwrap();
    std::fs::write(slo_dir.join("live.yml"), LIVE_SLO).unwrap();
    let r = http.post(sx.url("/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let history = wait_for("the history SLO's first evaluation", Duration::from_secs(30), || {
        let sx = &sx;
        async move {
            let s = slo(sx, "history-availability").await;
            (s["backfill"]["done"] == true).then_some(s)
        }
    })
    .await;
    // 2% errors against a 5% budget: 40% of it spent, 60% left, from the history alone.
    let close = |v: &Value, want: f64, what: &str| {
        let got = v.as_f64().unwrap_or_else(|| panic!("{what}: {v}"));
        assert!((got - want).abs() < 1e-9, "{what}: {got}, want {want}");
    };
    close(&history["budget"]["period_error_ratio"], 0.02, "period error ratio");
    close(&history["budget"]["remaining"], 0.6, "budget left");
    close(&window(&history, "2h")["error_ratio"], 0.02, "2h error ratio");
    close(&window(&history, "1h")["coverage"], 1.0, "1h coverage");
    // Sloth's series are queryable.
    let q =
        get_json(&sx.url(
            "/api/v1/query?query=slo:period_error_budget_remaining:ratio%7Bsloth_id%3D%22history-availability%22%7D",
        ))
        .await;
    close(
        &Value::from(
            q["data"]["result"][0]["value"][1]
                .as_str()
                .unwrap()
                .parse::<f64>()
                .unwrap(),
        ),
        0.6,
        "recorded budget",
    );

    // The live SLO burns at 10x (1% errors, 0.1% budget): its page tier fires once
    // the windows have data.
    let firing = wait_for("the live SLO's page tier to fire", Duration::from_secs(120), || {
        let sx = &sx;
        async move {
            let s = slo(sx, "live-availability").await;
            (s["state"] == "firing").then_some(s)
        }
    })
    .await;
    let page = &firing["tiers"][0];
    assert_eq!(page["name"], "page");
    assert_eq!(page["conditions"][0]["state"], "firing");
    // The firing tier is an alert in the router, with the SLO's labels and the
    // evidence in its annotations.
    let alert = wait_for("the burn tier's alert", Duration::from_secs(30), || {
        let url = sx.url("/api/v2/alerts?filter=sloth_id%3D%22live-availability%22");
        async move {
            let v = get_json(&url).await;
            v.as_array()?.first().cloned()
        }
    })
    .await;
    assert_eq!(alert["labels"]["alertname"], "LiveAvailability");
    assert_eq!(alert["labels"]["sloth_service"], "live");
    assert_eq!(alert["labels"]["sloth_severity"], "page");
    assert_eq!(alert["labels"]["tier"], "page");
    assert_eq!(alert["labels"]["windows"], "1m/30s");
    assert!(
        alert["annotations"]["burn_rate_long"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            > 5.0
    );
    assert_eq!(
        alert["annotations"]["summary"],
        "live availability SLO error budget burn rate is over expected."
    );
    assert!(
        alert["annotations"]["slo_url"]
            .as_str()
            .unwrap()
            .ends_with("/api/sextant/v1/slos/live-availability")
    );

    // A bad spec on reload: refused with file and line, the SLOs in force stay.
    std::fs::write(
        slo_dir.join("history.yml"),
        HISTORY_SLO.replace("objective: 95", "objective: 200"),
    )
    .unwrap();
    let r = http.post(sx.url("/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 500);
    let text = r.text().await.unwrap();
    assert!(text.contains("history.yml:5") && text.contains("objective"), "{text}");
    let list = get_json(&sx.url("/api/sextant/v1/slos")).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2, "{list}");

    // The target goes away: no data is not good data. The tier neither fires nor
    // resolves; it is unknown, and remembers it was firing.
    target.abort();
    let unknown = wait_for("the live SLO to turn unknown", Duration::from_secs(60), || {
        let sx = &sx;
        async move {
            let s = slo(sx, "live-availability").await;
            (s["state"] == "unknown").then_some(s)
        }
    })
    .await;
    assert_eq!(unknown["tiers"][0]["last_known_state"], "firing");
    assert_eq!(unknown["tiers"][0]["conditions"][0]["state"], "unknown");
    // Unknown neither resolves the alert: it is still firing in the router.
    let still = get_json(&sx.url("/api/v2/alerts?filter=sloth_id%3D%22live-availability%22")).await;
    assert_eq!(still.as_array().unwrap().len(), 1, "{still}");

    // The API's shapes are its document's.
    let doc = get_json(&sx.url("/api/sextant/v1/openapi.json")).await;
    assert_eq!(doc["openapi"], "3.1.0");
    for path in ["/api/sextant/v1/slos", "/api/sextant/v1/slos/{id}"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} in {doc}");
    }
    check_against_schema(&doc, "SloStatus", &unknown, "slo");
    for s in list["data"].as_array().unwrap() {
        check_against_schema(&doc, "SloSummary", s, "list");
    }
    let r = http.get(sx.url("/api/sextant/v1/slos/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(body["errorType"], "not_found");
    check_against_schema(&doc, "ErrorResponse", &body, "error");
    let r = http
        .get(sx.url("/api/sextant/v1/slos/live-availability?time=yesterday"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // `sextant slo status` prints them.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["slo", "status", "--server", &sx.url("")])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    assert!(table.starts_with("SLO "), "{table}");
    assert!(
        table.contains("history-availability") && table.contains("60.00%"),
        "{table}"
    );
    assert!(
        table.contains("live-availability") && table.contains("unknown"),
        "{table}"
    );
}
