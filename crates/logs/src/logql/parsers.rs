//! LogQL's line parsers (`json`, `logfmt`, `pattern`, `unpack`) and the value
//! conversions of label filters and `unwrap` (Go durations, humanized byte sizes).

use super::ast::JsonPathPart;

/// Sanitises an extracted key as Loki does: every rune outside `[A-Za-z0-9_]`
/// becomes `_`, and a leading digit gets `_` in front.
pub fn sanitize_key(key: &str) -> String {
    let key = key.trim();
    let mut out = String::with_capacity(key.len() + 1);
    for c in key.chars() {
        out.push(if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' });
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Flattened `json` labels of a line, in document order, or the error Loki gives.
pub fn json_flatten(line: &str) -> Result<Vec<(String, String)>, String> {
    let value: serde_json::Value = serde_json::from_str(first_json_value(line))
        .map_err(|_| "Value looks like object, but can't find closing '}' symbol".to_owned())?;
    let obj = value
        .as_object()
        .ok_or_else(|| "Value looks like object, but can't find closing '}' symbol".to_owned())?;
    let mut out = Vec::new();
    fn walk(prefix: &str, obj: &serde_json::Map<String, serde_json::Value>, out: &mut Vec<(String, String)>) {
        for (k, v) in obj {
            let part = sanitize_part(k, prefix.is_empty());
            let key = match (prefix.is_empty(), part.is_empty()) {
                (_, true) => prefix.to_owned(),
                (true, false) => part,
                (false, false) => format!("{prefix}_{part}"),
            };
            match v {
                serde_json::Value::Object(o) => walk(&key, o, out),
                serde_json::Value::Null | serde_json::Value::Array(_) => {}
                serde_json::Value::String(s) => {
                    if !key.is_empty() {
                        out.push((key, s.clone()));
                    }
                }
                other => {
                    if !key.is_empty() {
                        out.push((key, other.to_string()));
                    }
                }
            }
        }
    }
    walk("", obj, &mut out);
    Ok(out)
}

fn sanitize_part(k: &str, first: bool) -> String {
    let k = k.trim();
    if k.is_empty() {
        return String::new();
    }
    let mut out: String = k
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect();
    if first && out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The first JSON value of a line (text after its end is ignored, as Loki's
/// parser does).
fn first_json_value(line: &str) -> &str {
    let mut de = serde_json::Deserializer::from_str(line).into_iter::<serde::de::IgnoredAny>();
    match de.next() {
        Some(Ok(_)) => &line[..de.byte_offset()],
        _ => line,
    }
}

/// `json a="path"`: the value at a path (strings unescaped, objects and arrays as
/// JSON text, null and missing as `""`), or an error for a line that is not JSON.
pub fn json_path(doc: &serde_json::Value, path: &[JsonPathPart]) -> String {
    let mut cur = doc;
    for p in path {
        let next = match p {
            JsonPathPart::Key(k) => cur.get(k.as_str()),
            JsonPathPart::Index(i) => cur.get(*i),
        };
        match next {
            Some(v) => cur = v,
            None => return String::new(),
        }
    }
    match cur {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Parses a line for `json` with parameters.
pub fn json_doc(line: &str) -> Result<Option<serde_json::Value>, (String, Option<String>)> {
    if line.is_empty() {
        return Ok(None);
    }
    if !line.starts_with(['{', '[', '"']) {
        return Err(("JSONParserErr".into(), None));
    }
    serde_json::from_str(first_json_value(line))
        .map(Some)
        .map_err(|e| ("JSONParserErr".into(), Some(e.to_string())))
}

/// Parses a `json` extraction path: `a.b[0]["c d"]`.
pub fn parse_json_path(s: &str) -> Result<Vec<JsonPathPart>, String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    let mut cur = String::new();
    while i < b.len() {
        match b[i] {
            b'.' => {
                if !cur.is_empty() {
                    out.push(JsonPathPart::Key(std::mem::take(&mut cur)));
                }
                i += 1;
            }
            b'[' => {
                if !cur.is_empty() {
                    out.push(JsonPathPart::Key(std::mem::take(&mut cur)));
                }
                let end = s[i..].find(']').ok_or_else(|| format!("invalid json path {s:?}"))? + i;
                let inner = s[i + 1..end].trim();
                if let Some(q) = inner.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
                    out.push(JsonPathPart::Key(q.to_owned()));
                } else {
                    out.push(JsonPathPart::Index(
                        inner.parse().map_err(|_| format!("invalid json path {s:?}"))?,
                    ));
                }
                i = end + 1;
            }
            _ => {
                let c = s[i..].chars().next().expect("in bounds");
                cur.push(c);
                i += c.len_utf8();
            }
        }
    }
    if !cur.is_empty() {
        out.push(JsonPathPart::Key(cur));
    }
    if out.is_empty() {
        return Err(format!("invalid json path {s:?}"));
    }
    Ok(out)
}

/// A logfmt syntax error: 1-based position and message.
#[derive(Debug, Clone, PartialEq)]
pub struct LogfmtError {
    /// Position (1-based byte).
    pub pos: usize,
    /// What went wrong.
    pub msg: &'static str,
}

/// Scans logfmt pairs; a pair without a value has `None`. Stops at the first
/// malformed pair, returning the pairs before it and the error.
pub fn logfmt_scan(line: &str) -> (Vec<(String, Option<String>)>, Option<LogfmtError>) {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && b[i] <= b' ' {
            i += 1;
        }
        if i >= b.len() {
            return (out, None);
        }
        let start = i;
        while i < b.len() && b[i] > b' ' && b[i] != b'=' && b[i] != b'"' {
            i += 1;
        }
        if i == start {
            let msg = if b[i] == b'=' {
                "unexpected '='"
            } else {
                "unexpected '\"'"
            };
            return (out, Some(LogfmtError { pos: i + 1, msg }));
        }
        let key = line[start..i].to_owned();
        if i >= b.len() || b[i] <= b' ' {
            out.push((key, None));
            continue;
        }
        if b[i] == b'"' {
            return (
                out,
                Some(LogfmtError {
                    pos: i + 1,
                    msg: "unexpected '\"'",
                }),
            );
        }
        // b[i] == '='
        i += 1;
        if i >= b.len() || b[i] <= b' ' {
            out.push((key, None));
            continue;
        }
        if b[i] == b'"' {
            let qstart = i;
            i += 1;
            let mut escaped = false;
            let mut closed = false;
            while i < b.len() {
                match b[i] {
                    b'\\' if !escaped => escaped = true,
                    b'"' if !escaped => {
                        closed = true;
                        break;
                    }
                    _ => escaped = false,
                }
                i += 1;
            }
            if !closed {
                return (
                    out,
                    Some(LogfmtError {
                        pos: b.len() + 1,
                        msg: "unterminated quoted value",
                    }),
                );
            }
            let quoted = &line[qstart..=i];
            i += 1;
            match serde_json::from_str::<String>(quoted) {
                Ok(v) => out.push((key, Some(v))),
                Err(_) => {
                    return (
                        out,
                        Some(LogfmtError {
                            pos: qstart + 1,
                            msg: "invalid quoted value",
                        }),
                    );
                }
            }
            continue;
        }
        let vstart = i;
        while i < b.len() && b[i] > b' ' {
            if b[i] == b'=' {
                return (
                    out,
                    Some(LogfmtError {
                        pos: i + 1,
                        msg: "unexpected '='",
                    }),
                );
            }
            if b[i] == b'"' {
                return (
                    out,
                    Some(LogfmtError {
                        pos: i + 1,
                        msg: "unexpected '\"'",
                    }),
                );
            }
            i += 1;
        }
        out.push((key, Some(line[vstart..i].to_owned())));
    }
}

/// Key/value pairs of a logfmt line, malformed pairs skipped (lenient parsing).
pub fn logfmt_pairs(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = line;
    let mut offset = 0;
    loop {
        let (pairs, err) = logfmt_scan(rest);
        out.extend(pairs.into_iter().filter_map(|(k, v)| Some((k, v?))));
        let Some(err) = err else { return out };
        // Skip past the malformed token and go on.
        let at = (err.pos - 1).min(rest.len());
        let skip = rest[at..]
            .find(|c: char| c <= ' ')
            .map(|p| at + p)
            .unwrap_or(rest.len());
        if skip == 0 || skip >= rest.len() {
            return out;
        }
        offset += skip;
        rest = &line[offset..];
    }
}

/// A `pattern` expression: literals and captures (`<name>`, `<_>`).
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    parts: Vec<PatternPart>,
}

#[derive(Debug, Clone, PartialEq)]
enum PatternPart {
    Literal(String),
    Capture(Option<String>),
}

impl Pattern {
    /// Parses a pattern; `named` allows named captures (the parser stage) or not
    /// (the `|>` filter).
    pub fn parse(s: &str, named: bool) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        let mut lit = String::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('<')
                && let Some(end) = after.find('>')
            {
                let name = &after[..end];
                if name == "_"
                    || (!name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        && !name.starts_with(|c: char| c.is_ascii_digit()))
                {
                    if !lit.is_empty() {
                        parts.push(PatternPart::Literal(std::mem::take(&mut lit)));
                    }
                    if matches!(parts.last(), Some(PatternPart::Capture(_))) {
                        return Err("consecutive capture".into());
                    }
                    if name == "_" {
                        parts.push(PatternPart::Capture(None));
                    } else if named {
                        parts.push(PatternPart::Capture(Some(name.to_owned())));
                    } else {
                        return Err(format!("named captures are not allowed: found '<{name}>'"));
                    }
                    rest = &after[end + 1..];
                    continue;
                }
            }
            let c = rest.chars().next().expect("not empty");
            lit.push(c);
            rest = &rest[c.len_utf8()..];
        }
        if !lit.is_empty() {
            parts.push(PatternPart::Literal(lit));
        }
        if named && !parts.iter().any(|p| matches!(p, PatternPart::Capture(Some(_)))) {
            return Err("at least one capture is required".into());
        }
        Ok(Self { parts })
    }

    /// Captures of a line (the parser stage: anchored at the start).
    pub fn captures(&self, line: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut rest = line;
        let mut i = 0;
        if let Some(PatternPart::Literal(l)) = self.parts.first() {
            match rest.strip_prefix(l.as_str()) {
                Some(r) => rest = r,
                None => return out,
            }
            i = 1;
        }
        while i < self.parts.len() {
            let PatternPart::Capture(name) = &self.parts[i] else {
                i += 1;
                continue;
            };
            match self.parts.get(i + 1) {
                Some(PatternPart::Literal(l)) => match rest.find(l.as_str()) {
                    Some(p) => {
                        if let Some(n) = name {
                            out.push((n.clone(), rest[..p].to_owned()));
                        }
                        rest = &rest[p + l.len()..];
                        i += 2;
                    }
                    None => {
                        if let Some(n) = name {
                            out.push((n.clone(), rest.to_owned()));
                        }
                        return out;
                    }
                },
                _ => {
                    if let Some(n) = name {
                        out.push((n.clone(), rest.to_owned()));
                    }
                    return out;
                }
            }
        }
        out
    }

    /// Whether a line matches (the `|>` filter).
    pub fn test(&self, line: &str) -> bool {
        let mut rest = line;
        let mut after_capture = false;
        for (i, part) in self.parts.iter().enumerate() {
            match part {
                PatternPart::Capture(_) => after_capture = true,
                PatternPart::Literal(l) => {
                    let found = if i == 0 {
                        rest.find(l.as_str())
                    } else if after_capture {
                        rest.get(1..).and_then(|r| r.find(l.as_str())).map(|p| p + 1)
                    } else {
                        rest.find(l.as_str())
                    };
                    match found {
                        Some(p) => rest = &rest[p + l.len()..],
                        None => return false,
                    }
                    after_capture = false;
                }
            }
        }
        if after_capture {
            !rest.is_empty()
        } else {
            rest.is_empty()
        }
    }
}

/// Removes ANSI colour sequences.
pub fn decolorize(line: &str) -> String {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"[\x1B\x9B][\[\]()#;?]*(?:(?:(?:[a-zA-Z\d]*(?:;[a-zA-Z\d]*)*)?\x07)|(?:(?:\d{1,4}(?:;\d{0,4})*)?[\dA-PRZcf-ntqry=><~]))")
            .expect("valid")
    })
    .replace_all(line, "")
    .into_owned()
}

/// Go's `time.ParseDuration`, in seconds, with Go's error text.
pub fn parse_go_duration(s: &str) -> Result<f64, String> {
    let orig = s;
    let err = |m: &str| format!("time: {m} {:?}", orig);
    let mut s = s;
    let neg = s.starts_with('-');
    if neg || s.starts_with('+') {
        s = &s[1..];
    }
    if s == "0" {
        return Ok(0.0);
    }
    if s.is_empty() {
        return Err(err("invalid duration"));
    }
    let mut total = 0.0;
    while !s.is_empty() {
        let num_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
        if num_end == 0 {
            return Err(err("invalid duration"));
        }
        let n: f64 = s[..num_end].parse().map_err(|_| err("invalid duration"))?;
        s = &s[num_end..];
        let unit_end = s.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(s.len());
        let unit = &s[..unit_end];
        if unit.is_empty() {
            return Err(err("missing unit in duration"));
        }
        let mult = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("time: unknown unit {unit:?} in duration {orig:?}")),
        };
        total += n * mult;
        s = &s[unit_end..];
    }
    Ok(if neg { -total } else { total })
}

/// Prometheus' duration (`ms s m h d w y`, integers, in decreasing order), in ns.
pub fn parse_prom_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("not a valid duration string: {s:?}");
    if s == "0" {
        return Ok(0);
    }
    let mut rest = s;
    let mut total: i64 = 0;
    let mut last_rank = usize::MAX;
    const UNITS: &[(&str, i64)] = &[
        ("y", 365 * 86400 * 1_000_000_000),
        ("w", 7 * 86400 * 1_000_000_000),
        ("d", 86400 * 1_000_000_000),
        ("h", 3600 * 1_000_000_000),
        ("ms", 1_000_000),
        ("m", 60 * 1_000_000_000),
        ("s", 1_000_000_000),
    ];
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if end == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..end].parse().map_err(|_| bad())?;
        rest = &rest[end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        let Some((u, mult)) = UNITS.iter().find(|(u, _)| *u == unit) else {
            if unit.is_empty() {
                return Err(bad());
            }
            return Err(format!("unknown unit {unit:?} in duration {s:?}"));
        };
        // Order: y w d h m s ms.
        let order = match *u {
            "y" => 0,
            "w" => 1,
            "d" => 2,
            "h" => 3,
            "m" => 4,
            "s" => 5,
            _ => 6,
        };
        if last_rank != usize::MAX && order <= last_rank {
            return Err(bad());
        }
        last_rank = order;
        total = total.saturating_add(n.saturating_mul(*mult));
        rest = &rest[u.len()..];
    }
    Ok(total)
}

/// go-humanize's `ParseBytes`: `10KB` = 10000, `1KiB` = 1024, spaces and commas
/// allowed, case-insensitive units, fractions truncated.
pub fn parse_bytes(s: &str) -> Result<f64, String> {
    let cleaned: String = s.chars().filter(|c| *c != ',').collect();
    let t = cleaned.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let num: f64 = t[..split]
        .parse()
        .map_err(|_| format!("strconv.ParseFloat: parsing {:?}: invalid syntax", &t[..split]))?;
    let unit = t[split..].trim().to_ascii_lowercase();
    let mult: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mi" | "mib" => 1024f64.powi(2),
        "g" | "gb" => 1e9,
        "gi" | "gib" => 1024f64.powi(3),
        "t" | "tb" => 1e12,
        "ti" | "tib" => 1024f64.powi(4),
        "p" | "pb" => 1e15,
        "pi" | "pib" => 1024f64.powi(5),
        _ => return Err(format!("unhandled size name: {unit}")),
    };
    Ok((num * mult).trunc())
}

/// Go's `strconv.ParseFloat` with its error text.
pub fn parse_go_float(s: &str) -> Result<f64, String> {
    let t = s;
    let lower = t.to_ascii_lowercase();
    let parsed = match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" => Some(if lower.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        }),
        "nan" => Some(f64::NAN),
        _ => None,
    };
    if let Some(v) = parsed {
        return Ok(v);
    }
    if t.is_empty() || t.contains(char::is_whitespace) || t.ends_with('.') && t.len() == 1 {
        return Err(format!("strconv.ParseFloat: parsing {t:?}: invalid syntax"));
    }
    t.parse::<f64>()
        .map_err(|_| format!("strconv.ParseFloat: parsing {t:?}: invalid syntax"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_flattens_as_loki() {
        let got =
            json_flatten(r#"{"a.b": {"c": "d"}, "e": "f", "n": 1.5, "x": null, "arr": [1], "1a": true}"#).unwrap();
        assert_eq!(
            got,
            vec![
                ("_1a".to_string(), "true".to_string()),
                ("a_b_c".into(), "d".into()),
                ("e".into(), "f".into()),
                ("n".into(), "1.5".into())
            ]
        );
        assert!(json_flatten("not json").is_err());
        assert!(json_flatten(r#"{"a":1} trailing"#).is_ok());
    }

    #[test]
    fn logfmt_strict_errors() {
        let (pairs, err) = logfmt_scan(r#"good=1 bad="unterminated"#);
        assert_eq!(pairs, vec![("good".to_string(), Some("1".to_string()))]);
        assert_eq!(
            err,
            Some(LogfmtError {
                pos: 25,
                msg: "unterminated quoted value"
            })
        );
        assert_eq!(
            logfmt_pairs(r#"a=1 msg="hi there" flag b=2"#),
            vec![
                ("a".into(), "1".into()),
                ("msg".into(), "hi there".into()),
                ("b".into(), "2".into())
            ]
        );
    }

    #[test]
    fn patterns() {
        let p = Pattern::parse(r#"<_> msg="<method> <path> (<status>) <duration>""#, true).unwrap();
        let got = p.captures(r#"level=debug ts=x msg="POST /loki/api/v1/push (204) 1.238734ms""#);
        assert_eq!(got[0], ("method".into(), "POST".into()));
        assert_eq!(got[3], ("duration".into(), "1.238734ms".into()));
        let p = Pattern::parse("<method> <path>", true).unwrap();
        assert_eq!(p.captures("POST"), vec![("method".into(), "POST".into())]);
        let f = Pattern::parse("GET /api", false).unwrap();
        assert!(!f.test("GET /api 200"));
        assert!(f.test("GET /api"));
        assert!(Pattern::parse("<a>", false).is_err());
    }

    #[test]
    fn conversions() {
        assert_eq!(parse_go_duration("500ms").unwrap(), 0.5);
        assert_eq!(parse_go_duration("1h30m").unwrap(), 5400.0);
        assert_eq!(
            parse_go_duration("1d").unwrap_err(),
            "time: unknown unit \"d\" in duration \"1d\""
        );
        assert_eq!(
            parse_go_duration("90").unwrap_err(),
            "time: missing unit in duration \"90\""
        );
        assert_eq!(parse_bytes("1KiB").unwrap(), 1024.0);
        assert_eq!(parse_bytes("2,048").unwrap(), 2048.0);
        assert_eq!(parse_bytes("3 kB").unwrap(), 3000.0);
        assert_eq!(parse_prom_duration("5m").unwrap(), 300_000_000_000);
        assert_eq!(parse_prom_duration("1h30m").unwrap(), 5_400_000_000_000);
        assert!(parse_prom_duration("1.5m").is_err());
        assert_eq!(parse_go_float("200.0").unwrap(), 200.0);
        assert!(parse_go_float("250ms").is_err());
    }
}
