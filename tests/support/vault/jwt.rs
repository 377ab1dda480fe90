//! RS256 JWTs for the fake issuer, signed with one RSA-2048 key per process.
//!
//! The key is generated once (aws-lc via rcgen) and cached in a `OnceLock`; signing
//! reuses the parsed key, so minting a token costs one RSA signature.

use std::sync::OnceLock;

use base64::prelude::*;
use rcgen::{KeyPair, PKCS_RSA_SHA256, PublicKeyData, RsaKeySize, SigningKey};
use serde_json::{Value, json};

/// Key id (`kid`) of the test signing key.
pub const KEY_ID: &str = "robot-credmon-test-rs256";

struct JwtKey {
    pair: KeyPair,
    n: String,
    e: String,
    header_b64: String,
}

static KEY: OnceLock<Result<JwtKey, String>> = OnceLock::new();

fn key() -> Result<&'static JwtKey, String> {
    KEY.get_or_init(|| {
        let pair = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048)
            .map_err(|e| format!("could not generate RSA key: {e}"))?;
        let (n, e) = rsa_public_components(pair.der_bytes())?;
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": KEY_ID});
        Ok(JwtKey {
            pair,
            n: BASE64_URL_SAFE_NO_PAD.encode(n),
            e: BASE64_URL_SAFE_NO_PAD.encode(e),
            header_b64: BASE64_URL_SAFE_NO_PAD.encode(header.to_string()),
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Generates the process-wide key now (it is otherwise made on first use).
pub fn warm_up() -> Result<(), String> {
    key().map(|_| ())
}

/// Signs `claims` as a compact RS256 JWT.
pub fn sign(claims: &Value) -> Result<String, String> {
    let key = key()?;
    let input = format!(
        "{}.{}",
        key.header_b64,
        BASE64_URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = key
        .pair
        .sign(input.as_bytes())
        .map_err(|e| format!("RSA signing failed: {e}"))?;
    Ok(format!("{input}.{}", BASE64_URL_SAFE_NO_PAD.encode(sig)))
}

/// The JWKS document with the public half of the signing key.
pub fn jwks() -> Result<Value, String> {
    let key = key()?;
    Ok(json!({"keys": [{
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": KEY_ID, "n": key.n, "e": key.e,
    }]}))
}

/// Splits a DER `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`
/// into unsigned big-endian modulus and exponent.
fn rsa_public_components(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let (seq, _) = der_element(der, 0x30)?;
    let (n, rest) = der_element(seq, 0x02)?;
    let (e, _) = der_element(rest, 0x02)?;
    let strip = |v: &[u8]| {
        v.iter()
            .skip_while(|b| **b == 0)
            .copied()
            .collect::<Vec<u8>>()
    };
    Ok((strip(n), strip(e)))
}

/// One DER TLV with the expected tag: returns (contents, remainder).
fn der_element(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), String> {
    let bad = || "malformed RSA public key".to_string();
    let (&t, rest) = input.split_first().ok_or_else(bad)?;
    let (&first, rest) = rest.split_first().ok_or_else(bad)?;
    if t != tag {
        return Err(bad());
    }
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return Err(bad());
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[count..])
    };
    if rest.len() < len {
        return Err(bad());
    }
    Ok(rest.split_at(len))
}
