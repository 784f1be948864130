//! OTLP metrics into Prometheus series, named as Prometheus 3's OTLP receiver
//! names them by default (`UnderscoreEscapingWithSuffixes`: unit and `_total`
//! suffixes, attribute names sanitised), with `job`/`instance` from the resource
//! and a `target_info` series for its other attributes.
//!
//! What cannot be stored is counted as rejected with a reason, for the
//! response's `partial_success`, and the rest is written: delta temporality
//! (Sextant keeps cumulative series only), exponential histograms (no native
//! histograms in the store), and names that normalise to nothing.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use sextant_model::{Labels, MetricMetadata, MetricType, stale_nan};

use crate::any_value_string;

/// Series, samples and metadata from one request, and what was refused.
#[derive(Debug, Default)]
pub struct Translated {
    /// Series with their samples (ms timestamps, in order).
    pub series: Vec<(Labels, Vec<(i64, f64)>)>,
    /// Family metadata.
    pub metadata: Vec<(String, MetricMetadata)>,
    /// Data points refused.
    pub rejected: i64,
    /// Why (distinct reasons joined by `; `).
    pub reasons: Vec<String>,
}

const UNITS: &[(&str, &str)] = &[
    ("d", "days"),
    ("h", "hours"),
    ("min", "minutes"),
    ("s", "seconds"),
    ("ms", "milliseconds"),
    ("us", "microseconds"),
    ("ns", "nanoseconds"),
    ("By", "bytes"),
    ("KiBy", "kibibytes"),
    ("MiBy", "mebibytes"),
    ("GiBy", "gibibytes"),
    ("TiBy", "tibibytes"),
    ("KBy", "kilobytes"),
    ("MBy", "megabytes"),
    ("GBy", "gigabytes"),
    ("TBy", "terabytes"),
    ("m", "meters"),
    ("V", "volts"),
    ("A", "amperes"),
    ("J", "joules"),
    ("W", "watts"),
    ("g", "grams"),
    ("Cel", "celsius"),
    ("Hz", "hertz"),
    ("1", ""),
    ("%", "percent"),
];

const PER_UNITS: &[(&str, &str)] = &[
    ("s", "second"),
    ("m", "minute"),
    ("h", "hour"),
    ("d", "day"),
    ("w", "week"),
    ("mo", "month"),
    ("y", "year"),
];

fn clean_unit(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() || c == ':' { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    out.strip_prefix('_').map(str::to_owned).unwrap_or(out)
}

/// The kind of an OTLP metric, as the name translation sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Gauge.
    Gauge,
    /// Monotonic sum.
    Counter,
    /// Non-monotonic sum.
    UpDown,
    /// Histogram or summary.
    Distribution,
}

/// The Prometheus family name of an OTLP metric (Prometheus 3's default
/// translation), or `None` when it normalises to nothing.
pub fn metric_name(name: &str, unit: &str, kind: Kind) -> Option<String> {
    let mut tokens: Vec<String> = name
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let (main, per) = match unit.split_once('/') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (unit.trim(), ""),
    };
    let mut main_s = String::new();
    if !main.is_empty() && !main.contains(['{', '}']) {
        main_s = clean_unit(UNITS.iter().find(|(k, _)| *k == main).map_or(main, |(_, v)| v));
    }
    let mut per_s = String::new();
    if !per.is_empty() && !per.contains(['{', '}']) {
        per_s = format!(
            "per_{}",
            clean_unit(PER_UNITS.iter().find(|(k, _)| *k == per).map_or(per, |(_, v)| v))
        );
    }
    if tokens.contains(&main_s) {
        main_s.clear();
    }
    if per_s == "per_" {
        per_s.clear();
    } else {
        let trimmed = per_s.strip_suffix('_').unwrap_or(&per_s).to_owned();
        per_s = if tokens.contains(&trimmed) {
            String::new()
        } else {
            trimmed
        };
    }
    if !per_s.is_empty() {
        main_s = main_s.strip_suffix('_').unwrap_or(&main_s).to_owned();
    }
    if !main_s.is_empty() {
        tokens.push(main_s);
    }
    if !per_s.is_empty() {
        tokens.push(per_s);
    }
    if kind == Kind::Counter {
        tokens.retain(|t| t != "total");
        tokens.push("total".into());
    }
    if unit == "1" && kind == Kind::Gauge {
        tokens.retain(|t| t != "ratio");
        tokens.push("ratio".into());
    }
    let mut out = tokens.join("_");
    if out.is_empty() {
        return None;
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    Some(out)
}

/// A label name as Prometheus 3 sanitises attribute keys by default.
pub fn label_name(key: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let mut out: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if out.starts_with('_') && !out.starts_with("__") {
        out.insert_str(0, "key");
    }
    if out.chars().all(|c| c == '_') {
        return None;
    }
    Some(out)
}

/// Attributes as labels: sorted by original key, colliding names joined with `;`.
fn attribute_labels(attrs: &[KeyValue]) -> BTreeMap<String, String> {
    let mut sorted: Vec<&KeyValue> = attrs.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for kv in sorted {
        let Some(name) = label_name(&kv.key) else { continue };
        if name == "__name__" {
            continue;
        }
        let v = kv.value.as_ref().map(any_value_string).unwrap_or_default();
        out.entry(name)
            .and_modify(|e| {
                e.push(';');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    out
}

fn go_float(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

struct Builder {
    series: BTreeMap<Labels, Vec<(i64, f64)>>,
}

impl Builder {
    fn add(&mut self, base: &BTreeMap<String, String>, name: &str, extra: Option<(&str, String)>, t: i64, v: f64) {
        let mut pairs: Vec<(&str, &str)> = base.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        pairs.retain(|(k, _)| extra.as_ref().is_none_or(|(e, _)| e != k));
        pairs.push(("__name__", name));
        let extra_owned;
        if let Some((k, val)) = &extra {
            extra_owned = val.clone();
            pairs.push((k, &extra_owned));
        }
        if let Ok(l) = Labels::from_pairs(pairs) {
            self.series.entry(l).or_default().push((t, v));
        }
    }
}

/// Translates a request.
pub fn translate(req: &ExportMetricsServiceRequest) -> Translated {
    let mut out = Translated::default();
    let mut b = Builder {
        series: BTreeMap::new(),
    };
    let mut reasons: Vec<String> = Vec::new();
    let mut reject = |out: &mut Translated, n: usize, why: String| {
        out.rejected += n as i64;
        if !reasons.contains(&why) {
            reasons.push(why);
        }
    };
    for rm in &req.resource_metrics {
        let attrs = rm.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or(&[]);
        let get = |k: &str| {
            attrs
                .iter()
                .find(|kv| kv.key == k)
                .map(|kv| kv.value.as_ref().map(any_value_string).unwrap_or_default())
        };
        let job = match (get("service.namespace"), get("service.name")) {
            (Some(ns), Some(n)) => Some(format!("{ns}/{n}")),
            (None, Some(n)) => Some(n),
            _ => None,
        };
        let instance = get("service.instance.id");
        let mut latest: Option<i64> = None;
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let Some(data) = &m.data else {
                    reject(&mut out, 0, format!("metric {:?} has no data", m.name));
                    continue;
                };
                let kind = match data {
                    metric::Data::Gauge(_) => Kind::Gauge,
                    metric::Data::Sum(s) if s.is_monotonic => Kind::Counter,
                    metric::Data::Sum(_) => Kind::UpDown,
                    _ => Kind::Distribution,
                };
                let Some(family) = metric_name(&m.name, &m.unit, kind) else {
                    let n = points(data);
                    reject(
                        &mut out,
                        n,
                        format!("normalization for metric {:?} resulted in empty name", m.name),
                    );
                    continue;
                };
                let with_resource = |attrs: &[KeyValue]| {
                    let mut l = attribute_labels(attrs);
                    if let Some(j) = &job {
                        l.insert("job".into(), j.clone());
                    }
                    if let Some(i) = &instance {
                        l.insert("instance".into(), i.clone());
                    }
                    l.retain(|_, v| !v.is_empty());
                    l
                };
                let unit = {
                    let (main, per) = m.unit.split_once('/').unwrap_or((&m.unit, ""));
                    let main = UNITS.iter().find(|(k, _)| *k == main).map_or(main, |(_, v)| v);
                    let per = PER_UNITS.iter().find(|(k, _)| *k == per).map_or(per, |(_, v)| v);
                    if main.contains(['{', '}']) {
                        String::new()
                    } else if per.is_empty() {
                        clean_unit(main)
                    } else {
                        clean_unit(&format!("{main}_per_{per}"))
                    }
                };
                let mut meta = |t: MetricType| {
                    out.metadata.push((
                        family.clone(),
                        MetricMetadata {
                            metric_type: t,
                            help: m.description.clone(),
                            unit: unit.clone(),
                        },
                    ))
                };
                let stale = |flags: u32| flags & 1 == 1;
                let ms = |ns: u64| (ns / 1_000_000) as i64;
                match data {
                    metric::Data::Gauge(g) => {
                        meta(MetricType::Gauge);
                        for p in &g.data_points {
                            let v = if stale(p.flags) { stale_nan() } else { number(p.value) };
                            latest = latest.max(Some(ms(p.time_unix_nano)));
                            b.add(&with_resource(&p.attributes), &family, None, ms(p.time_unix_nano), v);
                        }
                    }
                    metric::Data::Sum(s) => {
                        if s.aggregation_temporality != 2 {
                            reject(
                                &mut out,
                                s.data_points.len(),
                                format!(
                                    "metric {:?}: only cumulative sums are stored (temporality {}); configure the exporter for cumulative temporality",
                                    m.name, s.aggregation_temporality
                                ),
                            );
                            continue;
                        }
                        meta(if s.is_monotonic {
                            MetricType::Counter
                        } else {
                            MetricType::Gauge
                        });
                        for p in &s.data_points {
                            let v = if stale(p.flags) { stale_nan() } else { number(p.value) };
                            latest = latest.max(Some(ms(p.time_unix_nano)));
                            b.add(&with_resource(&p.attributes), &family, None, ms(p.time_unix_nano), v);
                        }
                    }
                    metric::Data::Histogram(h) => {
                        if h.aggregation_temporality != 2 {
                            reject(
                                &mut out,
                                h.data_points.len(),
                                format!(
                                    "metric {:?}: only cumulative histograms are stored (temporality {}); configure the exporter for cumulative temporality",
                                    m.name, h.aggregation_temporality
                                ),
                            );
                            continue;
                        }
                        meta(MetricType::Histogram);
                        for p in &h.data_points {
                            let t = ms(p.time_unix_nano);
                            latest = latest.max(Some(t));
                            let l = with_resource(&p.attributes);
                            let st = stale(p.flags);
                            let val = |v: f64| if st { stale_nan() } else { v };
                            if let Some(sum) = p.sum {
                                b.add(&l, &format!("{family}_sum"), None, t, val(sum));
                            }
                            b.add(&l, &format!("{family}_count"), None, t, val(p.count as f64));
                            let mut cum = 0u64;
                            for (i, bound) in p.explicit_bounds.iter().enumerate() {
                                let Some(c) = p.bucket_counts.get(i) else { break };
                                cum += c;
                                b.add(
                                    &l,
                                    &format!("{family}_bucket"),
                                    Some(("le", go_float(*bound))),
                                    t,
                                    val(cum as f64),
                                );
                            }
                            b.add(
                                &l,
                                &format!("{family}_bucket"),
                                Some(("le", "+Inf".into())),
                                t,
                                val(p.count as f64),
                            );
                        }
                    }
                    metric::Data::Summary(s) => {
                        meta(MetricType::Summary);
                        for p in &s.data_points {
                            let t = ms(p.time_unix_nano);
                            latest = latest.max(Some(t));
                            let l = with_resource(&p.attributes);
                            let st = stale(p.flags);
                            let val = |v: f64| if st { stale_nan() } else { v };
                            b.add(&l, &format!("{family}_sum"), None, t, val(p.sum));
                            b.add(&l, &format!("{family}_count"), None, t, val(p.count as f64));
                            for q in &p.quantile_values {
                                b.add(&l, &family, Some(("quantile", go_float(q.quantile))), t, val(q.value));
                            }
                        }
                    }
                    metric::Data::ExponentialHistogram(h) => {
                        reject(
                            &mut out,
                            h.data_points.len(),
                            format!(
                                "metric {:?}: exponential histograms are not stored (no native histograms); configure the exporter's histogram aggregation as explicit buckets",
                                m.name
                            ),
                        );
                    }
                }
            }
        }
        // target_info: the resource's other attributes, once per resource.
        let others: Vec<KeyValue> = attrs
            .iter()
            .filter(|kv| {
                !matches!(
                    kv.key.as_str(),
                    "service.name" | "service.namespace" | "service.instance.id"
                )
            })
            .cloned()
            .collect();
        if let (Some(t), false, true) = (latest, others.is_empty(), job.is_some() || instance.is_some()) {
            let mut l = attribute_labels(&others);
            if let Some(j) = &job {
                l.insert("job".into(), j.clone());
            }
            if let Some(i) = &instance {
                l.insert("instance".into(), i.clone());
            }
            l.retain(|_, v| !v.is_empty());
            b.add(&l, "target_info", None, t, 1.0);
            out.metadata.push((
                "target_info".into(),
                MetricMetadata {
                    metric_type: MetricType::Gauge,
                    help: "Target metadata".into(),
                    unit: String::new(),
                },
            ));
        }
    }
    out.series = b
        .series
        .into_iter()
        .map(|(l, mut s)| {
            s.sort_by_key(|(t, _)| *t);
            s.dedup_by_key(|(t, _)| *t);
            (l, s)
        })
        .collect();
    out.reasons = reasons;
    out
}

fn number(v: Option<number_data_point::Value>) -> f64 {
    match v {
        Some(number_data_point::Value::AsDouble(d)) => d,
        Some(number_data_point::Value::AsInt(i)) => i as f64,
        None => 0.0,
    }
}

fn points(d: &metric::Data) -> usize {
    match d {
        metric::Data::Gauge(g) => g.data_points.len(),
        metric::Data::Sum(s) => s.data_points.len(),
        metric::Data::Histogram(h) => h.data_points.len(),
        metric::Data::ExponentialHistogram(h) => h.data_points.len(),
        metric::Data::Summary(s) => s.data_points.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_prometheus_3_translates_them() {
        let cases = [
            (
                "http.server.request.duration",
                "s",
                Kind::Distribution,
                "http_server_request_duration_seconds",
            ),
            (
                "http.server.requests",
                "{request}",
                Kind::Counter,
                "http_server_requests_total",
            ),
            ("process.cpu.time", "s", Kind::Counter, "process_cpu_time_seconds_total"),
            ("system.memory.usage", "By", Kind::UpDown, "system_memory_usage_bytes"),
            (
                "system.cpu.utilization",
                "1",
                Kind::Gauge,
                "system_cpu_utilization_ratio",
            ),
            ("cache.hits", "1", Kind::UpDown, "cache_hits"),
            ("requests", "1", Kind::Counter, "requests_total"),
            ("network.io", "By/s", Kind::Gauge, "network_io_bytes_per_second"),
            ("requests", "1/s", Kind::Gauge, "requests_per_second"),
            (
                "requests_per_second",
                "1/s",
                Kind::Gauge,
                "requests_per_second_per_second",
            ),
            ("jvm.memory.used", "MiBy", Kind::Gauge, "jvm_memory_used_mebibytes"),
            ("temperature", "Cel", Kind::Gauge, "temperature_celsius"),
            ("utilization", "%", Kind::Gauge, "utilization_percent"),
            ("data.rate", "KiBy/min", Kind::Gauge, "data_rate_kibibytes_per_min"),
            ("queue.size", "{item}", Kind::Gauge, "queue_size"),
            ("cpu_usage_ratio", "1", Kind::Gauge, "cpu_usage_ratio"),
            ("response_time_seconds", "s", Kind::Gauge, "response_time_seconds"),
            (
                "otelcol_process_cpu_seconds",
                "s",
                Kind::Counter,
                "otelcol_process_cpu_seconds_total",
            ),
            ("total_foo", "", Kind::Counter, "foo_total"),
            ("seconds_total_thing", "s", Kind::Counter, "seconds_thing_total"),
            ("3xx.responses", "", Kind::Counter, "_3xx_responses_total"),
            ("foo..bar__baz", "", Kind::Gauge, "foo_bar_baz"),
            (
                "custom_metric",
                "unit@with#special/chars",
                Kind::Gauge,
                "custom_metric_unit_with_special_per_chars",
            ),
        ];
        for (name, unit, kind, want) in cases {
            assert_eq!(metric_name(name, unit, kind).as_deref(), Some(want), "{name} {unit}");
        }
        assert_eq!(metric_name("@#$%", "", Kind::Gauge), None);
        assert_eq!(label_name("123abc").as_deref(), Some("key_123abc"));
        assert_eq!(label_name("_private").as_deref(), Some("key_private"));
        assert_eq!(label_name("a..b").as_deref(), Some("a__b"));
        assert_eq!(label_name("__reserved.x__").as_deref(), Some("__reserved_x__"));
    }
}
