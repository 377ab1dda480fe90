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
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
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
type ReadyKey<K> = (Need, Mono, u32, K);
/// The ordering key of a job waiting for its not-before time.
type DelayedKey<K> = (Mono, u32, K);

/// A submission that arrived while the credential was in flight.
#[derive(Debug, Clone)]
struct Again<T> {
    task: T,
    need: Need,
    deadline: Mono,
    changed: bool,
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

/// Where a credential's job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Waiting for a worker (due, or backing off).
    Queued,
    /// A worker runs it.
    InFlight,
    /// Unusable until something changes; kept for [`Scheduler::wake_parked`].
    Parked,
    /// Waiting for its Vault server; kept for [`Scheduler::release`].
    Held,
}

/// A credential's job — its order, its backoff, where it is — in 24 bytes:
/// every credential is queued at once in a fill or a mass refresh. Its task
/// is kept aside unless it is the default one ([`Scheduler::tasks`]), and so
/// is a submission that arrives while it is in flight ([`Scheduler::again`]).
#[derive(Debug, Clone, Copy)]
struct Slot {
    deadline: Mono,
    not_before: Mono,
    /// Arrival order, for ties. It wraps after 2^32 submissions (months at
    /// 100,000 credentials), which only reorders ties once.
    seq: u32,
    /// Consecutive failures (saturating).
    failures: u16,
    need: Need,
    kind: Kind,
}

impl Slot {
    /// A queued job due from `not_before`.
    fn queued(need: Need, deadline: Mono, not_before: Mono, seq: u32, failures: u32) -> Slot {
        Slot {
            deadline,
            not_before,
            seq,
            failures: u16::try_from(failures).unwrap_or(u16::MAX),
            need,
            kind: Kind::Queued,
        }
    }
}

/// The scheduler: credentials keyed by `K`, with a task `T` each.
#[derive(Debug)]
pub struct Scheduler<K: Ord + Clone, T: Clone + Default + PartialEq> {
    /// A B-tree, not a hash table: it grows a node at a time (a hash table
    /// doubles, and holds both tables while it does: 1.6 MB at 10,000
    /// credentials) and gives its room back as credentials leave.
    slots: BTreeMap<K, Slot>,
    /// The tasks that are not the default one (provisioning: rare).
    tasks: BTreeMap<K, T>,
    /// Submissions for credentials in flight, run when they finish.
    again: BTreeMap<K, Again<T>>,
    /// The due jobs, most pressing first: a binary heap in one array (a
    /// B-tree filled in arrival order keeps its nodes half empty: twice
    /// the bytes in a fill). An entry whose credential moved on (a sooner
    /// submission, gone) is stale: it is skipped when it comes to the top,
    /// and the array is rebuilt when stale entries outnumber live ones.
    ready: BinaryHeap<Reverse<ReadyKey<K>>>,
    /// Live entries of `ready`.
    ready_live: usize,
    delayed: BTreeSet<DelayedKey<K>>,
    seq: u32,
    backoff: Backoff,
}

/// Whether a `ready` entry is its credential's queued job.
fn live<K: Ord>(slots: &BTreeMap<K, Slot>, r: &ReadyKey<K>) -> bool {
    slots
        .get(&r.3)
        .is_some_and(|s| s.kind == Kind::Queued && (s.need, s.deadline, s.seq) == (r.0, r.1, r.2))
}

impl<K: Ord + Clone, T: Clone + Default + PartialEq> Scheduler<K, T> {
    /// An empty scheduler whose retries follow `backoff`.
    pub fn new(backoff: Backoff) -> Self {
        Self {
            slots: BTreeMap::new(),
            tasks: BTreeMap::new(),
            again: BTreeMap::new(),
            ready: BinaryHeap::new(),
            ready_live: 0,
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
        self.ready_live + self.delayed.len()
    }

    fn kind(&self, key: &K) -> Option<Kind> {
        self.slots.get(key).map(|s| s.kind)
    }

    /// Whether `key` is being worked on.
    pub fn in_flight(&self, key: &K) -> bool {
        self.kind(key) == Some(Kind::InFlight)
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
        self.kind(key) == Some(Kind::Parked)
    }

    /// Whether `key` waits for its Vault server ([`Finish::Hold`]).
    pub fn held(&self, key: &K) -> bool {
        self.kind(key) == Some(Kind::Held)
    }

    /// Whether `key` is queued and due at `now` (not backing off).
    pub fn due(&self, key: &K, now: Mono) -> bool {
        self.next_try(key).is_some_and(|t| t <= now)
    }

    /// The credentials being worked on.
    pub fn in_flight_keys(&self) -> impl Iterator<Item = &K> {
        self.slots
            .iter()
            .filter_map(|(k, s)| (s.kind == Kind::InFlight).then_some(k))
    }

    /// Whether a job is due at `now`; with `missing_only`, one with no usable `.use`.
    pub fn has_due(&mut self, now: Mono, missing_only: bool) -> bool {
        self.promote(now);
        self.settle();
        self.ready
            .peek()
            .is_some_and(|Reverse(r)| !missing_only || r.0 != Need::Routine)
    }

    /// When the first job that is backing off becomes due.
    pub fn next_delayed(&self) -> Option<Mono> {
        self.delayed.first().map(|d| d.0)
    }

    /// When `key`'s queued job may run (its backoff), if it is queued.
    pub fn next_try(&self, key: &K) -> Option<Mono> {
        self.slots
            .get(key)
            .filter(|s| s.kind == Kind::Queued)
            .map(|s| s.not_before)
    }

    /// Consecutive failures of `key` (0 when unknown).
    pub fn failures(&self, key: &K) -> u32 {
        self.slots.get(key).map_or(0, |s| u32::from(s.failures))
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
        // The copy already held, if any, for the indexes too (see [`Scheduler::key`]).
        let key = self.key(&key).cloned().unwrap_or(key);
        let Some(slot) = self.slots.get_mut(&key) else {
            self.set_task(&key, task);
            self.queue(key, Slot::queued(need, deadline, now, seq, 0), now);
            return Submitted::Queued;
        };
        match slot.kind {
            Kind::InFlight => {
                let ask = Again {
                    task,
                    need,
                    deadline,
                    changed,
                };
                let merged = merge_again(self.again.remove(&key), ask);
                self.again.insert(key, merged);
                Submitted::Again
            }
            Kind::Queued => {
                if changed {
                    slot.failures = 0;
                }
                let old = *slot;
                let sooner = (need, deadline) < (old.need, old.deadline);
                let unblock = changed && old.not_before > now;
                if sooner || unblock {
                    self.unindex(&key, &old);
                    let mut new = old;
                    if sooner {
                        (new.need, new.deadline) = (need, deadline);
                        self.set_task(&key, task);
                    }
                    if unblock {
                        new.not_before = now;
                    }
                    self.queue(key, new, now);
                }
                Submitted::Merged
            }
            Kind::Parked | Kind::Held if !changed => Submitted::Held,
            Kind::Parked | Kind::Held => {
                self.set_task(&key, task);
                self.queue(key, Slot::queued(need, deadline, now, seq, 0), now);
                Submitted::Queued
            }
        }
    }

    /// Keeps `key`'s task (aside only when it is not the default one).
    fn set_task(&mut self, key: &K, task: T) {
        if task == T::default() {
            self.tasks.remove(key);
        } else {
            self.tasks.insert(key.clone(), task);
        }
    }

    /// Takes the most pressing due job. With `missing_only`, only a job whose
    /// need is [`Need::Waiting`] or [`Need::Missing`] (the reserved worker's rule).
    pub fn take(&mut self, now: Mono, missing_only: bool) -> Option<(K, T, Need)> {
        self.promote(now);
        self.settle();
        let Reverse(first) = self.ready.peek()?;
        if missing_only && first.0 == Need::Routine {
            return None;
        }
        let Reverse((need, _, _, key)) = self.ready.pop()?;
        self.ready_live = self.ready_live.saturating_sub(1);
        if let Some(slot) = self.slots.get_mut(&key) {
            slot.kind = Kind::InFlight;
        }
        let task = self.tasks.get(&key).cloned().unwrap_or_default();
        self.settle();
        Some((key, task, need))
    }

    /// Records how the job on `key` ended; `jitter` in `[0, 1]` spreads retries.
    pub fn finish(&mut self, key: &K, how: Finish, now: Mono, jitter: f64) {
        let Some(&slot) = self.slots.get(key) else {
            return;
        };
        if slot.kind != Kind::InFlight {
            return;
        }
        let failures = u32::from(slot.failures);
        let again = self.again.remove(key);
        let changed = again.as_ref().is_some_and(|a| a.changed);
        if how == Finish::Done && again.is_none() {
            self.slots.remove(key);
            self.tasks.remove(key);
            return;
        }
        if matches!(how, Finish::Park) && !changed {
            // A parked credential keeps the job it had.
            let failures = slot.failures.saturating_add(1);
            let kind = Kind::Parked;
            self.slots.insert(
                key.clone(),
                Slot {
                    failures,
                    kind,
                    ..slot
                },
            );
            return;
        }
        // What runs next: a newer submission wins over the finished job.
        let (need, deadline) = match again {
            Some(a) => {
                self.set_task(key, a.task);
                (a.need, a.deadline)
            }
            None => (slot.need, slot.deadline),
        };
        let seq = self.next_seq();
        let next = |not_before: Mono, failures: u32| {
            Slot::queued(need, deadline, not_before, seq, failures)
        };
        let (not_before, failures) = match how {
            _ if changed => (now, 0),
            Finish::Done => (now, 0),
            Finish::Later(after) => (now + after, failures),
            Finish::Retry { at_least } => {
                let delay = self.backoff.delay(failures, jitter);
                let delay = at_least.map_or(delay, |d| d.max(delay));
                (now + delay, failures.saturating_add(1))
            }
            Finish::Park | Finish::Hold => {
                let held = Slot {
                    kind: Kind::Held,
                    ..next(now, failures.saturating_add(1))
                };
                self.slots.insert(key.clone(), held);
                return;
            }
        };
        self.queue(key.clone(), next(not_before, failures), now);
    }

    /// Queues a held credential again, due at `now`, keeping its failure
    /// count; false when `key` is not held (it changed or went meanwhile).
    pub fn release(&mut self, key: &K, now: Mono) -> bool {
        let Some(&slot) = self.slots.get(key).filter(|s| s.kind == Kind::Held) else {
            return false;
        };
        let seq = self.next_seq();
        self.queue(
            key.clone(),
            Slot::queued(slot.need, slot.deadline, now, seq, u32::from(slot.failures)),
            now,
        );
        true
    }

    /// Queues every parked credential again at once (a configuration change
    /// may have made it usable); returns how many.
    pub fn wake_parked(&mut self, now: Mono) -> usize {
        let mut parked: Vec<(K, Slot)> = self
            .slots
            .iter()
            .filter(|(_, s)| s.kind == Kind::Parked)
            .map(|(k, s)| (k.clone(), *s))
            .collect();
        // In their order of arrival, whatever the map's order (replayable runs).
        parked.sort_by_key(|(_, s)| s.seq);
        let n = parked.len();
        for (key, s) in parked {
            let seq = self.next_seq();
            self.queue(key, Slot::queued(s.need, s.deadline, now, seq, 0), now);
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
            let Some(&slot) = self.slots.get(&key).filter(|s| s.kind == Kind::Queued) else {
                continue;
            };
            self.unindex(&key, &slot);
            self.queue(
                key,
                Slot {
                    not_before: now,
                    ..slot
                },
                now,
            );
            n += 1;
        }
        n
    }

    /// Forgets a credential that is gone (an in-flight one finishes first).
    pub fn forget(&mut self, key: &K) {
        let Some(&slot) = self.slots.get(key) else {
            return;
        };
        if slot.kind == Kind::InFlight {
            return;
        }
        self.slots.remove(key);
        self.tasks.remove(key);
        if slot.kind == Kind::Queued {
            self.unindex(key, &slot);
        }
    }

    /// When the next queued job becomes due (`None`: nothing queued, or a
    /// job is due already and `take` should be called).
    pub fn next_due(&self, now: Mono) -> Option<Mono> {
        if self.ready_live > 0 {
            return Some(now);
        }
        self.delayed.first().map(|d| d.0.max(now))
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Puts queued `slot` in place for `key` (replacing whatever state it had).
    fn queue(&mut self, key: K, slot: Slot, now: Mono) {
        if slot.not_before > now {
            self.delayed
                .insert((slot.not_before, slot.seq, key.clone()));
        } else {
            let r = (slot.need, slot.deadline, slot.seq, key.clone());
            self.ready.push(Reverse(r));
            self.ready_live += 1;
        }
        self.slots.insert(key, slot);
    }

    /// Takes a queued job out of its index: out of `delayed` at once; in
    /// `ready` its entry goes stale.
    fn unindex(&mut self, key: &K, slot: &Slot) {
        if !self
            .delayed
            .remove(&(slot.not_before, slot.seq, key.clone()))
        {
            self.ready_live = self.ready_live.saturating_sub(1);
            if self.ready.len() > 2 * self.ready_live + 64 {
                let mut entries = std::mem::take(&mut self.ready).into_vec();
                entries.retain(|Reverse(r)| live(&self.slots, r));
                self.ready = BinaryHeap::from(entries);
            }
        }
    }

    /// Drops stale entries from the top of `ready`, and its array once empty.
    fn settle(&mut self) {
        while let Some(Reverse(top)) = self.ready.peek() {
            if live(&self.slots, top) {
                return;
            }
            self.ready.pop();
        }
        if self.ready.capacity() > 64 {
            self.ready = BinaryHeap::new();
        }
    }

    /// Moves jobs whose not-before has come into the ready set.
    fn promote(&mut self, now: Mono) {
        while let Some(first) = self.delayed.first() {
            if first.0 > now {
                break;
            }
            let Some((_, seq, key)) = self.delayed.pop_first() else {
                break;
            };
            if let Some(s) = self.slots.get(&key)
                && s.kind == Kind::Queued
                && s.seq == seq
            {
                let r = (s.need, s.deadline, seq, key);
                self.ready.push(Reverse(r));
                self.ready_live += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests;
