//! Sextant's HTTP API: axum routers, wire types, and the mapping from domain errors to
//! HTTP status codes and Prometheus-style error bodies (in one place, [`error`]).
//!
//! [`app`] builds the whole router from an [`AppState`], so tests can drive it with
//! `tower::ServiceExt::oneshot` without a socket.

mod actions;
pub mod alertmanager;
pub mod auth;
pub mod error;
pub mod loki;
mod ops;
pub mod otlp;
mod prometheus;
mod query;
mod query_log;
mod remote_write;
mod selector;
mod slos;
mod status;
pub mod tempo;

pub use query_log::QueryLog;
pub use slos::openapi_document;
pub use status::StatusInfo;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use axum::Router;
use prometheus_client::registry::Registry;
use sextant_collect::ScrapeManager;
use sextant_node::NodeCollector;
use sextant_promql::Engine;
use sextant_rules::RuleManager;
use sextant_slo::SloEngine;
use sextant_store::MetricsStore;
use tower_http::trace::TraceLayer;

/// Re-reads the configuration and applies it; `Err` carries why the new config was
/// refused (the old one stays in force).
pub type ReloadFn = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// Limits on what the API accepts.
#[derive(Debug, Clone, Copy)]
pub struct ApiLimits {
    /// Largest remote_write body before decompression (413 above).
    pub remote_write_max_compressed_bytes: usize,
    /// Largest remote_write body after decompression, as announced by snappy (413 above).
    pub remote_write_max_decompressed_bytes: usize,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            remote_write_max_compressed_bytes: 32 << 20,
            remote_write_max_decompressed_bytes: 128 << 20,
        }
    }
}

/// The API's own metrics.
#[derive(Clone, Default)]
pub struct ApiMetrics {
    pub(crate) remote_write_rejected:
        prometheus_client::metrics::family::Family<RejectLabels, prometheus_client::metrics::counter::Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub(crate) struct RejectLabels {
    pub reason: &'static str,
}

impl ApiMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "sextant_remote_write_rejected_requests",
            "remote_write requests refused, by reason (malformed, too_large, invalid_series, out_of_order, overloaded, unavailable, internal)",
            m.remote_write_rejected.clone(),
        );
        m
    }

    pub(crate) fn reject(&self, reason: &'static str) {
        self.remote_write_rejected.get_or_create(&RejectLabels { reason }).inc();
    }
}

/// Handles to everything the API serves; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The metrics store.
    pub store: MetricsStore,
    /// The scrape manager (for `/api/v1/targets`).
    pub scrape: ScrapeManager,
    /// The PromQL engine (its options hold the query limits).
    pub engine: Engine,
    /// The rule manager (for `/api/v1/rules`).
    pub rules: RuleManager,
    /// The SLO engine (for `/api/sextant/v1/slos`).
    pub slo: SloEngine,
    /// What the status endpoints report.
    pub status: Arc<RwLock<StatusInfo>>,
    /// Sextant's own metrics, served at `/metrics`.
    pub registry: Arc<Registry>,
    /// The built-in node collector, served at `/node/metrics`.
    pub node: Arc<NodeCollector>,
    /// Config reload, for `POST /-/reload`.
    pub reload: Option<ReloadFn>,
    /// Request limits.
    pub limits: ApiLimits,
    /// The API's own metrics.
    pub metrics: ApiMetrics,
    /// False until start-up finished and after shutdown began (`/-/ready`).
    pub ready: Arc<AtomicBool>,
    /// Where answered queries are logged (`global.query_log_file`).
    pub query_log: Arc<QueryLog>,
    /// The alert router (Alertmanager's API, incidents).
    pub alertmanager: sextant_alertmanager::Alertmanager,
    /// Access control (`server.auth`).
    pub auth: auth::Auth,
    /// The action engine (workloads, policies, audit log).
    pub actions: sextant_act::ActionEngine,
    /// The log store (`None` when logs are disabled).
    pub logs: Option<sextant_logs::LogStore>,
    /// The trace store (`None` when traces are disabled).
    pub traces: Option<sextant_traces::TraceStore>,
}

impl AppState {
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let am = alertmanager::router(
        alertmanager::AlertmanagerApi {
            am: state.alertmanager.clone(),
        },
        "",
    );
    let auth = state.auth.clone();
    Router::new()
        .merge(prometheus::routes())
        .merge(query::routes())
        .merge(status::routes())
        .merge(remote_write::routes())
        .merge(ops::routes())
        .merge(slos::routes())
        .merge(actions::routes())
        .merge(loki::routes())
        .merge(otlp::routes())
        .merge(tempo::routes())
        .with_state(state)
        .merge(am)
        .layer(axum::middleware::from_fn_with_state(auth, auth::layer))
        .layer(TraceLayer::new_for_http())
}

/// Alertmanager's API alone, for `sextant alertmanager` (drop-in mode), under its
/// route prefix, with `/-/healthy`, `/-/ready`, `/-/reload` and `/metrics`.
pub fn alertmanager_app(
    am: sextant_alertmanager::Alertmanager,
    auth: auth::Auth,
    prefix: &str,
    registry: Arc<Registry>,
    reload: Option<ReloadFn>,
) -> Router {
    ops::alertmanager_ops(prefix, registry, reload)
        .merge(alertmanager::router(alertmanager::AlertmanagerApi { am }, prefix))
        .layer(axum::middleware::from_fn_with_state(auth, auth::layer))
        .layer(TraceLayer::new_for_http())
}

/// A request's media type: its `Content-Type` without parameters, lower-cased
/// (`application/json; charset=utf-8` → `application/json`; empty when absent).
pub(crate) fn media_type(headers: &axum::http::HeaderMap) -> String {
    header_value(headers, axum::http::header::CONTENT_TYPE)
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// A request's `Content-Encoding`, lower-cased (empty when absent).
pub(crate) fn content_encoding(headers: &axum::http::HeaderMap) -> String {
    header_value(headers, axum::http::header::CONTENT_ENCODING)
}

fn header_value(headers: &axum::http::HeaderMap, name: axum::http::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}
