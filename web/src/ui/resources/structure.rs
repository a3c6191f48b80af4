//! The building's structure as pages: sites (time zone, holiday calendar),
//! zones (level, opening schedule, the level's settings and their defaults)
//! and weekly schedules.

use askama::Template;
use axum::extract::{Path, RawForm, State};
use axum::response::Response;
use axum::routing::post;
use serde_json::Value;

use super::{id_key, Column, Extra, Filter, FilterChoices, Resource, Show, ID_COLUMN, NAME_COLUMN};
use crate::auth::{Administer, Manage};
use crate::store::approvals::ChangeRequest;
use crate::store::browse::{BrowseTable, Search};
use crate::store::resources::sites::{HolidayInput, Site, SiteInput};
use crate::store::resources::zones::{Schedule, ScheduleInput, Zone, ZoneInput};
use crate::store::resources::{Level, ThreatLevel, ZoneSettings};
use crate::store::{Store, StoreError};
use crate::ui::forms::{Field, Refusal, Submitted, Widget};
use crate::ui::page::{see_other, PageContext, PageError};
use crate::ui::session::PageAuthorized;
use crate::AppState;

/// Security levels and their labels.
pub const LEVELS: &[(&str, &str)] = &[
    ("0", "level.0"),
    ("1", "level.1"),
    ("2", "level.2"),
    ("3", "level.3"),
    ("4", "level.4"),
];

const LEVEL_NUMBERS: &[(i64, &str)] = &[
    (0, "level.0"),
    (1, "level.1"),
    (2, "level.2"),
    (3, "level.3"),
    (4, "level.4"),
];

const ANTI_PASSBACK: &[(&str, &str)] = &[
    ("off", "apb.off"),
    ("soft", "apb.soft"),
    ("hard", "apb.hard"),
];

const KIND_RULES: &[(&str, &str)] = &[
    ("alone", "rule.alone"),
    ("escorted", "rule.escorted"),
    ("refused", "rule.refused"),
];

const THREATS: &[(&str, &str)] = &[
    ("normal", "threat.normal"),
    ("elevated", "threat.elevated"),
    ("high", "threat.high"),
    ("lockdown", "threat.lockdown"),
];

/// Sites.
#[derive(Debug)]
pub struct Sites;

impl Resource for Sites {
    const SLUG: &'static str = "sites";
    const KIND: &'static str = "site";
    type Writer = Manage;
    type Item = Site;

    fn table() -> BrowseTable {
        BrowseTable {
            table: "sites",
            key: "id",
            sortable: &["id", "name", "time_zone"],
            filterable: &[],
            searchable: &[Search::Contains("name")],
        }
    }

    fn columns() -> &'static [Column] {
        &[
            ID_COLUMN,
            NAME_COLUMN,
            Column {
                key: "time_zone",
                label: "field.time_zone",
                sort: Some("time_zone"),
                show: Show::Text,
            },
            Column {
                key: "threat",
                label: "field.threat",
                sort: None,
                show: Show::Choice(THREATS),
            },
        ]
    }

    fn fields(_editing: bool) -> Vec<Field> {
        vec![
            Field::required("name", "field.name", Widget::Text(200)),
            Field::optional("time_zone", "field.time_zone", Widget::Text(92))
                .hint("hint.time_zone"),
        ]
    }

    fn key(item: &Site) -> String {
        item.id.to_string()
    }

    fn title(item: &Site) -> String {
        item.name.clone()
    }

    fn blank(_: &Submitted) -> Value {
        serde_json::json!({"time_zone": "Asia/Tokyo"})
    }

    id_store_calls!(Site, SiteInput, site, create_site, update_site, delete_site);

    async fn extra(state: &AppState, item: &Site, ctx: &PageContext) -> Extra {
        let holidays = state
            .store
            .list_holidays(item.id, Some(500), None)
            .await
            .map_err(|e| PageError::internal(ctx.lang, e))?;
        let holidays = HolidaysSection {
            ctx: ctx.clone(),
            site: item.id.to_string(),
            holidays: holidays
                .items
                .into_iter()
                .map(|h| (h.date, h.name))
                .collect(),
        }
        .render()
        .map_err(|e| PageError::internal(ctx.lang, e))?;
        let threat = threat_section(ctx, format!("/sites/{}/threat", item.id), item.threat)?;
        Ok(threat + &holidays)
    }

    fn extra_posts() -> Vec<(String, axum::routing::MethodRouter<AppState>)> {
        vec![
            ("/sites/{key}/holidays".into(), post(put_holiday)),
            ("/sites/{key}/holidays/delete".into(), post(delete_holiday)),
            ("/sites/{key}/threat".into(), post(set_site_threat)),
        ]
    }
}

#[derive(Template)]
#[template(path = "resources/threat.html")]
struct ThreatSection {
    ctx: PageContext,
    action: String,
    current: &'static str,
    may_admin: bool,
    /// value, label, chosen now.
    options: Vec<(&'static str, &'static str, bool)>,
}

/// The threat level of a site or zone, and (for admins) the form that sets it.
fn threat_section(ctx: &PageContext, action: String, now: ThreatLevel) -> Extra {
    let label = |v: &str| {
        THREATS
            .iter()
            .find(|(k, _)| *k == v)
            .map_or("", |(_, key)| ctx.lang.t(key))
    };
    ThreatSection {
        ctx: ctx.clone(),
        action,
        current: label(now.as_str()),
        may_admin: ctx.is_admin,
        options: THREATS
            .iter()
            .map(|(v, key)| (*v, ctx.lang.t(key), *v == now.as_str()))
            .collect(),
    }
    .render()
    .map_err(|e| PageError::internal(ctx.lang, e))
}

/// The threat level a form names.
fn threat_of(raw: &RawForm) -> Option<ThreatLevel> {
    let form = form_of(raw);
    ThreatLevel::ALL
        .iter()
        .copied()
        .find(|t| t.as_str() == form.one("threat"))
}

/// `POST /sites/{key}/threat` (admins): controllers hear of it at once.
async fn set_site_threat(
    State(state): State<AppState>,
    page: PageAuthorized<Administer>,
    Path(key): Path<String>,
    raw: RawForm,
) -> Result<Response, PageError> {
    let id = id_key(&key).map_err(|_| PageError::NotFound(page.lang))?;
    let threat = threat_of(&raw).ok_or(PageError::BadRequest(page.lang))?;
    // A change waits for a second admin: its page says so.
    let change = ChangeRequest::SiteThreat {
        site_id: id,
        threat,
    };
    let result = match state
        .store
        .hold_for_approval(&page.principal.actor, &change)
        .await
    {
        Ok(Some(pending)) => return Ok(crate::ui::approvals::requested(&pending)),
        Ok(None) => state
            .store
            .set_site_threat(&page.principal.actor, id, threat)
            .await
            .map(drop),
        Err(e) => Err(e),
    };
    finish_action(&format!("/sites/{key}"), page.lang, result)
}

/// `POST /zones/{key}/threat` (admins).
async fn set_zone_threat(
    State(state): State<AppState>,
    page: PageAuthorized<Administer>,
    Path(key): Path<String>,
    raw: RawForm,
) -> Result<Response, PageError> {
    let id = id_key(&key).map_err(|_| PageError::NotFound(page.lang))?;
    let threat = threat_of(&raw).ok_or(PageError::BadRequest(page.lang))?;
    // A change waits for a second admin: its page says so.
    let change = ChangeRequest::ZoneThreat {
        zone_id: id,
        threat,
    };
    let result = match state
        .store
        .hold_for_approval(&page.principal.actor, &change)
        .await
    {
        Ok(Some(pending)) => return Ok(crate::ui::approvals::requested(&pending)),
        Ok(None) => state
            .store
            .set_zone_threat(&page.principal.actor, id, threat)
            .await
            .map(drop),
        Err(e) => Err(e),
    };
    finish_action(&format!("/zones/{key}"), page.lang, result)
}

#[derive(Template)]
#[template(path = "resources/holidays.html")]
struct HolidaysSection {
    ctx: PageContext,
    site: String,
    holidays: Vec<(String, String)>,
}

fn form_of(raw: &RawForm) -> Submitted {
    Submitted::new(serde_urlencoded::from_bytes(&raw.0).unwrap_or_default())
}

/// `POST /sites/{key}/holidays`: adds (or renames) a holiday.
async fn put_holiday(
    State(state): State<AppState>,
    page: PageAuthorized<Manage>,
    Path(key): Path<String>,
    raw: RawForm,
) -> Result<Response, PageError> {
    let form = form_of(&raw);
    let id = id_key(&key).map_err(|_| PageError::NotFound(page.lang))?;
    let name = crate::store::resources::Name::new(form.one("name"));
    let result = match name {
        Some(name) => state
            .store
            .put_holiday(
                &page.principal.actor,
                id,
                form.one("date"),
                &HolidayInput { name },
            )
            .await
            .map(drop),
        None => Err(StoreError::Invalid("name: a holiday needs a name".into())),
    };
    finish_action(&format!("/sites/{key}"), page.lang, result)
}

/// `POST /sites/{key}/holidays/delete`.
async fn delete_holiday(
    State(state): State<AppState>,
    page: PageAuthorized<Manage>,
    Path(key): Path<String>,
    raw: RawForm,
) -> Result<Response, PageError> {
    let form = form_of(&raw);
    let id = id_key(&key).map_err(|_| PageError::NotFound(page.lang))?;
    let result = state
        .store
        .delete_holiday(&page.principal.actor, id, form.one("date"))
        .await;
    finish_action(&format!("/sites/{key}"), page.lang, result)
}

/// After an action on a row's page: back to it, or why not.
fn finish_action(
    page: &str,
    lang: crate::ui::i18n::Lang,
    result: Result<(), StoreError>,
) -> Result<Response, PageError> {
    match result {
        Ok(()) => Ok(see_other(&format!("{page}?saved=1"))),
        Err(StoreError::Invalid(_) | StoreError::Conflict(_)) => Err(PageError::BadRequest(lang)),
        Err(StoreError::NotFound(_)) => Err(PageError::NotFound(lang)),
        Err(e) => Err(PageError::internal(lang, e)),
    }
}

/// Zones.
#[derive(Debug)]
pub struct Zones;

/// The settings fields of a zone form (shown when the level's defaults are
/// not used).
const SETTINGS: &[Field] = &[
    Field::required(
        "settings.anti_passback",
        "field.anti_passback",
        Widget::Choice(ANTI_PASSBACK),
    ),
    Field::optional("settings.dual_custody", "field.dual_custody", Widget::Check),
    Field::required(
        "settings.escort_window_ms",
        "field.escort_window_ms",
        Widget::Number(1000, 300_000),
    ),
    Field::required(
        "settings.dual_custody_window_ms",
        "field.dual_custody_window_ms",
        Widget::Number(1000, 300_000),
    ),
    Field::required(
        "settings.biometric_timeout_ms",
        "field.biometric_timeout_ms",
        Widget::Number(1000, 120_000),
    ),
    Field::optional(
        "settings.max_offline_age_ms",
        "field.max_offline_age_ms",
        Widget::Number(60_000, 31_536_000_000),
    )
    .hint("hint.max_offline_age"),
    Field::required(
        "settings.kinds.staff",
        "kind.staff",
        Widget::Choice(KIND_RULES),
    ),
    Field::required(
        "settings.kinds.contractor",
        "kind.contractor",
        Widget::Choice(KIND_RULES),
    ),
    Field::required(
        "settings.kinds.visitor",
        "kind.visitor",
        Widget::Choice(KIND_RULES),
    ),
    Field::required(
        "settings.kinds.citizen",
        "kind.citizen",
        Widget::Choice(KIND_RULES),
    ),
];

/// The field that says whether the zone has its own settings.
const CUSTOM: &str = "custom_settings";

fn zone_fields(custom: bool) -> Vec<Field> {
    let mut fields = vec![
        Field::required("site_id", "field.site", Widget::Ref("sites")),
        Field::required("name", "field.name", Widget::Text(200)),
        Field::required("level", "field.level", Widget::NumberChoice(LEVELS)),
        Field::optional(
            "opening_schedule_id",
            "field.opening_schedule",
            Widget::Ref("schedules"),
        )
        .hint("hint.opening_schedule"),
        Field::optional(CUSTOM, "field.custom_settings", Widget::Check)
            .hint("hint.custom_settings"),
    ];
    if custom {
        fields.extend_from_slice(SETTINGS);
    }
    fields
}

impl Resource for Zones {
    const SLUG: &'static str = "zones";
    const KIND: &'static str = "zone";
    type Writer = Manage;
    type Item = Zone;

    fn table() -> BrowseTable {
        BrowseTable {
            table: "zones",
            key: "id",
            sortable: &["id", "name", "level", "site_id"],
            filterable: &["site_id", "level"],
            searchable: &[Search::Contains("name")],
        }
    }

    fn columns() -> &'static [Column] {
        &[
            ID_COLUMN,
            NAME_COLUMN,
            Column {
                key: "level",
                label: "field.level",
                sort: Some("level"),
                show: Show::Choice(LEVELS),
            },
            Column {
                key: "site_id",
                label: "field.site",
                sort: Some("site_id"),
                show: Show::Ref("sites"),
            },
            Column {
                key: "opening_schedule_id",
                label: "field.opening_schedule",
                sort: None,
                show: Show::Ref("schedules"),
            },
        ]
    }

    fn filters() -> &'static [Filter] {
        &[
            Filter {
                column: "site_id",
                label: "field.site",
                choices: FilterChoices::Table("sites"),
            },
            Filter {
                column: "level",
                label: "field.level",
                choices: FilterChoices::Numbers(LEVEL_NUMBERS),
            },
        ]
    }

    fn fields(_editing: bool) -> Vec<Field> {
        zone_fields(true)
    }

    fn key(item: &Zone) -> String {
        item.id.to_string()
    }

    fn title(item: &Zone) -> String {
        item.name.clone()
    }

    fn to_form(item: &Zone) -> Value {
        let mut v = serde_json::to_value(item).unwrap_or_default();
        let mut defaults = ZoneSettings::for_level(item.level);
        defaults.threat = item.settings.threat;
        if let Some(map) = v.as_object_mut() {
            map.insert(CUSTOM.into(), Value::Bool(defaults != item.settings));
        }
        v
    }

    fn blank(given: &Submitted) -> Value {
        let level = given
            .one("level")
            .parse::<i64>()
            .ok()
            .and_then(Level::new)
            .or_else(|| Level::new(2));
        let settings = level.map(ZoneSettings::for_level);
        serde_json::json!({"level": level, "settings": settings})
    }

    /// Its settings are read only when it has its own; otherwise the store
    /// gives it its level's.
    fn submitted_fields(form: &Submitted, _editing: bool) -> Vec<Field> {
        zone_fields(form.has(CUSTOM))
    }

    fn shape(object: &mut Value) {
        if let Some(map) = object.as_object_mut() {
            map.remove(CUSTOM);
        }
    }

    id_store_calls!(Zone, ZoneInput, zone, create_zone, update_zone, delete_zone);

    async fn extra(_state: &AppState, item: &Zone, ctx: &PageContext) -> Extra {
        let threat = threat_section(
            ctx,
            format!("/zones/{}/threat", item.id),
            item.settings.threat,
        )?;
        Ok(threat + &level_defaults(ctx)?)
    }

    fn extra_posts() -> Vec<(String, axum::routing::MethodRouter<AppState>)> {
        vec![("/zones/{key}/threat".into(), post(set_zone_threat))]
    }
}

/// The table of each level's default settings, under a zone's form.
fn level_defaults(ctx: &PageContext) -> Extra {
    let rows = (0..=4)
        .filter_map(Level::new)
        .map(|level| {
            let s = ZoneSettings::for_level(level);
            let rule = |r: crate::store::resources::KindRule| {
                ctx.lang.t(match r.as_str() {
                    "alone" => "rule.alone",
                    "escorted" => "rule.escorted",
                    _ => "rule.refused",
                })
            };
            vec![
                ctx.lang
                    .t(LEVELS[usize::try_from(level.get()).unwrap_or(0)].1)
                    .to_string(),
                ctx.lang
                    .t(match s.anti_passback.as_str() {
                        "soft" => "apb.soft",
                        "hard" => "apb.hard",
                        _ => "apb.off",
                    })
                    .to_string(),
                ctx.lang
                    .t(if s.dual_custody {
                        "form.yes"
                    } else {
                        "form.no"
                    })
                    .to_string(),
                s.max_offline_age_ms
                    .map_or_else(|| "—".to_string(), |ms| format!("{} h", ms / 3_600_000)),
                rule(s.kinds.staff).to_string(),
                rule(s.kinds.contractor).to_string(),
                rule(s.kinds.visitor).to_string(),
                rule(s.kinds.citizen).to_string(),
            ]
        })
        .collect();
    LevelDefaults {
        ctx: ctx.clone(),
        rows,
    }
    .render()
    .map_err(|e| PageError::internal(ctx.lang, e))
}

#[derive(Template)]
#[template(path = "resources/level_defaults.html")]
struct LevelDefaults {
    ctx: PageContext,
    rows: Vec<Vec<String>>,
}

/// Weekly schedules.
#[derive(Debug)]
pub struct Schedules;

impl Resource for Schedules {
    const SLUG: &'static str = "schedules";
    const KIND: &'static str = "schedule";
    type Writer = Manage;
    type Item = Schedule;

    fn table() -> BrowseTable {
        BrowseTable {
            table: "schedules",
            key: "id",
            sortable: &["id", "name"],
            filterable: &[],
            searchable: &[Search::Contains("name")],
        }
    }

    fn columns() -> &'static [Column] {
        &[ID_COLUMN, NAME_COLUMN]
    }

    fn fields(_editing: bool) -> Vec<Field> {
        vec![
            Field::required("name", "field.name", Widget::Text(200)),
            Field::optional("windows", "field.windows", Widget::Windows).hint("hint.windows"),
        ]
    }

    fn key(item: &Schedule) -> String {
        item.id.to_string()
    }

    fn title(item: &Schedule) -> String {
        item.name.clone()
    }

    id_store_calls!(
        Schedule,
        ScheduleInput,
        schedule,
        create_schedule,
        update_schedule,
        delete_schedule
    );
}
