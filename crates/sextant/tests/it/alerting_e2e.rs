//! Alerting end to end in the `sextant` binary: an alerting rule fires through the
//! router to a webhook with its templates expanded; Prometheus' and Alertmanager's
//! APIs show it; a Prometheus 2.42 server delivers its own alerts to Sextant as to
//! an Alertmanager; after `kill -9` the silences are there and nothing is sent
//! twice; `server.auth` guards silences and reload by role.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use serde_json::Value;

use crate::support::{Sextant, client, free_port, get_json, start_prometheus, wait_for, wait_ready};

type Got = Arc<Mutex<Vec<Value>>>;

/// A webhook receiver on loopback recording the bodies it gets.
async fn sink() -> (String, Got, tokio::task::JoinHandle<()>) {
    let got: Got = Arc::default();
    let g = got.clone();
    let app = Router::new().route(
        "/hook",
        post(move |body: Bytes| {
            let g = g.clone();
            async move {
                g.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    (
        url,
        got,
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() }),
    )
}

const RULES: &str = r#"groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: AlwaysFiring
        expr: vector(42)
        labels: {severity: page}
        annotations:
          summary: 'value is {{ $value }} ({{ humanize 1234567 }})'
"#;

fn config(dir: &std::path::Path, hook: &str) -> String {
    std::fs::write(dir.join("e2e.rules.yml"), RULES).unwrap();
    format!(
        "global: {{evaluation_interval: 1s, external_labels: {{cluster: e2e}}}}\n\
         rule_files: ['{}']\n\
         scrape_configs: []\n\
         alerting:\n  route:\n    receiver: hook\n    group_by: [alertname]\n    group_wait: 500ms\n    group_interval: 1s\n    repeat_interval: 1h\n  \
         receivers:\n  - name: hook\n    webhook_configs: [{{url: '{hook}'}}]\n",
        dir.join("e2e.rules.yml").display()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn rule_alerts_reach_receivers_and_survive_kill_9() {
    let (hook, got, _server) = sink().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = config(dir.path(), &hook);
    let sx = Sextant::start(&data, Some(&cfg)).await;

    // The rule fires, and the router sends it with the rule's labels, the external
    // labels, and the annotation expanded as Prometheus expands it.
    let first = wait_for("the webhook notification", Duration::from_secs(30), || {
        let got = got.clone();
        async move { got.lock().unwrap().first().cloned() }
    })
    .await;
    let a = &first["alerts"][0];
    assert_eq!(a["labels"]["alertname"], "AlwaysFiring");
    assert_eq!(a["labels"]["severity"], "page");
    assert_eq!(a["labels"]["cluster"], "e2e");
    assert_eq!(a["annotations"]["summary"], "value is 42 (1.235M)");
    assert!(
        a["generatorURL"]
            .as_str()
            .unwrap()
            .contains("/graph?g0.expr=vector%2842%29&g0.tab=1")
    );

    // Prometheus' view and Alertmanager's view.
    let alerts = get_json(&sx.url("/api/v1/alerts")).await;
    assert_eq!(alerts["data"]["alerts"][0]["state"], "firing");
    assert_eq!(alerts["data"]["alerts"][0]["value"], "4.2e+01");
    let rules = get_json(&sx.url("/api/v1/rules?type=alert")).await;
    let rule = &rules["data"]["groups"][0]["rules"][0];
    assert_eq!(rule["type"], "alerting");
    assert_eq!(rule["health"], "ok");
    assert_eq!(rule["state"], "firing");
    let am = get_json(&sx.url("/api/v2/alerts")).await;
    assert_eq!(am[0]["labels"]["alertname"], "AlwaysFiring");
    assert_eq!(am[0]["status"]["state"], "active");
    assert_eq!(am[0]["receivers"][0]["name"], "hook");

    // A silence, then a crash.
    let now = sextant_model::time::now_ms();
    let silence = serde_json::json!({
        "matchers": [{"name": "alertname", "value": "Other", "isRegex": false, "isEqual": true}],
        "startsAt": sextant_model::time::format_rfc3339(now),
        "endsAt": sextant_model::time::format_rfc3339(now + 3_600_000),
        "createdBy": "e2e",
        "comment": "kept across kill -9",
    });
    let r = client()
        .post(sx.url("/api/v2/silences"))
        .json(&silence)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["silenceID"]
        .as_str()
        .unwrap()
        .to_owned();
    let sent_before = got.lock().unwrap().len();
    sx.kill9();

    let sx = Sextant::start(&data, Some(&cfg)).await;
    let silences = get_json(&sx.url("/api/v2/silences")).await;
    assert_eq!(silences[0]["id"], id);
    assert_eq!(silences[0]["status"]["state"], "active");
    // The alert is held again and routed, but was notified already: no repeat
    // before its repeat interval (1h).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let am = get_json(&sx.url("/api/v2/alerts")).await;
    assert_eq!(am[0]["labels"]["alertname"], "AlwaysFiring");
    assert_eq!(
        got.lock().unwrap().len(),
        sent_before,
        "nothing sent twice after kill -9"
    );
    // The incident opened by the first notification is still open.
    let incidents = get_json(&sx.url("/api/sextant/v1/incidents?state=open")).await;
    assert_eq!(incidents["data"][0]["group_labels"]["alertname"], "AlwaysFiring");
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_sends_its_alerts_to_sextant_as_to_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let sx = Sextant::start(&dir.path().join("data"), Some("scrape_configs: []\n")).await;
    std::fs::write(
        dir.path().join("p.rules.yml"),
        "groups:\n- name: p\n  interval: 1s\n  rules:\n  - alert: FromPrometheus\n    expr: vector(1)\n    labels: {team: a}\n",
    )
    .unwrap();
    let port = free_port();
    let _prom = start_prometheus(
        dir.path(),
        port,
        &format!(
            "global: {{evaluation_interval: 1s}}\nrule_files: ['{}']\nalerting:\n  alertmanagers:\n  - static_configs: [{{targets: ['127.0.0.1:{}']}}]\n",
            dir.path().join("p.rules.yml").display(),
            sx.port
        ),
        // Its first send can come before it has discovered Sextant (and be dropped);
        // a short resend delay makes the next one come soon.
        &["--rules.alert.resend-delay=2s"],
    );
    wait_ready("prometheus", &format!("http://127.0.0.1:{port}/-/ready")).await;
    let got = wait_for("Prometheus' alert in Sextant", Duration::from_secs(60), || {
        let url = sx.url("/api/v2/alerts?filter=alertname%3D%22FromPrometheus%22");
        async move {
            let v = get_json(&url).await;
            (!v.as_array()?.is_empty()).then_some(v)
        }
    })
    .await;
    assert_eq!(got[0]["labels"]["team"], "a");
    assert!(got[0]["generatorURL"].as_str().unwrap().contains("/graph?g0.expr="));
    // Prometheus counts sends and no errors (its own /metrics).
    let metrics = client()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1.0)
    };
    assert!(value("prometheus_notifications_sent_total") >= 1.0, "{metrics}");
    assert_eq!(value("prometheus_notifications_errors_total"), 0.0);
}

/// SHA-256 of a string, hex (as `printf %s TOKEN | sha256sum`).
fn sha256(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn server_auth_guards_silences_and_reload_by_role() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "scrape_configs: []\nserver:\n  auth:\n    tokens:\n    - {{name: viewer-bot, role: viewer, sha256: {}}}\n    - {{name: oncall-bot, role: operator, sha256: {}}}\n    users:\n    - {{username: root, role: admin, password_sha256: {}}}\n",
        sha256("v-token"),
        sha256("o-token"),
        sha256("hunter2hunter2")
    );
    let sx = Sextant::start(&dir.path().join("data"), Some(&cfg)).await;
    let now = sextant_model::time::now_ms();
    let silence = serde_json::json!({
        "matchers": [{"name": "alertname", "value": "X", "isRegex": false, "isEqual": true}],
        "startsAt": sextant_model::time::format_rfc3339(now),
        "endsAt": sextant_model::time::format_rfc3339(now + 3_600_000),
        "createdBy": "",
        "comment": "c",
    });
    let http = client();
    let post = |token: Option<&str>| {
        let mut r = http.post(sx.url("/api/v2/silences")).json(&silence);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 401);
    assert_eq!(post(Some("wrong")).await.unwrap().status(), 401);
    assert_eq!(post(Some("v-token")).await.unwrap().status(), 403);
    let r = post(Some("o-token")).await.unwrap();
    assert_eq!(r.status(), 200);
    // Reads stay open; the author is the token's name.
    let silences = get_json(&sx.url("/api/v2/silences")).await;
    assert_eq!(silences[0]["createdBy"], "oncall-bot");
    // Posted alerts stay open too (Prometheus servers send them).
    let r = http
        .post(sx.url("/api/v2/alerts"))
        .json(&serde_json::json!([{"labels": {"alertname": "X"}}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Reload needs admin.
    let r = http
        .post(sx.url("/-/reload"))
        .bearer_auth("o-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http
        .post(sx.url("/-/reload"))
        .basic_auth("root", Some("hunter2hunter2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
