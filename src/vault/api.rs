//! The Vault API as the roles see it: [`Api`], every request they make, as an
//! object; [`Connector`], how they get one for a server. [`VaultClient`]
//! answers over HTTPS through [`Https`]; a simulated Vault can stand in for
//! both without HTTP (the session policy in [`super::auth`] sees only these).

use super::{
    AuthInfo, ClientConfig, Limits, OidcPoll, OidcStart, RefreshToken, ServerAddress, VaultClient,
    VaultError, VaultToken, tls,
};
use crate::env::Env;
use crate::kerberos::KrbError;
use crate::token::BearerToken;
use crate::vault::auth::CredentialSource;
use std::path::PathBuf;
use std::sync::Arc;

/// A Kerberos login that failed: on our side (the keytab or ticket cache) or Vault's.
#[derive(Debug)]
pub enum LoginError {
    /// The Negotiate token could not be made.
    Kerberos(KrbError),
    /// Vault refused or could not be reached.
    Vault(VaultError),
}

/// Every Vault request the roles make. Object safe: the roles hold an
/// `Arc<dyn Api>` from a [`Connector`].
pub trait Api: Send + Sync {
    /// The server, `https://host:port` (for messages).
    fn server(&self) -> String;

    /// How many requests were sent so far (attempts included).
    fn request_count(&self) -> u32;

    /// Logs in at `auth/<mount>/login` as `source`, with a Kerberos token
    /// for the service `host@<service_host>` (a new one for every attempt).
    fn login_kerberos(
        &self,
        mount: &str,
        source: &CredentialSource,
        service_host: &str,
    ) -> Result<AuthInfo, LoginError>;

    /// Exchanges `token` for a child token of `ttl_secs` seconds (`auth/token/create`).
    fn create_token(&self, token: &VaultToken, ttl_secs: u64) -> Result<AuthInfo, VaultError>;

    /// Remaining TTL of `token` in seconds (`auth/token/lookup-self`).
    fn lookup_self_ttl(&self, token: &VaultToken) -> Result<u64, VaultError>;

    /// Reads a bearer token from a `secret/oauth/{creds|sts}/...` path with
    /// query parameters (`minimum_seconds`, `scopes`, `audiences`).
    fn read_bearer(
        &self,
        token: &VaultToken,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<BearerToken, VaultError>;

    /// Starts the OIDC login: `POST <oidc_path>/auth_url`.
    fn oidc_auth_url(
        &self,
        oidc_path: &str,
        role: &str,
        client_nonce: &str,
        redirect_uri: &str,
    ) -> Result<OidcStart, VaultError>;

    /// One poll of the OIDC login: `POST <oidc_path>/poll`.
    fn oidc_poll(
        &self,
        oidc_path: &str,
        state: &str,
        client_nonce: &str,
    ) -> Result<OidcPoll, VaultError>;

    /// Stores a refresh token at a `creds` path (`{"server", "refresh_token"}`).
    fn store_refresh_token(
        &self,
        token: &VaultToken,
        secret_path: &str,
        server: &str,
        refresh_token: &RefreshToken,
    ) -> Result<(), VaultError>;
}

/// Whose TLS trust a connection uses.
#[derive(Debug, Clone)]
pub enum Trust {
    /// A CA file and/or hashed CA directory (the defaults when neither).
    Files(Option<PathBuf>, Option<PathBuf>),
    /// A configuration built once and shared (the credmon's).
    Shared(Arc<rustls::ClientConfig>),
}

/// Hands out [`Api`] objects for servers. The roles get theirs through one
/// (the credmon's `Ctx` holds it; `get` and `store` can be given one), so a
/// simulated Vault can answer instead of a real one.
pub trait Connector: Send + Sync {
    /// An API for `server` (certificate name `certname`, else the server's
    /// host), trusting `trust`, within `limits`.
    fn connect(
        &self,
        server: &ServerAddress,
        certname: Option<&str>,
        trust: &Trust,
        limits: &Limits,
    ) -> Result<Arc<dyn Api>, VaultError>;

    /// `trust` made ready to be shared by many connections (the real one
    /// reads the CA files now, so a bad one shows at start); by default as given.
    fn share(&self, trust: Trust) -> Result<Trust, VaultError> {
        Ok(trust)
    }
}

/// A function from a server to its API is a connector that ignores trust
/// and limits (a simulated Vault has neither).
impl<F> Connector for F
where
    F: Fn(&ServerAddress) -> Arc<dyn Api> + Send + Sync,
{
    fn connect(
        &self,
        server: &ServerAddress,
        _certname: Option<&str>,
        _trust: &Trust,
        _limits: &Limits,
    ) -> Result<Arc<dyn Api>, VaultError> {
        Ok(self(server))
    }
}

/// The real connector: HTTPS clients ([`VaultClient`]) whose retries wait on
/// the environment's clock and whose default trust anchors follow its
/// variables (`$X509_CERT_DIR`, `$SSL_CERT_FILE`).
#[derive(Debug, Clone)]
pub struct Https {
    env: Env,
}

impl Https {
    /// A connector for the environment `env`.
    pub fn new(env: &Env) -> Self {
        Https { env: env.clone() }
    }

    /// The client itself (for what only HTTPS does, such as documents).
    pub fn client(
        &self,
        server: &ServerAddress,
        certname: Option<&str>,
        trust: &Trust,
        limits: &Limits,
    ) -> Result<VaultClient, VaultError> {
        let tls = match self.share(trust.clone())? {
            Trust::Shared(t) => t,
            Trust::Files(..) => return Err(VaultError::Tls("no TLS configuration".into())),
        };
        Ok(VaultClient::new(ClientConfig {
            server: server.clone(),
            certname: certname.map(str::to_owned),
            tls,
            limits: *limits,
            clock: self.env.clock().clone(),
        }))
    }
}

impl Connector for Https {
    fn connect(
        &self,
        server: &ServerAddress,
        certname: Option<&str>,
        trust: &Trust,
        limits: &Limits,
    ) -> Result<Arc<dyn Api>, VaultError> {
        Ok(Arc::new(self.client(server, certname, trust, limits)?))
    }

    fn share(&self, trust: Trust) -> Result<Trust, VaultError> {
        Ok(match trust {
            Trust::Files(cafile, capath) => {
                Trust::Shared(tls::client_config_for(cafile, capath, &self.env)?)
            }
            shared => shared,
        })
    }
}
