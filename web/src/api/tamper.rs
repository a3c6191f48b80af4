//! Handlers for tamper evidence: signed checkpoints and the verification of every chain.

use axum::extract::State;
use axum::Json;

use super::{AdminReadErrors, Paging, ReadErrors};
use crate::auth::{Admin, Caller};
use crate::error::{WebError, WebResult};
use crate::json::QueryParams;
use crate::store::checkpoints::{Checkpoint, CheckpointRun};
use crate::store::now_ms;
use crate::store::resources::{page_size, Page};
use crate::store::verify::Verification;
use crate::AppState;

/// List signed checkpoints, oldest first (the cursor is the last id seen).
#[utoipa::path(get, path = "/api/v1/checkpoints", tag = "review", params(Paging),
    responses((status = 200, description = "A page of checkpoints", body = Page<Checkpoint>), ReadErrors))]
pub async fn list_checkpoints(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(p): QueryParams<Paging>,
) -> WebResult<Json<Page<Checkpoint>>> {
    let limit = page_size(p.limit)?;
    let after = match p.cursor() {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| WebError::BadRequest("bad cursor".into()))?,
        ),
    };
    let mut items = state.store.list_checkpoints(after, limit + 1).await?;
    let more = items.len() > usize::try_from(limit).unwrap_or(0);
    items.truncate(usize::try_from(limit).unwrap_or(0));
    let next = if more {
        items.last().map(|c| c.id.to_string())
    } else {
        None
    };
    Ok(Json(Page { items, next }))
}

/// Sign a checkpoint of every chain whose head moved since its last one (admin).
#[utoipa::path(post, path = "/api/v1/checkpoints", tag = "review",
    responses((status = 200, description = "The checkpoints made, and chains refused because they no longer reach their last checkpoint", body = CheckpointRun), AdminReadErrors))]
pub async fn make_checkpoints(
    State(state): State<AppState>,
    _admin: Admin,
) -> WebResult<Json<CheckpointRun>> {
    Ok(Json(
        state
            .store
            .make_checkpoints(&state.signer, now_ms())
            .await?,
    ))
}

/// Re-check every chain from its rows: links, event columns against their
/// bodies, and that each chain reaches its signed checkpoints. Names the
/// first bad row of each chain. (For a large database, `tobira central verify`
/// is not bound by the request timeout.)
#[utoipa::path(get, path = "/api/v1/verify", tag = "review",
    responses((status = 200, description = "What was checked and the first problem of each chain", body = Verification), ReadErrors))]
pub async fn verify(
    State(state): State<AppState>,
    _caller: Caller,
) -> WebResult<Json<Verification>> {
    Ok(Json(
        state
            .store
            .verify_chains(&state.signer.public_key())
            .await?,
    ))
}
