//! HTCondor: its configuration, read once ([`config`]), and talking to the
//! parent condor_master natively (no HTCondor libraries):
//! the credmon tells the master it is ready (`DC_SET_READY`) after its first
//! complete pass, as HTCondor's Python credmons do with
//! `htcondor.set_ready_state()`; `condor_who` then shows it `Alive`/`Ready`
//! and `condor_who -wait:N IsReady` returns.
//!
//! The message travels over TCP ([`cedar`]) through the family security
//! session that condor_master gives each child in `CONDOR_PRIVATE_INHERIT`
//! ([`inherit`]), to the master's address from `CONDOR_INHERIT` ([`sinful`]),
//! through condor_shared_port when the address names one:
//!
//! 1. (shared port) `SHARED_PORT_CONNECT`, the master's shared-port id, our
//!    name, the deadline and 0, as one message the shared-port daemon consumes;
//! 2. `DC_AUTHENTICATE` and a ClassAd resuming the session (`UseSession`,
//!    `Sid`, `Command = DC_SET_READY`, `CryptoMethods = "AES"`, a `Nonce`,
//!    `ResumeResponse = true`, ...) in plaintext;
//! 3. the master's reply ClassAd (`ReturnCode = "AUTHORIZED"`, or
//!    `"SID_NOT_FOUND"`), in plaintext;
//! 4. AES-GCM from here on: the ClassAd `DaemonPID`, `DaemonName`, `DaemonState`.
//!
//! The master does not expect alive messages (`DC_CHILDALIVE`) from a
//! credmon: it arms no hang timer for it, and a ready message counts as alive
//! (`masterDaemon.cpp`), so none are sent.

pub mod cedar;
pub mod config;
pub mod inherit;
pub mod sinful;

use crate::env::Env;
use cedar::{CedarError, Conn, Value};
use inherit::{InheritError, Parent};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `DC_AUTHENTICATE` (`condor_commands.h`).
pub const DC_AUTHENTICATE: i64 = 60010;
/// `DC_SET_READY`.
pub const DC_SET_READY: i64 = 60043;
/// `SHARED_PORT_CONNECT`.
pub const SHARED_PORT_CONNECT: i64 = 75;

/// Why a message to the master was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// The environment names no usable master or session.
    #[error(transparent)]
    Inherit(#[from] InheritError),
    /// The family session has expired.
    #[error("the family security session expired")]
    Expired,
    /// The session offers no AES-GCM key (old or unusual configuration).
    #[error("the family security session offers no AES crypto method (it offers {0})")]
    NoAes(String),
    /// The master address could not be reached.
    #[error("cannot connect to condor_master at {addr}: {source}")]
    Connect {
        /// The address.
        addr: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The exchange failed.
    #[error("talking to condor_master at {addr}: {source}")]
    Cedar {
        /// The address.
        addr: String,
        /// The failure.
        source: CedarError,
    },
    /// The master refused to resume the session.
    #[error("condor_master at {addr} refused the family security session ({code})")]
    Refused {
        /// The address.
        addr: String,
        /// Its `ReturnCode`.
        code: String,
    },
    /// No secure random numbers.
    #[error("no random numbers available")]
    Random,
}

static PARENT: OnceLock<Result<Parent, InheritError>> = OnceLock::new();

/// Reads `CONDOR_INHERIT` and `CONDOR_PRIVATE_INHERIT` from `env` once and
/// returns `env` without the latter (it holds the family session key); the
/// caller removes it from the process too, so that programs the credmon runs
/// do not see it.
pub fn capture_environment(env: Env) -> Env {
    let inherit = env.var("CONDOR_INHERIT");
    let private = env.var("CONDOR_PRIVATE_INHERIT");
    PARENT.get_or_init(|| inherit::parse(inherit.as_deref(), private.as_deref()));
    env.with_var("CONDOR_PRIVATE_INHERIT", None)
}

/// Whether the credmon was started by condor_master (`CONDOR_INHERIT` was set).
pub fn under_master() -> bool {
    !matches!(PARENT.get(), None | Some(Err(InheritError::NoInherit)))
}

/// The TCP port of the parent master's command address (or its condor_shared_port), if any.
pub fn master_port() -> Option<u16> {
    match PARENT.get() {
        Some(Ok(p)) => Some(p.addr.port),
        _ => None,
    }
}

/// Tells the parent master that daemon `name` (this process) is in `state`
/// (`Ready`), using what [`capture_environment`] found; `now` is the wall clock.
pub fn set_ready(name: &str, state: &str, now: SystemTime) -> Result<(), MasterError> {
    let parent = match PARENT.get() {
        Some(Ok(p)) => p,
        Some(Err(e)) => return Err(e.clone().into()),
        None => return Err(InheritError::NoInherit.into()),
    };
    send_ready(
        parent,
        std::process::id(),
        name,
        state,
        Duration::from_secs(10),
        now,
    )
}

fn random<const N: usize>() -> Result<[u8; N], MasterError> {
    use aes_gcm::aead::rand_core::RngCore;
    let mut b = [0u8; N];
    aes_gcm::aead::OsRng
        .try_fill_bytes(&mut b)
        .map_err(|_| MasterError::Random)?;
    Ok(b)
}

/// Sends `DC_SET_READY` for `pid` to `parent`, each step bounded by
/// `timeout`; `now` (the wall clock) tells whether the session has expired.
pub fn send_ready(
    parent: &Parent,
    pid: u32,
    name: &str,
    state: &str,
    timeout: Duration,
    now: SystemTime,
) -> Result<(), MasterError> {
    let session = &parent.session;
    if let Some(exp) = session.expires
        && exp != 0
    {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if exp <= now {
            return Err(MasterError::Expired);
        }
    }
    if !session.crypto_methods.is_empty() && !session.crypto_methods.iter().any(|m| m == "AES") {
        return Err(MasterError::NoAes(session.crypto_methods.join(",")));
    }
    let addr = parent.addr.to_string();
    let stream = connect(&parent.addr, timeout).map_err(|source| MasterError::Connect {
        addr: addr.clone(),
        source,
    })?;
    let cedar = |source| MasterError::Cedar {
        addr: addr.clone(),
        source,
    };
    let io = |e: std::io::Error| cedar(CedarError::Io(e));
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut conn = Conn::new(stream);
    let nonce = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, random::<33>()?);
    let iv0 = random::<16>()?;
    let version = format!(
        "$CondorVersion: {} Jan 01 2026 BuildID: robot-credmon-{} $",
        session.version.as_deref().unwrap_or("10.0.0"),
        env!("CARGO_PKG_VERSION")
    );
    exchange(
        &mut conn, parent, pid, name, state, &nonce, &version, iv0, timeout,
    )
    .map_err(|e| match e {
        Step::Cedar(e) => cedar(e),
        Step::Refused(code) => MasterError::Refused {
            addr: addr.clone(),
            code,
        },
    })?;
    // The master closes the connection once its handler has run: wait for that
    // (bounded), so that the state is set when this returns.
    let stream = conn.get_mut();
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(stream, &mut rest);
    Ok(())
}

enum Step {
    Cedar(CedarError),
    Refused(String),
}

impl From<CedarError> for Step {
    fn from(e: CedarError) -> Self {
        Step::Cedar(e)
    }
}

impl From<std::io::Error> for Step {
    fn from(e: std::io::Error) -> Self {
        Step::Cedar(CedarError::Io(e))
    }
}

/// The protocol itself, over any stream (tests drive it against a simulator).
#[allow(clippy::too_many_arguments)]
fn exchange<S: std::io::Read + std::io::Write>(
    conn: &mut Conn<S>,
    parent: &Parent,
    pid: u32,
    name: &str,
    state: &str,
    nonce: &str,
    version: &str,
    iv0: [u8; 16],
    timeout: Duration,
) -> Result<(), Step> {
    let session = &parent.session;
    if let Some(id) = &parent.addr.shared_port_id {
        conn.put_int(SHARED_PORT_CONNECT);
        conn.put_str(id);
        conn.put_str("robot-credmon credmon");
        conn.put_int(timeout.as_secs() as i64);
        conn.put_int(0);
        conn.end_of_message_undigested()?;
    }
    conn.put_int(DC_AUTHENTICATE);
    conn.put_ad(&[
        ("UseSession", Value::Str("YES")),
        ("Sid", Value::Str(&session.id)),
        ("Command", Value::Int(DC_SET_READY)),
        ("ConnectSinful", Value::Str(&parent.addr.text)),
        ("CryptoMethods", Value::Str("AES")),
        ("Nonce", Value::Str(nonce)),
        ("ResumeResponse", Value::Bool(true)),
        ("RemoteVersion", Value::Str(version)),
    ]);
    conn.end_of_message()?;
    conn.read_message()?;
    let reply = conn.get_ad()?;
    let code = reply
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("ReturnCode"))
        .map(|(_, v)| v.trim_matches('"').to_owned())
        .unwrap_or_default();
    if code != "AUTHORIZED" {
        return Err(Step::Refused(if code.is_empty() {
            "no return code".into()
        } else {
            code
        }));
    }
    conn.start_aes(&cedar::derive_key(&session.key), iv0);
    conn.put_ad(&[
        ("DaemonPID", Value::Int(i64::from(pid))),
        ("DaemonName", Value::Str(name)),
        ("DaemonState", Value::Str(state)),
    ]);
    conn.end_of_message()?;
    Ok(())
}

fn connect(addr: &sinful::Sinful, timeout: Duration) -> std::io::Result<TcpStream> {
    let mut last = None;
    for a in (addr.host.as_str(), addr.port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the address resolves to nothing")))
}

#[cfg(test)]
mod tests;
