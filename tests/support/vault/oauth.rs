//! oauthapp emulation (`secret/oauth/creds`, `secret/oauth/sts`) and the fake issuer's
//! discovery documents (vault-token-service.md §1.5–1.7, §5.4 item 5).

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::api::{
    acl_denied, empty, envelope, errors, json_response, permission_denied, rfc3339_seconds,
    token_of, unsupported,
};
use super::http::{Request, Response};
use super::store::{CredStore, Credential, Minted, TokenEntry, uuid};
use super::{Shared, jwt, lock};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Creds,
    Sts,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Write,
    Delete,
}

pub(super) fn secret(sh: &Shared, req: &Request, kind: Kind, raw_name: &str) -> Response {
    let Some((_, token)) = token_of(sh, req) else {
        return permission_denied();
    };
    let op = match (kind, req.method.as_str()) {
        (_, "GET") => Op::Read,
        (Kind::Creds, "POST" | "PUT") => Op::Write,
        (Kind::Creds, "DELETE") => Op::Delete,
        _ => return unsupported(),
    };
    let name = percent_decode(raw_name);
    let Some((issuer, credkey, role)) = split_name(&name) else {
        return acl_denied();
    };
    if !allowed(&token, kind, issuer, credkey, role, op) {
        return acl_denied();
    }
    let key = CredStore::key(issuer, credkey, role);
    match op {
        Op::Delete => {
            sh.creds.remove(&key);
            empty(204)
        }
        Op::Write => store_refresh_token(sh, req, issuer, credkey, key),
        Op::Read => read_secret(sh, req, kind, issuer, &key),
    }
}

/// `<issuer>/<credkey>:<role>`, credkey may contain `/` and `@`.
fn split_name(name: &str) -> Option<(&str, &str, &str)> {
    let (issuer, rest) = name.split_once('/')?;
    let (credkey, role) = rest.rsplit_once(':')?;
    (!issuer.is_empty() && !credkey.is_empty() && !role.is_empty())
        .then_some((issuer, credkey, role))
}

/// The htvault-config policies: kerberos tokens read/delete `<alias>:<role>` (read on sts);
/// oidc tokens also write, and may use `<alias>/*` credkeys.
fn allowed(
    token: &TokenEntry,
    kind: Kind,
    issuer: &str,
    credkey: &str,
    role: &str,
    op: Op,
) -> bool {
    let Some(alias) = token.alias.as_deref() else {
        return false;
    };
    token.policies.iter().any(|p| {
        if *p == format!("kerberos-{issuer}_{role}") {
            credkey == alias && (op == Op::Read || (kind == Kind::Creds && op == Op::Delete))
        } else if let Some(oidc_role) = p.strip_prefix(&format!("oidc-{issuer}_")) {
            let own = credkey == alias && role == oidc_role;
            let robot = credkey
                .strip_prefix(alias)
                .is_some_and(|r| r.starts_with('/'));
            (own || robot) && (kind == Kind::Creds || op == Op::Read)
        } else {
            false
        }
    })
}

fn store_refresh_token(
    sh: &Shared,
    req: &Request,
    issuer: &str,
    credkey: &str,
    key: String,
) -> Response {
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => return errors(400, &[&format!("failed to parse JSON input: {e}")]),
    };
    if body.get("server").and_then(Value::as_str) != Some(issuer) {
        return acl_denied();
    }
    if body
        .get("refresh_token")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return errors(400, &["missing refresh token"]);
    }
    let mut cred = Credential::new(credkey, &sh.cfg.default_scope, &sh.cfg.default_audience);
    // The plugin runs the refresh grant at once.
    let aud = json!(cred.audience);
    let scope = cred.scope.clone();
    match mint(sh, issuer, &cred.subject, &scope, aud) {
        Ok(m) => cred.access = Some(m),
        Err(e) => return e,
    }
    cred.refreshes = 1;
    sh.refreshes.fetch_add(1, Ordering::SeqCst);
    sh.creds.insert(key, cred);
    empty(204)
}

fn read_secret(sh: &Shared, req: &Request, kind: Kind, issuer: &str, key: &str) -> Response {
    let Some(cred) = sh.creds.get(key) else {
        return errors(404, &[]);
    };
    let q = Query::parse(&req.query, kind);
    let min = match q.minimum_seconds {
        Ok(m) => m,
        Err(e) => return errors(400, &[&e]),
    };
    let mut c = lock(&cred);
    let base = match fresh_access_token(sh, issuer, &mut c, min) {
        Ok(m) => m,
        Err(resp) => return resp,
    };
    let (minted, server) = match kind {
        Kind::Creds => (base, Some(issuer)),
        Kind::Sts => match exchanged_token(sh, issuer, &mut c, min, &q) {
            Ok(m) => (m, None),
            Err(resp) => return resp,
        },
    };
    drop(c);
    let mut data = json!({
        "access_token": minted.token,
        "type": "Bearer",
        "expire_time": rfc3339_seconds(minted.exp),
    });
    if let Some(server) = server {
        data["server"] = json!(server);
    }
    let warnings = if q.unknown.is_empty() {
        Value::Null
    } else {
        json!([format!(
            "Endpoint ignored these unrecognized parameters: [{}]",
            q.unknown.join(" ")
        )])
    };
    json_response(200, &envelope(data, Value::Null, warnings))
}

/// The cached access token if it has more than `max(min, 10)` s left, else a refreshed one.
fn fresh_access_token(
    sh: &Shared,
    issuer: &str,
    c: &mut Credential,
    min: i64,
) -> Result<Minted, Response> {
    let delta_ms = min.max(10) * 1000;
    let now_ms = sh.now_ms();
    if let Some(a) = c
        .access
        .as_ref()
        .filter(|a| a.exp * 1000 - now_ms > delta_ms)
    {
        return Ok(a.clone());
    }
    if !c.refresh_valid {
        return Err(errors(400, &["refresh failed: invalid_grant"]));
    }
    let minted = mint(sh, issuer, &c.subject, &c.scope, json!(c.audience))?;
    c.access = Some(minted.clone());
    c.refreshes += 1;
    sh.refreshes.fetch_add(1, Ordering::SeqCst);
    if minted.exp * 1000 - sh.now_ms() <= delta_ms {
        return Err(errors(400, &["token expired"]));
    }
    Ok(minted)
}

/// The sts token for the requested scopes/audiences/resources, cached like the plugin does.
fn exchanged_token(
    sh: &Shared,
    issuer: &str,
    c: &mut Credential,
    min: i64,
    q: &Query,
) -> Result<Minted, Response> {
    let cache_key = format!(
        "scopes={},audiences={},resources={}",
        q.scopes.join(","),
        q.audiences.join(","),
        q.resources.join(",")
    );
    let delta_ms = min.max(10) * 1000;
    let now_ms = sh.now_ms();
    c.sts.retain(|_, m| m.exp * 1000 > now_ms);
    if let Some(m) = c
        .sts
        .get(&cache_key)
        .filter(|m| m.exp * 1000 - now_ms > delta_ms)
    {
        return Ok(m.clone());
    }
    let scope = if q.scopes.is_empty() {
        c.scope.clone()
    } else {
        q.scopes.join(" ")
    };
    let aud = match q.audiences.as_slice() {
        [] => json!(c.audience),
        [one] => json!(one),
        many => json!(many),
    };
    let minted = mint(sh, issuer, &c.subject, &scope, aud)?;
    sh.exchanges.fetch_add(1, Ordering::SeqCst);
    c.sts.insert(cache_key, minted.clone());
    Ok(minted)
}

/// Mints an RS256 access token on the Vault clock.
pub(super) fn mint(
    sh: &Shared,
    issuer: &str,
    sub: &str,
    scope: &str,
    aud: Value,
) -> Result<Minted, Response> {
    let now = sh.now_ms().div_euclid(1000);
    let exp =
        now + i64::try_from(sh.jwt_lifetime.load(Ordering::SeqCst)).unwrap_or(i64::MAX / 4000);
    let claims = json!({
        "iss": sh.issuer_url(issuer),
        "sub": sub,
        "aud": aud,
        "scope": scope,
        "exp": exp,
        "iat": now,
        "nbf": now,
        "jti": uuid(),
        "wlcg.ver": "1.0",
    });
    let token = jwt::sign(&claims).map_err(|e| errors(500, &[&e]))?;
    Ok(Minted { token, exp })
}

struct Query {
    minimum_seconds: Result<i64, String>,
    scopes: Vec<String>,
    audiences: Vec<String>,
    resources: Vec<String>,
    unknown: Vec<String>,
}

impl Query {
    fn parse(query: &str, kind: Kind) -> Query {
        let mut q = Query {
            minimum_seconds: Ok(0),
            scopes: Vec::new(),
            audiences: Vec::new(),
            resources: Vec::new(),
            unknown: Vec::new(),
        };
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            let list = || {
                v.split([',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect::<Vec<_>>()
            };
            match (kind, k.as_ref()) {
                (_, "minimum_seconds") => {
                    q.minimum_seconds = v.trim().parse::<i64>().map(|m| m.max(0)).map_err(|_| {
                        format!(
                            "error converting input {v} for field \"minimum_seconds\": cannot parse"
                        )
                    });
                }
                (Kind::Sts, "scopes") => q.scopes.extend(list()),
                (Kind::Sts, "audiences") => q.audiences.extend(list()),
                (Kind::Sts, "resources") => q.resources.extend(list()),
                (_, other) => q.unknown.push(other.to_string()),
            }
        }
        q
    }
}

// ---------------------------------------------------------------------------------------------
// Fake issuer documents

pub(super) fn issuer_document(sh: &Shared, rest: &str) -> Response {
    let Some((issuer, doc)) = rest.split_once('/') else {
        return errors(404, &[]);
    };
    match doc {
        ".well-known/openid-configuration" => {
            let base = format!("{}/issuer/{issuer}", sh.url());
            json_response(
                200,
                &json!({
                    "issuer": sh.issuer_url(issuer),
                    "jwks_uri": format!("{base}/jwks"),
                    "token_endpoint": format!("{base}/token"),
                    "response_types_supported": ["code"],
                    "grant_types_supported": ["refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "scopes_supported": ["openid", "offline_access", "storage.read:/", "storage.create:/"],
                }),
            )
        }
        "jwks" => match jwt::jwks() {
            Ok(v) => json_response(200, &v),
            Err(e) => errors(500, &[&e]),
        },
        _ => errors(404, &[]),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
