//! The controller's pins: one output/input type over every GPIO backend, with polarity, debouncing and status reporting.

use std::time::{Duration, Instant};

use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
use tobira_hardware::gpio::{Debouncer, GpioBackend, GpioError, InputLine, OutputLine, Polarity};

use crate::config::{GpioConfig, ResolvedPin};
use crate::status::StatusBoard;

/// A pin operation failed; the message says which pin and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PinError(pub String);

impl embedded_hal::digital::Error for PinError {
    fn kind(&self) -> embedded_hal::digital::ErrorKind {
        embedded_hal::digital::ErrorKind::Other
    }
}

/// An opened GPIO backend that hands out the controller's pins.
#[derive(Debug)]
pub struct Gpio(tobira_hardware::gpio::Gpio);

impl Gpio {
    /// Opens the configured backend.
    pub fn open(config: &GpioConfig) -> Result<Self, PinError> {
        let (backend, what) = match config {
            GpioConfig::Virtual { socket, .. } => (
                GpioBackend::Virtual(socket.clone()),
                format!("virtual GPIO board at {}", socket.display()),
            ),
            GpioConfig::Rpi { .. } => (GpioBackend::Rpi, "Raspberry Pi GPIO".to_owned()),
        };
        tobira_hardware::gpio::Gpio::open(&backend)
            .map(Gpio)
            .map_err(|e| match e {
                GpioError::NoRpiSupport => PinError(e.to_string()),
                e => PinError(format!("{what}: {e}")),
            })
    }

    /// Claims an output, de-energised.
    pub fn output(
        &self,
        name: &str,
        pin: ResolvedPin,
        board: &StatusBoard,
    ) -> Result<Output, PinError> {
        // Claimed at its de-energised level, so a relay never blips on at start.
        let raw = self
            .0
            .output(pin.pin, pin.polarity == Polarity::ActiveLow)
            .map_err(|e| PinError(format!("{name}: {e}")))?;
        let mut output = Output {
            raw,
            polarity: pin.polarity,
            name: name.to_owned(),
            board: board.clone(),
        };
        output.write(false)?;
        Ok(output)
    }

    /// Claims an input.
    pub fn input(&self, name: &str, pin: ResolvedPin, invert: bool) -> Result<Input, PinError> {
        let raw = self
            .0
            .input(pin.pin, pin.pull)
            .map_err(|e| PinError(format!("{name}: {e}")))?;
        let mut input = Input {
            raw,
            polarity: pin.polarity,
            invert,
            name: name.to_owned(),
            debounce: None,
            origin: Instant::now(),
        };
        if pin.debounce_ms > 0 {
            let level = input.sample()?;
            input.debounce = Some(Debouncer::new(
                level,
                Duration::from_millis(u64::from(pin.debounce_ms)),
            ));
        }
        Ok(input)
    }
}

/// A logical output: high = energised, whatever the wiring. Every write is
/// shown on the status board under the output's name.
#[derive(Debug)]
pub struct Output {
    raw: OutputLine,
    polarity: Polarity,
    name: String,
    board: StatusBoard,
}

impl Output {
    fn write(&mut self, energised: bool) -> Result<(), PinError> {
        let electrical = energised != (self.polarity == Polarity::ActiveLow);
        let result = if electrical {
            self.raw.set_high()
        } else {
            self.raw.set_low()
        };
        result.map_err(|e| PinError(format!("{}: {e}", self.name)))?;
        let name = &self.name;
        self.board
            .update(|s| s.outputs.insert(name.clone(), energised));
        Ok(())
    }
}

impl ErrorType for Output {
    type Error = PinError;
}

impl OutputPin for Output {
    fn set_low(&mut self) -> Result<(), PinError> {
        self.write(false)
    }
    fn set_high(&mut self) -> Result<(), PinError> {
        self.write(true)
    }
}

/// A logical input: high = asserted (or, with `invert`, not asserted — the
/// door contact is wired "asserted while shut" but the door brain asks "open?").
#[derive(Debug)]
pub struct Input {
    raw: InputLine,
    polarity: Polarity,
    invert: bool,
    name: String,
    debounce: Option<Debouncer>,
    origin: Instant,
}

impl Input {
    fn sample(&mut self) -> Result<bool, PinError> {
        let electrical = self
            .raw
            .is_high()
            .map_err(|e| PinError(format!("{}: {e}", self.name)))?;
        Ok((electrical != (self.polarity == Polarity::ActiveLow)) != self.invert)
    }
}

impl ErrorType for Input {
    type Error = PinError;
}

impl InputPin for Input {
    fn is_high(&mut self) -> Result<bool, PinError> {
        let level = self.sample()?;
        match self.debounce.as_mut() {
            // The outermost layer may read the clock; the debouncer itself takes time as a parameter.
            Some(d) => {
                d.update(level, self.origin.elapsed());
                Ok(d.level())
            }
            None => Ok(level),
        }
    }
    fn is_low(&mut self) -> Result<bool, PinError> {
        self.is_high().map(|h| !h)
    }
}
