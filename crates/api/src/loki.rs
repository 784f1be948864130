//! Loki's HTTP API, as Grafana's Loki data source, promtail, Alloy and `logcli`
//! call it: `POST /loki/api/v1/push` (snappy-compressed protobuf, or JSON;
//! gzip/deflate bodies), LogQL through `query` and `query_range`, and the
//! metadata calls (`labels`, `label/<name>/values`, `series`, `index/stats`,
//! `index/volume`, `status/buildinfo`), and `tail`, the WebSocket Grafana's live
//! view reads. Query errors are plain text with Loki's
//! status codes and messages; results use Loki's JSON shapes, including the
//! `categorize-labels` encoding Grafana asks for.

// Helpers return the finished error response; it is built once per failed
// request, so its size on the error path does not matter.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::io::Read;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use sextant_logs::logql::{self, EvalError, QueryParams, QueryResult, parse};
use sextant_logs::{Direction, Entry, PushStream};
use sextant_model::Labels;

use crate::AppState;
use crate::prometheus::Params;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/loki/api/v1/push", post(push))
        .route("/api/prom/push", post(push))
        .route("/loki/api/v1/query", get(query).post(query))
        .route("/loki/api/v1/query_range", get(query_range).post(query_range))
        .route("/loki/api/v1/labels", get(labels).post(labels))
        .route("/loki/api/v1/label", get(labels).post(labels))
        .route("/loki/api/v1/label/{name}/values", get(label_values).post(label_values))
        .route("/loki/api/v1/series", get(series).post(series))
        .route("/loki/api/v1/index/stats", get(index_stats).post(index_stats))
        .route("/loki/api/v1/index/volume", get(index_volume).post(index_volume))
        .route(
            "/loki/api/v1/detected_labels",
            get(detected_labels).post(detected_labels),
        )
        .route("/loki/api/v1/status/buildinfo", get(buildinfo))
        .route("/loki/api/v1/format_query", get(format_query).post(format_query))
        .route("/loki/api/v1/tail", get(tail))
}

/// Largest push body, compressed (Loki: 100 MiB).
const MAX_PUSH_BYTES: usize = 100 << 20;
/// Largest push body after decompression.
const MAX_DECOMPRESSED_BYTES: usize = 512 << 20;
/// Most entries a log query returns (Loki's `max_entries_limit_per_query`).
const MAX_ENTRIES: usize = 5000;

/// A plain-text error as Loki writes one.
fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        msg.into(),
    )
        .into_response()
}

fn bad(msg: impl Into<String>) -> Response {
    text(StatusCode::BAD_REQUEST, msg)
}

fn no_store() -> Response {
    text(StatusCode::NOT_FOUND, "logs are not enabled on this Sextant")
}

// ---- push ---------------------------------------------------------------------

/// Loki's push protobuf (`logproto.PushRequest`), wire-compatible; public for
/// clients in tests and benchmarks (snappy-compress its encoding to push it).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequestPb {
    /// The streams pushed.
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamPb>,
}

/// One stream of a push: labels as `{name="value", ...}` and entries.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamPb {
    /// Stream labels, `{name="value", ...}`.
    #[prost(string, tag = "1")]
    pub labels: String,
    /// Its entries.
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryPb>,
}

/// One entry: timestamp, line, structured metadata.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryPb {
    /// When it happened.
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<TimestampPb>,
    /// The line.
    #[prost(string, tag = "2")]
    pub line: String,
    /// Structured metadata.
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairPb>,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimestampPb {
    /// Seconds since the epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// A structured-metadata pair.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPairPb {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// Parses a Prometheus-style label set string: `{app="x", env="prod"}`.
pub fn parse_label_string(s: &str) -> Result<Labels, String> {
    let t = s.trim();
    let inner = t.strip_prefix('{').and_then(|x| x.strip_suffix('}')).ok_or_else(|| {
        format!(
            "1:1: parse error: unexpected character {:?}",
            t.chars().next().unwrap_or(' ')
        )
    })?;
    let mut pairs = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            return Err(format!(
                "parse error: unexpected {:?} in label set {s}",
                rest.chars().next().unwrap_or(' ')
            ));
        }
        let name = &rest[..end];
        rest = rest[end..].trim_start();
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| format!("parse error: expected '=' after label name {name:?}"))?
            .trim_start();
        if !rest.starts_with('"') {
            return Err(format!("parse error: expected a quoted value for label {name:?}"));
        }
        let mut value = String::new();
        let mut chars = rest[1..].char_indices();
        let mut consumed = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    consumed = Some(i + 2);
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, 't')) => value.push('\t'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, other)) => {
                        value.push('\\');
                        value.push(other);
                    }
                    None => break,
                },
                c => value.push(c),
            }
        }
        let used = consumed.ok_or_else(|| format!("parse error: unterminated quoted string in {s}"))?;
        pairs.push((name.to_owned(), value));
        rest = rest[used..].trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        } else if !rest.is_empty() {
            return Err(format!("parse error: expected ',' or '}}' in label set {s}"));
        }
    }
    Labels::from_pairs(pairs).map_err(|e| e.to_string())
}

fn decompress(encoding: &str, body: &[u8]) -> Result<Vec<u8>, Response> {
    let mut out = Vec::new();
    let limit = MAX_DECOMPRESSED_BYTES as u64 + 1;
    let res = match encoding {
        "gzip" => flate2::read::GzDecoder::new(body).take(limit).read_to_end(&mut out),
        "deflate" => flate2::read::ZlibDecoder::new(body).take(limit).read_to_end(&mut out),
        _ => return Ok(body.to_vec()),
    };
    res.map_err(|e| bad(format!("{encoding}: {e}\n")))?;
    if out.len() > MAX_DECOMPRESSED_BYTES {
        return Err(bad(format!(
            "decompressed message size too large than max ({} vs {MAX_DECOMPRESSED_BYTES})\n",
            out.len()
        )));
    }
    Ok(out)
}

/// Decodes a push body (protobuf or JSON) into streams.
pub(crate) fn decode_push(headers: &HeaderMap, body: &[u8]) -> Result<Vec<PushStream>, Response> {
    let encoding = crate::content_encoding(headers);
    if !matches!(encoding.as_str(), "" | "snappy" | "gzip" | "deflate") {
        return Err(bad(format!("Content-Encoding {encoding:?} not supported\n")));
    }
    let body = decompress(&encoding, body)?;
    if crate::media_type(headers) == "application/json" {
        return decode_json(&body).map_err(|e| bad(format!("{e}\n")));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&body)
        .map_err(|e| bad(format!("snappy: {e}\n")))?;
    let req = <PushRequestPb as prost::Message>::decode(raw.as_slice()).map_err(|e| bad(format!("{e}\n")))?;
    let mut out = Vec::with_capacity(req.streams.len());
    for s in req.streams {
        let labels = parse_label_string(&s.labels).map_err(|e| bad(format!("couldn't parse labels: {e}\n")))?;
        let entries = s
            .entries
            .into_iter()
            .map(|e| Entry {
                ts: e
                    .timestamp
                    .map(|t| {
                        t.seconds
                            .saturating_mul(1_000_000_000)
                            .saturating_add(i64::from(t.nanos))
                    })
                    .unwrap_or(0),
                line: e.line,
                metadata: e.structured_metadata.into_iter().map(|p| (p.name, p.value)).collect(),
            })
            .collect();
        out.push(PushStream { labels, entries });
    }
    Ok(out)
}

fn decode_json(body: &[u8]) -> Result<Vec<PushStream>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("{e}"))?;
    let streams = v.get("streams").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut out = Vec::with_capacity(streams.len());
    for s in streams {
        let labels = if let Some(map) = s.get("stream").and_then(Value::as_object) {
            let mut pairs = Vec::new();
            for (k, v) in map {
                let v = v
                    .as_str()
                    .ok_or_else(|| format!("couldn't parse labels: label {k:?} is not a string"))?;
                pairs.push((k.clone(), v.to_owned()));
            }
            Labels::from_pairs(pairs).map_err(|e| format!("couldn't parse labels: {e}"))?
        } else if let Some(l) = s.get("labels").and_then(Value::as_str) {
            parse_label_string(l).map_err(|e| format!("couldn't parse labels: {e}"))?
        } else {
            Labels::empty()
        };
        let mut entries = Vec::new();
        for value in s.get("values").and_then(Value::as_array).into_iter().flatten() {
            let Some(arr) = value.as_array() else {
                if value.is_null() {
                    continue;
                }
                return Err("Value is array, but can't find closing ']' symbol".into());
            };
            let ts = arr
                .first()
                .and_then(Value::as_str)
                .ok_or_else(|| "Value is string, but can't find closing '\"' symbol".to_owned())?;
            let ts: i64 = ts
                .parse()
                .map_err(|_| format!("strconv.ParseInt: parsing {ts:?}: invalid syntax"))?;
            let line = arr
                .get(1)
                .and_then(Value::as_str)
                .ok_or_else(|| "Value is string, but can't find closing '\"' symbol".to_owned())?
                .to_owned();
            let mut metadata = Vec::new();
            if let Some(m) = arr.get(2) {
                let obj = m
                    .as_object()
                    .ok_or_else(|| "structured metadata must be an object of strings".to_owned())?;
                for (k, v) in obj {
                    let v = v
                        .as_str()
                        .ok_or_else(|| format!("structured metadata value of {k:?} is not a string"))?;
                    metadata.push((k.clone(), v.to_owned()));
                }
            }
            entries.push(Entry { ts, line, metadata });
        }
        // Legacy shape: `entries: [{ts: RFC3339, line}]`.
        for e in s.get("entries").and_then(Value::as_array).into_iter().flatten() {
            let line = e.get("line").and_then(Value::as_str).unwrap_or("").to_owned();
            let ts = e
                .get("ts")
                .and_then(Value::as_str)
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .map(|t| t.as_nanosecond() as i64)
                .ok_or_else(|| "entry timestamp is not an RFC 3339 time".to_owned())?;
            entries.push(Entry {
                ts,
                line,
                metadata: Vec::new(),
            });
        }
        out.push(PushStream { labels, entries });
    }
    Ok(out)
}

async fn push(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let Some(store) = s.logs.clone() else { return no_store() };
    let bytes = match axum::body::to_bytes(body, MAX_PUSH_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body too large: message size too large than max (> {MAX_PUSH_BYTES})\n"),
            );
        }
    };
    let streams = match decode_push(&headers, &bytes) {
        Ok(s) => s,
        Err(r) => return r,
    };
    push_streams(&store, streams).await
}

/// Writes decoded streams and answers as Loki does (204, or the error).
pub(crate) async fn push_streams(store: &sextant_logs::LogStore, streams: Vec<PushStream>) -> Response {
    if streams.iter().all(|s| s.entries.is_empty()) {
        return text(
            StatusCode::UNPROCESSABLE_ENTITY,
            "error at least one valid stream is required for ingestion\n",
        );
    }
    match store.push(streams).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            let mut r = text(
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                format!("{}\n", e.message),
            );
            // Rate and backlog limits pass; say when to come back (Loki sends no
            // header, and clients back off on their own, so this only helps).
            if e.status == 429 {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
            }
            r
        }
    }
}

// ---- parameters ---------------------------------------------------------------

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Loki's timestamp parameter: float seconds, ≤10-digit integer seconds, longer
/// integers nanoseconds, or RFC 3339.
fn parse_ts(v: &str) -> Result<i64, String> {
    if v.contains('.')
        && let Ok(f) = v.parse::<f64>()
    {
        return Ok(((f * 1000.0).round() as i64).saturating_mul(1_000_000));
    }
    if let Ok(i) = v.parse::<i64>() {
        return Ok(if v.trim_start_matches('-').len() <= 10 {
            i.saturating_mul(1_000_000_000)
        } else {
            i
        });
    }
    v.parse::<jiff::Timestamp>()
        .map(|t| t.as_nanosecond() as i64)
        .map_err(|_| {
            format!("parsing time {v:?} as \"2006-01-02T15:04:05.999999999Z07:00\": cannot parse {v:?} as \"2006\"")
        })
}

fn param_ts(p: &Params, name: &str) -> Result<Option<i64>, Response> {
    match p.get(name) {
        None | Some("") => Ok(None),
        Some(v) => parse_ts(v)
            .map(Some)
            .map_err(|e| bad(format!("could not parse '{name}' parameter: {e}"))),
    }
}

/// `start`, `end` and `since`, defaulting to the last hour.
fn bounds(p: &Params) -> Result<(i64, i64), Response> {
    let now = now_ns();
    let end = param_ts(p, "end")?.unwrap_or(now);
    let since = match p.get("since") {
        None | Some("") => 3600 * 1_000_000_000,
        Some(v) => logql::parsers::parse_prom_duration(v)
            .map_err(|e| bad(format!("could not parse 'since' parameter: {e}")))?,
    };
    let start = param_ts(p, "start")?.unwrap_or(end.min(now) - since);
    Ok((start, end))
}

/// `step`: float seconds or a Prometheus duration, in ns.
fn parse_step(v: &str) -> Result<i64, Response> {
    if let Ok(f) = v.parse::<f64>() {
        return Ok((f * 1e9) as i64);
    }
    logql::parsers::parse_prom_duration(v).map_err(|_| bad(format!("cannot parse {v:?} to a valid duration")))
}

fn direction(p: &Params) -> Result<Direction, Response> {
    match p.get("direction").map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("backward") => Ok(Direction::Backward),
        Some("forward") => Ok(Direction::Forward),
        Some(_) => Err(bad(format!("invalid direction '{}'", p.get("direction").unwrap_or("")))),
    }
}

fn limit(p: &Params) -> Result<usize, Response> {
    match p.get("limit") {
        None | Some("") => Ok(100),
        Some(v) => {
            let n: i64 = v
                .parse()
                .map_err(|_| bad(format!("strconv.Atoi: parsing {v:?}: invalid syntax")))?;
            if n <= 0 {
                return Err(bad("limit must be a positive value"));
            }
            Ok(n as usize)
        }
    }
}

// ---- results ------------------------------------------------------------------

fn go_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        let s = format!("{v}");
        if s == "-0" { "0".into() } else { s }
    }
}

/// A sample time in seconds as Loki writes it: `1568404331.324` or `1568404331`.
fn ts_seconds(ms: i64) -> Value {
    if ms % 1000 == 0 {
        json!(ms / 1000)
    } else {
        serde_json::Number::from_f64(ms as f64 / 1000.0)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

fn labels_json(l: &Labels) -> Value {
    Value::Object(
        l.iter()
            .map(|l| (l.name.clone(), Value::String(l.value.clone())))
            .collect(),
    )
}

fn pairs_json(p: &[(String, String)]) -> Value {
    Value::Object(p.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

fn stats_json(stats: &logql::EvalStats, exec_secs: f64) -> Value {
    let per_sec = |n: u64| {
        if exec_secs > 0.0 {
            (n as f64 / exec_secs) as u64
        } else {
            0
        }
    };
    json!({
        "summary": {
            "bytesProcessedPerSecond": per_sec(stats.bytes_scanned),
            "linesProcessedPerSecond": per_sec(stats.entries_scanned),
            "totalBytesProcessed": stats.bytes_scanned,
            "totalLinesProcessed": stats.entries_scanned,
            "totalEntriesReturned": stats.entries_returned,
            "totalPostFilterLines": stats.entries_returned,
            "execTime": exec_secs,
            "queueTime": 0,
            "subqueries": 0,
            "shards": stats.partitions,
            "splits": 0,
            "totalStructuredMetadataBytesProcessed": 0
        },
        "querier": {"store": {"totalChunksRef": 0, "totalChunksDownloaded": 0, "chunksDownloadTime": 0, "chunk": {"headChunkBytes": 0, "headChunkLines": 0, "decompressedBytes": stats.bytes_scanned, "decompressedLines": stats.entries_scanned, "compressedBytes": 0, "totalDuplicates": 0}}},
        "ingester": {"totalReached": 0, "totalChunksMatched": 0, "totalBatches": 0, "totalLinesSent": 0, "store": {"totalChunksRef": 0, "totalChunksDownloaded": 0, "chunksDownloadTime": 0, "chunk": {"headChunkBytes": 0, "headChunkLines": 0, "decompressedBytes": 0, "decompressedLines": 0, "compressedBytes": 0, "totalDuplicates": 0}}}
    })
}

fn result_json(r: &QueryResult, categorize: bool) -> (Value, &'static str) {
    match r {
        QueryResult::Streams(streams) => {
            if !categorize {
                let out: Vec<Value> = streams
                    .iter()
                    .map(|s| {
                        json!({
                            "stream": labels_json(&s.labels),
                            "values": s.entries.iter().map(|e| json!([e.ts.to_string(), e.line])).collect::<Vec<_>>()
                        })
                    })
                    .collect();
                return (Value::Array(out), "streams");
            }
            // Regroup by the stream's own labels, keeping the entries' order
            // within each group.
            let mut groups: BTreeMap<Labels, Vec<Value>> = BTreeMap::new();
            let mut order: Vec<(i64, Labels, Value)> = Vec::new();
            for s in streams {
                for e in &s.entries {
                    let mut extra = Map::new();
                    if !e.metadata.is_empty() {
                        extra.insert("structuredMetadata".into(), pairs_json(&e.metadata));
                    }
                    if !e.parsed.is_empty() {
                        extra.insert("parsed".into(), pairs_json(&e.parsed));
                    }
                    order.push((
                        e.ts,
                        e.stream.clone(),
                        json!([e.ts.to_string(), e.line, Value::Object(extra)]),
                    ));
                }
            }
            let backward = streams
                .iter()
                .flat_map(|s| s.entries.windows(2))
                .any(|w| w[0].ts > w[1].ts);
            order.sort_by_key(|(ts, _, _)| if backward { -ts } else { *ts });
            for (_, l, v) in order {
                groups.entry(l).or_default().push(v);
            }
            let out = groups
                .into_iter()
                .map(|(l, values)| json!({"stream": labels_json(&l), "values": values}))
                .collect();
            (Value::Array(out), "streams")
        }
        QueryResult::Vector(t, v) => {
            let ms = t.div_euclid(1_000_000);
            (
                Value::Array(
                    v.iter()
                        .map(|(l, x)| json!({"metric": labels_json(l), "value": [ts_seconds(ms), go_float(*x)]}))
                        .collect(),
                ),
                "vector",
            )
        }
        QueryResult::Matrix(m) => (
            Value::Array(
                m.iter()
                    .map(|(l, pts)| {
                        json!({
                            "metric": labels_json(l),
                            "values": pts.iter().map(|(t, x)| json!([ts_seconds(*t), go_float(*x)])).collect::<Vec<_>>()
                        })
                    })
                    .collect(),
            ),
            "matrix",
        ),
        QueryResult::Scalar(t, x) => (json!([ts_seconds(t.div_euclid(1_000_000)), go_float(*x)]), "scalar"),
    }
}

fn categorize_requested(headers: &HeaderMap) -> bool {
    headers
        .get("X-Loki-Response-Encoding-Flags")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|f| f == "categorize-labels"))
}

async fn run_query(s: &AppState, headers: &HeaderMap, q: &str, params: QueryParams, instant: bool) -> Response {
    let Some(store) = s.logs.clone() else { return no_store() };
    let expr = match parse(q) {
        Ok(e) => e,
        Err(e) => return bad(e.0),
    };
    if instant && matches!(expr, logql::ast::Expr::Log(_)) {
        return bad(
            "log queries are not supported as an instant query type, please change your query to a range query type",
        );
    }
    if matches!(expr, logql::ast::Expr::Log(_)) && params.limit > MAX_ENTRIES {
        return bad(format!(
            "max entries limit per query exceeded, limit > max_entries_limit_per_query ({} > {MAX_ENTRIES})",
            params.limit
        ));
    }
    let started = std::time::Instant::now();
    let outcome = tokio::task::spawn_blocking(move || logql::evaluate(&store, &expr, &params)).await;
    let (result, stats) = match outcome {
        Ok(Ok(r)) => r,
        Ok(Err(EvalError::BadQuery(m))) => return bad(m),
        Ok(Err(EvalError::Internal(m))) => return text(StatusCode::INTERNAL_SERVER_ERROR, m),
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let categorize = categorize_requested(headers) && matches!(result, QueryResult::Streams(_));
    let (res, kind) = result_json(&result, categorize);
    let mut data = Map::new();
    data.insert("resultType".into(), json!(kind));
    if categorize {
        data.insert("encodingFlags".into(), json!(["categorize-labels"]));
    }
    data.insert("result".into(), res);
    data.insert("stats".into(), stats_json(&stats, started.elapsed().as_secs_f64()));
    axum::Json(json!({"status": "success", "data": Value::Object(data)})).into_response()
}

async fn query(State(s): State<AppState>, headers: HeaderMap, p: Params) -> Response {
    let q = p.get("query").unwrap_or("").to_owned();
    let time = match param_ts(&p, "time") {
        Ok(t) => t.unwrap_or_else(now_ns),
        Err(r) => return r,
    };
    let (limit, direction) = match (limit(&p), direction(&p)) {
        (Ok(l), Ok(d)) => (l, d),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let params = QueryParams {
        start: time,
        end: time,
        step: 0,
        limit,
        direction,
    };
    run_query(&s, &headers, &q, params, true).await
}

async fn query_range(State(s): State<AppState>, headers: HeaderMap, p: Params) -> Response {
    let q = p.get("query").unwrap_or("").to_owned();
    let (start, end) = match bounds(&p) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if end < start {
        return bad("end timestamp must not be before or equal to start time");
    }
    let (limit, direction) = match (limit(&p), direction(&p)) {
        (Ok(l), Ok(d)) => (l, d),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let step = match p.get("step") {
        None | Some("") => ((end - start) / 250 / 1_000_000_000).max(1) * 1_000_000_000,
        Some(v) => match parse_step(v) {
            Ok(s) => s,
            Err(r) => return r,
        },
    };
    if step <= 0 {
        return bad("zero or negative query resolution step widths are not accepted. Try a positive integer");
    }
    if (end - start) / step > 11_000 {
        return bad(
            "exceeded maximum resolution of 11,000 points per time series. Try increasing the value of the step parameter",
        );
    }
    let params = QueryParams {
        start,
        end,
        step,
        limit,
        direction,
    };
    run_query(&s, &headers, &q, params, false).await
}

fn selector_matchers(q: Option<&str>) -> Result<Vec<sextant_model::Matcher>, Response> {
    match q.map(str::trim) {
        None | Some("") | Some("{}") => Ok(Vec::new()),
        Some(q) => match parse(q) {
            Ok(logql::ast::Expr::Log(l)) => Ok(l.matchers),
            Ok(_) => Err(bad("only a stream selector is accepted here")),
            Err(e) => Err(bad(e.0)),
        },
    }
}

fn list_response(items: Vec<String>) -> Response {
    if items.is_empty() {
        return axum::Json(json!({"status": "success"})).into_response();
    }
    axum::Json(json!({"status": "success", "data": items})).into_response()
}

async fn labels(State(s): State<AppState>, p: Params) -> Response {
    let Some(store) = s.logs.clone() else { return no_store() };
    let ((start, end), matchers) = match (bounds(&p), selector_matchers(p.get("query"))) {
        (Ok(b), Ok(m)) => (b, m),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let mut names: Vec<String> = store
        .streams(&matchers, start, end)
        .iter()
        .flat_map(|l| l.iter().map(|l| l.name.clone()).collect::<Vec<_>>())
        .collect();
    names.sort();
    names.dedup();
    list_response(names)
}

async fn label_values(State(s): State<AppState>, Path(name): Path<String>, p: Params) -> Response {
    let Some(store) = s.logs.clone() else { return no_store() };
    let ((start, end), matchers) = match (bounds(&p), selector_matchers(p.get("query"))) {
        (Ok(b), Ok(m)) => (b, m),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let mut values: Vec<String> = store
        .streams(&matchers, start, end)
        .iter()
        .filter_map(|l| l.get(&name).map(str::to_owned))
        .collect();
    values.sort();
    values.dedup();
    list_response(values)
}

async fn series(State(s): State<AppState>, p: Params) -> Response {
    let Some(store) = s.logs.clone() else { return no_store() };
    let (start, end) = match bounds(&p) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut groups = p.get_all("match[]");
    groups.extend(p.get_all("match"));
    let mut out: Vec<Labels> = Vec::new();
    if groups.is_empty() {
        groups.push("{}".into());
    }
    for g in &groups {
        let matchers = match selector_matchers(Some(g)) {
            Ok(m) => m,
            Err(r) => return r,
        };
        out.extend(store.streams(&matchers, start, end).iter().map(|l| (**l).clone()));
    }
    out.sort();
    out.dedup();
    axum::Json(json!({"status": "success", "data": out.iter().map(labels_json).collect::<Vec<_>>()})).into_response()
}

/// Counts entries and bytes of the streams a selector picks, without reading lines.
fn selection_totals(
    store: &sextant_logs::LogStore,
    matchers: Vec<sextant_model::Matcher>,
    start: i64,
    end: i64,
) -> Result<BTreeMap<Labels, (u64, u64)>, String> {
    let sel = sextant_logs::Selection {
        matchers,
        from: start,
        to: end,
        needles: Vec::new(),
        direction: Direction::Forward,
        fetch: false,
    };
    let mut per: BTreeMap<Labels, (u64, u64)> = BTreeMap::new();
    store
        .scan(&sel, |v| {
            let e = per.entry((**v.stream).clone()).or_default();
            e.0 += 1;
            e.1 += v.len;
            std::ops::ControlFlow::Continue(())
        })
        .map_err(|e| e.to_string())?;
    Ok(per)
}

async fn index_stats(State(s): State<AppState>, p: Params) -> Response {
    let Some(store) = s.logs.clone() else { return no_store() };
    let ((start, end), matchers) = match (bounds(&p), selector_matchers(p.get("query"))) {
        (Ok(b), Ok(m)) => (b, m),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match tokio::task::spawn_blocking(move || selection_totals(&store, matchers, start, end)).await {
        Ok(Ok(per)) => {
            let entries: u64 = per.values().map(|v| v.0).sum();
            let bytes: u64 = per.values().map(|v| v.1).sum();
            axum::Json(json!({"streams": per.len(), "chunks": per.len(), "entries": entries, "bytes": bytes}))
                .into_response()
        }
        Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn index_volume(State(s): State<AppState>, p: Params) -> Response {
    let Some(store) = s.logs.clone() else { return no_store() };
    let ((start, end), matchers) = match (bounds(&p), selector_matchers(p.get("query"))) {
        (Ok(b), Ok(m)) => (b, m),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let limit = match p.get("limit") {
        None | Some("") | Some("0") => 100usize,
        Some(v) => match v.parse::<usize>() {
            Ok(n) => n,
            Err(_) => return bad(format!("strconv.Atoi: parsing {v:?}: invalid syntax")),
        },
    };
    let target: Vec<String> = p
        .get("targetLabels")
        .map(|t| t.split(',').filter(|x| !x.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    let selector_names: Vec<String> = matchers.iter().map(|m| m.name.clone()).collect();
    let per = match tokio::task::spawn_blocking(move || selection_totals(&store, matchers, start, end)).await {
        Ok(Ok(per)) => per,
        Ok(Err(e)) => return text(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    // Volume per series of the labels asked for (or the selector's labels).
    let keep = if target.is_empty() { selector_names } else { target };
    let mut volume: BTreeMap<Labels, u64> = BTreeMap::new();
    for (l, (_, bytes)) in per {
        let key = if keep.is_empty() {
            l
        } else {
            l.filter(|x| keep.contains(&x.name))
        };
        *volume.entry(key).or_default() += bytes;
    }
    let mut rows: Vec<(Labels, u64)> = volume.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    rows.truncate(limit);
    let t = ts_seconds(end.div_euclid(1_000_000));
    let result: Vec<Value> = rows
        .iter()
        .map(|(l, v)| json!({"metric": labels_json(l), "value": [t.clone(), v.to_string()]}))
        .collect();
    axum::Json(json!({"status": "success", "data": {"resultType": "vector", "result": result, "stats": {}}}))
        .into_response()
}

/// Whether a value looks like an id (a UUID or a long hex run), which makes a
/// label useless for Logs Drilldown's tabs.
fn looks_like_id(v: &str) -> bool {
    v.len() >= 16 && v.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// Stream labels with their cardinality, as Loki 3 answers Logs Drilldown: a
/// label whose values (more than two) all look like ids is left out, except
/// `cluster`, `namespace`, `instance` and `pod`.
async fn detected_labels(State(s): State<AppState>, p: Params) -> Response {
    let Some(store) = s.logs.clone() else { return no_store() };
    let ((start, end), matchers) = match (bounds(&p), selector_matchers(p.get("query"))) {
        (Ok(b), Ok(m)) => (b, m),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let mut values: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for l in store.streams(&matchers, start, end) {
        for l in l.iter() {
            values.entry(l.name.clone()).or_default().insert(l.value.clone());
        }
    }
    let detected: Vec<Value> = values
        .into_iter()
        .filter(|(name, vals)| {
            matches!(name.as_str(), "cluster" | "namespace" | "instance" | "pod")
                || !(vals.len() > 2 && vals.iter().all(|v| looks_like_id(v)))
        })
        .map(|(name, vals)| json!({"label": name, "cardinality": vals.len()}))
        .collect();
    axum::Json(json!({"detectedLabels": detected})).into_response()
}

async fn buildinfo() -> Response {
    axum::Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": ""
    }))
    .into_response()
}

async fn format_query(p: Params) -> Response {
    let q = p.get("query").unwrap_or("");
    match parse(q) {
        Ok(_) => axum::Json(json!({"status": "success", "data": q.trim()})).into_response(),
        Err(e) => bad(e.0),
    }
}

// ---- tail ---------------------------------------------------------------------

/// Most seconds `delay_for` may ask for (Loki's `maxDelayForInTailing`).
const MAX_TAIL_DELAY_SECS: u64 = 5;

/// `GET /loki/api/v1/tail` (WebSocket): first the entries since `start` (default
/// an hour ago, at most `limit`, oldest first), then every entry the query
/// selects as it becomes searchable, each message
/// `{"streams": [...], "dropped_entries": null}` as Loki sends it. `delay_for`
/// (0–5 s) holds entries back that long and sends them in timestamp order.
/// Parameter errors answer 400 before the upgrade, as Loki's do.
async fn tail(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let Some(store) = s.logs.clone() else { return no_store() };
    let p = crate::prometheus::Params::from_query(raw.as_deref());
    let expr = match parse(p.get("query").unwrap_or("")) {
        Ok(logql::ast::Expr::Log(l)) => l,
        Ok(_) => return bad("tail queries must be log queries"),
        Err(e) => return bad(e.0),
    };
    let limit = match limit(&p) {
        Ok(l) if l > MAX_ENTRIES => {
            return bad(format!(
                "max entries limit per query exceeded, limit > max_entries_limit_per_query ({l} > {MAX_ENTRIES})"
            ));
        }
        Ok(l) => l,
        Err(r) => return r,
    };
    let delay = match p.get("delay_for") {
        None | Some("") => 0,
        Some(v) => match v.parse::<u64>() {
            Ok(d) if d > MAX_TAIL_DELAY_SECS => {
                return bad(format!("delay_for can't be greater than {MAX_TAIL_DELAY_SECS}"));
            }
            Ok(d) => d,
            Err(_) => return bad(format!("strconv.Atoi: parsing {v:?}: invalid syntax")),
        },
    };
    let start = match param_ts(&p, "start") {
        Ok(t) => t.unwrap_or_else(|| now_ns() - 3600 * 1_000_000_000),
        Err(r) => return r,
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return e.into_response(),
    };
    let session = TailSession {
        store,
        expr: std::sync::Arc::new(expr),
        start,
        limit,
        delay: std::time::Duration::from_secs(delay),
    };
    ws.on_upgrade(move |socket| session.run(socket))
}

struct TailSession {
    store: sextant_logs::LogStore,
    expr: std::sync::Arc<logql::ast::LogExpr>,
    start: i64,
    limit: usize,
    delay: std::time::Duration,
}

/// An entry held back by `delay_for`: when it may go, and what it is.
type Delayed = (std::time::Instant, Labels, logql::EntryResult);

impl TailSession {
    async fn run(self, mut socket: WebSocket) {
        use std::collections::HashSet;
        use tokio::sync::broadcast::error::RecvError;

        // Subscribe before reading history, so nothing indexed in between is
        // missed; what both see is sent once (the history's entries are remembered).
        let mut live = self.store.subscribe();
        let params = QueryParams {
            start: self.start,
            end: now_ns(),
            step: 0,
            limit: self.limit,
            direction: Direction::Forward,
        };
        let (store, expr) = (self.store.clone(), logql::ast::Expr::Log((*self.expr).clone()));
        let history = match tokio::task::spawn_blocking(move || logql::evaluate(&store, &expr, &params)).await {
            Ok(Ok((QueryResult::Streams(s), _))) => s,
            Ok(Ok(_)) => Vec::new(),
            Ok(Err(e)) => {
                let _ = socket.send(Message::Close(Some(close_frame(&e.to_string())))).await;
                return;
            }
            Err(e) => {
                let _ = socket.send(Message::Close(Some(close_frame(&e.to_string())))).await;
                return;
            }
        };
        let mut seen: HashSet<(Labels, i64, String)> = history
            .iter()
            .flat_map(|s| s.entries.iter().map(|e| (s.labels.clone(), e.ts, e.line.clone())))
            .collect();
        if !history.is_empty() && socket.send(tail_message(history)).await.is_err() {
            return;
        }
        let mut held: Vec<Delayed> = Vec::new();
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
        loop {
            tokio::select! {
                incoming = socket.recv() => match incoming {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    Some(Ok(_)) => {}
                },
                batch = live.recv() => {
                    let batch = match batch {
                        Ok(b) => b,
                        Err(RecvError::Lagged(n)) => {
                            tracing::warn!(batches = n, "a tail client fell behind; entries were skipped");
                            continue;
                        }
                        Err(RecvError::Closed) => return,
                    };
                    let expr = self.expr.clone();
                    let Ok(found) = tokio::task::spawn_blocking(move || logql::tail_matches(&expr, &batch)).await else {
                        return;
                    };
                    let due = std::time::Instant::now() + self.delay;
                    for s in found {
                        for e in s.entries {
                            if seen.is_empty() || !seen.remove(&(s.labels.clone(), e.ts, e.line.clone())) {
                                held.push((due, s.labels.clone(), e));
                            }
                        }
                    }
                    if self.delay.is_zero() && !held.is_empty() && socket.send(tail_message(take_due(&mut held))).await.is_err() {
                        return;
                    }
                }
                _ = tick.tick(), if !held.is_empty() => {
                    let ready = take_due(&mut held);
                    if !ready.is_empty() && socket.send(tail_message(ready)).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// The held entries whose delay is over, grouped into streams in timestamp order.
fn take_due(held: &mut Vec<Delayed>) -> Vec<logql::StreamResult> {
    let now = std::time::Instant::now();
    let mut ready: Vec<Delayed> = Vec::new();
    held.retain(|d| {
        if d.0 <= now {
            ready.push(d.clone());
            false
        } else {
            true
        }
    });
    ready.sort_by_key(|d| d.2.ts);
    let mut streams: BTreeMap<Labels, Vec<logql::EntryResult>> = BTreeMap::new();
    for (_, labels, e) in ready {
        streams.entry(labels).or_default().push(e);
    }
    streams
        .into_iter()
        .map(|(labels, entries)| logql::StreamResult { labels, entries })
        .collect()
}

fn tail_message(streams: Vec<logql::StreamResult>) -> Message {
    let (result, _) = result_json(&QueryResult::Streams(streams), false);
    Message::Text(json!({"streams": result, "dropped_entries": null}).to_string().into())
}

fn close_frame(reason: &str) -> axum::extract::ws::CloseFrame {
    // A close reason is at most 123 bytes; cut on a character boundary.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    axum::extract::ws::CloseFrame {
        code: axum::extract::ws::close_code::ERROR,
        reason: reason[..end].to_owned().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_strings_parse() {
        let l = parse_label_string(r#"{app="x", env="a \"b\""}"#).unwrap();
        assert_eq!(l.get("env"), Some("a \"b\""));
        assert!(parse_label_string("app=x").is_err());
        assert_eq!(parse_label_string("{}").unwrap(), Labels::empty());
    }

    #[test]
    fn timestamps_as_loki_reads_them() {
        assert_eq!(parse_ts("4000000000").unwrap(), 4_000_000_000_000_000_000);
        assert_eq!(parse_ts("1700000000000000000").unwrap(), 1_700_000_000_000_000_000);
        assert_eq!(parse_ts("1.5").unwrap(), 1_500_000_000);
        assert_eq!(parse_ts("2024-01-01T00:00:00Z").unwrap(), 1_704_067_200_000_000_000);
        assert_eq!(ts_seconds(4_000_000_000_000), json!(4000000000i64));
        assert_eq!(go_float(2.0), "2");
        assert_eq!(go_float(f64::INFINITY), "+Inf");
    }
}
