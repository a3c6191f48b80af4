//! People (kind, organisation; their cards beside them) and their
//! fingerprint enrollments.

use askama::Template;
use serde::Serialize;
use serde_json::Value;

use super::{
    id_key, submit, Column, Extra, Filter, FilterChoices, Resource, Show, ID_COLUMN, NAME_COLUMN,
};
use crate::auth::Manage;
use crate::store::browse::{BrowseTable, Search};
use crate::store::resources::people::{Enrollment, EnrollmentInput, Person, PersonInput};
use crate::store::resources::{CardState, Id};
use crate::store::{Store, StoreError};
use crate::ui::forms::{Field, Refusal, Submitted, Widget};
use crate::ui::page::{local_time, PageContext, PageError};
use crate::AppState;

/// Person kinds and their labels.
pub const KINDS: &[(&str, &str)] = &[
    ("staff", "kind.staff"),
    ("contractor", "kind.contractor"),
    ("visitor", "kind.visitor"),
    ("citizen", "kind.citizen"),
];

/// People.
#[derive(Debug)]
pub struct People;

impl Resource for People {
    const SLUG: &'static str = "people";
    const KIND: &'static str = "person";
    type Writer = Manage;
    type Item = Person;

    fn table() -> BrowseTable {
        BrowseTable {
            table: "people",
            key: "id",
            sortable: &["id", "name", "kind", "organisation", "created_at"],
            filterable: &["kind"],
            searchable: &[
                Search::Contains("name"),
                Search::Contains("organisation"),
                Search::Contains("external_id"),
            ],
        }
    }

    fn columns() -> &'static [Column] {
        &[
            ID_COLUMN,
            NAME_COLUMN,
            Column {
                key: "kind",
                label: "field.person_kind",
                sort: Some("kind"),
                show: Show::Choice(KINDS),
            },
            Column {
                key: "organisation",
                label: "field.organisation",
                sort: Some("organisation"),
                show: Show::Text,
            },
            Column {
                key: "external_id",
                label: "field.external_id",
                sort: None,
                show: Show::Text,
            },
            Column {
                key: "created_at",
                label: "field.created_at",
                sort: Some("created_at"),
                show: Show::When,
            },
        ]
    }

    fn filters() -> &'static [Filter] {
        &[Filter {
            column: "kind",
            label: "field.person_kind",
            choices: FilterChoices::Fixed(KINDS),
        }]
    }

    fn fields(_editing: bool) -> Vec<Field> {
        vec![
            Field::required("name", "field.name", Widget::Text(200)),
            Field::required("kind", "field.person_kind", Widget::Choice(KINDS))
                .hint("hint.person_kind"),
            Field::optional("organisation", "field.organisation", Widget::Text(200)),
        ]
    }

    fn key(item: &Person) -> String {
        item.id.to_string()
    }

    fn title(item: &Person) -> String {
        item.name.clone()
    }

    fn blank(_: &Submitted) -> Value {
        serde_json::json!({"kind": "staff"})
    }

    id_store_calls!(
        Person,
        PersonInput,
        person,
        create_person,
        update_person,
        delete_person
    );

    async fn extra(state: &AppState, item: &Person, ctx: &PageContext) -> Extra {
        let fail = |e: StoreError| PageError::internal(ctx.lang, e);
        let tz = &ctx.time_zone;
        let cards = state
            .store
            .list_cards(Some(item.id), None, Some(500), None)
            .await
            .map_err(fail)?
            .items;
        let enrollments = state
            .store
            .list_enrollments(Some(item.id), None, Some(500), None)
            .await
            .map_err(fail)?;
        PersonSection {
            ctx: ctx.clone(),
            person: item.id.to_string(),
            cards: cards
                .into_iter()
                .map(|c| {
                    (
                        c.uid.text(),
                        ctx.lang.t(super::cards::state_key(c.state)).to_string(),
                        c.state == CardState::Active,
                    )
                })
                .collect(),
            enrollments: enrollments
                .items
                .into_iter()
                .map(|e| {
                    (
                        e.module_id.to_string(),
                        e.slot.to_string(),
                        local_time(e.enrolled_at.get(), tz),
                    )
                })
                .collect(),
        }
        .render()
        .map_err(|e| PageError::internal(ctx.lang, e))
    }
}

#[derive(Template)]
#[template(path = "resources/person_cards.html")]
struct PersonSection {
    ctx: PageContext,
    person: String,
    /// uid, state text, active.
    cards: Vec<(String, String, bool)>,
    /// module, slot, enrolled at.
    enrollments: Vec<(String, String, String)>,
}

/// An enrollment with a key for its page.
#[derive(Debug, Clone, Serialize)]
pub struct EnrollmentView {
    #[serde(flatten)]
    enrollment: Enrollment,
}

/// Fingerprint enrollments (a template in a module's slot).
#[derive(Debug)]
pub struct Enrollments;

/// `MODULE-SLOT` as the two numbers.
fn enrollment_key(key: &str) -> Result<(Id, u16), StoreError> {
    let missing = || StoreError::NotFound(format!("no enrollment {key:?}"));
    let (module, slot) = key.split_once('-').ok_or_else(missing)?;
    Ok((id_key(module)?, slot.parse().map_err(|_| missing())?))
}

impl Resource for Enrollments {
    const SLUG: &'static str = "enrollments";
    const KIND: &'static str = "";
    type Writer = Manage;
    type Item = EnrollmentView;

    fn table() -> BrowseTable {
        BrowseTable {
            table: "enrollments",
            key: "(CAST(module_id AS TEXT) || '-' || CAST(slot AS TEXT))",
            sortable: &["person_id", "module_id", "enrolled_at"],
            filterable: &["module_id"],
            searchable: &[],
        }
    }

    fn columns() -> &'static [Column] {
        &[
            Column {
                key: "person_id",
                label: "field.person",
                sort: Some("person_id"),
                show: Show::Person,
            },
            Column {
                key: "module_id",
                label: "field.module",
                sort: Some("module_id"),
                show: Show::Link,
            },
            Column {
                key: "slot",
                label: "field.slot",
                sort: None,
                show: Show::Link,
            },
            Column {
                key: "enrolled_at",
                label: "field.enrolled_at",
                sort: Some("enrolled_at"),
                show: Show::When,
            },
        ]
    }

    fn fields(_editing: bool) -> Vec<Field> {
        vec![
            Field::required("person_id", "field.person_id", Widget::Person).hint("hint.person_id"),
            Field::required(
                "module_id",
                "field.module",
                Widget::Number(1, 4_294_967_295),
            )
            .hint("hint.module"),
            Field::required("slot", "field.slot", Widget::Number(0, 65_535)),
        ]
    }

    fn key(item: &EnrollmentView) -> String {
        format!("{}-{}", item.enrollment.module_id, item.enrollment.slot)
    }

    fn title(item: &EnrollmentView) -> String {
        format!("#{} / {}", item.enrollment.module_id, item.enrollment.slot)
    }

    fn editable() -> bool {
        false
    }

    async fn get(store: &Store, key: &str) -> Result<EnrollmentView, StoreError> {
        let (module, slot) = enrollment_key(key)?;
        store
            .enrollment(module, slot)
            .await
            .map(|enrollment| EnrollmentView { enrollment })
    }

    async fn create(
        store: &Store,
        actor: &str,
        form: &Submitted,
        tz: &str,
    ) -> Result<EnrollmentView, Refusal> {
        submit(
            form,
            &Self::fields(false),
            tz,
            Self::shape,
            |i: EnrollmentInput| async move { store.create_enrollment(actor, &i).await },
        )
        .await
        .map(|enrollment| EnrollmentView { enrollment })
    }

    async fn update(
        _: &Store,
        _: &str,
        _: &str,
        _: &Submitted,
        _: &str,
    ) -> Result<EnrollmentView, Refusal> {
        Err(Refusal::general("form.not_editable", ""))
    }

    async fn delete(store: &Store, actor: &str, key: &str) -> Result<(), StoreError> {
        let (module, slot) = enrollment_key(key)?;
        store.delete_enrollment(actor, module, slot).await
    }
}
