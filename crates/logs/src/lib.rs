//! Logs: records pushed over Loki's and OTLP's protocols, made durable in a
//! write-ahead log, indexed in full text in time-partitioned tantivy indexes, and
//! queried with LogQL.
//!
//! [`store::LogStore`] owns the data; [`logql`] parses and evaluates queries
//! over it. This crate knows nothing of HTTP or of the metrics store.

pub mod logql;
mod partition;
pub mod record;
pub mod store;
mod textq;

pub use record::{Entry, PushStream};
pub use store::{Direction, LogStore, LogStoreOptions, PushError, PushOutcome, Selection};

use std::path::PathBuf;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The index failed.
    #[error("log index: {0}")]
    Index(String),
    /// The write-ahead log failed.
    #[error("{0}")]
    Wal(String),
}
