//! The interactive first-time login: Vault's OIDC device flow
//! (vault-token-service.md §1.8), as htgettoken does it. A person opens the
//! printed URL; meanwhile we poll Vault (bounded by a time limit, doubling the
//! interval on `slow_down`). Then the refresh token goes to the creds path and
//! the credkey to `~/.config/htgettoken/credkey-<issuer>-<role>`. Nothing is
//! written before the login completes, so Ctrl-C leaves no partial files.

use crate::env::Clock;
use crate::files::{self, FileError, WriteOptions};
use crate::vault::{Api, OidcLogin, OidcPoll, VaultError};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the OIDC login failed.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// No terminal: a person must do this once.
    #[error(
        "{why}; this needs a person once: run the same command on a terminal ({command}) and complete the login in a web browser"
    )]
    NoTerminal {
        /// What is missing.
        why: String,
        /// The command to run.
        command: String,
    },
    /// Vault refused or could not be reached.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The person did not finish in time.
    #[error(
        "no browser login at {server} within {secs} s; run the command again and complete the login sooner (or raise --oidc-timeout)"
    )]
    Timeout {
        /// The Vault server.
        server: String,
        /// The limit.
        secs: u64,
    },
    /// Vault's answer lacks something the flow needs.
    #[error("OIDC login at {server}: {what}")]
    Incomplete {
        /// The Vault server.
        server: String,
        /// What is missing.
        what: &'static str,
    },
    /// A file problem.
    #[error(transparent)]
    File(#[from] FileError),
}

/// What the flow needs to know.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// Issuer name in Vault.
    pub issuer: String,
    /// Vault role.
    pub role: String,
    /// Host:port for the redirect URI (the Vault alias, port written out).
    pub redirect_host: String,
    /// The command that opens the URL (`None`: only print it).
    pub web_open_command: Option<String>,
    /// Give up after this long.
    pub timeout: Duration,
    /// The `$PATH` the web-open command is searched in.
    pub path_var: Option<std::ffi::OsString>,
    /// The clock the polls wait on.
    pub clock: Clock,
}

/// `auth/oidc-<issuer>/oidc`.
pub fn oidc_path(issuer: &str) -> String {
    format!("auth/oidc-{issuer}/oidc")
}

/// `https://<host>:<port>/v1/auth/oidc-<issuer>/oidc/callback` (htvault-config's allowed redirect).
pub fn redirect_uri(host: &str, port: u16, issuer: &str) -> String {
    format!("https://{host}:{port}/v1/{}/callback", oidc_path(issuer))
}

/// The browser command: the explicit one (empty = none), else `xdg-open`
/// unless `$SSH_CLIENT` is set.
pub fn web_open_command(explicit: Option<&str>, ssh_client: Option<&str>) -> Option<String> {
    match explicit {
        Some(c) => (!c.trim().is_empty()).then(|| c.trim().to_owned()),
        None if ssh_client.is_some_and(|s| !s.is_empty()) => None,
        None => Some("xdg-open".into()),
    }
}

/// The next poll interval: doubled on `slow_down`, kept otherwise.
pub fn next_interval(current: Duration, slow_down: bool) -> Duration {
    if slow_down {
        (current * 2).min(Duration::from_secs(300))
    } else {
        current
    }
}

/// htgettoken's credkey file, `<home>/.config/htgettoken/credkey-<issuer>-<role>`.
pub fn credkey_file(home: &Path, issuer: &str, role: &str) -> PathBuf {
    home.join(".config/htgettoken")
        .join(format!("credkey-{issuer}-{role}"))
}

/// Whether a prompt is allowed: stdin, stdout and stderr are all terminals
/// (igwn-robot-get passes `--nooidc` when stdout is not one).
pub fn interactive(stdin: bool, stdout: bool, stderr: bool) -> bool {
    stdin && stdout && stderr
}

/// [`interactive`] for this process.
pub fn process_is_interactive() -> bool {
    interactive(
        std::io::stdin().is_terminal(),
        std::io::stdout().is_terminal(),
        std::io::stderr().is_terminal(),
    )
}

/// Reads the credkey htgettoken saved (whitespace stripped), if any, through
/// the file-trust rule for `uid` (the effective user): a file planted by another
/// user, writable by group or others, or a link is ignored with a warning.
pub fn read_credkey(home: &Path, issuer: &str, role: &str, uid: u32) -> Option<String> {
    let path = credkey_file(home, issuer, role);
    let bytes = match files::read_trusted(&path, 4096, uid) {
        Ok(b) => b?,
        Err(e) => {
            log::warn!("ignoring the saved credkey: {e}");
            return None;
        }
    };
    let text = String::from_utf8(bytes).ok()?;
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// Saves the credkey where htgettoken keeps it (atomically, 0600, owned by `uid`).
pub fn save_credkey(
    home: &Path,
    issuer: &str,
    role: &str,
    credkey: &str,
    uid: u32,
) -> Result<(), FileError> {
    let path = credkey_file(home, issuer, role);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| FileError::io("cannot create directory", parent, e))?;
    }
    files::write_file(
        &path,
        format!("{credkey}\n").as_bytes(),
        WriteOptions::user_file(0o600, uid),
    )
}

/// 32 random bytes from the operating system (`getrandom`), base64url.
fn client_nonce(server: &str) -> Result<String, OidcError> {
    use aes_gcm::aead::rand_core::RngCore;
    use base64::prelude::*;
    let mut buf = [0u8; 32];
    aes_gcm::aead::OsRng
        .try_fill_bytes(&mut buf)
        .map_err(|_| OidcError::Incomplete {
            server: server.to_owned(),
            what: "the operating system gave no random bytes for the client nonce",
        })?;
    Ok(BASE64_URL_SAFE_NO_PAD.encode(buf))
}

fn open_browser(command: &str, url: &str, path_var: Option<std::ffi::OsString>) {
    let mut words = command.split_whitespace();
    let Some(prog) = words.next() else { return };
    let mut tool = crate::process::Tool::new(prog, words.chain([url]), Duration::ZERO, path_var);
    tool.output = crate::process::Output::Null;
    // The browser may keep running after we exit: started, not waited for.
    if let Err(e) = tool.start_detached() {
        eprintln!("Could not run '{prog}': {e}; please open the URL above yourself");
    }
}

/// Runs the device flow up to a logged-in Vault token (prints to stderr).
pub fn login(client: &dyn Api, s: &OidcSettings) -> Result<OidcLogin, OidcError> {
    let path = oidc_path(&s.issuer);
    let nonce = client_nonce(&client.server())?;
    let redirect = format!("https://{}/v1/{path}/callback", s.redirect_host);
    let start = client.oidc_auth_url(&path, &s.role, &nonce, &redirect)?;
    let state = start.state.clone().ok_or_else(|| OidcError::Incomplete {
        server: client.server(),
        what: "no state in the auth_url answer (old Vault API)",
    })?;
    eprintln!("Complete the authentication at:\n    {}", start.auth_url);
    if let Some(code) = &start.user_code {
        eprintln!("and enter the code: {code}");
    }
    match &s.web_open_command {
        Some(cmd) => open_browser(cmd, &start.auth_url, s.path_var.clone()),
        None => {
            eprintln!("No web open command defined, please copy/paste the above to any web browser")
        }
    }
    eprintln!("Waiting for response in web browser");
    let clock = &s.clock;
    let deadline = clock.mono().after(s.timeout);
    let mut interval = Duration::from_secs(start.poll_interval.unwrap_or(5).clamp(1, 60));
    loop {
        let left = deadline.since(clock.mono());
        if left.is_zero() {
            return Err(OidcError::Timeout {
                server: client.server(),
                secs: s.timeout.as_secs(),
            });
        }
        clock.sleep(interval.min(left));
        match client.oidc_poll(&path, &state, &nonce)? {
            OidcPoll::Pending => {}
            OidcPoll::SlowDown => {
                interval = next_interval(interval, true);
                log::info!(
                    "Vault asked to poll less often: every {} s",
                    interval.as_secs()
                );
            }
            OidcPoll::Done(login) => return Ok(*login),
        }
    }
}

/// After [`login`]: stores the refresh token at `secret/oauth/creds/<issuer>/<credkey>:<role>`.
pub fn store_refresh_token(
    client: &dyn Api,
    login: &OidcLogin,
    issuer: &str,
    credkey: &str,
    role: &str,
) -> Result<(), OidcError> {
    let rt = login
        .refresh_token
        .as_ref()
        .ok_or_else(|| OidcError::Incomplete {
            server: client.server(),
            what: "no oauth2_refresh_token in the login metadata (check the role's oauth2_metadata)",
        })?;
    let path = crate::vault::secret_path(false, issuer, credkey, role);
    client.store_refresh_token(&login.auth.token, &path, issuer, rt)?;
    log::info!("stored the refresh token at {path}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A credkey file another user planted, or one others may rewrite, or a
    /// link, is never used (these cases need root for the chown).
    #[test]
    fn planted_credkey_is_ignored() {
        let home = tempfile::tempdir().unwrap();
        let path = credkey_file(home.path(), "igwn", "robot");
        let read = || {
            read_credkey(
                home.path(),
                "igwn",
                "robot",
                nix::unistd::geteuid().as_raw(),
            )
        };
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "robot\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read().as_deref(), Some("robot"));

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(read(), None);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&path, Some(65534), Some(65534))
            .unwrap_or_else(|e| panic!("chown needs root (run the tests as root): {e}"));
        assert_eq!(read(), None);

        let real = home.path().join("real");
        std::fs::write(&real, "robot\n").unwrap();
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&real, &path).unwrap();
        assert_eq!(read(), None);
    }

    #[test]
    fn decisions() {
        assert_eq!(
            redirect_uri("vault.example", 8200, "igwn"),
            "https://vault.example:8200/v1/auth/oidc-igwn/oidc/callback"
        );
        for (explicit, ssh, want) in [
            (None, None, Some("xdg-open")),
            (None, Some("10.0.0.1 5 22"), None),
            (Some("firefox"), Some("x"), Some("firefox")),
            (Some(""), None, None),
        ] {
            assert_eq!(web_open_command(explicit, ssh).as_deref(), want);
        }
        let s = Duration::from_secs(3);
        assert_eq!(next_interval(s, false), s);
        assert_eq!(next_interval(s, true), Duration::from_secs(6));
        assert_eq!(
            next_interval(Duration::from_secs(200), true),
            Duration::from_secs(300)
        );
        assert_eq!(
            credkey_file(Path::new("/home/a"), "igwn", "robot"),
            PathBuf::from("/home/a/.config/htgettoken/credkey-igwn-robot")
        );
        assert!(interactive(true, true, true));
        assert!(!interactive(true, false, true));
        assert!(!interactive(false, true, true));
    }
}
