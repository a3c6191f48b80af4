//! Cards: issue one to a person, change its validity, and the lifecycle
//! buttons (lost, suspend, revoke, return, reactivate) with a reason and a
//! confirmation; the card's history beside them.

use askama::Template;
use axum::extract::{Path, RawForm, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use serde_json::Value;

use super::{submit, Column, Extra, Filter, FilterChoices, Resource, Show};
use crate::auth::{Manage, Operate};
use crate::store::browse::{BrowseTable, Search};
use crate::store::resources::cards::{Card, CardAction, CardInput, CardValidity};
use crate::store::resources::{CardState, Uid};
use crate::store::{Store, StoreError};
use crate::ui::forms::{Field, Refusal, Submitted, Widget};
use crate::ui::page::{local_time, query_value, render, see_other, PageContext, PageError};
use crate::ui::session::PageAuthorized;
use crate::AppState;

/// Card states and their labels.
pub const STATES: &[(&str, &str)] = &[
    ("active", "state.active"),
    ("suspended", "state.suspended"),
    ("lost", "state.lost"),
    ("revoked", "state.revoked"),
    ("expired", "state.expired"),
    ("returned", "state.returned"),
];

/// The catalog key of a card state.
pub fn state_key(state: CardState) -> &'static str {
    STATES
        .iter()
        .find(|(v, _)| *v == state.as_str())
        .map_or("state.active", |(_, k)| k)
}

/// The lifecycle actions: form value, the store's action, catalog key.
const ACTIONS: &[(&str, CardAction, &str)] = &[
    ("report_lost", CardAction::ReportLost, "card.report_lost"),
    ("suspend", CardAction::Suspend, "card.suspend"),
    ("revoke", CardAction::Revoke, "card.revoke"),
    ("return", CardAction::Return, "card.return"),
    ("reactivate", CardAction::Reactivate, "card.reactivate"),
];

/// Cards.
#[derive(Debug)]
pub struct Cards;

fn uid_key(key: &str) -> Result<Uid, StoreError> {
    Uid::parse(key).ok_or_else(|| StoreError::NotFound(format!("no card {key:?}")))
}

impl Resource for Cards {
    const SLUG: &'static str = "cards";
    const KIND: &'static str = "";
    type Writer = Manage;
    type Item = Card;

    fn table() -> BrowseTable {
        BrowseTable {
            table: "cards",
            key: "uid",
            sortable: &["uid", "person_id", "state", "issued_at"],
            filterable: &["state", "person_id"],
            searchable: &[Search::HexPrefix("uid")],
        }
    }

    fn columns() -> &'static [Column] {
        &[
            Column {
                key: "uid",
                label: "field.uid",
                sort: Some("uid"),
                show: Show::Link,
            },
            Column {
                key: "person_id",
                label: "field.person",
                sort: Some("person_id"),
                show: Show::Person,
            },
            Column {
                key: "state",
                label: "field.state",
                sort: Some("state"),
                show: Show::Choice(STATES),
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
                sort: None,
                show: Show::When,
            },
            Column {
                key: "issued_at",
                label: "field.issued_at",
                sort: Some("issued_at"),
                show: Show::When,
            },
        ]
    }

    fn filters() -> &'static [Filter] {
        &[Filter {
            column: "state",
            label: "field.state",
            choices: FilterChoices::Fixed(STATES),
        }]
    }

    fn fields(editing: bool) -> Vec<Field> {
        let validity = [
            Field::optional("valid_from", "field.valid_from", Widget::When),
            Field::optional("valid_until", "field.valid_until", Widget::When)
                .hint("hint.valid_until"),
        ];
        if editing {
            return validity.to_vec();
        }
        let mut fields = vec![
            Field::required("uid", "field.uid", Widget::Text(20)).hint("hint.uid"),
            Field::required("person_id", "field.person_id", Widget::Person).hint("hint.person_id"),
        ];
        fields.extend(validity);
        fields
    }

    fn key(item: &Card) -> String {
        item.uid.text()
    }

    fn title(item: &Card) -> String {
        item.uid.text()
    }

    fn deletable() -> bool {
        false
    }

    /// A UID typed as a reader shows it (`04 a1:b2 c3`) is read as the hex the
    /// store takes; anything else is left for the store to refuse by name.
    fn shape(object: &mut Value) {
        if let Some(uid) = object.get_mut("uid") {
            if let Some(digits) = uid.as_str().and_then(Uid::digits_as_typed) {
                *uid = Value::String(digits);
            }
        }
    }

    async fn get(store: &Store, key: &str) -> Result<Card, StoreError> {
        store.card(&uid_key(key)?).await
    }

    async fn create(
        store: &Store,
        actor: &str,
        form: &Submitted,
        tz: &str,
    ) -> Result<Card, Refusal> {
        submit(
            form,
            &Self::fields(false),
            tz,
            Self::shape,
            |i: CardInput| async move { store.create_card(actor, &i).await },
        )
        .await
    }

    async fn update(
        store: &Store,
        actor: &str,
        key: &str,
        form: &Submitted,
        tz: &str,
    ) -> Result<Card, Refusal> {
        let uid = uid_key(key).map_err(|e| super::refused(e, &[]))?;
        submit(
            form,
            &Self::fields(true),
            tz,
            Self::shape,
            |i: CardValidity| async move { store.update_card(actor, &uid, &i).await },
        )
        .await
    }

    async fn delete(_: &Store, _: &str, _: &str) -> Result<(), StoreError> {
        Err(StoreError::Conflict(
            "cards are kept for the record; revoke or return them".into(),
        ))
    }

    async fn extra(state: &AppState, item: &Card, ctx: &PageContext) -> Extra {
        life(state, item, ctx, "").await
    }

    fn extra_posts() -> Vec<(String, axum::routing::MethodRouter<AppState>)> {
        vec![("/cards/{key}/action".into(), post(act))]
    }
}

#[derive(Template)]
#[template(path = "resources/card_life.html")]
struct CardLife {
    ctx: PageContext,
    uid: String,
    person: String,
    person_name: String,
    state: &'static str,
    may_operate: bool,
    /// value, label.
    actions: Vec<(&'static str, &'static str)>,
    /// state, at, who, note.
    history: Vec<(&'static str, String, String, String)>,
    problem: String,
}

async fn life(state: &AppState, item: &Card, ctx: &PageContext, problem: &str) -> Extra {
    let fail = |e: StoreError| PageError::internal(ctx.lang, e);
    let tz = &ctx.time_zone;
    let detail = state.store.card_detail(&item.uid).await.map_err(fail)?;
    let person = state.store.person(item.person_id).await.map_err(fail)?;
    CardLife {
        uid: item.uid.text(),
        person: item.person_id.to_string(),
        person_name: person.name,
        state: ctx.lang.t(state_key(item.state)),
        may_operate: ctx.may_operate,
        actions: ACTIONS
            .iter()
            .filter(|(_, a, _)| a.allowed_from().contains(&item.state))
            .map(|(v, _, k)| (*v, ctx.lang.t(k)))
            .collect(),
        history: detail
            .history
            .into_iter()
            .rev()
            .map(|h| {
                (
                    ctx.lang.t(state_key(h.state)),
                    local_time(h.at.get(), tz),
                    h.actor,
                    h.note.unwrap_or_default(),
                )
            })
            .collect(),
        problem: problem.to_string(),
        ctx: ctx.clone(),
    }
    .render()
    .map_err(|e| PageError::internal(ctx.lang, e))
}

#[derive(Template)]
#[template(path = "resources/card_action.html")]
struct ActionPage {
    ctx: PageContext,
    uid: String,
    life: String,
}

/// `POST /cards/{uid}/action`: `action`, `note` (the reason) and `confirm`.
async fn act(
    State(state): State<AppState>,
    page: PageAuthorized<Operate>,
    Path(key): Path<String>,
    raw: RawForm,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let form = Submitted::new(serde_urlencoded::from_bytes(&raw.0).unwrap_or_default());
    let uid = uid_key(&key).map_err(|_| PageError::NotFound(lang))?;
    let card = match state.store.card(&uid).await {
        Ok(c) => c,
        Err(StoreError::NotFound(_)) => return Err(PageError::NotFound(lang)),
        Err(e) => return Err(PageError::internal(lang, e)),
    };
    let path = format!("/cards/{}", query_value(&key));
    let ctx = PageContext::signed_in(lang, &path, &page.principal, &page.csrf_token)
        .in_time_zone(&super::time_zone(&state.store, lang).await?);
    let again = |problem: &'static str| {
        let (state, card, ctx) = (&state, &card, &ctx);
        async move {
            let life = life(state, card, ctx, lang.t(problem)).await?;
            Ok(render(
                StatusCode::BAD_REQUEST,
                &ActionPage {
                    ctx: ctx.clone(),
                    uid: card.uid.text(),
                    life,
                },
            ))
        }
    };
    let Some((_, action, _)) = ACTIONS.iter().find(|(v, _, _)| *v == form.one("action")) else {
        return again("card.pick_action").await;
    };
    let note = form.one("note");
    if note.is_empty() {
        return again("card.reason_needed").await;
    }
    if !form.has("confirm") {
        return again("card.confirm_needed").await;
    }
    match state
        .store
        .card_action(&page.principal.actor, &uid, *action, Some(note))
        .await
    {
        Ok(_) => Ok(see_other(&format!("{path}?saved=1"))),
        Err(StoreError::Conflict(_) | StoreError::Invalid(_)) => again("card.not_now").await,
        Err(StoreError::NotFound(_)) => Err(PageError::NotFound(lang)),
        Err(e) => Err(PageError::internal(lang, e)),
    }
}
