//! Musters of an evacuation: per zone, the people recorded inside and who of
//! them has been marked safe in the current muster; a new muster starts with
//! no marks and keeps the earlier ones as history.

use serde::Serialize;
use utoipa::ToSchema;

use super::queries::Occupant;
use super::resources::Id;
use super::{now_ms, Store, StoreError, StoreResult};

/// One muster: started for a zone, by whom, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MusterInfo {
    /// The muster's id.
    pub id: i64,
    /// The zone.
    pub zone_id: i64,
    /// Who started it.
    pub started_by: String,
    /// When (ms since epoch).
    pub started_at: i64,
    /// How many people were marked safe in it.
    pub marked: i64,
}

/// Someone inside, and whether the current muster has them safe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MusterEntry {
    /// Who, since when, through which door, with which escort.
    pub occupant: Occupant,
    /// Who marked them safe in the current muster.
    pub marked_by: Option<String>,
    /// When (ms since epoch).
    pub marked_at: Option<i64>,
}

/// A zone's muster list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MusterList {
    /// The zone.
    pub zone_id: i64,
    /// Its name.
    pub zone_name: String,
    /// The current muster, if one was started.
    pub current: Option<MusterInfo>,
    /// Everyone recorded inside, unaccounted for first.
    pub people: Vec<MusterEntry>,
    /// How many inside are not yet marked safe.
    pub unaccounted: usize,
    /// Earlier musters of the zone, newest first (at most ten).
    pub earlier: Vec<MusterInfo>,
}

type MusterRow = (i64, i64, String, i64, i64);

const MUSTER_COLUMNS: &str = "SELECT m.id, m.zone_id, m.started_by, m.started_at, \
     (SELECT COUNT(*) FROM muster_marks k WHERE k.muster_id = m.id) AS marked FROM musters m";

fn info((id, zone_id, started_by, started_at, marked): MusterRow) -> MusterInfo {
    MusterInfo {
        id,
        zone_id,
        started_by,
        started_at,
        marked,
    }
}

impl Store {
    /// The muster lists of the tracked zones (every one, or just `zone`).
    pub async fn muster_lists(&self, zone: Option<Id>) -> StoreResult<Vec<MusterList>> {
        let inside = self.inside().await?;
        if let Some(z) = zone {
            if !inside.iter().any(|o| o.zone_id == z) {
                return Err(StoreError::NotFound(format!(
                    "zone {z} (or it does not track who is inside)"
                )));
            }
        }
        let mut out = Vec::new();
        for occupancy in inside
            .into_iter()
            .filter(|o| zone.is_none_or(|z| z == o.zone_id))
        {
            let zone_id = occupancy.zone_id.get();
            let musters: Vec<MusterRow> = sqlx::query_as(&format!(
                "{MUSTER_COLUMNS} WHERE m.zone_id = $1 ORDER BY m.id DESC LIMIT 11"
            ))
            .bind(zone_id)
            .fetch_all(self.pool())
            .await?;
            let mut musters = musters.into_iter().map(info);
            let current = musters.next();
            let marks: Vec<(i64, String, i64)> = match &current {
                Some(m) => sqlx::query_as(
                    "SELECT person_id, marked_by, marked_at FROM muster_marks WHERE muster_id = $1",
                )
                .bind(m.id)
                .fetch_all(self.pool())
                .await?,
                None => Vec::new(),
            };
            let mut people: Vec<MusterEntry> = occupancy
                .people
                .into_iter()
                .map(|occupant| {
                    let mark = marks.iter().find(|(p, _, _)| *p == occupant.person_id);
                    MusterEntry {
                        marked_by: mark.map(|(_, by, _)| by.clone()),
                        marked_at: mark.map(|(_, _, at)| *at),
                        occupant,
                    }
                })
                .collect();
            // Unaccounted for first; each group in the order they entered.
            people.sort_by_key(|e| e.marked_at.is_some());
            let unaccounted = people.iter().filter(|e| e.marked_at.is_none()).count();
            out.push(MusterList {
                zone_id,
                zone_name: occupancy.zone_name,
                current,
                people,
                unaccounted,
                earlier: musters.collect(),
            });
        }
        Ok(out)
    }

    /// Starts a new muster for `zone`: nobody is marked safe in it yet; the
    /// earlier musters and their marks stay as they were.
    pub async fn start_muster(&self, actor: &str, zone: Id) -> StoreResult<i64> {
        self.tracked_zone(zone).await?;
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO musters (zone_id, started_by, started_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(zone.get())
        .bind(actor)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        self.audit(
            &mut tx,
            actor,
            "muster.start",
            &format!("zone:{zone}"),
            &serde_json::json!({"muster": id}),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Marks `person` safe in the zone's current muster (starting one if the
    /// zone has none). Marking someone already marked changes nothing.
    /// Returns the muster's id.
    pub async fn mark_safe(&self, actor: &str, zone: Id, person: Id) -> StoreResult<i64> {
        self.tracked_zone(zone).await?;
        let known: Option<i64> = sqlx::query_scalar("SELECT id FROM people WHERE id = $1")
            .bind(person.get())
            .fetch_optional(self.pool())
            .await?;
        if known.is_none() {
            return Err(StoreError::MissingReference(format!("no person {person}")));
        }
        let mut tx = self.begin().await?;
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM musters WHERE zone_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(zone.get())
        .fetch_optional(&mut *tx)
        .await?;
        let muster = match current {
            Some(id) => id,
            None => {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO musters (zone_id, started_by, started_at) VALUES ($1, $2, $3) RETURNING id",
                )
                .bind(zone.get())
                .bind(actor)
                .bind(now_ms())
                .fetch_one(&mut *tx)
                .await?;
                self.audit(
                    &mut tx,
                    actor,
                    "muster.start",
                    &format!("zone:{zone}"),
                    &serde_json::json!({"muster": id}),
                )
                .await?;
                id
            }
        };
        let already: Option<i64> = sqlx::query_scalar(
            "SELECT person_id FROM muster_marks WHERE muster_id = $1 AND person_id = $2",
        )
        .bind(muster)
        .bind(person.get())
        .fetch_optional(&mut *tx)
        .await?;
        if already.is_none() {
            sqlx::query(
                "INSERT INTO muster_marks (muster_id, person_id, marked_by, marked_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(muster)
            .bind(person.get())
            .bind(actor)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::conflict_or(e, "marked safe at the same moment; try again"))?;
            self.audit(
                &mut tx,
                actor,
                "muster.mark_safe",
                &format!("person:{person}"),
                &serde_json::json!({"muster": muster, "zone": zone.get()}),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(muster)
    }

    /// `zone`, if it exists and tracks who is inside.
    async fn tracked_zone(&self, zone: Id) -> StoreResult<()> {
        let settings: Option<(i64, String)> =
            sqlx::query_as("SELECT level, settings FROM zones WHERE id = $1")
                .bind(zone.get())
                .fetch_optional(self.pool())
                .await?;
        match settings {
            None => Err(StoreError::NotFound(format!("zone {zone}"))),
            Some((level, settings))
                if level == 4 || super::queries::tracks_occupancy(&settings) =>
            {
                Ok(())
            }
            Some(_) => Err(StoreError::Invalid(format!(
                "zone {zone} does not track who is inside (no anti-passback, dual custody or level 4)"
            ))),
        }
    }
}
