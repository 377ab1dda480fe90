//! The daemon's clock, injected so that the coordinator and the workers can
//! be driven in virtual time by tests: `now` (time since the Unix epoch, the
//! scheduler's [`At`]) and `wait_until` (a condition-variable wait that ends
//! at a deadline, or at once in virtual time).

use super::pool::State;
use crate::credmon::schedule::At;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// The longest single wait: a clock step (NTP, suspend) never delays the daemon longer.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// A source of time for the daemon.
pub trait Clock: Send + Sync {
    /// The time now, since the Unix epoch.
    fn now(&self) -> At;

    /// Waits on `cv` (releasing `guard`) until notified or until `deadline`;
    /// returns the guard again.
    fn wait_until<'a>(
        &self,
        cv: &Condvar,
        guard: MutexGuard<'a, State>,
        deadline: At,
    ) -> MutexGuard<'a, State>;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> At {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
    }

    fn wait_until<'a>(
        &self,
        cv: &Condvar,
        guard: MutexGuard<'a, State>,
        deadline: At,
    ) -> MutexGuard<'a, State> {
        let wait = deadline
            .saturating_sub(self.now())
            .clamp(Duration::from_millis(1), MAX_WAIT);
        cv.wait_timeout(guard, wait)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0)
    }
}

/// Virtual time for tests: it moves only when told to, and a wait jumps to its deadline.
#[derive(Debug)]
pub struct VirtualClock {
    now: Mutex<At>,
}

impl VirtualClock {
    /// A clock that reads `start`.
    pub fn new(start: At) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now = now.saturating_add(d);
    }

    /// Sets the clock to `t` if that is later than now.
    pub fn advance_to(&self, t: At) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now = (*now).max(t);
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> At {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait_until<'a>(
        &self,
        _cv: &Condvar,
        guard: MutexGuard<'a, State>,
        deadline: At,
    ) -> MutexGuard<'a, State> {
        self.advance_to(deadline);
        guard
    }
}
