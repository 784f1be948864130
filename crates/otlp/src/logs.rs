//! OTLP log records into log streams, mapped as Loki 3's OTLP endpoint maps them:
//! the usual identifying resource attributes become stream labels (`service_name`,
//! `k8s_*`, ...), everything else is structured metadata, and severity, trace and
//! span ids, flags and the observed time keep their own metadata fields.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use sextant_logs::record::normalize_name;
use sextant_logs::{Entry, PushStream};
use sextant_model::Labels;

use crate::any_value_string;

/// Resource attributes that become stream labels (Loki's
/// `default_resource_attributes_as_index_labels`).
pub const INDEX_LABEL_ATTRIBUTES: &[&str] = &[
    "service.name",
    "service.namespace",
    "service.instance.id",
    "deployment.environment",
    "deployment.environment.name",
    "cloud.region",
    "cloud.availability_zone",
    "k8s.cluster.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
    "container.name",
    "k8s.replicaset.name",
    "k8s.deployment.name",
    "k8s.statefulset.name",
    "k8s.daemonset.name",
    "k8s.cronjob.name",
    "k8s.job.name",
];

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Attributes as name/value pairs, nested maps flattened with `_` (Loki's
/// `attributeToLabels`).
fn flatten(prefix: &str, attrs: &[KeyValue], out: &mut Vec<(String, String)>) {
    for kv in attrs {
        let key = if prefix.is_empty() {
            kv.key.clone()
        } else {
            format!("{prefix}_{}", kv.key)
        };
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::KvlistValue(l)) => flatten(&key, &l.values, out),
            _ => out.push((key, kv.value.as_ref().map(any_value_string).unwrap_or_default())),
        }
    }
}

/// The line of a record: its body as a string (maps and arrays as JSON, bytes as
/// base64).
fn body_line(body: Option<&AnyValue>) -> String {
    body.map(any_value_string).unwrap_or_default()
}

/// Converts a request into streams. `now_ns` stands in for records with neither
/// timestamp.
pub fn to_streams(req: &ExportLogsServiceRequest, now_ns: i64) -> Vec<PushStream> {
    let mut streams: BTreeMap<Labels, Vec<Entry>> = BTreeMap::new();
    for rl in &req.resource_logs {
        let attrs = rl.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or(&[]);
        let mut label_pairs: Vec<(String, String)> = Vec::new();
        let mut resource_meta: Vec<(String, String)> = Vec::new();
        for kv in attrs {
            if INDEX_LABEL_ATTRIBUTES.contains(&kv.key.as_str()) {
                let v = kv.value.as_ref().map(any_value_string).unwrap_or_default();
                if !v.is_empty() {
                    label_pairs.push((normalize_name(&kv.key), v));
                }
            } else {
                flatten("", std::slice::from_ref(kv), &mut resource_meta);
            }
        }
        let labels = Labels::from_pairs(label_pairs).unwrap_or_default();
        for sl in &rl.scope_logs {
            let mut scope_meta: Vec<(String, String)> = Vec::new();
            if let Some(s) = &sl.scope {
                flatten("", &s.attributes, &mut scope_meta);
                if !s.name.is_empty() {
                    scope_meta.push(("scope_name".into(), s.name.clone()));
                }
                if !s.version.is_empty() {
                    scope_meta.push(("scope_version".into(), s.version.clone()));
                }
                if s.dropped_attributes_count != 0 {
                    scope_meta.push((
                        "scope_dropped_attributes_count".into(),
                        s.dropped_attributes_count.to_string(),
                    ));
                }
            }
            for r in &sl.log_records {
                let mut meta = resource_meta.clone();
                meta.extend(scope_meta.iter().cloned());
                flatten("", &r.attributes, &mut meta);
                let ts = if r.time_unix_nano != 0 {
                    r.time_unix_nano as i64
                } else if r.observed_time_unix_nano != 0 {
                    r.observed_time_unix_nano as i64
                } else {
                    now_ns
                };
                if r.time_unix_nano != 0 && r.observed_time_unix_nano != 0 {
                    meta.push(("observed_timestamp".into(), r.observed_time_unix_nano.to_string()));
                }
                if r.severity_number != 0 {
                    meta.push(("severity_number".into(), r.severity_number.to_string()));
                }
                if !r.severity_text.is_empty() {
                    meta.push(("severity_text".into(), r.severity_text.clone()));
                }
                if r.dropped_attributes_count != 0 {
                    meta.push((
                        "dropped_attributes_count".into(),
                        r.dropped_attributes_count.to_string(),
                    ));
                }
                if r.flags != 0 {
                    meta.push(("flags".into(), r.flags.to_string()));
                }
                if !r.trace_id.is_empty() {
                    meta.push(("trace_id".into(), hex(&r.trace_id)));
                }
                if !r.span_id.is_empty() {
                    meta.push(("span_id".into(), hex(&r.span_id)));
                }
                if !r.event_name.is_empty() {
                    meta.push(("event_name".into(), r.event_name.clone()));
                }
                meta.retain(|(_, v)| !v.is_empty());
                streams.entry(labels.clone()).or_default().push(Entry {
                    ts,
                    line: body_line(r.body.as_ref()),
                    metadata: meta,
                });
            }
        }
    }
    streams
        .into_iter()
        .map(|(labels, entries)| PushStream { labels, entries })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn mapped_as_loki_maps_otlp() {
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", "checkout"),
                        kv("k8s.pod.name", "p-1"),
                        kv("host.name", "n1"),
                    ],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(opentelemetry_proto::tonic::common::v1::InstrumentationScope {
                        name: "lib".into(),
                        ..Default::default()
                    }),
                    log_records: vec![LogRecord {
                        time_unix_nano: 10,
                        observed_time_unix_nano: 11,
                        severity_number: 17,
                        severity_text: "ERROR".into(),
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("boom".into())),
                        }),
                        attributes: vec![kv("http.method", "GET")],
                        trace_id: vec![0xab; 16],
                        span_id: vec![0xcd; 8],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let s = to_streams(&req, 0);
        assert_eq!(s.len(), 1);
        assert_eq!(
            s[0].labels.to_string(),
            r#"{k8s_pod_name="p-1", service_name="checkout"}"#
        );
        let e = &s[0].entries[0];
        assert_eq!((e.ts, e.line.as_str()), (10, "boom"));
        let meta: Vec<(&str, &str)> = e.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            meta,
            vec![
                ("host.name", "n1"),
                ("scope_name", "lib"),
                ("http.method", "GET"),
                ("observed_timestamp", "11"),
                ("severity_number", "17"),
                ("severity_text", "ERROR"),
                ("trace_id", "abababababababababababababababab"),
                ("span_id", "cdcdcdcdcdcdcdcd"),
            ]
        );
    }
}
