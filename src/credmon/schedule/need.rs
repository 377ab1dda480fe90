//! A credential's need and deadline, from its `.use` and `.top` and the
//! renewal knobs: the input the scheduler orders by.

use super::At;
use crate::credmon::policy::UseState;
use std::time::Duration;

/// A credential's need and deadline (time since the Unix epoch) from its
/// `.use` (`None`: missing), its `.top`'s ctime, the time now and the knobs
/// `CREDMON_OAUTH_TOKEN_MINIMUM` / `_REFRESH` (seconds): the same rules as
/// [`crate::credmon::policy::should_renew`], turned into a time.
pub fn need(
    use_state: Option<UseState>,
    top_ctime_ns: i128,
    now: At,
    minimum: u64,
    refresh: u64,
) -> (Need, At) {
    let Some(u) = use_state else {
        return (Need::Missing, now);
    };
    let Some(exp) = u.exp.and_then(|e| u64::try_from(e).ok()) else {
        return (Need::Missing, now);
    };
    let exp = Duration::from_secs(exp);
    if exp <= now {
        return (Need::Missing, now);
    }
    if top_ctime_ns > u.ctime_ns {
        return (Need::Routine, now);
    }
    let written = u64::try_from(u.ctime_ns).map_or(Duration::ZERO, Duration::from_nanos);
    let by_age = written.saturating_add(Duration::from_secs(refresh));
    let by_exp = exp.saturating_sub(Duration::from_secs(minimum));
    (Need::Routine, by_age.min(by_exp))
}

/// How badly jobs need a credential's `.use`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Need {
    /// Jobs have no usable `.use` and the credential just arrived: the credd
    /// signalled us (SIGHUP) and its submitter is waiting for the `.use`
    /// right now. Set by the caller; [`need`] never returns it.
    Waiting,
    /// Jobs have no usable `.use` (missing, unreadable or expired): they are
    /// held or waiting right now.
    Missing,
    /// The `.use` is still good; it is renewed before its deadline.
    Routine,
}
