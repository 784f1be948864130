//! `hwmon`: hardware sensors of `/sys/class/hwmon` (temperatures, voltages, fans,
//! power...), named as node_exporter names them: one family per sensor type and
//! property, with units, labelled by a chip name derived from the device path.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::Node;
use crate::error::{CollectError, IoContext, Result};
use crate::out::Out;
use crate::read;

/// Sensor types node_exporter reads; files of other types are ignored.
const SENSOR_TYPES: [&str; 13] = [
    "vrm",
    "beep_enable",
    "update_interval",
    "in",
    "cpu",
    "fan",
    "pwm",
    "temp",
    "curr",
    "power",
    "energy",
    "humidity",
    "intrusion",
];

/// Sensor name (`temp1`) → property (`input`, `crit`, `""` for the bare file) → value.
type Sensors = BTreeMap<String, BTreeMap<String, String>>;

pub(crate) fn collect(node: &Node, out: &mut Out) -> Result {
    let class = node.opts.sys("class/hwmon");
    let names = read::dir_names(&class).no_data_if_missing(&class)?;
    // As in node_exporter, one error slot that a later symlink resolving successfully
    // clears: only a failure at the last entries fails the collector.
    let mut err: Option<CollectError> = None;
    for name in names {
        let dir = class.join(&name);
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        let meta = if meta.file_type().is_symlink() {
            match std::fs::metadata(&dir) {
                Ok(m) => {
                    err = None;
                    m
                }
                Err(e) => {
                    err = Some(CollectError::at(&dir, e));
                    continue;
                }
            }
        } else {
            meta
        };
        if !meta.is_dir() {
            continue;
        }
        if let Err(e) = chip(&dir, out) {
            err = Some(e);
        }
    }
    err.map_or(Ok(()), Err)
}

fn chip(dir: &Path, out: &mut Out) -> Result {
    let chip = chip_label(dir)?;
    let mut sensors = Sensors::new();
    scan(dir, &mut sensors)?;
    let device = dir.join("device");
    if std::fs::metadata(&device).is_ok() {
        scan(&device, &mut sensors)?;
    }
    if let Ok(name) = read::string(&dir.join("name")) {
        let name = clean(&name);
        if !name.is_empty() {
            out.gauge(
                "node_hwmon_chip_names",
                "Annotation metric for human-readable chip names",
                &[("chip", &chip), ("chip_name", &name)],
                1.0,
            );
        }
    }
    for (sensor, props) in &sensors {
        let Some((typ, _, _)) = explode(sensor) else { continue };
        let labels = [("chip", chip.as_str()), ("sensor", sensor.as_str())];
        if let Some(label) = props.get("label") {
            out.gauge(
                "node_hwmon_sensor_label",
                "Label for given chip and sensor",
                &[("chip", &chip), ("sensor", sensor), ("label", label)],
                1.0,
            );
        }
        let bare = props.get("").map(String::as_str);
        match typ {
            "beep_enable" => {
                out.gauge(
                    "node_hwmon_beep_enabled",
                    "Hardware beep enabled",
                    &labels,
                    f64::from(u8::from(bare == Some("1"))),
                );
                continue;
            }
            "vrm" => {
                if let Some(v) = bare.and_then(|b| b.parse::<f64>().ok()) {
                    out.gauge(
                        "node_hwmon_voltage_regulator_version",
                        "Hardware voltage regulator",
                        &labels,
                        v,
                    );
                }
                continue;
            }
            "update_interval" => {
                if let Some(v) = bare.and_then(|b| b.parse::<f64>().ok()) {
                    out.gauge(
                        "node_hwmon_update_interval_seconds",
                        "Hardware monitor update interval",
                        &labels,
                        v * 0.001,
                    );
                }
                continue;
            }
            _ => {}
        }
        for (element, value) in props {
            if element == "label" {
                continue;
            }
            let mut name = format!("node_hwmon_{typ}");
            if element == "input" {
                // `temp1_input` is the value itself, unless a bare `temp1` also exists.
                if bare.is_some() {
                    name.push_str("_input");
                }
            } else if !element.is_empty() {
                name.push('_');
                name.push_str(&clean(element));
            }
            let Ok(v) = value.parse::<f64>() else { continue };
            let e = element.as_str();
            let (suffix, help, value, counter) = match (typ, e) {
                (_, "fault" | "alarm") => ("", format!("Hardware sensor {e} status ({typ})"), v, false),
                (_, "beep") => (
                    "_enabled",
                    "Hardware monitor sensor has beeping enabled".into(),
                    v,
                    false,
                ),
                ("in" | "cpu", _) => (
                    "_volts",
                    format!("Hardware monitor for voltage ({e})"),
                    v * 0.001,
                    false,
                ),
                ("temp", _) if e != "type" => {
                    let e = if e.is_empty() { "input" } else { e };
                    (
                        "_celsius",
                        format!("Hardware monitor for temperature ({e})"),
                        v * 0.001,
                        false,
                    )
                }
                ("curr", _) => ("_amps", format!("Hardware monitor for current ({e})"), v * 0.001, false),
                ("energy", _) => (
                    "_joule_total",
                    format!("Hardware monitor for joules used so far ({e})"),
                    v / 1_000_000.0,
                    true,
                ),
                ("power", "accuracy") => (
                    "",
                    "Hardware monitor power meter accuracy, as a ratio".into(),
                    v / 1_000_000.0,
                    false,
                ),
                ("power", "average_interval" | "average_interval_min" | "average_interval_max") => (
                    "_seconds",
                    format!("Hardware monitor power usage update interval ({e})"),
                    v * 0.001,
                    false,
                ),
                ("power", _) => (
                    "_watt",
                    format!("Hardware monitor for power usage in watts ({e})"),
                    v / 1_000_000.0,
                    false,
                ),
                ("humidity", _) => (
                    "",
                    format!(
                        "Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the humidity as a percentage) ({e})"
                    ),
                    v / 1_000_000.0,
                    false,
                ),
                ("fan", "input" | "min" | "max" | "target") => (
                    "_rpm",
                    format!("Hardware monitor for fan revolutions per minute ({e})"),
                    v,
                    false,
                ),
                _ => ("", format!("Hardware monitor {typ} element {e}"), v, false),
            };
            name.push_str(suffix);
            if counter {
                out.counter(&name, &help, &labels, value);
            } else {
                out.gauge(&name, &help, &labels, value);
            }
        }
    }
    Ok(())
}

/// Reads every sensor file of `dir` into `sensors` (a later directory's values win).
fn scan(dir: &Path, sensors: &mut Sensors) -> Result {
    let names = read::dir_names(dir).at(dir)?;
    for file in names {
        let Some((typ, id, prop)) = explode(&file) else {
            continue;
        };
        if !SENSOR_TYPES.contains(&typ) {
            continue;
        }
        // One read of at most 128 bytes: some drivers answer EAGAIN forever, and a
        // file that cannot be read is skipped.
        let mut buf = [0u8; 128];
        let Ok(n) = std::fs::File::open(dir.join(&file)).and_then(|mut f| f.read(&mut buf)) else {
            continue;
        };
        let value = String::from_utf8_lossy(&buf[..n]).trim_matches('\n').to_owned();
        sensors
            .entry(format!("{typ}{id}"))
            .or_default()
            .insert(prop.to_owned(), value);
    }
    Ok(())
}

/// `temp1_crit_hyst` → (`temp`, 1, `crit_hyst`); `pwm1` → (`pwm`, 1, ``);
/// `beep_enable` → (`beep_enable`, 0, ``). The type is everything before the first
/// digit, so `temp_crit` is of type `temp_crit`, which no sensor type is.
fn explode(file: &str) -> Option<(&str, u64, &str)> {
    let digits_at = file.find(|c: char| c.is_ascii_digit()).unwrap_or(file.len());
    if digits_at == 0 {
        return None;
    }
    let (typ, rest) = file.split_at(digits_at);
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (id, rest) = rest.split_at(digits);
    let id = if id.is_empty() { 0 } else { id.parse().ok()? };
    let prop = match rest.strip_prefix('_') {
        Some(p) if !p.is_empty() => p,
        None if rest.is_empty() => "",
        _ => {
            // No digits: the greedy type swallowed the underscore too (`beep_enable`).
            if digits == 0 {
                return Some((file, 0, ""));
            }
            return None;
        }
    };
    if digits == 0 {
        // Without an id the type runs to the end of the name: `update_interval` is one
        // type, not `update` with property `interval`.
        return Some((file, 0, ""));
    }
    Some((typ, id, prop))
}

/// node_exporter's `cleanMetricName`: lower case, runs outside `[a-z0-9:_]` become `_`
/// one by one, leading and trailing `_` trimmed.
fn clean(s: &str) -> String {
    let replaced: String = s
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    replaced.trim_matches('_').to_owned()
}

/// The `chip` label: `<bus>_<device>` of the resolved device path, else the cleaned
/// `name` file, else the hwmon directory's own name.
fn chip_label(dir: &Path) -> Result<String> {
    if let Ok(device) = std::fs::canonicalize(dir.join("device")) {
        let name = device
            .file_name()
            .map(|n| clean(&n.to_string_lossy()))
            .unwrap_or_default();
        let typ = device
            .parent()
            .and_then(Path::file_name)
            .map(|n| clean(&n.to_string_lossy()))
            .unwrap_or_default();
        if !typ.is_empty() && !name.is_empty() {
            return Ok(format!("{typ}_{name}"));
        }
        if !name.is_empty() {
            return Ok(name);
        }
    }
    if let Ok(name) = read::string(&dir.join("name")) {
        let name = clean(&name);
        if !name.is_empty() {
            return Ok(name);
        }
    }
    let real = std::fs::canonicalize(dir).at(dir)?;
    let name = real
        .file_name()
        .map(|n| clean(&n.to_string_lossy()))
        .unwrap_or_default();
    if name.is_empty() {
        return Err(CollectError::at(dir, "could not derive a monitoring name"));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensor_file_names() {
        assert_eq!(explode("temp1_crit_hyst"), Some(("temp", 1, "crit_hyst")));
        assert_eq!(explode("pwm1"), Some(("pwm", 1, "")));
        assert_eq!(explode("temp01_max"), Some(("temp", 1, "max")));
        assert_eq!(explode("beep_enable"), Some(("beep_enable", 0, "")));
        assert_eq!(explode("update_interval"), Some(("update_interval", 0, "")));
        assert_eq!(explode("in0_input"), Some(("in", 0, "input")));
        assert_eq!(explode("fan1_"), None);
        assert_eq!(explode("1abc"), None);
        assert_eq!(clean("Package id 0"), "package_id_0");
        assert_eq!(clean("  \n"), "");
    }
}
