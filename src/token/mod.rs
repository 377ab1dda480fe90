//! Bearer tokens (SciTokens / WLCG JWTs): a secret newtype that never prints
//! itself, claim decoding without verification, remaining-lifetime arithmetic,
//! and optional signature verification against the issuer's JWKS.

pub mod accept;
pub mod verify;

use serde::Deserialize;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest bearer token we accept, from a file or from Vault.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// Why a byte string is not a usable bearer token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Nothing but white space.
    #[error("the token is empty")]
    Empty,
    /// Larger than [`MAX_TOKEN_BYTES`].
    #[error("the token is larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    /// Characters outside RFC 6750's b64token alphabet.
    #[error("the token contains characters not allowed in a bearer token")]
    BadCharacters,
    /// Not three base64url parts with a JSON payload.
    #[error("the token is not a JWT ({0})")]
    NotJwt(String),
}

/// A bearer token: opaque secret text plus its decoded (unverified) claims.
///
/// Neither `Display` nor `Debug` reveal the token.
#[derive(Clone)]
pub struct BearerToken {
    text: String,
    claims: Claims,
}

impl Drop for BearerToken {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.text);
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerToken")
            .field("text", &"***")
            .field("claims", &self.claims)
            .finish()
    }
}

impl BearerToken {
    /// Parses a token, trimming surrounding white space, and decodes its claims.
    pub fn parse(raw: &str) -> Result<Self, TokenError> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(TokenError::Empty);
        }
        if text.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        if !is_b64token(text) {
            return Err(TokenError::BadCharacters);
        }
        let claims = jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(text)
            .map_err(|e| TokenError::NotJwt(e.to_string().to_lowercase()))?;
        Ok(Self {
            text: text.to_owned(),
            claims,
        })
    }

    /// Parses the contents of a token file.
    pub fn from_bytes(raw: &[u8]) -> Result<Self, TokenError> {
        if raw.len() > MAX_TOKEN_BYTES + 2 {
            return Err(TokenError::TooLarge);
        }
        let s = std::str::from_utf8(raw).map_err(|_| TokenError::BadCharacters)?;
        Self::parse(s)
    }

    /// The secret text. Callers must not log it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The decoded, unverified claims.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The file contents we write: the token and one newline.
    pub fn file_contents(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.text.len() + 1);
        v.extend_from_slice(self.text.as_bytes());
        v.push(b'\n');
        v
    }

    /// Seconds left before `exp` at `now`; negative when expired, `None`
    /// without `exp` or when `exp` is outside 1970..=9999.
    pub fn remaining(&self, now: SystemTime) -> Option<i64> {
        self.claims
            .exp
            .filter(|e| (0..=accept::MAX_EPOCH).contains(e))
            .and_then(|exp| exp.checked_sub(unix_seconds(now)))
    }

    /// Whether the token is usable ([`accept::usable`]) and has strictly more
    /// than `min_secs` left at `now`.
    pub fn is_fresh(&self, now: SystemTime, min_secs: u64) -> bool {
        accept::usable(&self.claims, unix_seconds(now))
            .is_ok_and(|left| left > i64::try_from(min_secs).unwrap_or(i64::MAX))
    }
}

/// RFC 6750 §2.1 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// The claims we show and reason about; others are kept in `extra`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct Claims {
    /// Issuer URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audience: a string or a list of strings.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub aud: Vec<String>,
    /// Space-separated scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Expiry, seconds since the epoch.
    #[serde(default, deserialize_with = "lenient_secs")]
    pub exp: Option<i64>,
    /// Issued-at, seconds since the epoch.
    #[serde(
        default,
        deserialize_with = "lenient_secs",
        skip_serializing_if = "Option::is_none"
    )]
    pub iat: Option<i64>,
    /// Not-before, seconds since the epoch.
    #[serde(
        default,
        deserialize_with = "lenient_secs",
        skip_serializing_if = "Option::is_none"
    )]
    pub nbf: Option<i64>,
    /// Unique token identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Every other claim, unverified.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Aud {
        One(String),
        Many(Vec<String>),
        Null,
    }
    Ok(match Option::<Aud>::deserialize(d)? {
        Some(Aud::One(s)) => vec![s],
        Some(Aud::Many(v)) => v,
        Some(Aud::Null) | None => Vec::new(),
    })
}

fn lenient_secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    })
}

/// Seconds since the Unix epoch (negative before it).
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// The instant `secs` seconds after the Unix epoch (before it when
/// negative), clamped to what the system's time type can hold.
pub fn time_of(secs: i64) -> SystemTime {
    let d = Duration::from_secs(secs.unsigned_abs());
    let t = if secs >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    };
    t.unwrap_or(if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(i64::MAX.unsigned_abs() / 2)
    } else {
        UNIX_EPOCH
    })
}

/// Formats epoch seconds as an RFC 3339 UTC time, e.g. `2026-11-26T15:00:00Z`;
/// times outside 1970..=9999 as the bare number with a note.
pub fn format_utc(secs: i64) -> String {
    match u64::try_from(secs) {
        Ok(s) if secs <= accept::MAX_EPOCH => {
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(s)).to_string()
        }
        Ok(_) => format!("{secs} (after the year 9999)"),
        Err(_) => format!("{secs} (before 1970)"),
    }
}

/// `text` with control characters (and other non-printing ones) escaped, for
/// showing claims or server text on a terminal or in a log.
pub fn escape_control(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Formats a number of seconds compactly: `2h13m`, `45s`, `-5m0s` for the past.
pub fn format_remaining(secs: i64) -> String {
    let sign = if secs < 0 { "-" } else { "" };
    let s = secs.unsigned_abs();
    let (d, h, m, sec) = (s / 86400, (s % 86400) / 3600, (s % 3600) / 60, s % 60);
    if d > 0 {
        format!("{sign}{d}d{h}h")
    } else if h > 0 {
        format!("{sign}{h}h{m:02}m")
    } else if m > 0 {
        format!("{sign}{m}m{sec:02}s")
    } else {
        format!("{sign}{sec}s")
    }
}

/// Human-readable claim lines (`iss sub aud scope exp iat nbf`), for `-vv` and `token`.
pub fn describe_claims(token: &BearerToken, now: SystemTime) -> Vec<(String, String)> {
    let c = token.claims();
    let now_s = unix_seconds(now);
    let mut out = Vec::new();
    let mut push = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            out.push((k.to_owned(), v));
        }
    };
    push("iss", c.iss.as_deref().map(escape_control));
    push("sub", c.sub.as_deref().map(escape_control));
    push(
        "aud",
        (!c.aud.is_empty()).then(|| escape_control(&c.aud.join(" "))),
    );
    push("scope", c.scope.as_deref().map(escape_control));
    let when = |t: i64| {
        let rel = match t.checked_sub(now_s) {
            _ if !(0..=accept::MAX_EPOCH).contains(&t) => "out of range".to_owned(),
            Some(d) if d >= 0 => format!("in {}", format_remaining(d)),
            Some(d) => format!("{} ago", format_remaining(d.saturating_neg())),
            None => "out of range".to_owned(),
        };
        format!("{} ({rel})", format_utc(t))
    };
    push("exp", c.exp.map(when));
    push("iat", c.iat.map(when));
    push("nbf", c.nbf.map(when));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use base64::prelude::*;

    pub(crate) fn jwt(payload: &serde_json::Value) -> String {
        let h = BASE64_URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let p = BASE64_URL_SAFE_NO_PAD.encode(payload.to_string());
        format!("{h}.{p}.c2ln")
    }

    #[test]
    fn parses_claims_and_trims() {
        let t = jwt(
            &serde_json::json!({"iss":"https://i","sub":"s","aud":"a","exp":2000,"iat":1000,"x":1}),
        );
        let tok = BearerToken::parse(&format!("  {t}\n")).unwrap();
        assert_eq!(tok.expose(), t);
        assert_eq!(tok.claims().aud, vec!["a"]);
        assert_eq!(tok.claims().exp, Some(2000));
        assert_eq!(tok.file_contents(), format!("{t}\n").into_bytes());
        assert!(tok.claims().extra.contains_key("x"));
    }

    #[test]
    fn freshness_table() {
        let tok = BearerToken::parse(&jwt(&serde_json::json!({"exp": 10_000}))).unwrap();
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        // (now, minsecs, fresh?)
        for (now, min, fresh) in [
            (0, 3600, true),
            (6399, 3600, true),
            (6400, 3600, false),
            (9939, 0, true),
            // Within the safety margin: not fresh, whatever --minsecs says.
            (9940, 0, false),
            (9999, 0, false),
            (10_000, 0, false),
            (20_000, 0, false),
        ] {
            assert_eq!(tok.is_fresh(at(now), min), fresh, "now={now} min={min}");
        }
        let no_exp = BearerToken::parse(&jwt(&serde_json::json!({"sub": "x"}))).unwrap();
        assert!(!no_exp.is_fresh(at(0), 0));
    }

    #[test]
    fn rejects_bad_tokens() {
        assert!(matches!(BearerToken::parse(" \n"), Err(TokenError::Empty)));
        assert!(matches!(
            BearerToken::parse("a b"),
            Err(TokenError::BadCharacters)
        ));
        assert!(matches!(
            BearerToken::parse("abc"),
            Err(TokenError::NotJwt(_))
        ));
        assert!(matches!(
            BearerToken::from_bytes(&vec![b'a'; MAX_TOKEN_BYTES + 10]),
            Err(TokenError::TooLarge)
        ));
    }

    #[test]
    fn debug_hides_token() {
        let t = jwt(&serde_json::json!({"exp": 1}));
        let tok = BearerToken::parse(&t).unwrap();
        assert!(!format!("{tok:?}").contains(&t));
    }

    #[test]
    fn extreme_claims_never_panic_or_wrap() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for v in [
            serde_json::json!(i64::MAX),
            serde_json::json!(i64::MIN),
            serde_json::json!(1e300),
            serde_json::json!(-1e300),
            serde_json::json!(253_402_300_800_i64),
            serde_json::json!(-9.3e18),
        ] {
            let tok = BearerToken::parse(&jwt(&serde_json::json!({"exp": v, "iat": v, "nbf": v})))
                .unwrap();
            assert_eq!(tok.remaining(now), None, "{v}");
            assert!(!tok.is_fresh(now, 0), "{v}");
            let lines = describe_claims(&tok, now);
            assert_eq!(lines.len(), 3, "{v}");
        }
        assert_eq!(
            format_utc(i64::MAX),
            format!("{} (after the year 9999)", i64::MAX)
        );
        let _ = format_remaining(i64::MIN);
    }

    #[test]
    fn claims_shown_with_control_characters_escaped() {
        let tok = BearerToken::parse(&jwt(
            &serde_json::json!({"sub": "a\u{1b}[2Jb\nc", "iss": "x\u{202e}y", "exp": 1}),
        ))
        .unwrap();
        let lines = describe_claims(&tok, UNIX_EPOCH);
        let shown: String = lines.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\u{202e}'),
            "{shown:?}"
        );
        assert!(shown.contains("sub a\\u{1b}[2Jb\\u{a}c"), "{shown:?}");
    }

    #[test]
    fn remaining_formats() {
        assert_eq!(format_remaining(7980), "2h13m");
        assert_eq!(format_remaining(45), "45s");
        assert_eq!(format_remaining(-300), "-5m00s");
        assert_eq!(format_remaining(90000), "1d1h");
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
    }
}
