//! Bounded waits for events another process causes (a file appears, a
//! counter moves, a log line is written): the one place tests poll.

use std::time::{Duration, Instant};

/// How long to pause between two looks.
const LOOK_EVERY: Duration = Duration::from_millis(5);

/// Looks at `cond` until it holds (true) or `bound` has passed (false).
pub fn until(bound: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if t0.elapsed() >= bound {
            return false;
        }
        // A pause between looks at another process's progress, not synchronisation.
        std::thread::sleep(LOOK_EVERY);
    }
}
