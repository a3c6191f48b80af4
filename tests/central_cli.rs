//! `tobira central` as a real process: serve, health check, tokens, controllers, audit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tobira");

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
        String::from_utf8_lossy(&out.stderr).contains("no such site"),
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
