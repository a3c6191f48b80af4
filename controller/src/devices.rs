//! Device tasks: PC/SC readers and biometric modules turned into inputs for the decision loop.

use std::time::{Duration, SystemTime};

use tobira_firmware::{BiometricResult, DoorId, Side, TemplateSlot};
use tobira_hardware::card::{CardReader, PcscCardReader, PcscConfig, ReaderEvent};
use tobira_hardware::fingerprint::{DriverConfig, Ef01Driver, VerifyOutcome};
use tokio::sync::{mpsc, watch};
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

/// Runs the PC/SC watcher for the configured readers until `shutdown`.
/// pcscd down, readers unplugged: the watcher keeps retrying and says so.
pub async fn run_readers(
    names: Vec<String>,
    tx: mpsc::Sender<DeviceInput>,
    mut shutdown: watch::Receiver<bool>,
) {
    let config = PcscConfig {
        readers: names,
        ..PcscConfig::default()
    };
    let mut reader = match PcscCardReader::start(config) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the PC/SC reader thread; no card reader will work");
            let _ = tx
                .send(DeviceInput::Reader(ReaderEvent::ServiceUnavailable(
                    e.to_string(),
                )))
                .await;
            return;
        }
    };
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
    // Dropping the reader cancels its blocking wait and joins the thread; do
    // that off the async workers.
    let _ = tokio::task::spawn_blocking(move || drop(reader)).await;
}

/// Handle to a biometric module task.
#[derive(Debug, Clone)]
pub struct BiometricHandle {
    /// The module's configured name.
    pub name: String,
    jobs: mpsc::Sender<VerifyJob>,
}

impl BiometricHandle {
    /// Queues a verification; `false` if the task has stopped or is swamped.
    pub fn verify(&self, job: VerifyJob) -> bool {
        self.jobs.try_send(job).is_ok()
    }
}

/// Starts the task that owns one module's serial line. It opens the port,
/// verifies the password, and reopens after any fault; while it cannot talk
/// to the module every verification answers `Unavailable` at once, so the
/// door denies with a clear reason instead of hanging.
pub fn spawn_biometric(
    config: BiometricConfig,
    tx: mpsc::Sender<DeviceInput>,
    mut shutdown: watch::Receiver<bool>,
) -> BiometricHandle {
    let (jobs_tx, mut jobs) = mpsc::channel::<VerifyJob>(16);
    let name = config.name.clone();
    tokio::spawn(async move {
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
                    _ = tokio::time::sleep_until(next_attempt), if driver.is_none() => continue,
                    _ = shutdown.changed() => break,
                },
            };
            let result = match driver.as_mut() {
                None => BiometricResult::Unavailable,
                Some(d) => {
                    tracing::info!(module = %config.name, door = job.door.0, side = ?job.side,
                        slot = job.slot.0, "waiting for a finger");
                    // The brain asks for a new verification only when a card
                    // was accepted at a reader of this module, which ends any
                    // earlier wait at that reader. So a newer job abandons the
                    // wait for a finger rather than queueing behind it for up
                    // to its whole deadline.
                    let newer = async {
                        queued = jobs.recv().await;
                    };
                    match d.verify_slot_unless(job.slot.0, job.deadline, newer).await {
                        Ok(None) => {
                            tracing::info!(module = %config.name, door = job.door.0, slot = job.slot.0,
                            "finger wait abandoned for a newer request");
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
                        Err(e) if !e.is_module_fault() => {
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
