//! Number syntax. OpenMetrics numbers are decimal (no hex, no `_`, no `0b`/`0o`),
//! with case-insensitive `inf`/`infinity`/`nan`; the 0.0.4 format takes what Go's
//! `strconv.ParseFloat` takes, minus the forms no exporter writes.

/// Parses an OpenMetrics number.
pub(crate) fn parse_om_float(s: &str) -> Option<f64> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = unsigned.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(if s.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if lower == "nan" {
        return (unsigned.len() == s.len()).then_some(f64::NAN);
    }
    if !is_decimal(unsigned) {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Parses a 0.0.4 text-format value (Go `ParseFloat` syntax for decimal numbers).
pub(crate) fn parse_text_float(s: &str) -> Option<f64> {
    parse_om_float(s)
}

/// `digits [. digits] [e [+-] digits]` or `. digits ...`, at least one digit overall.
fn is_decimal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let int_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp_digits == 0 {
            return false;
        }
        i += exp_digits;
    }
    i == b.len()
}

/// Seconds (OpenMetrics timestamps) to epoch milliseconds, saturating.
pub(crate) fn seconds_to_ms(s: f64) -> i64 {
    (s * 1000.0).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn om_numbers() {
        for ok in [
            "1",
            "-1",
            "1.5e3",
            "0001.2e-1",
            ".5",
            "5.",
            "+Inf",
            "-inf",
            "NaN",
            "Infinity",
        ] {
            assert!(parse_om_float(ok).is_some(), "{ok}");
        }
        for bad in [
            "", "a", "1_2", "0x1", "0x1p-3", "0b1", "0o1", "1e", "-NaN", "1.1.1", " 1", ".",
        ] {
            assert!(parse_om_float(bad).is_none(), "{bad}");
        }
    }
}
