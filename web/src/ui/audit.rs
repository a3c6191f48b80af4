//! The audit trail `/audit`: the admin audit log searched and read as
//! who changed what from what to what, and the button that re-checks every
//! hash chain (`POST /audit/verify`) and names the first broken link.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::history::day_start;
use super::i18n::Lang;
use super::page::{local_time, query_value, render, PageContext, PageError};
use super::session::Signed;
use crate::store::audit::AuditEntry;
use crate::store::audit_search::{AuditFilter, MAX_FILTER_TEXT};
use crate::store::resources::page_size;
use crate::store::verify::{ChainReport, Problem, Verification};
use crate::store::StoreError;
use crate::AppState;

/// The search form as typed (every field text, empty when not used).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    seq: String,
    #[serde(default)]
    cursor: String,
}

impl AuditQuery {
    /// A link to `/audit` with these filters (no cursor) and `extra`.
    fn link(&self, extra: &[(&str, &str)]) -> String {
        let mut parts: Vec<String> = [
            ("actor", &self.actor),
            ("action", &self.action),
            ("target", &self.target),
            ("text", &self.text),
            ("from", &self.from),
            ("to", &self.to),
            ("seq", &self.seq),
        ]
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}={}", query_value(v.trim())))
        .collect();
        parts.extend(extra.iter().map(|(k, v)| format!("{k}={}", query_value(v))));
        if parts.is_empty() {
            "/audit".to_string()
        } else {
            format!("/audit?{}", parts.join("&"))
        }
    }

    /// The store's filter, or the fields that cannot be read (field, catalog key).
    fn filter(&self, time_zone: &str) -> Result<AuditFilter, Vec<(&'static str, &'static str)>> {
        let mut problems = Vec::new();
        let mut filter = AuditFilter::default();
        for (name, typed, slot) in [
            ("actor", &self.actor, &mut filter.actor),
            ("action", &self.action, &mut filter.action),
            ("target", &self.target, &mut filter.target),
            ("text", &self.text, &mut filter.text),
        ] {
            let typed = typed.trim();
            if typed.chars().count() > MAX_FILTER_TEXT {
                problems.push((name, "audit.error.text"));
            } else if !typed.is_empty() {
                *slot = Some(typed.to_string());
            }
        }
        for (name, typed, next) in [("from", &self.from, false), ("to", &self.to, true)] {
            if typed.trim().is_empty() {
                continue;
            }
            match day_start(typed, time_zone, next) {
                Some(ms) if next => filter.to = Some(ms),
                Some(ms) => filter.from = Some(ms),
                None => problems.push((name, "audit.error.date")),
            }
        }
        match self.seq.trim() {
            "" => {}
            t => match t.parse::<i64>().ok().filter(|s| *s > 0) {
                Some(seq) => filter.seq = Some(seq),
                None => problems.push(("seq", "audit.error.seq")),
            },
        }
        if let (Some(from), Some(to)) = (filter.from, filter.to) {
            if to <= from {
                problems.push(("to", "audit.error.period"));
            }
        }
        if problems.is_empty() {
            Ok(filter)
        } else {
            Err(problems)
        }
    }
}

/// One field of the search form.
#[derive(Debug, Clone)]
struct Field {
    name: &'static str,
    label_key: &'static str,
    hint_key: &'static str,
    /// `text`, `date` or `number`.
    input: &'static str,
    value: String,
    error_key: &'static str,
}

fn fields(q: &AuditQuery, problems: &[(&'static str, &'static str)]) -> Vec<Field> {
    let field = |name, label_key, hint_key, input, value: &str| Field {
        name,
        label_key,
        hint_key,
        input,
        value: value.trim().to_string(),
        error_key: problems
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, key)| key),
    };
    vec![
        field("actor", "audit.actor", "", "text", &q.actor),
        field(
            "action",
            "audit.action",
            "audit.action_hint",
            "text",
            &q.action,
        ),
        field(
            "target",
            "audit.target",
            "audit.target_hint",
            "text",
            &q.target,
        ),
        field("text", "audit.text", "", "text", &q.text),
        field("from", "audit.from", "", "date", &q.from),
        field("to", "audit.to", "", "date", &q.to),
        field("seq", "audit.seq", "", "number", &q.seq),
    ]
}

/// One line of an entry's change: `field: old → new`, or `field: value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeLine {
    /// The field (empty: the value as a whole).
    pub field: String,
    /// The value before (only for a change).
    pub old: Option<String>,
    /// The value after, or the value.
    pub new: String,
}

/// A JSON value as text: strings bare, `—` for nothing, lists joined.
fn value_text(v: &Value) -> String {
    match v {
        Value::Null => "—".to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(_) | Value::Number(_) => v.to_string(),
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(", "),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}: {}", value_text(v)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// `prefix.key: value` lines of an object, nested objects flattened.
fn plain_lines(prefix: &str, map: &serde_json::Map<String, Value>, out: &mut Vec<ChangeLine>) {
    for (k, v) in map {
        let field = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner) if !inner.is_empty() => plain_lines(&field, inner, out),
            _ => out.push(ChangeLine {
                field,
                old: None,
                new: value_text(v),
            }),
        }
    }
}

/// `old → new`, field by field where both are objects.
fn old_new_lines(old: &Value, new: &Value, out: &mut Vec<ChangeLine>) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let keys = n.keys().chain(o.keys().filter(|k| !n.contains_key(*k)));
            let mut lines: Vec<ChangeLine> = keys
                .map(|k| {
                    let (before, after) = (
                        o.get(k).unwrap_or(&Value::Null),
                        n.get(k).unwrap_or(&Value::Null),
                    );
                    ChangeLine {
                        field: k.clone(),
                        old: (before != after).then(|| value_text(before)),
                        new: value_text(after),
                    }
                })
                .collect();
            // What changed first, what stayed after it.
            lines.sort_by_key(|l| l.old.is_none());
            out.extend(lines);
        }
        _ => out.push(ChangeLine {
            field: String::new(),
            old: Some(value_text(old)),
            new: value_text(new),
        }),
    }
}

/// An entry's detail as lines: `old`/`new` (a role, an approval) and
/// `from`/`to` (a card's state) as changes, a read's query as its filters,
/// any other field as itself; text that is not JSON as it is.
pub fn change_lines(detail: &str) -> Vec<ChangeLine> {
    let mut out = Vec::new();
    let map = match serde_json::from_str::<Value>(detail) {
        Ok(Value::Object(map)) => map,
        Ok(Value::Null) | Err(_) if detail.trim().is_empty() => return out,
        Ok(other) => {
            out.push(ChangeLine {
                field: String::new(),
                old: None,
                new: value_text(&other),
            });
            return out;
        }
        Err(_) => {
            out.push(ChangeLine {
                field: String::new(),
                old: None,
                new: detail.to_string(),
            });
            return out;
        }
    };
    let mut rest = map.clone();
    for (old, new) in [("old", "new"), ("from", "to")] {
        if let (Some(o), Some(n)) = (map.get(old), map.get(new)) {
            if old == "from" && (o.is_object() || n.is_object()) {
                continue;
            }
            old_new_lines(o, n, &mut out);
            rest.remove(old);
            rest.remove(new);
        }
    }
    // A read's filter is the request's query text: shown as its fields.
    if let Some(Value::String(query)) = map.get("query") {
        rest.remove("query");
        if let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(query) {
            for (k, v) in pairs.into_iter().filter(|(_, v)| !v.is_empty()) {
                out.push(ChangeLine {
                    field: k,
                    old: None,
                    new: v,
                });
            }
        }
    }
    plain_lines("", &rest, &mut out);
    out
}

/// The page of a target (`card:04A0…`, `person:12`, …), where one exists.
fn target_href(target: &str, users: &[(String, i64)]) -> String {
    let Some((kind, key)) = target.split_once(':') else {
        return String::new();
    };
    let numeric = !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit());
    let slug = match kind {
        "card" if !key.is_empty() && key.bytes().all(|b| b.is_ascii_hexdigit()) => {
            return format!("/cards/{key}")
        }
        "user" => {
            return users
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, id)| format!("/users/{id}"))
                .unwrap_or_default()
        }
        "alarm" if numeric => return format!("/alarms#alarm-{key}"),
        "change" if numeric => return format!("/approvals/{key}"),
        "controller" if numeric => return format!("/controllers/{key}"),
        "person" => "people",
        "zone" => "zones",
        "door" => "doors",
        "site" => "sites",
        "schedule" => "schedules",
        "group" => "groups",
        "grant" => "grants",
        "booking" => "bookings",
        _ => return String::new(),
    };
    if numeric {
        format!("/{slug}/{key}")
    } else {
        String::new()
    }
}

/// An action in words, or "" when the catalog has none (the name shows anyway).
fn action_label(lang: Lang, action: &str) -> &'static str {
    match lang.t(&format!("audit.action.{action}")) {
        "??" => "",
        label => label,
    }
}

/// One entry as the table shows it.
#[derive(Debug, Clone)]
struct EntryRow {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    action_label: &'static str,
    target: String,
    target_href: String,
    lines: Vec<ChangeLine>,
}

fn entry_row(e: AuditEntry, lang: Lang, zone: &str, users: &[(String, i64)]) -> EntryRow {
    EntryRow {
        seq: e.seq,
        at: local_time(e.at, zone),
        action_label: action_label(lang, &e.action),
        target_href: target_href(&e.target, users),
        lines: change_lines(&e.detail),
        actor: e.actor,
        action: e.action,
        target: e.target,
    }
}

#[derive(Template)]
#[template(path = "audit/list.html")]
struct AuditPage {
    ctx: PageContext,
    fields: Vec<Field>,
    entries: Vec<EntryRow>,
    older: String,
    newest: String,
}

/// Entries per page.
const PAGE: i64 = 100;

/// (user name, id) of every user, for links to their pages (admins only see those).
async fn user_links(state: &AppState, page: &Signed) -> Result<Vec<(String, i64)>, StoreError> {
    if !PageContext::signed_in(page.lang, "", &page.principal, "").is_admin {
        return Ok(Vec::new());
    }
    Ok(state
        .store
        .list_users()
        .await?
        .into_iter()
        .map(|u| (u.username, u.id))
        .collect())
}

/// `GET /audit`: the audit log, newest first, searched with the form.
pub async fn list(
    State(state): State<AppState>,
    page: Signed,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let Query(q) = q.map_err(|_| PageError::BadRequest(lang))?;
    let internal = |e: StoreError| PageError::internal(lang, e);
    let zone = state.store.display_time_zone().await.map_err(internal)?;
    let ctx = PageContext::signed_in(lang, "/audit", &page.principal, &page.csrf_token)
        .in_time_zone(&zone);
    let filter = match q.filter(&zone) {
        Ok(filter) => filter,
        Err(problems) => {
            let shown = AuditPage {
                ctx,
                fields: fields(&q, &problems),
                entries: Vec::new(),
                older: String::new(),
                newest: String::new(),
            };
            return Ok(render(StatusCode::BAD_REQUEST, &shown));
        }
    };
    let before = match q.cursor.trim() {
        "" => None,
        c => Some(
            c.parse::<i64>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or(PageError::BadRequest(lang))?,
        ),
    };
    let limit = page_size(Some(PAGE)).map_err(|e| PageError::internal(lang, e))?;
    let mut found = state
        .store
        .search_audit(&filter, before, limit + 1)
        .await
        .map_err(|e| match e {
            StoreError::Invalid(_) => PageError::BadRequest(lang),
            e => internal(e),
        })?;
    let more = found.len() > usize::try_from(limit).unwrap_or(0);
    found.truncate(usize::try_from(limit).unwrap_or(0));
    let users = user_links(&state, &page).await.map_err(internal)?;
    let older = match (more, found.last()) {
        (true, Some(last)) => q.link(&[("cursor", &last.seq.to_string())]),
        _ => String::new(),
    };
    let shown = AuditPage {
        ctx,
        fields: fields(&q, &[]),
        entries: found
            .into_iter()
            .map(|e| entry_row(e, lang, &zone, &users))
            .collect(),
        older,
        newest: if before.is_some() {
            q.link(&[])
        } else {
            String::new()
        },
    };
    Ok(render(StatusCode::OK, &shown))
}

/// One chain's report as the result page shows it.
#[derive(Debug, Clone)]
struct ChainRow {
    chain: String,
    /// `audit.chain_admin` or `audit.chain_controller`.
    kind_key: &'static str,
    records: i64,
    archived: i64,
    head: String,
    checkpoints: i64,
    reaches: String,
    gaps: String,
    problem: String,
}

/// The first problem, with a link to its row.
#[derive(Debug, Clone)]
struct BrokenLink {
    chain: String,
    seq: String,
    checkpoint: String,
    what: String,
    href: String,
    href_key: &'static str,
}

/// The controller a chain (`controller:ID` or `controller:ID@EPOCH`) is of.
fn controller_of(chain: &str) -> Option<i64> {
    let rest = chain.strip_prefix("controller:")?;
    rest.split('@').next()?.parse().ok()
}

fn chain_row(r: &ChainReport) -> ChainRow {
    let text = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "—".into());
    ChainRow {
        kind_key: if controller_of(&r.chain).is_some() {
            "audit.chain_controller"
        } else {
            "audit.chain_admin"
        },
        chain: r.chain.clone(),
        records: r.records,
        archived: r.archived,
        head: text(r.head),
        checkpoints: r.checkpoints,
        reaches: text(r.reaches_checkpoint),
        gaps: r
            .gaps
            .iter()
            .map(|g| {
                if g.from == g.to {
                    g.from.to_string()
                } else {
                    format!("{}–{}", g.from, g.to)
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
        problem: r
            .problem
            .as_ref()
            .map(|p| p.what.clone())
            .unwrap_or_default(),
    }
}

fn broken_link(p: &Problem) -> BrokenLink {
    let (href, href_key) = match (controller_of(&p.chain), p.seq) {
        (Some(controller), _) => (format!("/controllers/{controller}"), "audit.show_events"),
        (None, Some(seq)) => (format!("/audit?seq={seq}"), "audit.show_row"),
        (None, None) => (String::new(), ""),
    };
    BrokenLink {
        chain: p.chain.clone(),
        seq: p.seq.map(|s| s.to_string()).unwrap_or_default(),
        checkpoint: p.checkpoint.map(|c| c.to_string()).unwrap_or_default(),
        what: p.what.clone(),
        href,
        href_key,
    }
}

#[derive(Template)]
#[template(path = "audit/verify.html")]
struct VerifyPage {
    ctx: PageContext,
    ok: bool,
    chains: Vec<ChainRow>,
    first: Option<BrokenLink>,
}

/// `POST /audit/verify`: re-checks every chain (paged, see store::verify),
/// records that it was run, and shows what it found.
pub async fn verify(State(state): State<AppState>, page: Signed) -> Result<Response, PageError> {
    let lang = page.lang;
    let internal = |e: StoreError| PageError::internal(lang, e);
    let found: Verification = state
        .store
        .verify_chains(&state.signer.public_key())
        .await
        .map_err(internal)?;
    state
        .store
        .audit_verification(&page.principal.actor, &found)
        .await
        .map_err(internal)?;
    let ctx = PageContext::signed_in(lang, "/audit", &page.principal, &page.csrf_token);
    let shown = VerifyPage {
        ctx,
        ok: found.ok,
        chains: found.chains.iter().map(chain_row).collect(),
        first: found.problems.first().map(broken_link),
    };
    Ok(render(StatusCode::OK, &shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(field: &str, old: Option<&str>, new: &str) -> ChangeLine {
        ChangeLine {
            field: field.into(),
            old: old.map(String::from),
            new: new.into(),
        }
    }

    #[test]
    fn details_read_as_old_to_new_field_by_field() {
        assert_eq!(
            change_lines(r#"{"old":"operator","new":"security"}"#),
            vec![line("", Some("operator"), "security")]
        );
        assert_eq!(
            change_lines(r#"{"old":{"disabled":false},"new":{"disabled":true}}"#),
            vec![line("disabled", Some("false"), "true")]
        );
        assert_eq!(
            change_lines(r#"{"from":"active","to":"lost","note":"left on the train"}"#),
            vec![
                line("", Some("active"), "lost"),
                line("note", None, "left on the train")
            ]
        );
        assert_eq!(
            change_lines(
                r#"{"kind":"site_threat","old":{"threat":"normal","name":"HQ"},"new":{"threat":"high","name":"HQ"}}"#
            ),
            vec![
                line("threat", Some("normal"), "high"),
                line("name", None, "HQ"),
                line("kind", None, "site_threat")
            ]
        );
        assert_eq!(
            change_lines(r#"{"query":"person=12&from=2027-01-01&to=","rows":3}"#),
            vec![
                line("person", None, "12"),
                line("from", None, "2027-01-01"),
                line("rows", None, "3")
            ]
        );
        assert_eq!(
            change_lines(r#"{"summary":{"created":2,"updated":1},"sha256":"ab"}"#),
            vec![
                line("sha256", None, "ab"),
                line("summary.created", None, "2"),
                line("summary.updated", None, "1")
            ]
        );
        assert_eq!(change_lines("{}"), Vec::new());
        assert_eq!(change_lines("not json"), vec![line("", None, "not json")]);
    }

    #[test]
    fn targets_link_to_their_pages() {
        let users = vec![("sato".to_string(), 4)];
        assert_eq!(target_href("person:12", &users), "/people/12");
        assert_eq!(target_href("card:04A23B1C", &users), "/cards/04A23B1C");
        assert_eq!(target_href("user:sato", &users), "/users/4");
        assert_eq!(target_href("user:ghost", &users), "");
        assert_eq!(target_href("alarm:7", &users), "/alarms#alarm-7");
        assert_eq!(target_href("change:3", &users), "/approvals/3");
        assert_eq!(target_href("zone:x", &users), "");
        assert_eq!(target_href("events", &users), "");
        assert_eq!(target_href("site:1/holiday:2027-01-01", &users), "");
        assert_eq!(controller_of("controller:2@3"), Some(2));
        assert_eq!(controller_of("admin_audit"), None);
    }

    #[test]
    fn the_form_is_read_in_the_sites_zone_and_bad_fields_are_named() {
        let q = AuditQuery {
            action: " card. ".into(),
            from: "2027-01-15".into(),
            to: "2027-01-15".into(),
            ..AuditQuery::default()
        };
        let f = q.filter("Asia/Tokyo").unwrap();
        assert_eq!(f.action.as_deref(), Some("card."));
        assert_eq!(f.from.map(|m| m.get()), Some(1_799_938_800_000));
        assert_eq!(f.to.map(|m| m.get()), Some(1_799_938_800_000 + 86_400_000));
        let bad = AuditQuery {
            from: "15/01/2027".into(),
            seq: "0".into(),
            text: "x".repeat(201),
            ..AuditQuery::default()
        };
        assert_eq!(
            bad.filter("Asia/Tokyo").unwrap_err(),
            vec![
                ("text", "audit.error.text"),
                ("from", "audit.error.date"),
                ("seq", "audit.error.seq")
            ]
        );
        assert_eq!(
            q.link(&[("cursor", "5")]),
            "/audit?action=card.&from=2027-01-15&to=2027-01-15&cursor=5"
        );
    }
}
