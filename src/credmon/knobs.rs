//! The credmon's HTCondor knobs, declared once: [`TABLE`] names each knob with
//! its kind, default, limits and meaning. The same declarations drive
//! loading (which macros `condor_config_val` expands), resolving (defaults,
//! limits, "empty means unset") in [`super::config`], `--check-config` and
//! the knob table in docs/credmon.md ([`markdown_table`], checked by a test).

use super::config::{Config, ConfigError};
use crate::process::Tool;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// Raw knobs, keyed by upper-case name (HTCondor knob names ignore case).
pub type Knobs = BTreeMap<String, String>;

/// The default daemon name (`-n`); knobs marked [`Knob::per_name`] start with it.
pub const DEFAULT_NAME: &str = "CREDMON_OAUTH";

/// The largest token lifetime setting: 400 days.
const MAX_LIFETIME: u64 = 400 * 86400;

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

const fn number(min: u64, max: u64) -> Kind {
    Kind::Number {
        min,
        max,
        clamp: false,
    }
}

const fn clamped(min: u64, max: u64) -> Kind {
    Kind::Number {
        min,
        max,
        clamp: true,
    }
}

fn path(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn joined<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(T::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The credential directory.
pub const CRED_DIR: Knob = knob(
    "SEC_CREDENTIAL_DIRECTORY_OAUTH",
    Kind::Path,
    "",
    "The OAuth credential directory (`-c/--cred-dir` wins).",
)
.shown(|c| c.cred_dir.display().to_string());
/// The pre-8.9.7 credential directory.
pub const CRED_DIR_OLD: Knob = knob(
    "SEC_CREDENTIAL_DIRECTORY",
    Kind::Path,
    "",
    "The credential directory when `SEC_CREDENTIAL_DIRECTORY_OAUTH` is unset.",
);
/// `<NAME>_LOG`.
pub const LOG_FILE: Knob = knob(
    "CREDMON_OAUTH_LOG",
    Kind::Path,
    "",
    "The log file (`<NAME>_LOG` with `-n NAME`; `-l/--log-file` wins).",
)
.per_name()
.shown(|c| {
    c.log_file
        .as_ref()
        .map_or_else(|| "(stderr)".into(), |p| p.display().to_string())
});
/// HTCondor's example configuration's name for the log.
pub const MONITOR_LOG: Knob = knob(
    "SEC_CREDENTIAL_MONITOR_OAUTH_LOG",
    Kind::Path,
    "",
    "The log file when `<NAME>_LOG` is unset (HTCondor's `40-vault-credmon.conf` sets it).",
);
/// The log directory.
pub const LOG_DIR: Knob = knob(
    "LOG",
    Kind::Path,
    "",
    "Without the two knobs above the log is `$(LOG)/CredMonOAuthLog`; without `LOG`, stderr.",
);
/// `<NAME>_DEBUG`.
pub const DEBUG: Knob = knob(
    "CREDMON_OAUTH_DEBUG",
    Kind::List,
    "",
    "`D_FULLDEBUG` (or `D_ALL`, `D_ANY`, a `:2` verbosity) turns on debug logging, as `-d` does.",
)
.per_name()
.shown(|c| c.debug.to_string());
/// `<NAME>_LOG_LEVEL`.
pub const LOG_LEVEL: Knob = knob(
    "CREDMON_OAUTH_LOG_LEVEL",
    Kind::Level,
    "INFO",
    "The least severe messages logged: `DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL`.",
)
.per_name()
.shown(|c| level_name(c.log_level).into());
/// `CREDMON_OAUTH_TOKEN_MINIMUM`.
pub const TOKEN_MINIMUM: Knob = knob(
    "CREDMON_OAUTH_TOKEN_MINIMUM",
    number(0, MAX_LIFETIME),
    "2400",
    "Seconds a new token must be valid for (`minimum_seconds`), and the early-renewal margin.",
)
.shown(|c| c.minimum.to_string());
/// `CREDMON_OAUTH_TOKEN_REFRESH`.
pub const TOKEN_REFRESH: Knob = knob(
    "CREDMON_OAUTH_TOKEN_REFRESH",
    number(0, MAX_LIFETIME),
    "MINIMUM / 2",
    "Renew a `.use` older than this many seconds.",
)
.shown(|c| c.refresh.to_string());
/// `VAULT_CREDMON_PROVIDER_NAMES`.
pub const VAULT_PROVIDERS: Knob = knob(
    "VAULT_CREDMON_PROVIDER_NAMES",
    Kind::List,
    "*",
    "Providers this credmon serves; `*`: every provider no other credmon claims.",
)
.shown(|c| c.providers.vault.join(", "));
/// Providers of the local issuer.
pub const LOCAL_PROVIDERS: Knob = knob(
    "LOCAL_CREDMON_PROVIDER_NAMES",
    Kind::List,
    "",
    "Providers of the local credmon (left alone).",
);
/// The local issuer's single provider name.
pub const LOCAL_PROVIDER: Knob = knob(
    "LOCAL_CREDMON_PROVIDER_NAME",
    Kind::Text,
    "scitokens",
    "The local credmon's provider when `LOCAL_CREDMON_PROVIDER_NAMES` is unset (left alone).",
);
/// OAuth2 providers.
pub const OAUTH2_PROVIDERS: Knob = knob(
    "OAUTH2_CREDMON_PROVIDER_NAMES",
    Kind::List,
    "",
    "Providers of the OAuth2 credmon (left alone), as is any provider with a `<provider>_CLIENT_ID` knob.",
);
/// Client-credential providers.
pub const CLIENT_PROVIDERS: Knob = knob(
    "CLIENT_CREDMON_PROVIDER_NAMES",
    Kind::List,
    "",
    "Providers of the client credmon (left alone).",
);
/// Pelican providers.
pub const PELICAN_PROVIDERS: Knob = knob(
    "PELICAN_CREDMON_PROVIDER_NAMES",
    Kind::List,
    "",
    "Providers of the Pelican credmon (left alone).",
);
/// `CREDMON_ALLOW_SPECIAL_CHAR_NAMES`.
pub const SPECIAL_CHARS: Knob = knob(
    "CREDMON_ALLOW_SPECIAL_CHAR_NAMES",
    Kind::Bool,
    "False",
    "The provider is the whole file name, which may then hold `_` and other characters.",
)
.shown(|c| c.providers.special_chars.to_string());
/// `TRUSTED_VAULT_HOSTS`.
pub const TRUSTED_HOSTS: Knob = knob(
    "TRUSTED_VAULT_HOSTS",
    Kind::List,
    "",
    "Vault hosts (`host` or `host:port`, as the credd compares them) whose URLs are used; empty trusts every host.",
)
.shown(|c| c.trusted_hosts.join(", "));
/// `AUTH_SSL_CLIENT_CAFILE`.
pub const CAFILE: Knob = knob(
    "AUTH_SSL_CLIENT_CAFILE",
    Kind::Path,
    "",
    "CA bundle for Vault's certificate (empty means unset: `$SSL_CERT_FILE`, else the system bundle).",
)
.shown(|c| path(&c.cafile));
/// `AUTH_SSL_CLIENT_CADIR`.
pub const CADIR: Knob = knob(
    "AUTH_SSL_CLIENT_CADIR",
    Kind::Path,
    "",
    "Directory of CA certificates for Vault (empty means unset: `$X509_CERT_DIR`, else `/etc/grid-security/certificates` if it exists).",
)
.shown(|c| path(&c.capath));
/// `ROBOT_CREDMON_KEYTAB_DIR`.
pub const KEYTAB_DIR: Knob = knob(
    "ROBOT_CREDMON_KEYTAB_DIR",
    Kind::Path,
    "",
    "Directory of robots' `<user>.keytab` files for re-login when a Vault token expires.",
)
.shown(|c| path(&c.keytab_dir));
/// `ROBOT_CREDMON_PROVISION`.
pub const PROVISION: Knob = knob(
    "ROBOT_CREDMON_PROVISION",
    Kind::List,
    "",
    "Services `issuer[_role][@host[:port]]` created for every keytab user.",
)
.shown(|c| {
    let items: Vec<String> = c
        .provision
        .iter()
        .map(|p| format!("{}@{}", p.service, p.server))
        .collect();
    items.join(", ")
});
/// `ROBOT_CREDMON_VAULT_SERVER`.
pub const VAULT_SERVER: Knob = knob(
    "ROBOT_CREDMON_VAULT_SERVER",
    Kind::Text,
    "",
    "Vault server of `ROBOT_CREDMON_PROVISION` entries without `@host`.",
);
/// `ROBOT_CREDMON_MAX_IN_FLIGHT`.
pub const MAX_IN_FLIGHT: Knob = knob(
    "ROBOT_CREDMON_MAX_IN_FLIGHT",
    number(1, 256),
    "8",
    "Concurrent Vault requests (workers).",
)
.shown(|c| c.max_in_flight.to_string());
/// `ROBOT_CREDMON_ALLOWED_VAULT_PORTS`.
pub const ALLOWED_PORTS: Knob = knob(
    "ROBOT_CREDMON_ALLOWED_VAULT_PORTS",
    Kind::List,
    "8200",
    "Ports allowed in a `.top`'s `vault_url` (HTCondor's credmon: 8200 only).",
)
.shown(|c| joined(&c.allowed_ports));
/// `ROBOT_CREDMON_SCAN_INTERVAL`.
pub const SCAN_INTERVAL: Knob = knob(
    "ROBOT_CREDMON_SCAN_INTERVAL",
    clamped(1, 3600),
    "60",
    "Seconds between full passes.",
)
.shown(|c| c.scan_interval.as_secs().to_string());
/// `ROBOT_CREDMON_BACKOFF_BASE`.
pub const BACKOFF_BASE: Knob = knob(
    "ROBOT_CREDMON_BACKOFF_BASE",
    clamped(1, 300),
    "10",
    "Seconds before the first retry of a failed credential (doubling up to 5 minutes).",
)
.shown(|c| c.backoff_base.as_secs().to_string());
/// `ROBOT_CREDMON_REQUEST_TIMEOUT`.
pub const REQUEST_TIMEOUT: Knob = knob(
    "ROBOT_CREDMON_REQUEST_TIMEOUT",
    clamped(1, 120),
    "10",
    "Seconds allowed for one Vault request.",
)
.shown(|c| c.request_timeout.as_secs().to_string());
/// `ROBOT_CREDMON_METRICS_FILE`.
pub const METRICS_FILE: Knob = knob(
    "ROBOT_CREDMON_METRICS_FILE",
    Kind::Path,
    "",
    "Prometheus textfile written after every pass (`--metrics-file` wins).",
)
.shown(|c| path(&c.metrics_file));

/// Every knob the credmon reads (besides `<provider>_CLIENT_ID`), in documentation order.
pub const TABLE: &[Knob] = &[
    CRED_DIR,
    CRED_DIR_OLD,
    LOG_FILE,
    MONITOR_LOG,
    LOG_DIR,
    DEBUG,
    LOG_LEVEL,
    TOKEN_MINIMUM,
    TOKEN_REFRESH,
    VAULT_PROVIDERS,
    LOCAL_PROVIDERS,
    LOCAL_PROVIDER,
    OAUTH2_PROVIDERS,
    CLIENT_PROVIDERS,
    PELICAN_PROVIDERS,
    SPECIAL_CHARS,
    TRUSTED_HOSTS,
    CAFILE,
    CADIR,
    KEYTAB_DIR,
    PROVISION,
    VAULT_SERVER,
    MAX_IN_FLIGHT,
    ALLOWED_PORTS,
    SCAN_INTERVAL,
    BACKOFF_BASE,
    REQUEST_TIMEOUT,
    METRICS_FILE,
];

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

    /// A log level (Python's names, and HTCondor's `D_ALWAYS`/`D_FULLDEBUG`).
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

/// A level name: Python's `logging` names or HTCondor's debug categories.
fn parse_level(v: &str) -> Option<log::LevelFilter> {
    use log::LevelFilter as L;
    Some(match v.to_ascii_uppercase().as_str() {
        "TRACE" => L::Trace,
        "DEBUG" | "D_FULLDEBUG" => L::Debug,
        "INFO" | "D_ALWAYS" => L::Info,
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

/// How long `condor_config_val` may take.
const CONFIG_VAL_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest `condor_config_val -dump` we read.
const MAX_DUMP_BYTES: u64 = 16 << 20;

/// Reads the knobs: `condor_config_val -dump` when it is installed, then the
/// `_CONDOR_<KNOB>` variables of `env` over it. `path_var` is the `$PATH` searched.
pub fn load<'e>(
    env: impl IntoIterator<Item = (&'e str, &'e str)>,
    path_var: Option<OsString>,
    name: &str,
) -> Knobs {
    let mut knobs = Knobs::new();
    let run = |args: &[&str]| -> Option<String> {
        let mut tool = Tool::new(
            "condor_config_val",
            args.iter().copied(),
            CONFIG_VAL_TIMEOUT,
        );
        tool.max_output = MAX_DUMP_BYTES;
        tool.path_var = path_var.clone();
        tool.run()
            .map_err(|e| log::debug!("{e}"))
            .ok()
            .filter(|f| f.success())
            .map(|f| f.stdout)
    };
    if let Some(dump) = run(&["-dump"]) {
        knobs = parse_dump(&dump);
        // -dump shows macros unexpanded; ask for the knobs we use one by one.
        let wanted: Vec<String> = knobs
            .iter()
            .filter(|(k, v)| v.contains("$(") && wanted(k, name))
            .map(|(k, _)| k.clone())
            .collect();
        for k in wanted {
            if let Some(v) = run(&[k.as_str()]) {
                knobs.insert(k, v.trim().to_owned());
            }
        }
    }
    knobs.extend(env_knobs(env));
    knobs
}

/// Whether `k` is a knob we read.
fn wanted(k: &str, name: &str) -> bool {
    TABLE.iter().any(|kn| kn.name_for(name) == k) || k.ends_with("_CLIENT_ID")
}

/// The `_CONDOR_<KNOB>` (or `_condor_<KNOB>`) variables, upper-cased.
pub fn env_knobs<'e>(env: impl IntoIterator<Item = (&'e str, &'e str)>) -> Knobs {
    env.into_iter()
        .filter_map(|(k, v)| {
            let rest = k
                .strip_prefix("_CONDOR_")
                .or_else(|| k.strip_prefix("_condor_"))?;
            (!rest.is_empty()).then(|| (rest.to_ascii_uppercase(), v.to_owned()))
        })
        .collect()
}

/// Parses `condor_config_val -dump` output: `NAME = value` lines, `#` comments.
pub fn parse_dump(text: &str) -> Knobs {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let k = k.trim();
            (!k.is_empty() && !k.contains(char::is_whitespace))
                .then(|| (k.to_ascii_uppercase(), v.trim().to_owned()))
        })
        .collect()
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
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn knobs(pairs: &[(&str, &str)]) -> Knobs {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn env_and_dump_parsing() {
        let env = [
            ("_CONDOR_SEC_CREDENTIAL_DIRECTORY_OAUTH", "/a"),
            ("_condor_trusted_vault_hosts", "h"),
            ("PATH", "/bin"),
        ];
        let k = env_knobs(env);
        assert_eq!(k.len(), 2);
        assert_eq!(k["TRUSTED_VAULT_HOSTS"], "h");
        let d = parse_dump("# from /etc/condor\nLOG = /var/log/condor\nfoo=bar baz\n\n");
        assert_eq!(d["LOG"], "/var/log/condor");
        assert_eq!(d["FOO"], "bar baz");
    }

    #[test]
    fn per_name_knobs() {
        assert_eq!(LOG_FILE.name_for("MYCRED"), "MYCRED_LOG");
        assert_eq!(DEBUG.name_for("MYCRED"), "MYCRED_DEBUG");
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
            ("D_FULLDEBUG", Some(log::LevelFilter::Debug)),
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
        let doc = include_str!("../../docs/credmon.md");
        let begin = "<!-- knobs:begin (generated by credmon::knobs::markdown_table) -->\n";
        let end = "<!-- knobs:end -->";
        let start = doc.find(begin).map(|i| i + begin.len());
        let stop = doc.find(end);
        let (Some(a), Some(b)) = (start, stop) else {
            panic!("docs/credmon.md lacks the knob table markers");
        };
        assert_eq!(
            &doc[a..b],
            markdown_table(),
            "docs/credmon.md's knob table is stale: paste credmon::knobs::markdown_table() between the markers"
        );
    }
}
