//! The action engine: turns SLO burn and alerts into actions on workloads, through
//! guardrails, and records every decision in the audit log.
//!
//! Decisions are taken synchronously when an SLO cycle ends (and when the alert
//! list is polled), from what the cycle computed: the tier states with their burn
//! rates and coverage. Actions then run in their own tasks, after their audit
//! record is durable. Guardrails, in order: the data must be there (an `unknown`
//! tier never acts and never scales down), no other action on the workload may be
//! in progress, cooldowns and stabilization, the policy's and the workload's rate
//! limits, then dry run or approval.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use sextant_model::PostableAlert;
use sextant_model::time::{format_duration, format_rfc3339, now_ms};
use tokio::sync::mpsc;
use utoipa::ToSchema;

use crate::audit::{
    ActionSpec, AlertEvidence, AuditLog, AuditRecord, ConditionEvidence, Decision, ErrorShare, Evidence, Filter,
    SloEvidence, Status, WindowEvidence,
};
use crate::call::{ActionRequest, call_webhook, run_exec};
use crate::config::{
    ActionKind, ActionsConfig, Approval, PolicyConfig, RateLimit, ScaleConfig, WorkloadConfig, WorkloadKind, validate,
};
use crate::kube::KubeWorkload;
use crate::proxy::{ProxyHandle, ProxyMetrics, WorkloadLabels};
use crate::supervisor::{ProcessStatus, Supervisor, SupervisorEvent, TargetsFn};

/// A skip with the same reason is recorded again only after this long.
const SKIP_REPEAT_MS: i64 = 10 * 60 * 1000;

/// State of a burn tier, as the SLO engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierState {
    /// Not burning too fast.
    Ok,
    /// A condition holds, not yet long enough.
    Pending,
    /// Firing.
    Firing,
    /// Not enough data to say.
    Unknown,
}

impl TierState {
    fn as_str(self) -> &'static str {
        match self {
            TierState::Ok => "ok",
            TierState::Pending => "pending",
            TierState::Firing => "firing",
            TierState::Unknown => "unknown",
        }
    }
}

/// One tier of an SLO, as the action engine reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct TierInput {
    /// `page`, `ticket`, ...
    pub name: String,
    /// Its state.
    pub state: TierState,
    /// Its conditions with burn rates.
    pub conditions: Vec<ConditionEvidence>,
}

/// One SLO after an SLO cycle, as the action engine reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct SloInput {
    /// SLO id.
    pub id: String,
    /// When it was evaluated (epoch ms).
    pub evaluated_ms: Option<i64>,
    /// Why its evaluation failed, if it did.
    pub error: Option<String>,
    /// Budget left.
    pub budget_remaining: Option<f64>,
    /// The alert windows (not the period).
    pub windows: Vec<WindowEvidence>,
    /// Its tiers.
    pub tiers: Vec<TierInput>,
    /// The groups the errors come from.
    pub attribution: Vec<ErrorShare>,
}

/// An alert the router holds, as the action engine reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertInput {
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// When it started (epoch ms).
    pub starts_at_ms: i64,
    /// Silenced or inhibited: a silence pauses the automation it covers too.
    pub suppressed: bool,
}

/// Why an approval or rejection was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum ApprovalError {
    /// No such action.
    NotFound,
    /// It is not waiting for approval (already decided, expired, or never asked).
    NotPending(String),
    /// Another action on the workload is running.
    Busy(String),
}

impl std::fmt::Display for ApprovalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApprovalError::NotFound => f.write_str("no such action"),
            ApprovalError::NotPending(s) | ApprovalError::Busy(s) => f.write_str(s),
        }
    }
}

/// A workload as `/api/sextant/v1/workloads` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkloadStatus {
    /// Name.
    pub name: String,
    /// `process`, `kubernetes`, `webhook` or `exec`.
    pub kind: String,
    /// SLOs that measure it.
    pub slos: Vec<String>,
    /// Replicas as last observed (desired count).
    pub replicas: Option<u32>,
    /// Why the count could not be read, if it could not.
    pub error: Option<String>,
    /// The action running on it.
    pub action_in_progress: Option<String>,
    /// For Kubernetes workloads: `deployments/web in shop`.
    pub target: Option<String>,
    /// For process workloads: replicas, health, restarts and rollout.
    pub process: Option<ProcessStatus>,
    /// The newest audit record about it.
    pub last_action: Option<AuditRecord>,
}

enum Actuator {
    Process(Supervisor),
    Kube(KubeWorkload),
    Webhook(crate::config::WebhookConfig),
    Exec(crate::config::ExecConfig),
}

struct Workload {
    cfg: WorkloadConfig,
    actuator: Actuator,
    /// Shared with the workload's next incarnation on reload, as is `state`.
    proxy: Arc<tokio::sync::Mutex<Option<ProxyHandle>>>,
    state: Arc<Mutex<WorkloadState>>,
    poll: Option<tokio::task::JoinHandle<()>>,
}

#[derive(Default)]
struct WorkloadState {
    /// What Sextant last set or accepted.
    expected: Option<u32>,
    /// What was last read.
    observed: Option<u32>,
    error: Option<String>,
    /// Id of the action running.
    in_flight: Option<String>,
    /// When actions started (for the rate limit).
    recent: VecDeque<i64>,
}

#[derive(Default)]
struct PolicyState {
    /// Since when the trigger fires (this episode).
    firing_since: Option<i64>,
    /// Whether this episode already had its one-shot action (restart, webhook, exec).
    episode_acted: bool,
    last_action_ms: Option<i64>,
    last_scale_up_ms: Option<i64>,
    /// Since when the SLO burns below 1× with coverage.
    calm_since: Option<i64>,
    recent: VecDeque<i64>,
    pending: Option<String>,
    last_skip: Option<(String, i64)>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    policy: String,
    workload: String,
    decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    policy: String,
    workload: String,
    kind: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReplicaLabels {
    workload: String,
    state: String,
}

#[derive(Clone, Default)]
struct Metrics {
    decisions: Family<DecisionLabels, Counter>,
    actions: Family<ActionLabels, Counter>,
    pending: Gauge,
    replicas: Family<ReplicaLabels, Gauge>,
    restarts: Family<WorkloadLabels, Counter>,
    proxy: ProxyMetrics,
}

struct Inner {
    data_dir: PathBuf,
    audit: Mutex<AuditLog>,
    config: RwLock<Arc<ActionsConfig>>,
    workloads: RwLock<BTreeMap<String, Arc<Workload>>>,
    policies: Mutex<HashMap<String, PolicyState>>,
    /// SLO inputs of the last cycle, by id (for the API and approvals).
    last_slos: RwLock<BTreeMap<String, SloInput>>,
    metrics: Metrics,
    events: mpsc::UnboundedSender<SupervisorEvent>,
    targets: Option<TargetsFn>,
    http: reqwest::Client,
    /// Restarts counted so far per process workload (the counter gets the delta).
    restarts_seen: Mutex<HashMap<String, u64>>,
}

/// Handle to the action engine; cheap to clone.
#[derive(Clone)]
pub struct ActionEngine {
    inner: Arc<Inner>,
}

impl ActionEngine {
    /// Opens the audit log in `data_dir` and registers the metrics. `targets` gets
    /// the scrape targets of process workloads' replicas.
    pub fn open(data_dir: PathBuf, registry: &mut Registry, targets: Option<TargetsFn>) -> Result<Self, String> {
        let audit = AuditLog::open(&data_dir.join("audit"))?;
        let metrics = Metrics::default();
        let r = registry.sub_registry_with_prefix("sextant");
        r.register(
            "action_decisions",
            "Decisions of action policies, by policy, workload and decision (act, dry_run, awaiting_approval, skip, observe)",
            metrics.decisions.clone(),
        );
        r.register(
            "actions",
            "Actions finished, by policy, workload, kind and status",
            metrics.actions.clone(),
        );
        r.register(
            "action_pending_approvals",
            "Actions waiting for approval",
            metrics.pending.clone(),
        );
        r.register(
            "workload_replicas",
            "Replicas of managed workloads: desired (as last observed) and ready (process workloads)",
            metrics.replicas.clone(),
        );
        r.register(
            "workload_restarts",
            "Restarts of supervised replicas",
            metrics.restarts.clone(),
        );
        r.register(
            "workload_proxy_requests",
            "Requests through workload proxies, by workload and status code",
            metrics.proxy.requests.clone(),
        );
        r.register(
            "workload_proxy_retries",
            "Proxied requests resent to another replica after a refused connection",
            metrics.proxy.retries.clone(),
        );
        let (events, events_rx) = mpsc::unbounded_channel();
        let http = crate::http_client()
            .user_agent(concat!("Sextant/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        let inner = Arc::new(Inner {
            data_dir,
            audit: Mutex::new(audit),
            config: RwLock::new(Arc::new(ActionsConfig::default())),
            workloads: RwLock::default(),
            policies: Mutex::default(),
            last_slos: RwLock::default(),
            metrics,
            events,
            targets,
            http,
            restarts_seen: Mutex::default(),
        });
        // Actions left running by a previous process ended with it.
        {
            let mut audit = inner.audit.lock().expect("poisoned");
            let running: Vec<String> = audit
                .iter()
                .filter(|r| r.status == Status::Running)
                .map(|r| r.id.clone())
                .collect();
            for id in running {
                let _ = audit.update(&id, |r| {
                    r.status = Status::Failed;
                    r.detail = "Sextant stopped while the action ran; its outcome is unknown".into();
                    r.finished_ms = Some(now_ms());
                });
            }
            let pending = audit.iter().filter(|r| r.status == Status::Pending).count();
            inner.metrics.pending.set(pending as i64);
        }
        tokio::spawn(events_loop(Arc::downgrade(&inner), events_rx));
        tokio::spawn(housekeeping(Arc::downgrade(&inner)));
        Ok(Self { inner })
    }

    /// Checks `workloads` and `actions` as [`ActionEngine::apply`] would.
    pub fn check(workloads: &[WorkloadConfig], actions: &ActionsConfig) -> Result<(), Vec<String>> {
        validate(workloads, actions)?;
        let mut errors = Vec::new();
        for w in workloads {
            if let Some(k) = &w.kubernetes
                && let Err(e) = KubeWorkload::new(k)
            {
                errors.push(format!("workload {}: {e}", w.name));
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// Applies a configuration: new workloads start, removed ones stop, changed
    /// process workloads take their new settings (a new command or environment is
    /// rolled out); policies are replaced (a policy keeps its state when its name
    /// stays). Nothing changes when the configuration is invalid.
    pub async fn apply(&self, workloads: Vec<WorkloadConfig>, actions: ActionsConfig) -> Result<(), Vec<String>> {
        Self::check(&workloads, &actions)?;
        let inner = &self.inner;
        let mut next = BTreeMap::new();
        let mut errors = Vec::new();
        let current = inner.workloads.read().expect("poisoned").clone();
        for w in &workloads {
            let kind = w.kind().map_err(|e| vec![e])?;
            match (current.get(&w.name), &kind) {
                (Some(old), WorkloadKind::Process(p)) if matches!(old.actuator, Actuator::Process(_)) => {
                    let Actuator::Process(sup) = &old.actuator else {
                        unreachable!()
                    };
                    sup.apply((**p).clone());
                    let old_listen = old.cfg.process.as_ref().and_then(|p| p.proxy.clone());
                    if old_listen != p.proxy {
                        let mut proxy = old.proxy.lock().await;
                        if let Some(h) = proxy.take() {
                            h.stop().await;
                        }
                        if let Some(pc) = &p.proxy {
                            match crate::proxy::start(
                                &pc.listen,
                                &w.name,
                                sup.backends(),
                                pc.timeout.0,
                                inner.metrics.proxy.clone(),
                            )
                            .await
                            {
                                Ok(h) => *proxy = Some(h),
                                Err(e) => errors.push(e),
                            }
                        }
                    }
                    next.insert(
                        w.name.clone(),
                        Arc::new(Workload {
                            cfg: w.clone(),
                            actuator: Actuator::Process(sup.clone()),
                            proxy: old.proxy.clone(),
                            state: old.state.clone(),
                            poll: None,
                        }),
                    );
                }
                (Some(old), _) if old.cfg == *w => {
                    next.insert(w.name.clone(), old.clone());
                }
                _ => match self.start_workload(w, kind).await {
                    Ok(wl) => {
                        next.insert(w.name.clone(), wl);
                    }
                    Err(e) => errors.push(format!("workload {}: {e}", w.name)),
                },
            }
        }
        if !errors.is_empty() {
            // Stop what was started for this configuration and keep the old one.
            for (name, wl) in &next {
                if !current.get(name).is_some_and(|c| Arc::ptr_eq(c, wl)) && !current.contains_key(name) {
                    stop_workload(wl).await;
                }
            }
            return Err(errors);
        }
        for (name, old) in &current {
            if !next.contains_key(name) {
                stop_workload(old).await;
            }
        }
        *inner.workloads.write().expect("poisoned") = next;
        {
            let mut policies = inner.policies.lock().expect("poisoned");
            policies.retain(|name, _| actions.policies.iter().any(|p| &p.name == name));
        }
        *inner.config.write().expect("poisoned") = Arc::new(actions);
        Ok(())
    }

    async fn start_workload(&self, w: &WorkloadConfig, kind: WorkloadKind) -> Result<Arc<Workload>, String> {
        let inner = &self.inner;
        let mut state = WorkloadState::default();
        let mut proxy = None;
        let actuator = match kind {
            WorkloadKind::Process(p) => {
                let sup = Supervisor::start(
                    &w.name,
                    (*p).clone(),
                    inner.data_dir.join("workloads").join(&w.name),
                    inner.events.clone(),
                    inner.targets.clone(),
                )?;
                if let Some(pc) = &p.proxy {
                    match crate::proxy::start(
                        &pc.listen,
                        &w.name,
                        sup.backends(),
                        pc.timeout.0,
                        inner.metrics.proxy.clone(),
                    )
                    .await
                    {
                        Ok(h) => proxy = Some(h),
                        Err(e) => {
                            sup.shutdown().await;
                            return Err(e);
                        }
                    }
                }
                state.expected = Some(p.replicas);
                state.observed = Some(p.replicas);
                Actuator::Process(sup)
            }
            WorkloadKind::Kubernetes(k) => Actuator::Kube(KubeWorkload::new(&k)?),
            WorkloadKind::Webhook(h) => Actuator::Webhook(h),
            WorkloadKind::Exec(e) => Actuator::Exec(e),
        };
        if matches!(actuator, Actuator::Webhook(_) | Actuator::Exec(_)) {
            // The count is Sextant's own bookkeeping: the last scale that succeeded.
            let last = inner
                .audit
                .lock()
                .expect("poisoned")
                .iter()
                .rev()
                .find_map(|r| match (&r.action, r.status) {
                    (Some(ActionSpec::Scale { to, .. }), Status::Succeeded) if r.workload == w.name => Some(*to),
                    _ => None,
                });
            state.expected = last.or(w.replicas);
            state.observed = state.expected;
        }
        let mut wl = Workload {
            cfg: w.clone(),
            actuator,
            proxy: Arc::new(tokio::sync::Mutex::new(proxy)),
            state: Arc::new(Mutex::new(state)),
            poll: None,
        };
        if let (Actuator::Kube(_), Some(k)) = (&wl.actuator, &w.kubernetes) {
            let name = w.name.clone();
            let weak = Arc::downgrade(inner);
            let every = k.poll_interval.0;
            wl.poll = Some(tokio::spawn(async move {
                loop {
                    let Some(inner) = weak.upgrade() else { return };
                    poll_kube(&inner, &name).await;
                    drop(inner);
                    tokio::time::sleep(every).await;
                }
            }));
        }
        Ok(Arc::new(wl))
    }

    /// Decides on every SLO-triggered policy from a finished SLO cycle, and sets the
    /// rollout gates of process workloads. Returns quickly: actions run in their own
    /// tasks.
    pub fn on_slo_cycle(&self, t_ms: i64, slos: Vec<SloInput>) {
        let inner = &self.inner;
        let by_id: BTreeMap<String, SloInput> = slos.into_iter().map(|s| (s.id.clone(), s)).collect();
        // Rollout gates.
        for wl in inner.workloads.read().expect("poisoned").values() {
            if let (Actuator::Process(sup), Some(p)) = (&wl.actuator, &wl.cfg.process) {
                let firing = wl
                    .cfg
                    .slos
                    .iter()
                    .filter_map(|id| by_id.get(id))
                    .flat_map(|s| {
                        s.tiers
                            .iter()
                            .filter(|t| t.state == TierState::Firing && p.rollout.gate_tiers.contains(&t.name))
                            .map(move |t| slo_evidence(s, t))
                    })
                    .collect();
                sup.set_gate(firing);
            }
        }
        let config = inner.config.read().expect("poisoned").clone();
        for p in &config.policies {
            let (Some(slo), Some(tier)) = (&p.trigger.slo, &p.trigger.tier) else {
                continue;
            };
            let trigger = format!("slo {slo} tier {tier}");
            let Some(s) = by_id.get(slo) else {
                self.skip(
                    p,
                    &trigger,
                    Evidence::default(),
                    t_ms,
                    "not-evaluated",
                    format!("SLO {slo} is not loaded or not evaluated yet"),
                );
                continue;
            };
            let Some(t) = s.tiers.iter().find(|x| &x.name == tier) else {
                self.skip(
                    p,
                    &trigger,
                    Evidence::default(),
                    t_ms,
                    "no-tier",
                    format!("SLO {slo} has no tier {tier}"),
                );
                continue;
            };
            let evidence = Evidence {
                slo: Some(slo_evidence(s, t)),
                ..Default::default()
            };
            if let Some(e) = &s.error {
                self.calm_reset(p);
                self.skip(
                    p,
                    &trigger,
                    evidence,
                    t_ms,
                    "slo-error",
                    format!("SLO {slo} evaluation failed: {e}; no action without data"),
                );
                continue;
            }
            match t.state {
                TierState::Firing => self.fire(p, &trigger, evidence, t_ms, Some(t)),
                TierState::Unknown => {
                    self.calm_reset(p);
                    let firing = inner
                        .policies
                        .lock()
                        .expect("poisoned")
                        .get(&p.name)
                        .is_some_and(|st| st.firing_since.is_some());
                    let why = if firing {
                        format!(
                            "tier {tier} of SLO {slo} is unknown (its windows lack data); no action and no scale-down until data returns"
                        )
                    } else {
                        format!(
                            "tier {tier} of SLO {slo} is unknown (its windows lack data); no scale-down without data"
                        )
                    };
                    self.skip(p, &trigger, evidence, t_ms, "data-missing", why);
                }
                TierState::Ok | TierState::Pending => self.calm(p, &trigger, evidence, s, t, t_ms),
            }
        }
        *inner.last_slos.write().expect("poisoned") = by_id;
    }

    /// Decides on every alert-triggered policy from the alerts the router holds.
    pub fn on_alerts(&self, t_ms: i64, alerts: &[AlertInput]) {
        let config = self.inner.config.read().expect("poisoned").clone();
        for p in &config.policies {
            let Some(want) = &p.trigger.alert else { continue };
            let trigger = format!(
                "alert {{{}}}",
                want.iter()
                    .map(|(k, v)| format!("{k}={v:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let matching: Vec<&AlertInput> = alerts
                .iter()
                .filter(|a| want.iter().all(|(k, v)| a.labels.get(k) == Some(v)))
                .collect();
            let active: Vec<&&AlertInput> = matching.iter().filter(|a| !a.suppressed).collect();
            let evidence = |list: &[&AlertInput]| Evidence {
                alert: Some(AlertEvidence {
                    alerts: list.iter().take(5).map(|a| a.labels.clone()).collect(),
                    count: list.len(),
                    since: list.iter().map(|a| a.starts_at_ms).min().map(format_rfc3339),
                }),
                ..Default::default()
            };
            if !active.is_empty() {
                let list: Vec<&AlertInput> = active.into_iter().copied().collect();
                self.fire(p, &trigger, evidence(&list), t_ms, None);
            } else if !matching.is_empty() {
                self.skip(
                    p,
                    &trigger,
                    evidence(&matching),
                    t_ms,
                    "silenced",
                    "the matching alerts are silenced or inhibited; a silence pauses the automation it covers".into(),
                );
            } else {
                let mut policies = self.inner.policies.lock().expect("poisoned");
                let st = policies.entry(p.name.clone()).or_default();
                st.firing_since = None;
                st.episode_acted = false;
            }
        }
    }

    fn calm_reset(&self, p: &PolicyConfig) {
        let mut policies = self.inner.policies.lock().expect("poisoned");
        policies.entry(p.name.clone()).or_default().calm_since = None;
    }

    /// The trigger holds: act if the guardrails allow.
    fn fire(&self, p: &PolicyConfig, trigger: &str, mut evidence: Evidence, t: i64, tier: Option<&TierInput>) {
        let inner = &self.inner;
        let Ok(kind) = p.action.kind() else { return };
        let Some(wl) = inner.workloads.read().expect("poisoned").get(&p.workload).cloned() else {
            return;
        };
        {
            let mut policies = inner.policies.lock().expect("poisoned");
            let st = policies.entry(p.name.clone()).or_default();
            st.calm_since = None;
            if st.firing_since.is_none() {
                st.firing_since = Some(t);
                st.episode_acted = false;
            }
            if st.pending.is_some() {
                return;
            }
        }
        let observed = wl.state.lock().expect("poisoned").observed;
        evidence.replicas = observed;
        let action = match &kind {
            ActionKind::Scale(s) => {
                let Some(current) = observed else {
                    let e = wl.state.lock().expect("poisoned").error.clone().unwrap_or_default();
                    self.skip(
                        p,
                        trigger,
                        evidence,
                        t,
                        "replicas-unknown",
                        format!("the replica count of {} is unknown ({e}); no action", p.workload),
                    );
                    return;
                };
                if current >= s.max {
                    self.skip(
                        p,
                        trigger,
                        evidence,
                        t,
                        "at-max",
                        format!("{} already has {current} replicas, the policy's max", p.workload),
                    );
                    return;
                }
                if let Some(last) = self.policy_last_action(p)
                    && t - last < s.cooldown.0.as_millis() as i64
                {
                    self.skip(
                        p,
                        trigger,
                        evidence,
                        t,
                        "cooldown",
                        format!(
                            "cooldown: last scale {} ago (cooldown {})",
                            format_duration(Duration::from_millis((t - last) as u64)),
                            format_duration(s.cooldown.0)
                        ),
                    );
                    return;
                }
                let to = scale_up_target(s, current, tier);
                ActionSpec::Scale { from: current, to }
            }
            ActionKind::Restart(r) => {
                if self.episode_acted(p) {
                    return;
                }
                if let Some(last) = self.policy_last_action(p)
                    && t - last < r.cooldown.0.as_millis() as i64
                {
                    self.skip(
                        p,
                        trigger,
                        evidence,
                        t,
                        "cooldown",
                        format!(
                            "cooldown: last restart {} ago (cooldown {})",
                            format_duration(Duration::from_millis((t - last) as u64)),
                            format_duration(r.cooldown.0)
                        ),
                    );
                    return;
                }
                ActionSpec::Restart
            }
            ActionKind::Webhook(h) => {
                if self.episode_acted(p) {
                    return;
                }
                ActionSpec::Webhook { url: h.url.clone() }
            }
            ActionKind::Exec(e) => {
                if self.episode_acted(p) {
                    return;
                }
                ActionSpec::Exec {
                    command: e.command.clone(),
                }
            }
        };
        let reason = match (&action, tier) {
            (ActionSpec::Scale { from, to }, Some(t)) => {
                format!("tier {} firing; scale up from {from} to {to}", t.name)
            }
            (ActionSpec::Scale { from, to }, None) => format!("alert firing; scale up from {from} to {to}"),
            (_, Some(t)) => format!("tier {} firing", t.name),
            (_, None) => "alert firing".to_owned(),
        };
        self.decide(p, &wl, trigger, evidence, t, action, reason);
    }

    /// The trigger does not hold: the scale-down clock runs while every window of
    /// the tier burns below 1× with coverage.
    fn calm(&self, p: &PolicyConfig, trigger: &str, mut evidence: Evidence, s: &SloInput, tier: &TierInput, t: i64) {
        let inner = &self.inner;
        let scale = {
            let mut policies = inner.policies.lock().expect("poisoned");
            let st = policies.entry(p.name.clone()).or_default();
            st.firing_since = None;
            st.episode_acted = false;
            match p.action.kind() {
                Ok(ActionKind::Scale(sc)) if sc.scale_down.enabled => sc,
                _ => return,
            }
        };
        let names: Vec<&String> = tier
            .conditions
            .iter()
            .flat_map(|c| std::iter::once(&c.long_window).chain(c.short_window.as_ref()))
            .collect();
        let windows: Vec<&WindowEvidence> = s.windows.iter().filter(|w| names.contains(&&w.window)).collect();
        let calm = !windows.is_empty()
            && windows.len() >= names.iter().collect::<std::collections::BTreeSet<_>>().len()
            && windows
                .iter()
                .all(|w| w.burn_rate.is_some_and(|b| b < 1.0) && w.coverage >= scale.scale_down.min_coverage);
        let (calm_since, last_up, last_action, pending) = {
            let mut policies = inner.policies.lock().expect("poisoned");
            let st = policies.entry(p.name.clone()).or_default();
            if !calm {
                st.calm_since = None;
                return;
            }
            let since = *st.calm_since.get_or_insert(t);
            (since, st.last_scale_up_ms, st.last_action_ms, st.pending.is_some())
        };
        if pending || t - calm_since < scale.scale_down.after.0.as_millis() as i64 {
            return;
        }
        let Some(wl) = inner.workloads.read().expect("poisoned").get(&p.workload).cloned() else {
            return;
        };
        let Some(current) = wl.state.lock().expect("poisoned").observed else {
            return;
        };
        if current <= scale.min {
            return;
        }
        if last_up.is_some_and(|u| t - u < scale.stabilization.0.as_millis() as i64)
            || last_action.is_some_and(|a| t - a < scale.cooldown.0.as_millis() as i64)
        {
            return;
        }
        evidence.replicas = Some(current);
        let to = current.saturating_sub(scale.scale_down.step).max(scale.min);
        let reason = format!(
            "every window burned below 1× with coverage for {}; scale down from {current} to {to}",
            format_duration(Duration::from_millis((t - calm_since) as u64))
        );
        self.decide(
            p,
            &wl,
            trigger,
            evidence,
            t,
            ActionSpec::Scale { from: current, to },
            reason,
        );
    }

    fn policy_last_action(&self, p: &PolicyConfig) -> Option<i64> {
        self.inner
            .policies
            .lock()
            .expect("poisoned")
            .get(&p.name)
            .and_then(|s| s.last_action_ms)
    }

    fn episode_acted(&self, p: &PolicyConfig) -> bool {
        self.inner
            .policies
            .lock()
            .expect("poisoned")
            .get(&p.name)
            .is_some_and(|s| s.episode_acted)
    }

    /// The last guardrails (action in progress, rate limits), then act, park for
    /// approval, or record a dry run.
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &self,
        p: &PolicyConfig,
        wl: &Arc<Workload>,
        trigger: &str,
        evidence: Evidence,
        t: i64,
        action: ActionSpec,
        reason: String,
    ) {
        let inner = &self.inner;
        let in_flight = wl.state.lock().expect("poisoned").in_flight.clone();
        if let Some(id) = in_flight {
            let why = format!("another action on {} is in progress ({id})", p.workload);
            self.skip(p, trigger, evidence, t, "in-progress", why);
            return;
        }
        if let Actuator::Process(sup) = &wl.actuator
            && sup.busy()
        {
            self.skip(
                p,
                trigger,
                evidence,
                t,
                "in-progress",
                format!("{} is rolling out or restarting", p.workload),
            );
            return;
        }
        let limited = |recent: &mut VecDeque<i64>, limit: &Option<RateLimit>| -> Option<String> {
            let l = limit.as_ref()?;
            let window = l.per.0.as_millis() as i64;
            while recent.front().is_some_and(|x| t - x >= window) {
                recent.pop_front();
            }
            (recent.len() as u32 >= l.max).then(|| format!("{} actions in {}", l.max, format_duration(l.per.0)))
        };
        // (Each lock is released before `skip`, which takes the policies' lock.)
        let policy_limit = {
            let mut policies = inner.policies.lock().expect("poisoned");
            limited(&mut policies.entry(p.name.clone()).or_default().recent, &p.rate_limit)
        };
        if let Some(why) = policy_limit {
            self.skip(
                p,
                trigger,
                evidence,
                t,
                "rate-limit",
                format!("rate limit of policy {}: {why}", p.name),
            );
            return;
        }
        let workload_limit = {
            let mut st = wl.state.lock().expect("poisoned");
            limited(&mut st.recent, &wl.cfg.rate_limit)
        };
        if let Some(why) = workload_limit {
            self.skip(
                p,
                trigger,
                evidence,
                t,
                "rate-limit",
                format!("rate limit of workload {}: {why}", p.workload),
            );
            return;
        }
        let dry_run = p.dry_run || inner.config.read().expect("poisoned").dry_run;
        let (decision, status) = if dry_run {
            (Decision::DryRun, Status::None)
        } else if p.approval == Approval::Required {
            (Decision::AwaitingApproval, Status::Pending)
        } else {
            (Decision::Act, Status::Running)
        };
        let record = AuditRecord {
            id: uuid::Uuid::new_v4().to_string(),
            time_ms: t,
            policy: p.name.clone(),
            workload: p.workload.clone(),
            trigger: trigger.to_owned(),
            evidence,
            decision,
            reason,
            action: Some(action.clone()),
            status,
            detail: String::new(),
            finished_ms: None,
            approved_by: None,
            approval_comment: None,
            dry_run,
        };
        {
            let mut policies = inner.policies.lock().expect("poisoned");
            let st = policies.entry(p.name.clone()).or_default();
            st.last_action_ms = Some(t);
            st.episode_acted = true;
            st.last_skip = None;
            if let ActionSpec::Scale { from, to } = action
                && to > from
            {
                st.last_scale_up_ms = Some(t);
            }
            if decision == Decision::AwaitingApproval {
                st.pending = Some(record.id.clone());
            } else {
                st.recent.push_back(t);
            }
        }
        self.count_decision(&record);
        let ticket = inner.audit.lock().expect("poisoned").append(record.clone());
        match decision {
            Decision::Act => {
                wl.state.lock().expect("poisoned").recent.push_back(t);
                self.execute(wl.clone(), record, Some(ticket));
            }
            Decision::AwaitingApproval => {
                inner.metrics.pending.inc();
                tracing::info!(policy = %p.name, id = %record.id, "action awaits approval: {}", record.sentence());
                tokio::spawn(async move {
                    if let Err(e) = ticket.durable().await {
                        tracing::error!(error = %e, "audit record not durable");
                    }
                });
            }
            _ => {
                tracing::info!(policy = %p.name, "{}", record.sentence());
                tokio::spawn(async move {
                    if let Err(e) = ticket.durable().await {
                        tracing::error!(error = %e, "audit record not durable");
                    }
                });
            }
        }
    }

    /// Records a skip, once per reason per ten minutes.
    fn skip(&self, p: &PolicyConfig, trigger: &str, evidence: Evidence, t: i64, key: &str, reason: String) {
        {
            let mut policies = self.inner.policies.lock().expect("poisoned");
            let st = policies.entry(p.name.clone()).or_default();
            if st
                .last_skip
                .as_ref()
                .is_some_and(|(k, at)| k == key && t - at < SKIP_REPEAT_MS)
            {
                return;
            }
            st.last_skip = Some((key.to_owned(), t));
        }
        let record = AuditRecord {
            id: uuid::Uuid::new_v4().to_string(),
            time_ms: t,
            policy: p.name.clone(),
            workload: p.workload.clone(),
            trigger: trigger.to_owned(),
            evidence,
            decision: Decision::Skip,
            reason,
            action: None,
            status: Status::None,
            detail: String::new(),
            finished_ms: None,
            approved_by: None,
            approval_comment: None,
            dry_run: false,
        };
        tracing::info!(policy = %p.name, "{}", record.sentence());
        self.count_decision(&record);
        let ticket = self.inner.audit.lock().expect("poisoned").append(record);
        tokio::spawn(async move {
            let _ = ticket.durable().await;
        });
    }

    fn count_decision(&self, r: &AuditRecord) {
        let d = serde_json::to_value(r.decision).expect("serializes");
        self.inner
            .metrics
            .decisions
            .get_or_create(&DecisionLabels {
                policy: r.policy.clone(),
                workload: r.workload.clone(),
                decision: d.as_str().unwrap_or_default().to_owned(),
            })
            .inc();
    }

    /// Runs the action once its record is durable, then records how it went.
    fn execute(&self, wl: Arc<Workload>, record: AuditRecord, ticket: Option<sextant_wal::Ticket>) {
        let inner = self.inner.clone();
        wl.state.lock().expect("poisoned").in_flight = Some(record.id.clone());
        tokio::spawn(async move {
            if let Some(t) = ticket
                && let Err(e) = t.durable().await
            {
                tracing::error!(error = %e, "audit record not durable; not acting");
                finish(&inner, &wl, &record, Err(format!("audit log not writable: {e}")));
                return;
            }
            tracing::info!(policy = %record.policy, id = %record.id, "acting: {}", record.sentence());
            let req = ActionRequest::new(
                &record.id,
                &record.policy,
                &record.workload,
                record.action.clone().expect("actions have one"),
                &record.reason,
                record.evidence.clone(),
                record.time_ms,
            );
            let policy = inner
                .config
                .read()
                .expect("poisoned")
                .policies
                .iter()
                .find(|p| p.name == record.policy)
                .cloned();
            let result = run_action(&inner, &wl, policy.as_ref(), &req).await;
            finish(&inner, &wl, &record, result);
        });
    }

    /// Approves a parked action; it runs at once.
    pub fn approve(&self, id: &str, by: &str, comment: &str) -> Result<AuditRecord, ApprovalError> {
        let inner = &self.inner;
        let record = inner
            .audit
            .lock()
            .expect("poisoned")
            .get(id)
            .cloned()
            .ok_or(ApprovalError::NotFound)?;
        if record.status != Status::Pending {
            return Err(ApprovalError::NotPending(format!(
                "action {id} is not waiting for approval (status {})",
                serde_json::to_value(record.status)
                    .expect("serializes")
                    .as_str()
                    .unwrap_or_default()
            )));
        }
        let wl = inner
            .workloads
            .read()
            .expect("poisoned")
            .get(&record.workload)
            .cloned()
            .ok_or_else(|| {
                ApprovalError::NotPending(format!("workload {} is no longer configured", record.workload))
            })?;
        {
            let st = wl.state.lock().expect("poisoned");
            if let Some(other) = &st.in_flight {
                return Err(ApprovalError::Busy(format!(
                    "another action on {} is in progress ({other}); approve again when it is done",
                    record.workload
                )));
            }
            if let (Some(ActionSpec::Scale { from, .. }), Some(now)) = (&record.action, st.observed)
                && *from != now
            {
                drop(st);
                self.close_pending(
                    id,
                    Status::Expired,
                    by,
                    comment,
                    format!(
                        "{} has {now} replicas now, not {from} as when this was decided; decide again",
                        record.workload
                    ),
                );
                return Err(ApprovalError::NotPending(format!(
                    "action {id} is stale: {} changed since it was decided",
                    record.workload
                )));
            }
        }
        let (updated, ticket) = inner
            .audit
            .lock()
            .expect("poisoned")
            .update(id, |r| {
                r.decision = Decision::Act;
                r.status = Status::Running;
                r.approved_by = Some(by.to_owned());
                r.approval_comment = Some(comment.to_owned()).filter(|c| !c.is_empty());
            })
            .ok_or(ApprovalError::NotFound)?;
        inner.metrics.pending.dec();
        {
            let mut policies = inner.policies.lock().expect("poisoned");
            let st = policies.entry(record.policy.clone()).or_default();
            st.pending = None;
            st.recent.push_back(now_ms());
        }
        wl.state.lock().expect("poisoned").recent.push_back(now_ms());
        self.execute(wl, updated.clone(), Some(ticket));
        Ok(updated)
    }

    /// Rejects a parked action.
    pub fn reject(&self, id: &str, by: &str, comment: &str) -> Result<AuditRecord, ApprovalError> {
        let record = self
            .inner
            .audit
            .lock()
            .expect("poisoned")
            .get(id)
            .cloned()
            .ok_or(ApprovalError::NotFound)?;
        if record.status != Status::Pending {
            return Err(ApprovalError::NotPending(format!(
                "action {id} is not waiting for approval"
            )));
        }
        Ok(self.close_pending(id, Status::Rejected, by, comment, format!("rejected by {by}")))
    }

    fn close_pending(&self, id: &str, status: Status, by: &str, comment: &str, detail: String) -> AuditRecord {
        let inner = &self.inner;
        let (r, ticket) = inner
            .audit
            .lock()
            .expect("poisoned")
            .update(id, |r| {
                r.status = status;
                r.detail = detail;
                r.finished_ms = Some(now_ms());
                r.approved_by = Some(by.to_owned()).filter(|b| !b.is_empty());
                r.approval_comment = Some(comment.to_owned()).filter(|c| !c.is_empty());
            })
            .expect("exists");
        inner.metrics.pending.dec();
        if let Some(st) = inner.policies.lock().expect("poisoned").get_mut(&r.policy)
            && st.pending.as_deref() == Some(id)
        {
            st.pending = None;
        }
        count_action(inner, &r);
        tokio::spawn(async move {
            let _ = ticket.durable().await;
        });
        r
    }

    /// Audit records, newest first.
    pub fn actions(&self, filter: &Filter) -> Vec<AuditRecord> {
        self.inner.audit.lock().expect("poisoned").query(filter)
    }

    /// One audit record.
    pub fn action(&self, id: &str) -> Option<AuditRecord> {
        self.inner.audit.lock().expect("poisoned").get(id).cloned()
    }

    /// Every workload.
    pub fn workloads(&self) -> Vec<WorkloadStatus> {
        let wls = self.inner.workloads.read().expect("poisoned").clone();
        wls.values().map(|w| self.status_of(w)).collect()
    }

    /// One workload.
    pub fn workload(&self, name: &str) -> Option<WorkloadStatus> {
        let wl = self.inner.workloads.read().expect("poisoned").get(name).cloned()?;
        Some(self.status_of(&wl))
    }

    fn status_of(&self, w: &Workload) -> WorkloadStatus {
        let st = w.state.lock().expect("poisoned");
        let last = self
            .inner
            .audit
            .lock()
            .expect("poisoned")
            .query(&Filter {
                workload: Some(w.cfg.name.clone()),
                limit: Some(1),
                ..Default::default()
            })
            .pop();
        let (kind, target, process, replicas) = match &w.actuator {
            Actuator::Process(s) => ("process", None, Some(s.status()), Some(s.desired())),
            Actuator::Kube(k) => ("kubernetes", Some(k.describe()), None, st.observed),
            Actuator::Webhook(_) => ("webhook", None, None, st.observed),
            Actuator::Exec(_) => ("exec", None, None, st.observed),
        };
        WorkloadStatus {
            name: w.cfg.name.clone(),
            kind: kind.into(),
            slos: w.cfg.slos.clone(),
            replicas,
            error: st.error.clone(),
            action_in_progress: st.in_flight.clone(),
            target,
            process,
            last_action: last,
        }
    }

    /// Adds an `sextant_actions` annotation to alerts that set off policies: what
    /// was done (or decided) in this firing episode, newest last.
    pub fn annotate(&self, alerts: &mut [PostableAlert]) {
        let config = self.inner.config.read().expect("poisoned").clone();
        if config.policies.is_empty() {
            return;
        }
        let audit = self.inner.audit.lock().expect("poisoned");
        for a in alerts.iter_mut() {
            let labels: BTreeMap<&str, &str> = a.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
            let policies: Vec<&str> = config
                .policies
                .iter()
                .filter(|p| match (&p.trigger.slo, &p.trigger.tier, &p.trigger.alert) {
                    (Some(slo), Some(tier), _) => {
                        labels.get("sloth_id") == Some(&slo.as_str()) && labels.get("tier") == Some(&tier.as_str())
                    }
                    (_, _, Some(want)) => want.iter().all(|(k, v)| labels.get(k.as_str()) == Some(&v.as_str())),
                    _ => false,
                })
                .map(|p| p.name.as_str())
                .collect();
            if policies.is_empty() {
                continue;
            }
            let since = a.starts_at_ms.unwrap_or(0);
            let mut lines: Vec<String> = audit
                .iter()
                .rev()
                .filter(|r| r.time_ms >= since && policies.contains(&r.policy.as_str()))
                .filter(|r| r.decision != Decision::Observe)
                // Guardrails that hold right after an action are not news.
                .filter(|r| {
                    !(r.decision == Decision::Skip
                        && (r.reason.starts_with("cooldown") || r.reason.starts_with("another action")))
                })
                .take(3)
                .map(AuditRecord::sentence)
                .collect();
            if lines.is_empty() {
                continue;
            }
            lines.reverse();
            a.annotations.insert("sextant_actions".into(), lines.join("; "));
        }
    }

    /// Stops every workload (replicas drained and stopped, proxies closed) and
    /// checkpoints the audit log.
    pub async fn shutdown(&self) {
        let wls: Vec<Arc<Workload>> = self
            .inner
            .workloads
            .read()
            .expect("poisoned")
            .values()
            .cloned()
            .collect();
        for w in wls {
            stop_workload(&w).await;
        }
        let ticket = self.inner.audit.lock().expect("poisoned").checkpoint();
        let _ = ticket.durable().await;
    }
}

/// Replicas for a scale-up: `step` more, or in proportion to the burn (the
/// firing condition's short-window burn over its threshold), at least `step` more;
/// at most `max`.
fn scale_up_target(s: &ScaleConfig, current: u32, tier: Option<&TierInput>) -> u32 {
    let mut to = current + s.step;
    if s.proportional
        && let Some(t) = tier
        && let Some(c) = t.conditions.iter().find(|c| c.firing)
        && let Some(burn) = c.short_burn_rate.or(c.long_burn_rate)
        && c.threshold > 0.0
    {
        let factor = (burn / c.threshold).min(10.0);
        to = to.max((current as f64 * factor).ceil() as u32);
    }
    to.min(s.max)
}

fn slo_evidence(s: &SloInput, t: &TierInput) -> SloEvidence {
    SloEvidence {
        slo: s.id.clone(),
        tier: t.name.clone(),
        state: t.state.as_str().into(),
        conditions: t.conditions.clone(),
        windows: s.windows.clone(),
        budget_remaining: s.budget_remaining,
        attribution: s.attribution.clone(),
        evaluated_at: s.evaluated_ms.map(format_rfc3339),
    }
}

async fn run_action(
    inner: &Inner,
    wl: &Workload,
    policy: Option<&PolicyConfig>,
    req: &ActionRequest,
) -> Result<String, String> {
    match (&req.action, &wl.actuator) {
        (ActionSpec::Scale { to, .. }, Actuator::Process(s)) => s.scale(*to).await,
        (ActionSpec::Scale { to, .. }, Actuator::Kube(k)) => k.scale(*to).await,
        (ActionSpec::Scale { .. } | ActionSpec::Restart, Actuator::Webhook(h)) => {
            call_webhook(&inner.http, h, req).await
        }
        (ActionSpec::Scale { .. } | ActionSpec::Restart, Actuator::Exec(e)) => run_exec(e, req).await,
        (ActionSpec::Restart, Actuator::Process(s)) => s.restart().await,
        (ActionSpec::Restart, Actuator::Kube(k)) => k.restart(now_ms()).await,
        (ActionSpec::Webhook { .. }, _) => match policy.and_then(|p| p.action.webhook.as_ref()) {
            Some(h) => call_webhook(&inner.http, h, req).await,
            None => Err("the policy no longer has this webhook".into()),
        },
        (ActionSpec::Exec { .. }, _) => match policy.and_then(|p| p.action.exec.as_ref()) {
            Some(e) => run_exec(e, req).await,
            None => Err("the policy no longer has this command".into()),
        },
        (a, _) => Err(format!("{} is not an action policies take", a.kind())),
    }
}

fn finish(inner: &Inner, wl: &Workload, record: &AuditRecord, result: Result<String, String>) {
    let ok = result.is_ok();
    {
        let mut st = wl.state.lock().expect("poisoned");
        st.in_flight = None;
        if let Some(ActionSpec::Scale { to, .. }) = &record.action {
            match (&wl.actuator, ok) {
                (Actuator::Process(s), _) => {
                    st.expected = Some(s.desired());
                    st.observed = Some(s.desired());
                }
                (_, true) => {
                    st.expected = Some(*to);
                    st.observed = Some(*to);
                }
                // Kubernetes: the poller re-reads; webhook/exec: unchanged.
                (_, false) => {}
            }
        }
    }
    match &result {
        Ok(d) => tracing::info!(policy = %record.policy, id = %record.id, "action succeeded: {d}"),
        Err(e) => tracing::warn!(policy = %record.policy, id = %record.id, "action failed: {e}"),
    }
    let updated = inner.audit.lock().expect("poisoned").update(&record.id, |r| {
        r.status = if ok { Status::Succeeded } else { Status::Failed };
        r.detail = match &result {
            Ok(d) | Err(d) => d.clone(),
        };
        r.finished_ms = Some(now_ms());
    });
    if let Some((r, ticket)) = updated {
        count_action(inner, &r);
        tokio::spawn(async move {
            let _ = ticket.durable().await;
        });
    }
}

fn count_action(inner: &Inner, r: &AuditRecord) {
    let status = serde_json::to_value(r.status).expect("serializes");
    inner
        .metrics
        .actions
        .get_or_create(&ActionLabels {
            policy: r.policy.clone(),
            workload: r.workload.clone(),
            kind: r.action.as_ref().map(|a| a.kind()).unwrap_or_default().into(),
            status: status.as_str().unwrap_or_default().into(),
        })
        .inc();
}

async fn stop_workload(w: &Workload) {
    if let Some(p) = &w.poll {
        p.abort();
    }
    if let Some(h) = w.proxy.lock().await.take() {
        h.stop().await;
    }
    if let Actuator::Process(s) = &w.actuator {
        s.shutdown().await;
    }
}

/// Reads a Kubernetes workload's replicas; a count that differs from what Sextant
/// set, with no action running, was changed by someone else: recorded and
/// respected.
async fn poll_kube(inner: &Arc<Inner>, name: &str) {
    let Some(wl) = inner.workloads.read().expect("poisoned").get(name).cloned() else {
        return;
    };
    let Actuator::Kube(k) = &wl.actuator else { return };
    let read = k.replicas().await;
    observe(inner, &wl, read);
}

fn observe(inner: &Inner, wl: &Workload, read: Result<u32, String>) {
    let manual = {
        let mut st = wl.state.lock().expect("poisoned");
        match read {
            Err(e) => {
                if st.error.as_ref() != Some(&e) {
                    tracing::warn!(workload = %wl.cfg.name, error = %e, "cannot read the replica count");
                }
                st.error = Some(e);
                st.observed = None;
                None
            }
            Ok(n) => {
                st.error = None;
                st.observed = Some(n);
                let manual = match st.expected {
                    Some(e) if e != n && st.in_flight.is_none() => Some((e, n)),
                    _ => None,
                };
                if st.in_flight.is_none() {
                    st.expected = Some(n);
                }
                manual
            }
        }
    };
    inner
        .metrics
        .replicas
        .get_or_create(&ReplicaLabels {
            workload: wl.cfg.name.clone(),
            state: "desired".into(),
        })
        .set(wl.state.lock().expect("poisoned").observed.unwrap_or(0) as i64);
    if let Some((from, to)) = manual {
        let record = AuditRecord {
            id: uuid::Uuid::new_v4().to_string(),
            time_ms: now_ms(),
            policy: String::new(),
            workload: wl.cfg.name.clone(),
            trigger: "observed".into(),
            evidence: Evidence {
                replicas: Some(to),
                ..Default::default()
            },
            decision: Decision::Observe,
            reason: format!(
                "{} was scaled from {from} to {to} outside Sextant; respecting it until the next decision",
                wl.cfg.name
            ),
            action: None,
            status: Status::None,
            detail: String::new(),
            finished_ms: None,
            approved_by: None,
            approval_comment: None,
            dry_run: false,
        };
        tracing::info!(workload = %wl.cfg.name, "{}", record.reason);
        let ticket = inner.audit.lock().expect("poisoned").append(record);
        tokio::spawn(async move {
            let _ = ticket.durable().await;
        });
    }
}

/// Turns supervisor events into audit records.
async fn events_loop(inner: std::sync::Weak<Inner>, mut rx: mpsc::UnboundedReceiver<SupervisorEvent>) {
    while let Some(ev) = rx.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        let now = now_ms();
        let (workload, decision, action, status, reason, evidence) = match ev {
            SupervisorEvent::RolloutStarted {
                workload,
                generation,
                reason,
            } => (
                workload,
                Decision::Act,
                Some(ActionSpec::Rollout { generation }),
                Status::Running,
                reason,
                None,
            ),
            SupervisorEvent::RolloutSucceeded {
                workload,
                generation,
                took,
            } => {
                // Close the open rollout record.
                let open = inner
                    .audit
                    .lock()
                    .expect("poisoned")
                    .iter()
                    .rev()
                    .find(|r| {
                        r.workload == workload
                            && r.status == Status::Running
                            && matches!(&r.action, Some(ActionSpec::Rollout { generation: g }) if *g == generation)
                    })
                    .map(|r| r.id.clone());
                let ticket = open.and_then(|id| {
                    inner.audit.lock().expect("poisoned").update(&id, |r| {
                        r.status = Status::Succeeded;
                        r.detail = format!(
                            "every replica runs generation {generation}; took {:.1}s",
                            took.as_secs_f64()
                        );
                        r.finished_ms = Some(now);
                    })
                });
                if let Some((_, t)) = ticket {
                    let _ = t.durable().await;
                }
                continue;
            }
            SupervisorEvent::RolledBack {
                workload,
                generation,
                reason,
                evidence,
                restored,
            } => {
                let open = inner
                    .audit
                    .lock()
                    .expect("poisoned")
                    .iter()
                    .rev()
                    .find(|r| {
                        r.workload == workload
                            && r.status == Status::Running
                            && matches!(&r.action, Some(ActionSpec::Rollout { generation: g }) if *g == generation)
                    })
                    .map(|r| r.id.clone());
                let ticket = open.and_then(|id| {
                    inner.audit.lock().expect("poisoned").update(&id, |r| {
                        r.status = Status::Failed;
                        r.detail = format!("rolled back: {reason}");
                        r.finished_ms = Some(now);
                    })
                });
                if let Some((_, t)) = ticket {
                    let _ = t.durable().await;
                }
                let detail = if restored {
                    "the old replicas serve again".to_owned()
                } else {
                    "the old replicas are not all ready again".to_owned()
                };
                (
                    workload,
                    Decision::Act,
                    Some(ActionSpec::Rollback { generation }),
                    if restored { Status::Succeeded } else { Status::Failed },
                    format!("{reason}; {detail}"),
                    evidence,
                )
            }
            SupervisorEvent::CrashLoop {
                workload,
                replica,
                failures,
                last_exit,
            } => (
                workload,
                Decision::Observe,
                None,
                Status::None,
                format!("replica {replica} failed {failures} times in a row ({last_exit}); left stopped (crash loop)"),
                None,
            ),
        };
        let record = AuditRecord {
            id: uuid::Uuid::new_v4().to_string(),
            time_ms: now,
            policy: "supervisor".into(),
            workload,
            trigger: match &action {
                Some(ActionSpec::Rollout { .. }) => "config reload".into(),
                Some(ActionSpec::Rollback { .. }) => "rollout gate".into(),
                _ => "replica exits".into(),
            },
            evidence: Evidence {
                slo: evidence,
                ..Default::default()
            },
            decision,
            reason,
            action,
            status,
            detail: String::new(),
            finished_ms: (status != Status::Running).then_some(now),
            approved_by: None,
            approval_comment: None,
            dry_run: false,
        };
        tracing::info!(workload = %record.workload, "{}", record.sentence());
        let ticket = inner.audit.lock().expect("poisoned").append(record);
        let _ = ticket.durable().await;
    }
}

/// Every second: approvals that timed out expire, process workloads' replica
/// counts and restarts are observed; every hour old audit records go.
async fn housekeeping(weak: std::sync::Weak<Inner>) {
    let mut tick = 0u64;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(inner) = weak.upgrade() else { return };
        let engine = ActionEngine { inner: inner.clone() };
        let now = now_ms();
        let config = inner.config.read().expect("poisoned").clone();
        let timeout = config.approval_timeout.0.as_millis() as i64;
        let expired: Vec<String> = inner
            .audit
            .lock()
            .expect("poisoned")
            .iter()
            .filter(|r| r.status == Status::Pending && now - r.time_ms >= timeout)
            .map(|r| r.id.clone())
            .collect();
        for id in expired {
            engine.close_pending(
                &id,
                Status::Expired,
                "",
                "",
                format!(
                    "nobody approved it within {}",
                    format_duration(config.approval_timeout.0)
                ),
            );
        }
        let wls: Vec<Arc<Workload>> = inner.workloads.read().expect("poisoned").values().cloned().collect();
        for wl in wls {
            if let Actuator::Process(s) = &wl.actuator {
                observe(&inner, &wl, Ok(s.desired()));
                let status = s.status();
                inner
                    .metrics
                    .replicas
                    .get_or_create(&ReplicaLabels {
                        workload: wl.cfg.name.clone(),
                        state: "ready".into(),
                    })
                    .set(status.ready as i64);
                let mut seen = inner.restarts_seen.lock().expect("poisoned");
                let before = seen.insert(wl.cfg.name.clone(), status.restarts).unwrap_or(0);
                if status.restarts > before {
                    inner
                        .metrics
                        .restarts
                        .get_or_create(&WorkloadLabels {
                            workload: wl.cfg.name.clone(),
                        })
                        .inc_by(status.restarts - before);
                }
            }
        }
        tick += 1;
        if tick.is_multiple_of(3600) {
            let cutoff = now - config.audit_retention.0.as_millis() as i64;
            let mut audit = inner.audit.lock().expect("poisoned");
            audit.retain_since(cutoff);
            let _ = audit.checkpoint();
        }
    }
}
