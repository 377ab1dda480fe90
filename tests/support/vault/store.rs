//! State of the fake Vault: the token store and the oauthapp credential store.
//!
//! Times are milliseconds on the Vault's clock (real time plus the test-controlled offset).
//! Locks are held only for map operations, never while signing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use super::{read, write};

/// What the Vault knows about one token.
#[derive(Clone, Debug)]
pub(super) struct TokenEntry {
    pub accessor: String,
    pub policies: Vec<String>,
    /// Entity alias name: the Kerberos user (principal without realm) or the OIDC credkey.
    pub alias: Option<String>,
    pub domain: Option<String>,
    pub parent: Option<String>,
    pub children: Vec<String>,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub creation_ttl: u64,
    pub renewable: bool,
    pub revoked: bool,
    pub path: String,
    pub display_name: String,
    pub entity_id: String,
}

impl TokenEntry {
    pub fn new(
        policies: Vec<String>,
        alias: Option<String>,
        now_ms: i64,
        ttl: u64,
        path: &str,
    ) -> TokenEntry {
        TokenEntry {
            accessor: random_alnum(24),
            policies,
            alias,
            domain: None,
            parent: None,
            children: Vec::new(),
            created_ms: now_ms,
            expires_ms: now_ms.saturating_add(
                i64::try_from(ttl)
                    .unwrap_or(i64::MAX / 2)
                    .saturating_mul(1000),
            ),
            creation_ttl: ttl,
            renewable: false,
            revoked: false,
            path: path.to_string(),
            display_name: "token".to_string(),
            entity_id: uuid(),
        }
    }

    /// Usable right now: neither revoked nor expired.
    pub fn is_live(&self, now_ms: i64) -> bool {
        !self.revoked && now_ms < self.expires_ms
    }

    /// Remaining whole seconds (Vault's `ttl`), negative once expired.
    pub fn ttl(&self, now_ms: i64) -> i64 {
        (self.expires_ms - now_ms).div_euclid(1000)
    }
}

/// Why a child token could not be created.
pub(super) enum CreateError {
    Denied,
    NotSubset,
}

#[derive(Default)]
pub(super) struct TokenStore {
    tokens: RwLock<HashMap<String, TokenEntry>>,
}

impl TokenStore {
    /// Stores `entry` under a fresh `s.` token and returns the token.
    pub fn insert(&self, entry: TokenEntry) -> String {
        let mut map = write(&self.tokens);
        loop {
            let id = format!("s.{}", random_alnum(24));
            if !map.contains_key(&id) {
                map.insert(id.clone(), entry);
                return id;
            }
        }
    }

    /// The entry of a live token.
    pub fn live(&self, id: &str, now_ms: i64) -> Option<TokenEntry> {
        read(&self.tokens)
            .get(id)
            .filter(|e| e.is_live(now_ms))
            .cloned()
    }

    /// The entry of any known token (live or not).
    pub fn get(&self, id: &str) -> Option<TokenEntry> {
        read(&self.tokens).get(id).cloned()
    }

    /// Creates a non-orphan child of `parent` (which must be live).
    pub fn create_child(
        &self,
        parent: &str,
        now_ms: i64,
        ttl: u64,
        policies: Option<Vec<String>>,
        renewable: bool,
    ) -> Result<(String, TokenEntry), CreateError> {
        let mut map = write(&self.tokens);
        let p = map
            .get(parent)
            .filter(|e| e.is_live(now_ms))
            .ok_or(CreateError::Denied)?;
        let policies = match policies {
            Some(ps) if ps.iter().any(|x| !p.policies.contains(x)) => {
                return Err(CreateError::NotSubset);
            }
            Some(ps) => ps,
            None => p.policies.clone(),
        };
        let mut child =
            TokenEntry::new(policies, p.alias.clone(), now_ms, ttl, "auth/token/create");
        child.domain = p.domain.clone();
        child.entity_id = p.entity_id.clone();
        child.parent = Some(parent.to_string());
        child.renewable = renewable;
        let id = loop {
            let id = format!("s.{}", random_alnum(24));
            if !map.contains_key(&id) {
                break id;
            }
        };
        map.insert(id.clone(), child.clone());
        if let Some(p) = map.get_mut(parent) {
            p.children.push(id.clone());
        }
        Ok((id, child))
    }

    /// Revokes `id` and all its descendants; false if unknown.
    pub fn revoke(&self, id: &str) -> bool {
        let mut map = write(&self.tokens);
        if !map.contains_key(id) {
            return false;
        }
        let mut todo = vec![id.to_string()];
        while let Some(next) = todo.pop() {
            if let Some(e) = map.get_mut(&next) {
                e.revoked = true;
                todo.extend(e.children.iter().cloned());
            }
        }
        true
    }

    /// Makes `id` expire at `now_ms`; false if unknown.
    pub fn expire(&self, id: &str, now_ms: i64) -> bool {
        match write(&self.tokens).get_mut(id) {
            Some(e) => {
                e.expires_ms = e.expires_ms.min(now_ms);
                true
            }
            None => false,
        }
    }

    /// Makes every token expire at `now_ms`.
    pub fn expire_all(&self, now_ms: i64) {
        for e in write(&self.tokens).values_mut() {
            e.expires_ms = e.expires_ms.min(now_ms);
        }
    }

    pub fn len(&self) -> usize {
        read(&self.tokens).len()
    }
}

/// An access token handed out by the fake issuer.
#[derive(Clone, Debug)]
pub(super) struct Minted {
    pub token: String,
    /// Expiry in seconds on the Vault clock.
    pub exp: i64,
}

/// One oauthapp credential (`<issuer>/<credkey>:<role>`).
#[derive(Debug)]
pub(super) struct Credential {
    pub subject: String,
    pub scope: String,
    pub audience: String,
    pub access: Option<Minted>,
    pub refresh_valid: bool,
    pub refreshes: u64,
    /// Exchanged (sts) tokens keyed by `scopes=..,audiences=..,resources=..`.
    pub sts: HashMap<String, Minted>,
}

impl Credential {
    pub fn new(subject: &str, scope: &str, audience: &str) -> Credential {
        Credential {
            subject: subject.to_string(),
            scope: scope.to_string(),
            audience: audience.to_string(),
            access: None,
            refresh_valid: true,
            refreshes: 0,
            sts: HashMap::new(),
        }
    }
}

#[derive(Default)]
pub(super) struct CredStore {
    creds: RwLock<HashMap<String, Arc<Mutex<Credential>>>>,
}

impl CredStore {
    pub fn key(issuer: &str, credkey: &str, role: &str) -> String {
        format!("{issuer}/{credkey}:{role}")
    }

    pub fn get(&self, key: &str) -> Option<Arc<Mutex<Credential>>> {
        read(&self.creds).get(key).cloned()
    }

    pub fn insert(&self, key: String, cred: Credential) {
        write(&self.creds).insert(key, Arc::new(Mutex::new(cred)));
    }

    pub fn remove(&self, key: &str) -> bool {
        write(&self.creds).remove(key).is_some()
    }

    pub fn all(&self) -> Vec<Arc<Mutex<Credential>>> {
        read(&self.creds).values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        read(&self.creds).len()
    }
}

pub(super) fn random_alnum(n: usize) -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(n)
        .collect()
}

pub(super) fn uuid() -> String {
    let hex = |n: usize| -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[fastrand::usize(..16)]))
            .collect()
    };
    format!("{}-{}-{}-{}-{}", hex(8), hex(4), hex(4), hex(4), hex(12))
}
