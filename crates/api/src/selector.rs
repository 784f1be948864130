//! `match[]` series selectors, parsed with `promql-parser` into store matchers.

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{self, Expr};
use sextant_model::{MatchOp, Matcher};

use crate::error::ApiError;

/// Parses one series selector (`up{job="x"}`, `{__name__=~"a.*"}`) into one or more
/// matcher sets (more than one when the selector uses `or`).
pub fn parse_selector(s: &str) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let expr = parser::parse(s).map_err(|e| ApiError::bad_data(format!("invalid parameter \"match[]\": {e}")))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(ApiError::bad_data(format!(
            "invalid parameter \"match[]\": {s:?} is not a series selector"
        )));
    };
    if vs.offset.is_some() || vs.at.is_some() {
        return Err(ApiError::bad_data(
            "invalid parameter \"match[]\": offset and @ are not allowed in a series selector",
        ));
    }
    let convert = |ms: &[promql_parser::label::Matcher]| -> Result<Vec<Matcher>, ApiError> {
        let mut out: Vec<Matcher> = ms
            .iter()
            .map(|m| {
                let op = match m.op {
                    PMatchOp::Equal => MatchOp::Equal,
                    PMatchOp::NotEqual => MatchOp::NotEqual,
                    PMatchOp::Re(_) => MatchOp::Regex,
                    PMatchOp::NotRe(_) => MatchOp::NotRegex,
                };
                Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| ApiError::bad_data(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        if let Some(name) = &vs.name {
            out.push(
                Matcher::new(MatchOp::Equal, "__name__", name.clone())
                    .map_err(|e| ApiError::bad_data(e.to_string()))?,
            );
        }
        if out.iter().all(|m| m.matches_empty()) {
            return Err(ApiError::bad_data(
                "match[] must contain at least one non-empty matcher",
            ));
        }
        Ok(out)
    };
    if vs.matchers.or_matchers.is_empty() {
        Ok(vec![convert(&vs.matchers.matchers)?])
    } else {
        vs.matchers
            .or_matchers
            .iter()
            .map(|group| {
                let mut all = group.clone();
                all.extend(vs.matchers.matchers.iter().cloned());
                convert(&all)
            })
            .collect()
    }
}

/// Parses every `match[]` value; the union of all their matcher sets.
pub fn parse_selectors(values: &[String]) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let mut out = Vec::new();
    for v in values {
        out.extend(parse_selector(v)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let sets = parse_selector(r#"up{job=~"a|b"}"#).unwrap();
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].len(), 2);
        assert!(parse_selector(r#"{job=""}"#).is_err());
        assert!(parse_selector("rate(x[5m])").is_err());
        assert!(parse_selector("up{").is_err());
    }
}
