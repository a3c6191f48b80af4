//! What the controller shows a technician: the shared status board and the local `/status` and `/metrics` endpoints.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tobira_firmware::Timestamp;

/// Everything the status endpoint shows. Each part is updated by the task that owns it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// The controller id.
    pub controller: u32,
    /// When the process started (ms since the epoch).
    pub started_at_ms: i64,
    /// Doors and gates by configured name.
    pub doors: BTreeMap<String, DoorStatus>,
    /// Output channels by name: whether energised.
    pub outputs: BTreeMap<String, bool>,
    /// Devices (readers, biometric modules, GPIO board) by name.
    pub devices: BTreeMap<String, DeviceStatus>,
    /// The cached policy.
    pub policy: PolicyStatus,
    /// Doors the configuration and the policy disagree about (none while no policy is held).
    pub config_mismatch: Option<crate::config::DoorMismatch>,
    /// Events waiting for the central service.
    pub outbox_depth: u64,
    /// The last sequence number recorded.
    pub last_seq: u64,
    /// The event chain's epoch (16 hex digits; changes only with a new state database).
    pub chain_epoch: String,
    /// The sync client.
    pub sync: SyncStatus,
    /// Decisions by verdict since start.
    pub decisions: BTreeMap<String, u64>,
    /// Card seen by PC/SC → lock output written, over the recent grants.
    pub grant_latency_ms: Option<Latency>,
    /// Of that: card seen by PC/SC → the decision loop took it up.
    pub queue_latency_ms: Option<Latency>,
    /// Of that: committing the decision's events to the outbox.
    pub commit_latency_ms: Option<Latency>,
    /// Recent samples of those three; summarised when the status is read,
    /// not on the decision path.
    #[serde(skip)]
    pub latency_samples: [LatencyWindow; 3],
}

/// The most recent samples of one latency.
#[derive(Debug, Clone, Default)]
pub struct LatencyWindow {
    samples: std::collections::VecDeque<f64>,
}

impl LatencyWindow {
    /// How many samples are kept.
    pub const SIZE: usize = 1024;

    /// Adds a sample, forgetting the oldest beyond [`Self::SIZE`].
    pub fn push(&mut self, ms: f64) {
        if self.samples.len() == Self::SIZE {
            self.samples.pop_front();
        }
        self.samples.push_back(ms);
    }

    /// Median, 99th percentile and maximum of the window; `None` while it is empty.
    pub fn summary(&self) -> Option<Latency> {
        if self.samples.is_empty() {
            return None;
        }
        let mut sorted: Vec<f64> = self.samples.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let i = ((sorted.len().saturating_sub(1)) as f64 * q).round() as usize;
            sorted.get(i).copied().unwrap_or(0.0)
        };
        Some(Latency {
            p50: at(0.5),
            p99: at(0.99),
            max: sorted.last().copied().unwrap_or(0.0),
            samples: sorted.len(),
        })
    }
}

/// A latency summary.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Median, ms.
    pub p50: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// The slowest, ms: a stalled disk flush shows here first.
    pub max: f64,
    /// Samples.
    pub samples: usize,
}

/// One door or gate.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DoorStatus {
    /// The door's id in the policy.
    pub id: u32,
    /// `door` or `flapper_gate`.
    pub kind: String,
    /// `locked`, `unlocked`, `open`, `released`, `closed` (gate), `open_entry`…
    pub state: String,
    /// The active alarm, if any (`forced`, `held_pre_alarm`, `held_alarm`).
    pub alarm: Option<String>,
    /// The last event at this door, in words.
    pub last_event: Option<String>,
    /// When (ms since the epoch).
    pub last_event_at_ms: Option<i64>,
    /// The pin driver failed; the door is in its safe state as far as we know.
    pub fault: Option<String>,
}

/// One device.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceStatus {
    /// `card_reader`, `biometric`, `gpio`.
    pub kind: String,
    /// Whether it answers.
    pub online: bool,
    /// Why not, when offline.
    pub error: Option<String>,
    /// Since when (ms since the epoch).
    pub since_ms: i64,
}

/// The cached policy.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PolicyStatus {
    /// Its version (0 = none).
    pub version: u64,
    /// When the central service issued it.
    pub issued_at_ms: i64,
    /// When the central service last confirmed it (0 = never).
    pub confirmed_at_ms: i64,
    /// Milliseconds since that confirmation, at the time of the request.
    pub age_ms: Option<u64>,
}

/// The sync client.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncStatus {
    /// The central service's URL (no credentials), or none for a standalone controller.
    pub central: Option<String>,
    /// Whether the last exchange with it succeeded.
    pub online: bool,
    /// The last successful exchange (ms since the epoch).
    pub last_success_ms: Option<i64>,
    /// The error of the last exchange, in words; cleared once an exchange succeeds.
    pub last_error: Option<String>,
    /// Why the last refused policy message was refused (kept after later successes).
    pub last_refusal: Option<String>,
    /// Events the central service acknowledged since start.
    pub events_acknowledged: u64,
    /// Policy updates applied since start.
    pub policy_updates: u64,
    /// Policy messages refused (bad signature, wrong controller, unreadable,
    /// unsigned "up to date", replayed, older than the version in force).
    pub policy_refused: u64,
    /// The central service holds other content under some of this
    /// controller's event numbers: which, and that the copies here are kept
    /// (nothing from the first of them on is deleted). Stays until restart.
    pub event_conflict: Option<String>,
    /// Central's clock minus this controller's (ms), from the last signed
    /// answer; a warning is logged when it is more than a minute either way.
    pub central_clock_skew_ms: Option<i64>,
}

/// The shared board every task writes its part into.
#[derive(Debug, Clone, Default)]
pub struct StatusBoard {
    inner: Arc<Mutex<Status>>,
}

impl StatusBoard {
    /// A board for `controller`.
    pub fn new(controller: u32, started_at: Timestamp) -> Self {
        let status = Status {
            controller,
            started_at_ms: started_at.0,
            ..Status::default()
        };
        Self {
            inner: Arc::new(Mutex::new(status)),
        }
    }

    /// Changes the status. A poisoned lock (a panicking writer) still yields
    /// the data: the status page must keep working.
    pub fn update<R>(&self, change: impl FnOnce(&mut Status) -> R) -> R {
        change(&mut self.lock())
    }

    /// Shows the policy in force. The daemon calls it as soon as the cache is
    /// loaded, before `/status` answers, and the decision loop on every
    /// replacement: a technician asking right after start must see the cached
    /// version, not the empty board's 0.
    pub fn show_policy(&self, current: &crate::policy::Current) {
        let snap = &current.snapshot;
        self.update(|s| {
            s.policy.version = snap.version();
            s.policy.issued_at_ms = snap.issued_at().0;
            s.policy.confirmed_at_ms = current.confirmed_at.0;
        });
    }

    /// A copy of the status.
    pub fn read(&self) -> Status {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Status> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks a device online or offline.
    pub fn device(
        &self,
        name: &str,
        kind: &str,
        online: bool,
        error: Option<String>,
        now: Timestamp,
    ) {
        self.update(|s| {
            let entry = s.devices.entry(name.to_owned()).or_default();
            if entry.online != online || entry.kind.is_empty() {
                entry.since_ms = now.0;
            }
            entry.kind = kind.to_owned();
            entry.online = online;
            entry.error = error;
        });
    }
}

/// Serves `/status` (JSON) and `/metrics` (Prometheus text) on `listener`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    board: StatusBoard,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(board);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The status as served: with the policy's age and the latency summaries.
fn for_reading(mut status: Status) -> Status {
    let [grant, queue, commit] = &status.latency_samples;
    status.grant_latency_ms = grant.summary();
    status.queue_latency_ms = queue.summary();
    status.commit_latency_ms = commit.summary();
    if status.policy.confirmed_at_ms > 0 {
        let now = crate::clock::now_utc().0;
        status.policy.age_ms = u64::try_from(now - status.policy.confirmed_at_ms).ok();
    }
    status
}

async fn status(State(board): State<StatusBoard>) -> Json<Status> {
    Json(for_reading(board.read()))
}

async fn metrics(State(board): State<StatusBoard>) -> impl IntoResponse {
    let s = for_reading(board.read());
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let one = |v: f64| vec![(String::new(), v)];
    gauge(
        "tobira_outbox_depth",
        "Events waiting for the central service.",
        &one(s.outbox_depth as f64),
    );
    gauge(
        "tobira_last_event_seq",
        "Sequence number of the last recorded event.",
        &one(s.last_seq as f64),
    );
    gauge(
        "tobira_policy_version",
        "Version of the cached policy.",
        &one(s.policy.version as f64),
    );
    gauge(
        "tobira_policy_age_seconds",
        "Seconds since the central service last confirmed the policy (-1: never).",
        &one(s.policy.age_ms.map_or(-1.0, |ms| ms as f64 / 1000.0)),
    );
    gauge(
        "tobira_central_online",
        "1 when the last exchange with the central service succeeded.",
        &one(f64::from(u8::from(s.sync.online))),
    );
    let latency: Vec<_> = [
        ("grant", s.grant_latency_ms),
        ("queue", s.queue_latency_ms),
        ("commit", s.commit_latency_ms),
    ]
    .into_iter()
    .filter_map(|(stage, l)| l.map(|l| (stage, l)))
    .flat_map(|(stage, l)| {
        [("0.5", l.p50), ("0.99", l.p99), ("1", l.max)].map(|(q, ms)| {
            (
                format!("{{stage=\"{stage}\",quantile=\"{q}\"}}"),
                ms / 1000.0,
            )
        })
    })
    .collect();
    gauge(
        "tobira_grant_latency_seconds",
        "Card seen by PC/SC to lock output over the last 1024 grants (stage grant), and its queueing and outbox-commit parts; quantile 1 is the slowest.",
        &latency,
    );
    let devices: Vec<_> = s
        .devices
        .iter()
        .map(|(name, d)| {
            (
                format!(
                    "{{device=\"{}\",kind=\"{}\"}}",
                    escape(name),
                    escape(&d.kind)
                ),
                f64::from(u8::from(d.online)),
            )
        })
        .collect();
    gauge(
        "tobira_device_online",
        "1 when the device answers.",
        &devices,
    );
    let doors: Vec<_> = s
        .doors
        .iter()
        .map(|(name, d)| {
            (
                format!("{{door=\"{}\"}}", escape(name)),
                f64::from(u8::from(d.alarm.is_some())),
            )
        })
        .collect();
    gauge(
        "tobira_door_alarm",
        "1 while the door is forced or held open.",
        &doors,
    );
    let outputs: Vec<_> = s
        .outputs
        .iter()
        .map(|(name, on)| {
            (
                format!("{{output=\"{}\"}}", escape(name)),
                f64::from(u8::from(*on)),
            )
        })
        .collect();
    gauge(
        "tobira_output_energised",
        "1 while the output is energised.",
        &outputs,
    );
    let _ = writeln!(out, "# HELP tobira_decisions_total Access decisions since start.\n# TYPE tobira_decisions_total counter");
    for (verdict, n) in &s.decisions {
        let _ = writeln!(
            out,
            "tobira_decisions_total{{verdict=\"{}\"}} {n}",
            escape(verdict)
        );
    }
    let _ = writeln!(out, "# HELP tobira_events_acknowledged_total Events the central service acknowledged since start.\n# TYPE tobira_events_acknowledged_total counter\ntobira_events_acknowledged_total {}", s.sync.events_acknowledged);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
