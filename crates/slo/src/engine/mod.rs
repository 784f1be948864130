//! The SLO engine: every SLI's good and total events per fixed slice, stored durably,
//! so every window is an exact sum over slices; Sloth's series from them each cycle;
//! backfill of new revisions from stored samples; burn-rate tiers with `unknown` when
//! data is missing.
//!
//! One task runs the cycles. Each cycle, per SLO: compute the slices that settled
//! since the last cycle (samples arrive up to `settle` late), evaluate the windows,
//! budget and tiers, and record the series; then spend what is left of half the
//! interval on backfill, newest slices first. Slices and the record of which slices a
//! revision has computed are written in one transaction, so a crash never computes a
//! slice twice.

mod evaluate;
mod plan;
mod slicer;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sextant_model::{Labels, Sample, stale_nan};
use sextant_promql::Engine;
use sextant_store::{AppendRequest, MetricsStore, RevisionRow, SeriesSamples};
use tokio::sync::{Notify, watch};

use crate::model::Slo;
use crate::status::{SloStatus, SloSummary, State};
use crate::windows::WindowCatalog;
use evaluate::{Context, TierMemory};
use plan::Plan;

/// A burn tier as an alert, handed to whoever routes alerts: firing while the
/// tier fires (and while its coverage is unknown after it fired: unknown neither
/// fires nor resolves), then resolved. The router knows nothing of SLOs; these are
/// ordinary alerts with the SLO's labels.
#[derive(Debug, Clone, PartialEq)]
pub struct TierAlert {
    /// `alertname`, `sloth_id`, `sloth_service`, `sloth_slo`, `sloth_severity`,
    /// `tier`, `windows`, the SLO's labels and the spec's alert labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// The spec's annotations (Prometheus templates, with Sloth's defaults) and
    /// Sextant's: burn rates, budget left, the top contributing group, a link.
    pub annotations: std::collections::BTreeMap<String, String>,
    /// Firing, or resolved.
    pub firing: bool,
    /// When the tier started firing (epoch ms).
    pub since_ms: i64,
    /// The evaluation time.
    pub at_ms: i64,
    /// The long window's burn rate (`$value` in templates).
    pub value: f64,
}

/// Where the engine sends its tier alerts each cycle.
pub type TierAlertSink = Arc<dyn Fn(Vec<TierAlert>) + Send + Sync>;

/// Called at the end of every cycle with its time (epoch ms) and every SLO's status,
/// before the cycle's tier alerts are sent: what acts on burn rates (the action
/// engine) decides on exactly what the alerts say, and can annotate them. It must
/// return quickly; the engine waits for it.
pub type CycleHook = Arc<dyn Fn(i64, &BTreeMap<String, SloStatus>) + Send + Sync>;

/// How long a resolved tier keeps being re-sent as resolved (as Prometheus does).
const RESOLVED_RESEND_MS: i64 = 15 * 60 * 1000;

/// The engine's settings (the `slo:` section of the configuration).
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Length of a slice (1m).
    pub slice: Duration,
    /// Time between evaluation cycles (30s).
    pub interval: Duration,
    /// How long after a slice ends its samples are taken as complete (30s): a slice is
    /// computed once, after this.
    pub settle: Duration,
    /// Coverage below which a window is `unknown` (0.9).
    pub coverage_floor: f64,
    /// Period of Sloth specs, which name none (30d).
    pub default_period: Duration,
    /// Alert window catalogs by period (Sloth's built-in ones by default).
    pub windows: WindowCatalog,
    /// Windows up to this long are evaluated directly with the SLI's PromQL, as
    /// Prometheus evaluates Sloth's rules, so they agree with Prometheus exactly;
    /// longer ones are sums over slices (1h).
    pub direct_max_window: Duration,
    /// Slices computed per backfill step (6h).
    pub backfill_chunk: Duration,
    /// How long slices are kept (93d: a quarter, for calendar history).
    pub slice_retention: Duration,
    /// `sloth_version` of `sloth_slo_info`.
    pub version: String,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            slice: Duration::from_secs(60),
            interval: Duration::from_secs(30),
            settle: Duration::from_secs(30),
            coverage_floor: 0.9,
            default_period: Duration::from_secs(30 * 86400),
            windows: WindowCatalog::default(),
            direct_max_window: Duration::from_secs(3600),
            backfill_chunk: Duration::from_secs(6 * 3600),
            slice_retention: Duration::from_secs(93 * 86400),
            version: concat!("sextant-", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

#[derive(Clone, Default)]
struct Metrics {
    cycles: Counter,
    cycle_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    failures: Counter,
    slices: Counter,
    backfilling: Gauge,
    slos: Gauge,
}

/// What the cycle task and `apply` share.
#[derive(Default)]
struct Shared {
    plans: Vec<Plan>,
    /// Every known revision, by key.
    revisions: HashMap<String, RevisionRow>,
    /// Tier memory per revision key.
    memory: HashMap<String, HashMap<String, TierMemory>>,
    /// Series each SLO wrote last, by SLO id.
    written: HashMap<String, HashSet<Labels>>,
    /// Last error per SLO id.
    errors: HashMap<String, String>,
    revisions_loaded: bool,
    last_retention_ms: i64,
    last_cycle_ms: Option<i64>,
    /// Per (SLO id, tier): since when it fires, and when it resolved.
    tier_alerts: HashMap<(String, String), (i64, Option<i64>)>,
}

struct Inner {
    opts: EngineOptions,
    store: MetricsStore,
    engine: Engine,
    exact: Engine,
    shared: tokio::sync::Mutex<Shared>,
    statuses: RwLock<BTreeMap<String, SloStatus>>,
    wake: Notify,
    stop: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    metrics: Metrics,
    alerts: RwLock<Option<(TierAlertSink, String)>>,
    hook: RwLock<Option<CycleHook>>,
}

/// Handle to the running engine; cheap to clone.
#[derive(Clone)]
pub struct SloEngine {
    inner: Arc<Inner>,
}

impl SloEngine {
    /// Starts the engine with no SLOs; `engine` evaluates direct windows (the
    /// server's PromQL engine, with its limits). Registers its metrics in `registry`.
    pub fn start(store: MetricsStore, engine: Engine, opts: EngineOptions, registry: &mut Registry) -> Self {
        let metrics = Metrics::default();
        registry.register(
            "sextant_slo_cycles",
            "SLO evaluation cycles run",
            metrics.cycles.clone(),
        );
        registry.register(
            "sextant_slo_cycle_duration_seconds",
            "How long the last SLO evaluation cycle took (without backfill)",
            metrics.cycle_seconds.clone(),
        );
        registry.register(
            "sextant_slo_evaluation_failures",
            "SLO evaluations that failed",
            metrics.failures.clone(),
        );
        registry.register(
            "sextant_slo_slices_computed",
            "SLO slices computed (live and backfill)",
            metrics.slices.clone(),
        );
        registry.register(
            "sextant_slo_backfilling",
            "SLOs whose backfill has not finished",
            metrics.backfilling.clone(),
        );
        registry.register("sextant_slo_slos", "SLOs loaded", metrics.slos.clone());
        let mut exact_opts = engine.options().clone();
        exact_opts.exact_counter_windows = true;
        let (stop, stop_rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            opts,
            store,
            engine,
            exact: Engine::new(exact_opts),
            shared: tokio::sync::Mutex::new(Shared::default()),
            statuses: RwLock::new(BTreeMap::new()),
            wake: Notify::new(),
            stop,
            task: Mutex::new(None),
            metrics,
            alerts: RwLock::new(None),
            hook: RwLock::new(None),
        });
        let task = tokio::spawn(run(inner.clone(), stop_rx));
        *inner.task.lock().expect("poisoned") = Some(task);
        Self { inner }
    }

    /// Sends burn tiers as alerts to `sink` from the next cycle on; `base_url` is
    /// the server's external URL, for links to the SLO.
    pub fn set_alert_sink(&self, sink: TierAlertSink, base_url: &str) {
        *self.inner.alerts.write().expect("poisoned") = Some((sink, base_url.trim_end_matches('/').to_owned()));
    }

    /// Calls `hook` at the end of every cycle from the next one on.
    pub fn set_cycle_hook(&self, hook: CycleHook) {
        *self.inner.hook.write().expect("poisoned") = Some(hook);
    }

    /// Every SLO's full status after the last cycle, by id.
    pub fn statuses(&self) -> BTreeMap<String, SloStatus> {
        self.inner.statuses.read().expect("poisoned").clone()
    }

    /// The engine's settings.
    pub fn options(&self) -> &EngineOptions {
        &self.inner.opts
    }

    /// Checks `slos` as `apply` would, without applying them.
    pub fn check(slos: &[Slo], opts: &EngineOptions) -> Result<(), Vec<String>> {
        let errors: Vec<String> = slos.iter().filter_map(|s| Plan::new(s, opts).err()).collect();
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// Replaces the SLOs. If any fails to compile nothing changes and the errors are
    /// returned (reload keeps the old SLOs). New revisions start computing at once;
    /// series of removed SLOs are marked stale.
    pub async fn apply(&self, slos: Vec<Slo>) -> Result<(), Vec<String>> {
        let inner = &self.inner;
        let mut errors = Vec::new();
        let mut plans = Vec::new();
        let mut ids = HashSet::new();
        for s in &slos {
            if !ids.insert(s.id.clone()) {
                errors.push(format!("{}: duplicate SLO id {:?}", s.location, s.id));
                continue;
            }
            match Plan::new(s, &inner.opts) {
                Ok(p) => plans.push(p),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut shared = inner.shared.lock().await;
        if !shared.revisions_loaded {
            let rows = inner.store.slo_revisions().await.map_err(|e| vec![e.to_string()])?;
            shared.revisions = rows.into_iter().map(|r| (r.sli.clone(), r)).collect();
            shared.revisions_loaded = true;
        }
        let now = sextant_model::time::now_ms();
        let mut new_rows = Vec::new();
        for p in &plans {
            if !shared.revisions.contains_key(&p.key) {
                let end = evaluate::slices_end(p, now, inner.opts.settle.as_millis() as i64);
                let row = RevisionRow {
                    sli: p.key.clone(),
                    definition: p.definition.clone(),
                    created_ms: now,
                    computed_from_ms: end,
                    computed_to_ms: end,
                };
                tracing::info!(slo = %p.slo.id, revision = %p.revision, "new SLO revision; backfilling its slices from stored samples");
                new_rows.push(row.clone());
                shared.revisions.insert(p.key.clone(), row);
            }
        }
        inner
            .store
            .put_slo_revisions(new_rows)
            .await
            .map_err(|e| vec![format!("recording SLO revisions: {e}")])?;
        // Series of SLOs that are gone go stale now.
        let keep: HashSet<String> = plans.iter().map(|p| p.slo.id.clone()).collect();
        let gone: Vec<String> = shared
            .written
            .keys()
            .filter(|id| !keep.contains(*id))
            .cloned()
            .collect();
        let mut stale = Vec::new();
        for id in gone {
            for labels in shared.written.remove(&id).unwrap_or_default() {
                stale.push(SeriesSamples {
                    labels,
                    samples: vec![Sample::new(now, stale_nan())],
                });
            }
            shared.errors.remove(&id);
        }
        if !stale.is_empty()
            && let Err(e) = inner
                .store
                .append(AppendRequest {
                    series: stale,
                    ..Default::default()
                })
                .await
        {
            tracing::warn!(error = %e, "cannot mark the series of removed SLOs stale");
        }
        inner.metrics.slos.set(plans.len() as i64);
        shared.plans = plans;
        inner
            .statuses
            .write()
            .expect("poisoned")
            .retain(|id, _| keep.contains(id));
        drop(shared);
        inner.wake.notify_one();
        Ok(())
    }

    /// Every SLO's summary after the last cycle, by id.
    pub fn summaries(&self) -> Vec<SloSummary> {
        self.inner
            .statuses
            .read()
            .expect("poisoned")
            .values()
            .map(|s| s.summary.clone())
            .collect()
    }

    /// The ids of the loaded SLOs that have been evaluated.
    pub fn ids(&self) -> Vec<String> {
        self.inner.statuses.read().expect("poisoned").keys().cloned().collect()
    }

    /// One SLO in full, evaluated at `at_ms` (default: the last cycle's time), with
    /// previous calendar periods and attribution. Read-only: tier `since` and `for`
    /// continue from the live state. `Ok(None)` for an unknown id.
    pub async fn detail(&self, id: &str, at_ms: Option<i64>) -> Result<Option<SloStatus>, String> {
        let inner = &self.inner;
        let shared = inner.shared.lock().await;
        let Some(plan) = shared.plans.iter().find(|p| p.slo.id == id).cloned() else {
            return Ok(None);
        };
        let t = at_ms
            .or(shared.last_cycle_ms)
            .unwrap_or_else(sextant_model::time::now_ms);
        let revision = shared.revisions.get(&plan.key).cloned().ok_or("no revision")?;
        let all: Vec<RevisionRow> = shared.revisions.values().cloned().collect();
        let mut memory = shared.memory.get(&plan.key).cloned().unwrap_or_default();
        let error = shared.errors.get(id).cloned();
        drop(shared);
        let ctx = Context {
            engine: &inner.engine,
            store: &inner.store,
            reads: &inner.store,
            sums: None,
            settle_ms: inner.opts.settle.as_millis() as i64,
            version: &inner.opts.version,
        };
        let mut eval = evaluate::evaluate(&plan, &ctx, &revision, &all, &mut memory, t, true).await?;
        eval.status.summary.error = error;
        Ok(Some(eval.status))
    }

    /// Runs a cycle now, with its backfill, and waits for it.
    pub async fn run_cycle(&self) {
        cycle_and_backfill(&self.inner).await;
    }

    /// Stops the cycles (no staleness markers: a restart continues the series).
    pub async fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        let task = self.inner.task.lock().expect("poisoned").take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}

async fn run(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let interval = inner.opts.interval.as_millis().max(1) as i64;
    loop {
        let now = sextant_model::time::now_ms();
        let next = now - now.rem_euclid(interval) + interval;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis((next - now) as u64)) => {}
            _ = inner.wake.notified() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        cycle_and_backfill(&inner).await;
    }
}

/// A cycle, then backfill with what is left of half the interval.
async fn cycle_and_backfill(inner: &Inner) {
    let started = Instant::now();
    let t = sextant_model::time::now_ms();
    cycle(inner, t).await;
    let budget = inner.opts.interval / 2;
    while started.elapsed() < budget {
        if !backfill_step(inner, t).await {
            break;
        }
    }
}

/// One evaluation cycle at `t`, in passes so that each kind of read happens once
/// for all SLOs: the recent samples every SLI reads are fetched in one read; the
/// new slices of every SLO are computed from them and stored in one transaction;
/// the window sums of every SLO come from one scan per distinct set of windows;
/// then each SLO is evaluated.
async fn cycle(inner: &Inner, t: i64) {
    let started = Instant::now();
    let mut shared = inner.shared.lock().await;
    let settle = inner.opts.settle.as_millis() as i64;
    let plans = shared.plans.clone();
    let mut series = Vec::new();
    let mut statuses = BTreeMap::new();
    let mut failed: HashMap<String, String> = HashMap::new();

    // Pass 1: the samples of the last hour (plus lookback and a slice), for direct
    // windows and new slices; reads outside it go to the store.
    let lookback = inner.engine.options().lookback_delta.as_millis() as i64;
    let horizon = inner.opts.direct_max_window.as_millis() as i64 + lookback + 2 * inner.opts.slice.as_millis() as i64;
    let exprs: Vec<&promql_parser::parser::Expr> = plans.iter().flat_map(Plan::expressions).collect();
    let reads = match sextant_promql::Prefetched::load(&inner.store, &exprs, t - horizon, t).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "SLO cycle: cannot read recent samples");
            return;
        }
    };

    // Pass 2: new slices, batched; large catch-ups (after downtime) go a day at a time.
    let mut rows = Vec::new();
    let mut progress = Vec::new();
    let mut stored_to: HashMap<String, i64> = HashMap::new();
    for plan in &plans {
        let id = plan.slo.id.clone();
        let r = async {
            slicer::check_latency_boundary(plan, &inner.store, t)?;
            let mut rev = shared.revisions.get(&plan.key).cloned().ok_or("no revision row")?;
            let end = evaluate::slices_end(plan, t, settle);
            while end - rev.computed_to_ms > horizon - lookback - plan.slice_ms {
                let to = end.min(rev.computed_to_ms + 86_400_000);
                rev = compute_and_store(inner, plan, &rev, rev.computed_to_ms, to, false).await?;
                shared.revisions.insert(plan.key.clone(), rev.clone());
            }
            if rev.computed_to_ms < end {
                let new = slicer::compute(plan, &inner.exact, &reads, rev.computed_to_ms, end).await?;
                inner.metrics.slices.inc_by(new.len() as u64);
                rows.extend(new);
                stored_to.insert(plan.key.clone(), rev.computed_to_ms);
                rev.computed_to_ms = end;
                progress.push(rev.clone());
            }
            // A fresh revision gets its alert windows before its first evaluation.
            let target = plan.backfill_target(end)?;
            if rev.computed_to_ms - rev.computed_from_ms < plan.longest_window_ms() && rev.computed_from_ms > target {
                let span = (inner.opts.backfill_chunk.as_millis() as i64).max(plan.longest_window_ms());
                let from = target.max(rev.computed_from_ms - span);
                rev = compute_and_store(inner, plan, &rev, from, rev.computed_from_ms, true).await?;
            }
            Ok::<RevisionRow, String>(rev)
        }
        .await;
        match r {
            Ok(rev) => {
                shared.revisions.insert(plan.key.clone(), rev);
            }
            Err(e) => {
                failed.insert(id, e);
            }
        }
    }
    if !progress.is_empty() {
        // Stored revisions must not run ahead of their slices: on failure the
        // in-memory rows go back to what is stored, and the next cycle retries.
        if let Err(e) = inner.store.append_slices(rows, progress.clone()).await {
            tracing::warn!(error = %e, "cannot store SLO slices");
            for p in progress {
                if let (Some(r), Some(before)) = (shared.revisions.get_mut(&p.sli), stored_to.get(&p.sli)) {
                    r.computed_to_ms = *before;
                }
                failed
                    .entry(p.sli.split('@').next().unwrap_or("").to_owned())
                    .or_insert_with(|| format!("storing slices: {e}"));
            }
        }
    }

    // Pass 3: window sums, one scan per distinct (end, windows, slice target).
    let mut groups: HashMap<(i64, Vec<i64>, Option<u64>), Vec<String>> = HashMap::new();
    for plan in &plans {
        if failed.contains_key(&plan.slo.id) {
            continue;
        }
        let end = evaluate::slices_end(plan, t, settle);
        match evaluate::window_lengths(plan, end) {
            Ok(l) => groups
                .entry((end, l, plan.slice_target.map(f64::to_bits)))
                .or_default()
                .push(plan.key.clone()),
            Err(e) => {
                failed.insert(plan.slo.id.clone(), e);
            }
        }
    }
    let mut sums = HashMap::new();
    for ((end, lengths, target), keys) in groups {
        match inner
            .store
            .slice_sums(
                end,
                lengths,
                sextant_store::SliceFilter::Keys(keys.clone()),
                target.map(f64::from_bits),
            )
            .await
        {
            Ok(s) => sums.extend(s),
            Err(e) => {
                for k in keys {
                    failed.insert(
                        k.split('@').next().unwrap_or("").to_owned(),
                        format!("summing slices: {e}"),
                    );
                }
            }
        }
    }

    // Pass 4: evaluate.
    let ctx = Context {
        engine: &inner.engine,
        store: &inner.store,
        reads: &reads,
        sums: Some(&sums),
        settle_ms: settle,
        version: &inner.opts.version,
    };
    let all: Vec<RevisionRow> = shared.revisions.values().cloned().collect();
    for plan in &plans {
        let id = plan.slo.id.clone();
        let result = match failed.remove(&id) {
            Some(e) => Err(e),
            None => {
                let rev = shared.revisions.get(&plan.key).cloned();
                let memory = shared.memory.entry(plan.key.clone()).or_default();
                match rev {
                    Some(rev) => evaluate::evaluate(plan, &ctx, &rev, &all, memory, t, false).await,
                    None => Err("no revision row".to_owned()),
                }
            }
        };
        match result {
            Ok(eval) => {
                if shared.errors.remove(&id).is_some() {
                    tracing::info!(slo = %id, "SLO evaluates again");
                }
                let current: HashSet<Labels> = eval.series.iter().map(|(l, _)| l.clone()).collect();
                let previous = shared.written.insert(id.clone(), current.clone()).unwrap_or_default();
                for gone in previous.difference(&current) {
                    series.push(SeriesSamples {
                        labels: gone.clone(),
                        samples: vec![Sample::new(t, stale_nan())],
                    });
                }
                series.extend(eval.series.into_iter().map(|(labels, v)| SeriesSamples {
                    labels,
                    samples: vec![Sample::new(t, v)],
                }));
                statuses.insert(id, eval.status);
            }
            Err(e) => {
                inner.metrics.failures.inc();
                if shared.errors.get(&id) != Some(&e) {
                    tracing::warn!(slo = %id, error = %e, "SLO evaluation failed");
                }
                shared.errors.insert(id.clone(), e.clone());
                // Keep the last good status, with the error.
                let old = inner.statuses.read().expect("poisoned").get(&id).cloned();
                if let Some(mut s) = old {
                    s.summary.error = Some(e);
                    statuses.insert(id, s);
                } else {
                    statuses.insert(id.clone(), failed_status(plan, e));
                }
            }
        }
    }
    if !series.is_empty()
        && let Err(e) = inner
            .store
            .append(AppendRequest {
                series,
                ..Default::default()
            })
            .await
    {
        tracing::warn!(error = %e, "cannot store SLO series");
    }
    if t - shared.last_retention_ms >= 3_600_000 {
        shared.last_retention_ms = t;
        let cutoff = t - inner.opts.slice_retention.as_millis() as i64;
        if let Err(e) = inner.store.drop_slices_before(cutoff).await {
            tracing::warn!(error = %e, "SLO slice retention failed");
        }
    }
    shared.last_cycle_ms = Some(t);
    let hook = inner.hook.read().expect("poisoned").clone();
    if let Some(hook) = hook {
        hook(t, &statuses);
    }
    let sink = inner.alerts.read().expect("poisoned").clone();
    if let Some((sink, base_url)) = sink {
        let alerts = tier_alerts(&plans, &statuses, &mut shared.tier_alerts, t, &base_url);
        if !alerts.is_empty() {
            sink(alerts);
        }
    }
    let backfilling = shared
        .plans
        .iter()
        .filter(|p| needs_backfill(p, &shared.revisions, t, settle))
        .count();
    inner.metrics.backfilling.set(backfilling as i64);
    *inner.statuses.write().expect("poisoned") = statuses;
    inner.metrics.cycles.inc();
    inner.metrics.cycle_seconds.set(started.elapsed().as_secs_f64());
}

fn needs_backfill(plan: &Plan, revisions: &HashMap<String, RevisionRow>, t: i64, settle: i64) -> bool {
    let end = evaluate::slices_end(plan, t, settle);
    match (revisions.get(&plan.key), plan.backfill_target(end)) {
        (Some(r), Ok(target)) => r.computed_from_ms > target,
        _ => false,
    }
}

/// One backfill chunk for the SLO furthest from done; false when none needs one.
async fn backfill_step(inner: &Inner, t: i64) -> bool {
    let mut shared = inner.shared.lock().await;
    let settle = inner.opts.settle.as_millis() as i64;
    let Some(plan) = shared
        .plans
        .iter()
        .filter(|p| needs_backfill(p, &shared.revisions, t, settle))
        .max_by_key(|p| shared.revisions.get(&p.key).map_or(0, |r| r.computed_from_ms))
        .cloned()
    else {
        return false;
    };
    let Some(rev) = shared.revisions.get(&plan.key).cloned() else {
        return false;
    };
    let Ok(target) = plan.backfill_target(evaluate::slices_end(&plan, t, settle)) else {
        return false;
    };
    let from = target.max(rev.computed_from_ms - inner.opts.backfill_chunk.as_millis() as i64);
    match compute_and_store(inner, &plan, &rev, from, rev.computed_from_ms, true).await {
        Ok(rev) => {
            if rev.computed_from_ms <= target {
                tracing::info!(slo = %plan.slo.id, revision = %plan.revision, "SLO backfill done");
            }
            shared.revisions.insert(plan.key.clone(), rev);
            true
        }
        Err(e) => {
            tracing::warn!(slo = %plan.slo.id, error = %e, "SLO backfill failed; retrying next cycle");
            false
        }
    }
}

/// Computes the slices in `(from, to]`, stores them with the revision's new bounds
/// in one transaction, and returns the new revision row.
async fn compute_and_store(
    inner: &Inner,
    plan: &Plan,
    rev: &RevisionRow,
    from: i64,
    to: i64,
    backward: bool,
) -> Result<RevisionRow, String> {
    let rows = slicer::compute(plan, &inner.exact, &inner.store, from, to).await?;
    let mut next = rev.clone();
    if backward {
        next.computed_from_ms = from;
    } else {
        next.computed_to_ms = to;
    }
    inner.metrics.slices.inc_by(rows.len() as u64);
    inner
        .store
        .append_slices(rows, vec![next.clone()])
        .await
        .map_err(|e| format!("storing slices: {e}"))?;
    Ok(next)
}

fn failed_status(plan: &Plan, error: String) -> SloStatus {
    let slo = &plan.slo;
    SloStatus {
        summary: SloSummary {
            id: slo.id.clone(),
            service: slo.service.clone(),
            name: slo.name.clone(),
            objective: slo.objective_ratio(),
            period: plan.period_name.clone(),
            state: State::Unknown,
            budget_remaining: None,
            current_burn_rate: None,
            period_coverage: 0.0,
            revision: plan.revision.clone(),
            evaluated_at: None,
            error: Some(error),
        },
        description: slo.description.clone(),
        labels: slo.labels.clone(),
        spec_location: slo.location.clone(),
        spec_kind: slo.spec.label().to_owned(),
        budgeting: if plan.slice_target.is_some() {
            "timeslices"
        } else {
            "occurrences"
        }
        .to_owned(),
        slice_seconds: plan.slice_ms as f64 / 1000.0,
        slices_until: None,
        windows: Vec::new(),
        budget: crate::status::BudgetStatus {
            period_start: None,
            period_end: None,
            objective: slo.objective_ratio(),
            error_budget: plan.error_budget,
            period_error_ratio: None,
            consumed: None,
            remaining: None,
            total_events: None,
            bad_events: None,
            budget_events: None,
            remaining_events: None,
            budget_minutes: None,
            bad_minutes: None,
            remaining_minutes: None,
            unknown_minutes: None,
            exhaustion_seconds: None,
        },
        calendar: Vec::new(),
        tiers: Vec::new(),
        attribution: None,
        revisions: Vec::new(),
        backfill: crate::status::BackfillStatus {
            done: false,
            progress: 0.0,
            computed_from: None,
            target: None,
        },
    }
}

/// The alerts of every SLO's tiers at `t`, with Sloth's alert names, labels and
/// default annotations, and Sextant's annotations with the evidence.
fn tier_alerts(
    plans: &[Plan],
    statuses: &BTreeMap<String, SloStatus>,
    memory: &mut HashMap<(String, String), (i64, Option<i64>)>,
    t: i64,
    base_url: &str,
) -> Vec<crate::engine::TierAlert> {
    use std::collections::BTreeMap as Map;
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for plan in plans {
        let slo = &plan.slo;
        let Some(status) = statuses.get(&slo.id) else { continue };
        for (tier, ts) in plan.tiers.iter().zip(&status.tiers) {
            if !tier.alert_enabled {
                continue;
            }
            let key = (slo.id.clone(), ts.name.clone());
            seen.insert(key.clone());
            let firing =
                ts.state == State::Firing || (ts.state == State::Unknown && ts.last_known_state == Some(State::Firing));
            let spec = match ts.name.as_str() {
                "ticket" => slo.ticket_alert.as_ref().or(slo.page_alert.as_ref()),
                _ => slo.page_alert.as_ref().or(slo.ticket_alert.as_ref()),
            };
            let mut labels: Map<String, String> = slo.labels.clone();
            labels.insert("sloth_id".into(), slo.id.clone());
            labels.insert("sloth_service".into(), slo.service.clone());
            labels.insert("sloth_slo".into(), slo.name.clone());
            labels.insert("sloth_severity".into(), ts.severity.clone());
            labels.insert("tier".into(), ts.name.clone());
            let windows: Vec<String> = ts
                .conditions
                .iter()
                .map(|c| match &c.short_window {
                    Some(s) => format!("{}/{s}", c.long_window),
                    None => c.long_window.clone(),
                })
                .collect();
            labels.insert("windows".into(), windows.join(" "));
            if let Some(spec) = spec {
                labels.extend(spec.labels.clone());
            }
            labels.insert(
                "alertname".into(),
                spec.map(|s| s.name.clone())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "SLOBurnRate".into()),
            );
            let mut annotations: Map<String, String> = Map::new();
            annotations.insert(
                "title".into(),
                format!(
                    "({}) {{{{$labels.sloth_service}}}} {{{{$labels.sloth_slo}}}} SLO error budget burn rate is too fast.",
                    ts.severity
                ),
            );
            annotations.insert(
                "summary".into(),
                "{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is over expected.".into(),
            );
            if let Some(spec) = spec {
                annotations.extend(spec.annotations.clone());
            }
            // The evidence: the condition that holds (or the first), budget, blame.
            let cond = ts
                .conditions
                .iter()
                .find(|c| c.state == State::Firing)
                .or_else(|| ts.conditions.first());
            let fmt = |v: Option<f64>| v.map_or("unknown".to_owned(), |x| format!("{x:.4}"));
            if let Some(c) = cond {
                annotations.insert("burn_rate_long".into(), fmt(c.long_burn_rate));
                annotations.insert("burn_rate_short".into(), fmt(c.short_burn_rate));
                annotations.insert("burn_rate_threshold".into(), format!("{}", c.burn_rate_threshold));
                annotations.insert("long_window".into(), c.long_window.clone());
                if let Some(s) = &c.short_window {
                    annotations.insert("short_window".into(), s.clone());
                }
            }
            annotations.insert("budget_remaining".into(), fmt(status.summary.budget_remaining));
            if let Some(top) = status.attribution.as_ref().and_then(|a| a.groups.first()) {
                let group: Vec<String> = top.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                annotations.insert("top_group".into(), group.join(","));
                annotations.insert("top_group_share".into(), format!("{:.4}", top.share));
            }
            annotations.insert("slo_url".into(), format!("{base_url}/api/sextant/v1/slos/{}", slo.id));
            let value = cond.and_then(|c| c.long_burn_rate).unwrap_or(f64::NAN);
            let entry = memory.entry(key.clone());
            if firing {
                let since = match entry {
                    std::collections::hash_map::Entry::Occupied(mut o) => {
                        let v = o.get_mut();
                        if v.1.is_some() {
                            *v = (t, None);
                        }
                        v.0
                    }
                    std::collections::hash_map::Entry::Vacant(v) => v.insert((t, None)).0,
                };
                out.push(crate::engine::TierAlert {
                    labels,
                    annotations,
                    firing: true,
                    since_ms: since,
                    at_ms: t,
                    value,
                });
            } else if let std::collections::hash_map::Entry::Occupied(mut o) = entry {
                let (since, resolved) = *o.get();
                let resolved = resolved.unwrap_or(t);
                if t - resolved > RESOLVED_RESEND_MS {
                    o.remove();
                    continue;
                }
                o.insert((since, Some(resolved)));
                out.push(crate::engine::TierAlert {
                    labels,
                    annotations,
                    firing: false,
                    since_ms: since,
                    at_ms: resolved,
                    value,
                });
            }
        }
    }
    // Tiers of SLOs that are gone: forgotten (their alerts time out in the router).
    memory.retain(|k, _| seen.contains(k));
    out
}
