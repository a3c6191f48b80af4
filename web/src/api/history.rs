//! Handlers for the machine-room history (visits and denied attempts, as
//! JSON and as an Excel-friendly CSV) and for who is inside each tracked zone.

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::events::{cell, local_time, ExportOptions};
use super::{Paging, ReadErrors};
use crate::auth::Caller;
use crate::error::{WebError, WebResult};
use crate::json::QueryParams;
use crate::store::history::{History, HistoryFilter, Visit};
use crate::store::queries::{EventCursor, EventRecord, ZoneOccupancy};
use crate::store::resources::page_size;
use crate::store::{now_ms, Store};
use crate::AppState;

/// Rows fetched per database round trip while exporting.
const EXPORT_PAGE: i64 = 1000;

/// A zone's entry/exit pairs per person for a period (default: every
/// level-4 zone, the last 30 days), newest first, with the denied attempts
/// at its doors; page each list with `cursor` (visits) and the `next` of
/// `denied` as `cursor` with `outcome=denied`.
#[utoipa::path(get, path = "/api/v1/history", tag = "events", params(HistoryFilter, Paging),
    responses((status = 200, description = "Visits and denied attempts", body = History), ReadErrors))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(filter): QueryParams<HistoryFilter>,
    QueryParams(p): QueryParams<Paging>,
    RawQuery(query): RawQuery,
) -> WebResult<Json<History>> {
    let limit = page_size(p.limit)?;
    // One cursor walks the list asked for: visits, or the denied attempts
    // when only they are asked for.
    let denied_only = filter.outcome == Some(crate::store::resources::Outcome::Denied);
    let (visits_cursor, denied_cursor) = if denied_only {
        (None, p.cursor.as_deref())
    } else {
        (p.cursor.as_deref(), None)
    };
    let history = state
        .store
        .history(&filter, now_ms(), limit, visits_cursor, denied_cursor)
        .await?;
    state
        .store
        .audit_read(
            caller.actor(),
            "history.read",
            "history",
            query.as_deref(),
            history.visits.items.len() + history.denied.items.len(),
        )
        .await?;
    Ok(Json(history))
}

/// The columns of the history CSV.
pub const HISTORY_HEADER: [&str; 22] = [
    "record",
    "zone_id",
    "zone_name",
    "person_id",
    "person_name",
    "person_kind",
    "card",
    "entered_at",
    "entry_door_id",
    "entry_door_name",
    "left_at",
    "exit_door_id",
    "exit_door_name",
    "still_inside",
    "minutes_inside",
    "companion_role",
    "companion_id",
    "companion_name",
    "level",
    "reason",
    "entered_at_ms",
    "left_at_ms",
];

fn opt(v: Option<i64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn text(v: Option<&str>) -> String {
    v.map(|s| cell(s).into_owned()).unwrap_or_default()
}

fn visit_record(v: &Visit, offset: i64) -> [String; 22] {
    let time = |t: Option<i64>| t.map(|t| local_time(t, offset)).unwrap_or_default();
    [
        "visit".into(),
        v.zone_id.to_string(),
        text(v.zone_name.as_deref()),
        v.person_id.to_string(),
        text(v.person_name.as_deref()),
        v.person_kind.map(|k| k.as_str()).unwrap_or_default().into(),
        text(v.card.as_deref()),
        time(v.entered_at),
        opt(v.entry_door_id),
        text(v.entry_door_name.as_deref()),
        time(v.left_at),
        opt(v.exit_door_id),
        text(v.exit_door_name.as_deref()),
        if v.still_inside { "yes" } else { "no" }.into(),
        // Whole minutes, rounded down: what a reviewer compares.
        v.duration_ms
            .map(|d| (d / 60_000).to_string())
            .unwrap_or_default(),
        v.companion_role
            .map(|r| r.as_str())
            .unwrap_or_default()
            .into(),
        opt(v.companion_id),
        text(v.companion_name.as_deref()),
        opt(v.level),
        String::new(),
        opt(v.entered_at),
        opt(v.left_at),
    ]
}

fn denied_record(e: &EventRecord, offset: i64) -> [String; 22] {
    let name = e
        .person_name
        .as_deref()
        .or(e.person_name_at_event.as_deref());
    let door = e.door_name.as_deref().or(e.door_name_at_event.as_deref());
    [
        "denied".into(),
        opt(e.zone_id),
        String::new(),
        opt(e.person_id),
        text(name),
        String::new(),
        text(e.card.as_deref()),
        local_time(e.at, offset),
        opt(e.door_id),
        text(door),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        opt(e.level),
        text(e.reason.as_deref()),
        e.at.to_string(),
        String::new(),
    ]
}

/// The whole history of `filter`'s period as CSV for Excel: a UTF-8 BOM,
/// CRLF line ends, a header row, every field quoted; the visits newest
/// first, then the denied attempts (column `record`). The period is bounded
/// (at most 367 days), so the rows are gathered before answering; `now`
/// sets the default period, `offset` (minutes) the times' zone. The
/// download is recorded in the audit log with `query`.
pub(crate) async fn history_csv(
    store: &Store,
    actor: &str,
    filter: &HistoryFilter,
    (now, offset): (i64, i64),
    query: Option<&str>,
) -> WebResult<Response> {
    let period = filter.period(now)?;
    let mut out = Vec::new();
    let mut w = excel_writer(&mut out);
    let csv_error = |e: csv::Error| WebError::Internal(e.to_string());
    w.write_record(HISTORY_HEADER).map_err(csv_error)?;
    let mut rows = 0usize;
    if filter.wants_visits() {
        let mut after: Option<EventCursor> = None;
        loop {
            let page = store
                .visits_after(filter, period, after, EXPORT_PAGE)
                .await?;
            for v in &page {
                w.write_record(visit_record(v, offset)).map_err(csv_error)?;
            }
            rows += page.len();
            match page.last() {
                Some(last) if i64::try_from(page.len()).unwrap_or(0) == EXPORT_PAGE => {
                    after = Some(last.cursor);
                }
                _ => break,
            }
        }
    }
    if filter.wants_denied() {
        let denied = filter.denied(period);
        let mut after: Option<EventCursor> = None;
        loop {
            let page = store.events_after(&denied, after, EXPORT_PAGE).await?;
            for e in &page {
                w.write_record(denied_record(e, offset))
                    .map_err(csv_error)?;
            }
            rows += page.len();
            match page.last() {
                Some(last) if i64::try_from(page.len()).unwrap_or(0) == EXPORT_PAGE => {
                    after = Some(Store::cursor_of(last));
                }
                _ => break,
            }
        }
    }
    w.flush().map_err(|e| WebError::Internal(e.to_string()))?;
    drop(w);
    store
        .audit_read(actor, "history.export", "history", query, rows)
        .await?;
    Ok(csv_attachment("history.csv", out))
}

/// A CSV writer for Excel into `out`: a UTF-8 byte-order mark first (so
/// that Excel reads Japanese names as UTF-8), CRLF line ends, every field
/// quoted. The history and the reports write through it.
pub(crate) fn excel_writer(out: &mut Vec<u8>) -> csv::Writer<&mut Vec<u8>> {
    out.extend_from_slice("\u{feff}".as_bytes());
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Always)
        .from_writer(out)
}

/// A CSV download named `file_name`.
pub(crate) fn csv_attachment(file_name: &str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The history as CSV (UTF-8 with BOM, CRLF, a header row, quoted fields):
/// the same filters as `/api/v1/history`, the whole period.
#[utoipa::path(get, path = "/api/v1/history.csv", tag = "events", params(HistoryFilter, ExportOptions),
    responses((status = 200, description = "Visits and denied attempts as CSV", content_type = "text/csv", body = String), ReadErrors))]
pub async fn export_history(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(filter): QueryParams<HistoryFilter>,
    QueryParams(options): QueryParams<ExportOptions>,
    RawQuery(query): RawQuery,
) -> WebResult<Response> {
    let offset = options.utc_offset()?;
    history_csv(
        &state.store,
        caller.actor(),
        &filter,
        (now_ms(), offset),
        query.as_deref(),
    )
    .await
}

/// Who is inside each zone that tracks it (level 4, anti-passback, dual
/// custody) now: name, kind, since when, through which door, and a
/// visitor's escort.
#[utoipa::path(get, path = "/api/v1/inside", tag = "events",
    responses((status = 200, description = "Each tracked zone with the people inside", body = Vec<ZoneOccupancy>), ReadErrors))]
pub async fn inside(
    State(state): State<AppState>,
    caller: Caller,
) -> WebResult<Json<Vec<ZoneOccupancy>>> {
    let zones = state.store.inside().await?;
    let people = zones.iter().map(|z| z.people.len()).sum();
    state
        .store
        .audit_read(caller.actor(), "who_is_inside.read", "inside", None, people)
        .await?;
    Ok(Json(zones))
}
