//! The system calls beneath [`super::SafeDir`], for two backends: the
//! operating system (directory and file descriptors; `openat` and friends
//! with `O_NOFOLLOW`) and the simulation's in-memory file system
//! ([`super::simfs`]). Each primitive does one call; every rule (links
//! refused, owners checked, sizes capped, temporary names) stays in
//! `SafeDir`, the same for both.

use super::simfs::{Ino, SimFs};
use nix::dir::Dir as NixDir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{FileStat, Mode, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fsync, unlinkat};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

/// An open directory.
#[derive(Debug)]
pub enum Dir {
    /// A directory descriptor.
    Os(OwnedFd),
    /// A directory of a simulated file system.
    Sim(Arc<SimFs>, Ino),
}

/// An open regular file.
#[derive(Debug)]
pub enum File {
    /// A file descriptor.
    Os(OwnedFd),
    /// A file of a simulated file system.
    Sim(Arc<SimFs>, Ino),
}

impl Dir {
    /// Opens a directory by path (the simulation's when `path` is mounted there).
    pub fn open_path(path: &Path) -> Result<Dir, Errno> {
        if let Some((fs, rel)) = super::simfs::mounted(path) {
            let ino = fs.open_path(&rel)?;
            return Ok(Dir::Sim(fs, ino));
        }
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Dir::Os(fd))
    }

    /// Opens a subdirectory, never through a link (`ELOOP`).
    pub fn open_dir(&self, name: &str) -> Result<Dir, Errno> {
        match self {
            Dir::Os(fd) => openat(
                fd,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map(Dir::Os),
            Dir::Sim(fs, ino) => fs.open(*ino, name, true).map(|i| Dir::Sim(fs.clone(), i)),
        }
    }

    /// `mkdirat` with `mode` (only the owner's bits, as the caller sets the rest later).
    pub fn mkdir(&self, name: &str, mode: u32) -> Result<(), Errno> {
        match self {
            Dir::Os(fd) => mkdirat(fd, name, Mode::from_bits_truncate(mode)),
            Dir::Sim(fs, ino) => fs.mkdir(*ino, name, mode).map(drop),
        }
    }

    /// The directory's own status.
    pub fn fstat(&self) -> Result<FileStat, Errno> {
        match self {
            Dir::Os(fd) => fstat(fd),
            Dir::Sim(fs, ino) => fs.stat(*ino),
        }
    }

    /// Status of an entry, not following a link.
    pub fn lstat(&self, name: &str) -> Result<FileStat, Errno> {
        match self {
            Dir::Os(fd) => fstatat(fd, name, AtFlags::AT_SYMLINK_NOFOLLOW),
            Dir::Sim(fs, ino) => fs.lstat(*ino, name),
        }
    }

    /// Opens an entry for reading, never through a link (`ELOOP`), never
    /// blocking on a fifo.
    pub fn open_read(&self, name: &str) -> Result<File, Errno> {
        match self {
            Dir::Os(fd) => openat(
                fd,
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map(File::Os),
            Dir::Sim(fs, ino) => fs.open(*ino, name, false).map(|i| File::Sim(fs.clone(), i)),
        }
    }

    /// Creates a new file (`O_EXCL`, never through a link) with `mode`.
    pub fn create_excl(&self, name: &str, mode: u32) -> Result<File, Errno> {
        match self {
            Dir::Os(fd) => openat(
                fd,
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(mode),
            )
            .map(File::Os),
            Dir::Sim(fs, ino) => fs
                .create(*ino, name, mode)
                .map(|i| File::Sim(fs.clone(), i)),
        }
    }

    /// Creates `name` if missing, keeping an existing file as it is (never
    /// through a link: `ELOOP`; never blocking on a fifo).
    pub fn create_keep(&self, name: &str, mode: u32) -> Result<(), Errno> {
        match self {
            Dir::Os(fd) => openat(
                fd,
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_NONBLOCK
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(mode),
            )
            .map(drop),
            Dir::Sim(fs, ino) => match fs.open(*ino, name, false) {
                Ok(_) => Ok(()),
                Err(Errno::ENOENT) => fs.create(*ino, name, mode).map(drop),
                Err(e) => Err(e),
            },
        }
    }

    /// Renames `from` over `to`, both in this directory.
    pub fn rename(&self, from: &str, to: &str) -> Result<(), Errno> {
        match self {
            Dir::Os(fd) => renameat(fd, from, fd, to),
            Dir::Sim(fs, ino) => fs.rename(*ino, from, to),
        }
    }

    /// Removes an entry that is not a directory.
    pub fn unlink(&self, name: &str) -> Result<(), Errno> {
        match self {
            Dir::Os(fd) => unlinkat(fd, name, UnlinkatFlags::NoRemoveDir),
            Dir::Sim(fs, ino) => fs.unlink(*ino, name),
        }
    }

    /// `fsync` of the directory: its entries survive a crash.
    pub fn fsync(&self) -> Result<(), Errno> {
        match self {
            Dir::Os(fd) => fsync(fd.as_fd()),
            Dir::Sim(fs, ino) => fs.fsync(*ino),
        }
    }

    /// `syncfs` of the file system the directory is on.
    pub fn syncfs(&self) -> Result<(), Errno> {
        match self {
            Dir::Os(fd) => nix::unistd::syncfs(fd.as_fd()),
            Dir::Sim(fs, _) => fs.syncfs(),
        }
    }

    /// The names of the entries (without `.` and `..`) that are valid UTF-8.
    pub fn entries(&self) -> Result<Vec<String>, Errno> {
        match self {
            Dir::Os(fd) => {
                let dup = fd
                    .try_clone()
                    .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(nix::libc::EBADF)))?;
                let mut dir = NixDir::from_fd(dup)?;
                let mut out = Vec::new();
                for entry in dir.iter() {
                    let entry = entry?;
                    if let Ok(n) = entry.file_name().to_str()
                        && n != "."
                        && n != ".."
                    {
                        out.push(n.to_owned());
                    }
                }
                Ok(out)
            }
            Dir::Sim(fs, ino) => fs.entries(*ino),
        }
    }

    /// `fchown` of the directory.
    pub fn chown(&self, uid: u32, gid: u32) -> Result<(), Errno> {
        match self {
            Dir::Os(fd) => fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))),
            Dir::Sim(fs, ino) => fs.chown(*ino, uid, gid),
        }
    }

    /// `fchmod` of the directory.
    pub fn chmod(&self, mode: u32) -> Result<(), Errno> {
        match self {
            Dir::Os(fd) => fchmod(fd, Mode::from_bits_truncate(mode)),
            Dir::Sim(fs, ino) => fs.chmod(*ino, mode),
        }
    }

    /// The descriptor, when this is the operating system's directory.
    pub fn os(&self) -> Option<&OwnedFd> {
        match self {
            Dir::Os(fd) => Some(fd),
            Dir::Sim(..) => None,
        }
    }
}

impl File {
    /// The file's status.
    pub fn fstat(&self) -> Result<FileStat, Errno> {
        match self {
            File::Os(fd) => fstat(fd),
            File::Sim(fs, ino) => fs.stat(*ino),
        }
    }

    /// `fchown`.
    pub fn chown(&self, uid: u32, gid: u32) -> Result<(), Errno> {
        match self {
            File::Os(fd) => fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))),
            File::Sim(fs, ino) => fs.chown(*ino, uid, gid),
        }
    }

    /// `fchmod`.
    pub fn chmod(&self, mode: u32) -> Result<(), Errno> {
        match self {
            File::Os(fd) => fchmod(fd, Mode::from_bits_truncate(mode)),
            File::Sim(fs, ino) => fs.chmod(*ino, mode),
        }
    }

    /// Writes all of `bytes`.
    pub fn write_all(&self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            File::Os(fd) => std::fs::File::from(fd.try_clone()?).write_all(bytes),
            File::Sim(fs, ino) => fs.write(*ino, bytes).map_err(std::io::Error::from),
        }
    }

    /// Reads at most `limit + 1` bytes (one more than allowed tells that the
    /// file is too large).
    pub fn read_capped(self, limit: usize) -> std::io::Result<Vec<u8>> {
        match self {
            File::Os(fd) => {
                let mut buf = Vec::new();
                std::fs::File::from(fd)
                    .take(limit as u64 + 1)
                    .read_to_end(&mut buf)?;
                Ok(buf)
            }
            File::Sim(fs, ino) => {
                let mut data = fs.read(ino).map_err(std::io::Error::from)?;
                data.truncate(limit + 1);
                Ok(data)
            }
        }
    }

    /// `fsync`: the data survives a crash.
    pub fn fsync(&self) -> Result<(), Errno> {
        match self {
            File::Os(fd) => fsync(fd.as_fd()),
            File::Sim(fs, ino) => fs.fsync(*ino),
        }
    }
}
