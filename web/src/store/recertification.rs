//! Access re-certification: everyone who can enter a zone now and through
//! what (a group's grant, or a room booking), and a manager's pass over them
//! that confirms or revokes each, recorded with its counts.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::resources::{stored_id, Id, PersonKind};
use super::{ChangeScope, Store, StoreError, StoreResult};

/// Longest comment, in characters.
pub const MAX_COMMENT: usize = 2000;
/// Most people one pass may revoke.
pub const MAX_REVOKE: usize = 10_000;
/// Most passes the list shows.
pub const LIST_SIZE: i64 = 200;

/// How someone can enter the zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RouteKind {
    /// A member of a group one of whose grants opens the zone. Revoking
    /// removes them from the group (and so from the group's other zones).
    Group,
    /// A room booking naming them (the only access given to a person
    /// directly). Revoking deletes the booking.
    Booking,
}

/// A zone by id and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ZoneRef {
    /// The zone.
    pub id: i64,
    /// Its name.
    pub name: String,
}

/// One way into the zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AccessRoute {
    /// Group membership or booking.
    pub kind: RouteKind,
    /// The group (for `group`).
    pub group_id: Option<i64>,
    /// Its name.
    pub group_name: Option<String>,
    /// The group's grants that open the zone (for `group`).
    pub grant_ids: Vec<i64>,
    /// Other zones the group's grants open: revoking the membership takes
    /// these away too.
    pub other_zones: Vec<ZoneRef>,
    /// The booking (for `booking`).
    pub booking_id: Option<i64>,
    /// Its start (ms since epoch).
    pub starts_at: Option<i64>,
    /// Its end (ms since epoch, exclusive).
    pub ends_at: Option<i64>,
}

impl AccessRoute {
    /// In words for the record, e.g. `group:staff` or `booking:12`.
    fn text(&self) -> String {
        match self.kind {
            RouteKind::Group => format!("group:{}", self.group_name.as_deref().unwrap_or("?")),
            RouteKind::Booking => format!("booking:{}", self.booking_id.unwrap_or(0)),
        }
    }
}

/// A card of someone who can enter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CardRef {
    /// The UID (hex).
    pub uid: String,
    /// Its lifecycle state (`active`, `lost`, …).
    pub state: String,
}

/// Someone who can enter the zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Entrant {
    /// The person.
    pub person_id: i64,
    /// Their name.
    pub name: String,
    /// Their kind.
    pub kind: PersonKind,
    /// Their cards.
    pub cards: Vec<CardRef>,
    /// Every way they can enter.
    pub routes: Vec<AccessRoute>,
}

/// Everyone who can enter a zone now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ZoneAccess {
    /// The zone.
    pub zone_id: i64,
    /// Its name.
    pub zone_name: String,
    /// Its level.
    pub zone_level: i64,
    /// Everyone who can enter it, by name.
    pub people: Vec<Entrant>,
}

/// A manager's pass over a zone's list: everyone not named in `revoke` is confirmed.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecertificationInput {
    /// The zone.
    pub zone_id: Id,
    /// People whose access to the zone is revoked (each must be able to
    /// enter it now); everyone else on the list is confirmed.
    #[serde(default)]
    #[schema(max_items = 10000)]
    pub revoke: Vec<Id>,
    /// What the manager has to say (at most 2000 characters).
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub comment: String,
}

/// One person's decision in a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RecertifiedPerson {
    /// The person.
    pub person_id: i64,
    /// Their name then.
    pub person_name: String,
    /// `confirm` or `revoke`.
    pub decision: String,
    /// How they could enter, e.g. `group:staff, booking:12`.
    pub through: String,
}

/// A recorded re-certification pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Recertification {
    /// Its id.
    pub id: i64,
    /// The zone.
    pub zone_id: i64,
    /// Its name then.
    pub zone_name: String,
    /// Who went through the list.
    pub done_by: String,
    /// When (ms since epoch).
    pub done_at: i64,
    /// How many were confirmed.
    pub confirmed: i64,
    /// How many were revoked.
    pub revoked: i64,
    /// The manager's comment.
    pub comment: String,
    /// Each person's decision.
    pub people: Vec<RecertifiedPerson>,
}

fn binds(n: usize, first: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Everyone who can enter `zone` now (or later, under a grant or booking
    /// not yet over), with their cards and every way in.
    pub async fn zone_access(&self, zone: Id, now: i64) -> StoreResult<ZoneAccess> {
        let row: Option<(i64, String, i64)> =
            sqlx::query_as("SELECT id, name, level FROM zones WHERE id = $1")
                .bind(zone.get())
                .fetch_optional(self.pool())
                .await?;
        let (zone_id, zone_name, zone_level) =
            row.ok_or_else(|| StoreError::NotFound(format!("zone {zone}")))?;
        let zone_names: BTreeMap<i64, String> = sqlx::query_as("SELECT id, name FROM zones")
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .collect();
        // Grants not yet over, per group: those opening this zone, and every
        // zone the group's grants open.
        let grants: Vec<(i64, i64, String, String)> = sqlx::query_as(
            "SELECT g.id, g.group_id, g.zones, a.name FROM grants g JOIN access_groups a ON a.id = g.group_id \
             WHERE g.valid_until IS NULL OR g.valid_until > $1 ORDER BY g.id",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        let mut groups: BTreeMap<i64, (String, Vec<i64>, BTreeSet<i64>)> = BTreeMap::new();
        for (grant, group, zones, name) in grants {
            let zones: Vec<i64> = serde_json::from_str(&zones)
                .map_err(|e| StoreError::Corrupt(format!("grant zones: {e}")))?;
            let entry = groups
                .entry(group)
                .or_insert((name, Vec::new(), BTreeSet::new()));
            if zones.contains(&zone_id) {
                entry.1.push(grant);
            }
            entry.2.extend(zones);
        }
        groups.retain(|_, (_, opening, _)| !opening.is_empty());
        let mut routes: BTreeMap<i64, Vec<AccessRoute>> = BTreeMap::new();
        for (group, (name, grant_ids, zones)) in &groups {
            let members: Vec<i64> =
                sqlx::query_scalar("SELECT person_id FROM group_members WHERE group_id = $1")
                    .bind(*group)
                    .fetch_all(self.pool())
                    .await?;
            let other_zones: Vec<ZoneRef> = zones
                .iter()
                .filter(|z| **z != zone_id)
                .map(|z| ZoneRef {
                    id: *z,
                    name: zone_names
                        .get(z)
                        .cloned()
                        .unwrap_or_else(|| format!("#{z}")),
                })
                .collect();
            for person in members {
                routes.entry(person).or_default().push(AccessRoute {
                    kind: RouteKind::Group,
                    group_id: Some(*group),
                    group_name: Some(name.clone()),
                    grant_ids: grant_ids.clone(),
                    other_zones: other_zones.clone(),
                    booking_id: None,
                    starts_at: None,
                    ends_at: None,
                });
            }
        }
        let bookings: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT id, person_id, start_at, end_at FROM bookings WHERE room_zone_id = $1 AND end_at > $2 ORDER BY start_at, id",
        )
        .bind(zone_id)
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        for (booking, person, start, end) in bookings {
            routes.entry(person).or_default().push(AccessRoute {
                kind: RouteKind::Booking,
                group_id: None,
                group_name: None,
                grant_ids: Vec::new(),
                other_zones: Vec::new(),
                booking_id: Some(booking),
                starts_at: Some(start),
                ends_at: Some(end),
            });
        }
        let ids: Vec<i64> = routes.keys().copied().collect();
        let mut people = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let marks = binds(chunk.len(), 1);
            let people_sql = format!("SELECT id, name, kind FROM people WHERE id IN ({marks})");
            let mut q = sqlx::query(&people_sql);
            for id in chunk {
                q = q.bind(*id);
            }
            let rows = q.fetch_all(self.pool()).await?;
            let cards_sql = format!(
                "SELECT uid, person_id, state FROM cards WHERE person_id IN ({marks}) ORDER BY uid"
            );
            let mut c = sqlx::query_as::<_, (String, i64, String)>(&cards_sql);
            for id in chunk {
                c = c.bind(*id);
            }
            let cards = c.fetch_all(self.pool()).await?;
            for r in rows {
                let id: i64 = r.try_get("id")?;
                let kind: String = r.try_get("kind")?;
                people.push(Entrant {
                    person_id: id,
                    name: r.try_get("name")?,
                    kind: PersonKind::parse(&kind)?,
                    cards: cards
                        .iter()
                        .filter(|(_, p, _)| *p == id)
                        .map(|(uid, _, state)| CardRef {
                            uid: uid.clone(),
                            state: state.clone(),
                        })
                        .collect(),
                    routes: routes.remove(&id).unwrap_or_default(),
                });
            }
        }
        people.sort_by(|a, b| a.name.cmp(&b.name).then(a.person_id.cmp(&b.person_id)));
        Ok(ZoneAccess {
            zone_id,
            zone_name,
            zone_level,
            people,
        })
    }

    /// Records a manager's pass over a zone's list: everyone named in
    /// `revoke` loses their way in (group membership removed, booking
    /// deleted), everyone else is confirmed; each removal is in the audit log
    /// and reaches the controllers, and so is the pass itself.
    pub async fn recertify(
        &self,
        actor: &str,
        input: &RecertificationInput,
        now: i64,
    ) -> StoreResult<Recertification> {
        let comment = input.comment.trim();
        if comment.chars().count() > MAX_COMMENT {
            return Err(StoreError::Invalid(format!(
                "the comment is longer than {MAX_COMMENT} characters"
            )));
        }
        if input.revoke.len() > MAX_REVOKE {
            return Err(StoreError::Invalid(format!(
                "at most {MAX_REVOKE} people can be revoked at once"
            )));
        }
        let access = self.zone_access(input.zone_id, now).await?;
        let revoke: BTreeSet<i64> = input.revoke.iter().map(|i| i.get()).collect();
        for id in &revoke {
            if !access.people.iter().any(|p| p.person_id == *id) {
                return Err(StoreError::Invalid(format!(
                    "person {id} cannot enter zone {} now; reload the list",
                    access.zone_id
                )));
            }
        }
        let mut tx = self.begin().await?;
        let mut last_version = None;
        for person in access
            .people
            .iter()
            .filter(|p| revoke.contains(&p.person_id))
        {
            let subject = format!("person:{}", person.person_id);
            for route in &person.routes {
                match route.kind {
                    RouteKind::Group => {
                        let group = route.group_id.unwrap_or(0);
                        let done = sqlx::query(
                            "DELETE FROM group_members WHERE group_id = $1 AND person_id = $2",
                        )
                        .bind(group)
                        .bind(person.person_id)
                        .execute(&mut *tx)
                        .await?;
                        if done.rows_affected() == 0 {
                            return Err(StoreError::Conflict(format!(
                                "{} left group {group} meanwhile; reload the list",
                                person.name
                            )));
                        }
                        let version = self
                            .person_change(&mut tx, &subject, &[person.person_id])
                            .await?;
                        last_version = version.map(|(v, _)| v).or(last_version);
                        self.audit(
                            &mut tx,
                            actor,
                            "group.remove_member",
                            &subject,
                            &serde_json::json!({"group_id": group, "recertification_zone_id": access.zone_id}),
                        )
                        .await?;
                    }
                    RouteKind::Booking => {
                        let booking = route.booking_id.unwrap_or(0);
                        let done = sqlx::query("DELETE FROM bookings WHERE id = $1")
                            .bind(booking)
                            .execute(&mut *tx)
                            .await?;
                        if done.rows_affected() == 0 {
                            return Err(StoreError::Conflict(format!(
                                "booking {booking} was deleted meanwhile; reload the list"
                            )));
                        }
                        let target = format!("booking:{booking}");
                        let version = self
                            .record_change(&mut tx, ChangeScope::Booking, &target, false)
                            .await?;
                        last_version = Some(version);
                        self.audit(
                            &mut tx,
                            actor,
                            "booking.delete",
                            &target,
                            &serde_json::json!({"person_id": person.person_id, "recertification_zone_id": access.zone_id}),
                        )
                        .await?;
                    }
                }
            }
        }
        let revoked = i64::try_from(revoke.len()).unwrap_or(i64::MAX);
        let confirmed = i64::try_from(access.people.len()).unwrap_or(i64::MAX) - revoked;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO recertifications (zone_id, zone_name, done_by, done_at, confirmed, revoked, comment) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(access.zone_id)
        .bind(&access.zone_name)
        .bind(actor)
        .bind(now)
        .bind(confirmed)
        .bind(revoked)
        .bind(comment)
        .fetch_one(&mut *tx)
        .await?;
        for person in &access.people {
            let decision = if revoke.contains(&person.person_id) {
                "revoke"
            } else {
                "confirm"
            };
            let through = person
                .routes
                .iter()
                .map(AccessRoute::text)
                .collect::<Vec<_>>()
                .join(", ");
            sqlx::query(
                "INSERT INTO recertification_people (recertification_id, person_id, person_name, decision, through) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(person.person_id)
            .bind(&person.name)
            .bind(decision)
            .bind(through)
            .execute(&mut *tx)
            .await?;
        }
        self.audit(
            &mut tx,
            actor,
            "recertification.record",
            &format!("zone:{}", access.zone_id),
            &serde_json::json!({
                "recertification": id,
                "confirmed": confirmed,
                "revoked": revoke,
                "comment": comment,
            }),
        )
        .await?;
        tx.commit().await?;
        if let Some(v) = last_version {
            self.publish(v, false);
        }
        self.recertification(id).await
    }

    async fn recertification_people(&self, id: i64) -> StoreResult<Vec<RecertifiedPerson>> {
        let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT person_id, person_name, decision, through FROM recertification_people \
             WHERE recertification_id = $1 ORDER BY person_name, person_id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(person_id, person_name, decision, through)| RecertifiedPerson {
                    person_id,
                    person_name,
                    decision,
                    through,
                },
            )
            .collect())
    }

    /// One recorded pass.
    pub async fn recertification(&self, id: i64) -> StoreResult<Recertification> {
        let mut list = self.recertifications_where(Some(id), None, 1).await?;
        list.pop()
            .ok_or_else(|| StoreError::NotFound(format!("re-certification {id}")))
    }

    /// The recorded passes, newest first, optionally of one zone.
    pub async fn recertifications(&self, zone: Option<Id>) -> StoreResult<Vec<Recertification>> {
        self.recertifications_where(None, zone, LIST_SIZE).await
    }

    async fn recertifications_where(
        &self,
        id: Option<i64>,
        zone: Option<Id>,
        limit: i64,
    ) -> StoreResult<Vec<Recertification>> {
        let rows = sqlx::query(
            "SELECT id, zone_id, zone_name, done_by, done_at, confirmed, revoked, comment FROM recertifications \
             WHERE ($1 = 0 OR id = $1) AND ($2 = 0 OR zone_id = $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(id.unwrap_or(0))
        .bind(zone.map_or(0, Id::get))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.try_get("id")?;
            stored_id(id)?;
            out.push(Recertification {
                id,
                zone_id: r.try_get("zone_id")?,
                zone_name: r.try_get("zone_name")?,
                done_by: r.try_get("done_by")?,
                done_at: r.try_get("done_at")?,
                confirmed: r.try_get("confirmed")?,
                revoked: r.try_get("revoked")?,
                comment: r.try_get("comment")?,
                people: self.recertification_people(id).await?,
            });
        }
        Ok(out)
    }
}
