//! Strict OpenMetrics 1.0 text parser.
//!
//! Beyond syntax it enforces the semantic rules of the OpenMetrics specification that
//! its conformance suite checks: metadata before samples and never repeated, no name
//! clashes between families, contiguous label groups with non-decreasing timestamps,
//! type-specific labels and value ranges, histogram invariants, exemplars only where
//! allowed, and a final `# EOF`.
//!
//! The checks work on borrowed label pairs in buffers kept across lines, so a line
//! allocates only when it has an escaped label value or an exemplar, or when the caller
//! asks for its label set: [`parse`] builds one per sample, [`scan`] none.

use std::borrow::Cow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::ops::ControlFlow;

use sextant_model::{Labels, MetricMetadata, MetricType, is_valid_label_name, is_valid_metric_name};

use crate::number::{parse_om_float, seconds_to_ms};
use crate::{Error, Exemplar, Exposition, ParsedSample, RawSample, Result};

/// Longest exemplar label set, in characters of names plus values.
const EXEMPLAR_MAX_CHARS: usize = 128;

/// Label pairs of one line, borrowed from the body (owned only where unescaped).
type Pairs<'a> = Vec<(&'a str, Cow<'a, str>)>;

/// A consumer of sample lines, as [`crate::scan`] takes one.
type Visit<'v> = &'v mut dyn FnMut(&RawSample<'_>) -> ControlFlow<()>;

pub(crate) fn parse(text: &str) -> Result<Exposition> {
    let mut p = Parser::new(None);
    p.run(text)?;
    p.out.metadata = std::mem::take(&mut p.metadata);
    Ok(p.out)
}

/// Checks `text` as strictly as [`parse`] and hands each sample line to `visit` without
/// building its label set; returns the metadata.
pub(crate) fn scan(text: &str, visit: Visit<'_>) -> Result<Vec<(String, MetricMetadata)>> {
    let mut p = Parser::new(Some(visit));
    p.run(text)?;
    Ok(p.metadata)
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
    fn suffix(&self, sample_name: &str) -> Option<&'static str> {
        let suffix = sample_name.strip_prefix(self.name.as_str())?;
        self.suffixes().iter().find(|s| **s == suffix).copied()
    }
}

/// What the histogram checks need of one line of a histogram family.
struct HistogramLine {
    /// Hash of the line's labels without `le` (on buckets), with its timestamp: lines
    /// with equal keys belong to one histogram.
    key: (u64, Option<i64>),
    suffix: &'static str,
    /// The bucket's bound (buckets only).
    le: f64,
    value: f64,
}

struct Parser<'v> {
    out: Exposition,
    metadata: Vec<(String, MetricMetadata)>,
    family: Option<Family>,
    family_names: HashSet<String>,
    reserved_sample_names: HashSet<String>,
    /// The current family's lines, when it is a histogram.
    histogram: Vec<HistogramLine>,
    /// Where sample lines go when scanning; `None` builds `out.samples`.
    visit: Option<Visit<'v>>,
    /// Set when `visit` asked to stop.
    stopped: bool,
    /// Kept across lines so that sorting a label group allocates nothing.
    order: Vec<usize>,
}

impl<'v> Parser<'v> {
    fn new(visit: Option<Visit<'v>>) -> Self {
        Self {
            out: Exposition::default(),
            metadata: Vec::new(),
            family: None,
            family_names: HashSet::new(),
            reserved_sample_names: HashSet::new(),
            histogram: Vec::new(),
            visit,
            stopped: false,
            order: Vec::new(),
        }
    }

    fn run(&mut self, text: &str) -> Result<()> {
        let body = text.strip_suffix('\n').unwrap_or(text);
        let mut pairs: Pairs<'_> = Vec::new();
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
                self.metadata_line(rest, lineno)?;
            } else {
                self.sample_line(line, lineno, &mut pairs)?;
                if self.stopped {
                    return Ok(());
                }
            }
        }
        if !saw_eof {
            return Err(Error::new(0, "missing # EOF"));
        }
        self.close_family()
    }

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
            ..Family::default()
        });
        self.histogram.clear();
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
            check_histogram(&self.histogram).map_err(|m| Error::new(lineno, format!("histogram {}: {m}", fam.name)))?;
        }
        if fam.has_type || fam.has_help || fam.has_unit {
            self.metadata.push((fam.name, fam.meta));
        }
        Ok(())
    }

    fn sample_line<'a>(&mut self, line: &'a str, lineno: usize, pairs: &mut Pairs<'a>) -> Result<()> {
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
        pairs.clear();
        if rest.starts_with('{') {
            rest = parse_labels(rest, pairs).map_err(&err)?;
        }
        let series = &line[..line.len() - rest.len()];
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
        let suffix = fam.suffix(name).unwrap_or("");
        let typ = fam.meta.metric_type;

        let find = |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_ref());
        let counter_like = |what: &str| -> Result<()> {
            if value.is_nan() || value < 0.0 {
                return Err(err(format!("{what} {name} must not be NaN or negative")));
            }
            Ok(())
        };
        let mut group_drop: Option<&str> = None;
        let mut le = f64::NAN;
        match (typ, suffix) {
            (MetricType::Counter, "_total") => counter_like("counter")?,
            (MetricType::Histogram | MetricType::GaugeHistogram, "_bucket") => {
                let le_text = find("le").ok_or_else(|| err(format!("{name} needs an le label")))?;
                le = parse_le(le_text).ok_or_else(|| err(format!("invalid le {le_text:?}")))?;
                counter_like("bucket")?;
                group_drop = Some("le");
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
                group_drop = Some("quantile");
            }
            (MetricType::StateSet, _) => {
                if find(&fam.name).is_none() {
                    return Err(err(format!("state set {name} needs a label named {name}")));
                }
                if value != 0.0 && value != 1.0 {
                    return Err(err(format!("state set value must be 0 or 1, got {value_tok}")));
                }
                group_drop = Some(fam.name.as_str());
            }
            (MetricType::Info, _) if value != 1.0 => {
                return Err(err(format!("info value must be 1, got {value_tok}")));
            }
            _ => {}
        }
        let exemplar_allowed = matches!(
            (typ, suffix),
            (MetricType::Counter, "_total") | (MetricType::Histogram | MetricType::GaugeHistogram, "_bucket")
        );
        if exemplar.is_some() && !exemplar_allowed {
            return Err(err(format!("exemplars are not allowed on {name}")));
        }

        // Label groups must be contiguous, with non-decreasing timestamps inside one.
        let group = if typ == MetricType::Info {
            0
        } else {
            group_hash(pairs, group_drop, &mut self.order)
        };
        if matches!(typ, MetricType::Histogram | MetricType::GaugeHistogram) {
            let bucket_drop = (suffix == "_bucket").then_some("le");
            self.histogram.push(HistogramLine {
                key: (group_hash(pairs, bucket_drop, &mut self.order), timestamp_ms),
                suffix,
                le,
                value,
            });
        }
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

        if let Some(visit) = self.visit.as_deref_mut() {
            let raw = RawSample {
                series,
                value,
                timestamp_ms,
                line: lineno,
            };
            self.stopped = visit(&raw).is_break();
            return Ok(());
        }
        let named = std::iter::once(("__name__", Cow::Borrowed(name)));
        let labels = Labels::from_pairs(named.chain(pairs.drain(..))).map_err(|e| err(e.to_string()))?;
        self.out.samples.push(ParsedSample {
            labels,
            value,
            timestamp_ms,
            exemplar,
        });
        Ok(())
    }
}

/// The histogram rules of the specification, per label group and timestamp: buckets in
/// increasing `le` with non-decreasing counts, a `+Inf` bucket equal to `_count`, `_sum`
/// and `_count` together, no `_sum` with negative buckets, no negative `_gsum` without.
fn check_histogram(lines: &[HistogramLine]) -> std::result::Result<(), String> {
    #[derive(Default)]
    struct Group {
        key: Option<(u64, Option<i64>)>,
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
    for line in lines {
        if g.key != Some(line.key) {
            finish(&g)?;
            g = Group {
                key: Some(line.key),
                ..Group::default()
            };
        }
        match line.suffix {
            "_bucket" => {
                if line.le < 0.0 {
                    g.negative_buckets = true;
                }
                if g.last_le.is_some_and(|prev| line.le <= prev) {
                    return Err("buckets out of order".into());
                }
                if line.value < g.last_bucket_value {
                    return Err("bucket counts decrease".into());
                }
                g.last_le = Some(line.le);
                g.last_bucket_value = line.value;
            }
            "_count" | "_gcount" => g.count = Some(line.value),
            "_sum" => g.has_sum = true,
            "_gsum" => {
                g.has_gsum = true;
                g.negative_gsum |= line.value < 0.0;
            }
            _ => {}
        }
    }
    finish(&g)
}

/// Order-independent hash of a label group: the pairs with a value, but not the one
/// named `drop`, in name order. `order` is scratch space kept by the caller.
fn group_hash(pairs: &Pairs<'_>, drop: Option<&str>, order: &mut Vec<usize>) -> u64 {
    order.clear();
    order.extend((0..pairs.len()).filter(|i| !pairs[*i].1.is_empty() && Some(pairs[*i].0) != drop));
    // Names are unique within a line, so sorting by name is a total order.
    order.sort_unstable_by_key(|i| pairs[*i].0);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for i in order.iter() {
        let (k, v) = &pairs[*i];
        k.hash(&mut h);
        v.as_ref().hash(&mut h);
    }
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
fn parse_labels<'a>(s: &'a str, out: &mut Pairs<'a>) -> std::result::Result<&'a str, String> {
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
        let (value, r) = read_quoted_borrowed(rest).ok_or_else(|| format!("unterminated value of label {name}"))?;
        if out.iter().any(|(k, _)| *k == name) {
            return Err(format!("duplicate label {name}"));
        }
        out.push((name, value));
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
    read_quoted_borrowed(s).map(|(value, rest)| (value.into_owned(), rest))
}

/// [`read_quoted`], borrowing the value from `s` when it has no escapes.
fn read_quoted_borrowed(s: &str) -> Option<(Cow<'_, str>, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut escaped = false;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let value = match escaped {
                    true => Cow::Owned(unescape(&s[..i], true)),
                    false => Cow::Borrowed(&s[..i]),
                };
                return Some((value, &s[i + 1..]));
            }
            b'\\' => {
                escaped = true;
                i += 2;
            }
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
