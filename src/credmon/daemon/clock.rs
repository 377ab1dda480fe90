//! The daemon's view of the injected [`Clock`]: the scheduler's [`At`]
//! (wall time since the Unix epoch) and condition-variable waits that end
//! at an `At` deadline.

use crate::credmon::schedule::At;
use crate::env::Clock;
use std::sync::{Condvar, MutexGuard};
use std::time::SystemTime;

/// The time now as the scheduler counts it.
pub fn now(clock: &Clock) -> At {
    clock
        .now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Waits on `cv` (releasing `guard`) until notified or until `deadline`.
pub fn wait_until<'a, T>(
    clock: &Clock,
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    deadline: At,
) -> MutexGuard<'a, T> {
    let left = deadline.saturating_sub(now(clock));
    let until = clock.mono().after(left);
    clock.wait_until(cv, guard, until)
}
