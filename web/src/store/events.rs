//! Event ingest: idempotent on (controller, epoch, seq), hash chain verified, breaks
//! recorded as alarms; no event is ever dropped, and what the uploader may
//! not claim is stored marked and kept out of occupancy and passages.

use std::collections::{BTreeSet, HashMap, HashSet};

use tobira_firmware::{ChainEpoch, ChainLink, ControllerId, EventKind, SealedEvent};

use super::chain::{self, StoredLink};
use super::chains::EventChain;
use super::resources::Outcome;
use super::trust::{self, Claim, Known};
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
    /// Sequence numbers central holds with other content than sent; never
    /// covered by `stored_through`.
    pub conflicts: Vec<u64>,
    /// Events stored but not believed (see `trust`): (seq, why).
    pub suspect: Vec<(u64, String)>,
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
    /// Why the event is not believed (set by ingest, not derived from the body).
    suspect: Option<String>,
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
        suspect: None,
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

/// The holders of the cards named in a batch, by UID.
async fn holders_of(
    store: &Store,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    events: &[SealedEvent],
) -> StoreResult<HashMap<String, i64>> {
    let uids: BTreeSet<String> = events
        .iter()
        .filter_map(|e| match &e.event.kind {
            EventKind::Access(a) => a.card.map(|c| c.to_string()),
            _ => None,
        })
        .collect();
    let uids: Vec<String> = uids.into_iter().collect();
    let mut holders = HashMap::with_capacity(uids.len());
    for chunk in uids.chunks(ROWS_PER_INSERT) {
        let params: Vec<String> = (1..=chunk.len()).map(|n| store.param(n)).collect();
        let sql = format!(
            "SELECT uid, person_id FROM cards WHERE uid IN ({})",
            params.join(",")
        );
        let mut q = sqlx::query_as::<_, (String, i64)>(&sql);
        for uid in chunk {
            q = q.bind(uid.clone());
        }
        holders.extend(q.fetch_all(&mut **tx).await?);
    }
    Ok(holders)
}

/// What central holds of the chain's events `seqs` (one query).
async fn stored_links(
    store: &Store,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    chain: &EventChain,
    seqs: &BTreeSet<u64>,
) -> StoreResult<HashMap<u64, StoredLink>> {
    let controller = chain.controller;
    let epoch = chain.epoch_column()?;
    let seqs: Vec<i64> = seqs.iter().filter_map(|s| i64::try_from(*s).ok()).collect();
    let mut stored = HashMap::with_capacity(seqs.len());
    // Each re-sent event and its two neighbours: at most 3 * MAX_BATCH + 1.
    for chunk in seqs.chunks(LOOKUPS_PER_QUERY) {
        // SQLite numbers `?` by position: the controller's and epoch's too, never `$1` beside them.
        let params: Vec<String> = (3..chunk.len().saturating_add(3))
            .map(|n| store.param(n))
            .collect();
        let sql = format!(
            "SELECT seq, prev, link, at FROM events WHERE controller_id = {} AND epoch = {} AND seq IN ({})",
            store.param(1),
            store.param(2),
            params.join(",")
        );
        let mut q = sqlx::query_as::<_, (i64, String, String, i64)>(&sql)
            .bind(controller)
            .bind(epoch);
        for seq in chunk {
            q = q.bind(*seq);
        }
        for (seq, prev, link, at) in q.fetch_all(&mut **tx).await? {
            let seq = u64::try_from(seq).map_err(|_| {
                StoreError::Corrupt(format!("event {seq} of chain {}", chain.name()))
            })?;
            stored.insert(seq, StoredLink { prev, link, at });
        }
    }
    Ok(stored)
}

/// The sequence numbers of one ingested batch (some may have been stored
/// before: the live monitor skips what it has shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredRange {
    /// The controller.
    pub controller: i64,
    /// Its chain epoch, as the column holds it.
    pub epoch: i64,
    /// The batch's first sequence number.
    pub first: i64,
    /// Its last.
    pub last: i64,
}

/// Which of `breaks` are open (unacknowledged) `chain_break` alarms of the
/// controller already (one query, only when there are breaks).
async fn open_breaks(
    store: &Store,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    chain: &EventChain,
    breaks: &[String],
) -> StoreResult<HashSet<String>> {
    let mut open = HashSet::new();
    for chunk in breaks.chunks(ROWS_PER_INSERT) {
        let params: Vec<String> = (3..chunk.len().saturating_add(3))
            .map(|n| store.param(n))
            .collect();
        let sql = format!(
            "SELECT message FROM alarms WHERE kind = 'chain_break' AND acknowledged_at IS NULL \
             AND controller_id = {} AND event_epoch = {} AND message IN ({})",
            store.param(1),
            store.param(2),
            params.join(",")
        );
        let mut q = sqlx::query_scalar::<_, String>(&sql)
            .bind(chain.controller)
            .bind(chain.epoch_column()?);
        for b in chunk {
            q = q.bind(b.clone());
        }
        open.extend(q.fetch_all(&mut **tx).await?);
    }
    Ok(open)
}

/// The alarm for an event that is stored but not believed.
fn suspect_alarm(row: &Row16, chain: &EventChain, why: &str, received: i64) -> NewAlarm {
    NewAlarm {
        at: received,
        kind: "ingest_suspect".into(),
        controller: Some(chain.controller),
        door: row.door,
        message: format!(
            "event {} of {} is not believed: {why}; it is stored, but counts for no occupancy or passage",
            row.seq,
            chain.label()
        ),
        event_seq: Some(row.seq),
        event_epoch: chain.epoch_column().ok(),
        door_name: row.door_name.clone(),
        person: row.person,
        person_name: row.person_name.clone(),
        card: row.card.clone(),
        reason: Some("ingest_suspect".into()),
    }
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
fn alarm_of(e: &SealedEvent, row: &Row16, chain: &EventChain) -> NewAlarm {
    let controller = chain.controller;
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
        event_epoch: chain.epoch_column().ok(),
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
    /// That event's chain epoch (also set on chain breaks: the chain concerned).
    pub event_epoch: Option<i64>,
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
const COLUMNS: usize = 21;
/// Sequence numbers looked up per query (one query for a full batch).
const LOOKUPS_PER_QUERY: usize = 4000;

impl Store {
    /// Stores a batch of one controller's events of one chain epoch, in sequence order.
    pub async fn ingest(
        &self,
        controller: ControllerId,
        epoch: ChainEpoch,
        events: &[SealedEvent],
    ) -> StoreResult<IngestOutcome> {
        self.ingest_at(controller, epoch, events, now_ms()).await
    }

    /// As [`Store::ingest`], with central's clock reading `now` (ms).
    pub async fn ingest_at(
        &self,
        controller: ControllerId,
        epoch: ChainEpoch,
        events: &[SealedEvent],
        now: i64,
    ) -> StoreResult<IngestOutcome> {
        chain::validate(events).map_err(|e| StoreError::Invalid(e.to_string()))?;
        if let Some(e) = events.iter().find(|e| e.event.controller != controller) {
            return Err(StoreError::Invalid(format!(
                "event {} is from controller {}, not {}",
                e.event.seq, e.event.controller, controller
            )));
        }
        let cid = i64::from(controller.0);
        let this = EventChain {
            controller: cid,
            epoch,
        };
        let epoch_column = this.epoch_column()?;
        let mut tx = self.begin().await?;
        // One lookup: the controller must exist; its chain of this epoch may not yet.
        let found: Option<(i64, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT c.id, h.next_seq, h.last_link FROM controllers c \
             LEFT JOIN event_chains h ON h.controller_id = c.id AND h.epoch = $1 WHERE c.id = $2",
        )
        .bind(epoch_column)
        .bind(cid)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((_, next, last)) = found else {
            return Err(StoreError::NotFound(format!("controller {controller}")));
        };
        let head = next.zip(last);
        let genesis = this.genesis()?;
        let (next_seq, last_link, new_epoch) = match head {
            Some((next, last)) => {
                let next = u64::try_from(next).map_err(|_| {
                    StoreError::Corrupt(format!("chain position of {}", this.name()))
                })?;
                let last: ChainLink = last
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("chain link of {}", this.name())))?;
                (next, last, false)
            }
            None => (1, genesis, true),
        };
        let stored_links =
            stored_links(self, &mut tx, &this, &chain::lookups(next_seq, events)).await?;
        let verdict = chain::check(next_seq, last_link, genesis, &stored_links, events, now)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let breaks = verdict.breaks.clone();

        // Names as they are now, at ingest, stay with the event.
        let all_doors: Vec<(i64, i64, String, Option<i64>)> =
            sqlx::query_as("SELECT id, inside_zone_id, name, controller_id FROM doors")
                .fetch_all(&mut *tx)
                .await?;
        let mut doors: DoorInfo = HashMap::with_capacity(all_doors.len());
        let mut known = Known::default();
        for (id, zone, name, owner) in all_doors {
            doors.insert(id, (zone, name));
            known.doors.insert(id, owner);
        }
        known.people = names_of(self, &mut tx, events).await?;
        known.cards = holders_of(self, &mut tx, events).await?;
        let received = now;
        let mut stored = 0u64;
        let mut suspect = Vec::new();
        let mut rows: Vec<Row16> = Vec::with_capacity(events.len());
        for e in events {
            let mut row = row_of(e, &doors, &known.people)?;
            let claim = Claim {
                at: row.at,
                door: row.door,
                person: row.person,
                card: row.card.as_deref(),
                granted: row.outcome.as_deref() == Some(Outcome::Granted.as_str()),
            };
            // Only events not stored before are judged: a retry changes nothing.
            if verdict.new.contains(&e.event.seq) {
                row.suspect = trust::suspicion(claim, cid, &known, now);
            }
            if let Some(why) = &row.suspect {
                suspect.push((e.event.seq, why.clone()));
            }
            rows.push(row);
        }
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut sql = String::from(
                "INSERT INTO events (controller_id, epoch, seq, at, kind, door_id, zone_id, side, level, reason, outcome, person_id, card, escort_id, door_name_at_event, person_name_at_event, body, prev, link, received_at, suspect) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i.saturating_mul(COLUMNS);
                if i > 0 {
                    sql.push(',');
                }
                sql.push('(');
                for k in 1..=COLUMNS {
                    if k > 1 {
                        sql.push(',');
                    }
                    sql.push_str(&self.param(b.saturating_add(k)));
                }
                sql.push(')');
            }
            sql.push_str(" ON CONFLICT (controller_id, epoch, seq) DO NOTHING");
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(cid)
                    .bind(epoch_column)
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
                    .bind(received)
                    .bind(r.suspect.clone());
            }
            stored = stored.saturating_add(q.execute(&mut *tx).await?.rows_affected());
        }

        // Alarms for newly recorded events that are alarms in themselves (late
        // fills of a gap too), for events not believed, and for chain breaks.
        for (e, row) in events.iter().zip(&rows) {
            if !verdict.new.contains(&e.event.seq) {
                continue;
            }
            if let Some(why) = &row.suspect {
                self.raise(&mut tx, &suspect_alarm(row, &this, why, received))
                    .await?;
            } else if e.event.kind.is_alarm() {
                self.raise(&mut tx, &alarm_of(e, row, &this)).await?;
            }
        }
        // A card refused again and again (tried at door after door, or a
        // lost card in someone's hand): counted once per card per batch.
        let mut refused: HashMap<&str, &Row16> = HashMap::new();
        for (e, row) in events.iter().zip(&rows) {
            if let (true, Some("denied"), Some(card), None) = (
                verdict.new.contains(&e.event.seq),
                row.outcome.as_deref(),
                row.card.as_deref(),
                &row.suspect,
            ) {
                refused.insert(card, row);
            }
        }
        for (card, row) in refused {
            let alarm = NewAlarm {
                at: row.at,
                kind: "repeated_denials".into(),
                controller: Some(cid),
                door: row.door,
                event_seq: Some(row.seq),
                event_epoch: Some(epoch_column),
                door_name: row.door_name.clone(),
                person: row.person,
                person_name: row.person_name.clone(),
                card: Some(card.to_owned()),
                reason: row.reason.clone(),
                message: String::new(),
            };
            self.raise_if_repeated_denials(&mut tx, alarm).await?;
        }
        for (seq, what) in &verdict.clock_back {
            let alarm = NewAlarm {
                at: received,
                kind: "ingest_clock".into(),
                controller: Some(cid),
                message: what.clone(),
                event_seq: i64::try_from(*seq).ok(),
                event_epoch: Some(epoch_column),
                reason: Some("ingest_clock".into()),
                ..NewAlarm::default()
            };
            self.raise(&mut tx, &alarm).await?;
        }
        // A board that retries a conflicting batch (with back-off) names the
        // same breaks again: an open alarm for one is not raised twice.
        let open = open_breaks(self, &mut tx, &this, &breaks).await?;
        for b in breaks.iter().filter(|b| !open.contains(b.as_str())) {
            let alarm = NewAlarm {
                at: received,
                kind: "chain_break".into(),
                controller: Some(cid),
                message: b.clone(),
                event_epoch: Some(epoch_column),
                ..NewAlarm::default()
            };
            self.raise(&mut tx, &alarm).await?;
        }
        if new_epoch && !events.is_empty() {
            self.new_epoch(&mut tx, &this, received).await?;
        }
        if let Some((next, last)) = verdict.head {
            let next = i64::try_from(next)
                .map_err(|_| StoreError::Invalid("sequence number too large".into()))?;
            sqlx::query(
                "INSERT INTO event_chains (controller_id, epoch, next_seq, last_link, first_seen_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (controller_id, epoch) DO UPDATE SET next_seq = excluded.next_seq, last_link = excluded.last_link",
            )
            .bind(cid)
            .bind(epoch_column)
            .bind(next)
            .bind(last.to_string())
            .bind(received)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE controllers SET last_seen_at = $1 WHERE id = $2")
            .bind(received)
            .bind(cid)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if let (true, Some(first), Some(last)) = (stored > 0, events.first(), events.last()) {
            self.note_stored(StoredRange {
                controller: cid,
                epoch: epoch_column,
                first: i64::try_from(first.event.seq).unwrap_or(i64::MAX),
                last: i64::try_from(last.event.seq).unwrap_or(i64::MAX),
            });
        }
        if stored > 0 || !breaks.is_empty() {
            self.note_activity();
        }
        if !breaks.is_empty() {
            tracing::warn!(%controller, breaks = ?breaks, "event chain break");
        }
        if !suspect.is_empty() {
            tracing::warn!(%controller, suspect = ?suspect, "events not believed");
        }
        let conflicts = verdict.conflicts;
        let sent = u64::try_from(events.len()).unwrap_or(u64::MAX);
        let conflicting = u64::try_from(conflicts.len()).unwrap_or(u64::MAX);
        Ok(IngestOutcome {
            stored_through: verdict.stored_through,
            stored,
            duplicates: sent.saturating_sub(stored).saturating_sub(conflicting),
            breaks,
            conflicts,
            suspect,
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
            "INSERT INTO alarms (at, kind, controller_id, door_id, message, event_seq, event_epoch, door_name, person_id, person_name, card, reason, priority) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(alarm.at)
        .bind(alarm.kind.as_str())
        .bind(alarm.controller)
        .bind(alarm.door)
        .bind(alarm.message.as_str())
        .bind(alarm.event_seq)
        .bind(alarm.event_epoch)
        .bind(alarm.door_name.clone())
        .bind(alarm.person)
        .bind(alarm.person_name.clone())
        .bind(alarm.card.clone())
        .bind(alarm.reason.clone())
        .bind(super::alarms::priority_of(&alarm.kind))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Records that a controller began a chain epoch central had not seen.
    /// When the controller has events of other epochs, that is a board whose
    /// state was created afresh (re-imaged, replaced, or a copy of its
    /// credentials): an alarm, so a reviewer sees it; its events are stored
    /// as usual and the earlier epochs' stay as they are.
    async fn new_epoch(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        chain: &EventChain,
        received: i64,
    ) -> StoreResult<()> {
        let others: Vec<i64> = sqlx::query_scalar(
            "SELECT epoch FROM event_chains WHERE controller_id = $1 AND epoch <> $2 ORDER BY first_seen_at, epoch",
        )
        .bind(chain.controller)
        .bind(chain.epoch_column()?)
        .fetch_all(&mut **tx)
        .await?;
        if others.is_empty() {
            return Ok(());
        }
        let earlier: Vec<String> = others
            .into_iter()
            .map(|e| super::chains::epoch_of(e).map(|e| e.to_string()))
            .collect::<StoreResult<_>>()?;
        let alarm = NewAlarm {
            at: received,
            kind: "chain_epoch".into(),
            controller: Some(chain.controller),
            message: format!(
                "controller {} began a new event chain (epoch {}) beside {}: its state was created afresh (a re-imaged or replaced board, or a copy of its credentials); the events of every epoch are kept",
                chain.controller,
                chain.epoch,
                earlier.join(", ")
            ),
            event_epoch: chain.epoch_column().ok(),
            reason: Some("chain_epoch".into()),
            ..NewAlarm::default()
        };
        self.raise(tx, &alarm).await
    }

    /// The chain position the central service holds for a controller's
    /// chain of `epoch`: (next seq, last link); the genesis when none is stored.
    pub async fn controller_chain(
        &self,
        controller: ControllerId,
        epoch: ChainEpoch,
    ) -> StoreResult<(u64, String)> {
        let chain = EventChain {
            controller: i64::from(controller.0),
            epoch,
        };
        let row: Option<(i64, String)> = sqlx::query_as(
            "SELECT next_seq, last_link FROM event_chains WHERE controller_id = $1 AND epoch = $2",
        )
        .bind(chain.controller)
        .bind(chain.epoch_column()?)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some((next, last)) => {
                let next = u64::try_from(next).map_err(|_| {
                    StoreError::Corrupt(format!("chain position of {}", chain.name()))
                })?;
                Ok((next, last))
            }
            None => Ok((1, chain.genesis()?.to_string())),
        }
    }
}
