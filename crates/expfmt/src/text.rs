//! Prometheus text format 0.0.4, as lenient as Prometheus' own parser: blank lines and
//! unknown comments are ignored, spaces and tabs separate tokens, a trailing comma in a
//! label set is allowed, and timestamps are integer milliseconds.

use std::collections::HashMap;
use std::ops::ControlFlow;

use sextant_model::{Labels, MetricMetadata, MetricType, is_valid_label_name, is_valid_metric_name};

use crate::number::parse_text_float;
use crate::openmetrics::{read_quoted, unescape};
use crate::{Error, Exposition, ParsedSample, RawSample, Result};

pub(crate) fn parse(text: &str) -> Result<Exposition> {
    let mut samples = Vec::new();
    let mut failed = None;
    let metadata = scan(text, |raw| match raw.labels() {
        Ok(labels) => {
            samples.push(ParsedSample {
                labels,
                value: raw.value,
                timestamp_ms: raw.timestamp_ms,
                exemplar: None,
            });
            ControlFlow::Continue(())
        }
        Err(e) => {
            failed = Some(e);
            ControlFlow::Break(())
        }
    })?;
    match failed {
        Some(e) => Err(e),
        None => Ok(Exposition { samples, metadata }),
    }
}

/// Scans a body line by line, handing each sample line to `visit` as borrowed text. A
/// sample line's label set is skipped over here (quotes and escapes respected), not
/// parsed: [`RawSample::labels`] parses it when asked. Nothing is allocated per sample;
/// metadata allocates per family.
pub(crate) fn scan(
    text: &str,
    mut visit: impl FnMut(&RawSample<'_>) -> ControlFlow<()>,
) -> Result<Vec<(String, MetricMetadata)>> {
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
            let idx = match meta_index.get(name) {
                Some(idx) => *idx,
                None => {
                    meta.push((name.to_owned(), MetricMetadata::default()));
                    meta_index.insert(name.to_owned(), meta.len() - 1);
                    meta.len() - 1
                }
            };
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
        let sample = split_sample(line, lineno).map_err(|m| Error::new(lineno, m))?;
        if visit(&sample).is_break() {
            break;
        }
    }
    Ok(meta)
}

fn split_ws(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], s[i..].trim_start_matches([' ', '\t'])),
        None => (s, ""),
    }
}

/// Splits a sample line into its series text (name and label set as written), value
/// and timestamp. The label set is only delimited; [`labels`] validates it.
fn split_sample(line: &str, lineno: usize) -> std::result::Result<RawSample<'_>, String> {
    let n = line
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
        .count();
    if n == 0 {
        return Err(format!("invalid metric name in {line:?}"));
    }
    let after_name = line[n..].trim_start_matches([' ', '\t']);
    let series_len = match after_name.strip_prefix('{') {
        Some(inner) => match label_set_len(inner) {
            Some(k) => line.len() - inner.len() + k,
            // Malformed: let the full parse say what is wrong.
            None => {
                return Err(labels(line)
                    .err()
                    .unwrap_or_else(|| format!("unterminated label set in {line:?}")));
            }
        },
        None => n,
    };
    let (series, rest) = line.split_at(series_len);
    let (value_tok, rest) = split_ws(rest.trim_start_matches([' ', '\t']));
    let value = parse_text_float(value_tok).ok_or_else(|| format!("invalid value {value_tok:?}"))?;
    let timestamp_ms = match rest {
        "" => None,
        ts => Some(ts.parse::<i64>().map_err(|_| format!("invalid timestamp {ts:?}"))?),
    };
    Ok(RawSample {
        series,
        value,
        timestamp_ms,
        line: lineno,
    })
}

/// Length of a label set's text after its `{`, through the closing `}`: a `}` outside
/// quotes ends it, and inside quotes a backslash escapes the next byte.
fn label_set_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut quoted = false;
    let mut i = 0;
    while i < b.len() {
        match (b[i], quoted) {
            (b'"', _) => quoted = !quoted,
            (b'\\', true) => i += 1,
            (b'}', false) => return Some(i + 1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Parses a series' text (`name{label="value",...}`, as [`split_sample`] delimits it)
/// into a label set with `__name__`.
pub(crate) fn labels(series: &str) -> std::result::Result<Labels, String> {
    let n = series
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
        .count();
    let name = &series[..n];
    if !is_valid_metric_name(name) {
        return Err(format!("invalid metric name in {series:?}"));
    }
    let mut rest = series[n..].trim_start_matches([' ', '\t']);
    let mut pairs: Vec<(String, String)> = vec![("__name__".into(), name.into())];
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            rest = rest.trim_start_matches([' ', '\t']);
            if let Some(after) = rest.strip_prefix('}') {
                if !after.trim_matches([' ', '\t']).is_empty() {
                    return Err(format!("unexpected text after the labels of {name}"));
                }
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
    Labels::from_pairs(pairs).map_err(|e| e.to_string())
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

    #[test]
    fn scan_delimits_series_text_without_parsing_labels() {
        let body = "a{x=\"}\\\"{\",y=\"2\"} 1 5\n b 2\nc { z = \"3\" , } 3\n";
        let mut seen = Vec::new();
        scan(body, |raw| {
            seen.push((raw.series.to_owned(), raw.value, raw.timestamp_ms, raw.line));
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                ("a{x=\"}\\\"{\",y=\"2\"}".to_owned(), 1.0, Some(5), 1),
                ("b".to_owned(), 2.0, None, 2),
                ("c { z = \"3\" , }".to_owned(), 3.0, None, 3),
            ]
        );
        let parsed = parse(body).unwrap();
        assert_eq!(parsed.samples[0].labels.get("x"), Some("}\"{"));
        assert_eq!(parsed.samples[2].labels.get("z"), Some("3"));
    }

    #[test]
    fn label_errors_surface_when_labels_are_asked_for() {
        let mut err = None;
        scan("ok 1\nbad{1x=\"a\"} 2\n", |raw| {
            if let Err(e) = raw.labels() {
                err = Some(e);
            }
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(err.unwrap().line, 2);
        assert_eq!(parse("a{b=\"1\"} x\n").unwrap_err().line, 1);
        assert_eq!(
            parse("a 1\nb{c=\"1\" 2\n").unwrap_err().line,
            2,
            "unterminated label set"
        );
    }
}
