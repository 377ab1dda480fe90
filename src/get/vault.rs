//! The Vault side of `get`: the cron role's session policy (saved Vault
//! token checked with `lookup-self`, the keytab's Kerberos login, a person's
//! OIDC login on a terminal unless `--nooidc`), run by the one fallback
//! chain in [`auth::SessionPolicy`].

use super::GetError;
use super::plan::{self, Plan};
use crate::cli::GetArgs;
use crate::env::Env;
use crate::token::BearerToken;
use crate::vault::auth::{self, AuthError, CredentialSource, Login, Oidc, Person, oidc};
use crate::vault::{Api, Connector, Limits, Trust};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The keytab as a credential source, with `--principal` and `--ccache`.
pub(super) fn keytab_source(args: &GetArgs, keytab: &Path) -> Result<CredentialSource, AuthError> {
    Ok(CredentialSource::keytab(
        keytab,
        args.principal.as_deref(),
        args.ccache.clone(),
        false,
    )?)
}

fn api_for(
    args: &GetArgs,
    plan: &Plan,
    connector: &dyn Connector,
) -> Result<Arc<dyn Api>, GetError> {
    let limits = Limits {
        retry_budget: args.retry_time,
        request_timeout: args.request_timeout,
        ..Limits::default()
    };
    let trust = Trust::Files(args.cafile.clone(), args.capath.clone());
    connector
        .connect(&plan.server, plan.certname.as_deref(), &trust, &limits)
        .map_err(|e| AuthError::from(e).into())
}

/// Everything Vault for one run: the credential source, the plan, the API
/// and a bearer token, with whether a login was needed.
pub(super) fn bearer_from_vault(
    args: &GetArgs,
    env: &Env,
    keytab: &Path,
    connector: &dyn Connector,
) -> Result<(Arc<dyn Api>, BearerToken, bool), GetError> {
    let source = keytab_source(args, keytab)?;
    let principal = source.principal().unwrap_or_default().to_owned();
    let plan = plan::plan(args, &principal, env.euid()).map_err(AuthError::from)?;
    let api = api_for(args, &plan, connector)?;
    let want = auth::Want {
        names: &plan.names,
        credkey: Some(&plan.credkey),
        path: Some(&plan.secret_path),
        exchange: args.scopes.is_some() || args.audience.is_some(),
        query: &plan.query,
        service_host: &plan.service_host,
        server_host: &plan.server.host,
        server_port: plan.server.port,
    };
    let home = env.var("HOME").map(PathBuf::from).unwrap_or_default();
    let policy = auth::SessionPolicy {
        reuse_min_ttl: plan.vault_token_min_ttl,
        login: Login::With(&source),
        ttl: plan.vault_token_ttl,
        shorten_minimum: true,
        oidc: oidc_policy(args, &plan, env, &home),
    };
    let saved = (!args.oidc)
        .then(|| auth::read_saved(&plan.vault_token_file, env.euid()))
        .flatten();
    let obtained = policy.obtain(&*api, &want, saved.as_ref());
    let bearer = obtained.bearer.map_err(needs_person)?;
    // A new Vault token is saved only once it has read a bearer token; a
    // failure to save it is a warning (the next run logs in again).
    if let Some(session) = &obtained.fresh {
        auth::save(
            &plan.vault_token_file,
            &session.token,
            env.euid(),
            env.now(),
        );
    }
    Ok((api, bearer, obtained.fresh.is_some()))
}

/// What only a person can fix, as [`GetError::NeedsLogin`] (exit 4; `run`
/// adds this command, with `--oidc`): Vault holds no credential or refused
/// its refresh token, or the OIDC login it needs has no terminal.
fn needs_person(e: AuthError) -> GetError {
    let why = match e {
        AuthError::Oidc(oidc::OidcError::NoTerminal { why, .. }) => why,
        e => match e.needs_login() {
            Some(why) => why,
            None => return e.into(),
        },
    };
    GetError::NeedsLogin {
        why,
        command: String::new(),
    }
}

/// A person's OIDC login on a terminal, unless `--nooidc`; first with `--oidc`.
fn oidc_policy<'a>(args: &GetArgs, plan: &Plan, env: &Env, home: &'a Path) -> Oidc<'a> {
    if args.nooidc {
        return Oidc::Never;
    }
    let command = env
        .args()
        .iter()
        .map(|a| plan::shell_quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ");
    Oidc::Person(Box::new(Person {
        interactive: oidc::process_is_interactive(),
        settings: oidc::OidcSettings {
            issuer: plan.names.issuer.clone(),
            role: plan.names.role.clone(),
            redirect_host: format!("{}:{}", plan.service_host, plan.server.port),
            web_open_command: oidc::web_open_command(
                args.web_open_command.as_deref(),
                env.var("SSH_CLIENT").as_deref(),
            ),
            timeout: args.oidc_timeout,
            path_var: env.path_var(),
            clock: env.clock().clone(),
        },
        command,
        save_credkey_in: args.credkey.is_none().then_some(home),
        uid: env.euid(),
        after_login_failure: false,
        first: args
            .oidc
            .then(|| "--oidc was given, but there is no terminal".to_owned()),
        say: |m| eprintln!("{m}"),
    }))
}
