//! The alarm console `/alarms`: alarms not yet cleared by escalation and
//! priority, acknowledged with a comment, cleared once their cause is gone;
//! and the cleared ones, newest first.

use askama::Template;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::i18n::Lang;
use super::page::{local_time, render, see_other, PageContext, PageError};
use super::session::{PageAuthorized, Signed};
use crate::auth::Operate;
use crate::store::alarms::{Alarm, AlarmState};
use crate::store::resources::Id;
use crate::store::StoreError;
use crate::AppState;

/// Alarms the console shows at most (escalated and most urgent first).
const CONSOLE_MAX: i64 = 500;
/// Cleared alarms per page.
const CLEARED_PAGE: i64 = 50;

/// An alarm's kind in words: a refusal's reason, a door or device event,
/// or one of the service's own alarms; the code itself if none fits.
pub fn kind_label(lang: Lang, kind: &str) -> String {
    let key = match kind.strip_prefix("access:") {
        Some(reason) => format!("reason.{reason}"),
        None => format!("alarm.kind.{kind}"),
    };
    [key, format!("event.{kind}")]
        .iter()
        .map(|k| lang.t(k))
        .find(|t| *t != "??")
        .map_or_else(|| kind.to_owned(), str::to_owned)
}

/// One alarm as the console shows it.
struct AlarmRow {
    id: i64,
    priority: i64,
    at: String,
    kind: String,
    message: String,
    door: String,
    door_id: Option<i64>,
    person: String,
    person_id: Option<i64>,
    card: String,
    acknowledged: String,
    acknowledged_by: String,
    ack_comment: String,
    cleared: String,
    cleared_by: String,
    clear_comment: String,
    escalated: bool,
    cause_gone: bool,
    /// The comment typed into this alarm's form, kept after a refusal.
    typed: String,
    /// The refusal's text for this alarm's form.
    problem: String,
}

impl AlarmRow {
    fn of(a: Alarm, lang: Lang, tz: &str) -> AlarmRow {
        let time = |ms: Option<i64>| ms.map(|m| local_time(m, tz)).unwrap_or_default();
        AlarmRow {
            id: a.id.get(),
            priority: a.priority,
            at: local_time(a.at, tz),
            kind: kind_label(lang, &a.kind),
            message: a.message,
            door: a.door_name.unwrap_or_default(),
            door_id: a.door_id,
            person: a.person_name.unwrap_or_default(),
            person_id: a.person_id,
            card: a.card.unwrap_or_default(),
            acknowledged: time(a.acknowledged_at),
            acknowledged_by: a.acknowledged_by.unwrap_or_default(),
            ack_comment: a.ack_comment.unwrap_or_default(),
            cleared: time(a.cleared_at),
            cleared_by: a.cleared_by.unwrap_or_default(),
            clear_comment: a.clear_comment.unwrap_or_default(),
            escalated: a.escalated_at.is_some(),
            cause_gone: a.cause_gone,
            typed: String::new(),
            problem: String::new(),
        }
    }
}

#[derive(Template)]
#[template(path = "alarms/list.html")]
struct AlarmsPage {
    ctx: PageContext,
    cleared_view: bool,
    rows: Vec<AlarmRow>,
    next: String,
    may_operate: bool,
}

/// Which list, and where the cleared list goes on.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    cursor: String,
}

/// A refusal to show on one alarm's form.
struct Refusal {
    id: i64,
    typed: String,
    text: String,
}

async fn page(
    state: &AppState,
    page: &PageAuthorized<impl Send + Sync>,
    query: &ListQuery,
    refusal: Option<Refusal>,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let internal = |e: StoreError| PageError::internal(lang, e);
    let tz = state.store.display_time_zone().await.map_err(internal)?;
    let cleared_view = query.state == "cleared";
    let (alarms, next) = if cleared_view {
        let cursor = (!query.cursor.is_empty()).then_some(query.cursor.as_str());
        let found = state
            .store
            .list_alarms(AlarmState::Cleared, CLEARED_PAGE, cursor)
            .await
            .map_err(|e| match e {
                StoreError::Invalid(_) => PageError::BadRequest(lang),
                e => internal(e),
            })?;
        let next = found
            .next
            .map(|c| format!("/alarms?state=cleared&cursor={c}"))
            .unwrap_or_default();
        (found.items, next)
    } else {
        (
            state
                .store
                .console_alarms(CONSOLE_MAX)
                .await
                .map_err(internal)?,
            String::new(),
        )
    };
    let mut rows: Vec<AlarmRow> = alarms
        .into_iter()
        .map(|a| AlarmRow::of(a, lang, &tz))
        .collect();
    let status = match refusal {
        Some(r) => {
            if let Some(row) = rows.iter_mut().find(|row| row.id == r.id) {
                row.typed = r.typed;
                row.problem = r.text;
            }
            StatusCode::UNPROCESSABLE_ENTITY
        }
        None => StatusCode::OK,
    };
    let ctx = PageContext::signed_in(lang, "/alarms", &page.principal, &page.csrf_token);
    Ok(render(
        status,
        &AlarmsPage {
            may_operate: ctx.may_operate,
            ctx,
            cleared_view,
            rows,
            next,
        },
    ))
}

/// `GET /alarms`: the console (`?state=cleared`: the cleared ones).
pub async fn list(
    State(state): State<AppState>,
    viewer: Signed,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    page(&state, &viewer, &query, None).await
}

/// An acknowledgement's or a clearing's comment (the CSRF token is checked by the guard).
#[derive(Debug, Deserialize)]
pub struct CommentForm {
    #[serde(default)]
    comment: String,
}

/// Runs one alarm action; a refusal shows on that alarm's form.
async fn act(
    state: AppState,
    operator: PageAuthorized<Operate>,
    id: Result<Path<i64>, PathRejection>,
    form: CommentForm,
    clear: bool,
) -> Result<Response, PageError> {
    let lang = operator.lang;
    let id = id
        .ok()
        .and_then(|Path(id)| Id::new(id))
        .ok_or(PageError::NotFound(lang))?;
    let actor = operator.principal.actor.clone();
    let done = if clear {
        state.store.clear_alarm(&actor, id, &form.comment).await
    } else {
        state.store.ack_alarm(&actor, id, &form.comment).await
    };
    match done {
        Ok(_) => Ok(see_other(&format!("/alarms#alarm-{id}"))),
        Err(StoreError::NotFound(_)) => Err(PageError::NotFound(lang)),
        Err(StoreError::Invalid(text) | StoreError::Conflict(text)) => {
            let refusal = Refusal {
                id: id.get(),
                typed: form.comment,
                text,
            };
            page(&state, &operator, &ListQuery::default(), Some(refusal)).await
        }
        Err(e) => Err(PageError::internal(lang, e)),
    }
}

/// `POST /alarms/{id}/ack`.
pub async fn acknowledge(
    State(state): State<AppState>,
    operator: PageAuthorized<Operate>,
    id: Result<Path<i64>, PathRejection>,
    Form(form): Form<CommentForm>,
) -> Result<Response, PageError> {
    act(state, operator, id, form, false).await
}

/// `POST /alarms/{id}/clear`.
pub async fn clear(
    State(state): State<AppState>,
    operator: PageAuthorized<Operate>,
    id: Result<Path<i64>, PathRejection>,
    Form(form): Form<CommentForm>,
) -> Result<Response, PageError> {
    act(state, operator, id, form, true).await
}
