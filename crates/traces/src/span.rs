//! Spans as the store keeps them: OTLP's `ResourceSpans` split into one row per
//! span (the columns search reads, the span itself kept whole for trace-by-id)
//! and one *origin* per distinct resource and scope, stored once.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};
use prost::Message;

/// A 128-bit trace id, stored as two signed 64-bit columns (high and low half),
/// which DuckDB compares and sorts faster than a 128-bit or text id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId(pub u128);

impl TraceId {
    /// From OTLP's 16 bytes; `None` for another length or the all-zero id, which
    /// the specification calls invalid.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let a: [u8; 16] = b.try_into().ok()?;
        let v = u128::from_be_bytes(a);
        (v != 0).then_some(Self(v))
    }

    /// From hexadecimal, as Tempo accepts it: up to 32 digits, shorter ids
    /// left-padded with zeros (a 64-bit id from an older tracer is the low half).
    pub fn parse_hex(s: &str) -> Option<Self> {
        if s.is_empty() || s.len() > 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let v = u128::from_str_radix(s, 16).ok()?;
        (v != 0).then_some(Self(v))
    }

    /// 32 lowercase hex digits.
    pub fn to_hex(self) -> String {
        format!("{:032x}", self.0)
    }

    /// The 16 bytes OTLP carries.
    pub fn to_bytes(self) -> Vec<u8> {
        self.0.to_be_bytes().to_vec()
    }

    /// The high half, as stored.
    pub fn hi(self) -> i64 {
        (self.0 >> 64) as u64 as i64
    }

    /// The low half, as stored.
    pub fn lo(self) -> i64 {
        self.0 as u64 as i64
    }

    /// From the two stored halves.
    pub fn from_halves(hi: i64, lo: i64) -> Self {
        Self(((hi as u64 as u128) << 64) | lo as u64 as u128)
    }
}

/// A span id from OTLP's 8 bytes (0 stands for "none", e.g. a root's parent).
pub fn span_id(b: &[u8]) -> Option<u64> {
    let a: [u8; 8] = b.try_into().ok()?;
    Some(u64::from_be_bytes(a))
}

/// The resource and scope a group of spans came with, kept once and referred to
/// by id from every span row.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Origin {
    /// The resource.
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    /// The instrumentation scope.
    #[prost(message, optional, tag = "2")]
    pub scope: Option<InstrumentationScope>,
    /// `ResourceSpans.schema_url`.
    #[prost(string, tag = "3")]
    pub resource_schema_url: String,
    /// `ScopeSpans.schema_url`.
    #[prost(string, tag = "4")]
    pub scope_schema_url: String,
}

impl Origin {
    /// The id an origin is stored under: a hash of its encoding.
    pub fn id(&self) -> i64 {
        xxhash_rust::xxh3::xxh3_64(&self.encode_to_vec()) as i64
    }

    /// `service.name` of the resource, or OpenTelemetry's `unknown_service`.
    pub fn service(&self) -> String {
        self.resource
            .as_ref()
            .and_then(|r| attr(&r.attributes, "service.name"))
            .map(value_text)
            .unwrap_or_else(|| "unknown_service".into())
    }
}

/// An attribute value as search compares it: text for every value, and the
/// number for integer and double values (booleans are text `true`/`false`).
#[derive(Debug, Clone, PartialEq)]
pub struct AttrValue {
    /// The value as text.
    pub text: String,
    /// The value as a number, for integers and doubles.
    pub number: Option<f64>,
    /// The OTLP type, for tag-value listings.
    pub kind: ValueKind,
}

/// Which OTLP type a value had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A string (also arrays, maps and bytes, searched as their text).
    String,
    /// A 64-bit integer.
    Int,
    /// A double.
    Double,
    /// A boolean.
    Bool,
}

impl ValueKind {
    /// As stored (one byte).
    pub fn code(self) -> i8 {
        match self {
            ValueKind::String => 0,
            ValueKind::Int => 1,
            ValueKind::Double => 2,
            ValueKind::Bool => 3,
        }
    }

    /// From the stored byte.
    pub fn from_code(c: i8) -> Self {
        match c {
            1 => ValueKind::Int,
            2 => ValueKind::Double,
            3 => ValueKind::Bool,
            _ => ValueKind::String,
        }
    }

    /// The name Tempo's tag-value listing gives the type.
    pub fn tempo_name(self) -> &'static str {
        match self {
            ValueKind::String => "string",
            ValueKind::Int => "int",
            ValueKind::Double => "float",
            ValueKind::Bool => "bool",
        }
    }
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref())
}

/// An attribute value as text (numbers in decimal, other kinds as the OTLP/JSON
/// text of the value).
pub fn value_text(v: &AnyValue) -> String {
    attr_value(v).text
}

/// An attribute value for search.
pub fn attr_value(v: &AnyValue) -> AttrValue {
    use any_value::Value;
    match &v.value {
        Some(Value::StringValue(s)) => AttrValue {
            text: s.clone(),
            number: None,
            kind: ValueKind::String,
        },
        Some(Value::IntValue(i)) => AttrValue {
            text: i.to_string(),
            number: Some(*i as f64),
            kind: ValueKind::Int,
        },
        Some(Value::DoubleValue(d)) => AttrValue {
            text: d.to_string(),
            number: Some(*d),
            kind: ValueKind::Double,
        },
        Some(Value::BoolValue(b)) => AttrValue {
            text: b.to_string(),
            number: None,
            kind: ValueKind::Bool,
        },
        Some(Value::ArrayValue(a)) => AttrValue {
            text: format!("[{}]", a.values.iter().map(value_text).collect::<Vec<_>>().join(",")),
            number: None,
            kind: ValueKind::String,
        },
        Some(Value::KvlistValue(l)) => AttrValue {
            text: format!(
                "{{{}}}",
                l.values
                    .iter()
                    .map(|kv| format!("{}:{}", kv.key, kv.value.as_ref().map(value_text).unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            number: None,
            kind: ValueKind::String,
        },
        Some(Value::BytesValue(b)) => AttrValue {
            text: b.iter().map(|x| format!("{x:02x}")).collect(),
            number: None,
            kind: ValueKind::String,
        },
        Some(Value::StringValueStrindex(i)) => AttrValue {
            text: i.to_string(),
            number: None,
            kind: ValueKind::String,
        },
        None => AttrValue {
            text: String::new(),
            number: None,
            kind: ValueKind::String,
        },
    }
}

/// Span attributes common enough to have a column of their own, so the
/// searches dashboards run most read one column instead of the attribute table.
/// Each is kept as text; the number, where there is one, in a second column.
/// Keys are matched exactly; a span carrying the old and the new name of one
/// convention fills each column separately.
pub const PROMOTED: [&str; 6] = [
    "http.request.method",
    "http.response.status_code",
    "http.route",
    "http.method",
    "http.status_code",
    "url.path",
];

/// The column a promoted attribute is kept in.
pub fn promoted_column(i: usize) -> String {
    format!("a_{}", PROMOTED[i].replace('.', "_"))
}

/// One span, ready for the appender.
#[derive(Debug, Clone)]
pub struct SpanRow {
    /// The trace.
    pub trace: TraceId,
    /// The span.
    pub span_id: u64,
    /// Its parent (0 for a root).
    pub parent_id: u64,
    /// The resource and scope it came with.
    pub origin: i64,
    /// Start, ns since the epoch.
    pub start_ns: i64,
    /// End minus start, ns (0 when the end is before the start).
    pub duration_ns: i64,
    /// `service.name` of its resource.
    pub service: String,
    /// Span name.
    pub name: String,
    /// OTLP `SpanKind` number.
    pub kind: i8,
    /// OTLP `StatusCode` number.
    pub status: i8,
    /// Status message.
    pub status_message: String,
    /// Promoted attributes, in [`PROMOTED`] order.
    pub promoted: [Option<AttrValue>; PROMOTED.len()],
    /// The remaining span attributes.
    pub attrs: Vec<(String, AttrValue)>,
    /// The whole OTLP span, protobuf-encoded.
    pub detail: Vec<u8>,
}

impl SpanRow {
    /// The span's end, ns.
    pub fn end_ns(&self) -> i64 {
        self.start_ns + self.duration_ns
    }

    /// Whether the span is a root.
    pub fn is_root(&self) -> bool {
        self.parent_id == 0
    }
}

/// A request split for storage.
#[derive(Debug, Default)]
pub struct Split {
    /// Distinct origins by id.
    pub origins: Vec<(i64, Origin)>,
    /// The valid spans.
    pub rows: Vec<SpanRow>,
    /// Spans refused (invalid ids).
    pub rejected: usize,
    /// Why, one line per kind of refusal.
    pub reasons: Vec<String>,
}

/// Splits an export request into origins and span rows; spans with an invalid
/// trace or span id are refused (counted, not stored).
pub fn split(req: &ExportTraceServiceRequest) -> Split {
    let mut out = Split::default();
    let mut bad_trace = 0usize;
    let mut bad_span = 0usize;
    for rs in &req.resource_spans {
        for ss in &rs.scope_spans {
            if ss.spans.is_empty() {
                continue;
            }
            let origin = Origin {
                resource: rs.resource.clone(),
                scope: ss.scope.clone(),
                resource_schema_url: rs.schema_url.clone(),
                scope_schema_url: ss.schema_url.clone(),
            };
            let id = origin.id();
            let service = origin.service();
            if !out.origins.iter().any(|(o, _)| *o == id) {
                out.origins.push((id, origin));
            }
            for s in &ss.spans {
                match row(s, id, &service) {
                    Ok(r) => out.rows.push(r),
                    Err(Invalid::TraceId) => bad_trace += 1,
                    Err(Invalid::SpanId) => bad_span += 1,
                }
            }
        }
    }
    if bad_trace > 0 {
        out.reasons.push(format!(
            "{bad_trace} spans with an invalid trace id (16 bytes, not all zero)"
        ));
    }
    if bad_span > 0 {
        out.reasons.push(format!(
            "{bad_span} spans with an invalid span id (8 bytes, not all zero)"
        ));
    }
    out.rejected = bad_trace + bad_span;
    out
}

enum Invalid {
    TraceId,
    SpanId,
}

fn row(s: &Span, origin: i64, service: &str) -> Result<SpanRow, Invalid> {
    let trace = TraceId::from_bytes(&s.trace_id).ok_or(Invalid::TraceId)?;
    let span_id = span_id(&s.span_id).filter(|v| *v != 0).ok_or(Invalid::SpanId)?;
    let parent_id = if s.parent_span_id.is_empty() {
        0
    } else {
        span_id_or_zero(&s.parent_span_id)
    };
    let start_ns = s.start_time_unix_nano.min(i64::MAX as u64) as i64;
    let end_ns = s.end_time_unix_nano.min(i64::MAX as u64) as i64;
    let mut promoted: [Option<AttrValue>; PROMOTED.len()] = Default::default();
    let mut attrs = Vec::new();
    for kv in &s.attributes {
        let Some(v) = kv.value.as_ref() else { continue };
        let v = attr_value(v);
        match PROMOTED.iter().position(|k| *k == kv.key) {
            Some(i) => promoted[i] = Some(v),
            None => attrs.push((kv.key.clone(), v)),
        }
    }
    let (status, status_message) = s
        .status
        .as_ref()
        .map(|st| (st.code as i8, st.message.clone()))
        .unwrap_or((StatusCode::Unset as i8, String::new()));
    Ok(SpanRow {
        trace,
        span_id,
        parent_id,
        origin,
        start_ns,
        duration_ns: (end_ns - start_ns).max(0),
        service: service.to_owned(),
        name: s.name.clone(),
        kind: s.kind as i8,
        status,
        status_message,
        promoted,
        attrs,
        detail: s.encode_to_vec(),
    })
}

fn span_id_or_zero(b: &[u8]) -> u64 {
    span_id(b).unwrap_or(0)
}

/// Tempo's and TraceQL's name of a span kind.
pub fn kind_name(kind: i8) -> &'static str {
    match SpanKind::try_from(kind as i32).unwrap_or(SpanKind::Unspecified) {
        SpanKind::Unspecified => "unspecified",
        SpanKind::Internal => "internal",
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
    }
}

/// TraceQL's name of a status code.
pub fn status_name(status: i8) -> &'static str {
    match StatusCode::try_from(status as i32).unwrap_or(StatusCode::Unset) {
        StatusCode::Unset => "unset",
        StatusCode::Ok => "ok",
        StatusCode::Error => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_round_trip_through_halves_and_hex() {
        let id = TraceId::parse_hex("8f2d3a4b5c6d7e8f9a0b1c2d3e4f5061").unwrap();
        assert_eq!(TraceId::from_halves(id.hi(), id.lo()), id);
        assert_eq!(id.to_hex(), "8f2d3a4b5c6d7e8f9a0b1c2d3e4f5061");
        assert!(id.hi() < 0, "the high bit lands in the sign of the stored half");
        // A 64-bit id from an older tracer is the low half.
        assert_eq!(TraceId::parse_hex("abc").unwrap().0, 0xabc);
        assert_eq!(TraceId::parse_hex("0"), None);
        assert_eq!(TraceId::parse_hex("xyz"), None);
        assert_eq!(TraceId::parse_hex(&"f".repeat(33)), None);
        assert_eq!(TraceId::from_bytes(&[0; 16]), None);
        assert_eq!(TraceId::from_bytes(&id.to_bytes()), Some(id));
    }
}
