//! The daemon: a coordinator thread that scans the credential directory and
//! feeds the [`Core`], and worker threads that take jobs from it in the
//! order of need, write `.use` files in durable groups and record how each
//! job ran.
//!
//! * [`core`]: the shared state behind intent methods (no threads, no clock);
//! * [`pass`]: a pass's accounting; [`servers`]: each Vault server's health;
//! * [`scan`] and [`table`]: which credentials need work, remembered compactly;
//! * [`workers`]: the worker loop and the group commit;
//! * [`instance`]: the single-instance lock and the `pid` file;
//! * `reload`: the configuration re-read on its own thread ([`Reload`]);
//! * this module: [`Shared`] (the core under one lock, the wake-ups, the
//!   clock) and the [`Coordinator`] (passes, SIGHUP, configuration reloads,
//!   `CREDMON_COMPLETE`, metrics, systemd and condor_master readiness).
//!
//! SIGHUP makes the coordinator look at changed user directories at once
//! and start a full pass; the configuration is re-read on its own thread
//! (`condor_config_val` may take seconds) so that SIGHUPs for new
//! credentials are served meanwhile. When the read finishes, every
//! credential parked as unusable is queued again, and if the configuration
//! changed, every credential backing off is retried at once as well.

pub mod core;
pub mod instance;
pub mod pass;
mod reload;
pub mod scan;
pub mod servers;
mod states;
pub mod table;
pub mod workers;

#[cfg(test)]
mod tests;

use super::config::Config;
use super::refresh::{Ctx, Ran};
use crate::backoff::Backoff;
use crate::env::{Clock, Mono};
use crate::files::SafeDir;
use crate::notify::Systemd;
use core::{BACKOFF_CAP, Core, Job, Submit, Woken, Worker};
pub use pass::Summary;
pub use reload::Reload;
use scan::{Found, Scanner};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use workers::Commits;

/// The retry policy of a configuration.
pub fn backoff(cfg: &Config) -> Backoff {
    Backoff {
        base: cfg.backoff_base,
        cap: BACKOFF_CAP,
    }
}

/// The core under one lock, its wake-ups and the clock everyone reads.
pub struct Shared {
    core: Mutex<Core>,
    /// Wakes workers: new work.
    work: Condvar,
    /// Wakes the coordinator: SIGHUP, stop, the end of a pass or of a configuration read.
    coord: Condvar,
    /// Wakes workers waiting for room in the commit queue.
    committed: Condvar,
    commits: Mutex<Commits>,
    /// The clock.
    pub clock: Clock,
    /// Held while the metrics file is written; the last write error, logged once.
    metrics_file: Mutex<Option<String>>,
    /// Jitter of retries.
    rng: Mutex<fastrand::Rng>,
}

impl Shared {
    /// Empty state for `workers` regular workers retrying after `backoff`,
    /// with jitter drawn from `rng`.
    pub fn new(workers: usize, backoff: Backoff, clock: Clock, rng: fastrand::Rng) -> Self {
        Shared {
            rng: Mutex::new(rng),
            core: Mutex::new(Core::new(workers, backoff)),
            work: Condvar::new(),
            coord: Condvar::new(),
            committed: Condvar::new(),
            commits: Mutex::new(Commits::default()),
            clock,
            metrics_file: Mutex::new(None),
        }
    }

    /// The core, locked.
    pub fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// SIGHUP: an immediate look at the credential directory.
    pub fn hup(&self) {
        self.lock().hup();
        self.coord.notify_all();
    }

    /// A configuration read finished.
    pub fn reload_done(&self) {
        self.lock().reload_done();
        self.coord.notify_all();
    }

    /// Stops handing out jobs and wakes everyone (SIGTERM).
    pub fn stop(&self) {
        self.lock().stop();
        self.work.notify_all();
        self.coord.notify_all();
        self.committed.notify_all();
    }

    /// Wakes the workers: new jobs were submitted.
    pub fn notify_work(&self) {
        self.work.notify_all();
    }

    /// The next job for `worker`, waiting until one is due; `None` once stopping.
    pub fn next_job(&self, worker: Worker) -> Option<Job> {
        let mut core = self.lock();
        loop {
            if core.stopping() {
                return None;
            }
            let now = self.clock.mono();
            if let Some(job) = core.take(worker, now) {
                return Some(job);
            }
            let wake = core.next_look(worker, now);
            core = self.clock.wait_until(&self.work, core, wake);
        }
    }

    /// Records how `job` ran (`took` long) and wakes whoever should look.
    pub fn record(&self, job: &Job, ran: &Ran, took: Duration) {
        let (woken, _) = self.record_quietly(job, ran, took);
        self.wake(woken);
    }

    /// Records how `job` ran without waking anyone yet; returns whom to wake
    /// ([`Shared::wake`]) and when the job's credential may run next (the
    /// caller updates what the coordinator reads first, then wakes it).
    pub fn record_quietly(&self, job: &Job, ran: &Ran, took: Duration) -> (Woken, Option<Mono>) {
        let jitter = self.rng.lock().unwrap_or_else(|p| p.into_inner()).f64();
        let mut core = self.lock();
        let woken = core.record(job, ran, took, self.clock.mono(), self.clock.now(), jitter);
        (woken, core.next_try(&job.key))
    }

    /// Wakes the coordinator and the workers as a record asked.
    pub fn wake(&self, woken: Woken) {
        if woken.coordinator {
            self.coord.notify_all();
        }
        if woken.workers {
            self.work.notify_all();
        }
    }

    /// Waits until no job is in flight or `limit` has passed; returns how
    /// many jobs were left running.
    pub fn drain(&self, limit: Duration) -> usize {
        let deadline = self.clock.mono() + limit;
        let mut core = self.lock();
        while core.in_flight() > 0 && self.clock.mono() < deadline {
            core = self.clock.wait_until(&self.coord, core, deadline);
        }
        core.in_flight()
    }

    /// Writes the metrics to `path` atomically (an existing file must belong
    /// to `uid`) and returns the write lock: whoever holds it keeps everyone
    /// else from writing the file. Errors are logged once.
    pub fn write_metrics(&self, path: &Path, uid: u32) -> MutexGuard<'_, Option<String>> {
        let mut last_error = self.metrics_file.lock().unwrap_or_else(|p| p.into_inner());
        let metrics = self.lock().metrics().clone();
        match metrics.write(path, uid) {
            Ok(()) => *last_error = None,
            Err(e) => {
                let msg = format!("cannot write the metrics file: {e}");
                if last_error.as_deref() != Some(msg.as_str()) {
                    log::error!("{msg}");
                    *last_error = Some(msg);
                }
            }
        }
        last_error
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
    next_pass: Mono,
    pass_again: bool,
    /// The service manager (systemd), when there is one.
    systemd: Systemd,
    /// Stop after the first full pass (`--once`).
    once: bool,
}

impl Coordinator {
    /// A coordinator for `ctx`'s configuration, reading time from `clock`,
    /// reporting to `systemd`.
    pub fn new(ctx: Arc<Ctx>, clock: Clock, reload: Reload, systemd: Systemd) -> Self {
        let cfg = ctx.config();
        let shared = Arc::new(Shared::new(
            cfg.max_in_flight,
            backoff(&cfg),
            clock,
            ctx.rng(),
        ));
        let owner = ctx.euid();
        Coordinator {
            ctx,
            shared,
            scanner: Scanner::new(owner),
            reload,
            spawned: 0,
            passes: 0,
            next_pass: Mono::ZERO,
            pass_again: false,
            systemd,
            once: false,
        }
    }

    fn now(&self) -> Mono {
        self.shared.clock.mono()
    }

    fn wall(&self) -> SystemTime {
        self.shared.clock.now()
    }

    /// Starts the reserved worker and regular worker threads until `n` exist.
    pub fn spawn_workers(&mut self, n: usize) {
        if self.spawned == 0 {
            self.spawn("worker-reserved".into(), Worker::Reserved);
        }
        while self.spawned < n {
            if !self.spawn(
                format!("worker-{}", self.spawned),
                Worker::Regular(self.spawned),
            ) {
                return;
            }
            self.spawned += 1;
        }
    }

    fn spawn(&self, name: String, worker: Worker) -> bool {
        let (ctx, shared) = (self.ctx.clone(), self.shared.clone());
        let started = std::thread::Builder::new()
            .name(name)
            .stack_size(1024 * 1024)
            .spawn(move || workers::worker(worker, ctx, shared));
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

    /// Hands what a scan found to the core; returns how many were submitted.
    fn submit(&self, found: Vec<Found>, how: Submit) -> usize {
        submit_to(&self.shared, found, how)
    }

    /// Scans (every user directory, or with `only_changed` those changed
    /// since the last look) and submits what needs work as it is found;
    /// returns how many were submitted.
    fn scan_and_submit(&mut self, root: &SafeDir, only_changed: bool, how: Submit) -> usize {
        let cfg = self.ctx.config();
        let wall = self.wall();
        let shared = &self.shared;
        let mut n = 0;
        self.scanner
            .scan(&cfg, root, only_changed, wall, &mut |found| {
                n += submit_to(shared, found, how);
            });
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
        let (t0, wall) = (self.now(), self.wall());
        self.shared.lock().begin_pass();
        let how = Submit {
            in_pass: true,
            hup: false,
        };
        let found = self.scanner.provision(&cfg, &root, wall);
        let mut n = self.submit(found, how);
        let problems = self.scanner.problems;
        n += self.scan_and_submit(&root, false, how);
        self.shared
            .lock()
            .pass_problems(problems + self.scanner.problems);
        log::debug!(
            "full pass: {n} credential(s) queued after a {:.1} ms scan",
            self.now().since(t0).as_secs_f64() * 1000.0
        );
    }

    /// Ends the pass: `CREDMON_COMPLETE` (every `.use` reported is durable
    /// already: the workers commit before they record), metrics, readiness.
    fn finish_pass(&mut self) -> Summary {
        let summary = self.shared.lock().end_pass();
        if let Some(root) = self.root()
            && let Err(e) = root.touch("CREDMON_COMPLETE", 0o644)
        {
            log::error!("{e}");
        }
        self.status_pass_done();
        let Summary { refreshed, failed } = summary;
        if refreshed > 0 || failed > 0 {
            log::info!("pass complete: {refreshed} refreshed, {failed} failed or skipped");
        }
        let status = format!(
            "{}; last pass: {refreshed} refreshed, {failed} failed or skipped",
            self.end_pass_metrics()
        );
        self.shared.lock().forget_results();
        self.passes += 1;
        if self.passes == 1 {
            self.systemd.ready(&status);
            tell_master_ready(&self.ctx.config().name, self.shared.clock.clone());
        } else {
            self.systemd.status(&status);
        }
        // Take note of our own writes so that the next SIGHUP looks only at new changes.
        if let Some(root) = self.root() {
            let how = Submit {
                in_pass: false,
                hup: false,
            };
            self.scan_and_submit(&root, true, how);
        }
        summary
    }

    /// Runs one full pass and waits for it (`--once`), at most `limit`:
    /// the daemon's own loop, stopped after its first pass.
    pub fn once(&mut self, limit: Duration) -> Summary {
        self.once = true;
        let deadline = self.now() + limit;
        let mut summary = Summary::default();
        while self.passes == 0 && self.now() < deadline {
            let Some(wake) = self.step_with(&mut summary) else {
                break;
            };
            self.wait(wake.min(deadline));
        }
        if self.passes == 0 {
            summary = self.finish_pass();
        }
        self.shared.stop();
        summary
    }

    /// One turn of the coordinator: handles a SIGHUP, ends a finished pass,
    /// starts a due one. Returns when to look again, `None` once stopped.
    pub fn step(&mut self) -> Option<Mono> {
        let mut ignored = Summary::default();
        self.step_with(&mut ignored)
    }

    fn step_with(&mut self, summary: &mut Summary) -> Option<Mono> {
        let (events, pass_done) = {
            let mut core = self.shared.lock();
            if core.stopping() {
                return None;
            }
            (core.take_events(), core.pass_done())
        };
        if events.hup {
            self.on_hup();
        }
        let changed = events.reload_done && self.reload_finished();
        if events.hup || changed {
            if self.shared.lock().pass_active() {
                self.pass_again = true;
            } else {
                self.next_pass = self.now();
            }
        }
        if pass_done {
            *summary = self.finish_pass();
            if self.once {
                return None;
            }
            let interval = self.ctx.config().scan_interval;
            self.next_pass = if std::mem::take(&mut self.pass_again) {
                self.now()
            } else {
                self.now() + interval
            };
        }
        let now = self.now();
        let interval = self.ctx.config().scan_interval;
        let running = self.shared.lock().pass_active();
        if now >= self.next_pass && !running {
            self.next_pass = now + interval;
            self.start_pass();
        }
        // A pass that outlives its interval (slow or hanging requests) ends
        // with a wake-up from the worker that finishes it: until then, no
        // reason to look before another interval (never a wake-up in the past).
        let wake = if running && self.next_pass <= now {
            now + interval
        } else {
            self.next_pass
        };
        let status = self.write_status();
        Some(status.map_or(wake, |t| t.min(wake)))
    }

    /// Writes the state file when it is due (debounced, [`crate::status::state`]);
    /// returns when to look again.
    fn write_status(&self) -> Option<Mono> {
        let root = self.root()?;
        self.ctx.status().write_if_due(
            &root,
            &self.shared.clock,
            std::process::id(),
            self.ctx.is_root(),
        )
    }

    /// Waits until `wake` or until the coordinator is wanted (a problem
    /// recorded since the last step makes the state file due sooner: the
    /// workers record under the same lock).
    fn wait(&self, wake: Mono) {
        let core = self.shared.lock();
        let wake = match self.ctx.status().due(self.now()) {
            Some(t) => wake.min(t),
            None => wake,
        };
        if !core.coordinator_wanted() {
            drop(self.shared.clock.wait_until(&self.shared.coord, core, wake));
        }
    }

    /// The daemon loop; returns only when asked to stop. With systemd's
    /// watchdog on, `WATCHDOG=1` is sent at least every
    /// [`Systemd::watchdog_interval`] and no wait is longer.
    pub fn run(&mut self) {
        let watchdog = self.systemd.watchdog_interval();
        let mut next_ping = self.now();
        loop {
            if let Some(every) = watchdog
                && self.now() >= next_ping
            {
                self.systemd.watchdog();
                next_ping = self.now() + every;
            }
            let Some(mut wake) = self.step() else {
                return;
            };
            if watchdog.is_some() {
                wake = wake.min(next_ping);
            }
            self.wait(wake);
        }
    }

    /// SIGHUP: a quick look at changed directories first (new credentials
    /// reach the scheduler at once), then the configuration.
    fn on_hup(&mut self) {
        let t0 = self.now();
        if let Some(root) = self.root() {
            self.scanner.known = self.shared.lock().in_flight_keys();
            let how = Submit {
                in_pass: false,
                hup: true,
            };
            let n = self.scan_and_submit(&root, true, how);
            self.scanner.known.clear();
            log::debug!(
                "SIGHUP: {n} credential(s) queued after a {:.1} ms look at changed directories",
                self.now().since(t0).as_secs_f64() * 1000.0
            );
        }
        self.start_reload();
    }
}

/// Hands what a scan found to the core and wakes the workers; returns how
/// many were submitted.
fn submit_to(shared: &Shared, found: Vec<Found>, how: Submit) -> usize {
    let (now, wall) = (shared.clock.mono(), shared.clock.now());
    let n = shared.lock().submit(found, how, now, wall);
    if n > 0 {
        shared.notify_work();
    }
    n
}

/// Sends `DC_SET_READY` to the parent condor_master (when there is one) from a
/// short-lived thread, so that a slow master never holds up the passes.
/// A failure is a warning: the credmon works on either way.
fn tell_master_ready(name: &str, clock: Clock) {
    if !crate::condor::under_master() {
        return;
    }
    let name = name.to_owned();
    let started = std::thread::Builder::new()
        .name("master-ready".into())
        .spawn(
            move || match crate::condor::set_ready(&name, "Ready", clock.now()) {
                Ok(()) => log::info!("told condor_master that {name} is ready (DC_SET_READY)"),
                Err(e) => log::warn!("could not tell condor_master that {name} is ready: {e}"),
            },
        );
    if let Err(e) = started {
        log::warn!("could not tell condor_master that the credmon is ready: {e}");
    }
}
