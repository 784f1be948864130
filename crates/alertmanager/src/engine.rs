//! The router at work: ingestion of alerts, the dispatcher's aggregation groups and
//! their timers, the notification pipeline (inhibition, time intervals, silences,
//! deduplication against the notification log, retries), acknowledgements,
//! escalation and incidents, all durable through the write-ahead log.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sextant_model::{AlertSink, Labels, PostableAlert};
use sextant_wal::{Replayed, Wal, WalOptions};
use tokio::sync::{Notify, watch};

use crate::alert::{Alert, compare, dedup_hash, fingerprint, fingerprint_string};
use crate::config::Config;
use crate::inhibit::Inhibitor;
use crate::nflog::{self, Entry, needs_update};
use crate::notify::{Integration, integrations};
use crate::route::{Route, labelset_string};
use crate::silence::{SetOutcome, Silence};
use crate::state::{Ack, Escalation, Incident, IncidentAlert, Record, State};
use crate::template::{Data, Templates};
use crate::timeinterval::any_contains;

/// Settings of the router.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where its state lives (its own directory).
    pub data_dir: PathBuf,
    /// The URL it is reached at (links in notifications).
    pub external_url: String,
    /// How long silences and notification log entries are kept (120h).
    pub retention: Duration,
    /// How often resolved alerts are forgotten (30m).
    pub alert_gc_interval: Duration,
    /// How often garbage collection and checkpoints run (15m).
    pub maintenance_interval: Duration,
    /// Empty groups are removed at this interval (30s).
    pub group_cleanup_interval: Duration,
}

impl Options {
    /// Alertmanager's defaults, state in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>, external_url: impl Into<String>) -> Self {
        Self {
            data_dir: data_dir.into(),
            external_url: external_url.into(),
            retention: Duration::from_secs(120 * 3600),
            alert_gc_interval: Duration::from_secs(1800),
            maintenance_interval: Duration::from_secs(900),
            group_cleanup_interval: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IntegrationLabels {
    receiver: String,
    integration: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    receiver: String,
    integration: String,
    reason: String,
}

#[derive(Clone, Default)]
struct Metrics {
    received: Family<StatusLabels, Counter>,
    invalid: Counter,
    notifications: Family<IntegrationLabels, Counter>,
    requests_failed: Family<FailureLabels, Counter>,
    notifications_failed: Family<IntegrationLabels, Counter>,
    incidents_opened: Counter,
    incidents_open: Gauge,
    alerts: Family<StatusLabels, Gauge>,
    silences: Family<StatusLabels, Gauge>,
    groups: Gauge,
}

impl Metrics {
    fn register(&self, r: &mut Registry) {
        let r = r.sub_registry_with_prefix("sextant_alertmanager");
        r.register("alerts_received", "Alerts received, by status", self.received.clone());
        r.register("alerts_invalid", "Alerts refused as invalid", self.invalid.clone());
        r.register(
            "notifications",
            "Notifications attempted, by receiver and integration",
            self.notifications.clone(),
        );
        r.register(
            "notification_requests_failed",
            "Notification requests that failed (each retry counts), by receiver, integration and reason",
            self.requests_failed.clone(),
        );
        r.register(
            "notifications_failed",
            "Notifications that failed after their retries, by receiver and integration",
            self.notifications_failed.clone(),
        );
        r.register("incidents_opened", "Incidents opened", self.incidents_opened.clone());
        r.register("incidents_open", "Incidents open now", self.incidents_open.clone());
        r.register("alerts", "Alerts held, by state", self.alerts.clone());
        r.register("silences", "Silences held, by state", self.silences.clone());
        r.register("aggregation_groups", "Aggregation groups", self.groups.clone());
    }
}

/// The last outcome of one integration of a receiver.
#[derive(Debug, Clone, Default)]
pub struct IntegrationStatus {
    /// `webhook`, `pagerduty`, ...
    pub integration: String,
    /// Position among the receiver's integrations of that kind.
    pub index: usize,
    /// Last successful notification (epoch ms).
    pub last_success: Option<i64>,
    /// Last failed attempt (epoch ms) and why.
    pub last_failure: Option<(i64, String)>,
    /// Failed requests since start.
    pub failed_requests: u64,
}

/// A receiver's configured integrations and their recent outcomes.
#[derive(Debug, Clone, Default)]
pub struct ReceiverStatus {
    /// The receiver.
    pub name: String,
    /// Its integrations.
    pub integrations: Vec<IntegrationStatus>,
}

struct Loaded {
    config: Config,
    templates: Templates,
    integrations: HashMap<String, Arc<Vec<Integration>>>,
    original: String,
}

type GroupId = (usize, Labels);

struct Group {
    key: String,
    route: Route,
    labels: Labels,
    alerts: Mutex<HashMap<u64, Alert>>,
    flushed: AtomicBool,
    wake: Notify,
    stop: watch::Sender<bool>,
}

struct Inner {
    opts: Options,
    wal: Wal,
    state: Mutex<State>,
    loaded: RwLock<Arc<Loaded>>,
    groups: Mutex<HashMap<GroupId, Arc<Group>>>,
    inhibitor: Mutex<Inhibitor>,
    metrics: Metrics,
    started_at: i64,
    receiver_status: Mutex<BTreeMap<(String, String, usize), IntegrationStatus>>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Handle to the router; cloning shares it.
#[derive(Clone)]
pub struct Alertmanager {
    inner: Arc<Inner>,
}

/// Why posted alerts were not all taken.
#[derive(Debug)]
pub enum PostError {
    /// Some alerts are invalid (the valid ones were stored): Alertmanager's
    /// messages, joined by `; `.
    Invalid(String),
    /// Nothing was stored: the state could not be made durable.
    Unavailable(String),
}

fn now_ms() -> i64 {
    sextant_model::time::now_ms()
}

fn load(config: Config) -> Result<Loaded, String> {
    let templates = Templates::load(&config.template_files)?;
    let mut map = HashMap::new();
    for r in &config.receivers {
        map.insert(r.name.clone(), Arc::new(integrations(r)?));
    }
    let original = crate::config::original(&config);
    Ok(Loaded {
        config,
        templates,
        integrations: map,
        original,
    })
}

impl Alertmanager {
    /// Opens the router: replays its state from `opts.data_dir`, starts its
    /// maintenance, and routes the alerts it holds (a group whose alerts are older
    /// than its `group_wait` flushes at once; the notification log keeps what was
    /// already sent from being sent again).
    pub fn open(opts: Options, config: Config, registry: &mut Registry) -> Result<Self, String> {
        let loaded = load(config)?;
        let mut state = State::default();
        let mut replay_error = None;
        let (wal, stats) = Wal::open(WalOptions::new(opts.data_dir.join("wal")), |r| match r {
            Replayed::Checkpoint(b) => match State::restore(b) {
                Ok(s) => state = s,
                Err(e) => replay_error = Some(e),
            },
            Replayed::Record(b) => match State::decode(b) {
                Ok(rec) => state.apply(rec),
                Err(e) => tracing::warn!(error = %e, "skipping an unreadable alerting record"),
            },
        })
        .map_err(|e| e.to_string())?;
        if let Some(e) = replay_error {
            return Err(format!("{}: {e}", opts.data_dir.display()));
        }
        tracing::info!(
            alerts = state.alerts.len(),
            silences = state.silences.all().len(),
            records = stats.records,
            truncated_bytes = stats.truncated_bytes,
            took = ?stats.duration,
            "alerting state loaded"
        );
        let metrics = Metrics::default();
        metrics.register(registry);
        let inhibitor = Inhibitor::new(loaded.config.inhibit_rules.clone());
        let (stop, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            opts,
            wal,
            state: Mutex::new(state),
            loaded: RwLock::new(Arc::new(loaded)),
            groups: Mutex::new(HashMap::new()),
            inhibitor: Mutex::new(inhibitor),
            metrics,
            started_at: now_ms(),
            receiver_status: Mutex::new(BTreeMap::new()),
            stop,
            tasks: Mutex::new(Vec::new()),
        });
        let am = Self { inner };
        am.rebuild();
        am.spawn_maintenance();
        Ok(am)
    }

    /// Applies a new configuration: routes, receivers, inhibition and templates
    /// change; groups are rebuilt from the alerts held (the notification log keeps
    /// them from notifying twice).
    pub fn apply(&self, config: Config) -> Result<(), String> {
        let loaded = load(config)?;
        *self.inner.inhibitor.lock().expect("poisoned") = Inhibitor::new(loaded.config.inhibit_rules.clone());
        *self.inner.loaded.write().expect("poisoned") = Arc::new(loaded);
        self.rebuild();
        Ok(())
    }

    /// Stops every group and routes every held alert again.
    fn rebuild(&self) {
        let old: Vec<Arc<Group>> = self
            .inner
            .groups
            .lock()
            .expect("poisoned")
            .drain()
            .map(|(_, g)| g)
            .collect();
        for g in old {
            let _ = g.stop.send(true);
        }
        let alerts: Vec<Alert> = self
            .inner
            .state
            .lock()
            .expect("poisoned")
            .alerts
            .values()
            .cloned()
            .collect();
        {
            let mut inh = self.inner.inhibitor.lock().expect("poisoned");
            for a in &alerts {
                inh.observe(a);
            }
        }
        self.route(&alerts);
    }

    /// Routes alerts into their groups (creating groups as needed).
    fn route(&self, alerts: &[Alert]) {
        let loaded = self.inner.loaded.read().expect("poisoned").clone();
        let now = now_ms();
        let mut groups = self.inner.groups.lock().expect("poisoned");
        for a in alerts {
            for r in loaded.config.route.matches(&a.labels) {
                let labels = r.group_labels(&a.labels);
                let id = (r.id, labels.clone());
                let g = groups.entry(id).or_insert_with(|| self.spawn_group(r, labels)).clone();
                g.alerts.lock().expect("poisoned").insert(a.fingerprint(), a.clone());
                if !g.flushed.load(Ordering::SeqCst) && a.starts_at + r.group_wait.as_millis() as i64 <= now {
                    g.wake.notify_one();
                }
            }
        }
        self.inner.metrics.groups.set(groups.len() as i64);
    }

    fn spawn_group(&self, route: &Route, labels: Labels) -> Arc<Group> {
        let (stop, stop_rx) = watch::channel(false);
        let g = Arc::new(Group {
            key: format!("{}:{}", route.key, labelset_string(&labels)),
            route: route.clone(),
            labels,
            alerts: Mutex::new(HashMap::new()),
            flushed: AtomicBool::new(false),
            wake: Notify::new(),
            stop,
        });
        let (inner, group) = (self.inner.clone(), g.clone());
        tokio::spawn(group_loop(inner, group, stop_rx));
        g
    }

    fn spawn_maintenance(&self) {
        let inner = self.inner.clone();
        let mut stop = self.inner.stop.subscribe();
        let cleanup = tokio::spawn(async move {
            let mut tick = tokio::time::interval(inner.opts.group_cleanup_interval);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                let mut groups = inner.groups.lock().expect("poisoned");
                groups.retain(|_, g| {
                    let empty = g.alerts.lock().expect("poisoned").is_empty();
                    if empty {
                        let _ = g.stop.send(true);
                    }
                    !empty
                });
                inner.metrics.groups.set(groups.len() as i64);
            }
        });
        let inner = self.inner.clone();
        let mut stop = self.inner.stop.subscribe();
        let maintenance = tokio::spawn(async move {
            let mut last_alert_gc = now_ms();
            let mut tick = tokio::time::interval(inner.opts.maintenance_interval.min(inner.opts.alert_gc_interval));
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                let now = now_ms();
                let gc_alerts = now - last_alert_gc >= inner.opts.alert_gc_interval.as_millis() as i64;
                if gc_alerts {
                    last_alert_gc = now;
                }
                if let Err(e) = maintain(&inner, now, gc_alerts).await {
                    tracing::warn!(error = %e, "alerting maintenance failed");
                }
            }
        });
        self.inner
            .tasks
            .lock()
            .expect("poisoned")
            .extend([cleanup, maintenance]);
    }

    /// Takes posted alerts (Alertmanager's `POST /api/v2/alerts`): validates them,
    /// merges them into the held alerts, makes them durable, then routes them. The
    /// valid ones are kept even when others are refused.
    pub async fn post(&self, posted: Vec<PostableAlert>) -> Result<(), PostError> {
        let now = now_ms();
        let resolve_timeout = self
            .inner
            .loaded
            .read()
            .expect("poisoned")
            .config
            .global
            .resolve_timeout
            .0
            .as_millis() as i64;
        let mut errors = Vec::new();
        let mut valid = Vec::with_capacity(posted.len());
        for p in posted {
            match Alert::from_posted(p, now, resolve_timeout) {
                Ok(a) => valid.push(a),
                Err(e) => errors.push(e),
            }
        }
        self.inner.metrics.invalid.inc_by(errors.len() as u64);
        if !valid.is_empty() {
            let (ticket, stored) = {
                let mut st = self.inner.state.lock().expect("poisoned");
                let mut records = Vec::with_capacity(valid.len());
                let mut stored = Vec::with_capacity(valid.len());
                for a in valid {
                    let fp = a.fingerprint();
                    let merged = match st.alerts.get(&fp) {
                        Some(old) if old.overlaps(&a) => old.merge(&a, now),
                        _ => a,
                    };
                    records.push(State::encode(&Record::Alert((&merged).into())));
                    st.alerts.insert(fp, merged.clone());
                    st.since_checkpoint += 1;
                    stored.push(merged);
                }
                (self.inner.wal.append(records), stored)
            };
            ticket
                .durable()
                .await
                .map_err(|e| PostError::Unavailable(e.to_string()))?;
            for a in &stored {
                let status = if a.resolved_at(now) { "resolved" } else { "firing" };
                self.inner
                    .metrics
                    .received
                    .get_or_create(&StatusLabels { status: status.into() })
                    .inc();
            }
            {
                let mut inh = self.inner.inhibitor.lock().expect("poisoned");
                for a in &stored {
                    inh.observe(a);
                }
            }
            self.route(&stored);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(PostError::Invalid(errors.join("; ")))
        }
    }

    /// A sink for alert producers in this process (alerting rules, SLO tiers):
    /// sends never block; a bounded queue feeds [`Self::post`], dropping the oldest
    /// batches when full, as Prometheus' notifier does.
    pub fn sink(&self) -> AlertSink {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<PostableAlert>>(1024);
        let am = self.clone();
        let mut stop = self.inner.stop.subscribe();
        let task = tokio::spawn(async move {
            loop {
                let batch = tokio::select! {
                    b = rx.recv() => match b { Some(b) => b, None => return },
                    _ = stop.changed() => return,
                };
                if let Err(e) = am.post(batch).await {
                    tracing::warn!(error = ?e, "alerts from this server were not all taken");
                }
            }
        });
        self.inner.tasks.lock().expect("poisoned").push(task);
        Arc::new(move |alerts: Vec<PostableAlert>| {
            if let Err(tokio::sync::mpsc::error::TrySendError::Full(_)) = tx.try_send(alerts) {
                tracing::warn!("alert queue full; dropping a batch of alerts");
            }
        })
    }

    /// Stops the router (state is durable already).
    pub async fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        for g in self.inner.groups.lock().expect("poisoned").values() {
            let _ = g.stop.send(true);
        }
        let tasks: Vec<_> = std::mem::take(&mut *self.inner.tasks.lock().expect("poisoned"));
        for t in tasks {
            let _ = t.await;
        }
    }

    // ---- reads for the API ----

    /// When the router started (epoch ms).
    pub fn started_at(&self) -> i64 {
        self.inner.started_at
    }

    /// The configuration as `/api/v2/status` shows it.
    pub fn config_original(&self) -> String {
        self.inner.loaded.read().expect("poisoned").original.clone()
    }

    /// Receiver names, in configuration order.
    pub fn receivers(&self) -> Vec<String> {
        let loaded = self.inner.loaded.read().expect("poisoned").clone();
        loaded.config.receivers.iter().map(|r| r.name.clone()).collect()
    }

    /// The routing tree.
    pub fn route_tree(&self) -> Route {
        self.inner.loaded.read().expect("poisoned").config.route.clone()
    }

    /// The status of every held, unresolved alert as of now.
    pub fn alerts(&self) -> Vec<AlertStatus> {
        let now = now_ms();
        let loaded = self.inner.loaded.read().expect("poisoned").clone();
        let st = self.inner.state.lock().expect("poisoned");
        let inh = self.inner.inhibitor.lock().expect("poisoned");
        let mut out: Vec<AlertStatus> = st
            .alerts
            .values()
            .filter(|a| !a.resolved_at(now))
            .map(|a| {
                let silenced_by = st.silences.muting(&a.labels, now);
                let inhibited_by: Vec<String> = inh
                    .muted_by(&a.labels, now)
                    .map(fingerprint_string)
                    .into_iter()
                    .collect();
                let receivers = loaded
                    .config
                    .route
                    .matches(&a.labels)
                    .iter()
                    .map(|r| r.receiver.clone())
                    .collect();
                AlertStatus {
                    alert: a.clone(),
                    fingerprint: fingerprint_string(a.fingerprint()),
                    receivers,
                    silenced_by,
                    inhibited_by,
                }
            })
            .collect();
        out.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
        out
    }

    /// The aggregation groups with their alerts (as of now, unresolved only).
    pub fn groups(&self) -> Vec<GroupStatus> {
        let now = now_ms();
        let groups: Vec<Arc<Group>> = self.inner.groups.lock().expect("poisoned").values().cloned().collect();
        let st = self.inner.state.lock().expect("poisoned");
        let mut out: Vec<GroupStatus> = groups
            .iter()
            .map(|g| {
                let mut alerts: Vec<Alert> = g
                    .alerts
                    .lock()
                    .expect("poisoned")
                    .values()
                    .filter(|a| !a.resolved_at(now))
                    .cloned()
                    .collect();
                alerts.sort_by(|a, b| compare(&a.labels, &b.labels));
                GroupStatus {
                    key: g.key.clone(),
                    labels: g.labels.clone(),
                    receiver: g.route.receiver.clone(),
                    alerts,
                    ack: st.acks.get(&g.key).cloned(),
                    incident: st.open_incidents.get(&g.key).cloned(),
                }
            })
            .filter(|g| !g.alerts.is_empty())
            .collect();
        out.sort_by(|a, b| {
            crate::alert::labelset_before(&a.labels, &b.labels).then_with(|| a.receiver.cmp(&b.receiver))
        });
        out
    }

    /// Every silence (expired ones until they are forgotten).
    pub fn silences(&self) -> Vec<Silence> {
        self.inner.state.lock().expect("poisoned").silences.all().to_vec()
    }

    /// One silence.
    pub fn silence(&self, id: &str) -> Option<Silence> {
        self.inner.state.lock().expect("poisoned").silences.get(id).cloned()
    }

    /// Creates or updates a silence (durably); returns its id.
    pub async fn set_silence(&self, s: Silence) -> Result<String, SilenceError> {
        let now = now_ms();
        let (ticket, id) = {
            let mut st = self.inner.state.lock().expect("poisoned");
            let outcome = st
                .silences
                .set(s, now, || uuid::Uuid::new_v4().to_string())
                .map_err(|e| {
                    if e == "silence not found" {
                        SilenceError::NotFound
                    } else {
                        SilenceError::Invalid(e)
                    }
                })?;
            let mut records = Vec::new();
            let id = match outcome {
                SetOutcome::Updated(s) => {
                    records.push(State::encode(&Record::Silence((&s).into())));
                    s.id
                }
                SetOutcome::Created { silence, expired } => {
                    if let Some(e) = expired {
                        records.push(State::encode(&Record::Silence((&e).into())));
                    }
                    records.push(State::encode(&Record::Silence((&silence).into())));
                    silence.id
                }
            };
            st.since_checkpoint += records.len() as u64;
            (self.inner.wal.append(records), id)
        };
        ticket
            .durable()
            .await
            .map_err(|e| SilenceError::Unavailable(e.to_string()))?;
        Ok(id)
    }

    /// Expires a silence (durably).
    pub async fn expire_silence(&self, id: &str) -> Result<(), SilenceError> {
        let now = now_ms();
        let ticket = {
            let mut st = self.inner.state.lock().expect("poisoned");
            let s = st.silences.expire_at(id, now).map_err(|_| SilenceError::NotFound)?;
            st.since_checkpoint += 1;
            self.inner
                .wal
                .append(vec![State::encode(&Record::Silence((&s).into()))])
        };
        ticket
            .durable()
            .await
            .map_err(|e| SilenceError::Unavailable(e.to_string()))
    }

    /// Receivers with their integrations' recent outcomes.
    pub fn receiver_status(&self) -> Vec<ReceiverStatus> {
        let loaded = self.inner.loaded.read().expect("poisoned").clone();
        let st = self.inner.receiver_status.lock().expect("poisoned");
        loaded
            .config
            .receivers
            .iter()
            .map(|r| ReceiverStatus {
                name: r.name.clone(),
                integrations: loaded.integrations[&r.name]
                    .iter()
                    .map(|i| {
                        st.get(&(r.name.clone(), i.kind.to_owned(), i.index))
                            .cloned()
                            .unwrap_or_else(|| IntegrationStatus {
                                integration: i.kind.into(),
                                index: i.index,
                                ..Default::default()
                            })
                    })
                    .collect(),
            })
            .collect()
    }

    /// Incidents, newest first.
    pub fn incidents(&self) -> Vec<Incident> {
        let st = self.inner.state.lock().expect("poisoned");
        let mut v: Vec<Incident> = st.incidents.values().cloned().collect();
        v.sort_by(|a, b| b.started_at.cmp(&a.started_at).then_with(|| b.id.cmp(&a.id)));
        v
    }

    /// One incident.
    pub fn incident(&self, id: &str) -> Option<Incident> {
        self.inner.state.lock().expect("poisoned").incidents.get(id).cloned()
    }

    /// Acknowledges an alert group (by its key) or an incident (by its id): its
    /// repeats and escalation stop until another alert starts firing in it.
    pub async fn acknowledge(&self, group_or_incident: &str, by: &str, comment: &str) -> Result<Ack, AckError> {
        let now = now_ms();
        let group_key = {
            let st = self.inner.state.lock().expect("poisoned");
            match st.incidents.get(group_or_incident) {
                Some(i) if i.ended_at.is_some() => return Err(AckError::Closed),
                Some(i) => i.group_key.clone(),
                None => group_or_incident.to_owned(),
            }
        };
        let group = self
            .inner
            .groups
            .lock()
            .expect("poisoned")
            .values()
            .find(|g| g.key == group_key)
            .cloned()
            .ok_or(AckError::NotFound)?;
        let firing: Vec<u64> = group
            .alerts
            .lock()
            .expect("poisoned")
            .values()
            .filter(|a| !a.resolved_at(now))
            .map(|a| dedup_hash(&a.labels))
            .collect();
        if firing.is_empty() {
            return Err(AckError::NotFound);
        }
        let ack = Ack {
            group_key: group_key.clone(),
            by: by.to_owned(),
            at: now,
            comment: comment.to_owned(),
            firing,
        };
        let ticket = {
            let mut st = self.inner.state.lock().expect("poisoned");
            let mut records = vec![Record::Ack(ack.clone())];
            if let Some(id) = st.open_incidents.get(&group_key).cloned()
                && let Some(mut inc) = st.incidents.get(&id).cloned()
            {
                inc.ack = Some(ack.clone());
                records.push(Record::Incident(Box::new(inc)));
            }
            let encoded = records.iter().map(State::encode).collect();
            for r in records {
                st.apply(r);
            }
            self.inner.wal.append(encoded)
        };
        ticket
            .durable()
            .await
            .map_err(|e| AckError::Unavailable(e.to_string()))?;
        Ok(ack)
    }

    /// Which receivers (routes) a label set reaches.
    pub fn routes_for(&self, labels: &Labels) -> Vec<Route> {
        self.inner
            .loaded
            .read()
            .expect("poisoned")
            .config
            .route
            .matches(labels)
            .into_iter()
            .cloned()
            .collect()
    }

    /// Writes a checkpoint now (tests and shutdown).
    pub async fn checkpoint(&self) -> Result<(), String> {
        let ticket = {
            let mut st = self.inner.state.lock().expect("poisoned");
            st.since_checkpoint = 0;
            self.inner.wal.checkpoint(st.snapshot())
        };
        ticket.durable().await.map_err(|e| e.to_string())
    }
}

/// An alert with its routing and muting, as the API shows it.
#[derive(Debug, Clone)]
pub struct AlertStatus {
    /// The alert.
    pub alert: Alert,
    /// Its fingerprint.
    pub fingerprint: String,
    /// Receivers its routes reach (in tree order, may repeat).
    pub receivers: Vec<String>,
    /// Active silences muting it.
    pub silenced_by: Vec<String>,
    /// The alert inhibiting it.
    pub inhibited_by: Vec<String>,
}

/// An aggregation group, as the API shows it.
#[derive(Debug, Clone)]
pub struct GroupStatus {
    /// Its key (`<route key>:<group labels>`).
    pub key: String,
    /// Its labels.
    pub labels: Labels,
    /// The route's receiver.
    pub receiver: String,
    /// Its unresolved alerts.
    pub alerts: Vec<Alert>,
    /// Its acknowledgement.
    pub ack: Option<Ack>,
    /// Its open incident.
    pub incident: Option<String>,
}

/// Why a silence was not set.
#[derive(Debug)]
pub enum SilenceError {
    /// No silence with that id.
    NotFound,
    /// Alertmanager's validation message.
    Invalid(String),
    /// Could not be made durable.
    Unavailable(String),
}

/// Why an acknowledgement was not taken.
#[derive(Debug)]
pub enum AckError {
    /// No such firing group or incident.
    NotFound,
    /// The incident is closed.
    Closed,
    /// Could not be made durable.
    Unavailable(String),
}

async fn maintain(inner: &Inner, now: i64, gc_alerts: bool) -> Result<(), String> {
    let retention = inner.opts.retention.as_millis() as i64;
    let ticket = {
        let mut st = inner.state.lock().expect("poisoned");
        let mut records = Vec::new();
        st.nflog.gc(now);
        let gone = st.silences.gc(now, retention);
        if !gone.is_empty() {
            records.push(Record::SilencesGone { ids: gone });
        }
        if gc_alerts {
            let fps: Vec<u64> = st
                .alerts
                .iter()
                .filter(|(_, a)| a.resolved_at(now))
                .map(|(fp, _)| *fp)
                .collect();
            if !fps.is_empty() {
                let mut inh = inner.inhibitor.lock().expect("poisoned");
                for fp in &fps {
                    inh.forget(*fp);
                }
                records.push(Record::AlertsGone { fps });
            }
        }
        let encoded: Vec<Vec<u8>> = records.iter().map(State::encode).collect();
        for r in records {
            st.apply(r);
        }
        let firing = st.alerts.values().filter(|a| !a.resolved_at(now)).count();
        inner
            .metrics
            .alerts
            .get_or_create(&StatusLabels {
                status: "firing".into(),
            })
            .set(firing as i64);
        inner
            .metrics
            .alerts
            .get_or_create(&StatusLabels {
                status: "resolved".into(),
            })
            .set((st.alerts.len() - firing) as i64);
        for state in ["active", "pending", "expired"] {
            let n = st
                .silences
                .all()
                .iter()
                .filter(|s| s.api_state(now).as_str() == state)
                .count();
            inner
                .metrics
                .silences
                .get_or_create(&StatusLabels { status: state.into() })
                .set(n as i64);
        }
        inner.metrics.incidents_open.set(st.open_incidents.len() as i64);
        if !encoded.is_empty() {
            let _ = inner.wal.append(encoded);
        }
        st.since_checkpoint = 0;
        inner.wal.checkpoint(st.snapshot())
    };
    ticket.durable().await.map_err(|e| e.to_string())
}

async fn group_loop(inner: Arc<Inner>, g: Arc<Group>, mut stop: watch::Receiver<bool>) {
    let mut deadline = tokio::time::Instant::now() + g.route.group_wait;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = g.wake.notified() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        deadline = tokio::time::Instant::now() + g.route.group_interval;
        g.flushed.store(true, Ordering::SeqCst);
        if let Some(next_escalation) = flush(&inner, &g).await {
            deadline = deadline.min(next_escalation);
        }
    }
}

/// One flush of a group; returns when an escalation falls due before the next tick.
async fn flush(inner: &Arc<Inner>, g: &Arc<Group>) -> Option<tokio::time::Instant> {
    let now = now_ms();
    let mut alerts: Vec<Alert> = g.alerts.lock().expect("poisoned").values().cloned().collect();
    if alerts.is_empty() {
        return None;
    }
    alerts.sort_by(|a, b| compare(&a.labels, &b.labels));
    let loaded = inner.loaded.read().expect("poisoned").clone();
    let mut next_escalation = None;
    let result = pipeline(inner, &loaded, g, &alerts, now, &mut next_escalation).await;
    if result.is_ok() {
        let mut held = g.alerts.lock().expect("poisoned");
        for a in alerts.iter().filter(|a| a.resolved_at(now)) {
            let fp = a.fingerprint();
            if held.get(&fp).is_some_and(|h| h.updated_at == a.updated_at) {
                held.remove(&fp);
            }
        }
    }
    next_escalation
}

/// Inhibition, time intervals and silences, then each integration of the route's
/// receiver (and of escalation receivers that are due).
async fn pipeline(
    inner: &Arc<Inner>,
    loaded: &Loaded,
    g: &Arc<Group>,
    alerts: &[Alert],
    now: i64,
    next_escalation: &mut Option<tokio::time::Instant>,
) -> Result<(), String> {
    let route = &g.route;
    let mut alerts: Vec<Alert> = {
        let inh = inner.inhibitor.lock().expect("poisoned");
        alerts
            .iter()
            .filter(|a| inh.muted_by(&a.labels, now).is_none())
            .cloned()
            .collect()
    };
    let intervals = &loaded.config.time_intervals;
    if !route.active_time_intervals.is_empty()
        && !route
            .active_time_intervals
            .iter()
            .any(|n| intervals.get(n).is_some_and(|i| any_contains(i, now)))
    {
        return Ok(());
    }
    if route
        .mute_time_intervals
        .iter()
        .any(|n| intervals.get(n).is_some_and(|i| any_contains(i, now)))
    {
        return Ok(());
    }
    {
        let st = inner.state.lock().expect("poisoned");
        alerts.retain(|a| st.silences.muting(&a.labels, now).is_empty());
    }
    if alerts.is_empty() {
        return Ok(());
    }
    let firing: Vec<u64> = alerts
        .iter()
        .filter(|a| !a.resolved_at(now))
        .map(|a| dedup_hash(&a.labels))
        .collect();
    let resolved: Vec<u64> = alerts
        .iter()
        .filter(|a| a.resolved_at(now))
        .map(|a| dedup_hash(&a.labels))
        .collect();
    // An acknowledgement holds while no new alert fires in the group.
    let acked = {
        let mut st = inner.state.lock().expect("poisoned");
        match st.acks.get(&g.key) {
            Some(a) => {
                let covered: HashSet<u64> = a.firing.iter().copied().collect();
                if firing.iter().all(|f| covered.contains(f)) && !firing.is_empty() {
                    true
                } else {
                    let r = Record::Unack {
                        group_key: g.key.clone(),
                    };
                    let enc = State::encode(&r);
                    st.apply(r);
                    let _ = inner.wal.append(vec![enc]);
                    false
                }
            }
            None => false,
        }
    };
    let sent = notify_receiver(
        inner,
        loaded,
        g,
        &route.receiver,
        &g.key,
        &alerts,
        &firing,
        &resolved,
        acked,
        now,
    )
    .await;
    let mut result = sent.as_ref().map(|_| ()).map_err(Clone::clone);
    if let Ok(sent) = sent
        && (sent || firing.is_empty())
    {
        record_incident(inner, g, &alerts, &firing, now).await;
    }
    // Escalation: unacknowledged firing groups go to the next receivers in turn.
    if let Some(after) = route.escalate_after
        && !route.escalate_to.is_empty()
    {
        let opened = {
            let st = inner.state.lock().expect("poisoned");
            st.open_incidents
                .get(&g.key)
                .and_then(|id| st.incidents.get(id))
                .map(|i| (i.started_at, i.escalations.len()))
        };
        let after_ms = after.as_millis().max(1) as i64;
        let level = match opened {
            Some((start, _)) if !firing.is_empty() && !acked => {
                (((now - start) / after_ms) as usize).min(route.escalate_to.len())
            }
            _ => 0,
        };
        if let Some((start, _)) = opened
            && level < route.escalate_to.len()
            && !firing.is_empty()
            && !acked
        {
            let due = start + (level as i64 + 1) * after_ms;
            let wait = Duration::from_millis((due - now).max(0) as u64);
            *next_escalation = Some(tokio::time::Instant::now() + wait);
        }
        for (i, receiver) in route.escalate_to.iter().enumerate() {
            let key = format!("{}/escalation/{}", g.key, i + 1);
            let notified_before = {
                let st = inner.state.lock().expect("poisoned");
                loaded.integrations.get(receiver).is_some_and(|ints| {
                    ints.iter()
                        .any(|int| st.nflog.get(&nflog::key(&key, receiver, int.kind, int.index)).is_some())
                })
            };
            // Due levels notify; earlier escalations also hear of the resolution.
            if i < level || (firing.is_empty() && notified_before) {
                let r = notify_receiver(
                    inner, loaded, g, receiver, &key, &alerts, &firing, &resolved, false, now,
                )
                .await;
                if let Ok(true) = r
                    && !firing.is_empty()
                {
                    let mut st = inner.state.lock().expect("poisoned");
                    if let Some(id) = st.open_incidents.get(&g.key).cloned()
                        && let Some(mut inc) = st.incidents.get(&id).cloned()
                        && !inc.escalations.iter().any(|e| e.level == i + 1)
                    {
                        inc.escalations.push(Escalation {
                            level: i + 1,
                            receiver: receiver.clone(),
                            at: now,
                        });
                        let rec = Record::Incident(Box::new(inc));
                        let enc = State::encode(&rec);
                        st.apply(rec);
                        let _ = inner.wal.append(vec![enc]);
                    }
                }
                if let Err(e) = r {
                    result = Err(e);
                }
            }
        }
    }
    result
}

/// Sends a group's alerts to every integration of `receiver` that needs it, with
/// retries; logs what was sent. `Ok(true)` when something was sent.
#[allow(clippy::too_many_arguments)]
async fn notify_receiver(
    inner: &Arc<Inner>,
    loaded: &Loaded,
    g: &Arc<Group>,
    receiver: &str,
    group_key: &str,
    alerts: &[Alert],
    firing: &[u64],
    resolved: &[u64],
    acked: bool,
    now: i64,
) -> Result<bool, String> {
    let Some(ints) = loaded.integrations.get(receiver) else {
        return Err(format!("receiver {receiver:?} is not configured"));
    };
    let firing_set: HashSet<u64> = firing.iter().copied().collect();
    let resolved_set: HashSet<u64> = resolved.iter().copied().collect();
    let repeat_ms = g.route.repeat_interval.as_millis() as i64;
    let deadline = g.route.group_interval.max(Duration::from_secs(10));
    let mut tasks = Vec::new();
    for int in ints.iter() {
        let key = nflog::key(group_key, receiver, int.kind, int.index);
        let entry = inner.state.lock().expect("poisoned").nflog.get(&key).cloned();
        let mut needed = needs_update(
            entry.as_ref(),
            &firing_set,
            &resolved_set,
            repeat_ms,
            int.send_resolved,
            now,
        );
        // While acknowledged, unchanged groups are not repeated.
        if needed
            && acked
            && !needs_update(
                entry.as_ref(),
                &firing_set,
                &resolved_set,
                i64::MAX / 4,
                int.send_resolved,
                now,
            )
        {
            needed = false;
        }
        if !needed {
            continue;
        }
        let to_send: Vec<Alert> = if int.send_resolved {
            alerts.to_vec()
        } else {
            alerts.iter().filter(|a| !a.resolved_at(now)).cloned().collect()
        };
        let data = Data::new(receiver, &g.labels, &to_send, &inner.opts.external_url, now);
        tasks.push(async move {
            if !to_send.is_empty() {
                send_with_retries(inner, loaded, int, receiver, group_key, &data, deadline).await?;
            }
            let retention = inner.opts.retention.as_millis() as i64;
            let expiry = 2 * repeat_ms;
            let entry = Entry {
                key,
                timestamp: now_ms(),
                firing: firing.to_vec(),
                resolved: resolved.to_vec(),
                expires_at: now_ms()
                    + if expiry > 0 && retention > expiry {
                        expiry
                    } else {
                        retention
                    },
            };
            let ticket = {
                let mut st = inner.state.lock().expect("poisoned");
                let r = Record::Nflog((&entry).into());
                let enc = State::encode(&r);
                st.apply(r);
                inner.wal.append(vec![enc])
            };
            ticket.durable().await.map_err(|e| e.to_string())?;
            Ok::<bool, String>(!to_send.is_empty())
        });
    }
    let results = futures_util::future::join_all(tasks).await;
    let mut sent = false;
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(s) => sent |= s,
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(sent)
    } else {
        Err(errors.join("; "))
    }
}

/// The least time one notification attempt is given.
const MIN_ATTEMPT: Duration = Duration::from_secs(2);

/// One notification with Alertmanager's retry schedule: at once, then after
/// 500ms growing 1.5 times (±50% jitter, at most 60s), until it succeeds, fails
/// for good, or the flush's deadline passes.
async fn send_with_retries(
    inner: &Inner,
    loaded: &Loaded,
    int: &Integration,
    receiver: &str,
    group_key: &str,
    data: &Data,
    deadline: Duration,
) -> Result<(), String> {
    let labels = IntegrationLabels {
        receiver: receiver.into(),
        integration: int.kind.into(),
    };
    inner.metrics.notifications.get_or_create(&labels).inc();
    let started = tokio::time::Instant::now();
    let mut backoff = Duration::from_millis(500);
    let mut attempts = 0;
    loop {
        attempts += 1;
        // An attempt gets at least MIN_ATTEMPT: one cut short would count as failed
        // after the receiver may have taken it, and be sent again.
        let left = deadline.saturating_sub(started.elapsed()).max(MIN_ATTEMPT);
        let result = int.notify(&loaded.templates, data, group_key, left).await;
        let status_key = (receiver.to_owned(), int.kind.to_owned(), int.index);
        match result {
            Ok(()) => {
                let mut st = inner.receiver_status.lock().expect("poisoned");
                let s = st.entry(status_key).or_insert_with(|| IntegrationStatus {
                    integration: int.kind.into(),
                    index: int.index,
                    ..Default::default()
                });
                s.last_success = Some(now_ms());
                return Ok(());
            }
            Err(e) => {
                let reason = if e.message.contains("unexpected status code 5") {
                    "5xx"
                } else if e.message.contains("unexpected status code") {
                    "4xx"
                } else if e.retry {
                    "transport"
                } else {
                    "other"
                };
                inner
                    .metrics
                    .requests_failed
                    .get_or_create(&FailureLabels {
                        receiver: receiver.into(),
                        integration: int.kind.into(),
                        reason: reason.into(),
                    })
                    .inc();
                {
                    let mut st = inner.receiver_status.lock().expect("poisoned");
                    let s = st.entry(status_key).or_insert_with(|| IntegrationStatus {
                        integration: int.kind.into(),
                        index: int.index,
                        ..Default::default()
                    });
                    s.last_failure = Some((now_ms(), e.message.clone()));
                    s.failed_requests += 1;
                }
                let jitter = 0.5 + rand::random::<f64>();
                let wait = backoff.mul_f64(jitter);
                if !e.retry || started.elapsed() + wait + MIN_ATTEMPT >= deadline {
                    inner.metrics.notifications_failed.get_or_create(&labels).inc();
                    let what = if e.retry {
                        "notify retry canceled after"
                    } else {
                        "notify retry canceled due to unrecoverable error after"
                    };
                    let msg = format!(
                        "{receiver}/{}[{}]: {what} {attempts} attempts: {}",
                        int.kind, int.index, e.message
                    );
                    tracing::warn!(group = group_key, error = %msg, "notification failed");
                    return Err(msg);
                }
                tokio::time::sleep(wait).await;
                backoff = (backoff.mul_f64(1.5)).min(Duration::from_secs(60));
            }
        }
    }
}

/// Opens an incident at a group's first firing notification, adds alerts that join
/// it, and closes it when its resolution was notified.
async fn record_incident(inner: &Inner, g: &Group, alerts: &[Alert], firing: &[u64], now: i64) {
    let ticket = {
        let mut st = inner.state.lock().expect("poisoned");
        let open = st.open_incidents.get(&g.key).cloned();
        let inc = match (open, firing.is_empty()) {
            (None, true) => return,
            (None, false) => {
                let id = format!("inc-{}", st.next_incident);
                inner.metrics.incidents_opened.inc();
                let common_severity = {
                    let sev: Vec<Option<&str>> = alerts.iter().map(|a| a.labels.get("severity")).collect();
                    sev.first()
                        .copied()
                        .flatten()
                        .filter(|s| sev.iter().all(|x| x == &Some(*s)))
                        .map(str::to_owned)
                };
                let slo = alerts.iter().find_map(|a| a.labels.get("sloth_id").map(str::to_owned));
                let burn = alerts
                    .iter()
                    .find_map(|a| a.annotations.get("burn_rate_long").and_then(|b| b.parse::<f64>().ok()));
                let title = format!(
                    "[FIRING] {}",
                    g.labels.iter().map(|l| l.value.clone()).collect::<Vec<_>>().join(" ")
                );
                Incident {
                    id,
                    group_key: g.key.clone(),
                    receiver: g.route.receiver.clone(),
                    title: title.trim_end().to_owned(),
                    group_labels: g.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect(),
                    severity: common_severity,
                    started_at: now,
                    ended_at: None,
                    alerts: Vec::new(),
                    slo,
                    burn_rate_at_open: burn,
                    ack: st.acks.get(&g.key).cloned(),
                    escalations: Vec::new(),
                }
            }
            (Some(id), _) => match st.incidents.get(&id) {
                Some(i) => i.clone(),
                None => return,
            },
        };
        let mut inc = inc;
        for a in alerts {
            let fp = fingerprint_string(fingerprint(&a.labels));
            let ends = a.resolved_at(now).then_some(a.ends_at).flatten();
            match inc.alerts.iter_mut().find(|x| x.fingerprint == fp) {
                Some(x) => x.ends_at = ends,
                None => inc.alerts.push(IncidentAlert {
                    fingerprint: fp,
                    labels: a.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect(),
                    annotations: a.annotations.clone(),
                    starts_at: a.starts_at,
                    ends_at: ends,
                }),
            }
        }
        if firing.is_empty() {
            inc.ended_at = Some(now);
        }
        let r = Record::Incident(Box::new(inc));
        let enc = State::encode(&r);
        st.apply(r);
        inner.metrics.incidents_open.set(st.open_incidents.len() as i64);
        inner.wal.append(vec![enc])
    };
    if let Err(e) = ticket.durable().await {
        tracing::warn!(error = %e, "cannot record the incident");
    }
}
