//! The one place where errors become HTTP responses.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sextant_store::ErrorKind;

/// Prometheus' `errorType` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// Invalid parameters (400).
    BadData,
    /// Query execution failed (422).
    Execution,
    /// Server-side failure (500).
    Internal,
    /// Temporarily unavailable (503).
    Unavailable,
    /// No such resource (404).
    NotFound,
    /// The query timed out (503).
    Timeout,
    /// The resource is not in a state that allows the request (409).
    Conflict,
}

impl ErrorType {
    fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Internal => "internal",
            ErrorType::Unavailable => "unavailable",
            ErrorType::NotFound => "not_found",
            ErrorType::Timeout => "timeout",
            ErrorType::Conflict => "conflict",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            ErrorType::BadData => StatusCode::BAD_REQUEST,
            ErrorType::Conflict => StatusCode::CONFLICT,
            ErrorType::Execution => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::NotFound => StatusCode::NOT_FOUND,
            ErrorType::Timeout => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// An error answered with Prometheus' JSON envelope:
/// `{"status":"error","errorType":"bad_data","error":"..."}`.
#[derive(Debug)]
pub struct ApiError {
    /// The error type.
    pub kind: ErrorType,
    /// The message.
    pub message: String,
}

impl ApiError {
    /// A `bad_data` error.
    pub fn bad_data(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorType::BadData,
            message: message.into(),
        }
    }
}

impl From<sextant_store::Error> for ApiError {
    fn from(e: sextant_store::Error) -> Self {
        let kind = match e.kind() {
            ErrorKind::BadInput => ErrorType::BadData,
            ErrorKind::Overloaded | ErrorKind::Unavailable => ErrorType::Unavailable,
            ErrorKind::Incompatible | ErrorKind::Internal => ErrorType::Internal,
        };
        Self {
            kind,
            message: e.to_string(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    status: &'static str,
    error_type: &'static str,
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            status: "error",
            error_type: self.kind.as_str(),
            error: &self.message,
        };
        (self.kind.status(), Json(body)).into_response()
    }
}

/// Prometheus' success envelope: `{"status":"success","data":...}`.
#[derive(Serialize)]
pub struct Success<T: Serialize> {
    status: &'static str,
    data: T,
}

/// Wraps `data` in the success envelope.
pub fn success<T: Serialize>(data: T) -> Json<Success<T>> {
    Json(Success {
        status: "success",
        data,
    })
}

/// Status for a store error on the write path (plain-text bodies, as Prometheus'
/// receiver answers), with `Retry-After` where retrying helps.
pub(crate) fn write_error_status(kind: ErrorKind) -> (StatusCode, Option<&'static str>) {
    match kind {
        ErrorKind::BadInput => (StatusCode::BAD_REQUEST, None),
        // 503 rather than 429: Prometheus 2.42 senders retry 5xx but drop on 429 unless
        // `retry_on_http_429` is set, and dropping is what overload must never cause.
        ErrorKind::Overloaded | ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, Some("1")),
        ErrorKind::Incompatible | ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, None),
    }
}

/// An error of the Alertmanager-compatible API, with the body Alertmanager 0.25
/// answers: go-swagger's `{"code":N,"message":"..."}` for requests that do not fit
/// the API's schema, a bare JSON string from its handlers, or Prometheus' envelope
/// for the v1 API and Sextant's own incident routes.
#[derive(Debug)]
pub enum AmError {
    /// `{"code":N,"message":"..."}`.
    Swagger {
        /// HTTP status.
        status: StatusCode,
        /// go-swagger's code (400, 422's 601/602/612, ...).
        code: u16,
        /// Message.
        message: String,
    },
    /// A JSON string.
    Text {
        /// HTTP status.
        status: StatusCode,
        /// Message.
        message: String,
    },
    /// Prometheus' envelope.
    Prometheus(ApiError),
}

impl AmError {
    /// A go-swagger error body.
    pub fn swagger(status: StatusCode, code: u16, message: String) -> Self {
        AmError::Swagger { status, code, message }
    }

    /// A JSON-string body with this status.
    pub fn text(status: StatusCode, message: impl Into<String>) -> Self {
        AmError::Text {
            status,
            message: message.into(),
        }
    }

    /// A JSON-string body, 400.
    pub fn text400(message: impl Into<String>) -> Self {
        Self::text(StatusCode::BAD_REQUEST, message)
    }

    /// Prometheus' `bad_data`.
    pub fn prometheus_bad_data(message: impl Into<String>) -> Self {
        AmError::Prometheus(ApiError::bad_data(message))
    }

    /// Prometheus' `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        AmError::Prometheus(ApiError {
            kind: ErrorType::NotFound,
            message: message.into(),
        })
    }
}

impl IntoResponse for AmError {
    fn into_response(self) -> Response {
        match self {
            AmError::Swagger { status, code, message } => {
                (status, Json(serde_json::json!({"code": code, "message": message}))).into_response()
            }
            AmError::Text { status, message } => (status, Json(message)).into_response(),
            AmError::Prometheus(e) => e.into_response(),
        }
    }
}
