//! The live monitor: one task reads each stored batch once and keeps the
//! doors' and controllers' states, fanning every change out to the open streams.
//!
//! Ingest announces each batch it stored ([`Store::subscribe_stored`]); the
//! hub reads that batch by its key, so a monitor sees an event as soon as it
//! is committed, whatever the number of streams. A hub that falls behind
//! (its channel lagged) reads what it missed in receive order.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, OnceCell};
use utoipa::{IntoParams, ToSchema};

use crate::store::events::StoredRange;
use crate::store::monitor::{MonitoredController, MonitoredDoor};
use crate::store::passages::PassageCursor;
use crate::store::queries::EventRecord;
use crate::store::resources::{Id, Level, Outcome};
use crate::store::{Store, StoreResult};

pub mod stream;

/// How long a door released by a granted access shows as open: the
/// central service does not hear the door shut after a normal passage.
pub const RELEASE_SHOWN_MS: i64 = 5_000;
/// Events kept for a page opened now.
const RECENT: usize = 200;
/// How often released doors are shut again and controllers looked at.
const TICK: Duration = Duration::from_secs(1);
/// Controllers' health is read again at least this often (cache age,
/// offline alarms raised by the periodic job).
const CONTROLLERS_EVERY: u32 = 5;
/// Events read per query when catching up.
const CATCH_UP: i64 = 500;

/// What a door is doing, as far as the central service knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DoorState {
    /// Shut and locked (or nothing heard of it).
    Locked,
    /// Released for a granted access.
    Open,
    /// Held open too long.
    Held,
    /// Opened without a grant.
    Forced,
    /// Its controller is offline: its state is unknown.
    Offline,
}

impl DoorState {
    /// The catalog key of its name.
    pub fn key(self) -> &'static str {
        match self {
            Self::Locked => "monitor.door.locked",
            Self::Open => "monitor.door.open",
            Self::Held => "monitor.door.held",
            Self::Forced => "monitor.door.forced",
            Self::Offline => "monitor.door.offline",
        }
    }

    /// Whether the desk must look at it.
    pub fn alarming(self) -> bool {
        matches!(self, Self::Held | Self::Forced | Self::Offline)
    }
}

/// A door and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DoorStatus {
    /// The door, its zone and controller.
    #[serde(flatten)]
    pub door: MonitoredDoor,
    /// Its state now.
    pub state: DoorState,
    /// Since when (ms since the epoch), if known.
    pub since: Option<i64>,
}

/// A controller's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ControllerStatus {
    /// The controller.
    #[serde(flatten)]
    pub controller: MonitoredController,
    /// Checking in (not offline, not disabled, seen at least once).
    pub online: bool,
    /// How old its policy copy may be: time since its last contact (ms).
    pub cache_age_ms: Option<i64>,
}

/// An event as the monitor shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MonitorEvent {
    /// The stored event.
    #[serde(flatten)]
    pub event: EventRecord,
    /// The site of its door or zone, if known.
    pub site_id: Option<i64>,
    /// Its place in receive order (the stream's event id: a reconnecting
    /// client resumes after it).
    pub position: String,
    /// A denied attempt at level 4, or a door forced: the desk must see it.
    pub stands_out: bool,
}

/// One change the monitor streams.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Update {
    /// An event arrived.
    Event(Box<MonitorEvent>),
    /// A door's state changed.
    Door(DoorStatus),
    /// A controller's health changed.
    Controller(ControllerStatus),
    /// The number of open alarms changed.
    Alarms {
        /// Alarms nobody has acknowledged.
        open: i64,
        /// Of those, escalated: nobody acknowledged them in time.
        escalated: i64,
    },
}

/// Which updates a viewer wants; all filters combine with AND.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MonitorFilter {
    /// Only this site.
    pub site: Option<Id>,
    /// Only this zone (events and doors into it).
    pub zone: Option<Id>,
    /// Only doors into zones of this level, and events decided at it.
    pub level: Option<Level>,
    /// Only access events with this outcome (doors and controllers still show).
    pub outcome: Option<Outcome>,
}

impl MonitorFilter {
    /// Whether `update` passes.
    pub fn passes(&self, update: &Update) -> bool {
        let site = |s: Option<i64>| self.site.is_none_or(|want| s == Some(want.get()));
        match update {
            Update::Event(e) => {
                site(e.site_id)
                    && self.zone.is_none_or(|z| e.event.zone_id == Some(z.get()))
                    && self.level.is_none_or(|l| e.event.level == Some(l.get()))
                    && self.outcome.is_none_or(|o| e.event.outcome == Some(o))
            }
            Update::Door(d) => {
                site(Some(d.door.site_id))
                    && self.zone.is_none_or(|z| d.door.zone_id == z.get())
                    && self.level.is_none_or(|l| d.door.level == l.get())
            }
            Update::Controller(c) => site(Some(c.controller.site_id)),
            Update::Alarms { .. } => true,
        }
    }
}

/// What a viewer sees when they open the monitor.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct MonitorView {
    /// The latest events, newest first.
    pub events: Vec<MonitorEvent>,
    /// Every door.
    pub doors: Vec<DoorStatus>,
    /// Every controller.
    pub controllers: Vec<ControllerStatus>,
    /// Alarms nobody has acknowledged.
    pub open_alarms: i64,
    /// Of those, escalated.
    pub escalated_alarms: i64,
}

impl MonitorView {
    /// The view through `filter`.
    pub fn filtered(self, filter: &MonitorFilter) -> MonitorView {
        MonitorView {
            events: keep(self.events, filter, |e| Update::Event(Box::new(e))),
            doors: keep(self.doors, filter, Update::Door),
            controllers: keep(self.controllers, filter, Update::Controller),
            open_alarms: self.open_alarms,
            escalated_alarms: self.escalated_alarms,
        }
    }

    /// Every door and controller as updates (sent first on each connection,
    /// so a reconnecting viewer is whole again).
    pub fn states(&self) -> Vec<Update> {
        let doors = self.doors.iter().cloned().map(Update::Door);
        let controllers = self.controllers.iter().cloned().map(Update::Controller);
        doors
            .chain(controllers)
            .chain([Update::Alarms {
                open: self.open_alarms,
                escalated: self.escalated_alarms,
            }])
            .collect()
    }
}

fn keep<T: Clone>(items: Vec<T>, filter: &MonitorFilter, wrap: fn(T) -> Update) -> Vec<T> {
    items
        .into_iter()
        .filter(|item| filter.passes(&wrap(item.clone())))
        .collect()
}

/// The live monitor; cheap to clone. Its task starts with the first viewer.
#[derive(Debug, Clone)]
pub struct Monitor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    started: OnceCell<()>,
    updates: broadcast::Sender<Arc<Update>>,
    view: RwLock<Hub>,
}

/// The hub's state: what it has shown and what the doors are doing.
#[derive(Debug, Default)]
struct Hub {
    doors: BTreeMap<i64, DoorStatus>,
    controllers: BTreeMap<i64, ControllerStatus>,
    recent: VecDeque<MonitorEvent>,
    /// The last sequence number shown per (controller, epoch): a resent
    /// batch is not shown twice.
    shown: HashMap<(i64, i64), i64>,
    /// The newest position shown, for catching up after a lag.
    position: Option<PassageCursor>,
    /// Open and escalated alarms.
    alarms: (i64, i64),
}

impl Monitor {
    /// A monitor over `store`; nothing runs until someone looks.
    pub fn new(store: Store) -> Self {
        let (updates, _) = broadcast::channel(1024);
        Monitor {
            inner: Arc::new(Inner {
                store,
                started: OnceCell::new(),
                updates,
                view: RwLock::new(Hub::default()),
            }),
        }
    }

    /// Starts the hub if it is not running, then subscribes: every update
    /// after the returned view comes through the receiver.
    pub async fn open(&self) -> StoreResult<(MonitorView, broadcast::Receiver<Arc<Update>>)> {
        self.inner
            .started
            .get_or_try_init(|| async {
                let inner = self.inner.clone();
                // Subscribed before the first read, so no batch slips between.
                let stored = inner.store.subscribe_stored();
                let activity = inner.store.watch_activity();
                inner.load().await?;
                tokio::spawn(run(inner, stored, activity));
                StoreResult::Ok(())
            })
            .await?;
        let receiver = self.inner.updates.subscribe();
        Ok((self.inner.snapshot(), receiver))
    }

    /// The store the monitor reads.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }
}

impl Inner {
    fn snapshot(&self) -> MonitorView {
        let hub = self.view.read().unwrap_or_else(|p| p.into_inner());
        MonitorView {
            events: hub.recent.iter().rev().cloned().collect(),
            doors: hub.doors.values().cloned().collect(),
            controllers: hub.controllers.values().cloned().collect(),
            open_alarms: hub.alarms.0,
            escalated_alarms: hub.alarms.1,
        }
    }

    fn hub(&self) -> std::sync::RwLockWriteGuard<'_, Hub> {
        self.view.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The first read: doors with their last state, controllers, the
    /// latest events.
    async fn load(&self) -> StoreResult<()> {
        let now = crate::store::now_ms();
        let doors = self.store.monitored_doors(&Default::default()).await?;
        let controllers = self.store.monitored_controllers().await?;
        let latest = self.store.latest_received(RECENT as i64).await?;
        let alarms = self.store.open_alarm_counts().await?;
        let mut hub = self.hub();
        hub.controllers = controllers
            .into_iter()
            .map(|c| (c.id, controller_status(c, now)))
            .collect();
        for door in doors {
            let status = door_status(door, &hub.controllers, now);
            hub.doors.insert(status.door.id, status);
        }
        for e in latest {
            let shown = shown_event(e, &hub.doors);
            hub.remember(shown);
        }
        hub.alarms = alarms;
        Ok(())
    }

    fn send(&self, update: Update) {
        // No viewer is no error.
        let _ = self.updates.send(Arc::new(update));
    }

    /// Shows new events and the doors they change.
    fn show(&self, events: Vec<EventRecord>) {
        let now = crate::store::now_ms();
        let mut hub = self.hub();
        let controllers = hub.controllers.clone();
        for e in events {
            let chain = (e.controller_id, e.epoch_column);
            if hub.shown.get(&chain).is_some_and(|last| e.seq <= *last) {
                continue;
            }
            let shown = shown_event(e, &hub.doors);
            let changed_door = shown
                .event
                .door_id
                .and_then(|door| hub.doors.get_mut(&door))
                .and_then(|d| {
                    d.door.last = Some(state_setting(&shown.event)?);
                    let next = door_status(d.door.clone(), &controllers, now);
                    (next != *d).then(|| {
                        *d = next.clone();
                        next
                    })
                });
            hub.remember(shown.clone());
            // The event first, then what it did to its door.
            self.send(Update::Event(Box::new(shown)));
            if let Some(d) = changed_door {
                self.send(Update::Door(d));
            }
        }
    }

    /// Reads controllers and alarms again; sends what changed, and shuts
    /// doors whose release has run out or whose controller came or went.
    async fn refresh(&self, controllers: bool) -> StoreResult<()> {
        let now = crate::store::now_ms();
        let fresh = if controllers {
            Some(self.store.monitored_controllers().await?)
        } else {
            None
        };
        let alarms = self.store.open_alarm_counts().await?;
        let new_doors = if controllers {
            let known = self.hub().doors.keys().copied().collect();
            let doors = self.store.monitored_doors(&known).await?;
            Some(doors)
        } else {
            None
        };
        let mut hub = self.hub();
        if let Some(fresh) = fresh {
            let mut seen = BTreeMap::new();
            for c in fresh {
                let status = controller_status(c, now);
                if hub.controllers.get(&status.controller.id) != Some(&status) {
                    self.send(Update::Controller(status.clone()));
                }
                seen.insert(status.controller.id, status);
            }
            hub.controllers = seen;
        }
        if let Some(doors) = new_doors {
            let mut kept = BTreeMap::new();
            for mut door in doors {
                // Known doors keep the state the hub follows; the store
                // read only their names and places.
                if let Some(old) = hub.doors.get(&door.id) {
                    door.last = old.door.last.clone();
                }
                kept.insert(door.id, door);
            }
            let gone: Vec<i64> = hub
                .doors
                .keys()
                .filter(|id| !kept.contains_key(id))
                .copied()
                .collect();
            for id in gone {
                hub.doors.remove(&id);
            }
            for (id, door) in kept {
                let status = door_status(door, &hub.controllers, now);
                if hub.doors.get(&id) != Some(&status) {
                    self.send(Update::Door(status.clone()));
                    hub.doors.insert(id, status);
                }
            }
        } else {
            let controllers = hub.controllers.clone();
            for d in hub.doors.values_mut() {
                let next = door_status(d.door.clone(), &controllers, now);
                if next != *d {
                    *d = next.clone();
                    self.send(Update::Door(next));
                }
            }
        }
        if hub.alarms != alarms {
            hub.alarms = alarms;
            self.send(Update::Alarms {
                open: alarms.0,
                escalated: alarms.1,
            });
        }
        Ok(())
    }

    /// Reads, in receive order, what a lagging hub missed.
    async fn catch_up(&self) -> StoreResult<()> {
        loop {
            let from = self.hub().position.unwrap_or_else(PassageCursor::start);
            let missed = self.store.events_received_after(from, CATCH_UP).await?;
            let done = missed.len() < usize::try_from(CATCH_UP).unwrap_or(usize::MAX);
            self.show(missed);
            if done {
                return Ok(());
            }
        }
    }
}

impl Hub {
    fn remember(&mut self, e: MonitorEvent) {
        let chain = (e.event.controller_id, e.event.epoch_column);
        let last = self.shown.entry(chain).or_insert(e.event.seq);
        *last = (*last).max(e.event.seq);
        let position = PassageCursor::of_event(&e.event);
        if self.position.is_none_or(|p| position > p) {
            self.position = Some(position);
        }
        self.recent.push_back(e);
        while self.recent.len() > RECENT {
            self.recent.pop_front();
        }
    }
}

/// The hub's loop: batches as they are stored, activity (alarms), and a
/// tick for releases running out and controllers' health.
async fn run(
    inner: Arc<Inner>,
    mut stored: broadcast::Receiver<StoredRange>,
    mut activity: tokio::sync::watch::Receiver<u64>,
) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u32;
    loop {
        let outcome = tokio::select! {
            range = stored.recv() => match range {
                Ok(range) => match inner.store.events_in_range(range).await {
                    Ok(events) => {
                        inner.show(events);
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                Err(broadcast::error::RecvError::Lagged(_)) => inner.catch_up().await,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            changed = activity.changed() => match changed {
                Ok(()) => inner.refresh(true).await,
                Err(_) => return,
            },
            _ = tick.tick() => {
                ticks = ticks.wrapping_add(1);
                inner.refresh(ticks % CONTROLLERS_EVERY == 0).await
            }
        };
        if let Err(e) = outcome {
            // The next batch or tick tries again; the events are in the
            // table whatever the monitor shows.
            tracing::warn!(error = %e, "live monitor could not read the store");
        }
    }
}

fn controller_status(c: MonitoredController, now: i64) -> ControllerStatus {
    ControllerStatus {
        online: !c.disabled && c.offline_since.is_none() && c.last_seen_at.is_some(),
        cache_age_ms: c.last_seen_at.map(|at| (now - at).max(0)),
        controller: c,
    }
}

/// The (kind, outcome, at) an event sets its door's state with, if it does.
fn state_setting(e: &EventRecord) -> Option<(String, Option<String>, i64)> {
    let sets = match e.kind.as_str() {
        "access" => e.outcome == Some(Outcome::Granted),
        "door_forced" | "door_held_open" | "door_closed" | "forced_passage" | "gate_passage"
        | "gate_unused" | "tailgating" => true,
        _ => false,
    };
    sets.then(|| {
        (
            e.kind.clone(),
            e.outcome.map(|o| o.as_str().to_owned()),
            e.at,
        )
    })
}

fn door_status(
    door: MonitoredDoor,
    controllers: &BTreeMap<i64, ControllerStatus>,
    now: i64,
) -> DoorStatus {
    let offline = door
        .controller_id
        .and_then(|c| controllers.get(&c))
        .is_some_and(|c| c.controller.offline_since.is_some());
    let (state, since) = match (&door.last, offline) {
        (_, true) => (
            DoorState::Offline,
            door.controller_id
                .and_then(|c| controllers.get(&c))
                .and_then(|c| c.controller.offline_since),
        ),
        (None, false) => (DoorState::Locked, None),
        (Some((kind, _, at)), false) => {
            let state = match kind.as_str() {
                "access" if now - at < RELEASE_SHOWN_MS => DoorState::Open,
                "door_forced" | "forced_passage" => DoorState::Forced,
                "door_held_open" => DoorState::Held,
                _ => DoorState::Locked,
            };
            (state, Some(*at))
        }
    };
    DoorStatus { door, state, since }
}

/// An event with what the monitor adds: its site, its position, whether it stands out.
pub fn shown_event(event: EventRecord, doors: &BTreeMap<i64, DoorStatus>) -> MonitorEvent {
    let door = event.door_id.and_then(|d| doors.get(&d));
    let site_id = door.map(|d| d.door.site_id).or_else(|| {
        let zone = event.zone_id?;
        doors
            .values()
            .find(|d| d.door.zone_id == zone)
            .map(|d| d.door.site_id)
    });
    let stands_out = matches!(event.kind.as_str(), "door_forced" | "forced_passage")
        || (event.outcome == Some(Outcome::Denied) && event.level == Some(4));
    MonitorEvent {
        position: PassageCursor::of_event(&event).text(),
        site_id,
        stands_out,
        event,
    }
}
