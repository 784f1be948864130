//! Sextant's own API, `/api/sextant/v1`: SLO status, described by an OpenAPI 3.1
//! document generated from these handlers and the engine's status types. Responses
//! use Prometheus' envelope (`{"status":"success","data":...}`, errors with
//! `errorType`), so clients of the Prometheus API read them the same way.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;
use sextant_slo::status::{
    Attribution, BackfillStatus, BudgetStatus, CalendarStatus, ConditionStatus, GroupShare, RevisionStatus, SloStatus,
    SloSummary, State as SloState, TierStatus, WindowStatus,
};
use utoipa::{OpenApi, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ErrorType, success};
use crate::prometheus::Params;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/sextant/v1/slos", get(list_slos))
        .route("/api/sextant/v1/slos/{id}", get(get_slo))
        .route("/api/sextant/v1/openapi.json", get(openapi))
}

/// The list of SLOs.
#[derive(Serialize, ToSchema)]
struct SloList {
    /// `success`.
    status: String,
    /// One entry per SLO, by id.
    data: Vec<SloSummary>,
}

/// One SLO.
#[derive(Serialize, ToSchema)]
struct SloDetail {
    /// `success`.
    status: String,
    /// The SLO.
    data: SloStatus,
}

/// An error.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorResponse {
    /// `error`.
    status: String,
    /// `bad_data`, `not_found`, `internal`, ...
    error_type: String,
    /// What went wrong.
    error: String,
}

/// Every SLO with its state, budget left and current burn rate, as of the last cycle.
#[utoipa::path(
    get,
    path = "/api/sextant/v1/slos",
    tag = "slo",
    responses((status = 200, description = "The SLOs", body = SloList))
)]
async fn list_slos(State(s): State<AppState>) -> impl IntoResponse {
    success(s.slo.summaries())
}

/// One SLO in full: windows, budget, calendar consumption, tiers, attribution,
/// revisions and backfill progress.
#[utoipa::path(
    get,
    path = "/api/sextant/v1/slos/{id}",
    tag = "slo",
    params(
        ("id" = String, Path, description = "The SLO's id (`sloth_id`)"),
        ("time" = Option<String>, Query, description = "Evaluate at this time (RFC 3339 or Unix seconds) instead of the last cycle's")
    ),
    responses(
        (status = 200, description = "The SLO", body = SloDetail),
        (status = 400, description = "Invalid time", body = ErrorResponse),
        (status = 404, description = "No such SLO", body = ErrorResponse)
    )
)]
async fn get_slo(State(s): State<AppState>, Path(id): Path<String>, p: Params) -> Result<impl IntoResponse, ApiError> {
    let at = match p.get("time") {
        None | Some("") => None,
        Some(_) => Some(p.time("time", 0)?),
    };
    match s.slo.detail(&id, at).await {
        Ok(Some(status)) => Ok(success(status)),
        Ok(None) => Err(ApiError {
            kind: ErrorType::NotFound,
            message: format!("no SLO with id {id:?}"),
        }),
        Err(e) => Err(ApiError {
            kind: ErrorType::Internal,
            message: e,
        }),
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Sextant API", description = "Sextant's own API. Prometheus-, Loki- and Tempo-compatible APIs are documented by those projects."),
    paths(list_slos, get_slo),
    components(schemas(
        SloList, SloDetail, ErrorResponse, SloSummary, SloStatus, SloState, WindowStatus, BudgetStatus,
        CalendarStatus, TierStatus, ConditionStatus, Attribution, GroupShare, RevisionStatus, BackfillStatus
    )),
    tags((name = "slo", description = "Service level objectives"))
)]
struct ApiDoc;

/// The OpenAPI 3.1 document of this API.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::actions::ActionsDoc::openapi());
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

async fn openapi() -> impl IntoResponse {
    Json(openapi_document())
}
