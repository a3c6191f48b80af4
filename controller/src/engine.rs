//! The decision loop: one task that owns the brain's memory and the doors, turns device inputs into decisions, records them, then acts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tobira_firmware::{
    decide, free_access, Awaiting, BiometricResult, CardUid, ControllerId, Decision, DeviceKind,
    DeviceRef, DoorId, EventKind, Memory, ModuleId, Moment, PersonId, Request, Side, Snapshot,
    Timestamp, Verdict, Waits, ZoneId,
};
use tobira_hardware::card::sim_reader::{reader_matches, sim_name};
use tobira_hardware::card::ReaderEvent;
use tokio::sync::{mpsc, watch};

use crate::clock::SiteClock;
use crate::devices::{BiometricHandle, DeviceInput, FingerWait, VerifyJob};
use crate::doors::DoorUnit;
use crate::identifiers::Identifiers;
use crate::memory::MemoryChange;
use crate::outbox::Outbox;
use crate::pins::Input;
use crate::policy::{Current, PolicyStore};
use crate::status::StatusBoard;

/// A configured reader name (or unique part of the PC/SC name) and the door side it serves.
#[derive(Debug, Clone)]
pub struct ReaderBinding {
    /// What the config says.
    pub pattern: String,
    /// Index into the doors.
    pub door: usize,
    /// Which side.
    pub side: Side,
}

/// A watched input that is not part of a door: fire alarm or tamper switch.
#[derive(Debug)]
pub struct WatchedInput {
    /// What it reports.
    pub role: InputRole,
    /// The pin.
    pub pin: Input,
    /// The level last seen.
    pub last: bool,
}

/// What a watched input means.
#[derive(Debug, Clone)]
pub enum InputRole {
    /// Fire alarm for a zone.
    Fire(ZoneId),
    /// Enclosure tamper switch.
    Tamper(String),
}

/// Everything the loop owns.
#[derive(Debug)]
pub struct Engine {
    /// This controller.
    pub controller: ControllerId,
    /// The site clock.
    pub clock: SiteClock,
    /// Where the policy comes from.
    pub policy: PolicyStore,
    /// The outbox.
    pub outbox: Outbox,
    /// The status board.
    pub board: StatusBoard,
    /// Doors and gates.
    pub doors: Vec<DoorUnit>,
    /// Reader names to door sides.
    pub readers: Vec<ReaderBinding>,
    /// Biometric modules by policy id.
    pub modules: BTreeMap<ModuleId, BiometricHandle>,
    /// The doors' finger waits, for the modules to cancel verifications nobody waits for.
    pub finger_waits: watch::Sender<Vec<FingerWait>>,
    /// Fire and tamper inputs.
    pub inputs: Vec<WatchedInput>,
    /// What the log shows of cards and people.
    pub identifiers: Identifiers,
    /// How often inputs are sampled.
    pub poll: Duration,
    /// (zone, person) pairs whose occupancy the sync client changed on disk
    /// from passages other controllers recorded.
    pub shared_occupancy: Option<mpsc::UnboundedReceiver<Vec<(ZoneId, PersonId)>>>,
}

struct Loop {
    e: Engine,
    snapshot: Arc<Snapshot>,
    version: u64,
    memory: Memory,
    /// The waits as last written to disk: rewritten only when they change.
    saved_waits: Waits,
    decisions: BTreeMap<&'static str, u64>,
    last_release_check: Timestamp,
    /// Modules running an enrollment job: their doors prompt for a finger.
    enrolling: BTreeSet<ModuleId>,
}

impl Engine {
    /// Runs until `shutdown` turns true; then puts every output in its safe state.
    pub async fn run(
        mut self,
        mut devices: mpsc::Receiver<DeviceInput>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut shared = self.shared_occupancy.take();
        let mut policy_rx = self.policy.subscribe();
        let current = policy_rx.borrow_and_update().clone();
        // Who is inside and what waits were written with the events that
        // changed them; a restart picks them up where the outbox stands.
        let memory = match crate::memory::load(self.outbox.pool()).await {
            Ok(memory) => memory,
            Err(error) => {
                tracing::error!(%error, "the brain's memory could not be read; starting with nobody inside");
                Memory::new()
            }
        };
        let inside = memory.inside().count();
        if inside > 0 || !memory.waiting().is_empty() {
            tracing::info!(
                inside,
                waiting = memory.waiting().len(),
                "brain memory restored"
            );
        }
        let mut l = Loop {
            snapshot: Arc::clone(&current.snapshot),
            version: current.snapshot.version(),
            saved_waits: memory.waits(),
            memory,
            decisions: BTreeMap::new(),
            last_release_check: Timestamp(0),
            enrolling: BTreeSet::new(),
            e: self,
        };
        l.policy_in_force(&current);
        if l.version > 0 {
            // Which policy the decisions from here on were made with: the
            // central service cannot tell otherwise after a restart or when
            // the first sync landed before this loop started listening.
            let at = l.now().utc;
            let version = l.version;
            l.record(at, vec![EventKind::PolicyApplied { version }])
                .await;
        }
        for r in &l.e.readers {
            l.e.board.device(
                &r.pattern,
                "card_reader",
                false,
                Some("not seen on pcscd yet".into()),
                l.e.clock.now().utc,
            );
        }
        let mut tick = tokio::time::interval(l.e.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut devices_open = true;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                // A controller with only REX buttons has no device tasks; its
                // doors must keep running when the (empty) channel closes.
                input = devices.recv(), if devices_open => match input {
                    Some(input) => l.device(input).await,
                    None => devices_open = false,
                },
                pairs = recv_shared(&mut shared) => match pairs {
                    Some(pairs) => l.shared_occupancy(&pairs).await,
                    None => shared = None,
                },
                changed = policy_rx.changed() => {
                    if changed.is_err() { break; }
                    let current = policy_rx.borrow_and_update().clone();
                    l.new_policy(current).await;
                }
                _ = tick.tick() => l.tick().await,
            }
            // A wait ended by its deadline or by the next card stops its module's wait too.
            l.publish_finger_waits();
        }
        for door in &mut l.e.doors {
            door.safe_state();
        }
        tracing::info!("doors in their safe state");
    }
}

impl Loop {
    fn now(&self) -> Moment {
        self.e.clock.now()
    }

    fn policy_in_force(&mut self, current: &Current) {
        if current.confirmed_at.0 > 0 {
            self.memory.confirm_policy(current.confirmed_at);
        }
        let snap = &current.snapshot;
        // The site's zone from the central service is the one schedules are
        // read in. A config that names another was refused at start; one
        // arriving with a new policy is logged and the site's zone wins.
        if let Some(conflict) = self.e.clock.conflict(snap.time_zone()) {
            tracing::error!(%conflict, "time zone conflict; using the site's");
        }
        match self.e.clock.follow(snap.time_zone()) {
            Ok(true) => {
                tracing::info!(
                    time_zone = self.e.clock.zone_name(),
                    "site time zone from the policy"
                )
            }
            Ok(false) => {}
            Err(error) => {
                tracing::error!(%error, time_zone = self.e.clock.zone_name(), "the policy's site time zone is unknown here; keeping the zone in force")
            }
        }
        self.e.board.show_policy(current);
    }

    async fn new_policy(&mut self, current: Current) {
        self.policy_in_force(&current);
        let version = current.snapshot.version();
        self.snapshot = Arc::clone(&current.snapshot);
        if version != self.version {
            self.version = version;
            tracing::info!(version, "policy applied");
            let now = self.now();
            self.record(now.utc, vec![EventKind::PolicyApplied { version }])
                .await;
            self.refresh_releases(&now);
        }
    }

    /// What to write beside a decision's events: its passages, and the waits
    /// if they differ from what the disk holds (most taps leave them as they
    /// were, and a door commit should carry no write it does not need).
    fn memory_change(&self, passages: Vec<tobira_firmware::Passage>) -> MemoryChange {
        let waits = Some(self.memory.waits()).filter(|w| *w != self.saved_waits);
        MemoryChange { passages, waits }
    }

    /// Brings the memory in line with the occupancy on disk for these pairs.
    async fn shared_occupancy(&mut self, pairs: &[(ZoneId, PersonId)]) {
        match crate::memory::inside_now(self.e.outbox.pool(), pairs).await {
            Ok(rows) => {
                for (zone, person, inside) in rows {
                    self.memory.set_inside(zone, person, inside);
                }
            }
            Err(error) => tracing::error!(%error, "occupancy from other controllers not applied"),
        }
    }

    async fn device(&mut self, input: DeviceInput) {
        match input {
            DeviceInput::Reader(ReaderEvent::Tap(tap)) => {
                let Some(binding) = self.binding(&tap.reader) else {
                    tracing::warn!(reader = %tap.reader, "card on a reader no door is configured for; ignored");
                    return;
                };
                let Ok(uid) = CardUid::new(&tap.uid) else {
                    tracing::warn!(reader = %tap.reader, "card identifier of unsupported length; ignored");
                    return;
                };
                let door = self.e.doors[binding.door].id;
                let now = self.now();
                let request = Request::Card {
                    door,
                    side: binding.side,
                    uid,
                };
                let decision = decide(&self.snapshot, &self.memory, &request, &now);
                self.act(decision, now, Some(tap.at)).await;
            }
            DeviceInput::Reader(ReaderEvent::ReadFailed { reader, error }) => {
                tracing::warn!(%reader, %error, "card could not be read; present it again");
                self.e.board.update(|s| {
                    if let Some(d) = s
                        .devices
                        .iter_mut()
                        .find(|(n, _)| reader_matches(n, &reader))
                    {
                        d.1.error = Some(format!("last read failed: {error}"));
                    }
                });
            }
            DeviceInput::Reader(ReaderEvent::ReaderAdded(name)) => {
                self.reader_online(&name, true, None).await
            }
            DeviceInput::Reader(ReaderEvent::ReaderRemoved(name)) => {
                self.reader_online(&name, false, Some("unplugged or gone from pcscd".into()))
                    .await
            }
            DeviceInput::Reader(ReaderEvent::ServiceUnavailable(error)) => {
                tracing::error!(%error, "PC/SC service unavailable; card readers offline");
                // Simulated readers do not go through pcscd.
                let patterns: Vec<String> = self
                    .e
                    .readers
                    .iter()
                    .filter(|r| sim_name(&r.pattern).is_none())
                    .map(|r| r.pattern.clone())
                    .collect();
                for p in patterns {
                    self.reader_online(&p, false, Some(format!("pcscd: {error}")))
                        .await;
                }
            }
            DeviceInput::Reader(ReaderEvent::CardRemoved(reader)) => {
                tracing::debug!(%reader, "card removed");
            }
            DeviceInput::Finger { job, result } => {
                // A verification answers the wait it was started for. If that
                // wait is gone (timed out, or replaced by the next person's
                // card at the same reader), the answer is about someone else:
                // applying it would refuse — or admit — the wrong person.
                let current = self.memory.waiting().iter().any(|w| {
                    w.door == job.door
                        && w.side == job.side
                        && matches!(w.awaiting, Awaiting::Biometric { slot, .. } if slot == job.slot)
                });
                if !current {
                    tracing::info!(
                        door = job.door.0,
                        slot = job.slot.0,
                        "finger result for a wait that has ended; ignored"
                    );
                    return;
                }
                let now = self.now();
                let request = Request::Biometric {
                    door: job.door,
                    side: job.side,
                    result,
                };
                let decision = decide(&self.snapshot, &self.memory, &request, &now);
                self.act(decision, now, None).await;
            }
            DeviceInput::Enrolling { module, active } => {
                if active {
                    self.enrolling.insert(module);
                } else {
                    self.enrolling.remove(&module);
                }
                for index in 0..self.e.doors.len() {
                    if self.door_uses(index, module) {
                        tracing::info!(door = %self.e.doors[index].name, module = module.0, active,
                            "enrollment at this door's fingerprint module");
                        self.update_prompt(index);
                    }
                }
            }
            DeviceInput::BiometricStatus {
                name,
                online,
                error,
            } => {
                let now = self.now();
                self.e
                    .board
                    .device(&name, "biometric", online, error, now.utc);
                let device = DeviceRef {
                    kind: DeviceKind::Biometric,
                    name,
                };
                let kind = if online {
                    EventKind::DeviceOnline { device }
                } else {
                    EventKind::DeviceOffline { device }
                };
                self.record(now.utc, vec![kind]).await;
            }
        }
    }

    fn binding(&self, reader: &str) -> Option<ReaderBinding> {
        self.e
            .readers
            .iter()
            .find(|b| reader_matches(&b.pattern, reader))
            .cloned()
    }

    async fn reader_online(&mut self, name: &str, online: bool, error: Option<String>) {
        let Some(binding) = self.binding(name) else {
            tracing::info!(reader = %name, online, "reader not used by any door");
            return;
        };
        // Only this device's entry, not a copy of the whole status.
        let was = self
            .e
            .board
            .update(|s| s.devices.get(&binding.pattern).map(|d| d.online));
        let now = self.now();
        if online {
            tracing::info!(reader = %name, "card reader online");
        } else {
            tracing::error!(reader = %name, error = error.as_deref().unwrap_or(""), "card reader offline");
        }
        self.e
            .board
            .device(&binding.pattern, "card_reader", online, error, now.utc);
        if was != Some(online) {
            let device = DeviceRef {
                kind: DeviceKind::CardReader,
                name: binding.pattern.clone(),
            };
            let kind = if online {
                EventKind::DeviceOnline { device }
            } else {
                EventKind::DeviceOffline { device }
            };
            self.record(now.utc, vec![kind]).await;
        }
    }

    /// Records a decision, then carries it out. Nothing opens unless its
    /// event is on disk: if the outbox cannot be written the door stays shut.
    async fn act(&mut self, decision: Decision, now: Moment, seen_at: Option<SystemTime>) {
        let queued_ms = seen_at.map(crate::devices::age_ms);
        let verdict = decision.verdict();
        let door = self.door_index(decision.door);
        let lane_busy = |i: &usize| self.e.doors[*i].busy_against(decision.side);
        if let Some(index) = door
            .filter(|_| verdict == Verdict::Granted)
            .filter(lane_busy)
        {
            // A gate lane open for someone coming the other way cannot open
            // towards this person. Recording a grant that nobody can use would
            // put them inside for anti-passback and occupancy, so the tap is
            // not taken: nothing is applied or recorded, and the reader asks
            // for the card again. Refusals are still recorded (a lost card, say).
            tracing::info!(door = %self.e.doors[index].name, side = ?decision.side,
                "lane busy in the other direction; tap not taken, present the card again");
            self.e.doors[index].show_decision("lane busy, present the card again".into(), now.utc);
            return;
        }
        self.memory.apply(&decision);
        *self.decisions.entry(verdict_word(verdict)).or_default() += 1;
        let records: Vec<EventKind> = decision
            .access_records()
            .into_iter()
            .map(EventKind::Access)
            .collect();
        let change = self.memory_change(decision.passages().to_vec());
        let committing = std::time::Instant::now();
        let recorded = self.record_with(now.utc, records, &change).await;
        let commit_ms = committing.elapsed().as_secs_f64() * 1000.0;
        let Some(index) = door else {
            return;
        };
        let words = format!(
            "{} {:?} {}",
            verdict_word(verdict),
            decision.side,
            decision.reason
        );
        self.e.doors[index].show_decision(words, now.utc);
        if !recorded {
            return;
        }
        match verdict {
            Verdict::Granted => {
                let (opened, events) = self.e.doors[index].grant(decision.side, now.utc);
                if let (Some(at), Some(queued)) = (seen_at, queued_ms) {
                    self.latency(crate::devices::age_ms(at), queued, commit_ms);
                }
                if !opened {
                    // Checked before the decision was applied; only a pin
                    // fault (shown on the door's status) gets here.
                    tracing::warn!(door = %self.e.doors[index].name, "granted but the door could not be driven");
                }
                self.record(now.utc, events).await;
            }
            Verdict::Pending => {
                if let Some(pending) = decision.pending {
                    if let Awaiting::Biometric { module, slot } = pending.awaiting {
                        self.ask_finger(&decision, module, slot, pending.deadline, now)
                            .await;
                    }
                }
            }
            Verdict::Denied => {}
        }
        self.update_prompt(index);
    }

    async fn ask_finger(
        &mut self,
        decision: &Decision,
        module: ModuleId,
        slot: tobira_firmware::TemplateSlot,
        deadline: Timestamp,
        now: Moment,
    ) {
        let left = Duration::from_millis(deadline.ms_since(now.utc));
        let job = VerifyJob {
            door: decision.door,
            side: decision.side,
            slot,
            deadline: tokio::time::Instant::now() + left,
        };
        // Published first: a module cancels a job whose wait it does not see.
        self.publish_finger_waits();
        let queued = self.e.modules.get(&module).is_some_and(|m| m.verify(job));
        if !queued {
            tracing::error!(
                module = module.0,
                door = decision.door.0,
                "no biometric module configured, or it is swamped or enrolling; the finger step cannot run"
            );
            let request = Request::Biometric {
                door: job.door,
                side: job.side,
                result: BiometricResult::Unavailable,
            };
            let follow = decide(&self.snapshot, &self.memory, &request, &now);
            Box::pin(self.act(follow, now, None)).await;
        }
    }

    /// Tells the modules which finger waits the doors have now (only when they changed).
    fn publish_finger_waits(&self) {
        let now: Vec<FingerWait> = self
            .memory
            .waiting()
            .iter()
            .filter_map(|w| match w.awaiting {
                Awaiting::Biometric { slot, .. } => Some(FingerWait {
                    door: w.door,
                    side: w.side,
                    slot,
                }),
                _ => None,
            })
            .collect();
        self.e.finger_waits.send_if_modified(|waits| {
            let changed = *waits != now;
            if changed {
                *waits = now;
            }
            changed
        });
    }

    fn update_prompt(&mut self, index: usize) {
        let id = self.e.doors[index].id;
        let waiting = self.memory.waiting().iter().any(|w| w.door == id);
        let enrolling = self.enrolling.iter().any(|m| self.door_uses(index, *m));
        self.e.doors[index].set_prompt(waiting || enrolling);
    }

    /// Whether a reader of this door has `module` beside it, per the policy.
    fn door_uses(&self, index: usize, module: ModuleId) -> bool {
        self.snapshot.door(self.e.doors[index].id).is_some_and(|d| {
            [d.entry_reader, d.exit_reader]
                .iter()
                .flatten()
                .any(|r| r.biometric == Some(module))
        })
    }

    fn door_index(&self, door: DoorId) -> Option<usize> {
        self.e.doors.iter().position(|d| d.id == door)
    }

    /// Commits events to the outbox. `false` if that failed (logged).
    async fn record(&mut self, at: Timestamp, events: Vec<EventKind>) -> bool {
        self.record_with(at, events, &MemoryChange::default()).await
    }

    /// Commits events and the memory change they imply in one transaction.
    async fn record_with(
        &mut self,
        at: Timestamp,
        events: Vec<EventKind>,
        change: &MemoryChange,
    ) -> bool {
        if events.is_empty() && change.is_empty() {
            return true;
        }
        match self.e.outbox.append_with(at, events, change).await {
            Ok(sealed) => {
                if let Some(waits) = &change.waits {
                    self.saved_waits = waits.clone();
                }
                let mut last = 0;
                for s in &sealed {
                    last = s.event.seq;
                    tracing::info!(seq = s.event.seq, event = %describe(&s.event.kind, &self.e.identifiers), "event recorded");
                }
                self.e.board.update(|st| {
                    st.last_seq = last;
                    st.outbox_depth += sealed.len() as u64;
                });
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot record events; the door stays shut");
                false
            }
        }
    }

    async fn tick(&mut self) {
        let now = self.now();
        let mut events = Vec::new();
        let mut rex = Vec::new();
        for (i, door) in self.e.doors.iter_mut().enumerate() {
            let polled = door.poll(now.utc);
            events.extend(polled.events);
            if polled.rex {
                rex.push(i);
            }
        }
        let mut fire_changed = false;
        for input in &mut self.e.inputs {
            use embedded_hal::digital::InputPin;
            let level = match input.pin.is_high() {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "input failed");
                    continue;
                }
            };
            if level == input.last {
                continue;
            }
            input.last = level;
            match &input.role {
                InputRole::Fire(zone) => {
                    tracing::warn!(zone = zone.0, active = level, "fire alarm input changed");
                    self.memory.set_fire_alarm(*zone, level);
                    fire_changed = true;
                    events.push(EventKind::FireAlarm {
                        zone: *zone,
                        active: level,
                    });
                }
                InputRole::Tamper(name) => {
                    tracing::warn!(device = %name, active = level, "tamper switch changed");
                    events.push(EventKind::Tamper {
                        device: DeviceRef {
                            kind: DeviceKind::Gpio,
                            name: name.clone(),
                        },
                        active: level,
                    });
                }
            }
        }
        self.record(now.utc, events).await;
        for i in rex {
            let request = Request::RequestToExit {
                door: self.e.doors[i].id,
            };
            let decision = decide(&self.snapshot, &self.memory, &request, &now);
            self.act(decision, now, None).await;
        }
        let expired = self.memory.expire(now.utc);
        for decision in expired {
            *self
                .decisions
                .entry(verdict_word(decision.verdict()))
                .or_default() += 1;
            let records = decision
                .access_records()
                .into_iter()
                .map(EventKind::Access)
                .collect();
            let change = self.memory_change(Vec::new());
            self.record_with(now.utc, records, &change).await;
            if let Some(i) = self.door_index(decision.door) {
                self.e.doors[i].show_decision(
                    format!("denied {:?} {}", decision.side, decision.reason),
                    now.utc,
                );
                self.update_prompt(i);
            }
        }
        if fire_changed || now.utc.ms_since(self.last_release_check) >= 1000 {
            self.refresh_releases(&now);
            let decisions = self
                .decisions
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect();
            self.e.board.update(|s| s.decisions = decisions);
        }
    }

    /// Level 0, opening hours and fire release hold doors open without a card.
    fn refresh_releases(&mut self, now: &Moment) {
        self.last_release_check = now.utc;
        for door in &mut self.e.doors {
            let free = free_access(&self.snapshot, &self.memory, door.id, now).is_some();
            door.set_released(free, now.utc);
        }
    }

    /// Records one card grant's timings: total, queueing, outbox commit.
    fn latency(&mut self, total: f64, queued: f64, commit: f64) {
        if total > 10.0 {
            tracing::warn!(
                total_ms = total,
                queued_ms = queued,
                commit_ms = commit,
                "slow card decision"
            );
        }
        self.e.board.update(|s| {
            let [t, q, c] = &mut s.latency_samples;
            t.push(total);
            q.push(queued);
            c.push(commit);
        });
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Granted => "granted",
        Verdict::Denied => "denied",
        Verdict::Pending => "pending",
    }
}

/// An event for the log: an access names its card and person as
/// `identifiers` says (a keyed tag unless the operator asked for them in full).
fn describe(kind: &EventKind, identifiers: &Identifiers) -> String {
    match kind {
        EventKind::Access(a) => format!(
            "access door={} side={:?} reason={} card={} person={}",
            a.door.0,
            a.side,
            a.reason,
            a.card.map(|c| identifiers.card(&c)).unwrap_or_default(),
            a.person.map(|p| identifiers.person(p)).unwrap_or_default()
        ),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// The next batch of shared occupancy changes; never ready without a channel.
async fn recv_shared(
    shared: &mut Option<mpsc::UnboundedReceiver<Vec<(ZoneId, PersonId)>>>,
) -> Option<Vec<(ZoneId, PersonId)>> {
    match shared {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identifiers::IdentifierMode;
    use tobira_firmware::{AccessRecord, CardUid, DoorId, PersonId, Reason, Side, Warnings};

    #[test]
    fn access_events_are_logged_with_tags_unless_asked_for_in_full() {
        let dir = tempfile::tempdir().unwrap();
        let uid = CardUid::new(&[0x04, 0xa1, 0xb2, 0xc3]).unwrap();
        let access = EventKind::Access(AccessRecord {
            door: DoorId(3),
            side: Side::Entry,
            level: None,
            reason: Reason::Granted,
            person: Some(PersonId(4711)),
            card: Some(uid),
            escort: None,
            warnings: Warnings::default(),
        });
        let tagged = Identifiers::load(dir.path(), IdentifierMode::Tagged).unwrap();
        let line = describe(&access, &tagged);
        assert!(
            !line.contains(&uid.to_string()) && !line.contains("4711"),
            "{line}"
        );
        assert!(line.contains(&tagged.card(&uid)), "{line}");
        let full = Identifiers::load(dir.path(), IdentifierMode::Full).unwrap();
        let line = describe(&access, &full);
        assert!(
            line.contains(&uid.to_string()) && line.contains("person=4711"),
            "{line}"
        );
    }
}
