//! Handlers for doors and controllers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use tobira_firmware::ControllerId;
use utoipa::{IntoParams, ToSchema};

use super::{ActionErrors, CreateErrors, GetErrors, Input, Paging, ReadErrors, UpdateErrors};
use crate::auth::{Admin, Caller, Manager};
use crate::error::{WebError, WebResult};
use crate::json::{PathParam, QueryParams};
use crate::store::resources::doors::{Controller, ControllerInput, Door, DoorInput};
use crate::store::resources::{Id, Page};
use crate::AppState;

/// Door list filters.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DoorFilter {
    /// Only doors driven by this controller.
    pub controller: Option<Id>,
    /// Only doors into or out of this zone.
    pub zone: Option<Id>,
}

/// A newly registered controller's credentials: shown once, only a hash is kept.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ControllerCreated {
    /// The controller.
    pub controller: Controller,
    /// Its secret.
    pub secret: String,
    /// The `Authorization` header value for its config.
    pub authorization: String,
    /// The central service's Ed25519 policy key (hex), for its config.
    pub public_key: String,
}

/// List doors by id.
#[utoipa::path(get, path = "/api/v1/doors", tag = "structure", params(DoorFilter, Paging),
    responses((status = 200, description = "A page of doors", body = Page<Door>), ReadErrors))]
pub async fn list_doors(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(f): QueryParams<DoorFilter>,
    QueryParams(p): QueryParams<Paging>,
) -> WebResult<Json<Page<Door>>> {
    Ok(Json(
        state
            .store
            .list_doors(f.controller, f.zone, p.limit, p.cursor())
            .await?,
    ))
}

/// Add a door or flapper gate.
#[utoipa::path(post, path = "/api/v1/doors", tag = "structure", request_body = DoorInput,
    responses((status = 201, description = "The new door", body = Door), CreateErrors))]
pub async fn create_door(
    State(state): State<AppState>,
    caller: Manager,
    Input(input): Input<DoorInput>,
) -> WebResult<(StatusCode, Json<Door>)> {
    let actor = caller.actor().to_owned();
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_door(&actor, &input).await?),
    ))
}

/// Get a door.
#[utoipa::path(get, path = "/api/v1/doors/{id}", tag = "structure", params(("id" = Id, Path, description = "Door id")),
    responses((status = 200, description = "The door", body = Door), GetErrors))]
pub async fn get_door(
    State(state): State<AppState>,
    _caller: Caller,
    PathParam(id): PathParam<Id>,
) -> WebResult<Json<Door>> {
    Ok(Json(state.store.door(id).await?))
}

/// Replace a door's configuration.
#[utoipa::path(put, path = "/api/v1/doors/{id}", tag = "structure", params(("id" = Id, Path, description = "Door id")),
    request_body = DoorInput, responses((status = 200, description = "The door", body = Door), UpdateErrors))]
pub async fn update_door(
    State(state): State<AppState>,
    caller: Manager,
    PathParam(id): PathParam<Id>,
    Input(input): Input<DoorInput>,
) -> WebResult<Json<Door>> {
    let actor = caller.actor().to_owned();
    Ok(Json(state.store.update_door(&actor, id, &input).await?))
}

/// Remove a door no booking path uses.
#[utoipa::path(delete, path = "/api/v1/doors/{id}", tag = "structure", params(("id" = Id, Path, description = "Door id")),
    responses((status = 204, description = "Removed"), ActionErrors))]
pub async fn delete_door(
    State(state): State<AppState>,
    caller: Manager,
    PathParam(id): PathParam<Id>,
) -> WebResult<StatusCode> {
    let actor = caller.actor().to_owned();
    state.store.delete_door(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List controllers by id.
#[utoipa::path(get, path = "/api/v1/controllers", tag = "structure", params(Paging),
    responses((status = 200, description = "A page of controllers", body = Page<Controller>), ReadErrors))]
pub async fn list_controllers(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(p): QueryParams<Paging>,
) -> WebResult<Json<Page<Controller>>> {
    Ok(Json(
        state.store.list_controllers(p.limit, p.cursor()).await?,
    ))
}

/// Register a controller (admin only). The answer holds its secret, shown only this once.
#[utoipa::path(post, path = "/api/v1/controllers", tag = "structure", request_body = ControllerInput,
    responses((status = 201, description = "The controller and its credentials", body = ControllerCreated), CreateErrors))]
pub async fn create_controller(
    State(state): State<AppState>,
    caller: Admin,
    Input(input): Input<ControllerInput>,
) -> WebResult<(StatusCode, Json<ControllerCreated>)> {
    let actor = caller.actor().to_owned();
    let credentials = state
        .store
        .add_controller(&actor, input.site_id.get(), input.name.as_str())
        .await?;
    let id = Id::new(i64::from(credentials.controller))
        .ok_or_else(|| WebError::Internal("controller id out of range".into()))?;
    let controller = state.store.controller(id).await?;
    let authorization = tobira_protocol::controller_authorization(
        ControllerId(credentials.controller),
        &credentials.secret,
    );
    Ok((
        StatusCode::CREATED,
        Json(ControllerCreated {
            controller,
            secret: credentials.secret,
            authorization,
            public_key: state.signer.public_key().to_hex(),
        }),
    ))
}

/// Get a controller.
#[utoipa::path(get, path = "/api/v1/controllers/{id}", tag = "structure", params(("id" = Id, Path, description = "Controller id")),
    responses((status = 200, description = "The controller", body = Controller), GetErrors))]
pub async fn get_controller(
    State(state): State<AppState>,
    _caller: Caller,
    PathParam(id): PathParam<Id>,
) -> WebResult<Json<Controller>> {
    Ok(Json(state.store.controller(id).await?))
}
