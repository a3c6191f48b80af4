//! Freshness of policy under attack: a real `tobira controller` syncs with a
//! real `tobira central` through a hostile HTTP proxy (a tokio task in the
//! test) that swallows policy changes or replays captured answers. Only a
//! signed answer bound to the controller's own nonce may confirm or change
//! its policy, so the zone's maximum offline age still runs out and a replayed
//! snapshot never reaches an empty cache.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod rig;
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rig::*;
use serde_json::{json, Value};
use support::{Proc, Scratch};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The shortest maximum offline age the API accepts.
const MAX_AGE_MS: i64 = 60_000;
/// Long enough for an unwanted unlock to show on the board after a refusal.
const QUIET: Duration = Duration::from_millis(400);
const AT_OFFICE: usize = 0;
const AT_MEETING: usize = 1;

/// What the proxy does with the sync calls it sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Everything goes through; the last answers to snapshot, delta and
    /// watch calls are captured for later replay.
    Pass,
    /// Delta answers become 204 or a replay of a captured "up to date"
    /// answer; watch answers become `version == since` (unsigned) or a replay
    /// of a captured watch answer. The real change never reaches the controller.
    Suppress,
    /// Snapshot requests get the captured snapshot answer.
    Replay,
}

#[derive(Debug)]
struct ProxyState {
    mode: Mode,
    snapshot: Option<Vec<u8>>,
    delta: Option<Vec<u8>>,
    watch: Option<Vec<u8>>,
    /// Answers the proxy made up or replayed instead of central's.
    forged: usize,
}

/// A man in the middle between the controller and the central service.
struct Proxy {
    port: u16,
    state: Arc<Mutex<ProxyState>>,
    _runtime: tokio::runtime::Runtime,
}

impl Proxy {
    fn start(central: u16) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(TcpListener::bind(("127.0.0.1", 0)))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(ProxyState {
            mode: Mode::Pass,
            snapshot: None,
            delta: None,
            watch: None,
            forged: 0,
        }));
        let shared = Arc::clone(&state);
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let _ = serve(client, central, state).await;
                });
            }
        });
        Proxy {
            port,
            state,
            _runtime: runtime,
        }
    }

    fn set(&self, mode: Mode) {
        let mut s = self.state.lock().unwrap();
        s.mode = mode;
        s.forged = 0;
    }

    fn forged(&self) -> usize {
        self.state.lock().unwrap().forged
    }

    fn captured(&self, what: impl Fn(&ProxyState) -> bool) -> bool {
        what(&self.state.lock().unwrap())
    }
}

/// One request per connection (the proxy forces `Connection: close`).
async fn serve(
    mut client: TcpStream,
    central: u16,
    state: Arc<Mutex<ProxyState>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).await? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let target = request_line.split(' ').nth(1).unwrap_or("/").to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .map(str::to_owned)
    };
    let mut length = 0usize;
    let mut forwarded = format!("{request_line}\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("connection:") || lower.starts_with("keep-alive:") {
            continue;
        }
        forwarded.push_str(line);
        forwarded.push_str("\r\n");
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    let mut body = vec![0u8; length];
    client.read_exact(&mut body).await?;

    let mode = state.lock().unwrap().mode;
    let forged = match (mode, path) {
        (Mode::Suppress, "/sync/v1/delta") => {
            let mut s = state.lock().unwrap();
            s.forged += 1;
            // Alternate: a bare 204, then a replay of central's last "up to date".
            Some(match (&s.delta, s.forged % 2) {
                (Some(captured), 0) => captured.clone(),
                _ => b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_vec(),
            })
        }
        (Mode::Suppress, "/sync/v1/watch") => {
            // Held like central's long-poll, so the controller does not spin.
            let wait = param("wait_ms")
                .and_then(|w| w.parse().ok())
                .unwrap_or(0u64);
            tokio::time::sleep(Duration::from_millis(wait.min(1_000))).await;
            let since = param("since").unwrap_or_default();
            let mut s = state.lock().unwrap();
            s.forged += 1;
            Some(match (&s.watch, s.forged % 2) {
                (Some(captured), 0) => captured.clone(),
                _ => {
                    let answer = format!(r#"{{"version":{since},"urgent":false}}"#);
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                        answer.len()
                    )
                    .into_bytes()
                }
            })
        }
        (Mode::Replay, "/sync/v1/snapshot") => {
            let mut s = state.lock().unwrap();
            s.forged += 1;
            s.snapshot.clone()
        }
        _ => None,
    };
    let answer = match forged {
        Some(answer) => answer,
        None => {
            let mut upstream = TcpStream::connect(("127.0.0.1", central)).await?;
            upstream.write_all(forwarded.as_bytes()).await?;
            upstream.write_all(&body).await?;
            let mut answer = Vec::new();
            upstream.read_to_end(&mut answer).await?;
            if mode == Mode::Pass && answer.starts_with(b"HTTP/1.1 2") {
                let mut s = state.lock().unwrap();
                match path {
                    "/sync/v1/snapshot" => s.snapshot = Some(answer.clone()),
                    "/sync/v1/delta" => s.delta = Some(answer.clone()),
                    "/sync/v1/watch" => s.watch = Some(answer.clone()),
                    _ => {}
                }
            }
            answer
        }
    };
    client.write_all(&answer).await?;
    client.shutdown().await
}

/// A site set up through the API: an office (level 3, a minute's maximum
/// offline age) and a meeting room (level 2) on one controller, and a member
/// of staff with a card and a grant to both.
struct Site {
    _central: Proc,
    port: u16,
    token: String,
    office_door: u64,
    meeting_door: u64,
    controller: u64,
    secret: String,
    public_key: String,
}

impl Site {
    fn set_up(dir: &Scratch) -> Site {
        let CentralProc {
            _proc: central,
            port,
            token,
            ..
        } = CentralProc::start(dir);
        let create = |path: &str, body: Value| -> Value {
            let (status, answer) = api(port, &token, "POST", path, Some(body));
            assert_eq!(status, 201, "POST {path}: {answer}");
            answer
        };
        let id = |v: Value| v["id"].as_u64().unwrap();
        let site = id(create("/sites", json!({"name": "本庁舎"})));
        let grounds = id(create(
            "/zones",
            json!({"site_id": site, "name": "敷地", "level": 0}),
        ));
        let office = id(create(
            "/zones",
            json!({"site_id": site, "name": "執務室", "level": 3}),
        ));
        let meeting = id(create(
            "/zones",
            json!({"site_id": site, "name": "会議室", "level": 2}),
        ));
        let (status, mut z) = api(port, &token, "GET", &format!("/zones/{office}"), None);
        assert_eq!(status, 200, "{z}");
        z["settings"]["max_offline_age_ms"] = json!(MAX_AGE_MS);
        let input =
            json!({"site_id": site, "name": z["name"], "level": 3, "settings": z["settings"]});
        let (status, answer) = api(
            port,
            &token,
            "PUT",
            &format!("/zones/{office}"),
            Some(input),
        );
        assert_eq!(status, 200, "{answer}");
        let registered = create("/controllers", json!({"site_id": site, "name": "1F east"}));
        let controller = registered["controller"]["id"].as_u64().unwrap();
        let door = |name: &str, inside: u64| {
            id(create(
                "/doors",
                json!({
                    "name": name, "kind": "door", "controller_id": controller,
                    "outside_zone_id": grounds, "inside_zone_id": inside,
                    "entry_reader": {"biometric": null}, "exit_reader": null,
                }),
            ))
        };
        let office_door = door("office", office);
        let meeting_door = door("meeting room", meeting);
        let staff = id(create(
            "/people",
            json!({"kind": "staff", "name": "佐藤 花子", "organisation": "総務課"}),
        ));
        create("/cards", json!({"uid": SATO_CARD, "person_id": staff}));
        let group = id(create("/groups", json!({"name": "総務課"})));
        let (status, answer) = api(
            port,
            &token,
            "PUT",
            &format!("/groups/{group}/members/{staff}"),
            None,
        );
        assert_eq!(status, 204, "{answer}");
        create(
            "/grants",
            json!({"group_id": group, "zones": [office, meeting]}),
        );
        Site {
            _central: central,
            port,
            token,
            office_door,
            meeting_door,
            controller,
            secret: registered["secret"].as_str().unwrap().to_owned(),
            public_key: registered["public_key"].as_str().unwrap().to_owned(),
        }
    }

    /// Reports Sato's card lost at the central service.
    fn report_lost(&self) {
        let (status, answer) = api(
            self.port,
            &self.token,
            "POST",
            &format!("/cards/{SATO_CARD}/lost"),
            None,
        );
        assert_eq!(status, 200, "{answer}");
    }

    /// The controller's config, syncing through the proxy on `via`.
    fn configure(&self, rig: &Rig, via: u16) {
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
url = "http://127.0.0.1:{via}"
allow_insecure_http = true
secret = "{secret}"
public_key = "{key}"
watch_ms = 1000
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
                socket = rig.dir.path().join("gpio.sock").display(),
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

fn status(rig: &Rig) -> Value {
    http_get(rig.status_port, "/status")
}

fn policy_version(rig: &Rig) -> u64 {
    status(rig)["policy"]["version"].as_u64().unwrap_or(0)
}

/// Taps Sato's card at a door and waits for the decision with `reason`.
fn tap_for(rig: &Rig, c: &Controller, reader: usize, door: u64, reason: &str) {
    let parts = [format!("access door={door} "), format!("reason={reason} ")];
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let seen = c.count_events(&parts);
    rig.observer.drain();
    tap_and_lift(rig, c, reader, SATO_CARD);
    c.wait_event(&parts, seen + 1);
}

fn refused(rig: &Rig, c: &Controller, reader: usize, door: u64, lock: u8, reason: &str) {
    tap_for(rig, c, reader, door, reason);
    rig.observer.no_edge(lock, true, QUIET);
}

fn admitted(rig: &Rig, c: &Controller, reader: usize, door: u64, lock: u8, reason: &str) {
    tap_for(rig, c, reader, door, reason);
    rig.observer.edge(lock, true);
    rig.observer.edge(lock, false);
}

/// Moves the stopped controller's last confirmation `age_ms` into the past.
fn backdate_confirmation(rig: &Rig, at_ms: i64) {
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
            .confirm(tobira_firmware::Timestamp(at_ms))
            .await
            .unwrap();
        pool.close().await;
    });
}

fn start_rig(test: &str) -> (Rig, Site, Proxy) {
    let mut rig = Rig::start(test, &[]);
    let site = Site::set_up(&rig.dir);
    let proxy = Proxy::start(site.port);
    site.configure(&rig, proxy.port);
    rig.observer.drive(OFFICE_CONTACT, false);
    rig.observer.drive(MEETING_CONTACT, false);
    (rig, site, proxy)
}

/// A proxy swallows the lost-card change: delta answers become 204 (or a
/// replay of central's last "up to date"), watch answers say "no change".
/// The controller must not take any of that as a confirmation: its policy
/// age keeps growing, and once it passes the office zone's maximum offline
/// age the office refuses with `cache_too_old` (on main the 204 and the
/// watch answer confirmed the old policy, so the lost card kept opening the
/// office). When the proxy lets central through again, the lost card is
/// refused as lost.
#[test]
fn a_proxy_that_swallows_a_lost_card_cannot_keep_the_old_policy_fresh() {
    let (rig, site, proxy) = start_rig("fresh-suppress");
    // First start: a snapshot through the proxy (captured). Second start: a
    // delta request answered "up to date" (captured) and a watch (captured).
    let c = start_watching_cards(&rig, None);
    eventually("the first policy", || {
        (policy_version(&rig) > 0).then_some(())
    });
    c.stop();
    let c = start_watching_cards(&rig, None);
    eventually("central's answers captured", || {
        proxy
            .captured(|s| s.delta.is_some() && s.watch.is_some())
            .then_some(())
    });
    admitted(
        &rig,
        &c,
        AT_OFFICE,
        site.office_door,
        OFFICE_LOCK,
        "granted",
    );
    let held = policy_version(&rig);
    c.stop();

    // The attack: the card is reported lost while the proxy hides it, and
    // the controller's last real confirmation is almost a maximum age old.
    proxy.set(Mode::Suppress);
    site.report_lost();
    let confirmed = now_ms() - MAX_AGE_MS + 3_000;
    backdate_confirmation(&rig, confirmed);
    let c = start_watching_cards(&rig, None);
    eventually("the proxy to forge answers", || {
        (proxy.forged() >= 4).then_some(())
    });
    eventually("the policy age to pass the maximum offline age", || {
        let age = status(&rig)["policy"]["age_ms"].as_i64()?;
        (age > MAX_AGE_MS).then_some(())
    });
    let s = status(&rig);
    assert_eq!(s["policy"]["version"], held, "{s}");
    assert_eq!(
        s["policy"]["confirmed_at_ms"].as_i64(),
        Some(confirmed),
        "a forged answer confirmed the policy: {s}"
    );
    assert!(s["sync"]["policy_refused"].as_u64().unwrap() > 0, "{s}");
    refused(
        &rig,
        &c,
        AT_OFFICE,
        site.office_door,
        OFFICE_LOCK,
        "cache_too_old",
    );
    // The meeting room has no maximum age: it keeps deciding offline.
    admitted(
        &rig,
        &c,
        AT_MEETING,
        site.meeting_door,
        MEETING_LOCK,
        "granted",
    );

    // Central gets through again: the change arrives and is confirmed.
    proxy.set(Mode::Pass);
    eventually("the lost card at the controller", || {
        (policy_version(&rig) > held).then_some(())
    });
    refused(
        &rig,
        &c,
        AT_OFFICE,
        site.office_door,
        OFFICE_LOCK,
        "card_lost",
    );
    let age = status(&rig)["policy"]["age_ms"].as_i64().unwrap();
    assert!(age < MAX_AGE_MS, "policy age {age} ms after a real sync");
}

/// A re-imaged controller (empty cache) behind a proxy that replays a
/// snapshot captured before the card was reported lost: the snapshot is
/// signed by central, but not for this request, so it is refused and every
/// door stays shut (on main it was installed and the lost card opened the
/// office). Once the real central answers, the card is refused as lost.
#[test]
fn a_replayed_snapshot_is_refused_by_a_controller_with_an_empty_cache() {
    let (rig, site, proxy) = start_rig("fresh-replay");
    let c = start_watching_cards(&rig, None);
    eventually("the first policy", || {
        (policy_version(&rig) > 0).then_some(())
    });
    assert!(proxy.captured(|s| s.snapshot.is_some()));
    c.stop();

    site.report_lost();
    std::fs::remove_dir_all(rig.dir.path().join("data")).unwrap();
    proxy.set(Mode::Replay);
    let c = start_watching_cards(&rig, None);
    eventually("the proxy to replay the snapshot", || {
        (proxy.forged() >= 1).then_some(())
    });
    // Refused (and asked again), or installed.
    eventually("the replay refused or installed", || {
        let s = status(&rig);
        (s["sync"]["policy_refused"].as_u64()? >= 2 || policy_version(&rig) > 0).then_some(())
    });
    let s = status(&rig);
    assert_eq!(
        s["policy"]["version"], 0,
        "a replayed snapshot was installed: {s}"
    );
    assert!(proxy.forged() >= 2, "the controller did not ask again");
    refused(
        &rig,
        &c,
        AT_OFFICE,
        site.office_door,
        OFFICE_LOCK,
        "unknown_door",
    );

    proxy.set(Mode::Pass);
    eventually("central's own snapshot", || {
        (policy_version(&rig) > 0).then_some(())
    });
    refused(
        &rig,
        &c,
        AT_OFFICE,
        site.office_door,
        OFFICE_LOCK,
        "card_lost",
    );
}
