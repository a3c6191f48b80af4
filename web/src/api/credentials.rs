//! Handlers for credentials (admin only): API tokens listed and revoked;
//! controllers disabled, enabled, re-keyed and deleted.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use tobira_firmware::ControllerId;

use super::doors::ControllerCreated;
use super::{ActionErrors, AdminReadErrors, Paging};
use crate::auth::Admin;
use crate::error::{WebError, WebResult};
use crate::json::{PathParam, QueryParams};
use crate::store::auth::TokenInfo;
use crate::store::resources::doors::Controller;
use crate::store::resources::{Id, Page};
use crate::AppState;

/// List API tokens by id, with their last use; revoked and expired ones too.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "credentials", params(Paging),
    responses((status = 200, description = "A page of tokens (never the tokens themselves)", body = Page<TokenInfo>), AdminReadErrors))]
pub async fn list_tokens(
    State(state): State<AppState>,
    _caller: Admin,
    QueryParams(p): QueryParams<Paging>,
) -> WebResult<Json<Page<TokenInfo>>> {
    Ok(Json(state.store.list_tokens(p.limit, p.cursor()).await?))
}

/// Revoke an API token: its next request is refused. A token cannot revoke
/// itself (409), so that an integration cannot lock its admin out by mistake.
#[utoipa::path(post, path = "/api/v1/tokens/{id}/revoke", tag = "credentials", params(("id" = Id, Path, description = "Token id")),
    responses((status = 200, description = "The revoked token", body = TokenInfo), ActionErrors))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Admin,
    PathParam(id): PathParam<Id>,
) -> WebResult<Json<TokenInfo>> {
    let principal = &caller.principal;
    if principal.token_id == Some(id.get()) {
        return Err(WebError::Conflict(format!(
            "token {id} is the one making this request; revoke it with another admin token or `tobira central token revoke {id}`"
        )));
    }
    let actor = principal.actor.clone();
    Ok(Json(state.store.revoke_token(&actor, id).await?))
}

/// Disable a controller: refused at sync from its next request (403
/// `controller_disabled`); its doors keep running on their cached policy.
#[utoipa::path(post, path = "/api/v1/controllers/{id}/disable", tag = "credentials", params(("id" = Id, Path, description = "Controller id")),
    responses((status = 200, description = "The controller", body = Controller), ActionErrors))]
pub async fn disable_controller(
    State(state): State<AppState>,
    caller: Admin,
    PathParam(id): PathParam<Id>,
) -> WebResult<Json<Controller>> {
    let actor = caller.actor().to_owned();
    state
        .store
        .set_controller_disabled(&actor, id, true)
        .await?;
    Ok(Json(state.store.controller(id).await?))
}

/// Enable a disabled controller again.
#[utoipa::path(post, path = "/api/v1/controllers/{id}/enable", tag = "credentials", params(("id" = Id, Path, description = "Controller id")),
    responses((status = 200, description = "The controller", body = Controller), ActionErrors))]
pub async fn enable_controller(
    State(state): State<AppState>,
    caller: Admin,
    PathParam(id): PathParam<Id>,
) -> WebResult<Json<Controller>> {
    let actor = caller.actor().to_owned();
    state
        .store
        .set_controller_disabled(&actor, id, false)
        .await?;
    Ok(Json(state.store.controller(id).await?))
}

/// Give a controller a new secret, shown only this once; the old one is refused at once.
#[utoipa::path(post, path = "/api/v1/controllers/{id}/rotate-secret", tag = "credentials", params(("id" = Id, Path, description = "Controller id")),
    responses((status = 200, description = "The controller and its new credentials", body = ControllerCreated), ActionErrors))]
pub async fn rotate_controller_secret(
    State(state): State<AppState>,
    caller: Admin,
    PathParam(id): PathParam<Id>,
) -> WebResult<Json<ControllerCreated>> {
    let actor = caller.actor().to_owned();
    let credentials = state.store.rotate_controller_secret(&actor, id).await?;
    let controller = state.store.controller(id).await?;
    let authorization = tobira_protocol::controller_authorization(
        ControllerId(credentials.controller),
        &credentials.secret,
    );
    Ok(Json(ControllerCreated {
        controller,
        secret: credentials.secret,
        authorization,
        public_key: state.signer.public_key().to_hex(),
    }))
}

/// Remove a controller no door refers to (409 names the doors that still do).
#[utoipa::path(delete, path = "/api/v1/controllers/{id}", tag = "credentials", params(("id" = Id, Path, description = "Controller id")),
    responses((status = 204, description = "Removed"), ActionErrors))]
pub async fn delete_controller(
    State(state): State<AppState>,
    caller: Admin,
    PathParam(id): PathParam<Id>,
) -> WebResult<StatusCode> {
    let actor = caller.actor().to_owned();
    state.store.delete_controller(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
