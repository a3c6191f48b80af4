//! The machine-room history: a zone's granted entries and exits paired per
//! person into visits (with the escort or dual-custody partner), one query
//! per page, and the denied attempts at the zone's doors beside them.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};

use super::chains::epoch_of;
use super::queries::{EventCursor, EventFilter, EventRecord};
use super::resources::{Id, Level, Millis, Outcome, Page, PersonKind, Uid};
use super::{Store, StoreError, StoreResult};

/// The longest period one history covers (a year and a day).
pub const MAX_PERIOD_MS: i64 = 367 * DAY_MS;
/// How far before the period an entry is looked for, so that a visit that
/// began before it (and ended in it, or not yet) is shown whole. A stay
/// longer than this shows as an exit without a recorded entry.
pub const LOOKBACK_MS: i64 = 31 * DAY_MS;
/// The period when none is given: the last 30 days.
pub const DEFAULT_PERIOD_MS: i64 = 30 * DAY_MS;
const DAY_MS: i64 = 86_400_000;

/// Which visits and denied attempts to list. Without `zone` and
/// `zone_level`, every level-4 zone; without `from`, the last 30 days.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryFilter {
    /// The person.
    pub person: Option<Id>,
    /// The card UID (hex) they entered (or left) with.
    pub card: Option<Uid>,
    /// A door they entered or left through.
    pub door: Option<Id>,
    /// The zone.
    pub zone: Option<Id>,
    /// Every zone configured at this level (default 4 when no zone is given).
    pub zone_level: Option<Level>,
    /// The level the entry was decided at.
    pub level: Option<Level>,
    /// `granted`: visits only; `denied`: denied attempts only; `pending`: neither.
    pub outcome: Option<Outcome>,
    /// From this instant (inclusive): visits that overlap the period.
    pub from: Option<Millis>,
    /// Up to this instant (exclusive).
    pub to: Option<Millis>,
}

impl HistoryFilter {
    /// The zone level the filter means: the given one, else 4 unless a zone is named.
    pub fn zones_at_level(&self) -> Option<Level> {
        match (self.zone, self.zone_level) {
            (_, Some(level)) => Some(level),
            (None, None) => Level::new(4),
            (Some(_), None) => None,
        }
    }

    /// The period `[from, to)` with its defaults, checked: at most
    /// [`MAX_PERIOD_MS`] long, `from` before `to`.
    pub fn period(&self, now: i64) -> StoreResult<(i64, i64)> {
        let to = self.to.map_or(now.saturating_add(1), Millis::get);
        let from = self
            .from
            .map_or(to.saturating_sub(DEFAULT_PERIOD_MS).max(0), Millis::get);
        if from >= to {
            return Err(StoreError::Invalid("from must be before to".into()));
        }
        if to - from > MAX_PERIOD_MS {
            return Err(StoreError::Invalid(
                "the period must be at most 367 days; narrow from and to".into(),
            ));
        }
        Ok((from, to))
    }

    /// The denied attempts' filter: the same zones, people, cards, doors and period.
    pub fn denied(&self, (from, to): (i64, i64)) -> EventFilter {
        EventFilter {
            person: self.person,
            card: self.card,
            door: self.door,
            zone: self.zone,
            zone_level: self.zones_at_level(),
            level: self.level,
            outcome: Some(Outcome::Denied),
            from: Millis::new(from),
            to: Millis::new(to),
            ..EventFilter::default()
        }
    }

    /// Whether visits (granted passages) are asked for.
    pub fn wants_visits(&self) -> bool {
        self.outcome.is_none_or(|o| o == Outcome::Granted)
    }

    /// Whether denied attempts are asked for.
    pub fn wants_denied(&self) -> bool {
        self.outcome.is_none_or(|o| o == Outcome::Denied)
    }
}

/// Who came in with someone: their escort, or the other person admitted by
/// the same decision (the escorted visitor, or the dual-custody partner).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CompanionRole {
    /// The person who escorted this visitor in.
    Escort,
    /// Someone admitted by the same decision: a visitor this person
    /// escorted, or the other person of a dual-custody entry.
    Partner,
}

impl CompanionRole {
    /// The name, as in the API and the CSV export.
    pub fn as_str(self) -> &'static str {
        match self {
            CompanionRole::Escort => "escort",
            CompanionRole::Partner => "partner",
        }
    }
}

/// One stay in a zone: an entry and the exit after it. Either side may be
/// missing: an entry without an exit (still inside, or the exit was not
/// recorded), or an exit without a recorded entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Visit {
    /// The zone.
    pub zone_id: i64,
    /// Its name, if it still exists.
    pub zone_name: Option<String>,
    /// The person.
    pub person_id: i64,
    /// Their name (now, or when the event was stored if they were deleted).
    pub person_name: Option<String>,
    /// Their kind, if they still exist.
    pub person_kind: Option<PersonKind>,
    /// The card of the entry (or of the exit, without an entry).
    pub card: Option<String>,
    /// When they entered (ms since epoch), null without a recorded entry.
    pub entered_at: Option<i64>,
    /// The door they entered through.
    pub entry_door_id: Option<i64>,
    /// Its name.
    pub entry_door_name: Option<String>,
    /// When they left (ms since epoch), null while no exit is recorded.
    pub left_at: Option<i64>,
    /// The door they left through.
    pub exit_door_id: Option<i64>,
    /// Its name.
    pub exit_door_name: Option<String>,
    /// No later passage of this person through the zone's doors is recorded.
    pub still_inside: bool,
    /// Time inside (ms), when both entry and exit are recorded.
    pub duration_ms: Option<i64>,
    /// The escort or partner, if anyone came in with them.
    pub companion_id: Option<i64>,
    /// Their name.
    pub companion_name: Option<String>,
    /// Escort or partner.
    pub companion_role: Option<CompanionRole>,
    /// The level the entry was decided at.
    pub level: Option<i64>,
    #[serde(skip)]
    pub(crate) cursor: EventCursor,
}

/// A zone's history for a period: visits newest first, and the denied attempts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct History {
    /// The period's start (ms since epoch, inclusive).
    pub from: i64,
    /// The period's end (ms since epoch, exclusive).
    pub to: i64,
    /// The zones it covers.
    pub zone_ids: Vec<i64>,
    /// Visits that overlap the period, newest entry first.
    pub visits: Page<Visit>,
    /// Denied attempts at the zones' doors in the period, newest first.
    pub denied: Page<EventRecord>,
}

enum Bind {
    Int(i64),
    Text(String),
}

/// The visits query: the zones' granted passages since `from - LOOKBACK`,
/// each with the person's passage before and after it (window functions),
/// keeping entries (with their exit) and exits without an entry that overlap
/// the period.
fn visit_query(
    filter: &HistoryFilter,
    (from, to): (i64, i64),
    after: Option<EventCursor>,
    limit: i64,
) -> (String, Vec<Bind>) {
    let mut binds = vec![Bind::Int(from.saturating_sub(LOOKBACK_MS))];
    let mut zones = String::from("SELECT id FROM zones WHERE 1 = 1");
    if let Some(z) = filter.zone {
        binds.push(Bind::Int(z.get()));
        zones.push_str(&format!(" AND id = ${}", binds.len()));
    }
    if let Some(l) = filter.zones_at_level() {
        binds.push(Bind::Int(l.get()));
        zones.push_str(&format!(" AND level = ${}", binds.len()));
    }
    let order = "e.at, e.controller_id, e.epoch, e.seq";
    let window = format!("OVER (PARTITION BY e.zone_id, e.person_id ORDER BY {order})");
    let mut sql = format!(
        "SELECT v.*, z.name AS zone_name, pp.name AS current_name, pp.kind AS person_kind, \
           d.name AS door_name, nd.name AS next_door_name, esc.name AS escort_name, \
           (SELECT MIN(x.person_id) FROM events x WHERE x.controller_id = v.controller_id AND x.epoch = v.epoch \
              AND x.at = v.at AND x.door_id = v.door_id AND x.side = v.side AND x.outcome = 'granted' \
              AND x.suspect IS NULL AND x.person_id <> v.person_id AND v.side = 'entry') AS partner_id \
         FROM (SELECT e.controller_id, e.epoch, e.seq, e.at, e.zone_id, e.door_id, e.side, e.level, e.person_id, \
             e.card, e.escort_id, e.person_name_at_event, e.door_name_at_event, \
             LAG(e.side) {window} AS prev_side, \
             LEAD(e.side) {window} AS next_side, \
             LEAD(e.at) {window} AS next_at, \
             LEAD(e.door_id) {window} AS next_door, \
             LEAD(e.door_name_at_event) {window} AS next_door_name_at_event \
           FROM events e WHERE e.at >= $1 AND e.zone_id IN ({zones}) AND e.outcome = 'granted' \
             AND e.person_id IS NOT NULL AND e.suspect IS NULL AND e.side IN ('entry', 'exit')) v \
         LEFT JOIN zones z ON z.id = v.zone_id LEFT JOIN people pp ON pp.id = v.person_id \
         LEFT JOIN doors d ON d.id = v.door_id LEFT JOIN doors nd ON nd.id = v.next_door \
         LEFT JOIN people esc ON esc.id = v.escort_id WHERE "
    );
    // Numbered in the order they appear (SQLite counts them so).
    binds.push(Bind::Int(to));
    let t = binds.len();
    binds.push(Bind::Int(from));
    let f = binds.len();
    // An entry overlaps [from, to) when it is in it, or before it and left
    // in it (or never); an exit counts alone when no entry came before it.
    sql.push_str(&format!(
        "v.at < ${t} AND ((v.side = 'entry' AND (v.at >= ${f} OR (v.next_side = 'exit' AND v.next_at >= ${f}) \
           OR v.next_side IS NULL)) \
         OR (v.side = 'exit' AND v.at >= ${f} AND (v.prev_side IS NULL OR v.prev_side <> 'entry')))"
    ));
    if let Some(p) = filter.person {
        binds.push(Bind::Int(p.get()));
        sql.push_str(&format!(" AND v.person_id = ${}", binds.len()));
    }
    if let Some(c) = &filter.card {
        binds.push(Bind::Text(c.text()));
        sql.push_str(&format!(" AND v.card = ${}", binds.len()));
    }
    if let Some(d) = filter.door {
        binds.push(Bind::Int(d.get()));
        let n = binds.len();
        sql.push_str(&format!(
            " AND (v.door_id = ${n} OR (v.side = 'entry' AND v.next_side = 'exit' AND v.next_door = ${n}))"
        ));
    }
    if let Some(l) = filter.level {
        binds.push(Bind::Int(l.get()));
        sql.push_str(&format!(" AND v.level = ${}", binds.len()));
    }
    if let Some(c) = after {
        let n = binds.len();
        sql.push_str(&format!(
            " AND (v.at, v.controller_id, v.epoch, v.seq) < (${}, ${}, ${}, ${})",
            n + 1,
            n + 2,
            n + 3,
            n + 4
        ));
        binds.extend([
            Bind::Int(c.at),
            Bind::Int(c.controller_id),
            Bind::Int(c.epoch),
            Bind::Int(c.seq),
        ]);
    }
    binds.push(Bind::Int(limit));
    sql.push_str(&format!(
        " ORDER BY v.at DESC, v.controller_id DESC, v.epoch DESC, v.seq DESC LIMIT ${}",
        binds.len()
    ));
    (sql, binds)
}

fn visit_row(row: &sqlx::any::AnyRow) -> StoreResult<Visit> {
    let side: String = row.try_get("side")?;
    let at: i64 = row.try_get("at")?;
    let door_id: Option<i64> = row.try_get("door_id")?;
    let door_name: Option<String> = row
        .try_get::<Option<String>, _>("door_name")?
        .or(row.try_get("door_name_at_event")?);
    let next_side: Option<String> = row.try_get("next_side")?;
    let kind: Option<String> = row.try_get("person_kind")?;
    let escort_id: Option<i64> = row.try_get("escort_id")?;
    let partner_id: Option<i64> = row.try_get("partner_id")?;
    let epoch: i64 = row.try_get("epoch")?;
    // Checks the stored epoch as every event read does.
    epoch_of(epoch)?;
    let cursor = EventCursor {
        at,
        controller_id: row.try_get("controller_id")?,
        epoch,
        seq: row.try_get("seq")?,
    };
    let (companion_id, companion_role) = match (escort_id, partner_id) {
        (Some(e), _) => (Some(e), Some(CompanionRole::Escort)),
        (None, Some(p)) => (Some(p), Some(CompanionRole::Partner)),
        (None, None) => (None, None),
    };
    let mut visit = Visit {
        zone_id: row.try_get("zone_id")?,
        zone_name: row.try_get("zone_name")?,
        person_id: row.try_get("person_id")?,
        person_name: row
            .try_get::<Option<String>, _>("current_name")?
            .or(row.try_get("person_name_at_event")?),
        person_kind: kind.as_deref().map(PersonKind::parse).transpose()?,
        card: row.try_get("card")?,
        entered_at: None,
        entry_door_id: None,
        entry_door_name: None,
        left_at: None,
        exit_door_id: None,
        exit_door_name: None,
        still_inside: false,
        duration_ms: None,
        companion_id,
        companion_name: None,
        companion_role,
        level: row.try_get("level")?,
        cursor,
    };
    if side == "entry" {
        visit.entered_at = Some(at);
        visit.entry_door_id = door_id;
        visit.entry_door_name = door_name;
        visit.still_inside = next_side.is_none();
        if next_side.as_deref() == Some("exit") {
            let left: i64 = row.try_get("next_at")?;
            visit.left_at = Some(left);
            visit.exit_door_id = row.try_get("next_door")?;
            visit.exit_door_name = row
                .try_get::<Option<String>, _>("next_door_name")?
                .or(row.try_get("next_door_name_at_event")?);
            visit.duration_ms = Some(left - at);
        }
    } else {
        visit.left_at = Some(at);
        visit.exit_door_id = door_id;
        visit.exit_door_name = door_name;
    }
    Ok(visit)
}

impl Store {
    /// One page of visits to the filter's zones that overlap its period,
    /// newest entry first, after `cursor`; `now` sets the default period.
    pub async fn visits(
        &self,
        filter: &HistoryFilter,
        now: i64,
        limit: i64,
        cursor: Option<&str>,
    ) -> StoreResult<Page<Visit>> {
        let period = filter.period(now)?;
        let after = cursor.map(EventCursor::decode).transpose()?;
        let mut items = if filter.wants_visits() {
            self.visits_after(filter, period, after, limit + 1).await?
        } else {
            Vec::new()
        };
        let limit = usize::try_from(limit).unwrap_or(0);
        let more = items.len() > limit;
        items.truncate(limit);
        let next = if more {
            items.last().map(|v| v.cursor.encode())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// Up to `limit` visits of `period` strictly after `after`, newest first
    /// (for exports that walk the whole period).
    pub async fn visits_after(
        &self,
        filter: &HistoryFilter,
        period: (i64, i64),
        after: Option<EventCursor>,
        limit: i64,
    ) -> StoreResult<Vec<Visit>> {
        let (sql, binds) = visit_query(filter, period, after, limit);
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = match b {
                Bind::Int(v) => query.bind(v),
                Bind::Text(v) => query.bind(v),
            };
        }
        let rows = query.fetch_all(self.pool()).await?;
        let mut visits = rows
            .iter()
            .map(visit_row)
            .collect::<StoreResult<Vec<_>>>()?;
        self.name_companions(&mut visits).await?;
        Ok(visits)
    }

    /// Fills in the companions' names, one query for the page.
    async fn name_companions(&self, visits: &mut [Visit]) -> StoreResult<()> {
        let mut ids: Vec<i64> = visits.iter().filter_map(|v| v.companion_id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(());
        }
        let marks = (1..=ids.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT id, name FROM people WHERE id IN ({marks})");
        let mut query = sqlx::query_as::<_, (i64, String)>(&sql);
        for id in &ids {
            query = query.bind(*id);
        }
        let names = query.fetch_all(self.pool()).await?;
        for v in visits.iter_mut() {
            v.companion_name = v.companion_id.and_then(|c| {
                names
                    .iter()
                    .find(|(id, _)| *id == c)
                    .map(|(_, n)| n.clone())
            });
        }
        Ok(())
    }

    /// The zones a history filter offers: id, name, level, by id.
    pub async fn zone_choices(&self) -> StoreResult<Vec<(i64, String, i64)>> {
        Ok(
            sqlx::query_as("SELECT id, name, level FROM zones ORDER BY id")
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// The doors a history filter offers: id, name, by id.
    pub async fn door_choices(&self) -> StoreResult<Vec<(i64, String)>> {
        Ok(sqlx::query_as("SELECT id, name FROM doors ORDER BY id")
            .fetch_all(self.pool())
            .await?)
    }

    /// A zone history page: visits and denied attempts, each paged by its
    /// own cursor.
    pub async fn history(
        &self,
        filter: &HistoryFilter,
        now: i64,
        limit: i64,
        visits_cursor: Option<&str>,
        denied_cursor: Option<&str>,
    ) -> StoreResult<History> {
        let (from, to) = filter.period(now)?;
        let visits = self.visits(filter, now, limit, visits_cursor).await?;
        let denied = if filter.wants_denied() {
            self.search_events(&filter.denied((from, to)), limit, denied_cursor)
                .await?
        } else {
            Page {
                items: Vec::new(),
                next: None,
            }
        };
        let zone_ids = match filter.zone {
            Some(z) => vec![z.get()],
            None => {
                let level = filter.zones_at_level().map_or(4, Level::get);
                sqlx::query_scalar("SELECT id FROM zones WHERE level = $1 ORDER BY id")
                    .bind(level)
                    .fetch_all(self.pool())
                    .await?
            }
        };
        Ok(History {
            from,
            to,
            zone_ids,
            visits,
            denied,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        let filter = HistoryFilter {
            person: Id::new(1),
            card: Uid::parse("04A00064"),
            door: Id::new(3),
            zone: Id::new(2),
            level: Level::new(4),
            ..HistoryFilter::default()
        };
        let cursor = EventCursor {
            at: 9,
            controller_id: 1,
            epoch: 0,
            seq: 1,
        };
        let (sql, binds) = visit_query(&filter, (5, 10), Some(cursor), 10);
        assert_eq!(binds.len(), 13);
        let mut last = 0;
        for n in 1..=13 {
            let at = sql.find(&format!("${n}")).unwrap();
            assert!(at > last, "${n}");
            last = at;
        }
    }

    #[test]
    fn the_period_defaults_to_thirty_days_and_is_bounded() {
        let now = 400 * DAY_MS;
        let f = HistoryFilter::default();
        assert_eq!(f.period(now).unwrap(), (now + 1 - 30 * DAY_MS, now + 1));
        assert_eq!(f.zones_at_level(), Level::new(4));
        let long = HistoryFilter {
            from: Millis::new(0),
            to: Millis::new(368 * DAY_MS),
            ..HistoryFilter::default()
        };
        assert!(matches!(long.period(now), Err(StoreError::Invalid(_))));
        let backwards = HistoryFilter {
            from: Millis::new(10),
            to: Millis::new(5),
            ..HistoryFilter::default()
        };
        assert!(matches!(backwards.period(now), Err(StoreError::Invalid(_))));
        let zoned = HistoryFilter {
            zone: Id::new(3),
            ..HistoryFilter::default()
        };
        assert_eq!(zoned.zones_at_level(), None);
    }
}
