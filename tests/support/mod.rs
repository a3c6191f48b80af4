//! What the end-to-end tests share: scratch directories, our own child processes, simulators, card taps.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

pub mod browser;

use serde_json::Value;

/// The `tobira` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_tobira");

/// A scratch directory, removed when the test ends.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// A fresh directory for `test` (leftovers of an earlier run are removed).
    pub fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tobira-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A process this test started, killed by its own PID when the test ends.
#[derive(Debug)]
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `tobira args…` (a simulator) and returns it with the JSON line it
/// prints once ready, and the rest of its output.
pub fn simulator(args: &[&str]) -> (Proc, Value, BufReader<ChildStdout>) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let ready = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("simulator not ready: {line:?}: {e}"));
    (Proc(child), ready, out)
}

/// Taps a virtual card with `tobira hil card` on a vpcd slot and returns its report.
pub fn tap_card(port: u16, uid: &str, hold_ms: u32) -> Value {
    let out = Command::new(BIN)
        .args([
            "hil",
            "card",
            "--uid",
            uid,
            "--hold-ms",
            &hold_ms.to_string(),
        ])
        .args(["--port", &port.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
