//! The one file-trust rule for state we read back (token files, Vault token
//! files, the storer's state, lock files, the credd's `.top` and `.use`): we
//! read only what we would be willing to write. The file must be a regular
//! file owned by the expected user (the effective user; root for the credd's
//! files) that neither group nor others can write, opened without following
//! links and checked on the open descriptor.

use nix::sys::stat::{FileStat, SFlag};

/// Why a file fails the trust rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Distrust {
    /// Owned by someone else: possibly planted by another user.
    #[error("is owned by uid {owner}, not by uid {expected}")]
    Owner {
        /// The file's owner.
        owner: u32,
        /// The owner it must have.
        expected: u32,
    },
    /// Group or others may write it.
    #[error("is writable by its group or by others (mode {mode:04o})")]
    Writable {
        /// The permission bits.
        mode: u32,
    },
    /// Not a regular file.
    #[error("is not a regular file")]
    NotRegular,
}

/// Checks the status of an open file against the rule, for owner `expected`.
pub fn check(st: &FileStat, expected: u32) -> Result<(), Distrust> {
    if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
        return Err(Distrust::NotRegular);
    }
    if st.st_uid != expected {
        return Err(Distrust::Owner {
            owner: st.st_uid,
            expected,
        });
    }
    let mode = st.st_mode & 0o7777;
    if mode & 0o022 != 0 {
        return Err(Distrust::Writable { mode });
    }
    Ok(())
}

/// Whether a directory's status shows it is shared with other users
/// (writable by others, like `/tmp`), so a private path should be suggested.
pub fn is_shared_dir(st: &FileStat) -> bool {
    st.st_mode & 0o002 != 0
}

/// The advice that goes with a refused file.
pub fn advice(why: &Distrust, shared_dir: bool) -> String {
    let fix = match why {
        Distrust::Owner { .. } => {
            "another user may have planted it: have it removed (by its owner or root)"
        }
        Distrust::Writable { .. } => "others could have changed it: remove it",
        Distrust::NotRegular => "remove it",
    };
    if shared_dir {
        format!(
            "{fix}, and keep the file in a private directory instead of a shared one such as /tmp (set XDG_RUNTIME_DIR, or give --outfile/--vaulttokenfile under your home directory)"
        )
    } else {
        format!("{fix}, or choose another file")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(kind: SFlag, mode: u32, uid: u32) -> FileStat {
        // FileStat has private padding fields: start from a real one.
        let mut st = nix::sys::stat::stat("/").unwrap_or_else(|e| panic!("{e}"));
        st.st_mode = kind.bits() | mode;
        st.st_uid = uid;
        st
    }

    #[test]
    fn trust_table() {
        // (kind, mode, owner, expected owner, verdict)
        let cases = [
            (SFlag::S_IFREG, 0o600, 1000, 1000, Ok(())),
            (SFlag::S_IFREG, 0o644, 1000, 1000, Ok(())),
            (SFlag::S_IFREG, 0o400, 0, 0, Ok(())),
            (
                SFlag::S_IFREG,
                0o600,
                1001,
                1000,
                Err(Distrust::Owner {
                    owner: 1001,
                    expected: 1000,
                }),
            ),
            (
                SFlag::S_IFREG,
                0o600,
                0,
                1000,
                Err(Distrust::Owner {
                    owner: 0,
                    expected: 1000,
                }),
            ),
            (
                SFlag::S_IFREG,
                0o620,
                1000,
                1000,
                Err(Distrust::Writable { mode: 0o620 }),
            ),
            (
                SFlag::S_IFREG,
                0o602,
                1000,
                1000,
                Err(Distrust::Writable { mode: 0o602 }),
            ),
            (SFlag::S_IFDIR, 0o700, 1000, 1000, Err(Distrust::NotRegular)),
            (SFlag::S_IFIFO, 0o600, 1000, 1000, Err(Distrust::NotRegular)),
        ];
        for (kind, mode, uid, expected, want) in cases {
            assert_eq!(
                check(&stat(kind, mode, uid), expected),
                want,
                "{kind:?} {mode:o} {uid}"
            );
        }
    }

    #[test]
    fn advice_suggests_a_private_path_for_shared_dirs() {
        let why = Distrust::Owner {
            owner: 1,
            expected: 2,
        };
        assert!(advice(&why, true).contains("XDG_RUNTIME_DIR"));
        assert!(!advice(&why, false).contains("XDG_RUNTIME_DIR"));
        assert!(is_shared_dir(&stat(SFlag::S_IFDIR, 0o1777, 0)));
        assert!(!is_shared_dir(&stat(SFlag::S_IFDIR, 0o755, 0)));
    }
}
