//! The door controller as a real process with real (simulated) devices: a private
//! pcscd with vpcd readers and `tobira hil card` taps, `tobira hil finger` on a
//! pty, `tobira hil gpio` as the board, and a policy file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod rig;
mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rig::*;
use serde_json::Value;
use support::{simulator, Scratch, BIN};
use tobira_firmware::*;
use tobira_hardware::hil::{PrivatePcscd, VirtualReaderSlot};

#[test]
fn the_controller_decides_with_real_devices_and_records_everything() {
    let mut rig = Rig::start("controller-e2e", &[]);

    // Phase 1: the readers are on the office door (L3) and the meeting room (L2).
    rig.configure([10, 40]);
    let c = Controller::start(&rig.config, Some(&rig.policy));
    let obs = &rig.observer;

    // Level 3: a staff card releases the strike for the unlock time, then it relocks.
    obs.drain();
    tap(rig.slot(0), SATO_CARD);
    obs.unlock(OFFICE_LOCK, OFFICE_UNLOCK_MS);
    c.wait_event(&["door=10", "reason=granted", "person=1"], 1);

    // A lost card is refused and the strike stays off.
    tap(rig.slot(0), LOST_CARD);
    c.wait_event(&["door=10", "reason=card_lost"], 1);
    obs.no_edge(OFFICE_LOCK, true, Duration::from_millis(300));

    // Door held open: granted, opened, left open past pre-alarm and alarm,
    // closed. The strike relocks at the unlock time even with the door open.
    tap(rig.slot(0), SATO_CARD);
    let on = obs.edge(OFFICE_LOCK, true);
    // The held-open timer starts when the controller sees the door open, which
    // is after this moment on the same host clock as the events' times.
    let opened_ms = now_ms();
    rig.observer.drive(OFFICE_CONTACT, true);
    let off = rig.observer.edge(OFFICE_LOCK, false);
    Pulse::between(OFFICE_LOCK, on, off).assert_unlock_time(OFFICE_UNLOCK_MS);
    c.wait_event(&["door_held_open", "pre_alarm"], 1);
    c.wait_event(&["door_held_open", "\"alarm\""], 1);
    rig.observer.drive(OFFICE_CONTACT, false);
    c.wait_event(&["door_closed", "\"door\":10"], 1);

    // Forced: the meeting room door opens without a grant.
    rig.observer.drive(MEETING_CONTACT, true);
    c.wait_event(&["door_forced", "\"door\":40"], 1);
    rig.observer.drive(MEETING_CONTACT, false);
    c.wait_event(&["door_closed", "\"door\":40"], 1);

    // Level 2: a visitor alone waits for an escort, then is refused.
    rig.observer.drain();
    tap(rig.slot(1), YAMADA_CARD);
    c.wait_event(&["door=40", "reason=escort_pending", "person=3"], 1);
    c.wait_event(&["door=40", "reason=escort_missing", "person=3"], 1);
    rig.observer
        .no_edge(MEETING_LOCK, true, Duration::from_millis(100));
    // With a staff card within the escort window both go in.
    tap(rig.slot(1), YAMADA_CARD);
    c.wait_event(&["door=40", "reason=escort_pending", "person=3"], 2);
    tap(rig.slot(1), SATO_CARD);
    c.wait_event(&["door=40", "reason=granted_with_escort", "person=3"], 1);
    rig.observer.unlock(MEETING_LOCK, MEETING_UNLOCK_MS);

    // Request to exit at level 3 opens the office door.
    rig.observer.drain();
    rig.observer.drive(OFFICE_REX, true);
    let on = rig.observer.edge(OFFICE_LOCK, true);
    rig.observer.drive(OFFICE_REX, false);
    c.wait_event(&["door=10", "reason=request_to_exit"], 1);
    let off = rig.observer.edge(OFFICE_LOCK, false);
    Pulse::between(OFFICE_LOCK, on, off).assert_unlock_time(OFFICE_UNLOCK_MS);
    c.stop();

    // Phase 2: the readers move to the machine room (L4) and the flapper
    // gate. The controller restarts from its cache, without the policy file.
    rig.configure([20, 30]);
    let c = Controller::start(&rig.config, None);

    // Level 4: Sato's card is accepted and the module waits for Sato's finger.
    // Ito's card at the same reader replaces that wait, and the module stops
    // waiting for Sato at once instead of running on to Sato's deadline.
    // Ito's finger does not match: denied with the biometric reason.
    let waiting_for = |slot: u16| {
        move |l: &str| l.contains("waiting for a finger") && l.contains(&format!("slot={slot}"))
    };
    tap(rig.slot(0), SATO_CARD);
    c.wait_event(&["door=20", "reason=biometric_required", "person=1"], 1);
    c.wait_log("the module waiting for Sato's finger", waiting_for(3));
    tap(rig.slot(0), ITO_CARD);
    c.wait_event(&["door=20", "reason=biometric_required", "person=2"], 1);
    c.wait_log("the module waiting for Ito's finger", waiting_for(4));
    c.wait_log("Sato's wait abandoned", |l| {
        l.contains("finger wait abandoned") && l.contains("slot=3")
    });
    rig.finger(r#"{"next":"nomatch"}"#);
    c.wait_event(&["door=20", "reason=biometric_failed", "person=2"], 1);
    assert_eq!(
        c.count_events(&["door=20", "person=1", "reason=biometric"]),
        1
    );

    // Level 4: card, then the finger of the slot the card holder enrolled.
    rig.observer.drain();
    tap(rig.slot(0), SATO_CARD);
    c.wait_event(&["door=20", "reason=biometric_required", "person=1"], 2);
    rig.observer.edge(MACHINE_PROMPT, true);
    c.wait_logs(
        "the module waiting for Sato's finger again",
        waiting_for(3),
        2,
    );
    rig.observer
        .no_edge(MACHINE_LOCK, true, Duration::from_millis(200));
    rig.finger(r#"{"next":"match","slot":3}"#);
    let on = rig.observer.edge(MACHINE_LOCK, true);
    rig.observer.edge(MACHINE_PROMPT, false);
    c.wait_event(&["door=20", "reason=granted", "person=1"], 1);
    // Relocked after the unlock time (the door was never opened).
    let off = rig.observer.edge(MACHINE_LOCK, false);
    Pulse::between(MACHINE_LOCK, on, off).assert_unlock_time(MACHINE_UNLOCK_MS);

    // Garbage on the fingerprint line, then a good verification still works.
    rig.finger(r#"{"garbage":"a5 5a ff 00 ef"}"#);
    rig.finger(r#"{"next":"match","slot":4}"#);
    rig.observer.drain();
    tap(rig.slot(0), ITO_CARD);
    rig.observer.unlock(MACHINE_LOCK, MACHINE_UNLOCK_MS);
    c.wait_event(&["door=20", "reason=granted", "person=2"], 1);

    // The flapper gate opens inward for one passage and closes behind it.
    rig.observer.drain();
    tap(rig.slot(1), YAMADA_CARD);
    // A visitor with no grant for the office is refused at the gate.
    let refused = c.wait_event(&["door=30", "person=3"], 1);
    assert!(!refused.contains("reason=granted"), "{refused}");
    rig.observer
        .no_edge(GATE_IN, true, Duration::from_millis(100));
    tap(rig.slot(1), SATO_CARD);
    rig.observer.edge(GATE_IN, true);
    // Someone walks through the lane (a person takes far longer than a poll).
    rig.observer.drive(GATE_SENSOR, true);
    std::thread::sleep(Duration::from_millis(300));
    rig.observer.drive(GATE_SENSOR, false);
    rig.observer.edge(GATE_IN, false);
    c.wait_event(&["gate_passage", "\"door\":30"], 1);
    assert_eq!(c.count_events(&["tailgating"]), 0);

    // Status: doors, devices (the missing serial port and the unplugged readers offline).
    let status = http_get(rig.status_port, "/status");
    assert_eq!(status["policy"]["version"], 1);
    assert_eq!(status["devices"]["store finger"]["online"], false);
    assert!(status["devices"]["store finger"]["error"]
        .as_str()
        .unwrap()
        .contains("no-such-tty"));
    assert_eq!(status["devices"]["machine room finger"]["online"], true);
    assert_eq!(status["devices"]["Unplugged Reader 10"]["online"], false);
    assert_eq!(status["devices"][&rig.slot(0).name]["online"], true);
    assert_eq!(status["doors"]["office"]["state"], "locked");
    assert!(status["outbox_depth"].as_u64().unwrap() > 10);
    let metrics = http_get(rig.status_port, "/metrics");
    assert!(metrics
        .as_str()
        .unwrap()
        .contains("tobira_device_online{device=\"store finger\",kind=\"biometric\"} 0"));
    // Grants happened, so their latency is exported; the slowest is at least the median.
    let grant = &status["grant_latency_ms"];
    assert!(grant["samples"].as_u64().unwrap() > 0);
    assert!(grant["max"].as_f64().unwrap() >= grant["p50"].as_f64().unwrap());
    assert!(metrics
        .as_str()
        .unwrap()
        .contains("tobira_grant_latency_seconds{stage=\"commit\",quantile=\"0.99\"}"));

    let log = c.stop();
    assert!(log.iter().any(|l| l.contains("doors in their safe state")));

    // Phase 3: both readers on the flapper gate, one on each side.
    rig.configure([30, 31]);
    let c = Controller::start(&rig.config, None);
    rig.observer.drain();
    tap(rig.slot(0), ITO_CARD);
    rig.observer.edge(GATE_IN, true);
    // While the lane is open inward, a card on the exit side is not taken:
    // the lane cannot open outward, and a recorded grant would count Sato out.
    tap(rig.slot(1), SATO_CARD);
    c.wait_log("the busy lane refusing the exit tap", |l| {
        l.contains("lane busy") && l.contains("Exit")
    });
    rig.observer
        .no_edge(GATE_OUT, true, Duration::from_millis(100));
    assert_eq!(c.count_events(&["door=30", "person=1"]), 0);
    rig.observer.drive(GATE_SENSOR, true);
    std::thread::sleep(Duration::from_millis(300));
    rig.observer.drive(GATE_SENSOR, false);
    rig.observer.edge(GATE_IN, false);
    c.wait_event(&["gate_passage", "\"door\":30"], 1);
    // Once the lane has closed, the same card at the exit opens it outward.
    tap(rig.slot(1), SATO_CARD);
    rig.observer.edge(GATE_OUT, true);
    c.wait_event(&["door=30", "reason=granted", "person=1"], 1);
    // Readers never found are reported 5 s after the start, which is about
    // as long as this phase takes: wait for the last of them, so no event
    // lands between reading `last_seq` and the stop.
    c.wait_event(&["device_offline", "Unplugged Reader 50"], 1);
    let last_seq = http_get(rig.status_port, "/status")["last_seq"]
        .as_u64()
        .unwrap();
    c.stop();

    // Every event of both runs is in the outbox once, in order, chained.
    let events = rig.outbox();
    assert_eq!(events.len() as u64, last_seq);
    let seqs: Vec<u64> = events.iter().map(|e| e.event.seq).collect();
    assert_eq!(seqs, (1..=last_seq).collect::<Vec<_>>());
    verify_chain(rig.chain_start(), events.iter()).unwrap();
    assert_eq!(
        reasons(&events, 10).first(),
        Some(&(Some(SATO), Reason::Granted))
    );
    assert!(reasons(&events, 10).contains(&(None, Reason::RequestToExit)));
    assert!(reasons(&events, 20).contains(&(Some(ITO), Reason::BiometricFailed)));
    assert!(reasons(&events, 40).contains(&(Some(YAMADA), Reason::EscortMissing)));
    // The held-open stages, in order, at their configured times after the
    // door was opened (the grant was earlier: the tap holds the card).
    let granted = access_times(&events, 10, Reason::Granted)[1];
    assert!(granted <= opened_ms);
    let held = held_open_times(&events, 10);
    assert_eq!(
        held.iter().map(|(stage, _)| *stage).collect::<Vec<_>>(),
        vec![HeldStage::PreAlarm, HeldStage::Alarm]
    );
    // Between the stages only the controller's poll counts, so the gap is tighter.
    let gap = (held[1].1 - held[0].1) as u64;
    let configured_gap = OFFICE_ALARM_MS - OFFICE_PREALARM_MS;
    assert!(
        gap.abs_diff(configured_gap) <= HELD_GAP_SLACK_MS,
        "alarm {gap} ms after the pre-alarm, configured {configured_gap} ms; stages {held:?}, opened at {opened_ms}"
    );
    for ((stage, at), configured) in held.iter().zip([OFFICE_PREALARM_MS, OFFICE_ALARM_MS]) {
        let after = (at - opened_ms) as u64;
        assert!(
            (configured..configured + HELD_SLACK_MS).contains(&after),
            "{stage:?} {after} ms after the door opened, configured {configured} ms"
        );
    }
}

/// Central holds slot 5 for Kato, the module's flash does not (`--enrolled
/// 3,4`): the module answers LoadChar with `ReadTemplateError`. That is Kato's
/// enrollment gone wrong, not a module fault: Kato is refused with
/// `biometric_not_enrolled`, the module stays online (no `device_offline`),
/// and Sato's finger still opens the door right after.
#[test]
fn a_slot_the_module_does_not_hold_refuses_that_person_and_keeps_the_module_online() {
    let mut rig = Rig::start("controller-missing-slot", &[]);
    rig.configure([20, 30]);
    let c = Controller::start(&rig.config, Some(&rig.policy));
    c.wait_log("the fingerprint module online", |l| {
        l.contains("biometric module online") && l.contains("machine room finger")
    });

    tap(rig.slot(0), KATO_CARD);
    c.wait_event(&["door=20", "reason=biometric_required", "person=4"], 1);
    c.wait_log("the module checking Kato's slot", |l| {
        l.contains("waiting for a finger") && l.contains("slot=5")
    });
    // Kato puts a finger down; there is nothing in slot 5 to compare it with.
    rig.finger(r#"{"next":"finger","finger":5}"#);
    c.wait_event(&["door=20", "reason=biometric_not_enrolled", "person=4"], 1);
    // Take the finger off the sensor if it was not needed.
    rig.finger(r#"{"next":"nofinger"}"#);
    assert_eq!(
        c.count_events(&["device_offline", "machine room finger"]),
        0
    );
    assert_eq!(
        c.count_events(&["door=20", "reason=biometric_unavailable"]),
        0
    );
    let status = http_get(rig.status_port, "/status");
    assert_eq!(status["devices"]["machine room finger"]["online"], true);

    // Everyone else is served by the same module, at once.
    rig.observer.drain();
    tap(rig.slot(0), SATO_CARD);
    c.wait_logs(
        "the module waiting for Sato's finger",
        |l| l.contains("waiting for a finger") && l.contains("slot=3"),
        1,
    );
    rig.finger(r#"{"next":"match","slot":3}"#);
    c.wait_event(&["door=20", "reason=granted", "person=1"], 1);
    rig.observer.unlock(MACHINE_LOCK, MACHINE_UNLOCK_MS);
    c.stop();
    let events = rig.outbox();
    assert!(reasons(&events, 20).contains(&(Some(KATO), Reason::BiometricNotEnrolled)));
    assert!(!events.iter().any(|e| matches!(
        &e.event.kind,
        EventKind::DeviceOffline { device } if device.name == "machine room finger"
    )));
}

#[test]
fn kill_9_mid_burst_loses_no_reported_event_and_restarts_on_the_same_chain() {
    let mut rig = Rig::start("controller-kill9", &[]);
    rig.configure([10, 30]);
    let c = Controller::start(&rig.config, Some(&rig.policy));
    // A burst: request-to-exit presses as fast as the board takes them, and
    // card taps on two readers at once.
    let slots: Vec<VirtualReaderSlot> = vec![rig.slot(0).clone(), rig.slot(1).clone()];
    let tappers: Vec<_> = slots
        .into_iter()
        .map(|slot| {
            std::thread::spawn(move || {
                for _ in 0..3 {
                    let _ = Command::new(BIN)
                        .args(["hil", "card", "--uid", SATO_CARD, "--hold-ms", "500"])
                        .args(["--port", &slot.port.to_string()])
                        .output();
                }
            })
        })
        .collect();
    for i in 0..400 {
        rig.observer.drive(OFFICE_REX, i % 2 == 0);
        std::thread::sleep(Duration::from_millis(12));
        if i == 250 {
            // Mid-burst, without warning.
            let status = Command::new("kill")
                .args(["-KILL", &c.pid().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
        }
    }
    for t in tappers {
        t.join().unwrap();
    }
    let reported: BTreeSet<u64> = c
        .lines()
        .iter()
        .filter(|l| l.contains("event recorded"))
        .filter_map(|l| {
            l.split("seq=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    drop(c);
    assert!(
        reported.len() > 20,
        "the burst should have produced events before the kill: {}",
        reported.len()
    );
    let events = rig.outbox();
    let stored: Vec<u64> = events.iter().map(|e| e.event.seq).collect();
    assert_eq!(
        stored,
        (1..=stored.len() as u64).collect::<Vec<_>>(),
        "sequence has a gap or a repeat"
    );
    for seq in &reported {
        assert!(
            stored.contains(seq),
            "event {seq} was reported but is not in the outbox"
        );
    }
    verify_chain(rig.chain_start(), events.iter()).unwrap();

    // Restart: the cache loads without the policy file and the chain goes on.
    rig.observer.drive(OFFICE_REX, false);
    let c = Controller::start(&rig.config, None);
    let status = http_get(rig.status_port, "/status");
    assert_eq!(status["policy"]["version"], 1);
    rig.observer.drain();
    tap(rig.slot(0), SATO_CARD);
    c.wait_event(&["door=10", "reason=granted"], 1);
    rig.observer.unlock(OFFICE_LOCK, OFFICE_UNLOCK_MS);
    c.stop();
    let after = rig.outbox();
    assert!(after.len() > events.len());
    assert_eq!(after[..events.len()], events[..]);
    verify_chain(rig.chain_start(), after.iter()).unwrap();
}

#[test]
fn hard_anti_passback_and_occupancy_survive_kill_9_and_sigterm() {
    let mut rig = Rig::start("controller-memory", &[]);
    // Reader 0 at the machine room's entry, reader 1 at its exit.
    rig.configure([20, 21]);

    // Sato enters the level-4 machine room (card + finger); then the
    // controller dies without warning.
    let c = start_watching_cards(&rig, Some(&rig.policy));
    enter_or_leave(&mut rig, &c, 0);
    let status = Command::new("kill")
        .args(["-KILL", &c.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    drop(c);

    // After the restart Sato is still inside: hard anti-passback refuses a
    // second entry at the card, before any finger is asked for.
    let mut c = start_watching_cards(&rig, None);
    tap_and_lift(&rig, &c, 0, SATO_CARD);
    c.wait_event(&["door=20", "reason=anti_passback", "person=1"], 1);
    // Leaving is an exit with a recorded entry, not "exit without entry".
    enter_or_leave(&mut rig, &c, 1);

    // A clean stop and start: Sato is outside now, so entering is allowed.
    c.stop();
    c = start_watching_cards(&rig, None);
    enter_or_leave(&mut rig, &c, 0);
    // And inside again after a SIGTERM restart.
    c.stop();
    c = start_watching_cards(&rig, None);
    tap_and_lift(&rig, &c, 0, SATO_CARD);
    c.wait_event(&["door=20", "reason=anti_passback", "person=1"], 1);
    c.stop();

    let seen = passages_of(&rig.outbox(), 20, SATO);
    let finals: Vec<(Side, Reason, Warnings)> = seen
        .into_iter()
        .filter(|(_, r, _)| *r != Reason::BiometricRequired)
        .collect();
    assert_eq!(
        finals,
        vec![
            (Side::Entry, Reason::Granted, Warnings::default()),
            (Side::Entry, Reason::AntiPassback, Warnings::default()),
            (Side::Exit, Reason::Granted, Warnings::default()),
            (Side::Entry, Reason::Granted, Warnings::default()),
            (Side::Entry, Reason::AntiPassback, Warnings::default()),
        ],
        "entries, exits and refusals across two kinds of restart"
    );
}

#[test]
fn a_bad_config_is_refused_with_the_line_that_is_wrong() {
    let dir = Scratch::new("controller-badconfig");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "controller = 1\ndata_dir = \"/tmp/x\"\n[gpio]\nbackend = \"virtual\"\nsocket = \"/tmp/s\"\n[[doors]]\nname = \"a\"\nid = 1\nkind = \"door\"\nunlock_sec = 5\n",
    )
    .unwrap();
    for args in [&["controller", "check"][..], &["controller"][..]] {
        let out = Command::new(BIN)
            .args(args)
            .args(["--config", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("{}:10:1:", path.display())), "{err}");
        assert!(err.contains("unlock_sec"), "{err}");
    }
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "controller = 1\ndata_dir = \"/tmp/x\"\n[gpio]\nbackend = \"virtual\"\nsocket = \"/tmp/s\"\n[[doors]]\nname = \"a\"\nid = 1\nkind = \"door\"\nentry_reader = \"R\"\nlock_output = { pin = 17 }\ncontact = { pin = 5 }\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["controller", "check", "--config", good.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("config OK"));
    let missing = Command::new(BIN)
        .args(["controller", "--config", "/nonexistent/tobira.toml"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/tobira.toml"));
}

#[test]
fn a_config_time_zone_that_is_not_the_sites_is_refused_at_start() {
    let dir = Scratch::new("controller-timezone");
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "controller = 1\ntime_zone = \"Europe/Paris\"\ndata_dir = \"{}\"\n[gpio]\nbackend = \"virtual\"\nsocket = \"{}\"\n",
            dir.path().join("data").display(),
            dir.path().join("no-board.sock").display()
        ),
    )
    .unwrap();
    let site = dir.path().join("policy.json");
    let mut data = policy(1);
    data.time_zone = Some("Asia/Tokyo".into());
    std::fs::write(&site, serde_json::to_string(&data).unwrap()).unwrap();
    let out = Command::new(BIN)
        .args(["controller", "--config", config.to_str().unwrap()])
        .args(["--policy", site.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Europe/Paris") && err.contains("Asia/Tokyo") && err.contains("time_zone"),
        "{err}"
    );
    // `check` finds it too.
    let out = Command::new(BIN)
        .args(["controller", "check", "--config", config.to_str().unwrap()])
        .args(["--policy", site.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Europe/Paris") && err.contains("Asia/Tokyo"),
        "{err}"
    );
}

/// `tobira central` and `tobira controller` as two processes, set up the way
/// an integrator does it on site: an API token from the command line, the
/// building and the controller through the API, the controller's config from
/// what registration printed. A REX press reaches the central event log, a
/// card reported lost reaches the running controller (both agree on the
/// policy version), and tapped there it is refused as lost without the lock
/// being released.
#[test]
fn central_and_controller_work_together_as_separate_processes() {
    let dir = Scratch::new("two-processes");
    let central = CentralProc::start(&dir);
    assert!(central.token.starts_with("tbr_"), "{}", central.token);
    let (port, token) = (central.port, central.token.clone());
    let create = |path: &str, body: Value| central.create(path, body);
    let site = create("/sites", serde_json::json!({"name": "本庁舎"}))["id"].clone();
    let zone =
        |name: &str, level: u8| serde_json::json!({"site_id": site, "name": name, "level": level});
    let grounds = create("/zones", zone("敷地", 0))["id"].clone();
    let office = create("/zones", zone("執務室", 3))["id"].clone();
    let registered = create(
        "/controllers",
        serde_json::json!({"site_id": site, "name": "1F east"}),
    );
    let controller = registered["controller"]["id"].as_u64().unwrap();
    let door = create(
        "/doors",
        serde_json::json!({
            "name": "office", "kind": "door", "controller_id": controller,
            "outside_zone_id": grounds, "inside_zone_id": office,
            "entry_reader": {"biometric": null}, "exit_reader": null,
        }),
    )["id"]
        .as_u64()
        .unwrap();
    let person = create(
        "/people",
        serde_json::json!({"kind": "staff", "name": "佐藤 花子", "organisation": "総務課"}),
    )["id"]
        .clone();
    create(
        "/cards",
        serde_json::json!({"uid": "04A1B2C3", "person_id": person}),
    );
    // Her department's grant to the office: without one her card would not
    // be in this controller's policy at all.
    let group = create("/groups", serde_json::json!({"name": "総務課"}))["id"].clone();
    let (status, answer) = api(
        port,
        &token,
        "PUT",
        &format!("/groups/{group}/members/{person}"),
        None,
    );
    assert_eq!(status, 204, "{answer}");
    create(
        "/grants",
        serde_json::json!({"group_id": group, "zones": [office]}),
    );

    let pcscd = PrivatePcscd::start().unwrap_or_else(|e| panic!("{e}"));
    let reader = &pcscd.slots()[0];
    let socket = dir.path().join("gpio.sock");
    let (_board, _, _) = simulator(&["hil", "gpio", "--socket", socket.to_str().unwrap()]);
    let mut observer = Observer::connect(&socket);
    let status_port = free_port();
    let config = dir.path().join("controller.toml");
    std::fs::write(
        &config,
        format!(
            r#"
controller = {controller}
data_dir = "{data}"
status_listen = "127.0.0.1:{status_port}"
poll_ms = 5

# The test follows people through the log by their ids.
[log]
identifiers = "full"

[gpio]
backend = "virtual"
socket = "{socket}"

[central]
url = "http://127.0.0.1:{port}"
allow_insecure_http = true
secret = "{secret}"
public_key = "{key}"

[[doors]]
name = "office"
id = {door}
kind = "door"
entry_reader = "{reader}"
lock_output = {{ pin = {OFFICE_LOCK} }}
contact = {{ pin = {OFFICE_CONTACT}, active_low = true }}
rex = {{ pin = {OFFICE_REX} }}
timings = {{ unlock_ms = 500, held_prealarm_ms = 20000, held_alarm_ms = 30000 }}
"#,
            data = dir.path().join("data").display(),
            socket = socket.display(),
            secret = registered["secret"].as_str().unwrap(),
            key = registered["public_key"].as_str().unwrap(),
            reader = reader.name,
        ),
    )
    .unwrap();
    // The door shut, as a contact reports it.
    observer.drive(OFFICE_CONTACT, false);
    let c = Controller::start_logging(&config, None, "info,tobira_controller::engine=debug");
    c.wait_log("the reader to come online", |l| {
        l.contains("card reader online") && l.contains(&reader.name)
    });

    // The controller pulls the signed policy that holds Sato's card.
    let version = eventually("the first policy", || {
        let v = http_get(status_port, "/status")["policy"]["version"].as_u64()?;
        (v > 0).then_some(v)
    });

    // REX: the door unlocks, and the event reaches the central event log.
    observer.drain();
    observer.drive(OFFICE_REX, true);
    let on = observer.edge(OFFICE_LOCK, true);
    observer.drive(OFFICE_REX, false);
    let off = observer.edge(OFFICE_LOCK, false);
    Pulse::between(OFFICE_LOCK, on, off).assert_unlock_time(500);
    let rex = eventually("the REX event at the central service", || {
        let (_, page) = api(port, &token, "GET", &format!("/events?door={door}"), None);
        page["items"]
            .as_array()?
            .iter()
            .find(|e| e["reason"] == "request_to_exit")
            .cloned()
    });
    assert_eq!(rex["controller_id"].as_u64(), Some(controller));
    assert_eq!(rex["door_name"], "office");

    // Sato's card opens the office: the lock is released for its unlock
    // time, then relocks.
    observer.drain();
    tap(reader, "04A1B2C3");
    c.wait_event(&[&format!("access door={door} "), "reason=granted "], 1);
    observer.pulse(OFFICE_LOCK).assert_unlock_time(500);
    // pcscd notices the card gone only at its next presence poll.
    c.wait_log("the card to leave the reader", |l| {
        l.contains("card removed")
    });

    // Sato's card is reported lost: the running controller gets the change.
    let (status, answer) = api(port, &token, "POST", "/cards/04A1B2C3/lost", None);
    assert_eq!(status, 200, "{answer}");
    let newer = eventually("the lost card at the controller", || {
        let v = http_get(status_port, "/status")["policy"]["version"].as_u64()?;
        (v > version).then_some(v)
    });
    // …and the central service knows which version the controller holds.
    eventually("the controller's confirmation", || {
        let (_, c) = api(
            port,
            &token,
            "GET",
            &format!("/controllers/{controller}"),
            None,
        );
        (c["policy_version"].as_u64() == Some(newer)).then_some(())
    });
    // The lost card is tapped: refused as lost, and the lock is never released.
    observer.drain();
    tap(reader, "04A1B2C3");
    c.wait_event(&[&format!("access door={door} "), "reason=card_lost "], 1);
    observer.no_edge(OFFICE_LOCK, true, Duration::from_millis(400));
    eventually("the refusal at the central service", || {
        let (_, page) = api(port, &token, "GET", &format!("/events?door={door}"), None);
        page["items"]
            .as_array()?
            .iter()
            .find(|e| e["reason"] == "card_lost")
            .cloned()
    });

    // Stopped cleanly, with everything shipped and no chain break on record.
    let last_seq = http_get(status_port, "/status")["last_seq"]
        .as_u64()
        .unwrap();
    c.stop();
    let (_, page) = api(port, &token, "GET", "/events?order=asc&limit=500", None);
    let seqs: Vec<u64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=last_seq).collect::<Vec<_>>());
    let (status, alarms) = api(port, &token, "GET", "/alarms?state=all", None);
    assert_eq!(status, 200, "{alarms}");
    let kinds: Vec<&Value> = alarms["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["kind"])
        .collect();
    assert!(!kinds.contains(&&Value::from("chain_break")), "{alarms}");
}

/// A config and a policy that disagree about the doors, and a reader that is
/// never plugged in: the running controller says so in `/status`, in its log
/// and with events in the outbox; `check` says so from the cached policy.
#[test]
fn doors_the_policy_does_not_know_and_readers_never_found_are_reported() {
    let dir = Scratch::new("controller-mismatch");
    let socket = dir.path().join("gpio.sock");
    let (_board, _, _) = simulator(&["hil", "gpio", "--socket", socket.to_str().unwrap()]);
    let status_port = free_port();
    let policy_path = dir.path().join("policy.json");
    std::fs::write(&policy_path, serde_json::to_string(&policy(1)).unwrap()).unwrap();
    let config = dir.path().join("controller.toml");
    // Door 10 is in the policy; door 99 is not (a typo for 50, say); the
    // policy's doors 20, 30, 40 and 50 are driven by no door of this config.
    std::fs::write(
        &config,
        format!(
            r#"
controller = 1
data_dir = "{data}"
status_listen = "127.0.0.1:{status_port}"

[gpio]
backend = "virtual"
socket = "{socket}"

[[doors]]
name = "office"
id = 10
kind = "door"
entry_reader = "Never Plugged Reader"
lock_output = {{ pin = {OFFICE_LOCK} }}
contact = {{ pin = {OFFICE_CONTACT}, active_low = true }}

[[doors]]
name = "store"
id = 99
kind = "door"
lock_output = {{ pin = 21 }}
contact = {{ pin = 26, active_low = true }}
rex = {{ pin = {OFFICE_REX} }}
"#,
            data = dir.path().join("data").display(),
            socket = socket.display(),
        ),
    )
    .unwrap();

    // `check` with the policy file, before anything is cached.
    let check = |policy: Option<&Path>| {
        let mut cmd = Command::new(BIN);
        cmd.args(["controller", "check", "--config", config.to_str().unwrap()]);
        if let Some(p) = policy {
            cmd.args(["--policy", p.to_str().unwrap()]);
        }
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    for policy in [Some(policy_path.as_path()), None] {
        let (ok, text) = check(policy);
        if policy.is_none() {
            // Nothing cached yet: the doors cannot be compared, and check says so.
            assert!(ok, "{text}");
            assert!(text.contains("no cached policy"), "{text}");
            continue;
        }
        assert!(!ok, "{text}");
        assert!(text.contains("not in the policy: 99"), "{text}");
        assert!(
            text.contains("no configured door: 20, 30, 40, 50"),
            "{text}"
        );
    }

    let c = Controller::start(&config, Some(&policy_path));
    c.wait_log("the mismatch warning", |l| {
        l.contains("WARN") && l.contains("config and policy disagree")
    });
    c.wait_event(&["config_mismatch", "[99]", "[20,30,40,50]"], 1);
    // The reader is never found on pcscd: offline, with an event.
    c.wait_event(&["device_offline", "Never Plugged Reader"], 1);
    let status = http_get(status_port, "/status");
    assert_eq!(
        status["config_mismatch"]["not_in_policy"],
        serde_json::json!([99])
    );
    assert_eq!(
        status["config_mismatch"]["not_configured"],
        serde_json::json!([20, 30, 40, 50])
    );
    assert_eq!(status["devices"]["Never Plugged Reader"]["online"], false);
    c.stop();

    let path = dir.path().join("data").join("controller.sqlite");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let events = rt.block_on(async {
        let pool = tobira_controller::state::open(&path).await.unwrap();
        let outbox = tobira_controller::outbox::Outbox::open(pool.clone(), ControllerId(1))
            .await
            .unwrap();
        let events = outbox.pending(100_000).await.unwrap();
        pool.close().await;
        events
    });
    let mismatches: Vec<&EventKind> = events
        .iter()
        .map(|e| &e.event.kind)
        .filter(|k| matches!(k, EventKind::ConfigMismatch { .. }))
        .collect();
    assert_eq!(
        mismatches,
        [&EventKind::ConfigMismatch {
            not_in_policy: vec![DoorId(99)],
            not_configured: vec![DoorId(20), DoorId(30), DoorId(40), DoorId(50)],
        }]
    );
    assert!(events.iter().any(|e| matches!(&e.event.kind,
        EventKind::DeviceOffline { device } if device.name == "Never Plugged Reader"
            && device.kind == DeviceKind::CardReader)));

    // `check` now finds the cached policy in data_dir by itself.
    let (ok, text) = check(None);
    assert!(!ok, "{text}");
    assert!(text.contains("cached policy version 1"), "{text}");
    assert!(text.contains("not in the policy: 99"), "{text}");
}

/// Enrollment as one flow, with real processes: an admin asks the central
/// service's API for Kato's finger on module 1; the running controller that
/// drives the module fetches the job at sync, picks a free slot from the
/// module's index table (0 and 1 are on the module, so 2), prompts at the
/// door, captures twice and stores; central records the slot. Meanwhile the
/// module is busy: Sato's tap is refused, never granted. Then Kato's finger
/// opens the L4 door; deleting the enrollment clears the slot on the module.
#[test]
fn enrollment_runs_from_the_api_through_the_controller_to_the_module_and_back() {
    let dir = Scratch::new("enrollment-flow");
    let central = CentralProc::start(&dir);
    let (port, token) = (central.port, central.token.clone());
    let call =
        |method: &str, path: &str, body: Option<Value>| api(port, &token, method, path, body);
    let create = |path: &str, body: Value| central.create(path, body);
    let site = create("/sites", serde_json::json!({"name": "本庁舎"}))["id"].clone();
    let zone =
        |name: &str, level: u8| serde_json::json!({"site_id": site, "name": name, "level": level});
    let office = create("/zones", zone("執務室", 3))["id"].clone();
    let machine = create("/zones", zone("機械室", 4))["id"].clone();
    let registered = create(
        "/controllers",
        serde_json::json!({"site_id": site, "name": "B1 machine room"}),
    );
    let controller = registered["controller"]["id"].as_u64().unwrap();
    let door = create(
        "/doors",
        serde_json::json!({
            "name": "machine room", "kind": "door", "controller_id": controller,
            "outside_zone_id": office, "inside_zone_id": machine,
            "entry_reader": {"biometric": 1}, "exit_reader": null,
        }),
    )["id"]
        .as_u64()
        .unwrap();
    let group = create("/groups", serde_json::json!({"name": "facilities"}))["id"].clone();
    create(
        "/grants",
        serde_json::json!({"group_id": group, "zones": [office, machine]}),
    );
    let staff = |name: &str, card: &str| {
        let id = create(
            "/people",
            serde_json::json!({"kind": "staff", "name": name, "organisation": "管財課"}),
        )["id"]
            .as_u64()
            .unwrap();
        let (status, answer) = call("PUT", &format!("/groups/{group}/members/{id}"), None);
        assert!((200..300).contains(&status), "{answer}");
        create("/cards", serde_json::json!({"uid": card, "person_id": id}));
        id
    };
    let kato = staff("加藤 次郎", KATO_CARD);
    let sato = staff("佐藤 花子", SATO_CARD);
    // Sato was enrolled by hand long ago, in slot 0 of the module.
    create(
        "/enrollments",
        serde_json::json!({"person_id": sato, "module_id": 1, "slot": 0}),
    );

    // The module holds slots 0 (Sato's finger) and 1 (a leftover).
    let pcscd = PrivatePcscd::start().unwrap_or_else(|e| panic!("{e}"));
    let reader = pcscd.slots()[0].clone();
    let socket = dir.path().join("gpio.sock");
    let (_board, _, _) = simulator(&["hil", "gpio", "--socket", socket.to_str().unwrap()]);
    let mut observer = Observer::connect(&socket);
    let link = dir.path().join("finger");
    let control = dir.path().join("finger.ctl");
    let (_finger, _, _) = simulator(&[
        "hil",
        "finger",
        "--link",
        link.to_str().unwrap(),
        "--control",
        control.to_str().unwrap(),
        "--enrolled",
        "0,1",
    ]);
    let finger_control = UnixStream::connect(&control).unwrap();
    finger_control
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let finger = |line: &str| -> Value {
        writeln!(&finger_control, "{line}").unwrap();
        let mut answer = String::new();
        BufReader::new(&finger_control)
            .read_line(&mut answer)
            .unwrap();
        let v: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(v["ok"], true, "{line} → {answer}");
        v
    };

    let status_port = free_port();
    let config = dir.path().join("controller.toml");
    std::fs::write(
        &config,
        format!(
            r#"
controller = {controller}
data_dir = "{data}"
status_listen = "127.0.0.1:{status_port}"
poll_ms = 5

# The test follows people through the log by their ids.
[log]
identifiers = "full"

[gpio]
backend = "virtual"
socket = "{socket}"

[central]
url = "http://127.0.0.1:{port}"
allow_insecure_http = true
secret = "{secret}"
public_key = "{key}"

[[biometric]]
module = 1
name = "machine room finger"
port = "{link}"

[[doors]]
name = "machine room"
id = {door}
kind = "door"
entry_reader = "{reader}"
lock_output = {{ pin = {MACHINE_LOCK} }}
contact = {{ pin = {MACHINE_CONTACT}, active_low = true }}
prompt = {{ pin = {MACHINE_PROMPT} }}
timings = {{ unlock_ms = 500, held_prealarm_ms = 20000, held_alarm_ms = 30000 }}
"#,
            data = dir.path().join("data").display(),
            socket = socket.display(),
            secret = registered["secret"].as_str().unwrap(),
            key = registered["public_key"].as_str().unwrap(),
            link = link.display(),
            reader = reader.name,
        ),
    )
    .unwrap();
    observer.drive(MACHINE_CONTACT, false);
    let c = Controller::start(&config, None);
    let version = eventually("the first policy", || {
        let v = http_get(status_port, "/status")["policy"]["version"].as_u64()?;
        (v > 0).then_some(v)
    });
    c.wait_log("the fingerprint module online", |l| {
        l.contains("biometric module online")
    });

    // Bad requests get clear answers.
    let (status, answer) = call(
        "POST",
        "/enrollment-jobs",
        Some(serde_json::json!({"person_id": 999, "module_id": 1})),
    );
    assert_eq!(status, 404, "{answer}");
    let (status, answer) = call(
        "POST",
        "/enrollment-jobs",
        Some(serde_json::json!({"person_id": kato, "module_id": 7})),
    );
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = call(
        "POST",
        "/enrollment-jobs",
        Some(serde_json::json!({"person_id": sato, "module_id": 1})),
    );
    assert_eq!(status, 409, "{answer}");

    // The admin asks; the controller picks the job up and the door prompts.
    observer.drain();
    let job = create(
        "/enrollment-jobs",
        serde_json::json!({"person_id": kato, "module_id": 1}),
    );
    assert_eq!(job["state"], "pending", "{job}");
    assert_eq!(job["controller_id"].as_u64(), Some(controller));
    let job_id = job["id"].as_u64().unwrap();
    let (status, answer) = call(
        "POST",
        "/enrollment-jobs",
        Some(serde_json::json!({"person_id": kato, "module_id": 1})),
    );
    assert_eq!(
        status, 409,
        "a second request while one is pending: {answer}"
    );
    c.wait_log("the job at the controller", |l| {
        l.contains("enrollment job received") && l.contains(&format!("job={job_id}"))
    });
    c.wait_log("the enrollment prompt", |l| {
        l.contains("enrolling: place the finger")
    });
    observer.edge(MACHINE_PROMPT, true);

    // While the module enrolls, Sato's card cannot be verified: refused, never granted.
    tap(&reader, SATO_CARD);
    c.wait_event(
        &["reason=biometric_unavailable", &format!("person={sato}")],
        1,
    );
    observer.no_edge(MACHINE_LOCK, true, Duration::from_millis(200));

    // Kato puts the same finger down twice.
    finger(r#"{"next":"finger","finger":77,"times":2}"#);
    let done = eventually("the job done at the central service", || {
        let (_, j) = call("GET", &format!("/enrollment-jobs/{job_id}"), None);
        (j["state"] != "pending").then_some(j)
    });
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(
        done["slot"], 2,
        "the lowest slot free on the module and at central: {done}"
    );
    observer.edge(MACHINE_PROMPT, false);
    assert_eq!(finger("slots")["slots"], serde_json::json!([0, 1, 2]));
    let (_, enrollments) = call("GET", &format!("/enrollments?person={kato}"), None);
    assert_eq!(enrollments["items"][0]["slot"], 2, "{enrollments}");
    assert_eq!(enrollments["items"][0]["module_id"], 1, "{enrollments}");
    let (_, audit) = call("GET", "/audit?limit=500", None);
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(actions.contains(&"enrollment.request"), "{actions:?}");
    assert!(actions.contains(&"enrollment.create"), "{actions:?}");

    // The enrollment reaches the controller with the policy; Kato's finger opens the door.
    eventually("the enrollment in the controller's policy", || {
        let v = http_get(status_port, "/status")["policy"]["version"].as_u64()?;
        (v > version).then_some(v)
    });
    observer.drain();
    tap(&reader, KATO_CARD);
    c.wait_event(&["reason=biometric_required", &format!("person={kato}")], 1);
    c.wait_log("the module waiting for Kato's finger", |l| {
        l.contains("waiting for a finger") && l.contains("slot=2")
    });
    finger(r#"{"next":"finger","finger":77}"#);
    c.wait_event(&["reason=granted", &format!("person={kato}")], 1);
    observer.unlock(MACHINE_LOCK, 500);

    // Deleting the enrollment clears the slot on the module too.
    let (status, answer) = call("DELETE", "/enrollments/1/2", None);
    assert_eq!(status, 204, "{answer}");
    let cleared = eventually("the slot-clearing job done", || {
        let (_, page) = call("GET", &format!("/enrollment-jobs?person={kato}"), None);
        page["items"]
            .as_array()?
            .iter()
            .find(|j| j["kind"] == "delete" && j["state"] != "pending")
            .cloned()
    });
    assert_eq!(cleared["state"], "done", "{cleared}");
    assert_eq!(cleared["slot"], 2, "{cleared}");
    assert_eq!(finger("slots")["slots"], serde_json::json!([0, 1]));
    c.stop();
}

/// Taps `card` on the controller's simulated reader `front` with `tobira hil card`.
fn sim_tap(data: &Path, card: &str) -> std::process::Output {
    Command::new(BIN)
        .args(["hil", "card", "--reader", "sim:front", "--uid", card])
        .args(["--data-dir", data.to_str().unwrap()])
        .output()
        .unwrap()
}

#[test]
fn a_door_with_a_simulated_reader_admits_and_refuses_without_pcscd() {
    let dir = Scratch::new("sim-reader-e2e");
    let socket = dir.path().join("gpio.sock");
    let (_board, _, _) = simulator(&["hil", "gpio", "--socket", socket.to_str().unwrap()]);
    let observer = Observer::connect(&socket);
    let data = dir.path().join("data");
    let config = dir.path().join("controller.toml");
    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, serde_json::to_string(&rig::policy(1)).unwrap()).unwrap();
    std::fs::write(
        &config,
        format!(
            r#"
controller = 1
data_dir = "{data}"
status_listen = "127.0.0.1:{status}"
poll_ms = 5

[log]
identifiers = "full"

[gpio]
backend = "virtual"
socket = "{socket}"

[[doors]]
name = "office"
id = 10
kind = "door"
entry_reader = "sim:front"
lock_output = {{ pin = {OFFICE_LOCK} }}
contact = {{ pin = {OFFICE_CONTACT}, active_low = true }}
timings = {{ unlock_ms = {OFFICE_UNLOCK_MS}, held_prealarm_ms = 20000, held_alarm_ms = 30000 }}
"#,
            data = data.display(),
            status = free_port(),
            socket = socket.display(),
        ),
    )
    .unwrap();
    let check = Command::new(BIN)
        .args(["controller", "--config", config.to_str().unwrap(), "check"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let c = Controller::start(&config, Some(&policy));
    c.wait_log("the simulated reader to come online", |l| {
        l.contains("card reader online") && l.contains("sim:front")
    });
    let sock = data.join("readers/front.sock");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the reader's socket is open to others");
    }

    // A staff card tapped through the socket releases the strike.
    observer.drain();
    let out = sim_tap(&data, SATO_CARD);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["reader"], "sim:front", "{answer}");
    observer.unlock(OFFICE_LOCK, OFFICE_UNLOCK_MS);
    c.wait_event(&["door=10", "reason=granted", "person=1"], 1);

    // A card the policy does not know is refused and the strike stays off.
    observer.drain();
    let out = sim_tap(&data, "04FFEE01");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.wait_event(&["door=10", "reason=unknown_card"], 1);
    observer.no_edge(OFFICE_LOCK, true, Duration::from_millis(300));

    // A malformed tap is refused and reaches no door.
    let out = sim_tap(&data, "04FF");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--uid"), "{err}");
    let mut raw = UnixStream::connect(&sock).unwrap();
    raw.set_read_timeout(Some(WAIT)).unwrap();
    writeln!(raw, r#"{{"uid":"{SATO_CARD}","unlock":true}}"#).unwrap();
    let mut answer = String::new();
    BufReader::new(&raw).read_line(&mut answer).unwrap();
    assert!(answer.contains("malformed line"), "{answer}");
    // The reader's name with or without `sim:`, by its socket, with a card type.
    let felica = Command::new(BIN)
        .args(["hil", "card", "--reader", "front", "--uid", SATO_CARD])
        .args(["--socket", sock.to_str().unwrap(), "--card-type", "felica"])
        .output()
        .unwrap();
    assert!(
        felica.status.success(),
        "{}",
        String::from_utf8_lossy(&felica.stderr)
    );
    c.wait_event(&["door=10", "reason=granted", "person=1"], 2);
    observer.unlock(OFFICE_LOCK, OFFICE_UNLOCK_MS);

    let lines = c.stop();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("event recorded") && l.contains("door=10"))
            .count(),
        3,
        "{}",
        lines.join("\n")
    );
    // Nothing of the controller went near PC/SC.
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("PC/SC") || l.contains("pcscd")),
        "{}",
        lines.join("\n")
    );
    assert!(
        !sock.exists(),
        "the reader's socket outlived the controller"
    );
}
