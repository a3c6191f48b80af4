//! Door state machine over mock `embedded-hal` pins: every transition, every
//! alarm, timing to the millisecond. Each step states the exact pin traffic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use embedded_hal_mock::eh1::digital::{Mock as Pin, State, Transaction as Tx};
use embedded_hal_mock::eh1::MockError;
use tobira_firmware::door_machine::DoorError;
use tobira_firmware::*;

const T0: i64 = 1_000_000;

fn at(ms: i64) -> Timestamp {
    Timestamp(T0 + ms)
}

fn level(high: bool) -> State {
    if high {
        State::High
    } else {
        State::Low
    }
}

struct Rig {
    relay: Pin,
    contact: Pin,
    rex: Pin,
    door: DoorMachine<Pin, Pin, Pin>,
    open: bool,
    rex_pressed: bool,
}

impl Rig {
    /// A door; `locked_level` is the relay level written at start.
    fn new(lock: LockKind, door_open_at_start: bool) -> Self {
        let secure = lock == LockKind::FailSafe;
        let mut relay = Pin::new(&[Tx::set(level(secure))]);
        let mut contact = Pin::new(&[Tx::get(level(door_open_at_start))]);
        let mut rex = Pin::new(&[Tx::get(State::Low)]);
        let door = DoorMachine::new(
            relay.clone(),
            contact.clone(),
            Some(rex.clone()),
            lock,
            DoorTimings::default(),
            at(0),
        )
        .unwrap();
        relay.done();
        contact.done();
        rex.done();
        Self {
            relay,
            contact,
            rex,
            door,
            open: door_open_at_start,
            rex_pressed: false,
        }
    }

    fn expect_relay(&mut self, writes: &[bool]) {
        let txs: Vec<Tx> = writes.iter().map(|&h| Tx::set(level(h))).collect();
        self.relay.update_expectations(&txs);
    }

    /// One poll at `ms` with the door contact and REX as given; `writes` are the
    /// relay levels the door must write during this poll.
    fn poll(&mut self, ms: i64, writes: &[bool]) -> Vec<DoorSignal> {
        self.contact
            .update_expectations(&[Tx::get(level(self.open))]);
        self.rex
            .update_expectations(&[Tx::get(level(self.rex_pressed))]);
        self.expect_relay(writes);
        let signals = self.door.poll(at(ms)).unwrap();
        self.contact.done();
        self.rex.done();
        self.relay.done();
        signals
    }

    fn grant(&mut self, ms: i64, writes: &[bool]) -> Vec<DoorSignal> {
        self.expect_relay(writes);
        let s = self.door.grant(at(ms)).unwrap();
        self.relay.done();
        s
    }

    fn released(&mut self, on: bool, ms: i64, writes: &[bool]) -> Vec<DoorSignal> {
        self.expect_relay(writes);
        let s = self.door.set_released(on, at(ms)).unwrap();
        self.relay.done();
        s
    }
}

use DoorSignal::*;

#[test]
fn a_strike_unlocks_for_the_unlock_time_and_relocks_to_the_millisecond() {
    let mut r = Rig::new(LockKind::FailSecure, false);
    assert!(!r.door.is_unlocked());
    assert_eq!(r.grant(0, &[true]), vec![Unlocked]);
    assert!(r.door.is_unlocked());
    assert_eq!(r.poll(4_999, &[]), vec![]);
    assert_eq!(r.poll(5_000, &[false]), vec![Relocked]);
    assert!(!r.door.is_unlocked());
    assert_eq!(r.poll(6_000, &[]), vec![]);
}

#[test]
fn the_lock_relocks_as_soon_as_the_door_closes() {
    let mut r = Rig::new(LockKind::FailSecure, false);
    r.grant(0, &[true]);
    r.open = true;
    assert_eq!(r.poll(1_000, &[]), vec![Opened]);
    r.open = false;
    assert_eq!(r.poll(2_500, &[false]), vec![Closed, Relocked]);
    // The unlock time that was left does not reopen anything.
    assert_eq!(r.poll(5_000, &[]), vec![]);
}

#[test]
fn held_open_gives_pre_alarm_then_alarm_at_their_exact_times() {
    let mut r = Rig::new(LockKind::FailSecure, false);
    r.grant(0, &[true]);
    r.open = true;
    assert_eq!(r.poll(1_000, &[]), vec![Opened]);
    // The strike relocks when the unlock time ends even though the door is open.
    assert_eq!(r.poll(5_000, &[false]), vec![Relocked]);
    assert_eq!(r.poll(20_999, &[]), vec![]);
    assert_eq!(r.poll(21_000, &[]), vec![Held(HeldStage::PreAlarm)]);
    assert_eq!(r.door.alarm(), Some(Held(HeldStage::PreAlarm)));
    assert_eq!(r.poll(30_999, &[]), vec![]);
    assert_eq!(r.poll(31_000, &[]), vec![Held(HeldStage::Alarm)]);
    assert_eq!(r.poll(40_000, &[]), vec![]);
    r.open = false;
    assert_eq!(r.poll(41_000, &[]), vec![Closed]);
    assert_eq!(r.door.alarm(), None);
}

#[test]
fn a_long_gap_between_polls_still_reports_the_pre_alarm_first() {
    let mut r = Rig::new(LockKind::FailSecure, false);
    r.grant(0, &[true]);
    r.open = true;
    r.poll(0, &[]);
    assert_eq!(
        r.poll(60_000, &[false]),
        vec![Relocked, Held(HeldStage::PreAlarm), Held(HeldStage::Alarm)]
    );
}

#[test]
fn opening_without_a_grant_is_forced() {
    let mut r = Rig::new(LockKind::FailSecure, false);
    r.open = true;
    assert_eq!(r.poll(100, &[]), vec![Opened, Forced]);
    assert_eq!(r.door.alarm(), Some(Forced));
    // Forced is one alarm; it does not also count as held open.
    assert_eq!(r.poll(60_000, &[]), vec![]);
    r.open = false;
    assert_eq!(r.poll(61_000, &[]), vec![Closed]);
    assert_eq!(r.door.alarm(), None);
    r.open = true;
    assert_eq!(r.poll(62_000, &[]), vec![Opened, Forced]);
}

#[test]
fn the_unlock_time_running_out_before_opening_makes_a_late_opening_forced() {
    let mut r = Rig::new(LockKind::FailSecure, false);
    r.grant(0, &[true]);
    r.poll(5_000, &[false]);
    r.open = true;
    assert_eq!(r.poll(5_001, &[]), vec![Opened, Forced]);
}

#[test]
fn request_to_exit_is_reported_once_per_press() {
    let mut r = Rig::new(LockKind::FailSecure, false);
    r.rex_pressed = true;
    assert_eq!(r.poll(10, &[]), vec![RexPressed]);
    assert_eq!(r.poll(20, &[]), vec![]);
    r.rex_pressed = false;
    assert_eq!(r.poll(30, &[]), vec![]);
    r.rex_pressed = true;
    assert_eq!(r.poll(40, &[]), vec![RexPressed]);
    // The controller grants it; opening then is authorised.
    r.grant(41, &[true]);
    r.open = true;
    assert_eq!(r.poll(50, &[]), vec![Opened]);
}

#[test]
fn a_maglock_is_energised_to_lock_and_dropped_to_open() {
    let mut r = Rig::new(LockKind::FailSafe, false);
    assert_eq!(r.grant(0, &[false]), vec![Unlocked]);
    assert_eq!(r.poll(5_000, &[true]), vec![Relocked]);
    r.relay.update_expectations(&[Tx::set(State::Low)]);
    r.door.safe_state().unwrap();
    r.relay.done();
}

#[test]
fn shutdown_leaves_a_strike_locked() {
    let mut r = Rig::new(LockKind::FailSecure, false);
    r.grant(0, &[true]);
    r.relay.update_expectations(&[Tx::set(State::Low)]);
    r.door.safe_state().unwrap();
    r.relay.done();
}

#[test]
fn fire_release_holds_the_lock_open_without_alarms_until_it_ends() {
    let mut r = Rig::new(LockKind::FailSafe, false);
    assert_eq!(r.released(true, 0, &[false]), vec![Unlocked]);
    assert_eq!(r.released(true, 1, &[]), vec![]);
    assert!(r.door.is_unlocked());
    r.open = true;
    assert_eq!(r.poll(1_000, &[]), vec![Opened]);
    assert_eq!(r.poll(120_000, &[]), vec![]);
    // Grants change nothing while released.
    assert_eq!(r.grant(120_001, &[]), vec![]);
    // Alarm over, door still open: it relocks and the held-open timer starts now.
    assert_eq!(r.released(false, 130_000, &[true]), vec![Relocked]);
    assert_eq!(r.poll(149_999, &[]), vec![]);
    assert_eq!(r.poll(150_000, &[]), vec![Held(HeldStage::PreAlarm)]);
}

#[test]
fn a_door_found_open_at_start_is_held_open_not_forced() {
    let mut r = Rig::new(LockKind::FailSecure, true);
    assert_eq!(r.poll(19_999, &[]), vec![]);
    assert_eq!(r.poll(20_000, &[]), vec![Held(HeldStage::PreAlarm)]);
}

#[test]
fn a_grant_while_open_restarts_the_held_open_timer() {
    let mut r = Rig::new(LockKind::FailSecure, false);
    r.grant(0, &[true]);
    r.open = true;
    r.poll(0, &[]);
    r.poll(19_000, &[false]);
    assert_eq!(r.grant(19_500, &[true]), vec![Unlocked]);
    assert_eq!(r.poll(20_000, &[]), vec![]);
    assert_eq!(r.poll(24_500, &[false]), vec![Relocked]);
    assert_eq!(r.poll(39_500, &[]), vec![Held(HeldStage::PreAlarm)]);
}

#[test]
fn a_failing_input_is_an_error_not_a_guess() {
    let mut r = Rig::new(LockKind::FailSecure, false);
    r.contact.update_expectations(&[
        Tx::get(State::Low).with_error(MockError::Io(std::io::ErrorKind::BrokenPipe))
    ]);
    r.rex.update_expectations(&[]);
    r.relay.update_expectations(&[]);
    let err = r.door.poll(at(1)).unwrap_err();
    assert!(matches!(err, DoorError::Contact(_)));
    r.contact.done();
    r.rex.done();
    r.relay.done();
}

#[test]
fn a_failing_relay_is_reported_on_grant() {
    let mut r = Rig::new(LockKind::FailSecure, false);
    r.relay.update_expectations(&[
        Tx::set(State::High).with_error(MockError::Io(std::io::ErrorKind::Other))
    ]);
    assert!(matches!(r.door.grant(at(0)), Err(DoorError::Relay(_))));
    r.relay.done();
}
