//! Sloth's `prometheus/v1` spec, with Sloth v0.16's validation and messages (plus
//! unknown keys refused, where Sloth ignores them, and a native latency SLI).

use std::collections::BTreeMap;

use serde::Deserialize;
use sextant_model::yaml::Positions;

use super::{Document, check_labels, valid_name};
use crate::error::Result;
use crate::model::{
    AlertSpec, Budgeting, BurnThreshold, CalendarUnit, Extension, Period, Sli, Slo, SloDocument, SpecKind, TierSpec,
    TierWindow,
};
use crate::template;
use sextant_model::time::PromDuration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecDoc {
    version: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    slos: Vec<SloDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SloDoc {
    #[serde(default)]
    name: String,
    #[serde(default)]
    objective: f64,
    #[serde(default)]
    description: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    sli: SliDoc,
    #[serde(default)]
    alerting: AlertingDoc,
    /// Sextant's additions (Sloth does not know this key).
    #[serde(default)]
    sextant: Option<ExtensionDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtensionDoc {
    period: Option<PromDuration>,
    calendar: Option<CalendarDoc>,
    #[serde(default)]
    dimensions: Vec<String>,
    coverage_floor: Option<f64>,
    tiers: Option<Vec<TierDoc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarDoc {
    unit: String,
    #[serde(default = "utc")]
    time_zone: String,
    start: Option<String>,
}

fn utc() -> String {
    "UTC".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TierDoc {
    name: String,
    severity: Option<String>,
    windows: Vec<TierWindowDoc>,
    below_budget_remaining: Option<f64>,
    #[serde(rename = "for")]
    for_: Option<PromDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TierWindowDoc {
    long: PromDuration,
    short: Option<PromDuration>,
    burn_rate: Option<f64>,
    budget_percent: Option<f64>,
}

/// Sextant's `sextant:` block: period, dimensions, coverage floor, tiers.
fn extension(doc: &ExtensionDoc) -> std::result::Result<(Option<Period>, Extension), (String, String)> {
    let fail = |field: &str, msg: String| (format!("sextant.{field}"), msg);
    let period = match (&doc.period, &doc.calendar) {
        (Some(_), Some(_)) => return Err(fail("calendar", "give period or calendar, not both".into())),
        (Some(p), None) if p.0.is_zero() => return Err(fail("period", "period must be positive".into())),
        (Some(p), None) => Some(Period::Rolling(Some(p.0))),
        (None, Some(c)) => {
            let unit = match c.unit.as_str() {
                "month" => CalendarUnit::Month,
                "week" => CalendarUnit::Week,
                other => {
                    return Err(fail(
                        "calendar.unit",
                        format!("unit must be month or week, not {other:?}"),
                    ));
                }
            };
            crate::calendar::Calendar::new(unit, &c.time_zone, c.start.as_deref()).map_err(|e| fail("calendar", e))?;
            Some(Period::Calendar {
                unit,
                time_zone: c.time_zone.clone(),
                start: c.start.clone(),
            })
        }
        (None, None) => None,
    };
    for (i, d) in doc.dimensions.iter().enumerate() {
        if !sextant_model::is_valid_label_name(d) || d == "__name__" {
            return Err(fail(&format!("dimensions.{i}"), format!("invalid label name {d:?}")));
        }
    }
    if let Some(f) = doc.coverage_floor
        && !(0.0..=1.0).contains(&f)
    {
        return Err(fail(
            "coverage_floor",
            format!("coverage_floor must be within [0, 1], not {f}"),
        ));
    }
    let tiers = match &doc.tiers {
        None => None,
        Some(tiers) => {
            let mut out = Vec::new();
            for (i, t) in tiers.iter().enumerate() {
                let at = |f: &str| format!("tiers.{i}.{f}");
                if !valid_name(&t.name) {
                    return Err(fail(&at("name"), format!("invalid tier name {:?}", t.name)));
                }
                if out.iter().any(|x: &TierSpec| x.name == t.name) {
                    return Err(fail(&at("name"), format!("duplicate tier {:?}", t.name)));
                }
                if t.windows.is_empty() {
                    return Err(fail(&at("windows"), "a tier needs at least one window".into()));
                }
                if let Some(b) = t.below_budget_remaining
                    && !(b > 0.0 && b <= 1.0)
                {
                    return Err(fail(
                        &at("below_budget_remaining"),
                        format!("below_budget_remaining must be within (0, 1], not {b}"),
                    ));
                }
                let mut windows = Vec::new();
                for (j, w) in t.windows.iter().enumerate() {
                    let here = at(&format!("windows.{j}"));
                    let threshold = match (w.burn_rate, w.budget_percent) {
                        (Some(b), None) if b > 0.0 && b.is_finite() => BurnThreshold::BurnRate(b),
                        (None, Some(p)) if p > 0.0 && p <= 100.0 => BurnThreshold::BudgetPercent(p),
                        (Some(_), Some(_)) | (None, None) => {
                            return Err(fail(&here, "give exactly one of burn_rate and budget_percent".into()));
                        }
                        _ => {
                            return Err(fail(
                                &here,
                                "burn_rate must be positive, budget_percent within (0, 100]".into(),
                            ));
                        }
                    };
                    if w.long.0.is_zero() || w.short.is_some_and(|s| s.0.is_zero() || s.0 >= w.long.0) {
                        return Err(fail(
                            &here,
                            "windows must be positive and short shorter than long".into(),
                        ));
                    }
                    windows.push(TierWindow {
                        long: w.long.0,
                        short: w.short.map(|s| s.0),
                        threshold,
                    });
                }
                out.push(TierSpec {
                    name: t.name.clone(),
                    severity: t.severity.clone().unwrap_or_else(|| t.name.clone()),
                    windows,
                    below_budget_remaining: t.below_budget_remaining,
                    for_: t.for_.map(|d| d.0).unwrap_or_default(),
                });
            }
            Some(out)
        }
    };
    Ok((
        period,
        Extension {
            dimensions: doc.dimensions.clone(),
            coverage_floor: doc.coverage_floor,
            tiers,
        },
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SliDoc {
    events: Option<EventsDoc>,
    raw: Option<RawDoc>,
    latency: Option<LatencyDoc>,
    plugin: Option<serde_yaml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsDoc {
    #[serde(default)]
    error_query: String,
    #[serde(default)]
    total_query: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDoc {
    #[serde(default)]
    error_ratio_query: String,
}

/// Sextant's latency SLI: requests of `metric` (a classic histogram) matching
/// `selector`, good when faster than `threshold` seconds.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencyDoc {
    metric: String,
    #[serde(default)]
    selector: String,
    threshold: f64,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AlertingDoc {
    #[serde(default)]
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    page_alert: AlertDoc,
    #[serde(default)]
    ticket_alert: AlertDoc,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AlertDoc {
    #[serde(default)]
    disable: bool,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Checks a query template as Sloth does: present, with `{{.window}}`, and parsing as
/// PromQL once rendered with a 1m window.
pub(crate) fn check_query(what: &str, q: &str) -> std::result::Result<(), String> {
    if q.trim().is_empty() {
        return Err(format!(
            "sli {what} query template: query template is required: required"
        ));
    }
    if !template::has_window(q) {
        return Err(format!(
            "sli {what} query template: template must contain the {{{{ .window }}}} variable"
        ));
    }
    let rendered = template::render(q, "1m").map_err(|e| format!("sli {what} query template: {e}"))?;
    sextant_promql::parse(&rendered).map_err(|e| format!("sli {what} query expression: {e}"))?;
    Ok(())
}

fn check_sli(sli: &SliDoc) -> std::result::Result<Sli, String> {
    let n = [
        sli.events.is_some(),
        sli.raw.is_some(),
        sli.latency.is_some(),
        sli.plugin.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if n == 0 {
        return Err("at least one SLI type is required".into());
    }
    if n > 1 {
        return Err("only one SLI type is allowed".into());
    }
    if sli.plugin.is_some() {
        return Err("SLI plugins are not supported by Sextant (use events, raw or latency)".into());
    }
    if let Some(e) = &sli.events {
        if e.error_query == e.total_query {
            return Err("both error and total queries can't be the same".into());
        }
        check_query("error", &e.error_query)?;
        check_query("total", &e.total_query)?;
        return Ok(Sli::Events {
            error_query: e.error_query.clone(),
            total_query: e.total_query.clone(),
        });
    }
    if let Some(r) = &sli.raw {
        check_query("error ratio", &r.error_ratio_query)?;
        return Ok(Sli::Raw {
            error_ratio_query: r.error_ratio_query.clone(),
        });
    }
    let l = sli.latency.as_ref().expect("one type is set");
    latency(&l.metric, &l.selector, l.threshold)
}

/// The latency SLI, checked: a metric name, a selector that parses, a positive finite
/// threshold. Whether the threshold is a bucket boundary depends on the data, and is
/// checked by the engine against the stored `le` values.
pub(crate) fn latency(metric: &str, selector: &str, threshold: f64) -> std::result::Result<Sli, String> {
    let metric = metric.strip_suffix("_bucket").unwrap_or(metric);
    if !sextant_model::is_valid_metric_name(metric) {
        return Err(format!("latency SLI: invalid metric name {metric:?}"));
    }
    if !(threshold.is_finite() && threshold > 0.0) {
        return Err(format!(
            "latency SLI: threshold must be a positive number of seconds, not {threshold}"
        ));
    }
    sextant_promql::parse(&format!("{metric}_bucket{{{selector}}}"))
        .map_err(|e| format!("latency SLI: invalid selector {selector:?}: {e}"))?;
    Ok(Sli::Latency {
        metric: metric.to_owned(),
        selector: selector.to_owned(),
        threshold_seconds: threshold,
    })
}

/// Sloth's default alert annotations, then the common ones, then the alert's own.
fn alert(common: &AlertingDoc, own: &AlertDoc, severity: &str) -> AlertSpec {
    let mut labels = BTreeMap::from([("sloth_severity".to_owned(), severity.to_owned())]);
    labels.extend(common.labels.clone());
    labels.extend(own.labels.clone());
    let mut annotations = BTreeMap::from([
        (
            "title".to_owned(),
            format!(
                "({severity}) {{{{$labels.sloth_service}}}} {{{{$labels.sloth_slo}}}} SLO error budget burn rate is too fast."
            ),
        ),
        (
            "summary".to_owned(),
            "{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is over expected.".to_owned(),
        ),
    ]);
    annotations.extend(common.annotations.clone());
    annotations.extend(own.annotations.clone());
    AlertSpec {
        name: common.name.clone(),
        labels,
        annotations,
    }
}

fn check_alert(a: &AlertSpec, which: &str) -> std::result::Result<(), String> {
    if a.name.is_empty() {
        return Err(format!("invalid alert: {which} alert: alert name is required"));
    }
    check_labels(&a.labels).map_err(|e| format!("invalid alert: {which} alert: {e}"))?;
    if let Some((k, _)) = a.annotations.iter().find(|(_, v)| v.is_empty()) {
        return Err(format!(
            "invalid alert: {which} alert: annotation {k:?} has an empty value"
        ));
    }
    Ok(())
}

pub(super) fn parse(doc: &Document, pos: &Positions) -> Result<Option<SloDocument>> {
    let spec: SpecDoc = serde_yaml::from_str(&doc.text).map_err(|e| vec![doc.serde_error(&e)])?;
    if spec.version != "prometheus/v1" {
        return Err(vec![doc.error(
            pos,
            "version",
            r#"invalid spec version, should be "prometheus/v1""#,
        )]);
    }
    if spec.slos.is_empty() {
        return Err(vec![doc.error(pos, "slos", "at least one SLO is required")]);
    }
    let mut errors = Vec::new();
    let mut slos = Vec::new();
    for (i, s) in spec.slos.iter().enumerate() {
        let id = format!("{}-{}", spec.service, s.name);
        let fail = |field: &str, msg: String| {
            doc.error(pos, &format!("slos.{i}.{field}"), format!("invalid slo {id:?}: {msg}"))
        };
        let name_err = |what: &str| {
            format!(
                "invalid SLO {what}: name must start and end with an alphanumeric and can only contain alphanumeric, '.', '_', and '-'"
            )
        };
        let checked = (|| -> std::result::Result<Slo, (String, String)> {
            if !valid_name(&id) {
                return Err(("name".into(), name_err("ID")));
            }
            if !valid_name(&s.name) {
                return Err(("name".into(), name_err("name")));
            }
            if !valid_name(&spec.service) {
                return Err(("name".into(), name_err("service")));
            }
            if !(s.objective > 0.0 && s.objective <= 100.0) {
                return Err(("objective".into(), "objective must >0 and <=100".into()));
            }
            let mut labels = spec.labels.clone();
            labels.extend(s.labels.clone());
            check_labels(&labels).map_err(|e| ("labels".to_owned(), e))?;
            let sli = check_sli(&s.sli).map_err(|e| ("sli".to_owned(), format!("invalid SLI: {e}")))?;
            let page = (!s.alerting.page_alert.disable).then(|| alert(&s.alerting, &s.alerting.page_alert, "page"));
            let ticket =
                (!s.alerting.ticket_alert.disable).then(|| alert(&s.alerting, &s.alerting.ticket_alert, "ticket"));
            if let Some(a) = &page {
                check_alert(a, "page").map_err(|e| ("alerting".to_owned(), e))?;
            }
            if let Some(a) = &ticket {
                check_alert(a, "ticket").map_err(|e| ("alerting".to_owned(), e))?;
            }
            let (period, extension) = match &s.sextant {
                Some(x) => extension(x)?,
                None => (None, Extension::default()),
            };
            if !extension.dimensions.is_empty() && !matches!(sli, Sli::Events { .. } | Sli::Latency { .. }) {
                return Err((
                    "sextant.dimensions".into(),
                    "attribution dimensions need an events or latency SLI".into(),
                ));
            }
            Ok(Slo {
                id: id.clone(),
                service: spec.service.clone(),
                name: s.name.clone(),
                description: s.description.clone(),
                objective_percent: s.objective,
                labels,
                sli,
                period: period.unwrap_or(Period::Rolling(None)),
                budgeting: Budgeting::Occurrences,
                page_alert: page,
                ticket_alert: ticket,
                burn_rate_conditions: Vec::new(),
                extension,
                spec: SpecKind::SlothPrometheusV1,
                location: doc.error(pos, &format!("slos.{i}"), "").location,
            })
        })();
        match checked {
            Ok(slo) => slos.push(slo),
            Err((field, msg)) => errors.push(fail(&field, msg)),
        }
    }
    if errors.is_empty() {
        Ok(Some(SloDocument {
            spec: SpecKind::SlothPrometheusV1,
            slos,
        }))
    } else {
        Err(errors)
    }
}
