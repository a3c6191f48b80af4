//! Building each controller's policy: the full snapshot for exactly the doors
//! it serves, and deltas by version for the frequent changes.
//!
//! A snapshot holds the controller's doors, the zones of its site, and the
//! people relevant to those doors — a grant touching one of its zones or a
//! booking through one of its doors — with all their cards (lost and returned
//! ones too, so that a refusal says why).

use std::collections::{BTreeSet, HashMap, HashSet};

use sqlx::Row;
use tobira_firmware::{
    Booking, Card, CardState, CardUid, ControllerId, Door, DoorId, DoorKind, Enrollment, Grant,
    GrantId, LocalDate, ModuleId, Person, PersonId, PersonKind, ReaderSide, ScheduleId,
    SecurityLevel, SnapshotData, SnapshotDelta, ThreatLevel, TimeWindow, Timestamp, WeeklySchedule,
    Zone, ZoneId, ZoneSettings,
};

use super::{now_ms, ChangeScope, Store, StoreError, StoreResult};

/// Deltas longer than this are replaced by a snapshot.
const MAX_DELTA_CHANGES: usize = 5_000;

/// What a delta request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaAnswer {
    /// Already at the current version.
    UpToDate,
    /// The changes.
    Delta(SnapshotDelta),
    /// A full snapshot is needed, and why.
    SnapshotNeeded(String),
}

pub(crate) fn id32(v: i64, what: &str) -> StoreResult<u32> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} id {v} out of range")))
}

fn json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn parse_kind(s: &str) -> StoreResult<PersonKind> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| StoreError::Corrupt(format!("person kind {s}")))
}

fn parse_state(s: &str) -> StoreResult<CardState> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| StoreError::Corrupt(format!("card state {s}")))
}

fn parse_threat(s: &str) -> StoreResult<ThreatLevel> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| StoreError::Corrupt(format!("threat level {s}")))
}

/// The structural part of a controller's policy, read in one go.
struct Frame {
    site: i64,
    threat: ThreatLevel,
    time_zone: String,
    zones: Vec<Zone>,
    doors: Vec<Door>,
    /// Zones its doors protect.
    served: HashSet<u32>,
    door_ids: HashSet<u32>,
    modules: HashSet<u32>,
    grants: Vec<(i64, Grant)>,
    schedules: Vec<WeeklySchedule>,
    holidays: Vec<LocalDate>,
}

impl Store {
    async fn frame(
        &self,
        conn: &mut sqlx::AnyConnection,
        controller: ControllerId,
    ) -> StoreResult<Frame> {
        let site: i64 = sqlx::query_scalar("SELECT site_id FROM controllers WHERE id = $1")
            .bind(i64::from(controller.0))
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("controller {controller}")))?;
        let (threat, time_zone): (String, String) =
            sqlx::query_as("SELECT threat, time_zone FROM sites WHERE id = $1")
                .bind(site)
                .fetch_one(&mut *conn)
                .await?;
        let mut zones = Vec::new();
        for r in sqlx::query(
            "SELECT id, level, opening_schedule_id, settings FROM zones WHERE site_id = $1",
        )
        .bind(site)
        .fetch_all(&mut *conn)
        .await?
        {
            let level: i64 = r.try_get("level")?;
            let level = u8::try_from(level)
                .ok()
                .and_then(|l| SecurityLevel::try_from(l).ok())
                .ok_or_else(|| StoreError::Corrupt(format!("zone level {level}")))?;
            let settings: Option<String> = r.try_get("settings")?;
            let settings = match settings {
                Some(s) => json::<ZoneSettings>(&s, "zone settings")?,
                None => ZoneSettings::for_level(level),
            };
            let schedule: Option<i64> = r.try_get("opening_schedule_id")?;
            zones.push(Zone {
                id: ZoneId(id32(r.try_get("id")?, "zone")?),
                level,
                opening_schedule: schedule
                    .map(|s| id32(s, "schedule"))
                    .transpose()?
                    .map(ScheduleId),
                settings,
            });
        }
        let zone_ids: HashSet<u32> = zones.iter().map(|z| z.id.0).collect();
        let mut doors = Vec::new();
        for r in sqlx::query(
            "SELECT id, kind, outside_zone_id, inside_zone_id, entry_reader, exit_reader, fire_egress FROM doors WHERE controller_id = $1",
        )
        .bind(i64::from(controller.0))
        .fetch_all(&mut *conn)
        .await?
        {
            let kind: String = r.try_get("kind")?;
            let reader = |col: &str| -> StoreResult<Option<ReaderSide>> {
                let text: Option<String> = r.try_get(col)?;
                text.map(|t| json(&t, "reader")).transpose()
            };
            let door = Door {
                id: DoorId(id32(r.try_get("id")?, "door")?),
                kind: if kind == "flapper_gate" { DoorKind::FlapperGate } else { DoorKind::Door },
                outside: match r.try_get::<Option<i64>, _>("outside_zone_id")? {
                    Some(zone) => ZoneId(id32(zone, "zone")?),
                    None => ZoneId::PUBLIC,
                },
                inside: ZoneId(id32(r.try_get("inside_zone_id")?, "zone")?),
                entry_reader: reader("entry_reader")?,
                exit_reader: reader("exit_reader")?,
                fire_egress: r.try_get::<i64, _>("fire_egress")? != 0,
            };
            // A door joining zones of another site cannot be decided here; leave it out.
            if zone_ids.contains(&door.inside.0)
                && (door.outside.is_public() || zone_ids.contains(&door.outside.0))
            {
                doors.push(door);
            } else {
                tracing::warn!(door = door.id.0, "door joins zones of another site; left out of the snapshot");
            }
        }
        let served: HashSet<u32> = doors.iter().map(|d| d.inside.0).collect();
        let door_ids: HashSet<u32> = doors.iter().map(|d| d.id.0).collect();
        let modules: HashSet<u32> = doors
            .iter()
            .flat_map(|d| [d.entry_reader, d.exit_reader])
            .flatten()
            .filter_map(|r| r.biometric)
            .map(|m| m.0)
            .collect();
        let mut schedules = Vec::new();
        for r in sqlx::query("SELECT id, windows FROM schedules")
            .fetch_all(&mut *conn)
            .await?
        {
            schedules.push(WeeklySchedule {
                id: ScheduleId(id32(r.try_get("id")?, "schedule")?),
                windows: json::<Vec<TimeWindow>>(
                    &r.try_get::<String, _>("windows")?,
                    "schedule windows",
                )?,
            });
        }
        let mut grants = Vec::new();
        for r in sqlx::query(
            "SELECT id, group_id, zones, schedule_id, valid_from, valid_until FROM grants",
        )
        .fetch_all(&mut *conn)
        .await?
        {
            let zones: Vec<u32> = json(&r.try_get::<String, _>("zones")?, "grant zones")?;
            let schedule: Option<i64> = r.try_get("schedule_id")?;
            grants.push((
                r.try_get::<i64, _>("group_id")?,
                Grant {
                    id: GrantId(id32(r.try_get("id")?, "grant")?),
                    // Only this site's zones mean anything to this controller.
                    zones: zones
                        .into_iter()
                        .filter(|z| zone_ids.contains(z))
                        .map(ZoneId)
                        .collect(),
                    schedule: schedule
                        .map(|s| id32(s, "schedule"))
                        .transpose()?
                        .map(ScheduleId),
                    valid_from: r.try_get::<Option<i64>, _>("valid_from")?.map(Timestamp),
                    valid_until: r.try_get::<Option<i64>, _>("valid_until")?.map(Timestamp),
                },
            ));
        }
        let mut holidays = Vec::new();
        for date in sqlx::query_scalar::<_, String>("SELECT date FROM holidays WHERE site_id = $1")
            .bind(site)
            .fetch_all(&mut *conn)
            .await?
        {
            holidays.push(parse_date(&date)?);
        }
        // An active lockdown overrides the configured level of its scope;
        // its release brings the configured one back.
        let (site_locked, locked_zones) = self.locked_down(conn, site).await?;
        for zone in &mut zones {
            if locked_zones.contains(&i64::from(zone.id.0)) {
                zone.settings.threat = ThreatLevel::Lockdown;
            }
        }
        Ok(Frame {
            site,
            threat: if site_locked {
                ThreatLevel::Lockdown
            } else {
                parse_threat(&threat)?
            },
            time_zone,
            zones,
            doors,
            served,
            door_ids,
            modules,
            grants,
            schedules,
            holidays,
        })
    }

    /// Group id → grant ids, and which groups matter to the frame.
    fn relevant_groups(frame: &Frame) -> (HashMap<i64, Vec<GrantId>>, HashSet<i64>) {
        let mut by_group: HashMap<i64, Vec<GrantId>> = HashMap::new();
        let mut relevant = HashSet::new();
        for (group, g) in &frame.grants {
            by_group.entry(*group).or_default().push(g.id);
            if g.zones.iter().any(|z| frame.served.contains(&z.0)) {
                relevant.insert(*group);
            }
        }
        (by_group, relevant)
    }

    async fn bookings(
        &self,
        conn: &mut sqlx::AnyConnection,
        frame: &Frame,
        now: i64,
    ) -> StoreResult<Vec<Booking>> {
        let mut out = Vec::new();
        for r in sqlx::query("SELECT person_id, room_zone_id, path, start_at, end_at FROM bookings WHERE end_at > $1")
            .bind(now)
            .fetch_all(&mut *conn)
            .await?
        {
            let room = ZoneId(id32(r.try_get("room_zone_id")?, "zone")?);
            let path: Vec<u32> = json(&r.try_get::<String, _>("path")?, "booking path")?;
            let path: Vec<DoorId> = path.into_iter().filter(|d| frame.door_ids.contains(d)).map(DoorId).collect();
            if !frame.served.contains(&room.0) && path.is_empty() {
                continue;
            }
            if !frame.zones.iter().any(|z| z.id == room) {
                continue;
            }
            out.push(Booking {
                person: PersonId(id32(r.try_get("person_id")?, "person")?),
                room,
                path,
                start: Timestamp(r.try_get("start_at")?),
                end: Timestamp(r.try_get("end_at")?),
            });
        }
        Ok(out)
    }

    /// People relevant to the frame (optionally only those in `only`), with their cards.
    async fn people(
        &self,
        conn: &mut sqlx::AnyConnection,
        frame: &Frame,
        bookings: &[Booking],
        only: Option<&BTreeSet<i64>>,
        load_cards: bool,
    ) -> StoreResult<(Vec<Person>, Vec<Card>)> {
        let (by_group, relevant_groups) = Self::relevant_groups(frame);
        let mut groups_of: HashMap<i64, Vec<i64>> = HashMap::new();
        for (group, person) in
            sqlx::query_as::<_, (i64, i64)>("SELECT group_id, person_id FROM group_members")
                .fetch_all(&mut *conn)
                .await?
        {
            groups_of.entry(person).or_default().push(group);
        }
        let booked: HashSet<u32> = bookings.iter().map(|b| b.person.0).collect();
        let mut enrollments: HashMap<i64, Vec<Enrollment>> = HashMap::new();
        for (person, module, slot) in sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT person_id, module_id, slot FROM enrollments",
        )
        .fetch_all(&mut *conn)
        .await?
        {
            let module = id32(module, "module")?;
            if frame.modules.contains(&module) {
                let slot =
                    u16::try_from(slot).map_err(|_| StoreError::Corrupt(format!("slot {slot}")))?;
                enrollments.entry(person).or_default().push(Enrollment {
                    module: ModuleId(module),
                    slot: tobira_firmware::TemplateSlot(slot),
                });
            }
        }
        let mut people = Vec::new();
        for r in sqlx::query("SELECT id, kind FROM people")
            .fetch_all(&mut *conn)
            .await?
        {
            let id: i64 = r.try_get("id")?;
            if only.is_some_and(|o| !o.contains(&id)) {
                continue;
            }
            let groups = groups_of.get(&id).map(Vec::as_slice).unwrap_or(&[]);
            let pid = id32(id, "person")?;
            let relevant =
                groups.iter().any(|g| relevant_groups.contains(g)) || booked.contains(&pid);
            if !relevant {
                continue;
            }
            let mut grants: Vec<GrantId> = groups
                .iter()
                .flat_map(|g| by_group.get(g).into_iter().flatten().copied())
                .collect();
            grants.sort_unstable();
            grants.dedup();
            people.push(Person {
                id: PersonId(pid),
                kind: parse_kind(&r.try_get::<String, _>("kind")?)?,
                grants,
                enrollments: enrollments.remove(&id).unwrap_or_default(),
            });
        }
        let wanted: HashSet<u32> = people.iter().map(|p| p.id.0).collect();
        let mut cards = Vec::new();
        if load_cards {
            let rows = match only {
                // A handful of people: ask for exactly their cards.
                Some(ids) => {
                    let mut rows = Vec::new();
                    let ids: Vec<i64> = ids.iter().copied().collect();
                    for chunk in ids.chunks(500) {
                        let list: Vec<String> = (1..=chunk.len()).map(|i| self.param(i)).collect();
                        let sql = format!(
                            "SELECT uid, person_id, state, valid_from, valid_until FROM cards WHERE person_id IN ({})",
                            list.join(",")
                        );
                        let mut q = sqlx::query(&sql);
                        for id in chunk {
                            q = q.bind(*id);
                        }
                        rows.extend(q.fetch_all(&mut *conn).await?);
                    }
                    rows
                }
                None => {
                    sqlx::query("SELECT uid, person_id, state, valid_from, valid_until FROM cards")
                        .fetch_all(&mut *conn)
                        .await?
                }
            };
            for r in rows {
                let person = id32(r.try_get("person_id")?, "person")?;
                if wanted.contains(&person) {
                    cards.push(card_of(&r)?);
                }
            }
        }
        Ok((people, cards))
    }

    /// Starts a read that sees one consistent state of the database.
    async fn consistent_read(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        let mut tx = self.pool.begin().await?;
        if self.backend == super::Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    async fn current_version(conn: &mut sqlx::AnyConnection) -> StoreResult<u64> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM policy_changes")
            .fetch_one(&mut *conn)
            .await?;
        Ok(v.unwrap_or(0).max(0) as u64)
    }

    /// The full policy snapshot for a controller.
    pub async fn snapshot_for(&self, controller: ControllerId) -> StoreResult<SnapshotData> {
        let mut tx = self.consistent_read().await?;
        let version = Self::current_version(&mut tx).await?;
        let frame = self.frame(&mut tx, controller).await?;
        let now = now_ms();
        let bookings = self.bookings(&mut tx, &frame, now).await?;
        let (people, cards) = self.people(&mut tx, &frame, &bookings, None, true).await?;
        tx.commit().await?;
        let grants = frame.grants.into_iter().map(|(_, g)| g).collect();
        Ok(SnapshotData {
            version,
            issued_at: Timestamp(now),
            threat: frame.threat,
            time_zone: Some(frame.time_zone),
            zones: frame.zones,
            doors: frame.doors,
            people,
            cards,
            grants,
            schedules: frame.schedules,
            holidays: frame.holidays.into(),
            bookings,
        })
    }

    /// The changes a controller at version `since` needs.
    pub async fn delta_for(
        &self,
        controller: ControllerId,
        since: u64,
    ) -> StoreResult<DeltaAnswer> {
        let mut tx = self.consistent_read().await?;
        let version = Self::current_version(&mut tx).await?;
        if since == version {
            return Ok(DeltaAnswer::UpToDate);
        }
        if since > version {
            return Ok(DeltaAnswer::SnapshotNeeded(format!(
                "controller is at version {since}, ahead of the central service's {version}"
            )));
        }
        let changes = sqlx::query(
            "SELECT scope, subject FROM policy_changes WHERE version > $1 ORDER BY version",
        )
        .bind(since as i64)
        .fetch_all(&mut *tx)
        .await?;
        if changes.len() as u64 != version - since {
            return Ok(DeltaAnswer::SnapshotNeeded(
                "the change log no longer reaches back that far".into(),
            ));
        }
        if changes.len() > MAX_DELTA_CHANGES {
            return Ok(DeltaAnswer::SnapshotNeeded("too far behind".into()));
        }
        let mut people_subjects = BTreeSet::new();
        let mut card_subjects = BTreeSet::new();
        let mut bookings_changed = false;
        let mut threat_changed = false;
        for r in &changes {
            let scope: String = r.try_get("scope")?;
            let subject: Option<String> = r.try_get("subject")?;
            match ChangeScope::parse(&scope) {
                ChangeScope::Structure => {
                    return Ok(DeltaAnswer::SnapshotNeeded(
                        "zones, doors or grants changed".into(),
                    ))
                }
                ChangeScope::Booking => bookings_changed = true,
                ChangeScope::Threat => threat_changed = true,
                ChangeScope::Person => match subject
                    .as_deref()
                    .and_then(|s| s.strip_prefix("person:"))
                    .and_then(|s| s.parse::<i64>().ok())
                {
                    Some(id) => {
                        people_subjects.insert(id);
                    }
                    None => {
                        return Ok(DeltaAnswer::SnapshotNeeded(
                            "a change names no person".into(),
                        ))
                    }
                },
                ChangeScope::Card => match subject
                    .as_deref()
                    .and_then(|s| s.strip_prefix("card:"))
                    .and_then(|s| s.parse::<CardUid>().ok())
                {
                    Some(uid) => {
                        card_subjects.insert(uid);
                    }
                    None => {
                        return Ok(DeltaAnswer::SnapshotNeeded("a change names no card".into()))
                    }
                },
            }
        }
        let frame = self.frame(&mut tx, controller).await?;
        let now = now_ms();
        let bookings = self.bookings(&mut tx, &frame, now).await?;
        // A booking can bring someone with no grant here (a citizen) into this
        // controller's concern: the delta carries the booked people, or the
        // controller would hold a booking of a person it does not know.
        if bookings_changed {
            people_subjects.extend(bookings.iter().map(|b| i64::from(b.person.0)));
        }
        // People whose cards changed count as changed people too: their card may
        // have moved in or out of this controller's concern.
        for r in sqlx::query("SELECT uid, person_id FROM cards WHERE changed_version > $1")
            .bind(since as i64)
            .fetch_all(&mut *tx)
            .await?
        {
            let uid: String = r.try_get("uid")?;
            if let Ok(uid) = uid.parse::<CardUid>() {
                card_subjects.insert(uid);
            }
            people_subjects.insert(r.try_get("person_id")?);
        }
        let (people, cards) = self
            .people(&mut tx, &frame, &bookings, Some(&people_subjects), true)
            .await?;
        // Changed people still relevant are in `people`; the rest left this controller's concern.
        let all_relevant: HashSet<u32> = people.iter().map(|p| p.id.0).collect();
        let mut removed_cards = Vec::new();
        for uid in &card_subjects {
            let row = sqlx::query(
                "SELECT uid, person_id, state, valid_from, valid_until FROM cards WHERE uid = $1",
            )
            .bind(uid.to_string())
            .fetch_optional(&mut *tx)
            .await?;
            match row {
                Some(r) => {
                    let card = card_of(&r)?;
                    // A card that moved to someone outside this controller's concern goes.
                    if !all_relevant.contains(&card.person.0)
                        && !cards.iter().any(|c| c.uid == card.uid)
                    {
                        removed_cards.push(card.uid);
                    }
                }
                None => removed_cards.push(*uid),
            }
        }
        let removed_people = people_subjects
            .iter()
            .filter_map(|&id| u32::try_from(id).ok())
            .filter(|id| !all_relevant.contains(id))
            .map(PersonId)
            .collect();
        tx.commit().await?;
        Ok(DeltaAnswer::Delta(SnapshotDelta {
            from: since,
            to: version,
            issued_at: Timestamp(now),
            cards,
            removed_cards,
            people,
            removed_people,
            bookings: bookings_changed.then_some(bookings),
            threat: threat_changed.then_some(frame.threat),
            zone_threats: if threat_changed {
                frame
                    .zones
                    .iter()
                    .map(|z| (z.id, z.settings.threat))
                    .collect()
            } else {
                Vec::new()
            },
        }))
    }

    /// Remembers which version a controller last fetched (for the status pages).
    pub async fn note_controller_version(
        &self,
        controller: ControllerId,
        version: u64,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE controllers SET policy_version = $1, last_seen_at = $2 WHERE id = $3")
            .bind(version as i64)
            .bind(now_ms())
            .bind(i64::from(controller.0))
            .execute(&mut *tx)
            .await?;
        self.note_lockdowns_reached(&mut tx, i64::from(controller.0), version as i64, now_ms())
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The site a controller belongs to.
    pub async fn controller_site(&self, controller: ControllerId) -> StoreResult<i64> {
        let mut conn = self.pool.acquire().await?;
        Ok(self.frame(&mut conn, controller).await?.site)
    }
}

fn card_of(r: &sqlx::any::AnyRow) -> StoreResult<Card> {
    let uid: String = r.try_get("uid")?;
    Ok(Card {
        uid: uid
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("card uid {uid}")))?,
        person: PersonId(id32(r.try_get("person_id")?, "person")?),
        state: parse_state(&r.try_get::<String, _>("state")?)?,
        valid_from: r.try_get::<Option<i64>, _>("valid_from")?.map(Timestamp),
        valid_until: r.try_get::<Option<i64>, _>("valid_until")?.map(Timestamp),
    })
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> StoreResult<LocalDate> {
    let bad = || StoreError::Invalid(format!("{s} is not a date (YYYY-MM-DD)"));
    let mut it = s.splitn(3, '-');
    let y = it.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let m = it.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let d = it.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    LocalDate::new(y, m, d).map_err(|_| bad())
}
