//! What every page shares: the page context (language, user, CSRF token,
//! stylesheet), rendering, times in the site's zone, and the page errors.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::i18n::{role_key, Lang};
use crate::store::auth::Principal;

/// What the base layout needs on every page.
#[derive(Debug, Clone)]
pub struct PageContext {
    /// The page language.
    pub lang: Lang,
    /// The stylesheet's URL.
    pub stylesheet: String,
    /// The page's own path (the language switch comes back to it).
    pub path: String,
    /// Whether someone is logged in (the header shows them and the menu).
    pub signed_in: bool,
    /// Who is logged in.
    pub user: String,
    /// Their role's catalog key.
    pub role_key: &'static str,
    /// The session's CSRF token, for the forms.
    pub csrf: String,
    /// The role may manage configuration.
    pub may_manage: bool,
    /// The role may act on cards and alarms.
    pub may_operate: bool,
    /// The time zone the page shows times in ("" until a handler sets it).
    pub time_zone: String,
    /// The role administers (users, controllers, threat levels); the menu
    /// shows user administration.
    pub is_admin: bool,
}

impl PageContext {
    /// A page for someone not logged in.
    pub fn anonymous(lang: Lang, path: &str) -> Self {
        PageContext {
            lang,
            stylesheet: super::assets::stylesheet_url(),
            path: path.to_string(),
            signed_in: false,
            user: String::new(),
            role_key: "",
            csrf: String::new(),
            may_manage: false,
            may_operate: false,
            is_admin: false,
            time_zone: String::new(),
        }
    }

    /// A page for a logged-in user.
    pub fn signed_in(lang: Lang, path: &str, principal: &Principal, csrf: &str) -> Self {
        PageContext {
            signed_in: true,
            user: principal.actor.clone(),
            role_key: role_key(principal.role),
            csrf: csrf.to_string(),
            may_manage: principal.role.can_manage(),
            may_operate: principal.role.can_operate(),
            is_admin: principal.role.is_admin(),
            ..Self::anonymous(lang, path)
        }
    }

    /// The same page with times in `time_zone`.
    pub fn in_time_zone(self, time_zone: &str) -> Self {
        PageContext {
            time_zone: time_zone.to_string(),
            ..self
        }
    }

    /// The text of `key` in the page language.
    pub fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }

    /// The language switch's link to `code`, back to this page.
    pub fn lang_href(&self, code: &str) -> String {
        format!("/lang/{code}?next={}", query_value(&self.path))
    }

    /// Whether the page is in language `code` (the switch marks it).
    pub fn is_lang(&self, code: &str) -> bool {
        self.lang.code() == code
    }
}

/// Percent-encodes a query value (everything but unreserved characters and `/`).
pub fn query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `next` if it is a path on this site, else `/`: a login never sends the
/// browser to another site.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

/// A time (ms) as the site's local date and time, `2027-01-15 08:00:00 JST`.
pub fn local_time(ms: i64, time_zone: &str) -> String {
    let Ok(at) = jiff::Timestamp::from_millisecond(ms) else {
        return crate::store::utc_text(ms);
    };
    match jiff::tz::TimeZone::get(time_zone) {
        Ok(tz) => at.to_zoned(tz).strftime("%Y-%m-%d %H:%M:%S %Z").to_string(),
        Err(_) => crate::store::utc_text(ms),
    }
}

/// Renders a page with `status`.
pub fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "page cannot be rendered");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// A 303 to `to`.
pub fn see_other(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    ctx: PageContext,
    message_key: &'static str,
}

/// Why a page is not shown.
#[derive(Debug)]
pub enum PageError {
    /// No session (or it ended): to the login, and back to `next` after.
    Login {
        /// Where to come back to.
        next: String,
        /// The session timed out (the login page says so).
        expired: bool,
    },
    /// The role does not allow it.
    Forbidden(Lang),
    /// A form without the session's token or from another site.
    Csrf(Lang),
    /// A malformed request.
    BadRequest(Lang),
    /// Nothing there.
    NotFound(Lang),
    /// Anything else; the detail goes to the log only.
    Internal(Lang, String),
}

impl PageError {
    /// An internal error from anything that can be shown to the log.
    pub fn internal(lang: Lang, e: impl std::fmt::Display) -> Self {
        Self::Internal(lang, e.to_string())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (lang, status, key) = match self {
            Self::Login { next, expired } => {
                let mut to = format!("/login?next={}", query_value(&local_path(Some(&next))));
                if expired {
                    to.push_str("&expired=1");
                }
                return see_other(&to);
            }
            Self::Forbidden(lang) => (lang, StatusCode::FORBIDDEN, "error.forbidden"),
            Self::Csrf(lang) => (lang, StatusCode::FORBIDDEN, "error.csrf"),
            Self::BadRequest(lang) => (lang, StatusCode::BAD_REQUEST, "error.bad_request"),
            Self::NotFound(lang) => (lang, StatusCode::NOT_FOUND, "error.not_found"),
            Self::Internal(lang, detail) => {
                tracing::error!(%detail, "internal error on a page");
                (lang, StatusCode::INTERNAL_SERVER_ERROR, "error.internal")
            }
        };
        render(
            status,
            &ErrorPage {
                ctx: PageContext::anonymous(lang, "/"),
                message_key: key,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(local_path(Some("/account/password")), "/account/password");
        assert_eq!(local_path(Some("/?a=b")), "/?a=b");
        for foreign in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "evil",
            "/a b",
            "",
        ] {
            assert_eq!(local_path(Some(foreign)), "/", "{foreign}");
        }
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn times_are_shown_in_the_sites_zone() {
        // 2027-01-15T08:00:00Z
        let ms = 1_800_000_000_000;
        assert_eq!(local_time(ms, "Asia/Tokyo"), "2027-01-15 17:00:00 JST");
        assert_eq!(local_time(ms, "UTC"), "2027-01-15 08:00:00 UTC");
        assert_eq!(local_time(ms, "Nowhere/Else"), crate::store::utc_text(ms));
    }
}
