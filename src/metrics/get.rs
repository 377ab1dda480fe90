//! `get --metrics-file`: the counters and gauges of the cron role, carried
//! across runs by loading the previous file.

use super::{MAX_METRICS_BYTES, MetricsError, Sample, Text, bump, parse, write_file};
use crate::files;
use crate::token::unix_seconds;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

/// The metrics of `get --metrics-file`, carried from run to run through the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetMetrics {
    /// Value of the `user` label on every sample (the robot's user name); empty for none.
    pub user: String,
    /// When a run last ended, successfully or not (seconds since the epoch).
    pub last_run: Option<i64>,
    /// When a run last ended with a valid token (refreshed or still valid).
    pub last_success: Option<i64>,
    /// When a new token was last written.
    pub last_refresh: Option<i64>,
    /// Expiry of the token in the file after the last successful run.
    pub expiry: Option<i64>,
    /// Failed runs since the last successful one.
    pub consecutive_failures: u64,
    /// New tokens written, by cause (e.g. `missing`, `expiring`, `invalid`).
    pub refreshes_by_cause: BTreeMap<String, u64>,
    /// Failed runs, by cause (e.g. `kerberos`, `vault`, `file`).
    pub failures_by_cause: BTreeMap<String, u64>,
    /// The last run ended needing a person (exit status 4).
    pub needs_login: bool,
}

/// Metric names of [`GetMetrics`].
pub mod get_names {
    /// Gauge: last run end time.
    pub const LAST_RUN: &str = "robot_credmon_get_last_run_timestamp_seconds";
    /// Gauge: last successful run end time.
    pub const LAST_SUCCESS: &str = "robot_credmon_get_last_success_timestamp_seconds";
    /// Gauge: last time a new token was written.
    pub const LAST_REFRESH: &str = "robot_credmon_get_last_refresh_timestamp_seconds";
    /// Gauge: expiry time of the current token.
    pub const EXPIRY: &str = "robot_credmon_get_token_expiry_timestamp_seconds";
    /// Gauge: failed runs since the last success.
    pub const CONSECUTIVE_FAILURES: &str = "robot_credmon_get_consecutive_failures";
    /// Counter by `cause`: new tokens written.
    pub const REFRESHES: &str = "robot_credmon_get_refreshes_total";
    /// Counter by `cause`: failed runs.
    pub const FAILURES: &str = "robot_credmon_get_failures_total";
    /// Gauge: 1 when the last run ended needing a person to log in, else 0.
    pub const NEEDS_LOGIN: &str = "robot_credmon_get_needs_login";
}

impl GetMetrics {
    /// Reads a metrics file written by [`GetMetrics::write`]; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Self, MetricsError> {
        let Some(bytes) = files::read_file(path, MAX_METRICS_BYTES)? else {
            return Ok(Self::default());
        };
        let text = String::from_utf8_lossy(&bytes);
        let samples = parse(&text).map_err(|(line, why)| MetricsError::Parse {
            path: path.to_owned(),
            line,
            why,
        })?;
        Ok(Self::from_samples(&samples))
    }

    /// Like [`GetMetrics::load`], but a missing or damaged file starts from zero (with a warning).
    pub fn load_or_default(path: &Path) -> Self {
        Self::load(path).unwrap_or_else(|e| {
            log::warn!("starting the metrics from zero: {e}");
            Self::default()
        })
    }

    /// Rebuilds the metrics from parsed samples; unknown samples are ignored.
    pub fn from_samples(samples: &[Sample]) -> Self {
        use get_names::*;
        let mut m = Self::default();
        let time = |v: f64| Some(v as i64);
        for s in samples {
            if let Some(u) = s.label("user") {
                m.user = u.to_owned();
            }
            let cause = || s.label("cause").unwrap_or("other").to_owned();
            match s.name.as_str() {
                LAST_RUN => m.last_run = time(s.value),
                LAST_SUCCESS => m.last_success = time(s.value),
                LAST_REFRESH => m.last_refresh = time(s.value),
                EXPIRY => m.expiry = time(s.value),
                CONSECUTIVE_FAILURES => m.consecutive_failures = s.value as u64,
                NEEDS_LOGIN => m.needs_login = s.value != 0.0,
                REFRESHES => {
                    m.refreshes_by_cause.insert(cause(), s.value as u64);
                }
                FAILURES => {
                    m.failures_by_cause.insert(cause(), s.value as u64);
                }
                _ => {}
            }
        }
        m
    }

    /// Records a successful run at `now`; `refresh_cause` is `Some` when a new token was written.
    pub fn record_success(
        &mut self,
        now: SystemTime,
        expiry: Option<i64>,
        refresh_cause: Option<&str>,
    ) {
        let now = unix_seconds(now);
        self.last_run = Some(now);
        self.last_success = Some(now);
        self.expiry = expiry.or(self.expiry);
        self.consecutive_failures = 0;
        self.needs_login = false;
        if let Some(cause) = refresh_cause {
            self.last_refresh = Some(now);
            bump(&mut self.refreshes_by_cause, cause);
        }
    }

    /// Records a failed run at `now`.
    pub fn record_failure(&mut self, now: SystemTime, cause: &str) {
        self.last_run = Some(unix_seconds(now));
        self.consecutive_failures += 1;
        self.needs_login = cause == "needs_login";
        bump(&mut self.failures_by_cause, cause);
    }

    /// The file contents.
    pub fn render(&self) -> String {
        use get_names::*;
        let mut t = Text::default();
        let user = [("user", self.user.as_str())];
        let base: &[(&str, &str)] = if self.user.is_empty() { &[] } else { &user };
        let f = |v: Option<i64>| v.map(|v| v as f64);
        t.gauge(
            LAST_RUN,
            "When robot-credmon get last ran (seconds since the epoch).",
            base,
            f(self.last_run),
        );
        t.gauge(
            LAST_SUCCESS,
            "When robot-credmon get last ended with a valid token.",
            base,
            f(self.last_success),
        );
        t.gauge(
            LAST_REFRESH,
            "When robot-credmon get last wrote a new token.",
            base,
            f(self.last_refresh),
        );
        t.gauge(
            EXPIRY,
            "Expiry time of the bearer token after the last successful run.",
            base,
            f(self.expiry),
        );
        t.gauge(
            CONSECUTIVE_FAILURES,
            "Failed runs since the last successful one.",
            base,
            Some(self.consecutive_failures as f64),
        );
        t.gauge(
            NEEDS_LOGIN,
            "1 when the last run ended needing a person to log in (exit status 4), else 0.",
            base,
            Some(f64::from(u8::from(self.needs_login))),
        );
        t.counters(
            REFRESHES,
            "New bearer tokens written, by cause.",
            base,
            "cause",
            &self.refreshes_by_cause,
        );
        t.counters(
            FAILURES,
            "Failed runs, by cause.",
            base,
            "cause",
            &self.failures_by_cause,
        );
        t.out
    }

    /// Replaces the metrics file atomically; an existing one must belong to
    /// `uid` (the effective user).
    pub fn write(&self, path: &Path, uid: u32) -> Result<(), MetricsError> {
        write_file(path, &self.render(), uid)
    }
}
