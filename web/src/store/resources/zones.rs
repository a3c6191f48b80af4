//! Zones (level, opening schedule, settings, threat level) and weekly schedules.

use serde::{Deserialize, Serialize};
use tobira_firmware as fw;
use utoipa::ToSchema;

use super::{
    combinations, ensure_exists, ensure_unlisted, id_cursor, page_size, paged, stored_id, Change,
    Id, Level, Name, Page, ThreatLevel, TimeWindow, Tx, ZoneSettings,
};
use crate::store::{ChangeScope, Store, StoreError, StoreResult};

/// An area with one security level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Zone {
    /// The zone's id.
    pub id: Id,
    /// The site it belongs to.
    pub site_id: Id,
    /// Its name.
    pub name: String,
    /// Its security level.
    pub level: Level,
    /// When a level-1 zone is open to the public without a card.
    pub opening_schedule_id: Option<Id>,
    /// Its settings.
    pub settings: ZoneSettings,
}

/// What a client sends to create or update a zone.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneInput {
    /// The site it belongs to.
    pub site_id: Id,
    /// Its name.
    pub name: Name,
    /// Its security level.
    pub level: Level,
    /// Opening schedule (level 1: open to the public while active).
    #[serde(default)]
    pub opening_schedule_id: Option<Id>,
    /// Settings; omitted = the defaults for the level.
    #[serde(default, deserialize_with = "super::option_object")]
    pub settings: Option<ZoneSettings>,
}

/// A named weekly schedule: opening hours, working hours, a shift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Schedule {
    /// The schedule's id.
    pub id: Id,
    /// Its name.
    pub name: String,
    /// Its windows; the schedule is active when any window is.
    pub windows: Vec<TimeWindow>,
}

/// What a client sends to create or update a schedule.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    /// Its name.
    pub name: Name,
    /// Its windows (at most 64).
    #[schema(max_items = 64)]
    #[serde(deserialize_with = "super::object_list")]
    pub windows: Vec<TimeWindow>,
}

type ZoneRow = (i64, i64, String, i64, Option<i64>, String);

const ZONE_COLUMNS: &str =
    "SELECT id, site_id, name, level, opening_schedule_id, settings FROM zones";

fn zone(row: ZoneRow) -> StoreResult<Zone> {
    Ok(Zone {
        id: stored_id(row.0)?,
        site_id: stored_id(row.1)?,
        name: row.2,
        level: Level::new(row.3)
            .ok_or_else(|| StoreError::Corrupt(format!("zone level {}", row.3)))?,
        opening_schedule_id: row.4.map(stored_id).transpose()?,
        settings: ZoneSettings::from_stored(&row.5)?,
    })
}

fn schedule(row: (i64, String, String)) -> StoreResult<Schedule> {
    let windows: Vec<fw::TimeWindow> = serde_json::from_str(&row.2)
        .map_err(|e| StoreError::Corrupt(format!("schedule windows: {e}")))?;
    Ok(Schedule {
        id: stored_id(row.0)?,
        name: row.1,
        windows: windows.into_iter().map(Into::into).collect(),
    })
}

fn stored_windows(windows: &[TimeWindow]) -> StoreResult<String> {
    if windows.len() > 64 {
        return Err(StoreError::Invalid(
            "a schedule has at most 64 windows".into(),
        ));
    }
    for w in windows {
        w.validate()?;
    }
    let fw: Vec<fw::TimeWindow> = windows.iter().copied().map(Into::into).collect();
    serde_json::to_string(&fw).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The site and opening schedule a zone names must exist.
async fn zone_refs(tx: &mut Tx, input: &ZoneInput) -> StoreResult<()> {
    ensure_exists(tx, "sites", input.site_id, "site").await?;
    if let Some(schedule) = input.opening_schedule_id {
        ensure_exists(tx, "schedules", schedule, "schedule").await?;
    }
    Ok(())
}

impl Store {
    /// Zones by id, optionally of one site.
    pub async fn list_zones(
        &self,
        site: Option<Id>,
        limit: Option<i64>,
        cursor: Option<&str>,
    ) -> StoreResult<Page<Zone>> {
        let limit = page_size(limit)?;
        let rows: Vec<ZoneRow> = sqlx::query_as(&format!(
            "{ZONE_COLUMNS} WHERE id > $1 AND ($2 = 0 OR site_id = $2) ORDER BY id LIMIT $3"
        ))
        .bind(id_cursor(cursor)?)
        .bind(site.map_or(0, Id::get))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let items = rows
            .into_iter()
            .map(zone)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paged(items, limit, |z| z.id.to_string()))
    }

    /// One zone.
    pub async fn zone(&self, id: Id) -> StoreResult<Zone> {
        zone(self.row_by_id::<ZoneRow>(ZONE_COLUMNS, id, "zone").await?)
    }

    /// Adds a zone; settings default from the level.
    pub async fn create_zone(&self, actor: &str, input: &ZoneInput) -> StoreResult<Zone> {
        let mut settings = input
            .settings
            .unwrap_or_else(|| ZoneSettings::for_level(input.level));
        settings.validate()?;
        settings.threat = ThreatLevel::Normal;
        let mut tx = self.begin().await?;
        zone_refs(&mut tx, input).await?;
        combinations::check_zone(input.level, input.opening_schedule_id, &settings)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO zones (site_id, name, level, opening_schedule_id, settings) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(input.site_id.get())
        .bind(input.name.as_str())
        .bind(input.level.get())
        .bind(input.opening_schedule_id.map(Id::get))
        .bind(settings.to_stored()?)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| StoreError::conflict_or(e, "no such site or opening schedule"))?;
        let id = stored_id(id)?;
        let target = format!("zone:{id}");
        let version = self.structure_change(&mut tx, &target).await?;
        let detail = serde_json::json!({"site_id": input.site_id, "name": input.name, "level": input.level, "opening_schedule_id": input.opening_schedule_id, "settings": settings});
        self.finish(
            tx,
            Change {
                actor,
                action: "zone.create",
                target,
                detail,
                version,
            },
        )
        .await?;
        self.zone(id).await
    }

    /// Replaces a zone's configuration (its threat level is kept).
    pub async fn update_zone(&self, actor: &str, id: Id, input: &ZoneInput) -> StoreResult<Zone> {
        let mut settings = input
            .settings
            .unwrap_or_else(|| ZoneSettings::for_level(input.level));
        settings.validate()?;
        let mut tx = self.begin().await?;
        let stored: Option<String> = sqlx::query_scalar("SELECT settings FROM zones WHERE id = $1")
            .bind(id.get())
            .fetch_optional(&mut *tx)
            .await?;
        let stored = stored.ok_or_else(|| StoreError::NotFound(format!("zone {id}")))?;
        zone_refs(&mut tx, input).await?;
        combinations::check_zone(input.level, input.opening_schedule_id, &settings)?;
        settings.threat = ZoneSettings::from_stored(&stored)?.threat;
        // Doors stay within one site: a zone with doors cannot move to another.
        let moved_with_doors: Option<i64> = sqlx::query_scalar(
            "SELECT d.id FROM doors d JOIN zones z ON z.id = $1 \
             WHERE (d.inside_zone_id = $1 OR d.outside_zone_id = $1) AND z.site_id <> $2 LIMIT 1",
        )
        .bind(id.get())
        .bind(input.site_id.get())
        .fetch_optional(&mut *tx)
        .await?;
        if moved_with_doors.is_some() {
            return Err(StoreError::Conflict(
                "doors join this zone to its site; it cannot move to another site".into(),
            ));
        }
        sqlx::query("UPDATE zones SET site_id = $1, name = $2, level = $3, opening_schedule_id = $4, settings = $5 WHERE id = $6")
            .bind(input.site_id.get())
            .bind(input.name.as_str())
            .bind(input.level.get())
            .bind(input.opening_schedule_id.map(Id::get))
            .bind(settings.to_stored()?)
            .bind(id.get())
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::conflict_or(e, "no such site or opening schedule"))?;
        // A new level or kind rules must not leave a booking meaningless.
        combinations::check_bookings(&mut tx, None).await?;
        let target = format!("zone:{id}");
        let version = self.structure_change(&mut tx, &target).await?;
        let detail = serde_json::json!({"site_id": input.site_id, "name": input.name, "level": input.level, "opening_schedule_id": input.opening_schedule_id, "settings": settings});
        self.finish(
            tx,
            Change {
                actor,
                action: "zone.update",
                target,
                detail,
                version,
            },
        )
        .await?;
        self.zone(id).await
    }

    /// Removes a zone that no door, booking or grant refers to.
    pub async fn delete_zone(&self, actor: &str, id: Id) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        ensure_unlisted(
            &mut tx,
            "SELECT zones FROM grants",
            id,
            "grant zones",
            "a grant still names this zone",
        )
        .await?;
        self.delete_structure(
            tx,
            actor,
            "zone",
            "zones",
            id,
            "doors or bookings still refer to this zone",
        )
        .await
    }

    /// Sets a zone's own threat level: an urgent change.
    pub async fn set_zone_threat(
        &self,
        actor: &str,
        id: Id,
        threat: ThreatLevel,
    ) -> StoreResult<Zone> {
        let mut tx = self.begin().await?;
        let stored: Option<String> = sqlx::query_scalar("SELECT settings FROM zones WHERE id = $1")
            .bind(id.get())
            .fetch_optional(&mut *tx)
            .await?;
        let mut settings = ZoneSettings::from_stored(
            &stored.ok_or_else(|| StoreError::NotFound(format!("zone {id}")))?,
        )?;
        settings.threat = threat;
        sqlx::query("UPDATE zones SET settings = $1 WHERE id = $2")
            .bind(settings.to_stored()?)
            .bind(id.get())
            .execute(&mut *tx)
            .await?;
        let target = format!("zone:{id}");
        let version = self
            .record_change(&mut tx, ChangeScope::Threat, &target, true)
            .await?;
        let detail = serde_json::json!({"threat": threat});
        self.finish(
            tx,
            Change {
                actor,
                action: "zone.threat",
                target,
                detail,
                version: Some((version, true)),
            },
        )
        .await?;
        self.zone(id).await
    }

    /// Schedules by id.
    pub async fn list_schedules(
        &self,
        limit: Option<i64>,
        cursor: Option<&str>,
    ) -> StoreResult<Page<Schedule>> {
        let limit = page_size(limit)?;
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT id, name, windows FROM schedules WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(id_cursor(cursor)?)
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let items = rows
            .into_iter()
            .map(schedule)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paged(items, limit, |s| s.id.to_string()))
    }

    /// One schedule.
    pub async fn schedule(&self, id: Id) -> StoreResult<Schedule> {
        let row: Option<(i64, String, String)> =
            sqlx::query_as("SELECT id, name, windows FROM schedules WHERE id = $1")
                .bind(id.get())
                .fetch_optional(self.pool())
                .await?;
        schedule(row.ok_or_else(|| StoreError::NotFound(format!("schedule {id}")))?)
    }

    /// Adds a schedule.
    pub async fn create_schedule(
        &self,
        actor: &str,
        input: &ScheduleInput,
    ) -> StoreResult<Schedule> {
        let windows = stored_windows(&input.windows)?;
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO schedules (name, windows) VALUES ($1, $2) RETURNING id",
        )
        .bind(input.name.as_str())
        .bind(&windows)
        .fetch_one(&mut *tx)
        .await?;
        let id = stored_id(id)?;
        let target = format!("schedule:{id}");
        let version = self.structure_change(&mut tx, &target).await?;
        let detail = serde_json::json!({"name": input.name, "windows": input.windows});
        self.finish(
            tx,
            Change {
                actor,
                action: "schedule.create",
                target,
                detail,
                version,
            },
        )
        .await?;
        self.schedule(id).await
    }

    /// Replaces a schedule.
    pub async fn update_schedule(
        &self,
        actor: &str,
        id: Id,
        input: &ScheduleInput,
    ) -> StoreResult<Schedule> {
        let windows = stored_windows(&input.windows)?;
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE schedules SET name = $1, windows = $2 WHERE id = $3")
            .bind(input.name.as_str())
            .bind(&windows)
            .bind(id.get())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("schedule {id}")));
        }
        let target = format!("schedule:{id}");
        let version = self.structure_change(&mut tx, &target).await?;
        let detail = serde_json::json!({"name": input.name, "windows": input.windows});
        self.finish(
            tx,
            Change {
                actor,
                action: "schedule.update",
                target,
                detail,
                version,
            },
        )
        .await?;
        self.schedule(id).await
    }

    /// Removes a schedule no zone or grant uses.
    pub async fn delete_schedule(&self, actor: &str, id: Id) -> StoreResult<()> {
        let tx = self.begin().await?;
        self.delete_structure(
            tx,
            actor,
            "schedule",
            "schedules",
            id,
            "zones or grants still use this schedule",
        )
        .await
    }
}
