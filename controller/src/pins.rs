//! The controller's pins: one output/input type over every GPIO backend, with polarity, debouncing and status reporting.

use std::time::{Duration, Instant};

use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
use tobira_hardware::gpio::{Debouncer, Polarity, VirtualBoardClient, VirtualPin};

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

/// An opened GPIO backend that hands out pins.
#[derive(Debug)]
pub enum Gpio {
    /// The virtual board.
    Virtual(VirtualBoardClient),
    /// The Raspberry Pi's GPIO.
    #[cfg(feature = "rpi")]
    Rpi(rppal::gpio::Gpio),
}

impl Gpio {
    /// Opens the configured backend.
    pub fn open(config: &GpioConfig) -> Result<Self, PinError> {
        match config {
            GpioConfig::Virtual { socket, .. } => VirtualBoardClient::connect(socket)
                .map(Gpio::Virtual)
                .map_err(|e| PinError(format!("virtual GPIO board at {}: {e}", socket.display()))),
            #[cfg(feature = "rpi")]
            GpioConfig::Rpi { .. } => tobira_hardware::gpio::rpi::open()
                .map(Gpio::Rpi)
                .map_err(|e| PinError(format!("Raspberry Pi GPIO: {e}"))),
            #[cfg(not(feature = "rpi"))]
            GpioConfig::Rpi { .. } => Err(PinError(
                "this build has no Raspberry Pi GPIO: build with `--features rpi`, or use the virtual board".into(),
            )),
        }
    }

    /// Claims an output, de-energised.
    pub fn output(
        &self,
        name: &str,
        pin: ResolvedPin,
        board: &StatusBoard,
    ) -> Result<Output, PinError> {
        let raw = match self {
            Gpio::Virtual(client) => RawOutput::Virtual(
                client
                    .pin(pin.pin)
                    .map_err(|e| PinError(format!("{name}: {e}")))?,
            ),
            #[cfg(feature = "rpi")]
            Gpio::Rpi(gpio) => RawOutput::Rpi(
                tobira_hardware::gpio::rpi::output(
                    gpio,
                    pin.pin,
                    pin.polarity == Polarity::ActiveLow,
                )
                .map_err(|e| PinError(format!("{name}: {e}")))?,
            ),
        };
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
        let raw = match self {
            Gpio::Virtual(client) => RawInput::Virtual(
                client
                    .pin(pin.pin)
                    .map_err(|e| PinError(format!("{name}: {e}")))?,
            ),
            #[cfg(feature = "rpi")]
            Gpio::Rpi(gpio) => RawInput::Rpi(
                tobira_hardware::gpio::rpi::input(gpio, pin.pin, pin.pull)
                    .map_err(|e| PinError(format!("{name}: {e}")))?,
            ),
        };
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

#[derive(Debug)]
enum RawOutput {
    Virtual(VirtualPin),
    #[cfg(feature = "rpi")]
    Rpi(rppal::gpio::OutputPin),
}

#[derive(Debug)]
enum RawInput {
    Virtual(VirtualPin),
    #[cfg(feature = "rpi")]
    Rpi(rppal::gpio::InputPin),
}

/// A logical output: high = energised, whatever the wiring. Every write is
/// shown on the status board under the output's name.
#[derive(Debug)]
pub struct Output {
    raw: RawOutput,
    polarity: Polarity,
    name: String,
    board: StatusBoard,
}

impl Output {
    fn write(&mut self, energised: bool) -> Result<(), PinError> {
        let electrical = energised != (self.polarity == Polarity::ActiveLow);
        let result = match &mut self.raw {
            RawOutput::Virtual(p) => if electrical {
                p.set_high()
            } else {
                p.set_low()
            }
            .map_err(|e| e.to_string()),
            #[cfg(feature = "rpi")]
            RawOutput::Rpi(p) => {
                if electrical {
                    rppal::gpio::OutputPin::set_high(p);
                } else {
                    rppal::gpio::OutputPin::set_low(p);
                }
                Ok(())
            }
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
    raw: RawInput,
    polarity: Polarity,
    invert: bool,
    name: String,
    debounce: Option<Debouncer>,
    origin: Instant,
}

impl Input {
    fn sample(&mut self) -> Result<bool, PinError> {
        let electrical = match &mut self.raw {
            RawInput::Virtual(p) => p
                .is_high()
                .map_err(|e| PinError(format!("{}: {e}", self.name)))?,
            #[cfg(feature = "rpi")]
            RawInput::Rpi(p) => rppal::gpio::InputPin::is_high(p),
        };
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
