//! Who is inside now (`/inside`) and the evacuation muster
//! (`/inside/muster`): per tracked zone, the people recorded inside with
//! their escort, and "mark safe" for operators, recorded per muster.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::i18n::Lang;
use super::page::{local_time, render, see_other, PageContext, PageError};
use super::session::{PageAuthorized, Signed};
use crate::auth::Operate;
use crate::store::muster::MusterList;
use crate::store::queries::Occupant;
use crate::store::resources::Id;
use crate::store::StoreError;
use crate::AppState;

/// Someone inside as the pages show them.
#[derive(Debug, Clone)]
struct PersonRow {
    id: i64,
    name: String,
    kind_key: &'static str,
    since: String,
    door: String,
    escort: String,
    marked_by: String,
    marked_at: String,
}

fn person_row(o: &Occupant, zone: &str) -> PersonRow {
    PersonRow {
        id: o.person_id,
        name: o
            .name
            .clone()
            .unwrap_or_else(|| format!("#{}", o.person_id)),
        kind_key: match o.kind.map(|k| k.as_str()) {
            Some("staff") => "kind.staff",
            Some("contractor") => "kind.contractor",
            Some("visitor") => "kind.visitor",
            Some(_) => "kind.citizen",
            None => "",
        },
        since: local_time(o.since, zone),
        door: o.door_name.clone().unwrap_or_default(),
        escort: match (&o.escort_name, o.escort_id) {
            (Some(n), _) => n.clone(),
            (None, Some(id)) => format!("#{id}"),
            (None, None) => String::new(),
        },
        marked_by: String::new(),
        marked_at: String::new(),
    }
}

/// A zone's list.
#[derive(Debug, Clone)]
struct ZoneView {
    id: i64,
    name: String,
    people: Vec<PersonRow>,
}

async fn time_zone(state: &AppState, lang: Lang) -> Result<String, PageError> {
    state
        .store
        .display_time_zone()
        .await
        .map_err(|e| PageError::internal(lang, e))
}

#[derive(Template)]
#[template(path = "inside.html")]
struct InsidePage {
    ctx: PageContext,
    zones: Vec<ZoneView>,
}

/// `GET /inside`: everyone recorded inside each tracked zone; recorded as a read.
pub async fn inside_page(
    State(state): State<AppState>,
    page: Signed,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let zone = time_zone(&state, lang).await?;
    let inside = state
        .store
        .inside()
        .await
        .map_err(|e| PageError::internal(lang, e))?;
    let people = inside.iter().map(|z| z.people.len()).sum();
    state
        .store
        .audit_read(
            &page.principal.actor,
            "who_is_inside.read",
            "inside",
            None,
            people,
        )
        .await
        .map_err(|e| PageError::internal(lang, e))?;
    let zones = inside
        .iter()
        .map(|z| ZoneView {
            id: z.zone_id.get(),
            name: z.zone_name.clone(),
            people: z.people.iter().map(|o| person_row(o, &zone)).collect(),
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &InsidePage {
            ctx: PageContext::signed_in(lang, "/inside", &page.principal, &page.csrf_token)
                .in_time_zone(&zone),
            zones,
        },
    ))
}

/// One earlier muster, as listed.
#[derive(Debug, Clone)]
struct MusterRow {
    started: String,
    started_by: String,
    marked: i64,
}

/// A zone's muster as the page shows it.
#[derive(Debug, Clone)]
struct MusterView {
    zone_id: i64,
    zone_name: String,
    started: String,
    started_by: String,
    unaccounted: usize,
    people: Vec<PersonRow>,
    earlier: Vec<MusterRow>,
}

fn muster_view(list: &MusterList, zone: &str) -> MusterView {
    MusterView {
        zone_id: list.zone_id,
        zone_name: list.zone_name.clone(),
        started: list
            .current
            .as_ref()
            .map(|m| local_time(m.started_at, zone))
            .unwrap_or_default(),
        started_by: list
            .current
            .as_ref()
            .map(|m| m.started_by.clone())
            .unwrap_or_default(),
        unaccounted: list.unaccounted,
        people: list
            .people
            .iter()
            .map(|e| PersonRow {
                marked_by: e.marked_by.clone().unwrap_or_default(),
                marked_at: e.marked_at.map(|t| local_time(t, zone)).unwrap_or_default(),
                ..person_row(&e.occupant, zone)
            })
            .collect(),
        earlier: list
            .earlier
            .iter()
            .map(|m| MusterRow {
                started: local_time(m.started_at, zone),
                started_by: m.started_by.clone(),
                marked: m.marked,
            })
            .collect(),
    }
}

#[derive(Template)]
#[template(path = "muster.html")]
struct MusterPage {
    ctx: PageContext,
    /// The zones to choose from: (id, name, selected).
    choices: Vec<(i64, String, bool)>,
    musters: Vec<MusterView>,
    done_key: &'static str,
    error_key: &'static str,
    /// The zone whose form the error belongs to.
    error_zone: i64,
}

/// The muster page's query: one zone (empty: every tracked zone) and what was just done.
#[derive(Debug, Default, Deserialize)]
pub struct MusterQuery {
    #[serde(default)]
    zone: String,
    #[serde(default)]
    done: String,
}

async fn muster_page(
    state: &AppState,
    page: &PageAuthorized<impl Sync>,
    zone: Option<Id>,
    status: StatusCode,
    done_key: &'static str,
    error: Option<(i64, &'static str)>,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let tz = time_zone(state, lang).await?;
    let all = match state.store.muster_lists(None).await {
        Ok(all) => all,
        Err(e) => return Err(PageError::internal(lang, e)),
    };
    if let Some(z) = zone {
        if !all.iter().any(|l| l.zone_id == z.get()) {
            return Err(PageError::NotFound(lang));
        }
    }
    let people = all.iter().map(|l| l.people.len()).sum();
    state
        .store
        .audit_read(
            &page.principal.actor,
            "muster.read",
            "muster",
            zone.map(|z| format!("zone={z}")).as_deref(),
            people,
        )
        .await
        .map_err(|e| PageError::internal(lang, e))?;
    let choices = all
        .iter()
        .map(|l| {
            (
                l.zone_id,
                l.zone_name.clone(),
                zone.is_some_and(|z| z.get() == l.zone_id),
            )
        })
        .collect();
    let musters = all
        .iter()
        .filter(|l| zone.is_none_or(|z| z.get() == l.zone_id))
        .map(|l| muster_view(l, &tz))
        .collect();
    let path = match zone {
        Some(z) => format!("/inside/muster?zone={z}"),
        None => "/inside/muster".to_string(),
    };
    let (error_zone, error_key) = error.unwrap_or((0, ""));
    Ok(render(
        status,
        &MusterPage {
            ctx: PageContext::signed_in(lang, &path, &page.principal, &page.csrf_token)
                .in_time_zone(&tz),
            choices,
            musters,
            done_key,
            error_key,
            error_zone,
        },
    ))
}

/// `GET /inside/muster?zone=`: the printable muster list of one zone (or of
/// every tracked zone); anyone logged in reads it, operators mark people safe.
pub async fn muster(
    State(state): State<AppState>,
    page: Signed,
    q: Result<Query<MusterQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let Query(q) = q.map_err(|_| PageError::BadRequest(lang))?;
    let zone = match q.zone.trim() {
        "" => None,
        z => Some(
            z.parse::<i64>()
                .ok()
                .and_then(Id::new)
                .ok_or(PageError::BadRequest(lang))?,
        ),
    };
    let done = match q.done.as_str() {
        "marked" => "inside.done.marked",
        "started" => "inside.done.started",
        _ => "",
    };
    muster_page(&state, &page, zone, StatusCode::OK, done, None).await
}

/// The "mark safe" form.
#[derive(Debug, Deserialize)]
pub struct MarkForm {
    #[serde(default)]
    zone_id: String,
    #[serde(default)]
    person_id: String,
}

fn form_id(text: &str, lang: Lang) -> Result<Id, PageError> {
    text.trim()
        .parse::<i64>()
        .ok()
        .and_then(Id::new)
        .ok_or(PageError::BadRequest(lang))
}

/// After a muster change: back to the zone's muster, or the page with why not.
async fn after(
    state: &AppState,
    page: &PageAuthorized<Operate>,
    zone: Id,
    result: Result<i64, StoreError>,
    done: &str,
) -> Result<Response, PageError> {
    let lang = page.lang;
    match result {
        Ok(_) => Ok(see_other(&format!(
            "/inside/muster?zone={zone}&done={done}"
        ))),
        Err(StoreError::NotFound(_)) => Err(PageError::NotFound(lang)),
        Err(StoreError::Invalid(_)) => Err(PageError::BadRequest(lang)),
        Err(StoreError::MissingReference(_)) => {
            let error = Some((zone.get(), "inside.error.person"));
            muster_page(
                state,
                page,
                Some(zone),
                StatusCode::UNPROCESSABLE_ENTITY,
                "",
                error,
            )
            .await
        }
        Err(e) => Err(PageError::internal(lang, e)),
    }
}

/// `POST /inside/muster/mark`: marks someone safe in the zone's current muster.
pub async fn mark(
    State(state): State<AppState>,
    page: PageAuthorized<Operate>,
    Form(form): Form<MarkForm>,
) -> Result<Response, PageError> {
    let zone = form_id(&form.zone_id, page.lang)?;
    let person = form_id(&form.person_id, page.lang)?;
    let result = state
        .store
        .mark_safe(&page.principal.actor, zone, person)
        .await;
    after(&state, &page, zone, result, "marked").await
}

/// The "start a new muster" form: needs the confirmation ticked.
#[derive(Debug, Deserialize)]
pub struct NewMusterForm {
    #[serde(default)]
    zone_id: String,
    #[serde(default)]
    confirm: Option<String>,
}

/// `POST /inside/muster/new`: a new muster for the zone, with no marks.
pub async fn start(
    State(state): State<AppState>,
    page: PageAuthorized<Operate>,
    Form(form): Form<NewMusterForm>,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let zone = form_id(&form.zone_id, lang)?;
    if form.confirm.as_deref().is_none_or(str::is_empty) {
        let error = Some((zone.get(), "inside.error.confirm"));
        return muster_page(
            &state,
            &page,
            Some(zone),
            StatusCode::BAD_REQUEST,
            "",
            error,
        )
        .await;
    }
    let result = state.store.start_muster(&page.principal.actor, zone).await;
    after(&state, &page, zone, result, "started").await
}
