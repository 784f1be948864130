//! End to end: `sextant serve` scrapes a real HTTP target on loopback, relabels, tracks
//! target health, writes staleness markers, answers the metadata APIs, and shuts down
//! cleanly on SIGTERM with everything flushed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{Sextant, eq, get_json, open_store, wait_for};
use axum::Router;
use axum::http::header;
use axum::routing::get;
use sextant_model::is_stale_nan;

#[derive(Clone)]
struct TargetState {
    body: Arc<Mutex<String>>,
    status: Arc<Mutex<u16>>,
}

const OM_BODY: &str = "# TYPE test_requests counter\n# HELP test_requests Requests served.\ntest_requests_total{path=\"/a\",job=\"inner\"} 5\ntest_requests_total{path=\"/b\",job=\"inner\"} 7\n# TYPE test_dropped gauge\ntest_dropped 1\n# TYPE test_gone gauge\ntest_gone 3\n# EOF\n";

async fn start_target() -> (u16, TargetState) {
    let state = TargetState {
        body: Arc::new(Mutex::new(OM_BODY.into())),
        status: Arc::new(Mutex::new(200)),
    };
    let s = state.clone();
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let s = s.clone();
            async move {
                let status = axum::http::StatusCode::from_u16(*s.status.lock().unwrap()).unwrap();
                let body = s.body.lock().unwrap().clone();
                (
                    status,
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    body,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, state)
}

fn config(target_port: u16) -> String {
    format!(
        r#"
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: app
    static_configs:
      - targets: ['127.0.0.1:{target_port}']
        labels: {{team: core}}
      - targets: ['drop-me:1']
    relabel_configs:
      - source_labels: [__address__]
        regex: 'drop-me.*'
        action: drop
      - target_label: env
        replacement: test
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: test_dropped
        action: drop
storage:
  retention: 0s
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn scrape_relabel_staleness_and_shutdown() {
    let (target_port, target) = start_target().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sx = Sextant::start(&data, Some(&config(target_port))).await;

    // The target comes up with relabeled labels; the dropped one is listed as dropped.
    let t = sx
        .wait_targets("target to be up", Duration::from_secs(20), |v| {
            let t = v["data"]["activeTargets"][0].clone();
            (t["health"] == "up").then(|| v.clone())
        })
        .await;
    let active = &t["data"]["activeTargets"][0];
    assert_eq!(active["labels"]["job"], "app");
    assert_eq!(active["labels"]["instance"], format!("127.0.0.1:{target_port}"));
    assert_eq!(active["labels"]["team"], "core");
    assert_eq!(active["labels"]["env"], "test");
    assert_eq!(active["scrapeUrl"], format!("http://127.0.0.1:{target_port}/metrics"));
    assert_eq!(active["lastError"], "");
    assert_eq!(active["scrapeInterval"], "1s");
    assert_eq!(
        active["discoveredLabels"]["__address__"],
        format!("127.0.0.1:{target_port}")
    );
    assert_eq!(
        t["data"]["droppedTargets"][0]["discoveredLabels"]["__address__"],
        "drop-me:1"
    );
    assert_eq!(
        get_json(&sx.url("/api/v1/targets?state=dropped")).await["data"]["activeTargets"],
        serde_json::json!([])
    );

    // Series carry target labels; the scraped `job` clashes and becomes exported_job.
    let series = get_json(&sx.url("/api/v1/series?match[]=test_requests_total")).await;
    let list = series["data"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{series}");
    assert_eq!(list[0]["job"], "app");
    assert_eq!(list[0]["exported_job"], "inner");
    assert_eq!(list[0]["env"], "test");
    let dropped = get_json(&sx.url("/api/v1/series?match[]=test_dropped")).await;
    assert_eq!(dropped["data"], serde_json::json!([]), "metric_relabel_configs drop");
    let up = get_json(&sx.url("/api/v1/series?match[]=up")).await;
    assert_eq!(up["data"][0]["job"], "app");
    for name in [
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    ] {
        let s = get_json(&sx.url(&format!("/api/v1/series?match[]={name}"))).await;
        assert_eq!(s["data"].as_array().unwrap().len(), 1, "{name}: {s}");
    }
    let values = get_json(&sx.url("/api/v1/label/path/values")).await;
    assert_eq!(values["data"], serde_json::json!(["/a", "/b"]));
    let labels = get_json(&sx.url("/api/v1/labels?match[]=test_requests_total")).await;
    assert!(
        labels["data"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("exported_job"))
    );
    let meta = get_json(&sx.url("/api/v1/metadata?metric=test_requests")).await;
    assert_eq!(meta["data"]["test_requests"][0]["type"], "counter");
    assert_eq!(meta["data"]["test_requests"][0]["help"], "Requests served.");
    let bad = get_json(&sx.url("/api/v1/series")).await;
    assert_eq!(bad["errorType"], "bad_data");
    let bad = get_json(&sx.url("/api/v1/series?match[]=up{")).await;
    assert_eq!(bad["status"], "error");

    // A series disappears, then the target fails.
    *target.body.lock().unwrap() = OM_BODY.replace("# TYPE test_gone gauge\ntest_gone 3\n", "");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    *target.status.lock().unwrap() = 500;
    let down = sx
        .wait_targets("target to be down", Duration::from_secs(10), |v| {
            let t = v["data"]["activeTargets"][0].clone();
            (t["health"] == "down").then_some(t)
        })
        .await;
    assert_eq!(
        down["lastError"],
        "server returned HTTP status 500 Internal Server Error"
    );

    let status = sx.terminate();
    assert!(status.success(), "clean shutdown exits 0: {status:?}");

    // Everything acknowledged is on disk after the clean shutdown.
    let store = open_store(&data);
    let gone = store.select(&[eq("__name__", "test_gone")], 0, i64::MAX).await.unwrap();
    let last = gone[0].samples.last().unwrap();
    assert!(
        is_stale_nan(last.v),
        "disappeared series ends with a staleness marker: {:?}",
        gone[0].samples
    );
    let reqs = store
        .select(&[eq("__name__", "test_requests_total"), eq("path", "/a")], 0, i64::MAX)
        .await
        .unwrap();
    assert!(
        is_stale_nan(reqs[0].samples.last().unwrap().v),
        "a failed scrape marks its series stale"
    );
    let up = store.select(&[eq("__name__", "up")], 0, i64::MAX).await.unwrap();
    let vals: Vec<f64> = up[0].samples.iter().map(|s| s.v).collect();
    assert!(vals.contains(&1.0) && vals.last() == Some(&0.0), "{vals:?}");
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_defaults_scrape_self_and_node() {
    let dir = tempfile::tempdir().unwrap();
    let sx = Sextant::start(&dir.path().join("data"), None).await;
    // Both default jobs are scraped within one 15s interval (their phases are spread).
    sx.wait_targets("both default targets up", Duration::from_secs(40), |v| {
        let ts = v["data"]["activeTargets"].as_array()?.clone();
        (ts.len() == 2 && ts.iter().all(|t| t["health"] == "up")).then_some(())
    })
    .await;
    let node = get_json(&sx.url("/api/v1/series?match[]=node_cpu_seconds_total")).await;
    assert!(!node["data"].as_array().unwrap().is_empty());
    assert_eq!(node["data"][0]["job"], "node");
    // Our own /metrics is OpenMetrics from prometheus-client, read by our strict parser.
    let own = get_json(&sx.url("/api/v1/series?match[]=sextant_store_samples_appended_total")).await;
    assert_eq!(own["data"][0]["job"], "sextant", "{own}");
    assert!(sx.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_config_names_file_and_line_and_exits_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.yml");
    std::fs::write(&cfg, "scrape_configs:\n  - job_name: a\n    scrape_intervall: 5s\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path().join("d"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:3:", cfg.display())) && err.contains("scrape_intervall"),
        "{err}"
    );
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["check", "config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!check.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_keeps_old_config_when_new_is_invalid() {
    let (target_port, _target) = start_target().await;
    let dir = tempfile::tempdir().unwrap();
    let sx = Sextant::start(&dir.path().join("data"), Some(&config(target_port))).await;
    let cfg_path = dir.path().join(format!("sextant-{}.yml", sx.port));
    let http = crate::support::client();
    std::fs::write(&cfg_path, "scrape_configs: [{job_name: x, bogus: 1}]\n").unwrap();
    let r = http.post(sx.url("/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert!(r.text().await.unwrap().contains("bogus"));
    let t = get_json(&sx.url("/api/v1/targets")).await;
    assert_eq!(
        t["data"]["activeTargets"][0]["scrapePool"], "app",
        "old config still in force"
    );
    std::fs::write(
        &cfg_path,
        config(target_port).replace("job_name: app", "job_name: renamed"),
    )
    .unwrap();
    assert_eq!(http.post(sx.url("/-/reload")).send().await.unwrap().status(), 200);
    let t = get_json(&sx.url("/api/v1/targets")).await;
    assert_eq!(t["data"]["activeTargets"][0]["scrapePool"], "renamed");
    // SIGHUP reloads too.
    std::fs::write(&cfg_path, config(target_port).replace("job_name: app", "job_name: hup")).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(sx.pid()), nix::sys::signal::Signal::SIGHUP).unwrap();
    let url = sx.url("/api/v1/targets");
    wait_for("SIGHUP reload", Duration::from_secs(10), || {
        let url = url.clone();
        async move { (get_json(&url).await["data"]["activeTargets"][0]["scrapePool"] == "hup").then_some(()) }
    })
    .await;
}

/// A target that answers only with the right basic-auth or bearer credentials.
async fn start_auth_target() -> u16 {
    let app = Router::new().route(
        "/metrics",
        get(|headers: axum::http::HeaderMap| async move {
            let auth = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            // "user:s3cret" in base64, and a bearer token.
            if auth == "Basic dXNlcjpzM2NyZXQ=" || auth == "Bearer tok-123" {
                (axum::http::StatusCode::OK, "authed_metric 1\n")
            } else {
                (axum::http::StatusCode::UNAUTHORIZED, "no\n")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn file_sd_and_credentials() {
    let (target_port, _target) = start_target().await;
    let auth_port = start_auth_target().await;
    let dir = tempfile::tempdir().unwrap();
    let sd = dir.path().join("targets.json");
    std::fs::write(
        &sd,
        format!(r#"[{{"targets": ["127.0.0.1:{target_port}"], "labels": {{"zone": "z1"}}}}]"#),
    )
    .unwrap();
    let secret = dir.path().join("password");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let config = format!(
        r#"
global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
  - job_name: files
    file_sd_configs: [{{files: ['{sd}']}}]
  - job_name: basic
    basic_auth: {{username: user, password_file: '{secret}'}}
    static_configs: [{{targets: ['127.0.0.1:{auth_port}']}}]
  - job_name: bearer
    authorization: {{credentials: tok-123}}
    static_configs: [{{targets: ['127.0.0.1:{auth_port}']}}]
  - job_name: nocreds
    static_configs: [{{targets: ['127.0.0.1:{auth_port}']}}]
storage: {{retention: 0s}}
"#,
        sd = sd.display(),
        secret = secret.display()
    );
    let data = dir.path().join("data");
    let sx = Sextant::start(&data, Some(&config)).await;
    let targets = sx
        .wait_targets("all four targets scraped", Duration::from_secs(20), |v| {
            let ts = v["data"]["activeTargets"].as_array()?.clone();
            (ts.len() == 4 && ts.iter().all(|t| t["health"] != "unknown")).then_some(ts)
        })
        .await;
    let by_job = |job: &str| targets.iter().find(|t| t["scrapePool"] == job).unwrap().clone();
    assert_eq!(by_job("files")["health"], "up");
    assert_eq!(by_job("files")["labels"]["zone"], "z1");
    assert_eq!(
        by_job("files")["discoveredLabels"]["__meta_filepath"],
        sd.display().to_string()
    );
    assert_eq!(by_job("basic")["health"], "up", "{:?}", by_job("basic"));
    assert_eq!(by_job("bearer")["health"], "up", "{:?}", by_job("bearer"));
    assert_eq!(
        by_job("nocreds")["lastError"],
        "server returned HTTP status 401 Unauthorized"
    );

    // The file changes: its target goes away without a reload.
    std::fs::write(&sd, "[]").unwrap();
    sx.wait_targets("file_sd target removed", Duration::from_secs(15), |v| {
        let ts = v["data"]["activeTargets"].as_array()?.clone();
        (!ts.iter().any(|t| t["scrapePool"] == "files")).then_some(())
    })
    .await;
    assert!(sx.terminate().success());
    let store = open_store(&data);
    let up = store
        .select(&[eq("__name__", "up"), eq("job", "files")], 0, i64::MAX)
        .await
        .unwrap();
    assert!(
        is_stale_nan(up[0].samples.last().unwrap().v),
        "a removed target's series end with staleness markers"
    );
    let reqs = store
        .select(
            &[eq("__name__", "test_requests_total"), eq("job", "files")],
            0,
            i64::MAX,
        )
        .await
        .unwrap();
    assert!(reqs.iter().all(|s| is_stale_nan(s.samples.last().unwrap().v)));
    // Shutdown writes no markers: the other jobs' series end with real values.
    let basic = store
        .select(&[eq("__name__", "up"), eq("job", "basic")], 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(basic[0].samples.last().unwrap().v, 1.0);
    store.close().await.unwrap();
}
