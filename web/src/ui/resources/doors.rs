//! Doors and gates (zones, readers, biometric modules, fire egress,
//! controller) and the controllers that drive them (register with the secret
//! shown once; contact, policy confirmed, cache age; disable).

use askama::Template;
use axum::extract::{Path, RawForm, State};
use axum::response::Response;
use axum::routing::post;
use serde::Serialize;
use serde_json::Value;

use super::{id_key, Column, Extra, Filter, FilterChoices, Resource, Show, ID_COLUMN, NAME_COLUMN};
use crate::auth::{Administer, Manage};
use crate::store::browse::{BrowseTable, Search};
use crate::store::resources::doors::{Controller, ControllerInput, Door, DoorInput};
use crate::store::resources::Id;
use crate::store::{Store, StoreError};
use crate::ui::forms::{Field, Refusal, Submitted, Widget};
use crate::ui::page::{local_time, see_other, PageContext, PageError};
use crate::ui::session::PageAuthorized;
use crate::AppState;

const DOOR_KINDS: &[(&str, &str)] = &[("door", "door.door"), ("flapper_gate", "door.flapper_gate")];

/// Doors and gates.
#[derive(Debug)]
pub struct Doors;

const READERS: [&str; 2] = ["entry_reader", "exit_reader"];

fn door_fields() -> Vec<Field> {
    vec![
        Field::required("name", "field.name", Widget::Text(200)),
        Field::required("kind", "field.door_kind", Widget::Choice(DOOR_KINDS)),
        Field::optional(
            "outside_zone_id",
            "field.outside_zone",
            Widget::Ref("zones"),
        )
        .hint("hint.outside_zone"),
        Field::required("inside_zone_id", "field.inside_zone", Widget::Ref("zones"))
            .hint("hint.inside_zone"),
        Field::optional(
            "controller_id",
            "field.controller",
            Widget::Ref("controllers"),
        ),
        Field::optional("entry_reader.present", "field.entry_reader", Widget::Check),
        Field::optional(
            "entry_reader.biometric",
            "field.entry_biometric",
            Widget::Number(1, 4_294_967_295),
        )
        .hint("hint.biometric"),
        Field::optional("exit_reader.present", "field.exit_reader", Widget::Check),
        Field::optional(
            "exit_reader.biometric",
            "field.exit_biometric",
            Widget::Number(1, 4_294_967_295),
        ),
        Field::optional("fire_egress", "field.fire_egress", Widget::Check).hint("hint.fire_egress"),
    ]
}

impl Resource for Doors {
    const SLUG: &'static str = "doors";
    const KIND: &'static str = "door";
    type Writer = Manage;
    type Item = Door;

    fn table() -> BrowseTable {
        BrowseTable {
            table: "doors",
            key: "id",
            sortable: &["id", "name", "kind", "inside_zone_id", "controller_id"],
            filterable: &["kind", "inside_zone_id", "controller_id"],
            searchable: &[Search::Contains("name")],
        }
    }

    fn columns() -> &'static [Column] {
        &[
            ID_COLUMN,
            NAME_COLUMN,
            Column {
                key: "kind",
                label: "field.door_kind",
                sort: Some("kind"),
                show: Show::Choice(DOOR_KINDS),
            },
            Column {
                key: "outside_zone_id",
                label: "field.outside_zone",
                sort: None,
                show: Show::Ref("zones"),
            },
            Column {
                key: "inside_zone_id",
                label: "field.inside_zone",
                sort: Some("inside_zone_id"),
                show: Show::Ref("zones"),
            },
            Column {
                key: "controller_id",
                label: "field.controller",
                sort: Some("controller_id"),
                show: Show::Ref("controllers"),
            },
            Column {
                key: "fire_egress",
                label: "field.fire_egress",
                sort: None,
                show: Show::Flag,
            },
        ]
    }

    fn filters() -> &'static [Filter] {
        &[
            Filter {
                column: "kind",
                label: "field.door_kind",
                choices: FilterChoices::Fixed(DOOR_KINDS),
            },
            Filter {
                column: "inside_zone_id",
                label: "field.inside_zone",
                choices: FilterChoices::Table("zones"),
            },
            Filter {
                column: "controller_id",
                label: "field.controller",
                choices: FilterChoices::Table("controllers"),
            },
        ]
    }

    fn fields(_editing: bool) -> Vec<Field> {
        door_fields()
    }

    fn key(item: &Door) -> String {
        item.id.to_string()
    }

    fn title(item: &Door) -> String {
        item.name.clone()
    }

    fn to_form(item: &Door) -> Value {
        let mut v = serde_json::to_value(item).unwrap_or_default();
        if let Some(map) = v.as_object_mut() {
            for side in READERS {
                if let Some(reader) = map.get_mut(side).and_then(Value::as_object_mut) {
                    reader.insert("present".into(), Value::Bool(true));
                }
            }
        }
        v
    }

    fn blank(_: &Submitted) -> Value {
        serde_json::json!({"kind": "door", "entry_reader": {"present": true}})
    }

    /// A reader is there or not; its biometric module is asked only with it.
    fn shape(object: &mut Value) {
        let Some(map) = object.as_object_mut() else {
            return;
        };
        for side in READERS {
            let reader = map.get(side);
            let present = reader
                .and_then(|r| r.get("present"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let biometric = reader
                .and_then(|r| r.get("biometric"))
                .cloned()
                .unwrap_or(Value::Null);
            let reader = if present {
                serde_json::json!({ "biometric": biometric })
            } else {
                Value::Null
            };
            map.insert(side.to_string(), reader);
        }
    }

    id_store_calls!(Door, DoorInput, door, create_door, update_door, delete_door);
}

/// A controller as its pages show it.
#[derive(Debug, Clone, Serialize)]
pub struct ControllerView {
    #[serde(flatten)]
    controller: Controller,
    /// Since when it has been offline (its alarm), if it is.
    offline_since: Option<i64>,
    /// Its secret, only right after it was registered.
    #[serde(skip)]
    secret: Option<String>,
}

/// Controllers.
#[derive(Debug)]
pub struct Controllers;

impl Resource for Controllers {
    const SLUG: &'static str = "controllers";
    const KIND: &'static str = "controller";
    type Writer = Administer;
    type Item = ControllerView;

    fn table() -> BrowseTable {
        BrowseTable {
            table: "controllers",
            key: "id",
            sortable: &["id", "name", "site_id", "last_seen_at", "policy_version"],
            filterable: &["site_id", "disabled"],
            searchable: &[Search::Contains("name")],
        }
    }

    fn columns() -> &'static [Column] {
        &[
            ID_COLUMN,
            NAME_COLUMN,
            Column {
                key: "site_id",
                label: "field.site",
                sort: Some("site_id"),
                show: Show::Ref("sites"),
            },
            Column {
                key: "last_seen_at",
                label: "field.last_seen",
                sort: Some("last_seen_at"),
                show: Show::When,
            },
            Column {
                key: "offline_since",
                label: "field.offline_since",
                sort: None,
                show: Show::When,
            },
            Column {
                key: "policy_version",
                label: "field.policy_version",
                sort: Some("policy_version"),
                show: Show::Text,
            },
            Column {
                key: "disabled",
                label: "field.disabled",
                sort: None,
                show: Show::Flag,
            },
        ]
    }

    fn filters() -> &'static [Filter] {
        &[Filter {
            column: "site_id",
            label: "field.site",
            choices: FilterChoices::Table("sites"),
        }]
    }

    fn fields(_editing: bool) -> Vec<Field> {
        vec![
            Field::required("site_id", "field.site", Widget::Ref("sites")),
            Field::required("name", "field.name", Widget::Text(200)),
        ]
    }

    fn key(item: &ControllerView) -> String {
        item.controller.id.to_string()
    }

    fn title(item: &ControllerView) -> String {
        item.controller.name.clone()
    }

    fn deletable() -> bool {
        false
    }

    fn editable() -> bool {
        false
    }

    async fn get(store: &Store, key: &str) -> Result<ControllerView, StoreError> {
        let id = id_key(key)?;
        let controller = store.controller(id).await?;
        let offline_since = store.offline_since(id).await?;
        Ok(ControllerView {
            controller,
            offline_since,
            secret: None,
        })
    }

    async fn create(
        store: &Store,
        actor: &str,
        form: &Submitted,
        tz: &str,
    ) -> Result<ControllerView, Refusal> {
        let fields = Self::fields(false);
        let input: ControllerInput = crate::ui::forms::parse(form, &fields, tz)?;
        let credentials = store
            .add_controller(actor, input.site_id.get(), input.name.as_str())
            .await
            .map_err(|e| super::refused(e, &fields))?;
        let id = Id::new(i64::from(credentials.controller))
            .ok_or_else(|| Refusal::general("error.internal", ""))?;
        let controller = store
            .controller(id)
            .await
            .map_err(|e| super::refused(e, &fields))?;
        Ok(ControllerView {
            controller,
            offline_since: None,
            secret: Some(credentials.secret),
        })
    }

    async fn update(
        _: &Store,
        _: &str,
        _: &str,
        _: &Submitted,
        _: &str,
    ) -> Result<ControllerView, Refusal> {
        Err(Refusal::general("form.not_editable", ""))
    }

    async fn delete(_: &Store, _: &str, _: &str) -> Result<(), StoreError> {
        Err(StoreError::Conflict(
            "controllers are removed with the command line".into(),
        ))
    }

    fn created(state: &AppState, item: &ControllerView, ctx: &PageContext) -> Option<Extra> {
        let secret = item.secret.clone()?;
        let c = &item.controller;
        let controller = tobira_firmware::ControllerId(u32::try_from(c.id.get()).unwrap_or(0));
        Some(
            SecretPage {
                ctx: ctx.clone(),
                id: c.id.to_string(),
                name: c.name.clone(),
                authorization: tobira_protocol::controller_authorization(controller, &secret),
                secret,
                public_key: state.signer.public_key().to_hex(),
            }
            .render()
            .map_err(|e| PageError::internal(ctx.lang, e)),
        )
    }

    async fn extra(_state: &AppState, item: &ControllerView, ctx: &PageContext) -> Extra {
        let tz = &ctx.time_zone;
        let c = &item.controller;
        let now = crate::store::now_ms();
        ControllerHealth {
            ctx: ctx.clone(),
            id: c.id.to_string(),
            last_seen: c
                .last_seen_at
                .map(|m| local_time(m.get(), tz))
                .unwrap_or_default(),
            cache_age_min: c
                .last_seen_at
                .map(|m| ((now - m.get()) / 60_000).to_string())
                .unwrap_or_default(),
            offline_since: item
                .offline_since
                .map(|m| local_time(m, tz))
                .unwrap_or_default(),
            policy_version: c.policy_version,
            disabled: c.disabled,
            may_admin: ctx.is_admin,
        }
        .render()
        .map_err(|e| PageError::internal(ctx.lang, e))
    }

    fn extra_posts() -> Vec<(String, axum::routing::MethodRouter<AppState>)> {
        vec![("/controllers/{key}/disabled".into(), post(set_disabled))]
    }
}

#[derive(Template)]
#[template(path = "resources/controller_secret.html")]
struct SecretPage {
    ctx: PageContext,
    id: String,
    name: String,
    secret: String,
    authorization: String,
    public_key: String,
}

#[derive(Template)]
#[template(path = "resources/controller_health.html")]
struct ControllerHealth {
    ctx: PageContext,
    id: String,
    last_seen: String,
    cache_age_min: String,
    offline_since: String,
    policy_version: i64,
    disabled: bool,
    may_admin: bool,
}

/// `POST /controllers/{key}/disabled`: `disabled=on` disables, otherwise enables.
async fn set_disabled(
    State(state): State<AppState>,
    page: PageAuthorized<Administer>,
    Path(key): Path<String>,
    raw: RawForm,
) -> Result<Response, PageError> {
    let form = Submitted::new(serde_urlencoded::from_bytes(&raw.0).unwrap_or_default());
    let id = id_key(&key).map_err(|_| PageError::NotFound(page.lang))?;
    match state
        .store
        .set_controller_disabled(&page.principal.actor, id, form.one("disabled") == "on")
        .await
    {
        Ok(_) => Ok(see_other(&format!("/controllers/{key}?saved=1"))),
        Err(StoreError::NotFound(_)) => Err(PageError::NotFound(page.lang)),
        Err(e) => Err(PageError::internal(page.lang, e)),
    }
}
