//! The four-eyes approval pages: the changes waiting for a second admin (and
//! those decided), one change in words with its approve and refuse forms.

use askama::Template;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, RawForm, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::forms::Submitted;
use super::i18n::{role_key, Lang};
use super::page::{local_time, render, see_other, PageContext, PageError};
use super::session::{PageAuthorized, Signed};
use crate::auth::Administer;
use crate::store::approvals::{ChangeRequest, ChangeState, PendingChange};
use crate::store::resources::Id;
use crate::store::{Store, StoreError};
use crate::AppState;

/// Most changes the list shows (pending first, then the newest decided).
const LIST_SIZE: i64 = 500;

/// A change as the pages show it.
#[derive(Debug, Clone)]
struct ChangeView {
    id: i64,
    what: String,
    requested_by: String,
    requested_at: String,
    state: &'static str,
    state_key: &'static str,
    decided_by: String,
    decided_at: String,
    comment: String,
    result: String,
    pending: bool,
}

fn state_key(state: ChangeState) -> &'static str {
    match state {
        ChangeState::Pending => "approvals.state.pending",
        ChangeState::Approved => "approvals.state.approved",
        ChangeState::Refused => "approvals.state.refused",
        ChangeState::Failed => "approvals.state.failed",
    }
}

async fn site_name(store: &Store, id: Id) -> String {
    store
        .site(id)
        .await
        .map_or_else(|_| format!("#{id}"), |s| s.name)
}

async fn zone_text(store: &Store, id: Id, lang: Lang) -> String {
    match store.zone(id).await {
        Ok(z) => format!(
            "{} ({} {})",
            z.name,
            lang.t("approvals.level"),
            z.level.get()
        ),
        Err(_) => format!("#{id}"),
    }
}

async fn group_name(store: &Store, id: Id) -> String {
    store
        .group(id)
        .await
        .map_or_else(|_| format!("#{id}"), |g| g.name)
}

async fn person_name(store: &Store, id: Id) -> String {
    store
        .person(id)
        .await
        .map_or_else(|_| format!("#{id}"), |p| p.name)
}

fn threat_text(lang: Lang, threat: &str) -> &'static str {
    lang.t(&format!("threat.{threat}"))
}

/// The change in words, e.g. "threat level of site City Hall: normal → high";
/// the "from" side only while it is pending (it is what is there now).
async fn describe(store: &Store, change: &PendingChange, lang: Lang) -> String {
    let now = change.state == ChangeState::Pending;
    let t = |k: &str| lang.t(k);
    match &change.change {
        ChangeRequest::SiteThreat { site_id, threat } => {
            let from = match store.site(*site_id).await {
                Ok(s) if now => format!("{} → ", threat_text(lang, s.threat.as_str())),
                _ => String::new(),
            };
            format!(
                "{} {}: {from}{}",
                t("approvals.what.site_threat"),
                site_name(store, *site_id).await,
                threat_text(lang, threat.as_str())
            )
        }
        ChangeRequest::ZoneThreat { zone_id, threat } => {
            let from = match store.zone(*zone_id).await {
                Ok(z) if now => format!("{} → ", threat_text(lang, z.settings.threat.as_str())),
                _ => String::new(),
            };
            format!(
                "{} {}: {from}{}",
                t("approvals.what.zone_threat"),
                zone_text(store, *zone_id, lang).await,
                threat_text(lang, threat.as_str())
            )
        }
        ChangeRequest::GrantCreate { grant } | ChangeRequest::GrantUpdate { grant, .. } => {
            let mut zones = Vec::new();
            for z in &grant.zones {
                zones.push(zone_text(store, *z, lang).await);
            }
            let which = match &change.change {
                ChangeRequest::GrantUpdate { grant_id, .. } => format!(" #{grant_id}"),
                _ => String::new(),
            };
            format!(
                "{}{which}: {} {} → {}",
                t("approvals.what.grant"),
                t("approvals.group"),
                group_name(store, grant.group_id).await,
                zones.join("、")
            )
        }
        ChangeRequest::MemberAdd {
            group_id,
            person_id,
        } => format!(
            "{}: {} → {} {}",
            t("approvals.what.member"),
            person_name(store, *person_id).await,
            t("approvals.group"),
            group_name(store, *group_id).await
        ),
        ChangeRequest::EnrollmentCreate { enrollment } => format!(
            "{}: {} ({} {}, {} {})",
            t("approvals.what.enrollment"),
            person_name(store, enrollment.person_id).await,
            t("field.module"),
            enrollment.module_id,
            t("field.slot"),
            enrollment.slot
        ),
        ChangeRequest::EnrollmentJob { request } => format!(
            "{}: {} ({} {})",
            t("approvals.what.enrollment_job"),
            person_name(store, request.person_id).await,
            t("field.module"),
            request.module_id
        ),
        ChangeRequest::UserRole { user_id, role } => {
            let (name, from) = match store.user(*user_id).await {
                Ok(u) if now => (u.username, format!("{} → ", t(role_key(u.role)))),
                Ok(u) => (u.username, String::new()),
                Err(_) => (format!("#{user_id}"), String::new()),
            };
            format!(
                "{} {name}: {from}{}",
                t("approvals.what.user_role"),
                t(role_key(*role))
            )
        }
    }
}

async fn view(state: &AppState, change: &PendingChange, lang: Lang, zone: &str) -> ChangeView {
    ChangeView {
        id: change.id.get(),
        what: describe(&state.store, change, lang).await,
        requested_by: change.requested_by.clone(),
        requested_at: local_time(change.requested_at.get(), zone),
        state: change.state.as_str(),
        state_key: state_key(change.state),
        decided_by: change.decided_by.clone().unwrap_or_default(),
        decided_at: change
            .decided_at
            .map(|at| local_time(at.get(), zone))
            .unwrap_or_default(),
        comment: change.comment.clone().unwrap_or_default(),
        result: change.result.clone().unwrap_or_default(),
        pending: change.state == ChangeState::Pending,
    }
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct ListPage {
    ctx: PageContext,
    changes: Vec<ChangeView>,
}

/// `GET /approvals`: pending changes first (oldest first), then the decided
/// ones, newest first.
pub async fn list(State(state): State<AppState>, page: Signed) -> Result<Response, PageError> {
    let lang = page.lang;
    let fail = |e: StoreError| PageError::internal(lang, e);
    let zone = super::resources::time_zone(&state.store, lang).await?;
    let mut all = state
        .store
        .list_changes(None, Some(LIST_SIZE), None)
        .await
        .map_err(fail)?
        .items;
    all.sort_by_key(|c| {
        let pending = c.state == ChangeState::Pending;
        (!pending, if pending { c.id.get() } else { -c.id.get() })
    });
    let mut changes = Vec::with_capacity(all.len());
    for c in &all {
        changes.push(view(&state, c, lang, &zone).await);
    }
    Ok(render(
        StatusCode::OK,
        &ListPage {
            ctx: PageContext::signed_in(lang, "/approvals", &page.principal, &page.csrf_token),
            changes,
        },
    ))
}

#[derive(Template)]
#[template(path = "approval.html")]
struct ChangePage {
    ctx: PageContext,
    change: ChangeView,
    /// The viewer asked for it: no approve or refuse forms.
    own: bool,
    /// The viewer may decide it (an admin, not the requester, still pending).
    may_decide: bool,
    /// Catalog key of a notice at the top, or "".
    notice_key: &'static str,
    /// A refusal of the last form, or "".
    error: String,
}

/// The query of a change's page after a form.
#[derive(Debug, Deserialize)]
pub struct Notice {
    done: Option<String>,
}

fn notice_key(done: Option<&str>) -> &'static str {
    match done {
        Some("requested") => "approvals.done.requested",
        Some("approved") => "approvals.done.approved",
        Some("failed") => "approvals.done.failed",
        Some("refused") => "approvals.done.refused",
        _ => "",
    }
}

fn change_id(id: Result<Path<i64>, PathRejection>, lang: Lang) -> Result<Id, PageError> {
    id.ok()
        .and_then(|Path(id)| Id::new(id))
        .ok_or(PageError::NotFound(lang))
}

async fn change_page<Q>(
    state: &AppState,
    page: &PageAuthorized<Q>,
    id: Id,
    status: StatusCode,
    notice: &'static str,
    error: String,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let change = match state.store.change(id).await {
        Ok(c) => c,
        Err(StoreError::NotFound(_)) => return Err(PageError::NotFound(lang)),
        Err(e) => return Err(PageError::internal(lang, e)),
    };
    let zone = super::resources::time_zone(&state.store, lang).await?;
    let own = change.requested_by == page.principal.actor;
    let pending = change.state == ChangeState::Pending;
    let path = format!("/approvals/{id}");
    Ok(render(
        status,
        &ChangePage {
            ctx: PageContext::signed_in(lang, &path, &page.principal, &page.csrf_token),
            may_decide: pending && !own && page.principal.role.is_admin(),
            own,
            change: view(state, &change, lang, &zone).await,
            notice_key: notice,
            error,
        },
    ))
}

/// `GET /approvals/{id}`.
pub async fn show(
    State(state): State<AppState>,
    page: Signed,
    id: Result<Path<i64>, PathRejection>,
    Query(q): Query<Notice>,
) -> Result<Response, PageError> {
    let id = change_id(id, page.lang)?;
    let notice = notice_key(q.done.as_deref());
    change_page(&state, &page, id, StatusCode::OK, notice, String::new()).await
}

/// The change's page again after a refused decision: 403 for the requester
/// (or a non-admin), 409 once decided, 400 for a missing tick or comment.
async fn refused(
    state: &AppState,
    page: &PageAuthorized<Administer>,
    id: Id,
    e: StoreError,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let (status, key) = match e {
        StoreError::NotFound(_) => return Err(PageError::NotFound(lang)),
        StoreError::NotAllowed(_) => (StatusCode::FORBIDDEN, "approvals.error.own"),
        StoreError::Conflict(_) => (StatusCode::CONFLICT, "approvals.error.decided"),
        StoreError::Invalid(_) => (StatusCode::BAD_REQUEST, "approvals.error.comment"),
        other => return Err(PageError::internal(lang, other)),
    };
    change_page(state, page, id, status, "", lang.t(key).to_string()).await
}

fn form_of(raw: &RawForm) -> Submitted {
    Submitted::new(serde_urlencoded::from_bytes(&raw.0).unwrap_or_default())
}

/// `POST /approvals/{id}/approve` (admins, not the requester): with the
/// confirmation ticked, the change is applied at once.
pub async fn approve(
    State(state): State<AppState>,
    page: PageAuthorized<Administer>,
    id: Result<Path<i64>, PathRejection>,
    raw: RawForm,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let id = change_id(id, lang)?;
    if form_of(&raw).one("confirm").is_empty() {
        let why = lang.t("approvals.error.confirm").to_string();
        return change_page(&state, &page, id, StatusCode::BAD_REQUEST, "", why).await;
    }
    let role = page.principal.role;
    match state
        .store
        .approve_change(&page.principal.actor, role, id)
        .await
    {
        Ok(done) if done.state == ChangeState::Failed => {
            Ok(see_other(&format!("/approvals/{id}?done=failed")))
        }
        Ok(_) => Ok(see_other(&format!("/approvals/{id}?done=approved"))),
        Err(e) => refused(&state, &page, id, e).await,
    }
}

/// `POST /approvals/{id}/refuse` (admins, not the requester): needs a comment.
pub async fn refuse(
    State(state): State<AppState>,
    page: PageAuthorized<Administer>,
    id: Result<Path<i64>, PathRejection>,
    raw: RawForm,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let id = change_id(id, lang)?;
    let form = form_of(&raw);
    let role = page.principal.role;
    match state
        .store
        .refuse_change(&page.principal.actor, role, id, form.one("comment"))
        .await
    {
        Ok(_) => Ok(see_other(&format!("/approvals/{id}?done=refused"))),
        Err(e) => refused(&state, &page, id, e).await,
    }
}

/// Where a form that asked for a change needing approval sends the browser:
/// the change's page, which says it waits for a second admin.
pub fn requested(change: &PendingChange) -> Response {
    see_other(&format!("/approvals/{}?done=requested", change.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_the_handlers_pick_is_in_the_catalog() {
        let keys = [
            "approvals.error.own",
            "approvals.error.decided",
            "approvals.error.comment",
            "approvals.error.confirm",
            "approvals.level",
            "approvals.group",
            "approvals.what.site_threat",
            "approvals.what.zone_threat",
            "approvals.what.grant",
            "approvals.what.member",
            "approvals.what.enrollment",
            "approvals.what.enrollment_job",
            "approvals.what.user_role",
        ];
        let states = ChangeState::ALL.map(state_key);
        let notices = ["requested", "approved", "failed", "refused"].map(|d| notice_key(Some(d)));
        for key in keys.into_iter().chain(states).chain(notices) {
            assert!(!key.is_empty());
            for lang in Lang::ALL {
                assert_ne!(lang.t(key), "??", "{key}");
            }
        }
    }
}
