//! Scheduled evaluation of rule groups and the state `/api/v1/rules` reports.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sextant_model::{AlertSink, Labels, METRIC_NAME, MatchOp, Matcher, Sample, stale_nan};
use sextant_promql::{Engine, QueryValue};
use sextant_store::{AppendRequest, MetricsStore, SeriesSamples};
use tokio::sync::watch;

use crate::alerting::{Alert, AlertState, AlertingOptions, AlertingRule};
use crate::file::{RuleExpr, RuleFile, RuleGroup, RuleKind};
use crate::templates::{QueryFn, prometheus_funcs};

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
    /// For alerting rules: their settings, state and alerts.
    pub alerting: Option<AlertingStatus>,
}

/// An alerting rule's settings, state and active alerts.
#[derive(Debug, Clone)]
pub struct AlertingStatus {
    /// `for`.
    pub for_: Duration,
    /// `keep_firing_for`.
    pub keep_firing_for: Duration,
    /// The annotations as written.
    pub annotations: Vec<(String, String)>,
    /// The highest state among its alerts.
    pub state: AlertState,
    /// Pending and firing alerts.
    pub alerts: Vec<Alert>,
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

/// Per rule (record name, or `ALERTS/<index>/<name>`), the series its last
/// evaluation wrote.
type Written = HashMap<String, HashSet<Labels>>;

/// What a stopped group hands to its successor: the series it wrote and its
/// alerting rules with their alerts.
type Carried = (Written, Vec<AlertingRule>);

struct Running {
    key: (PathBuf, String),
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Carried>,
}

/// Where alerting rules send their alerts, and with which settings.
#[derive(Clone, Default)]
struct Alerting {
    opts: AlertingOptions,
    sink: Option<AlertSink>,
}

/// Runs rule groups on their schedules; results go to the store.
#[derive(Clone)]
pub struct RuleManager {
    engine: Engine,
    store: MetricsStore,
    metrics: Metrics,
    status: Arc<Mutex<Vec<Arc<Mutex<GroupStatus>>>>>,
    running: Arc<tokio::sync::Mutex<Vec<Running>>>,
    alerting: Arc<RwLock<Alerting>>,
    /// Set once the first rule files are applied: groups of later reloads need no
    /// restore of `for` state.
    applied_once: Arc<std::sync::atomic::AtomicBool>,
    /// The log store LogQL rules read (none: they fail with a clear error).
    logs: Arc<RwLock<Option<sextant_logs::LogStore>>>,
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
            alerting: Arc::default(),
            applied_once: Arc::default(),
            logs: Arc::default(),
        }
    }

    /// Sets the log store that LogQL rules (Loki ruler files) are evaluated over.
    pub fn set_log_store(&self, store: Option<sextant_logs::LogStore>) {
        *self.logs.write().expect("poisoned") = store;
    }

    /// Sets where alerting rules send alerts and their settings; groups applied
    /// after this use them.
    pub fn set_alerting(&self, opts: AlertingOptions, sink: Option<AlertSink>) {
        *self.alerting.write().expect("poisoned") = Alerting { opts, sink };
    }

    /// Every pending and firing alert of every alerting rule.
    pub fn alerts(&self) -> Vec<Alert> {
        self.groups()
            .into_iter()
            .flat_map(|g| g.rules)
            .filter_map(|r| r.alerting)
            .flat_map(|a| a.alerts)
            .collect()
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
        let mut old_alerting: Vec<AlertingRule> = Vec::new();
        for r in old {
            let _ = r.stop.send(true);
            if let Ok((written, alerting)) = r.task.await {
                carried.insert(r.key, written);
                old_alerting.extend(alerting);
            }
        }
        let first = !self.applied_once.swap(true, std::sync::atomic::Ordering::SeqCst);
        let alerting = self.alerting.read().expect("poisoned").clone();
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
                            query: r.query(),
                            labels: r.labels.clone(),
                            kind: match r.kind {
                                RuleKind::Recording { .. } => "recording",
                                RuleKind::Alerting { .. } => "alerting",
                            },
                            health: Health::Unknown,
                            last_error: None,
                            last_evaluation_ms: None,
                            evaluation_time: Duration::ZERO,
                            alerting: None,
                        })
                        .collect(),
                    last_evaluation_ms: None,
                    evaluation_time: Duration::ZERO,
                }));
                statuses.push(status.clone());
                let key = (f.path.clone(), g.name.clone());
                let written = carried.remove(&key).unwrap_or_default();
                let (stop_tx, stop_rx) = watch::channel(false);
                let eval_ts = Arc::new(AtomicI64::new(0));
                let funcs = prometheus_funcs(
                    Some(query_fn(self.engine.clone(), self.store.clone(), eval_ts.clone())),
                    &alerting.opts.external_url,
                );
                let rules = g
                    .rules
                    .iter()
                    .map(|r| match &r.kind {
                        RuleKind::Recording { .. } => None,
                        RuleKind::Alerting {
                            alert,
                            for_,
                            keep_firing_for,
                            annotations,
                        } => {
                            let labels: Vec<(String, String)> =
                                r.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
                            let annotations: Vec<(String, String)> =
                                annotations.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                            // Validated when the file was loaded, so the templates parse.
                            let mut rule = AlertingRule::new(
                                alert,
                                &r.query(),
                                *for_,
                                *keep_firing_for,
                                &labels,
                                &annotations,
                                &funcs,
                                !first,
                            )
                            .ok()?;
                            if let Some(old) = old_alerting
                                .iter()
                                .position(|o| o.name == rule.name && o.raw_labels == rule.raw_labels)
                            {
                                rule.inherit(&old_alerting.remove(old));
                            }
                            Some(rule)
                        }
                    })
                    .collect();
                let runner = GroupRunner {
                    group: g,
                    file: f.path.clone(),
                    interval,
                    engine: self.engine.clone(),
                    store: self.store.clone(),
                    logs: self.logs.read().expect("poisoned").clone(),
                    metrics: self.metrics.clone(),
                    status,
                    previous: written,
                    rules,
                    alerting: alerting.clone(),
                    eval_ts,
                    restore_after: if first { Some(2) } else { None },
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

/// The `query` template function: an instant query at the evaluation time, from
/// the synchronous template engine (it blocks its worker thread for the query).
fn query_fn(engine: Engine, store: MetricsStore, ts: Arc<AtomicI64>) -> QueryFn {
    Arc::new(move |q: &str| {
        let expr = sextant_promql::parse(q).map_err(|e| e.to_string())?;
        let handle = tokio::runtime::Handle::try_current().map_err(|e| e.to_string())?;
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return Err("query needs the multi-threaded runtime".into());
        }
        let at = ts.load(Ordering::Relaxed);
        let value = tokio::task::block_in_place(|| handle.block_on(engine.instant(&store, &expr, at)))
            .map_err(|e| e.to_string())?;
        match value {
            QueryValue::Vector(v) => Ok(v.into_iter().map(|s| (s.labels, s.v)).collect()),
            QueryValue::Scalar { v, .. } => Ok(vec![(Labels::empty(), v)]),
            _ => Err("rule result is not a vector or scalar".into()),
        }
    })
}

struct GroupRunner {
    group: RuleGroup,
    file: PathBuf,
    interval: Duration,
    engine: Engine,
    store: MetricsStore,
    logs: Option<sextant_logs::LogStore>,
    metrics: Metrics,
    status: Arc<Mutex<GroupStatus>>,
    /// Per rule name, the series its previous evaluation wrote.
    previous: Written,
    /// Alerting rules' state, by rule index (`None` for recording rules).
    rules: Vec<Option<AlertingRule>>,
    alerting: Alerting,
    /// The evaluation time, for the `query` template function.
    eval_ts: Arc<AtomicI64>,
    /// Evaluations to run before `for` state is restored (groups loaded at start-up).
    restore_after: Option<u32>,
}

impl GroupRunner {
    async fn run(mut self, mut stop: watch::Receiver<bool>) -> Carried {
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
                _ = stop.changed() => return self.carry(),
            }
            if *stop.borrow() {
                return self.carry();
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
            if let Some(n) = self.restore_after.as_mut() {
                *n -= 1;
                if *n == 0 {
                    self.restore_after = None;
                    self.restore().await;
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
            st.alerting = self.rules[i].as_ref().map(|r| AlertingStatus {
                for_: r.for_,
                keep_firing_for: r.keep_firing_for,
                annotations: r.raw_annotations.clone(),
                state: r.state(),
                alerts: r.active_alerts(),
            });
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

    fn carry(self) -> Carried {
        (self.previous, self.rules.into_iter().flatten().collect())
    }

    /// Restores the `for` state of alerting rules from their `ALERTS_FOR_STATE`
    /// series, at wall-clock time, after the first evaluations since start-up.
    async fn restore(&mut self) {
        let now = sextant_model::time::now_ms();
        let tolerance = self.alerting.opts.for_outage_tolerance.as_millis() as i64;
        for (i, slot) in self.rules.iter_mut().enumerate() {
            let Some(rule) = slot else { continue };
            let mut last = HashMap::new();
            for a in rule.active.values() {
                let mut matchers: Vec<Matcher> = Vec::new();
                for l in a.labels.iter() {
                    if let Ok(m) = Matcher::new(MatchOp::Equal, l.name.clone(), l.value.clone()) {
                        matchers.push(m);
                    }
                }
                matchers.extend(Matcher::new(MatchOp::Equal, METRIC_NAME, "ALERTS_FOR_STATE").ok());
                match self.store.select(&matchers, now - tolerance, now).await {
                    Ok(series) => {
                        // Exactly the alert's labels plus the name.
                        if let Some(s) = series
                            .into_iter()
                            .find(|s| s.labels.len() == a.labels.len() + 1)
                            .and_then(|s| s.samples.last().copied())
                        {
                            let mut b = a.labels.to_builder();
                            b.set(METRIC_NAME, "ALERTS_FOR_STATE");
                            last.insert(b.build(), s);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(group = %self.group.name, rule = i, error = %e, "failed to restore 'for' state");
                    }
                }
            }
            rule.restore(now, &self.alerting.opts, |l| last.get(l).copied());
        }
    }

    /// Rule `i`'s expression as an instant query at `ts` (ms): PromQL over the
    /// metrics store, or LogQL over the log store (its window ending at `ts`).
    async fn instant(&self, i: usize, ts: i64) -> Result<Vec<(Labels, f64)>, String> {
        match &self.group.rules[i].expr {
            RuleExpr::PromQL(expr) => match self
                .engine
                .instant(&self.store, expr, ts)
                .await
                .map_err(|e| e.to_string())?
            {
                QueryValue::Vector(v) => Ok(v.into_iter().map(|s| (s.labels, s.v)).collect()),
                QueryValue::Scalar { v, .. } => Ok(vec![(Labels::empty(), v)]),
                other => Err(format!(
                    "rule result is a {}, not a vector or scalar",
                    other.type_name()
                )),
            },
            RuleExpr::LogQL(expr) => {
                use sextant_logs::logql::{self, QueryParams, QueryResult};
                let Some(logs) = self.logs.clone() else {
                    return Err("LogQL rules need the log store, which is disabled (`logs.enabled: false`)".into());
                };
                let expr = expr.clone();
                let at = ts.saturating_mul(1_000_000);
                let params = QueryParams {
                    start: at,
                    end: at,
                    step: 0,
                    limit: 0,
                    direction: sextant_logs::Direction::Backward,
                };
                let result = tokio::task::spawn_blocking(move || logql::evaluate(&logs, &expr, &params))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                match result.0 {
                    QueryResult::Vector(_, v) => Ok(v),
                    QueryResult::Scalar(_, v) => Ok(vec![(Labels::empty(), v)]),
                    _ => Err("rule result is not a vector or scalar".into()),
                }
            }
        }
    }

    async fn evaluate_rule(&mut self, i: usize, ts: i64) -> Result<(), String> {
        let rule = &self.group.rules[i];
        let record = match &rule.kind {
            RuleKind::Recording { record } => record.clone(),
            RuleKind::Alerting { .. } => return self.evaluate_alerting(i, ts).await,
        };
        let record = &record;
        let samples = self.instant(i, ts).await?;
        let rule = &self.group.rules[i];
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

    /// An alerting rule: query, alert states, `ALERTS` series (with staleness
    /// markers for those that stop), then the alerts due go to the router.
    async fn evaluate_alerting(&mut self, i: usize, ts: i64) -> Result<(), String> {
        self.eval_ts.store(ts, Ordering::Relaxed);
        let result = self.instant(i, ts).await?;
        let limit = self.group.limit;
        let opts = self.alerting.opts.clone();
        let Some(rule) = self.rules[i].as_mut() else {
            return Err("alerting rule without state".into());
        };
        let evaluated = rule.eval(ts, result, limit, &opts)?;
        let due = rule.due(ts, self.interval, &opts);
        let key = format!("ALERTS/{i}/{}", rule.name);
        let current: HashSet<Labels> = evaluated.series.iter().map(|(l, _)| l.clone()).collect();
        let mut series: Vec<SeriesSamples> = evaluated
            .series
            .into_iter()
            .map(|(labels, v)| SeriesSamples {
                labels,
                samples: vec![Sample::new(ts, v)],
            })
            .collect();
        for gone in self.previous.get(&key).into_iter().flat_map(|p| p.difference(&current)) {
            series.push(SeriesSamples {
                labels: gone.clone(),
                samples: vec![Sample::new(ts, stale_nan())],
            });
        }
        if !due.is_empty()
            && let Some(sink) = &self.alerting.sink
        {
            sink(due);
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
        self.previous.insert(key, current);
        Ok(())
    }
}
