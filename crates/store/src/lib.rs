//! Durable storage for Sextant's metrics.
//!
//! [`MetricsStore`] keeps a series registry in memory (labels ↔ id, an inverted index
//! from label pairs to series ids, each series' newest sample) and the samples in
//! DuckDB. One writer thread owns the writing connection: concurrent appends queue up
//! and are committed together (group commit), and an append is acknowledged only after
//! its transaction committed, so an acknowledged sample survives `kill -9`. Readers use
//! their own connections. Samples live in one table per two-hour block, so retention is
//! dropping tables; closed blocks are compacted into a delta-encoded layout
//! (see `compact.rs`).
//!
//! The store knows nothing of PromQL, scraping or HTTP.

mod compact;
mod error;
mod format;
mod metrics;
mod registry;
mod slices;
mod store;
mod writer;

pub use error::{Error, ErrorKind, Result};
pub use format::FORMAT_VERSION;
pub use registry::SeriesId;
pub use sextant_model::SeriesData;
pub use slices::{RevisionRow, SliceFilter, SliceRow, WindowSum};
pub use store::{AppendOutcome, AppendRequest, MetricsStore, SeriesRef, SeriesSamples, StoreOptions};
