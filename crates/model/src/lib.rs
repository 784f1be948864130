//! Sextant's shared vocabulary: label sets, series identity, samples, matchers,
//! metric metadata, Prometheus-style times and durations, and YAML node positions for
//! errors in config-like files.
//!
//! This crate does no I/O and knows nothing of storage, scraping or HTTP; every
//! other crate depends on it, so it stays small and allocation-conscious.

pub mod alert;
mod error;
mod labels;
mod matcher;
mod metadata;
pub mod signature;
pub mod time;
pub mod yaml;

pub use alert::{AlertSink, PostableAlert};
pub use error::{Error, Result};
pub use labels::{Label, Labels, LabelsBuilder, is_valid_label_name, is_valid_metric_name};
pub use matcher::{MatchOp, Matcher, anchored_regex, go_regex_syntax};
pub use metadata::{MetricMetadata, MetricType};

/// The label that holds a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// Bit pattern of Prometheus' staleness marker: a NaN that no computation produces,
/// written when a series disappears from a scrape so queries stop returning it at once
/// instead of after the lookback window.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker value (see [`STALE_NAN_BITS`]).
#[inline]
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// True when `v` is exactly the staleness marker (an ordinary NaN is not).
#[inline]
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One sample: a timestamp in epoch milliseconds and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Epoch milliseconds.
    pub t_ms: i64,
    /// The value; may be NaN, ±Inf or the staleness marker.
    pub v: f64,
}

impl Sample {
    /// A sample at `t_ms` with value `v`.
    #[inline]
    pub fn new(t_ms: i64, v: f64) -> Self {
        Self { t_ms, v }
    }

    /// Same timestamp and bit-identical value: a retried write of this sample.
    #[inline]
    pub fn same_as(&self, other: &Sample) -> bool {
        self.t_ms == other.t_ms && self.v.to_bits() == other.v.to_bits()
    }
}

/// A series and its samples in a queried range, as storage returns them to queries.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesData {
    /// The series.
    pub labels: std::sync::Arc<Labels>,
    /// Samples in time order.
    pub samples: Vec<Sample>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_marker_is_distinct_from_ordinary_nan() {
        assert!(is_stale_nan(stale_nan()));
        assert!(stale_nan().is_nan());
        assert!(!is_stale_nan(f64::NAN));
    }
}
