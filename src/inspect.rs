//! `robot-credmon token`: show a bearer token file's claims and remaining
//! lifetime, optionally verifying its signature against the issuer's JWKS.

use crate::cli::TokenArgs;
use crate::env::Env;
use crate::files::{self, FileError, discovery};
use crate::token::{self, BearerToken, MAX_TOKEN_BYTES, verify};
use crate::vault::tls;
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

/// Largest issuer document (configuration or JWKS) we read.
const MAX_DOC: u64 = 1024 * 1024;

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
    let tls = tls::client_config_for(args.cafile.clone(), args.capath.clone(), env)
        .map_err(|e| e.to_string())?;
    let http = reqwest::blocking::Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| e.to_string())?;
    let fetch = |url: &str| -> Result<Vec<u8>, String> {
        let resp = http
            .get(url)
            .send()
            .map_err(|e| format!("cannot fetch {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{url} answered {}", resp.status()));
        }
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(resp, MAX_DOC + 1), &mut body)
            .map_err(|e| format!("cannot fetch {url}: {e}"))?;
        if body.len() as u64 > MAX_DOC {
            return Err(format!("{url} sent more than {MAX_DOC} bytes"));
        }
        Ok(body)
    };
    let conf_url = format!(
        "{}/.well-known/openid-configuration",
        iss.trim_end_matches('/')
    );
    let conf: serde_json::Value =
        serde_json::from_slice(&fetch(&conf_url)?).map_err(|e| format!("{conf_url}: {e}"))?;
    let jwks_uri = conf
        .get("jwks_uri")
        .and_then(|u| u.as_str())
        .ok_or_else(|| format!("{conf_url} has no jwks_uri"))?;
    verify::verify_with_jwks(tok, &fetch(jwks_uri)?).map_err(|e| e.to_string())
}
