//! Event ingest: idempotent on (controller, seq), hash chain verified, breaks
//! recorded as alarms; no event is ever dropped.

use std::collections::{BTreeSet, HashMap};

use sqlx::Row;
use tobira_firmware::{chain_link, ChainLink, ControllerId, EventKind, SealedEvent};

use super::resources::Outcome;
use super::{now_ms, Store, StoreError, StoreResult};

pub(crate) mod derived;

/// What happened to a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Everything up to here is stored; the controller may forget it.
    pub stored_through: u64,
    /// Newly stored.
    pub stored: u64,
    /// Already stored before (a retry).
    pub duplicates: u64,
    /// Chain problems found (each also raised as an alarm).
    pub breaks: Vec<String>,
}

/// Columns of one event row.
struct Row16 {
    seq: i64,
    at: i64,
    kind: String,
    door: Option<i64>,
    zone: Option<i64>,
    side: Option<String>,
    level: Option<i64>,
    reason: Option<String>,
    outcome: Option<String>,
    person: Option<i64>,
    card: Option<String>,
    escort: Option<i64>,
    /// The door's name when the event was stored.
    door_name: Option<String>,
    /// The person's name when the event was stored.
    person_name: Option<String>,
    body: String,
    prev: String,
    link: String,
}

fn side_name(side: tobira_firmware::Side) -> &'static str {
    match side {
        tobira_firmware::Side::Entry => "entry",
        tobira_firmware::Side::Exit => "exit",
    }
}

/// A door's inside zone and name, by door id.
type DoorInfo = HashMap<i64, (i64, String)>;

fn row_of(e: &SealedEvent, doors: &DoorInfo, people: &HashMap<i64, String>) -> StoreResult<Row16> {
    let body = serde_json::to_string(e).map_err(|x| StoreError::Invalid(x.to_string()))?;
    let kind_value =
        serde_json::to_value(&e.event.kind).map_err(|x| StoreError::Invalid(x.to_string()))?;
    let kind = kind_value
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or("unknown")
        .to_string();
    let mut row = Row16 {
        seq: i64::try_from(e.event.seq)
            .map_err(|_| StoreError::Invalid("sequence number too large".into()))?,
        at: e.event.at.0,
        kind,
        door: None,
        zone: None,
        side: None,
        level: None,
        reason: None,
        outcome: None,
        person: None,
        card: None,
        escort: None,
        door_name: None,
        person_name: None,
        body,
        prev: e.prev.to_string(),
        link: e.link.to_string(),
    };
    let door = match &e.event.kind {
        EventKind::Access(a) => {
            row.side = Some(side_name(a.side).into());
            row.level = a.level.map(|l| i64::from(l.number()));
            row.reason = Some(a.reason.code().into());
            row.outcome = Some(Outcome::from(a.reason.verdict()).as_str().into());
            row.person = a.person.map(|p| i64::from(p.0));
            row.card = a.card.map(|c| c.to_string());
            row.escort = a.escort.map(|p| i64::from(p.0));
            Some(a.door)
        }
        EventKind::GatePassage { door, side } => {
            row.side = Some(side_name(*side).into());
            Some(*door)
        }
        EventKind::DoorForced { door }
        | EventKind::DoorHeldOpen { door, .. }
        | EventKind::DoorClosed { door }
        | EventKind::GateUnused { door }
        | EventKind::Tailgating { door }
        | EventKind::ForcedPassage { door } => Some(*door),
        EventKind::FireAlarm { zone, .. } => {
            row.zone = Some(i64::from(zone.0));
            None
        }
        _ => None,
    };
    if let Some(door) = door {
        let id = i64::from(door.0);
        row.door = Some(id);
        if let Some((zone, name)) = doors.get(&id) {
            row.zone = Some(*zone);
            row.door_name = Some(name.clone());
        }
    }
    row.person_name = row.person.and_then(|p| people.get(&p).cloned());
    Ok(row)
}

/// The people named in a batch, by id, with their names now.
async fn names_of(
    store: &Store,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    events: &[SealedEvent],
) -> StoreResult<HashMap<i64, String>> {
    let ids: BTreeSet<i64> = events
        .iter()
        .filter_map(|e| match &e.event.kind {
            EventKind::Access(a) => a.person.map(|p| i64::from(p.0)),
            _ => None,
        })
        .collect();
    let ids: Vec<i64> = ids.into_iter().collect();
    let mut names = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_INSERT) {
        let params: Vec<String> = (1..=chunk.len()).map(|n| store.param(n)).collect();
        let sql = format!(
            "SELECT id, name FROM people WHERE id IN ({})",
            params.join(",")
        );
        let mut q = sqlx::query_as::<_, (i64, String)>(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        names.extend(q.fetch_all(&mut **tx).await?);
    }
    Ok(names)
}

/// "Name (door 3)", or "door 3" when the door is unknown here.
fn labelled(name: Option<&str>, what: &str, id: i64) -> String {
    match name {
        Some(name) => format!("{name} ({what} {id})"),
        None => format!("{what} {id}"),
    }
}

/// The alarm an alarming event raises: its door, person, card and reason,
/// and a message that says what happened in those terms.
fn alarm_of(e: &SealedEvent, row: &Row16, controller: i64) -> NewAlarm {
    let place = row
        .door
        .map(|d| labelled(row.door_name.as_deref(), "door", d))
        .unwrap_or_else(|| "an unknown door".into());
    let reason = row.reason.clone().unwrap_or_else(|| row.kind.clone());
    let device = |d: &tobira_firmware::DeviceRef| {
        let kind = serde_json::to_value(d.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        format!("{kind} {:?} on controller {controller}", d.name)
    };
    let what = match &e.event.kind {
        EventKind::Access(_) => {
            let card = row.card.as_deref().unwrap_or("unknown");
            let who = row
                .person
                .map(|p| labelled(row.person_name.as_deref(), "person", p))
                .unwrap_or_else(|| "nobody known".into());
            format!("card {card} of {who} at {place}")
        }
        EventKind::DoorForced { .. } => format!("{place} opened without a grant"),
        EventKind::DoorHeldOpen { .. } => format!("{place} held open too long"),
        EventKind::Tailgating { .. } => format!("two passages on one grant at {place}"),
        EventKind::ForcedPassage { .. } => format!("a passage through the closed gate {place}"),
        EventKind::FireAlarm { zone, .. } => format!("fire alarm in zone {zone}"),
        EventKind::Tamper { device: d, .. } => format!("tamper switch of {}", device(d)),
        EventKind::DeviceOffline { device: d } => format!("{} went offline", device(d)),
        _ => format!("on controller {controller}"),
    };
    NewAlarm {
        at: e.event.at.0,
        kind: match &row.reason {
            Some(reason) => format!("{}:{reason}", row.kind),
            None => row.kind.clone(),
        },
        controller: Some(controller),
        door: row.door,
        message: format!("{reason}: {what}"),
        event_seq: Some(row.seq),
        door_name: row.door_name.clone(),
        person: row.person,
        person_name: row.person_name.clone(),
        card: row.card.clone(),
        reason: Some(reason),
    }
}

/// An alarm to record, with what the security desk needs to act on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewAlarm {
    /// When it happened (ms since epoch).
    pub at: i64,
    /// What kind (e.g. `door_forced`, `access:card_lost`, `chain_break`).
    pub kind: String,
    /// The controller concerned.
    pub controller: Option<i64>,
    /// The door concerned.
    pub door: Option<i64>,
    /// What happened, in words.
    pub message: String,
    /// The controller's event that raised it.
    pub event_seq: Option<i64>,
    /// The door's name at the time.
    pub door_name: Option<String>,
    /// The person concerned.
    pub person: Option<i64>,
    /// Their name at the time.
    pub person_name: Option<String>,
    /// The card presented.
    pub card: Option<String>,
    /// The reason code, or the event kind for door and device alarms.
    pub reason: Option<String>,
}

/// Multi-row inserts stay under SQLite's and PostgreSQL's bound-parameter limits.
const ROWS_PER_INSERT: usize = 500;
/// Bound parameters per event row.
const COLUMNS: usize = 19;

impl Store {
    /// Stores a batch of one controller's events, in sequence order.
    pub async fn ingest(
        &self,
        controller: ControllerId,
        events: &[SealedEvent],
    ) -> StoreResult<IngestOutcome> {
        for pair in events.windows(2) {
            if pair[1].event.seq <= pair[0].event.seq {
                return Err(StoreError::Invalid(
                    "events must be in increasing sequence order".into(),
                ));
            }
        }
        if let Some(e) = events.iter().find(|e| e.event.controller != controller) {
            return Err(StoreError::Invalid(format!(
                "event {} is from controller {}, not {}",
                e.event.seq, e.event.controller, controller
            )));
        }
        if events
            .iter()
            .any(|e| e.event.seq == 0 || e.event.seq > i64::MAX as u64)
        {
            return Err(StoreError::Invalid("sequence numbers start at 1".into()));
        }
        let cid = i64::from(controller.0);
        let mut tx = self.begin().await?;
        let state = sqlx::query("SELECT chain_next_seq, chain_last FROM controllers WHERE id = $1")
            .bind(cid)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("controller {controller}")))?;
        let next_seq: i64 = state.try_get("chain_next_seq")?;
        let last: String = state.try_get("chain_last")?;
        let mut expected = next_seq as u64;
        let mut last_link: ChainLink = last
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("chain link of controller {controller}")))?;

        let mut breaks = Vec::new();
        // Re-sent events must be byte-identical to what is stored.
        let resent: Vec<&SealedEvent> = events.iter().filter(|e| e.event.seq < expected).collect();
        if let (Some(first), Some(lastr)) = (resent.first(), resent.last()) {
            let stored: HashMap<i64, String> = sqlx::query_as::<_, (i64, String)>(
                "SELECT seq, link FROM events WHERE controller_id = $1 AND seq >= $2 AND seq <= $3",
            )
            .bind(cid)
            .bind(first.event.seq as i64)
            .bind(lastr.event.seq as i64)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
            for e in &resent {
                match stored.get(&(e.event.seq as i64)) {
                    Some(link) if *link == e.link.to_string() => {}
                    Some(_) => breaks.push(format!(
                        "event {} was sent again with different content than stored",
                        e.event.seq
                    )),
                    // Older than the chain head but never stored: a gap filled late. Kept.
                    None => {}
                }
            }
        }

        let fresh: Vec<&SealedEvent> = events.iter().filter(|e| e.event.seq >= expected).collect();
        for e in &fresh {
            let seq = e.event.seq;
            if seq != expected {
                breaks.push(format!("events {expected} to {} are missing", seq - 1));
            } else if e.prev != last_link {
                breaks.push(format!(
                    "event {seq} does not follow the previous event's link"
                ));
            }
            match chain_link(&e.prev, &e.event) {
                Ok(link) if link == e.link => {}
                _ => breaks.push(format!(
                    "event {seq} was altered: its content does not match its link"
                )),
            }
            expected = seq + 1;
            last_link = e.link;
        }

        // Names as they are now, at ingest, stay with the event.
        let doors: DoorInfo =
            sqlx::query_as::<_, (i64, i64, String)>("SELECT id, inside_zone_id, name FROM doors")
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|(id, zone, name)| (id, (zone, name)))
                .collect();
        let people = names_of(self, &mut tx, events).await?;
        let received = now_ms();
        let mut stored = 0u64;
        let rows: Vec<Row16> = events
            .iter()
            .map(|e| row_of(e, &doors, &people))
            .collect::<StoreResult<_>>()?;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut sql = String::from(
                "INSERT INTO events (controller_id, seq, at, kind, door_id, zone_id, side, level, reason, outcome, person_id, card, escort_id, door_name_at_event, person_name_at_event, body, prev, link, received_at) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * COLUMNS;
                if i > 0 {
                    sql.push(',');
                }
                sql.push('(');
                for k in 1..=COLUMNS {
                    if k > 1 {
                        sql.push(',');
                    }
                    sql.push_str(&self.param(b + k));
                }
                sql.push(')');
            }
            sql.push_str(" ON CONFLICT (controller_id, seq) DO NOTHING");
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(cid)
                    .bind(r.seq)
                    .bind(r.at)
                    .bind(r.kind.clone())
                    .bind(r.door)
                    .bind(r.zone)
                    .bind(r.side.clone())
                    .bind(r.level)
                    .bind(r.reason.clone())
                    .bind(r.outcome.clone())
                    .bind(r.person)
                    .bind(r.card.clone())
                    .bind(r.escort)
                    .bind(r.door_name.clone())
                    .bind(r.person_name.clone())
                    .bind(r.body.clone())
                    .bind(r.prev.clone())
                    .bind(r.link.clone())
                    .bind(received);
            }
            stored += q.execute(&mut *tx).await?.rows_affected();
        }

        // Alarms for newly recorded events that are alarms in themselves, and for chain breaks.
        for e in &fresh {
            if !e.event.kind.is_alarm() {
                continue;
            }
            if let Some(row) = rows.iter().find(|r| r.seq == e.event.seq as i64) {
                self.raise(&mut tx, &alarm_of(e, row, cid)).await?;
            }
        }
        for b in &breaks {
            self.raise_alarm(&mut tx, received, "chain_break", Some(cid), None, b)
                .await?;
        }
        if let Some(head) = fresh.last() {
            sqlx::query("UPDATE controllers SET chain_next_seq = $1, chain_last = $2, last_seen_at = $3 WHERE id = $4")
                .bind(head.event.seq as i64 + 1)
                .bind(head.link.to_string())
                .bind(received)
                .bind(cid)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query("UPDATE controllers SET last_seen_at = $1 WHERE id = $2")
                .bind(received)
                .bind(cid)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if !breaks.is_empty() {
            tracing::warn!(%controller, breaks = ?breaks, "event chain break");
        }
        let stored_through = expected.max(next_seq as u64) - 1;
        Ok(IngestOutcome {
            stored_through,
            stored,
            duplicates: events.len() as u64 - stored,
            breaks,
        })
    }

    /// Records an alarm inside a transaction.
    pub async fn raise_alarm(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        at: i64,
        kind: &str,
        controller: Option<i64>,
        door: Option<i64>,
        message: &str,
    ) -> StoreResult<()> {
        let alarm = NewAlarm {
            at,
            kind: kind.into(),
            controller,
            door,
            message: message.into(),
            ..NewAlarm::default()
        };
        self.raise(tx, &alarm).await
    }

    /// Records an alarm with its context inside a transaction.
    pub async fn raise(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        alarm: &NewAlarm,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO alarms (at, kind, controller_id, door_id, message, event_seq, door_name, person_id, person_name, card, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(alarm.at)
        .bind(alarm.kind.as_str())
        .bind(alarm.controller)
        .bind(alarm.door)
        .bind(alarm.message.as_str())
        .bind(alarm.event_seq)
        .bind(alarm.door_name.clone())
        .bind(alarm.person)
        .bind(alarm.person_name.clone())
        .bind(alarm.card.clone())
        .bind(alarm.reason.clone())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The chain position the central service holds for a controller: (next seq, last link).
    pub async fn controller_chain(&self, controller: ControllerId) -> StoreResult<(u64, String)> {
        let row = sqlx::query("SELECT chain_next_seq, chain_last FROM controllers WHERE id = $1")
            .bind(i64::from(controller.0))
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("controller {controller}")))?;
        Ok((
            row.try_get::<i64, _>("chain_next_seq")? as u64,
            row.try_get("chain_last")?,
        ))
    }
}
