//! Time as a dependency: handlers never read the system clock directly, so tests move time by
//! hand instead of sleeping.

use std::sync::Mutex;
use time::OffsetDateTime;

pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The wall clock, for production.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<OffsetDateTime>,
}

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Self {
        Self { now: Mutex::new(start) }
    }

    pub fn advance(&self, by: time::Duration) {
        let mut now = self.now.lock().expect("clock lock");
        *now += by;
    }

    pub fn set(&self, to: OffsetDateTime) {
        *self.now.lock().expect("clock lock") = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().expect("clock lock")
    }
}

/// A random whole number below `bound` (0 when `bound` is 0), for jittering pauses between
/// retries so that callers which collided do not retry in step; from the ULID generator's random
/// bits, seeded from the OS.
pub fn jitter_below(bound: u64) -> u64 {
    (ulid::Ulid::new().random() % u128::from(bound.max(1))) as u64
}

#[cfg(test)]
mod tests {
    use super::jitter_below;

    #[test]
    fn jitter_stays_below_its_bound_and_is_zero_for_no_room() {
        assert!((0..1_000).all(|_| jitter_below(0) == 0 && jitter_below(1) == 0));
        let draws: Vec<u64> = (0..1_000).map(|_| jitter_below(10)).collect();
        assert!(draws.iter().all(|d| *d < 10), "{draws:?}");
        // Spread, not a constant: a thousand draws below 10 cover most of the range.
        let distinct: std::collections::BTreeSet<_> = draws.into_iter().collect();
        assert!(distinct.len() >= 8, "{distinct:?}");
    }
}
