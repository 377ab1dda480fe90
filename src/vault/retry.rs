//! The retry decision: which failed requests may be sent again, and after how
//! long (backoff, or the server's bounded `Retry-After`).

use super::{MAX_RETRY_AFTER, VaultError};
use std::time::Duration;

/// Whether a request may be sent again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Retry {
    /// Idempotent: retry any transient failure.
    Always,
    /// Not idempotent (a login, a token creation): retry only when the
    /// request cannot have reached the server, or the server answered that
    /// it did not act (429, 5xx).
    UnlessSent,
}

/// One failed attempt, with what the retry decision needs.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) error: VaultError,
    /// The request may have reached the server.
    pub(super) sent: bool,
    /// The server's `Retry-After`, when it gave one.
    pub(super) retry_after: Option<Duration>,
}

impl Failure {
    pub(super) fn unsent(error: VaultError) -> Box<Self> {
        Box::new(Self {
            error,
            sent: false,
            retry_after: None,
        })
    }

    pub(super) fn sent(error: VaultError) -> Box<Self> {
        Box::new(Self {
            error,
            sent: true,
            retry_after: None,
        })
    }
}

/// How long to wait before retrying `f`, or `None` when it must not be
/// retried: permanent errors never; a non-idempotent request not after a
/// transport failure once it may have been sent; `Retry-After` (bounded by
/// [`MAX_RETRY_AFTER`]) instead of `backoff` when the server gave one.
pub(super) fn retry_delay(f: &Failure, retry: Retry, backoff: Duration) -> Option<Duration> {
    if !f.error.is_transient() {
        return None;
    }
    if retry == Retry::UnlessSent && f.sent && f.error.status().is_none() {
        return None;
    }
    Some(f.retry_after.map_or(backoff, |r| r.min(MAX_RETRY_AFTER)))
}

/// `Retry-After` as delay-seconds (HTTP dates are not used by Vault); `None`
/// when absent or malformed.
pub(super) fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    (!v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit()))
        .then(|| v.parse::<u64>().ok())
        .flatten()
        .map(Duration::from_secs)
}
