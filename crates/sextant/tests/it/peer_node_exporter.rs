//! The built-in node collector side by side with Debian's node_exporter 1.5 on this
//! machine: the same metric families (names, types, help), the same series (label sets)
//! for the collectors Sextant implements, and values within tolerance.
//!
//! Tolerance: both are read within milliseconds of each other, but counters move and
//! gauges fluctuate in between, so values must agree within 2% or an absolute slack that
//! depends on the metric (see `slack`).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use sextant_expfmt::{Exposition, Format, parse};
use sextant_model::{Labels, MetricMetadata};
use crate::support::{Peer, Sextant, client, free_port, peer_binary, wait_for};

const COLLECTORS: [&str; 9] = [
    "cpu",
    "meminfo",
    "loadavg",
    "filesystem",
    "diskstats",
    "netdev",
    "pressure",
    "stat",
    "uname",
];

fn slack(name: &str) -> f64 {
    match name {
        // Small integers that change between two reads.
        "node_procs_running" | "node_procs_blocked" | "node_disk_io_now" => 16.0,
        // Counters of events that happen thousands of times a second.
        "node_context_switches_total" | "node_intr_total" | "node_forks_total" => 50_000.0,
        // Memory and disk space move with whatever else runs (including this test).
        n if n.starts_with("node_memory_") || n.starts_with("node_filesystem_") => 64.0 * 1024.0 * 1024.0,
        n if n.starts_with("node_network_") || n.starts_with("node_disk_") => 10_000_000.0,
        n if n.starts_with("node_pressure_") || n.starts_with("node_cpu_") => 2.0,
        _ => 0.0,
    }
}

fn index(e: &Exposition) -> (BTreeMap<Labels, f64>, BTreeMap<String, MetricMetadata>) {
    let series = e
        .samples
        .iter()
        .filter(|s| {
            let n = s.labels.metric_name().unwrap_or("");
            n.starts_with("node_") && !n.starts_with("node_scrape_collector") && n != "node_exporter_build_info"
        })
        .map(|s| (s.labels.clone(), s.value))
        .collect();
    let meta = e
        .metadata
        .iter()
        .filter(|(n, _)| n.starts_with("node_") && !n.starts_with("node_scrape") && n != "node_exporter_build_info")
        .cloned()
        .collect();
    (series, meta)
}

#[tokio::test(flavor = "multi_thread")]
async fn same_names_labels_and_values_as_node_exporter() {
    let dir = tempfile::tempdir().unwrap();
    let sx = Sextant::start(&dir.path().join("data"), Some("storage:\n  retention: 0s\n")).await;
    let port = free_port();
    let mut cmd = Command::new(peer_binary("prometheus-node-exporter", "prometheus-node-exporter"));
    cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--collector.disable-defaults");
    for c in COLLECTORS {
        cmd.arg(format!("--collector.{c}"));
    }
    let _ne = Peer(cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    let http = client();
    let ne_url = format!("http://127.0.0.1:{port}/metrics");
    wait_for("node_exporter up", Duration::from_secs(20), || {
        let (http, url) = (http.clone(), ne_url.clone());
        async move { http.get(&url).send().await.ok().map(|_| ()) }
    })
    .await;

    let (a, b) = tokio::join!(http.get(&ne_url).send(), http.get(sx.url("/node/metrics")).send());
    let ne_body = a.unwrap().bytes().await.unwrap();
    let ours_body = b.unwrap().bytes().await.unwrap();
    let (ne, ne_meta) = index(&parse(&ne_body, Format::PrometheusText).unwrap());
    let (ours, our_meta) = index(&parse(&ours_body, Format::PrometheusText).unwrap());

    let missing: Vec<String> = ne
        .keys()
        .filter(|k| !ours.contains_key(*k))
        .map(|k| k.to_string())
        .collect();
    let extra: Vec<String> = ours
        .keys()
        .filter(|k| !ne.contains_key(*k))
        .map(|k| k.to_string())
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "series node_exporter has and we lack: {missing:#?}\nseries we have and it lacks: {extra:#?}"
    );
    for (name, m) in &ne_meta {
        assert_eq!(our_meta.get(name), Some(m), "metadata of {name}");
    }
    let mut off = Vec::new();
    for (labels, want) in &ne {
        let got = ours[labels];
        let name = labels.metric_name().unwrap();
        let tol = (want.abs().max(got.abs()) * 0.02).max(slack(name));
        if (want - got).abs() > tol {
            off.push(format!("{labels}: node_exporter {want}, sextant {got}"));
        }
    }
    assert!(off.is_empty(), "values outside tolerance:\n{}", off.join("\n"));
    eprintln!(
        "node collector vs node_exporter 1.5: {} series, {} families, all within tolerance",
        ne.len(),
        ne_meta.len()
    );
}
