//! Handlers for the monthly machine-room review (the months, one month
//! prepared, its sign-off) and access re-certification (who can enter a
//! zone, a manager's pass, the passes recorded).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{CreateErrors, GetErrors, Input, ReadErrors, UpdateErrors};
use crate::auth::{Caller, Manager, Reviewer};
use crate::error::{WebError, WebResult};
use crate::json::{PathParam, QueryParams};
use crate::store::recertification::{Recertification, RecertificationInput, ZoneAccess};
use crate::store::resources::Id;
use crate::store::reviews::{Month, MonthReview, ReviewList, SignOff};
use crate::store::{now_ms, Store};
use crate::AppState;

/// A reviewer's sign-off.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignOffInput {
    /// What was looked at and what was found (not blank).
    #[schema(min_length = 1, max_length = 2000)]
    pub comment: String,
}

/// Which zone's access to list.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ZoneChoice {
    /// The zone (default: the first level-4 zone).
    pub zone: Option<Id>,
}

/// The zone asked for, else the first level-4 zone (404 without one).
pub async fn chosen_zone(store: &Store, zone: Option<Id>) -> WebResult<Id> {
    if let Some(z) = zone {
        return Ok(z);
    }
    store
        .zone_choices()
        .await?
        .into_iter()
        .find(|(_, _, level)| *level == 4)
        .and_then(|(id, _, _)| Id::new(id))
        .ok_or_else(|| WebError::NotFound("no level-4 zone; name a zone".into()))
}

/// The review months (the current one and the 12 before it) with their
/// sign-offs, the month to review by default, and every sign-off.
#[utoipa::path(get, path = "/api/v1/reviews", tag = "review",
    responses((status = 200, description = "Months and sign-offs", body = ReviewList), ReadErrors))]
pub async fn list_reviews(
    State(state): State<AppState>,
    _caller: Caller,
) -> WebResult<Json<ReviewList>> {
    let zone = state.store.display_time_zone().await?;
    Ok(Json(state.store.review_list(&zone, now_ms()).await?))
}

/// A month (`YYYY-MM`, in the site's time zone) prepared for the review of
/// every level-4 zone: entries, denied attempts, doors forced or held open,
/// entries out of hours (before 07:00, from 20:00, weekends, the site's
/// holidays) and grant or membership changes, each with its count and up to
/// 500 rows, and the sign-off if there is one. Reading it is audited.
#[utoipa::path(get, path = "/api/v1/reviews/{month}", tag = "review",
    params(("month" = String, Path, description = "The month, YYYY-MM")),
    responses((status = 200, description = "The month prepared", body = MonthReview), ReadErrors))]
pub async fn get_review(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(month): PathParam<String>,
) -> WebResult<Json<MonthReview>> {
    let month = Month::parse(&month)?;
    let zone = state.store.display_time_zone().await?;
    let review = state.store.prepare_review(month, &zone, now_ms()).await?;
    let c = review.counts;
    let rows = c.entries + c.denied + c.doors + c.access_changes;
    state
        .store
        .audit_read(
            caller.actor(),
            "review.read",
            &format!("review:{month}"),
            None,
            usize::try_from(rows).unwrap_or(usize::MAX),
        )
        .await?;
    Ok(Json(review))
}

/// Sign a month off (security reviewer or admin) with a comment; the counts
/// at this moment are kept with it. 409: the month has not ended yet, or is
/// already signed off.
#[utoipa::path(post, path = "/api/v1/reviews/{month}/sign-off", tag = "review",
    params(("month" = String, Path, description = "The month, YYYY-MM")),
    request_body = SignOffInput,
    responses((status = 201, description = "The sign-off", body = SignOff), CreateErrors))]
pub async fn sign_off(
    State(state): State<AppState>,
    caller: Reviewer,
    PathParam(month): PathParam<String>,
    Input(input): Input<SignOffInput>,
) -> WebResult<(StatusCode, Json<SignOff>)> {
    let month = Month::parse(&month)?;
    let zone = state.store.display_time_zone().await?;
    let done = state
        .store
        .sign_off_review(caller.actor(), month, &input.comment, &zone, now_ms())
        .await?;
    Ok((StatusCode::CREATED, Json(done)))
}

/// Everyone who can enter a zone now (default: the first level-4 zone) and
/// through what: a group's grant (revoking removes the membership, and with
/// it the group's other zones) or a room booking (revoking deletes it).
#[utoipa::path(get, path = "/api/v1/reviews/access", tag = "review", params(ZoneChoice),
    responses((status = 200, description = "Who can enter", body = ZoneAccess), GetErrors))]
pub async fn zone_access(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(q): QueryParams<ZoneChoice>,
) -> WebResult<Json<ZoneAccess>> {
    let zone = chosen_zone(&state.store, q.zone).await?;
    Ok(Json(state.store.zone_access(zone, now_ms()).await?))
}

/// The re-certification passes, newest first (at most 200), optionally of one zone.
#[utoipa::path(get, path = "/api/v1/recertifications", tag = "review", params(ZoneChoice),
    responses((status = 200, description = "The passes", body = Vec<Recertification>), ReadErrors))]
pub async fn list_recertifications(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(q): QueryParams<ZoneChoice>,
) -> WebResult<Json<Vec<Recertification>>> {
    Ok(Json(state.store.recertifications(q.zone).await?))
}

/// Re-certify a zone (facilities or admin): everyone in `revoke` loses their
/// way in, everyone else who can enter is confirmed. 400: someone in
/// `revoke` cannot enter the zone; 404: no such zone.
#[utoipa::path(post, path = "/api/v1/recertifications", tag = "review",
    request_body = RecertificationInput,
    responses((status = 201, description = "The pass recorded", body = Recertification), UpdateErrors))]
pub async fn recertify(
    State(state): State<AppState>,
    caller: Manager,
    Input(input): Input<RecertificationInput>,
) -> WebResult<(StatusCode, Json<Recertification>)> {
    let done = state
        .store
        .recertify(caller.actor(), &input, now_ms())
        .await?;
    Ok((StatusCode::CREATED, Json(done)))
}
