//! Why a credential's refresh failed, sorted by what the daemon does next.

use crate::files::FileError;
use crate::vault::VaultError;
use std::time::Duration;

/// Why a job failed, by what the daemon does next. Messages name the
/// credential and the server, never a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// A passing failure (Vault unreachable or failing, a file error, a
    /// failed login): the old `.use` stays; retry after the backoff, and no
    /// sooner than `at_least` when the server asked for a pause.
    #[error("{msg}")]
    Retry {
        /// The `cause` label of the failure metrics.
        cause: &'static str,
        /// The server's own wait (`Retry-After`), if any.
        at_least: Option<Duration>,
        /// What failed.
        msg: String,
        /// The Vault server itself is failing (unreachable, 429, 502-504):
        /// the credential waits for the server rather than its own backoff.
        server_failing: bool,
    },
    /// Vault no longer accepts the credential's Vault token: log in again
    /// with the user's keytab (handled inside [`super::process`]; without a keytab
    /// it becomes [`RefreshError::Remove`]).
    #[error("Vault refused the token: {msg}")]
    Relogin {
        /// Vault's own message.
        msg: String,
    },
    /// The credential is dead (its Vault token refused and no keytab, or the
    /// parent of a handle is gone): remove its `.top` and `.use`, as HTCondor does.
    #[error("{msg}")]
    Remove {
        /// The `cause` label of the failure metrics.
        cause: &'static str,
        /// Why.
        msg: String,
    },
    /// The `.top` cannot be used as it is (malformed, untrusted host, no
    /// Vault token): wait for a new `.top` (or a configuration change).
    #[error("{msg}")]
    WaitForTop {
        /// Why.
        msg: String,
    },
}

impl RefreshError {
    /// The `cause` label of the failure metrics.
    pub fn cause(&self) -> &'static str {
        match self {
            RefreshError::Retry { cause, .. } | RefreshError::Remove { cause, .. } => cause,
            RefreshError::Relogin { .. } => "permission_denied",
            RefreshError::WaitForTop { .. } => "unusable",
        }
    }

    /// The job did not ask its server: the server was failing and another
    /// credential probes it ([`RefreshError::waiting_for`]).
    pub fn not_asked(&self) -> bool {
        matches!(
            self,
            RefreshError::Retry {
                cause: WAITING_FOR_SERVER,
                ..
            }
        )
    }

    /// The job waits for `server`, failing, without asking it.
    pub(super) fn waiting_for(server: &str) -> Self {
        RefreshError::Retry {
            cause: WAITING_FOR_SERVER,
            at_least: None,
            msg: format!("Vault at {server} is failing; waiting for it"),
            server_failing: true,
        }
    }

    /// A file operation failed: cause `disk` when the file system itself
    /// refused (full, over quota, read-only, I/O error), else `file`.
    pub(super) fn file(e: &FileError) -> Self {
        let cause = if super::disk_trouble(e) { DISK } else { "file" };
        RefreshError::retry(cause, e.to_string())
    }

    /// The file system refused a write (full, over quota, read-only, I/O
    /// error): the credential waits for the disk with every other one.
    pub fn disk_trouble(&self) -> bool {
        matches!(self, RefreshError::Retry { cause: DISK, .. })
    }

    pub(super) fn retry(cause: &'static str, msg: impl Into<String>) -> Self {
        RefreshError::Retry {
            cause,
            at_least: None,
            msg: msg.into(),
            server_failing: false,
        }
    }

    pub(super) fn wait(msg: impl Into<String>) -> Self {
        RefreshError::WaitForTop { msg: msg.into() }
    }
}

/// The failure cause of a write the file system refused.
const DISK: &str = "disk";

/// The failure cause of a job that waited for its failing server without asking it.
const WAITING_FOR_SERVER: &str = "waiting_for_server";

/// The result of one job.
pub type Outcome = Result<super::Done, RefreshError>;

/// The `cause` label of a failed Vault request.
pub(super) fn vault_cause(e: &VaultError) -> &'static str {
    match e {
        VaultError::Transport { .. } => "unreachable",
        VaultError::Status { .. } | VaultError::Protocol { .. } => "vault",
        VaultError::Tls(_) | VaultError::TlsTrust { .. } => "tls",
        VaultError::BadAddress(_) => "config",
    }
}
