//! Aggregation operators (`sum`, `avg`, `topk`, `count_values`, ...) with Prometheus
//! 2.42's arithmetic, including its NaN and infinity handling.

use std::collections::HashMap;

use promql_parser::parser::{Expr, LabelModifier};
use sextant_model::{Labels, is_valid_label_name};

use crate::Error;
use crate::eval::{Evaluator, Result, Row, Val};
use crate::functions::quantile;
use crate::value::format_value;

pub(crate) fn aggregate(
    ev: &Evaluator<'_>,
    op: &str,
    param: Option<&Expr>,
    modifier: Option<&LabelModifier>,
    rows: Vec<Row>,
) -> Result<Val> {
    // Each row's group, computed once; groups numbered in order of first appearance,
    // which is the order Prometheus returns them in.
    let mut group_of: Vec<usize> = Vec::with_capacity(rows.len());
    let mut group_labels: Vec<Labels> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for r in &rows {
        let g = grouping_labels(&r.labels, modifier);
        let next = group_labels.len();
        let id = *index.entry(g.clone()).or_insert_with(|| {
            group_labels.push(g);
            next
        });
        group_of.push(id);
    }
    let ngroups = group_labels.len();
    let n = ev.n;
    let out = match op {
        "topk" | "bottomk" => {
            let k = ev.eval_scalar(param.ok_or_else(|| missing(op))?)?;
            return Ok(Val::Vector(top_bottom(op == "topk", &k, rows, &group_of, ngroups, n)));
        }
        "count_values" => {
            let label = ev.eval_string(param.ok_or_else(|| missing(op))?)?;
            if !is_valid_label_name(&label) {
                return Err(Error::Execution(format!("invalid label name {label:?}")));
            }
            return Ok(Val::Vector(count_values(&label, &rows, modifier, n)));
        }
        "quantile" => {
            let q = ev.eval_scalar(param.ok_or_else(|| missing(op))?)?;
            let mut out: Vec<Row> = group_labels.into_iter().map(|l| empty_row(l, n)).collect();
            let mut values: Vec<Vec<f64>> = vec![Vec::new(); ngroups];
            for step in 0..n {
                values.iter_mut().for_each(Vec::clear);
                for (i, r) in rows.iter().enumerate() {
                    if let Some(v) = r.vals[step] {
                        values[group_of[i]].push(v);
                    }
                }
                for (g, vs) in values.iter_mut().enumerate() {
                    if !vs.is_empty() {
                        out[g].vals[step] = Some(quantile(q[step], vs));
                    }
                }
            }
            out
        }
        _ => {
            let kind = Simple::parse(op)?;
            let mut out: Vec<Row> = group_labels.into_iter().map(|l| empty_row(l, n)).collect();
            let mut acc: Vec<Option<Acc>> = vec![None; ngroups];
            for step in 0..n {
                acc.iter_mut().for_each(|a| *a = None);
                for (i, r) in rows.iter().enumerate() {
                    if let Some(v) = r.vals[step] {
                        let slot = &mut acc[group_of[i]];
                        match slot {
                            None => *slot = Some(Acc::new(kind, v)),
                            Some(a) => a.add(kind, v),
                        }
                    }
                }
                for (g, a) in acc.iter().enumerate() {
                    if let Some(a) = a {
                        out[g].vals[step] = Some(a.finish(kind));
                    }
                }
            }
            out
        }
    };
    Ok(Val::Vector(
        out.into_iter().filter(|r| r.vals.iter().any(Option::is_some)).collect(),
    ))
}

fn missing(op: &str) -> Error {
    Error::BadData(format!("{op} requires a parameter"))
}

fn empty_row(labels: Labels, n: usize) -> Row {
    Row {
        labels,
        vals: vec![None; n],
    }
}

/// The labels an aggregation groups by: the `by` labels, or all but the `without`
/// labels and the metric name.
fn grouping_labels(l: &Labels, modifier: Option<&LabelModifier>) -> Labels {
    match modifier {
        None => Labels::empty(),
        Some(LabelModifier::Include(by)) => l.filter(|x| by.labels.contains(&x.name)),
        Some(LabelModifier::Exclude(without)) => {
            l.filter(|x| x.name != sextant_model::METRIC_NAME && !without.labels.contains(&x.name))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Simple {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Group,
    Stddev,
    Stdvar,
}

impl Simple {
    fn parse(op: &str) -> Result<Self> {
        Ok(match op {
            "sum" => Self::Sum,
            "avg" => Self::Avg,
            "min" => Self::Min,
            "max" => Self::Max,
            "count" => Self::Count,
            "group" => Self::Group,
            "stddev" => Self::Stddev,
            "stdvar" => Self::Stdvar,
            other => {
                return Err(Error::BadData(format!(
                    "aggregation {other} is not PromQL of Prometheus 2.42"
                )));
            }
        })
    }
}

/// One group's running state at one step.
#[derive(Debug, Clone, Copy)]
struct Acc {
    value: f64,
    mean: f64,
    count: f64,
}

impl Acc {
    fn new(kind: Simple, v: f64) -> Self {
        Self {
            // Welford's sum of squared deviations starts at 0.
            value: if matches!(kind, Simple::Stddev | Simple::Stdvar) {
                0.0
            } else {
                v
            },
            mean: v,
            count: 1.0,
        }
    }

    fn add(&mut self, kind: Simple, v: f64) {
        self.count += 1.0;
        match kind {
            Simple::Sum => self.value += v,
            Simple::Avg => {
                // Prometheus' overflow-safe running mean: an infinite mean stays put
                // unless an opposite infinity or a NaN arrives.
                if self.mean.is_infinite() {
                    if v.is_infinite() && (self.mean > 0.0) == (v > 0.0) {
                        return;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        return;
                    }
                }
                self.mean += v / self.count - self.mean / self.count;
            }
            Simple::Max => {
                if self.value < v || self.value.is_nan() {
                    self.value = v;
                }
            }
            Simple::Min => {
                if self.value > v || self.value.is_nan() {
                    self.value = v;
                }
            }
            Simple::Stddev | Simple::Stdvar => {
                let delta = v - self.mean;
                self.mean += delta / self.count;
                self.value += delta * (v - self.mean);
            }
            Simple::Count | Simple::Group => {}
        }
    }

    fn finish(&self, kind: Simple) -> f64 {
        match kind {
            Simple::Sum | Simple::Min | Simple::Max => self.value,
            Simple::Avg => self.mean,
            Simple::Count => self.count,
            Simple::Group => 1.0,
            Simple::Stdvar => self.value / self.count,
            Simple::Stddev => (self.value / self.count).sqrt(),
        }
    }
}

fn top_bottom(top: bool, k: &[f64], rows: Vec<Row>, group_of: &[usize], ngroups: usize, n: usize) -> Vec<Row> {
    let mut keep: Vec<Vec<Option<f64>>> = vec![vec![None; n]; rows.len()];
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); ngroups];
    // For an instant query, the output order: groups in order, each sorted.
    let mut order: Vec<usize> = Vec::new();
    for step in 0..n {
        let kk = k[step] as i64;
        if kk < 1 {
            continue;
        }
        members.iter_mut().for_each(Vec::clear);
        for (i, r) in rows.iter().enumerate() {
            if r.vals[step].is_some() {
                members[group_of[i]].push(i);
            }
        }
        let k = usize::try_from(kk).unwrap_or(usize::MAX);
        for m in members.iter() {
            let mut heap = SelectionHeap::new(top, |i: usize| rows[i].vals[step].unwrap_or(f64::NAN));
            for &i in m {
                heap.offer(i, k);
            }
            for i in heap.into_sorted() {
                keep[i][step] = rows[i].vals[step];
                if n == 1 {
                    order.push(i);
                }
            }
        }
    }
    let mut rows: Vec<Option<Row>> = rows
        .into_iter()
        .zip(keep)
        .map(|(r, vals)| {
            vals.iter()
                .any(Option::is_some)
                .then_some(Row { labels: r.labels, vals })
        })
        .collect();
    if n == 1 {
        order.into_iter().filter_map(|i| rows[i].take()).collect()
    } else {
        rows.into_iter().flatten().collect()
    }
}

/// The bounded heap `topk`/`bottomk` select with, operated exactly as Prometheus
/// operates Go's `container/heap`, so ties between equal values resolve the same way.
struct SelectionHeap<F> {
    top: bool,
    value: F,
    items: Vec<usize>,
}

impl<F: Fn(usize) -> f64> SelectionHeap<F> {
    fn new(top: bool, value: F) -> Self {
        Self {
            top,
            value,
            items: Vec::new(),
        }
    }

    /// The heap order: the root is the element to evict next (the smallest for
    /// `topk`, the largest for `bottomk`); NaN counts as the most evictable.
    fn less(&self, i: usize, j: usize) -> bool {
        let (a, b) = ((self.value)(self.items[i]), (self.value)(self.items[j]));
        if a.is_nan() {
            return true;
        }
        if self.top { a < b } else { a > b }
    }

    /// Prometheus 2.42's step: an element enters if the heap is not full, beats the
    /// root, or the root is NaN; a full heap pops its root first.
    fn offer(&mut self, item: usize, k: usize) {
        if k == 0 {
            return;
        }
        if self.items.len() >= k {
            let (root, v) = ((self.value)(self.items[0]), (self.value)(item));
            let beats = if self.top { root < v } else { root > v };
            if !(beats || root.is_nan()) {
                return;
            }
            self.pop();
        }
        self.items.push(item);
        self.up(self.items.len() - 1);
    }

    fn pop(&mut self) {
        let n = self.items.len() - 1;
        self.items.swap(0, n);
        self.down(0, n);
        self.items.pop();
    }

    fn up(&mut self, mut j: usize) {
        while j > 0 {
            let i = (j - 1) / 2;
            if !self.less(j, i) {
                break;
            }
            self.items.swap(i, j);
            j = i;
        }
    }

    fn down(&mut self, i0: usize, n: usize) {
        let mut i = i0;
        loop {
            let j1 = 2 * i + 1;
            if j1 >= n {
                break;
            }
            let mut j = j1;
            if j1 + 1 < n && self.less(j1 + 1, j1) {
                j = j1 + 1;
            }
            if !self.less(j, i) {
                break;
            }
            self.items.swap(i, j);
            i = j;
        }
    }

    /// The selection, best first: Prometheus reverse-sorts the heap, which for the
    /// small sizes `topk` is used with is Go's insertion sort.
    fn into_sorted(mut self) -> Vec<usize> {
        for i in 1..self.items.len() {
            let mut j = i;
            // Reverse order: element j goes before j-1 when j-1 is "less" than j.
            while j > 0 && self.less(j - 1, j) {
                self.items.swap(j, j - 1);
                j -= 1;
            }
        }
        self.items
    }
}

/// `count_values`: the value becomes a label of each series first (replacing one of
/// the same name), then series group as usual with that label kept.
fn count_values(label: &str, rows: &[Row], modifier: Option<&LabelModifier>, n: usize) -> Vec<Row> {
    let modifier = match modifier {
        Some(LabelModifier::Include(by)) => {
            let mut by = by.clone();
            by.labels.push(label.to_string());
            Some(LabelModifier::Include(by))
        }
        None => Some(LabelModifier::Include(promql_parser::label::Labels {
            labels: vec![label.to_string()],
        })),
        other => other.cloned(),
    };
    let mut out: Vec<Row> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for step in 0..n {
        for r in rows {
            let Some(v) = r.vals[step] else { continue };
            let mut b = r.labels.to_builder();
            // Go's `FormatFloat(v, 'f', -1, 64)`, as Prometheus writes the value label.
            b.set(label, &format_value(v));
            let g = grouping_labels(&b.build(), modifier.as_ref());
            let o = *index.entry(g.clone()).or_insert_with(|| {
                out.push(Row {
                    labels: g,
                    vals: vec![None; n],
                });
                out.len() - 1
            });
            let slot = &mut out[o].vals[step];
            *slot = Some(slot.unwrap_or(0.0) + 1.0);
        }
    }
    out
}
