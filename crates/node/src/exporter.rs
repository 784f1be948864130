//! The series node_exporter exposes about itself on the same endpoint: per-collector
//! duration and success, `node_exporter_build_info`, the process collector's `process_*`
//! (here for the Sextant process) and the metric handler's `promhttp_*` counters. The
//! Go runtime's `go_*` series have no counterpart in a Rust process and are not made up.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::out::Out;
use crate::read;

/// Linux's USER_HZ, as client_golang's process collector assumes it.
const USER_HZ: f64 = 100.0;

/// `node_scrape_collector_duration_seconds` and `node_scrape_collector_success`.
pub(crate) fn collector_result(out: &mut Out, name: &str, seconds: f64, ok: bool) {
    out.gauge(
        "node_scrape_collector_duration_seconds",
        "node_exporter: Duration of a collector scrape.",
        &[("collector", name)],
        seconds,
    );
    out.gauge(
        "node_scrape_collector_success",
        "node_exporter: Whether a collector succeeded.",
        &[("collector", name)],
        f64::from(u8::from(ok)),
    );
}

/// `node_exporter_build_info`. `version` is the node_exporter release whose metrics
/// this collector reproduces (what dashboards display and alert on); `revision`,
/// `branch` and `goversion` say it is Sextant's.
pub(crate) fn build_info(out: &mut Out) {
    out.gauge(
        "node_exporter_build_info",
        "A metric with a constant '1' value labeled by version, revision, branch, goversion from which node_exporter was built, and the goos and goarch for the build.",
        &[
            ("branch", "sextant"),
            ("goarch", goarch()),
            ("goos", "linux"),
            ("goversion", concat!("sextant ", env!("CARGO_PKG_VERSION"))),
            ("revision", env!("CARGO_PKG_VERSION")),
            ("version", "1.5.0"),
        ],
        1.0,
    );
}

/// Go's name for the architecture, as in `goarch`.
fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// The process collector's series for this process, read from `/proc/self` (never the
/// configured procfs path: that may be a fixture tree or a host's `/proc`).
pub(crate) fn process(out: &mut Out) {
    let proc = Path::new("/proc");
    if let Ok(stat) = read::string(&proc.join("self/stat")) {
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        // `f[0]` is field 3 (state) of proc(5).
        let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<f64>().ok());
        if let (Some(utime), Some(stime)) = (field(14), field(15)) {
            out.counter(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                &[],
                (utime + stime) / USER_HZ,
            );
        }
        if let Some(vsize) = field(23) {
            out.gauge(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                &[],
                vsize,
            );
        }
        if let Some(rss) = field(24) {
            let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
                .ok()
                .flatten()
                .unwrap_or(4096) as f64;
            out.gauge(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                &[],
                rss * page,
            );
        }
        let btime = read::string(&proc.join("stat")).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<f64>().ok())
        });
        if let (Some(start), Some(btime)) = (field(22), btime) {
            out.gauge(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                &[],
                btime + start / USER_HZ,
            );
        }
    }
    if let Ok(fds) = std::fs::read_dir(proc.join("self/fd")) {
        out.gauge(
            "process_open_fds",
            "Number of open file descriptors.",
            &[],
            fds.count() as f64,
        );
    }
    if let Ok(limits) = read::string(&proc.join("self/limits")) {
        let soft = |name: &str| {
            limits.lines().find_map(|l| {
                let v = l.strip_prefix(name)?.split_whitespace().next()?;
                Some(if v == "unlimited" {
                    u64::MAX as f64
                } else {
                    v.parse().ok()?
                })
            })
        };
        if let Some(v) = soft("Max open files") {
            out.gauge("process_max_fds", "Maximum number of open file descriptors.", &[], v);
        }
        if let Some(v) = soft("Max address space") {
            out.gauge(
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
                &[],
                v,
            );
        }
    }
}

/// The metric handler's own counters, as promhttp keeps them: requests served (by
/// status code; this endpoint only ever answers 200), requests in flight (this one
/// included) and internal errors.
#[derive(Debug, Default)]
pub(crate) struct ExporterStats {
    served: AtomicU64,
    in_flight: AtomicU64,
}

/// Marks a request in flight until dropped.
pub(crate) struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ExporterStats {
    pub fn request_started(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    /// Counted once the body is rendered, so a scrape sees the requests before it.
    pub fn request_done(&self) {
        self.served.fetch_add(1, Ordering::Relaxed);
    }

    pub fn write(&self, out: &mut Out) {
        for cause in ["encoding", "gathering"] {
            out.counter(
                "promhttp_metric_handler_errors_total",
                "Total number of internal errors encountered by the promhttp metric handler.",
                &[("cause", cause)],
                0.0,
            );
        }
        out.gauge(
            "promhttp_metric_handler_requests_in_flight",
            "Current number of scrapes being served.",
            &[],
            self.in_flight.load(Ordering::Relaxed) as f64,
        );
        let served = self.served.load(Ordering::Relaxed) as f64;
        for (code, n) in [("200", served), ("500", 0.0), ("503", 0.0)] {
            out.counter(
                "promhttp_metric_handler_requests_total",
                "Total number of scrapes by HTTP status code.",
                &[("code", code)],
                n,
            );
        }
    }
}
