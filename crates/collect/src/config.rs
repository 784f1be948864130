//! `scrape_configs` in Prometheus' YAML format, verbatim. Unknown keys are errors.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use sextant_model::time::PromDuration;
use sextant_model::{is_valid_label_name, time::format_duration};

use crate::relabel::RelabelConfig;

/// One scrape job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The job name; the `job` label of its targets.
    pub job_name: String,
    /// How often to scrape; defaults to `global.scrape_interval`.
    pub scrape_interval: Option<PromDuration>,
    /// Per-scrape timeout; defaults to `global.scrape_timeout`, capped at the interval.
    pub scrape_timeout: Option<PromDuration>,
    /// HTTP path of the metrics.
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// `http` or `https`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// URL query parameters.
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    /// Keep scraped labels that clash with target labels (instead of renaming them
    /// `exported_*`).
    #[serde(default)]
    pub honor_labels: bool,
    /// Use timestamps the target exposes.
    #[serde(default = "yes")]
    pub honor_timestamps: bool,
    /// Fixed target lists.
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    /// Target lists read from JSON or YAML files, reloaded when they change.
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Relabeling of discovered targets.
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    /// Relabeling of scraped series.
    #[serde(default)]
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// HTTP basic authentication.
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization` header credentials.
    pub authorization: Option<Authorization>,
    /// TLS settings for `https` targets.
    #[serde(default)]
    pub tls_config: TlsConfig,
    /// More samples than this (after metric relabeling) fails the scrape; 0 = no limit.
    #[serde(default)]
    pub sample_limit: usize,
    /// More labels than this on a series fails the scrape; 0 = no limit.
    #[serde(default)]
    pub label_limit: usize,
    /// A label name longer than this fails the scrape; 0 = no limit.
    #[serde(default)]
    pub label_name_length_limit: usize,
    /// A label value longer than this fails the scrape; 0 = no limit.
    #[serde(default)]
    pub label_value_length_limit: usize,
    /// A larger (uncompressed) body fails the scrape; 0 = no limit. E.g. `10MB`.
    #[serde(default)]
    pub body_size_limit: ByteSize,
    /// More targets than this after relabeling fails the whole pool; 0 = no limit.
    #[serde(default)]
    pub target_limit: usize,
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
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels added to every target of the group.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `file_sd_configs` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// Files or globs (in the last path component) of `.json`, `.yml` or `.yaml` files.
    pub files: Vec<String>,
    /// Re-read interval in addition to change detection; default 5m.
    pub refresh_interval: Option<PromDuration>,
}

/// `basic_auth`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
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
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// A byte size in Prometheus' base-2 notation (`512KB`, `10MiB`, `1GB`); 0 = unset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_byte_size(&s)
            .map(ByteSize)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid size {s:?} (expected e.g. 10MB)")))
    }
}

fn parse_byte_size(s: &str) -> Option<u64> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = s[..digits].parse().ok()?;
    let mult: u64 = match &s[digits..] {
        "" | "B" => 1,
        "KB" | "KiB" => 1 << 10,
        "MB" | "MiB" => 1 << 20,
        "GB" | "GiB" => 1 << 30,
        "TB" | "TiB" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
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
        let t = &mut self.tls_config;
        for p in [&mut t.ca_file, &mut t.cert_file, &mut t.key_file]
            .into_iter()
            .flatten()
        {
            fix(p);
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

/// Fills job defaults from `global` and checks what Prometheus checks. Errors name the job.
pub fn resolve_scrape_configs(configs: &mut [ScrapeConfig], defaults: ScrapeDefaults) -> Result<(), ScrapeConfigError> {
    for (index, c) in configs.iter_mut().enumerate() {
        resolve_one(c, defaults).map_err(|message| ScrapeConfigError { index, message })?;
    }
    let mut seen = std::collections::HashSet::new();
    for (index, c) in configs.iter().enumerate() {
        if !seen.insert(c.job_name.clone()) {
            return Err(ScrapeConfigError {
                index,
                message: format!("found multiple scrape configs with job name {:?}", c.job_name),
            });
        }
    }
    Ok(())
}

fn resolve_one(c: &mut ScrapeConfig, defaults: ScrapeDefaults) -> Result<(), String> {
    let job = c.job_name.clone();
    if job.is_empty() {
        return Err("job_name is empty".into());
    }
    let interval = c.scrape_interval.map(|d| d.0).unwrap_or(defaults.interval);
    if interval.is_zero() {
        return Err(format!("scrape_interval of job {job:?} must be positive"));
    }
    let timeout = match c.scrape_timeout {
        Some(t) => t.0,
        None => defaults.timeout.min(interval),
    };
    if timeout > interval {
        return Err(format!(
            "scrape timeout greater than scrape interval for scrape config with job name {job:?} ({} > {})",
            format_duration(timeout),
            format_duration(interval)
        ));
    }
    c.scrape_interval = Some(PromDuration(interval));
    c.scrape_timeout = Some(PromDuration(timeout));
    if c.scheme != "http" && c.scheme != "https" {
        return Err(format!("invalid scheme {:?} in job {job:?} (http or https)", c.scheme));
    }
    if !c.metrics_path.starts_with('/') {
        return Err(format!(
            "metrics_path {:?} of job {job:?} must start with /",
            c.metrics_path
        ));
    }
    for sc in &c.static_configs {
        for name in sc.labels.keys() {
            if !is_valid_label_name(name) {
                return Err(format!("invalid label name {name:?} in static_configs of job {job:?}"));
            }
        }
    }
    for f in &c.file_sd_configs {
        for pattern in &f.files {
            let ext_ok = [".json", ".yml", ".yaml"].iter().any(|e| pattern.ends_with(e));
            if !ext_ok {
                return Err(format!(
                    "file_sd file {pattern:?} of job {job:?} must end in .json, .yml or .yaml"
                ));
            }
            glob::Pattern::new(pattern)
                .map_err(|e| format!("invalid file_sd pattern {pattern:?} of job {job:?}: {e}"))?;
        }
    }
    if let Some(b) = &c.basic_auth
        && b.password.is_some()
        && b.password_file.is_some()
    {
        {
            return Err(format!(
                "at most one of basic_auth password & password_file must be configured (job {job:?})"
            ));
        }
    }
    if let Some(a) = &c.authorization
        && a.credentials.is_some()
        && a.credentials_file.is_some()
    {
        {
            return Err(format!(
                "at most one of authorization credentials & credentials_file must be configured (job {job:?})"
            ));
        }
    }
    if c.basic_auth.is_some() && c.authorization.is_some() {
        return Err(format!(
            "at most one of basic_auth & authorization must be configured (job {job:?})"
        ));
    }
    if c.tls_config.cert_file.is_some() != c.tls_config.key_file.is_some() {
        return Err(format!("tls_config of job {job:?} needs both cert_file and key_file"));
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
        assert_eq!(parse_byte_size("100"), Some(100));
        assert_eq!(parse_byte_size("10XB"), None);
    }
}
