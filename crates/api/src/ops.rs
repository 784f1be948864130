//! Operations endpoints: `/metrics`, `/node/metrics`, `/-/healthy`, `/-/ready`, `/-/reload`.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sextant_expfmt::{OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};

use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(own_metrics))
        .route("/node/metrics", get(node_metrics))
        .route("/-/healthy", get(|| async { "Sextant is Healthy.\n" }))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload).put(reload))
}

async fn own_metrics(State(s): State<AppState>) -> Response {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &s.registry) {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("encoding metrics: {e}\n")).into_response(),
    }
}

async fn node_metrics(State(s): State<AppState>) -> Response {
    let node = s.node.clone();
    match tokio::task::spawn_blocking(move || node.gather()).await {
        Ok(body) => ([(header::CONTENT_TYPE, TEXT_CONTENT_TYPE)], body).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("node collector failed: {e}\n"),
        )
            .into_response(),
    }
}

async fn ready(State(s): State<AppState>) -> Response {
    if s.is_ready() {
        (StatusCode::OK, "Sextant is Ready.\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n").into_response()
    }
}

async fn reload(State(s): State<AppState>) -> Response {
    let Some(reload) = s.reload.clone() else {
        return (
            StatusCode::BAD_REQUEST,
            "no configuration file to reload: Sextant runs on embedded defaults\n",
        )
            .into_response();
    };
    match reload().await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
    }
}

/// The operations endpoints of drop-in Alertmanager mode (`sextant alertmanager`):
/// `/metrics`, `/-/healthy`, `/-/ready`, `/-/reload`, under the route prefix.
pub(crate) fn alertmanager_ops(
    prefix: &str,
    registry: std::sync::Arc<prometheus_client::registry::Registry>,
    reload_fn: Option<crate::ReloadFn>,
) -> Router {
    let metrics = move || {
        let registry = registry.clone();
        async move {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, &registry) {
                Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], body).into_response(),
                Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("encoding metrics: {e}\n")).into_response(),
            }
        }
    };
    let reload = move || {
        let reload_fn = reload_fn.clone();
        async move {
            match reload_fn {
                None => (StatusCode::BAD_REQUEST, "no configuration file to reload\n").into_response(),
                Some(f) => match f().await {
                    Ok(()) => StatusCode::OK.into_response(),
                    Err(e) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("failed to reload config: {e}\n"),
                    )
                        .into_response(),
                },
            }
        }
    };
    let r = Router::new()
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(|| async { "OK" }).head(|| async { "" }))
        .route("/-/ready", get(|| async { "OK" }).head(|| async { "" }))
        .route("/-/reload", post(reload));
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        r
    } else {
        Router::new().nest(prefix, r)
    }
}
