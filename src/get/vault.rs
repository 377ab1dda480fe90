//! The Vault side of `get`: the client, the saved Vault token or a Kerberos
//! login, the first-time OIDC login, and the bearer token read with its hints.

use super::GetError;
use super::plan::{self, Plan};
use crate::cli::GetArgs;
use crate::env::Env;
use crate::status::login::VaultCredential;
use crate::token::{self, BearerToken};
use crate::vault::auth::{self, AuthError, CredentialSource, LoginTarget, Trust, oidc};
use crate::vault::{Limits, VaultClient, VaultError, VaultToken};
use std::path::{Path, PathBuf};

/// The keytab as a credential source, with `--principal` and `--ccache`.
pub(super) fn keytab_source(args: &GetArgs, keytab: &Path) -> Result<CredentialSource, AuthError> {
    Ok(CredentialSource::keytab(
        keytab,
        args.principal.as_deref(),
        args.ccache.clone(),
        false,
    )?)
}

fn client_for(args: &GetArgs, plan: &Plan, env: &Env) -> Result<VaultClient, GetError> {
    let limits = Limits {
        retry_budget: args.retry_time,
        request_timeout: args.request_timeout,
        ..Limits::default()
    };
    let trust = Trust::Files(args.cafile.clone(), args.capath.clone());
    auth::client(
        plan.server.clone(),
        plan.certname.clone(),
        trust,
        limits,
        env,
    )
    .map_err(|e| AuthError::from(e).into())
}

/// Everything Vault for one run: the credential source, the plan, the client
/// (before any other thread: the client starts one) and a bearer token, with
/// whether a login was needed.
pub(super) fn bearer_from_vault(
    args: &GetArgs,
    env: &Env,
    keytab: &Path,
) -> Result<(VaultClient, BearerToken, bool), GetError> {
    let source = keytab_source(args, keytab)?;
    let principal = source.principal().unwrap_or_default().to_owned();
    let plan = plan::plan(args, &principal, env.euid()).map_err(AuthError::from)?;
    let client = client_for(args, &plan, env)?;
    let (bearer, logged_in) = fetch(&client, &plan, &source, args, env)?;
    Ok((client, bearer, logged_in))
}

/// The bearer token and whether we logged in: the OIDC login when `--oidc`
/// is given, else the saved Vault token or a Kerberos login, and the OIDC
/// login when Vault has no credential yet (unless `--nooidc`).
fn fetch(
    client: &VaultClient,
    plan: &Plan,
    source: &CredentialSource,
    args: &GetArgs,
    env: &Env,
) -> Result<(BearerToken, bool), GetError> {
    if args.oidc {
        return bootstrap(
            client,
            plan,
            args,
            env,
            "--oidc was given, but there is no terminal".into(),
        );
    }
    match obtain(client, plan, source, env.euid(), args.minsecs) {
        Err(GetError::NeedsLogin { why, .. }) if !args.nooidc => {
            bootstrap(client, plan, args, env, why)
        }
        other => other,
    }
}

/// Gets a bearer token: saved Vault token first, Kerberos login otherwise.
fn obtain(
    client: &VaultClient,
    plan: &Plan,
    source: &CredentialSource,
    uid: u32,
    minsecs: u64,
) -> Result<(BearerToken, bool), GetError> {
    if let Some(saved) = auth::read_saved(&plan.vault_token_file, uid) {
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
    // The bearer token comes first: an unsaved Vault token is only a warning.
    auth::save(
        &plan.vault_token_file,
        &session.token,
        uid,
        client.clock().now(),
    );
    Ok((bearer, true))
}

/// The interactive first-time login (OIDC through Vault), on a terminal only.
fn bootstrap(
    client: &VaultClient,
    plan: &Plan,
    args: &GetArgs,
    env: &Env,
    why: String,
) -> Result<(BearerToken, bool), GetError> {
    let uid = env.euid();
    if !oidc::process_is_interactive() || args.nooidc {
        // `run` adds the command to type.
        return Err(GetError::NeedsLogin {
            why,
            command: String::new(),
        });
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
            env.var("SSH_CLIENT").as_deref(),
        ),
        timeout: args.oidc_timeout,
        path_var: env.path_var(),
    };
    let home = env.var("HOME").map(PathBuf::from).unwrap_or_default();
    let boot = auth::Bootstrap {
        names: &plan.names,
        credkey: Some(&plan.credkey),
        save_credkey_in: args.credkey.is_none().then_some(home.as_path()),
        uid,
        ttl: plan.vault_token_ttl,
    };
    let (session, _) = auth::oidc_bootstrap(client, &settings, &boot)?;
    let bearer = read_bearer(client, plan, &session.token, args.minsecs, true)?;
    auth::save(&plan.vault_token_file, &session.token, uid, env.now());
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
    if let Some(what) = e.login_needed() {
        let target = VaultCredential::new(
            &plan.server.host,
            plan.server.port,
            &plan.names.issuer,
            &plan.credkey,
            &plan.names.role,
        );
        return GetError::NeedsLogin {
            why: target.why(what),
            command: String::new(),
        };
    }
    let hint = match e.status() {
        Some(403) if fresh_login => Some(format!(
            "the Kerberos identity may not read {}: check --credkey '{}' and --role '{}'",
            plan.secret_path, plan.credkey, plan.names.role
        )),
        Some(429) => Some("Vault's rate limit was hit; run less often".into()),
        _ => None,
    };
    AuthError::vault(e, hint).into()
}
