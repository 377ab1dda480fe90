//! The credmon's state file, `<cred_dir>/.robot-credmon-state.json`: what the
//! credmon knows that the credential files do not show. Written by the
//! credmon (atomically, root-owned, mode 0644, no secrets in it) at the end of
//! each pass and, debounced, after each change; read back by `robot-credmon
//! status` and `check --credmon`, also while the credmon is down.
//!
//! Only credentials with a problem have an entry (failing, skipped, needing a
//! person): a fresh credential's state, expiry, last refresh and next renewal
//! follow from its `.top` and `.use`, so a healthy site of 100,000
//! credentials writes a file of a few hundred bytes, and the credmon keeps no
//! memory per healthy credential. A [`Tracker`] holds the entries in the
//! credmon; the coordinator feeds it each job's outcome and asks it when to
//! write ([`Tracker::write_if_due`]).

use crate::credmon::refresh::{Key, Outcome, RefreshError};
use crate::env::{Clock, Mono};
use crate::files::{FileError, SafeDir, WriteOptions};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The state file's name in the credential directory (a dot file: HTCondor's
/// and robot-credmon's scans skip it).
pub const FILE_NAME: &str = ".robot-credmon-state.json";
/// The format version; readers refuse any other.
pub const VERSION: u32 = 1;
/// Largest state file a reader accepts.
pub const MAX_BYTES: usize = 64 << 20;
/// Longest error text kept per credential, in characters.
const MAX_ERROR_CHARS: usize = 400;
/// A write may take at most this share of the time between writes (1/50 = 2 %).
const COST_FACTOR: u32 = 50;
/// The `cause` label of a failure that needs a person ([`crate::metrics`] and [`Tracker`]).
pub const NEEDS_LOGIN: &str = "needs_login";

/// What is wrong with a credential, as far as the files cannot tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// Refreshes fail; retried with backoff.
    Failing,
    /// The `.top` cannot be used as it is (malformed, untrusted host, no Vault
    /// token): waits for a new `.top` or a configuration change.
    Skipped,
    /// Vault says only a person can fix it (an OIDC login in a browser).
    NeedsLogin,
}

/// One credential with a problem, as the state file holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The user (directory name).
    pub user: String,
    /// The credential (file stem: `<service>` or `<service>_<handle>`).
    pub credential: String,
    /// What is wrong.
    pub state: Problem,
    /// When the problem was first seen (seconds since the epoch).
    pub since: i64,
    /// Failed attempts in a row.
    pub failures: u32,
    /// The last error, one line, scrubbed of anything token-shaped.
    pub last_error: String,
    /// When the credmon tries again (seconds since the epoch), if it knows.
    pub next_try: Option<i64>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFile {
    /// [`VERSION`].
    pub version: u32,
    /// The credmon that wrote it.
    pub pid: u32,
    /// When it was written.
    pub written: i64,
    /// End of the last complete pass, if any.
    pub last_pass: Option<i64>,
    /// `CREDMON_OAUTH_TOKEN_MINIMUM` in force.
    pub minimum: u64,
    /// `CREDMON_OAUTH_TOKEN_REFRESH` in force.
    pub refresh: u64,
    /// `ROBOT_CREDMON_KEYTAB_DIR`, if set.
    pub keytab_dir: Option<PathBuf>,
    /// The credentials with a problem, sorted by user and credential.
    pub problems: Vec<Entry>,
}

/// The settings the file repeats for its readers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `CREDMON_OAUTH_TOKEN_MINIMUM`.
    pub minimum: u64,
    /// `CREDMON_OAUTH_TOKEN_REFRESH`.
    pub refresh: u64,
    /// `ROBOT_CREDMON_KEYTAB_DIR`.
    pub keytab_dir: Option<PathBuf>,
    /// Least time between two writes after changes (`ROBOT_CREDMON_STATE_INTERVAL`).
    pub interval: Duration,
}

impl Settings {
    /// The settings of a credmon configuration.
    pub fn of(cfg: &crate::credmon::config::Config) -> Self {
        Settings {
            minimum: cfg.minimum,
            refresh: cfg.refresh,
            keytab_dir: cfg.keytab_dir.clone(),
            interval: cfg.state_interval,
        }
    }
}

/// A credential's problem in the credmon's memory (only failing ones are kept).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    state: Problem,
    since: i64,
    failures: u32,
    last_error: Box<str>,
    next_try: Option<i64>,
}

#[derive(Debug, Default)]
struct Inner {
    problems: HashMap<Key, Slot>,
    settings: Settings,
    last_pass: Option<i64>,
    dirty: bool,
    /// When the file was last written (the daemon's monotonic clock) and what it cost.
    last_write: Option<(Mono, Duration)>,
    last_error: Option<String>,
}

/// The credmon's memory of problems, and the state file's debounced writer.
#[derive(Debug, Default)]
pub struct Tracker {
    inner: Mutex<Inner>,
}

/// One line, without control characters, scrubbed and cut to [`MAX_ERROR_CHARS`].
pub fn one_line(text: &str) -> String {
    let flat: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let clean = crate::vault::scrub(&flat);
    if clean.chars().count() > MAX_ERROR_CHARS {
        let mut cut: String = clean.chars().take(MAX_ERROR_CHARS).collect();
        cut.push_str(" [...]");
        cut
    } else {
        clean
    }
}

impl Tracker {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records how a job on `key` ended at `now` (seconds since the epoch), with
    /// the scheduler's next attempt `next_try`. Returns whether the file now
    /// needs writing and did not before (the caller wakes the writer then).
    pub fn record(&self, key: &Key, outcome: &Outcome, now: i64, next_try: Option<i64>) -> bool {
        let mut t = self.lock();
        let was_dirty = t.dirty;
        let changed = match outcome {
            Ok(_) | Err(RefreshError::Remove { .. }) => t.problems.remove(key).is_some(),
            Err(e) => {
                let state = match e {
                    RefreshError::WaitForTop { .. } => Problem::Skipped,
                    e if e.cause() == NEEDS_LOGIN => Problem::NeedsLogin,
                    _ => Problem::Failing,
                };
                let last_error = one_line(&e.to_string()).into_boxed_str();
                let slot = match t.problems.get(key) {
                    Some(old) => Slot {
                        state,
                        since: if old.state == state { old.since } else { now },
                        failures: old.failures.saturating_add(1),
                        last_error,
                        next_try,
                    },
                    None => Slot {
                        state,
                        since: now,
                        failures: 1,
                        last_error,
                        next_try,
                    },
                };
                t.problems.insert(key.clone(), slot);
                true
            }
        };
        t.dirty |= changed;
        t.dirty && !was_dirty
    }

    /// A tracker for a credmon with these settings.
    pub fn new(settings: Settings) -> Self {
        let t = Tracker::default();
        t.lock().settings = settings;
        t
    }

    /// The settings changed (configuration re-read).
    pub fn set_settings(&self, settings: Settings) {
        let mut t = self.lock();
        t.dirty |= t.settings != settings;
        t.settings = settings;
    }

    /// A complete pass ended at `now`: the file is due.
    pub fn pass_done(&self, now: i64) {
        let mut t = self.lock();
        t.last_pass = Some(now);
        t.dirty = true;
    }

    /// Forgets skipped credentials whose `.top` is gone (removed by the
    /// credd or the user); returns how many. (Failing ones are tried again,
    /// and forgotten then: the job finds no `.top`.)
    pub fn prune_skipped(&self, gone: impl Fn(&Key) -> bool) -> usize {
        let mut t = self.lock();
        let before = t.problems.len();
        t.problems
            .retain(|k, s| s.state != Problem::Skipped || !gone(k));
        let n = before - t.problems.len();
        t.dirty |= n > 0;
        n
    }

    /// The credentials that need a person, sorted.
    pub fn needs_login(&self) -> Vec<Key> {
        let t = self.lock();
        let mut v: Vec<Key> = t
            .problems
            .iter()
            .filter(|(_, s)| s.state == Problem::NeedsLogin)
            .map(|(k, _)| k.clone())
            .collect();
        v.sort();
        v
    }

    /// The file's contents now (written by `pid` at `now`).
    pub fn snapshot(&self, pid: u32, now: i64) -> StateFile {
        let t = self.lock();
        let mut problems: Vec<Entry> = t
            .problems
            .iter()
            .map(|(k, s)| Entry {
                user: k.user.to_string(),
                credential: k.stem.to_string(),
                state: s.state,
                since: s.since,
                failures: s.failures,
                last_error: s.last_error.to_string(),
                next_try: s.next_try,
            })
            .collect();
        problems.sort_by(|a, b| (&a.user, &a.credential).cmp(&(&b.user, &b.credential)));
        StateFile {
            version: VERSION,
            pid,
            written: now,
            last_pass: t.last_pass,
            minimum: t.settings.minimum,
            refresh: t.settings.refresh,
            keytab_dir: t.settings.keytab_dir.clone(),
            problems,
        }
    }

    /// When the file may be written next, if it must be: at once after the
    /// first change, then no sooner than the interval (and 50 times the last
    /// write's cost) after the last write. `None` when there is nothing to write.
    pub fn due(&self, at: Mono) -> Option<Mono> {
        let t = self.lock();
        if !t.dirty {
            return None;
        }
        Some(match t.last_write {
            None => at,
            Some((when, cost)) => when + t.settings.interval.max(cost * COST_FACTOR),
        })
    }

    /// Writes the file now if anything changed since the last write (at exit).
    pub fn flush(&self, root: &SafeDir, pid: u32, now: i64, as_root: bool) {
        if !self.lock().dirty {
            return;
        }
        let file = self.snapshot(pid, now);
        match write(root, &file, as_root) {
            Ok(()) => self.lock().dirty = false,
            Err(e) => log::error!("cannot write the state file: {e}"),
        }
    }

    /// Writes the file into `root` when it is due on `clock`, as `pid`;
    /// returns when to look again (`None`: nothing pending). A failed write
    /// is logged once and retried after the interval.
    pub fn write_if_due(
        &self,
        root: &SafeDir,
        clock: &Clock,
        pid: u32,
        as_root: bool,
    ) -> Option<Mono> {
        let at = clock.mono();
        let due = self.due(at)?;
        if due > at {
            return Some(due);
        }
        let file = self.snapshot(pid, crate::token::unix_seconds(clock.now()));
        self.lock().dirty = false;
        let written = write(root, &file, as_root);
        let cost = clock.mono().since(at);
        let mut t = self.lock();
        t.last_write = Some((at, cost));
        match written {
            Ok(()) => t.last_error = None,
            Err(e) => {
                let msg = format!("cannot write the state file: {e}");
                if t.last_error.as_deref() != Some(msg.as_str()) {
                    log::error!("{msg}");
                    t.last_error = Some(msg);
                }
                t.dirty = true;
            }
        }
        drop(t);
        self.due(at)
    }
}

/// Replaces the state file in `root` atomically (root-owned when `as_root`, mode 0644).
pub fn write(root: &SafeDir, file: &StateFile, as_root: bool) -> Result<(), FileError> {
    let mut text = serde_json::to_vec(file).unwrap_or_default();
    text.push(b'\n');
    root.write_atomic_deferred(
        FILE_NAME,
        &text,
        WriteOptions {
            mode: 0o644,
            owner: as_root.then_some((0, 0)),
            existing_owner: None,
            replace_symlink: true,
        },
    )
}

/// Why the state file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Reading failed, or the file fails the trust rule.
    #[error(transparent)]
    File(#[from] FileError),
    /// Not a state file of this version.
    #[error("'{path}' is not a robot-credmon state file of version {VERSION}: {why}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// Reads the state file of `root` through the trust rule for `owner` (the
/// credential directory's owner); `Ok(None)` when there is none.
pub fn read(root: &SafeDir, owner: u32) -> Result<Option<StateFile>, ReadError> {
    let Some((bytes, _)) = root.read_trusted(FILE_NAME, MAX_BYTES, owner)? else {
        return Ok(None);
    };
    let path = root.path().join(FILE_NAME);
    let file: StateFile = serde_json::from_slice(&bytes).map_err(|e| ReadError::Format {
        path: path.clone(),
        why: e.to_string(),
    })?;
    if file.version != VERSION {
        return Err(ReadError::Format {
            path,
            why: format!("it says version {}", file.version),
        });
    }
    Ok(Some(file))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::credmon::refresh::Done;

    fn key(u: &str, s: &str) -> Key {
        Key::new(u, s)
    }

    fn fail(cause: &'static str, msg: &str) -> Outcome {
        Err(RefreshError::Retry {
            cause,
            at_least: None,
            msg: msg.into(),
            server_failing: false,
        })
    }

    fn settings(interval: u64) -> Settings {
        Settings {
            minimum: 2400,
            refresh: 1200,
            keytab_dir: Some("/k".into()),
            interval: Duration::from_secs(interval),
        }
    }

    #[test]
    fn outcomes_make_and_clear_problems() {
        let t = Tracker::default();
        let a = key("alice", "igwn");
        assert!(
            !t.record(&a, &Ok(Done::Nothing), 100, None),
            "nothing to clear"
        );
        assert!(t.record(
            &a,
            &fail("vault", "Vault at https://v answered 500"),
            100,
            Some(110)
        ));
        // Already dirty: no second wake-up.
        assert!(!t.record(&a, &fail("vault", "again"), 110, Some(130)));
        let b = key("bob", "igwn");
        t.record(
            &b,
            &fail(NEEDS_LOGIN, "needs a person\nsecond line"),
            120,
            Some(400),
        );
        let c = key("carol", "x");
        t.record(
            &c,
            &Err(RefreshError::WaitForTop {
                msg: "skipping credential carol/x: untrusted".into(),
            }),
            120,
            None,
        );
        let f = t.snapshot(7, 130);
        assert_eq!(f.version, VERSION);
        assert_eq!(f.pid, 7);
        assert_eq!(
            f.problems,
            vec![
                Entry {
                    user: "alice".into(),
                    credential: "igwn".into(),
                    state: Problem::Failing,
                    since: 100,
                    failures: 2,
                    last_error: "again".into(),
                    next_try: Some(130),
                },
                Entry {
                    user: "bob".into(),
                    credential: "igwn".into(),
                    state: Problem::NeedsLogin,
                    since: 120,
                    failures: 1,
                    last_error: "needs a person second line".into(),
                    next_try: Some(400),
                },
                Entry {
                    user: "carol".into(),
                    credential: "x".into(),
                    state: Problem::Skipped,
                    since: 120,
                    failures: 1,
                    last_error: "skipping credential carol/x: untrusted".into(),
                    next_try: None,
                },
            ]
        );
        assert_eq!(t.needs_login(), vec![b.clone()]);
        // A refresh clears a problem; so does a removal.
        t.record(&a, &Ok(Done::Refreshed(Some(1), "age")), 140, None);
        t.record(
            &b,
            &Err(RefreshError::Remove {
                cause: "permission_denied",
                msg: "gone".into(),
            }),
            140,
            None,
        );
        assert_eq!(t.snapshot(7, 150).problems.len(), 1);
        // Only skipped credentials whose .top is gone are pruned.
        t.record(&a, &fail("vault", "x"), 150, None);
        assert_eq!(t.prune_skipped(|_| true), 1);
        assert_eq!(t.snapshot(7, 150).problems[0].user, "alice");
    }

    #[test]
    fn errors_are_one_scrubbed_line() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyb2JvdCJ9.c2lnbmF0dXJlc2lnbmF0dXJl";
        let line = one_line(&format!(
            "bad token {jwt}\nhvs.CAESIabcdefghijklmnopqrstuvwxyz012345\tend"
        ));
        assert!(
            !line.contains("eyJ") && !line.contains("hvs.CAES"),
            "{line}"
        );
        assert!(!line.contains('\n') && !line.contains('\t'), "{line}");
        assert!(one_line(&"x".repeat(1000)).chars().count() < MAX_ERROR_CHARS + 10);
    }

    #[test]
    fn writes_are_debounced() {
        let dir = tempfile::tempdir().unwrap();
        let root = SafeDir::open(dir.path()).unwrap();
        let t = Tracker::new(settings(5));
        // Virtual time: monotonic and wall seconds read the same here.
        let clock = Clock::manual(std::time::UNIX_EPOCH);
        clock.advance(Duration::from_secs(1000));
        let s = |n: u64| Mono::ZERO + Duration::from_secs(n);
        assert_eq!(t.due(s(1000)), None, "nothing changed: nothing to write");
        t.pass_done(1000);
        assert_eq!(t.due(s(1000)), Some(s(1000)), "the first write is at once");
        assert_eq!(t.write_if_due(&root, &clock, 1, false), None);
        let f = read(&root, nix::unistd::geteuid().as_raw())
            .unwrap()
            .unwrap();
        assert_eq!(
            (f.last_pass, f.minimum, f.written),
            (Some(1000), 2400, 1000)
        );
        // A change one second later waits for the interval.
        t.record(&key("a", "b"), &fail("vault", "x"), 1001, None);
        clock.advance(Duration::from_secs(1));
        assert_eq!(t.due(s(1001)), Some(s(1005)));
        assert_eq!(t.write_if_due(&root, &clock, 1, false), Some(s(1005)));
        assert!(
            read(&root, nix::unistd::geteuid().as_raw())
                .unwrap()
                .unwrap()
                .problems
                .is_empty()
        );
        clock.advance(Duration::from_secs(4));
        assert_eq!(t.write_if_due(&root, &clock, 1, false), None);
        let f = read(&root, nix::unistd::geteuid().as_raw())
            .unwrap()
            .unwrap();
        assert_eq!(f.problems.len(), 1);
        let st = root.stat(FILE_NAME).unwrap().unwrap();
        assert_eq!(st.st_mode & 0o7777, 0o644);
    }

    #[test]
    fn readers_refuse_what_they_cannot_believe() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = SafeDir::open(dir.path()).unwrap();
        let me = nix::unistd::geteuid().as_raw();
        assert!(read(&root, me).unwrap().is_none());
        std::fs::write(dir.path().join(FILE_NAME), "{\"version\":2}").unwrap();
        let e = read(&root, me).unwrap_err().to_string();
        assert!(e.contains("not a robot-credmon state file"), "{e}");
        let f = Tracker::default().snapshot(1, 2);
        write(&root, &f, false).unwrap();
        std::fs::set_permissions(
            dir.path().join(FILE_NAME),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        let e = read(&root, me).unwrap_err().to_string();
        assert!(e.contains("writable by its group or by others"), "{e}");
        assert!(
            read(&root, me + 1).is_err(),
            "another owner is not believed"
        );
    }
}
