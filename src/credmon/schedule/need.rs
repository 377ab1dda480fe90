//! A credential's need and deadline, from its `.use` and `.top` and the
//! renewal knobs: the input the scheduler orders by.

use crate::credmon::policy::UseState;
use std::time::{Duration, SystemTime};

/// A credential's need and deadline (wall time) from its `.use` (`None`:
/// missing), its `.top`'s ctime, the wall time now and the knobs
/// `CREDMON_OAUTH_TOKEN_MINIMUM` / `_REFRESH` (seconds): the same rules as
/// [`crate::credmon::policy::should_renew`], turned into a time.
pub fn need(
    use_state: Option<UseState>,
    top_ctime: SystemTime,
    now: SystemTime,
    minimum: u64,
    refresh: u64,
) -> (Need, SystemTime) {
    let Some(u) = use_state else {
        return (Need::Missing, now);
    };
    let Some(exp) = u.exp.filter(|e| *e > now) else {
        return (Need::Missing, now);
    };
    if top_ctime > u.ctime {
        return (Need::Routine, now);
    }
    let by_age = u.ctime.checked_add(Duration::from_secs(refresh));
    let by_exp = exp.checked_sub(Duration::from_secs(minimum)).unwrap_or(now);
    let deadline = by_age.map_or(by_exp, |a| a.min(by_exp));
    (Need::Routine, deadline)
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
