//! Errors from talking to Vault, classified by what the caller should do.

/// A failed Vault interaction. Messages name the server and never contain tokens.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// Network trouble: connect failure, timeout, dropped connection.
    /// Transient: retried with backoff, then reported; the old token stays.
    #[error("cannot reach Vault at {server}: {detail}")]
    Transport {
        /// `https://host:port`.
        server: String,
        /// What the transport said.
        detail: String,
    },
    /// Vault answered with an error status. 429 and 5xx are transient.
    #[error("{}", status_message(.server, .path, *.status, .errors, .warnings))]
    Status {
        /// `https://host:port`.
        server: String,
        /// The API path, e.g. `auth/token/lookup-self`.
        path: String,
        /// HTTP status.
        status: u16,
        /// Vault's `errors` array.
        errors: Vec<String>,
        /// Vault's `warnings` array.
        warnings: Vec<String>,
        /// How long the server asked us to wait (`Retry-After`), if it did.
        retry_after: Option<std::time::Duration>,
    },
    /// Vault answered 200 but not with what the protocol promises.
    #[error("unexpected answer from Vault at {server} for {path}: {detail}")]
    Protocol {
        /// `https://host:port`.
        server: String,
        /// The API path.
        path: String,
        /// What was wrong.
        detail: String,
    },
    /// The server's certificate is not trusted (unknown CA, wrong name,
    /// expired): permanent, never retried.
    #[error(
        "cannot trust Vault at {server}: {detail} (check --cafile/--capath, and that the server name matches its certificate or give --vaultcertname)"
    )]
    TlsTrust {
        /// `https://host:port`.
        server: String,
        /// What TLS said.
        detail: String,
    },
    /// TLS trust could not be set up (bad CA file or directory).
    #[error("{0}")]
    Tls(String),
    /// The server address is not usable.
    #[error("invalid Vault server address '{0}' (expected host, host:port or https://host:port)")]
    BadAddress(String),
}

impl VaultError {
    /// Worth retrying: transport failures, 429, 5xx, and 307: an HA standby
    /// that cannot forward to an active node (during a leader election)
    /// redirects instead; the redirect is never followed (it names a node,
    /// often the one that just went away), the request is sent again.
    pub fn is_transient(&self) -> bool {
        match self {
            VaultError::Transport { .. } => true,
            VaultError::Status { status, .. } => {
                matches!(*status, 307 | 429) || (500..600).contains(status)
            }
            _ => false,
        }
    }

    /// The server itself is failing, not one credential: it cannot be
    /// reached, or it answered 429 (slow down) or 502/503/504 (down, sealed,
    /// no leader, a gateway without a backend), or it is an HA standby with
    /// no active node to forward to (a leader election: 307, or 500 "active
    /// cluster node not found"). Any other 500 is not counted: Vault's
    /// secrets plugins answer it for one credential's trouble.
    pub fn server_failing(&self) -> bool {
        match self {
            VaultError::Transport { .. } => true,
            VaultError::Status { status, errors, .. } => {
                matches!(status, 307 | 429 | 502 | 503 | 504)
                    || (*status == 500
                        && errors
                            .iter()
                            .any(|e| e.contains("active cluster node not found")))
            }
            _ => false,
        }
    }

    /// How long the server asked us to wait (`Retry-After`), if it did.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            VaultError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Vault refused the token: expired, revoked, unknown or not allowed here.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, VaultError::Status { status: 403, errors, .. }
            if errors.iter().any(|e| e.contains("permission denied") || e.contains("invalid token")))
    }

    /// The HTTP status, when Vault answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            VaultError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Vault's error strings, when it answered.
    pub fn errors(&self) -> &[String] {
        match self {
            VaultError::Status { errors, .. } => errors,
            _ => &[],
        }
    }

    /// Whether only a person can make this credential work again (an OIDC
    /// login in a web browser), and why: Vault holds no credential for the
    /// credkey (404 on a `creds`/`sts` read), or the issuer refused the
    /// stored refresh token (400 `refresh failed`).
    pub fn login_needed(&self) -> Option<LoginNeeded> {
        let VaultError::Status {
            status,
            path,
            errors,
            ..
        } = self
        else {
            return None;
        };
        let bearer_read =
            path.contains("secret/oauth/creds/") || path.contains("secret/oauth/sts/");
        match status {
            404 if bearer_read => Some(LoginNeeded::NoCredential),
            400 if errors.iter().any(|e| e.contains("refresh failed")) => {
                Some(LoginNeeded::RefreshRefused)
            }
            _ => None,
        }
    }
}

/// Why a person must log in before a credential works again ([`VaultError::login_needed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginNeeded {
    /// Vault holds no credential for the credkey: the first login was never done.
    NoCredential,
    /// The issuer refused the refresh token Vault holds (expired, revoked, or
    /// lost in a restart of the issuer).
    RefreshRefused,
}

fn status_message(
    server: &str,
    path: &str,
    status: u16,
    errors: &[String],
    warnings: &[String],
) -> String {
    let clean = |v: &[String]| {
        scrub(
            &v.iter()
                .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("; "),
        )
    };
    let detail = match (clean(errors), clean(warnings)) {
        (e, _) if !e.is_empty() => e,
        (_, w) if !w.is_empty() => w,
        _ if status == 307 => {
            "a standby node redirected to the active one (a leader election?)".to_owned()
        }
        _ => "no details given".to_owned(),
    };
    format!("Vault at {server} answered {status} to {path}: {detail}")
}

/// Longest server text we show, in characters.
pub const MAX_SERVER_TEXT: usize = 300;

/// Server text made safe to show: anything shaped like a token (a Vault
/// token, a JWT, a long random word) replaced by `***`, control characters
/// escaped, and cut to [`MAX_SERVER_TEXT`] characters.
pub fn scrub(text: &str) -> String {
    let is_word =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '/' | '=' | '~');
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if looks_like_secret(word) {
            out.push_str("***");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if is_word(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
    }
    flush(&mut word, &mut out);
    if out.chars().count() > MAX_SERVER_TEXT {
        let mut cut: String = out.chars().take(MAX_SERVER_TEXT).collect();
        cut.push_str(" [...]");
        return cut;
    }
    out
}

/// A word that may be a secret: a Vault token (`hvs.`, `hvb.`, `hvr.`, `s.`,
/// `b.`, `r.` prefixes), a JWT (`eyJ...`), or 20+ characters mixing letters
/// and digits without the separators of paths and names.
fn looks_like_secret(word: &str) -> bool {
    let prefixed = ["hvs.", "hvb.", "hvr.", "s.", "b.", "r."]
        .iter()
        .any(|p| word.strip_prefix(p).is_some_and(|rest| rest.len() >= 16));
    let jwt = word.starts_with("eyJ") && word.len() >= 16;
    let randomish = word.len() >= 20
        && !word.contains('/')
        && word.bytes().any(|b| b.is_ascii_digit())
        && word.bytes().any(|b| b.is_ascii_alphabetic());
    prefixed || jwt || randomish
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, errs: &[&str]) -> VaultError {
        VaultError::Status {
            server: "https://v:8200".into(),
            path: "p".into(),
            status: code,
            errors: errs.iter().map(|s| s.to_string()).collect(),
            warnings: vec![],
            retry_after: None,
        }
    }

    #[test]
    fn classification_table() {
        let transport = VaultError::Transport {
            server: "s".into(),
            detail: "d".into(),
        };
        // (error, transient, permission denied, the server is failing)
        let cases = [
            (transport, true, false, true),
            (
                status(500, &["could not connect to LDAP"]),
                true,
                false,
                false,
            ),
            (status(503, &["Vault is sealed"]), true, false, true),
            (
                status(429, &["rate limit quota exceeded"]),
                true,
                false,
                true,
            ),
            (status(403, &["permission denied"]), false, true, false),
            (
                status(403, &["1 error occurred:\n\t* permission denied\n\n"]),
                false,
                true,
                false,
            ),
            (status(403, &["invalid token"]), false, true, false),
            (status(404, &[]), false, false, false),
            (status(400, &["token expired"]), false, false, false),
            // An HA standby during a leader election (observed on OpenBao 2.6.2).
            (status(307, &[]), true, false, true),
            (
                status(
                    500,
                    &["local node not active but active cluster node not found"],
                ),
                true,
                false,
                true,
            ),
            (status(301, &[]), false, false, false),
        ];
        for (e, transient, denied, failing) in cases {
            assert_eq!(e.is_transient(), transient, "{e}");
            assert_eq!(e.is_permission_denied(), denied, "{e}");
            assert_eq!(e.server_failing(), failing, "{e}");
        }
    }

    #[test]
    fn scrub_table() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        for (input, want) in [
            ("permission denied", "permission denied"),
            ("authorization_pending", "authorization_pending"),
            (
                "request path \"secret/oauth/creds/igwn/robot:robot\": rate limit quota exceeded",
                "request path \"secret/oauth/creds/igwn/robot:robot\": rate limit quota exceeded",
            ),
            (
                "bad token hvs.CAESIJk3aGxvbmdzZWNyZXQ here",
                "bad token *** here",
            ),
            (
                "X-Vault-Token: s.abcdefghijklmnopqrstuvwx",
                "X-Vault-Token: ***",
            ),
            (&format!("got {jwt}"), "got ***"),
            ("id 3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b", "id ***"),
            ("a\u{1b}[2Jb", "a\\u{1b}[2Jb"),
            (
                "dial tcp 127.0.0.1:389: connect",
                "dial tcp 127.0.0.1:389: connect",
            ),
        ] {
            assert_eq!(scrub(input), want, "{input:?}");
        }
        let long = "word ".repeat(200);
        assert!(scrub(&long).chars().count() <= MAX_SERVER_TEXT + 6);
    }

    #[test]
    fn message_scrubs_echoed_tokens() {
        let e = status(
            400,
            &["invalid request, header X-Vault-Token: hvs.CAESIAAAAAAAAAAAAAAAAAAAAA1"],
        );
        assert!(!e.to_string().contains("hvs.CAES"), "{e}");
    }

    #[test]
    fn message_folds_whitespace() {
        let e = status(403, &["1 error occurred:\n\t* permission denied\n\n"]);
        assert_eq!(
            e.to_string(),
            "Vault at https://v:8200 answered 403 to p: 1 error occurred: * permission denied"
        );
    }
}
