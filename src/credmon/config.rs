//! The credmon's configuration: HTCondor knobs from `condor_config_val`
//! (when it is installed), `_CONDOR_<KNOB>` environment overrides, and
//! command-line options over both. [`resolve`] turns the raw knobs into a
//! validated [`Config`]; it is a plain function of its inputs.

use super::CredmonArgs;
use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Raw knobs, keyed by upper-case name (HTCondor knob names ignore case).
pub type Knobs = BTreeMap<String, String>;

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
        why: &'static str,
    },
}

/// Which `.top` files belong to this (Vault) credmon: the Python credmon's filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderFilter {
    /// `VAULT_CREDMON_PROVIDER_NAMES`; `["*"]` means every provider no other credmon claims.
    pub vault: Vec<String>,
    /// Providers claimed by the other credmons (local, OAuth2, client, Pelican).
    pub others: HashSet<String>,
    /// Providers with a `<provider>_CLIENT_ID` knob (OAuth2).
    pub client_ids: HashSet<String>,
    /// `CREDMON_ALLOW_SPECIAL_CHAR_NAMES`: the provider is the whole file stem.
    pub special_chars: bool,
}

/// A service whose `.top` the credmon creates for every keytab user (`ROBOT_CREDMON_PROVISION`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provision {
    /// Service name, `issuer[_role]`.
    pub service: String,
    /// Vault server `host:port`.
    pub server: String,
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
}

/// Largest `.top` file we read.
pub const MAX_TOP_BYTES: usize = 64 * 1024;

/// Knobs we read (besides `<provider>_CLIENT_ID` and `<NAME>_LOG`/`_DEBUG`).
const KNOBS: &[&str] = &[
    "SEC_CREDENTIAL_DIRECTORY_OAUTH",
    "SEC_CREDENTIAL_DIRECTORY",
    "LOG",
    "CREDMON_OAUTH_TOKEN_MINIMUM",
    "CREDMON_OAUTH_TOKEN_REFRESH",
    "VAULT_CREDMON_PROVIDER_NAMES",
    "LOCAL_CREDMON_PROVIDER_NAMES",
    "LOCAL_CREDMON_PROVIDER_NAME",
    "OAUTH2_CREDMON_PROVIDER_NAMES",
    "CLIENT_CREDMON_PROVIDER_NAMES",
    "PELICAN_CREDMON_PROVIDER_NAMES",
    "CREDMON_ALLOW_SPECIAL_CHAR_NAMES",
    "AUTH_SSL_CLIENT_CAFILE",
    "AUTH_SSL_CLIENT_CADIR",
    "TRUSTED_VAULT_HOSTS",
    "ROBOT_CREDMON_KEYTAB_DIR",
    "ROBOT_CREDMON_PROVISION",
    "ROBOT_CREDMON_VAULT_SERVER",
    "ROBOT_CREDMON_MAX_IN_FLIGHT",
    "ROBOT_CREDMON_ALLOWED_VAULT_PORTS",
    "ROBOT_CREDMON_SCAN_INTERVAL",
    "ROBOT_CREDMON_BACKOFF_BASE",
    "ROBOT_CREDMON_REQUEST_TIMEOUT",
    "ROBOT_CREDMON_METRICS_FILE",
];

/// Reads the knobs: `condor_config_val -dump` when it is on PATH, then the
/// `_CONDOR_<KNOB>` variables of `env` over it.
pub fn load_knobs(env: &[(String, String)]) -> Knobs {
    let mut knobs = Knobs::new();
    if let Some(dump) = run_condor_config_val(&["-dump"]) {
        knobs = parse_dump(&dump);
        // -dump shows macros unexpanded; ask for the few we use one by one.
        let wanted: Vec<String> = knobs
            .iter()
            .filter(|(k, v)| v.contains("$(") && wanted_knob(k))
            .map(|(k, _)| k.clone())
            .collect();
        for k in wanted {
            if let Some(v) = run_condor_config_val(&[k.as_str()]) {
                knobs.insert(k, v.trim().to_owned());
            }
        }
    }
    knobs.extend(env_knobs(env));
    knobs
}

fn wanted_knob(k: &str) -> bool {
    KNOBS.contains(&k) || k.ends_with("_LOG") || k.ends_with("_DEBUG")
}

/// The `_CONDOR_<KNOB>` (or `_condor_<KNOB>`) variables, upper-cased.
pub fn env_knobs(env: &[(String, String)]) -> Knobs {
    env.iter()
        .filter_map(|(k, v)| {
            let rest = k
                .strip_prefix("_CONDOR_")
                .or_else(|| k.strip_prefix("_condor_"))?;
            (!rest.is_empty()).then(|| (rest.to_ascii_uppercase(), v.clone()))
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

/// Runs `condor_config_val` with a 10 s limit; `None` when it is missing or fails.
fn run_condor_config_val(args: &[&str]) -> Option<String> {
    let mut child = Command::new("condor_config_val")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut out = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.by_ref().take(16 << 20).read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let buf = reader.join().ok()?;
    status
        .filter(|s| s.success())
        .map(|_| String::from_utf8_lossy(&buf).into_owned())
}

/// Turns knobs and options into a validated configuration.
pub fn resolve(knobs: &Knobs, args: &CredmonArgs) -> Result<Config, ConfigError> {
    let get = |k: &str| knobs.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let name = args.name.to_ascii_uppercase();
    let cred_dir = args
        .cred_dir
        .clone()
        .or_else(|| get("SEC_CREDENTIAL_DIRECTORY_OAUTH").map(PathBuf::from))
        .or_else(|| get("SEC_CREDENTIAL_DIRECTORY").map(PathBuf::from))
        .ok_or(ConfigError::NoCredDir)?;
    let log_file = args
        .log_file
        .clone()
        .or_else(|| get(&format!("{name}_LOG")).map(PathBuf::from))
        .or_else(|| get("LOG").map(|d| PathBuf::from(d).join("CredMonOAuthLog")));
    let debug = args.debug || get(&format!("{name}_DEBUG")).is_some();
    let minimum = number(knobs, "CREDMON_OAUTH_TOKEN_MINIMUM", 2400)?;
    let refresh = number(knobs, "CREDMON_OAUTH_TOKEN_REFRESH", minimum / 2)?;

    let vault = match get("VAULT_CREDMON_PROVIDER_NAMES") {
        Some(v) => list(v),
        None => vec!["*".to_owned()],
    };
    let special_chars = boolean(knobs, "CREDMON_ALLOW_SPECIAL_CHAR_NAMES", false)?;
    for p in &vault {
        if p != "*" && !special_chars && !valid_provider_name(p) {
            return Err(ConfigError::Invalid {
                knob: "VAULT_CREDMON_PROVIDER_NAMES".into(),
                value: p.clone(),
                why: "provider names may only hold letters, digits and '-', or be '*'",
            });
        }
    }
    let mut others: HashSet<String> = HashSet::new();
    for k in [
        "LOCAL_CREDMON_PROVIDER_NAMES",
        "OAUTH2_CREDMON_PROVIDER_NAMES",
        "CLIENT_CREDMON_PROVIDER_NAMES",
        "PELICAN_CREDMON_PROVIDER_NAMES",
    ] {
        others.extend(get(k).map(list).unwrap_or_default());
    }
    others.extend(
        get("LOCAL_CREDMON_PROVIDER_NAMES")
            .or(get("LOCAL_CREDMON_PROVIDER_NAME"))
            .map(list)
            .unwrap_or_else(|| vec!["scitokens".to_owned()]),
    );
    others.remove("*");
    let client_ids = knobs
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .filter_map(|(k, _)| k.strip_suffix("_CLIENT_ID"))
        .map(str::to_owned)
        .collect();
    let providers = ProviderFilter {
        vault,
        others,
        client_ids,
        special_chars,
    };

    let allowed_ports = match get("ROBOT_CREDMON_ALLOWED_VAULT_PORTS") {
        None => vec![8200],
        Some(v) => list(v)
            .iter()
            .map(|p| {
                p.parse::<u16>().map_err(|_| ConfigError::Invalid {
                    knob: "ROBOT_CREDMON_ALLOWED_VAULT_PORTS".into(),
                    value: v.to_owned(),
                    why: "expected a list of port numbers",
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let default_server = get("ROBOT_CREDMON_VAULT_SERVER");
    let mut provision = Vec::new();
    for entry in get("ROBOT_CREDMON_PROVISION").map(list).unwrap_or_default() {
        let (service, server) = match entry.split_once('@') {
            Some((s, h)) => (s.to_owned(), Some(h.to_owned())),
            None => (entry.clone(), default_server.map(str::to_owned)),
        };
        let invalid = |why| ConfigError::Invalid {
            knob: "ROBOT_CREDMON_PROVISION".into(),
            value: entry.clone(),
            why,
        };
        if !super::policy::valid_cred_name(&service) || service.ends_with('_') {
            return Err(invalid(
                "expected service names issuer[_role][@host[:port]]",
            ));
        }
        let server = server.ok_or_else(|| {
            invalid("no Vault server: write service@host or set ROBOT_CREDMON_VAULT_SERVER")
        })?;
        let addr = crate::vault::ServerAddress::parse(&server)
            .map_err(|_| invalid("the Vault server must be host or host:port"))?;
        provision.push(Provision {
            service,
            server: format!("{}:{}", addr.host, addr.port),
        });
    }
    let max_in_flight = number(knobs, "ROBOT_CREDMON_MAX_IN_FLIGHT", 8)?;
    if !(1..=256).contains(&max_in_flight) {
        return Err(ConfigError::Invalid {
            knob: "ROBOT_CREDMON_MAX_IN_FLIGHT".into(),
            value: max_in_flight.to_string(),
            why: "expected 1 to 256",
        });
    }
    let scan_interval = number(knobs, "ROBOT_CREDMON_SCAN_INTERVAL", 60)?.clamp(1, 3600);
    let backoff_base = number(knobs, "ROBOT_CREDMON_BACKOFF_BASE", 10)?.clamp(1, 300);
    let request_timeout = number(knobs, "ROBOT_CREDMON_REQUEST_TIMEOUT", 10)?.clamp(1, 120);
    Ok(Config {
        name,
        cred_dir,
        log_file,
        debug,
        minimum,
        refresh,
        providers,
        trusted_hosts: get("TRUSTED_VAULT_HOSTS")
            .map(list)
            .unwrap_or_default()
            .into_iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        allowed_ports,
        cafile: get("AUTH_SSL_CLIENT_CAFILE").map(PathBuf::from),
        capath: get("AUTH_SSL_CLIENT_CADIR").map(PathBuf::from),
        keytab_dir: get("ROBOT_CREDMON_KEYTAB_DIR").map(PathBuf::from),
        provision,
        max_in_flight: max_in_flight as usize,
        scan_interval: Duration::from_secs(scan_interval),
        backoff_base: Duration::from_secs(backoff_base),
        request_timeout: Duration::from_secs(request_timeout),
        metrics_file: args
            .metrics_file
            .clone()
            .or_else(|| get("ROBOT_CREDMON_METRICS_FILE").map(PathBuf::from)),
    })
}

/// Whether a configured provider name is acceptable (`[A-Za-z0-9-]+`).
pub fn valid_provider_name(p: &str) -> bool {
    !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// An HTCondor list: items separated by commas and/or white space.
fn list(v: &str) -> Vec<String> {
    v.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn number(knobs: &Knobs, knob: &str, default: u64) -> Result<u64, ConfigError> {
    match knobs.get(knob).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
            knob: knob.into(),
            value: v.into(),
            why: "expected a whole number of seconds",
        }),
    }
}

fn boolean(knobs: &Knobs, knob: &str, default: bool) -> Result<bool, ConfigError> {
    match knobs.get(knob).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v.is_empty() => Ok(default),
        Some(v) if ["true", "t", "yes", "1"].contains(&v.as_str()) => Ok(true),
        Some(v) if ["false", "f", "no", "0"].contains(&v.as_str()) => Ok(false),
        Some(v) => Err(ConfigError::Invalid {
            knob: knob.into(),
            value: v,
            why: "expected True or False",
        }),
    }
}

impl Config {
    /// The resolved settings as `KNOB = value` lines, for `--check-config`.
    pub fn describe(&self) -> String {
        let opt = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        let mut others: Vec<&String> = self.providers.others.iter().collect();
        others.sort();
        let mut lines = vec![
            format!("name = {}", self.name),
            format!(
                "SEC_CREDENTIAL_DIRECTORY_OAUTH = {}",
                self.cred_dir.display()
            ),
            format!(
                "{}_LOG = {}",
                self.name,
                self.log_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "(stderr)".into())
            ),
            format!("debug = {}", self.debug),
            format!("CREDMON_OAUTH_TOKEN_MINIMUM = {}", self.minimum),
            format!("CREDMON_OAUTH_TOKEN_REFRESH = {}", self.refresh),
            format!(
                "VAULT_CREDMON_PROVIDER_NAMES = {}",
                self.providers.vault.join(", ")
            ),
            format!(
                "other credmons' providers = {}",
                others
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!(
                "CREDMON_ALLOW_SPECIAL_CHAR_NAMES = {}",
                self.providers.special_chars
            ),
            format!("TRUSTED_VAULT_HOSTS = {}", self.trusted_hosts.join(", ")),
            format!(
                "ROBOT_CREDMON_ALLOWED_VAULT_PORTS = {}",
                self.allowed_ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!("AUTH_SSL_CLIENT_CAFILE = {}", opt(&self.cafile)),
            format!("AUTH_SSL_CLIENT_CADIR = {}", opt(&self.capath)),
            format!("ROBOT_CREDMON_KEYTAB_DIR = {}", opt(&self.keytab_dir)),
            format!(
                "ROBOT_CREDMON_PROVISION = {}",
                self.provision
                    .iter()
                    .map(|p| format!("{}@{}", p.service, p.server))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!("ROBOT_CREDMON_MAX_IN_FLIGHT = {}", self.max_in_flight),
            format!(
                "ROBOT_CREDMON_SCAN_INTERVAL = {}",
                self.scan_interval.as_secs()
            ),
            format!(
                "ROBOT_CREDMON_BACKOFF_BASE = {}",
                self.backoff_base.as_secs()
            ),
            format!(
                "ROBOT_CREDMON_REQUEST_TIMEOUT = {}",
                self.request_timeout.as_secs()
            ),
            format!("ROBOT_CREDMON_METRICS_FILE = {}", opt(&self.metrics_file)),
        ];
        lines.push(String::new());
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args() -> CredmonArgs {
        CredmonArgs {
            name: "CREDMON_OAUTH".into(),
            cred_dir: None,
            log_file: None,
            debug: false,
            verbose: false,
            once: false,
            check_config: false,
            metrics_file: None,
        }
    }

    fn knobs(pairs: &[(&str, &str)]) -> Knobs {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_fallbacks() {
        let c = resolve(&knobs(&[("SEC_CREDENTIAL_DIRECTORY", "/x")]), &args()).unwrap();
        assert_eq!(c.cred_dir, PathBuf::from("/x"));
        assert_eq!((c.minimum, c.refresh), (2400, 1200));
        assert_eq!(c.providers.vault, vec!["*"]);
        assert!(c.providers.others.contains("scitokens"));
        assert_eq!(c.allowed_ports, vec![8200]);
        assert_eq!(c.max_in_flight, 8);
        assert_eq!(c.log_file, None);
        let c = resolve(
            &knobs(&[
                ("SEC_CREDENTIAL_DIRECTORY_OAUTH", "/o"),
                ("SEC_CREDENTIAL_DIRECTORY", "/x"),
                ("LOG", "/var/log/condor"),
                ("CREDMON_OAUTH_TOKEN_MINIMUM", "1000"),
                ("AUTH_SSL_CLIENT_CAFILE", ""),
                ("DUNE_CLIENT_ID", "abc"),
                ("TRUSTED_VAULT_HOSTS", "Vault.Example.org, other"),
            ]),
            &args(),
        )
        .unwrap();
        assert_eq!(c.cred_dir, PathBuf::from("/o"));
        assert_eq!(
            c.log_file,
            Some(PathBuf::from("/var/log/condor/CredMonOAuthLog"))
        );
        assert_eq!((c.minimum, c.refresh), (1000, 500));
        assert_eq!(c.cafile, None);
        assert!(c.providers.client_ids.contains("DUNE"));
        assert_eq!(c.trusted_hosts, vec!["vault.example.org", "other"]);
    }

    #[test]
    fn options_override_knobs() {
        let mut a = args();
        a.cred_dir = Some("/opt".into());
        a.log_file = Some("/l".into());
        a.debug = true;
        let c = resolve(
            &knobs(&[
                ("SEC_CREDENTIAL_DIRECTORY_OAUTH", "/o"),
                ("CREDMON_OAUTH_LOG", "/k"),
            ]),
            &a,
        )
        .unwrap();
        assert_eq!(c.cred_dir, PathBuf::from("/opt"));
        assert_eq!(c.log_file, Some(PathBuf::from("/l")));
        assert!(c.debug);
    }

    #[test]
    fn metrics_file_option_over_knob() {
        let base = [("SEC_CREDENTIAL_DIRECTORY_OAUTH", "/o")];
        let c = resolve(&knobs(&base), &args()).unwrap();
        assert_eq!(c.metrics_file, None);
        let mut k = knobs(&base);
        k.insert("ROBOT_CREDMON_METRICS_FILE".into(), "/m/knob.prom".into());
        let c = resolve(&k, &args()).unwrap();
        assert_eq!(c.metrics_file, Some(PathBuf::from("/m/knob.prom")));
        assert!(
            c.describe()
                .contains("ROBOT_CREDMON_METRICS_FILE = /m/knob.prom\n")
        );
        let mut a = args();
        a.metrics_file = Some("/m/opt.prom".into());
        let c = resolve(&k, &a).unwrap();
        assert_eq!(c.metrics_file, Some(PathBuf::from("/m/opt.prom")));
    }

    #[test]
    fn invalid_configurations() {
        let base = [("SEC_CREDENTIAL_DIRECTORY_OAUTH", "/o")];
        assert_eq!(
            resolve(&knobs(&[]), &args()).unwrap_err(),
            ConfigError::NoCredDir
        );
        for (knob, value) in [
            ("VAULT_CREDMON_PROVIDER_NAMES", "igwn, bad_name"),
            ("CREDMON_OAUTH_TOKEN_MINIMUM", "soon"),
            ("CREDMON_ALLOW_SPECIAL_CHAR_NAMES", "maybe"),
            ("ROBOT_CREDMON_MAX_IN_FLIGHT", "0"),
            ("ROBOT_CREDMON_ALLOWED_VAULT_PORTS", "8200 http"),
            ("ROBOT_CREDMON_PROVISION", "igwn_robot"),
            ("ROBOT_CREDMON_PROVISION", "../x@vault"),
        ] {
            let mut k = knobs(&base);
            k.insert(knob.into(), value.into());
            assert!(
                matches!(resolve(&k, &args()), Err(ConfigError::Invalid { .. })),
                "{knob} = {value}"
            );
        }
    }

    #[test]
    fn provision_entries() {
        let c = resolve(
            &knobs(&[
                ("SEC_CREDENTIAL_DIRECTORY_OAUTH", "/o"),
                ("ROBOT_CREDMON_VAULT_SERVER", "vault.example.org"),
                ("ROBOT_CREDMON_PROVISION", "igwn_robot, dune@other:8201"),
            ]),
            &args(),
        )
        .unwrap();
        assert_eq!(
            c.provision,
            vec![
                Provision {
                    service: "igwn_robot".into(),
                    server: "vault.example.org:8200".into()
                },
                Provision {
                    service: "dune".into(),
                    server: "other:8201".into()
                },
            ]
        );
    }

    #[test]
    fn env_and_dump_parsing() {
        let env = vec![
            ("_CONDOR_SEC_CREDENTIAL_DIRECTORY_OAUTH".into(), "/a".into()),
            ("_condor_trusted_vault_hosts".into(), "h".into()),
            ("PATH".into(), "/bin".into()),
        ];
        let k = env_knobs(&env);
        assert_eq!(k.len(), 2);
        assert_eq!(k["TRUSTED_VAULT_HOSTS"], "h");
        let d = parse_dump("# from /etc/condor\nLOG = /var/log/condor\nfoo=bar baz\n\n");
        assert_eq!(d["LOG"], "/var/log/condor");
        assert_eq!(d["FOO"], "bar baz");
    }
}
