//! Rules set through the central service's API, shown at a real door:
//! `tobira central` and `tobira controller` as separate processes, real
//! card taps through pcscd/vpcd, and every lock edge on the virtual board.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod rig;
mod support;

use std::time::Duration;

use rig::*;
use serde_json::{json, Value};
use support::{Proc, Scratch};

/// Long enough for an unwanted unlock to show on the board after a refusal
/// was recorded (the lock is written in the same step as the event).
const QUIET: Duration = Duration::from_millis(400);

/// A small site as an integrator sets it up through the API: an office (level
/// 3) and a meeting room (level 2) off the grounds, one controller driving
/// both doors, a member of staff with a grant to both rooms, and a citizen
/// who has nothing but what a booking gives.
struct Building {
    /// The central process; `None` while the test has it stopped.
    central: Option<Proc>,
    port: u16,
    token: String,
    second_admin: String,
    site: u64,
    office: u64,
    meeting: u64,
    office_door: u64,
    meeting_door: u64,
    controller: u64,
    secret: String,
    public_key: String,
    citizen: u64,
}

/// The reader slot at the office door, and the one at the meeting room door.
const AT_OFFICE: usize = 0;
const AT_MEETING: usize = 1;
const CITIZEN_CARD: &str = YAMADA_CARD;

impl Building {
    fn set_up(dir: &Scratch) -> Building {
        let CentralProc {
            _proc: central,
            port,
            token,
            second_admin,
        } = CentralProc::start(dir);
        let mut b = Building {
            central: Some(central),
            port,
            token,
            second_admin,
            site: 0,
            office: 0,
            meeting: 0,
            office_door: 0,
            meeting_door: 0,
            controller: 0,
            secret: String::new(),
            public_key: String::new(),
            citizen: 0,
        };
        let id = |v: Value| v["id"].as_u64().unwrap();
        b.site = id(b.create("/sites", json!({"name": "本庁舎"})));
        let zone = |b: &Building, name: &str, level: u8| {
            id(b.create(
                "/zones",
                json!({"site_id": b.site, "name": name, "level": level}),
            ))
        };
        let grounds = zone(&b, "敷地", 0);
        b.office = zone(&b, "執務室", 3);
        b.meeting = zone(&b, "会議室", 2);
        let registered = b.create(
            "/controllers",
            json!({"site_id": b.site, "name": "1F east"}),
        );
        b.controller = registered["controller"]["id"].as_u64().unwrap();
        b.secret = registered["secret"].as_str().unwrap().to_owned();
        b.public_key = registered["public_key"].as_str().unwrap().to_owned();
        let door = |b: &Building, name: &str, inside: u64| {
            id(b.create(
                "/doors",
                json!({
                    "name": name, "kind": "door", "controller_id": b.controller,
                    "outside_zone_id": grounds, "inside_zone_id": inside,
                    "entry_reader": {"biometric": null}, "exit_reader": null,
                }),
            ))
        };
        b.office_door = door(&b, "office", b.office);
        b.meeting_door = door(&b, "meeting room", b.meeting);

        let staff = id(b.create(
            "/people",
            json!({"kind": "staff", "name": "佐藤 花子", "organisation": "総務課"}),
        ));
        b.create("/cards", json!({"uid": SATO_CARD, "person_id": staff}));
        let group = id(b.create("/groups", json!({"name": "総務課"})));
        b.expect(
            "PUT",
            &format!("/groups/{group}/members/{staff}"),
            None,
            204,
        );
        b.create(
            "/grants",
            json!({"group_id": group, "zones": [b.office, b.meeting]}),
        );
        b.citizen = id(b.create("/people", json!({"kind": "citizen", "name": "山田 太郎"})));
        b.create(
            "/cards",
            json!({"uid": CITIZEN_CARD, "person_id": b.citizen}),
        );
        b
    }

    fn create(&self, path: &str, body: Value) -> Value {
        self.expect("POST", path, Some(body), 201)
    }

    /// One API request that must answer `status`; returns the answer.
    fn expect(&self, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
        let (got, answer) = api(self.port, &self.token, method, path, body);
        assert_eq!(got, status, "{method} {path}: {answer}");
        answer
    }

    /// A change that waits for a second admin (202), approved by the second
    /// admin; what applying it gave.
    fn approved(&self, method: &str, path: &str, body: Value) -> Value {
        let pending = self.expect(method, path, Some(body), 202);
        let approve = format!("/approvals/{}/approve", pending["id"]);
        let (got, done) = api(self.port, &self.second_admin, "POST", &approve, None);
        assert_eq!(got, 200, "POST {approve}: {done}");
        assert_eq!(done["state"], "approved", "{done}");
        serde_json::from_str(done["result"].as_str().unwrap()).unwrap()
    }

    /// Changes one of a zone's settings as an administrator does: read the
    /// zone, change the field, put it back.
    fn set_zone_setting(&self, zone: u64, field: &str, value: Value) {
        let mut z = self.expect("GET", &format!("/zones/{zone}"), None, 200);
        z["settings"][field] = value;
        let input = json!({
            "site_id": z["site_id"], "name": z["name"], "level": z["level"],
            "settings": z["settings"],
        });
        self.expect("PUT", &format!("/zones/{zone}"), Some(input), 200);
    }

    /// Writes the controller's config: the office door on reader 0, the
    /// meeting room door on reader 1, and the central service to sync with.
    fn configure(&self, rig: &Rig) {
        let socket = rig.dir.path().join("gpio.sock");
        std::fs::write(
            &rig.config,
            format!(
                r#"
controller = {controller}
data_dir = "{data}"
status_listen = "127.0.0.1:{status_port}"
poll_ms = 5

[gpio]
backend = "virtual"
socket = "{socket}"

[central]
url = "http://127.0.0.1:{port}"
allow_insecure_http = true
secret = "{secret}"
public_key = "{key}"
backoff_min_ms = 20
backoff_max_ms = 200

[[doors]]
name = "office"
id = {office}
kind = "door"
entry_reader = "{r0}"
lock_output = {{ pin = {OFFICE_LOCK} }}
contact = {{ pin = {OFFICE_CONTACT}, active_low = true }}
timings = {{ unlock_ms = 400, held_prealarm_ms = 20000, held_alarm_ms = 30000 }}

[[doors]]
name = "meeting room"
id = {meeting}
kind = "door"
entry_reader = "{r1}"
lock_output = {{ pin = {MEETING_LOCK} }}
contact = {{ pin = {MEETING_CONTACT}, active_low = true }}
timings = {{ unlock_ms = 400, held_prealarm_ms = 20000, held_alarm_ms = 30000 }}
"#,
                controller = self.controller,
                data = rig.dir.path().join("data").display(),
                status_port = rig.status_port,
                socket = socket.display(),
                port = self.port,
                secret = self.secret,
                key = self.public_key,
                office = self.office_door,
                meeting = self.meeting_door,
                r0 = rig.slot(AT_OFFICE).name,
                r1 = rig.slot(AT_MEETING).name,
            ),
        )
        .unwrap();
    }
}

/// The rig, the building and its running controller, which holds the
/// central service's first policy.
fn start(test: &str, before_start: impl FnOnce(&Building)) -> (Rig, Building, Controller) {
    let mut rig = Rig::start(test, &[]);
    let b = Building::set_up(&rig.dir);
    before_start(&b);
    b.configure(&rig);
    // Both doors shut, as their contacts report it.
    rig.observer.drive(OFFICE_CONTACT, false);
    rig.observer.drive(MEETING_CONTACT, false);
    let c = start_watching_cards(&rig, None);
    eventually("the first policy", || {
        (policy_version(&rig) > 0).then_some(())
    });
    (rig, b, c)
}

/// The policy version the running controller has in force.
fn policy_version(rig: &Rig) -> u64 {
    http_get(rig.status_port, "/status")["policy"]["version"]
        .as_u64()
        .unwrap_or(0)
}

/// Makes a change through the API and waits until the running controller
/// has a newer policy than before it.
fn through_sync<T>(rig: &Rig, change: impl FnOnce() -> T) -> T {
    let before = policy_version(rig);
    let answer = change();
    eventually("the change at the controller", || {
        (policy_version(rig) > before).then_some(())
    });
    answer
}

/// One door as the test drives it: its reader slot, its id and its lock pin.
#[derive(Debug, Clone, Copy)]
struct At {
    reader: usize,
    door: u64,
    lock: u8,
}

impl Building {
    fn office_door(&self) -> At {
        At {
            reader: AT_OFFICE,
            door: self.office_door,
            lock: OFFICE_LOCK,
        }
    }

    fn meeting_door(&self) -> At {
        At {
            reader: AT_MEETING,
            door: self.meeting_door,
            lock: MEETING_LOCK,
        }
    }
}

/// Taps `card` at a door and waits for the door's next decision with
/// `reason`; returns the recorded event.
fn tap_for(rig: &Rig, c: &Controller, at: At, card: &str, reason: &str) -> String {
    let parts = [
        format!("access door={} ", at.door),
        format!("reason={reason} "),
    ];
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let seen = c.count_events(&parts);
    rig.observer.drain();
    tap_and_lift(rig, c, at.reader, card);
    c.wait_event(&parts, seen + 1)
}

/// The card opens the door: the lock is released, then relocks.
fn admitted(rig: &Rig, c: &Controller, at: At, card: &str, reason: &str) {
    tap_for(rig, c, at, card, reason);
    rig.observer.edge(at.lock, true);
    rig.observer.edge(at.lock, false);
}

/// The card is refused with `reason` and the lock is never released.
fn refused(rig: &Rig, c: &Controller, at: At, card: &str, reason: &str) {
    tap_for(rig, c, at, card, reason);
    rig.observer.no_edge(at.lock, true, QUIET);
}

/// Threat levels set for the whole site through `PUT /sites/{id}/threat`
/// (each approved by a second admin):
/// lockdown refuses a card that was just admitted, without touching the
/// lock; "elevated" makes the level-3 office decide as level 4 (card and
/// finger; its reader has no finger module, so staff are refused with
/// `threat_level`) while the level-2 meeting room, deciding as level 3,
/// still admits staff; back to normal, the office admits again.
#[test]
fn a_site_lockdown_and_threat_level_set_through_the_api_reach_the_door() {
    let (rig, b, c) = start("rules-site-threat", |_| {});
    let (office, meeting) = (b.office_door(), b.meeting_door());
    let threat = |level: &str| {
        let site = through_sync(&rig, || {
            b.approved(
                "PUT",
                &format!("/sites/{}/threat", b.site),
                json!({"threat": level}),
            )
        });
        assert_eq!(site["threat"], level, "{site}");
    };

    admitted(&rig, &c, office, SATO_CARD, "granted");

    threat("lockdown");
    refused(&rig, &c, office, SATO_CARD, "lockdown");
    refused(&rig, &c, meeting, SATO_CARD, "lockdown");

    threat("elevated");
    refused(&rig, &c, office, SATO_CARD, "threat_level");
    admitted(&rig, &c, meeting, SATO_CARD, "granted");

    threat("normal");
    admitted(&rig, &c, office, SATO_CARD, "granted");
}

/// A zone's own threat level through `PUT /zones/{id}/threat`: a lockdown
/// of the office refuses there without touching its lock, the meeting room
/// next to it still admits, and lifting it admits at the office again.
#[test]
fn a_zone_lockdown_set_through_the_api_reaches_only_that_zones_door() {
    let (rig, b, c) = start("rules-zone-threat", |_| {});
    let (office, meeting) = (b.office_door(), b.meeting_door());
    let threat = |level: &str| {
        let zone = through_sync(&rig, || {
            b.approved(
                "PUT",
                &format!("/zones/{}/threat", b.office),
                json!({"threat": level}),
            )
        });
        assert_eq!(zone["settings"]["threat"], level, "{zone}");
    };

    admitted(&rig, &c, office, SATO_CARD, "granted");

    threat("lockdown");
    refused(&rig, &c, office, SATO_CARD, "lockdown");
    admitted(&rig, &c, meeting, SATO_CARD, "granted");

    threat("normal");
    admitted(&rig, &c, office, SATO_CARD, "granted");
}

/// Moves the controller's record of when the central service last confirmed
/// its policy `age_ms` into the past, as an outage that long leaves it; the
/// controller must be stopped. (The shortest maximum offline age the API
/// accepts is a minute: this stands in for waiting it out.)
fn backdate_confirmation(rig: &Rig, age_ms: i64) {
    let path = rig.dir.path().join("data").join("controller.sqlite");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = tobira_controller::state::open(&path).await.unwrap();
        let policy = tobira_controller::policy::PolicyStore::load(pool.clone())
            .await
            .unwrap();
        policy
            .confirm(tobira_firmware::Timestamp(now_ms() - age_ms))
            .await
            .unwrap();
        pool.close().await;
    });
}

/// `cache_too_old`: the office zone allows a minute without the central
/// service (`max_offline_age_ms`, set through the API). Connected, the
/// office admits. The central service goes down and the controller, cut off
/// for longer than that, refuses at the office without touching the lock,
/// while the meeting room (no maximum age) still admits. Once the central
/// service is back the policy is confirmed again and the office admits.
#[test]
fn a_controller_cut_off_past_the_zones_maximum_offline_age_refuses_until_sync_is_back() {
    const MAX_AGE_MS: i64 = 60_000;
    let (rig, mut b, c) = start("rules-cache-too-old", |b| {
        b.set_zone_setting(b.office, "max_offline_age_ms", json!(MAX_AGE_MS));
    });
    let (office, meeting) = (b.office_door(), b.meeting_door());
    admitted(&rig, &c, office, SATO_CARD, "granted");

    // The central service stops; the controller is restarted during the
    // outage with its last confirmation two maximum ages old.
    drop(b.central.take());
    c.stop();
    backdate_confirmation(&rig, 2 * MAX_AGE_MS);
    let c = start_watching_cards(&rig, None);
    let age = http_get(rig.status_port, "/status")["policy"]["age_ms"]
        .as_i64()
        .unwrap();
    assert!(age > MAX_AGE_MS, "policy age {age} ms");
    refused(&rig, &c, office, SATO_CARD, "cache_too_old");
    admitted(&rig, &c, meeting, SATO_CARD, "granted");

    // The central service is back at the same address: sync confirms the policy.
    let back = now_ms();
    b.central = Some(central_again(&rig.dir, b.port));
    eventually("the policy confirmed again", || {
        let confirmed =
            http_get(rig.status_port, "/status")["policy"]["confirmed_at_ms"].as_i64()?;
        (confirmed >= back).then_some(())
    });
    admitted(&rig, &c, office, SATO_CARD, "granted");
}

/// `granted_by_booking`: a citizen with no grant books the meeting room
/// through the API. A booking for later today does not open the door yet;
/// moved to now, the card opens it (with the lock released); cancelled, the
/// card opens nothing again (the citizen stays known, with no booking).
#[test]
fn a_booking_made_through_the_api_admits_a_citizen_only_within_its_window() {
    let (rig, b, c) = start("rules-booking", |_| {});
    let meeting = b.meeting_door();
    const HOUR: i64 = 3_600_000;
    let window = |start: i64, end: i64| {
        json!({"person_id": b.citizen, "room_zone_id": b.meeting, "path": [],
               "start_at": start, "end_at": end})
    };

    let now = now_ms();
    let booking = through_sync(&rig, || {
        b.create("/bookings", window(now + HOUR, now + 2 * HOUR))
    })["id"]
        .as_u64()
        .unwrap();
    refused(&rig, &c, meeting, CITIZEN_CARD, "no_grant");
    // The booking came as a delta the controller could apply: the booked
    // citizen, new to this controller, came with it.
    let sync = &http_get(rig.status_port, "/status")["sync"];
    assert_eq!(sync["policy_refused"], 0, "{sync}");

    let now = now_ms();
    through_sync(&rig, || {
        b.expect(
            "PUT",
            &format!("/bookings/{booking}"),
            Some(window(now - 60_000, now + HOUR)),
            200,
        )
    });
    admitted(&rig, &c, meeting, CITIZEN_CARD, "granted_by_booking");

    through_sync(&rig, || {
        b.expect("DELETE", &format!("/bookings/{booking}"), None, 204)
    });
    refused(&rig, &c, meeting, CITIZEN_CARD, "no_grant");
}

/// The live monitor in a real Chromium (Debian `chromium`): a security
/// reviewer watches `/monitor` while cards are tapped at the running
/// controller's doors; the granted entry and then a refusal appear without
/// a reload, newest on top; across a restart of the central service the page
/// reconnects by itself and shows the entry made while it was down.
#[test]
fn a_tap_at_a_running_controller_shows_on_the_live_monitor_in_a_real_browser() {
    use fantoccini::Locator;
    use support::browser::*;

    let (rig, mut b, c) = start("rules-monitor", |_| {});
    let db = format!("sqlite://{}", rig.dir.path().join("central.db").display());
    create_user(&db, "kenji", "security");
    let base = format!("http://127.0.0.1:{}", b.port);
    let office = b.office_door();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let profile = rig.dir.path().join("chromium");
    with_chrome(&runtime, &profile, |client| async move {
        client.goto(&format!("{base}/monitor")).await.unwrap();
        submit_login(&client, "kenji", PASSWORD).await;
        until_path(&client, "/monitor").await;
        // The stream is open before anything is tapped.
        until_text(&client, "ライブ接続中").await;
        let events = || async {
            client
                .find(Locator::Id("events"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        };
        assert!(!events().await.contains("佐藤"), "{}", events().await);

        admitted(&rig, &c, office, SATO_CARD, "granted");
        until_text(&client, "佐藤 花子").await;
        let row = client
            .find(Locator::Css("#events tr:first-child"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for part in ["office", "許可", "入室", "佐藤 花子", SATO_CARD] {
            assert!(row.contains(part), "{part:?} not in {row:?}");
        }
        shot(&client, "monitor-ja").await;

        // A citizen without a booking is in no controller's policy.
        refused(&rig, &c, b.meeting_door(), CITIZEN_CARD, "unknown_card");
        until_text(&client, "未登録のカード").await;
        let first = client
            .find(Locator::Css("#events tr:first-child"))
            .await
            .unwrap();
        let row = first.text().await.unwrap();
        for part in ["meeting room", "未登録のカード", "拒否", CITIZEN_CARD] {
            assert!(row.contains(part), "{part:?} not in {row:?}");
        }
        // Still the same page: nothing was reloaded.
        assert_eq!(path_of(&client).await, "/monitor");

        // The central service goes down: the page says so and keeps trying;
        // the door goes on deciding, and once central is back the page
        // reconnects by itself and shows what happened meanwhile.
        let rows_before = client
            .find_all(Locator::Css("#events tr"))
            .await
            .unwrap()
            .len();
        drop(b.central.take());
        until_text(&client, "再接続します").await;
        admitted(&rig, &c, office, SATO_CARD, "granted");
        // Kept until the steps end, when the test is done with it.
        let _central = central_again(&rig.dir, b.port);
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let rows = client
                .find_all(Locator::Css("#events tr"))
                .await
                .unwrap()
                .len();
            if rows == rows_before + 1 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{rows} rows: {}",
                client
                    .find(Locator::Id("events"))
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        until_text(&client, "ライブ接続中").await;
        let row = client
            .find(Locator::Css("#events tr:first-child"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(row.contains("office") && row.contains("許可"), "{row:?}");
        assert_eq!(path_of(&client).await, "/monitor");

        client
            .goto(&format!("{base}/lang/en?next=/monitor"))
            .await
            .unwrap();
        until_text(&client, "Live").await;
        until_text(&client, "Unknown card").await;
        shot(&client, "monitor-en").await;
    });
}

/// The alarm console in a real Chromium: the office door is forced open at
/// the running controller; the alarm reaches `/alarms` at priority 1; an
/// operator's blank comment is refused beside the form, a real one
/// acknowledges it; it cannot be cleared while the door stays open, and can
/// once the door reports it shut; then it is in the cleared list with both
/// comments.
#[test]
fn a_forced_door_is_acknowledged_and_cleared_on_the_alarm_console_in_a_real_browser() {
    use fantoccini::Locator;
    use support::browser::*;

    let (mut rig, b, c) = start("rules-alarms", |_| {});
    let db = format!("sqlite://{}", rig.dir.path().join("central.db").display());
    create_user(&db, "mori", "operator");
    let base = format!("http://127.0.0.1:{}", b.port);
    let door = b.office_door;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let profile = rig.dir.path().join("chromium");
    with_chrome(&runtime, &profile, |client| async move {
        rig.observer.drive(OFFICE_CONTACT, true);
        c.wait_event(&["door_forced", &format!("\"door\":{door}")], 1);

        client.goto(&format!("{base}/alarms")).await.unwrap();
        submit_login(&client, "mori", PASSWORD).await;
        until_path(&client, "/alarms").await;
        // Uploaded within moments; the console is read when it opens.
        let deadline = std::time::Instant::now() + WAIT;
        while !main_text(&client).await.contains("扉のこじ開け") {
            assert!(
                std::time::Instant::now() < deadline,
                "{}",
                main_text(&client).await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            client.refresh().await.unwrap();
        }
        let alarm = client.find(Locator::Css("article.alarm")).await.unwrap();
        let id = alarm.attr("id").await.unwrap().unwrap();
        let text = alarm.text().await.unwrap();
        for part in ["優先度 1", "扉のこじ開け", "office", "継続中", "未確認"] {
            assert!(text.contains(part), "{part:?} not in {text:?}");
        }
        let number = id.trim_start_matches("alarm-").to_string();

        // A comment of blanks passes the browser's `required` and is refused
        // by the service, beside this alarm's form.
        fill(&client, &format!("ack-{number}"), "   ").await;
        click(&client, &format!("#{id} form button[type=submit]")).await;
        until_text(&client, "say what was found or done").await;
        fill(
            &client,
            &format!("ack-{number}"),
            "警備員が現場を確認、異常なし",
        )
        .await;
        click(&client, &format!("#{id} form button[type=submit]")).await;
        until_text(&client, "警備員が現場を確認、異常なし").await;
        let text = client
            .find(Locator::Id(&id))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            text.contains("mori") && text.contains("まだ解除できません"),
            "{text:?}"
        );
        shot(&client, "alarms-ja").await;

        // The door is shut: the cause is gone and the alarm can be cleared.
        rig.observer.drive(OFFICE_CONTACT, false);
        c.wait_event(&["door_closed", &format!("\"door\":{door}")], 1);
        let deadline = std::time::Instant::now() + WAIT;
        while client
            .find(Locator::Id(&format!("clear-{number}")))
            .await
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{}",
                main_text(&client).await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            client.refresh().await.unwrap();
        }
        fill(&client, &format!("clear-{number}"), "扉を閉めた").await;
        click(&client, &format!("#{id} form button[type=submit]")).await;
        until_text(&client, "対応中のアラームはありません").await;
        client
            .goto(&format!("{base}/alarms?state=cleared"))
            .await
            .unwrap();
        let text = client
            .find(Locator::Id(&id))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for part in ["警備員が現場を確認、異常なし", "扉を閉めた", "解消"] {
            assert!(text.contains(part), "{part:?} not in {text:?}");
        }
        client
            .goto(&format!("{base}/lang/en?next=/alarms?state=cleared"))
            .await
            .unwrap();
        until_text(&client, "Door forced").await;
        shot(&client, "alarms-en").await;
    });
}

/// Waits, reloading, until the page's main text contains `needle`.
async fn until_reloaded_text(client: &fantoccini::Client, needle: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    while !support::browser::main_text(client).await.contains(needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "{needle:?} not in {}",
            support::browser::main_text(client).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        client.refresh().await.unwrap();
    }
}

/// The lockdown console in a real Chromium with a running controller: an
/// operator locks the office down (after ticking the confirmation), the page
/// shows when it reached the controller, the office door refuses with
/// `lockdown` while the meeting room still admits; the operator has no
/// release button, an admin releases it with a comment, the release reaches
/// the controller and the office admits again.
#[test]
fn a_lockdown_started_on_the_console_reaches_the_door_and_an_admin_releases_it() {
    use support::browser::*;

    let (rig, b, c) = start("rules-lockdown", |_| {});
    let db = format!("sqlite://{}", rig.dir.path().join("central.db").display());
    create_user(&db, "mori", "operator");
    create_user(&db, "aiko", "admin");
    let base = format!("http://127.0.0.1:{}", b.port);
    let (office, meeting) = (b.office_door(), b.meeting_door());
    admitted(&rig, &c, office, SATO_CARD, "granted");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let profile = rig.dir.path().join("chromium");
    with_chrome(&runtime, &profile, |client| async move {
        client.goto(&format!("{base}/lockdown")).await.unwrap();
        submit_login(&client, "mori", PASSWORD).await;
        until_path(&client, "/lockdown").await;
        until_text(&client, "実施中の封鎖はありません。").await;
        let before = policy_version(&rig);
        choose(&client, "scope", &format!("zone:{}", b.office)).await;
        fill(&client, "reason", "不審者の通報（2階東側）").await;
        click(&client, "#confirm").await;
        click(&client, "form[action='/lockdown'] button[type=submit]").await;
        until_text(&client, "不審者の通報（2階東側）").await;
        // The controller fetches it at once (an urgent change), and the
        // console shows when.
        until_reloaded_text(&client, "すべてのコントローラーに届きました").await;
        assert!(policy_version(&rig) > before);
        let text = main_text(&client).await;
        assert!(
            text.contains("封鎖中") && text.contains("封鎖の解除は管理者が行います。"),
            "{text}"
        );
        assert!(!text.contains("未到達"), "{text}");
        refused(&rig, &c, office, SATO_CARD, "lockdown");
        admitted(&rig, &c, meeting, SATO_CARD, "granted");
        shot(&client, "lockdown-ja").await;

        logout(&client).await;
        client.goto(&format!("{base}/lockdown")).await.unwrap();
        submit_login(&client, "aiko", PASSWORD).await;
        until_path(&client, "/lockdown").await;
        fill(&client, "release-1", "警備員が確認、不審者なし").await;
        click(&client, "#release-confirm-1").await;
        let before = policy_version(&rig);
        click(&client, "#lockdown-1 form button[type=submit]").await;
        until_text(&client, "実施中の封鎖はありません。").await;
        until_reloaded_text(&client, "警備員が確認、不審者なし").await;
        eventually("the release at the controller", || {
            (policy_version(&rig) > before).then_some(())
        });
        admitted(&rig, &c, office, SATO_CARD, "granted");
        client
            .goto(&format!("{base}/lang/en?next=/lockdown"))
            .await
            .unwrap();
        until_text(&client, "Released lockdowns").await;
        // The release reached the controller: no "Not yet" in its row.
        until_reloaded_text(&client, "Release reached").await;
        let deadline = std::time::Instant::now() + WAIT;
        while main_text(&client).await.contains("Not yet") {
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(200)).await;
            client.refresh().await.unwrap();
        }
        // The released one, in the screenshot.
        client
            .goto(&format!("{base}/lockdown#lockdown-1"))
            .await
            .unwrap();
        until_text(&client, "Released lockdowns").await;
        shot(&client, "lockdown-en").await;
    });
}
