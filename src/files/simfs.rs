//! An in-memory file system for the deterministic simulation, beneath
//! [`super::SafeDir`] (whose rules run unchanged on it).
//!
//! What a real file system does that the simulation needs, and only that:
//! directories, regular files and symbolic links with owners, modes, link
//! counts, inode numbers and (mtime, ctime) stamps taken from the virtual
//! [`Clock`] at a coarse granularity (as the kernel's coarse clock does:
//! two changes in one tick get the same stamp); `O_EXCL`, `O_NOFOLLOW`,
//! rename over a file, `ENOENT`/`EEXIST`/`ELOOP`/`ENOTDIR`.
//!
//! Durability: file data is durable after `fsync` of the file or a
//! `syncfs`; a directory's entries after `fsync` of the directory, a
//! `syncfs`, or the journal's periodic commit ([`SimFs::commit_metadata`]). [`SimFs::crash`] keeps or loses each directory's unsynced
//! entries (a seeded choice, directory by directory) and empties every file
//! whose data was never made durable — the two ways a power cut hurts.
//! Faults: [`SimFs::fail_next`] makes the next operations of a kind fail
//! with an errno (`ENOSPC` on write, `EIO` on fsync, ...).
//!
//! It is reached by path: [`mount`] makes `SafeDir::open` of paths under a
//! prefix land here, for the calling thread only (the simulation runs one
//! seed per thread); nothing is mounted in production.

use crate::env::Clock;
use nix::errno::Errno;
use nix::sys::stat::{FileStat, SFlag};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A node (inode number).
pub type Ino = u64;

/// The kind of operation a fault can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Creating a file or directory.
    Create,
    /// Writing data.
    Write,
    /// `fsync` of a file or directory.
    Fsync,
    /// `syncfs`.
    Syncfs,
    /// `rename`.
    Rename,
}

#[derive(Debug, Clone)]
enum Kind {
    Dir(BTreeMap<String, Ino>),
    File(Vec<u8>),
    Link(String),
}

#[derive(Debug, Clone)]
struct Node {
    kind: Kind,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    mtime: i64,
    ctime: i64,
    /// Regular files: the contents a crash would leave (`None`: never synced).
    durable: Option<Vec<u8>>,
    /// Directories: the entries a crash may go back to.
    durable_entries: Option<BTreeMap<String, Ino>>,
}

#[derive(Debug, Default)]
struct State {
    nodes: HashMap<Ino, Node>,
    next: Ino,
    /// Directories and files changed since the last sync.
    dirty: HashSet<Ino>,
    faults: HashMap<Op, (Errno, u32)>,
    /// Nodes unlinked since the last collection.
    orphans: usize,
    /// Operations left before the host goes down (`None`: no crash planned).
    crash_in: Option<u64>,
    /// The host is down: every operation fails with `EIO` until [`SimFs::crash`].
    down: bool,
    /// Operations done, for the simulation's checks.
    counts: HashMap<Op, u64>,
}

/// An in-memory file system (see the module).
pub struct SimFs {
    state: Mutex<State>,
    clock: Clock,
    tick: Duration,
    root: Ino,
}

impl std::fmt::Debug for SimFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimFs")
    }
}

fn ns(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

impl SimFs {
    /// An empty file system whose root directory is owned by `uid:gid` with
    /// `mode`, stamping times from `clock` rounded down to `tick`.
    pub fn new(clock: Clock, tick: Duration, uid: u32, gid: u32, mode: u32) -> Arc<Self> {
        let fs = SimFs {
            state: Mutex::new(State {
                next: 2,
                ..State::default()
            }),
            clock,
            tick,
            root: 1,
        };
        let now = fs.stamp();
        fs.lock().nodes.insert(
            1,
            Node {
                kind: Kind::Dir(BTreeMap::new()),
                mode: SFlag::S_IFDIR.bits() | (mode & 0o7777),
                uid,
                gid,
                nlink: 2,
                mtime: now,
                ctime: now,
                durable: None,
                durable_entries: Some(BTreeMap::new()),
            },
        );
        Arc::new(fs)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The time now, rounded down to the tick.
    fn stamp(&self) -> i64 {
        let t = ns(self.clock.now());
        let tick = i64::try_from(self.tick.as_nanos()).unwrap_or(1).max(1);
        t - t.rem_euclid(tick)
    }

    /// The root directory.
    pub fn root(&self) -> Ino {
        self.root
    }

    /// The next `count` operations of kind `op` fail with `errno`.
    pub fn fail_next(&self, op: Op, errno: Errno, count: u32) {
        self.lock().faults.insert(op, (errno, count));
    }

    /// How many operations of kind `op` were done.
    pub fn count(&self, op: Op) -> u64 {
        self.lock().counts.get(&op).copied().unwrap_or(0)
    }

    /// The host goes down after `ops` more operations that change something
    /// (creates, writes, syncs, renames): from then on everything fails with
    /// `EIO` until [`SimFs::crash`] (the restart).
    pub fn crash_after(&self, ops: u64) {
        self.lock().crash_in = Some(ops);
    }

    /// Whether the host went down (see [`SimFs::crash_after`]).
    pub fn is_down(&self) -> bool {
        self.lock().down
    }

    /// Counts an operation, or fails it when a fault is set for it.
    fn enter(st: &mut State, op: Op) -> Result<(), Errno> {
        if st.down {
            return Err(Errno::EIO);
        }
        if let Some(left) = st.crash_in.as_mut() {
            if *left == 0 {
                st.down = true;
                st.crash_in = None;
                return Err(Errno::EIO);
            }
            *left -= 1;
        }
        if let Some((errno, left)) = st.faults.get_mut(&op)
            && *left > 0
        {
            *left -= 1;
            return Err(*errno);
        }
        *st.counts.entry(op).or_insert(0) += 1;
        Ok(())
    }

    /// A power cut: each directory with unsynced changes keeps them or goes
    /// back to its last synced entries (`keep` decides, per directory); each
    /// file goes back to its last synced contents (empty if never synced).
    pub fn crash(&self, mut keep: impl FnMut(Ino) -> bool) {
        let mut st = self.lock();
        st.down = false;
        st.crash_in = None;
        let dirty: Vec<Ino> = st.dirty.drain().collect();
        for ino in dirty {
            let Some(node) = st.nodes.get_mut(&ino) else {
                continue;
            };
            if let Kind::Dir(entries) = &mut node.kind
                && !keep(ino)
                && let Some(old) = &node.durable_entries
            {
                *entries = old.clone();
            }
        }
        for node in st.nodes.values_mut() {
            if let Kind::File(data) = &mut node.kind {
                *data = node.durable.clone().unwrap_or_default();
            }
        }
        Self::collect(&mut st, self.root);
    }

    /// Drops nodes no directory refers to any more, and fixes link counts.
    /// With `durable_too`, what a crash could bring back is kept as well.
    fn collect_reachable(st: &mut State, root: Ino, durable_too: bool) {
        let mut links: HashMap<Ino, u64> = HashMap::new();
        let mut todo = vec![root];
        links.insert(root, 1);
        while let Some(d) = todo.pop() {
            let children: Vec<Ino> = match st.nodes.get(&d) {
                Some(Node {
                    kind: Kind::Dir(e),
                    durable_entries,
                    ..
                }) => {
                    let mut c: Vec<Ino> = e.values().copied().collect();
                    if durable_too && let Some(old) = durable_entries {
                        c.extend(
                            old.values()
                                .copied()
                                .filter(|i| !e.values().any(|x| x == i)),
                        );
                    }
                    c
                }
                _ => continue,
            };
            for c in children {
                let n = links.entry(c).or_insert(0);
                *n += 1;
                if *n == 1 {
                    todo.push(c);
                }
            }
        }
        st.nodes.retain(|ino, _| links.contains_key(ino));
        if !durable_too {
            for (ino, node) in st.nodes.iter_mut() {
                node.nlink = links.get(ino).copied().unwrap_or(1);
            }
        }
    }

    /// Drops nodes no directory refers to, after a crash (link counts fixed).
    fn collect(st: &mut State, root: Ino) {
        Self::collect_reachable(st, root, false);
    }

    /// `fstat` of a node.
    pub fn stat(&self, ino: Ino) -> Result<FileStat, Errno> {
        let st = self.lock();
        let node = st.nodes.get(&ino).ok_or(Errno::ENOENT)?;
        Ok(file_stat(ino, node))
    }

    /// Looks up `name` in directory `dir` (no links followed).
    pub fn lookup(&self, dir: Ino, name: &str) -> Result<Ino, Errno> {
        let st = self.lock();
        match st.nodes.get(&dir).map(|n| &n.kind) {
            Some(Kind::Dir(e)) => e.get(name).copied().ok_or(Errno::ENOENT),
            Some(_) => Err(Errno::ENOTDIR),
            None => Err(Errno::ENOENT),
        }
    }

    /// `fstatat(.., AT_SYMLINK_NOFOLLOW)`.
    pub fn lstat(&self, dir: Ino, name: &str) -> Result<FileStat, Errno> {
        let ino = self.lookup(dir, name)?;
        self.stat(ino)
    }

    /// Opens `name` in `dir` without following a link: `want_dir` asks for a
    /// directory (`ENOTDIR` otherwise), else anything but a directory.
    pub fn open(&self, dir: Ino, name: &str, want_dir: bool) -> Result<Ino, Errno> {
        let ino = self.lookup(dir, name)?;
        let st = self.lock();
        match st.nodes.get(&ino).map(|n| &n.kind) {
            Some(Kind::Link(_)) => Err(Errno::ELOOP),
            Some(Kind::Dir(_)) if !want_dir => Err(Errno::EISDIR),
            Some(Kind::Dir(_)) => Ok(ino),
            Some(_) if want_dir => Err(Errno::ENOTDIR),
            Some(_) => Ok(ino),
            None => Err(Errno::ENOENT),
        }
    }

    /// Opens a directory by path relative to the root (`/`-separated
    /// components; links are not followed).
    pub fn open_path(&self, rel: &Path) -> Result<Ino, Errno> {
        let mut ino = self.root;
        for c in rel.components() {
            let name = c.as_os_str().to_str().ok_or(Errno::EINVAL)?;
            ino = self.open(ino, name, true)?;
        }
        Ok(ino)
    }

    fn new_node(&self, st: &mut State, kind: Kind, mode: u32) -> Ino {
        let now = self.stamp();
        let ino = st.next;
        st.next += 1;
        st.nodes.insert(
            ino,
            Node {
                kind,
                mode,
                uid: 0,
                gid: 0,
                nlink: 1,
                mtime: now,
                ctime: now,
                durable: None,
                durable_entries: None,
            },
        );
        st.dirty.insert(ino);
        ino
    }

    /// Links `ino` as `name` in `dir` (which must not hold it), stamping the directory.
    fn link(&self, st: &mut State, dir: Ino, name: &str, ino: Ino) -> Result<(), Errno> {
        let now = self.stamp();
        let d = st.nodes.get_mut(&dir).ok_or(Errno::ENOENT)?;
        let Kind::Dir(entries) = &mut d.kind else {
            return Err(Errno::ENOTDIR);
        };
        entries.insert(name.to_owned(), ino);
        d.mtime = now;
        d.ctime = now;
        st.dirty.insert(dir);
        Ok(())
    }

    /// `openat(O_CREAT | O_EXCL | O_NOFOLLOW)` of a regular file.
    pub fn create(&self, dir: Ino, name: &str, mode: u32) -> Result<Ino, Errno> {
        let mut st = self.lock();
        Self::enter(&mut st, Op::Create)?;
        match st.nodes.get(&dir).map(|n| &n.kind) {
            Some(Kind::Dir(e)) if e.contains_key(name) => return Err(Errno::EEXIST),
            Some(Kind::Dir(_)) => {}
            _ => return Err(Errno::ENOTDIR),
        }
        let ino = self.new_node(
            &mut st,
            Kind::File(Vec::new()),
            SFlag::S_IFREG.bits() | (mode & 0o7777),
        );
        self.link(&mut st, dir, name, ino)?;
        Ok(ino)
    }

    /// `mkdirat`.
    pub fn mkdir(&self, dir: Ino, name: &str, mode: u32) -> Result<Ino, Errno> {
        let mut st = self.lock();
        Self::enter(&mut st, Op::Create)?;
        match st.nodes.get(&dir).map(|n| &n.kind) {
            Some(Kind::Dir(e)) if e.contains_key(name) => return Err(Errno::EEXIST),
            Some(Kind::Dir(_)) => {}
            _ => return Err(Errno::ENOTDIR),
        }
        let ino = self.new_node(
            &mut st,
            Kind::Dir(BTreeMap::new()),
            SFlag::S_IFDIR.bits() | (mode & 0o7777),
        );
        if let Some(n) = st.nodes.get_mut(&ino) {
            n.nlink = 2;
            n.durable_entries = Some(BTreeMap::new());
        }
        self.link(&mut st, dir, name, ino)?;
        Ok(ino)
    }

    /// `symlinkat` (for planting links in tests).
    pub fn symlink(&self, dir: Ino, name: &str, target: &str) -> Result<Ino, Errno> {
        let mut st = self.lock();
        let ino = self.new_node(
            &mut st,
            Kind::Link(target.to_owned()),
            SFlag::S_IFLNK.bits() | 0o777,
        );
        self.link(&mut st, dir, name, ino)?;
        Ok(ino)
    }

    /// `fchown`.
    pub fn chown(&self, ino: Ino, uid: u32, gid: u32) -> Result<(), Errno> {
        let now = self.stamp();
        let mut st = self.lock();
        let n = st.nodes.get_mut(&ino).ok_or(Errno::ENOENT)?;
        n.uid = uid;
        n.gid = gid;
        n.ctime = now;
        Ok(())
    }

    /// `fchmod`.
    pub fn chmod(&self, ino: Ino, mode: u32) -> Result<(), Errno> {
        let now = self.stamp();
        let mut st = self.lock();
        let n = st.nodes.get_mut(&ino).ok_or(Errno::ENOENT)?;
        n.mode = (n.mode & !0o7777) | (mode & 0o7777);
        n.ctime = now;
        Ok(())
    }

    /// Appends `bytes` to a regular file.
    pub fn write(&self, ino: Ino, bytes: &[u8]) -> Result<(), Errno> {
        let now = self.stamp();
        let mut st = self.lock();
        Self::enter(&mut st, Op::Write)?;
        let n = st.nodes.get_mut(&ino).ok_or(Errno::ENOENT)?;
        let Kind::File(data) = &mut n.kind else {
            return Err(Errno::EISDIR);
        };
        data.extend_from_slice(bytes);
        n.mtime = now;
        n.ctime = now;
        st.dirty.insert(ino);
        Ok(())
    }

    /// The contents of a regular file.
    pub fn read(&self, ino: Ino) -> Result<Vec<u8>, Errno> {
        let st = self.lock();
        match st.nodes.get(&ino).map(|n| &n.kind) {
            Some(Kind::File(d)) => Ok(d.clone()),
            Some(_) => Err(Errno::EISDIR),
            None => Err(Errno::ENOENT),
        }
    }

    /// `fsync` of a file (its data) or a directory (its entries).
    pub fn fsync(&self, ino: Ino) -> Result<(), Errno> {
        let mut st = self.lock();
        Self::enter(&mut st, Op::Fsync)?;
        Self::sync_node(&mut st, ino);
        st.dirty.remove(&ino);
        Ok(())
    }

    fn sync_node(st: &mut State, ino: Ino) {
        if let Some(n) = st.nodes.get_mut(&ino) {
            match &n.kind {
                Kind::File(d) => n.durable = Some(d.clone()),
                Kind::Dir(e) => n.durable_entries = Some(e.clone()),
                Kind::Link(_) => {}
            }
        }
    }

    /// A journal commit (ext4 commits its journal every few seconds): every
    /// directory's entries become durable; file data stays as it was (only
    /// `fsync` or `syncfs` makes it durable).
    pub fn commit_metadata(&self) {
        let mut st = self.lock();
        let dirty: Vec<Ino> = st.dirty.iter().copied().collect();
        for ino in dirty {
            let is_dir = matches!(st.nodes.get(&ino).map(|n| &n.kind), Some(Kind::Dir(_)));
            if is_dir {
                Self::sync_node(&mut st, ino);
                st.dirty.remove(&ino);
            }
        }
    }

    /// `syncfs`: everything durable.
    pub fn syncfs(&self) -> Result<(), Errno> {
        let mut st = self.lock();
        Self::enter(&mut st, Op::Syncfs)?;
        let dirty: Vec<Ino> = st.dirty.drain().collect();
        for ino in dirty {
            Self::sync_node(&mut st, ino);
        }
        Ok(())
    }

    /// `renameat` within one directory: `from` replaces `to` (not a directory).
    pub fn rename(&self, dir: Ino, from: &str, to: &str) -> Result<(), Errno> {
        let now = self.stamp();
        let mut st = self.lock();
        Self::enter(&mut st, Op::Rename)?;
        let d = st.nodes.get_mut(&dir).ok_or(Errno::ENOENT)?;
        let Kind::Dir(entries) = &mut d.kind else {
            return Err(Errno::ENOTDIR);
        };
        let ino = *entries.get(from).ok_or(Errno::ENOENT)?;
        let old = entries.get(to).copied();
        entries.remove(from);
        entries.insert(to.to_owned(), ino);
        d.mtime = now;
        d.ctime = now;
        st.dirty.insert(dir);
        if let Some(n) = st.nodes.get_mut(&ino) {
            n.ctime = now;
        }
        if let Some(old) = old
            && old != ino
        {
            Self::unlinked(&mut st, old);
        }
        Ok(())
    }

    /// One link fewer. A node with none is kept while a crash could bring
    /// its directory entry back; [`SimFs::syncfs`] drops such nodes in bulk.
    fn unlinked(st: &mut State, ino: Ino) {
        if let Some(n) = st.nodes.get_mut(&ino) {
            n.nlink = n.nlink.saturating_sub(1);
            if n.nlink == 0 {
                st.orphans += 1;
            }
        }
        if st.orphans > 64 + st.nodes.len() / 2 {
            // Keep what a directory refers to now or could again after a crash.
            st.orphans = 0;
            Self::collect_reachable(st, 1, true);
        }
    }

    /// `unlinkat` of a non-directory.
    pub fn unlink(&self, dir: Ino, name: &str) -> Result<(), Errno> {
        let now = self.stamp();
        let mut st = self.lock();
        if st.down {
            return Err(Errno::EIO);
        }
        let d = st.nodes.get_mut(&dir).ok_or(Errno::ENOENT)?;
        let Kind::Dir(entries) = &mut d.kind else {
            return Err(Errno::ENOTDIR);
        };
        let ino = *entries.get(name).ok_or(Errno::ENOENT)?;
        entries.remove(name);
        d.mtime = now;
        d.ctime = now;
        st.dirty.insert(dir);
        Self::unlinked(&mut st, ino);
        Ok(())
    }

    /// The names in a directory.
    pub fn entries(&self, dir: Ino) -> Result<Vec<String>, Errno> {
        let st = self.lock();
        match st.nodes.get(&dir).map(|n| &n.kind) {
            Some(Kind::Dir(e)) => Ok(e.keys().cloned().collect()),
            Some(_) => Err(Errno::ENOTDIR),
            None => Err(Errno::ENOENT),
        }
    }

    /// Every regular file under the root with its path and contents (for
    /// the simulation's checks).
    pub fn files(&self) -> Vec<(String, Vec<u8>, FileStat)> {
        let st = self.lock();
        let mut out = Vec::new();
        let mut todo = vec![(String::new(), self.root)];
        while let Some((prefix, d)) = todo.pop() {
            let Some(Kind::Dir(entries)) = st.nodes.get(&d).map(|n| &n.kind) else {
                continue;
            };
            for (name, ino) in entries {
                let path = format!("{prefix}/{name}");
                match st.nodes.get(ino) {
                    Some(
                        n @ Node {
                            kind: Kind::File(data),
                            ..
                        },
                    ) => {
                        out.push((path, data.clone(), file_stat(*ino, n)));
                    }
                    Some(Node {
                        kind: Kind::Dir(_), ..
                    }) => todo.push((path, *ino)),
                    _ => {}
                }
            }
        }
        out
    }

    /// How many nodes exist (files, directories, links).
    pub fn node_count(&self) -> usize {
        self.lock().nodes.len()
    }
}

/// A `stat` result for a node.
fn file_stat(ino: Ino, n: &Node) -> FileStat {
    // SAFETY: `libc::stat` is plain old data; all zeroes is a valid value.
    let mut s: FileStat = unsafe { std::mem::zeroed() };
    s.st_ino = ino;
    s.st_dev = 0x5151;
    s.st_mode = n.mode;
    s.st_uid = n.uid;
    s.st_gid = n.gid;
    s.st_nlink = n.nlink;
    s.st_size = match &n.kind {
        Kind::File(d) => i64::try_from(d.len()).unwrap_or(i64::MAX),
        Kind::Link(t) => i64::try_from(t.len()).unwrap_or(i64::MAX),
        Kind::Dir(e) => i64::try_from(e.len()).unwrap_or(i64::MAX),
    };
    s.st_mtime = n.mtime.div_euclid(1_000_000_000);
    s.st_mtime_nsec = n.mtime.rem_euclid(1_000_000_000);
    s.st_ctime = n.ctime.div_euclid(1_000_000_000);
    s.st_ctime_nsec = n.ctime.rem_euclid(1_000_000_000);
    s
}

thread_local! {
    static MOUNTS: RefCell<Vec<(PathBuf, Arc<SimFs>)>> = const { RefCell::new(Vec::new()) };
}

/// Makes paths under `prefix` land on `fs` for this thread (until [`unmount_all`]).
pub fn mount(prefix: &Path, fs: Arc<SimFs>) {
    MOUNTS.with(|m| m.borrow_mut().push((prefix.to_owned(), fs)));
}

/// Removes this thread's mounts.
pub fn unmount_all() {
    MOUNTS.with(|m| m.borrow_mut().clear());
}

/// The simulated file system `path` is on, with the path inside it.
pub fn mounted(path: &Path) -> Option<(Arc<SimFs>, PathBuf)> {
    MOUNTS.with(|m| {
        let m = m.borrow();
        if m.is_empty() {
            return None;
        }
        m.iter().rev().find_map(|(prefix, fs)| {
            path.strip_prefix(prefix)
                .ok()
                .map(|rest| (fs.clone(), rest.to_owned()))
        })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fs() -> (Clock, Arc<SimFs>) {
        let clock = Clock::manual(UNIX_EPOCH + Duration::from_secs(1_000_000));
        let fs = SimFs::new(clock.clone(), Duration::from_millis(4), 0, 0, 0o755);
        (clock, fs)
    }

    #[test]
    fn unsynced_renames_and_data_may_be_lost_in_a_crash() {
        let (_, fs) = fs();
        let d = fs.mkdir(fs.root(), "u", 0o700).unwrap();
        let f = fs.create(d, "a.use", 0o400).unwrap();
        fs.write(f, b"old\n").unwrap();
        fs.syncfs().unwrap();
        // A new version written and renamed, never synced.
        let t = fs.create(d, ".tmp", 0o400).unwrap();
        fs.write(t, b"new\n").unwrap();
        fs.rename(d, ".tmp", "a.use").unwrap();
        // The directory keeps the rename but the data was never synced: empty.
        fs.crash(|_| true);
        let now = fs.open(d, "a.use", false).unwrap();
        assert_eq!(fs.read(now).unwrap(), b"");
    }

    #[test]
    fn synced_data_then_rename_survives_either_way() {
        let (_, fs) = fs();
        let d = fs.mkdir(fs.root(), "u", 0o700).unwrap();
        let f = fs.create(d, "a.use", 0o400).unwrap();
        fs.write(f, b"old\n").unwrap();
        fs.syncfs().unwrap();
        let t = fs.create(d, ".tmp", 0o400).unwrap();
        fs.write(t, b"new\n").unwrap();
        fs.syncfs().unwrap();
        fs.rename(d, ".tmp", "a.use").unwrap();
        assert!(
            fs.files()
                .iter()
                .any(|(p, d, _)| p == "/u/a.use" && d == b"new\n")
        );
        fs.crash(|_| false);
        let now = fs.open(d, "a.use", false).unwrap();
        assert_eq!(
            fs.read(now).unwrap(),
            b"old\n",
            "the rename was lost, the old file is whole"
        );
    }

    #[test]
    fn stamps_are_coarse_and_links_are_not_followed() {
        let (clock, fs) = fs();
        let d = fs.mkdir(fs.root(), "u", 0o700).unwrap();
        let s1 = fs.stat(d).unwrap();
        clock.advance(Duration::from_millis(1));
        fs.create(d, "x.top", 0o600).unwrap();
        let s2 = fs.stat(d).unwrap();
        assert_eq!(
            (s1.st_mtime, s1.st_mtime_nsec),
            (s2.st_mtime, s2.st_mtime_nsec),
            "same tick"
        );
        clock.advance(Duration::from_millis(4));
        fs.create(d, "y.top", 0o600).unwrap();
        assert_ne!(fs.stat(d).unwrap().st_mtime_nsec, s2.st_mtime_nsec);
        fs.symlink(d, "l", "/etc/shadow").unwrap();
        assert_eq!(fs.open(d, "l", false), Err(Errno::ELOOP));
        assert_eq!(fs.create(d, "x.top", 0o600), Err(Errno::EEXIST));
    }

    #[test]
    fn faults_fail_the_next_operations() {
        let (_, fs) = fs();
        let f = fs.create(fs.root(), "a", 0o600).unwrap();
        fs.fail_next(Op::Write, Errno::ENOSPC, 1);
        assert_eq!(fs.write(f, b"x"), Err(Errno::ENOSPC));
        assert_eq!(fs.write(f, b"x"), Ok(()));
    }
}
