//! A private `/etc/hosts` for one thread and every process it starts, so a
//! test can give a name the addresses it wants (an HA cluster's three nodes,
//! a node that refuses connections, ...) while nothing on the host changes.
//!
//! [`with_private_hosts`] runs a closure on a new thread that first enters a
//! mount namespace of its own (`unshare(CLONE_NEWNS)`, which also gives the
//! thread its own filesystem attributes; other threads keep the host's),
//! makes every mount in it private (so nothing propagates back to the host),
//! and bind-mounts a file of ours over `/etc/hosts`: the same as
//! `unshare --mount` plus `mount --bind`. glibc reads `/etc/hosts` at every
//! look-up, so [`PrivateHosts::set`] takes effect at once for the thread and
//! for the processes it started (they share its namespace). Needs root
//! (`CAP_SYS_ADMIN`); fails with a message otherwise.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use std::io::{Seek, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The private hosts file of a thread in its own mount namespace.
pub struct PrivateHosts {
    file: PathBuf,
    base: String,
}

/// Runs `f` on a new thread whose `/etc/hosts` is a private copy of the
/// host's (kept in `dir`), and returns what `f` returned. A panic in `f` is
/// passed on.
pub fn with_private_hosts<T: Send>(
    dir: &Path,
    f: impl FnOnce(&PrivateHosts) -> T + Send,
) -> Result<T, String> {
    std::thread::scope(|s| {
        let handle = s.spawn(|| PrivateHosts::enter(dir).map(|h| f(&h)));
        match handle.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

impl PrivateHosts {
    /// Enters a new mount namespace on the calling thread and bind-mounts a
    /// copy of `/etc/hosts` (in `dir`) over it.
    fn enter(dir: &Path) -> Result<PrivateHosts, String> {
        let base = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        let file = dir.join("hosts");
        std::fs::write(&file, &base).map_err(|e| format!("{}: {e}", file.display()))?;
        unshare(CloneFlags::CLONE_NEWNS).map_err(|e| {
            format!("unshare(CLONE_NEWNS) failed ({e}): the HA tests need root (CAP_SYS_ADMIN) for a private /etc/hosts")
        })?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| format!("cannot make the mounts of the new namespace private: {e}"))?;
        mount(
            Some(&file),
            "/etc/hosts",
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("cannot bind-mount {} over /etc/hosts: {e}", file.display()))?;
        Ok(PrivateHosts { file, base })
    }

    /// Makes `name` resolve to `addrs` (in this order, as far as the
    /// resolver keeps it), replacing what was set before. The file is
    /// rewritten in place: the bind mount holds its inode.
    pub fn set(&self, name: &str, addrs: &[IpAddr]) {
        let mut text = self.base.clone();
        for a in addrs {
            text.push_str(&format!("{a} {name}\n"));
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.file)
            .unwrap_or_else(|e| panic!("{}: {e}", self.file.display()));
        f.set_len(0).unwrap();
        f.rewind().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f.sync_all().unwrap();
    }

    /// What the resolver now gives for `name` (IPv4, in its order).
    pub fn lookup(&self, name: &str) -> Vec<IpAddr> {
        use std::net::ToSocketAddrs;
        (name, 1)
            .to_socket_addrs()
            .map(|it| it.map(|a| a.ip()).filter(IpAddr::is_ipv4).collect())
            .unwrap_or_default()
    }
}
