//! One credmon per credential directory: the single-instance lock taken at
//! start, and the `pid` file removed on a clean exit.

use crate::env::Clock;
use crate::files::lock::Wait;
use crate::files::{FileError, LockFile, SafeDir};
use std::path::Path;
use std::time::Duration;

/// The single-instance lock file in the credential directory (a dot file,
/// which the credd and the scans ignore).
pub const LOCK_FILE: &str = ".robot-credmon.lock";

/// Takes the credential directory's single-instance lock (through
/// [`LockFile`]: never through a link, a regular file), held until the
/// returned lock is dropped (the process exits), with our pid in it. Another
/// credmon holding it is waited for up to `wait` (condor_restart may start
/// the new credmon while the old one is still draining); then this is an
/// error naming its pid.
pub fn single_instance(cred_dir: &Path, wait: Duration, clock: &Clock) -> Result<LockFile, String> {
    let dir = SafeDir::open(cred_dir).map_err(|e| e.to_string())?;
    let mut on_wait = |holder: Option<u32>| {
        log::info!(
            "waiting for the other credmon (pid {}) on {} to exit",
            pid_text(holder),
            cred_dir.display()
        );
    };
    let waiting = Wait {
        timeout: wait,
        clock,
        on_wait: &mut on_wait,
    };
    let mut lock = match LockFile::acquire_file(&dir, LOCK_FILE, None, waiting) {
        Ok(lock) => lock,
        Err(FileError::LockTimeout { holder, .. }) => {
            return Err(format!(
                "another credmon (pid {}) is already running on '{}'; stop it first",
                pid_text(holder),
                cred_dir.display()
            ));
        }
        Err(e) => return Err(e.to_string()),
    };
    if let Err(e) = lock.record_holder(std::process::id()) {
        log::warn!(
            "cannot write our pid into {}: {e}",
            cred_dir.join(LOCK_FILE).display()
        );
    }
    Ok(lock)
}

fn pid_text(pid: Option<u32>) -> String {
    pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string())
}

/// Removes the credential directory's `pid` file when it names this process
/// (clean exit), so that the credd signals no stale pid.
pub fn remove_pid_file(cred_dir: &Path) {
    let Ok(dir) = SafeDir::open(cred_dir) else {
        return;
    };
    let ours = std::process::id().to_string();
    if let Ok(Some((text, _))) = dir.read("pid", 64, true)
        && String::from_utf8_lossy(&text).trim() == ours
        && let Err(e) = dir.remove("pid")
    {
        log::warn!("{e}");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn one_instance_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        // A stale pid file of the credd's does not name the holder; the lock does.
        std::fs::write(dir.path().join("pid"), "4242").unwrap();
        let held = single_instance(dir.path(), Duration::ZERO, &Clock::system()).unwrap();
        // Virtual time: the wait for the held lock ends at its bound at once.
        let clock = Clock::manual(std::time::SystemTime::UNIX_EPOCH);
        let e = single_instance(dir.path(), Duration::from_secs(30), &clock).unwrap_err();
        assert!(clock.mono().as_duration() >= Duration::from_secs(30));
        let me = std::process::id();
        assert!(e.contains(&format!("another credmon (pid {me})")), "{e}");
        drop(held);
        let again = single_instance(dir.path(), Duration::ZERO, &Clock::system()).unwrap();
        drop(again);
        // Never through a link.
        let other = tempfile::tempdir().unwrap();
        std::fs::remove_file(dir.path().join(LOCK_FILE)).unwrap();
        std::os::unix::fs::symlink(other.path().join("x"), dir.path().join(LOCK_FILE)).unwrap();
        assert!(single_instance(dir.path(), Duration::ZERO, &Clock::system()).is_err());
        assert!(!other.path().join("x").exists());
    }

    #[test]
    fn the_pid_file_is_removed_only_when_it_is_ours() {
        let dir = tempfile::tempdir().unwrap();
        let pid = dir.path().join("pid");
        std::fs::write(&pid, "1").unwrap();
        remove_pid_file(dir.path());
        assert!(pid.exists());
        std::fs::write(&pid, std::process::id().to_string()).unwrap();
        remove_pid_file(dir.path());
        assert!(!pid.exists());
    }
}
