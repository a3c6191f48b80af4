//! `tobira device readers` prints each card tapped with `tobira hil card` once, through a real pcscd.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{tap_card, BIN};
use tobira_hardware::hil::PrivatePcscd;

const WAIT: Duration = Duration::from_secs(15);

/// The readers command, killed (by its own PID) when the test ends.
struct Readers {
    child: Child,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Readers {
    fn start() -> Self {
        let mut child = Command::new(BIN)
            .args(["device", "readers", "--reader", "Tobira HIL"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line: {line:?}: {e}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Readers {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Lines until one satisfies `done`; panics at the deadline.
    fn until(&mut self, what: &str, done: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("waited {WAIT:?} for {what}; saw {:?}", self.seen));
            let finished = done(&v);
            self.seen.push(v);
            if finished {
                return;
            }
        }
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn readers_prints_each_tap_once() {
    let pcscd = PrivatePcscd::start().unwrap_or_else(|e| panic!("{e}"));
    let [entry, exit] = pcscd.slots() else {
        panic!("expected two reader slots")
    };
    let mut readers = Readers::start();
    for _ in 0..2 {
        readers.until("the readers to be listed", |v| v["event"] == "reader_added");
    }

    for (slot, uid) in [
        (entry, "04A1B2C3"),
        (exit, "012E3C4D5E6F7081"),
        (entry, "04A1B2C3"),
    ] {
        let report = tap_card(slot.port, uid, 1500);
        assert_eq!(report["uid_reads"], 1, "the card was read once: {report}");
        let name = slot.name.clone();
        readers.until("the card to leave", move |v| {
            v["event"] == "card_removed" && v["reader"] == name.as_str()
        });
    }

    let taps: Vec<(String, String, String)> = readers
        .seen
        .iter()
        .filter(|v| v["event"] == "tap")
        .map(|v| {
            assert!(v["at_ms"].as_i64().unwrap() > 0);
            (
                v["reader"].as_str().unwrap().to_owned(),
                v["uid"].as_str().unwrap().to_owned(),
                v["card_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        taps,
        [
            (
                entry.name.clone(),
                "04A1B2C3".into(),
                "mifare_classic".into()
            ),
            (
                exit.name.clone(),
                "012E3C4D5E6F7081".into(),
                "felica".into()
            ),
            (
                entry.name.clone(),
                "04A1B2C3".into(),
                "mifare_classic".into()
            ),
        ]
    );
    drop(readers);
    drop(pcscd);
}
