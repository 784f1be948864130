//! Prometheus 2.42 (Debian's `prometheus`) as the remote_write client: it scrapes itself
//! and remote-writes to Sextant; everything it sends must be accepted.

use std::time::Duration;

use crate::support::{Sextant, free_port, get_json, start_prometheus, wait_for};

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_remote_writes_into_sextant() {
    let dir = tempfile::tempdir().unwrap();
    let sx = Sextant::start(&dir.path().join("data"), Some("storage:\n  retention: 0s\n")).await;
    let prom_port = free_port();
    let _prom = start_prometheus(
        dir.path(),
        prom_port,
        &format!(
            r#"
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs: [{{targets: ['127.0.0.1:{prom_port}']}}]
remote_write:
  - url: {url}
    queue_config: {{batch_send_deadline: 500ms, min_backoff: 100ms, max_backoff: 1s}}
    metadata_config: {{send_interval: 1s}}
"#,
            url = sx.url("/api/v1/write")
        ),
        &[],
    );

    // Prometheus' own series arrive in Sextant with the labels Prometheus gave them.
    let url = sx.url("/api/v1/series?match[]=prometheus_build_info");
    let s = wait_for(
        "prometheus_build_info via remote_write",
        Duration::from_secs(60),
        || {
            let url = url.clone();
            async move {
                let v = get_json(&url).await;
                (!v["data"].as_array()?.is_empty()).then_some(v)
            }
        },
    )
    .await;
    assert_eq!(s["data"][0]["job"], "prometheus");
    assert_eq!(s["data"][0]["instance"], format!("127.0.0.1:{prom_port}"));

    // Metadata arrives too (metadata_config), and Prometheus reports no failed sends.
    let meta_url = sx.url("/api/v1/metadata?metric=prometheus_http_requests_total");
    wait_for("metadata via remote_write", Duration::from_secs(30), || {
        let url = meta_url.clone();
        async move { (get_json(&url).await["data"]["prometheus_http_requests_total"][0]["type"] == "counter").then_some(()) }
    })
    .await;
    let q = |expr: &str| format!("http://127.0.0.1:{prom_port}/api/v1/query?query={expr}");
    let sent = wait_for("samples sent", Duration::from_secs(30), || {
        let url = q("sum(prometheus_remote_storage_samples_total)");
        async move {
            let v = get_json(&url).await;
            let n: f64 = v["data"]["result"][0]["value"][1].as_str()?.parse().ok()?;
            (n > 0.0).then_some(n)
        }
    })
    .await;
    let failed = get_json(&q("sum(prometheus_remote_storage_samples_failed_total)")).await;
    assert_eq!(
        failed["data"]["result"][0]["value"][1], "0",
        "sent {sent}, failures: {failed}"
    );

    // Same series in both: every series Prometheus holds for the job reaches Sextant.
    let prom_series = get_json(&format!(
        "http://127.0.0.1:{prom_port}/api/v1/series?match[]=%7Bjob%3D%22prometheus%22%7D"
    ))
    .await;
    let ours = sx.url("/api/v1/series?match[]=%7Bjob%3D%22prometheus%22%7D");
    let want = prom_series["data"].as_array().unwrap().len();
    wait_for("all series present", Duration::from_secs(30), || {
        let url = ours.clone();
        async move { (get_json(&url).await["data"].as_array()?.len() >= want).then_some(()) }
    })
    .await;
}
