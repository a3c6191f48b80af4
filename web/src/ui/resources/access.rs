//! Who may go where: groups and their members, grants (a group to zones on
//! a schedule) and room bookings.

use askama::Template;
use axum::extract::{Path, RawForm, State};
use axum::response::Response;
use axum::routing::post;

use super::{id_key, Column, Extra, Filter, FilterChoices, Resource, Show, ID_COLUMN, NAME_COLUMN};
use crate::auth::Manage;
use crate::store::browse::{BrowseTable, Search};
use crate::store::resources::access::{
    Booking, BookingInput, Grant, GrantInput, Group, GroupInput,
};
use crate::store::{Store, StoreError};
use crate::ui::forms::{Field, Refusal, Submitted, Widget};
use crate::ui::page::{see_other, PageContext, PageError};
use crate::ui::session::PageAuthorized;
use crate::AppState;

/// Groups.
#[derive(Debug)]
pub struct Groups;

impl Resource for Groups {
    const SLUG: &'static str = "groups";
    const KIND: &'static str = "group";
    type Writer = Manage;
    type Item = Group;

    fn table() -> BrowseTable {
        BrowseTable {
            table: "access_groups",
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
        vec![Field::required("name", "field.name", Widget::Text(200))]
    }

    fn key(item: &Group) -> String {
        item.id.to_string()
    }

    fn title(item: &Group) -> String {
        item.name.clone()
    }

    id_store_calls!(
        Group,
        GroupInput,
        group,
        create_group,
        update_group,
        delete_group
    );

    async fn extra(state: &AppState, item: &Group, ctx: &PageContext) -> Extra {
        let members = state
            .store
            .list_members(item.id, Some(500), None)
            .await
            .map_err(|e| PageError::internal(ctx.lang, e))?;
        MembersSection {
            ctx: ctx.clone(),
            group: item.id.to_string(),
            members: members
                .items
                .into_iter()
                .map(|p| (p.id.to_string(), p.name))
                .collect(),
            more: members.next.is_some(),
        }
        .render()
        .map_err(|e| PageError::internal(ctx.lang, e))
    }

    fn extra_posts() -> Vec<(String, axum::routing::MethodRouter<AppState>)> {
        vec![
            ("/groups/{key}/members".into(), post(add_member)),
            ("/groups/{key}/members/remove".into(), post(remove_member)),
        ]
    }
}

#[derive(Template)]
#[template(path = "resources/members.html")]
struct MembersSection {
    ctx: PageContext,
    group: String,
    members: Vec<(String, String)>,
    more: bool,
}

fn member_form(
    raw: &RawForm,
    key: &str,
    lang: crate::ui::i18n::Lang,
) -> Result<(crate::store::resources::Id, crate::store::resources::Id), PageError> {
    let form = Submitted::new(serde_urlencoded::from_bytes(&raw.0).unwrap_or_default());
    let group = id_key(key).map_err(|_| PageError::NotFound(lang))?;
    let person = id_key(form.one("person_id")).map_err(|_| PageError::BadRequest(lang))?;
    Ok((group, person))
}

fn after_member(
    key: &str,
    lang: crate::ui::i18n::Lang,
    result: Result<(), StoreError>,
) -> Result<Response, PageError> {
    match result {
        Ok(()) => Ok(see_other(&format!("/groups/{key}?saved=1"))),
        Err(StoreError::NotFound(_) | StoreError::MissingReference(_)) => {
            Err(PageError::NotFound(lang))
        }
        Err(StoreError::Invalid(_) | StoreError::Conflict(_)) => Err(PageError::BadRequest(lang)),
        Err(e) => Err(PageError::internal(lang, e)),
    }
}

/// `POST /groups/{key}/members`: adds the person `person_id`.
async fn add_member(
    State(state): State<AppState>,
    page: PageAuthorized<Manage>,
    Path(key): Path<String>,
    raw: RawForm,
) -> Result<Response, PageError> {
    let (group, person) = member_form(&raw, &key, page.lang)?;
    let result = state
        .store
        .add_member(&page.principal.actor, group, person)
        .await
        .map(drop);
    after_member(&key, page.lang, result)
}

/// `POST /groups/{key}/members/remove`: removes the person `person_id`.
async fn remove_member(
    State(state): State<AppState>,
    page: PageAuthorized<Manage>,
    Path(key): Path<String>,
    raw: RawForm,
) -> Result<Response, PageError> {
    let (group, person) = member_form(&raw, &key, page.lang)?;
    let result = state
        .store
        .remove_member(&page.principal.actor, group, person)
        .await;
    after_member(&key, page.lang, result)
}

/// Grants.
#[derive(Debug)]
pub struct Grants;

impl Resource for Grants {
    const SLUG: &'static str = "grants";
    const KIND: &'static str = "";
    type Writer = Manage;
    type Item = Grant;

    fn table() -> BrowseTable {
        BrowseTable {
            table: "grants",
            key: "id",
            sortable: &["id", "group_id", "valid_until"],
            filterable: &["group_id", "schedule_id"],
            searchable: &[],
        }
    }

    fn columns() -> &'static [Column] {
        &[
            ID_COLUMN,
            Column {
                key: "group_id",
                label: "field.group",
                sort: Some("group_id"),
                show: Show::Ref("access_groups"),
            },
            Column {
                key: "zones",
                label: "field.zones",
                sort: None,
                show: Show::Refs("zones"),
            },
            Column {
                key: "schedule_id",
                label: "field.schedule",
                sort: None,
                show: Show::Ref("schedules"),
            },
            Column {
                key: "valid_from",
                label: "field.valid_from",
                sort: None,
                show: Show::When,
            },
            Column {
                key: "valid_until",
                label: "field.valid_until",
                sort: Some("valid_until"),
                show: Show::When,
            },
        ]
    }

    fn filters() -> &'static [Filter] {
        &[
            Filter {
                column: "group_id",
                label: "field.group",
                choices: FilterChoices::Table("access_groups"),
            },
            Filter {
                column: "schedule_id",
                label: "field.schedule",
                choices: FilterChoices::Table("schedules"),
            },
        ]
    }

    fn fields(_editing: bool) -> Vec<Field> {
        vec![
            Field::required("group_id", "field.group", Widget::Ref("access_groups")),
            Field::required("zones", "field.zones", Widget::Refs("zones")).hint("hint.zones"),
            Field::optional("schedule_id", "field.schedule", Widget::Ref("schedules"))
                .hint("hint.schedule"),
            Field::optional("valid_from", "field.valid_from", Widget::When),
            Field::optional("valid_until", "field.valid_until", Widget::When),
        ]
    }

    fn key(item: &Grant) -> String {
        item.id.to_string()
    }

    fn title(item: &Grant) -> String {
        format!("#{}", item.id)
    }

    id_store_calls!(
        Grant,
        GrantInput,
        grant,
        create_grant,
        update_grant,
        delete_grant
    );
}

/// Room bookings.
#[derive(Debug)]
pub struct Bookings;

impl Resource for Bookings {
    const SLUG: &'static str = "bookings";
    const KIND: &'static str = "";
    type Writer = Manage;
    type Item = Booking;

    fn table() -> BrowseTable {
        BrowseTable {
            table: "bookings",
            key: "id",
            sortable: &["id", "start_at", "end_at", "person_id", "room_zone_id"],
            filterable: &["room_zone_id"],
            searchable: &[],
        }
    }

    fn columns() -> &'static [Column] {
        &[
            ID_COLUMN,
            Column {
                key: "person_id",
                label: "field.person",
                sort: Some("person_id"),
                show: Show::Person,
            },
            Column {
                key: "room_zone_id",
                label: "field.room",
                sort: Some("room_zone_id"),
                show: Show::Ref("zones"),
            },
            Column {
                key: "start_at",
                label: "field.start_at",
                sort: Some("start_at"),
                show: Show::When,
            },
            Column {
                key: "end_at",
                label: "field.end_at",
                sort: Some("end_at"),
                show: Show::When,
            },
            Column {
                key: "path",
                label: "field.path",
                sort: None,
                show: Show::Refs("doors"),
            },
        ]
    }

    fn filters() -> &'static [Filter] {
        &[Filter {
            column: "room_zone_id",
            label: "field.room",
            choices: FilterChoices::Table("zones"),
        }]
    }

    fn fields(_editing: bool) -> Vec<Field> {
        vec![
            Field::required("person_id", "field.person_id", Widget::Person).hint("hint.person_id"),
            Field::required("room_zone_id", "field.room", Widget::Ref("zones")),
            Field::optional("path", "field.path", Widget::Refs("doors")).hint("hint.path"),
            Field::required("start_at", "field.start_at", Widget::When),
            Field::required("end_at", "field.end_at", Widget::When),
        ]
    }

    fn key(item: &Booking) -> String {
        item.id.to_string()
    }

    fn title(item: &Booking) -> String {
        format!("#{}", item.id)
    }

    id_store_calls!(
        Booking,
        BookingInput,
        booking,
        create_booking,
        update_booking,
        delete_booking
    );
}
