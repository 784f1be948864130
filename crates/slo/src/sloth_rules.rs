//! The Prometheus rules Sloth v0.16 generates for an SLO: SLI recordings per window,
//! metadata recordings, and the page and ticket multi-window multi-burn-rate alerts,
//! with Sloth's group names, record names, labels and expression text.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::gofmt::{format_plain, go_float, prom_duration};
use crate::model::{Period, Sli, Slo, SloDocument};
use crate::template;
use crate::windows::{AlertWindows, WindowCatalog, WindowPair};

/// A group of generated rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleGroup {
    /// `sloth-slo-sli-recordings-<id>` and the like.
    pub name: String,
    /// The rules.
    pub rules: Vec<GeneratedRule>,
}

/// A recording or alerting rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum GeneratedRule {
    /// A recording rule.
    Record {
        /// Record name.
        record: String,
        /// Expression.
        expr: String,
        /// Labels.
        labels: BTreeMap<String, String>,
    },
    /// An alerting rule (Sloth's have no `for`).
    Alert {
        /// Alert name.
        alert: String,
        /// Expression.
        expr: String,
        /// Labels.
        labels: BTreeMap<String, String>,
        /// Annotations.
        annotations: BTreeMap<String, String>,
    },
}

/// What `sloth generate` is given besides the spec.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// `--default-slo-period` (30d).
    pub default_period: Duration,
    /// `--slo-period-windows-path`, or the built-in catalog.
    pub windows: WindowCatalog,
    /// `--extra-labels`: added to every recording rule's labels, winning.
    pub extra_labels: BTreeMap<String, String>,
    /// `sloth_version` of `sloth_slo_info`.
    pub version: String,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            default_period: Duration::from_secs(30 * 86400),
            windows: WindowCatalog::default(),
            extra_labels: BTreeMap::new(),
            version: concat!("sextant-", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// The period of a rolling SLO, after the default.
pub fn rolling_period(slo: &Slo, default: Duration) -> Result<Duration, String> {
    match &slo.period {
        Period::Rolling(p) => Ok(p.unwrap_or(default)),
        Period::Calendar { .. } => Err(format!(
            "SLO {:?} has a calendar period, which Sloth's rules cannot express (they use a rolling range)",
            slo.id
        )),
    }
}

/// `{sloth_id="...", sloth_service="...", sloth_slo="..."}` as prometheus/common prints
/// a label set: sorted, `", "` between pairs.
fn id_selector(slo: &Slo) -> String {
    format!(
        "{{sloth_id={:?}, sloth_service={:?}, sloth_slo={:?}}}",
        slo.id, slo.service, slo.name
    )
}

/// The SLI's error ratio over `window`, as Sloth writes it.
pub fn sli_expr(sli: &Sli, window: &str) -> Result<String, String> {
    let events = |error: &str, total: &str| template::render(&format!("({error})\n/\n({total})\n"), window);
    match sli {
        Sli::Events {
            error_query,
            total_query,
        } => events(error_query, total_query),
        Sli::Raw { error_ratio_query } => template::render(&format!("({error_ratio_query})"), window),
        Sli::Latency {
            metric,
            selector,
            threshold_seconds,
        } => {
            let (total, good) = latency_queries(metric, selector, *threshold_seconds);
            events(&format!("{total} - {good}"), &total)
        }
        Sli::Ratio { good, bad, total } => match (good, bad) {
            (_, Some(bad)) => events(bad, total),
            (Some(good), None) => events(&format!("({total}) - ({good})"), total),
            (None, None) => Err("a ratio SLI needs good or bad events".into()),
        },
        Sli::Threshold { query, op, value } => {
            let bad_op = match op.as_str() {
                "lt" => ">=",
                "lte" => ">",
                "gt" => "<=",
                _ => "<",
            };
            template::render(&format!("(({query}) {bad_op} bool {})", go_float(*value)), window)
        }
    }
}

/// The total and good (faster than the threshold) request rates of a latency SLI.
pub fn latency_queries(metric: &str, selector: &str, threshold: f64) -> (String, String) {
    let sel = if selector.trim().is_empty() {
        String::new()
    } else {
        format!("{selector},")
    };
    let total = format!("sum(rate({metric}_count{{{}}}[{{{{.window}}}}]))", selector.trim());
    let good = format!(
        "sum(rate({metric}_bucket{{{sel}le=\"{}\"}}[{{{{.window}}}}]))",
        format_plain(threshold)
    );
    (total, good)
}

/// Every rule group Sloth generates for the SLOs of `doc`, in Sloth's order.
pub fn generate(doc: &SloDocument, opts: &GenerateOptions) -> Result<Vec<RuleGroup>, String> {
    let mut groups = Vec::new();
    for slo in &doc.slos {
        let period = rolling_period(slo, opts.default_period)?;
        let windows = opts.windows.get(period)?;
        groups.extend(slo_groups(slo, windows, opts)?);
    }
    if groups.is_empty() {
        return Err("0 SLO Prometheus rules generated".into());
    }
    Ok(groups)
}

fn slo_groups(slo: &Slo, windows: &AlertWindows, opts: &GenerateOptions) -> Result<Vec<RuleGroup>, String> {
    let id = id_selector(slo);
    let mut slo_labels = slo.labels.clone();
    slo_labels.extend(opts.extra_labels.clone());
    let id_labels = BTreeMap::from([
        ("sloth_id".to_owned(), slo.id.clone()),
        ("sloth_service".to_owned(), slo.service.clone()),
        ("sloth_slo".to_owned(), slo.name.clone()),
    ]);
    let with_slo_labels = |mut l: BTreeMap<String, String>| {
        l.extend(slo_labels.clone());
        l
    };
    let period = windows.period;
    let period_name = prom_duration(period);
    let source = prom_duration(windows.page_quick.short);

    let mut sli_rules = Vec::new();
    for w in windows.sli_windows() {
        let name = prom_duration(w);
        let mut labels = id_labels.clone();
        labels.insert("sloth_window".into(), name.clone());
        sli_rules.push(GeneratedRule::Record {
            record: format!("slo:sli_error:ratio_rate{name}"),
            expr: sli_expr(&slo.sli, &name)?,
            labels: with_slo_labels(labels),
        });
    }
    let mut labels = id_labels.clone();
    labels.insert("sloth_window".into(), period_name.clone());
    sli_rules.push(GeneratedRule::Record {
        record: format!("slo:sli_error:ratio_rate{period_name}"),
        expr: format!(
            "sum_over_time(slo:sli_error:ratio_rate{source}{id}[{period_name}])\n/ ignoring (sloth_window)\ncount_over_time(slo:sli_error:ratio_rate{source}{id}[{period_name}])\n"
        ),
        labels: with_slo_labels(labels),
    });

    let objective = go_float(slo.objective_percent / 100.0);
    let meta = |record: &str, expr: String| GeneratedRule::Record {
        record: record.to_owned(),
        expr,
        labels: with_slo_labels(id_labels.clone()),
    };
    let burn = |window: &str| {
        format!(
            "slo:sli_error:ratio_rate{window}{id}\n/ on(sloth_id, sloth_slo, sloth_service) group_left\nslo:error_budget:ratio{id}\n"
        )
    };
    let mut info_labels = with_slo_labels(id_labels.clone());
    info_labels.extend([
        ("sloth_version".to_owned(), opts.version.clone()),
        ("sloth_mode".to_owned(), slo.spec.generate_mode().to_owned()),
        ("sloth_spec".to_owned(), slo.spec.label().to_owned()),
        ("sloth_objective".to_owned(), format_plain(slo.objective_percent)),
    ]);
    let meta_rules = vec![
        meta("slo:objective:ratio", format!("vector({objective})")),
        meta("slo:error_budget:ratio", format!("vector(1-{objective})")),
        meta(
            "slo:time_period:days",
            format!("vector({})", go_float(period.as_secs_f64() / 3600.0 / 24.0)),
        ),
        meta("slo:current_burn_rate:ratio", burn(&source)),
        meta("slo:period_burn_rate:ratio", burn(&period_name)),
        meta(
            "slo:period_error_budget_remaining:ratio",
            format!("1 - slo:period_burn_rate:ratio{id}"),
        ),
        GeneratedRule::Record {
            record: "sloth_slo_info".into(),
            expr: "vector(1)".into(),
            labels: info_labels,
        },
    ];

    let budget = go_float((100.0 - slo.objective_percent) / 100.0);
    let condition = |quick: &WindowPair, slow: &WindowPair| {
        let one = |p: &WindowPair, w: Duration| {
            format!(
                "max(slo:sli_error:ratio_rate{}{id} > ({} * {budget})) without (sloth_window)",
                prom_duration(w),
                go_float(p.factor(period))
            )
        };
        format!(
            "(\n    {}\n    and\n    {}\n)\nor\n(\n    {}\n    and\n    {}\n)\n",
            one(quick, quick.short),
            one(quick, quick.long),
            one(slow, slow.short),
            one(slow, slow.long)
        )
    };
    let mut alert_rules = Vec::new();
    for (spec, quick, slow) in [
        (&slo.page_alert, &windows.page_quick, &windows.page_slow),
        (&slo.ticket_alert, &windows.ticket_quick, &windows.ticket_slow),
    ] {
        if let Some(a) = spec {
            alert_rules.push(GeneratedRule::Alert {
                alert: a.name.clone(),
                expr: condition(quick, slow),
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
            });
        }
    }
    let mut groups = vec![
        RuleGroup {
            name: format!("sloth-slo-sli-recordings-{}", slo.id),
            rules: sli_rules,
        },
        RuleGroup {
            name: format!("sloth-slo-meta-recordings-{}", slo.id),
            rules: meta_rules,
        },
    ];
    if !alert_rules.is_empty() {
        groups.push(RuleGroup {
            name: format!("sloth-slo-alerts-{}", slo.id),
            rules: alert_rules,
        });
    }
    Ok(groups)
}

/// A Prometheus rule file: one YAML document per spec document, as Sloth writes them.
pub fn to_yaml(documents: &[Vec<RuleGroup>]) -> String {
    #[derive(Serialize)]
    struct File<'a> {
        groups: &'a [RuleGroup],
    }
    let mut out = String::new();
    for groups in documents {
        out.push_str("---\n# Generated by Sextant (sextant slo generate), equivalent to Sloth v0.16's output.\n# DO NOT EDIT.\n\n");
        out.push_str(&serde_yaml::to_string(&File { groups }).expect("rule groups serialize"));
    }
    out
}
