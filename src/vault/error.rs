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
    /// TLS trust could not be set up (bad CA file or directory).
    #[error("{0}")]
    Tls(String),
    /// The server address is not usable.
    #[error("invalid Vault server address '{0}' (expected host, host:port or https://host:port)")]
    BadAddress(String),
}

impl VaultError {
    /// Worth retrying: transport failures, 429 and 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            VaultError::Transport { .. } => true,
            VaultError::Status { status, .. } => *status == 429 || (500..600).contains(status),
            _ => false,
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
}

fn status_message(
    server: &str,
    path: &str,
    status: u16,
    errors: &[String],
    warnings: &[String],
) -> String {
    let clean = |v: &[String]| {
        v.iter()
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let detail = match (clean(errors), clean(warnings)) {
        (e, _) if !e.is_empty() => e,
        (_, w) if !w.is_empty() => w,
        _ => "no details given".to_owned(),
    };
    format!("Vault at {server} answered {status} to {path}: {detail}")
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
        }
    }

    #[test]
    fn classification_table() {
        let transport = VaultError::Transport {
            server: "s".into(),
            detail: "d".into(),
        };
        // (error, transient, permission denied)
        let cases = [
            (transport, true, false),
            (status(500, &["could not connect to LDAP"]), true, false),
            (status(503, &["Vault is sealed"]), true, false),
            (status(429, &["rate limit quota exceeded"]), true, false),
            (status(403, &["permission denied"]), false, true),
            (
                status(403, &["1 error occurred:\n\t* permission denied\n\n"]),
                false,
                true,
            ),
            (status(403, &["invalid token"]), false, true),
            (status(404, &[]), false, false),
            (status(400, &["token expired"]), false, false),
        ];
        for (e, transient, denied) in cases {
            assert_eq!(e.is_transient(), transient, "{e}");
            assert_eq!(e.is_permission_denied(), denied, "{e}");
        }
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
