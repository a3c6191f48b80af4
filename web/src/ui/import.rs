//! The CSV import page: upload a file of people and cards, see the preview of
//! what each line would do, apply it, see the result.
//!
//! The previewed file reaches the apply step inside the preview page's apply
//! form (base64, with its SHA-256), not kept on the server: nothing is left
//! behind by a preview that is never applied, and any instance of the service
//! can take the apply. The digest is checked before the apply, so a file
//! changed on the way is refused with a clear message instead of being
//! imported unnoticed; only the logged-in user could change it at all (the
//! form carries the session's CSRF token), and they may import any file
//! anyway. The apply runs every check of the store again (`apply_import`),
//! and its audit entry names the same SHA-256 as the pages show.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::form_data::{self, FormField, UploadFields};
use super::i18n::Lang;
use super::page::{render, PageContext, PageError};
use super::session::PageAuthorized;
use crate::auth::Manage;
use crate::store::import::csv_file::MAX_FILE_BYTES;
use crate::store::import::{CardStep, ImportReport, PersonStep};
use crate::store::StoreError;
use crate::AppState;

/// The largest upload form read: the file (at most the import's own limit)
/// carried as base64 on the apply form, plus the form's other fields.
pub const MAX_UPLOAD_FORM: usize = MAX_FILE_BYTES / 3 * 4 + 64 * 1024;

/// The page routes that take a file upload, and their body limit.
pub fn upload_limit(path: &str) -> Option<usize> {
    matches!(path, "/import/preview" | "/import/apply").then_some(MAX_UPLOAD_FORM)
}

/// Someone who may manage configuration, on a page.
type ManagerPage = PageAuthorized<Manage>;

#[derive(Template)]
#[template(path = "import.html")]
struct UploadPage {
    ctx: PageContext,
    file_error: String,
}

fn upload_page(page: &ManagerPage, status: StatusCode, file_error: String) -> Response {
    render(
        status,
        &UploadPage {
            ctx: PageContext::signed_in(page.lang, "/import", &page.principal, &page.csrf_token),
            file_error,
        },
    )
}

/// `GET /import`.
pub async fn form(page: ManagerPage) -> Response {
    upload_page(&page, StatusCode::OK, String::new())
}

/// One line as the preview and the result show it.
#[derive(Debug, Clone)]
struct LineView {
    line: u64,
    external_id: String,
    /// `field: old → new`, for a changed person.
    changes: String,
    card: String,
    /// Why it is refused (the page language where the reason is a fixed text).
    reason: String,
}

#[derive(Template)]
#[template(path = "import_report.html")]
struct ReportPage {
    ctx: PageContext,
    applied: bool,
    lines: u64,
    created_count: u64,
    changed_count: u64,
    unchanged: u64,
    cards_issued: u64,
    refused_count: u64,
    created: Vec<LineView>,
    changed: Vec<LineView>,
    refused: Vec<LineView>,
    encoding: &'static str,
    sha256: String,
    /// The file for the apply form (base64); empty when there is nothing to apply.
    file: String,
}

fn report_page(
    page: &ManagerPage,
    report: &ImportReport,
    bytes: &[u8],
    sha256: String,
) -> ReportPage {
    let lang = page.lang;
    let mut created = Vec::new();
    let mut changed = Vec::new();
    let mut refused = Vec::new();
    for line in &report.lines {
        let card = match (line.card, line.card_uid) {
            (Some(CardStep::Issue), Some(uid)) => {
                format!("{} ({})", uid.text(), lang.t("import.card_new"))
            }
            (_, Some(uid)) => uid.text(),
            _ => String::new(),
        };
        let shown = LineView {
            line: line.line,
            external_id: line.external_id.clone().unwrap_or_default(),
            changes: line
                .changes
                .iter()
                .map(|c| {
                    format!(
                        "{}: {} → {}",
                        c.field,
                        c.old.as_deref().unwrap_or("—"),
                        c.new.as_deref().unwrap_or("—")
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
            card,
            reason: line
                .refused
                .as_deref()
                .map(|why| reason(lang, why))
                .unwrap_or_default(),
        };
        match (line.person, &line.refused) {
            (_, Some(_)) => refused.push(shown),
            (Some(PersonStep::Create), None) => created.push(shown),
            (Some(PersonStep::Change), None) => changed.push(shown),
            // An unchanged person may still get a card: listed with the changes.
            (Some(PersonStep::Unchanged), None) if line.card == Some(CardStep::Issue) => {
                changed.push(shown)
            }
            _ => {}
        }
    }
    let s = report.summary;
    let anything = s.created + s.changed + s.cards_issued > 0;
    ReportPage {
        // The language switch leads back to the upload form: the preview and
        // the result are answers to a POST, which a link cannot repeat.
        ctx: PageContext::signed_in(lang, "/import", &page.principal, &page.csrf_token),
        applied: report.applied,
        lines: s.lines,
        created_count: s.created,
        changed_count: s.changed,
        unchanged: s.unchanged,
        cards_issued: s.cards_issued,
        refused_count: s.refused,
        created,
        changed,
        refused,
        encoding: match report.encoding {
            crate::store::import::csv_file::FileEncoding::Utf8 => "UTF-8",
            crate::store::import::csv_file::FileEncoding::Utf8Bom => "UTF-8 (BOM)",
            crate::store::import::csv_file::FileEncoding::ShiftJis => "Shift_JIS",
        },
        sha256,
        file: if anything && !report.applied {
            base64::engine::general_purpose::STANDARD.encode(bytes)
        } else {
            String::new()
        },
    }
}

/// A refusal in the page language where the store's reason is one of its
/// fixed texts (the value from the file or the line number kept); any other
/// reason as the store gives it.
fn reason(lang: Lang, why: &str) -> String {
    if lang == Lang::En {
        return why.to_string();
    }
    let fixed = |key: &str, detail: &str| format!("{} {detail}", lang.t(key)).trim().to_string();
    if why.starts_with("the line has ") && why.contains("; the header has ") {
        return fixed("import.why.cells", &format!("({why})"));
    }
    if let Some(rest) = why.strip_prefix("kind: ") {
        if let Some((value, _)) = rest.split_once(" is not one of ") {
            return fixed("import.why.kind", &format!("({value})"));
        }
    }
    if let Some(rest) = why.strip_prefix("card_uid: ") {
        if let Some(value) = rest.strip_suffix(" is not 8, 14, 16 or 20 hexadecimal digits") {
            return fixed("import.why.card_uid", &format!("({value})"));
        }
    }
    if let Some(line) = why
        .strip_prefix("card_uid is on line ")
        .and_then(|r| r.strip_suffix(" already"))
    {
        return fixed("import.why.duplicate_card", line);
    }
    if let Some(line) = why
        .strip_prefix("external_id ")
        .and_then(|r| r.strip_suffix(" already"))
        .and_then(|r| r.rsplit_once(" is on line "))
        .map(|(_, line)| line)
    {
        return fixed("import.why.duplicate_id", line);
    }
    why.to_string()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The fields of an upload form as the CSRF guard read them, or 400.
fn upload_fields(
    lang: Lang,
    fields: Option<Extension<UploadFields>>,
) -> Result<Vec<FormField>, PageError> {
    fields
        .map(|Extension(UploadFields(fields))| fields)
        .ok_or(PageError::BadRequest(lang))
}

/// `POST /import/preview` (multipart: `csrf`, `file`): what the file would
/// do, with the apply form; a file that cannot be read at all is said next
/// to the file input.
pub async fn preview(
    State(state): State<AppState>,
    page: ManagerPage,
    fields: Option<Extension<UploadFields>>,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let fields = upload_fields(lang, fields)?;
    let file = fields
        .iter()
        .find(|f| f.name == "file")
        .map(|f| f.bytes.clone())
        .filter(|b| !b.is_empty());
    let Some(file) = file else {
        let why = lang.t("import.error.no_file").to_string();
        return Ok(upload_page(&page, StatusCode::BAD_REQUEST, why));
    };
    match state
        .store
        .preview_import(&page.principal.actor, &file)
        .await
    {
        Ok(report) => Ok(render(
            StatusCode::OK,
            &report_page(&page, &report, &file, sha256_hex(&file)),
        )),
        Err(StoreError::Invalid(why)) => {
            let why = format!("{} {why}", lang.t("import.error.file"));
            Ok(upload_page(&page, StatusCode::BAD_REQUEST, why))
        }
        Err(e) => Err(PageError::internal(lang, e)),
    }
}

/// `POST /import/apply` (multipart: `csrf`, `file` in base64, `sha256`): the
/// previewed file imported, and what each line did.
pub async fn apply(
    State(state): State<AppState>,
    page: ManagerPage,
    fields: Option<Extension<UploadFields>>,
) -> Result<Response, PageError> {
    let lang = page.lang;
    let fields = upload_fields(lang, fields)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(form_data::text(&fields, "file").trim())
        .ok()
        .filter(|b| !b.is_empty());
    let sent_digest = form_data::text(&fields, "sha256")
        .trim()
        .to_ascii_lowercase();
    let Some(file) = decoded.filter(|b| sha256_hex(b) == sent_digest) else {
        let why = lang.t("import.error.changed").to_string();
        return Ok(upload_page(&page, StatusCode::BAD_REQUEST, why));
    };
    match state.store.apply_import(&page.principal.actor, &file).await {
        Ok(report) => Ok(render(
            StatusCode::OK,
            &report_page(&page, &report, &file, sent_digest),
        )),
        Err(StoreError::Invalid(why)) => {
            let why = format!("{} {why}", lang.t("import.error.file"));
            Ok(upload_page(&page, StatusCode::BAD_REQUEST, why))
        }
        Err(e) => Err(PageError::internal(lang, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_reasons_are_shown_in_japanese_and_others_as_the_store_says() {
        let ja = |why: &str| reason(Lang::Ja, why);
        assert_eq!(
            ja("external_id \"E1\" is on line 2 already"),
            "同じ external_id が前の行にあります: 行 2"
        );
        assert_eq!(
            ja("card_uid is on line 3 already"),
            "同じ card_uid が前の行にあります: 行 3"
        );
        assert!(
            ja("kind: \"boss\" is not one of staff, contractor, visitor, citizen")
                .starts_with("kind（区分）が")
        );
        assert!(
            ja("card_uid: \"XYZ\" is not 8, 14, 16 or 20 hexadecimal digits")
                .ends_with("(\"XYZ\")")
        );
        assert!(ja("the line has 2 cells; the header has 3").starts_with("セルの数"));
        assert_eq!(ja("name: too long"), "name: too long");
        assert_eq!(
            reason(Lang::En, "card_uid is on line 3 already"),
            "card_uid is on line 3 already"
        );
    }

    #[test]
    fn only_the_upload_routes_take_large_forms() {
        assert!(upload_limit("/import/preview").is_some_and(|l| l > MAX_FILE_BYTES));
        assert!(upload_limit("/import/apply").is_some());
        assert_eq!(upload_limit("/users/new"), None);
    }
}
