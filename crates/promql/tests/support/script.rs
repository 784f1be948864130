//! Prometheus' PromQL test-script format (`load`, `clear`, `eval instant at`,
//! `eval_ordered`, `eval_fail`) and a runner that checks Sextant's engine against it
//! the way Prometheus 2.42's own runner does: each instant evaluation is re-run as a
//! range query around the same time, and again with `@` pinned on every selector at
//! several other evaluation times.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use promql_parser::parser::{AtModifier, Expr};
use sextant_model::{Labels, Matcher, Sample, SeriesData, stale_nan};
use sextant_promql::{Engine, QueryRange, QueryValue, Queryable};

/// Samples held in memory, as the test scripts load them.
#[derive(Default)]
pub struct MemStorage {
    series: BTreeMap<Labels, Vec<Sample>>,
}

impl MemStorage {
    pub fn add(&mut self, labels: Labels, samples: Vec<Sample>) {
        let s = self.series.entry(labels).or_default();
        s.extend(samples);
        s.sort_by_key(|x| x.t_ms);
    }
}

impl Queryable for MemStorage {
    async fn select(&self, matchers: &[Matcher], start_ms: i64, end_ms: i64) -> Result<Vec<SeriesData>, String> {
        Ok(self
            .series
            .iter()
            .filter(|(l, _)| matchers.iter().all(|m| m.matches_labels(l)))
            .map(|(l, s)| SeriesData {
                labels: Arc::new(l.clone()),
                samples: s
                    .iter()
                    .filter(|x| x.t_ms >= start_ms && x.t_ms <= end_ms)
                    .copied()
                    .collect(),
            })
            .filter(|s| !s.samples.is_empty())
            .collect())
    }
}

/// One `eval` command.
#[derive(Debug)]
pub struct EvalCase {
    pub line: usize,
    pub expr: String,
    pub at_ms: i64,
    pub ordered: bool,
    pub fail: bool,
    /// Expected series (labels, value); a scalar has `None` labels.
    pub expected: Vec<(Option<Labels>, f64)>,
}

pub enum Command {
    Load(Vec<(Labels, Vec<Sample>)>),
    Clear,
    Eval(EvalCase),
}

/// Parses a test script.
pub fn parse_script(text: &str) -> Result<Vec<Command>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let body_start = i;
        let mut body = Vec::new();
        while i < lines.len() && !lines[i].trim().is_empty() && lines[i].starts_with([' ', '\t']) {
            let l = lines[i].trim();
            if !l.starts_with('#') {
                body.push(l);
            }
            i += 1;
        }
        let err = |m: String| format!("line {}: {m}", body_start);
        if let Some(rest) = line.strip_prefix("load ") {
            let gap = parse_duration_ms(rest.trim()).map_err(err)?;
            let mut series = Vec::new();
            for b in body {
                let (desc, vals) = split_series(b);
                let labels = parse_labels(desc).map_err(err)?;
                let mut samples = Vec::new();
                for (k, v) in expand_values(vals).map_err(err)?.into_iter().enumerate() {
                    if let Some(v) = v {
                        samples.push(Sample::new(k as i64 * gap, v));
                    }
                }
                series.push((labels, samples));
            }
            out.push(Command::Load(series));
        } else if line == "clear" {
            out.push(Command::Clear);
        } else if line.starts_with("eval") {
            let (kind, rest) = line.split_once(' ').ok_or_else(|| err("bad eval".into()))?;
            let rest = rest
                .strip_prefix("instant at ")
                .ok_or_else(|| err("only instant evals exist".into()))?;
            let (at, expr) = rest.split_once(' ').ok_or_else(|| err("missing expression".into()))?;
            let mut expected = Vec::new();
            for b in body {
                if let Ok(v) = parse_number(b) {
                    expected.push((None, v));
                    continue;
                }
                let (desc, vals) = split_series(b);
                let labels = parse_labels(desc).map_err(err)?;
                let v = expand_values(vals).map_err(err)?;
                expected.push((Some(labels), v.first().copied().flatten().unwrap_or(f64::NAN)));
            }
            out.push(Command::Eval(EvalCase {
                line: body_start,
                expr: expr.to_string(),
                at_ms: parse_duration_ms(at).map_err(err)?,
                ordered: kind == "eval_ordered",
                fail: kind == "eval_fail",
                expected,
            }));
        } else {
            return Err(err(format!("unknown command {line:?}")));
        }
    }
    Ok(out)
}

fn parse_duration_ms(s: &str) -> Result<i64, String> {
    if s == "0" {
        return Ok(0);
    }
    sextant_model::time::parse_duration(s)
        .map(|d| d.as_millis() as i64)
        .map_err(|e| e.to_string())
}

/// Splits `metric{a="b", c="d"} 1 2 3` into the descriptor and the values.
fn split_series(line: &str) -> (&str, &str) {
    let end = match line.find('{') {
        Some(open) if !line[..open].contains(char::is_whitespace) => {
            let mut in_str: Option<char> = None;
            let mut escaped = false;
            let mut end = line.len();
            for (k, c) in line[open..].char_indices() {
                if let Some(q) = in_str {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == q {
                        in_str = None;
                    }
                } else if c == '"' || c == '\'' || c == '`' {
                    in_str = Some(c);
                } else if c == '}' {
                    end = open + k + 1;
                    break;
                }
            }
            end
        }
        _ => line.find(char::is_whitespace).unwrap_or(line.len()),
    };
    (&line[..end], line[end..].trim())
}

fn parse_labels(desc: &str) -> Result<Labels, String> {
    if desc.replace(char::is_whitespace, "") == "{}" {
        return Ok(Labels::empty());
    }
    let expr = promql_parser::parser::parse(desc)?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!("{desc:?} is not a series"));
    };
    let mut pairs: Vec<(String, String)> = vs
        .matchers
        .matchers
        .iter()
        .map(|m| (m.name.clone(), m.value.clone()))
        .collect();
    if let Some(n) = vs.name {
        pairs.push(("__name__".into(), n));
    }
    Labels::from_pairs(pairs).map_err(|e| e.to_string())
}

fn parse_number(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    match lower.trim_start_matches(['+', '-']) {
        "inf" | "nan" => {}
        _ if t.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '-' || c == '+') => {}
        _ => return Err(format!("not a number: {s}")),
    }
    if let Some(h) = lower.strip_prefix("0x") {
        return i64::from_str_radix(h, 16).map(|v| v as f64).map_err(|e| e.to_string());
    }
    t.parse::<f64>().map_err(|e| e.to_string())
}

/// Expands `1 2 _ stale 0+10x5 _x3` into one optional value per step.
fn expand_values(s: &str) -> Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for tok in s.split_whitespace() {
        if tok == "_" {
            out.push(None);
            continue;
        }
        if tok == "stale" {
            out.push(Some(stale_nan()));
            continue;
        }
        if let Some(n) = tok.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| format!("bad token {tok}"))?;
            out.extend(std::iter::repeat_n(None, n));
            continue;
        }
        // `0x10` is "0, ten more times", never hexadecimal, in series values.
        let (head, times) = match tok.rfind('x') {
            Some(p) => (&tok[..p], Some(&tok[p + 1..])),
            None => (tok, None),
        };
        let Some(times) = times else {
            out.push(Some(parse_number(head)?));
            continue;
        };
        let times: usize = times.parse().map_err(|_| format!("bad token {tok}"))?;
        // Find a `+`/`-` operator after the first number (not an exponent sign).
        let bytes = head.as_bytes();
        let op =
            (1..bytes.len()).find(|&k| (bytes[k] == b'+' || bytes[k] == b'-') && !matches!(bytes[k - 1], b'e' | b'E'));
        let (start, delta) = match op {
            Some(k) => {
                let start = if &head[..k] == "stale" {
                    stale_nan()
                } else {
                    parse_number(&head[..k])?
                };
                (start, parse_number(&head[k..])?)
            }
            None => (parse_number(head)?, 0.0),
        };
        let mut v = start;
        for _ in 0..=times {
            out.push(Some(v));
            v += delta;
        }
    }
    Ok(out)
}

/// Functions whose result depends on the evaluation time itself, so pinning
/// selectors with `@` cannot be checked against the same expected output.
const AT_UNSAFE: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
];

/// Pins every selector and subquery outside a pinned subquery at `ts`, unless
/// one already has `@` (as Prometheus' runner does). `None` when the expression
/// uses a time-dependent function.
fn pin_at(expr: &Expr, ts_ms: i64) -> Option<Expr> {
    fn walk(e: &mut Expr, at: &AtModifier, unsafe_fn: &mut bool) {
        match e {
            Expr::VectorSelector(vs) if vs.at.is_none() => vs.at = Some(at.clone()),
            Expr::MatrixSelector(m) if m.vs.at.is_none() => m.vs.at = Some(at.clone()),
            Expr::Subquery(sq) => {
                if sq.at.is_none() {
                    sq.at = Some(at.clone());
                }
                // Inside a pinned subquery nothing more changes.
                scan_unsafe(&sq.expr, unsafe_fn);
            }
            Expr::Aggregate(a) => {
                walk(&mut a.expr, at, unsafe_fn);
                if let Some(p) = a.param.as_mut() {
                    walk(p, at, unsafe_fn);
                }
            }
            Expr::Unary(u) => walk(&mut u.expr, at, unsafe_fn),
            Expr::Binary(b) => {
                walk(&mut b.lhs, at, unsafe_fn);
                walk(&mut b.rhs, at, unsafe_fn);
            }
            Expr::Paren(p) => walk(&mut p.expr, at, unsafe_fn),
            Expr::Call(c) => {
                if AT_UNSAFE.contains(&c.func.name) {
                    *unsafe_fn = true;
                }
                for a in c.args.args.iter_mut() {
                    walk(a, at, unsafe_fn);
                }
            }
            _ => {}
        }
    }
    fn scan_unsafe(e: &Expr, unsafe_fn: &mut bool) {
        match e {
            Expr::Call(c) => {
                if AT_UNSAFE.contains(&c.func.name) {
                    *unsafe_fn = true;
                }
                c.args.args.iter().for_each(|a| scan_unsafe(a, unsafe_fn));
            }
            Expr::Aggregate(a) => {
                scan_unsafe(&a.expr, unsafe_fn);
                if let Some(p) = &a.param {
                    scan_unsafe(p, unsafe_fn);
                }
            }
            Expr::Unary(u) => scan_unsafe(&u.expr, unsafe_fn),
            Expr::Binary(b) => {
                scan_unsafe(&b.lhs, unsafe_fn);
                scan_unsafe(&b.rhs, unsafe_fn);
            }
            Expr::Paren(p) => scan_unsafe(&p.expr, unsafe_fn),
            Expr::Subquery(s) => scan_unsafe(&s.expr, unsafe_fn),
            _ => {}
        }
    }
    let mut e = expr.clone();
    let at = AtModifier::At(UNIX_EPOCH + Duration::from_millis(ts_ms as u64));
    let mut unsafe_fn = false;
    walk(&mut e, &at, &mut unsafe_fn);
    (!unsafe_fn).then_some(e)
}

fn almost_equal(a: f64, b: f64) -> bool {
    const EPSILON: f64 = 0.000001;
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || diff < MIN_NORMAL {
        return diff < EPSILON * MIN_NORMAL;
    }
    diff / (a.abs() + b.abs()) < EPSILON
}

/// Compares a result with the expectation; `ordered` also checks positions.
fn compare(case: &EvalCase, got: &[(Option<Labels>, f64)], ordered: bool) -> Result<(), String> {
    if got.len() != case.expected.len() {
        return Err(format!(
            "expected {} results, got {}: {:?}",
            case.expected.len(),
            got.len(),
            show(got)
        ));
    }
    for (pos, (labels, v)) in got.iter().enumerate() {
        let Some(exp_pos) = case.expected.iter().position(|(l, _)| l == labels) else {
            return Err(format!("unexpected result {:?}", show(&[(labels.clone(), *v)])));
        };
        if ordered && exp_pos != pos {
            return Err(format!("{labels:?} at position {pos}, expected {exp_pos}"));
        }
        let want = case.expected[exp_pos].1;
        if !almost_equal(*v, want) {
            return Err(format!(
                "{}: expected {want}, got {v}",
                show(&[(labels.clone(), *v)])[0]
            ));
        }
    }
    Ok(())
}

fn show(got: &[(Option<Labels>, f64)]) -> Vec<String> {
    got.iter()
        .map(|(l, v)| match l {
            Some(l) => format!("{l} {v}"),
            None => format!("scalar {v}"),
        })
        .collect()
}

/// Runs an instant evaluation and its range re-run, at `at_ms`.
async fn check_at(
    engine: &Engine,
    storage: &MemStorage,
    case: &EvalCase,
    expr: &Expr,
    at_ms: i64,
) -> Result<(), String> {
    let got = match engine.instant(storage, expr, at_ms).await {
        Ok(v) => v,
        Err(e) => return Err(format!("unexpected error: {e}")),
    };
    let got_flat: Vec<(Option<Labels>, f64)> = match &got {
        QueryValue::Scalar { v, .. } => vec![(None, *v)],
        QueryValue::Vector(v) => v.iter().map(|s| (Some(s.labels.clone()), s.v)).collect(),
        other => {
            return Err(format!(
                "unexpected {} result on an instant evaluation",
                other.type_name()
            ));
        }
    };
    compare(case, &got_flat, case.ordered).map_err(|e| format!("instant: {e}"))?;
    if case.ordered {
        return Ok(());
    }
    let range = QueryRange {
        start_ms: at_ms - 60_000,
        end_ms: at_ms + 60_000,
        step_ms: 60_000,
    };
    let r = engine
        .range(storage, expr, range)
        .await
        .map_err(|e| format!("range re-run: unexpected error: {e}"))?;
    let QueryValue::Matrix(m) = r else {
        return Err("range re-run did not return a matrix".into());
    };
    let mut mid: Vec<(Option<Labels>, f64)> = Vec::new();
    for s in &m {
        if let Some(p) = s.samples.iter().find(|p| p.t_ms == at_ms) {
            mid.push((Some(s.labels.clone()), p.v));
        }
    }
    if matches!(got, QueryValue::Scalar { .. }) {
        mid = mid.into_iter().take(1).map(|(_, v)| (None, v)).collect();
    }
    compare(case, &mid, false).map_err(|e| format!("range re-run: {e}"))
}

/// Runs one eval case: every check Prometheus' runner makes.
pub async fn run_case(engine: &Engine, storage: &MemStorage, case: &EvalCase) -> Result<(), String> {
    let parsed = sextant_promql::parse(&case.expr);
    if case.fail {
        let expr = match parsed {
            Ok(e) => e,
            Err(_) => return Ok(()),
        };
        return match engine.instant(storage, &expr, case.at_ms).await {
            Ok(v) => Err(format!("expected an error, got {v:?}")),
            Err(_) => Ok(()),
        };
    }
    let expr = parsed.map_err(|e| format!("parse error: {e}"))?;
    check_at(engine, storage, case, &expr, case.at_ms).await?;
    if let Some(pinned) = pin_at(&expr, case.at_ms) {
        let ts = case.at_ms;
        let times: Vec<i64> = if ts == 0 {
            vec![-1000, 0, 1000]
        } else {
            vec![-10 * ts, 0, ts / 5, ts, 10 * ts]
        };
        for t in times {
            check_at(engine, storage, case, &pinned, t).await.map_err(|e| {
                format!(
                    "with @ {}s evaluated at {}s: {e}",
                    ts as f64 / 1000.0,
                    t as f64 / 1000.0
                )
            })?;
        }
    }
    Ok(())
}
