//! What the SIEM forwarder reads: the forwarded sources (events, alarms, admin
//! audit, signed chain checkpoints), their rows after a cursor in batches, and the durable cursor per
//! target and source.
//!
//! A source is one entry in [`SOURCES`]: its name, how its cursor runs, and
//! how a row becomes a [`SiemRecord`]. A table with an ascending integer id
//! (alarms, audit, checkpoints) needs only its query and its row reader.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::chains::epoch_of;
use super::passages::SETTLE_MS;
use super::{now_ms, Store, StoreError, StoreResult};

/// One forwarded record: what a SIEM receives, whatever the format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiemRecord {
    /// The kind of record (`event`, `alarm`, `audit`): the source's name.
    pub kind: &'static str,
    /// Its id within the kind (`controller.seq` for events), the same on
    /// every delivery, so that a receiver can spot duplicates.
    pub id: String,
    /// When it happened (ms since the epoch).
    pub at: i64,
    /// Named fields: ids, names, outcomes. Never card secrets or tokens.
    pub fields: Vec<(&'static str, String)>,
    /// Free text (an alarm's message, an audit entry's detail); may be empty.
    pub message: String,
    /// How bad it is, as a syslog severity (0 emergency … 7 debug).
    pub severity: u8,
}

/// How a source's rows are ordered and where its cursor stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Events: by (received_at, controller, seq), handed out once settled
    /// (the passage feed's rule: uploads stamped in one instant commit in
    /// either order).
    Received,
    /// An ascending integer id, `$1` the cursor and `$2` the batch size in
    /// the source's query. On PostgreSQL ids can commit out of order; the
    /// forwarder waits before passing a gap (see `crate::siem`).
    Id,
}

/// One kind of record the forwarder sends.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    /// Its name: the record kind and the cursor's key.
    pub name: &'static str,
    /// How its cursor runs.
    pub order: Order,
    /// The batch query (see [`Order`] for its parameters).
    sql: &'static str,
    /// Reads one row: its cursor key and its record.
    read: fn(&AnyRow) -> StoreResult<(Position, SiemRecord)>,
}

/// Every source, in the order they are sent. Adding one is one entry here.
pub const SOURCES: &[Source] = &[
    Source {
        name: "event",
        order: Order::Received,
        sql: "SELECT controller_id, epoch, seq, at, kind, door_id, door_name_at_event, zone_id, side, level, \
                     reason, outcome, person_id, person_name_at_event, escort_id, prev, link, received_at \
              FROM events WHERE received_at <= $1 \
                AND (received_at > $2 OR (received_at = $2 AND (controller_id > $3 \
                     OR (controller_id = $3 AND (epoch > $4 OR (epoch = $4 AND seq > $5)))))) \
              ORDER BY received_at, controller_id, epoch, seq LIMIT $6",
        read: event_row,
    },
    Source {
        name: "alarm",
        order: Order::Id,
        sql: "SELECT id, at, kind, controller_id, door_id, door_name, event_seq, event_epoch, person_id, \
                     person_name, reason, message \
              FROM alarms WHERE id > $1 ORDER BY id LIMIT $2",
        read: alarm_row,
    },
    Source {
        name: "audit",
        order: Order::Id,
        sql: "SELECT seq, at, actor, action, target, detail, link \
              FROM admin_audit WHERE seq > $1 ORDER BY seq LIMIT $2",
        read: audit_row,
    },
    Source {
        name: "checkpoint",
        order: Order::Id,
        sql: "SELECT id, chain, count, head, at, signature \
              FROM checkpoints WHERE id > $1 ORDER BY id LIMIT $2",
        read: checkpoint_row,
    },
];

/// Where a source's cursor stands: after this row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Position {
    /// Nothing sent yet.
    #[default]
    Start,
    /// After the event (received_at, controller, epoch, seq).
    Received(i64, i64, i64, i64),
    /// After this id.
    Id(i64),
}

impl Position {
    /// The stored text: `start`, `received_at.controller.epoch.seq` or the id.
    pub fn text(self) -> String {
        match self {
            Self::Start => "start".into(),
            Self::Received(r, c, e, s) => format!("{r}.{c}.{e}.{s}"),
            Self::Id(id) => id.to_string(),
        }
    }

    /// Reads a stored position of a source ordered by `order`.
    pub fn parse(order: Order, text: &str) -> StoreResult<Self> {
        let bad = || StoreError::Corrupt(format!("SIEM cursor {text:?}"));
        if text == "start" {
            return Ok(Self::Start);
        }
        match order {
            Order::Id => text.parse().map(Self::Id).map_err(|_| bad()),
            Order::Received => {
                let parts = text
                    .split('.')
                    .map(str::parse::<i64>)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| bad())?;
                match parts[..] {
                    // Stored before chain epochs: epoch 0.
                    [r, c, s] => Ok(Self::Received(r, c, 0, s)),
                    [r, c, e, s] => Ok(Self::Received(r, c, e, s)),
                    _ => Err(bad()),
                }
            }
        }
    }
}

/// A row read for forwarding, with the cursor that stands after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiemRow {
    /// The cursor after this row.
    pub position: Position,
    /// The record.
    pub record: SiemRecord,
}

fn text_of(row: &AnyRow, column: &str) -> StoreResult<Option<String>> {
    Ok(row.try_get::<Option<String>, _>(column)?)
}

fn number_of(row: &AnyRow, column: &str) -> StoreResult<Option<i64>> {
    Ok(row.try_get::<Option<i64>, _>(column)?)
}

/// Pushes the fields that are set.
fn push_numbers(
    fields: &mut Vec<(&'static str, String)>,
    row: &AnyRow,
    columns: &[(&'static str, &str)],
) -> StoreResult<()> {
    for (name, column) in columns {
        if let Some(v) = number_of(row, column)? {
            fields.push((name, v.to_string()));
        }
    }
    Ok(())
}

fn push_texts(
    fields: &mut Vec<(&'static str, String)>,
    row: &AnyRow,
    columns: &[(&'static str, &str)],
) -> StoreResult<()> {
    for (name, column) in columns {
        if let Some(v) = text_of(row, column)? {
            fields.push((name, v));
        }
    }
    Ok(())
}

/// An event; the card is left out (it identifies a person's credential, and
/// the person is named already).
fn event_row(row: &AnyRow) -> StoreResult<(Position, SiemRecord)> {
    let controller: i64 = row.try_get("controller_id")?;
    let epoch_column: i64 = row.try_get("epoch")?;
    let epoch = epoch_of(epoch_column)?;
    let seq: i64 = row.try_get("seq")?;
    let received: i64 = row.try_get("received_at")?;
    let outcome = text_of(row, "outcome")?;
    let mut fields = vec![
        ("controller", controller.to_string()),
        ("epoch", epoch.to_string()),
        ("seq", seq.to_string()),
        ("link", row.try_get::<String, _>("link")?),
        ("prev", row.try_get::<String, _>("prev")?),
        ("event", row.try_get::<String, _>("kind")?),
    ];
    push_numbers(
        &mut fields,
        row,
        &[("door", "door_id"), ("zone", "zone_id"), ("level", "level")],
    )?;
    push_texts(
        &mut fields,
        row,
        &[
            ("door_name", "door_name_at_event"),
            ("side", "side"),
            ("outcome", "outcome"),
            ("reason", "reason"),
        ],
    )?;
    push_numbers(&mut fields, row, &[("person", "person_id")])?;
    push_texts(&mut fields, row, &[("person_name", "person_name_at_event")])?;
    push_numbers(&mut fields, row, &[("escort", "escort_id")])?;
    // Refusals are worth a look; everything else is routine.
    let severity = match outcome.as_deref() {
        Some("denied") => 5,
        _ => 6,
    };
    Ok((
        Position::Received(received, controller, epoch_column, seq),
        SiemRecord {
            kind: "event",
            // The first epoch keeps the ids it had before epochs existed.
            id: if epoch.is_first() {
                format!("{controller}.{seq}")
            } else {
                format!("{controller}.{epoch}.{seq}")
            },
            at: row.try_get("at")?,
            fields,
            message: String::new(),
            severity,
        },
    ))
}

/// An alarm; its card is left out, as for events.
fn alarm_row(row: &AnyRow) -> StoreResult<(Position, SiemRecord)> {
    let id: i64 = row.try_get("id")?;
    let mut fields = vec![("alarm", row.try_get::<String, _>("kind")?)];
    push_numbers(
        &mut fields,
        row,
        &[
            ("controller", "controller_id"),
            ("door", "door_id"),
            ("seq", "event_seq"),
        ],
    )?;
    if let Some(epoch) = number_of(row, "event_epoch")? {
        fields.push(("epoch", epoch_of(epoch)?.to_string()));
    }
    push_texts(&mut fields, row, &[("door_name", "door_name")])?;
    push_numbers(&mut fields, row, &[("person", "person_id")])?;
    push_texts(
        &mut fields,
        row,
        &[("person_name", "person_name"), ("reason", "reason")],
    )?;
    Ok((
        Position::Id(id),
        SiemRecord {
            kind: "alarm",
            id: id.to_string(),
            at: row.try_get("at")?,
            fields,
            message: row.try_get("message")?,
            severity: 4,
        },
    ))
}

/// An admin-audit entry; its detail never holds a secret (the store records
/// token names and hashes' owners, not tokens or passwords).
fn audit_row(row: &AnyRow) -> StoreResult<(Position, SiemRecord)> {
    let seq: i64 = row.try_get("seq")?;
    let fields = vec![
        ("actor", row.try_get::<String, _>("actor")?),
        ("action", row.try_get::<String, _>("action")?),
        ("target", row.try_get::<String, _>("target")?),
        ("link", row.try_get::<String, _>("link")?),
    ];
    Ok((
        Position::Id(seq),
        SiemRecord {
            kind: "audit",
            id: seq.to_string(),
            at: row.try_get("at")?,
            fields,
            message: row.try_get("detail")?,
            severity: 5,
        },
    ))
}

/// A signed checkpoint: sent whole (signature included) so that the SIEM's
/// copy can prove what a chain held even after someone with the database and
/// the key rewrote it (docs/security.md, "Tamper evidence").
fn checkpoint_row(row: &AnyRow) -> StoreResult<(Position, SiemRecord)> {
    let id: i64 = row.try_get("id")?;
    let fields = vec![
        ("chain", row.try_get::<String, _>("chain")?),
        ("count", row.try_get::<i64, _>("count")?.to_string()),
        ("head", row.try_get::<String, _>("head")?),
        ("signature", row.try_get::<String, _>("signature")?),
    ];
    Ok((
        Position::Id(id),
        SiemRecord {
            kind: "checkpoint",
            id: id.to_string(),
            at: row.try_get("at")?,
            fields,
            message: String::new(),
            severity: 6,
        },
    ))
}

impl Store {
    /// Where `target` stands in `source` (the start if never sent).
    pub async fn siem_cursor(&self, target: &str, source: &Source) -> StoreResult<Position> {
        let text: Option<String> = sqlx::query_scalar(
            "SELECT position FROM siem_cursors WHERE target = $1 AND source = $2",
        )
        .bind(target)
        .bind(source.name)
        .fetch_optional(self.pool())
        .await?;
        text.map_or(Ok(Position::Start), |t| Position::parse(source.order, &t))
    }

    /// Records that `target` has been sent `source` up to `position`.
    pub async fn set_siem_cursor(
        &self,
        target: &str,
        source: &Source,
        position: Position,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO siem_cursors (target, source, position, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (target, source) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
        )
        .bind(target)
        .bind(source.name)
        .bind(position.text())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` rows of `source` after `after`, oldest first; events
    /// only once settled at `now`.
    pub async fn siem_rows(
        &self,
        source: &Source,
        after: Position,
        limit: i64,
        now: i64,
    ) -> StoreResult<Vec<SiemRow>> {
        let query = sqlx::query(source.sql);
        let query = match (source.order, after) {
            (Order::Received, Position::Received(r, c, e, s)) => query
                .bind(now.saturating_sub(SETTLE_MS))
                .bind(r)
                .bind(c)
                .bind(e)
                .bind(s),
            (Order::Received, _) => query
                .bind(now.saturating_sub(SETTLE_MS))
                .bind(-1i64)
                .bind(0i64)
                .bind(0i64)
                .bind(0i64),
            (Order::Id, Position::Id(id)) => query.bind(id),
            (Order::Id, _) => query.bind(0i64),
        };
        let rows = query.bind(limit).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| {
                let (position, record) = (source.read)(row)?;
                Ok(SiemRow { position, record })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_nonsense_is_refused() {
        for (order, p) in [
            (
                Order::Received,
                Position::Received(1_700_000_000_000, 3, 9, 42),
            ),
            (Order::Id, Position::Id(7)),
            (Order::Id, Position::Start),
            (Order::Received, Position::Start),
        ] {
            assert_eq!(Position::parse(order, &p.text()).unwrap(), p);
        }
        // Stored before chain epochs: epoch 0.
        assert_eq!(
            Position::parse(Order::Received, "1.2.3").unwrap(),
            Position::Received(1, 2, 0, 3)
        );
        for bad in ["", "1.2", "a.b.c", "1.2.3.4.5"] {
            assert!(Position::parse(Order::Received, bad).is_err(), "{bad}");
        }
        assert!(Position::parse(Order::Id, "1.2").is_err());
    }

    #[test]
    fn source_names_are_distinct() {
        let mut names: Vec<&str> = SOURCES.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SOURCES.len());
    }
}
