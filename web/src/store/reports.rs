//! The reports over one period in the site's time zone: unused cards,
//! denials, door alarms, meeting-room utilisation and the busiest doors,
//! each aggregated in SQL (one text for both backends) over that period only.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};

use super::{Store, StoreError, StoreResult};

/// The longest period one report covers, in days.
pub const MAX_PERIOD_DAYS: i64 = 366;
/// The period when none is given: the last 30 days, today included.
pub const DEFAULT_PERIOD_DAYS: i64 = 30;
/// How long a card may go unused before the unused-cards report lists it, by default.
pub const DEFAULT_UNUSED_DAYS: i64 = 90;
/// The longest "unused for" the unused-cards report accepts, in days (ten years).
pub const MAX_UNUSED_DAYS: i64 = 3650;
/// The most rows a list report returns; `truncated` says when there were more.
pub const MAX_ROWS: i64 = 10_000;
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// The names of the reports, as in their paths.
pub const REPORTS: [&str; 5] = [
    "unused-cards",
    "denials",
    "door-alarms",
    "room-utilisation",
    "busiest-doors",
];

/// A report's period as asked: local dates in the site's time zone.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// The first day (`YYYY-MM-DD`, the site's local date, included);
    /// default 29 days before `to`.
    #[param(value_type = Option<String>, format = Date)]
    #[serde(default, deserialize_with = "given_date")]
    pub from: Option<String>,
    /// The last day (`YYYY-MM-DD`, included); default today. At most 366 days after `from`.
    #[param(value_type = Option<String>, format = Date)]
    #[serde(default, deserialize_with = "given_date")]
    pub to: Option<String>,
}

/// A date given in a query must say something: `to=` is refused, not read
/// as "today" (the API documents a date; the page form drops its blank
/// fields itself before it builds a [`PeriodQuery`]).
fn given_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(d)? {
        Some(text) if text.trim().is_empty() => Err(serde::de::Error::custom(
            "a date YYYY-MM-DD, not blank (leave the parameter out for the default)",
        )),
        given => Ok(given),
    }
}

/// The unused-cards report's parameter.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnusedQuery {
    /// Cards without a recorded use in this many days (default 90).
    #[param(minimum = 1, maximum = 3650)]
    pub days: Option<i64>,
}

/// A report's period, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Period {
    /// The first day (local date, included).
    pub from_date: String,
    /// The last day (local date, included).
    pub to_date: String,
    /// The site's time zone the days are in.
    pub time_zone: String,
    /// The period's first instant (ms since epoch, inclusive).
    pub from: i64,
    /// The instant after its last day (ms since epoch, exclusive).
    pub to: i64,
    #[serde(skip)]
    #[schema(ignore)]
    first: Date,
    #[serde(skip)]
    #[schema(ignore)]
    last: Date,
}

fn time_zone(name: &str) -> StoreResult<TimeZone> {
    TimeZone::get(name).map_err(|_| StoreError::Invalid(format!("unknown time zone {name:?}")))
}

fn date_arg(field: &str, text: &str) -> StoreResult<Date> {
    text.trim().parse().map_err(|_| {
        StoreError::Invalid(format!(
            "{field}: not a date; write YYYY-MM-DD, e.g. 2026-11-02"
        ))
    })
}

/// The first instant of a local day.
fn day_start(date: Date, tz: &TimeZone) -> StoreResult<i64> {
    date.to_zoned(tz.clone())
        .map(|z| z.timestamp().as_millisecond())
        .map_err(|e| StoreError::Invalid(format!("date {date}: {e}")))
}

fn local_date(ms: i64, tz: &TimeZone) -> StoreResult<Date> {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(tz.clone()).date())
        .map_err(|e| StoreError::Invalid(format!("time {ms}: {e}")))
}

fn add_days(date: Date, days: i64) -> StoreResult<Date> {
    date.checked_add(days.days())
        .map_err(|e| StoreError::Invalid(format!("date {date}: {e}")))
}

impl Period {
    /// The period `from`..=`to` (local dates in `zone`); without `to`, up to
    /// today (by `now`); without `from`, the 30 days up to `to`. Refused: a
    /// date that is not `YYYY-MM-DD`, `from` after `to`, more than 366 days.
    pub fn resolve(
        from: Option<&str>,
        to: Option<&str>,
        zone: &str,
        now: i64,
    ) -> StoreResult<Period> {
        let tz = time_zone(zone)?;
        let from = from.map(str::trim).filter(|t| !t.is_empty());
        let to = to.map(str::trim).filter(|t| !t.is_empty());
        let last = match to {
            Some(t) => date_arg("to", t)?,
            None => local_date(now, &tz)?,
        };
        let first = match from {
            Some(f) => date_arg("from", f)?,
            None => add_days(last, 1 - DEFAULT_PERIOD_DAYS)?,
        };
        if first > last {
            return Err(StoreError::Invalid("from must not be after to".to_string()));
        }
        let days = i64::from((last - first).get_days().saturating_add(1));
        if days > MAX_PERIOD_DAYS {
            return Err(StoreError::Invalid(format!(
                "the period must be at most {MAX_PERIOD_DAYS} days; narrow from and to"
            )));
        }
        Ok(Period {
            from_date: first.to_string(),
            to_date: last.to_string(),
            time_zone: zone.to_string(),
            from: day_start(first, &tz)?,
            to: day_start(add_days(last, 1)?, &tz)?,
            first,
            last,
        })
    }

    /// The pieces of the period with one UTC offset each (ms, offset ms):
    /// one piece unless the zone changes its offset inside the period.
    fn offset_pieces(&self) -> StoreResult<Vec<(i64, i64, i64)>> {
        let tz = time_zone(&self.time_zone)?;
        let mut pieces = Vec::new();
        let mut start = self.from;
        while start < self.to {
            let at = Timestamp::from_millisecond(start)
                .map_err(|e| StoreError::Invalid(format!("time {start}: {e}")))?;
            let offset = i64::from(tz.to_offset(at).seconds()) * 1000;
            let end = tz
                .following(at)
                .next()
                .map_or(self.to, |t| t.timestamp().as_millisecond())
                .min(self.to);
            // A transition at `start` itself (cannot follow, but be safe) must not stall.
            let end = if end <= start { self.to } else { end };
            pieces.push((start, end, offset));
            start = end;
        }
        Ok(pieces)
    }

    /// The ISO weeks the period touches, in order: (label, Monday).
    fn weeks(&self) -> StoreResult<Vec<(String, Date)>> {
        let mut weeks = Vec::new();
        let mut monday = week_monday(self.first)?;
        while monday <= self.last {
            weeks.push((week_label(monday), monday));
            monday = add_days(monday, 7)?;
        }
        Ok(weeks)
    }
}

fn week_monday(date: Date) -> StoreResult<Date> {
    add_days(date, -i64::from(date.weekday().to_monday_zero_offset()))
}

/// `2026-W45`: the ISO week-numbering year and week.
fn week_label(date: Date) -> String {
    let w = date.iso_week_date();
    format!("{:04}-W{:02}", w.year(), w.week())
}

/// An active card nobody used lately.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UnusedCard {
    /// The card UID (hex).
    pub card: String,
    /// Its holder.
    pub person_id: i64,
    /// Their name.
    pub person_name: String,
    /// When the card was issued (ms since epoch).
    pub issued_at: i64,
    /// Its last recorded use (granted or denied), null if never used.
    pub last_used_at: Option<i64>,
}

/// Active cards issued at least `days` days ago with no use since `since`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UnusedCards {
    /// The days asked for.
    pub days: i64,
    /// `now` less those days (ms since epoch): no use since then.
    pub since: i64,
    /// The cards, never used first, then the longest unused first.
    pub cards: Vec<UnusedCard>,
    /// More than the rows shown matched.
    pub truncated: bool,
}

/// Denied attempts of one card at one door for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DenialCount {
    /// The card presented (hex), if any.
    pub card: Option<String>,
    /// Its holder, if the card is known.
    pub person_id: Option<i64>,
    /// Their name (now, or when refused).
    pub person_name: Option<String>,
    /// The door.
    pub door_id: Option<i64>,
    /// Its name (now, or when refused).
    pub door_name: Option<String>,
    /// The reason code (e.g. `no_grant`).
    pub reason: Option<String>,
    /// How many times.
    pub count: i64,
    /// The last time (ms since epoch).
    pub last_at: i64,
}

/// Denied attempts in a period, counted by card, door and reason, most first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Denials {
    /// The period.
    pub period: Period,
    /// The counts.
    pub rows: Vec<DenialCount>,
    /// More than the rows shown matched.
    pub truncated: bool,
}

/// One door's forced and held-open events in a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DoorAlarmCount {
    /// The door.
    pub door_id: i64,
    /// Its name (now, or at the last event).
    pub door_name: Option<String>,
    /// The zone it leads into.
    pub zone_id: Option<i64>,
    /// Its name.
    pub zone_name: Option<String>,
    /// `door_forced` events.
    pub forced: i64,
    /// `door_held_open` events at the alarm stage (the pre-alarm buzzer
    /// at the door is not counted).
    pub held_open: i64,
    /// The last of them (ms since epoch).
    pub last_at: i64,
}

/// Doors forced or held open in a period (from the events the controllers
/// recorded, whether or not their alarms were acknowledged), most first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DoorAlarms {
    /// The period.
    pub period: Period,
    /// The doors.
    pub doors: Vec<DoorAlarmCount>,
}

/// A meeting room's week.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RoomWeek {
    /// The ISO week, e.g. `2026-W45`.
    pub week: String,
    /// Minutes booked in the week (overlapping bookings counted once),
    /// within the period.
    pub booked_minutes: i64,
    /// The same in hours.
    pub booked_hours: f64,
    /// Clock hours (site time) with at least one granted entry into the room.
    pub used_hours: i64,
}

/// A meeting room's weeks.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RoomUsage {
    /// The room (zone).
    pub zone_id: i64,
    /// Its name.
    pub zone_name: String,
    /// Every week of the period, in order.
    pub weeks: Vec<RoomWeek>,
}

/// Meeting rooms (level-2 zones, and any zone booked in the period): booked
/// hours against used hours per ISO week.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoomUtilisation {
    /// The period.
    pub period: Period,
    /// The weeks, in order.
    pub weeks: Vec<String>,
    /// The rooms, by id.
    pub rooms: Vec<RoomUsage>,
}

/// One door's entries by hour of day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DoorHours {
    /// The door.
    pub door_id: i64,
    /// Its name (now, or at an entry).
    pub door_name: Option<String>,
    /// Entries in the period.
    pub total: i64,
    /// Entries per local hour of day, 0 to 23.
    pub hours: Vec<i64>,
}

/// Granted entries per door and hour of day (site time), busiest door first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BusiestDoors {
    /// The period.
    pub period: Period,
    /// The doors with entries.
    pub doors: Vec<DoorHours>,
}

/// The unused-cards report's days, checked.
pub fn unused_days(days: Option<i64>) -> StoreResult<i64> {
    let days = days.unwrap_or(DEFAULT_UNUSED_DAYS);
    if !(1..=MAX_UNUSED_DAYS).contains(&days) {
        return Err(StoreError::Invalid(format!(
            "days must be between 1 and {MAX_UNUSED_DAYS}"
        )));
    }
    Ok(days)
}

/// Rows past `MAX_ROWS` dropped, and whether there were any.
fn bounded<T>(mut rows: Vec<T>) -> (Vec<T>, bool) {
    let max = usize::try_from(MAX_ROWS).unwrap_or(usize::MAX);
    let more = rows.len() > max;
    rows.truncate(max);
    (rows, more)
}

/// Intervals merged where they overlap or touch, sorted.
fn merged(mut spans: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    spans.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (s, e) in spans {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Entries are granted decisions at a door's entry reader (not suspect).
const ENTRY: &str = "e.outcome = 'granted' AND e.side = 'entry' AND e.suspect IS NULL";

/// The meeting rooms of a period: level-2 zones and every zone booked in
/// it; `$from` and `$to` are the placeholders of the period's bounds
/// (numbered in order of appearance, as SQLite counts them).
fn meeting_rooms(from: usize, to: usize) -> String {
    format!(
        "SELECT z.id FROM zones z WHERE z.level = 2 OR z.id IN \
         (SELECT b.room_zone_id FROM bookings b WHERE b.end_at > ${from} AND b.start_at < ${to})"
    )
}

impl Store {
    /// Active cards issued at least `days` days before `now` with no
    /// granted or denied event since then.
    pub async fn unused_cards(&self, days: Option<i64>, now: i64) -> StoreResult<UnusedCards> {
        let days = unused_days(days)?;
        let since = now.saturating_sub(days.saturating_mul(DAY_MS));
        // A card's events are its holder's: the last use is found through
        // the person's time index, one card at a time, never a table scan.
        let rows = sqlx::query(
            "SELECT u.uid, u.person_id, u.name, u.issued_at, u.last_used_at FROM \
               (SELECT c.uid, c.person_id, p.name, c.issued_at, \
                  (SELECT MAX(e.at) FROM events e WHERE e.person_id = c.person_id AND e.card = c.uid \
                     AND e.outcome IN ('granted', 'denied') AND e.suspect IS NULL) AS last_used_at \
                FROM cards c JOIN people p ON p.id = c.person_id \
                WHERE c.state = 'active' AND c.issued_at <= $1) u \
             WHERE u.last_used_at IS NULL OR u.last_used_at < $2 \
             ORDER BY CASE WHEN u.last_used_at IS NULL THEN 0 ELSE 1 END, u.last_used_at, u.uid \
             LIMIT $3",
        )
        .bind(since)
        .bind(since)
        .bind(MAX_ROWS + 1)
        .fetch_all(self.pool())
        .await?;
        let cards = rows
            .iter()
            .map(|r| {
                Ok(UnusedCard {
                    card: r.try_get("uid")?,
                    person_id: r.try_get("person_id")?,
                    person_name: r.try_get("name")?,
                    issued_at: r.try_get("issued_at")?,
                    last_used_at: r.try_get("last_used_at")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let (cards, truncated) = bounded(cards);
        Ok(UnusedCards {
            days,
            since,
            cards,
            truncated,
        })
    }

    /// Denied attempts in `period` counted by card, door and reason, most first.
    pub async fn denials(&self, period: &Period) -> StoreResult<Denials> {
        let rows = sqlx::query(
            "SELECT g.card, g.person_id, g.door_id, g.reason, g.n, g.last_at, \
               COALESCE(p.name, g.person_name_at_event) AS person_name, \
               COALESCE(d.name, g.door_name_at_event) AS door_name \
             FROM (SELECT e.card, e.person_id, e.door_id, e.reason, COUNT(*) AS n, MAX(e.at) AS last_at, \
                     MAX(e.person_name_at_event) AS person_name_at_event, \
                     MAX(e.door_name_at_event) AS door_name_at_event \
                   FROM events e WHERE e.at >= $1 AND e.at < $2 AND e.outcome = 'denied' AND e.suspect IS NULL \
                   GROUP BY e.card, e.person_id, e.door_id, e.reason) g \
             LEFT JOIN people p ON p.id = g.person_id LEFT JOIN doors d ON d.id = g.door_id \
             ORDER BY g.n DESC, g.last_at DESC, COALESCE(g.card, ''), COALESCE(g.door_id, 0), COALESCE(g.reason, '') \
             LIMIT $3",
        )
        .bind(period.from)
        .bind(period.to)
        .bind(MAX_ROWS + 1)
        .fetch_all(self.pool())
        .await?;
        let counts = rows
            .iter()
            .map(|r| {
                Ok(DenialCount {
                    card: r.try_get("card")?,
                    person_id: r.try_get("person_id")?,
                    person_name: r.try_get("person_name")?,
                    door_id: r.try_get("door_id")?,
                    door_name: r.try_get("door_name")?,
                    reason: r.try_get("reason")?,
                    count: r.try_get("n")?,
                    last_at: r.try_get("last_at")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let (rows, truncated) = bounded(counts);
        Ok(Denials {
            period: period.clone(),
            rows,
            truncated,
        })
    }

    /// Doors forced or held open in `period`, from the recorded events, most
    /// first; a door held open counts once it reached the alarm stage.
    pub async fn door_alarms(&self, period: &Period) -> StoreResult<DoorAlarms> {
        let rows = sqlx::query(
            "SELECT g.door_id, g.forced, g.held_open, g.last_at, \
               COALESCE(d.name, g.door_name_at_event) AS door_name, z.id AS zone_id, z.name AS zone_name \
             FROM (SELECT e.door_id, \
                     SUM(CASE WHEN e.kind = 'door_forced' THEN 1 ELSE 0 END) AS forced, \
                     SUM(CASE WHEN e.kind = 'door_held_open' THEN 1 ELSE 0 END) AS held_open, \
                     MAX(e.at) AS last_at, MAX(e.zone_id) AS zone_id, \
                     MAX(e.door_name_at_event) AS door_name_at_event \
                   FROM events e WHERE e.at >= $1 AND e.at < $2 AND e.door_id IS NOT NULL \
                     AND e.kind IN ('door_forced', 'door_held_open') AND e.suspect IS NULL \
                     AND NOT (e.kind = 'door_held_open' AND e.body LIKE '%\"stage\":\"pre_alarm\"%') \
                   GROUP BY e.door_id) g \
             LEFT JOIN doors d ON d.id = g.door_id \
             LEFT JOIN zones z ON z.id = COALESCE(d.inside_zone_id, g.zone_id) \
             ORDER BY g.forced + g.held_open DESC, g.last_at DESC, g.door_id",
        )
        .bind(period.from)
        .bind(period.to)
        .fetch_all(self.pool())
        .await?;
        let doors = rows
            .iter()
            .map(|r| {
                Ok(DoorAlarmCount {
                    door_id: r.try_get("door_id")?,
                    door_name: r.try_get("door_name")?,
                    zone_id: r.try_get("zone_id")?,
                    zone_name: r.try_get("zone_name")?,
                    forced: r.try_get("forced")?,
                    held_open: r.try_get("held_open")?,
                    last_at: r.try_get("last_at")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(DoorAlarms {
            period: period.clone(),
            doors,
        })
    }

    /// Meeting rooms' booked and used hours per ISO week of `period`.
    pub async fn room_utilisation(&self, period: &Period) -> StoreResult<RoomUtilisation> {
        let tz = time_zone(&period.time_zone)?;
        let weeks = period.weeks()?;
        let rooms: Vec<(i64, String)> = sqlx::query_as(&format!(
            "SELECT id, name FROM zones WHERE id IN ({}) ORDER BY id",
            meeting_rooms(1, 2)
        ))
        .bind(period.from)
        .bind(period.to)
        .fetch_all(self.pool())
        .await?;
        let week_of = |date: Date| -> StoreResult<String> { Ok(week_label(week_monday(date)?)) };
        // Booked: each room's bookings clipped to the period and merged,
        // then cut at the local Mondays.
        let bookings: Vec<(i64, i64, i64)> = sqlx::query_as(&format!(
            "SELECT b.room_zone_id, b.start_at, b.end_at FROM bookings b \
             WHERE b.end_at > $1 AND b.start_at < $2 AND b.room_zone_id IN ({}) \
             ORDER BY b.room_zone_id, b.start_at",
            meeting_rooms(3, 4)
        ))
        .bind(period.from)
        .bind(period.to)
        .bind(period.from)
        .bind(period.to)
        .fetch_all(self.pool())
        .await?;
        let mut spans: BTreeMap<i64, Vec<(i64, i64)>> = BTreeMap::new();
        for (room, start, end) in bookings {
            spans
                .entry(room)
                .or_default()
                .push((start.max(period.from), end.min(period.to)));
        }
        let mut booked: HashMap<(i64, String), i64> = HashMap::new();
        for (room, list) in spans {
            for (mut start, end) in merged(list) {
                while start < end {
                    let date = local_date(start, &tz)?;
                    let next_monday = day_start(add_days(week_monday(date)?, 7)?, &tz)?;
                    let cut = end.min(next_monday);
                    *booked.entry((room, week_of(date)?)).or_default() += cut - start;
                    start = cut;
                }
            }
        }
        // Used: the distinct local clock hours with an entry, counted in
        // SQL per piece of the period with one UTC offset.
        let mut used: BTreeSet<(i64, i64)> = BTreeSet::new();
        for (start, end, offset) in period.offset_pieces()? {
            let hours: Vec<(i64, i64)> = sqlx::query_as(&format!(
                "SELECT DISTINCT e.zone_id, (e.at + $1) / {HOUR_MS} AS local_hour FROM events e \
                 WHERE e.at >= $2 AND e.at < $3 AND {ENTRY} AND e.zone_id IN ({})",
                meeting_rooms(4, 5)
            ))
            .bind(offset)
            .bind(start)
            .bind(end)
            .bind(period.from)
            .bind(period.to)
            .fetch_all(self.pool())
            .await?;
            used.extend(hours);
        }
        let mut used_per_week: HashMap<(i64, String), i64> = HashMap::new();
        let epoch = jiff::civil::date(1970, 1, 1);
        for (room, local_hour) in used {
            let date = add_days(epoch, local_hour.div_euclid(24))?;
            *used_per_week.entry((room, week_of(date)?)).or_default() += 1;
        }
        let rooms = rooms
            .into_iter()
            .map(|(id, name)| RoomUsage {
                zone_id: id,
                zone_name: name,
                weeks: weeks
                    .iter()
                    .map(|(label, _)| {
                        let key = (id, label.clone());
                        let ms = booked.get(&key).copied().unwrap_or(0);
                        RoomWeek {
                            week: label.clone(),
                            booked_minutes: ms / 60_000,
                            booked_hours: (ms as f64 / HOUR_MS as f64 * 100.0).round() / 100.0,
                            used_hours: used_per_week.get(&key).copied().unwrap_or(0),
                        }
                    })
                    .collect(),
            })
            .collect();
        Ok(RoomUtilisation {
            period: period.clone(),
            weeks: weeks.into_iter().map(|(label, _)| label).collect(),
            rooms,
        })
    }

    /// Granted entries per door and local hour of day in `period`, busiest first.
    pub async fn busiest_doors(&self, period: &Period) -> StoreResult<BusiestDoors> {
        let mut doors: HashMap<i64, DoorHours> = HashMap::new();
        for (start, end, offset) in period.offset_pieces()? {
            let rows = sqlx::query(&format!(
                "SELECT h.door_id, h.hour, COUNT(*) AS n, MAX(h.door_name_at_event) AS door_name_at_event \
                 FROM (SELECT e.door_id, ((e.at + $1) / {HOUR_MS}) % 24 AS hour, e.door_name_at_event \
                       FROM events e WHERE e.at >= $2 AND e.at < $3 AND e.door_id IS NOT NULL AND {ENTRY}) h \
                 GROUP BY h.door_id, h.hour"
            ))
            .bind(offset)
            .bind(start)
            .bind(end)
            .fetch_all(self.pool())
            .await?;
            for r in rows {
                let door: i64 = r.try_get("door_id")?;
                let hour: i64 = r.try_get("hour")?;
                let n: i64 = r.try_get("n")?;
                let entry = doors.entry(door).or_insert_with(|| DoorHours {
                    door_id: door,
                    door_name: None,
                    total: 0,
                    hours: vec![0; 24],
                });
                if entry.door_name.is_none() {
                    entry.door_name = r.try_get("door_name_at_event")?;
                }
                let slot = usize::try_from(hour.rem_euclid(24)).unwrap_or(0);
                if let Some(h) = entry.hours.get_mut(slot) {
                    *h += n;
                }
                entry.total += n;
            }
        }
        let names: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM doors")
            .fetch_all(self.pool())
            .await?;
        let mut doors: Vec<DoorHours> = doors.into_values().collect();
        for d in doors.iter_mut() {
            if let Some((_, name)) = names.iter().find(|(id, _)| *id == d.door_id) {
                d.door_name = Some(name.clone());
            }
        }
        doors.sort_by(|a, b| b.total.cmp(&a.total).then(a.door_id.cmp(&b.door_id)));
        Ok(BusiestDoors {
            period: period.clone(),
            doors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_000_000_000; // 2026-11-30T... UTC

    #[test]
    fn the_period_defaults_to_thirty_days_and_is_checked() {
        let p = Period::resolve(None, None, "Asia/Tokyo", NOW).unwrap();
        assert_eq!(p.to - p.from, 30 * DAY_MS);
        let p = Period::resolve(Some("2026-11-02"), Some("2026-11-08"), "Asia/Tokyo", NOW).unwrap();
        // 2026-11-02T00:00+09:00 to 2026-11-09T00:00+09:00.
        assert_eq!(p.from, 1_793_545_200_000);
        assert_eq!(p.to, p.from + 7 * DAY_MS);
        assert_eq!(p.weeks().unwrap().len(), 1);
        for (from, to) in [
            (Some("2026-11-09"), Some("2026-11-08")),
            (Some("2025-01-01"), Some("2026-01-02")),
            (Some("yesterday"), None),
            (None, Some("2026-02-30")),
        ] {
            assert!(
                matches!(
                    Period::resolve(from, to, "Asia/Tokyo", NOW),
                    Err(StoreError::Invalid(_))
                ),
                "{from:?} {to:?}"
            );
        }
        assert!(Period::resolve(Some("2025-01-01"), Some("2026-01-01"), "Asia/Tokyo", NOW).is_ok());
        assert!(unused_days(Some(0)).is_err() && unused_days(Some(3651)).is_err());
        assert_eq!(unused_days(None).unwrap(), 90);
    }

    #[test]
    fn a_summer_time_change_splits_the_period_by_offset() {
        // Europe/Berlin leaves summer time on 2026-10-25.
        let p =
            Period::resolve(Some("2026-10-20"), Some("2026-10-30"), "Europe/Berlin", NOW).unwrap();
        let pieces = p.offset_pieces().unwrap();
        assert_eq!(pieces.len(), 2, "{pieces:?}");
        assert_eq!(pieces[0].2, 2 * HOUR_MS);
        assert_eq!(pieces[1].2, HOUR_MS);
        assert_eq!(pieces[0].1, pieces[1].0);
        assert_eq!(p.to - p.from, 11 * DAY_MS + HOUR_MS);
        let tokyo =
            Period::resolve(Some("2026-10-20"), Some("2026-10-30"), "Asia/Tokyo", NOW).unwrap();
        assert_eq!(
            tokyo.offset_pieces().unwrap(),
            vec![(tokyo.from, tokyo.to, 9 * HOUR_MS)]
        );
        // 2026-10-20 is a Tuesday in W43; the period touches W43 and W44.
        let weeks: Vec<String> = tokyo.weeks().unwrap().into_iter().map(|w| w.0).collect();
        assert_eq!(weeks, vec!["2026-W43", "2026-W44"]);
        assert_eq!(merged(vec![(5, 9), (1, 3), (2, 6)]), vec![(1, 9)]);
    }
}
