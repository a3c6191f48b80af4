//! GPIO: pin polarity, input debouncing, the pin backends (virtual board, `rppal`) and the backend-neutral lines over them.
//!
//! Every backend hands out `embedded-hal` 1.0 pins, so door and gate logic is
//! written once against the traits and runs on a Pi, on the virtual board
//! and in unit tests alike.

pub mod debounce;
pub mod line;
pub mod polarity;
pub mod protocol;
#[cfg(feature = "rpi")]
pub mod rpi;
pub mod virtual_board;
pub mod virtual_pin;

pub use debounce::{DebouncedInput, Debouncer};
pub use line::{Gpio, GpioBackend, InputLine, OutputLine};
pub use polarity::{LogicalPin, Polarity};
pub use virtual_board::VirtualBoard;
pub use virtual_pin::{VirtualBoardClient, VirtualPin};

/// Highest BCM GPIO number on the 40-pin header.
pub const MAX_BCM: u8 = 27;

/// Errors of the GPIO backends.
#[derive(Debug, thiserror::Error)]
pub enum GpioError {
    /// The pin number is not a header GPIO.
    #[error("BCM pin {0} is not on the header (0–{MAX_BCM})")]
    NoSuchPin(u8),
    /// The virtual board could not be reached or went away.
    #[error("virtual board: {0}")]
    Board(#[from] std::io::Error),
    /// The virtual board did not answer in time.
    #[error("virtual board did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The virtual board refused a line.
    #[error("virtual board refused: {0}")]
    Refused(String),
    /// The Raspberry Pi GPIO was asked for, but this build has no `rpi` feature.
    #[error("this build has no Raspberry Pi GPIO: build with `--features rpi`, or use the virtual board")]
    NoRpiSupport,
    /// The Raspberry Pi GPIO driver failed.
    #[cfg(feature = "rpi")]
    #[error("rppal: {0}")]
    Rpi(#[from] rppal::gpio::Error),
}

impl embedded_hal::digital::Error for GpioError {
    fn kind(&self) -> embedded_hal::digital::ErrorKind {
        embedded_hal::digital::ErrorKind::Other
    }
}

/// Pull resistor of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pull {
    /// No internal pull (an external resistor or a driven signal).
    #[default]
    None,
    /// Internal pull-up: a contact to ground reads low when closed.
    Up,
    /// Internal pull-down.
    Down,
}

/// Checks that `pin` is a header GPIO.
pub fn check_pin(pin: u8) -> Result<u8, GpioError> {
    if pin <= MAX_BCM {
        Ok(pin)
    } else {
        Err(GpioError::NoSuchPin(pin))
    }
}
