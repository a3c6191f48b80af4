//! The built-in stylesheet and scripts, compiled into the binary and served
//! under URLs that hold their content hash, so browsers may keep them for a year.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One file served under `/assets/`.
struct Asset {
    stem: &'static str,
    extension: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// Every asset. Scripts only where a page cannot do without (the live
/// monitor's stream); every other page works without script.
const ASSETS: [Asset; 2] = [
    Asset {
        stem: "tobira",
        extension: "css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../assets/tobira.css"),
    },
    Asset {
        stem: "monitor",
        extension: "js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../assets/monitor.js"),
    },
];

/// Each asset's file name, `<stem>-<hash>.<ext>`, in the order of [`ASSETS`].
fn names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let hash = hex::encode(Sha256::digest(a.body.as_bytes()));
                format!("{}-{}.{}", a.stem, &hash[..16], a.extension)
            })
            .collect()
    })
}

fn url_of(stem: &str) -> String {
    let name = ASSETS
        .iter()
        .zip(names())
        .find(|(a, _)| a.stem == stem)
        .map(|(_, name)| name.as_str())
        .unwrap_or_default();
    format!("/assets/{name}")
}

/// The stylesheet's URL.
pub fn stylesheet_url() -> String {
    url_of("tobira")
}

/// The live monitor's script's URL.
pub fn monitor_script_url() -> String {
    url_of("monitor")
}

/// `GET /assets/{name}`.
pub async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some((asset, name)) = ASSETS.iter().zip(names()).find(|(_, n)| **n == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"{name}\"");
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
            HeaderValue::from_static(asset.content_type),
        )],
        asset.body,
    )
        .into_response()
}
