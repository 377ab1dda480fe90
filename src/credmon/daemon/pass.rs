//! A full pass's accounting, pure: which credentials the pass queued and
//! has not finished yet, how many it refreshed and how many failed or were
//! skipped. A pass is over when every credential it queued has been tried
//! once; then the coordinator touches `CREDMON_COMPLETE`.

use crate::credmon::refresh::Key;
use std::collections::BTreeSet;

/// How a credential queued by the pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// A new `.use` was written.
    Refreshed,
    /// Nothing was needed, or the credential was removed.
    Nothing,
    /// It failed (it will be retried later) or waits for its server.
    Failed,
}

/// The pass in progress (or the last one).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    active: bool,
    /// A B-tree: a hash table doubles while the fill is at its peak.
    members: BTreeSet<Key>,
    refreshed: usize,
    failed: usize,
}

/// What a finished pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Credentials refreshed.
    pub refreshed: usize,
    /// Credentials that failed, were skipped, back off or wait for a server.
    pub failed: usize,
}

impl Pass {
    /// Starts a pass.
    pub fn begin(&mut self) {
        *self = Pass {
            active: true,
            ..Pass::default()
        };
    }

    /// The pass's scan found `problems` unusable entries: they count as failed.
    pub fn problems(&mut self, problems: usize) {
        if self.active {
            self.failed += problems;
        }
    }

    /// The scan handed `key` to the scheduler: it counts as pending when it
    /// will run now (`runs`: due, or in flight), as failed otherwise (backing
    /// off, parked, or waiting for its server).
    pub fn queued(&mut self, key: Key, runs: bool) {
        if !self.active {
            return;
        }
        if runs {
            self.members.insert(key);
        } else {
            self.failed += 1;
        }
    }

    /// A job on `key` ended.
    pub fn ended(&mut self, key: &Key, how: Ended) {
        if !self.members.remove(key) {
            return;
        }
        match how {
            Ended::Refreshed => self.refreshed += 1,
            Ended::Nothing => {}
            Ended::Failed => self.failed += 1,
        }
    }

    /// Whether a pass is running.
    pub fn active(&self) -> bool {
        self.active
    }

    /// Whether the running pass has tried everything it queued.
    pub fn done(&self) -> bool {
        self.active && self.members.is_empty()
    }

    /// Credentials the pass queued and has not finished.
    pub fn pending(&self) -> usize {
        self.members.len()
    }

    /// Ends the pass; what is still pending counts as failed (`--once` gave up).
    pub fn end(&mut self) -> Summary {
        self.active = false;
        let summary = Summary {
            refreshed: self.refreshed,
            failed: self.failed + self.members.len(),
        };
        self.members = BTreeSet::new();
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: &str) -> Key {
        Key::new(n, "s")
    }

    /// A step of a pass, for the table below.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        Queue(&'static str, bool),
        End(&'static str, Ended),
    }

    /// (problems, steps, done afterwards, summary (refreshed, failed))
    type Case = (usize, &'static [Step], bool, (usize, usize));

    #[test]
    fn accounting_table() {
        use Ended::{Failed as F, Nothing as N, Refreshed as R};
        use Step::{End, Queue};
        let table: &[Case] = &[
            (0, &[], true, (0, 0)),
            (2, &[], true, (0, 2)),
            (0, &[Queue("a", true)], false, (0, 1)),
            (0, &[Queue("a", true), End("a", R)], true, (1, 0)),
            (0, &[Queue("a", true), End("a", F)], true, (0, 1)),
            (0, &[Queue("a", true), End("a", N)], true, (0, 0)),
            // backing off or waiting for its server: failed at once, never pending
            (0, &[Queue("a", false)], true, (0, 1)),
            // a job that ends twice counts once; one not queued by the pass not at all
            (
                0,
                &[Queue("a", true), End("a", R), End("a", R), End("b", F)],
                true,
                (1, 0),
            ),
            (
                1,
                &[Queue("a", true), Queue("b", true), End("b", R)],
                false,
                (1, 2),
            ),
        ];
        for (problems, steps, done, (refreshed, failed)) in table {
            let mut p = Pass::default();
            p.begin();
            p.problems(*problems);
            for s in steps.iter() {
                match *s {
                    Queue(n, runs) => p.queued(k(n), runs),
                    End(n, how) => p.ended(&k(n), how),
                }
            }
            assert_eq!(p.done(), *done, "{steps:?}");
            assert_eq!(
                p.end(),
                Summary {
                    refreshed: *refreshed,
                    failed: *failed
                },
                "{steps:?}"
            );
            assert!(!p.active());
        }
    }

    #[test]
    fn nothing_counts_outside_a_pass() {
        let mut p = Pass::default();
        p.queued(k("a"), true);
        assert_eq!(p.pending(), 0);
        assert!(!p.done());
    }
}
