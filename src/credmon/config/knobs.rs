//! The credmon's HTCondor knobs, declared once: [`TABLE`] names each knob with
//! its kind, default, limits and meaning. The same declarations drive
//! loading (which macros `condor_config_val` expands), resolving (defaults,
//! limits, "empty means unset") in [`super::resolve`], `--check-config` and
//! the knob table in docs/credmon.md ([`markdown_table`], checked by a test).

use super::{Config, ConfigError};
pub use crate::condor::config::{Knobs, env_knobs, parse_dump};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// The default daemon name (`-n`); knobs marked [`Knob::per_name`] start with it.
pub const DEFAULT_NAME: &str = "CREDMON_OAUTH";

mod table;
pub use table::*;

/// What a knob holds and how it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A path; empty means unset.
    Path,
    /// Free text; empty means unset.
    Text,
    /// An HTCondor list (commas and/or spaces).
    List,
    /// True or False.
    Bool,
    /// A whole number within `min..=max`; `clamp` brings other values into range
    /// instead of refusing them.
    Number {
        /// Smallest value.
        min: u64,
        /// Largest value.
        max: u64,
        /// Clamp instead of refusing.
        clamp: bool,
    },
    /// A log level name.
    Level,
}

/// One credmon knob.
#[derive(Debug, Clone, Copy)]
pub struct Knob {
    /// The name (with the default daemon name when [`Knob::per_name`]).
    pub name: &'static str,
    /// Whether `-n NAME` replaces the `CREDMON_OAUTH` prefix (`<NAME>_LOG`).
    pub per_name: bool,
    /// What it holds.
    pub kind: Kind,
    /// The default, as documented (empty: unset).
    pub default: &'static str,
    /// What it means (one sentence, Markdown).
    pub doc: &'static str,
    /// Its resolved value for `--check-config` (`None`: shown through another knob).
    pub show: Option<fn(&Config) -> String>,
}

const fn knob(name: &'static str, kind: Kind, default: &'static str, doc: &'static str) -> Knob {
    Knob {
        name,
        per_name: false,
        kind,
        default,
        doc,
        show: None,
    }
}

impl Knob {
    const fn shown(mut self, show: fn(&Config) -> String) -> Self {
        self.show = Some(show);
        self
    }

    const fn per_name(mut self) -> Self {
        self.per_name = true;
        self
    }

    /// The knob's name for daemon name `name` (`<NAME>_LOG` for `-n NAME`).
    pub fn name_for(&self, name: &str) -> String {
        match self.name.strip_prefix(DEFAULT_NAME) {
            Some(rest) if self.per_name => format!("{name}{rest}"),
            _ => self.name.to_owned(),
        }
    }
}

/// Typed access to raw knobs by their declarations, for daemon name `name`.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    knobs: &'a Knobs,
    name: &'a str,
}

impl<'a> Reader<'a> {
    /// Reads `knobs` for the daemon called `name` (upper case).
    pub fn new(knobs: &'a Knobs, name: &'a str) -> Self {
        Reader { knobs, name }
    }

    /// The trimmed value; empty means unset (as HTCondor's credmon treats `AUTH_SSL_CLIENT_CAFILE`).
    pub fn text(&self, k: &Knob) -> Option<&'a str> {
        self.knobs
            .get(&k.name_for(self.name))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// A path.
    pub fn path(&self, k: &Knob) -> Option<PathBuf> {
        self.text(k).map(PathBuf::from)
    }

    /// A list, or `default` when unset.
    pub fn list(&self, k: &Knob) -> Vec<String> {
        list(self.text(k).unwrap_or(k.default))
    }

    /// A number within the knob's limits, or `default` when unset.
    pub fn number(&self, k: &Knob, default: u64) -> Result<u64, ConfigError> {
        let Kind::Number { min, max, clamp } = k.kind else {
            return Err(self.invalid(k, "", "not a number knob"));
        };
        let Some(v) = self.text(k) else {
            return Ok(default);
        };
        let n: u64 = v
            .parse()
            .map_err(|_| self.invalid(k, v, "expected a whole number"))?;
        match (n, clamp) {
            (n, true) => Ok(n.clamp(min, max)),
            (n, false) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ConfigError::Invalid {
                knob: k.name_for(self.name),
                value: v.to_owned(),
                why: format!("expected {min} to {max}"),
            }),
        }
    }

    /// A number of seconds, as a duration.
    pub fn seconds(&self, k: &Knob, default: u64) -> Result<Duration, ConfigError> {
        self.number(k, default).map(Duration::from_secs)
    }

    /// A boolean (HTCondor's `True`/`False`, `yes`/`no`, `t`/`f`, `1`/`0`).
    pub fn boolean(&self, k: &Knob, default: bool) -> Result<bool, ConfigError> {
        let Some(v) = self.text(k) else {
            return Ok(default);
        };
        match v.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "1" => Ok(true),
            "false" | "f" | "no" | "0" => Ok(false),
            _ => Err(self.invalid(k, v, "expected True or False")),
        }
    }

    /// A log level (Python's `logging` names).
    pub fn level(&self, k: &Knob) -> Result<Option<log::LevelFilter>, ConfigError> {
        self.text(k)
            .map(|v| {
                parse_level(v).ok_or_else(|| {
                    self.invalid(k, v, "expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
                })
            })
            .transpose()
    }

    /// Whether some knob ends in `suffix` (e.g. `<provider>_CLIENT_ID`): their prefixes.
    pub fn prefixes_of(&self, suffix: &str) -> impl Iterator<Item = &'a str> {
        self.knobs
            .keys()
            .filter_map(move |k| k.strip_suffix(suffix))
    }

    /// An error for knob `k` holding `value`.
    pub fn invalid(&self, k: &Knob, value: &str, why: &str) -> ConfigError {
        ConfigError::Invalid {
            knob: k.name_for(self.name),
            value: value.to_owned(),
            why: why.to_owned(),
        }
    }
}

/// An HTCondor list: items separated by commas and/or white space.
pub fn list(v: &str) -> Vec<String> {
    v.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A level name as Python's `logging.getLevelName` knows them (and `TRACE`).
fn parse_level(v: &str) -> Option<log::LevelFilter> {
    use log::LevelFilter as L;
    Some(match v.to_ascii_uppercase().as_str() {
        "TRACE" | "NOTSET" => L::Trace,
        "DEBUG" => L::Debug,
        "INFO" => L::Info,
        "WARNING" | "WARN" => L::Warn,
        "ERROR" | "CRITICAL" | "FATAL" => L::Error,
        _ => return None,
    })
}

/// The name `--check-config` shows for a level.
pub fn level_name(l: log::LevelFilter) -> &'static str {
    match l {
        log::LevelFilter::Off | log::LevelFilter::Error => "ERROR",
        log::LevelFilter::Warn => "WARNING",
        log::LevelFilter::Info => "INFO",
        log::LevelFilter::Debug => "DEBUG",
        log::LevelFilter::Trace => "TRACE",
    }
}

/// Whether an HTCondor debug setting (`<NAME>_DEBUG`) asks for debug messages.
pub fn debug_requested(v: &str) -> bool {
    list(v).iter().any(|w| {
        let w = w.to_ascii_uppercase();
        let (cat, verbosity) = w.split_once(':').unwrap_or((&w, ""));
        matches!(cat, "D_FULLDEBUG" | "D_ALL" | "D_ANY")
            || (cat.starts_with("D_") && matches!(verbosity, "2" | "3"))
    })
}

/// Reads the knobs through the one HTCondor configuration reader
/// ([`crate::condor::config::load`]), expanding the macros of the knobs in
/// [`TABLE`] for the daemon called `name`.
pub fn load<'e>(
    env: impl IntoIterator<Item = (&'e str, &'e str)>,
    path_var: Option<OsString>,
    name: &str,
) -> Knobs {
    crate::condor::config::load(env, path_var, |k| wanted(k, name))
}

/// Like [`load`], but an installed `condor_config_val` that fails is an
/// error, not a configuration from the environment alone (a SIGHUP then
/// keeps the configuration in use: say a new configuration file the
/// confined credmon cannot read, docs/security.md).
pub fn load_strict<'e>(
    env: impl IntoIterator<Item = (&'e str, &'e str)>,
    path_var: Option<OsString>,
    name: &str,
) -> Result<Knobs, String> {
    match crate::condor::config::load_reporting(env, path_var, |k| wanted(k, name)) {
        (knobs, None) => Ok(knobs),
        (_, Some(e)) => Err(e),
    }
}

/// Whether `k` is a knob we read.
fn wanted(k: &str, name: &str) -> bool {
    TABLE.iter().any(|kn| kn.name_for(name) == k)
}

/// The knob table in Markdown, as docs/credmon.md holds it between
/// `<!-- knobs:begin -->` and `<!-- knobs:end -->`.
pub fn markdown_table() -> String {
    let mut s = String::from("| knob | default | meaning |\n|---|---|---|\n");
    for k in TABLE {
        let default = match (k.default, k.kind) {
            ("", _) => "—".to_owned(),
            (d, Kind::Number { min, max, clamp }) => {
                let how = if clamp { "clamped to" } else { "allowed" };
                format!("{d} ({how} {min}–{max})")
            }
            (d, _) => d.to_owned(),
        };
        s.push_str(&format!("| `{}` | {default} | {} |\n", k.name, k.doc));
    }
    s
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Raw knobs from `(name, value)` pairs.
    pub(crate) fn knobs(pairs: &[(&str, &str)]) -> Knobs {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_our_knobs_are_expanded() {
        assert!(wanted("SEC_CREDENTIAL_MONITOR_OAUTH_LOG", DEFAULT_NAME));
        assert!(wanted("MYCRED_LOG", "MYCRED"));
        assert!(!wanted("OTHER", DEFAULT_NAME));
    }

    #[test]
    fn per_name_knobs() {
        assert_eq!(LOG_FILE.name_for("MYCRED"), "MYCRED_LOG");
        assert_eq!(DEBUG.name_for("MYCRED"), "MYCRED_DEBUG");
        assert_eq!(LOG_LEVEL.name_for("MYCRED"), "CREDMON_OAUTH_LOG_LEVEL");
        assert_eq!(
            TOKEN_MINIMUM.name_for("MYCRED"),
            "CREDMON_OAUTH_TOKEN_MINIMUM"
        );
        let k = knobs(&[("MYCRED_LOG", "/l"), ("CREDMON_OAUTH_LOG", "/x")]);
        assert_eq!(Reader::new(&k, "MYCRED").path(&LOG_FILE), Some("/l".into()));
    }

    #[test]
    fn numbers_table() {
        // (knob, value, result)
        for (k, v, want) in [
            (&MAX_IN_FLIGHT, "", Ok(8)),
            (&MAX_IN_FLIGHT, "256", Ok(256)),
            (&MAX_IN_FLIGHT, "0", Err(())),
            (&MAX_IN_FLIGHT, "257", Err(())),
            (&SCAN_INTERVAL, "0", Ok(1)),
            (&SCAN_INTERVAL, "99999", Ok(3600)),
            (&TOKEN_MINIMUM, "34560000", Ok(34_560_000)),
            (&TOKEN_MINIMUM, "34560001", Err(())),
            (&TOKEN_MINIMUM, "18446744073709551616", Err(())),
            (&TOKEN_MINIMUM, "-1", Err(())),
            (&TOKEN_MINIMUM, "2400.5", Err(())),
        ] {
            let raw = knobs(&[(k.name, v)]);
            let got = Reader::new(&raw, DEFAULT_NAME).number(k, 8).map_err(|_| ());
            assert_eq!(got, want, "{} = {v}", k.name);
        }
    }

    #[test]
    fn levels_and_debug() {
        for (v, want) in [
            ("DEBUG", Some(log::LevelFilter::Debug)),
            ("warning", Some(log::LevelFilter::Warn)),
            ("CRITICAL", Some(log::LevelFilter::Error)),
            ("NOTSET", Some(log::LevelFilter::Trace)),
            ("D_FULLDEBUG", None),
            ("loud", None),
        ] {
            assert_eq!(parse_level(v), want, "{v}");
        }
        for (v, want) in [
            ("D_FULLDEBUG", true),
            ("D_ALWAYS D_ALL", true),
            ("D_ALWAYS:2", true),
            ("D_ALWAYS", false),
            ("D_SECURITY", false),
            ("", false),
        ] {
            assert_eq!(debug_requested(v), want, "{v}");
        }
    }

    #[test]
    fn every_knob_is_documented_once() {
        let mut names: Vec<&str> = TABLE.iter().map(|k| k.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), TABLE.len());
        assert!(
            TABLE
                .iter()
                .all(|k| !k.doc.is_empty() && k.doc.ends_with('.'))
        );
    }

    #[test]
    fn docs_hold_the_generated_table() {
        let doc = include_str!("../../../docs/credmon.md");
        let begin = "<!-- knobs:begin (generated by credmon::config::knobs::markdown_table) -->\n";
        let end = "<!-- knobs:end -->";
        let start = doc.find(begin).map(|i| i + begin.len());
        let stop = doc.find(end);
        let (Some(a), Some(b)) = (start, stop) else {
            panic!("docs/credmon.md lacks the knob table markers");
        };
        assert_eq!(
            &doc[a..b],
            markdown_table(),
            "docs/credmon.md's knob table is stale: paste credmon::config::knobs::markdown_table() between the markers"
        );
    }
}
