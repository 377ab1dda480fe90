//! The one fallback chain of every role, with one set of hints: a saved
//! Vault token (checked with `lookup-self` when the role asks) → on "permission
//! denied", a new Kerberos login (keytab or ticket cache) → when Vault holds no
//! credential, the OIDC login of a person, when the role allows one. `get`,
//! the storer and the credmon each describe what they allow in a
//! [`SessionPolicy`] and call [`SessionPolicy::obtain`]; they keep a new
//! Vault token their own way ([`Obtained::fresh`]).

use super::oidc::{OidcError, OidcSettings};
use super::{
    AuthError, Bootstrap, CredentialSource, LoginTarget, Names, Session, login, oidc_bootstrap,
    reuse,
};
use crate::status::login::VaultCredential;
use crate::token::{self, BearerToken};
use crate::vault::{Api, VaultError, VaultToken};
use std::path::Path;
use std::time::Duration;

/// The credential a role wants a bearer token of.
#[derive(Debug, Clone)]
pub struct Want<'a> {
    /// Issuer and role (the Kerberos mount and the secret path).
    pub names: &'a Names,
    /// The credkey, when known (`None`: only an OIDC login can tell it).
    pub credkey: Option<&'a str>,
    /// The exact secret path, when the role has one (the credmon's
    /// `vault_url`); otherwise it follows from the names and the credkey.
    pub path: Option<&'a str>,
    /// A token exchange (`sts`) rather than `creds`.
    pub exchange: bool,
    /// Query parameters of the bearer read, `minimum_seconds` first.
    pub query: &'a [(&'static str, String)],
    /// Host of the Kerberos service `host@<this>` (the Vault alias).
    pub service_host: &'a str,
    /// The Vault server's host name and port, for the hints.
    pub server_host: &'a str,
    /// The Vault server's port.
    pub server_port: u16,
}

impl Want<'_> {
    /// The secret path for `credkey`, else the role's own.
    fn path_for(&self, credkey: Option<&str>) -> Option<String> {
        match (self.path, credkey.or(self.credkey)) {
            (Some(p), _) => Some(p.to_owned()),
            (None, Some(ck)) => Some(self.names.secret_path(self.exchange, ck)),
            (None, None) => None,
        }
    }
}

/// Where a new login comes from.
pub enum Login<'a> {
    /// Nowhere: a refused token is final ([`AuthError::Refused`]).
    Never,
    /// This source.
    With(&'a CredentialSource),
    /// A source opened only when a login is needed (the credmon opens a
    /// user's keytab only then); `None` when there is none.
    Lazy(&'a dyn Fn() -> Option<CredentialSource>),
}

/// The first-time login through a browser.
pub enum Oidc<'a> {
    /// Never (the credmon; `--nooidc`): a missing credential is an error with its hint.
    Never,
    /// When a person is at a terminal; otherwise the error tells them to run
    /// the same command on one.
    Person(Box<Person<'a>>),
}

/// What the OIDC login of a person needs.
pub struct Person<'a> {
    /// Whether a person is at a terminal now.
    pub interactive: bool,
    /// The device flow's settings.
    pub settings: OidcSettings,
    /// The command to run on a terminal, for the error without one.
    pub command: String,
    /// Save the login's credkey in htgettoken's file under this home.
    pub save_credkey_in: Option<&'a Path>,
    /// Owner of the files saved (the effective user).
    pub uid: u32,
    /// Also after a failed Kerberos login (a person at condor_submit without a ticket).
    pub after_login_failure: bool,
    /// Before anything else, with this reason (`get --oidc`).
    pub first: Option<String>,
    /// How to tell the person what happens (stderr, the storer's way).
    pub say: fn(&str),
}

/// What a role allows, in the order tried.
pub struct SessionPolicy<'a> {
    /// Use a saved token only with at least this much left (`lookup-self`;
    /// zero: use it as it is).
    pub reuse_min_ttl: Duration,
    /// Where a new login comes from.
    pub login: Login<'a>,
    /// The lifetime of a new Vault token.
    pub ttl: Duration,
    /// When the issuer's tokens live less than `minimum_seconds`, ask for
    /// 60 s instead (the cron role's rule).
    pub shorten_minimum: bool,
    /// The first-time OIDC login.
    pub oidc: Oidc<'a>,
}

/// The step that gave the bearer token, or failed last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The saved Vault token.
    Saved,
    /// A new Kerberos login (the login itself, or the read after it).
    Login,
    /// The OIDC login of a person.
    Oidc,
}

/// The result of [`SessionPolicy::obtain`].
#[derive(Debug)]
pub struct Obtained {
    /// The bearer token, or why there is none.
    pub bearer: Result<BearerToken, AuthError>,
    /// The step that gave it, or failed last.
    pub step: Step,
    /// A new Vault token (Kerberos or OIDC login), also when the read after
    /// it failed; the role keeps it its own way.
    pub fresh: Option<Session>,
    /// The credkey used (an OIDC login may have told it).
    pub credkey: Option<String>,
    /// Vault answered at least one request (a token, or any HTTP status):
    /// the server is up, whatever happened to the credential.
    pub answered: bool,
}

impl Obtained {
    fn failed(step: Step, e: AuthError) -> Self {
        Obtained {
            answered: e.vault_error().is_some_and(|v| v.status().is_some()),
            bearer: Err(e),
            step,
            fresh: None,
            credkey: None,
        }
    }
}

impl SessionPolicy<'_> {
    /// A bearer token of `want`: the saved token, a new login, or a person's
    /// OIDC login, as far as the policy allows.
    pub fn obtain(&self, api: &dyn Api, want: &Want<'_>, saved: Option<&VaultToken>) -> Obtained {
        if let Oidc::Person(p) = &self.oidc
            && let Some(why) = &p.first
        {
            return self.oidc(api, want, p, why.clone());
        }
        let refused = match saved {
            Some(token) => match self.saved(api, want, token) {
                Ok(Ok(bearer)) => {
                    return Obtained {
                        bearer: Ok(bearer),
                        step: Step::Saved,
                        fresh: None,
                        credkey: want.credkey.map(str::to_owned),
                        answered: true,
                    };
                }
                Ok(Err(why)) => Some(why),
                Err(e) if e.needs_login().is_some() => {
                    return self.no_credential(api, want, e, Step::Saved);
                }
                Err(e) => return Obtained::failed(Step::Saved, e),
            },
            None => None,
        };
        let answered_before = refused.is_some();
        let mut obtained = self.login_and_read(api, want, refused);
        obtained.answered |= answered_before;
        obtained
    }

    /// The saved token's bearer token; `None` when it is too old or refused
    /// (errors are Vault's other answers).
    pub fn try_saved(
        &self,
        api: &dyn Api,
        want: &Want<'_>,
        token: &VaultToken,
    ) -> Result<Option<BearerToken>, AuthError> {
        Ok(self.saved(api, want, token)?.ok())
    }

    /// A new Kerberos login and exchange, without a read (the credmon's provisioning).
    pub fn login(&self, api: &dyn Api, want: &Want<'_>) -> Result<Session, AuthError> {
        let opened;
        let source = match &self.login {
            Login::Never => None,
            Login::With(s) => Some(*s),
            Login::Lazy(open) => {
                opened = open();
                opened.as_ref()
            }
        };
        let source = source.ok_or_else(|| AuthError::Refused {
            why: "no Kerberos identity to log in with".into(),
        })?;
        self.login_with(api, want, source)
    }

    fn login_with(
        &self,
        api: &dyn Api,
        want: &Want<'_>,
        source: &CredentialSource,
    ) -> Result<Session, AuthError> {
        log::info!(
            "logging in to {} with Kerberos as {}",
            api.server(),
            source.principal().unwrap_or("the ticket cache's principal")
        );
        let target = LoginTarget {
            names: want.names,
            service_host: want.service_host,
            ttl: self.ttl,
        };
        login(api, source, &target)
    }

    /// `Ok(Ok(bearer))`; `Ok(Err(why))` when the token is too old or refused.
    fn saved(
        &self,
        api: &dyn Api,
        want: &Want<'_>,
        token: &VaultToken,
    ) -> Result<Result<BearerToken, String>, AuthError> {
        match reuse(api, token, self.reuse_min_ttl)? {
            Ok(0) => {}
            Ok(ttl) => log::info!(
                "the saved Vault token is valid for {}",
                token::format_remaining(i64::try_from(ttl).unwrap_or(i64::MAX))
            ),
            Err(why) => {
                log::info!("{why}");
                return Ok(Err(why.to_string()));
            }
        }
        match self.read(api, want, token, None, false) {
            Ok(b) => Ok(Ok(b)),
            Err(AuthError::Vault { error, .. }) if error.is_permission_denied() => {
                log::info!("Vault refused the saved token ({error})");
                Ok(Err(error.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    /// After the saved token (refused for `refused`, or none): a new login and a read.
    fn login_and_read(&self, api: &dyn Api, want: &Want<'_>, refused: Option<String>) -> Obtained {
        if want.credkey.is_none() && want.path.is_none() {
            let why = format!(
                "no credkey is known for issuer '{}' and role '{}' (give --credkey, or log in once through the browser to save it)",
                want.names.issuer, want.names.role
            );
            return self.without_login(api, want, why);
        }
        let session = match self.login(api, want) {
            Ok(s) => s,
            Err(AuthError::Refused { why }) => {
                let why = refused.unwrap_or(why);
                return self.without_login(api, want, why);
            }
            Err(e) => match &self.oidc {
                Oidc::Person(p) if p.after_login_failure => {
                    log::info!("Kerberos login failed: {e}");
                    return self.oidc(api, want, p, e.to_string());
                }
                _ => return Obtained::failed(Step::Login, e),
            },
        };
        match self.read(api, want, &session.token, None, true) {
            Err(e) if e.needs_login().is_some() && matches!(self.oidc, Oidc::Person(_)) => {
                self.no_credential(api, want, e, Step::Login)
            }
            bearer => Obtained {
                bearer,
                step: Step::Login,
                fresh: Some(session),
                credkey: want.credkey.map(str::to_owned),
                answered: true,
            },
        }
    }

    /// No way to log in: a person's OIDC login when allowed, else `Refused`.
    fn without_login(&self, api: &dyn Api, want: &Want<'_>, why: String) -> Obtained {
        match &self.oidc {
            Oidc::Person(p) => self.oidc(api, want, p, why),
            Oidc::Never => Obtained::failed(Step::Login, AuthError::Refused { why }),
        }
    }

    /// Only a person can fix it: their OIDC login when allowed.
    fn no_credential(&self, api: &dyn Api, want: &Want<'_>, e: AuthError, step: Step) -> Obtained {
        match (&self.oidc, e.needs_login()) {
            (Oidc::Person(p), Some(why)) => self.oidc(api, want, p, why),
            _ => Obtained::failed(step, e),
        }
    }

    /// The OIDC login of a person at a terminal (else the error saying so), then the read.
    fn oidc(&self, api: &dyn Api, want: &Want<'_>, p: &Person<'_>, why: String) -> Obtained {
        if !p.interactive {
            let e = OidcError::NoTerminal {
                why,
                command: p.command.clone(),
            };
            return Obtained::failed(Step::Oidc, e.into());
        }
        (p.say)(&format!(
            "Vault has no usable credential for {} yet; log in through the web browser once",
            match want.credkey {
                Some(ck) => format!("credkey '{ck}'"),
                None => format!(
                    "issuer '{}' and role '{}'",
                    want.names.issuer, want.names.role
                ),
            }
        ));
        let boot = Bootstrap {
            names: want.names,
            credkey: want.credkey,
            save_credkey_in: p.save_credkey_in,
            uid: p.uid,
            ttl: self.ttl,
        };
        let (session, credkey) = match oidc_bootstrap(api, &p.settings, &boot) {
            Ok(done) => done,
            Err(e) => return Obtained::failed(Step::Oidc, e),
        };
        let bearer = self.read(api, want, &session.token, Some(&credkey), true);
        if bearer.is_ok() {
            (p.say)("Stored the refresh token in Vault; from now on Kerberos is enough");
        }
        Obtained {
            bearer,
            step: Step::Oidc,
            fresh: Some(session),
            credkey: Some(credkey),
            answered: true,
        }
    }

    /// Reads the bearer token with `token` (`fresh`: from a new login), with
    /// the hints; asks for 60 s when the issuer's tokens live less than the
    /// minimum and the policy says so.
    fn read(
        &self,
        api: &dyn Api,
        want: &Want<'_>,
        token: &VaultToken,
        credkey: Option<&str>,
        fresh: bool,
    ) -> Result<BearerToken, AuthError> {
        let path = want.path_for(credkey).ok_or_else(|| AuthError::Refused {
            why: "no credkey to read a bearer token with".into(),
        })?;
        let minimum = want.query.first().and_then(|(_, v)| v.parse::<u64>().ok());
        match api.read_bearer(token, &path, want.query) {
            Err(e) if self.shorten_minimum && too_short(&e) && minimum.is_some_and(|m| m > 60) => {
                log::info!(
                    "the issuer's tokens live less than the minimum of {} s asked for; asking for one with at least 60 s instead",
                    minimum.unwrap_or_default()
                );
                let mut query = want.query.to_vec();
                query[0].1 = "60".into();
                api.read_bearer(token, &path, &query)
                    .map_err(|e| with_hint(e, want, &path, fresh))
            }
            r => r.map_err(|e| with_hint(e, want, &path, fresh)),
        }
    }
}

/// Vault's answer when the issuer cannot give a token of the minimum lifetime.
fn too_short(e: &VaultError) -> bool {
    e.status() == Some(400) && e.errors().iter().any(|m| m == "token expired")
}

/// A failed bearer read with what to do about it: [`AuthError::NeedsLogin`]
/// when only a person can fix it, else Vault's error with a hint.
fn with_hint(e: VaultError, want: &Want<'_>, path: &str, fresh: bool) -> AuthError {
    let credential = VaultCredential::from_parts(want.server_host, want.server_port, path);
    if let (Some(what), Some(credential)) = (e.login_needed(), credential) {
        return AuthError::NeedsLogin {
            what,
            credential,
            error: Box::new(e),
        };
    }
    let hint = read_hint(&e, want, path, fresh);
    AuthError::vault(e, hint)
}

/// The one set of hints for a failed bearer read (`fresh`: right after a
/// login); what only a person can fix is [`AuthError::NeedsLogin`].
pub fn read_hint(e: &VaultError, want: &Want<'_>, path: &str, fresh: bool) -> Option<String> {
    let credkey = want.credkey.unwrap_or("?");
    let role = &want.names.role;
    match e.status() {
        Some(403) if fresh => Some(format!(
            "the Kerberos identity may not read {path}: check the credkey '{credkey}' and the role '{role}'"
        )),
        Some(429) => Some("Vault's rate limit was hit; try again later, less often".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
