//! Numbers and durations printed as Go prints them, where Sloth's output depends on it.

use std::time::Duration;

/// Go's `%v` / `%g` for a float64 (shortest representation that round-trips; exponent
/// form when the exponent is below -4 or at least 21, written `e-05`, `e+21`).
pub fn go_float(v: f64) -> String {
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `1.0000000000047748e-5`.
    let e = format!("{v:e}");
    let (mantissa, exp) = e.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("integer exponent");
    if !(-4..21).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    format_plain(v)
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest digits, never an exponent.
pub fn format_plain(v: f64) -> String {
    let s = format!("{v:?}");
    if s.contains('e') {
        // `{:?}` of very large or small numbers uses an exponent; spell it out.
        let (mantissa, exp) = s.split_once('e').expect("exponent form");
        let exp: i32 = exp.parse().expect("integer exponent");
        let neg = mantissa.starts_with('-');
        let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
        let int_len = mantissa
            .trim_start_matches('-')
            .find('.')
            .unwrap_or(mantissa.trim_start_matches('-').len()) as i32;
        let point = int_len + exp;
        let body = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        return if neg { format!("-{body}") } else { body };
    }
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

/// prometheus/common's `model.Duration.String()`, which Sloth uses for window names.
pub fn prom_duration(d: Duration) -> String {
    sextant_model::time::format_duration(d)
}

/// Go's `time.Duration.String()` (`168h0m0s`), which Sloth uses in some messages.
pub fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_as_go_prints_them() {
        // Sloth's error budgets, as its goldens show them.
        assert_eq!(go_float((100.0 - 99.9) / 100.0), "0.0009999999999999432");
        assert_eq!(go_float((100.0 - 99.99) / 100.0), "0.00010000000000005117");
        assert_eq!(go_float((100.0 - 99.999) / 100.0), "1.0000000000047748e-05");
        assert_eq!(go_float((100.0 - 99.0) / 100.0), "0.01");
        assert_eq!(go_float(99.9 / 100.0), "0.9990000000000001");
        assert_eq!(go_float(14.4), "14.4");
        assert_eq!(go_float(28.0 * 24.0 * 10.0 / 100.0 / 24.0), "2.8000000000000003");
        assert_eq!(go_float(30.0), "30");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(format_plain(99.9), "99.9");
        assert_eq!(format_plain(95.0), "95");
        assert_eq!(format_plain(1e-7), "0.0000001");
        assert_eq!(go_duration(Duration::from_secs(7 * 86400)), "168h0m0s");
    }
}
