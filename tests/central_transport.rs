//! The central service on the network, as real processes: TLS between a
//! controller and central with certificates from `tobira central tls init`,
//! and the connection limits that keep controllers syncing while slow
//! clients try to hold every connection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod rig;
mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rig::*;
use serde_json::{json, Value};
use support::{simulator, Proc, Scratch, BIN};

/// The card of the one person of the site.
const CARD: &str = "04A1B2C3";

/// A central service as its own process, reached over HTTP or HTTPS.
struct Central {
    _proc: Proc,
    port: u16,
    token: String,
    /// The CA to check its certificate with; plain HTTP without.
    ca: Option<PathBuf>,
    /// Where its log goes.
    log: PathBuf,
}

impl Central {
    /// Starts `[wrapper…] tobira central --database … --listen … args…` with
    /// `env`, once an admin token exists; returns when it accepts connections.
    fn start(
        dir: &Scratch,
        wrapper: &[&str],
        args: &[&str],
        env: &[(&str, &str)],
        ca: Option<PathBuf>,
    ) -> Self {
        let db = format!("sqlite://{}", dir.path().join("central.db").display());
        let out = Command::new(BIN)
            .args(["central", "--database", &db, "token", "create"])
            .args(["--name", "integrator", "--role", "admin", "--days", "1"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let port = free_port();
        let log = dir.path().join("central.log");
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut cmd = Command::new(program);
                cmd.args(rest).arg(BIN);
                cmd
            }
            None => Command::new(BIN),
        };
        cmd.args(["central", "--database", &db, "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let proc = Proc(cmd.spawn().unwrap());
        eventually("the central service to answer", || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Central {
            _proc: proc,
            port,
            token,
            ca,
            log,
        }
    }

    fn url(&self) -> String {
        match self.ca {
            Some(_) => format!("https://127.0.0.1:{}", self.port),
            None => format!("http://127.0.0.1:{}", self.port),
        }
    }

    /// One JSON API request: status and JSON body (null when there is none).
    fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let Some(ca) = &self.ca else {
            return api(self.port, &self.token, method, path, body);
        };
        // curl, a real TLS client, checking the certificate against the site CA.
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20", "--cacert"])
            .arg(ca)
            .args(["-X", method, "-w", "\n%{http_code}"])
            .arg("-H")
            .arg(format!("Authorization: Bearer {}", self.token))
            .args(["-H", "Content-Type: application/json"])
            .args(
                body.map(|b| vec!["--data".to_owned(), b.to_string()])
                    .unwrap_or_default(),
            )
            .arg(format!("{}/api/v1{path}", self.url()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let (answer, status) = text.rsplit_once('\n').unwrap();
        (
            status.trim().parse().unwrap(),
            serde_json::from_str(answer).unwrap_or(Value::Null),
        )
    }

    fn create(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.api("POST", path, Some(body));
        assert_eq!(status, 201, "POST {path}: {answer}");
        answer
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A site as an integrator sets it up through the API: one controller with
/// the office door, and a member of staff whose card opens it.
struct Site {
    controller: u64,
    secret: String,
    public_key: String,
    door: u64,
}

impl Site {
    fn set_up(central: &Central) -> Self {
        let site = central.create("/sites", json!({"name": "本庁舎"}))["id"].clone();
        let zone = |name: &str, level: u8| json!({"site_id": site, "name": name, "level": level});
        let grounds = central.create("/zones", zone("敷地", 0))["id"].clone();
        let office = central.create("/zones", zone("執務室", 3))["id"].clone();
        let registered =
            central.create("/controllers", json!({"site_id": site, "name": "1F east"}));
        let controller = registered["controller"]["id"].as_u64().unwrap();
        let door = central.create(
            "/doors",
            json!({
                "name": "office", "kind": "door", "controller_id": controller,
                "outside_zone_id": grounds, "inside_zone_id": office,
                "entry_reader": {"biometric": null}, "exit_reader": null,
            }),
        )["id"]
            .as_u64()
            .unwrap();
        let person = central.create(
            "/people",
            json!({"kind": "staff", "name": "佐藤 花子", "organisation": "総務課"}),
        )["id"]
            .clone();
        central.create("/cards", json!({"uid": CARD, "person_id": person}));
        let group = central.create("/groups", json!({"name": "総務課"}))["id"].clone();
        let (status, answer) =
            central.api("PUT", &format!("/groups/{group}/members/{person}"), None);
        assert_eq!(status, 204, "{answer}");
        central.create("/grants", json!({"group_id": group, "zones": [office]}));
        Site {
            controller,
            secret: registered["secret"].as_str().unwrap().to_owned(),
            public_key: registered["public_key"].as_str().unwrap().to_owned(),
            door,
        }
    }

    /// The controller's config: the office door on `reader`, the central
    /// service as `central` says (its url and TLS keys).
    fn configure(&self, path: &Path, dir: &Path, status_port: u16, reader: &str, central: &str) {
        std::fs::write(
            path,
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
{central}
secret = "{secret}"
public_key = "{key}"
backoff_min_ms = 20
backoff_max_ms = 500

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
                controller = self.controller,
                data = dir.join("data").display(),
                socket = dir.join("gpio.sock").display(),
                secret = self.secret,
                key = self.public_key,
                door = self.door,
            ),
        )
        .unwrap();
    }

    /// Waits until the central service holds an event of the door with `reason`.
    fn wait_event_at_central(&self, central: &Central, reason: &str) {
        eventually(&format!("a {reason} event at the central service"), || {
            let (_, page) = central.api("GET", &format!("/events?door={}", self.door), None);
            page["items"]
                .as_array()?
                .iter()
                .find(|e| e["reason"] == reason)
                .map(|_| ())
        });
    }
}

/// The policy version the controller with this status port has in force.
fn policy_version(status_port: u16) -> u64 {
    http_get(status_port, "/status")["policy"]["version"]
        .as_u64()
        .unwrap_or(0)
}

/// Reports the card lost through the API and waits until the controller
/// holds a newer policy than before.
fn lost_card_reaches_the_controller(central: &Central, status_port: u16) {
    let before = policy_version(status_port);
    let (status, answer) = central.api("POST", &format!("/cards/{CARD}/lost"), None);
    assert_eq!(status, 200, "{answer}");
    eventually("the lost card at the controller", || {
        (policy_version(status_port) > before).then_some(())
    });
}

/// `tobira central tls init` in `dir` for 127.0.0.1 and localhost; returns its output.
fn tls_init(dir: &Path) -> String {
    let out = Command::new(BIN)
        .args(["central", "tls", "init", "--dir"])
        .arg(dir)
        .args(["--name", "localhost", "--ip", "127.0.0.1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Slow-header clients (slowloris) open many connections from 127.0.0.2,
/// 127.0.0.3… and send a header byte now and then, never finishing; the
/// central service may open only 256 files. Meanwhile a controller on
/// 127.0.0.1 keeps syncing: its events are stored, and a lost card reaches it
/// through the long-poll. Over its limit an address's connections are closed
/// at once, and a connection that does not finish its headers is closed
/// after the header timeout.
#[test]
fn slow_header_clients_from_many_addresses_do_not_cut_controllers_off() {
    const ADDRESSES: u8 = 20;
    const PER_ADDRESS: usize = 15;
    const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
    let dir = Scratch::new("slowloris");
    let central = Central::start(
        &dir,
        // As a systemd unit with a small LimitNOFILE: the attacker's 300
        // connections alone would use up the process's files.
        &["prlimit", "--nofile=256:256"],
        &[],
        &[
            ("TOBIRA_MAX_CONNECTIONS", "200"),
            ("TOBIRA_MAX_CONNECTIONS_PER_ADDRESS", "8"),
            ("TOBIRA_HEADER_TIMEOUT", "2"),
        ],
        None,
    );
    let site = Site::set_up(&central);
    let socket = dir.path().join("gpio.sock");
    let (_board, _, _) = simulator(&["hil", "gpio", "--socket", socket.to_str().unwrap()]);
    let mut observer = Observer::connect(&socket);
    observer.drive(OFFICE_CONTACT, false);
    let status_port = free_port();
    let config = dir.path().join("controller.toml");
    site.configure(
        &config,
        dir.path(),
        status_port,
        "Unplugged Reader",
        &format!("url = \"{}\"\nallow_insecure_http = true", central.url()),
    );
    let c = Controller::start(&config, None);
    eventually("the first policy", || {
        (policy_version(status_port) > 0).then_some(())
    });

    // The attack: every slow client connected at least once before the
    // controller has to get through.
    let attack = Attack::start(
        SocketAddr::from(([127, 0, 0, 1], central.port)),
        ADDRESSES,
        PER_ADDRESS,
    );
    eventually("every slow client to connect", || {
        (attack.connected.load(Ordering::Relaxed) >= usize::from(ADDRESSES) * PER_ADDRESS)
            .then_some(())
    });

    // Uploads get through: the REX event reaches the central service.
    observer.drain();
    observer.drive(OFFICE_REX, true);
    observer.edge(OFFICE_LOCK, true);
    observer.drive(OFFICE_REX, false);
    site.wait_event_at_central(&central, "request_to_exit");
    // So does a policy change, pushed through the controller's long-poll.
    lost_card_reaches_the_controller(&central, status_port);
    assert_eq!(
        http_get(status_port, "/status")["sync"]["online"],
        Value::Bool(true)
    );

    // Over its limit an address was refused at once, and said so (once in a while).
    assert!(
        central
            .log_text()
            .contains("connection refused: too many open connections from this address"),
        "{}",
        central.log_text()
    );
    // Connections that never finish their headers do not stay.
    eventually("a slow client closed by the header timeout", || {
        (attack.held_then_closed(HEADER_TIMEOUT) > 0).then_some(())
    });
    drop(attack);
    c.stop();
}

/// Slow-header clients, each on its own task, reconnecting when closed.
struct Attack {
    runtime: Option<tokio::runtime::Runtime>,
    stop: tokio::sync::watch::Sender<bool>,
    /// Connections that were accepted by the kernel, in total.
    connected: Arc<AtomicUsize>,
    /// How long each connection that was closed by the server lived.
    lifetimes: Arc<std::sync::Mutex<Vec<Duration>>>,
}

impl Attack {
    fn start(target: SocketAddr, addresses: u8, per_address: usize) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let connected = Arc::new(AtomicUsize::new(0));
        let lifetimes = Arc::new(std::sync::Mutex::new(Vec::new()));
        for a in 0..addresses {
            let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + a));
            for _ in 0..per_address {
                runtime.spawn(slow_client(
                    from,
                    target,
                    stopped.clone(),
                    connected.clone(),
                    lifetimes.clone(),
                ));
            }
        }
        Attack {
            runtime: Some(runtime),
            stop,
            connected,
            lifetimes,
        }
    }

    /// Connections closed by the server after living at least `at_least`.
    fn held_then_closed(&self, at_least: Duration) -> usize {
        self.lifetimes
            .lock()
            .unwrap()
            .iter()
            .filter(|d| **d >= at_least)
            .count()
    }
}

impl Drop for Attack {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// Connects from `from`, sends a request line and then one header byte
/// every 300 ms, never the blank line; reconnects when the server closes.
async fn slow_client(
    from: IpAddr,
    to: SocketAddr,
    mut stop: tokio::sync::watch::Receiver<bool>,
    connected: Arc<AtomicUsize>,
    lifetimes: Arc<std::sync::Mutex<Vec<Duration>>>,
) {
    use tokio::io::AsyncWriteExt as _;
    while !*stop.borrow() {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(from, 0)).unwrap();
        let Ok(mut stream) = socket.connect(to).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        connected.fetch_add(1, Ordering::Relaxed);
        let opened = Instant::now();
        let mut line: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: central\r\nX-Slow: ";
        loop {
            let mut probe = [0u8; 64];
            // Anything but "nothing to read yet" means the server answered or closed.
            let closed = stream.write_all(line).await.is_err()
                || !matches!(stream.try_read(&mut probe),
                             Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
            if closed {
                lifetimes.lock().unwrap().push(opened.elapsed());
                break;
            }
            line = b"a";
            tokio::select! {
                _ = stop.changed() => return,
                () = tokio::time::sleep(Duration::from_millis(300)) => {}
            }
        }
    }
}

/// Over HTTPS with a CA and certificate from `tobira central tls init`: the
/// controller pinned to that CA syncs, a lost card reaches the door and is
/// refused there; a controller pinned to another CA cannot sync and says why;
/// a plain `http://` URL is refused unless the config allows it.
#[test]
fn controller_and_central_over_tls_with_a_pinned_ca() {
    let mut rig = Rig::start("tls", &[]);
    let dir = rig.dir.path().to_owned();
    let tls = dir.join("tls");
    let told = tls_init(&tls);
    assert!(
        told.contains("ca.pem") && told.contains("ca_file"),
        "{told}"
    );
    assert!(
        told.contains("--tls-cert") && told.contains("--tls-key"),
        "{told}"
    );
    // A second run would replace the CA controllers pin: refused.
    let again = Command::new(BIN)
        .args(["central", "tls", "init", "--dir"])
        .arg(&tls)
        .args(["--ip", "127.0.0.1"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("never overwrites"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let central = Central::start(
        &rig.dir,
        &[],
        &[
            "--tls-cert",
            tls.join("server.pem").to_str().unwrap(),
            "--tls-key",
            tls.join("server.key").to_str().unwrap(),
        ],
        &[],
        Some(tls.join("ca.pem")),
    );
    let site = Site::set_up(&central);
    let reader = rig.slot(0).name.clone();
    let central_keys = format!(
        "url = \"{}\"\nca_file = \"{}\"",
        central.url(),
        tls.join("ca.pem").display()
    );
    site.configure(&rig.config, &dir, rig.status_port, &reader, &central_keys);
    rig.observer.drive(OFFICE_CONTACT, false);
    let c = Controller::start_logging(&rig.config, None, "info,tobira_controller::engine=debug");
    c.wait_log("the reader to come online", |l| {
        l.contains("card reader online") && l.contains(&reader)
    });
    eventually("the first policy over TLS", || {
        (policy_version(rig.status_port) > 0).then_some(())
    });
    // The card opens the door; the event reaches central over TLS.
    rig.observer.drain();
    tap(rig.slot(0), CARD);
    c.wait_event(
        &[&format!("access door={} ", site.door), "reason=granted "],
        1,
    );
    rig.observer.pulse(OFFICE_LOCK).assert_unlock_time(500);
    site.wait_event_at_central(&central, "granted");
    c.wait_log("the card to leave the reader", |l| {
        l.contains("card removed")
    });
    // Reported lost: the change reaches the door, which refuses the card.
    lost_card_reaches_the_controller(&central, rig.status_port);
    rig.observer.drain();
    tap(rig.slot(0), CARD);
    c.wait_event(
        &[&format!("access door={} ", site.door), "reason=card_lost "],
        1,
    );
    rig.observer
        .no_edge(OFFICE_LOCK, true, Duration::from_millis(400));
    site.wait_event_at_central(&central, "card_lost");
    c.stop();

    // Pinned to another site's CA: the same central is not trusted.
    let other = dir.join("other-ca");
    tls_init(&other);
    let pinned_elsewhere = format!(
        "url = \"{}\"\nca_file = \"{}\"",
        central.url(),
        other.join("ca.pem").display()
    );
    site.configure(
        &rig.config,
        &dir,
        rig.status_port,
        &reader,
        &pinned_elsewhere,
    );
    let c = Controller::start(&rig.config, None);
    let line = c.wait_log("the refused certificate in the log", |l| {
        l.contains("sync failed") && l.contains("certificate")
    });
    assert!(
        line.contains("invalid peer certificate: UnknownIssuer"),
        "{line}"
    );
    let status = http_get(rig.status_port, "/status");
    assert_eq!(status["sync"]["online"], Value::Bool(false), "{status}");
    assert!(
        status["sync"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("certificate")),
        "{status}"
    );
    c.stop();

    // Plain HTTP without the config saying so: refused by check and at start.
    let plain = format!("url = \"http://127.0.0.1:{}\"", central.port);
    site.configure(&rig.config, &dir, rig.status_port, &reader, &plain);
    for args in [vec!["controller", "check"], vec!["controller"]] {
        let out = Command::new(BIN)
            .args(&args)
            .arg("--config")
            .arg(&rig.config)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted http://: {err}");
        assert!(
            err.contains("plain HTTP") && err.contains("allow_insecure_http"),
            "{args:?}: {err}"
        );
    }
    // Allowed: `check` passes and warns.
    let allowed = format!("{plain}\nallow_insecure_http = true");
    site.configure(&rig.config, &dir, rig.status_port, &reader, &allowed);
    let out = Command::new(BIN)
        .args(["controller", "check", "--config"])
        .arg(&rig.config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning") && err.contains("allow_insecure_http"),
        "{err}"
    );
}
