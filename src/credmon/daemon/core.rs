//! The daemon's core: what the coordinator and the workers share, behind
//! intent methods — begin a pass, submit what a scan found, take a job,
//! record how it ran, end the pass. No threads, no clock, no files: every
//! call takes the time, so the threaded daemon ([`super::Shared`]) and the
//! deterministic simulation drive the same code.
//!
//! It holds the [`Scheduler`] (order by need, backoff, parking), the health
//! of each Vault server ([`Servers`]: credentials of a failing server wait
//! for it and are released by its first answer), the pass accounting
//! ([`Pass`]), what the workers did since the pass's scan, and the metrics.

use super::pass::{Ended, Pass, Summary};
use super::scan::Found;
use super::servers::{FILE_SYSTEM, KDC, Servers};
use crate::backoff::Backoff;
use crate::credmon::refresh::{Done, Key, Ran, RefreshError, Task};
use crate::credmon::schedule::{Finish, Need, Scheduler, Submitted};
use crate::env::Mono;
use crate::metrics::CredmonMetrics;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Longest per-credential retry delay.
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// The longest a worker waits without looking at the scheduler.
const IDLE_WAIT: Duration = Duration::from_secs(60);

/// Who asks for a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worker {
    /// The worker that serves only credentials with no usable `.use`, so
    /// they never wait for a busy worker.
    Reserved,
    /// Regular worker number `n` (idle when `n` is not below the configured count).
    Regular(usize),
}

/// A job handed to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The credential.
    pub key: Key,
    /// What to do.
    pub task: Task,
    /// How badly jobs need it.
    pub need: Need,
}

/// What a worker did to a credential since the scan of the current pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// A new `.use` with this expiry.
    Refreshed(Option<i64>),
    /// The credential was removed.
    Removed,
}

/// A [`Seen`] in eight bytes (the pass's table holds one per credential
/// refreshed: all of them after a fill): the expiry, or one of two values
/// no expiry has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PackedSeen(i64);

impl PackedSeen {
    const NO_EXPIRY: i64 = i64::MIN;
    const REMOVED: i64 = i64::MIN + 1;

    fn of(seen: Seen) -> Self {
        PackedSeen(match seen {
            Seen::Refreshed(Some(exp)) => exp.max(Self::REMOVED + 1),
            Seen::Refreshed(None) => Self::NO_EXPIRY,
            Seen::Removed => Self::REMOVED,
        })
    }

    fn get(self) -> Seen {
        match self.0 {
            Self::NO_EXPIRY => Seen::Refreshed(None),
            Self::REMOVED => Seen::Removed,
            exp => Seen::Refreshed(Some(exp)),
        }
    }
}

/// How a scan's findings are submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Submit {
    /// They count in the pass in progress.
    pub in_pass: bool,
    /// The credd signalled (SIGHUP): a new credential with no usable `.use`
    /// has a submitter waiting for it.
    pub hup: bool,
}

/// Events for the coordinator, taken at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Events {
    /// SIGHUP arrived.
    pub hup: bool,
    /// A background configuration read finished.
    pub reload_done: bool,
}

/// What recording an outcome asks of the threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Woken {
    /// The coordinator should look (no job in flight, or the pass is done).
    pub coordinator: bool,
    /// Workers should look (jobs are queued).
    pub workers: bool,
}

/// The shared state (see the module).
pub struct Core {
    sched: Scheduler<Key, Task>,
    servers: Servers,
    pass: Pass,
    /// A B-tree: a hash table doubles while the fill is at its peak.
    seen: BTreeMap<Key, PackedSeen>,
    workers: usize,
    in_flight: usize,
    events: Events,
    stop: bool,
    metrics: CredmonMetrics,
}

impl Core {
    /// Empty state for `workers` regular workers retrying after `backoff`.
    pub fn new(workers: usize, backoff: Backoff) -> Self {
        Core {
            sched: Scheduler::new(backoff),
            servers: Servers::default(),
            pass: Pass::default(),
            seen: BTreeMap::new(),
            workers,
            in_flight: 0,
            events: Events::default(),
            stop: false,
            metrics: CredmonMetrics::default(),
        }
    }

    /// SIGHUP: the coordinator looks at changed directories at once.
    pub fn hup(&mut self) {
        self.events.hup = true;
    }

    /// A background configuration read finished.
    pub fn reload_done(&mut self) {
        self.events.reload_done = true;
    }

    /// Stop handing out jobs (SIGTERM, or the end of `--once`).
    pub fn stop(&mut self) {
        self.stop = true;
    }

    /// Whether the daemon is stopping.
    pub fn stopping(&self) -> bool {
        self.stop
    }

    /// Whether the coordinator has something to do now.
    pub fn coordinator_wanted(&self) -> bool {
        self.stop || self.events != Events::default() || self.pass.done()
    }

    /// The events that arrived and were not taken yet.
    pub fn events(&self) -> Events {
        self.events
    }

    /// Takes the events that arrived since the last call.
    pub fn take_events(&mut self) -> Events {
        std::mem::take(&mut self.events)
    }

    /// Starts a full pass, before its scan; results from here on override
    /// what the scan reads.
    pub fn begin_pass(&mut self) {
        // Results recorded since the last pass ended (SIGHUP work) go too.
        self.forget_results();
        self.pass.begin();
    }

    /// The pass's scan found `problems` unusable entries (they count as failed).
    pub fn pass_problems(&mut self, problems: usize) {
        self.pass.problems(problems);
    }

    /// Whether a pass is running.
    pub fn pass_active(&self) -> bool {
        self.pass.active()
    }

    /// Whether the running pass has tried everything it queued.
    pub fn pass_done(&self) -> bool {
        self.pass.done()
    }

    /// Ends the running pass.
    pub fn end_pass(&mut self) -> Summary {
        self.pass.end()
    }

    /// Forgets the pass's results once its states are counted: nothing
    /// reads them before the next pass (a table of every credential after a
    /// fill, kept through the next mass refresh otherwise).
    pub fn forget_results(&mut self) {
        self.seen = BTreeMap::new();
    }

    /// Hands what a scan found at `now` (wall time `wall`) to the scheduler;
    /// returns how many. A changed `.top` clears a backoff, a park or a wait
    /// for a server.
    pub fn submit(&mut self, found: Vec<Found>, how: Submit, now: Mono, wall: SystemTime) -> usize {
        let n = found.len();
        for f in found {
            let arrival = f.changed || !self.sched.holds(&f.key);
            let need = if how.hup && arrival && f.need == Need::Missing {
                Need::Waiting
            } else {
                f.need
            };
            let deadline = Mono::of_wall(f.deadline, wall, now);
            if f.changed {
                self.servers.forget(&f.key);
            }
            let submitted =
                self.sched
                    .submit(f.key.clone(), f.task, need, deadline, f.changed, now);
            if how.in_pass {
                let runs = submitted != Submitted::Held
                    && (self.sched.due(&f.key, now) || self.sched.in_flight(&f.key));
                let key = self.sched.key(&f.key).cloned().unwrap_or(f.key);
                self.pass.queued(key, runs);
            }
        }
        n
    }

    /// The credentials being worked on (quick looks skip them).
    pub fn in_flight_keys(&self) -> HashSet<Key> {
        self.sched.in_flight_keys().cloned().collect()
    }

    /// Queues every parked credential again; returns how many.
    pub fn wake_parked(&mut self, now: Mono) -> usize {
        self.sched.wake_parked(now)
    }

    /// Makes every credential backing off due now; returns how many.
    pub fn retry_now(&mut self, now: Mono) -> usize {
        self.sched.retry_now(now)
    }

    /// Changes the retry policy and the number of regular workers.
    pub fn reconfigure(&mut self, backoff: Backoff, workers: usize) {
        self.sched.set_backoff(backoff);
        self.workers = workers;
    }

    /// Takes the most pressing due job for `worker` at `now`: the reserved
    /// worker takes only credentials with no usable `.use`; a regular worker
    /// above the configured count takes nothing. A failing server's probe is
    /// released first when its time has come.
    pub fn take(&mut self, worker: Worker, now: Mono) -> Option<Job> {
        if self.stop {
            return None;
        }
        let sched = &mut self.sched;
        self.servers.probe(now, |k| sched.release(k, now));
        let missing_only = match worker {
            Worker::Reserved => true,
            Worker::Regular(i) if i < self.workers => false,
            Worker::Regular(_) => return None,
        };
        let (key, task, need) = self.sched.take(now, missing_only)?;
        self.in_flight += 1;
        Some(Job { key, task, need })
    }

    /// Whether `job` may send its request to `server` at `now`: not while
    /// the server is failing, unless the job is its probe, or a submitter
    /// waits for it and no probe is out (it becomes the probe).
    pub fn may_ask(&mut self, server: &str, job: &Job, now: Mono) -> bool {
        if job.need == Need::Waiting {
            self.servers.may_ask_waiting(server, &job.key, now)
        } else {
            self.servers.may_ask(server, &job.key)
        }
    }

    /// Whether `worker` has a job due at `now`.
    pub fn has_due(&mut self, worker: Worker, now: Mono) -> bool {
        !self.stop && self.sched.has_due(now, worker == Worker::Reserved)
    }

    /// When `worker` should look again if it found nothing to take at `now`.
    pub fn next_look(&self, worker: Worker, now: Mono) -> Mono {
        let next = match worker {
            Worker::Reserved => self.sched.next_delayed(),
            Worker::Regular(_) => self.sched.next_due(now),
        };
        [next, self.servers.next_probe()]
            .into_iter()
            .flatten()
            .filter(|t| *t > now)
            .fold(now + IDLE_WAIT, Mono::min)
    }

    /// Jobs being run right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Records how `job` ran at `now` (wall time `wall`, `took` long;
    /// `jitter` in `[0, 1]` spreads retries). A removal has been done already.
    pub fn record(
        &mut self,
        job: &Job,
        ran: &Ran,
        took: Duration,
        now: Mono,
        wall: SystemTime,
        jitter: f64,
    ) -> Woken {
        let key = &job.key;
        self.in_flight = self.in_flight.saturating_sub(1);
        let how = self.finish_of(key, ran, took, now, wall, jitter);
        if how != Finish::Hold {
            self.servers.ended(key);
        }
        self.sched.finish(key, how, now, jitter);
        self.pass.ended(
            key,
            match &ran.outcome {
                Ok(Done::Refreshed(..)) => Ended::Refreshed,
                Ok(Done::Nothing | Done::Later(_)) | Err(RefreshError::Remove { .. }) => {
                    Ended::Nothing
                }
                Err(_) => Ended::Failed,
            },
        );
        Woken {
            coordinator: self.in_flight == 0 || self.pass.done(),
            workers: self.sched.queued() > 0,
        }
    }

    /// The scheduler's view of an outcome, after the metrics, what was seen
    /// and the health of what the job used took note of it.
    fn finish_of(
        &mut self,
        key: &Key,
        ran: &Ran,
        took: Duration,
        now: Mono,
        wall: SystemTime,
        jitter: f64,
    ) -> Finish {
        if let Some(held) = self.note_resources(key, ran, now, jitter) {
            if let Err(e) = &ran.outcome {
                self.metrics.record_failure(e.cause(), took);
            }
            return held;
        }
        let e = match &ran.outcome {
            Ok(Done::Refreshed(exp, cause)) => {
                self.metrics.record_refresh(wall, cause, took);
                self.note_seen(key, Seen::Refreshed(*exp));
                return Finish::Done;
            }
            Ok(Done::Nothing) => return Finish::Done,
            Ok(Done::Later(after)) => return Finish::Later(*after),
            Err(e) => e,
        };
        self.metrics.record_failure(e.cause(), took);
        match e {
            RefreshError::Remove { .. } => {
                self.note_seen(key, Seen::Removed);
                self.servers.forget(key);
                Finish::Done
            }
            RefreshError::Retry { at_least, .. } => Finish::Retry {
                at_least: *at_least,
            },
            RefreshError::Relogin { .. } => Finish::Retry { at_least: None },
            RefreshError::WaitForTop { .. } => Finish::Park,
        }
    }

    /// Keeps what a worker did to `key` for the running pass's count of
    /// states; outside a pass nothing reads it (the next pass starts
    /// without it), so nothing is kept: a mass refresh between passes
    /// holds no table of every credential.
    fn note_seen(&mut self, key: &Key, seen: Seen) {
        if self.pass.active() {
            self.seen.insert(key.clone(), PackedSeen::of(seen));
        }
    }

    /// What the job showed about what it shares with others — its Vault
    /// server, the KDC, the file system: one that worked releases the
    /// credentials waiting for it; one that failed for its own reasons holds
    /// this credential behind it (`Some(Finish::Hold)`).
    fn note_resources(&mut self, key: &Key, ran: &Ran, now: Mono, jitter: f64) -> Option<Finish> {
        let server_failing = matches!(
            ran.outcome,
            Err(RefreshError::Retry {
                server_failing: true,
                ..
            })
        );
        let worked = [
            (ran.answered && !server_failing)
                .then(|| ran.server.clone())
                .flatten(),
            matches!(ran.outcome, Ok(Done::Refreshed(..))).then(|| Arc::from(FILE_SYSTEM)),
            (ran.kdc == Some(true)).then(|| Arc::from(KDC)),
        ];
        for resource in worked.into_iter().flatten() {
            for held in self.servers.answered(&resource) {
                self.sched.release(&held, now);
            }
        }
        let Err(RefreshError::Retry { at_least, .. }) = &ran.outcome else {
            return None;
        };
        let failing = if ran.kdc == Some(false) {
            Arc::from(KDC)
        } else if ran.disk_failing {
            Arc::from(FILE_SYSTEM)
        } else if server_failing {
            ran.server.clone()?
        } else {
            return None;
        };
        if ran.outcome.as_ref().is_err_and(RefreshError::not_asked)
            && !self.servers.is_failing(&failing)
        {
            // It waited for the server without asking, and the server
            // answered someone meanwhile: its turn is now.
            return Some(Finish::Later(Duration::ZERO));
        }
        self.servers.failed(&failing, key, *at_least, now, jitter);
        Some(Finish::Hold)
    }

    /// What happened to `key` since the pass's scan.
    pub fn seen(&self, key: &Key) -> Option<Seen> {
        self.seen.get(key).map(|p| p.get())
    }

    /// Results since the pass's scan.
    pub fn seen_all(&self) -> impl Iterator<Item = (&Key, Seen)> {
        self.seen.iter().map(|(k, p)| (k, p.get()))
    }

    /// Whether `key` is parked (unusable until it changes).
    pub fn parked(&self, key: &Key) -> bool {
        self.sched.parked(key)
    }

    /// Consecutive failures of `key`.
    pub fn failures(&self, key: &Key) -> u32 {
        self.sched.failures(key)
    }

    /// When `key`'s queued job may run (its backoff), if it is queued.
    pub fn next_try(&self, key: &Key) -> Option<Mono> {
        self.sched.next_try(key)
    }

    /// Whether `key` waits for its failing Vault server.
    pub fn waits_for_server(&self, key: &Key) -> bool {
        self.sched.held(key)
    }

    /// How many Vault servers are failing, and how many credentials wait for them.
    pub fn server_trouble(&self) -> (usize, usize) {
        (self.servers.failing_count(), self.servers.held())
    }

    /// Jobs queued (due or not).
    pub fn queued(&self) -> usize {
        self.sched.queued()
    }

    /// The metrics.
    pub fn metrics(&self) -> &CredmonMetrics {
        &self.metrics
    }

    /// The metrics, for the end of a pass.
    pub fn metrics_mut(&mut self) -> &mut CredmonMetrics {
        &mut self.metrics
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod packed_tests {
    use super::{PackedSeen, Seen};

    #[test]
    fn a_packed_result_reads_back_as_it_was() {
        for seen in [
            Seen::Refreshed(Some(1_700_000_000)),
            Seen::Refreshed(Some(0)),
            Seen::Refreshed(Some(-5)),
            Seen::Refreshed(None),
            Seen::Removed,
        ] {
            assert_eq!(PackedSeen::of(seen).get(), seen);
        }
        // An absurd expiry stays an expiry (the earliest one packable).
        assert!(matches!(
            PackedSeen::of(Seen::Refreshed(Some(i64::MIN))).get(),
            Seen::Refreshed(Some(_))
        ));
    }
}
