//! `cpu`: per-CPU time by mode from `/proc/stat` (kept monotonic across scrapes, as
//! node_exporter keeps it), guest time, isolated CPUs, thermal throttling counts from
//! sysfs, and (off by default) `/proc/cpuinfo` as info series.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::Node;
use crate::error::{CollectError, IoContext, Result};
use crate::out::Out;
use crate::read;

/// Linux reports CPU times in USER_HZ ticks, 100 per second on every architecture
/// node_exporter supports (it hard-codes the same).
const USER_HZ: f64 = 100.0;

/// An idle counter that goes back by more than this many seconds is a CPU that was
/// unplugged and plugged again: its counters start over.
const JUMP_BACK_SECONDS: f64 = 3.0;

/// Times of one CPU in seconds: user, nice, system, idle, iowait, irq, softirq, steal,
/// guest, guest_nice.
type Times = [f64; 10];

/// What the cpu collector remembers: the last times it exposed, so that a counter the
/// kernel reports lower than before (it happens with idle and iowait) never goes back.
#[derive(Debug, Default)]
pub(crate) struct CpuState {
    last: Mutex<Vec<Times>>,
}

const MODES: [&str; 8] = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"];

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    if node.opts.cpu_info {
        info(node, out)?;
    }
    let path = node.opts.proc("stat");
    let text = read::string(&path).at(&path)?;
    let current = parse_stat(&text).map_err(|e| CollectError::at(&path, e))?;
    let mut last = node.state.cpu.last.lock().expect("poisoned");
    if last.len() != current.len() {
        *last = vec![[0.0; 10]; current.len()];
    }
    for (old, new) in last.iter_mut().zip(&current) {
        if old[3] - new[3] >= JUMP_BACK_SECONDS {
            *old = [0.0; 10];
        }
        for (o, n) in old.iter_mut().zip(new) {
            if *n >= *o {
                *o = *n;
            }
        }
    }
    for (cpu, t) in last.iter().enumerate() {
        let cpu = cpu.to_string();
        for (mode, v) in MODES.iter().zip(t) {
            out.counter(
                "node_cpu_seconds_total",
                "Seconds the CPUs spent in each mode.",
                &[("cpu", &cpu), ("mode", mode)],
                *v,
            );
        }
        if node.opts.cpu_guest {
            for (mode, v) in [("user", t[8]), ("nice", t[9])] {
                out.counter(
                    "node_cpu_guest_seconds_total",
                    "Seconds the CPUs spent in guests (VMs) for each mode.",
                    &[("cpu", &cpu), ("mode", mode)],
                    v,
                );
            }
        }
    }
    drop(last);
    isolated(node, out)?;
    thermal_throttle(node, out);
    Ok(())
}

/// Per-CPU lines of `/proc/stat`, indexed by CPU number; numbers missing between
/// (offline CPUs) are all-zero, as procfs fills them.
fn parse_stat(text: &str) -> std::result::Result<Vec<Times>, String> {
    let mut cpus: Vec<Times> = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some(name) = f.next() else { continue };
        if line.split_whitespace().nth(1).is_none() {
            continue;
        }
        let Some(id) = name.strip_prefix("cpu") else { continue };
        if id.is_empty() {
            continue;
        }
        let id: usize = id
            .parse()
            .map_err(|e| format!("couldn't parse {line:?} (cpu/cpuid): {e}"))?;
        let mut t = [0.0; 10];
        for (slot, v) in t.iter_mut().zip(f) {
            *slot = v
                .parse::<f64>()
                .map_err(|e| format!("couldn't parse {line:?} (cpu): {e}"))?
                / USER_HZ;
        }
        if cpus.len() <= id {
            cpus.resize(id + 1, [0.0; 10]);
        }
        cpus[id] = t;
    }
    Ok(cpus)
}

/// `node_cpu_isolated` from `devices/system/cpu/isolated` (a list such as `1,3-5`).
fn isolated(node: &Node, out: &mut Out) -> Result {
    let path = node.opts.sys("devices/system/cpu/isolated");
    let Ok(text) = read::string(&path) else { return Ok(()) };
    let mut cpus = Vec::new();
    for part in text.trim_end_matches('\n').split(',').filter(|p| !p.is_empty()) {
        let bad = |e: std::num::ParseIntError| CollectError::at(&path, format_args!("invalid cpu {part:?}: {e}"));
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u16, u16) = (a.parse().map_err(bad)?, b.parse().map_err(bad)?);
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse::<u16>().map_err(bad)?),
        }
    }
    for cpu in cpus {
        out.gauge(
            "node_cpu_isolated",
            "Whether each core is isolated, information from /sys/devices/system/cpu/isolated.",
            &[("cpu", &cpu.to_string())],
            1.0,
        );
    }
    Ok(())
}

/// Throttle counts per package and per core, read once per package and core from the
/// first CPU (in name order) that has them.
fn thermal_throttle(node: &Node, out: &mut Out) {
    let dir = node.opts.sys("devices/system/cpu");
    let Ok(names) = read::dir_names(&dir) else { return };
    let mut packages: BTreeMap<u64, Option<u64>> = BTreeMap::new();
    let mut cores: BTreeMap<(u64, u64), Option<u64>> = BTreeMap::new();
    for name in names {
        let is_cpu = name
            .strip_prefix("cpu")
            .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()));
        if !is_cpu {
            continue;
        }
        let cpu = dir.join(&name);
        let (Some(package), Some(core)) = (
            read::opt_uint(&cpu.join("topology/physical_package_id")),
            read::opt_uint(&cpu.join("topology/core_id")),
        ) else {
            continue;
        };
        cores
            .entry((package, core))
            .or_insert_with(|| read::opt_uint(&cpu.join("thermal_throttle/core_throttle_count")));
        packages
            .entry(package)
            .or_insert_with(|| read::opt_uint(&cpu.join("thermal_throttle/package_throttle_count")));
    }
    for (package, n) in packages {
        if let Some(n) = n {
            out.counter(
                "node_cpu_package_throttles_total",
                "Number of times this CPU package has been throttled.",
                &[("package", &package.to_string())],
                n as f64,
            );
        }
    }
    for ((package, core), n) in cores {
        if let Some(n) = n {
            out.counter(
                "node_cpu_core_throttles_total",
                "Number of times this CPU core has been throttled.",
                &[("package", &package.to_string()), ("core", &core.to_string())],
                n as f64,
            );
        }
    }
}

/// `node_cpu_info` per CPU and, where filters are set, the first CPU's flags and bugs.
fn info(node: &Node, out: &mut Out) -> Result {
    let path = node.opts.proc("cpuinfo");
    let text = read::string(&path).at(&path)?;
    let mut cpus: Vec<BTreeMap<&str, &str>> = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(": ").or_else(|| line.split_once(':')) else {
            continue;
        };
        let key = key.trim();
        if key == "processor" {
            cpus.push(BTreeMap::new());
        }
        if let Some(cpu) = cpus.last_mut() {
            cpu.insert(key, value);
        }
    }
    if cpus.is_empty() {
        return Err(CollectError::at(&path, "invalid cpuinfo file"));
    }
    for cpu in &cpus {
        let get = |k: &str| cpu.get(k).copied().unwrap_or("");
        let vendor = cpu
            .get("vendor_id")
            .or_else(|| cpu.get("vendor"))
            .copied()
            .unwrap_or("");
        out.gauge(
            "node_cpu_info",
            "CPU information from /proc/cpuinfo.",
            &[
                ("package", get("physical id")),
                ("core", get("core id")),
                ("cpu", get("processor").trim()),
                ("vendor", vendor),
                ("family", get("cpu family")),
                ("model", get("model")),
                ("model_name", get("model name")),
                ("microcode", get("microcode")),
                ("stepping", get("stepping")),
                ("cachesize", get("cache size")),
            ],
            1.0,
        );
    }
    let first = &cpus[0];
    for (field, filter, name, label, help) in [
        (
            "flags",
            &node.opts.cpu_flags_include,
            "node_cpu_flag_info",
            "flag",
            "The `flags` field of CPU information from /proc/cpuinfo taken from the first core.",
        ),
        (
            "bugs",
            &node.opts.cpu_bugs_include,
            "node_cpu_bug_info",
            "bug",
            "The `bugs` field of CPU information from /proc/cpuinfo taken from the first core.",
        ),
    ] {
        let Some(filter) = filter else { continue };
        for v in first.get(field).copied().unwrap_or("").split_whitespace() {
            if filter.is_match(v) {
                out.gauge(name, help, &[(label, v)], 1.0);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_cpus_read_as_zero_and_total_line_ignored() {
        let t = parse_stat("cpu  1 2 3\ncpu0 100 0 0 0\ncpu2 200 0 0 0 0 0 0 0 300 400\nintr 1\n").unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t[0][0], 1.0);
        assert_eq!(t[1], [0.0; 10]);
        assert_eq!((t[2][0], t[2][8], t[2][9]), (2.0, 3.0, 4.0));
    }
}
