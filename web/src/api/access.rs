//! Handlers for access groups, their members, grants and room bookings.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ActionErrors, CreateErrors, GetErrors, Input, Paging, ReadErrors, UpdateErrors};
use crate::auth::{Caller, Manager};
use crate::error::WebResult;
use crate::json::{PathParam, QueryParams};
use crate::store::resources::access::{
    Booking, BookingInput, Grant, GrantInput, Group, GroupInput,
};
use crate::store::resources::people::Person;
use crate::store::resources::{Id, Page};
use crate::AppState;

/// Grant list filters.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GrantFilter {
    /// Only this group's grants.
    pub group: Option<Id>,
}

/// Booking list filters.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BookingFilter {
    /// Only this person's bookings.
    pub person: Option<Id>,
    /// Only bookings of this room.
    pub room: Option<Id>,
}

/// List access groups by id.
#[utoipa::path(get, path = "/api/v1/groups", tag = "access", params(Paging),
    responses((status = 200, description = "A page of groups", body = Page<Group>), ReadErrors))]
pub async fn list_groups(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(p): QueryParams<Paging>,
) -> WebResult<Json<Page<Group>>> {
    Ok(Json(state.store.list_groups(p.limit, p.cursor()).await?))
}

/// Add an access group.
#[utoipa::path(post, path = "/api/v1/groups", tag = "access", request_body = GroupInput,
    responses((status = 201, description = "The new group", body = Group), CreateErrors))]
pub async fn create_group(
    State(state): State<AppState>,
    caller: Manager,
    Input(input): Input<GroupInput>,
) -> WebResult<(StatusCode, Json<Group>)> {
    let actor = caller.actor().to_owned();
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_group(&actor, &input).await?),
    ))
}

/// Get an access group.
#[utoipa::path(get, path = "/api/v1/groups/{id}", tag = "access", params(("id" = Id, Path, description = "Group id")),
    responses((status = 200, description = "The group", body = Group), GetErrors))]
pub async fn get_group(
    State(state): State<AppState>,
    _caller: Caller,
    PathParam(id): PathParam<Id>,
) -> WebResult<Json<Group>> {
    Ok(Json(state.store.group(id).await?))
}

/// Rename an access group.
#[utoipa::path(put, path = "/api/v1/groups/{id}", tag = "access", params(("id" = Id, Path, description = "Group id")),
    request_body = GroupInput, responses((status = 200, description = "The group", body = Group), UpdateErrors))]
pub async fn update_group(
    State(state): State<AppState>,
    caller: Manager,
    PathParam(id): PathParam<Id>,
    Input(input): Input<GroupInput>,
) -> WebResult<Json<Group>> {
    let actor = caller.actor().to_owned();
    Ok(Json(state.store.update_group(&actor, id, &input).await?))
}

/// Remove an access group with its memberships and grants.
#[utoipa::path(delete, path = "/api/v1/groups/{id}", tag = "access", params(("id" = Id, Path, description = "Group id")),
    responses((status = 204, description = "Removed"), ActionErrors))]
pub async fn delete_group(
    State(state): State<AppState>,
    caller: Manager,
    PathParam(id): PathParam<Id>,
) -> WebResult<StatusCode> {
    let actor = caller.actor().to_owned();
    state.store.delete_group(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List a group's members by person id.
#[utoipa::path(get, path = "/api/v1/groups/{id}/members", tag = "access", params(("id" = Id, Path, description = "Group id"), Paging),
    responses((status = 200, description = "A page of members", body = Page<Person>), GetErrors))]
pub async fn list_members(
    State(state): State<AppState>,
    _caller: Caller,
    PathParam(id): PathParam<Id>,
    QueryParams(p): QueryParams<Paging>,
) -> WebResult<Json<Page<Person>>> {
    Ok(Json(
        state.store.list_members(id, p.limit, p.cursor()).await?,
    ))
}

/// Add a person to a group (no change if they already are a member).
#[utoipa::path(put, path = "/api/v1/groups/{id}/members/{person_id}", tag = "access",
    params(("id" = Id, Path, description = "Group id"), ("person_id" = Id, Path, description = "Person id")),
    responses((status = 204, description = "The person is a member"), ActionErrors))]
pub async fn add_member(
    State(state): State<AppState>,
    caller: Manager,
    PathParam((group, person)): PathParam<(Id, Id)>,
) -> WebResult<StatusCode> {
    let actor = caller.actor().to_owned();
    state.store.add_member(&actor, group, person).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a person from a group.
#[utoipa::path(delete, path = "/api/v1/groups/{id}/members/{person_id}", tag = "access",
    params(("id" = Id, Path, description = "Group id"), ("person_id" = Id, Path, description = "Person id")),
    responses((status = 204, description = "Removed"), ActionErrors))]
pub async fn remove_member(
    State(state): State<AppState>,
    caller: Manager,
    PathParam((group, person)): PathParam<(Id, Id)>,
) -> WebResult<StatusCode> {
    let actor = caller.actor().to_owned();
    state.store.remove_member(&actor, group, person).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List grants by id.
#[utoipa::path(get, path = "/api/v1/grants", tag = "access", params(GrantFilter, Paging),
    responses((status = 200, description = "A page of grants", body = Page<Grant>), ReadErrors))]
pub async fn list_grants(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(f): QueryParams<GrantFilter>,
    QueryParams(p): QueryParams<Paging>,
) -> WebResult<Json<Page<Grant>>> {
    Ok(Json(
        state
            .store
            .list_grants(f.group, p.limit, p.cursor())
            .await?,
    ))
}

/// Add a grant: a group's members may enter these zones on this schedule.
#[utoipa::path(post, path = "/api/v1/grants", tag = "access", request_body = GrantInput,
    responses((status = 201, description = "The new grant", body = Grant), CreateErrors))]
pub async fn create_grant(
    State(state): State<AppState>,
    caller: Manager,
    Input(input): Input<GrantInput>,
) -> WebResult<(StatusCode, Json<Grant>)> {
    let actor = caller.actor().to_owned();
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_grant(&actor, &input).await?),
    ))
}

/// Get a grant.
#[utoipa::path(get, path = "/api/v1/grants/{id}", tag = "access", params(("id" = Id, Path, description = "Grant id")),
    responses((status = 200, description = "The grant", body = Grant), GetErrors))]
pub async fn get_grant(
    State(state): State<AppState>,
    _caller: Caller,
    PathParam(id): PathParam<Id>,
) -> WebResult<Json<Grant>> {
    Ok(Json(state.store.grant(id).await?))
}

/// Replace a grant.
#[utoipa::path(put, path = "/api/v1/grants/{id}", tag = "access", params(("id" = Id, Path, description = "Grant id")),
    request_body = GrantInput, responses((status = 200, description = "The grant", body = Grant), UpdateErrors))]
pub async fn update_grant(
    State(state): State<AppState>,
    caller: Manager,
    PathParam(id): PathParam<Id>,
    Input(input): Input<GrantInput>,
) -> WebResult<Json<Grant>> {
    let actor = caller.actor().to_owned();
    Ok(Json(state.store.update_grant(&actor, id, &input).await?))
}

/// Remove a grant.
#[utoipa::path(delete, path = "/api/v1/grants/{id}", tag = "access", params(("id" = Id, Path, description = "Grant id")),
    responses((status = 204, description = "Removed"), ActionErrors))]
pub async fn delete_grant(
    State(state): State<AppState>,
    caller: Manager,
    PathParam(id): PathParam<Id>,
) -> WebResult<StatusCode> {
    let actor = caller.actor().to_owned();
    state.store.delete_grant(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List room bookings by id.
#[utoipa::path(get, path = "/api/v1/bookings", tag = "access", params(BookingFilter, Paging),
    responses((status = 200, description = "A page of bookings", body = Page<Booking>), ReadErrors))]
pub async fn list_bookings(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(f): QueryParams<BookingFilter>,
    QueryParams(p): QueryParams<Paging>,
) -> WebResult<Json<Page<Booking>>> {
    Ok(Json(
        state
            .store
            .list_bookings(f.person, f.room, p.limit, p.cursor())
            .await?,
    ))
}

/// Book a room for a person: access to the room and the doors on the way, in the window only.
#[utoipa::path(post, path = "/api/v1/bookings", tag = "access", request_body = BookingInput,
    responses((status = 201, description = "The new booking", body = Booking), CreateErrors))]
pub async fn create_booking(
    State(state): State<AppState>,
    caller: Manager,
    Input(input): Input<BookingInput>,
) -> WebResult<(StatusCode, Json<Booking>)> {
    let actor = caller.actor().to_owned();
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_booking(&actor, &input).await?),
    ))
}

/// Get a booking.
#[utoipa::path(get, path = "/api/v1/bookings/{id}", tag = "access", params(("id" = Id, Path, description = "Booking id")),
    responses((status = 200, description = "The booking", body = Booking), GetErrors))]
pub async fn get_booking(
    State(state): State<AppState>,
    _caller: Caller,
    PathParam(id): PathParam<Id>,
) -> WebResult<Json<Booking>> {
    Ok(Json(state.store.booking(id).await?))
}

/// Replace a booking.
#[utoipa::path(put, path = "/api/v1/bookings/{id}", tag = "access", params(("id" = Id, Path, description = "Booking id")),
    request_body = BookingInput, responses((status = 200, description = "The booking", body = Booking), UpdateErrors))]
pub async fn update_booking(
    State(state): State<AppState>,
    caller: Manager,
    PathParam(id): PathParam<Id>,
    Input(input): Input<BookingInput>,
) -> WebResult<Json<Booking>> {
    let actor = caller.actor().to_owned();
    Ok(Json(state.store.update_booking(&actor, id, &input).await?))
}

/// Cancel a booking.
#[utoipa::path(delete, path = "/api/v1/bookings/{id}", tag = "access", params(("id" = Id, Path, description = "Booking id")),
    responses((status = 204, description = "Removed"), ActionErrors))]
pub async fn delete_booking(
    State(state): State<AppState>,
    caller: Manager,
    PathParam(id): PathParam<Id>,
) -> WebResult<StatusCode> {
    let actor = caller.actor().to_owned();
    state.store.delete_booking(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
