//! The sync client: pulls signed policy from the central service and pushes the outbox to it.
//!
//! Every policy request carries a fresh nonce; only a signed answer that
//! repeats it may change the policy or confirm it (reset its age), so a
//! proxy can neither forge "up to date" nor replay an older answer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Method, Response, StatusCode};
use tobira_firmware::{
    AntiPassback, ChainEpoch, ControllerId, DeltaError, ModuleId, PersonId, Snapshot,
    SnapshotError, Timestamp, ZoneId,
};
use tobira_protocol::{
    controller_authorization, new_nonce, EventBatch, EventReceipt, Expected, PassageFeed,
    PolicyKey, PolicyMessage, ProtocolError, SignedPolicy, SnapshotNeeded, DELTA_PATH, EVENTS_PATH,
    NONCE_PARAM, PASSAGES_PATH, SNAPSHOT_PATH, WATCH_PATH,
};
use tobira_protocol::{
    enrollment_job_path, EnrollmentFailure, EnrollmentJobs, EnrollmentOutcome, ENROLLMENT_JOBS_PATH,
};
use tokio::sync::{mpsc, watch};

use crate::clock::now_utc;
use crate::config::CentralConfig;
use crate::devices::BiometricHandle;
use crate::memory::RemotePassage;
use crate::outbox::Outbox;
use crate::policy::PolicyStore;
use crate::state::StateError;
use crate::status::StatusBoard;

/// A central service that does not accept the connection within this is treated as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// An idle connection is dropped after this: before the central service
/// closes it (its header timeout, 10 s by default, also ends idle
/// keep-alive), so that a request is not sent just as the server closes.
const POOL_IDLE: Duration = Duration::from_secs(5);
/// Longest any ordinary request (snapshot, delta, event batch) may take, body included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Extra time a long-poll gets beyond the wait it asked for, for the answer to travel.
const WATCH_GRACE: Duration = Duration::from_secs(10);
/// The outbox is looked at this often even without an append notification.
const PUSH_INTERVAL: Duration = Duration::from_secs(1);
/// How long the last upload at shutdown may take: the daemon must stop promptly.
const FINAL_PUSH: Duration = Duration::from_secs(3);
/// Largest signed policy accepted. 100 000 cards and their people are a few
/// tens of MB of JSON; the limit only stops a runaway body from exhausting memory.
const MAX_POLICY_BODY: usize = 256 * 1024 * 1024;
/// Largest passage feed accepted: the first answer after a start holds the
/// latest passage of everyone in the controller's zones.
const MAX_PASSAGES_BODY: usize = 64 * 1024 * 1024;
/// Largest answer accepted for everything else (receipts, watch answers, errors).
const MAX_SMALL_BODY: usize = 1024 * 1024;
/// Error bodies are cut to this many characters in logs and status.
const MAX_ERROR_TEXT: usize = 512;
/// Retries never come quicker than this, whatever the configuration says.
const BACKOFF_FLOOR_MS: u64 = 10;
/// A central clock further than this from the controller's is logged as a
/// warning: schedules, bookings and the policy age all run on the
/// controller's clock. It refuses nothing (the nonce, not the time, proves
/// an answer fresh, and a controller must not lock up over a clock).
const CLOCK_SKEW_WARNING_MS: i64 = 60_000;

/// Reads the PEM certificates of `central.ca_file`; at least one.
pub fn read_ca_file(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("{}: {}", path.display(), error_chain(e)))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no PEM certificate in the file",
            path.display()
        ));
    }
    Ok(certs)
}

/// Why an exchange with the central service failed or its answer was refused.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The central section cannot be used (bad key, URL or secret).
    #[error("sync configuration: {0}")]
    Config(String),
    /// No answer: connection refused, timeout, TLS failure, connection dropped.
    #[error("cannot reach the central service at {url}: {detail}")]
    Network {
        /// The central service's URL, without credentials.
        url: String,
        /// What went wrong, down to the root cause.
        detail: String,
    },
    /// The central service answered with an unexpected status.
    #[error("central service answered {status} to the {what}: {body}")]
    Status {
        /// Which request.
        what: &'static str,
        /// The HTTP status code.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// An answer other than a policy could not be read.
    #[error("central service's answer to the {what} is unreadable: {detail}")]
    Unreadable {
        /// Which request.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// A policy answer is not a signed policy envelope at all.
    #[error("policy refused: the answer is not a signed policy: {0}")]
    Malformed(String),
    /// The envelope does not verify, does not parse or is for another controller.
    #[error("policy refused: {0}")]
    Refused(#[from] ProtocolError),
    /// A snapshot came where a delta was asked for, or the reverse.
    #[error("policy refused: expected a {expected}, got a {got}")]
    WrongKind {
        /// What was asked for.
        expected: &'static str,
        /// What came.
        got: &'static str,
    },
    /// The message would take the policy back to an older version: a replayed
    /// old message could bring a lost card back to life. (Messages carry the
    /// request's nonce, so this means central itself went back.)
    #[error("policy refused: version {offered} is older than version {held} in force")]
    Stale {
        /// The version in force.
        held: u64,
        /// The version the message brings.
        offered: u64,
    },
    /// An "up to date" that is not signed and bound to the request (a 204,
    /// or a bare watch answer): anyone on the path could have made it.
    #[error(
        "policy refused: the {what} answer is not signed ({detail}); the policy is not confirmed"
    )]
    Unsigned {
        /// Which request.
        what: &'static str,
        /// What came instead.
        detail: String,
    },
    /// A signed "up to date" for a version other than the one in force.
    #[error("policy refused: central confirms version {confirmed}, version {held} is in force")]
    NotCurrent {
        /// The version in force.
        held: u64,
        /// The version the answer confirms.
        confirmed: u64,
    },
    /// A verified delta does not apply to the snapshot in force.
    #[error("policy refused: {0}")]
    Delta(#[from] DeltaError),
    /// A verified snapshot is not consistent.
    #[error("policy refused: {0}")]
    Snapshot(#[from] SnapshotError),
    /// The receipt acknowledges none of the events of the batch.
    #[error(
        "central service acknowledged events only through {through}, the batch starts at {first}"
    )]
    NoProgress {
        /// First sequence number of the batch.
        first: u64,
        /// What the receipt said.
        through: u64,
    },
    /// The central service holds other content under event numbers of the
    /// batch: the events here are kept, and nothing from `first` on is deleted.
    #[error(
        "central service holds other content under event numbers {seqs:?}: this controller keeps its copies and deletes nothing from event {first} on"
    )]
    EventConflict {
        /// The conflicting sequence numbers, as the receipt named them.
        seqs: Vec<u64>,
        /// The first of them within the batch.
        first: u64,
    },
    /// The receipt is for another chain epoch than the batch's: it
    /// acknowledges nothing here.
    #[error("central service answered for event chain epoch {answered}, the batch was of epoch {sent}: nothing is deleted")]
    WrongEpoch {
        /// The batch's epoch.
        sent: ChainEpoch,
        /// The receipt's.
        answered: ChainEpoch,
    },
    /// The controller's own database failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Building the new snapshot did not finish (the runtime is shutting down).
    #[error("building the new policy failed: {0}")]
    Build(String),
}

impl SyncError {
    /// Whether a policy message was refused (counted in `policy_refused`).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Malformed(_)
                | Self::Refused(_)
                | Self::WrongKind { .. }
                | Self::Stale { .. }
                | Self::Unsigned { .. }
                | Self::NotCurrent { .. }
                | Self::Delta(_)
                | Self::Snapshot(_)
        )
    }

    /// Whether the exchange with the central service itself failed.
    pub fn is_offline(&self) -> bool {
        matches!(
            self,
            Self::Network { .. } | Self::Status { .. } | Self::Unreadable { .. }
        )
    }
}

/// What a policy pull did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyOutcome {
    /// The central service confirmed the version in force.
    Current {
        /// That version.
        version: u64,
    },
    /// A new snapshot is in force.
    Updated {
        /// The version before.
        from: u64,
        /// The version now.
        to: u64,
        /// Whether it came as a full snapshot rather than a delta.
        full: bool,
    },
}

/// What a long-poll found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchOutcome {
    /// Nothing changed during the wait; the version in force is confirmed.
    Unchanged {
        /// That version.
        version: u64,
    },
    /// The central service is at another version: pull now.
    Moved {
        /// The version in force here.
        from: u64,
        /// The central service's version.
        to: u64,
        /// Whether the change must apply at once (lost card, threat level).
        urgent: bool,
    },
}

/// What an event upload did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushOutcome {
    /// Events sent in the batch (0: the outbox was empty).
    pub sent: usize,
    /// Events deleted from the outbox on the central service's receipt.
    pub acknowledged: u64,
}

/// The sync client of one controller. [`run`] loops over its steps; each
/// step also records its result on the status board.
#[derive(Debug, Clone)]
pub struct SyncClient {
    http: reqwest::Client,
    /// Base URL without credentials or a trailing slash: for requests, logs and status.
    base: String,
    /// Marked sensitive so that it never shows in debug output.
    auth: HeaderValue,
    key: PolicyKey,
    controller: ControllerId,
    watch_ms: u64,
    batch: usize,
    backoff_min_ms: u64,
    backoff_max_ms: u64,
    policy: PolicyStore,
    outbox: Outbox,
    board: StatusBoard,
    passages_ms: u64,
    /// Where merged passages go: (zone, person) pairs whose occupancy changed.
    shared: Option<mpsc::UnboundedSender<Vec<(ZoneId, PersonId)>>>,
    /// The fingerprint modules this controller drives, for enrollment jobs.
    modules: BTreeMap<ModuleId, BiometricHandle>,
}

impl SyncClient {
    /// A client for `central`. Fails on an unusable key, URL or secret.
    pub fn new(
        central: &CentralConfig,
        controller: ControllerId,
        policy: PolicyStore,
        outbox: Outbox,
        board: StatusBoard,
    ) -> Result<Self, SyncError> {
        let key = PolicyKey::from_hex(&central.public_key)
            .map_err(|e| SyncError::Config(format!("central.public_key: {e}")))?;
        let url = reqwest::Url::parse(&central.url)
            .map_err(|e| SyncError::Config(format!("central.url: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SyncError::Config(
                "central.url must start with http:// or https://".into(),
            ));
        }
        let base = without_credentials(&url);
        let secret = central
            .secret
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| SyncError::Config("central.secret is missing".into()))?;
        let mut auth = HeaderValue::from_str(&controller_authorization(controller, secret))
            .map_err(|_| {
                SyncError::Config(
                    "central.secret contains characters not allowed in a header".into(),
                )
            })?;
        auth.set_sensitive(true);
        if url.scheme() == "http" && !central.allow_insecure_http {
            return Err(SyncError::Config(
                "central.url is http:// and central.allow_insecure_http is not set".into(),
            ));
        }
        let mut builder = reqwest::Client::builder();
        if let Some(ca_file) = &central.ca_file {
            // Pinned: only this CA, not the public web roots, vouches for central.
            builder = builder.tls_built_in_root_certs(false);
            for cert in read_ca_file(ca_file)
                .map_err(|e| SyncError::Config(format!("central.ca_file: {e}")))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        if url.scheme() == "http" {
            tracing::warn!(central = %base, "allow_insecure_http: the sync path is unencrypted and unauthenticated");
        }
        let http = builder
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(POOL_IDLE)
            // A redirect could carry the credentials elsewhere; the central service never redirects.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tobira-controller/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SyncError::Config(format!("HTTP client: {}", error_chain(e))))?;
        let batch = central.batch.clamp(1, tobira_protocol::MAX_BATCH);
        let backoff_min_ms = central.backoff_min_ms.max(BACKOFF_FLOOR_MS);
        Ok(Self {
            http,
            // Credentials in the URL are no part of the protocol (the bearer
            // token is), and reqwest would send them as a second Authorization header.
            base,
            auth,
            key,
            controller,
            watch_ms: central.watch_ms,
            batch,
            backoff_min_ms,
            backoff_max_ms: central.backoff_max_ms.max(backoff_min_ms),
            policy,
            outbox,
            board,
            passages_ms: central.passages_ms,
            shared: None,
            modules: BTreeMap::new(),
        })
    }

    /// Pulls the passages other controllers record in this controller's
    /// zones and tells the decision loop which occupancy changed.
    pub fn with_shared_occupancy(
        mut self,
        changed: mpsc::UnboundedSender<Vec<(ZoneId, PersonId)>>,
    ) -> Self {
        self.shared = Some(changed);
        self
    }

    /// Pulls passages after `cursor` (all current ones without) and merges
    /// them into the occupancy on disk. Returns the feed's next cursor,
    /// whether more wait, and the (zone, person) pairs that changed.
    pub async fn pull_passages_once(
        &self,
        cursor: Option<&str>,
    ) -> Result<(String, bool, Vec<(ZoneId, PersonId)>), SyncError> {
        let what = "passages request";
        let path = match cursor {
            Some(c) => format!("{PASSAGES_PATH}?after={c}"),
            None => PASSAGES_PATH.to_owned(),
        };
        let feed: PassageFeed = self
            .get_json(&path, REQUEST_TIMEOUT, MAX_PASSAGES_BODY, what)
            .await?;
        // Only zones whose occupancy the brain tracks under the policy in force.
        let snapshot = self.policy.current().snapshot;
        let tracked = |zone: ZoneId| {
            snapshot
                .zone(zone)
                .is_some_and(|z| z.settings.anti_passback != AntiPassback::Off)
        };
        let passages: Vec<RemotePassage> = feed
            .passages
            .iter()
            .filter(|p| tracked(p.zone))
            .map(|p| RemotePassage {
                zone: p.zone,
                person: p.person,
                inside: p.inside,
                at: p.at,
            })
            .collect();
        let changed = crate::memory::merge_remote(self.outbox.pool(), &passages).await?;
        Ok((
            feed.next,
            feed.more,
            changed.iter().map(|p| (p.zone, p.person)).collect(),
        ))
    }

    /// Serves enrollment jobs for these modules (without any, the client
    /// does not ask the central service for jobs).
    pub fn with_biometrics(mut self, modules: BTreeMap<ModuleId, BiometricHandle>) -> Self {
        self.modules = modules;
        self
    }

    /// The central service's URL without credentials.
    pub fn central(&self) -> &str {
        &self.base
    }

    /// Brings the policy up to the central service's: a delta when one is
    /// held, a full snapshot when none is or the central service asks for it
    /// or the delta does not apply.
    pub async fn pull_policy_once(&self) -> Result<PolicyOutcome, SyncError> {
        let result = self.pull_policy().await;
        match &result {
            Ok(_) => self.succeeded(),
            Err(e) => self.failed(e),
        }
        result
    }

    /// Long-polls for a change past the version in force; confirms the
    /// version when the wait ends without one.
    pub async fn watch_once(&self) -> Result<WatchOutcome, SyncError> {
        let result = self.watch().await;
        match &result {
            Ok(_) => self.succeeded(),
            Err(e) => self.failed(e),
        }
        result
    }

    /// Uploads the oldest batch of the outbox and deletes what the central
    /// service acknowledged.
    pub async fn push_events_once(&self) -> Result<PushOutcome, SyncError> {
        let result = self.push_events().await;
        match &result {
            Ok(o) if o.sent > 0 => self.succeeded(),
            Ok(_) => {}
            Err(e) => self.failed(e),
        }
        result
    }

    /// Runs the policy loop and the event loop until `shutdown` turns true,
    /// then makes one last bounded attempt to upload pending events.
    pub async fn run(&self, shutdown: watch::Receiver<bool>) {
        self.board
            .update(|s| s.sync.central = Some(self.base.clone()));
        self.show_policy();
        if let Ok(depth) = self.outbox.depth().await {
            self.board.update(|s| s.outbox_depth = depth);
        }
        tracing::info!(central = %self.base, controller = %self.controller, "sync client started");
        tokio::join!(
            self.policy_loop(shutdown.clone()),
            self.passage_loop(shutdown.clone()),
            self.enrollment_loop(shutdown.clone()),
            self.event_loop(shutdown)
        );
        tracing::info!(central = %self.base, "sync client stopped");
    }

    async fn policy_loop(&self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Backoff::new(self.backoff_min_ms, self.backoff_max_ms);
        let mut pull = true;
        loop {
            let step = async {
                if pull {
                    self.pull_policy_once().await.map(|_| false)
                } else {
                    self.watch_once()
                        .await
                        .map(|o| matches!(o, WatchOutcome::Moved { .. }))
                }
            };
            let result = tokio::select! {
                r = step => r,
                () = stopped(&mut shutdown) => return,
            };
            match result {
                Ok(pull_next) => {
                    backoff.reset();
                    pull = pull_next;
                }
                Err(_) => {
                    // After any failure pull first: a change may have been missed.
                    pull = true;
                    let delay = backoff.next_delay();
                    tracing::debug!(retry_in_ms = delay.as_millis() as u64, "policy sync retry");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = stopped(&mut shutdown) => return,
                    }
                }
            }
        }
    }

    /// Keeps occupancy shared with the other controllers of the same zones.
    /// Failures are retried quietly at the next interval: a door never waits
    /// on this, and the policy and event loops already report the link.
    async fn passage_loop(&self, mut shutdown: watch::Receiver<bool>) {
        let Some(changed_tx) = &self.shared else {
            return;
        };
        if self.passages_ms == 0 {
            return;
        }
        let interval = Duration::from_millis(self.passages_ms);
        let mut cursor: Option<String> = None;
        let mut failing = false;
        loop {
            // Which zones are tracked comes from the policy: without one,
            // every passage would be dropped and the cursor moved past it.
            if self.policy.version() == 0 {
                tokio::select! {
                    () = tokio::time::sleep(interval) => continue,
                    () = stopped(&mut shutdown) => break,
                }
            }
            let result = tokio::select! {
                r = self.pull_passages_once(cursor.as_deref()) => r,
                () = stopped(&mut shutdown) => break,
            };
            let mut more = false;
            match result {
                Ok((next, again, changed)) => {
                    failing = false;
                    if !changed.is_empty() {
                        tracing::info!(
                            changed = changed.len(),
                            "occupancy from other controllers of the same zones"
                        );
                        if changed_tx.send(changed).is_err() {
                            break;
                        }
                    }
                    cursor = Some(next);
                    more = again;
                }
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "passages of other controllers not fetched; retrying");
                }
                Err(_) => {}
            }
            if more {
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = stopped(&mut shutdown) => break,
            }
        }
    }

    /// Long-polls the central service for enrollment jobs and runs each on
    /// its module, one at a time, reporting every outcome. A job whose
    /// report is lost stays pending at the central service and comes back.
    async fn enrollment_loop(&self, mut shutdown: watch::Receiver<bool>) {
        if self.modules.is_empty() {
            return;
        }
        let mut backoff = Backoff::new(self.backoff_min_ms, self.backoff_max_ms);
        loop {
            let result = tokio::select! {
                r = self.enrollment_jobs_once() => r,
                () = stopped(&mut shutdown) => return,
            };
            match result {
                Ok(()) => backoff.reset(),
                Err(e) => {
                    self.failed(&e);
                    let delay = backoff.next_delay();
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = stopped(&mut shutdown) => return,
                    }
                }
            }
        }
    }

    /// One long-poll for enrollment jobs; runs and reports those it gets.
    pub async fn enrollment_jobs_once(&self) -> Result<(), SyncError> {
        let what = "enrollment jobs request";
        let timeout = Duration::from_millis(self.watch_ms).saturating_add(WATCH_GRACE);
        let path = format!("{ENROLLMENT_JOBS_PATH}?wait_ms={}", self.watch_ms);
        let list: EnrollmentJobs = self.get_json(&path, timeout, MAX_SMALL_BODY, what).await?;
        for job in list.jobs {
            tracing::info!(job = job.id, module = job.module.0, task = ?job.task, "enrollment job received");
            let outcome = match self.modules.get(&job.module) {
                Some(module) => module.run_job(job.task).await,
                None => EnrollmentOutcome::Failed {
                    reason: EnrollmentFailure::UnknownModule,
                    detail: format!("this controller drives no module {}", job.module.0),
                },
            };
            tracing::info!(job = job.id, ?outcome, "enrollment job done");
            let what = "enrollment job report";
            let response = self
                .http
                .post(format!("{}{}", self.base, enrollment_job_path(job.id)))
                .header(AUTHORIZATION, self.auth.clone())
                .timeout(REQUEST_TIMEOUT)
                .json(&outcome)
                .send()
                .await
                .map_err(|e| self.network(e))?;
            self.expect_success(response, what).await?;
        }
        Ok(())
    }

    async fn event_loop(&self, mut shutdown: watch::Receiver<bool>) {
        let appended = self.outbox.appended();
        let mut backoff = Backoff::new(self.backoff_min_ms, self.backoff_max_ms);
        loop {
            let result = tokio::select! {
                r = self.push_events_once() => r,
                () = stopped(&mut shutdown) => break,
            };
            match result {
                Ok(o) if o.sent > 0 => {
                    // More may be waiting behind a full batch.
                    backoff.reset();
                    continue;
                }
                Ok(_) => {
                    backoff.reset();
                    tokio::select! {
                        () = appended.notified() => {}
                        () = tokio::time::sleep(PUSH_INTERVAL) => {}
                        () = stopped(&mut shutdown) => break,
                    }
                }
                Err(_) => {
                    let delay = backoff.next_delay();
                    tracing::debug!(retry_in_ms = delay.as_millis() as u64, "event upload retry");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = stopped(&mut shutdown) => break,
                    }
                }
            }
        }
        let last = async {
            while let Ok(o) = self.push_events_once().await {
                if o.sent == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(FINAL_PUSH, last).await;
        match self.outbox.depth().await {
            Ok(0) => {}
            Ok(waiting) => tracing::warn!(
                waiting,
                "stopping with events in the outbox; they are sent after the next start"
            ),
            Err(e) => tracing::error!(error = %e, "cannot read the outbox depth"),
        }
    }

    async fn pull_policy(&self) -> Result<PolicyOutcome, SyncError> {
        let held = self.policy.version();
        if held == 0 {
            return self.pull_snapshot().await;
        }
        let what = "delta request";
        let nonce = new_nonce();
        let response = self
            .send(
                Method::GET,
                &format!("{DELTA_PATH}?since={held}&{NONCE_PARAM}={nonce}"),
                REQUEST_TIMEOUT,
                None,
            )
            .await?;
        match response.status() {
            // The old protocol's "up to date": unsigned, so proof of nothing.
            StatusCode::NO_CONTENT => Err(SyncError::Unsigned {
                what,
                detail: "204 No Content".into(),
            }),
            StatusCode::CONFLICT => {
                let body = self.read_body(response, MAX_SMALL_BODY, what).await?;
                let reason = serde_json::from_slice::<SnapshotNeeded>(&body)
                    .map(|n| n.reason)
                    .unwrap_or_else(|_| "no reason given".into());
                tracing::info!(held, %reason, "central service sends a full snapshot instead of a delta");
                self.pull_snapshot().await
            }
            status if status.is_success() => {
                let body = self.read_body(response, MAX_POLICY_BODY, what).await?;
                match self.build(body, Expect::Delta, nonce).await {
                    Ok((Opened::Policy(next), central)) => {
                        self.clock_check(central);
                        self.install(held, *next, false).await
                    }
                    Ok((Opened::Current, central)) => {
                        self.clock_check(central);
                        self.policy.confirm(now_utc()).await?;
                        self.show_policy();
                        Ok(PolicyOutcome::Current { version: held })
                    }
                    Err(e @ SyncError::Delta(_)) => {
                        // Verified but not applicable here: the full snapshot repairs it.
                        self.failed(&e);
                        self.pull_snapshot().await
                    }
                    Err(e) => Err(e),
                }
            }
            _ => Err(self.status_error(response, what).await),
        }
    }

    async fn pull_snapshot(&self) -> Result<PolicyOutcome, SyncError> {
        let what = "snapshot request";
        let held = self.policy.version();
        let nonce = new_nonce();
        let response = self
            .send(
                Method::GET,
                &format!("{SNAPSHOT_PATH}?{NONCE_PARAM}={nonce}"),
                REQUEST_TIMEOUT,
                None,
            )
            .await?;
        let response = self.expect_success(response, what).await?;
        let body = self.read_body(response, MAX_POLICY_BODY, what).await?;
        match self.build(body, Expect::Snapshot, nonce).await? {
            (Opened::Policy(next), central) => {
                self.clock_check(central);
                self.install(held, *next, true).await
            }
            // open_policy gives Current only for a delta request.
            (Opened::Current, _) => Err(SyncError::WrongKind {
                expected: "snapshot",
                got: "current",
            }),
        }
    }

    /// Verifies, parses and builds the new snapshot on the blocking pool:
    /// parsing and checking 100 000 cards takes tens of milliseconds.
    async fn build(
        &self,
        body: Vec<u8>,
        expect: Expect,
        nonce: String,
    ) -> Result<(Opened, Timestamp), SyncError> {
        let key = self.key;
        let controller = self.controller;
        let held = Arc::clone(&self.policy.current().snapshot);
        tokio::task::spawn_blocking(move || {
            open_policy(&key, controller, &nonce, &body, &held, expect)
        })
        .await
        .map_err(|e| SyncError::Build(e.to_string()))?
    }

    /// Shows how far central's clock is from this one, and warns when that
    /// is more than [`CLOCK_SKEW_WARNING_MS`] (once, until it is back within).
    fn clock_check(&self, central: Timestamp) {
        let skew = central.0.saturating_sub(now_utc().0);
        let was = self
            .board
            .update(|s| s.sync.central_clock_skew_ms.replace(skew));
        let far = |s: i64| s.saturating_abs() > CLOCK_SKEW_WARNING_MS;
        if far(skew) && !was.is_some_and(far) {
            tracing::warn!(
                skew_ms = skew,
                "the central service's clock and this controller's differ by more than a minute; check NTP on both"
            );
        }
    }

    async fn install(
        &self,
        from: u64,
        next: Snapshot,
        full: bool,
    ) -> Result<PolicyOutcome, SyncError> {
        let to = next.version();
        self.policy.replace(next, now_utc(), true).await?;
        self.board
            .update(|s| s.sync.policy_updates = s.sync.policy_updates.saturating_add(1));
        self.show_policy();
        tracing::info!(from, to, full, "policy updated");
        Ok(PolicyOutcome::Updated { from, to, full })
    }

    async fn watch(&self) -> Result<WatchOutcome, SyncError> {
        let what = "watch request";
        let since = self.policy.version();
        let timeout = Duration::from_millis(self.watch_ms).saturating_add(WATCH_GRACE);
        let nonce = new_nonce();
        let path = format!(
            "{WATCH_PATH}?since={since}&wait_ms={}&{NONCE_PARAM}={nonce}",
            self.watch_ms
        );
        let response = self.send(Method::GET, &path, timeout, None).await?;
        let response = self.expect_success(response, what).await?;
        let body = self.read_body(response, MAX_SMALL_BODY, what).await?;
        let answer = open_watch(&self.key, self.controller, &nonce, &body, since)?;
        self.clock_check(answer.central_time);
        if answer.version == since {
            self.policy.confirm(now_utc()).await?;
            self.show_policy();
            Ok(WatchOutcome::Unchanged { version: since })
        } else {
            if answer.urgent {
                tracing::info!(from = since, to = answer.version, "urgent policy change");
            }
            Ok(WatchOutcome::Moved {
                from: since,
                to: answer.version,
                urgent: answer.urgent,
            })
        }
    }

    async fn push_events(&self) -> Result<PushOutcome, SyncError> {
        let what = "event upload";
        let events = self.outbox.pending(self.batch).await?;
        let (Some(first), Some(last)) = (
            events.first().map(|e| e.event.seq),
            events.last().map(|e| e.event.seq),
        ) else {
            let depth = self.outbox.depth().await?;
            self.board.update(|s| s.outbox_depth = depth);
            return Ok(PushOutcome::default());
        };
        let sent = events.len();
        let epoch = self.outbox.chain().await.epoch;
        let batch = EventBatch { epoch, events };
        let response = self
            .send(Method::POST, EVENTS_PATH, REQUEST_TIMEOUT, Some(&batch))
            .await?;
        let receipt: EventReceipt = self.read_json(response, MAX_SMALL_BODY, what).await?;
        if receipt.epoch != epoch {
            return Err(SyncError::WrongEpoch {
                sent: epoch,
                answered: receipt.epoch,
            });
        }
        if let Some(chain_break) = &receipt.chain_break {
            tracing::warn!(%chain_break, "central service found a break in this controller's event chain");
        }
        // Only what this batch carried is acknowledged: events appended since
        // (or a receipt claiming more) must not be deleted unsent.
        let mut through = receipt.stored_through.min(last);
        // Central holds other content under some of these numbers: keep our
        // copies, and delete nothing from the first of them on.
        let conflict = receipt
            .conflict
            .iter()
            .copied()
            .filter(|seq| (first..=last).contains(seq))
            .min();
        if let Some(conflict) = conflict {
            through = through.min(conflict.saturating_sub(1));
            let error = SyncError::EventConflict {
                seqs: receipt.conflict.clone(),
                first: conflict,
            };
            let text = error.to_string();
            self.board
                .update(|s| s.sync.event_conflict = Some(text.clone()));
            if through >= first {
                let acknowledged = self.outbox.acknowledge(through).await?;
                self.board.update(|s| {
                    s.sync.events_acknowledged =
                        s.sync.events_acknowledged.saturating_add(acknowledged);
                });
            }
            let depth = self.outbox.depth().await?;
            self.board.update(|s| s.outbox_depth = depth);
            // An error, so the loop backs off instead of re-sending at once.
            return Err(error);
        }
        if through < first {
            return Err(SyncError::NoProgress {
                first,
                through: receipt.stored_through,
            });
        }
        let acknowledged = self.outbox.acknowledge(through).await?;
        let depth = self.outbox.depth().await?;
        self.board.update(|s| {
            s.sync.events_acknowledged = s.sync.events_acknowledged.saturating_add(acknowledged);
            s.outbox_depth = depth;
        });
        tracing::debug!(
            sent,
            through,
            stored = receipt.stored,
            duplicates = receipt.duplicates,
            "events acknowledged"
        );
        Ok(PushOutcome { sent, acknowledged })
    }

    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        timeout: Duration,
        body: Option<&EventBatch>,
    ) -> Result<Response, SyncError> {
        let mut request = self
            .http
            .request(method, format!("{}{path_and_query}", self.base))
            .header(AUTHORIZATION, self.auth.clone())
            .timeout(timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.map_err(|e| self.network(e))
    }

    /// GETs `path` and reads its JSON answer.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        timeout: Duration,
        limit: usize,
        what: &'static str,
    ) -> Result<T, SyncError> {
        let response = self.send(Method::GET, path, timeout, None).await?;
        self.read_json(response, limit, what).await
    }

    /// Reads a successful answer's JSON body (at most `limit` bytes).
    async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        response: Response,
        limit: usize,
        what: &'static str,
    ) -> Result<T, SyncError> {
        let response = self.expect_success(response, what).await?;
        let body = self.read_body(response, limit, what).await?;
        serde_json::from_slice(&body).map_err(|e| SyncError::Unreadable {
            what,
            detail: e.to_string(),
        })
    }

    async fn expect_success(
        &self,
        response: Response,
        what: &'static str,
    ) -> Result<Response, SyncError> {
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(self.status_error(response, what).await)
        }
    }

    async fn status_error(&self, response: Response, what: &'static str) -> SyncError {
        let status = response.status().as_u16();
        let body = self
            .read_body(response, MAX_SMALL_BODY, what)
            .await
            .map(|b| truncate(&String::from_utf8_lossy(&b)))
            .unwrap_or_default();
        SyncError::Status { what, status, body }
    }

    /// Reads a whole body, refusing one larger than `limit`.
    async fn read_body(
        &self,
        mut response: Response,
        limit: usize,
        what: &'static str,
    ) -> Result<Vec<u8>, SyncError> {
        let too_large = || SyncError::Unreadable {
            what,
            detail: format!("the answer is larger than {limit} bytes"),
        };
        if response
            .content_length()
            .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.network(e))? {
            if body.len().saturating_add(chunk.len()) > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn network(&self, e: reqwest::Error) -> SyncError {
        SyncError::Network {
            url: self.base.clone(),
            detail: error_chain(e),
        }
    }

    fn succeeded(&self) {
        let now = now_utc();
        self.board.update(|s| {
            s.sync.online = true;
            s.sync.last_success_ms = Some(now.0);
            // The error described an exchange that has since gone through:
            // left standing, it would send a technician after a fixed fault.
            s.sync.last_error = None;
        });
    }

    fn failed(&self, e: &SyncError) {
        let text = e.to_string();
        self.board.update(|s| {
            s.sync.last_error = Some(text.clone());
            if e.is_offline() {
                s.sync.online = false;
            }
            if e.is_refusal() {
                s.sync.policy_refused = s.sync.policy_refused.saturating_add(1);
                s.sync.last_refusal = Some(text.clone());
            }
        });
        match e {
            _ if e.is_refusal() => {
                tracing::error!(central = %self.base, error = %text, "policy refused, not applied")
            }
            SyncError::Status { status: 401, .. } => {
                tracing::error!(central = %self.base, error = %text, "central service refuses this controller's credentials")
            }
            // Any other 4xx means this client sent something wrong: a bug to report.
            SyncError::Status { status, .. } if (400..500).contains(status) && *status != 429 => {
                tracing::error!(central = %self.base, error = %text, "central service rejected a request")
            }
            SyncError::State(_)
            | SyncError::Build(_)
            | SyncError::Config(_)
            | SyncError::EventConflict { .. }
            | SyncError::NoProgress { .. } => {
                tracing::error!(central = %self.base, error = %text, "sync failed")
            }
            _ => tracing::warn!(central = %self.base, error = %text, "sync failed"),
        }
    }

    fn show_policy(&self) {
        let current = self.policy.current();
        self.board.update(|s| {
            s.policy.version = current.snapshot.version();
            s.policy.issued_at_ms = current.snapshot.issued_at().0;
            s.policy.confirmed_at_ms = current.confirmed_at.0;
        });
    }
}

/// Runs the sync client until `shutdown` becomes true. A configuration the
/// client cannot use is logged and shown on the status board; the controller
/// then keeps deciding on its cached policy. Occupancy changes merged from
/// other controllers are announced on `shared`.
pub async fn run(
    central: CentralConfig,
    controller: ControllerId,
    policy: PolicyStore,
    outbox: Outbox,
    board: StatusBoard,
    shared: mpsc::UnboundedSender<Vec<(ZoneId, PersonId)>>,
    shutdown: watch::Receiver<bool>,
) {
    run_with_biometrics(
        central,
        controller,
        policy,
        outbox,
        board,
        shared,
        BTreeMap::new(),
        shutdown,
    )
    .await;
}

/// [`run`], also serving enrollment jobs on these fingerprint modules.
#[allow(clippy::too_many_arguments)]
pub async fn run_with_biometrics(
    central: CentralConfig,
    controller: ControllerId,
    policy: PolicyStore,
    outbox: Outbox,
    board: StatusBoard,
    shared: mpsc::UnboundedSender<Vec<(ZoneId, PersonId)>>,
    modules: BTreeMap<ModuleId, BiometricHandle>,
    mut shutdown: watch::Receiver<bool>,
) {
    match SyncClient::new(&central, controller, policy, outbox, board.clone()) {
        Ok(client) => {
            client
                .with_shared_occupancy(shared)
                .with_biometrics(modules)
                .run(shutdown)
                .await
        }
        Err(e) => {
            tracing::error!(error = %e, "sync client cannot start");
            board.update(|s| {
                s.sync.online = false;
                s.sync.last_error = Some(e.to_string());
            });
            stopped(&mut shutdown).await;
        }
    }
}

/// Which policy message a request expects.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Snapshot,
    Delta,
}

/// What a verified answer to a snapshot or delta request says.
#[derive(Debug)]
enum Opened {
    /// The policy to put in force (boxed: a snapshot's indexes are large).
    Policy(Box<Snapshot>),
    /// The version in force is current.
    Current,
}

/// A verified answer to a long-poll.
#[derive(Debug, Clone, Copy)]
struct Watched {
    version: u64,
    urgent: bool,
    central_time: Timestamp,
}

/// Reads the envelope and opens it for the request that carried `nonce`:
/// signature, then parse, then controller, nonce and version.
fn open_envelope(
    key: &PolicyKey,
    controller: ControllerId,
    nonce: &str,
    body: &[u8],
    held: u64,
) -> Result<PolicyMessage, SyncError> {
    let envelope: SignedPolicy =
        serde_json::from_slice(body).map_err(|e| SyncError::Malformed(e.to_string()))?;
    let expected = Expected {
        controller,
        nonce,
        held,
    };
    key.open_fresh(&envelope, expected).map_err(|e| match e {
        ProtocolError::Downgrade { held, offered } => SyncError::Stale { held, offered },
        other => SyncError::Refused(other),
    })
}

/// Verifies the envelope before anything else is read, then checks kind and
/// version and builds the snapshot; `held` stays untouched. Returns central's
/// clock at signing too.
fn open_policy(
    key: &PolicyKey,
    controller: ControllerId,
    nonce: &str,
    body: &[u8],
    held: &Snapshot,
    expect: Expect,
) -> Result<(Opened, Timestamp), SyncError> {
    let message = open_envelope(key, controller, nonce, body, held.version())?;
    let kind = |m: &PolicyMessage| match m {
        PolicyMessage::Snapshot { .. } | PolicyMessage::FreshSnapshot { .. } => "snapshot",
        PolicyMessage::Delta { .. } | PolicyMessage::FreshDelta { .. } => "delta",
        PolicyMessage::Current { .. } => "current",
        PolicyMessage::Watch { .. } => "watch",
    };
    match (expect, message) {
        (
            Expect::Snapshot,
            PolicyMessage::FreshSnapshot {
                snapshot,
                central_time,
                ..
            },
        ) => Ok((
            Opened::Policy(Box::new(Snapshot::new(snapshot)?)),
            central_time,
        )),
        (
            Expect::Delta,
            PolicyMessage::FreshDelta {
                delta,
                central_time,
                ..
            },
        ) => Ok((
            Opened::Policy(Box::new(held.apply_delta(&delta)?)),
            central_time,
        )),
        (
            Expect::Delta,
            PolicyMessage::Current {
                version,
                central_time,
                ..
            },
        ) => {
            if version != held.version() {
                return Err(SyncError::NotCurrent {
                    held: held.version(),
                    confirmed: version,
                });
            }
            Ok((Opened::Current, central_time))
        }
        (Expect::Snapshot, other) => Err(SyncError::WrongKind {
            expected: "snapshot",
            got: kind(&other),
        }),
        (Expect::Delta, other) => Err(SyncError::WrongKind {
            expected: "delta",
            got: kind(&other),
        }),
    }
}

/// Opens a long-poll answer: signed, for this request, about the version
/// this controller said it holds. A bare (unsigned) answer is refused.
fn open_watch(
    key: &PolicyKey,
    controller: ControllerId,
    nonce: &str,
    body: &[u8],
    since: u64,
) -> Result<Watched, SyncError> {
    if serde_json::from_slice::<SignedPolicy>(body).is_err() {
        return Err(SyncError::Unsigned {
            what: "watch request",
            detail: truncate(&String::from_utf8_lossy(body)),
        });
    }
    match open_envelope(key, controller, nonce, body, since)? {
        PolicyMessage::Watch {
            since: asked,
            version,
            urgent,
            central_time,
            ..
        } if asked == since => Ok(Watched {
            version,
            urgent,
            central_time,
        }),
        PolicyMessage::Watch { since: asked, .. } => Err(SyncError::NotCurrent {
            held: since,
            confirmed: asked,
        }),
        _ => Err(SyncError::WrongKind {
            expected: "watch answer",
            got: "policy",
        }),
    }
}

/// Resolves when the daemon stops (or its stop signal is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Exponential retry delays with jitter, reset after a success.
#[derive(Debug, Clone)]
struct Backoff {
    min_ms: u64,
    max_ms: u64,
    failures: u32,
}

impl Backoff {
    fn new(min_ms: u64, max_ms: u64) -> Self {
        let min_ms = min_ms.max(BACKOFF_FLOOR_MS);
        Self {
            min_ms,
            max_ms: max_ms.max(min_ms),
            failures: 0,
        }
    }

    /// The ceiling doubles with each failure up to the maximum; the delay is
    /// drawn uniformly below it (full jitter, so controllers that lost the
    /// central service together do not come back in step) but never below the
    /// minimum, so a flapping central service is not hammered.
    fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .min_ms
            .saturating_mul(1u64 << self.failures.min(32))
            .min(self.max_ms);
        self.failures = self.failures.saturating_add(1);
        let ms = if ceiling > self.min_ms {
            rand::thread_rng().gen_range(self.min_ms..=ceiling)
        } else {
            self.min_ms
        };
        Duration::from_millis(ms)
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

/// The URL without user name and password.
fn without_credentials(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.as_str().trim_end_matches('/').to_owned()
}

/// The error and its causes, without the request URL (it may carry credentials).
fn error_chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // hyper and its connector repeat their causes in their own messages.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// At most [`MAX_ERROR_TEXT`] characters of an answer's body.
fn truncate(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(MAX_ERROR_TEXT) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_maximum_with_jitter_and_resets() {
        let mut b = Backoff::new(100, 1_000);
        let first = b.next_delay();
        assert_eq!(first, Duration::from_millis(100));
        for _ in 0..20 {
            let d = b.next_delay().as_millis();
            assert!((100..=1_000).contains(&d), "{d}");
        }
        let late: Vec<u128> = (0..50).map(|_| b.next_delay().as_millis()).collect();
        assert!(late.iter().any(|d| *d > 100), "{late:?}");
        assert!(late.windows(2).any(|w| w[0] != w[1]), "no jitter: {late:?}");
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
        // Nonsense settings give a sane floor rather than a hot loop or a panic.
        let mut zero = Backoff::new(0, 0);
        assert_eq!(zero.next_delay(), Duration::from_millis(BACKOFF_FLOOR_MS));
        let mut inverted = Backoff::new(5_000, 10);
        for _ in 0..100 {
            assert_eq!(inverted.next_delay(), Duration::from_millis(5_000));
        }
    }

    #[test]
    fn credentials_never_show_in_the_url_or_the_header() {
        let url = reqwest::Url::parse("https://admin:hunter2@central.example.jp/tobira/").unwrap();
        assert_eq!(
            without_credentials(&url),
            "https://central.example.jp/tobira"
        );
        let mut auth = HeaderValue::from_static("Bearer 3.s3cret");
        auth.set_sensitive(true);
        assert!(!format!("{auth:?}").contains("s3cret"));
    }

    #[test]
    fn long_error_bodies_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_ERROR_TEXT + 10);
        let cut = truncate(&long);
        assert_eq!(cut.chars().count(), MAX_ERROR_TEXT + 1);
        assert_eq!(truncate(" short \n"), "short");
    }
}
