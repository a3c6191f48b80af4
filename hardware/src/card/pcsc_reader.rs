//! The PC/SC card reader driver: one blocking thread on `pcscd` that turns card presentations into taps.
//!
//! `SCardGetStatusChange` blocks, so the driver runs on its own thread and
//! hands events to async code through a channel. The PnP pseudo-reader makes
//! pcscd wake the thread when readers are plugged or unplugged, so the
//! reader list follows the hardware without polling.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use pcsc::{Context, Protocols, ReaderState, Scope, ShareMode, State};
use tokio::sync::mpsc;

use super::{
    guess_card_type, parse_uid_response, CardReadError, CardReader, ReaderEvent, Tap, GET_DATA_UID,
};

/// Which readers to use and how often to look at the stop flag.
#[derive(Debug, Clone)]
pub struct PcscConfig {
    /// Use only readers whose name contains one of these; empty = every reader.
    pub readers: Vec<String>,
    /// Longest single wait in `SCardGetStatusChange`; bounds shutdown latency
    /// if cancelling fails.
    pub wait: Duration,
    /// Pause before reconnecting to a pcscd that is down.
    pub retry: Duration,
}

impl Default for PcscConfig {
    fn default() -> Self {
        PcscConfig {
            readers: Vec::new(),
            wait: Duration::from_millis(1000),
            retry: Duration::from_millis(1000),
        }
    }
}

/// PC/SC readers as a [`CardReader`].
pub struct PcscCardReader {
    events: mpsc::UnboundedReceiver<ReaderEvent>,
    stop: Arc<AtomicBool>,
    context: Arc<Mutex<Option<Context>>>,
    thread: Option<JoinHandle<()>>,
}

impl PcscCardReader {
    /// Starts the reader thread.
    pub fn start(config: PcscConfig) -> Result<Self, std::io::Error> {
        let (tx, events) = mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let context = Arc::new(Mutex::new(None));
        let thread = {
            let stop = Arc::clone(&stop);
            let context = Arc::clone(&context);
            std::thread::Builder::new()
                .name("pcsc-readers".into())
                .spawn(move || Watcher::new(config, tx, stop, context).run())?
        };
        Ok(PcscCardReader {
            events,
            stop,
            context,
            thread: Some(thread),
        })
    }

    /// The next event, blocking (for callers outside async code).
    pub fn blocking_next_event(&mut self) -> Option<ReaderEvent> {
        self.events.blocking_recv()
    }
}

impl std::fmt::Debug for PcscCardReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscCardReader")
            .field("stopping", &self.stop.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

impl CardReader for PcscCardReader {
    async fn next_event(&mut self) -> Option<ReaderEvent> {
        self.events.recv().await
    }
}

impl Drop for PcscCardReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(ctx) = self
            .context
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            // Wakes the thread from SCardGetStatusChange at once.
            let _ = ctx.cancel();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Watcher {
    config: PcscConfig,
    tx: mpsc::UnboundedSender<ReaderEvent>,
    stop: Arc<AtomicBool>,
    shared_context: Arc<Mutex<Option<Context>>>,
    /// Index 0 is the PnP notification pseudo-reader.
    states: Vec<ReaderState>,
    /// Readers whose present card has been read (or failed), with the
    /// reader's event counter at that moment: no repeat until it leaves.
    handled: BTreeMap<CString, u32>,
}

enum Outcome {
    Stop,
    Reconnect,
}

impl Watcher {
    fn new(
        config: PcscConfig,
        tx: mpsc::UnboundedSender<ReaderEvent>,
        stop: Arc<AtomicBool>,
        shared_context: Arc<Mutex<Option<Context>>>,
    ) -> Self {
        Watcher {
            config,
            tx,
            stop,
            shared_context,
            states: Vec::new(),
            handled: BTreeMap::new(),
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.tx.is_closed()
    }

    fn emit(&self, event: ReaderEvent) {
        // The receiver is gone only while shutting down.
        let _ = self.tx.send(event);
    }

    fn run(mut self) {
        let mut reported_down = false;
        while !self.stopped() {
            let ctx = match Context::establish(Scope::User) {
                Ok(ctx) => ctx,
                Err(e) => {
                    if !reported_down {
                        tracing::warn!(error = %e, "pcscd unreachable; retrying");
                        self.emit(ReaderEvent::ServiceUnavailable(e.to_string()));
                        reported_down = true;
                    }
                    std::thread::sleep(self.config.retry);
                    continue;
                }
            };
            reported_down = false;
            *self
                .shared_context
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(ctx.clone());
            let outcome = self.watch(&ctx);
            *self
                .shared_context
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = None;
            // Readers of a lost pcscd are gone; report them so the list stays true.
            let lost: Vec<ReaderState> = self.states.drain(1..).collect();
            for s in lost {
                self.emit(ReaderEvent::ReaderRemoved(
                    s.name().to_string_lossy().into_owned(),
                ));
            }
            self.states.clear();
            self.handled.clear();
            match outcome {
                Outcome::Stop => break,
                Outcome::Reconnect => std::thread::sleep(self.config.retry),
            }
        }
    }

    fn wanted(&self, name: &CStr) -> bool {
        let name = name.to_string_lossy();
        self.config.readers.is_empty()
            || self
                .config
                .readers
                .iter()
                .any(|f| name.contains(f.as_str()))
    }

    /// Brings `states` in line with pcscd's reader list.
    fn refresh_readers(&mut self, ctx: &Context) -> Result<(), pcsc::Error> {
        let names: Vec<CString> = match ctx.list_readers_owned() {
            Ok(names) => names,
            Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
            Err(e) => return Err(e),
        };
        let names: Vec<CString> = names.into_iter().filter(|n| self.wanted(n)).collect();
        let mut i = 1;
        while i < self.states.len() {
            if names.iter().any(|n| n.as_c_str() == self.states[i].name()) {
                i += 1;
            } else {
                let gone = self.states.remove(i);
                self.handled.remove(gone.name());
                self.emit(ReaderEvent::ReaderRemoved(
                    gone.name().to_string_lossy().into_owned(),
                ));
            }
        }
        for name in names {
            if !self.states.iter().any(|s| s.name() == name.as_c_str()) {
                self.emit(ReaderEvent::ReaderAdded(
                    name.to_string_lossy().into_owned(),
                ));
                self.states.push(ReaderState::new(name, State::UNAWARE));
            }
        }
        Ok(())
    }

    fn watch(&mut self, ctx: &Context) -> Outcome {
        self.states = vec![ReaderState::new(pcsc::PNP_NOTIFICATION(), State::UNAWARE)];
        let mut refresh = true;
        loop {
            if self.stopped() {
                return Outcome::Stop;
            }
            if refresh {
                if let Err(e) = self.refresh_readers(ctx) {
                    tracing::warn!(error = %e, "listing PC/SC readers failed");
                    return Outcome::Reconnect;
                }
                refresh = false;
            }
            for s in &mut self.states {
                s.sync_current_state();
            }
            match ctx.get_status_change(self.config.wait, &mut self.states) {
                Ok(()) => {}
                Err(pcsc::Error::Timeout) => continue,
                Err(pcsc::Error::Cancelled) => continue,
                Err(pcsc::Error::UnknownReader | pcsc::Error::ReaderUnavailable) => {
                    refresh = true;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "waiting for PC/SC events failed");
                    self.emit(ReaderEvent::ServiceUnavailable(e.to_string()));
                    return Outcome::Reconnect;
                }
            }
            if self.states[0].event_state().contains(State::CHANGED) {
                refresh = true;
            }
            for i in 1..self.states.len() {
                if self.handle_reader(ctx, i) {
                    refresh = true;
                }
            }
        }
    }

    /// Acts on one reader's new state; returns true if the reader list must be refreshed.
    fn handle_reader(&mut self, ctx: &Context, i: usize) -> bool {
        let state = &self.states[i];
        let event = state.event_state();
        if !event.contains(State::CHANGED) {
            return false;
        }
        let name = state.name().to_owned();
        let reader = name.to_string_lossy().into_owned();
        if event.intersects(State::UNKNOWN | State::IGNORE | State::UNAVAILABLE) {
            return true;
        }
        let present = event.contains(State::PRESENT);
        if !present {
            if self.handled.remove(&name).is_some() {
                self.emit(ReaderEvent::CardRemoved(reader));
            }
            return false;
        }
        let count = state.event_count();
        if let Some(&seen) = self.handled.get(&name) {
            // pcscd counts insertions and removals. Two or more since the read
            // mean the card left and came back between two waits: a new tap.
            // Otherwise it is the same card (the state changed for another
            // reason, e.g. another process connected): one tap, one read.
            if count.wrapping_sub(seen) < 2 {
                return false;
            }
        }
        self.handled.insert(name.clone(), count);
        if event.contains(State::MUTE) {
            self.emit(ReaderEvent::ReadFailed {
                reader,
                error: CardReadError::Pcsc("card does not answer (mute)".into()),
            });
            return false;
        }
        let atr = state.atr().to_vec();
        let event = match read_uid(ctx, &name) {
            Ok(uid) => ReaderEvent::Tap(Tap {
                reader,
                card_type: guess_card_type(&atr, uid.len()),
                uid,
                at: SystemTime::now(),
            }),
            Err(error) => {
                tracing::warn!(%reader, %error, "card could not be read");
                ReaderEvent::ReadFailed { reader, error }
            }
        };
        self.emit(event);
        false
    }
}

/// Connects to the card on `reader`, asks for its identifier and lets go.
fn read_uid(ctx: &Context, reader: &CStr) -> Result<Vec<u8>, CardReadError> {
    let pcsc_err = |e: pcsc::Error| CardReadError::Pcsc(e.to_string());
    let card = ctx
        .connect(reader, ShareMode::Shared, Protocols::ANY)
        .map_err(pcsc_err)?;
    let mut buf = [0u8; pcsc::MAX_BUFFER_SIZE];
    let result = card
        .transmit(&GET_DATA_UID, &mut buf)
        .map_err(pcsc_err)
        .and_then(parse_uid_response);
    // Leave the card powered: the next reader of this card (if any) needs no reset.
    let _ = card.disconnect(pcsc::Disposition::LeaveCard);
    result
}
