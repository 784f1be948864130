//! Why a collector did not succeed. Either way `node_scrape_collector_success` is 0 for
//! it, as in node_exporter; the difference is only how loudly it is logged.

use std::path::Path;

/// A collector's failure.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CollectError {
    /// The kernel does not provide what the collector reads (no bonding driver, no
    /// hwmon chips): node_exporter's `ErrNoData`, logged at debug level.
    #[error("collector returned no data")]
    NoData,
    /// Reading or parsing failed.
    #[error("{0}")]
    Failed(String),
}

/// A collector's result.
pub(crate) type Result<T = (), E = CollectError> = std::result::Result<T, E>;

impl CollectError {
    /// A failure naming the file it concerns.
    pub fn at(path: &Path, what: impl std::fmt::Display) -> Self {
        Self::Failed(format!("{}: {what}", path.display()))
    }
}

/// Errors for `?` on `std::io` results that carry the path.
pub(crate) trait IoContext<T> {
    /// A failure naming `path`.
    fn at(self, path: &Path) -> Result<T>;
    /// [`CollectError::NoData`] if `path` does not exist, a failure naming it otherwise.
    fn no_data_if_missing(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| CollectError::at(path, e))
    }

    fn no_data_if_missing(self, path: &Path) -> Result<T> {
        self.map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => CollectError::NoData,
            _ => CollectError::at(path, e),
        })
    }
}
