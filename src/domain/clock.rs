//! The one source of "now". The protocol's services (through their `Core`) and the admin CLI hold
//! a [`Clock`] and pass the time down; store functions take `now` as a parameter and never read
//! a clock themselves.
//!
//! A test moves time forward through the [`ClockHand`] of an [`Clock::adjustable`] clock
//! instead of sleeping: lifetimes, grace windows and retention are then checked in
//! milliseconds of wall time.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::value::UnixMs;

/// Wall-clock time, read as a [`UnixMs`]. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Added to the system's time; `None` for the plain system clock.
    offset: Option<Arc<AtomicI64>>,
    /// The offset is the time itself: the system's time is not read.
    frozen: bool,
}

/// Moves an adjustable [`Clock`] (and every clone of it) forward.
#[derive(Debug, Clone)]
pub struct ClockHand {
    offset: Arc<AtomicI64>,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// The system's clock plus an offset that the returned hand moves forward. Time still
    /// passes on its own, so anything that waits for a moment keeps working.
    pub fn adjustable() -> (Self, ClockHand) {
        let offset = Arc::new(AtomicI64::new(0));
        let hand = ClockHand {
            offset: offset.clone(),
        };
        (
            Self {
                offset: Some(offset),
                frozen: false,
            },
            hand,
        )
    }

    /// A clock that stands at `at` until its hand moves it: two runs of the same request
    /// read the same "now" and write the same rows (the rotation paths' differential test).
    pub fn frozen(at: UnixMs) -> (Self, ClockHand) {
        let (mut clock, hand) = Self::adjustable();
        hand.offset.store(at.millis(), Ordering::Relaxed);
        clock.frozen = true;
        (clock, hand)
    }

    /// Now.
    pub fn now(&self) -> UnixMs {
        UnixMs::from_millis(self.read_ms())
    }

    fn read_ms(&self) -> i64 {
        if let (true, Some(at)) = (self.frozen, &self.offset) {
            return at.load(Ordering::Relaxed);
        }
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let system = i64::try_from(system.as_millis()).unwrap_or(i64::MAX);
        match &self.offset {
            Some(offset) => system.saturating_add(offset.load(Ordering::Relaxed)),
            None => system,
        }
    }
}

impl ClockHand {
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset.fetch_add(by, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adjustable_clock_moves_when_its_hand_does_and_its_clones_follow() {
        let (clock, hand) = Clock::adjustable();
        let copy = clock.clone();
        let before = clock.now();
        hand.advance(Duration::from_secs(3600));
        let after = copy.now();
        assert!(
            after.since(before) >= Duration::from_secs(3600),
            "{before} -> {after}"
        );
        assert!(
            Clock::system().now().since(before) < Duration::from_secs(60),
            "the system clock is not moved"
        );
    }

    #[test]
    fn a_frozen_clock_stands_still_until_moved() {
        let (clock, hand) = Clock::frozen(UnixMs::from_millis(1_000));
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(clock.now().millis(), 1_000);
        hand.advance(Duration::from_secs(1));
        assert_eq!(clock.clone().now().millis(), 2_000);
    }
}
