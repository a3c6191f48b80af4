//! The door state machine: strike or maglock relay, door contact, request-to-exit,
//! relock on close, held-open and forced-open alarms, fire release.
//!
//! Pins are logical: the relay pin high = relay energised; the contact pin high =
//! door open; the request-to-exit pin high = pressed. Active-low wiring is
//! inverted by the hardware layer before it reaches here.

use alloc::vec::Vec;

use embedded_hal::digital::{InputPin, OutputPin};
use serde::{Deserialize, Serialize};

use crate::event::HeldStage;
use crate::time::Timestamp;

/// Which way a lock fails when the power goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockKind {
    /// Electric strike: energise to unlock; stays locked without power.
    FailSecure,
    /// Maglock: energise to lock; opens without power (fire egress).
    FailSafe,
}

/// Door timings, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoorTimings {
    /// How long a grant keeps the lock released if nobody opens the door.
    pub unlock_ms: u32,
    /// Open this long after a grant: pre-alarm (buzzer at the door).
    pub held_prealarm_ms: u32,
    /// Open this long after a grant: alarm.
    pub held_alarm_ms: u32,
}

impl Default for DoorTimings {
    fn default() -> Self {
        Self {
            unlock_ms: 5_000,
            held_prealarm_ms: 20_000,
            held_alarm_ms: 30_000,
        }
    }
}

/// Something the door did or suffered, for the controller to log or act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoorSignal {
    /// The lock was released for a grant.
    Unlocked,
    /// The lock was secured again.
    Relocked,
    /// The door opened.
    Opened,
    /// The door closed.
    Closed,
    /// The door opened without a grant.
    Forced,
    /// The door is held open too long.
    Held(HeldStage),
    /// The request-to-exit button was pressed: ask the brain.
    RexPressed,
}

/// A pin failed; the door is in an unknown state and the controller must report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DoorError<R, C, X> {
    /// The lock relay output failed.
    #[error("lock relay output failed: {0:?}")]
    Relay(R),
    /// The door contact input failed.
    #[error("door contact input failed: {0:?}")]
    Contact(C),
    /// The request-to-exit input failed.
    #[error("request-to-exit input failed: {0:?}")]
    Rex(X),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Locked and closed.
    Secure,
    /// Released for a grant, still closed.
    Unlocked { until: Timestamp },
    /// Open. `relay_until` is when the lock is secured again if the door stays open.
    Open {
        since: Timestamp,
        authorised: bool,
        held: Option<HeldStage>,
        relay_until: Option<Timestamp>,
    },
    /// Held released (fire, opening hours, no lock): no alarms.
    Released,
}

/// A door: one lock relay, one contact, optionally a request-to-exit button.
#[derive(Debug)]
pub struct DoorMachine<R, C, X> {
    relay: R,
    contact: C,
    rex: Option<X>,
    lock: LockKind,
    timings: DoorTimings,
    state: State,
    was_open: bool,
    rex_was_pressed: bool,
}

type Errors<R, C, X> = DoorError<
    <R as embedded_hal::digital::ErrorType>::Error,
    <C as embedded_hal::digital::ErrorType>::Error,
    <X as embedded_hal::digital::ErrorType>::Error,
>;

impl<R: OutputPin, C: InputPin, X: InputPin> DoorMachine<R, C, X> {
    /// Takes the pins, secures the lock and reads where the door is. A door
    /// found open at start is treated as held open from now, not as forced.
    pub fn new(
        relay: R,
        contact: C,
        rex: Option<X>,
        lock: LockKind,
        timings: DoorTimings,
        now: Timestamp,
    ) -> Result<Self, Errors<R, C, X>> {
        let mut door = Self {
            relay,
            contact,
            rex,
            lock,
            timings,
            state: State::Secure,
            was_open: false,
            rex_was_pressed: false,
        };
        door.secure()?;
        door.was_open = door.contact.is_high().map_err(DoorError::Contact)?;
        if let Some(rex) = door.rex.as_mut() {
            door.rex_was_pressed = rex.is_high().map_err(DoorError::Rex)?;
        }
        if door.was_open {
            door.state = State::Open {
                since: now,
                authorised: true,
                held: None,
                relay_until: None,
            };
        }
        Ok(door)
    }

    fn set_relay(&mut self, energised: bool) -> Result<(), Errors<R, C, X>> {
        if energised {
            self.relay.set_high().map_err(DoorError::Relay)
        } else {
            self.relay.set_low().map_err(DoorError::Relay)
        }
    }

    fn secure(&mut self) -> Result<(), Errors<R, C, X>> {
        self.set_relay(self.lock == LockKind::FailSafe)
    }

    fn release(&mut self) -> Result<(), Errors<R, C, X>> {
        self.set_relay(self.lock == LockKind::FailSecure)
    }

    /// Whether the door was open at the last poll.
    pub fn is_open(&self) -> bool {
        self.was_open
    }

    /// Whether the lock is currently released.
    pub fn is_unlocked(&self) -> bool {
        match self.state {
            State::Secure => false,
            State::Unlocked { .. } | State::Released => true,
            State::Open { relay_until, .. } => relay_until.is_some(),
        }
    }

    /// Opens the door for one person: releases the lock for the unlock time; it
    /// relocks when the door closes again or the time runs out.
    pub fn grant(&mut self, now: Timestamp) -> Result<Vec<DoorSignal>, Errors<R, C, X>> {
        let until = now.plus_ms(u64::from(self.timings.unlock_ms));
        match self.state {
            State::Released => Ok(Vec::new()),
            State::Secure | State::Unlocked { .. } => {
                self.release()?;
                self.state = State::Unlocked { until };
                Ok(alloc::vec![DoorSignal::Unlocked])
            }
            State::Open { authorised, .. } => {
                // Someone badged while it stood open: the held-open timer restarts;
                // a forced opening stays forced.
                self.release()?;
                self.state = State::Open {
                    since: now,
                    authorised,
                    held: None,
                    relay_until: Some(until),
                };
                Ok(alloc::vec![DoorSignal::Unlocked])
            }
        }
    }

    /// Holds the lock released (fire alarm, opening hours, level 0) or ends that.
    pub fn set_released(
        &mut self,
        released: bool,
        now: Timestamp,
    ) -> Result<Vec<DoorSignal>, Errors<R, C, X>> {
        match (released, self.state) {
            (true, State::Released) | (false, State::Secure) => Ok(Vec::new()),
            (true, _) => {
                self.release()?;
                self.state = State::Released;
                Ok(alloc::vec![DoorSignal::Unlocked])
            }
            (false, State::Released) => {
                self.secure()?;
                self.state = if self.was_open {
                    State::Open {
                        since: now,
                        authorised: true,
                        held: None,
                        relay_until: None,
                    }
                } else {
                    State::Secure
                };
                Ok(alloc::vec![DoorSignal::Relocked])
            }
            (false, _) => Ok(Vec::new()),
        }
    }

    /// Reads the inputs and advances timers. Call it often (every few ms).
    pub fn poll(&mut self, now: Timestamp) -> Result<Vec<DoorSignal>, Errors<R, C, X>> {
        let mut signals = Vec::new();
        let open = self.contact.is_high().map_err(DoorError::Contact)?;
        if let Some(rex) = self.rex.as_mut() {
            let pressed = rex.is_high().map_err(DoorError::Rex)?;
            if pressed && !self.rex_was_pressed {
                signals.push(DoorSignal::RexPressed);
            }
            self.rex_was_pressed = pressed;
        }
        let opened = open && !self.was_open;
        let closed = !open && self.was_open;
        self.was_open = open;
        if opened {
            signals.push(DoorSignal::Opened);
        }
        if closed {
            signals.push(DoorSignal::Closed);
        }
        match self.state {
            State::Released => {}
            State::Secure => {
                if opened {
                    signals.push(DoorSignal::Forced);
                    self.state = State::Open {
                        since: now,
                        authorised: false,
                        held: None,
                        relay_until: None,
                    };
                }
            }
            State::Unlocked { until } => {
                if opened {
                    self.state = State::Open {
                        since: now,
                        authorised: true,
                        held: None,
                        relay_until: Some(until),
                    };
                } else if now >= until {
                    self.secure()?;
                    self.state = State::Secure;
                    signals.push(DoorSignal::Relocked);
                }
            }
            State::Open {
                since,
                authorised,
                held,
                relay_until,
            } => {
                if closed {
                    // Relock on close.
                    if relay_until.is_some() {
                        self.secure()?;
                        signals.push(DoorSignal::Relocked);
                    }
                    self.state = State::Secure;
                    return Ok(signals);
                }
                let mut relay_until = relay_until;
                if relay_until.is_some_and(|t| now >= t) {
                    self.secure()?;
                    signals.push(DoorSignal::Relocked);
                    relay_until = None;
                }
                let mut held = held;
                if authorised {
                    let open_for = now.ms_since(since);
                    let stage = if open_for >= u64::from(self.timings.held_alarm_ms) {
                        Some(HeldStage::Alarm)
                    } else if open_for >= u64::from(self.timings.held_prealarm_ms) {
                        Some(HeldStage::PreAlarm)
                    } else {
                        None
                    };
                    if stage.is_some() && stage != held {
                        // A long poll gap can jump straight past the pre-alarm.
                        if held.is_none() && stage == Some(HeldStage::Alarm) {
                            signals.push(DoorSignal::Held(HeldStage::PreAlarm));
                        }
                        if let Some(s) = stage {
                            signals.push(DoorSignal::Held(s));
                        }
                        held = stage;
                    }
                }
                self.state = State::Open {
                    since,
                    authorised,
                    held,
                    relay_until,
                };
            }
        }
        Ok(signals)
    }

    /// Whether the door is in a held-open or forced alarm right now.
    pub fn alarm(&self) -> Option<DoorSignal> {
        match self.state {
            State::Open {
                authorised: false, ..
            } => Some(DoorSignal::Forced),
            State::Open {
                held: Some(stage), ..
            } => Some(DoorSignal::Held(stage)),
            _ => None,
        }
    }

    /// De-energises the relay: a strike locks, a maglock opens — the state the
    /// door would be in without power. Used on shutdown.
    pub fn safe_state(&mut self) -> Result<(), Errors<R, C, X>> {
        self.set_relay(false)
    }

    /// Gives the pins back.
    pub fn into_pins(self) -> (R, C, Option<X>) {
        (self.relay, self.contact, self.rex)
    }
}
