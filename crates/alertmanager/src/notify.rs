//! Integrations: how a notification reaches a webhook, PagerDuty (Events API v2 and
//! v1), OpsGenie or Slack, with Alertmanager 0.25's payloads, which HTTP answers
//! are retried, and Sextant's webhook signatures.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use sextant_collect::http_client::{ClientSettings, JobClient, build};

use crate::config::{HttpConfig, OpsgenieConfig, PagerdutyConfig, Receiver, SlackConfig, WebhookConfig};
use crate::template::{Data, Templates};

/// The `User-Agent` of notifications.
const USER_AGENT: &str = concat!(
    "Sextant/",
    env!("CARGO_PKG_VERSION"),
    " (Alertmanager/0.25.0 compatible)"
);

/// Why a notification failed, and whether trying again may help.
#[derive(Debug, Clone)]
pub struct NotifyError {
    /// Retry (5xx, some 4xx, transport errors) or give up.
    pub retry: bool,
    /// What happened.
    pub message: String,
}

impl NotifyError {
    fn permanent(m: impl Into<String>) -> Self {
        Self {
            retry: false,
            message: m.into(),
        }
    }

    fn transient(m: impl Into<String>) -> Self {
        Self {
            retry: true,
            message: m.into(),
        }
    }
}

/// Alertmanager's `Retrier.Check`: 2xx is success; 5xx and the integration's extra
/// codes are retried; anything else fails for good.
pub fn check_status(code: u16, details: &str, retry_codes: &[u16]) -> Result<(), NotifyError> {
    if (200..300).contains(&code) {
        return Ok(());
    }
    let message = if details.is_empty() {
        format!("unexpected status code {code}")
    } else {
        format!("unexpected status code {code}: {details}")
    };
    Err(NotifyError {
        retry: code >= 500 || retry_codes.contains(&code),
        message,
    })
}

/// Truncates to `n` characters, ending in `…` when cut (Alertmanager's
/// `TruncateInRunes`); returns whether it cut.
pub fn truncate_runes(s: &str, n: usize) -> (String, bool) {
    let count = s.chars().count();
    if count <= n {
        return (s.to_owned(), false);
    }
    if n <= 3 {
        return (s.chars().take(n).collect(), true);
    }
    let mut out: String = s.chars().take(n - 1).collect();
    out.push('…');
    (out, true)
}

pub use sextant_model::signature::{hmac_sha256, sha256_hex, webhook_signature};

fn secret(
    inline: Option<&crate::config::Secret>,
    file: Option<&std::path::PathBuf>,
    trim: bool,
) -> Result<String, NotifyError> {
    match (inline, file) {
        (Some(s), _) => Ok(s.0.clone()),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map(|s| if trim { s.trim().to_owned() } else { s })
            .map_err(|e| NotifyError::permanent(format!("reading {}: {e}", f.display()))),
        (None, None) => Ok(String::new()),
    }
}

/// One integration of a receiver, with its HTTP client.
pub struct Integration {
    /// `webhook`, `pagerduty`, `opsgenie`, `slack`.
    pub kind: &'static str,
    /// Position among the receiver's integrations of that kind.
    pub index: usize,
    /// Whether resolved alerts are sent.
    pub send_resolved: bool,
    config: IntegrationConfig,
    client: JobClient,
}

enum IntegrationConfig {
    Webhook(WebhookConfig),
    Pagerduty(PagerdutyConfig),
    Opsgenie(OpsgenieConfig),
    Slack(SlackConfig),
}

fn client(h: &Option<HttpConfig>, what: &str) -> Result<JobClient, String> {
    let h = h.clone().unwrap_or_default();
    let authorization = h.effective_authorization();
    build(
        ClientSettings {
            tls: &h.tls_config,
            proxy: h.proxy_url.as_ref(),
            follow_redirects: h.follow_redirects,
            http2: h.enable_http2,
            basic_auth: h.basic_auth.as_ref(),
            authorization: authorization.as_ref(),
            oauth2: h.oauth2.as_ref(),
        },
        what,
    )
}

/// The integrations of a receiver, in Alertmanager's order.
pub fn integrations(r: &Receiver) -> Result<Vec<Integration>, String> {
    let mut out = Vec::new();
    for (i, c) in r.webhook_configs.iter().enumerate() {
        out.push(Integration {
            kind: "webhook",
            index: i,
            send_resolved: c.send_resolved,
            client: client(&c.http_config, &format!("receiver {:?}", r.name))?,
            config: IntegrationConfig::Webhook(c.clone()),
        });
    }
    for (i, c) in r.pagerduty_configs.iter().enumerate() {
        out.push(Integration {
            kind: "pagerduty",
            index: i,
            send_resolved: c.send_resolved,
            client: client(&c.http_config, &format!("receiver {:?}", r.name))?,
            config: IntegrationConfig::Pagerduty(c.clone()),
        });
    }
    for (i, c) in r.opsgenie_configs.iter().enumerate() {
        out.push(Integration {
            kind: "opsgenie",
            index: i,
            send_resolved: c.send_resolved,
            client: client(&c.http_config, &format!("receiver {:?}", r.name))?,
            config: IntegrationConfig::Opsgenie(c.clone()),
        });
    }
    for (i, c) in r.slack_configs.iter().enumerate() {
        out.push(Integration {
            kind: "slack",
            index: i,
            send_resolved: c.send_resolved,
            client: client(&c.http_config, &format!("receiver {:?}", r.name))?,
            config: IntegrationConfig::Slack(c.clone()),
        });
    }
    Ok(out)
}

/// Go's RFC 3339 with nanoseconds, trailing zeros trimmed (how Alertmanager's JSON
/// writes times).
fn go_time(t: &sextant_template::GoTime) -> String {
    t.format("2006-01-02T15:04:05.999999999Z07:00")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookAlert<'a> {
    status: &'a str,
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
    fingerprint: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookMessage<'a> {
    receiver: &'a str,
    status: &'a str,
    alerts: Vec<WebhookAlert<'a>>,
    group_labels: &'a BTreeMap<String, String>,
    common_labels: &'a BTreeMap<String, String>,
    common_annotations: &'a BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    version: &'a str,
    group_key: &'a str,
    truncated_alerts: u64,
}

/// The webhook body (Alertmanager's JSON, `version: "4"`).
pub fn webhook_body(data: &Data, group_key: &str, truncated: u64) -> Vec<u8> {
    let msg = WebhookMessage {
        receiver: &data.receiver,
        status: data.status,
        alerts: data
            .alerts
            .iter()
            .map(|a| WebhookAlert {
                status: a.status,
                labels: &a.labels.0,
                annotations: &a.annotations.0,
                starts_at: go_time(&a.starts_at),
                ends_at: go_time(&a.ends_at),
                generator_url: &a.generator_url,
                fingerprint: &a.fingerprint,
            })
            .collect(),
        group_labels: &data.group_labels.0,
        common_labels: &data.common_labels.0,
        common_annotations: &data.common_annotations.0,
        external_url: &data.external_url,
        version: "4",
        group_key,
        truncated_alerts: truncated,
    };
    let mut body = serde_json::to_vec(&msg).expect("serializable");
    body.push(b'\n');
    body
}

impl Integration {
    /// Sends one notification. `data` holds the alerts to send (already without
    /// resolved ones when the integration does not send them), `group_key` is the
    /// group's key, `timeout` bounds each HTTP request.
    pub async fn notify(
        &self,
        templates: &Templates,
        data: &Data,
        group_key: &str,
        timeout: Duration,
    ) -> Result<(), NotifyError> {
        let render = |t: &str| templates.render(t, data).map_err(NotifyError::permanent);
        match &self.config {
            IntegrationConfig::Webhook(c) => {
                let url = c.url.clone().unwrap_or_default();
                let mut data = data.clone();
                let mut truncated = 0;
                if c.max_alerts > 0 && data.alerts.len() as u64 > c.max_alerts {
                    truncated = data.alerts.len() as u64 - c.max_alerts;
                    let kept: Vec<_> = data.alerts[..c.max_alerts as usize].to_vec();
                    // Status and common labels come from the alerts actually sent.
                    data.status = if kept.iter().any(|a| a.status == "firing") {
                        "firing"
                    } else {
                        "resolved"
                    };
                    data.common_labels = common_kv(kept.iter().map(|a| &a.labels.0));
                    data.common_annotations = common_kv(kept.iter().map(|a| &a.annotations.0));
                    data.alerts = kept;
                }
                let body = webhook_body(&data, group_key, truncated);
                let mut req = self
                    .client
                    .http
                    .post(&url)
                    .timeout(timeout)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(reqwest::header::USER_AGENT, USER_AGENT);
                let key = secret(c.signing_secret.as_ref(), c.signing_secret_file.as_ref(), true)?;
                if !key.is_empty() {
                    let now = sextant_model::time::now_ms().div_euclid(1000);
                    req = req.header("X-Sextant-Signature", webhook_signature(key.as_bytes(), now, &body));
                }
                let req = self.client.authorize(req).await.map_err(NotifyError::permanent)?;
                let resp = req
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| NotifyError::transient(format!("{url}: {e}")))?;
                let code = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                let details = if text.is_empty() {
                    url.clone()
                } else {
                    format!("{url}: {text}")
                };
                check_status(code, if (200..300).contains(&code) { "" } else { &details }, &[])
            }
            IntegrationConfig::Pagerduty(c) => {
                let dedup = sha256_hex(group_key.as_bytes());
                let resolve = data.status == "resolved";
                let (summary, _) = truncate_runes(&render(&c.description)?, 1024);
                let v1 = c.service_key.is_some() || c.service_key_file.is_some();
                let details = templates.render_map(&c.details, data).map_err(NotifyError::permanent)?;
                let (url, body, retry) = if v1 {
                    let key = secret(c.service_key.as_ref(), c.service_key_file.as_ref(), true)?;
                    let mut m = serde_json::Map::new();
                    m.insert("service_key".into(), key.into());
                    m.insert("event_type".into(), if resolve { "resolve" } else { "trigger" }.into());
                    m.insert("incident_key".into(), dedup.into());
                    m.insert("description".into(), summary.into());
                    m.insert("details".into(), serde_json::to_value(&details).expect("map"));
                    if !resolve {
                        m.insert("client".into(), render(&c.client)?.into());
                        m.insert("client_url".into(), render(&c.client_url)?.into());
                    }
                    (
                        "https://events.pagerduty.com/generic/2010-04-15/create_event.json".to_owned(),
                        serde_json::Value::Object(m),
                        &[403u16][..],
                    )
                } else {
                    let key = render(&secret(c.routing_key.as_ref(), c.routing_key_file.as_ref(), true)?)?;
                    if key.is_empty() {
                        return Err(NotifyError::permanent("routing key cannot be empty"));
                    }
                    let mut payload = serde_json::Map::new();
                    payload.insert("summary".into(), summary.into());
                    payload.insert("source".into(), render(&c.source)?.into());
                    let severity = render(&c.severity)?;
                    payload.insert(
                        "severity".into(),
                        if severity.is_empty() { "error".into() } else { severity }.into(),
                    );
                    for (k, t) in [("class", &c.class), ("component", &c.component), ("group", &c.group)] {
                        let v = render(t)?;
                        if !v.is_empty() {
                            payload.insert(k.into(), v.into());
                        }
                    }
                    if !details.is_empty() {
                        payload.insert("custom_details".into(), serde_json::to_value(&details).expect("map"));
                    }
                    let mut m = serde_json::Map::new();
                    m.insert("routing_key".into(), key.into());
                    m.insert("dedup_key".into(), dedup.into());
                    m.insert(
                        "event_action".into(),
                        if resolve { "resolve" } else { "trigger" }.into(),
                    );
                    m.insert("payload".into(), serde_json::Value::Object(payload));
                    m.insert("client".into(), render(&c.client)?.into());
                    m.insert("client_url".into(), render(&c.client_url)?.into());
                    let links: Vec<serde_json::Value> = c
                        .links
                        .iter()
                        .filter_map(|l| {
                            let href = render(&l.href).ok()?;
                            (!href.is_empty())
                                .then(|| serde_json::json!({"href": href, "text": render(&l.text).unwrap_or_default()}))
                        })
                        .collect();
                    if !links.is_empty() {
                        m.insert("links".into(), links.into());
                    }
                    let images: Vec<serde_json::Value> = c
                        .images
                        .iter()
                        .filter_map(|i| {
                            let src = render(&i.src).ok()?;
                            (!src.is_empty()).then(|| {
                                serde_json::json!({"src": src, "alt": render(&i.alt).unwrap_or_default(), "href": render(&i.href).unwrap_or_default()})
                            })
                        })
                        .collect();
                    if !images.is_empty() {
                        m.insert("images".into(), images.into());
                    }
                    (
                        c.url.clone().unwrap_or_default(),
                        serde_json::Value::Object(m),
                        &[429u16][..],
                    )
                };
                let mut bytes = serde_json::to_vec(&body).expect("json");
                if bytes.len() > 512_000
                    && let serde_json::Value::Object(mut m) = body
                {
                    let note = serde_json::json!({"error": "Custom details have been removed because the original event exceeds the maximum size of 512kB"});
                    if let Some(serde_json::Value::Object(p)) = m.get_mut("payload") {
                        p.insert("custom_details".into(), note);
                    } else {
                        m.insert("details".into(), note);
                    }
                    bytes = serde_json::to_vec(&m).expect("json");
                }
                self.post_json(&url, bytes, timeout, retry, |code, text| {
                    if code == 400 {
                        serde_json::from_str::<serde_json::Value>(text)
                            .ok()
                            .map(|v| {
                                let errors: Vec<String> = v["errors"]
                                    .as_array()
                                    .map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_owned)).collect())
                                    .unwrap_or_default();
                                format!("{}: {}", v["message"].as_str().unwrap_or_default(), errors.join(","))
                            })
                            .unwrap_or_default()
                    } else {
                        String::new()
                    }
                })
                .await
            }
            IntegrationConfig::Opsgenie(c) => {
                let alias = sha256_hex(group_key.as_bytes());
                let key = render(&secret(c.api_key.as_ref(), c.api_key_file.as_ref(), false)?)?;
                let base = c.api_url.clone().unwrap_or_default();
                let auth = format!("GenieKey {key}");
                if data.status == "resolved" {
                    let url = format!("{base}v2/alerts/{alias}/close?identifierType=alias");
                    let body = serde_json::to_vec(&serde_json::json!({"source": render(&c.source)?})).expect("json");
                    return self.post_json_auth(&url, body, timeout, &auth).await;
                }
                let (message, _) = truncate_runes(&render(&c.message)?, 130);
                let mut details: BTreeMap<String, String> = data.common_labels.0.clone();
                details.extend(templates.render_map(&c.details, data).map_err(NotifyError::permanent)?);
                let mut m = serde_json::Map::new();
                m.insert("alias".into(), alias.clone().into());
                m.insert("message".into(), message.clone().into());
                let description = render(&c.description)?;
                if !description.is_empty() {
                    m.insert("description".into(), description.clone().into());
                }
                m.insert("details".into(), serde_json::to_value(&details).expect("map"));
                m.insert("source".into(), render(&c.source)?.into());
                let mut responders = Vec::new();
                for r in &c.responders {
                    let (id, name, username, kind) =
                        (render(&r.id)?, render(&r.name)?, render(&r.username)?, render(&r.kind)?);
                    if id.is_empty() && name.is_empty() && username.is_empty() {
                        continue;
                    }
                    if kind == "teams" {
                        for team in name.split(',') {
                            responders.push(serde_json::json!({"name": team, "type": "team"}));
                        }
                        continue;
                    }
                    let mut o = serde_json::Map::new();
                    for (k, v) in [("id", id), ("name", name), ("username", username)] {
                        if !v.is_empty() {
                            o.insert(k.into(), v.into());
                        }
                    }
                    o.insert("type".into(), kind.into());
                    responders.push(serde_json::Value::Object(o));
                }
                if !responders.is_empty() {
                    m.insert("responders".into(), responders.into());
                }
                let split =
                    |s: String| -> Vec<String> { s.split(',').filter(|x| !x.is_empty()).map(str::to_owned).collect() };
                let tags = split(render(&c.tags)?);
                if !tags.is_empty() {
                    m.insert("tags".into(), tags.into());
                }
                let actions = split(render(&c.actions)?);
                if !actions.is_empty() {
                    m.insert("actions".into(), actions.into());
                }
                for (k, t) in [("note", &c.note), ("priority", &c.priority), ("entity", &c.entity)] {
                    let v = render(t)?;
                    if !v.is_empty() {
                        m.insert(k.into(), v.into());
                    }
                }
                let body = serde_json::to_vec(&serde_json::Value::Object(m)).expect("json");
                self.post_json_auth(&format!("{base}v2/alerts"), body, timeout, &auth)
                    .await?;
                if c.update_alerts {
                    let put = |path: &str, body: serde_json::Value| {
                        let url = format!("{base}v2/alerts/{alias}/{path}?identifierType=alias");
                        let req = self
                            .client
                            .http
                            .put(url)
                            .timeout(timeout)
                            .header(reqwest::header::AUTHORIZATION, auth.clone())
                            .header(reqwest::header::CONTENT_TYPE, "application/json")
                            .body(serde_json::to_vec(&body).expect("json"));
                        async move {
                            let resp = req.send().await.map_err(|e| NotifyError::transient(e.to_string()))?;
                            let code = resp.status().as_u16();
                            let text = resp.text().await.unwrap_or_default();
                            check_status(code, &text, &[429])
                        }
                    };
                    put("message", serde_json::json!({"message": message})).await?;
                    put("description", serde_json::json!({"description": description})).await?;
                }
                Ok(())
            }
            IntegrationConfig::Slack(c) => {
                let url = secret(c.api_url.as_ref(), c.api_url_file.as_ref(), true)?;
                let (title, _) = truncate_runes(&render(&c.title)?, 1024);
                let mut att = serde_json::Map::new();
                let mut opt = |k: &str, v: String, always: bool| {
                    if always || !v.is_empty() {
                        att.insert(k.into(), v.into());
                    }
                };
                opt("title", title, false);
                opt("title_link", render(&c.title_link)?, false);
                opt("pretext", render(&c.pretext)?, false);
                opt("text", render(&c.text)?, true);
                opt("fallback", render(&c.fallback)?, true);
                opt("callback_id", render(&c.callback_id)?, true);
                opt("image_url", render(&c.image_url)?, false);
                opt("thumb_url", render(&c.thumb_url)?, false);
                opt("footer", render(&c.footer)?, true);
                opt("color", render(&c.color)?, false);
                let fields: Vec<serde_json::Value> = c
                    .fields
                    .iter()
                    .map(|f| {
                        Ok(serde_json::json!({
                            "title": render(&f.title)?,
                            "value": render(&f.value)?,
                            "short": f.short.unwrap_or(c.short_fields),
                        }))
                    })
                    .collect::<Result<_, NotifyError>>()?;
                if !fields.is_empty() {
                    att.insert("fields".into(), fields.into());
                }
                let actions: Vec<serde_json::Value> = c
                    .actions
                    .iter()
                    .map(|a| {
                        let mut o = serde_json::Map::new();
                        o.insert("type".into(), render(&a.kind)?.into());
                        o.insert("text".into(), render(&a.text)?.into());
                        for (k, v) in [
                            ("url", &a.url),
                            ("style", &a.style),
                            ("name", &a.name),
                            ("value", &a.value),
                        ] {
                            let v = render(v)?;
                            if !v.is_empty() {
                                o.insert(k.into(), v.into());
                            }
                        }
                        if let Some(cf) = &a.confirm {
                            o.insert("confirm".into(), serde_json::to_value(cf).expect("confirm"));
                        }
                        Ok(serde_json::Value::Object(o))
                    })
                    .collect::<Result<_, NotifyError>>()?;
                if !actions.is_empty() {
                    att.insert("actions".into(), actions.into());
                }
                let mrkdwn = if c.mrkdwn_in.is_empty() {
                    vec!["fallback".to_owned(), "pretext".to_owned(), "text".to_owned()]
                } else {
                    c.mrkdwn_in.clone()
                };
                att.insert("mrkdwn_in".into(), mrkdwn.into());
                let mut m = serde_json::Map::new();
                let channel = render(&c.channel)?;
                for (k, v) in [
                    ("channel", channel.clone()),
                    ("username", render(&c.username)?),
                    ("icon_emoji", render(&c.icon_emoji)?),
                    ("icon_url", render(&c.icon_url)?),
                ] {
                    if !v.is_empty() {
                        m.insert(k.into(), v.into());
                    }
                }
                if c.link_names {
                    m.insert("link_names".into(), true.into());
                }
                m.insert("attachments".into(), vec![serde_json::Value::Object(att)].into());
                let body = serde_json::to_vec(&serde_json::Value::Object(m)).expect("json");
                let resp = self
                    .client
                    .authorize(
                        self.client
                            .http
                            .post(&url)
                            .timeout(timeout)
                            .header(reqwest::header::CONTENT_TYPE, "application/json")
                            .header(reqwest::header::USER_AGENT, USER_AGENT),
                    )
                    .await
                    .map_err(NotifyError::permanent)?
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| NotifyError::transient(e.to_string()))?;
                let code = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                check_status(code, &text, &[]).map_err(|mut e| {
                    e.message = format!("channel {channel:?}: {}", e.message);
                    e
                })
            }
        }
    }

    async fn post_json(
        &self,
        url: &str,
        body: Vec<u8>,
        timeout: Duration,
        retry: &[u16],
        details: impl Fn(u16, &str) -> String,
    ) -> Result<(), NotifyError> {
        let req = self
            .client
            .http
            .post(url)
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::USER_AGENT, USER_AGENT);
        let req = self.client.authorize(req).await.map_err(NotifyError::permanent)?;
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| NotifyError::transient(e.to_string()))?;
        let code = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        check_status(code, &details(code, &text), retry)
    }

    async fn post_json_auth(&self, url: &str, body: Vec<u8>, timeout: Duration, auth: &str) -> Result<(), NotifyError> {
        let resp = self
            .client
            .http
            .post(url)
            .timeout(timeout)
            .header(reqwest::header::AUTHORIZATION, auth)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::USER_AGENT, USER_AGENT)
            .body(body)
            .send()
            .await
            .map_err(|e| NotifyError::transient(e.to_string()))?;
        let code = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        check_status(code, &text, &[429])
    }
}

fn common_kv<'a>(mut maps: impl Iterator<Item = &'a BTreeMap<String, String>>) -> crate::template::Kv {
    let Some(first) = maps.next() else {
        return crate::template::Kv::default();
    };
    let mut acc = first.clone();
    for m in maps {
        acc.retain(|k, v| m.get(k) == Some(v));
    }
    crate::template::Kv(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `notify/util_test.go`, `TestTruncate` (runes) and `TestRetrierCheck`.
    #[test]
    fn truncation_and_status_checks() {
        for (s, n, want, cut) in [
            ("", 5, "", false),
            ("abcde", 2, "ab", true),
            ("abcde", 4, "abc…", true),
            ("abcde", 5, "abcde", false),
            ("abcdefgh", 5, "abcd…", true),
            ("a⌘cde", 5, "a⌘cde", false),
            ("a⌘cdef", 5, "a⌘cd…", true),
            ("世界cdef", 3, "世界c", true),
        ] {
            assert_eq!(truncate_runes(s, n), (want.to_owned(), cut), "{s} {n}");
        }
        assert!(check_status(200, "", &[]).is_ok());
        assert!(check_status(204, "", &[]).is_ok());
        let e = check_status(400, "", &[]).unwrap_err();
        assert_eq!((e.retry, e.message.as_str()), (false, "unexpected status code 400"));
        let e = check_status(400, "invalid request", &[429]).unwrap_err();
        assert_eq!(
            (e.retry, e.message.as_str()),
            (false, "unexpected status code 400: invalid request")
        );
        assert!(check_status(429, "", &[429]).unwrap_err().retry);
        let e = check_status(503, "retry later", &[]).unwrap_err();
        assert_eq!(
            (e.retry, e.message.as_str()),
            (true, "unexpected status code 503: retry later")
        );
    }

    #[test]
    fn signatures_and_dedup_keys() {
        use sextant_model::signature::hex;
        // RFC 4231, test case 2.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            webhook_signature(b"k", 1700000000, b"{}"),
            format!("t=1700000000,v1={}", hex(&hmac_sha256(b"k", b"1700000000.{}")))
        );
        // The group key Alertmanager was seen to hash into this dedup_key.
        assert_eq!(
            sha256_hex(br#"{}/{kind="pd"}:{alertname="P"}"#),
            "e151593d0c3fa68ed761268f392ee34afe5a471475d5b03ec7960e9ab5f26582"
        );
    }
}
