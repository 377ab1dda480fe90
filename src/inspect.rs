//! `robot-credmon token`: show a bearer token file's claims and remaining
//! lifetime, optionally verifying its signature against the issuer's JWKS
//! (fetched through the Vault HTTP layer, the crate's one HTTP client).

use crate::cli::TokenArgs;
use crate::env::Env;
use crate::files::{self, FileError, discovery};
use crate::token::{self, BearerToken, MAX_TOKEN_BYTES, verify};
use crate::vault::{Connector, Https, Limits, ServerAddress, Trust, VaultError};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a token file could not be inspected.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// Reading the file failed.
    #[error(transparent)]
    File(#[from] FileError),
    /// There is no file.
    #[error("there is no token file '{0}'")]
    Missing(PathBuf),
    /// The file does not hold a token.
    #[error("'{path}' does not hold a bearer token: {why}")]
    NotAToken {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The signature check could not run or failed.
    #[error("cannot verify the token in '{path}': {why}")]
    Verify {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
}

/// The verdict of `token`: printed output plus whether the token is good enough.
#[derive(Debug)]
pub struct Report {
    /// Text for stdout.
    pub text: String,
    /// True when the token is expired or has less than `--minsecs` left.
    pub stale: bool,
}

/// Reads and parses a token file, never following a link.
pub fn load(path: &Path) -> Result<BearerToken, InspectError> {
    let bytes = files::read_file(path, MAX_TOKEN_BYTES + 2)?
        .ok_or_else(|| InspectError::Missing(path.to_owned()))?;
    BearerToken::from_bytes(&bytes).map_err(|e| InspectError::NotAToken {
        path: path.to_owned(),
        why: e.to_string(),
    })
}

/// Runs `token` in the environment `env` (default file, clock).
pub fn run(args: &TokenArgs, env: &Env) -> Result<Report, InspectError> {
    let path = args
        .file
        .clone()
        .unwrap_or_else(|| discovery::bearer_token_file(|k| env.var(k), env.euid()));
    let tok = load(&path)?;
    let now = env.now();
    let verified = if args.verify {
        verify_online(&tok, args, env).map_err(|why| InspectError::Verify {
            path: path.clone(),
            why,
        })?;
        Some(true)
    } else {
        None
    };
    let remaining = tok.remaining(now);
    let stale = !tok.is_fresh(now, args.minsecs);
    let text = if args.json {
        let mut v = serde_json::to_value(tok.claims()).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("file".into(), path.display().to_string().into());
            obj.insert("remaining_seconds".into(), remaining.into());
            obj.insert("valid".into(), (!stale).into());
            if let Some(ok) = verified {
                obj.insert("signature_verified".into(), ok.into());
            }
        }
        format!("{v}\n")
    } else {
        let mut s = format!("token file: {}\n", path.display());
        for (k, v) in token::describe_claims(&tok, now) {
            s.push_str(&format!("{k:<10} {v}\n"));
        }
        let left = remaining.map_or("unknown (no exp claim)".into(), token::format_remaining);
        s.push_str(&format!("remaining  {left}\n"));
        if verified.is_some() {
            s.push_str("signature  verified with the issuer's published keys\n");
        }
        s
    };
    Ok(Report { text, stale })
}

/// Fetches `url` (https) through the one HTTP client type, [`crate::vault::VaultClient`]:
/// the same trust, pinning, time limits and body limit as Vault requests.
fn fetch(url: &str, trust: &Trust, env: &Env) -> Result<Vec<u8>, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("'{url}' is not a URL: {e}"))?;
    let host = match (parsed.scheme(), parsed.host_str()) {
        ("https", Some(h)) => h.trim_start_matches('[').trim_end_matches(']').to_owned(),
        _ => return Err(format!("'{url}' is not an https URL")),
    };
    let server = ServerAddress {
        host,
        port: parsed.port_or_known_default().unwrap_or(443),
    };
    let limits = Limits {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(15),
        ..Limits::default()
    };
    let client = Https::new(env)
        .client(&server, None, trust, &limits)
        .map_err(|e| e.to_string())?;
    let path = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_owned(),
    };
    client.fetch_document(&path).map_err(|e| match e {
        VaultError::Status { status, .. } => format!("{url} answered {status}"),
        VaultError::Transport { detail, .. } => format!("cannot fetch {url}: {detail}"),
        other => format!("cannot fetch {url}: {other}"),
    })
}

/// Downloads the issuer's JWKS (`iss` + `/.well-known/openid-configuration`) and verifies.
fn verify_online(tok: &BearerToken, args: &TokenArgs, env: &Env) -> Result<(), String> {
    let iss = tok
        .claims()
        .iss
        .as_deref()
        .ok_or("the token has no iss claim")?;
    if !iss.starts_with("https://") {
        return Err(format!("the issuer '{iss}' is not an https URL"));
    }
    let trust = Https::new(env)
        .share(Trust::Files(args.cafile.clone(), args.capath.clone()))
        .map_err(|e| e.to_string())?;
    let conf_url = format!(
        "{}/.well-known/openid-configuration",
        iss.trim_end_matches('/')
    );
    let conf: serde_json::Value = serde_json::from_slice(&fetch(&conf_url, &trust, env)?)
        .map_err(|e| format!("{conf_url}: {e}"))?;
    let jwks_uri = conf
        .get("jwks_uri")
        .and_then(|u| u.as_str())
        .ok_or_else(|| format!("{conf_url} has no jwks_uri"))?;
    verify::verify_with_jwks(tok, &fetch(jwks_uri, &trust, env)?).map_err(|e| e.to_string())
}
