//! OpenSLO: `openslo/v1alpha` as Sloth v0.16 reads it (one Sloth SLO per objective,
//! `1 - good/total` as a raw error ratio, no alerts), and `openslo/v1`: `SLO` with an
//! inline `indicator` or an `indicatorRef` to an `SLI` document of the same file,
//! rolling or calendar `timeWindow`, `Occurrences` or time-slice budgeting, several
//! objectives, and `AlertPolicy`/`AlertCondition` burn-rate conditions.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use sextant_model::yaml::Positions;

use super::sloth::latency;
use super::{Document, check_labels, valid_name};
use crate::error::Result;
use crate::model::{Budgeting, BurnRateCondition, CalendarUnit, Period, Sli, Slo, SloDocument, SpecKind};

// ---- v1alpha, as Sloth reads it ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AlphaDoc {
    #[allow(dead_code)]
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: AlphaSpec,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Metadata {
    #[serde(default)]
    name: String,
    #[serde(default)]
    #[allow(dead_code)]
    display_name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    #[allow(dead_code)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AlphaSpec {
    #[serde(default)]
    service: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    #[allow(dead_code)]
    budgeting_method: String,
    #[serde(default)]
    objectives: Vec<AlphaObjective>,
    #[serde(default)]
    time_windows: Vec<AlphaWindow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AlphaObjective {
    ratio_metrics: Option<AlphaRatio>,
    #[serde(default)]
    target: f64,
    #[serde(default)]
    #[allow(dead_code)]
    display_name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlphaRatio {
    good: AlphaQuery,
    total: AlphaQuery,
    #[serde(default)]
    #[allow(dead_code)]
    incremental: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AlphaQuery {
    #[serde(default)]
    source: String,
    #[serde(default)]
    query_type: String,
    #[serde(default)]
    query: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AlphaWindow {
    count: u64,
    unit: String,
    #[serde(default)]
    #[allow(dead_code)]
    is_rolling: bool,
    #[allow(dead_code)]
    calendar: Option<serde_yaml::Value>,
}

/// Sloth's raw error ratio from good and total queries.
fn one_minus_good_over_total(good: &str, total: &str) -> String {
    format!("\n  1 - (\n    (\n      {good}\n    )\n    /\n    (\n      {total}\n    )\n  )\n")
}

pub(super) fn parse_v1alpha(doc: &Document, pos: &Positions) -> Result<Option<SloDocument>> {
    let d: AlphaDoc = serde_yaml::from_str(&doc.text).map_err(|e| vec![doc.error(pos, "", e.to_string())])?;
    if d.kind != "SLO" {
        return Err(vec![doc.error(
            pos,
            "kind",
            format!("unsupported kind {:?} for openslo/v1alpha (SLO)", d.kind),
        )]);
    }
    let err = |path: &str, m: String| vec![doc.error(pos, path, m)];
    let period = match d.spec.time_windows.as_slice() {
        [] => None,
        [w] if w.unit.eq_ignore_ascii_case("day") => Some(Duration::from_secs(w.count * 86400)),
        [w] => {
            return Err(err(
                "spec.timeWindows.0.unit",
                format!("unsupported time window unit {:?} (Day)", w.unit),
            ));
        }
        _ => return Err(err("spec.timeWindows", "only one time window is supported".into())),
    };
    let mut slos = Vec::new();
    let mut errors = Vec::new();
    for (i, o) in d.spec.objectives.iter().enumerate() {
        let name = format!("{}-{i}", d.metadata.name);
        let id = format!("{}-{name}", d.spec.service);
        let at = format!("spec.objectives.{i}");
        let Some(r) = &o.ratio_metrics else {
            errors.push(doc.error(pos, &at, format!("invalid slo {id:?}: missing ratioMetrics")));
            continue;
        };
        for (what, q) in [("good", &r.good), ("total", &r.total)] {
            if !matches!(q.source.as_str(), "prometheus" | "sloth") || q.query_type != "promql" {
                errors.push(doc.error(
                    pos,
                    &format!("{at}.ratioMetrics.{what}"),
                    format!(
                        "invalid slo {id:?}: {what} query: source must be prometheus or sloth and queryType promql"
                    ),
                ));
            }
        }
        let raw = one_minus_good_over_total(&r.good.query, &r.total.query);
        let objective = o.target * 100.0;
        let checked = (|| -> std::result::Result<Sli, String> {
            if !valid_name(&id) || !valid_name(&name) || !valid_name(&d.spec.service) {
                return Err("invalid SLO name: name must start and end with an alphanumeric and can only contain alphanumeric, '.', '_', and '-'".into());
            }
            if !(objective > 0.0 && objective <= 100.0) {
                return Err("objective must >0 and <=100".into());
            }
            super::sloth::check_query("error ratio", &raw).map_err(|e| format!("invalid SLI: {e}"))?;
            Ok(Sli::Raw { error_ratio_query: raw })
        })();
        match checked {
            Ok(sli) => slos.push(Slo {
                id,
                service: d.spec.service.clone(),
                name,
                description: d.spec.description.clone(),
                objective_percent: objective,
                labels: BTreeMap::new(),
                sli,
                period: Period::Rolling(period),
                budgeting: Budgeting::Occurrences,
                page_alert: None,
                ticket_alert: None,
                burn_rate_conditions: Vec::new(),
                extension: Default::default(),
                spec: SpecKind::OpenSloV1Alpha,
                location: doc.error(pos, &at, "").location,
            }),
            Err(m) => errors.push(doc.error(pos, &at, format!("invalid slo {id:?}: {m}"))),
        }
    }
    if slos.is_empty() && errors.is_empty() {
        errors.push(doc.error(pos, "spec.objectives", "at least one objective is required"));
    }
    if errors.is_empty() {
        Ok(Some(SloDocument {
            spec: SpecKind::OpenSloV1Alpha,
            slos,
        }))
    } else {
        Err(errors)
    }
}

// ---- v1 ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct V1Doc {
    #[allow(dead_code)]
    api_version: String,
    kind: String,
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    spec: serde_yaml::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct V1Slo {
    #[serde(default)]
    description: String,
    #[serde(default)]
    service: String,
    indicator: Option<V1Indicator>,
    indicator_ref: Option<String>,
    #[serde(default)]
    time_window: Vec<V1Window>,
    #[serde(default)]
    budgeting_method: String,
    #[serde(default)]
    objectives: Vec<V1Objective>,
    #[serde(default, deserialize_with = "null_as_empty")]
    alert_policies: Vec<serde_yaml::Value>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<serde_yaml::Value>, D::Error> {
    Ok(Option::<Vec<serde_yaml::Value>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct V1Indicator {
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Metadata,
    spec: V1SliSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct V1SliSpec {
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    threshold_metric: Option<V1MetricSource>,
    ratio_metric: Option<V1Ratio>,
    /// Sextant's latency SLI, for histograms.
    latency: Option<V1Latency>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct V1Latency {
    metric: String,
    #[serde(default)]
    selector: String,
    threshold: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct V1Ratio {
    #[serde(default)]
    #[allow(dead_code)]
    counter: bool,
    good: Option<V1MetricSource>,
    bad: Option<V1MetricSource>,
    total: Option<V1MetricSource>,
    #[allow(dead_code)]
    raw_type: Option<String>,
    raw: Option<V1MetricSource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct V1MetricSource {
    metric_source: V1Source,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct V1Source {
    #[allow(dead_code)]
    metric_source_ref: Option<String>,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    spec: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct V1Window {
    duration: String,
    #[serde(default)]
    is_rolling: bool,
    calendar: Option<V1Calendar>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct V1Calendar {
    start_time: Option<serde_yaml::Value>,
    time_zone: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct V1Objective {
    #[serde(default)]
    display_name: String,
    op: Option<String>,
    value: Option<f64>,
    target: Option<f64>,
    target_percent: Option<f64>,
    time_slice_target: Option<f64>,
    time_slice_window: Option<String>,
    #[allow(dead_code)]
    indicator: Option<serde_yaml::Value>,
    #[allow(dead_code)]
    indicator_ref: Option<String>,
    #[allow(dead_code)]
    composite_weight: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct V1AlertPolicy {
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    #[serde(default)]
    #[allow(dead_code)]
    alert_when_no_data: bool,
    #[serde(default)]
    #[allow(dead_code)]
    alert_when_resolved: bool,
    #[serde(default)]
    #[allow(dead_code)]
    alert_when_breaching: bool,
    #[serde(default)]
    conditions: Vec<serde_yaml::Value>,
    #[serde(default)]
    #[allow(dead_code)]
    notification_targets: Vec<serde_yaml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct V1AlertCondition {
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    #[serde(default)]
    severity: String,
    condition: V1Condition,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct V1Condition {
    kind: String,
    #[serde(default)]
    op: String,
    threshold: f64,
    lookback_window: String,
    #[serde(default)]
    alert_after: Option<String>,
}

/// An OpenSLO duration shorthand: a number and one of `m h d w M Q Y` (minutes, hours,
/// days, weeks, months, quarters, years). Rolling months are 30 days, quarters 90,
/// years 365.
fn shorthand(s: &str) -> std::result::Result<(u64, char), String> {
    let unit = s.chars().last().ok_or("empty duration")?;
    let n: u64 = s[..s.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (a number and one of m, h, d, w, M, Q, Y)"))?;
    if !"mhdwMQY".contains(unit) || n == 0 {
        return Err(format!(
            "invalid duration {s:?} (a number and one of m, h, d, w, M, Q, Y)"
        ));
    }
    Ok((n, unit))
}

fn shorthand_duration(s: &str) -> std::result::Result<Duration, String> {
    let (n, unit) = shorthand(s)?;
    let secs = match unit {
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        'w' => 7 * 86400,
        'M' => 30 * 86400,
        'Q' => 90 * 86400,
        _ => 365 * 86400,
    };
    Ok(Duration::from_secs(n * secs))
}

/// The PromQL of a metric source, or why it cannot be evaluated.
fn promql(src: &V1MetricSource) -> std::result::Result<String, String> {
    let s = &src.metric_source;
    if !s.kind.eq_ignore_ascii_case("prometheus") {
        return Err(format!(
            "metric source type {:?} cannot be evaluated: only prometheus (PromQL) sources are",
            s.kind
        ));
    }
    let q = s
        .spec
        .get("query")
        .or_else(|| s.spec.get("promql"))
        .and_then(serde_yaml::Value::as_str)
        .ok_or("a prometheus metric source needs spec.query")?;
    // OpenSLO queries carry their own ranges; `{{.window}}` is allowed too.
    let rendered = crate::template::render(q, "1m")?;
    sextant_promql::parse(&rendered).map_err(|e| format!("query {q:?}: {e}"))?;
    Ok(q.to_owned())
}

fn sli(spec: &V1SliSpec, objective: &V1Objective) -> std::result::Result<Sli, String> {
    let kinds = [
        spec.threshold_metric.is_some(),
        spec.ratio_metric.is_some(),
        spec.latency.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err("an SLI has exactly one of thresholdMetric, ratioMetric or latency".into());
    }
    if let Some(t) = &spec.threshold_metric {
        let op = objective.op.clone().ok_or("a thresholdMetric objective needs op")?;
        if !matches!(op.as_str(), "lt" | "lte" | "gt" | "gte") {
            return Err(format!("invalid op {op:?} (lt, lte, gt, gte)"));
        }
        let value = objective.value.ok_or("a thresholdMetric objective needs value")?;
        return Ok(Sli::Threshold {
            query: promql(t).map_err(|e| format!("thresholdMetric: {e}"))?,
            op,
            value,
        });
    }
    if let Some(l) = &spec.latency {
        return latency(&l.metric, &l.selector, l.threshold);
    }
    let r = spec.ratio_metric.as_ref().expect("one kind is set");
    if r.raw.is_some() {
        return Err("ratioMetric raw is not supported: give good or bad, and total".into());
    }
    let total = r.total.as_ref().ok_or("ratioMetric needs total")?;
    let (good, bad) = match (&r.good, &r.bad) {
        (Some(g), None) => (Some(promql(g).map_err(|e| format!("ratioMetric good: {e}"))?), None),
        (None, Some(b)) => (None, Some(promql(b).map_err(|e| format!("ratioMetric bad: {e}"))?)),
        _ => return Err("ratioMetric needs exactly one of good and bad".into()),
    };
    Ok(Sli::Ratio {
        good,
        bad,
        total: promql(total).map_err(|e| format!("ratioMetric total: {e}"))?,
    })
}

fn period(windows: &[V1Window]) -> std::result::Result<Period, String> {
    let [w] = windows else {
        return Err("exactly one timeWindow is required".into());
    };
    if w.is_rolling {
        return shorthand_duration(&w.duration).map(|d| Period::Rolling(Some(d)));
    }
    let (n, unit) = shorthand(&w.duration)?;
    let unit = match (n, unit) {
        (1, 'M') => CalendarUnit::Month,
        (1, 'w') => CalendarUnit::Week,
        _ => {
            return Err(format!(
                "calendar timeWindow {:?}: Sextant supports 1M (a calendar month) and 1w (a calendar week); in OpenSLO's shorthand m is minutes",
                w.duration
            ));
        }
    };
    let cal = w
        .calendar
        .as_ref()
        .ok_or("a calendar timeWindow needs calendar.timeZone")?;
    let start = match &cal.start_time {
        None => None,
        Some(serde_yaml::Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(format!(
                "calendar.startTime must be a date-time like \"2022-01-01 12:00:00\", not {other:?}"
            ));
        }
    };
    crate::calendar::Calendar::new(unit, &cal.time_zone, start.as_deref())?;
    Ok(Period::Calendar {
        unit,
        time_zone: cal.time_zone.clone(),
        start,
    })
}

fn burn_rate(name: &str, spec: &V1AlertCondition) -> std::result::Result<BurnRateCondition, String> {
    if spec.condition.kind != "burnrate" {
        return Err(format!(
            "alert condition kind {:?}: only burnrate is supported",
            spec.condition.kind
        ));
    }
    if !matches!(spec.condition.op.as_str(), "gte" | "gt" | "") {
        return Err(format!("burnrate op {:?}: gte or gt", spec.condition.op));
    }
    Ok(BurnRateCondition {
        name: name.to_owned(),
        severity: spec.severity.clone(),
        threshold: spec.condition.threshold,
        lookback: shorthand_duration(&spec.condition.lookback_window)?,
        alert_after: match &spec.condition.alert_after {
            Some(a) => shorthand_duration(a)?,
            None => Duration::ZERO,
        },
    })
}

/// OpenSLO v1 documents of a file are read together: `SLO`s may name `SLI`s,
/// `AlertPolicy`s and `AlertCondition`s defined in other documents of the file.
pub(super) fn parse_v1(doc: &Document, pos: &Positions) -> Result<Option<SloDocument>> {
    let d: V1Doc = serde_yaml::from_str(&doc.text).map_err(|e| vec![doc.error(pos, "", e.to_string())])?;
    let err = |path: &str, m: String| vec![doc.error(pos, path, m)];
    match d.kind.as_str() {
        "SLO" => {}
        "SLI" | "AlertPolicy" | "AlertCondition" | "Service" | "DataSource" | "AlertNotificationTarget" => {
            // Read when an SLO refers to them (see `resolve_v1`).
            return Ok(None);
        }
        other => return Err(err("kind", format!("unknown OpenSLO kind {other:?}"))),
    }
    let mut spec: V1Slo = serde_yaml::from_value(d.spec.clone()).map_err(|e| err("spec", format!("SLO spec: {e}")))?;
    let name = &d.metadata.name;
    let indicator_spec: V1SliSpec = match (spec.indicator.take(), &spec.indicator_ref) {
        (Some(i), None) => i.spec,
        (None, Some(r)) => match find_sli(doc, r) {
            Some(s) => s.map_err(|e| err("spec.indicatorRef", e))?,
            None => return Err(err("spec.indicatorRef", format!("no SLI named {r:?} in this file"))),
        },
        _ => {
            return Err(err(
                "spec",
                "an SLO needs exactly one of indicator and indicatorRef".into(),
            ));
        }
    };
    let period = period(&spec.time_window).map_err(|e| err("spec.timeWindow", e))?;
    let mut conditions = Vec::new();
    for (i, p) in spec.alert_policies.iter().enumerate() {
        let at = format!("spec.alertPolicies.{i}");
        let policy: V1AlertPolicy = match p {
            serde_yaml::Value::String(r) => match find_kind(doc, "AlertPolicy", r) {
                Some(v) => serde_yaml::from_value(v).map_err(|e| err(&at, format!("AlertPolicy {r:?}: {e}")))?,
                None => return Err(err(&at, format!("no AlertPolicy named {r:?} in this file"))),
            },
            v => {
                let spec = v.get("spec").cloned().unwrap_or_else(|| v.clone());
                serde_yaml::from_value(spec).map_err(|e| err(&at, format!("AlertPolicy: {e}")))?
            }
        };
        for (j, c) in policy.conditions.iter().enumerate() {
            let at = format!("{at}.conditions.{j}");
            let (cname, cond): (String, V1AlertCondition) =
                if let Some(r) = c.get("conditionRef").and_then(|v| v.as_str()) {
                    match find_kind(doc, "AlertCondition", r) {
                        Some(v) => (
                            r.to_owned(),
                            serde_yaml::from_value(v).map_err(|e| err(&at, format!("AlertCondition {r:?}: {e}")))?,
                        ),
                        None => return Err(err(&at, format!("no AlertCondition named {r:?} in this file"))),
                    }
                } else {
                    let n = c
                        .get("metadata")
                        .and_then(|m| m.get("name"))
                        .and_then(|n| n.as_str())
                        .unwrap_or("")
                        .to_owned();
                    let spec = c.get("spec").cloned().unwrap_or_else(|| c.clone());
                    (
                        n,
                        serde_yaml::from_value(spec).map_err(|e| err(&at, format!("AlertCondition: {e}")))?,
                    )
                };
            conditions.push(burn_rate(&cname, &cond).map_err(|e| err(&at, e))?);
        }
    }
    if spec.objectives.is_empty() {
        return Err(err("spec.objectives", "at least one objective is required".into()));
    }
    let mut slos = Vec::new();
    let mut errors = Vec::new();
    let single = spec.objectives.len() == 1;
    for (i, o) in spec.objectives.iter().enumerate() {
        let slo_name = if single { name.clone() } else { format!("{name}-{i}") };
        let id = format!("{}-{slo_name}", spec.service);
        let at = format!("spec.objectives.{i}");
        let built = (|| -> std::result::Result<Slo, String> {
            if !valid_name(&id) || !valid_name(&slo_name) || !valid_name(&spec.service) {
                return Err("invalid SLO name: name must start and end with an alphanumeric and can only contain alphanumeric, '.', '_', and '-'".into());
            }
            let objective = match (o.target, o.target_percent) {
                (Some(t), None) => t * 100.0,
                (None, Some(p)) => p,
                _ => return Err("an objective needs exactly one of target and targetPercent".into()),
            };
            if !(objective > 0.0 && objective <= 100.0) {
                return Err("objective must >0 and <=100".into());
            }
            let budgeting = match spec.budgeting_method.as_str() {
                "Occurrences" | "" => Budgeting::Occurrences,
                "Timeslices" | "RatioTimeslices" => {
                    let window = o
                        .time_slice_window
                        .as_deref()
                        .ok_or("time-slice budgeting needs timeSliceWindow")?;
                    let slice = shorthand_duration(window)?;
                    let slice_target = match (spec.budgeting_method.as_str(), o.time_slice_target) {
                        ("Timeslices", Some(t)) => t,
                        ("Timeslices", None) => return Err("Timeslices budgeting needs timeSliceTarget".into()),
                        // RatioTimeslices: a slice is good when its ratio meets the objective.
                        (_, t) => t.unwrap_or(objective / 100.0),
                    };
                    if !(slice_target > 0.0 && slice_target <= 1.0) {
                        return Err(format!("timeSliceTarget {slice_target} must be in (0, 1]"));
                    }
                    Budgeting::Timeslices { slice_target, slice }
                }
                other => {
                    return Err(format!(
                        "unknown budgetingMethod {other:?} (Occurrences, Timeslices, RatioTimeslices)"
                    ));
                }
            };
            let labels = d.metadata.labels.clone();
            check_labels(&labels)?;
            Ok(Slo {
                id: id.clone(),
                service: spec.service.clone(),
                name: slo_name.clone(),
                description: if o.display_name.is_empty() {
                    spec.description.clone()
                } else {
                    format!("{} ({})", spec.description, o.display_name)
                },
                objective_percent: objective,
                labels,
                sli: sli(&indicator_spec, o)?,
                period: period.clone(),
                budgeting,
                page_alert: None,
                ticket_alert: None,
                burn_rate_conditions: conditions.clone(),
                extension: Default::default(),
                spec: SpecKind::OpenSloV1,
                location: doc.error(pos, &at, "").location,
            })
        })();
        match built {
            Ok(s) => slos.push(s),
            Err(m) => errors.push(doc.error(pos, &at, format!("invalid slo {id:?}: {m}"))),
        }
    }
    if errors.is_empty() {
        Ok(Some(SloDocument {
            spec: SpecKind::OpenSloV1,
            slos,
        }))
    } else {
        Err(errors)
    }
}

/// The `spec` of the document of this file whose kind and name are given.
fn find_kind(doc: &Document, kind: &str, name: &str) -> Option<serde_yaml::Value> {
    doc.siblings.iter().find_map(|text| {
        let v: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
        let matches = v.get("kind").and_then(|k| k.as_str()) == Some(kind)
            && v.get("metadata").and_then(|m| m.get("name")).and_then(|n| n.as_str()) == Some(name);
        matches.then(|| v.get("spec").cloned().unwrap_or_default())
    })
}

fn find_sli(doc: &Document, name: &str) -> Option<std::result::Result<V1SliSpec, String>> {
    find_kind(doc, "SLI", name).map(|v| serde_yaml::from_value(v).map_err(|e| format!("SLI {name:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_openslo_shorthand() {
        assert_eq!(shorthand_duration("2w").unwrap(), Duration::from_secs(14 * 86400));
        assert_eq!(shorthand_duration("1M").unwrap(), Duration::from_secs(30 * 86400));
        assert_eq!(shorthand_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(shorthand_duration("1x").is_err());
        assert!(shorthand_duration("w").is_err());
    }
}
