//! Scheduled evaluation of rule groups and the state `/api/v1/rules` reports.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sextant_model::{Labels, METRIC_NAME, Sample, stale_nan};
use sextant_promql::{Engine, QueryValue};
use sextant_store::{AppendRequest, MetricsStore, SeriesSamples};
use tokio::sync::watch;

use crate::file::{RuleFile, RuleGroup, RuleKind};

/// Health of a rule after its last evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not evaluated yet.
    Unknown,
    /// The last evaluation succeeded.
    Ok,
    /// The last evaluation failed.
    Err,
}

impl Health {
    /// Prometheus' spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// A rule's state after its last evaluation.
#[derive(Debug, Clone)]
pub struct RuleStatus {
    /// `record` or `alert` name.
    pub name: String,
    /// The expression as Prometheus prints it.
    pub query: String,
    /// The rule's extra labels.
    pub labels: Labels,
    /// `recording` or `alerting`.
    pub kind: &'static str,
    /// Health of the last evaluation.
    pub health: Health,
    /// Why the last evaluation failed.
    pub last_error: Option<String>,
    /// When it was last evaluated (epoch ms), if ever.
    pub last_evaluation_ms: Option<i64>,
    /// How long that took.
    pub evaluation_time: Duration,
}

/// A group's state.
#[derive(Debug, Clone)]
pub struct GroupStatus {
    /// Group name.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Its evaluation interval.
    pub interval: Duration,
    /// Its series limit (0: none).
    pub limit: usize,
    /// Its rules.
    pub rules: Vec<RuleStatus>,
    /// When it was last evaluated (epoch ms), if ever.
    pub last_evaluation_ms: Option<i64>,
    /// How long the whole group took.
    pub evaluation_time: Duration,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    rule_group: String,
}

#[derive(Clone, Default)]
struct Metrics {
    evaluations: Family<GroupLabels, Counter>,
    failures: Family<GroupLabels, Counter>,
    missed: Family<GroupLabels, Counter>,
    last_duration_ms: Family<GroupLabels, Gauge>,
}

/// Per rule name, the series its last evaluation wrote.
type Written = HashMap<String, HashSet<Labels>>;

struct Running {
    key: (PathBuf, String),
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Written>,
}

/// Runs rule groups on their schedules; results go to the store.
#[derive(Clone)]
pub struct RuleManager {
    engine: Engine,
    store: MetricsStore,
    metrics: Metrics,
    status: Arc<Mutex<Vec<Arc<Mutex<GroupStatus>>>>>,
    running: Arc<tokio::sync::Mutex<Vec<Running>>>,
}

impl RuleManager {
    /// A manager with no groups; registers its metrics in `registry`.
    pub fn new(engine: Engine, store: MetricsStore, registry: &mut Registry) -> Self {
        let metrics = Metrics::default();
        registry.register(
            "sextant_rule_evaluations",
            "Rule evaluations, by group",
            metrics.evaluations.clone(),
        );
        registry.register(
            "sextant_rule_evaluation_failures",
            "Rule evaluations that failed, by group",
            metrics.failures.clone(),
        );
        registry.register(
            "sextant_rule_group_iterations_missed",
            "Group evaluations skipped because the previous one ran too long",
            metrics.missed.clone(),
        );
        registry.register(
            "sextant_rule_group_last_duration_milliseconds",
            "How long the last evaluation of the group took",
            metrics.last_duration_ms.clone(),
        );
        Self {
            engine,
            store,
            metrics,
            status: Arc::default(),
            running: Arc::default(),
        }
    }

    /// Replaces the running groups with those of `files`. Series that removed groups
    /// recorded get staleness markers, as in Prometheus.
    pub async fn apply(&self, files: Vec<RuleFile>, default_interval: Duration) {
        let mut running = self.running.lock().await;
        let old: Vec<Running> = std::mem::take(&mut *running);
        // What each old group last wrote: kept groups carry it on (so a series that
        // vanishes after the reload still gets its staleness marker), removed groups'
        // series go stale now.
        let mut carried: HashMap<(PathBuf, String), Written> = HashMap::new();
        for r in old {
            let _ = r.stop.send(true);
            if let Ok(written) = r.task.await {
                carried.insert(r.key, written);
            }
        }
        let mut statuses = Vec::new();
        for f in files {
            for g in f.groups {
                let interval = g.interval.unwrap_or(default_interval);
                let status = Arc::new(Mutex::new(GroupStatus {
                    name: g.name.clone(),
                    file: f.path.clone(),
                    interval,
                    limit: g.limit,
                    rules: g
                        .rules
                        .iter()
                        .map(|r| RuleStatus {
                            name: r.name().to_string(),
                            query: r.expr.to_string(),
                            labels: r.labels.clone(),
                            kind: match r.kind {
                                RuleKind::Recording { .. } => "recording",
                                RuleKind::Alerting { .. } => "alerting",
                            },
                            health: Health::Unknown,
                            last_error: None,
                            last_evaluation_ms: None,
                            evaluation_time: Duration::ZERO,
                        })
                        .collect(),
                    last_evaluation_ms: None,
                    evaluation_time: Duration::ZERO,
                }));
                statuses.push(status.clone());
                let key = (f.path.clone(), g.name.clone());
                let written = carried.remove(&key).unwrap_or_default();
                let (stop_tx, stop_rx) = watch::channel(false);
                let runner = GroupRunner {
                    group: g,
                    file: f.path.clone(),
                    interval,
                    engine: self.engine.clone(),
                    store: self.store.clone(),
                    metrics: self.metrics.clone(),
                    status,
                    previous: written,
                };
                running.push(Running {
                    key,
                    stop: stop_tx,
                    task: tokio::spawn(runner.run(stop_rx)),
                });
            }
        }
        *self.status.lock().expect("poisoned") = statuses;
        drop(running);
        let now = sextant_model::time::now_ms();
        let stale: Vec<SeriesSamples> = carried
            .into_values()
            .flat_map(|w| w.into_values().flatten())
            .map(|labels| SeriesSamples {
                labels,
                samples: vec![Sample::new(now, stale_nan())],
            })
            .collect();
        if !stale.is_empty()
            && let Err(e) = self
                .store
                .append(AppendRequest {
                    series: stale,
                    ..Default::default()
                })
                .await
        {
            tracing::warn!(error = %e, "cannot mark the series of removed rule groups stale");
        }
    }

    /// Every group's state, in file and group order.
    pub fn groups(&self) -> Vec<GroupStatus> {
        self.status
            .lock()
            .expect("poisoned")
            .iter()
            .map(|g| g.lock().expect("poisoned").clone())
            .collect()
    }

    /// Stops every group (no staleness markers: a restart continues the series).
    pub async fn shutdown(&self) {
        let mut running = self.running.lock().await;
        for r in running.drain(..) {
            let _ = r.stop.send(true);
            let _ = r.task.await;
        }
    }
}

struct GroupRunner {
    group: RuleGroup,
    file: PathBuf,
    interval: Duration,
    engine: Engine,
    store: MetricsStore,
    metrics: Metrics,
    status: Arc<Mutex<GroupStatus>>,
    /// Per rule name, the series its previous evaluation wrote.
    previous: Written,
}

impl GroupRunner {
    async fn run(mut self, mut stop: watch::Receiver<bool>) -> Written {
        let interval_ms = self.interval.as_millis().max(1) as i64;
        // Groups are spread over the interval by a hash of their identity, so many
        // groups with the same interval do not all run at once.
        let offset = (Labels::from_pairs([
            ("file", self.file.display().to_string()),
            ("name", self.group.name.clone()),
        ])
        .map(|l| l.stable_hash())
        .unwrap_or(0)
            % interval_ms as u64) as i64;
        let labels = GroupLabels {
            rule_group: format!("{};{}", self.file.display(), self.group.name),
        };
        let mut next = {
            let now = sextant_model::time::now_ms();
            let adj = now - offset;
            adj - adj.rem_euclid(interval_ms) + offset + interval_ms
        };
        loop {
            let wait = (next - sextant_model::time::now_ms()).max(0) as u64;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                _ = stop.changed() => return self.previous,
            }
            if *stop.borrow() {
                return self.previous;
            }
            let started = Instant::now();
            self.evaluate(next).await;
            let took = started.elapsed();
            self.metrics.evaluations.get_or_create(&labels).inc();
            self.metrics
                .last_duration_ms
                .get_or_create(&labels)
                .set(took.as_millis() as i64);
            {
                let mut s = self.status.lock().expect("poisoned");
                s.last_evaluation_ms = Some(next);
                s.evaluation_time = took;
                if s.rules.iter().any(|r| r.health == Health::Err) {
                    self.metrics.failures.get_or_create(&labels).inc();
                }
            }
            next += interval_ms;
            let now = sextant_model::time::now_ms();
            if now >= next {
                let missed = (now - next) / interval_ms + 1;
                self.metrics.missed.get_or_create(&labels).inc_by(missed as u64);
                next += missed * interval_ms;
            }
        }
    }

    /// Evaluates every rule at `ts`, in order; each rule's results are stored before
    /// the next rule runs, so later rules see them.
    async fn evaluate(&mut self, ts: i64) {
        for i in 0..self.group.rules.len() {
            let started = Instant::now();
            let result = self.evaluate_rule(i, ts).await;
            let mut s = self.status.lock().expect("poisoned");
            let st = &mut s.rules[i];
            st.last_evaluation_ms = Some(ts);
            st.evaluation_time = started.elapsed();
            match result {
                Ok(()) => {
                    st.health = Health::Ok;
                    st.last_error = None;
                }
                Err(e) => {
                    tracing::warn!(group = %self.group.name, rule = %st.name, error = %e, "rule evaluation failed");
                    st.health = Health::Err;
                    st.last_error = Some(e);
                }
            }
        }
    }

    async fn evaluate_rule(&mut self, i: usize, ts: i64) -> Result<(), String> {
        let rule = &self.group.rules[i];
        let RuleKind::Recording { record } = &rule.kind else {
            return Err("alerting rules are evaluated once the alerting engine lands; this one is not".into());
        };
        let value = self
            .engine
            .instant(&self.store, &rule.expr, ts)
            .await
            .map_err(|e| e.to_string())?;
        let samples: Vec<(Labels, f64)> = match value {
            QueryValue::Vector(v) => v.into_iter().map(|s| (s.labels, s.v)).collect(),
            QueryValue::Scalar { v, .. } => vec![(Labels::empty(), v)],
            other => {
                return Err(format!(
                    "rule result is a {}, not a vector or scalar",
                    other.type_name()
                ));
            }
        };
        let mut current = HashSet::with_capacity(samples.len());
        let mut series = Vec::with_capacity(samples.len());
        for (labels, v) in samples {
            let mut b = labels.to_builder();
            b.set(METRIC_NAME, record);
            for l in &rule.labels {
                b.set(&l.name, &l.value);
            }
            let labels = b.build();
            if !current.insert(labels.clone()) {
                return Err("vector contains metrics with the same labelset after applying rule labels".into());
            }
            series.push(SeriesSamples {
                labels,
                samples: vec![Sample::new(ts, v)],
            });
        }
        if self.group.limit > 0 && series.len() > self.group.limit {
            return Err(format!(
                "exceeded limit of {} with {} series",
                self.group.limit,
                series.len()
            ));
        }
        // Series the previous evaluation wrote but this one did not go stale now.
        for gone in self
            .previous
            .get(record)
            .into_iter()
            .flat_map(|p| p.difference(&current))
        {
            series.push(SeriesSamples {
                labels: gone.clone(),
                samples: vec![Sample::new(ts, stale_nan())],
            });
        }
        if !series.is_empty() {
            self.store
                .append(AppendRequest {
                    series,
                    ..Default::default()
                })
                .await
                .map_err(|e| format!("storing results: {e}"))?;
        }
        self.previous.insert(record.clone(), current);
        Ok(())
    }
}
