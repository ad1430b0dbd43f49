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

/// Wall-clock time in Unix milliseconds, the unit of every time column. Cheap to clone.
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

    /// A clock that stands at `at_ms` until its hand moves it: two runs of the same request
    /// read the same "now" and write the same rows (the rotation paths' differential test).
    pub fn frozen(at_ms: i64) -> (Self, ClockHand) {
        let (mut clock, hand) = Self::adjustable();
        hand.offset.store(at_ms, Ordering::Relaxed);
        clock.frozen = true;
        (clock, hand)
    }

    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
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

    /// Now, in whole Unix seconds (JWT `iat` and `exp`).
    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

impl ClockHand {
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.offset.fetch_add(ms(by), Ordering::Relaxed);
    }
}

/// A duration in milliseconds, saturating.
pub fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adjustable_clock_moves_when_its_hand_does_and_its_clones_follow() {
        let (clock, hand) = Clock::adjustable();
        let copy = clock.clone();
        let before = clock.now_ms();
        hand.advance(Duration::from_secs(3600));
        let after = copy.now_ms();
        assert!(after - before >= 3_600_000, "{before} -> {after}");
        assert!(
            (Clock::system().now_ms() - before).abs() < 60_000,
            "the system clock is not moved"
        );
    }

    #[test]
    fn a_frozen_clock_stands_still_until_moved() {
        let (clock, hand) = Clock::frozen(1_000);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(clock.now_ms(), 1_000);
        hand.advance(Duration::from_secs(1));
        assert_eq!(clock.clone().now_ms(), 2_000);
    }
}
