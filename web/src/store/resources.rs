//! CRUD for configuration resources: sites, zones, schedules, doors, people,
//! cards and their lifecycle, enrollments, access groups, grants, bookings,
//! holidays and controllers. Every change writes its admin audit entry and its
//! policy change in the same transaction, and is published after commit.

pub mod access;
pub mod cards;
pub mod doors;
pub mod people;
pub mod sites;
pub mod vocab;
pub mod zones;

pub use vocab::*;

use super::{ChangeScope, Store, StoreResult};

/// A write transaction.
pub(crate) type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// What a finished write tells the audit log and the controllers.
pub(crate) struct Change<'a> {
    /// Who did it.
    pub actor: &'a str,
    /// Audit action, e.g. `zone.update`.
    pub action: &'a str,
    /// Audit target and policy-change subject, e.g. `zone:3`.
    pub target: String,
    /// Audit detail.
    pub detail: serde_json::Value,
    /// The policy version recorded in the transaction (with
    /// [`Store::record_change`]) and its urgency, if controllers must hear of it.
    pub version: Option<(u64, bool)>,
}

impl Store {
    /// Records the audit entry and policy change, commits, then publishes.
    pub(crate) async fn finish(&self, mut tx: Tx, change: Change<'_>) -> StoreResult<Option<u64>> {
        self.audit(
            &mut tx,
            change.actor,
            change.action,
            &change.target,
            &change.detail,
        )
        .await?;
        tx.commit().await?;
        if let Some((v, urgent)) = change.version {
            self.publish(v, urgent);
        }
        Ok(change.version.map(|(v, _)| v))
    }

    /// Records a structure change (full snapshot for controllers) in `tx`.
    pub(crate) async fn structure_change(
        &self,
        tx: &mut Tx,
        subject: &str,
    ) -> StoreResult<Option<(u64, bool)>> {
        Ok(Some((
            self.record_change(tx, ChangeScope::Structure, subject, false)
                .await?,
            false,
        )))
    }

    /// Sets `people.changed_version` for each person in `people` (inside `tx`).
    pub(crate) async fn touch_people(
        &self,
        tx: &mut Tx,
        people: &[i64],
        version: u64,
    ) -> StoreResult<()> {
        for p in people {
            sqlx::query("UPDATE people SET changed_version = $1 WHERE id = $2")
                .bind(version as i64)
                .bind(*p)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}
