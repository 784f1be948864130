//! The node collector and Debian's node_exporter 1.5 read the same fixture tree
//! (`testdata/fixture`: `/proc`, `/sys`, a root file system, udev data and text files
//! written for the collectors a test machine lacks: hwmon, mdadm, bonding, zfs, nfs,
//! ...) and must expose the same thing: the same families with the same help and type,
//! the same series, the same values (exactly: the fixture does not move), and the same
//! per-collector success. The few collectors that read the live system (time, timex,
//! uname, selinux) take part too, with the tolerance their moving values need.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sextant_expfmt::{Format, parse};
use sextant_model::{Labels, MetricMetadata};
use sextant_node::{NodeCollector, NodeConfig};

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

/// Every collector Sextant implements.
const COLLECTORS: [&str; 45] = [
    "arp",
    "bcache",
    "bonding",
    "btrfs",
    "conntrack",
    "cpu",
    "cpufreq",
    "diskstats",
    "dmi",
    "edac",
    "entropy",
    "fibrechannel",
    "filefd",
    "filesystem",
    "hwmon",
    "infiniband",
    "ipvs",
    "loadavg",
    "mdadm",
    "meminfo",
    "netclass",
    "netdev",
    "netstat",
    "nfs",
    "nfsd",
    "nvme",
    "os",
    "powersupplyclass",
    "pressure",
    "rapl",
    "schedstat",
    "selinux",
    "sockstat",
    "softnet",
    "stat",
    "tapestats",
    "textfile",
    "thermal_zone",
    "time",
    "timex",
    "udp_queues",
    "uname",
    "vmstat",
    "xfs",
    "zfs",
];

struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn fixture() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("testdata/fixture")
}

/// Values that move between two reads of the live system, with how far they may.
fn tolerance(name: &str) -> Option<f64> {
    match name {
        "node_time_seconds" => Some(30.0),
        "node_scrape_collector_duration_seconds" => Some(f64::INFINITY),
        n if n.starts_with("node_timex_") => Some(f64::INFINITY),
        _ => None,
    }
}

type Series = BTreeMap<Labels, f64>;
type Meta = BTreeMap<String, MetricMetadata>;

/// `node_*` series and metadata; the exporter's own `process_*`, `go_*` and `promhttp_*`
/// describe two different processes.
fn index(body: &[u8]) -> (Series, Meta) {
    let e = parse(body, Format::PrometheusText).expect("valid exposition");
    let keep = |n: &str| n.starts_with("node_") && n != "node_exporter_build_info";
    let series = e
        .samples
        .iter()
        .filter(|s| keep(s.labels.metric_name().unwrap_or("")))
        .map(|s| (s.labels.clone(), s.value))
        .collect();
    let meta = e.metadata.into_iter().filter(|(n, _)| keep(n)).collect();
    (series, meta)
}

fn node_exporter_output(f: &Path, flags: &[&str]) -> Vec<u8> {
    assert!(
        Path::new(NODE_EXPORTER).exists(),
        "{NODE_EXPORTER} is missing: install the Debian package prometheus-node-exporter (scripts/test does)"
    );
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = Command::new(NODE_EXPORTER);
    cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--path.procfs={}", f.join("proc").display()))
        .arg(format!("--path.sysfs={}", f.join("sys").display()))
        .arg(format!("--path.rootfs={}", f.join("rootfs").display()))
        .arg(format!("--path.udev.data={}", f.join("udev").display()))
        .arg(format!(
            "--collector.textfile.directory={}",
            f.join("textfile").display()
        ))
        .arg("--collector.disable-defaults");
    for c in COLLECTORS {
        cmd.arg(format!("--collector.{c}"));
    }
    cmd.args(flags);
    let _peer = Peer(cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    let start = Instant::now();
    loop {
        if let Ok(body) = http_get(port, "/metrics") {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "node_exporter did not answer"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A minimal HTTP/1.0 GET, to keep this crate free of an HTTP client.
fn http_get(port: u16, path: &str) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let at = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    if !buf.starts_with(b"HTTP/1.0 200") && !buf.starts_with(b"HTTP/1.1 200") {
        return Err(std::io::Error::other("not 200"));
    }
    Ok(buf[at + 4..].to_vec())
}

fn sextant_output(f: &Path, options: &str) -> Vec<u8> {
    let yaml = format!(
        "disable_defaults: true\n\
         collectors: {{{}}}\n\
         paths: {{procfs: '{p}/proc', sysfs: '{p}/sys', rootfs: '{p}/rootfs', udev_data: '{p}/udev'}}\n\
         textfile: {{directory: '{p}/textfile'}}\n\
         {options}",
        COLLECTORS.map(|c| format!("{c}: true")).join(", "),
        p = f.display()
    );
    let config: NodeConfig = serde_yaml::from_str(&yaml).unwrap();
    NodeCollector::new(&config).unwrap().gather().into_bytes()
}

/// Compares the two outputs; the problems found, or the figures for the log.
fn compare(want_body: &[u8], got_body: &[u8]) -> Result<(usize, usize, usize), String> {
    let (want, want_meta) = index(want_body);
    let (got, got_meta) = index(got_body);
    let missing: Vec<String> = want
        .keys()
        .filter(|k| !got.contains_key(*k))
        .map(|k| k.to_string())
        .collect();
    let extra: Vec<String> = got
        .keys()
        .filter(|k| !want.contains_key(*k))
        .map(|k| k.to_string())
        .collect();
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!(
            "series node_exporter has and Sextant lacks:\n  {}",
            missing.join("\n  ")
        ));
    }
    if !extra.is_empty() {
        problems.push(format!(
            "series Sextant has and node_exporter lacks:\n  {}",
            extra.join("\n  ")
        ));
    }
    for (name, m) in &want_meta {
        if got_meta.get(name) != Some(m) {
            problems.push(format!(
                "metadata of {name}: node_exporter {m:?}, Sextant {:?}",
                got_meta.get(name)
            ));
        }
    }
    for (labels, w) in &want {
        let Some(g) = got.get(labels) else { continue };
        let name = labels.metric_name().unwrap_or("");
        let same = match tolerance(name) {
            Some(t) => (w - g).abs() <= t || (w.is_nan() && g.is_nan()),
            None => w.to_bits() == g.to_bits() || w == g,
        };
        if !same {
            problems.push(format!("{labels}: node_exporter {w}, Sextant {g}"));
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    let successes = want
        .iter()
        .filter(|(l, v)| l.metric_name() == Some("node_scrape_collector_success") && **v == 1.0)
        .count();
    Ok((want.len(), want_meta.len(), successes))
}

#[test]
fn fixture_tree_reads_as_node_exporter_reads_it() {
    let f = fixture();
    let want = node_exporter_output(&f, &["--no-collector.netdev.netlink"]);
    let got = sextant_output(&f, "netdev: {netlink: false}\n");
    let (series, families, successes) = compare(&want, &got).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "fixture: {series} series in {families} families identical to node_exporter 1.5; {successes}/{} collectors succeed on both",
        COLLECTORS.len()
    );
}

/// node_exporter's non-default flags and their `node` section equivalents.
#[test]
fn collector_flags_act_as_node_exporter_flags() {
    let f = fixture();
    let want = node_exporter_output(
        &f,
        &[
            "--no-collector.netdev.netlink",
            "--collector.netdev.device-exclude=^(lo|eth1)$",
            "--collector.cpu.info",
            "--collector.cpu.info.flags-include=^(avx2|aes|sse4_2)$",
            "--collector.cpu.info.bugs-include=spectre",
            "--no-collector.cpu.guest",
            "--collector.stat.softirq",
            "--collector.rapl.enable-zone-label",
            "--collector.ipvs.backend-labels=local_port,proto",
            "--collector.netclass.ignore-invalid-speed",
            "--collector.netclass.ignored-devices=^(eth|bond)",
            "--collector.powersupply.ignored-supplies=^AC$",
            "--collector.tapestats.ignored-devices=^st1$",
            "--collector.netstat.fields=.*",
            "--collector.vmstat.fields=^nr_",
            "--collector.diskstats.device-exclude=^sd",
            "--collector.arp.device-exclude=^br-",
            "--collector.bcache.priorityStats",
        ],
    );
    let got = sextant_output(
        &f,
        "netdev: {netlink: false, device_exclude: '^(lo|eth1)$'}\n\
         cpu: {info: true, info_flags_include: '^(avx2|aes|sse4_2)$', info_bugs_include: spectre, guest: false}\n\
         stat: {softirq: true}\n\
         rapl: {enable_zone_label: true}\n\
         ipvs: {backend_labels: 'local_port,proto'}\n\
         netclass: {ignore_invalid_speed: true, ignored_devices: '^(eth|bond)'}\n\
         powersupplyclass: {ignored: '^AC$'}\n\
         tapestats: {ignored: '^st1$'}\n\
         netstat: {fields: '.*'}\n\
         vmstat: {fields: '^nr_'}\n\
         diskstats: {device_exclude: '^sd'}\n\
         arp: {device_exclude: '^br-'}\n\
         bcache: {priority_stats: true}\n",
    );
    let (series, _, _) = compare(&want, &got).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("fixture with non-default flags: {series} series identical to node_exporter 1.5");
}
