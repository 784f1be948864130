//! The built-in node collector side by side with Debian's node_exporter 1.5 on this
//! machine, both with their defaults: the same metric families (names, types, help),
//! the same series (label sets), the same per-collector success, and values within
//! tolerance. (`crates/node/tests` does the same on a fixture tree, exactly, for the
//! collectors this machine has no data for.)
//!
//! Tolerance: both are read within milliseconds of each other, but counters move and
//! gauges fluctuate in between, so values must agree within 2% or an absolute slack that
//! depends on the metric (see `slack`).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{BtrfsMount, Peer, Sextant, client, free_port, peer_binary, wait_for};
use sextant_expfmt::{Exposition, Format, parse};
use sextant_model::{Labels, MetricMetadata};

/// Collectors Debian's node_exporter enables that Sextant does not have: systemd needs
/// systemd's D-Bus API (and fails on a machine without systemd anyway).
const NOT_IMPLEMENTED: [&str; 1] = ["systemd"];

fn slack(name: &str) -> f64 {
    match name {
        // Small integers that change between two reads.
        "node_procs_running" | "node_procs_blocked" => 16.0,
        // I/Os in flight: up to the device's queue depth while builds write.
        "node_disk_io_now" => 1024.0,
        "node_scrape_collector_duration_seconds" | "node_time_seconds" => f64::INFINITY,
        n if n.starts_with("node_timex_") => f64::INFINITY,
        // Counters of events that happen thousands of times a second.
        "node_context_switches_total" | "node_intr_total" | "node_forks_total" => 50_000.0,
        n if n.starts_with("node_vmstat_") => 1_000_000.0,
        // Memory and disk space move with whatever else runs: other tests start and stop
        // Prometheus, promtool and node_exporter, whose virtual commitments
        // (Committed_AS) come and go by hundreds of MiB. A unit mistake is off by 1024×.
        n if n.starts_with("node_memory_") || n.starts_with("node_filesystem_") => 1024.0 * 1024.0 * 1024.0,
        n if n.starts_with("node_network_") || n.starts_with("node_disk_") || n.starts_with("node_netstat_") => {
            10_000_000.0
        }
        n if n.starts_with("node_sockstat_")
            || n.starts_with("node_filefd_")
            || n.starts_with("node_nf_conntrack_") =>
        {
            10_000.0
        }
        n if n.starts_with("node_softnet_") || n.starts_with("node_udp_queues") || n.starts_with("node_entropy_") => {
            100_000.0
        }
        n if n.starts_with("node_pressure_") || n.starts_with("node_cpu_") || n.starts_with("node_schedstat_") => 2.0,
        _ => 0.0,
    }
}

/// `node_*` series and metadata, without the rows of collectors Sextant does not have.
fn index(e: &Exposition) -> (BTreeMap<Labels, f64>, BTreeMap<String, MetricMetadata>) {
    let series = e
        .samples
        .iter()
        .filter(|s| {
            let n = s.labels.metric_name().unwrap_or("");
            n.starts_with("node_")
                && n != "node_exporter_build_info"
                && !s.labels.get("collector").is_some_and(|c| NOT_IMPLEMENTED.contains(&c))
        })
        .map(|s| (s.labels.clone(), s.value))
        .collect();
    let meta = e
        .metadata
        .iter()
        .filter(|(n, _)| n.starts_with("node_"))
        .cloned()
        .collect();
    (series, meta)
}

/// Families of the exporter itself, with their label names.
fn exporter_families(e: &Exposition) -> BTreeMap<String, Vec<Vec<String>>> {
    let mut out: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for s in &e.samples {
        let n = s.labels.metric_name().unwrap_or("");
        if n.starts_with("process_") || n.starts_with("promhttp_") || n == "node_exporter_build_info" {
            let names = s
                .labels
                .iter()
                .map(|l| l.name.clone())
                .filter(|l| l != "__name__")
                .collect();
            out.entry(n.to_owned()).or_default().push(names);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn same_names_labels_and_values_as_node_exporter() {
    let dir = tempfile::tempdir().unwrap();
    // A btrfs mount, where the machine allows one, for the btrfs collector's ioctl path.
    let btrfs = BtrfsMount::try_new(dir.path());
    let sx = Sextant::start(&dir.path().join("data"), Some("storage:\n  retention: 0s\n")).await;
    let port = free_port();
    let _ne = Peer(
        Command::new(peer_binary("prometheus-node-exporter", "prometheus-node-exporter"))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = client();
    let ne_url = format!("http://127.0.0.1:{port}/metrics");
    wait_for("node_exporter up", Duration::from_secs(20), || {
        let (http, url) = (http.clone(), ne_url.clone());
        async move { http.get(&url).send().await.ok().map(|_| ()) }
    })
    .await;

    let (a, b) = tokio::join!(http.get(&ne_url).send(), http.get(sx.url("/node/metrics")).send());
    let ne_body = parse(&a.unwrap().bytes().await.unwrap(), Format::PrometheusText).unwrap();
    let ours_body = parse(&b.unwrap().bytes().await.unwrap(), Format::PrometheusText).unwrap();
    let (ne, ne_meta) = index(&ne_body);
    let (ours, our_meta) = index(&ours_body);

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
        let same = if name == "node_scrape_collector_success" {
            want == &got
        } else {
            (want - got).abs() <= tol
        };
        if !same {
            off.push(format!("{labels}: node_exporter {want}, sextant {got}"));
        }
    }
    assert!(off.is_empty(), "values outside tolerance:\n{}", off.join("\n"));
    // The exporter's own series: same families and label names (values describe two
    // different processes); the Go runtime's go_* have no counterpart.
    assert_eq!(exporter_families(&ne_body), exporter_families(&ours_body));
    let collectors: Vec<String> = ne
        .iter()
        .filter(|(l, _)| l.metric_name() == Some("node_scrape_collector_success"))
        .map(|(l, v)| format!("{}={v}", l.get("collector").unwrap_or("")))
        .collect();
    let btrfs_series = ne
        .keys()
        .filter(|l| l.metric_name().is_some_and(|n| n.starts_with("node_btrfs_device_")))
        .count();
    if btrfs.is_some() {
        assert!(btrfs_series > 0, "the btrfs mount shows no device series");
    }
    eprintln!(
        "node collector vs node_exporter 1.5 on this machine: {} series ({btrfs_series} btrfs device series), {} families, all within tolerance; collectors: {}",
        ne.len(),
        ne_meta.len(),
        collectors.join(" ")
    );
}

/// The `node` section picks collectors by name, as node_exporter's flags do, and the
/// exporter's own series can be switched off (`--web.disable-exporter-metrics`).
#[tokio::test(flavor = "multi_thread")]
async fn node_section_selects_collectors() {
    let dir = tempfile::tempdir().unwrap();
    let sx = Sextant::start(
        &dir.path().join("data"),
        Some(
            "scrape_configs: []\nnode:\n  disable_defaults: true\n  exporter_metrics: false\n  collectors: {loadavg: true, uname: true}\n",
        ),
    )
    .await;
    let body = client()
        .get(sx.url("/node/metrics"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let e = parse(&body, Format::PrometheusText).unwrap();
    let mut families: Vec<&str> = e.metadata.iter().map(|(n, _)| n.as_str()).collect();
    families.sort();
    assert_eq!(
        families,
        [
            "node_load1",
            "node_load15",
            "node_load5",
            "node_scrape_collector_duration_seconds",
            "node_scrape_collector_success",
            "node_uname_info"
        ]
    );
}
