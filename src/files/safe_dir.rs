//! A directory handle whose operations never follow symbolic links in the
//! last path component, so a process running as root can work inside
//! directories that other users can write to.

use super::sys::{Dir, File as SysFile};
use super::{FileError, is_plain_name};
use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Marker in the names of our temporary files, so leftovers can be recognised.
pub const TEMP_MARKER: &str = ".robot-credmon-tmp.";

/// How long a temporary file must have been left alone before it counts as
/// a leftover when no lock proves that its writer is gone (a write takes
/// milliseconds). Under the target's lock ([`super::LockFile`]) every
/// temporary file of ours is a leftover at once.
pub const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(120);

/// The temporary-file prefix of target `name`: `.<name>.robot-credmon-tmp.`.
fn temp_prefix(name: &str) -> String {
    let stem: String = name.chars().take(100).collect();
    format!(".{stem}{TEMP_MARKER}")
}

/// Whether `entry` (with status `st`, not following links) is a leftover
/// temporary file of `name`: our name pattern, a regular file of `owner`,
/// unmodified for at least `min_age` at `now` (zero under the target's lock).
pub fn is_stale_temp(
    entry: &str,
    name: &str,
    st: &FileStat,
    owner: u32,
    now: std::time::SystemTime,
    min_age: std::time::Duration,
) -> bool {
    let age = crate::token::unix_seconds(now).saturating_sub(st.st_mtime);
    entry.starts_with(&temp_prefix(name))
        && SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFREG
        && st.st_uid == owner
        && age >= i64::try_from(min_age.as_secs()).unwrap_or(i64::MAX)
}

/// An open directory; every operation is relative to it. On the operating
/// system's file system, or on the simulation's ([`super::simfs`]): the
/// rules are the same.
#[derive(Debug)]
pub struct SafeDir {
    dir: Dir,
    path: PathBuf,
}

/// How [`SafeDir::write_atomic`] treats the file it replaces.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// Permission bits of the new file.
    pub mode: u32,
    /// `(uid, gid)` to give the new file, when running as root.
    pub owner: Option<(u32, u32)>,
    /// Refuse to replace a file owned by a uid other than this one.
    pub existing_owner: Option<u32>,
    /// Replace a symbolic link at the target (the link itself, never its target)
    /// instead of refusing.
    pub replace_symlink: bool,
}

impl WriteOptions {
    /// A file of the user `uid` with permission bits `mode`: never written over
    /// a symbolic link or over a file that belongs to someone else.
    pub fn user_file(mode: u32, uid: u32) -> Self {
        Self {
            mode,
            owner: None,
            existing_owner: Some(uid),
            replace_symlink: false,
        }
    }
}

impl SafeDir {
    /// Opens a directory by path.
    pub fn open(path: &Path) -> Result<Self, FileError> {
        let dir =
            Dir::open_path(path).map_err(|e| FileError::io("cannot open directory", path, e))?;
        Ok(Self {
            dir,
            path: path.to_owned(),
        })
    }

    /// Opens the parent directory of `file` (`.` for a bare name) and returns it with the file name.
    pub fn open_parent(file: &Path) -> Result<(Self, String), FileError> {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| is_plain_name(n))
            .ok_or_else(|| FileError::BadName(file.display().to_string()))?
            .to_owned();
        let parent = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        Ok((Self::open(parent)?, name))
    }

    /// Opens a subdirectory without following a symbolic link.
    pub fn open_child(&self, name: &str) -> Result<Self, FileError> {
        let path = self.join(name)?;
        let dir = self.dir.open_dir(name).map_err(|e| match e {
            Errno::ELOOP => FileError::Symlink(path.clone()),
            e => FileError::io("cannot open directory", &path, e),
        })?;
        Ok(Self { dir, path })
    }

    /// Creates a subdirectory with `mode` (and `owner`, as root) and opens it without following links.
    pub fn create_dir(
        &self,
        name: &str,
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<Self, FileError> {
        let path = self.join(name)?;
        self.dir
            .mkdir(name, mode & 0o700)
            .map_err(|e| FileError::io("cannot create directory", &path, e))?;
        let dir = self.open_child(name)?;
        if let Some((uid, gid)) = owner {
            dir.dir
                .chown(uid, gid)
                .map_err(|e| FileError::io("cannot change the owner of", &path, e))?;
        }
        dir.dir
            .chmod(mode)
            .map_err(|e| FileError::io("cannot set the mode of", &path, e))?;
        Ok(dir)
    }

    /// The path this directory was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory's own status.
    pub fn stat_self(&self) -> Result<FileStat, FileError> {
        self.dir
            .fstat()
            .map_err(|e| FileError::io("cannot stat", &self.path, e))
    }

    /// Status of an entry without following links; `None` when it does not exist.
    pub fn stat(&self, name: &str) -> Result<Option<FileStat>, FileError> {
        let path = self.join(name)?;
        match self.dir.lstat(name) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(FileError::io("cannot stat", path, e)),
        }
    }

    /// Reads a regular file of at most `limit` bytes; `None` when it does not exist.
    ///
    /// Refuses symbolic links, non-regular files and, with `single_link`, files
    /// with more than one hard link.
    pub fn read(
        &self,
        name: &str,
        limit: usize,
        single_link: bool,
    ) -> Result<Option<(Vec<u8>, FileStat)>, FileError> {
        self.read_checked(name, limit, single_link, None)
    }

    /// Reads a state file that must pass the trust rule for `owner`
    /// ([`super::trust::check`], on the open descriptor, before reading) and
    /// have a single link; `None` when it does not exist.
    pub fn read_trusted(
        &self,
        name: &str,
        limit: usize,
        owner: u32,
    ) -> Result<Option<(Vec<u8>, FileStat)>, FileError> {
        self.read_checked(name, limit, true, Some(owner))
    }

    /// The refusal of a file that fails the trust rule, with advice.
    pub fn distrust(&self, name: &str, why: super::trust::Distrust) -> FileError {
        let shared = self
            .stat_self()
            .is_ok_and(|st| super::trust::is_shared_dir(&st));
        FileError::Untrusted {
            path: self.path.join(name),
            advice: super::trust::advice(&why, shared),
            why,
        }
    }

    fn read_checked(
        &self,
        name: &str,
        limit: usize,
        single_link: bool,
        owner: Option<u32>,
    ) -> Result<Option<(Vec<u8>, FileStat)>, FileError> {
        let path = self.join(name)?;
        let file = match self.dir.open_read(name) {
            Ok(f) => f,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => return Err(FileError::Symlink(path)),
            Err(e) => return Err(FileError::io("cannot open", path, e)),
        };
        let st = file
            .fstat()
            .map_err(|e| FileError::io("cannot stat", &path, e))?;
        if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
            return Err(FileError::NotRegular(path));
        }
        if let Some(owner) = owner
            && let Err(why) = super::trust::check(&st, owner)
        {
            return Err(self.distrust(name, why));
        }
        if single_link && st.st_nlink > 1 {
            return Err(FileError::HardLinked(path));
        }
        let size = usize::try_from(st.st_size).unwrap_or(usize::MAX);
        if size > limit {
            return Err(FileError::TooLarge { path, limit });
        }
        let buf = file
            .read_capped(limit)
            .map_err(|e| FileError::io("cannot read", &path, e))?;
        if buf.len() > limit {
            return Err(FileError::TooLarge { path, limit });
        }
        Ok(Some((buf, st)))
    }

    /// Replaces `name` with `contents`: exclusive temporary file in this
    /// directory, permissions and owner set before writing, fsync, rename over
    /// the target, fsync of the directory. The old file stays in place until
    /// the rename, and is never written through.
    pub fn write_atomic(
        &self,
        name: &str,
        contents: &[u8],
        opts: WriteOptions,
    ) -> Result<(), FileError> {
        self.write_via_temp(name, contents, &opts)?;
        self.sync_dir()
    }

    /// Like [`SafeDir::write_atomic`] (the file's data is synced before the
    /// rename, so the target is never partial), but without the sync of the
    /// directory: the caller makes the rename durable later, for a batch of
    /// writes at once, with [`SafeDir::sync_dir`] or [`SafeDir::sync_filesystem`].
    /// Until then a crash may undo the rename, leaving the previous file.
    pub fn write_atomic_deferred(
        &self,
        name: &str,
        contents: &[u8],
        opts: WriteOptions,
    ) -> Result<(), FileError> {
        self.write_via_temp(name, contents, &opts)
    }

    /// Writes `contents` to a new temporary file beside `name` (owner and
    /// mode set first) without syncing it; [`commit_batch`] makes a batch of
    /// them durable and renames them into place. The target is checked now
    /// and again at the rename.
    pub fn stage(
        &self,
        name: &str,
        contents: &[u8],
        opts: WriteOptions,
    ) -> Result<Staged, FileError> {
        let path = self.join(name)?;
        self.check_target(name, &path, &opts)?;
        let (tmp, fd) = self.create_temp(name, opts.mode)?;
        let filled = self.fill(&fd, &tmp, contents, &opts);
        if let Err(e) = filled {
            let _ = self.dir.unlink(&tmp);
            return Err(e);
        }
        Ok(Staged {
            tmp,
            name: name.to_owned(),
            opts,
            fd,
        })
    }

    /// Renames a staged file over its target (checked again: it may have
    /// been swapped for a link); the caller has made its data durable. The
    /// temporary file is removed when the rename is refused.
    fn rename_staged(&self, staged: &Staged) -> Result<(), FileError> {
        let path = self.join(&staged.name)?;
        let renamed = self
            .check_target(&staged.name, &path, &staged.opts)
            .and_then(|()| {
                self.dir
                    .rename(&staged.tmp, &staged.name)
                    .map_err(|e| FileError::io("cannot rename a temporary file onto", &path, e))
            });
        if renamed.is_err() {
            let _ = self.dir.unlink(&staged.tmp);
        }
        renamed
    }

    /// Removes a staged file that will not be committed.
    pub fn discard(&self, staged: Staged) {
        let _ = self.dir.unlink(&staged.tmp);
    }

    /// Temporary file, owner and mode, contents, fsync, rename over `name`;
    /// the temporary file is removed when any step fails.
    fn write_via_temp(
        &self,
        name: &str,
        contents: &[u8],
        opts: &WriteOptions,
    ) -> Result<(), FileError> {
        let path = self.join(name)?;
        self.check_target(name, &path, opts)?;
        let (tmp_name, fd) = self.create_temp(name, opts.mode)?;
        let result = self.fill_and_rename(&fd, &tmp_name, name, &path, contents, opts);
        if result.is_err() {
            // Best effort: the temporary file must not stay behind.
            let _ = self.dir.unlink(&tmp_name);
        }
        result
    }

    /// Syncs this directory: earlier renames in it survive a crash.
    pub fn sync_dir(&self) -> Result<(), FileError> {
        self.dir
            .fsync()
            .map_err(|e| FileError::io("cannot sync directory", &self.path, e))
    }

    /// Syncs the whole filesystem this directory is on (`syncfs`): every
    /// earlier rename on it survives a crash, for one system call.
    pub fn sync_filesystem(&self) -> Result<(), FileError> {
        self.dir
            .syncfs()
            .map_err(|e| FileError::io("cannot sync the filesystem of", &self.path, e))
    }

    /// Creates the empty file `name` with `mode` if it is missing (a marker
    /// such as `CREDMON_COMPLETE`: not synced, never truncated or written
    /// through a link; a link in its place is replaced).
    pub fn touch(&self, name: &str, mode: u32) -> Result<(), FileError> {
        let path = self.join(name)?;
        match self.dir.create_keep(name, mode) {
            Ok(()) => Ok(()),
            Err(Errno::ELOOP) => {
                self.remove(name)?;
                self.dir
                    .create_keep(name, mode)
                    .map_err(|e| FileError::io("cannot create", &path, e))
            }
            Err(e) => Err(FileError::io("cannot create", &path, e)),
        }
    }

    /// Removes an entry (a link is removed, never followed); `false` if it was absent.
    pub fn remove(&self, name: &str) -> Result<bool, FileError> {
        let path = self.join(name)?;
        match self.dir.unlink(name) {
            Ok(()) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(FileError::io("cannot remove", path, e)),
        }
    }

    /// Names of the entries in this directory (without `.` and `..`), unsorted.
    pub fn entries(&self) -> Result<Vec<String>, FileError> {
        self.dir
            .entries()
            .map_err(|e| FileError::io("cannot read directory", &self.path, e))
    }

    /// Removes temporary files a crashed earlier run of ours left here; returns how many.
    pub fn remove_stale_temps(&self) -> Result<usize, FileError> {
        let mut n = 0;
        for name in self.entries()? {
            if name.starts_with('.') && name.contains(TEMP_MARKER) && self.remove(&name)? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Removes the temporary files of `name` that a killed earlier run left:
    /// regular files named `.<name>.robot-credmon-tmp.*`, owned by `owner` and
    /// not modified for `min_age` at `now`. Under `name`'s lock `min_age` is
    /// zero (no writer of ours can be active); otherwise [`STALE_TEMP_AGE`],
    /// so never a file that another process may still be writing. Returns how
    /// many were removed.
    pub fn remove_stale_temps_of(
        &self,
        name: &str,
        owner: u32,
        now: std::time::SystemTime,
        min_age: std::time::Duration,
    ) -> Result<usize, FileError> {
        let mut n = 0;
        for entry in self.entries()? {
            if let Some(st) = self.stat(&entry)?
                && is_stale_temp(&entry, name, &st, owner, now, min_age)
                && self.remove(&entry)?
            {
                log::info!(
                    "removed {}, left by an interrupted run",
                    self.path.join(&entry).display()
                );
                n += 1;
            }
        }
        Ok(n)
    }

    /// The path of an entry, after checking that the name is one plain component.
    pub fn join(&self, name: &str) -> Result<PathBuf, FileError> {
        if is_plain_name(name) {
            Ok(self.path.join(name))
        } else {
            Err(FileError::BadName(name.to_owned()))
        }
    }

    /// Opens or creates a file for locking, never through a link. On the
    /// simulation's file system the file is made but there is nothing to
    /// lock (`None`): the simulation runs one thing at a time.
    pub(crate) fn open_lock(&self, name: &str) -> Result<(Option<File>, FileStat), FileError> {
        let path = self.join(name)?;
        let Some(dirfd) = self.dir.os() else {
            self.dir.create_keep(name, 0o600).map_err(|e| match e {
                Errno::ELOOP => FileError::Symlink(path.clone()),
                e => FileError::io("cannot open lock file", &path, e),
            })?;
            let st = self
                .stat(name)?
                .ok_or_else(|| FileError::io("cannot open lock file", &path, Errno::ENOENT))?;
            return Ok((None, st));
        };
        let fd = openat(
            dirfd,
            name,
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| match e {
            Errno::ELOOP => FileError::Symlink(path.clone()),
            e => FileError::io("cannot open lock file", &path, e),
        })?;
        let st = fstat(&fd).map_err(|e| FileError::io("cannot stat", &path, e))?;
        if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
            return Err(FileError::NotRegular(path));
        }
        Ok((Some(File::from(fd)), st))
    }

    fn check_target(&self, name: &str, path: &Path, opts: &WriteOptions) -> Result<(), FileError> {
        let Some(st) = self.stat(name)? else {
            return Ok(());
        };
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        if kind == SFlag::S_IFLNK {
            return if opts.replace_symlink {
                Ok(())
            } else {
                Err(FileError::Symlink(path.to_owned()))
            };
        }
        if kind != SFlag::S_IFREG {
            return Err(FileError::NotRegular(path.to_owned()));
        }
        match opts.existing_owner {
            Some(expected) if st.st_uid != expected => Err(FileError::WrongOwner {
                path: path.to_owned(),
                owner: st.st_uid,
                expected,
            }),
            _ => Ok(()),
        }
    }

    fn create_temp(&self, name: &str, mode: u32) -> Result<(String, SysFile), FileError> {
        let prefix = temp_prefix(name);
        for _ in 0..16 {
            let tmp = format!("{prefix}{:016x}", fastrand::u64(..));
            match self.dir.create_excl(&tmp, mode & 0o600) {
                Ok(fd) => return Ok((tmp, fd)),
                Err(Errno::EEXIST) => continue,
                Err(e) => {
                    return Err(FileError::io(
                        "cannot create a temporary file in",
                        &self.path,
                        e,
                    ));
                }
            }
        }
        Err(FileError::io(
            "cannot create a temporary file in",
            &self.path,
            std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        ))
    }

    fn fill_and_rename(
        &self,
        fd: &SysFile,
        tmp: &str,
        name: &str,
        path: &Path,
        contents: &[u8],
        opts: &WriteOptions,
    ) -> Result<(), FileError> {
        let tmp_path = self.path.join(tmp);
        self.fill(fd, tmp, contents, opts)?;
        fd.fsync()
            .map_err(|e| FileError::io("cannot sync", &tmp_path, e))?;
        // The target may have been swapped for a link since the first check.
        self.check_target(name, path, opts)?;
        self.dir
            .rename(tmp, name)
            .map_err(|e| FileError::io("cannot rename a temporary file onto", path, e))
    }

    /// Owner and mode, then the contents, of a new temporary file (not synced).
    fn fill(
        &self,
        fd: &SysFile,
        tmp: &str,
        contents: &[u8],
        opts: &WriteOptions,
    ) -> Result<(), FileError> {
        let tmp_path = self.path.join(tmp);
        if let Some((uid, gid)) = opts.owner {
            fd.chown(uid, gid)
                .map_err(|e| FileError::io("cannot change the owner of", &tmp_path, e))?;
        }
        fd.chmod(opts.mode)
            .map_err(|e| FileError::io("cannot set the mode of", &tmp_path, e))?;
        fd.write_all(contents)
            .map_err(|e| FileError::io("cannot write", &tmp_path, e))
    }
}

/// A file written beside its target by [`SafeDir::stage`], not yet synced
/// nor renamed.
#[derive(Debug)]
pub struct Staged {
    tmp: String,
    name: String,
    opts: WriteOptions,
    fd: SysFile,
}

impl Staged {
    /// The target's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Makes a batch of staged files durable and renames each over its target,
/// then makes the renames durable: a crash leaves every target either as it
/// was or complete, never partial, and a target reported written here
/// survives one. A batch of one is synced on its own (`fsync` of the file,
/// rename, `fsync` of its directory); a larger one with one `syncfs` of
/// `fs` (any directory on the same filesystem) before the renames and one
/// after. Returns each file's result, in order; a file that fails is
/// removed and its target left as it was.
pub fn commit_batch(fs: &SafeDir, batch: Vec<(&SafeDir, Staged)>) -> Vec<Result<(), FileError>> {
    if let [(dir, staged)] = batch.as_slice() {
        let tmp_path = dir.path.join(&staged.tmp);
        let one = staged
            .fd
            .fsync()
            .map_err(|e| FileError::io("cannot sync", &tmp_path, e))
            .and_then(|()| dir.rename_staged(staged))
            .and_then(|()| dir.sync_dir());
        if one.is_err() {
            let _ = dir.dir.unlink(&staged.tmp);
        }
        return vec![one];
    }
    if let Err(e) = fs.sync_filesystem() {
        let msg = e.to_string();
        return batch
            .into_iter()
            .map(|(dir, staged)| {
                dir.discard(staged);
                Err(FileError::io(
                    "cannot sync",
                    &dir.path,
                    std::io::Error::other(msg.clone()),
                ))
            })
            .collect();
    }
    let results: Vec<_> = batch
        .iter()
        .map(|(dir, staged)| dir.rename_staged(staged))
        .collect();
    if results.iter().any(Result::is_ok)
        && let Err(e) = fs.sync_filesystem()
    {
        // The renames happened but may not survive a crash: report none as written.
        let msg = e.to_string();
        return results
            .into_iter()
            .map(|_| {
                Err(FileError::io(
                    "cannot sync",
                    &fs.path,
                    std::io::Error::other(msg.clone()),
                ))
            })
            .collect();
    }
    results
}

#[cfg(test)]
mod tests;
