//! Doors and flapper gates (zones joined, readers, controller) and the
//! controllers' registry as the API shows it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    combinations, ensure_unlisted, id_cursor, millis, page_size, paged, stored_id, Change,
    DoorKind, Id, Millis, Name, Page, Reader, Tx,
};
use crate::store::{Store, StoreError, StoreResult};

/// A door or flapper gate between two zones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Door {
    /// The door's id.
    pub id: Id,
    /// Its name.
    pub name: String,
    /// Door or flapper gate.
    pub kind: DoorKind,
    /// The zone entered from; null for a door at the edge of the site,
    /// opening onto the public street.
    pub outside_zone_id: Option<Id>,
    /// The zone this door protects (its level is the door's).
    pub inside_zone_id: Id,
    /// The controller that drives it.
    pub controller_id: Option<Id>,
    /// Reader on the outside, for entry.
    pub entry_reader: Option<Reader>,
    /// Reader on the inside, for exit.
    pub exit_reader: Option<Reader>,
    /// Released when a fire alarm is active in either zone.
    pub fire_egress: bool,
}

/// What a client sends to create or update a door.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DoorInput {
    /// Its name.
    pub name: Name,
    /// Door or flapper gate.
    pub kind: DoorKind,
    /// The zone entered from; null for a door at the edge of the site,
    /// opening onto the public street (no made-up zone needed). Required, so
    /// that leaving it out is an error rather than a door onto the street.
    #[serde(deserialize_with = "Option::deserialize")]
    pub outside_zone_id: Option<Id>,
    /// The zone this door protects; differs from `outside_zone_id`.
    pub inside_zone_id: Id,
    /// The controller that drives it.
    #[serde(default)]
    pub controller_id: Option<Id>,
    /// Reader on the outside, for entry; null = none.
    #[serde(default, deserialize_with = "super::option_object")]
    pub entry_reader: Option<Reader>,
    /// Reader on the inside, for exit; null = none.
    #[serde(default, deserialize_with = "super::option_object")]
    pub exit_reader: Option<Reader>,
    /// Released when a fire alarm is active in either zone.
    #[serde(default)]
    pub fire_egress: bool,
}

/// A door controller board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Controller {
    /// The controller's id.
    pub id: Id,
    /// The site it serves.
    pub site_id: Id,
    /// Its name.
    pub name: String,
    /// When it was registered.
    pub created_at: Millis,
    /// When it last authenticated.
    pub last_seen_at: Option<Millis>,
    /// The policy version it last confirmed.
    #[schema(minimum = 0)]
    pub policy_version: i64,
    /// Disabled by an admin: refused at sync (its doors keep their cached policy).
    pub disabled: bool,
}

/// What a client sends to register a controller.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ControllerInput {
    /// The site it serves.
    pub site_id: Id,
    /// Its name.
    pub name: Name,
}

type DoorRow = (
    i64,
    String,
    String,
    Option<i64>,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    i64,
);

const DOOR_COLUMNS: &str = "SELECT id, name, kind, outside_zone_id, inside_zone_id, controller_id, entry_reader, exit_reader, fire_egress FROM doors";

fn door(row: DoorRow) -> StoreResult<Door> {
    Ok(Door {
        id: stored_id(row.0)?,
        name: row.1,
        kind: DoorKind::parse(&row.2)?,
        outside_zone_id: row.3.map(stored_id).transpose()?,
        inside_zone_id: stored_id(row.4)?,
        controller_id: row.5.map(stored_id).transpose()?,
        entry_reader: row.6.as_deref().map(Reader::from_stored).transpose()?,
        exit_reader: row.7.as_deref().map(Reader::from_stored).transpose()?,
        fire_egress: row.8 != 0,
    })
}

type ControllerRow = (i64, i64, String, i64, Option<i64>, i64, i64);

const CONTROLLER_COLUMNS: &str =
    "SELECT id, site_id, name, created_at, last_seen_at, policy_version, disabled FROM controllers";

fn controller(row: ControllerRow) -> StoreResult<Controller> {
    Ok(Controller {
        id: stored_id(row.0)?,
        site_id: stored_id(row.1)?,
        name: row.2,
        created_at: Millis::new(row.3)
            .ok_or_else(|| StoreError::Corrupt("controller created_at".into()))?,
        last_seen_at: millis(row.4),
        policy_version: row.5,
        disabled: row.6 != 0,
    })
}

fn check_door(input: &DoorInput) -> StoreResult<(Option<String>, Option<String>)> {
    if input.outside_zone_id == Some(input.inside_zone_id) {
        return Err(StoreError::Invalid(
            "a door joins two different zones".into(),
        ));
    }
    Ok((
        input.entry_reader.map(Reader::to_stored).transpose()?,
        input.exit_reader.map(Reader::to_stored).transpose()?,
    ))
}

const DOOR_REFS: &str = "no such zone or controller";

/// A door's zones (and its controller, if any) must belong to one site: a
/// controller's snapshot holds its own site's zones only.
async fn check_door_site(tx: &mut Tx, input: &DoorInput) -> StoreResult<()> {
    let mut sites = Vec::new();
    for zone in input
        .outside_zone_id
        .into_iter()
        .chain([input.inside_zone_id])
    {
        let site: Option<i64> = sqlx::query_scalar("SELECT site_id FROM zones WHERE id = $1")
            .bind(zone.get())
            .fetch_optional(&mut **tx)
            .await?;
        sites.push(site.ok_or_else(|| StoreError::MissingReference(format!("no zone {zone}")))?);
    }
    if let Some(controller) = input.controller_id {
        let site: Option<i64> = sqlx::query_scalar("SELECT site_id FROM controllers WHERE id = $1")
            .bind(controller.get())
            .fetch_optional(&mut **tx)
            .await?;
        sites.push(
            site.ok_or_else(|| {
                StoreError::MissingReference(format!("no controller {controller}"))
            })?,
        );
    }
    if sites.windows(2).any(|w| w[0] != w[1]) {
        return Err(StoreError::Invalid(
            "a door's zones and controller must belong to one site".into(),
        ));
    }
    Ok(())
}

impl Store {
    /// Doors by id, optionally of one controller or zone (either side).
    pub async fn list_doors(
        &self,
        controller: Option<Id>,
        zone: Option<Id>,
        limit: Option<i64>,
        cursor: Option<&str>,
    ) -> StoreResult<Page<Door>> {
        let limit = page_size(limit)?;
        let rows: Vec<DoorRow> = sqlx::query_as(&format!(
            "{DOOR_COLUMNS} WHERE id > $1 AND ($2 = 0 OR controller_id = $2) AND ($3 = 0 OR inside_zone_id = $3 OR outside_zone_id = $3) ORDER BY id LIMIT $4"
        ))
        .bind(id_cursor(cursor)?)
        .bind(controller.map_or(0, Id::get))
        .bind(zone.map_or(0, Id::get))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let items = rows
            .into_iter()
            .map(door)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paged(items, limit, |d| d.id.to_string()))
    }

    /// One door.
    pub async fn door(&self, id: Id) -> StoreResult<Door> {
        door(self.row_by_id::<DoorRow>(DOOR_COLUMNS, id, "door").await?)
    }

    /// Adds a door.
    pub async fn create_door(&self, actor: &str, input: &DoorInput) -> StoreResult<Door> {
        let (entry, exit) = check_door(input)?;
        let mut tx = self.begin().await?;
        check_door_site(&mut tx, input).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO doors (name, kind, outside_zone_id, inside_zone_id, controller_id, entry_reader, exit_reader, fire_egress) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(input.name.as_str())
        .bind(input.kind.as_str())
        .bind(input.outside_zone_id.map(Id::get))
        .bind(input.inside_zone_id.get())
        .bind(input.controller_id.map(Id::get))
        .bind(entry)
        .bind(exit)
        .bind(i64::from(input.fire_egress))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| StoreError::conflict_or(e, DOOR_REFS))?;
        let id = stored_id(id)?;
        let target = format!("door:{id}");
        let version = self.structure_change(&mut tx, &target).await?;
        let detail = door_detail(input);
        self.finish(
            tx,
            Change {
                actor,
                action: "door.create",
                target,
                detail,
                version,
            },
        )
        .await?;
        self.door(id).await
    }

    /// Replaces a door's configuration.
    pub async fn update_door(&self, actor: &str, id: Id, input: &DoorInput) -> StoreResult<Door> {
        let (entry, exit) = check_door(input)?;
        let mut tx = self.begin().await?;
        check_door_site(&mut tx, input).await?;
        let done = sqlx::query(
            "UPDATE doors SET name = $1, kind = $2, outside_zone_id = $3, inside_zone_id = $4, controller_id = $5, entry_reader = $6, exit_reader = $7, fire_egress = $8 WHERE id = $9",
        )
        .bind(input.name.as_str())
        .bind(input.kind.as_str())
        .bind(input.outside_zone_id.map(Id::get))
        .bind(input.inside_zone_id.get())
        .bind(input.controller_id.map(Id::get))
        .bind(entry)
        .bind(exit)
        .bind(i64::from(input.fire_egress))
        .bind(id.get())
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::conflict_or(e, DOOR_REFS))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("door {id}")));
        }
        // A door on a booking's path must not now lead into a level 3 or 4 zone.
        combinations::check_bookings(&mut tx, None).await?;
        let target = format!("door:{id}");
        let version = self.structure_change(&mut tx, &target).await?;
        let detail = door_detail(input);
        self.finish(
            tx,
            Change {
                actor,
                action: "door.update",
                target,
                detail,
                version,
            },
        )
        .await?;
        self.door(id).await
    }

    /// Removes a door no booking path uses.
    pub async fn delete_door(&self, actor: &str, id: Id) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        ensure_unlisted(
            &mut tx,
            "SELECT path FROM bookings",
            id,
            "booking path",
            "a booking's path still uses this door",
        )
        .await?;
        self.delete_structure(
            tx,
            actor,
            "door",
            "doors",
            id,
            "the door is still referred to",
        )
        .await
    }

    /// Controllers by id.
    pub async fn list_controllers(
        &self,
        limit: Option<i64>,
        cursor: Option<&str>,
    ) -> StoreResult<Page<Controller>> {
        let limit = page_size(limit)?;
        let rows: Vec<ControllerRow> = sqlx::query_as(&format!(
            "{CONTROLLER_COLUMNS} WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(id_cursor(cursor)?)
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let items = rows
            .into_iter()
            .map(controller)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paged(items, limit, |c| c.id.to_string()))
    }

    /// One controller.
    pub async fn controller(&self, id: Id) -> StoreResult<Controller> {
        let row: Option<ControllerRow> =
            sqlx::query_as(&format!("{CONTROLLER_COLUMNS} WHERE id = $1"))
                .bind(id.get())
                .fetch_optional(self.pool())
                .await?;
        controller(row.ok_or_else(|| StoreError::NotFound(format!("controller {id}")))?)
    }
}

fn door_detail(input: &DoorInput) -> serde_json::Value {
    serde_json::json!({
        "name": input.name,
        "kind": input.kind,
        "outside_zone_id": input.outside_zone_id,
        "inside_zone_id": input.inside_zone_id,
        "controller_id": input.controller_id,
        "entry_reader": input.entry_reader,
        "exit_reader": input.exit_reader,
        "fire_egress": input.fire_egress,
    })
}
