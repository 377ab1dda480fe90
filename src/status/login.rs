//! "A person must log in": where, and with which command, for a credential
//! whose Vault answer says only an OIDC login in a web browser can make it
//! work again ([`LoginNeeded`]). Pure functions of the credential's Vault URL.

use crate::get::plan::shell_quote;
use crate::vault::LoginNeeded;

/// HTCondor's (and htgettoken's) default Vault port, left out of commands.
const DEFAULT_PORT: u16 = 8200;

/// The Vault credential a person logs in for: `secret/oauth/creds/<issuer>/<credkey>:<role>`
/// (or `sts`) on `server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultCredential {
    /// `host`, or `host:port` when the port is not 8200 (as htgettoken's `-a` takes it).
    pub server: String,
    /// Issuer name in Vault.
    pub issuer: String,
    /// Credential key.
    pub credkey: String,
    /// Vault role.
    pub role: String,
}

impl VaultCredential {
    /// From a `.top`'s `vault_url` (`https://host:port/v1/secret/oauth/creds/...`).
    pub fn from_url(vault_url: &str) -> Option<Self> {
        let url = url::Url::parse(vault_url).ok()?;
        let host = url
            .host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = url.port_or_known_default()?;
        let path = url.path().strip_prefix("/v1/")?;
        Self::from_parts(host, port, path)
    }

    /// From the host, port and API path (after `/v1/`) of a bearer-token read.
    pub fn from_parts(host: &str, port: u16, path: &str) -> Option<Self> {
        let rest = path
            .strip_prefix("secret/oauth/creds/")
            .or_else(|| path.strip_prefix("secret/oauth/sts/"))?;
        let (issuer, key) = rest.split_once('/')?;
        let (credkey, role) = key.rsplit_once(':')?;
        if [issuer, credkey, role].iter().any(|s| s.is_empty()) {
            return None;
        }
        Some(Self::new(host, port, issuer, credkey, role))
    }

    /// From its parts (`host` without brackets).
    pub fn new(host: &str, port: u16, issuer: &str, credkey: &str, role: &str) -> Self {
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let server = if port == DEFAULT_PORT {
            host
        } else {
            format!("{host}:{port}")
        };
        VaultCredential {
            server,
            issuer: issuer.to_owned(),
            credkey: credkey.to_owned(),
            role: role.to_owned(),
        }
    }

    /// The command the credential's owner runs once on a terminal: htgettoken
    /// stores a new refresh token in Vault under the same credkey.
    pub fn command(&self) -> String {
        format!(
            "htgettoken -a {} -i {} -r {} --credkey {}",
            shell_quote(&self.server),
            shell_quote(&self.issuer),
            shell_quote(&self.role),
            shell_quote(&self.credkey)
        )
    }

    /// What Vault's answer means, in words.
    pub fn why(&self, what: LoginNeeded) -> String {
        match what {
            LoginNeeded::NoCredential => format!(
                "Vault at {} holds no credential for credkey '{}' (issuer {}, role {})",
                self.server, self.credkey, self.issuer, self.role
            ),
            LoginNeeded::RefreshRefused => format!(
                "the issuer refused the refresh token that Vault at {} holds for credkey '{}' (issuer {}, role {}): it expired or was revoked",
                self.server, self.credkey, self.issuer, self.role
            ),
        }
    }
}

/// The credmon's one line for a credential of `user` that needs a person:
/// what Vault said and the command to run as that user.
pub fn credmon_message(user: &str, target: &VaultCredential, what: LoginNeeded) -> String {
    format!(
        "{}; a person must log in once: as {user}, run on a terminal: {}",
        target.why(what),
        target.command()
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn targets_from_vault_urls() {
        let t = VaultCredential::from_url(
            "https://vault.example.org:8200/v1/secret/oauth/creds/igwn/robot/host.example:robot",
        )
        .unwrap();
        assert_eq!(
            t,
            VaultCredential {
                server: "vault.example.org".into(),
                issuer: "igwn".into(),
                credkey: "robot/host.example".into(),
                role: "robot".into()
            }
        );
        assert_eq!(
            t.command(),
            "htgettoken -a vault.example.org -i igwn -r robot --credkey robot/host.example"
        );
        let t = VaultCredential::from_url("https://localhost:18200/v1/secret/oauth/sts/i/a'b:r")
            .unwrap();
        assert_eq!(
            t.command(),
            "htgettoken -a localhost:18200 -i i -r r --credkey 'a'\"'\"'b'"
        );
        let t = VaultCredential::from_parts("::1", 8300, "secret/oauth/creds/i/k:r").unwrap();
        assert_eq!(t.server, "[::1]:8300");
        for bad in [
            "https://v:8200/v1/secret/kv/x",
            "https://v:8200/v1/secret/oauth/creds/i/nokey",
            "https://v:8200/v1/secret/oauth/creds/i/:r",
            "not a url",
            "https://v:8200/secret/oauth/creds/i/k:r",
        ] {
            assert_eq!(VaultCredential::from_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn messages_name_the_credkey_and_the_command() {
        let t =
            VaultCredential::from_parts("v.example", 8200, "secret/oauth/creds/igwn/alice:default")
                .unwrap();
        let m = credmon_message("alice", &t, LoginNeeded::NoCredential);
        assert_eq!(
            m,
            "Vault at v.example holds no credential for credkey 'alice' (issuer igwn, role default); a person must log in once: as alice, run on a terminal: htgettoken -a v.example -i igwn -r default --credkey alice"
        );
        let m = credmon_message("alice", &t, LoginNeeded::RefreshRefused);
        assert!(m.starts_with("the issuer refused the refresh token"), "{m}");
        assert!(!m.contains('\n'));
    }
}
