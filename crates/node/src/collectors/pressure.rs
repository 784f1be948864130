//! `pressure`: pressure stall information from `/proc/pressure/{cpu,io,memory}`.

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;
use crate::read;

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    for resource in ["cpu", "io", "memory"] {
        let path = node.opts.proc(&format!("pressure/{resource}"));
        let text = match read::string(&path) {
            Ok(t) => t,
            // Kernels before 4.20, without CONFIG_PSI, or booted without psi=1.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                return Err(CollectError::NoData);
            }
            Err(e) => return Err(CollectError::at(&path, e)),
        };
        let total = |kind: &str| -> f64 {
            text.lines()
                .find(|l| l.starts_with(kind))
                .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("total=")))
                .and_then(|t| t.parse::<u64>().ok())
                .map_or(0.0, |us| us as f64 / 1000.0 / 1000.0)
        };
        match resource {
            "cpu" => out.counter(
                "node_pressure_cpu_waiting_seconds_total",
                "Total time in seconds that processes have waited for CPU time",
                &[],
                total("some"),
            ),
            "io" => {
                out.counter(
                    "node_pressure_io_waiting_seconds_total",
                    "Total time in seconds that processes have waited due to IO congestion",
                    &[],
                    total("some"),
                );
                out.counter(
                    "node_pressure_io_stalled_seconds_total",
                    "Total time in seconds no process could make progress due to IO congestion",
                    &[],
                    total("full"),
                );
            }
            _ => {
                out.counter(
                    "node_pressure_memory_waiting_seconds_total",
                    "Total time in seconds that processes have waited for memory",
                    &[],
                    total("some"),
                );
                out.counter(
                    "node_pressure_memory_stalled_seconds_total",
                    "Total time in seconds no process could make progress due to memory congestion",
                    &[],
                    total("full"),
                );
            }
        }
    }
    Ok(())
}
