//! What the engine reports about each SLO: the JSON of `/api/sextant/v1/slos`, with
//! OpenAPI schemas derived from these types. Times are RFC 3339 strings; ratios and
//! rates that are undefined (no data, no traffic) are `null`.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

/// Health of an SLO or of one of its tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Not burning faster than the tier allows.
    Ok,
    /// A condition holds, not yet for the tier's `for` duration.
    Pending,
    /// Burning: a condition holds (for the tier's `for` duration).
    Firing,
    /// Too little data (coverage below the floor) to say; the state neither fires nor
    /// resolves until coverage returns.
    Unknown,
}

/// One SLO in the list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SloSummary {
    /// `sloth_id`.
    pub id: String,
    /// `sloth_service`.
    pub service: String,
    /// `sloth_slo`.
    pub name: String,
    /// Objective as a ratio (0.999).
    pub objective: f64,
    /// The period: `30d` (rolling) or `month`/`week` (calendar).
    pub period: String,
    /// The worst tier state (firing > pending > unknown > ok).
    pub state: State,
    /// Fraction of the period's error budget left (negative when overspent).
    pub budget_remaining: Option<f64>,
    /// Burn rate over the shortest window (Sloth's `slo:current_burn_rate:ratio`).
    pub current_burn_rate: Option<f64>,
    /// Fraction of the period's slices that had data.
    pub period_coverage: f64,
    /// Current revision.
    pub revision: String,
    /// When it was last evaluated.
    pub evaluated_at: Option<String>,
    /// Why the last evaluation failed, if it did.
    pub error: Option<String>,
}

/// Everything about one SLO.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SloStatus {
    /// The list entry.
    #[serde(flatten)]
    pub summary: SloSummary,
    /// Free text from the spec.
    pub description: String,
    /// The spec's labels.
    pub labels: BTreeMap<String, String>,
    /// `file:line` of the SLO's spec.
    pub spec_location: String,
    /// `prometheus/v1`, `openslo/v1alpha` or `openslo/v1`.
    pub spec_kind: String,
    /// `occurrences` or `timeslices`.
    pub budgeting: String,
    /// Length of a slice, seconds.
    pub slice_seconds: f64,
    /// End of the newest slice the windows sum.
    pub slices_until: Option<String>,
    /// Error ratio, burn rate and coverage per window, shortest first, the period last.
    pub windows: Vec<WindowStatus>,
    /// The period's error budget.
    pub budget: BudgetStatus,
    /// Budget consumed per calendar week and month, newest first.
    pub calendar: Vec<CalendarStatus>,
    /// Burn-rate tiers.
    pub tiers: Vec<TierStatus>,
    /// Which label groups the errors come from (SLOs with `dimensions`).
    pub attribution: Option<Attribution>,
    /// Every revision with stored slices, newest first.
    pub revisions: Vec<RevisionStatus>,
    /// Backfill of the current revision.
    pub backfill: BackfillStatus,
}

/// One window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WindowStatus {
    /// `5m`, `1h`, ..., or the period's name.
    pub window: String,
    /// Length, seconds.
    pub seconds: f64,
    /// Bad events over all events (bad slices over slices with data, for time-slice
    /// budgeting).
    pub error_ratio: Option<f64>,
    /// Error ratio over the error budget.
    pub burn_rate: Option<f64>,
    /// Fraction of the window's slices that had data.
    pub coverage: f64,
    /// Whether coverage is at least the floor.
    pub covered: bool,
    /// Bad events in the window (from slices).
    pub bad_events: f64,
    /// All events in the window (from slices).
    pub total_events: f64,
    /// `direct` (the SLI's PromQL over the window, as Prometheus computes Sloth's
    /// rule) or `slices` (exact sums over stored slices).
    pub source: String,
}

/// The period's error budget.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BudgetStatus {
    /// Start of the period (for rolling periods: now minus the period).
    pub period_start: Option<String>,
    /// End of the period (for rolling periods: now).
    pub period_end: Option<String>,
    /// Objective as a ratio.
    pub objective: f64,
    /// `1 - objective`: the error ratio the budget allows.
    pub error_budget: f64,
    /// Error ratio over the period so far.
    pub period_error_ratio: Option<f64>,
    /// Fraction of the budget consumed.
    pub consumed: Option<f64>,
    /// Fraction of the budget left: `1 - consumed` (Sloth's
    /// `slo:period_error_budget_remaining:ratio`).
    pub remaining: Option<f64>,
    /// Events budgeting: all events in the period.
    pub total_events: Option<f64>,
    /// Events budgeting: bad events in the period.
    pub bad_events: Option<f64>,
    /// Events budgeting: bad events the budget allows (`error_budget * total_events`).
    pub budget_events: Option<f64>,
    /// Events budgeting: bad events still allowed.
    pub remaining_events: Option<f64>,
    /// Time-slice budgeting: bad minutes the budget allows over the whole period.
    pub budget_minutes: Option<f64>,
    /// Time-slice budgeting: bad minutes so far.
    pub bad_minutes: Option<f64>,
    /// Time-slice budgeting: bad minutes still allowed.
    pub remaining_minutes: Option<f64>,
    /// Time-slice budgeting: minutes without data (neither good nor bad).
    pub unknown_minutes: Option<f64>,
    /// Seconds until the budget is spent at the current burn rate (none when not
    /// burning or already spent).
    pub exhaustion_seconds: Option<f64>,
}

/// Budget consumed within one calendar week or month.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CalendarStatus {
    /// `week` or `month`.
    pub unit: String,
    /// Start of the period.
    pub start: String,
    /// End of the period (exclusive; the current one is still running).
    pub end: String,
    /// Error ratio within it.
    pub error_ratio: Option<f64>,
    /// Error ratio over the error budget: the fraction of a budget sized for this span
    /// that it consumed (1 = exactly the budget).
    pub budget_consumed: Option<f64>,
    /// Fraction of its elapsed slices with data.
    pub coverage: f64,
}

/// One burn-rate tier.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TierStatus {
    /// `page`, `ticket`, or a configured name.
    pub name: String,
    /// `sloth_severity` of the alerts it becomes.
    pub severity: String,
    /// Its state.
    pub state: State,
    /// When the state last changed.
    pub since: Option<String>,
    /// The last state other than unknown.
    pub last_known_state: Option<State>,
    /// Fire only while less than this fraction of the budget remains.
    pub below_budget_remaining: Option<f64>,
    /// How long a condition must hold before the tier fires, seconds.
    pub for_seconds: f64,
    /// Whether the spec asks for an alert on this tier (Sloth's `disable: false`).
    pub alert_enabled: bool,
    /// Its conditions.
    pub conditions: Vec<ConditionStatus>,
}

/// One multi-window condition.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConditionStatus {
    /// Long window.
    pub long_window: String,
    /// Short window, if any.
    pub short_window: Option<String>,
    /// Burn rate both windows must exceed.
    pub burn_rate_threshold: f64,
    /// Error ratio threshold (`burn_rate_threshold * error_budget`).
    pub error_ratio_threshold: f64,
    /// Burn rate over the long window.
    pub long_burn_rate: Option<f64>,
    /// Burn rate over the short window.
    pub short_burn_rate: Option<f64>,
    /// `ok`, `firing` (holds) or `unknown` (a window lacks coverage).
    pub state: State,
}

/// Which label groups the errors of a window come from.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attribution {
    /// The window (the firing tier's long window, else 1h).
    pub window: String,
    /// The dimensions the spec names.
    pub dimensions: Vec<String>,
    /// Bad events of all groups in the window.
    pub bad_events: f64,
    /// The groups with the most bad events, most first (at most 10).
    pub groups: Vec<GroupShare>,
}

/// One label group's part in the errors.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GroupShare {
    /// The group's values of the dimensions.
    pub labels: BTreeMap<String, String>,
    /// Its bad events.
    pub bad_events: f64,
    /// Its events.
    pub total_events: f64,
    /// Its own error ratio.
    pub error_ratio: Option<f64>,
    /// Its share of all bad events in the window.
    pub share: f64,
}

/// A revision of an SLO's SLI: a change of definition starts a new one.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RevisionStatus {
    /// Its identifier (a hash of the definition).
    pub revision: String,
    /// Whether it is the one in force.
    pub current: bool,
    /// When it was first seen.
    pub created: String,
    /// Slices exist from here...
    pub computed_from: Option<String>,
    /// ...to here.
    pub computed_to: Option<String>,
    /// The definition, as text.
    pub definition: String,
}

/// Backfill progress of the current revision.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BackfillStatus {
    /// Whether backfill has reached its target.
    pub done: bool,
    /// Fraction done.
    pub progress: f64,
    /// How far back slices are computed.
    pub computed_from: Option<String>,
    /// How far back backfill goes.
    pub target: Option<String>,
}

/// RFC 3339 text of epoch milliseconds.
pub(crate) fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}
