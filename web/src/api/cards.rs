//! Handlers for cards: issue, validity, lifecycle actions and state history.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{CreateErrors, GetErrors, Input, Paging, ReadErrors, UpdateErrors};
use crate::auth::{Caller, Manager, Operator};
use crate::error::{WebError, WebResult};
use crate::json::{PathParam, QueryParams};
use crate::store::resources::cards::{
    Card, CardAction, CardDetail, CardInput, CardNote, CardValidity,
};
use crate::store::resources::{CardState, Id, Page, Uid};
use crate::AppState;

/// Card list filters.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CardFilter {
    /// Only this person's cards.
    pub person: Option<Id>,
    /// Only cards in this state.
    pub state: Option<CardState>,
}

/// List cards by UID.
#[utoipa::path(get, path = "/api/v1/cards", tag = "people", params(CardFilter, Paging),
    responses((status = 200, description = "A page of cards", body = Page<Card>), ReadErrors))]
pub async fn list_cards(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(f): QueryParams<CardFilter>,
    QueryParams(p): QueryParams<Paging>,
) -> WebResult<Json<Page<Card>>> {
    Ok(Json(
        state
            .store
            .list_cards(f.person, f.state, p.limit, p.cursor())
            .await?,
    ))
}

/// Issue a card to a person; it starts active.
#[utoipa::path(post, path = "/api/v1/cards", tag = "people", request_body = CardInput,
    responses((status = 201, description = "The new card", body = Card), CreateErrors))]
pub async fn create_card(
    State(state): State<AppState>,
    caller: Manager,
    Input(input): Input<CardInput>,
) -> WebResult<(StatusCode, Json<Card>)> {
    let actor = caller.actor().to_owned();
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_card(&actor, &input).await?),
    ))
}

/// Get a card with its state history.
#[utoipa::path(get, path = "/api/v1/cards/{uid}", tag = "people", params(("uid" = Uid, Path, description = "Card UID (hex)")),
    responses((status = 200, description = "The card and its history", body = CardDetail), GetErrors))]
pub async fn get_card(
    State(state): State<AppState>,
    _caller: Caller,
    PathParam(uid): PathParam<Uid>,
) -> WebResult<Json<CardDetail>> {
    Ok(Json(state.store.card_detail(&uid).await?))
}

/// Change a card's validity window.
#[utoipa::path(put, path = "/api/v1/cards/{uid}", tag = "people", params(("uid" = Uid, Path, description = "Card UID (hex)")),
    request_body = CardValidity, responses((status = 200, description = "The card", body = Card), UpdateErrors))]
pub async fn update_card(
    State(state): State<AppState>,
    caller: Manager,
    PathParam(uid): PathParam<Uid>,
    Input(input): Input<CardValidity>,
) -> WebResult<Json<Card>> {
    let actor = caller.actor().to_owned();
    Ok(Json(state.store.update_card(&actor, &uid, &input).await?))
}

/// The optional JSON note of a lifecycle action: an empty body or `null` is no note.
fn note(body: Result<Bytes, BytesRejection>) -> WebResult<CardNote> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            WebError::TooLarge
        } else {
            WebError::BadRequest(e.body_text())
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(CardNote::default());
    }
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| WebError::BadRequest(format!("bad note: {e}")))?;
    if value.is_null() {
        return Ok(CardNote::default());
    }
    crate::store::resources::from_object(value).map_err(WebError::BadRequest)
}

async fn act(
    state: AppState,
    caller: Operator,
    uid: Uid,
    action: CardAction,
    body: Result<Bytes, BytesRejection>,
) -> WebResult<Json<Card>> {
    let actor = caller.actor().to_owned();
    let note = note(body)?;
    let text = note.note.as_ref().map(|n| n.as_str());
    Ok(Json(
        state.store.card_action(&actor, &uid, action, text).await?,
    ))
}

/// Report a card lost: it stops working at once, at every controller.
#[utoipa::path(post, path = "/api/v1/cards/{uid}/lost", tag = "people", params(("uid" = Uid, Path, description = "Card UID (hex)")),
    request_body(content = Option<CardNote>, description = "Optional note"),
    responses((status = 200, description = "The card", body = Card), UpdateErrors))]
pub async fn report_lost(
    State(state): State<AppState>,
    caller: Operator,
    PathParam(uid): PathParam<Uid>,
    body: Result<Bytes, BytesRejection>,
) -> WebResult<Json<Card>> {
    act(state, caller, uid, CardAction::ReportLost, body).await
}

/// Suspend an active card.
#[utoipa::path(post, path = "/api/v1/cards/{uid}/suspend", tag = "people", params(("uid" = Uid, Path, description = "Card UID (hex)")),
    request_body(content = Option<CardNote>, description = "Optional note"),
    responses((status = 200, description = "The card", body = Card), UpdateErrors))]
pub async fn suspend(
    State(state): State<AppState>,
    caller: Operator,
    PathParam(uid): PathParam<Uid>,
    body: Result<Bytes, BytesRejection>,
) -> WebResult<Json<Card>> {
    act(state, caller, uid, CardAction::Suspend, body).await
}

/// Revoke a card for good.
#[utoipa::path(post, path = "/api/v1/cards/{uid}/revoke", tag = "people", params(("uid" = Uid, Path, description = "Card UID (hex)")),
    request_body(content = Option<CardNote>, description = "Optional note"),
    responses((status = 200, description = "The card", body = Card), UpdateErrors))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Operator,
    PathParam(uid): PathParam<Uid>,
    body: Result<Bytes, BytesRejection>,
) -> WebResult<Json<Card>> {
    act(state, caller, uid, CardAction::Revoke, body).await
}

/// Record a card as returned or destroyed (e.g. replaced); final.
#[utoipa::path(post, path = "/api/v1/cards/{uid}/return", tag = "people", params(("uid" = Uid, Path, description = "Card UID (hex)")),
    request_body(content = Option<CardNote>, description = "Optional note"),
    responses((status = 200, description = "The card", body = Card), UpdateErrors))]
pub async fn return_card(
    State(state): State<AppState>,
    caller: Operator,
    PathParam(uid): PathParam<Uid>,
    body: Result<Bytes, BytesRejection>,
) -> WebResult<Json<Card>> {
    act(state, caller, uid, CardAction::Return, body).await
}

/// Put a suspended or found (lost) card back in use.
#[utoipa::path(post, path = "/api/v1/cards/{uid}/reactivate", tag = "people", params(("uid" = Uid, Path, description = "Card UID (hex)")),
    request_body(content = Option<CardNote>, description = "Optional note"),
    responses((status = 200, description = "The card", body = Card), UpdateErrors))]
pub async fn reactivate(
    State(state): State<AppState>,
    caller: Operator,
    PathParam(uid): PathParam<Uid>,
    body: Result<Bytes, BytesRejection>,
) -> WebResult<Json<Card>> {
    act(state, caller, uid, CardAction::Reactivate, body).await
}
