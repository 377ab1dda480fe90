//! Running the real `robot-credmon` binary from tests, with a clean environment.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_robot-credmon"))
}

/// A `Command` for the binary with a minimal environment: no inherited
/// Kerberos, bearer-token or CA variables, HOME in `home`.
pub fn robot(home: &Path) -> Command {
    let mut c = Command::new(bin());
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("NO_PROXY", "localhost,127.0.0.1");
    c
}

/// Output of a finished run, with stdout and stderr as text.
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs the command to completion (bounded by the binary's own timeouts).
pub fn run(mut c: Command) -> Run {
    c.output().expect("cannot run robot-credmon").into()
}

/// An unsigned JWT with these claims (the tests that need signatures use the test Vault's).
pub fn unsigned_jwt(claims: &serde_json::Value) -> String {
    use base64::prelude::*;
    let h = BASE64_URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let p = BASE64_URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{h}.{p}.c2lnbmF0dXJl")
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
