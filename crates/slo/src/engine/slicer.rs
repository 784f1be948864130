//! Computing an SLO's slices from stored samples: each slice's bad and total events,
//! with exact counter increases (see `EngineOptions::exact_counter_windows` in the
//! PromQL engine), so slices add up across counter resets and restarts.

use std::collections::BTreeMap;

use promql_parser::parser::Expr;
use sextant_model::Labels;
use sextant_promql::{Engine, QueryRange, QueryValue, Queryable};
use sextant_store::{MetricsStore, SliceRow};

use super::plan::{Plan, Slicer};

/// Per step of a range query, each series' value.
async fn steps<Q: Queryable>(
    engine: &Engine,
    store: &Q,
    expr: &Expr,
    range: QueryRange,
) -> Result<BTreeMap<Labels, Vec<Option<f64>>>, String> {
    let n = ((range.end_ms - range.start_ms) / range.step_ms + 1) as usize;
    let value = engine.range(store, expr, range).await.map_err(|e| e.to_string())?;
    let QueryValue::Matrix(series) = value else {
        return Err(format!("a {} where a vector was expected", value.type_name()));
    };
    let mut out = BTreeMap::new();
    for s in series {
        let mut vals = vec![None; n];
        for p in s.samples {
            let i = ((p.t_ms - range.start_ms) / range.step_ms) as usize;
            if i < n && p.v.is_finite() {
                vals[i] = Some(p.v);
            }
        }
        out.insert(s.labels, vals);
    }
    Ok(out)
}

/// Sum over series per step; `None` where no series had a value.
fn sum_steps(series: &BTreeMap<Labels, Vec<Option<f64>>>, n: usize) -> Vec<Option<f64>> {
    let mut out = vec![None; n];
    for vals in series.values() {
        for (o, v) in out.iter_mut().zip(vals) {
            if let Some(v) = v {
                *o = Some(o.unwrap_or(0.0) + v);
            }
        }
    }
    out
}

/// The slices ending in `(from_ms, to_ms]` (both multiples of the slice), the SLO's
/// own and, with dimensions, its groups' (keyed `<key>/<labels>`).
pub(crate) async fn compute<Q: Queryable>(
    plan: &Plan,
    engine: &Engine,
    store: &Q,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<SliceRow>, String> {
    let slice = plan.slice_ms;
    if to_ms <= from_ms {
        return Ok(Vec::new());
    }
    let range = QueryRange {
        start_ms: from_ms + slice,
        end_ms: to_ms,
        step_ms: slice,
    };
    let n = ((to_ms - from_ms) / slice) as usize;
    let t = |i: usize| from_ms + slice * (i as i64 + 1);
    let seconds = slice as f64 / 1000.0;
    let mut rows = Vec::new();
    match &plan.slicer {
        Slicer::Events { error, total } => {
            let bad = sum_steps(&steps(engine, store, error, range).await?, n);
            let all = sum_steps(&steps(engine, store, total, range).await?, n);
            for i in 0..n {
                // No total: no data. No error series with a total: no errors.
                let Some(total) = all[i] else { continue };
                let total = (total * seconds).max(0.0);
                let bad = (bad[i].unwrap_or(0.0) * seconds).clamp(0.0, total);
                rows.push(SliceRow {
                    sli: plan.key.clone(),
                    t_ms: t(i),
                    bad,
                    total,
                });
            }
            if let Some(g) = &plan.groups {
                let bad = steps(engine, store, &g.error, range).await?;
                let all = steps(engine, store, &g.total, range).await?;
                for (labels, totals) in &all {
                    let bads = bad.get(labels);
                    let key = group_key(&plan.key, labels);
                    for i in 0..n {
                        let Some(total) = totals[i] else { continue };
                        let total = (total * seconds).max(0.0);
                        let b = bads.and_then(|b| b[i]).unwrap_or(0.0) * seconds;
                        if total > 0.0 || b > 0.0 {
                            rows.push(SliceRow {
                                sli: key.clone(),
                                t_ms: t(i),
                                bad: b.clamp(0.0, total),
                                total,
                            });
                        }
                    }
                }
            }
        }
        Slicer::Ratio { ratio } => {
            let series = steps(engine, store, ratio, range).await?;
            for i in 0..n {
                let vals: Vec<f64> = series.values().filter_map(|v| v[i]).collect();
                if vals.is_empty() {
                    continue;
                }
                let mean = vals.iter().sum::<f64>() / vals.len() as f64;
                rows.push(SliceRow {
                    sli: plan.key.clone(),
                    t_ms: t(i),
                    bad: mean.clamp(0.0, 1.0),
                    total: 1.0,
                });
            }
        }
        Slicer::Threshold {
            value,
            bad_op,
            threshold,
        } => {
            let series = steps(engine, store, value, range).await?;
            for i in 0..n {
                let vals: Vec<f64> = series.values().filter_map(|v| v[i]).collect();
                if vals.is_empty() {
                    continue;
                }
                let failing = vals
                    .iter()
                    .filter(|v| match *bad_op {
                        ">=" => **v >= *threshold,
                        ">" => **v > *threshold,
                        "<=" => **v <= *threshold,
                        _ => **v < *threshold,
                    })
                    .count();
                rows.push(SliceRow {
                    sli: plan.key.clone(),
                    t_ms: t(i),
                    bad: failing as f64 / vals.len() as f64,
                    total: 1.0,
                });
            }
        }
    }
    Ok(rows)
}

/// The slice key of one label group: `<key>/` and its labels as JSON.
pub(crate) fn group_key(key: &str, labels: &Labels) -> String {
    let map: BTreeMap<&str, &str> = labels
        .iter()
        .filter(|l| l.name != sextant_model::METRIC_NAME)
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect();
    format!("{key}/{}", serde_json::to_string(&map).expect("strings serialize"))
}

/// For latency SLIs: an error when the stored histogram has buckets but none at the
/// threshold (the SLI would count every request as slow).
pub(crate) fn check_latency_boundary(plan: &Plan, store: &MetricsStore, now_ms: i64) -> Result<(), String> {
    let Some((metric, selector, threshold)) = &plan.latency else {
        return Ok(());
    };
    let expr = sextant_promql::parse(&format!("{metric}_bucket{{{selector}}}")).map_err(|e| e.to_string())?;
    let Expr::VectorSelector(vs) = expr else {
        return Ok(());
    };
    let mut matchers = Vec::new();
    for m in &vs.matchers.matchers {
        let op = match m.op {
            promql_parser::label::MatchOp::Equal => sextant_model::MatchOp::Equal,
            promql_parser::label::MatchOp::NotEqual => sextant_model::MatchOp::NotEqual,
            promql_parser::label::MatchOp::Re(_) => sextant_model::MatchOp::Regex,
            promql_parser::label::MatchOp::NotRe(_) => sextant_model::MatchOp::NotRegex,
        };
        matchers.push(sextant_model::Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| e.to_string())?);
    }
    matchers.push(
        sextant_model::Matcher::new(sextant_model::MatchOp::Equal, "__name__", format!("{metric}_bucket"))
            .map_err(|e| e.to_string())?,
    );
    let les = store.label_values("le", &[matchers], now_ms - 86_400_000, now_ms);
    if les.is_empty() {
        return Ok(());
    }
    let mut bounds: Vec<f64> = les.iter().filter_map(|l| l.parse::<f64>().ok()).collect();
    if bounds
        .iter()
        .any(|b| (b - threshold).abs() <= 1e-9 * threshold.abs().max(1.0))
    {
        return Ok(());
    }
    bounds.sort_by(f64::total_cmp);
    Err(format!(
        "latency threshold {threshold} is not a bucket boundary of {metric} (its le values: {})",
        bounds
            .iter()
            .map(|b| crate::gofmt::format_plain(*b))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}
