//! Actions end to end: `sextant demo --fast` as a process (the incident scenario
//! with compressed time), its audit log across `kill -9`, replicas a killed
//! Sextant left behind, no action on vanished metrics, and approvals through the
//! API and the CLI.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use serde_json::Value;

use crate::support::{Sextant, client, free_port, get_json, wait_for};

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .is_some_and(|s| s.split(") ").nth(1).is_some_and(|r| !r.starts_with('Z')))
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_incident_scales_up_recovers_and_scales_down_without_flapping() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let summary = dir.path().join("summary.json");
    let mut demo = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["demo", "--fast", "--keep", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path().join("demo"))
        .arg("--summary-json")
        .arg(&summary)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("demo.log")).unwrap())
        .spawn()
        .unwrap();
    // The narration, until the scenario is done and the demo keeps running.
    let stdout = demo.stdout.take().unwrap();
    let narration = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            text.push_str(&line);
            text.push('\n');
            if line.starts_with("Still running") {
                break;
            }
        }
        text
    });
    let text = tokio::time::timeout(Duration::from_secs(240), narration)
        .await
        .unwrap_or_else(|_| {
            let log = std::fs::read_to_string(dir.path().join("demo.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            panic!(
                "the scenario did not finish in time; end of the demo's log:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        })
        .unwrap();
    let tl: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap())
        .unwrap_or_else(|e| panic!("no summary ({e}); narration:\n{text}"));
    let t = |k: &str| tl[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {tl:#}\n{text}"));
    // The sequence: burn over the threshold, page, scale, recovery, resolved.
    assert!(t("surge") <= t("first_over_threshold"), "{tl:#}");
    assert!(t("first_over_threshold") <= t("page_fired") + 0.01, "{tl:#}");
    assert!(t("scale_decided") + 0.01 >= t("first_over_threshold"), "{tl:#}");
    assert!(t("scale_effective") >= t("scale_decided"), "{tl:#}");
    assert!(t("page_notified") >= t("page_fired") - 0.5, "{tl:#}");
    assert!(t("burn_below_1") > t("scale_effective"), "{tl:#}");
    assert!(t("resolved_notified") > t("page_notified"), "{tl:#}");
    assert_eq!(tl["scaled_to"], 4);
    // No flapping and no scale-down during the incident.
    let notes: Vec<(String, String)> = tl["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n[2].as_str().unwrap().contains("DemoAvailability"))
        .map(|n| (n[1].as_str().unwrap().to_owned(), n[2].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        notes.iter().map(|n| n.0.as_str()).collect::<Vec<_>>(),
        ["firing", "resolved"],
        "one firing and one resolved notification: {text}"
    );
    assert_eq!(tl["scale_downs_during_incident"], 0);
    let downs = tl["scale_downs"].as_array().unwrap();
    assert!(!downs.is_empty() && downs.iter().all(|d| d[0].as_f64().unwrap() > t("load_normal")));
    assert!(
        tl["action_annotation"]
            .as_str()
            .unwrap()
            .starts_with("scaled demo from 2 to 4 replicas at "),
        "{tl:#}"
    );
    assert!(text.contains("→ scaled demo from 2 to 4 replicas at"), "{text}");

    // The API: the audit record with its evidence, the workload, the metrics.
    let api = format!("http://127.0.0.1:{port}");
    let up = get_json(&format!("{api}/api/sextant/v1/actions?kind=scale&decision=act")).await["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"]["to"] == 4)
        .cloned()
        .unwrap();
    assert_eq!(up["status"], "succeeded");
    assert_eq!(up["trigger"], "slo demo-availability tier page");
    assert_eq!(up["evidence"]["slo"]["state"], "firing");
    assert!(
        up["evidence"]["slo"]["conditions"][0]["short_burn_rate"]
            .as_f64()
            .unwrap()
            >= 10.0
    );
    let w = get_json(&format!("{api}/api/sextant/v1/workloads/demo")).await["data"].clone();
    assert_eq!(w["replicas"], 2);
    assert_eq!(w["process"]["ready"], 2);
    let metrics = client()
        .get(format!("{api}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("sextant_action_decisions_total{policy=\"scale-demo\",workload=\"demo\",decision=\"act\"}"),
        "{metrics}"
    );
    // The replicas are scraped with their labels.
    let up_series = get_json(&format!("{api}/api/v1/query?query=up%7Bjob%3D%22demo%22%7D")).await;
    let series = up_series["data"]["result"].as_array().unwrap().clone();
    assert!(
        series
            .iter()
            .all(|s| s["metric"]["workload"] == "demo" && s["metric"]["replica"].is_string())
    );

    // kill -9: the replicas outlive it; a new Sextant on the same data stops them
    // and still has the audit log.
    let pids: Vec<u64> = w["process"]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pid"].as_u64().unwrap())
        .collect();
    demo.kill().unwrap();
    demo.wait().unwrap();
    assert!(pids.iter().all(|p| alive(*p)), "replicas outlive a killed Sextant");
    let data = dir.path().join("demo");
    let cfg = std::fs::read_to_string(data.join("sextant.yml")).unwrap();
    let again = Sextant::start(
        &data.join("data"),
        Some(&cfg.replace(
            "slo_files: [slos.yml]",
            &format!("slo_files: [{:?}]", data.join("slos.yml")),
        )),
    )
    .await;
    wait_for("the orphaned replicas stopped", Duration::from_secs(20), || {
        let gone = pids.iter().all(|p| !alive(*p));
        async move { gone.then_some(()) }
    })
    .await;
    let records = get_json(&again.url("/api/sextant/v1/actions?kind=scale")).await["data"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        records
            .iter()
            .any(|r| r["id"] == up["id"] && r["status"] == "succeeded"),
        "{records:?}"
    );
    assert_eq!(
        get_json(&again.url("/api/sextant/v1/workloads/demo")).await["data"]["replicas"],
        2
    );
    assert!(again.terminate().success());
}

/// A target whose counters burn the budget until it is told to vanish.
async fn failing_target() -> (u16, Arc<AtomicBool>) {
    let scrapes = Arc::new(AtomicU64::new(0));
    let gone = Arc::new(AtomicBool::new(false));
    let g = gone.clone();
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let n = scrapes.fetch_add(1, Ordering::Relaxed) + 1;
            let gone = g.load(Ordering::Relaxed);
            async move {
                if gone {
                    return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
                }
                Ok(format!(
                    "shop_requests_total{{code=\"200\"}} {}\nshop_requests_total{{code=\"500\"}} {}\n",
                    50 * n,
                    50 * n
                ))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, gone)
}

/// A webhook receiver counting calls.
async fn receiver() -> (String, Arc<std::sync::Mutex<Vec<Value>>>) {
    let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
    let c = calls.clone();
    let app = Router::new().route(
        "/hook",
        post(move |body: axum::body::Bytes| {
            let c = c.clone();
            async move {
                c.lock().unwrap().push(serde_json::from_slice::<Value>(&body).unwrap());
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls)
}

const SHOP_SLO: &str = r#"version: prometheus/v1
service: shop
slos:
  - name: availability
    objective: 99
    sli:
      events:
        error_query: sum(rate(shop_requests_total{code="500"}[{{.window}}]))
        total_query: sum(rate(shop_requests_total[{{.window}}]))
    alerting: {name: ShopAvailability}
    sextant:
      tiers:
        - name: page
          windows: [{long: 20s, short: 5s, burn_rate: 10}]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn vanished_metrics_never_act_or_scale_down_and_approvals_go_through_api_and_cli() {
    let (target, gone) = failing_target().await;
    let (hook, calls) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("shop.yml"), SHOP_SLO).unwrap();
    let config = format!(
        r#"global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
  - job_name: shop
    static_configs: [{{targets: ['127.0.0.1:{target}']}}]
slo_files: [{slo:?}]
slo: {{slice: 1s, interval: 1s, settle: 1s}}
workloads:
  - name: shop
    replicas: 2
    webhook: {{url: "{hook}"}}
  - name: db
    replicas: 1
    webhook: {{url: "{hook}"}}
actions:
  policies:
    - name: scale-shop
      trigger: {{slo: shop-availability, tier: page}}
      workload: shop
      action: {{scale: {{min: 2, max: 8, step: 2, cooldown: 2s, stabilization: 1s, scale_down: {{after: 2s}}}}}}
    - name: restart-db
      trigger: {{alert: {{alertname: DbStuck}}}}
      workload: db
      approval: required
      action: {{restart: {{}}}}
"#,
        slo = dir.path().join("shop.yml"),
    );
    let sx = Sextant::start(&dir.path().join("data"), Some(&config)).await;
    // The tier fires: one scale-up through the webhook.
    wait_for("the scale-up", Duration::from_secs(60), || {
        let n = calls.lock().unwrap().len();
        async move { (n >= 1).then_some(()) }
    })
    .await;
    // The metrics vanish mid-incident.
    gone.store(true, Ordering::Relaxed);
    let first = calls.lock().unwrap()[0].clone();
    assert_eq!(
        first["action"],
        serde_json::json!({"kind": "scale", "from": 2, "to": 4})
    );
    // Slices already counted may still burn for a slice, a settle delay and a cycle
    // after the scrapes stop (a second scale-up then is acting on data); from
    // then on the windows are unknown and nothing may happen at all.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let before = calls.lock().unwrap().clone();
    assert!(
        before
            .iter()
            .all(|c| c["action"]["kind"] == "scale" && c["action"]["to"].as_i64() > c["action"]["from"].as_i64()),
        "only scale-ups while the tier burned: {before:?}"
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        calls.lock().unwrap().len(),
        before.len(),
        "no action and no scale-down without data"
    );
    let skips = get_json(&sx.url("/api/sextant/v1/actions?policy=scale-shop&decision=skip")).await["data"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        skips
            .iter()
            .any(|s| s["reason"].as_str().unwrap().contains("is unknown")),
        "the missing data is recorded: {skips:?}"
    );

    // An alert sets off a policy that needs approval.
    let alert = serde_json::json!([{"labels": {"alertname": "DbStuck", "instance": "db-1"}}]);
    let r = client()
        .post(sx.url("/api/v2/alerts"))
        .json(&alert)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let parked = wait_for("an action awaiting approval", Duration::from_secs(20), || {
        let url = sx.url("/api/sextant/v1/actions?status=pending");
        async move { get_json(&url).await["data"].as_array().unwrap().first().cloned() }
    })
    .await;
    assert_eq!(parked["decision"], "awaiting_approval");
    assert_eq!(parked["trigger"], "alert {alertname=\"DbStuck\"}");
    let id = parked["id"].as_str().unwrap().to_owned();
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
            .args(args)
            .args(["--server", &sx.url("")])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, listed) = cli(&["actions", "list", "--status", "pending"]);
    assert!(
        ok && listed.contains(&id) && listed.contains("awaiting_approval"),
        "{listed}"
    );
    let (ok, out) = cli(&["actions", "approve", &id, "--comment", "go ahead"]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("{id} approved by anonymous")), "{out}");
    wait_for("the approved restart", Duration::from_secs(20), || {
        let url = sx.url(&format!("/api/sextant/v1/actions/{id}"));
        async move { (get_json(&url).await["data"]["status"] == "succeeded").then_some(()) }
    })
    .await;
    let restart = calls.lock().unwrap().last().cloned().unwrap();
    assert_eq!(restart["action"]["kind"], "restart");
    assert_eq!(restart["workload"], "db");
    // Approving twice is a conflict, with Sextant's error envelope.
    let r = client()
        .post(sx.url(&format!("/api/sextant/v1/actions/{id}/approve")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.unwrap()["errorType"], "conflict");
    let (ok, out) = cli(&["actions", "reject", "no-such-id"]);
    assert!(!ok && out.contains("no action \"no-such-id\""), "{out}");
    drop(sx);
}
