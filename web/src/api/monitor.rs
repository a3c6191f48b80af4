//! Handlers for the live monitor: its current view, and its stream of
//! updates as server-sent events with JSON data.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::ReadErrors;
use crate::auth::Caller;
use crate::error::{WebError, WebResult};
use crate::json::QueryParams;
use crate::monitor::{stream, MonitorFilter, MonitorView, Update};
use crate::store::resources::{Id, Level, Outcome};
use crate::ui::Clock;
use crate::AppState;

/// The stream's filter and where to resume.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    /// Only this site.
    pub site: Option<Id>,
    /// Only this zone (events and doors into it).
    pub zone: Option<Id>,
    /// Only doors into zones of this level, and events decided at it.
    pub level: Option<Level>,
    /// Only access events with this outcome.
    pub outcome: Option<Outcome>,
    /// Resume after this event's `position` (a `Last-Event-ID` header wins).
    pub after: Option<String>,
}

impl StreamParams {
    fn filter(&self) -> MonitorFilter {
        MonitorFilter {
            site: self.site,
            zone: self.zone,
            level: self.level,
            outcome: self.outcome,
        }
    }
}

/// What the monitor shows now: the latest events (newest first), every
/// door's state and every controller's health, through the filter.
#[utoipa::path(get, path = "/api/v1/monitor", tag = "events", params(MonitorFilter),
    responses((status = 200, description = "The monitor's view", body = MonitorView), ReadErrors))]
pub async fn view(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(filter): QueryParams<MonitorFilter>,
) -> WebResult<Json<MonitorView>> {
    let (view, _) = state.monitor.open().await?;
    Ok(Json(view.filtered(&filter)))
}

/// Updates as they happen, as server-sent events (`text/event-stream`):
/// each `data` is one JSON update (`type` = `event`, `door`, `controller`
/// or `alarms`); an event's `id` is its position, so a client that
/// reconnects with `Last-Event-ID` gets what it missed (up to 200 events)
/// and then every door and controller again. The stream ends when the
/// token is revoked.
#[utoipa::path(get, path = "/api/v1/monitor/stream", tag = "events", params(StreamParams),
    responses((status = 200, description = "A stream of updates", content_type = "text/event-stream", body = Update), ReadErrors))]
pub async fn updates(
    State(state): State<AppState>,
    _caller: Caller,
    headers: HeaderMap,
    QueryParams(params): QueryParams<StreamParams>,
) -> WebResult<Response> {
    let filter = params.filter();
    let resume = crate::ui::monitor::last_event_id(&headers)
        .or(params.after)
        .unwrap_or_default();
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(WebError::Unauthorized)?
        .to_owned();
    let opened = stream::open(&state, &resume).await?;
    let store = state.store.clone();
    let allowed: stream::StillAllowed = Box::new(move || {
        let (store, token) = (store.clone(), token.clone());
        Box::pin(async move { matches!(store.verify_token(&token).await, Ok(Some(_))) })
    });
    let render: stream::Render = Box::new(move |update: &Update, _now: i64| {
        if !filter.passes(update) {
            return None;
        }
        let event = Event::default().json_data(update).ok()?;
        Some(match update {
            Update::Event(e) => event.id(e.position.clone()),
            _ => event,
        })
    });
    Ok(stream::sse(opened, allowed, render, Clock::System).into_response())
}
