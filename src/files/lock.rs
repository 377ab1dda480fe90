//! Advisory lock files: beside the files they protect, so concurrent runs
//! (cron, a person, a pipeline) refresh a token once rather than N times;
//! and the credmon's single-instance lock, which names its holder.

use super::{FileError, SafeDir};
use crate::env::Clock;
use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::time::Duration;

/// A held exclusive lock; released when dropped. (On the simulation's file
/// system, which one thread drives, there is no file to lock.)
#[derive(Debug)]
pub struct LockFile {
    file: Option<File>,
}

/// How long to wait for a held lock, and what to do meanwhile.
pub struct Wait<'a> {
    /// The longest wait.
    pub timeout: Duration,
    /// The clock the wait is on.
    pub clock: &'a Clock,
    /// Called once, with the holder's pid when known, when the lock is held.
    pub on_wait: &'a mut dyn FnMut(Option<u32>),
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
        let wait = Wait {
            timeout,
            clock,
            on_wait: &mut |_| {},
        };
        Self::acquire_file(dir, &format!(".{name}.lock"), owner, wait)
    }

    /// Takes the exclusive lock on the file `lock_name` in `dir` (created
    /// without following links, `owner`'s when given), waiting as `wait` says.
    pub fn acquire_file(
        dir: &SafeDir,
        lock_name: &str,
        owner: Option<u32>,
        wait: Wait<'_>,
    ) -> Result<Self, FileError> {
        let path = dir.join(lock_name)?;
        let (file, st) = dir.open_lock(lock_name)?;
        if let Some(expected) = owner
            && let Err(why) = super::trust::check(&st, expected)
        {
            return Err(dir.distrust(lock_name, why));
        }
        let Some(file) = file else {
            return Ok(Self { file: None });
        };
        let start = wait.clock.mono();
        let mut pause = Duration::from_millis(2);
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { file: Some(file) }),
                Err(TryLockError::WouldBlock) if wait.clock.mono().since(start) < wait.timeout => {
                    if !told {
                        (wait.on_wait)(holder(&file));
                        told = true;
                    }
                    wait.clock.sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(FileError::LockTimeout {
                        path,
                        secs: wait.timeout.as_secs(),
                        holder: holder(&file),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(FileError::io("cannot lock", path, e)),
            }
        }
    }

    /// Writes `pid` into the held lock file, so that a process waiting for
    /// it can name the holder.
    pub fn record_holder(&mut self, pid: u32) -> std::io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        file.set_len(0)?;
        file.rewind()?;
        file.write_all(format!("{pid}\n").as_bytes())
    }
}

/// The pid a holder wrote into the lock file, if any.
fn holder(mut file: &File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
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
        assert!(matches!(
            err,
            FileError::LockTimeout {
                secs: 30,
                holder: None,
                ..
            }
        ));
        assert!(clock.mono().as_duration() >= Duration::from_secs(30));
        drop(first);
        LockFile::acquire(&d, "tok", None, Duration::from_millis(30), &clock).unwrap();
    }

    /// A holder that records its pid is named to whoever waits, once.
    #[test]
    fn a_waiter_learns_the_holders_pid() {
        let t = tempfile::tempdir().unwrap();
        let d = SafeDir::open(t.path()).unwrap();
        let clock = Clock::manual(std::time::SystemTime::UNIX_EPOCH);
        let timeout = Duration::from_secs(5);
        let mut none = |_| {};
        let wait = Wait {
            timeout,
            clock: &clock,
            on_wait: &mut none,
        };
        let mut held = LockFile::acquire_file(&d, "lk", None, wait).unwrap();
        held.record_holder(4242).unwrap();
        let mut told = Vec::new();
        let mut tell = |p| told.push(p);
        let wait = Wait {
            timeout,
            clock: &clock,
            on_wait: &mut tell,
        };
        let err = LockFile::acquire_file(&d, "lk", None, wait).unwrap_err();
        assert_eq!(told, [Some(4242)]);
        assert!(
            matches!(
                err,
                FileError::LockTimeout {
                    holder: Some(4242),
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("pid 4242"), "{err}");
        drop(held);
        let wait = Wait {
            timeout,
            clock: &clock,
            on_wait: &mut none,
        };
        LockFile::acquire_file(&d, "lk", None, wait).unwrap();
    }
}
