//! The monthly machine-room review: a month's level-4 entries, denied
//! attempts, doors forced or held open, entries out of hours and access
//! changes, prepared for a reviewer, and the reviewer's sign-off with the
//! counts as they were when signed.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::audit::{audit_row, AuditEntry};
use super::history::{HistoryFilter, Visit};
use super::queries::{event_row, EventFilter, EventRecord, EVENT_COLUMNS};
use super::resources::{Level, Millis, Outcome};
use super::{Store, StoreError, StoreResult};

/// The only review scope so far: every level-4 zone (the machine rooms).
pub const SCOPE: &str = "level4";
/// Most rows a section lists; its count is always the full count.
pub const SECTION_ROWS: i64 = 500;
/// Local hour (inclusive) from which a working day's entries are usual.
pub const DAY_STARTS: i8 = 7;
/// Local hour from which entries count as out of hours again.
pub const DAY_ENDS: i8 = 20;
/// Longest sign-off comment, in characters.
pub const MAX_COMMENT: usize = 2000;
/// How many months `/reviews` offers: the current one and the 12 before it.
pub const MONTHS_LISTED: usize = 13;

/// A calendar month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    year: i16,
    month: i8,
}

impl Month {
    /// Parses `YYYY-MM` (years 1970 to 9999).
    pub fn parse(text: &str) -> StoreResult<Month> {
        let bad = || StoreError::Invalid(format!("{text:?} is not a month (YYYY-MM)"));
        let (y, m) = text.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 || !(y.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let year: i16 = y.parse().map_err(|_| bad())?;
        let month: i8 = m.parse().map_err(|_| bad())?;
        if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(Month { year, month })
    }

    /// The month `at` (ms since epoch) falls in, in `time_zone`.
    pub fn containing(at: i64, time_zone: &str) -> StoreResult<Month> {
        let local = zoned(at, time_zone)?;
        Ok(Month {
            year: local.year(),
            month: local.month(),
        })
    }

    /// The month before.
    pub fn previous(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// The month after.
    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// Its first instant in `time_zone` (ms since epoch).
    pub fn start(self, time_zone: &str) -> StoreResult<i64> {
        let tz = tz(time_zone)?;
        let bad = |e: jiff::Error| StoreError::Invalid(format!("month {self}: {e}"));
        let day = jiff::civil::Date::new(self.year, self.month, 1).map_err(bad)?;
        Ok(day.to_zoned(tz).map_err(bad)?.timestamp().as_millisecond())
    }

    /// `[first instant, first instant of the next month)` in `time_zone`.
    pub fn period(self, time_zone: &str) -> StoreResult<(i64, i64)> {
        Ok((self.start(time_zone)?, self.next().start(time_zone)?))
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

fn tz(time_zone: &str) -> StoreResult<jiff::tz::TimeZone> {
    jiff::tz::TimeZone::get(time_zone)
        .map_err(|_| StoreError::Corrupt(format!("time zone {time_zone}")))
}

fn zoned(at: i64, time_zone: &str) -> StoreResult<jiff::Zoned> {
    let ts = jiff::Timestamp::from_millisecond(at)
        .map_err(|_| StoreError::Invalid(format!("time {at} out of range")))?;
    Ok(ts.to_zoned(tz(time_zone)?))
}

/// Whether an entry at `at` was out of the usual hours: before 07:00 or from
/// 20:00 local time, on a Saturday or Sunday, or on one of `holidays`
/// (`YYYY-MM-DD` of the zone's site).
pub fn out_of_hours(at: i64, time_zone: &str, holidays: &HashSet<String>) -> StoreResult<bool> {
    use jiff::civil::Weekday;
    let local = zoned(at, time_zone)?;
    let weekend = matches!(local.weekday(), Weekday::Saturday | Weekday::Sunday);
    let night = local.hour() < DAY_STARTS || local.hour() >= DAY_ENDS;
    let holiday = holidays.contains(&local.date().to_string());
    Ok(weekend || night || holiday)
}

/// Each section's count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReviewCounts {
    /// Granted entries into level-4 zones in the month.
    pub entries: i64,
    /// Denied attempts at level-4 doors.
    pub denied: i64,
    /// Level-4 doors forced open or held open until the alarm (the
    /// pre-alarm buzzer alone does not count).
    pub doors: i64,
    /// Granted level-4 entries out of the usual hours.
    pub out_of_hours: i64,
    /// Grants and group memberships changed (admin audit entries).
    pub access_changes: i64,
}

/// A month's sign-off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SignOff {
    /// The month, `YYYY-MM`.
    pub month: String,
    /// What was reviewed: `level4` (every level-4 zone).
    pub scope: String,
    /// Who signed it off.
    pub signed_by: String,
    /// When (ms since epoch).
    pub signed_at: i64,
    /// The reviewer's comment.
    pub comment: String,
    /// The section counts when it was signed off.
    pub counts: ReviewCounts,
}

/// A month in the list: whether it has ended and its sign-off, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MonthState {
    /// The month, `YYYY-MM`.
    pub month: String,
    /// Whether the month is over (only then can it be signed off).
    pub ended: bool,
    /// Its sign-off, if signed.
    pub sign_off: Option<SignOff>,
}

/// The review months and every sign-off.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReviewList {
    /// The site's time zone the months are read in.
    pub time_zone: String,
    /// The last completed month (the one to review by default).
    pub default_month: String,
    /// The current month and the 12 before it, newest first.
    pub months: Vec<MonthState>,
    /// Every sign-off, newest month first.
    pub sign_offs: Vec<SignOff>,
}

/// A month prepared for review: every section's count and (up to
/// [`SECTION_ROWS`]) rows.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MonthReview {
    /// The month, `YYYY-MM`.
    pub month: String,
    /// `level4`: every level-4 zone.
    pub scope: String,
    /// The site's time zone the month is read in.
    pub time_zone: String,
    /// The month's first instant (ms since epoch, inclusive).
    pub from: i64,
    /// The next month's first instant (exclusive).
    pub to: i64,
    /// Whether the month is over.
    pub ended: bool,
    /// The level-4 zones reviewed.
    pub zone_ids: Vec<i64>,
    /// Each section's count now.
    pub counts: ReviewCounts,
    /// Visits (entry/exit pairs) to the zones that overlap the month, newest first.
    pub visits: Vec<Visit>,
    /// Denied attempts at the zones' doors, newest first.
    pub denied: Vec<EventRecord>,
    /// The zones' doors forced open or held open too long, newest first.
    pub doors: Vec<EventRecord>,
    /// Granted entries out of the usual hours, newest first.
    pub out_of_hours: Vec<EventRecord>,
    /// Grant and group membership changes, newest first.
    pub access_changes: Vec<AuditEntry>,
    /// The sign-off, if the month was signed off.
    pub sign_off: Option<SignOff>,
}

const ACCESS_ACTIONS: &str = "(action LIKE 'grant.%' OR action LIKE 'group.%' \
     OR action LIKE 'booking.%' OR action = 'recertification.record')";

const SIGN_OFF_COLUMNS: &str = "SELECT month, scope, signed_by, signed_at, comment, entries, denied, doors, out_of_hours, access_changes FROM reviews";

fn sign_off_row(row: &sqlx::any::AnyRow) -> StoreResult<SignOff> {
    Ok(SignOff {
        month: row.try_get("month")?,
        scope: row.try_get("scope")?,
        signed_by: row.try_get("signed_by")?,
        signed_at: row.try_get("signed_at")?,
        comment: row.try_get("comment")?,
        counts: ReviewCounts {
            entries: row.try_get("entries")?,
            denied: row.try_get("denied")?,
            doors: row.try_get("doors")?,
            out_of_hours: row.try_get("out_of_hours")?,
            access_changes: row.try_get("access_changes")?,
        },
    })
}

fn limit_rows<T>(mut rows: Vec<T>) -> Vec<T> {
    rows.truncate(usize::try_from(SECTION_ROWS).unwrap_or(0));
    rows
}

impl Store {
    /// The months to review (the current one and the 12 before it) with
    /// their sign-offs, and every sign-off.
    pub async fn review_list(&self, time_zone: &str, now: i64) -> StoreResult<ReviewList> {
        let rows = sqlx::query(&format!(
            "{SIGN_OFF_COLUMNS} WHERE scope = $1 ORDER BY month DESC"
        ))
        .bind(SCOPE)
        .fetch_all(self.pool())
        .await?;
        let sign_offs = rows
            .iter()
            .map(sign_off_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let current = Month::containing(now, time_zone)?;
        let mut months = Vec::with_capacity(MONTHS_LISTED);
        let mut month = current;
        for _ in 0..MONTHS_LISTED {
            let text = month.to_string();
            months.push(MonthState {
                ended: month != current,
                sign_off: sign_offs.iter().find(|s| s.month == text).cloned(),
                month: text,
            });
            month = month.previous();
        }
        Ok(ReviewList {
            time_zone: time_zone.to_string(),
            default_month: current.previous().to_string(),
            months,
            sign_offs,
        })
    }

    async fn sign_off_of(&self, month: Month) -> StoreResult<Option<SignOff>> {
        let row = sqlx::query(&format!(
            "{SIGN_OFF_COLUMNS} WHERE month = $1 AND scope = $2"
        ))
        .bind(month.to_string())
        .bind(SCOPE)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(sign_off_row).transpose()
    }

    /// Granted entries into level-4 zones in `[from, to)`, newest first.
    async fn level4_entries(&self, (from, to): (i64, i64)) -> StoreResult<Vec<EventRecord>> {
        let rows = sqlx::query(&format!(
            "{EVENT_COLUMNS} WHERE e.zone_id IN (SELECT id FROM zones WHERE level = 4) \
             AND e.outcome = 'granted' AND e.side = 'entry' AND e.suspect IS NULL \
             AND e.at >= $1 AND e.at < $2 \
             ORDER BY e.at DESC, e.controller_id DESC, e.epoch DESC, e.seq DESC"
        ))
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(event_row).collect()
    }

    /// The holidays of each level-4 zone's site, by zone.
    async fn holidays_by_zone(&self) -> StoreResult<HashMap<i64, HashSet<String>>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT z.id, h.date FROM zones z JOIN holidays h ON h.site_id = z.site_id WHERE z.level = 4",
        )
        .fetch_all(self.pool())
        .await?;
        let mut by_zone: HashMap<i64, HashSet<String>> = HashMap::new();
        for (zone, date) in rows {
            by_zone.entry(zone).or_default().insert(date);
        }
        Ok(by_zone)
    }

    /// Prepares `month` (read in `time_zone`) for review.
    pub async fn prepare_review(
        &self,
        month: Month,
        time_zone: &str,
        now: i64,
    ) -> StoreResult<MonthReview> {
        let (from, to) = month.period(time_zone)?;
        let zone_ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM zones WHERE level = 4 ORDER BY id")
                .fetch_all(self.pool())
                .await?;
        // The visits: the machine-room history's pairs for the month.
        let history = HistoryFilter {
            zone_level: Level::new(4),
            from: Millis::new(from),
            to: Millis::new(to),
            ..HistoryFilter::default()
        };
        let visits = self
            .visits_after(&history, (from, to), None, SECTION_ROWS)
            .await?;
        // The entries themselves: counted, and judged against the usual hours.
        let entries = self.level4_entries((from, to)).await?;
        let holidays = self.holidays_by_zone().await?;
        let none = HashSet::new();
        let mut late = Vec::new();
        for e in entries.iter() {
            let days = e.zone_id.and_then(|z| holidays.get(&z)).unwrap_or(&none);
            if out_of_hours(e.at, time_zone, days)? {
                late.push(e.clone());
            }
        }
        let denied_filter = EventFilter {
            zone_level: Level::new(4),
            outcome: Some(Outcome::Denied),
            from: Millis::new(from),
            to: Millis::new(to),
            ..EventFilter::default()
        };
        let denied = self
            .search_events(&denied_filter, SECTION_ROWS, None)
            .await?
            .items;
        let denied_count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM events WHERE zone_id IN (SELECT id FROM zones WHERE level = 4) \
             AND outcome = 'denied' AND suspect IS NULL AND at >= $1 AND at < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_one(self.pool())
        .await?;
        let door_where = "e.zone_id IN (SELECT id FROM zones WHERE level = 4) \
             AND (e.kind = 'door_forced' OR (e.kind = 'door_held_open' \
               AND e.body NOT LIKE '%\"stage\":\"pre_alarm\"%')) AND e.suspect IS NULL \
             AND e.at >= $1 AND e.at < $2";
        let doors = sqlx::query(&format!(
            "{EVENT_COLUMNS} WHERE {door_where} \
             ORDER BY e.at DESC, e.controller_id DESC, e.epoch DESC, e.seq DESC LIMIT $3"
        ))
        .bind(from)
        .bind(to)
        .bind(SECTION_ROWS)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(event_row)
        .collect::<StoreResult<Vec<_>>>()?;
        let doors_count: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM events e WHERE {door_where}"))
                .bind(from)
                .bind(to)
                .fetch_one(self.pool())
                .await?;
        let changes = sqlx::query(&format!(
            "SELECT seq, at, actor, action, target, detail, prev, link FROM admin_audit \
             WHERE {ACCESS_ACTIONS} AND at >= $1 AND at < $2 ORDER BY seq DESC LIMIT $3"
        ))
        .bind(from)
        .bind(to)
        .bind(SECTION_ROWS)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(audit_row)
        .collect::<StoreResult<Vec<_>>>()?;
        let changes_count: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM admin_audit WHERE {ACCESS_ACTIONS} AND at >= $1 AND at < $2"
        ))
        .bind(from)
        .bind(to)
        .fetch_one(self.pool())
        .await?;
        let counts = ReviewCounts {
            entries: i64::try_from(entries.len()).unwrap_or(i64::MAX),
            denied: denied_count,
            doors: doors_count,
            out_of_hours: i64::try_from(late.len()).unwrap_or(i64::MAX),
            access_changes: changes_count,
        };
        Ok(MonthReview {
            month: month.to_string(),
            scope: SCOPE.to_string(),
            time_zone: time_zone.to_string(),
            from,
            to,
            ended: now >= to,
            zone_ids,
            counts,
            visits,
            denied,
            doors: limit_rows(doors),
            out_of_hours: limit_rows(late),
            access_changes: changes,
            sign_off: self.sign_off_of(month).await?,
        })
    }

    /// Signs `month` off with `comment` (required): only once the month has
    /// ended, and only once. Records the counts as they are now, and the
    /// sign-off in the audit log.
    pub async fn sign_off_review(
        &self,
        actor: &str,
        month: Month,
        comment: &str,
        time_zone: &str,
        now: i64,
    ) -> StoreResult<SignOff> {
        let comment = comment.trim();
        if comment.is_empty() {
            return Err(StoreError::Invalid(
                "a sign-off needs a comment: what was looked at, and what was found".into(),
            ));
        }
        if comment.chars().count() > MAX_COMMENT {
            return Err(StoreError::Invalid(format!(
                "the comment is longer than {MAX_COMMENT} characters"
            )));
        }
        let review = self.prepare_review(month, time_zone, now).await?;
        if !review.ended {
            return Err(StoreError::Conflict(format!(
                "{month} has not ended yet; it can be signed off once it is over"
            )));
        }
        if review.sign_off.is_some() {
            return Err(StoreError::Conflict(format!(
                "{month} is already signed off"
            )));
        }
        let c = review.counts;
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO reviews (month, scope, signed_by, signed_at, comment, entries, denied, doors, out_of_hours, access_changes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(month.to_string())
        .bind(SCOPE)
        .bind(actor)
        .bind(now)
        .bind(comment)
        .bind(c.entries)
        .bind(c.denied)
        .bind(c.doors)
        .bind(c.out_of_hours)
        .bind(c.access_changes)
        .execute(&mut *tx)
        .await
        // Two reviewers at once: the second meets the unique key.
        .map_err(|e| StoreError::conflict_or(e, &format!("{month} is already signed off")))?;
        self.audit(
            &mut tx,
            actor,
            "review.sign_off",
            &format!("review:{month}"),
            &serde_json::json!({"scope": SCOPE, "comment": comment, "counts": c}),
        )
        .await?;
        tx.commit().await?;
        self.sign_off_of(month)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("sign-off of {month} vanished")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_strictly_and_step() {
        let m = Month::parse("2026-01").unwrap();
        assert_eq!(m.previous().to_string(), "2025-12");
        assert_eq!(m.next().to_string(), "2026-02");
        assert_eq!(
            Month::parse("2026-12").unwrap().next().to_string(),
            "2027-01"
        );
        for bad in [
            "2026-13",
            "2026-00",
            "26-01",
            "2026-1",
            "2026/01",
            "x",
            "",
            "2026-01-01",
            "+026-01",
        ] {
            assert!(
                matches!(Month::parse(bad), Err(StoreError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_month_is_read_in_the_sites_time_zone() {
        let (from, to) = Month::parse("2026-11")
            .unwrap()
            .period("Asia/Tokyo")
            .unwrap();
        // 2026-11-01T00:00+09:00 = 2026-10-31T15:00Z.
        assert_eq!(from, 1_793_458_800_000);
        assert_eq!(to - from, 30 * 86_400_000);
        assert_eq!(
            Month::containing(from, "Asia/Tokyo").unwrap().to_string(),
            "2026-11"
        );
        assert_eq!(
            Month::containing(from - 1, "Asia/Tokyo")
                .unwrap()
                .to_string(),
            "2026-10"
        );
        assert_eq!(
            Month::containing(from, "UTC").unwrap().to_string(),
            "2026-10"
        );
    }

    #[test]
    fn out_of_hours_is_night_weekend_or_holiday() {
        let tz = "Asia/Tokyo";
        let at = |d: &str, h: i8, m: i8| {
            let date: jiff::civil::Date = d.parse().unwrap();
            date.at(h, m, 0, 0)
                .to_zoned(jiff::tz::TimeZone::get(tz).unwrap())
                .unwrap()
                .timestamp()
                .as_millisecond()
        };
        let holidays: HashSet<String> = ["2026-11-23".to_string()].into();
        // Wednesday 2026-11-18.
        assert!(!out_of_hours(at("2026-11-18", 7, 0), tz, &holidays).unwrap());
        assert!(!out_of_hours(at("2026-11-18", 19, 59), tz, &holidays).unwrap());
        assert!(out_of_hours(at("2026-11-18", 6, 59), tz, &holidays).unwrap());
        assert!(out_of_hours(at("2026-11-18", 20, 0), tz, &holidays).unwrap());
        // Saturday, and a Monday holiday.
        assert!(out_of_hours(at("2026-11-21", 10, 0), tz, &holidays).unwrap());
        assert!(out_of_hours(at("2026-11-23", 10, 0), tz, &holidays).unwrap());
    }
}
