//! CRUD for configuration resources: sites, zones, schedules, doors, people,
//! cards and their lifecycle, enrollments, access groups, grants, bookings,
//! holidays and controllers. Every change writes its admin audit entry and its
//! policy change in the same transaction, and is published after commit.

pub mod access;
pub mod cards;
pub(crate) mod combinations;
pub mod doors;
pub mod enrollment_jobs;
pub mod people;
pub mod sites;
pub mod vocab;
pub mod zones;

pub use vocab::*;

use super::{ChangeScope, Store, StoreError, StoreResult};

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

    /// Commits a write whose audit entry and policy change are already in
    /// `tx`, then publishes its version (if controllers must hear of it).
    pub(crate) async fn commit_change(
        &self,
        tx: Tx,
        version: Option<(u64, bool)>,
    ) -> StoreResult<Option<u64>> {
        tx.commit().await?;
        if let Some((v, urgent)) = version {
            self.publish(v, urgent);
        }
        Ok(version.map(|(v, _)| v))
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

    /// The row of `columns` (a `SELECT … FROM table` prefix) with this id.
    pub(crate) async fn row_by_id<R>(&self, columns: &str, id: Id, what: &str) -> StoreResult<R>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    {
        sqlx::query_as(&format!("{columns} WHERE id = $1"))
            .bind(id.get())
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("{what} {id}")))
    }

    /// Deletes a structure row (site, zone, schedule, door, grant) with its
    /// audit entry and a full-snapshot policy change: `{kind}.delete` on `{kind}:{id}`.
    pub(crate) async fn delete_structure(
        &self,
        mut tx: Tx,
        actor: &str,
        kind: &str,
        table: &str,
        id: Id,
        in_use: &str,
    ) -> StoreResult<()> {
        delete_row(&mut tx, table, id, kind, in_use).await?;
        let target = format!("{kind}:{id}");
        let version = self.structure_change(&mut tx, &target).await?;
        self.finish(
            tx,
            Change {
                actor,
                action: &format!("{kind}.delete"),
                target,
                detail: serde_json::json!({}),
                version,
            },
        )
        .await?;
        Ok(())
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

/// Deletes row `id` of `table` in `tx`: `NotFound` names it as `{what} {id}`,
/// and a row still referred to is a conflict saying `in_use`.
pub(crate) async fn delete_row(
    tx: &mut Tx,
    table: &str,
    id: Id,
    what: &str,
    in_use: &str,
) -> StoreResult<()> {
    let done = sqlx::query(&format!("DELETE FROM {table} WHERE id = $1"))
        .bind(id.get())
        .execute(&mut **tx)
        .await
        .map_err(|e| StoreError::in_use_or(e, in_use))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("{what} {id}")));
    }
    Ok(())
}

/// Refuses when any JSON id list selected by `lists` (e.g. grants' zones)
/// names `id`: those references have no foreign key to guard them.
pub(crate) async fn ensure_unlisted(
    tx: &mut Tx,
    lists: &str,
    id: Id,
    what: &str,
    in_use: &str,
) -> StoreResult<()> {
    let lists: Vec<String> = sqlx::query_scalar(lists).fetch_all(&mut **tx).await?;
    for list in lists {
        let ids: Vec<i64> =
            serde_json::from_str(&list).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?;
        if ids.contains(&id.get()) {
            return Err(StoreError::Conflict(in_use.into()));
        }
    }
    Ok(())
}

/// Refuses a reference in a request body to a row that does not exist, with
/// `no {what} {id}` (e.g. `no person 99`). Checked in the writing transaction,
/// so the message names the missing row (a foreign key failure cannot say which).
pub(crate) async fn ensure_exists(tx: &mut Tx, table: &str, id: Id, what: &str) -> StoreResult<()> {
    let found: Option<i64> = sqlx::query_scalar(&format!("SELECT id FROM {table} WHERE id = $1"))
        .bind(id.get())
        .fetch_optional(&mut **tx)
        .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(StoreError::MissingReference(format!("no {what} {id}"))),
    }
}
