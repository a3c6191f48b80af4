//! Handlers for the reports under `/api/v1/reports/`: each report as JSON
//! and as an Excel-friendly CSV (the history's writer), over one period of
//! local dates in the site's time zone; every read is in the audit log.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::Json;

use super::events::{cell, local_time};
use super::history::{csv_attachment, excel_writer};
use super::ReadErrors;
use crate::auth::Caller;
use crate::error::{WebError, WebResult};
use crate::json::QueryParams;
use crate::store::reports::{
    BusiestDoors, Denials, DoorAlarms, Period, PeriodQuery, RoomUtilisation, UnusedCards,
    UnusedQuery,
};
use crate::store::{now_ms, Store};
use crate::AppState;

/// One of the reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Active cards nobody used lately.
    UnusedCards,
    /// Denied attempts by card, door and reason.
    Denials,
    /// Doors forced or held open.
    DoorAlarms,
    /// Meeting rooms' booked and used hours per week.
    RoomUtilisation,
    /// Entries per door and hour of day.
    BusiestDoors,
}

impl Report {
    /// Every report, in the order the index lists them.
    pub const ALL: [Report; 5] = [
        Report::UnusedCards,
        Report::Denials,
        Report::DoorAlarms,
        Report::RoomUtilisation,
        Report::BusiestDoors,
    ];

    /// The name in paths (`unused-cards`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Report::UnusedCards => "unused-cards",
            Report::Denials => "denials",
            Report::DoorAlarms => "door-alarms",
            Report::RoomUtilisation => "room-utilisation",
            Report::BusiestDoors => "busiest-doors",
        }
    }

    /// The report named `name`.
    pub fn parse(name: &str) -> Option<Report> {
        Report::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// A report's result.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Unused(UnusedCards),
    Denials(Denials),
    DoorAlarms(DoorAlarms),
    Rooms(RoomUtilisation),
    Busiest(BusiestDoors),
}

/// Runs `report` for the period (or days) asked, in the site's time zone.
pub(crate) async fn run(
    store: &Store,
    report: Report,
    period: &PeriodQuery,
    days: Option<i64>,
    now: i64,
) -> WebResult<Outcome> {
    if report == Report::UnusedCards {
        return Ok(Outcome::Unused(store.unused_cards(days, now).await?));
    }
    let zone = store.display_time_zone().await?;
    let period = Period::resolve(period.from.as_deref(), period.to.as_deref(), &zone, now)?;
    Ok(match report {
        Report::Denials => Outcome::Denials(store.denials(&period).await?),
        Report::DoorAlarms => Outcome::DoorAlarms(store.door_alarms(&period).await?),
        Report::RoomUtilisation => Outcome::Rooms(store.room_utilisation(&period).await?),
        _ => Outcome::Busiest(store.busiest_doors(&period).await?),
    })
}

impl Outcome {
    /// The number of rows, for the audit log.
    pub(crate) fn rows(&self) -> usize {
        match self {
            Outcome::Unused(r) => r.cards.len(),
            Outcome::Denials(r) => r.rows.len(),
            Outcome::DoorAlarms(r) => r.doors.len(),
            Outcome::Rooms(r) => r.rooms.iter().map(|room| room.weeks.len()).sum(),
            Outcome::Busiest(r) => r.doors.len(),
        }
    }
}

/// A time as ISO 8601 with the offset `zone` has at that instant.
fn csv_time(ms: i64, zone: &str) -> String {
    let offset = jiff::tz::TimeZone::get(zone)
        .ok()
        .zip(jiff::Timestamp::from_millisecond(ms).ok())
        .map_or(0, |(tz, at)| i64::from(tz.to_offset(at).seconds()) / 60);
    local_time(ms, offset)
}

fn text(v: Option<&str>) -> String {
    v.map(|s| cell(s).into_owned()).unwrap_or_default()
}

fn opt(v: Option<i64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The CSV's header and rows of a report; times in `zone`.
pub(crate) fn csv_table(outcome: &Outcome, zone: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let header = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    match outcome {
        Outcome::Unused(r) => (
            header(&[
                "card",
                "person_id",
                "person_name",
                "issued_at",
                "last_used_at",
                "never_used",
            ]),
            r.cards
                .iter()
                .map(|c| {
                    vec![
                        cell(&c.card).into_owned(),
                        c.person_id.to_string(),
                        cell(&c.person_name).into_owned(),
                        csv_time(c.issued_at, zone),
                        c.last_used_at
                            .map(|t| csv_time(t, zone))
                            .unwrap_or_default(),
                        if c.last_used_at.is_none() {
                            "yes"
                        } else {
                            "no"
                        }
                        .into(),
                    ]
                })
                .collect(),
        ),
        Outcome::Denials(r) => (
            header(&[
                "card",
                "person_id",
                "person_name",
                "door_id",
                "door_name",
                "reason",
                "count",
                "last_at",
            ]),
            r.rows
                .iter()
                .map(|d| {
                    vec![
                        text(d.card.as_deref()),
                        opt(d.person_id),
                        text(d.person_name.as_deref()),
                        opt(d.door_id),
                        text(d.door_name.as_deref()),
                        text(d.reason.as_deref()),
                        d.count.to_string(),
                        csv_time(d.last_at, zone),
                    ]
                })
                .collect(),
        ),
        Outcome::DoorAlarms(r) => (
            header(&[
                "door_id",
                "door_name",
                "zone_id",
                "zone_name",
                "forced",
                "held_open",
                "last_at",
            ]),
            r.doors
                .iter()
                .map(|d| {
                    vec![
                        d.door_id.to_string(),
                        text(d.door_name.as_deref()),
                        opt(d.zone_id),
                        text(d.zone_name.as_deref()),
                        d.forced.to_string(),
                        d.held_open.to_string(),
                        csv_time(d.last_at, zone),
                    ]
                })
                .collect(),
        ),
        Outcome::Rooms(r) => (
            header(&[
                "zone_id",
                "zone_name",
                "week",
                "booked_hours",
                "used_hours",
                "booked_minutes",
            ]),
            r.rooms
                .iter()
                .flat_map(|room| {
                    room.weeks.iter().map(|w| {
                        vec![
                            room.zone_id.to_string(),
                            cell(&room.zone_name).into_owned(),
                            w.week.clone(),
                            format!("{:.2}", w.booked_hours),
                            w.used_hours.to_string(),
                            w.booked_minutes.to_string(),
                        ]
                    })
                })
                .collect(),
        ),
        Outcome::Busiest(r) => {
            let mut names = vec!["door_id".to_string(), "door_name".into(), "total".into()];
            names.extend((0..24).map(|h| format!("h{h:02}")));
            (
                names,
                r.doors
                    .iter()
                    .map(|d| {
                        let mut row = vec![
                            d.door_id.to_string(),
                            text(d.door_name.as_deref()),
                            d.total.to_string(),
                        ];
                        row.extend(d.hours.iter().map(|n| n.to_string()));
                        row
                    })
                    .collect(),
            )
        }
    }
}

/// A report as CSV for Excel (UTF-8 with BOM, CRLF, a header row, quoted
/// fields); the download is recorded in the audit log with `query`.
pub(crate) async fn report_csv(
    store: &Store,
    actor: &str,
    report: Report,
    (period, days): (&PeriodQuery, Option<i64>),
    now: i64,
    query: Option<&str>,
) -> WebResult<Response> {
    let outcome = run(store, report, period, days, now).await?;
    let zone = store.display_time_zone().await?;
    let (header, rows) = csv_table(&outcome, &zone);
    let mut out = Vec::new();
    let mut w = excel_writer(&mut out);
    let csv_error = |e: csv::Error| WebError::Internal(e.to_string());
    w.write_record(&header).map_err(csv_error)?;
    for row in &rows {
        w.write_record(row).map_err(csv_error)?;
    }
    w.flush().map_err(|e| WebError::Internal(e.to_string()))?;
    drop(w);
    store
        .audit_read(actor, "report.export", report.name(), query, rows.len())
        .await?;
    Ok(csv_attachment(&format!("{}.csv", report.name()), out))
}

async fn read(
    state: &AppState,
    caller: &Caller,
    report: Report,
    (period, days): (&PeriodQuery, Option<i64>),
    query: Option<&str>,
) -> WebResult<Outcome> {
    let outcome = run(&state.store, report, period, days, now_ms()).await?;
    state
        .store
        .audit_read(
            caller.actor(),
            "report.read",
            report.name(),
            query,
            outcome.rows(),
        )
        .await?;
    Ok(outcome)
}

fn unexpected() -> WebError {
    WebError::Internal("a report answered with another report's result".into())
}

/// Active cards issued at least `days` days ago (default 90) with no
/// granted or denied event in those days; never used first.
#[utoipa::path(get, path = "/api/v1/reports/unused-cards", tag = "reports", params(UnusedQuery),
    responses((status = 200, description = "Unused cards", body = UnusedCards), ReadErrors))]
pub async fn unused_cards(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<UnusedQuery>,
    RawQuery(query): RawQuery,
) -> WebResult<Json<UnusedCards>> {
    let period = PeriodQuery::default();
    match read(
        &state,
        &caller,
        Report::UnusedCards,
        (&period, q.days),
        query.as_deref(),
    )
    .await?
    {
        Outcome::Unused(r) => Ok(Json(r)),
        _ => Err(unexpected()),
    }
}

/// The unused cards as CSV (UTF-8 with BOM, CRLF, a header row, quoted fields).
#[utoipa::path(get, path = "/api/v1/reports/unused-cards.csv", tag = "reports", params(UnusedQuery),
    responses((status = 200, description = "Unused cards as CSV", content_type = "text/csv", body = String), ReadErrors))]
pub async fn unused_cards_csv(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<UnusedQuery>,
    RawQuery(query): RawQuery,
) -> WebResult<Response> {
    let period = PeriodQuery::default();
    report_csv(
        &state.store,
        caller.actor(),
        Report::UnusedCards,
        (&period, q.days),
        now_ms(),
        query.as_deref(),
    )
    .await
}

/// Denied attempts in the period counted by card, door and reason, most first.
#[utoipa::path(get, path = "/api/v1/reports/denials", tag = "reports", params(PeriodQuery),
    responses((status = 200, description = "Denials by card, door and reason", body = Denials), ReadErrors))]
pub async fn denials(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(p): QueryParams<PeriodQuery>,
    RawQuery(query): RawQuery,
) -> WebResult<Json<Denials>> {
    match read(
        &state,
        &caller,
        Report::Denials,
        (&p, None),
        query.as_deref(),
    )
    .await?
    {
        Outcome::Denials(r) => Ok(Json(r)),
        _ => Err(unexpected()),
    }
}

/// The denials as CSV (UTF-8 with BOM, CRLF, a header row, quoted fields).
#[utoipa::path(get, path = "/api/v1/reports/denials.csv", tag = "reports", params(PeriodQuery),
    responses((status = 200, description = "Denials as CSV", content_type = "text/csv", body = String), ReadErrors))]
pub async fn denials_csv(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(p): QueryParams<PeriodQuery>,
    RawQuery(query): RawQuery,
) -> WebResult<Response> {
    report_csv(
        &state.store,
        caller.actor(),
        Report::Denials,
        (&p, None),
        now_ms(),
        query.as_deref(),
    )
    .await
}

/// Doors forced or held open in the period (from the recorded events),
/// with their zone, the counts and the last time; most first.
#[utoipa::path(get, path = "/api/v1/reports/door-alarms", tag = "reports", params(PeriodQuery),
    responses((status = 200, description = "Forced and held-open doors", body = DoorAlarms), ReadErrors))]
pub async fn door_alarms(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(p): QueryParams<PeriodQuery>,
    RawQuery(query): RawQuery,
) -> WebResult<Json<DoorAlarms>> {
    match read(
        &state,
        &caller,
        Report::DoorAlarms,
        (&p, None),
        query.as_deref(),
    )
    .await?
    {
        Outcome::DoorAlarms(r) => Ok(Json(r)),
        _ => Err(unexpected()),
    }
}

/// The door alarms as CSV (UTF-8 with BOM, CRLF, a header row, quoted fields).
#[utoipa::path(get, path = "/api/v1/reports/door-alarms.csv", tag = "reports", params(PeriodQuery),
    responses((status = 200, description = "Door alarms as CSV", content_type = "text/csv", body = String), ReadErrors))]
pub async fn door_alarms_csv(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(p): QueryParams<PeriodQuery>,
    RawQuery(query): RawQuery,
) -> WebResult<Response> {
    report_csv(
        &state.store,
        caller.actor(),
        Report::DoorAlarms,
        (&p, None),
        now_ms(),
        query.as_deref(),
    )
    .await
}

/// Meeting rooms (level-2 zones and zones booked in the period): booked
/// hours against used hours (clock hours with a granted entry) per ISO week.
#[utoipa::path(get, path = "/api/v1/reports/room-utilisation", tag = "reports", params(PeriodQuery),
    responses((status = 200, description = "Booked and used hours per room and week", body = RoomUtilisation), ReadErrors))]
pub async fn room_utilisation(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(p): QueryParams<PeriodQuery>,
    RawQuery(query): RawQuery,
) -> WebResult<Json<RoomUtilisation>> {
    match read(
        &state,
        &caller,
        Report::RoomUtilisation,
        (&p, None),
        query.as_deref(),
    )
    .await?
    {
        Outcome::Rooms(r) => Ok(Json(r)),
        _ => Err(unexpected()),
    }
}

/// The room utilisation as CSV, one row per room and week.
#[utoipa::path(get, path = "/api/v1/reports/room-utilisation.csv", tag = "reports", params(PeriodQuery),
    responses((status = 200, description = "Room utilisation as CSV", content_type = "text/csv", body = String), ReadErrors))]
pub async fn room_utilisation_csv(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(p): QueryParams<PeriodQuery>,
    RawQuery(query): RawQuery,
) -> WebResult<Response> {
    report_csv(
        &state.store,
        caller.actor(),
        Report::RoomUtilisation,
        (&p, None),
        now_ms(),
        query.as_deref(),
    )
    .await
}

/// Granted entries per door and hour of day (site time) in the period,
/// busiest door first.
#[utoipa::path(get, path = "/api/v1/reports/busiest-doors", tag = "reports", params(PeriodQuery),
    responses((status = 200, description = "Entries per door and hour of day", body = BusiestDoors), ReadErrors))]
pub async fn busiest_doors(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(p): QueryParams<PeriodQuery>,
    RawQuery(query): RawQuery,
) -> WebResult<Json<BusiestDoors>> {
    match read(
        &state,
        &caller,
        Report::BusiestDoors,
        (&p, None),
        query.as_deref(),
    )
    .await?
    {
        Outcome::Busiest(r) => Ok(Json(r)),
        _ => Err(unexpected()),
    }
}

/// The busiest doors as CSV: a door per row, its total and 24 hour columns.
#[utoipa::path(get, path = "/api/v1/reports/busiest-doors.csv", tag = "reports", params(PeriodQuery),
    responses((status = 200, description = "Busiest doors as CSV", content_type = "text/csv", body = String), ReadErrors))]
pub async fn busiest_doors_csv(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(p): QueryParams<PeriodQuery>,
    RawQuery(query): RawQuery,
) -> WebResult<Response> {
    report_csv(
        &state.store,
        caller.actor(),
        Report::BusiestDoors,
        (&p, None),
        now_ms(),
        query.as_deref(),
    )
    .await
}
