//! The credential directory's own small file system (a tmpfs), and a
//! filler file that makes it full for a while.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted at a directory; unmounted (lazily) when dropped.
pub struct Tmpfs {
    at: PathBuf,
    filler: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `32m`) at `at` (created).
    pub fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).map_err(|e| format!("{}: {e}", at.display()))?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755")])
            .arg("tmpfs")
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!(
                "cannot mount a tmpfs at {} (run as root; `mount` from util-linux)",
                at.display()
            ));
        }
        Ok(Tmpfs {
            at: at.to_path_buf(),
            filler: at.join("filler"),
        })
    }

    /// Fills the file system: the filler grows until `ENOSPC`. Returns the
    /// bytes added.
    pub fn fill(&self) -> u64 {
        let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.filler)
        else {
            return 0;
        };
        let chunk = vec![0u8; 64 * 1024];
        let mut added = 0u64;
        // Bounded: the file system is 32 MiB.
        for _ in 0..100_000 {
            match f.write(&chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => added += n as u64,
            }
        }
        // The last pages too, a byte at a time.
        for _ in 0..65_536 {
            match f.write(&[0u8]) {
                Ok(1) => added += 1,
                _ => break,
            }
        }
        added
    }

    /// Frees the file system again.
    pub fn free(&self) {
        let _ = std::fs::remove_file(&self.filler);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}
