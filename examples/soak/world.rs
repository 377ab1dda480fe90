//! What the soak knows: the clock, the credentials (which are live), the
//! trouble windows (Vault faults, the credmon down, a full disk), and the
//! credd's side of the credential directory (store, replace, delete,
//! sweep, as HTCondor's credd does them; errors are counted, never fatal).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The uid that owns user directories (HTCondor: the condor user).
pub const CONDOR_UID: u32 = 4242;

/// The five services every user of the first population has.
pub const SERVICES: [&str; 5] = [
    "igwn_robot",
    "igwn_robot_a",
    "igwn_robot_b",
    "igwn_c",
    "igwn_d",
];

/// Seconds since the start of the run, and the wall clock at that start.
#[derive(Clone, Copy)]
pub struct Clock {
    t0: Instant,
    wall0: f64,
}

impl Clock {
    pub fn start() -> Clock {
        let wall0 = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Clock {
            t0: Instant::now(),
            wall0,
        }
    }

    /// Seconds since the start.
    pub fn now(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// An instant as seconds since the start.
    pub fn at(&self, i: Instant) -> f64 {
        i.saturating_duration_since(self.t0).as_secs_f64()
    }

    /// A wall time (seconds since the epoch, e.g. a JWT `exp`) as seconds since the start.
    pub fn of_wall(&self, secs: i64) -> f64 {
        secs as f64 - self.wall0
    }
}

/// Kinds of trouble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    /// A Vault fault (its schedule kind's name).
    Vault(&'static str),
    /// No credmon that the credd can signal (killed, stopped, starting).
    CredmonDown,
    /// The credential directory's file system is full.
    DiskFull,
}

impl Trouble {
    /// Whether it is an outage: Vault refuses or cannot answer in time, the
    /// credmon is not running, or nothing can be written (a slow Vault that
    /// still answers within the request timeout is not).
    pub fn is_outage(self) -> bool {
        self != Trouble::Vault("vault-slow")
    }
}

/// A time of trouble, `[start, end]` in seconds since the start (`end`
/// infinite while it lasts).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub what: Trouble,
    pub start: f64,
    pub end: f64,
}

/// A credential, live or gone.
#[derive(Debug, Clone)]
pub struct Cred {
    pub user: String,
    pub svc: &'static str,
    /// When its first `.top` was stored (seconds since the start).
    pub created: f64,
    /// Live: its `.top` is in place (stored and not deleted).
    pub live: bool,
    /// When it was deleted.
    pub deleted: Option<f64>,
}

impl Cred {
    pub fn name(&self) -> String {
        format!("{}/{}", self.user, self.svc)
    }
}

/// The shared state.
pub struct World {
    pub clock: Clock,
    pub cred_dir: PathBuf,
    pub creds: Mutex<Vec<Cred>>,
    pub windows: Mutex<Vec<Window>>,
    /// New credentials waiting for their first `.use`: (id, stored at).
    pub pending: Mutex<Vec<(usize, f64)>>,
    /// Stores that failed (full disk): (time, error).
    pub store_errors: Mutex<Vec<(f64, String)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl World {
    pub fn new(clock: Clock, cred_dir: &Path) -> World {
        World {
            clock,
            cred_dir: cred_dir.to_path_buf(),
            creds: Mutex::new(Vec::new()),
            windows: Mutex::new(Vec::new()),
            pending: Mutex::new(Vec::new()),
            store_errors: Mutex::new(Vec::new()),
        }
    }

    pub fn creds(&self) -> std::sync::MutexGuard<'_, Vec<Cred>> {
        lock(&self.creds)
    }

    /// Opens a window of trouble now; returns its number for [`World::close`].
    pub fn open(&self, what: Trouble) -> usize {
        let mut w = lock(&self.windows);
        w.push(Window {
            what,
            start: self.clock.now(),
            end: f64::INFINITY,
        });
        w.len() - 1
    }

    /// Closes window `i` at `at` (seconds since the start).
    pub fn close_at(&self, i: usize, at: f64) {
        if let Some(w) = lock(&self.windows).get_mut(i) {
            w.end = at;
        }
    }

    /// Closes window `i` now.
    pub fn close(&self, i: usize) {
        self.close_at(i, self.clock.now());
    }

    pub fn windows(&self) -> Vec<Window> {
        lock(&self.windows).clone()
    }

    pub fn top_path(&self, c: &Cred) -> PathBuf {
        self.cred_dir.join(&c.user).join(format!("{}.top", c.svc))
    }

    pub fn use_path(&self, c: &Cred) -> PathBuf {
        self.cred_dir.join(&c.user).join(format!("{}.use", c.svc))
    }

    /// Live credentials as (id, `.use` path).
    pub fn live(&self) -> Vec<(usize, PathBuf)> {
        self.creds()
            .iter()
            .enumerate()
            .filter(|(_, c)| c.live)
            .map(|(i, c)| (i, self.use_path(c)))
            .collect()
    }

    pub fn is_live(&self, id: usize) -> bool {
        self.creds().get(id).is_some_and(|c| c.live)
    }

    /// Stores `contents` as the credential's `.top` the credd's way
    /// (`<name>.top.tmp`, root 0600, fsync, rename), creating the user
    /// directory (0700, the condor user) when missing.
    pub fn store_top(&self, user: &str, svc: &str, contents: &str) -> std::io::Result<()> {
        let d = self.cred_dir.join(user);
        if !d.exists() {
            std::fs::DirBuilder::new().mode(0o700).create(&d)?;
            std::os::unix::fs::chown(&d, Some(CONDOR_UID), Some(CONDOR_UID))?;
        }
        let tmp = d.join(format!("{svc}.top.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let written = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(contents.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, d.join(format!("{svc}.top")))
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// Records a failed store.
    pub fn store_failed(&self, e: std::io::Error) {
        lock(&self.store_errors).push((self.clock.now(), e.to_string()));
    }

    /// Adds a live credential stored now; returns its id.
    pub fn add(&self, user: &str, svc: &'static str, wait_for_use: bool) -> usize {
        let now = self.clock.now();
        let id = {
            let mut c = self.creds();
            c.push(Cred {
                user: user.to_string(),
                svc,
                created: now,
                live: true,
                deleted: None,
            });
            c.len() - 1
        };
        if wait_for_use {
            lock(&self.pending).push((id, now));
        }
        id
    }

    /// `condor_store_cred delete-oauth`: its `.top` and `.use` are unlinked
    /// and it is no longer live (under the lock: the reader never sees it
    /// gone with its files still there).
    pub fn delete(&self, id: usize) {
        let now = self.clock.now();
        let mut creds = self.creds();
        let Some(c) = creds.get_mut(id).filter(|c| c.live) else {
            return;
        };
        c.live = false;
        c.deleted = Some(now);
        let c = c.clone();
        let _ = std::fs::remove_file(self.top_path(&c));
        let _ = std::fs::remove_file(self.use_path(&c));
    }

    /// The credd's sweep of `user`: the directory is removed and every
    /// credential of the user is no longer live (under the lock, as above).
    pub fn sweep(&self, user: &str) {
        let now = self.clock.now();
        let mut creds = self.creds();
        let _ = std::fs::remove_dir_all(self.cred_dir.join(user));
        for c in creds.iter_mut().filter(|c| c.user == user && c.live) {
            c.live = false;
            c.deleted = Some(now);
        }
    }

    /// Number of live credentials.
    pub fn live_count(&self) -> usize {
        self.creds().iter().filter(|c| c.live).count()
    }
}
