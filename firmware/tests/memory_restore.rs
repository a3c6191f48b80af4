//! What the controller keeps on disk is enough to rebuild the brain's memory:
//! occupancy from passages, and the waits and escort offers as serialised data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use tobira_firmware::*;

/// A memory rebuilt the way the controller does after a restart: occupancy
/// from the passages its decisions made, waits from their serialised form.
fn rebuilt(w: &World) -> Memory {
    let mut mem = Memory::new();
    mem.confirm_policy(w.now.utc);
    for d in &w.log {
        for p in d.passages() {
            mem.set_inside(p.from, p.person, false);
            mem.set_inside(p.to, p.person, true);
        }
    }
    let text = serde_json::to_string(&w.mem.waits()).unwrap();
    mem.restore_waits(serde_json::from_str(&text).unwrap());
    mem
}

#[test]
fn hard_anti_passback_holds_with_a_rebuilt_memory() {
    let mut w = World::at(workday());
    assert_eq!(
        w.card_and_finger(MACHINE_DOOR, Side::Entry, SATO).reason,
        Reason::Granted
    );
    w.mem = rebuilt(&w);
    assert!(w.mem.is_inside(MACHINE, SATO));
    assert_eq!(w.enter(MACHINE_DOOR, SATO).reason, Reason::AntiPassback);
    let out = w.card_and_finger(MACHINE_DOOR, Side::Exit, SATO);
    assert_eq!(out.reason, Reason::Granted);
    assert!(!out.warnings.contains(Warnings::EXIT_WITHOUT_ENTRY));
}

#[test]
fn an_escort_wait_outlives_a_rebuild() {
    let mut w = World::at(workday());
    assert_eq!(w.enter(MEETING_DOOR, YAMADA).reason, Reason::EscortPending);
    assert!(!w.mem.waits().is_empty());
    w.mem = rebuilt(&w);
    w.advance_ms(5_000);
    let d = w.enter(MEETING_DOOR, SUZUKI);
    assert_eq!(d.companions.len(), 1, "the visitor's wait was restored");
    assert_eq!(d.companions[0].reason, Reason::GrantedWithEscort);
}

#[test]
fn a_restored_wait_that_ran_out_while_down_ends_in_its_denial() {
    let mut w = World::at(workday());
    assert_eq!(w.enter(MEETING_DOOR, YAMADA).reason, Reason::EscortPending);
    w.mem = rebuilt(&w);
    w.advance_ms(60_000);
    let ended = w.expire();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].reason, Reason::EscortMissing);
    assert!(w.mem.waits().is_empty());
}
