//! `robot-credmon store` (also run as `robot-credmon-storer`): HTCondor's
//! `SEC_CREDENTIAL_STORER` for Vault credentials, with the results of
//! HTCondor's `condor_credential_storer` (htcondor-credmon-interface.md
//! §2.6-2.7), done in-process instead of through htgettoken:
//!
//! 1. services owned by other credmons (Pelican, local, OAuth client) are left
//!    alone, decided as HTCondor's storer does (`CONDOR_CREDENTIAL_STORER_MODE`,
//!    else the `*_CREDMON_PROVIDER_NAMES` knobs);
//! 2. the credd is asked first (`query-oauth`): when it holds the credential,
//!    nothing is minted and no Kerberos ticket is needed (a robot whose
//!    credential the credmon provisioned submits without one);
//! 3. otherwise (or when the Vault token we stored there is close to expiry) a
//!    28-day Vault token comes from Kerberos (keytab or the user's ticket
//!    cache), or on a terminal from the OIDC login, and is stored with
//!    `condor_store_cred add-oauth`; the local file gets a 7-day child;
//! 4. a handle is stored when a new token was made or the credd lacks it.
//!
//! `plan.rs` decides, `exec.rs` carries it out. Messages go to stderr after
//! a leading newline (only when there is something to say); exit 0 or 1.

pub mod condor;
mod exec;
pub mod options;
pub mod plan;
pub mod request;

use crate::cli::StoreArgs;
use crate::condor::config::{self as htcondor, Knobs};
use crate::env::Env;
use crate::files::FileError;
use crate::kerberos::KrbError;
use crate::vault::auth::{AuthError, oidc};
use crate::vault::{Connector, Https, VaultError};
use options::HtOpts;
use request::Request;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use crate::vault::auth::STORED_TTL;
/// Lifetime of the local per-service Vault token (htgettoken's default 7d).
pub const LOCAL_TTL: Duration = Duration::from_secs(7 * 86400);

/// Why storing failed. Messages name the service, file or server and the fix.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Neither option source is set (HTCondor's storer's own message).
    #[error(
        "Neither SEC_CREDENTIAL_GETTOKEN_OPTS condor value nor $HTGETTOKENOPTS environment set"
    )]
    NoOptions,
    /// Bad request or options.
    #[error("{0}")]
    Usage(String),
    /// No Vault server in the options.
    #[error("no Vault server for service '{0}': add '-a HOST' to SEC_CREDENTIAL_GETTOKEN_OPTS")]
    NoServer(String),
    /// The credd holds the credential with other scopes/audience.
    #[error("{}", plan::mismatch_message(.0))]
    Mismatch(String),
    /// `condor_store_cred add-oauth` failed.
    #[error("Failed to store condor credentials for {name}: {detail}")]
    StoreFailed {
        /// The credential name.
        name: String,
        /// What condor_store_cred said.
        detail: String,
    },
    /// An HTCondor tool could not be run or failed.
    #[error("{0}")]
    Tool(String),
    /// Storing failed at some of the credds named with `--credd` (each was
    /// tried; one line per credd says how it went).
    #[error("storing failed at {} of {total} credds: {}", .failed.len(), .failed.join(", "))]
    Credds {
        /// The credds where it failed.
        failed: Vec<String>,
        /// How many credds were tried.
        total: usize,
    },
    /// A Kerberos, Vault or OIDC problem.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A file problem.
    #[error(transparent)]
    File(#[from] FileError),
}

impl From<VaultError> for StoreError {
    fn from(error: VaultError) -> Self {
        StoreError::Auth(error.into())
    }
}

impl From<KrbError> for StoreError {
    fn from(error: KrbError) -> Self {
        StoreError::Auth(error.into())
    }
}

/// Set once anything went to stderr: condor_submit leaves the cursor after
/// its own output, so the first line we print starts with a newline.
static SPOKE: AtomicBool = AtomicBool::new(false);

/// Standard error that begins with a newline the first time it is written to.
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut err = std::io::stderr().lock();
        if !buf.is_empty() && !SPOKE.swap(true, Ordering::Relaxed) {
            err.write_all(b"\n")?;
        }
        err.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Prints one message line to stderr (after the leading newline).
pub fn say(msg: &str) {
    let _ = writeln!(Stderr, "{msg}");
}

/// A storer failure, already reported on stderr in condor_submit's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reported;

/// Entry point of `robot-credmon store`: messages on stderr; `main.rs` maps the result to the exit code.
pub fn main(args: &StoreArgs, env: &Env) -> Result<(), Reported> {
    let config = read_config(env);
    let extra = htcondor::value(&config, "SEC_CREDENTIAL_VAULT_STORER_OPTS")
        .and_then(|v| htcondor::words(v).ok())
        .unwrap_or_default();
    let verbose = args.verbose || extra.iter().any(|w| w == "-v");
    let debug = args.debug || extra.iter().any(|w| w == "-d");
    crate::logging::init_cli_to(
        if debug { 2 } else { u8::from(verbose) },
        false,
        env_logger::Target::Pipe(Box::new(Stderr)),
    );
    run(args, verbose || debug, env, &config).map_err(|e| {
        let me = program_name(env);
        say(&format!("{me}: {e}"));
        if !(verbose || debug) {
            let quoted: Vec<String> = args.requests.iter().map(|r| format!("\"{r}\"")).collect();
            say(&format!(
                "  More details might be available by running\n    {me} -v {}",
                quoted.join(" ")
            ));
        }
        Reported
    })
}

/// How we were run, for messages: `robot-credmon-storer` or `robot-credmon store`.
fn program_name(env: &Env) -> String {
    let arg0 = env
        .args()
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = arg0.rsplit('/').next().unwrap_or_default();
    if base.is_empty() || base == "robot-credmon" {
        "robot-credmon store".to_owned()
    } else {
        base.to_owned()
    }
}

/// The HTCondor knobs the storer and `get --condor` read (their macros expanded).
pub const KNOBS: &[&str] = &[
    "SEC_CREDENTIAL_GETTOKEN_OPTS",
    "SEC_CREDENTIAL_VAULT_STORER_OPTS",
    "USER_CONFIG_FILE",
    "PELICAN_CREDMON_PROVIDER_NAMES",
    "LOCAL_CREDMON_PROVIDER_NAMES",
    "LOCAL_CREDMON_PROVIDER_NAME",
    "OAUTH2_CREDMON_PROVIDER_NAMES",
    "CLIENT_CREDMON_PROVIDER_NAMES",
    plan::CREDDS_KNOB,
];

/// The HTCondor configuration of `env`, read once through the one reader
/// (`condor_config_val -dump`, `_CONDOR_*`), for [`store`].
pub fn read_config(env: &Env) -> Knobs {
    htcondor::read(env, |k| KNOBS.contains(&k))
}

/// What the caller decided: `store`'s command line, or the resolved options
/// of `get --condor`.
pub struct Settings {
    /// Keytab for the Kerberos login (`None`: the user's ticket cache).
    pub keytab: Option<PathBuf>,
    /// Principal to use from the keytab (`None`: its first one).
    pub principal: Option<String>,
    /// CA bundle when the htgettoken options give none.
    pub cafile: Option<PathBuf>,
    /// CA directory when the htgettoken options give none.
    pub capath: Option<PathBuf>,
    /// Directory of the Vault token files (`None`: `/tmp`).
    pub vault_token_dir: Option<PathBuf>,
    /// Show what is done, and condor_store_cred's output.
    pub verbose: bool,
    /// Re-store when the stored Vault token has less than this left.
    pub restore_before: Duration,
    /// Whether a person's OIDC login may be offered (on a terminal).
    pub oidc: bool,
    /// `--web-open-command`.
    pub web_open_command: Option<String>,
    /// `--oidc-timeout`.
    pub oidc_timeout: Duration,
    /// The command a person should run interactively, for messages.
    pub command_hint: String,
    /// Which credmon owns the services: `vault` for all of them (`get
    /// --condor`); `None`: `CONDOR_CREDENTIAL_STORER_MODE`, else the knobs.
    pub mode: Option<String>,
    /// Where Vault APIs come from (a simulated Vault in tests).
    pub connector: std::sync::Arc<dyn Connector>,
    /// Credds to store into by name (`--credd`); none: the names in
    /// `ROBOT_CREDMON_CREDDS`, else the local credd.
    pub credds: Vec<String>,
}

impl Settings {
    /// The settings of `robot-credmon store` (`verbose`: `-v`/`-d` or the
    /// storer's own options knob).
    pub fn from_args(args: &StoreArgs, verbose: bool, env: &Env) -> Settings {
        let keytab = args
            .keytab
            .clone()
            .filter(|k| !k.is_empty())
            .or_else(|| env.var("KRB5_KTNAME").filter(|k| !k.is_empty()))
            .map(|k| PathBuf::from(k.strip_prefix("FILE:").unwrap_or(&k)));
        let mut command_hint = String::from("robot-credmon store");
        for r in &args.requests {
            command_hint.push_str(&format!(" '{r}'"));
        }
        Settings {
            keytab,
            principal: None,
            cafile: None,
            capath: None,
            vault_token_dir: args.vaulttokendir.clone(),
            verbose,
            restore_before: args.restore_before,
            oidc: true,
            web_open_command: args.web_open_command.clone(),
            oidc_timeout: args.oidc_timeout,
            command_hint,
            mode: None,
            connector: std::sync::Arc::new(Https::new(env)),
            credds: args.credd.clone(),
        }
    }
}

/// Runs every request of `robot-credmon store`.
pub fn run(args: &StoreArgs, verbose: bool, env: &Env, config: &Knobs) -> Result<(), StoreError> {
    store(
        &Settings::from_args(args, verbose, env),
        &args.requests,
        env,
        config,
    )
}

/// The storer's public entry: stores the credentials of `requests`
/// (condor_submit's request strings) with `settings`, in `env`, with the
/// HTCondor configuration `config` ([`read_config`]).
pub fn store(
    settings: &Settings,
    requests: &[String],
    env: &Env,
    config: &Knobs,
) -> Result<(), StoreError> {
    let requests = requests
        .iter()
        .map(|r| request::parse_request(r))
        .collect::<Result<Vec<Request>, String>>()
        .map_err(StoreError::Usage)?;
    let ctx = Context::new(settings, env, config)?;
    for req in &requests {
        exec::store_request(&ctx, req)?;
    }
    Ok(())
}

/// Everything the storer takes from its settings and environment, read once.
struct Context<'a> {
    /// The caller's settings.
    settings: &'a Settings,
    /// Words of `SEC_CREDENTIAL_GETTOKEN_OPTS` (or `$HTGETTOKENOPTS`) and
    /// where they came from; `None` when neither is set (needed only for Vault services).
    gettoken: Option<(Vec<String>, String)>,
    /// Directory of the Vault token files.
    vault_token_dir: PathBuf,
    /// `CONDOR_VAULT_STORER_ID` or `u<uid>`.
    id: String,
    /// `CONDOR_VAULT_STORER_USER` (`-u`).
    user: Option<String>,
    /// `SEC_CREDENTIAL_STORECRED_OPTS` words.
    storecred_opts: Vec<String>,
    /// The home directory (credkey files).
    home: PathBuf,
    /// Whether a person is at a terminal (OIDC allowed).
    interactive: bool,
    /// The browser command (`--web-open-command`, else `xdg-open` without `$SSH_CLIENT`).
    web_open_command: Option<String>,
    /// The settings' mode, else `CONDOR_CREDENTIAL_STORER_MODE`.
    mode: Option<String>,
    /// Other credmons' provider names.
    providers: plan::Providers,
    /// Credds to store into by name; empty: the local one.
    credds: Vec<String>,
    /// Variables and the clock.
    env: Env,
}

/// `--restore-before` when none is given: re-store a Vault token in the
/// credd when it has less than a week left.
pub const RESTORE_BEFORE_DEFAULT: Duration = Duration::from_secs(7 * 86400);

impl<'a> Context<'a> {
    /// Reads the option sources from `config` and `env`.
    fn new(settings: &'a Settings, env: &Env, config: &Knobs) -> Result<Self, StoreError> {
        let var = |k: &str| env.var(k).filter(|v| !v.is_empty());
        let gettoken = match htcondor::value(config, "SEC_CREDENTIAL_GETTOKEN_OPTS") {
            Some(v) => Some((v.to_owned(), "SEC_CREDENTIAL_GETTOKEN_OPTS")),
            None => var("HTGETTOKENOPTS").map(|v| (v, "$HTGETTOKENOPTS")),
        };
        let gettoken = gettoken
            .map(|(text, source)| htcondor::words(&text).map(|w| (w, source.to_owned())))
            .transpose()
            .map_err(StoreError::Usage)?;
        let storecred_opts = var("SEC_CREDENTIAL_STORECRED_OPTS")
            .map(|v| htcondor::words(&v).map_err(StoreError::Usage))
            .transpose()?
            .unwrap_or_default();
        Ok(Context {
            settings,
            gettoken,
            vault_token_dir: (settings.vault_token_dir.clone())
                .unwrap_or_else(|| PathBuf::from("/tmp")),
            id: plan::storer_id(var("CONDOR_VAULT_STORER_ID"), env.euid()),
            user: var("CONDOR_VAULT_STORER_USER"),
            storecred_opts,
            home: env.var("HOME").map(PathBuf::from).unwrap_or_default(),
            interactive: settings.oidc && oidc::process_is_interactive(),
            web_open_command: oidc::web_open_command(
                settings.web_open_command.as_deref(),
                env.var("SSH_CLIENT").as_deref(),
            ),
            mode: settings
                .mode
                .clone()
                .or_else(|| var("CONDOR_CREDENTIAL_STORER_MODE")),
            providers: plan::Providers::from_knobs(|k| {
                htcondor::value(config, k).map(str::to_owned)
            }),
            credds: plan::credd_names(&settings.credds, htcondor::value(config, plan::CREDDS_KNOB))
                .map_err(StoreError::Usage)?,
            env: env.clone(),
        })
    }

    /// The effective uid: owner of the files we write and read back.
    fn uid(&self) -> u32 {
        self.env.euid()
    }

    /// Which credmon owns `service`.
    fn owner(&self, service: &str) -> plan::Owner {
        plan::owner(self.mode.as_deref(), service, &self.providers)
    }

    /// The htgettoken options of a request: the configured ones, then the
    /// service's issuer and role, then the request's own `&options=`.
    fn options_for(&self, req: &Request) -> Result<(HtOpts, &str), StoreError> {
        let (words, source) = self.gettoken.as_ref().ok_or(StoreError::NoOptions)?;
        let mut words = words.clone();
        words.extend(["-i".to_owned(), req.issuer().to_owned()]);
        if let Some(role) = req.role() {
            words.extend(["-r".to_owned(), role.to_owned()]);
        }
        if let Some(o) = &req.options {
            words.extend(htcondor::words(o).map_err(StoreError::Usage)?);
        }
        let opts = options::parse(&words, source).map_err(StoreError::Usage)?;
        Ok((opts, source))
    }
}

#[cfg(test)]
mod tests;
