//! Phase two of a query: evaluate the expression tree over all steps at once.
//!
//! Every instant-vector node is a list of [`Row`]s: a label set and one optional value
//! per step. Labels are computed once per row, not once per step, and the lists keep
//! Prometheus' output order for instant queries (one step), which `sort` and `topk`
//! define.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Instant;

use promql_parser::parser::{
    AggregateExpr, BinaryExpr, Expr, LabelModifier, MatrixSelector, SubqueryExpr, VectorMatchCardinality,
    VectorSelector,
};
use sextant_model::{Labels, Sample, is_stale_nan};

use crate::prefetch::{Fetched, at_ms, ms, offset_ms, selector_key, selector_matchers};
use crate::value::{InstantSample, QueryValue, RangeSeries};
use crate::{EngineOptions, Error, QueryRange, functions};

pub(crate) type Result<T> = std::result::Result<T, Error>;

/// One series of an instant-vector node: its labels and its value at each step.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub labels: Labels,
    pub vals: Vec<Option<f64>>,
}

/// The value of a node over all steps.
pub(crate) enum Val {
    Scalar(Vec<f64>),
    Str(String),
    Vector(Vec<Row>),
    /// A range vector at a single time: only an instant query's top level has one.
    Matrix(Vec<RangeSeries>),
}

/// A range-vector function argument: whole series plus how to cut each step's window
/// (`[end - range, end]`, both ends inclusive as in Prometheus 2.42, where
/// `end = (at or step time) - offset`).
pub(crate) struct RangeArg<'a> {
    /// Samples are borrowed from storage's answer unless staleness markers had to be
    /// removed or a subquery computed them.
    pub series: Vec<(Labels, Cow<'a, [Sample]>)>,
    pub range_ms: i64,
    pub offset_ms: i64,
    pub at_ms: Option<i64>,
}

/// Evaluation context of one level: the top-level query, or a subquery's inner range.
pub(crate) struct Evaluator<'a> {
    pub start: i64,
    pub step: i64,
    pub n: usize,
    pub query: QueryRange,
    pub opts: &'a EngineOptions,
    data: &'a Fetched,
    deadline: Instant,
}

/// Evaluates `expr` over `range`; an `instant` query answers a scalar, string or
/// vector at its one time, a range query always a matrix.
pub(crate) fn evaluate(
    expr: &Expr,
    range: QueryRange,
    instant: bool,
    opts: &EngineOptions,
    data: &Fetched,
    deadline: Instant,
) -> Result<QueryValue> {
    let n = ((range.end_ms - range.start_ms) / range.step_ms) as usize + 1;
    let ev = Evaluator {
        start: range.start_ms,
        step: range.step_ms,
        n,
        query: range,
        opts,
        data,
        deadline,
    };
    Ok(match ev.eval(expr)? {
        Val::Scalar(v) if instant => QueryValue::Scalar {
            t_ms: range.start_ms,
            v: v[0],
        },
        Val::Scalar(v) => QueryValue::Matrix(vec![RangeSeries {
            labels: Labels::empty(),
            samples: v.iter().enumerate().map(|(i, v)| Sample::new(ev.ts(i), *v)).collect(),
        }]),
        Val::Str(s) => QueryValue::String {
            t_ms: range.start_ms,
            s,
        },
        Val::Vector(rows) if instant => QueryValue::Vector(
            rows.into_iter()
                .filter_map(|r| {
                    r.vals[0].map(|v| InstantSample {
                        labels: r.labels,
                        t_ms: range.start_ms,
                        v,
                    })
                })
                .collect(),
        ),
        Val::Vector(rows) => {
            let mut out: Vec<RangeSeries> = rows
                .into_iter()
                .map(|r| RangeSeries {
                    samples: r
                        .vals
                        .iter()
                        .enumerate()
                        .filter_map(|(i, v)| v.map(|v| Sample::new(ev.ts(i), v)))
                        .collect(),
                    labels: r.labels,
                })
                .filter(|s| !s.samples.is_empty())
                .collect();
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            QueryValue::Matrix(out)
        }
        Val::Matrix(m) => QueryValue::Matrix(m),
    })
}

impl<'a> Evaluator<'a> {
    /// The evaluation time of step `i`.
    pub fn ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    /// Refuses a node of `rows` series over all steps when that exceeds the sample
    /// limit: every step of every series takes a slot in memory.
    pub fn check_points(&self, rows: usize) -> Result<()> {
        if (rows as u128) * (self.n as u128) > self.opts.max_samples as u128 {
            return Err(Error::TooManySamples("query execution"));
        }
        Ok(())
    }

    pub fn check_deadline(&self) -> Result<()> {
        if Instant::now() > self.deadline {
            return Err(Error::Timeout("expression evaluation"));
        }
        Ok(())
    }

    pub fn eval(&self, e: &Expr) -> Result<Val> {
        self.check_deadline()?;
        match e {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; self.n])),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::Unary(u) => match self.eval(&u.expr)? {
                Val::Scalar(v) => Ok(Val::Scalar(v.into_iter().map(|x| -x).collect())),
                Val::Vector(rows) => {
                    let rows = rows
                        .into_iter()
                        .map(|r| Row {
                            labels: r.labels.without_metric_name(),
                            vals: r.vals.into_iter().map(|v| v.map(|x| -x)).collect(),
                        })
                        .collect();
                    Ok(Val::Vector(merge_same_labels(rows)?))
                }
                _ => Err(Error::Execution(
                    "unary minus applies to scalars and instant vectors".into(),
                )),
            },
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.vector_selector(vs, false)?)),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                let arg = self.range_arg(e)?;
                Ok(Val::Matrix(self.matrix_at_start(arg)))
            }
            Expr::Call(c) => functions::call(self, c),
            Expr::Aggregate(a) => self.aggregate(a),
            Expr::Binary(b) => self.binary(b),
            Expr::Extension(_) => Err(Error::BadData("extension expressions are not supported".into())),
        }
    }

    /// Evaluates an argument that must be a scalar (per step).
    pub fn eval_scalar(&self, e: &Expr) -> Result<Vec<f64>> {
        match self.eval(e)? {
            Val::Scalar(v) => Ok(v),
            _ => Err(Error::Execution(format!("expected a scalar, got {e}"))),
        }
    }

    /// Evaluates an argument that must be an instant vector.
    pub fn eval_vector(&self, e: &Expr) -> Result<Vec<Row>> {
        match self.eval(e)? {
            Val::Vector(v) => Ok(v),
            _ => Err(Error::Execution(format!("expected an instant vector, got {e}"))),
        }
    }

    /// Evaluates an argument that must be a string.
    pub fn eval_string(&self, e: &Expr) -> Result<String> {
        match self.eval(e)? {
            Val::Str(s) => Ok(s),
            _ => Err(Error::Execution(format!("expected a string, got {e}"))),
        }
    }

    fn series_of(&self, vs: &VectorSelector) -> Result<&'a [sextant_model::SeriesData]> {
        match self.data.get(&selector_key(vs)) {
            Some(s) => Ok(s),
            // Not fetched: its matchers were invalid; report why.
            None => selector_matchers(vs).map(|_| &[][..]),
        }
    }

    /// An instant selector: per step, the latest sample within the lookback delta,
    /// unless it is a staleness marker. With `with_timestamps` the value is the
    /// sample's own timestamp in seconds (for `timestamp()`).
    pub fn vector_selector(&self, vs: &VectorSelector, with_timestamps: bool) -> Result<Vec<Row>> {
        let series = self.series_of(vs)?;
        let off = offset_ms(vs.offset.as_ref());
        let at = at_ms(vs.at.as_ref(), self.query);
        let lookback = ms(self.opts.lookback_delta);
        self.check_points(series.len())?;
        let pick = |s: &Sample| {
            if with_timestamps { s.t_ms as f64 / 1000.0 } else { s.v }
        };
        let mut rows = Vec::with_capacity(series.len());
        for s in series {
            let samples = &s.samples;
            let mut vals = vec![None; self.n];
            match at {
                Some(a) => {
                    let t = a.saturating_sub(off);
                    let j = samples.partition_point(|x| x.t_ms <= t);
                    if j > 0 && samples[j - 1].t_ms >= t - lookback && !is_stale_nan(samples[j - 1].v) {
                        vals.fill(Some(pick(&samples[j - 1])));
                    }
                }
                None => {
                    let mut j = 0;
                    for (i, slot) in vals.iter_mut().enumerate() {
                        let t = self.ts(i).saturating_sub(off);
                        while j < samples.len() && samples[j].t_ms <= t {
                            j += 1;
                        }
                        if j > 0 {
                            let x = &samples[j - 1];
                            if x.t_ms >= t - lookback && !is_stale_nan(x.v) {
                                *slot = Some(pick(x));
                            }
                        }
                    }
                }
            }
            if vals.iter().any(Option::is_some) {
                rows.push(Row {
                    labels: (*s.labels).clone(),
                    vals,
                });
            }
        }
        Ok(rows)
    }

    /// A range selector or subquery as a function argument.
    pub fn range_arg(&self, e: &Expr) -> Result<RangeArg<'a>> {
        match e {
            Expr::Paren(p) => self.range_arg(&p.expr),
            Expr::MatrixSelector(m) => {
                let series = self.series_of(&m.vs)?;
                Ok(RangeArg {
                    series: series
                        .iter()
                        .map(|s| {
                            let samples = if s.samples.iter().any(|x| is_stale_nan(x.v)) {
                                Cow::Owned(s.samples.iter().filter(|x| !is_stale_nan(x.v)).copied().collect())
                            } else {
                                Cow::Borrowed(&s.samples[..])
                            };
                            ((*s.labels).clone(), samples)
                        })
                        .collect(),
                    range_ms: ms(m.range),
                    offset_ms: offset_ms(m.vs.offset.as_ref()),
                    at_ms: at_ms(m.vs.at.as_ref(), self.query),
                })
            }
            Expr::Subquery(sq) => self.subquery(sq),
            other => Err(Error::Execution(format!("expected a range vector, got {other}"))),
        }
    }

    /// Evaluates a subquery's inner expression at its own steps: multiples of its
    /// step, from the first after `start - offset - range` to `end - offset`.
    fn subquery(&self, sq: &SubqueryExpr) -> Result<RangeArg<'a>> {
        let off = offset_ms(sq.offset.as_ref());
        let at = at_ms(sq.at.as_ref(), self.query);
        let range = ms(sq.range);
        let step = sq.step.map(ms).unwrap_or_else(|| ms(self.opts.default_subquery_step));
        if step <= 0 {
            return Err(Error::BadData("subquery step must be positive".into()));
        }
        let (s, e) = match at {
            Some(a) => (a, a),
            None => (self.start, self.ts(self.n - 1)),
        };
        let target = s.saturating_sub(off).saturating_sub(range);
        let rem = target.rem_euclid(step);
        let inner_start = if rem == 0 { target } else { target - rem + step };
        let inner_end = e.saturating_sub(off);
        let mut series = Vec::new();
        if inner_start <= inner_end {
            let steps = (inner_end - inner_start) / step + 1;
            if steps as u128 > self.opts.max_samples as u128 {
                return Err(Error::TooManySamples("subquery evaluation"));
            }
            let inner = Evaluator {
                start: inner_start,
                step,
                n: steps as usize,
                query: self.query,
                opts: self.opts,
                data: self.data,
                deadline: self.deadline,
            };
            let rows = inner.eval_vector(&sq.expr)?;
            for r in rows {
                let samples: Vec<Sample> = r
                    .vals
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.map(|v| Sample::new(inner.ts(i), v)))
                    .collect();
                if !samples.is_empty() {
                    series.push((r.labels, Cow::Owned(samples)));
                }
            }
        }
        Ok(RangeArg {
            series,
            range_ms: range,
            offset_ms: off,
            at_ms: at,
        })
    }

    /// A range vector's samples at the first step (instant queries only).
    fn matrix_at_start(&self, arg: RangeArg<'_>) -> Vec<RangeSeries> {
        let end = arg.at_ms.unwrap_or(self.start).saturating_sub(arg.offset_ms);
        let start = end.saturating_sub(arg.range_ms);
        arg.series
            .into_iter()
            .filter_map(|(labels, samples)| {
                let lo = samples.partition_point(|s| s.t_ms < start);
                let hi = samples.partition_point(|s| s.t_ms <= end);
                (lo < hi).then(|| RangeSeries {
                    labels,
                    samples: samples[lo..hi].to_vec(),
                })
            })
            .collect()
    }

    /// Applies `f(window, window_start, window_end, step)` to each series' window at
    /// every step. With `@` the window is the same at every step.
    pub fn map_windows(
        &self,
        arg: &RangeArg<'_>,
        mut f: impl FnMut(&[Sample], i64, i64, usize) -> Option<f64>,
    ) -> Result<Vec<(Labels, Vec<Option<f64>>)>> {
        self.check_points(arg.series.len())?;
        let mut out = Vec::with_capacity(arg.series.len());
        for (idx, (labels, samples)) in arg.series.iter().enumerate() {
            if idx % 256 == 0 {
                self.check_deadline()?;
            }
            let mut vals = vec![None; self.n];
            let (mut lo, mut hi) = (0, 0);
            for (i, slot) in vals.iter_mut().enumerate() {
                let end = arg.at_ms.unwrap_or_else(|| self.ts(i)).saturating_sub(arg.offset_ms);
                let start = end.saturating_sub(arg.range_ms);
                while hi < samples.len() && samples[hi].t_ms <= end {
                    hi += 1;
                }
                while lo < hi && samples[lo].t_ms < start {
                    lo += 1;
                }
                *slot = f(&samples[lo..hi], start, end, i);
            }
            out.push((labels.clone(), vals));
        }
        Ok(out)
    }

    /// Exact counter windows (see `EngineOptions::exact_counter_windows`) of a range
    /// selector: per step, the increase from the last sample at or before the
    /// window's start (if within the lookback delta) through the samples in the
    /// window, which is open at its start. A window without samples counts zero while
    /// the series is present as an instant selector sees it (its latest sample within
    /// the lookback delta and not a staleness marker), so a scrape interval longer
    /// than the window does not look like missing data; otherwise it has no value.
    pub fn exact_counter_windows(
        &self,
        m: &MatrixSelector,
        mut f: impl FnMut(Option<Sample>, &[Sample]) -> Option<f64>,
    ) -> Result<Vec<(Labels, Vec<Option<f64>>)>> {
        let series = self.series_of(&m.vs)?;
        self.check_points(series.len())?;
        let lookback = ms(self.opts.lookback_delta);
        let range = ms(m.range);
        let offset = offset_ms(m.vs.offset.as_ref());
        let at = at_ms(m.vs.at.as_ref(), self.query);
        let mut out = Vec::with_capacity(series.len());
        let mut window: Vec<Sample> = Vec::new();
        for (idx, s) in series.iter().enumerate() {
            if idx % 256 == 0 {
                self.check_deadline()?;
            }
            let raw = &s.samples[..];
            let mut vals = vec![None; self.n];
            for (i, slot) in vals.iter_mut().enumerate() {
                let end = at.unwrap_or_else(|| self.ts(i)).saturating_sub(offset);
                let start = end.saturating_sub(range);
                let hi = raw.partition_point(|x| x.t_ms <= end);
                let lo = raw.partition_point(|x| x.t_ms <= start);
                window.clear();
                window.extend(raw[lo..hi].iter().filter(|x| !is_stale_nan(x.v)));
                *slot = if window.is_empty() {
                    raw[..hi]
                        .last()
                        .filter(|x| !is_stale_nan(x.v) && x.t_ms > end.saturating_sub(lookback))
                        .map(|_| 0.0)
                } else {
                    let base = raw[..lo]
                        .iter()
                        .rev()
                        .find(|x| !is_stale_nan(x.v))
                        .filter(|x| x.t_ms > start.saturating_sub(lookback))
                        .copied();
                    f(base, &window)
                };
            }
            out.push(((*s.labels).clone(), vals));
        }
        Ok(out)
    }

    // ---------------------------------------------------------------- aggregation

    fn aggregate(&self, a: &AggregateExpr) -> Result<Val> {
        let op = a.op.to_string();
        let rows = self.eval_vector(&a.expr)?;
        crate::aggregate::aggregate(self, &op, a.param.as_deref(), a.modifier.as_ref(), rows)
    }

    // ---------------------------------------------------------------- binary operators

    fn binary(&self, b: &BinaryExpr) -> Result<Val> {
        let op = BinOp::parse(&b.op.to_string())?;
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let lhs = self.eval(&b.lhs)?;
        let rhs = self.eval(&b.rhs)?;
        match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => Ok(Val::Scalar(
                l.iter()
                    .zip(&r)
                    .map(|(a, b)| {
                        let (v, keep) = op.apply(*a, *b);
                        if op.is_comparison() {
                            if keep { 1.0 } else { 0.0 }
                        } else {
                            v
                        }
                    })
                    .collect(),
            )),
            (Val::Vector(l), Val::Scalar(r)) => Ok(Val::Vector(self.vector_scalar(op, l, &r, false, return_bool)?)),
            (Val::Scalar(l), Val::Vector(r)) => Ok(Val::Vector(self.vector_scalar(op, r, &l, true, return_bool)?)),
            (Val::Vector(l), Val::Vector(r)) => {
                let card = b
                    .modifier
                    .as_ref()
                    .map(|m| m.card.clone())
                    .unwrap_or(VectorMatchCardinality::OneToOne);
                let matching = b.modifier.as_ref().and_then(|m| m.matching.clone());
                Ok(Val::Vector(self.vector_vector(
                    op,
                    l,
                    r,
                    card,
                    matching.as_ref(),
                    return_bool,
                )?))
            }
            _ => Err(Error::Execution(format!(
                "invalid operands for binary operator {}",
                b.op
            ))),
        }
    }

    fn vector_scalar(
        &self,
        op: BinOp,
        rows: Vec<Row>,
        scalar: &[f64],
        scalar_on_left: bool,
        return_bool: bool,
    ) -> Result<Vec<Row>> {
        let drop_name = op.drops_metric_name() || return_bool;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut vals = vec![None; self.n];
            for (i, v) in r.vals.iter().enumerate() {
                let Some(x) = *v else { continue };
                let (l, rv) = if scalar_on_left { (scalar[i], x) } else { (x, scalar[i]) };
                let (mut value, keep) = op.apply(l, rv);
                if op.is_comparison() && scalar_on_left {
                    value = rv;
                }
                if return_bool {
                    vals[i] = Some(if keep { 1.0 } else { 0.0 });
                } else if keep {
                    vals[i] = Some(value);
                }
            }
            if vals.iter().any(Option::is_some) {
                out.push(Row {
                    labels: if drop_name {
                        r.labels.without_metric_name()
                    } else {
                        r.labels
                    },
                    vals,
                });
            }
        }
        if drop_name { merge_same_labels(out) } else { Ok(out) }
    }

    fn vector_vector(
        &self,
        op: BinOp,
        lhs: Vec<Row>,
        rhs: Vec<Row>,
        card: VectorMatchCardinality,
        matching: Option<&LabelModifier>,
        return_bool: bool,
    ) -> Result<Vec<Row>> {
        let sig = |l: &Labels| signature(l, matching);
        match op {
            BinOp::And | BinOp::Or | BinOp::Unless => return Ok(self.set_op(op, lhs, rhs, sig)),
            _ => {}
        }
        // The "many" side is iterated; the "one" side is looked up by signature.
        let (many, one, swapped) = match card {
            VectorMatchCardinality::OneToMany(_) => (rhs, lhs, true),
            _ => (lhs, rhs, false),
        };
        let include: Vec<String> = match &card {
            VectorMatchCardinality::ManyToOne(ls) | VectorMatchCardinality::OneToMany(ls) => ls.labels.clone(),
            _ => Vec::new(),
        };
        let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
        let many_sigs: Vec<Labels> = many.iter().map(|r| sig(&r.labels)).collect();
        let one_sigs: Vec<Labels> = one.iter().map(|r| sig(&r.labels)).collect();
        // Signatures are interned to small integers once, so per-step work is hashing-free.
        let mut sig_ids: HashMap<&Labels, usize> = HashMap::new();
        for s in one_sigs.iter().chain(&many_sigs) {
            let next = sig_ids.len();
            sig_ids.entry(s).or_insert(next);
        }
        let many_ids: Vec<usize> = many_sigs.iter().map(|s| sig_ids[s]).collect();
        let one_ids: Vec<usize> = one_sigs.iter().map(|s| sig_ids[s]).collect();

        let mut out: Vec<Row> = Vec::new();
        let mut out_index: HashMap<Labels, usize> = HashMap::new();
        let mut pair_out: HashMap<(usize, usize), usize> = HashMap::new();
        let mut one_at: Vec<Option<usize>> = vec![None; sig_ids.len()];
        let mut matched_one_to_one: Vec<bool> = vec![false; sig_ids.len()];
        let mut inserted: HashMap<usize, Vec<usize>> = HashMap::new();
        for step in 0..self.n {
            one_at.iter_mut().for_each(|x| *x = None);
            for (j, r) in one.iter().enumerate() {
                if r.vals[step].is_none() {
                    continue;
                }
                let id = one_ids[j];
                if let Some(prev) = one_at[id] {
                    let side = if swapped { "left" } else { "right" };
                    return Err(Error::Execution(format!(
                        "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                        one_sigs[j], one[prev].labels, r.labels
                    )));
                }
                one_at[id] = Some(j);
            }
            matched_one_to_one.iter_mut().for_each(|x| *x = false);
            inserted.clear();
            for (i, r) in many.iter().enumerate() {
                let Some(mv) = r.vals[step] else { continue };
                let id = many_ids[i];
                let Some(j) = one_at[id] else { continue };
                let ov = one[j].vals[step].expect("present");
                let (vl, vr) = if swapped { (ov, mv) } else { (mv, ov) };
                let (mut value, keep) = op.apply(vl, vr);
                if op.is_comparison() && swapped {
                    // Comparisons keep the left operand's value; after the swap that
                    // is the "one" side's.
                    value = vl;
                }
                if return_bool {
                    value = if keep { 1.0 } else { 0.0 };
                } else if !keep {
                    continue;
                }
                let o = match pair_out.get(&(i, j)) {
                    Some(o) => *o,
                    None => {
                        let labels = result_labels(
                            &r.labels,
                            &one[j].labels,
                            op,
                            return_bool,
                            one_to_one,
                            matching,
                            &include,
                        );
                        let o = *out_index.entry(labels.clone()).or_insert_with(|| {
                            out.push(Row {
                                labels,
                                vals: vec![None; self.n],
                            });
                            out.len() - 1
                        });
                        pair_out.insert((i, j), o);
                        o
                    }
                };
                if one_to_one {
                    if matched_one_to_one[id] {
                        return Err(Error::Execution(
                            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                        ));
                    }
                    matched_one_to_one[id] = true;
                } else {
                    let seen = inserted.entry(id).or_default();
                    if seen.contains(&o) {
                        return Err(Error::Execution(
                            "multiple matches for labels: grouping labels must ensure unique matches".into(),
                        ));
                    }
                    seen.push(o);
                }
                if out[o].vals[step].is_some() {
                    return Err(same_labelset());
                }
                out[o].vals[step] = Some(value);
            }
        }
        Ok(out)
    }

    fn set_op(&self, op: BinOp, lhs: Vec<Row>, rhs: Vec<Row>, sig: impl Fn(&Labels) -> Labels) -> Vec<Row> {
        // For `or` the left side is probed, otherwise the right: per signature, the
        // steps at which some series of that side has a value.
        let probe = if op == BinOp::Or { &lhs } else { &rhs };
        let mut present: HashMap<Labels, Vec<bool>> = HashMap::new();
        for r in probe {
            let p = present.entry(sig(&r.labels)).or_insert_with(|| vec![false; self.n]);
            for (slot, v) in p.iter_mut().zip(&r.vals) {
                *slot |= v.is_some();
            }
        }
        let filter = |mut r: Row, want: bool| -> Option<Row> {
            let p = present.get(&sig(&r.labels));
            for (step, v) in r.vals.iter_mut().enumerate() {
                if v.is_some() && p.is_some_and(|p| p[step]) != want {
                    *v = None;
                }
            }
            r.vals.iter().any(Option::is_some).then_some(r)
        };
        match op {
            BinOp::And => lhs.into_iter().filter_map(|r| filter(r, true)).collect(),
            BinOp::Unless => lhs.into_iter().filter_map(|r| filter(r, false)).collect(),
            _ => {
                let extra: Vec<Row> = rhs.into_iter().filter_map(|r| filter(r, false)).collect();
                let mut out = lhs;
                out.extend(extra);
                out
            }
        }
    }
}

/// The labels vector matching compares: the `on` labels, or all but the `ignoring`
/// labels and the metric name.
fn signature(l: &Labels, matching: Option<&LabelModifier>) -> Labels {
    match matching {
        Some(LabelModifier::Include(on)) => l.filter(|x| on.labels.contains(&x.name)),
        Some(LabelModifier::Exclude(ign)) => {
            l.filter(|x| x.name != sextant_model::METRIC_NAME && !ign.labels.contains(&x.name))
        }
        None => l.without_metric_name(),
    }
}

/// A vector-vector operation's output labels (Prometheus' `resultMetric`).
fn result_labels(
    many: &Labels,
    one: &Labels,
    op: BinOp,
    return_bool: bool,
    one_to_one: bool,
    matching: Option<&LabelModifier>,
    include: &[String],
) -> Labels {
    let mut b = many.to_builder();
    if op.drops_metric_name() || return_bool {
        b.del(sextant_model::METRIC_NAME);
    }
    if one_to_one {
        match matching {
            Some(LabelModifier::Include(on)) => {
                b.retain(|l| on.labels.contains(&l.name));
            }
            Some(LabelModifier::Exclude(ign)) => {
                for n in &ign.labels {
                    b.del(n);
                }
            }
            None => {}
        }
    }
    for n in include {
        match one.get(n) {
            Some(v) => b.set(n, v),
            None => b.del(n),
        };
    }
    b.build()
}

/// Merges rows that ended up with the same labels (after dropping the metric name);
/// two of them holding a value at the same step is Prometheus' "same labelset" error.
pub(crate) fn merge_same_labels(rows: Vec<Row>) -> Result<Vec<Row>> {
    let mut index: HashMap<Labels, usize> = HashMap::with_capacity(rows.len());
    let mut out: Vec<Row> = Vec::with_capacity(rows.len());
    for r in rows {
        match index.get(&r.labels) {
            Some(&o) => {
                let target = &mut out[o];
                for (t, v) in target.vals.iter_mut().zip(r.vals) {
                    if v.is_some() {
                        if t.is_some() {
                            return Err(same_labelset());
                        }
                        *t = v;
                    }
                }
            }
            None => {
                index.insert(r.labels.clone(), out.len());
                out.push(r);
            }
        }
    }
    Ok(out)
}

pub(crate) fn same_labelset() -> Error {
    Error::Execution("vector cannot contain metrics with the same labelset".into())
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl BinOp {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "+" => Self::Add,
            "-" => Self::Sub,
            "*" => Self::Mul,
            "/" => Self::Div,
            "%" => Self::Mod,
            "^" => Self::Pow,
            "atan2" => Self::Atan2,
            "==" => Self::Eq,
            "!=" => Self::Ne,
            ">" => Self::Gt,
            "<" => Self::Lt,
            ">=" => Self::Ge,
            "<=" => Self::Le,
            "and" => Self::And,
            "or" => Self::Or,
            "unless" => Self::Unless,
            other => return Err(Error::BadData(format!("unsupported binary operator {other:?}"))),
        })
    }

    fn is_comparison(self) -> bool {
        matches!(self, Self::Eq | Self::Ne | Self::Gt | Self::Lt | Self::Ge | Self::Le)
    }

    fn drops_metric_name(self) -> bool {
        // `atan2` keeps the name in Prometheus 2.42.
        matches!(
            self,
            Self::Add | Self::Sub | Self::Mul | Self::Div | Self::Mod | Self::Pow
        )
    }

    /// The result value and, for comparisons, whether the comparison holds
    /// (Prometheus' `vectorElemBinop`).
    fn apply(self, l: f64, r: f64) -> (f64, bool) {
        match self {
            Self::Add => (l + r, true),
            Self::Sub => (l - r, true),
            Self::Mul => (l * r, true),
            Self::Div => (l / r, true),
            Self::Mod => (l % r, true),
            Self::Pow => (l.powf(r), true),
            Self::Atan2 => (l.atan2(r), true),
            Self::Eq => (l, l == r),
            Self::Ne => (l, l != r),
            Self::Gt => (l, l > r),
            Self::Lt => (l, l < r),
            Self::Ge => (l, l >= r),
            Self::Le => (l, l <= r),
            Self::And | Self::Or | Self::Unless => (l, true),
        }
    }
}
