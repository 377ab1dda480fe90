//! The credmon's scheduler: a pure data structure that orders credentials by
//! need. No threads, no clock: every call takes the current time, so the
//! ordering rules are table-tested in virtual time.
//!
//! Each credential has
//! * a **need**: [`Need::Waiting`] when a submitter waits for a credential
//!   that just arrived (SIGHUP) with no usable `.use`, [`Need::Missing`] when
//!   jobs have no usable `.use` (missing, unreadable or expired), else
//!   [`Need::Routine`];
//! * a **deadline**: the moment its `.use` stops being good for jobs (now for
//!   a missing one, `exp - CREDMON_OAUTH_TOKEN_MINIMUM` or the age rule
//!   otherwise);
//! * a **not-before** time: its backoff after failures.
//!
//! [`Scheduler::take`] hands out the due job with the most pressing need:
//! every `Waiting` job before any `Missing` one, every `Missing` job before
//! any `Routine` one, then the earliest deadline,
//! then the order of arrival. A job whose not-before lies in the future is not
//! due. A credential is in at most one place at a time: queued, in flight,
//! parked (unusable until it changes) or held (its Vault server is failing:
//! released by the server's recovery, see `daemon::servers`).
//!
//! Time is monotonic ([`Mono`]): a step of the wall clock neither stretches
//! a backoff nor makes one end early. Deadlines computed from wall-clock
//! expiries are turned into monotonic ones when submitted ([`Mono::of_wall`]).

use crate::backoff::Backoff;
use crate::env::Mono;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

mod need;
pub use need::{Need, need};

/// What happened to a job a worker took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Done (refreshed, nothing to do, or removed): the failure count resets.
    Done,
    /// A passing failure: retry after the backoff, or later if the server
    /// asked for more (`Retry-After`).
    Retry {
        /// The server's own wait, if it gave one.
        at_least: Option<Duration>,
    },
    /// The credential cannot be used as it is (bad `.top`, untrusted host):
    /// it is parked until [`Scheduler::wake_parked`] or a submission that
    /// says it changed.
    Park,
    /// Nothing to do now, and not before this long (no failure): the job is
    /// queued again, due then.
    Later(Duration),
    /// Its Vault server is failing: it waits, with no backoff of its own,
    /// until [`Scheduler::release`] (the server answered again, or it is
    /// this server's probe) or a submission that says it changed.
    Hold,
}

/// What [`Scheduler::submit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// Newly queued.
    Queued,
    /// Already queued: its need and deadline were raised if the new ones are
    /// more pressing.
    Merged,
    /// In flight: it is queued again when the worker finishes.
    Again,
    /// Parked and nothing changed: left alone.
    Held,
}

/// The ordering key of a due job: need, deadline, arrival.
type ReadyKey<K> = (Need, Mono, u64, K);
/// The ordering key of a job waiting for its not-before time.
type DelayedKey<K> = (Mono, u64, K);

#[derive(Debug, Clone)]
struct Job<T> {
    task: T,
    need: Need,
    deadline: Mono,
    not_before: Mono,
    seq: u64,
}

/// A submission that arrived while the credential was in flight.
#[derive(Debug, Clone)]
struct Again<T> {
    task: T,
    need: Need,
    deadline: Mono,
    changed: bool,
}

impl<T> Again<T> {
    /// A new job for this submission, due at once.
    fn into_job(self, now: Mono, seq: u64) -> Job<T> {
        Job {
            task: self.task,
            need: self.need,
            deadline: self.deadline,
            not_before: now,
            seq,
        }
    }
}

/// Two submissions for a credential in flight as one: the more urgent one's
/// task, need and deadline (the older on a tie), changed if either was.
fn merge_again<T>(old: Option<Again<T>>, new: Again<T>) -> Again<T> {
    match old {
        Some(a) if (a.need, a.deadline) <= (new.need, new.deadline) => Again {
            changed: a.changed || new.changed,
            ..a
        },
        Some(a) => Again {
            changed: a.changed || new.changed,
            ..new
        },
        None => new,
    }
}

#[derive(Debug, Clone)]
enum State<T> {
    Queued(Job<T>),
    InFlight {
        job: Job<T>,
        /// Boxed: rare, and a slot stays small without it.
        again: Option<Box<Again<T>>>,
    },
    /// Unusable until something changes; the job is kept for [`Scheduler::wake_parked`].
    Parked(Job<T>),
    /// Waiting for its Vault server; the job is kept for [`Scheduler::release`].
    Held(Job<T>),
}

#[derive(Debug, Clone)]
struct Slot<T> {
    state: State<T>,
    /// Consecutive failures.
    failures: u32,
}

/// The scheduler: credentials keyed by `K`, with a task `T` each.
#[derive(Debug)]
pub struct Scheduler<K: Ord + Clone, T: Clone> {
    /// A B-tree, not a hash table: it grows a node at a time (a hash table
    /// doubles, and holds both tables while it does: 1.6 MB at 10,000
    /// credentials) and gives its room back as credentials leave.
    slots: BTreeMap<K, Slot<T>>,
    ready: BTreeSet<ReadyKey<K>>,
    delayed: BTreeSet<DelayedKey<K>>,
    seq: u64,
    backoff: Backoff,
}

impl<K: Ord + Clone, T: Clone> Scheduler<K, T> {
    /// An empty scheduler whose retries follow `backoff`.
    pub fn new(backoff: Backoff) -> Self {
        Self {
            slots: BTreeMap::new(),
            ready: BTreeSet::new(),
            delayed: BTreeSet::new(),
            seq: 0,
            backoff,
        }
    }

    /// Changes the retry policy (configuration re-read).
    pub fn set_backoff(&mut self, backoff: Backoff) {
        self.backoff = backoff;
    }

    /// How many credentials are queued (due or not).
    pub fn queued(&self) -> usize {
        self.ready.len() + self.delayed.len()
    }

    /// Whether `key` is being worked on.
    pub fn in_flight(&self, key: &K) -> bool {
        matches!(
            self.slots.get(key).map(|s| &s.state),
            Some(State::InFlight { .. })
        )
    }

    /// Whether the scheduler holds `key` (queued, in flight or parked).
    pub fn holds(&self, key: &K) -> bool {
        self.slots.contains_key(key)
    }

    /// The scheduler's own copy of `key`, if it holds it: sharing it (a
    /// `Key` is a pointer to its names) keeps one copy of the names per
    /// credential, however many submissions made their own.
    pub fn key(&self, key: &K) -> Option<&K> {
        self.slots.get_key_value(key).map(|(k, _)| k)
    }

    /// Whether `key` is parked (unusable until it changes or [`Scheduler::wake_parked`]).
    pub fn parked(&self, key: &K) -> bool {
        matches!(
            self.slots.get(key).map(|s| &s.state),
            Some(State::Parked(_))
        )
    }

    /// Whether `key` waits for its Vault server ([`Finish::Hold`]).
    pub fn held(&self, key: &K) -> bool {
        matches!(self.slots.get(key).map(|s| &s.state), Some(State::Held(_)))
    }

    /// Whether `key` is queued and due at `now` (not backing off).
    pub fn due(&self, key: &K, now: Mono) -> bool {
        matches!(
            self.slots.get(key).map(|s| &s.state),
            Some(State::Queued(job)) if job.not_before <= now
        )
    }

    /// The credentials being worked on.
    pub fn in_flight_keys(&self) -> impl Iterator<Item = &K> {
        self.slots.iter().filter_map(|(k, s)| match s.state {
            State::InFlight { .. } => Some(k),
            _ => None,
        })
    }

    /// Whether a job is due at `now`; with `missing_only`, one with no usable `.use`.
    pub fn has_due(&mut self, now: Mono, missing_only: bool) -> bool {
        self.promote(now);
        self.ready
            .first()
            .is_some_and(|r| !missing_only || r.0 != Need::Routine)
    }

    /// When the first job that is backing off becomes due.
    pub fn next_delayed(&self) -> Option<Mono> {
        self.delayed.first().map(|d| d.0)
    }

    /// When `key`'s queued job may run (its backoff), if it is queued.
    pub fn next_try(&self, key: &K) -> Option<Mono> {
        match self.slots.get(key).map(|s| &s.state) {
            Some(State::Queued(job)) => Some(job.not_before),
            _ => None,
        }
    }

    /// Consecutive failures of `key` (0 when unknown).
    pub fn failures(&self, key: &K) -> u32 {
        self.slots.get(key).map_or(0, |s| s.failures)
    }

    /// Asks for work on `key`. `changed` says the credential itself changed
    /// (a new `.top`): that clears a park and the backoff, so the job runs as
    /// soon as it is due. Without it, a credential that is backing off keeps
    /// its not-before time and a parked one stays parked.
    pub fn submit(
        &mut self,
        key: K,
        task: T,
        need: Need,
        deadline: Mono,
        changed: bool,
        now: Mono,
    ) -> Submitted {
        let seq = self.next_seq();
        let ask = Again {
            task,
            need,
            deadline,
            changed,
        };
        // The copy already held, if any, for the indexes too (see [`Scheduler::key`]).
        let key = self.key(&key).cloned().unwrap_or(key);
        let Some(slot) = self.slots.get_mut(&key) else {
            self.queue(key, ask.into_job(now, seq), 0, now);
            return Submitted::Queued;
        };
        match &mut slot.state {
            State::InFlight { again, .. } => {
                *again = Some(Box::new(merge_again(again.take().map(|a| *a), ask)));
                Submitted::Again
            }
            State::Queued(job) => {
                let job = job.clone();
                if changed {
                    slot.failures = 0;
                }
                let failures = slot.failures;
                self.merge_queued(key, job, failures, ask, now);
                Submitted::Merged
            }
            State::Parked(_) | State::Held(_) if !changed => Submitted::Held,
            State::Parked(_) | State::Held(_) => {
                self.queue(key, ask.into_job(now, seq), 0, now);
                Submitted::Queued
            }
        }
    }

    /// A queued job asked for again: it takes the sooner need and deadline
    /// (with that submission's task), and a change lifts its backoff.
    fn merge_queued(&mut self, key: K, mut job: Job<T>, failures: u32, ask: Again<T>, now: Mono) {
        let sooner = (ask.need, ask.deadline) < (job.need, job.deadline);
        let unblock = ask.changed && job.not_before > now;
        if !(sooner || unblock) {
            return;
        }
        self.unindex(&key, &job);
        if sooner {
            job.need = ask.need;
            job.deadline = ask.deadline;
            job.task = ask.task;
        }
        if unblock {
            job.not_before = now;
        }
        self.queue(key, job, failures, now);
    }

    /// Takes the most pressing due job. With `missing_only`, only a job whose
    /// need is [`Need::Waiting`] or [`Need::Missing`] (the reserved worker's rule).
    pub fn take(&mut self, now: Mono, missing_only: bool) -> Option<(K, T, Need)> {
        self.promote(now);
        let first = self.ready.first()?.clone();
        if missing_only && first.0 == Need::Routine {
            return None;
        }
        self.ready.remove(&first);
        let key = first.3;
        let slot = self.slots.get_mut(&key)?;
        let State::Queued(job) = &slot.state else {
            return None;
        };
        let job = job.clone();
        let out = (key, job.task.clone(), job.need);
        slot.state = State::InFlight { job, again: None };
        Some(out)
    }

    /// Records how the job on `key` ended; `jitter` in `[0, 1]` spreads retries.
    pub fn finish(&mut self, key: &K, how: Finish, now: Mono, jitter: f64) {
        let Some(slot) = self.slots.get(key) else {
            return;
        };
        let State::InFlight { job, again } = &slot.state else {
            return;
        };
        let (job, again, failures) = (job.clone(), again.clone(), slot.failures);
        let seq = self.next_seq();
        // What runs next: a newer submission wins over the finished job.
        let next = |not_before: Mono| match &again {
            Some(a) => Job {
                task: a.task.clone(),
                need: a.need,
                deadline: a.deadline,
                not_before,
                seq,
            },
            None => Job {
                not_before,
                seq,
                ..job.clone()
            },
        };
        let changed = again.as_ref().is_some_and(|a| a.changed);
        match how {
            Finish::Done => match again {
                Some(_) => self.queue(key.clone(), next(now), 0, now),
                None => {
                    self.slots.remove(key);
                }
            },
            Finish::Later(_) if changed => self.queue(key.clone(), next(now), 0, now),
            Finish::Later(after) => self.queue(key.clone(), next(now + after), failures, now),
            Finish::Retry { .. } if changed => self.queue(key.clone(), next(now), 0, now),
            Finish::Retry { at_least } => {
                let delay = self.backoff.delay(failures, jitter);
                let delay = at_least.map_or(delay, |d| d.max(delay));
                let not_before = now + delay;
                self.queue(
                    key.clone(),
                    next(not_before),
                    failures.saturating_add(1),
                    now,
                );
            }
            Finish::Park | Finish::Hold if changed => self.queue(key.clone(), next(now), 0, now),
            Finish::Park | Finish::Hold => {
                if let Some(slot) = self.slots.get_mut(key) {
                    slot.failures = failures.saturating_add(1);
                    slot.state = match how {
                        Finish::Hold => State::Held(next(now)),
                        _ => State::Parked(job),
                    };
                }
            }
        }
    }

    /// Queues a held credential again, due at `now`, keeping its failure
    /// count; false when `key` is not held (it changed or went meanwhile).
    pub fn release(&mut self, key: &K, now: Mono) -> bool {
        let Some(Slot {
            state: State::Held(job),
            failures,
        }) = self.slots.get(key)
        else {
            return false;
        };
        let (failures, job) = (*failures, job.clone());
        let job = Job {
            not_before: now,
            seq: self.next_seq(),
            ..job
        };
        self.queue(key.clone(), job, failures, now);
        true
    }

    /// Queues every parked credential again at once (a configuration change
    /// may have made it usable); returns how many.
    pub fn wake_parked(&mut self, now: Mono) -> usize {
        let mut parked: Vec<(K, Job<T>)> = self
            .slots
            .iter()
            .filter_map(|(k, s)| match &s.state {
                State::Parked(job) => Some((k.clone(), job.clone())),
                _ => None,
            })
            .collect();
        // In their order of arrival, whatever the map's order (replayable runs).
        parked.sort_by_key(|(_, job)| job.seq);
        let n = parked.len();
        for (key, job) in parked {
            let seq = self.next_seq();
            let job = Job {
                not_before: now,
                seq,
                ..job
            };
            self.queue(key, job, 0, now);
        }
        n
    }

    /// Makes every credential that is backing off due at `now` (a changed
    /// configuration may have fixed what failed); failure counts are kept,
    /// so a failure that persists backs off as before. Returns how many.
    pub fn retry_now(&mut self, now: Mono) -> usize {
        let delayed: Vec<K> = self
            .delayed
            .iter()
            .filter(|d| d.0 > now)
            .map(|d| d.2.clone())
            .collect();
        let mut n = 0;
        for key in delayed {
            let Some(Slot {
                state: State::Queued(job),
                failures,
            }) = self.slots.get(&key)
            else {
                continue;
            };
            let (mut job, failures) = (job.clone(), *failures);
            self.unindex(&key, &job);
            job.not_before = now;
            self.queue(key, job, failures, now);
            n += 1;
        }
        n
    }

    /// Forgets a credential that is gone (an in-flight one finishes first).
    pub fn forget(&mut self, key: &K) {
        let Some(slot) = self.slots.get(key) else {
            return;
        };
        match &slot.state {
            State::InFlight { .. } => {}
            State::Queued(job) => {
                let job = job.clone();
                self.unindex(key, &job);
                self.slots.remove(key);
            }
            State::Parked(_) | State::Held(_) => {
                self.slots.remove(key);
            }
        }
    }

    /// When the next queued job becomes due (`None`: nothing queued, or a
    /// job is due already and `take` should be called).
    pub fn next_due(&self, now: Mono) -> Option<Mono> {
        if !self.ready.is_empty() {
            return Some(now);
        }
        self.delayed.first().map(|d| d.0.max(now))
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Puts `job` in the queue of `key` (replacing whatever state it had).
    fn queue(&mut self, key: K, job: Job<T>, failures: u32, now: Mono) {
        self.index(&key, &job, now);
        self.slots.insert(
            key,
            Slot {
                state: State::Queued(job),
                failures,
            },
        );
    }

    fn index(&mut self, key: &K, job: &Job<T>, now: Mono) {
        if job.not_before > now {
            self.delayed.insert((job.not_before, job.seq, key.clone()));
        } else {
            self.ready
                .insert((job.need, job.deadline, job.seq, key.clone()));
        }
    }

    fn unindex(&mut self, key: &K, job: &Job<T>) {
        self.delayed.remove(&(job.not_before, job.seq, key.clone()));
        self.ready
            .remove(&(job.need, job.deadline, job.seq, key.clone()));
    }

    /// Moves jobs whose not-before has come into the ready set.
    fn promote(&mut self, now: Mono) {
        while let Some(first) = self.delayed.first() {
            if first.0 > now {
                break;
            }
            let (_, seq, key) = first.clone();
            self.delayed.remove(&(first.0, seq, key.clone()));
            if let Some(Slot {
                state: State::Queued(job),
                ..
            }) = self.slots.get(&key)
            {
                self.ready.insert((job.need, job.deadline, job.seq, key));
            }
        }
    }
}

#[cfg(test)]
mod tests;
