//! The reviewer's reading pages: the machine-room history (`/history`, its
//! CSV and print view) and the event search (`/events`, its CSV), with one
//! filter form read the same way for the page and its download.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;

use super::i18n::Lang;
use super::page::{local_time, query_value, render, PageContext, PageError};
use super::session::Signed;
use super::UiOptions;
use crate::api::events::events_csv;
use crate::api::history::history_csv;
use crate::error::WebError;
use crate::store::history::{CompanionRole, HistoryFilter, Visit};
use crate::store::queries::{EventFilter, EventRecord, ReasonCode};
use crate::store::resources::{page_size, Id, Level, Millis, Outcome, Uid};
use crate::store::StoreError;
use crate::AppState;

/// The filter form as typed (every field text, empty when not used).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FilterQuery {
    #[serde(default)]
    zone: String,
    #[serde(default)]
    level: String,
    #[serde(default)]
    person: String,
    #[serde(default)]
    card: String,
    #[serde(default)]
    door: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    cursor: String,
    #[serde(default)]
    denied_cursor: String,
}

impl FilterQuery {
    /// The filters as a query string (no cursors), for links and downloads.
    fn filters(&self) -> String {
        [
            ("zone", &self.zone),
            ("level", &self.level),
            ("person", &self.person),
            ("card", &self.card),
            ("door", &self.door),
            ("outcome", &self.outcome),
            ("reason", &self.reason),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}={}", query_value(v.trim())))
        .collect::<Vec<_>>()
        .join("&")
    }

    /// A link to `path` with these filters and `extra`.
    fn link(&self, path: &str, extra: &[(&str, &str)]) -> String {
        let mut q = self.filters();
        for (k, v) in extra {
            if !q.is_empty() {
                q.push('&');
            }
            q.push_str(&format!("{k}={}", query_value(v)));
        }
        if q.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{q}")
        }
    }
}

/// The filters read from the form, and what could not be read (field, catalog key).
#[derive(Debug, Default)]
struct Filters {
    person: Option<Id>,
    card: Option<Uid>,
    door: Option<Id>,
    zone: Option<Id>,
    level: Option<Level>,
    outcome: Option<Outcome>,
    reason: Option<ReasonCode>,
    from: Option<Millis>,
    to: Option<Millis>,
    problems: Vec<(&'static str, &'static str)>,
}

impl Filters {
    fn history(&self) -> HistoryFilter {
        HistoryFilter {
            person: self.person,
            card: self.card,
            door: self.door,
            zone: self.zone,
            level: self.level,
            outcome: self.outcome,
            from: self.from,
            to: self.to,
            ..HistoryFilter::default()
        }
    }

    fn events(&self) -> EventFilter {
        EventFilter {
            person: self.person,
            card: self.card,
            door: self.door,
            zone: self.zone,
            level: self.level,
            outcome: self.outcome,
            reason: self.reason,
            from: self.from,
            to: self.to,
            ..EventFilter::default()
        }
    }
}

/// A local date (`YYYY-MM-DD`) in `time_zone` as its first instant; `next`:
/// the day after's (the end of an inclusive "to" date).
pub(super) fn day_start(text: &str, time_zone: &str, next: bool) -> Option<Millis> {
    let date: jiff::civil::Date = text.trim().parse().ok()?;
    let date = if next { date.tomorrow().ok()? } else { date };
    let tz = jiff::tz::TimeZone::get(time_zone).ok()?;
    let at = date.to_zoned(tz).ok()?;
    Millis::new(at.timestamp().as_millisecond())
}

fn read_filters(q: &FilterQuery, time_zone: &str) -> Filters {
    let mut f = Filters::default();
    fn id(text: &str) -> Result<Option<Id>, ()> {
        match text.trim() {
            "" => Ok(None),
            t => t.parse::<i64>().ok().and_then(Id::new).map(Some).ok_or(()),
        }
    }
    for (field, text, slot) in [
        ("person", &q.person, &mut f.person),
        ("door", &q.door, &mut f.door),
        ("zone", &q.zone, &mut f.zone),
    ] {
        match id(text) {
            Ok(v) => *slot = v,
            Err(()) => f.problems.push((field, "hist.error.id")),
        }
    }
    match q.card.trim() {
        "" => {}
        t => match Uid::parse(&t.replace([' ', ':'], "").to_ascii_uppercase()) {
            Some(uid) => f.card = Some(uid),
            None => f.problems.push(("card", "hist.error.card")),
        },
    }
    match q.level.trim() {
        "" => {}
        t => match t.parse::<i64>().ok().and_then(Level::new) {
            Some(l) => f.level = Some(l),
            None => f.problems.push(("level", "hist.error.choice")),
        },
    }
    match q.outcome.trim() {
        "" => {}
        t => match Outcome::ALL.iter().find(|o| o.as_str() == t) {
            Some(o) => f.outcome = Some(*o),
            None => f.problems.push(("outcome", "hist.error.choice")),
        },
    }
    match q.reason.trim() {
        "" => {}
        t => match serde_json::from_value::<ReasonCode>(serde_json::Value::String(t.into())) {
            Ok(r) => f.reason = Some(r),
            Err(_) => f.problems.push(("reason", "hist.error.choice")),
        },
    }
    for (field, text, next) in [("from", &q.from, false), ("to", &q.to, true)] {
        if text.trim().is_empty() {
            continue;
        }
        match day_start(text, time_zone, next) {
            Some(ms) if field == "from" => f.from = Some(ms),
            Some(ms) => f.to = Some(ms),
            None => f.problems.push((field, "hist.error.date")),
        }
    }
    f
}

/// One choice of a filter select.
#[derive(Debug, Clone)]
struct Opt {
    value: String,
    label: String,
    selected: bool,
}

/// One field of the filter form.
#[derive(Debug, Clone)]
struct Field {
    name: &'static str,
    label_key: &'static str,
    /// `select`, `number`, `text` or `date`.
    input: &'static str,
    value: String,
    /// The select's first (empty) choice.
    any_key: &'static str,
    options: Vec<Opt>,
    error_key: &'static str,
}

fn field(name: &'static str, label_key: &'static str, input: &'static str, value: &str) -> Field {
    Field {
        name,
        label_key,
        input,
        value: value.trim().to_string(),
        any_key: "hist.any",
        options: Vec::new(),
        error_key: "",
    }
}

fn select(
    name: &'static str,
    label_key: &'static str,
    value: &str,
    options: impl IntoIterator<Item = (String, String)>,
) -> Field {
    let value = value.trim();
    Field {
        options: options
            .into_iter()
            .map(|(v, label)| Opt {
                selected: v == value,
                value: v,
                label,
            })
            .collect(),
        input: "select",
        ..field(name, label_key, "", value)
    }
}

/// The filter form's fields, with what was typed and each problem beside its field.
async fn form_fields(
    state: &AppState,
    lang: Lang,
    q: &FilterQuery,
    problems: &[(&'static str, &'static str)],
    with_reason: bool,
    history: bool,
) -> Result<Vec<Field>, PageError> {
    let zones = state
        .store
        .zone_choices()
        .await
        .map_err(|e| PageError::internal(lang, e))?;
    let doors = state
        .store
        .door_choices()
        .await
        .map_err(|e| PageError::internal(lang, e))?;
    let mut zone = select(
        "zone",
        "hist.zone",
        &q.zone,
        zones.into_iter().map(|(id, name, level)| {
            (
                id.to_string(),
                format!("{name} ({})", lang.t(level_key(level))),
            )
        }),
    );
    if history {
        zone.any_key = "hist.all_l4";
    }
    let outcomes = [
        ("granted", "hist.granted"),
        ("denied", "hist.refused"),
        ("pending", "hist.pending"),
    ];
    let mut fields = vec![
        zone,
        select(
            "door",
            "hist.door",
            &q.door,
            doors.into_iter().map(|(id, name)| (id.to_string(), name)),
        ),
        select(
            "level",
            "hist.level",
            &q.level,
            (0..=4).map(|l| (l.to_string(), lang.t(level_key(l)).to_string())),
        ),
        select(
            "outcome",
            "hist.outcome",
            &q.outcome,
            outcomes.map(|(v, k)| (v.to_string(), lang.t(k).to_string())),
        ),
    ];
    if with_reason {
        fields.push(select(
            "reason",
            "hist.reason",
            &q.reason,
            tobira_firmware::Reason::ALL
                .iter()
                .map(|r| (r.code().to_string(), r.code().to_string())),
        ));
    }
    fields.extend([
        field("person", "hist.person", "number", &q.person),
        field("card", "hist.card", "text", &q.card),
        field("from", "hist.from", "date", &q.from),
        field("to", "hist.to", "date", &q.to),
    ]);
    for f in fields.iter_mut() {
        if let Some((_, key)) = problems.iter().find(|(name, _)| *name == f.name) {
            f.error_key = key;
        }
    }
    Ok(fields)
}

fn level_key(level: i64) -> &'static str {
    match level {
        0 => "level.0",
        1 => "level.1",
        2 => "level.2",
        3 => "level.3",
        _ => "level.4",
    }
}

fn kind_key(kind: &str) -> &'static str {
    match kind {
        "staff" => "kind.staff",
        "contractor" => "kind.contractor",
        "visitor" => "kind.visitor",
        _ => "kind.citizen",
    }
}

/// `h:mm` of a duration.
fn hours_minutes(ms: i64) -> String {
    let minutes = ms.max(0) / 60_000;
    format!("{}:{:02}", minutes / 60, minutes % 60)
}

/// A visit as the table shows it.
#[derive(Debug, Clone)]
struct VisitRow {
    zone: String,
    person: String,
    person_href: String,
    kind_key: &'static str,
    card: String,
    entered: String,
    entry_door: String,
    left: String,
    exit_door: String,
    /// Catalog key shown instead of a missing time.
    entered_key: &'static str,
    left_key: &'static str,
    duration: String,
    companion_key: &'static str,
    companion: String,
}

fn visit_row(v: &Visit, zone: &str) -> VisitRow {
    let name = v
        .person_name
        .clone()
        .unwrap_or_else(|| format!("#{}", v.person_id));
    VisitRow {
        zone: v
            .zone_name
            .clone()
            .unwrap_or_else(|| format!("#{}", v.zone_id)),
        person: name,
        person_href: format!("/people/{}", v.person_id),
        kind_key: v.person_kind.map_or("", |k| kind_key(k.as_str())),
        card: v.card.clone().unwrap_or_default(),
        entered: v
            .entered_at
            .map(|t| local_time(t, zone))
            .unwrap_or_default(),
        entry_door: v.entry_door_name.clone().unwrap_or_default(),
        left: v.left_at.map(|t| local_time(t, zone)).unwrap_or_default(),
        exit_door: v.exit_door_name.clone().unwrap_or_default(),
        entered_key: if v.entered_at.is_none() {
            "hist.no_entry"
        } else {
            ""
        },
        left_key: match (v.left_at, v.still_inside) {
            (Some(_), _) => "",
            (None, true) => "hist.still_inside",
            (None, false) => "hist.no_exit",
        },
        duration: v.duration_ms.map(hours_minutes).unwrap_or_default(),
        companion_key: match v.companion_role {
            Some(CompanionRole::Escort) => "hist.escort",
            Some(CompanionRole::Partner) => "hist.partner",
            None => "",
        },
        companion: match (&v.companion_name, v.companion_id) {
            (Some(n), _) => n.clone(),
            (None, Some(id)) => format!("#{id}"),
            (None, None) => String::new(),
        },
    }
}

/// An event as the tables show it.
#[derive(Debug, Clone)]
struct EventRow {
    at: String,
    kind: String,
    door: String,
    side_key: &'static str,
    /// `granted`, `denied`, `pending` (the colour) or empty.
    outcome: &'static str,
    outcome_key: &'static str,
    reason: String,
    person: String,
    card: String,
    level_key: &'static str,
}

fn event_row(e: &EventRecord, zone: &str) -> EventRow {
    let person = e
        .person_name
        .clone()
        .or(e.person_name_at_event.clone())
        .or(e.person_id.map(|p| format!("#{p}")))
        .unwrap_or_default();
    EventRow {
        at: local_time(e.at, zone),
        kind: e.kind.clone(),
        door: e
            .door_name
            .clone()
            .or(e.door_name_at_event.clone())
            .unwrap_or_default(),
        side_key: match e.side.as_deref() {
            Some("entry") => "hist.entry",
            Some("exit") => "hist.exit",
            _ => "",
        },
        outcome: e.outcome.map_or("", |o| o.as_str()),
        outcome_key: match e.outcome {
            Some(Outcome::Granted) => "hist.granted",
            Some(Outcome::Denied) => "hist.refused",
            Some(Outcome::Pending) => "hist.pending",
            None => "",
        },
        reason: e.reason.clone().unwrap_or_default(),
        person,
        card: e.card.clone().unwrap_or_default(),
        level_key: e.level.map_or("", level_key),
    }
}

async fn time_zone(state: &AppState, lang: Lang) -> Result<String, PageError> {
    state
        .store
        .display_time_zone()
        .await
        .map_err(|e| PageError::internal(lang, e))
}

fn query(
    q: Result<Query<FilterQuery>, QueryRejection>,
    lang: Lang,
) -> Result<FilterQuery, PageError> {
    q.map(|Query(q)| q).map_err(|_| PageError::BadRequest(lang))
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPage {
    ctx: PageContext,
    fields: Vec<Field>,
    /// A problem with the filters as a whole (the period), if any.
    problem_key: &'static str,
    period: String,
    zones: String,
    visits: Vec<VisitRow>,
    denied: Vec<EventRow>,
    older: String,
    older_denied: String,
    newest: String,
    csv: String,
}

/// `GET /history`: visits to the level-4 zones (or the chosen one) and the
/// denied attempts beside them; reading it is recorded.
pub async fn history_page(
    State(state): State<AppState>,
    page: Signed,
    Extension(options): Extension<UiOptions>,
    q: Result<Query<FilterQuery>, QueryRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let q = query(q, lang)?;
    let zone = time_zone(&state, lang).await?;
    let filters = read_filters(&q, &zone);
    let ctx = PageContext::signed_in(lang, "/history", &page.principal, &page.csrf_token)
        .in_time_zone(&zone);
    let mut shown = HistoryPage {
        ctx,
        fields: form_fields(&state, lang, &q, &filters.problems, false, true).await?,
        problem_key: "",
        period: String::new(),
        zones: String::new(),
        visits: Vec::new(),
        denied: Vec::new(),
        older: String::new(),
        older_denied: String::new(),
        newest: String::new(),
        csv: q.link("/history.csv", &[]),
    };
    if !filters.problems.is_empty() {
        return Ok(render(StatusCode::BAD_REQUEST, &shown));
    }
    let limit = page_size(None).map_err(|e| PageError::internal(lang, e))?;
    let cursor = Some(q.cursor.trim()).filter(|c| !c.is_empty());
    let denied_cursor = Some(q.denied_cursor.trim()).filter(|c| !c.is_empty());
    let history = match state
        .store
        .history(
            &filters.history(),
            options.clock.now(),
            limit,
            cursor,
            denied_cursor,
        )
        .await
    {
        Ok(h) => h,
        Err(StoreError::Invalid(why)) if why.contains("cursor") => {
            return Err(PageError::BadRequest(lang))
        }
        Err(StoreError::Invalid(_)) => {
            shown.problem_key = "hist.error.period";
            return Ok(render(StatusCode::BAD_REQUEST, &shown));
        }
        Err(e) => return Err(PageError::internal(lang, e)),
    };
    state
        .store
        .audit_read(
            &page.principal.actor,
            "history.read",
            "history",
            raw.as_deref(),
            history.visits.items.len() + history.denied.items.len(),
        )
        .await
        .map_err(|e| PageError::internal(lang, e))?;
    // The last instant shown is the one before the exclusive end.
    shown.period = format!(
        "{} – {}",
        local_time(history.from, &zone),
        local_time(history.to - 1, &zone)
    );
    let zone_names: Vec<String> = state
        .store
        .zone_choices()
        .await
        .map_err(|e| PageError::internal(lang, e))?
        .into_iter()
        .filter(|(id, _, _)| history.zone_ids.contains(id))
        .map(|(_, name, _)| name)
        .collect();
    shown.zones = zone_names.join(", ");
    shown.visits = history
        .visits
        .items
        .iter()
        .map(|v| visit_row(v, &zone))
        .collect();
    shown.denied = history
        .denied
        .items
        .iter()
        .map(|e| event_row(e, &zone))
        .collect();
    if let Some(next) = &history.visits.next {
        shown.older = q.link("/history", &[("cursor", next)]);
    }
    if let Some(next) = &history.denied.next {
        shown.older_denied = q.link("/history", &[("denied_cursor", next)]);
    }
    if cursor.is_some() || denied_cursor.is_some() {
        shown.newest = q.link("/history", &[]);
    }
    Ok(render(StatusCode::OK, &shown))
}

/// The offset of `time_zone` from UTC now, in minutes (the CSV's times).
fn utc_offset_minutes(time_zone: &str, now: i64) -> i64 {
    let Ok(tz) = jiff::tz::TimeZone::get(time_zone) else {
        return 0;
    };
    let Ok(at) = jiff::Timestamp::from_millisecond(now) else {
        return 0;
    };
    i64::from(tz.to_offset(at).seconds()) / 60
}

fn download_error(lang: Lang, e: WebError) -> PageError {
    match e {
        WebError::BadRequest(_) => PageError::BadRequest(lang),
        other => PageError::internal(lang, other),
    }
}

/// `GET /history.csv`: the history with the page's filters, for Excel.
pub async fn history_download(
    State(state): State<AppState>,
    page: Signed,
    Extension(options): Extension<UiOptions>,
    q: Result<Query<FilterQuery>, QueryRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let q = query(q, lang)?;
    let zone = time_zone(&state, lang).await?;
    let filters = read_filters(&q, &zone);
    if !filters.problems.is_empty() {
        return Err(PageError::BadRequest(lang));
    }
    let now = options.clock.now();
    let offset = utc_offset_minutes(&zone, now);
    history_csv(
        &state.store,
        &page.principal.actor,
        &filters.history(),
        (now, offset),
        raw.as_deref(),
    )
    .await
    .map_err(|e| download_error(lang, e))
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    ctx: PageContext,
    fields: Vec<Field>,
    problem_key: &'static str,
    events: Vec<EventRow>,
    older: String,
    newest: String,
    csv: String,
}

/// `GET /events`: the whole event log, newest first, with the API's filters;
/// reading it is recorded.
pub async fn events_page(
    State(state): State<AppState>,
    page: Signed,
    q: Result<Query<FilterQuery>, QueryRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let q = query(q, lang)?;
    let zone = time_zone(&state, lang).await?;
    let filters = read_filters(&q, &zone);
    let ctx = PageContext::signed_in(lang, "/events", &page.principal, &page.csrf_token)
        .in_time_zone(&zone);
    let mut shown = EventsPage {
        ctx,
        fields: form_fields(&state, lang, &q, &filters.problems, true, false).await?,
        problem_key: "",
        events: Vec::new(),
        older: String::new(),
        newest: String::new(),
        csv: q.link("/events.csv", &[]),
    };
    if !filters.problems.is_empty() {
        return Ok(render(StatusCode::BAD_REQUEST, &shown));
    }
    let limit = page_size(None).map_err(|e| PageError::internal(lang, e))?;
    let cursor = Some(q.cursor.trim()).filter(|c| !c.is_empty());
    let found = match state
        .store
        .search_events(&filters.events(), limit, cursor)
        .await
    {
        Ok(found) => found,
        Err(StoreError::Invalid(why)) if why.contains("cursor") => {
            return Err(PageError::BadRequest(lang))
        }
        Err(StoreError::Invalid(_)) => {
            shown.problem_key = "hist.error.period";
            return Ok(render(StatusCode::BAD_REQUEST, &shown));
        }
        Err(e) => return Err(PageError::internal(lang, e)),
    };
    state
        .store
        .audit_read(
            &page.principal.actor,
            "events.search",
            "events",
            raw.as_deref(),
            found.items.len(),
        )
        .await
        .map_err(|e| PageError::internal(lang, e))?;
    shown.events = found.items.iter().map(|e| event_row(e, &zone)).collect();
    if let Some(next) = &found.next {
        shown.older = q.link("/events", &[("cursor", next)]);
    }
    if cursor.is_some() {
        shown.newest = q.link("/events", &[]);
    }
    Ok(render(StatusCode::OK, &shown))
}

/// `GET /events.csv`: the events with the page's filters, oldest first.
pub async fn events_download(
    State(state): State<AppState>,
    page: Signed,
    Extension(options): Extension<UiOptions>,
    q: Result<Query<FilterQuery>, QueryRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let q = query(q, lang)?;
    let zone = time_zone(&state, lang).await?;
    let filters = read_filters(&q, &zone);
    if !filters.problems.is_empty() {
        return Err(PageError::BadRequest(lang));
    }
    let offset = utc_offset_minutes(&zone, options.clock.now());
    events_csv(
        state.store.clone(),
        &page.principal.actor,
        filters.events(),
        offset,
        raw,
    )
    .await
    .map_err(|e| download_error(lang, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_read_in_the_sites_zone_and_bad_fields_are_named() {
        let q = FilterQuery {
            from: "2027-01-15".into(),
            to: "2027-01-15".into(),
            person: "abc".into(),
            card: "04 a0 00 64".into(),
            outcome: "maybe".into(),
            ..FilterQuery::default()
        };
        let f = read_filters(&q, "Asia/Tokyo");
        // 2027-01-15T00:00+09:00, and the next midnight (the day is included).
        assert_eq!(f.from.map(Millis::get), Some(1_799_938_800_000));
        assert_eq!(f.to.map(Millis::get), Some(1_799_938_800_000 + 86_400_000));
        assert_eq!(f.card.map(|c| c.text()), Some("04A00064".to_string()));
        assert_eq!(
            f.problems,
            vec![
                ("person", "hist.error.id"),
                ("outcome", "hist.error.choice")
            ]
        );
        let bad = read_filters(
            &FilterQuery {
                from: "15/01/2027".into(),
                ..FilterQuery::default()
            },
            "Asia/Tokyo",
        );
        assert_eq!(bad.problems, vec![("from", "hist.error.date")]);
        assert_eq!(hours_minutes(61 * 60_000), "1:01");
        assert_eq!(utc_offset_minutes("Asia/Tokyo", 0), 540);
    }

    #[test]
    fn links_keep_the_filters_and_add_the_cursor() {
        let q = FilterQuery {
            zone: "12".into(),
            card: "04A00064".into(),
            cursor: "old".into(),
            ..FilterQuery::default()
        };
        assert_eq!(
            q.link("/history", &[("cursor", "abc")]),
            "/history?zone=12&card=04A00064&cursor=abc"
        );
        assert_eq!(
            FilterQuery::default().link("/events.csv", &[]),
            "/events.csv"
        );
    }
}
