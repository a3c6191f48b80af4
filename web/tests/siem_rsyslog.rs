//! SIEM forwarding against a real rsyslog (Debian `rsyslog`, `rsyslog-gnutls`):
//! each test starts its own rsyslogd on a free loopback port, over TCP or TLS,
//! writing what it receives to a file the test reads, and stops only that
//! process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;
use tobira_firmware::Chain;
use tobira_web::siem::{forward, Format, Pace, SiemError, Target};
use tobira_web::store::events::NewAlarm;
use tobira_web::store::Store;

/// How long anything may take to arrive.
const DEADLINE: Duration = Duration::from_secs(20);

/// A forwarder that retries quickly, so that the tests take seconds.
fn quick() -> Pace {
    Pace {
        batch: 50,
        poll: Duration::from_millis(100),
        backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        ..Pace::default()
    }
}

fn rsyslogd() -> PathBuf {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin"] {
        let p = Path::new(dir).join("rsyslogd");
        if p.exists() {
            return p;
        }
    }
    panic!(
        "rsyslogd is not installed: these tests need Debian's rsyslog and rsyslog-gnutls \
         (`scripts/deps test` as root installs them, or: sudo apt-get install -y rsyslog rsyslog-gnutls)"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Certificates for a TLS listener: a CA and a server certificate for 127.0.0.1.
struct Certificates {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (the CLI) makes the test's certificates");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn certificates(dir: &Path) -> Certificates {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Test SIEM CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=siem.test",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ],
    );
    Certificates {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}

/// One rsyslogd of this test, listening on `port` and appending what it
/// receives to `received`: app-name, msgid, structured data and message.
struct Rsyslog {
    child: Child,
    dir: PathBuf,
    port: u16,
    tls: bool,
    received: PathBuf,
}

impl Rsyslog {
    fn start(dir: &Path, port: u16, tls: Option<&Certificates>) -> Rsyslog {
        let work = dir.join("work");
        std::fs::create_dir_all(&work).unwrap();
        let received = dir.join("received.log");
        let (global, module) = match tls {
            None => (String::new(), r#"module(load="imtcp")"#.to_string()),
            Some(c) => (
                format!(
                    r#" defaultNetstreamDriver="gtls" defaultNetstreamDriverCAFile="{}" defaultNetstreamDriverCertFile="{}" defaultNetstreamDriverKeyFile="{}""#,
                    c.ca.display(),
                    c.cert.display(),
                    c.key.display()
                ),
                r#"module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")"#
                    .to_string(),
            ),
        };
        let conf = format!(
            r#"global(workDirectory="{work}"{global})
{module}
input(type="imtcp" address="127.0.0.1" port="{port}")
template(name="fields" type="string" string="%app-name%|%msgid%|%structured-data%|%msg%\n")
action(type="omfile" file="{received}" template="fields")
"#,
            work = work.display(),
            received = received.display(),
        );
        let conf_file = dir.join("rsyslog.conf");
        std::fs::write(&conf_file, conf).unwrap();
        let child = Command::new(rsyslogd())
            .arg("-n")
            .arg("-f")
            .arg(&conf_file)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting rsyslogd");
        let mut r = Rsyslog {
            child,
            dir: dir.to_path_buf(),
            port,
            tls: tls.is_some(),
            received,
        };
        r.wait_listening();
        r
    }

    fn wait_listening(&mut self) {
        let started = Instant::now();
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "rsyslogd exited ({status}) before listening; config in {}",
                    self.dir.display()
                );
            }
            assert!(
                started.elapsed() < DEADLINE,
                "rsyslogd did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills this rsyslogd (by its pid) and waits until it is gone.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The same configuration started again (same port, same file).
    fn restart(&mut self) {
        self.kill();
        let child = Command::new(rsyslogd())
            .arg("-n")
            .arg("-f")
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(self.dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting rsyslogd again");
        self.child = child;
        self.wait_listening();
    }

    /// What arrived so far, one entry per message.
    fn lines(&self) -> Vec<Received> {
        std::fs::read_to_string(&self.received)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.is_empty())
            .map(Received::parse)
            .collect()
    }

    /// Waits until every `(kind, id)` of `wanted` has arrived; what arrived.
    fn wait_for(&self, wanted: &BTreeSet<(String, String)>) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let lines = self.lines();
            let got: BTreeSet<(String, String)> =
                lines.iter().map(|l| (l.kind(), l.id())).collect();
            let missing: Vec<_> = wanted.difference(&got).collect();
            if missing.is_empty() {
                return lines;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "rsyslog ({}) did not receive {} records, e.g. {:?}",
                if self.tls { "TLS" } else { "TCP" },
                missing.len(),
                &missing[..missing.len().min(5)]
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One message as rsyslog parsed it.
#[derive(Debug, Clone)]
struct Received {
    app: String,
    msgid: String,
    sd: String,
    msg: String,
}

impl Received {
    fn parse(line: &str) -> Received {
        let mut parts = line.splitn(4, '|');
        let mut next = || parts.next().unwrap_or_default().to_string();
        Received {
            app: next(),
            msgid: next(),
            sd: next(),
            msg: next(),
        }
    }

    /// An SD-PARAM's value as sent (still escaped).
    fn param(&self, name: &str) -> Option<String> {
        let start = self.sd.find(&format!(" {name}=\""))? + name.len() + 3;
        let mut value = String::new();
        let mut escaped = false;
        for c in self.sd[start..].chars() {
            match c {
                '"' if !escaped => return Some(value),
                '\\' if !escaped => escaped = true,
                _ => escaped = false,
            }
            value.push(c);
        }
        None
    }

    fn kind(&self) -> String {
        self.param("kind").unwrap_or_default()
    }

    fn id(&self) -> String {
        self.param("id").unwrap_or_default()
    }
}

/// Every record the database holds, as `(kind, id)`.
async fn stored(store: &Store) -> BTreeSet<(String, String)> {
    let events: Vec<(i64, i64)> = sqlx::query_as("SELECT controller_id, seq FROM events")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let alarms: Vec<i64> = sqlx::query_scalar("SELECT id FROM alarms")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let audit: Vec<i64> = sqlx::query_scalar("SELECT seq FROM admin_audit")
        .fetch_all(store.pool())
        .await
        .unwrap();
    events
        .into_iter()
        .map(|(c, s)| ("event".to_string(), format!("{c}.{s}")))
        .chain(
            alarms
                .into_iter()
                .map(|id| ("alarm".into(), id.to_string())),
        )
        .chain(audit.into_iter().map(|s| ("audit".into(), s.to_string())))
        .collect()
}

/// The awkward name in an alarm: every character RFC 5424 escapes.
const AWKWARD: &str = r#"Room "B" [east] \ back"#;

/// An alarm with an awkward door name and an admin-audit entry.
async fn alarm_and_audit(store: &Store) {
    let mut tx = store.begin().await.unwrap();
    store
        .raise(
            &mut tx,
            &NewAlarm {
                at: 1_763_000_000_000,
                kind: "door_forced".into(),
                controller: Some(1),
                door: Some(GATE),
                door_name: Some(AWKWARD.into()),
                card: Some("04A23B1C".into()),
                message: "forced open\nsecond line".into(),
                ..NewAlarm::default()
            },
        )
        .await
        .unwrap();
    store
        .audit(
            &mut tx,
            "admin",
            "card.report_lost",
            "card:04A23B1C",
            &serde_json::json!({"why": "lost on the train"}),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_alarms_and_audit_reach_rsyslog_over_tcp_with_their_fields() {
    let (store, dir) = sqlite().await;
    seed(&store).await;
    let mut chain = Chain::genesis(C1);
    store
        .ingest(
            C1,
            tobira_firmware::ChainEpoch::FIRST,
            &events(&mut chain, 3, 1_763_000_000_000),
        )
        .await
        .unwrap();
    alarm_and_audit(&store).await;
    let port = free_port();
    let rsyslog = Rsyslog::start(dir.path(), port, None);
    let target = Target::parse(&format!("tcp://127.0.0.1:{port}"), Format::Rfc5424, None).unwrap();
    let task = tokio::spawn(forward(store.clone(), target, quick()));

    let wanted = stored(&store).await;
    assert!(wanted.len() >= 5, "{wanted:?}");
    let lines = rsyslog.wait_for(&wanted);
    task.abort();

    for l in &lines {
        assert_eq!(l.app, "tobira", "rsyslog parsed the RFC 5424 header: {l:?}");
        assert_eq!(l.msgid, l.kind());
    }
    let event = lines.iter().find(|l| l.id() == "1.2").unwrap();
    assert_eq!(event.param("controller").as_deref(), Some("1"));
    assert_eq!(event.param("seq").as_deref(), Some("2"));
    let sent = &events(&mut Chain::genesis(C1), 3, 1_763_000_000_000)[1];
    assert_eq!(event.param("link"), Some(sent.link.to_string()));
    assert_eq!(event.param("outcome").as_deref(), Some("granted"));
    assert_eq!(
        event.param("person").as_deref(),
        Some(SATO.to_string().as_str())
    );
    let alarm = lines.iter().find(|l| l.kind() == "alarm").unwrap();
    assert_eq!(alarm.param("alarm").as_deref(), Some("door_forced"));
    assert_eq!(
        alarm.param("door_name").as_deref(),
        Some(r#"Room \"B\" [east\] \\ back"#),
        "escaped per RFC 5424, and rsyslog kept the element whole: {alarm:?}"
    );
    assert!(alarm.msg.contains("forced open second line"), "{alarm:?}");
    let audit = lines
        .iter()
        .find(|l| l.kind() == "audit" && l.param("action").as_deref() == Some("card.report_lost"))
        .unwrap();
    assert_eq!(audit.param("actor").as_deref(), Some("admin"));
    assert_eq!(audit.param("action").as_deref(), Some("card.report_lost"));
    assert_eq!(alarm.param("card"), None, "no card: {alarm:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_reach_rsyslog_over_tls_checked_against_the_siems_ca() {
    let (store, dir) = sqlite().await;
    seed(&store).await;
    let mut chain = Chain::genesis(C1);
    store
        .ingest(
            C1,
            tobira_firmware::ChainEpoch::FIRST,
            &events(&mut chain, 2, 1_763_000_000_000),
        )
        .await
        .unwrap();
    alarm_and_audit(&store).await;
    let certs = certificates(dir.path());
    let port = free_port();
    let rsyslog = Rsyslog::start(dir.path(), port, Some(&certs));
    let ca = std::fs::read(&certs.ca).unwrap();
    let target = Target::parse(
        &format!("tls://127.0.0.1:{port}"),
        Format::Rfc5424,
        Some(&ca),
    )
    .unwrap();
    let task = tokio::spawn(forward(store.clone(), target, quick()));
    let lines = rsyslog.wait_for(&stored(&store).await);
    task.abort();
    assert!(lines.iter().all(|l| l.app == "tobira"), "{lines:?}");
    let event = lines.iter().find(|l| l.id() == "1.1").unwrap();
    assert_eq!(event.param("controller").as_deref(), Some("1"));

    // A SIEM whose certificate does not chain to the configured CA is refused
    // at the handshake: nothing is written to it.
    let other = tempfile::tempdir().unwrap();
    let stranger = certificates(other.path());
    let wrong_ca = std::fs::read(&stranger.ca).unwrap();
    let wrong = Target::parse(
        &format!("tls://127.0.0.1:{port}"),
        Format::Rfc5424,
        Some(&wrong_ca),
    )
    .unwrap();
    let refused = wrong.destination.open().await.unwrap_err();
    assert!(
        matches!(&refused, SiemError::Io(m) if m.contains("certificate")),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_missing_after_rsyslog_was_down_and_ingest_did_not_wait_for_it() {
    let (store, dir) = sqlite().await;
    seed(&store).await;
    let mut chain = Chain::genesis(C1);
    let all = events(&mut chain, 300, 1_763_000_000_000);
    store
        .ingest(C1, tobira_firmware::ChainEpoch::FIRST, &all[..20])
        .await
        .unwrap();
    let port = free_port();
    let mut rsyslog = Rsyslog::start(dir.path(), port, None);
    let target = Target::parse(&format!("tcp://127.0.0.1:{port}"), Format::Rfc5424, None).unwrap();
    let task = tokio::spawn(forward(store.clone(), target, quick()));
    rsyslog.wait_for(&stored(&store).await);

    rsyslog.kill();
    // Ingest while the SIEM is down: it completes without waiting for it.
    let started = Instant::now();
    for batch in all[20..].chunks(70) {
        store
            .ingest(C1, tobira_firmware::ChainEpoch::FIRST, batch)
            .await
            .unwrap();
    }
    alarm_and_audit(&store).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "ingest took {took:?} while the SIEM was down"
    );

    rsyslog.restart();
    let wanted = stored(&store).await;
    assert_eq!(wanted.iter().filter(|(k, _)| k == "event").count(), 300);
    let lines = rsyslog.wait_for(&wanted);
    task.abort();
    // At least once: a record sent twice carries the same id.
    assert!(lines.len() >= wanted.len());
}

#[tokio::test]
async fn a_json_lines_file_resumes_from_the_durable_cursor_without_duplicates() {
    let (store, dir) = sqlite().await;
    seed(&store).await;
    let mut chain = Chain::genesis(C1);
    let all = events(&mut chain, 10, 1_763_000_000_000);
    store
        .ingest(C1, tobira_firmware::ChainEpoch::FIRST, &all[..4])
        .await
        .unwrap();
    alarm_and_audit(&store).await;
    let file = dir.path().join("siem.jsonl");
    let target = Target::parse(&format!("file:{}", file.display()), Format::Rfc5424, None).unwrap();
    let ids = |file: &Path| -> Vec<(String, String)> {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["kind"].as_str().unwrap().to_string(),
                    v["id"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let wait_for = |wanted: BTreeSet<(String, String)>| {
        let file = file.clone();
        async move {
            let started = Instant::now();
            loop {
                let got: BTreeSet<_> = ids(&file).into_iter().collect();
                if got == wanted {
                    return;
                }
                assert!(started.elapsed() < DEADLINE, "got {got:?}, want {wanted:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let first = tokio::spawn(forward(store.clone(), target.clone(), quick()));
    wait_for(stored(&store).await).await;
    first.abort();
    let _ = first.await;

    // The service restarts: the new forwarder goes on from the stored cursor.
    store
        .ingest(C1, tobira_firmware::ChainEpoch::FIRST, &all[4..])
        .await
        .unwrap();
    let second = tokio::spawn(forward(store.clone(), target, quick()));
    wait_for(stored(&store).await).await;
    second.abort();
    let sent = ids(&file);
    let distinct: BTreeSet<_> = sent.iter().cloned().collect();
    assert_eq!(sent.len(), distinct.len(), "each record once: {sent:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    let alarm: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["kind"] == "alarm")
        .unwrap();
    assert_eq!(alarm["door_name"], AWKWARD);
    assert!(alarm.get("card").is_none(), "no card: {alarm}");
}
