//! Log records as they arrive and are stored: streams of entries, the enrichment
//! Loki applies on push (`service_name`, `detected_level`, structured-metadata
//! names), and the binary form they take in the write-ahead log.

use sextant_model::Labels;

/// One log entry of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Timestamp, nanoseconds since the epoch.
    pub ts: i64,
    /// The line (the record's body).
    pub line: String,
    /// Structured metadata in arrival order: OTLP attributes, severity, trace and
    /// span ids, and `detected_level`.
    pub metadata: Vec<(String, String)>,
}

impl Entry {
    /// The value of a structured-metadata field.
    pub fn meta(&self, name: &str) -> Option<&str> {
        self.metadata.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Entries of one stream (one label set) in a push.
#[derive(Debug, Clone, PartialEq)]
pub struct PushStream {
    /// The stream's labels.
    pub labels: Labels,
    /// Its entries.
    pub entries: Vec<Entry>,
}

/// The labels Loki looks in, in this order, for a level (`log_level_fields`).
pub const LEVEL_FIELDS: &[&str] = &[
    "level",
    "LEVEL",
    "Level",
    "log.level",
    "severity",
    "SEVERITY",
    "Severity",
    "SeverityText",
    "lvl",
    "LVL",
    "Lvl",
    "severity_text",
    "Severity_Text",
    "SEVERITY_TEXT",
];

/// The labels Loki copies into `service_name` when a stream has none
/// (`discover_service_name`, Loki 3.7).
pub const SERVICE_NAME_SOURCES: &[&str] = &[
    "service",
    "app",
    "application",
    "app_name",
    "name",
    "app_kubernetes_io_name",
    "container",
    "container_name",
    "k8s_container_name",
    "component",
    "workload",
    "job",
    "k8s_job_name",
];

/// Gives a stream without `service_name` one, as Loki 3 does on push: the first
/// present label of [`SERVICE_NAME_SOURCES`], else `unknown_service`.
pub fn with_service_name(labels: &Labels) -> Labels {
    if labels.get("service_name").is_some() {
        return labels.clone();
    }
    let value = SERVICE_NAME_SOURCES
        .iter()
        .find_map(|n| labels.get(n).filter(|v| !v.is_empty()))
        .unwrap_or("unknown_service")
        .to_owned();
    let mut b = labels.to_builder();
    b.set("service_name", &value);
    b.build()
}

/// Maps a level's synonyms to Loki's level names, case-insensitively; `None` for
/// anything else.
fn canonical_level(value: &str) -> Option<&'static str> {
    Some(match value.to_ascii_lowercase().as_str() {
        "trace" | "trc" => "trace",
        "debug" | "dbg" => "debug",
        "info" | "inf" | "information" => "info",
        "warn" | "wrn" | "warning" => "warn",
        "error" | "err" => "error",
        "critical" => "critical",
        "fatal" => "fatal",
        _ => return None,
    })
}

fn normalize_level(value: &str) -> String {
    canonical_level(value)
        .map(str::to_owned)
        .unwrap_or_else(|| value.to_owned())
}

/// The `detected_level` Loki 3.7 gives an entry: an existing value normalised, a
/// level label of the stream, a level field of the structured metadata, the OTLP
/// severity number, a level key in a JSON or logfmt line, else a keyword in the
/// line, else `unknown`.
pub fn detected_level(stream: &Labels, entry: &Entry) -> String {
    if let Some(v) = entry.meta("detected_level") {
        return normalize_level(v);
    }
    if let Some(v) = LEVEL_FIELDS.iter().find_map(|f| stream.get(f)) {
        return normalize_level(v);
    }
    if let Some(v) = LEVEL_FIELDS.iter().find_map(|f| entry.meta(f)) {
        return normalize_level(v);
    }
    if let Some(n) = entry.meta("severity_number") {
        return match n.parse::<i64>() {
            Err(_) => "info",
            Ok(0) => "unknown",
            Ok(n) if n <= 4 => "trace",
            Ok(n) if n <= 8 => "debug",
            Ok(n) if n <= 12 => "info",
            Ok(n) if n <= 16 => "warn",
            Ok(n) if n <= 20 => "error",
            Ok(n) if n <= 24 => "fatal",
            Ok(_) => "unknown",
        }
        .to_owned();
    }
    level_from_line(&entry.line).to_owned()
}

fn level_from_line(line: &str) -> &'static str {
    let trimmed = line.trim();
    let found = if trimmed.starts_with('{') && trimmed.ends_with('}') {
        json_level(trimmed)
    } else if line.contains('=') {
        logfmt_level(line)
    } else {
        None
    };
    found
        .and_then(|v| canonical_level(&v))
        .unwrap_or_else(|| keyword_level(line))
}

/// The first level key (top level or one level down) with a string value.
fn json_level(line: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    fn walk(v: &serde_json::Value, depth: usize) -> Option<String> {
        let obj = v.as_object()?;
        for (k, v) in obj {
            if LEVEL_FIELDS.contains(&k.as_str())
                && let Some(s) = v.as_str()
            {
                return Some(s.to_owned());
            }
            if depth < 2
                && v.is_object()
                && let Some(found) = walk(v, depth + 1)
            {
                return Some(found);
            }
        }
        None
    }
    walk(&value, 1)
}

fn logfmt_level(line: &str) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for (k, v) in crate::logql::parsers::logfmt_pairs(line) {
        if let Some(i) = LEVEL_FIELDS.iter().position(|f| f.eq_ignore_ascii_case(&k))
            && best.as_ref().is_none_or(|(b, _)| i < *b)
        {
            best = Some((i, v));
        }
    }
    best.map(|(_, v)| v)
}

fn keyword_level(line: &str) -> &'static str {
    const WORDS: &[(&str, &str)] = &[
        ("trace", "trace"),
        ("debug", "debug"),
        ("fatal", "fatal"),
        ("critical", "critical"),
        ("error", "error"),
        ("err", "error"),
        ("warning", "warn"),
        ("warn", "warn"),
        ("info", "info"),
    ];
    let lower = line.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let left_ok = |i: usize| i == 0 || matches!(bytes[i - 1], b' ' | b'\t' | b'\n' | b'[' | b'(' | b'{' | b'"' | b'=');
    let right_ok = |j: usize| {
        j >= bytes.len()
            || matches!(
                bytes[j],
                b' ' | b'\t' | b'\n' | b'[' | b']' | b'(' | b')' | b'{' | b'}' | b':' | b',' | b'!' | b'"' | b'='
            )
    };
    let mut best: Option<(usize, &'static str)> = None;
    for (word, level) in WORDS {
        let mut from = 0;
        while let Some(p) = lower[from..].find(word) {
            let i = from + p;
            if left_ok(i) && right_ok(i + word.len()) {
                if best.is_none_or(|(b, _)| i < b) {
                    best = Some((i, level));
                }
                break;
            }
            from = i + 1;
        }
    }
    best.map(|(_, l)| l).unwrap_or("unknown")
}

/// A structured-metadata or attribute name as Loki 3.6+ stores it: every
/// character outside `[A-Za-z0-9_]` becomes `_`, runs of `_` collapse (names
/// like `__x__` are kept), and a leading digit gets `key_` in front.
pub fn normalize_name(name: &str) -> String {
    if name.starts_with("__") && name.ends_with("__") && name.len() > 4 {
        return name.to_owned();
    }
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    }
    out
}

// ---- the write-ahead log's record: one push, numbered -------------------------

/// Encodes a push under its sequence number.
pub(crate) fn encode_push(seq: u64, streams: &[PushStream]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        64 + streams
            .iter()
            .map(|s| s.entries.iter().map(|e| e.line.len() + 32).sum::<usize>())
            .sum::<usize>(),
    );
    out.extend_from_slice(&seq.to_le_bytes());
    put_u32(&mut out, streams.len());
    for s in streams {
        put_u32(&mut out, s.labels.len());
        for l in s.labels.iter() {
            put_str(&mut out, &l.name);
            put_str(&mut out, &l.value);
        }
        put_u32(&mut out, s.entries.len());
        for e in &s.entries {
            out.extend_from_slice(&e.ts.to_le_bytes());
            put_str(&mut out, &e.line);
            put_u32(&mut out, e.metadata.len());
            for (k, v) in &e.metadata {
                put_str(&mut out, k);
                put_str(&mut out, v);
            }
        }
    }
    out
}

/// Decodes [`encode_push`]'s output; `None` if it is not whole.
pub(crate) fn decode_push(mut b: &[u8]) -> Option<(u64, Vec<PushStream>)> {
    let seq = u64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?);
    let n = get_u32(&mut b)?;
    let mut streams = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        let nl = get_u32(&mut b)?;
        let mut pairs = Vec::with_capacity(nl.min(256));
        for _ in 0..nl {
            pairs.push((get_str(&mut b)?, get_str(&mut b)?));
        }
        let labels = Labels::from_pairs(pairs).ok()?;
        let ne = get_u32(&mut b)?;
        let mut entries = Vec::with_capacity(ne.min(1 << 16));
        for _ in 0..ne {
            let ts = i64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?);
            let line = get_str(&mut b)?;
            let nm = get_u32(&mut b)?;
            let mut metadata = Vec::with_capacity(nm.min(256));
            for _ in 0..nm {
                metadata.push((get_str(&mut b)?, get_str(&mut b)?));
            }
            entries.push(Entry { ts, line, metadata });
        }
        streams.push(PushStream { labels, entries });
    }
    b.is_empty().then_some((seq, streams))
}

/// Encodes structured metadata for the index's stored field.
pub(crate) fn encode_meta(meta: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    put_u32(&mut out, meta.len());
    for (k, v) in meta {
        put_str(&mut out, k);
        put_str(&mut out, v);
    }
    out
}

/// Decodes [`encode_meta`]'s output (empty if damaged).
pub(crate) fn decode_meta(mut b: &[u8]) -> Vec<(String, String)> {
    let Some(n) = get_u32(&mut b) else { return Vec::new() };
    let mut out = Vec::with_capacity(n.min(256));
    for _ in 0..n {
        match (get_str(&mut b), get_str(&mut b)) {
            (Some(k), Some(v)) => out.push((k, v)),
            _ => break,
        }
    }
    out
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if b.len() < n {
        return None;
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Some(head)
}

fn get_u32(b: &mut &[u8]) -> Option<usize> {
    Some(u32::from_le_bytes(take(b, 4)?.try_into().ok()?) as usize)
}

fn get_str(b: &mut &[u8]) -> Option<String> {
    let n = get_u32(b)?;
    String::from_utf8(take(b, n)?.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(line: &str, meta: &[(&str, &str)]) -> Entry {
        Entry {
            ts: 1,
            line: line.into(),
            metadata: meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn detected_level_follows_lokis_order() {
        let plain = Labels::from_pairs([("app", "a")]).unwrap();
        let levelled = Labels::from_pairs([("app", "a"), ("level", "WARNING")]).unwrap();
        assert_eq!(detected_level(&levelled, &entry("error here", &[])), "warn");
        assert_eq!(
            detected_level(&plain, &entry("x", &[("severity_text", "Error")])),
            "error"
        );
        assert_eq!(
            detected_level(&plain, &entry("x", &[("severity_number", "13")])),
            "warn"
        );
        assert_eq!(
            detected_level(&plain, &entry(r#"{"msg":"x","lvl":"dbg"}"#, &[])),
            "debug"
        );
        assert_eq!(
            detected_level(&plain, &entry(r#"{"a":{"level":"fatal"}}"#, &[])),
            "fatal"
        );
        assert_eq!(detected_level(&plain, &entry("ts=1 LEVEL=err msg=x", &[])), "error");
        assert_eq!(detected_level(&plain, &entry("GET /x [error] failed", &[])), "error");
        assert_eq!(
            detected_level(&plain, &entry("an info line, then a warning", &[])),
            "info"
        );
        assert_eq!(detected_level(&plain, &entry("terrible", &[])), "unknown");
        assert_eq!(
            detected_level(&plain, &entry("x", &[("detected_level", "NOTICE")])),
            "NOTICE"
        );
    }

    #[test]
    fn service_name_discovery() {
        let l = Labels::from_pairs([("container", "c"), ("app", "web")]).unwrap();
        assert_eq!(with_service_name(&l).get("service_name"), Some("web"));
        let none = Labels::from_pairs([("x", "y")]).unwrap();
        assert_eq!(with_service_name(&none).get("service_name"), Some("unknown_service"));
    }

    #[test]
    fn names_normalised_as_loki_does() {
        assert_eq!(normalize_name("trace.id"), "trace_id");
        assert_eq!(normalize_name("http..method"), "http_method");
        assert_eq!(normalize_name("1x"), "key_1x");
        assert_eq!(normalize_name("__name__"), "__name__");
    }

    #[test]
    fn push_round_trips() {
        let s = vec![PushStream {
            labels: Labels::from_pairs([("app", "a")]).unwrap(),
            entries: vec![entry("hello", &[("k", "v")])],
        }];
        let b = encode_push(7, &s);
        assert_eq!(decode_push(&b), Some((7, s)));
        assert_eq!(decode_push(&b[..b.len() - 1]), None);
    }
}
