//! `sextant serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sextant_act::{ActionEngine, AlertInput, SloInput, TierInput, TierState};
use sextant_api::{ApiLimits, ApiMetrics, AppState, ReloadFn, StatusInfo};
use sextant_collect::ScrapeManager;
use sextant_model::time::{format_duration, now_ms};
use sextant_node::NodeCollector;
use sextant_promql::{Engine, EngineOptions};
use sextant_rules::RuleManager;
use sextant_slo::SloEngine;
use sextant_store::{MetricsStore, StoreOptions};

use crate::config::{self, Config};

const DEFAULT_LISTEN: &str = "127.0.0.1:9470";
const DEFAULT_DATA_DIR: &str = "sextant-data";
/// How often retention and compaction of closed blocks run.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(300);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// Arguments of `sextant serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Configuration file (Prometheus-style YAML). Without it, embedded defaults.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory (overrides storage.path).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// HTTP listen address (overrides server.listen).
    #[arg(long)]
    pub listen: Option<String>,
}

pub fn run(args: ServeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Config errors already name file and line; print them plainly.
            eprintln!("sextant: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Loads the config named by the flags, or the embedded defaults.
fn load_config(args: &ServeArgs) -> anyhow::Result<Config> {
    match &args.config {
        Some(path) => config::load(path).map_err(anyhow::Error::msg),
        None => {
            let listen = args.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
            config::parse(&config::embedded_defaults(listen), "embedded defaults").map_err(anyhow::Error::msg)
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    start(args).await?.run(shutdown_signal()).await
}

/// A started server: everything runs but the HTTP listener, which
/// [`Started::run`] serves until shutdown. `sextant demo` drives the handles.
pub struct Started {
    /// Where the API listens.
    pub addr: SocketAddr,
    /// The SLO engine.
    pub slo: SloEngine,
    /// The action engine.
    pub actions: ActionEngine,
    /// The alert router.
    pub alertmanager: sextant_alertmanager::Alertmanager,
    listener: tokio::net::TcpListener,
    app: axum::Router,
    ready: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    scrape: ScrapeManager,
    rules: RuleManager,
    store: MetricsStore,
}

impl Started {
    /// Serves HTTP until `shutdown` completes, then stops everything in order.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        self.ready.store(true, Ordering::Relaxed);
        tracing::info!(addr = %self.addr, "Sextant is ready");
        axum::serve(self.listener, self.app)
            .with_graceful_shutdown(shutdown)
            .await?;
        tracing::info!("shutting down: stopping scrapes, flushing the store");
        self.ready.store(false, Ordering::Relaxed);
        for t in &self.tasks {
            t.abort();
        }
        self.scrape.shutdown().await;
        self.rules.shutdown().await;
        self.slo.shutdown().await;
        self.actions.shutdown().await;
        self.alertmanager.shutdown().await;
        self.store.close().await?;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// Opens the data directory and starts everything the configuration names.
pub async fn start(args: ServeArgs) -> anyhow::Result<Started> {
    let cfg = load_config(&args)?;
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| cfg.storage.path.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let listen = args
        .listen
        .clone()
        .or_else(|| cfg.server.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.into());
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("invalid listen address {listen:?}"))?;

    let mut registry = Registry::default();
    let build_info = Family::<BuildLabels, Gauge>::default();
    build_info
        .get_or_create(&BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
        })
        .set(1);
    registry.register(
        "sextant_build_info",
        "A metric with a constant '1' value labeled by version",
        build_info,
    );
    let mut store_opts = StoreOptions::new(&data_dir);
    store_opts.retention = match cfg.storage.retention {
        Some(r) if r.0.is_zero() => None,
        Some(r) => Some(r.0),
        None => store_opts.retention,
    };
    if let Some(n) = cfg.storage.max_pending_appends {
        store_opts.max_queued_requests = n;
    }
    store_opts.max_head_series = cfg.storage.max_head_series;
    let retention = store_opts.retention;
    let store = MetricsStore::open(store_opts, &mut registry)
        .with_context(|| format!("opening the data directory {}", data_dir.display()))?;
    let scrape = ScrapeManager::new(store.clone(), &mut registry);
    let node = Arc::new(NodeCollector::new(&cfg.node).map_err(anyhow::Error::msg)?);
    let query_log = Arc::new(sextant_api::QueryLog::default());
    query_log
        .set_path(cfg.global.query_log_file.as_deref())
        .with_context(|| format!("opening the query log {:?}", cfg.global.query_log_file))?;
    let engine = Engine::new(engine_options(&cfg));
    let rules = RuleManager::new(engine.clone(), store.clone(), &mut registry);
    let rule_files = config::load_rule_files(&cfg).map_err(anyhow::Error::msg)?;
    let slos = config::load_slo_files(&cfg).map_err(anyhow::Error::msg)?;
    let slo_options = cfg.slo.engine_options().map_err(anyhow::Error::msg)?;
    let slo = SloEngine::start(store.clone(), engine.clone(), slo_options, &mut registry);
    let alerting = config::load_alerting(&cfg).map_err(anyhow::Error::msg)?;
    let am = sextant_alertmanager::Alertmanager::open(
        sextant_alertmanager::Options::new(data_dir.join("alerting"), external_url(&cfg, addr)),
        alerting,
        &mut registry,
    )
    .map_err(anyhow::Error::msg)
    .with_context(|| format!("opening the alerting state in {}", data_dir.display()))?;
    let logs = if cfg.logs.enabled.unwrap_or(true) {
        let mut opts = sextant_logs::LogStoreOptions::new(data_dir.join("logs"));
        let l = &cfg.logs;
        if let Some(r) = l.retention {
            opts.retention = r.0;
        }
        if let Some(p) = l.partition {
            opts.partition = p.0;
        }
        if let Some(b) = l.max_line_size {
            opts.limits.max_line_size = b.0 as usize;
        }
        if let Some(n) = l.max_label_names_per_series {
            opts.limits.max_label_names = n;
        }
        if let Some(n) = l.max_streams {
            opts.limits.max_streams = n;
        }
        if let Some(mb) = l.ingestion_rate_mb {
            opts.limits.ingest_rate_bytes = mb * 1024.0 * 1024.0;
        }
        if let Some(mb) = l.ingestion_burst_size_mb {
            opts.limits.ingest_burst_bytes = mb * 1024.0 * 1024.0;
        }
        if let Some(d) = l.max_index_lag {
            opts.limits.max_index_lag = d.0;
        }
        let (logs, stats) = tokio::task::spawn_blocking(move || sextant_logs::LogStore::open(opts))
            .await
            .context("opening the log store")?
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("opening the log store in {}", data_dir.join("logs").display()))?;
        tracing::info!(
            partitions = stats.partitions,
            replayed_entries = stats.replayed_entries,
            truncated_bytes = stats.wal.truncated_bytes,
            "log store open"
        );
        Some(logs)
    } else {
        None
    };
    let traces = if cfg.traces.enabled.unwrap_or(true) {
        let mut opts = sextant_traces::TraceStoreOptions::new(data_dir.join("traces"));
        let t = &cfg.traces;
        if let Some(r) = t.retention {
            opts.retention = r.0;
        }
        if let Some(b) = t.bucket {
            opts.bucket = b.0;
        }
        let m = &t.span_metrics;
        opts.span_metrics.enabled = m.enabled.unwrap_or(true);
        opts.span_metrics.dimensions = m.dimensions.clone();
        if let Some(b) = &m.histogram_buckets {
            opts.span_metrics.latency_buckets = b.clone();
        }
        if let Some(b) = &m.service_graph_buckets {
            opts.span_metrics.graph_buckets = b.clone();
        }
        let dir = data_dir.join("traces");
        let (traces, stats) = tokio::task::spawn_blocking(move || sextant_traces::TraceStore::open(opts))
            .await
            .context("opening the trace store")?
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("opening the trace store in {}", dir.display()))?;
        tracing::info!(buckets = stats.buckets, spans = stats.spans, "trace store open");
        registry.register_collector(Box::new(sextant_traces::store::StoreCollector(traces.clone())));
        Some(traces)
    } else {
        None
    };
    let actions = ActionEngine::open(
        data_dir.join("actions"),
        &mut registry,
        Some(provided_targets(scrape.clone())),
    )
    .map_err(anyhow::Error::msg)
    .with_context(|| format!("opening the audit log in {}", data_dir.display()))?;
    // Alerts reach the router with what the action engine did about them.
    let sink: sextant_model::AlertSink = {
        let raw = am.sink();
        let actions = actions.clone();
        Arc::new(move |mut alerts: Vec<sextant_model::PostableAlert>| {
            actions.annotate(&mut alerts);
            raw(alerts)
        })
    };
    slo.set_cycle_hook({
        let actions = actions.clone();
        Arc::new(move |t, statuses| actions.on_slo_cycle(t, slo_inputs(statuses)))
    });
    slo.set_alert_sink(
        tier_alert_sink(sink.clone(), &cfg, slo.options().interval, external_url(&cfg, addr)),
        &external_url(&cfg, addr),
    );
    let auth = match &cfg.server.auth {
        Some(a) => a.build().map_err(anyhow::Error::msg)?,
        None => {
            if addr.ip().is_loopback() {
                tracing::info!(
                    "no server.auth: Sextant listens on loopback only; anyone on this machine may silence and acknowledge"
                );
            } else {
                tracing::warn!(%addr, "no server.auth while listening beyond loopback: anyone who reaches this address may silence, acknowledge and reload");
            }
            sextant_api::auth::Auth::default()
        }
    };
    let status = Arc::new(std::sync::RwLock::new(StatusInfo {
        config_yaml: cfg.source.clone(),
        flags: flags(&cfg, retention, &data_dir, &listen, args.config.as_deref()),
        start_time_ms: now_ms(),
        last_config_time_ms: now_ms(),
        reload_success: true,
        cwd: std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
        storage_retention: retention_text(retention),
    }));

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    scrape
        .apply(all_scrape_configs(&cfg))
        .await
        .map_err(anyhow::Error::msg)?;
    actions
        .apply(cfg.workloads.clone(), cfg.actions.clone())
        .await
        .map_err(|e| anyhow::Error::msg(e.join("\n")))?;
    rules.set_alerting(alerting_options(&cfg, addr), Some(sink.clone()));
    rules.set_log_store(logs.clone());
    rules.apply(rule_files, cfg.global.evaluation_interval.0).await;
    slo.apply(slos).await.map_err(|e| anyhow::Error::msg(e.join("\n")))?;

    let reload: Option<ReloadFn> = args.config.clone().map(|path| {
        let (scrape, rules, status, node, query_log, slo, am, sink, actions) = (
            scrape.clone(),
            rules.clone(),
            status.clone(),
            node.clone(),
            query_log.clone(),
            slo.clone(),
            am.clone(),
            sink.clone(),
            actions.clone(),
        );
        let current = Arc::new(std::sync::Mutex::new(cfg.clone()));
        let f: ReloadFn = Arc::new(move || {
            let (path, scrape, rules, status, current, node, query_log, slo, am, sink, actions) = (
                path.clone(),
                scrape.clone(),
                rules.clone(),
                status.clone(),
                current.clone(),
                node.clone(),
                query_log.clone(),
                slo.clone(),
                am.clone(),
                sink.clone(),
                actions.clone(),
            );
            Box::pin(async move {
                let applied = async {
                    let new = config::load(&path)?;
                    let rule_files = config::load_rule_files(&new)?;
                    // Everything is checked before anything is applied, so a bad SLO
                    // spec keeps the old configuration, SLOs included.
                    let slos = config::load_slo_files(&new)?;
                    let alerting = config::load_alerting(&new)?;
                    ActionEngine::check(&new.workloads, &new.actions).map_err(|e| e.join("\n"))?;
                    scrape.apply(all_scrape_configs(&new)).await?;
                    am.apply(alerting)?;
                    // Cannot fail: config::load validated the node section.
                    node.apply(&new.node).map_err(|e| e.to_string())?;
                    query_log
                        .set_path(new.global.query_log_file.as_deref())
                        .map_err(|e| format!("opening the query log: {e}"))?;
                    rules.set_alerting(alerting_options(&new, addr), Some(sink.clone()));
                    rules.apply(rule_files, new.global.evaluation_interval.0).await;
                    slo.apply(slos).await.map_err(|e| e.join("\n"))?;
                    actions
                        .apply(new.workloads.clone(), new.actions.clone())
                        .await
                        .map_err(|e| e.join("\n"))?;
                    Ok::<_, String>(new)
                }
                .await;
                let new = {
                    let mut st = status.write().expect("poisoned");
                    st.reload_success = applied.is_ok();
                    let new = applied?;
                    st.config_yaml = new.source.clone();
                    st.last_config_time_ms = now_ms();
                    new
                };
                let old = std::mem::replace(&mut *current.lock().expect("poisoned"), new.clone());
                if old.storage != new.storage
                    || old.server != new.server
                    || old.slo != new.slo
                    || old.global.evaluation_interval != new.global.evaluation_interval
                {
                    // The engine (query limits, default subquery step) and the store keep
                    // the settings they started with; rule groups take the new interval.
                    tracing::warn!(
                        "storage, server, slo and evaluation_interval settings changed; they take effect at the next restart"
                    );
                }
                tracing::info!(file = %path.display(), "configuration reloaded");
                Ok(())
            })
        });
        f
    });
    let limits = ApiLimits {
        remote_write_max_compressed_bytes: cfg
            .server
            .remote_write_max_compressed_bytes
            .map_or(ApiLimits::default().remote_write_max_compressed_bytes, |b| b.0 as usize),
        remote_write_max_decompressed_bytes: cfg
            .server
            .remote_write_max_decompressed_bytes
            .map_or(ApiLimits::default().remote_write_max_decompressed_bytes, |b| {
                b.0 as usize
            }),
    };
    let api_metrics = ApiMetrics::new(&mut registry);
    let ready = Arc::new(AtomicBool::new(false));
    let state = AppState {
        store: store.clone(),
        scrape: scrape.clone(),
        engine,
        rules: rules.clone(),
        slo: slo.clone(),
        status,
        registry: Arc::new(registry),
        node: node.clone(),
        reload: reload.clone(),
        limits,
        metrics: api_metrics,
        ready: ready.clone(),
        query_log,
        alertmanager: am.clone(),
        auth,
        actions: actions.clone(),
        logs,
        traces: traces.clone(),
    };
    if let Some(t) = traces
        .clone()
        .filter(|_| cfg.traces.span_metrics.enabled.unwrap_or(true))
    {
        let every = cfg
            .traces
            .span_metrics
            .interval
            .map_or(std::time::Duration::from_secs(15), |d| d.0);
        tokio::spawn(write_span_metrics(t, store.clone(), every));
    }

    let retention = tokio::spawn({
        let store = store.clone();
        async move {
            loop {
                if let Err(e) = store.enforce_retention().await {
                    tracing::warn!(error = %e, "retention failed");
                }
                if let Err(e) = store.compact().await {
                    tracing::warn!(error = %e, "compaction failed; the block stays in its raw layout");
                }
                tokio::time::sleep(MAINTENANCE_EVERY).await;
            }
        }
    });
    let sighup = tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            match &reload {
                Some(r) => {
                    if let Err(e) = r().await {
                        tracing::error!(error = %e, "reload failed; keeping the previous configuration");
                    }
                }
                None => tracing::warn!("SIGHUP ignored: running on embedded defaults, no file to reload"),
            }
        }
    });

    // The action engine watches the alerts the router holds.
    let alert_poll = tokio::spawn({
        let (am, actions) = (am.clone(), actions.clone());
        async move {
            loop {
                tokio::time::sleep(ALERT_POLL).await;
                let alerts: Vec<AlertInput> = am
                    .alerts()
                    .into_iter()
                    .map(|a| AlertInput {
                        labels: a
                            .alert
                            .labels
                            .iter()
                            .map(|l| (l.name.clone(), l.value.clone()))
                            .collect(),
                        starts_at_ms: a.alert.starts_at,
                        suppressed: !a.silenced_by.is_empty() || !a.inhibited_by.is_empty(),
                    })
                    .collect();
                actions.on_alerts(now_ms(), &alerts);
            }
        }
    });
    let mut tasks = vec![sighup, retention, alert_poll];
    // OTLP/gRPC on its own port: 127.0.0.1:4317 unless configured ("" turns it
    // off). The default port being taken is a warning; a configured one an error.
    let grpc = match cfg.server.otlp_grpc_listen.as_deref() {
        None => Some(("127.0.0.1:4317".to_owned(), false)),
        Some("") => None,
        Some(a) => Some((a.to_owned(), true)),
    };
    if let Some((grpc_addr, explicit)) = grpc {
        match tokio::net::TcpListener::bind(&grpc_addr).await {
            Ok(l) => {
                tracing::info!(addr = %grpc_addr, "OTLP/gRPC listening");
                let st = state.clone();
                tasks.push(tokio::spawn(async move {
                    if let Err(e) = sextant_api::otlp::serve_grpc(st, l, std::future::pending()).await {
                        tracing::error!(error = %e, "OTLP/gRPC server stopped");
                    }
                }));
            }
            Err(e) if explicit => {
                return Err(anyhow::anyhow!("listening for OTLP/gRPC on {grpc_addr}: {e}"));
            }
            Err(e) => {
                tracing::warn!(addr = %grpc_addr, error = %e, "OTLP/gRPC not started: the default port is taken (set server.otlp_grpc_listen)")
            }
        }
    }
    tracing::info!(%addr, data_dir = %data_dir.display(), "Sextant started");
    Ok(Started {
        addr,
        slo,
        actions,
        alertmanager: am,
        listener,
        app: sextant_api::app(state),
        ready,
        tasks,
        scrape,
        rules,
        store,
    })
}

/// How often the action engine is shown the router's alerts.
const ALERT_POLL: Duration = Duration::from_secs(5);

/// The configured scrape jobs and one per process workload.
fn all_scrape_configs(cfg: &Config) -> Vec<sextant_collect::ScrapeConfig> {
    let mut jobs = cfg.scrape_configs.clone();
    jobs.extend(config::workload_scrape_configs(cfg));
    jobs
}

/// Hands the replicas of process workloads to the scrape manager, in order.
fn provided_targets(scrape: ScrapeManager) -> sextant_act::supervisor::TargetsFn {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Vec<sextant_model::Labels>)>();
    tokio::spawn(async move {
        while let Some((job, targets)) = rx.recv().await {
            scrape.set_provided_targets(&job, targets).await;
        }
    });
    Arc::new(move |job: &str, targets| {
        let labels = targets
            .into_iter()
            .filter_map(|t| sextant_model::Labels::from_pairs(t).ok())
            .collect();
        let _ = tx.send((job.to_owned(), labels));
    })
}

/// What the action engine reads of each SLO after a cycle.
fn slo_inputs(statuses: &std::collections::BTreeMap<String, sextant_slo::status::SloStatus>) -> Vec<SloInput> {
    use sextant_act::audit::{ConditionEvidence, ErrorShare, WindowEvidence};
    use sextant_slo::status::State;
    let state = |s: State| match s {
        State::Ok => TierState::Ok,
        State::Pending => TierState::Pending,
        State::Firing => TierState::Firing,
        State::Unknown => TierState::Unknown,
    };
    statuses
        .values()
        .map(|s| {
            // The period is the last window.
            let alert_windows = &s.windows[..s.windows.len().saturating_sub(1)];
            SloInput {
                id: s.summary.id.clone(),
                evaluated_ms: s
                    .summary
                    .evaluated_at
                    .as_deref()
                    .and_then(|t| sextant_model::time::parse_api_time(t).ok()),
                error: s.summary.error.clone(),
                budget_remaining: s.budget.remaining,
                windows: alert_windows
                    .iter()
                    .map(|w| WindowEvidence {
                        window: w.window.clone(),
                        burn_rate: w.burn_rate,
                        coverage: w.coverage,
                    })
                    .collect(),
                tiers: s
                    .tiers
                    .iter()
                    .map(|t| TierInput {
                        name: t.name.clone(),
                        state: state(t.state),
                        conditions: t
                            .conditions
                            .iter()
                            .map(|c| ConditionEvidence {
                                long_window: c.long_window.clone(),
                                short_window: c.short_window.clone(),
                                threshold: c.burn_rate_threshold,
                                long_burn_rate: c.long_burn_rate,
                                short_burn_rate: c.short_burn_rate,
                                firing: c.state == State::Firing,
                            })
                            .collect(),
                    })
                    .collect(),
                attribution: s
                    .attribution
                    .as_ref()
                    .map(|a| {
                        a.groups
                            .iter()
                            .take(3)
                            .map(|g| ErrorShare {
                                labels: g.labels.clone(),
                                share: g.share,
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// Query settings from the config, Prometheus' defaults otherwise.
fn engine_options(cfg: &Config) -> EngineOptions {
    let d = EngineOptions::default();
    EngineOptions {
        lookback_delta: cfg.server.query_lookback_delta.map_or(d.lookback_delta, |x| x.0),
        max_samples: cfg.server.query_max_samples.unwrap_or(d.max_samples),
        timeout: cfg.server.query_timeout.map_or(d.timeout, |x| x.0),
        default_subquery_step: cfg.global.evaluation_interval.0,
        exact_counter_windows: false,
    }
}

/// The store's effective retention as the status endpoints print it.
fn retention_text(retention: Option<Duration>) -> String {
    retention.map_or_else(|| "forever".into(), format_duration)
}

/// Effective settings under the names of the Prometheus flags they stand for, for
/// `/api/v1/status/flags`.
fn flags(
    cfg: &Config,
    retention: Option<Duration>,
    data_dir: &std::path::Path,
    listen: &str,
    config_file: Option<&std::path::Path>,
) -> std::collections::BTreeMap<String, String> {
    let e = engine_options(cfg);
    [
        (
            "config.file",
            config_file.map(|p| p.display().to_string()).unwrap_or_default(),
        ),
        ("query.lookback-delta", format_duration(e.lookback_delta)),
        ("query.max-samples", e.max_samples.to_string()),
        ("query.timeout", format_duration(e.timeout)),
        ("storage.tsdb.path", data_dir.display().to_string()),
        ("storage.tsdb.retention.time", retention_text(retention)),
        ("web.listen-address", listen.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Waits for SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
}

/// The URL Sextant is reached at: `server.external_url`, else Prometheus' default of
/// `http://<hostname>:<port>`.
pub fn external_url(cfg: &Config, addr: SocketAddr) -> String {
    match &cfg.server.external_url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".into());
            format!("http://{host}:{}", addr.port())
        }
    }
}

/// Alerting rules' settings from the configuration.
fn alerting_options(cfg: &Config, addr: SocketAddr) -> sextant_rules::AlertingOptions {
    let d = sextant_rules::AlertingOptions::default();
    sextant_rules::AlertingOptions {
        resend_delay: cfg.server.rules_alert_resend_delay.map_or(d.resend_delay, |x| x.0),
        for_outage_tolerance: cfg
            .server
            .rules_alert_for_outage_tolerance
            .map_or(d.for_outage_tolerance, |x| x.0),
        for_grace_period: cfg
            .server
            .rules_alert_for_grace_period
            .map_or(d.for_grace_period, |x| x.0),
        external_labels: Arc::new(
            sextant_model::Labels::from_pairs(cfg.global.external_labels.clone()).unwrap_or_default(),
        ),
        external_url: external_url(cfg, addr).into(),
    }
}

/// Turns SLO burn tiers into alerts for the router: annotations expanded as
/// Prometheus expands Sloth's (`{{$labels.sloth_service}}`, ...), external labels
/// added, firing alerts valid for four cycles (as Prometheus' rule alerts are for
/// four resend intervals), resolved ones ending when the tier stopped firing.
fn tier_alert_sink(
    sink: sextant_model::AlertSink,
    cfg: &Config,
    cycle: Duration,
    external_url: String,
) -> sextant_slo::TierAlertSink {
    use sextant_rules::templates::{AlertTemplate, TemplateData, prometheus_funcs};
    let funcs = prometheus_funcs(None, &external_url);
    let external_labels =
        Arc::new(sextant_model::Labels::from_pairs(cfg.global.external_labels.clone()).unwrap_or_default());
    let validity_ms = 4 * cycle.as_millis() as i64;
    let external_url: Arc<str> = external_url.into();
    Arc::new(move |alerts: Vec<sextant_slo::TierAlert>| {
        let out = alerts
            .into_iter()
            .map(|a| {
                let mut labels = sextant_model::Labels::from_pairs(a.labels.clone())
                    .unwrap_or_default()
                    .to_builder();
                for l in external_labels.iter() {
                    if labels.get(&l.name).is_none() {
                        labels.set(&l.name, &l.value);
                    }
                }
                let labels = labels.build();
                let data = TemplateData {
                    labels: labels.clone(),
                    external_labels: external_labels.clone(),
                    external_url: external_url.clone(),
                    value: a.value,
                };
                let name = labels.get("alertname").unwrap_or_default().to_owned();
                let annotations = a
                    .annotations
                    .iter()
                    .map(|(k, v)| {
                        let text = if v.contains("{{") {
                            match AlertTemplate::parse(&name, v, &funcs) {
                                Ok(t) => t.expand(&data),
                                Err(e) => format!("<error expanding template: {e}>"),
                            }
                        } else {
                            v.clone()
                        };
                        (k.clone(), text)
                    })
                    .collect();
                sextant_model::PostableAlert {
                    generator_url: a.annotations.get("slo_url").cloned().unwrap_or_default(),
                    labels,
                    annotations,
                    starts_at_ms: Some(a.since_ms),
                    ends_at_ms: Some(if a.firing { a.at_ms + validity_ms } else { a.at_ms }),
                }
            })
            .collect();
        sink(out);
    })
}

/// Writes the span metrics to the metrics store every `every`, as Tempo's
/// metrics-generator remote-writes them.
async fn write_span_metrics(traces: sextant_traces::TraceStore, store: MetricsStore, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let snapshot = traces.span_metrics().snapshot();
        if snapshot.is_empty() {
            continue;
        }
        let t_ms = now_ms();
        let req = sextant_store::AppendRequest {
            series: snapshot
                .into_iter()
                .map(|(labels, v)| sextant_store::SeriesSamples {
                    labels,
                    samples: vec![sextant_model::Sample { t_ms, v }],
                })
                .collect(),
            by_ref: Vec::new(),
            samples_by_ref: Vec::new(),
            metadata: Vec::new(),
        };
        if let Err(e) = store.append(req).await {
            tracing::warn!(error = %e, "writing span metrics failed");
        }
    }
}
