//! The start page (who you are, your role, what you may use) and changing
//! one's own password.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::page::{local_time, render, PageContext, PageError};
use super::session::Signed;
use crate::store::StoreError;
use crate::AppState;

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    ctx: PageContext,
    since: String,
}

/// `GET /`.
pub async fn start(State(state): State<AppState>, page: Signed) -> Result<Response, PageError> {
    let zone = state
        .store
        .display_time_zone()
        .await
        .map_err(|e| PageError::internal(page.lang, e))?;
    Ok(render(
        StatusCode::OK,
        &HomePage {
            ctx: PageContext::signed_in(page.lang, "/", &page.principal, &page.csrf_token),
            since: local_time(page.since, &zone),
        },
    ))
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    ctx: PageContext,
    /// Catalog key of the message, if any.
    message_key: &'static str,
    /// The store's reason, after the message.
    message_detail: String,
    problem: bool,
}

/// `GET /account/password`.
pub async fn password_form(page: Signed) -> Response {
    render(
        StatusCode::OK,
        &PasswordPage {
            ctx: PageContext::signed_in(
                page.lang,
                "/account/password",
                &page.principal,
                &page.csrf_token,
            ),
            message_key: "",
            message_detail: String::new(),
            problem: false,
        },
    )
}

/// The password form (the CSRF token is checked by the guard).
#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    repeat: String,
}

/// `POST /account/password`: the current password, the new one twice.
pub async fn change_password(
    State(state): State<AppState>,
    page: Signed,
    Form(form): Form<PasswordForm>,
) -> Result<Response, PageError> {
    let ctx = PageContext::signed_in(
        page.lang,
        "/account/password",
        &page.principal,
        &page.csrf_token,
    );
    let refused = |key: &'static str, detail: String| {
        render(
            StatusCode::BAD_REQUEST,
            &PasswordPage {
                ctx: ctx.clone(),
                message_key: key,
                message_detail: detail,
                problem: true,
            },
        )
    };
    if form.new != form.repeat {
        return Ok(refused("password.mismatch", String::new()));
    }
    match state
        .store
        .change_own_password(
            &page.principal.actor,
            &form.current,
            &form.new,
            Some(&page.session_id),
        )
        .await
    {
        Ok(()) => Ok(render(
            StatusCode::OK,
            &PasswordPage {
                ctx: ctx.clone(),
                message_key: "password.changed",
                message_detail: String::new(),
                problem: false,
            },
        )),
        Err(StoreError::Invalid(why)) => Ok(refused("password.refused", why)),
        Err(e) => Err(PageError::internal(page.lang, e)),
    }
}
