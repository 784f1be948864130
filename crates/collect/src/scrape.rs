//! The scrape manager: one pool per job, one loop per target.
//!
//! Behaviour follows Prometheus 2.42: targets are labelled and relabelled as its
//! `populateLabels` does (including the default port), scraped at a fixed phase within
//! the interval derived from the target's hash (so targets are spread over the interval),
//! scraped labels are merged with target labels (`exported_*` on conflict unless
//! `honor_labels`), and a series that disappears, or every series of a failed scrape or
//! stopped target, gets a staleness marker. Series with explicit timestamps are exempt
//! from staleness, as in Prometheus.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use sextant_expfmt::{Format, SCRAPE_ACCEPT_HEADER};
use sextant_model::time::{format_duration, now_ms, parse_duration};
use sextant_model::{Label, Labels, LabelsBuilder, Sample, stale_nan};
use sextant_store::{AppendRequest, HashIndex, MetricsStore, SeriesRef, SeriesSamples};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::ScrapeConfig;
use crate::discovery::{FileWatcher, TargetGroup, static_groups};
use crate::http_client::{JobClient, build_client};
use crate::relabel;

/// Discovery source name of targets Sextant provides itself.
const PROVIDED: &str = "sextant";

/// How often file_sd files are checked for changes.
const FILE_SD_POLL: Duration = Duration::from_secs(2);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScrapeResultLabels {
    job: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: String,
}

#[derive(Clone, Default)]
struct ScrapeMetrics {
    scrapes: Family<ScrapeResultLabels, Counter>,
    samples: Family<JobLabels, Counter>,
}

/// Health of a target's last scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not scraped yet.
    Unknown,
    /// Last scrape succeeded.
    Up,
    /// Last scrape failed.
    Down,
}

impl Health {
    /// Prometheus' names: `unknown`, `up`, `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// A target's state as `/api/v1/targets` shows it.
#[derive(Debug, Clone)]
pub struct TargetStatus {
    /// The job (scrape pool).
    pub job: String,
    /// Labels before relabeling.
    pub discovered_labels: Labels,
    /// Final labels (without `__` labels).
    pub labels: Labels,
    /// The scrape URL.
    pub url: String,
    /// Health of the last scrape.
    pub health: Health,
    /// Error of the last scrape, empty when it succeeded.
    pub last_error: String,
    /// Start of the last scrape, epoch ms.
    pub last_scrape_ms: Option<i64>,
    /// Duration of the last scrape.
    pub last_scrape_duration: Duration,
    /// Scrape interval.
    pub interval: Duration,
    /// Scrape timeout.
    pub timeout: Duration,
}

/// All targets, active and dropped by relabeling.
#[derive(Debug, Clone, Default)]
pub struct TargetsSnapshot {
    /// Scraped targets, ordered by job then URL.
    pub active: Vec<TargetStatus>,
    /// `(job, discovered labels)` of targets relabeling dropped.
    pub dropped: Vec<(String, Labels)>,
}

struct TargetHealth {
    health: Health,
    last_error: String,
    last_scrape_ms: Option<i64>,
    last_duration: Duration,
}

/// A target after relabeling.
struct Target {
    discovered: Labels,
    /// Final labels without `__` ones: what series get.
    public: Labels,
    url: String,
    interval: Duration,
    timeout: Duration,
    hash: u64,
    health: Mutex<TargetHealth>,
}

struct ActiveTarget {
    target: Arc<Target>,
    /// Send `true` to stop with end-of-run staleness markers, `false` without.
    stop: oneshot::Sender<bool>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct PoolState {
    groups: BTreeMap<String, Vec<Labels>>,
    active: HashMap<u64, ActiveTarget>,
    dropped: Vec<Labels>,
}

struct PoolShared {
    config: ScrapeConfig,
    client: JobClient,
    store: MetricsStore,
    metrics: ScrapeMetrics,
    over_target_limit: AtomicBool,
    state: Mutex<PoolState>,
}

struct Pool {
    fingerprint: String,
    shared: Arc<PoolShared>,
    discovery: Vec<JoinHandle<()>>,
}

/// Runs scrape pools for the configured jobs.
#[derive(Clone)]
pub struct ScrapeManager {
    store: MetricsStore,
    metrics: ScrapeMetrics,
    pools: Arc<tokio::sync::Mutex<BTreeMap<String, Pool>>>,
    /// Targets handed in by Sextant itself (the replicas of supervised workloads),
    /// by job; they survive the job's restart on reload.
    provided: Arc<Mutex<HashMap<String, Vec<Labels>>>>,
}

impl ScrapeManager {
    /// A manager writing to `store`, registering its metrics in `registry`.
    pub fn new(store: MetricsStore, registry: &mut Registry) -> Self {
        let metrics = ScrapeMetrics::default();
        let r = registry.sub_registry_with_prefix("sextant_scrape");
        r.register(
            "scrapes",
            "Scrapes by job and result (success, failure)",
            metrics.scrapes.clone(),
        );
        r.register(
            "samples_scraped",
            "Samples appended from scrapes, by job",
            metrics.samples.clone(),
        );
        Self {
            store,
            metrics,
            pools: Arc::default(),
            provided: Arc::default(),
        }
    }

    /// Sets the targets Sextant itself provides for `job` (each label set has
    /// `__address__`), replacing the previous ones; they are relabeled and scraped
    /// like discovered targets once a scrape config named `job` is applied.
    pub async fn set_provided_targets(&self, job: &str, targets: Vec<Labels>) {
        self.provided
            .lock()
            .expect("poisoned")
            .insert(job.to_owned(), targets.clone());
        if let Some(pool) = self.pools.lock().await.get(job) {
            sync_group(
                &pool.shared,
                TargetGroup {
                    source: PROVIDED.into(),
                    targets,
                },
            );
        }
    }

    /// Applies a new set of jobs: unchanged jobs keep running, changed ones restart,
    /// removed ones stop. Validation (clients, TLS files) happens before anything
    /// changes, so a bad config leaves the old one running.
    pub async fn apply(&self, configs: Vec<ScrapeConfig>) -> Result<(), String> {
        let mut prepared = Vec::new();
        for c in configs {
            let client = build_client(&c)?;
            prepared.push((format!("{c:?}"), c, client));
        }
        let mut pools = self.pools.lock().await;
        let wanted: HashSet<String> = prepared.iter().map(|(_, c, _)| c.job_name.clone()).collect();
        let gone: Vec<String> = pools.keys().filter(|k| !wanted.contains(*k)).cloned().collect();
        for job in gone {
            if let Some(p) = pools.remove(&job) {
                p.stop(true).await;
            }
        }
        for (fingerprint, config, client) in prepared {
            if pools
                .get(&config.job_name)
                .is_some_and(|p| p.fingerprint == fingerprint)
            {
                continue;
            }
            if let Some(old) = pools.remove(&config.job_name) {
                old.stop(true).await;
            }
            let job = config.job_name.clone();
            let provided = self.provided.lock().expect("poisoned").get(&job).cloned();
            let pool = Pool::start(fingerprint, config, client, self.store.clone(), self.metrics.clone());
            if let Some(targets) = provided {
                sync_group(
                    &pool.shared,
                    TargetGroup {
                        source: PROVIDED.into(),
                        targets,
                    },
                );
            }
            pools.insert(job, pool);
        }
        Ok(())
    }

    /// Stops every pool for shutdown. Like Prometheus, no staleness markers are written:
    /// the targets did not go away, Sextant did.
    pub async fn shutdown(&self) {
        let mut pools = self.pools.lock().await;
        for (_, p) in std::mem::take(&mut *pools) {
            p.stop(false).await;
        }
    }

    /// Current targets.
    pub async fn targets(&self) -> TargetsSnapshot {
        let pools = self.pools.lock().await;
        let mut snap = TargetsSnapshot::default();
        for (job, pool) in pools.iter() {
            let state = pool.shared.state.lock().expect("poisoned");
            let mut active: Vec<TargetStatus> = state
                .active
                .values()
                .map(|a| {
                    let t = &a.target;
                    let h = t.health.lock().expect("poisoned");
                    TargetStatus {
                        job: job.clone(),
                        discovered_labels: t.discovered.clone(),
                        labels: t.public.clone(),
                        url: t.url.clone(),
                        health: h.health,
                        last_error: h.last_error.clone(),
                        last_scrape_ms: h.last_scrape_ms,
                        last_scrape_duration: h.last_duration,
                        interval: t.interval,
                        timeout: t.timeout,
                    }
                })
                .collect();
            active.sort_by(|a, b| a.url.cmp(&b.url));
            snap.active.extend(active);
            snap.dropped
                .extend(state.dropped.iter().map(|l| (job.clone(), l.clone())));
        }
        snap
    }
}

impl Pool {
    fn start(
        fingerprint: String,
        config: ScrapeConfig,
        client: JobClient,
        store: MetricsStore,
        metrics: ScrapeMetrics,
    ) -> Self {
        let shared = Arc::new(PoolShared {
            config,
            client,
            store,
            metrics,
            over_target_limit: AtomicBool::new(false),
            state: Mutex::default(),
        });
        for g in static_groups(&shared.config.static_configs) {
            sync_group(&shared, g);
        }
        let mut discovery = Vec::new();
        for (i, fsd) in shared.config.file_sd_configs.iter().enumerate() {
            let shared = shared.clone();
            let mut watcher = FileWatcher::new(fsd.clone());
            discovery.push(tokio::spawn(async move {
                let mut per_file = BTreeMap::new();
                loop {
                    if let Some(groups) = watcher.poll(&mut per_file) {
                        let targets = groups.into_iter().flat_map(|g| g.targets).collect();
                        sync_group(
                            &shared,
                            TargetGroup {
                                source: format!("file_sd/{i}"),
                                targets,
                            },
                        );
                    }
                    tokio::time::sleep(FILE_SD_POLL).await;
                }
            }));
        }
        Self {
            fingerprint,
            shared,
            discovery,
        }
    }

    async fn stop(self, staleness: bool) {
        for d in &self.discovery {
            d.abort();
        }
        let active: Vec<ActiveTarget> = {
            let mut state = self.shared.state.lock().expect("poisoned");
            state.active.drain().map(|(_, a)| a).collect()
        };
        for a in active {
            let _ = a.stop.send(staleness);
            let _ = a.task.await;
        }
    }
}

/// Replaces one discovery source's targets and starts/stops target loops to match.
fn sync_group(shared: &Arc<PoolShared>, group: TargetGroup) {
    let mut state = shared.state.lock().expect("poisoned");
    state.groups.insert(group.source, group.targets);
    let mut desired: HashMap<u64, Target> = HashMap::new();
    let mut dropped = Vec::new();
    for labels in state.groups.values().flatten() {
        match populate(labels, &shared.config) {
            Ok(Populated::Target(t)) => {
                desired.insert(t.hash, t);
            }
            Ok(Populated::Dropped(d)) => dropped.push(d),
            Err(e) => {
                tracing::warn!(job = %shared.config.job_name, error = %e, "dropping target");
                dropped.push(labels.clone());
            }
        }
    }
    let limit = shared.config.target_limit;
    shared
        .over_target_limit
        .store(limit > 0 && desired.len() > limit, Ordering::Relaxed);
    state.dropped = dropped;
    let stale: Vec<u64> = state
        .active
        .keys()
        .filter(|h| !desired.contains_key(h))
        .copied()
        .collect();
    for h in stale {
        if let Some(a) = state.active.remove(&h) {
            let _ = a.stop.send(true);
            // The loop finishes on its own, writing staleness markers.
        }
    }
    for (hash, target) in desired {
        if state.active.contains_key(&hash) {
            continue;
        }
        let target = Arc::new(target);
        let (stop, stop_rx) = oneshot::channel();
        let task = tokio::spawn(run_target(shared.clone(), target.clone(), stop_rx));
        state.active.insert(hash, ActiveTarget { target, stop, task });
    }
}

enum Populated {
    Target(Target),
    Dropped(Labels),
}

/// What `promtool check config` checks of a job's targets beyond the config itself:
/// every static target, and every target of the file_sd files that exist now, goes
/// through the target rules of [`populate`] (address, scheme, interval, timeout).
pub fn check_targets(cfg: &ScrapeConfig) -> Result<(), String> {
    let mut groups = static_groups(&cfg.static_configs);
    for f in &cfg.file_sd_configs {
        for pattern in &f.files {
            let paths = glob::glob(pattern).map_err(|e| format!("{pattern}: {e}"))?;
            for path in paths.flatten() {
                groups.extend(crate::discovery::read_file_groups(&path)?);
            }
        }
    }
    for g in &groups {
        for (i, t) in g.targets.iter().enumerate() {
            if let Err(e) = populate(t, cfg) {
                return Err(format!("instance {i} in group {}: {e}", g.source));
            }
        }
    }
    Ok(())
}

/// Prometheus' `populateLabels`: scrape defaults as labels, `__param_*`, relabeling,
/// the default port, `__meta_*` removal, and `instance` defaulting to the address.
fn populate(discovered: &Labels, cfg: &ScrapeConfig) -> Result<Populated, String> {
    let mut b = discovered.to_builder();
    let defaults = [
        ("job", cfg.job_name.clone()),
        ("__scrape_interval__", format_duration(cfg.interval())),
        ("__scrape_timeout__", format_duration(cfg.timeout())),
        ("__metrics_path__", cfg.metrics_path.clone()),
        ("__scheme__", cfg.scheme.clone()),
    ];
    for (name, value) in &defaults {
        if discovered.get(name).is_none() {
            b.set(name, value);
        }
    }
    for (k, v) in &cfg.params {
        if let Some(first) = v.first() {
            b.set(&format!("__param_{k}"), first);
        }
    }
    let pre = b.build();
    let Some(relabeled) = relabel::process(&pre, &cfg.relabel_configs) else {
        return Ok(Populated::Dropped(pre));
    };
    let mut addr = relabeled.get("__address__").ok_or("no address")?.to_owned();
    let scheme = relabeled.get("__scheme__").unwrap_or("http").to_owned();
    let mut b = relabeled.to_builder();
    if needs_default_port(&addr) {
        addr.push_str(match scheme.as_str() {
            "http" | "" => ":80",
            "https" => ":443",
            other => return Err(format!("invalid scheme: {other:?}")),
        });
        b.set("__address__", &addr);
    }
    if addr.contains('/') {
        return Err(format!("{addr:?} is not a valid hostname"));
    }
    b.retain(|l| !l.name.starts_with("__meta_"));
    if relabeled.get("instance").is_none() {
        b.set("instance", &addr);
    }
    let labels = b.build();
    let interval = parse_duration(labels.get("__scrape_interval__").unwrap_or(""))
        .map_err(|e| format!("error parsing interval: {e}"))?;
    let timeout = parse_duration(labels.get("__scrape_timeout__").unwrap_or(""))
        .map_err(|e| format!("error parsing timeout: {e}"))?;
    if interval.is_zero() {
        return Err("scrape interval cannot be 0".into());
    }
    if timeout > interval {
        return Err(format!(
            "scrape timeout cannot be greater than scrape interval ({timeout:?} > {interval:?})"
        ));
    }
    let url = target_url(&labels, cfg);
    let public = Labels::from_pairs(
        labels
            .iter()
            .filter(|l| !l.name.starts_with("__"))
            .map(|l| (l.name.clone(), l.value.clone())),
    )
    .map_err(|e| e.to_string())?;
    Ok(Populated::Target(Target {
        // The URL derives from these labels and the pool's params, so they identify the target.
        hash: labels.stable_hash(),
        discovered: pre,
        public,
        url,
        interval,
        timeout,
        health: Mutex::new(TargetHealth {
            health: Health::Unknown,
            last_error: String::new(),
            last_scrape_ms: None,
            last_duration: Duration::ZERO,
        }),
    }))
}

/// True when `addr` has no port and adding one makes it a valid `host:port`.
fn needs_default_port(addr: &str) -> bool {
    if let Some(rest) = addr.strip_prefix('[') {
        // "[v6]" needs a port; "[v6]:port" has one.
        return rest.ends_with(']');
    }
    !addr.contains(':') && !addr.is_empty()
}

/// The scrape URL: scheme, address, path, and the job's params overridden by
/// `__param_*` labels, encoded sorted by key as Go's `url.Values` does.
fn target_url(labels: &Labels, cfg: &ScrapeConfig) -> String {
    let mut params: BTreeMap<String, Vec<String>> = cfg.params.clone();
    for l in labels.iter() {
        if let Some(k) = l.name.strip_prefix("__param_") {
            let v = params.entry(k.to_owned()).or_default();
            if v.is_empty() {
                v.push(l.value.clone());
            } else {
                v[0] = l.value.clone();
            }
        }
    }
    let scheme = labels.get("__scheme__").unwrap_or("http");
    let addr = labels.get("__address__").unwrap_or("");
    let path = labels.get("__metrics_path__").unwrap_or("/metrics");
    // Go's URL type puts the `/` between host and a relative path.
    let slash = if path.starts_with('/') { "" } else { "/" };
    // Built by hand: URL libraries drop a default port, and Prometheus shows it.
    let mut url = format!("{scheme}://{addr}{slash}{path}");
    if !params.is_empty() {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, vs) in &params {
            for v in vs {
                q.append_pair(k, v);
            }
        }
        url.push('?');
        url.push_str(&q.finish());
    }
    // Not checked here: like Prometheus, a target whose URL cannot work (`host:1:2`)
    // exists and fails at each scrape, where its error is shown.
    url
}

/// What a target's scrape loop keeps from one scrape to the next.
#[derive(Default)]
struct LoopState {
    cache: ScrapeCache,
    /// Series of the last successful scrape without explicit timestamps, by label hash:
    /// those missing from the next scrape go stale.
    previous: HashIndex<Arc<Labels>>,
    /// The same for the scrape being processed; it becomes `previous` when it succeeds.
    current: HashIndex<Arc<Labels>>,
    /// The store's references of the report series (`up`, ...), in [`REPORT_NAMES`] order.
    report_refs: Option<[SeriesRef; REPORT_NAMES.len()]>,
}

/// Prometheus' scrape cache: from a line's series text to what this target's scrapes
/// made of it. A steady scrape therefore parses no label set, merges and relabels
/// nothing and appends by reference, and the store never hashes or looks up its series.
#[derive(Default)]
struct ScrapeCache {
    entries: HashMap<Box<str>, CacheEntry>,
    /// Counts the bodies processed; an entry remembers the last one that had its line.
    iteration: u64,
}

struct CacheEntry {
    /// The series after label merging and metric relabeling; `None` when relabeling
    /// drops it (or leaves no name), so a dropped line costs one lookup too.
    series: Option<CachedSeries>,
    seen: u64,
}

struct CachedSeries {
    labels: Arc<Labels>,
    /// `labels.hash64()`.
    hash: u64,
    /// The store's reference, once an append has returned it.
    series_ref: Option<SeriesRef>,
}

async fn run_target(shared: Arc<PoolShared>, target: Arc<Target>, mut stop: oneshot::Receiver<bool>) {
    let interval_ms = target.interval.as_millis().max(1) as i64;
    let offset_ms = (target.hash % interval_ms as u64) as i64;
    let now = now_ms();
    let wait_ms = (offset_ms - now).rem_euclid(interval_ms);
    let start = tokio::time::Instant::now() + Duration::from_millis(wait_ms as u64);
    let mut ticker = tokio::time::interval_at(start, target.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut state = LoopState::default();
    let staleness = loop {
        tokio::select! {
            _ = ticker.tick() => scrape_once(&shared, &target, &mut state).await,
            s = &mut stop => break s.unwrap_or(true),
        }
    };
    if !staleness {
        return;
    }
    // End of run: every series of the last scrape, and the report series, go stale.
    let t = now_ms();
    let mut req = AppendRequest::default();
    let report_names = REPORT_NAMES.iter().map(|n| with_name(&target.public, n));
    let last = state.previous.drain().map(|(_, labels)| Arc::unwrap_or_clone(labels));
    for labels in last.chain(report_names) {
        req.series.push(SeriesSamples {
            labels,
            samples: vec![Sample::new(t, stale_nan())],
        });
    }
    if let Err(e) = shared.store.append(req).await {
        tracing::warn!(error = %e, url = %target.url, "could not write end-of-run staleness markers");
    }
}

const REPORT_NAMES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

fn with_name(labels: &Labels, name: &str) -> Labels {
    let mut b = labels.to_builder();
    b.set("__name__", name);
    b.build()
}

/// A scrape body turned into an append.
struct ScrapeBatch {
    req: AppendRequest,
    /// Cache keys of the leading entries of `req.series` (series not yet referenced),
    /// whose references the append returns.
    new_keys: Vec<Box<str>>,
    scraped: usize,
    post_relabel: usize,
    added: usize,
}

/// One scrape's append, built by [`build_append`], with what [`finish_append`] needs.
struct PendingAppend {
    req: AppendRequest,
    new_keys: Vec<Box<str>>,
    /// Where the report series sit in `req.series` when they went by label set.
    report_at: Option<usize>,
    error: Option<String>,
}

async fn scrape_once(shared: &PoolShared, target: &Target, state: &mut LoopState) {
    let cfg = &shared.config;
    let start_ms = now_ms();
    let t0 = Instant::now();
    let fetched = if shared.over_target_limit.load(Ordering::Relaxed) {
        Err(format!("target_limit exceeded (limit: {})", cfg.target_limit))
    } else {
        fetch(shared, target).await
    };
    let duration = t0.elapsed();
    let pending = build_append(fetched, target, cfg, start_ms, duration, state);
    let (stored, mut error) = store_append(&shared.store, pending, state).await;
    match stored {
        Ok(accepted) => {
            shared
                .metrics
                .samples
                .get_or_create(&JobLabels {
                    job: cfg.job_name.clone(),
                })
                .inc_by(accepted);
        }
        Err(e) => {
            // A scrape the store refused (the head's series limit, a full disk) is a
            // failed scrape: the target's health says why.
            tracing::warn!(error = %e, url = %target.url, "storing scrape failed");
            error.get_or_insert_with(|| format!("storing the scrape failed: {e}"));
        }
    }
    let result = if error.is_none() { "success" } else { "failure" };
    shared
        .metrics
        .scrapes
        .get_or_create(&ScrapeResultLabels {
            job: cfg.job_name.clone(),
            result,
        })
        .inc();
    let mut h = target.health.lock().expect("poisoned");
    h.health = if error.is_none() { Health::Up } else { Health::Down };
    h.last_error = error.unwrap_or_default();
    h.last_scrape_ms = Some(start_ms);
    h.last_duration = duration;
}

/// Builds one scrape's append: its samples (by reference where the cache has one), the
/// staleness markers of series that went away (all of them if the scrape failed), and
/// the report series.
fn build_append(
    fetched: Result<(Vec<u8>, String), String>,
    target: &Target,
    cfg: &ScrapeConfig,
    start_ms: i64,
    duration: Duration,
    state: &mut LoopState,
) -> PendingAppend {
    let processed = fetched
        .map_err(|e| (e, 0))
        .and_then(|(body, ct)| process_body(&body, &ct, target, cfg, start_ms, state));
    let (mut req, new_keys, scraped, post, added, error) = match processed {
        Ok(batch) => {
            let mut req = batch.req;
            for (hash, labels) in &state.previous {
                if !state.current.contains_key(hash) {
                    req.series.push(SeriesSamples {
                        labels: Labels::clone(labels),
                        samples: vec![Sample::new(start_ms, stale_nan())],
                    });
                }
            }
            std::mem::swap(&mut state.previous, &mut state.current);
            (
                req,
                batch.new_keys,
                batch.scraped,
                batch.post_relabel,
                batch.added,
                None,
            )
        }
        Err((e, scraped)) => {
            let mut req = AppendRequest::default();
            for (_, labels) in state.previous.drain() {
                req.series.push(SeriesSamples {
                    labels: Arc::unwrap_or_clone(labels),
                    samples: vec![Sample::new(start_ms, stale_nan())],
                });
            }
            (req, Vec::new(), scraped, 0, 0, Some(e))
        }
    };
    state.current.clear();
    let up = if error.is_none() { 1.0 } else { 0.0 };
    let report = [up, duration.as_secs_f64(), scraped as f64, post as f64, added as f64];
    let report_at = match state.report_refs {
        Some(refs) => {
            req.samples_by_ref
                .extend(refs.into_iter().zip(report).map(|(r, v)| (r, Sample::new(start_ms, v))));
            None
        }
        None => {
            // The new series must stay first, where the returned references are read.
            let at = new_keys.len();
            let reports = REPORT_NAMES.iter().zip(report).map(|(name, v)| SeriesSamples {
                labels: with_name(&target.public, name),
                samples: vec![Sample::new(start_ms, v)],
            });
            req.series.splice(at..at, reports);
            Some(at)
        }
    };
    PendingAppend {
        req,
        new_keys,
        report_at,
        error,
    }
}

/// Stores a scrape's append and remembers the references it returns in the cache.
/// Returns the samples accepted (or the store's error) and the scrape's own error.
async fn store_append(
    store: &MetricsStore,
    pending: PendingAppend,
    state: &mut LoopState,
) -> (sextant_store::Result<u64>, Option<String>) {
    let PendingAppend {
        req,
        new_keys,
        report_at,
        error,
    } = pending;
    let outcome = match store.append(req).await {
        Ok(outcome) => outcome,
        Err(e) => return (Err(e), error),
    };
    for (key, r) in new_keys.iter().zip(&outcome.refs) {
        if let Some(CacheEntry {
            series: Some(series), ..
        }) = state.cache.entries.get_mut(key)
        {
            series.series_ref = Some(*r);
        }
    }
    if let Some(at) = report_at
        && let Some(refs) = outcome.refs.get(at..at + REPORT_NAMES.len())
    {
        state.report_refs = refs.try_into().ok();
    }
    (Ok(outcome.accepted), error)
}

async fn fetch(shared: &PoolShared, target: &Target) -> Result<(Vec<u8>, String), String> {
    let cfg = &shared.config;
    let req = shared
        .client
        .http
        .get(&target.url)
        .header(reqwest::header::ACCEPT, SCRAPE_ACCEPT_HEADER)
        .header(
            "X-Prometheus-Scrape-Timeout-Seconds",
            format!("{}", target.timeout.as_secs_f64()),
        )
        .timeout(target.timeout);
    let req = shared.client.authorize(req).await?;
    let mut resp = req.send().await.map_err(describe_reqwest_error)?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("server returned HTTP status {status}"));
    }
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let limit = cfg.body_size_limit.0 as usize;
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(describe_reqwest_error)? {
        body.extend_from_slice(&chunk);
        if limit > 0 && body.len() > limit {
            return Err(format!("body size limit exceeded (limit: {limit} bytes)"));
        }
    }
    Ok((body, content_type))
}

fn describe_reqwest_error(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return "context deadline exceeded".into();
    }
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// Parses a body and applies label merging, metric relabeling and limits, through the
/// scrape cache: only lines the cache has not seen are parsed into label sets. Fills
/// `state.current` with the series to track for staleness. On error, also returns how
/// many samples were read.
fn process_body(
    body: &[u8],
    content_type: &str,
    target: &Target,
    cfg: &ScrapeConfig,
    start_ms: i64,
    state: &mut LoopState,
) -> Result<ScrapeBatch, (String, usize)> {
    let LoopState {
        cache,
        previous,
        current,
        ..
    } = state;
    cache.iteration += 1;
    let iteration = cache.iteration;
    current.clear();
    let target_labels: Vec<&Label> = target.public.iter().collect();
    let mut req = AppendRequest::default();
    let mut new_keys: Vec<Box<str>> = Vec::new();
    // Series without a reference yet, by label hash: where they are in `req.series`.
    let mut unreferenced: HashIndex<usize> = HashIndex::default();
    let (mut scraped, mut post, mut added, mut touched) = (0, 0, 0, 0);
    let mut failure = None;
    let format = Format::from_content_type(content_type);
    let scan = sextant_expfmt::scan(body, format, |raw| {
        scraped += 1;
        let mut found = cache.entries.get_mut(raw.series);
        if found.is_none() {
            match resolve_line(raw, &target_labels, cfg) {
                Ok(series) => {
                    cache.entries.insert(raw.series.into(), CacheEntry { series, seen: 0 });
                    found = cache.entries.get_mut(raw.series);
                }
                Err(e) => {
                    failure = Some(e);
                    return ControlFlow::Break(());
                }
            }
        }
        let entry = found.expect("inserted above");
        if entry.seen != iteration {
            entry.seen = iteration;
            touched += 1;
        }
        let Some(series) = &entry.series else {
            return ControlFlow::Continue(());
        };
        post += 1;
        let explicit = cfg.honor_timestamps && raw.timestamp_ms.is_some();
        let sample = Sample::new(raw.timestamp_ms.filter(|_| explicit).unwrap_or(start_ms), raw.value);
        if !explicit
            && current.insert(series.hash, Arc::clone(&series.labels)).is_none()
            && !previous.contains_key(&series.hash)
        {
            added += 1;
        }
        match (series.series_ref, unreferenced.get(&series.hash)) {
            (Some(r), _) => req.samples_by_ref.push((r, sample)),
            (None, Some(i)) => req.series[*i].samples.push(sample),
            (None, None) => {
                unreferenced.insert(series.hash, req.series.len());
                req.series.push(SeriesSamples {
                    labels: Labels::clone(&series.labels),
                    samples: vec![sample],
                });
                new_keys.push(raw.series.into());
            }
        }
        ControlFlow::Continue(())
    });
    req.metadata = scan.map_err(|e| (e.to_string(), scraped))?;
    if let Some(e) = failure {
        return Err((e, scraped));
    }
    if cfg.sample_limit > 0 && post > cfg.sample_limit {
        return Err((
            format!("sample limit exceeded (limit: {}, samples: {post})", cfg.sample_limit),
            scraped,
        ));
    }
    // Lines the target no longer exposes leave the cache (a pass over it only when some
    // entry was not seen).
    if touched < cache.entries.len() {
        cache.entries.retain(|_, e| e.seen == iteration);
    }
    Ok(ScrapeBatch {
        req,
        new_keys,
        scraped,
        post_relabel: post,
        added,
    })
}

/// What a line the cache has not seen becomes: its label set merged with the target's
/// and metric-relabeled, or `None` if relabeling drops it. A label limit the series
/// breaks fails the scrape.
fn resolve_line(
    raw: &sextant_expfmt::RawSample<'_>,
    target_labels: &[&Label],
    cfg: &ScrapeConfig,
) -> Result<Option<CachedSeries>, String> {
    let scraped = raw.labels().map_err(|e| e.to_string())?;
    let merged = merge_target_labels(&scraped, target_labels, cfg.honor_labels);
    let Some(labels) = relabel::process(&merged, &cfg.metric_relabel_configs) else {
        return Ok(None);
    };
    if labels.metric_name().is_none() {
        return Ok(None);
    }
    check_label_limits(&labels, cfg)?;
    Ok(Some(CachedSeries {
        hash: labels.hash64(),
        labels: Arc::new(labels),
        series_ref: None,
    }))
}

fn check_label_limits(labels: &Labels, cfg: &ScrapeConfig) -> Result<(), String> {
    let name = labels.metric_name().unwrap_or("");
    if cfg.label_limit > 0 && labels.len() > cfg.label_limit {
        return Err(format!(
            "label_limit exceeded (metric: {name}, number of labels: {}, limit: {})",
            labels.len(),
            cfg.label_limit
        ));
    }
    for l in labels.iter() {
        if cfg.label_name_length_limit > 0 && l.name.len() > cfg.label_name_length_limit {
            return Err(format!(
                "label_name_length_limit exceeded (metric: {name}, label name: {}, limit: {})",
                l.name, cfg.label_name_length_limit
            ));
        }
        if cfg.label_value_length_limit > 0 && l.value.len() > cfg.label_value_length_limit {
            return Err(format!(
                "label_value_length_limit exceeded (metric: {name}, label name: {}, value: {:?}, limit: {})",
                l.name, l.value, cfg.label_value_length_limit
            ));
        }
    }
    Ok(())
}

/// Prometheus' `mutateSampleLabels` before metric relabeling: with `honor_labels` the
/// scraped value wins; otherwise the target's does and a clashing scraped label is kept
/// as `exported_<name>` (more `exported_` prefixes until the name is free).
fn merge_target_labels(scraped: &Labels, target: &[&Label], honor: bool) -> Labels {
    let mut b: LabelsBuilder = scraped.to_builder();
    if honor {
        for l in target {
            if scraped.get(&l.name).is_none() {
                b.set(&l.name, &l.value);
            }
        }
        return b.build();
    }
    let mut conflicts: Vec<(String, String)> = Vec::new();
    for l in target {
        if let Some(existing) = scraped.get(&l.name) {
            conflicts.push((l.name.clone(), existing.to_owned()));
        }
        b.set(&l.name, &l.value);
    }
    conflicts.sort_by_key(|(n, _)| n.len());
    for i in 0..conflicts.len() {
        let mut name = conflicts[i].0.clone();
        loop {
            name = format!("exported_{name}");
            let taken = scraped.get(&name).is_some()
                || target.iter().any(|l| l.name == name)
                || conflicts[..i].iter().any(|(n, _)| *n == name);
            if !taken {
                break;
            }
        }
        conflicts[i].0 = name;
    }
    for (n, v) in conflicts {
        b.set(&n, &v);
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    fn cfg(yaml: &str) -> ScrapeConfig {
        let mut c: Vec<ScrapeConfig> = serde_yaml::from_str(yaml).unwrap();
        crate::config::resolve_scrape_configs(
            &mut c,
            crate::config::ScrapeDefaults {
                interval: Duration::from_secs(15),
                timeout: Duration::from_secs(10),
            },
        )
        .unwrap();
        c.remove(0)
    }

    #[test]
    fn populate_like_prometheus() {
        let c = cfg("- job_name: node\n  params: {module: [a, b]}\n");
        let Populated::Target(t) = populate(&l(&[("__address__", "host")]), &c).unwrap() else {
            panic!()
        };
        assert_eq!(t.public, l(&[("instance", "host:80"), ("job", "node")]));
        assert_eq!(t.url, "http://host:80/metrics?module=a&module=b");
        let c = cfg(
            "- job_name: j\n  scheme: https\n  relabel_configs: [{source_labels: [__meta_x], target_label: x}, {target_label: __param_module, replacement: c}]",
        );
        let Populated::Target(t) = populate(&l(&[("__address__", "[::1]"), ("__meta_x", "1")]), &c).unwrap() else {
            panic!()
        };
        assert_eq!(t.url, "https://[::1]:443/metrics?module=c");
        assert_eq!(t.public.get("x"), Some("1"));
        assert_eq!(t.public.get("instance"), Some("[::1]:443"));
        let c =
            cfg("- job_name: j\n  relabel_configs: [{source_labels: [__address__], regex: 'drop.*', action: drop}]");
        assert!(matches!(
            populate(&l(&[("__address__", "drop-me:1")]), &c).unwrap(),
            Populated::Dropped(_)
        ));
    }

    fn target(c: &ScrapeConfig) -> Target {
        match populate(&l(&[("__address__", "h:1")]), c).unwrap() {
            Populated::Target(t) => t,
            Populated::Dropped(_) => panic!("dropped"),
        }
    }

    const BODY: &[u8] = b"# TYPE a counter\na_total{x=\"1\"} 1 1700000000000\nb 2\nc{p=\"1\",q=\"2\",r=\"3\"} 3\n";

    #[test]
    fn limits_fail_the_scrape() {
        let c = cfg("- job_name: j\n  sample_limit: 2");
        let err = process_body(BODY, "text/plain", &target(&c), &c, 5, &mut LoopState::default())
            .err()
            .unwrap();
        assert!(err.0.contains("sample limit exceeded") && err.1 == 3, "{err:?}");
        let c = cfg("- job_name: j\n  label_limit: 5");
        let err = process_body(BODY, "text/plain", &target(&c), &c, 5, &mut LoopState::default())
            .err()
            .unwrap();
        assert!(err.0.contains("label_limit exceeded (metric: c"), "{err:?}");
        // Like Prometheus, the limits apply to __name__ too.
        let c = cfg("- job_name: j\n  label_value_length_limit: 6");
        let err = process_body(BODY, "text/plain", &target(&c), &c, 5, &mut LoopState::default())
            .err()
            .unwrap();
        assert!(
            err.0
                .contains("label_value_length_limit exceeded (metric: a_total, label name: __name__"),
            "{err:?}"
        );
        let c = cfg("- job_name: j\n  label_value_length_limit: 7");
        assert!(process_body(BODY, "text/plain", &target(&c), &c, 5, &mut LoopState::default()).is_ok());
        let c = cfg("- job_name: j\n  label_name_length_limit: 3");
        let err = process_body(BODY, "text/plain", &target(&c), &c, 5, &mut LoopState::default())
            .err()
            .unwrap();
        assert!(err.0.contains("label_name_length_limit"), "{err:?}");
    }

    #[test]
    fn timestamps_and_staleness_tracking() {
        let c = cfg("- job_name: j");
        let mut state = LoopState::default();
        let b = process_body(BODY, "text/plain", &target(&c), &c, 5, &mut state).unwrap();
        let a = b
            .req
            .series
            .iter()
            .find(|s| s.labels.metric_name() == Some("a_total"))
            .unwrap();
        assert_eq!(a.samples[0].t_ms, 1_700_000_000_000, "honor_timestamps by default");
        assert_eq!(
            state.current.len(),
            2,
            "series with explicit timestamps are exempt from staleness"
        );
        assert_eq!((b.scraped, b.post_relabel), (3, 3));
        let c = cfg(
            "- job_name: j\n  honor_timestamps: false\n  metric_relabel_configs: [{source_labels: [__name__], regex: b, action: drop}]",
        );
        let b = process_body(BODY, "text/plain", &target(&c), &c, 5, &mut LoopState::default()).unwrap();
        assert!(b.req.series.iter().all(|s| s.samples[0].t_ms == 5));
        assert_eq!((b.scraped, b.post_relabel), (3, 2));
        // OpenMetrics is chosen by Content-Type: this body has no # EOF, so it fails.
        assert!(
            process_body(
                BODY,
                "application/openmetrics-text; version=1.0.0",
                &target(&c),
                &c,
                5,
                &mut LoopState::default()
            )
            .is_err()
        );
    }

    #[test]
    fn exported_prefix_on_conflict() {
        let t = l(&[("instance", "i"), ("job", "j")]);
        let tl: Vec<&Label> = t.iter().collect();
        let scraped = l(&[("__name__", "m"), ("job", "mine"), ("exported_job", "taken")]);
        let merged = merge_target_labels(&scraped, &tl, false);
        assert_eq!(merged.get("job"), Some("j"));
        assert_eq!(merged.get("exported_job"), Some("taken"));
        assert_eq!(merged.get("exported_exported_job"), Some("mine"));
        let merged = merge_target_labels(&scraped, &tl, true);
        assert_eq!(merged.get("job"), Some("mine"));
        assert_eq!(merged.get("instance"), Some("i"));
    }

    fn open_store(dir: &std::path::Path) -> MetricsStore {
        let opts = sextant_store::StoreOptions::new(dir);
        MetricsStore::open(opts, &mut Registry::default()).unwrap()
    }

    /// Builds and stores one scrape of `body`; returns the append as it was sent.
    async fn scrape(
        store: &MetricsStore,
        t: &Target,
        c: &ScrapeConfig,
        body: &str,
        at: i64,
        state: &mut LoopState,
    ) -> (usize, usize) {
        let pending = build_append(
            Ok((body.as_bytes().to_vec(), "text/plain".into())),
            t,
            c,
            at,
            Duration::from_millis(1),
            state,
        );
        let shape = (pending.req.series.len(), pending.req.samples_by_ref.len());
        let (stored, error) = store_append(store, pending, state).await;
        stored.unwrap();
        assert_eq!(error, None);
        shape
    }

    #[tokio::test]
    async fn a_steady_scrape_appends_by_reference_and_keeps_staleness() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let c =
            cfg("- job_name: j\n  metric_relabel_configs: [{source_labels: [__name__], regex: dropped, action: drop}]");
        let t = target(&c);
        let mut state = LoopState::default();
        let t0 = now_ms() - 60_000;
        let body = "a{x=\"1\"} 1\nb 2\ndropped 3\nb 2\n";
        // First scrape: two new series and the five report series go by label set.
        assert_eq!(scrape(&store, &t, &c, body, t0 + 1_000, &mut state).await, (2 + 5, 0));
        assert_eq!(state.cache.entries.len(), 3, "the dropped line is cached as dropped");
        // Steady: every sample by reference, nothing to parse, relabel or look up.
        assert_eq!(scrape(&store, &t, &c, body, t0 + 2_000, &mut state).await, (0, 3 + 5));
        // `b` goes away: a staleness marker by label set, and its line leaves the cache.
        assert_eq!(
            scrape(&store, &t, &c, "a{x=\"1\"} 4\n", t0 + 3_000, &mut state).await,
            (1, 1 + 5)
        );
        assert_eq!(state.cache.entries.len(), 1);
        let b = Labels::from_pairs([("__name__", "b"), ("instance", "h:1"), ("job", "j")]).unwrap();
        let name_b = sextant_model::Matcher::new(sextant_model::MatchOp::Equal, "__name__", "b").unwrap();
        let stored = store.select(&[name_b], t0, t0 + 10_000).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(*stored[0].labels, b);
        let times: Vec<i64> = stored[0].samples.iter().map(|s| s.t_ms - t0).collect();
        assert_eq!(times, [1_000, 2_000, 3_000], "the repeated line is a duplicate");
        assert!(sextant_model::is_stale_nan(stored[0].samples[2].v));
        // A failed scrape marks what the last one had stale.
        let pending = build_append(Err("refused".into()), &t, &c, t0 + 4_000, Duration::ZERO, &mut state);
        assert_eq!(
            pending.req.series.len(),
            1,
            "a's marker; the report series go by reference"
        );
        assert_eq!(pending.error.as_deref(), Some("refused"));
    }
}
