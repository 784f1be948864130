use thiserror::Error;

/// Errors from building model values out of untrusted input.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// A label name that is not `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[error("invalid label name {0:?}")]
    InvalidLabelName(String),
    /// A metric name that is not `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    #[error("invalid metric name {0:?}")]
    InvalidMetricName(String),
    /// The same label name twice in one label set.
    #[error("duplicate label name {0:?}")]
    DuplicateLabel(String),
    /// A regular expression that does not compile.
    #[error("invalid regular expression {pattern:?}: {reason}")]
    InvalidRegex {
        /// The pattern as given.
        pattern: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A duration that is not Prometheus' `[0-9]+(ms|s|m|h|d|w|y)` sequence.
    #[error("invalid duration {0:?}")]
    InvalidDuration(String),
    /// A timestamp that is neither a number of seconds nor RFC 3339.
    #[error("invalid timestamp {0:?}")]
    InvalidTimestamp(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
