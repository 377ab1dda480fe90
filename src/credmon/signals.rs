//! The signals the credmon takes synchronously on its signal thread
//! (SIGHUP: look again; SIGTERM, SIGINT, SIGQUIT: stop). `main` blocks them
//! before anything else, so that one arriving during set-up waits for that
//! thread instead of killing the process with nothing logged.

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

/// SIGHUP, SIGTERM, SIGINT and SIGQUIT.
pub fn set() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGHUP,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGQUIT,
    ] {
        s.add(sig);
    }
    s
}

/// Blocks [`set`] in this thread (and the threads it starts later); returns
/// the mask before, for [`restore`]. `None` when the mask cannot be changed.
pub fn block() -> Option<SigSet> {
    let mut old = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set()), Some(&mut old)).ok()?;
    Some(old)
}

/// Puts back the mask [`block`] returned: a signal that arrived meanwhile
/// is then delivered with its default action.
pub fn restore(old: Option<SigSet>) {
    if let Some(old) = old {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_then_restore() {
        let before = SigSet::thread_get_mask().unwrap_or_else(|_| SigSet::empty());
        let old = block();
        let now = SigSet::thread_get_mask().unwrap_or_else(|_| SigSet::empty());
        assert!(now.contains(Signal::SIGHUP) && now.contains(Signal::SIGTERM));
        restore(old);
        let after = SigSet::thread_get_mask().unwrap_or_else(|_| SigSet::empty());
        assert_eq!(
            after.contains(Signal::SIGHUP),
            before.contains(Signal::SIGHUP)
        );
    }
}
