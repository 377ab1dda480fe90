//! Everything that touches token files on disk: the WLCG discovery rules,
//! directory-handle based safe reads and atomic writes that never follow
//! links, and advisory lock files.

pub mod discovery;
pub mod lock;
pub mod safe_dir;
pub mod simfs;
mod sys;
pub mod trust;

pub use lock::LockFile;
pub use safe_dir::{SafeDir, Staged, WriteOptions, commit_batch};

use std::path::{Path, PathBuf};

/// A file operation that failed, with the path it concerned.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// A system call failed.
    #[error("{action} '{path}': {source}")]
    Io {
        /// What we were doing, e.g. "cannot open".
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The path is a symbolic link and we refuse to follow it.
    #[error(
        "'{0}' is a symbolic link; refusing to use it (remove it, or choose another output file)"
    )]
    Symlink(PathBuf),
    /// The file is not a regular file (directory, fifo, device ...).
    #[error("'{0}' is not a regular file")]
    NotRegular(PathBuf),
    /// The file belongs to someone else.
    #[error(
        "'{path}' is owned by uid {owner}, not by uid {expected}; refusing to use it (remove it or choose another file)"
    )]
    WrongOwner {
        /// The file concerned.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Who should own it.
        expected: u32,
    },
    /// The file fails the trust rule ([`trust::check`]); never read.
    #[error("'{path}' {why}; refusing to trust it ({advice})")]
    Untrusted {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong.
        why: trust::Distrust,
        /// How to fix it.
        advice: String,
    },
    /// The file is larger than we are willing to read.
    #[error("'{path}' is larger than {limit} bytes")]
    TooLarge {
        /// The file concerned.
        path: PathBuf,
        /// The cap.
        limit: usize,
    },
    /// The file has more than one hard link, so it may be someone else's file.
    #[error("'{0}' has several hard links; refusing to use it")]
    HardLinked(PathBuf),
    /// Could not obtain a lock within the time limit.
    #[error(
        "timed out after {secs} s waiting for the lock '{path}' (another run{} is still working)",
        holder.map(|p| format!(", pid {p},")).unwrap_or_default()
    )]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long we waited.
        secs: u64,
        /// The holder's pid, when it wrote it into the lock file.
        holder: Option<u32>,
    },
    /// A name that would become a path component is not acceptable.
    #[error("invalid file name '{0}'")]
    BadName(String),
}

impl FileError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: impl Into<std::io::Error>,
    ) -> Self {
        FileError::Io {
            action,
            path: path.into(),
            source: source.into(),
        }
    }
}

/// Reads the regular file `path` (at most `limit` bytes) through its parent
/// directory, never following a link; `None` when it does not exist.
pub fn read_file(path: &Path, limit: usize) -> Result<Option<Vec<u8>>, FileError> {
    let (dir, name) = SafeDir::open_parent(path)?;
    Ok(dir.read(&name, limit, false)?.map(|(bytes, _)| bytes))
}

/// Like [`read_file`], but only a file that passes the trust rule for
/// `owner` ([`trust::check`], on the open descriptor).
pub fn read_trusted(path: &Path, limit: usize, owner: u32) -> Result<Option<Vec<u8>>, FileError> {
    let (dir, name) = SafeDir::open_parent(path)?;
    Ok(dir
        .read_trusted(&name, limit, owner)?
        .map(|(bytes, _)| bytes))
}

/// Replaces `path` atomically (see [`SafeDir::write_atomic`]).
pub fn write_file(path: &Path, contents: &[u8], opts: WriteOptions) -> Result<(), FileError> {
    let (dir, name) = SafeDir::open_parent(path)?;
    dir.write_atomic(&name, contents, opts)
}

/// Whether `name` is a single, plain path component (no `/`, NUL, `.`/`..`, newline).
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 255
        && !name
            .bytes()
            .any(|b| b == b'/' || b == 0 || b == b'\n' || b == b'\r')
}

#[cfg(test)]
mod tests {
    use super::is_plain_name;

    #[test]
    fn plain_names() {
        for (name, ok) in [
            ("alice", true),
            ("scitokens.use", true),
            ("a b", true),
            ("", false),
            (".", false),
            ("..", false),
            ("a/b", false),
            ("a\nb", false),
            ("a\0b", false),
        ] {
            assert_eq!(is_plain_name(name), ok, "{name:?}");
        }
        assert!(!is_plain_name(&"x".repeat(256)));
    }
}
