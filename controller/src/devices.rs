//! Device tasks: card readers (PC/SC or simulated) and biometric modules turned into inputs for the decision loop.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tobira_firmware::{BiometricResult, DoorId, ModuleId, Side, TemplateSlot};
use tobira_hardware::card::sim_reader::{self, sim_name};
use tobira_hardware::card::{CardReader, PcscCardReader, PcscConfig, ReaderEvent, SimCardReader};
use tobira_hardware::fingerprint::{
    Biometric, BiometricError, DriverConfig, Ef01Driver, EnrollOutcome, FingerprintError,
    VerifyOutcome,
};
use tobira_protocol::{EnrollmentFailure, EnrollmentOutcome, EnrollmentTask};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::config::BiometricConfig;

/// What devices tell the decision loop.
#[derive(Debug)]
pub enum DeviceInput {
    /// Something from the card readers.
    Reader(ReaderEvent),
    /// A biometric module answered a verification.
    Finger {
        /// The job it answers.
        job: VerifyJob,
        /// The outcome.
        result: BiometricResult,
    },
    /// A module starts or ends an enrollment: its doors prompt for a finger
    /// meanwhile, and no verification runs on it.
    Enrolling {
        /// The module.
        module: ModuleId,
        /// Whether the enrollment is running.
        active: bool,
    },
    /// A biometric module came online or went offline.
    BiometricStatus {
        /// The module's configured name.
        name: String,
        /// Whether it answers.
        online: bool,
        /// Why not.
        error: Option<String>,
    },
}

/// One 1:1 verification the brain asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyJob {
    /// The door.
    pub door: DoorId,
    /// The reader's side.
    pub side: Side,
    /// The template slot of the card holder.
    pub slot: TemplateSlot,
    /// When the brain stops waiting.
    pub deadline: Instant,
}

/// Runs the configured card readers until `shutdown`: the PC/SC watcher for
/// PC/SC reader names (only if there are any, so a controller with simulated
/// readers alone needs no pcscd), and one simulated reader per `sim:NAME`,
/// listening under `data_dir` (see [`tobira_hardware::card::sim_reader`]).
/// pcscd down, readers unplugged: the watcher keeps retrying and says so.
pub async fn run_readers(
    names: Vec<String>,
    data_dir: PathBuf,
    tx: mpsc::Sender<DeviceInput>,
    shutdown: watch::Receiver<bool>,
) {
    let (simulated, pcsc): (Vec<String>, Vec<String>) =
        names.into_iter().partition(|n| sim_name(n).is_some());
    let mut tasks = Vec::new();
    for reader in simulated {
        let name = sim_name(&reader).unwrap_or(&reader);
        let path = sim_reader::socket_path(&data_dir, name);
        match SimCardReader::bind(&reader, &path) {
            Ok(sim) => {
                tracing::info!(%reader, socket = %path.display(), "simulated card reader listening");
                let (tx, shutdown) = (tx.clone(), shutdown.clone());
                // Dropping the reader removes its socket.
                tasks.push(tokio::spawn(async move {
                    drop(pump(sim, tx, shutdown).await);
                }));
            }
            // Reported offline with the others never found once the grace time is over.
            Err(e) => tracing::error!(%reader, error = %e, "cannot open the simulated card reader"),
        }
    }
    if !pcsc.is_empty() {
        let config = PcscConfig {
            readers: pcsc,
            ..PcscConfig::default()
        };
        match PcscCardReader::start(config) {
            Ok(reader) => tasks.push(tokio::spawn(async move {
                let reader = pump(reader, tx, shutdown).await;
                // Dropping the reader cancels its blocking wait and joins the
                // thread; do that off the async workers.
                let _ = tokio::task::spawn_blocking(move || drop(reader)).await;
            })),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the PC/SC reader thread; no PC/SC card reader will work");
                let _ = tx
                    .send(DeviceInput::Reader(ReaderEvent::ServiceUnavailable(
                        e.to_string(),
                    )))
                    .await;
            }
        }
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// Passes one reader's events to the decision loop until the reader ends,
/// the loop is gone, or `shutdown`; returns the reader for the caller to close.
async fn pump<R: CardReader>(
    mut reader: R,
    tx: mpsc::Sender<DeviceInput>,
    mut shutdown: watch::Receiver<bool>,
) -> R {
    loop {
        tokio::select! {
            event = reader.next_event() => match event {
                Some(event) => {
                    if tx.send(DeviceInput::Reader(event)).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            _ = shutdown.changed() => break,
        }
    }
    reader
}

/// A door side waiting for a finger to be compared with a template slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FingerWait {
    /// The door.
    pub door: DoorId,
    /// The reader's side.
    pub side: Side,
    /// The template slot of the card holder.
    pub slot: TemplateSlot,
}

impl FingerWait {
    fn answers(&self, job: &VerifyJob) -> bool {
        (self.door, self.side, self.slot) == (job.door, job.side, job.slot)
    }
}

/// Completes once the doors no longer wait for `job`'s finger. A job whose
/// wait is already gone (it ended while the job was queued) completes at once.
async fn wait_ended(waits: &mut watch::Receiver<Vec<FingerWait>>, job: &VerifyJob) {
    loop {
        if !waits.borrow_and_update().iter().any(|w| w.answers(job)) {
            return;
        }
        // The decision loop is gone (shutting down): the deadline ends the wait.
        if waits.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// How long an enrollment waits for each of the two captures together.
pub const ENROLL_TIMEOUT: Duration = Duration::from_secs(30);

/// An enrollment-job step for the module task, with where to send its outcome.
#[derive(Debug)]
struct AdminJob {
    task: EnrollmentTask,
    reply: oneshot::Sender<EnrollmentOutcome>,
}

/// Handle to a biometric module task.
#[derive(Debug, Clone)]
pub struct BiometricHandle {
    /// The module's configured name.
    pub name: String,
    jobs: mpsc::Sender<VerifyJob>,
    admin: mpsc::Sender<AdminJob>,
    /// Set while an enrollment job holds the module.
    busy: Arc<AtomicBool>,
}

impl BiometricHandle {
    /// Queues a verification; `false` if the task has stopped, is swamped,
    /// or is busy enrolling someone (the door then refuses: it never waits
    /// for, let alone grants on, a module that is not verifying).
    pub fn verify(&self, job: VerifyJob) -> bool {
        !self.busy.load(Ordering::SeqCst) && self.jobs.try_send(job).is_ok()
    }

    /// Runs an enrollment job (enroll into a free slot, or clear a slot) on
    /// the module and returns its outcome.
    pub async fn run_job(&self, task: EnrollmentTask) -> EnrollmentOutcome {
        let (reply, answer) = oneshot::channel();
        let stopped = || EnrollmentOutcome::Failed {
            reason: EnrollmentFailure::ModuleUnavailable,
            detail: "the module task has stopped".into(),
        };
        if self.admin.send(AdminJob { task, reply }).await.is_err() {
            return stopped();
        }
        answer.await.unwrap_or_else(|_| stopped())
    }
}

fn failed(reason: EnrollmentFailure, detail: impl Into<String>) -> EnrollmentOutcome {
    EnrollmentOutcome::Failed {
        reason,
        detail: detail.into(),
    }
}

/// Runs one enrollment job on an open module.
async fn run_admin<S>(
    d: &mut Ef01Driver<S>,
    module: &str,
    task: &EnrollmentTask,
) -> Result<EnrollmentOutcome, FingerprintError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    match task {
        EnrollmentTask::Enroll { person, taken } => {
            tracing::info!(%module, person = person.0, "enrolling: place the finger on the sensor, lift it, and place it again");
            let outcome = d
                .enroll_free_slot(taken, Instant::now() + ENROLL_TIMEOUT)
                .await?;
            Ok(match outcome {
                EnrollOutcome::Stored { slot } => {
                    tracing::info!(%module, person = person.0, slot, "finger enrolled");
                    EnrollmentOutcome::Enrolled { slot }
                }
                EnrollOutcome::NoFinger => failed(
                    EnrollmentFailure::Timeout,
                    format!("no usable finger within {} s", ENROLL_TIMEOUT.as_secs()),
                ),
                EnrollOutcome::Mismatch => failed(
                    EnrollmentFailure::Mismatch,
                    "the two captures were not of the same finger",
                ),
                EnrollOutcome::Full => failed(EnrollmentFailure::ModuleFull, "no free slot"),
            })
        }
        EnrollmentTask::Delete { slot } => {
            d.delete_slot(*slot).await?;
            tracing::info!(%module, slot, "template slot cleared");
            Ok(EnrollmentOutcome::Deleted)
        }
    }
}

/// Starts the task that owns one module's serial line. It opens the port,
/// verifies the password, and reopens after any fault; while it cannot talk
/// to the module every verification answers `Unavailable` at once, so the
/// door denies with a clear reason instead of hanging.
///
/// `finger_waits` holds the finger waits the doors have now (the decision
/// loop publishes them); a verification whose wait is gone is cancelled.
pub fn spawn_biometric(
    config: BiometricConfig,
    tx: mpsc::Sender<DeviceInput>,
    mut finger_waits: watch::Receiver<Vec<FingerWait>>,
    mut shutdown: watch::Receiver<bool>,
) -> BiometricHandle {
    let (jobs_tx, mut jobs) = mpsc::channel::<VerifyJob>(16);
    let (admin_tx, mut admin) = mpsc::channel::<AdminJob>(4);
    let busy = Arc::new(AtomicBool::new(false));
    let name = config.name.clone();
    let busy_flag = Arc::clone(&busy);
    tokio::spawn(async move {
        let module = ModuleId(config.module);
        let driver_config = DriverConfig {
            address: config
                .address()
                .unwrap_or(tobira_hardware::fingerprint::codec::DEFAULT_ADDRESS),
            password: config.password,
            match_threshold: config.match_threshold,
            ..DriverConfig::default()
        };
        let port = config.port.display().to_string();
        let mut driver = None;
        let mut last_online: Option<bool> = None;
        let mut next_attempt = Instant::now();
        // A job that arrived while another was waiting for a finger.
        let mut queued: Option<VerifyJob> = None;
        loop {
            if driver.is_none() && Instant::now() >= next_attempt {
                match Ef01Driver::open(&port, config.baud, driver_config.clone()).await {
                    Ok(d) => {
                        driver = Some(d);
                        report(&tx, &config.name, &mut last_online, true, None).await;
                    }
                    Err(e) => {
                        next_attempt = Instant::now() + Duration::from_secs(5);
                        report(
                            &tx,
                            &config.name,
                            &mut last_online,
                            false,
                            Some(e.to_string()),
                        )
                        .await;
                    }
                }
            }
            let job = match queued.take() {
                Some(job) => job,
                None => tokio::select! {
                    job = jobs.recv() => match job { Some(j) => j, None => break },
                    work = admin.recv() => {
                        let Some(AdminJob { task, reply }) = work else { break };
                        let outcome = match driver.as_mut() {
                            None => failed(EnrollmentFailure::ModuleUnavailable, "the module is offline"),
                            Some(d) => {
                                // Doors refuse finger steps on this module
                                // meanwhile, and prompt for the enrollment.
                                busy_flag.store(true, Ordering::SeqCst);
                                let _ = tx.send(DeviceInput::Enrolling { module, active: true }).await;
                                let result = run_admin(d, &config.name, &task).await;
                                busy_flag.store(false, Ordering::SeqCst);
                                let _ = tx.send(DeviceInput::Enrolling { module, active: false }).await;
                                match result {
                                    Ok(outcome) => outcome,
                                    Err(e) => {
                                        tracing::warn!(module = %config.name, error = %e, "enrollment job failed");
                                        if e.is_module_fault() {
                                            driver = None;
                                            next_attempt = Instant::now() + Duration::from_millis(500);
                                            report(&tx, &config.name, &mut last_online, false, Some(e.to_string())).await;
                                        }
                                        failed(EnrollmentFailure::ModuleUnavailable, e.to_string())
                                    }
                                }
                            }
                        };
                        let _ = reply.send(outcome);
                        continue;
                    }
                    _ = tokio::time::sleep_until(next_attempt), if driver.is_none() => continue,
                    _ = shutdown.changed() => break,
                },
            };
            let result = match driver.as_mut() {
                None => BiometricResult::Unavailable,
                Some(d) => {
                    tracing::info!(module = %config.name, door = job.door.0, side = ?job.side,
                        slot = job.slot.0, "waiting for a finger");
                    // The wait ends early when the door stops waiting for this
                    // person (its deadline passed, or another card replaced
                    // theirs), or when a newer job arrives: the brain asks for
                    // one only when a card was accepted at a reader of this
                    // module, which ends any earlier wait at that reader. So
                    // the module is never busy for a wait nobody has.
                    let cancel = async {
                        tokio::select! {
                            job = jobs.recv() => queued = job,
                            () = wait_ended(&mut finger_waits, &job) => {}
                        }
                    };
                    match d.verify_cancellable(job.slot.0, job.deadline, cancel).await {
                        Ok(None) => {
                            tracing::info!(module = %config.name, door = job.door.0, slot = job.slot.0,
                            "finger wait abandoned: the door no longer waits for it");
                            continue;
                        }
                        Ok(Some(VerifyOutcome::Matched { score })) => BiometricResult::Matched {
                            slot: job.slot,
                            score,
                        },
                        Ok(Some(VerifyOutcome::NoMatch { .. })) => BiometricResult::NoMatch,
                        Ok(Some(VerifyOutcome::NoFinger)) => BiometricResult::Timeout,
                        // This person's template is missing on the module;
                        // the module answered properly and stays in service.
                        Err(e @ BiometricError::EmptySlot(_)) => {
                            tracing::warn!(module = %config.name, door = job.door.0, slot = job.slot.0,
                                error = %e, "no usable template in the card holder's slot; enroll them again");
                            BiometricResult::NotEnrolled
                        }
                        Err(e) => {
                            tracing::warn!(module = %config.name, error = %e, "biometric module fault; reopening");
                            driver = None;
                            next_attempt = Instant::now() + Duration::from_millis(500);
                            report(
                                &tx,
                                &config.name,
                                &mut last_online,
                                false,
                                Some(e.to_string()),
                            )
                            .await;
                            BiometricResult::Unavailable
                        }
                    }
                }
            };
            if tx.send(DeviceInput::Finger { job, result }).await.is_err() {
                break;
            }
        }
    });
    BiometricHandle {
        name,
        jobs: jobs_tx,
        admin: admin_tx,
        busy,
    }
}

async fn report(
    tx: &mpsc::Sender<DeviceInput>,
    name: &str,
    last: &mut Option<bool>,
    online: bool,
    error: Option<String>,
) {
    if *last == Some(online) {
        return;
    }
    *last = Some(online);
    if online {
        tracing::info!(module = %name, "biometric module online");
    } else {
        tracing::error!(module = %name, error = error.as_deref().unwrap_or(""), "biometric module offline");
    }
    let _ = tx
        .send(DeviceInput::BiometricStatus {
            name: name.to_owned(),
            online,
            error,
        })
        .await;
}

/// Milliseconds from a device's timestamp to now (for the latency figures).
pub fn age_ms(at: SystemTime) -> f64 {
    SystemTime::now()
        .duration_since(at)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(slot: u16) -> VerifyJob {
        VerifyJob {
            door: DoorId(20),
            side: Side::Entry,
            slot: TemplateSlot(slot),
            deadline: Instant::now() + Duration::from_secs(60),
        }
    }

    fn wait(slot: u16) -> FingerWait {
        FingerWait {
            door: DoorId(20),
            side: Side::Entry,
            slot: TemplateSlot(slot),
        }
    }

    /// Whether `wait_ended` has completed after every task has had its turn.
    async fn ended(task: &tokio::task::JoinHandle<()>) -> bool {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        task.is_finished()
    }

    #[tokio::test]
    async fn a_finger_wait_is_cancelled_when_the_door_stops_waiting() {
        let (waits, rx) = watch::channel(vec![wait(3)]);
        let task = {
            let mut rx = rx.clone();
            tokio::spawn(async move { wait_ended(&mut rx, &job(3)).await })
        };
        assert!(!ended(&task).await, "cancelled while the door still waits");
        // Another person's wait appears elsewhere: this one still runs.
        waits.send_replace(vec![wait(3), wait(4)]);
        assert!(!ended(&task).await);
        // The door's wait for slot 3 ends (timed out, or replaced by the next card).
        waits.send_replace(vec![wait(4)]);
        assert!(ended(&task).await, "the module kept waiting for nobody");
        task.await.unwrap();

        // A job whose wait ended while it was queued is cancelled at once.
        let mut rx = rx.clone();
        tokio::time::timeout(Duration::from_secs(1), wait_ended(&mut rx, &job(3)))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn without_a_decision_loop_only_the_deadline_ends_the_wait() {
        let (waits, mut rx) = watch::channel(vec![wait(3)]);
        drop(waits);
        let outcome =
            tokio::time::timeout(Duration::from_millis(100), wait_ended(&mut rx, &job(3))).await;
        assert!(outcome.is_err(), "a closed channel must not cancel");
    }
}
