//! PromQL functions, with Prometheus 2.42's arithmetic (extrapolated rates, Kahan
//! sums where it uses them, Go's NaN rules for min/max).

use promql_parser::parser::{Call, Expr};
use regex::Regex;
use sextant_model::time::civil_from_days;
use sextant_model::{Labels, METRIC_NAME, Sample, is_valid_label_name};

use crate::Error;
use crate::eval::{Evaluator, RangeArg, Result, Row, Val, merge_same_labels, same_labelset};
use crate::prefetch::selector_matchers;

pub(crate) fn call(ev: &Evaluator<'_>, c: &Call) -> Result<Val> {
    let name = c.func.name;
    let args: Vec<&Expr> = c.args.args.iter().map(|a| a.as_ref()).collect();
    let n = ev.n;
    match name {
        "rate" | "increase" | "delta" | "irate" | "idelta" | "deriv" | "changes" | "resets" | "avg_over_time"
        | "min_over_time" | "max_over_time" | "sum_over_time" | "count_over_time" | "last_over_time"
        | "present_over_time" | "stddev_over_time" | "stdvar_over_time" | "quantile_over_time" | "predict_linear"
        | "holt_winters" => range_function(ev, name, &args),
        "absent_over_time" => {
            let arg = ev.range_arg(args[0])?;
            let windows = ev.map_windows(&arg, |w, _, _, _| (!w.is_empty()).then_some(1.0))?;
            let vals = (0..n)
                .map(|i| (!windows.iter().any(|(_, v)| v[i].is_some())).then_some(1.0))
                .collect();
            Ok(absent_row(args[0], vals))
        }
        "absent" => {
            let rows = ev.eval_vector(args[0])?;
            let vals = (0..n)
                .map(|i| (!rows.iter().any(|r| r.vals[i].is_some())).then_some(1.0))
                .collect();
            Ok(absent_row(args[0], vals))
        }
        "time" => Ok(Val::Scalar((0..n).map(|i| ev.ts(i) as f64 / 1000.0).collect())),
        "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; n])),
        "vector" => {
            let s = ev.eval_scalar(args[0])?;
            Ok(Val::Vector(vec![Row {
                labels: Labels::empty(),
                vals: s.into_iter().map(Some).collect(),
            }]))
        }
        "scalar" => {
            let rows = ev.eval_vector(args[0])?;
            Ok(Val::Scalar(
                (0..n)
                    .map(|i| {
                        let mut present = rows.iter().filter_map(|r| r.vals[i]);
                        match (present.next(), present.next()) {
                            (Some(v), None) => v,
                            _ => f64::NAN,
                        }
                    })
                    .collect(),
            ))
        }
        "timestamp" => {
            // A bare selector yields its samples' own timestamps; anything else was
            // evaluated at the step, so its timestamp is the step's.
            let rows = match unwrap_parens(args[0]) {
                Expr::VectorSelector(vs) => ev.vector_selector(vs, true)?,
                other => ev
                    .eval_vector(other)?
                    .into_iter()
                    .map(|r| Row {
                        vals: r
                            .vals
                            .iter()
                            .enumerate()
                            .map(|(i, v)| v.map(|_| ev.ts(i) as f64 / 1000.0))
                            .collect(),
                        labels: r.labels,
                    })
                    .collect(),
            };
            Ok(Val::Vector(drop_names(rows)?))
        }
        "sort" | "sort_desc" => {
            let mut rows = ev.eval_vector(args[0])?;
            if n == 1 {
                let desc = name == "sort_desc";
                rows.sort_by(|a, b| {
                    let (x, y) = (a.vals[0].unwrap_or(f64::NAN), b.vals[0].unwrap_or(f64::NAN));
                    match (x.is_nan(), y.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        _ if desc => y.total_cmp(&x),
                        _ => x.total_cmp(&y),
                    }
                });
            }
            Ok(Val::Vector(rows))
        }
        "label_replace" => label_replace(ev, &args),
        "label_join" => label_join(ev, &args),
        "histogram_quantile" => histogram_quantile(ev, &args),
        "clamp" | "clamp_min" | "clamp_max" | "round" => {
            let rows = ev.eval_vector(args[0])?;
            let p1 = match args.get(1) {
                Some(a) => ev.eval_scalar(a)?,
                None => vec![1.0; n],
            };
            let p2 = match args.get(2) {
                Some(a) => ev.eval_scalar(a)?,
                None => vec![0.0; n],
            };
            let f = |v: f64, i: usize| -> Option<f64> {
                match name {
                    "clamp" => {
                        (p2[i] >= p1[i] || p1[i].is_nan() || p2[i].is_nan()).then(|| go_max(p1[i], go_min(p2[i], v)))
                    }
                    "clamp_min" => Some(go_max(p1[i], v)),
                    "clamp_max" => Some(go_min(p1[i], v)),
                    _ => {
                        let inv = 1.0 / p1[i];
                        Some((v * inv + 0.5).floor() / inv)
                    }
                }
            };
            map_rows(rows, f)
        }
        "days_in_month" | "day_of_month" | "day_of_week" | "day_of_year" | "hour" | "minute" | "month" | "year" => {
            let rows = match args.first() {
                Some(a) => ev.eval_vector(a)?,
                None => vec![Row {
                    labels: Labels::empty(),
                    vals: (0..n).map(|i| Some((ev.ts(i) / 1000) as f64)).collect(),
                }],
            };
            map_rows(rows, |v, _| Some(date_part(name, v)))
        }
        _ => match math_function(name) {
            Some(f) => {
                let rows = ev.eval_vector(args[0])?;
                map_rows(rows, |v, _| Some(f(v)))
            }
            None => Err(Error::BadData(format!(
                "function {name}() is not PromQL of Prometheus 2.42 and is not supported"
            ))),
        },
    }
}

fn unwrap_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unwrap_parens(&p.expr),
        other => other,
    }
}

/// Applies `f(value, step)` to every value, dropping the metric name.
fn map_rows(rows: Vec<Row>, f: impl Fn(f64, usize) -> Option<f64>) -> Result<Val> {
    let rows = rows
        .into_iter()
        .map(|r| Row {
            labels: r.labels.without_metric_name(),
            vals: r
                .vals
                .iter()
                .enumerate()
                .map(|(i, v)| v.and_then(|v| f(v, i)))
                .collect(),
        })
        .filter(|r| r.vals.iter().any(Option::is_some))
        .collect();
    Ok(Val::Vector(merge_same_labels(rows)?))
}

fn drop_names(rows: Vec<Row>) -> Result<Vec<Row>> {
    merge_same_labels(
        rows.into_iter()
            .map(|r| Row {
                labels: r.labels.without_metric_name(),
                vals: r.vals,
            })
            .collect(),
    )
}

fn math_function(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => |v| v * 180.0 / std::f64::consts::PI,
        "rad" => |v| v * std::f64::consts::PI / 180.0,
        "sgn" => |v: f64| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        _ => return None,
    })
}

/// `absent`/`absent_over_time`'s output: labels from the argument's equality
/// matchers (a label matched twice is left out).
fn absent_row(arg: &Expr, vals: Vec<Option<f64>>) -> Val {
    let vs = match arg {
        Expr::VectorSelector(vs) => Some(vs),
        Expr::MatrixSelector(m) => Some(&m.vs),
        _ => None,
    };
    let mut b = Labels::empty().to_builder();
    if let Some(ms) = vs.and_then(|vs| selector_matchers(vs).ok()) {
        let mut ambiguous = Vec::new();
        for m in ms.iter().filter(|m| m.name != METRIC_NAME) {
            if m.op == sextant_model::MatchOp::Equal && b.get(&m.name).is_none() {
                b.set(&m.name, &m.value);
            } else {
                ambiguous.push(m.name.clone());
            }
        }
        for n in ambiguous {
            b.del(&n);
        }
    }
    if vals.iter().all(Option::is_none) {
        return Val::Vector(Vec::new());
    }
    Val::Vector(vec![Row {
        labels: b.build(),
        vals,
    }])
}

fn range_function(ev: &Evaluator<'_>, name: &str, args: &[&Expr]) -> Result<Val> {
    // Which argument is the range vector, and the scalar parameters (per step).
    let (matrix_at, params): (usize, Vec<Vec<f64>>) = match name {
        "quantile_over_time" => (1, vec![ev.eval_scalar(args[0])?]),
        "predict_linear" => (0, vec![ev.eval_scalar(args[1])?]),
        "holt_winters" => (0, vec![ev.eval_scalar(args[1])?, ev.eval_scalar(args[2])?]),
        _ => (0, Vec::new()),
    };
    let arg: RangeArg<'_> = ev.range_arg(args[matrix_at])?;
    let range_s = arg.range_ms as f64 / 1000.0;
    let mut failure: Option<Error> = None;
    let mut scratch: Vec<f64> = Vec::new();
    let exact = match args[0] {
        Expr::MatrixSelector(m) if ev.opts.exact_counter_windows && matches!(name, "rate" | "increase") => Some(m),
        _ => None,
    };
    let windows = if let Some(m) = exact {
        let per_second = name == "rate";
        ev.exact_counter_windows(m, |base, w| {
            let inc = exact_increase(base, w)?;
            Some(if per_second { inc / range_s } else { inc })
        })?
    } else {
        ev.map_windows(&arg, |w, start, end, i| {
            if w.is_empty() {
                return None;
            }
            match name {
                "rate" => extrapolated_rate(w, start, end, true, true, range_s),
                "increase" => extrapolated_rate(w, start, end, true, false, range_s),
                "delta" => extrapolated_rate(w, start, end, false, false, range_s),
                "irate" => instant_value(w, true),
                "idelta" => instant_value(w, false),
                "deriv" => (w.len() >= 2).then(|| linear_regression(w, w[0].t_ms).0),
                "predict_linear" => (w.len() >= 2).then(|| {
                    let (slope, intercept) = linear_regression(w, ev.ts(i));
                    intercept + slope * params[0][i]
                }),
                "holt_winters" => {
                    let (sf, tf) = (params[0][i], params[1][i]);
                    if sf <= 0.0 || sf >= 1.0 {
                        failure.get_or_insert(Error::Execution(format!(
                            "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
                        )));
                        return None;
                    }
                    if tf <= 0.0 || tf >= 1.0 {
                        failure.get_or_insert(Error::Execution(format!(
                            "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
                        )));
                        return None;
                    }
                    holt_winters(w, sf, tf)
                }
                "changes" => Some(
                    w.windows(2)
                        .filter(|p| p[0].v != p[1].v && !(p[0].v.is_nan() && p[1].v.is_nan()))
                        .count() as f64,
                ),
                "resets" => Some(w.windows(2).filter(|p| p[1].v < p[0].v).count() as f64),
                "avg_over_time" => {
                    // An incremental mean with compensated summation, which keeps
                    // large values from overflowing (as Prometheus 2.42 computes it).
                    let (mut mean, mut count, mut c) = (0.0f64, 0.0f64, 0.0f64);
                    for s in w {
                        count += 1.0;
                        if mean.is_infinite() {
                            if s.v.is_infinite() && (mean > 0.0) == (s.v > 0.0) {
                                continue;
                            }
                            if !s.v.is_infinite() && !s.v.is_nan() {
                                continue;
                            }
                        }
                        (mean, c) = kahan_inc(s.v / count - mean / count, mean, c);
                    }
                    Some(if mean.is_infinite() { mean } else { mean + c })
                }
                "sum_over_time" => {
                    let (mut sum, mut c) = (0.0, 0.0);
                    for s in w {
                        (sum, c) = kahan_inc(s.v, sum, c);
                    }
                    Some(if sum.is_infinite() { sum } else { sum + c })
                }
                "count_over_time" => Some(w.len() as f64),
                "min_over_time" => Some(
                    w.iter()
                        .fold(w[0].v, |m, s| if s.v < m || m.is_nan() { s.v } else { m }),
                ),
                "max_over_time" => Some(
                    w.iter()
                        .fold(w[0].v, |m, s| if s.v > m || m.is_nan() { s.v } else { m }),
                ),
                "last_over_time" => Some(w[w.len() - 1].v),
                "present_over_time" => Some(1.0),
                "stddev_over_time" => Some(variance(w).sqrt()),
                "stdvar_over_time" => Some(variance(w)),
                "quantile_over_time" => {
                    scratch.clear();
                    scratch.extend(w.iter().map(|s| s.v));
                    Some(quantile(params[0][i], &mut scratch))
                }
                _ => None,
            }
        })?
    };
    if let Some(e) = failure {
        return Err(e);
    }
    let keep_name = name == "last_over_time";
    let mut rows: Vec<Row> = windows
        .into_iter()
        .filter(|(_, v)| v.iter().any(Option::is_some))
        .map(|(labels, vals)| Row {
            labels: if keep_name {
                labels
            } else {
                labels.without_metric_name()
            },
            vals,
        })
        .collect();
    // Prometheus rejects equal label sets among a range function's output series.
    if !keep_name {
        let mut seen = std::collections::HashSet::with_capacity(rows.len());
        if !rows.iter().all(|r| seen.insert(r.labels.clone())) {
            return Err(same_labelset());
        }
    }
    rows.shrink_to_fit();
    Ok(Val::Vector(rows))
}

/// `rate`, `increase` and `delta`: the change over the window, extrapolated towards
/// the window's edges as Prometheus does.
/// The increase of a counter from `base` (or, for a series that starts in the window,
/// its first sample) to the window's last sample, counting resets; `None` without a
/// sample in the window.
fn exact_increase(base: Option<Sample>, w: &[Sample]) -> Option<f64> {
    let first = w.first()?;
    let mut prev = base.unwrap_or(*first).v;
    let mut inc = 0.0;
    for s in w {
        inc += if s.v < prev { s.v } else { s.v - prev };
        prev = s.v;
    }
    Some(inc)
}

fn extrapolated_rate(
    w: &[Sample],
    range_start: i64,
    range_end: i64,
    counter: bool,
    rate: bool,
    range_s: f64,
) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (first, last) = (w[0], w[w.len() - 1]);
    let mut result = last.v - first.v;
    if counter {
        let mut prev = 0.0;
        for s in w {
            if s.v < prev {
                result += prev;
            }
            prev = s.v;
        }
    }
    let mut to_start = (first.t_ms - range_start) as f64 / 1000.0;
    let to_end = (range_end - last.t_ms) as f64 / 1000.0;
    let sampled = (last.t_ms - first.t_ms) as f64 / 1000.0;
    let avg_gap = sampled / (w.len() - 1) as f64;
    // A counter cannot go below zero: extrapolate no further back than that. When
    // the first value is at least the increase, the quotient rounds to at least 1 and
    // the distance to zero to at least `sampled`, so it cannot be the nearer one if
    // `to_start` is within `sampled`: the usual case skips a division on the critical
    // path, with the same result to the bit.
    if counter && result > 0.0 && first.v >= 0.0 && !(first.v >= result && to_start <= sampled) {
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = avg_gap * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold { to_start } else { avg_gap / 2.0 };
    interval += if to_end < threshold { to_end } else { avg_gap / 2.0 };
    result *= interval / sampled;
    if rate {
        result /= range_s;
    }
    Some(result)
}

/// `irate` and `idelta`: from the last two samples.
fn instant_value(w: &[Sample], rate: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (prev, last) = (w[w.len() - 2], w[w.len() - 1]);
    let mut result = if rate && last.v < prev.v {
        last.v
    } else {
        last.v - prev.v
    };
    let interval = last.t_ms - prev.t_ms;
    if interval == 0 {
        return None;
    }
    if rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// Least-squares slope and intercept, with x in seconds relative to `intercept_ms`.
fn linear_regression(w: &[Sample], intercept_ms: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init = w[0].v;
    let mut const_y = true;
    for (i, s) in w.iter().enumerate() {
        if const_y && i > 0 && s.v != init {
            const_y = false;
        }
        n += 1.0;
        let x = (s.t_ms - intercept_ms) as f64 / 1000.0;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(s.v, sy, cy);
        (sxy, cxy) = kahan_inc(x * s.v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

fn holt_winters(w: &[Sample], sf: f64, tf: f64) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0, w[0].v);
    let mut b = w[1].v - w[0].v;
    for (i, s) in w.iter().enumerate().skip(1) {
        let x = sf * s.v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

fn variance(w: &[Sample]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for s in w {
        count += 1.0;
        let delta = s.v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (s.v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// Neumaier's compensated summation step.
fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// The φ-quantile of `values` (sorted in place), interpolating between neighbours.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // NaN sorts first, as Prometheus' sort does.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Go's `math.Max`: NaN wins, and +0 beats -0.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { b } else { a }
    } else if a > b {
        a
    } else {
        b
    }
}

/// Go's `math.Min`: NaN wins, and -0 beats +0.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { a } else { b }
    } else if a < b {
        a
    } else {
        b
    }
}

fn date_part(name: &str, v: f64) -> f64 {
    // Go converts the float to whole seconds towards zero.
    let secs = if v.is_nan() { i64::MIN / 1000 } else { v as i64 };
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    match name {
        "year" => y as f64,
        "month" => m as f64,
        "day_of_month" => d as f64,
        "day_of_week" => (days + 4).rem_euclid(7) as f64,
        "day_of_year" => {
            let before: i64 = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30]
                .iter()
                .take((m - 1) as usize)
                .sum();
            (before + d) as f64
        }
        "days_in_month" => match m {
            2 if leap => 29.0,
            2 => 28.0,
            4 | 6 | 9 | 11 => 30.0,
            _ => 31.0,
        },
        "hour" => (sod / 3600) as f64,
        "minute" => (sod % 3600 / 60) as f64,
        _ => f64::NAN,
    }
}

fn label_replace(ev: &Evaluator<'_>, args: &[&Expr]) -> Result<Val> {
    let rows = ev.eval_vector(args[0])?;
    let dst = ev.eval_string(args[1])?;
    let repl = ev.eval_string(args[2])?;
    let src = ev.eval_string(args[3])?;
    let pattern = ev.eval_string(args[4])?;
    let re = Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|_| Error::Execution(format!("invalid regular expression in label_replace(): {pattern}")))?;
    if !is_valid_label_name(&dst) {
        return Err(Error::Execution(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let rows = rows
        .into_iter()
        .map(|r| {
            let value = r.labels.get(&src).unwrap_or("");
            let labels = match re.captures(value) {
                None => r.labels,
                Some(caps) => {
                    let mut out = String::new();
                    caps.expand(&repl, &mut out);
                    let mut b = r.labels.to_builder();
                    b.set(&dst, &out);
                    b.build()
                }
            };
            Row { labels, vals: r.vals }
        })
        .collect();
    Ok(Val::Vector(merge_same_labels(rows)?))
}

fn label_join(ev: &Evaluator<'_>, args: &[&Expr]) -> Result<Val> {
    let rows = ev.eval_vector(args[0])?;
    let dst = ev.eval_string(args[1])?;
    let sep = ev.eval_string(args[2])?;
    let mut srcs = Vec::new();
    for a in &args[3..] {
        let s = ev.eval_string(a)?;
        if !is_valid_label_name(&s) {
            return Err(Error::Execution(format!(
                "invalid source label name in label_join(): {s}"
            )));
        }
        srcs.push(s);
    }
    if !is_valid_label_name(&dst) {
        return Err(Error::Execution(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    let rows = rows
        .into_iter()
        .map(|r| {
            let joined = srcs
                .iter()
                .map(|s| r.labels.get(s).unwrap_or(""))
                .collect::<Vec<_>>()
                .join(&sep);
            let mut b = r.labels.to_builder();
            b.set(&dst, &joined);
            Row {
                labels: b.build(),
                vals: r.vals,
            }
        })
        .collect();
    Ok(Val::Vector(merge_same_labels(rows)?))
}

fn histogram_quantile(ev: &Evaluator<'_>, args: &[&Expr]) -> Result<Val> {
    let q = ev.eval_scalar(args[0])?;
    let rows = ev.eval_vector(args[1])?;
    // Group buckets by their labels without `le`, once; the output drops the metric
    // name, so two histograms of different names but equal labels collide (an error).
    let mut groups: Vec<(Labels, Vec<(f64, usize)>)> = Vec::new();
    let mut index: std::collections::HashMap<Labels, usize> = std::collections::HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        let Some(le) = r.labels.get("le").and_then(parse_go_float) else {
            continue;
        };
        let key = r.labels.filter(|l| l.name != "le");
        let next = groups.len();
        let g = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            next
        });
        groups[g].1.push((le, i));
    }
    let mut out = Vec::with_capacity(groups.len());
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for (labels, members) in groups {
        let mut vals = vec![None; ev.n];
        for (step, slot) in vals.iter_mut().enumerate() {
            buckets.clear();
            buckets.extend(
                members
                    .iter()
                    .filter_map(|(le, i)| rows[*i].vals[step].map(|v| (*le, v))),
            );
            if !buckets.is_empty() {
                *slot = Some(bucket_quantile(q[step], &mut buckets));
            }
        }
        if vals.iter().any(Option::is_some) {
            out.push(Row {
                labels: labels.without_metric_name(),
                vals,
            });
        }
    }
    Ok(Val::Vector(merge_same_labels(out)?))
}

/// Go's `strconv.ParseFloat` for the spellings bucket bounds use.
fn parse_go_float(s: &str) -> Option<f64> {
    s.parse::<f64>().ok()
}

/// The quantile of classic histogram buckets `(upper bound, cumulative count)`.
fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets[buckets.len() - 1].0 != f64::INFINITY {
        return f64::NAN;
    }
    // Merge buckets with equal bounds (e.g. `le="1"` and `le="1.0"`).
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(le, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == le => last.1 += c,
            _ => merged.push((le, c)),
        }
    }
    // Counts must not decrease with the bound; scrape races can make them, so
    // Prometheus raises each to the running maximum.
    let mut max = f64::NEG_INFINITY;
    for b in merged.iter_mut() {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    if merged.len() < 2 {
        return f64::NAN;
    }
    let observations = merged[merged.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = merged[..merged.len() - 1].partition_point(|x| x.1 < rank);
    if b == merged.len() - 1 {
        return merged[merged.len() - 2].0;
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let (mut start, end, mut count) = (0.0, merged[b].0, merged[b].1);
    if b > 0 {
        start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_min_max_nan_and_zero() {
        assert!(go_max(f64::NAN, 1.0).is_nan());
        assert!(go_min(1.0, f64::NAN).is_nan());
        assert!(go_max(-0.0, 0.0).is_sign_positive());
        assert!(go_min(0.0, -0.0).is_sign_negative());
    }

    #[test]
    fn dates() {
        // 2023-02-28T13:45:00Z, a Tuesday.
        let t = 1_677_591_900.0;
        assert_eq!(date_part("year", t), 2023.0);
        assert_eq!(date_part("month", t), 2.0);
        assert_eq!(date_part("day_of_month", t), 28.0);
        assert_eq!(date_part("day_of_week", t), 2.0);
        assert_eq!(date_part("day_of_year", t), 59.0);
        assert_eq!(date_part("days_in_month", t), 28.0);
        assert_eq!(date_part("hour", t), 13.0);
        assert_eq!(date_part("minute", t), 45.0);
    }
}
