//! Weekly schedules and the holiday calendar.

use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::id::ScheduleId;
use crate::time::{LocalDate, LocalTime, Weekday};

/// A set of day types: the seven weekdays plus "holiday", which replaces the
/// weekday on dates in the holiday calendar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DaySet(pub u8);

impl DaySet {
    /// Monday to Friday.
    pub const WEEKDAYS: DaySet = DaySet(0b0001_1111);
    /// Every day, holidays included.
    pub const EVERY_DAY: DaySet = DaySet(0xFF);
    /// The holiday day type's bit.
    pub const HOLIDAY: DaySet = DaySet(0b1000_0000);

    /// The set holding one weekday.
    pub fn weekday(day: Weekday) -> DaySet {
        DaySet(1 << (day as u8))
    }

    /// Both sets' days.
    pub fn union(self, other: DaySet) -> DaySet {
        DaySet(self.0 | other.0)
    }

    /// Whether every day of `other` is in this set.
    pub fn contains(self, other: DaySet) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }
}

/// One window of a weekly schedule: on these day types, from `start` up to
/// (not including) `end`, in minutes since local midnight.
///
/// Windows stay within one day; a night shift is two windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeWindow {
    /// Day types the window applies to.
    pub days: DaySet,
    /// First minute inside the window.
    pub start: u16,
    /// First minute after the window (1440 = midnight).
    pub end: u16,
}

/// A named weekly schedule: opening hours, working hours, a contractor's shift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeeklySchedule {
    /// The schedule's id.
    pub id: ScheduleId,
    /// Its windows; the schedule is active when any window is.
    pub windows: Vec<TimeWindow>,
}

/// A schedule that cannot be right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// A window must start before it ends, and end by midnight.
    #[error("schedule {schedule}: window {start}–{end} must satisfy start < end ≤ 1440")]
    Window {
        /// The schedule.
        schedule: ScheduleId,
        /// The window's start.
        start: u16,
        /// The window's end.
        end: u16,
    },
}

impl WeeklySchedule {
    /// Checks every window.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        for w in &self.windows {
            if w.start >= w.end || w.end > 24 * 60 {
                return Err(ScheduleError::Window {
                    schedule: self.id,
                    start: w.start,
                    end: w.end,
                });
            }
        }
        Ok(())
    }

    /// Whether the schedule is active at this local time.
    pub fn is_active(&self, at: &LocalTime, holidays: &HolidayCalendar) -> bool {
        let day = holidays.day_type(at.date);
        self.windows.iter().any(|w| {
            w.days.contains(day) && w.start <= at.minute_of_day && at.minute_of_day < w.end
        })
    }
}

/// The site's holidays (public holidays, New Year closure), sorted for binary search.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<LocalDate>", into = "Vec<LocalDate>")]
pub struct HolidayCalendar(Vec<LocalDate>);

impl HolidayCalendar {
    /// Whether the date is a holiday.
    pub fn is_holiday(&self, date: LocalDate) -> bool {
        self.0.binary_search(&date).is_ok()
    }

    /// The day type that schedules see for this date.
    pub fn day_type(&self, date: LocalDate) -> DaySet {
        if self.is_holiday(date) {
            DaySet::HOLIDAY
        } else {
            DaySet::weekday(date.weekday())
        }
    }
}

impl From<Vec<LocalDate>> for HolidayCalendar {
    fn from(mut dates: Vec<LocalDate>) -> Self {
        dates.sort_unstable();
        dates.dedup();
        Self(dates)
    }
}

impl From<HolidayCalendar> for Vec<LocalDate> {
    fn from(calendar: HolidayCalendar) -> Self {
        calendar.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn at(y: i16, m: u8, d: u8, hh: u16, mm: u16) -> LocalTime {
        LocalTime::new(LocalDate::new(y, m, d).unwrap(), hh * 60 + mm).unwrap()
    }

    #[test]
    fn office_hours_respect_weekdays_holidays_and_window_edges() {
        let hours = WeeklySchedule {
            id: ScheduleId(1),
            windows: vec![TimeWindow {
                days: DaySet::WEEKDAYS,
                start: 8 * 60 + 30,
                end: 17 * 60 + 15,
            }],
        };
        hours.validate().unwrap();
        // 2026-11-23 is a Monday and Labour Thanksgiving Day (observed).
        let none = HolidayCalendar::default();
        let holidays = HolidayCalendar::from(vec![LocalDate::new(2026, 11, 23).unwrap()]);
        assert!(hours.is_active(&at(2026, 11, 23, 8, 30), &none));
        assert!(!hours.is_active(&at(2026, 11, 23, 8, 29), &none));
        assert!(!hours.is_active(&at(2026, 11, 23, 17, 15), &none));
        assert!(!hours.is_active(&at(2026, 11, 23, 12, 0), &holidays));
        assert!(!hours.is_active(&at(2026, 11, 22, 12, 0), &none)); // Sunday
        let holiday_duty = WeeklySchedule {
            id: ScheduleId(2),
            windows: vec![TimeWindow {
                days: DaySet::HOLIDAY,
                start: 0,
                end: 1440,
            }],
        };
        assert!(holiday_duty.is_active(&at(2026, 11, 23, 12, 0), &holidays));
        assert!(!holiday_duty.is_active(&at(2026, 11, 24, 12, 0), &holidays));
    }

    #[test]
    fn backwards_or_overlong_windows_are_refused() {
        for (start, end) in [(600, 600), (700, 600), (0, 1441)] {
            let s = WeeklySchedule {
                id: ScheduleId(9),
                windows: vec![TimeWindow {
                    days: DaySet::EVERY_DAY,
                    start,
                    end,
                }],
            };
            assert!(s.validate().is_err());
        }
    }
}
