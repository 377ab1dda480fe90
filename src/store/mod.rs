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
pub mod plan;
pub mod request;

pub use exec::store_request;

use crate::cli::StoreArgs;
use crate::env::Env;
use crate::files::FileError;
use crate::kerberos::KrbError;
use crate::vault::VaultError;
use crate::vault::auth::{AuthError, oidc};
use request::{HtOpts, Request};
use std::cell::OnceCell;
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
    let extra = condor::config_val("SEC_CREDENTIAL_VAULT_STORER_OPTS", env)
        .and_then(|v| request::shell_words(&v).ok())
        .unwrap_or_default();
    let verbose = args.verbose || extra.iter().any(|w| w == "-v");
    let debug = args.debug || extra.iter().any(|w| w == "-d");
    crate::logging::init_cli_to(
        if debug { 2 } else { u8::from(verbose) },
        false,
        env_logger::Target::Pipe(Box::new(Stderr)),
    );
    run(args, verbose || debug, env).map_err(|e| {
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

/// Runs every request.
pub fn run(args: &StoreArgs, verbose: bool, env: &Env) -> Result<(), StoreError> {
    let requests = args
        .requests
        .iter()
        .map(|r| request::parse_request(r))
        .collect::<Result<Vec<Request>, String>>()
        .map_err(StoreError::Usage)?;
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
    let mut ctx = Context::from_env(
        env,
        keytab,
        args.vaulttokendir.clone(),
        args.web_open_command.clone(),
        args.oidc_timeout,
        command_hint,
    )?;
    ctx.verbose = verbose;
    ctx.restore_before = args.restore_before;
    ctx.credds = credds(&args.credd, env)?;
    for req in &requests {
        store_request(&ctx, req)?;
    }
    Ok(())
}

/// The credds to store into: `given` (`--credd`), else the
/// `ROBOT_CREDMON_CREDDS` knob; empty: the local credd.
pub fn credds(given: &[String], env: &Env) -> Result<Vec<String>, StoreError> {
    let knob = if given.is_empty() {
        condor::config_val(plan::CREDDS_KNOB, env)
    } else {
        None
    };
    plan::credd_names(given, knob.as_deref()).map_err(StoreError::Usage)
}

/// Everything the storer takes from its environment, read once.
#[derive(Debug, Clone)]
pub struct Context {
    /// Words of `SEC_CREDENTIAL_GETTOKEN_OPTS` (or `$HTGETTOKENOPTS`) and
    /// where they came from; `None` when neither is set (needed only for Vault services).
    pub gettoken: Option<(Vec<String>, String)>,
    /// Keytab for the Kerberos login (`None`: the user's ticket cache).
    pub keytab: Option<PathBuf>,
    /// Principal to use from the keytab (`None`: its first one).
    pub principal: Option<String>,
    /// CA bundle when the htgettoken options give none.
    pub cafile: Option<PathBuf>,
    /// CA directory when the htgettoken options give none.
    pub capath: Option<PathBuf>,
    /// Directory of the Vault token files.
    pub vault_token_dir: PathBuf,
    /// `CONDOR_VAULT_STORER_ID` or `u<uid>`.
    pub id: String,
    /// `CONDOR_VAULT_STORER_USER` (`-u`).
    pub user: Option<String>,
    /// `SEC_CREDENTIAL_STORECRED_OPTS` words.
    pub storecred_opts: Vec<String>,
    /// Show condor_store_cred's output.
    pub verbose: bool,
    /// Re-store when the stored Vault token has less than this left.
    pub restore_before: Duration,
    /// The home directory (credkey files).
    pub home: PathBuf,
    /// Whether a person is at a terminal (OIDC allowed).
    pub interactive: bool,
    /// `--web-open-command`.
    pub web_open_command: Option<String>,
    /// `--oidc-timeout`.
    pub oidc_timeout: Duration,
    /// The command a person should run interactively, for messages.
    pub command_hint: String,
    /// `CONDOR_CREDENTIAL_STORER_MODE`, as condor_submit sets it.
    pub mode: Option<String>,
    /// Credds to store into by name (`--credd`); empty: the local one.
    pub credds: Vec<String>,
    /// Other credmons' provider names, read when first needed.
    providers: OnceCell<plan::Providers>,
    /// Variables and the clock.
    env: Env,
}

/// `--restore-before` when none is given: re-store a Vault token in the
/// credd when it has less than a week left.
pub const RESTORE_BEFORE_DEFAULT: Duration = Duration::from_secs(7 * 86400);

impl Context {
    /// Reads the option sources and the environment `env` (quiet, and
    /// [`RESTORE_BEFORE_DEFAULT`]; callers change the public fields).
    pub fn from_env(
        env: &Env,
        keytab: Option<PathBuf>,
        vault_token_dir: Option<PathBuf>,
        web_open_command: Option<String>,
        oidc_timeout: Duration,
        command_hint: String,
    ) -> Result<Context, StoreError> {
        let var = |k: &str| env.var(k);
        let gettoken = match condor::config_val("SEC_CREDENTIAL_GETTOKEN_OPTS", env) {
            Some(v) if !v.is_empty() => Some((v, "SEC_CREDENTIAL_GETTOKEN_OPTS")),
            _ => var("HTGETTOKENOPTS")
                .filter(|v| !v.is_empty())
                .map(|v| (v, "$HTGETTOKENOPTS")),
        };
        let gettoken = gettoken
            .map(|(text, source)| {
                request::shell_words(&text).map(|words| (words, source.to_owned()))
            })
            .transpose()
            .map_err(StoreError::Usage)?;
        let storecred_opts = var("SEC_CREDENTIAL_STORECRED_OPTS")
            .map(|v| request::shell_words(&v).map_err(StoreError::Usage))
            .transpose()?
            .unwrap_or_default();
        let uid = env.euid();
        Ok(Context {
            gettoken,
            keytab,
            principal: None,
            cafile: None,
            capath: None,
            vault_token_dir: vault_token_dir.unwrap_or_else(|| PathBuf::from("/tmp")),
            id: plan::storer_id(var("CONDOR_VAULT_STORER_ID"), uid),
            user: var("CONDOR_VAULT_STORER_USER").filter(|u| !u.is_empty()),
            storecred_opts,
            verbose: false,
            restore_before: RESTORE_BEFORE_DEFAULT,
            home: var("HOME").map(PathBuf::from).unwrap_or_default(),
            interactive: oidc::process_is_interactive(),
            web_open_command: oidc::web_open_command(
                web_open_command.as_deref(),
                var("SSH_CLIENT").as_deref(),
            ),
            oidc_timeout,
            command_hint,
            mode: var("CONDOR_CREDENTIAL_STORER_MODE").filter(|m| !m.is_empty()),
            credds: Vec::new(),
            providers: OnceCell::new(),
            env: env.clone(),
        })
    }

    /// The effective uid: owner of the files we write and read back.
    pub fn uid(&self) -> u32 {
        self.env.euid()
    }

    /// Which credmon owns `service`.
    fn owner(&self, service: &str) -> plan::Owner {
        match &self.mode {
            Some(m) => plan::owner(Some(m), service, &plan::Providers::default()),
            None => {
                let providers = self.providers.get_or_init(|| {
                    plan::Providers::from_knobs(|k| {
                        condor::config_val(k, &self.env).filter(|v| !v.is_empty())
                    })
                });
                plan::owner(None, service, providers)
            }
        }
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
            words.extend(request::shell_words(o).map_err(StoreError::Usage)?);
        }
        let opts = request::parse_htgettoken_opts(&words, source).map_err(StoreError::Usage)?;
        Ok((opts, source))
    }
}

#[cfg(test)]
mod tests;
