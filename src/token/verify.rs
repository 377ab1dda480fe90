//! Signature verification of a bearer token against its issuer's JWKS.
//!
//! The network part (discovery document, JWKS download) lives with the
//! caller; this module only checks bytes it is given.

use super::BearerToken;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};

/// Why a token's signature could not be verified.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The JWKS document is not a valid key set.
    #[error("the issuer's key set is not valid JSON Web Keys: {0}")]
    BadJwks(String),
    /// The token header could not be read or names an algorithm we refuse.
    #[error("the token header is not acceptable: {0}")]
    BadHeader(String),
    /// No key with the token's `kid`.
    #[error("the issuer publishes no key with id '{0}'")]
    UnknownKey(String),
    /// The signature or the time claims do not check out.
    #[error("signature check failed: {0}")]
    Invalid(String),
}

const ALLOWED: [Algorithm; 4] = [
    Algorithm::RS256,
    Algorithm::ES256,
    Algorithm::RS384,
    Algorithm::ES384,
];

/// Verifies `token` with a key from `jwks`; audience is not checked, `exp` is.
pub fn verify_with_jwks(token: &BearerToken, jwks: &[u8]) -> Result<(), VerifyError> {
    let set: JwkSet =
        serde_json::from_slice(jwks).map_err(|e| VerifyError::BadJwks(e.to_string()))?;
    let header = jsonwebtoken::decode_header(token.expose())
        .map_err(|e| VerifyError::BadHeader(e.to_string().to_lowercase()))?;
    if !ALLOWED.contains(&header.alg) {
        return Err(VerifyError::BadHeader(format!(
            "algorithm {:?} is not allowed",
            header.alg
        )));
    }
    let jwk = match header.kid.as_deref() {
        Some(kid) => set
            .find(kid)
            .ok_or_else(|| VerifyError::UnknownKey(kid.to_owned()))?,
        None if set.keys.len() == 1 => &set.keys[0],
        None => {
            return Err(VerifyError::BadHeader(
                "no key id (kid) and several keys".into(),
            ));
        }
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| VerifyError::BadJwks(e.to_string()))?;
    let mut validation = Validation::new(header.alg);
    validation.validate_aud = false;
    jsonwebtoken::decode::<serde_json::Value>(token.expose(), &key, &validation)
        .map(|_| ())
        .map_err(|e| VerifyError::Invalid(e.to_string().to_lowercase()))
}
