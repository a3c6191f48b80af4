//! Handlers for people and their biometric enrollments.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ActionErrors, CreateErrors, GetErrors, Input, Paging, ReadErrors, UpdateErrors};
use crate::auth::{Caller, Manager};
use crate::error::WebResult;
use crate::json::{PathParam, QueryParams};
use crate::store::resources::people::{Enrollment, EnrollmentInput, Person, PersonInput};
use crate::store::resources::{Id, Page, PersonKind};
use crate::AppState;

/// People list filters.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PersonFilter {
    /// Only people of this kind.
    pub kind: Option<PersonKind>,
}

/// Enrollment list filters.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EnrollmentFilter {
    /// Only this person's enrollments.
    pub person: Option<Id>,
    /// Only enrollments on this module.
    pub module: Option<Id>,
}

/// List people by id.
#[utoipa::path(get, path = "/api/v1/people", tag = "people", params(PersonFilter, Paging),
    responses((status = 200, description = "A page of people", body = Page<Person>), ReadErrors))]
pub async fn list_people(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(f): QueryParams<PersonFilter>,
    QueryParams(p): QueryParams<Paging>,
    RawQuery(query): RawQuery,
) -> WebResult<Json<Page<Person>>> {
    let page = state.store.list_people(f.kind, p.limit, p.cursor()).await?;
    state
        .store
        .audit_read(
            caller.actor(),
            "people.list",
            "people",
            query.as_deref(),
            page.items.len(),
        )
        .await?;
    Ok(Json(page))
}

/// Add a person.
#[utoipa::path(post, path = "/api/v1/people", tag = "people", request_body = PersonInput,
    responses((status = 201, description = "The new person", body = Person), CreateErrors))]
pub async fn create_person(
    State(state): State<AppState>,
    caller: Manager,
    Input(input): Input<PersonInput>,
) -> WebResult<(StatusCode, Json<Person>)> {
    let actor = caller.actor().to_owned();
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_person(&actor, &input).await?),
    ))
}

/// Get a person.
#[utoipa::path(get, path = "/api/v1/people/{id}", tag = "people", params(("id" = Id, Path, description = "Person id")),
    responses((status = 200, description = "The person", body = Person), GetErrors))]
pub async fn get_person(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam<Id>,
) -> WebResult<Json<Person>> {
    let person = state.store.person(id).await?;
    state
        .store
        .audit_read(
            caller.actor(),
            "person.read",
            &format!("person:{id}"),
            None,
            1,
        )
        .await?;
    Ok(Json(person))
}

/// Replace a person's kind, name and organisation.
#[utoipa::path(put, path = "/api/v1/people/{id}", tag = "people", params(("id" = Id, Path, description = "Person id")),
    request_body = PersonInput, responses((status = 200, description = "The person", body = Person), UpdateErrors))]
pub async fn update_person(
    State(state): State<AppState>,
    caller: Manager,
    PathParam(id): PathParam<Id>,
    Input(input): Input<PersonInput>,
) -> WebResult<Json<Person>> {
    let actor = caller.actor().to_owned();
    Ok(Json(state.store.update_person(&actor, id, &input).await?))
}

/// Remove a person who holds no cards, with their memberships, enrollments and bookings.
#[utoipa::path(delete, path = "/api/v1/people/{id}", tag = "people", params(("id" = Id, Path, description = "Person id")),
    responses((status = 204, description = "Removed"), ActionErrors))]
pub async fn delete_person(
    State(state): State<AppState>,
    caller: Manager,
    PathParam(id): PathParam<Id>,
) -> WebResult<StatusCode> {
    let actor = caller.actor().to_owned();
    state.store.delete_person(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List biometric enrollments by module and slot.
#[utoipa::path(get, path = "/api/v1/enrollments", tag = "people", params(EnrollmentFilter, Paging),
    responses((status = 200, description = "A page of enrollments", body = Page<Enrollment>), ReadErrors))]
pub async fn list_enrollments(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(f): QueryParams<EnrollmentFilter>,
    QueryParams(p): QueryParams<Paging>,
) -> WebResult<Json<Page<Enrollment>>> {
    Ok(Json(
        state
            .store
            .list_enrollments(f.person, f.module, p.limit, p.cursor())
            .await?,
    ))
}

/// Record that a person's template is in a module's slot (one person per slot, one slot per person and module).
#[utoipa::path(post, path = "/api/v1/enrollments", tag = "people", request_body = EnrollmentInput,
    responses((status = 201, description = "The enrollment", body = Enrollment), CreateErrors))]
pub async fn create_enrollment(
    State(state): State<AppState>,
    caller: Manager,
    Input(input): Input<EnrollmentInput>,
) -> WebResult<(StatusCode, Json<Enrollment>)> {
    let actor = caller.actor().to_owned();
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_enrollment(&actor, &input).await?),
    ))
}

/// Remove the enrollment in a module's slot. The controller that drives the
/// module is sent a job to clear the slot on the module too (see `GET /api/v1/enrollment-jobs`).
#[utoipa::path(delete, path = "/api/v1/enrollments/{module_id}/{slot}", tag = "people",
    params(("module_id" = Id, Path, description = "Biometric module id"),
           ("slot" = u16, Path, description = "Template slot", minimum = 0, maximum = 65535)),
    responses((status = 204, description = "Removed"), ActionErrors))]
pub async fn delete_enrollment(
    State(state): State<AppState>,
    caller: Manager,
    PathParam((module, slot)): PathParam<(Id, u16)>,
) -> WebResult<StatusCode> {
    let actor = caller.actor().to_owned();
    state.store.delete_enrollment(&actor, module, slot).await?;
    Ok(StatusCode::NO_CONTENT)
}
