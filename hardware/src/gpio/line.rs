//! Backend-neutral pins: a GPIO backend opened from its address, handing out output and input lines that implement `embedded-hal`.
//!
//! Users (the controller) name a backend with [`GpioBackend`] and get
//! [`OutputLine`]s and [`InputLine`]s; which driver is behind them, the
//! virtual board or `rppal` on a Pi, is this module's business alone.

use std::path::PathBuf;

use embedded_hal::digital::{ErrorType, InputPin, OutputPin};

use super::{GpioError, Pull, VirtualBoardClient, VirtualPin};

/// Which GPIO to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpioBackend {
    /// The Raspberry Pi's own GPIO (needs the `rpi` feature).
    Rpi,
    /// The virtual GPIO board listening on this Unix socket.
    Virtual(PathBuf),
}

/// An opened GPIO backend that hands out lines.
#[derive(Debug)]
pub enum Gpio {
    /// The virtual board.
    Virtual(VirtualBoardClient),
    /// The Raspberry Pi's GPIO.
    #[cfg(feature = "rpi")]
    Rpi(rppal::gpio::Gpio),
}

impl Gpio {
    /// Opens `backend`. Without the `rpi` feature, [`GpioBackend::Rpi`] is
    /// refused with [`GpioError::NoRpiSupport`].
    pub fn open(backend: &GpioBackend) -> Result<Self, GpioError> {
        match backend {
            GpioBackend::Virtual(socket) => VirtualBoardClient::connect(socket).map(Gpio::Virtual),
            #[cfg(feature = "rpi")]
            GpioBackend::Rpi => super::rpi::open().map(Gpio::Rpi),
            #[cfg(not(feature = "rpi"))]
            GpioBackend::Rpi => Err(GpioError::NoRpiSupport),
        }
    }

    /// Claims BCM `pin` as an output at electrical level `high`.
    pub fn output(&self, pin: u8, high: bool) -> Result<OutputLine, GpioError> {
        match self {
            Gpio::Virtual(client) => {
                let mut line = OutputLine::Virtual(client.pin(pin)?);
                line.set_level(high)?;
                Ok(line)
            }
            #[cfg(feature = "rpi")]
            Gpio::Rpi(gpio) => super::rpi::output(gpio, pin, high).map(OutputLine::Rpi),
        }
    }

    /// Claims BCM `pin` as an input with `pull` (the virtual board has no
    /// pulls: its inputs are driven by the test harness).
    pub fn input(&self, pin: u8, pull: Pull) -> Result<InputLine, GpioError> {
        match self {
            Gpio::Virtual(client) => {
                let _ = pull;
                client.pin(pin).map(InputLine::Virtual)
            }
            #[cfg(feature = "rpi")]
            Gpio::Rpi(gpio) => super::rpi::input(gpio, pin, pull).map(InputLine::Rpi),
        }
    }
}

/// An output pin of any backend, at its electrical level (polarity is the
/// caller's: see [`super::LogicalPin`]).
#[derive(Debug)]
pub enum OutputLine {
    /// A pin of the virtual board.
    Virtual(VirtualPin),
    /// A Raspberry Pi pin.
    #[cfg(feature = "rpi")]
    Rpi(rppal::gpio::OutputPin),
}

impl OutputLine {
    fn set_level(&mut self, high: bool) -> Result<(), GpioError> {
        match self {
            OutputLine::Virtual(p) => {
                if high {
                    p.set_high()
                } else {
                    p.set_low()
                }
            }
            #[cfg(feature = "rpi")]
            OutputLine::Rpi(p) => {
                if high {
                    rppal::gpio::OutputPin::set_high(p);
                } else {
                    rppal::gpio::OutputPin::set_low(p);
                }
                Ok(())
            }
        }
    }
}

impl ErrorType for OutputLine {
    type Error = GpioError;
}

impl OutputPin for OutputLine {
    fn set_low(&mut self) -> Result<(), GpioError> {
        self.set_level(false)
    }
    fn set_high(&mut self) -> Result<(), GpioError> {
        self.set_level(true)
    }
}

/// An input pin of any backend, at its electrical level.
#[derive(Debug)]
pub enum InputLine {
    /// A pin of the virtual board.
    Virtual(VirtualPin),
    /// A Raspberry Pi pin.
    #[cfg(feature = "rpi")]
    Rpi(rppal::gpio::InputPin),
}

impl ErrorType for InputLine {
    type Error = GpioError;
}

impl InputPin for InputLine {
    fn is_high(&mut self) -> Result<bool, GpioError> {
        match self {
            InputLine::Virtual(p) => p.is_high(),
            #[cfg(feature = "rpi")]
            InputLine::Rpi(p) => Ok(rppal::gpio::InputPin::is_high(p)),
        }
    }
    fn is_low(&mut self) -> Result<bool, GpioError> {
        self.is_high().map(|h| !h)
    }
}
