//! The directory scan: which credentials under `<cred_dir>/<user>/` need
//! work, with their need and deadline, remembering directory stamps and
//! `.use` states in the [`Table`] so that repeated passes cost few system
//! calls and little memory.
//!
//! A directory stamp (mtime, ctime) younger than [`SETTLE`] is never
//! trusted: filesystems stamp with a coarse clock, so a second change in
//! the same tick (a second `.top` the credd writes right after the first)
//! leaves the stamp as it was.

use super::table::{Cred, Ns, Stamp, Table, UseFile};
use crate::credmon::config::{Config, MAX_TOP_BYTES};
use crate::credmon::policy::{self, NotOurs, UseState};
use crate::credmon::refresh::{self, Key, Task};
use crate::credmon::schedule::{self, Need};
use crate::files::SafeDir;
use nix::sys::stat::{FileStat, SFlag};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A directory stamp younger than this may hide a second change in the same
/// clock tick: such a directory is read again.
pub const SETTLE: Duration = Duration::from_secs(1);

/// The scan hands what it found to its sink in batches of about this many
/// (after the user directory that fills one), so that a scan of every
/// credential never holds a list of them all.
pub const BATCH: usize = 256;

/// Every this many full passes, every user directory is read again even if
/// its stamp did not change (a `.top` rewritten in place, a touched `.use`).
const COMPLETE_SCAN_EVERY: u64 = 10;

/// A credential the scan found in need of work.
#[derive(Debug, Clone)]
pub struct Found {
    /// The credential.
    pub key: Key,
    /// What to do.
    pub task: Task,
    /// How badly jobs need it.
    pub need: Need,
    /// When its `.use` stops being good for jobs (wall time).
    pub deadline: SystemTime,
    /// The credd replaced its `.top` since it was last queued.
    pub changed: bool,
}

/// What the coordinator remembers between scans.
#[derive(Default)]
pub struct Scanner {
    /// Users and credentials as last seen.
    pub table: Table,
    full_scans: u64,
    /// Credentials in flight, skipped by quick looks (set around them).
    pub known: HashSet<Key>,
    warned: HashSet<String>,
    /// Problems (bad names, unusable files) found by the last scan.
    pub problems: usize,
    /// The owner `.use` files must have to be read (the effective uid).
    owner: u32,
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// Whether a stamp has settled at `now` (see [`SETTLE`]).
fn settled(stamp: Stamp, now: SystemTime) -> bool {
    let newest = stamp.0.max(stamp.1).time();
    newest.checked_add(SETTLE).is_some_and(|t| t <= now)
}

/// The work a credential needs at `now`, if any: the renewal rules of
/// [`policy::should_renew`], and the need and deadline of [`schedule::need`].
/// The key is made (an allocation) only for a credential that needs work.
fn needs_work(
    cfg: &Config,
    key: impl FnOnce(&Cred) -> Key,
    cred: &mut Cred,
    now: SystemTime,
    out: &mut Vec<Found>,
) {
    let use_state = cred.use_file().map(|u| u.state());
    let top = cred.top_ctime().time();
    if policy::should_renew(use_state, top, now, cfg.minimum, cfg.refresh).is_none() {
        return;
    }
    let (need, deadline) = schedule::need(use_state, top, now, cfg.minimum, cfg.refresh);
    let changed = cred.hand_over();
    out.push(Found {
        key: key(cred),
        task: Task::Refresh,
        need,
        deadline,
        changed,
    });
}

impl Scanner {
    /// A scanner that reads only `.use` files owned by `owner`.
    pub fn new(owner: u32) -> Self {
        Scanner {
            owner,
            ..Scanner::default()
        }
    }

    fn warn(&mut self, msg: String) {
        self.problems += 1;
        if self.warned.insert(msg.clone()) {
            log::warn!("{msg}");
        }
    }

    /// Looks at every user directory (or only those changed since the last
    /// look) and hands the credentials that need work at wall time `now` to
    /// `sink`, in batches of about [`BATCH`].
    pub fn scan(
        &mut self,
        cfg: &Config,
        root: &SafeDir,
        only_changed: bool,
        now: SystemTime,
        sink: &mut dyn FnMut(Vec<Found>),
    ) {
        self.problems = 0;
        let mut out = Vec::new();
        let names = match root.entries() {
            Ok(n) => n,
            Err(e) => {
                log::error!("{e}");
                self.problems += 1;
                return;
            }
        };
        let use_cache = !only_changed && {
            self.full_scans += 1;
            self.full_scans % COMPLETE_SCAN_EVERY != 1
        };
        for name in names {
            if out.len() >= BATCH {
                sink(std::mem::take(&mut out));
            }
            let Some(stamp) = self.user_dir(root, &name) else {
                continue;
            };
            let user = self.table.user(&name);
            user.seen = true;
            let fresh = settled(stamp, now);
            if only_changed && user.stamp == Some(stamp) && fresh {
                continue;
            }
            user.stamp = Some(stamp);
            if !only_changed && use_cache && fresh && user.looked == Some(stamp) {
                self.decide_from_table(cfg, &name, now, &mut out);
                continue;
            }
            self.scan_user(cfg, root, &name, stamp, now, only_changed, &mut out);
        }
        if !only_changed {
            self.table.sweep();
        }
        if !out.is_empty() {
            sink(out);
        }
    }

    /// The stamp (mtime, ctime) of `user`'s directory when it is one to look
    /// at: a real directory (not a link) with a valid name; warns about links
    /// and bad names.
    fn user_dir(&mut self, root: &SafeDir, user: &str) -> Option<Stamp> {
        let Ok(Some(st)) = root.stat(user) else {
            return None;
        };
        if kind(&st) == SFlag::S_IFLNK {
            self.warn(format!(
                "skipping {}: a symbolic link where a user directory should be",
                root.path().join(user).display()
            ));
            return None;
        }
        if kind(&st) != SFlag::S_IFDIR {
            return None;
        }
        if !policy::valid_cred_name(user) {
            if !user.starts_with('.') {
                self.warn(format!(
                    "skipping user directory with an invalid name {user:?}"
                ));
            }
            return None;
        }
        Some((Ns::mtime(&st), Ns::ctime(&st)))
    }

    /// Decides from the table, with no system calls, for a user directory
    /// unchanged since its last full look.
    fn decide_from_table(
        &mut self,
        cfg: &Config,
        name: &str,
        now: SystemTime,
        out: &mut Vec<Found>,
    ) {
        let user = self.table.user(name);
        let user_name = user.name.clone();
        for c in &mut user.creds {
            let key = |c: &Cred| Key::of(user_name.clone(), c.stem.clone());
            needs_work(cfg, key, c, now, out);
        }
    }

    /// Reads a user directory: a full look records every credential; a quick
    /// one (SIGHUP) only new or replaced credentials.
    #[allow(clippy::too_many_arguments)] // one call site; the scan's state in one place
    fn scan_user(
        &mut self,
        cfg: &Config,
        root: &SafeDir,
        name: &str,
        stamp: Stamp,
        now: SystemTime,
        quick: bool,
        out: &mut Vec<Found>,
    ) {
        let dir = match root.open_child(name) {
            Ok(d) => d,
            Err(e) => {
                self.warn(format!("skipping user {name}: {e}"));
                return;
            }
        };
        self.clean_once(&dir, name);
        let entries = match dir.entries() {
            Ok(e) => e,
            Err(e) => {
                self.warn(e.to_string());
                return;
            }
        };
        let mut present = Vec::new();
        for entry in entries {
            let Some(stem) = self.credential_stem(cfg, name, &entry) else {
                continue;
            };
            let stem = self.table.intern(stem);
            let user_name = self.table.user(name).name.clone();
            let key = Key::of(user_name, stem.clone());
            if quick && self.known.contains(&key) {
                continue;
            }
            let Some(top) = self.top_stat(&dir, &entry) else {
                continue;
            };
            present.push(stem.clone());
            self.look_at(cfg, &dir, key, Ns::ctime(&top), now, quick, out);
        }
        let user = self.table.user(name);
        if !quick {
            user.creds.retain(|c| present.contains(&c.stem));
            // Exactly the room it needs: a Vec grown by pushes has up to twice.
            user.creds.shrink_to_fit();
            user.looked = Some(stamp);
        }
    }

    /// One credential of a user directory: its `.use` (read only when it
    /// changed), its record in the table, and work when it needs some.
    #[allow(clippy::too_many_arguments)] // one call site
    fn look_at(
        &mut self,
        cfg: &Config,
        dir: &SafeDir,
        key: Key,
        top_ctime: Ns,
        now: SystemTime,
        quick: bool,
        out: &mut Vec<Found>,
    ) {
        if quick {
            // Only new or replaced credentials: a stat is enough.
            let fresh = matches!(dir.stat(&format!("{}.use", key.stem)), Ok(Some(u))
                if kind(&u) == SFlag::S_IFREG && Ns::ctime(&u) >= top_ctime);
            if fresh {
                return;
            }
        }
        let cached = self
            .table
            .get(&key.user)
            .and_then(|u| u.cred(&key.stem))
            .and_then(Cred::use_file);
        let use_file = self.use_file(dir, &key, cached);
        let user = self.table.user(&key.user);
        let cred = match user.cred_mut(&key.stem) {
            Some(c) => c,
            None => {
                user.creds.push(Cred::new(key.stem.clone(), top_ctime));
                let Some(c) = user.creds.last_mut() else {
                    return;
                };
                c
            }
        };
        cred.set_top_ctime(top_ctime);
        cred.set_use_file(use_file);
        needs_work(cfg, |_| key, cred, now, out);
    }

    /// Removes a user directory's leftover temporary files, once per run.
    fn clean_once(&mut self, dir: &SafeDir, name: &str) {
        let user = self.table.user(name);
        if std::mem::replace(&mut user.cleaned, true) {
            return;
        }
        match dir.remove_stale_temps() {
            Ok(0) => {}
            Ok(n) => log::info!(
                "removed {n} leftover temporary file(s) in {}",
                dir.path().display()
            ),
            Err(e) => log::warn!("{e}"),
        }
    }

    /// The credential stem of a directory entry: a `.top` with a valid name
    /// that this credmon serves; `None` (with a warning where it helps) otherwise.
    fn credential_stem<'a>(&mut self, cfg: &Config, user: &str, name: &'a str) -> Option<&'a str> {
        let stem = name.strip_suffix(".top")?;
        if stem.starts_with('.') {
            return None;
        }
        if !policy::valid_cred_name(stem) {
            self.warn(format!("skipping {user}/{name:?}: invalid credential name"));
            return None;
        }
        match policy::ours(stem, &cfg.providers) {
            Ok(()) => Some(stem),
            Err(NotOurs::TrailingUnderscore) => {
                self.warn(format!(
                    "skipping {user}/{name}: a name must not end in '_'"
                ));
                None
            }
            Err(_) => None,
        }
    }

    /// The `.top`'s stat when it is a regular file with one link and not too large.
    fn top_stat(&mut self, dir: &SafeDir, name: &str) -> Option<FileStat> {
        let top = match dir.stat(name) {
            Ok(Some(st)) => st,
            _ => return None,
        };
        let path = dir.path().join(name);
        if kind(&top) != SFlag::S_IFREG {
            self.warn(format!("skipping {}: not a regular file", path.display()));
            return None;
        }
        if top.st_nlink > 1 {
            self.warn(format!(
                "skipping {}: it has several hard links",
                path.display()
            ));
            return None;
        }
        if top.st_size as u64 > MAX_TOP_BYTES as u64 {
            self.warn(format!(
                "skipping {}: larger than {MAX_TOP_BYTES} bytes",
                path.display()
            ));
            return None;
        }
        Some(top)
    }

    /// The `.use` file, read only when it changed since `cached`.
    fn use_file(&self, dir: &SafeDir, key: &Key, cached: Option<UseFile>) -> Option<UseFile> {
        let name = format!("{}.use", key.stem);
        let st = dir.stat(&name).ok().flatten()?;
        if kind(&st) != SFlag::S_IFREG {
            return None;
        }
        let (ino, ctime, size) = (
            UseFile::ino(st.st_ino),
            Ns::ctime(&st),
            UseFile::size(st.st_size),
        );
        if let Some(c) = cached
            && (c.ino, c.ctime, c.size) == (ino, ctime, size)
        {
            return Some(c);
        }
        let UseState { exp, .. } = refresh::read_use(dir, &key.stem, self.owner)?;
        Some(UseFile {
            ino,
            ctime,
            size,
            exp: exp.map_or(i64::MIN, crate::token::unix_seconds),
        })
    }

    /// Keytab users' missing provisioned `.top` files, due at `now`.
    pub fn provision(&mut self, cfg: &Config, root: &SafeDir, now: SystemTime) -> Vec<Found> {
        let mut out = Vec::new();
        let Some(kdir) = &cfg.keytab_dir else {
            return out;
        };
        if cfg.provision.is_empty() {
            return out;
        }
        let names = match std::fs::read_dir(kdir) {
            Ok(r) => r,
            Err(e) => {
                self.warn(format!(
                    "cannot read ROBOT_CREDMON_KEYTAB_DIR '{}': {e}",
                    kdir.display()
                ));
                return out;
            }
        };
        for entry in names.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(user) = name.strip_suffix(".keytab") else {
                continue;
            };
            if !policy::valid_cred_name(user) {
                continue;
            }
            let udir = root.open_child(user).ok();
            for p in &cfg.provision {
                let exists = udir
                    .as_ref()
                    .is_some_and(|d| matches!(d.stat(&format!("{}.top", p.service)), Ok(Some(_))));
                if !exists {
                    out.push(Found {
                        key: Key::new(user, &p.service),
                        task: Task::Provision(Arc::new(p.server.clone())),
                        need: Need::Missing,
                        deadline: now,
                        changed: false,
                    });
                }
            }
        }
        out
    }

    /// Forgets what the directories looked like: the next pass reads them all
    /// (settings that change which credentials are ours).
    pub fn forget_stamps(&mut self) {
        self.table.forget_stamps();
    }
}
