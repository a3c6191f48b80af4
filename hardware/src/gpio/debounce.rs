//! Input debouncing with time as a parameter: contacts bounce, the door logic must not see it.

use std::time::Duration;

use embedded_hal::digital::InputPin;

/// Debounces one digital signal. Time is passed in (`now`, on any monotonic
/// origin), never read here, so the logic is testable to the microsecond.
///
/// A new level is accepted once the raw input has held it for `settle`
/// without interruption.
#[derive(Debug, Clone)]
pub struct Debouncer {
    settle: Duration,
    stable: bool,
    candidate: bool,
    since: Duration,
}

impl Debouncer {
    /// A debouncer that starts out at `initial`.
    pub fn new(initial: bool, settle: Duration) -> Self {
        Debouncer {
            settle,
            stable: initial,
            candidate: initial,
            since: Duration::ZERO,
        }
    }

    /// Feeds one raw sample taken at `now`; returns the new stable level when it changes.
    pub fn update(&mut self, raw: bool, now: Duration) -> Option<bool> {
        if raw != self.candidate {
            self.candidate = raw;
            self.since = now;
        }
        if self.candidate != self.stable && now.saturating_sub(self.since) >= self.settle {
            self.stable = self.candidate;
            return Some(self.stable);
        }
        None
    }

    /// The debounced level.
    pub fn level(&self) -> bool {
        self.stable
    }
}

/// An input pin with a debouncer: poll it with the time of the poll.
#[derive(Debug)]
pub struct DebouncedInput<P> {
    pin: P,
    debouncer: Debouncer,
}

impl<P: InputPin> DebouncedInput<P> {
    /// Wraps `pin`, taking its current level as the stable one.
    pub fn new(mut pin: P, settle: Duration) -> Result<Self, P::Error> {
        let initial = pin.is_high()?;
        Ok(DebouncedInput {
            pin,
            debouncer: Debouncer::new(initial, settle),
        })
    }

    /// Samples the pin at `now`; returns the new stable level when it changes.
    pub fn poll(&mut self, now: Duration) -> Result<Option<bool>, P::Error> {
        let raw = self.pin.is_high()?;
        Ok(self.debouncer.update(raw, now))
    }

    /// The debounced level.
    pub fn level(&self) -> bool {
        self.debouncer.level()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::digital::{Mock, State, Transaction};
    use proptest::prelude::*;

    const SETTLE: Duration = Duration::from_millis(20);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn bounces_are_ignored_and_a_held_level_is_accepted() {
        let mut d = Debouncer::new(false, SETTLE);
        assert_eq!(d.update(true, ms(0)), None);
        assert_eq!(d.update(false, ms(5)), None);
        assert_eq!(d.update(true, ms(8)), None);
        assert_eq!(d.update(true, ms(27)), None, "held 19 ms only");
        assert_eq!(d.update(true, ms(28)), Some(true));
        assert_eq!(d.update(true, ms(100)), None, "reported once");
        assert!(d.level());
        assert_eq!(d.update(false, ms(101)), None);
        assert_eq!(d.update(false, ms(121)), Some(false));
    }

    #[test]
    fn a_glitch_shorter_than_settle_never_shows() {
        let mut d = Debouncer::new(true, SETTLE);
        assert_eq!(d.update(false, ms(10)), None);
        assert_eq!(d.update(true, ms(29)), None);
        assert_eq!(d.update(true, ms(500)), None);
        assert!(d.level());
    }

    #[test]
    fn debounced_input_reads_the_pin() {
        let mut pin = Mock::new(&[
            Transaction::get(State::Low),
            Transaction::get(State::High),
            Transaction::get(State::High),
        ]);
        let mut input = DebouncedInput::new(pin.clone(), SETTLE).unwrap();
        assert_eq!(input.poll(ms(0)).unwrap(), None);
        assert_eq!(input.poll(ms(20)).unwrap(), Some(true));
        assert!(input.level());
        pin.done();
    }

    proptest! {
        /// Whatever the raw samples, a reported change is a level the raw
        /// input had held for at least `settle`.
        #[test]
        fn reported_levels_were_held(samples in proptest::collection::vec((any::<bool>(), 0u64..15), 1..200)) {
            let mut d = Debouncer::new(false, SETTLE);
            let mut now = Duration::ZERO;
            let mut held_since = Duration::ZERO;
            let mut last_raw = false;
            for (raw, step) in samples {
                now += ms(step);
                if raw != last_raw {
                    held_since = now;
                    last_raw = raw;
                }
                if let Some(level) = d.update(raw, now) {
                    prop_assert_eq!(level, raw);
                    prop_assert!(now - held_since >= SETTLE);
                }
            }
        }
    }
}
