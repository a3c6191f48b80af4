//! Handlers for enrollment jobs: ask for a finger to be enrolled on a module, and follow the job.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{GetErrors, Input, Paging, ReadErrors, UpdateErrors};
use crate::auth::{Caller, Manager};
use crate::error::WebResult;
use crate::json::{PathParam, QueryParams};
use crate::store::resources::enrollment_jobs::{EnrollmentJob, EnrollmentRequest};
use crate::store::resources::{Id, Page};
use crate::AppState;

/// Enrollment job list filters.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobFilter {
    /// Only this person's jobs.
    pub person: Option<Id>,
    /// Only jobs on this module.
    pub module: Option<Id>,
}

/// Ask for a person's finger to be enrolled on a module. The controller that
/// drives the module picks a free slot, prompts at its door, captures the
/// finger twice and stores it; the enrollment is recorded when it reports
/// the slot. 404: no such person; 400: no controller drives the module;
/// 409: already enrolled there, or such a job is pending.
#[utoipa::path(post, path = "/api/v1/enrollment-jobs", tag = "people", request_body = EnrollmentRequest,
    responses((status = 201, description = "The pending job", body = EnrollmentJob), UpdateErrors))]
pub async fn request_enrollment(
    State(state): State<AppState>,
    caller: Manager,
    Input(input): Input<EnrollmentRequest>,
) -> WebResult<(StatusCode, Json<EnrollmentJob>)> {
    let actor = caller.actor().to_owned();
    Ok((
        StatusCode::CREATED,
        Json(state.store.request_enrollment(&actor, &input).await?),
    ))
}

/// List enrollment jobs (enroll and slot-clearing) by id.
#[utoipa::path(get, path = "/api/v1/enrollment-jobs", tag = "people", params(JobFilter, Paging),
    responses((status = 200, description = "A page of jobs", body = Page<EnrollmentJob>), ReadErrors))]
pub async fn list_enrollment_jobs(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(f): QueryParams<JobFilter>,
    QueryParams(p): QueryParams<Paging>,
) -> WebResult<Json<Page<EnrollmentJob>>> {
    Ok(Json(
        state
            .store
            .list_enrollment_jobs(f.person, f.module, p.limit, p.cursor())
            .await?,
    ))
}

/// Get an enrollment job: pending, done (with the slot) or failed (with why).
#[utoipa::path(get, path = "/api/v1/enrollment-jobs/{id}", tag = "people",
    params(("id" = Id, Path, description = "Job id")),
    responses((status = 200, description = "The job", body = EnrollmentJob), GetErrors))]
pub async fn get_enrollment_job(
    State(state): State<AppState>,
    _caller: Caller,
    PathParam(id): PathParam<Id>,
) -> WebResult<Json<EnrollmentJob>> {
    Ok(Json(state.store.enrollment_job(id).await?))
}
