//! The lockdown console `/lockdown`: start a lockdown of a site or a zone
//! with a confirmation (operators), release it with a comment (admins), and
//! when each step reached each controller.

use askama::Template;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::i18n::Lang;
use super::page::{local_time, render, see_other, PageContext, PageError};
use super::session::{PageAuthorized, Signed};
use crate::auth::{Administer, Operate};
use crate::store::lockdowns::{Lockdown, LockdownInput, LockdownState};
use crate::store::resources::Id;
use crate::store::StoreError;
use crate::AppState;

/// One controller's line under a lockdown.
struct ReachRow {
    id: i64,
    name: String,
    locked: String,
    released: String,
    last_seen: String,
}

/// One lockdown as the console shows it.
struct LockdownRow {
    id: i64,
    active: bool,
    scope: String,
    reason: String,
    started: String,
    started_by: String,
    released: String,
    released_by: String,
    release_comment: String,
    /// Controllers the lockdown (or its release) has not reached yet.
    waiting: usize,
    controllers: Vec<ReachRow>,
    /// The comment typed into its release form, kept after a refusal.
    typed: String,
    problem: String,
}

impl LockdownRow {
    fn of(l: Lockdown, lang: Lang, tz: &str) -> LockdownRow {
        let time = |ms: Option<i64>| ms.map(|m| local_time(m, tz)).unwrap_or_default();
        let active = l.active();
        let waiting = l
            .controllers
            .iter()
            .filter(|c| {
                if active {
                    c.locked_at.is_none()
                } else {
                    c.released_at.is_none()
                }
            })
            .count();
        LockdownRow {
            id: l.id.get(),
            active,
            scope: match (&l.zone_name, l.zone_id) {
                (Some(zone), Some(_)) => format!("{} — {zone}", l.site_name),
                _ => format!("{} — {}", l.site_name, lang.t("lockdown.whole_site")),
            },
            reason: l.reason,
            started: local_time(l.started_at, tz),
            started_by: l.started_by,
            released: time(l.released_at),
            released_by: l.released_by.unwrap_or_default(),
            release_comment: l.release_comment.unwrap_or_default(),
            waiting,
            controllers: l
                .controllers
                .into_iter()
                .map(|c| ReachRow {
                    id: c.controller_id.get(),
                    name: c.name,
                    locked: time(c.locked_at),
                    released: time(c.released_at),
                    last_seen: time(c.last_seen_at),
                })
                .collect(),
            typed: String::new(),
            problem: String::new(),
        }
    }
}

#[derive(Template)]
#[template(path = "lockdown/page.html")]
struct LockdownPage {
    ctx: PageContext,
    active: Vec<LockdownRow>,
    released: Vec<LockdownRow>,
    /// The scopes a lockdown can take: (`site:ID` or `zone:ID`, label).
    scopes: Vec<(String, String)>,
    start: StartForm,
    start_problem: String,
    /// A refusal about a lockdown no longer on the active list.
    notice: String,
}

/// A refusal to show beside one release form.
struct Refusal {
    id: i64,
    typed: String,
    text: String,
}

async fn page(
    state: &AppState,
    viewer: &PageAuthorized<impl Send + Sync>,
    start: StartForm,
    start_problem: String,
    refusal: Option<Refusal>,
) -> Result<Response, PageError> {
    let lang = viewer.lang;
    let internal = |e: StoreError| PageError::internal(lang, e);
    let tz = state.store.display_time_zone().await.map_err(internal)?;
    let lockdowns = state
        .store
        .lockdowns(LockdownState::All)
        .await
        .map_err(internal)?;
    let mut scopes: Vec<(String, String)> = state
        .store
        .names("sites")
        .await
        .map_err(internal)?
        .into_iter()
        .map(|(id, name)| {
            (
                format!("site:{id}"),
                format!("{name} — {}", lang.t("lockdown.whole_site")),
            )
        })
        .collect();
    scopes.extend(
        state
            .store
            .zone_choices()
            .await
            .map_err(internal)?
            .into_iter()
            .map(|(id, name, level)| {
                (
                    format!("zone:{id}"),
                    format!("{name} ({} {level})", lang.t("lockdown.level")),
                )
            }),
    );
    let (mut active, released): (Vec<_>, Vec<_>) = lockdowns
        .into_iter()
        .map(|l| LockdownRow::of(l, lang, &tz))
        .partition(|l| l.active);
    let refused = refusal.is_some() || !start_problem.is_empty();
    let mut notice = String::new();
    if let Some(r) = refusal {
        match active.iter_mut().find(|row| row.id == r.id) {
            Some(row) => {
                row.typed = r.typed;
                row.problem = r.text;
            }
            None => notice = r.text,
        }
    }
    let ctx = PageContext::signed_in(lang, "/lockdown", &viewer.principal, &viewer.csrf_token)
        .in_time_zone(&tz);
    let status = if refused {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(render(
        status,
        &LockdownPage {
            ctx,
            active,
            released,
            scopes,
            start,
            start_problem,
            notice,
        },
    ))
}

/// `GET /lockdown`: the lockdowns in force, when they reached each
/// controller, the start form and the released ones.
pub async fn console(State(state): State<AppState>, viewer: Signed) -> Result<Response, PageError> {
    page(&state, &viewer, StartForm::default(), String::new(), None).await
}

/// The start form (the CSRF token is checked by the guard).
#[derive(Debug, Default, Deserialize)]
pub struct StartForm {
    /// `site:ID` or `zone:ID`.
    #[serde(default)]
    scope: String,
    #[serde(default)]
    reason: String,
    /// The "I understand" box: present only when ticked.
    #[serde(default)]
    confirm: String,
}

impl StartForm {
    /// The API's input, or which field is wrong.
    fn input(&self, lang: Lang) -> Result<LockdownInput, String> {
        let id = |text: &str| {
            text.parse::<i64>()
                .ok()
                .and_then(Id::new)
                .ok_or_else(|| lang.t("lockdown.pick_scope").to_owned())
        };
        let (site_id, zone_id) = match self.scope.split_once(':') {
            Some(("site", site)) => (Some(id(site)?), None),
            Some(("zone", zone)) => (None, Some(id(zone)?)),
            _ => return Err(lang.t("lockdown.pick_scope").to_owned()),
        };
        if self.confirm.is_empty() {
            return Err(lang.t("lockdown.confirm_needed").to_owned());
        }
        Ok(LockdownInput {
            site_id,
            zone_id,
            reason: self.reason.clone(),
        })
    }
}

/// `POST /lockdown`: starts a lockdown once its box is ticked.
pub async fn start(
    State(state): State<AppState>,
    operator: PageAuthorized<Operate>,
    Form(form): Form<StartForm>,
) -> Result<Response, PageError> {
    let lang = operator.lang;
    let input = match form.input(lang) {
        Ok(input) => input,
        Err(problem) => return page(&state, &operator, form, problem, None).await,
    };
    let actor = operator.principal.actor.clone();
    match state.store.start_lockdown(&actor, &input).await {
        Ok(l) => Ok(see_other(&format!("/lockdown#lockdown-{}", l.id))),
        Err(
            StoreError::Invalid(text)
            | StoreError::Conflict(text)
            | StoreError::MissingReference(text),
        ) => page(&state, &operator, form, text, None).await,
        Err(e) => Err(PageError::internal(lang, e)),
    }
}

/// The release form.
#[derive(Debug, Deserialize)]
pub struct ReleaseForm {
    #[serde(default)]
    comment: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /lockdown/{id}/release`: admins end a lockdown, with a comment.
pub async fn release(
    State(state): State<AppState>,
    admin: PageAuthorized<Administer>,
    id: Result<Path<i64>, PathRejection>,
    Form(form): Form<ReleaseForm>,
) -> Result<Response, PageError> {
    let lang = admin.lang;
    let id = id
        .ok()
        .and_then(|Path(id)| Id::new(id))
        .ok_or(PageError::NotFound(lang))?;
    let refuse = |text: String| Refusal {
        id: id.get(),
        typed: form.comment.clone(),
        text,
    };
    if form.confirm.is_empty() {
        let refusal = refuse(lang.t("lockdown.confirm_release_needed").to_owned());
        return page(
            &state,
            &admin,
            StartForm::default(),
            String::new(),
            Some(refusal),
        )
        .await;
    }
    let actor = admin.principal.actor.clone();
    match state
        .store
        .release_lockdown(&actor, id, &form.comment)
        .await
    {
        Ok(_) => Ok(see_other(&format!("/lockdown#lockdown-{id}"))),
        Err(StoreError::NotFound(_)) => Err(PageError::NotFound(lang)),
        Err(StoreError::Invalid(text) | StoreError::Conflict(text)) => {
            page(
                &state,
                &admin,
                StartForm::default(),
                String::new(),
                Some(refuse(text)),
            )
            .await
        }
        Err(e) => Err(PageError::internal(lang, e)),
    }
}
