//! PromQL endpoints: `/api/v1/query`, `/api/v1/query_range`, `/api/v1/format_query`,
//! `/api/v1/query_exemplars`, with Prometheus' parameters, JSON and error types.

use std::fmt::Write as _;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sextant_model::Labels;
use sextant_model::time::{now_ms, parse_duration};
use sextant_promql::{Error as QueryError, QueryRange, QueryValue, write_value};

use crate::AppState;
use crate::error::{ApiError, ErrorType, success};
use crate::prometheus::Params;
use crate::query_log::QueryLogEntry;

/// Most points a range query may return per series, as in Prometheus.
const MAX_POINTS_PER_SERIES: i64 = 11_000;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/format_query", get(format_query).post(format_query))
        .route("/api/v1/query_exemplars", get(query_exemplars).post(query_exemplars))
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        let kind = match &e {
            QueryError::BadData(_) => ErrorType::BadData,
            QueryError::Execution(_) | QueryError::TooManySamples(_) => ErrorType::Execution,
            QueryError::Timeout(_) => ErrorType::Timeout,
            QueryError::Storage(_) => ErrorType::Internal,
        };
        ApiError {
            kind,
            message: e.to_string(),
        }
    }
}

/// A duration parameter: float seconds or a Prometheus duration, as Prometheus'
/// `parseDuration` accepts.
fn duration_param(p: &Params, name: &str) -> Result<Option<Duration>, ApiError> {
    let Some(v) = p.get(name).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_data(format!(
            "invalid parameter {name:?}: cannot parse {v:?} to a valid duration"
        ))
    };
    if let Ok(secs) = v.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 || secs * 1000.0 > i64::MAX as f64 {
            return Err(bad());
        }
        return Ok(Some(Duration::from_secs_f64(secs)));
    }
    parse_duration(v).map(Some).map_err(|_| bad())
}

fn parse_query(p: &Params) -> Result<sextant_promql::Expr, ApiError> {
    let q = p.get("query").unwrap_or("");
    sextant_promql::parse(q).map_err(|e| ApiError::bad_data(format!("invalid parameter \"query\": {e}")))
}

fn timeout(s: &AppState, p: &Params) -> Result<Duration, ApiError> {
    let engine_timeout = s.engine.options().timeout;
    Ok(duration_param(p, "timeout")?.map_or(engine_timeout, |t| t.min(engine_timeout)))
}

async fn query(State(s): State<AppState>, p: Params) -> Result<Response, ApiError> {
    let expr = parse_query(&p)?;
    let t = p.time("time", now_ms())?;
    let timeout = timeout(&s, &p)?;
    let started = std::time::Instant::now();
    let value = s.engine.run_instant(&s.store, &expr, t, timeout).await?;
    s.query_log.record(QueryLogEntry {
        path: "/api/v1/query",
        query: p.get("query").unwrap_or("").to_owned(),
        start_ms: t,
        end_ms: t,
        step_ms: 0,
        elapsed: started.elapsed(),
    });
    Ok(json_response(value, None))
}

async fn query_range(State(s): State<AppState>, p: Params) -> Result<Response, ApiError> {
    let start = p.required_time("start")?;
    let end = p.required_time("end")?;
    if end < start {
        return Err(ApiError::bad_data(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    let step = match duration_param(&p, "step")? {
        Some(d) => d.as_millis() as i64,
        None => {
            return Err(ApiError::bad_data(
                "invalid parameter \"step\": cannot parse \"\" to a valid duration",
            ));
        }
    };
    if step <= 0 {
        return Err(ApiError::bad_data(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > MAX_POINTS_PER_SERIES {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let expr = parse_query(&p)?;
    let timeout = timeout(&s, &p)?;
    let range = QueryRange {
        start_ms: start,
        end_ms: end,
        step_ms: step,
    };
    let started = std::time::Instant::now();
    let value = s.engine.run_range(&s.store, &expr, range, timeout).await?;
    s.query_log.record(QueryLogEntry {
        path: "/api/v1/query_range",
        query: p.get("query").unwrap_or("").to_owned(),
        start_ms: start,
        end_ms: end,
        step_ms: step,
        elapsed: started.elapsed(),
    });
    Ok(json_response(value, TimeGrid::of(range)))
}

async fn format_query(p: Params) -> Result<impl IntoResponse, ApiError> {
    let expr = parse_query(&p)?;
    Ok(success(expr.prettify()))
}

/// Sextant does not store exemplars yet, so every valid request gets an empty list,
/// which is what Prometheus answers when it holds none.
async fn query_exemplars(p: Params) -> Result<impl IntoResponse, ApiError> {
    parse_query(&p)?;
    let (_start, _end) = p.range()?;
    Ok(success(Vec::<()>::new()))
}

/// Streams the success envelope, written by hand: results can be tens of megabytes,
/// and Prometheus' number formats (timestamps in seconds with millisecond precision,
/// values as strings) are not serde's. Chunks of about [`CHUNK`] bytes are produced as
/// the client reads, so a large answer never sits in memory whole.
fn json_response(v: QueryValue, grid: Option<TimeGrid>) -> Response {
    let chunks = JsonChunks {
        grid: grid.filter(|_| matches!(v, QueryValue::Matrix(_))),
        value: v,
        next: 0,
        started: false,
        finished: false,
    };
    (
        [(header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(futures_util::stream::iter(chunks)),
    )
        .into_response()
}

const CHUNK: usize = 256 << 10;

/// A range query's evaluation times, each written once: every series of a matrix has
/// its points at these times, and printing the same timestamps for 6,000 series was
/// a twentieth of a large query's time.
struct TimeGrid {
    start_ms: i64,
    step_ms: i64,
    /// The times as [`write_timestamp`] writes them, one after another.
    text: String,
    /// Where each time's text ends in `text`.
    ends: Vec<usize>,
}

impl TimeGrid {
    /// Grids longer than Prometheus' limit of 11,000 points a series are not built.
    fn of(r: QueryRange) -> Option<Self> {
        let step_ms = r.step_ms.max(1);
        let n = (r.end_ms.checked_sub(r.start_ms)? / step_ms).checked_add(1)?;
        if !(1..=11_000).contains(&n) {
            return None;
        }
        let mut text = String::with_capacity(16 * n as usize);
        let mut ends = Vec::with_capacity(n as usize);
        for i in 0..n {
            write_timestamp(&mut text, r.start_ms + i * step_ms);
            ends.push(text.len());
        }
        Some(Self {
            start_ms: r.start_ms,
            step_ms,
            text,
            ends,
        })
    }

    /// `t_ms`'s text, if it is one of the grid's times.
    fn get(&self, t_ms: i64) -> Option<&str> {
        let d = t_ms.checked_sub(self.start_ms)?;
        if d < 0 || d % self.step_ms != 0 {
            return None;
        }
        let i = usize::try_from(d / self.step_ms).ok()?;
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.text[start..end])
    }
}

/// The JSON of a query result, as an iterator of chunks.
struct JsonChunks {
    /// A range query's evaluation times, already written.
    grid: Option<TimeGrid>,
    value: QueryValue,
    /// The next series or sample to write.
    next: usize,
    started: bool,
    finished: bool,
}

impl Iterator for JsonChunks {
    type Item = Result<bytes::Bytes, std::convert::Infallible>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let mut out = String::with_capacity(CHUNK + 4096);
        if !self.started {
            self.started = true;
            out.push_str("{\"status\":\"success\",\"data\":{\"resultType\":\"");
            out.push_str(self.value.type_name());
            out.push_str("\",\"result\":");
            match &self.value {
                QueryValue::Scalar { t_ms, v } => write_point(&mut out, None, *t_ms, *v),
                QueryValue::String { t_ms, s } => {
                    out.push('[');
                    write_timestamp(&mut out, *t_ms);
                    out.push(',');
                    write_json_string(&mut out, s);
                    out.push(']');
                }
                QueryValue::Vector(_) | QueryValue::Matrix(_) => out.push('['),
            }
        }
        match &self.value {
            QueryValue::Vector(samples) => {
                while self.next < samples.len() && out.len() < CHUNK {
                    let s = &samples[self.next];
                    if self.next > 0 {
                        out.push(',');
                    }
                    out.push_str("{\"metric\":");
                    write_labels(&mut out, &s.labels);
                    out.push_str(",\"value\":");
                    write_point(&mut out, None, s.t_ms, s.v);
                    out.push('}');
                    self.next += 1;
                }
                if self.next == samples.len() {
                    out.push(']');
                    self.finished = true;
                }
            }
            QueryValue::Matrix(series) => {
                while self.next < series.len() && out.len() < CHUNK {
                    let s = &series[self.next];
                    if self.next > 0 {
                        out.push(',');
                    }
                    out.push_str("{\"metric\":");
                    write_labels(&mut out, &s.labels);
                    out.push_str(",\"values\":[");
                    for (j, p) in s.samples.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        write_point(&mut out, self.grid.as_ref(), p.t_ms, p.v);
                    }
                    out.push_str("]}");
                    self.next += 1;
                }
                if self.next == series.len() {
                    out.push(']');
                    self.finished = true;
                }
            }
            QueryValue::Scalar { .. } | QueryValue::String { .. } => self.finished = true,
        }
        if self.finished {
            out.push_str("}}");
        }
        Some(Ok(bytes::Bytes::from(out)))
    }
}

fn write_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_string(out, &l.name);
        out.push(':');
        write_json_string(out, &l.value);
    }
    out.push('}');
}

/// `[1435781451.781,"1"]`: seconds with up to three decimals, as Prometheus writes them
/// (taken from `grid` if it has them written).
fn write_point(out: &mut String, grid: Option<&TimeGrid>, t_ms: i64, value: f64) {
    out.push('[');
    match grid.and_then(|g| g.get(t_ms)) {
        Some(text) => out.push_str(text),
        None => write_timestamp(out, t_ms),
    }
    out.push_str(",\"");
    // Values never need JSON escaping.
    write_value(out, value);
    out.push_str("\"]");
}

pub(crate) fn write_timestamp(out: &mut String, t_ms: i64) {
    let secs = t_ms.div_euclid(1000);
    let ms = t_ms.rem_euclid(1000);
    if t_ms < 0 && ms != 0 {
        // -1.5s is written as -1.5, not -2.500.
        let abs = -t_ms;
        let _ = write!(out, "-{}", abs / 1000);
        write_fraction(out, abs % 1000);
        return;
    }
    out.push_str(itoa::Buffer::new().format(secs));
    write_fraction(out, ms);
}

fn write_fraction(out: &mut String, ms: i64) {
    if ms == 0 {
        return;
    }
    let s = format!("{ms:03}");
    out.push('.');
    out.push_str(s.trim_end_matches('0'));
}

fn write_json_string(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_querys_times_are_written_once_and_looked_up() {
        let g = TimeGrid::of(QueryRange {
            start_ms: 1_435_781_451_500,
            end_ms: 1_435_781_461_500,
            step_ms: 2_500,
        })
        .unwrap();
        assert_eq!(g.get(1_435_781_451_500), Some("1435781451.5"));
        assert_eq!(g.get(1_435_781_454_000), Some("1435781454"));
        assert_eq!(g.get(1_435_781_461_500), Some("1435781461.5"));
        // Off the grid, before or after it: written the usual way.
        assert_eq!(g.get(1_435_781_454_001), None);
        assert_eq!(g.get(1_435_781_449_000), None);
        assert_eq!(g.get(1_435_781_464_000), None);
        let mut a = String::new();
        write_point(&mut a, Some(&g), 1_435_781_456_500, 0.25);
        let mut b = String::new();
        write_point(&mut b, None, 1_435_781_456_500, 0.25);
        assert_eq!(a, b);
        assert_eq!(a, "[1435781456.5,\"0.25\"]");
        // Too many points for one series: no grid.
        assert!(
            TimeGrid::of(QueryRange {
                start_ms: 0,
                end_ms: 11_000,
                step_ms: 1,
            })
            .is_none()
        );
    }

    #[test]
    fn timestamps_like_prometheus() {
        let f = |ms| {
            let mut s = String::new();
            write_timestamp(&mut s, ms);
            s
        };
        assert_eq!(f(1_435_781_451_781), "1435781451.781");
        assert_eq!(f(1_435_781_451_000), "1435781451");
        assert_eq!(f(1_435_781_451_500), "1435781451.5");
        assert_eq!(f(1_435_781_451_050), "1435781451.05");
        assert_eq!(f(-1500), "-1.5");
        assert_eq!(f(0), "0");
    }
}
