//! OTLP/JSON into the protobuf types: the proto3 JSON mapping with OTLP's rules
//! (hex trace and span ids, 64-bit integers as strings or numbers, enums as
//! integers, unknown fields ignored). Keys are lowerCamelCase; the proto's
//! snake_case names are accepted too, as the Collector accepts them.
//!
//! Written here rather than taken from `opentelemetry-proto`'s serde support,
//! which drops data on inner errors and refuses valid inputs.

use base64::Engine as _;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint, exemplar,
    exponential_histogram_data_point, metric, number_data_point, summary_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use serde_json::{Map, Value};

type Obj = Map<String, Value>;

/// A field by its JSON (camelCase) or proto (snake_case) name; `null` is absent.
fn field<'a>(o: &'a Obj, camel: &str) -> Option<&'a Value> {
    let v = o.get(camel).or_else(|| o.get(&snake(camel)))?;
    (!v.is_null()).then_some(v)
}

fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn obj<'a>(v: &'a Value, what: &str) -> Result<&'a Obj, String> {
    v.as_object().ok_or_else(|| format!("{what}: expected an object"))
}

fn list<'a>(o: &'a Obj, key: &str) -> Result<&'a [Value], String> {
    match field(o, key) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(format!("{key}: expected an array")),
    }
}

fn string(o: &Obj, key: &str) -> Result<String, String> {
    match field(o, key) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("{key}: expected a string")),
    }
}

fn u64_of(v: &Value, key: &str) -> Result<u64, String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64))
            .ok_or_else(|| format!("{key}: {n} is not an unsigned 64-bit integer")),
        Value::String(s) => s
            .parse()
            .map_err(|_| format!("{key}: {s:?} is not an unsigned 64-bit integer")),
        _ => Err(format!("{key}: expected an integer")),
    }
}

fn u64_field(o: &Obj, key: &str) -> Result<u64, String> {
    field(o, key).map_or(Ok(0), |v| u64_of(v, key))
}

fn i64_of(v: &Value, key: &str) -> Result<i64, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(|| format!("{key}: {n} is not a 64-bit integer")),
        Value::String(s) => s.parse().map_err(|_| format!("{key}: {s:?} is not a 64-bit integer")),
        _ => Err(format!("{key}: expected an integer")),
    }
}

fn i32_field(o: &Obj, key: &str) -> Result<i32, String> {
    match field(o, key) {
        None => Ok(0),
        Some(v) => i32::try_from(i64_of(v, key)?).map_err(|_| format!("{key}: out of range")),
    }
}

fn u32_field(o: &Obj, key: &str) -> Result<u32, String> {
    match field(o, key) {
        None => Ok(0),
        Some(v) => u32::try_from(u64_of(v, key)?).map_err(|_| format!("{key}: out of range")),
    }
}

fn f64_of(v: &Value, key: &str) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("{key}: not a number")),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => s.parse().map_err(|_| format!("{key}: {s:?} is not a number")),
        },
        _ => Err(format!("{key}: expected a number")),
    }
}

fn f64_field(o: &Obj, key: &str) -> Result<f64, String> {
    field(o, key).map_or(Ok(0.0), |v| f64_of(v, key))
}

fn opt_f64_field(o: &Obj, key: &str) -> Result<Option<f64>, String> {
    field(o, key).map(|v| f64_of(v, key)).transpose()
}

fn bool_field(o: &Obj, key: &str) -> Result<bool, String> {
    match field(o, key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("{key}: expected a boolean")),
    }
}

/// Trace and span ids: hex, any case.
fn hex_field(o: &Obj, key: &str) -> Result<Vec<u8>, String> {
    let s = string(o, key)?;
    if s.len() % 2 != 0 {
        return Err(format!("{key}: {s:?} is not a hex id"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| format!("{key}: {s:?} is not a hex id")))
        .collect()
}

fn base64_bytes(s: &str, key: &str) -> Result<Vec<u8>, String> {
    let t = s.trim_end_matches('=');
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(t)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t))
        .map_err(|_| format!("{key}: not base64"))
}

fn any_value(v: &Value) -> Result<AnyValue, String> {
    let o = obj(v, "value")?;
    let value = if let Some(s) = field(o, "stringValue") {
        Some(any_value::Value::StringValue(
            s.as_str().ok_or("stringValue: expected a string")?.to_owned(),
        ))
    } else if let Some(b) = field(o, "boolValue") {
        Some(any_value::Value::BoolValue(
            b.as_bool().ok_or("boolValue: expected a boolean")?,
        ))
    } else if let Some(i) = field(o, "intValue") {
        Some(any_value::Value::IntValue(i64_of(i, "intValue")?))
    } else if let Some(d) = field(o, "doubleValue") {
        Some(any_value::Value::DoubleValue(f64_of(d, "doubleValue")?))
    } else if let Some(a) = field(o, "arrayValue") {
        let values = list(obj(a, "arrayValue")?, "values")?
            .iter()
            .map(any_value)
            .collect::<Result<_, _>>()?;
        Some(any_value::Value::ArrayValue(ArrayValue { values }))
    } else if let Some(kv) = field(o, "kvlistValue") {
        Some(any_value::Value::KvlistValue(KeyValueList {
            values: key_values(obj(kv, "kvlistValue")?, "values")?,
        }))
    } else if let Some(b) = field(o, "bytesValue") {
        Some(any_value::Value::BytesValue(base64_bytes(
            b.as_str().ok_or("bytesValue: expected a string")?,
            "bytesValue",
        )?))
    } else {
        None
    };
    Ok(AnyValue { value })
}

fn key_values(o: &Obj, key: &str) -> Result<Vec<KeyValue>, String> {
    list(o, key)?
        .iter()
        .map(|kv| {
            let kv = obj(kv, key)?;
            Ok(KeyValue {
                key: string(kv, "key")?,
                value: field(kv, "value").map(any_value).transpose()?,
                ..Default::default()
            })
        })
        .collect()
}

fn resource(o: &Obj) -> Result<Option<Resource>, String> {
    field(o, "resource")
        .map(|r| {
            let r = obj(r, "resource")?;
            Ok(Resource {
                attributes: key_values(r, "attributes")?,
                dropped_attributes_count: u32_field(r, "droppedAttributesCount")?,
                ..Default::default()
            })
        })
        .transpose()
}

fn scope(o: &Obj) -> Result<Option<InstrumentationScope>, String> {
    field(o, "scope")
        .map(|s| {
            let s = obj(s, "scope")?;
            Ok(InstrumentationScope {
                name: string(s, "name")?,
                version: string(s, "version")?,
                attributes: key_values(s, "attributes")?,
                dropped_attributes_count: u32_field(s, "droppedAttributesCount")?,
            })
        })
        .transpose()
}

fn parse(body: &[u8]) -> Result<Obj, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    match v {
        Value::Object(o) => Ok(o),
        _ => Err("the request is not a JSON object".into()),
    }
}

/// Decodes an OTLP/JSON `ExportLogsServiceRequest`.
pub fn logs_request(body: &[u8]) -> Result<ExportLogsServiceRequest, String> {
    let root = parse(body)?;
    let mut out = ExportLogsServiceRequest::default();
    for rl in list(&root, "resourceLogs")? {
        let rl = obj(rl, "resourceLogs")?;
        let mut scope_logs = Vec::new();
        for sl in list(rl, "scopeLogs")? {
            let sl = obj(sl, "scopeLogs")?;
            let mut log_records = Vec::new();
            for r in list(sl, "logRecords")? {
                let r = obj(r, "logRecords")?;
                log_records.push(LogRecord {
                    time_unix_nano: u64_field(r, "timeUnixNano")?,
                    observed_time_unix_nano: u64_field(r, "observedTimeUnixNano")?,
                    severity_number: i32_field(r, "severityNumber")?,
                    severity_text: string(r, "severityText")?,
                    body: field(r, "body").map(any_value).transpose()?,
                    attributes: key_values(r, "attributes")?,
                    dropped_attributes_count: u32_field(r, "droppedAttributesCount")?,
                    flags: u32_field(r, "flags")?,
                    trace_id: hex_field(r, "traceId")?,
                    span_id: hex_field(r, "spanId")?,
                    event_name: string(r, "eventName")?,
                });
            }
            scope_logs.push(ScopeLogs {
                scope: scope(sl)?,
                log_records,
                schema_url: string(sl, "schemaUrl")?,
            });
        }
        out.resource_logs.push(ResourceLogs {
            resource: resource(rl)?,
            scope_logs,
            schema_url: string(rl, "schemaUrl")?,
        });
    }
    Ok(out)
}

fn exemplars(o: &Obj) -> Result<Vec<Exemplar>, String> {
    list(o, "exemplars")?
        .iter()
        .map(|e| {
            let e = obj(e, "exemplars")?;
            let value = if let Some(d) = field(e, "asDouble") {
                Some(exemplar::Value::AsDouble(f64_of(d, "asDouble")?))
            } else if let Some(i) = field(e, "asInt") {
                Some(exemplar::Value::AsInt(i64_of(i, "asInt")?))
            } else {
                None
            };
            Ok(Exemplar {
                filtered_attributes: key_values(e, "filteredAttributes")?,
                time_unix_nano: u64_field(e, "timeUnixNano")?,
                span_id: hex_field(e, "spanId")?,
                trace_id: hex_field(e, "traceId")?,
                value,
            })
        })
        .collect()
}

fn number_points(o: &Obj) -> Result<Vec<NumberDataPoint>, String> {
    list(o, "dataPoints")?
        .iter()
        .map(|p| {
            let p = obj(p, "dataPoints")?;
            let value = if let Some(d) = field(p, "asDouble") {
                Some(number_data_point::Value::AsDouble(f64_of(d, "asDouble")?))
            } else if let Some(i) = field(p, "asInt") {
                Some(number_data_point::Value::AsInt(i64_of(i, "asInt")?))
            } else {
                None
            };
            Ok(NumberDataPoint {
                attributes: key_values(p, "attributes")?,
                start_time_unix_nano: u64_field(p, "startTimeUnixNano")?,
                time_unix_nano: u64_field(p, "timeUnixNano")?,
                exemplars: exemplars(p)?,
                flags: u32_field(p, "flags")?,
                value,
            })
        })
        .collect()
}

fn u64_list(o: &Obj, key: &str) -> Result<Vec<u64>, String> {
    list(o, key)?.iter().map(|v| u64_of(v, key)).collect()
}

fn f64_list(o: &Obj, key: &str) -> Result<Vec<f64>, String> {
    list(o, key)?.iter().map(|v| f64_of(v, key)).collect()
}

fn histogram_points(o: &Obj) -> Result<Vec<HistogramDataPoint>, String> {
    list(o, "dataPoints")?
        .iter()
        .map(|p| {
            let p = obj(p, "dataPoints")?;
            Ok(HistogramDataPoint {
                attributes: key_values(p, "attributes")?,
                start_time_unix_nano: u64_field(p, "startTimeUnixNano")?,
                time_unix_nano: u64_field(p, "timeUnixNano")?,
                count: u64_field(p, "count")?,
                sum: opt_f64_field(p, "sum")?,
                bucket_counts: u64_list(p, "bucketCounts")?,
                explicit_bounds: f64_list(p, "explicitBounds")?,
                exemplars: exemplars(p)?,
                flags: u32_field(p, "flags")?,
                min: opt_f64_field(p, "min")?,
                max: opt_f64_field(p, "max")?,
            })
        })
        .collect()
}

fn exp_buckets(o: &Obj, key: &str) -> Result<Option<exponential_histogram_data_point::Buckets>, String> {
    field(o, key)
        .map(|b| {
            let b = obj(b, key)?;
            Ok(exponential_histogram_data_point::Buckets {
                offset: i32_field(b, "offset")?,
                bucket_counts: u64_list(b, "bucketCounts")?,
            })
        })
        .transpose()
}

fn exp_histogram_points(o: &Obj) -> Result<Vec<ExponentialHistogramDataPoint>, String> {
    list(o, "dataPoints")?
        .iter()
        .map(|p| {
            let p = obj(p, "dataPoints")?;
            Ok(ExponentialHistogramDataPoint {
                attributes: key_values(p, "attributes")?,
                start_time_unix_nano: u64_field(p, "startTimeUnixNano")?,
                time_unix_nano: u64_field(p, "timeUnixNano")?,
                count: u64_field(p, "count")?,
                sum: opt_f64_field(p, "sum")?,
                scale: i32_field(p, "scale")?,
                zero_count: u64_field(p, "zeroCount")?,
                positive: exp_buckets(p, "positive")?,
                negative: exp_buckets(p, "negative")?,
                flags: u32_field(p, "flags")?,
                exemplars: exemplars(p)?,
                min: opt_f64_field(p, "min")?,
                max: opt_f64_field(p, "max")?,
                zero_threshold: f64_field(p, "zeroThreshold")?,
            })
        })
        .collect()
}

fn summary_points(o: &Obj) -> Result<Vec<SummaryDataPoint>, String> {
    list(o, "dataPoints")?
        .iter()
        .map(|p| {
            let p = obj(p, "dataPoints")?;
            let quantile_values = list(p, "quantileValues")?
                .iter()
                .map(|q| {
                    let q = obj(q, "quantileValues")?;
                    Ok(summary_data_point::ValueAtQuantile {
                        quantile: f64_field(q, "quantile")?,
                        value: f64_field(q, "value")?,
                    })
                })
                .collect::<Result<_, String>>()?;
            Ok(SummaryDataPoint {
                attributes: key_values(p, "attributes")?,
                start_time_unix_nano: u64_field(p, "startTimeUnixNano")?,
                time_unix_nano: u64_field(p, "timeUnixNano")?,
                count: u64_field(p, "count")?,
                sum: f64_field(p, "sum")?,
                quantile_values,
                flags: u32_field(p, "flags")?,
            })
        })
        .collect()
}

/// Decodes an OTLP/JSON `ExportMetricsServiceRequest`.
pub fn metrics_request(body: &[u8]) -> Result<ExportMetricsServiceRequest, String> {
    let root = parse(body)?;
    let mut out = ExportMetricsServiceRequest::default();
    for rm in list(&root, "resourceMetrics")? {
        let rm = obj(rm, "resourceMetrics")?;
        let mut scope_metrics = Vec::new();
        for sm in list(rm, "scopeMetrics")? {
            let sm = obj(sm, "scopeMetrics")?;
            let mut metrics = Vec::new();
            for m in list(sm, "metrics")? {
                let m = obj(m, "metrics")?;
                let data = if let Some(g) = field(m, "gauge") {
                    Some(metric::Data::Gauge(Gauge {
                        data_points: number_points(obj(g, "gauge")?)?,
                    }))
                } else if let Some(s) = field(m, "sum") {
                    let s = obj(s, "sum")?;
                    Some(metric::Data::Sum(Sum {
                        data_points: number_points(s)?,
                        aggregation_temporality: i32_field(s, "aggregationTemporality")?,
                        is_monotonic: bool_field(s, "isMonotonic")?,
                    }))
                } else if let Some(h) = field(m, "histogram") {
                    let h = obj(h, "histogram")?;
                    Some(metric::Data::Histogram(Histogram {
                        data_points: histogram_points(h)?,
                        aggregation_temporality: i32_field(h, "aggregationTemporality")?,
                    }))
                } else if let Some(h) = field(m, "exponentialHistogram") {
                    let h = obj(h, "exponentialHistogram")?;
                    Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                        data_points: exp_histogram_points(h)?,
                        aggregation_temporality: i32_field(h, "aggregationTemporality")?,
                    }))
                } else if let Some(s) = field(m, "summary") {
                    Some(metric::Data::Summary(Summary {
                        data_points: summary_points(obj(s, "summary")?)?,
                    }))
                } else {
                    None
                };
                metrics.push(Metric {
                    name: string(m, "name")?,
                    description: string(m, "description")?,
                    unit: string(m, "unit")?,
                    metadata: key_values(m, "metadata")?,
                    data,
                });
            }
            scope_metrics.push(ScopeMetrics {
                scope: scope(sm)?,
                metrics,
                schema_url: string(sm, "schemaUrl")?,
            });
        }
        out.resource_metrics.push(ResourceMetrics {
            resource: resource(rm)?,
            scope_metrics,
            schema_url: string(rm, "schemaUrl")?,
        });
    }
    Ok(out)
}

/// An enum given as its number or, as the Collector also accepts, its name.
fn enum_field(o: &Obj, key: &str, name_of: fn(i32) -> Option<&'static str>) -> Result<i32, String> {
    match field(o, key) {
        Some(Value::String(s)) if !s.chars().all(|c| c.is_ascii_digit()) => (0..16)
            .find(|i| name_of(*i) == Some(s.as_str()))
            .ok_or_else(|| format!("{key}: unknown value {s:?}")),
        _ => i32_field(o, key),
    }
}

/// Span kinds by number, as the proto names them.
fn span_kind_name(v: i32) -> Option<&'static str> {
    span::SpanKind::try_from(v).ok().map(|k| k.as_str_name())
}

/// Status codes by number, as the proto names them.
fn status_code_name(v: i32) -> Option<&'static str> {
    opentelemetry_proto::tonic::trace::v1::status::StatusCode::try_from(v)
        .ok()
        .map(|c| c.as_str_name())
}

/// Decodes an OTLP/JSON `ExportTraceServiceRequest`.
pub fn traces_request(body: &[u8]) -> Result<ExportTraceServiceRequest, String> {
    let root = parse(body)?;
    let mut out = ExportTraceServiceRequest::default();
    for rs in list(&root, "resourceSpans")? {
        let rs = obj(rs, "resourceSpans")?;
        let mut scope_spans = Vec::new();
        for ss in list(rs, "scopeSpans")? {
            let ss = obj(ss, "scopeSpans")?;
            let mut spans = Vec::new();
            for s in list(ss, "spans")? {
                let s = obj(s, "spans")?;
                let mut events = Vec::new();
                for e in list(s, "events")? {
                    let e = obj(e, "events")?;
                    events.push(span::Event {
                        time_unix_nano: u64_field(e, "timeUnixNano")?,
                        name: string(e, "name")?,
                        attributes: key_values(e, "attributes")?,
                        dropped_attributes_count: u32_field(e, "droppedAttributesCount")?,
                    });
                }
                let mut links = Vec::new();
                for l in list(s, "links")? {
                    let l = obj(l, "links")?;
                    links.push(span::Link {
                        trace_id: hex_field(l, "traceId")?,
                        span_id: hex_field(l, "spanId")?,
                        trace_state: string(l, "traceState")?,
                        attributes: key_values(l, "attributes")?,
                        dropped_attributes_count: u32_field(l, "droppedAttributesCount")?,
                        flags: u32_field(l, "flags")?,
                    });
                }
                let status = field(s, "status")
                    .map(|st| {
                        let st = obj(st, "status")?;
                        Ok::<_, String>(Status {
                            message: string(st, "message")?,
                            code: enum_field(st, "code", status_code_name)?,
                        })
                    })
                    .transpose()?;
                spans.push(Span {
                    trace_id: hex_field(s, "traceId")?,
                    span_id: hex_field(s, "spanId")?,
                    trace_state: string(s, "traceState")?,
                    parent_span_id: hex_field(s, "parentSpanId")?,
                    flags: u32_field(s, "flags")?,
                    name: string(s, "name")?,
                    kind: enum_field(s, "kind", span_kind_name)?,
                    start_time_unix_nano: u64_field(s, "startTimeUnixNano")?,
                    end_time_unix_nano: u64_field(s, "endTimeUnixNano")?,
                    attributes: key_values(s, "attributes")?,
                    dropped_attributes_count: u32_field(s, "droppedAttributesCount")?,
                    events,
                    dropped_events_count: u32_field(s, "droppedEventsCount")?,
                    links,
                    dropped_links_count: u32_field(s, "droppedLinksCount")?,
                    status,
                });
            }
            scope_spans.push(ScopeSpans {
                scope: scope(ss)?,
                spans,
                schema_url: string(ss, "schemaUrl")?,
            });
        }
        out.resource_spans.push(ResourceSpans {
            resource: resource(rs)?,
            scope_spans,
            schema_url: string(rs, "schemaUrl")?,
        });
    }
    Ok(out)
}

/// Resource spans as Tempo writes them in JSON (protobuf's JSON mapping as
/// gogo's `jsonpb` applies it): ids in base64, 64-bit integers as strings,
/// enums by name, zero values left out.
pub fn resource_spans_json(list: &[ResourceSpans]) -> Value {
    use serde_json::json;
    fn put(m: &mut Obj, k: &str, v: Value) {
        let empty = match &v {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::Array(a) => a.is_empty(),
            Value::Bool(b) => !b,
            Value::Object(_) => false,
        };
        if !empty {
            m.insert(k.into(), v);
        }
    }
    fn b64(b: &[u8]) -> Value {
        Value::String(base64::engine::general_purpose::STANDARD.encode(b))
    }
    fn u64s(v: u64) -> Value {
        if v == 0 {
            Value::Null
        } else {
            Value::String(v.to_string())
        }
    }
    fn value(v: &AnyValue) -> Value {
        match &v.value {
            Some(any_value::Value::StringValue(s)) => json!({"stringValue": s}),
            Some(any_value::Value::BoolValue(b)) => json!({"boolValue": b}),
            Some(any_value::Value::IntValue(i)) => json!({"intValue": i.to_string()}),
            Some(any_value::Value::DoubleValue(d)) => json!({"doubleValue": d}),
            Some(any_value::Value::BytesValue(b)) => json!({"bytesValue": b64(b)}),
            Some(any_value::Value::ArrayValue(a)) => {
                json!({"arrayValue": {"values": a.values.iter().map(value).collect::<Vec<_>>()}})
            }
            Some(any_value::Value::KvlistValue(l)) => json!({"kvlistValue": {"values": kvs(&l.values)}}),
            Some(any_value::Value::StringValueStrindex(i)) => json!({"stringValueStrindex": i}),
            None => json!({}),
        }
    }
    fn kvs(list: &[KeyValue]) -> Vec<Value> {
        list.iter()
            .map(|kv| {
                let mut m = Obj::new();
                put(&mut m, "key", Value::String(kv.key.clone()));
                if let Some(v) = &kv.value {
                    m.insert("value".into(), value(v));
                }
                Value::Object(m)
            })
            .collect()
    }
    fn enum_name(name_of: fn(i32) -> Option<&'static str>, v: i32) -> Value {
        if v == 0 {
            return Value::Null;
        }
        name_of(v)
            .map(|n| Value::String(n.into()))
            .unwrap_or_else(|| Value::from(v))
    }
    let out: Vec<Value> = list
        .iter()
        .map(|rs| {
            let mut r = Obj::new();
            if let Some(res) = &rs.resource {
                let mut m = Obj::new();
                put(&mut m, "attributes", Value::Array(kvs(&res.attributes)));
                put(
                    &mut m,
                    "droppedAttributesCount",
                    Value::from(res.dropped_attributes_count),
                );
                r.insert("resource".into(), Value::Object(m));
            }
            let scopes: Vec<Value> = rs
                .scope_spans
                .iter()
                .map(|ss| {
                    let mut s = Obj::new();
                    if let Some(sc) = &ss.scope {
                        let mut m = Obj::new();
                        put(&mut m, "name", Value::String(sc.name.clone()));
                        put(&mut m, "version", Value::String(sc.version.clone()));
                        put(&mut m, "attributes", Value::Array(kvs(&sc.attributes)));
                        put(
                            &mut m,
                            "droppedAttributesCount",
                            Value::from(sc.dropped_attributes_count),
                        );
                        s.insert("scope".into(), Value::Object(m));
                    }
                    let spans: Vec<Value> = ss
                        .spans
                        .iter()
                        .map(|sp| {
                            let mut m = Obj::new();
                            put(&mut m, "traceId", b64(&sp.trace_id));
                            put(&mut m, "spanId", b64(&sp.span_id));
                            put(&mut m, "traceState", Value::String(sp.trace_state.clone()));
                            put(&mut m, "parentSpanId", b64(&sp.parent_span_id));
                            put(&mut m, "flags", Value::from(sp.flags));
                            put(&mut m, "name", Value::String(sp.name.clone()));
                            put(&mut m, "kind", enum_name(span_kind_name, sp.kind));
                            put(&mut m, "startTimeUnixNano", u64s(sp.start_time_unix_nano));
                            put(&mut m, "endTimeUnixNano", u64s(sp.end_time_unix_nano));
                            put(&mut m, "attributes", Value::Array(kvs(&sp.attributes)));
                            put(
                                &mut m,
                                "droppedAttributesCount",
                                Value::from(sp.dropped_attributes_count),
                            );
                            let events: Vec<Value> = sp
                                .events
                                .iter()
                                .map(|e| {
                                    let mut x = Obj::new();
                                    put(&mut x, "timeUnixNano", u64s(e.time_unix_nano));
                                    put(&mut x, "name", Value::String(e.name.clone()));
                                    put(&mut x, "attributes", Value::Array(kvs(&e.attributes)));
                                    put(
                                        &mut x,
                                        "droppedAttributesCount",
                                        Value::from(e.dropped_attributes_count),
                                    );
                                    Value::Object(x)
                                })
                                .collect();
                            put(&mut m, "events", Value::Array(events));
                            put(&mut m, "droppedEventsCount", Value::from(sp.dropped_events_count));
                            let links: Vec<Value> = sp
                                .links
                                .iter()
                                .map(|l| {
                                    let mut x = Obj::new();
                                    put(&mut x, "traceId", b64(&l.trace_id));
                                    put(&mut x, "spanId", b64(&l.span_id));
                                    put(&mut x, "traceState", Value::String(l.trace_state.clone()));
                                    put(&mut x, "attributes", Value::Array(kvs(&l.attributes)));
                                    put(
                                        &mut x,
                                        "droppedAttributesCount",
                                        Value::from(l.dropped_attributes_count),
                                    );
                                    put(&mut x, "flags", Value::from(l.flags));
                                    Value::Object(x)
                                })
                                .collect();
                            put(&mut m, "links", Value::Array(links));
                            put(&mut m, "droppedLinksCount", Value::from(sp.dropped_links_count));
                            if let Some(st) = &sp.status {
                                let mut x = Obj::new();
                                put(&mut x, "message", Value::String(st.message.clone()));
                                put(&mut x, "code", enum_name(status_code_name, st.code));
                                m.insert("status".into(), Value::Object(x));
                            }
                            Value::Object(m)
                        })
                        .collect();
                    put(&mut s, "spans", Value::Array(spans));
                    put(&mut s, "schemaUrl", Value::String(ss.schema_url.clone()));
                    Value::Object(s)
                })
                .collect();
            put(&mut r, "scopeSpans", Value::Array(scopes));
            put(&mut r, "schemaUrl", Value::String(rs.schema_url.clone()));
            Value::Object(r)
        })
        .collect();
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_json_with_otlp_rules() {
        let body = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},
          "scopeLogs":[{"scope":{"name":"lib","version":"1.0"},"logRecords":[
            {"timeUnixNano":"1700000000000000001","severityNumber":17,"severityText":"ERROR",
             "body":{"stringValue":"boom"},"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174",
             "attributes":[{"key":"n","value":{"intValue":7}}],"unknownField":1},
            {"time_unix_nano":5,"body":{"kvlistValue":{"values":[{"key":"a","value":{"boolValue":true}}]}}}]}]}]}"#;
        let req = logs_request(body).unwrap();
        let r = &req.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(r.time_unix_nano, 1_700_000_000_000_000_001);
        assert_eq!(r.trace_id.len(), 16);
        assert_eq!(r.trace_id[0], 0x5b);
        assert_eq!(r.severity_number, 17);
        assert_eq!(req.resource_logs[0].scope_logs[0].log_records[1].time_unix_nano, 5);
        assert!(logs_request(br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"xyz"}]}]}]}"#).is_err());
    }

    #[test]
    fn metrics_json_from_the_spec_example() {
        let body = br#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my.service"}}]},
 "scopeMetrics":[{"scope":{"name":"my.library","version":"1.0.0"},"metrics":[
  {"name":"my.counter","unit":"1","sum":{"aggregationTemporality":2,"isMonotonic":true,
   "dataPoints":[{"asDouble":5,"startTimeUnixNano":"1544712660300000000","timeUnixNano":"1544712660300000000"}]}},
  {"name":"my.histogram","unit":"1","histogram":{"aggregationTemporality":2,"dataPoints":[{"timeUnixNano":"1544712660300000000",
   "count":"2","sum":2,"bucketCounts":["1","1"],"explicitBounds":[1],"min":0,"max":2}]}}]}]}]}"#;
        let req = metrics_request(body).unwrap();
        let m = &req.resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(m.len(), 2);
        match &m[1].data {
            Some(metric::Data::Histogram(h)) => assert_eq!(h.data_points[0].bucket_counts, vec![1, 1]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn traces_json_with_hex_ids_and_enum_names() {
        let body = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"s"}}]},
          "scopeSpans":[{"scope":{"name":"lib"},"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174",
          "parentSpanId":"EEE19B7EC3C1B173","name":"GET","kind":"SPAN_KIND_SERVER","startTimeUnixNano":"1544712660000000000",
          "endTimeUnixNano":1544712661000000000,"status":{"code":2,"message":"boom"},
          "events":[{"timeUnixNano":"1544712660500000000","name":"retry"}],
          "links":[{"traceId":"5B8EFFF798038103D269B633813FC60D","spanId":"EEE19B7EC3C1B175"}]}]}]}]}"#;
        let r = traces_request(body).unwrap();
        let s = &r.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(s.trace_id[0], 0x5b);
        assert_eq!(s.kind, 2);
        assert_eq!(s.status.as_ref().unwrap().code, 2);
        assert_eq!(s.end_time_unix_nano, 1544712661000000000);
        assert_eq!(s.events[0].name, "retry");
        assert_eq!(s.links[0].span_id.len(), 8);
        let out = resource_spans_json(&r.resource_spans);
        let span = &out[0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "W47/95gDgQPSabYzgT/GDA==");
        assert_eq!(span["kind"], "SPAN_KIND_SERVER");
        assert_eq!(span["status"]["code"], "STATUS_CODE_ERROR");
        assert_eq!(span["startTimeUnixNano"], "1544712660000000000");
        assert!(span.get("droppedAttributesCount").is_none(), "zero values are left out");
        assert!(traces_request(br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SERVER"}]}]}]}"#).is_err());
    }
}
