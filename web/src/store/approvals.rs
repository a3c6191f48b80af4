//! Four-eyes approval: a sensitive change waits as a pending change until a
//! second, different admin approves it (it is then applied through the same
//! store calls as a direct change, with the same checks) or refuses it.
//! What needs approval is decided in one place, [`Store::needs_approval`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Role;
use super::resources::access::{check_grant, GrantInput};
use super::resources::enrollment_jobs::EnrollmentRequest;
use super::resources::people::EnrollmentInput;
use super::resources::{
    id_cursor, millis, page_size, paged, stored_id, Id, Millis, Page, ThreatLevel,
};
use super::{now_ms, Store, StoreError, StoreResult};

/// The level whose access needs a second admin.
const GUARDED_LEVEL: i64 = 4;

/// Longest refusal comment (characters).
pub const MAX_COMMENT: usize = 1000;

/// A change that needs a second admin, with the exact input that is applied.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangeRequest {
    /// Add a grant that opens a level-4 zone.
    GrantCreate {
        /// The grant as it will be added.
        grant: GrantInput,
    },
    /// Replace a grant so that it opens a level-4 zone.
    GrantUpdate {
        /// The grant to replace.
        grant_id: Id,
        /// The grant as it will be.
        grant: GrantInput,
    },
    /// Add a person to a group that holds a level-4 grant.
    MemberAdd {
        /// The group.
        group_id: Id,
        /// The person.
        person_id: Id,
    },
    /// Record a fingerprint enrollment.
    EnrollmentCreate {
        /// The enrollment.
        enrollment: EnrollmentInput,
    },
    /// Queue a job that enrolls a finger at a door.
    EnrollmentJob {
        /// Whose finger, on which module.
        request: EnrollmentRequest,
    },
    /// Set a site's threat level.
    SiteThreat {
        /// The site.
        site_id: Id,
        /// The new level.
        threat: ThreatLevel,
    },
    /// Set a zone's own threat level.
    ZoneThreat {
        /// The zone.
        zone_id: Id,
        /// The new level.
        threat: ThreatLevel,
    },
    /// Give a web user another role.
    UserRole {
        /// The user's id.
        user_id: i64,
        /// The new role.
        role: Role,
    },
}

impl ChangeRequest {
    /// The kind, as stored and as the JSON's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::GrantCreate { .. } => "grant_create",
            Self::GrantUpdate { .. } => "grant_update",
            Self::MemberAdd { .. } => "member_add",
            Self::EnrollmentCreate { .. } => "enrollment_create",
            Self::EnrollmentJob { .. } => "enrollment_job",
            Self::SiteThreat { .. } => "site_threat",
            Self::ZoneThreat { .. } => "zone_threat",
            Self::UserRole { .. } => "user_role",
        }
    }

    /// What it changes, as the audit names it (`site:3`, `grant:new`).
    pub fn target(&self) -> String {
        match self {
            Self::GrantCreate { grant } => format!("group:{}", grant.group_id),
            Self::GrantUpdate { grant_id, .. } => format!("grant:{grant_id}"),
            Self::MemberAdd {
                group_id,
                person_id,
            } => format!("group:{group_id}/person:{person_id}"),
            Self::EnrollmentCreate { enrollment } => format!("person:{}", enrollment.person_id),
            Self::EnrollmentJob { request } => format!("person:{}", request.person_id),
            Self::SiteThreat { site_id, .. } => format!("site:{site_id}"),
            Self::ZoneThreat { zone_id, .. } => format!("zone:{zone_id}"),
            Self::UserRole { user_id, .. } => format!("user:{user_id}"),
        }
    }
}

/// Where a pending change is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeState {
    /// Waiting for a second admin.
    Pending,
    /// Approved and applied.
    Approved,
    /// Refused (with a comment); never applied.
    Refused,
    /// Approved, but applying it failed (`result` says why); nothing applied.
    Failed,
}

impl ChangeState {
    /// Every state, pending first.
    pub const ALL: [ChangeState; 4] = [Self::Pending, Self::Approved, Self::Refused, Self::Failed];

    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }

    /// Parses a state's name.
    pub fn parse(s: &str) -> Option<ChangeState> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// A change waiting for (or decided by) a second admin.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PendingChange {
    /// The change's id.
    pub id: Id,
    /// What will be (or was) applied.
    pub change: ChangeRequest,
    /// What it changes (`site:3`).
    pub target: String,
    /// Pending, approved, refused or failed.
    pub state: ChangeState,
    /// Who asked.
    pub requested_by: String,
    /// When.
    pub requested_at: Millis,
    /// Who approved or refused it.
    pub decided_by: Option<String>,
    /// When.
    pub decided_at: Option<Millis>,
    /// Why it was refused.
    pub comment: Option<String>,
    /// What applying it gave (JSON text), or why it failed.
    pub result: Option<String>,
}

type ChangeRow = (
    i64,
    String,
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

const CHANGE_COLUMNS: &str = "SELECT id, target, payload, requested_by, requested_at, state, decided_by, decided_at, comment, result FROM pending_changes";

fn pending_change(row: ChangeRow) -> StoreResult<PendingChange> {
    let change: ChangeRequest = serde_json::from_str(&row.2)
        .map_err(|e| StoreError::Corrupt(format!("pending change {}: {e}", row.0)))?;
    Ok(PendingChange {
        id: stored_id(row.0)?,
        change,
        target: row.1,
        requested_by: row.3,
        requested_at: Millis::new(row.4)
            .ok_or_else(|| StoreError::Corrupt("pending change requested_at".into()))?,
        state: ChangeState::parse(&row.5)
            .ok_or_else(|| StoreError::Corrupt(format!("pending change state {:?}", row.5)))?,
        decided_by: row.6,
        decided_at: millis(row.7),
        comment: row.8,
        result: row.9,
    })
}

fn json_of<T: Serialize>(value: &T) -> StoreResult<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A reference in the body to a row that is not there is the body's fault.
fn missing(e: StoreError) -> StoreError {
    match e {
        StoreError::NotFound(what) => StoreError::MissingReference(format!("no {what}")),
        other => other,
    }
}

impl Store {
    /// Whether `change` needs a second admin: a grant that opens a level-4
    /// zone, a member added to a group holding such a grant (that too gives
    /// level-4 access), any fingerprint enrollment, and any change of a
    /// threat level or a user's role. Setting what is already set is no change.
    pub async fn needs_approval(&self, change: &ChangeRequest) -> StoreResult<bool> {
        match change {
            ChangeRequest::GrantCreate { grant } | ChangeRequest::GrantUpdate { grant, .. } => {
                let zones: Vec<i64> = grant.zones.iter().map(|z| z.get()).collect();
                self.any_guarded_zone(&zones).await
            }
            ChangeRequest::MemberAdd { group_id, .. } => {
                let lists: Vec<String> =
                    sqlx::query_scalar("SELECT zones FROM grants WHERE group_id = $1")
                        .bind(group_id.get())
                        .fetch_all(self.pool())
                        .await?;
                let mut zones = Vec::new();
                for list in lists {
                    let ids: Vec<i64> = serde_json::from_str(&list)
                        .map_err(|e| StoreError::Corrupt(format!("grant zones: {e}")))?;
                    zones.extend(ids);
                }
                self.any_guarded_zone(&zones).await
            }
            ChangeRequest::EnrollmentCreate { .. } | ChangeRequest::EnrollmentJob { .. } => {
                Ok(true)
            }
            ChangeRequest::SiteThreat { site_id, threat } => {
                Ok(self.site(*site_id).await?.threat != *threat)
            }
            ChangeRequest::ZoneThreat { zone_id, threat } => {
                Ok(self.zone(*zone_id).await?.settings.threat != *threat)
            }
            ChangeRequest::UserRole { user_id, role } => {
                Ok(self.user(*user_id).await?.role != *role)
            }
        }
    }

    async fn any_guarded_zone(&self, zones: &[i64]) -> StoreResult<bool> {
        for zone in zones {
            let level: Option<i64> = sqlx::query_scalar("SELECT level FROM zones WHERE id = $1")
                .bind(*zone)
                .fetch_optional(self.pool())
                .await?;
            if level == Some(GUARDED_LEVEL) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The one gate of the direct paths: when `change` needs approval it is
    /// stored as a pending change (returned), else `None` and the caller
    /// applies it at once.
    pub async fn hold_for_approval(
        &self,
        actor: &str,
        change: &ChangeRequest,
    ) -> StoreResult<Option<PendingChange>> {
        if self.needs_approval(change).await? {
            Ok(Some(self.request_change(actor, change).await?))
        } else {
            Ok(None)
        }
    }

    /// Refuses a request that could never be applied (a missing row, a
    /// malformed grant) when it is made, not when a second admin approves it.
    async fn check_request(&self, actor: &str, change: &ChangeRequest) -> StoreResult<()> {
        match change {
            ChangeRequest::GrantCreate { grant } | ChangeRequest::GrantUpdate { grant, .. } => {
                if let ChangeRequest::GrantUpdate { grant_id, .. } = change {
                    self.grant(*grant_id).await?;
                }
                check_grant(grant)?;
                self.group(grant.group_id).await.map_err(missing)?;
                if let Some(schedule) = grant.schedule_id {
                    self.schedule(schedule).await.map_err(missing)?;
                }
                for zone in &grant.zones {
                    self.zone(*zone).await.map_err(missing)?;
                }
            }
            ChangeRequest::MemberAdd {
                group_id,
                person_id,
            } => {
                self.group(*group_id).await?;
                self.person(*person_id).await?;
            }
            ChangeRequest::EnrollmentCreate { enrollment } => {
                self.person(enrollment.person_id).await.map_err(missing)?;
            }
            ChangeRequest::EnrollmentJob { request } => {
                self.person(request.person_id).await?;
            }
            ChangeRequest::SiteThreat { site_id, .. } => {
                self.site(*site_id).await?;
            }
            ChangeRequest::ZoneThreat { zone_id, .. } => {
                self.zone(*zone_id).await?;
            }
            ChangeRequest::UserRole { user_id, role } => {
                self.check_role_change(actor, *user_id, *role).await?;
            }
        }
        Ok(())
    }

    /// What `change` replaces, for the audit's old → new (null: nothing yet).
    async fn before(&self, change: &ChangeRequest) -> StoreResult<serde_json::Value> {
        Ok(match change {
            ChangeRequest::GrantUpdate { grant_id, .. } => match self.grant(*grant_id).await {
                Ok(grant) => json_of(&grant)?,
                Err(StoreError::NotFound(_)) => serde_json::Value::Null,
                Err(e) => return Err(e),
            },
            ChangeRequest::SiteThreat { site_id, .. } => match self.site(*site_id).await {
                Ok(site) => json_of(&site.threat)?,
                Err(StoreError::NotFound(_)) => serde_json::Value::Null,
                Err(e) => return Err(e),
            },
            ChangeRequest::ZoneThreat { zone_id, .. } => match self.zone(*zone_id).await {
                Ok(zone) => json_of(&zone.settings.threat)?,
                Err(StoreError::NotFound(_)) => serde_json::Value::Null,
                Err(e) => return Err(e),
            },
            ChangeRequest::UserRole { user_id, .. } => match self.user(*user_id).await {
                Ok(user) => json_of(&user.role)?,
                Err(StoreError::NotFound(_)) => serde_json::Value::Null,
                Err(e) => return Err(e),
            },
            ChangeRequest::GrantCreate { .. }
            | ChangeRequest::MemberAdd { .. }
            | ChangeRequest::EnrollmentCreate { .. }
            | ChangeRequest::EnrollmentJob { .. } => serde_json::Value::Null,
        })
    }

    /// Stores `change` as pending, asked for by `actor`; audited as
    /// `approval.request` with the old and new values.
    pub async fn request_change(
        &self,
        actor: &str,
        change: &ChangeRequest,
    ) -> StoreResult<PendingChange> {
        self.check_request(actor, change).await?;
        let old = self.before(change).await?;
        let payload =
            serde_json::to_string(change).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO pending_changes (kind, target, payload, requested_by, requested_at, state) VALUES ($1, $2, $3, $4, $5, 'pending') RETURNING id",
        )
        .bind(change.kind())
        .bind(change.target())
        .bind(&payload)
        .bind(actor)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        self.audit(
            &mut tx,
            actor,
            "approval.request",
            &format!("change:{id}"),
            &serde_json::json!({"kind": change.kind(), "target": change.target(), "old": old, "new": change}),
        )
        .await?;
        tx.commit().await?;
        self.change(stored_id(id)?).await
    }

    /// Changes by id (oldest first), optionally only those in `state`.
    pub async fn list_changes(
        &self,
        state: Option<ChangeState>,
        limit: Option<i64>,
        cursor: Option<&str>,
    ) -> StoreResult<Page<PendingChange>> {
        let limit = page_size(limit)?;
        let rows: Vec<ChangeRow> = sqlx::query_as(&format!(
            "{CHANGE_COLUMNS} WHERE id > $1 AND ($2 = '' OR state = $2) ORDER BY id LIMIT $3"
        ))
        .bind(id_cursor(cursor)?)
        .bind(state.map_or("", ChangeState::as_str))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let items = rows
            .into_iter()
            .map(pending_change)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paged(items, limit, |c| c.id.to_string()))
    }

    /// How many changes wait for a second admin.
    pub async fn pending_count(&self) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM pending_changes WHERE state = 'pending'")
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// One change.
    pub async fn change(&self, id: Id) -> StoreResult<PendingChange> {
        let row: Option<ChangeRow> = sqlx::query_as(&format!("{CHANGE_COLUMNS} WHERE id = $1"))
            .bind(id.get())
            .fetch_optional(self.pool())
            .await?;
        pending_change(row.ok_or_else(|| StoreError::NotFound(format!("change {id}")))?)
    }

    /// Whether `approver` (with `role`) may decide change `id`: an admin, not
    /// the one who asked, and only while it is pending.
    async fn decidable(&self, approver: &str, role: Role, id: Id) -> StoreResult<PendingChange> {
        let change = self.change(id).await?;
        if role != Role::Admin {
            return Err(StoreError::NotAllowed(
                "only an admin approves or refuses a change".into(),
            ));
        }
        if change.requested_by == approver {
            return Err(StoreError::NotAllowed(format!(
                "you asked for change {id}; a second, different admin must approve or refuse it"
            )));
        }
        if change.state != ChangeState::Pending {
            return Err(StoreError::Conflict(format!(
                "change {id} is already {}",
                change.state.as_str()
            )));
        }
        Ok(change)
    }

    /// Marks pending change `id` as decided (`state`) by `approver` inside
    /// `tx`; a change decided meanwhile by someone else is a conflict.
    async fn claim(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        approver: &str,
        id: Id,
        state: ChangeState,
        comment: Option<&str>,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE pending_changes SET state = $1, decided_by = $2, decided_at = $3, comment = $4 WHERE id = $5 AND state = 'pending'",
        )
        .bind(state.as_str())
        .bind(approver)
        .bind(now_ms())
        .bind(comment)
        .bind(id.get())
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "change {id} is already decided"
            )));
        }
        Ok(())
    }

    /// Approves change `id` and applies it, as asked, through the store call
    /// of the direct path (so with the same checks). If applying fails (the
    /// zone was deleted meanwhile, …) the change is marked failed with the
    /// reason; the store call's own transaction leaves nothing half-applied.
    ///
    /// The approval commits before the change is applied, so that two admins
    /// approving at once can never apply it twice.
    pub async fn approve_change(
        &self,
        approver: &str,
        role: Role,
        id: Id,
    ) -> StoreResult<PendingChange> {
        let pending = self.decidable(approver, role, id).await?;
        let old = self.before(&pending.change).await?;
        let mut tx = self.begin().await?;
        Self::claim(&mut tx, approver, id, ChangeState::Approved, None).await?;
        self.audit(
            &mut tx,
            approver,
            "approval.approve",
            &format!("change:{id}"),
            &serde_json::json!({
                "kind": pending.change.kind(),
                "target": pending.target,
                "requested_by": pending.requested_by,
                "old": old,
                "new": pending.change,
            }),
        )
        .await?;
        tx.commit().await?;
        // Applied in the requester's name: the rules that depend on who
        // asks (no admin takes their own admin role away) hold as if direct.
        match self.apply(&pending.requested_by, &pending.change).await {
            Ok(result) => {
                sqlx::query("UPDATE pending_changes SET result = $1 WHERE id = $2")
                    .bind(result.to_string())
                    .bind(id.get())
                    .execute(&self.writer)
                    .await?;
            }
            Err(e) => {
                let why = match &e {
                    StoreError::NotFound(m)
                    | StoreError::Conflict(m)
                    | StoreError::MissingReference(m)
                    | StoreError::Meaningless(m)
                    | StoreError::Invalid(m)
                    | StoreError::NotAllowed(m) => m.clone(),
                    other => {
                        tracing::error!(error = %other, change = %id, "applying an approved change");
                        "internal error (logged)".to_string()
                    }
                };
                let mut tx = self.begin().await?;
                sqlx::query(
                    "UPDATE pending_changes SET state = 'failed', result = $1 WHERE id = $2",
                )
                .bind(&why)
                .bind(id.get())
                .execute(&mut *tx)
                .await?;
                self.audit(
                    &mut tx,
                    approver,
                    "approval.failed",
                    &format!("change:{id}"),
                    &serde_json::json!({"kind": pending.change.kind(), "error": why}),
                )
                .await?;
                tx.commit().await?;
            }
        }
        self.change(id).await
    }

    /// Refuses change `id` with `comment` (required); it is never applied.
    pub async fn refuse_change(
        &self,
        approver: &str,
        role: Role,
        id: Id,
        comment: &str,
    ) -> StoreResult<PendingChange> {
        let comment = comment.trim();
        if comment.is_empty() || comment.chars().count() > MAX_COMMENT {
            return Err(StoreError::Invalid(format!(
                "comment: say why the change is refused (1 to {MAX_COMMENT} characters)"
            )));
        }
        let pending = self.decidable(approver, role, id).await?;
        let mut tx = self.begin().await?;
        Self::claim(&mut tx, approver, id, ChangeState::Refused, Some(comment)).await?;
        self.audit(
            &mut tx,
            approver,
            "approval.refuse",
            &format!("change:{id}"),
            &serde_json::json!({
                "kind": pending.change.kind(),
                "target": pending.target,
                "requested_by": pending.requested_by,
                "comment": comment,
            }),
        )
        .await?;
        tx.commit().await?;
        self.change(id).await
    }

    /// Applies `change` through the direct path's store call; what it gave.
    async fn apply(&self, actor: &str, change: &ChangeRequest) -> StoreResult<serde_json::Value> {
        match change {
            ChangeRequest::GrantCreate { grant } => {
                json_of(&self.create_grant(actor, grant).await?)
            }
            ChangeRequest::GrantUpdate { grant_id, grant } => {
                json_of(&self.update_grant(actor, *grant_id, grant).await?)
            }
            ChangeRequest::MemberAdd {
                group_id,
                person_id,
            } => {
                let added = self.add_member(actor, *group_id, *person_id).await?;
                Ok(
                    serde_json::json!({"group_id": group_id, "person_id": person_id, "added": added}),
                )
            }
            ChangeRequest::EnrollmentCreate { enrollment } => {
                json_of(&self.create_enrollment(actor, enrollment).await?)
            }
            ChangeRequest::EnrollmentJob { request } => {
                json_of(&self.request_enrollment(actor, request).await?)
            }
            ChangeRequest::SiteThreat { site_id, threat } => {
                json_of(&self.set_site_threat(actor, *site_id, *threat).await?)
            }
            ChangeRequest::ZoneThreat { zone_id, threat } => {
                json_of(&self.set_zone_threat(actor, *zone_id, *threat).await?)
            }
            ChangeRequest::UserRole { user_id, role } => {
                let user = self.set_user_role(actor, *user_id, *role).await?;
                Ok(serde_json::json!({"id": user.id, "username": user.username, "role": user.role}))
            }
        }
    }
}
