//! A credential's `.top` (the Vault token file the storer wrote): parsing,
//! reading through the user's directory handle, and rewriting its token.

use super::{Ctx, RefreshError};
use crate::credmon::config::MAX_TOP_BYTES;
use crate::files::SafeDir;
use crate::vault::VaultToken;
use nix::sys::stat::FileStat;

/// A parsed `.top`.
pub struct Top {
    pub(super) json: serde_json::Map<String, serde_json::Value>,
    pub(super) vault_token: Option<VaultToken>,
    pub(super) vault_url: String,
    pub(super) scopes: Option<String>,
    pub(super) audience: Option<String>,
}

/// A string, or a list of strings joined with commas.
fn string_field(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(a) => Some(
            a.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => None,
    }
}

/// Why a `.top` cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopError {
    /// The file is not a JSON object.
    #[error("not a JSON object")]
    NotJson,
    /// It has no `vault_url` string.
    #[error("no vault_url")]
    NoUrl,
    /// Its `vault_token` is not a token.
    #[error("vault_token is not a token")]
    BadToken,
}

/// Parses a `.top` (a JSON object with `vault_url` and, usually, `vault_token`).
pub fn parse_top(bytes: &[u8]) -> Result<Top, TopError> {
    let json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes).map_err(|_| TopError::NotJson)?;
    let vault_url = json
        .get("vault_url")
        .and_then(|v| v.as_str())
        .ok_or(TopError::NoUrl)?
        .to_owned();
    let vault_token = match json.get("vault_token") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .and_then(VaultToken::new)
                .ok_or(TopError::BadToken)?,
        ),
    };
    Ok(Top {
        scopes: string_field(json.get("scopes")),
        audience: string_field(json.get("audience")),
        json,
        vault_token,
        vault_url,
    })
}

/// Reads and checks a `.top`: regular, single link, at most 64 KiB. `Ok(None)` when absent.
pub(super) fn read_top(
    dir: &SafeDir,
    stem: &str,
    owner: u32,
) -> Result<Option<(Top, FileStat)>, RefreshError> {
    match dir.read_trusted(&format!("{stem}.top"), MAX_TOP_BYTES, owner) {
        Ok(None) => Ok(None),
        Ok(Some((bytes, st))) => parse_top(&bytes).map(|t| Some((t, st))).map_err(|why| {
            RefreshError::wait(format!(
                "{}: {why}",
                dir.path().join(format!("{stem}.top")).display()
            ))
        }),
        Err(e) => Err(RefreshError::wait(e.to_string())),
    }
}

/// Writes `token` into `<stem>.top` (keeping its other fields) as root 0600.
pub(super) fn store_vault_token(
    ctx: &Ctx,
    udir: &SafeDir,
    stem: &str,
    token: &VaultToken,
) -> Result<(), RefreshError> {
    let (mut top, _) = read_top(udir, stem, ctx.euid())?
        .ok_or_else(|| RefreshError::retry("file", format!("{stem}.top is gone")))?;
    top.json.insert(
        "vault_token".into(),
        serde_json::Value::String(token.expose().to_owned()),
    );
    let mut bytes =
        serde_json::to_vec(&top.json).map_err(|e| RefreshError::retry("file", e.to_string()))?;
    bytes.push(b'\n');
    udir.write_atomic(&format!("{stem}.top"), &bytes, ctx.top_opts())
        .map_err(|e| RefreshError::file(&e))
}
