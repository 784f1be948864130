//! Tempo's HTTP API as Grafana's Tempo data source calls it: trace by id (v1
//! protobuf `Trace` or `{"batches"}` JSON; v2 `TraceByIDResponse`), search with
//! TraceQL or legacy tags, tag names and values (v1 and v2), `/api/echo`; and a
//! trace's correlated logs under Sextant's own API. Errors are Tempo's: 400 with
//! the message as plain text.

// Helpers return the finished error response; it is built once per failed
// request, so its size on the error path does not matter.
#![allow(clippy::result_large_err)]

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prost::Message;
use serde_json::{Value, json};
use sextant_otlp::proto::common::v1::{AnyValue, KeyValue, any_value};
use sextant_otlp::proto::trace::v1::{ResourceSpans, TracesData};
use sextant_traces::traceql::{self, Expr, Field, Intrinsic, Literal, Op, Scope};
use sextant_traces::{SearchRequest, TraceId, TraceMatch, TraceStore};

use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/echo", get(echo))
        .route("/api/traces/{id}", get(trace_v1))
        .route("/api/v2/traces/{id}", get(trace_v2))
        .route("/api/search", get(search))
        .route("/api/search/tags", get(tags_v1))
        .route("/api/v2/search/tags", get(tags_v2))
        .route("/api/search/tag/{*rest}", get(tag_values_v1))
        .route("/api/v2/search/tag/{*rest}", get(tag_values_v2))
        .route("/api/sextant/v1/traces/{id}/logs", get(trace_logs))
}

/// Tempo's default number of traces a search returns.
const DEFAULT_LIMIT: usize = 20;
/// Tempo's default matched spans per trace.
const DEFAULT_SPSS: usize = 3;
/// Tempo's largest `spss`.
const MAX_SPSS: usize = 100;
/// Shown for a trace whose root span has not arrived (Tempo's text).
const NO_ROOT: &str = "<root span not yet received>";

/// `TraceByIDResponse` of Tempo's `tempo.proto`.
#[derive(Clone, PartialEq, prost::Message)]
struct TraceByIdResponse {
    #[prost(message, optional, tag = "1")]
    trace: Option<TracesData>,
    #[prost(message, optional, tag = "2")]
    metrics: Option<TraceByIdMetrics>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TraceByIdMetrics {
    #[prost(uint64, tag = "1")]
    inspected_bytes: u64,
}

fn bad(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, msg.into()).into_response()
}

fn unavailable(msg: impl Into<String>) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, msg.into()).into_response()
}

fn store(s: &AppState) -> Result<TraceStore, Response> {
    s.traces
        .clone()
        .ok_or_else(|| (StatusCode::NOT_FOUND, "traces are not enabled on this Sextant").into_response())
}

fn params(q: &Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn param<'a>(p: &'a [(String, String)], name: &str) -> Option<&'a str> {
    p.iter()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

async fn echo() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "echo\n",
    )
        .into_response()
}

/// A trace id as Tempo parses it: hex, odd lengths padded, at most 128 bits.
fn parse_trace_id(s: &str) -> Result<TraceId, Response> {
    if let Some((i, c)) = s.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(bad(format!(
            "trace IDs can only contain hex characters: invalid character '{c}' at position {}",
            i + 1
        )));
    }
    let digits = s.trim_start_matches('0');
    if digits.len() > 32 {
        return Err(bad("trace IDs can't be larger than 128 bits"));
    }
    if digits.is_empty() {
        return Err(bad("trace IDs can't be all zeros"));
    }
    TraceId::parse_hex(digits).ok_or_else(|| bad("trace IDs can't be larger than 128 bits"))
}

/// Optional `start`/`end` in Unix seconds as a range in ns.
fn time_range(p: &[(String, String)]) -> Result<Option<(i64, i64)>, Response> {
    let get = |name: &str| -> Result<Option<i64>, Response> {
        param(p, name)
            .map(|v| v.parse::<i64>().map_err(|e| bad(format!("invalid {name}: {e}"))))
            .transpose()
    };
    let (start, end) = (get("start")?, get("end")?);
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        return Err(bad(format!(
            "http parameter start must be before end. received start={s} end={e}"
        )));
    }
    if start.is_none() && end.is_none() {
        return Ok(None);
    }
    Ok(Some((
        start.map_or(i64::MIN, |s| s.saturating_mul(1_000_000_000)),
        end.map_or(i64::MAX, |e| {
            e.saturating_mul(1_000_000_000).saturating_add(999_999_999)
        }),
    )))
}

fn wants_protobuf(h: &HeaderMap) -> bool {
    h.get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/protobuf"))
}

async fn find_trace(s: &AppState, id: &str, q: &Option<String>) -> Result<Option<Vec<ResourceSpans>>, Response> {
    let store = store(s)?;
    let id = parse_trace_id(id)?;
    let range = time_range(&params(q))?;
    tokio::task::spawn_blocking(move || store.trace(id, range))
        .await
        .map_err(|e| unavailable(e.to_string()))?
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())
}

async fn trace_v1(State(s): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery, h: HeaderMap) -> Response {
    match find_trace(&s, &id, &q).await {
        Err(r) => r,
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Ok(Some(rs)) => {
            if wants_protobuf(&h) {
                let body = TracesData { resource_spans: rs }.encode_to_vec();
                ([(header::CONTENT_TYPE, "application/protobuf")], body).into_response()
            } else {
                let v = json!({"batches": sextant_otlp::json::resource_spans_json(&rs)});
                axum::Json(v).into_response()
            }
        }
    }
}

async fn trace_v2(State(s): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery, h: HeaderMap) -> Response {
    match find_trace(&s, &id, &q).await {
        Err(r) => r,
        Ok(found) => {
            let rs = found.unwrap_or_default();
            let data = TracesData { resource_spans: rs };
            let bytes = data.encoded_len() as u64;
            if wants_protobuf(&h) {
                // The trace field is always present (Grafana reads it unchecked).
                let body = TraceByIdResponse {
                    trace: Some(data),
                    metrics: Some(TraceByIdMetrics { inspected_bytes: bytes }),
                }
                .encode_to_vec();
                ([(header::CONTENT_TYPE, "application/protobuf")], body).into_response()
            } else {
                let mut trace = serde_json::Map::new();
                if !data.resource_spans.is_empty() {
                    trace.insert(
                        "resourceSpans".into(),
                        sextant_otlp::json::resource_spans_json(&data.resource_spans),
                    );
                }
                let mut metrics = serde_json::Map::new();
                if bytes > 0 {
                    metrics.insert("inspectedBytes".into(), Value::String(bytes.to_string()));
                }
                axum::Json(json!({"trace": trace, "metrics": metrics})).into_response()
            }
        }
    }
}

/// A Go duration (`100ms`, `1h30m`) in ns.
fn go_duration(name: &str, v: &str) -> Result<i64, Response> {
    traceql::parse_duration(v).ok_or_else(|| bad(format!("invalid {name}: time: invalid duration \"{v}\"")))
}

/// Legacy `tags` (logfmt `key=value ...`) as a filter: `name` is the span
/// name, `status.code` the status, `error=true` an error status; any other
/// key an attribute of the span or its resource, compared as text, or as a
/// number or boolean when the value is one.
fn tags_filter(tags: &str) -> Result<Expr, Response> {
    let mut filter = Expr::True;
    for part in split_logfmt(tags).map_err(|e| bad(format!("invalid tags: {e}")))? {
        let (k, v) = part;
        let cond = match k.as_str() {
            "name" => Expr::Cmp(Field::Intrinsic(Intrinsic::Name), Op::Eq, Literal::Str(v)),
            "status.code" | "error" => {
                let code = match (k.as_str(), v.to_ascii_lowercase().as_str()) {
                    ("error", "true") => 2,
                    ("error", _) => continue,
                    (_, "error" | "status_code_error" | "2") => 2,
                    (_, "ok" | "status_code_ok" | "1") => 1,
                    (_, "unset" | "status_code_unset" | "0") => 0,
                    (_, other) => return Err(bad(format!("invalid tags: unknown status code {other:?}"))),
                };
                Expr::Cmp(Field::Intrinsic(Intrinsic::Status), Op::Eq, Literal::Status(code))
            }
            _ => {
                let f = Field::Attr(Scope::Unscoped, k.clone());
                let text = Expr::Cmp(f.clone(), Op::Eq, Literal::Str(v.clone()));
                let typed = if let Ok(i) = v.parse::<i64>() {
                    Some(Literal::Int(i))
                } else if let Ok(x) = v.parse::<f64>() {
                    Some(Literal::Float(x))
                } else if v == "true" || v == "false" {
                    Some(Literal::Bool(v == "true"))
                } else {
                    None
                };
                match typed {
                    Some(l) => Expr::Or(Box::new(text), Box::new(Expr::Cmp(f, Op::Eq, l))),
                    None => text,
                }
            }
        };
        filter = filter.and(cond);
    }
    Ok(filter)
}

fn split_logfmt(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let ks = i;
        while i < chars.len() && chars[i] != '=' && !chars[i].is_whitespace() {
            i += 1;
        }
        let key: String = chars[ks..i].iter().collect();
        if i >= chars.len() || chars[i] != '=' {
            return Err(format!("key {key:?} has no value"));
        }
        i += 1;
        let mut value = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated quoted value".into()),
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') if i + 1 < chars.len() => {
                        value.push(chars[i + 1]);
                        i += 2;
                    }
                    Some(c) => {
                        value.push(*c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < chars.len() && !chars[i].is_whitespace() {
                value.push(chars[i]);
                i += 1;
            }
        }
        out.push((key, value));
    }
    Ok(out)
}

fn search_request(p: &[(String, String)]) -> Result<SearchRequest, Response> {
    let q = param(p, "q");
    let tags = param(p, "tags");
    if q.is_some() && tags.is_some() {
        return Err(bad("invalid request: can't specify tags and q in the same query"));
    }
    let mut filter = match (q, tags) {
        (Some(q), _) => {
            traceql::parse(q)
                .map_err(|e| bad(format!("invalid TraceQL query: {e}")))?
                .filter
        }
        (None, Some(t)) => tags_filter(t)?,
        (None, None) => Expr::True,
    };
    let min = param(p, "minDuration")
        .map(|v| go_duration("minDuration", v))
        .transpose()?;
    let max = param(p, "maxDuration")
        .map(|v| go_duration("maxDuration", v))
        .transpose()?;
    if let (Some(a), Some(b)) = (min, max)
        && b < a
    {
        return Err(bad("invalid maxDuration: must be greater than minDuration"));
    }
    if let Some(a) = min {
        filter = filter.and(Expr::Cmp(
            Field::Intrinsic(Intrinsic::TraceDuration),
            Op::Ge,
            Literal::Duration(a),
        ));
    }
    if let Some(b) = max {
        filter = filter.and(Expr::Cmp(
            Field::Intrinsic(Intrinsic::TraceDuration),
            Op::Le,
            Literal::Duration(b),
        ));
    }
    let limit = match param(p, "limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<i64>() {
            Err(e) => return Err(bad(format!("invalid limit: {e}"))),
            Ok(n) if n <= 0 => return Err(bad("invalid limit: must be a positive number")),
            Ok(n) => n as usize,
        },
    };
    let spss = match param(p, "spss") {
        None => DEFAULT_SPSS,
        Some(v) => match v.parse::<i64>() {
            Err(e) => return Err(bad(format!("invalid spss: {e}"))),
            Ok(n) if n <= 0 => return Err(bad("invalid spss: must be a positive number")),
            Ok(n) if n as usize > MAX_SPSS => {
                return Err(bad(format!("spans per span set exceeds {MAX_SPSS}. received {n}")));
            }
            Ok(n) => n as usize,
        },
    };
    let (start_ns, end_ns) = time_range(p)?.unwrap_or((i64::MIN, i64::MAX));
    Ok(SearchRequest {
        filter,
        start_ns,
        end_ns,
        limit,
        spans_per_set: spss,
    })
}

fn any_value_json(v: &AnyValue) -> Value {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => json!({"stringValue": s}),
        Some(any_value::Value::BoolValue(b)) => json!({"boolValue": b}),
        Some(any_value::Value::IntValue(i)) => json!({"intValue": i.to_string()}),
        Some(any_value::Value::DoubleValue(d)) => json!({"doubleValue": d}),
        _ => json!({"stringValue": sextant_otlp::any_value_string(v)}),
    }
}

fn attributes_json(kvs: &[KeyValue]) -> Value {
    Value::Array(
        kvs.iter()
            .map(|kv| json!({"key": kv.key, "value": kv.value.as_ref().map(any_value_json).unwrap_or(json!({}))}))
            .collect(),
    )
}

/// One search result in Tempo's JSON (`TraceSearchMetadata`, gogo `jsonpb`:
/// 64-bit numbers as strings, zero values left out).
fn trace_json(m: &TraceMatch) -> Value {
    let spans: Vec<Value> = m
        .spans
        .iter()
        .map(|s| {
            let mut o = serde_json::Map::new();
            o.insert("spanID".into(), Value::String(format!("{:016x}", s.span_id)));
            if let Some(n) = s.name.as_ref().filter(|n| !n.is_empty()) {
                o.insert("name".into(), Value::String(n.clone()));
            }
            o.insert("startTimeUnixNano".into(), Value::String(s.start_ns.to_string()));
            if s.duration_ns > 0 {
                o.insert("durationNanos".into(), Value::String(s.duration_ns.to_string()));
            }
            if !s.attributes.is_empty() {
                o.insert("attributes".into(), attributes_json(&s.attributes));
            }
            Value::Object(o)
        })
        .collect();
    let set = json!({"spans": spans, "matched": m.matched});
    let mut o = serde_json::Map::new();
    o.insert("traceID".into(), Value::String(format!("{:x}", m.trace.0)));
    o.insert(
        "rootServiceName".into(),
        Value::String(
            m.root_service
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| NO_ROOT.into()),
        ),
    );
    if let Some(n) = m.root_name.as_ref().filter(|n| !n.is_empty()) {
        o.insert("rootTraceName".into(), Value::String(n.clone()));
    }
    o.insert("startTimeUnixNano".into(), Value::String(m.start_ns.to_string()));
    let ms = m.duration_ns / 1_000_000;
    if ms > 0 {
        o.insert("durationMs".into(), Value::from(ms.min(u32::MAX as i64)));
    }
    o.insert("spanSet".into(), set.clone());
    o.insert("spanSets".into(), Value::Array(vec![set]));
    Value::Object(o)
}

async fn search(State(s): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let store = match store(&s) {
        Ok(st) => st,
        Err(r) => return r,
    };
    let req = match search_request(&params(&q)) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let st = store.clone();
    let found = match tokio::task::spawn_blocking(move || st.search(&req)).await {
        Ok(Ok(f)) => f,
        Ok(Err(e)) if e.kind() == sextant_traces::ErrorKind::BadInput => return bad(e.to_string()),
        Ok(Err(e)) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => return unavailable(e.to_string()),
    };
    let traces: Vec<Value> = found.iter().map(trace_json).collect();
    let mut metrics = serde_json::Map::new();
    if !found.is_empty() {
        metrics.insert("inspectedTraces".into(), Value::from(found.len()));
    }
    axum::Json(json!({"traces": traces, "metrics": metrics})).into_response()
}

/// Intrinsic tag names, as Tempo lists them in the `intrinsic` scope.
const INTRINSICS: [&str; 16] = [
    "duration",
    "kind",
    "name",
    "rootName",
    "rootServiceName",
    "span:duration",
    "span:kind",
    "span:name",
    "span:status",
    "span:statusMessage",
    "status",
    "statusMessage",
    "trace:duration",
    "trace:rootName",
    "trace:rootService",
    "traceDuration",
];

async fn tag_names(
    s: &AppState,
    p: &[(String, String)],
) -> Result<(Option<String>, Vec<(String, Vec<String>)>), Response> {
    let store = store(s)?;
    let scope = param(p, "scope").map(str::to_owned);
    if let Some(sc) = &scope
        && !matches!(
            sc.as_str(),
            "span" | "resource" | "intrinsic" | "none" | "event" | "link" | "instrumentation"
        )
    {
        return Err(bad(format!("invalid scope: {sc}")));
    }
    let limit = param(p, "limit")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(10_000)
        .max(1);
    let (from, to) = time_range(p)?.unwrap_or((i64::MIN, i64::MAX));
    let found = tokio::task::spawn_blocking(move || store.tag_names(from, to, limit))
        .await
        .map_err(|e| unavailable(e.to_string()))?
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())?;
    let mut scopes: Vec<(String, Vec<String>)> = found.into_iter().map(|(n, t)| (n.to_owned(), t)).collect();
    scopes.push(("intrinsic".into(), INTRINSICS.iter().map(|s| s.to_string()).collect()));
    scopes.retain(|(n, _)| match scope.as_deref() {
        None | Some("none") => true,
        Some(sc) => sc == n,
    });
    Ok((scope, scopes))
}

async fn tags_v1(State(s): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let p = params(&q);
    match tag_names(&s, &p).await {
        Err(r) => r,
        Ok((scope, scopes)) => {
            // Without a scope, v1 lists span and resource tags, not intrinsics.
            let mut names: Vec<String> = scopes
                .into_iter()
                .filter(|(n, _)| scope.as_deref() == Some("intrinsic") || n != "intrinsic")
                .flat_map(|(_, t)| t)
                .collect();
            names.sort();
            names.dedup();
            axum::Json(json!({"tagNames": names, "metrics": {}})).into_response()
        }
    }
}

async fn tags_v2(State(s): State<AppState>, RawQuery(q): RawQuery) -> Response {
    match tag_names(&s, &params(&q)).await {
        Err(r) => r,
        Ok((_, scopes)) => {
            let scopes: Vec<Value> = scopes
                .into_iter()
                .map(|(name, tags)| json!({"name": name, "tags": tags}))
                .collect();
            axum::Json(json!({"scopes": scopes, "metrics": {}})).into_response()
        }
    }
}

async fn tag_values(
    s: &AppState,
    rest: &str,
    p: &[(String, String)],
    v1: bool,
) -> Result<Vec<(String, &'static str)>, Response> {
    let store = store(s)?;
    let Some(tag) = rest.strip_suffix("/values") else {
        return Err(StatusCode::NOT_FOUND.into_response());
    };
    // Older Grafana encodes the name twice.
    let decoded: String = percent_decode(tag);
    let tag = sextant_traces::search::parse_tag(&decoded, v1).map_err(|e| bad(e.to_string()))?;
    let filter = match param(p, "q") {
        Some(q) => {
            traceql::parse(q)
                .map_err(|e| bad(format!("invalid TraceQL query: {e}")))?
                .filter
        }
        None => Expr::True,
    };
    let limit = param(p, "limit")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(10_000)
        .max(1);
    let (from, to) = time_range(p)?.unwrap_or((i64::MIN, i64::MAX));
    tokio::task::spawn_blocking(move || store.tag_values(&tag, &filter, from, to, limit))
        .await
        .map_err(|e| unavailable(e.to_string()))?
        .map_err(|e| match e.kind() {
            sextant_traces::ErrorKind::BadInput => bad(e.to_string()),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        })
}

fn percent_decode(s: &str) -> String {
    let once: String = form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned());
    once
}

async fn tag_values_v1(State(s): State<AppState>, Path(rest): Path<String>, RawQuery(q): RawQuery) -> Response {
    match tag_values(&s, &rest, &params(&q), true).await {
        Err(r) => r,
        Ok(values) => {
            let mut v: Vec<String> = values.into_iter().map(|(v, _)| v).collect();
            v.sort();
            v.dedup();
            axum::Json(json!({"tagValues": v, "metrics": {}})).into_response()
        }
    }
}

async fn tag_values_v2(State(s): State<AppState>, Path(rest): Path<String>, RawQuery(q): RawQuery) -> Response {
    match tag_values(&s, &rest, &params(&q), false).await {
        Err(r) => r,
        Ok(values) => {
            let v: Vec<Value> = values
                .into_iter()
                .map(|(value, ty)| json!({"type": ty, "value": value}))
                .collect();
            axum::Json(json!({"tagValues": v, "metrics": {}})).into_response()
        }
    }
}

/// The log entries that carry a trace's id (OTLP logs keep `trace_id` and
/// `span_id` as structured metadata), from a minute before the trace's first
/// span to a minute after its last.
async fn trace_logs(State(s): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Response {
    let Some(logs) = s.logs.clone() else {
        return (StatusCode::NOT_FOUND, "logs are not enabled on this Sextant").into_response();
    };
    let spans = match find_trace(&s, &id, &q).await {
        Err(r) => return r,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Ok(Some(rs)) => rs,
    };
    let all = spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans);
    let start = all.clone().map(|s| s.start_time_unix_nano).min().unwrap_or(0) as i64;
    let end = all.map(|s| s.end_time_unix_nano).max().unwrap_or(0) as i64;
    let Ok(trace) = parse_trace_id(&id) else {
        return bad("invalid trace id");
    };
    let hex = trace.to_hex();
    let query = format!(r#"{{service_name=~".+"}} | trace_id="{hex}""#);
    let expr = match sextant_logs::logql::parse(&query) {
        Ok(e) => e,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let params = sextant_logs::logql::QueryParams {
        start: start - 60_000_000_000,
        end: end + 60_000_000_000,
        step: 0,
        limit: 5000,
        direction: sextant_logs::Direction::Forward,
    };
    let result = tokio::task::spawn_blocking(move || sextant_logs::logql::evaluate(&logs, &expr, &params)).await;
    let entries: Vec<Value> = match result {
        Ok(Ok((sextant_logs::logql::QueryResult::Streams(streams), _))) => {
            let mut all: Vec<Value> = Vec::new();
            for st in streams {
                for e in st.entries {
                    let meta: serde_json::Map<String, Value> = e
                        .metadata
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect();
                    let stream: serde_json::Map<String, Value> = e
                        .stream
                        .iter()
                        .map(|l| (l.name.to_string(), Value::String(l.value.to_string())))
                        .collect();
                    all.push(json!({
                        "timestamp": e.ts.to_string(),
                        "line": e.line,
                        "stream": stream,
                        "metadata": meta,
                        "spanID": e.metadata.iter().find(|(k, _)| k == "span_id").map(|(_, v)| v.clone()),
                    }));
                }
            }
            all.sort_by(|a, b| {
                a["timestamp"]
                    .as_str()
                    .unwrap_or("")
                    .parse::<i64>()
                    .unwrap_or(0)
                    .cmp(&b["timestamp"].as_str().unwrap_or("").parse::<i64>().unwrap_or(0))
            });
            all
        }
        Ok(Ok(_)) => Vec::new(),
        Ok(Err(e)) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => return unavailable(e.to_string()),
    };
    axum::Json(json!({"traceID": hex, "logs": entries})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_parse_as_tempo_parses_them() {
        assert_eq!(parse_trace_id("ABC").unwrap().0, 0xabc);
        assert_eq!(parse_trace_id("00000000000000000000000000000abc").unwrap().0, 0xabc);
        assert!(parse_trace_id("12z").is_err());
        assert!(parse_trace_id(&"1".repeat(33)).is_err());
    }

    #[test]
    fn legacy_tags_become_a_filter() {
        let f = tags_filter(r#"service.name=cart name="GET /" http.status_code=500 error=true"#).unwrap();
        let fields = f.fields();
        assert_eq!(fields.len(), 4);
        assert!(tags_filter("novalue").is_err());
    }
}
