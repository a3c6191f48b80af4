//! One door or flapper gate on its pins: the firmware state machine, its signals turned into events, its status.

use tobira_firmware::{
    DoorId, DoorMachine, DoorSignal, EventKind, GateMachine, GateSignal, HeldStage, Side, Timestamp,
};

use crate::config::{Config, DoorConfig, DoorKindConfig};
use crate::pins::{Gpio, Input, Output, PinError};
use crate::status::StatusBoard;
use tobira_hardware::profile::BoardProfile;

enum Machine {
    Door(DoorMachine<Output, Input, Input>),
    Gate(GateMachine<Output, Output, Input>),
}

/// A door or gate this controller drives.
pub struct DoorUnit {
    /// Configured name.
    pub name: String,
    /// Id in the policy.
    pub id: DoorId,
    machine: Machine,
    prompt: Option<Output>,
    /// A forced or held alarm is active: its end is worth an event.
    alarmed: bool,
    released: bool,
    board: StatusBoard,
    fault: Option<String>,
}

impl std::fmt::Debug for DoorUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoorUnit")
            .field("name", &self.name)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// What a poll found.
#[derive(Debug, Default)]
pub struct Polled {
    /// Events to record.
    pub events: Vec<EventKind>,
    /// The request-to-exit button was pressed.
    pub rex: bool,
}

impl DoorUnit {
    /// Claims the door's pins and puts it in its secure state.
    pub fn build(
        door: &DoorConfig,
        config: &Config,
        profile: Option<&BoardProfile>,
        gpio: &Gpio,
        board: &StatusBoard,
        now: Timestamp,
    ) -> Result<Self, String> {
        let out = |part: &str, pin: &Option<crate::config::PinRef>| -> Result<Output, String> {
            let pin = pin
                .as_ref()
                .ok_or_else(|| format!("door {:?}: {part} missing", door.name))?;
            let resolved = config.resolve(profile, pin, true)?;
            gpio.output(&format!("{}.{part}", door.name), resolved, board)
                .map_err(|e| e.0)
        };
        let input = |part: &str,
                     pin: &Option<crate::config::PinRef>,
                     invert: bool|
         -> Result<Input, String> {
            let pin = pin
                .as_ref()
                .ok_or_else(|| format!("door {:?}: {part} missing", door.name))?;
            let resolved = config.resolve(profile, pin, false)?;
            gpio.input(&format!("{}.{part}", door.name), resolved, invert)
                .map_err(|e| e.0)
        };
        let machine = match door.kind {
            DoorKindConfig::Door => {
                let relay = out("lock", &door.lock_output)?;
                // The contact is wired "asserted while shut"; the brain asks "open?".
                let contact = input("contact", &door.contact, true)?;
                let rex = match &door.rex {
                    Some(_) => Some(input("rex", &door.rex, false)?),
                    None => None,
                };
                Machine::Door(
                    DoorMachine::new(relay, contact, rex, door.lock, door.timings, now)
                        .map_err(|e| format!("door {:?}: {e}", door.name))?,
                )
            }
            DoorKindConfig::FlapperGate => {
                let open_in = out("open_in", &door.open_in)?;
                let open_out = out("open_out", &door.open_out)?;
                let passage = input("passage", &door.passage, false)?;
                Machine::Gate(
                    GateMachine::new(open_in, open_out, passage, door.gate_timings)
                        .map_err(|e| format!("gate {:?}: {e}", door.name))?,
                )
            }
        };
        let prompt = match &door.prompt {
            Some(_) => Some(out("prompt", &door.prompt)?),
            None => None,
        };
        let unit = Self {
            name: door.name.clone(),
            id: DoorId(door.id),
            machine,
            prompt,
            alarmed: false,
            released: false,
            board: board.clone(),
            fault: None,
        };
        unit.show(None, now);
        Ok(unit)
    }

    /// Whether this is a flapper gate.
    pub fn is_gate(&self) -> bool {
        matches!(self.machine, Machine::Gate(_))
    }

    /// Whether a flapper gate is open for someone coming the other way, so a
    /// grant from `side` could not be carried out now. Doors are never busy.
    pub fn busy_against(&self, side: Side) -> bool {
        match &self.machine {
            Machine::Door(_) => false,
            Machine::Gate(g) => g.busy_against(side),
        }
    }

    /// Opens for one person in direction `side`. Returns the events to record
    /// and whether it opened (a gate busy in the other direction does not).
    pub fn grant(&mut self, side: Side, now: Timestamp) -> (bool, Vec<EventKind>) {
        let result = match &mut self.machine {
            Machine::Door(d) => d
                .grant(now)
                .map(|s| (true, self.door_events(&s)))
                .map_err(|e| e.to_string()),
            Machine::Gate(g) => match g.grant(side, now) {
                Ok((opened, signals)) => Ok((opened, Self::gate_events(self.id, &signals))),
                Err(e) => Err(e.to_string()),
            },
        };
        match result {
            Ok((opened, events)) => {
                self.show(
                    Some(if opened {
                        "granted"
                    } else {
                        "granted, lane busy"
                    }),
                    now,
                );
                (opened, events)
            }
            Err(e) => {
                self.fail(e);
                (false, Vec::new())
            }
        }
    }

    /// Reads inputs, advances timers.
    pub fn poll(&mut self, now: Timestamp) -> Polled {
        let mut polled = Polled::default();
        let result = match &mut self.machine {
            Machine::Door(d) => d.poll(now).inspect(|signals| {
                polled.rex = signals.contains(&DoorSignal::RexPressed);
            }),
            Machine::Gate(g) => {
                return match g.poll(now) {
                    Ok(signals) => {
                        polled.events = Self::gate_events(self.id, &signals);
                        if !signals.is_empty() {
                            self.show(gate_word(&signals), now);
                        }
                        polled
                    }
                    Err(e) => {
                        self.fail(e.to_string());
                        polled
                    }
                }
            }
        };
        match result {
            Ok(signals) => {
                polled.events = self.door_events(&signals);
                if signals.iter().any(|s| !matches!(s, DoorSignal::RexPressed)) {
                    self.show(door_word(&signals), now);
                }
            }
            Err(e) => self.fail(e.to_string()),
        }
        polled
    }

    /// Holds the door released (fire, opening hours, level 0) or ends that.
    pub fn set_released(&mut self, released: bool, now: Timestamp) {
        if released == self.released {
            return;
        }
        let result = match &mut self.machine {
            Machine::Door(d) => d
                .set_released(released, now)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Machine::Gate(g) => g
                .set_released(released)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        match result {
            Ok(()) => {
                self.released = released;
                self.show(Some(if released { "released" } else { "secured" }), now);
            }
            Err(e) => self.fail(e),
        }
    }

    /// Lights or darkens the prompt (waiting for a finger or an escort).
    pub fn set_prompt(&mut self, on: bool) {
        if let Some(p) = self.prompt.as_mut() {
            use embedded_hal::digital::OutputPin;
            let r: Result<(), PinError> = if on { p.set_high() } else { p.set_low() };
            if let Err(e) = r {
                tracing::warn!(door = %self.name, error = %e, "prompt output failed");
            }
        }
    }

    /// Outputs to the state they have without power (shutdown).
    pub fn safe_state(&mut self) {
        let result = match &mut self.machine {
            Machine::Door(d) => d.safe_state().map_err(|e| e.to_string()),
            Machine::Gate(g) => g.safe_state().map_err(|e| e.to_string()),
        };
        self.set_prompt(false);
        if let Err(e) = result {
            tracing::error!(door = %self.name, error = %e, "could not put the door in its safe state");
        }
    }

    fn door_events(&mut self, signals: &[DoorSignal]) -> Vec<EventKind> {
        let door = self.id;
        let mut events = Vec::new();
        for s in signals {
            match s {
                DoorSignal::Forced => {
                    self.alarmed = true;
                    events.push(EventKind::DoorForced { door });
                }
                DoorSignal::Held(stage) => {
                    self.alarmed = true;
                    events.push(EventKind::DoorHeldOpen {
                        door,
                        stage: *stage,
                    });
                }
                DoorSignal::Closed if self.alarmed => {
                    self.alarmed = false;
                    events.push(EventKind::DoorClosed { door });
                }
                _ => {}
            }
        }
        events
    }

    fn gate_events(door: DoorId, signals: &[GateSignal]) -> Vec<EventKind> {
        signals
            .iter()
            .filter_map(|s| match s {
                GateSignal::Passage(side) => Some(EventKind::GatePassage { door, side: *side }),
                GateSignal::Unused => Some(EventKind::GateUnused { door }),
                GateSignal::Tailgating => Some(EventKind::Tailgating { door }),
                GateSignal::ForcedPassage => Some(EventKind::ForcedPassage { door }),
                GateSignal::Opened(_) | GateSignal::Closed => None,
            })
            .collect()
    }

    fn fail(&mut self, error: String) {
        if self.fault.as_deref() != Some(error.as_str()) {
            tracing::error!(door = %self.name, %error, "door pins failed");
        }
        self.fault = Some(error.clone());
        let name = self.name.clone();
        self.board
            .update(|s| s.doors.entry(name).or_default().fault = Some(error));
    }

    fn show(&self, last: Option<&str>, now: Timestamp) {
        let (state, alarm) = match &self.machine {
            Machine::Door(d) => {
                let state = match (self.released, d.is_open(), d.is_unlocked()) {
                    (true, _, _) => "released",
                    (false, true, _) => "open",
                    (false, false, true) => "unlocked",
                    (false, false, false) => "locked",
                };
                let alarm = d.alarm().map(|a| match a {
                    DoorSignal::Held(HeldStage::PreAlarm) => "held_pre_alarm",
                    DoorSignal::Held(HeldStage::Alarm) => "held_alarm",
                    _ => "forced",
                });
                (state, alarm)
            }
            Machine::Gate(g) => (
                match (self.released, g.is_open()) {
                    (true, _) => "released",
                    (false, true) => "open",
                    (false, false) => "closed",
                },
                None,
            ),
        };
        let name = self.name.clone();
        let id = self.id.0;
        let kind = if self.is_gate() {
            "flapper_gate"
        } else {
            "door"
        };
        let fault = self.fault.clone();
        self.board.update(|s| {
            let d = s.doors.entry(name).or_default();
            d.id = id;
            d.kind = kind.into();
            d.state = state.into();
            d.alarm = alarm.map(str::to_owned);
            d.fault = fault;
            if let Some(last) = last {
                d.last_event = Some(last.to_owned());
                d.last_event_at_ms = Some(now.0);
            }
        });
    }

    /// Records the last access decision at this door on the status board.
    pub fn show_decision(&self, words: String, now: Timestamp) {
        let name = self.name.clone();
        self.board.update(|s| {
            let d = s.doors.entry(name).or_default();
            d.last_event = Some(words);
            d.last_event_at_ms = Some(now.0);
        });
    }
}

fn door_word(signals: &[DoorSignal]) -> Option<&'static str> {
    signals.iter().rev().find_map(|s| match s {
        DoorSignal::Unlocked => Some("unlocked"),
        DoorSignal::Relocked => Some("relocked"),
        DoorSignal::Opened => Some("opened"),
        DoorSignal::Closed => Some("closed"),
        DoorSignal::Forced => Some("forced open"),
        DoorSignal::Held(HeldStage::PreAlarm) => Some("held open (pre-alarm)"),
        DoorSignal::Held(HeldStage::Alarm) => Some("held open (alarm)"),
        DoorSignal::RexPressed => None,
    })
}

fn gate_word(signals: &[GateSignal]) -> Option<&'static str> {
    signals.last().map(|s| match s {
        GateSignal::Opened(_) => "opened",
        GateSignal::Passage(_) => "passage",
        GateSignal::Closed => "closed",
        GateSignal::Unused => "unused, closed",
        GateSignal::Tailgating => "tailgating",
        GateSignal::ForcedPassage => "forced passage",
    })
}
