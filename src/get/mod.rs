//! `robot-credmon get` (also `igwn-robot-get`): keytab -> Vault -> bearer
//! token file. Does nothing, without touching the network, while the existing
//! token has more than `--minsecs` left; otherwise refreshes under a lock,
//! reusing the saved Vault token when it is still good and logging in with
//! Kerberos when it is not.

pub mod plan;

use crate::cli::GetArgs;
use crate::files::{self, FileError, LockFile, SafeDir, WriteOptions};
use crate::kerberos::{self, Initiator, KrbError};
use crate::token::{self, BearerToken, MAX_TOKEN_BYTES, accept};
use crate::vault::{ClientConfig, Limits, LoginError, VaultClient, VaultError, VaultToken, tls};
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
    /// A Kerberos problem.
    #[error(transparent)]
    Kerberos(#[from] KrbError),
    /// A Vault problem, with advice.
    #[error("{error}{}", hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Vault {
        /// What Vault said.
        error: Box<VaultError>,
        /// What to do about it.
        hint: Option<String>,
    },
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
    /// The OIDC login failed or needs a terminal.
    #[error(transparent)]
    Oidc(#[from] crate::oidc::OidcError),
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
        matches!(self, GetError::Vault { error, .. } if error.status() == Some(404))
    }

    /// A short label for metrics: `kerberos`, `vault`, `file` or `config`.
    pub fn cause(&self) -> &'static str {
        match self {
            GetError::Kerberos(_) => "kerberos",
            GetError::Vault { .. } => "vault",
            GetError::File(_) | GetError::NotAToken { .. } => "file",
            GetError::UnusableToken { .. } => "token",
            GetError::NoKeytab
            | GetError::Unsupported(_)
            | GetError::BadOptions(_)
            | GetError::CondorConfig(_) => "config",
            GetError::Store(_) => "condor",
            GetError::Oidc(_) => "oidc",
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
    remove_leftovers(&dir, &name, uid);
    let (cause, current_exp) = match check_existing(
        &dir,
        &name,
        &outfile,
        args.minsecs,
        SystemTime::now(),
        false,
    )? {
        Existing::Fresh(Outcome::StillValid { remaining, .. }) if args.oidc => (
            "oidc",
            remaining.checked_add(token::unix_seconds(SystemTime::now())),
        ),
        Existing::Fresh(_) if args.oidc => ("oidc", None),
        Existing::Fresh(outcome) => {
            log::info!("another run refreshed the token meanwhile");
            return Ok(outcome);
        }
        Existing::Stale(cause, exp) => (cause, exp),
    };

    kerberos::check_keytab(&keytab)?;
    let principal = kerberos::choose_principal(&keytab, args.principal.as_deref())?;
    let plan = plan::plan(args, &principal, keytab, uid).map_err(vault_err)?;
    // Before any thread exists: the HTTP client starts one.
    let _profile = kerberos::disable_reverse_dns()?;
    let client = client_for(args, &plan)?;

    let (bearer, logged_in) = if args.oidc {
        bootstrap(&client, &plan, args, uid, "--oidc was given".into())?
    } else {
        match obtain(&client, &plan, uid, args.minsecs) {
            Err(e @ GetError::Vault { .. }) if e.is_not_found() => {
                if args.nooidc {
                    return Err(e);
                }
                bootstrap(&client, &plan, args, uid, e.to_string())?
            }
            other => other?,
        }
    };
    let now = SystemTime::now();
    match accept::decide(
        bearer.claims(),
        current_exp,
        token::unix_seconds(now),
        args.minsecs,
    ) {
        accept::Decision::Replace(warning) => {
            if let Some(w) = warning {
                log::warn!("{w}");
            }
        }
        accept::Decision::KeepCurrent(why) => {
            log::warn!("{why}");
            return Ok(Outcome::StillValid {
                path: outfile,
                remaining: current_exp
                    .and_then(|e| e.checked_sub(token::unix_seconds(now)))
                    .unwrap_or(0),
            });
        }
        accept::Decision::Reject(why) => {
            return Err(GetError::UnusableToken {
                server: client.server(),
                why,
                path: outfile,
            });
        }
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

/// `get --condor`: igwn-robot-get's config check, then the storer for `<issuer>` with the keytab.
fn condor(args: &GetArgs) -> Result<Outcome, GetError> {
    let uid = nix::unistd::geteuid().as_raw();
    let env = crate::files::discovery::process_env;
    let keytab = plan::keytab_path(args, env).ok_or(GetError::NoKeytab)?;
    kerberos::check_keytab(&keytab)?;
    let principal = kerberos::choose_principal(&keytab, args.principal.as_deref())?;
    let p = plan::plan(args, &principal, keytab.clone(), uid).map_err(vault_err)?;
    let wanted = plan::condor_options(&p.credkey, &p.role, &args.vaultserver);
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
        crate::cli::parse_duration("7d").unwrap_or(Duration::from_secs(7 * 86400)),
        args.web_open_command.clone(),
        args.oidc_timeout,
        "robot-credmon get --condor".into(),
    )?;
    ctx.principal = Some(principal);
    ctx.cafile = args.cafile.clone();
    ctx.capath = args.capath.clone();
    ctx.interactive = ctx.interactive && !args.nooidc;
    let _profile = kerberos::disable_reverse_dns()?;
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
    /// Needs a new token; why (`missing`, `expiring`, `invalid`), and the
    /// `exp` of the token in place, if any.
    Stale(&'static str, Option<i64>),
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
    let uid = nix::unistd::geteuid().as_raw();
    let Some((bytes, _)) = dir.read_trusted(name, MAX_TOKEN_BYTES + 2, uid)? else {
        if first_look {
            log::info!("no bearer token in {} yet", path.display());
        }
        return Ok(Existing::Stale("missing", None));
    };
    let tok = match BearerToken::from_bytes(&bytes) {
        Ok(t) => t,
        Err(token::TokenError::Empty) => return Ok(Existing::Stale("missing", None)),
        Err(e) => {
            if first_look {
                log::warn!(
                    "{} does not hold a valid token ({e}); it will be replaced",
                    path.display()
                );
            }
            return Ok(Existing::Stale("invalid", None));
        }
    };
    let remaining = tok.remaining(now).unwrap_or(i64::MIN);
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
        return Ok(Existing::Stale("invalid", None));
    }
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

fn client_for(args: &GetArgs, plan: &Plan) -> Result<VaultClient, GetError> {
    let tls =
        tls::client_config_for(args.cafile.clone(), args.capath.clone()).map_err(vault_err)?;
    Ok(VaultClient::new(ClientConfig {
        server: plan.server.clone(),
        certname: plan.certname.clone(),
        tls,
        limits: Limits {
            retry_budget: args.retry_time,
            request_timeout: args.request_timeout,
            ..Limits::default()
        },
    }))
}

/// Gets a bearer token: saved Vault token first, Kerberos login otherwise.
fn obtain(
    client: &VaultClient,
    plan: &Plan,
    uid: u32,
    minsecs: u64,
) -> Result<(BearerToken, bool), GetError> {
    if let Some(saved) = read_vault_token(&plan.vault_token_file)? {
        match try_saved_token(client, plan, &saved, minsecs)? {
            Some(bearer) => return Ok((bearer, false)),
            None => log::info!(
                "logging in to {} with Kerberos as {}",
                client.server(),
                plan.principal
            ),
        }
    }
    let token = login(client, plan)?;
    let bearer = read_bearer(client, plan, &token, minsecs, true)?;
    save_vault_token(&plan.vault_token_file, &token, uid);
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
    use crate::oidc;
    let env = crate::files::discovery::process_env;
    if !oidc::process_is_interactive() || args.nooidc {
        let command = std::env::args()
            .map(|a| plan::shell_quote(&a))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(oidc::OidcError::NoTerminal { why, command }.into());
    }
    eprintln!(
        "Vault has no usable credential for credkey '{}' yet; log in through the web browser once",
        plan.credkey
    );
    let settings = oidc::OidcSettings {
        issuer: plan.issuer.clone(),
        role: plan.role.clone(),
        redirect_host: format!("{}:{}", plan.service_host, plan.server.port),
        web_open_command: oidc::web_open_command(
            args.web_open_command.as_deref(),
            env("SSH_CLIENT").as_deref(),
        ),
        timeout: args.oidc_timeout,
    };
    let login = oidc::login(client, &settings)?;
    if args.credkey.is_none()
        && let Some(ck) = &login.credkey
    {
        let home = env("HOME").map(PathBuf::from).unwrap_or_default();
        oidc::save_credkey(&home, &plan.issuer, &plan.role, ck)?;
    }
    oidc::store_refresh_token(client, &login, &plan.issuer, &plan.credkey, &plan.role)?;
    let token = oidc::vault_token(client, &login, plan.vault_token_ttl)?;
    let bearer = read_bearer(client, plan, &token, args.minsecs, true)?;
    save_vault_token(&plan.vault_token_file, &token, uid);
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
    if !plan.vault_token_min_ttl.is_zero() {
        match client.lookup_self_ttl(saved) {
            Ok(ttl) if plan::vault_token_usable(ttl, plan.vault_token_min_ttl) => {
                log::info!(
                    "the saved Vault token is valid for {}",
                    token::format_remaining(ttl as i64)
                );
            }
            Ok(ttl) => {
                log::info!(
                    "the saved Vault token has {} left, under --vaulttokenminttl",
                    token::format_remaining(ttl as i64)
                );
                return Ok(None);
            }
            Err(e) if e.is_transient() => return Err(vault_err(e)),
            Err(e) => {
                log::info!("the saved Vault token is no longer accepted ({e})");
                return Ok(None);
            }
        }
    }
    match read_bearer(client, plan, saved, minsecs, false) {
        Ok(b) => Ok(Some(b)),
        Err(GetError::Vault { error, .. }) if error.is_permission_denied() => {
            log::info!("Vault refused the saved token ({error})");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Kerberos login plus, for long leases, the exchange for a shorter token.
fn login(client: &VaultClient, plan: &Plan) -> Result<VaultToken, GetError> {
    let initiator = Initiator::from_keytab(&plan.keytab, &plan.principal, plan.ccache.as_deref())?;
    let auth = client
        .login_kerberos(&plan.mount, &mut || {
            initiator.negotiate_header(&plan.service_host)
        })
        .map_err(|e| match e {
            LoginError::Kerberos(k) => GetError::Kerberos(k),
            LoginError::Vault(v) => {
                let hint = login_hint(&v, plan);
                GetError::Vault {
                    error: Box::new(v),
                    hint,
                }
            }
        })?;
    log::info!(
        "Kerberos login to {} at auth/{} succeeded",
        client.server(),
        plan.mount
    );
    if !plan::needs_exchange(auth.lease_duration, plan.vault_token_ttl) {
        return Ok(auth.token);
    }
    let child = client
        .create_token(&auth.token, plan.vault_token_ttl.as_secs())
        .map_err(vault_err)?;
    Ok(child.token)
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
            log::info!(
                "the issuer's tokens live less than --minsecs {minsecs}; asking for one with at least 60 s instead"
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
            plan.issuer,
            plan.role,
            plan.server.host,
            plan.issuer,
            plan.role,
            plan.credkey
        )),
        Some(400) if e.errors().iter().any(|m| m.contains("refresh failed")) => Some(format!(
            "the issuer refused to refresh the stored credential (refresh token expired or revoked): the owner must run 'htgettoken -a {} -i {} -r {} --credkey {}' interactively",
            plan.server.host, plan.issuer, plan.role, plan.credkey
        )),
        Some(403) if fresh_login => Some(format!(
            "the Kerberos identity may not read {}: check --credkey '{}' and --role '{}'",
            plan.secret_path, plan.credkey, plan.role
        )),
        Some(429) => Some("Vault's rate limit was hit; run less often".into()),
        _ => None,
    };
    GetError::Vault {
        error: Box::new(e),
        hint,
    }
}

fn login_hint(e: &VaultError, plan: &Plan) -> Option<String> {
    match e.status() {
        Some(401) if e.errors().is_empty() => Some(format!(
            "Vault rejected the Kerberos login of '{}': check that the server's keytab holds host/{} (use --vaultalias for a cluster name), that this host's clock is within 5 minutes of Vault's, that the keytab's principal is the one Vault expects, and (on the server) decode_pac=false for MIT KDCs >= 1.20",
            plan.principal, plan.service_host
        )),
        Some(403) => Some(format!(
            "there is no Kerberos login at auth/{}: check --issuer '{}' and --role '{}'",
            plan.mount, plan.issuer, plan.role
        )),
        _ => None,
    }
}

fn vault_err(error: VaultError) -> GetError {
    GetError::Vault {
        error: Box::new(error),
        hint: None,
    }
}

/// The saved Vault token, when its file passes the trust rule; a planted or
/// unreadable file is ignored with a warning and never sent anywhere.
fn read_vault_token(path: &Path) -> Result<Option<VaultToken>, GetError> {
    let uid = nix::unistd::geteuid().as_raw();
    match files::read_trusted(path, 8192, uid) {
        Ok(Some(bytes)) => Ok(std::str::from_utf8(&bytes).ok().and_then(VaultToken::new)),
        Ok(None) => Ok(None),
        Err(e) => {
            log::warn!("ignoring the saved Vault token: {e}");
            Ok(None)
        }
    }
}

/// Saves the Vault token for the next run. The bearer token comes first: a
/// failure here is a warning (the next run logs in again), never an error.
fn save_vault_token(path: &Path, token: &VaultToken, uid: u32) {
    let mut contents = zeroize::Zeroizing::new(token.expose().as_bytes().to_vec());
    contents.push(b'\n');
    let saved = SafeDir::open_parent(path).and_then(|(dir, name)| {
        remove_leftovers(&dir, &name, uid);
        dir.write_atomic(&name, &contents, WriteOptions::user_file(0o600, uid))
    });
    match saved {
        Ok(()) => log::info!("saved the Vault token in {}", path.display()),
        Err(e) => log::warn!("cannot save the Vault token, the next run will log in again: {e}"),
    }
}

/// Removes temporary files of `name` that a killed earlier run left (best effort).
fn remove_leftovers(dir: &SafeDir, name: &str, uid: u32) {
    if let Err(e) = dir.remove_stale_temps_of(name, uid) {
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
