//! `/api/v1/status/*` and `/api/v1/rules`, in Prometheus' shapes.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;
use sextant_model::Labels;
use sextant_model::time::format_rfc3339;

use crate::AppState;
use crate::error::{ApiError, success};
use crate::prometheus::Params;

/// What the status endpoints report; the server fills it in at start-up and on every
/// configuration reload.
#[derive(Debug, Clone, Default)]
pub struct StatusInfo {
    /// The configuration in force, as YAML.
    pub config_yaml: String,
    /// Effective settings under Prometheus' flag names (`query.lookback-delta`, ...).
    pub flags: BTreeMap<String, String>,
    /// When the server started, epoch ms.
    pub start_time_ms: i64,
    /// When the configuration in force was loaded, epoch ms.
    pub last_config_time_ms: i64,
    /// Whether the last reload succeeded.
    pub reload_success: bool,
    /// Working directory.
    pub cwd: String,
    /// Retention, as Prometheus prints it (`15d`).
    pub storage_retention: String,
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route("/api/v1/status/runtimeinfo", get(runtimeinfo))
        .route("/api/v1/status/flags", get(flags))
        .route("/api/v1/status/config", get(config))
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/alerts", get(alerts))
        // Where Loki's ruler serves the same two lists (Grafana's alerting UI asks a
        // Loki data source there); they include the LogQL rules of `logs.rule_files`.
        .route("/prometheus/api/v1/rules", get(rules))
        .route("/prometheus/api/v1/alerts", get(alerts))
}

/// The Prometheus API version Sextant implements; clients such as Grafana choose
/// features by it.
const PROMETHEUS_API_VERSION: &str = "2.42.0";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BuildInfo {
    version: &'static str,
    revision: &'static str,
    branch: &'static str,
    build_user: &'static str,
    build_date: &'static str,
    go_version: String,
}

async fn buildinfo() -> impl IntoResponse {
    success(BuildInfo {
        version: PROMETHEUS_API_VERSION,
        revision: option_env!("SEXTANT_GIT_REVISION").unwrap_or("unknown"),
        branch: "main",
        build_user: "sextant",
        build_date: "unknown",
        go_version: format!("sextant {} (rust)", env!("CARGO_PKG_VERSION")),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuntimeInfo {
    start_time: String,
    #[serde(rename = "CWD")]
    cwd: String,
    reload_config_success: bool,
    last_config_time: String,
    corruption_count: u64,
    goroutine_count: usize,
    #[serde(rename = "GOMAXPROCS")]
    gomaxprocs: usize,
    #[serde(rename = "GOGC")]
    gogc: String,
    #[serde(rename = "GODEBUG")]
    godebug: String,
    storage_retention: String,
}

async fn runtimeinfo(State(s): State<AppState>) -> impl IntoResponse {
    let st = s.status.read().expect("poisoned").clone();
    success(RuntimeInfo {
        start_time: format_rfc3339(st.start_time_ms),
        cwd: st.cwd,
        reload_config_success: st.reload_success,
        last_config_time: format_rfc3339(st.last_config_time_ms),
        corruption_count: 0,
        goroutine_count: tokio::runtime::Handle::current().metrics().num_alive_tasks(),
        gomaxprocs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        gogc: String::new(),
        godebug: String::new(),
        storage_retention: st.storage_retention,
    })
}

async fn flags(State(s): State<AppState>) -> impl IntoResponse {
    success(s.status.read().expect("poisoned").flags.clone())
}

#[derive(Serialize)]
struct ConfigJson {
    yaml: String,
}

async fn config(State(s): State<AppState>) -> impl IntoResponse {
    success(ConfigJson {
        yaml: s.status.read().expect("poisoned").config_yaml.clone(),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleJson {
    name: String,
    query: String,
    #[serde(skip_serializing_if = "Labels::is_empty")]
    labels: Labels,
    health: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    evaluation_time: f64,
    last_evaluation: String,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// An alerting rule, in Prometheus' field order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertingRuleJson {
    state: &'static str,
    name: String,
    query: String,
    duration: f64,
    keep_firing_for: f64,
    labels: Labels,
    annotations: BTreeMap<String, String>,
    alerts: Vec<AlertJson>,
    health: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    evaluation_time: f64,
    last_evaluation: String,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// An active alert, as `/api/v1/alerts` and `/api/v1/rules` show it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertJson {
    labels: Labels,
    annotations: BTreeMap<String, String>,
    state: &'static str,
    active_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_firing_since: Option<String>,
    /// Go's `strconv.FormatFloat(v, 'e', -1, 64)`.
    value: String,
}

impl From<sextant_rules::Alert> for AlertJson {
    fn from(a: sextant_rules::Alert) -> Self {
        Self {
            labels: a.labels,
            annotations: a.annotations,
            state: a.state.as_str(),
            active_at: format_rfc3339(a.active_at_ms),
            keep_firing_since: a.keep_firing_since_ms.map(format_rfc3339),
            value: sextant_template::gofmt::format_float(a.value, 'e', None),
        }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum AnyRuleJson {
    Recording(RuleJson),
    Alerting(AlertingRuleJson),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupJson {
    name: String,
    file: String,
    rules: Vec<AnyRuleJson>,
    interval: f64,
    limit: usize,
    evaluation_time: f64,
    last_evaluation: String,
}

#[derive(Serialize)]
struct RulesJson {
    groups: Vec<GroupJson>,
}

/// Prometheus prints a time never reached as Go's zero time.
fn eval_time(ms: Option<i64>) -> String {
    ms.map_or_else(|| "0001-01-01T00:00:00Z".into(), format_rfc3339)
}

async fn rules(State(s): State<AppState>, p: Params) -> Result<impl IntoResponse, ApiError> {
    let want = match p.get("type").unwrap_or("") {
        "" => None,
        "record" => Some("recording"),
        "alert" => Some("alerting"),
        other => {
            return Err(ApiError::bad_data(format!(
                "invalid parameter \"type\": not supported value {other:?}"
            )));
        }
    };
    let groups = s
        .rules
        .groups()
        .into_iter()
        .filter_map(|g| {
            let rules: Vec<AnyRuleJson> = g
                .rules
                .into_iter()
                .filter(|r| want.is_none_or(|w| w == r.kind))
                .map(|r| match r.alerting {
                    None => AnyRuleJson::Recording(RuleJson {
                        name: r.name,
                        query: r.query,
                        labels: r.labels,
                        health: r.health.as_str(),
                        last_error: r.last_error,
                        evaluation_time: r.evaluation_time.as_secs_f64(),
                        last_evaluation: eval_time(r.last_evaluation_ms),
                        kind: r.kind,
                    }),
                    Some(a) => AnyRuleJson::Alerting(AlertingRuleJson {
                        state: a.state.as_str(),
                        name: r.name,
                        query: r.query,
                        duration: a.for_.as_secs_f64(),
                        keep_firing_for: a.keep_firing_for.as_secs_f64(),
                        labels: r.labels,
                        annotations: a.annotations.into_iter().collect(),
                        alerts: a.alerts.into_iter().map(AlertJson::from).collect(),
                        health: r.health.as_str(),
                        last_error: r.last_error,
                        evaluation_time: r.evaluation_time.as_secs_f64(),
                        last_evaluation: eval_time(r.last_evaluation_ms),
                        kind: r.kind,
                    }),
                })
                .collect();
            // A type filter drops groups left without rules, as Prometheus does.
            (want.is_none() || !rules.is_empty()).then(|| GroupJson {
                name: g.name,
                file: g.file.display().to_string(),
                rules,
                interval: g.interval.as_secs_f64(),
                limit: g.limit,
                evaluation_time: g.evaluation_time.as_secs_f64(),
                last_evaluation: eval_time(g.last_evaluation_ms),
            })
        })
        .collect();
    Ok(success(RulesJson { groups }))
}

#[derive(Serialize)]
struct AlertsJson {
    alerts: Vec<AlertJson>,
}

/// `GET /api/v1/alerts`: every pending and firing alert of every alerting rule.
async fn alerts(State(s): State<AppState>) -> impl IntoResponse {
    success(AlertsJson {
        alerts: s.rules.alerts().into_iter().map(AlertJson::from).collect(),
    })
}
