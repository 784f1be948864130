//! `sextant alertmanager`: drop-in mode. Takes Alertmanager 0.25's command-line
//! flags and serves its API alone, so an Alertmanager deployment can change its
//! binary and keep its configuration, its clients and its Prometheus servers.
//! Cluster flags are accepted and reported: Sextant runs as one instance, whose
//! state is durable instead of gossiped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use sextant_model::time::PromDuration;

/// Alertmanager 0.25's flags.
#[derive(clap::Parser, Debug)]
#[command(
    name = "sextant alertmanager",
    about = "Alertmanager-compatible alert routing (drop-in mode)"
)]
pub struct Args {
    /// Alertmanager configuration file.
    #[arg(long = "config.file", default_value = "alertmanager.yml")]
    config_file: PathBuf,
    /// Base path for data storage.
    #[arg(long = "storage.path", default_value = "data/")]
    storage_path: PathBuf,
    /// How long to keep data (silences, notification log).
    #[arg(long = "data.retention", default_value = "120h")]
    data_retention: PromDuration,
    /// Interval between garbage collection and snapshotting.
    #[arg(long = "data.maintenance-interval", default_value = "15m")]
    maintenance_interval: PromDuration,
    /// Interval between alert garbage collection.
    #[arg(long = "alerts.gc-interval", default_value = "30m")]
    alerts_gc_interval: PromDuration,
    /// Address to listen on. Alertmanager's default is `:9093` (every interface);
    /// Sextant's is loopback unless told otherwise.
    #[arg(long = "web.listen-address", default_value = "127.0.0.1:9093")]
    listen: String,
    /// The URL Alertmanager is reached at (links in notifications).
    #[arg(long = "web.external-url")]
    external_url: Option<String>,
    /// Prefix of every route; defaults to the external URL's path.
    #[arg(long = "web.route-prefix")]
    route_prefix: Option<String>,
    /// Accepted for compatibility (Sextant does not limit request time here).
    #[arg(long = "web.timeout", default_value = "0s")]
    web_timeout: PromDuration,
    /// Accepted for compatibility.
    #[arg(long = "web.get-concurrency", default_value = "0")]
    web_get_concurrency: u64,
    /// Not supported: TLS and basic auth of the web server (use `sextant serve`
    /// with `server.auth`).
    #[arg(long = "web.config.file")]
    web_config_file: Option<PathBuf>,
    /// Log level.
    #[arg(long = "log.level", default_value = "info")]
    log_level: String,
    /// Log format (logfmt or json); Sextant logs in its own format.
    #[arg(long = "log.format", default_value = "logfmt")]
    log_format: String,
}

/// Runs drop-in mode with the process arguments after `alertmanager`.
pub fn run(argv: Vec<String>) -> ExitCode {
    // Cluster flags: accepted and reported, not acted on.
    let mut cluster = Vec::new();
    let mut kept = vec!["sextant alertmanager".to_owned()];
    let mut it = argv.into_iter().peekable();
    while let Some(a) = it.next() {
        if a.starts_with("--cluster.") {
            if !a.contains('=')
                && it.peek().is_some_and(|n| !n.starts_with("--"))
                && !matches!(
                    a.as_str(),
                    "--cluster.allow-insecure-public-advertise-address-discovery"
                )
            {
                let v = it.next().unwrap_or_default();
                cluster.push(format!("{a}={v}"));
            } else {
                cluster.push(a);
            }
        } else {
            kept.push(a);
        }
    }
    let args = match <Args as clap::Parser>::try_parse_from(kept) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    crate::init_tracing(&args.log_level);
    if !cluster.is_empty() {
        tracing::warn!(flags = ?cluster, "cluster flags are not supported: Sextant runs as one instance, its state durable on disk instead of gossiped between peers");
    }
    if args.web_config_file.is_some() {
        eprintln!(
            "sextant alertmanager: --web.config.file is not supported; run `sextant serve` with server.auth for access control"
        );
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sextant alertmanager: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sextant alertmanager: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &std::path::Path) -> Result<sextant_alertmanager::config::Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    sextant_alertmanager::config::parse(&text, path)
}

async fn serve(args: Args) -> Result<(), String> {
    let listen = if args.listen.starts_with(':') {
        format!("0.0.0.0{}", args.listen)
    } else {
        args.listen.clone()
    };
    let addr: SocketAddr = listen
        .parse()
        .map_err(|e| format!("invalid --web.listen-address {:?}: {e}", args.listen))?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "listening beyond loopback without access control: anyone who reaches this address may silence alerts");
    }
    let external_url = args
        .external_url
        .clone()
        .unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "localhost".into());
            format!("http://{host}:{}", addr.port())
        })
        .trim_end_matches('/')
        .to_owned();
    let prefix = args.route_prefix.clone().unwrap_or_else(|| {
        external_url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
            .unwrap_or_default()
    });
    let config = load(&args.config_file)?;
    let mut registry = Registry::default();
    let mut opts = sextant_alertmanager::Options::new(args.storage_path.clone(), external_url);
    opts.retention = args.data_retention.0;
    opts.maintenance_interval = args.maintenance_interval.0.max(Duration::from_secs(1));
    opts.alert_gc_interval = args.alerts_gc_interval.0.max(Duration::from_secs(1));
    let am = sextant_alertmanager::Alertmanager::open(opts, config, &mut registry)?;
    let reload: sextant_api::ReloadFn = {
        let (am, path) = (am.clone(), args.config_file.clone());
        Arc::new(move || {
            let (am, path) = (am.clone(), path.clone());
            Box::pin(async move {
                let c = load(&path)?;
                am.apply(c)?;
                tracing::info!(file = %path.display(), "configuration reloaded");
                Ok(())
            })
        })
    };
    let app = sextant_api::alertmanager_app(
        am.clone(),
        sextant_api::auth::Auth::default(),
        &prefix,
        Arc::new(registry),
        Some(reload.clone()),
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("listening on {addr}: {e}"))?;
    let hup = tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            if let Err(e) = reload().await {
                tracing::error!(error = %e, "reload failed; keeping the previous configuration");
            }
        }
    });
    tracing::info!(%addr, prefix = %prefix, "Alertmanager-compatible API ready");
    axum::serve(listener, app)
        .with_graceful_shutdown(crate::serve::shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    hup.abort();
    am.shutdown().await;
    Ok(())
}
