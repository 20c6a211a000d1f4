//! Where the runtime gets the time from. The evaluator never reads a clock: the
//! runtime reads one and passes `now` in, so a virtual clock makes a whole run —
//! events, waits, timeouts — deterministic (`sluice flow test`).

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

/// A source of the current time, Unix milliseconds.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time, Unix milliseconds.
    fn now(&self) -> i64;
}

/// The machine's wall clock (`sluice dev`, production).
#[derive(Debug, Clone, Copy, Default)]
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that only moves when told to (scenario tests). Clones share the time.
#[derive(Debug, Clone, Default)]
pub struct VirtualClock {
    now: Arc<AtomicI64>,
}

impl VirtualClock {
    /// A clock showing `now` (Unix milliseconds).
    pub fn new(now: i64) -> Self {
        VirtualClock {
            now: Arc::new(AtomicI64::new(now)),
        }
    }

    /// Moves the clock to `to`; a virtual clock never goes backwards, so an earlier
    /// time leaves it where it is.
    pub fn set(&self, to: i64) {
        self.now.fetch_max(to, Ordering::SeqCst);
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_clock_moves_only_forwards() {
        let clock = VirtualClock::new(1_000);
        let shared = clock.clone();
        clock.set(5_000);
        clock.set(2_000);
        assert_eq!(shared.now(), 5_000);
        assert!(WallClock.now() > 1_700_000_000_000);
    }
}
