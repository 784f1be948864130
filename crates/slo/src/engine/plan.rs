//! An SLO compiled for the engine: its revision, the PromQL that computes its slices
//! and its direct windows, its windows, tiers and period.

use std::time::Duration;

use promql_parser::label::Labels as GroupingLabels;
use promql_parser::parser::{Expr, LabelModifier};

use super::EngineOptions;
use crate::calendar::Calendar;
use crate::gofmt::prom_duration;
use crate::model::{BurnThreshold, CalendarUnit, Period, Sli, Slo, TierSpec, TierWindow};
use crate::sloth_rules::{latency_queries, sli_expr};
use crate::template;
use crate::windows::{WindowCatalog, WindowPair};

/// How a slice's bad and total events are computed (queries rendered with the slice
/// as `{{.window}}`, evaluated with exact counter windows).
#[derive(Debug, Clone)]
pub(crate) enum Slicer {
    /// Error and total event rates; counts are rate times the slice length.
    Events { error: Expr, total: Expr },
    /// An error ratio: each slice counts as one event, `ratio` of it bad.
    Ratio { ratio: Expr },
    /// A value against a threshold: a slice is bad when the value fails it.
    Threshold {
        value: Expr,
        bad_op: &'static str,
        threshold: f64,
    },
}

/// The period.
#[derive(Debug, Clone)]
pub(crate) enum PeriodPlan {
    Rolling(i64),
    Calendar(Calendar),
}

/// One window the engine reports.
#[derive(Debug, Clone)]
pub(crate) struct WindowPlan {
    pub name: String,
    pub ms: i64,
    /// The SLI's error ratio over this window as Sloth's rule computes it, for windows
    /// evaluated directly instead of from slices.
    pub direct: Option<Expr>,
}

/// A tier with its conditions resolved to window indexes.
#[derive(Debug, Clone)]
pub(crate) struct TierPlan {
    pub spec: TierSpec,
    /// (long window index, short window index, burn-rate threshold).
    pub conditions: Vec<(usize, Option<usize>, f64)>,
    pub alert_enabled: bool,
}

/// Per-group queries for attribution.
#[derive(Debug, Clone)]
pub(crate) struct Groups {
    pub dimensions: Vec<String>,
    pub error: Expr,
    pub total: Expr,
}

/// An SLO ready to evaluate.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub slo: Slo,
    /// `<id>@<revision>`: the slices' key.
    pub key: String,
    pub revision: String,
    pub definition: String,
    pub slice_ms: i64,
    pub period: PeriodPlan,
    /// `30d`, or `month`/`week`.
    pub period_name: String,
    /// Windows shorter than the period, ascending.
    pub windows: Vec<WindowPlan>,
    pub slicer: Slicer,
    pub groups: Option<Groups>,
    pub tiers: Vec<TierPlan>,
    pub coverage_floor: f64,
    /// Index in `windows` of Sloth's "current" burn-rate window (the page alert's
    /// short window, 5m).
    pub current_window: usize,
    pub error_budget: f64,
    /// Good ratio a time slice needs (time-slice budgeting).
    pub slice_target: Option<f64>,
    /// Latency SLIs: (histogram, selector, threshold) for the bucket-boundary check.
    pub latency: Option<(String, String, f64)>,
}

const STANDARD_WINDOWS: [u64; 7] = [300, 1800, 3600, 7200, 21600, 86400, 259200];

impl Plan {
    /// Compiles `slo`; errors name the SLO's spec location.
    pub fn new(slo: &Slo, opts: &EngineOptions) -> Result<Self, String> {
        let fail = |e: String| format!("{}: SLO {:?}: {e}", slo.location, slo.id);
        let (slice, slice_target) = match slo.budgeting {
            crate::model::Budgeting::Occurrences => (opts.slice, None),
            crate::model::Budgeting::Timeslices { slice_target, slice } => (slice, Some(slice_target)),
        };
        if slice < Duration::from_secs(1) {
            return Err(fail("the slice must be at least 1s".into()));
        }
        let slice_ms = slice.as_millis() as i64;
        let slice_name = prom_duration(slice);
        let (period, period_name, catalog_period) = match &slo.period {
            Period::Rolling(p) => {
                let p = p.unwrap_or(opts.default_period);
                (PeriodPlan::Rolling(p.as_millis() as i64), prom_duration(p), p)
            }
            Period::Calendar { unit, time_zone, start } => {
                let cal = Calendar::new(*unit, time_zone, start.as_deref()).map_err(fail)?;
                let (name, days) = match unit {
                    CalendarUnit::Month => ("month", 30),
                    CalendarUnit::Week => ("week", 7),
                };
                (
                    PeriodPlan::Calendar(cal),
                    name.to_owned(),
                    Duration::from_secs(days * 86400),
                )
            }
        };
        let render = |q: &str| -> Result<Expr, String> {
            let text = template::render(q, &slice_name)?;
            sextant_promql::parse(&text).map_err(|e| format!("{q}: {e}"))
        };
        let events = |error: String, total: &str| -> Result<Slicer, String> {
            Ok(Slicer::Events {
                error: render(&error)?,
                total: render(total)?,
            })
        };
        let mut latency = None;
        let slicer = match &slo.sli {
            Sli::Events {
                error_query,
                total_query,
            } => events(error_query.clone(), total_query),
            Sli::Raw { error_ratio_query } => render(error_ratio_query).map(|ratio| Slicer::Ratio { ratio }),
            Sli::Latency {
                metric,
                selector,
                threshold_seconds,
            } => {
                latency = Some((metric.clone(), selector.clone(), *threshold_seconds));
                let (total, good) = latency_queries(metric, selector, *threshold_seconds);
                events(format!("{total} - {good}"), &total)
            }
            Sli::Ratio { good, bad, total } => match (good, bad) {
                (_, Some(bad)) => events(bad.clone(), total),
                (Some(good), None) => events(format!("({total}) - ({good})"), total),
                (None, None) => Err("a ratio SLI needs good or bad events".into()),
            },
            Sli::Threshold { query, op, value } => render(query).map(|value_expr| Slicer::Threshold {
                value: value_expr,
                bad_op: match op.as_str() {
                    "lt" => ">=",
                    "lte" => ">",
                    "gt" => "<=",
                    _ => "<",
                },
                threshold: *value,
            }),
        }
        .map_err(fail)?;

        let groups = if slo.extension.dimensions.is_empty() {
            None
        } else {
            let Slicer::Events { error, total } = &slicer else {
                return Err(fail("attribution dimensions need an events or latency SLI".into()));
            };
            let dims = &slo.extension.dimensions;
            let by = |e: &Expr, what: &str| {
                group_by(e, dims).ok_or_else(|| {
                    fail(format!(
                        "attribution needs the {what} query to be a sum (or sums combined by arithmetic), to split it by {dims:?}"
                    ))
                })
            };
            Some(Groups {
                dimensions: dims.clone(),
                error: by(error, "error")?,
                total: by(total, "total")?,
            })
        };

        // Tiers: the spec's, or the window catalog's page and ticket alerts.
        let tier_specs = match &slo.extension.tiers {
            Some(t) => t.clone(),
            None if !slo.burn_rate_conditions.is_empty() => slo
                .burn_rate_conditions
                .iter()
                .map(|c| TierSpec {
                    name: c.name.clone(),
                    severity: c.severity.clone(),
                    windows: vec![TierWindow {
                        long: c.lookback,
                        short: None,
                        threshold: BurnThreshold::BurnRate(c.threshold),
                    }],
                    below_budget_remaining: None,
                    for_: c.alert_after,
                })
                .collect(),
            None => default_tiers(&opts.windows, catalog_period),
        };
        let catalog = opts
            .windows
            .get(catalog_period)
            .or_else(|_| opts.windows.get(Duration::from_secs(30 * 86400)))
            .copied()
            .unwrap_or_else(|_| {
                *WindowCatalog::default()
                    .get(Duration::from_secs(30 * 86400))
                    .expect("built in")
            });

        let mut lengths: Vec<Duration> = STANDARD_WINDOWS.iter().map(|s| Duration::from_secs(*s)).collect();
        lengths.extend(catalog.sli_windows());
        for t in &tier_specs {
            for w in &t.windows {
                lengths.push(w.long);
                lengths.extend(w.short);
            }
        }
        lengths.sort();
        lengths.dedup();
        let direct_ok = slice_target.is_none() && !matches!(slicer, Slicer::Threshold { .. });
        let mut windows = Vec::new();
        for l in lengths {
            if l < slice {
                return Err(fail(format!(
                    "window {} is shorter than the slice ({slice_name})",
                    prom_duration(l)
                )));
            }
            let name = prom_duration(l);
            let direct = if direct_ok && l <= opts.direct_max_window {
                Some(
                    sli_expr(&slo.sli, &name)
                        .and_then(|q| sextant_promql::parse(&q).map_err(|e| e.to_string()))
                        .map_err(fail)?,
                )
            } else {
                None
            };
            windows.push(WindowPlan {
                name,
                ms: l.as_millis() as i64,
                direct,
            });
        }
        let index = |d: Duration| {
            windows
                .iter()
                .position(|w| w.ms == d.as_millis() as i64)
                .expect("every tier window is listed")
        };
        let tiers = tier_specs
            .into_iter()
            .map(|spec| TierPlan {
                conditions: spec
                    .windows
                    .iter()
                    .map(|w| (index(w.long), w.short.map(index), w.burn_rate(catalog_period)))
                    .collect(),
                alert_enabled: match spec.name.as_str() {
                    "page" => slo.page_alert.is_some(),
                    "ticket" => slo.ticket_alert.is_some(),
                    _ => true,
                },
                spec,
            })
            .collect();
        let current_window = index(catalog.page_quick.short);
        let coverage_floor = slo.extension.coverage_floor.unwrap_or(opts.coverage_floor);

        let definition = format!(
            "sli: {:?}\nbudgeting: {:?}\nslice: {slice_name}\ndimensions: {:?}",
            slo.sli, slo.budgeting, slo.extension.dimensions
        );
        let revision = format!("{:016x}", fnv1a(definition.as_bytes()));
        Ok(Self {
            key: format!("{}@{revision}", slo.id),
            revision,
            definition,
            slice_ms,
            period,
            period_name,
            windows,
            slicer,
            groups,
            tiers,
            coverage_floor,
            current_window,
            error_budget: 1.0 - slo.objective_ratio(),
            slice_target,
            latency,
            slo: slo.clone(),
        })
    }

    /// The period's bounds at `end_ms`: (start, end of the whole period). For rolling
    /// periods, `(end - period, end)`.
    pub fn period_bounds(&self, end_ms: i64) -> Result<(i64, i64), String> {
        match &self.period {
            PeriodPlan::Rolling(p) => Ok((end_ms - p, end_ms)),
            // A slice ending exactly at a period boundary belongs to the earlier period.
            PeriodPlan::Calendar(c) => c.period_at(end_ms - 1),
        }
    }

    /// How far back backfill goes from `end_ms`: the period, the longest window, and
    /// for calendar periods the previous period as well.
    pub fn backfill_target(&self, end_ms: i64) -> Result<i64, String> {
        let longest = self.windows.last().map_or(0, |w| w.ms);
        let from = match &self.period {
            PeriodPlan::Rolling(p) => end_ms - p,
            PeriodPlan::Calendar(c) => {
                let (start, _) = c.period_at(end_ms - 1)?;
                c.period_at(start - 1)?.0
            }
        };
        let from = from.min(end_ms - longest);
        Ok(from - from.rem_euclid(self.slice_ms))
    }

    /// Every PromQL expression the plan evaluates (slices, direct windows, groups).
    pub fn expressions(&self) -> Vec<&Expr> {
        let mut out: Vec<&Expr> = match &self.slicer {
            Slicer::Events { error, total } => vec![error, total],
            Slicer::Ratio { ratio } => vec![ratio],
            Slicer::Threshold { value, .. } => vec![value],
        };
        out.extend(self.windows.iter().filter_map(|w| w.direct.as_ref()));
        if let Some(g) = &self.groups {
            out.extend([&g.error, &g.total]);
        }
        out
    }

    /// The longest window.
    pub fn longest_window_ms(&self) -> i64 {
        self.windows.last().map_or(self.slice_ms, |w| w.ms)
    }
}

/// The SRE Workbook's page and ticket tiers from a window catalog, as Sloth renders
/// them: thresholds scale with the period (`errorBudgetPercent * period / long`).
fn default_tiers(catalog: &WindowCatalog, period: Duration) -> Vec<TierSpec> {
    let windows = catalog.get(period).copied().unwrap_or_else(|_| {
        *WindowCatalog::default()
            .get(Duration::from_secs(30 * 86400))
            .expect("built in")
    });
    let window = |p: &WindowPair| TierWindow {
        long: p.long,
        short: Some(p.short),
        threshold: BurnThreshold::BudgetPercent(p.error_budget_percent),
    };
    vec![
        TierSpec {
            name: "page".into(),
            severity: "page".into(),
            windows: vec![window(&windows.page_quick), window(&windows.page_slow)],
            below_budget_remaining: None,
            for_: Duration::ZERO,
        },
        TierSpec {
            name: "ticket".into(),
            severity: "ticket".into(),
            windows: vec![window(&windows.ticket_quick), window(&windows.ticket_slow)],
            below_budget_remaining: None,
            for_: Duration::ZERO,
        },
    ]
}

/// `e` with its top-level sums grouped by `dims` (through parentheses and arithmetic),
/// or `None` if it has no top-level sum.
fn group_by(e: &Expr, dims: &[String]) -> Option<Expr> {
    match e {
        Expr::Paren(p) => {
            let mut p = p.clone();
            p.expr = Box::new(group_by(&p.expr, dims)?);
            Some(Expr::Paren(p))
        }
        Expr::Binary(b) => {
            let mut b = b.clone();
            let lhs = group_by(&b.lhs, dims);
            let rhs = group_by(&b.rhs, dims);
            // Both sides must split, or a scalar side must be left alone.
            match (lhs, rhs) {
                (Some(l), Some(r)) => {
                    b.lhs = Box::new(l);
                    b.rhs = Box::new(r);
                }
                (Some(l), None) if matches!(*b.rhs, Expr::NumberLiteral(_)) => b.lhs = Box::new(l),
                (None, Some(r)) if matches!(*b.lhs, Expr::NumberLiteral(_)) => b.rhs = Box::new(r),
                _ => return None,
            }
            Some(Expr::Binary(b))
        }
        Expr::Aggregate(a) if a.op.to_string() == "sum" => {
            let mut a = a.clone();
            a.modifier = Some(LabelModifier::Include(GroupingLabels { labels: dims.to_vec() }));
            Some(Expr::Aggregate(a))
        }
        _ => None,
    }
}

/// FNV-1a, 64 bits: a revision id that is the same on every build and machine.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
