//! The knob declarations: one constant per knob, and [`TABLE`], the list
//! `--check-config` and the documentation go through.

use super::{Kind, Knob, knob, level_name};
use std::path::PathBuf;

/// The largest token lifetime setting: 400 days.
const MAX_LIFETIME: u64 = 400 * 86400;

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
/// The pre-8.9.7 name of the same.
pub const MONITOR_LOG_OLD: Knob = knob(
    "SEC_CREDENTIAL_MONITOR_LOG",
    Kind::Path,
    "",
    "The log file when neither knob above is set (pre-8.9.7 configurations).",
);
/// The log directory.
pub const LOG_DIR: Knob = knob(
    "LOG",
    Kind::Path,
    "",
    "Without the knobs above the log is `$(LOG)/CredMonOAuthLog`; without `LOG`, stderr.",
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
/// `CREDMON_OAUTH_LOG_LEVEL` (the scitokens credmon's knob; its name does not follow `-n`).
pub const LOG_LEVEL: Knob = knob(
    "CREDMON_OAUTH_LOG_LEVEL",
    Kind::Level,
    "INFO",
    "The least severe messages logged, a Python level name: `DEBUG`, `INFO`, `WARNING`, `ERROR`, `CRITICAL` (or `NOTSET`: all).",
)
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
/// `ROBOT_CREDMON_STATE_INTERVAL`.
pub const STATE_INTERVAL: Knob = knob(
    "ROBOT_CREDMON_STATE_INTERVAL",
    clamped(1, 300),
    "5",
    "Least seconds between two writes of the state file `<cred_dir>/.robot-credmon-state.json` after changes (it is also written after every pass).",
)
.shown(|c| c.state_interval.as_secs().to_string());
/// `SEC_CREDENTIAL_GETTOKEN_OPTS` (the storer's; read to check `TRUSTED_VAULT_HOSTS`).
pub const GETTOKEN_OPTS: Knob = knob(
    "SEC_CREDENTIAL_GETTOKEN_OPTS",
    Kind::Text,
    "",
    "Not used by the credmon: `--check-config` reads the storer's `-a` from it and warns when `TRUSTED_VAULT_HOSTS` lacks that `host:port`.",
);

/// `ROBOT_CREDMON_CONFINE`.
pub const CONFINE: Knob = knob(
    "ROBOT_CREDMON_CONFINE",
    Kind::Bool,
    "True",
    "Confine the daemon after start-up: Landlock, `no_new_privs`, only the capabilities it needs (docs/security.md); `False` only to debug.",
)
.shown(|c| c.confine.to_string());

/// Every knob the credmon reads (besides `<provider>_CLIENT_ID`), in documentation order.
pub const TABLE: &[Knob] = &[
    CRED_DIR,
    CRED_DIR_OLD,
    LOG_FILE,
    MONITOR_LOG,
    MONITOR_LOG_OLD,
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
    STATE_INTERVAL,
    GETTOKEN_OPTS,
    CONFINE,
];
