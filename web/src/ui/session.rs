//! The session cookie and the page extractor that turns it into the same
//! `Principal` the API's tokens produce, checked against the same `Requirement`.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderValue;

use super::i18n::{cookie, Lang};
use super::page::PageError;
use super::UiOptions;
use crate::auth::{ActorSlot, Read, Requirement};
use crate::store::auth::Principal;
use crate::store::sessions::{Session, SessionState};
use crate::AppState;

/// The cookie that holds the session id.
pub const SESSION_COOKIE: &str = "tobira_session";

/// A session found for this request (left in the request by the CSRF guard,
/// so that a form's handler does not look it up twice).
#[derive(Debug, Clone)]
pub struct ActiveSession {
    /// The cookie value.
    pub id: String,
    /// The session.
    pub session: Session,
}

/// The `Set-Cookie` value of a new session: script cannot read it, other
/// sites cannot send it, and over TLS it never travels in the clear.
pub fn session_cookie(id: &str, tls: bool) -> Option<HeaderValue> {
    let secure = if tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/{secure}"
    ))
    .ok()
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn cleared_session_cookie(tls: bool) -> Option<HeaderValue> {
    session_cookie("", tls).and_then(|v| {
        v.to_str()
            .ok()
            .and_then(|s| HeaderValue::from_str(&format!("{s}; Max-Age=0")).ok())
    })
}

/// The page options the router put into the request.
pub fn options(parts: &Parts) -> UiOptions {
    parts
        .extensions
        .get::<UiOptions>()
        .cloned()
        .unwrap_or_default()
}

/// The request's session, or why there is none (`true`: it timed out).
pub async fn find(
    headers: &axum::http::HeaderMap,
    state: &AppState,
    options: &UiOptions,
) -> Result<Result<ActiveSession, bool>, crate::store::StoreError> {
    let Some(id) = cookie(headers, SESSION_COOKIE).filter(|id| !id.is_empty()) else {
        return Ok(Err(false));
    };
    Ok(
        match state
            .store
            .session(id, options.sessions, options.clock.now())
            .await?
        {
            SessionState::Active(session) => Ok(ActiveSession {
                id: id.to_string(),
                session,
            }),
            SessionState::Expired => Err(true),
            SessionState::Unknown => Err(false),
        },
    )
}

/// A logged-in user whose role meets `R`; without a session the browser goes
/// to the login page and comes back here after.
#[derive(Debug, Clone)]
pub struct PageAuthorized<R> {
    /// Who is asking: the same principal as from an API token.
    pub principal: Principal,
    /// The session's cookie value.
    pub session_id: String,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// When the session was opened (ms).
    pub since: i64,
    /// The page language.
    pub lang: Lang,
    requirement: PhantomData<R>,
}

/// Any logged-in user, whatever the role.
pub type Signed = PageAuthorized<Read>;

impl<R: Requirement + Send + Sync> FromRequestParts<AppState> for PageAuthorized<R> {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let lang = Lang::of(&parts.headers);
        let active = match parts.extensions.get::<ActiveSession>() {
            Some(active) => active.clone(),
            None => {
                let options = options(parts);
                match find(&parts.headers, state, &options)
                    .await
                    .map_err(|e| PageError::internal(lang, e))?
                {
                    Ok(active) => active,
                    Err(expired) => {
                        let next = parts
                            .uri
                            .path_and_query()
                            .map(|p| p.as_str().to_string())
                            .unwrap_or_else(|| "/".into());
                        return Err(PageError::Login { next, expired });
                    }
                }
            }
        };
        let principal = active.session.principal;
        if let Some(slot) = parts.extensions.get::<ActorSlot>() {
            slot.note_page(&principal.actor);
        }
        if !R::allows(principal.role) {
            return Err(PageError::Forbidden(lang));
        }
        Ok(PageAuthorized {
            principal,
            session_id: active.id,
            csrf_token: active.session.csrf_token,
            since: active.session.created_at,
            lang,
            requirement: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_secure_over_tls_and_never_readable_by_script() {
        let plain = session_cookie("abc", false).unwrap();
        assert_eq!(
            plain.to_str().unwrap(),
            "tobira_session=abc; HttpOnly; SameSite=Strict; Path=/"
        );
        let tls = session_cookie("abc", true).unwrap();
        assert!(tls.to_str().unwrap().ends_with("; Path=/; Secure"));
        let cleared = cleared_session_cookie(true).unwrap();
        assert!(cleared.to_str().unwrap().starts_with("tobira_session=; "));
        assert!(cleared.to_str().unwrap().ends_with("; Secure; Max-Age=0"));
    }
}
