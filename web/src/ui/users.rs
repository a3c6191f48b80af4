//! User administration pages (admins only): the user list, adding a user,
//! and one user's role, state (enabled or disabled) and password reset.

use askama::Template;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::i18n::{role_key, Lang};
use super::page::{local_time, render, see_other, PageContext, PageError};
use super::session::PageAuthorized;
use crate::auth::Administer;
use crate::store::approvals::ChangeRequest;
use crate::store::auth::Role;
use crate::store::users::UserInfo;
use crate::store::StoreError;
use crate::AppState;

/// An admin on a page.
type AdminPage = PageAuthorized<Administer>;

/// The roles in the order the forms offer them: (value, catalog key).
const ROLES: [Role; 4] = [
    Role::Admin,
    Role::Facilities,
    Role::Operator,
    Role::Security,
];

/// One choice of a role select.
#[derive(Debug, Clone)]
struct RoleChoice {
    value: &'static str,
    key: &'static str,
    selected: bool,
}

fn role_choices(selected: &str) -> Vec<RoleChoice> {
    ROLES
        .iter()
        .map(|r| RoleChoice {
            value: r.as_str(),
            key: role_key(*r),
            selected: r.as_str() == selected,
        })
        .collect()
}

/// A user as the pages show them.
#[derive(Debug, Clone)]
struct UserView {
    id: i64,
    username: String,
    role_key: &'static str,
    disabled: bool,
    created: String,
}

fn view(user: &UserInfo, zone: &str) -> UserView {
    UserView {
        id: user.id,
        username: user.username.clone(),
        role_key: role_key(user.role),
        disabled: user.disabled,
        created: local_time(user.created_at, zone),
    }
}

async fn zone(state: &AppState, lang: Lang) -> Result<String, PageError> {
    state
        .store
        .display_time_zone()
        .await
        .map_err(|e| PageError::internal(lang, e))
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    ctx: PageContext,
    users: Vec<UserView>,
}

/// `GET /users`.
pub async fn list(State(state): State<AppState>, page: AdminPage) -> Result<Response, PageError> {
    let lang = page.lang;
    let users = state
        .store
        .list_users()
        .await
        .map_err(|e| PageError::internal(lang, e))?;
    let zone = zone(&state, lang).await?;
    Ok(render(
        StatusCode::OK,
        &UsersPage {
            ctx: PageContext::signed_in(lang, "/users", &page.principal, &page.csrf_token),
            users: users.iter().map(|u| view(u, &zone)).collect(),
        },
    ))
}

#[derive(Template)]
#[template(path = "user_new.html")]
struct NewUserPage {
    ctx: PageContext,
    username: String,
    roles: Vec<RoleChoice>,
    username_error: String,
    role_error: String,
    password_error: String,
}

/// `GET /users/new`.
pub async fn new_form(page: AdminPage) -> Response {
    render(
        StatusCode::OK,
        &NewUserPage {
            ctx: PageContext::signed_in(page.lang, "/users/new", &page.principal, &page.csrf_token),
            username: String::new(),
            roles: role_choices(Role::Facilities.as_str()),
            username_error: String::new(),
            role_error: String::new(),
            password_error: String::new(),
        },
    )
}

/// The new user form (the CSRF token is checked by the guard).
#[derive(Debug, Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    repeat: String,
}

/// A catalog text followed by the store's reason.
fn with_detail(lang: Lang, key: &str, detail: &str) -> String {
    format!("{} {detail}", lang.t(key)).trim_end().to_string()
}

/// `POST /users/new`: the user is added and their page shown; otherwise the
/// form again, each problem next to its field and the name and role kept.
pub async fn create(
    State(state): State<AppState>,
    page: AdminPage,
    Form(form): Form<NewUserForm>,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let mut again = NewUserPage {
        ctx: PageContext::signed_in(lang, "/users/new", &page.principal, &page.csrf_token),
        username: form.username.clone(),
        roles: role_choices(&form.role),
        username_error: String::new(),
        role_error: String::new(),
        password_error: String::new(),
    };
    let role = Role::parse(&form.role);
    if role.is_none() {
        again.role_error = lang.t("users.error.role").to_string();
    }
    if form.password != form.repeat {
        again.password_error = lang.t("users.error.mismatch").to_string();
    }
    let Some(role) = role.filter(|_| again.password_error.is_empty()) else {
        return Ok(render(StatusCode::BAD_REQUEST, &again));
    };
    match state
        .store
        .create_user(&page.principal.actor, &form.username, &form.password, role)
        .await
    {
        Ok(id) => Ok(see_other(&format!("/users/{id}?done=created"))),
        Err(StoreError::Conflict(_)) => {
            again.username_error = lang.t("users.error.taken").to_string();
            Ok(render(StatusCode::CONFLICT, &again))
        }
        // The store checks the name before the password: a reason that
        // names the password is the password's.
        Err(StoreError::Invalid(why)) if why.starts_with("password") => {
            again.password_error = with_detail(lang, "users.error.password", &why);
            Ok(render(StatusCode::BAD_REQUEST, &again))
        }
        Err(StoreError::Invalid(why)) => {
            again.username_error = with_detail(lang, "users.error.name", &why);
            Ok(render(StatusCode::BAD_REQUEST, &again))
        }
        Err(e) => Err(PageError::internal(lang, e)),
    }
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    ctx: PageContext,
    user: UserView,
    roles: Vec<RoleChoice>,
    /// Catalog key of what was just done, if anything.
    done_key: &'static str,
    role_error: String,
    state_error: String,
    password_error: String,
}

/// What a form on a user's page reports: which form, and the text.
enum Problem {
    Role(String),
    State(String),
    Password(String),
}

/// The user's page again, with `problem` beside the form it belongs to.
async fn again(
    state: &AppState,
    page: &AdminPage,
    id: i64,
    status: StatusCode,
    problem: Problem,
) -> Result<Response, PageError> {
    user_page(state, page, id, status, None, Some(problem)).await
}

/// After a change to user `id`: to their page saying `done`, or the page
/// again with why not (a guard rail, or a value the store refused).
async fn after<T>(
    state: &AppState,
    page: &AdminPage,
    id: i64,
    result: Result<T, StoreError>,
    done: &str,
    problem: fn(String) -> Problem,
) -> Result<Response, PageError> {
    let lang = page.lang;
    match result {
        Ok(_) => Ok(see_other(&format!("/users/{id}?done={done}"))),
        Err(StoreError::NotFound(_)) => Err(PageError::NotFound(lang)),
        Err(StoreError::Conflict(_)) => {
            let why = refusal(state, page, id).await;
            again(state, page, id, StatusCode::CONFLICT, problem(why)).await
        }
        Err(StoreError::Invalid(why)) => {
            let why = with_detail(lang, "users.error.password", &why);
            again(state, page, id, StatusCode::BAD_REQUEST, problem(why)).await
        }
        Err(e) => Err(PageError::internal(lang, e)),
    }
}

/// The query of a user's page after a change.
#[derive(Debug, Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

fn done_key(done: Option<&str>) -> &'static str {
    match done {
        Some("created") => "users.done.created",
        Some("role") => "users.done.role",
        Some("disabled") => "users.done.disabled",
        Some("enabled") => "users.done.enabled",
        Some("password") => "users.done.password",
        _ => "",
    }
}

fn user_id(id: Result<Path<i64>, PathRejection>, lang: Lang) -> Result<i64, PageError> {
    id.map(|Path(id)| id).map_err(|_| PageError::NotFound(lang))
}

async fn user_page(
    state: &AppState,
    page: &AdminPage,
    id: i64,
    status: StatusCode,
    done: Option<&str>,
    problem: Option<Problem>,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let user = match state.store.user(id).await {
        Ok(user) => user,
        Err(StoreError::NotFound(_)) => return Err(PageError::NotFound(lang)),
        Err(e) => return Err(PageError::internal(lang, e)),
    };
    let zone = zone(state, lang).await?;
    let path = format!("/users/{id}");
    let mut shown = UserPage {
        ctx: PageContext::signed_in(lang, &path, &page.principal, &page.csrf_token),
        roles: role_choices(user.role.as_str()),
        user: view(&user, &zone),
        done_key: done_key(done),
        role_error: String::new(),
        state_error: String::new(),
        password_error: String::new(),
    };
    match problem {
        Some(Problem::Role(text)) => shown.role_error = text,
        Some(Problem::State(text)) => shown.state_error = text,
        Some(Problem::Password(text)) => shown.password_error = text,
        None => {}
    }
    Ok(render(status, &shown))
}

/// `GET /users/{id}`.
pub async fn show(
    State(state): State<AppState>,
    page: AdminPage,
    id: Result<Path<i64>, PathRejection>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, PageError> {
    let id = user_id(id, page.lang)?;
    user_page(&state, &page, id, StatusCode::OK, q.done.as_deref(), None).await
}

/// Why the store refused a guarded change, in the page language: the admin
/// themselves, or the last enabled admin.
async fn refusal(state: &AppState, page: &AdminPage, id: i64) -> String {
    let is_self = state
        .store
        .user(id)
        .await
        .is_ok_and(|u| u.username == page.principal.actor);
    let key = if is_self {
        "users.error.self"
    } else {
        "users.error.last_admin"
    };
    page.lang.t(key).to_string()
}

/// The role form.
#[derive(Debug, Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

/// `POST /users/{id}/role`.
pub async fn set_role(
    State(state): State<AppState>,
    page: AdminPage,
    id: Result<Path<i64>, PathRejection>,
    Form(form): Form<RoleForm>,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let id = user_id(id, lang)?;
    let Some(role) = Role::parse(&form.role) else {
        let problem = Problem::Role(lang.t("users.error.role").to_string());
        return again(&state, &page, id, StatusCode::BAD_REQUEST, problem).await;
    };
    // A role change waits for a second admin: its page says so.
    let change = ChangeRequest::UserRole { user_id: id, role };
    let result = match state
        .store
        .hold_for_approval(&page.principal.actor, &change)
        .await
    {
        Ok(Some(pending)) => return Ok(super::approvals::requested(&pending)),
        Ok(None) => {
            state
                .store
                .set_user_role(&page.principal.actor, id, role)
                .await
        }
        Err(e) => Err(e),
    };
    after(&state, &page, id, result, "role", Problem::Role).await
}

/// The disable/enable form: `disabled` is `1` or `0`; disabling needs the
/// confirmation ticked.
#[derive(Debug, Deserialize)]
pub struct StateForm {
    #[serde(default)]
    disabled: String,
    #[serde(default)]
    confirm: Option<String>,
}

/// `POST /users/{id}/disabled`.
pub async fn set_disabled(
    State(state): State<AppState>,
    page: AdminPage,
    id: Result<Path<i64>, PathRejection>,
    Form(form): Form<StateForm>,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let id = user_id(id, lang)?;
    let disabled = match form.disabled.as_str() {
        "1" => true,
        "0" => false,
        _ => return Err(PageError::BadRequest(lang)),
    };
    if disabled && form.confirm.as_deref().is_none_or(str::is_empty) {
        let problem = Problem::State(lang.t("users.error.confirm").to_string());
        return again(&state, &page, id, StatusCode::BAD_REQUEST, problem).await;
    }
    let result = state
        .store
        .set_user_disabled(&page.principal.actor, id, disabled)
        .await;
    let done = if disabled { "disabled" } else { "enabled" };
    after(&state, &page, id, result, done, Problem::State).await
}

/// The password reset form.
#[derive(Debug, Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    new: String,
    #[serde(default)]
    repeat: String,
}

/// `POST /users/{id}/password`.
pub async fn reset_password(
    State(state): State<AppState>,
    page: AdminPage,
    id: Result<Path<i64>, PathRejection>,
    Form(form): Form<ResetForm>,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let id = user_id(id, lang)?;
    if form.new != form.repeat {
        let problem = Problem::Password(lang.t("users.error.mismatch").to_string());
        return again(&state, &page, id, StatusCode::BAD_REQUEST, problem).await;
    }
    let result = state
        .store
        .reset_user_password(&page.principal.actor, id, &form.new)
        .await;
    after(&state, &page, id, result, "password", Problem::Password).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_the_handlers_pick_is_in_the_catalog() {
        let keys = [
            "users.error.name",
            "users.error.taken",
            "users.error.role",
            "users.error.mismatch",
            "users.error.password",
            "users.error.confirm",
            "users.error.self",
            "users.error.last_admin",
        ];
        let done = ["created", "role", "disabled", "enabled", "password"];
        for key in keys
            .into_iter()
            .chain(done.iter().map(|d| done_key(Some(d))))
        {
            assert!(!key.is_empty());
            for lang in Lang::ALL {
                assert_ne!(lang.t(key), "??", "{key}");
            }
        }
        assert_eq!(done_key(Some("other")), "");
    }
}
