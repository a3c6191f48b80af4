//! Controllers' presence: which ones stopped checking in, each raising one
//! `controller_offline` alarm per outage (time is a parameter, for tests).

use super::{utc_text, Store, StoreResult};

/// A controller found offline by [`Store::raise_offline_alarms`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineController {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its last contact (ms since the epoch).
    pub last_contact_ms: i64,
}

impl Store {
    /// When controller `id`'s current outage was noticed (its offline alarm),
    /// or `None` while it checks in.
    pub async fn offline_since(&self, id: super::resources::Id) -> StoreResult<Option<i64>> {
        let at: Option<Option<i64>> =
            sqlx::query_scalar("SELECT offline_alarm_at FROM controllers WHERE id = $1")
                .bind(id.get())
                .fetch_optional(self.pool())
                .await?;
        Ok(at.flatten())
    }

    /// Raises a `controller_offline` alarm for every enabled controller whose
    /// last contact is `after_ms` or more before `now`, once per outage (its
    /// next contact ends the outage). A controller that never checked in was
    /// never online and raises none. Returns the controllers alarmed now.
    pub async fn raise_offline_alarms(
        &self,
        now: i64,
        after_ms: i64,
    ) -> StoreResult<Vec<OfflineController>> {
        let silent: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT id, name, last_seen_at FROM controllers WHERE disabled = 0 AND offline_alarm_at IS NULL AND last_seen_at IS NOT NULL AND last_seen_at <= $1 ORDER BY id",
        )
        .bind(now - after_ms)
        .fetch_all(self.pool())
        .await?;
        let mut alarmed = Vec::with_capacity(silent.len());
        for (id, name, last_contact_ms) in silent {
            let mut tx = self.begin().await?;
            // Conditional, so that a contact in the meantime (or another
            // instance of the service) wins and no second alarm is raised.
            let marked = sqlx::query(
                "UPDATE controllers SET offline_alarm_at = $1 WHERE id = $2 AND offline_alarm_at IS NULL AND last_seen_at = $3",
            )
            .bind(now)
            .bind(id)
            .bind(last_contact_ms)
            .execute(&mut *tx)
            .await?;
            if marked.rows_affected() != 1 {
                continue;
            }
            let minutes = (now - last_contact_ms) / 60_000;
            self.raise_alarm(
                &mut tx,
                now,
                "controller_offline",
                Some(id),
                None,
                &format!(
                    "controller {id} ({name}) has not checked in since {} ({minutes} min)",
                    utc_text(last_contact_ms)
                ),
            )
            .await?;
            tx.commit().await?;
            self.online().remove(&id);
            self.note_activity();
            alarmed.push(OfflineController {
                id,
                name,
                last_contact_ms,
            });
        }
        Ok(alarmed)
    }
}
