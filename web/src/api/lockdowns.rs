//! Handlers for lockdowns: start one for a site or a zone (operators), release
//! it (admins), and see when each controller got each step.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{BodyActionErrors, CreateErrors, GetErrors, ReadErrors};
use crate::auth::{Admin, Caller, Operator};
use crate::error::WebResult;
use crate::json::{Input, PathParam, QueryParams};
use crate::store::lockdowns::{Lockdown, LockdownInput, LockdownState};
use crate::store::resources::Id;
use crate::AppState;

/// Lockdown list filter.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LockdownFilter {
    /// `active` (still in force) or `all` (default: active ones first, then released ones).
    pub state: Option<LockdownState>,
}

/// Why it is safe to open the doors again.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseInput {
    /// Required, at most 1000 characters; kept with the lockdown and in the audit log.
    #[serde(default)]
    pub comment: String,
}

/// List lockdowns (at most 100), each with when it reached every controller of its site.
#[utoipa::path(get, path = "/api/v1/lockdowns", tag = "review", params(LockdownFilter),
    responses((status = 200, description = "Lockdowns, active ones first", body = Vec<Lockdown>), ReadErrors))]
pub async fn list_lockdowns(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(f): QueryParams<LockdownFilter>,
) -> WebResult<Json<Vec<Lockdown>>> {
    Ok(Json(
        state.store.lockdowns(f.state.unwrap_or_default()).await?,
    ))
}

/// Lock down a site (`site_id`) or one zone (`zone_id`) at once: nothing
/// opens there but doors released by a fire alarm, until an admin releases
/// it. Operators may start one; it does not wait for a second approval.
#[utoipa::path(post, path = "/api/v1/lockdowns", tag = "review", request_body = LockdownInput,
    responses((status = 201, description = "The lockdown, on its way to the controllers", body = Lockdown), CreateErrors))]
pub async fn start_lockdown(
    State(state): State<AppState>,
    caller: Operator,
    Input(input): Input<LockdownInput>,
) -> WebResult<(StatusCode, Json<Lockdown>)> {
    let actor = caller.actor().to_owned();
    Ok((
        StatusCode::CREATED,
        Json(state.store.start_lockdown(&actor, &input).await?),
    ))
}

/// Get a lockdown.
#[utoipa::path(get, path = "/api/v1/lockdowns/{id}", tag = "review", params(("id" = Id, Path, description = "Lockdown id")),
    responses((status = 200, description = "The lockdown", body = Lockdown), GetErrors))]
pub async fn get_lockdown(
    State(state): State<AppState>,
    _caller: Caller,
    PathParam(id): PathParam<Id>,
) -> WebResult<Json<Lockdown>> {
    Ok(Json(state.store.lockdown(id).await?))
}

/// Release a lockdown (admins only); the configured threat levels apply again.
#[utoipa::path(post, path = "/api/v1/lockdowns/{id}/release", tag = "review", params(("id" = Id, Path, description = "Lockdown id")),
    request_body = ReleaseInput,
    responses((status = 200, description = "The released lockdown", body = Lockdown), BodyActionErrors))]
pub async fn release_lockdown(
    State(state): State<AppState>,
    caller: Admin,
    PathParam(id): PathParam<Id>,
    Input(input): Input<ReleaseInput>,
) -> WebResult<Json<Lockdown>> {
    let actor = caller.actor().to_owned();
    Ok(Json(
        state
            .store
            .release_lockdown(&actor, id, &input.comment)
            .await?,
    ))
}
