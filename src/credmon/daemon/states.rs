//! The coordinator's view of every credential's state at the end of a pass:
//! the per-state counts of the metrics and of systemd's status line.

use super::Coordinator;
use super::pool::Seen;
use crate::credmon::refresh::Key;
use std::collections::{BTreeMap, HashSet};
use std::time::SystemTime;

impl Coordinator {
    /// Credentials by state and the soonest token expiry, from the scan of the
    /// pass and the workers' results since.
    pub(super) fn credential_states(&self) -> (BTreeMap<String, u64>, Option<i64>) {
        let st = self.shared.lock();
        let mut states: BTreeMap<String, u64> = BTreeMap::new();
        let mut soonest: Option<i64> = None;
        let mut count = |state: &str, exp: Option<i64>| {
            *states.entry(state.to_owned()).or_insert(0) += 1;
            if let Some(e) = exp {
                soonest = Some(soonest.map_or(e, |s| s.min(e)));
            }
        };
        let mut counted = HashSet::new();
        for (user, c) in self.scanner.credentials() {
            let key = Key {
                user: user.clone(),
                stem: c.stem.clone(),
            };
            let (has_use, exp) = match st.seen.get(&key) {
                Some(Seen::Removed) => continue,
                Some(Seen::Refreshed(exp)) => (true, *exp),
                None => (c.use_state.is_some(), c.use_state.and_then(|u| u.exp)),
            };
            let state = if st.sched.parked(&key) {
                "unusable"
            } else if st.sched.failures(&key) > 0 {
                "failing"
            } else if has_use {
                "fresh"
            } else {
                "missing"
            };
            count(state, exp);
            counted.insert(key);
        }
        // Credentials the scan did not see (provisioned during the pass).
        for (key, seen) in &st.seen {
            if let Seen::Refreshed(exp) = seen
                && !counted.contains(key)
            {
                let state = if st.sched.failures(key) > 0 {
                    "failing"
                } else {
                    "fresh"
                };
                count(state, *exp);
            }
        }
        (states, soonest)
    }

    /// Ends the pass in the metrics and writes the metrics file when one is
    /// configured; returns a summary of the credentials for systemd's status line.
    pub(super) fn end_pass_metrics(&mut self) -> String {
        let (states, soonest) = self.credential_states();
        let total: u64 = states.values().sum();
        let summary = format!(
            "{total} credential(s) ({})",
            states
                .iter()
                .map(|(s, n)| format!("{n} {s}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let needs_login = self.ctx.status().needs_login();
        let mut st = self.shared.lock();
        st.metrics.end_pass(SystemTime::now(), states, soonest);
        st.metrics.needs_login = needs_login.into_iter().map(|k| (k.user, k.stem)).collect();
        drop(st);
        if let Some(path) = &self.ctx.config().metrics_file {
            drop(self.shared.write_metrics(path));
        }
        summary
    }

    /// The end of a pass for the state file: skipped credentials whose
    /// `.top` is gone are forgotten.
    pub(super) fn status_pass_done(&self) {
        let tracker = self.ctx.status();
        if let Some(root) = self.root() {
            tracker.prune_skipped(|k| {
                !matches!(
                    root.open_child(&k.user)
                        .and_then(|d| d.stat(&format!("{}.top", k.stem))),
                    Ok(Some(_))
                )
            });
        }
        tracker.pass_done(crate::token::unix_seconds(self.ctx.now()));
    }
}
