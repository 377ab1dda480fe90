//! The seam between the program and the outside world: what the roles read
//! from the process (environment variables, the command line, the effective
//! uid) and time (the wall clock, a monotonic clock, sleeps and waits, in
//! [`clock`]). `main` takes one snapshot with [`Env::process`]; tests and
//! the simulation build one with [`Env::fixed`] or [`Env::with_clock`]
//! instead of changing the process.
//!
//! Nothing outside this module reads `std::env`, the clocks or sleeps
//! (`clippy.toml` bans those calls; the few real ones carry a reason).

pub mod clock;

pub use clock::{Clock, Mono};

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A snapshot of the process's variables, command line and effective uid,
/// with the clock everyone reads.
#[derive(Debug, Clone)]
pub struct Env {
    vars: Arc<BTreeMap<String, String>>,
    args: Arc<Vec<OsString>>,
    euid: u32,
    clock: Clock,
    /// Seed of the random numbers the roles draw (jitter); `None`: from the system.
    seed: Option<u64>,
}

impl Env {
    /// The process's variables (those that are valid UTF-8), command line,
    /// effective uid and the system clock.
    pub fn process() -> Self {
        #[allow(clippy::disallowed_methods)] // the seam itself: the one read of the process
        let (vars, args) = (std::env::vars_os(), std::env::args_os());
        Env {
            vars: Arc::new(
                vars.filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                    .collect(),
            ),
            args: Arc::new(args.collect()),
            euid: nix::unistd::geteuid().as_raw(),
            clock: Clock::system(),
            seed: None,
        }
    }

    /// A made-up environment for tests: these variables, this uid, virtual
    /// time stopped at wall time `now`.
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
            args: Arc::new(Vec::new()),
            euid,
            clock: Clock::manual(now),
            seed: Some(0),
        }
    }

    /// The same environment drawing its random numbers from `seed`.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// A source of random numbers (jitter): seeded when the environment is,
    /// so that a simulated run replays exactly.
    pub fn rng(&self) -> fastrand::Rng {
        match self.seed {
            Some(s) => fastrand::Rng::with_seed(s),
            None => fastrand::Rng::new(),
        }
    }

    /// The same environment reading time from `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same environment with `key` set to `value` (`None`: removed).
    pub fn with_var(mut self, key: &str, value: Option<&str>) -> Self {
        let vars = Arc::make_mut(&mut self.vars);
        match value {
            Some(v) => vars.insert(key.to_owned(), v.to_owned()),
            None => vars.remove(key),
        };
        self
    }

    /// The same environment with this command line.
    pub fn with_args(mut self, args: Vec<OsString>) -> Self {
        self.args = Arc::new(args);
        self
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

    /// The command line, program name first.
    pub fn args(&self) -> &[OsString] {
        &self.args
    }

    /// The effective uid.
    pub fn euid(&self) -> u32 {
        self.euid
    }

    /// Whether we run as root.
    pub fn is_root(&self) -> bool {
        self.euid == 0
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The wall clock now.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// The monotonic clock now.
    pub fn mono(&self) -> Mono {
        self.clock.mono()
    }

    /// Sleeps for `d` on the clock.
    pub fn sleep(&self, d: Duration) {
        self.clock.sleep(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

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
        let e = e.with_var("USER", Some("u")).with_var("HOME", None);
        assert_eq!(e.var("USER").as_deref(), Some("u"));
        assert_eq!(e.var("HOME"), None);
    }

    #[test]
    fn process_environment() {
        let e = Env::process();
        assert_eq!(e.euid(), nix::unistd::geteuid().as_raw());
        assert!(e.now() >= UNIX_EPOCH);
        assert!(!e.args().is_empty());
        assert!(!e.clock().is_manual());
    }
}
