//! The controllers' sync API (`/sync/v1`): signed snapshots and deltas, a
//! long-poll for urgent changes, event upload, and the passages other
//! controllers recorded in the caller's zones. Every answer that confirms or
//! changes policy is signed and repeats the caller's nonce, so a proxy can
//! neither forge "up to date" nor replay an older answer.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tobira_firmware::{ControllerId, Timestamp};
use tobira_protocol::{
    nonce_is_valid, EnrollmentJobs, EnrollmentOutcome, EventBatch, EventReceipt, PassageFeed,
    PolicyMessage, SignedPolicy, SnapshotNeeded, DELTA_PATH, ENROLLMENT_JOBS_PATH, EVENTS_PATH,
    MAX_BATCH, PASSAGES_PATH, SNAPSHOT_PATH, WATCH_PATH,
};

use crate::auth::ControllerCaller;
use crate::error::{WebError, WebResult};
use crate::json::{Input, PathParam, QueryParams};
use crate::store::policy::DeltaAnswer;
use crate::AppState;

/// Longest a long-poll is held open.
pub const MAX_WAIT_MS: u64 = 30_000;

/// Routes under `/sync/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(SNAPSHOT_PATH, get(snapshot))
        .route(DELTA_PATH, get(delta))
        .route(WATCH_PATH, get(watch))
        .route(EVENTS_PATH, post(events))
        .route(PASSAGES_PATH, get(passages))
        .route(ENROLLMENT_JOBS_PATH, get(enrollment_jobs))
        .route(
            &format!("{ENROLLMENT_JOBS_PATH}/{{id}}"),
            post(enrollment_outcome),
        )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobWait {
    #[serde(default)]
    wait_ms: Option<u64>,
}

/// The calling controller's pending enrollment jobs; when there are none,
/// held open until one is queued or the wait ends.
async fn enrollment_jobs(
    State(state): State<AppState>,
    ControllerCaller(controller): ControllerCaller,
    QueryParams(q): QueryParams<JobWait>,
) -> WebResult<Json<EnrollmentJobs>> {
    let mut queued = state.store.watch_enrollment_jobs();
    queued.borrow_and_update();
    let jobs = state.store.pending_enrollment_jobs(controller).await?;
    if !jobs.jobs.is_empty() {
        return Ok(Json(jobs));
    }
    let wait = Duration::from_millis(q.wait_ms.unwrap_or(MAX_WAIT_MS).min(MAX_WAIT_MS));
    let _ = tokio::time::timeout(wait, queued.changed()).await;
    Ok(Json(state.store.pending_enrollment_jobs(controller).await?))
}

/// A controller's report on one of its enrollment jobs.
async fn enrollment_outcome(
    State(state): State<AppState>,
    ControllerCaller(controller): ControllerCaller,
    PathParam(id): PathParam<u64>,
    Input(outcome): Input<EnrollmentOutcome>,
) -> WebResult<StatusCode> {
    state
        .store
        .finish_enrollment_job(controller, id, &outcome)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The nonce a controller sends with every policy request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Nonce {
    nonce: String,
}

/// The request's nonce, refused unless it is hex of a sane length: it is
/// signed into the answer and shows in the controller's logs.
fn checked_nonce(nonce: String) -> WebResult<String> {
    if nonce_is_valid(&nonce) {
        Ok(nonce)
    } else {
        Err(WebError::BadRequest(
            "nonce must be 32 to 128 hex digits".into(),
        ))
    }
}

/// Signs an answer; the message carries the caller's nonce and this clock.
fn sign(state: &AppState, message: &PolicyMessage) -> WebResult<SignedPolicy> {
    state
        .signer
        .sign(message)
        .map_err(|e| WebError::Internal(e.to_string()))
}

fn central_time() -> Timestamp {
    Timestamp(crate::store::now_ms())
}

async fn snapshot(
    State(state): State<AppState>,
    ControllerCaller(controller): ControllerCaller,
    QueryParams(q): QueryParams<Nonce>,
) -> WebResult<Response> {
    let nonce = checked_nonce(q.nonce)?;
    let snapshot = state.store.snapshot_for(controller).await?;
    let version = snapshot.version;
    let signed = sign(
        &state,
        &PolicyMessage::FreshSnapshot {
            controller,
            snapshot,
            nonce,
            central_time: central_time(),
        },
    )?;
    state
        .store
        .note_controller_version(controller, version)
        .await?;
    Ok(Json(signed).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Since {
    since: u64,
    #[serde(default)]
    wait_ms: Option<u64>,
    nonce: String,
}

async fn delta(
    State(state): State<AppState>,
    ControllerCaller(controller): ControllerCaller,
    QueryParams(q): QueryParams<Since>,
) -> WebResult<Response> {
    let nonce = checked_nonce(q.nonce)?;
    match state.store.delta_for(controller, q.since).await? {
        DeltaAnswer::UpToDate => {
            let signed = sign(
                &state,
                &PolicyMessage::Current {
                    controller,
                    version: q.since,
                    nonce,
                    central_time: central_time(),
                },
            )?;
            Ok(Json(signed).into_response())
        }
        DeltaAnswer::SnapshotNeeded(reason) => Ok((
            StatusCode::CONFLICT,
            Json(SnapshotNeeded {
                version: state.store.policy_version().version,
                reason,
            }),
        )
            .into_response()),
        DeltaAnswer::Delta(delta) => {
            let version = delta.to;
            let signed = sign(
                &state,
                &PolicyMessage::FreshDelta {
                    controller,
                    delta,
                    nonce,
                    central_time: central_time(),
                },
            )?;
            state
                .store
                .note_controller_version(controller, version)
                .await?;
            Ok(Json(signed).into_response())
        }
    }
}

async fn watch(
    State(state): State<AppState>,
    ControllerCaller(controller): ControllerCaller,
    QueryParams(q): QueryParams<Since>,
) -> WebResult<Json<SignedPolicy>> {
    let nonce = checked_nonce(q.nonce)?;
    let mut versions = state.store.watch_versions();
    let wait = Duration::from_millis(q.wait_ms.unwrap_or(MAX_WAIT_MS).min(MAX_WAIT_MS));
    let since = q.since;
    // Signed when it leaves, so central_time says when "no change" was true.
    let answer = |v: crate::store::PolicyVersion, controller: ControllerId, nonce: String| {
        sign(
            &state,
            &PolicyMessage::Watch {
                controller,
                since,
                version: v.version,
                urgent: v.last_urgent > since,
                nonce,
                central_time: central_time(),
            },
        )
        .map(Json)
    };
    let current = *versions.borrow_and_update();
    if current.version != since {
        return answer(current, controller, nonce);
    }
    // Wake on the next published change, or answer "no change" when the wait ends.
    let _ = tokio::time::timeout(wait, versions.changed()).await;
    let now = *versions.borrow();
    answer(now, controller, nonce)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct After {
    #[serde(default)]
    after: Option<String>,
}

async fn passages(
    State(state): State<AppState>,
    ControllerCaller(controller): ControllerCaller,
    QueryParams(q): QueryParams<After>,
) -> WebResult<Json<PassageFeed>> {
    let after = q
        .after
        .as_deref()
        .map(crate::store::passages::PassageCursor::parse)
        .transpose()?;
    Ok(Json(state.store.passages_for(controller, after).await?))
}

async fn events(
    State(state): State<AppState>,
    ControllerCaller(controller): ControllerCaller,
    Input(batch): Input<EventBatch>,
) -> WebResult<Json<EventReceipt>> {
    if batch.events.len() > MAX_BATCH {
        return Err(WebError::BadRequest(format!(
            "at most {MAX_BATCH} events per batch"
        )));
    }
    let outcome = state
        .store
        .ingest(controller, batch.epoch, &batch.events)
        .await?;
    Ok(Json(EventReceipt {
        epoch: batch.epoch,
        stored_through: outcome.stored_through,
        stored: outcome.stored,
        duplicates: outcome.duplicates,
        chain_break: (!outcome.breaks.is_empty()).then(|| outcome.breaks.join("; ")),
        conflict: outcome.conflicts,
    }))
}
