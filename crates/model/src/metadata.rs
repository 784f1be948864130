use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A metric family's type, as exposition formats and remote_write name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    /// Monotonic counter.
    Counter,
    /// Gauge.
    Gauge,
    /// Classic histogram (`_bucket`, `_sum`, `_count`).
    Histogram,
    /// OpenMetrics gauge histogram (`_bucket`, `_gsum`, `_gcount`).
    #[serde(rename = "gaugehistogram")]
    GaugeHistogram,
    /// Summary (quantiles, `_sum`, `_count`).
    Summary,
    /// OpenMetrics info (`_info`, value 1).
    Info,
    /// OpenMetrics state set (one series per state, 0 or 1).
    #[serde(rename = "stateset")]
    StateSet,
    /// Unknown or untyped.
    #[default]
    Unknown,
}

impl MetricType {
    /// The name used by OpenMetrics and Prometheus' metadata API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::GaugeHistogram => "gaugehistogram",
            Self::Summary => "summary",
            Self::Info => "info",
            Self::StateSet => "stateset",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MetricType {
    type Err = ();
    /// Parses OpenMetrics names plus the text format's `untyped`.
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "counter" => Self::Counter,
            "gauge" => Self::Gauge,
            "histogram" => Self::Histogram,
            "gaugehistogram" => Self::GaugeHistogram,
            "summary" => Self::Summary,
            "info" => Self::Info,
            "stateset" => Self::StateSet,
            "unknown" | "untyped" => Self::Unknown,
            _ => return Err(()),
        })
    }
}

/// What a target or writer told us about a metric family.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
pub struct MetricMetadata {
    /// The family's type.
    #[serde(rename = "type")]
    pub metric_type: MetricType,
    /// `# HELP` text, unescaped.
    pub help: String,
    /// `# UNIT`, empty when not given.
    pub unit: String,
}
