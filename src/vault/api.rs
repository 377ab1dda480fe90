//! The Vault calls the credmon makes, as an object-safe trait: the real
//! [`VaultClient`] answers them over HTTPS, and the deterministic simulation
//! answers them from its model of Vault, with no network and no Kerberos.

use super::auth::{self, AuthError, CredentialSource, LoginTarget, Session};
use super::{VaultClient, VaultError, VaultToken};
use crate::token::BearerToken;

/// The Vault requests of a refresh.
pub trait Api: Send + Sync {
    /// The server, `https://host:port`, for messages.
    fn server(&self) -> String;

    /// Reads a bearer token from a secret path with query parameters.
    fn read_bearer(
        &self,
        token: &VaultToken,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<BearerToken, VaultError>;

    /// A Kerberos login as `source` at `target`'s mount, then the exchange
    /// for a token of `target`'s lifetime.
    fn login(
        &self,
        source: &CredentialSource,
        target: &LoginTarget<'_>,
    ) -> Result<Session, AuthError>;
}

impl Api for VaultClient {
    fn server(&self) -> String {
        VaultClient::server(self)
    }

    fn read_bearer(
        &self,
        token: &VaultToken,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<BearerToken, VaultError> {
        VaultClient::read_bearer(self, token, path, query)
    }

    fn login(
        &self,
        source: &CredentialSource,
        target: &LoginTarget<'_>,
    ) -> Result<Session, AuthError> {
        auth::login(self, source, target)
    }
}
