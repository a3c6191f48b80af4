//! Enrollment jobs: an admin's request to enroll a finger (or clear a slot) on a module, run by the controller that drives it.
//!
//! The central service never picks a slot: the controller reads the module's
//! index table, skips the slots recorded here, and reports the slot it used.
//! Only then is the enrollment recorded (and the policy changed).

use serde::{Deserialize, Serialize};
use tobira_firmware::{ModuleId, PersonId};
use tobira_protocol::{EnrollmentJobs, EnrollmentOutcome, EnrollmentTask};
use utoipa::ToSchema;

use super::{id_cursor, millis, page_size, paged, stored_id, Change, Id, Millis, Page, Reader, Tx};
use crate::store::{now_ms, Store, StoreError, StoreResult};

/// Most jobs handed to a controller in one answer.
const JOBS_PER_ANSWER: i64 = 20;
/// Longest failure detail kept from a controller's report.
const MAX_DETAIL: usize = 500;

/// What a job does on the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Capture a finger twice and store it in a free slot.
    Enroll,
    /// Clear a slot (its enrollment was deleted).
    Delete,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for (or running at) the controller.
    Pending,
    /// Done: enrolled into `slot`, or `slot` cleared.
    Done,
    /// Nothing stored or cleared; `failure` says why.
    Failed,
}

impl JobKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Enroll => "enroll",
            Self::Delete => "delete",
        }
    }

    fn parse(s: &str) -> StoreResult<Self> {
        match s {
            "enroll" => Ok(Self::Enroll),
            "delete" => Ok(Self::Delete),
            other => Err(StoreError::Corrupt(format!("job kind {other:?}"))),
        }
    }
}

impl JobState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> StoreResult<Self> {
        match s {
            "pending" => Ok(Self::Pending),
            "done" => Ok(Self::Done),
            "failed" => Ok(Self::Failed),
            other => Err(StoreError::Corrupt(format!("job state {other:?}"))),
        }
    }
}

/// An enrollment job and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct EnrollmentJob {
    /// The job's id.
    pub id: Id,
    /// Enroll a finger, or clear a slot.
    pub kind: JobKind,
    /// Whose finger (or whose enrollment was deleted).
    pub person_id: Id,
    /// The biometric module.
    pub module_id: Id,
    /// The controller that drives the module and runs the job.
    pub controller_id: Id,
    /// The slot: the one the controller picked (enroll, once done) or the one to clear.
    #[schema(minimum = 0, maximum = 65535)]
    pub slot: Option<u16>,
    /// Pending, done or failed.
    pub state: JobState,
    /// Why it failed: `timeout`, `mismatch`, `module_full`,
    /// `module_unavailable`, `unknown_module` or `conflict`.
    pub failure: Option<String>,
    /// What the controller said about a failure.
    pub detail: Option<String>,
    /// Who asked.
    pub requested_by: String,
    /// When.
    pub requested_at: Millis,
    /// When the controller reported the outcome.
    pub finished_at: Option<Millis>,
}

/// What a client sends to have a person's finger enrolled on a module.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentRequest {
    /// Whose finger.
    pub person_id: Id,
    /// The biometric module, as the doors' readers name it.
    pub module_id: Id,
}

type JobRow = (
    i64,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    Option<i64>,
);

const JOB_COLUMNS: &str = "SELECT id, kind, person_id, module_id, controller_id, slot, state, failure, detail, requested_by, requested_at, finished_at FROM enrollment_jobs";

fn job(row: JobRow) -> StoreResult<EnrollmentJob> {
    let slot = row
        .5
        .map(|s| u16::try_from(s).map_err(|_| StoreError::Corrupt(format!("job slot {s}"))))
        .transpose()?;
    Ok(EnrollmentJob {
        id: stored_id(row.0)?,
        kind: JobKind::parse(&row.1)?,
        person_id: stored_id(row.2)?,
        module_id: stored_id(row.3)?,
        controller_id: stored_id(row.4)?,
        slot,
        state: JobState::parse(&row.6)?,
        failure: row.7,
        detail: row.8,
        requested_by: row.9,
        requested_at: Millis::new(row.10)
            .ok_or_else(|| StoreError::Corrupt("job requested_at".into()))?,
        finished_at: millis(row.11),
    })
}

fn to_u32(v: i64, what: &str) -> StoreResult<u32> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v}")))
}

impl Store {
    /// The controller whose doors have `module` beside a reader, if any.
    pub(crate) async fn module_controller(
        &self,
        tx: &mut Tx,
        module: Id,
    ) -> StoreResult<Option<i64>> {
        let rows: Vec<(i64, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT controller_id, entry_reader, exit_reader FROM doors WHERE controller_id IS NOT NULL ORDER BY id",
        )
        .fetch_all(&mut **tx)
        .await?;
        for (controller, entry, exit) in rows {
            for side in [entry, exit].into_iter().flatten() {
                if Reader::from_stored(&side)?.biometric == Some(module) {
                    return Ok(Some(controller));
                }
            }
        }
        Ok(None)
    }

    /// Queues a job to enroll a person's finger on a module. The person must
    /// exist, have no enrollment on that module and no such job pending, and
    /// the module must be beside a reader of a door some controller drives.
    pub async fn request_enrollment(
        &self,
        actor: &str,
        input: &EnrollmentRequest,
    ) -> StoreResult<EnrollmentJob> {
        let (person, module) = (input.person_id, input.module_id);
        let mut tx = self.begin().await?;
        let known: Option<i64> = sqlx::query_scalar("SELECT id FROM people WHERE id = $1")
            .bind(person.get())
            .fetch_optional(&mut *tx)
            .await?;
        if known.is_none() {
            return Err(StoreError::NotFound(format!("no person {person}")));
        }
        let controller = self.module_controller(&mut tx, module).await?.ok_or_else(|| {
            StoreError::Invalid(format!(
                "module {module} is beside no reader of a door that a controller drives; set it on a door's reader first"
            ))
        })?;
        let slot: Option<i64> = sqlx::query_scalar(
            "SELECT slot FROM enrollments WHERE person_id = $1 AND module_id = $2",
        )
        .bind(person.get())
        .bind(module.get())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(slot) = slot {
            return Err(StoreError::Conflict(format!(
                "person {person} is already enrolled on module {module} (slot {slot}); delete that enrollment first"
            )));
        }
        let pending: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM enrollment_jobs WHERE person_id = $1 AND module_id = $2 AND kind = 'enroll' AND state = 'pending'",
        )
        .bind(person.get())
        .bind(module.get())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(job) = pending {
            return Err(StoreError::Conflict(format!(
                "enrollment job {job} for person {person} on module {module} is still pending"
            )));
        }
        let id = insert_job(
            &mut tx,
            JobKind::Enroll,
            person.get(),
            module.get(),
            controller,
            None,
            actor,
        )
        .await?;
        let detail =
            serde_json::json!({"job_id": id, "module_id": module, "controller_id": controller});
        self.finish(
            tx,
            Change {
                actor,
                action: "enrollment.request",
                target: format!("person:{person}"),
                detail,
                version: None,
            },
        )
        .await?;
        self.jobs_queued();
        self.enrollment_job(stored_id(id)?).await
    }

    /// Queues, inside `tx`, the job that clears a deleted enrollment's slot
    /// on its module. `None` when no controller drives the module (the slot
    /// is then left on the module; no door can use it anyway).
    pub(crate) async fn queue_slot_clear(
        &self,
        tx: &mut Tx,
        actor: &str,
        person: i64,
        module: Id,
        slot: u16,
    ) -> StoreResult<Option<i64>> {
        let Some(controller) = self.module_controller(tx, module).await? else {
            return Ok(None);
        };
        let id = insert_job(
            tx,
            JobKind::Delete,
            person,
            module.get(),
            controller,
            Some(slot),
            actor,
        )
        .await?;
        Ok(Some(id))
    }

    /// Wakes the controllers' long-polls for jobs (after a commit).
    pub(crate) fn jobs_queued(&self) {
        self.jobs.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Watches for queued jobs (for the controllers' long-poll).
    pub fn watch_enrollment_jobs(&self) -> tokio::sync::watch::Receiver<u64> {
        self.jobs.subscribe()
    }

    /// One job.
    pub async fn enrollment_job(&self, id: Id) -> StoreResult<EnrollmentJob> {
        let row: Option<JobRow> = sqlx::query_as(&format!("{JOB_COLUMNS} WHERE id = $1"))
            .bind(id.get())
            .fetch_optional(self.pool())
            .await?;
        row.map(job)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("enrollment job {id}")))
    }

    /// Jobs by id, optionally of one person or module.
    pub async fn list_enrollment_jobs(
        &self,
        person: Option<Id>,
        module: Option<Id>,
        limit: Option<i64>,
        cursor: Option<&str>,
    ) -> StoreResult<Page<EnrollmentJob>> {
        let limit = page_size(limit)?;
        let rows: Vec<JobRow> = sqlx::query_as(&format!(
            "{JOB_COLUMNS} WHERE id > $1 AND ($2 = 0 OR person_id = $2) AND ($3 = 0 OR module_id = $3) ORDER BY id LIMIT $4"
        ))
        .bind(id_cursor(cursor)?)
        .bind(person.map_or(0, Id::get))
        .bind(module.map_or(0, Id::get))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let items = rows.into_iter().map(job).collect::<StoreResult<Vec<_>>>()?;
        Ok(paged(items, limit, |j| j.id.to_string()))
    }

    /// The pending jobs of a controller, oldest first, as the sync API hands them out.
    pub async fn pending_enrollment_jobs(
        &self,
        controller: tobira_firmware::ControllerId,
    ) -> StoreResult<EnrollmentJobs> {
        let rows: Vec<(i64, String, i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT id, kind, person_id, module_id, slot FROM enrollment_jobs WHERE controller_id = $1 AND state = 'pending' ORDER BY id LIMIT $2",
        )
        .bind(i64::from(controller.0))
        .bind(JOBS_PER_ANSWER)
        .fetch_all(self.pool())
        .await?;
        let mut jobs = Vec::with_capacity(rows.len());
        for (id, kind, person, module, slot) in rows {
            let task = match JobKind::parse(&kind)? {
                JobKind::Enroll => {
                    let taken: Vec<i64> = sqlx::query_scalar(
                        "SELECT slot FROM enrollments WHERE module_id = $1 ORDER BY slot",
                    )
                    .bind(module)
                    .fetch_all(self.pool())
                    .await?;
                    EnrollmentTask::Enroll {
                        person: PersonId(to_u32(person, "job person")?),
                        taken: taken
                            .into_iter()
                            .filter_map(|s| u16::try_from(s).ok())
                            .collect(),
                    }
                }
                JobKind::Delete => EnrollmentTask::Delete {
                    slot: slot
                        .and_then(|s| u16::try_from(s).ok())
                        .ok_or_else(|| StoreError::Corrupt(format!("delete job {id} slot")))?,
                },
            };
            jobs.push(tobira_protocol::EnrollmentJob {
                id: u64::try_from(id).map_err(|_| StoreError::Corrupt(format!("job id {id}")))?,
                module: ModuleId(to_u32(module, "job module")?),
                task,
            });
        }
        Ok(EnrollmentJobs { jobs })
    }

    /// Records a controller's report on one of its jobs. A finger enrolled
    /// becomes the person's enrollment (and a policy change); a slot the
    /// central service recorded meanwhile for someone else fails the job as
    /// a `conflict`. Every outcome goes into the admin audit log.
    pub async fn finish_enrollment_job(
        &self,
        controller: tobira_firmware::ControllerId,
        id: u64,
        outcome: &EnrollmentOutcome,
    ) -> StoreResult<()> {
        let id = i64::try_from(id)
            .ok()
            .and_then(Id::new)
            .ok_or_else(|| StoreError::NotFound(format!("enrollment job {id}")))?;
        let actor = format!("controller:{}", controller.0);
        let mut tx = self.begin().await?;
        let row: Option<(String, i64, i64, String)> = sqlx::query_as(
            "SELECT kind, person_id, module_id, state FROM enrollment_jobs WHERE id = $1 AND controller_id = $2",
        )
        .bind(id.get())
        .bind(i64::from(controller.0))
        .fetch_optional(&mut *tx)
        .await?;
        let (kind, person, module, state) =
            row.ok_or_else(|| StoreError::NotFound(format!("enrollment job {id}")))?;
        if state != JobState::Pending.as_str() {
            return Err(StoreError::Conflict(format!(
                "enrollment job {id} is already {state}"
            )));
        }
        let kind = JobKind::parse(&kind)?;
        let target = format!("person:{person}");
        let (state, slot, failure, detail, action, version) = match (kind, outcome) {
            (JobKind::Enroll, EnrollmentOutcome::Enrolled { slot }) => {
                let clash: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM enrollments WHERE module_id = $1 AND (slot = $2 OR person_id = $3)",
                )
                .bind(module)
                .bind(i64::from(*slot))
                .bind(person)
                .fetch_one(&mut *tx)
                .await?;
                let person_known: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM people WHERE id = $1")
                        .bind(person)
                        .fetch_optional(&mut *tx)
                        .await?;
                if clash > 0 || person_known.is_none() {
                    (
                        JobState::Failed,
                        Some(*slot),
                        Some("conflict"),
                        Some(format!(
                            "slot {slot} was recorded for someone else, or the person was enrolled or deleted meanwhile"
                        )),
                        "enrollment.fail",
                        None,
                    )
                } else {
                    sqlx::query("INSERT INTO enrollments (person_id, module_id, slot, enrolled_at) VALUES ($1, $2, $3, $4)")
                        .bind(person)
                        .bind(module)
                        .bind(i64::from(*slot))
                        .bind(now_ms())
                        .execute(&mut *tx)
                        .await?;
                    let version = self.person_change(&mut tx, &target, &[person]).await?;
                    (
                        JobState::Done,
                        Some(*slot),
                        None,
                        None,
                        "enrollment.create",
                        version,
                    )
                }
            }
            (JobKind::Delete, EnrollmentOutcome::Deleted) => {
                (JobState::Done, None, None, None, "enrollment.clear", None)
            }
            (_, EnrollmentOutcome::Failed { reason, detail }) => {
                let detail: String = detail.chars().take(MAX_DETAIL).collect();
                (
                    JobState::Failed,
                    None,
                    Some(reason.as_str()),
                    Some(detail),
                    "enrollment.fail",
                    None,
                )
            }
            (kind, other) => {
                return Err(StoreError::Invalid(format!(
                    "outcome {other:?} does not fit a {} job",
                    kind.as_str()
                )))
            }
        };
        sqlx::query(
            "UPDATE enrollment_jobs SET state = $1, slot = COALESCE($2, slot), failure = $3, detail = $4, finished_at = $5 WHERE id = $6",
        )
        .bind(state.as_str())
        .bind(slot.map(i64::from))
        .bind(failure)
        .bind(detail.clone())
        .bind(now_ms())
        .bind(id.get())
        .execute(&mut *tx)
        .await?;
        let audit = serde_json::json!({
            "job_id": id, "kind": kind.as_str(), "module_id": module, "slot": slot,
            "state": state.as_str(), "failure": failure, "detail": detail,
        });
        self.finish(
            tx,
            Change {
                actor: &actor,
                action,
                target,
                detail: audit,
                version,
            },
        )
        .await?;
        Ok(())
    }
}

async fn insert_job(
    tx: &mut Tx,
    kind: JobKind,
    person: i64,
    module: i64,
    controller: i64,
    slot: Option<u16>,
    actor: &str,
) -> StoreResult<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO enrollment_jobs (kind, person_id, module_id, controller_id, slot, state, requested_by, requested_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7) RETURNING id",
    )
    .bind(kind.as_str())
    .bind(person)
    .bind(module)
    .bind(controller)
    .bind(slot.map(i64::from))
    .bind(actor)
    .bind(now_ms())
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}
