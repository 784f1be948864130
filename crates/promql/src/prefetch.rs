//! Phase one of a query: find every selector in the expression and the time range it
//! can read, so each distinct selector is fetched from storage once.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promql_parser::label::{MatchOp as PMatchOp, Matcher as PMatcher};
use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};
use sextant_model::{MatchOp, Matcher, SeriesData};

use crate::{EngineOptions, Error, QueryRange};

/// One storage read: a selector's matchers over a time range.
#[derive(Debug)]
pub(crate) struct Fetch {
    pub key: String,
    pub matchers: Vec<Matcher>,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// Series read for each selector, by [`selector_key`].
pub(crate) type Fetched = HashMap<String, Vec<SeriesData>>;

/// The reads `expr` needs when evaluated over `range`. Selectors whose matchers are
/// invalid are left out here; evaluation reports them.
pub(crate) fn plan(expr: &Expr, range: QueryRange, opts: &EngineOptions) -> Vec<Fetch> {
    let mut out: HashMap<String, Fetch> = HashMap::new();
    walk(expr, range.start_ms, range.end_ms, range, opts, &mut out);
    let mut v: Vec<Fetch> = out.into_values().collect();
    v.sort_by(|a, b| a.key.cmp(&b.key));
    v
}

fn walk(expr: &Expr, s: i64, e: i64, q: QueryRange, opts: &EngineOptions, out: &mut HashMap<String, Fetch>) {
    let lookback = ms(opts.lookback_delta);
    match expr {
        Expr::VectorSelector(vs) => add(vs, s, e, lookback, q, out),
        Expr::MatrixSelector(m) => {
            // Exact counter windows also read the sample before the window.
            let extra = if opts.exact_counter_windows { lookback } else { 0 };
            add(&m.vs, s, e, ms(m.range) + extra, q, out)
        }
        Expr::Subquery(sq) => {
            let (s, e) = at_ms(sq.at.as_ref(), q).map_or((s, e), |a| (a, a));
            let off = offset_ms(sq.offset.as_ref());
            walk(
                &sq.expr,
                s.saturating_sub(off).saturating_sub(ms(sq.range)),
                e.saturating_sub(off),
                q,
                opts,
                out,
            );
        }
        Expr::Aggregate(a) => {
            walk(&a.expr, s, e, q, opts, out);
            if let Some(p) = &a.param {
                walk(p, s, e, q, opts, out);
            }
        }
        Expr::Unary(u) => walk(&u.expr, s, e, q, opts, out),
        Expr::Binary(b) => {
            walk(&b.lhs, s, e, q, opts, out);
            walk(&b.rhs, s, e, q, opts, out);
        }
        Expr::Paren(p) => walk(&p.expr, s, e, q, opts, out),
        Expr::Call(c) => {
            for a in &c.args.args {
                walk(a, s, e, q, opts, out);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn add(vs: &VectorSelector, s: i64, e: i64, window: i64, q: QueryRange, out: &mut HashMap<String, Fetch>) {
    let Ok(matchers) = selector_matchers(vs) else { return };
    let (s, e) = at_ms(vs.at.as_ref(), q).map_or((s, e), |a| (a, a));
    let off = offset_ms(vs.offset.as_ref());
    let (start_ms, end_ms) = (s.saturating_sub(off).saturating_sub(window), e.saturating_sub(off));
    let key = selector_key(vs);
    out.entry(key.clone())
        .and_modify(|f| {
            f.start_ms = f.start_ms.min(start_ms);
            f.end_ms = f.end_ms.max(end_ms);
        })
        .or_insert(Fetch {
            key,
            matchers,
            start_ms,
            end_ms,
        });
}

/// Identifies a selector's series set independent of offset and `@`.
pub(crate) fn selector_key(vs: &VectorSelector) -> String {
    let mut parts: Vec<String> = vs
        .matchers
        .matchers
        .iter()
        .map(|m| format!("{}{}{:?}", m.name, m.op, m.value))
        .collect();
    if let Some(n) = &vs.name {
        parts.push(format!("__name__={n:?}"));
    }
    parts.sort();
    parts.join(",")
}

/// The selector's matchers (its metric name included) in the store's form.
pub(crate) fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Matcher>, Error> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(Error::BadData(
            "`or` inside a selector's braces is not PromQL of Prometheus 2.42".into(),
        ));
    }
    let mut out: Vec<Matcher> = vs
        .matchers
        .matchers
        .iter()
        .map(convert_matcher)
        .collect::<Result<_, _>>()?;
    if let Some(n) = &vs.name {
        out.push(Matcher::new(MatchOp::Equal, sextant_model::METRIC_NAME, n.clone()).map_err(bad)?);
    }
    Ok(out)
}

fn convert_matcher(m: &PMatcher) -> Result<Matcher, Error> {
    let op = match m.op {
        PMatchOp::Equal => MatchOp::Equal,
        PMatchOp::NotEqual => MatchOp::NotEqual,
        PMatchOp::Re(_) => MatchOp::Regex,
        PMatchOp::NotRe(_) => MatchOp::NotRegex,
    };
    Matcher::new(op, m.name.clone(), m.value.clone()).map_err(bad)
}

fn bad(e: impl std::fmt::Display) -> Error {
    Error::BadData(e.to_string())
}

pub(crate) fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// A signed offset in milliseconds (`offset -5m` is negative).
pub(crate) fn offset_ms(o: Option<&Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => ms(*d),
        Some(Offset::Neg(d)) => -ms(*d),
    }
}

/// The time an `@` modifier pins evaluation to; `start()`/`end()` are the query's.
pub(crate) fn at_ms(at: Option<&AtModifier>, q: QueryRange) -> Option<i64> {
    match at? {
        AtModifier::Start => Some(q.start_ms),
        AtModifier::End => Some(q.end_ms),
        AtModifier::At(t) => Some(system_time_ms(*t)),
    }
}

pub(crate) fn system_time_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => ms(d),
        Err(e) => -ms(e.duration()),
    }
}
