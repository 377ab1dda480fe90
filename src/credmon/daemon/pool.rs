//! The worker pool and the state it shares with the coordinator: the
//! [`Scheduler`], the pass in progress, the metrics. Workers take the most
//! pressing due job ([`Shared::take`]), run it, and record how it ended
//! ([`Shared::finish`]); one reserved worker serves only credentials whose
//! jobs have no usable `.use`, so those never wait for a busy worker.

use super::clock::Clock;
use crate::backoff::Backoff;
use crate::credmon::refresh::{self, Ctx, Done, Key, Outcome, RefreshError, Task};
use crate::credmon::schedule::{At, Finish, Scheduler};
use crate::files::SafeDir;
use crate::metrics::CredmonMetrics;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// Longest per-credential retry delay.
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// At most this many `.use` renames wait for one `syncfs`.
const SYNC_BATCH: usize = 256;
/// The longest a worker sleeps without looking at the scheduler.
const IDLE_WAIT: Duration = Duration::from_secs(60);

/// What a worker did to a credential since the scan of the current pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// A new `.use` with this expiry.
    Refreshed(Option<i64>),
    /// The credential was removed.
    Removed,
}

/// The full pass in progress.
#[derive(Debug, Default)]
pub struct Pass {
    /// A pass is running.
    pub active: bool,
    /// Credentials queued by the pass and not yet tried.
    pub members: HashSet<Key>,
    /// Credentials refreshed by the pass.
    pub refreshed: usize,
    /// Credentials that failed, were skipped or are backing off.
    pub failed: usize,
}

/// Everything the coordinator and the workers share, under one lock.
pub struct State {
    /// The queue, ordered by need.
    pub sched: Scheduler<Key, Task>,
    /// How many regular workers may run jobs (`ROBOT_CREDMON_MAX_IN_FLIGHT`).
    pub workers: usize,
    /// Jobs being run right now.
    pub in_flight: usize,
    /// SIGHUP arrived and the coordinator has not looked yet.
    pub hup: bool,
    /// A background configuration read has finished.
    pub reload_done: bool,
    /// Stop taking jobs (SIGTERM, or the end of `--once`).
    pub stop: bool,
    /// The pass in progress.
    pub pass: Pass,
    /// Results since the scan of the current pass (for the per-state counts).
    pub seen: HashMap<Key, Seen>,
    /// The metrics.
    pub metrics: CredmonMetrics,
}

/// The shared state, its two wake-up signals and the clock.
pub struct Shared {
    st: Mutex<State>,
    /// Wakes workers: new work.
    pub(super) work: Condvar,
    /// Wakes the coordinator: SIGHUP, stop, the end of a pass or of a configuration read.
    pub(super) coord: Condvar,
    /// The clock everyone reads.
    pub clock: Arc<dyn Clock>,
    /// Held while the metrics file is written; the last write error, logged once.
    metrics_file: Mutex<Option<String>>,
}

impl Shared {
    /// Empty state for `workers` regular workers retrying after `backoff`.
    pub fn new(workers: usize, backoff: Backoff, clock: Arc<dyn Clock>) -> Self {
        Self {
            st: Mutex::new(State {
                sched: Scheduler::new(backoff),
                workers,
                in_flight: 0,
                hup: false,
                reload_done: false,
                stop: false,
                pass: Pass::default(),
                seen: HashMap::new(),
                metrics: CredmonMetrics::default(),
            }),
            work: Condvar::new(),
            coord: Condvar::new(),
            clock,
            metrics_file: Mutex::new(None),
        }
    }

    /// The shared state, locked.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks for an immediate look at the credential directory (SIGHUP).
    pub fn hup(&self) {
        self.lock().hup = true;
        self.coord.notify_all();
    }

    /// Stops handing out jobs and wakes everyone (SIGTERM).
    pub fn stop(&self) {
        self.lock().stop = true;
        self.work.notify_all();
        self.coord.notify_all();
    }

    /// Waits until no job is in flight or `limit` has passed (real time:
    /// requests are real); returns how many jobs were left running.
    pub fn drain(&self, limit: Duration) -> usize {
        let t0 = Instant::now();
        let mut st = self.lock();
        while st.in_flight > 0 && t0.elapsed() < limit {
            let left = limit.saturating_sub(t0.elapsed());
            st = self
                .coord
                .wait_timeout(st, left.min(Duration::from_millis(20)))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        st.in_flight
    }

    /// Sets how many regular workers may run jobs at once.
    pub fn set_workers(&self, n: usize) {
        self.lock().workers = n;
        self.work.notify_all();
    }

    /// Writes the metrics to `path` atomically and returns the write lock:
    /// whoever holds it keeps everyone else from writing the file. Errors are logged once.
    pub fn write_metrics(&self, path: &Path) -> MutexGuard<'_, Option<String>> {
        let mut last_error = self.metrics_file.lock().unwrap_or_else(|p| p.into_inner());
        let metrics = self.lock().metrics.clone();
        match metrics.write(path) {
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

    /// Takes the most pressing due job for a worker (`reserved`: the worker
    /// that serves only credentials with no usable `.use`; `index`: a regular
    /// worker's number, idle when above the configured count). `None` when
    /// there is nothing it may take now.
    pub fn take(&self, st: &mut State, index: Option<usize>, now: At) -> Option<(Key, Task)> {
        if st.stop {
            return None;
        }
        let missing_only = match index {
            None => true,
            Some(i) if i < st.workers => false,
            Some(_) => return None,
        };
        let (key, task, _) = st.sched.take(now, missing_only)?;
        st.in_flight += 1;
        Some((key, task))
    }

    /// When a worker should look again if it found nothing to take.
    pub(super) fn next_look(st: &State, index: Option<usize>, now: At) -> At {
        let later = now.saturating_add(IDLE_WAIT);
        let next = match index {
            None => st.sched.next_delayed(),
            Some(_) => st.sched.next_due(now),
        };
        next.filter(|t| *t > now).map_or(later, |t| t.min(later))
    }

    /// Records how the job on `key` ended (a removal has been done already).
    pub fn finish(&self, key: &Key, outcome: &Outcome, took: Duration) {
        let now = self.clock.now();
        let mut st = self.lock();
        st.in_flight = st.in_flight.saturating_sub(1);
        let how = match outcome {
            Ok(Done::Refreshed(exp, cause)) => {
                st.metrics.record_refresh(SystemTime::now(), cause, took);
                st.seen.insert(key.clone(), Seen::Refreshed(*exp));
                Finish::Done
            }
            Ok(Done::Nothing) => Finish::Done,
            Err(e) => {
                st.metrics.record_failure(e.cause(), took);
                match e {
                    RefreshError::Remove { .. } => {
                        st.seen.insert(key.clone(), Seen::Removed);
                        Finish::Done
                    }
                    RefreshError::Retry { at_least, .. } => Finish::Retry {
                        at_least: *at_least,
                    },
                    RefreshError::Relogin { .. } => Finish::Retry { at_least: None },
                    RefreshError::WaitForTop { .. } => Finish::Park,
                }
            }
        };
        st.sched.finish(key, how, now, fastrand::f64());
        if st.pass.members.remove(key) {
            match outcome {
                Ok(Done::Refreshed(..)) => st.pass.refreshed += 1,
                Ok(Done::Nothing) | Err(RefreshError::Remove { .. }) => {}
                Err(_) => st.pass.failed += 1,
            }
        }
        let wake_coord = st.in_flight == 0 || (st.pass.active && st.pass.members.is_empty());
        let more = st.sched.queued() > 0;
        drop(st);
        if wake_coord {
            self.coord.notify_all();
        }
        if more {
            self.work.notify_all();
        }
    }

    /// Wakes the workers: new jobs were submitted.
    pub fn notify_work(&self) {
        self.work.notify_all();
    }
}

/// Index of the reserved worker in thread names and logs.
pub const RESERVED: Option<usize> = None;

/// The worker loop: take the most pressing job, run it, record the outcome;
/// `.use` renames are made durable in batches (one `syncfs` for up to
/// [`SYNC_BATCH`] of them, and always before the worker goes idle or
/// records the last job of a pass).
pub fn worker(index: Option<usize>, ctx: Arc<Ctx>, shared: Arc<Shared>) {
    let mut unsynced = 0usize;
    loop {
        let job = {
            let mut st = shared.lock();
            loop {
                if st.stop {
                    drop(st);
                    sync(&ctx, &mut unsynced);
                    return;
                }
                let now = shared.clock.now();
                if let Some(job) = shared.take(&mut st, index, now) {
                    break job;
                }
                let wake = Shared::next_look(&st, index, now);
                st = shared.clock.wait_until(&shared.work, st, wake);
            }
        };
        let (key, task) = job;
        let t0 = Instant::now();
        let outcome = refresh::process(&ctx, &key, &task, true);
        let took = t0.elapsed();
        if matches!(outcome, Ok(Done::Refreshed(..))) {
            unsynced += 1;
        }
        if let Err(RefreshError::Remove { .. }) = &outcome {
            refresh::remove_credential(&ctx, &key);
        }
        let idle_next = {
            let mut st = shared.lock();
            let now = shared.clock.now();
            !st.sched.has_due(now, index.is_none()) || st.stop
        };
        if unsynced >= SYNC_BATCH || (unsynced > 0 && idle_next) {
            sync(&ctx, &mut unsynced);
        }
        shared.finish(&key, &outcome, took);
        // The state file: a new or changed problem wakes the coordinator to write it.
        let st = shared.lock();
        let next_try = st.sched.next_try(&key).map(|t| t.as_secs() as i64);
        let now = crate::token::unix_seconds(ctx.now());
        if ctx.status().record(&key, &outcome, now, next_try) {
            shared.coord.notify_all();
        }
    }
}

/// Makes the renames so far durable: one `syncfs` of the credential directory's filesystem.
fn sync(ctx: &Ctx, unsynced: &mut usize) {
    if *unsynced == 0 {
        return;
    }
    let synced = SafeDir::open(&ctx.config().cred_dir).and_then(|d| d.sync_filesystem());
    if let Err(e) = synced {
        log::error!("{e}");
    }
    *unsynced = 0;
}

/// Whether a job submitted at `now` counts as waiting for a worker in this
/// pass (due) rather than backing off or parked.
pub fn counts_in_pass(st: &State, key: &Key, now: At) -> bool {
    st.sched.due(key, now) || st.sched.in_flight(key)
}
