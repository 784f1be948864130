use thiserror::Error;

/// Why an exposition body was rejected, with the 1-based line it was found on
/// (0 when the problem is the body as a whole).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct Error {
    /// 1-based line number; 0 for the whole body.
    pub line: usize,
    /// What was wrong, naming the offending text.
    pub message: String,
}

impl Error {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
