//! What the live monitor reads: events by batch or in receive order, each
//! door's last state-changing event, and each controller's health.

use serde::Serialize;
use utoipa::ToSchema;

use super::events::StoredRange;
use super::passages::PassageCursor;
use super::queries::{event_row, EventRecord, EVENT_COLUMNS};
use super::{Store, StoreResult};

/// Event kinds that say what a door's lock or leaf is doing (a granted
/// access releases it; the rest are the door's own reports).
const DOOR_STATE_KINDS: &str = "'door_forced', 'door_held_open', 'door_closed', 'forced_passage', \
     'gate_passage', 'gate_unused', 'tailgating'";

/// A door as the monitor shows it, with the last event that set its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MonitoredDoor {
    /// The door.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// `door` or `gate`.
    pub kind: String,
    /// The zone it leads into.
    pub zone_id: i64,
    /// That zone's name.
    pub zone_name: String,
    /// That zone's level (0–4).
    pub level: i64,
    /// The zone's site.
    pub site_id: i64,
    /// The controller driving it.
    pub controller_id: Option<i64>,
    /// The last state-changing event: (kind, outcome, when).
    #[serde(skip)]
    pub last: Option<(String, Option<String>, i64)>,
}

/// A controller's health as the monitor shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MonitoredController {
    /// The controller.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its site.
    pub site_id: i64,
    /// Its last contact (ms since the epoch); none if it never checked in.
    pub last_seen_at: Option<i64>,
    /// When its current outage was noticed; none while it checks in.
    pub offline_since: Option<i64>,
    /// Disabled by an admin.
    pub disabled: bool,
    /// The policy version it confirmed.
    pub policy_version: i64,
}

type DoorRow = (i64, String, String, i64, String, i64, i64, Option<i64>);
type ControllerRow = (i64, String, i64, Option<i64>, Option<i64>, i64, i64);

impl Store {
    /// The events of one ingested batch, in sequence order.
    pub async fn events_in_range(&self, range: StoredRange) -> StoreResult<Vec<EventRecord>> {
        let rows = sqlx::query(&format!(
            "{EVENT_COLUMNS} WHERE e.controller_id = $1 AND e.epoch = $2 AND e.seq BETWEEN $3 AND $4 ORDER BY e.seq"
        ))
        .bind(range.controller)
        .bind(range.epoch)
        .bind(range.first)
        .bind(range.last)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(event_row).collect()
    }

    /// Up to `limit` events received after `after` (all of them from the
    /// start without it), in receive order: what a monitor missed.
    pub async fn events_received_after(
        &self,
        after: PassageCursor,
        limit: i64,
    ) -> StoreResult<Vec<EventRecord>> {
        // The plain bound lets both databases range-scan events_received;
        // the row comparison then breaks ties exactly.
        let rows = sqlx::query(&format!(
            "{EVENT_COLUMNS} WHERE e.received_at >= $1 \
             AND (e.received_at, e.controller_id, e.epoch, e.seq) > ($1, $2, $3, $4) \
             ORDER BY e.received_at, e.controller_id, e.epoch, e.seq LIMIT $5"
        ))
        .bind(after.received_at)
        .bind(after.controller)
        .bind(after.epoch)
        .bind(after.seq)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(event_row).collect()
    }

    /// The newest `limit` events in receive order, oldest first.
    pub async fn latest_received(&self, limit: i64) -> StoreResult<Vec<EventRecord>> {
        let rows = sqlx::query(&format!(
            "{EVENT_COLUMNS} ORDER BY e.received_at DESC, e.controller_id DESC, e.epoch DESC, e.seq DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut events = rows
            .iter()
            .map(event_row)
            .collect::<StoreResult<Vec<_>>>()?;
        events.reverse();
        Ok(events)
    }

    /// Every door with its zone, each with the last event that set its
    /// state unless `known` already holds the door (the monitor keeps
    /// those up to date itself).
    pub async fn monitored_doors(
        &self,
        known: &std::collections::HashSet<i64>,
    ) -> StoreResult<Vec<MonitoredDoor>> {
        let rows: Vec<DoorRow> = sqlx::query_as(
            "SELECT d.id, d.name, d.kind, z.id, z.name, z.level, z.site_id, d.controller_id \
             FROM doors d JOIN zones z ON z.id = d.inside_zone_id ORDER BY z.site_id, z.level DESC, d.name, d.id",
        )
        .fetch_all(self.pool())
        .await?;
        let mut doors = Vec::with_capacity(rows.len());
        for (id, name, kind, zone_id, zone_name, level, site_id, controller_id) in rows {
            let last = if known.contains(&id) {
                None
            } else {
                sqlx::query_as(&format!(
                    "SELECT kind, outcome, at FROM events WHERE door_id = $1 \
                     AND (kind IN ({DOOR_STATE_KINDS}) OR (kind = 'access' AND outcome = 'granted')) \
                     ORDER BY at DESC LIMIT 1"
                ))
                .bind(id)
                .fetch_optional(self.pool())
                .await?
            };
            doors.push(MonitoredDoor {
                id,
                name,
                kind,
                zone_id,
                zone_name,
                level,
                site_id,
                controller_id,
                last,
            });
        }
        Ok(doors)
    }

    /// Every controller's health.
    pub async fn monitored_controllers(&self) -> StoreResult<Vec<MonitoredController>> {
        let rows: Vec<ControllerRow> = sqlx::query_as(
            "SELECT id, name, site_id, last_seen_at, offline_alarm_at, disabled, policy_version \
             FROM controllers ORDER BY site_id, name, id",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, name, site_id, last_seen_at, offline_since, disabled, policy_version)| {
                    MonitoredController {
                        id,
                        name,
                        site_id,
                        last_seen_at,
                        offline_since,
                        disabled: disabled != 0,
                        policy_version,
                    }
                },
            )
            .collect())
    }
}

impl PassageCursor {
    /// The position of an event in receive order.
    pub fn of_event(e: &EventRecord) -> Self {
        Self {
            received_at: e.received_at,
            controller: e.controller_id,
            epoch: e.epoch_column,
            seq: e.seq,
        }
    }

    /// Before every event.
    pub fn start() -> Self {
        Self {
            received_at: 0,
            controller: 0,
            epoch: 0,
            seq: 0,
        }
    }
}
