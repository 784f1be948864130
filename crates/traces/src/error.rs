//! The trace store's errors, each knowing its kind so the API maps it to a status
//! in one place.

/// Errors of the trace store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// DuckDB failed.
    #[error("trace store: {0}")]
    Db(#[from] duckdb::Error),
    /// A file operation failed.
    #[error("trace store {0}: {1}")]
    Io(std::path::PathBuf, std::io::Error),
    /// The write queue is full: retry later.
    #[error("trace store overloaded: {0} export requests already queued; retry later")]
    Overloaded(usize),
    /// The writer has stopped.
    #[error("trace store is closed")]
    Closed,
    /// A commit failed; nothing of the group was stored.
    #[error("trace store commit failed: {0}")]
    CommitFailed(String),
    /// The data directory was written by a newer or unknown format.
    #[error("trace store {0}: format version {1} is not one this Sextant reads (it reads {2})")]
    Format(std::path::PathBuf, String, u32),
    /// A query was invalid.
    #[error("{0}")]
    BadQuery(String),
}

/// What kind of failure an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request was wrong (400).
    BadInput,
    /// Retry later (429/503).
    Overloaded,
    /// The store cannot serve (503).
    Unavailable,
    /// Anything else (500).
    Internal,
}

impl Error {
    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::BadQuery(_) => ErrorKind::BadInput,
            Error::Overloaded(_) => ErrorKind::Overloaded,
            Error::Closed => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }
}

/// `Result` with this crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
