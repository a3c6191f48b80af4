//! Flapper-gate state machine over mock pins: one passage per grant, close on
//! passage or timeout, tailgating and forced passage, fire release.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use embedded_hal_mock::eh1::digital::{Mock as Pin, State, Transaction as Tx};
use tobira_firmware::*;

fn at(ms: i64) -> Timestamp {
    Timestamp(5_000_000 + ms)
}

fn level(high: bool) -> State {
    if high {
        State::High
    } else {
        State::Low
    }
}

struct Rig {
    open_in: Pin,
    open_out: Pin,
    sensor: Pin,
    gate: GateMachine<Pin, Pin, Pin>,
    blocked: bool,
}

impl Rig {
    fn new() -> Self {
        let mut open_in = Pin::new(&[Tx::set(State::Low)]);
        let mut open_out = Pin::new(&[Tx::set(State::Low)]);
        let mut sensor = Pin::new(&[Tx::get(State::Low)]);
        let gate = GateMachine::new(
            open_in.clone(),
            open_out.clone(),
            sensor.clone(),
            GateTimings::default(),
        )
        .unwrap();
        open_in.done();
        open_out.done();
        sensor.done();
        Self {
            open_in,
            open_out,
            sensor,
            gate,
            blocked: false,
        }
    }

    /// Expects the flaps to be driven to (inward, outward) during the next action, or not at all.
    fn expect_drive(&mut self, drive: Option<(bool, bool)>) {
        match drive {
            Some((i, o)) => {
                self.open_in.update_expectations(&[Tx::set(level(i))]);
                self.open_out.update_expectations(&[Tx::set(level(o))]);
            }
            None => {
                self.open_in.update_expectations(&[]);
                self.open_out.update_expectations(&[]);
            }
        }
    }

    fn done(&mut self) {
        self.open_in.done();
        self.open_out.done();
        self.sensor.done();
    }

    fn poll(&mut self, ms: i64, drive: Option<(bool, bool)>) -> Vec<GateSignal> {
        self.sensor
            .update_expectations(&[Tx::get(level(self.blocked))]);
        self.expect_drive(drive);
        let s = self.gate.poll(at(ms)).unwrap();
        self.done();
        s
    }

    fn grant(
        &mut self,
        side: Side,
        ms: i64,
        drive: Option<(bool, bool)>,
    ) -> (bool, Vec<GateSignal>) {
        self.sensor.update_expectations(&[]);
        self.expect_drive(drive);
        let r = self.gate.grant(side, at(ms)).unwrap();
        self.done();
        r
    }
}

use GateSignal::*;

#[test]
fn one_grant_one_passage_then_the_flaps_close() {
    let mut r = Rig::new();
    assert_eq!(
        r.grant(Side::Entry, 0, Some((true, false))),
        (true, vec![Opened(Side::Entry)])
    );
    assert!(r.gate.is_open());
    r.blocked = true;
    assert_eq!(r.poll(1_200, None), vec![]);
    r.blocked = false;
    assert_eq!(
        r.poll(2_000, Some((false, false))),
        vec![Passage(Side::Entry), Closed]
    );
    assert!(!r.gate.is_open());
}

#[test]
fn exit_grants_open_the_other_way() {
    let mut r = Rig::new();
    assert_eq!(
        r.grant(Side::Exit, 0, Some((false, true))),
        (true, vec![Opened(Side::Exit)])
    );
    r.blocked = true;
    r.poll(100, None);
    r.blocked = false;
    assert_eq!(
        r.poll(900, Some((false, false))),
        vec![Passage(Side::Exit), Closed]
    );
}

#[test]
fn a_second_person_on_the_same_grant_is_tailgating() {
    let mut r = Rig::new();
    r.grant(Side::Entry, 0, Some((true, false)));
    r.blocked = true;
    r.poll(1_000, None);
    r.blocked = false;
    r.poll(1_500, Some((false, false)));
    r.blocked = true;
    assert_eq!(r.poll(2_999, None), vec![Tailgating]);
    r.blocked = false;
    assert_eq!(r.poll(3_000, None), vec![]);
    // Closing is over: from now on a passage is forced.
    r.blocked = true;
    assert_eq!(r.poll(3_100, None), vec![ForcedPassage]);
}

#[test]
fn nobody_comes_and_the_gate_closes_at_the_timeout() {
    let mut r = Rig::new();
    r.grant(Side::Entry, 0, Some((true, false)));
    assert_eq!(r.poll(7_999, None), vec![]);
    assert_eq!(r.poll(8_000, Some((false, false))), vec![Unused, Closed]);
}

#[test]
fn the_flaps_never_close_on_someone_in_the_lane() {
    let mut r = Rig::new();
    r.grant(Side::Entry, 0, Some((true, false)));
    r.blocked = true;
    r.poll(7_500, None);
    assert_eq!(r.poll(9_000, None), vec![]);
    assert!(r.gate.is_open());
    r.blocked = false;
    assert_eq!(
        r.poll(9_500, Some((false, false))),
        vec![Passage(Side::Entry), Closed]
    );
}

#[test]
fn a_passage_through_the_closed_gate_is_forced() {
    let mut r = Rig::new();
    r.blocked = true;
    assert_eq!(r.poll(10, None), vec![ForcedPassage]);
    assert_eq!(r.poll(20, None), vec![]);
}

#[test]
fn two_grants_in_the_same_direction_allow_two_passages() {
    let mut r = Rig::new();
    r.grant(Side::Entry, 0, Some((true, false)));
    assert_eq!(r.grant(Side::Entry, 300, None), (true, vec![]));
    for (t, close) in [(1_000, None), (3_000, Some((false, false)))] {
        r.blocked = true;
        r.poll(t - 500, None);
        r.blocked = false;
        let signals = r.poll(t, close);
        assert!(!signals.contains(&Tailgating), "{signals:?}");
        assert_eq!(signals[0], Passage(Side::Entry));
    }
}

#[test]
fn a_grant_the_other_way_while_open_is_refused() {
    let mut r = Rig::new();
    assert!(!r.gate.busy_against(Side::Exit));
    r.grant(Side::Entry, 0, Some((true, false)));
    assert!(r.gate.busy_against(Side::Exit));
    assert!(!r.gate.busy_against(Side::Entry));
    assert_eq!(r.grant(Side::Exit, 100, None), (false, vec![]));
}

#[test]
fn fire_release_opens_both_ways_and_silences_alarms() {
    let mut r = Rig::new();
    r.sensor.update_expectations(&[]);
    r.expect_drive(Some((true, true)));
    assert_eq!(r.gate.set_released(true).unwrap(), vec![]);
    r.done();
    r.blocked = true;
    assert_eq!(r.poll(100, None), vec![]);
    r.blocked = false;
    assert_eq!(r.poll(200, None), vec![]);
    assert_eq!(r.grant(Side::Entry, 300, None), (true, vec![]));
    r.sensor.update_expectations(&[]);
    r.expect_drive(Some((false, false)));
    assert_eq!(r.gate.set_released(false).unwrap(), vec![Closed]);
    r.done();
}
