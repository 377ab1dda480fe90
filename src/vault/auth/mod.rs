//! The Vault session layer shared by `get`, the credmon and the storer: where
//! a Kerberos identity comes from ([`CredentialSource`]), [`login`] (Kerberos
//! login plus the exchange to the requested lifetime), the OIDC bootstrap
//! behind the same exchange ([`oidc_bootstrap`]), [`reuse`] of a saved Vault
//! token, the saved-token file, the one resolver of issuer and role
//! ([`names`]), and the one fallback chain with its hints
//! ([`SessionPolicy`], in `session.rs`). Everything here talks to Vault
//! through [`Api`] only. Roles keep only their own decisions; this layer
//! decides nothing about files the roles own.

pub mod names;
pub mod oidc;
mod session;

use crate::files::{self, FileError, SafeDir, WriteOptions};
use crate::kerberos::{Initiator, Keytab, KrbError};
use crate::status::login::VaultCredential;
pub use crate::vault::Trust;
use crate::vault::{Api, AuthInfo, LoginError, LoginNeeded, VaultError, VaultToken};
pub use names::{Names, Source, resolve};
use oidc::{OidcError, OidcSettings};
pub use session::{Login, Obtained, Oidc, Person, SessionPolicy, Step, Want};
use std::path::Path;
use std::time::Duration;

/// Lifetime of the long-lived Vault token a credd holds (htgettoken's
/// `--vaulttokenttl=28d` in HTCondor's storer); also what the credmon asks for
/// when it logs a robot in again.
pub const STORED_TTL: Duration = Duration::from_secs(28 * 86400);

/// A failed login, exchange or reuse: what Kerberos or Vault said, and our hint.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A Kerberos problem (keytab or ticket cache).
    #[error(transparent)]
    Kerberos(#[from] KrbError),
    /// A Vault problem, with advice when we have some.
    #[error("{error}{}", hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Vault {
        /// What Vault said.
        error: Box<VaultError>,
        /// What to do about it.
        hint: Option<String>,
    },
    /// The OIDC login failed or needs a terminal.
    #[error(transparent)]
    Oidc(#[from] OidcError),
    /// A file problem (saved token, credkey file).
    #[error(transparent)]
    File(#[from] FileError),
    /// Only a person can make the credential work again (an OIDC login in
    /// a web browser): Vault holds no credential for the credkey, or the
    /// issuer refused the refresh token Vault holds.
    #[error(
        "{}; a person must log in once: run on a terminal: {}",
        credential.why(*what),
        credential.command()
    )]
    NeedsLogin {
        /// Why.
        what: LoginNeeded,
        /// The credential, and the command that stores its first token.
        credential: VaultCredential,
        /// What Vault said.
        error: Box<VaultError>,
    },
    /// Vault no longer accepts the saved token and the role has no way to
    /// log in again (the credmon without a keytab for the user).
    #[error("Vault no longer accepts the Vault token ({why})")]
    Refused {
        /// What Vault said.
        why: String,
    },
}

impl From<VaultError> for AuthError {
    fn from(error: VaultError) -> Self {
        AuthError::Vault {
            error: Box::new(error),
            hint: None,
        }
    }
}

impl AuthError {
    /// A Vault error with a hint.
    pub fn vault(error: VaultError, hint: Option<String>) -> Self {
        AuthError::Vault {
            error: Box::new(error),
            hint,
        }
    }

    /// The Vault error, when this is one.
    pub fn vault_error(&self) -> Option<&VaultError> {
        match self {
            AuthError::Vault { error, .. } | AuthError::NeedsLogin { error, .. } => Some(error),
            AuthError::Oidc(OidcError::Vault(e)) => Some(e),
            _ => None,
        }
    }

    /// Worth retrying later: Vault unreachable, 429 or 5xx.
    pub fn is_transient(&self) -> bool {
        self.vault_error().is_some_and(VaultError::is_transient)
    }

    /// Only a person can fix this ([`AuthError::NeedsLogin`]): what Vault's
    /// answer means, in words.
    pub fn needs_login(&self) -> Option<String> {
        match self {
            AuthError::NeedsLogin {
                what, credential, ..
            } => Some(credential.why(*what)),
            _ => None,
        }
    }
}

/// Where a Kerberos identity comes from. (OIDC, the third source, needs a
/// person and is [`oidc_bootstrap`].)
pub enum CredentialSource {
    /// A keytab, opened and checked once, and the principal chosen from it.
    Keytab {
        /// The open keytab.
        keytab: Keytab,
        /// The client principal.
        principal: String,
        /// Credential cache for the TGT (`None`: a private in-memory one).
        ccache: Option<String>,
    },
    /// The default credential of the user's own ticket cache (`kinit`).
    UserCcache,
}

impl CredentialSource {
    /// Opens `path` (root's when `root_owned`) and chooses `principal` in it
    /// (the keytab's first when `None`).
    pub fn keytab(
        path: &Path,
        principal: Option<&str>,
        ccache: Option<String>,
        root_owned: bool,
    ) -> Result<Self, KrbError> {
        let keytab = Keytab::open(path, root_owned)?;
        let principal = keytab.choose_principal(principal)?;
        Ok(CredentialSource::Keytab {
            keytab,
            principal,
            ccache,
        })
    }

    /// The client principal, when known before the login.
    pub fn principal(&self) -> Option<&str> {
        match self {
            CredentialSource::Keytab { principal, .. } => Some(principal),
            CredentialSource::UserCcache => None,
        }
    }

    /// The GSSAPI initiator of this source (Kerberos happens here, in-process).
    pub(crate) fn initiator(&self) -> Result<Initiator, KrbError> {
        match self {
            CredentialSource::Keytab {
                keytab,
                principal,
                ccache,
            } => Initiator::from_keytab(keytab, principal, ccache.as_deref()),
            CredentialSource::UserCcache => Initiator::from_default_ccache(),
        }
    }
}

/// A Vault token from a login, with its lease in seconds when known.
#[derive(Debug, Clone)]
pub struct Session {
    /// The token.
    pub token: VaultToken,
    /// Its lease in seconds, when Vault gave one.
    pub lease: Option<u64>,
}

/// Whether a login token with this lease must be exchanged for one of `ttl`.
pub fn needs_exchange(lease: Option<u64>, ttl: Duration) -> bool {
    lease.is_none_or(|l| l > ttl.as_secs())
}

/// Whether a saved Vault token with `ttl` seconds left may still be used.
pub fn usable_for(ttl: u64, min_ttl: Duration) -> bool {
    ttl >= min_ttl.as_secs()
}

/// The exchange rule: a login token longer than `ttl` (or without a lease) is
/// exchanged for a child of `ttl`; a shorter one is kept.
pub fn exchange(client: &dyn Api, auth: AuthInfo, ttl: Duration) -> Result<Session, VaultError> {
    let auth = if needs_exchange(auth.lease_duration, ttl) {
        client.create_token(&auth.token, ttl.as_secs())?
    } else {
        auth
    };
    Ok(Session {
        token: auth.token,
        lease: auth.lease_duration,
    })
}

/// Where to log in and as what.
#[derive(Debug, Clone)]
pub struct LoginTarget<'a> {
    /// Issuer and role (the mount is `kerberos-<issuer>_<role>`).
    pub names: &'a Names,
    /// Host of the Kerberos service name `host@<this>` (the Vault alias).
    pub service_host: &'a str,
    /// The lifetime wanted.
    pub ttl: Duration,
}

/// Kerberos login at `auth/kerberos-<issuer>_<role>`, then [`exchange`].
pub fn login(
    client: &dyn Api,
    source: &CredentialSource,
    target: &LoginTarget<'_>,
) -> Result<Session, AuthError> {
    let mount = target.names.mount();
    let auth = client
        .login_kerberos(&mount, source, target.service_host)
        .map_err(|e| match e {
            LoginError::Kerberos(k) => AuthError::Kerberos(k),
            LoginError::Vault(v) => {
                let hint = login_hint(&v, source.principal(), target, &mount);
                AuthError::vault(v, hint)
            }
        })?;
    log::info!(
        "Kerberos login to {} at auth/{mount} succeeded",
        client.server()
    );
    Ok(exchange(client, auth, target.ttl)?)
}

fn login_hint(
    e: &VaultError,
    principal: Option<&str>,
    target: &LoginTarget<'_>,
    mount: &str,
) -> Option<String> {
    let who = principal.unwrap_or("the ticket cache's principal");
    match e.status() {
        Some(401) if e.errors().is_empty() => Some(format!(
            "Vault rejected the Kerberos login of '{who}': check that the server's keytab holds host/{} (use --vaultalias for a cluster name), that this host's clock is within 5 minutes of Vault's, that the keytab's principal is the one Vault expects, and (on the server) decode_pac=false for MIT KDCs >= 1.20",
            target.service_host
        )),
        Some(403) => Some(format!(
            "there is no Kerberos login for '{who}' at auth/{mount}: check the issuer '{}' and the role '{}'",
            target.names.issuer, target.names.role
        )),
        _ => None,
    }
}

/// Why a saved Vault token will not be reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReused {
    /// It has less than the minimum left (seconds left).
    TooShort(u64),
    /// Vault refused it (Vault's message).
    Refused(String),
}

impl std::fmt::Display for NotReused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReused::TooShort(ttl) => write!(
                f,
                "the saved Vault token has {} left, under the minimum",
                crate::token::format_remaining(i64::try_from(*ttl).unwrap_or(i64::MAX))
            ),
            NotReused::Refused(why) => {
                write!(f, "the saved Vault token is no longer accepted ({why})")
            }
        }
    }
}

/// Whether `token` is good for at least `min_ttl` (`lookup-self`): `Ok(Ok(ttl))`,
/// or why not. A zero minimum skips the lookup (`Ok(Ok(0))`). Transient
/// failures are errors: the caller retries later instead of logging in anew.
pub fn reuse(
    client: &dyn Api,
    token: &VaultToken,
    min_ttl: Duration,
) -> Result<Result<u64, NotReused>, AuthError> {
    if min_ttl.is_zero() {
        return Ok(Ok(0));
    }
    match client.lookup_self_ttl(token) {
        Ok(ttl) if usable_for(ttl, min_ttl) => Ok(Ok(ttl)),
        Ok(ttl) => Ok(Err(NotReused::TooShort(ttl))),
        Err(e) if e.is_transient() => Err(e.into()),
        Err(e) => Ok(Err(NotReused::Refused(e.to_string()))),
    }
}

/// Reads a saved Vault token file through the file-trust rule
/// ([`files::read_trusted`], owner `uid`: the effective user); `None` when absent
/// or not a token. A planted or unreadable file is logged, ignored and never sent.
pub fn read_saved(path: &Path, uid: u32) -> Option<VaultToken> {
    match files::read_trusted(path, 8192, uid) {
        Ok(bytes) => bytes
            .map(zeroize::Zeroizing::new)
            .and_then(|b| std::str::from_utf8(&b).ok().and_then(VaultToken::new)),
        Err(e) => {
            log::warn!("ignoring the saved Vault token: {e}");
            None
        }
    }
}

/// Saves a Vault token (one line, 0600, owned by `uid`) atomically, first
/// removing temporary files a killed earlier run left beside it. The bearer
/// token comes first: a failure is a warning (the next run logs in again),
/// never an error; returns whether the token was saved.
pub fn save(path: &Path, token: &VaultToken, uid: u32, now: std::time::SystemTime) -> bool {
    let mut contents = zeroize::Zeroizing::new(token.expose().as_bytes().to_vec());
    contents.push(b'\n');
    let saved = SafeDir::open_parent(path).and_then(|(dir, name)| {
        // No lock guards this file (several roles share it): only old leftovers go.
        let stale = files::safe_dir::STALE_TEMP_AGE;
        if let Err(e) = dir.remove_stale_temps_of(&name, uid, now, stale) {
            log::warn!("cannot clean up after an earlier run: {e}");
        }
        dir.write_atomic(&name, &contents, WriteOptions::user_file(0o600, uid))
    });
    match saved {
        Ok(()) => {
            log::info!("saved the Vault token in {}", path.display());
            true
        }
        Err(e) => {
            log::warn!("cannot save the Vault token, the next run will log in again: {e}");
            false
        }
    }
}

/// What the OIDC bootstrap needs besides the flow's settings.
#[derive(Debug, Clone)]
pub struct Bootstrap<'a> {
    /// Issuer and role.
    pub names: &'a Names,
    /// The credkey to store the refresh token under (`None`: the login's).
    pub credkey: Option<&'a str>,
    /// Save the login's credkey in htgettoken's file under this home.
    pub save_credkey_in: Option<&'a Path>,
    /// The owner of the files saved (the effective user).
    pub uid: u32,
    /// The lifetime wanted.
    pub ttl: Duration,
}

/// The first-time login through Vault's OIDC device flow (a person at a
/// terminal): stores the refresh token, saves the credkey when asked, and
/// exchanges the login token like [`login`]. Returns the session and credkey.
pub fn oidc_bootstrap(
    client: &dyn Api,
    settings: &OidcSettings,
    b: &Bootstrap<'_>,
) -> Result<(Session, String), AuthError> {
    let login = oidc::login(client, settings)?;
    let credkey = match b
        .credkey
        .map(str::to_owned)
        .or_else(|| login.credkey.clone())
    {
        Some(ck) => ck,
        None => {
            return Err(OidcError::Incomplete {
                server: client.server(),
                what: "no credkey in the login metadata",
            }
            .into());
        }
    };
    if let (Some(home), Some(ck)) = (b.save_credkey_in, &login.credkey) {
        oidc::save_credkey(home, &b.names.issuer, &b.names.role, ck, b.uid)?;
    }
    oidc::store_refresh_token(client, &login, &b.names.issuer, &credkey, &b.names.role)?;
    let session = exchange(client, login.auth, b.ttl)?;
    Ok((session, credkey))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_and_reuse_rules() {
        let day = Duration::from_secs(86400);
        // (ttl left, minimum) -> usable
        for (ttl, usable) in [(86400, true), (86399, false), (604800, true), (0, false)] {
            assert_eq!(usable_for(ttl, day), usable, "{ttl}");
        }
        let week = Duration::from_secs(604800);
        // (login lease, exchanged for a week-long token?)
        for (lease, exchange) in [
            (Some(2419200), true),
            (Some(604800), false),
            (Some(60), false),
            (None, true),
        ] {
            assert_eq!(needs_exchange(lease, week), exchange, "{lease:?}");
        }
        assert_eq!(STORED_TTL.as_secs(), 2419200);
    }
}
