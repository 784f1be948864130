//! OTLP: requests decoded from protobuf or OTLP/JSON into `opentelemetry-proto`'s
//! types, and translated for Sextant's stores: log records into log streams (as
//! Loki's OTLP endpoint maps them), metrics into Prometheus series (as
//! Prometheus' OTLP receiver names them). The HTTP and gRPC endpoints live in
//! `sextant-api`; this crate does no I/O.

pub mod json;
pub mod logs;
pub mod metrics;

pub use opentelemetry_proto::tonic as proto;

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};

/// An attribute value as text, as the Collector's `AsString` writes it: strings
/// as they are, numbers in decimal, bytes in base64, arrays and maps as JSON.
pub fn any_value_string(v: &AnyValue) -> String {
    match &v.value {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => json_number(*d),
        Some(any_value::Value::BytesValue(b)) => base64::engine::general_purpose::STANDARD.encode(b),
        Some(other) => to_json(&AnyValue {
            value: Some(other.clone()),
        })
        .to_string(),
    }
}

fn json_number(d: f64) -> String {
    if d.is_nan() || d.is_infinite() {
        return format!(
            "json: unsupported value: {}",
            if d.is_nan() { "NaN".into() } else { d.to_string() }
        );
    }
    serde_json::Number::from_f64(d)
        .map(|n| n.to_string())
        .unwrap_or_default()
}

fn to_json(v: &AnyValue) -> serde_json::Value {
    match &v.value {
        None => serde_json::Value::Null,
        Some(any_value::Value::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => serde_json::Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Some(any_value::Value::BytesValue(b)) => {
            serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(any_value::Value::ArrayValue(a)) => serde_json::Value::Array(a.values.iter().map(to_json).collect()),
        Some(any_value::Value::KvlistValue(l)) => {
            let mut m: Vec<(&String, serde_json::Value)> = l
                .values
                .iter()
                .map(|kv| {
                    (
                        &kv.key,
                        kv.value.as_ref().map(to_json).unwrap_or(serde_json::Value::Null),
                    )
                })
                .collect();
            m.sort_by(|a, b| a.0.cmp(b.0));
            serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Some(any_value::Value::StringValueStrindex(i)) => serde_json::Value::from(*i),
    }
}
