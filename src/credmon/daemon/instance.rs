//! One credmon per credential directory: the single-instance lock taken at
//! start, and the `pid` file removed on a clean exit.

use crate::env::Clock;
use crate::files::SafeDir;
use std::path::Path;
use std::time::Duration;

/// The single-instance lock file in the credential directory (a dot file,
/// which the credd and the scans ignore).
pub const LOCK_FILE: &str = ".robot-credmon.lock";

/// Takes the credential directory's single-instance lock, held until the
/// returned file is dropped (the process exits). Another credmon holding it
/// is waited for up to `wait` (condor_restart may start the new credmon
/// while the old one is still draining); then this is an error naming it.
pub fn single_instance(
    cred_dir: &Path,
    wait: Duration,
    clock: &Clock,
) -> Result<std::fs::File, String> {
    use nix::fcntl::OFlag;
    use std::os::unix::fs::OpenOptionsExt;
    let path = cred_dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
        .open(&path)
        .map_err(|e| format!("cannot open the lock file '{}': {e}", path.display()))?;
    match file.metadata() {
        Ok(m) if m.file_type().is_file() => {}
        _ => {
            return Err(format!(
                "the lock file '{}' is not a regular file; remove it",
                path.display()
            ));
        }
    }
    let deadline = clock.mono().after(wait);
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                let other = std::fs::read_to_string(cred_dir.join("pid")).unwrap_or_default();
                let other = other.trim();
                if clock.mono() >= deadline {
                    return Err(format!(
                        "another credmon (pid {}) is already running on '{}'; stop it first",
                        if other.is_empty() { "unknown" } else { other },
                        cred_dir.display()
                    ));
                }
                if !told {
                    log::info!(
                        "waiting for the other credmon (pid {other}) on {} to exit",
                        cred_dir.display()
                    );
                    told = true;
                }
                clock.sleep(Duration::from_millis(100));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock '{}': {e}", path.display()));
            }
        }
    }
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
        std::fs::write(dir.path().join("pid"), "4242").unwrap();
        let held = single_instance(dir.path(), Duration::ZERO, &Clock::system()).unwrap();
        // Virtual time: the wait for the held lock ends at its bound at once.
        let clock = Clock::manual(std::time::SystemTime::UNIX_EPOCH);
        let e = single_instance(dir.path(), Duration::from_secs(30), &clock).unwrap_err();
        assert!(clock.mono().as_duration() >= Duration::from_secs(30));
        assert!(e.contains("another credmon (pid 4242)"), "{e}");
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
