//! The command line: clap definitions for every subcommand, and the
//! program-name dispatch (`igwn-robot-get`, `robot-credmon-storer`).
//! A leaf: the roles use these types, this module uses none of theirs.

use clap::{ArgAction, Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

pub use crate::duration::parse_duration;
use crate::duration::{
    MAX_SECONDS, parse_oidc_timeout, parse_request_timeout, parse_retry_time, parse_ttl,
};

/// Keeps SciTokens fresh for robot accounts: keytab -> Vault -> bearer token.
#[derive(Debug, Parser)]
#[command(
    name = "robot-credmon",
    version,
    about,
    propagate_version = true,
    args_override_self = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once per process")]
pub enum Command {
    /// Get a fresh bearer token from Vault with a keytab (igwn-robot-get compatible).
    Get(GetArgs),
    /// Store Vault credentials in HTCondor's credd (SEC_CREDENTIAL_STORER, robot-credmon-storer).
    Store(StoreArgs),
    /// Show the claims and remaining lifetime of a bearer token file.
    Token(TokenArgs),
    /// Run as HTCondor's OAuth credential monitor (CREDMON_OAUTH).
    Credmon(CredmonArgs),
    /// Monitoring check (Nagios/Icinga plugin) for a token file or a credmon.
    Check(CheckArgs),
    /// Every credential the credmon keeps, one line each, most urgent first.
    Status(StatusArgs),
    /// Write man pages and shell completions (for packagers).
    #[command(hide = true)]
    Generate(GenerateArgs),
}

/// `robot-credmon get` / `igwn-robot-get`: every igwn-robot-get 0.3.3 option
/// plus the htgettoken options a robot needs.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Get a fresh bearer token from Vault with a Kerberos keytab",
    args_override_self = true
)]
pub struct GetArgs {
    /// Kerberos principal (default: the keytab's first principal); `@LIGO.ORG` is added when no realm is given.
    pub principal: Option<String>,

    /// More output: -v says what was done, -vv adds the token claims, -vvv shows requests.
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,

    /// Only print errors.
    #[arg(short, long)]
    pub quiet: bool,

    /// Keytab with the robot's key [default: $KRB5_KTNAME].
    #[arg(
        short = 'k',
        long = "keytab",
        visible_alias = "kerberos-keytab",
        value_name = "KEYTAB"
    )]
    pub keytab: Option<String>,

    /// Kerberos credential cache for the robot's ticket [default: a private in-memory cache].
    #[arg(
        short = 'c',
        long = "ccache",
        visible_alias = "kerberos-ccache",
        value_name = "CCACHE"
    )]
    pub ccache: Option<String>,

    /// Vault server: host, host:port or https URL (port 8200 when not given).
    #[arg(
        short = 'a',
        long,
        default_value = "vault.ligo.org",
        value_name = "HOST"
    )]
    pub vaultserver: String,

    /// Token issuer name in Vault.
    #[arg(short = 'i', long, default_value = "igwn")]
    pub issuer: String,

    /// Vault credential key [default: the principal without @REALM].
    #[arg(long)]
    pub credkey: Option<String>,

    /// Vault role [default: the principal up to the first '/'].
    #[arg(short = 'r', long)]
    pub role: Option<String>,

    /// Minimum remaining lifetime, in seconds, for an existing bearer token to be kept.
    #[arg(short = 'm', long, default_value_t = 3600, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(..=MAX_SECONDS))]
    pub minsecs: u64,

    /// Where to keep the Vault token [default: /tmp/vt_u<uid>].
    #[arg(long, value_name = "FILE")]
    pub vaulttokenfile: Option<PathBuf>,

    /// Bearer token file [default: $BEARER_TOKEN_FILE, else $XDG_RUNTIME_DIR/bt_u<uid>, else /tmp/bt_u<uid>].
    #[arg(
        short = 'o',
        long = "outfile",
        visible_alias = "bearertokenfile",
        value_name = "FILE"
    )]
    pub outfile: Option<PathBuf>,

    /// Minimum remaining lifetime of the saved Vault token before a new Kerberos login.
    #[arg(long, default_value = "24h", value_parser = parse_ttl, value_name = "DURATION")]
    pub vaulttokenminttl: Duration,

    /// Lifetime of the Vault tokens we keep (longer login tokens are exchanged).
    #[arg(long, default_value = "7d", value_parser = parse_ttl, value_name = "DURATION")]
    pub vaulttokenttl: Duration,

    /// Store the credential in HTCondor's credd instead of writing a bearer token file.
    #[arg(long)]
    pub condor: bool,

    /// With --condor: store into the credd of this name (as in the collector; repeatable) [default: the names in ROBOT_CREDMON_CREDDS, else the local credd].
    #[arg(long = "credd", value_name = "NAME", requires = "condor")]
    pub credd: Vec<String>,

    /// CA bundle for the Vault server certificate [default: the system bundle].
    #[arg(long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,

    /// Directory of CA certificates [default: $X509_CERT_DIR, else /etc/grid-security/certificates if it exists].
    #[arg(long, value_name = "DIR")]
    pub capath: Option<PathBuf>,

    /// Cluster name of the Vault service, used for the Kerberos service name host@ALIAS.
    #[arg(long, value_name = "HOST")]
    pub vaultalias: Option<String>,

    /// Name to check in the Vault server certificate [default: the server host].
    #[arg(long, value_name = "NAME")]
    pub vaultcertname: Option<String>,

    /// Scopes to request (comma or space separated); uses token exchange.
    #[arg(long)]
    pub scopes: Option<String>,

    /// Audience to request (comma or space separated); uses token exchange.
    #[arg(long)]
    pub audience: Option<String>,

    /// Give up retrying transient Vault failures after this long.
    #[arg(long, default_value = "25s", value_parser = parse_retry_time, value_name = "DURATION")]
    pub retry_time: Duration,

    /// Time allowed for one Vault request once connected.
    #[arg(long, default_value = "10s", value_parser = parse_request_timeout, value_name = "DURATION")]
    pub request_timeout: Duration,

    /// Write Prometheus metrics (node_exporter textfile format) to this file after each run.
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,

    /// Log in through Vault's OIDC flow in a web browser (needs a terminal); done
    /// automatically on a terminal when Vault holds no credential yet.
    #[arg(long)]
    pub oidc: bool,

    /// Never start the OIDC flow, even on a terminal.
    #[arg(long, conflicts_with = "oidc")]
    pub nooidc: bool,

    /// Command that opens the OIDC URL [default: xdg-open, none when $SSH_CLIENT is set].
    #[arg(long, value_name = "COMMAND")]
    pub web_open_command: Option<String>,

    /// Give up waiting for the browser login after this long.
    #[arg(long, default_value = "10m", value_parser = parse_oidc_timeout, value_name = "DURATION")]
    pub oidc_timeout: Duration,
}

/// `robot-credmon store` / `robot-credmon-storer`: HTCondor's `SEC_CREDENTIAL_STORER`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Store Vault credentials in HTCondor's credd for condor_submit (SEC_CREDENTIAL_STORER)",
    args_override_self = true
)]
pub struct StoreArgs {
    /// Requests as condor_submit passes them: service[&handle=H][&scopes=a,b][&audience=X][&options=...].
    #[arg(required = true, value_name = "REQUEST")]
    pub requests: Vec<String>,

    /// Say what is done, and show condor_store_cred's output.
    #[arg(short, long)]
    pub verbose: bool,

    /// Debug output (implies -v).
    #[arg(short, long)]
    pub debug: bool,

    /// Keytab to log in to Vault with [default: $KRB5_KTNAME, else the user's Kerberos ticket cache].
    #[arg(short = 'k', long, value_name = "KEYTAB")]
    pub keytab: Option<String>,

    /// Directory of the per-service Vault token files vt_<id>-<service> [default: /tmp].
    #[arg(long, value_name = "DIR")]
    pub vaulttokendir: Option<PathBuf>,

    /// Re-store a credential whose stored Vault token has less than this left.
    #[arg(long, default_value = "7d", value_parser = parse_ttl, value_name = "DURATION")]
    pub restore_before: Duration,

    /// Store into the credd of this name (as in the collector; repeatable) [default: the names in ROBOT_CREDMON_CREDDS, else the local credd].
    #[arg(long = "credd", value_name = "NAME")]
    pub credd: Vec<String>,

    /// Command that opens the OIDC URL [default: xdg-open, none when $SSH_CLIENT is set].
    #[arg(long, value_name = "COMMAND")]
    pub web_open_command: Option<String>,

    /// Give up waiting for the browser login after this long.
    #[arg(long, default_value = "10m", value_parser = parse_oidc_timeout, value_name = "DURATION")]
    pub oidc_timeout: Duration,
}

/// `robot-credmon token`: inspect a bearer token file.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// Token file [default: the WLCG discovery rules].
    pub file: Option<PathBuf>,

    /// Print the claims as JSON.
    #[arg(long)]
    pub json: bool,

    /// Exit 1 when less than this many seconds are left.
    #[arg(short = 'm', long, default_value_t = 0, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(..=MAX_SECONDS))]
    pub minsecs: u64,

    /// Check the signature against the issuer's published keys (JWKS).
    #[arg(long)]
    pub verify: bool,

    /// CA bundle for the issuer's HTTPS server (with --verify).
    #[arg(long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,

    /// Directory of CA certificates (with --verify).
    #[arg(long, value_name = "DIR")]
    pub capath: Option<PathBuf>,
}

/// `robot-credmon credmon`: the options of HTCondor's Python credmon, plus
/// `--once`, `--check-config` and `--metrics-file`.
#[derive(Debug, Clone, Args)]
pub struct CredmonArgs {
    /// Daemon name: the prefix of the `<NAME>_LOG` and `<NAME>_DEBUG` knobs.
    #[arg(short = 'n', long, default_value = "CREDMON_OAUTH")]
    pub name: String,
    /// Credential directory [default: SEC_CREDENTIAL_DIRECTORY_OAUTH].
    #[arg(short = 'c', long = "cred-dir", value_name = "DIR")]
    pub cred_dir: Option<PathBuf>,
    /// Log file [default: <NAME>_LOG, else SEC_CREDENTIAL_MONITOR_OAUTH_LOG, else $(LOG)/CredMonOAuthLog, else stderr].
    #[arg(short = 'l', long = "log-file", value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Debug logging.
    #[arg(short = 'd', long)]
    pub debug: bool,
    /// Also log to stderr.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Do one pass and exit: 0 when every credential is fine, 1 when any failed.
    #[arg(long, conflicts_with = "check_config")]
    pub once: bool,
    /// Print the resolved settings and exit (99 when they are invalid).
    #[arg(long)]
    pub check_config: bool,
    /// Write Prometheus metrics (node_exporter textfile format) to this file after
    /// every full pass and on exit [default: ROBOT_CREDMON_METRICS_FILE, else none].
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
}

impl CredmonArgs {
    /// Whether this runs the daemon (not `--once`, not `--check-config`).
    pub fn is_daemon(&self) -> bool {
        !self.once && !self.check_config
    }
}

/// The name the binary was invoked as (`igwn-robot-get`, `robot-credmon`, ...).
pub fn invoked_as(argv0: &std::ffi::OsStr) -> String {
    std::path::Path::new(argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Parser for the `robot-credmon-storer` program name: `store`'s options at the top level.
#[derive(Debug, Parser)]
#[command(
    name = "robot-credmon-storer",
    version,
    about = "Store Vault credentials in HTCondor's credd (SEC_CREDENTIAL_STORER)"
)]
pub struct RobotCredmonStorer {
    /// The options.
    #[command(flatten)]
    pub args: StoreArgs,
}

/// Parser for the `igwn-robot-get` program name: `get`'s options at the top level.
#[derive(Debug, Parser)]
#[command(
    name = "igwn-robot-get",
    version,
    about = "Get a fresh bearer token from Vault with a Kerberos keytab"
)]
pub struct IgwnRobotGet {
    /// The options.
    #[command(flatten)]
    pub args: GetArgs,
}

// ---------------------------------------------------------------------------
// `check` and `generate` (operations and packaging).
// ---------------------------------------------------------------------------

/// Options of `robot-credmon check`, a Monitoring Plugins (Nagios/Icinga) plugin.
#[derive(Debug, Clone, clap::Args)]
#[command(
    about = "Monitoring check (Nagios/Icinga plugin) for a token file or a credmon",
    after_help = "Thresholds are plugin ranges of time left: 3600: or 1h (alert below), \
~:600 (above), 10:20 (outside), @10:20 (inside); numbers are seconds or durations.\n\
Exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also for a timeout or a usage error). \
The token is never printed."
)]
pub struct CheckArgs {
    /// Token file [default: the WLCG discovery rules]; with --credmon, the credential directory [default: /var/lib/condor/oauth_credentials].
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,

    /// Check a credmon: pid alive and a robot-credmon credmon, CREDMON_COMPLETE recent, every Vault credential's .use fresh.
    #[arg(long)]
    pub credmon: bool,

    /// WARNING range of time left: 3600: or 1h = warn when less than an hour is left.
    #[arg(short = 'w', long, default_value = "1h", value_parser = crate::range::Range::parse, value_name = "RANGE")]
    pub warning: crate::range::Range,

    /// CRITICAL range of time left: 1800: or 30m = critical when less than 30 minutes are left.
    #[arg(short = 'c', long, default_value = "30m", value_parser = crate::range::Range::parse, value_name = "RANGE")]
    pub critical: crate::range::Range,

    /// With --credmon: CRITICAL when CREDMON_COMPLETE is older than this (the credmon passes every 60 s).
    #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    pub max_age: Duration,

    /// UNKNOWN when the check takes longer than this (seconds or a duration).
    #[arg(short = 't', long, default_value = "10s", value_parser = parse_timeout, value_name = "DURATION")]
    pub timeout: Duration,
}

/// Options of `robot-credmon status`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    about = "Every credential the credmon keeps, one line each, most urgent first",
    after_help = "States: needs a person, failing, skipped, waiting (no .use yet), due, fresh. \
Reads the credential files and the credmon's state file (.robot-credmon-state.json) as root; \
works while the credmon is down."
)]
pub struct StatusArgs {
    /// Credential directory [default: /var/lib/condor/oauth_credentials].
    #[arg(short = 'c', long = "cred-dir", value_name = "DIR")]
    pub cred_dir: Option<PathBuf>,
    /// Print one JSON object (stable form, see docs/operations.md).
    #[arg(long)]
    pub json: bool,
    /// Only this user's credentials.
    #[arg(short = 'u', long, value_name = "USER", value_parser = parse_user)]
    pub user: Option<String>,
}

/// A user name as the credd writes directory names: `[A-Za-z0-9-+=_.]`, not starting with a dot.
fn parse_user(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-+=_.".contains(c));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!("'{s}' is not a user name the credd uses"))
    }
}

/// A `-t/--timeout`: a duration of at least one second.
fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(1) {
        return Err(format!("the timeout '{s}' is below one second"));
    }
    Ok(d)
}

/// What `generate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GenerateWhat {
    /// Man pages (section 1) into OUT_DIR.
    Man,
    /// bash, zsh and fish completions into OUT_DIR.
    Completions,
    /// Both, into OUT_DIR/man and OUT_DIR/completions.
    All,
}

/// Options of the (hidden) `robot-credmon generate`, for packagers.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// What to generate.
    #[arg(value_enum)]
    pub what: GenerateWhat,
    /// Directory to write into (created if missing).
    pub out_dir: PathBuf,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definitions_are_consistent() {
        Cli::command().debug_assert();
        IgwnRobotGet::command().debug_assert();
        RobotCredmonStorer::command().debug_assert();
    }

    #[test]
    fn storer_options() {
        let a = RobotCredmonStorer::try_parse_from([
            "robot-credmon-storer",
            "-v",
            "igwn",
            "igwn_prod&handle=h&scopes=a,b",
        ])
        .unwrap()
        .args;
        assert!(a.verbose && !a.debug);
        assert_eq!(a.requests, ["igwn", "igwn_prod&handle=h&scopes=a,b"]);
        assert_eq!(a.restore_before, Duration::from_secs(7 * 86400));
        assert!(RobotCredmonStorer::try_parse_from(["robot-credmon-storer"]).is_err());
    }

    #[test]
    fn igwn_robot_get_options_and_defaults() {
        let a = IgwnRobotGet::try_parse_from([
            "igwn-robot-get",
            "-vv",
            "--kerberos-keytab",
            "/k",
            "--kerberos-ccache",
            "/c",
            "--bearertokenfile",
            "/o",
            "robot/host@X",
        ])
        .unwrap()
        .args;
        assert_eq!(a.verbose, 2);
        assert_eq!(a.keytab.as_deref(), Some("/k"));
        assert_eq!(a.ccache.as_deref(), Some("/c"));
        assert_eq!(a.outfile, Some(PathBuf::from("/o")));
        assert_eq!(a.principal.as_deref(), Some("robot/host@X"));
        assert_eq!(a.vaultserver, "vault.ligo.org");
        assert_eq!(a.issuer, "igwn");
        assert_eq!(a.minsecs, 3600);
        assert_eq!(a.vaulttokenminttl, Duration::from_secs(86400));
        assert_eq!(a.vaulttokenttl, Duration::from_secs(7 * 86400));
        let b = Cli::try_parse_from([
            "robot-credmon",
            "get",
            "-k",
            "/k",
            "-a",
            "v:1",
            "-i",
            "i",
            "-r",
            "r",
            "-m",
            "5",
            "-o",
            "/o",
            "--credkey",
            "c",
        ])
        .unwrap();
        let Command::Get(b) = b.command else {
            panic!("not get")
        };
        assert_eq!(
            (b.vaultserver.as_str(), b.role.as_deref(), b.minsecs),
            ("v:1", Some("r"), 5)
        );
    }
}
