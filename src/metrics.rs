//! Prometheus text-format metrics files for node_exporter's textfile collector.
//!
//! [`GetMetrics`] is what `get --metrics-file` keeps: it is loaded at the start
//! of a run (so counters carry across runs), updated, and written back.
//! [`CredmonMetrics`] lives in the credmon's memory and is written after each
//! pass. Files are replaced atomically through [`SafeDir::write_atomic`], so the
//! collector never reads half a file. Label values are restricted to short
//! identifiers: a token can never end up in a label.

mod credmon;
mod get;

pub use credmon::{CredmonMetrics, Histogram, credmon_names};
pub use get::{GetMetrics, get_names};

use crate::files::{self, FileError, WriteOptions};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

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

/// Writes metrics text to `path` atomically, mode 0644 (the collector must
/// read it); an existing file must belong to `uid` (the effective user).
fn write_file(path: &Path, text: &str, uid: u32) -> Result<(), MetricsError> {
    files::write_file(path, text.as_bytes(), WriteOptions::user_file(0o644, uid))?;
    Ok(())
}

/// Adds one to a counter, keyed by a sanitised cause.
fn bump(map: &mut BTreeMap<String, u64>, cause: &str) {
    *map.entry(label_value(cause)).or_insert(0) += 1;
}

#[cfg(test)]
mod tests;
