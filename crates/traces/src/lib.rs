//! Traces: OTLP spans stored in time-bucketed DuckDB tables with per-trace
//! summaries ([`store`]), TraceQL search over them ([`traceql`], [`search`]),
//! and RED metrics and a service graph derived from them with Tempo's names
//! ([`spanmetrics`]).
//!
//! This crate knows nothing of the metrics store or the server: span metrics
//! are handed out as label sets and values for the caller to write, and the
//! HTTP API (Tempo's) lives in `sextant-api`.

pub mod error;
pub mod search;
pub mod span;
pub mod spanmetrics;
pub mod store;
pub mod synthetic;
pub mod traceql;

pub use error::{Error, ErrorKind, Result};
pub use search::{MatchedSpan, SearchRequest, TraceMatch};
pub use span::TraceId;
pub use spanmetrics::{SpanMetrics, SpanMetricsOptions};
pub use store::{TraceStore, TraceStoreOptions, WriteOutcome};

#[cfg(test)]
mod tests;
