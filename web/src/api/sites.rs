//! Handlers for sites, their threat level and their holiday calendars.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::{ActionErrors, CreateErrors, GetErrors, Input, Paging, ReadErrors, UpdateErrors};
use crate::auth::{Admin, Caller, Manager};
use crate::error::WebResult;
use crate::json::{PathParam, QueryParams};
use crate::store::approvals::{ChangeRequest, PendingChange};
use crate::store::resources::sites::{Holiday, HolidayInput, Site, SiteInput, ThreatInput};
use crate::store::resources::{Id, Page};
use crate::AppState;
use axum::response::{IntoResponse, Response};

/// List sites by id.
#[utoipa::path(get, path = "/api/v1/sites", tag = "structure", params(Paging),
    responses((status = 200, description = "A page of sites", body = Page<Site>), ReadErrors))]
pub async fn list_sites(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(p): QueryParams<Paging>,
) -> WebResult<Json<Page<Site>>> {
    Ok(Json(state.store.list_sites(p.limit, p.cursor()).await?))
}

/// Add a site.
#[utoipa::path(post, path = "/api/v1/sites", tag = "structure", request_body = SiteInput,
    responses((status = 201, description = "The new site", body = Site), CreateErrors))]
pub async fn create_site(
    State(state): State<AppState>,
    caller: Manager,
    Input(input): Input<SiteInput>,
) -> WebResult<(StatusCode, Json<Site>)> {
    let actor = caller.actor().to_owned();
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_site(&actor, &input).await?),
    ))
}

/// Get a site.
#[utoipa::path(get, path = "/api/v1/sites/{id}", tag = "structure", params(("id" = Id, Path, description = "Site id")),
    responses((status = 200, description = "The site", body = Site), GetErrors))]
pub async fn get_site(
    State(state): State<AppState>,
    _caller: Caller,
    PathParam(id): PathParam<Id>,
) -> WebResult<Json<Site>> {
    Ok(Json(state.store.site(id).await?))
}

/// Rename a site or change its time zone.
#[utoipa::path(put, path = "/api/v1/sites/{id}", tag = "structure", params(("id" = Id, Path, description = "Site id")),
    request_body = SiteInput, responses((status = 200, description = "The site", body = Site), UpdateErrors))]
pub async fn update_site(
    State(state): State<AppState>,
    caller: Manager,
    PathParam(id): PathParam<Id>,
    Input(input): Input<SiteInput>,
) -> WebResult<Json<Site>> {
    let actor = caller.actor().to_owned();
    Ok(Json(state.store.update_site(&actor, id, &input).await?))
}

/// Remove a site that has no zones, controllers or holidays.
#[utoipa::path(delete, path = "/api/v1/sites/{id}", tag = "structure", params(("id" = Id, Path, description = "Site id")),
    responses((status = 204, description = "Removed"), ActionErrors))]
pub async fn delete_site(
    State(state): State<AppState>,
    caller: Manager,
    PathParam(id): PathParam<Id>,
) -> WebResult<StatusCode> {
    let actor = caller.actor().to_owned();
    state.store.delete_site(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ask for a site's threat level (admin only): a change waits for a second
/// admin's approval (202); controllers hear of it at once when approved.
/// Asking for the level the site has changes nothing (200).
#[utoipa::path(put, path = "/api/v1/sites/{id}/threat", tag = "structure", params(("id" = Id, Path, description = "Site id")),
    request_body = ThreatInput, responses((status = 200, description = "The site (unchanged)", body = Site),
        (status = 202, description = "Waiting for a second admin's approval", body = PendingChange), UpdateErrors))]
pub async fn set_site_threat(
    State(state): State<AppState>,
    caller: Admin,
    PathParam(id): PathParam<Id>,
    Input(input): Input<ThreatInput>,
) -> WebResult<Response> {
    let actor = caller.actor().to_owned();
    let change = ChangeRequest::SiteThreat {
        site_id: id,
        threat: input.threat,
    };
    if let Some(pending) = state.store.hold_for_approval(&actor, &change).await? {
        return Ok(super::approvals::accepted(pending));
    }
    Ok(Json(
        state
            .store
            .set_site_threat(&actor, id, input.threat)
            .await?,
    )
    .into_response())
}

/// List a site's holidays by date.
#[utoipa::path(get, path = "/api/v1/sites/{id}/holidays", tag = "structure",
    params(("id" = Id, Path, description = "Site id"), Paging),
    responses((status = 200, description = "A page of holidays", body = Page<Holiday>), GetErrors))]
pub async fn list_holidays(
    State(state): State<AppState>,
    _caller: Caller,
    PathParam(id): PathParam<Id>,
    QueryParams(p): QueryParams<Paging>,
) -> WebResult<Json<Page<Holiday>>> {
    Ok(Json(
        state.store.list_holidays(id, p.limit, p.cursor()).await?,
    ))
}

/// Add a holiday, or rename the holiday on that date.
#[utoipa::path(put, path = "/api/v1/sites/{id}/holidays/{date}", tag = "structure",
    params(("id" = Id, Path, description = "Site id"),
           ("date" = String, Path, description = "Date, YYYY-MM-DD", format = Date)),
    request_body = HolidayInput, responses((status = 200, description = "The holiday", body = Holiday), UpdateErrors))]
pub async fn put_holiday(
    State(state): State<AppState>,
    caller: Manager,
    PathParam((id, date)): PathParam<(Id, String)>,
    Input(input): Input<HolidayInput>,
) -> WebResult<Json<Holiday>> {
    let actor = caller.actor().to_owned();
    Ok(Json(
        state.store.put_holiday(&actor, id, &date, &input).await?,
    ))
}

/// Remove a holiday.
#[utoipa::path(delete, path = "/api/v1/sites/{id}/holidays/{date}", tag = "structure",
    params(("id" = Id, Path, description = "Site id"),
           ("date" = String, Path, description = "Date, YYYY-MM-DD", format = Date)),
    responses((status = 204, description = "Removed"), ActionErrors))]
pub async fn delete_holiday(
    State(state): State<AppState>,
    caller: Manager,
    PathParam((id, date)): PathParam<(Id, String)>,
) -> WebResult<StatusCode> {
    let actor = caller.actor().to_owned();
    state.store.delete_holiday(&actor, id, &date).await?;
    Ok(StatusCode::NO_CONTENT)
}
