//! One evaluation of one SLO at a time `t`: window sums over its slices, the direct
//! windows, budget, tiers, and the series Sloth's rules would record.

use std::collections::{BTreeMap, HashMap};

use sextant_model::{Labels, METRIC_NAME};
use sextant_promql::{Engine, QueryValue, Queryable};
use sextant_store::{MetricsStore, RevisionRow, SliceFilter, WindowSum};

use super::plan::{PeriodPlan, Plan};
use crate::calendar::Calendar;
use crate::model::{Budgeting, CalendarUnit, Period};
use crate::status::{
    Attribution, BackfillStatus, BudgetStatus, CalendarStatus, ConditionStatus, GroupShare, RevisionStatus, SloStatus,
    SloSummary, State, TierStatus, WindowStatus, rfc3339,
};

/// What a tier remembers between evaluations.
#[derive(Debug, Clone)]
pub(crate) struct TierMemory {
    pub state: State,
    pub since_ms: i64,
    pub last_known: Option<State>,
    /// Since when a condition has held (for `for`).
    pub holding_since: Option<i64>,
}

/// The result of one evaluation.
pub(crate) struct Evaluation {
    pub status: SloStatus,
    /// Series (labels with `__name__`) and values at `t`.
    pub series: Vec<(Labels, f64)>,
}

/// What an evaluation reads: PromQL through `reads` (the store, or data prefetched
/// for a whole cycle), slices from `store`.
pub(crate) struct Context<'a, Q: Queryable> {
    pub engine: &'a Engine,
    pub store: &'a MetricsStore,
    pub reads: &'a Q,
    /// Window sums computed for the whole cycle at once, by plan key, for the
    /// lengths [`window_lengths`] gives; queried per SLO when absent.
    pub sums: Option<&'a HashMap<String, Vec<WindowSum>>>,
    pub settle_ms: i64,
    pub version: &'a str,
}

/// One window's figures.
#[derive(Debug, Clone, Copy)]
struct Win {
    ms: i64,
    sum: WindowSum,
    /// Error ratio: `Some(NaN)` for "data but no events" (Sloth's 0/0), `None` for no
    /// data at all.
    ratio: Option<f64>,
    coverage: f64,
    direct: bool,
}

fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

/// The end of the newest slice an evaluation at `t_ms` may use.
pub(crate) fn slices_end(plan: &Plan, t_ms: i64, settle_ms: i64) -> i64 {
    let e = t_ms - settle_ms;
    e - e.rem_euclid(plan.slice_ms)
}

/// The windows an evaluation sums, ending at `end`: the plan's windows, then the
/// period so far, the current calendar week and month (in the SLO's zone).
pub(crate) fn window_lengths(plan: &Plan, end: i64) -> Result<Vec<i64>, String> {
    let (period_start, _) = plan.period_bounds(end)?;
    let zone = match &plan.slo.period {
        Period::Calendar { time_zone, .. } => time_zone.clone(),
        Period::Rolling(_) => "UTC".to_owned(),
    };
    let (week_start, _) = Calendar::new(CalendarUnit::Week, &zone, None)?.period_at(end - 1)?;
    let (month_start, _) = Calendar::new(CalendarUnit::Month, &zone, None)?.period_at(end - 1)?;
    let mut lengths: Vec<i64> = plan.windows.iter().map(|w| w.ms).collect();
    lengths.extend([end - period_start, end - week_start, end - month_start]);
    Ok(lengths)
}

/// Evaluates `plan` at `t_ms`. `detail` adds what only the single-SLO API shows
/// (previous calendar periods, attribution when not burning, revisions).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn evaluate<Q: Queryable>(
    plan: &Plan,
    ctx: &Context<'_, Q>,
    revision: &RevisionRow,
    all_revisions: &[RevisionRow],
    memory: &mut HashMap<String, TierMemory>,
    t_ms: i64,
    detail: bool,
) -> Result<Evaluation, String> {
    let slo = &plan.slo;
    let slice = plan.slice_ms;
    let end = slices_end(plan, t_ms, ctx.settle_ms);
    let budget = plan.error_budget;
    // Sloth's alert thresholds use (100 - objective) / 100, its burn rates 1 - ratio.
    let alert_budget = (100.0 - slo.objective_percent) / 100.0;

    // Windows to sum: the plan's, the period (so far), the current calendar week
    // and month.
    let (period_start, period_end) = plan.period_bounds(end)?;
    let period_len = period_end - period_start;
    let zone = match &slo.period {
        Period::Calendar { time_zone, .. } => time_zone.clone(),
        Period::Rolling(_) => "UTC".to_owned(),
    };
    let week = Calendar::new(CalendarUnit::Week, &zone, None)?;
    let month = Calendar::new(CalendarUnit::Month, &zone, None)?;
    let (week_start, week_end) = week.period_at(end - 1)?;
    let (month_start, month_end) = month.period_at(end - 1)?;
    let lengths = window_lengths(plan, end)?;
    let sums = match ctx.sums {
        Some(all) => all.get(&plan.key).cloned(),
        None => ctx
            .store
            .slice_sums(
                end,
                lengths.clone(),
                SliceFilter::Keys(vec![plan.key.clone()]),
                plan.slice_target,
            )
            .await
            .map_err(|e| e.to_string())?
            .get(&plan.key)
            .cloned(),
    }
    .unwrap_or_else(|| vec![WindowSum::default(); lengths.len()]);

    let time_slices = plan.slice_target.is_some();
    let from_slices = |sum: WindowSum| -> Option<f64> {
        if sum.slices == 0 {
            None
        } else if time_slices {
            Some(sum.bad_slices as f64 / sum.slices as f64)
        } else if sum.total > 0.0 {
            Some(sum.bad / sum.total)
        } else {
            Some(f64::NAN)
        }
    };
    let coverage = |sum: WindowSum, ms: i64| {
        let expected = (ms / slice).max(1) as f64;
        (sum.slices as f64 / expected).min(1.0)
    };

    let mut wins = Vec::with_capacity(plan.windows.len());
    for (i, w) in plan.windows.iter().enumerate() {
        let sum = sums[i];
        let (ratio, direct) = match &w.direct {
            Some(expr) => (direct_value(ctx, expr, t_ms).await?, true),
            None => (from_slices(sum), false),
        };
        wins.push(Win {
            ms: w.ms,
            sum,
            ratio,
            coverage: coverage(sum, w.ms),
            direct,
        });
    }
    let n = plan.windows.len();
    let period_sum = sums[n];
    let elapsed = end - period_start;
    let period = Win {
        ms: elapsed,
        sum: period_sum,
        ratio: from_slices(period_sum),
        coverage: coverage(period_sum, elapsed),
        direct: false,
    };

    // Budget.
    let minute = 60_000.0;
    let mut b = BudgetStatus {
        period_start: Some(rfc3339(period_start)),
        period_end: Some(rfc3339(period_end)),
        objective: slo.objective_ratio(),
        error_budget: budget,
        period_error_ratio: finite(period.ratio),
        consumed: None,
        remaining: None,
        total_events: None,
        bad_events: None,
        budget_events: None,
        remaining_events: None,
        budget_minutes: None,
        bad_minutes: None,
        remaining_minutes: None,
        unknown_minutes: None,
        exhaustion_seconds: None,
    };
    match slo.budgeting {
        Budgeting::Occurrences => {
            b.consumed = finite(period.ratio).map(|r| r / budget);
            if period_sum.slices > 0 {
                b.total_events = Some(period_sum.total);
                b.bad_events = Some(period_sum.bad);
                b.budget_events = Some(budget * period_sum.total);
                b.remaining_events = Some(budget * period_sum.total - period_sum.bad);
            }
        }
        Budgeting::Timeslices { .. } => {
            let budget_minutes = budget * period_len as f64 / minute;
            let bad_minutes = period_sum.bad_slices as f64 * slice as f64 / minute;
            let elapsed_slices = (elapsed / slice).max(0) as u64;
            b.budget_minutes = Some(budget_minutes);
            b.bad_minutes = Some(bad_minutes);
            b.remaining_minutes = Some(budget_minutes - bad_minutes);
            b.unknown_minutes = Some(elapsed_slices.saturating_sub(period_sum.slices) as f64 * slice as f64 / minute);
            b.consumed = (period_sum.slices > 0).then(|| bad_minutes / budget_minutes);
        }
    }
    b.remaining = b.consumed.map(|c| 1.0 - c);
    let current = wins[plan.current_window];
    let current_burn = finite(current.ratio).map(|r| r / budget);
    if let (Some(burn), Some(rem)) = (current_burn, b.remaining)
        && burn > 0.0
        && rem > 0.0
    {
        b.exhaustion_seconds = Some(rem * period_len as f64 / 1000.0 / burn);
    }

    // Tiers.
    let mut tiers = Vec::new();
    let mut firing_window = None;
    for tier in &plan.tiers {
        let mut conditions = Vec::new();
        let (mut holds, mut unknown) = (false, false);
        for &(long, short, burn) in &tier.conditions {
            let threshold = burn * alert_budget;
            let lw = wins[long];
            let sw = short.map(|s| wins[s]);
            let covered = lw.coverage >= plan.coverage_floor && sw.is_none_or(|s| s.coverage >= plan.coverage_floor);
            let above = |w: &Win| finite(w.ratio).is_some_and(|r| r > threshold);
            let state = if !covered {
                unknown = true;
                State::Unknown
            } else if above(&lw) && sw.as_ref().is_none_or(above) {
                holds = true;
                firing_window.get_or_insert(long);
                State::Firing
            } else {
                State::Ok
            };
            conditions.push(ConditionStatus {
                long_window: plan.windows[long].name.clone(),
                short_window: short.map(|s| plan.windows[s].name.clone()),
                burn_rate_threshold: burn,
                error_ratio_threshold: threshold,
                long_burn_rate: finite(lw.ratio).map(|r| r / budget),
                short_burn_rate: sw.and_then(|s| finite(s.ratio)).map(|r| r / budget),
                state,
            });
        }
        if let Some(below) = tier.spec.below_budget_remaining {
            holds = holds && b.remaining.is_some_and(|r| r < below);
        }
        let mem = memory.entry(tier.spec.name.clone()).or_insert(TierMemory {
            state: State::Ok,
            since_ms: t_ms,
            last_known: None,
            holding_since: None,
        });
        let next = if holds {
            let since = *mem.holding_since.get_or_insert(t_ms);
            if t_ms - since >= tier.spec.for_.as_millis() as i64 {
                State::Firing
            } else {
                State::Pending
            }
        } else if unknown {
            State::Unknown
        } else {
            mem.holding_since = None;
            State::Ok
        };
        if next != mem.state {
            mem.state = next;
            mem.since_ms = t_ms;
        }
        if next != State::Unknown {
            mem.last_known = Some(next);
        }
        tiers.push(TierStatus {
            name: tier.spec.name.clone(),
            severity: tier.spec.severity.clone(),
            state: mem.state,
            since: Some(rfc3339(mem.since_ms)),
            last_known_state: mem.last_known,
            below_budget_remaining: tier.spec.below_budget_remaining,
            for_seconds: tier.spec.for_.as_secs_f64(),
            alert_enabled: tier.alert_enabled,
            conditions,
        });
    }
    let worst = tiers
        .iter()
        .map(|t| t.state)
        .max_by_key(|s| match s {
            State::Ok => 0,
            State::Unknown => 1,
            State::Pending => 2,
            State::Firing => 3,
        })
        .unwrap_or(State::Ok);

    // Calendar consumption: the current week and month from this scan; earlier ones
    // in detail.
    let cal_status = |unit: &str, start: i64, stop: i64, sum: WindowSum| {
        let ratio = finite(from_slices(sum));
        CalendarStatus {
            unit: unit.to_owned(),
            start: rfc3339(start),
            end: rfc3339(stop),
            error_ratio: ratio,
            budget_consumed: ratio.map(|r| r / budget),
            coverage: coverage(sum, end.min(stop) - start),
        }
    };
    let mut calendar = vec![
        cal_status("week", week_start, week_end, sums[n + 1]),
        cal_status("month", month_start, month_end, sums[n + 2]),
    ];
    if detail {
        for (unit, cal) in [("week", &week), ("month", &month)] {
            for (start, stop) in cal.recent_periods(end - 1, 3)?.into_iter().skip(1) {
                let s = ctx
                    .store
                    .slice_sums(
                        stop,
                        vec![stop - start],
                        SliceFilter::Keys(vec![plan.key.clone()]),
                        plan.slice_target,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                let sum = s.get(&plan.key).map(|v| v[0]).unwrap_or_default();
                calendar.push(cal_status(unit, start, stop, sum));
            }
        }
    }

    // Attribution: over the firing condition's long window, or 1h when asked for.
    let attribution = match (&plan.groups, firing_window, detail) {
        (Some(g), Some(w), _) => Some(attribute(plan, ctx, &g.dimensions, end, w).await?),
        (Some(g), None, true) => {
            let w = plan
                .windows
                .iter()
                .position(|w| w.ms == 3_600_000)
                .unwrap_or(plan.current_window);
            Some(attribute(plan, ctx, &g.dimensions, end, w).await?)
        }
        _ => None,
    };

    // Backfill progress.
    let target = plan.backfill_target(end)?;
    let span = (revision.computed_to_ms - target).max(1) as f64;
    let progress = ((revision.computed_to_ms - revision.computed_from_ms) as f64 / span).clamp(0.0, 1.0);
    let backfill = BackfillStatus {
        done: revision.computed_from_ms <= target,
        progress: if revision.computed_from_ms <= target {
            1.0
        } else {
            progress
        },
        computed_from: Some(rfc3339(revision.computed_from_ms)),
        target: Some(rfc3339(target)),
    };
    let mut revisions: Vec<RevisionStatus> = all_revisions
        .iter()
        .filter(|r| {
            r.sli
                .split_once('@')
                .is_some_and(|(id, rev)| id == slo.id && !rev.contains('/'))
        })
        .map(|r| RevisionStatus {
            revision: r.sli.split_once('@').map(|x| x.1.to_owned()).unwrap_or_default(),
            current: r.sli == plan.key,
            created: rfc3339(r.created_ms),
            computed_from: Some(rfc3339(r.computed_from_ms)),
            computed_to: Some(rfc3339(r.computed_to_ms)),
            definition: r.definition.clone(),
        })
        .collect();
    revisions.sort_by(|a, b| b.created.cmp(&a.created));

    let mut windows: Vec<WindowStatus> = plan
        .windows
        .iter()
        .zip(&wins)
        .map(|(w, x)| window_status(&w.name, x, budget, plan.coverage_floor))
        .collect();
    windows.push(window_status(&plan.period_name, &period, budget, plan.coverage_floor));

    let summary = SloSummary {
        id: slo.id.clone(),
        service: slo.service.clone(),
        name: slo.name.clone(),
        objective: slo.objective_ratio(),
        period: plan.period_name.clone(),
        state: worst,
        budget_remaining: b.remaining,
        current_burn_rate: current_burn,
        period_coverage: period.coverage,
        revision: plan.revision.clone(),
        evaluated_at: Some(rfc3339(t_ms)),
        error: None,
    };
    let series = series(
        plan,
        ctx.version,
        &wins,
        &period,
        &b,
        &tiers,
        &calendar,
        &backfill,
        period_len,
    );
    Ok(Evaluation {
        status: SloStatus {
            summary,
            description: slo.description.clone(),
            labels: slo.labels.clone(),
            spec_location: slo.location.clone(),
            spec_kind: slo.spec.label().to_owned(),
            budgeting: if time_slices { "timeslices" } else { "occurrences" }.to_owned(),
            slice_seconds: slice as f64 / 1000.0,
            slices_until: Some(rfc3339(end)),
            windows,
            budget: b,
            calendar,
            tiers,
            attribution,
            revisions,
            backfill,
        },
        series,
    })
}

fn window_status(name: &str, w: &Win, budget: f64, floor: f64) -> WindowStatus {
    WindowStatus {
        window: name.to_owned(),
        seconds: w.ms as f64 / 1000.0,
        error_ratio: finite(w.ratio),
        burn_rate: finite(w.ratio).map(|r| r / budget),
        coverage: w.coverage,
        covered: w.coverage >= floor,
        bad_events: w.sum.bad,
        total_events: w.sum.total,
        source: if w.direct { "direct" } else { "slices" }.to_owned(),
    }
}

/// An instant query of a direct window's ratio: one series' value, the mean of
/// several, `None` for none.
async fn direct_value<Q: Queryable>(
    ctx: &Context<'_, Q>,
    expr: &promql_parser::parser::Expr,
    t_ms: i64,
) -> Result<Option<f64>, String> {
    match ctx
        .engine
        .instant(ctx.reads, expr, t_ms)
        .await
        .map_err(|e| e.to_string())?
    {
        QueryValue::Vector(v) if v.is_empty() => Ok(None),
        QueryValue::Vector(v) => Ok(Some(v.iter().map(|s| s.v).sum::<f64>() / v.len() as f64)),
        QueryValue::Scalar { v, .. } => Ok(Some(v)),
        other => Err(format!("the SLI query gives a {}", other.type_name())),
    }
}

async fn attribute<Q: Queryable>(
    plan: &Plan,
    ctx: &Context<'_, Q>,
    dimensions: &[String],
    end: i64,
    window: usize,
) -> Result<Attribution, String> {
    let prefix = format!("{}/", plan.key);
    let sums = ctx
        .store
        .slice_sums(
            end,
            vec![plan.windows[window].ms],
            SliceFilter::Prefix(prefix.clone()),
            None,
        )
        .await
        .map_err(|e| e.to_string())?;
    let all_bad: f64 = sums.values().map(|s| s[0].bad).sum();
    let mut groups: Vec<GroupShare> = sums
        .into_iter()
        .filter(|(_, s)| s[0].bad > 0.0)
        .map(|(k, s)| {
            let labels: BTreeMap<String, String> = serde_json::from_str(&k[prefix.len()..]).unwrap_or_default();
            GroupShare {
                labels,
                bad_events: s[0].bad,
                total_events: s[0].total,
                error_ratio: (s[0].total > 0.0).then(|| s[0].bad / s[0].total),
                share: s[0].bad / all_bad,
            }
        })
        .collect();
    groups.sort_by(|a, b| {
        b.bad_events
            .total_cmp(&a.bad_events)
            .then_with(|| a.labels.cmp(&b.labels))
    });
    groups.truncate(10);
    Ok(Attribution {
        window: plan.windows[window].name.clone(),
        dimensions: dimensions.to_vec(),
        bad_events: all_bad,
        groups,
    })
}

/// The series of one evaluation: Sloth's recordings (values as Prometheus computes
/// them from Sloth's rules, the period's from exact slice sums) and Sextant's own.
#[allow(clippy::too_many_arguments)]
fn series(
    plan: &Plan,
    version: &str,
    wins: &[Win],
    period: &Win,
    budget: &BudgetStatus,
    tiers: &[TierStatus],
    calendar: &[CalendarStatus],
    backfill: &BackfillStatus,
    period_len_ms: i64,
) -> Vec<(Labels, f64)> {
    let slo = &plan.slo;
    let mut base: BTreeMap<String, String> = BTreeMap::from([
        ("sloth_id".to_owned(), slo.id.clone()),
        ("sloth_service".to_owned(), slo.service.clone()),
        ("sloth_slo".to_owned(), slo.name.clone()),
    ]);
    for (k, v) in &slo.labels {
        base.insert(k.clone(), v.clone());
    }
    let mut out = Vec::new();
    let mut push = |name: &str, extra: &[(&str, &str)], v: f64| {
        let mut l = base.clone();
        for (k, x) in extra {
            l.insert((*k).to_owned(), (*x).to_owned());
        }
        l.insert(METRIC_NAME.to_owned(), name.to_owned());
        if let Ok(labels) = Labels::from_pairs(l) {
            out.push((labels, v));
        }
    };
    let b = plan.error_budget;
    for (w, x) in plan.windows.iter().zip(wins) {
        if let Some(r) = x.ratio {
            push(
                &format!("slo:sli_error:ratio_rate{}", w.name),
                &[("sloth_window", &w.name)],
                r,
            );
        }
        push(
            "sextant_slo_window_coverage_ratio",
            &[("sloth_window", &w.name)],
            x.coverage,
        );
    }
    if let Some(r) = period.ratio {
        if matches!(plan.period, PeriodPlan::Rolling(_)) {
            push(
                &format!("slo:sli_error:ratio_rate{}", plan.period_name),
                &[("sloth_window", &plan.period_name)],
                r,
            );
        }
        push("slo:period_burn_rate:ratio", &[], r / b);
        push("slo:period_error_budget_remaining:ratio", &[], 1.0 - r / b);
        push("sextant_slo_period_error_ratio", &[], r);
    }
    push(
        "sextant_slo_window_coverage_ratio",
        &[("sloth_window", &plan.period_name)],
        period.coverage,
    );
    push("slo:objective:ratio", &[], slo.objective_ratio());
    push("slo:error_budget:ratio", &[], b);
    push("slo:time_period:days", &[], period_len_ms as f64 / 86_400_000.0);
    if let Some(r) = wins[plan.current_window].ratio {
        push("slo:current_burn_rate:ratio", &[], r / b);
    }
    let objective = crate::gofmt::format_plain(slo.objective_percent);
    push(
        "sloth_slo_info",
        &[
            ("sloth_version", version),
            ("sloth_mode", "sextant-engine"),
            ("sloth_spec", slo.spec.label()),
            ("sloth_objective", &objective),
        ],
        1.0,
    );
    if let Some(e) = budget.remaining_events {
        push("sextant_slo_error_budget_remaining_events", &[], e);
    }
    if let Some(m) = budget.remaining_minutes {
        push("sextant_slo_error_budget_remaining_minutes", &[], m);
    }
    if let Some(s) = budget.exhaustion_seconds {
        push("sextant_slo_error_budget_exhaustion_seconds", &[], s);
    }
    for c in calendar.iter().take(2) {
        if let Some(v) = c.budget_consumed {
            push(
                "sextant_slo_calendar_budget_consumed_ratio",
                &[("calendar", &c.unit)],
                v,
            );
        }
    }
    for t in tiers {
        for (state, name) in [
            (State::Ok, "ok"),
            (State::Pending, "pending"),
            (State::Firing, "firing"),
            (State::Unknown, "unknown"),
        ] {
            push(
                "sextant_slo_tier_state",
                &[("tier", &t.name), ("sloth_severity", &t.severity), ("state", name)],
                if t.state == state { 1.0 } else { 0.0 },
            );
        }
    }
    push("sextant_slo_backfill_progress_ratio", &[], backfill.progress);
    out
}
