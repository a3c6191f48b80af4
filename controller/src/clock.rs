//! The only place the controller reads the wall clock: UTC now and the site's local time for schedules.

use std::time::{SystemTime, UNIX_EPOCH};

use jiff::tz::TimeZone;
use tobira_firmware::{LocalDate, LocalTime, Moment, Timestamp};

/// The site's time zone, by IANA name (the tz database is compiled in, so a
/// board without `/usr/share/zoneinfo` still knows Asia/Tokyo).
///
/// The central service names the site's zone in every snapshot and that is
/// the zone in force; the config's `time_zone` only stands in while no
/// snapshot names one (a hand-written policy file), and must agree with it.
#[derive(Debug, Clone)]
pub struct SiteClock {
    zone: TimeZone,
    name: String,
    /// The config's `time_zone`, if it has one.
    configured: Option<String>,
}

/// The zone used while neither the policy nor the config names one.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Tokyo";

/// The config's `time_zone` is not the site's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the config's time_zone {configured:?} disagrees with the site's time zone {site:?} \
     from the central service; correct time_zone in the config or leave it out"
)]
pub struct ZoneConflict {
    /// The config's zone.
    pub configured: String,
    /// The site's zone, from the policy.
    pub site: String,
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
            .map(|zone| Self {
                zone,
                name: name.to_owned(),
                configured: None,
            })
            .map_err(|e| UnknownZone {
                name: name.to_owned(),
                detail: e.to_string(),
            })
    }

    /// The clock for a config's `time_zone` (or the default without one),
    /// until a policy names the site's zone.
    pub fn configured(time_zone: Option<&str>) -> Result<Self, UnknownZone> {
        let mut clock = Self::new(time_zone.unwrap_or(DEFAULT_TIME_ZONE))?;
        clock.configured = time_zone.map(str::to_owned);
        Ok(clock)
    }

    /// The zone in force, by name.
    pub fn zone_name(&self) -> &str {
        &self.name
    }

    /// Whether the config names a zone other than the site's.
    pub fn conflict(&self, site: Option<&str>) -> Option<ZoneConflict> {
        match (&self.configured, site) {
            (Some(configured), Some(site)) if configured != site => Some(ZoneConflict {
                configured: configured.clone(),
                site: site.to_owned(),
            }),
            _ => None,
        }
    }

    /// Switches to the site's zone named by a policy. Returns whether the
    /// zone changed; an unknown name keeps the zone in force.
    pub fn follow(&mut self, site: Option<&str>) -> Result<bool, UnknownZone> {
        let Some(site) = site.filter(|s| *s != self.name) else {
            return Ok(false);
        };
        let next = Self::new(site)?;
        self.zone = next.zone;
        self.name = next.name;
        Ok(true)
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

    #[test]
    fn the_sites_zone_from_the_policy_is_the_one_in_force() {
        // 2026-11-23 01:30 UTC: 10:30 in Tokyo, 02:30 in Paris.
        let at = Timestamp(1_795_397_400_000);
        let mut clock = SiteClock::configured(None).unwrap();
        assert_eq!(clock.zone_name(), DEFAULT_TIME_ZONE);
        assert_eq!(clock.conflict(Some("Europe/Paris")), None);
        assert!(clock.follow(Some("Europe/Paris")).unwrap());
        assert_eq!(clock.moment(at).local.minute_of_day, 2 * 60 + 30);
        assert!(!clock.follow(Some("Europe/Paris")).unwrap());
        assert!(
            !clock.follow(None).unwrap(),
            "a policy file without a zone changes nothing"
        );
        assert!(clock.follow(Some("Asia/Tokio")).is_err());
        assert_eq!(clock.zone_name(), "Europe/Paris");
    }

    #[test]
    fn a_configured_zone_that_is_not_the_sites_is_a_conflict() {
        let clock = SiteClock::configured(Some("Asia/Tokyo")).unwrap();
        assert_eq!(clock.conflict(Some("Asia/Tokyo")), None);
        assert_eq!(clock.conflict(None), None);
        let conflict = clock.conflict(Some("Europe/Paris")).unwrap();
        assert!(conflict.to_string().contains("Europe/Paris"), "{conflict}");
        assert!(SiteClock::configured(Some("Asia/Tokio")).is_err());
    }
}
