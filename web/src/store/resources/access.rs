//! Access groups with their members, grants (zones × schedule × validity) and
//! room bookings (temporary grants to a room and the way to it).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::people::Person;
use super::{
    check_validity, combinations, delete_row, ensure_exists, id_cursor, millis, page_size, paged,
    stored_id, Change, Id, Millis, Name, Page, Tx,
};
use crate::store::{ChangeScope, Store, StoreError, StoreResult};

/// A named set of people who share grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Group {
    /// The group's id.
    pub id: Id,
    /// Its name.
    pub name: String,
}

/// What a client sends to create or rename a group.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    /// Its name.
    pub name: Name,
}

/// Access for a group's members to some zones, on a schedule, within a validity window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Grant {
    /// The grant's id.
    pub id: Id,
    /// The group whose members it applies to.
    pub group_id: Id,
    /// Zones it opens, ascending.
    pub zones: Vec<Id>,
    /// When it applies; null = at any time.
    pub schedule_id: Option<Id>,
    /// Not valid before.
    pub valid_from: Option<Millis>,
    /// Not valid from.
    pub valid_until: Option<Millis>,
}

/// What a client sends to create or update a grant.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantInput {
    /// The group whose members it applies to.
    pub group_id: Id,
    /// Zones it opens (1 to 256; repeats are dropped).
    #[schema(min_items = 1, max_items = 256)]
    pub zones: Vec<Id>,
    /// When it applies; null = at any time.
    #[serde(default)]
    pub schedule_id: Option<Id>,
    /// Not valid before.
    #[serde(default)]
    pub valid_from: Option<Millis>,
    /// Not valid from; after `valid_from`.
    #[serde(default)]
    pub valid_until: Option<Millis>,
}

/// A room booking: a temporary grant for one person to a room and the doors
/// on the way to it, for the booking's time window only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Booking {
    /// The booking's id.
    pub id: Id,
    /// Who booked.
    pub person_id: Id,
    /// The booked room.
    pub room_zone_id: Id,
    /// Doors on the way to the room.
    pub path: Vec<Id>,
    /// Start of the window.
    pub start_at: Millis,
    /// End of the window (exclusive).
    pub end_at: Millis,
}

/// Longest booking: 31 days.
pub const MAX_BOOKING_MS: i64 = 31 * 86_400_000;

/// What a client sends to create or update a booking.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookingInput {
    /// Who booked.
    pub person_id: Id,
    /// The booked room.
    pub room_zone_id: Id,
    /// Doors on the way to the room (at most 32; repeats are dropped).
    #[serde(default)]
    #[schema(max_items = 32)]
    pub path: Vec<Id>,
    /// Start of the window.
    pub start_at: Millis,
    /// End of the window (exclusive): after `start_at`, at most 31 days later.
    pub end_at: Millis,
}

type GrantRow = (i64, i64, String, Option<i64>, Option<i64>, Option<i64>);
const GRANT_COLUMNS: &str =
    "SELECT id, group_id, zones, schedule_id, valid_from, valid_until FROM grants";

fn id_list(text: &str, what: &str) -> StoreResult<Vec<Id>> {
    let ids: Vec<i64> =
        serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?;
    ids.into_iter().map(stored_id).collect()
}

fn grant(row: GrantRow) -> StoreResult<Grant> {
    Ok(Grant {
        id: stored_id(row.0)?,
        group_id: stored_id(row.1)?,
        zones: id_list(&row.2, "grant zones")?,
        schedule_id: row.3.map(stored_id).transpose()?,
        valid_from: millis(row.4),
        valid_until: millis(row.5),
    })
}

type BookingRow = (i64, i64, i64, String, i64, i64);
const BOOKING_COLUMNS: &str =
    "SELECT id, person_id, room_zone_id, path, start_at, end_at FROM bookings";

fn booking(row: BookingRow) -> StoreResult<Booking> {
    let time =
        |v: i64| Millis::new(v).ok_or_else(|| StoreError::Corrupt(format!("booking time {v}")));
    Ok(Booking {
        id: stored_id(row.0)?,
        person_id: stored_id(row.1)?,
        room_zone_id: stored_id(row.2)?,
        path: id_list(&row.3, "booking path")?,
        start_at: time(row.4)?,
        end_at: time(row.5)?,
    })
}

/// Checks that each id exists in `table`, and returns the ids sorted and
/// without repeats as stored JSON.
async fn stored_ids(tx: &mut Tx, ids: &[Id], table: &str, what: &str) -> StoreResult<String> {
    let mut sorted: Vec<i64> = ids.iter().map(|i| i.get()).collect();
    sorted.sort_unstable();
    sorted.dedup();
    for id in &sorted {
        let found: Option<i64> =
            sqlx::query_scalar(&format!("SELECT id FROM {table} WHERE id = $1"))
                .bind(*id)
                .fetch_optional(&mut **tx)
                .await?;
        if found.is_none() {
            return Err(StoreError::MissingReference(format!("no {what} {id}")));
        }
    }
    serde_json::to_string(&sorted).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The group and schedule a grant names must exist.
async fn grant_refs(tx: &mut Tx, input: &GrantInput) -> StoreResult<()> {
    ensure_exists(tx, "access_groups", input.group_id, "group").await?;
    if let Some(schedule) = input.schedule_id {
        ensure_exists(tx, "schedules", schedule, "schedule").await?;
    }
    Ok(())
}

/// The person and room a booking names must exist.
async fn booking_refs(tx: &mut Tx, input: &BookingInput) -> StoreResult<()> {
    ensure_exists(tx, "people", input.person_id, "person").await?;
    ensure_exists(tx, "zones", input.room_zone_id, "zone").await
}

async fn members(tx: &mut Tx, group: Id) -> StoreResult<Vec<i64>> {
    Ok(
        sqlx::query_scalar("SELECT person_id FROM group_members WHERE group_id = $1")
            .bind(group.get())
            .fetch_all(&mut **tx)
            .await?,
    )
}

pub(crate) fn check_grant(input: &GrantInput) -> StoreResult<()> {
    if input.zones.is_empty() || input.zones.len() > 256 {
        return Err(StoreError::Invalid("a grant names 1 to 256 zones".into()));
    }
    check_validity(input.valid_from, input.valid_until)
}

fn check_booking(input: &BookingInput) -> StoreResult<()> {
    if input.path.len() > 32 {
        return Err(StoreError::Invalid(
            "a booking path has at most 32 doors".into(),
        ));
    }
    let length = input.end_at.get() - input.start_at.get();
    if length <= 0 || length > MAX_BOOKING_MS {
        return Err(StoreError::Invalid(
            "a booking ends after it starts, at most 31 days later".into(),
        ));
    }
    Ok(())
}

impl Store {
    /// Groups by id.
    pub async fn list_groups(
        &self,
        limit: Option<i64>,
        cursor: Option<&str>,
    ) -> StoreResult<Page<Group>> {
        let limit = page_size(limit)?;
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, name FROM access_groups WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(id_cursor(cursor)?)
                .bind(limit + 1)
                .fetch_all(self.pool())
                .await?;
        let items = rows
            .into_iter()
            .map(|(id, name)| {
                Ok(Group {
                    id: stored_id(id)?,
                    name,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paged(items, limit, |g| g.id.to_string()))
    }

    /// One group.
    pub async fn group(&self, id: Id) -> StoreResult<Group> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT id, name FROM access_groups WHERE id = $1")
                .bind(id.get())
                .fetch_optional(self.pool())
                .await?;
        let (id, name) = row.ok_or_else(|| StoreError::NotFound(format!("group {id}")))?;
        Ok(Group {
            id: stored_id(id)?,
            name,
        })
    }

    /// Adds a group.
    pub async fn create_group(&self, actor: &str, input: &GroupInput) -> StoreResult<Group> {
        let mut tx = self.begin().await?;
        let id: i64 =
            sqlx::query_scalar("INSERT INTO access_groups (name) VALUES ($1) RETURNING id")
                .bind(input.name.as_str())
                .fetch_one(&mut *tx)
                .await?;
        let id = stored_id(id)?;
        let target = format!("group:{id}");
        let version = self.structure_change(&mut tx, &target).await?;
        let detail = serde_json::json!({"name": input.name});
        self.finish(
            tx,
            Change {
                actor,
                action: "group.create",
                target,
                detail,
                version,
            },
        )
        .await?;
        self.group(id).await
    }

    /// Renames a group.
    pub async fn update_group(
        &self,
        actor: &str,
        id: Id,
        input: &GroupInput,
    ) -> StoreResult<Group> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE access_groups SET name = $1 WHERE id = $2")
            .bind(input.name.as_str())
            .bind(id.get())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("group {id}")));
        }
        let target = format!("group:{id}");
        let version = self.structure_change(&mut tx, &target).await?;
        let detail = serde_json::json!({"name": input.name});
        self.finish(
            tx,
            Change {
                actor,
                action: "group.update",
                target,
                detail,
                version,
            },
        )
        .await?;
        self.group(id).await
    }

    /// Removes a group with its memberships and grants.
    pub async fn delete_group(&self, actor: &str, id: Id) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let people = members(&mut tx, id).await?;
        delete_row(
            &mut tx,
            "access_groups",
            id,
            "group",
            "the group is still referred to",
        )
        .await?;
        let target = format!("group:{id}");
        let version = self.structure_change(&mut tx, &target).await?;
        if let Some((v, _)) = version {
            self.touch_people(&mut tx, &people, v).await?;
        }
        self.finish(
            tx,
            Change {
                actor,
                action: "group.delete",
                target,
                detail: serde_json::json!({"members": people}),
                version,
            },
        )
        .await?;
        Ok(())
    }

    /// A group's members by person id.
    pub async fn list_members(
        &self,
        group: Id,
        limit: Option<i64>,
        cursor: Option<&str>,
    ) -> StoreResult<Page<Person>> {
        self.group(group).await?;
        let limit = page_size(limit)?;
        // One query for the page (a group may have thousands of members).
        let rows: Vec<super::people::PersonRow> = sqlx::query_as(
            "SELECT p.id, p.kind, p.name, p.organisation, p.external_id, p.created_at \
             FROM group_members m JOIN people p ON p.id = m.person_id \
             WHERE m.group_id = $1 AND m.person_id > $2 ORDER BY m.person_id LIMIT $3",
        )
        .bind(group.get())
        .bind(id_cursor(cursor)?)
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let items = rows
            .into_iter()
            .map(super::people::person)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paged(items, limit, |p| p.id.to_string()))
    }

    /// Adds a person to a group; returns false if they already were a member.
    pub async fn add_member(&self, actor: &str, group: Id, person: Id) -> StoreResult<bool> {
        self.group(group).await?;
        self.person(person).await?;
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "INSERT INTO group_members (group_id, person_id) VALUES ($1, $2) ON CONFLICT (group_id, person_id) DO NOTHING",
        )
        .bind(group.get())
        .bind(person.get())
        .execute(&mut *tx)
        .await
        // Both ids come from the path: one deleted meanwhile is a 404.
        .map_err(|e| match StoreError::conflict_or(e, &format!("group {group} or person {person}")) {
            StoreError::MissingReference(what) => StoreError::NotFound(what),
            other => other,
        })?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let target = format!("person:{person}");
        let version = self
            .person_change(&mut tx, &target, &[person.get()])
            .await?;
        let detail = serde_json::json!({"group_id": group});
        self.finish(
            tx,
            Change {
                actor,
                action: "group.add_member",
                target,
                detail,
                version,
            },
        )
        .await?;
        Ok(true)
    }

    /// Removes a person from a group.
    pub async fn remove_member(&self, actor: &str, group: Id, person: Id) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND person_id = $2")
            .bind(group.get())
            .bind(person.get())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "person {person} in group {group}"
            )));
        }
        let target = format!("person:{person}");
        let version = self
            .person_change(&mut tx, &target, &[person.get()])
            .await?;
        let detail = serde_json::json!({"group_id": group});
        self.finish(
            tx,
            Change {
                actor,
                action: "group.remove_member",
                target,
                detail,
                version,
            },
        )
        .await?;
        Ok(())
    }

    /// Grants by id, optionally of one group.
    pub async fn list_grants(
        &self,
        group: Option<Id>,
        limit: Option<i64>,
        cursor: Option<&str>,
    ) -> StoreResult<Page<Grant>> {
        let limit = page_size(limit)?;
        let rows: Vec<GrantRow> = sqlx::query_as(&format!(
            "{GRANT_COLUMNS} WHERE id > $1 AND ($2 = 0 OR group_id = $2) ORDER BY id LIMIT $3"
        ))
        .bind(id_cursor(cursor)?)
        .bind(group.map_or(0, Id::get))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let items = rows
            .into_iter()
            .map(grant)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paged(items, limit, |g| g.id.to_string()))
    }

    /// One grant.
    pub async fn grant(&self, id: Id) -> StoreResult<Grant> {
        grant(
            self.row_by_id::<GrantRow>(GRANT_COLUMNS, id, "grant")
                .await?,
        )
    }

    /// Adds a grant.
    pub async fn create_grant(&self, actor: &str, input: &GrantInput) -> StoreResult<Grant> {
        check_grant(input)?;
        let mut tx = self.begin().await?;
        grant_refs(&mut tx, input).await?;
        let zones = stored_ids(&mut tx, &input.zones, "zones", "zone").await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO grants (group_id, zones, schedule_id, valid_from, valid_until) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(input.group_id.get())
        .bind(&zones)
        .bind(input.schedule_id.map(Id::get))
        .bind(input.valid_from.map(Millis::get))
        .bind(input.valid_until.map(Millis::get))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| StoreError::conflict_or(e, "no such group or schedule"))?;
        let id = stored_id(id)?;
        let target = format!("grant:{id}");
        let version = self.structure_change(&mut tx, &target).await?;
        let detail = grant_detail(input);
        self.finish(
            tx,
            Change {
                actor,
                action: "grant.create",
                target,
                detail,
                version,
            },
        )
        .await?;
        self.grant(id).await
    }

    /// Replaces a grant.
    pub async fn update_grant(
        &self,
        actor: &str,
        id: Id,
        input: &GrantInput,
    ) -> StoreResult<Grant> {
        check_grant(input)?;
        let mut tx = self.begin().await?;
        grant_refs(&mut tx, input).await?;
        let zones = stored_ids(&mut tx, &input.zones, "zones", "zone").await?;
        let done = sqlx::query(
            "UPDATE grants SET group_id = $1, zones = $2, schedule_id = $3, valid_from = $4, valid_until = $5 WHERE id = $6",
        )
        .bind(input.group_id.get())
        .bind(&zones)
        .bind(input.schedule_id.map(Id::get))
        .bind(input.valid_from.map(Millis::get))
        .bind(input.valid_until.map(Millis::get))
        .bind(id.get())
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::conflict_or(e, "no such group or schedule"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("grant {id}")));
        }
        let target = format!("grant:{id}");
        let version = self.structure_change(&mut tx, &target).await?;
        let detail = grant_detail(input);
        self.finish(
            tx,
            Change {
                actor,
                action: "grant.update",
                target,
                detail,
                version,
            },
        )
        .await?;
        self.grant(id).await
    }

    /// Removes a grant.
    pub async fn delete_grant(&self, actor: &str, id: Id) -> StoreResult<()> {
        let tx = self.begin().await?;
        self.delete_structure(
            tx,
            actor,
            "grant",
            "grants",
            id,
            "the grant is still referred to",
        )
        .await
    }

    /// Bookings by id, optionally of one person or room.
    pub async fn list_bookings(
        &self,
        person: Option<Id>,
        room: Option<Id>,
        limit: Option<i64>,
        cursor: Option<&str>,
    ) -> StoreResult<Page<Booking>> {
        let limit = page_size(limit)?;
        let rows: Vec<BookingRow> = sqlx::query_as(&format!(
            "{BOOKING_COLUMNS} WHERE id > $1 AND ($2 = 0 OR person_id = $2) AND ($3 = 0 OR room_zone_id = $3) ORDER BY id LIMIT $4"
        ))
        .bind(id_cursor(cursor)?)
        .bind(person.map_or(0, Id::get))
        .bind(room.map_or(0, Id::get))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let items = rows
            .into_iter()
            .map(booking)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paged(items, limit, |b| b.id.to_string()))
    }

    /// One booking.
    pub async fn booking(&self, id: Id) -> StoreResult<Booking> {
        booking(
            self.row_by_id::<BookingRow>(BOOKING_COLUMNS, id, "booking")
                .await?,
        )
    }

    /// Adds a booking.
    pub async fn create_booking(&self, actor: &str, input: &BookingInput) -> StoreResult<Booking> {
        check_booking(input)?;
        let mut tx = self.begin().await?;
        booking_refs(&mut tx, input).await?;
        let path = stored_ids(&mut tx, &input.path, "doors", "door").await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO bookings (person_id, room_zone_id, path, start_at, end_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(input.person_id.get())
        .bind(input.room_zone_id.get())
        .bind(&path)
        .bind(input.start_at.get())
        .bind(input.end_at.get())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| StoreError::conflict_or(e, "no such person or room"))?;
        let id = stored_id(id)?;
        combinations::check_bookings(&mut tx, Some(id)).await?;
        let target = format!("booking:{id}");
        let version = self
            .record_change(&mut tx, ChangeScope::Booking, &target, false)
            .await?;
        let detail = booking_detail(input);
        self.finish(
            tx,
            Change {
                actor,
                action: "booking.create",
                target,
                detail,
                version: Some((version, false)),
            },
        )
        .await?;
        self.booking(id).await
    }

    /// Replaces a booking.
    pub async fn update_booking(
        &self,
        actor: &str,
        id: Id,
        input: &BookingInput,
    ) -> StoreResult<Booking> {
        check_booking(input)?;
        let mut tx = self.begin().await?;
        booking_refs(&mut tx, input).await?;
        let path = stored_ids(&mut tx, &input.path, "doors", "door").await?;
        let done = sqlx::query(
            "UPDATE bookings SET person_id = $1, room_zone_id = $2, path = $3, start_at = $4, end_at = $5 WHERE id = $6",
        )
        .bind(input.person_id.get())
        .bind(input.room_zone_id.get())
        .bind(&path)
        .bind(input.start_at.get())
        .bind(input.end_at.get())
        .bind(id.get())
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::conflict_or(e, "no such person or room"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("booking {id}")));
        }
        combinations::check_bookings(&mut tx, Some(id)).await?;
        let target = format!("booking:{id}");
        let version = self
            .record_change(&mut tx, ChangeScope::Booking, &target, false)
            .await?;
        let detail = booking_detail(input);
        self.finish(
            tx,
            Change {
                actor,
                action: "booking.update",
                target,
                detail,
                version: Some((version, false)),
            },
        )
        .await?;
        self.booking(id).await
    }

    /// Removes a booking.
    pub async fn delete_booking(&self, actor: &str, id: Id) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        delete_row(
            &mut tx,
            "bookings",
            id,
            "booking",
            "the booking is still referred to",
        )
        .await?;
        let target = format!("booking:{id}");
        let version = self
            .record_change(&mut tx, ChangeScope::Booking, &target, false)
            .await?;
        self.finish(
            tx,
            Change {
                actor,
                action: "booking.delete",
                target,
                detail: serde_json::json!({}),
                version: Some((version, false)),
            },
        )
        .await?;
        Ok(())
    }
}

fn grant_detail(input: &GrantInput) -> serde_json::Value {
    serde_json::json!({
        "group_id": input.group_id,
        "zones": input.zones,
        "schedule_id": input.schedule_id,
        "valid_from": input.valid_from,
        "valid_until": input.valid_until,
    })
}

fn booking_detail(input: &BookingInput) -> serde_json::Value {
    serde_json::json!({
        "person_id": input.person_id,
        "room_zone_id": input.room_zone_id,
        "path": input.path,
        "start_at": input.start_at,
        "end_at": input.end_at,
    })
}
