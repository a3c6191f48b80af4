//! Handlers for four-eyes approval: the pending changes, and a second admin's
//! approval or refusal; `accepted` is the 202 answer of a change held for it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{ActionErrors, GetErrors, Input, Paging, ReadErrors, UpdateErrors};
use crate::auth::{Admin, Caller};
use crate::error::WebResult;
use crate::json::{PathParam, QueryParams};
use crate::store::approvals::{ChangeState, PendingChange};
use crate::store::resources::{Id, Page};
use crate::AppState;

/// The answer to a change that waits for a second admin: 202 with the pending change.
pub fn accepted(pending: PendingChange) -> Response {
    (StatusCode::ACCEPTED, Json(pending)).into_response()
}

/// Pending change list filters.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangeFilter {
    /// Only changes in this state (default `pending`).
    pub state: Option<ChangeState>,
}

/// Why a change is refused.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefuseInput {
    /// The reason, for the requester and the audit log (not blank).
    #[schema(min_length = 1, max_length = 1000)]
    pub comment: String,
}

/// List changes that wait for (or were decided by) a second admin, oldest first.
#[utoipa::path(get, path = "/api/v1/approvals", tag = "review", params(ChangeFilter, Paging),
    responses((status = 200, description = "A page of changes", body = Page<PendingChange>), ReadErrors))]
pub async fn list_approvals(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(f): QueryParams<ChangeFilter>,
    QueryParams(p): QueryParams<Paging>,
) -> WebResult<Json<Page<PendingChange>>> {
    let only = f.state.unwrap_or(ChangeState::Pending);
    Ok(Json(
        state
            .store
            .list_changes(Some(only), p.limit, p.cursor())
            .await?,
    ))
}

/// Get a change and where it is.
#[utoipa::path(get, path = "/api/v1/approvals/{id}", tag = "review", params(("id" = Id, Path, description = "Change id")),
    responses((status = 200, description = "The change", body = PendingChange), GetErrors))]
pub async fn get_approval(
    State(state): State<AppState>,
    _caller: Caller,
    PathParam(id): PathParam<Id>,
) -> WebResult<Json<PendingChange>> {
    Ok(Json(state.store.change(id).await?))
}

/// Approve a pending change (admin, not the one who asked): it is applied
/// at once. 403: your own change; 409: already decided. A change that can no
/// longer be applied comes back `failed`, with why in `result`.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/approve", tag = "review", params(("id" = Id, Path, description = "Change id")),
    responses((status = 200, description = "The change, approved and applied, or failed", body = PendingChange), ActionErrors))]
pub async fn approve(
    State(state): State<AppState>,
    caller: Admin,
    PathParam(id): PathParam<Id>,
) -> WebResult<Json<PendingChange>> {
    let (actor, role) = (caller.actor().to_owned(), caller.principal.role);
    Ok(Json(state.store.approve_change(&actor, role, id).await?))
}

/// Refuse a pending change with a comment (admin, not the one who asked).
/// 403: your own change; 409: already decided.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/refuse", tag = "review", params(("id" = Id, Path, description = "Change id")),
    request_body = RefuseInput,
    responses((status = 200, description = "The change, refused", body = PendingChange), UpdateErrors))]
pub async fn refuse(
    State(state): State<AppState>,
    caller: Admin,
    PathParam(id): PathParam<Id>,
    Input(input): Input<RefuseInput>,
) -> WebResult<Json<PendingChange>> {
    let (actor, role) = (caller.actor().to_owned(), caller.principal.role);
    Ok(Json(
        state
            .store
            .refuse_change(&actor, role, id, &input.comment)
            .await?,
    ))
}
