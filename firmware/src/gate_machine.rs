//! The flapper-gate state machine: one passage per grant in the granted direction,
//! close after the passage or a timeout, tailgating and forced-passage alarms.
//!
//! Pins are logical: an open output high = flaps open in that direction; the
//! passage sensor high = beam blocked (someone in the lane).

use alloc::vec::Vec;

use embedded_hal::digital::{InputPin, OutputPin};
use serde::{Deserialize, Serialize};

use crate::door::Side;
use crate::time::Timestamp;

/// Gate timings, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateTimings {
    /// Close if nobody enters the lane within this time after a grant.
    pub open_timeout_ms: u32,
    /// The flaps' closing time; someone entering the lane during it tailgates.
    pub closing_ms: u32,
}

impl Default for GateTimings {
    fn default() -> Self {
        Self {
            open_timeout_ms: 8_000,
            closing_ms: 1_500,
        }
    }
}

/// Something the gate did or saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateSignal {
    /// Flaps opened in a direction.
    Opened(Side),
    /// One person passed in a direction.
    Passage(Side),
    /// Flaps closed.
    Closed,
    /// Opened for a grant and nobody came.
    Unused,
    /// A second person went through on one grant.
    Tailgating,
    /// Someone went through the closed gate.
    ForcedPassage,
}

/// A pin failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GateError<I, O, S> {
    /// The entry-direction output failed.
    #[error("gate open-in output failed: {0:?}")]
    OpenIn(I),
    /// The exit-direction output failed.
    #[error("gate open-out output failed: {0:?}")]
    OpenOut(O),
    /// The passage sensor failed.
    #[error("gate passage sensor failed: {0:?}")]
    Sensor(S),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open {
        side: Side,
        until: Timestamp,
        allowed: u8,
        passed: u8,
        in_lane: bool,
    },
    Closing {
        until: Timestamp,
    },
    Released,
}

type Errors<I, O, S> = GateError<
    <I as embedded_hal::digital::ErrorType>::Error,
    <O as embedded_hal::digital::ErrorType>::Error,
    <S as embedded_hal::digital::ErrorType>::Error,
>;

/// A flapper gate with an output per direction and one passage sensor.
#[derive(Debug)]
pub struct GateMachine<I, O, S> {
    open_in: I,
    open_out: O,
    sensor: S,
    timings: GateTimings,
    state: State,
    was_blocked: bool,
}

impl<I: OutputPin, O: OutputPin, S: InputPin> GateMachine<I, O, S> {
    /// Takes the pins and closes the flaps.
    pub fn new(
        open_in: I,
        open_out: O,
        sensor: S,
        timings: GateTimings,
    ) -> Result<Self, Errors<I, O, S>> {
        let mut gate = Self {
            open_in,
            open_out,
            sensor,
            timings,
            state: State::Closed,
            was_blocked: false,
        };
        gate.drive(false, false)?;
        gate.was_blocked = gate.sensor.is_high().map_err(GateError::Sensor)?;
        Ok(gate)
    }

    fn drive(&mut self, inward: bool, outward: bool) -> Result<(), Errors<I, O, S>> {
        if inward {
            self.open_in.set_high().map_err(GateError::OpenIn)?;
        } else {
            self.open_in.set_low().map_err(GateError::OpenIn)?;
        }
        if outward {
            self.open_out.set_high().map_err(GateError::OpenOut)
        } else {
            self.open_out.set_low().map_err(GateError::OpenOut)
        }
    }

    fn open_towards(&mut self, side: Side) -> Result<(), Errors<I, O, S>> {
        self.drive(side == Side::Entry, side == Side::Exit)
    }

    /// Whether the flaps are open (for a grant or released).
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open { .. } | State::Released)
    }

    /// Whether the lane is open for a passage in the other direction than
    /// `side`, so a grant from `side` could not be carried out now.
    pub fn busy_against(&self, side: Side) -> bool {
        matches!(self.state, State::Open { side: open_side, .. } if open_side != side)
    }

    /// Opens for one passage in the granted direction. A second grant in the
    /// same direction before the first passage allows one more passage; a grant
    /// in the other direction while open is refused (`false`): the lane is busy.
    pub fn grant(
        &mut self,
        side: Side,
        now: Timestamp,
    ) -> Result<(bool, Vec<GateSignal>), Errors<I, O, S>> {
        let until = now.plus_ms(u64::from(self.timings.open_timeout_ms));
        match self.state {
            State::Released => Ok((true, Vec::new())),
            State::Open {
                side: open_side,
                allowed,
                passed,
                in_lane,
                ..
            } => {
                if open_side != side {
                    return Ok((false, Vec::new()));
                }
                self.state = State::Open {
                    side,
                    until,
                    allowed: allowed.saturating_add(1),
                    passed,
                    in_lane,
                };
                Ok((true, Vec::new()))
            }
            State::Closed | State::Closing { .. } => {
                self.open_towards(side)?;
                self.state = State::Open {
                    side,
                    until,
                    allowed: 1,
                    passed: 0,
                    in_lane: false,
                };
                Ok((true, alloc::vec![GateSignal::Opened(side)]))
            }
        }
    }

    /// Opens both ways and stops watching (fire release), or closes again.
    pub fn set_released(&mut self, released: bool) -> Result<Vec<GateSignal>, Errors<I, O, S>> {
        match (released, self.state) {
            (true, State::Released) => Ok(Vec::new()),
            (true, _) => {
                self.drive(true, true)?;
                self.state = State::Released;
                Ok(Vec::new())
            }
            (false, State::Released) => {
                self.drive(false, false)?;
                self.state = State::Closed;
                Ok(alloc::vec![GateSignal::Closed])
            }
            (false, _) => Ok(Vec::new()),
        }
    }

    /// Reads the sensor and advances timers. Call it often (every few ms).
    pub fn poll(&mut self, now: Timestamp) -> Result<Vec<GateSignal>, Errors<I, O, S>> {
        let mut signals = Vec::new();
        let blocked = self.sensor.is_high().map_err(GateError::Sensor)?;
        let entered = blocked && !self.was_blocked;
        let left = !blocked && self.was_blocked;
        self.was_blocked = blocked;
        match self.state {
            State::Released => {}
            State::Closed => {
                if entered {
                    signals.push(GateSignal::ForcedPassage);
                }
            }
            State::Closing { until } => {
                if entered {
                    signals.push(GateSignal::Tailgating);
                }
                if now >= until {
                    self.state = State::Closed;
                }
            }
            State::Open {
                side,
                until,
                allowed,
                passed,
                in_lane,
            } => {
                let in_lane = (in_lane || entered) && !left;
                let passed = if left {
                    passed.saturating_add(1)
                } else {
                    passed
                };
                if left {
                    signals.push(GateSignal::Passage(side));
                }
                if passed > allowed {
                    signals.push(GateSignal::Tailgating);
                }
                // Never close the flaps on someone in the lane.
                let done = passed >= allowed && !in_lane;
                let unused = passed == 0 && !in_lane && now >= until;
                if done || unused {
                    self.drive(false, false)?;
                    if unused {
                        signals.push(GateSignal::Unused);
                    }
                    signals.push(GateSignal::Closed);
                    self.state = State::Closing {
                        until: now.plus_ms(u64::from(self.timings.closing_ms)),
                    };
                } else {
                    self.state = State::Open {
                        side,
                        until,
                        allowed,
                        passed,
                        in_lane,
                    };
                }
            }
        }
        Ok(signals)
    }

    /// Closes the flaps (de-energised); used on shutdown.
    pub fn safe_state(&mut self) -> Result<(), Errors<I, O, S>> {
        self.drive(false, false)
    }

    /// Gives the pins back.
    pub fn into_pins(self) -> (I, O, S) {
        (self.open_in, self.open_out, self.sensor)
    }
}
