//! Errors of SLO specs: where, and what is wrong.

/// A problem in a spec file, located at `file:line:col`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct SpecError {
    /// `file:line:col`.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

/// Result of reading specs: every problem found.
pub type Result<T, E = Vec<SpecError>> = std::result::Result<T, E>;
