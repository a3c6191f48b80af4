//! The built-in stylesheet, compiled into the binary and served under a URL
//! that holds its content hash, so browsers may keep it for a year.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

const STYLESHEET: &str = include_str!("../../assets/tobira.css");

/// The stylesheet's file name, `tobira-<hash>.css`.
pub fn stylesheet_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let hash = hex::encode(Sha256::digest(STYLESHEET.as_bytes()));
        format!("tobira-{}.css", &hash[..16])
    })
}

/// The stylesheet's URL.
pub fn stylesheet_url() -> String {
    format!("/assets/{}", stylesheet_name())
}

/// `GET /assets/{name}`.
pub async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    if name != stylesheet_name() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let etag = format!("\"{}\"", stylesheet_name());
    let cache = [
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        ),
        (
            header::ETAG,
            HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\"")),
        ),
    ];
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        cache,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        STYLESHEET,
    )
        .into_response()
}
