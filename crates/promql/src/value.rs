//! Query results, in the four shapes Prometheus' API returns.

use sextant_model::{Labels, Sample};

/// One series' value at the evaluation time of an instant query.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    /// The series' labels.
    pub labels: Labels,
    /// Evaluation time, epoch milliseconds.
    pub t_ms: i64,
    /// The value.
    pub v: f64,
}

/// One series' values over a range.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// The series' labels.
    pub labels: Labels,
    /// Points in time order.
    pub samples: Vec<Sample>,
}

/// The result of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    /// A number at a time.
    Scalar {
        /// Evaluation time, epoch milliseconds.
        t_ms: i64,
        /// The value.
        v: f64,
    },
    /// A string at a time.
    String {
        /// Evaluation time, epoch milliseconds.
        t_ms: i64,
        /// The value.
        s: String,
    },
    /// An instant vector, in evaluation order (`sort`, `topk` order it).
    Vector(Vec<InstantSample>),
    /// A range vector (instant query of `x[5m]` or a subquery), or the result of a
    /// range query, sorted by labels.
    Matrix(Vec<RangeSeries>),
}

impl QueryValue {
    /// Prometheus' `resultType`.
    pub fn type_name(&self) -> &'static str {
        match self {
            QueryValue::Scalar { .. } => "scalar",
            QueryValue::String { .. } => "string",
            QueryValue::Vector(_) => "vector",
            QueryValue::Matrix(_) => "matrix",
        }
    }
}

/// Formats a sample value as Prometheus does in JSON and text: the shortest decimal
/// that round-trips, no exponent, and `NaN`, `+Inf`, `-Inf`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_format_like_go() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(1e-7), "0.0000001");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(-0.0), "-0");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
    }
}
