use thiserror::Error;

/// What kind of failure an [`Error`] is, so the API can map it to a status code in one
/// place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller sent something invalid; retrying the same input cannot succeed.
    BadInput,
    /// The write queue is full; retry later.
    Overloaded,
    /// The store cannot take writes now (shutting down, or a commit failed).
    Unavailable,
    /// The data directory is of a format this binary does not read.
    Incompatible,
    /// A bug or an I/O failure.
    Internal,
}

/// Store errors.
#[derive(Debug, Error)]
pub enum Error {
    /// A series the store cannot accept (invalid or missing name, invalid label names).
    #[error("invalid series {series}: {reason}")]
    InvalidSeries {
        /// The series as written.
        series: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The write queue is full.
    #[error("write queue is full ({0} requests waiting)")]
    Overloaded(usize),
    /// The store is closed or closing.
    #[error("the store is shut down")]
    Closed,
    /// The append would take the head past its series limit.
    #[error("the head holds its limit of {limit} series; {new} new series refused (storage.max_head_series)")]
    SeriesLimit {
        /// The configured limit.
        limit: usize,
        /// New series in the refused request.
        new: usize,
    },
    /// A commit failed; nothing of the request was stored.
    #[error("commit failed: {0}")]
    CommitFailed(String),
    /// The data directory's format version is not one this binary reads.
    #[error("data directory {path} has format version {found}; this binary reads version {supported}")]
    IncompatibleFormat {
        /// The data directory.
        path: String,
        /// The version found there.
        found: u32,
        /// The version this binary writes and reads.
        supported: u32,
    },
    /// DuckDB failed.
    #[error("duckdb: {0}")]
    DuckDb(#[from] duckdb::Error),
    /// A query returned a column of a type the reader does not expect (a bug).
    #[error("reading samples: column {0} has an unexpected type")]
    ColumnType(&'static str),
    /// A stored block row does not decode: the database file was damaged.
    #[error("block {block} of series {series} does not decode: the database file is damaged")]
    CorruptBlock {
        /// The two-hour block.
        block: i64,
        /// The series id.
        series: u64,
    },
    /// File-system failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidSeries { .. } => ErrorKind::BadInput,
            Error::Overloaded(_) => ErrorKind::Overloaded,
            Error::Closed | Error::CommitFailed(_) | Error::SeriesLimit { .. } => ErrorKind::Unavailable,
            Error::IncompatibleFormat { .. } => ErrorKind::Incompatible,
            Error::DuckDb(_) | Error::Io { .. } | Error::ColumnType(_) | Error::CorruptBlock { .. } => {
                ErrorKind::Internal
            }
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
