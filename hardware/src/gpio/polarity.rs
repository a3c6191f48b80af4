//! Pin polarity: active-low wiring is configuration, not code, so logic always speaks "asserted".

use embedded_hal::digital::{ErrorType, InputPin, OutputPin, StatefulOutputPin};

/// How a logical "on" maps to the electrical level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Polarity {
    /// On = high (3.3 V).
    #[default]
    ActiveHigh,
    /// On = low (0 V), as on most opto-isolated relay boards and pulled-up switches.
    ActiveLow,
}

/// A pin seen through its polarity: `set_high` means "energise / assert",
/// `is_high` means "asserted", whatever the wiring.
#[derive(Debug)]
pub struct LogicalPin<P> {
    pin: P,
    polarity: Polarity,
}

impl<P> LogicalPin<P> {
    /// Wraps an electrical pin.
    pub fn new(pin: P, polarity: Polarity) -> Self {
        LogicalPin { pin, polarity }
    }

    /// The electrical pin underneath.
    pub fn into_inner(self) -> P {
        self.pin
    }

    fn inverted(&self) -> bool {
        self.polarity == Polarity::ActiveLow
    }
}

impl<P: ErrorType> ErrorType for LogicalPin<P> {
    type Error = P::Error;
}

impl<P: OutputPin> OutputPin for LogicalPin<P> {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        if self.inverted() {
            self.pin.set_high()
        } else {
            self.pin.set_low()
        }
    }

    fn set_high(&mut self) -> Result<(), Self::Error> {
        if self.inverted() {
            self.pin.set_low()
        } else {
            self.pin.set_high()
        }
    }
}

impl<P: StatefulOutputPin> StatefulOutputPin for LogicalPin<P> {
    fn is_set_high(&mut self) -> Result<bool, Self::Error> {
        Ok(self.pin.is_set_high()? != self.inverted())
    }

    fn is_set_low(&mut self) -> Result<bool, Self::Error> {
        Ok(self.pin.is_set_high()? == self.inverted())
    }
}

impl<P: InputPin> InputPin for LogicalPin<P> {
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        Ok(self.pin.is_high()? != self.inverted())
    }

    fn is_low(&mut self) -> Result<bool, Self::Error> {
        Ok(self.pin.is_high()? == self.inverted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::digital::{Mock, State, Transaction};

    #[test]
    fn active_low_inverts_both_ways() {
        let mut pin = Mock::new(&[
            Transaction::set(State::Low),
            Transaction::set(State::High),
            Transaction::get(State::Low),
            Transaction::get_state(State::Low),
        ]);
        let mut p = LogicalPin::new(pin.clone(), Polarity::ActiveLow);
        p.set_high().unwrap();
        p.set_low().unwrap();
        assert!(p.is_high().unwrap(), "low on the wire is asserted");
        assert!(p.is_set_high().unwrap());
        pin.done();
    }

    #[test]
    fn active_high_passes_through() {
        let mut pin = Mock::new(&[Transaction::set(State::High), Transaction::get(State::High)]);
        let mut p = LogicalPin::new(pin.clone(), Polarity::ActiveHigh);
        p.set_high().unwrap();
        assert!(p.is_high().unwrap());
        pin.done();
    }
}
