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
    format!(
        "[[fire_inputs]]\nzone = {}\ninput = {{ pin = {FIRE_INPUT} }}\n",
        OFFICE.0
    )
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
    let during = rig
        .observer
        .edges_within(Duration::from_millis(OFFICE_UNLOCK_MS + RELAY_LATE_MS));
    assert!(
        !during.iter().any(|&(p, _, _)| p == OFFICE_LOCK),
        "the office lock changed while the alarm lasted: {during:?}"
    );
    never_energised(&during, MACHINE_LOCK, "during the alarm");
    let status = http_get(rig.status_port, "/status");
    assert_eq!(status["doors"]["office"]["state"], "released", "{status}");
    assert_eq!(
        status["doors"]["machine room"]["state"], "locked",
        "{status}"
    );

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

/// Hard anti-passback (the level-4 default): Sato, inside the machine room,
/// presents the card to enter again and is refused at the card. No finger is
/// asked for (the prompt stays dark) and the strike is never energised. Once
/// Sato has left, the same card and finger open the door again.
#[test]
fn hard_anti_passback_refuses_a_second_entry_without_touching_the_strike() {
    let mut rig = Rig::start("rules-passback", &[]);
    // Reader 0 at the machine room's entry, reader 1 at its exit.
    rig.configure([20, 21]);
    let c = start_watching_cards(&rig, Some(&rig.policy));
    enter_or_leave(&mut rig, &c, 0);

    rig.observer.drain();
    tap_and_lift(&rig, &c, 0, SATO_CARD);
    c.wait_event(&["door=20", "reason=anti_passback", "person=1"], 1);
    let after = rig
        .observer
        .edges_within(Duration::from_millis(MACHINE_UNLOCK_MS));
    never_energised(&after, MACHINE_LOCK, "a refused second entry");
    never_energised(&after, MACHINE_PROMPT, "a refused second entry");
    assert_eq!(
        c.count_events(&["door=20", "reason=biometric_required", "person=1"]),
        1,
        "no finger is asked for a refused entry"
    );

    // Out through the exit reader, then in again.
    enter_or_leave(&mut rig, &c, 1);
    enter_or_leave(&mut rig, &c, 0);
    c.stop();

    let finals: Vec<(Side, Reason)> = passages_of(&rig.outbox(), 20, SATO)
        .into_iter()
        .map(|(side, reason, _)| (side, reason))
        .filter(|(_, r)| *r != Reason::BiometricRequired)
        .collect();
    assert_eq!(
        finals,
        vec![
            (Side::Entry, Reason::Granted),
            (Side::Entry, Reason::AntiPassback),
            (Side::Exit, Reason::Granted),
            (Side::Entry, Reason::Granted),
        ]
    );
}

/// The machine room with dual custody and short windows.
fn dual_custody_policy(window_ms: u32) -> SnapshotData {
    let mut data = policy(1);
    let machine = data.zones.iter_mut().find(|z| z.id == MACHINE).unwrap();
    machine.settings.dual_custody = true;
    machine.settings.dual_custody_window_ms = window_ms;
    data
}

/// Dual custody at level 4: Sato alone (card and finger) waits for a second
/// person, the prompt lit, the strike shut; nobody comes within the zone's
/// window, so Sato is refused with `dual_custody_timeout` and the prompt goes
/// out. Then Sato again, and Ito (card and finger) within the window: both are
/// admitted with one opening of the strike, for the unlock time.
#[test]
fn dual_custody_admits_two_people_within_the_window_and_times_out_alone() {
    const WINDOW_MS: u32 = 2500;
    let mut rig = Rig::start("rules-dual", &[]);
    rig.write_policy(&dual_custody_policy(WINDOW_MS));
    rig.configure([20, 21]);
    let c = start_watching_cards(&rig, Some(&rig.policy));
    let waiting_for = |slot: u16| {
        move |l: &str| l.contains("waiting for a finger") && l.contains(&format!("slot={slot}"))
    };

    // Alone: card, finger, then a wait for the second person that runs out.
    rig.observer.drain();
    tap_and_lift(&rig, &c, 0, SATO_CARD);
    c.wait_log("the module waiting for Sato's finger", waiting_for(3));
    rig.finger(r#"{"next":"match","slot":3}"#);
    c.wait_event(&["door=20", "reason=dual_custody_pending", "person=1"], 1);
    let (_, before) = rig.observer.edge_after(MACHINE_PROMPT, true);
    never_energised(&before, MACHINE_LOCK, "Sato alone");
    c.wait_event(&["door=20", "reason=dual_custody_timeout", "person=1"], 1);
    let (_, before) = rig.observer.edge_after(MACHINE_PROMPT, false);
    never_energised(&before, MACHINE_LOCK, "Sato alone");
    rig.observer
        .no_edge(MACHINE_LOCK, true, Duration::from_millis(300));
    assert_eq!(c.count_events(&["door=20", "reason=granted"]), 0);

    // Two people: Sato, then Ito within the window.
    rig.observer.drain();
    tap_and_lift(&rig, &c, 0, SATO_CARD);
    c.wait_logs("the module waiting for Sato's finger", waiting_for(3), 2);
    rig.finger(r#"{"next":"match","slot":3}"#);
    c.wait_event(&["door=20", "reason=dual_custody_pending", "person=1"], 2);
    tap_and_lift(&rig, &c, 0, ITO_CARD);
    c.wait_log("the module waiting for Ito's finger", waiting_for(4));
    let (_, before) = rig.observer.edge_after(MACHINE_PROMPT, true);
    never_energised(&before, MACHINE_LOCK, "before the second finger");
    rig.observer
        .no_edge(MACHINE_LOCK, true, Duration::from_millis(200));
    rig.finger(r#"{"next":"match","slot":4}"#);
    c.wait_event(&["door=20", "reason=granted", "person=2"], 1);
    c.wait_event(&["door=20", "reason=granted", "person=1"], 1);
    let (on, before) = rig.observer.edge_after(MACHINE_LOCK, true);
    let (off, _) = rig.observer.edge_after(MACHINE_LOCK, false);
    Pulse::between(MACHINE_LOCK, on, off).assert_unlock_time(MACHINE_UNLOCK_MS);
    assert!(
        !before.iter().any(|&(p, l, _)| p == MACHINE_LOCK && !l),
        "{before:?}"
    );
    // Nobody waits any more: the prompt is out.
    let status = http_get(rig.status_port, "/status");
    assert_eq!(
        status["doors"]["machine room"]["state"], "locked",
        "{status}"
    );
    c.stop();

    let events = rig.outbox();
    let pending = access_times(&events, 20, Reason::DualCustodyPending);
    let timeout = access_times(&events, 20, Reason::DualCustodyTimeout);
    assert_eq!(
        (pending.len(), timeout.len()),
        (2, 1),
        "{pending:?} {timeout:?}"
    );
    let waited = (timeout[0] - pending[0]) as u64;
    assert!(
        (u64::from(WINDOW_MS)..u64::from(WINDOW_MS) + HELD_SLACK_MS).contains(&waited),
        "the second person was waited for {waited} ms, window {WINDOW_MS} ms"
    );
    assert_eq!(
        reasons(&events, 20)
            .into_iter()
            .filter(|(_, r)| *r == Reason::Granted)
            .collect::<Vec<_>>(),
        vec![(Some(ITO), Reason::Granted), (Some(SATO), Reason::Granted)]
    );
}

/// Card at level 4 and no finger within the zone's `biometric_timeout_ms`:
/// refused with `biometric_timeout` (once, not once per timer), the prompt
/// goes out and the strike is never energised.
#[test]
fn no_finger_within_the_biometric_timeout_refuses_and_puts_the_prompt_out() {
    const TIMEOUT_MS: u32 = 1500;
    let rig = Rig::start("rules-biometric-timeout", &[]);
    let mut data = policy(1);
    let machine = data.zones.iter_mut().find(|z| z.id == MACHINE).unwrap();
    machine.settings.biometric_timeout_ms = TIMEOUT_MS;
    rig.write_policy(&data);
    rig.configure([20, 21]);
    let c = start_watching_cards(&rig, Some(&rig.policy));

    rig.observer.drain();
    tap_and_lift(&rig, &c, 0, SATO_CARD);
    c.wait_event(&["door=20", "reason=biometric_required", "person=1"], 1);
    let (prompt_on, _) = rig.observer.edge_after(MACHINE_PROMPT, true);
    c.wait_event(&["door=20", "reason=biometric_timeout", "person=1"], 1);
    let (prompt_off, before) = rig.observer.edge_after(MACHINE_PROMPT, false);
    never_energised(&before, MACHINE_LOCK, "no finger");
    let lit_ms = (prompt_off - prompt_on) / 1000;
    assert!(
        (u64::from(TIMEOUT_MS) - RELAY_EARLY_MS..u64::from(TIMEOUT_MS) + RELAY_LATE_MS)
            .contains(&lit_ms),
        "prompt lit for {lit_ms} ms, timeout {TIMEOUT_MS} ms"
    );
    let after = rig.observer.edges_within(Duration::from_millis(500));
    never_energised(&after, MACHINE_LOCK, "after the timeout");
    assert_eq!(c.count_events(&["door=20", "reason=biometric_timeout"]), 1);
    c.stop();

    let events = rig.outbox();
    assert_eq!(
        reasons(&events, 20),
        vec![
            (Some(SATO), Reason::BiometricRequired),
            (Some(SATO), Reason::BiometricTimeout)
        ]
    );
    let asked = access_times(&events, 20, Reason::BiometricRequired)[0];
    let refused = access_times(&events, 20, Reason::BiometricTimeout)[0];
    let waited = (refused - asked) as u64;
    assert!(
        (u64::from(TIMEOUT_MS)..u64::from(TIMEOUT_MS) + HELD_SLACK_MS).contains(&waited),
        "refused {waited} ms after the card, timeout {TIMEOUT_MS} ms"
    );
}

/// A site time zone in which it is now around noon, and the local weekday and
/// minute there: a schedule built around "now" in it is nowhere near midnight,
/// whatever the time of day the test runs at.
fn noon_somewhere() -> (String, DaySet, u16) {
    let now = now_ms();
    let utc_hour = now.div_euclid(3_600_000).rem_euclid(24);
    let offset_h = 12 - utc_hour; // -11 ..= 12
                                  // POSIX sign: Etc/GMT-9 is nine hours ahead of UTC.
    let name = match offset_h {
        0 => "Etc/GMT".to_owned(),
        h if h > 0 => format!("Etc/GMT-{h}"),
        h => format!("Etc/GMT+{}", -h),
    };
    let local = now + offset_h * 3_600_000;
    let day = local.div_euclid(86_400_000);
    // 1970-01-01 was a Thursday; the day bits run from Monday.
    let weekday = (day + 3).rem_euclid(7) as u8;
    let minute = (local.rem_euclid(86_400_000) / 60_000) as u16;
    (name, DaySet(1 << weekday), minute)
}

/// The meeting room as a level-1 zone with opening hours `window` (minutes of
/// today, site time), and the store as level 0.
fn open_hours_policy(
    version: u64,
    zone_name: &str,
    today: DaySet,
    window: (u16, u16),
) -> SnapshotData {
    let mut data = policy(version);
    data.time_zone = Some(zone_name.to_owned());
    data.schedules = vec![WeeklySchedule {
        id: ScheduleId(1),
        windows: vec![TimeWindow {
            days: today,
            start: window.0,
            end: window.1,
        }],
    }];
    for z in &mut data.zones {
        if z.id == MEETING {
            *z = zone(MEETING, SecurityLevel::L1);
            z.opening_schedule = Some(ScheduleId(1));
        }
        if z.id == STORE {
            *z = zone(STORE, SecurityLevel::L0);
        }
    }
    data
}

/// Level 1 inside its opening hours and level 0: both doors stand released
/// from the start, without a card and without an event; a card there is
/// recorded (`open_hours`, `no_lock`) and moves no lock. The schedule is read
/// in the site's time zone from the policy. Outside the opening hours the same
/// level-1 door is locked and a card opens it for the unlock time, while the
/// level-0 door stays released.
#[test]
fn open_hours_and_no_lock_hold_doors_released_and_cards_move_no_lock() {
    let rig = Rig::start("rules-open-hours", &[]);
    let (site_zone, today, minute) = noon_somewhere();
    rig.write_policy(&open_hours_policy(
        1,
        &site_zone,
        today,
        (minute - 30, minute + 30),
    ));
    rig.configure([40, 50]);
    rig.observer.drain();
    let c = start_watching_cards(&rig, Some(&rig.policy));
    c.wait_log("the site time zone", |l| {
        l.contains("site time zone") && l.contains(&site_zone)
    });
    // Both released by the controller's first look at its doors.
    let (_, before) = rig.observer.edge_after(MEETING_LOCK, true);
    let store_released = before.iter().any(|&(p, l, _)| p == STORE_LOCK && l);
    if !store_released {
        rig.observer.edge(STORE_LOCK, true);
    }
    let status = http_get(rig.status_port, "/status");
    assert_eq!(
        status["doors"]["meeting room"]["state"], "released",
        "{status}"
    );
    assert_eq!(status["doors"]["store"]["state"], "released", "{status}");

    // A visitor during opening hours, and staff at the level-0 store.
    tap_and_lift(&rig, &c, 0, YAMADA_CARD);
    c.wait_event(&["door=40", "reason=open_hours", "person=3"], 1);
    tap_and_lift(&rig, &c, 1, SATO_CARD);
    c.wait_event(&["door=50", "reason=no_lock", "person=1"], 1);
    let moved = rig
        .observer
        .edges_within(Duration::from_millis(MEETING_UNLOCK_MS + RELAY_LATE_MS));
    assert!(
        !moved
            .iter()
            .any(|&(p, _, _)| p == MEETING_LOCK || p == STORE_LOCK),
        "a card moved a released lock: {moved:?}"
    );
    // Releases are states, not events: only the two cards are on record.
    assert_eq!(c.count_events(&["door=40"]), 1);
    assert_eq!(c.count_events(&["door=50"]), 1);
    c.stop();

    // Outside the opening hours (later today): the meeting room is locked.
    rig.write_policy(&open_hours_policy(
        2,
        &site_zone,
        today,
        (minute + 120, minute + 180),
    ));
    rig.observer.drain();
    let c = start_watching_cards(&rig, Some(&rig.policy));
    rig.observer.edge(STORE_LOCK, true);
    rig.observer
        .no_edge(MEETING_LOCK, true, Duration::from_millis(1200));
    let status = http_get(rig.status_port, "/status");
    assert_eq!(
        status["doors"]["meeting room"]["state"], "locked",
        "{status}"
    );
    tap_and_lift(&rig, &c, 0, SATO_CARD);
    c.wait_event(&["door=40", "reason=granted", "person=1"], 1);
    rig.observer.unlock(MEETING_LOCK, MEETING_UNLOCK_MS);
    c.stop();

    let events = rig.outbox();
    assert_eq!(
        reasons(&events, 40),
        vec![
            (Some(YAMADA), Reason::OpenHours),
            (Some(SATO), Reason::Granted)
        ]
    );
    assert_eq!(reasons(&events, 50), vec![(Some(SATO), Reason::NoLock)]);
}
