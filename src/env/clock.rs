//! Time, injected: the wall clock, a monotonic clock, and waiting (sleeps
//! and condition-variable waits with a deadline). [`Clock::system`] reads the
//! machine's clocks; [`Clock::manual`] is virtual time that moves only when
//! told to (or when something waits on it), with wall-clock steps that leave
//! monotonic time alone, as NTP does to a real host.
//!
//! Wall time is [`SystemTime`] (token expiries, file times, log lines);
//! monotonic time is [`Mono`] (deadlines, backoffs, timeouts). Code outside
//! this module never reads the machine's clocks or sleeps by itself
//! (`clippy.toml` forbids it).

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// A point in monotonic time: the time since the clock's origin, in
/// nanoseconds (eight bytes: the scheduler keeps two per credential; the
/// range is 584 years, and arithmetic saturates at its end). It never goes
/// back, whatever happens to the wall clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mono(u64);

impl std::ops::Add<Duration> for Mono {
    type Output = Mono;

    /// The instant `d` later (saturating).
    fn add(self, d: Duration) -> Mono {
        self.after(d)
    }
}

/// A duration in whole nanoseconds, saturating at [`u64::MAX`].
const fn nanos(d: Duration) -> u64 {
    let n = d.as_nanos();
    if n > u64::MAX as u128 {
        u64::MAX
    } else {
        n as u64
    }
}

impl Mono {
    /// The clock's origin.
    pub const ZERO: Mono = Mono(0);

    /// The instant `d` after the origin (saturating).
    pub const fn from_duration(d: Duration) -> Self {
        Mono(nanos(d))
    }

    /// Time since the origin.
    pub const fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// The instant `d` after this one (saturating).
    pub fn after(self, d: Duration) -> Mono {
        Mono(self.0.saturating_add(nanos(d)))
    }

    /// Time from `earlier` to `self` (zero when `earlier` is later).
    pub fn since(self, earlier: Mono) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// The monotonic instant of wall time `wall`, given that the wall clock
    /// reads `now_wall` at monotonic `now` (a wall time in the past is `now`).
    pub fn of_wall(wall: SystemTime, now_wall: SystemTime, now: Mono) -> Mono {
        now.after(wall.duration_since(now_wall).unwrap_or_default())
    }
}

/// The source of time of an environment. Cheap to clone; clones share the source.
#[derive(Clone)]
pub struct Clock(Arc<Source>);

enum Source {
    System { origin: Instant },
    Manual(Mutex<Manual>),
}

/// Virtual time: monotonic time, and the wall clock's offset from it.
#[derive(Debug, Clone, Copy)]
struct Manual {
    mono: Duration,
    wall_at_origin: SystemTime,
    /// Wall-clock steps so far, in nanoseconds (positive: forward).
    step_ns: i128,
}

impl Manual {
    fn wall(&self) -> SystemTime {
        let base = self.wall_at_origin + self.mono;
        let step =
            Duration::from_nanos(u64::try_from(self.step_ns.unsigned_abs()).unwrap_or(u64::MAX));
        if self.step_ns >= 0 {
            base.checked_add(step).unwrap_or(base)
        } else {
            base.checked_sub(step).unwrap_or(SystemTime::UNIX_EPOCH)
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.0 {
            Source::System { .. } => f.write_str("Clock::system"),
            Source::Manual(m) => write!(f, "Clock::manual({:?})", *lock(m)),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The longest single real wait: a suspended machine or a stepped clock
/// never delays a waiter by more than this before it looks again.
pub const MAX_REAL_WAIT: Duration = Duration::from_secs(60);

impl Clock {
    /// The machine's clocks.
    pub fn system() -> Self {
        #[allow(clippy::disallowed_methods)] // the seam itself: the one real monotonic origin
        let origin = Instant::now();
        Clock(Arc::new(Source::System { origin }))
    }

    /// Virtual time starting at wall time `wall` (monotonic zero); it moves
    /// only through [`Clock::advance`], [`Clock::advance_to`] or a wait.
    pub fn manual(wall: SystemTime) -> Self {
        Clock(Arc::new(Source::Manual(Mutex::new(Manual {
            mono: Duration::ZERO,
            wall_at_origin: wall,
            step_ns: 0,
        }))))
    }

    /// Whether this is virtual time.
    pub fn is_manual(&self) -> bool {
        matches!(&*self.0, Source::Manual(_))
    }

    /// The wall clock.
    pub fn now(&self) -> SystemTime {
        match &*self.0 {
            #[allow(clippy::disallowed_methods)] // the seam itself
            Source::System { .. } => SystemTime::now(),
            Source::Manual(m) => lock(m).wall(),
        }
    }

    /// The monotonic clock.
    pub fn mono(&self) -> Mono {
        match &*self.0 {
            #[allow(clippy::disallowed_methods)] // the seam itself
            Source::System { origin } => Mono::from_duration(origin.elapsed()),
            Source::Manual(m) => Mono::from_duration(lock(m).mono),
        }
    }

    /// Sleeps for `d` (virtual time: moves the clock on by `d` at once).
    pub fn sleep(&self, d: Duration) {
        match &*self.0 {
            #[allow(clippy::disallowed_methods)] // the seam itself
            Source::System { .. } => std::thread::sleep(d),
            Source::Manual(_) => self.advance(d),
        }
    }

    /// Waits on `cv` (releasing `guard`) until notified or until monotonic
    /// `deadline`, and returns the guard. A real wait is at most
    /// [`MAX_REAL_WAIT`]; callers look at their state again and wait anew.
    /// In virtual time the clock jumps to `deadline` and the wait ends at once.
    pub fn wait_until<'a, T>(
        &self,
        cv: &Condvar,
        guard: MutexGuard<'a, T>,
        deadline: Mono,
    ) -> MutexGuard<'a, T> {
        match &*self.0 {
            Source::System { .. } => {
                let wait = deadline
                    .since(self.mono())
                    .clamp(Duration::from_millis(1), MAX_REAL_WAIT);
                cv.wait_timeout(guard, wait)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0)
            }
            Source::Manual(_) => {
                self.advance_to(deadline);
                guard
            }
        }
    }

    /// Moves virtual time on by `d` (no effect on the system clock).
    pub fn advance(&self, d: Duration) {
        if let Source::Manual(m) = &*self.0 {
            let mut m = lock(m);
            m.mono = m.mono.saturating_add(d);
        }
    }

    /// Moves virtual time on to `t` if that is later than now.
    pub fn advance_to(&self, t: Mono) {
        if let Source::Manual(m) = &*self.0 {
            let mut m = lock(m);
            m.mono = m.mono.max(t.as_duration());
        }
    }

    /// Steps the virtual wall clock by `ns` nanoseconds (negative: back),
    /// leaving monotonic time alone.
    pub fn step_wall(&self, ns: i128) {
        if let Source::Manual(m) = &*self.0 {
            let mut m = lock(m);
            m.step_ns = m.step_ns.saturating_add(ns);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn manual_time_moves_only_when_told() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let c = Clock::manual(start);
        assert_eq!(c.now(), start);
        assert_eq!(c.mono(), Mono::ZERO);
        c.advance(Duration::from_secs(5));
        assert_eq!(c.now(), start + Duration::from_secs(5));
        c.sleep(Duration::from_secs(1));
        assert_eq!(c.mono(), Mono::from_duration(Duration::from_secs(6)));
        c.advance_to(Mono::from_duration(Duration::from_secs(3)));
        assert_eq!(c.mono().as_duration(), Duration::from_secs(6));
    }

    #[test]
    fn wall_steps_leave_monotonic_time_alone() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let c = Clock::manual(start);
        c.step_wall(-3_600_000_000_000);
        assert_eq!(c.now(), start - Duration::from_secs(3600));
        assert_eq!(c.mono(), Mono::ZERO);
        c.step_wall(7_200_000_000_000);
        assert_eq!(c.now(), start + Duration::from_secs(3600));
    }

    #[test]
    fn a_virtual_wait_jumps_to_its_deadline() {
        let c = Clock::manual(SystemTime::UNIX_EPOCH);
        let (m, cv) = (Mutex::new(0), Condvar::new());
        let g = c.wait_until(
            &cv,
            m.lock().unwrap(),
            Mono::from_duration(Duration::from_secs(9)),
        );
        drop(g);
        assert_eq!(c.mono().as_duration(), Duration::from_secs(9));
    }

    #[test]
    fn a_real_wait_ends_at_its_deadline() {
        let c = Clock::system();
        let (m, cv) = (Mutex::new(0), Condvar::new());
        let t0 = c.mono();
        drop(c.wait_until(&cv, m.lock().unwrap(), t0.after(Duration::from_millis(20))));
        assert!(c.mono().since(t0) >= Duration::from_millis(19));
    }

    #[test]
    fn wall_to_monotonic() {
        let now_wall = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let now = Mono::from_duration(Duration::from_secs(7));
        let later = now_wall + Duration::from_secs(30);
        assert_eq!(
            Mono::of_wall(later, now_wall, now).as_duration(),
            Duration::from_secs(37)
        );
        let earlier = now_wall - Duration::from_secs(30);
        assert_eq!(Mono::of_wall(earlier, now_wall, now), now);
    }
}
