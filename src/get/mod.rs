//! `robot-credmon get` (also `igwn-robot-get`): keytab -> Vault -> bearer
//! token file. Does nothing, without touching the network, while the existing
//! token has more than `--minsecs` left; otherwise refreshes under a lock,
//! reusing the saved Vault token when it is still good and logging in with
//! Kerberos when it is not.

pub mod plan;

use crate::cli::GetArgs;
use crate::files::{FileError, LockFile, SafeDir, WriteOptions};
use crate::token::{self, BearerToken, MAX_TOKEN_BYTES};
use crate::vault::auth::{self, AuthError, CredentialSource, LoginTarget, Trust, oidc};
use crate::vault::{Limits, VaultClient, VaultError, VaultToken};
use plan::Plan;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

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

/// Runs `get`, then updates the `--metrics-file` when one is given.
pub fn run(args: &GetArgs) -> Result<Outcome, GetError> {
    let result = refresh(args);
    if let Some(path) = &args.metrics_file {
        record_metrics(path, &result);
    }
    result
}

impl GetError {
    /// Vault answered 404: it holds no credential for the credkey.
    fn is_not_found(&self) -> bool {
        matches!(self, GetError::Auth(AuthError::Vault { error, .. }) if error.status() == Some(404))
    }

    /// A short label for metrics: `kerberos`, `vault`, `file` or `config`.
    pub fn cause(&self) -> &'static str {
        match self {
            GetError::Auth(AuthError::Kerberos(_)) => "kerberos",
            GetError::Auth(AuthError::Vault { .. }) => "vault",
            GetError::Auth(AuthError::Oidc(_)) => "oidc",
            GetError::File(_) | GetError::Auth(AuthError::File(_)) | GetError::NotAToken { .. } => {
                "file"
            }
            GetError::NoKeytab
            | GetError::Unsupported(_)
            | GetError::BadOptions(_)
            | GetError::CondorConfig(_) => "config",
            GetError::Store(_) => "condor",
        }
    }
}

fn record_metrics(path: &Path, result: &Result<Outcome, GetError>) {
    let now = SystemTime::now();
    let now_s = token::unix_seconds(now);
    let mut m = crate::metrics::GetMetrics::load_or_default(path);
    let uid = nix::unistd::geteuid();
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
    if let Err(e) = m.write(path) {
        log::warn!("{e}");
    }
}

/// The refresh itself. `now` is read once per check so tests and logs agree.
fn refresh(args: &GetArgs) -> Result<Outcome, GetError> {
    if args.condor {
        return condor(args);
    }
    let uid = nix::unistd::geteuid().as_raw();
    let env = crate::files::discovery::process_env;
    if args.vaulttokenminttl >= args.vaulttokenttl {
        return Err(GetError::BadOptions(format!(
            "--vaulttokenminttl ({} s) must be less than --vaulttokenttl ({} s)",
            args.vaulttokenminttl.as_secs(),
            args.vaulttokenttl.as_secs()
        )));
    }
    let keytab = plan::keytab_path(args, env).ok_or(GetError::NoKeytab)?;
    let outfile = plan::outfile(args, env, uid);
    let (dir, name) = SafeDir::open_parent(&outfile)?;

    if !args.oidc
        && let Existing::Fresh(outcome) =
            check_existing(&dir, &name, &outfile, args.minsecs, SystemTime::now(), true)?
    {
        return Ok(outcome);
    }
    let lock_wait = args.retry_time + args.request_timeout * 3 + Duration::from_secs(10);
    let _lock = LockFile::acquire(&dir, &name, Some(uid), lock_wait)?;
    let cause = match check_existing(
        &dir,
        &name,
        &outfile,
        args.minsecs,
        SystemTime::now(),
        false,
    )? {
        Existing::Fresh(_) if args.oidc => "oidc",
        Existing::Fresh(outcome) => {
            log::info!("another run refreshed the token meanwhile");
            return Ok(outcome);
        }
        Existing::Stale(cause) => cause,
    };

    let source = keytab_source(args, &keytab)?;
    let principal = source.principal().unwrap_or_default().to_owned();
    let plan = plan::plan(args, &principal, uid).map_err(AuthError::from)?;
    // Before any thread exists: the HTTP client starts one.
    let client = client_for(args, &plan)?;

    let (bearer, logged_in) = if args.oidc {
        bootstrap(&client, &plan, args, uid, "--oidc was given".into())?
    } else {
        match obtain(&client, &plan, &source, uid, args.minsecs) {
            Err(e) if e.is_not_found() => {
                if args.nooidc {
                    return Err(e);
                }
                bootstrap(&client, &plan, args, uid, e.to_string())?
            }
            other => other?,
        }
    };
    dir.write_atomic(
        &name,
        &bearer.file_contents(),
        WriteOptions::user_file(0o600, uid),
    )?;
    let now = SystemTime::now();
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

/// `get --condor`: igwn-robot-get's config check, then the storer for `<issuer>` with the keytab.
fn condor(args: &GetArgs) -> Result<Outcome, GetError> {
    let uid = nix::unistd::geteuid().as_raw();
    let env = crate::files::discovery::process_env;
    let keytab = plan::keytab_path(args, env).ok_or(GetError::NoKeytab)?;
    let source = keytab_source(args, &keytab)?;
    let principal = source.principal().unwrap_or_default().to_owned();
    let p = plan::plan(args, &principal, uid).map_err(AuthError::from)?;
    let wanted = plan::condor_options(&p.credkey, &p.names.role, &args.vaultserver);
    let home = env("HOME").map(PathBuf::from).unwrap_or_default();
    let user_config = crate::store::condor::config_val("USER_CONFIG_FILE")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "user_config".into());
    let config = home.join(".condor").join(user_config);
    let found = crate::store::condor::config_val("SEC_CREDENTIAL_GETTOKEN_OPTS");
    let words = found
        .as_deref()
        .map(crate::store::request::shell_words)
        .transpose()
        .map_err(GetError::CondorConfig)?
        .unwrap_or_default();
    plan::condor_config_check(found.as_deref(), &words, &wanted, &config, config.exists())
        .map_err(GetError::CondorConfig)?;
    log::info!("Condor user_config matches current options");
    let mut ctx = crate::store::Context::from_env(
        Some(keytab),
        None,
        true,
        // The storer's --restore-before default.
        Duration::from_secs(7 * 86400),
        args.web_open_command.clone(),
        args.oidc_timeout,
        "robot-credmon get --condor".into(),
    )?;
    ctx.principal = Some(principal);
    ctx.mode = Some("vault".into());
    ctx.cafile = args.cafile.clone();
    ctx.capath = args.capath.clone();
    ctx.interactive = ctx.interactive && !args.nooidc;
    let req = crate::store::request::parse_request(&args.issuer).map_err(GetError::CondorConfig)?;
    crate::store::store_request(&ctx, &req)?;
    Ok(Outcome::Stored {
        service: args.issuer.clone(),
    })
}

/// What the token file holds now.
enum Existing {
    /// A token with more than `--minsecs` left: nothing to do.
    Fresh(Outcome),
    /// Needs a new token; why (`missing`, `expiring`, `invalid`).
    Stale(&'static str),
}

/// The fast path: is the existing token good for more than `minsecs`?
fn check_existing(
    dir: &SafeDir,
    name: &str,
    path: &Path,
    minsecs: u64,
    now: SystemTime,
    first_look: bool,
) -> Result<Existing, GetError> {
    let Some((bytes, _)) = dir.read(name, MAX_TOKEN_BYTES + 2, false)? else {
        if first_look {
            log::info!("no bearer token in {} yet", path.display());
        }
        return Ok(Existing::Stale("missing"));
    };
    let tok = match BearerToken::from_bytes(&bytes) {
        Ok(t) => t,
        Err(token::TokenError::Empty) => return Ok(Existing::Stale("missing")),
        Err(e) => {
            if first_look {
                log::warn!(
                    "{} does not hold a valid token ({e}); it will be replaced",
                    path.display()
                );
            }
            return Ok(Existing::Stale("invalid"));
        }
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
    Ok(Existing::Stale("expiring"))
}

/// The keytab as a credential source, with `--principal` and `--ccache`.
fn keytab_source(args: &GetArgs, keytab: &Path) -> Result<CredentialSource, AuthError> {
    Ok(CredentialSource::keytab(
        keytab,
        args.principal.as_deref(),
        args.ccache.clone(),
        false,
    )?)
}

fn client_for(args: &GetArgs, plan: &Plan) -> Result<VaultClient, GetError> {
    let limits = Limits {
        retry_budget: args.retry_time,
        request_timeout: args.request_timeout,
        ..Limits::default()
    };
    let trust = Trust::Files(args.cafile.clone(), args.capath.clone());
    auth::client(plan.server.clone(), plan.certname.clone(), trust, limits)
        .map_err(|e| AuthError::from(e).into())
}

/// Gets a bearer token: saved Vault token first, Kerberos login otherwise.
fn obtain(
    client: &VaultClient,
    plan: &Plan,
    source: &CredentialSource,
    uid: u32,
    minsecs: u64,
) -> Result<(BearerToken, bool), GetError> {
    if let Some(saved) = auth::read_saved(&plan.vault_token_file) {
        match try_saved_token(client, plan, &saved, minsecs)? {
            Some(bearer) => return Ok((bearer, false)),
            None => log::info!(
                "logging in to {} with Kerberos as {}",
                client.server(),
                plan.principal
            ),
        }
    }
    let target = LoginTarget {
        names: &plan.names,
        service_host: &plan.service_host,
        ttl: plan.vault_token_ttl,
    };
    let session = auth::login(client, source, &target)?;
    let bearer = read_bearer(client, plan, &session.token, minsecs, true)?;
    auth::save(&plan.vault_token_file, &session.token, uid)?;
    log::info!(
        "saved the Vault token in {}",
        plan.vault_token_file.display()
    );
    Ok((bearer, true))
}

/// The interactive first-time login (OIDC through Vault), on a terminal only.
fn bootstrap(
    client: &VaultClient,
    plan: &Plan,
    args: &GetArgs,
    uid: u32,
    why: String,
) -> Result<(BearerToken, bool), GetError> {
    let env = crate::files::discovery::process_env;
    if !oidc::process_is_interactive() || args.nooidc {
        let command = std::env::args()
            .map(|a| plan::shell_quote(&a))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(AuthError::from(oidc::OidcError::NoTerminal { why, command }).into());
    }
    eprintln!(
        "Vault has no usable credential for credkey '{}' yet; log in through the web browser once",
        plan.credkey
    );
    let settings = oidc::OidcSettings {
        issuer: plan.names.issuer.clone(),
        role: plan.names.role.clone(),
        redirect_host: format!("{}:{}", plan.service_host, plan.server.port),
        web_open_command: oidc::web_open_command(
            args.web_open_command.as_deref(),
            env("SSH_CLIENT").as_deref(),
        ),
        timeout: args.oidc_timeout,
    };
    let home = env("HOME").map(PathBuf::from).unwrap_or_default();
    let boot = auth::Bootstrap {
        names: &plan.names,
        credkey: Some(&plan.credkey),
        save_credkey_in: args.credkey.is_none().then_some(home.as_path()),
        ttl: plan.vault_token_ttl,
    };
    let (session, _) = auth::oidc_bootstrap(client, &settings, &boot)?;
    let bearer = read_bearer(client, plan, &session.token, args.minsecs, true)?;
    auth::save(&plan.vault_token_file, &session.token, uid)?;
    eprintln!("Stored the refresh token in Vault; from now on the keytab is enough");
    Ok((bearer, true))
}

/// Uses the saved Vault token; `None` when it is too old or Vault refuses it.
fn try_saved_token(
    client: &VaultClient,
    plan: &Plan,
    saved: &VaultToken,
    minsecs: u64,
) -> Result<Option<BearerToken>, GetError> {
    match auth::reuse(client, saved, plan.vault_token_min_ttl)? {
        Ok(0) => {}
        Ok(ttl) => log::info!(
            "the saved Vault token is valid for {}",
            token::format_remaining(i64::try_from(ttl).unwrap_or(i64::MAX))
        ),
        Err(why) => {
            log::info!("{why}");
            return Ok(None);
        }
    }
    match read_bearer(client, plan, saved, minsecs, false) {
        Ok(b) => Ok(Some(b)),
        Err(GetError::Auth(AuthError::Vault { error, .. })) if error.is_permission_denied() => {
            log::info!("Vault refused the saved token ({error})");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn read_bearer(
    client: &VaultClient,
    plan: &Plan,
    vt: &VaultToken,
    minsecs: u64,
    fresh_login: bool,
) -> Result<BearerToken, GetError> {
    match client.read_bearer(vt, &plan.secret_path, &plan.query) {
        Ok(b) => Ok(b),
        Err(e)
            if e.status() == Some(400)
                && e.errors().iter().any(|m| m == "token expired")
                && minsecs > 60 =>
        {
            log::warn!(
                "the issuer's tokens live less than --minsecs {minsecs}; asking for one with at least 60 s instead (use a smaller --minsecs)"
            );
            let mut query = plan.query.clone();
            query[0].1 = "60".into();
            client
                .read_bearer(vt, &plan.secret_path, &query)
                .map_err(|e| read_err(e, plan, fresh_login))
        }
        Err(e) => Err(read_err(e, plan, fresh_login)),
    }
}

fn read_err(e: VaultError, plan: &Plan, fresh_login: bool) -> GetError {
    let hint = match e.status() {
        Some(404) => Some(format!(
            "Vault holds no credential for credkey '{}' of issuer '{}' and role '{}': the first token needs a person; run 'htgettoken -a {} -i {} -r {} --credkey {}' interactively once",
            plan.credkey,
            plan.names.issuer,
            plan.names.role,
            plan.server.host,
            plan.names.issuer,
            plan.names.role,
            plan.credkey
        )),
        Some(400) if e.errors().iter().any(|m| m.contains("refresh failed")) => Some(format!(
            "the issuer refused to refresh the stored credential (refresh token expired or revoked): the owner must run 'htgettoken -a {} -i {} -r {} --credkey {}' interactively",
            plan.server.host, plan.names.issuer, plan.names.role, plan.credkey
        )),
        Some(403) if fresh_login => Some(format!(
            "the Kerberos identity may not read {}: check --credkey '{}' and --role '{}'",
            plan.secret_path, plan.credkey, plan.names.role
        )),
        Some(429) => Some("Vault's rate limit was hit; run less often".into()),
        _ => None,
    };
    AuthError::vault(e, hint).into()
}

fn log_claims(tok: &BearerToken, now: SystemTime) {
    if log::log_enabled!(log::Level::Debug) {
        for (k, v) in token::describe_claims(tok, now) {
            log::debug!("  {k:<5} {v}");
        }
    }
}
