//! A credd simulator: stores Vault credentials the way HTCondor's credd does
//! (`OAUTH_STORE_CRED`): a per-user directory owned by the condor user (here
//! another uid), `<name>.top` written as root, mode 0600, through
//! `<name>.top.tmp` + rename; reads the credmon's `pid` file and sends SIGHUP.
//!
//! The cred dir is created as root, mode 02770, like condor_master does.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use crate::support::wait;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// The uid that owns user directories (HTCondor: the condor user).
pub const CONDOR_UID: u32 = 4242;

/// A simulated credd for one credential directory.
pub struct Credd {
    pub dir: PathBuf,
}

impl Credd {
    /// Creates `dir` (mode 02770) for the credmon.
    pub fn new(dir: &Path) -> Credd {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o2770)
            .create(dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o2770)).unwrap();
        Credd {
            dir: dir.to_path_buf(),
        }
    }

    /// `<dir>/<user>`, created like the credd does: mode 0700, owned by [`CONDOR_UID`].
    pub fn user_dir(&self, user: &str) -> PathBuf {
        let d = self.dir.join(user);
        if !d.exists() {
            std::fs::DirBuilder::new().mode(0o700).create(&d).unwrap();
            std::os::unix::fs::chown(&d, Some(CONDOR_UID), Some(CONDOR_UID)).unwrap();
        }
        d
    }

    /// Stores `contents` as `<user>/<name>.top`: `.top.tmp` (root, 0600) then rename.
    pub fn store(&self, user: &str, name: &str, contents: &str) {
        let d = self.user_dir(user);
        let tmp = d.join(format!("{name}.top.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .unwrap();
        f.write_all(contents.as_bytes()).unwrap();
        f.sync_all().unwrap();
        std::fs::rename(&tmp, d.join(format!("{name}.top"))).unwrap();
    }

    /// A Vault `.top` as the storer writes it.
    pub fn vault_top(token: Option<&str>, url: &str) -> String {
        match token {
            Some(t) => serde_json::json!({"vault_token": t, "vault_url": url}).to_string(),
            None => serde_json::json!({"vault_url": url}).to_string(),
        }
    }

    /// Stores a credential and wakes the credmon, as the credd does when no `.use` exists.
    pub fn store_and_kick(&self, user: &str, name: &str, contents: &str) {
        self.store(user, name, contents);
        if !self.use_path(user, name).exists() {
            self.kick();
        }
    }

    /// The pid in the `pid` file.
    pub fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Sends SIGHUP to the pid in the `pid` file (`credmon_kick`).
    pub fn kick(&self) {
        let pid = self.pid().expect("no readable pid file to signal");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap();
    }

    pub fn top_path(&self, user: &str, name: &str) -> PathBuf {
        self.dir.join(user).join(format!("{name}.top"))
    }

    pub fn use_path(&self, user: &str, name: &str) -> PathBuf {
        self.dir.join(user).join(format!("{name}.use"))
    }

    /// The `.use` contents, if present.
    pub fn read_use(&self, user: &str, name: &str) -> Option<String> {
        std::fs::read_to_string(self.use_path(user, name)).ok()
    }

    /// Waits (bounded) for `.use` to exist; returns how long it took.
    pub fn wait_for_use(&self, user: &str, name: &str, timeout: Duration) -> Option<Duration> {
        let t0 = Instant::now();
        let p = self.use_path(user, name);
        wait::until(timeout, || p.exists()).then(|| t0.elapsed())
    }

    /// Waits (bounded) for `.use` to hold something other than `old`.
    pub fn wait_for_change(
        &self,
        user: &str,
        name: &str,
        old: &str,
        timeout: Duration,
    ) -> Option<String> {
        let mut new = None;
        wait::until(timeout, || {
            new = self.read_use(user, name).filter(|now| now != old);
            new.is_some()
        });
        new
    }

    /// Waits (bounded) for `path` to exist.
    pub fn wait_for_file(path: &Path, timeout: Duration) -> bool {
        wait::until(timeout, || path.exists())
    }

    /// mtime of a file.
    pub fn mtime(path: &Path) -> Option<SystemTime> {
        std::fs::metadata(path).ok()?.modified().ok()
    }
}
