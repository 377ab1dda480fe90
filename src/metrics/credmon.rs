//! The credmon's metrics: kept in memory, written after each pass.

use super::{DURATION_BUCKETS, MetricsError, Text, bump, label_value, number, write_file};
use crate::token::unix_seconds;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// A cumulative histogram with fixed bucket bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: Vec<f64>,
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new(&DURATION_BUCKETS)
    }
}

impl Histogram {
    /// An empty histogram with these (ascending) bucket upper bounds.
    pub fn new(bounds: &[f64]) -> Self {
        Histogram {
            bounds: bounds.to_vec(),
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    /// Counts one observation.
    pub fn observe(&mut self, value: f64) {
        for (bound, n) in self.bounds.iter().zip(self.counts.iter_mut()) {
            if value <= *bound {
                *n += 1;
            }
        }
        self.sum += value;
        self.count += 1;
    }

    /// How many observations there were.
    pub fn count(&self) -> u64 {
        self.count
    }

    fn render(&self, t: &mut Text, name: &str, help: &str) {
        t.family(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        for (bound, n) in self.bounds.iter().zip(&self.counts) {
            t.sample(&bucket, &[("le", &number(*bound))], *n as f64);
        }
        t.sample(&bucket, &[("le", "+Inf")], self.count as f64);
        t.sample(&format!("{name}_sum"), &[], self.sum);
        t.sample(&format!("{name}_count"), &[], self.count as f64);
    }
}

/// Metric names of [`CredmonMetrics`].
pub mod credmon_names {
    /// Gauge: end time of the last complete pass.
    pub const LAST_PASS: &str = "robot_credmon_credmon_last_pass_timestamp_seconds";
    /// Gauge: time of the last successful refresh.
    pub const LAST_SUCCESS: &str = "robot_credmon_credmon_last_success_timestamp_seconds";
    /// Gauge: the soonest expiry among the `.use` tokens.
    pub const SOONEST_EXPIRY: &str = "robot_credmon_credmon_token_expiry_timestamp_seconds";
    /// Gauge: passes in a row with a failed refresh.
    pub const CONSECUTIVE_FAILURES: &str = "robot_credmon_credmon_consecutive_failures";
    /// Gauge by `state`: credentials.
    pub const CREDENTIALS: &str = "robot_credmon_credmon_credentials";
    /// Counter by `cause`: refreshes.
    pub const REFRESHES: &str = "robot_credmon_credmon_refreshes_total";
    /// Counter by `cause`: failed refreshes.
    pub const FAILURES: &str = "robot_credmon_credmon_failures_total";
    /// Histogram: refresh durations.
    pub const REFRESH_DURATION: &str = "robot_credmon_credmon_refresh_duration_seconds";
    /// Gauge: 1 while the credmon runs; 0 in the file it writes when it stops.
    pub const UP: &str = "robot_credmon_credmon_up";
    /// Gauge: credentials that need a person (always written).
    pub const NEEDING_LOGIN: &str = "robot_credmon_credmon_credentials_needing_login";
    /// Gauge by `user` and `credential`: 1 for each credential that needs a
    /// person; no series for the others (cardinality stays small at 10,000 credentials).
    pub const NEEDS_LOGIN: &str = "robot_credmon_credmon_needs_login";
}

/// The credmon's metrics, kept in memory and written after each pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CredmonMetrics {
    /// End of the last complete pass (seconds since the epoch).
    pub last_pass: Option<i64>,
    /// Time of the last successful refresh.
    pub last_success: Option<i64>,
    /// The soonest expiry among the `.use` tokens after the last pass.
    pub soonest_expiry: Option<i64>,
    /// Passes in a row with at least one failed refresh.
    pub consecutive_failures: u64,
    /// Credentials by state after the last pass (e.g. `fresh`, `failing`, `missing`).
    pub credentials_by_state: BTreeMap<String, u64>,
    /// Refreshes by cause (e.g. `missing`, `expiring`, `new_top`, `sighup`).
    pub refreshes_by_cause: BTreeMap<String, u64>,
    /// Failed refreshes by cause (e.g. `vault`, `permission_denied`, `file`).
    pub failures_by_cause: BTreeMap<String, u64>,
    /// How long refreshes took, successful or not.
    pub refresh_duration: Histogram,
    /// The credentials that need a person, as `(user, credential)`.
    pub needs_login: Vec<(String, String)>,
    /// The credmon has stopped (the file written at exit says `up 0`).
    pub stopped: bool,
    failed_this_pass: bool,
}

impl CredmonMetrics {
    /// Records a successful refresh that took `took`.
    pub fn record_refresh(&mut self, now: SystemTime, cause: &str, took: Duration) {
        self.last_success = Some(unix_seconds(now));
        bump(&mut self.refreshes_by_cause, cause);
        self.refresh_duration.observe(took.as_secs_f64());
    }

    /// Records a failed refresh that took `took`.
    pub fn record_failure(&mut self, cause: &str, took: Duration) {
        bump(&mut self.failures_by_cause, cause);
        self.refresh_duration.observe(took.as_secs_f64());
        self.failed_this_pass = true;
    }

    /// Records the end of a pass: the credentials by state and the soonest expiry.
    pub fn end_pass(
        &mut self,
        now: SystemTime,
        credentials_by_state: BTreeMap<String, u64>,
        soonest_expiry: Option<i64>,
    ) {
        self.last_pass = Some(unix_seconds(now));
        self.credentials_by_state = credentials_by_state
            .into_iter()
            .map(|(k, v)| (label_value(&k), v))
            .collect();
        self.soonest_expiry = soonest_expiry;
        if self.failed_this_pass {
            self.consecutive_failures += 1;
        } else {
            self.consecutive_failures = 0;
        }
        self.failed_this_pass = false;
    }

    /// The file contents.
    pub fn render(&self) -> String {
        use credmon_names::*;
        let mut t = Text::default();
        let f = |v: Option<i64>| v.map(|v| v as f64);
        t.gauge(
            LAST_PASS,
            "End of the credmon's last complete pass (seconds since the epoch).",
            &[],
            f(self.last_pass),
        );
        t.gauge(
            LAST_SUCCESS,
            "Time of the credmon's last successful refresh.",
            &[],
            f(self.last_success),
        );
        t.gauge(
            SOONEST_EXPIRY,
            "The soonest expiry among the credentials' access tokens.",
            &[],
            f(self.soonest_expiry),
        );
        t.gauge(
            CONSECUTIVE_FAILURES,
            "Passes in a row with at least one failed refresh.",
            &[],
            Some(self.consecutive_failures as f64),
        );
        t.family(
            CREDENTIALS,
            "gauge",
            "Credentials by state after the last pass.",
        );
        for (state, n) in &self.credentials_by_state {
            t.sample(CREDENTIALS, &[("state", state)], *n as f64);
        }
        t.counters(
            REFRESHES,
            "Access tokens refreshed, by cause.",
            &[],
            "cause",
            &self.refreshes_by_cause,
        );
        t.counters(
            FAILURES,
            "Failed refreshes, by cause.",
            &[],
            "cause",
            &self.failures_by_cause,
        );
        self.refresh_duration.render(
            &mut t,
            REFRESH_DURATION,
            "Time taken by refreshes, successful or not.",
        );
        self.render_up_and_needs_login(&mut t);
        t.out
    }

    /// Whether it runs; the credentials that need a person: the total, and
    /// one series per credential (none for the others).
    fn render_up_and_needs_login(&self, t: &mut Text) {
        use credmon_names::*;
        t.gauge(
            UP,
            "1 while the credmon runs; 0 once it has stopped.",
            &[],
            Some(f64::from(u8::from(!self.stopped))),
        );
        t.gauge(
            NEEDING_LOGIN,
            "Credentials whose Vault answer says a person must log in (OIDC) before they work again.",
            &[],
            Some(self.needs_login.len() as f64),
        );
        if self.needs_login.is_empty() {
            return;
        }
        t.family(
            NEEDS_LOGIN,
            "gauge",
            "1 for each credential that needs a person to log in; absent for the others.",
        );
        for (user, credential) in &self.needs_login {
            t.sample(
                NEEDS_LOGIN,
                &[("user", user), ("credential", credential)],
                1.0,
            );
        }
    }

    /// Replaces the metrics file atomically; an existing one must belong to
    /// `uid` (the effective user).
    pub fn write(&self, path: &Path, uid: u32) -> Result<(), MetricsError> {
        write_file(path, &self.render(), uid)
    }
}
