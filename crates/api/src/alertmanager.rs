//! Alertmanager 0.25's HTTP API (`/api/v2/...`, and `POST /api/v1/alerts` for
//! older Prometheus servers), with its JSON shapes, status codes and error bodies,
//! so Prometheus servers, `amtool` and Grafana talk to Sextant as to Alertmanager;
//! plus Sextant's incidents and acknowledgements under `/api/sextant/v1`.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use sextant_alertmanager::matchers::{MatchType, Matcher, parse_matcher};
use sextant_alertmanager::silence::Silence;
use sextant_alertmanager::state::Incident;
use sextant_alertmanager::{AckError, Alertmanager, PostError, SilenceError};
use sextant_model::time::format_rfc3339;
use sextant_model::{Labels, PostableAlert};

use crate::auth::Identity;
use crate::error::{AmError, success};

/// What the Alertmanager API needs.
#[derive(Clone)]
pub struct AlertmanagerApi {
    /// The router.
    pub am: Alertmanager,
}

/// Who is calling (set by the auth layer when `server.auth` is configured).
type Caller = Option<axum::Extension<Identity>>;

fn caller(c: &Caller) -> Option<String> {
    c.as_ref().map(|axum::Extension(i)| i.name.clone())
}

/// The Alertmanager-compatible routes and Sextant's incident routes, under
/// `prefix` (Alertmanager's `--web.route-prefix`; empty for none). With
/// `v1_get`, `GET /api/v1/alerts` is Alertmanager's (drop-in mode); otherwise it
/// is Prometheus' and served elsewhere.
pub fn router(api: AlertmanagerApi, prefix: &str) -> Router {
    let r = Router::new()
        .route("/api/v2/alerts", get(get_alerts).post(post_alerts))
        .route("/api/v2/alerts/groups", get(get_groups))
        .route("/api/v2/silences", get(get_silences).post(post_silence))
        .route("/api/v2/silence/{id}", get(get_silence).delete(delete_silence))
        .route("/api/v2/status", get(status))
        .route("/api/v2/receivers", get(receivers))
        .route("/api/v1/alerts", post(post_alerts_v1))
        .route("/api/sextant/v1/incidents", get(list_incidents))
        .route("/api/sextant/v1/incidents/{id}", get(get_incident))
        .route("/api/sextant/v1/incidents/{id}/ack", post(ack_incident))
        .route("/api/sextant/v1/alerts/groups/ack", post(ack_group))
        .route("/api/sextant/v1/receivers", get(receiver_status))
        .with_state(api);
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        r
    } else {
        Router::new().nest(prefix, r)
    }
}

fn now_ms() -> i64 {
    sextant_model::time::now_ms()
}

/// Go-swagger's boolean parsing: these words are true, anything else false.
fn swagger_bool(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "true" | "1" | "yes" | "y" | "ok" | "on" | "t" | "enabled" | "selected" | "checked"
    )
}

/// Query parameters, repeated ones kept.
fn params(q: &Option<String>) -> Vec<(String, String)> {
    q.as_deref()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

struct AlertFilter {
    active: bool,
    silenced: bool,
    inhibited: bool,
    matchers: Vec<Matcher>,
    receiver: Option<regex::Regex>,
}

fn alert_filter(q: &Option<String>) -> Result<AlertFilter, AmError> {
    let ps = params(q);
    let flag = |name: &str| ps.iter().find(|(k, _)| k == name).is_none_or(|(_, v)| swagger_bool(v));
    let mut matchers = Vec::new();
    for (_, v) in ps.iter().filter(|(k, _)| k == "filter") {
        matchers.push(parse_matcher(v).map_err(AmError::text400)?);
    }
    let receiver = match ps.iter().find(|(k, _)| k == "receiver") {
        Some((_, r)) => Some(
            regex::Regex::new(&format!("^(?:{r})$"))
                .map_err(|e| AmError::text400(format!("failed to parse receiver param: error parsing regexp: {e}")))?,
        ),
        None => None,
    };
    Ok(AlertFilter {
        active: flag("active"),
        silenced: flag("silenced"),
        inhibited: flag("inhibited"),
        matchers,
        receiver,
    })
}

#[derive(Serialize)]
struct ReceiverJson {
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertStatusJson {
    inhibited_by: Vec<String>,
    silenced_by: Vec<String>,
    state: &'static str,
}

/// A gettable alert, in Alertmanager's key order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GettableAlert {
    annotations: BTreeMap<String, String>,
    ends_at: String,
    fingerprint: String,
    receivers: Vec<ReceiverJson>,
    starts_at: String,
    status: AlertStatusJson,
    updated_at: String,
    #[serde(rename = "generatorURL", skip_serializing_if = "String::is_empty")]
    generator_url: String,
    labels: Labels,
}

fn time_or_zero(ms: Option<i64>) -> String {
    ms.map_or_else(|| "0001-01-01T00:00:00.000Z".into(), format_rfc3339)
}

fn gettable(s: sextant_alertmanager::AlertStatus, receivers: Vec<String>) -> GettableAlert {
    let suppressed = !s.silenced_by.is_empty() || !s.inhibited_by.is_empty();
    GettableAlert {
        annotations: s.alert.annotations,
        ends_at: time_or_zero(s.alert.ends_at),
        fingerprint: s.fingerprint,
        receivers: receivers.into_iter().map(|name| ReceiverJson { name }).collect(),
        starts_at: format_rfc3339(s.alert.starts_at),
        status: AlertStatusJson {
            inhibited_by: s.inhibited_by,
            silenced_by: s.silenced_by,
            state: if suppressed { "suppressed" } else { "active" },
        },
        updated_at: format_rfc3339(s.alert.updated_at),
        generator_url: s.alert.generator_url,
        labels: s.alert.labels,
    }
}

fn keep(f: &AlertFilter, s: &sextant_alertmanager::AlertStatus, receivers: &[String]) -> bool {
    if let Some(re) = &f.receiver
        && !receivers.iter().any(|r| re.is_match(r))
    {
        return false;
    }
    let silenced = !s.silenced_by.is_empty();
    let inhibited = !s.inhibited_by.is_empty();
    if !f.active && !silenced && !inhibited {
        return false;
    }
    if !f.silenced && silenced {
        return false;
    }
    if !f.inhibited && inhibited {
        return false;
    }
    f.matchers.iter().all(|m| m.matches_labels(&s.alert.labels))
}

/// `GET /api/v2/alerts`.
async fn get_alerts(State(api): State<AlertmanagerApi>, RawQuery(q): RawQuery) -> Result<Response, AmError> {
    let f = alert_filter(&q)?;
    let out: Vec<GettableAlert> = api
        .am
        .alerts()
        .into_iter()
        .filter(|s| keep(&f, s, &s.receivers))
        .map(|s| {
            let r = s.receivers.clone();
            gettable(s, r)
        })
        .collect();
    Ok(Json(out).into_response())
}

#[derive(Serialize)]
struct GroupJson {
    alerts: Vec<GettableAlert>,
    labels: Labels,
    receiver: ReceiverJson,
}

/// `GET /api/v2/alerts/groups`.
async fn get_groups(State(api): State<AlertmanagerApi>, RawQuery(q): RawQuery) -> Result<Response, AmError> {
    let f = alert_filter(&q)?;
    let statuses: BTreeMap<String, sextant_alertmanager::AlertStatus> = api
        .am
        .alerts()
        .into_iter()
        .map(|s| (s.fingerprint.clone(), s))
        .collect();
    let groups: Vec<sextant_alertmanager::GroupStatus> = api
        .am
        .groups()
        .into_iter()
        .filter(|g| f.receiver.as_ref().is_none_or(|re| re.is_match(&g.receiver)))
        .collect();
    // Each alert lists the receivers of every group it is in.
    let mut receivers_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for g in &groups {
        for a in &g.alerts {
            let fp = sextant_alertmanager::alert::fingerprint_string(a.fingerprint());
            receivers_of.entry(fp).or_default().push(g.receiver.clone());
        }
    }
    for v in receivers_of.values_mut() {
        v.sort();
    }
    let mut out = Vec::new();
    for g in groups {
        let alerts: Vec<GettableAlert> = g
            .alerts
            .iter()
            .filter_map(|a| {
                let fp = sextant_alertmanager::alert::fingerprint_string(a.fingerprint());
                let s = statuses.get(&fp)?.clone();
                let r = receivers_of.get(&fp).cloned().unwrap_or_default();
                keep(&f, &s, &r).then(|| gettable(s, r))
            })
            .collect();
        if !alerts.is_empty() {
            out.push(GroupJson {
                alerts,
                labels: g.labels,
                receiver: ReceiverJson { name: g.receiver },
            });
        }
    }
    Ok(Json(out).into_response())
}

/// Alertmanager's accepted time forms (RFC 3339 with or without fraction and
/// zone, and a few shorter ones); Go's zero time is "not set".
fn parse_time(s: &str) -> Result<Option<i64>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    let parsed = s
        .parse::<jiff::Timestamp>()
        .ok()
        .or_else(|| {
            [
                "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%dT%H:%MZ",
                "%Y-%m-%dT%H:%M",
                "%Y-%m-%d %H:%M:%S",
            ]
            .iter()
            .find_map(|f| {
                let t = s.trim_end_matches('Z');
                jiff::civil::DateTime::strptime(f.trim_end_matches('Z'), t)
                    .ok()
                    .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
                    .map(|z| z.timestamp())
            })
        })
        .ok_or_else(|| format!("parsing time {s:?} as \"2006-01-02 15:04:05\": cannot parse {s:?} as \"2006\""))?;
    let ms = parsed.as_millisecond();
    // 0001-01-01T00:00:00Z: Go's zero time, which amtool sends for "unset".
    Ok(if ms <= -62_135_596_800_000 { None } else { Some(ms) })
}

fn swagger_required(field: &str) -> AmError {
    AmError::swagger(
        StatusCode::UNPROCESSABLE_ENTITY,
        602,
        format!("{field} in body is required"),
    )
}

/// Decodes a posted alert list as go-swagger does (shape errors 400/422).
fn decode_alerts(body: &[u8], v2: bool) -> Result<Vec<PostableAlert>, AmError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(if v2 {
            swagger_required("alerts")
        } else {
            AmError::prometheus_bad_data("unexpected end of JSON input")
        });
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        if v2 {
            AmError::swagger(
                StatusCode::BAD_REQUEST,
                400,
                format!("parsing alerts body from \"\" failed, because {e}"),
            )
        } else {
            AmError::prometheus_bad_data(e.to_string())
        }
    })?;
    let bad_shape = |what: &str| {
        if v2 {
            AmError::swagger(
                StatusCode::BAD_REQUEST,
                400,
                format!("parsing alerts body from \"\" failed, because {what}"),
            )
        } else {
            AmError::prometheus_bad_data(what.to_owned())
        }
    };
    let serde_json::Value::Array(items) = value else {
        return Err(bad_shape(
            "json: cannot unmarshal object into Go value of type models.PostableAlerts",
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let serde_json::Value::Object(m) = item else {
            return Err(bad_shape(
                "json: cannot unmarshal value into Go value of type models.PostableAlert",
            ));
        };
        let str_map = |key: &str| -> Result<Option<BTreeMap<String, String>>, AmError> {
            match m.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::Object(o)) => o
                    .iter()
                    .map(|(k, v)| match v {
                        serde_json::Value::String(s) => Ok((k.clone(), s.clone())),
                        _ => Err(bad_shape(&format!(
                            "json: cannot unmarshal value into Go struct field PostableAlert.{key} of type string"
                        ))),
                    })
                    .collect::<Result<_, _>>()
                    .map(Some),
                Some(_) => Err(bad_shape(&format!(
                    "json: cannot unmarshal value into Go struct field PostableAlert.{key} of type models.LabelSet"
                ))),
            }
        };
        let Some(labels) = str_map("labels")? else {
            return Err(if v2 {
                swagger_required(&format!("{i}.labels"))
            } else {
                AmError::prometheus_bad_data("at least one label pair required")
            });
        };
        let annotations = str_map("annotations")?.unwrap_or_default();
        let time = |key: &str| -> Result<Option<i64>, AmError> {
            match m.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => parse_time(s).map_err(|e| bad_shape(&e)),
                Some(_) => Err(bad_shape(&format!(
                    "json: cannot unmarshal value into {key} of type time"
                ))),
            }
        };
        let generator_url = match m.get("generatorURL") {
            Some(serde_json::Value::String(u)) => {
                if v2 && !u.is_empty() && url_invalid(u) {
                    return Err(AmError::swagger(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        601,
                        format!("{i}.generatorURL in body must be of type uri: {u:?}"),
                    ));
                }
                u.clone()
            }
            _ => String::new(),
        };
        out.push(PostableAlert {
            labels: Labels::from_pairs(labels).unwrap_or_default(),
            annotations,
            starts_at_ms: time("startsAt")?,
            ends_at_ms: time("endsAt")?,
            generator_url,
        });
    }
    Ok(out)
}

/// go-openapi's `uri` format: what Go's `url.ParseRequestURI` refuses.
fn url_invalid(u: &str) -> bool {
    !(u.starts_with('/')
        || u.contains("://")
        || u.split_once(':')
            .is_some_and(|(s, _)| !s.is_empty() && !s.contains(' ')))
        || u.contains(' ')
}

/// `POST /api/v2/alerts`.
async fn post_alerts(State(api): State<AlertmanagerApi>, body: Bytes) -> Result<Response, AmError> {
    let alerts = decode_alerts(&body, true)?;
    match api.am.post(alerts).await {
        Ok(()) => Ok(StatusCode::OK.into_response()),
        Err(PostError::Invalid(msg)) => Err(AmError::text400(msg)),
        Err(PostError::Unavailable(msg)) => Err(AmError::text(StatusCode::SERVICE_UNAVAILABLE, msg)),
    }
}

/// `POST /api/v1/alerts` (Alertmanager's deprecated v1 API, used by older Prometheus).
async fn post_alerts_v1(State(api): State<AlertmanagerApi>, body: Bytes) -> Result<Response, AmError> {
    let alerts = decode_alerts(&body, false)?;
    match api.am.post(alerts).await {
        Ok(()) => Ok(Json(serde_json::json!({"status": "success"})).into_response()),
        Err(PostError::Invalid(msg)) => Err(AmError::prometheus_bad_data(msg)),
        Err(PostError::Unavailable(msg)) => Err(AmError::text(StatusCode::SERVICE_UNAVAILABLE, msg)),
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MatcherJson {
    is_equal: bool,
    is_regex: bool,
    name: String,
    value: String,
}

#[derive(Serialize)]
struct SilenceStatusJson {
    state: &'static str,
}

/// A gettable silence, in Alertmanager's key order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GettableSilence {
    id: String,
    status: SilenceStatusJson,
    updated_at: String,
    comment: String,
    created_by: String,
    ends_at: String,
    matchers: Vec<MatcherJson>,
    starts_at: String,
}

fn gettable_silence(s: &Silence, now: i64) -> GettableSilence {
    GettableSilence {
        id: s.id.clone(),
        status: SilenceStatusJson {
            state: s.api_state(now).as_str(),
        },
        updated_at: format_rfc3339(s.updated_at),
        comment: s.comment.clone(),
        created_by: s.created_by.clone(),
        ends_at: format_rfc3339(s.ends_at),
        matchers: s
            .matchers
            .iter()
            .map(|m| MatcherJson {
                is_equal: m.op.is_equal(),
                is_regex: m.op.is_regex(),
                name: m.name.clone(),
                value: m.value.clone(),
            })
            .collect(),
        starts_at: format_rfc3339(s.starts_at),
    }
}

/// `GET /api/v2/silences`.
async fn get_silences(State(api): State<AlertmanagerApi>, RawQuery(q): RawQuery) -> Result<Response, AmError> {
    let mut filters = Vec::new();
    for (_, v) in params(&q).into_iter().filter(|(k, _)| k == "filter") {
        filters.push(parse_matcher(&v).map_err(AmError::text400)?);
    }
    let now = now_ms();
    let mut list: Vec<Silence> = api
        .am
        .silences()
        .into_iter()
        .filter(|s| filters.iter().all(|f| s.matchers.iter().any(|m| m == f)))
        .collect();
    let rank = |s: &Silence| match s.api_state(now).as_str() {
        "active" => 0,
        "pending" => 1,
        _ => 2,
    };
    list.sort_by(|a, b| {
        rank(a).cmp(&rank(b)).then_with(|| match rank(a) {
            0 => a.ends_at.cmp(&b.ends_at),
            1 => a.starts_at.cmp(&b.starts_at),
            _ => b.ends_at.cmp(&a.ends_at),
        })
    });
    Ok(Json(list.iter().map(|s| gettable_silence(s, now)).collect::<Vec<_>>()).into_response())
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

/// `GET /api/v2/silence/{id}`.
async fn get_silence(State(api): State<AlertmanagerApi>, Path(id): Path<String>) -> Result<Response, AmError> {
    if !is_uuid(&id) {
        return Err(AmError::swagger(
            StatusCode::UNPROCESSABLE_ENTITY,
            601,
            format!("silenceID in path must be of type uuid: {id:?}"),
        ));
    }
    match api.am.silence(&id) {
        Some(s) => Ok(Json(gettable_silence(&s, now_ms())).into_response()),
        None => Ok(StatusCode::NOT_FOUND.into_response()),
    }
}

/// `DELETE /api/v2/silence/{id}`.
async fn delete_silence(State(api): State<AlertmanagerApi>, Path(id): Path<String>) -> Result<Response, AmError> {
    if !is_uuid(&id) {
        return Err(AmError::swagger(
            StatusCode::UNPROCESSABLE_ENTITY,
            601,
            format!("silenceID in path must be of type uuid: {id:?}"),
        ));
    }
    match api.am.expire_silence(&id).await {
        Ok(()) => Ok(StatusCode::OK.into_response()),
        Err(SilenceError::NotFound) => Err(AmError::text(StatusCode::INTERNAL_SERVER_ERROR, "silence not found")),
        Err(SilenceError::Invalid(m)) | Err(SilenceError::Unavailable(m)) => {
            Err(AmError::text(StatusCode::SERVICE_UNAVAILABLE, m))
        }
    }
}

/// `POST /api/v2/silences`.
async fn post_silence(State(api): State<AlertmanagerApi>, who: Caller, body: Bytes) -> Result<Response, AmError> {
    let who = caller(&who);
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        AmError::swagger(
            StatusCode::BAD_REQUEST,
            400,
            format!("parsing silence body from \"\" failed, because {e}"),
        )
    })?;
    let req = |k: &str| v.get(k).filter(|x| !x.is_null()).ok_or_else(|| swagger_required(k));
    let matchers_json = req("matchers")?;
    let serde_json::Value::Array(ms) = matchers_json else {
        return Err(AmError::swagger(
            StatusCode::BAD_REQUEST,
            400,
            "parsing silence body from \"\" failed, because json: cannot unmarshal into matchers".into(),
        ));
    };
    if ms.is_empty() {
        return Err(AmError::swagger(
            StatusCode::UNPROCESSABLE_ENTITY,
            612,
            "matchers in body should have at least 1 items".into(),
        ));
    }
    let mut matchers = Vec::new();
    for (i, m) in ms.iter().enumerate() {
        for k in ["name", "value", "isRegex"] {
            if m.get(k).is_none_or(serde_json::Value::is_null) {
                return Err(swagger_required(&format!("matchers.{i}.{k}")));
            }
        }
        let name = m["name"].as_str().unwrap_or_default();
        let value = m["value"].as_str().unwrap_or_default();
        let is_regex = m["isRegex"].as_bool().unwrap_or(false);
        let is_equal = m.get("isEqual").and_then(serde_json::Value::as_bool).unwrap_or(true);
        let op = MatchType::from_flags(is_equal, is_regex);
        matchers.push(Matcher::new(op, name, value).map_err(|e| {
            AmError::text400(format!(
                "silence invalid: invalid label matcher {i}: invalid regular expression {value:?}: {e}"
            ))
        })?);
    }
    let starts = req("startsAt")?.as_str().unwrap_or_default();
    let ends = req("endsAt")?.as_str().unwrap_or_default();
    let created_by = req("createdBy")?.as_str().unwrap_or_default().to_owned();
    let comment = v
        .get("comment")
        .ok_or_else(|| swagger_required("comment"))?
        .as_str()
        .unwrap_or_default();
    let bad_time = |e: String| {
        AmError::swagger(
            StatusCode::BAD_REQUEST,
            400,
            format!("parsing silence body from \"\" failed, because {e}"),
        )
    };
    let starts_at = parse_time(starts).map_err(bad_time)?.unwrap_or(0);
    let ends_at = parse_time(ends).map_err(bad_time)?.unwrap_or(0);
    if starts_at >= ends_at {
        return Err(AmError::text400(
            "Failed to create silence: start time must be before end time",
        ));
    }
    if ends_at != 0 && ends_at < now_ms() {
        return Err(AmError::text400(
            "Failed to create silence: end time can't be in the past",
        ));
    }
    let silence = Silence {
        id: v
            .get("id")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        matchers,
        starts_at,
        ends_at,
        updated_at: now_ms(),
        created_by: if created_by.is_empty() {
            who.unwrap_or_default()
        } else {
            created_by
        },
        comment: comment.to_owned(),
    };
    match api.am.set_silence(silence).await {
        Ok(id) => Ok(Json(serde_json::json!({"silenceID": id})).into_response()),
        Err(SilenceError::NotFound) => Err(AmError::text(StatusCode::NOT_FOUND, "silence not found")),
        Err(SilenceError::Invalid(m)) => Err(AmError::text400(m)),
        Err(SilenceError::Unavailable(m)) => Err(AmError::text(StatusCode::SERVICE_UNAVAILABLE, m)),
    }
}

/// `GET /api/v2/status`.
async fn status(State(api): State<AlertmanagerApi>) -> Response {
    Json(serde_json::json!({
        "cluster": {"peers": [], "status": "disabled"},
        "config": {"original": api.am.config_original()},
        "uptime": format_rfc3339(api.am.started_at()),
        "versionInfo": {
            "branch": "sextant",
            "buildDate": "",
            "buildUser": "sextant",
            "goVersion": concat!("sextant ", env!("CARGO_PKG_VERSION")),
            "revision": env!("CARGO_PKG_VERSION"),
            "version": "0.25.0",
        },
    }))
    .into_response()
}

/// `GET /api/v2/receivers`.
async fn receivers(State(api): State<AlertmanagerApi>) -> Response {
    Json(
        api.am
            .receivers()
            .into_iter()
            .map(|name| ReceiverJson { name })
            .collect::<Vec<_>>(),
    )
    .into_response()
}

#[derive(Serialize)]
struct IncidentJson {
    #[serde(flatten)]
    incident: Incident,
    state: &'static str,
    started: String,
    ended: Option<String>,
}

fn incident_json(i: Incident) -> IncidentJson {
    IncidentJson {
        state: if i.ended_at.is_some() { "closed" } else { "open" },
        started: format_rfc3339(i.started_at),
        ended: i.ended_at.map(format_rfc3339),
        incident: i,
    }
}

/// `GET /api/sextant/v1/incidents?state=open|closed&severity=&receiver=&slo=&since=`.
async fn list_incidents(State(api): State<AlertmanagerApi>, RawQuery(q): RawQuery) -> Result<Response, AmError> {
    let ps = params(&q);
    let get = |k: &str| ps.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let since = match get("since") {
        Some(s) => Some(
            sextant_model::time::parse_api_time(&s)
                .map_err(|e| AmError::prometheus_bad_data(format!("invalid parameter \"since\": {e}")))?,
        ),
        None => None,
    };
    let state = get("state");
    if let Some(s) = &state
        && s != "open"
        && s != "closed"
    {
        return Err(AmError::prometheus_bad_data(format!(
            "invalid parameter \"state\": {s:?} (open or closed)"
        )));
    }
    let list: Vec<IncidentJson> = api
        .am
        .incidents()
        .into_iter()
        .filter(|i| match state.as_deref() {
            Some("open") => i.ended_at.is_none(),
            Some("closed") => i.ended_at.is_some(),
            _ => true,
        })
        .filter(|i| get("severity").is_none_or(|s| i.severity.as_deref() == Some(s.as_str())))
        .filter(|i| get("receiver").is_none_or(|r| i.receiver == r))
        .filter(|i| get("slo").is_none_or(|s| i.slo.as_deref() == Some(s.as_str())))
        .filter(|i| since.is_none_or(|t| i.ended_at.is_none_or(|e| e >= t)))
        .map(incident_json)
        .collect();
    Ok(success(list).into_response())
}

/// `GET /api/sextant/v1/incidents/{id}`.
async fn get_incident(State(api): State<AlertmanagerApi>, Path(id): Path<String>) -> Result<Response, AmError> {
    match api.am.incident(&id) {
        Some(i) => Ok(success(incident_json(i)).into_response()),
        None => Err(AmError::not_found(format!("no incident {id:?}"))),
    }
}

#[derive(Deserialize, Default)]
struct AckBody {
    #[serde(default)]
    comment: String,
    #[serde(default)]
    group_key: String,
}

async fn ack(api: &AlertmanagerApi, target: &str, who: &Caller, body: &[u8]) -> Result<Response, AmError> {
    let who = caller(who).unwrap_or_else(|| "anonymous".into());
    let b: AckBody = if body.is_empty() {
        AckBody::default()
    } else {
        serde_json::from_slice(body).map_err(|e| AmError::prometheus_bad_data(format!("invalid body: {e}")))?
    };
    let target = if target.is_empty() {
        b.group_key.as_str()
    } else {
        target
    };
    if target.is_empty() {
        return Err(AmError::prometheus_bad_data("group_key is required"));
    }
    match api.am.acknowledge(target, &who, &b.comment).await {
        Ok(a) => Ok(success(a).into_response()),
        Err(AckError::NotFound) => Err(AmError::not_found(format!(
            "no firing alert group or open incident {target:?}"
        ))),
        Err(AckError::Closed) => Err(AmError::prometheus_bad_data(format!("incident {target:?} is closed"))),
        Err(AckError::Unavailable(m)) => Err(AmError::text(StatusCode::SERVICE_UNAVAILABLE, m)),
    }
}

/// `POST /api/sextant/v1/incidents/{id}/ack` (`{"comment": "..."}`).
async fn ack_incident(
    State(api): State<AlertmanagerApi>,
    Path(id): Path<String>,
    who: Caller,
    body: Bytes,
) -> Result<Response, AmError> {
    ack(&api, &id, &who, &body).await
}

/// `POST /api/sextant/v1/alerts/groups/ack` (`{"group_key": "...", "comment": "..."}`).
async fn ack_group(State(api): State<AlertmanagerApi>, who: Caller, body: Bytes) -> Result<Response, AmError> {
    ack(&api, "", &who, &body).await
}

#[derive(Serialize)]
struct IntegrationJson {
    integration: String,
    index: usize,
    last_success: Option<String>,
    last_failure: Option<String>,
    last_error: Option<String>,
    failed_requests: u64,
}

#[derive(Serialize)]
struct ReceiverStatusJson {
    name: String,
    integrations: Vec<IntegrationJson>,
}

/// `GET /api/sextant/v1/receivers`: each receiver's integrations with their last
/// success and failure.
async fn receiver_status(State(api): State<AlertmanagerApi>) -> Response {
    let list: Vec<ReceiverStatusJson> = api
        .am
        .receiver_status()
        .into_iter()
        .map(|r| ReceiverStatusJson {
            name: r.name,
            integrations: r
                .integrations
                .into_iter()
                .map(|i| IntegrationJson {
                    integration: i.integration,
                    index: i.index,
                    last_success: i.last_success.map(format_rfc3339),
                    last_failure: i.last_failure.as_ref().map(|(t, _)| format_rfc3339(*t)),
                    last_error: i.last_failure.map(|(_, e)| e),
                    failed_requests: i.failed_requests,
                })
                .collect(),
        })
        .collect();
    success(list).into_response()
}
