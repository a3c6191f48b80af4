//! The page languages: Japanese by default, English by `Accept-Language` or
//! the remembered switch, and the catalog of every page text in both.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use crate::store::auth::Role;

/// The cookie that remembers the language switch.
pub const LANG_COOKIE: &str = "tobira_lang";

/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Japanese, the default.
    Ja,
    /// English.
    En,
}

impl Lang {
    /// All languages, the default first.
    pub const ALL: [Lang; 2] = [Lang::Ja, Lang::En];

    /// The language's code (`ja`, `en`), as in `<html lang>`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Ja => "ja",
            Self::En => "en",
        }
    }

    /// Parses a language code.
    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "ja" => Some(Self::Ja),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// The text of `key`; `??` if the catalog lacks it (a unit test keeps
    /// every key the templates use in the catalog, and the page tests look
    /// for `??` on every page).
    pub fn t(self, key: &str) -> &'static str {
        match catalog_index().get(key) {
            Some((ja, en)) => match self {
                Self::Ja => ja,
                Self::En => en,
            },
            None => "??",
        }
    }

    /// The language of a request: the remembered switch, then the first of
    /// Japanese and English that `Accept-Language` prefers, then Japanese.
    pub fn of(headers: &HeaderMap) -> Lang {
        if let Some(lang) = cookie(headers, LANG_COOKIE).and_then(Lang::parse) {
            return lang;
        }
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(preferred)
            .unwrap_or(Lang::Ja)
    }
}

/// The language `Accept-Language` ranks highest among ours (ties: the one
/// listed first).
fn preferred(accept: &str) -> Option<Lang> {
    let mut best: Option<(f32, Lang)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let primary = tag.split('-').next().unwrap_or("");
        let Some(lang) = Lang::parse(primary) else {
            continue;
        };
        if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, lang)| lang)
}

/// The value of cookie `name` in the request, if sent.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Lang::of(&parts.headers))
    }
}

/// The catalog key of a role's name.
pub fn role_key(role: Role) -> &'static str {
    match role {
        Role::Admin => "role.admin",
        Role::Facilities => "role.facilities",
        Role::Operator => "role.operator",
        Role::Security => "role.security",
    }
}

mod alarms;
mod approvals;
mod audit;
mod base;
mod history;
mod import;
mod lockdown;
mod monitor;
mod reports;
mod resources;
mod reviews;
mod users;

/// Every page text: key, Japanese, English; one part per group of pages, so
/// that work on different pages does not meet in one list.
pub const CATALOG_PARTS: &[&[(&str, &str, &str)]] = &[
    base::TEXTS,
    resources::TEXTS,
    users::TEXTS,
    import::TEXTS,
    monitor::TEXTS,
    alarms::TEXTS,
    history::TEXTS,
    approvals::TEXTS,
    lockdown::TEXTS,
    audit::TEXTS,
    reviews::TEXTS,
    reports::TEXTS,
];

/// Every catalog entry, all parts.
pub fn catalog() -> impl Iterator<Item = &'static (&'static str, &'static str, &'static str)> {
    CATALOG_PARTS.iter().flat_map(|part| part.iter())
}

/// The catalog by key (built once; pages look up hundreds of texts).
fn catalog_index() -> &'static HashMap<&'static str, (&'static str, &'static str)> {
    static INDEX: OnceLock<HashMap<&'static str, (&'static str, &'static str)>> = OnceLock::new();
    INDEX.get_or_init(|| catalog().map(|(k, ja, en)| (*k, (*ja, *en))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `t("…")` in every template file, and every catalog-looking
    /// key (`"field.name"`) in the page code, which hands keys to templates.
    fn template_keys() -> Vec<(String, String)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut keys = Vec::new();
        let mut files = 0;
        let mut dirs = vec![root.join("templates"), root.join("src/ui")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                files += 1;
                let is_code = path.extension().is_some_and(|e| e == "rs");
                if is_code && path.parent().is_some_and(|p| p.ends_with("i18n")) {
                    continue;
                }
                let opener = if is_code { "\"" } else { "t(\"" };
                for (i, _) in text.match_indices(opener) {
                    let rest = &text[i + opener.len()..];
                    let Some(end) = rest.find('"') else { continue };
                    let key = &rest[..end];
                    let catalog_like = key.split_once('.').is_some_and(|(a, b)| {
                        !a.is_empty()
                            && !b.is_empty()
                            && key.bytes().all(|c| {
                                c.is_ascii_lowercase()
                                    || c.is_ascii_digit()
                                    || c == b'.'
                                    || c == b'_'
                            })
                    });
                    let known_prefix = [
                        "res.",
                        "field.",
                        "hint.",
                        "form.",
                        "list.",
                        "level.",
                        "apb.",
                        "rule.",
                        "threat.",
                        "kind.",
                        "door.",
                        "state.",
                        "card.",
                        "controller.",
                        "holidays.",
                        "levels.",
                        "person.",
                        "group.",
                        "day.",
                        "unit.",
                        "nav.",
                        "role.",
                        "error.",
                        "login.",
                        "password.",
                        "home.",
                        "lang.",
                        "site.",
                        "skip.",
                        "hist.",
                        "inside.",
                    ]
                    .iter()
                    .any(|p| key.starts_with(p));
                    let file_name = key.ends_with(".html") || key.ends_with(".css");
                    if !is_code || (catalog_like && known_prefix && !file_name) {
                        keys.push((path.display().to_string(), key.to_string()));
                    }
                }
            }
        }
        assert!(files >= 10, "templates found in {}", root.display());
        keys
    }

    #[test]
    fn every_key_a_template_uses_has_japanese_and_english_text() {
        let mut used = template_keys();
        assert!(used.len() > 20, "keys found: {}", used.len());
        for role in [
            Role::Admin,
            Role::Facilities,
            Role::Operator,
            Role::Security,
        ] {
            used.push(("role_key".into(), role_key(role).into()));
        }
        for (file, key) in &used {
            let entry = catalog().find(|(k, _, _)| k == key);
            let Some((_, ja, en)) = entry else {
                panic!("{file} uses {key}, which the catalog lacks");
            };
            assert!(!ja.trim().is_empty(), "{key} has no Japanese text");
            assert!(!en.trim().is_empty(), "{key} has no English text");
        }
    }

    #[test]
    fn catalog_keys_are_unique() {
        let all: Vec<_> = catalog().collect();
        for (i, (key, _, _)) in all.iter().enumerate() {
            assert!(all[i + 1..].iter().all(|(k, _, _)| k != key), "{key} twice");
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn japanese_unless_the_browser_prefers_english_or_the_switch_says_so() {
        assert_eq!(Lang::of(&headers(&[])), Lang::Ja);
        assert_eq!(
            Lang::of(&headers(&[("accept-language", "en-US,en;q=0.9")])),
            Lang::En
        );
        assert_eq!(
            Lang::of(&headers(&[("accept-language", "fr, en;q=0.5, ja;q=0.8")])),
            Lang::Ja
        );
        assert_eq!(Lang::of(&headers(&[("accept-language", "de")])), Lang::Ja);
        assert_eq!(
            Lang::of(&headers(&[
                ("accept-language", "en"),
                ("cookie", "a=b; tobira_lang=ja")
            ])),
            Lang::Ja
        );
        assert_eq!(
            Lang::of(&headers(&[("cookie", "tobira_lang=xx")])),
            Lang::Ja
        );
    }
}
