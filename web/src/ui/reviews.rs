//! The review pages: the months with their sign-offs, one month prepared
//! for the machine-room review with its sign-off form, and the access
//! re-certification of a zone with one confirm-or-revoke choice per person.

use askama::Template;
use axum::extract::{Path, Query, RawForm, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::forms::Submitted;
use super::i18n::Lang;
use super::page::{local_time, render, see_other, PageContext, PageError};
use super::session::{PageAuthorized, Signed};
use crate::auth::{Manage, SignOffReview};
use crate::store::audit::AuditEntry;
use crate::store::queries::EventRecord;
use crate::store::recertification::{RecertificationInput, RouteKind, ZoneAccess};
use crate::store::resources::Id;
use crate::store::reviews::{Month, MonthReview, ReviewCounts, SignOff, DAY_ENDS, DAY_STARTS};
use crate::store::{now_ms, StoreError};
use crate::AppState;

/// A sign-off as the pages show it.
#[derive(Debug, Clone)]
struct SignOffView {
    month: String,
    signed_by: String,
    signed_at: String,
    comment: String,
}

fn sign_off_view(s: &SignOff, zone: &str) -> SignOffView {
    SignOffView {
        month: s.month.clone(),
        signed_by: s.signed_by.clone(),
        signed_at: local_time(s.signed_at, zone),
        comment: s.comment.clone(),
    }
}

/// A month in the list.
#[derive(Debug, Clone)]
struct MonthView {
    month: String,
    ended: bool,
    default: bool,
    sign_off: Option<SignOffView>,
}

#[derive(Template)]
#[template(path = "reviews/list.html")]
struct ListPage {
    ctx: PageContext,
    default_month: String,
    months: Vec<MonthView>,
    sign_offs: Vec<SignOffView>,
}

/// `GET /reviews`: the current month and the 12 before it with their
/// state, the last completed one marked as the one to review; every sign-off.
pub async fn list(State(state): State<AppState>, page: Signed) -> Result<Response, PageError> {
    let lang = page.lang;
    let zone = super::resources::time_zone(&state.store, lang).await?;
    let list = state
        .store
        .review_list(&zone, now_ms())
        .await
        .map_err(|e| PageError::internal(lang, e))?;
    let months = list
        .months
        .iter()
        .map(|m| MonthView {
            default: m.month == list.default_month,
            month: m.month.clone(),
            ended: m.ended,
            sign_off: m.sign_off.as_ref().map(|s| sign_off_view(s, &zone)),
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &ListPage {
            ctx: PageContext::signed_in(lang, "/reviews", &page.principal, &page.csrf_token)
                .in_time_zone(&zone),
            default_month: list.default_month,
            months,
            sign_offs: list
                .sign_offs
                .iter()
                .map(|s| sign_off_view(s, &zone))
                .collect(),
        },
    ))
}

/// One count: now, and at signing time (if signed off).
#[derive(Debug, Clone)]
struct CountRow {
    key: &'static str,
    anchor: &'static str,
    now: i64,
    signed: String,
    changed: bool,
}

fn count_rows(now: ReviewCounts, signed: Option<ReviewCounts>) -> Vec<CountRow> {
    let pick = |c: ReviewCounts| {
        [
            c.entries,
            c.denied,
            c.doors,
            c.out_of_hours,
            c.access_changes,
        ]
    };
    let keys = [
        ("reviews.section.entries", "entries"),
        ("reviews.section.denied", "denied"),
        ("reviews.section.doors", "doors"),
        ("reviews.section.out_of_hours", "out-of-hours"),
        ("reviews.section.access_changes", "access-changes"),
    ];
    let now = pick(now);
    let then = signed.map(pick);
    keys.iter()
        .enumerate()
        .map(|(i, (key, anchor))| CountRow {
            key,
            anchor,
            now: now[i],
            signed: then.map(|t| t[i].to_string()).unwrap_or_default(),
            changed: then.is_some_and(|t| t[i] != now[i]),
        })
        .collect()
}

/// A visit row.
#[derive(Debug, Clone)]
struct VisitView {
    person: String,
    card: String,
    entered: String,
    left: String,
    door: String,
    companion: String,
}

/// An event row (denied attempt, door, out-of-hours entry).
#[derive(Debug, Clone)]
struct EventView {
    at: String,
    what: String,
    person: String,
    card: String,
    door: String,
}

fn event_view(e: &EventRecord, zone: &str) -> EventView {
    EventView {
        at: local_time(e.at, zone),
        what: e.reason.clone().unwrap_or_else(|| e.kind.clone()),
        person: e
            .person_name
            .clone()
            .or(e.person_name_at_event.clone())
            .unwrap_or_default(),
        card: e.card.clone().unwrap_or_default(),
        door: e
            .door_name
            .clone()
            .or(e.door_name_at_event.clone())
            .unwrap_or_default(),
    }
}

/// An access change row.
#[derive(Debug, Clone)]
struct ChangeView {
    at: String,
    actor: String,
    action: String,
    target: String,
    detail: String,
}

fn change_view(a: &AuditEntry, zone: &str) -> ChangeView {
    ChangeView {
        at: local_time(a.at, zone),
        actor: a.actor.clone(),
        action: a.action.clone(),
        target: a.target.clone(),
        detail: a.detail.clone(),
    }
}

#[derive(Template)]
#[template(path = "reviews/month.html")]
struct MonthPage {
    ctx: PageContext,
    month: String,
    ended: bool,
    counts: Vec<CountRow>,
    visits: Vec<VisitView>,
    denied: Vec<EventView>,
    doors: Vec<EventView>,
    out_of_hours: Vec<EventView>,
    changes: Vec<ChangeView>,
    sign_off: Option<SignOffView>,
    may_sign: bool,
    history_link: String,
    denied_link: String,
    events_links: Vec<(String, String)>,
    hours: String,
    notice: bool,
    error: String,
    comment: String,
}

/// The query of a month's page after its sign-off.
#[derive(Debug, Deserialize)]
pub struct Notice {
    done: Option<String>,
}

/// The month's first and last local dates, `YYYY-MM-DD`.
fn month_dates(month: Month) -> (String, String) {
    let first = format!("{month}-01");
    let last = first
        .parse::<jiff::civil::Date>()
        .map(|d| d.last_of_month().to_string())
        .unwrap_or_else(|_| first.clone());
    (first, last)
}

fn month_of(text: &str, lang: Lang) -> Result<Month, PageError> {
    Month::parse(text).map_err(|_| PageError::NotFound(lang))
}

async fn month_page<R>(
    state: &AppState,
    page: &PageAuthorized<R>,
    month: Month,
    status: StatusCode,
    notice: bool,
    error: String,
    comment: String,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let zone = super::resources::time_zone(&state.store, lang).await?;
    let review: MonthReview = state
        .store
        .prepare_review(month, &zone, now_ms())
        .await
        .map_err(|e| PageError::internal(lang, e))?;
    let c = review.counts;
    state
        .store
        .audit_read(
            &page.principal.actor,
            "review.read",
            &format!("review:{month}"),
            None,
            usize::try_from(c.entries + c.denied + c.doors + c.access_changes).unwrap_or(0),
        )
        .await
        .map_err(|e| PageError::internal(lang, e))?;
    let (first, last) = month_dates(month);
    let zones = state
        .store
        .zone_choices()
        .await
        .map_err(|e| PageError::internal(lang, e))?;
    let events_links = zones
        .into_iter()
        .filter(|(id, _, _)| review.zone_ids.contains(id))
        .map(|(id, name, _)| (format!("/events?zone={id}&from={first}&to={last}"), name))
        .collect();
    let visits = review
        .visits
        .iter()
        .map(|v| VisitView {
            person: v.person_name.clone().unwrap_or_default(),
            card: v.card.clone().unwrap_or_default(),
            entered: v
                .entered_at
                .map(|t| local_time(t, &zone))
                .unwrap_or_default(),
            left: v.left_at.map(|t| local_time(t, &zone)).unwrap_or_default(),
            door: v
                .entry_door_name
                .clone()
                .or(v.exit_door_name.clone())
                .unwrap_or_default(),
            companion: v.companion_name.clone().unwrap_or_default(),
        })
        .collect();
    let path = format!("/reviews/{month}");
    Ok(render(
        status,
        &MonthPage {
            ctx: PageContext::signed_in(lang, &path, &page.principal, &page.csrf_token)
                .in_time_zone(&zone),
            month: month.to_string(),
            ended: review.ended,
            counts: count_rows(c, review.sign_off.as_ref().map(|s| s.counts)),
            visits,
            denied: review.denied.iter().map(|e| event_view(e, &zone)).collect(),
            doors: review.doors.iter().map(|e| event_view(e, &zone)).collect(),
            out_of_hours: review
                .out_of_hours
                .iter()
                .map(|e| event_view(e, &zone))
                .collect(),
            changes: review
                .access_changes
                .iter()
                .map(|a| change_view(a, &zone))
                .collect(),
            sign_off: review.sign_off.as_ref().map(|s| sign_off_view(s, &zone)),
            may_sign: SignOffReviewCheck::allows(&page.principal),
            history_link: format!("/history?from={first}&to={last}"),
            denied_link: format!("/history?outcome=denied&from={first}&to={last}"),
            events_links,
            hours: format!("{DAY_STARTS:02}:00–{DAY_ENDS:02}:00"),
            notice,
            error,
            comment,
        },
    ))
}

/// Whether the viewer may sign off (the form is shown only to them).
struct SignOffReviewCheck;

impl SignOffReviewCheck {
    fn allows(p: &crate::store::auth::Principal) -> bool {
        <SignOffReview as crate::auth::Requirement>::allows(p.role)
    }
}

/// `GET /reviews/{month}`: the month prepared, and its sign-off or the form.
pub async fn month(
    State(state): State<AppState>,
    page: Signed,
    Path(month): Path<String>,
    Query(q): Query<Notice>,
) -> Result<Response, PageError> {
    let m = month_of(&month, page.lang)?;
    let notice = q.done.as_deref() == Some("signed");
    month_page(
        &state,
        &page,
        m,
        StatusCode::OK,
        notice,
        String::new(),
        String::new(),
    )
    .await
}

fn form_of(raw: &RawForm) -> Submitted {
    Submitted::new(serde_urlencoded::from_bytes(&raw.0).unwrap_or_default())
}

/// `POST /reviews/{month}/sign-off` (security reviewer or admin): with a
/// comment, once the month is over, once.
pub async fn sign_off(
    State(state): State<AppState>,
    page: PageAuthorized<SignOffReview>,
    Path(month): Path<String>,
    raw: RawForm,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let m = month_of(&month, lang)?;
    let form = form_of(&raw);
    let comment = form.one("comment").to_string();
    let zone = super::resources::time_zone(&state.store, lang).await?;
    match state
        .store
        .sign_off_review(&page.principal.actor, m, &comment, &zone, now_ms())
        .await
    {
        Ok(_) => Ok(see_other(&format!("/reviews/{m}?done=signed"))),
        Err(StoreError::Invalid(_)) => {
            let why = lang.t("reviews.error.comment").to_string();
            month_page(
                &state,
                &page,
                m,
                StatusCode::BAD_REQUEST,
                false,
                why,
                comment,
            )
            .await
        }
        Err(StoreError::Conflict(_)) => {
            let why = lang.t("reviews.error.conflict").to_string();
            month_page(&state, &page, m, StatusCode::CONFLICT, false, why, comment).await
        }
        Err(e) => Err(PageError::internal(lang, e)),
    }
}

/// A way in, as the re-certification page says it.
#[derive(Debug, Clone)]
struct RouteView {
    booking: bool,
    name: String,
    other_zones: String,
    period: String,
}

/// Someone who can enter, with their choice.
#[derive(Debug, Clone)]
struct EntrantView {
    id: i64,
    name: String,
    kind_key: &'static str,
    cards: String,
    routes: Vec<RouteView>,
    revoke: bool,
}

/// A recorded pass.
#[derive(Debug, Clone)]
struct PassView {
    zone: String,
    done_by: String,
    done_at: String,
    confirmed: i64,
    revoked: i64,
    revoked_names: String,
    comment: String,
}

#[derive(Template)]
#[template(path = "reviews/access.html")]
struct AccessPage {
    ctx: PageContext,
    zones: Vec<(i64, String, i64)>,
    zone_id: i64,
    zone_name: String,
    people: Vec<EntrantView>,
    passes: Vec<PassView>,
    notice: bool,
    error: String,
    comment: String,
}

/// The re-certification page's query.
#[derive(Debug, Deserialize)]
pub struct AccessQuery {
    #[serde(default)]
    zone: String,
    done: Option<String>,
}

fn kind_key(kind: &str) -> &'static str {
    match kind {
        "staff" => "kind.staff",
        "contractor" => "kind.contractor",
        "visitor" => "kind.visitor",
        _ => "kind.citizen",
    }
}

#[allow(clippy::too_many_arguments)]
async fn access_page<R>(
    state: &AppState,
    page: &PageAuthorized<R>,
    zone: Option<Id>,
    status: StatusCode,
    notice: bool,
    error: String,
    comment: String,
    revoke: &[i64],
) -> Result<Response, PageError> {
    let lang = page.lang;
    let fail = |e: StoreError| PageError::internal(lang, e);
    let tz = super::resources::time_zone(&state.store, lang).await?;
    let zones = state.store.zone_choices().await.map_err(fail)?;
    let chosen = match zone {
        Some(z) => Some(z),
        None => zones
            .iter()
            .find(|(_, _, level)| *level == 4)
            .or(zones.first())
            .and_then(|(id, _, _)| Id::new(*id)),
    };
    let access = match chosen {
        Some(z) => match state.store.zone_access(z, now_ms()).await {
            Ok(a) => Some(a),
            Err(StoreError::NotFound(_)) => return Err(PageError::NotFound(lang)),
            Err(e) => return Err(fail(e)),
        },
        None => None,
    };
    let ZoneAccess {
        zone_id,
        zone_name,
        people,
        ..
    } = access.unwrap_or(ZoneAccess {
        zone_id: 0,
        zone_name: String::new(),
        zone_level: 0,
        people: Vec::new(),
    });
    let people = people
        .iter()
        .map(|p| EntrantView {
            id: p.person_id,
            name: p.name.clone(),
            kind_key: kind_key(p.kind.as_str()),
            cards: p
                .cards
                .iter()
                .map(|c| {
                    if c.state == "active" {
                        c.uid.clone()
                    } else {
                        format!("{} ({})", c.uid, c.state)
                    }
                })
                .collect::<Vec<_>>()
                .join(", "),
            routes: p
                .routes
                .iter()
                .map(|r| RouteView {
                    booking: r.kind == RouteKind::Booking,
                    name: r.group_name.clone().unwrap_or_default(),
                    other_zones: r
                        .other_zones
                        .iter()
                        .map(|z| z.name.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                    period: match (r.starts_at, r.ends_at) {
                        (Some(s), Some(e)) => {
                            format!("{} – {}", local_time(s, &tz), local_time(e, &tz))
                        }
                        _ => String::new(),
                    },
                })
                .collect(),
            revoke: revoke.contains(&p.person_id),
        })
        .collect();
    let passes = state
        .store
        .recertifications(None)
        .await
        .map_err(fail)?
        .into_iter()
        .map(|r| PassView {
            zone: r.zone_name.clone(),
            done_by: r.done_by.clone(),
            done_at: local_time(r.done_at, &tz),
            confirmed: r.confirmed,
            revoked: r.revoked,
            revoked_names: r
                .people
                .iter()
                .filter(|p| p.decision == "revoke")
                .map(|p| p.person_name.clone())
                .collect::<Vec<_>>()
                .join(", "),
            comment: r.comment,
        })
        .collect();
    let path = if zone_id > 0 {
        format!("/reviews/access?zone={zone_id}")
    } else {
        "/reviews/access".to_string()
    };
    Ok(render(
        status,
        &AccessPage {
            ctx: PageContext::signed_in(lang, &path, &page.principal, &page.csrf_token)
                .in_time_zone(&tz),
            zones,
            zone_id,
            zone_name,
            people,
            passes,
            notice,
            error,
            comment,
        },
    ))
}

/// `GET /reviews/access?zone=`: everyone who can enter the zone (default:
/// the first level-4 zone) and through what, with the one-pass form.
pub async fn access(
    State(state): State<AppState>,
    page: Signed,
    Query(q): Query<AccessQuery>,
) -> Result<Response, PageError> {
    let zone = match q.zone.trim() {
        "" => None,
        t => Some(
            t.parse::<i64>()
                .ok()
                .and_then(Id::new)
                .ok_or(PageError::NotFound(page.lang))?,
        ),
    };
    let notice = q.done.as_deref() == Some("recertified");
    access_page(
        &state,
        &page,
        zone,
        StatusCode::OK,
        notice,
        String::new(),
        String::new(),
        &[],
    )
    .await
}

/// `POST /reviews/access` (facilities or admin): `zone`, `comment`, and
/// `decision-{person}` = `confirm` (default) or `revoke` for each person.
pub async fn recertify(
    State(state): State<AppState>,
    page: PageAuthorized<Manage>,
    raw: RawForm,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&raw.0).unwrap_or_default();
    let form = Submitted::new(pairs.clone());
    let zone = form
        .one("zone")
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(Id::new)
        .ok_or(PageError::BadRequest(lang))?;
    let mut revoke = Vec::new();
    for (name, value) in &pairs {
        if let Some(id) = name.strip_prefix("decision-") {
            let id = id
                .parse::<i64>()
                .ok()
                .and_then(Id::new)
                .ok_or(PageError::BadRequest(lang))?;
            match value.as_str() {
                "confirm" => {}
                "revoke" => revoke.push(id),
                _ => return Err(PageError::BadRequest(lang)),
            }
        }
    }
    let comment = form.one("comment").to_string();
    let input = RecertificationInput {
        zone_id: zone,
        revoke: revoke.clone(),
        comment: comment.clone(),
    };
    match state
        .store
        .recertify(&page.principal.actor, &input, now_ms())
        .await
    {
        Ok(_) => Ok(see_other(&format!(
            "/reviews/access?zone={zone}&done=recertified"
        ))),
        Err(StoreError::NotFound(_)) => Err(PageError::NotFound(lang)),
        Err(StoreError::Invalid(_)) | Err(StoreError::Conflict(_)) => {
            let why = lang.t("recert.error.stale").to_string();
            let ids: Vec<i64> = revoke.iter().map(|i| i.get()).collect();
            access_page(
                &state,
                &page,
                Some(zone),
                StatusCode::CONFLICT,
                false,
                why,
                comment,
                &ids,
            )
            .await
        }
        Err(e) => Err(PageError::internal(lang, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_runs_from_its_first_to_its_last_day() {
        let m = Month::parse("2026-02").unwrap();
        assert_eq!(
            month_dates(m),
            ("2026-02-01".to_string(), "2026-02-28".to_string())
        );
    }

    #[test]
    fn every_text_the_handlers_pick_is_in_the_catalog() {
        let rows = count_rows(ReviewCounts::default(), None);
        let keys = [
            "reviews.error.comment",
            "reviews.error.conflict",
            "recert.error.stale",
            "kind.staff",
            "kind.contractor",
            "kind.visitor",
            "kind.citizen",
        ];
        for key in keys.into_iter().chain(rows.iter().map(|r| r.key)) {
            for lang in Lang::ALL {
                assert_ne!(lang.t(key), "??", "{key}");
            }
        }
    }
}
