//! The Vault requests a role makes ([`Api`], over HTTPS): Kerberos login,
//! token creation and `lookup-self`, bearer token reads, the OIDC device flow
//! and refresh-token storage. Each is one call of the transport in `mod.rs`.

use super::retry::Retry;
use super::{
    Api, AuthInfo, LoginError, OidcLogin, OidcPoll, OidcStart, RefreshToken, VaultClient,
    VaultError, VaultToken,
};
use crate::token::BearerToken;
use crate::vault::auth::CredentialSource;

impl Api for VaultClient {
    fn server(&self) -> String {
        VaultClient::server(self)
    }

    fn request_count(&self) -> u32 {
        VaultClient::request_count(self)
    }

    /// GSSAPI in-process: the Negotiate header is made again for every
    /// attempt (Kerberos tokens must not be replayed).
    fn login_kerberos(
        &self,
        mount: &str,
        source: &CredentialSource,
        service_host: &str,
    ) -> Result<AuthInfo, LoginError> {
        let initiator = source.initiator().map_err(LoginError::Kerberos)?;
        let negotiate = &mut || initiator.negotiate_header(service_host);
        let path = format!("auth/{mount}/login");
        let mut header_error = None;
        let result = self.execute(
            &path,
            Retry::UnlessSent,
            &mut |http, url| match negotiate() {
                Ok(h) => Some(
                    http.post(url)
                        .header("Authorization", h)
                        .header("Content-Type", "application/x-www-form-urlencoded"),
                ),
                Err(e) => {
                    header_error = Some(e);
                    None
                }
            },
        );
        if let Some(e) = header_error {
            return Err(LoginError::Kerberos(e));
        }
        let env = result.map_err(LoginError::Vault)?;
        self.auth_of(&path, env).map_err(LoginError::Vault)
    }

    fn create_token(&self, token: &VaultToken, ttl_secs: u64) -> Result<AuthInfo, VaultError> {
        let path = "auth/token/create";
        let body = serde_json::json!({"ttl": format!("{ttl_secs}s"), "renewable": "false"});
        let env = self.execute(path, Retry::UnlessSent, &mut |http, url| {
            Some(
                http.post(url)
                    .header("X-Vault-Token", token.expose())
                    .json(&body),
            )
        })?;
        self.auth_of(path, env)
    }

    fn lookup_self_ttl(&self, token: &VaultToken) -> Result<u64, VaultError> {
        let path = "auth/token/lookup-self";
        let env = self.execute(path, Retry::Always, &mut |http, url| {
            Some(http.get(url).header("X-Vault-Token", token.expose()))
        })?;
        env.data
            .as_ref()
            .and_then(|d| d.get("ttl"))
            .and_then(|t| t.as_u64())
            .ok_or_else(|| self.protocol(path, "no data.ttl in the answer"))
    }

    fn read_bearer(
        &self,
        token: &VaultToken,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<BearerToken, VaultError> {
        let env = self.execute(path, Retry::Always, &mut |http, url| {
            Some(
                http.get(url)
                    .query(query)
                    .header("X-Vault-Token", token.expose()),
            )
        })?;
        let text = env
            .data
            .as_ref()
            .and_then(|d| d.get("access_token"))
            .and_then(|t| t.as_str())
            .ok_or_else(|| self.protocol(path, "no data.access_token in the answer"))?;
        BearerToken::parse(text)
            .map_err(|e| self.protocol(path, &format!("the bearer token is not valid: {e}")))
    }

    /// No token; the role, the client nonce and the redirect URI.
    fn oidc_auth_url(
        &self,
        oidc_path: &str,
        role: &str,
        client_nonce: &str,
        redirect_uri: &str,
    ) -> Result<OidcStart, VaultError> {
        let path = format!("{oidc_path}/auth_url");
        let body = serde_json::json!({
            "role": role,
            "client_nonce": client_nonce,
            "redirect_uri": redirect_uri,
        });
        let env = self.execute(&path, Retry::Always, &mut |http, url| {
            Some(http.post(url).json(&body))
        })?;
        let data = env
            .data
            .ok_or_else(|| self.protocol(&path, "no data in the answer"))?;
        let text = |k: &str| {
            data.get(k)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let auth_url = text("auth_url").ok_or_else(|| {
            self.protocol(
                &path,
                "empty auth_url (is the redirect URI allowed for this role?)",
            )
        })?;
        let poll_interval = match data.get("poll_interval") {
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            Some(v) => v.as_u64(),
            None => None,
        };
        Ok(OidcStart {
            auth_url,
            user_code: text("user_code"),
            state: text("state"),
            poll_interval,
        })
    }

    fn oidc_poll(
        &self,
        oidc_path: &str,
        state: &str,
        client_nonce: &str,
    ) -> Result<OidcPoll, VaultError> {
        let path = format!("{oidc_path}/poll");
        let body = serde_json::json!({"state": state, "client_nonce": client_nonce});
        match self.execute(&path, Retry::Always, &mut |http, url| {
            Some(http.post(url).json(&body))
        }) {
            Ok(env) => {
                let metadata = env
                    .auth
                    .as_ref()
                    .and_then(|a| a.metadata.clone())
                    .unwrap_or_default();
                let meta = |k: &str| {
                    metadata
                        .get(k)
                        .and_then(|v| v.as_str())
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                };
                let credkey = meta("credkey");
                let refresh_token = meta("oauth2_refresh_token").map(RefreshToken);
                let auth = self.auth_of(&path, env)?;
                Ok(OidcPoll::Done(Box::new(OidcLogin {
                    auth,
                    credkey,
                    refresh_token,
                })))
            }
            Err(e) if e.status() == Some(400) => {
                if e.errors()
                    .iter()
                    .any(|m| m.contains("authorization_pending"))
                {
                    Ok(OidcPoll::Pending)
                } else if e.errors().iter().any(|m| m.contains("slow_down")) {
                    Ok(OidcPoll::SlowDown)
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }

    fn store_refresh_token(
        &self,
        token: &VaultToken,
        secret_path: &str,
        server: &str,
        refresh_token: &RefreshToken,
    ) -> Result<(), VaultError> {
        let body = serde_json::json!({"server": server, "refresh_token": refresh_token.0});
        self.execute(secret_path, Retry::Always, &mut |http, url| {
            Some(
                http.post(url)
                    .header("X-Vault-Token", token.expose())
                    .json(&body),
            )
        })?;
        Ok(())
    }
}
