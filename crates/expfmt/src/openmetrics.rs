//! Strict OpenMetrics 1.0 text parser.
//!
//! Beyond syntax it enforces the semantic rules of the OpenMetrics specification that
//! its conformance suite checks: metadata before samples and never repeated, no name
//! clashes between families, contiguous label groups with non-decreasing timestamps,
//! type-specific labels and value ranges, histogram invariants, exemplars only where
//! allowed, and a final `# EOF`.

use std::collections::HashSet;

use sextant_model::{Labels, MetricMetadata, MetricType, is_valid_label_name, is_valid_metric_name};

use crate::number::{parse_om_float, seconds_to_ms};
use crate::{Error, Exemplar, Exposition, ParsedSample, Result};

/// Longest exemplar label set, in characters of names plus values.
const EXEMPLAR_MAX_CHARS: usize = 128;

pub(crate) fn parse(text: &str) -> Result<Exposition> {
    parse_with_spans(text).map(|(exposition, _)| exposition)
}

/// Where a sample's series text (name and label set) sits in the body, and its line.
pub(crate) struct SeriesSpan {
    pub start: usize,
    pub end: usize,
    pub line: usize,
}

/// [`parse`], also returning each sample's [`SeriesSpan`], in the same order.
pub(crate) fn parse_with_spans(text: &str) -> Result<(Exposition, Vec<SeriesSpan>)> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    let mut p = Parser {
        base: text.as_ptr() as usize,
        ..Parser::default()
    };
    let mut saw_eof = false;
    for (i, line) in body.split('\n').enumerate() {
        let lineno = i + 1;
        if saw_eof {
            return Err(Error::new(lineno, "text after # EOF"));
        }
        if line == "# EOF" {
            saw_eof = true;
            continue;
        }
        if line.is_empty() {
            return Err(Error::new(lineno, "empty line"));
        }
        if let Some(rest) = line.strip_prefix('#') {
            p.metadata_line(rest, lineno)?;
        } else {
            p.sample_line(line, lineno)?;
        }
    }
    if !saw_eof {
        return Err(Error::new(0, "missing # EOF"));
    }
    p.close_family()?;
    Ok((p.out, p.spans))
}

#[derive(Default)]
struct Family {
    name: String,
    meta: MetricMetadata,
    has_type: bool,
    has_help: bool,
    has_unit: bool,
    has_samples: bool,
    first_line: usize,
    /// Index in `out.samples` of this family's first sample.
    first_sample: usize,
    /// Hashes of the label groups seen (a 64-bit hash: collisions are negligible).
    seen_groups: HashSet<u64>,
    group: Option<u64>,
    group_ts: Option<i64>,
}

impl Family {
    fn suffixes(&self) -> &'static [&'static str] {
        match self.meta.metric_type {
            MetricType::Counter => &["_total", "_created"],
            MetricType::Gauge | MetricType::StateSet | MetricType::Unknown => &[""],
            MetricType::Histogram => &["_bucket", "_count", "_sum", "_created"],
            MetricType::GaugeHistogram => &["_bucket", "_gcount", "_gsum"],
            MetricType::Summary => &["", "_count", "_sum", "_created"],
            MetricType::Info => &["_info"],
        }
    }

    fn sample_names(&self) -> Vec<String> {
        self.suffixes().iter().map(|s| format!("{}{s}", self.name)).collect()
    }

    /// The suffix of `sample_name` if it is one of this family's sample names.
    fn suffix<'a>(&self, sample_name: &'a str) -> Option<&'a str> {
        let suffix = sample_name.strip_prefix(self.name.as_str())?;
        self.suffixes().contains(&suffix).then_some(suffix)
    }
}

#[derive(Default)]
struct Parser {
    out: Exposition,
    family: Option<Family>,
    family_names: HashSet<String>,
    reserved_sample_names: HashSet<String>,
    /// Address of the body's first byte, to turn line slices into offsets.
    base: usize,
    spans: Vec<SeriesSpan>,
}

impl Parser {
    fn metadata_line(&mut self, rest: &str, lineno: usize) -> Result<()> {
        let err = |m: &str| Error::new(lineno, m.to_owned());
        let rest = rest.strip_prefix(' ').ok_or_else(|| err("invalid comment line"))?;
        let (kind, rest) = rest.split_once(' ').ok_or_else(|| err("invalid metadata line"))?;
        if !matches!(kind, "HELP" | "TYPE" | "UNIT") {
            return Err(err(&format!("unknown metadata keyword {kind:?}")));
        }
        let (name, value) = rest
            .split_once(' ')
            .ok_or_else(|| err(&format!("# {kind} needs a metric name and a value")))?;
        if !is_valid_metric_name(name) {
            return Err(err(&format!("invalid metric name {name:?}")));
        }
        self.enter_family(name, lineno)?;
        let fam = self.family.as_mut().expect("entered above");
        if fam.has_samples {
            return Err(err(&format!("# {kind} for {name} after its samples")));
        }
        match kind {
            "HELP" => {
                if std::mem::replace(&mut fam.has_help, true) {
                    return Err(err(&format!("second # HELP for {name}")));
                }
                fam.meta.help = unescape(value, false);
            }
            "TYPE" => {
                if std::mem::replace(&mut fam.has_type, true) {
                    return Err(err(&format!("second # TYPE for {name}")));
                }
                fam.meta.metric_type = match value {
                    "untyped" => None,
                    v => v.parse().ok(),
                }
                .ok_or_else(|| err(&format!("invalid metric type {value:?}")))?;
            }
            _ => {
                if std::mem::replace(&mut fam.has_unit, true) {
                    return Err(err(&format!("second # UNIT for {name}")));
                }
                if !value.is_empty() && !name.ends_with(&format!("_{value}")) {
                    return Err(err(&format!("unit {value:?} is not a suffix of metric name {name:?}")));
                }
                fam.meta.unit = value.to_owned();
            }
        }
        Ok(())
    }

    /// Makes `name` the current family, closing the previous one if it differs.
    fn enter_family(&mut self, name: &str, lineno: usize) -> Result<()> {
        if self.family.as_ref().is_some_and(|f| f.name == name) {
            return Ok(());
        }
        self.close_family()?;
        if !self.family_names.insert(name.to_owned()) {
            return Err(Error::new(lineno, format!("metric family {name} appears twice")));
        }
        self.family = Some(Family {
            name: name.to_owned(),
            first_line: lineno,
            first_sample: self.out.samples.len(),
            ..Family::default()
        });
        Ok(())
    }

    fn close_family(&mut self) -> Result<()> {
        let Some(fam) = self.family.take() else {
            return Ok(());
        };
        let lineno = fam.first_line;
        if fam.has_unit
            && !fam.meta.unit.is_empty()
            && matches!(fam.meta.metric_type, MetricType::Info | MetricType::StateSet)
        {
            return Err(Error::new(
                lineno,
                format!("{} of type {} cannot have a unit", fam.name, fam.meta.metric_type),
            ));
        }
        for n in fam.sample_names() {
            if !self.reserved_sample_names.insert(n.clone()) {
                return Err(Error::new(
                    lineno,
                    format!("sample name {n} clashes with another family"),
                ));
            }
        }
        if matches!(fam.meta.metric_type, MetricType::Histogram | MetricType::GaugeHistogram) {
            check_histogram(&fam, &self.out.samples[fam.first_sample..])
                .map_err(|m| Error::new(lineno, format!("histogram {}: {m}", fam.name)))?;
        }
        if fam.has_type || fam.has_help || fam.has_unit {
            self.out.metadata.push((fam.name, fam.meta));
        }
        Ok(())
    }

    fn sample_line(&mut self, line: &str, lineno: usize) -> Result<()> {
        let err = |m: String| Error::new(lineno, m);
        let name_len = line
            .bytes()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
            .count();
        let name = &line[..name_len];
        if !is_valid_metric_name(name) {
            return Err(err(format!("invalid metric name in {line:?}")));
        }
        let mut rest = &line[name_len..];
        let mut pairs = Vec::new();
        if rest.starts_with('{') {
            rest = parse_labels(rest, &mut pairs).map_err(&err)?;
        }
        let start = line.as_ptr() as usize - self.base;
        let span = SeriesSpan {
            start,
            end: start + line.len() - rest.len(),
            line: lineno,
        };
        let rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| err(format!("expected a space before the value in {line:?}")))?;
        let (value_tok, mut rest) = split_token(rest);
        let value = parse_om_float(value_tok).ok_or_else(|| err(format!("invalid value {value_tok:?}")))?;
        let mut timestamp_ms = None;
        let mut exemplar = None;
        if !rest.is_empty() && !rest.starts_with(" # ") {
            let (ts_tok, r) = split_token(&rest[1..]);
            timestamp_ms = Some(parse_timestamp(ts_tok).map_err(&err)?);
            rest = r;
        }
        if let Some(ex) = rest.strip_prefix(" # ") {
            exemplar = Some(parse_exemplar(ex).map_err(&err)?);
        } else if !rest.is_empty() {
            return Err(err(format!("unexpected text {rest:?}")));
        }

        // Which family does this sample belong to?
        let belongs = self.family.as_ref().is_some_and(|f| f.suffix(name).is_some());
        if !belongs {
            self.enter_family(name, lineno)?;
        }
        let fam = self.family.as_mut().expect("entered above");
        fam.has_samples = true;
        let suffix = fam.suffix(name).unwrap_or("").to_owned();
        let typ = fam.meta.metric_type;

        let find = |n: &str| {
            pairs
                .iter()
                .find(|(k, _): &&(String, String)| k == n)
                .map(|(_, v)| v.as_str())
        };
        let counter_like = |what: &str| -> Result<()> {
            if value.is_nan() || value < 0.0 {
                return Err(err(format!("{what} {name} must not be NaN or negative")));
            }
            Ok(())
        };
        let mut group_drop: Option<String> = None;
        match (typ, suffix.as_str()) {
            (MetricType::Counter, "_total") => counter_like("counter")?,
            (MetricType::Histogram | MetricType::GaugeHistogram, "_bucket") => {
                let le = find("le").ok_or_else(|| err(format!("{name} needs an le label")))?;
                parse_le(le).ok_or_else(|| err(format!("invalid le {le:?}")))?;
                counter_like("bucket")?;
                group_drop = Some("le".into());
            }
            (MetricType::Histogram | MetricType::Summary, "_count" | "_sum")
            | (MetricType::GaugeHistogram, "_gcount") => counter_like("count or sum")?,
            (MetricType::GaugeHistogram, "_gsum") if value.is_nan() => {
                return Err(err(format!("{name} must not be NaN")));
            }
            (MetricType::Summary, "") => {
                let q = find("quantile").ok_or_else(|| err(format!("{name} needs a quantile label")))?;
                match parse_om_float(q) {
                    Some(q) if (0.0..=1.0).contains(&q) => {}
                    _ => return Err(err(format!("invalid quantile {q:?}"))),
                }
                if value < 0.0 {
                    return Err(err(format!("quantile value of {name} must not be negative")));
                }
                group_drop = Some("quantile".into());
            }
            (MetricType::StateSet, _) => {
                if find(&fam.name).is_none() {
                    return Err(err(format!("state set {name} needs a label named {name}")));
                }
                if value != 0.0 && value != 1.0 {
                    return Err(err(format!("state set value must be 0 or 1, got {value_tok}")));
                }
                group_drop = Some(fam.name.clone());
            }
            (MetricType::Info, _) if value != 1.0 => {
                return Err(err(format!("info value must be 1, got {value_tok}")));
            }
            _ => {}
        }
        let exemplar_allowed = matches!(
            (typ, suffix.as_str()),
            (MetricType::Counter, "_total") | (MetricType::Histogram | MetricType::GaugeHistogram, "_bucket")
        );
        if exemplar.is_some() && !exemplar_allowed {
            return Err(err(format!("exemplars are not allowed on {name}")));
        }

        // Label groups must be contiguous, with non-decreasing timestamps inside one.
        let group = if typ == MetricType::Info {
            0
        } else {
            group_hash(pairs.iter().filter(|(k, _)| Some(k) != group_drop.as_ref()))
        };
        if fam.group.as_ref() == Some(&group) {
            if fam.group_ts.is_some() != timestamp_ms.is_some() {
                return Err(err("mix of samples with and without timestamps in one group".into()));
            }
            if typ != MetricType::Info && fam.group_ts > timestamp_ms {
                return Err(err("timestamps went backwards".into()));
            }
        } else if fam.seen_groups.contains(&group) {
            return Err(err(format!(
                "samples of {name} with the same labels are not contiguous"
            )));
        }
        fam.seen_groups.insert(group);
        fam.group = Some(group);
        fam.group_ts = timestamp_ms;

        let labels = Labels::from_pairs(std::iter::once(("__name__".to_owned(), name.to_owned())).chain(pairs))
            .map_err(|e| err(e.to_string()))?;
        self.out.samples.push(ParsedSample {
            labels,
            value,
            timestamp_ms,
            exemplar,
        });
        self.spans.push(span);
        Ok(())
    }
}

/// The histogram rules of the specification, per label group and timestamp: buckets in
/// increasing `le` with non-decreasing counts, a `+Inf` bucket equal to `_count`, `_sum`
/// and `_count` together, no `_sum` with negative buckets, no negative `_gsum` without.
fn check_histogram(fam: &Family, samples: &[ParsedSample]) -> std::result::Result<(), String> {
    #[derive(Default)]
    struct Group {
        key: Option<(Labels, Option<i64>)>,
        last_le: Option<f64>,
        last_bucket_value: f64,
        count: Option<f64>,
        has_sum: bool,
        has_gsum: bool,
        negative_gsum: bool,
        negative_buckets: bool,
    }
    fn finish(g: &Group) -> std::result::Result<(), String> {
        if g.key.is_none() {
            return Ok(());
        }
        if g.last_le != Some(f64::INFINITY) {
            return Err("+Inf bucket missing".into());
        }
        if g.count.is_some_and(|c| c != g.last_bucket_value) {
            return Err("count does not match the +Inf bucket".into());
        }
        if (g.has_sum || g.has_gsum) && g.count.is_none() {
            return Err("_sum without _count".into());
        }
        if !(g.has_sum || g.has_gsum) && g.count.is_some() {
            return Err("_count without _sum".into());
        }
        if g.negative_buckets && g.has_sum {
            return Err("_sum with negative buckets".into());
        }
        if !g.negative_buckets && g.negative_gsum {
            return Err("negative _gsum without negative buckets".into());
        }
        Ok(())
    }
    let mut g = Group::default();
    for s in samples {
        let name = s.labels.metric_name().unwrap_or("");
        let suffix = fam.suffix(name).unwrap_or("");
        let key_labels = Labels::from_pairs(
            s.labels
                .iter()
                .filter(|l| l.name != "__name__" && !(suffix == "_bucket" && l.name == "le"))
                .map(|l| (l.name.as_str(), l.value.as_str())),
        )
        .map_err(|e| e.to_string())?;
        let key = (key_labels, s.timestamp_ms);
        if g.key.as_ref() != Some(&key) {
            finish(&g)?;
            g = Group {
                key: Some(key),
                ..Group::default()
            };
        }
        match suffix {
            "_bucket" => {
                let le = s.labels.get("le").and_then(parse_le).unwrap_or(f64::NAN);
                if le < 0.0 {
                    g.negative_buckets = true;
                }
                if g.last_le.is_some_and(|prev| le <= prev) {
                    return Err("buckets out of order".into());
                }
                if s.value < g.last_bucket_value {
                    return Err("bucket counts decrease".into());
                }
                g.last_le = Some(le);
                g.last_bucket_value = s.value;
            }
            "_count" | "_gcount" => g.count = Some(s.value),
            "_sum" => g.has_sum = true,
            "_gsum" => {
                g.has_gsum = true;
                g.negative_gsum |= s.value < 0.0;
            }
            _ => {}
        }
    }
    finish(&g)
}

/// Order-independent hash of a label group.
fn group_hash<'a>(pairs: impl Iterator<Item = &'a (String, String)>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut sorted: Vec<&(String, String)> = pairs.filter(|(_, v)| !v.is_empty()).collect();
    sorted.sort_unstable();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    sorted.hash(&mut h);
    h.finish()
}

/// `le` values: any number, but infinity only as the canonical `+Inf`.
fn parse_le(s: &str) -> Option<f64> {
    let v = parse_om_float(s)?;
    if v.is_nan() || (v.is_infinite() && s != "+Inf") {
        return None;
    }
    Some(v)
}

fn parse_timestamp(tok: &str) -> std::result::Result<i64, String> {
    match parse_om_float(tok) {
        Some(t) if t.is_finite() => Ok(seconds_to_ms(t)),
        _ => Err(format!("invalid timestamp {tok:?}")),
    }
}

fn parse_exemplar(s: &str) -> std::result::Result<Exemplar, String> {
    if !s.starts_with('{') {
        return Err("exemplar must start with {".into());
    }
    let mut pairs = Vec::new();
    let rest = parse_labels(s, &mut pairs)?;
    let labels = Labels::from_pairs(pairs).map_err(|e| e.to_string())?;
    if labels.char_len() > EXEMPLAR_MAX_CHARS {
        return Err(format!("exemplar labels longer than {EXEMPLAR_MAX_CHARS} characters"));
    }
    let rest = rest
        .strip_prefix(' ')
        .ok_or("expected a space before the exemplar value")?;
    let (value_tok, rest) = split_token(rest);
    let value = parse_om_float(value_tok).ok_or_else(|| format!("invalid exemplar value {value_tok:?}"))?;
    let timestamp_ms = match rest.strip_prefix(' ') {
        None if rest.is_empty() => None,
        None => return Err(format!("unexpected text {rest:?}")),
        Some(ts) => Some(parse_timestamp(ts)?),
    };
    Ok(Exemplar {
        labels,
        value,
        timestamp_ms,
    })
}

/// Splits at the first space: `(token, rest starting with the space)`.
fn split_token(s: &str) -> (&str, &str) {
    match s.find(' ') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// Parses `{name="value",...}` strictly (no spaces, no trailing comma, no duplicate
/// names) into `out`, returning the text after `}`.
fn parse_labels<'a>(s: &'a str, out: &mut Vec<(String, String)>) -> std::result::Result<&'a str, String> {
    let mut rest = s.strip_prefix('{').ok_or("expected {")?;
    if let Some(r) = rest.strip_prefix('}') {
        return Ok(r);
    }
    loop {
        let n = rest
            .bytes()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
            .count();
        let name = &rest[..n];
        if !is_valid_label_name(name) {
            return Err(format!("invalid label name at {rest:?}"));
        }
        rest = rest[n..]
            .strip_prefix("=\"")
            .ok_or_else(|| format!("expected =\" after label {name}"))?;
        let (value, r) = read_quoted(rest).ok_or_else(|| format!("unterminated value of label {name}"))?;
        if out.iter().any(|(k, _)| k == name) {
            return Err(format!("duplicate label {name}"));
        }
        out.push((name.to_owned(), value));
        rest = r;
        if let Some(r) = rest.strip_prefix('}') {
            return Ok(r);
        }
        rest = rest.strip_prefix(',').ok_or("expected , or } after a label")?;
        if rest.starts_with('}') {
            return Err("trailing comma in labels".into());
        }
    }
}

/// Reads an escaped label value up to its closing quote; returns the unescaped value
/// and the text after the quote.
pub(crate) fn read_quoted(s: &str) -> Option<(String, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => return Some((unescape(&s[..i], true), &s[i + 1..])),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    None
}

/// Undoes `\\`, `\n` and (in label values) `\"`; any other backslash is kept as written,
/// as the reference parsers do.
pub(crate) fn unescape(s: &str, quotes: bool) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quotes => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}
