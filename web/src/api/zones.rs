//! Handlers for zones (with their threat level) and weekly schedules.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ActionErrors, CreateErrors, GetErrors, Input, Paging, ReadErrors, UpdateErrors};
use crate::auth::{Admin, Caller, Manager};
use crate::error::WebResult;
use crate::json::{PathParam, QueryParams};
use crate::store::approvals::{ChangeRequest, PendingChange};
use crate::store::resources::sites::ThreatInput;
use crate::store::resources::zones::{Schedule, ScheduleInput, Zone, ZoneInput};
use crate::store::resources::{Id, Page};
use crate::AppState;
use axum::response::{IntoResponse, Response};

/// Zone list filters.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ZoneFilter {
    /// Only zones of this site.
    pub site: Option<Id>,
}

/// List zones by id.
#[utoipa::path(get, path = "/api/v1/zones", tag = "structure", params(ZoneFilter, Paging),
    responses((status = 200, description = "A page of zones", body = Page<Zone>), ReadErrors))]
pub async fn list_zones(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(f): QueryParams<ZoneFilter>,
    QueryParams(p): QueryParams<Paging>,
) -> WebResult<Json<Page<Zone>>> {
    Ok(Json(
        state.store.list_zones(f.site, p.limit, p.cursor()).await?,
    ))
}

/// Add a zone; settings default from the level when omitted.
#[utoipa::path(post, path = "/api/v1/zones", tag = "structure", request_body = ZoneInput,
    responses((status = 201, description = "The new zone", body = Zone), CreateErrors))]
pub async fn create_zone(
    State(state): State<AppState>,
    caller: Manager,
    Input(input): Input<ZoneInput>,
) -> WebResult<(StatusCode, Json<Zone>)> {
    let actor = caller.actor().to_owned();
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_zone(&actor, &input).await?),
    ))
}

/// Get a zone.
#[utoipa::path(get, path = "/api/v1/zones/{id}", tag = "structure", params(("id" = Id, Path, description = "Zone id")),
    responses((status = 200, description = "The zone", body = Zone), GetErrors))]
pub async fn get_zone(
    State(state): State<AppState>,
    _caller: Caller,
    PathParam(id): PathParam<Id>,
) -> WebResult<Json<Zone>> {
    Ok(Json(state.store.zone(id).await?))
}

/// Replace a zone's configuration (its threat level is kept).
#[utoipa::path(put, path = "/api/v1/zones/{id}", tag = "structure", params(("id" = Id, Path, description = "Zone id")),
    request_body = ZoneInput, responses((status = 200, description = "The zone", body = Zone), UpdateErrors))]
pub async fn update_zone(
    State(state): State<AppState>,
    caller: Manager,
    PathParam(id): PathParam<Id>,
    Input(input): Input<ZoneInput>,
) -> WebResult<Json<Zone>> {
    let actor = caller.actor().to_owned();
    Ok(Json(state.store.update_zone(&actor, id, &input).await?))
}

/// Remove a zone no door, booking or grant refers to.
#[utoipa::path(delete, path = "/api/v1/zones/{id}", tag = "structure", params(("id" = Id, Path, description = "Zone id")),
    responses((status = 204, description = "Removed"), ActionErrors))]
pub async fn delete_zone(
    State(state): State<AppState>,
    caller: Manager,
    PathParam(id): PathParam<Id>,
) -> WebResult<StatusCode> {
    let actor = caller.actor().to_owned();
    state.store.delete_zone(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ask for a zone's own threat level (admin only): a change waits for a
/// second admin's approval (202); controllers hear of it at once when
/// approved. Asking for the level the zone has changes nothing (200).
#[utoipa::path(put, path = "/api/v1/zones/{id}/threat", tag = "structure", params(("id" = Id, Path, description = "Zone id")),
    request_body = ThreatInput, responses((status = 200, description = "The zone (unchanged)", body = Zone),
        (status = 202, description = "Waiting for a second admin's approval", body = PendingChange), UpdateErrors))]
pub async fn set_zone_threat(
    State(state): State<AppState>,
    caller: Admin,
    PathParam(id): PathParam<Id>,
    Input(input): Input<ThreatInput>,
) -> WebResult<Response> {
    let actor = caller.actor().to_owned();
    let change = ChangeRequest::ZoneThreat {
        zone_id: id,
        threat: input.threat,
    };
    if let Some(pending) = state.store.hold_for_approval(&actor, &change).await? {
        return Ok(super::approvals::accepted(pending));
    }
    Ok(Json(
        state
            .store
            .set_zone_threat(&actor, id, input.threat)
            .await?,
    )
    .into_response())
}

/// List schedules by id.
#[utoipa::path(get, path = "/api/v1/schedules", tag = "structure", params(Paging),
    responses((status = 200, description = "A page of schedules", body = Page<Schedule>), ReadErrors))]
pub async fn list_schedules(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(p): QueryParams<Paging>,
) -> WebResult<Json<Page<Schedule>>> {
    Ok(Json(state.store.list_schedules(p.limit, p.cursor()).await?))
}

/// Add a schedule.
#[utoipa::path(post, path = "/api/v1/schedules", tag = "structure", request_body = ScheduleInput,
    responses((status = 201, description = "The new schedule", body = Schedule), CreateErrors))]
pub async fn create_schedule(
    State(state): State<AppState>,
    caller: Manager,
    Input(input): Input<ScheduleInput>,
) -> WebResult<(StatusCode, Json<Schedule>)> {
    let actor = caller.actor().to_owned();
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_schedule(&actor, &input).await?),
    ))
}

/// Get a schedule.
#[utoipa::path(get, path = "/api/v1/schedules/{id}", tag = "structure", params(("id" = Id, Path, description = "Schedule id")),
    responses((status = 200, description = "The schedule", body = Schedule), GetErrors))]
pub async fn get_schedule(
    State(state): State<AppState>,
    _caller: Caller,
    PathParam(id): PathParam<Id>,
) -> WebResult<Json<Schedule>> {
    Ok(Json(state.store.schedule(id).await?))
}

/// Replace a schedule.
#[utoipa::path(put, path = "/api/v1/schedules/{id}", tag = "structure", params(("id" = Id, Path, description = "Schedule id")),
    request_body = ScheduleInput, responses((status = 200, description = "The schedule", body = Schedule), UpdateErrors))]
pub async fn update_schedule(
    State(state): State<AppState>,
    caller: Manager,
    PathParam(id): PathParam<Id>,
    Input(input): Input<ScheduleInput>,
) -> WebResult<Json<Schedule>> {
    let actor = caller.actor().to_owned();
    Ok(Json(state.store.update_schedule(&actor, id, &input).await?))
}

/// Remove a schedule no zone or grant uses.
#[utoipa::path(delete, path = "/api/v1/schedules/{id}", tag = "structure", params(("id" = Id, Path, description = "Schedule id")),
    responses((status = 204, description = "Removed"), ActionErrors))]
pub async fn delete_schedule(
    State(state): State<AppState>,
    caller: Manager,
    PathParam(id): PathParam<Id>,
) -> WebResult<StatusCode> {
    let actor = caller.actor().to_owned();
    state.store.delete_schedule(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
