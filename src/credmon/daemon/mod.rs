//! The daemon: a coordinator that scans the credential directory and feeds
//! the [`Scheduler`](crate::credmon::schedule::Scheduler), and a pool of
//! workers that refresh credentials in the order of need.
//!
//! * [`clock`]: the injected clock (`now`, `wait_until`);
//! * [`scan`]: which credentials need work, with need and deadline;
//! * [`pool`]: the shared state and the workers (one reserved for
//!   credentials with no usable `.use`);
//! * [`instance`]: the single-instance lock and the `pid` file;
//! * `reload`: the configuration re-read on its own thread ([`Reload`]);
//! * this module: the coordinator (passes, SIGHUP, configuration reloads,
//!   `CREDMON_COMPLETE`, metrics, systemd and condor_master readiness).
//!
//! SIGHUP makes the coordinator look at changed user directories at once
//! and start a full pass; the configuration is re-read on its own thread
//! (`condor_config_val` may take seconds) so that SIGHUPs for new
//! credentials are served meanwhile. When the read finishes, every
//! credential parked as unusable is queued again, and if the configuration
//! changed, every credential backing off is retried at once as well.

pub mod clock;
pub mod instance;
pub mod pool;
mod reload;
pub mod scan;
mod states;

#[cfg(test)]
mod tests;

use super::config::Config;
use super::refresh::{Ctx, Key};
use super::schedule::{At, Need, Submitted};
use crate::backoff::Backoff;
use crate::files::SafeDir;
use crate::notify;
use clock::Clock;
use pool::{RESERVED, Shared};
pub use reload::Reload;
use scan::{Found, Scanner};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// The retry policy of a configuration.
pub fn backoff(cfg: &Config) -> Backoff {
    Backoff {
        base: cfg.backoff_base,
        cap: pool::BACKOFF_CAP,
    }
}

/// Everything the coordinator needs.
pub struct Coordinator {
    /// Worker context.
    pub ctx: Arc<Ctx>,
    /// State shared with the workers.
    pub shared: Arc<Shared>,
    /// Scan memory.
    pub scanner: Scanner,
    reload: Reload,
    /// Worker threads started so far.
    spawned: usize,
    /// Full passes completed; systemd is told `READY=1` after the first.
    pub passes: u64,
    /// The `.top` ctime each credential had when it was last queued.
    tops: HashMap<Key, i128>,
    next_pass: At,
    pass_again: bool,
}

/// Result of a `--once` pass.
pub struct PassReport {
    /// Credentials refreshed.
    pub refreshed: usize,
    /// Credentials that failed or could not be used.
    pub failed: usize,
}

impl Coordinator {
    /// A coordinator for `ctx`'s configuration, reading time from `clock`.
    pub fn new(ctx: Arc<Ctx>, clock: Arc<dyn Clock>, reload: Reload) -> Self {
        let cfg = ctx.config();
        let shared = Arc::new(Shared::new(cfg.max_in_flight, backoff(&cfg), clock));
        let owner = ctx.euid();
        Self {
            ctx,
            shared,
            scanner: Scanner::new(owner),
            reload,
            spawned: 0,
            passes: 0,
            tops: HashMap::new(),
            next_pass: Duration::ZERO,
            pass_again: false,
        }
    }

    fn now(&self) -> At {
        self.shared.clock.now()
    }

    /// Starts the reserved worker and regular worker threads until `n` exist.
    pub fn spawn_workers(&mut self, n: usize) {
        if self.spawned == 0 {
            self.spawn("worker-reserved".into(), RESERVED);
        }
        while self.spawned < n {
            if !self.spawn(format!("worker-{}", self.spawned), Some(self.spawned)) {
                return;
            }
            self.spawned += 1;
        }
    }

    fn spawn(&self, name: String, index: Option<usize>) -> bool {
        let (ctx, shared) = (self.ctx.clone(), self.shared.clone());
        let started = std::thread::Builder::new()
            .name(name)
            .stack_size(1024 * 1024)
            .spawn(move || pool::worker(index, ctx, shared));
        if let Err(e) = &started {
            log::error!("cannot start a worker thread: {e}");
        }
        started.is_ok()
    }

    fn root(&self) -> Option<SafeDir> {
        match SafeDir::open(&self.ctx.config().cred_dir) {
            Ok(d) => Some(d),
            Err(e) => {
                log::error!("{e}");
                None
            }
        }
    }

    /// Hands what a scan found to the scheduler; returns how many were
    /// submitted. A changed `.top` clears a backoff or a park. With `pass`,
    /// each counts in the pass: as pending when due, as failed when it is
    /// backing off or parked. With `hup` (the credd's signal), a credential
    /// with no usable `.use` that is new to the scheduler, or whose `.top`
    /// changed, has a submitter waiting for it: [`Need::Waiting`].
    fn submit(&mut self, found: Vec<Found>, pass: bool, hup: bool) -> usize {
        let now = self.now();
        let mut st = self.shared.lock();
        let n = found.len();
        for f in found {
            let changed = self
                .tops
                .insert(f.key.clone(), f.top_ctime)
                .is_some_and(|old| old != f.top_ctime);
            let arrival = changed || !st.sched.holds(&f.key);
            let need = if hup && arrival && f.need == Need::Missing {
                Need::Waiting
            } else {
                f.need
            };
            let how = st
                .sched
                .submit(f.key.clone(), f.task, need, f.deadline, changed, now);
            if pass {
                if how != Submitted::Held && pool::counts_in_pass(&st, &f.key, now) {
                    st.pass.members.insert(f.key);
                } else {
                    st.pass.failed += 1;
                }
            }
        }
        drop(st);
        if n > 0 {
            self.shared.notify_work();
        }
        n
    }

    /// Starts a full pass: removes `CREDMON_COMPLETE`, scans everything, queues the work.
    fn start_pass(&mut self) {
        let cfg = self.ctx.config();
        let Some(root) = self.root() else {
            return;
        };
        if let Err(e) = root.remove("CREDMON_COMPLETE") {
            log::warn!("{e}");
        }
        let t0 = std::time::Instant::now();
        let now = self.now();
        // Results from here on override what the scan reads.
        self.shared.lock().seen.clear();
        let mut found = self.scanner.provision(&cfg, &root, now);
        found.extend(self.scanner.scan(&cfg, &root, false, now));
        {
            let mut st = self.shared.lock();
            st.pass.active = true;
            st.pass.failed = self.scanner.problems;
            st.pass.refreshed = 0;
            st.pass.members.clear();
        }
        let n = self.submit(found, true, false);
        log::debug!(
            "full pass: {n} credential(s) queued after a {:.1} ms scan",
            t0.elapsed().as_secs_f64() * 1000.0
        );
    }

    fn finish_pass(&mut self) {
        let (refreshed, failed) = {
            let mut st = self.shared.lock();
            st.pass.active = false;
            (st.pass.refreshed, st.pass.failed)
        };
        if let Some(root) = self.root() {
            // Every .use renamed in this pass is on disk before CREDMON_COMPLETE says so.
            if let Err(e) = root.sync_filesystem() {
                log::error!("{e}");
            }
            let touch = root.write_atomic(
                "CREDMON_COMPLETE",
                b"",
                crate::files::WriteOptions {
                    mode: 0o644,
                    owner: None,
                    existing_owner: None,
                    replace_symlink: true,
                },
            );
            if let Err(e) = touch {
                log::error!("{e}");
            }
        }
        if refreshed > 0 || failed > 0 {
            log::info!("pass complete: {refreshed} refreshed, {failed} failed or skipped");
        }
        let status = format!(
            "{}; last pass: {refreshed} refreshed, {failed} failed or skipped",
            self.end_pass_metrics()
        );
        self.status_pass_done();
        self.passes += 1;
        if self.passes == 1 {
            self.first_pass_complete(&status);
        } else {
            notify::status(&status);
        }
        // Take note of our own writes so that the next SIGHUP looks only at new changes.
        let cfg = self.ctx.config();
        if let Some(root) = self.root() {
            let found = self.scanner.scan(&cfg, &root, true, self.now());
            self.submit(found, false, false);
        }
    }

    /// The first complete pass is over: systemd `READY=1`, and
    /// condor_master `DC_SET_READY` when it started us.
    fn first_pass_complete(&self, status: &str) {
        notify::ready(status);
        tell_master_ready(&self.ctx.config().name);
    }

    /// Runs one full pass and waits for it (`--once`), at most `limit` of real time.
    pub fn once(&mut self, limit: Duration) -> PassReport {
        self.start_pass();
        let t0 = std::time::Instant::now();
        let mut st = self.shared.lock();
        while !st.pass.members.is_empty() && t0.elapsed() < limit {
            st = self
                .shared
                .coord
                .wait_timeout(st, Duration::from_millis(200))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        let failed = st.pass.failed + st.pass.members.len();
        let refreshed = st.pass.refreshed;
        drop(st);
        self.shared.stop();
        self.end_pass_metrics();
        PassReport { refreshed, failed }
    }

    /// One turn of the coordinator: handles a SIGHUP, ends a finished pass,
    /// starts a due one. Returns when to look again, `None` once stopped.
    pub fn step(&mut self) -> Option<At> {
        let (hup, pass_done, reloaded) = {
            let mut st = self.shared.lock();
            if st.stop {
                return None;
            }
            let done = st.pass.active && st.pass.members.is_empty();
            (
                std::mem::take(&mut st.hup),
                done,
                std::mem::take(&mut st.reload_done),
            )
        };
        if hup {
            self.on_hup();
        }
        let changed = reloaded && self.reload_finished();
        if hup || changed {
            if self.shared.lock().pass.active {
                self.pass_again = true;
            } else {
                self.next_pass = self.now();
            }
        }
        if pass_done {
            self.finish_pass();
            let interval = self.ctx.config().scan_interval;
            self.next_pass = if std::mem::take(&mut self.pass_again) {
                self.now()
            } else {
                self.now().saturating_add(interval)
            };
        }
        let now = self.now();
        if now >= self.next_pass && !self.shared.lock().pass.active {
            self.next_pass = now.saturating_add(self.ctx.config().scan_interval);
            self.start_pass();
        }
        let status = self.write_status();
        Some(status.map_or(self.next_pass, |t| t.min(self.next_pass)))
    }

    /// Writes the state file when it is due (debounced, [`crate::status::state`]);
    /// returns when to look again.
    fn write_status(&self) -> Option<At> {
        let now = self.now();
        let due = self.ctx.status().due(now)?;
        if due > now {
            return Some(due);
        }
        let wall = crate::token::unix_seconds(self.ctx.now());
        let pid = std::process::id();
        let root = self.root()?;
        self.ctx
            .status()
            .write_if_due(&root, now, pid, wall, self.ctx.is_root())
    }

    /// The daemon loop; returns only when asked to stop. With systemd's
    /// watchdog on, `WATCHDOG=1` is sent at least every
    /// [`notify::watchdog_interval`] and no wait is longer.
    pub fn run(&mut self) {
        let watchdog = notify::watchdog_interval();
        let mut next_ping = self.now();
        loop {
            if let Some(every) = watchdog
                && self.now() >= next_ping
            {
                notify::watchdog();
                next_ping = self.now().saturating_add(every);
            }
            let Some(mut wake) = self.step() else {
                return;
            };
            if watchdog.is_some() {
                wake = wake.min(next_ping);
            }
            let st = self.shared.lock();
            // A problem recorded since `step` (workers record under this lock).
            if let Some(t) = self.ctx.status().due(self.now()) {
                wake = wake.min(t);
            }
            let pass_done = st.pass.active && st.pass.members.is_empty();
            if !st.hup && !st.stop && !st.reload_done && !pass_done {
                drop(self.shared.clock.wait_until(&self.shared.coord, st, wake));
            }
        }
    }

    /// SIGHUP: a quick look at changed directories first (new credentials
    /// reach the scheduler at once), then the configuration.
    fn on_hup(&mut self) {
        let t0 = std::time::Instant::now();
        let cfg = self.ctx.config();
        if let Some(root) = self.root() {
            self.scanner.known = self.shared.lock().sched.in_flight_keys().cloned().collect();
            let found = self.scanner.scan(&cfg, &root, true, self.now());
            self.scanner.known = HashSet::new();
            let n = self.submit(found, false, true);
            log::debug!(
                "SIGHUP: {n} credential(s) queued after a {:.1} ms look at changed directories",
                t0.elapsed().as_secs_f64() * 1000.0
            );
        }
        self.start_reload();
    }
}

/// Sends `DC_SET_READY` to the parent condor_master (when there is one) from a
/// short-lived thread, so that a slow master never holds up the passes.
/// A failure is a warning: the credmon works on either way.
fn tell_master_ready(name: &str) {
    if !crate::condor::under_master() {
        return;
    }
    let name = name.to_owned();
    let started = std::thread::Builder::new()
        .name("master-ready".into())
        .spawn(move || match crate::condor::set_ready(&name, "Ready") {
            Ok(()) => log::info!("told condor_master that {name} is ready (DC_SET_READY)"),
            Err(e) => log::warn!("could not tell condor_master that {name} is ready: {e}"),
        });
    if let Err(e) = started {
        log::warn!("could not tell condor_master that the credmon is ready: {e}");
    }
}
