//! The built-in node collector: reads `/proc` and `/sys` and exposes what
//! node_exporter's `cpu`, `meminfo`, `loadavg`, `filesystem`, `diskstats`, `netdev`,
//! `pressure`, `stat` and `uname` collectors expose, under the same names, labels and
//! help texts, with the defaults of Debian's node_exporter 1.5 (devices and mount points
//! it excludes). Dashboards and alert rules written for node_exporter work unchanged.

use std::path::{Path, PathBuf};

use regex::Regex;
use sextant_expfmt::{Format, TextEncoder};
use sextant_model::MetricType;

/// Linux reports CPU times in USER_HZ ticks, 100 per second on every architecture
/// node_exporter supports (it hard-codes the same).
const USER_HZ: f64 = 100.0;

/// Where the collector reads from; tests point these at fixture trees.
#[derive(Debug, Clone)]
pub struct NodePaths {
    /// Usually `/proc`.
    pub proc: PathBuf,
    /// Usually `/sys`.
    pub sys: PathBuf,
    /// Usually `/run/udev/data`, for disk model/serial labels.
    pub udev_data: PathBuf,
}

impl Default for NodePaths {
    fn default() -> Self {
        Self {
            proc: "/proc".into(),
            sys: "/sys".into(),
            udev_data: "/run/udev/data".into(),
        }
    }
}

/// Collects node metrics on demand.
#[derive(Debug, Clone)]
pub struct NodeCollector {
    paths: NodePaths,
    mount_points_exclude: Regex,
    fs_types_exclude: Regex,
    disk_exclude: Regex,
    netdev_exclude: Regex,
}

impl Default for NodeCollector {
    fn default() -> Self {
        Self::new(NodePaths::default())
    }
}

impl NodeCollector {
    /// A collector reading from `paths`, with Debian node_exporter 1.5's default filters.
    pub fn new(paths: NodePaths) -> Self {
        let re = |s: &str| Regex::new(s).expect("static regex");
        Self {
            paths,
            mount_points_exclude: re(
                r"^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)",
            ),
            fs_types_exclude: re(
                r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$",
            ),
            disk_exclude: re(r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$"),
            netdev_exclude: re(r"^lo$"),
        }
    }

    /// One exposition body in the Prometheus text format. A collector whose files are
    /// missing (no PSI on this kernel, say) contributes nothing, as in node_exporter.
    /// Blocking: reads files.
    pub fn gather(&self) -> String {
        let mut e = TextEncoder::new(Format::PrometheusText);
        self.cpu_and_stat(&mut e);
        self.meminfo(&mut e);
        self.loadavg(&mut e);
        self.filesystem(&mut e);
        self.diskstats(&mut e);
        self.netdev(&mut e);
        self.pressure(&mut e);
        self.uname(&mut e);
        e.finish()
    }

    fn read(&self, path: impl AsRef<Path>) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }

    fn cpu_and_stat(&self, e: &mut TextEncoder) {
        let Some(stat) = self.read(self.paths.proc.join("stat")) else {
            return;
        };
        const MODES: [&str; 8] = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"];
        let cpus: Vec<(String, Vec<f64>)> = stat
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let name = f.next()?.strip_prefix("cpu")?;
                if name.is_empty() {
                    return None;
                }
                Some((name.to_owned(), f.filter_map(|v| v.parse::<f64>().ok()).collect()))
            })
            .collect();
        if !cpus.is_empty() {
            e.family(
                "node_cpu_seconds_total",
                MetricType::Counter,
                "Seconds the CPUs spent in each mode.",
                "",
            );
            for (cpu, v) in &cpus {
                for (i, mode) in MODES.iter().enumerate() {
                    if let Some(x) = v.get(i) {
                        e.sample(
                            "node_cpu_seconds_total",
                            &[("cpu", cpu), ("mode", mode)],
                            x / USER_HZ,
                            None,
                        );
                    }
                }
            }
            e.family(
                "node_cpu_guest_seconds_total",
                MetricType::Counter,
                "Seconds the CPUs spent in guests (VMs) for each mode.",
                "",
            );
            for (cpu, v) in &cpus {
                for (i, mode) in [(8, "user"), (9, "nice")] {
                    if let Some(x) = v.get(i) {
                        e.sample(
                            "node_cpu_guest_seconds_total",
                            &[("cpu", cpu), ("mode", mode)],
                            x / USER_HZ,
                            None,
                        );
                    }
                }
            }
        }
        let field = |key: &str| {
            stat.lines()
                .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
                .and_then(|r| r.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        };
        for (key, name, typ, help) in [
            (
                "btime",
                "node_boot_time_seconds",
                MetricType::Gauge,
                "Node boot time, in unixtime.",
            ),
            (
                "ctxt",
                "node_context_switches_total",
                MetricType::Counter,
                "Total number of context switches.",
            ),
            (
                "processes",
                "node_forks_total",
                MetricType::Counter,
                "Total number of forks.",
            ),
            (
                "intr",
                "node_intr_total",
                MetricType::Counter,
                "Total number of interrupts serviced.",
            ),
            (
                "procs_running",
                "node_procs_running",
                MetricType::Gauge,
                "Number of processes in runnable state.",
            ),
            (
                "procs_blocked",
                "node_procs_blocked",
                MetricType::Gauge,
                "Number of processes blocked waiting for I/O to complete.",
            ),
        ] {
            if let Some(v) = field(key) {
                e.family(name, typ, help, "");
                e.sample(name, &[], v, None);
            }
        }
    }

    fn meminfo(&self, e: &mut TextEncoder) {
        let Some(text) = self.read(self.paths.proc.join("meminfo")) else {
            return;
        };
        for line in text.lines() {
            let Some((key, rest)) = line.split_once(':') else {
                continue;
            };
            let mut parts = rest.split_whitespace();
            let Some(Ok(mut value)) = parts.next().map(str::parse::<f64>) else {
                continue;
            };
            let mut name = format!("node_memory_{}", key.replace('(', "_").replace(')', ""));
            if parts.next() == Some("kB") {
                value *= 1024.0;
                name.push_str("_bytes");
            }
            let field = name.trim_start_matches("node_memory_").to_owned();
            e.family(
                &name,
                MetricType::Gauge,
                &format!("Memory information field {field}."),
                "",
            );
            e.sample(&name, &[], value, None);
        }
    }

    fn loadavg(&self, e: &mut TextEncoder) {
        let Some(text) = self.read(self.paths.proc.join("loadavg")) else {
            return;
        };
        let v: Vec<f64> = text.split_whitespace().take(3).filter_map(|x| x.parse().ok()).collect();
        for (i, (name, help)) in [
            ("node_load1", "1m load average."),
            ("node_load5", "5m load average."),
            ("node_load15", "15m load average."),
        ]
        .iter()
        .enumerate()
        {
            if let Some(x) = v.get(i) {
                e.family(name, MetricType::Gauge, help, "");
                e.sample(name, &[], *x, None);
            }
        }
    }

    fn filesystem(&self, e: &mut TextEncoder) {
        let mounts = self
            .read(self.paths.proc.join("1/mounts"))
            .or_else(|| self.read(self.paths.proc.join("mounts")))
            .unwrap_or_default();
        struct Fs {
            device: String,
            mountpoint: String,
            fstype: String,
            ro: bool,
            stat: Option<[f64; 5]>,
        }
        let mut seen = std::collections::HashSet::new();
        let mut list = Vec::new();
        for line in mounts.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 4 {
                continue;
            }
            let mountpoint = f[1].replace("\\040", " ").replace("\\011", "\t");
            if self.mount_points_exclude.is_match(&mountpoint) || self.fs_types_exclude.is_match(f[2]) {
                continue;
            }
            if !seen.insert((f[0].to_owned(), mountpoint.clone())) {
                continue;
            }
            let stat = nix::sys::statfs::statfs(Path::new(&mountpoint)).ok().map(|s| {
                let bsize = s.block_size() as f64;
                [
                    s.blocks() as f64 * bsize,
                    s.blocks_free() as f64 * bsize,
                    s.blocks_available() as f64 * bsize,
                    s.files() as f64,
                    s.files_free() as f64,
                ]
            });
            let ro = f[3].split(',').any(|o| o == "ro");
            list.push(Fs {
                device: f[0].to_owned(),
                mountpoint,
                fstype: f[2].to_owned(),
                ro,
                stat,
            });
        }
        let families: [(&str, &str, Option<usize>); 7] = [
            ("node_filesystem_size_bytes", "Filesystem size in bytes.", Some(0)),
            ("node_filesystem_free_bytes", "Filesystem free space in bytes.", Some(1)),
            (
                "node_filesystem_avail_bytes",
                "Filesystem space available to non-root users in bytes.",
                Some(2),
            ),
            ("node_filesystem_files", "Filesystem total file nodes.", Some(3)),
            (
                "node_filesystem_files_free",
                "Filesystem total free file nodes.",
                Some(4),
            ),
            ("node_filesystem_readonly", "Filesystem read-only status.", None),
            (
                "node_filesystem_device_error",
                "Whether an error occurred while getting statistics for the given device.",
                None,
            ),
        ];
        if list.is_empty() {
            return;
        }
        for (name, help, idx) in families {
            e.family(name, MetricType::Gauge, help, "");
            for fs in &list {
                let labels = [
                    ("device", fs.device.as_str()),
                    ("fstype", fs.fstype.as_str()),
                    ("mountpoint", fs.mountpoint.as_str()),
                ];
                let v = match (idx, &fs.stat) {
                    (Some(i), Some(s)) => s[i],
                    (Some(_), None) => continue,
                    (None, _) if name.ends_with("readonly") => f64::from(u8::from(fs.ro)),
                    (None, s) => f64::from(u8::from(s.is_none())),
                };
                e.sample(name, &labels, v, None);
            }
        }
    }

    fn diskstats(&self, e: &mut TextEncoder) {
        let Some(text) = self.read(self.paths.proc.join("diskstats")) else {
            return;
        };
        let disks: Vec<(Vec<&str>, Vec<f64>)> = text
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                if f.len() < 14 || self.disk_exclude.is_match(f[2]) {
                    return None;
                }
                Some((f[..3].to_vec(), f[3..].iter().filter_map(|v| v.parse().ok()).collect()))
            })
            .collect();
        if disks.is_empty() {
            return;
        }
        e.family(
            "node_disk_info",
            MetricType::Gauge,
            "Info of /sys/block/<block_device>.",
            "",
        );
        for (id, _) in &disks {
            let udev = self
                .read(self.paths.udev_data.join(format!("b{}:{}", id[0], id[1])))
                .unwrap_or_default();
            let prop = |k: &str| {
                udev.lines()
                    .find_map(|l| {
                        l.strip_prefix("E:")
                            .and_then(|p| p.strip_prefix(k))
                            .and_then(|p| p.strip_prefix('='))
                    })
                    .unwrap_or("")
                    .to_owned()
            };
            let (model, path, revision, serial, wwn) = (
                prop("ID_MODEL"),
                prop("ID_PATH"),
                prop("ID_REVISION"),
                prop("ID_SERIAL_SHORT"),
                prop("ID_WWN"),
            );
            e.sample(
                "node_disk_info",
                &[
                    ("device", id[2]),
                    ("major", id[0]),
                    ("minor", id[1]),
                    ("model", &model),
                    ("path", &path),
                    ("revision", &revision),
                    ("serial", &serial),
                    ("wwn", &wwn),
                ],
                1.0,
                None,
            );
        }
        // (field index in /proc/diskstats after the name, metric, type, help, scale)
        const SECTOR: f64 = 512.0;
        let fields: [(usize, &str, MetricType, &str, f64); 17] = [
            (
                0,
                "node_disk_reads_completed_total",
                MetricType::Counter,
                "The total number of reads completed successfully.",
                1.0,
            ),
            (
                1,
                "node_disk_reads_merged_total",
                MetricType::Counter,
                "The total number of reads merged.",
                1.0,
            ),
            (
                2,
                "node_disk_read_bytes_total",
                MetricType::Counter,
                "The total number of bytes read successfully.",
                SECTOR,
            ),
            (
                3,
                "node_disk_read_time_seconds_total",
                MetricType::Counter,
                "The total number of seconds spent by all reads.",
                0.001,
            ),
            (
                4,
                "node_disk_writes_completed_total",
                MetricType::Counter,
                "The total number of writes completed successfully.",
                1.0,
            ),
            (
                5,
                "node_disk_writes_merged_total",
                MetricType::Counter,
                "The number of writes merged.",
                1.0,
            ),
            (
                6,
                "node_disk_written_bytes_total",
                MetricType::Counter,
                "The total number of bytes written successfully.",
                SECTOR,
            ),
            (
                7,
                "node_disk_write_time_seconds_total",
                MetricType::Counter,
                "This is the total number of seconds spent by all writes.",
                0.001,
            ),
            (
                8,
                "node_disk_io_now",
                MetricType::Gauge,
                "The number of I/Os currently in progress.",
                1.0,
            ),
            (
                9,
                "node_disk_io_time_seconds_total",
                MetricType::Counter,
                "Total seconds spent doing I/Os.",
                0.001,
            ),
            (
                10,
                "node_disk_io_time_weighted_seconds_total",
                MetricType::Counter,
                "The weighted # of seconds spent doing I/Os.",
                0.001,
            ),
            (
                11,
                "node_disk_discards_completed_total",
                MetricType::Counter,
                "The total number of discards completed successfully.",
                1.0,
            ),
            (
                12,
                "node_disk_discards_merged_total",
                MetricType::Counter,
                "The total number of discards merged.",
                1.0,
            ),
            (
                13,
                "node_disk_discarded_sectors_total",
                MetricType::Counter,
                "The total number of sectors discarded successfully.",
                1.0,
            ),
            (
                14,
                "node_disk_discard_time_seconds_total",
                MetricType::Counter,
                "This is the total number of seconds spent by all discards.",
                0.001,
            ),
            (
                15,
                "node_disk_flush_requests_total",
                MetricType::Counter,
                "The total number of flush requests completed successfully",
                1.0,
            ),
            (
                16,
                "node_disk_flush_requests_time_seconds_total",
                MetricType::Counter,
                "This is the total number of seconds spent by all flush requests.",
                0.001,
            ),
        ];
        for (i, name, typ, help, scale) in fields {
            if !disks.iter().any(|(_, v)| v.len() > i) {
                continue;
            }
            e.family(name, typ, help, "");
            for (id, v) in &disks {
                if let Some(x) = v.get(i) {
                    e.sample(name, &[("device", id[2])], x * scale, None);
                }
            }
        }
    }

    fn netdev(&self, e: &mut TextEncoder) {
        let Ok(dir) = std::fs::read_dir(self.paths.sys.join("class/net")) else {
            return;
        };
        let mut devices: Vec<String> = dir
            .flatten()
            .map(|d| d.file_name().to_string_lossy().into_owned())
            .filter(|d| !self.netdev_exclude.is_match(d))
            .collect();
        devices.sort();
        // (metric suffix, sysfs statistics file), as node_exporter 1.5's netlink mode maps them.
        const STATS: [(&str, &str); 17] = [
            ("receive_bytes", "rx_bytes"),
            ("receive_compressed", "rx_compressed"),
            ("receive_drop", "rx_dropped"),
            ("receive_errs", "rx_errors"),
            ("receive_fifo", "rx_fifo_errors"),
            ("receive_frame", "rx_frame_errors"),
            ("receive_multicast", "multicast"),
            ("receive_nohandler", "rx_nohandler"),
            ("receive_packets", "rx_packets"),
            ("transmit_bytes", "tx_bytes"),
            ("transmit_carrier", "tx_carrier_errors"),
            ("transmit_colls", "collisions"),
            ("transmit_compressed", "tx_compressed"),
            ("transmit_drop", "tx_dropped"),
            ("transmit_errs", "tx_errors"),
            ("transmit_fifo", "tx_fifo_errors"),
            ("transmit_packets", "tx_packets"),
        ];
        let mut values: Vec<Vec<Option<f64>>> = Vec::new();
        for d in &devices {
            let base = self.paths.sys.join("class/net").join(d).join("statistics");
            values.push(
                STATS
                    .iter()
                    .map(|(_, f)| self.read(base.join(f)).and_then(|s| s.trim().parse().ok()))
                    .collect(),
            );
        }
        for (i, (suffix, _)) in STATS.iter().enumerate() {
            let name = format!("node_network_{suffix}_total");
            if values.iter().all(|v| v[i].is_none()) {
                continue;
            }
            e.family(
                &name,
                MetricType::Counter,
                &format!("Network device statistic {suffix}."),
                "",
            );
            for (d, v) in devices.iter().zip(&values) {
                if let Some(x) = v[i] {
                    e.sample(&name, &[("device", d)], x, None);
                }
            }
        }
    }

    fn pressure(&self, e: &mut TextEncoder) {
        let total = |res: &str, kind: &str| -> Option<f64> {
            let text = self.read(self.paths.proc.join("pressure").join(res))?;
            let line = text.lines().find(|l| l.starts_with(kind))?;
            let t = line.split_whitespace().find_map(|f| f.strip_prefix("total="))?;
            t.parse::<f64>().ok().map(|us| us / 1e6)
        };
        for (res, kind, name, help) in [
            (
                "cpu",
                "some",
                "node_pressure_cpu_waiting_seconds_total",
                "Total time in seconds that processes have waited for CPU time",
            ),
            (
                "io",
                "some",
                "node_pressure_io_waiting_seconds_total",
                "Total time in seconds that processes have waited due to IO congestion",
            ),
            (
                "io",
                "full",
                "node_pressure_io_stalled_seconds_total",
                "Total time in seconds no process could make progress due to IO congestion",
            ),
            (
                "memory",
                "some",
                "node_pressure_memory_waiting_seconds_total",
                "Total time in seconds that processes have waited for memory",
            ),
            (
                "memory",
                "full",
                "node_pressure_memory_stalled_seconds_total",
                "Total time in seconds no process could make progress due to memory congestion",
            ),
        ] {
            if let Some(v) = total(res, kind) {
                e.family(name, MetricType::Counter, help, "");
                e.sample(name, &[], v, None);
            }
        }
    }

    fn uname(&self, e: &mut TextEncoder) {
        let Ok(u) = nix::sys::utsname::uname() else { return };
        let s = |o: &std::ffi::OsStr| o.to_string_lossy().into_owned();
        let domainname = self
            .read(self.paths.proc.join("sys/kernel/domainname"))
            .map(|d| d.trim().to_owned())
            .unwrap_or_else(|| "(none)".into());
        let (sysname, release, version, machine, nodename) = (
            s(u.sysname()),
            s(u.release()),
            s(u.version()),
            s(u.machine()),
            s(u.nodename()),
        );
        e.family(
            "node_uname_info",
            MetricType::Gauge,
            "Labeled system information as provided by the uname system call.",
            "",
        );
        e.sample(
            "node_uname_info",
            &[
                ("domainname", &domainname),
                ("machine", &machine),
                ("nodename", &nodename),
                ("release", &release),
                ("sysname", &sysname),
                ("version", &version),
            ],
            1.0,
            None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (tempfile::TempDir, NodeCollector) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("proc/pressure")).unwrap();
        std::fs::create_dir_all(p.join("sys/class/net/eth0/statistics")).unwrap();
        std::fs::create_dir_all(p.join("sys/class/net/lo/statistics")).unwrap();
        std::fs::write(
            p.join("proc/stat"),
            "cpu  10 0 5 100 1 0 0 0 0 0\ncpu0 250 1 50 1000 10 2 3 4 7 8\nintr 12345 1 2\nctxt 999\nbtime 1700000000\nprocesses 42\nprocs_running 3\nprocs_blocked 1\n",
        )
        .unwrap();
        std::fs::write(
            p.join("proc/meminfo"),
            "MemTotal:       1000 kB\nActive(anon):     10 kB\nHugePages_Total:       0\n",
        )
        .unwrap();
        std::fs::write(p.join("proc/loadavg"), "0.50 0.25 0.10 1/100 4242\n").unwrap();
        std::fs::write(p.join("proc/diskstats"), "   8       0 sda 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n   8       1 sda1 1 2 3 4 5 6 7 8 9 10 11\n   7 0 loop0 0 0 0 0 0 0 0 0 0 0 0\n").unwrap();
        std::fs::write(
            p.join("proc/pressure/cpu"),
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=2500000\n",
        )
        .unwrap();
        std::fs::write(p.join("proc/pressure/io"), "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=500000\n").unwrap();
        std::fs::write(
            p.join("proc/mounts"),
            "/dev/root / ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\n",
        )
        .unwrap();
        std::fs::write(p.join("sys/class/net/eth0/statistics/rx_bytes"), "1234\n").unwrap();
        std::fs::write(p.join("sys/class/net/lo/statistics/rx_bytes"), "1\n").unwrap();
        let c = NodeCollector::new(NodePaths {
            proc: p.join("proc"),
            sys: p.join("sys"),
            udev_data: p.join("udev"),
        });
        (dir, c)
    }

    fn value(body: &str, series: &str) -> Option<f64> {
        body.lines().find_map(|l| {
            l.strip_prefix(series)
                .and_then(|r| r.strip_prefix(' '))
                .and_then(|v| v.parse().ok())
        })
    }

    #[test]
    fn reads_fixture_like_node_exporter() {
        let (_dir, c) = fixture();
        let body = c.gather();
        assert_eq!(
            value(&body, r#"node_cpu_seconds_total{cpu="0",mode="user"}"#),
            Some(2.5)
        );
        assert_eq!(
            value(&body, r#"node_cpu_seconds_total{cpu="0",mode="steal"}"#),
            Some(0.04)
        );
        assert_eq!(
            value(&body, r#"node_cpu_guest_seconds_total{cpu="0",mode="nice"}"#),
            Some(0.08)
        );
        assert_eq!(value(&body, "node_intr_total"), Some(12345.0));
        assert_eq!(value(&body, "node_boot_time_seconds"), Some(1_700_000_000.0));
        assert_eq!(value(&body, "node_memory_MemTotal_bytes"), Some(1_024_000.0));
        assert_eq!(value(&body, "node_memory_Active_anon_bytes"), Some(10_240.0));
        assert_eq!(value(&body, "node_memory_HugePages_Total"), Some(0.0));
        assert_eq!(value(&body, "node_load15"), Some(0.1));
        assert_eq!(
            value(&body, r#"node_disk_read_bytes_total{device="sda"}"#),
            Some(3.0 * 512.0)
        );
        assert_eq!(
            value(&body, r#"node_disk_io_time_seconds_total{device="sda"}"#),
            Some(0.01)
        );
        assert!(
            !body.contains("sda1") && !body.contains("loop0"),
            "partitions and loop devices excluded"
        );
        assert_eq!(value(&body, "node_pressure_cpu_waiting_seconds_total"), Some(2.5));
        assert_eq!(value(&body, "node_pressure_io_stalled_seconds_total"), Some(0.5));
        assert_eq!(
            value(&body, r#"node_network_receive_bytes_total{device="eth0"}"#),
            Some(1234.0)
        );
        assert!(!body.contains(r#"device="lo""#));
        assert!(
            body.contains(r#"node_filesystem_readonly{device="/dev/root",fstype="ext4",mountpoint="/"} 0"#),
            "{body}"
        );
        assert!(!body.contains("mountpoint=\"/proc\""));
        // The body parses as the text format.
        sextant_expfmt::parse(body.as_bytes(), Format::PrometheusText).unwrap();
    }
}
