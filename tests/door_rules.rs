//! The door rules a standalone controller enforces, each shown at a real door:
//! the controller as a process, a policy file, `tobira hil` readers, finger
//! module and GPIO board, with the lock edges checked on the board.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod rig;
mod support;

use std::time::Duration;

use rig::*;
use tobira_firmware::*;

/// The fire alarm panel's contact for the office zone.
fn fire_input() -> String {
    format!("[[fire_inputs]]\nzone = {}\ninput = {{ pin = {FIRE_INPUT} }}\n", OFFICE.0)
}

/// Asserts `pin` was never energised among `edges`.
fn never_energised(edges: &[(u8, bool, u64)], pin: u8, what: &str) {
    assert!(
        !edges.iter().any(|&(p, level, _)| p == pin && level),
        "{what}: pin {pin} energised; edges {edges:?}"
    );
}

/// The fire alarm of the office zone holds its fire-egress door (the office)
/// released while it lasts; the machine room, on the same zone's edge but not
/// a fire-egress door, stays locked. A card at the released door is recorded
/// as `fire_release`. When the alarm clears the office relocks, and a card
/// opens it for the unlock time again.
#[test]
fn a_fire_alarm_holds_fire_egress_doors_released_until_it_clears() {
    let mut rig = Rig::start("rules-fire", &[]);
    let mut data = policy(1);
    for door in &mut data.doors {
        door.fire_egress = door.id == DoorId(10);
    }
    rig.write_policy(&data);
    rig.configure_with([10, 40], &fire_input());
    let c = start_watching_cards(&rig, Some(&rig.policy));

    rig.observer.drain();
    rig.observer.drive(FIRE_INPUT, true);
    c.wait_event(&["\"fire_alarm\"", "\"zone\":2", "\"active\":true"], 1);
    let (_, before) = rig.observer.edge_after(OFFICE_LOCK, true);
    never_energised(&before, MACHINE_LOCK, "before the release");

    // A card at the released door: recorded as fire release, and the lock is
    // held past the unlock time instead of pulsing.
    tap_and_lift(&rig, &c, 0, SATO_CARD);
    c.wait_event(&["door=10", "reason=fire_release", "person=1"], 1);
    let during = rig.observer.edges_within(Duration::from_millis(OFFICE_UNLOCK_MS + RELAY_LATE_MS));
    assert!(
        !during.iter().any(|&(p, _, _)| p == OFFICE_LOCK),
        "the office lock changed while the alarm lasted: {during:?}"
    );
    never_energised(&during, MACHINE_LOCK, "during the alarm");
    let status = http_get(rig.status_port, "/status");
    assert_eq!(status["doors"]["office"]["state"], "released", "{status}");
    assert_eq!(status["doors"]["machine room"]["state"], "locked", "{status}");

    // The alarm clears: the office relocks at once.
    rig.observer.drive(FIRE_INPUT, false);
    c.wait_event(&["\"fire_alarm\"", "\"zone\":2", "\"active\":false"], 1);
    let (_, before) = rig.observer.edge_after(OFFICE_LOCK, false);
    never_energised(&before, MACHINE_LOCK, "when the alarm cleared");

    // Back to normal: a card opens the office for the unlock time.
    tap_and_lift(&rig, &c, 0, SATO_CARD);
    c.wait_event(&["door=10", "reason=granted", "person=1"], 1);
    rig.observer.unlock(OFFICE_LOCK, OFFICE_UNLOCK_MS);
    c.stop();

    let events = rig.outbox();
    assert_eq!(
        reasons(&events, 10),
        vec![
            (Some(SATO), Reason::FireRelease),
            (Some(SATO), Reason::Granted)
        ]
    );
    assert!(reasons(&events, 20).is_empty());
}
