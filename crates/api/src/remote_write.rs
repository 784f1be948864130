//! `POST /api/v1/write`: the remote_write 1.0 receiver.
//!
//! 204 once the samples are durable; 400 for malformed bodies and invalid series
//! (nothing stored) or for samples refused by the out-of-order rule (the rest stored);
//! 413 over the size limits, checked before decompressing; 503 with `Retry-After` when
//! the write queue is full or the store is unavailable.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use sextant_collect::remote_write::{DecodeError, decode_with};

use crate::AppState;
use crate::error::write_error_status;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/write", post(write))
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut m = msg.into();
    m.push('\n');
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], m).into_response()
}

async fn write(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let max = s.limits.remote_write_max_compressed_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(len) = declared.filter(|l| *l > max) {
        s.metrics.reject("too_large");
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body of {len} bytes exceeds the limit of {max} bytes"),
        );
    }
    let bytes = match axum::body::to_bytes(body, max).await {
        Ok(b) => b,
        Err(_) => {
            s.metrics.reject("too_large");
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body exceeds the limit of {max} bytes"),
            );
        }
    };
    let store = &s.store;
    let req = match decode_with(&bytes, max, s.limits.remote_write_max_decompressed_bytes, |h, p| {
        store.lookup(h, p)
    }) {
        Ok(r) => r,
        Err(e @ DecodeError::TooLarge { .. }) => {
            s.metrics.reject("too_large");
            return text(StatusCode::PAYLOAD_TOO_LARGE, e.to_string());
        }
        Err(e) => {
            s.metrics.reject("malformed");
            return text(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    match s.store.try_append(req).await {
        Ok(outcome) if outcome.rejected() == 0 => StatusCode::NO_CONTENT.into_response(),
        Ok(o) => {
            s.metrics.reject("out_of_order");
            text(
                StatusCode::BAD_REQUEST,
                format!(
                    "{} samples stored; refused: {} out of order, {} duplicate timestamps with different values, {} older than retention",
                    o.accepted, o.out_of_order, o.duplicate_conflicts, o.too_old
                ),
            )
        }
        Err(e) => {
            s.metrics.reject(match e.kind() {
                sextant_store::ErrorKind::BadInput => "invalid_series",
                sextant_store::ErrorKind::Overloaded => "overloaded",
                sextant_store::ErrorKind::Unavailable => "unavailable",
                _ => "internal",
            });
            let (status, retry_after) = write_error_status(e.kind());
            let mut resp = text(status, e.to_string());
            if let Some(r) = retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static(r));
            }
            resp
        }
    }
}
