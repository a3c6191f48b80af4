//! Handlers for alarms and the admin audit log.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{BodyActionErrors, Paging, ReadErrors};
use crate::auth::{Caller, Operator};
use crate::error::{WebError, WebResult};
use crate::json::{Input, PathParam, QueryParams};
use crate::store::alarms::{Alarm, AlarmState};
use crate::store::audit::AuditEntry;
use crate::store::audit_search::AuditFilter;
use crate::store::resources::{page_size, Id, Page};
use crate::AppState;

/// Alarm list filters.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlarmFilter {
    /// `open` (default: not acknowledged), `active` (not cleared), `cleared` or `all`.
    pub state: Option<AlarmState>,
}

/// The audit chain's state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditVerification {
    /// Whether every link checks out.
    pub ok: bool,
    /// Entries checked (up to the break, if any).
    pub entries: i64,
    /// The first entry whose link does not check out.
    pub broken_at: Option<i64>,
}

/// List alarms, newest first.
#[utoipa::path(get, path = "/api/v1/alarms", tag = "review", params(AlarmFilter, Paging),
    responses((status = 200, description = "A page of alarms", body = Page<Alarm>), ReadErrors))]
pub async fn list_alarms(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(f): QueryParams<AlarmFilter>,
    QueryParams(p): QueryParams<Paging>,
) -> WebResult<Json<Page<Alarm>>> {
    let limit = page_size(p.limit)?;
    Ok(Json(
        state
            .store
            .list_alarms(f.state.unwrap_or_default(), limit, p.cursor())
            .await?,
    ))
}

/// What the desk found or did.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlarmComment {
    /// Free text, at most 1000 characters; required to acknowledge.
    #[serde(default)]
    pub comment: String,
}

/// Acknowledge an open alarm, saying what was found or done.
#[utoipa::path(post, path = "/api/v1/alarms/{id}/ack", tag = "review", params(("id" = Id, Path, description = "Alarm id")),
    request_body = AlarmComment,
    responses((status = 200, description = "The alarm", body = Alarm), BodyActionErrors))]
pub async fn ack_alarm(
    State(state): State<AppState>,
    caller: Operator,
    PathParam(id): PathParam<Id>,
    Input(body): Input<AlarmComment>,
) -> WebResult<Json<Alarm>> {
    let actor = caller.actor().to_owned();
    Ok(Json(
        state.store.ack_alarm(&actor, id, &body.comment).await?,
    ))
}

/// Clear an acknowledged alarm whose cause is gone (the door shut again,
/// the controller back); 409 while the cause is still there.
#[utoipa::path(post, path = "/api/v1/alarms/{id}/clear", tag = "review", params(("id" = Id, Path, description = "Alarm id")),
    request_body = AlarmComment,
    responses((status = 200, description = "The alarm", body = Alarm), BodyActionErrors))]
pub async fn clear_alarm(
    State(state): State<AppState>,
    caller: Operator,
    PathParam(id): PathParam<Id>,
    Input(body): Input<AlarmComment>,
) -> WebResult<Json<Alarm>> {
    let actor = caller.actor().to_owned();
    Ok(Json(
        state.store.clear_alarm(&actor, id, &body.comment).await?,
    ))
}

/// List admin audit entries, newest first; filter by actor, action (or an
/// action prefix ending in `.`), target, words in the detail, period or seq.
#[utoipa::path(get, path = "/api/v1/audit", tag = "review", params(AuditFilter, Paging),
    responses((status = 200, description = "A page of audit entries", body = Page<AuditEntry>), ReadErrors))]
pub async fn list_audit(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(filter): QueryParams<AuditFilter>,
    QueryParams(p): QueryParams<Paging>,
) -> WebResult<Json<Page<AuditEntry>>> {
    let limit = page_size(p.limit)?;
    let before = match p.cursor() {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| WebError::BadRequest("bad cursor".into()))?,
        ),
    };
    let mut items = state.store.search_audit(&filter, before, limit + 1).await?;
    let more = items.len() > usize::try_from(limit).unwrap_or(0);
    items.truncate(usize::try_from(limit).unwrap_or(0));
    let next = if more {
        items.last().map(|e| e.seq.to_string())
    } else {
        None
    };
    Ok(Json(Page { items, next }))
}

/// Walk the whole audit chain and say where it breaks, if it does.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "review",
    responses((status = 200, description = "The chain's state", body = AuditVerification), ReadErrors))]
pub async fn verify_audit(
    State(state): State<AppState>,
    _caller: Caller,
) -> WebResult<Json<AuditVerification>> {
    Ok(Json(match state.store.verify_audit().await? {
        Ok(entries) => AuditVerification {
            ok: true,
            entries,
            broken_at: None,
        },
        Err(seq) => AuditVerification {
            ok: false,
            entries: seq - 1,
            broken_at: Some(seq),
        },
    }))
}
