//! Starting and stopping the controller: opens state, devices and pins, runs the tasks, shuts down safely on SIGTERM/SIGINT.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tobira_firmware::{
    ControllerId, DeviceKind, DeviceRef, EventKind, ModuleId, Side, Snapshot, SnapshotData,
    Timestamp, ZoneId,
};
use tobira_protocol::{PolicyKey, PolicyMessage, SignedPolicy};
use tokio::sync::{mpsc, watch};

use crate::clock::{now_utc, SiteClock};
use crate::config::{Config, DoorMismatch};
use crate::devices;
use crate::doors::DoorUnit;
use crate::engine::{Engine, InputRole, ReaderBinding, WatchedInput};
use crate::outbox::Outbox;
use crate::pins::Gpio;
use crate::policy::PolicyStore;
use crate::state::{self, StateError};
use crate::status::{self, StatusBoard};

/// Why the controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The state database.
    #[error(transparent)]
    State(#[from] StateError),
    /// The data directory.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The policy file.
    #[error("policy file {path}: {message}")]
    PolicyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Configuration that only shows at start (profile, time zone).
    #[error("{0}")]
    Config(String),
    /// The GPIO backend could not be opened: no door can be driven.
    #[error("{0}")]
    Gpio(String),
    /// The status endpoint could not listen.
    #[error("status endpoint {addr}: {source}")]
    Status {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Runs the controller until SIGTERM or SIGINT.
pub async fn run(config: Config, policy_file: Option<PathBuf>) -> Result<(), StartError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let signals = tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop_tx.send(true);
    });
    let result = run_until(config, policy_file, stop_rx).await;
    signals.abort();
    result
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = int.recv() => tracing::info!("SIGINT: shutting down"),
            }
        }
        _ => {
            tracing::error!("cannot install signal handlers; stop with SIGKILL only");
            std::future::pending::<()>().await;
        }
    }
}

/// Runs the controller until `stop` turns true.
pub async fn run_until(
    config: Config,
    policy_file: Option<PathBuf>,
    stop: watch::Receiver<bool>,
) -> Result<(), StartError> {
    let mut clock = SiteClock::configured(config.time_zone.as_deref())
        .map_err(|e| StartError::Config(e.to_string()))?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let controller = ControllerId(config.controller);
    let pool = state::open(&config.state_path()).await?;
    let identifiers =
        crate::identifiers::Identifiers::load(&config.data_dir, config.log.identifiers).map_err(
            |source| StartError::DataDir {
                path: config.data_dir.join(crate::identifiers::KEY_FILE),
                source,
            },
        )?;
    let outbox = Outbox::open(pool.clone(), controller).await?;
    let policy = PolicyStore::load(pool.clone()).await?;
    let started = now_utc();
    let board = StatusBoard::new(config.controller, started);
    let depth = outbox.depth().await?;
    let chain = outbox.chain().await;
    board.update(|s| {
        s.outbox_depth = depth;
        s.last_seq = chain.next_seq.saturating_sub(1);
        s.chain_epoch = chain.epoch.to_string();
        s.sync.central = config.central.as_ref().map(|c| c.url.clone());
    });
    tracing::info!(
        controller = controller.0,
        policy_version = policy.version(),
        outbox = depth,
        next_seq = chain.next_seq,
        epoch = %chain.epoch,
        "state loaded"
    );
    if let Some(path) = &policy_file {
        load_policy_file(path, &config, &policy).await?;
    }
    site_clock(&mut clock, policy.current().snapshot.time_zone())?;
    board.show_policy(&policy.current());

    let profile = config.profile().map_err(StartError::Config)?;
    let gpio = Gpio::open(&config.gpio).map_err(|e| StartError::Gpio(e.0))?;
    board.device("gpio", "gpio", true, None, started);
    let mut doors = Vec::new();
    let mut readers = Vec::new();
    for door in &config.doors {
        match DoorUnit::build(door, &config, profile.as_ref(), &gpio, &board, started) {
            Ok(unit) => {
                let index = doors.len();
                for (side, reader) in [
                    (Side::Entry, &door.entry_reader),
                    (Side::Exit, &door.exit_reader),
                ] {
                    if let Some(pattern) = reader {
                        readers.push(ReaderBinding {
                            pattern: pattern.clone(),
                            door: index,
                            side,
                        });
                    }
                }
                doors.push(unit);
            }
            // One door's broken pins must not take the others down.
            Err(e) => {
                tracing::error!(door = %door.name, error = %e, "door not started");
                board.update(|s| {
                    let d = s.doors.entry(door.name.clone()).or_default();
                    d.id = door.id;
                    d.state = "not started".into();
                    d.fault = Some(e);
                });
            }
        }
    }
    let mut inputs = Vec::new();
    let roles = config
        .fire_inputs
        .iter()
        .map(|f| {
            (
                format!("fire input of zone {}", f.zone),
                &f.input,
                InputRole::Fire(ZoneId(f.zone)),
            )
        })
        .chain(config.tamper_inputs.iter().map(|t| {
            (
                format!("tamper {}", t.name),
                &t.input,
                InputRole::Tamper(t.name.clone()),
            )
        }));
    for (name, pin, role) in roles {
        let opened = config
            .resolve(profile.as_ref(), pin, false)
            .and_then(|r| gpio.input(&name, r, false).map_err(|e| e.0));
        match opened {
            // Start from "not asserted" so an alarm already active at start is recorded.
            Ok(pin) => inputs.push(WatchedInput {
                role,
                pin,
                last: false,
            }),
            Err(e) => tracing::error!(input = %name, error = %e, "input not started"),
        }
    }

    let (device_tx, device_rx) = mpsc::channel(256);
    // The decision loop publishes the doors' finger waits; a module cancels
    // a verification whose wait has ended.
    let (finger_waits, finger_waits_rx) = watch::channel(Vec::new());
    let mut modules = BTreeMap::new();
    for module in &config.biometric {
        board.device(
            &module.name,
            "biometric",
            false,
            Some("opening".into()),
            started,
        );
        let handle = devices::spawn_biometric(
            module.clone(),
            device_tx.clone(),
            finger_waits_rx.clone(),
            stop.clone(),
        );
        modules.insert(ModuleId(module.module), handle);
    }
    let reader_task = if readers.is_empty() {
        None
    } else {
        let names: Vec<String> = readers.iter().map(|r| r.pattern.clone()).collect();
        let (reader_tx, reader_rx) = mpsc::channel(256);
        tokio::spawn(report_readers_never_found(
            names.clone(),
            reader_rx,
            device_tx.clone(),
            outbox.clone(),
            board.clone(),
        ));
        Some(tokio::spawn(devices::run_readers(
            names,
            config.data_dir.clone(),
            reader_tx,
            stop.clone(),
        )))
    };
    tokio::spawn(report_door_mismatch(
        config.clone(),
        policy.clone(),
        outbox.clone(),
        board.clone(),
        stop.clone(),
    ));
    drop(device_tx);

    let listener = tokio::net::TcpListener::bind(config.status_listen)
        .await
        .map_err(|source| StartError::Status {
            addr: config.status_listen,
            source,
        })?;
    let status_addr = listener.local_addr().unwrap_or(config.status_listen);
    let status_task = {
        let board = board.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let until = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = status::serve(listener, board, until).await {
                tracing::error!(error = %e, "status endpoint failed");
            }
        })
    };
    // Passages other controllers of the same zones recorded, merged on disk
    // by the sync client, reach the decision loop's memory through this.
    let (shared_tx, shared_rx) = mpsc::unbounded_channel();
    // The sync client stops only once the doors have: its last upload must
    // come after the last event the decision loop records (a policy applied
    // just before the stop, say), or that event would wait for the next start.
    let (sync_stop, sync_stopped) = watch::channel(false);
    let sync_task = config.central.clone().map(|central| {
        tokio::spawn(crate::sync::run_with_biometrics(
            central,
            controller,
            policy.clone(),
            outbox.clone(),
            board.clone(),
            shared_tx,
            modules.clone(),
            sync_stopped,
        ))
    });
    let checkpoints = {
        let pool = pool.clone();
        let outbox = outbox.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            // Checkpoints fsync the database file; on a busy SD card that can
            // hold up an outbox commit a door is waiting on. So they run when
            // the doors have been quiet for a while, and at the latest every
            // ten minutes (the log then holds a few hundred small events).
            let mut every = tokio::time::interval(Duration::from_secs(5));
            let mut last = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    _ = every.tick() => {
                        let quiet = outbox.idle_for() >= Duration::from_secs(3);
                        let overdue = last.elapsed() >= Duration::from_secs(600);
                        if (quiet && last.elapsed() >= Duration::from_secs(60)) || overdue {
                            last = tokio::time::Instant::now();
                            if let Err(e) = state::checkpoint(&pool).await {
                                tracing::warn!(error = %e, "checkpoint failed; will retry");
                            }
                        }
                    }
                    _ = stop.changed() => break,
                }
            }
        })
    };
    tracing::info!(status = %status_addr, doors = doors.len(), "controller running");
    let engine = Engine {
        controller,
        clock,
        policy,
        outbox,
        board,
        doors,
        readers,
        modules,
        finger_waits,
        inputs,
        poll: Duration::from_millis(u64::from(config.poll_ms.max(1))),
        shared_occupancy: Some(shared_rx),
        identifiers,
    };
    engine.run(device_rx, stop.clone()).await;
    // The sync client makes its last bounded attempt to ship the outbox.
    let _ = sync_stop.send(true);
    if let Some(task) = sync_task {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
    if let Some(task) = reader_task {
        let _ = tokio::time::timeout(Duration::from_secs(3), task).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(3), status_task).await;
    let _ = checkpoints.await;
    if let Err(e) = state::checkpoint(&pool).await {
        tracing::warn!(error = %e, "final checkpoint failed; the log is replayed at next start");
    }
    pool.close().await;
    tracing::info!("controller stopped");
    Ok(())
}

/// How long a configured card reader may take to appear on pcscd before it
/// is reported offline. pcscd lists the readers it has as soon as it is asked.
const READER_GRACE: Duration = Duration::from_secs(5);

/// Passes the reader task's inputs on to the decision loop and, once
/// [`READER_GRACE`] has passed, reports each configured reader that never
/// appeared (a typo in its name, never plugged in, pcscd down): offline on the
/// status board, an error in the log and a `device_offline` event. Without
/// this a reader that is never found would never be "removed" either, and
/// nobody would hear of it. When it does appear later, the decision loop
/// records it online.
async fn report_readers_never_found(
    patterns: Vec<String>,
    mut from: mpsc::Receiver<devices::DeviceInput>,
    to: mpsc::Sender<devices::DeviceInput>,
    outbox: Outbox,
    board: StatusBoard,
) {
    use tobira_hardware::card::sim_reader::{reader_matches, sim_name};
    use tobira_hardware::card::ReaderEvent;
    let mut unseen = patterns;
    let grace = tokio::time::sleep(READER_GRACE);
    tokio::pin!(grace);
    let (mut open, mut waiting) = (true, true);
    while open || waiting {
        tokio::select! {
            input = from.recv(), if open => match input {
                Some(input) => {
                    if let devices::DeviceInput::Reader(ReaderEvent::ReaderAdded(name)) = &input {
                        unseen.retain(|p| !reader_matches(p, name));
                    }
                    if to.send(input).await.is_err() {
                        return;
                    }
                }
                None => open = false,
            },
            () = &mut grace, if waiting => {
                waiting = false;
                let now = now_utc();
                let mut events = Vec::new();
                for pattern in &unseen {
                    let shown = board.update(|s| s.devices.get(pattern).and_then(|d| d.error.clone()));
                    // Keep a pcscd error: it says why better than "not found".
                    let error = if sim_name(pattern).is_some() {
                        "simulated reader's socket could not be opened (see the log)".to_owned()
                    } else {
                        shown
                            .filter(|e| e.starts_with("pcscd"))
                            .unwrap_or_else(|| format!("not found on pcscd within {} s", READER_GRACE.as_secs()))
                    };
                    tracing::error!(reader = %pattern, %error, "card reader never found; its door side takes no cards");
                    board.device(pattern, "card_reader", false, Some(error), now);
                    events.push(EventKind::DeviceOffline {
                        device: DeviceRef {
                            kind: DeviceKind::CardReader,
                            name: pattern.clone(),
                        },
                    });
                }
                record(&outbox, &board, now, events).await;
            }
        }
    }
}

/// Compares the configured doors with each policy loaded or applied; shows
/// the difference on the status board and, when it changed, warns and
/// records a `config_mismatch` event (one with empty lists once it is resolved).
async fn report_door_mismatch(
    config: Config,
    policy: PolicyStore,
    outbox: Outbox,
    board: StatusBoard,
    mut stop: watch::Receiver<bool>,
) {
    let mut policies = policy.subscribe();
    let mut recorded: Option<DoorMismatch> = None;
    loop {
        let snapshot = std::sync::Arc::clone(&policies.borrow_and_update().snapshot);
        let version = snapshot.version();
        // Version 0 is "no policy yet": nothing to compare with.
        if version > 0 {
            let mismatch = config.door_mismatch(snapshot.data());
            board.update(|s| s.config_mismatch = Some(mismatch.clone()));
            let news = match &recorded {
                None => !mismatch.is_empty(),
                Some(before) => *before != mismatch,
            };
            if news {
                if mismatch.is_empty() {
                    tracing::info!(version, "config and policy agree on the doors again");
                } else {
                    tracing::warn!(version, %mismatch, "config and policy disagree about the doors");
                }
                record(&outbox, &board, now_utc(), vec![mismatch.event()]).await;
            }
            recorded = Some(mismatch);
        }
        tokio::select! {
            changed = policies.changed() => if changed.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Commits events outside the decision loop (it logs them as the loop does).
async fn record(outbox: &Outbox, board: &StatusBoard, at: Timestamp, events: Vec<EventKind>) {
    if events.is_empty() {
        return;
    }
    match outbox.append(at, events).await {
        Ok(sealed) => {
            for s in &sealed {
                let text = serde_json::to_string(&s.event.kind).unwrap_or_default();
                tracing::info!(seq = s.event.seq, event = %text, "event recorded");
            }
            let last = sealed.last().map_or(0, |s| s.event.seq);
            board.update(|st| {
                st.last_seq = st.last_seq.max(last);
                st.outbox_depth += sealed.len() as u64;
            });
        }
        Err(e) => tracing::error!(error = %e, "cannot record events"),
    }
}

/// Loads a snapshot from a file: a signed envelope as the central service
/// serves it (verified against `central.public_key` when one is configured),
/// or, for a standalone controller without a central service, plain snapshot JSON.
pub async fn load_policy_file(
    path: &Path,
    config: &Config,
    policy: &PolicyStore,
) -> Result<(), StartError> {
    let fail = |message: String| StartError::PolicyFile {
        path: path.to_owned(),
        message,
    };
    // The text is dropped before the snapshot is indexed and stored: with
    // 100k cards each copy is megabytes on a board with little memory.
    let data = {
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        parse_policy(&text, config).map_err(fail)?
    };
    let snapshot = Snapshot::new(data).map_err(|e| fail(format!("not a valid snapshot: {e}")))?;
    let held = policy.version();
    if snapshot.version() < held {
        return Err(fail(format!(
            "version {} is older than the cached version {held}; refusing to roll back",
            snapshot.version()
        )));
    }
    if snapshot.version() == held && held != 0 {
        tracing::info!(version = held, "policy file matches the cached version");
        return Ok(());
    }
    let version = snapshot.version();
    policy.replace(snapshot, now_utc(), false).await?;
    tracing::info!(version, file = %path.display(), "policy loaded from file");
    Ok(())
}

/// Reads a policy file's text: a signed envelope or, for standalone controllers, plain snapshot JSON.
pub fn parse_policy(text: &str, config: &Config) -> Result<SnapshotData, String> {
    if let Ok(envelope) = serde_json::from_str::<SignedPolicy>(text) {
        let Some(central) = &config.central else {
            return Err(
                "a signed policy needs central.public_key in the config to verify it".into(),
            );
        };
        let key = PolicyKey::from_hex(&central.public_key).map_err(|e| e.to_string())?;
        return match key
            .open(&envelope, ControllerId(config.controller))
            .map_err(|e| e.to_string())?
        {
            PolicyMessage::Snapshot { snapshot, .. }
            | PolicyMessage::FreshSnapshot { snapshot, .. } => Ok(snapshot),
            PolicyMessage::Delta { .. } | PolicyMessage::FreshDelta { .. } => {
                Err("a delta is not a snapshot".into())
            }
            PolicyMessage::Current { .. } | PolicyMessage::Watch { .. } => {
                Err("a sync answer is not a snapshot".into())
            }
        };
    }
    if config.central.is_some() {
        return Err(
            "this controller has a central public key: the policy file must be signed".into(),
        );
    }
    serde_json::from_str(text).map_err(|e| format!("not a snapshot: {e}"))
}

/// Puts the clock on the site's time zone named by the policy. A config
/// `time_zone` that disagrees is a configuration error, caught at start.
fn site_clock(clock: &mut SiteClock, site: Option<&str>) -> Result<(), StartError> {
    if let Some(conflict) = clock.conflict(site) {
        return Err(StartError::Config(conflict.to_string()));
    }
    if clock
        .follow(site)
        .map_err(|e| StartError::Config(format!("the policy's site time zone: {e}")))?
    {
        tracing::info!(
            time_zone = clock.zone_name(),
            "site time zone from the policy"
        );
    }
    Ok(())
}
