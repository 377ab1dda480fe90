//! The coordinator's view of every credential's state at the end of a pass:
//! the per-state counts of the metrics and of systemd's status line.

use super::Coordinator;
use super::core::Seen;
use std::collections::BTreeMap;

impl Coordinator {
    /// Credentials by state and the soonest token expiry, from the scan of the
    /// pass and the workers' results since.
    pub(super) fn credential_states(&self) -> (BTreeMap<String, u64>, Option<i64>) {
        let core = self.shared.lock();
        let mut states: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut soonest: Option<i64> = None;
        let mut count = |state: &'static str, exp: Option<i64>| {
            *states.entry(state).or_insert(0) += 1;
            if let Some(e) = exp {
                soonest = Some(soonest.map_or(e, |s| s.min(e)));
            }
        };
        let table = &self.scanner.table;
        for (key, c) in table.credentials() {
            let use_file = c.use_file();
            let use_exp = use_file.map(|u| u.exp).filter(|e| *e != i64::MIN);
            let (has_use, exp) = match core.seen(&key) {
                Some(Seen::Removed) => continue,
                Some(Seen::Refreshed(exp)) => (true, exp),
                None => (use_file.is_some(), use_exp),
            };
            let state = if core.parked(&key) {
                "unusable"
            } else if core.failures(&key) > 0 {
                "failing"
            } else if has_use {
                "fresh"
            } else {
                "missing"
            };
            count(state, exp);
        }
        // Credentials the scan did not see (provisioned during the pass).
        for (key, seen) in core.seen_all() {
            let scanned = table
                .get(&key.user)
                .is_some_and(|u| u.cred(&key.stem).is_some());
            if let Seen::Refreshed(exp) = seen
                && !scanned
            {
                let state = if core.failures(key) > 0 {
                    "failing"
                } else {
                    "fresh"
                };
                count(state, exp);
            }
        }
        let states = states.into_iter().map(|(s, n)| (s.to_owned(), n));
        (states.collect(), soonest)
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
        let wall = self.shared.clock.now();
        let needs_login = self.ctx.status().needs_login();
        {
            let mut core = self.shared.lock();
            let metrics = core.metrics_mut();
            metrics.end_pass(wall, states, soonest);
            metrics.needs_login = needs_login
                .into_iter()
                .map(|k| (k.user.to_string(), k.stem.to_string()))
                .collect();
        }
        if let Some(path) = &self.ctx.config().metrics_file {
            drop(self.shared.write_metrics(path, self.ctx.euid()));
        }
        summary
    }
}

impl Coordinator {
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
        tracker.pass_done(crate::token::unix_seconds(self.shared.clock.now()));
    }
}
