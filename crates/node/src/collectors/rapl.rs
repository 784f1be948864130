//! `rapl`: Intel RAPL energy counters of `/sys/class/powercap`.

use std::collections::HashMap;

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;
use crate::read;

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let class = node.opts.sys("class/powercap");
    let entries = match read::dir_names(&class) {
        Ok(e) => e,
        Err(e) if read::absent(&e) => return Err(CollectError::NoData),
        Err(e) => {
            return Err(CollectError::at(
                &class,
                format_args!("failed to retrieve rapl stats: {e}"),
            ));
        }
    };
    // Zones are all listed before any is read, as procfs does: a zone without
    // `max_energy_range_uj` means no data at all.
    let mut counts: HashMap<String, i64> = HashMap::new();
    let mut zones = Vec::new();
    for entry in entries {
        let path = class.join(&entry);
        let Ok(name) = read::string(&path.join("name")) else {
            continue;
        };
        let name = name.trim().to_owned();
        // `package-0` is zone `package` with index 0; `core` counts up per name.
        let (index, name) = match name.split('-').collect::<Vec<_>>()[..] {
            [n, i] if i.parse::<i64>().is_ok() => (i.parse::<i64>().unwrap_or(0), n.to_owned()),
            _ => (counts.get(&name).copied().unwrap_or(0), name),
        };
        counts.insert(name.clone(), index + 1);
        let max = path.join("max_energy_range_uj");
        match read::trimmed(&max) {
            Ok(s) => {
                s.parse::<u64>()
                    .map_err(|e| CollectError::at(&max, format_args!("{e}: {s:?}")))?;
            }
            Err(e) if read::absent(&e) => return Err(CollectError::NoData),
            Err(e) => return Err(CollectError::at(&max, e)),
        }
        zones.push((name, index, path));
    }
    for (name, index, path) in zones {
        let file = path.join("energy_uj");
        let uj = match read::trimmed(&file) {
            // energy_uj is root-only on current kernels.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Err(CollectError::NoData),
            Err(e) => return Err(CollectError::at(&file, e)),
            Ok(s) => s
                .parse::<u64>()
                .map_err(|e| CollectError::at(&file, format_args!("{e}: {s:?}")))?,
        };
        let joules = uj as f64 / 1_000_000.0;
        let (index, path) = (index.to_string(), path.to_string_lossy().into_owned());
        if node.opts.rapl_zone_label {
            out.counter(
                "node_rapl_joules_total",
                "Current RAPL value in joules",
                &[("index", &index), ("path", &path), ("rapl_zone", &name)],
                joules,
            );
        } else {
            out.counter(
                &format!("node_rapl_{}_joules_total", sanitize_metric_name(&name)),
                &format!("Current RAPL {name} value in joules"),
                &[("index", &index), ("path", &path)],
                joules,
            );
        }
    }
    Ok(())
}

/// node_exporter's `SanitizeMetricName`: every run of characters outside
/// `[0-9A-Za-z_]`, with the underscores around it, becomes one `_`.
pub(crate) fn sanitize_metric_name(s: &str) -> String {
    static INVALID: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new("_*[^0-9A-Za-z_]+_*").expect("static regex"));
    INVALID.replace_all(s, "_").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitized_like_node_exporter() {
        assert_eq!(sanitize_metric_name("package-0-die-1"), "package_0_die_1");
        assert_eq!(sanitize_metric_name("a__-__b"), "a_b");
        assert_eq!(sanitize_metric_name("a__b"), "a__b");
        assert_eq!(sanitize_metric_name("psys"), "psys");
        assert_eq!(sanitize_metric_name("x.y z"), "x_y_z");
    }
}
