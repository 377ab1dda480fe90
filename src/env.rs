//! What the roles read from the process, injected: environment variables,
//! the effective uid and the clock. `main` takes one snapshot with
//! [`Env::process`] after its own environment changes; tests build one with
//! [`Env::fixed`] instead of changing the process.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::sync::Arc;
use std::time::SystemTime;

/// A snapshot of the process's environment, effective uid and clock.
#[derive(Debug, Clone)]
pub struct Env {
    vars: Arc<BTreeMap<String, String>>,
    euid: u32,
    clock: Option<SystemTime>,
}

impl Env {
    /// The process's variables (those that are valid UTF-8), effective uid and the system clock.
    pub fn process() -> Self {
        Env {
            vars: Arc::new(
                std::env::vars_os()
                    .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                    .collect(),
            ),
            euid: nix::unistd::geteuid().as_raw(),
            clock: None,
        }
    }

    /// A made-up environment for tests: these variables, this uid, a clock stopped at `now`.
    pub fn fixed<K, V>(vars: impl IntoIterator<Item = (K, V)>, euid: u32, now: SystemTime) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        Env {
            vars: Arc::new(
                vars.into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
            euid,
            clock: Some(now),
        }
    }

    /// A variable's value (`None` when unset).
    pub fn var(&self, key: &str) -> Option<String> {
        self.vars.get(key).cloned()
    }

    /// Every variable, sorted by name.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `$PATH`, the search path for programs the roles run.
    pub fn path_var(&self) -> Option<OsString> {
        self.vars.get("PATH").map(OsString::from)
    }

    /// The effective uid.
    pub fn euid(&self) -> u32 {
        self.euid
    }

    /// Whether we run as root.
    pub fn is_root(&self) -> bool {
        self.euid == 0
    }

    /// The current time (fixed in tests).
    pub fn now(&self) -> SystemTime {
        self.clock.unwrap_or_else(SystemTime::now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn fixed_environment() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let e = Env::fixed([("PATH", "/bin"), ("HOME", "/h")], 0, now);
        assert_eq!(e.var("HOME").as_deref(), Some("/h"));
        assert_eq!(e.var("USER"), None);
        assert_eq!(e.path_var(), Some(OsString::from("/bin")));
        assert!(e.is_root());
        assert_eq!(e.now(), now);
        assert_eq!(e.vars().count(), 2);
    }

    #[test]
    fn process_environment() {
        let e = Env::process();
        assert_eq!(e.euid(), nix::unistd::geteuid().as_raw());
        assert!(e.now() >= UNIX_EPOCH);
    }
}
