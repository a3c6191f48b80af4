//! The CSRF guard in front of every page POST: the form must come from this
//! site (`Origin`, else `Referer`) and carry the session's token (in an
//! urlencoded or a multipart form); otherwise 403 before the handler runs, so
//! nothing changes.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::i18n::Lang;
use super::page::PageError;
use super::session::{find, ActiveSession};
use super::UiOptions;
use crate::AppState;

/// The form field that carries the session's token.
pub const CSRF_FIELD: &str = "csrf";

/// The largest page form read.
const MAX_FORM: usize = 64 * 1024;

/// Whether the request says it comes from this site: its `Origin` (or,
/// without one, its `Referer`) is this service's own origin. A request with
/// neither is left to the token.
pub fn same_origin(headers: &HeaderMap, authority: Option<&str>, tls: bool) -> bool {
    let scheme = if tls { "https" } else { "http" };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(authority);
    let Some(host) = host else {
        return false;
    };
    let own = format!("{scheme}://{host}");
    if let Some(origin) = headers.get(header::ORIGIN) {
        return origin.as_bytes() == own.as_bytes();
    }
    if let Some(referer) = headers.get(header::REFERER) {
        let Ok(referer) = referer.to_str() else {
            return false;
        };
        return referer == own
            || referer
                .strip_prefix(own.as_str())
                .is_some_and(|rest| rest.starts_with('/'));
    }
    true
}

/// Compares in time independent of where the texts differ.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The middleware on every route of [`super::page_posts`].
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let lang = Lang::of(request.headers());
    let options = request
        .extensions()
        .get::<UiOptions>()
        .cloned()
        .unwrap_or_default();
    let authority = request.uri().authority().map(|a| a.as_str().to_string());
    if !same_origin(request.headers(), authority.as_deref(), options.tls) {
        tracing::warn!(path = %request.uri().path(), "page form from another site refused");
        return PageError::Csrf(lang).into_response();
    }
    // The login form has no session yet; its Origin was checked above.
    if request.uri().path() == "/login" {
        return next.run(request).await;
    }
    let active = match find(request.headers(), &state, &options).await {
        Ok(Ok(active)) => active,
        Ok(Err(expired)) => {
            return PageError::Login {
                next: "/".into(),
                expired,
            }
            .into_response()
        }
        Err(e) => return PageError::internal(lang, e).into_response(),
    };
    let (mut parts, body) = request.into_parts();
    // A file upload comes as multipart/form-data, and only the upload routes
    // may send more than an ordinary form.
    let multipart = super::form_data::boundary(&parts.headers);
    let limit = match multipart {
        Some(_) => super::import::upload_limit(parts.uri.path()).unwrap_or(MAX_FORM),
        None => MAX_FORM,
    };
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return PageError::BadRequest(lang).into_response();
    };
    let sent = match &multipart {
        Some(boundary) => match super::form_data::fields(boundary, bytes.clone()).await {
            Some(fields) => {
                let token = super::form_data::text(&fields, CSRF_FIELD).to_string();
                parts
                    .extensions
                    .insert(super::form_data::UploadFields(fields));
                Some(token)
            }
            None => None,
        },
        None => serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
            .unwrap_or_default()
            .into_iter()
            .find(|(k, _)| k == CSRF_FIELD)
            .map(|(_, v)| v),
    };
    if !sent.is_some_and(|t| same_token(&t, &active.session.csrf_token)) {
        tracing::warn!(path = %parts.uri.path(), "page form without the session's CSRF token refused");
        return PageError::Csrf(lang).into_response();
    }
    parts.extensions.insert::<ActiveSession>(active);
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn forms_from_this_site_pass_and_from_others_do_not() {
        let own = [("host", "door.example:8080")];
        assert!(same_origin(&headers(&own), None, false));
        let with = |k, v| headers(&[own[0], (k, v)]);
        assert!(same_origin(
            &with("origin", "http://door.example:8080"),
            None,
            false
        ));
        assert!(!same_origin(
            &with("origin", "https://door.example:8080"),
            None,
            false
        ));
        assert!(same_origin(
            &with("origin", "https://door.example:8080"),
            None,
            true
        ));
        assert!(!same_origin(
            &with("origin", "http://evil.example"),
            None,
            false
        ));
        assert!(!same_origin(&with("origin", "null"), None, false));
        assert!(same_origin(
            &with("referer", "http://door.example:8080/account/password"),
            None,
            false
        ));
        assert!(!same_origin(
            &with("referer", "http://door.example:8080.evil.example/"),
            None,
            false
        ));
        assert!(!same_origin(
            &with("referer", "http://evil.example/"),
            None,
            false
        ));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "ab"));
        assert!(!same_token("", "a"));
    }
}
