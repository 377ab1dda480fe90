//! `robot-credmon get` (also `igwn-robot-get`): keytab -> Vault -> bearer
//! token file. Does nothing, without touching the network, while the existing
//! token has more than `--minsecs` left; otherwise refreshes under a lock,
//! reusing the saved Vault token when it is still good and logging in with
//! Kerberos when it is not.

pub mod login;
pub mod plan;
mod vault;

use crate::cli::GetArgs;
use crate::env::Env;
use crate::files::{FileError, LockFile, SafeDir, WriteOptions};
use crate::token::{self, BearerToken, MAX_TOKEN_BYTES, accept};
use crate::vault::auth::AuthError;
use crate::vault::{Connector, Https};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use vault::{bearer_from_vault, keytab_source};

/// Why `get` failed. Each message names the file or server and the likely fix.
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    /// No keytab was given.
    #[error("no keytab given: use --keytab FILE or set KRB5_KTNAME")]
    NoKeytab,
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// A Kerberos, Vault or OIDC problem, with advice.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The existing bearer token file holds something that is not a token.
    #[error(
        "'{path}' exists but does not hold a bearer token ({why}); remove it or choose another --outfile"
    )]
    NotAToken {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Vault handed out a token we refuse to write; the file was left alone.
    #[error(
        "Vault at {server} handed out a bearer token that cannot be used: {why}; '{path}' was left unchanged"
    )]
    UnusableToken {
        /// `https://host:port`.
        server: String,
        /// What is wrong with it.
        why: token::accept::Rejection,
        /// The token file.
        path: PathBuf,
    },
    /// A feature that is not available yet.
    #[error("{0}")]
    Unsupported(&'static str),
    /// `--condor`: the user's HTCondor config does not match (igwn-robot-get's message).
    #[error("{0}")]
    CondorConfig(String),
    /// `--condor`: storing in the credd failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Options that contradict each other.
    #[error("{0}")]
    BadOptions(String),
    /// Only a person can get a token now: Vault holds no credential for the
    /// credkey, or the issuer refused its refresh token (exit status 4).
    #[error("{why}; a person must log in once: run on a terminal: {command}")]
    NeedsLogin {
        /// What Vault said, in words.
        why: String,
        /// The command to run ([`plan::login_command`]).
        command: String,
    },
    /// The token file has several hard links outside the user's own directory.
    #[error(
        "'{path}' has several hard links and {why}; refusing to replace it (remove it, or choose an --outfile in a directory of your own)"
    )]
    HardLinked {
        /// The token file.
        path: PathBuf,
        /// Why its directory is not the user's own.
        why: String,
    },
}

/// What a successful run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The existing token was good enough; nothing was done.
    StillValid {
        /// The token file.
        path: PathBuf,
        /// Seconds left.
        remaining: i64,
    },
    /// A new token was written.
    Refreshed {
        /// Why: `missing`, `expiring` or `invalid` (what the old file held).
        cause: &'static str,
        /// The token file.
        path: PathBuf,
        /// Seconds left on the new token (`None` without `exp`).
        remaining: Option<i64>,
        /// Whether a Kerberos login was needed.
        logged_in: bool,
    },
    /// `--condor`: the credential is in the credd.
    Stored {
        /// The service name.
        service: String,
    },
}

/// Runs `get` in `env` (variables, effective uid, clock), then updates the
/// `--metrics-file` when one is given.
pub fn run(args: &GetArgs, env: &Env) -> Result<Outcome, GetError> {
    run_with(args, env, Arc::new(Https::new(env)))
}

/// [`run`], talking to Vault through `connector` (a simulated Vault in tests).
pub fn run_with(
    args: &GetArgs,
    env: &Env,
    connector: Arc<dyn Connector>,
) -> Result<Outcome, GetError> {
    let result = refresh(args, env, &connector).map_err(|e| match e {
        GetError::NeedsLogin { why, command } if command.is_empty() => GetError::NeedsLogin {
            why,
            command: plan::login_command(
                &env.args()
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect::<Vec<_>>(),
            ),
        },
        e => e,
    });
    if !args.condor {
        let outfile = plan::outfile(args, |k| env.var(k), env.euid());
        login::mark(&outfile, &result, env);
    }
    if let Some(path) = &args.metrics_file {
        record_metrics(path, &result, env);
    }
    result
}

impl GetError {
    /// Whether only a person can fix this (exit status 4).
    pub fn needs_login(&self) -> bool {
        matches!(self, GetError::NeedsLogin { .. })
    }

    /// A short label for metrics: `kerberos`, `vault`, `file` or `config`.
    pub fn cause(&self) -> &'static str {
        match self {
            GetError::Auth(AuthError::Kerberos(_)) => "kerberos",
            GetError::Auth(
                AuthError::Vault { .. } | AuthError::Refused { .. } | AuthError::NeedsLogin { .. },
            ) => "vault",
            GetError::Auth(AuthError::Oidc(_)) => "oidc",
            GetError::File(_)
            | GetError::Auth(AuthError::File(_))
            | GetError::NotAToken { .. }
            | GetError::HardLinked { .. } => "file",
            GetError::UnusableToken { .. } => "token",
            GetError::NoKeytab
            | GetError::Unsupported(_)
            | GetError::BadOptions(_)
            | GetError::CondorConfig(_) => "config",
            GetError::Store(_) => "condor",
            GetError::NeedsLogin { .. } => "needs_login",
        }
    }
}

fn record_metrics(path: &Path, result: &Result<Outcome, GetError>, env: &Env) {
    let now = env.now();
    let now_s = token::unix_seconds(now);
    let mut m = crate::metrics::GetMetrics::load_or_default(path);
    let uid = nix::unistd::Uid::from_raw(env.euid());
    m.user = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name);
    match result {
        Ok(Outcome::Stored { .. }) => m.record_success(now, None, Some("stored")),
        Ok(Outcome::StillValid { remaining, .. }) => {
            m.record_success(now, Some(now_s + remaining), None)
        }
        Ok(Outcome::Refreshed {
            remaining, cause, ..
        }) => m.record_success(now, remaining.map(|r| now_s + r), Some(cause)),
        Err(e) => m.record_failure(now, e.cause()),
    }
    if let Err(e) = m.write(path, env.euid()) {
        log::warn!("{e}");
    }
}

/// `--vaulttokenminttl` must be less than `--vaulttokenttl`.
fn check_ttls(args: &GetArgs) -> Result<(), GetError> {
    if args.vaulttokenminttl >= args.vaulttokenttl {
        return Err(GetError::BadOptions(format!(
            "--vaulttokenminttl ({} s) must be less than --vaulttokenttl ({} s)",
            args.vaulttokenminttl.as_secs(),
            args.vaulttokenttl.as_secs()
        )));
    }
    Ok(())
}

/// The refresh itself. `now` is read once per check so tests and logs agree.
fn refresh(args: &GetArgs, env: &Env, connector: &Arc<dyn Connector>) -> Result<Outcome, GetError> {
    if args.condor {
        return condor(args, env, connector);
    }
    let uid = env.euid();
    let var = |k: &str| env.var(k);
    check_ttls(args)?;
    let keytab = plan::keytab_path(args, var).ok_or(GetError::NoKeytab)?;
    let outfile = plan::outfile(args, var, uid);
    let (dir, name) = SafeDir::open_parent(&outfile)?;

    if !args.oidc
        && let Existing::Fresh(outcome) =
            check_existing(&dir, &name, &outfile, args.minsecs, env, true)?
    {
        return Ok(outcome);
    }
    let lock_wait = args.retry_time + args.request_timeout * 3 + Duration::from_secs(10);
    let _lock = LockFile::acquire(&dir, &name, Some(uid), lock_wait, env.clock())?;
    remove_leftovers(&dir, &name, uid, env.now());
    let (cause, current_exp) = match recheck(&dir, &name, &outfile, args, env)? {
        Ok(why) => why,
        Err(outcome) => return Ok(outcome),
    };

    let (client, bearer, logged_in) = bearer_from_vault(args, env, &keytab, &**connector)?;
    let now = env.now();
    if let Some(kept) =
        keep_current(&bearer, current_exp, now, args.minsecs, &outfile).map_err(|why| {
            GetError::UnusableToken {
                server: client.server(),
                why,
                path: outfile.clone(),
            }
        })?
    {
        return Ok(kept);
    }
    dir.write_atomic(
        &name,
        &bearer.file_contents(),
        WriteOptions::user_file(0o600, uid),
    )?;
    log::info!(
        "wrote a new bearer token to {} ({} requests to {})",
        outfile.display(),
        client.request_count(),
        client.server()
    );
    log_claims(&bearer, now);
    Ok(Outcome::Refreshed {
        cause,
        path: outfile,
        remaining: bearer.remaining(now),
        logged_in,
    })
}

/// The second look, under the lock: why to refresh and the `exp` of the token
/// in place, or (`Err`) the outcome when another run refreshed it meanwhile.
/// With `--oidc` a fresh token is replaced all the same.
fn recheck(
    dir: &SafeDir,
    name: &str,
    outfile: &Path,
    args: &GetArgs,
    env: &Env,
) -> Result<Result<(&'static str, Option<i64>), Outcome>, GetError> {
    Ok(
        match check_existing(dir, name, outfile, args.minsecs, env, false)? {
            Existing::Fresh(Outcome::StillValid { remaining, .. }) if args.oidc => Ok((
                "oidc",
                remaining.checked_add(token::unix_seconds(env.now())),
            )),
            Existing::Fresh(_) if args.oidc => Ok(("oidc", None)),
            Existing::Fresh(outcome) => {
                log::info!("another run refreshed the token meanwhile");
                Err(outcome)
            }
            Existing::Stale(cause, exp) => Ok((cause, exp)),
        },
    )
}

/// The one acceptance rule for the new token: `Ok(None)` to write it,
/// `Ok(Some(outcome))` to keep the token in place, `Err(why)` when it is unusable.
fn keep_current(
    bearer: &BearerToken,
    current_exp: Option<i64>,
    now: SystemTime,
    minsecs: u64,
    outfile: &Path,
) -> Result<Option<Outcome>, accept::Rejection> {
    let now = token::unix_seconds(now);
    match accept::decide(bearer.claims(), current_exp, now, minsecs) {
        accept::Decision::Replace(warning) => {
            if let Some(w) = warning {
                log::warn!("{w}");
            }
            Ok(None)
        }
        accept::Decision::KeepCurrent(why) => {
            log::warn!("{why}");
            Ok(Some(Outcome::StillValid {
                path: outfile.to_path_buf(),
                remaining: current_exp.and_then(|e| e.checked_sub(now)).unwrap_or(0),
            }))
        }
        accept::Decision::Reject(why) => Err(why),
    }
}

/// `get --condor`: igwn-robot-get's config check, then the storer's public
/// entry for `<issuer>` with the keytab, both on one read of the HTCondor configuration.
fn condor(args: &GetArgs, env: &Env, connector: &Arc<dyn Connector>) -> Result<Outcome, GetError> {
    let keytab = plan::keytab_path(args, |k| env.var(k)).ok_or(GetError::NoKeytab)?;
    let source = keytab_source(args, &keytab)?;
    let principal = source.principal().unwrap_or_default().to_owned();
    let p = plan::plan(args, &principal, env.euid()).map_err(AuthError::from)?;
    let config = crate::store::read_config(env);
    let value = |k: &str| crate::condor::config::value(&config, k);
    let home = env.var("HOME").map(PathBuf::from).unwrap_or_default();
    let user_config = home
        .join(".condor")
        .join(value("USER_CONFIG_FILE").unwrap_or("user_config"));
    let found = value("SEC_CREDENTIAL_GETTOKEN_OPTS");
    let words = found
        .map(crate::condor::config::words)
        .transpose()
        .map_err(GetError::CondorConfig)?
        .unwrap_or_default();
    let wanted = plan::condor_options(&p.credkey, &p.names.role, &args.vaultserver);
    plan::condor_config_check(found, &words, &wanted, &user_config, user_config.exists())
        .map_err(GetError::CondorConfig)?;
    log::info!("Condor user_config matches current options");
    let settings = crate::store::Settings {
        keytab: Some(keytab),
        principal: Some(principal),
        cafile: args.cafile.clone(),
        capath: args.capath.clone(),
        vault_token_dir: None,
        verbose: true,
        restore_before: crate::store::RESTORE_BEFORE_DEFAULT,
        oidc: !args.nooidc,
        web_open_command: args.web_open_command.clone(),
        oidc_timeout: args.oidc_timeout,
        command_hint: "robot-credmon get --condor".into(),
        mode: Some("vault".into()),
        connector: connector.clone(),
        credds: args.credd.clone(),
    };
    crate::store::store(&settings, std::slice::from_ref(&args.issuer), env, &config)?;
    Ok(Outcome::Stored {
        service: args.issuer.clone(),
    })
}

/// What the token file holds now.
enum Existing {
    /// A token with more than `--minsecs` left: nothing to do.
    Fresh(Outcome),
    /// Needs a new token; why (`missing`, `expiring`, `invalid`), and the
    /// `exp` of the token in place, if any.
    Stale(&'static str, Option<i64>),
}

/// The fast path: is the existing token good for more than `minsecs` now?
fn check_existing(
    dir: &SafeDir,
    name: &str,
    path: &Path,
    minsecs: u64,
    env: &Env,
    first_look: bool,
) -> Result<Existing, GetError> {
    let (uid, now) = (env.euid(), env.now());
    if hard_linked(dir, name, path, uid, first_look)? {
        return Ok(Existing::Stale("invalid", None));
    }
    let Some((bytes, _)) = dir.read_trusted(name, MAX_TOKEN_BYTES + 2, uid)? else {
        if first_look {
            log::info!("no bearer token in {} yet", path.display());
        }
        return Ok(Existing::Stale("missing", None));
    };
    let tok = match sound_token(&bytes, path, now, first_look) {
        Ok(t) => t,
        Err(stale) => return Ok(stale),
    };
    let remaining = tok.remaining(now).unwrap_or(i64::MIN);
    if tok.is_fresh(now, minsecs) {
        log::info!(
            "the bearer token in {} is valid for {} more (over --minsecs {minsecs}); nothing to do",
            path.display(),
            token::format_remaining(remaining)
        );
        log_claims(&tok, now);
        return Ok(Existing::Fresh(Outcome::StillValid {
            path: path.to_owned(),
            remaining,
        }));
    }
    if first_look {
        log::info!(
            "the bearer token in {} has {} left, not over --minsecs {minsecs}; refreshing",
            path.display(),
            token::format_remaining(remaining)
        );
    }
    Ok(Existing::Stale("expiring", tok.claims().exp))
}

/// Whether the token file is a regular file with several hard links: never
/// trusted (its contents are not read), replaced by a rename in the user's
/// own directory, refused with the reason elsewhere.
fn hard_linked(
    dir: &SafeDir,
    name: &str,
    path: &Path,
    uid: u32,
    first_look: bool,
) -> Result<bool, GetError> {
    use nix::sys::stat::SFlag;
    let linked = dir.stat(name)?.is_some_and(|st| {
        st.st_nlink > 1
            && SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFREG
    });
    if !linked {
        return Ok(false);
    }
    let d = dir.stat_self()?;
    plan::may_replace_hard_link(d.st_uid, d.st_mode, uid).map_err(|why| GetError::HardLinked {
        path: path.to_owned(),
        why,
    })?;
    if first_look {
        log::warn!(
            "{} has several hard links: its contents are not trusted, and it will be replaced (the other links keep the old file)",
            path.display()
        );
    }
    Ok(true)
}

/// The token in `bytes` when it is sound enough to keep or to compare with a
/// new one (a JWT with claims in range; expired or nearly so is fine here),
/// else why the file is stale (warned about on the first look).
fn sound_token(
    bytes: &[u8],
    path: &Path,
    now: SystemTime,
    first_look: bool,
) -> Result<BearerToken, Existing> {
    let tok = match BearerToken::from_bytes(bytes) {
        Ok(t) => t,
        Err(token::TokenError::Empty) => return Err(Existing::Stale("missing", None)),
        Err(e) => {
            if first_look {
                log::warn!(
                    "{} does not hold a valid token ({e}); it will be replaced",
                    path.display()
                );
            }
            return Err(Existing::Stale("invalid", None));
        }
    };
    if let Err(why) = accept::usable(tok.claims(), token::unix_seconds(now))
        && !matches!(
            why.problem,
            accept::Problem::Expired { .. } | accept::Problem::AlmostExpired { .. }
        )
    {
        if first_look {
            log::warn!(
                "{} does not hold a usable token ({why}); it will be replaced",
                path.display()
            );
        }
        return Err(Existing::Stale("invalid", None));
    }
    Ok(tok)
}

/// Removes temporary files of `name` that a killed earlier run left (best effort).
/// Under the lock: a killed run's temporary files go at once (the lock
/// proves that no writer of ours is active).
fn remove_leftovers(dir: &SafeDir, name: &str, uid: u32, now: SystemTime) {
    if let Err(e) = dir.remove_stale_temps_of(name, uid, now, Duration::ZERO) {
        log::warn!("cannot clean up after an earlier run: {e}");
    }
}

fn log_claims(tok: &BearerToken, now: SystemTime) {
    if log::log_enabled!(log::Level::Debug) {
        for (k, v) in token::describe_claims(tok, now) {
            log::debug!("  {k:<5} {v}");
        }
    }
}
