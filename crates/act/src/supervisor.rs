//! The process supervisor: runs N replicas of a command, checks their health over
//! HTTP, restarts the ones that exit (exponential backoff, crash-loop limit),
//! scales up and down (draining a replica out of the proxy before SIGTERM, then
//! SIGKILL after the grace period), restarts them one at a time, and rolls out a
//! changed command or environment one replica at a time, gated by the workload's
//! SLOs: a gate tier that starts firing during the rollout rolls it back.
//!
//! Each replica has a task that owns its child process. Operations that change
//! the replica set (scale, restart, rollout) take one lock, so they never overlap,
//! and wait for replicas by watching the shared state. Replicas get their own
//! process group, so a shell command's children are signalled too; their pids are
//! kept in a file so replicas left behind by a Sextant that was killed are
//! stopped when it starts again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sextant_model::time::{format_duration, format_rfc3339, now_ms};
use tokio::io::AsyncBufReadExt;
use tokio::sync::{mpsc, watch};
use utoipa::ToSchema;

use crate::audit::SloEvidence;
use crate::config::ProcessConfig;

/// How often waiting operations look at the replicas.
const POLL: Duration = Duration::from_millis(50);

/// Where traffic for a ready replica goes.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Replica number.
    pub replica: u32,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Requests the proxy has in flight to it.
    pub inflight: Arc<AtomicUsize>,
}

/// The ready replicas the proxy spreads traffic over.
pub type Backends = Arc<RwLock<Vec<Backend>>>;

/// Called with the scrape targets of the workload's replicas whenever they change
/// (`__address__`, `__metrics_path__`, `workload`, `replica`).
pub type TargetsFn = Arc<dyn Fn(&str, Vec<BTreeMap<String, String>>) + Send + Sync>;

/// What the supervisor tells the action engine, for the audit log.
#[derive(Debug, Clone, PartialEq)]
pub enum SupervisorEvent {
    /// A rollout began.
    RolloutStarted {
        /// Workload.
        workload: String,
        /// New generation.
        generation: String,
        /// What changed.
        reason: String,
    },
    /// Every replica runs the new generation.
    RolloutSucceeded {
        /// Workload.
        workload: String,
        /// Generation.
        generation: String,
        /// How long it took.
        took: Duration,
    },
    /// The rollout stopped and the old replicas were kept (or brought back).
    RolledBack {
        /// Workload.
        workload: String,
        /// Generation taken back.
        generation: String,
        /// Why.
        reason: String,
        /// The SLO tier that fired, if that was why.
        evidence: Option<SloEvidence>,
        /// Whether the old replicas are all ready again.
        restored: bool,
    },
    /// A replica failed too often in a row and is left stopped.
    CrashLoop {
        /// Workload.
        workload: String,
        /// Replica.
        replica: u32,
        /// Consecutive failed starts.
        failures: u32,
        /// Its last exit.
        last_exit: String,
    },
}

/// A replica's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Started, not yet healthy.
    Starting,
    /// Healthy; in the proxy.
    Ready,
    /// Failed its health checks; out of the proxy, being restarted.
    Unhealthy,
    /// Exited; waiting to be restarted.
    Backoff,
    /// Failed too often in a row; left stopped.
    CrashLoop,
    /// Being drained and stopped.
    Stopping,
}

/// One replica as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReplicaStatus {
    /// Number (the `replica` label).
    pub replica: u32,
    /// Port on 127.0.0.1.
    pub port: u16,
    /// Process id, while it runs.
    pub pid: Option<u32>,
    /// Phase.
    pub phase: Phase,
    /// Generation (hash of command, environment and directory) it runs.
    pub generation: String,
    /// Times it was restarted.
    pub restarts: u32,
    /// When the current process started (RFC 3339).
    pub started_at: Option<String>,
    /// How its last process ended.
    pub last_exit: Option<String>,
    /// Requests in flight through the proxy.
    pub inflight: usize,
}

/// The rollout state as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RolloutStatus {
    /// `in_progress`, `succeeded`, `rolled_back`.
    pub state: String,
    /// Generation rolled out.
    pub generation: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Replicas of the new generation ready.
    pub updated: u32,
    /// How it ended, or what it is doing.
    pub message: String,
}

/// A process workload as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProcessStatus {
    /// Desired replicas.
    pub desired: u32,
    /// Ready replicas.
    pub ready: u32,
    /// Generation running.
    pub generation: String,
    /// The command.
    pub command: Vec<String>,
    /// The proxy's address.
    pub proxy: Option<String>,
    /// Replicas.
    pub replicas: Vec<ReplicaStatus>,
    /// The last or current rollout.
    pub rollout: Option<RolloutStatus>,
    /// Restarts of all replicas.
    pub restarts: u64,
}

/// What a generation runs.
#[derive(Debug, Clone, PartialEq)]
struct Spec {
    generation: String,
    command: Vec<String>,
    env: BTreeMap<String, String>,
    dir: Option<PathBuf>,
}

impl Spec {
    fn of(cfg: &ProcessConfig) -> Self {
        let text = format!("{:?}\0{:?}\0{:?}", cfg.command, cfg.env, cfg.dir);
        let generation = sextant_model::signature::sha256_hex(text.as_bytes())[..8].to_owned();
        Self {
            generation,
            command: cfg.command.clone(),
            env: cfg.env.clone(),
            dir: cfg.dir.clone(),
        }
    }
}

struct Replica {
    id: u32,
    port: u16,
    spec: Arc<Spec>,
    pid: Option<u32>,
    phase: Phase,
    restarts: u32,
    /// Failed starts in a row.
    failures: u32,
    /// Exits so far (rollouts watch for any).
    exits: u32,
    started: Option<(Instant, i64)>,
    ok_streak: u32,
    fail_streak: u32,
    last_exit: Option<String>,
    inflight: Arc<AtomicUsize>,
    /// Stop for good (drain first).
    stop: watch::Sender<bool>,
    /// Bumped to make the replica restart (failed health checks).
    bounce: watch::Sender<u64>,
    task: Option<tokio::task::JoinHandle<()>>,
}

#[derive(Default)]
struct State {
    replicas: BTreeMap<u32, Replica>,
    next_id: u32,
    desired: u32,
    active: Option<Arc<Spec>>,
    rollout: Option<RolloutStatus>,
    /// A generation whose rollout failed: not retried until the config changes.
    failed_generation: Option<String>,
    restarts_total: u64,
}

#[derive(Serialize, Deserialize)]
struct PidEntry {
    pid: u32,
    start_time: u64,
}

/// Handle to one supervised workload; cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    cfg: RwLock<ProcessConfig>,
    state: Mutex<State>,
    op: tokio::sync::Mutex<()>,
    backends: Backends,
    events: mpsc::UnboundedSender<SupervisorEvent>,
    targets: Option<TargetsFn>,
    /// Firing gate tiers of the workload's SLOs, by `slo/tier`.
    gate: Mutex<BTreeMap<String, SloEvidence>>,
    pid_file: PathBuf,
    http: reqwest::Client,
    stop: watch::Sender<bool>,
}

/// A free port on 127.0.0.1 (the listener is closed again; the child binds it).
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

/// The start time of a process (field 22 of `/proc/PID/stat`), to tell a pid
/// from a later process that reuses it.
fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

fn signal_group(pid: u32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid as i32), sig);
}

fn substitute(s: &str, port: u16, replica: u32) -> String {
    s.replace("{port}", &port.to_string())
        .replace("{replica}", &replica.to_string())
}

impl Supervisor {
    /// Starts the workload's replicas; `state_dir` keeps the pid file. Replicas a
    /// previous Sextant left running are stopped first.
    pub fn start(
        name: &str,
        cfg: ProcessConfig,
        state_dir: PathBuf,
        events: mpsc::UnboundedSender<SupervisorEvent>,
        targets: Option<TargetsFn>,
    ) -> Result<Self, String> {
        std::fs::create_dir_all(&state_dir).map_err(|e| format!("creating {}: {e}", state_dir.display()))?;
        let pid_file = state_dir.join("pids.json");
        if let Ok(text) = std::fs::read_to_string(&pid_file)
            && let Ok(entries) = serde_json::from_str::<Vec<PidEntry>>(&text)
        {
            for e in entries {
                if process_start_time(e.pid) == Some(e.start_time) {
                    tracing::warn!(
                        workload = name,
                        pid = e.pid,
                        "stopping a replica left behind by a previous run"
                    );
                    signal_group(e.pid, nix::sys::signal::Signal::SIGKILL);
                }
            }
        }
        let http = crate::http_client().no_proxy().build().map_err(|e| e.to_string())?;
        let (stop, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            name: name.to_owned(),
            cfg: RwLock::new(cfg.clone()),
            state: Mutex::new(State {
                desired: cfg.replicas,
                active: Some(Arc::new(Spec::of(&cfg))),
                ..Default::default()
            }),
            op: tokio::sync::Mutex::new(()),
            backends: Arc::default(),
            events,
            targets,
            gate: Mutex::default(),
            pid_file,
            http,
            stop,
        });
        let spec = inner.state.lock().expect("poisoned").active.clone().expect("set");
        for _ in 0..cfg.replicas {
            add_replica(&inner, spec.clone())?;
        }
        tokio::spawn(health_loop(inner.clone()));
        Ok(Self { inner })
    }

    /// The workload's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The ready replicas, for the proxy.
    pub fn backends(&self) -> Backends {
        self.inner.backends.clone()
    }

    /// Replicas wanted.
    pub fn desired(&self) -> u32 {
        self.inner.state.lock().expect("poisoned").desired
    }

    /// Whether a scale, restart or rollout is under way.
    pub fn busy(&self) -> bool {
        self.inner.op.try_lock().is_err()
    }

    /// Sets the gate tiers now firing for the workload's SLOs (each SLO cycle).
    pub fn set_gate(&self, firing: Vec<SloEvidence>) {
        let mut g = self.inner.gate.lock().expect("poisoned");
        *g = firing
            .into_iter()
            .map(|e| (format!("{}/{}", e.slo, e.tier), e))
            .collect();
    }

    /// The workload as the API shows it.
    pub fn status(&self) -> ProcessStatus {
        let cfg = self.inner.cfg.read().expect("poisoned").clone();
        let st = self.inner.state.lock().expect("poisoned");
        ProcessStatus {
            desired: st.desired,
            ready: st.replicas.values().filter(|r| r.phase == Phase::Ready).count() as u32,
            generation: st.active.as_ref().map(|s| s.generation.clone()).unwrap_or_default(),
            command: cfg.command.clone(),
            proxy: cfg.proxy.as_ref().map(|p| p.listen.clone()),
            replicas: st
                .replicas
                .values()
                .map(|r| ReplicaStatus {
                    replica: r.id,
                    port: r.port,
                    pid: r.pid,
                    phase: r.phase,
                    generation: r.spec.generation.clone(),
                    restarts: r.restarts,
                    started_at: r.started.map(|(_, ms)| format_rfc3339(ms)),
                    last_exit: r.last_exit.clone(),
                    inflight: r.inflight.load(Ordering::Relaxed),
                })
                .collect(),
            rollout: st.rollout.clone(),
            restarts: st.restarts_total,
        }
    }

    /// Scales to `to` replicas: new ones are started and waited for (until they are
    /// ready or the rollout start timeout passes); removed ones (not-ready ones
    /// first, then the newest) are drained and stopped.
    pub async fn scale(&self, to: u32) -> Result<String, String> {
        let _op = self.inner.op.lock().await;
        let inner = &self.inner;
        let started = Instant::now();
        let (current, spec) = {
            let mut st = inner.state.lock().expect("poisoned");
            st.desired = to;
            let current: Vec<u32> = st
                .replicas
                .values()
                .filter(|r| r.phase != Phase::Stopping)
                .map(|r| r.id)
                .collect();
            (current, st.active.clone().expect("set"))
        };
        let from = current.len() as u32;
        if to > from {
            let mut new = Vec::new();
            for _ in from..to {
                new.push(add_replica(inner, spec.clone())?);
            }
            let timeout = inner.cfg.read().expect("poisoned").rollout.start_timeout.0;
            match wait_ready(inner, &new, timeout, None).await {
                Ok(()) => Ok(format!(
                    "{} scaled from {from} to {to} replicas; all ready after {:.1}s",
                    inner.name,
                    started.elapsed().as_secs_f64()
                )),
                Err(e) => Err(format!("{} scaled from {from} to {to} replicas, but {e}", inner.name)),
            }
        } else if to < from {
            let victims = {
                let st = inner.state.lock().expect("poisoned");
                let mut ids: Vec<&Replica> = st.replicas.values().filter(|r| r.phase != Phase::Stopping).collect();
                // Not-ready replicas go first, then the newest.
                ids.sort_by_key(|r| (r.phase == Phase::Ready, std::cmp::Reverse(r.id)));
                ids.iter().take((from - to) as usize).map(|r| r.id).collect::<Vec<_>>()
            };
            futures_util::future::join_all(victims.iter().map(|id| stop_replica(inner, *id))).await;
            Ok(format!(
                "{} scaled from {from} to {to} replicas in {:.1}s",
                inner.name,
                started.elapsed().as_secs_f64()
            ))
        } else {
            Ok(format!("{} already has {to} replicas", inner.name))
        }
    }

    /// Replaces every replica, one at a time: a new one is started and waited for
    /// before an old one is drained and stopped. Stops at the first new replica
    /// that does not become ready (the old ones it would have replaced stay).
    pub async fn restart(&self) -> Result<String, String> {
        let _op = self.inner.op.lock().await;
        let inner = &self.inner;
        let started = Instant::now();
        let (old, spec) = {
            let st = inner.state.lock().expect("poisoned");
            let old: Vec<u32> = st
                .replicas
                .values()
                .filter(|r| r.phase != Phase::Stopping)
                .map(|r| r.id)
                .collect();
            (old, st.active.clone().expect("set"))
        };
        let timeout = inner.cfg.read().expect("poisoned").rollout.start_timeout.0;
        for (i, id) in old.iter().enumerate() {
            let new = add_replica(inner, spec.clone())?;
            if let Err(e) = wait_ready(inner, &[new], timeout, None).await {
                stop_replica(inner, new).await;
                return Err(format!(
                    "{}: restart stopped after {i} of {} replicas: {e}",
                    inner.name,
                    old.len()
                ));
            }
            stop_replica(inner, *id).await;
        }
        Ok(format!(
            "{}: {} replicas restarted one at a time in {:.1}s",
            inner.name,
            old.len(),
            started.elapsed().as_secs_f64()
        ))
    }

    /// Takes a new configuration: a changed command, environment or directory is
    /// rolled out in the background (see [`Supervisor::rollout`]); a changed
    /// replica count is applied as a scale; health, restart and stop settings apply
    /// at once. A generation whose rollout failed is not retried.
    pub fn apply(&self, cfg: ProcessConfig) {
        let old = std::mem::replace(&mut *self.inner.cfg.write().expect("poisoned"), cfg.clone());
        let spec = Spec::of(&cfg);
        let (active, failed) = {
            let st = self.inner.state.lock().expect("poisoned");
            (
                st.active.as_ref().map(|s| s.generation.clone()),
                st.failed_generation.clone(),
            )
        };
        let this = self.clone();
        let rescale = (old.replicas != cfg.replicas).then_some(cfg.replicas);
        let roll = active.as_deref() != Some(&spec.generation) && failed.as_deref() != Some(&spec.generation);
        if active.as_deref() != Some(&spec.generation) && !roll {
            tracing::warn!(workload = %self.inner.name, generation = %spec.generation, "not rolling out again a generation whose rollout failed; change the command or environment");
        }
        tokio::spawn(async move {
            if let Some(n) = rescale
                && let Err(e) = this.scale(n).await
            {
                tracing::warn!(workload = %this.inner.name, error = %e, "scaling to the configured replicas failed");
            }
            if roll {
                this.rollout(spec).await;
            }
        });
    }

    /// Rolls out `spec` one replica at a time. Each new replica must be ready within
    /// `rollout.start_timeout` and must not exit; after it, the workload's SLOs are
    /// watched for `rollout.pause` before an old replica is stopped. A gate tier that
    /// starts firing during the rollout, or a new replica that fails, rolls back:
    /// the new replicas are stopped and old ones started in their place.
    async fn rollout(&self, spec: Spec) {
        let _op = self.inner.op.lock().await;
        let inner = &self.inner;
        let cfg = inner.cfg.read().expect("poisoned").clone();
        let spec = Arc::new(spec);
        let started = Instant::now();
        let (old, old_spec) = {
            let mut st = inner.state.lock().expect("poisoned");
            let old: Vec<u32> = st
                .replicas
                .values()
                .filter(|r| r.phase != Phase::Stopping)
                .map(|r| r.id)
                .collect();
            st.rollout = Some(RolloutStatus {
                state: "in_progress".into(),
                generation: spec.generation.clone(),
                started_at: format_rfc3339(now_ms()),
                updated: 0,
                message: format!("replacing {} replicas one at a time", old.len()),
            });
            (old, st.active.clone().expect("set"))
        };
        let _ = inner.events.send(SupervisorEvent::RolloutStarted {
            workload: inner.name.clone(),
            generation: spec.generation.clone(),
            reason: format!(
                "command or environment changed (generation {} to {})",
                old_spec.generation, spec.generation
            ),
        });
        let already_firing: BTreeSet<String> = inner.gate.lock().expect("poisoned").keys().cloned().collect();
        let mut new_ids = Vec::new();
        let mut failure: Option<(String, Option<SloEvidence>)> = None;
        for id in &old {
            let new = match add_replica(inner, spec.clone()) {
                Ok(n) => n,
                Err(e) => {
                    failure = Some((e, None));
                    break;
                }
            };
            new_ids.push(new);
            if let Err(e) = wait_ready(inner, &[new], cfg.rollout.start_timeout.0, Some(&already_firing)).await {
                let evidence = newly_firing(inner, &already_firing);
                failure = Some((e, evidence));
                break;
            }
            // Watch the SLOs with the new replica serving.
            let pause_end = Instant::now() + cfg.rollout.pause.0;
            while Instant::now() < pause_end {
                if let Some(e) = newly_firing(inner, &already_firing) {
                    failure = Some((
                        format!("SLO {} tier {} fired during the rollout", e.slo, e.tier),
                        Some(e),
                    ));
                    break;
                }
                if exited(inner, new) {
                    failure = Some((format!("new replica {new} exited"), None));
                    break;
                }
                tokio::time::sleep(POLL).await;
            }
            if failure.is_some() {
                break;
            }
            stop_replica(inner, *id).await;
            if let Some(r) = inner.state.lock().expect("poisoned").rollout.as_mut() {
                r.updated += 1;
            }
        }
        match failure {
            None => {
                {
                    let mut st = inner.state.lock().expect("poisoned");
                    st.active = Some(spec.clone());
                    st.failed_generation = None;
                    if let Some(r) = st.rollout.as_mut() {
                        r.state = "succeeded".into();
                        r.message = format!(
                            "{} replicas replaced in {:.1}s",
                            old.len(),
                            started.elapsed().as_secs_f64()
                        );
                    }
                }
                tracing::info!(workload = %inner.name, generation = %spec.generation, "rollout succeeded");
                let _ = inner.events.send(SupervisorEvent::RolloutSucceeded {
                    workload: inner.name.clone(),
                    generation: spec.generation.clone(),
                    took: started.elapsed(),
                });
            }
            Some((reason, evidence)) => {
                tracing::warn!(workload = %inner.name, generation = %spec.generation, %reason, "rollout failed; rolling back");
                futures_util::future::join_all(new_ids.iter().map(|id| stop_replica(inner, *id))).await;
                // Old replicas replaced so far come back.
                let missing = {
                    let st = inner.state.lock().expect("poisoned");
                    let alive = st.replicas.values().filter(|r| r.phase != Phase::Stopping).count();
                    old.len().saturating_sub(alive)
                };
                let mut back = Vec::new();
                for _ in 0..missing {
                    if let Ok(id) = add_replica(inner, old_spec.clone()) {
                        back.push(id);
                    }
                }
                let restored = wait_ready(inner, &back, cfg.rollout.start_timeout.0, None)
                    .await
                    .is_ok();
                {
                    let mut st = inner.state.lock().expect("poisoned");
                    st.failed_generation = Some(spec.generation.clone());
                    if let Some(r) = st.rollout.as_mut() {
                        r.state = "rolled_back".into();
                        r.message = reason.clone();
                    }
                }
                // The configuration stays the new one, but what runs is the old.
                let _ = inner.events.send(SupervisorEvent::RolledBack {
                    workload: inner.name.clone(),
                    generation: spec.generation.clone(),
                    reason,
                    evidence,
                    restored,
                });
            }
        }
    }

    /// Stops every replica (drained, SIGTERM, SIGKILL after the grace period).
    pub async fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        let ids: Vec<u32> = self
            .inner
            .state
            .lock()
            .expect("poisoned")
            .replicas
            .keys()
            .copied()
            .collect();
        futures_util::future::join_all(ids.iter().map(|id| stop_replica(&self.inner, *id))).await;
    }
}

fn newly_firing(inner: &Inner, before: &BTreeSet<String>) -> Option<SloEvidence> {
    inner
        .gate
        .lock()
        .expect("poisoned")
        .iter()
        .find(|(k, _)| !before.contains(*k))
        .map(|(_, e)| e.clone())
}

fn exited(inner: &Inner, id: u32) -> bool {
    inner
        .state
        .lock()
        .expect("poisoned")
        .replicas
        .get(&id)
        .is_none_or(|r| r.exits > 0)
}

/// Waits until all of `ids` are ready. Fails when one exits (during a rollout, an
/// exit is failure), when `timeout` passes, or (with `gate`) when a gate tier not
/// in it starts firing.
async fn wait_ready(
    inner: &Inner,
    ids: &[u32],
    timeout: Duration,
    gate: Option<&BTreeSet<String>>,
) -> Result<(), String> {
    let end = Instant::now() + timeout;
    loop {
        {
            let st = inner.state.lock().expect("poisoned");
            let mut all = true;
            for id in ids {
                match st.replicas.get(id) {
                    None => return Err(format!("replica {id} is gone")),
                    Some(r) if gate.is_some() && r.exits > 0 => {
                        return Err(format!(
                            "new replica {id} exited ({})",
                            r.last_exit.clone().unwrap_or_default()
                        ));
                    }
                    Some(r) if r.phase == Phase::CrashLoop => {
                        return Err(format!("replica {id} is in a crash loop"));
                    }
                    Some(r) => all &= r.phase == Phase::Ready,
                }
            }
            if all {
                return Ok(());
            }
        }
        if let Some(before) = gate
            && let Some(e) = newly_firing(inner, before)
        {
            return Err(format!("SLO {} tier {} fired during the rollout", e.slo, e.tier));
        }
        if Instant::now() >= end {
            return Err(format!(
                "{} replica(s) not ready within {}",
                ids.len(),
                format_duration(timeout)
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Adds a replica running `spec` and starts its task; returns its number.
fn add_replica(inner: &Arc<Inner>, spec: Arc<Spec>) -> Result<u32, String> {
    let port = free_port()?;
    let (stop, stop_rx) = watch::channel(false);
    let (bounce, bounce_rx) = watch::channel(0u64);
    let id = {
        let mut st = inner.state.lock().expect("poisoned");
        let id = st.next_id;
        st.next_id += 1;
        st.replicas.insert(
            id,
            Replica {
                id,
                port,
                spec,
                pid: None,
                phase: Phase::Starting,
                restarts: 0,
                failures: 0,
                exits: 0,
                started: None,
                ok_streak: 0,
                fail_streak: 0,
                last_exit: None,
                inflight: Arc::default(),
                stop,
                bounce,
                task: None,
            },
        );
        id
    };
    let task = tokio::spawn(run_replica(inner.clone(), id, stop_rx, bounce_rx));
    if let Some(r) = inner.state.lock().expect("poisoned").replicas.get_mut(&id) {
        r.task = Some(task);
    }
    publish(inner);
    Ok(id)
}

/// Drains and stops a replica and forgets it.
async fn stop_replica(inner: &Inner, id: u32) {
    let task = {
        let mut st = inner.state.lock().expect("poisoned");
        let Some(r) = st.replicas.get_mut(&id) else { return };
        r.phase = Phase::Stopping;
        let _ = r.stop.send(true);
        r.task.take()
    };
    publish(inner);
    if let Some(t) = task {
        let _ = t.await;
    }
    inner.state.lock().expect("poisoned").replicas.remove(&id);
    publish(inner);
}

/// Updates the proxy's backends, the scrape targets and the pid file.
fn publish(inner: &Inner) {
    let cfg = inner.cfg.read().expect("poisoned").clone();
    let (backends, targets, pids) = {
        let st = inner.state.lock().expect("poisoned");
        let backends: Vec<Backend> = st
            .replicas
            .values()
            .filter(|r| r.phase == Phase::Ready)
            .map(|r| Backend {
                replica: r.id,
                port: r.port,
                inflight: r.inflight.clone(),
            })
            .collect();
        let targets: Vec<BTreeMap<String, String>> = st
            .replicas
            .values()
            .filter(|r| r.phase != Phase::Stopping)
            .map(|r| {
                BTreeMap::from([
                    ("__address__".to_owned(), format!("127.0.0.1:{}", r.port)),
                    ("__metrics_path__".to_owned(), cfg.metrics.path.clone()),
                    ("workload".to_owned(), inner.name.clone()),
                    ("replica".to_owned(), r.id.to_string()),
                ])
            })
            .collect();
        let pids: Vec<u32> = st.replicas.values().filter_map(|r| r.pid).collect();
        (backends, targets, pids)
    };
    *inner.backends.write().expect("poisoned") = backends;
    if cfg.metrics.enabled
        && let Some(f) = &inner.targets
    {
        f(&inner.name, targets);
    }
    let entries: Vec<PidEntry> = pids
        .into_iter()
        .filter_map(|pid| process_start_time(pid).map(|start_time| PidEntry { pid, start_time }))
        .collect();
    let tmp = inner.pid_file.with_extension("tmp");
    if std::fs::write(&tmp, serde_json::to_vec(&entries).expect("serializes")).is_ok() {
        let _ = std::fs::rename(&tmp, &inner.pid_file);
    }
}

/// Runs one replica: start, wait, restart with backoff until told to stop or in a
/// crash loop.
async fn run_replica(inner: Arc<Inner>, id: u32, mut stop: watch::Receiver<bool>, mut bounce: watch::Receiver<u64>) {
    loop {
        let (spec, port) = {
            let st = inner.state.lock().expect("poisoned");
            let Some(r) = st.replicas.get(&id) else { return };
            (r.spec.clone(), r.port)
        };
        let cfg = inner.cfg.read().expect("poisoned").clone();
        let mut cmd = tokio::process::Command::new(substitute(&spec.command[0], port, id));
        cmd.args(spec.command[1..].iter().map(|a| substitute(a, port, id)))
            .envs(spec.env.iter().map(|(k, v)| (k, substitute(v, port, id))))
            .env("PORT", port.to_string())
            .env("SEXTANT_WORKLOAD", &inner.name)
            .env("SEXTANT_REPLICA", id.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0);
        if let Some(d) = &spec.dir {
            cmd.current_dir(d);
        }
        let spawned = cmd.spawn();
        let started = Instant::now();
        let outcome = match spawned {
            Err(e) => format!("could not start {:?}: {e}", spec.command[0]),
            Ok(mut child) => {
                let pid = child.id();
                {
                    let mut st = inner.state.lock().expect("poisoned");
                    if let Some(r) = st.replicas.get_mut(&id) {
                        r.pid = pid;
                        r.started = Some((started, now_ms()));
                        r.ok_streak = 0;
                        r.fail_streak = 0;
                        if r.phase != Phase::Stopping {
                            r.phase = Phase::Starting;
                        }
                    }
                }
                publish(&inner);
                for (stream, pipe) in [
                    (
                        "stdout",
                        child
                            .stdout
                            .take()
                            .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
                    ),
                    (
                        "stderr",
                        child
                            .stderr
                            .take()
                            .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
                    ),
                ] {
                    if let Some(pipe) = pipe {
                        let workload = inner.name.clone();
                        tokio::spawn(async move {
                            let mut lines = tokio::io::BufReader::new(pipe).lines();
                            while let Ok(Some(line)) = lines.next_line().await {
                                tracing::info!(target: "sextant::workload", workload = %workload, replica = id, stream, "{line}");
                            }
                        });
                    }
                }
                let bounced = *bounce.borrow_and_update();
                let status = tokio::select! {
                    s = child.wait() => s.map(|s| describe_exit(&s)).unwrap_or_else(|e| e.to_string()),
                    _ = until_set(&mut stop) => {
                        drain_and_stop(&inner, id, &mut child, &cfg).await;
                        return;
                    }
                    _ = until_changed(&mut bounce, bounced) => {
                        if let Some(pid) = pid {
                            terminate(&mut child, pid, cfg.stop.grace.0).await;
                        }
                        "restarted after failing its health checks".to_owned()
                    }
                };
                status
            }
        };
        // It exited (or could not start).
        let (failures, restart) = {
            let mut st = inner.state.lock().expect("poisoned");
            let Some(r) = st.replicas.get_mut(&id) else { return };
            r.pid = None;
            r.exits += 1;
            r.last_exit = Some(outcome.clone());
            if started.elapsed() >= cfg.restart.reset_after.0 {
                r.failures = 0;
            }
            r.failures += 1;
            let failures = r.failures;
            let restart = failures <= cfg.restart.crash_loop_limit;
            r.phase = if restart { Phase::Backoff } else { Phase::CrashLoop };
            (failures, restart)
        };
        publish(&inner);
        if *stop.borrow() {
            return;
        }
        if !restart {
            tracing::warn!(workload = %inner.name, replica = id, failures, last_exit = %outcome, "replica in a crash loop; left stopped");
            let _ = inner.events.send(SupervisorEvent::CrashLoop {
                workload: inner.name.clone(),
                replica: id,
                failures,
                last_exit: outcome,
            });
            let _ = stop.wait_for(|s| *s).await;
            return;
        }
        let delay = (cfg.restart.backoff.0.as_secs_f64() * 2f64.powi(failures as i32 - 1))
            .min(cfg.restart.max_backoff.0.as_secs_f64());
        tracing::warn!(workload = %inner.name, replica = id, exit = %outcome, restart_in = delay, "replica exited; restarting");
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(delay)) => {}
            _ = until_set(&mut stop) => return,
        }
        let mut st = inner.state.lock().expect("poisoned");
        if let Some(r) = st.replicas.get_mut(&id) {
            r.restarts += 1;
        }
        st.restarts_total += 1;
    }
}

/// Until the flag is set (or its sender is gone).
async fn until_set(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Until the counter moves from `from`.
async fn until_changed(rx: &mut watch::Receiver<u64>, from: u64) {
    let _ = rx.wait_for(|b| *b != from).await;
}

fn describe_exit(s: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(sig)) => format!(
            "killed by signal {sig} ({})",
            nix::sys::signal::Signal::try_from(sig).map_or("?", |s| s.as_str())
        ),
        _ => "exited".into(),
    }
}

/// Out of the proxy (already: its phase is `Stopping`), wait for in-flight
/// requests up to `drain`, then SIGTERM and SIGKILL after `grace`.
async fn drain_and_stop(inner: &Inner, id: u32, child: &mut tokio::process::Child, cfg: &ProcessConfig) {
    let inflight = inner
        .state
        .lock()
        .expect("poisoned")
        .replicas
        .get(&id)
        .map(|r| r.inflight.clone());
    if let Some(n) = inflight {
        let end = Instant::now() + cfg.stop.drain.0;
        while n.load(Ordering::Relaxed) > 0 && Instant::now() < end {
            tokio::time::sleep(POLL).await;
        }
    }
    if let Some(pid) = child.id() {
        terminate(child, pid, cfg.stop.grace.0).await;
    }
}

async fn terminate(child: &mut tokio::process::Child, pid: u32, grace: Duration) {
    signal_group(pid, nix::sys::signal::Signal::SIGTERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        signal_group(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait().await;
    }
}

/// Checks every running replica each interval: `healthy_threshold` successes make a
/// starting replica ready; `unhealthy_threshold` failures take a ready one out of
/// the proxy and restart it; a replica not ready within the rollout start timeout
/// is restarted too.
async fn health_loop(inner: Arc<Inner>) {
    let mut stop = inner.stop.subscribe();
    loop {
        let cfg = inner.cfg.read().expect("poisoned").clone();
        let checks: Vec<(u32, u16)> = {
            let st = inner.state.lock().expect("poisoned");
            st.replicas
                .values()
                .filter(|r| r.pid.is_some() && matches!(r.phase, Phase::Starting | Phase::Ready))
                .map(|r| (r.id, r.port))
                .collect()
        };
        let results = futures_util::future::join_all(checks.iter().map(|(id, port)| {
            let inner = inner.clone();
            let cfg = cfg.clone();
            async move { (*id, check(&inner, *port, &cfg).await) }
        }))
        .await;
        let mut changed = false;
        let mut bounce = Vec::new();
        {
            let mut st = inner.state.lock().expect("poisoned");
            for (id, ok) in results {
                let Some(r) = st.replicas.get_mut(&id) else { continue };
                if r.pid.is_none() || !matches!(r.phase, Phase::Starting | Phase::Ready) {
                    continue;
                }
                if ok {
                    r.ok_streak += 1;
                    r.fail_streak = 0;
                    if r.phase == Phase::Starting && r.ok_streak >= cfg.health.healthy_threshold {
                        r.phase = Phase::Ready;
                        changed = true;
                    }
                } else {
                    r.fail_streak += 1;
                    r.ok_streak = 0;
                    if r.phase == Phase::Ready && r.fail_streak >= cfg.health.unhealthy_threshold {
                        r.phase = Phase::Unhealthy;
                        r.last_exit = Some(format!("failed {} health checks in a row", r.fail_streak));
                        changed = true;
                        bounce.push(id);
                    }
                }
                if r.phase == Phase::Starting
                    && r.started
                        .is_some_and(|(t, _)| t.elapsed() > cfg.rollout.start_timeout.0)
                {
                    r.phase = Phase::Unhealthy;
                    r.last_exit = Some(format!(
                        "not ready within {}",
                        format_duration(cfg.rollout.start_timeout.0)
                    ));
                    changed = true;
                    bounce.push(id);
                }
            }
            for id in &bounce {
                if let Some(r) = st.replicas.get(id) {
                    r.bounce.send_modify(|b| *b += 1);
                }
            }
        }
        if changed {
            publish(&inner);
        }
        for id in bounce {
            tracing::warn!(workload = %inner.name, replica = id, "replica unhealthy; restarting it");
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.health.interval.0) => {}
            _ = until_set(&mut stop) => return,
        }
    }
}

async fn check(inner: &Inner, port: u16, cfg: &ProcessConfig) -> bool {
    let timeout = cfg.health.timeout.0;
    match &cfg.health.path {
        Some(path) => matches!(
            inner
                .http
                .get(format!("http://127.0.0.1:{port}{path}"))
                .timeout(timeout)
                .send()
                .await,
            Ok(r) if r.status().is_success()
        ),
        None => matches!(
            tokio::time::timeout(timeout, tokio::net::TcpStream::connect(("127.0.0.1", port))).await,
            Ok(Ok(_))
        ),
    }
}
