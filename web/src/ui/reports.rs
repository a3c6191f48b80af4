//! The report pages (`/reports` and one page per report, with its CSV):
//! a period form, the report's table, and for the meeting rooms a bar
//! chart drawn as SVG on the server.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;

use super::i18n::Lang;
use super::page::{local_time, query_value, render, PageContext, PageError};
use super::session::Signed;
use super::UiOptions;
use crate::api::reports::{report_csv, run, Outcome, Report};
use crate::error::WebError;
use crate::store::reports::{unused_days, Period, PeriodQuery, RoomUsage};
use crate::AppState;

/// The period form as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReportForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    days: String,
}

/// The form read: the period, the days, and what could not be read (field, catalog key).
struct Read {
    period: PeriodQuery,
    days: Option<i64>,
    problems: Vec<(&'static str, &'static str)>,
}

fn read_form(form: &ReportForm, report: Report) -> Read {
    let mut problems = Vec::new();
    let text = |t: &str| Some(t.trim().to_string()).filter(|t| !t.is_empty());
    for (field, value) in [("from", &form.from), ("to", &form.to)] {
        if let Some(v) = text(value) {
            if v.parse::<jiff::civil::Date>().is_err() {
                problems.push((field, "rep.error.date"));
            }
        }
    }
    let mut days = None;
    if report == Report::UnusedCards {
        if let Some(v) = text(&form.days) {
            match v
                .parse::<i64>()
                .ok()
                .filter(|d| unused_days(Some(*d)).is_ok())
            {
                Some(d) => days = Some(d),
                None => problems.push(("days", "rep.error.days")),
            }
        }
    }
    Read {
        period: PeriodQuery {
            from: text(&form.from),
            to: text(&form.to),
        },
        days,
        problems,
    }
}

/// One field of the period form.
#[derive(Debug, Clone)]
struct Field {
    name: &'static str,
    label_key: &'static str,
    input: &'static str,
    value: String,
    error_key: &'static str,
}

fn fields(
    report: Report,
    form: &ReportForm,
    problems: &[(&'static str, &'static str)],
) -> Vec<Field> {
    let list: Vec<(&'static str, &'static str, &'static str, &String)> =
        if report == Report::UnusedCards {
            vec![("days", "rep.days", "number", &form.days)]
        } else {
            vec![
                ("from", "rep.from", "date", &form.from),
                ("to", "rep.to", "date", &form.to),
            ]
        };
    list.into_iter()
        .map(|(name, label_key, input, value)| Field {
            name,
            label_key,
            input,
            value: value.trim().to_string(),
            error_key: problems
                .iter()
                .find(|(f, _)| *f == name)
                .map_or("", |(_, k)| k),
        })
        .collect()
}

/// An entry of the report index.
struct Entry {
    href: String,
    title_key: &'static str,
    intro_key: &'static str,
}

fn keys(report: Report) -> (&'static str, &'static str) {
    match report {
        Report::UnusedCards => ("rep.unused.title", "rep.unused.intro"),
        Report::Denials => ("rep.denials.title", "rep.denials.intro"),
        Report::DoorAlarms => ("rep.alarms.title", "rep.alarms.intro"),
        Report::RoomUtilisation => ("rep.rooms.title", "rep.rooms.intro"),
        Report::BusiestDoors => ("rep.busiest.title", "rep.busiest.intro"),
    }
}

#[derive(Template)]
#[template(path = "reports/index.html")]
struct IndexPage {
    ctx: PageContext,
    entries: Vec<Entry>,
}

/// `GET /reports`: the list of reports.
pub async fn index(page: Signed) -> Result<Response, PageError> {
    let ctx = PageContext::signed_in(page.lang, "/reports", &page.principal, &page.csrf_token);
    let entries = Report::ALL
        .into_iter()
        .map(|r| {
            let (title_key, intro_key) = keys(r);
            Entry {
                href: format!("/reports/{}", r.name()),
                title_key,
                intro_key,
            }
        })
        .collect();
    Ok(render(StatusCode::OK, &IndexPage { ctx, entries }))
}

/// A row of a report's table: cells as shown.
struct Row {
    cells: Vec<String>,
    /// The heat-map shade (0 to 5) of each hour cell, busiest doors only.
    shades: Vec<u8>,
}

/// A bar of the room chart.
struct Bar {
    x: i64,
    y: i64,
    height: i64,
    class: &'static str,
    title: String,
}

/// A label on an axis.
struct Tick {
    x: i64,
    y: i64,
    label: String,
}

/// One room's chart.
struct Chart {
    id: String,
    room: String,
    width: i64,
    bars: Vec<Bar>,
    y_ticks: Vec<Tick>,
    x_labels: Vec<Tick>,
    rows: Vec<Row>,
}

/// Chart geometry (SVG user units).
const CHART_HEIGHT: i64 = 220;
const PLOT_TOP: i64 = 30;
const PLOT_BOTTOM: i64 = 180;
const PLOT_LEFT: i64 = 50;
const BAR: i64 = 16;
const GROUP: i64 = 56;

fn chart(room: &RoomUsage, lang: Lang) -> Chart {
    let most = room
        .weeks
        .iter()
        .map(|w| w.booked_hours.max(w.used_hours as f64))
        .fold(0.0_f64, f64::max);
    // A round top for the axis: 4, 8, 12 ... hours.
    let top = ((most / 4.0).ceil() as i64).max(1) * 4;
    let span = PLOT_BOTTOM - PLOT_TOP;
    let y_of = |hours: f64| PLOT_BOTTOM - ((hours / top as f64) * span as f64).round() as i64;
    let mut bars = Vec::new();
    let mut x_labels = Vec::new();
    let mut rows = Vec::new();
    for (i, w) in room.weeks.iter().enumerate() {
        let x0 = PLOT_LEFT + 10 + i as i64 * GROUP;
        let booked = format!("{:.1}", w.booked_hours);
        for (k, (hours, class, key, shown)) in [
            (w.booked_hours, "booked", "rep.rooms.booked", booked.clone()),
            (
                w.used_hours as f64,
                "used",
                "rep.rooms.used",
                w.used_hours.to_string(),
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let y = y_of(hours);
            bars.push(Bar {
                x: x0 + k as i64 * (BAR + 2),
                y,
                height: PLOT_BOTTOM - y,
                class,
                title: format!(
                    "{} {}: {} {}",
                    w.week,
                    lang.t(key),
                    shown,
                    lang.t("rep.hours")
                ),
            });
        }
        // The axis shows the week number only (`W45`); the table and the
        // tooltips give the whole ISO week.
        x_labels.push(Tick {
            x: x0 + BAR,
            y: PLOT_BOTTOM + 16,
            label: w.week.rsplit('-').next().unwrap_or(&w.week).to_string(),
        });
        rows.push(Row {
            cells: vec![w.week.clone(), booked, w.used_hours.to_string()],
            shades: Vec::new(),
        });
    }
    let y_ticks = (0..=4)
        .map(|n| {
            let hours = top * n / 4;
            Tick {
                x: PLOT_LEFT - 6,
                y: y_of(hours as f64),
                label: hours.to_string(),
            }
        })
        .collect();
    Chart {
        id: format!("room-{}", room.zone_id),
        room: room.zone_name.clone(),
        width: (PLOT_LEFT + 20 + room.weeks.len() as i64 * GROUP).max(320),
        bars,
        y_ticks,
        x_labels,
        rows,
    }
}

#[derive(Template)]
#[template(path = "reports/report.html")]
struct ReportPage {
    ctx: PageContext,
    name: &'static str,
    title_key: &'static str,
    intro_key: &'static str,
    fields: Vec<Field>,
    problem_key: &'static str,
    period: String,
    csv: String,
    /// The table's column headers (catalog keys), or the hours for the busiest doors.
    columns: Vec<String>,
    rows: Vec<Row>,
    truncated: bool,
    charts: Vec<Chart>,
    plot_bottom: i64,
    plot_left: i64,
    chart_height: i64,
    bar_width: i64,
}

impl ReportPage {
    fn is(&self, name: &str) -> bool {
        self.name == name
    }
}

fn columns(report: Report, lang: Lang) -> Vec<String> {
    let keys: &[&str] = match report {
        Report::UnusedCards => &[
            "rep.col.person",
            "rep.col.card",
            "rep.col.issued",
            "rep.col.last_use",
        ],
        Report::Denials => &[
            "rep.col.person",
            "rep.col.card",
            "rep.col.door",
            "rep.col.reason",
            "rep.col.count",
            "rep.col.last",
        ],
        Report::DoorAlarms => &[
            "rep.col.door",
            "rep.col.zone",
            "rep.col.forced",
            "rep.col.held",
            "rep.col.last",
        ],
        Report::RoomUtilisation => &["rep.col.week", "rep.rooms.booked", "rep.rooms.used"],
        Report::BusiestDoors => &["rep.col.door", "rep.col.total"],
    };
    let mut out: Vec<String> = keys.iter().map(|k| lang.t(k).to_string()).collect();
    if report == Report::BusiestDoors {
        out.extend((0..24).map(|h| format!("{h}")));
    }
    out
}

fn or_id(name: Option<&str>, id: Option<i64>) -> String {
    match (name, id) {
        (Some(n), _) => n.to_string(),
        (None, Some(id)) => format!("#{id}"),
        (None, None) => String::new(),
    }
}

/// The table rows of a report as the page shows them.
fn rows(outcome: &Outcome, zone: &str, lang: Lang) -> Vec<Row> {
    let plain = |cells: Vec<String>| Row {
        cells,
        shades: Vec::new(),
    };
    match outcome {
        Outcome::Unused(r) => r
            .cards
            .iter()
            .map(|c| {
                plain(vec![
                    c.person_name.clone(),
                    c.card.clone(),
                    local_time(c.issued_at, zone),
                    c.last_used_at.map_or_else(
                        || lang.t("rep.unused.never").to_string(),
                        |t| local_time(t, zone),
                    ),
                ])
            })
            .collect(),
        Outcome::Denials(r) => r
            .rows
            .iter()
            .map(|d| {
                plain(vec![
                    or_id(d.person_name.as_deref(), d.person_id),
                    d.card.clone().unwrap_or_default(),
                    or_id(d.door_name.as_deref(), d.door_id),
                    d.reason.clone().unwrap_or_default(),
                    d.count.to_string(),
                    local_time(d.last_at, zone),
                ])
            })
            .collect(),
        Outcome::DoorAlarms(r) => r
            .doors
            .iter()
            .map(|d| {
                plain(vec![
                    or_id(d.door_name.as_deref(), Some(d.door_id)),
                    or_id(d.zone_name.as_deref(), d.zone_id),
                    d.forced.to_string(),
                    d.held_open.to_string(),
                    local_time(d.last_at, zone),
                ])
            })
            .collect(),
        Outcome::Rooms(_) => Vec::new(),
        Outcome::Busiest(r) => {
            let most = r
                .doors
                .iter()
                .flat_map(|d| d.hours.iter().copied())
                .max()
                .unwrap_or(0)
                .max(1);
            r.doors
                .iter()
                .map(|d| {
                    let mut cells = vec![
                        or_id(d.door_name.as_deref(), Some(d.door_id)),
                        d.total.to_string(),
                    ];
                    cells.extend(d.hours.iter().map(|n| n.to_string()));
                    Row {
                        cells,
                        // Five shades above zero, relative to the busiest hour.
                        shades: d
                            .hours
                            .iter()
                            .map(|n| {
                                if *n == 0 {
                                    0
                                } else {
                                    u8::try_from((n * 5 + most - 1) / most).unwrap_or(5).min(5)
                                }
                            })
                            .collect(),
                    }
                })
                .collect()
        }
    }
}

fn report_of(name: &str, lang: Lang) -> Result<(Report, bool), PageError> {
    let (base, csv) = match name.strip_suffix(".csv") {
        Some(base) => (base, true),
        None => (name, false),
    };
    Report::parse(base)
        .map(|r| (r, csv))
        .ok_or(PageError::NotFound(lang))
}

/// `GET /reports/{name}` (a report's page) and `GET /reports/{name}.csv`
/// (its download); reading either is recorded.
pub async fn report(
    State(state): State<AppState>,
    page: Signed,
    Extension(options): Extension<UiOptions>,
    Path(name): Path<String>,
    q: Result<Query<ReportForm>, QueryRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let (report, csv) = report_of(&name, lang)?;
    let form = q
        .map(|Query(q)| q)
        .map_err(|_| PageError::BadRequest(lang))?;
    let read = read_form(&form, report);
    let now = options.clock.now();
    if csv {
        if !read.problems.is_empty() {
            return Err(PageError::BadRequest(lang));
        }
        return report_csv(
            &state.store,
            &page.principal.actor,
            report,
            (&read.period, read.days),
            now,
            raw.as_deref(),
        )
        .await
        .map_err(|e| match e {
            WebError::BadRequest(_) => PageError::BadRequest(lang),
            other => PageError::internal(lang, other),
        });
    }
    let zone = state
        .store
        .display_time_zone()
        .await
        .map_err(|e| PageError::internal(lang, e))?;
    let path = format!("/reports/{}", report.name());
    let ctx =
        PageContext::signed_in(lang, &path, &page.principal, &page.csrf_token).in_time_zone(&zone);
    let (title_key, intro_key) = keys(report);
    let query: Vec<String> = [("from", &form.from), ("to", &form.to), ("days", &form.days)]
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}={}", query_value(v.trim())))
        .collect();
    let csv_link = if query.is_empty() {
        format!("{path}.csv")
    } else {
        format!("{path}.csv?{}", query.join("&"))
    };
    let mut shown = ReportPage {
        ctx,
        name: report.name(),
        title_key,
        intro_key,
        fields: fields(report, &form, &read.problems),
        problem_key: "",
        period: String::new(),
        csv: csv_link,
        columns: columns(report, lang),
        rows: Vec::new(),
        truncated: false,
        charts: Vec::new(),
        plot_bottom: PLOT_BOTTOM,
        plot_left: PLOT_LEFT,
        chart_height: CHART_HEIGHT,
        bar_width: BAR,
    };
    if !read.problems.is_empty() {
        return Ok(render(StatusCode::BAD_REQUEST, &shown));
    }
    let outcome = match run(&state.store, report, &read.period, read.days, now).await {
        Ok(o) => o,
        Err(WebError::BadRequest(_)) => {
            shown.problem_key = "rep.error.period";
            return Ok(render(StatusCode::BAD_REQUEST, &shown));
        }
        Err(e) => return Err(PageError::internal(lang, e)),
    };
    state
        .store
        .audit_read(
            &page.principal.actor,
            "report.read",
            report.name(),
            raw.as_deref(),
            outcome.rows(),
        )
        .await
        .map_err(|e| PageError::internal(lang, e))?;
    let shown_period = |p: &Period| format!("{} – {} ({})", p.from_date, p.to_date, p.time_zone);
    match &outcome {
        Outcome::Unused(r) => {
            shown.period = format!(
                "{} {}",
                lang.t("rep.unused.since"),
                local_time(r.since, &zone)
            );
            shown.truncated = r.truncated;
        }
        Outcome::Denials(r) => {
            shown.period = shown_period(&r.period);
            shown.truncated = r.truncated;
        }
        Outcome::DoorAlarms(r) => shown.period = shown_period(&r.period),
        Outcome::Rooms(r) => {
            shown.period = shown_period(&r.period);
            shown.charts = r.rooms.iter().map(|room| chart(room, lang)).collect();
        }
        Outcome::Busiest(r) => shown.period = shown_period(&r.period),
    }
    shown.rows = rows(&outcome, &zone, lang);
    Ok(render(StatusCode::OK, &shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_names_each_bad_field() {
        let form = ReportForm {
            from: "2026/11/02".into(),
            to: "2026-11-08".into(),
            days: "0".into(),
        };
        assert_eq!(
            read_form(&form, Report::UnusedCards).problems,
            vec![("from", "rep.error.date"), ("days", "rep.error.days")]
        );
        assert_eq!(
            read_form(&form, Report::Denials).problems,
            vec![("from", "rep.error.date")]
        );
        assert!(report_of("nothing", Lang::En).is_err());
        assert_eq!(
            report_of("denials.csv", Lang::En).ok(),
            Some((Report::Denials, true))
        );
    }
}
