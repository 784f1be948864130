//! What an SLO is, whichever spec format it came from.

use std::collections::BTreeMap;
use std::time::Duration;

/// Which format a spec was written in (Sloth's `sloth_spec` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecKind {
    /// Sloth's `version: prometheus/v1`.
    SlothPrometheusV1,
    /// `apiVersion: openslo/v1alpha`, read as Sloth reads it.
    OpenSloV1Alpha,
    /// `apiVersion: openslo/v1`.
    OpenSloV1,
}

impl SpecKind {
    /// The value of Sloth's `sloth_spec` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::SlothPrometheusV1 => "prometheus/v1",
            Self::OpenSloV1Alpha => "openslo/v1alpha",
            Self::OpenSloV1 => "openslo/v1",
        }
    }

    /// The value of Sloth's `sloth_mode` label for `sloth generate` on this input.
    pub fn generate_mode(self) -> &'static str {
        match self {
            Self::SlothPrometheusV1 => "cli-gen-prom",
            Self::OpenSloV1Alpha | Self::OpenSloV1 => "cli-gen-openslo",
        }
    }
}

/// How the good and bad events of an SLO are measured.
#[derive(Debug, Clone, PartialEq)]
pub enum Sli {
    /// Error and total event rates, PromQL with `{{.window}}` for the range.
    Events {
        /// Rate of bad events.
        error_query: String,
        /// Rate of all events.
        total_query: String,
    },
    /// An error ratio, PromQL with `{{.window}}`.
    Raw {
        /// The ratio of bad events.
        error_ratio_query: String,
    },
    /// OpenSLO `ratioMetric`: good or bad events over total events (PromQL queries,
    /// counts or rates as written).
    Ratio {
        /// Good events, when given.
        good: Option<String>,
        /// Bad events, when given instead of good.
        bad: Option<String>,
        /// All events.
        total: String,
    },
    /// OpenSLO `thresholdMetric`: a value compared with the objective's threshold;
    /// a time slice whose value passes is good.
    Threshold {
        /// The value, PromQL.
        query: String,
        /// `lt`, `lte`, `gt` or `gte`.
        op: String,
        /// The threshold.
        value: f64,
    },
    /// Requests slower than a threshold are errors, from a classic histogram.
    Latency {
        /// The histogram's name without `_bucket`.
        metric: String,
        /// Label matchers of the requests counted, PromQL selector syntax without braces.
        selector: String,
        /// Upper bound (seconds) a good request stays within: a bucket boundary.
        threshold_seconds: f64,
    },
}

/// One of Sloth's two alerts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertSpec {
    /// Alert name (both alerts share it in Sloth).
    pub name: String,
    /// Labels, the alert-specific ones merged over the common ones.
    pub labels: BTreeMap<String, String>,
    /// Annotations, likewise.
    pub annotations: BTreeMap<String, String>,
}

/// How the error budget is counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budgeting {
    /// A fraction of events may be bad.
    Occurrences,
    /// A fraction of time slices may be bad; a slice is good when its good ratio is at
    /// least `slice_target`.
    Timeslices {
        /// Good ratio a slice needs.
        slice_target: f64,
        /// Length of a slice.
        slice: Duration,
    },
}

/// The period an SLO is measured over.
#[derive(Debug, Clone, PartialEq)]
pub enum Period {
    /// The last `duration`, rolling; `None` is the configured default (Sloth's
    /// `--default-slo-period`).
    Rolling(Option<Duration>),
    /// Calendar months or weeks in a time zone.
    Calendar {
        /// Month or week.
        unit: CalendarUnit,
        /// IANA time zone name.
        time_zone: String,
        /// When periods start (civil date-time in the zone), OpenSLO's
        /// `calendar.startTime`; `None`: the 1st of the month, or Monday, at midnight.
        start: Option<String>,
    },
}

/// Unit of a calendar period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalendarUnit {
    /// Calendar month.
    Month,
    /// Calendar week (from Monday).
    Week,
}

/// An OpenSLO burn-rate alert condition.
#[derive(Debug, Clone, PartialEq)]
pub struct BurnRateCondition {
    /// The condition's name.
    pub name: String,
    /// `severity` as written (page, ticket, critical, ...).
    pub severity: String,
    /// Burn rate threshold (`op: gte` or `gt`).
    pub threshold: f64,
    /// The window the burn rate is measured over.
    pub lookback: Duration,
    /// How long the condition must hold.
    pub alert_after: Duration,
}

/// One multi-window condition of a burn-rate tier: the error ratio over `long` and
/// over `short` both above `burn_rate` times the error budget (Sloth's `>`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TierWindow {
    /// The long window.
    pub long: Duration,
    /// The short window, which makes the alert reset quickly once the burn stops;
    /// `None` for single-window conditions (OpenSLO's `lookbackWindow`).
    pub short: Option<Duration>,
    /// How the threshold is given.
    pub threshold: BurnThreshold,
}

/// A burn-rate threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BurnThreshold {
    /// A burn rate, used as written.
    BurnRate(f64),
    /// A share of the period's error budget consumed within the long window (Sloth's
    /// `errorBudgetPercent`): the burn rate is `percent * period / 100 / long`, so it
    /// scales with the period as Sloth scales it.
    BudgetPercent(f64),
}

impl TierWindow {
    /// The burn rate above which this condition holds, for an SLO period.
    pub fn burn_rate(&self, period: Duration) -> f64 {
        match self.threshold {
            BurnThreshold::BurnRate(b) => b,
            BurnThreshold::BudgetPercent(p) => {
                p * (period.as_secs_f64() / 3600.0) / 100.0 / (self.long.as_secs_f64() / 3600.0)
            }
        }
    }
}

/// An alerting tier (page, ticket, ...): fires when any of its conditions holds.
#[derive(Debug, Clone, PartialEq)]
pub struct TierSpec {
    /// `page`, `ticket`, or an OpenSLO condition's name.
    pub name: String,
    /// `sloth_severity` of the alerts this tier becomes.
    pub severity: String,
    /// Its conditions (any one fires the tier).
    pub windows: Vec<TierWindow>,
    /// Fire only while less than this fraction of the period's budget remains.
    pub below_budget_remaining: Option<f64>,
    /// How long a condition must hold before the tier fires (OpenSLO `alertAfter`).
    pub for_: Duration,
}

/// Sextant's additions to a spec (a `sextant:` block in Sloth specs).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Extension {
    /// Labels to attribute errors to (e.g. `route`, `pod`, `code`).
    pub dimensions: Vec<String>,
    /// Coverage below which windows are `unknown`; `None` is the engine's default.
    pub coverage_floor: Option<f64>,
    /// Tiers replacing the defaults from the window catalog.
    pub tiers: Option<Vec<TierSpec>>,
}

/// One SLO.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// `sloth_id`: unique.
    pub id: String,
    /// `sloth_service`.
    pub service: String,
    /// `sloth_slo`.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Objective in percent (99.9).
    pub objective_percent: f64,
    /// Labels of every series of the SLO (spec labels, the SLO's own over them).
    pub labels: BTreeMap<String, String>,
    /// What is measured.
    pub sli: Sli,
    /// Over what time.
    pub period: Period,
    /// Events or time slices.
    pub budgeting: Budgeting,
    /// The page alert, unless disabled.
    pub page_alert: Option<AlertSpec>,
    /// The ticket alert, unless disabled.
    pub ticket_alert: Option<AlertSpec>,
    /// OpenSLO burn-rate conditions of the SLO's alert policies.
    pub burn_rate_conditions: Vec<BurnRateCondition>,
    /// Sextant's additions.
    pub extension: Extension,
    /// Where the spec came from.
    pub spec: SpecKind,
    /// `file:line` of the SLO in its spec, for messages.
    pub location: String,
}

impl Slo {
    /// Objective as a ratio (0.999).
    pub fn objective_ratio(&self) -> f64 {
        self.objective_percent / 100.0
    }
}

/// The SLOs of one YAML document (Sloth generates one output document per input one).
#[derive(Debug, Clone, PartialEq)]
pub struct SloDocument {
    /// The format.
    pub spec: SpecKind,
    /// Its SLOs, in order.
    pub slos: Vec<Slo>,
}
