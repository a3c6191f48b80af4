//! Passages shared between controllers: granted entries and exits that other controllers recorded in the zones a controller's doors touch.
//!
//! Hard anti-passback and "who is inside" hold per zone, but a zone's doors
//! may hang on several controllers (the machine room's entry on one board,
//! its exit on another). Each controller keeps its own occupancy on disk and
//! pulls what the others recorded from here, in the order the central
//! service received it, with a cursor over (received_at, controller, epoch, seq).

use tobira_firmware::{ControllerId, PersonId, Timestamp, ZoneId};
use tobira_protocol::{PassageFeed, SharedPassage, MAX_PASSAGES};

use super::policy::id32;
use super::{now_ms, Store, StoreError, StoreResult};

/// Events are handed out only once they have been stored this long: two
/// uploads stamped in the same instant may commit in either order, and a
/// cursor must never pass an event that is not visible yet.
pub const SETTLE_MS: i64 = 1_000;

/// Where a controller's passage feed stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PassageCursor {
    pub(crate) received_at: i64,
    pub(crate) controller: i64,
    pub(crate) epoch: i64,
    pub(crate) seq: i64,
}

impl PassageCursor {
    /// Reads a cursor a controller sent back: `received.controller.epoch.seq`,
    /// or `received.controller.seq` as handed out before chain epochs (epoch 0).
    pub fn parse(text: &str) -> StoreResult<Self> {
        let bad = || StoreError::Invalid(format!("{text:?} is not a passage cursor"));
        let parts = text
            .split('.')
            .map(|p| p.parse::<i64>().ok().filter(|v| *v >= 0))
            .collect::<Option<Vec<i64>>>()
            .ok_or_else(bad)?;
        match parts[..] {
            [received_at, controller, seq] => Ok(Self {
                received_at,
                controller,
                epoch: 0,
                seq,
            }),
            [received_at, controller, epoch, seq] => Ok(Self {
                received_at,
                controller,
                epoch,
                seq,
            }),
            _ => Err(bad()),
        }
    }

    /// The text form [`PassageCursor::parse`] reads.
    pub fn text(self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.received_at, self.controller, self.epoch, self.seq
        )
    }
}

/// The zones a controller's doors join (inside and outside).
const CONTROLLER_ZONES: &str = "SELECT inside_zone_id FROM doors WHERE controller_id = $1 \
     UNION SELECT outside_zone_id FROM doors WHERE controller_id = $1 AND outside_zone_id IS NOT NULL";

type PassageRow = (
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    String,
    i64,
);

impl Store {
    /// Passages other controllers recorded in `controller`'s zones after
    /// `after`; without a cursor, the latest passage of every person in each
    /// of those zones (what a controller starting afresh needs).
    pub async fn passages_for(
        &self,
        controller: ControllerId,
        after: Option<PassageCursor>,
    ) -> StoreResult<PassageFeed> {
        self.passages_at(controller, after, now_ms()).await
    }

    /// As [`Store::passages_for`] at a given time (tests).
    pub async fn passages_at(
        &self,
        controller: ControllerId,
        after: Option<PassageCursor>,
        now: i64,
    ) -> StoreResult<PassageFeed> {
        let me = i64::from(controller.0);
        let settled = now.saturating_sub(SETTLE_MS);
        let Some(after) = after else {
            return self.occupancy_feed(me, settled).await;
        };
        let limit = i64::try_from(MAX_PASSAGES).unwrap_or(500);
        // $1 is the controller throughout (SQLite numbers by first appearance).
        let rows: Vec<PassageRow> = sqlx::query_as(&format!(
            "SELECT e.received_at, e.controller_id, e.epoch, e.seq, e.at, e.zone_id, d.outside_zone_id, e.side, e.person_id \
             FROM events e LEFT JOIN doors d ON d.id = e.door_id \
             WHERE e.controller_id <> $1 AND e.outcome = 'granted' AND e.person_id IS NOT NULL AND e.suspect IS NULL \
               AND e.side IN ('entry', 'exit') \
               AND (e.zone_id IN ({CONTROLLER_ZONES}) OR d.outside_zone_id IN ({CONTROLLER_ZONES})) \
               AND e.received_at <= $2 \
               AND (e.received_at > $3 OR (e.received_at = $3 AND (e.controller_id > $4 \
                    OR (e.controller_id = $4 AND (e.epoch > $5 OR (e.epoch = $5 AND e.seq > $6)))))) \
             ORDER BY e.received_at, e.controller_id, e.epoch, e.seq LIMIT $7"
        ))
        .bind(me)
        .bind(settled)
        .bind(after.received_at)
        .bind(after.controller)
        .bind(after.epoch)
        .bind(after.seq)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let more = rows.len() as i64 == limit;
        let mut next = after;
        let mut passages = Vec::with_capacity(rows.len().saturating_mul(2));
        for (received_at, controller_id, epoch, seq, at, zone, outside, side, person) in rows {
            next = PassageCursor {
                received_at,
                controller: controller_id,
                epoch,
                seq,
            };
            let person = PersonId(id32(person, "person")?);
            let entry = side == "entry";
            if let Some(zone) = zone {
                passages.push(SharedPassage {
                    zone: ZoneId(id32(zone, "zone")?),
                    person,
                    inside: entry,
                    at: Timestamp(at),
                });
            }
            if let Some(outside) = outside {
                passages.push(SharedPassage {
                    zone: ZoneId(id32(outside, "zone")?),
                    person,
                    inside: !entry,
                    at: Timestamp(at),
                });
            }
        }
        Ok(PassageFeed {
            passages,
            next: next.text(),
            more,
        })
    }

    /// The latest passage of each person in each of the controller's zones,
    /// and the cursor where the incremental feed takes over.
    async fn occupancy_feed(&self, me: i64, settled: i64) -> StoreResult<PassageFeed> {
        let head: Option<(i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT received_at, controller_id, epoch, seq FROM events WHERE received_at <= $1 \
             ORDER BY received_at DESC, controller_id DESC, epoch DESC, seq DESC LIMIT 1",
        )
        .bind(settled)
        .fetch_optional(self.pool())
        .await?;
        let next = head.map_or(
            PassageCursor {
                received_at: 0,
                controller: 0,
                epoch: 0,
                seq: 0,
            },
            |(received_at, controller, epoch, seq)| PassageCursor {
                received_at,
                controller,
                epoch,
                seq,
            },
        );
        let rows: Vec<(i64, i64, String, i64)> = sqlx::query_as(&format!(
            "SELECT l.zone_id, l.person_id, l.side, l.at FROM (\
               SELECT zone_id, person_id, side, at, ROW_NUMBER() OVER (\
                 PARTITION BY zone_id, person_id ORDER BY at DESC, controller_id DESC, epoch DESC, seq DESC) AS rn \
               FROM events WHERE controller_id <> $1 AND outcome = 'granted' AND person_id IS NOT NULL AND suspect IS NULL \
                 AND side IN ('entry', 'exit') AND zone_id IN ({CONTROLLER_ZONES}) \
                 AND (received_at < $2 OR (received_at = $2 AND (controller_id < $3 \
                      OR (controller_id = $3 AND (epoch < $4 OR (epoch = $4 AND seq <= $5))))))\
             ) l WHERE l.rn = 1 ORDER BY l.zone_id, l.person_id"
        ))
        .bind(me)
        .bind(next.received_at)
        .bind(next.controller)
        .bind(next.epoch)
        .bind(next.seq)
        .fetch_all(self.pool())
        .await?;
        let passages = rows
            .into_iter()
            .map(|(zone, person, side, at)| {
                Ok(SharedPassage {
                    zone: ZoneId(id32(zone, "zone")?),
                    person: PersonId(id32(person, "person")?),
                    inside: side == "entry",
                    at: Timestamp(at),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(PassageFeed {
            passages,
            next: next.text(),
            more: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_nonsense_is_refused() {
        let c = PassageCursor::parse("1700000000000.3.77.42").unwrap();
        assert_eq!(PassageCursor::parse(&c.text()).unwrap(), c);
        // A cursor handed out before chain epochs reads as epoch 0.
        assert_eq!(
            PassageCursor::parse("1700000000000.3.42").unwrap(),
            PassageCursor::parse("1700000000000.3.0.42").unwrap()
        );
        for bad in [
            "",
            "1.2",
            "a.b.c",
            "1.2.-3",
            "1.2.3.4.5",
            "1.2.3.",
            "99999999999999999999.1.1",
        ] {
            assert!(PassageCursor::parse(bad).is_err(), "{bad}");
        }
    }
}
