//! The live monitor page `/monitor` and its stream `/monitor/stream`:
//! events, door states and controllers' health as server-rendered rows
//! that the page's one script puts in place as they arrive.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::i18n::Lang;
use super::page::{local_time, render, PageContext, PageError};
use super::session::Signed;
use super::UiOptions;
use crate::monitor::{stream, ControllerStatus, DoorStatus, MonitorEvent, MonitorFilter, Update};
use crate::store::passages::PassageCursor;
use crate::store::resources::{Id, Level, Outcome};
use crate::AppState;

/// Events shown when the page opens.
const SHOWN: usize = 100;

/// The filter as the page's form sends it: empty fields mean "all".
#[derive(Debug, Default, Deserialize)]
pub struct FilterForm {
    #[serde(default)]
    site: String,
    #[serde(default)]
    zone: String,
    #[serde(default)]
    level: String,
    #[serde(default)]
    outcome: String,
    /// The position of the newest event the page shows (the stream starts after it).
    #[serde(default)]
    after: String,
}

impl FilterForm {
    fn filter(&self, lang: Lang) -> Result<MonitorFilter, PageError> {
        let bad = || PageError::BadRequest(lang);
        let number = |s: &str| -> Result<Option<i64>, PageError> {
            match s.trim() {
                "" => Ok(None),
                t => t.parse().map(Some).map_err(|_| bad()),
            }
        };
        let id = |s: &str| -> Result<Option<Id>, PageError> {
            number(s)?.map(|v| Id::new(v).ok_or_else(bad)).transpose()
        };
        Ok(MonitorFilter {
            site: id(&self.site)?,
            zone: id(&self.zone)?,
            level: number(&self.level)?
                .map(|v| Level::new(v).ok_or_else(bad))
                .transpose()?,
            outcome: match self.outcome.trim() {
                "" => None,
                t => Some(Outcome::parse(t).map_err(|_| bad())?),
            },
        })
    }

    /// The query string that carries this filter (for the stream's URL).
    fn query(&self) -> String {
        let given: Vec<(&str, &str)> = [
            ("site", &self.site),
            ("zone", &self.zone),
            ("level", &self.level),
            ("outcome", &self.outcome),
        ]
        .into_iter()
        .map(|(name, value)| (name, value.trim()))
        .filter(|(_, value)| !value.is_empty())
        .collect();
        // Four string pairs always encode; a hand-typed URL may carry anything
        // in them, and the encoder escapes it.
        serde_urlencoded::to_string(given).unwrap_or_default()
    }
}

/// How rows are written: the viewer's language and the site's time zone.
#[derive(Debug, Clone)]
struct Writer {
    lang: Lang,
    time_zone: String,
    now: i64,
}

#[derive(Template)]
#[template(path = "monitor/event_row.html")]
struct EventRow<'a> {
    w: &'a Writer,
    e: &'a MonitorEvent,
}

impl EventRow<'_> {
    fn time(&self) -> String {
        local_time(self.e.event.at, &self.w.time_zone)
    }
    fn what(&self) -> String {
        let kind = self.w.lang.t(&format!("event.{}", self.e.event.kind));
        match &self.e.event.reason {
            // A plain grant says no more than its outcome: the kind instead.
            Some(r) if self.e.event.kind == "access" && r != "granted" => {
                self.w.lang.t(&format!("reason.{r}")).to_string()
            }
            _ => kind.to_string(),
        }
    }
    fn outcome(&self) -> (&'static str, &'static str) {
        match self.e.event.outcome {
            Some(Outcome::Granted) => ("granted", self.w.lang.t("outcome.granted")),
            Some(Outcome::Denied) => ("denied", self.w.lang.t("outcome.denied")),
            Some(Outcome::Pending) => ("pending", self.w.lang.t("outcome.pending")),
            None => ("", ""),
        }
    }
    fn door(&self) -> String {
        let e = &self.e.event;
        e.door_name
            .clone()
            .or_else(|| e.door_name_at_event.clone())
            .unwrap_or_default()
    }
    fn person(&self) -> String {
        let e = &self.e.event;
        e.person_name
            .clone()
            .or_else(|| e.person_name_at_event.clone())
            .unwrap_or_default()
    }
    fn side(&self) -> &'static str {
        match self.e.event.side.as_deref() {
            Some("entry") => self.w.lang.t("side.entry"),
            Some("exit") => self.w.lang.t("side.exit"),
            _ => "",
        }
    }
}

#[derive(Template)]
#[template(path = "monitor/door_row.html")]
struct DoorRow<'a> {
    w: &'a Writer,
    d: &'a DoorStatus,
}

impl DoorRow<'_> {
    fn state(&self) -> &'static str {
        self.w.lang.t(self.d.state.key())
    }
    fn class(&self) -> &'static str {
        match self.d.state {
            crate::monitor::DoorState::Locked => "ok",
            crate::monitor::DoorState::Open => "open",
            _ => "bad",
        }
    }
    fn since(&self) -> String {
        self.d
            .since
            .map(|at| local_time(at, &self.w.time_zone))
            .unwrap_or_default()
    }
}

#[derive(Template)]
#[template(path = "monitor/controller_row.html")]
struct ControllerRow<'a> {
    w: &'a Writer,
    c: &'a ControllerStatus,
}

impl ControllerRow<'_> {
    fn health(&self) -> (&'static str, &'static str) {
        let c = &self.c.controller;
        let t = |k| self.w.lang.t(k);
        if c.disabled {
            ("", t("monitor.ctl.disabled"))
        } else if c.offline_since.is_some() {
            ("bad", t("monitor.ctl.offline"))
        } else if c.last_seen_at.is_none() {
            ("", t("monitor.ctl.never"))
        } else {
            ("ok", t("monitor.ctl.online"))
        }
    }
    fn last_seen(&self) -> String {
        self.c
            .controller
            .last_seen_at
            .map(|at| local_time(at, &self.w.time_zone))
            .unwrap_or_default()
    }
    fn cache_age(&self) -> String {
        // Aged to the moment the row is written, not when the hub read it.
        self.c
            .controller
            .last_seen_at
            .map(|at| {
                format!(
                    "{} {}",
                    (self.w.now - at).max(0) / 1000,
                    self.w.lang.t("monitor.seconds")
                )
            })
            .unwrap_or_default()
    }
}

#[derive(Template)]
#[template(path = "monitor/alarms.html")]
struct AlarmCount<'a> {
    w: &'a Writer,
    open: i64,
    escalated: i64,
}

/// A row of any kind, as text for the page or the stream.
fn row(w: &Writer, update: &Update) -> Result<(&'static str, String), askama::Error> {
    Ok(match update {
        Update::Event(e) => ("event", EventRow { w, e }.render()?),
        Update::Door(d) => ("door", DoorRow { w, d }.render()?),
        Update::Controller(c) => ("controller", ControllerRow { w, c }.render()?),
        Update::Alarms { open, escalated } => (
            "alarms",
            AlarmCount {
                w,
                open: *open,
                escalated: *escalated,
            }
            .render()?,
        ),
    })
}

fn rows(w: &Writer, updates: impl Iterator<Item = Update>) -> Result<Vec<String>, askama::Error> {
    updates.map(|u| row(w, &u).map(|(_, html)| html)).collect()
}

#[derive(Template)]
#[template(path = "monitor/page.html")]
struct MonitorPage {
    ctx: PageContext,
    stream: String,
    script: String,
    sites: Vec<(i64, String)>,
    zones: Vec<(i64, String)>,
    chosen: FilterForm,
    events: Vec<String>,
    doors: Vec<String>,
    controllers: Vec<String>,
    alarms: String,
}

impl MonitorPage {
    fn chosen(&self, field: &str, value: &str) -> bool {
        let current = match field {
            "site" => &self.chosen.site,
            "zone" => &self.chosen.zone,
            "level" => &self.chosen.level,
            _ => &self.chosen.outcome,
        };
        current.trim() == value
    }
}

async fn writer(state: &AppState, lang: Lang, options: &UiOptions) -> Result<Writer, PageError> {
    let time_zone = state
        .store
        .display_time_zone()
        .await
        .map_err(|e| PageError::internal(lang, e))?;
    Ok(Writer {
        lang,
        time_zone,
        now: options.clock.now(),
    })
}

/// `GET /monitor`.
pub async fn page(
    State(state): State<AppState>,
    axum::Extension(options): axum::Extension<UiOptions>,
    page: Signed,
    Query(form): Query<FilterForm>,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let filter = form.filter(lang)?;
    let (view, _) = state
        .monitor
        .open()
        .await
        .map_err(|e| PageError::internal(lang, e))?;
    let w = writer(&state, lang, &options).await?;
    let sites = state
        .store
        .names("sites")
        .await
        .map_err(|e| PageError::internal(lang, e))?;
    let mut zones: BTreeMap<i64, String> = BTreeMap::new();
    for d in &view.doors {
        zones.insert(d.door.zone_id, d.door.zone_name.clone());
    }
    let view = view.filtered(&filter);
    let after = view
        .events
        .first()
        .map(|e| e.position.clone())
        .unwrap_or_else(|| PassageCursor::start().text());
    let query = form.query();
    let stream = if query.is_empty() {
        format!("/monitor/stream?after={after}")
    } else {
        format!("/monitor/stream?{query}&after={after}")
    };
    let internal = |e: askama::Error| PageError::internal(lang, e);
    let events = rows(
        &w,
        view.events
            .into_iter()
            .take(SHOWN)
            .map(|e| Update::Event(Box::new(e))),
    )
    .map_err(internal)?;
    let doors = rows(&w, view.doors.into_iter().map(Update::Door)).map_err(internal)?;
    let controllers =
        rows(&w, view.controllers.into_iter().map(Update::Controller)).map_err(internal)?;
    let alarms = row(
        &w,
        &Update::Alarms {
            open: view.open_alarms,
            escalated: view.escalated_alarms,
        },
    )
    .map_err(internal)?
    .1;
    Ok(render(
        StatusCode::OK,
        &MonitorPage {
            ctx: PageContext::signed_in(lang, "/monitor", &page.principal, &page.csrf_token),
            stream,
            script: super::assets::monitor_script_url(),
            sites,
            zones: zones.into_iter().collect(),
            chosen: form,
            events,
            doors,
            controllers,
            alarms,
        },
    ))
}

/// `GET /monitor/stream`: server-sent events, each an HTML row for the
/// page's script (`event`, `door`, `controller`, `alarms`). A client that
/// reconnects (its `Last-Event-ID`, or the page's `after`) first gets the
/// events it missed, then every door and controller again.
pub async fn stream(
    State(state): State<AppState>,
    axum::Extension(options): axum::Extension<UiOptions>,
    page: Signed,
    headers: HeaderMap,
    Query(form): Query<FilterForm>,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let filter = form.filter(lang)?;
    let w = writer(&state, lang, &options).await?;
    let resume = last_event_id(&headers).unwrap_or(form.after);
    let opened = stream::open(&state, &resume)
        .await
        .map_err(|e| PageError::internal(lang, e))?;
    let allowed: stream::StillAllowed = {
        let (store, id, options) = (state.store.clone(), page.session_id, options.clone());
        Box::new(move || {
            let (store, id, options) = (store.clone(), id.clone(), options.clone());
            Box::pin(async move {
                store
                    .session_alive(&id, options.sessions, options.clock.now())
                    .await
                    .unwrap_or(false)
            })
        })
    };
    let render: stream::Render = Box::new(move |update: &Update, now: i64| {
        if !filter.passes(update) {
            return None;
        }
        let w = Writer { now, ..w.clone() };
        let (name, html) = row(&w, update).ok()?;
        let event = Event::default().event(name).data(html);
        Some(match update {
            Update::Event(e) => event.id(e.position.clone()),
            _ => event,
        })
    });
    Ok(stream::sse(opened, allowed, render, options.clock).into_response())
}

/// The `Last-Event-ID` a reconnecting browser sends.
pub fn last_event_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
