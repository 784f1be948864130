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
    let mut s = String::new();
    write_value(&mut s, v);
    s
}

/// Appends [`format_value`]'s text to `out` without allocating: query results
/// print millions of values, and the standard formatter is slow at that.
pub fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v == v.trunc() && v.abs() < 1e15 {
        if v == 0.0 && v.is_sign_negative() {
            out.push('-');
        }
        out.push_str(itoa::Buffer::new().format(v as i64));
    } else {
        let mut buf = ryu::Buffer::new();
        let s = buf.format_finite(v);
        // With 17 significant digits more than one decimal round-trips, and ryu
        // does not always pick the closest one as Go and `Display` do
        // (-117652790774733.13 came out as ...12): those few go the slow way.
        let mantissa = s.split('e').next().unwrap_or(s);
        if mantissa.bytes().filter(u8::is_ascii_digit).count() >= 17 {
            use std::fmt::Write as _;
            let _ = write!(out, "{v}");
            return;
        }
        match s.find('e') {
            // ryu writes integers from 1e15 to 1e16 as `N.0`; Go writes `N`.
            None => out.push_str(s.strip_suffix(".0").unwrap_or(s)),
            Some(e) => expand_exponent(out, &s[..e], s[e + 1..].parse().unwrap_or(0)),
        }
    }
}

/// Writes `mantissa × 10^exp` (ryu's shortest digits, e.g. `-1.25`, `-7`) as a plain
/// decimal (`-0.000000125`), as Go's `'f'` format does.
fn expand_exponent(out: &mut String, mantissa: &str, exp: i32) {
    let (neg, m) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let (int, frac) = m.split_once('.').unwrap_or((m, ""));
    let frac = if frac == "0" { "" } else { frac };
    let digits: String = [int, frac].concat();
    // The decimal point sits after `point` digits.
    let point = int.len() as i32 + exp;
    if neg {
        out.push('-');
    }
    if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(&digits);
    } else if point as usize >= digits.len() {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', point as usize - digits.len()));
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
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
        assert_eq!(format_value(1.5e300).len(), 301);
        assert_eq!(format_value(-1.25e-7), "-0.000000125");
        assert_eq!(format_value(123456789012345680.0), "123456789012345680");
        // Found by the property test below (ryu prints these with `.0`).
        assert_eq!(format_value(-3909644385480796.0), "-3909644385480796");
        assert_eq!(format_value(1e15), "1000000000000000");
        // Found by the property test in CI: ryu's 17-digit choice was not the closest.
        assert_eq!(format_value(-117652790774733.13), "-117652790774733.13");
    }

    proptest::proptest! {
        /// Rust's `Display` for f64 prints the shortest round-trip decimal without an
        /// exponent, which is Go's `FormatFloat(v, 'f', -1, 64)`.
        #[test]
        fn fast_formatting_matches_the_reference(v in proptest::num::f64::ANY) {
            let want = if v.is_nan() { "NaN".to_string() } else if v.is_infinite() {
                if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
            } else { format!("{v}") };
            proptest::prop_assert_eq!(format_value(v), want);
        }
    }
}
