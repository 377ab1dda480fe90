//! The "a person must log in" marker beside the token file:
//! `.<file>.login-needed`, written (0600, atomically) when `get` ends needing
//! a person ([`super::GetError::NeedsLogin`]) and removed by the next run
//! that ends with a valid token. `check` reads it and is CRITICAL with the
//! command it names, even while the old token still has time left.

use super::{GetError, Outcome};
use crate::env::Env;
use crate::files::{SafeDir, WriteOptions};
use crate::token;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Largest marker read.
const MAX_BYTES: usize = 16 * 1024;

/// What the marker holds (no secrets: paths, the server, the credkey).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// When a run first ended needing a person (seconds since the epoch).
    pub since: i64,
    /// The run's error line: what Vault said and the command to run.
    pub message: String,
}

/// The marker's name for token file `name`.
pub fn marker_name(name: &str) -> String {
    format!(".{name}.login-needed")
}

/// Writes or removes the marker of `outfile` after a run that ended in `result`
/// (best effort: a marker that cannot be written is a warning).
pub fn mark(outfile: &Path, result: &Result<Outcome, GetError>, env: &Env) {
    let Ok((dir, name)) = SafeDir::open_parent(outfile) else {
        return;
    };
    let marker = marker_name(&name);
    match result {
        Ok(_) => {
            if let Err(e) = dir.remove(&marker) {
                log::warn!("{e}");
            }
        }
        Err(e @ GetError::NeedsLogin { .. }) => {
            let uid = env.euid();
            let since = read_in(&dir, &marker, uid)
                .map_or_else(|| token::unix_seconds(env.now()), |m| m.since);
            let m = Marker {
                since,
                message: e.to_string(),
            };
            let text = serde_json::to_string(&m).unwrap_or_default() + "\n";
            if let Err(e) = dir.write_atomic(
                &marker,
                text.as_bytes(),
                WriteOptions::user_file(0o600, uid),
            ) {
                log::warn!("{e}");
            }
        }
        Err(_) => {}
    }
}

fn read_in(dir: &SafeDir, marker: &str, uid: u32) -> Option<Marker> {
    let (bytes, _) = dir.read_trusted(marker, MAX_BYTES, uid).ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// The marker of token file `path`, read under the trust rule for `uid`;
/// `None` when there is none (or it cannot be believed).
pub fn read(path: &Path, uid: u32) -> Option<Marker> {
    let (dir, name) = SafeDir::open_parent(path).ok()?;
    read_in(&dir, &marker_name(&name), uid)
}
