//! The credmon's configuration: HTCondor knobs (declared in
//! [`knobs`]) from `condor_config_val` when it is installed,
//! `_CONDOR_<KNOB>` environment overrides, and command-line options over
//! both. [`resolve`] turns the raw knobs into a validated [`Config`]; it is a
//! plain function of its inputs.

pub mod knobs;

pub use super::policy::ProviderFilter;
use crate::cli::CredmonArgs;
use knobs::{self as k, Knobs, Reader};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

/// A configuration the credmon cannot run with (exit code 99: no restart).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// Neither `SEC_CREDENTIAL_DIRECTORY_OAUTH` nor `SEC_CREDENTIAL_DIRECTORY` is set.
    #[error("no credential directory: set SEC_CREDENTIAL_DIRECTORY_OAUTH (or use --cred-dir)")]
    NoCredDir,
    /// A knob holds a value of the wrong kind.
    #[error("invalid value '{value}' for {knob}: {why}")]
    Invalid {
        /// The knob.
        knob: String,
        /// Its value.
        value: String,
        /// What was expected.
        why: String,
    },
}

/// A service whose `.top` the credmon creates for every keytab user (`ROBOT_CREDMON_PROVISION`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provision {
    /// Service name, `issuer[_role]`.
    pub service: String,
    /// Vault server `host:port`.
    pub server: String,
}

/// The command-line settings that override knobs (from [`CredmonArgs`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `-n`: the daemon name.
    pub name: String,
    /// `-c/--cred-dir`.
    pub cred_dir: Option<PathBuf>,
    /// `-l/--log-file`.
    pub log_file: Option<PathBuf>,
    /// `-d/--debug`.
    pub debug: bool,
    /// `--metrics-file`.
    pub metrics_file: Option<PathBuf>,
}

impl From<&CredmonArgs> for Overrides {
    fn from(a: &CredmonArgs) -> Self {
        Overrides {
            name: a.name.to_ascii_uppercase(),
            cred_dir: a.cred_dir.clone(),
            log_file: a.log_file.clone(),
            debug: a.debug,
            metrics_file: a.metrics_file.clone(),
        }
    }
}

/// The resolved settings of one credmon run.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `-n`: the daemon name, prefix of `<NAME>_LOG` and `<NAME>_DEBUG`.
    pub name: String,
    /// The OAuth credential directory.
    pub cred_dir: PathBuf,
    /// Log file; `None` logs to stderr.
    pub log_file: Option<PathBuf>,
    /// Debug logging.
    pub debug: bool,
    /// The least severe messages logged (`Debug` when [`Config::debug`]).
    pub log_level: log::LevelFilter,
    /// `CREDMON_OAUTH_TOKEN_MINIMUM`: seconds a new token must be valid for, and the early-renewal margin.
    pub minimum: u64,
    /// `CREDMON_OAUTH_TOKEN_REFRESH`: renew a `.use` older than this many seconds.
    pub refresh: u64,
    /// Which providers are ours.
    pub providers: ProviderFilter,
    /// `TRUSTED_VAULT_HOSTS`, lower case; empty trusts every host.
    pub trusted_hosts: Vec<String>,
    /// `ROBOT_CREDMON_ALLOWED_VAULT_PORTS` (HTCondor: 8200 only).
    pub allowed_ports: Vec<u16>,
    /// `AUTH_SSL_CLIENT_CAFILE` (empty means unset).
    pub cafile: Option<PathBuf>,
    /// `AUTH_SSL_CLIENT_CADIR` (empty means unset).
    pub capath: Option<PathBuf>,
    /// `ROBOT_CREDMON_KEYTAB_DIR`: `<user>.keytab` files of robots.
    pub keytab_dir: Option<PathBuf>,
    /// `ROBOT_CREDMON_PROVISION`: services created for every keytab user.
    pub provision: Vec<Provision>,
    /// `ROBOT_CREDMON_MAX_IN_FLIGHT`: concurrent Vault requests.
    pub max_in_flight: usize,
    /// `ROBOT_CREDMON_SCAN_INTERVAL`: seconds between full passes.
    pub scan_interval: Duration,
    /// `ROBOT_CREDMON_BACKOFF_BASE`: first retry delay after a failure (doubles up to 5 minutes).
    pub backoff_base: Duration,
    /// `ROBOT_CREDMON_REQUEST_TIMEOUT`: time allowed for one Vault request.
    pub request_timeout: Duration,
    /// `--metrics-file` or `ROBOT_CREDMON_METRICS_FILE`: the Prometheus textfile, if any.
    pub metrics_file: Option<PathBuf>,
    /// `ROBOT_CREDMON_STATE_INTERVAL`: least time between two state-file writes after changes.
    pub state_interval: Duration,
    /// `SEC_CREDENTIAL_GETTOKEN_OPTS`, as the storer reads it (for `--check-config`).
    pub gettoken_opts: Option<String>,
    /// `ROBOT_CREDMON_CONFINE`: confine the daemon after start-up (`crate::confine`).
    pub confine: bool,
}

/// Largest `.top` file we read.
pub const MAX_TOP_BYTES: usize = 64 * 1024;

/// Turns knobs and options into a validated configuration.
pub fn resolve(knobs: &Knobs, opts: &Overrides) -> Result<Config, ConfigError> {
    let name = if opts.name.is_empty() {
        k::DEFAULT_NAME.to_owned()
    } else {
        opts.name.to_ascii_uppercase()
    };
    let r = Reader::new(knobs, &name);
    let cred_dir = opts
        .cred_dir
        .clone()
        .or_else(|| r.path(&k::CRED_DIR))
        .or_else(|| r.path(&k::CRED_DIR_OLD))
        .ok_or(ConfigError::NoCredDir)?;
    let (debug, log_level) = logging(&r, opts)?;
    let minimum = r.number(&k::TOKEN_MINIMUM, 2400)?;
    let ports = r.list(&k::ALLOWED_PORTS);
    let allowed_ports = ports
        .iter()
        .map(|p| p.parse::<u16>())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            r.invalid(
                &k::ALLOWED_PORTS,
                &ports.join(" "),
                "expected a list of port numbers",
            )
        })?;
    Ok(Config {
        log_file: opts.log_file.clone().or_else(|| log_file(&r)),
        name: name.clone(),
        cred_dir,
        debug,
        log_level,
        minimum,
        refresh: r.number(&k::TOKEN_REFRESH, minimum / 2)?,
        providers: providers(&r)?,
        trusted_hosts: r
            .list(&k::TRUSTED_HOSTS)
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        allowed_ports,
        cafile: r.path(&k::CAFILE),
        capath: r.path(&k::CADIR),
        keytab_dir: r.path(&k::KEYTAB_DIR),
        provision: provision(&r)?,
        max_in_flight: usize::try_from(r.number(&k::MAX_IN_FLIGHT, 8)?).unwrap_or(1),
        scan_interval: r.seconds(&k::SCAN_INTERVAL, 60)?,
        backoff_base: r.seconds(&k::BACKOFF_BASE, 10)?,
        request_timeout: r.seconds(&k::REQUEST_TIMEOUT, 10)?,
        metrics_file: opts
            .metrics_file
            .clone()
            .or_else(|| r.path(&k::METRICS_FILE)),
        state_interval: r.seconds(&k::STATE_INTERVAL, 5)?,
        gettoken_opts: r.text(&k::GETTOKEN_OPTS).map(str::to_owned),
        confine: r.boolean(&k::CONFINE, true)?,
    })
}

/// The log file: `<NAME>_LOG`, else `SEC_CREDENTIAL_MONITOR_OAUTH_LOG`, else
/// `SEC_CREDENTIAL_MONITOR_LOG` (the scitokens credmon's order), else
/// `$(LOG)/CredMonOAuthLog` (what `use feature : OAUTH` sets), else none.
fn log_file(r: &Reader) -> Option<PathBuf> {
    r.path(&k::LOG_FILE)
        .or_else(|| r.path(&k::MONITOR_LOG))
        .or_else(|| r.path(&k::MONITOR_LOG_OLD))
        .or_else(|| r.path(&k::LOG_DIR).map(|d| d.join("CredMonOAuthLog")))
}

/// Debug logging and the level: `-d`, `<NAME>_DEBUG` and `CREDMON_OAUTH_LOG_LEVEL`.
fn logging(r: &Reader, opts: &Overrides) -> Result<(bool, log::LevelFilter), ConfigError> {
    let level = r.level(&k::LOG_LEVEL)?;
    let debug = opts.debug
        || r.text(&k::DEBUG).is_some_and(k::debug_requested)
        || level.is_some_and(|l| l >= log::LevelFilter::Debug);
    let level = match level {
        Some(l) if l >= log::LevelFilter::Debug => l,
        _ if debug => log::LevelFilter::Debug,
        Some(l) => l,
        None => log::LevelFilter::Info,
    };
    Ok((debug, level))
}

/// Which providers are ours: the Python Vault credmon's filter.
fn providers(r: &Reader) -> Result<ProviderFilter, ConfigError> {
    let vault = r.list(&k::VAULT_PROVIDERS);
    let special_chars = r.boolean(&k::SPECIAL_CHARS, false)?;
    if let Some(p) = vault
        .iter()
        .find(|p| *p != "*" && !special_chars && !valid_provider_name(p))
    {
        return Err(r.invalid(
            &k::VAULT_PROVIDERS,
            p,
            "provider names may only hold letters, digits and '-', or be '*'",
        ));
    }
    let mut others: HashSet<String> = [
        &k::LOCAL_PROVIDERS,
        &k::OAUTH2_PROVIDERS,
        &k::CLIENT_PROVIDERS,
        &k::PELICAN_PROVIDERS,
    ]
    .into_iter()
    .flat_map(|kn| r.list(kn))
    .collect();
    others.extend(r.text(&k::LOCAL_PROVIDER).map(k::list).unwrap_or_default());
    others.insert(k::LOCAL_PROVIDER.default.to_owned());
    others.remove("*");
    // HTCondor's credmon leaves a provider alone when `<provider>_CLIENT_ID` is defined.
    let client_ids = r.prefixes_of("_CLIENT_ID").map(str::to_owned).collect();
    Ok(ProviderFilter {
        vault,
        others,
        client_ids,
        special_chars,
    })
}

/// `ROBOT_CREDMON_PROVISION` entries `issuer[_role][@host[:port]]`.
fn provision(r: &Reader) -> Result<Vec<Provision>, ConfigError> {
    let default_server = r.text(&k::VAULT_SERVER);
    r.list(&k::PROVISION)
        .into_iter()
        .map(|entry| {
            let invalid = |why| r.invalid(&k::PROVISION, &entry, why);
            let (service, server) = match entry.split_once('@') {
                Some((s, h)) => (s, Some(h)),
                None => (entry.as_str(), default_server),
            };
            if !super::policy::valid_cred_name(service) || service.ends_with('_') {
                return Err(invalid(
                    "expected service names issuer[_role][@host[:port]]",
                ));
            }
            let server = server.ok_or_else(|| {
                invalid("no Vault server: write service@host or set ROBOT_CREDMON_VAULT_SERVER")
            })?;
            let addr = crate::vault::ServerAddress::parse(server)
                .map_err(|_| invalid("the Vault server must be host or host:port"))?;
            Ok(Provision {
                service: service.to_owned(),
                server: format!("{}:{}", addr.host, addr.port),
            })
        })
        .collect()
}

/// Whether a configured provider name is acceptable (`[A-Za-z0-9-]+`).
pub fn valid_provider_name(p: &str) -> bool {
    !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The credd compares a stored `vault_url`'s `host:port` with each entry of
/// `TRUSTED_VAULT_HOSTS` (case aside): with the storer's Vault server from
/// `SEC_CREDENTIAL_GETTOKEN_OPTS` (`-a host[:port]`, port 8200 when not
/// given), says what the list lacks. `None` when the list is empty (the
/// credd trusts every host), holds `host:port`, or there is no server.
pub fn trusted_hosts_warning(trusted: &[String], gettoken_opts: Option<&str>) -> Option<String> {
    if trusted.is_empty() {
        return None;
    }
    let words = crate::condor::config::words(gettoken_opts?).ok()?;
    let opts = crate::store::options::parse(&words, "SEC_CREDENTIAL_GETTOKEN_OPTS").ok()?;
    let server = crate::vault::ServerAddress::parse(opts.vaultserver.as_deref()?).ok()?;
    let stored = server.to_string();
    let entry = stored
        .strip_prefix("https://")
        .unwrap_or(&stored)
        .to_owned();
    let has = |e: &str| trusted.iter().any(|t| t.eq_ignore_ascii_case(e));
    if has(&entry) {
        return None;
    }
    let host = entry.rsplit_once(':').map_or(entry.as_str(), |(h, _)| h);
    let why = if has(host) {
        format!("TRUSTED_VAULT_HOSTS holds '{host}' without the port")
    } else {
        format!("TRUSTED_VAULT_HOSTS does not hold '{entry}'")
    };
    Some(format!(
        "{why}: the credd compares host:port, so it refuses every credential the storer stores for {stored} (\"Credential requires interacting with an untrusted host\"); add '{entry}' to TRUSTED_VAULT_HOSTS"
    ))
}

impl Config {
    /// What `--check-config` warns about: settings the credmon accepts but
    /// that will make something else fail.
    pub fn warnings(&self) -> Vec<String> {
        trusted_hosts_warning(&self.trusted_hosts, self.gettoken_opts.as_deref())
            .into_iter()
            .collect()
    }

    /// The resolved settings as `KNOB = value` lines, for `--check-config`.
    pub fn describe(&self) -> String {
        let mut others: Vec<&str> = self.providers.others.iter().map(String::as_str).collect();
        others.sort_unstable();
        let mut lines = vec![format!("name = {}", self.name)];
        for kn in k::TABLE {
            if let Some(show) = kn.show {
                lines.push(format!("{} = {}", kn.name_for(&self.name), show(self)));
            }
        }
        lines.push(format!("other credmons' providers = {}", others.join(", ")));
        lines.push(String::new());
        lines.join("\n")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
