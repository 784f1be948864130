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
    } else if v.abs() < 1e15 && (v as i64) as f64 == v {
        // An integer (the cast truncates; `trunc` is a libm call on baseline x86-64).
        if v == 0.0 && v.is_sign_negative() {
            out.push('-');
        }
        out.push_str(itoa::Buffer::new().format(v as i64));
    } else {
        // zmij (Schubfach) gives the same shortest digits as ryu at about half the cost
        // (checked on two million values, exponent spelling aside: `1e+300`).
        let mut buf = zmij::Buffer::new();
        let s = buf.format_finite(v);
        // These digits are the shortest that round-trip, but where two decimals of
        // that length are equally close they are not rounded up as Go and `Display` do
        // (628984463590665.25 prints as ...665.3, -117652790774733.125 as ...13), and
        // with 17 digits they are not always the closest: the last digit is checked
        // against the exact value and corrected, and in the rare case the exact check
        // does not fit in 128 bits the value goes the slow way.
        let (digits, exp10, exp_at) = decimal_of(s.as_bytes());
        match closest_decimal(v.abs(), exp10) {
            Some(c) if c == digits => match exp_at {
                // Integers from 1e15 to 1e16 come as `N.0`; Go writes `N`.
                None => out.push_str(s.strip_suffix(".0").unwrap_or(s)),
                Some(e) => expand_exponent(out, &s[..e], s[e + 1..].parse().unwrap_or(0)),
            },
            Some(c) if c == digits + 1 || c + 1 == digits => {
                let (mut c, mut e) = (c, exp10);
                while c % 10 == 0 && c != 0 {
                    c /= 10;
                    e += 1;
                }
                let sign = if v < 0.0 { "-" } else { "" };
                expand_exponent(out, &format!("{sign}{c}"), e);
            }
            _ => {
                use std::fmt::Write as _;
                let _ = write!(out, "{v}");
            }
        }
    }
}

/// The shortest digits read back: as an integer (sign and point dropped, a trailing
/// `.0` ignored), the power of ten of the last digit, and where the `e` of an
/// exponent (`e-7`, `e+300`) is. One pass: this runs for every value of every query result.
fn decimal_of(s: &[u8]) -> (u64, i32, Option<usize>) {
    let (mut digits, mut frac, mut in_frac) = (0u64, 0i32, false);
    let mut exp_at = None;
    for (i, &c) in s.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                digits = digits.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
                frac += i32::from(in_frac);
            }
            b'.' => in_frac = true,
            b'e' => {
                exp_at = Some(i);
                break;
            }
            _ => {}
        }
    }
    let mut exp = 0i32;
    if let Some(e) = exp_at {
        let (neg, rest) = match &s[e + 1..] {
            [b'-', rest @ ..] => (true, rest),
            [b'+', rest @ ..] => (false, rest),
            rest => (false, rest),
        };
        exp = rest.iter().fold(0i32, |a, c| a * 10 + i32::from(c - b'0'));
        if neg {
            exp = -exp;
        }
    }
    // `N.0`: the zero is not a digit of the value.
    if frac == 1 && digits % 10 == 0 && s.ends_with(b".0") {
        digits /= 10;
        frac = 0;
    }
    (digits, exp - frac, exp_at)
}

/// Powers of ten that fit in 128 bits.
const POW10: [u128; 39] = {
    let mut t = [1u128; 39];
    let mut i = 1;
    while i < t.len() {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// `x` (positive, finite) in units of `10^exp10`, rounded to the nearest integer,
/// half way up: computed exactly from `x`'s binary mantissa and exponent. `None` when
/// that does not fit in 128 bits.
fn closest_decimal(x: f64, exp10: i32) -> Option<u64> {
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1u64 << 52) - 1);
    let (m, k) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), biased - 1075)
    };
    // x / 10^exp10 = num / den with x = m · 2^k.
    let pow10 = |e: i32| POW10.get(e.unsigned_abs() as usize).copied();
    let mut num = u128::from(m);
    if exp10 < 0 {
        let p = pow10(exp10)?;
        num = match u64::try_from(p) {
            // m < 2^53 and p < 2^64: the product fits, no overflow check needed.
            Ok(p) => num * u128::from(p),
            Err(_) => num.checked_mul(p)?,
        };
    }
    let (q, r, half) = if k >= 0 {
        num = num.checked_mul(1u128.checked_shl(k as u32).filter(|p| *p != 0)?)?;
        if exp10 <= 0 {
            (num, 0, 1)
        } else {
            let den = pow10(exp10)?;
            (num / den, num % den, den.div_ceil(2))
        }
    } else if exp10 <= 0 {
        // The common case, a fraction: the denominator is a power of two.
        let shift = (-k) as u32;
        if shift >= 127 {
            return None;
        }
        (num >> shift, num & ((1u128 << shift) - 1), 1u128 << (shift - 1))
    } else {
        let den = pow10(exp10)?.checked_mul(1u128.checked_shl((-k) as u32).filter(|p| *p != 0)?)?;
        (num / den, num % den, den.div_ceil(2))
    };
    u64::try_from(if r < half { q } else { q + 1 }).ok()
}

/// Writes `mantissa × 10^exp` (the shortest digits, e.g. `-1.25`, `-7`) as a plain
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
        // Found by the property test below (the shortest digits come with `.0`).
        assert_eq!(format_value(-3909644385480796.0), "-3909644385480796");
        assert_eq!(format_value(1e15), "1000000000000000");
        // Found by the property test in CI: the 17-digit choice was not the closest.
        assert_eq!(format_value(-117652790774733.13), "-117652790774733.13");
        // Found by the property test at a million cases: a tie at 16 digits
        // (628984463590665.25), which ryu and zmij round to even and Go rounds up.
        assert_eq!(format_value(628984463590665.3), "628984463590665.3");
        // 17 significant digits after leading zeros, and a typical rate.
        assert_eq!(format_value(0.00012345678901234567), "0.00012345678901234567");
        assert_eq!(format_value(1.0 / 3.0), "0.3333333333333333");
        assert_eq!(format_value(2.0 / 3.0 * 7.0), format!("{}", 2.0 / 3.0 * 7.0));
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
