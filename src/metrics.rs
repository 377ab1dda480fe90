//! Prometheus text-format metrics files for node_exporter's textfile collector.
//!
//! [`GetMetrics`] is what `get --metrics-file` keeps: it is loaded at the start
//! of a run (so counters carry across runs), updated, and written back.
//! [`CredmonMetrics`] lives in the credmon's memory and is written after each
//! pass. Files are replaced atomically through [`SafeDir::write_atomic`], so the
//! collector never reads half a file. Label values are restricted to short
//! identifiers: a token can never end up in a label.

use crate::files::{self, FileError, WriteOptions};
use crate::token::unix_seconds;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Largest metrics file [`GetMetrics::load`] reads.
const MAX_METRICS_BYTES: usize = 1024 * 1024;

/// Longest label value we write; longer values become `other`.
const MAX_LABEL_CHARS: usize = 64;

/// Upper bounds (seconds) of the refresh-duration histogram buckets.
pub const DURATION_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Why a metrics file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Reading or writing the file failed.
    #[error(transparent)]
    File(#[from] FileError),
    /// The file is not in the Prometheus text format.
    #[error("'{path}' line {line} is not prometheus text format: {why}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
}

/// One sample of the text format: `name{label="value",...} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name.
    pub name: String,
    /// Labels in file order.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// The value of a label, if present.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses Prometheus text format (comments skipped, timestamps ignored).
/// Errors are `(line number, reason)`.
pub fn parse(text: &str) -> Result<Vec<Sample>, (usize, String)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(parse_line(line).map_err(|why| (i + 1, why))?);
    }
    Ok(out)
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value")?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("invalid metric name '{name}'"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, remainder) = parse_labels(after)?;
        labels = parsed;
        rest = remainder;
    }
    let value_text = rest.split_whitespace().next().ok_or("no value")?;
    let value = value_text
        .parse::<f64>()
        .map_err(|_| format!("invalid value '{value_text}'"))?;
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Labels as parsed, in file order.
type Labels = Vec<(String, String)>;

/// Parses `k="v",k2="v2"}` and returns the labels and what follows `}`.
fn parse_labels(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let eq = s.find('=').ok_or("label without '='")?;
        let key = s[..eq].trim();
        if !is_metric_name(key) {
            return Err(format!("invalid label name '{key}'"));
        }
        let mut chars = s[eq + 1..].trim_start().char_indices();
        let start = s.len() - s[eq + 1..].trim_start().len();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err("label value without quotes".into());
        }
        let mut value = String::new();
        let mut end = None;
        let mut escaped = false;
        for (i, c) in chars {
            if escaped {
                value.push(match c {
                    'n' => '\n',
                    other => other,
                });
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                end = Some(start + i + 1);
                break;
            } else {
                value.push(c);
            }
        }
        let end = end.ok_or("unterminated label value")?;
        labels.push((key.to_owned(), value));
        s = s[end..].trim_start();
        s = s.strip_prefix(',').unwrap_or(s);
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A label value fit to publish: short identifier characters only, and nothing
/// shaped like a JWT (two dots or more); anything else becomes `other`.
pub fn label_value(s: &str) -> String {
    let ok = !s.is_empty()
        && s.chars().count() <= MAX_LABEL_CHARS
        && s.matches('.').count() < 2
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.@:+".contains(c));
    if ok { s.to_owned() } else { "other".to_owned() }
}

/// Formats a sample value: integers without a fraction.
fn number(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Builds text-format output family by family.
#[derive(Default)]
struct Text {
    out: String,
}

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            let body: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", label_value(v)))
                .collect();
            let _ = write!(self.out, "{{{}}}", body.join(","));
        }
        let _ = writeln!(self.out, " {}", number(value));
    }

    fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: Option<f64>) {
        if let Some(v) = value {
            self.family(name, "gauge", help);
            self.sample(name, labels, v);
        }
    }

    fn counters(
        &mut self,
        name: &str,
        help: &str,
        base: &[(&str, &str)],
        key: &str,
        by: &BTreeMap<String, u64>,
    ) {
        self.family(name, "counter", help);
        for (k, n) in by {
            let mut labels = base.to_vec();
            labels.push((key, k));
            self.sample(name, &labels, *n as f64);
        }
    }
}

/// Writes metrics text to `path` atomically, mode 0644 (the collector must read it).
fn write_file(path: &Path, text: &str) -> Result<(), MetricsError> {
    files::write_file(
        path,
        text.as_bytes(),
        WriteOptions::user_file(0o644, nix::unistd::geteuid().as_raw()),
    )?;
    Ok(())
}

/// Adds one to a counter, keyed by a sanitised cause.
fn bump(map: &mut BTreeMap<String, u64>, cause: &str) {
    *map.entry(label_value(cause)).or_insert(0) += 1;
}

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
        if let Some(cause) = refresh_cause {
            self.last_refresh = Some(now);
            bump(&mut self.refreshes_by_cause, cause);
        }
    }

    /// Records a failed run at `now`.
    pub fn record_failure(&mut self, now: SystemTime, cause: &str) {
        self.last_run = Some(unix_seconds(now));
        self.consecutive_failures += 1;
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

    /// Replaces the metrics file atomically.
    pub fn write(&self, path: &Path) -> Result<(), MetricsError> {
        write_file(path, &self.render())
    }
}

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
        t.out
    }

    /// Replaces the metrics file atomically.
    pub fn write(&self, path: &Path) -> Result<(), MetricsError> {
        write_file(path, &self.render())
    }
}

#[cfg(test)]
mod tests;
