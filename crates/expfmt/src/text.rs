//! Prometheus text format 0.0.4, as lenient as Prometheus' own parser: blank lines and
//! unknown comments are ignored, spaces and tabs separate tokens, a trailing comma in a
//! label set is allowed, and timestamps are integer milliseconds.

use std::collections::HashMap;

use sextant_model::{Labels, MetricMetadata, MetricType, is_valid_label_name, is_valid_metric_name};

use crate::number::parse_text_float;
use crate::openmetrics::{read_quoted, unescape};
use crate::{Error, Exposition, ParsedSample, Result};

pub(crate) fn parse(text: &str) -> Result<Exposition> {
    let mut out = Exposition::default();
    let mut meta: Vec<(String, MetricMetadata)> = Vec::new();
    let mut meta_index: HashMap<String, usize> = HashMap::new();
    for (i, raw) in text.split('\n').enumerate() {
        let lineno = i + 1;
        let line = raw.trim_matches([' ', '\t', '\r']);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim_start_matches([' ', '\t']);
            let (kind, rest) = split_ws(comment);
            if kind != "HELP" && kind != "TYPE" {
                continue; // an ordinary comment
            }
            let (name, value) = split_ws(rest);
            if !is_valid_metric_name(name) {
                return Err(Error::new(lineno, format!("invalid metric name {name:?} in # {kind}")));
            }
            let idx = *meta_index.entry(name.to_owned()).or_insert_with(|| {
                meta.push((name.to_owned(), MetricMetadata::default()));
                meta.len() - 1
            });
            if kind == "HELP" {
                meta[idx].1.help = unescape(value, false);
            } else {
                meta[idx].1.metric_type = match value {
                    "counter" | "gauge" | "histogram" | "summary" | "untyped" => {
                        value.parse().unwrap_or(MetricType::Unknown)
                    }
                    _ => return Err(Error::new(lineno, format!("invalid metric type {value:?}"))),
                };
            }
            continue;
        }
        out.samples.push(sample_line(line).map_err(|m| Error::new(lineno, m))?);
    }
    out.metadata = meta;
    Ok(out)
}

fn split_ws(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], s[i..].trim_start_matches([' ', '\t'])),
        None => (s, ""),
    }
}

fn sample_line(line: &str) -> std::result::Result<ParsedSample, String> {
    let n = line
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
        .count();
    let name = &line[..n];
    if !is_valid_metric_name(name) {
        return Err(format!("invalid metric name in {line:?}"));
    }
    let mut rest = line[n..].trim_start_matches([' ', '\t']);
    let mut pairs: Vec<(String, String)> = vec![("__name__".into(), name.into())];
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            rest = rest.trim_start_matches([' ', '\t']);
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let k = rest
                .bytes()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
                .count();
            let lname = &rest[..k];
            if !is_valid_label_name(lname) {
                return Err(format!("invalid label name at {rest:?}"));
            }
            rest = rest[k..].trim_start_matches([' ', '\t']);
            rest = rest
                .strip_prefix('=')
                .ok_or_else(|| format!("expected = after label {lname}"))?;
            rest = rest.trim_start_matches([' ', '\t']);
            rest = rest
                .strip_prefix('"')
                .ok_or_else(|| format!("expected \" after {lname}="))?;
            let (value, r) = read_quoted(rest).ok_or_else(|| format!("unterminated value of label {lname}"))?;
            pairs.push((lname.to_owned(), value));
            rest = r.trim_start_matches([' ', '\t']);
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else if !rest.starts_with('}') {
                return Err(format!("expected , or }} in labels of {name}"));
            }
        }
    }
    let (value_tok, rest) = split_ws(rest.trim_start_matches([' ', '\t']));
    let value = parse_text_float(value_tok).ok_or_else(|| format!("invalid value {value_tok:?}"))?;
    let timestamp_ms = match rest {
        "" => None,
        ts => Some(ts.parse::<i64>().map_err(|_| format!("invalid timestamp {ts:?}"))?),
    };
    let labels = Labels::from_pairs(pairs).map_err(|e| e.to_string())?;
    Ok(ParsedSample {
        labels,
        value,
        timestamp_ms,
        exemplar: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_forms_prometheus_accepts() {
        let body = "# some comment\n\n# HELP x_total A \\\\ help\n# TYPE x_total counter\nx_total{a=\"1\",} 3 1700000000000\n  y\t2\n";
        let e = parse(body).unwrap();
        assert_eq!(e.samples.len(), 2);
        assert_eq!(e.samples[0].timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(e.samples[0].labels.get("a"), Some("1"));
        assert_eq!(e.metadata[0].1.help, "A \\ help");
        assert_eq!(e.metadata[0].1.metric_type, MetricType::Counter);
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse("a 1\nb{c=1} 2\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(parse("a 1 1.5\n").is_err(), "0.0.4 timestamps are integer ms");
        assert!(parse("a{b=\"1\",b=\"2\"} 1\n").is_err());
    }
}
