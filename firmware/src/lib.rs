//! The door brain: Tobira's vocabulary and its pure, time-parameterised rules.
//!
//! It never reads a clock, a file or a socket. A controller (or a
//! microcontroller gate board) passes in the policy [`Snapshot`], the brain's
//! [`Memory`], the [`Request`] and "now" as a [`Moment`], and gets a
//! [`Decision`] with a [`Reason`]. Door and gate state machines run over
//! `embedded-hal` 1.0 pins, and [`Chain`] numbers and hash-chains events.
#![no_std]
#![deny(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod card;
pub mod decide;
pub mod decision;
pub mod delta;
pub mod door;
pub mod door_machine;
pub mod event;
pub mod gate_machine;
pub mod grant;
pub mod id;
pub mod level;
pub mod memory;
pub mod person;
pub mod schedule;
pub mod snapshot;
pub mod time;
pub mod zone;

pub use card::{Card, CardState};
pub use decide::{decide, free_access};
pub use decision::{
    Awaiting, BiometricResult, Companion, Decision, Passage, Pending, Reason, Request, Subject,
    Verdict, Warnings,
};
pub use delta::{DeltaError, SnapshotDelta};
pub use door::{Door, DoorKind, ReaderSide, Side};
pub use door_machine::{DoorMachine, DoorSignal, DoorTimings, LockKind};
pub use event::{
    chain_link, verify_chain, AccessRecord, BadEpoch, Chain, ChainBreak, ChainEpoch, ChainLink,
    DeviceKind, DeviceRef, Event, EventKind, HeldStage, SealedEvent,
};
pub use gate_machine::{GateMachine, GateSignal, GateTimings};
pub use grant::{Booking, Grant};
pub use id::{
    CardUid, ControllerId, DoorId, GrantId, ModuleId, PersonId, ScheduleId, TemplateSlot, ZoneId,
};
pub use level::{SecurityLevel, ThreatLevel};
pub use memory::{Memory, Waiting, Waits};
pub use person::{Enrollment, KindRule, KindRules, Person, PersonKind};
pub use schedule::{DaySet, HolidayCalendar, TimeWindow, WeeklySchedule};
pub use snapshot::{Snapshot, SnapshotData, SnapshotError};
pub use time::{LocalDate, LocalTime, Moment, Timestamp, Weekday};
pub use zone::{AntiPassback, Zone, ZoneSettings};
