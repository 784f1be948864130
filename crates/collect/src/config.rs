//! `scrape_configs` in Prometheus' YAML format, verbatim. Unknown keys are errors.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use sextant_model::time::PromDuration;
use sextant_model::{is_valid_label_name, time::format_duration};

use crate::relabel::RelabelConfig;
use crate::yaml;

/// One scrape job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The job name; the `job` label of its targets.
    #[serde(default, deserialize_with = "yaml::null_string")]
    pub job_name: String,
    /// How often to scrape; defaults to `global.scrape_interval` (so does `0s`).
    pub scrape_interval: Option<PromDuration>,
    /// Per-scrape timeout; defaults to the smaller of `global.scrape_timeout` and the
    /// interval (so does `0s`).
    pub scrape_timeout: Option<PromDuration>,
    /// HTTP path of the metrics (a missing leading `/` is implied, as in Prometheus).
    #[serde(default = "default_metrics_path", deserialize_with = "yaml::null_string")]
    pub metrics_path: String,
    /// `http` or `https`.
    #[serde(default = "default_scheme", deserialize_with = "yaml::null_string")]
    pub scheme: String,
    /// URL query parameters.
    #[serde(default, deserialize_with = "yaml::unique_map")]
    pub params: BTreeMap<String, Vec<String>>,
    /// Keep scraped labels that clash with target labels (instead of renaming them
    /// `exported_*`).
    #[serde(default, deserialize_with = "yaml::bool_yaml11")]
    pub honor_labels: bool,
    /// Use timestamps the target exposes.
    #[serde(default = "yes", deserialize_with = "yaml::bool_yaml11")]
    pub honor_timestamps: bool,
    /// Fixed target lists.
    #[serde(default, deserialize_with = "static_configs")]
    pub static_configs: Vec<StaticConfig>,
    /// Target lists read from JSON or YAML files, reloaded when they change.
    #[serde(default, deserialize_with = "file_sd_configs")]
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Relabeling of discovered targets.
    #[serde(default, deserialize_with = "relabel_configs")]
    pub relabel_configs: Vec<RelabelConfig>,
    /// Relabeling of scraped series.
    #[serde(default, deserialize_with = "metric_relabel_configs")]
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// HTTP basic authentication.
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization` header credentials.
    pub authorization: Option<Authorization>,
    /// OAuth 2.0 client credentials: a token fetched from `token_url` and sent as a
    /// bearer token.
    pub oauth2: Option<OAuth2>,
    /// Deprecated form of `authorization: {credentials: ...}`, still accepted.
    #[serde(default, deserialize_with = "yaml::null_string")]
    pub bearer_token: String,
    /// Deprecated form of `authorization: {credentials_file: ...}`, still accepted.
    pub bearer_token_file: Option<PathBuf>,
    /// HTTP proxy for the job's scrapes.
    pub proxy_url: Option<ProxyUrl>,
    /// Headers sent to the proxy on CONNECT.
    #[serde(default, deserialize_with = "yaml::unique_map")]
    pub proxy_connect_header: BTreeMap<String, Vec<String>>,
    /// Follow HTTP redirects (default true).
    #[serde(default = "yes", deserialize_with = "yaml::bool_yaml11")]
    pub follow_redirects: bool,
    /// Offer HTTP/2 on TLS connections (default true).
    #[serde(default = "yes", deserialize_with = "yaml::bool_yaml11")]
    pub enable_http2: bool,
    /// TLS settings for `https` targets.
    #[serde(default, deserialize_with = "yaml::null_as_default")]
    pub tls_config: TlsConfig,
    /// More samples than this (after metric relabeling) fails the scrape; 0 = no limit.
    #[serde(default, deserialize_with = "yaml::go_uint")]
    pub sample_limit: usize,
    /// More labels than this on a series fails the scrape; 0 = no limit.
    #[serde(default, deserialize_with = "yaml::go_uint")]
    pub label_limit: usize,
    /// A label name longer than this fails the scrape; 0 = no limit.
    #[serde(default, deserialize_with = "yaml::go_uint")]
    pub label_name_length_limit: usize,
    /// A label value longer than this fails the scrape; 0 = no limit.
    #[serde(default, deserialize_with = "yaml::go_uint")]
    pub label_value_length_limit: usize,
    /// A larger (uncompressed) body fails the scrape; 0 = no limit. E.g. `10MB`.
    #[serde(default)]
    pub body_size_limit: ByteSize,
    /// More targets than this after relabeling fails the whole pool; 0 = no limit.
    #[serde(default, deserialize_with = "yaml::go_uint")]
    pub target_limit: usize,
}

fn static_configs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<StaticConfig>, D::Error> {
    yaml::non_null_entries(d, "empty or null section in static_configs")
}
fn file_sd_configs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<FileSdConfig>, D::Error> {
    yaml::non_null_entries(d, "empty or null section in file_sd_configs")
}
fn relabel_configs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<RelabelConfig>, D::Error> {
    yaml::non_null_entries(d, "empty or null target relabeling rule in scrape config")
}
fn metric_relabel_configs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<RelabelConfig>, D::Error> {
    yaml::non_null_entries(d, "empty or null metric relabeling rule in scrape config")
}

fn default_metrics_path() -> String {
    "/metrics".into()
}
fn default_scheme() -> String {
    "http".into()
}
fn yes() -> bool {
    true
}

/// `static_configs` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// `host:port` addresses.
    #[serde(default, deserialize_with = "yaml::null_as_default")]
    pub targets: Vec<String>,
    /// Labels added to every target of the group.
    #[serde(default, deserialize_with = "label_set")]
    pub labels: BTreeMap<String, String>,
}

/// A label set: valid names, each once.
fn label_set<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let m: BTreeMap<String, String> = yaml::unique_map(d)?;
    if let Some(bad) = m.keys().find(|k| !is_valid_label_name(k)) {
        return Err(serde::de::Error::custom(format!("{bad:?} is not a valid label name")));
    }
    Ok(m)
}

/// `file_sd_configs` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// Files or globs (in the last path component) of `.json`, `.yml` or `.yaml` files.
    #[serde(default, deserialize_with = "yaml::null_as_default")]
    pub files: Vec<String>,
    /// Re-read interval in addition to change detection; default 5m.
    pub refresh_interval: Option<PromDuration>,
}

/// `basic_auth`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name (may be empty, as in Prometheus).
    #[serde(default, deserialize_with = "yaml::null_string")]
    pub username: String,
    /// Password, inline.
    pub password: Option<String>,
    /// Password read from a file at each scrape.
    pub password_file: Option<PathBuf>,
}

/// `authorization`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// Scheme; default `Bearer`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Credentials, inline.
    pub credentials: Option<String>,
    /// Credentials read from a file at each scrape.
    pub credentials_file: Option<PathBuf>,
}

/// `oauth2`: the client credentials grant.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OAuth2 {
    /// Client id.
    #[serde(default, deserialize_with = "yaml::null_string")]
    pub client_id: String,
    /// Client secret, inline.
    pub client_secret: Option<String>,
    /// Client secret read from a file when a token is fetched.
    pub client_secret_file: Option<PathBuf>,
    /// Scopes asked for.
    #[serde(default, deserialize_with = "yaml::null_as_default")]
    pub scopes: Vec<String>,
    /// The token endpoint.
    #[serde(default, deserialize_with = "yaml::null_string")]
    pub token_url: String,
    /// Extra form parameters of the token request.
    #[serde(default, deserialize_with = "yaml::unique_map")]
    pub endpoint_params: BTreeMap<String, String>,
    /// Proxy for the token request.
    pub proxy_url: Option<ProxyUrl>,
    /// TLS settings of the token request.
    #[serde(default, deserialize_with = "yaml::null_as_default")]
    pub tls_config: TlsConfig,
}

/// A proxy URL, checked when the config is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyUrl(pub reqwest::Url);

impl<'de> Deserialize<'de> for ProxyUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        reqwest::Url::parse(&s)
            .map(ProxyUrl)
            .map_err(|e| serde::de::Error::custom(format!("parse {s:?}: {e}")))
    }
}

/// A TLS protocol version as Prometheus names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.0 (not offered by Sextant's TLS stack).
    Tls10,
    /// TLS 1.1 (not offered by Sextant's TLS stack).
    Tls11,
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl<'de> Deserialize<'de> for TlsVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "TLS10" => Self::Tls10,
            "TLS11" => Self::Tls11,
            "TLS12" => Self::Tls12,
            "TLS13" => Self::Tls13,
            _ => return Err(serde::de::Error::custom(format!("unknown TLS version: {s}"))),
        })
    }
}

/// `tls_config`.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA certificates (PEM) to verify the target with, instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM).
    pub cert_file: Option<PathBuf>,
    /// Client key (PEM).
    pub key_file: Option<PathBuf>,
    /// Name to verify the target's certificate against.
    pub server_name: Option<String>,
    /// Skip certificate verification.
    #[serde(default, deserialize_with = "yaml::bool_yaml11")]
    pub insecure_skip_verify: bool,
    /// Lowest TLS version offered.
    pub min_version: Option<TlsVersion>,
    /// Highest TLS version offered.
    pub max_version: Option<TlsVersion>,
}

/// A byte size in Prometheus' base-2 notation (`512KB`, `10MiB`, `1.5GB`, `1MB512KB`;
/// a bare number only as `0`); 0 = unset. A negative size, which Prometheus accepts,
/// also means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a size such as 10MiB")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ByteSize, E> {
                parse_byte_size(s)
                    .map(|n| ByteSize(n.max(0) as u64))
                    .ok_or_else(|| E::custom(format!("units: unknown unit in {s} (expected e.g. 10MiB)")))
            }
        }
        d.deserialize_any(V)
    }
}

/// alecthomas/units' `ParseBase2Bytes`, which Prometheus uses: an optional sign, then
/// one or more `<number><unit>` with K, M, G, T, P, E as powers of 1024.
fn parse_byte_size(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest.is_empty() {
        return None;
    }
    const UNITS: [(&str, u32); 13] = [
        ("KiB", 1),
        ("MiB", 2),
        ("GiB", 3),
        ("TiB", 4),
        ("PiB", 5),
        ("EiB", 6),
        ("KB", 1),
        ("MB", 2),
        ("GB", 3),
        ("TB", 4),
        ("PB", 5),
        ("EB", 6),
        ("B", 0),
    ];
    let mut total = 0f64;
    while !rest.is_empty() {
        let int = rest.bytes().take_while(u8::is_ascii_digit).count();
        if int == 0 {
            return None;
        }
        let mut end = int;
        if rest[end..].starts_with('.') {
            let frac = rest[end + 1..].bytes().take_while(u8::is_ascii_digit).count();
            if frac == 0 {
                return None;
            }
            end += 1 + frac;
        }
        let n: f64 = rest[..end].parse().ok()?;
        rest = &rest[end..];
        let (unit, power) = UNITS.iter().find(|(u, _)| rest.starts_with(u))?;
        rest = &rest[unit.len()..];
        total += n * 1024f64.powi(*power as i32);
    }
    if total > i64::MAX as f64 {
        return None;
    }
    Some(if neg { -(total as i64) } else { total as i64 })
}

/// Defaults a job inherits from `global`.
#[derive(Debug, Clone, Copy)]
pub struct ScrapeDefaults {
    /// `global.scrape_interval`.
    pub interval: Duration,
    /// `global.scrape_timeout`.
    pub timeout: Duration,
}

impl ScrapeConfig {
    /// The interval after defaults.
    pub fn interval(&self) -> Duration {
        self.scrape_interval.map(|d| d.0).unwrap_or(Duration::from_secs(60))
    }

    /// The timeout after defaults.
    pub fn timeout(&self) -> Duration {
        self.scrape_timeout.map(|d| d.0).unwrap_or(Duration::from_secs(10))
    }
}

impl ScrapeConfig {
    /// Makes relative file paths (file_sd files, credential and TLS files) relative to
    /// `base`, the config file's directory, as Prometheus resolves them.
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for f in &mut self.file_sd_configs {
            for pattern in &mut f.files {
                if std::path::Path::new(pattern.as_str()).is_relative() {
                    *pattern = base.join(pattern.as_str()).display().to_string();
                }
            }
        }
        if let Some(b) = &mut self.basic_auth {
            b.password_file.as_mut().map(fix);
        }
        if let Some(a) = &mut self.authorization {
            a.credentials_file.as_mut().map(fix);
        }
        self.bearer_token_file.as_mut().map(fix);
        let mut tls = vec![&mut self.tls_config];
        if let Some(o) = &mut self.oauth2 {
            o.client_secret_file.as_mut().map(fix);
            tls.push(&mut o.tls_config);
        }
        for t in tls {
            for p in [&mut t.ca_file, &mut t.cert_file, &mut t.key_file]
                .into_iter()
                .flatten()
            {
                fix(p);
            }
        }
    }
}

/// A semantic error in `scrape_configs`: which job (by position) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeConfigError {
    /// Index of the offending entry in `scrape_configs`.
    pub index: usize,
    /// What is wrong, naming the job.
    pub message: String,
}

impl std::fmt::Display for ScrapeConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Fills job defaults from `global` and checks what Prometheus 2.42 checks when it
/// loads a config, in its order. Errors name the job.
pub fn resolve_scrape_configs(configs: &mut [ScrapeConfig], defaults: ScrapeDefaults) -> Result<(), ScrapeConfigError> {
    let mut seen = std::collections::HashSet::new();
    for (index, c) in configs.iter_mut().enumerate() {
        resolve_one(c, defaults).map_err(|message| ScrapeConfigError { index, message })?;
        if !seen.insert(c.job_name.clone()) {
            return Err(ScrapeConfigError {
                index,
                message: format!("found multiple scrape configs with job name {:?}", c.job_name),
            });
        }
    }
    Ok(())
}

/// Prometheus' file_sd path rule: at most the last component has a `*`, and the
/// extension is json, yml or yaml in one case.
fn valid_file_sd_path(p: &str) -> bool {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$").expect("static regex")
    });
    RE.is_match(p)
}

fn resolve_one(c: &mut ScrapeConfig, defaults: ScrapeDefaults) -> Result<(), String> {
    let job = c.job_name.clone();
    if job.is_empty() {
        return Err("job_name is empty".into());
    }
    validate_http_client(c).map_err(|e| format!("{e} (job {job:?})"))?;
    // The deprecated bearer token is an Authorization header.
    if !c.bearer_token.is_empty() || c.bearer_token_file.is_some() {
        c.authorization = Some(Authorization {
            kind: Some("Bearer".into()),
            credentials: Some(std::mem::take(&mut c.bearer_token)).filter(|s| !s.is_empty()),
            credentials_file: c.bearer_token_file.take(),
        });
    }
    if let Some(a) = &mut c.authorization {
        let kind = a.kind.as_deref().map(str::trim).unwrap_or("");
        a.kind = Some(if kind.is_empty() {
            "Bearer".into()
        } else {
            kind.to_owned()
        });
    }
    if c.relabel_configs.is_empty() {
        for sc in &c.static_configs {
            if let Some(t) = sc.targets.iter().find(|t| t.contains('/')) {
                return Err(format!("{t:?} is not a valid hostname (job {job:?})"));
            }
        }
    }
    for f in &c.file_sd_configs {
        if f.files.is_empty() {
            return Err(format!(
                "file service discovery config must contain at least one path name (job {job:?})"
            ));
        }
        if let Some(p) = f.files.iter().find(|p| !valid_file_sd_path(p)) {
            return Err(format!("path name {p:?} is not valid for file discovery (job {job:?})"));
        }
    }
    if c.tls_config.cert_file.is_some() && c.tls_config.key_file.is_none() {
        return Err(format!(
            "client cert file specified without client key file (job {job:?})"
        ));
    }
    if c.tls_config.key_file.is_some() && c.tls_config.cert_file.is_none() {
        return Err(format!(
            "client key file specified without client cert file (job {job:?})"
        ));
    }
    // `0s` means "not set", as in Prometheus.
    let interval = c
        .scrape_interval
        .map(|d| d.0)
        .filter(|d| !d.is_zero())
        .unwrap_or(defaults.interval);
    let explicit_timeout = c.scrape_timeout.map(|d| d.0).filter(|d| !d.is_zero());
    if let Some(t) = explicit_timeout
        && t > interval
    {
        return Err(format!(
            "scrape timeout greater than scrape interval for scrape config with job name {job:?} ({} > {})",
            format_duration(t),
            format_duration(interval)
        ));
    }
    c.scrape_interval = Some(PromDuration(interval));
    c.scrape_timeout = Some(PromDuration(explicit_timeout.unwrap_or(defaults.timeout.min(interval))));
    Ok(())
}

/// prometheus/common's `HTTPClientConfig.Validate`, in its order. A string counts as
/// set when it is not empty.
fn validate_http_client(c: &ScrapeConfig) -> Result<(), String> {
    let set = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    let bearer = !c.bearer_token.is_empty() || c.bearer_token_file.is_some();
    if !c.bearer_token.is_empty() && c.bearer_token_file.is_some() {
        return Err("at most one of bearer_token & bearer_token_file must be configured".into());
    }
    if (c.basic_auth.is_some() || c.oauth2.is_some()) && bearer {
        return Err("at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured".into());
    }
    if let Some(b) = &c.basic_auth
        && set(&b.password)
        && b.password_file.is_some()
    {
        return Err("at most one of basic_auth password & password_file must be configured".into());
    }
    if let Some(a) = &c.authorization {
        if bearer {
            return Err("authorization is not compatible with bearer_token & bearer_token_file".into());
        }
        if set(&a.credentials) && a.credentials_file.is_some() {
            return Err("at most one of authorization credentials & credentials_file must be configured".into());
        }
        if a.kind
            .as_deref()
            .map(str::trim)
            .is_some_and(|k| k.eq_ignore_ascii_case("basic"))
        {
            return Err(r#"authorization type cannot be set to "basic", use "basic_auth" instead"#.into());
        }
        if c.basic_auth.is_some() || c.oauth2.is_some() {
            return Err("at most one of basic_auth, oauth2 & authorization must be configured".into());
        }
    }
    if let Some(o) = &c.oauth2 {
        if c.basic_auth.is_some() {
            return Err("at most one of basic_auth, oauth2 & authorization must be configured".into());
        }
        if o.client_id.is_empty() {
            return Err("oauth2 client_id must be configured".into());
        }
        if !set(&o.client_secret) && o.client_secret_file.is_none() {
            return Err("either oauth2 client_secret or client_secret_file must be configured".into());
        }
        if o.token_url.is_empty() {
            return Err("oauth2 token_url must be configured".into());
        }
        if set(&o.client_secret) && o.client_secret_file.is_some() {
            return Err("at most one of oauth2 client_secret & client_secret_file must be configured".into());
        }
    }
    if !c.proxy_connect_header.is_empty() && c.proxy_url.is_none() {
        return Err("if proxy_connect_header is configured proxy_url must also be configured".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> ScrapeDefaults {
        ScrapeDefaults {
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn defaults_and_timeout_capped_at_interval() {
        let mut c: Vec<ScrapeConfig> = serde_yaml::from_str(
            "- job_name: a\n  scrape_interval: 5s\n  static_configs: [{targets: [x:1]}]\n- job_name: b",
        )
        .unwrap();
        resolve_scrape_configs(&mut c, defaults()).unwrap();
        assert_eq!(c[0].timeout(), Duration::from_secs(5));
        assert_eq!(c[1].interval(), Duration::from_secs(15));
        assert_eq!(c[1].timeout(), Duration::from_secs(10));
        assert_eq!(c[0].metrics_path, "/metrics");
        assert!(c[0].honor_timestamps);
    }

    #[test]
    fn errors_name_the_job() {
        let mut c: Vec<ScrapeConfig> =
            serde_yaml::from_str("- job_name: a\n  scrape_interval: 5s\n  scrape_timeout: 10s").unwrap();
        let e = resolve_scrape_configs(&mut c, defaults()).unwrap_err().message;
        assert!(
            e.contains("scrape timeout greater than scrape interval") && e.contains("\"a\""),
            "{e}"
        );
        let mut c: Vec<ScrapeConfig> =
            serde_yaml::from_str("- job_name: a\n  scrape_interval: 0s\n  scrape_timeout: 0s").unwrap();
        resolve_scrape_configs(&mut c, defaults()).unwrap();
        assert_eq!(
            (c[0].interval(), c[0].timeout()),
            (Duration::from_secs(15), Duration::from_secs(10))
        );
        let mut c: Vec<ScrapeConfig> = serde_yaml::from_str("- job_name: a\n- job_name: a").unwrap();
        let e = resolve_scrape_configs(&mut c, defaults()).unwrap_err();
        assert!(e.message.contains("multiple"));
        assert_eq!(e.index, 1);
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let mut c: Vec<ScrapeConfig> = serde_yaml::from_str(
            "- job_name: a\n  file_sd_configs: [{files: [t/*.json, /abs/x.yml]}]\n  basic_auth: {username: u, password_file: pw}\n  tls_config: {ca_file: ca.pem}",
        )
        .unwrap();
        c[0].resolve_paths(std::path::Path::new("/etc/sextant"));
        assert_eq!(
            c[0].file_sd_configs[0].files,
            vec!["/etc/sextant/t/*.json", "/abs/x.yml"]
        );
        assert_eq!(
            c[0].basic_auth.as_ref().unwrap().password_file.as_deref(),
            Some(std::path::Path::new("/etc/sextant/pw"))
        );
        assert_eq!(
            c[0].tls_config.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/sextant/ca.pem"))
        );
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("10MB"), Some(10 << 20));
        assert_eq!(parse_byte_size("512KiB"), Some(512 << 10));
        assert_eq!(parse_byte_size("0"), Some(0));
        assert_eq!(parse_byte_size("100"), None, "a unit is required, as in Prometheus");
        assert_eq!(parse_byte_size("1.5MB"), Some(3 << 19));
        assert_eq!(parse_byte_size("1MB512KB"), Some((1 << 20) + (512 << 10)));
        assert_eq!(parse_byte_size("-1KB"), Some(-1024));
        assert_eq!(parse_byte_size("10XB"), None);
        assert_eq!(parse_byte_size("1kB"), None);
    }
}
