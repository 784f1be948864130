//! Evaluating LogQL over the store: log queries return entries grouped into
//! streams; metric queries extract samples from entries and aggregate them over
//! left-open windows `(t − offset − range, t − offset]` at every step, then
//! across series, as Loki does (no extrapolation, no look-back).

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::Arc;

use sextant_model::Labels;
use sextant_model::MatchOp;

use super::ast::*;
use super::pipeline::{LineState, convert, filter, leading_needles, run};
use crate::store::{Direction, LogStore, ScanStats, Selection};

/// Parameters of an evaluation.
#[derive(Debug, Clone)]
pub struct QueryParams {
    /// First step / start of the range, ns.
    pub start: i64,
    /// Last step / end of the range, ns.
    pub end: i64,
    /// Step, ns (0 for an instant query).
    pub step: i64,
    /// Most entries of a log query.
    pub limit: usize,
    /// Order of a log query's entries.
    pub direction: Direction,
}

/// One stream of a log query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamResult {
    /// All labels (stream, structured metadata, parsed): how Loki groups entries
    /// unless asked to categorize labels.
    pub labels: Labels,
    /// Entries in the query's direction.
    pub entries: Vec<EntryResult>,
}

/// One entry of a log query's result, its labels split as Loki's
/// `categorize-labels` encoding shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryResult {
    /// Timestamp, ns.
    pub ts: i64,
    /// The line after the pipeline.
    pub line: String,
    /// The stream's own (indexed) labels as the pipeline left them.
    pub stream: Labels,
    /// Structured metadata.
    pub metadata: Vec<(String, String)>,
    /// Labels added by parsers and formatters.
    pub parsed: Vec<(String, String)>,
}

/// A query's result.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    /// Entries.
    Streams(Vec<StreamResult>),
    /// One sample per series (instant queries), at the time given.
    Vector(i64, Vec<(Labels, f64)>),
    /// Points per series (range queries), ms timestamps.
    Matrix(Vec<(Labels, Vec<(i64, f64)>)>),
    /// A number (instant queries of literals).
    Scalar(i64, f64),
}

/// Why an evaluation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// A bad query or a pipeline error in a metric query: HTTP 400.
    #[error("{0}")]
    BadQuery(String),
    /// The store failed: HTTP 500.
    #[error("{0}")]
    Internal(String),
}

/// Counts for Loki's `stats`.
#[derive(Debug, Clone, Default)]
pub struct EvalStats {
    /// Entries read from the index.
    pub entries_scanned: u64,
    /// Line bytes read.
    pub bytes_scanned: u64,
    /// Entries returned or aggregated.
    pub entries_returned: u64,
    /// Partitions searched.
    pub partitions: u64,
}

impl EvalStats {
    fn add(&mut self, s: &ScanStats) {
        self.entries_scanned += s.candidates;
        self.bytes_scanned += s.bytes;
        self.partitions += s.partitions;
    }
}

/// Evaluates a parsed query.
pub fn evaluate(store: &LogStore, expr: &Expr, p: &QueryParams) -> Result<(QueryResult, EvalStats), EvalError> {
    let mut stats = EvalStats::default();
    let result = match expr {
        Expr::Log(l) => QueryResult::Streams(log_query(store, l, p, &mut stats)?),
        Expr::Metric(m) => {
            let steps = steps(p);
            let v = eval(store, m, &steps, None, &mut stats)?;
            if p.step == 0 {
                match v {
                    Value::Scalar(s) => QueryResult::Scalar(p.start, s[0]),
                    Value::Vector(mut vs) => {
                        let mut v = vs.pop().unwrap_or_default();
                        if !preserves_order(m) {
                            v.sort_by(|a, b| a.0.cmp(&b.0));
                        }
                        QueryResult::Vector(p.start, v)
                    }
                }
            } else {
                QueryResult::Matrix(to_matrix(v, &steps))
            }
        }
    };
    Ok((result, stats))
}

fn preserves_order(m: &MetricExpr) -> bool {
    matches!(
        m,
        MetricExpr::Agg {
            op: AggOp::Sort | AggOp::SortDesc | AggOp::Topk | AggOp::Bottomk,
            ..
        }
    )
}

fn steps(p: &QueryParams) -> Vec<i64> {
    if p.step <= 0 {
        return vec![p.start];
    }
    let mut out = Vec::new();
    let mut t = p.start;
    while t <= p.end {
        out.push(t);
        t += p.step;
    }
    out
}

fn to_matrix(v: Value, steps: &[i64]) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let mut series: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    match v {
        Value::Scalar(s) => {
            series.insert(
                Labels::empty(),
                steps.iter().zip(s).map(|(t, v)| (t.div_euclid(1_000_000), v)).collect(),
            );
        }
        Value::Vector(vs) => {
            for (t, vec) in steps.iter().zip(vs) {
                for (l, v) in vec {
                    series.entry(l).or_default().push((t.div_euclid(1_000_000), v));
                }
            }
        }
    }
    series.into_iter().collect()
}

fn log_query(
    store: &LogStore,
    l: &LogExpr,
    p: &QueryParams,
    stats: &mut EvalStats,
) -> Result<Vec<StreamResult>, EvalError> {
    let sel = Selection {
        matchers: l.matchers.clone(),
        from: p.start,
        to: if p.step == 0 && p.end == p.start {
            p.end
        } else {
            p.end - 1
        },
        needles: leading_needles(&l.stages),
        direction: p.direction,
        fetch: true,
    };
    let mut streams: HashMap<Labels, Vec<EntryResult>> = HashMap::new();
    let mut n = 0usize;
    let limit = p.limit;
    let scan = store
        .scan(&sel, |v| {
            if n >= limit {
                return ControlFlow::Break(());
            }
            if let Some((labels, entry)) = apply_pipeline(&l.stages, v.stream, v.metadata, v.line, v.ts) {
                n += 1;
                streams.entry(labels).or_default().push(entry);
            }
            if n >= limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .map_err(|e| EvalError::Internal(e.to_string()))?;
    stats.add(&scan);
    stats.entries_returned += n as u64;
    let mut out: Vec<StreamResult> = streams
        .into_iter()
        .map(|(labels, entries)| StreamResult { labels, entries })
        .collect();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

/// Runs a log query's pipeline over one entry: its output labels and the entry
/// as a result shows it, or `None` when a stage drops it.
fn apply_pipeline(
    stages: &[Stage],
    stream: &Labels,
    metadata: &[(String, String)],
    line: &str,
    ts: i64,
) -> Option<(Labels, EntryResult)> {
    let mut st = LineState::new(stream, metadata, line, ts);
    if !run(stages, &mut st) {
        return None;
    }
    let (stream, metadata, parsed) = st.categorized();
    let labels = st.output_labels();
    Some((
        labels,
        EntryResult {
            ts,
            line: st.line,
            stream,
            metadata,
            parsed,
        },
    ))
}

/// The entries of freshly indexed streams (what [`LogStore::subscribe`] hands
/// out) that a log query selects, through its pipeline, grouped into streams in
/// timestamp order: what `/loki/api/v1/tail` sends as they arrive.
pub fn tail_matches(l: &LogExpr, pushed: &[crate::record::PushStream]) -> Vec<StreamResult> {
    let mut streams: HashMap<Labels, Vec<EntryResult>> = HashMap::new();
    for s in pushed {
        if !l.matchers.iter().all(|m| m.matches_labels(&s.labels)) {
            continue;
        }
        for e in &s.entries {
            if let Some((labels, entry)) = apply_pipeline(&l.stages, &s.labels, &e.metadata, &e.line, e.ts) {
                streams.entry(labels).or_default().push(entry);
            }
        }
    }
    let mut out: Vec<StreamResult> = streams
        .into_iter()
        .map(|(labels, mut entries)| {
            entries.sort_by_key(|e| e.ts);
            StreamResult { labels, entries }
        })
        .collect();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

/// A value at every step.
enum Value {
    Scalar(Vec<f64>),
    Vector(Vec<Vec<(Labels, f64)>>),
}

const PIPELINE_ERR_TAIL: &str = "Use a label filter to intentionally skip this error. (e.g | __error__!=\"{ERR}\").\nTo skip all potential errors you can match empty errors.(e.g __error__=\"\")\nThe label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n";

fn pipeline_error(labels: &Labels, err: &str) -> EvalError {
    let shown = format!(
        "{{{}}}",
        labels
            .iter()
            .map(|l| format!("{}={:?}", l.name, l.value))
            .collect::<Vec<_>>()
            .join(", ")
    );
    EvalError::BadQuery(format!(
        "pipeline error: '{err}' for series: '{shown}'.\n{}",
        PIPELINE_ERR_TAIL.replace("{ERR}", err)
    ))
}

/// Labels an outer `sum by (...)` keeps, when they are all it needs (lets a
/// range aggregation without a pipeline skip reading lines).
type Hint<'a> = Option<&'a [String]>;

fn eval(
    store: &LogStore,
    m: &MetricExpr,
    steps: &[i64],
    hint: Hint<'_>,
    stats: &mut EvalStats,
) -> Result<Value, EvalError> {
    match m {
        MetricExpr::Literal(v) => Ok(Value::Scalar(vec![*v; steps.len()])),
        MetricExpr::Vector(v) => Ok(Value::Vector(vec![vec![(Labels::empty(), *v)]; steps.len()])),
        MetricExpr::Range {
            func,
            log,
            range,
            offset,
            unwrap,
            grouping,
            param,
        } => range_agg(
            store,
            *func,
            log,
            *range,
            *offset,
            unwrap.as_ref(),
            grouping.as_ref(),
            *param,
            steps,
            hint,
            stats,
        ),
        MetricExpr::Agg {
            op,
            grouping,
            param,
            inner,
        } => {
            let inner_hint = match grouping {
                Some(g)
                    if !g.without && matches!(op, AggOp::Sum | AggOp::Count | AggOp::Max | AggOp::Min | AggOp::Avg) =>
                {
                    Some(g.labels.as_slice())
                }
                None if matches!(op, AggOp::Sum | AggOp::Count | AggOp::Max | AggOp::Min | AggOp::Avg) => Some(&[][..]),
                _ => None,
            };
            let v = eval(store, inner, steps, inner_hint, stats)?;
            let Value::Vector(vs) = v else {
                return Err(EvalError::BadQuery("aggregation over a scalar".into()));
            };
            Ok(Value::Vector(
                vs.into_iter()
                    .map(|vec| aggregate(*op, grouping.as_ref(), *param, vec))
                    .collect(),
            ))
        }
        MetricExpr::Binary {
            op,
            return_bool,
            matching,
            lhs,
            rhs,
        } => {
            let l = eval(store, lhs, steps, None, stats)?;
            let r = eval(store, rhs, steps, None, stats)?;
            Ok(binary(*op, *return_bool, matching, l, r))
        }
        MetricExpr::LabelReplace {
            inner,
            dst,
            replacement,
            src,
            regex,
        } => {
            let v = eval(store, inner, steps, None, stats)?;
            let Value::Vector(vs) = v else { return Ok(v) };
            Ok(Value::Vector(
                vs.into_iter()
                    .map(|vec| {
                        vec.into_iter()
                            .map(|(l, v)| {
                                let sv = l.get(src).unwrap_or("");
                                let l = match regex.captures(sv) {
                                    Some(caps) => {
                                        let mut out = String::new();
                                        caps.expand(replacement, &mut out);
                                        let mut b = l.to_builder();
                                        if out.is_empty() {
                                            b.del(dst);
                                        } else {
                                            b.set(dst, &out);
                                        }
                                        b.build()
                                    }
                                    None => l,
                                };
                                (l, v)
                            })
                            .collect()
                    })
                    .collect(),
            ))
        }
    }
}

fn group_labels(l: &Labels, g: &Grouping) -> Labels {
    if g.without {
        l.filter(|x| !g.labels.contains(&x.name))
    } else {
        l.filter(|x| g.labels.contains(&x.name))
    }
}

#[allow(clippy::too_many_arguments)]
fn range_agg(
    store: &LogStore,
    func: RangeFn,
    log: &LogExpr,
    range: i64,
    offset: i64,
    unwrap: Option<&Unwrap>,
    grouping: Option<&Grouping>,
    param: Option<f64>,
    steps: &[i64],
    hint: Hint<'_>,
    stats: &mut EvalStats,
) -> Result<Value, EvalError> {
    let first = steps[0];
    let last = *steps.last().expect("at least one step");
    let from = first - offset - range + 1;
    let to = last - offset;
    let stages = &log.stages;
    // Without a pipeline, the labels an outer `sum by (...)` keeps may all be
    // stream labels; then lines and metadata need not be read.
    let fast = stages.is_empty()
        && unwrap.is_none()
        && grouping.is_none()
        && func != RangeFn::AbsentOverTime
        && hint.is_some_and(|by| {
            store
                .streams(&log.matchers, from, to)
                .iter()
                .all(|s| by.iter().all(|n| s.get(n).is_some()))
        });
    let sel = Selection {
        matchers: log.matchers.clone(),
        from,
        to,
        needles: leading_needles(stages),
        direction: Direction::Forward,
        fetch: !fast,
    };
    let mut series: HashMap<Labels, Vec<(i64, f64)>> = HashMap::new();
    let mut error: Option<(Labels, String)> = None;
    let mut fast_cache: HashMap<*const Labels, Labels> = HashMap::new();
    let scan = store
        .scan(&sel, |v| {
            if fast {
                let by = hint.expect("fast implies a hint");
                let key = fast_cache
                    .entry(Arc::as_ptr(v.stream))
                    .or_insert_with(|| v.stream.filter(|l| by.contains(&l.name)))
                    .clone();
                let value = match func {
                    RangeFn::BytesOverTime | RangeFn::BytesRate => v.len as f64,
                    _ => 1.0,
                };
                series.entry(key).or_default().push((v.ts, value));
                return ControlFlow::Continue(());
            }
            let mut st = LineState::new(v.stream, v.metadata, v.line, v.ts);
            if !run(stages, &mut st) {
                return ControlFlow::Continue(());
            }
            let value = match unwrap {
                None => match func {
                    RangeFn::BytesOverTime | RangeFn::BytesRate => st.line.len() as f64,
                    _ => 1.0,
                },
                Some(u) => {
                    let raw = match st.label(&u.name) {
                        Some(r) if !r.is_empty() => r.to_owned(),
                        _ => return ControlFlow::Continue(()),
                    };
                    let v = match convert(&raw, u.conv) {
                        Ok(v) => v,
                        Err(e) => {
                            // A conversion error replaces any earlier one (Loki's `SetErr`).
                            st.err = Some("SampleExtractionErr".into());
                            st.err_details = Some(e);
                            0.0
                        }
                    };
                    for f in &u.post_filters {
                        if !filter(f, &mut st) {
                            return ControlFlow::Continue(());
                        }
                    }
                    v
                }
            };
            let mut labels = st.output_labels();
            if st.err.is_some() {
                if error.is_none() {
                    error = Some((labels, st.err.clone().unwrap_or_default()));
                }
                return ControlFlow::Break(());
            }
            if let Some(u) = unwrap {
                labels = match grouping {
                    Some(g) => group_labels(&labels, g),
                    None => labels.filter(|l| l.name != u.name),
                };
                if let Some(g) = grouping
                    && g.without
                {
                    labels = labels.filter(|l| l.name != u.name);
                }
            } else if let Some(g) = grouping {
                labels = group_labels(&labels, g);
            }
            series.entry(labels).or_default().push((v.ts, value));
            ControlFlow::Continue(())
        })
        .map_err(|e| EvalError::Internal(e.to_string()))?;
    stats.add(&scan);
    if let Some((labels, err)) = error {
        return Err(pipeline_error(&labels, &err));
    }
    stats.entries_returned += series.values().map(|s| s.len() as u64).sum::<u64>();
    let range_s = range as f64 / 1e9;
    let mut out = Vec::with_capacity(steps.len());
    for &t in steps {
        let hi = t - offset;
        let lo = hi - range;
        let mut vec = Vec::new();
        let mut any = false;
        for (labels, samples) in &series {
            let a = samples.partition_point(|(ts, _)| *ts <= lo);
            let b = samples.partition_point(|(ts, _)| *ts <= hi);
            if a >= b {
                continue;
            }
            any = true;
            let w: Vec<f64> = samples[a..b].iter().map(|(_, v)| *v).collect();
            if func == RangeFn::AbsentOverTime {
                continue;
            }
            let v = match func {
                RangeFn::CountOverTime => w.len() as f64,
                RangeFn::Rate if unwrap.is_none() => w.len() as f64 / range_s,
                RangeFn::Rate | RangeFn::BytesRate => w.iter().sum::<f64>() / range_s,
                RangeFn::BytesOverTime | RangeFn::SumOverTime => w.iter().sum(),
                RangeFn::AvgOverTime => {
                    let mut mean: f64 = 0.0;
                    for (i, v) in w.iter().enumerate() {
                        let n = (i + 1) as f64;
                        if mean.is_infinite() && v.is_infinite() && mean.signum() != v.signum() {
                            mean = f64::NAN;
                        } else if mean.is_infinite() || v.is_infinite() {
                            mean += v / n;
                        } else {
                            mean += v / n - mean / n;
                        }
                    }
                    mean
                }
                RangeFn::MinOverTime => w
                    .iter()
                    .copied()
                    .fold(f64::NAN, |a, b| if a.is_nan() || b < a { b } else { a }),
                RangeFn::MaxOverTime => w
                    .iter()
                    .copied()
                    .fold(f64::NAN, |a, b| if a.is_nan() || b > a { b } else { a }),
                RangeFn::StdvarOverTime | RangeFn::StddevOverTime => {
                    let (mut n, mut mean, mut m2): (f64, f64, f64) = (0.0, 0.0, 0.0);
                    for v in &w {
                        n += 1.0;
                        let d = v - mean;
                        mean += d / n;
                        m2 += d * (v - mean);
                    }
                    let var = m2 / n;
                    if func == RangeFn::StddevOverTime {
                        var.sqrt()
                    } else {
                        var
                    }
                }
                RangeFn::QuantileOverTime => quantile(param.unwrap_or(0.0), w),
                RangeFn::FirstOverTime => w[0],
                RangeFn::LastOverTime => w[w.len() - 1],
                RangeFn::RateCounter => rate_counter(&samples[a..b], lo, hi, range_s),
                RangeFn::AbsentOverTime => unreachable!("handled above"),
            };
            vec.push((labels.clone(), v));
        }
        if func == RangeFn::AbsentOverTime && !any {
            vec.push((absent_labels(log), 1.0));
        }
        out.push(vec);
    }
    Ok(Value::Vector(out))
}

fn absent_labels(log: &LogExpr) -> Labels {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for m in &log.matchers {
        let count = log.matchers.iter().filter(|x| x.name == m.name).count();
        if m.op == MatchOp::Equal && count == 1 {
            pairs.push((&m.name, &m.value));
        }
    }
    Labels::from_pairs(pairs).unwrap_or_default()
}

fn quantile(q: f64, mut w: Vec<f64>) -> f64 {
    if w.is_empty() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    w.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let rank = q * (w.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = (lo + 1).min(w.len() - 1);
    let weight = rank - rank.floor();
    w[lo] * (1.0 - weight) + w[hi] * weight
}

/// Prometheus' extrapolated counter rate over the query window (Loki main).
fn rate_counter(samples: &[(i64, f64)], lo: i64, hi: i64, range_s: f64) -> f64 {
    if samples.len() < 2 {
        return 0.0;
    }
    let mut delta = samples[samples.len() - 1].1 - samples[0].1;
    for w in samples.windows(2) {
        if w[1].1 < w[0].1 {
            delta += w[0].1;
        }
    }
    let first_t = samples[0].0 as f64 / 1e9;
    let last_t = samples[samples.len() - 1].0 as f64 / 1e9;
    let start = lo as f64 / 1e9;
    let end = hi as f64 / 1e9;
    let mut to_start = first_t - start;
    let to_end = end - last_t;
    let sampled = last_t - first_t;
    let avg = sampled / (samples.len() - 1) as f64;
    if delta > 0.0 && samples[0].1 >= 0.0 {
        let to_zero = sampled * (samples[0].1 / delta);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = avg * 1.1;
    let mut extrapolate = sampled;
    extrapolate += if to_start < threshold { to_start } else { avg / 2.0 };
    extrapolate += if to_end < threshold { to_end } else { avg / 2.0 };
    if sampled == 0.0 {
        return 0.0;
    }
    delta * (extrapolate / sampled) / range_s
}

fn aggregate(
    op: AggOp,
    grouping: Option<&Grouping>,
    param: Option<f64>,
    vec: Vec<(Labels, f64)>,
) -> Vec<(Labels, f64)> {
    let key = |l: &Labels| match grouping {
        Some(g) => group_labels(l, g),
        None => Labels::empty(),
    };
    match op {
        AggOp::Sort | AggOp::SortDesc => {
            let mut v = vec;
            v.sort_by(|a, b| {
                let o = a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal);
                if op == AggOp::Sort { o } else { o.reverse() }
            });
            v
        }
        AggOp::Topk | AggOp::Bottomk => {
            let k = param.unwrap_or(1.0) as usize;
            let mut groups: BTreeMap<Labels, Vec<(Labels, f64)>> = BTreeMap::new();
            for (l, v) in vec {
                groups.entry(key(&l)).or_default().push((l, v));
            }
            let mut out = Vec::new();
            for (_, mut g) in groups {
                g.sort_by(|a, b| {
                    let o = a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal);
                    if op == AggOp::Topk { o.reverse() } else { o }
                });
                g.truncate(k);
                out.extend(g);
            }
            out
        }
        _ => {
            let mut groups: BTreeMap<Labels, Vec<f64>> = BTreeMap::new();
            for (l, v) in vec {
                groups.entry(key(&l)).or_default().push(v);
            }
            groups
                .into_iter()
                .map(|(l, vs)| {
                    let n = vs.len() as f64;
                    let v = match op {
                        AggOp::Sum => vs.iter().sum(),
                        AggOp::Count => n,
                        AggOp::Avg => vs.iter().sum::<f64>() / n,
                        AggOp::Max => vs
                            .iter()
                            .copied()
                            .fold(f64::NAN, |a, b| if a.is_nan() || b > a { b } else { a }),
                        AggOp::Min => vs
                            .iter()
                            .copied()
                            .fold(f64::NAN, |a, b| if a.is_nan() || b < a { b } else { a }),
                        AggOp::Stdvar | AggOp::Stddev => {
                            let mean = vs.iter().sum::<f64>() / n;
                            let var = vs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
                            if op == AggOp::Stddev { var.sqrt() } else { var }
                        }
                        _ => unreachable!("handled above"),
                    };
                    (l, v)
                })
                .collect()
        }
    }
}

fn arith(op: BinOp, a: f64, b: f64) -> Option<f64> {
    Some(match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => {
            if b == 0.0 {
                f64::NAN
            } else {
                a / b
            }
        }
        BinOp::Mod => {
            if b == 0.0 {
                f64::NAN
            } else {
                a % b
            }
        }
        BinOp::Pow => a.powf(b),
        BinOp::Eq => f64::from(u8::from(a == b)),
        BinOp::Ne => f64::from(u8::from(a != b)),
        BinOp::Gt => f64::from(u8::from(a > b)),
        BinOp::Ge => f64::from(u8::from(a >= b)),
        BinOp::Lt => f64::from(u8::from(a < b)),
        BinOp::Le => f64::from(u8::from(a <= b)),
        _ => return None,
    })
}

fn signature(l: &Labels, m: &VectorMatching) -> Labels {
    match m.on {
        Some(true) => l.filter(|x| m.labels.contains(&x.name)),
        Some(false) => l.filter(|x| !m.labels.contains(&x.name)),
        None => l.clone(),
    }
}

fn binary(op: BinOp, return_bool: bool, m: &VectorMatching, l: Value, r: Value) -> Value {
    match (l, r) {
        (Value::Scalar(a), Value::Scalar(b)) => Value::Scalar(
            a.iter()
                .zip(&b)
                .map(|(x, y)| arith(op, *x, *y).unwrap_or(f64::NAN))
                .collect(),
        ),
        (Value::Vector(vs), Value::Scalar(s)) => Value::Vector(vector_scalar(op, return_bool, vs, s, false)),
        (Value::Scalar(s), Value::Vector(vs)) => Value::Vector(vector_scalar(op, return_bool, vs, s, true)),
        (Value::Vector(ls), Value::Vector(rs)) => Value::Vector(
            ls.into_iter()
                .zip(rs)
                .map(|(lv, rv)| vector_binary(op, return_bool, m, lv, rv))
                .collect(),
        ),
    }
}

/// A vector and a scalar at every step; `scalar_left` when the scalar is the
/// left operand. Comparisons without `bool` keep the vector's samples that pass.
fn vector_scalar(
    op: BinOp,
    return_bool: bool,
    vs: Vec<Vec<(Labels, f64)>>,
    s: Vec<f64>,
    scalar_left: bool,
) -> Vec<Vec<(Labels, f64)>> {
    let filter = op.is_comparison() && !return_bool;
    vs.into_iter()
        .zip(s)
        .map(|(vec, s)| {
            vec.into_iter()
                .filter_map(|(l, v)| {
                    let out = if scalar_left {
                        arith(op, s, v)?
                    } else {
                        arith(op, v, s)?
                    };
                    if filter {
                        (out == 1.0).then_some((l, v))
                    } else {
                        Some((l, out))
                    }
                })
                .collect()
        })
        .collect()
}

fn vector_binary(
    op: BinOp,
    return_bool: bool,
    m: &VectorMatching,
    lv: Vec<(Labels, f64)>,
    rv: Vec<(Labels, f64)>,
) -> Vec<(Labels, f64)> {
    match op {
        BinOp::And => {
            let rs: std::collections::HashSet<Labels> = rv.iter().map(|(l, _)| signature(l, m)).collect();
            lv.into_iter().filter(|(l, _)| rs.contains(&signature(l, m))).collect()
        }
        BinOp::Unless => {
            let rs: std::collections::HashSet<Labels> = rv.iter().map(|(l, _)| signature(l, m)).collect();
            lv.into_iter().filter(|(l, _)| !rs.contains(&signature(l, m))).collect()
        }
        BinOp::Or => {
            let ls: std::collections::HashSet<Labels> = lv.iter().map(|(l, _)| signature(l, m)).collect();
            let mut out = lv;
            out.extend(rv.into_iter().filter(|(l, _)| !ls.contains(&signature(l, m))));
            out
        }
        _ => {
            // The "one" side is indexed by signature; for group_right the sides swap.
            let right_is_one = m.group_left != Some(false);
            let (many, one) = if right_is_one { (lv, rv) } else { (rv, lv) };
            let index: HashMap<Labels, (Labels, f64)> =
                one.into_iter().map(|(l, v)| (signature(&l, m), (l, v))).collect();
            let mut out = Vec::new();
            for (l, v) in many {
                let Some((ol, ov)) = index.get(&signature(&l, m)) else {
                    continue;
                };
                let (a, b) = if right_is_one { (v, *ov) } else { (*ov, v) };
                let Some(res) = arith(op, a, b) else { continue };
                let labels = if m.group_left.is_some() {
                    let mut bld = l.to_builder();
                    for name in &m.include {
                        match ol.get(name) {
                            Some(x) => bld.set(name, x),
                            None => bld.del(name),
                        };
                    }
                    bld.build()
                } else {
                    signature(&l, m)
                };
                if op.is_comparison() && !return_bool {
                    if res == 1.0 {
                        out.push((labels, if right_is_one { v } else { *ov }));
                    }
                } else {
                    out.push((labels, res));
                }
            }
            out
        }
    }
}
