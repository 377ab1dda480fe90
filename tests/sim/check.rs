//! The invariants, checked as the simulation runs (see docs/reliability.md):
//!
//! * **I1** a live credential never has a missing or expired `.use`, unless
//!   Vault (or the disk, or the host) was in trouble for longer than the
//!   life its `.use` had left when the trouble began (plus the recovery
//!   grace: the first answer releases the backlog within [`GRACE`]);
//! * **I2** a `.use` is never partial or empty, never replaced by a token
//!   that expires sooner, and after a crash never older than what was reported;
//! * **I3** a new credential has its `.use` within 1 s while Vault answers;
//! * **I4** Vault load is bounded: never more requests at once than the
//!   in-flight limit, in steady state no more reads than the renewal rules
//!   call for, during an outage one try per credential plus probes;
//! * **I5** a robot with a keytab never loses its credential;
//! * **I6** the credmon's state does not grow with time.

use robot_credmon::env::Mono;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// After trouble ends, the backlog is refreshed within this long.
pub const GRACE: Duration = Duration::from_secs(45);
/// A new credential's `.use` is due within this long.
pub const NEW_WITHIN: Duration = Duration::from_secs(1);

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `I1` ... `I6`.
    pub invariant: &'static str,
    /// Simulated time since the start, seconds.
    pub at_secs: u64,
    /// What was seen.
    pub what: String,
}

/// A window of trouble (Vault not serving, disk full, host down, KDC down).
#[derive(Debug, Clone)]
struct Window {
    /// What is in trouble (`vault`, `disk`, `kdc`, `keytab userN`).
    what: String,
    begin: Mono,
    end: Option<Mono>,
    /// Only robots' credentials are excused (the KDC, a keytab).
    robots_only: bool,
    /// How long after its end the backlog may take (more than [`GRACE`]
    /// when the server asked us to wait: `Retry-After`).
    grace: Duration,
}

/// What the checker knows about one credential.
#[derive(Debug, Clone, Default)]
pub struct Cred {
    /// Stored by the credd and not deleted (or found dead).
    pub live: bool,
    /// It has a keytab.
    pub robot: bool,
    /// When the credd stored its current `.top`.
    pub stored_at: Mono,
    /// The `.use`'s `exp` as last observed (`None`: missing).
    pub exp: Option<i64>,
    /// The highest `exp` the credmon reported writing (after its commit).
    pub reported: Option<i64>,
}

/// The checker.
#[derive(Debug, Default)]
pub struct Checker {
    /// Broken invariants.
    pub violations: Vec<Violation>,
    creds: BTreeMap<usize, Cred>,
    /// Live credentials by `.use` expiry (`i64::MIN`: missing).
    by_exp: BTreeSet<(i64, usize)>,
    windows: Vec<Window>,
    /// New credentials waiting for their first `.use`: when stored.
    new: BTreeMap<usize, Mono>,
    /// Slow Vault answers of the last seconds: (start, end).
    slow: std::collections::VecDeque<(Mono, Mono)>,
    /// Wall seconds at true time zero.
    pub epoch_secs: i64,
    /// Time before which missing `.use` files are expected (the first fill).
    pub fill_until: Mono,
}

fn secs(t: Mono) -> u64 {
    t.as_duration().as_secs()
}

impl Checker {
    /// A checker for a world whose true time zero is wall `epoch_secs`.
    pub fn new(epoch_secs: i64, fill_until: Mono) -> Self {
        Checker {
            epoch_secs,
            fill_until,
            ..Checker::default()
        }
    }

    /// Records a broken invariant (once per credential and invariant and minute).
    pub fn violate(&mut self, invariant: &'static str, now: Mono, what: String) {
        if self.violations.len() < 1000 {
            self.violations.push(Violation {
                invariant,
                at_secs: secs(now),
                what,
            });
        }
    }

    /// The wall second of true time `t`.
    pub fn wall(&self, t: Mono) -> i64 {
        self.epoch_secs + i64::try_from(secs(t)).unwrap_or(i64::MAX)
    }

    /// Trouble with `what` begins at `now` (until [`Checker::trouble_ends`]).
    pub fn trouble_begins(&mut self, what: &str, now: Mono, robots_only: bool) {
        self.trouble_begins_with(what, now, robots_only, Duration::ZERO);
    }

    /// Like [`Checker::trouble_begins`], when the server asks to be left
    /// alone for `wait` (429's `Retry-After`): the backlog may take that too.
    pub fn trouble_begins_with(
        &mut self,
        what: &str,
        now: Mono,
        robots_only: bool,
        wait: Duration,
    ) {
        self.windows.push(Window {
            what: what.to_owned(),
            begin: now,
            end: None,
            robots_only,
            grace: GRACE + wait,
        });
    }

    /// The trouble with `what` ends at `now`.
    pub fn trouble_ends(&mut self, what: &str, now: Mono) {
        for w in self.windows.iter_mut() {
            if w.end.is_none() && w.what == what {
                w.end = Some(now);
            }
        }
    }

    /// Vault took from `start` to `end` to answer a request (a slow
    /// answer: I3's second cannot hold while one is outstanding). Only the
    /// last few seconds' are kept.
    pub fn slow(&mut self, start: Mono, end: Mono) {
        while self
            .slow
            .front()
            .is_some_and(|(_, e)| *e + Duration::from_secs(10) < start)
        {
            self.slow.pop_front();
        }
        self.slow.push_back((start, end));
    }

    /// A moment of trouble (a crash and restart).
    pub fn blip(&mut self, now: Mono) {
        self.windows.push(Window {
            what: "host".into(),
            begin: now,
            end: Some(now),
            robots_only: false,
            grace: GRACE,
        });
    }

    /// Whether trouble at `now` excuses a `.use` of `cred` that stopped being
    /// good at wall second `gone` (its `exp`, or when it went missing).
    ///
    /// Trouble is what hit this credential, one window after another: two
    /// windows that overlap or follow within the grace (a full disk, then
    /// Vault answering 429) are one trouble, which must have begun while
    /// the `.use` was good.
    fn excused(&self, cred: &Cred, gone: i64, now: Mono) -> bool {
        // Each window as (begin, end plus its grace); open ones never end.
        let mut spans: Vec<(Mono, Option<Mono>)> = self
            .windows
            .iter()
            .filter(|w| !w.robots_only || cred.robot)
            .map(|w| (w.begin, w.end.map(|e| e + w.grace)))
            .collect();
        spans.sort_by_key(|s| s.0);
        let mut merged: Vec<(Mono, Option<Mono>)> = Vec::new();
        for (b, e) in spans {
            match merged.last_mut() {
                Some((_, last)) if last.is_none_or(|l| b <= l) => {
                    *last = match (*last, e) {
                        (Some(l), Some(e)) => Some(l.max(e)),
                        _ => None,
                    };
                }
                _ => merged.push((b, e)),
            }
        }
        merged
            .iter()
            .any(|(b, e)| self.wall(*b) <= gone && e.is_none_or(|e| now < e))
    }

    /// Whether any trouble overlaps `[from, to]`.
    pub fn troubled(&self, from: Mono, to: Mono) -> bool {
        self.windows
            .iter()
            .any(|w| w.begin <= to && w.end.is_none_or(|e| e + GRACE >= from))
    }

    fn index(&mut self, user: usize) {
        self.by_exp.retain(|(_, u)| *u != user);
        if let Some(c) = self.creds.get(&user)
            && c.live
        {
            self.by_exp.insert((c.exp.unwrap_or(i64::MIN), user));
        }
    }

    /// The credd stored a `.top` for `user` at `now` (`new`: it had none;
    /// `signalled`: the credmon runs and was told, so I3 applies).
    pub fn stored(&mut self, user: usize, robot: bool, now: Mono, new: bool, signalled: bool) {
        let c = self.creds.entry(user).or_default();
        c.live = true;
        c.robot = robot;
        c.stored_at = now;
        if new {
            c.exp = None;
            c.reported = None;
            if signalled {
                self.new.insert(user, now);
            }
        }
        self.index(user);
    }

    /// The credential is no longer expected to work (deleted by the credd,
    /// or dead: its Vault token expired or was revoked with no keytab).
    pub fn gone(&mut self, user: usize) {
        if let Some(c) = self.creds.get_mut(&user) {
            c.live = false;
        }
        self.new.remove(&user);
        self.index(user);
    }

    /// The credential's record.
    pub fn cred(&self, user: usize) -> Option<&Cred> {
        self.creds.get(&user)
    }

    /// The `.use` of `user` as read now: `Ok(Some(exp))`, `Ok(None)` when
    /// missing, `Err` when partial or not a token. `after_crash`: the host
    /// restarted since the last observation. `reported`: the credmon just
    /// reported writing it.
    pub fn observed(
        &mut self,
        user: usize,
        seen: Result<Option<i64>, String>,
        now: Mono,
        after_crash: bool,
        reported: bool,
    ) {
        let Some(c) = self.creds.get(&user).cloned() else {
            return;
        };
        log::trace!(
            "observed user{user} at {:?}: {seen:?} (crash {after_crash}, reported {reported})",
            now.as_duration()
        );
        let exp = match seen {
            Err(why) => {
                self.violate("I2", now, format!("user{user}'s .use {why}"));
                None
            }
            Ok(e) => e,
        };
        if let (Some(new), Some(old)) = (exp, c.exp)
            && new < old
            && !after_crash
        {
            self.violate(
                "I2",
                now,
                format!(
                    "user{user}'s .use was replaced by a token expiring {} s sooner",
                    old - new
                ),
            );
        }
        if after_crash
            && let Some(r) = c.reported
            && exp.is_none_or(|e| e < r)
        {
            self.violate(
                "I2",
                now,
                format!("after a crash user{user}'s .use is older ({exp:?}) than what was reported ({r})"),
            );
        }
        if exp.is_some() {
            self.new.remove(&user);
        }
        if let Some(c) = self.creds.get_mut(&user) {
            c.exp = exp;
            if reported && exp.is_some() {
                c.reported = c.reported.max(exp);
            }
        }
        self.index(user);
    }

    /// I1 and I3 at `now` (true time): the earliest expiry, and new
    /// credentials past their second.
    pub fn step(&mut self, now: Mono) {
        let wall_now = self.wall(now);
        let mut bad = Vec::new();
        for &(exp, user) in self.by_exp.iter() {
            if exp > wall_now {
                break;
            }
            bad.push((exp, user));
        }
        for (exp, user) in bad {
            let Some(c) = self.creds.get(&user).cloned() else {
                continue;
            };
            let missing = exp == i64::MIN;
            // A missing .use went bad when it was stored (new ones have I3
            // and the fill has its own allowance).
            let gone = if missing {
                self.wall(c.stored_at + NEW_WITHIN)
            } else {
                exp
            };
            if missing && (now < self.fill_until || now < c.stored_at + NEW_WITHIN + GRACE) {
                continue;
            }
            if !self.excused(&c, gone, now) {
                let what = if missing {
                    format!("user{user} has no .use")
                } else {
                    format!("user{user}'s .use expired {} s ago", wall_now - exp)
                };
                log::trace!(
                    "violation for user{user}: {c:?}, entry exp {exp}, wall now {wall_now}"
                );
                self.violate("I1", now, what);
                // Once per credential until it changes.
                if let Some(c) = self.creds.get_mut(&user) {
                    c.live = false;
                }
                self.index(user);
            }
        }
        let late: Vec<(usize, Mono)> = self
            .new
            .iter()
            .filter(|(_, at)| now > **at + NEW_WITHIN)
            .map(|(u, at)| (*u, *at))
            .collect();
        for (user, at) in late {
            self.new.remove(&user);
            let slow = self
                .slow
                .iter()
                .any(|(b, e)| *b <= at + NEW_WITHIN && *e >= at);
            if !slow && !self.troubled(at, at + NEW_WITHIN) {
                self.violate(
                    "I3",
                    now,
                    format!("user{user}'s new credential had no .use 1 s after it was stored"),
                );
            }
        }
    }

    /// When the next I1 or I3 deadline falls (the earliest `.use` expiry
    /// of a live credential, a new credential's first second).
    pub fn next_deadline(&self) -> Option<Mono> {
        let exp = self.by_exp.first().map(|(exp, _)| {
            let after = exp.saturating_sub(self.epoch_secs).max(0);
            Mono::ZERO + Duration::from_secs(after.unsigned_abs() + 1)
        });
        let new = self
            .new
            .values()
            .map(|at| *at + NEW_WITHIN + Duration::from_millis(1))
            .min();
        exp.into_iter().chain(new).min()
    }

    /// How many credentials are live.
    pub fn live(&self) -> usize {
        self.creds.values().filter(|c| c.live).count()
    }

    /// Whether no trouble at all happened in `[from, to]`.
    pub fn quiet(&self, from: Mono, to: Mono) -> bool {
        !self.troubled(from, to)
    }
}
