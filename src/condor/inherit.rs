//! What condor_master hands a child in its environment
//! (`daemon_core.cpp`, `Create_Process` and `Inherit`):
//!
//! * `CONDOR_INHERIT = "<parent pid> <parent sinful> ..."`;
//! * `CONDOR_PRIVATE_INHERIT = "... FamilySessionKey:<claim id> ..."`, the
//!   family security session every daemon of one master shares. The claim id
//!   is `<session id>#[<session info>]<key>` (`condor_claimid_parser.h`); the
//!   session info is `[Attr=value;...]` (`SecMan::ExportSecSessionInfo`).

use super::sinful::{BadSinful, Sinful};
use std::fmt;

/// Why the inherited environment could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InheritError {
    /// `CONDOR_INHERIT` is missing: not started by condor_master.
    #[error("CONDOR_INHERIT is not set (not started by condor_master)")]
    NoInherit,
    /// `CONDOR_INHERIT` has no parent address.
    #[error("CONDOR_INHERIT is malformed")]
    BadInherit,
    /// The parent address is not a sinful string.
    #[error(transparent)]
    BadAddress(#[from] BadSinful),
    /// No `FamilySessionKey:` in `CONDOR_PRIVATE_INHERIT`.
    #[error(
        "CONDOR_PRIVATE_INHERIT holds no family security session (SEC_USE_FAMILY_SESSION = False?)"
    )]
    NoFamilySession,
    /// The family session's claim id or info is malformed.
    #[error("the family security session in CONDOR_PRIVATE_INHERIT is malformed: {0}")]
    BadSession(&'static str),
}

/// The family security session: id, key and the settings the master exported.
#[derive(Clone, PartialEq, Eq)]
pub struct FamilySession {
    /// Session id (`family:...`).
    pub id: String,
    /// The shared secret as exported (hex text); keys are derived from it.
    pub key: String,
    /// `Encryption = "YES"`.
    pub encryption: bool,
    /// Crypto methods the session allows, most preferred first (`AES`, `BLOWFISH`, ...).
    pub crypto_methods: Vec<String>,
    /// The master's HTCondor version (`ShortVersion`), e.g. `25.14.0`.
    pub version: Option<String>,
    /// Unix time the session expires, when it does.
    pub expires: Option<i64>,
}

impl fmt::Debug for FamilySession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FamilySession")
            .field("id", &self.id)
            .field("key", &"<redacted>")
            .field("encryption", &self.encryption)
            .field("crypto_methods", &self.crypto_methods)
            .field("version", &self.version)
            .field("expires", &self.expires)
            .finish()
    }
}

/// Everything needed to talk to the parent condor_master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    /// The master's pid.
    pub pid: u32,
    /// The master's command address.
    pub addr: Sinful,
    /// The family session.
    pub session: FamilySession,
}

/// Parses the two variables (their values; `None` when unset).
pub fn parse(inherit: Option<&str>, private: Option<&str>) -> Result<Parent, InheritError> {
    let inherit = inherit.ok_or(InheritError::NoInherit)?;
    let mut words = inherit.split_ascii_whitespace();
    let pid = words
        .next()
        .and_then(|p| p.parse::<u32>().ok())
        .ok_or(InheritError::BadInherit)?;
    let addr = Sinful::parse(words.next().ok_or(InheritError::BadInherit)?)?;
    let claim = private
        .unwrap_or("")
        .split_ascii_whitespace()
        .find_map(|w| w.strip_prefix("FamilySessionKey:"))
        .ok_or(InheritError::NoFamilySession)?;
    Ok(Parent {
        pid,
        addr,
        session: parse_claim(claim)?,
    })
}

/// Splits a claim id `<id>#[<info>]<key>` and reads the info.
pub fn parse_claim(claim: &str) -> Result<FamilySession, InheritError> {
    let (id, private) = claim
        .rsplit_once('#')
        .ok_or(InheritError::BadSession("no '#' in the claim id"))?;
    if id.is_empty() {
        return Err(InheritError::BadSession("empty session id"));
    }
    let (info, key) = if private.starts_with('[') {
        let end = private
            .rfind(']')
            .ok_or(InheritError::BadSession("unterminated session info"))?;
        (&private[1..end], &private[end + 1..])
    } else {
        ("", private)
    };
    if key.is_empty() {
        return Err(InheritError::BadSession("empty session key"));
    }
    let mut s = FamilySession {
        id: id.to_owned(),
        key: key.to_owned(),
        encryption: false,
        crypto_methods: Vec::new(),
        version: None,
        expires: None,
    };
    let mut list = None;
    for item in info.split(';').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, value) = item
            .split_once('=')
            .ok_or(InheritError::BadSession("an attribute without '='"))?;
        let (name, value) = (name.trim(), value.trim());
        let text = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        match name.to_ascii_lowercase().as_str() {
            "encryption" => s.encryption = text.eq_ignore_ascii_case("YES"),
            "cryptomethods" => {
                s.crypto_methods = split_methods(text);
            }
            "cryptomethodslist" => list = Some(split_methods(text)),
            "shortversion" => s.version = Some(text.to_owned()),
            "sessionexpires" => {
                s.expires = Some(
                    value
                        .parse()
                        .map_err(|_| InheritError::BadSession("SessionExpires is not a number"))?,
                )
            }
            _ => {}
        }
    }
    // As SecMan::ImportSecSessionInfo: the full list overrides the preferred method.
    if let Some(l) = list {
        s.crypto_methods = l;
    }
    Ok(s)
}

fn split_methods(text: &str) -> Vec<String> {
    text.split(['.', ','])
        .map(|m| m.trim().to_ascii_uppercase())
        .filter(|m| !m.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const CLAIM: &str = "family:pool.example:4242:1764255600:1#[Encryption=\"YES\";Integrity=\"YES\";CryptoMethods=\"AES\";CryptoMethodsList=\"AES.BLOWFISH.3DES\";SessionExpires=0;ShortVersion=\"25.14.0\";ValidCommands=\"60008,60043\";]0123456789abcdef";

    #[test]
    fn reads_what_the_master_exports() {
        let p = parse(
            Some("4242 <127.0.0.1:40000?addrs=127.0.0.1-40000&noUDP&sock=master_4242_1> 0"),
            Some(&format!("SessionKey:x#y FamilySessionKey:{CLAIM}")),
        )
        .unwrap();
        assert_eq!(p.pid, 4242);
        assert_eq!(p.addr.port, 40000);
        assert_eq!(p.addr.shared_port_id.as_deref(), Some("master_4242_1"));
        let s = p.session;
        assert_eq!(s.id, "family:pool.example:4242:1764255600:1");
        assert_eq!(s.key, "0123456789abcdef");
        assert!(s.encryption);
        assert_eq!(s.crypto_methods, ["AES", "BLOWFISH", "3DES"]);
        assert_eq!(s.version.as_deref(), Some("25.14.0"));
        assert_eq!(s.expires, Some(0));
        assert!(!format!("{s:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn a_claim_without_info_is_id_and_key() {
        let s = parse_claim("family:a#b#secret").unwrap();
        assert_eq!((s.id.as_str(), s.key.as_str()), ("family:a#b", "secret"));
        assert!(!s.encryption);
        assert!(s.crypto_methods.is_empty());
    }

    #[test]
    fn explains_what_is_missing() {
        let inherit = Some("1 <127.0.0.1:1> 0");
        for (i, p, want) in [
            (None, None, InheritError::NoInherit),
            (Some(""), None, InheritError::BadInherit),
            (Some("x <127.0.0.1:1>"), None, InheritError::BadInherit),
            (Some("1"), None, InheritError::BadInherit),
            (inherit, None, InheritError::NoFamilySession),
            (
                inherit,
                Some("SessionKey:a#b"),
                InheritError::NoFamilySession,
            ),
            (
                inherit,
                Some("FamilySessionKey:nohash"),
                InheritError::BadSession("no '#' in the claim id"),
            ),
            (
                inherit,
                Some("FamilySessionKey:id#[Encryption=\"YES\""),
                InheritError::BadSession("unterminated session info"),
            ),
            (
                inherit,
                Some("FamilySessionKey:id#[]"),
                InheritError::BadSession("empty session key"),
            ),
            (
                inherit,
                Some("FamilySessionKey:id#[SessionExpires=soon;]k"),
                InheritError::BadSession("SessionExpires is not a number"),
            ),
        ] {
            assert_eq!(parse(i, p).unwrap_err(), want, "{i:?} {p:?}");
        }
        assert!(matches!(
            parse(Some("1 nonsense"), None),
            Err(InheritError::BadAddress(_))
        ));
    }
}
