//! Go's `fmt` and `strconv` number and string formatting, as templates print values:
//! `%v` of a float64 is the shortest round-trip digits in `%g` form with exponents
//! from 1e+06 and below 1e-04 (Rust's `{}` prints neither), `printf` verbs with
//! flags, width and precision, and Go's `%!verb(type=value)` for mismatches.

use crate::value::Value;

/// Decimal digits of |v| (no leading zeros, no trailing zeros unless kept) and the
/// position of the decimal point: |v| = 0.d1d2d3... × 10^dp.
struct Digits {
    digits: Vec<u8>,
    dp: i32,
}

/// Parses Rust's `{:e}` rendering (`1.2345e6`, `0e0`) into digits.
fn parse_exp(s: &str) -> Digits {
    let (mant, exp) = s.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    let mut digits: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
    if digits.iter().all(|d| *d == 0) {
        return Digits {
            digits: Vec::new(),
            dp: 0,
        };
    }
    while digits.last() == Some(&0) && digits.len() > 1 {
        digits.pop();
    }
    Digits { digits, dp: exp + 1 }
}

/// Shortest digits that round-trip.
fn shortest(v: f64) -> Digits {
    parse_exp(&format!("{:e}", v.abs()))
}

/// `n` significant digits, correctly rounded (ties to even, as Go's decimal
/// rounding of the exact binary value), trailing zeros removed.
fn significant(v: f64, n: usize) -> Digits {
    parse_exp(&format!("{:.*e}", n.max(1) - 1, v.abs()))
}

fn digit(d: &Digits, i: i32) -> u8 {
    if i >= 0 && (i as usize) < d.digits.len() {
        b'0' + d.digits[i as usize]
    } else {
        b'0'
    }
}

/// `%e`: d.ddde±XX with `prec` digits after the point.
fn fmt_e(out: &mut String, d: &Digits, prec: usize, upper: bool) {
    out.push(digit(d, 0) as char);
    if prec > 0 {
        out.push('.');
        for i in 1..=prec as i32 {
            out.push(digit(d, i) as char);
        }
    }
    out.push(if upper { 'E' } else { 'e' });
    let exp = if d.digits.is_empty() { 0 } else { d.dp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        out.push('0');
    }
    out.push_str(&e.to_string());
}

/// `%f`: integer part, then `prec` digits after the point.
fn fmt_f(out: &mut String, d: &Digits, prec: usize) {
    if d.dp > 0 {
        for i in 0..d.dp {
            out.push(digit(d, i) as char);
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 0..prec as i32 {
            out.push(digit(d, d.dp + i) as char);
        }
    }
}

/// A float64 as `strconv.FormatFloat(v, verb, prec, 64)` with fmt's `+Inf` for
/// infinity: `verb` is one of `e E f F g G`; `prec` `None` means the shortest
/// representation that round-trips.
pub fn format_float(v: f64, verb: char, prec: Option<usize>) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let mut out = String::new();
    if v.is_sign_negative() {
        out.push('-');
    }
    match verb {
        'e' | 'E' => {
            let d = match prec {
                Some(p) => significant(v, p + 1),
                None => shortest(v),
            };
            let p = prec.unwrap_or_else(|| d.digits.len().saturating_sub(1));
            fmt_e(&mut out, &d, p, verb == 'E');
        }
        'f' | 'F' => match prec {
            Some(p) => {
                let s = format!("{:.*}", p, v.abs());
                out.push_str(&s);
            }
            None => {
                let d = shortest(v);
                let p = (d.digits.len() as i32 - d.dp).max(0) as usize;
                fmt_f(&mut out, &d, p);
            }
        },
        _ => {
            let upper = verb == 'G';
            let (d, eprec) = match prec {
                None => (shortest(v), 6),
                Some(p) => {
                    let p = p.max(1);
                    let d = significant(v, p);
                    let nd = d.digits.len() as i32;
                    let eprec = if p as i32 > nd && nd >= d.dp { nd } else { p as i32 };
                    (d, eprec)
                }
            };
            let nd = d.digits.len() as i32;
            // Zero has no digits and dp 0: exponent -1, printed as a plain 0.
            let exp = d.dp - 1;
            if exp < -4 || exp >= eprec {
                fmt_e(&mut out, &d, (nd - 1).max(0) as usize, upper);
            } else {
                fmt_f(&mut out, &d, (nd - d.dp).max(0) as usize);
            }
        }
    }
    out
}

/// Go's `strconv.Quote`: a double-quoted string with Go escapes; printable
/// characters are kept.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => {
                let n = c as u32;
                if n < 0x10000 {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `fmt.Sprint`: operands formatted with `%v`, a space between two operands when
/// neither is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = matches!(a, Value::String(_));
        if i > 0 && !is_string && !prev_string {
            out.push(' ');
        }
        out.push_str(&a.to_go_string());
        prev_string = is_string;
    }
    out
}

/// `fmt.Sprintln`: operands with `%v`, always space-separated, then a newline.
pub fn sprintln(args: &[Value]) -> String {
    let mut s = args.iter().map(Value::to_go_string).collect::<Vec<_>>().join(" ");
    s.push('\n');
    s
}

#[derive(Default, Clone, Copy)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// `fmt.Sprintf` with Go's verbs, flags, widths, precisions, argument indexes and
/// its error notations (`%!d(MISSING)`, `%!(EXTRA ...)`, `%!z(int=1)`).
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let b = format.as_bytes();
    let mut out = String::new();
    let mut arg = 0usize;
    let mut reordered = false;
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i] != b'%' {
            i += 1;
        }
        out.push_str(&format[start..i]);
        if i >= b.len() {
            break;
        }
        i += 1; // '%'
        let mut f = Flags::default();
        while i < b.len() {
            match b[i] {
                b'+' => f.plus = true,
                b'-' => f.minus = true,
                b'#' => f.sharp = true,
                b' ' => f.space = true,
                b'0' => f.zero = !f.minus,
                _ => break,
            }
            i += 1;
        }
        // Argument index before the width.
        let mut bad_index = false;
        if let Some((n, len)) = arg_index(&b[i..]) {
            i += len;
            reordered = true;
            match n {
                Some(n) if n >= 1 && n <= args.len() => arg = n - 1,
                _ => bad_index = true,
            }
        }
        // Width.
        if i < b.len() && b[i] == b'*' {
            i += 1;
            match args.get(arg) {
                Some(Value::Int(n)) => {
                    if *n < 0 {
                        f.minus = true;
                        f.zero = false;
                    }
                    f.width = Some(n.unsigned_abs() as usize);
                }
                _ => out.push_str("%!(BADWIDTH)"),
            }
            arg += 1;
        } else {
            let (n, len) = number(&b[i..]);
            i += len;
            f.width = n;
        }
        // Precision.
        if i < b.len() && b[i] == b'.' {
            i += 1;
            if let Some((n, len)) = arg_index(&b[i..]) {
                i += len;
                reordered = true;
                match n {
                    Some(n) if n >= 1 && n <= args.len() => arg = n - 1,
                    _ => bad_index = true,
                }
            }
            if i < b.len() && b[i] == b'*' {
                i += 1;
                match args.get(arg) {
                    Some(Value::Int(n)) if *n >= 0 => f.prec = Some(*n as usize),
                    _ => out.push_str("%!(BADPREC)"),
                }
                arg += 1;
            } else {
                let (n, len) = number(&b[i..]);
                i += len;
                f.prec = Some(n.unwrap_or(0));
            }
        }
        if let Some((n, len)) = arg_index(&b[i..]) {
            i += len;
            reordered = true;
            match n {
                Some(n) if n >= 1 && n <= args.len() => arg = n - 1,
                _ => bad_index = true,
            }
        }
        if i >= b.len() {
            out.push_str("%!(NOVERB)");
            break;
        }
        let verb = format[i..].chars().next().expect("in bounds");
        i += verb.len_utf8();
        if verb == '%' {
            out.push('%');
            continue;
        }
        if bad_index {
            out.push_str(&format!("%!{verb}(BADINDEX)"));
            continue;
        }
        match args.get(arg) {
            None => out.push_str(&format!("%!{verb}(MISSING)")),
            Some(v) => {
                out.push_str(&format_value(v, verb, f));
                arg += 1;
            }
        }
    }
    if !reordered && arg < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[arg..]
            .iter()
            .map(|a| match a {
                Value::Nil => "<nil>".to_owned(),
                a => format!("{}={}", a.type_name(), a.to_go_string()),
            })
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

fn number(b: &[u8]) -> (Option<usize>, usize) {
    let mut n = 0usize;
    let mut len = 0;
    while len < b.len() && b[len].is_ascii_digit() {
        n = n.saturating_mul(10).saturating_add((b[len] - b'0') as usize);
        len += 1;
    }
    ((len > 0).then_some(n), len)
}

/// `[n]`: the argument index and the bytes it took.
fn arg_index(b: &[u8]) -> Option<(Option<usize>, usize)> {
    if b.first() != Some(&b'[') {
        return None;
    }
    let close = b.iter().position(|c| *c == b']')?;
    let n = std::str::from_utf8(&b[1..close]).ok().and_then(|s| s.parse().ok());
    Some((n, close + 1))
}

fn bad_verb(v: &Value, verb: char) -> String {
    match v {
        Value::Nil => format!("%!{verb}(<nil>)"),
        v => format!("%!{verb}({}={})", v.type_name(), v.to_go_string()),
    }
}

/// Pads `body` (with its sign already in `sign`) to the width.
fn pad(sign: &str, body: &str, f: Flags, zero_ok: bool) -> String {
    let len = sign.chars().count() + body.chars().count();
    let width = f.width.unwrap_or(0);
    if len >= width {
        return format!("{sign}{body}");
    }
    let fill = width - len;
    if f.minus {
        format!("{sign}{body}{}", " ".repeat(fill))
    } else if f.zero && zero_ok {
        format!("{sign}{}{body}", "0".repeat(fill))
    } else {
        format!("{}{sign}{body}", " ".repeat(fill))
    }
}

fn int_sign(neg: bool, f: Flags) -> &'static str {
    if neg {
        "-"
    } else if f.plus {
        "+"
    } else if f.space {
        " "
    } else {
        ""
    }
}

fn format_int(neg: bool, abs: u128, verb: char, f: Flags, v: &Value) -> String {
    let body = match verb {
        'v' | 'd' => abs.to_string(),
        'b' => format!("{abs:b}"),
        'o' => {
            let s = format!("{abs:o}");
            if f.sharp { format!("0{s}") } else { s }
        }
        'O' => format!("0o{abs:o}"),
        'x' => {
            let s = format!("{abs:x}");
            if f.sharp { format!("0x{s}") } else { s }
        }
        'X' => {
            let s = format!("{abs:X}");
            if f.sharp { format!("0X{s}") } else { s }
        }
        'c' => {
            return pad(
                "",
                &char::from_u32(abs as u32).unwrap_or('\u{fffd}').to_string(),
                f,
                false,
            );
        }
        'q' => {
            let c = char::from_u32(abs as u32).unwrap_or('\u{fffd}');
            let q = quote(&c.to_string());
            return pad("", &format!("'{}'", &q[1..q.len() - 1].replace("\\\"", "\"")), f, false);
        }
        'U' => return pad("", &format!("U+{abs:04X}"), f, false),
        _ => return bad_verb(v, verb),
    };
    // A precision is a minimum number of digits and turns zero padding off.
    let body = match f.prec {
        Some(p) if body.len() < p => format!("{}{body}", "0".repeat(p - body.len())),
        Some(0) if abs == 0 => String::new(),
        _ => body,
    };
    pad(int_sign(neg, f), &body, f, f.prec.is_none())
}

fn format_float_verb(x: f64, verb: char, f: Flags, v: &Value) -> String {
    let verb = match verb {
        'v' => 'g',
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => verb,
        'x' | 'X' => {
            let s = hex_float(x, f.prec, verb == 'X');
            let (sign, body) = split_sign(&s, f);
            return pad(sign, body, f, x.is_finite());
        }
        _ => return bad_verb(v, verb),
    };
    let prec = match verb {
        'e' | 'E' | 'f' | 'F' => Some(f.prec.unwrap_or(6)),
        _ => f.prec,
    };
    let mut s = format_float(x, verb, prec);
    if f.sharp && !s.contains('.') && x.is_finite() {
        // `#` keeps the decimal point.
        match s.find(['e', 'E']) {
            Some(e) => s.insert(e, '.'),
            None => s.push('.'),
        }
    }
    let (sign, body) = split_sign(&s, f);
    pad(sign, body, f, x.is_finite())
}

fn split_sign(s: &str, f: Flags) -> (&'static str, &str) {
    if let Some(rest) = s.strip_prefix('-') {
        ("-", rest)
    } else if let Some(rest) = s.strip_prefix('+') {
        // fmt writes +Inf with its sign always.
        ("+", rest)
    } else if f.plus {
        ("+", s)
    } else if f.space {
        (" ", s)
    } else {
        ("", s)
    }
}

/// `%x` of a float64: Go's hexadecimal mantissa and binary exponent (`0x1.8p+00`).
fn hex_float(x: f64, prec: Option<usize>, upper: bool) -> String {
    if !x.is_finite() {
        return format_float(x, 'g', None);
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    let bits = x.abs().to_bits();
    let (mut mant, mut exp) = if x == 0.0 {
        (0u64, 0i64)
    } else {
        let e = ((bits >> 52) & 0x7ff) as i64;
        let m = bits & ((1 << 52) - 1);
        if e == 0 {
            // Subnormal: normalise.
            let shift = m.leading_zeros() as i64 - 11;
            ((m << shift) & ((1 << 52) - 1), -1022 - shift)
        } else {
            (m, e - 1023)
        }
    };
    let mut frac = format!("{mant:013x}");
    if let Some(p) = prec {
        if p < 13 {
            // Round the 52-bit fraction to p hex digits, half to even.
            let drop = (13 - p) * 4;
            let full = (1u64 << 52) | mant;
            let half = 1u64 << (drop - 1);
            let rem = full & ((1u64 << drop) - 1);
            let mut kept = full >> drop;
            if rem > half || (rem == half && kept & 1 == 1) {
                kept += 1;
            }
            if kept >> (p * 4) >= 2 {
                kept >>= 1;
                exp += 1;
            }
            mant = kept & ((1u64 << (p * 4)) - 1);
            frac = if p == 0 {
                String::new()
            } else {
                format!("{mant:0width$x}", width = p)
            };
        } else {
            frac.push_str(&"0".repeat(p - 13));
        }
    } else {
        while frac.ends_with('0') {
            frac.pop();
        }
    }
    let lead = if x == 0.0 { '0' } else { '1' };
    let body = if frac.is_empty() {
        format!("0x{lead}p{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        format!("0x{lead}.{frac}p{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    };
    let body = if upper { body.to_uppercase() } else { body };
    format!("{sign}{body}")
}

fn format_string(s: &str, verb: char, f: Flags, v: &Value) -> String {
    match verb {
        'v' | 's' => {
            let s: String = match f.prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.to_owned(),
            };
            pad("", &s, f, true)
        }
        'q' => {
            if f.sharp && !s.contains('`') && !s.chars().any(|c| c.is_control() && c != '\t') {
                pad("", &format!("`{s}`"), f, false)
            } else {
                pad("", &quote(s), f, false)
            }
        }
        'x' | 'X' => {
            let bytes = match f.prec {
                Some(p) => &s.as_bytes()[..p.min(s.len())],
                None => s.as_bytes(),
            };
            let parts: Vec<String> = bytes
                .iter()
                .map(|b| {
                    let h = if verb == 'x' {
                        format!("{b:02x}")
                    } else {
                        format!("{b:02X}")
                    };
                    if f.sharp { format!("0{verb}{h}") } else { h }
                })
                .collect();
            pad("", &parts.join(if f.space { " " } else { "" }), f, false)
        }
        _ => bad_verb(v, verb),
    }
}

/// One operand formatted with one verb.
fn format_value(v: &Value, verb: char, f: Flags) -> String {
    if verb == 'T' {
        return pad("", &v.type_name(), f, false);
    }
    match v {
        Value::Nil => match verb {
            'v' => pad("", "<nil>", f, false),
            _ => bad_verb(v, verb),
        },
        Value::Bool(b) => match verb {
            'v' | 't' => pad("", &b.to_string(), f, false),
            _ => bad_verb(v, verb),
        },
        Value::Int(i) => match verb {
            'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 's' => bad_verb(v, verb),
            _ => format_int(*i < 0, i.unsigned_abs() as u128, verb, f, v),
        },
        Value::Uint(u) => match verb {
            'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 's' => bad_verb(v, verb),
            _ => format_int(false, *u as u128, verb, f, v),
        },
        Value::Float(x) => format_float_verb(*x, verb, f, v),
        Value::String(s) => format_string(s, verb, f, v),
        Value::List(items) => {
            let parts: Vec<String> = items.iter().map(|x| format_value(x, verb, f)).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Map(m) => {
            let parts: Vec<String> = m
                .entries
                .iter()
                .map(|(k, x)| {
                    format!(
                        "{}:{}",
                        format_value(&Value::from(k.as_str()), verb, f),
                        format_value(x, verb, f)
                    )
                })
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        Value::Object(o) => match verb {
            'v' | 's' => pad("", &o.format(), f, false),
            _ => match o.elements() {
                Some(items) => {
                    let parts: Vec<String> = items.iter().map(|x| format_value(x, verb, f)).collect();
                    format!("[{}]", parts.join(" "))
                }
                None => bad_verb(v, verb),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(v: f64) -> String {
        format_float(v, 'g', None)
    }

    #[test]
    fn shortest_g_switches_to_exponents_at_1e6_and_below_1e_4() {
        for (v, want) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (2.0, "2"),
            (1234.5678, "1234.5678"),
            (999999.0, "999999"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (1234567.891, "1.234567891e+06"),
            (1e20, "1e+20"),
            (1e100, "1e+100"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.00012, "0.00012"),
            (0.000012, "1.2e-05"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (0.1 + 0.2, "0.30000000000000004"),
        ] {
            assert_eq!(g(v), want, "{v}");
        }
    }

    #[test]
    fn precision_g_rounds_half_to_even_and_drops_trailing_zeros() {
        let p4 = |v: f64| format_float(v, 'g', Some(4));
        assert_eq!(p4(12345.0), "1.234e+04");
        assert_eq!(p4(1.0625), "1.062");
        assert_eq!(format_float(0.125, 'g', Some(2)), "0.12");
        assert_eq!(p4(999.95), "1000");
        assert_eq!(p4(12345.6789), "1.235e+04");
        assert_eq!(p4(99995.0), "1e+05");
        assert_eq!(p4(0.00012345), "0.0001234");
        assert_eq!(p4(1e-05), "1e-05");
        assert_eq!(p4(1.235), "1.235");
        assert_eq!(p4(1.0), "1");
        assert_eq!(p4(0.0), "0");
        assert_eq!(p4(1234567.0), "1.235e+06");
        assert_eq!(format_float(123.0, 'g', Some(10)), "123");
        assert_eq!(format_float(1e6, 'g', Some(10)), "1000000");
    }

    #[test]
    fn printf_verbs_as_go() {
        let f = Value::Float(1.5);
        let i = Value::Int(42);
        let s = Value::from("héllo");
        let cases: Vec<(&str, Vec<Value>, &str)> = vec![
            ("%v", vec![f.clone()], "1.5"),
            ("%s", vec![f.clone()], "%!s(float64=1.5)"),
            ("%d", vec![f.clone()], "%!d(float64=1.5)"),
            ("%f", vec![f.clone()], "1.500000"),
            ("%.2f", vec![Value::Float(1234567.891)], "1234567.89"),
            ("%e", vec![f.clone()], "1.500000e+00"),
            ("%g", vec![f.clone()], "1.5"),
            ("%q", vec![f.clone()], "%!q(float64=1.5)"),
            ("%x", vec![f.clone()], "0x1.8p+00"),
            ("%t", vec![f.clone()], "%!t(float64=1.5)"),
            ("%v", vec![i.clone()], "42"),
            ("%s", vec![i.clone()], "%!s(int=42)"),
            ("%f", vec![i.clone()], "%!f(int=42)"),
            ("%q", vec![i.clone()], "'*'"),
            ("%x", vec![i.clone()], "2a"),
            ("%X", vec![i.clone()], "2A"),
            ("%s", vec![s.clone()], "héllo"),
            ("%d", vec![s.clone()], "%!d(string=héllo)"),
            ("%q", vec![s.clone()], "\"héllo\""),
            ("%x", vec![s.clone()], "68c3a96c6c6f"),
            ("%X", vec![s.clone()], "68C3A96C6C6F"),
            ("%d", vec![Value::Float(1234567.891)], "%!d(float64=1.234567891e+06)"),
            ("%d", vec![], "%!d(MISSING)"),
            (
                "%d",
                vec![Value::Int(1), Value::Int(2), Value::from("x")],
                "1%!(EXTRA int=2, string=x)",
            ),
            ("%z", vec![Value::Int(1)], "%!z(int=1)"),
            ("50%", vec![], "50%!(NOVERB)"),
            ("%s", vec![Value::Nil], "%!s(<nil>)"),
            ("%v", vec![Value::Nil], "<nil>"),
            ("%5.1f", vec![Value::Float(12.34)], " 12.3"),
            ("%-5d|", vec![i.clone()], "42   |"),
            ("%05d", vec![i.clone()], "00042"),
            ("%08.3f", vec![f.clone()], "0001.500"),
            ("%+d", vec![i.clone()], "+42"),
            ("%*d", vec![Value::Int(5), i.clone()], "   42"),
            ("%[2]d %[1]d", vec![Value::Int(1), Value::Int(2)], "2 1"),
            ("%08.3f", vec![Value::Float(f64::NAN)], "     NaN"),
            ("%0.2f", vec![Value::Float(3720.01)], "3720.01"),
            ("%.0f", vec![Value::Float(2.5)], "2"),
            ("%%", vec![], "%"),
            (
                "%s",
                vec![Value::list(vec![Value::from("a"), Value::from("b")])],
                "[a b]",
            ),
            ("%.3s", vec![Value::from("abcdef")], "abc"),
            ("%6.2f%%", vec![Value::Float(12.3456)], " 12.35%"),
        ];
        for (fmt, args, want) in cases {
            assert_eq!(sprintf(fmt, &args), want, "{fmt} {args:?}");
        }
    }

    #[test]
    fn print_spaces_only_between_non_strings() {
        assert_eq!(sprint(&[Value::Int(1), Value::Int(2)]), "1 2");
        assert_eq!(sprint(&[Value::from("a"), Value::Int(1), Value::from("b")]), "a1b");
        assert_eq!(sprintln(&[Value::from("a"), Value::Int(1)]), "a 1\n");
    }

    #[test]
    fn quote_escapes_as_go() {
        assert_eq!(quote("a\"b\\c\nd\te"), r#""a\"b\\c\nd\te""#);
        assert_eq!(quote("héllo"), "\"héllo\"");
        assert_eq!(quote("\x01"), "\"\\x01\"");
    }
}
