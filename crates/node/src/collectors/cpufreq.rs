//! `cpufreq`: CPU frequencies from `/sys/devices/system/cpu/cpu*/cpufreq`.

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;
use crate::read;

/// (file, metric, help), exposed in hertz where the file exists.
const FREQUENCIES: [(&str, &str, &str); 6] = [
    (
        "cpuinfo_cur_freq",
        "node_cpu_frequency_hertz",
        "Current cpu thread frequency in hertz.",
    ),
    (
        "cpuinfo_max_freq",
        "node_cpu_frequency_max_hertz",
        "Maximum cpu thread frequency in hertz.",
    ),
    (
        "cpuinfo_min_freq",
        "node_cpu_frequency_min_hertz",
        "Minimum cpu thread frequency in hertz.",
    ),
    (
        "scaling_cur_freq",
        "node_cpu_scaling_frequency_hertz",
        "Current scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_max_freq",
        "node_cpu_scaling_frequency_max_hertz",
        "Maximum scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_min_freq",
        "node_cpu_scaling_frequency_min_hertz",
        "Minimum scaled CPU thread frequency in hertz.",
    ),
];

/// Files procfs requires of every policy (their values are not exposed).
const REQUIRED: [&str; 5] = [
    "scaling_available_governors",
    "scaling_driver",
    "scaling_governor",
    "related_cpus",
    "scaling_setspeed",
];

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    // Everything is read first: procfs fails the whole read on one bad file.
    let mut rows = Vec::new();
    for (cpu, dir) in read::numbered(&node.opts.sys("devices/system/cpu"), "cpu") {
        let freq = dir.join("cpufreq");
        match std::fs::metadata(&freq) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(CollectError::at(&freq, e)),
        }
        for file in ["cpuinfo_transition_latency"]
            .iter()
            .chain(FREQUENCIES.iter().map(|f| &f.0))
        {
            let p = freq.join(file);
            let value = match read::trimmed(&p) {
                Ok(s) => s
                    .parse::<u64>()
                    .map_err(|e| CollectError::at(&p, format_args!("{e}: {s:?}")))?,
                Err(e) if read::absent(&e) => continue,
                Err(e) => return Err(CollectError::at(&p, e)),
            };
            if let Some((_, name, help)) = FREQUENCIES.iter().find(|f| f.0 == *file) {
                rows.push((cpu.clone(), *name, *help, value as f64 * 1000.0));
            }
        }
        for file in REQUIRED {
            let p = freq.join(file);
            read::sys_file(&p).map_err(|e| CollectError::at(&p, e))?;
        }
    }
    for (cpu, name, help, hz) in rows {
        out.gauge(name, help, &[("cpu", &cpu)], hz);
    }
    Ok(())
}
