//! Running a pipeline over one entry: Loki's label model (stream labels,
//! structured metadata, parsed labels, with `_extracted` on clashes and the first
//! extracted value winning), the stages, and the `__error__` life cycle.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use sextant_model::Labels;
use sextant_template::{Map, Value};

use super::ast::{Conversion, LabelFilter, LabelFmt, LineOp, LineValue, Stage};
use super::parsers::{
    decolorize, json_doc, json_flatten, json_path, logfmt_scan, parse_bytes, parse_go_duration, parse_go_float,
    sanitize_key,
};
use super::template::set_current;

/// Label pairs in order.
pub type Pairs = Vec<(String, String)>;

/// An entry going through a pipeline.
pub struct LineState {
    /// The line (stages may replace it).
    pub line: String,
    /// Timestamp, ns.
    pub ts: i64,
    /// Every label the entry has now.
    pub labels: BTreeMap<String, String>,
    /// Names of stream labels and structured metadata (a parsed label of such a
    /// name becomes `<name>_extracted`).
    base: HashSet<String>,
    /// Names set by parsers (the first value wins).
    extracted: HashSet<String>,
    /// Names of the stream's labels.
    stream_names: HashSet<String>,
    /// Names structured metadata took (with `_extracted` where they clashed).
    meta_names: HashSet<String>,
    /// `__error__`
    pub err: Option<String>,
    /// `__error_details__`
    pub err_details: Option<String>,
}

impl LineState {
    /// An entry of a stream with its structured metadata.
    pub fn new(stream: &Labels, metadata: &[(String, String)], line: &str, ts: i64) -> Self {
        let mut labels = BTreeMap::new();
        let mut base = HashSet::new();
        let mut meta_names = HashSet::new();
        for l in stream.iter() {
            labels.insert(l.name.clone(), l.value.clone());
            base.insert(l.name.clone());
        }
        let stream_names = base.clone();
        for (k, v) in metadata {
            if stream.get(k).is_some() {
                let name = format!("{k}_extracted");
                labels.entry(name.clone()).or_insert_with(|| v.clone());
                meta_names.insert(name);
            } else {
                labels.insert(k.clone(), v.clone());
                meta_names.insert(k.clone());
            }
            base.insert(k.clone());
        }
        Self {
            line: line.to_owned(),
            ts,
            labels,
            base,
            extracted: HashSet::new(),
            stream_names,
            meta_names,
            err: None,
            err_details: None,
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        match name {
            "__error__" => self.err.as_deref(),
            "__error_details__" => None,
            _ => self.labels.get(name).map(String::as_str),
        }
    }

    /// Sets a label found by a parser.
    fn set_parsed(&mut self, key: String, value: String) {
        let key = if self.base.contains(&key) {
            format!("{key}_extracted")
        } else {
            key
        };
        if self.extracted.contains(&key) {
            return;
        }
        self.extracted.insert(key.clone());
        self.labels.insert(key, value);
    }

    fn set_err(&mut self, err: &str, details: Option<String>) {
        self.err = Some(err.to_owned());
        self.err_details = details;
    }

    fn template_data(&self) -> Value {
        let mut m: BTreeMap<String, Value> = self
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        if let Some(e) = &self.err {
            m.insert("__error__".into(), Value::from(e.as_str()));
        }
        if let Some(d) = &self.err_details {
            m.insert("__error_details__".into(), Value::from(d.as_str()));
        }
        Value::Map(Arc::new(Map {
            entries: m,
            zero: Value::from(""),
        }))
    }

    /// The labels of the result, with the error pair.
    pub fn output_labels(&self) -> Labels {
        let mut pairs: Vec<(&str, &str)> = self.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        if let Some(e) = &self.err {
            pairs.push(("__error__", e));
        }
        if let Some(d) = &self.err_details {
            pairs.push(("__error_details__", d));
        }
        Labels::from_pairs(pairs).unwrap_or_default()
    }

    /// The labels split into the stream's, structured metadata and parsed ones
    /// (the error pair counts as parsed).
    pub fn categorized(&self) -> (Labels, Pairs, Pairs) {
        let mut stream = Vec::new();
        let mut meta = Vec::new();
        let mut parsed = Vec::new();
        for (k, v) in &self.labels {
            if self.stream_names.contains(k) && !self.extracted.contains(k) {
                stream.push((k.as_str(), v.as_str()));
            } else if self.meta_names.contains(k) && !self.extracted.contains(k) {
                meta.push((k.clone(), v.clone()));
            } else {
                parsed.push((k.clone(), v.clone()));
            }
        }
        if let Some(e) = &self.err {
            parsed.push(("__error__".into(), e.clone()));
        }
        if let Some(d) = &self.err_details {
            parsed.push(("__error_details__".into(), d.clone()));
        }
        (Labels::from_pairs(stream).unwrap_or_default(), meta, parsed)
    }

    /// The value of a label for `unwrap`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }

    /// Removes a label.
    pub fn remove(&mut self, name: &str) {
        self.labels.remove(name);
    }
}

/// Runs `stages` over an entry; false when a stage drops it.
pub fn run(stages: &[Stage], st: &mut LineState) -> bool {
    for stage in stages {
        if !run_stage(stage, st) {
            return false;
        }
    }
    true
}

fn line_matches(op: LineOp, values: &[LineValue], line: &str) -> bool {
    let any = values.iter().any(|v| match v {
        LineValue::Text(t) => line.contains(t.as_str()),
        LineValue::Regex(r) => r.is_match(line),
        LineValue::Pattern(p) => p.test(line),
    });
    match op {
        LineOp::Contains | LineOp::Match | LineOp::Pattern => any,
        LineOp::NotContains | LineOp::NotMatch | LineOp::NotPattern => {
            // `!= ""` drops every line; other empty operands keep all.
            !any
        }
    }
}

fn run_stage(stage: &Stage, st: &mut LineState) -> bool {
    match stage {
        Stage::Line { op, values } => line_matches(*op, values, &st.line),
        Stage::Json(params) if params.is_empty() => {
            match json_flatten(&st.line) {
                Ok(pairs) => {
                    for (k, v) in pairs {
                        st.set_parsed(k, v);
                    }
                }
                Err(details) => st.set_err("JSONParserErr", Some(details)),
            }
            true
        }
        Stage::Json(params) => {
            match json_doc(&st.line) {
                Ok(None) => {}
                Ok(Some(doc)) => {
                    for (label, path) in params {
                        let v = json_path(&doc, path);
                        st.set_parsed(label.clone(), v);
                    }
                }
                Err((e, details)) => st.set_err(&e, details),
            }
            true
        }
        Stage::Logfmt {
            strict,
            keep_empty,
            params,
        } => {
            if params.is_empty() {
                let mut rest_offset = 0usize;
                loop {
                    let (pairs, err) = logfmt_scan(&st.line[rest_offset..]);
                    for (k, v) in pairs {
                        match v {
                            Some(v) => st.set_parsed(sanitize_key(&k), v),
                            None if *keep_empty => st.set_parsed(sanitize_key(&k), String::new()),
                            None => {}
                        }
                    }
                    let Some(err) = err else { break };
                    if *strict {
                        st.set_err(
                            "LogfmtParserErr",
                            Some(format!(
                                "logfmt syntax error at pos {} : {}",
                                rest_offset + err.pos,
                                err.msg
                            )),
                        );
                        break;
                    }
                    let at = (rest_offset + err.pos - 1).min(st.line.len());
                    match st.line[at..].find(|c: char| c <= ' ') {
                        Some(p) if at + p < st.line.len() => rest_offset = at + p,
                        _ => break,
                    }
                }
            } else {
                for (label, _) in params {
                    let key = if st.base.contains(label) {
                        format!("{label}_extracted")
                    } else {
                        label.clone()
                    };
                    st.labels.insert(key, String::new());
                }
                let (pairs, err) = logfmt_scan(&st.line);
                for (k, v) in pairs {
                    for (label, key) in params {
                        if *key == k {
                            let name = if st.base.contains(label) {
                                format!("{label}_extracted")
                            } else {
                                label.clone()
                            };
                            st.labels.insert(name, v.clone().unwrap_or_default());
                        }
                    }
                }
                if let (Some(err), true) = (err, *strict) {
                    st.set_err(
                        "LogfmtParserErr",
                        Some(format!("logfmt syntax error at pos {} : {}", err.pos, err.msg)),
                    );
                }
            }
            true
        }
        Stage::Regexp(re) => {
            if let Some(caps) = re.captures(&st.line) {
                let found: Vec<(String, String)> = re
                    .capture_names()
                    .enumerate()
                    .filter_map(|(i, n)| {
                        let n = n?;
                        Some((
                            sanitize_key(n),
                            caps.get(i).map(|m| m.as_str().to_owned()).unwrap_or_default(),
                        ))
                    })
                    .collect();
                for (k, v) in found {
                    st.set_parsed(k, v);
                }
            }
            true
        }
        Stage::Pattern(p) => {
            for (k, v) in p.captures(&st.line) {
                st.set_parsed(k, v);
            }
            true
        }
        Stage::Unpack => {
            if st.line.is_empty() {
                return true;
            }
            if !st.line.starts_with('{') {
                st.set_err("JSONParserErr", Some("expecting json object(6), but it is not".into()));
                return true;
            }
            match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&st.line) {
                Ok(obj) => {
                    if let Some(entry) = obj.get("_entry").and_then(|v| v.as_str()) {
                        let entry = entry.to_owned();
                        for (k, v) in &obj {
                            if k != "_entry"
                                && let Some(s) = v.as_str()
                            {
                                st.set_parsed(sanitize_key(k), s.to_owned());
                            }
                        }
                        st.line = entry;
                    }
                }
                Err(e) => st.set_err("JSONParserErr", Some(e.to_string())),
            }
            true
        }
        Stage::Decolorize => {
            st.line = decolorize(&st.line);
            true
        }
        Stage::Filter(f) => filter(f, st),
        Stage::LineFormat(t) => {
            set_current(&st.line, st.ts);
            match t.execute(st.template_data()) {
                Ok(out) => st.line = out,
                Err(e) => st.set_err("TemplateFormatErr", Some(e.to_string())),
            }
            true
        }
        Stage::LabelFormat(fmts) => {
            set_current(&st.line, st.ts);
            let data = st.template_data();
            for f in fmts {
                match f {
                    LabelFmt::Rename { dst, src } => {
                        let v = st.labels.get(src).cloned().unwrap_or_default();
                        st.labels.remove(src);
                        st.labels.insert(dst.clone(), v);
                    }
                    LabelFmt::Template { dst, tmpl } => match tmpl.execute(data.clone()) {
                        Ok(v) => {
                            st.labels.insert(dst.clone(), v);
                        }
                        Err(e) => st.set_err("TemplateFormatErr", Some(e.to_string())),
                    },
                }
            }
            true
        }
        Stage::Drop(list) => {
            for m in list {
                let matches = match &m.matcher {
                    None => true,
                    Some(mm) => mm.matches(st.get(&m.name).unwrap_or("")),
                };
                if !matches {
                    continue;
                }
                match m.name.as_str() {
                    "__error__" => st.err = None,
                    "__error_details__" => st.err_details = None,
                    n => {
                        st.labels.remove(n);
                    }
                }
            }
            true
        }
        Stage::Keep(list) => {
            st.labels.retain(|k, v| {
                list.iter()
                    .any(|m| m.name == *k && m.matcher.as_ref().is_none_or(|mm| mm.matches(v)))
            });
            true
        }
    }
}

/// Evaluates a label filter (which may set `LabelFilterErr`).
pub fn filter(f: &LabelFilter, st: &mut LineState) -> bool {
    match f {
        LabelFilter::And(a, b) => filter(a, st) && filter(b, st),
        LabelFilter::Or(a, b) => filter(a, st) || filter(b, st),
        LabelFilter::Str(m) => m.matches(st.get(&m.name).unwrap_or("")),
        LabelFilter::Num { name, op, value, conv } => {
            if name == "__error__" {
                return false;
            }
            let Some(raw) = st.get(name) else { return false };
            match convert(raw, *conv) {
                Ok(v) => op.test(v, *value),
                Err(e) => {
                    if st.err.is_none() {
                        st.set_err("LabelFilterErr", Some(e));
                    }
                    true
                }
            }
        }
    }
}

/// Converts a label value as a numeric filter or `unwrap` does.
pub fn convert(raw: &str, conv: Conversion) -> Result<f64, String> {
    match conv {
        Conversion::Number => parse_go_float(raw),
        Conversion::Duration => parse_go_duration(raw),
        Conversion::Bytes => parse_bytes(raw),
    }
}

/// `|=` operands at the front of the pipeline (before anything changes the line),
/// which the index can narrow by.
pub fn leading_needles(stages: &[Stage]) -> Vec<String> {
    let mut out = Vec::new();
    for s in stages {
        match s {
            Stage::Line {
                op: LineOp::Contains,
                values,
            } if values.len() == 1 => {
                if let LineValue::Text(t) = &values[0]
                    && !t.is_empty()
                {
                    out.push(t.clone());
                }
            }
            Stage::Line { .. }
            | Stage::Filter(_)
            | Stage::Json(_)
            | Stage::Logfmt { .. }
            | Stage::Regexp(_)
            | Stage::Pattern(_) => {}
            _ => break,
        }
    }
    out
}
