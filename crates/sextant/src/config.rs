//! The configuration file: one YAML document whose sections reuse Prometheus' formats
//! verbatim (`global`, `scrape_configs`, `rule_files`) plus Sextant's own (`node`,
//! `storage`, `server`).
//! Unknown keys are errors; every error names the file and line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::collections::BTreeMap;

use serde::Deserialize;
use sextant_collect::config::ByteSize;
use sextant_collect::yaml;
use sextant_collect::{ScrapeConfig, ScrapeDefaults, resolve_scrape_configs};
use sextant_model::is_valid_label_name;
use sextant_model::time::{PromDuration, format_duration};

/// Scrape jobs for the replicas of process workloads (job = workload name; the
/// targets come from the supervisor).
pub fn workload_scrape_configs(config: &Config) -> Vec<ScrapeConfig> {
    let mut jobs: Vec<ScrapeConfig> = config
        .workloads
        .iter()
        .filter_map(|w| {
            let p = w.process.as_ref().filter(|p| p.metrics.enabled)?;
            let mut yaml = format!("job_name: {:?}\nmetrics_path: {:?}\n", w.name, p.metrics.path);
            if let Some(i) = p.metrics.interval {
                yaml.push_str(&format!("scrape_interval: {}\n", format_duration(i.0)));
            }
            serde_yaml::from_str(&yaml).ok()
        })
        .collect();
    let defaults = ScrapeDefaults {
        interval: config.global.scrape_interval.0,
        timeout: config.global.scrape_timeout.0,
    };
    // Validated with the rest of the config: names are unique, intervals positive.
    if resolve_scrape_configs(&mut jobs, defaults).is_err() {
        return Vec::new();
    }
    jobs
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Defaults shared by scrape jobs (Prometheus' `global`).
    #[serde(default, deserialize_with = "yaml::null_as_default")]
    pub global: GlobalConfig,
    /// Scrape jobs (Prometheus' `scrape_configs`).
    #[serde(default, deserialize_with = "scrape_configs")]
    pub scrape_configs: Vec<ScrapeConfig>,
    /// Prometheus rule files (globs), relative to the config file's directory.
    #[serde(default, deserialize_with = "rule_files")]
    pub rule_files: Vec<String>,
    /// SLO spec files (globs: Sloth prometheus/v1, OpenSLO), relative to the config
    /// file's directory.
    #[serde(default, deserialize_with = "rule_files")]
    pub slo_files: Vec<String>,
    /// The SLO engine.
    #[serde(default, deserialize_with = "yaml::null_as_default")]
    pub slo: SloConfig,
    /// The built-in node collector (node_exporter's flags).
    #[serde(default, deserialize_with = "yaml::null_as_default")]
    pub node: sextant_node::NodeConfig,
    /// Where and how long data is kept.
    #[serde(default)]
    pub storage: StorageConfig,
    /// The log store (ours).
    #[serde(default, deserialize_with = "yaml::null_as_default")]
    pub logs: LogsConfig,
    /// The trace store (ours).
    #[serde(default, deserialize_with = "yaml::null_as_default")]
    pub traces: TracesConfig,
    /// The HTTP server.
    #[serde(default)]
    pub server: ServerConfig,
    /// Alert routing: Alertmanager's configuration, inline or as
    /// `{config_file: alertmanager.yml}` (read by [`load_alerting`]).
    #[serde(default)]
    pub alerting: Option<serde_yaml::Value>,
    /// Workloads Sextant manages (supervised processes, Kubernetes, webhook, exec).
    #[serde(default, deserialize_with = "yaml::null_as_default")]
    pub workloads: Vec<sextant_act::WorkloadConfig>,
    /// Action policies and their guardrails.
    #[serde(default, deserialize_with = "yaml::null_as_default")]
    pub actions: sextant_act::ActionsConfig,
    /// The document this was read from (for `/api/v1/status/config`).
    #[serde(skip)]
    pub source: String,
    /// The file it was read from (for errors).
    #[serde(skip)]
    pub path: PathBuf,
    /// The directory relative paths resolve against.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

fn scrape_configs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ScrapeConfig>, D::Error> {
    yaml::non_null_entries(d, "empty or null scrape config section")
}

/// A `~` entry is the empty path, which Prometheus refuses as a rule file.
fn rule_files<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let entries: Option<Vec<Option<String>>> = Option::deserialize(d)?;
    Ok(entries
        .unwrap_or_default()
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect())
}

/// Prometheus' `global` section, with its defaults resolved as Prometheus 2.42 resolves
/// them (see [`RawGlobal`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawGlobal")]
pub struct GlobalConfig {
    /// Default scrape interval; 1m as in Prometheus.
    pub scrape_interval: PromDuration,
    /// Default scrape timeout: the smaller of 10s and the interval unless set.
    pub scrape_timeout: PromDuration,
    /// Default rule-group interval, also the step of subqueries written without one;
    /// 1m as in Prometheus.
    pub evaluation_interval: PromDuration,
    /// Labels that identify this server to others. Prometheus adds them to alerts,
    /// federation and remote storage, none of which Sextant sends yet; the alerting
    /// engine will read them (alert labels, `$externalLabels` in templates).
    #[allow(dead_code)]
    pub external_labels: BTreeMap<String, String>,
    /// Where Prometheus logs every query; Sextant appends one JSON line per query.
    pub query_log_file: Option<PathBuf>,
}

/// `global` as written. A duration of `0s` or `~` is unset.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlobal {
    scrape_interval: Option<PromDuration>,
    scrape_timeout: Option<PromDuration>,
    evaluation_interval: Option<PromDuration>,
    #[serde(default, deserialize_with = "yaml::unique_map")]
    external_labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "yaml::null_string")]
    query_log_file: String,
}

impl TryFrom<RawGlobal> for GlobalConfig {
    type Error = String;

    /// Prometheus 2.42's order: the interval's default first, then an explicit timeout
    /// is checked against it, then a missing timeout becomes min(10s, interval).
    fn try_from(raw: RawGlobal) -> Result<Self, String> {
        if let Some(bad) = raw.external_labels.keys().find(|k| !is_valid_label_name(k)) {
            return Err(format!("{bad:?} is not a valid label name"));
        }
        let set = |d: Option<PromDuration>| d.map(|d| d.0).filter(|d| !d.is_zero());
        let interval = set(raw.scrape_interval).unwrap_or(DEFAULT_INTERVAL);
        let timeout = match set(raw.scrape_timeout) {
            Some(t) if t > interval => return Err("global scrape timeout greater than scrape interval".into()),
            Some(t) => t,
            None => DEFAULT_TIMEOUT.min(interval),
        };
        Ok(Self {
            scrape_interval: PromDuration(interval),
            scrape_timeout: PromDuration(timeout),
            evaluation_interval: PromDuration(set(raw.evaluation_interval).unwrap_or(DEFAULT_INTERVAL)),
            external_labels: raw.external_labels,
            query_log_file: Some(PathBuf::from(raw.query_log_file)).filter(|p| !p.as_os_str().is_empty()),
        })
    }
}

const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for GlobalConfig {
    fn default() -> Self {
        Self {
            scrape_interval: PromDuration(DEFAULT_INTERVAL),
            scrape_timeout: PromDuration(DEFAULT_TIMEOUT),
            evaluation_interval: PromDuration(DEFAULT_INTERVAL),
            external_labels: BTreeMap::new(),
            query_log_file: None,
        }
    }
}

/// `storage` section.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Data directory; default `./sextant-data`. `--data-dir` overrides it.
    pub path: Option<PathBuf>,
    /// How long samples are kept; default 15d. `0s` keeps them forever.
    pub retention: Option<PromDuration>,
    /// Append requests that may wait for the writer; beyond this remote_write answers
    /// 503 with Retry-After (and scrapes wait). Default 256.
    pub max_pending_appends: Option<usize>,
    /// Series the in-memory head may hold [unlimited]. Appends that would create
    /// more are refused: remote_write answers 503 with Retry-After, a scrape fails
    /// with the reason in its target's health, instead of memory growing until the
    /// kernel stops the process. Room returns as blocks are flushed.
    pub max_head_series: Option<usize>,
}

/// `logs` section: the log store's settings (defaults in brackets). Loki's
/// limits have the same names where they exist.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    /// Whether logs are received and stored [true].
    pub enabled: Option<bool>,
    /// How long entries are kept [15d].
    pub retention: Option<PromDuration>,
    /// Length of one index partition; retention drops whole partitions [1h].
    pub partition: Option<PromDuration>,
    /// Longest line accepted [256KiB].
    pub max_line_size: Option<ByteSize>,
    /// Label names per stream, `service_name` not counted [15].
    pub max_label_names_per_series: Option<usize>,
    /// Streams held within retention [100000].
    pub max_streams: Option<usize>,
    /// Sustained ingest rate, MiB of lines per second [64].
    pub ingestion_rate_mb: Option<f64>,
    /// Burst above the rate, MiB [128].
    pub ingestion_burst_size_mb: Option<f64>,
    /// How far the index may fall behind acknowledged pushes before pushes get
    /// 429 (searchable within about this long, even under overload) [2s].
    pub max_index_lag: Option<PromDuration>,
    /// Loki ruler files: rule groups whose expressions are LogQL metric queries,
    /// evaluated over the log store; their results are series in the metrics
    /// store (globs, relative to the config file) [none].
    #[serde(default)]
    pub rule_files: Vec<String>,
}

/// `traces` section: the trace store and the span metrics derived from it
/// (defaults in brackets; span-metric names and defaults are Tempo
/// metrics-generator's).
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TracesConfig {
    /// Whether traces are received and stored [true].
    pub enabled: Option<bool>,
    /// How long spans are kept, by start time [14d].
    pub retention: Option<PromDuration>,
    /// Width of one bucket of tables; retention drops whole buckets [1h].
    pub bucket: Option<PromDuration>,
    /// RED metrics and the service graph from spans.
    #[serde(default, deserialize_with = "yaml::null_as_default")]
    pub span_metrics: SpanMetricsConfig,
}

/// `traces.span_metrics`: Tempo metrics-generator's `span_metrics` and
/// `service_graphs` processors (defaults in brackets).
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SpanMetricsConfig {
    /// Whether span metrics are written [true].
    pub enabled: Option<bool>,
    /// How often they are written to the metrics store [15s].
    pub interval: Option<PromDuration>,
    /// Extra labels, by attribute name (resource first, then span) [none].
    #[serde(default)]
    pub dimensions: Vec<String>,
    /// `traces_spanmetrics_latency` buckets, seconds [0.002 × 2ⁿ, 14 buckets].
    pub histogram_buckets: Option<Vec<f64>>,
    /// Service-graph histogram buckets, seconds [0.1 × 2ⁿ, 8 buckets].
    pub service_graph_buckets: Option<Vec<f64>>,
}

/// `slo` section: the SLO engine's settings (defaults in brackets).
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SloConfig {
    /// Length of a slice, the unit SLIs are counted in [1m].
    pub slice: Option<PromDuration>,
    /// Time between evaluations [30s].
    pub interval: Option<PromDuration>,
    /// How late samples may arrive for a slice [30s].
    pub settle: Option<PromDuration>,
    /// Coverage below which windows are unknown [0.9].
    pub coverage_floor: Option<f64>,
    /// Period of specs that name none (Sloth's `--default-slo-period`) [30d].
    pub default_period: Option<PromDuration>,
    /// Directory of Sloth AlertWindows catalogs (`--slo-period-windows-path`).
    pub windows_path: Option<PathBuf>,
    /// Windows up to this long are computed as Prometheus computes Sloth's rules [1h].
    pub direct_max_window: Option<PromDuration>,
    /// How long slices are kept [93d].
    pub slice_retention: Option<PromDuration>,
}

impl SloConfig {
    /// The engine options this section gives.
    pub fn engine_options(&self) -> Result<sextant_slo::EngineOptions, String> {
        let d = sextant_slo::EngineOptions::default();
        let windows = match &self.windows_path {
            Some(dir) => sextant_slo::windows::WindowCatalog::load_dir(dir)?,
            None => d.windows.clone(),
        };
        let o = sextant_slo::EngineOptions {
            slice: self.slice.map_or(d.slice, |x| x.0),
            interval: self.interval.map_or(d.interval, |x| x.0),
            settle: self.settle.map_or(d.settle, |x| x.0),
            coverage_floor: self.coverage_floor.unwrap_or(d.coverage_floor),
            default_period: self.default_period.map_or(d.default_period, |x| x.0),
            windows,
            direct_max_window: self.direct_max_window.map_or(d.direct_max_window, |x| x.0),
            slice_retention: self.slice_retention.map_or(d.slice_retention, |x| x.0),
            ..d
        };
        if o.slice < Duration::from_secs(1) || o.interval.is_zero() {
            return Err("slo: slice must be at least 1s and interval positive".into());
        }
        if !(0.0..=1.0).contains(&o.coverage_floor) {
            return Err(format!(
                "slo: coverage_floor must be within [0, 1], not {}",
                o.coverage_floor
            ));
        }
        Ok(o)
    }
}

/// `server` section.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address; default `127.0.0.1:9470`. `--listen` overrides it.
    pub listen: Option<String>,
    /// Largest remote_write body before decompression; default 32MiB.
    pub remote_write_max_compressed_bytes: Option<ByteSize>,
    /// Largest remote_write body after decompression; default 128MiB.
    pub remote_write_max_decompressed_bytes: Option<ByteSize>,
    /// Longest a query may run (Prometheus' `--query.timeout`); default 2m.
    pub query_timeout: Option<PromDuration>,
    /// Most samples a query may load (`--query.max-samples`); default 50,000,000.
    pub query_max_samples: Option<usize>,
    /// How far back instant selectors look (`--query.lookback-delta`); default 5m.
    pub query_lookback_delta: Option<PromDuration>,
    /// The URL Sextant is reached at (`--web.external-url`), for links in alerts;
    /// default `http://<hostname>:<port>`.
    pub external_url: Option<String>,
    /// Least time between two sends of an unchanged alert
    /// (`--rules.alert.resend-delay`); default 1m.
    pub rules_alert_resend_delay: Option<PromDuration>,
    /// Longest downtime after which alerts' `for` state is restored
    /// (`--rules.alert.for-outage-tolerance`); default 1h.
    pub rules_alert_for_outage_tolerance: Option<PromDuration>,
    /// Least time a restored alert stays pending (`--rules.alert.for-grace-period`);
    /// default 10m.
    pub rules_alert_for_grace_period: Option<PromDuration>,
    /// Access control; without it every caller may do everything, and Sextant
    /// says so at start-up.
    pub auth: Option<AuthConfig>,
    /// Where OTLP/gRPC listens; default `127.0.0.1:4317` (skipped with a warning
    /// when that port is taken); `""` turns it off. OTLP/HTTP is on `listen`.
    pub otlp_grpc_listen: Option<String>,
}

/// `server.auth`: who may read, silence and acknowledge, and reload.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// What callers without credentials may do: `viewer` (default) or `none`.
    #[serde(default = "default_anonymous")]
    pub anonymous: String,
    /// Bearer tokens.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// Basic-auth users.
    #[serde(default)]
    pub users: Vec<UserConfig>,
}

fn default_anonymous() -> String {
    "viewer".into()
}

/// A bearer token: its name (the identity recorded as author), role, and the
/// hex SHA-256 of the token (`printf %s "$TOKEN" | sha256sum`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Identity.
    pub name: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    /// Hex SHA-256 of the token.
    pub sha256: String,
}

/// A basic-auth user with the hex SHA-256 of the password.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// User name (the identity recorded as author).
    pub username: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    /// Hex SHA-256 of the password.
    pub password_sha256: String,
}

impl AuthConfig {
    /// The checked settings for the API.
    pub fn build(&self) -> Result<sextant_api::auth::Auth, String> {
        use sextant_api::auth::{Auth, Credential, Role};
        let digest = |what: &str, h: &str| -> Result<[u8; 32], String> {
            let h = h.trim();
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("server.auth: {what}: expected 64 hex digits (a SHA-256)"));
            }
            let mut out = [0u8; 32];
            for (i, o) in out.iter_mut().enumerate() {
                *o = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).expect("hex");
            }
            Ok(out)
        };
        let mut tokens = Vec::new();
        for t in &self.tokens {
            tokens.push(Credential {
                name: t.name.clone(),
                role: Role::parse(&t.role).map_err(|e| format!("server.auth: token {:?}: {e}", t.name))?,
                sha256: digest(&format!("token {:?}", t.name), &t.sha256)?,
            });
        }
        let mut users = Vec::new();
        for u in &self.users {
            users.push(Credential {
                name: u.username.clone(),
                role: Role::parse(&u.role).map_err(|e| format!("server.auth: user {:?}: {e}", u.username))?,
                sha256: digest(&format!("user {:?}", u.username), &u.password_sha256)?,
            });
        }
        let anonymous = match self.anonymous.as_str() {
            "none" => None,
            other => Some(Role::parse(other).map_err(|e| format!("server.auth.anonymous: {e}"))?),
        };
        Ok(Auth::new(tokens, users, anonymous))
    }
}

/// The alert router's configuration: the `alerting` section (inline or its
/// `config_file`), or, without one, a single receiver with no integrations (alerts
/// are held and shown, and open incidents, but notify no one).
pub fn load_alerting(config: &Config) -> Result<sextant_alertmanager::config::Config, String> {
    if config.alerting.is_none() {
        return sextant_alertmanager::config::parse(
            "route: {receiver: default}\nreceivers: [{name: default}]\n",
            Path::new("built-in alerting defaults"),
        );
    }
    let file = if config.path.as_os_str().is_empty() {
        Path::new("embedded defaults")
    } else {
        config.path.as_path()
    };
    sextant_alertmanager::config::parse_section(&config.source, file)?.ok_or_else(|| "alerting: empty section".into())
}

/// The configuration used when no file is given: scrape Sextant's own `/metrics` and its
/// built-in node collector every 15 seconds.
pub fn embedded_defaults(listen: &str) -> String {
    format!(
        "global:\n  scrape_interval: 15s\n  scrape_timeout: 10s\n\
         scrape_configs:\n\
         \x20 - job_name: sextant\n    static_configs: [{{targets: ['{listen}']}}]\n\
         \x20 - job_name: node\n    metrics_path: /node/metrics\n    static_configs: [{{targets: ['{listen}']}}]\n"
    )
}

/// Parses and validates a config document; `name` is used in error messages.
pub fn parse(text: &str, name: &str) -> Result<Config, String> {
    let located = |e: serde_yaml::Error| match e.location() {
        Some(loc) => format!(
            "{name}:{}:{}: {}",
            loc.line(),
            loc.column(),
            strip_location(&e.to_string())
        ),
        None => format!("{name}: {e}"),
    };
    let mut config: Config = if has_merge_keys(text) {
        // `<<: *anchor` merges, which Prometheus' YAML decoder applies; serde_yaml
        // applies them only to a value tree, which has no positions for errors.
        let mut value: serde_yaml::Value = serde_yaml::from_str(text).map_err(located)?;
        value.apply_merge().map_err(located)?;
        serde_yaml::from_value(value).map_err(|e| format!("{name}: {e}"))?
    } else {
        serde_yaml::from_str::<Config>(text).map_err(located)?
    };
    for f in &config.rule_files {
        if !valid_rule_file_path(f) {
            let line = line_of(text, "rule_files", 0).unwrap_or(1);
            return Err(format!("{name}:{line}: invalid rule file path {f:?}"));
        }
    }
    for f in &config.slo_files {
        if !valid_rule_file_path(f) {
            let line = line_of(text, "slo_files", 0).unwrap_or(1);
            return Err(format!("{name}:{line}: invalid SLO file path {f:?}"));
        }
    }
    // The windows directory is read once paths are resolved (in `load`).
    let settings = SloConfig {
        windows_path: None,
        ..config.slo.clone()
    };
    if let Err(e) = settings.engine_options() {
        let line = line_of(text, "slo", 0).unwrap_or(1);
        return Err(format!("{name}:{line}: {e}"));
    }
    let defaults = ScrapeDefaults {
        interval: config.global.scrape_interval.0,
        timeout: config.global.scrape_timeout.0,
    };
    resolve_scrape_configs(&mut config.scrape_configs, defaults).map_err(|e| {
        let line = line_of(text, "job_name", e.index).unwrap_or(1);
        format!("{name}:{line}: {}", e.message)
    })?;
    config.node.validate().map_err(|e| {
        let key = e.option.rsplit('.').next().unwrap_or("node");
        let line = line_of(text, key, 0).or_else(|| line_of(text, "node", 0)).unwrap_or(1);
        format!("{name}:{line}: {e}")
    })?;
    if let Err(errors) = sextant_act::config::validate(&config.workloads, &config.actions) {
        let at = |e: &str| {
            let key = if e.starts_with("actions") {
                "actions"
            } else {
                "workloads"
            };
            line_of(text, key, 0).unwrap_or(1)
        };
        return Err(errors
            .iter()
            .map(|e| format!("{name}:{}: {e}", at(e)))
            .collect::<Vec<_>>()
            .join("\n"));
    }
    for w in &config.workloads {
        if w.process.as_ref().is_some_and(|p| p.metrics.enabled)
            && config.scrape_configs.iter().any(|j| j.job_name == w.name)
        {
            let line = line_of(text, "workloads", 0).unwrap_or(1);
            return Err(format!(
                "{name}:{line}: workload {:?}: its replicas are scraped as job {:?}, which scrape_configs already has",
                w.name, w.name
            ));
        }
    }
    config.source = text.to_owned();
    config.base_dir = PathBuf::from(".");
    Ok(config)
}

/// Whether the document uses YAML merge keys.
fn has_merge_keys(text: &str) -> bool {
    text.lines()
        .any(|l| l.trim_start().trim_start_matches("- ").starts_with("<<:"))
}

/// Prometheus' rule file rule: a `*` only in the last path component.
fn valid_rule_file_path(p: &str) -> bool {
    match p.find('*') {
        None => true,
        Some(i) => !p[i..].contains('/'),
    }
}

/// Every file a list of globs names (relative to the config file's directory), sorted
/// per pattern.
fn expand_globs(config: &Config, patterns: &[String], what: &str) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for pattern in patterns {
        let full = if Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            config.base_dir.join(pattern)
        };
        let paths =
            glob::glob(&full.to_string_lossy()).map_err(|e| format!("{what}: invalid pattern {pattern:?}: {e}"))?;
        let mut paths: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
        paths.sort();
        out.extend(paths);
    }
    Ok(out)
}

/// Loads every SLO spec `config.slo_files` names and checks them as the engine will
/// run them; every problem of every file, each with file and line.
pub fn load_slo_files(config: &Config) -> Result<Vec<sextant_slo::Slo>, String> {
    let opts = config.slo.engine_options()?;
    let mut slos: Vec<sextant_slo::Slo> = Vec::new();
    let mut errors = Vec::new();
    for p in expand_globs(config, &config.slo_files, "slo_files")? {
        match sextant_slo::spec::load(&p) {
            Ok(docs) => {
                for s in docs.into_iter().flat_map(|d| d.slos) {
                    if let Some(other) = slos.iter().find(|o| o.id == s.id) {
                        errors.push(format!(
                            "{}: duplicate SLO id {:?} (also at {})",
                            s.location, s.id, other.location
                        ));
                    } else {
                        slos.push(s);
                    }
                }
            }
            Err(e) => errors.extend(e.into_iter().map(|e| e.to_string())),
        }
    }
    if let Err(e) = sextant_slo::SloEngine::check(&slos, &opts) {
        errors.extend(e);
    }
    if errors.is_empty() {
        Ok(slos)
    } else {
        Err(errors.join("\n"))
    }
}

/// Loads every rule file `config.rule_files` names (globs, relative to the config
/// file's directory); every problem of every file, as `promtool check rules` lists them.
pub fn load_rule_files(config: &Config) -> Result<Vec<sextant_rules::RuleFile>, String> {
    use sextant_rules::Language;
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let patterns = config
        .rule_files
        .iter()
        .map(|p| (p, Language::PromQL, "rule_files"))
        .chain(
            config
                .logs
                .rule_files
                .iter()
                .map(|p| (p, Language::LogQL, "logs.rule_files")),
        );
    for (pattern, lang, key) in patterns {
        let full = if Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            config.base_dir.join(pattern)
        };
        let paths = match glob::glob(&full.to_string_lossy()) {
            Ok(p) => p,
            Err(e) => {
                errors.push(format!("{key}: invalid pattern {pattern:?}: {e}"));
                continue;
            }
        };
        let mut paths: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
        paths.sort();
        for p in paths {
            match sextant_rules::file::load_as(&p, lang) {
                Ok(f) => files.push(f),
                Err(e) => errors.extend(e),
            }
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors.join("\n"))
    }
}

/// What `promtool check config` checks beyond what loading the config checks, and the
/// Prometheus server only finds out later: rule files named without a glob exist,
/// credential and client certificate files exist, and every target known now is a valid
/// scrape target.
pub fn check_like_promtool(config: &Config) -> Result<(), String> {
    for pattern in config.rule_files.iter().chain(&config.logs.rule_files) {
        let path = if Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            config.base_dir.join(pattern)
        };
        if !pattern.contains(['*', '?', '[']) && !path.is_file() {
            return Err(format!("{pattern:?} does not point to an existing file"));
        }
    }
    for c in &config.scrape_configs {
        let job = &c.job_name;
        if let Some(f) = c.authorization.as_ref().and_then(|a| a.credentials_file.as_ref())
            && let Err(e) = std::fs::metadata(f)
        {
            return Err(format!(
                "error checking authorization credentials or bearer token file {:?}: {e} (job {job:?})",
                f.display()
            ));
        }
        for (what, f) in [
            ("client cert", &c.tls_config.cert_file),
            ("client key", &c.tls_config.key_file),
        ] {
            if let Some(f) = f
                && let Err(e) = std::fs::metadata(f)
            {
                return Err(format!(
                    "error checking {what} file {:?}: {e} (job {job:?})",
                    f.display()
                ));
            }
        }
        sextant_collect::scrape::check_targets(c).map_err(|e| format!("{e} (job {job:?})"))?;
    }
    Ok(())
}

/// Reads and validates a config file. Relative paths in it are relative to the file's
/// directory, as in Prometheus.
pub fn load(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut config = parse(&text, &path.display().to_string())?;
    let base = path.parent().unwrap_or(Path::new("."));
    config.base_dir = base.to_path_buf();
    config.path = path.to_path_buf();
    for c in &mut config.scrape_configs {
        c.resolve_paths(base);
    }
    config.node.resolve_paths(base);
    if let Some(p) = &mut config.global.query_log_file
        && p.is_relative()
    {
        *p = base.join(&*p);
    }
    if let Some(p) = &mut config.slo.windows_path
        && p.is_relative()
    {
        *p = base.join(&*p);
    }
    if let Some(p) = &mut config.storage.path
        && p.is_relative()
    {
        // storage.path is ours, and like Prometheus' paths it follows the config file.
        *p = base.join(&*p);
    }
    Ok(config)
}

/// serde_yaml appends " at line L column C"; we put the position first instead.
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// 1-based line of the `nth` line containing `key:`.
fn line_of(text: &str, key: &str, nth: usize) -> Option<usize> {
    let needle = format!("{key}:");
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(&needle))
        .nth(nth)
        .map(|(i, _)| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_are_valid() {
        let c = parse(&embedded_defaults("127.0.0.1:9470"), "embedded").unwrap();
        assert_eq!(c.scrape_configs.len(), 2);
        assert_eq!(c.scrape_configs[1].metrics_path, "/node/metrics");
        assert_eq!(c.scrape_configs[0].interval(), Duration::from_secs(15));
    }

    #[test]
    fn scrape_timeout_inferred_as_prometheus_infers_it() {
        let c = parse(
            "global: {scrape_interval: 5s}\nscrape_configs:\n  - job_name: a\n  - job_name: b\n    scrape_interval: 1m\n",
            "x.yml",
        )
        .unwrap();
        assert_eq!(c.global.scrape_timeout.0, Duration::from_secs(5));
        assert_eq!(c.scrape_configs[0].timeout(), Duration::from_secs(5));
        // The job inherits the resolved global timeout, not 10s.
        assert_eq!(c.scrape_configs[1].timeout(), Duration::from_secs(5));
        let c = parse("global: {scrape_interval: 0s, evaluation_interval: 0s}\n", "x.yml").unwrap();
        assert_eq!(c.global.scrape_interval.0, Duration::from_secs(60));
        assert_eq!(c.global.scrape_timeout.0, Duration::from_secs(10));
        assert_eq!(c.global.evaluation_interval.0, Duration::from_secs(60));
        assert!(parse("global: {scrape_timeout: 2m}\n", "x.yml").is_err());
        assert!(parse("global: ~\nscrape_configs: ~\nrule_files: ~\n", "x.yml").is_ok());
    }

    #[test]
    fn the_example_config_loads() {
        let path =
            Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("../../examples/sextant.yml");
        let c = load(&path).unwrap();
        assert!(!c.scrape_configs.is_empty());
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse(
            "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: a\n    bogus: 1\n",
            "x.yml",
        )
        .unwrap_err();
        assert!(e.starts_with("x.yml:5:"), "{e}");
        assert!(e.contains("unknown field `bogus`"), "{e}");
        let e = parse(
            "scrape_configs:\n  - job_name: a\n  - job_name: b\n    scrape_interval: 5s\n    scrape_timeout: 6s\n",
            "x.yml",
        )
        .unwrap_err();
        assert!(e.starts_with("x.yml:3:"), "{e}");
        let e = parse("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: hashmod\n        target_label: x\n", "x.yml").unwrap_err();
        assert!(e.starts_with("x.yml:4:") && e.contains("modulus"), "{e}");
        let e = parse("alerting_rules: [a.yml]\n", "x.yml").unwrap_err();
        assert!(
            e.starts_with("x.yml:1:") && e.contains("unknown field `alerting_rules`"),
            "{e}"
        );
        let e = parse("node:\n  collectors:\n    bogus: true\n", "x.yml").unwrap_err();
        assert!(e.starts_with("x.yml:3:") && e.contains("unknown collector"), "{e}");
        let e = parse("global:\n  scrape_interval: fast\n", "x.yml").unwrap_err();
        assert!(e.starts_with("x.yml:2:") && e.contains("invalid duration"), "{e}");
    }
}
