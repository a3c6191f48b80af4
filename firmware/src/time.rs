//! Time as the brain sees it: a UTC instant plus the site's wall-clock time, always passed in.

use core::fmt;

use serde::{Deserialize, Serialize};

/// A UTC instant in milliseconds since the Unix epoch.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// This instant plus `ms` milliseconds (saturating: a far-future deadline is still a deadline).
    pub fn plus_ms(self, ms: u64) -> Self {
        Self(self.0.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX)))
    }

    /// Milliseconds from `earlier` to `self`; zero if `earlier` is later.
    pub fn ms_since(self, earlier: Timestamp) -> u64 {
        u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0)
    }
}

/// Days of the week, Monday first as in ISO 8601.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    /// All days, Monday first.
    pub const ALL: [Weekday; 7] = [
        Self::Mon,
        Self::Tue,
        Self::Wed,
        Self::Thu,
        Self::Fri,
        Self::Sat,
        Self::Sun,
    ];
}

/// A calendar date in the site's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LocalDate {
    /// Year, e.g. 2026.
    pub year: i16,
    /// Month 1–12.
    pub month: u8,
    /// Day of month 1–31.
    pub day: u8,
}

/// Why a date or time of day is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// The date does not exist (e.g. 2026-02-30).
    #[error("{0} is not a date")]
    Date(LocalDate),
    /// Minutes since midnight run from 0 to 1439.
    #[error("minute of day {0} is not between 0 and 1439")]
    MinuteOfDay(u16),
}

impl LocalDate {
    /// A checked date.
    pub fn new(year: i16, month: u8, day: u8) -> Result<Self, TimeError> {
        let date = Self { year, month, day };
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(TimeError::Date(date));
        }
        Ok(date)
    }

    /// Days since 1970-01-01 (proleptic Gregorian), by Howard Hinnant's civil algorithm.
    pub fn days_since_epoch(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The day of the week, computed rather than trusted from the caller.
    pub fn weekday(self) -> Weekday {
        // 1970-01-01 was a Thursday (index 3 from Monday).
        let index = (self.days_since_epoch() + 3).rem_euclid(7);
        Weekday::ALL[index as usize]
    }
}

fn days_in_month(year: i16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

impl fmt::Display for LocalDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// The site's wall-clock time: date and minute of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LocalTime {
    /// The local date.
    pub date: LocalDate,
    /// Minutes since local midnight, 0–1439.
    pub minute_of_day: u16,
}

impl LocalTime {
    /// A checked wall-clock time.
    pub fn new(date: LocalDate, minute_of_day: u16) -> Result<Self, TimeError> {
        if minute_of_day >= 24 * 60 {
            return Err(TimeError::MinuteOfDay(minute_of_day));
        }
        Ok(Self {
            date,
            minute_of_day,
        })
    }
}

/// "Now", as the controller's outermost layer read it: the UTC instant (for
/// windows, deadlines, ages) and the site's local time (for schedules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moment {
    /// The UTC instant.
    pub utc: Timestamp,
    /// The same instant on the site's wall clock.
    pub local: LocalTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekdays_come_from_the_calendar() {
        assert_eq!(LocalDate::new(1970, 1, 1).unwrap().weekday(), Weekday::Thu);
        assert_eq!(
            LocalDate::new(2026, 11, 23).unwrap().weekday(),
            Weekday::Mon
        );
        assert_eq!(LocalDate::new(2000, 2, 29).unwrap().weekday(), Weekday::Tue);
        assert_eq!(
            LocalDate::new(1969, 12, 31).unwrap().weekday(),
            Weekday::Wed
        );
        assert_eq!(
            LocalDate::new(2026, 1, 1).unwrap().days_since_epoch(),
            20_454
        );
    }

    #[test]
    fn impossible_dates_and_minutes_are_refused() {
        assert!(LocalDate::new(2026, 2, 29).is_err());
        assert!(LocalDate::new(2024, 2, 29).is_ok());
        assert!(LocalDate::new(1900, 2, 29).is_err());
        assert!(LocalDate::new(2026, 13, 1).is_err());
        assert!(LocalDate::new(2026, 4, 31).is_err());
        let d = LocalDate::new(2026, 4, 1).unwrap();
        assert!(LocalTime::new(d, 1440).is_err());
        assert!(LocalTime::new(d, 1439).is_ok());
    }

    #[test]
    fn timestamps_saturate() {
        assert_eq!(Timestamp(i64::MAX - 1).plus_ms(10), Timestamp(i64::MAX));
        assert_eq!(Timestamp(5).ms_since(Timestamp(10)), 0);
        assert_eq!(Timestamp(10).ms_since(Timestamp(4)), 6);
    }
}
