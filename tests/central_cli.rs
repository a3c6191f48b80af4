//! `tobira central` as a real process: serve, health check, tokens, controllers, audit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tobira");

/// A snapshot request as a controller makes it: with a fresh nonce that the
/// signed answer must carry (docs/security.md, "Freshness of policy").
const SNAPSHOT: &str = "/sync/v1/snapshot?nonce=00112233445566778899aabbccddeeff";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn central(db: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["central", "--database", db])
        .args(args)
        .env("TOBIRA_PASSWORD", "a sufficiently long password")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A plain HTTP/1.1 GET; returns (status, body).
fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((status, body))
}

#[test]
fn the_central_service_starts_answers_and_is_administered_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/central.db", dir.path().display());

    let out = central(
        &db,
        &[
            "token",
            "create",
            "--name",
            "hr",
            "--role",
            "facilities",
            "--days",
            "7",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    assert!(
        token.trim().starts_with("tbr_") && token.trim().len() == 68,
        "{token}"
    );
    assert!(
        dir.path().join("central.db.key").exists(),
        "the signing key is created next to the database"
    );

    let bad = central(&db, &["token", "create", "--name", "x", "--role", "root"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a role"));

    // No such site: a clear error, not a crash.
    let out = central(&db, &["controller", "add", "--site", "7", "--name", "1F"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no site 7"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The role is asked for: no user becomes an admin by default.
    let out = central(&db, &["admin", "create-user", "--username", "kato"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--role"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = central(
        &db,
        &[
            "admin",
            "create-user",
            "--username",
            "sato",
            "--role",
            "security",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = central(&db, &["audit", "verify"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("intact: 2 entries"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _server = Server(
        Command::new(BIN)
            .args(["central", "--database", &db, "--listen", &addr.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        match get(addr, "/healthz") {
            Ok(answer) => break answer,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("central never answered: {e}"),
        }
    };
    assert_eq!(health.0, 200);
    let (status, body) = get(addr, "/sync/v1/snapshot").unwrap();
    assert_eq!(status, 401);
    assert!(body.contains("unauthorized"), "{body}");
    let (status, _) = get(addr, "/no/such/page").unwrap();
    assert_eq!(status, 404);

    let out = central("mysql://nope", &["audit", "verify"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database URL"));
}

/// `tobira central …` run in `dir` with no `--database` and no `TOBIRA_DATABASE`.
fn central_default(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("central")
        .args(args)
        .current_dir(dir)
        .env_remove("TOBIRA_DATABASE")
        .env_remove("TOBIRA_KEY_FILE")
        .env("TOBIRA_PASSWORD", "a sufficiently long password")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A plain HTTP/1.1 request with an optional `Authorization` value; returns (status, body).
fn request(addr: SocketAddr, method: &str, path: &str, auth: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// A running `tobira central` whose stderr lines are collected as they come.
struct Logged {
    child: Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Logged {
    fn start(cmd: &mut Command) -> Logged {
        use std::io::BufRead;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Logged { child, lines }
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits (up to 20 s) for a line with every one of `parts`; returns it.
    fn wait_for(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(line) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| parts.iter().all(|p| l.contains(p)))
            {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no line with {parts:?} in:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_healthy(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match get(addr, "/healthz") {
            Ok((200, _)) => return,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            other => panic!("central never answered: {other:?}"),
        }
    }
}

fn json_of(out: &Output) -> serde_json::Value {
    let (stdout, stderr) = text(out);
    assert!(out.status.success(), "{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn tokens_are_listed_and_revoked_from_the_command_line_and_a_revoked_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/central.db", dir.path().display());
    let out = central(
        &db,
        &["token", "create", "--name", "hr-sync", "--role", "admin"],
    );
    let token = text(&out).0.trim().to_string();
    central(
        &db,
        &["token", "create", "--name", "report", "--role", "security"],
    );

    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let server = Logged::start(Command::new(BIN).args([
        "central",
        "--database",
        &db,
        "--listen",
        &addr.to_string(),
    ]));
    wait_healthy(addr);
    let bearer = format!("Bearer {token}");
    assert_eq!(request(addr, "GET", "/api/v1/sites", Some(&bearer)).0, 200);

    let out = central(&db, &["token", "list"]);
    let (list, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let hr = list.lines().find(|l| l.contains("hr-sync")).unwrap();
    assert!(hr.contains("admin"), "{list}");
    assert!(!hr.contains("never"), "its last use shows: {list}");
    let report = list.lines().find(|l| l.contains("report")).unwrap();
    assert!(
        report.contains("never") && report.contains("security"),
        "{list}"
    );
    assert!(!list.contains("tbr_"), "{list}");
    let id = hr.split_whitespace().next().unwrap();

    let out = central(&db, &["token", "revoke", id]);
    assert!(out.status.success(), "{}", text(&out).1);
    let (status, body) = request(addr, "GET", "/api/v1/sites", Some(&bearer));
    assert_eq!(status, 401, "refused at once: {body}");
    let out = central(&db, &["token", "list"]);
    assert!(
        text(&out)
            .0
            .lines()
            .any(|l| l.contains("hr-sync") && l.contains("revoked")),
        "{}",
        text(&out).0
    );
    let out = central(&db, &["token", "revoke", "999"]);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("token 999"), "{}", text(&out).1);
    let out = central(&db, &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out).1);

    // Every request is logged with its actor, never with its token.
    let line = server.wait_for(&["GET", "/api/v1/sites", "200", "token:hr-sync"]);
    assert!(line.contains("ms"), "{line}");
    server.wait_for(&["GET", "/api/v1/sites", "401"]);
    assert!(!server.text().contains(&token), "{}", server.text());
}

#[test]
fn controllers_are_disabled_enabled_rekeyed_and_deleted_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/central.db", dir.path().display());
    let token = text(&central(
        &db,
        &["token", "create", "--name", "a", "--role", "admin"],
    ))
    .0
    .trim()
    .to_string();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let server = Logged::start(Command::new(BIN).args([
        "central",
        "--database",
        &db,
        "--listen",
        &addr.to_string(),
    ]));
    wait_healthy(addr);
    let bearer = format!("Bearer {token}");
    let (status, body) = request(addr, "POST", "/api/v1/sites", Some(&bearer));
    assert_eq!(status, 400, "a body is needed: {body}");
    // A site and a controller, through the command line where it can.
    let mut s = TcpStream::connect(addr).unwrap();
    let site = r#"{"name":"City Hall"}"#;
    write!(
        s,
        "POST /api/v1/sites HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {bearer}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{site}",
        site.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let added = json_of(&central(
        &db,
        &["controller", "add", "--site", "1", "--name", "1F"],
    ));
    let secret = added["secret"].as_str().unwrap().to_string();
    let auth = format!("Bearer 1.{secret}");
    assert_eq!(request(addr, "GET", SNAPSHOT, Some(&auth)).0, 200);
    server.wait_for(&["controller connected", "controller=1"]);
    server.wait_for(&["GET", "/sync/v1/snapshot", "200", "controller:1"]);

    let out = central(&db, &["controller", "disable", "1"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let (status, body) = request(addr, "GET", SNAPSHOT, Some(&auth));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("controller_disabled"), "{body}");
    let out = central(&db, &["controller", "enable", "1"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(request(addr, "GET", SNAPSHOT, Some(&auth)).0, 200);

    let rotated = json_of(&central(&db, &["controller", "rotate-secret", "1"]));
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    assert_eq!(request(addr, "GET", SNAPSHOT, Some(&auth)).0, 401);
    let new_auth = format!("Bearer 1.{new_secret}");
    assert_eq!(request(addr, "GET", SNAPSHOT, Some(&new_auth)).0, 200);

    let out = central(&db, &["controller", "delete", "1"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(request(addr, "GET", SNAPSHOT, Some(&new_auth)).0, 401);
    let out = central(&db, &["controller", "delete", "1"]);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("controller 1"), "{}", text(&out).1);
    let log = server.text();
    assert!(!log.contains(&secret) && !log.contains(new_secret), "{log}");
    let out = central(&db, &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out).1);
}

#[test]
fn a_taken_port_is_a_clear_error_before_any_listening_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/central.db", dir.path().display());
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut child = Command::new(BIN)
        .args(["central", "--database", &db, "--listen", &addr])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "still running on a taken port");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains(&addr), "{stderr}");
    assert!(stderr.contains("in use"), "{stderr}");
    assert!(
        !stderr.contains("listening") && !stdout.contains("listening"),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_postgresql_is_a_clear_error_within_seconds() {
    let port = free_port();
    let started = Instant::now();
    let out = Command::new(BIN)
        .args([
            "central",
            "--database",
            &format!("postgres://tobira:hunter2@127.0.0.1:{port}/tobira"),
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let took = started.elapsed();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(took < Duration::from_secs(10), "took {took:?}: {stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("PostgreSQL"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
}

#[test]
fn one_default_database_and_commands_do_not_create_a_stray_one() {
    let dir = tempfile::tempdir().unwrap();
    // No database yet: an administration command says so and creates nothing.
    let out = central_default(dir.path(), &["token", "create", "--name", "x"]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stderr.contains("no database at data/central.db") && stderr.contains("--database"),
        "{stderr}"
    );
    assert!(!stdout.contains("tbr_"));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing created"
    );
    for args in [
        &[
            "admin",
            "create-user",
            "--username",
            "sato",
            "--role",
            "security",
        ][..],
        &["controller", "add", "--site", "1", "--name", "1F"],
        &["token", "list"],
    ] {
        let out = central_default(dir.path(), args);
        assert!(!out.status.success(), "{args:?}");
        assert!(text(&out).1.contains("no database at"), "{args:?}");
    }

    // The service creates it at the default path; then commands find it, and
    // the token they print is one the running service accepts.
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _server = Server(
        Command::new(BIN)
            .args(["central", "--listen", &addr.to_string()])
            .current_dir(dir.path())
            .env_remove("TOBIRA_DATABASE")
            .env_remove("TOBIRA_KEY_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_healthy(addr);
    assert!(dir.path().join("data/central.db").exists());
    let out = central_default(dir.path(), &["token", "create", "--name", "x"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let bearer = format!("Bearer {}", stdout.trim());
    assert_eq!(request(addr, "GET", "/api/v1/sites", Some(&bearer)).0, 200);

    // The same path in the built-in default, scripts/run and the README.
    let help = text(&central_default(dir.path(), &["--help"])).0;
    assert!(help.contains("sqlite://data/central.db"), "{help}");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = std::fs::read_to_string(root.join("scripts/run")).unwrap();
    assert!(run.contains("db=\"sqlite://data/central.db\""), "{run}");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(readme.contains("sqlite://data/central.db"));
    for stray in ["tobira-central.db", "sqlite://central.db"] {
        assert!(!readme.contains(stray), "README still names {stray}");
        let api = std::fs::read_to_string(root.join("docs/api.md")).unwrap();
        assert!(!api.contains(stray), "docs/api.md still names {stray}");
    }
}

#[test]
fn a_backup_of_the_running_service_is_whole_and_owner_only_while_it_is_written_to() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/central.db", dir.path().display());
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _server = Logged::start(Command::new(BIN).args([
        "central",
        "--database",
        &db,
        "--listen",
        &addr.to_string(),
    ]));
    wait_healthy(addr);

    // Audited writes from other processes go on during the backup.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (db, stop, written) = (db.clone(), stop.clone(), written.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let n = written.load(Ordering::SeqCst);
                let name = format!("writer-{n}");
                let out = central(&db, &["token", "create", "--name", &name]);
                assert!(out.status.success(), "{}", text(&out).1);
                written.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while written.load(Ordering::SeqCst) < 3 {
        assert!(Instant::now() < deadline, "the writer made no tokens");
        std::thread::sleep(Duration::from_millis(20));
    }
    let copy = dir.path().join("backup.db");
    let copy_text = copy.display().to_string();
    let out = central(&db, &["backup", &copy_text]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("integrity check ok"), "{stdout}");
    assert!(
        stderr.contains("signing key is not in the backup"),
        "{stderr}"
    );
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "backup mode {mode:o} is readable by others"
        );
    }
    assert!(!dir.path().join("backup.db.partial").exists());

    // The copy is the database at one instant: its audit chain is whole and
    // it holds the tokens written before the backup began.
    let copy_db = format!("sqlite://{copy_text}");
    let out = central(&copy_db, &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let out = central(&copy_db, &["token", "list"]);
    let listed = text(&out).0;
    assert!(listed.matches("writer-").count() >= 3, "{listed}");

    let again = central(&db, &["backup", &copy_text]);
    assert!(!again.status.success());
    assert!(
        text(&again).1.contains("never overwrites"),
        "{}",
        text(&again).1
    );
}

#[test]
fn the_service_forwards_to_the_siem_targets_given_and_refuses_bad_ones_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/central.db", dir.path().display());
    for (args, says) in [
        (
            vec!["--siem", "udp://127.0.0.1:514"],
            "is not a SIEM target",
        ),
        (vec!["--siem", "tls://127.0.0.1:6514"], "--siem-ca"),
        (
            vec!["--siem", "tcp://127.0.0.1:6514", "--siem-format", "cef"],
            "is not a SIEM format",
        ),
    ] {
        let out = central(&db, &args);
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("listening"), "{stderr}");
    }

    let file = dir.path().join("siem.jsonl");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let target = format!("file:{}", file.display());
    let server = Logged::start(Command::new(BIN).args([
        "central",
        "--database",
        &db,
        "--listen",
        &listen,
        "--siem",
        &target,
    ]));
    server.wait_for(&["forwarding to the SIEM at", &target]);
    wait_healthy(listen.parse().unwrap());
    let out = central(
        &db,
        &[
            "admin",
            "create-user",
            "--username",
            "kato",
            "--role",
            "security",
        ],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let sent = std::fs::read_to_string(&file).unwrap_or_default();
        let found = sent.lines().any(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["kind"] == "audit" && v["actor"] == "cli" && v["target"] == "user:kato"
        });
        if found {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the audit entry never reached the SIEM file:\n{sent}\n{}",
            server.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs SQL on the central database directly, as someone with the database file would.
fn tamper_with(db: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(db).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    });
}

#[test]
fn deleting_the_newest_admin_audit_rows_after_a_checkpoint_fails_verify_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/central.db", dir.path().display());
    let mut tokens = Vec::new();
    for (name, role) in [
        ("reviewer", "security"),
        ("root", "admin"),
        ("hr", "facilities"),
    ] {
        let out = central(
            &db,
            &[
                "token", "create", "--name", name, "--role", role, "--days", "7",
            ],
        );
        assert!(out.status.success(), "{}", text(&out).1);
        tokens.push(text(&out).0.trim().to_string());
    }
    let out = central(&db, &["checkpoint"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(
        text(&out)
            .0
            .contains("checkpoint 1: admin_audit record 3 head "),
        "{}",
        text(&out).0
    );
    let out = central(&db, &["checkpoint"]);
    assert!(text(&out).0.contains("no chain moved"), "{}", text(&out).0);
    let out = central(&db, &["verify"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(
        text(&out).0.contains("every chain intact"),
        "{}",
        text(&out).0
    );

    // The newest entry (the facilities token) is removed from the database.
    tamper_with(&db, "DELETE FROM admin_audit WHERE seq = 3");
    // On main `audit verify` walked the unkeyed chain and passed this.
    let out = central(&db, &["audit", "verify"]);
    assert!(!out.status.success(), "{}", text(&out).0);
    assert!(
        text(&out)
            .1
            .contains("admin_audit record 3 checkpoint 1: checkpoint 1 signed records up to 3, the chain ends at record 2"),
        "{}",
        text(&out).1
    );
    let out = central(&db, &["verify"]);
    assert!(!out.status.success(), "{}", text(&out).0);
    assert!(
        text(&out).1.contains("admin_audit record 3"),
        "{}",
        text(&out).1
    );
    assert!(
        text(&out).0.contains("admin_audit: 2 records, BROKEN"),
        "{}",
        text(&out).0
    );

    // The running service refuses to sign over the damage, and says so over the API.
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let server = Logged::start(Command::new(BIN).args([
        "central",
        "--database",
        &db,
        "--listen",
        &addr.to_string(),
        "--checkpoint-every-secs",
        "1",
    ]));
    wait_healthy(addr);
    server.wait_for(&["checkpoint refused", "admin_audit", "checkpoint 1"]);
    let reviewer = format!("Bearer {}", tokens[0]);
    let (status, body) = request(addr, "GET", "/api/v1/verify", Some(&reviewer));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ok"], false, "{body}");
    assert_eq!(v["problems"][0]["chain"], "admin_audit", "{body}");
    assert_eq!(v["problems"][0]["checkpoint"], 1, "{body}");
    let (status, _) = request(addr, "POST", "/api/v1/checkpoints", Some(&reviewer));
    assert_eq!(status, 403, "signing checkpoints is for admins");
    let root = format!("Bearer {}", tokens[1]);
    let (status, body) = request(addr, "POST", "/api/v1/checkpoints", Some(&root));
    assert_eq!(status, 200, "{body}");
    let run: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(run["made"], serde_json::json!([]), "{body}");
    assert!(
        run["refused"][0].as_str().unwrap().contains("admin_audit"),
        "{body}"
    );
    let (status, body) = request(addr, "GET", "/api/v1/checkpoints", Some(&reviewer));
    assert_eq!(status, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(page["items"][0]["chain"], "admin_audit", "{body}");
}

#[test]
fn retention_archives_old_events_and_the_archive_and_the_chain_verify_from_the_command_line() {
    use tobira_firmware::{Chain, ControllerId, DoorId, EventKind, Timestamp};
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/central.db", dir.path().display());
    let archives = dir.path().join("archives");
    let archives_arg = archives.to_str().unwrap();
    let out = central(&db, &["token", "create", "--name", "reviewer"]);
    assert!(out.status.success(), "{}", text(&out).1);
    tamper_with(&db, "INSERT INTO sites (id, name) VALUES (1, 'HQ')");
    let out = central(&db, &["controller", "add", "--site", "1", "--name", "east"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let controller = json_of(&out)["controller"].as_u64().unwrap() as u32;

    // Six events from over a year ago, three from the last hour.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut chain = Chain::genesis(ControllerId(controller));
    let mut seal = |at: i64| {
        chain
            .seal(Timestamp(at), EventKind::DoorClosed { door: DoorId(1) })
            .unwrap()
    };
    let mut batch: Vec<_> = (0..6).map(|i| seal(now - 400 * 86_400_000 + i)).collect();
    batch.extend((0..3).map(|i| seal(now - 3_600_000 + i)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = tobira_web::Store::connect(&db).await.unwrap();
        store
            .ingest(
                ControllerId(controller),
                tobira_firmware::ChainEpoch::FIRST,
                &batch,
            )
            .await
            .unwrap();
        store.close().await;
    });

    let out = central(&db, &["--archive-dir", archives_arg, "retention", "run"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let chain_name = format!("controller:{controller}");
    assert!(
        text(&out).0.contains(&format!(
            "{chain_name}: records 1 to 6 (6 events) archived to"
        )),
        "{}",
        text(&out).0
    );
    let file = std::fs::read_dir(&archives)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    let out = central(&db, &["--archive-dir", archives_arg, "retention", "run"]);
    assert!(
        text(&out).0.contains("no events older than 365 days"),
        "{}",
        text(&out).0
    );

    let out = central(&db, &["--archive-dir", archives_arg, "verify"]);
    assert!(out.status.success(), "{}{}", text(&out).0, text(&out).1);
    assert!(
        text(&out).0.contains(&format!(
            "{chain_name}: 3 records (and 6 archived by retention)"
        )),
        "{}",
        text(&out).0
    );
    let file_arg = file.to_str().unwrap();
    let out = central(&db, &["archive", "verify", file_arg]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(
        text(&out).0.contains(&format!(
            "archive intact: {chain_name} records 1 to 6 (6 events)"
        )),
        "{}",
        text(&out).0
    );

    // One archived line altered: the archive and the chain's verify both fail.
    let original = std::fs::read_to_string(&file).unwrap();
    let altered = original.replacen("\"kind\":\"door_closed\"", "\"kind\":\"door_forced\"", 1);
    assert_ne!(altered, original);
    std::fs::write(&file, altered).unwrap();
    let out = central(&db, &["archive", "verify", file_arg]);
    assert!(!out.status.success(), "{}", text(&out).0);
    assert!(text(&out).1.contains("does not verify"), "{}", text(&out).1);
    let out = central(&db, &["--archive-dir", archives_arg, "verify"]);
    assert!(!out.status.success(), "{}", text(&out).0);
    assert!(
        text(&out).1.contains("the archive was altered"),
        "{}",
        text(&out).1
    );
}
