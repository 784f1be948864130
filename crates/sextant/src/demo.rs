//! `sextant demo`: the whole product on one machine, narrated. It starts Sextant
//! on a generated configuration, a small HTTP service (`sextant demo-service`)
//! under the supervisor with two replicas behind the proxy, a load generator, an
//! availability and a latency SLO with shortened windows, an alert route to a
//! local webhook receiver, and a scale policy; then plays an incident: load rises
//! past what two replicas serve, the page tier fires, the policy scales the service
//! up, the burn falls under 1×, the alert resolves, load drops, and the service
//! scales back down. Every step is printed as it happens, then a summary.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use sextant_act::{Decision, Filter, Status};
use sextant_slo::status::State;
use tokio::sync::mpsc;

use crate::serve::{ServeArgs, Started};

/// Arguments of `sextant demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// HTTP listen address of Sextant's API.
    #[arg(long, default_value = "127.0.0.1:9470")]
    listen: String,
    /// Data directory (default: a new temporary one, removed afterwards).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep everything running after the scenario, until Ctrl-C.
    #[arg(long)]
    keep: bool,
    /// Compress time further (1s slices, 20s/4s windows): about a minute and a half.
    #[arg(long)]
    fast: bool,
    /// Also write the run's timeline as JSON to this file.
    #[arg(long)]
    summary_json: Option<PathBuf>,
}

/// Time scale of the scenario.
struct Timing {
    slice: &'static str,
    interval: &'static str,
    long: &'static str,
    short: &'static str,
    scrape: &'static str,
    warmup: Duration,
    after: &'static str,
    cooldown: &'static str,
    stabilization: &'static str,
}

const NORMAL: Timing = Timing {
    slice: "5s",
    interval: "2s",
    long: "1m",
    short: "10s",
    scrape: "2s",
    warmup: Duration::from_secs(35),
    after: "20s",
    cooldown: "15s",
    stabilization: "30s",
};

const FAST: Timing = Timing {
    slice: "1s",
    interval: "1s",
    long: "20s",
    short: "4s",
    scrape: "1s",
    warmup: Duration::from_secs(12),
    after: "8s",
    cooldown: "5s",
    stabilization: "10s",
};

/// Requests per second one replica serves.
const CAPACITY: f64 = 25.0;
const NORMAL_RPS: u64 = 30;
const SURGE_RPS: u64 = 80;
const PAGE_BURN: f64 = 10.0;

/// What happened when, in seconds since the start; the test and the benchmark
/// read it.
#[derive(Debug, Default, Serialize)]
pub struct Timeline {
    /// Load rose.
    pub surge: Option<f64>,
    /// First SLO cycle whose short page window burned at or over the threshold.
    pub first_over_threshold: Option<f64>,
    /// The page tier fired.
    pub page_fired: Option<f64>,
    /// The firing notification reached the webhook.
    pub page_notified: Option<f64>,
    /// The scale-up was decided.
    pub scale_decided: Option<f64>,
    /// The scale-up took effect (its new replicas ready).
    pub scale_effective: Option<f64>,
    /// Replicas after the scale-up.
    pub scaled_to: Option<u32>,
    /// The short page window burned under 1× again.
    pub burn_below_1: Option<f64>,
    /// The page tier stopped firing.
    pub resolved: Option<f64>,
    /// The resolved notification reached the webhook.
    pub resolved_notified: Option<f64>,
    /// Load went back to normal.
    pub load_normal: Option<f64>,
    /// Scale-downs: time, from, to.
    pub scale_downs: Vec<(f64, u32, u32)>,
    /// Scale-downs decided between the scale-up and the return of normal load.
    pub scale_downs_during_incident: usize,
    /// Notifications: time, status, alert names.
    pub notifications: Vec<(f64, String, String)>,
    /// The `sextant_actions` annotation of the first notification that had one.
    pub action_annotation: Option<String>,
    /// Seconds from the first slice over the threshold to the scale taking effect.
    pub detect_to_effect: Option<f64>,
    /// Seconds from the scale taking effect to the burn under 1×.
    pub effect_to_recovery: Option<f64>,
    /// Whole run.
    pub total: f64,
}

fn slos_yaml(t: &Timing) -> String {
    format!(
        r#"version: prometheus/v1
service: demo
labels: {{team: demo}}
slos:
  - name: availability
    objective: 99
    description: Requests through the proxy that do not fail.
    sli:
      events:
        error_query: sum(rate(demo_http_requests_total{{code=~"5.."}}[{{{{.window}}}}]))
        total_query: sum(rate(demo_http_requests_total[{{{{.window}}}}]))
    alerting:
      name: DemoAvailability
      annotations: {{summary: "demo is failing requests"}}
    sextant:
      coverage_floor: 0.5
      tiers:
        - name: page
          windows: [{{long: {long}, short: {short}, burn_rate: {PAGE_BURN}}}]
  - name: latency
    objective: 95
    description: Requests served within 100 ms.
    sli:
      events:
        error_query: (sum(rate(demo_http_request_duration_seconds_count[{{{{.window}}}}])) - sum(rate(demo_http_request_duration_seconds_bucket{{le="0.1"}}[{{{{.window}}}}])))
        total_query: sum(rate(demo_http_request_duration_seconds_count[{{{{.window}}}}]))
    alerting:
      name: DemoLatency
      annotations: {{summary: "demo is slow"}}
    sextant:
      coverage_floor: 0.5
      tiers:
        - name: page
          windows: [{{long: {long}, short: {short}, burn_rate: {PAGE_BURN}}}]
"#,
        long = t.long,
        short = t.short,
    )
}

fn config_yaml(t: &Timing, exe: &str, proxy: SocketAddr, sink: SocketAddr) -> String {
    format!(
        r#"# Generated by `sextant demo`.
global: {{scrape_interval: {scrape}, scrape_timeout: 1s, evaluation_interval: {interval}}}
slo: {{slice: {slice}, interval: {interval}, settle: {interval}}}
slo_files: [slos.yml]
workloads:
  - name: demo
    slos: [demo-availability, demo-latency]
    process:
      command: [{exe:?}, demo-service, --port, "{{port}}", --capacity, "{CAPACITY}"]
      replicas: 2
      health: {{path: /healthz, interval: 1s}}
      stop: {{drain: 2s, grace: 5s}}
      rollout: {{pause: {interval}}}
      proxy: {{listen: "{proxy}"}}
actions:
  policies:
    - name: scale-demo
      trigger: {{slo: demo-availability, tier: page}}
      workload: demo
      action:
        scale:
          min: 2
          max: 6
          step: 2
          cooldown: {cooldown}
          stabilization: {stabilization}
          scale_down: {{after: {after}, step: 1}}
alerting:
  route:
    receiver: demo-webhook
    group_by: [alertname]
    group_wait: 1s
    group_interval: 2s
    repeat_interval: 1h
  receivers:
    - name: demo-webhook
      webhook_configs: [{{url: "http://{sink}/hook", send_resolved: true}}]
"#,
        scrape = t.scrape,
        interval = t.interval,
        slice = t.slice,
        cooldown = t.cooldown,
        stabilization = t.stabilization,
        after = t.after,
    )
}

/// The load generator's rate and counts.
#[derive(Default)]
struct Load {
    rate: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
}

async fn generate(load: Arc<Load>, url: String) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .expect("client");
    let tick = Duration::from_millis(20);
    let mut owed = 0.0;
    let mut next = tokio::time::Instant::now();
    loop {
        next += tick;
        tokio::time::sleep_until(next).await;
        owed += load.rate.load(Ordering::Relaxed) as f64 * tick.as_secs_f64();
        while owed >= 1.0 {
            owed -= 1.0;
            let (client, url, load) = (client.clone(), url.clone(), load.clone());
            tokio::spawn(async move {
                match client.get(&url).send().await {
                    Ok(r) if r.status().is_success() => load.ok.fetch_add(1, Ordering::Relaxed),
                    _ => load.failed.fetch_add(1, Ordering::Relaxed),
                };
            });
        }
    }
}

/// A notification as the webhook receiver got it.
struct Notification {
    status: String,
    alerts: String,
    annotation: Option<String>,
}

async fn webhook_sink(tx: mpsc::UnboundedSender<Notification>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                    let alerts = v["alerts"].as_array().cloned().unwrap_or_default();
                    let names: BTreeSet<String> = alerts
                        .iter()
                        .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_owned))
                        .collect();
                    let annotation = alerts
                        .iter()
                        .find_map(|a| a["annotations"]["sextant_actions"].as_str().map(str::to_owned));
                    let _ = tx.send(Notification {
                        status: v["status"].as_str().unwrap_or_default().to_owned(),
                        alerts: names.into_iter().collect::<Vec<_>>().join(","),
                        annotation,
                    });
                }
                "ok"
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sextant demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(demo(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sextant demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

#[allow(clippy::print_stdout)] // the narration
async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let timing = if args.fast { &FAST } else { &NORMAL };
    let temp = match &args.data_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir()?),
    };
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| temp.as_ref().expect("set").path().to_owned());
    std::fs::create_dir_all(&dir)?;
    let exe = std::env::current_exe()?;
    let (notify_tx, mut notify_rx) = mpsc::unbounded_channel();
    let sink = webhook_sink(notify_tx).await?;
    let proxy = free_addr()?;
    std::fs::write(dir.join("slos.yml"), slos_yaml(timing))?;
    let config = dir.join("sextant.yml");
    std::fs::write(&config, config_yaml(timing, &exe.display().to_string(), proxy, sink))?;

    println!("Sextant demo: an incident on one machine, narrated.");
    println!("  configuration  {}", config.display());
    let started: Started = crate::serve::start(ServeArgs {
        config: Some(config.clone()),
        data_dir: Some(dir.join("data")),
        listen: Some(args.listen.clone()),
    })
    .await?;
    let api = format!("http://{}", started.addr);
    println!("  Sextant API    {api}  (try {api}/api/sextant/v1/slos, /api/sextant/v1/actions, /api/v2/alerts)");
    println!(
        "  service        http://{proxy}/  (2 replicas of `sextant demo-service` behind the proxy, {CAPACITY} requests/s each)"
    );
    println!("  alerts go to   http://{sink}/hook (a webhook receiver inside the demo)");
    println!();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let slo = started.slo.clone();
    let actions = started.actions.clone();
    let server = tokio::spawn(started.run(async move {
        let _ = stop_rx.await;
    }));
    let load = Arc::new(Load::default());
    let generator = tokio::spawn(generate(load.clone(), format!("http://{proxy}/")));

    let t0 = Instant::now();
    let t0_ms = sextant_model::time::now_ms();
    let at = |t0: Instant| t0.elapsed().as_secs_f64();
    let since = |ms: i64| (ms - t0_ms) as f64 / 1000.0;
    let mut tl = Timeline::default();
    let mut seen_records: BTreeSet<String> = BTreeSet::new();
    let mut last_line = Instant::now() - Duration::from_secs(10);
    let (mut last_ok, mut last_failed) = (0u64, 0u64);
    let mut stage = 0;
    let deadline = Duration::from_secs(if args.fast { 240 } else { 420 });
    let line_every = if args.fast {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(4)
    };
    let result: anyhow::Result<()> = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if t0.elapsed() > deadline {
            break Err(anyhow::anyhow!(
                "the scenario did not finish within {}s",
                deadline.as_secs()
            ));
        }
        let now = at(t0);
        let wl = actions.workload("demo");
        let replicas = wl.as_ref().and_then(|w| w.replicas).unwrap_or(0);
        let ready = wl.as_ref().and_then(|w| w.process.as_ref()).map_or(0, |p| p.ready);
        let status = slo.statuses().get("demo-availability").cloned();
        let tier = status
            .as_ref()
            .and_then(|s| s.tiers.iter().find(|t| t.name == "page").cloned());
        let cond = tier.as_ref().and_then(|t| t.conditions.first().cloned());
        let short = cond.as_ref().and_then(|c| c.short_burn_rate);
        let long = cond.as_ref().and_then(|c| c.long_burn_rate);
        let firing = tier.as_ref().is_some_and(|t| t.state == State::Firing);

        if stage >= 1 {
            if tl.first_over_threshold.is_none() && short.is_some_and(|b| b >= PAGE_BURN) {
                // The cycle's own time: the policy decided within that cycle.
                let evaluated = status
                    .as_ref()
                    .and_then(|s| s.summary.evaluated_at.as_deref())
                    .and_then(|e| sextant_model::time::parse_api_time(e).ok());
                tl.first_over_threshold = Some(evaluated.map_or(now, since));
            }
            if tl.page_fired.is_none() && firing {
                tl.page_fired = Some(now);
                println!(
                    "[{now:>5.0}s] page tier of demo-availability fires (burn {} {:.1}×, {} {:.1}×)",
                    timing.long,
                    long.unwrap_or(0.0),
                    timing.short,
                    short.unwrap_or(0.0)
                );
            }
            if tl.scale_effective.is_some() && tl.burn_below_1.is_none() && short.is_some_and(|b| b < 1.0) {
                tl.burn_below_1 = Some(now);
                println!(
                    "[{now:>5.0}s] burn back under 1× ({} window {:.2}×)",
                    timing.short,
                    short.unwrap_or(0.0)
                );
            }
            if tl.page_fired.is_some() && tl.resolved.is_none() && !firing {
                tl.resolved = Some(now);
                println!("[{now:>5.0}s] page tier resolved");
            }
        }
        // New audit records, as they happen.
        let mut records = actions.actions(&Filter {
            limit: Some(50),
            ..Default::default()
        });
        records.reverse();
        for r in records {
            let done = r.status != Status::Running;
            if seen_records.contains(&r.id) || !done {
                continue;
            }
            seen_records.insert(r.id.clone());
            if r.decision != Decision::Act || r.policy != "scale-demo" {
                continue;
            }
            let t = since(r.time_ms);
            let finished = r.finished_ms.map(since);
            if let Some(sextant_act::ActionSpec::Scale { from, to }) = r.action {
                if to > from && tl.scale_decided.is_none() {
                    tl.scale_decided = Some(t);
                    tl.scale_effective = finished;
                    tl.scaled_to = Some(to);
                } else if to < from {
                    tl.scale_downs.push((t, from, to));
                    if tl.load_normal.is_none() {
                        tl.scale_downs_during_incident += 1;
                    }
                }
            }
            println!("[{:>5.0}s]   → {} ({})", t, r.sentence(), r.detail);
        }
        while let Ok(n) = notify_rx.try_recv() {
            println!(
                "[{now:>5.0}s]   ✉ webhook got [{}] {}",
                n.status.to_uppercase(),
                n.alerts
            );
            if let Some(a) = &n.annotation {
                println!("           sextant_actions: {a}");
                tl.action_annotation.get_or_insert_with(|| a.clone());
            }
            if n.alerts.contains("DemoAvailability") {
                if n.status == "firing" && tl.page_notified.is_none() {
                    tl.page_notified = Some(now);
                }
                if n.status == "resolved" && tl.resolved_notified.is_none() {
                    tl.resolved_notified = Some(now);
                }
            }
            tl.notifications.push((now, n.status, n.alerts));
        }
        if last_line.elapsed() >= line_every {
            let (ok, failed) = (load.ok.load(Ordering::Relaxed), load.failed.load(Ordering::Relaxed));
            let secs = last_line.elapsed().as_secs_f64().max(0.001);
            let (dok, dfailed) = ((ok - last_ok) as f64 / secs, (failed - last_failed) as f64 / secs);
            (last_ok, last_failed) = (ok, failed);
            last_line = Instant::now();
            let rate = |b: Option<f64>| b.map_or_else(|| "  n/a".to_owned(), |b| format!("{b:5.1}×"));
            if stage >= 1 || ready >= 2 {
                println!(
                    "[{now:>5.0}s] load {:>3}/s  ok {dok:>5.1}/s  failed {dfailed:>5.1}/s · burn {} {}  {} {} · page {:<7} · replicas {replicas} ({ready} ready)",
                    load.rate.load(Ordering::Relaxed),
                    timing.short,
                    rate(short),
                    timing.long,
                    rate(long),
                    tier.as_ref()
                        .map_or("n/a".to_owned(), |t| format!("{:?}", t.state).to_lowercase()),
                );
            }
        }
        match stage {
            0 if ready >= 2 => {
                load.rate.store(NORMAL_RPS, Ordering::Relaxed);
                println!(
                    "[{now:>5.0}s] 2 replicas ready; load {NORMAL_RPS} requests/s (they serve {})",
                    2.0 * CAPACITY
                );
                stage = 1;
            }
            1 if at(t0) >= timing.warmup.as_secs_f64() && tier.as_ref().is_some_and(|t| t.state != State::Unknown) => {
                load.rate.store(SURGE_RPS, Ordering::Relaxed);
                tl.surge = Some(now);
                println!("[{now:>5.0}s] load rises to {SURGE_RPS} requests/s: more than 2 replicas serve");
                stage = 2;
            }
            2 if tl.resolved_notified.is_some() && tl.burn_below_1.is_some() => {
                load.rate.store(NORMAL_RPS, Ordering::Relaxed);
                tl.load_normal = Some(now);
                println!("[{now:>5.0}s] the incident is over; load back to {NORMAL_RPS} requests/s");
                stage = 3;
            }
            3 if replicas == 2 && !tl.scale_downs.is_empty() => {
                println!("[{now:>5.0}s] back to 2 replicas");
                break Ok(());
            }
            _ => {}
        }
    };
    tl.total = at(t0);
    tl.detect_to_effect = tl.first_over_threshold.zip(tl.scale_effective).map(|(a, b)| b - a);
    tl.effect_to_recovery = tl.scale_effective.zip(tl.burn_below_1).map(|(a, b)| b - a);
    if let Some(p) = &args.summary_json {
        std::fs::write(p, serde_json::to_vec_pretty(&tl)?)?;
    }
    print_summary(&tl, &api);
    if result.is_ok() && args.keep {
        println!(
            "\nStill running (--keep): the API at {api}, the service at http://{proxy}/. Ctrl-C stops everything."
        );
        crate::serve::shutdown_signal().await;
    }
    generator.abort();
    let _ = stop_tx.send(());
    server.await??;
    drop(temp);
    result
}

#[allow(clippy::print_stdout)] // the narration
fn print_summary(tl: &Timeline, api: &str) {
    let t = |x: Option<f64>| x.map_or_else(|| "   -".to_owned(), |x| format!("{x:>4.0}s"));
    println!("\nSummary ({:.0}s):", tl.total);
    println!(
        "  {}  load rose from {NORMAL_RPS} to {SURGE_RPS} requests/s",
        t(tl.surge)
    );
    println!(
        "  {}  first SLO cycle over the page threshold ({PAGE_BURN}×)",
        t(tl.first_over_threshold)
    );
    println!(
        "  {}  page tier fired; notification at {}",
        t(tl.page_fired),
        t(tl.page_notified).trim()
    );
    println!(
        "  {}  scaled to {} replicas; in effect at {} ({} after the first cycle over the threshold)",
        t(tl.scale_decided),
        tl.scaled_to.map_or("?".into(), |n| n.to_string()),
        t(tl.scale_effective).trim(),
        tl.detect_to_effect.map_or("-".into(), |d| format!("{d:.1}s"))
    );
    println!(
        "  {}  burn under 1× ({} after the scale took effect)",
        t(tl.burn_below_1),
        tl.effect_to_recovery.map_or("-".into(), |d| format!("{d:.1}s"))
    );
    println!(
        "  {}  resolved; notification at {}",
        t(tl.resolved),
        t(tl.resolved_notified).trim()
    );
    println!("  {}  load back to normal", t(tl.load_normal));
    for (at, from, to) in &tl.scale_downs {
        println!("  {at:>4.0}s  scaled down from {from} to {to}");
    }
    let firing = tl
        .notifications
        .iter()
        .filter(|n| n.1 == "firing" && n.2.contains("DemoAvailability"))
        .count();
    println!(
        "  {} firing and {} resolved notification(s) for DemoAvailability; {} scale-down(s) during the incident",
        firing,
        tl.notifications
            .iter()
            .filter(|n| n.1 == "resolved" && n.2.contains("DemoAvailability"))
            .count(),
        tl.scale_downs_during_incident
    );
    println!("  the audit log: {api}/api/sextant/v1/actions");
}
