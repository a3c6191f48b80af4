//! Raspberry Pi GPIO through `rppal`, whose pins implement the `embedded-hal` 1.0 traits.

use rppal::gpio::{Gpio, InputPin, OutputPin};

use super::{check_pin, GpioError, Pull};

/// Claims BCM `pin` as an output at electrical level `high`. When the pin
/// is dropped, rppal returns it to an input, which de-energises the relay
/// driver; locks are wired so that this is their safe state
/// (`docs/wiring.md`).
pub fn output(gpio: &Gpio, pin: u8, high: bool) -> Result<OutputPin, GpioError> {
    let p = gpio.get(check_pin(pin)?)?;
    Ok(if high {
        p.into_output_high()
    } else {
        p.into_output_low()
    })
}

/// Claims BCM `pin` as an input with the given pull.
pub fn input(gpio: &Gpio, pin: u8, pull: Pull) -> Result<InputPin, GpioError> {
    let p = gpio.get(check_pin(pin)?)?;
    Ok(match pull {
        Pull::None => p.into_input(),
        Pull::Up => p.into_input_pullup(),
        Pull::Down => p.into_input_pulldown(),
    })
}

/// Opens the GPIO peripheral (fails off a Pi).
pub fn open() -> Result<Gpio, GpioError> {
    Ok(Gpio::new()?)
}
