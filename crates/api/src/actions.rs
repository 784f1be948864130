//! `/api/sextant/v1/actions` and `/api/sextant/v1/workloads`: the audit log of the
//! action engine (every decision, taken or not, with its evidence), approvals, and
//! the managed workloads with their replicas, health and rollouts. Same envelope as
//! the rest of Sextant's API.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use sextant_act::audit::{
    ActionSpec, AlertEvidence, AuditRecord, ConditionEvidence, Decision, ErrorShare, Evidence, SloEvidence, Status,
    WindowEvidence,
};
use sextant_act::supervisor::{Phase, ProcessStatus, ReplicaStatus, RolloutStatus};
use sextant_act::{ApprovalError, Filter, WorkloadStatus};
use utoipa::{OpenApi, ToSchema};

use crate::AppState;
use crate::auth::Identity;
use crate::error::{ApiError, ErrorType, success};
use crate::prometheus::Params;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/sextant/v1/actions", get(list_actions))
        .route("/api/sextant/v1/actions/{id}", get(get_action))
        .route("/api/sextant/v1/actions/{id}/approve", post(approve))
        .route("/api/sextant/v1/actions/{id}/reject", post(reject))
        .route("/api/sextant/v1/workloads", get(list_workloads))
        .route("/api/sextant/v1/workloads/{name}", get(get_workload))
}

/// Audit records.
#[derive(Serialize, ToSchema)]
struct ActionList {
    /// `success`.
    status: String,
    /// Newest first.
    data: Vec<AuditRecord>,
}

/// One audit record.
#[derive(Serialize, ToSchema)]
struct ActionDetail {
    /// `success`.
    status: String,
    /// The record.
    data: AuditRecord,
}

/// Workloads.
#[derive(Serialize, ToSchema)]
struct WorkloadList {
    /// `success`.
    status: String,
    /// By name.
    data: Vec<WorkloadStatus>,
}

/// One workload.
#[derive(Serialize, ToSchema)]
struct WorkloadDetail {
    /// `success`.
    status: String,
    /// The workload.
    data: WorkloadStatus,
}

/// Body of approve and reject.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct ApprovalBody {
    /// Why.
    #[serde(default)]
    comment: String,
}

fn not_found(what: String) -> ApiError {
    ApiError {
        kind: ErrorType::NotFound,
        message: what,
    }
}

fn bad(message: String) -> ApiError {
    ApiError {
        kind: ErrorType::BadData,
        message,
    }
}

fn enum_param<T: for<'de> Deserialize<'de>>(p: &Params, name: &str) -> Result<Option<T>, ApiError> {
    match p.get(name) {
        None | Some("") => Ok(None),
        Some(v) => serde_json::from_value(serde_json::Value::String(v.to_owned()))
            .map(Some)
            .map_err(|_| bad(format!("invalid {name} {v:?}"))),
    }
}

/// Audit records, newest first, filtered.
#[utoipa::path(
    get,
    path = "/api/sextant/v1/actions",
    tag = "actions",
    params(
        ("policy" = Option<String>, Query, description = "Only this policy (`supervisor` for rollouts and crash loops)"),
        ("workload" = Option<String>, Query, description = "Only this workload"),
        ("decision" = Option<String>, Query, description = "act, dry_run, awaiting_approval, skip or observe"),
        ("status" = Option<String>, Query, description = "pending, running, succeeded, failed, rejected, expired or none"),
        ("kind" = Option<String>, Query, description = "scale, restart, webhook, exec, rollout or rollback"),
        ("since" = Option<String>, Query, description = "Decided at or after (RFC 3339 or Unix seconds)"),
        ("until" = Option<String>, Query, description = "Decided at or before"),
        ("limit" = Option<usize>, Query, description = "At most this many [100]")
    ),
    responses(
        (status = 200, description = "The records", body = ActionList),
        (status = 400, description = "Invalid parameter", body = crate::slos::ErrorResponse)
    )
)]
async fn list_actions(State(s): State<AppState>, p: Params) -> Result<impl IntoResponse, ApiError> {
    let time = |name: &str| -> Result<Option<i64>, ApiError> {
        match p.get(name) {
            None | Some("") => Ok(None),
            Some(_) => Ok(Some(p.time(name, 0)?)),
        }
    };
    let limit = match p.get("limit") {
        None | Some("") => 100,
        Some(v) => v.parse().map_err(|_| bad(format!("invalid limit {v:?}")))?,
    };
    let filter = Filter {
        policy: p.get("policy").filter(|v| !v.is_empty()).map(str::to_owned),
        workload: p.get("workload").filter(|v| !v.is_empty()).map(str::to_owned),
        decision: enum_param::<Decision>(&p, "decision")?,
        status: enum_param::<Status>(&p, "status")?,
        kind: p.get("kind").filter(|v| !v.is_empty()).map(str::to_owned),
        since_ms: time("since")?,
        until_ms: time("until")?,
        limit: Some(limit),
    };
    Ok(success(s.actions.actions(&filter)))
}

/// One audit record.
#[utoipa::path(
    get,
    path = "/api/sextant/v1/actions/{id}",
    tag = "actions",
    params(("id" = String, Path, description = "The record's id")),
    responses(
        (status = 200, description = "The record", body = ActionDetail),
        (status = 404, description = "No such record", body = crate::slos::ErrorResponse)
    )
)]
async fn get_action(State(s): State<AppState>, Path(id): Path<String>) -> Result<impl IntoResponse, ApiError> {
    s.actions
        .action(&id)
        .map(success)
        .ok_or_else(|| not_found(format!("no action {id:?}")))
}

fn approval_error(id: &str, e: ApprovalError) -> ApiError {
    match e {
        ApprovalError::NotFound => not_found(format!("no action {id:?}")),
        ApprovalError::NotPending(m) | ApprovalError::Busy(m) => ApiError {
            kind: ErrorType::Conflict,
            message: m,
        },
    }
}

fn approval_body(body: &[u8]) -> Result<ApprovalBody, ApiError> {
    if body.is_empty() {
        return Ok(ApprovalBody::default());
    }
    serde_json::from_slice(body).map_err(|e| bad(format!("invalid body: {e}")))
}

type Caller = Option<axum::Extension<Identity>>;

fn caller(c: &Caller) -> String {
    c.as_ref()
        .map(|axum::Extension(i)| i.name.clone())
        .unwrap_or_else(|| "anonymous".into())
}

/// Approves an action waiting for approval; it runs at once (operator role).
#[utoipa::path(
    post,
    path = "/api/sextant/v1/actions/{id}/approve",
    tag = "actions",
    params(("id" = String, Path, description = "The record's id")),
    request_body(content = ApprovalBody, description = "Optional comment"),
    responses(
        (status = 200, description = "Approved; the action runs", body = ActionDetail),
        (status = 404, description = "No such record", body = crate::slos::ErrorResponse),
        (status = 409, description = "Not waiting for approval, stale, or another action is running", body = crate::slos::ErrorResponse)
    )
)]
async fn approve(
    State(s): State<AppState>,
    Path(id): Path<String>,
    who: Caller,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let b = approval_body(&body)?;
    s.actions
        .approve(&id, &caller(&who), &b.comment)
        .map(success)
        .map_err(|e| approval_error(&id, e))
}

/// Rejects an action waiting for approval (operator role).
#[utoipa::path(
    post,
    path = "/api/sextant/v1/actions/{id}/reject",
    tag = "actions",
    params(("id" = String, Path, description = "The record's id")),
    request_body(content = ApprovalBody, description = "Optional comment"),
    responses(
        (status = 200, description = "Rejected", body = ActionDetail),
        (status = 404, description = "No such record", body = crate::slos::ErrorResponse),
        (status = 409, description = "Not waiting for approval", body = crate::slos::ErrorResponse)
    )
)]
async fn reject(
    State(s): State<AppState>,
    Path(id): Path<String>,
    who: Caller,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let b = approval_body(&body)?;
    s.actions
        .reject(&id, &caller(&who), &b.comment)
        .map(success)
        .map_err(|e| approval_error(&id, e))
}

/// Every managed workload: replicas, health, restarts, rollout, last action.
#[utoipa::path(
    get,
    path = "/api/sextant/v1/workloads",
    tag = "actions",
    responses((status = 200, description = "The workloads", body = WorkloadList))
)]
async fn list_workloads(State(s): State<AppState>) -> impl IntoResponse {
    success(s.actions.workloads())
}

/// One managed workload.
#[utoipa::path(
    get,
    path = "/api/sextant/v1/workloads/{name}",
    tag = "actions",
    params(("name" = String, Path, description = "The workload's name")),
    responses(
        (status = 200, description = "The workload", body = WorkloadDetail),
        (status = 404, description = "No such workload", body = crate::slos::ErrorResponse)
    )
)]
async fn get_workload(State(s): State<AppState>, Path(name): Path<String>) -> Result<impl IntoResponse, ApiError> {
    s.actions
        .workload(&name)
        .map(success)
        .ok_or_else(|| not_found(format!("no workload {name:?}")))
}

#[derive(OpenApi)]
#[openapi(
    paths(list_actions, get_action, approve, reject, list_workloads, get_workload),
    components(schemas(
        ActionList, ActionDetail, WorkloadList, WorkloadDetail, ApprovalBody, AuditRecord, ActionSpec, Decision,
        Status, Evidence, SloEvidence, AlertEvidence, ConditionEvidence, WindowEvidence, ErrorShare, WorkloadStatus,
        ProcessStatus, ReplicaStatus, RolloutStatus, Phase
    )),
    tags((name = "actions", description = "Managed workloads, action policies and their audit log"))
)]
pub(crate) struct ActionsDoc;
