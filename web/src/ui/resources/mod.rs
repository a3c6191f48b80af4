//! The configuration resources as pages: for each, a list that pages, sorts,
//! filters and searches, a form to add and one to edit (errors next to their
//! fields, what was typed kept), and a delete that first shows what still
//! refers to the row. One [`Resource`] description per resource; the store
//! calls, role rules and audit are the JSON API's own.

/// The store calls of a resource keyed by id whose form is its input type
/// as it is: `get`, `create`, `update` and `delete` of [`Resource`].
macro_rules! id_store_calls {
    ($item:ty, $input:ty, $get:ident, $create:ident, $update:ident, $delete:ident) => {
        async fn get(store: &Store, key: &str) -> Result<$item, StoreError> {
            store.$get($crate::ui::resources::id_key(key)?).await
        }

        async fn create(
            store: &Store,
            actor: &str,
            form: &Submitted,
            tz: &str,
        ) -> Result<$item, Refusal> {
            let fields = Self::submitted_fields(form, false);
            $crate::ui::resources::submit(form, &fields, tz, Self::shape, |i: $input| async move {
                store.$create(actor, &i).await
            })
            .await
        }

        async fn update(
            store: &Store,
            actor: &str,
            key: &str,
            form: &Submitted,
            tz: &str,
        ) -> Result<$item, Refusal> {
            let id = $crate::ui::resources::id_key(key)
                .map_err(|e| $crate::ui::resources::refused(e, &[]))?;
            let fields = Self::submitted_fields(form, true);
            $crate::ui::resources::submit(form, &fields, tz, Self::shape, |i: $input| async move {
                store.$update(actor, id, &i).await
            })
            .await
        }

        async fn delete(store: &Store, actor: &str, key: &str) -> Result<(), StoreError> {
            store
                .$delete(actor, $crate::ui::resources::id_key(key)?)
                .await
        }
    };
}

pub mod access;
pub mod cards;
pub mod doors;
pub mod people;
pub mod structure;

use std::future::Future;

use futures_util::{StreamExt, TryStreamExt};

use askama::Template;
use axum::extract::{Path, Query, RawForm, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use serde::Serialize;
use serde_json::Value;

use super::forms::{self, Choosers, Field, FieldView, Refusal, Submitted};
use super::i18n::Lang;
use super::page::{local_time, query_value, render, see_other, PageContext, PageError};
use super::session::{PageAuthorized, Signed};
use crate::auth::Requirement;
use crate::store::browse::{BrowseQuery, BrowseTable, FilterValue, Reference};
use crate::store::{Store, StoreError};
use crate::AppState;

/// Rows on one list page.
pub const PAGE_SIZE: i64 = 50;

/// How a list cell shows its value.
#[derive(Debug, Clone, Copy)]
pub enum Show {
    /// As it is.
    Text,
    /// As it is, linked to the row's page.
    Link,
    /// A fixed value by its catalog label: (value, key).
    Choice(&'static [(&'static str, &'static str)]),
    /// The name of a row of a small table.
    Ref(&'static str),
    /// The names of several rows of a small table.
    Refs(&'static str),
    /// A person's name.
    Person,
    /// A time in the site's zone.
    When,
    /// Yes or no.
    Flag,
}

/// One column of a list.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The item's JSON key.
    pub key: &'static str,
    /// Catalog key of the heading.
    pub label: &'static str,
    /// The database column to sort by, if sortable.
    pub sort: Option<&'static str>,
    /// How the value shows.
    pub show: Show,
}

/// The id column, linked to the row's page.
pub const ID_COLUMN: Column = Column {
    key: "id",
    label: "field.id",
    sort: Some("id"),
    show: Show::Link,
};

/// The name column, linked to the row's page.
pub const NAME_COLUMN: Column = Column {
    key: "name",
    label: "field.name",
    sort: Some("name"),
    show: Show::Link,
};

/// One filter above a list.
#[derive(Debug, Clone, Copy)]
pub struct Filter {
    /// The query parameter and the database column.
    pub column: &'static str,
    /// Catalog key of its label.
    pub label: &'static str,
    /// Fixed values, or a small table's rows.
    pub choices: FilterChoices,
}

/// What a filter offers.
#[derive(Debug, Clone, Copy)]
pub enum FilterChoices {
    /// Fixed text values: (value, catalog key).
    Fixed(&'static [(&'static str, &'static str)]),
    /// Fixed numbers: (value, catalog key).
    Numbers(&'static [(i64, &'static str)]),
    /// Rows of a small table.
    Table(&'static str),
}

/// A page of extra content under a row's form (a card's lifecycle, a
/// group's members): rendered HTML and whether it failed.
pub type Extra = Result<String, PageError>;

/// One configuration resource as pages.
pub trait Resource: Send + Sync + 'static {
    /// Its path (`/zones`) and the catalog prefix of its texts (`res.zones.`).
    const SLUG: &'static str;
    /// Its kind for references and the audit (`zone`); "" when nothing refers to it.
    const KIND: &'static str;
    /// Who may add, change and delete it.
    type Writer: Requirement + Send + Sync + 'static;
    /// The item as the store gives it.
    type Item: Serialize + Send + Sync;

    /// Its table as the list sees it.
    fn table() -> BrowseTable;
    /// The list's columns.
    fn columns() -> &'static [Column];
    /// The list's filters.
    fn filters() -> &'static [Filter] {
        &[]
    }
    /// The form's fields (`editing`: for an existing row).
    fn fields(editing: bool) -> Vec<Field>;
    /// The fields a submitted form is read with (by default the form's own;
    /// a zone reads its settings only when it has its own).
    fn submitted_fields(_form: &Submitted, editing: bool) -> Vec<Field> {
        Self::fields(editing)
    }
    /// Turns the fields' JSON into the input's shape where the two differ.
    fn shape(_object: &mut Value) {}
    /// The row's key in paths.
    fn key(item: &Self::Item) -> String;
    /// What the row is called on its page.
    fn title(item: &Self::Item) -> String;
    /// The row as its form shows it (by default its JSON, as the API shows it).
    fn to_form(item: &Self::Item) -> Value {
        serde_json::to_value(item).unwrap_or_default()
    }
    /// The values a new row's form starts with.
    fn blank(_form: &Submitted) -> Value {
        Value::Object(serde_json::Map::new())
    }
    /// Whether rows can be deleted from the pages.
    fn deletable() -> bool {
        true
    }
    /// Whether rows can be changed after they are added.
    fn editable() -> bool {
        true
    }

    /// One row by key (`NotFound` for a key that is malformed too).
    fn get(store: &Store, key: &str)
        -> impl Future<Output = Result<Self::Item, StoreError>> + Send;
    /// Adds a row from a submitted form.
    fn create(
        store: &Store,
        actor: &str,
        form: &Submitted,
        time_zone: &str,
    ) -> impl Future<Output = Result<Self::Item, Refusal>> + Send;
    /// Changes a row from a submitted form.
    fn update(
        store: &Store,
        actor: &str,
        key: &str,
        form: &Submitted,
        time_zone: &str,
    ) -> impl Future<Output = Result<Self::Item, Refusal>> + Send;
    /// Deletes a row.
    fn delete(
        store: &Store,
        actor: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Extra content under the row's form.
    fn extra(
        _state: &AppState,
        _item: &Self::Item,
        _ctx: &PageContext,
    ) -> impl Future<Output = Extra> + Send {
        async { Ok(String::new()) }
    }
    /// A page to show once after adding, instead of going to the row's page
    /// (a controller's secret, which is never shown again).
    fn created(_state: &AppState, _item: &Self::Item, _ctx: &PageContext) -> Option<Extra> {
        None
    }
    /// Extra routes (actions on a row): (path, route), POSTs go through the CSRF guard.
    fn extra_posts() -> Vec<(String, MethodRouter<AppState>)> {
        Vec::new()
    }
}

/// A store refusal of a form, as field or form errors.
pub fn refused(e: StoreError, fields: &[Field]) -> Refusal {
    match e {
        StoreError::Invalid(m)
        | StoreError::Conflict(m)
        | StoreError::Meaningless(m)
        | StoreError::MissingReference(m)
        | StoreError::NotFound(m) => Refusal::from_store(&m, fields),
        other => {
            tracing::error!(error = %other, "store failure on a page form");
            Refusal::general("error.internal", "")
        }
    }
}

/// Reads a form into the input type `T` and hands it to the store; the
/// refusal of either names the fields at fault.
pub async fn submit<T, I, F, Fut>(
    form: &Submitted,
    fields: &[Field],
    time_zone: &str,
    shape: fn(&mut Value),
    store_call: F,
) -> Result<I, Refusal>
where
    T: serde::de::DeserializeOwned,
    F: FnOnce(T) -> Fut,
    Fut: Future<Output = Result<I, StoreError>>,
{
    let input: T = forms::parse_shaped(form, fields, time_zone, shape)?;
    store_call(input).await.map_err(|e| refused(e, fields))
}

/// An id from a path key; a malformed one is simply not found.
pub fn id_key(key: &str) -> Result<crate::store::resources::Id, StoreError> {
    key.parse::<i64>()
        .ok()
        .and_then(crate::store::resources::Id::new)
        .ok_or_else(|| StoreError::NotFound(format!("no row {key:?}")))
}

/// Page routes: (path, route).
pub type Routes = Vec<(String, MethodRouter<AppState>)>;

/// The GET and POST routes of resource `R`.
pub fn routes<R: Resource>() -> (Routes, Routes) {
    let base = format!("/{}", R::SLUG);
    let gets = vec![
        (base.clone(), get(list::<R>)),
        (format!("{base}/new"), get(new_form::<R>)),
        (format!("{base}/{{key}}"), get(edit_form::<R>)),
    ];
    let mut posts = vec![(format!("{base}/new"), post(create::<R>))];
    if R::editable() {
        posts.push((format!("{base}/{{key}}"), post(update::<R>)));
    }
    if R::deletable() {
        posts.push((format!("{base}/{{key}}/delete"), post(delete::<R>)));
    }
    posts.extend(R::extra_posts());
    (gets, posts)
}

/// A list cell.
#[derive(Debug, Clone)]
pub struct Cell {
    /// Its text.
    pub text: String,
    /// A link, or "".
    pub href: String,
}

/// A list heading.
#[derive(Debug, Clone)]
pub struct Heading {
    /// Its text.
    pub label: &'static str,
    /// The link that sorts by it, or "".
    pub href: String,
    /// `ascending`, `descending` or "" (sorted by it now).
    pub sorted: &'static str,
}

/// A filter as drawn.
#[derive(Debug, Clone)]
pub struct FilterView {
    /// Query parameter.
    pub name: &'static str,
    /// Label.
    pub label: &'static str,
    /// Choices.
    pub options: Vec<forms::OptionView>,
}

#[derive(Template)]
#[template(path = "resources/list.html")]
struct ListPage {
    ctx: PageContext,
    slug: &'static str,
    title: &'static str,
    may_write: bool,
    filters: Vec<FilterView>,
    searchable: bool,
    search: String,
    sort: String,
    dir: String,
    headings: Vec<Heading>,
    rows: Vec<Vec<Cell>>,
    first: i64,
    last: i64,
    total: i64,
    prev: String,
    next: String,
}

/// The list's query string.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ListParams {
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    sort: Option<String>,
    #[serde(default)]
    dir: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(flatten)]
    rest: std::collections::HashMap<String, String>,
}

/// The texts of the row's references (for the delete explanation).
pub fn reference_texts(refs: &[Reference], lang: Lang) -> Vec<Cell> {
    refs.iter()
        .map(|r| {
            let (slug, kind_key) = match r.kind {
                "zone" => ("zones", "res.zones.one"),
                "door" => ("doors", "res.doors.one"),
                "controller" => ("controllers", "res.controllers.one"),
                "booking" => ("bookings", "res.bookings.one"),
                "grant" => ("grants", "res.grants.one"),
                "card" => ("cards", "res.cards.one"),
                "group" => ("groups", "res.groups.one"),
                _ => ("", "res.other"),
            };
            Cell {
                text: format!("{} {} ({})", lang.t(kind_key), r.label, r.key),
                href: if slug.is_empty() {
                    String::new()
                } else {
                    format!("/{slug}/{}", query_value(&r.key))
                },
            }
        })
        .collect()
}

async fn choosers(store: &Store, tables: &[&'static str]) -> Result<Choosers, StoreError> {
    let mut out = Choosers::new();
    for t in tables {
        out.insert(*t, store.names(t).await?);
    }
    Ok(out)
}

/// Whether `R`'s writer allows the page's user.
fn may_write<R: Resource, Q>(page: &PageAuthorized<Q>) -> bool {
    R::Writer::allows(page.principal.role)
}

/// `GET /{slug}`: a page of rows.
pub async fn list<R: Resource>(
    State(state): State<AppState>,
    page: Signed,
    Query(params): Query<ListParams>,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let fail = |e: StoreError| match e {
        StoreError::Invalid(_) => PageError::BadRequest(lang),
        e => PageError::internal(lang, e),
    };
    let table = R::table();
    let number = params
        .page
        .as_deref()
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|p| (1..=1_000_000).contains(p))
        .unwrap_or(1);
    let columns = R::columns();
    let sort = params
        .sort
        .clone()
        .filter(|s| columns.iter().any(|c| c.sort == Some(s.as_str())));
    let descending = params.dir.as_deref() == Some("desc");
    let mut filters = Vec::new();
    let mut shown_filters = Vec::new();
    let tables: Vec<&'static str> = R::filters()
        .iter()
        .filter_map(|f| match f.choices {
            FilterChoices::Table(t) => Some(t),
            _ => None,
        })
        .chain(columns.iter().filter_map(|c| match c.show {
            Show::Ref(t) | Show::Refs(t) => Some(t),
            _ => None,
        }))
        .collect();
    let names = choosers(&state.store, &tables).await.map_err(fail)?;
    for f in R::filters() {
        let chosen = params.rest.get(f.column).map(|s| s.trim()).unwrap_or("");
        let options: Vec<forms::OptionView> = match f.choices {
            FilterChoices::Fixed(values) => values
                .iter()
                .map(|(v, key)| forms::OptionView {
                    value: (*v).to_string(),
                    label: lang.t(key).to_string(),
                    selected: chosen == *v,
                })
                .collect(),
            FilterChoices::Numbers(values) => values
                .iter()
                .map(|(v, key)| forms::OptionView {
                    value: v.to_string(),
                    label: lang.t(key).to_string(),
                    selected: chosen == v.to_string(),
                })
                .collect(),
            FilterChoices::Table(t) => names
                .get(t)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|(id, name)| forms::OptionView {
                    value: id.to_string(),
                    label: name.clone(),
                    selected: chosen == id.to_string(),
                })
                .collect(),
        };
        // Only a value the filter offers is applied; anything else shows all.
        if let Some(o) = options.iter().find(|o| o.selected) {
            let value = match f.choices {
                FilterChoices::Fixed(_) => FilterValue::Text(o.value.clone()),
                _ => FilterValue::Number(o.value.parse().unwrap_or_default()),
            };
            filters.push((f.column.to_string(), value));
        }
        shown_filters.push(FilterView {
            name: f.column,
            label: lang.t(f.label),
            options,
        });
    }
    let search = params.q.clone().unwrap_or_default();
    let query = BrowseQuery {
        sort: sort.clone(),
        descending,
        filters,
        search: Some(search.clone()).filter(|s| !s.trim().is_empty()),
        offset: (number - 1) * PAGE_SIZE,
        limit: PAGE_SIZE,
    };
    let browsed = state.store.browse(&table, &query).await.map_err(fail)?;
    let tz = state.store.display_time_zone().await.map_err(fail)?;
    // The rows by key, a few at a time (the pool's readers work in parallel).
    let store = state.store.clone();
    let fetched: Vec<R::Item> = futures_util::stream::iter(browsed.keys.clone())
        .map(move |key| {
            let store = store.clone();
            async move { R::get(&store, &key).await }
        })
        .buffered(4)
        .try_collect()
        .await
        .map_err(fail)?;
    let mut items = Vec::with_capacity(fetched.len());
    for (key, item) in browsed.keys.iter().zip(&fetched) {
        items.push((
            key.clone(),
            serde_json::to_value(item).map_err(|e| PageError::internal(lang, e))?,
        ));
    }
    let people: Vec<i64> = columns
        .iter()
        .filter(|c| matches!(c.show, Show::Person))
        .flat_map(|c| {
            items
                .iter()
                .filter_map(|(_, v)| v.get(c.key).and_then(Value::as_i64))
        })
        .collect();
    let people = state.store.people_names(&people).await.map_err(fail)?;
    let name_in = |table: &str, id: i64| {
        names
            .get(table)
            .and_then(|rows| rows.iter().find(|(i, _)| *i == id))
            .map_or_else(|| format!("#{id}"), |(_, n)| n.clone())
    };
    let rows = items
        .iter()
        .map(|(key, item)| {
            columns
                .iter()
                .map(|c| {
                    let v = item.get(c.key).unwrap_or(&Value::Null);
                    let text = match (c.show, v) {
                        (_, Value::Null) => String::new(),
                        (Show::Choice(values), Value::String(s)) => values
                            .iter()
                            .find(|(v, _)| v == s)
                            .map_or_else(|| s.clone(), |(_, k)| lang.t(k).to_string()),
                        (Show::Choice(values), Value::Number(n)) => values
                            .iter()
                            .find(|(v, _)| *v == n.to_string())
                            .map_or_else(|| n.to_string(), |(_, k)| lang.t(k).to_string()),
                        (Show::Ref(t), Value::Number(n)) => name_in(t, n.as_i64().unwrap_or(0)),
                        (Show::Refs(t), Value::Array(ids)) => ids
                            .iter()
                            .map(|i| name_in(t, i.as_i64().unwrap_or(0)))
                            .collect::<Vec<_>>()
                            .join("、"),
                        (Show::Person, Value::Number(n)) => {
                            let id = n.as_i64().unwrap_or(0);
                            people
                                .iter()
                                .find(|(i, _)| *i == id)
                                .map_or_else(|| format!("#{id}"), |(_, name)| name.clone())
                        }
                        (Show::When, Value::Number(n)) => local_time(n.as_i64().unwrap_or(0), &tz),
                        (Show::Flag, Value::Bool(b)) => {
                            lang.t(if *b { "form.yes" } else { "form.no" }).to_string()
                        }
                        (_, Value::String(s)) => s.clone(),
                        (_, other) => other.to_string(),
                    };
                    let href = match (c.show, v) {
                        (Show::Link, _) => format!("/{}/{}", R::SLUG, query_value(key)),
                        (Show::Person, Value::Number(n)) => format!("/people/{n}"),
                        _ => String::new(),
                    };
                    Cell { text, href }
                })
                .collect()
        })
        .collect();
    // Links keep the filters and search; sorting starts again at page 1.
    let mut kept: Vec<(String, String)> = R::filters()
        .iter()
        .filter_map(|f| {
            params
                .rest
                .get(f.column)
                .filter(|v| !v.is_empty())
                .map(|v| (f.column.to_string(), v.clone()))
        })
        .collect();
    if !search.is_empty() {
        kept.push(("q".into(), search.clone()));
    }
    let link = |extra: &[(&str, String)]| {
        let mut all: Vec<String> = kept
            .iter()
            .map(|(k, v)| format!("{k}={}", query_value(v)))
            .collect();
        all.extend(extra.iter().map(|(k, v)| format!("{k}={}", query_value(v))));
        format!("/{}?{}", R::SLUG, all.join("&"))
    };
    let headings = columns
        .iter()
        .map(|c| {
            let now = c.sort.is_some() && c.sort.map(str::to_string) == sort;
            Heading {
                label: lang.t(c.label),
                href: c.sort.map_or_else(String::new, |s| {
                    let dir = if now && !descending { "desc" } else { "asc" };
                    link(&[("sort", s.to_string()), ("dir", dir.to_string())])
                }),
                sorted: match (now, descending) {
                    (true, false) => "ascending",
                    (true, true) => "descending",
                    _ => "",
                },
            }
        })
        .collect();
    let mut order: Vec<(&str, String)> = Vec::new();
    if let Some(s) = &sort {
        order.push(("sort", s.clone()));
        order.push(("dir", if descending { "desc" } else { "asc" }.into()));
    }
    let at = |n: i64| {
        let mut p = order.clone();
        p.push(("page", n.to_string()));
        link(&p)
    };
    let first = (number - 1) * PAGE_SIZE;
    let shown = i64::try_from(browsed.keys.len()).unwrap_or(0);
    let path = format!("/{}", R::SLUG);
    Ok(render(
        StatusCode::OK,
        &ListPage {
            ctx: PageContext::signed_in(lang, &path, &page.principal, &page.csrf_token),
            slug: R::SLUG,
            title: lang.t(&format!("res.{}.title", R::SLUG)),
            may_write: may_write::<R, _>(&page),
            filters: shown_filters,
            searchable: !table.searchable.is_empty(),
            search,
            sort: sort.unwrap_or_default(),
            dir: if descending {
                "desc".into()
            } else {
                "asc".into()
            },
            headings,
            rows,
            first: if shown == 0 { 0 } else { first + 1 },
            last: first + shown,
            total: browsed.total,
            prev: if number > 1 {
                at(number - 1)
            } else {
                String::new()
            },
            next: if first + shown < browsed.total {
                at(number + 1)
            } else {
                String::new()
            },
        },
    ))
}

#[derive(Template)]
#[template(path = "resources/form.html")]
struct FormPage {
    ctx: PageContext,
    slug: &'static str,
    title: String,
    heading: &'static str,
    action: String,
    may_write: bool,
    editing: bool,
    deletable: bool,
    editable: bool,
    fields: Vec<FieldView>,
    general: Vec<String>,
    saved: bool,
    references: Vec<Cell>,
    extra: String,
}

/// What every form handler works from: the request's user, the store, and
/// the time zone the site's times are shown and entered in (read once).
struct Scene<'a, Q> {
    state: &'a AppState,
    page: &'a PageAuthorized<Q>,
    time_zone: String,
}

impl<'a, Q> Scene<'a, Q> {
    async fn new(state: &'a AppState, page: &'a PageAuthorized<Q>) -> Result<Self, PageError> {
        Ok(Scene {
            state,
            page,
            time_zone: time_zone(&state.store, page.lang).await?,
        })
    }

    /// Row `key` of `R`; a key that names nothing is the page's not-found.
    async fn existing<R: Resource>(&self, key: &str) -> Result<R::Item, PageError> {
        match R::get(&self.state.store, key).await {
            Ok(item) => Ok(item),
            Err(StoreError::NotFound(_)) => Err(PageError::NotFound(self.page.lang)),
            Err(e) => Err(PageError::internal(self.page.lang, e)),
        }
    }

    /// The form values of an existing row.
    fn values_of<R: Resource>(&self, item: &R::Item) -> Submitted {
        forms::values_of(&R::to_form(item), &R::fields(true), &self.time_zone)
    }

    /// Draws `R`'s form.
    async fn form<R: Resource>(
        &self,
        status: StatusCode,
        existing: Option<(&str, &R::Item)>,
        values: &Submitted,
        refusal: &Refusal,
        saved: bool,
    ) -> Result<Response, PageError> {
        let (state, page) = (self.state, self.page);
        let lang = page.lang;
        let fields = R::fields(existing.is_some());
        let names = choosers(&state.store, &forms::chooser_tables(&fields))
            .await
            .map_err(|e| PageError::internal(lang, e))?;
        let (path, title) = match existing {
            Some((key, item)) => (format!("/{}/{}", R::SLUG, query_value(key)), R::title(item)),
            None => (
                format!("/{}/new", R::SLUG),
                lang.t(&format!("res.{}.new", R::SLUG)).to_string(),
            ),
        };
        let ctx = PageContext::signed_in(lang, &path, &page.principal, &page.csrf_token)
            .in_time_zone(&self.time_zone);
        let (references, extra) = match existing {
            Some((key, item)) => {
                let refs = if R::KIND.is_empty() {
                    Vec::new()
                } else {
                    let id = key.parse::<i64>().unwrap_or(0);
                    state
                        .store
                        .references(R::KIND, id)
                        .await
                        .map_err(|e| PageError::internal(lang, e))?
                };
                (
                    reference_texts(&refs, lang),
                    R::extra(state, item, &ctx).await?,
                )
            }
            None => (Vec::new(), String::new()),
        };
        Ok(render(
            status,
            &FormPage {
                slug: R::SLUG,
                heading: lang.t(&format!("res.{}.title", R::SLUG)),
                title,
                action: path,
                may_write: may_write::<R, _>(page),
                editing: existing.is_some(),
                deletable: R::deletable(),
                editable: R::editable(),
                fields: forms::views(&fields, values, &names, refusal, lang),
                general: refusal
                    .general
                    .iter()
                    .map(|(k, d)| format!("{} {d}", lang.t(k)).trim().to_string())
                    .collect(),
                saved,
                references,
                extra,
                ctx,
            },
        ))
    }
}

/// The time zone pages show times in, or the page's internal error.
pub async fn time_zone(store: &Store, lang: Lang) -> Result<String, PageError> {
    store
        .display_time_zone()
        .await
        .map_err(|e| PageError::internal(lang, e))
}

/// Back to a row's page, which says it is saved.
fn saved<R: Resource>(item: &R::Item) -> Response {
    see_other(&format!(
        "/{}/{}?saved=1",
        R::SLUG,
        query_value(&R::key(item))
    ))
}

/// The query of a form page (`saved=1` after a change).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct FormParams {
    #[serde(default)]
    saved: Option<String>,
    #[serde(flatten)]
    rest: std::collections::HashMap<String, String>,
}

/// `GET /{slug}/new`.
pub async fn new_form<R: Resource>(
    State(state): State<AppState>,
    page: PageAuthorized<R::Writer>,
    Query(params): Query<FormParams>,
) -> Result<Response, PageError> {
    let scene = Scene::new(&state, &page).await?;
    // A link may prefill fields (a person's "issue a card").
    let given = Submitted::new(params.rest.into_iter().collect());
    let fields = R::fields(false);
    let mut values = forms::values_of(&R::blank(&given), &fields, &scene.time_zone);
    for f in &fields {
        if given.has(f.name) {
            values.replace(f.name, given.all(f.name).to_vec());
        }
    }
    scene
        .form::<R>(StatusCode::OK, None, &values, &Refusal::default(), false)
        .await
}

/// `GET /{slug}/{key}`.
pub async fn edit_form<R: Resource>(
    State(state): State<AppState>,
    page: Signed,
    Path(key): Path<String>,
    Query(params): Query<FormParams>,
) -> Result<Response, PageError> {
    let scene = Scene::new(&state, &page).await?;
    let item = scene.existing::<R>(&key).await?;
    scene
        .form::<R>(
            StatusCode::OK,
            Some((&key, &item)),
            &scene.values_of::<R>(&item),
            &Refusal::default(),
            params.saved.is_some(),
        )
        .await
}

fn submitted(form: &RawForm) -> Submitted {
    Submitted::new(serde_urlencoded::from_bytes(&form.0).unwrap_or_default())
}

/// `POST /{slug}/new`.
pub async fn create<R: Resource>(
    State(state): State<AppState>,
    page: PageAuthorized<R::Writer>,
    form: RawForm,
) -> Result<Response, PageError> {
    let scene = Scene::new(&state, &page).await?;
    let form = submitted(&form);
    match R::create(&state.store, &page.principal.actor, &form, &scene.time_zone).await {
        Ok(item) => {
            let path = format!("/{}/{}", R::SLUG, query_value(&R::key(&item)));
            let ctx = PageContext::signed_in(page.lang, &path, &page.principal, &page.csrf_token);
            match R::created(&state, &item, &ctx) {
                Some(once) => {
                    Ok((StatusCode::CREATED, axum::response::Html(once?)).into_response())
                }
                None => Ok(saved::<R>(&item)),
            }
        }
        Err(refusal) => {
            scene
                .form::<R>(StatusCode::BAD_REQUEST, None, &form, &refusal, false)
                .await
        }
    }
}

/// `POST /{slug}/{key}`.
pub async fn update<R: Resource>(
    State(state): State<AppState>,
    page: PageAuthorized<R::Writer>,
    Path(key): Path<String>,
    form: RawForm,
) -> Result<Response, PageError> {
    let scene = Scene::new(&state, &page).await?;
    let form = submitted(&form);
    let existing = scene.existing::<R>(&key).await?;
    match R::update(
        &state.store,
        &page.principal.actor,
        &key,
        &form,
        &scene.time_zone,
    )
    .await
    {
        Ok(item) => Ok(saved::<R>(&item)),
        Err(refusal) => {
            scene
                .form::<R>(
                    StatusCode::BAD_REQUEST,
                    Some((&key, &existing)),
                    &form,
                    &refusal,
                    false,
                )
                .await
        }
    }
}

/// `POST /{slug}/{key}/delete`: only with the confirmation ticked; a row
/// still referred to stays, and its page says by what.
pub async fn delete<R: Resource>(
    State(state): State<AppState>,
    page: PageAuthorized<R::Writer>,
    Path(key): Path<String>,
    form: RawForm,
) -> Result<Response, PageError> {
    let scene = Scene::new(&state, &page).await?;
    let form = submitted(&form);
    let existing = scene.existing::<R>(&key).await?;
    let refused = |status, refusal: Refusal| {
        let scene = &scene;
        let (key, existing) = (&key, &existing);
        async move {
            scene
                .form::<R>(
                    status,
                    Some((key, existing)),
                    &scene.values_of::<R>(existing),
                    &refusal,
                    false,
                )
                .await
        }
    };
    if !form.has("confirm") {
        return refused(
            StatusCode::BAD_REQUEST,
            Refusal::general("form.confirm_delete", ""),
        )
        .await;
    }
    match R::delete(&state.store, &page.principal.actor, &key).await {
        Ok(()) => Ok(see_other(&format!("/{}?deleted=1", R::SLUG))),
        Err(StoreError::Conflict(m)) => {
            refused(StatusCode::CONFLICT, Refusal::general("form.still_used", m)).await
        }
        Err(StoreError::NotFound(_)) => Err(PageError::NotFound(page.lang)),
        Err(e) => Err(PageError::internal(page.lang, e)),
    }
}
