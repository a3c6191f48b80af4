//! The brain's memory on disk: occupancy and waits, written in the transaction of the events that change them, read back at start.
//!
//! Hard anti-passback, "exit without entry", dual custody and escorts all
//! depend on what the brain remembers. Keeping it only in RAM let a restart
//! admit someone already inside an L4 zone. The memory is therefore written
//! with the outbox commit of the decision that changed it (one transaction,
//! one flush): after `kill -9` or a power cut the memory on disk matches the
//! events in the outbox exactly, never one without the other.

use sqlx::{SqliteConnection, SqlitePool};
use tobira_firmware::{Memory, Passage, PersonId, Timestamp, Waits, ZoneId};

use crate::state::StateError;

/// How a decision changed the memory: what to write beside its events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryChange {
    /// Tracked passages (who left which zone for which).
    pub passages: Vec<Passage>,
    /// The waits and escort offers after the change, when they changed.
    pub waits: Option<Waits>,
}

impl MemoryChange {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.passages.is_empty() && self.waits.is_none()
    }

    /// Writes the change inside the caller's transaction.
    pub(crate) async fn write(
        &self,
        conn: &mut SqliteConnection,
        at: Timestamp,
    ) -> Result<(), StateError> {
        for p in &self.passages {
            put_passage(conn, p.from, p.person, false, at).await?;
            put_passage(conn, p.to, p.person, true, at).await?;
        }
        if let Some(waits) = &self.waits {
            let body = serde_json::to_string(waits).map_err(|e| StateError::Corrupt {
                what: "waits",
                detail: e.to_string(),
            })?;
            sqlx::query(
                "INSERT INTO waits (id, body) VALUES (1, ?)
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body",
            )
            .bind(body)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// Records a passage unless a later one of the same person and zone is
/// already known (a passage another controller reported may arrive late).
async fn put_passage(
    conn: &mut SqliteConnection,
    zone: ZoneId,
    person: PersonId,
    inside: bool,
    at: Timestamp,
) -> Result<bool, StateError> {
    let done = sqlx::query(
        "INSERT INTO occupancy (zone, person, inside, at) VALUES (?, ?, ?, ?)
         ON CONFLICT (zone, person) DO UPDATE SET inside = excluded.inside, at = excluded.at
         WHERE excluded.at >= occupancy.at",
    )
    .bind(i64::from(zone.0))
    .bind(i64::from(person.0))
    .bind(i64::from(inside))
    .bind(at.0)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A passage another controller recorded, as the central service reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemotePassage {
    /// The zone.
    pub zone: ZoneId,
    /// Who.
    pub person: PersonId,
    /// Inside after it (an entry) or not (an exit).
    pub inside: bool,
    /// When it happened.
    pub at: Timestamp,
}

/// Merges passages recorded elsewhere: each one counts only if it is newer
/// than what this controller knows of that person in that zone. Returns the
/// ones that changed the memory on disk, for the decision loop to apply.
pub async fn merge_remote(
    pool: &SqlitePool,
    passages: &[RemotePassage],
) -> Result<Vec<RemotePassage>, StateError> {
    let mut tx = pool.begin().await?;
    let mut changed = Vec::new();
    for p in passages {
        if put_passage(&mut tx, p.zone, p.person, p.inside, p.at).await? {
            changed.push(*p);
        }
    }
    tx.commit().await?;
    Ok(changed)
}

/// Whether each of these people is inside each zone, as the disk has it now:
/// the decision loop brings its memory in line after passages were merged
/// (reading back, not replaying, so a newer local passage written meanwhile wins).
pub async fn inside_now(
    pool: &SqlitePool,
    pairs: &[(ZoneId, PersonId)],
) -> Result<Vec<(ZoneId, PersonId, bool)>, StateError> {
    let mut out = Vec::with_capacity(pairs.len());
    for &(zone, person) in pairs {
        let inside: Option<i64> =
            sqlx::query_scalar("SELECT inside FROM occupancy WHERE zone = ? AND person = ?")
                .bind(i64::from(zone.0))
                .bind(i64::from(person.0))
                .fetch_optional(pool)
                .await?;
        out.push((zone, person, inside == Some(1)));
    }
    Ok(out)
}

/// Reads the memory back at start: who is inside, and the waits in progress.
pub async fn load(pool: &SqlitePool) -> Result<Memory, StateError> {
    let mut memory = Memory::new();
    let inside: Vec<(i64, i64)> =
        sqlx::query_as("SELECT zone, person FROM occupancy WHERE inside = 1 ORDER BY zone, person")
            .fetch_all(pool)
            .await?;
    for (zone, person) in inside {
        let (Ok(zone), Ok(person)) = (u32::try_from(zone), u32::try_from(person)) else {
            return Err(StateError::Corrupt {
                what: "occupancy row",
                detail: format!("zone {zone} person {person}"),
            });
        };
        memory.set_inside(ZoneId(zone), PersonId(person), true);
    }
    let waits: Option<(String,)> = sqlx::query_as("SELECT body FROM waits WHERE id = 1")
        .fetch_optional(pool)
        .await?;
    if let Some((body,)) = waits {
        // Waits last seconds; occupancy is what anti-passback needs. An
        // unreadable wait row (from a future version, say) costs the waits,
        // never the occupancy.
        match serde_json::from_str::<Waits>(&body) {
            Ok(waits) => memory.restore_waits(waits),
            Err(error) => {
                tracing::error!(%error, "stored waits unreadable; waits in progress are dropped")
            }
        }
    }
    Ok(memory)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pool() -> (tempfile::TempDir, SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::state::open(&dir.path().join("c.sqlite"))
            .await
            .unwrap();
        (dir, pool)
    }

    fn passage(person: u32, from: u32, to: u32) -> Passage {
        Passage {
            person: PersonId(person),
            from: ZoneId(from),
            to: ZoneId(to),
        }
    }

    #[tokio::test]
    async fn passages_written_with_a_change_are_read_back() {
        let (_dir, pool) = pool().await;
        let change = MemoryChange {
            passages: vec![passage(7, 1, 4), passage(8, 1, 4), passage(8, 4, 1)],
            waits: None,
        };
        let mut tx = pool.begin().await.unwrap();
        change.write(&mut tx, Timestamp(1_000)).await.unwrap();
        tx.commit().await.unwrap();
        let memory = load(&pool).await.unwrap();
        assert!(memory.is_inside(ZoneId(4), PersonId(7)));
        assert!(!memory.is_inside(ZoneId(4), PersonId(8)));
        assert!(memory.is_inside(ZoneId(1), PersonId(8)));
        assert!(!memory.is_inside(ZoneId(1), PersonId(7)));
    }

    #[tokio::test]
    async fn an_older_remote_passage_does_not_undo_a_newer_local_one() {
        let (_dir, pool) = pool().await;
        let mut tx = pool.begin().await.unwrap();
        MemoryChange {
            passages: vec![passage(7, 1, 4)],
            waits: None,
        }
        .write(&mut tx, Timestamp(2_000))
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let stale = RemotePassage {
            zone: ZoneId(4),
            person: PersonId(7),
            inside: false,
            at: Timestamp(1_000),
        };
        let fresh = RemotePassage {
            at: Timestamp(3_000),
            ..stale
        };
        assert!(merge_remote(&pool, &[stale]).await.unwrap().is_empty());
        assert!(load(&pool).await.unwrap().is_inside(ZoneId(4), PersonId(7)));
        assert_eq!(merge_remote(&pool, &[fresh]).await.unwrap(), vec![fresh]);
        assert!(!load(&pool).await.unwrap().is_inside(ZoneId(4), PersonId(7)));
    }

    #[tokio::test]
    async fn unreadable_waits_cost_the_waits_not_the_occupancy() {
        let (_dir, pool) = pool().await;
        let mut tx = pool.begin().await.unwrap();
        MemoryChange {
            passages: vec![passage(7, 1, 4)],
            waits: None,
        }
        .write(&mut tx, Timestamp(2_000))
        .await
        .unwrap();
        tx.commit().await.unwrap();
        sqlx::query("INSERT INTO waits (id, body) VALUES (1, 'not json')")
            .execute(&pool)
            .await
            .unwrap();
        let memory = load(&pool).await.unwrap();
        assert!(memory.is_inside(ZoneId(4), PersonId(7)));
        assert!(memory.waiting().is_empty());
    }
}
