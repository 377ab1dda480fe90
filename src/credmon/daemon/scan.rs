//! The directory scan: which credentials under `<cred_dir>/<user>/` need
//! work, with their need and deadline, remembering directory stamps and
//! `.use` states so that repeated passes cost few system calls.

use crate::credmon::config::{Config, MAX_TOP_BYTES};
use crate::credmon::policy::{self, NotOurs};
use crate::credmon::refresh::{self, Key, Task};
use crate::credmon::schedule::{self, At, Need};
use crate::files::SafeDir;
use nix::sys::stat::{FileStat, SFlag};
use std::collections::{HashMap, HashSet};

/// A credential the scan found in need of work.
pub struct Found {
    /// The credential.
    pub key: Key,
    /// What to do.
    pub task: Task,
    /// How badly jobs need it.
    pub need: Need,
    /// When its `.use` stops being good for jobs.
    pub deadline: At,
    /// The `.top`'s ctime (0 for a provision).
    pub top_ctime: i128,
}

/// A directory's (mtime, ctime) in nanoseconds: changed when either moves.
type Stamp = (i128, i128);

/// What the coordinator remembers between scans.
#[derive(Default)]
pub struct Scanner {
    dir_stamps: HashMap<String, Stamp>,
    /// Per user directory, as of a full look: its stamp and its credentials.
    full_cache: HashMap<String, (Stamp, Vec<Cached>)>,
    full_scans: u64,
    /// Credentials in flight, skipped by quick looks (set around them).
    pub known: HashSet<Key>,
    use_cache: HashMap<Key, (u64, i128, i64, Option<i64>)>,
    cleaned: HashSet<String>,
    warned: HashSet<String>,
    /// Problems (bad names, unusable files) found by the last scan.
    pub problems: usize,
    /// The owner `.use` files must have to be read (the effective uid).
    owner: u32,
}

/// What a full look found about one credential.
#[derive(Clone)]
pub struct Cached {
    /// The file stem.
    pub stem: String,
    top_ctime: i128,
    /// The `.use` as the scan saw it.
    pub use_state: Option<policy::UseState>,
}

/// The work a credential needs at `now`, if any: the renewal rules of
/// [`policy::should_renew`], and the need and deadline of [`schedule::need`].
fn needs_work(
    cfg: &Config,
    key: Key,
    use_state: Option<policy::UseState>,
    top_ctime: i128,
    now: At,
) -> Option<Found> {
    let now_ns = i128::try_from(now.as_nanos()).unwrap_or(i128::MAX);
    policy::should_renew(use_state, top_ctime, now_ns, cfg.minimum, cfg.refresh)?;
    let (need, deadline) = schedule::need(use_state, top_ctime, now, cfg.minimum, cfg.refresh);
    Some(Found {
        key,
        task: Task::Refresh,
        need,
        deadline,
        top_ctime,
    })
}

/// Every this many full passes, every user directory is read again even if
/// its stamp did not change (a `.top` rewritten in place, a touched `.use`).
const COMPLETE_SCAN_EVERY: u64 = 10;

fn is_dir(st: &nix::sys::stat::FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR
}

fn kind(st: &nix::sys::stat::FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

fn ns(s: i64, n: i64) -> i128 {
    i128::from(s) * 1_000_000_000 + i128::from(n)
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
    /// look) and returns the credentials that need work.
    pub fn scan(
        &mut self,
        cfg: &Config,
        root: &SafeDir,
        only_changed: bool,
        now: At,
    ) -> Vec<Found> {
        self.problems = 0;
        let mut out = Vec::new();
        let names = match root.entries() {
            Ok(n) => n,
            Err(e) => {
                log::error!("{e}");
                self.problems += 1;
                return out;
            }
        };
        let mut seen = HashSet::new();
        let use_full_cache = if only_changed {
            false
        } else {
            self.full_scans += 1;
            self.full_scans % COMPLETE_SCAN_EVERY != 1
        };
        for user in names {
            let Some(stamp) = self.user_dir(root, &user) else {
                continue;
            };
            seen.insert(user.clone());
            if only_changed && self.dir_stamps.get(&user) == Some(&stamp) {
                continue;
            }
            self.dir_stamps.insert(user.clone(), stamp);
            if !only_changed
                && use_full_cache
                && self.decide_from_cache(cfg, &user, stamp, now, &mut out)
            {
                continue;
            }
            let creds = self.scan_user(cfg, root, &user, now, only_changed, &mut out);
            if !only_changed {
                self.full_cache.insert(user.clone(), (stamp, creds));
            }
        }
        if !only_changed {
            self.dir_stamps.retain(|u, _| seen.contains(u));
            self.full_cache.retain(|u, _| seen.contains(u));
            self.use_cache.retain(|k, _| seen.contains(&k.user));
        }
        out
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
        if !is_dir(&st) {
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
        Some((
            ns(st.st_mtime, st.st_mtime_nsec),
            ns(st.st_ctime, st.st_ctime_nsec),
        ))
    }

    /// Decides from memory, with no system calls, for a user directory
    /// unchanged (`stamp`) since the last full look; false when nothing is
    /// remembered for that stamp.
    fn decide_from_cache(
        &self,
        cfg: &Config,
        user: &str,
        stamp: Stamp,
        now: At,
        out: &mut Vec<Found>,
    ) -> bool {
        let Some((s, creds)) = self.full_cache.get(user) else {
            return false;
        };
        if *s != stamp {
            return false;
        }
        for c in creds {
            let key = Key {
                user: user.to_owned(),
                stem: c.stem.clone(),
            };
            out.extend(needs_work(cfg, key, c.use_state, c.top_ctime, now));
        }
        true
    }

    fn scan_user(
        &mut self,
        cfg: &Config,
        root: &SafeDir,
        user: &str,
        now: At,
        quick: bool,
        out: &mut Vec<Found>,
    ) -> Vec<Cached> {
        let mut creds = Vec::new();
        let dir = match root.open_child(user) {
            Ok(d) => d,
            Err(e) => {
                self.warn(format!("skipping user {user}: {e}"));
                return creds;
            }
        };
        self.clean_once(&dir, user);
        let entries = match dir.entries() {
            Ok(e) => e,
            Err(e) => {
                self.warn(e.to_string());
                return creds;
            }
        };
        for name in entries {
            let Some(stem) = self.credential_stem(cfg, user, &name) else {
                continue;
            };
            let key = Key {
                user: user.to_owned(),
                stem: stem.to_owned(),
            };
            if quick && self.known.contains(&key) {
                continue;
            }
            let Some(top) = self.top_stat(&dir, &name) else {
                continue;
            };
            let top_ctime = refresh::ctime_ns(&top);
            if quick {
                // Only new or replaced credentials: a stat is enough.
                let fresh = matches!(dir.stat(&format!("{stem}.use")), Ok(Some(u))
                    if kind(&u) == SFlag::S_IFREG && refresh::ctime_ns(&u) >= top_ctime);
                if !fresh {
                    let use_state = self.use_state(&dir, &key);
                    out.extend(needs_work(cfg, key, use_state, top_ctime, now));
                }
                continue;
            }
            let use_state = self.use_state(&dir, &key);
            creds.push(Cached {
                stem: key.stem.clone(),
                top_ctime,
                use_state,
            });
            out.extend(needs_work(cfg, key, use_state, top_ctime, now));
        }
        creds
    }

    /// Removes a user directory's leftover temporary files, once per run.
    fn clean_once(&mut self, dir: &SafeDir, user: &str) {
        if !self.cleaned.insert(user.to_owned()) {
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

    /// The `.use` state, reading the file only when it changed since last time.
    fn use_state(&mut self, dir: &SafeDir, key: &Key) -> Option<policy::UseState> {
        let name = format!("{}.use", key.stem);
        let st = dir.stat(&name).ok().flatten()?;
        if kind(&st) != SFlag::S_IFREG {
            return None;
        }
        let ctime = refresh::ctime_ns(&st);
        let id = (st.st_ino, ctime, st.st_size);
        if let Some(&(ino, c, size, exp)) = self.use_cache.get(key)
            && (ino, c, size) == id
        {
            return Some(policy::UseState {
                ctime_ns: ctime,
                exp,
            });
        }
        let state = refresh::read_use(dir, &key.stem, self.owner)?;
        self.use_cache
            .insert(key.clone(), (st.st_ino, ctime, st.st_size, state.exp));
        Some(state)
    }

    /// Keytab users' missing provisioned `.top` files.
    pub fn provision(&mut self, cfg: &Config, root: &SafeDir, now: At) -> Vec<Found> {
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
                        key: Key {
                            user: user.to_owned(),
                            stem: p.service.clone(),
                        },
                        task: Task::Provision(p.server.clone()),
                        need: Need::Missing,
                        deadline: now,
                        top_ctime: 0,
                    });
                }
            }
        }
        out
    }
}

impl Scanner {
    /// Forgets what the directories looked like: the next pass reads them all
    /// (settings that change which credentials are ours).
    pub fn forget_stamps(&mut self) {
        self.dir_stamps.clear();
        self.full_cache.clear();
    }

    /// Every credential the last full look found, by user.
    pub fn credentials(&self) -> impl Iterator<Item = (&String, &Cached)> {
        self.full_cache
            .iter()
            .flat_map(|(user, (_, creds))| creds.iter().map(move |c| (user, c)))
    }
}
