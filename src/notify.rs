//! systemd's `Type=notify` protocol (`sd_notify(3)`): one datagram of
//! `KEY=VALUE` lines to the unix socket named by `$NOTIFY_SOCKET`.
//!
//! The credmon holds a [`Systemd`], built from its [`Env`]: it calls
//! [`Systemd::ready`] after its first full pass, [`Systemd::watchdog`] on
//! every turn of its loop (at least every [`Systemd::watchdog_interval`]),
//! [`Systemd::status`] to say what it is doing and [`Systemd::stopping`] when
//! it exits. Without `$NOTIFY_SOCKET` (not started by systemd, or by
//! `condor_master`) they do nothing. Failures to notify are logged, never fatal.

use crate::env::Env;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// Why a notification could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// `$NOTIFY_SOCKET` is neither an absolute path nor an abstract name (`@name`).
    #[error("NOTIFY_SOCKET '{0}' is not an absolute path or an abstract socket name")]
    BadAddress(String),
    /// Sending failed.
    #[error("cannot notify systemd at '{socket}': {source}")]
    Send {
        /// The socket.
        socket: String,
        /// The underlying error.
        source: io::Error,
    },
}

/// Where notifications go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Address {
    /// A socket file.
    Path(PathBuf),
    /// A Linux abstract socket name (without the leading `@`).
    Abstract(Vec<u8>),
}

/// A connection to the service manager, or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notifier {
    address: Option<Address>,
    raw: String,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET` read through `env`; no socket means notifications are dropped.
    pub fn from_vars(env: impl Fn(&str) -> Option<String>) -> Result<Self, NotifyError> {
        let Some(raw) = env("NOTIFY_SOCKET").filter(|v| !v.is_empty()) else {
            return Ok(Self::disabled());
        };
        let address = if let Some(name) = raw.strip_prefix('@') {
            Address::Abstract(name.as_bytes().to_vec())
        } else if raw.starts_with('/') {
            Address::Path(PathBuf::from(&raw))
        } else {
            return Err(NotifyError::BadAddress(raw));
        };
        Ok(Notifier {
            address: Some(address),
            raw,
        })
    }

    /// A notifier that sends nothing.
    pub fn disabled() -> Self {
        Notifier {
            address: None,
            raw: String::new(),
        }
    }

    /// Whether notifications go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.address.is_some()
    }

    /// Sends `KEY=VALUE` lines as one datagram (nothing without a socket).
    pub fn send(&self, lines: &[&str]) -> Result<(), NotifyError> {
        let Some(address) = &self.address else {
            return Ok(());
        };
        let mut msg = lines.join("\n");
        msg.push('\n');
        let err = |source| NotifyError::Send {
            socket: self.raw.clone(),
            source,
        };
        let sock = UnixDatagram::unbound().map_err(err)?;
        match address {
            Address::Path(p) => sock.send_to(msg.as_bytes(), p).map_err(err)?,
            Address::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).map_err(err)?;
                sock.send_to_addr(msg.as_bytes(), &addr).map_err(err)?
            }
        };
        Ok(())
    }

    /// `READY=1`, with a status line.
    pub fn ready(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&["READY=1", &status_line(status)])
    }

    /// `WATCHDOG=1`: the loop is alive.
    pub fn watchdog(&self) -> Result<(), NotifyError> {
        self.send(&["WATCHDOG=1"])
    }

    /// `STOPPING=1`.
    pub fn stopping(&self) -> Result<(), NotifyError> {
        self.send(&["STOPPING=1"])
    }

    /// `STATUS=...`: free text shown by `systemctl status`.
    pub fn status(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&[&status_line(status)])
    }
}

/// `STATUS=<text>` on one line.
fn status_line(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("STATUS={clean}")
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, when it is set
/// and `$WATCHDOG_PID` (if set) is `pid`.
pub fn watchdog_interval_from(env: impl Fn(&str) -> Option<String>, pid: u32) -> Option<Duration> {
    let usec = env("WATCHDOG_USEC")?.trim().parse::<u64>().ok()?;
    if usec == 0 {
        return None;
    }
    if let Some(p) = env("WATCHDOG_PID")
        && p.trim().parse::<u32>().ok() != Some(pid)
    {
        return None;
    }
    Some(Duration::from_micros(usec / 2))
}

/// The service manager as the daemon sees it: where notifications go
/// (`$NOTIFY_SOCKET`) and how often the watchdog wants to hear from us.
/// Failures to notify are logged, never fatal.
#[derive(Debug, Clone)]
pub struct Systemd {
    notifier: Notifier,
    watchdog: Option<Duration>,
}

impl Systemd {
    /// From `env`'s `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`.
    pub fn from_env(env: &Env) -> Self {
        let notifier = Notifier::from_vars(|k| env.var(k)).unwrap_or_else(|e| {
            log::warn!("{e}; not notifying systemd");
            Notifier::disabled()
        });
        Systemd {
            notifier,
            watchdog: watchdog_interval_from(|k| env.var(k), std::process::id()),
        }
    }

    /// No service manager.
    pub fn disabled() -> Self {
        Systemd {
            notifier: Notifier::disabled(),
            watchdog: None,
        }
    }

    /// How often to send `WATCHDOG=1`; `None` when systemd does not watch us.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Tells systemd the service is up (after the first full pass), with a status line.
    pub fn ready(&self, status: &str) {
        logged(self.notifier.ready(status));
    }

    /// Tells systemd's watchdog the loop is alive.
    pub fn watchdog(&self) {
        logged(self.notifier.watchdog());
    }

    /// Tells systemd the service is shutting down.
    pub fn stopping(&self) {
        logged(self.notifier.stopping());
    }

    /// Updates the status line `systemctl status` shows.
    pub fn status(&self, text: &str) {
        logged(self.notifier.status(text));
    }
}

fn logged(result: Result<(), NotifyError>) {
    if let Err(e) = result {
        log::warn!("{e}");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env_of(vars: &[(&'static str, String)]) -> impl Fn(&str) -> Option<String> {
        let vars = vars.to_vec();
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    }

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn sends_ready_watchdog_stopping_to_a_socket_file() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n =
            Notifier::from_vars(env_of(&[("NOTIFY_SOCKET", path.display().to_string())])).unwrap();
        assert!(n.is_enabled());
        n.ready("3 credentials\nfresh").unwrap();
        assert_eq!(recv(&server), "READY=1\nSTATUS=3 credentials fresh\n");
        n.watchdog().unwrap();
        assert_eq!(recv(&server), "WATCHDOG=1\n");
        n.status("refreshing alice/igwn").unwrap();
        assert_eq!(recv(&server), "STATUS=refreshing alice/igwn\n");
        n.stopping().unwrap();
        assert_eq!(recv(&server), "STOPPING=1\n");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!(
            "robot-credmon-test-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        );
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n = Notifier::from_vars(env_of(&[("NOTIFY_SOCKET", format!("@{name}"))])).unwrap();
        n.watchdog().unwrap();
        assert_eq!(recv(&server), "WATCHDOG=1\n");
    }

    #[test]
    fn without_a_socket_nothing_is_sent_and_bad_ones_are_reported() {
        let n = Notifier::from_vars(env_of(&[])).unwrap();
        assert!(!n.is_enabled());
        n.ready("x").unwrap();
        assert_eq!(
            Notifier::from_vars(env_of(&[("NOTIFY_SOCKET", String::new())])).unwrap(),
            n
        );
        let err = Notifier::from_vars(env_of(&[("NOTIFY_SOCKET", "relative".into())])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "NOTIFY_SOCKET 'relative' is not an absolute path or an abstract socket name"
        );
        let t = tempfile::tempdir().unwrap();
        let gone = t.path().join("gone.sock");
        let n =
            Notifier::from_vars(env_of(&[("NOTIFY_SOCKET", gone.display().to_string())])).unwrap();
        let err = n.stopping().unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("cannot notify systemd at '{}': ", gone.display())),
            "{err}"
        );
    }

    #[test]
    fn watchdog_interval_table() {
        let s = |v: &str| v.to_owned();
        // (WATCHDOG_USEC, WATCHDOG_PID, our pid, interval)
        for (usec, wpid, pid, want) in [
            (None, None, 7, None),
            (Some(s("30000000")), None, 7, Some(Duration::from_secs(15))),
            (
                Some(s("30000000")),
                Some(s("7")),
                7,
                Some(Duration::from_secs(15)),
            ),
            (Some(s("30000000")), Some(s("8")), 7, None),
            (Some(s("0")), None, 7, None),
            (Some(s("soon")), None, 7, None),
        ] {
            let mut vars = Vec::new();
            if let Some(u) = usec.clone() {
                vars.push(("WATCHDOG_USEC", u));
            }
            if let Some(p) = wpid.clone() {
                vars.push(("WATCHDOG_PID", p));
            }
            assert_eq!(
                watchdog_interval_from(env_of(&vars), pid),
                want,
                "{usec:?} {wpid:?}"
            );
        }
    }
}
