//! Sextant's HTTP API: axum routers, wire types, and the mapping from domain errors to
//! HTTP status codes and Prometheus-style error bodies (in one place, [`error`]).
//!
//! [`app`] builds the whole router from an [`AppState`], so tests can drive it with
//! `tower::ServiceExt::oneshot` without a socket.

pub mod error;
mod ops;
mod prometheus;
mod remote_write;
mod selector;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use prometheus_client::registry::Registry;
use sextant_collect::{NodeCollector, ScrapeManager};
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
        Self { remote_write_max_compressed_bytes: 32 << 20, remote_write_max_decompressed_bytes: 128 << 20 }
    }
}

/// Handles to everything the API serves; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The metrics store.
    pub store: MetricsStore,
    /// The scrape manager (for `/api/v1/targets`).
    pub scrape: ScrapeManager,
    /// Sextant's own metrics, served at `/metrics`.
    pub registry: Arc<Registry>,
    /// The built-in node collector, served at `/node/metrics`.
    pub node: Arc<NodeCollector>,
    /// Config reload, for `POST /-/reload`.
    pub reload: Option<ReloadFn>,
    /// Request limits.
    pub limits: ApiLimits,
    /// False until start-up finished and after shutdown began (`/-/ready`).
    pub ready: Arc<AtomicBool>,
}

impl AppState {
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(prometheus::routes())
        .merge(remote_write::routes())
        .merge(ops::routes())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
