//! Handlers for event search, the CSV export and level-4 occupancy.

use std::borrow::Cow;

use axum::body::{Body as HttpBody, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{Paging, ReadErrors};
use crate::auth::Caller;
use crate::error::{WebError, WebResult};
use crate::json::QueryParams;
use crate::store::queries::{EventCursor, EventFilter, EventRecord, ZoneOccupancy};
use crate::store::resources::{page_size, Page};
use crate::store::Store;
use crate::AppState;

/// Rows fetched per database round trip while exporting.
const EXPORT_PAGE: i64 = 1000;
/// The most rows one export returns; narrow the time range for more.
pub const EXPORT_MAX_ROWS: i64 = 1_000_000;

/// CSV export options.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportOptions {
    /// Offset of the `at` column's local time from UTC in minutes (default 540, Japan).
    #[param(minimum = -720, maximum = 840)]
    pub utc_offset_minutes: Option<i64>,
}

/// Search events, newest first unless `order=asc`; page with `cursor`.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventFilter, Paging),
    responses((status = 200, description = "A page of events", body = Page<EventRecord>), ReadErrors))]
pub async fn search_events(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(filter): QueryParams<EventFilter>,
    QueryParams(p): QueryParams<Paging>,
    RawQuery(query): RawQuery,
) -> WebResult<Json<Page<EventRecord>>> {
    let limit = page_size(p.limit)?;
    let page = state
        .store
        .search_events(&filter, limit, p.cursor())
        .await?;
    state
        .store
        .audit_read(
            caller.actor(),
            "events.search",
            "events",
            query.as_deref(),
            page.items.len(),
        )
        .await?;
    Ok(Json(page))
}

/// Cells that a spreadsheet would run as a formula get a leading apostrophe:
/// those starting with `=`, `+`, `-`, `@`, tab or CR, also behind leading
/// blanks, and their full-width forms (`＝＋－＠`), which Excel in Japanese
/// reads as formulas too.
pub(crate) fn cell(s: &str) -> Cow<'_, str> {
    let formula = ['=', '+', '-', '@', '＝', '＋', '－', '＠'];
    let unblanked = s.trim_start_matches([' ', '\t', '\r', '\n', '\u{3000}']);
    if s.starts_with(['\t', '\r']) || unblanked.starts_with(formula) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Days since 1970-01-01 to (year, month, day), by Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// ISO 8601 local time with its offset, e.g. `2026-11-23T09:12:00.250+09:00`.
pub(crate) fn local_time(ms: i64, offset_minutes: i64) -> String {
    let local = ms.saturating_add(offset_minutes * 60_000);
    let (y, mo, d) = civil_from_days(local.div_euclid(86_400_000));
    let rem = local.rem_euclid(86_400_000);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let off = offset_minutes.abs();
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}{sign}{:02}:{:02}",
        off / 60,
        off % 60
    )
}

const HEADER: [&str; 20] = [
    "at",
    "at_ms",
    "controller_id",
    "epoch",
    "seq",
    "kind",
    "door_id",
    "door_name",
    "door_name_at_event",
    "zone_id",
    "side",
    "level",
    "outcome",
    "reason",
    "warnings",
    "person_id",
    "person_name",
    "person_name_at_event",
    "card",
    "escort_id",
];

fn csv_rows(rows: &[EventRecord], offset: i64, header: bool) -> Result<Vec<u8>, csv::Error> {
    let mut out = Vec::new();
    if header {
        // A byte-order mark, so that Excel reads the file as UTF-8 (Japanese names).
        out.extend_from_slice("\u{feff}".as_bytes());
    }
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(&mut out);
    if header {
        w.write_record(HEADER)?;
    }
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let text = |v: &Option<String>| {
        v.as_deref()
            .map(|s| cell(s).into_owned())
            .unwrap_or_default()
    };
    for e in rows {
        w.write_record([
            local_time(e.at, offset),
            e.at.to_string(),
            e.controller_id.to_string(),
            e.epoch.clone(),
            e.seq.to_string(),
            cell(&e.kind).into_owned(),
            opt(e.door_id),
            text(&e.door_name),
            text(&e.door_name_at_event),
            opt(e.zone_id),
            text(&e.side),
            opt(e.level),
            e.outcome.map(|o| o.as_str()).unwrap_or_default().into(),
            text(&e.reason),
            // The same names as the API; several are joined by a space.
            e.warnings
                .iter()
                .map(|w| w.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            opt(e.person_id),
            text(&e.person_name),
            text(&e.person_name_at_event),
            text(&e.card),
            opt(e.escort_id),
        ])?;
    }
    w.flush()?;
    drop(w);
    Ok(out)
}

struct Export {
    store: Store,
    /// Who exports with which query, for the audit entry written when the
    /// export ends (completed, failed or cut off by the client).
    audit: Option<(String, Option<String>)>,
    filter: EventFilter,
    after: Option<EventCursor>,
    sent: i64,
    offset: i64,
    done: bool,
}

impl Export {
    fn page_size(&self) -> i64 {
        EXPORT_PAGE.min(EXPORT_MAX_ROWS - self.sent)
    }

    /// Encodes a fetched page and moves the cursor past it.
    fn take(&mut self, rows: &[EventRecord], want: i64, header: bool) -> Result<Bytes, csv::Error> {
        let out = csv_rows(rows, self.offset, header)?;
        if let Some(last) = rows.last() {
            self.after = Some(Store::cursor_of(last));
        }
        self.sent += i64::try_from(rows.len()).unwrap_or(i64::MAX);
        self.done = i64::try_from(rows.len()).unwrap_or(0) < want || self.sent >= EXPORT_MAX_ROWS;
        Ok(Bytes::from(out))
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        if let Some((actor, query)) = self.audit.take() {
            let store = self.store.clone();
            let rows = usize::try_from(self.sent).unwrap_or(usize::MAX);
            tokio::spawn(async move {
                if let Err(e) = store
                    .audit_read(&actor, "events.export", "events", query.as_deref(), rows)
                    .await
                {
                    tracing::error!(error = %e, "cannot record an event export in the audit log");
                }
            });
        }
    }
}

/// Export events as CSV (UTF-8 with BOM, CRLF, header row), same filters as the
/// search, oldest first unless `order=desc`; at most 1,000,000 rows.
#[utoipa::path(get, path = "/api/v1/events.csv", tag = "events", params(EventFilter, ExportOptions),
    responses((status = 200, description = "Events as CSV", content_type = "text/csv", body = String), ReadErrors))]
pub async fn export_events(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(filter): QueryParams<EventFilter>,
    QueryParams(options): QueryParams<ExportOptions>,
    RawQuery(query): RawQuery,
) -> WebResult<Response> {
    let offset = options.utc_offset()?;
    events_csv(state.store.clone(), caller.actor(), filter, offset, query).await
}

impl ExportOptions {
    /// The offset in minutes, checked (default 540, Japan).
    pub fn utc_offset(&self) -> WebResult<i64> {
        let offset = self.utc_offset_minutes.unwrap_or(540);
        if !(-720..=840).contains(&offset) {
            return Err(WebError::BadRequest(
                "utc_offset_minutes must be -720 to 840".into(),
            ));
        }
        Ok(offset)
    }
}

/// The events CSV download for `actor` (the API's and the event search
/// page's), oldest first unless the filter says otherwise; recorded in the
/// audit log with `query` when it ends.
pub(crate) async fn events_csv(
    store: Store,
    actor: &str,
    mut filter: EventFilter,
    offset: i64,
    query: Option<String>,
) -> WebResult<Response> {
    if filter.order.is_none() {
        filter.order = Some(crate::store::queries::Order::Asc);
    }
    let mut export = Export {
        store,
        audit: None,
        filter,
        after: None,
        sent: 0,
        offset,
        done: false,
    };
    // The first page is fetched before answering, so that bad filters are a 400, not a cut-off download.
    let want = export.page_size();
    let rows = export
        .store
        .events_after(&export.filter, None, want)
        .await?;
    let first = export
        .take(&rows, want, true)
        .map_err(|e| WebError::Internal(e.to_string()))?;
    // From here on rows leave the service: the export is recorded when it ends.
    export.audit = Some((actor.to_owned(), query));
    let rest = futures_util::stream::unfold(export, |mut export| async move {
        if export.done {
            return None;
        }
        let want = export.page_size();
        let chunk = match export
            .store
            .events_after(&export.filter, export.after, want)
            .await
        {
            Ok(rows) => export.take(&rows, want, false).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(detail) = &chunk {
            tracing::error!(%detail, "event export failed part-way");
            export.done = true;
        }
        Some((chunk.map_err(std::io::Error::other), export))
    });
    let body = futures_util::stream::iter([Ok::<Bytes, std::io::Error>(first)]);
    let body = futures_util::StreamExt::chain(body, rest);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"events.csv\"",
            ),
        ],
        HttpBody::from_stream(body),
    )
        .into_response())
}

/// Who is inside each level-4 zone now: people whose latest granted passage
/// of the zone's doors was an entry.
#[utoipa::path(get, path = "/api/v1/occupancy", tag = "events",
    responses((status = 200, description = "Each level-4 zone with the people inside", body = Vec<ZoneOccupancy>), ReadErrors))]
pub async fn occupancy(
    State(state): State<AppState>,
    caller: Caller,
) -> WebResult<Json<Vec<ZoneOccupancy>>> {
    let zones = state.store.occupancy().await?;
    let people = zones.iter().map(|z| z.people.len()).sum();
    state
        .store
        .audit_read(caller.actor(), "occupancy.read", "occupancy", None, people)
        .await?;
    Ok(Json(zones))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_and_formula_cells() {
        assert_eq!(local_time(0, 0), "1970-01-01T00:00:00.000+00:00");
        // 2026-11-23T00:12:00.250Z is 09:12 in Japan.
        assert_eq!(
            local_time(1_795_392_720_250, 540),
            "2026-11-23T09:12:00.250+09:00"
        );
        assert_eq!(
            local_time(1_795_392_720_250, -300),
            "2026-11-22T19:12:00.250-05:00"
        );
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("山田"), "山田");
    }

    #[test]
    fn formulas_behind_blanks_or_in_full_width_signs_are_neutralised() {
        for formula in [
            " =HYPERLINK(\"x\")",
            "\t=1+1",
            "  +cmd",
            "＝HYPERLINK(\"x\")",
            "＋1",
            "－1",
            "＠SUM(A1)",
            " ＝1",
        ] {
            assert_eq!(cell(formula), format!("'{formula}"), "{formula:?}");
        }
        assert_eq!(cell(" 山田"), " 山田");
        assert_eq!(cell("Main hall"), "Main hall");
    }
}
