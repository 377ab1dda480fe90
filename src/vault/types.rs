//! The values Vault hands out: tokens (never displayed), login answers and the
//! OIDC device-flow states.

use std::fmt;

/// A Vault token. Never displayed; `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct VaultToken(String);

impl fmt::Debug for VaultToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VaultToken(***)")
    }
}

impl Drop for VaultToken {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl VaultToken {
    /// Wraps token text (trimmed); `None` when empty or not printable ASCII.
    pub fn new(text: &str) -> Option<Self> {
        let t = text.trim();
        (!t.is_empty() && t.len() <= 4096 && t.bytes().all(|b| b.is_ascii_graphic()))
            .then(|| Self(t.to_owned()))
    }

    /// The secret text. Callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The `auth` block of a login or token-create answer.
#[derive(Debug, Clone)]
pub struct AuthInfo {
    /// The new token.
    pub token: VaultToken,
    /// Lease in seconds, when Vault gave one.
    pub lease_duration: Option<u64>,
    /// Policies attached to the token.
    pub policies: Vec<String>,
    /// Identity alias name (`metadata.user`), when given.
    pub user: Option<String>,
}

/// An OAuth refresh token on its way from an OIDC login to the creds path. Never displayed.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(pub(super) String);

impl Drop for RefreshToken {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(***)")
    }
}

/// The answer to `auth_url`: where the person logs in, and how to poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcStart {
    /// The URL to open in a browser.
    pub auth_url: String,
    /// The code to enter there, when the URL does not carry it.
    pub user_code: Option<String>,
    /// The state to poll with (`None`: old API without polling support).
    pub state: Option<String>,
    /// Seconds between polls, when Vault gave them.
    pub poll_interval: Option<u64>,
}

/// A successful OIDC login.
#[derive(Debug, Clone)]
pub struct OidcLogin {
    /// The Vault token and its lease.
    pub auth: AuthInfo,
    /// `metadata.credkey`: the person's credential key.
    pub credkey: Option<String>,
    /// `metadata.oauth2_refresh_token`.
    pub refresh_token: Option<RefreshToken>,
}

/// One answer of `poll`.
#[derive(Debug, Clone)]
pub enum OidcPoll {
    /// `authorization_pending`: the person has not finished yet.
    Pending,
    /// `slow_down`: poll less often.
    SlowDown,
    /// Logged in.
    Done(Box<OidcLogin>),
}
