//! Exponential backoff with full jitter, bounded in time: a named, tested type
//! shared by the one-shot client and the credmon.

use std::time::Duration;

/// Delays for successive retries: `base * 2^n`, capped, with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry (before jitter).
    pub base: Duration,
    /// Largest delay (before jitter).
    pub cap: Duration,
}

impl Backoff {
    /// The upper bound of the delay before retry number `attempt` (0-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(30)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A jittered delay in `[ceiling/2, ceiling]` for retry number `attempt`.
    ///
    /// Half-jitter keeps retries spread out without ever retrying at once.
    pub fn delay(&self, attempt: u32, unit_random: f64) -> Duration {
        let c = self.ceiling(attempt);
        c.mul_f64(0.5 + 0.5 * unit_random.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_and_cap() {
        let b = Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(8),
        };
        let want = [500, 1000, 2000, 4000, 8000, 8000, 8000];
        for (n, ms) in want.iter().enumerate() {
            assert_eq!(
                b.ceiling(n as u32),
                Duration::from_millis(*ms),
                "attempt {n}"
            );
        }
        assert_eq!(b.ceiling(1000), Duration::from_secs(8));
    }

    #[test]
    fn jitter_stays_in_range() {
        let b = Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
        };
        assert_eq!(b.delay(2, 0.0), Duration::from_secs(2));
        assert_eq!(b.delay(2, 1.0), Duration::from_secs(4));
        assert_eq!(b.delay(2, 7.0), Duration::from_secs(4));
    }
}
