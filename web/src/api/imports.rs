//! Handlers for the bulk import of people and cards from CSV: preview, apply.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;

use super::ImportErrors;
use crate::auth::Manager;
use crate::error::{WebError, WebResult};
use crate::store::import::ImportReport;
use crate::AppState;

/// The CSV body: `Content-Type: text/csv` (any charset parameter is ignored:
/// the encoding is detected), at most the body limit.
fn csv_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> WebResult<Bytes> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ctype.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("text/csv") {
        return Err(WebError::BadRequest(
            "send the file as the body with Content-Type: text/csv".into(),
        ));
    }
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            WebError::TooLarge
        } else {
            WebError::BadRequest(e.body_text())
        }
    })
}

/// Show what importing a CSV file of people and cards would do, line by line; changes nothing.
///
/// The columns are named by the header: `external_id`, `name`, `kind` (required),
/// `organisation`, `card_uid`, `card_valid_from`, `card_valid_until`
/// (see docs/api.md, "Bulk import"). UTF-8 (with or without BOM) or Shift_JIS.
#[utoipa::path(post, path = "/api/v1/imports/people/preview", tag = "people",
    request_body(content = String, content_type = "text/csv", description = "The CSV file, at most 4 MiB and 10000 lines",
        example = json!("external_id,name,kind,organisation,card_uid\nE001,佐藤 花子,staff,総務課,04A23B1C\n")),
    responses((status = 200, description = "What each line would do", body = ImportReport), ImportErrors))]
pub async fn preview_people_import(
    State(state): State<AppState>,
    caller: Manager,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> WebResult<Json<ImportReport>> {
    let csv = csv_body(&headers, body)?;
    let actor = caller.actor().to_owned();
    Ok(Json(state.store.preview_import(&actor, &csv).await?))
}

/// Import a CSV file of people and cards in one transaction: lines that are not refused are written, refused ones are reported.
///
/// Same file format as the preview; the store is checked again, so the
/// answer may differ from an earlier preview if the store changed meanwhile.
#[utoipa::path(post, path = "/api/v1/imports/people/apply", tag = "people",
    request_body(content = String, content_type = "text/csv", description = "The CSV file, at most 4 MiB and 10000 lines",
        example = json!("external_id,name,kind,organisation,card_uid\nE001,佐藤 花子,staff,総務課,04A23B1C\n")),
    responses((status = 200, description = "What each line did", body = ImportReport), ImportErrors))]
pub async fn apply_people_import(
    State(state): State<AppState>,
    caller: Manager,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> WebResult<Json<ImportReport>> {
    let csv = csv_body(&headers, body)?;
    let actor = caller.actor().to_owned();
    Ok(Json(state.store.apply_import(&actor, &csv).await?))
}
