//! The OTLP receiver, shared by every signal: OTLP/HTTP on the main port
//! (`POST /v1/logs`, `/v1/metrics`, `/v1/traces`; also Loki's `/otlp/v1/logs` and Prometheus'
//! `/api/v1/otlp/v1/metrics`) and OTLP/gRPC services for a second port, with the
//! specification's answers: 200 (with `partial_success` for what was refused),
//! 400 with a `google.rpc.Status` body in the request's encoding, 413 over the
//! size cap (checked while decompressing), 415 for other content types, 429/503
//! with `Retry-After` under overload.

// Helpers return the finished error response; it is built once per failed
// request, so its size on the error path does not matter.
#![allow(clippy::result_large_err)]

use std::io::Read;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use prost::Message;
use sextant_model::Sample;
use sextant_otlp::proto::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse, logs_service_server,
};
use sextant_otlp::proto::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse, metrics_service_server,
};
use sextant_otlp::proto::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse, trace_service_server,
};

use crate::AppState;

/// Largest OTLP request after decompression (the specification recommends 64 MiB).
pub const MAX_OTLP_BYTES: usize = 64 << 20;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/logs", post(logs_http))
        .route("/otlp/v1/logs", post(logs_http))
        .route("/v1/metrics", post(metrics_http))
        .route("/api/v1/otlp/v1/metrics", post(metrics_http))
        .route("/v1/traces", post(traces_http))
}

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// Why an export failed as a whole.
#[derive(Debug)]
pub enum ExportError {
    /// The data is invalid (400 / INVALID_ARGUMENT).
    BadRequest(String),
    /// A rate or size limit: retry later (429 / RESOURCE_EXHAUSTED with a delay).
    Throttled(String),
    /// The store cannot take writes now (503 / UNAVAILABLE).
    Unavailable(String),
    /// The signal is not enabled (404 / UNIMPLEMENTED).
    Disabled(String),
    /// Anything else (500 / INTERNAL).
    Internal(String),
}

/// Writes the log records of a request; the answer carries a partial success for
/// what was refused.
pub async fn export_logs(
    s: &AppState,
    req: &ExportLogsServiceRequest,
) -> Result<ExportLogsServiceResponse, ExportError> {
    let partial = write_logs(s, req).await?;
    Ok(ExportLogsServiceResponse {
        partial_success: partial.map(|(rejected_log_records, error_message)| ExportLogsPartialSuccess {
            rejected_log_records,
            error_message,
        }),
    })
}

/// Writes the log records; `Some((rejected, why))` for a partial success.
async fn write_logs(s: &AppState, req: &ExportLogsServiceRequest) -> Result<Option<(i64, String)>, ExportError> {
    let Some(store) = s.logs.clone() else {
        return Err(ExportError::Disabled("logs are not enabled on this Sextant".into()));
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    let streams = sextant_otlp::logs::to_streams(req, now);
    if streams.iter().all(|s| s.entries.is_empty()) {
        return Ok(None);
    }
    match store.push(streams).await {
        Ok(_) => Ok(None),
        Err(e) if e.status == 400 => Ok(Some((e.rejected as i64, e.message))),
        Err(e) if e.status == 429 => Err(ExportError::Throttled(e.message)),
        Err(e) => Err(ExportError::Internal(e.message)),
    }
}

/// Writes the metrics of a request; the answer carries a partial success for what
/// was refused.
pub async fn export_metrics(
    s: &AppState,
    req: &ExportMetricsServiceRequest,
) -> Result<ExportMetricsServiceResponse, ExportError> {
    let partial = write_metrics(s, req).await?;
    Ok(ExportMetricsServiceResponse {
        partial_success: partial.map(|(rejected_data_points, error_message)| ExportMetricsPartialSuccess {
            rejected_data_points,
            error_message,
        }),
    })
}

/// Writes the metrics; `Some((rejected, why))` for a partial success.
async fn write_metrics(s: &AppState, req: &ExportMetricsServiceRequest) -> Result<Option<(i64, String)>, ExportError> {
    let t = sextant_otlp::metrics::translate(req);
    let mut rejected = t.rejected;
    let mut reasons = t.reasons;
    if !t.series.is_empty() {
        let append = sextant_store::AppendRequest {
            series: t
                .series
                .into_iter()
                .map(|(labels, samples)| sextant_store::SeriesSamples {
                    labels,
                    samples: samples.into_iter().map(|(t_ms, v)| Sample { t_ms, v }).collect(),
                })
                .collect(),
            by_ref: Vec::new(),
            samples_by_ref: Vec::new(),
            metadata: t.metadata,
        };
        match s.store.try_append(append).await {
            Ok(o) => {
                let refused = o.rejected();
                if refused > 0 {
                    rejected += refused as i64;
                    reasons.push(format!(
                        "{refused} samples refused: {} out of order, {} duplicate timestamps with different values, {} older than retention",
                        o.out_of_order, o.duplicate_conflicts, o.too_old
                    ));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                return Err(match e.kind() {
                    sextant_store::ErrorKind::BadInput => ExportError::BadRequest(msg),
                    sextant_store::ErrorKind::Overloaded | sextant_store::ErrorKind::Unavailable => {
                        ExportError::Unavailable(msg)
                    }
                    _ => ExportError::Internal(msg),
                });
            }
        }
    }
    Ok((rejected > 0 || !reasons.is_empty()).then(|| (rejected, reasons.join("; "))))
}

/// Stores the spans of a request; the answer carries a partial success for what
/// was refused. A success means the spans are durable and searchable.
pub async fn export_traces(
    s: &AppState,
    req: &ExportTraceServiceRequest,
) -> Result<ExportTraceServiceResponse, ExportError> {
    let Some(store) = s.traces.clone() else {
        return Err(ExportError::Disabled("traces are not enabled on this Sextant".into()));
    };
    match store.write(req).await {
        Ok(o) => Ok(ExportTraceServiceResponse {
            partial_success: (o.rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: o.rejected as i64,
                error_message: o.reasons.join("; "),
            }),
        }),
        Err(e) => {
            let msg = e.to_string();
            Err(match e.kind() {
                sextant_traces::ErrorKind::BadInput => ExportError::BadRequest(msg),
                sextant_traces::ErrorKind::Overloaded => ExportError::Throttled(msg),
                sextant_traces::ErrorKind::Unavailable => ExportError::Unavailable(msg),
                sextant_traces::ErrorKind::Internal => ExportError::Internal(msg),
            })
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

fn plain(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg.to_owned(),
    )
        .into_response()
}

/// An error answer: `google.rpc.Status` in the request's encoding.
fn status_body(enc: Encoding, status: StatusCode, code: i32, message: &str) -> Response {
    let body = match enc {
        Encoding::Protobuf => RpcStatus {
            code,
            message: message.to_owned(),
        }
        .encode_to_vec(),
        Encoding::Json => {
            serde_json::to_vec(&serde_json::json!({"code": code, "message": message})).unwrap_or_default()
        }
    };
    let mut r = (status, [(header::CONTENT_TYPE, enc.content_type())], body).into_response();
    if matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

fn error_response(enc: Encoding, e: ExportError) -> Response {
    match e {
        ExportError::BadRequest(m) => status_body(enc, StatusCode::BAD_REQUEST, 3, &m),
        ExportError::Throttled(m) => status_body(enc, StatusCode::TOO_MANY_REQUESTS, 8, &m),
        ExportError::Unavailable(m) => status_body(enc, StatusCode::SERVICE_UNAVAILABLE, 14, &m),
        ExportError::Disabled(m) => status_body(enc, StatusCode::NOT_FOUND, 12, &m),
        ExportError::Internal(m) => status_body(enc, StatusCode::INTERNAL_SERVER_ERROR, 13, &m),
    }
}

/// The content type and the decompressed body, or the answer to give.
async fn read_request(headers: &HeaderMap, body: Body) -> Result<(Encoding, Vec<u8>), Response> {
    let enc = match crate::media_type(headers).as_str() {
        "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        _ => {
            return Err(plain(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "415 unsupported media type, supported: [application/json, application/x-protobuf]",
            ));
        }
    };
    let too_large = || {
        status_body(
            enc,
            StatusCode::PAYLOAD_TOO_LARGE,
            8,
            &format!("request body exceeds the limit of {MAX_OTLP_BYTES} bytes"),
        )
    };
    let raw = axum::body::to_bytes(body, MAX_OTLP_BYTES)
        .await
        .map_err(|_| too_large())?;
    let bytes = match crate::content_encoding(headers).as_str() {
        "" | "identity" => raw.to_vec(),
        "gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&raw[..])
                .take(MAX_OTLP_BYTES as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| status_body(enc, StatusCode::BAD_REQUEST, 3, &format!("gzip: {e}")))?;
            if out.len() > MAX_OTLP_BYTES {
                return Err(too_large());
            }
            out
        }
        other => {
            return Err(status_body(
                enc,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                3,
                &format!("unsupported Content-Encoding {other:?}: only gzip or none"),
            ));
        }
    };
    Ok((enc, bytes))
}

fn success<M: Message + serde_like::ToJson>(enc: Encoding, msg: M) -> Response {
    let body = match enc {
        Encoding::Protobuf => msg.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&msg.to_json()).unwrap_or_default(),
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, enc.content_type())], body).into_response()
}

/// The JSON form of the two responses (partial success in camelCase).
mod serde_like {
    use super::*;

    pub trait ToJson {
        fn to_json(&self) -> serde_json::Value;
    }

    impl ToJson for ExportLogsServiceResponse {
        fn to_json(&self) -> serde_json::Value {
            match &self.partial_success {
                None => serde_json::json!({}),
                Some(p) => {
                    serde_json::json!({"partialSuccess": {"rejectedLogRecords": p.rejected_log_records.to_string(), "errorMessage": p.error_message}})
                }
            }
        }
    }

    impl ToJson for ExportTraceServiceResponse {
        fn to_json(&self) -> serde_json::Value {
            match &self.partial_success {
                None => serde_json::json!({}),
                Some(p) => {
                    serde_json::json!({"partialSuccess": {"rejectedSpans": p.rejected_spans.to_string(), "errorMessage": p.error_message}})
                }
            }
        }
    }

    impl ToJson for ExportMetricsServiceResponse {
        fn to_json(&self) -> serde_json::Value {
            match &self.partial_success {
                None => serde_json::json!({}),
                Some(p) => {
                    serde_json::json!({"partialSuccess": {"rejectedDataPoints": p.rejected_data_points.to_string(), "errorMessage": p.error_message}})
                }
            }
        }
    }
}

/// Reads an OTLP/HTTP request of one signal and decodes it (protobuf, or OTLP/JSON
/// with `json`); the answer to give when that fails.
async fn decode_http<R: Message + Default>(
    headers: &HeaderMap,
    body: Body,
    signal: &str,
    json: fn(&[u8]) -> Result<R, String>,
) -> Result<(Encoding, R), Response> {
    let (enc, bytes) = read_request(headers, body).await?;
    let req = match enc {
        Encoding::Protobuf => R::decode(bytes.as_slice()).map_err(|e| e.to_string()),
        Encoding::Json => json(&bytes),
    };
    req.map(|r| (enc, r)).map_err(|e| {
        status_body(
            enc,
            StatusCode::BAD_REQUEST,
            3,
            &format!("invalid OTLP {signal} request: {e}"),
        )
    })
}

async fn logs_http(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    match decode_http(&headers, body, "logs", sextant_otlp::json::logs_request).await {
        Ok((enc, req)) => match export_logs(&s, &req).await {
            Ok(answer) => success(enc, answer),
            Err(e) => error_response(enc, e),
        },
        Err(r) => r,
    }
}

async fn metrics_http(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    match decode_http(&headers, body, "metrics", sextant_otlp::json::metrics_request).await {
        Ok((enc, req)) => match export_metrics(&s, &req).await {
            Ok(answer) => success(enc, answer),
            Err(e) => error_response(enc, e),
        },
        Err(r) => r,
    }
}

async fn traces_http(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    match decode_http(&headers, body, "traces", sextant_otlp::json::traces_request).await {
        Ok((enc, req)) => match export_traces(&s, &req).await {
            Ok(answer) => success(enc, answer),
            Err(e) => error_response(enc, e),
        },
        Err(r) => r,
    }
}

fn grpc_status(e: ExportError) -> tonic::Status {
    match e {
        ExportError::BadRequest(m) => tonic::Status::invalid_argument(m),
        ExportError::Throttled(m) | ExportError::Unavailable(m) => tonic::Status::unavailable(m),
        ExportError::Disabled(m) => tonic::Status::unimplemented(m),
        ExportError::Internal(m) => tonic::Status::internal(m),
    }
}

/// The OTLP gRPC services over the same stores.
#[derive(Clone)]
pub struct OtlpGrpc {
    state: AppState,
}

#[tonic::async_trait]
impl logs_service_server::LogsService for OtlpGrpc {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        export_logs(&self.state, request.get_ref())
            .await
            .map(tonic::Response::new)
            .map_err(grpc_status)
    }
}

#[tonic::async_trait]
impl metrics_service_server::MetricsService for OtlpGrpc {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        export_metrics(&self.state, request.get_ref())
            .await
            .map(tonic::Response::new)
            .map_err(grpc_status)
    }
}

#[tonic::async_trait]
impl trace_service_server::TraceService for OtlpGrpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        export_traces(&self.state, request.get_ref())
            .await
            .map(tonic::Response::new)
            .map_err(grpc_status)
    }
}

/// Serves OTLP/gRPC (logs, metrics and traces; gzip accepted and sent) on `listener`
/// until `shutdown` completes.
pub async fn serve_grpc(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), String> {
    use tonic::codec::CompressionEncoding;
    let svc = OtlpGrpc { state };
    let logs = logs_service_server::LogsServiceServer::new(svc.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_OTLP_BYTES);
    let metrics = metrics_service_server::MetricsServiceServer::new(svc.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_OTLP_BYTES);
    let traces = trace_service_server::TraceServiceServer::new(svc)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_OTLP_BYTES);
    tonic::transport::Server::builder()
        .add_service(logs)
        .add_service(metrics)
        .add_service(traces)
        .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), shutdown)
        .await
        .map_err(|e| e.to_string())
}
