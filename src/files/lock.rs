//! Advisory lock files beside the files they protect, so concurrent runs
//! (cron, a person, a pipeline) refresh a token once rather than N times.

use super::{FileError, SafeDir};
use crate::env::Clock;
use std::fs::{File, TryLockError};
use std::time::Duration;

/// A held exclusive lock; released when dropped.
#[derive(Debug)]
pub struct LockFile {
    _file: File,
}

impl LockFile {
    /// Takes the exclusive lock on `.<name>.lock` in `dir`, waiting at most
    /// `timeout` on `clock`.
    ///
    /// The lock file is created without following links and must belong to
    /// `owner` when given.
    pub fn acquire(
        dir: &SafeDir,
        name: &str,
        owner: Option<u32>,
        timeout: Duration,
        clock: &Clock,
    ) -> Result<Self, FileError> {
        let lock_name = format!(".{name}.lock");
        let path = dir.join(&lock_name)?;
        let (file, st) = dir.open_lock(&lock_name)?;
        if let Some(expected) = owner
            && let Err(why) = super::trust::check(&st, expected)
        {
            return Err(dir.distrust(&lock_name, why));
        }
        let start = clock.mono();
        let mut pause = Duration::from_millis(2);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { _file: file }),
                Err(TryLockError::WouldBlock) if clock.mono().since(start) < timeout => {
                    clock.sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(FileError::LockTimeout {
                        path,
                        secs: timeout.as_secs(),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(FileError::io("cannot lock", path, e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn second_lock_times_out_then_succeeds_after_release() {
        let t = tempfile::tempdir().unwrap();
        let d = SafeDir::open(t.path()).unwrap();
        // Virtual time: the wait for the held lock ends at its bound at once.
        let clock = Clock::manual(std::time::SystemTime::UNIX_EPOCH);
        let first = LockFile::acquire(&d, "tok", None, Duration::from_secs(1), &clock).unwrap();
        let err = LockFile::acquire(&d, "tok", None, Duration::from_secs(30), &clock).unwrap_err();
        assert!(matches!(err, FileError::LockTimeout { secs: 30, .. }));
        assert!(clock.mono().as_duration() >= Duration::from_secs(30));
        drop(first);
        LockFile::acquire(&d, "tok", None, Duration::from_millis(30), &clock).unwrap();
    }
}
