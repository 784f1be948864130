//! `powersupplyclass`: batteries, AC adapters and USB supplies of
//! `/sys/class/power_supply`.

use std::collections::BTreeMap;

use crate::Node;
use crate::error::{CollectError, IoContext, Result};
use crate::out::Out;
use crate::read;

/// (file, metric suffix, divisor): numeric attributes that are exposed.
const NUMBERS: [(&str, &str, f64); 49] = [
    ("authentic", "authentic", 1.0),
    ("calibrate", "calibrate", 1.0),
    ("capacity", "capacity", 1.0),
    ("capacity_alert_max", "capacity_alert_max", 1.0),
    ("capacity_alert_min", "capacity_alert_min", 1.0),
    ("cycle_count", "cyclecount", 1.0),
    ("online", "online", 1.0),
    ("present", "present", 1.0),
    ("time_to_empty_now", "time_to_empty_seconds", 1.0),
    ("time_to_full_now", "time_to_full_seconds", 1.0),
    ("current_boot", "current_boot", 1e6),
    ("current_max", "current_max", 1e6),
    ("current_now", "current_ampere", 1e6),
    ("energy_empty", "energy_empty", 1e6),
    ("energy_empty_design", "energy_empty_design", 1e6),
    ("energy_full", "energy_full", 1e6),
    ("energy_full_design", "energy_full_design", 1e6),
    ("energy_now", "energy_watthour", 1e6),
    ("voltage_boot", "voltage_boot", 1e6),
    ("voltage_max", "voltage_max", 1e6),
    ("voltage_max_design", "voltage_max_design", 1e6),
    ("voltage_min", "voltage_min", 1e6),
    ("voltage_min_design", "voltage_min_design", 1e6),
    ("voltage_now", "voltage_volt", 1e6),
    ("voltage_ocv", "voltage_ocv", 1e6),
    ("charge_control_limit", "charge_control_limit", 1e6),
    ("charge_control_limit_max", "charge_control_limit_max", 1e6),
    ("charge_counter", "charge_counter", 1e6),
    ("charge_empty", "charge_empty", 1e6),
    ("charge_empty_design", "charge_empty_design", 1e6),
    ("charge_full", "charge_full", 1e6),
    ("charge_full_design", "charge_full_design", 1e6),
    ("charge_now", "charge_ampere", 1e6),
    ("charge_term_current", "charge_term_current", 1e6),
    ("constant_charge_current", "constant_charge_current", 1e6),
    ("constant_charge_current_max", "constant_charge_current_max", 1e6),
    ("constant_charge_voltage", "constant_charge_voltage", 1e6),
    ("constant_charge_voltage_max", "constant_charge_voltage_max", 1e6),
    ("precharge_current", "precharge_current", 1e6),
    ("input_current_limit", "input_current_limit", 1e6),
    ("power_now", "power_watt", 1e6),
    ("temp", "temp_celsius", 10.0),
    ("temp_alert_max", "temp_alert_max_celsius", 10.0),
    ("temp_alert_min", "temp_alert_min_celsius", 10.0),
    ("temp_ambient", "temp_ambient_celsius", 10.0),
    ("temp_ambient_max", "temp_ambient_max_celsius", 10.0),
    ("temp_ambient_min", "temp_ambient_min_celsius", 10.0),
    ("temp_max", "temp_max_celsius", 10.0),
    ("temp_min", "temp_min_celsius", 10.0),
];

/// Numeric attributes procfs parses (and so can fail on) but node_exporter does not expose.
const UNEXPOSED_NUMBERS: [&str; 7] = [
    "charge_avg",
    "current_avg",
    "energy_avg",
    "power_avg",
    "time_to_empty_avg",
    "time_to_full_avg",
    "voltage_avg",
];

/// Text attributes that become labels of `node_power_supply_info`.
const TEXTS: [&str; 11] = [
    "capacity_level",
    "charge_type",
    "health",
    "manufacturer",
    "model_name",
    "serial_number",
    "status",
    "technology",
    "type",
    "usb_type",
    "scope",
];

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let class = node.opts.sys("class/power_supply");
    let supplies = read::dir_names(&class).no_data_if_missing(&class)?;
    // All supplies are read before anything is written: one bad attribute fails all.
    let mut read_all = Vec::new();
    for name in supplies {
        let dir = class.join(&name);
        let mut attrs: BTreeMap<String, String> = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).at(&dir)?.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let file = entry.file_name().to_string_lossy().into_owned();
            let path = dir.join(&file);
            match read::sys_file(&path) {
                Ok(v) => {
                    attrs.insert(file, v);
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound
                        || matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL)) => {}
                Err(e) => return Err(CollectError::at(&path, format_args!("failed to read file: {e}"))),
            }
        }
        let mut numbers = Vec::new();
        for (file, value) in &attrs {
            let known = NUMBERS.iter().find(|n| n.0 == file);
            if known.is_none() && !UNEXPOSED_NUMBERS.contains(&file.as_str()) {
                continue;
            }
            let v = read::parse_int_base0(value)
                .ok_or_else(|| CollectError::at(&dir.join(file), format_args!("invalid number {value:?}")))?;
            if let Some((_, suffix, div)) = known {
                numbers.push((*suffix, v as f64 / div));
            }
        }
        read_all.push((name, attrs, numbers));
    }
    for (name, attrs, numbers) in read_all {
        if node.opts.powersupply_ignored.is_match(&name) {
            continue;
        }
        for (suffix, v) in numbers {
            out.gauge(
                &format!("node_power_supply_{suffix}"),
                &format!("{suffix} value of /sys/class/power_supply/<power_supply>."),
                &[("power_supply", &name)],
                v,
            );
        }
        let mut labels: Vec<(&str, &str)> = vec![("power_supply", &name)];
        for t in TEXTS {
            if let Some(v) = attrs.get(t).filter(|v| !v.is_empty()) {
                labels.push((t, v));
            }
        }
        out.gauge(
            "node_power_supply_info",
            "info of /sys/class/power_supply/<power_supply>.",
            &labels,
            1.0,
        );
    }
    Ok(())
}
