//! Alertmanager 0.25's configuration, verbatim: `global`, `route`, `inhibit_rules`,
//! `receivers`, `templates`, `time_intervals` (and the older `mute_time_intervals`),
//! with its defaults, inheritance and validation messages, errors located by file
//! and line. Sextant adds escalation to routes (`escalate_after`, `escalate_to`) and
//! a signing secret to webhooks.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sextant_collect::config::{Authorization, BasicAuth, OAuth2, ProxyUrl, TlsConfig};
use sextant_model::time::PromDuration;
use sextant_model::yaml::Positions;

use crate::matchers::{MatchType, Matcher, parse_matchers};
use crate::route::Route;
use crate::timeinterval::{TimeInterval, TimeIntervalDoc};

/// A secret: kept, but printed as `<secret>` (as Alertmanager shows its config).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Secret(String::deserialize(d)?))
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<secret>")
    }
}

fn yes() -> bool {
    true
}

/// `http_config` of a receiver (Prometheus' HTTP client settings).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Basic authentication.
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization` header.
    pub authorization: Option<Authorization>,
    /// Bearer token (legacy form of `authorization`).
    pub bearer_token: Option<Secret>,
    /// Bearer token read from a file.
    pub bearer_token_file: Option<PathBuf>,
    /// OAuth 2.0 client credentials.
    pub oauth2: Option<OAuth2>,
    /// TLS settings.
    #[serde(default)]
    pub tls_config: TlsConfig,
    /// Proxy.
    pub proxy_url: Option<ProxyUrl>,
    /// Follow redirects (default true).
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    /// Offer HTTP/2 (default true).
    #[serde(default = "yes")]
    pub enable_http2: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            basic_auth: None,
            authorization: None,
            bearer_token: None,
            bearer_token_file: None,
            oauth2: None,
            tls_config: TlsConfig::default(),
            proxy_url: None,
            follow_redirects: true,
            enable_http2: true,
        }
    }
}

impl HttpConfig {
    fn validate(&self) -> Result<(), String> {
        if self.bearer_token.is_some() && self.bearer_token_file.is_some() {
            return Err("at most one of bearer_token & bearer_token_file must be configured".into());
        }
        let bearer = self.bearer_token.is_some() || self.bearer_token_file.is_some();
        let n = [self.basic_auth.is_some(), self.oauth2.is_some(), bearer]
            .iter()
            .filter(|x| **x)
            .count();
        if n > 1 {
            return Err(
                "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured".into(),
            );
        }
        if self.authorization.is_some() {
            if bearer {
                return Err("authorization is not compatible with bearer_token & bearer_token_file".into());
            }
            if self.basic_auth.is_some() || self.oauth2.is_some() {
                return Err("at most one of basic_auth, oauth2 & authorization must be configured".into());
            }
        }
        Ok(())
    }

    /// The header credentials: `authorization`, or the legacy bearer token as one.
    pub fn effective_authorization(&self) -> Option<Authorization> {
        if let Some(a) = &self.authorization {
            return Some(a.clone());
        }
        if let Some(t) = &self.bearer_token {
            return Some(Authorization {
                kind: Some("Bearer".into()),
                credentials: Some(t.0.clone()),
                credentials_file: None,
            });
        }
        self.bearer_token_file.as_ref().map(|f| Authorization {
            kind: Some("Bearer".into()),
            credentials: None,
            credentials_file: Some(f.clone()),
        })
    }
}

/// `global` (unknown keys are refused in `build`: serde cannot deny them next to
/// a flattened map).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct GlobalConfig {
    /// How long an alert without `endsAt` stays firing after its last update (5m).
    #[serde(default = "default_resolve_timeout")]
    pub resolve_timeout: PromDuration,
    /// Default HTTP client settings of receivers.
    #[serde(default)]
    pub http_config: HttpConfig,
    /// Slack webhook URL for `slack_configs` without their own.
    pub slack_api_url: Option<Secret>,
    /// File holding it.
    pub slack_api_url_file: Option<PathBuf>,
    /// PagerDuty Events API URL.
    #[serde(default = "default_pagerduty_url")]
    pub pagerduty_url: String,
    /// OpsGenie API URL.
    #[serde(default = "default_opsgenie_url")]
    pub opsgenie_api_url: String,
    /// OpsGenie API key for `opsgenie_configs` without their own.
    pub opsgenie_api_key: Option<Secret>,
    /// File holding it.
    pub opsgenie_api_key_file: Option<PathBuf>,
    /// Accepted for compatibility; email, WeChat, VictorOps, Telegram and Webex
    /// receivers are not supported, so these are not used.
    #[serde(flatten)]
    pub unused: BTreeMap<String, serde_yaml::Value>,
}

fn default_resolve_timeout() -> PromDuration {
    PromDuration(Duration::from_secs(300))
}

fn default_pagerduty_url() -> String {
    "https://events.pagerduty.com/v2/enqueue".into()
}

fn default_opsgenie_url() -> String {
    "https://api.opsgenie.com/".into()
}

impl Default for GlobalConfig {
    fn default() -> Self {
        Self {
            resolve_timeout: default_resolve_timeout(),
            http_config: HttpConfig::default(),
            slack_api_url: None,
            slack_api_url_file: None,
            pagerduty_url: default_pagerduty_url(),
            opsgenie_api_url: default_opsgenie_url(),
            opsgenie_api_key: None,
            opsgenie_api_key_file: None,
            unused: BTreeMap::new(),
        }
    }
}

/// Global keys Alertmanager has for receivers Sextant does not support.
const UNUSED_GLOBALS: [&str; 16] = [
    "smtp_from",
    "smtp_hello",
    "smtp_smarthost",
    "smtp_auth_username",
    "smtp_auth_password",
    "smtp_auth_password_file",
    "smtp_auth_secret",
    "smtp_auth_identity",
    "smtp_require_tls",
    "wechat_api_url",
    "wechat_api_secret",
    "wechat_api_corp_id",
    "victorops_api_url",
    "victorops_api_key",
    "telegram_api_url",
    "webex_api_url",
];

/// `webhook_configs` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Notify about resolved alerts (default true).
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// Where to POST.
    pub url: Option<String>,
    /// Most alerts per notification (0: all).
    #[serde(default)]
    pub max_alerts: u64,
    /// HTTP client settings.
    pub http_config: Option<HttpConfig>,
    /// Sextant: a secret to sign requests with (`X-Sextant-Signature:
    /// t=<unix>,v1=<hex HMAC-SHA256 of "<unix>.<body>">`).
    pub signing_secret: Option<Secret>,
    /// Sextant: the signing secret, read from a file.
    pub signing_secret_file: Option<PathBuf>,
}

/// A PagerDuty link.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyLink {
    /// URL (template).
    #[serde(default)]
    pub href: String,
    /// Text (template).
    #[serde(default)]
    pub text: String,
}

/// A PagerDuty image.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyImage {
    /// Image URL (template).
    #[serde(default)]
    pub src: String,
    /// Alt text (template).
    #[serde(default)]
    pub alt: String,
    /// Link (template).
    #[serde(default)]
    pub href: String,
}

/// `pagerduty_configs` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyConfig {
    /// Notify about resolved alerts (default true).
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// Events API v2 integration key (template).
    pub routing_key: Option<Secret>,
    /// File holding it.
    pub routing_key_file: Option<PathBuf>,
    /// Events API v1 service key.
    pub service_key: Option<Secret>,
    /// File holding it.
    pub service_key_file: Option<PathBuf>,
    /// Events API URL (default: `global.pagerduty_url`).
    pub url: Option<String>,
    /// Client name (template).
    #[serde(default = "pd_client")]
    pub client: String,
    /// Client URL (template).
    #[serde(default = "pd_client_url")]
    pub client_url: String,
    /// Summary (template).
    #[serde(default = "pd_description")]
    pub description: String,
    /// Custom details (templates); Alertmanager's four defaults fill missing keys.
    #[serde(default)]
    pub details: BTreeMap<String, String>,
    /// Severity (template; empty: `error`).
    #[serde(default)]
    pub severity: String,
    /// Class (template).
    #[serde(default)]
    pub class: String,
    /// Component (template).
    #[serde(default)]
    pub component: String,
    /// Group (template).
    #[serde(default)]
    pub group: String,
    /// Source (template; default: the client).
    #[serde(default)]
    pub source: String,
    /// Links.
    #[serde(default)]
    pub links: Vec<PagerdutyLink>,
    /// Images.
    #[serde(default)]
    pub images: Vec<PagerdutyImage>,
    /// HTTP client settings.
    pub http_config: Option<HttpConfig>,
}

fn pd_client() -> String {
    r#"{{ template "pagerduty.default.client" . }}"#.into()
}
fn pd_client_url() -> String {
    r#"{{ template "pagerduty.default.clientURL" . }}"#.into()
}
fn pd_description() -> String {
    r#"{{ template "pagerduty.default.description" .}}"#.into()
}

/// An OpsGenie responder.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OpsgenieResponder {
    /// Id (template).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Name (template).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// User name (template).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// `team`, `teams`, `user`, `escalation` or `schedule` (template).
    #[serde(rename = "type", default)]
    pub kind: String,
}

/// `opsgenie_configs` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OpsgenieConfig {
    /// Notify about resolved alerts (default true).
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// API key (default: global).
    pub api_key: Option<Secret>,
    /// File holding it.
    pub api_key_file: Option<PathBuf>,
    /// API URL (default: global).
    pub api_url: Option<String>,
    /// Message (template).
    #[serde(default = "og_message")]
    pub message: String,
    /// Description (template).
    #[serde(default = "og_description")]
    pub description: String,
    /// Source (template).
    #[serde(default = "og_source")]
    pub source: String,
    /// Details (templates).
    #[serde(default)]
    pub details: BTreeMap<String, String>,
    /// Entity (template).
    #[serde(default)]
    pub entity: String,
    /// Responders.
    #[serde(default)]
    pub responders: Vec<OpsgenieResponder>,
    /// Comma-separated actions (template).
    #[serde(default)]
    pub actions: String,
    /// Comma-separated tags (template).
    #[serde(default)]
    pub tags: String,
    /// Note (template).
    #[serde(default)]
    pub note: String,
    /// Priority (template).
    #[serde(default)]
    pub priority: String,
    /// Also update message and description of existing alerts.
    #[serde(default)]
    pub update_alerts: bool,
    /// HTTP client settings.
    pub http_config: Option<HttpConfig>,
}

fn og_message() -> String {
    r#"{{ template "opsgenie.default.message" . }}"#.into()
}
fn og_description() -> String {
    r#"{{ template "opsgenie.default.description" . }}"#.into()
}
fn og_source() -> String {
    r#"{{ template "opsgenie.default.source" . }}"#.into()
}

/// A Slack attachment field.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlackField {
    /// Title (template).
    #[serde(default)]
    pub title: String,
    /// Value (template).
    #[serde(default)]
    pub value: String,
    /// Short (default: `short_fields`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub short: Option<bool>,
}

/// A Slack action's confirmation.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlackConfirm {
    /// Text.
    #[serde(default)]
    pub text: String,
    /// Title.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    /// OK button text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ok_text: String,
    /// Dismiss button text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dismiss_text: String,
}

/// A Slack action (button).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlackAction {
    /// `button`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Text (template).
    #[serde(default)]
    pub text: String,
    /// URL (template).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// Style (template).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub style: String,
    /// Name (template).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Value (template).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// Confirmation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirm: Option<SlackConfirm>,
}

/// `slack_configs` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Notify about resolved alerts (default false).
    #[serde(default)]
    pub send_resolved: bool,
    /// Incoming-webhook URL (default: global).
    pub api_url: Option<Secret>,
    /// File holding it.
    pub api_url_file: Option<PathBuf>,
    /// Channel (template).
    #[serde(default)]
    pub channel: String,
    /// User name (template).
    #[serde(default = "slack_username")]
    pub username: String,
    /// Color (template).
    #[serde(default = "slack_color")]
    pub color: String,
    /// Title (template).
    #[serde(default = "slack_title")]
    pub title: String,
    /// Title link (template).
    #[serde(default = "slack_title_link")]
    pub title_link: String,
    /// Pretext (template).
    #[serde(default = "slack_pretext")]
    pub pretext: String,
    /// Text (template).
    #[serde(default = "slack_text")]
    pub text: String,
    /// Fallback (template).
    #[serde(default = "slack_fallback")]
    pub fallback: String,
    /// Callback id (template).
    #[serde(default = "slack_callback_id")]
    pub callback_id: String,
    /// Footer (template).
    #[serde(default = "slack_footer")]
    pub footer: String,
    /// Icon emoji (template).
    #[serde(default = "slack_icon_emoji")]
    pub icon_emoji: String,
    /// Icon URL (template).
    #[serde(default = "slack_icon_url")]
    pub icon_url: String,
    /// Image URL (template).
    #[serde(default)]
    pub image_url: String,
    /// Thumbnail URL (template).
    #[serde(default)]
    pub thumb_url: String,
    /// Fields.
    #[serde(default)]
    pub fields: Vec<SlackField>,
    /// Default of fields' `short`.
    #[serde(default)]
    pub short_fields: bool,
    /// Link names.
    #[serde(default)]
    pub link_names: bool,
    /// Fields rendered as Markdown (default `fallback`, `pretext`, `text`).
    #[serde(default)]
    pub mrkdwn_in: Vec<String>,
    /// Actions.
    #[serde(default)]
    pub actions: Vec<SlackAction>,
    /// HTTP client settings.
    pub http_config: Option<HttpConfig>,
}

fn slack_username() -> String {
    r#"{{ template "slack.default.username" . }}"#.into()
}
fn slack_color() -> String {
    r#"{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}"#.into()
}
fn slack_title() -> String {
    r#"{{ template "slack.default.title" . }}"#.into()
}
fn slack_title_link() -> String {
    r#"{{ template "slack.default.titlelink" . }}"#.into()
}
fn slack_pretext() -> String {
    r#"{{ template "slack.default.pretext" . }}"#.into()
}
fn slack_text() -> String {
    r#"{{ template "slack.default.text" . }}"#.into()
}
fn slack_fallback() -> String {
    r#"{{ template "slack.default.fallback" . }}"#.into()
}
fn slack_callback_id() -> String {
    r#"{{ template "slack.default.callbackid" . }}"#.into()
}
fn slack_footer() -> String {
    r#"{{ template "slack.default.footer" . }}"#.into()
}
fn slack_icon_emoji() -> String {
    r#"{{ template "slack.default.iconemoji" . }}"#.into()
}
fn slack_icon_url() -> String {
    r#"{{ template "slack.default.iconurl" . }}"#.into()
}

/// A receiver: a name and its integrations (unknown keys are refused in
/// validation: serde cannot deny them next to a flattened map).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Receiver {
    /// Unique name.
    #[serde(default)]
    pub name: String,
    /// Webhooks.
    #[serde(default)]
    pub webhook_configs: Vec<WebhookConfig>,
    /// PagerDuty.
    #[serde(default)]
    pub pagerduty_configs: Vec<PagerdutyConfig>,
    /// OpsGenie.
    #[serde(default)]
    pub opsgenie_configs: Vec<OpsgenieConfig>,
    /// Slack.
    #[serde(default)]
    pub slack_configs: Vec<SlackConfig>,
    /// Integrations Alertmanager has and Sextant does not: refused at load.
    #[serde(flatten)]
    pub unsupported: BTreeMap<String, serde_yaml::Value>,
}

/// A route node as written.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteDoc {
    /// Receiver (inherited when empty).
    pub receiver: Option<String>,
    /// Labels to group by; `...` groups by all.
    pub group_by: Option<Vec<String>>,
    /// Keep matching siblings after this route matched.
    #[serde(default, rename = "continue")]
    pub continue_: bool,
    /// Matchers (`a="b"` strings).
    #[serde(default)]
    pub matchers: Vec<String>,
    /// Exact matches (deprecated form).
    #[serde(default, rename = "match")]
    pub match_: BTreeMap<String, String>,
    /// Regex matches (deprecated form).
    #[serde(default)]
    pub match_re: BTreeMap<String, Option<String>>,
    /// Wait before the first notification of a new group.
    pub group_wait: Option<PromDuration>,
    /// Wait between notifications about changes of a group.
    pub group_interval: Option<PromDuration>,
    /// Wait before repeating an unchanged notification.
    pub repeat_interval: Option<PromDuration>,
    /// Time intervals during which the route is muted.
    #[serde(default)]
    pub mute_time_intervals: Vec<String>,
    /// Time intervals outside which the route is muted.
    #[serde(default)]
    pub active_time_intervals: Vec<String>,
    /// Child routes.
    #[serde(default)]
    pub routes: Vec<RouteDoc>,
    /// Sextant: notify the next `escalate_to` receiver when a group stays
    /// unacknowledged this long after its first notification (then again, for the
    /// receiver after it).
    pub escalate_after: Option<PromDuration>,
    /// Sextant: receivers to escalate to, in order.
    #[serde(default)]
    pub escalate_to: Vec<String>,
}

/// An inhibition rule as written.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InhibitRuleDoc {
    /// Matchers of the inhibiting alerts.
    #[serde(default)]
    pub source_matchers: Vec<String>,
    /// Matchers of the inhibited alerts.
    #[serde(default)]
    pub target_matchers: Vec<String>,
    /// Exact matches of the inhibiting alerts (deprecated form).
    #[serde(default)]
    pub source_match: BTreeMap<String, String>,
    /// Regex matches of the inhibiting alerts (deprecated form).
    #[serde(default)]
    pub source_match_re: BTreeMap<String, Option<String>>,
    /// Exact matches of the inhibited alerts (deprecated form).
    #[serde(default)]
    pub target_match: BTreeMap<String, String>,
    /// Regex matches of the inhibited alerts (deprecated form).
    #[serde(default)]
    pub target_match_re: BTreeMap<String, Option<String>>,
    /// Labels that must be equal in source and target.
    #[serde(default)]
    pub equal: Vec<String>,
}

/// An inhibition rule.
#[derive(Debug, Clone)]
pub struct InhibitRule {
    /// Source matchers.
    pub source: Vec<Matcher>,
    /// Target matchers.
    pub target: Vec<Matcher>,
    /// Equal labels.
    pub equal: Vec<String>,
}

/// A named list of time intervals as written.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NamedTimeIntervalDoc {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// The intervals; matching any of them matches.
    #[serde(default)]
    pub time_intervals: Vec<TimeIntervalDoc>,
}

/// The configuration as written (top level).
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigDoc {
    /// Sextant: read the configuration from this file instead (relative to the
    /// file that names it).
    pub config_file: Option<PathBuf>,
    /// `global`.
    pub global: Option<GlobalConfig>,
    /// `route`.
    pub route: Option<RouteDoc>,
    /// `inhibit_rules`.
    #[serde(default)]
    pub inhibit_rules: Vec<InhibitRuleDoc>,
    /// `receivers`.
    #[serde(default)]
    pub receivers: Vec<Receiver>,
    /// `templates` (globs).
    #[serde(default)]
    pub templates: Vec<String>,
    /// `mute_time_intervals` (deprecated name of `time_intervals`).
    #[serde(default)]
    pub mute_time_intervals: Vec<NamedTimeIntervalDoc>,
    /// `time_intervals`.
    #[serde(default)]
    pub time_intervals: Vec<NamedTimeIntervalDoc>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `global`.
    pub global: GlobalConfig,
    /// The routing tree.
    pub route: Route,
    /// Inhibition rules.
    pub inhibit_rules: Vec<InhibitRule>,
    /// Receivers, in configuration order.
    pub receivers: Vec<Receiver>,
    /// Template files found by the globs.
    pub template_files: Vec<PathBuf>,
    /// Named time intervals.
    pub time_intervals: BTreeMap<String, Vec<TimeInterval>>,
    /// The document, for `/api/v2/status` (with defaults and secrets hidden).
    pub doc: ConfigDoc,
}

/// Where a configuration comes from, for errors.
struct Source<'a> {
    file: &'a str,
    positions: Positions,
    /// Path of the configuration inside the document (`alerting.` or empty).
    prefix: &'a str,
}

impl Source<'_> {
    fn at(&self, path: &str, msg: impl std::fmt::Display) -> String {
        format!(
            "{}:{}: {msg}",
            self.file,
            self.positions.get(&format!("{}{path}", self.prefix))
        )
    }
}

fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

fn located(file: &str, e: &serde_yaml::Error) -> String {
    match e.location() {
        Some(l) => format!("{file}:{}:{}: {}", l.line(), l.column(), strip_location(&e.to_string())),
        None => format!("{file}: {e}"),
    }
}

/// Parses an Alertmanager configuration file's text (`sextant alertmanager
/// --config.file`, or `alerting.config_file`).
pub fn parse(text: &str, file: &Path) -> Result<Config, String> {
    let name = file.display().to_string();
    let doc: ConfigDoc = if text.trim().is_empty() {
        ConfigDoc::default()
    } else {
        serde_yaml::from_str(text).map_err(|e| located(&name, &e))?
    };
    if doc.config_file.is_some() {
        return Err(format!(
            "{name}: config_file is only allowed in Sextant's `alerting` section"
        ));
    }
    let base = file.parent().unwrap_or(Path::new("."));
    build(
        doc,
        &Source {
            file: &name,
            positions: Positions::of(text),
            prefix: "",
        },
        base,
    )
}

/// Reads the `alerting` section of a Sextant configuration file (inline, or
/// `alerting: {config_file: ...}`); `None` when there is none.
pub fn parse_section(text: &str, file: &Path) -> Result<Option<Config>, String> {
    #[derive(Deserialize)]
    struct Wrapper {
        alerting: Option<ConfigDoc>,
    }
    let name = file.display().to_string();
    let w: Wrapper = serde_yaml::from_str(text).map_err(|e| located(&name, &e))?;
    let Some(doc) = w.alerting else { return Ok(None) };
    let base = file.parent().unwrap_or(Path::new("."));
    let source = Source {
        file: &name,
        positions: Positions::of(text),
        prefix: "alerting.",
    };
    if let Some(path) = &doc.config_file {
        if doc
            != (ConfigDoc {
                config_file: doc.config_file.clone(),
                ..Default::default()
            })
        {
            return Err(source.at("config_file", "config_file excludes an inline configuration"));
        }
        let path = base.join(path);
        let text =
            std::fs::read_to_string(&path).map_err(|e| source.at("config_file", format!("{}: {e}", path.display())))?;
        return parse(&text, &path).map(Some);
    }
    build(doc, &source, base).map(Some)
}

fn label_name_ok(s: &str) -> bool {
    sextant_model::is_valid_label_name(s)
}

/// Matchers of one route or inhibition side: `matchers` strings, then `match`,
/// then `match_re` (regexes stored anchored, as Alertmanager shows them).
fn side_matchers(
    src: &Source<'_>,
    path: &str,
    strings: &[String],
    exact: &BTreeMap<String, String>,
    regex: &BTreeMap<String, Option<String>>,
    names: (&str, &str, &str),
) -> Result<Vec<Matcher>, String> {
    let mut out = Vec::new();
    for (k, v) in exact {
        if !label_name_ok(k) {
            return Err(src.at(&format!("{path}{}.{k}", names.1), format!("invalid label name {k:?}")));
        }
        out.push(Matcher::new(MatchType::Equal, k, v).map_err(|e| src.at(path, e))?);
    }
    for (k, v) in regex {
        if !label_name_ok(k) {
            return Err(src.at(&format!("{path}{}.{k}", names.2), format!("invalid label name {k:?}")));
        }
        let Some(v) = v else {
            return Err(src.at(
                &format!("{path}{}.{k}", names.2),
                format!("invalid regexp value for {k:?}"),
            ));
        };
        let anchored = format!("^(?:{v})$");
        out.push(
            Matcher::new(MatchType::Regexp, k, anchored).map_err(|e| src.at(&format!("{path}{}.{k}", names.2), e))?,
        );
    }
    for (i, s) in strings.iter().enumerate() {
        out.extend(parse_matchers(s).map_err(|e| src.at(&format!("{path}{}.{i}", names.0), e))?);
    }
    Ok(out)
}

fn validate_receiver_name(src: &Source<'_>, i: usize, r: &Receiver) -> Result<(), String> {
    if r.name.is_empty() {
        return Err(src.at(&format!("receivers.{i}"), "missing name in receiver"));
    }
    Ok(())
}

fn check_url(s: &str) -> Result<(), String> {
    let u = reqwest::Url::parse(s).map_err(|_| "unsupported scheme \"\" for URL".to_owned())?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!("unsupported scheme {:?} for URL", u.scheme()));
    }
    if u.host_str().unwrap_or_default().is_empty() {
        return Err("missing host for URL".into());
    }
    Ok(())
}

fn receivers(src: &Source<'_>, doc: &mut ConfigDoc) -> Result<(), String> {
    let global = doc.global.clone().unwrap_or_default();
    let mut seen = HashSet::new();
    for (i, r) in doc.receivers.iter_mut().enumerate() {
        let at = |p: &str| format!("receivers.{i}{p}");
        validate_receiver_name(src, i, r)?;
        if !seen.insert(r.name.clone()) {
            return Err(src.at(
                &at(".name"),
                format!("notification config name {:?} is not unique", r.name),
            ));
        }
        if let Some(kind) = r.unsupported.keys().next() {
            const OTHER: [&str; 8] = [
                "email_configs",
                "pushover_configs",
                "victorops_configs",
                "sns_configs",
                "telegram_configs",
                "webex_configs",
                "discord_configs",
                "wechat_configs",
            ];
            if !OTHER.contains(&kind.as_str()) {
                return Err(src.at(&at(&format!(".{kind}")), format!("unknown field `{kind}`")));
            }
            return Err(src.at(
                &at(&format!(".{kind}")),
                format!(
                    "receiver {:?}: {kind} are not supported by Sextant (it sends webhook_configs, pagerduty_configs, opsgenie_configs and slack_configs)",
                    r.name
                ),
            ));
        }
        for (j, w) in r.webhook_configs.iter_mut().enumerate() {
            let p = at(&format!(".webhook_configs.{j}"));
            let Some(url) = &w.url else {
                return Err(src.at(&p, "missing URL in webhook config"));
            };
            check_url(url).map_err(|e| src.at(&format!("{p}.url"), e))?;
            if w.signing_secret.is_some() && w.signing_secret_file.is_some() {
                return Err(src.at(
                    &p,
                    "at most one of signing_secret & signing_secret_file must be configured",
                ));
            }
            if w.http_config.is_none() {
                w.http_config = Some(global.http_config.clone());
            }
            w.http_config
                .as_ref()
                .expect("set")
                .validate()
                .map_err(|e| src.at(&p, e))?;
        }
        for (j, p_) in r.pagerduty_configs.iter_mut().enumerate() {
            let p = at(&format!(".pagerduty_configs.{j}"));
            if p_.routing_key.is_some() && p_.routing_key_file.is_some() {
                return Err(src.at(&p, "at most one of routing_key & routing_key_file must be configured"));
            }
            if p_.service_key.is_some() && p_.service_key_file.is_some() {
                return Err(src.at(&p, "at most one of service_key & service_key_file must be configured"));
            }
            if p_.routing_key.is_none()
                && p_.routing_key_file.is_none()
                && p_.service_key.is_none()
                && p_.service_key_file.is_none()
            {
                return Err(src.at(&p, "missing service or routing key in PagerDuty config"));
            }
            for (k, v) in [
                (
                    "firing",
                    r#"{{ template "pagerduty.default.instances" .Alerts.Firing }}"#,
                ),
                (
                    "resolved",
                    r#"{{ template "pagerduty.default.instances" .Alerts.Resolved }}"#,
                ),
                ("num_firing", "{{ .Alerts.Firing | len }}"),
                ("num_resolved", "{{ .Alerts.Resolved | len }}"),
            ] {
                p_.details.entry(k.to_owned()).or_insert_with(|| v.to_owned());
            }
            if p_.source.is_empty() {
                p_.source = p_.client.clone();
            }
            if p_.url.is_none() {
                p_.url = Some(global.pagerduty_url.clone());
            }
            if p_.http_config.is_none() {
                p_.http_config = Some(global.http_config.clone());
            }
            p_.http_config
                .as_ref()
                .expect("set")
                .validate()
                .map_err(|e| src.at(&p, e))?;
        }
        for (j, o) in r.opsgenie_configs.iter_mut().enumerate() {
            let p = at(&format!(".opsgenie_configs.{j}"));
            if o.api_key.is_some() && o.api_key_file.is_some() {
                return Err(src.at(&p, "at most one of api_key & api_key_file must be configured"));
            }
            for resp in &o.responders {
                if resp.id.is_empty() && resp.username.is_empty() && resp.name.is_empty() {
                    return Err(src.at(
                        &p,
                        format!(
                            "opsGenieConfig responder {{{} {} {} {}}} has to have at least one of id, username or name specified",
                            resp.id, resp.name, resp.username, resp.kind
                        ),
                    ));
                }
                if !resp.kind.contains("{{") {
                    let k = resp.kind.to_lowercase();
                    if !matches!(k.as_str(), "team" | "teams" | "user" | "escalation" | "schedule") {
                        return Err(src.at(
                            &p,
                            format!(
                                "opsGenieConfig responder {{{} {} {} {}}} type does not match valid options ^(team|teams|user|escalation|schedule)$",
                                resp.id, resp.name, resp.username, resp.kind
                            ),
                        ));
                    }
                }
            }
            if o.api_key.is_none() && o.api_key_file.is_none() {
                if global.opsgenie_api_key.is_none() && global.opsgenie_api_key_file.is_none() {
                    return Err(src.at(&p, "no global OpsGenie API Key set either inline or in a file"));
                }
                o.api_key = global.opsgenie_api_key.clone();
                o.api_key_file = global.opsgenie_api_key_file.clone();
            }
            let mut url = o.api_url.clone().unwrap_or_else(|| global.opsgenie_api_url.clone());
            if !url.ends_with('/') {
                url.push('/');
            }
            o.api_url = Some(url);
            if o.http_config.is_none() {
                o.http_config = Some(global.http_config.clone());
            }
            o.http_config
                .as_ref()
                .expect("set")
                .validate()
                .map_err(|e| src.at(&p, e))?;
        }
        for (j, s) in r.slack_configs.iter_mut().enumerate() {
            let p = at(&format!(".slack_configs.{j}"));
            if s.api_url.is_some() && s.api_url_file.is_some() {
                return Err(src.at(&p, "at most one of api_url & api_url_file must be configured"));
            }
            for f in &s.fields {
                if f.title.is_empty() {
                    return Err(src.at(&p, "missing title in Slack field configuration"));
                }
                if f.value.is_empty() {
                    return Err(src.at(&p, "missing value in Slack field configuration"));
                }
            }
            for a in &mut s.actions {
                if a.kind.is_empty() {
                    return Err(src.at(&p, "missing type in Slack action configuration"));
                }
                if a.text.is_empty() {
                    return Err(src.at(&p, "missing text in Slack action configuration"));
                }
                if a.url.is_empty() && a.name.is_empty() {
                    return Err(src.at(&p, "missing name or url in Slack action configuration"));
                }
                if !a.url.is_empty() {
                    a.name.clear();
                    a.value.clear();
                    a.confirm = None;
                }
                if a.confirm.as_ref().is_some_and(|c| c.text.is_empty()) {
                    return Err(src.at(&p, "missing text in Slack confirmation configuration"));
                }
            }
            if s.api_url.is_none() && s.api_url_file.is_none() {
                if global.slack_api_url.is_none() && global.slack_api_url_file.is_none() {
                    return Err(src.at(&p, "no global Slack API URL set either inline or in a file"));
                }
                s.api_url = global.slack_api_url.clone();
                s.api_url_file = global.slack_api_url_file.clone();
            }
            if s.http_config.is_none() {
                s.http_config = Some(global.http_config.clone());
            }
            s.http_config
                .as_ref()
                .expect("set")
                .validate()
                .map_err(|e| src.at(&p, e))?;
        }
    }
    Ok(())
}

fn build(mut doc: ConfigDoc, src: &Source<'_>, base: &Path) -> Result<Config, String> {
    let empty = doc == ConfigDoc::default();
    let global = doc.global.clone().unwrap_or_default();
    if let Some(k) = global.unused.keys().find(|k| !UNUSED_GLOBALS.contains(&k.as_str())) {
        return Err(src.at(&format!("global.{k}"), format!("unknown field `{k}`")));
    }
    if global.slack_api_url.is_some() && global.slack_api_url_file.is_some() {
        return Err(src.at(
            "global",
            "at most one of slack_api_url & slack_api_url_file must be configured",
        ));
    }
    if global.opsgenie_api_key.is_some() && global.opsgenie_api_key_file.is_some() {
        return Err(src.at(
            "global",
            "at most one of opsgenie_api_key & opsgenie_api_key_file must be configured",
        ));
    }
    global
        .http_config
        .validate()
        .map_err(|e| src.at("global.http_config", e))?;
    doc.global = Some(global.clone());
    receivers(src, &mut doc)?;

    let Some(route_doc) = doc.route.clone() else {
        return Err(src.at(
            "",
            if empty {
                "no route provided in config"
            } else {
                "no routes provided"
            },
        ));
    };
    if route_doc.receiver.as_deref().unwrap_or("").is_empty() {
        return Err(src.at("route", "root route must specify a default receiver"));
    }
    if !route_doc.matchers.is_empty() || !route_doc.match_.is_empty() || !route_doc.match_re.is_empty() {
        return Err(src.at("route", "root route must not have any matchers"));
    }
    if !route_doc.mute_time_intervals.is_empty() {
        return Err(src.at("route", "root route must not have any mute time intervals"));
    }
    if !route_doc.active_time_intervals.is_empty() {
        return Err(src.at("route", "root route must not have any active time intervals"));
    }
    if route_doc.continue_ {
        return Err(src.at("route", "cannot have continue in root route"));
    }
    let receiver_names: HashSet<&str> = doc.receivers.iter().map(|r| r.name.as_str()).collect();
    let mut interval_names = HashSet::new();
    let mut time_intervals = BTreeMap::new();
    for (key, list) in [
        ("mute_time_intervals", &doc.mute_time_intervals),
        ("time_intervals", &doc.time_intervals),
    ] {
        for (i, ti) in list.iter().enumerate() {
            let at = format!("{key}.{i}");
            if ti.name.is_empty() {
                return Err(src.at(
                    &at,
                    if key == "mute_time_intervals" {
                        "missing name in mute time interval"
                    } else {
                        "missing name in time interval"
                    },
                ));
            }
            if !interval_names.insert(ti.name.clone()) {
                return Err(src.at(
                    &at,
                    if key == "mute_time_intervals" {
                        format!("mute time interval {:?} is not unique", ti.name)
                    } else {
                        format!("time interval {:?} is not unique", ti.name)
                    },
                ));
            }
            let intervals: Vec<TimeInterval> = ti
                .time_intervals
                .iter()
                .enumerate()
                .map(|(j, d)| TimeInterval::from_doc(d).map_err(|e| src.at(&format!("{at}.time_intervals.{j}"), e)))
                .collect::<Result<_, _>>()?;
            time_intervals.insert(ti.name.clone(), intervals);
        }
    }
    let route = build_route(src, &route_doc, None, "route", &receiver_names, &interval_names)?;

    let mut inhibit_rules = Vec::new();
    for (i, r) in doc.inhibit_rules.iter().enumerate() {
        let path = format!("inhibit_rules.{i}.");
        let source = side_matchers(
            src,
            &path,
            &r.source_matchers,
            &r.source_match,
            &r.source_match_re,
            ("source_matchers", "source_match", "source_match_re"),
        )?;
        let target = side_matchers(
            src,
            &path,
            &r.target_matchers,
            &r.target_match,
            &r.target_match_re,
            ("target_matchers", "target_match", "target_match_re"),
        )?;
        for e in &r.equal {
            if !label_name_ok(e) {
                return Err(src.at(&format!("{path}equal"), format!("{e:?} is not a valid label name")));
            }
        }
        inhibit_rules.push(InhibitRule {
            source,
            target,
            equal: r.equal.clone(),
        });
    }

    let mut template_files = Vec::new();
    for (i, pattern) in doc.templates.iter().enumerate() {
        let full = base.join(pattern);
        let paths = glob::glob(&full.to_string_lossy()).map_err(|e| {
            src.at(
                &format!("templates.{i}"),
                format!("invalid template glob {pattern:?}: {e}"),
            )
        })?;
        for p in paths.flatten() {
            template_files.push(p);
        }
    }
    Ok(Config {
        global,
        route,
        inhibit_rules,
        receivers: doc.receivers.clone(),
        template_files,
        time_intervals,
        doc,
    })
}

fn build_route(
    src: &Source<'_>,
    d: &RouteDoc,
    parent: Option<&Route>,
    path: &str,
    receivers: &HashSet<&str>,
    intervals: &HashSet<String>,
) -> Result<Route, String> {
    let matchers = side_matchers(
        src,
        &format!("{path}."),
        &d.matchers,
        &d.match_,
        &d.match_re,
        ("matchers", "match", "match_re"),
    )?;
    let mut group_by = parent.map(|p| p.group_by.clone()).unwrap_or_default();
    let mut group_by_all = parent.is_some_and(|p| p.group_by_all);
    if let Some(gb) = &d.group_by
        && !gb.is_empty()
    {
        if gb.iter().any(|l| l == "...") {
            if gb.len() > 1 {
                return Err(src.at(
                    &format!("{path}.group_by"),
                    "cannot have wildcard group_by (`...`) and other other labels at the same time",
                ));
            }
            group_by_all = true;
        } else {
            let mut seen = HashSet::new();
            for l in gb {
                if !label_name_ok(l) {
                    return Err(src.at(
                        &format!("{path}.group_by"),
                        format!("invalid label name {l:?} in group_by list"),
                    ));
                }
                if !seen.insert(l) {
                    return Err(src.at(
                        &format!("{path}.group_by"),
                        format!("duplicated label {l:?} in group_by"),
                    ));
                }
            }
            group_by = gb.clone();
            group_by_all = false;
        }
    }
    let dur = |v: Option<PromDuration>, inherited: Option<Duration>, default: u64| {
        v.map(|d| d.0).or(inherited).unwrap_or(Duration::from_secs(default))
    };
    let group_wait = dur(d.group_wait, parent.map(|p| p.group_wait), 30);
    let group_interval = dur(d.group_interval, parent.map(|p| p.group_interval), 300);
    let repeat_interval = dur(d.repeat_interval, parent.map(|p| p.repeat_interval), 4 * 3600);
    if d.group_interval.is_some_and(|g| g.0.is_zero()) {
        return Err(src.at(&format!("{path}.group_interval"), "group_interval cannot be zero"));
    }
    if d.repeat_interval.is_some_and(|g| g.0.is_zero()) {
        return Err(src.at(&format!("{path}.repeat_interval"), "repeat_interval cannot be zero"));
    }
    let receiver = d
        .receiver
        .clone()
        .filter(|r| !r.is_empty())
        .or_else(|| parent.map(|p| p.receiver.clone()))
        .unwrap_or_default();
    let mut sorted = matchers.clone();
    sorted.sort_by(Matcher::cmp_am);
    let key = match parent {
        Some(p) => format!("{}/{}", p.key, crate::matchers::format_matchers(&sorted)),
        None => crate::matchers::format_matchers(&sorted),
    };
    let escalate_after = d
        .escalate_after
        .map(|x| x.0)
        .or_else(|| parent.and_then(|p| p.escalate_after));
    let escalate_to = if d.escalate_to.is_empty() {
        parent.map(|p| p.escalate_to.clone()).unwrap_or_default()
    } else {
        d.escalate_to.clone()
    };
    if escalate_after.is_some_and(|e| e.is_zero()) {
        return Err(src.at(&format!("{path}.escalate_after"), "escalate_after cannot be zero"));
    }
    if !d.escalate_to.is_empty() && escalate_after.is_none() {
        return Err(src.at(&format!("{path}.escalate_to"), "escalate_to needs escalate_after"));
    }
    let mut route = Route {
        receiver,
        group_by,
        group_by_all,
        matchers: sorted,
        continue_: d.continue_,
        group_wait,
        group_interval,
        repeat_interval,
        mute_time_intervals: d.mute_time_intervals.clone(),
        active_time_intervals: d.active_time_intervals.clone(),
        escalate_after,
        escalate_to,
        routes: Vec::new(),
        key,
        id: 0,
    };
    for (i, child) in d.routes.iter().enumerate() {
        let c = build_route(
            src,
            child,
            Some(&route),
            &format!("{path}.routes.{i}"),
            receivers,
            intervals,
        )?;
        route.routes.push(c);
    }
    // Checked children first, as Alertmanager reports them.
    if !route.receiver.is_empty() && !receivers.contains(route.receiver.as_str()) {
        return Err(src.at(
            &format!("{path}.receiver"),
            format!("undefined receiver {:?} used in route", route.receiver),
        ));
    }
    for r in &d.escalate_to {
        if !receivers.contains(r.as_str()) {
            return Err(src.at(
                &format!("{path}.escalate_to"),
                format!("undefined receiver {r:?} used in route"),
            ));
        }
    }
    for name in d.active_time_intervals.iter().chain(&d.mute_time_intervals) {
        if !intervals.contains(name) {
            return Err(src.at(path, format!("undefined time interval {name:?} used in route")));
        }
    }
    if parent.is_none() {
        route.number(&mut 0);
    }
    Ok(route)
}

/// The configuration as `/api/v2/status` shows it: YAML with the defaults filled in
/// and secrets as `<secret>`, which Alertmanager's own loader (amtool) reads back.
pub fn original(cfg: &Config) -> String {
    use serde_yaml::{Mapping, Value};
    fn s(v: &str) -> Value {
        Value::String(v.to_owned())
    }
    fn dur(d: Duration) -> Value {
        s(&sextant_model::time::format_duration(d))
    }
    fn http(h: &Option<HttpConfig>) -> Value {
        let h = h.clone().unwrap_or_default();
        let mut m = Mapping::new();
        if let Some(b) = &h.basic_auth {
            let mut bm = Mapping::new();
            bm.insert(s("username"), s(&b.username));
            if b.password.is_some() {
                bm.insert(s("password"), s("<secret>"));
            }
            if let Some(f) = &b.password_file {
                bm.insert(s("password_file"), s(&f.display().to_string()));
            }
            m.insert(s("basic_auth"), Value::Mapping(bm));
        }
        if let Some(a) = h.effective_authorization() {
            let mut am = Mapping::new();
            am.insert(s("type"), s(a.kind.as_deref().unwrap_or("Bearer")));
            if a.credentials.is_some() {
                am.insert(s("credentials"), s("<secret>"));
            }
            if let Some(f) = &a.credentials_file {
                am.insert(s("credentials_file"), s(&f.display().to_string()));
            }
            m.insert(s("authorization"), Value::Mapping(am));
        }
        if let Some(p) = &h.proxy_url {
            m.insert(s("proxy_url"), s(p.0.as_str()));
        }
        m.insert(s("follow_redirects"), Value::Bool(h.follow_redirects));
        m.insert(s("enable_http2"), Value::Bool(h.enable_http2));
        Value::Mapping(m)
    }
    fn route(r: &RouteDoc, root: bool) -> Value {
        let mut m = Mapping::new();
        if let Some(rcv) = &r.receiver {
            m.insert(s("receiver"), s(rcv));
        }
        if let Some(g) = &r.group_by {
            m.insert(s("group_by"), Value::Sequence(g.iter().map(|x| s(x)).collect()));
        }
        if !r.match_.is_empty() {
            let mm: Mapping = r.match_.iter().map(|(k, v)| (s(k), s(v))).collect();
            m.insert(s("match"), Value::Mapping(mm));
        }
        if !r.match_re.is_empty() {
            let mm: Mapping = r
                .match_re
                .iter()
                .map(|(k, v)| (s(k), s(v.as_deref().unwrap_or(""))))
                .collect();
            m.insert(s("match_re"), Value::Mapping(mm));
        }
        if !r.matchers.is_empty() {
            let ms: Vec<Value> = r
                .matchers
                .iter()
                .flat_map(|x| parse_matchers(x).unwrap_or_default())
                .map(|x| s(&x.to_string()))
                .collect();
            m.insert(s("matchers"), Value::Sequence(ms));
        }
        if !r.mute_time_intervals.is_empty() {
            m.insert(
                s("mute_time_intervals"),
                Value::Sequence(r.mute_time_intervals.iter().map(|x| s(x)).collect()),
            );
        }
        if !r.active_time_intervals.is_empty() {
            m.insert(
                s("active_time_intervals"),
                Value::Sequence(r.active_time_intervals.iter().map(|x| s(x)).collect()),
            );
        }
        m.insert(s("continue"), Value::Bool(r.continue_));
        if !r.routes.is_empty() {
            m.insert(
                s("routes"),
                Value::Sequence(r.routes.iter().map(|c| route(c, false)).collect()),
            );
        }
        for (k, v) in [
            ("group_wait", r.group_wait),
            ("group_interval", r.group_interval),
            ("repeat_interval", r.repeat_interval),
        ] {
            match v {
                Some(d) => {
                    m.insert(s(k), dur(d.0));
                }
                None if root => {
                    let def = match k {
                        "group_wait" => 30,
                        "group_interval" => 300,
                        _ => 14_400,
                    };
                    m.insert(s(k), dur(Duration::from_secs(def)));
                }
                None => {}
            }
        }
        Value::Mapping(m)
    }
    let mut top = Mapping::new();
    let g = &cfg.global;
    let mut gm = Mapping::new();
    gm.insert(s("resolve_timeout"), dur(g.resolve_timeout.0));
    gm.insert(s("http_config"), http(&Some(g.http_config.clone())));
    if g.slack_api_url.is_some() {
        gm.insert(s("slack_api_url"), s("<secret>"));
    }
    gm.insert(s("pagerduty_url"), s(&g.pagerduty_url));
    gm.insert(s("opsgenie_api_url"), s(&g.opsgenie_api_url));
    if g.opsgenie_api_key.is_some() {
        gm.insert(s("opsgenie_api_key"), s("<secret>"));
    }
    top.insert(s("global"), Value::Mapping(gm));
    if let Some(r) = &cfg.doc.route {
        top.insert(s("route"), route(r, true));
    }
    if !cfg.doc.inhibit_rules.is_empty() {
        let rules: Vec<Value> = cfg
            .inhibit_rules
            .iter()
            .map(|r| {
                let mut m = Mapping::new();
                let list = |ms: &[Matcher]| Value::Sequence(ms.iter().map(|x| s(&x.to_string())).collect());
                m.insert(s("source_matchers"), list(&r.source));
                m.insert(s("target_matchers"), list(&r.target));
                if !r.equal.is_empty() {
                    m.insert(s("equal"), Value::Sequence(r.equal.iter().map(|x| s(x)).collect()));
                }
                Value::Mapping(m)
            })
            .collect();
        top.insert(s("inhibit_rules"), Value::Sequence(rules));
    }
    let receivers: Vec<Value> = cfg
        .receivers
        .iter()
        .map(|r| {
            let mut m = Mapping::new();
            m.insert(s("name"), s(&r.name));
            if !r.webhook_configs.is_empty() {
                let v: Vec<Value> = r
                    .webhook_configs
                    .iter()
                    .map(|w| {
                        let mut wm = Mapping::new();
                        wm.insert(s("send_resolved"), Value::Bool(w.send_resolved));
                        wm.insert(s("http_config"), http(&w.http_config));
                        wm.insert(s("url"), s(w.url.as_deref().unwrap_or("")));
                        wm.insert(s("max_alerts"), Value::Number(w.max_alerts.into()));
                        Value::Mapping(wm)
                    })
                    .collect();
                m.insert(s("webhook_configs"), Value::Sequence(v));
            }
            if !r.pagerduty_configs.is_empty() {
                let v: Vec<Value> = r
                    .pagerduty_configs
                    .iter()
                    .map(|p| {
                        let mut pm = Mapping::new();
                        pm.insert(s("send_resolved"), Value::Bool(p.send_resolved));
                        pm.insert(s("http_config"), http(&p.http_config));
                        if p.routing_key.is_some() {
                            pm.insert(s("routing_key"), s("<secret>"));
                        }
                        if p.service_key.is_some() {
                            pm.insert(s("service_key"), s("<secret>"));
                        }
                        pm.insert(s("url"), s(p.url.as_deref().unwrap_or("")));
                        pm.insert(s("client"), s(&p.client));
                        pm.insert(s("client_url"), s(&p.client_url));
                        pm.insert(s("description"), s(&p.description));
                        let details: Mapping = p.details.iter().map(|(k, v)| (s(k), s(v))).collect();
                        pm.insert(s("details"), Value::Mapping(details));
                        pm.insert(s("source"), s(&p.source));
                        for (k, v) in [
                            ("severity", &p.severity),
                            ("class", &p.class),
                            ("component", &p.component),
                            ("group", &p.group),
                        ] {
                            if !v.is_empty() {
                                pm.insert(s(k), s(v));
                            }
                        }
                        Value::Mapping(pm)
                    })
                    .collect();
                m.insert(s("pagerduty_configs"), Value::Sequence(v));
            }
            if !r.opsgenie_configs.is_empty() {
                let v: Vec<Value> = r
                    .opsgenie_configs
                    .iter()
                    .map(|o| {
                        let mut om = Mapping::new();
                        om.insert(s("send_resolved"), Value::Bool(o.send_resolved));
                        om.insert(s("http_config"), http(&o.http_config));
                        if o.api_key.is_some() {
                            om.insert(s("api_key"), s("<secret>"));
                        }
                        om.insert(s("api_url"), s(o.api_url.as_deref().unwrap_or("")));
                        om.insert(s("message"), s(&o.message));
                        om.insert(s("description"), s(&o.description));
                        om.insert(s("source"), s(&o.source));
                        Value::Mapping(om)
                    })
                    .collect();
                m.insert(s("opsgenie_configs"), Value::Sequence(v));
            }
            if !r.slack_configs.is_empty() {
                let v: Vec<Value> = r
                    .slack_configs
                    .iter()
                    .map(|c| {
                        let mut sm = Mapping::new();
                        sm.insert(s("send_resolved"), Value::Bool(c.send_resolved));
                        sm.insert(s("http_config"), http(&c.http_config));
                        sm.insert(s("api_url"), s("<secret>"));
                        if !c.channel.is_empty() {
                            sm.insert(s("channel"), s(&c.channel));
                        }
                        sm.insert(s("username"), s(&c.username));
                        sm.insert(s("color"), s(&c.color));
                        sm.insert(s("title"), s(&c.title));
                        sm.insert(s("title_link"), s(&c.title_link));
                        sm.insert(s("text"), s(&c.text));
                        Value::Mapping(sm)
                    })
                    .collect();
                m.insert(s("slack_configs"), Value::Sequence(v));
            }
            Value::Mapping(m)
        })
        .collect();
    top.insert(s("receivers"), Value::Sequence(receivers));
    top.insert(
        s("templates"),
        Value::Sequence(cfg.doc.templates.iter().map(|t| s(t)).collect()),
    );
    if !cfg.doc.time_intervals.is_empty() || !cfg.doc.mute_time_intervals.is_empty() {
        let all: Vec<Value> = cfg
            .doc
            .mute_time_intervals
            .iter()
            .chain(&cfg.doc.time_intervals)
            .map(|t| serde_yaml::to_value(t).unwrap_or(Value::Null))
            .collect();
        top.insert(s("time_intervals"), Value::Sequence(all));
    }
    serde_yaml::to_string(&Value::Mapping(top)).unwrap_or_default()
}

impl Serialize for NamedTimeIntervalDoc {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("name", &self.name)?;
        m.serialize_entry("time_intervals", &self.time_intervals)?;
        m.end()
    }
}

#[cfg(test)]
mod tests;
