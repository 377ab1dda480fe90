//! What the scanner remembers between passes, one small record per user
//! directory and per credential, so that a pass over an unchanged directory
//! costs one `stat` and no allocation, and memory grows by 48 bytes per
//! credential and a record per user: each user name is stored once (shared
//! with the [`Key`]s handed out), stems are interned (most users share a
//! handful of service names), times are packed nanoseconds.

use crate::credmon::policy::UseState;
use crate::credmon::refresh::Key;
use nix::sys::stat::FileStat;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A wall-clock instant packed as nanoseconds since the Unix epoch (storage
/// only: decisions take [`SystemTime`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ns(i64);

impl Ns {
    /// Never (before any real time).
    pub const NEVER: Ns = Ns(i64::MIN);

    /// A file's ctime.
    pub fn ctime(st: &FileStat) -> Ns {
        Ns(st
            .st_ctime
            .saturating_mul(1_000_000_000)
            .saturating_add(st.st_ctime_nsec))
    }

    /// A file's mtime.
    pub fn mtime(st: &FileStat) -> Ns {
        Ns(st
            .st_mtime
            .saturating_mul(1_000_000_000)
            .saturating_add(st.st_mtime_nsec))
    }

    /// The instant as wall time.
    pub fn time(self) -> SystemTime {
        let d = Duration::from_nanos(self.0.unsigned_abs());
        if self.0 >= 0 {
            UNIX_EPOCH + d
        } else {
            UNIX_EPOCH.checked_sub(d).unwrap_or(UNIX_EPOCH)
        }
    }

    /// Whole seconds since the Unix epoch (rounded down).
    pub fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }

    /// Packs a wall time (saturating).
    pub fn of(t: SystemTime) -> Ns {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Ns(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
            Err(e) => Ns(-i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX)),
        }
    }
}

/// A directory's (mtime, ctime): it changed when either moved.
pub type Stamp = (Ns, Ns);

/// A `.use` file as last read: identity, and the token's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UseFile {
    /// Inode, ctime and size: unchanged means the same contents. Never
    /// zero (an inode 0 is stored as the largest number), so that an
    /// `Option<UseFile>` takes no more room than a `UseFile`.
    pub ino: NonZeroU64,
    /// Its ctime.
    pub ctime: Ns,
    /// Its size, saturated at 65,535 ([`UseFile::size`]).
    pub size: i64,
    /// The token's `exp` in seconds ([`i64::MIN`]: none or unreadable).
    pub exp: i64,
}

impl UseFile {
    /// The stored form of an inode number.
    pub fn ino(ino: u64) -> NonZeroU64 {
        NonZeroU64::new(ino).unwrap_or(NonZeroU64::MAX)
    }

    /// The stored form of a size: saturated at 65,535 (far above any
    /// token; a larger file is read again at every look, and refused).
    pub fn size(size: i64) -> i64 {
        size.clamp(0, i64::from(u16::MAX))
    }

    /// What the renewal rules need.
    pub fn state(&self) -> UseState {
        UseState {
            ctime: self.ctime.time(),
            exp: (self.exp != i64::MIN).then(|| crate::token::time_of(self.exp)),
        }
    }
}

/// One credential of a user, in 48 bytes (the scan table keeps one per
/// credential all the time): the `.use` is packed (see [`Cred::use_file`]).
#[derive(Debug, Clone)]
pub struct Cred {
    /// Its file stem (`<service>` or `<service>_<handle>`), interned.
    pub stem: Arc<str>,
    /// The `.top`'s ctime at the last look.
    top_ctime: Ns,
    /// The `.use`'s inode (0: none), ctime and size (saturated at 65,535).
    use_ino: u64,
    use_ctime: Ns,
    use_size: u16,
    /// The token's `exp` in seconds after the `.use`'s ctime ([`i32::MIN`]:
    /// none or unreadable; clamped 68 years away, which decides the same).
    use_exp: i32,
    /// Handed to the scheduler at least once.
    queued: bool,
    /// The credd replaced the `.top` since it was last handed to the scheduler.
    top_moved: bool,
}

impl Cred {
    /// A credential first seen with this `.top` ctime.
    pub fn new(stem: Arc<str>, top_ctime: Ns) -> Self {
        Cred {
            stem,
            top_ctime,
            use_ino: 0,
            use_ctime: Ns::NEVER,
            use_size: 0,
            use_exp: i32::MIN,
            queued: false,
            top_moved: false,
        }
    }

    /// The `.top`'s ctime at the last look.
    pub fn top_ctime(&self) -> Ns {
        self.top_ctime
    }

    /// Records the `.top`'s ctime of a new look.
    pub fn set_top_ctime(&mut self, ctime: Ns) {
        if ctime != self.top_ctime && self.queued {
            self.top_moved = true;
        }
        self.top_ctime = ctime;
    }

    /// The credential is handed to the scheduler: whether the credd
    /// replaced its `.top` since the last time (a change clears a backoff,
    /// a park or a wait for a server).
    pub fn hand_over(&mut self) -> bool {
        let changed = self.queued && self.top_moved;
        self.queued = true;
        self.top_moved = false;
        changed
    }

    /// The `.use` at the last look.
    pub fn use_file(&self) -> Option<UseFile> {
        let ino = NonZeroU64::new(self.use_ino)?;
        let exp = match self.use_exp {
            i32::MIN => i64::MIN,
            off => self.use_ctime.secs().saturating_add(i64::from(off)),
        };
        Some(UseFile {
            ino,
            ctime: self.use_ctime,
            size: i64::from(self.use_size),
            exp,
        })
    }

    /// Records the `.use` of a new look.
    pub fn set_use_file(&mut self, u: Option<UseFile>) {
        let Some(u) = u else {
            self.use_ino = 0;
            return;
        };
        self.use_ino = u.ino.get();
        self.use_ctime = u.ctime;
        self.use_size = UseFile::size(u.size) as u16;
        self.use_exp = match u.exp {
            i64::MIN => i32::MIN,
            exp => exp
                .saturating_sub(u.ctime.secs())
                .clamp(i64::from(i32::MIN) + 1, i64::from(i32::MAX)) as i32,
        };
    }
}

/// One user directory.
#[derive(Debug)]
pub struct User {
    /// The directory name, shared with every [`Key`] of this user.
    pub name: Arc<str>,
    /// Its stamp at the last look of any kind.
    pub stamp: Option<Stamp>,
    /// Its stamp at the last full look, when [`User::creds`] is complete.
    pub looked: Option<Stamp>,
    /// Leftover temporary files were removed (once per run).
    pub cleaned: bool,
    /// Seen by the scan in progress.
    pub seen: bool,
    /// Its credentials as of the last look.
    pub creds: Vec<Cred>,
}

impl User {
    /// The credential with this stem.
    pub fn cred(&self, stem: &str) -> Option<&Cred> {
        self.creds.iter().find(|c| &*c.stem == stem)
    }

    /// The credential with this stem, for change.
    pub fn cred_mut(&mut self, stem: &str) -> Option<&mut Cred> {
        self.creds.iter_mut().find(|c| &*c.stem == stem)
    }
}

/// Every user directory and credential the scanner knows.
#[derive(Debug, Default)]
pub struct Table {
    users: Vec<User>,
    by_name: HashMap<Arc<str>, u32>,
    stems: HashSet<Arc<str>>,
}

impl Table {
    /// The record of user `name`, made when new.
    pub fn user(&mut self, name: &str) -> &mut User {
        let i = match self.by_name.get(name) {
            Some(&i) => i as usize,
            None => {
                let name: Arc<str> = Arc::from(name);
                let i = self.users.len();
                self.users.push(User {
                    name: name.clone(),
                    stamp: None,
                    looked: None,
                    cleaned: false,
                    seen: false,
                    creds: Vec::new(),
                });
                self.by_name
                    .insert(name, u32::try_from(i).unwrap_or(u32::MAX));
                i
            }
        };
        &mut self.users[i]
    }

    /// The record of user `name`, if known.
    pub fn get(&self, name: &str) -> Option<&User> {
        self.by_name.get(name).map(|&i| &self.users[i as usize])
    }

    /// The interned copy of `stem`.
    pub fn intern(&mut self, stem: &str) -> Arc<str> {
        if let Some(s) = self.stems.get(stem) {
            return s.clone();
        }
        let s: Arc<str> = Arc::from(stem);
        self.stems.insert(s.clone());
        s
    }

    /// Every user.
    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.iter()
    }

    /// Every user, for change.
    pub fn users_mut(&mut self) -> impl Iterator<Item = &mut User> {
        self.users.iter_mut()
    }

    /// Every credential with its key.
    pub fn credentials(&self) -> impl Iterator<Item = (Key, &Cred)> {
        self.users
            .iter()
            .flat_map(|u| u.creds.iter().map(move |c| (Table::key(u, c), c)))
    }

    /// How many credentials are known.
    pub fn len(&self) -> usize {
        self.users.iter().map(|u| u.creds.len()).sum()
    }

    /// Whether no credential is known.
    pub fn is_empty(&self) -> bool {
        self.users.iter().all(|u| u.creds.is_empty())
    }

    /// Forgets the users not seen by the scan that just ended (their
    /// directories are gone), and stems no one uses any more.
    pub fn sweep(&mut self) {
        self.users.retain(|u| u.seen);
        self.by_name.clear();
        for (i, u) in self.users.iter_mut().enumerate() {
            u.seen = false;
            u.creds.shrink_to_fit();
            self.by_name
                .insert(u.name.clone(), u32::try_from(i).unwrap_or(u32::MAX));
        }
        self.users
            .shrink_to(self.users.len() + self.users.len() / 8);
        // An interned stem is shared by the set and its users: one owner left means unused.
        self.stems.retain(|s| Arc::strong_count(s) > 1);
    }

    /// Forgets every stamp: the next scan reads every directory again.
    pub fn forget_stamps(&mut self) {
        for u in &mut self.users {
            u.stamp = None;
            u.looked = None;
        }
    }

    /// The key of a user's credential.
    pub fn key(user: &User, cred: &Cred) -> Key {
        Key::of(user.name.clone(), cred.stem.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stored_once_and_stems_interned() {
        let mut t = Table::default();
        for u in ["alice", "bob"] {
            let stem = t.intern("igwn_robot");
            t.user(u).creds.push(Cred::new(stem, Ns(1)));
        }
        let alice = t.get("alice").map(|u| u.name.clone());
        assert_eq!(alice.as_deref(), Some("alice"));
        let stems: Vec<_> = t.credentials().map(|(k, _)| k.stem.clone()).collect();
        assert!(Arc::ptr_eq(&stems[0], &stems[1]));
        assert_eq!(t.len(), 2);
        // bob's directory is gone: only alice is seen by the next scan
        t.user("alice").seen = true;
        t.sweep();
        assert!(t.get("bob").is_none());
        assert_eq!(t.get("alice").map(|u| u.creds.len()), Some(1));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_credential_record_stays_small() {
        // Kept for every credential all the time (docs/performance.md).
        assert_eq!(std::mem::size_of::<Cred>(), 48);
    }

    #[test]
    fn a_packed_use_file_reads_back_as_it_was() {
        let mut c = Cred::new(Arc::from("s"), Ns(1));
        assert_eq!(c.use_file(), None);
        let ctime = Ns::of(UNIX_EPOCH + Duration::new(1_700_000_000, 5));
        let u = |exp, size| UseFile {
            ino: UseFile::ino(7),
            ctime,
            size,
            exp,
        };
        for (exp, size) in [
            (1_700_003_600, 900),
            (1_699_990_000, 1),
            (i64::MIN, 0),
            (1_700_000_000, 65_535),
        ] {
            c.set_use_file(Some(u(exp, size)));
            assert_eq!(c.use_file(), Some(u(exp, size)));
        }
        // Beyond 68 years either way: clamped, on the same side of now.
        c.set_use_file(Some(u(i64::MAX, 10)));
        assert!(c.use_file().is_some_and(|f| f.exp > 3_000_000_000));
        c.set_use_file(Some(u(i64::MIN + 1, 10)));
        assert!(c.use_file().is_some_and(|f| f.exp > i64::MIN && f.exp < 0));
        c.set_use_file(None);
        assert_eq!(c.use_file(), None);
    }

    #[test]
    fn a_replaced_top_counts_as_changed_once_handed_over() {
        let mut c = Cred::new(Arc::from("s"), Ns(1));
        // Replaced before it was ever queued: nothing to clear.
        c.set_top_ctime(Ns(2));
        assert!(!c.hand_over());
        c.set_top_ctime(Ns(2));
        assert!(!c.hand_over());
        // Replaced after a hand-over, even with looks in between.
        c.set_top_ctime(Ns(3));
        c.set_top_ctime(Ns(3));
        assert!(c.hand_over());
        assert!(!c.hand_over());
    }

    #[test]
    fn packed_times_round_trip() {
        for t in [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::new(1_700_000_000, 123),
            UNIX_EPOCH - Duration::from_secs(5),
        ] {
            assert_eq!(Ns::of(t).time(), t);
        }
    }
}
