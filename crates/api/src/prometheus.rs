//! Prometheus-compatible read endpoints: series, labels, label values, metadata, targets.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{FromRequest, Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use sextant_model::time::{format_duration, format_rfc3339, parse_api_time};
use sextant_model::{Labels, MetricMetadata, is_valid_label_name};

use crate::AppState;
use crate::error::{ApiError, success};
use crate::selector::parse_selectors;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/targets", get(targets))
}

/// Request parameters from the query string and, for POST, a form body, as Prometheus
/// accepts them.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    /// The parameters of a URL query string (for handlers that cannot take the
    /// body-reading extractor, such as WebSocket upgrades).
    pub(crate) fn from_query(query: Option<&str>) -> Self {
        Params(
            query
                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
        )
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub(crate) fn get_all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub(crate) fn time(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(v) => parse_api_time(v).map_err(|_| {
                ApiError::bad_data(format!(
                    "invalid parameter {name:?}: cannot parse {v:?} to a valid timestamp"
                ))
            }),
        }
    }

    /// A time parameter that must be present.
    pub(crate) fn required_time(&self, name: &str) -> Result<i64, ApiError> {
        match self.get(name) {
            None | Some("") => Err(ApiError::bad_data(format!(
                "invalid parameter {name:?}: cannot parse \"\" to a valid timestamp"
            ))),
            Some(_) => self.time(name, 0),
        }
    }

    pub(crate) fn range(&self) -> Result<(i64, i64), ApiError> {
        let start = self.time("start", i64::MIN)?;
        let end = self.time("end", i64::MAX)?;
        if end < start {
            return Err(ApiError::bad_data(
                "invalid parameter \"end\": end timestamp must not be before start time",
            ));
        }
        Ok((start, end))
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mut pairs: Vec<(String, String)> = req
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let is_form = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if req.method() == axum::http::Method::POST && is_form {
            let body = bytes::Bytes::from_request(req, state)
                .await
                .map_err(IntoResponse::into_response)?;
            pairs.extend(form_urlencoded::parse(&body).into_owned());
        }
        Ok(Params(pairs))
    }
}

async fn series(State(s): State<AppState>, p: Params) -> Result<impl IntoResponse, ApiError> {
    let matches = p.get_all("match[]");
    if matches.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let sets = parse_selectors(&matches)?;
    let (start, end) = p.range()?;
    let out: Vec<Labels> = s
        .store
        .series(&sets, start, end)
        .into_iter()
        .map(|l| (*l).clone())
        .collect();
    Ok(success(out))
}

async fn labels(State(s): State<AppState>, p: Params) -> Result<impl IntoResponse, ApiError> {
    let sets = parse_selectors(&p.get_all("match[]"))?;
    let (start, end) = p.range()?;
    Ok(success(s.store.label_names(&sets, start, end)))
}

async fn label_values(
    State(s): State<AppState>,
    Path(name): Path<String>,
    p: Params,
) -> Result<impl IntoResponse, ApiError> {
    if !is_valid_label_name(&name) {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let sets = parse_selectors(&p.get_all("match[]"))?;
    let (start, end) = p.range()?;
    Ok(success(s.store.label_values(&name, &sets, start, end)))
}

async fn metadata(State(s): State<AppState>, p: Params) -> Result<impl IntoResponse, ApiError> {
    let limit = match p.get("limit") {
        None | Some("") => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n < 0 => None,
            Ok(n) => Some(n as usize),
            Err(_) => return Err(ApiError::bad_data("limit must be a number")),
        },
    };
    let out: BTreeMap<String, Vec<MetricMetadata>> = s.store.metadata(p.get("metric").filter(|m| !m.is_empty()), limit);
    Ok(success(out))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ActiveTargetJson {
    discovered_labels: Labels,
    labels: Labels,
    scrape_pool: String,
    scrape_url: String,
    global_url: String,
    last_error: String,
    last_scrape: String,
    last_scrape_duration: f64,
    health: &'static str,
    scrape_interval: String,
    scrape_timeout: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DroppedTargetJson {
    discovered_labels: Labels,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TargetsJson {
    active_targets: Vec<ActiveTargetJson>,
    dropped_targets: Vec<DroppedTargetJson>,
}

/// Never-scraped targets show Go's zero time, as Prometheus does.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

async fn targets(State(s): State<AppState>, p: Params) -> impl IntoResponse {
    let snap = s.scrape.targets().await;
    let state = p.get("state").unwrap_or("any").to_ascii_lowercase();
    let pool = p.get("scrapePool").filter(|v| !v.is_empty());
    let (show_active, show_dropped) = match state.as_str() {
        "active" => (true, false),
        "dropped" => (false, true),
        _ => (true, true),
    };
    let active_targets = snap
        .active
        .into_iter()
        .filter(|t| show_active && pool.is_none_or(|p| p == t.job))
        .map(|t| ActiveTargetJson {
            discovered_labels: t.discovered_labels,
            labels: t.labels,
            scrape_pool: t.job,
            global_url: t.url.clone(),
            scrape_url: t.url,
            last_error: t.last_error,
            last_scrape: t.last_scrape_ms.map(format_rfc3339).unwrap_or_else(|| ZERO_TIME.into()),
            last_scrape_duration: t.last_scrape_duration.as_secs_f64(),
            health: t.health.as_str(),
            scrape_interval: format_duration(t.interval),
            scrape_timeout: format_duration(t.timeout),
        })
        .collect();
    let dropped_targets = snap
        .dropped
        .into_iter()
        .filter(|(job, _)| show_dropped && pool.is_none_or(|p| p == job))
        .map(|(_, l)| DroppedTargetJson { discovered_labels: l })
        .collect();
    success(TargetsJson {
        active_targets,
        dropped_targets,
    })
}
