//! The `workloads` and `actions` sections of the configuration file.
//!
//! ```yaml
//! workloads:
//!   - name: checkout
//!     slos: [checkout-availability]          # gate rollouts on these SLOs' tiers
//!     process:
//!       command: [./checkout, --port, "{port}"]
//!       replicas: 2
//!       health: {path: /healthz, interval: 2s}
//!       proxy: {listen: 127.0.0.1:8080}
//! actions:
//!   policies:
//!     - name: scale-checkout
//!       trigger: {slo: checkout-availability, tier: page}
//!       workload: checkout
//!       action:
//!         scale: {min: 2, max: 8, step: 2, cooldown: 2m}
//! ```
//!
//! Unknown keys are errors (serde reports the line); [`validate`] checks what
//! spans entries (names unique, policies naming known workloads and SLO triggers
//! naming an SLO and a tier).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use sextant_model::time::PromDuration;

fn secs(s: u64) -> PromDuration {
    PromDuration(Duration::from_secs(s))
}

/// One thing Sextant can act on: exactly one of `process`, `kubernetes`,
/// `webhook` or `exec`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    /// Unique name; the `workload` label of its replicas and metrics.
    pub name: String,
    /// SLOs (ids) that measure this workload: their burn tiers gate its rollouts.
    #[serde(default)]
    pub slos: Vec<String>,
    /// Actions on this workload, all policies together.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// A group of local processes run by Sextant.
    pub process: Option<ProcessConfig>,
    /// A Deployment or StatefulSet.
    pub kubernetes: Option<KubernetesConfig>,
    /// Something reached by an HTTP call per action.
    pub webhook: Option<WebhookConfig>,
    /// Something reached by running a command per action.
    pub exec: Option<ExecConfig>,
    /// For `webhook` and `exec` workloads, which cannot be asked: the replica count
    /// they start with, from which scale actions count.
    pub replicas: Option<u32>,
}

/// At most `max` actions in any `per`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Actions allowed in the window.
    pub max: u32,
    /// The window [1h].
    #[serde(default = "one_hour")]
    pub per: PromDuration,
}

fn one_hour() -> PromDuration {
    secs(3600)
}

/// A supervised process group.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProcessConfig {
    /// Program and arguments; `{port}` becomes the replica's port, `{replica}` its
    /// number.
    pub command: Vec<String>,
    /// Extra environment (`{port}` and `{replica}` substituted too).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory (default: Sextant's).
    pub dir: Option<PathBuf>,
    /// Replicas at start [1].
    #[serde(default = "one")]
    pub replicas: u32,
    /// Readiness and liveness checks.
    #[serde(default)]
    pub health: HealthConfig,
    /// Restarts of replicas that exit.
    #[serde(default)]
    pub restart: RestartConfig,
    /// Stopping a replica.
    #[serde(default)]
    pub stop: StopConfig,
    /// Rolling out a changed command or environment.
    #[serde(default)]
    pub rollout: RolloutConfig,
    /// A reverse proxy spreading traffic over the ready replicas.
    pub proxy: Option<ProxyConfig>,
    /// Scraping the replicas' metrics.
    #[serde(default)]
    pub metrics: WorkloadMetricsConfig,
}

fn one() -> u32 {
    1
}

/// HTTP health checks of each replica.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Path answered with 2xx when healthy; without it, a replica is healthy when
    /// its port accepts connections.
    pub path: Option<String>,
    /// Time between checks [2s].
    #[serde(default = "two_seconds")]
    pub interval: PromDuration,
    /// Timeout of one check [1s].
    #[serde(default = "one_second")]
    pub timeout: PromDuration,
    /// Consecutive successes before a replica is ready [1].
    #[serde(default = "one")]
    pub healthy_threshold: u32,
    /// Consecutive failures before a ready replica is unhealthy (out of the proxy,
    /// and restarted) [3].
    #[serde(default = "three")]
    pub unhealthy_threshold: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            path: None,
            interval: two_seconds(),
            timeout: one_second(),
            healthy_threshold: 1,
            unhealthy_threshold: 3,
        }
    }
}

fn two_seconds() -> PromDuration {
    secs(2)
}
fn one_second() -> PromDuration {
    secs(1)
}
fn three() -> u32 {
    3
}

/// Restarting replicas that exit or turn unhealthy.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RestartConfig {
    /// First delay before a restart, doubled after each consecutive failure [1s].
    #[serde(default = "one_second")]
    pub backoff: PromDuration,
    /// Longest delay [1m].
    #[serde(default = "one_minute")]
    pub max_backoff: PromDuration,
    /// A replica that stayed up this long starts again from `backoff` [1m].
    #[serde(default = "one_minute")]
    pub reset_after: PromDuration,
    /// After this many consecutive failed starts the replica is left stopped
    /// (`crash_loop`) until the workload is changed or restarted [5].
    #[serde(default = "five")]
    pub crash_loop_limit: u32,
}

impl Default for RestartConfig {
    fn default() -> Self {
        Self {
            backoff: one_second(),
            max_backoff: one_minute(),
            reset_after: one_minute(),
            crash_loop_limit: 5,
        }
    }
}

fn one_minute() -> PromDuration {
    secs(60)
}
fn five() -> u32 {
    5
}

/// Stopping a replica: out of the proxy, wait for in-flight requests up to
/// `drain`, SIGTERM, SIGKILL after `grace`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StopConfig {
    /// Longest wait for in-flight proxied requests [5s].
    #[serde(default = "five_seconds")]
    pub drain: PromDuration,
    /// Time between SIGTERM and SIGKILL [10s].
    #[serde(default = "ten_seconds")]
    pub grace: PromDuration,
}

impl Default for StopConfig {
    fn default() -> Self {
        Self {
            drain: five_seconds(),
            grace: ten_seconds(),
        }
    }
}

fn five_seconds() -> PromDuration {
    secs(5)
}
fn ten_seconds() -> PromDuration {
    secs(10)
}

/// Rolling out a new command or environment, one replica at a time.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RolloutConfig {
    /// A new replica that is not ready within this fails the rollout [30s].
    #[serde(default = "thirty_seconds")]
    pub start_timeout: PromDuration,
    /// After each new replica is ready, how long to watch the workload's SLOs
    /// before replacing the next old one (the analysis interval) [10s].
    #[serde(default = "ten_seconds")]
    pub pause: PromDuration,
    /// Tiers of the workload's SLOs that, firing during a rollout, roll it back
    /// [page].
    #[serde(default = "page")]
    pub gate_tiers: Vec<String>,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        Self {
            start_timeout: thirty_seconds(),
            pause: ten_seconds(),
            gate_tiers: page(),
        }
    }
}

fn thirty_seconds() -> PromDuration {
    secs(30)
}
fn page() -> Vec<String> {
    vec!["page".into()]
}

/// The workload's reverse proxy.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Address to listen on (`127.0.0.1:8080`).
    pub listen: String,
    /// Timeout of one proxied request [30s].
    #[serde(default = "thirty_seconds")]
    pub timeout: PromDuration,
}

/// Scraping a process workload's replicas.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkloadMetricsConfig {
    /// Scrape the replicas [true].
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Path of their metrics [/metrics].
    #[serde(default = "metrics_path")]
    pub path: String,
    /// Scrape interval (default: `global.scrape_interval`).
    pub interval: Option<PromDuration>,
}

impl Default for WorkloadMetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: metrics_path(),
            interval: None,
        }
    }
}

fn yes() -> bool {
    true
}
fn metrics_path() -> String {
    "/metrics".into()
}

/// A Deployment or StatefulSet.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// `Deployment` or `StatefulSet`.
    pub kind: KubeKind,
    /// Its name.
    pub name: String,
    /// Its namespace (default: the kubeconfig context's, or the service account's).
    pub namespace: Option<String>,
    /// A kubeconfig file; without it and without `in_cluster`, `$KUBECONFIG` or
    /// `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig (default: its current context).
    pub context: Option<String>,
    /// Use the pod's service account (`KUBERNETES_SERVICE_HOST`, the mounted token
    /// and CA).
    #[serde(default)]
    pub in_cluster: bool,
    /// A rolling restart that is not complete within this has failed [10m].
    #[serde(default = "ten_minutes")]
    pub rollout_timeout: PromDuration,
    /// How often the replica count is read, to notice changes made by hand [15s].
    #[serde(default = "fifteen_seconds")]
    pub poll_interval: PromDuration,
}

fn ten_minutes() -> PromDuration {
    secs(600)
}
fn fifteen_seconds() -> PromDuration {
    secs(15)
}

/// Kinds of Kubernetes workload.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum KubeKind {
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` StatefulSet.
    StatefulSet,
}

impl KubeKind {
    /// The resource's plural name in API paths.
    pub fn resource(self) -> &'static str {
        match self {
            KubeKind::Deployment => "deployments",
            KubeKind::StatefulSet => "statefulsets",
        }
    }
}

/// An HTTP call per action: a JSON body with the action and its evidence.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to send it.
    pub url: String,
    /// `POST` (default) or `PUT`.
    #[serde(default = "post")]
    pub method: String,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Secret for the `X-Sextant-Signature` HMAC-SHA256 header.
    pub secret: Option<String>,
    /// File holding the secret.
    pub secret_file: Option<PathBuf>,
    /// Timeout of one attempt [10s].
    #[serde(default = "ten_seconds")]
    pub timeout: PromDuration,
    /// Attempts after the first on connection errors, 5xx and 429 [3].
    #[serde(default = "three")]
    pub retries: u32,
    /// First delay between attempts, doubled each time, with jitter [1s].
    #[serde(default = "one_second")]
    pub backoff: PromDuration,
}

fn post() -> String {
    "POST".into()
}

/// A command run per action, with the action and its evidence in its environment.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// Program and arguments.
    pub command: Vec<String>,
    /// Extra environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub dir: Option<PathBuf>,
    /// Killed (and failed) after this [30s].
    #[serde(default = "thirty_seconds")]
    pub timeout: PromDuration,
}

/// The `actions` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ActionsConfig {
    /// Every policy decides and records but does nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Actions awaiting approval expire after this [15m].
    #[serde(default = "fifteen_minutes")]
    pub approval_timeout: PromDuration,
    /// How long audit records are kept [90d].
    #[serde(default = "ninety_days")]
    pub audit_retention: PromDuration,
    /// The policies.
    #[serde(default)]
    pub policies: Vec<PolicyConfig>,
}

impl Default for ActionsConfig {
    fn default() -> Self {
        Self {
            dry_run: false,
            approval_timeout: fifteen_minutes(),
            audit_retention: ninety_days(),
            policies: Vec::new(),
        }
    }
}

fn fifteen_minutes() -> PromDuration {
    secs(900)
}
fn ninety_days() -> PromDuration {
    secs(90 * 86400)
}

/// When to do what to which workload.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Unique name.
    pub name: String,
    /// What sets it off.
    pub trigger: TriggerConfig,
    /// The workload acted on.
    pub workload: String,
    /// The action: exactly one of `scale`, `restart`, `webhook`, `exec`.
    pub action: ActionConfig,
    /// Decide and record, do nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// `none` (default) or `required`: an operator approves each action.
    #[serde(default)]
    pub approval: Approval,
    /// Actions of this policy.
    pub rate_limit: Option<RateLimit>,
}

/// Whether actions wait for a person.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    /// Act at once.
    #[default]
    None,
    /// Park the action until someone with the operator role approves it.
    Required,
}

/// What sets a policy off: an SLO's burn tier, or firing alerts.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TriggerConfig {
    /// SLO id (`sloth_id`).
    pub slo: Option<String>,
    /// Its tier (`page`, `ticket`, or a `sextant.tiers` name).
    pub tier: Option<String>,
    /// Alerts whose labels equal all of these.
    pub alert: Option<BTreeMap<String, String>>,
}

/// The action of a policy.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ActionConfig {
    /// Change the replica count.
    pub scale: Option<ScaleConfig>,
    /// Rolling restart.
    pub restart: Option<RestartActionConfig>,
    /// Call a webhook.
    pub webhook: Option<WebhookConfig>,
    /// Run a command.
    pub exec: Option<ExecConfig>,
}

/// Scaling.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScaleConfig {
    /// Never fewer replicas.
    pub min: u32,
    /// Never more.
    pub max: u32,
    /// Replicas added per scale-up [1].
    #[serde(default = "one")]
    pub step: u32,
    /// Scale up in proportion to the burn: replicas × (burn rate / threshold) of the
    /// firing condition's short window, at least `step` more.
    #[serde(default)]
    pub proportional: bool,
    /// Least time between two scale actions of the policy [2m].
    #[serde(default = "two_minutes")]
    pub cooldown: PromDuration,
    /// No scale-down within this after a scale-up [5m].
    #[serde(default = "five_minutes")]
    pub stabilization: PromDuration,
    /// Scaling down.
    #[serde(default)]
    pub scale_down: ScaleDownConfig,
}

fn two_minutes() -> PromDuration {
    secs(120)
}
fn five_minutes() -> PromDuration {
    secs(300)
}

/// When and how far to scale down: only once every alert window of the SLO has
/// burned below 1× with full coverage for `after`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScaleDownConfig {
    /// Scale down at all [true].
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How long the SLO must have burned below 1× [10m].
    #[serde(default = "ten_minutes")]
    pub after: PromDuration,
    /// Replicas removed per scale-down [1].
    #[serde(default = "one")]
    pub step: u32,
    /// Coverage every window needs [0.99].
    #[serde(default = "full_coverage")]
    pub min_coverage: f64,
}

impl Default for ScaleDownConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            after: ten_minutes(),
            step: 1,
            min_coverage: full_coverage(),
        }
    }
}

fn full_coverage() -> f64 {
    0.99
}

/// Rolling restart.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RestartActionConfig {
    /// Least time between two restarts by the policy [10m].
    #[serde(default = "ten_minutes")]
    pub cooldown: PromDuration,
}

/// What an action does, once the config is checked.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionKind {
    /// Scale.
    Scale(ScaleConfig),
    /// Rolling restart.
    Restart(RestartActionConfig),
    /// Webhook call.
    Webhook(WebhookConfig),
    /// Command.
    Exec(ExecConfig),
}

impl ActionConfig {
    /// The one action configured.
    pub fn kind(&self) -> Result<ActionKind, String> {
        let mut kinds = Vec::new();
        if let Some(s) = &self.scale {
            kinds.push(ActionKind::Scale(s.clone()));
        }
        if let Some(r) = &self.restart {
            kinds.push(ActionKind::Restart(r.clone()));
        }
        if let Some(w) = &self.webhook {
            kinds.push(ActionKind::Webhook(w.clone()));
        }
        if let Some(e) = &self.exec {
            kinds.push(ActionKind::Exec(e.clone()));
        }
        match kinds.len() {
            1 => Ok(kinds.pop().expect("one")),
            0 => Err("action needs one of scale, restart, webhook, exec".into()),
            _ => Err("action has more than one of scale, restart, webhook, exec".into()),
        }
    }
}

/// Which kind of workload.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkloadKind {
    /// Supervised processes.
    Process(Box<ProcessConfig>),
    /// Kubernetes.
    Kubernetes(KubernetesConfig),
    /// Webhook.
    Webhook(WebhookConfig),
    /// Exec.
    Exec(ExecConfig),
}

impl WorkloadConfig {
    /// The one kind configured.
    pub fn kind(&self) -> Result<WorkloadKind, String> {
        let mut kinds = Vec::new();
        if let Some(p) = &self.process {
            kinds.push(WorkloadKind::Process(Box::new(p.clone())));
        }
        if let Some(k) = &self.kubernetes {
            kinds.push(WorkloadKind::Kubernetes(k.clone()));
        }
        if let Some(w) = &self.webhook {
            kinds.push(WorkloadKind::Webhook(w.clone()));
        }
        if let Some(e) = &self.exec {
            kinds.push(WorkloadKind::Exec(e.clone()));
        }
        match kinds.len() {
            1 => Ok(kinds.pop().expect("one")),
            0 => Err("needs one of process, kubernetes, webhook, exec".into()),
            _ => Err("has more than one of process, kubernetes, webhook, exec".into()),
        }
    }
}

fn check_webhook(w: &WebhookConfig) -> Result<(), String> {
    let url = reqwest::Url::parse(&w.url).map_err(|e| format!("webhook url {:?}: {e}", w.url))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("webhook url {:?}: scheme must be http or https", w.url));
    }
    if !matches!(w.method.as_str(), "POST" | "PUT") {
        return Err(format!("webhook method {:?}: must be POST or PUT", w.method));
    }
    if w.secret.is_some() && w.secret_file.is_some() {
        return Err("webhook: at most one of secret and secret_file".into());
    }
    for k in w.headers.keys() {
        reqwest::header::HeaderName::try_from(k.as_str()).map_err(|e| format!("webhook header {k:?}: {e}"))?;
    }
    Ok(())
}

fn check_exec(e: &ExecConfig) -> Result<(), String> {
    if e.command.is_empty() || e.command[0].is_empty() {
        return Err("exec command is empty".into());
    }
    Ok(())
}

/// Checks what spans entries: unique names, one kind per workload and action,
/// policies naming known workloads, triggers naming an SLO with a tier or alert
/// labels, actions the workload supports, sane numbers. Errors name the entry.
pub fn validate(workloads: &[WorkloadConfig], actions: &ActionsConfig) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    let mut names = HashSet::new();
    let mut listens = HashSet::new();
    for (i, w) in workloads.iter().enumerate() {
        let at = format!("workloads[{i}] ({})", w.name);
        if w.name.is_empty()
            || !w
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            errors.push(format!("{at}: name must be letters, digits, '-' and '_'"));
        }
        if !names.insert(w.name.clone()) {
            errors.push(format!("{at}: duplicate workload name"));
        }
        match w.kind() {
            Err(e) => errors.push(format!("{at}: {e}")),
            Ok(WorkloadKind::Process(p)) => {
                if p.command.is_empty() || p.command[0].is_empty() {
                    errors.push(format!("{at}: process command is empty"));
                }
                if p.health.healthy_threshold == 0 || p.health.unhealthy_threshold == 0 {
                    errors.push(format!("{at}: health thresholds must be at least 1"));
                }
                if p.health.interval.0.is_zero() || p.health.timeout.0.is_zero() {
                    errors.push(format!("{at}: health interval and timeout must be positive"));
                }
                if let Some(path) = &p.health.path
                    && !path.starts_with('/')
                {
                    errors.push(format!("{at}: health path {path:?} must start with '/'"));
                }
                if p.restart.backoff.0 > p.restart.max_backoff.0 {
                    errors.push(format!("{at}: restart backoff is longer than max_backoff"));
                }
                if let Some(proxy) = &p.proxy {
                    match proxy.listen.parse::<std::net::SocketAddr>() {
                        Err(e) => errors.push(format!("{at}: proxy listen {:?}: {e}", proxy.listen)),
                        Ok(a) => {
                            if !listens.insert(a) {
                                errors.push(format!("{at}: proxy listen {a} is used twice"));
                            }
                        }
                    }
                }
                if w.replicas.is_some() {
                    errors.push(format!("{at}: replicas belongs under process"));
                }
            }
            Ok(WorkloadKind::Kubernetes(k)) => {
                if k.name.is_empty() {
                    errors.push(format!("{at}: kubernetes name is empty"));
                }
                if k.in_cluster && (k.kubeconfig.is_some() || k.context.is_some()) {
                    errors.push(format!("{at}: in_cluster excludes kubeconfig and context"));
                }
                if w.replicas.is_some() {
                    errors.push(format!("{at}: replicas is read from the cluster, not configured"));
                }
            }
            Ok(WorkloadKind::Webhook(h)) => {
                if let Err(e) = check_webhook(&h) {
                    errors.push(format!("{at}: {e}"));
                }
            }
            Ok(WorkloadKind::Exec(e)) => {
                if let Err(e) = check_exec(&e) {
                    errors.push(format!("{at}: {e}"));
                }
            }
        }
        if let Some(r) = &w.rate_limit
            && (r.max == 0 || r.per.0.is_zero())
        {
            errors.push(format!("{at}: rate_limit needs max and per above zero"));
        }
    }
    let mut policies = HashSet::new();
    for (i, p) in actions.policies.iter().enumerate() {
        let at = format!("actions.policies[{i}] ({})", p.name);
        if p.name.is_empty() {
            errors.push(format!("{at}: name is empty"));
        }
        if !policies.insert(p.name.clone()) {
            errors.push(format!("{at}: duplicate policy name"));
        }
        let t = &p.trigger;
        match (&t.slo, &t.tier, &t.alert) {
            (Some(_), Some(_), None) => {}
            (None, None, Some(labels)) if !labels.is_empty() => {}
            (Some(_), None, None) => errors.push(format!("{at}: an SLO trigger needs a tier")),
            (None, Some(_), None) => errors.push(format!("{at}: a tier trigger needs an slo")),
            _ => errors.push(format!(
                "{at}: trigger needs either slo and tier, or alert with at least one label"
            )),
        }
        let workload = workloads.iter().find(|w| w.name == p.workload);
        if workload.is_none() {
            errors.push(format!("{at}: unknown workload {:?}", p.workload));
        }
        match p.action.kind() {
            Err(e) => errors.push(format!("{at}: {e}")),
            Ok(ActionKind::Scale(s)) => {
                if s.min > s.max || s.max == 0 {
                    errors.push(format!("{at}: scale needs 0 <= min <= max and max >= 1"));
                }
                if s.step == 0 || s.scale_down.step == 0 {
                    errors.push(format!("{at}: scale steps must be at least 1"));
                }
                if !(0.0..=1.0).contains(&s.scale_down.min_coverage) {
                    errors.push(format!("{at}: scale_down.min_coverage must be between 0 and 1"));
                }
                if let Some(w) = workload
                    && matches!(w.kind(), Ok(WorkloadKind::Webhook(_) | WorkloadKind::Exec(_)))
                    && w.replicas.is_none()
                {
                    errors.push(format!(
                        "{at}: scaling a webhook or exec workload needs its starting replicas (workloads[].replicas)"
                    ));
                }
            }
            Ok(ActionKind::Webhook(h)) => {
                if let Err(e) = check_webhook(&h) {
                    errors.push(format!("{at}: {e}"));
                }
            }
            Ok(ActionKind::Exec(e)) => {
                if let Err(e) = check_exec(&e) {
                    errors.push(format!("{at}: {e}"));
                }
            }
            Ok(ActionKind::Restart(_)) => {}
        }
        if let Some(r) = &p.rate_limit
            && (r.max == 0 || r.per.0.is_zero())
        {
            errors.push(format!("{at}: rate_limit needs max and per above zero"));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> (Vec<WorkloadConfig>, ActionsConfig) {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Doc {
            #[serde(default)]
            workloads: Vec<WorkloadConfig>,
            #[serde(default)]
            actions: ActionsConfig,
        }
        let d: Doc = serde_yaml::from_str(yaml).unwrap();
        (d.workloads, d.actions)
    }

    #[test]
    fn defaults_and_validation() {
        let (w, a) = parse(
            r#"
workloads:
  - name: checkout
    slos: [checkout-availability]
    process:
      command: [./app, --port, "{port}"]
      replicas: 2
      health: {path: /healthz}
      proxy: {listen: "127.0.0.1:8080"}
actions:
  policies:
    - name: scale
      trigger: {slo: checkout-availability, tier: page}
      workload: checkout
      action: {scale: {min: 2, max: 8, step: 2}}
"#,
        );
        validate(&w, &a).unwrap();
        let WorkloadKind::Process(p) = w[0].kind().unwrap() else {
            panic!()
        };
        assert_eq!(p.health.interval.0, Duration::from_secs(2));
        assert_eq!(p.stop.grace.0, Duration::from_secs(10));
        assert_eq!(p.rollout.gate_tiers, vec!["page".to_owned()]);
        let ActionKind::Scale(s) = a.policies[0].action.kind().unwrap() else {
            panic!()
        };
        assert_eq!((s.cooldown.0.as_secs(), s.scale_down.after.0.as_secs()), (120, 600));
        assert_eq!(a.approval_timeout.0.as_secs(), 900);
    }

    #[test]
    fn errors_name_the_entry() {
        let (w, a) = parse(
            r#"
workloads:
  - name: a
    exec: {command: [true]}
  - name: a
    process: {command: [x]}
    kubernetes: {kind: Deployment, name: y}
actions:
  policies:
    - name: p
      trigger: {slo: s}
      workload: nope
      action: {scale: {min: 3, max: 2}, restart: {}}
    - name: q
      trigger: {alert: {alertname: X}}
      workload: a
      action: {scale: {min: 1, max: 2}}
"#,
        );
        let e = validate(&w, &a).unwrap_err();
        assert!(
            e.contains(&"workloads[1] (a): duplicate workload name".to_owned()),
            "{e:?}"
        );
        assert!(
            e.contains(&"workloads[1] (a): has more than one of process, kubernetes, webhook, exec".to_owned()),
            "{e:?}"
        );
        assert!(
            e.contains(&"actions.policies[0] (p): an SLO trigger needs a tier".to_owned()),
            "{e:?}"
        );
        assert!(
            e.contains(&"actions.policies[0] (p): unknown workload \"nope\"".to_owned()),
            "{e:?}"
        );
        assert!(
            e.contains(
                &"actions.policies[0] (p): action has more than one of scale, restart, webhook, exec".to_owned()
            ),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("actions.policies[1] (q): scaling a webhook or exec workload")),
            "{e:?}"
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Doc {
            workloads: Vec<WorkloadConfig>,
        }
        let e = serde_yaml::from_str::<Doc>("workloads:\n  - name: a\n    procss: {}\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `procss`"), "{e}");
        assert!(e.to_string().contains("line 3"), "{e}");
    }
}
