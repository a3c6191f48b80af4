//! The only place the controller reads the wall clock: UTC now and the site's local time for schedules.

use std::time::{SystemTime, UNIX_EPOCH};

use jiff::tz::TimeZone;
use tobira_firmware::{LocalDate, LocalTime, Moment, Timestamp};

/// The site's time zone, by IANA name (the tz database is compiled in, so a
/// board without `/usr/share/zoneinfo` still knows Asia/Tokyo).
#[derive(Debug, Clone)]
pub struct SiteClock {
    zone: TimeZone,
}

/// The time zone name is not in the tz database.
#[derive(Debug, thiserror::Error)]
#[error("unknown time zone {name:?}: {detail}")]
pub struct UnknownZone {
    name: String,
    detail: String,
}

impl SiteClock {
    /// The clock of the site in time zone `name`.
    pub fn new(name: &str) -> Result<Self, UnknownZone> {
        TimeZone::get(name)
            .map(|zone| Self { zone })
            .map_err(|e| UnknownZone {
                name: name.to_owned(),
                detail: e.to_string(),
            })
    }

    /// "Now" as the brain wants it.
    pub fn now(&self) -> Moment {
        self.moment(now_utc())
    }

    /// The UTC instant with its wall-clock time on site.
    pub fn moment(&self, utc: Timestamp) -> Moment {
        Moment {
            utc,
            local: self.local(utc),
        }
    }

    fn local(&self, utc: Timestamp) -> LocalTime {
        let civil = jiff::Timestamp::from_millisecond(utc.0)
            .map(|t| t.to_zoned(self.zone.clone()).datetime())
            .ok();
        civil
            .and_then(|dt| {
                let date = LocalDate::new(
                    dt.year(),
                    dt.month().unsigned_abs(),
                    dt.day().unsigned_abs(),
                )
                .ok()?;
                let minute =
                    u16::try_from(i32::from(dt.hour()) * 60 + i32::from(dt.minute())).ok()?;
                LocalTime::new(date, minute).ok()
            })
            // Only reachable for instants outside ±9999 years; midnight 1970 keeps schedules closed-ish and decisions going.
            .unwrap_or_else(epoch_local)
    }
}

fn epoch_local() -> LocalTime {
    LocalTime {
        date: LocalDate {
            year: 1970,
            month: 1,
            day: 1,
        },
        minute_of_day: 0,
    }
}

/// Milliseconds since the Unix epoch, UTC (0 if the clock is before 1970).
pub fn now_utc() -> Timestamp {
    Timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokyo_is_nine_hours_ahead_and_has_no_summer_time() {
        let clock = SiteClock::new("Asia/Tokyo").unwrap();
        // 2026-11-23 01:30 UTC = 10:30 Monday in Tokyo.
        let m = clock.moment(Timestamp(1_795_397_400_000));
        assert_eq!(m.local.date, LocalDate::new(2026, 11, 23).unwrap());
        assert_eq!(m.local.minute_of_day, 10 * 60 + 30);
        // 2026-07-01 15:00 UTC = 00:00 on 2 July.
        let m = clock.moment(Timestamp(1_782_918_000_000));
        assert_eq!(m.local.date, LocalDate::new(2026, 7, 2).unwrap());
        assert_eq!(m.local.minute_of_day, 0);
        assert!(SiteClock::new("Mars/Olympus").is_err());
    }
}
