//! Request routing, fault application, Kerberos login and the token store endpoints
//! (vault-token-service.md §1.2–1.4, §5.4); oauthapp lives in `oauth.rs`.

use std::sync::atomic::Ordering;
use std::time::{Duration, UNIX_EPOCH};

use base64::prelude::*;
use libgssapi::context::{SecurityContext, ServerCtx};
use serde_json::{Value, json};

use super::Shared;
use super::http::{Outcome, Request, Response};
use super::oauth::{Kind, issuer_document, secret};
use super::store::{CreateError, TokenEntry, uuid};

/// Applies fault injection, routes, and records the request.
pub(super) fn dispatch(sh: &Shared, req: &Request) -> Outcome {
    let started = std::time::Instant::now();
    sh.begin();
    let outcome = match sh.take_fault(&req.method, &req.path) {
        Some(fault) => {
            if let Some(delay) = fault.delay {
                sh.sleep(delay);
            }
            if fault.drop_connection {
                Outcome::Drop
            } else if let Some(s) = fault.stream {
                Outcome::Stream(s)
            } else if let Some((status, body)) = fault.response {
                let body =
                    body.replace("{path}", req.path.strip_prefix("/v1/").unwrap_or(&req.path));
                Outcome::Respond(Response {
                    status,
                    headers: fault.headers,
                    body: body.into_bytes(),
                })
            } else {
                Outcome::Respond(route(sh, req))
            }
        }
        None => Outcome::Respond(route(sh, req)),
    };
    let status = match &outcome {
        Outcome::Respond(r) => r.status,
        Outcome::Stream(_) => 200,
        Outcome::Drop => 0,
    };
    sh.record(req, status, started);
    sh.done();
    outcome
}

fn route(sh: &Shared, req: &Request) -> Response {
    let path = req.path.as_str();
    if let Some(rest) = path.strip_prefix("/issuer/") {
        return issuer_document(sh, rest);
    }
    let Some(v) = path.strip_prefix("/v1/") else {
        return errors(404, &[]);
    };
    if let Some(mount) = v
        .strip_prefix("auth/kerberos-")
        .and_then(|m| m.strip_suffix("/login"))
    {
        return login(sh, req, mount);
    }
    if let Some((issuer, op)) = v
        .strip_prefix("auth/oidc-")
        .and_then(|r| r.split_once("/oidc/"))
    {
        return super::oidc::route(sh, req, issuer, op);
    }
    match v {
        "sys/health" => {
            return json_response(
                200,
                &json!({"initialized": true, "sealed": false, "standby": false}),
            );
        }
        "auth/token/create" => return token_create(sh, req),
        "auth/token/lookup-self" => return lookup_self(sh, req),
        "auth/token/revoke-self" => return revoke_self(sh, req),
        _ => {}
    }
    if let Some(name) = v.strip_prefix("secret/oauth/creds/") {
        return secret(sh, req, Kind::Creds, name);
    }
    if let Some(name) = v.strip_prefix("secret/oauth/sts/") {
        return secret(sh, req, Kind::Sts, name);
    }
    match token_of(sh, req) {
        Some(_) => acl_denied(),
        None => permission_denied(),
    }
}

// ---------------------------------------------------------------------------------------------
// Kerberos login

fn login(sh: &Shared, req: &Request, mount: &str) -> Response {
    let Some((issuer, role)) = sh
        .cfg
        .mounts
        .iter()
        .find(|(i, r)| format!("{i}_{r}") == mount)
    else {
        return permission_denied();
    };
    if !matches!(req.method.as_str(), "POST" | "PUT" | "GET") {
        return unsupported();
    }
    let token = req.header("authorization").and_then(|v| {
        let (scheme, rest) = v.trim().split_once(' ').unwrap_or((v.trim(), ""));
        scheme
            .eq_ignore_ascii_case("negotiate")
            .then(|| rest.trim().to_string())
    });
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        let mut resp = errors(401, &["authentication required"]);
        resp.headers
            .push(("Www-Authenticate".into(), "Negotiate".into()));
        return resp;
    };
    match accept(sh, &token) {
        Ok(principal) => {
            let (user, domain) = principal
                .rsplit_once('@')
                .unwrap_or((principal.as_str(), ""));
            if sh.cfg.realm.as_deref().is_some_and(|r| r != domain) {
                sh.note_login_error(format!(
                    "principal '{principal}' is not in the accepted realm"
                ));
                return unauthorised();
            }
            sh.logins.fetch_add(1, Ordering::SeqCst);
            let policies = vec![format!("kerberos-{issuer}_{role}"), "tokenops".to_string()];
            let mut entry = TokenEntry::new(
                policies,
                Some(user.to_string()),
                sh.now_ms(),
                sh.cfg.login_lease,
                &format!("auth/kerberos-{mount}/login"),
            );
            entry.domain = Some(domain.to_string());
            entry.display_name = format!("kerberos-{user}");
            let id = sh.tokens.insert(entry.clone());
            json_response(
                200,
                &envelope(Value::Null, auth_json(&id, &entry, true), Value::Null),
            )
        }
        Err(e) => {
            sh.note_login_error(e);
            unauthorised()
        }
    }
}

/// Runs the GSS acceptor on a base64 token; returns the client principal.
fn accept(sh: &Shared, token_b64: &str) -> Result<String, String> {
    let cred = sh.acceptor.as_ref().ok_or("no service keytab configured")?;
    let token = BASE64_STANDARD
        .decode(token_b64)
        .map_err(|e| format!("bad base64 in Negotiate header: {e}"))?;
    let mut ctx = ServerCtx::new(Some(cred.clone()));
    ctx.step(&token, None)
        .map_err(|e| format!("gss_accept_sec_context: {e}"))?;
    if !ctx.is_complete() {
        return Err("GSS context not complete after one token".into());
    }
    let name = ctx
        .source_name()
        .map_err(|e| format!("no source name: {e}"))?;
    Ok(name.to_string())
}

// ---------------------------------------------------------------------------------------------
// Token store endpoints

fn token_create(sh: &Shared, req: &Request) -> Response {
    let Some((parent, entry)) = token_of(sh, req) else {
        return permission_denied();
    };
    if !entry
        .policies
        .iter()
        .any(|p| p == "tokenops" || p == "root")
    {
        return acl_denied();
    }
    if !matches!(req.method.as_str(), "POST" | "PUT") {
        return unsupported();
    }
    let body: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(e) => return errors(400, &[&format!("failed to parse JSON input: {e}")]),
        }
    };
    let ttl = match body.get("ttl").map(parse_ttl) {
        None => sh.cfg.token_max_ttl,
        Some(Ok(t)) => t.min(sh.cfg.token_max_ttl),
        Some(Err(e)) => return errors(400, &[&e]),
    };
    let renewable = match body.get("renewable") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") || s == "1" => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") || s == "0" => false,
        Some(other) => return errors(400, &[&format!("cannot parse renewable {other}")]),
    };
    let policies = match body.get("policies") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .filter_map(|p| p.as_str().map(String::from))
                .collect(),
        ),
        Some(Value::String(s)) => Some(
            s.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
        ),
        Some(other) => return errors(400, &[&format!("cannot parse policies {other}")]),
    };
    match sh
        .tokens
        .create_child(&parent, sh.now_ms(), ttl, policies, renewable)
    {
        Ok((id, child)) => json_response(
            200,
            &envelope(Value::Null, auth_json(&id, &child, false), Value::Null),
        ),
        Err(CreateError::Denied) => permission_denied(),
        Err(CreateError::NotSubset) => errors(400, &["child policies must be subset of parent"]),
    }
}

fn lookup_self(sh: &Shared, req: &Request) -> Response {
    let Some((id, e)) = token_of(sh, req) else {
        return permission_denied();
    };
    if !matches!(req.method.as_str(), "GET" | "POST" | "PUT") {
        return unsupported();
    }
    let now = sh.now_ms();
    let data = json!({
        "accessor": e.accessor,
        "creation_time": e.created_ms.div_euclid(1000),
        "creation_ttl": e.creation_ttl,
        "display_name": e.display_name,
        "entity_id": e.entity_id,
        "expire_time": rfc3339_nanos(e.expires_ms),
        "explicit_max_ttl": 0,
        "id": id,
        "issue_time": rfc3339_nanos(e.created_ms),
        "meta": e.domain.as_ref().map(|d| json!({"user": e.alias, "domain": d})),
        "num_uses": 0,
        "orphan": e.parent.is_none(),
        "path": e.path,
        "policies": e.policies,
        "renewable": e.renewable,
        "ttl": e.ttl(now).max(0),
        "type": "service",
    });
    json_response(200, &envelope(data, Value::Null, Value::Null))
}

fn revoke_self(sh: &Shared, req: &Request) -> Response {
    let Some((id, _)) = token_of(sh, req) else {
        return permission_denied();
    };
    if !matches!(req.method.as_str(), "POST" | "PUT") {
        return unsupported();
    }
    sh.tokens.revoke(&id);
    empty(204)
}

/// The live token in `X-Vault-Token` (or `Authorization: Bearer`), with its entry.
pub(super) fn token_of(sh: &Shared, req: &Request) -> Option<(String, TokenEntry)> {
    let id = req.header("x-vault-token").map(str::trim).or_else(|| {
        req.header("authorization")
            .and_then(|v| v.trim().strip_prefix("Bearer "))
            .map(str::trim)
    })?;
    sh.tokens.live(id, sh.now_ms()).map(|e| (id.to_string(), e))
}

/// Parses a Vault duration: a number of seconds, or `N[smhd]`.
pub(super) fn parse_ttl(v: &Value) -> Result<u64, String> {
    let bad = || format!("time: invalid duration {v}");
    match v {
        Value::Number(n) => n.as_u64().ok_or_else(bad),
        Value::String(s) => {
            let s = s.trim();
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let (num, unit) = s.split_at(split);
            let n: u64 = num.parse().map_err(|_| bad())?;
            let mult = match unit {
                "" | "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86400,
                _ => return Err(bad()),
            };
            n.checked_mul(mult).ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

// ---------------------------------------------------------------------------------------------
// Response helpers

pub(super) fn envelope(data: Value, auth: Value, warnings: Value) -> Value {
    json!({
        "request_id": uuid(),
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": null,
        "warnings": warnings,
        "auth": auth,
    })
}

fn auth_json(id: &str, e: &TokenEntry, login: bool) -> Value {
    let metadata = match (login, &e.alias, &e.domain) {
        (true, Some(user), Some(domain)) => json!({"domain": domain, "user": user}),
        _ => Value::Null,
    };
    json!({
        "client_token": id,
        "accessor": e.accessor,
        "policies": e.policies,
        "token_policies": e.policies,
        "metadata": metadata,
        "lease_duration": e.creation_ttl,
        "renewable": e.renewable,
        "entity_id": e.entity_id,
        "token_type": "service",
        "orphan": e.parent.is_none(),
        "mfa_requirement": null,
        "num_uses": 0,
    })
}

pub(super) fn json_response(status: u16, v: &Value) -> Response {
    Response {
        status,
        headers: Vec::new(),
        body: v.to_string().into_bytes(),
    }
}

pub(super) fn empty(status: u16) -> Response {
    Response {
        status,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

pub(super) fn errors(status: u16, msgs: &[&str]) -> Response {
    json_response(status, &json!({"errors": msgs}))
}

/// Token expired, revoked, unknown or missing.
pub(super) fn permission_denied() -> Response {
    errors(403, &["permission denied"])
}

/// Valid token, but no policy covers the path.
pub(super) fn acl_denied() -> Response {
    errors(403, &["1 error occurred:\n\t* permission denied\n\n"])
}

pub(super) fn unsupported() -> Response {
    errors(405, &["1 error occurred:\n\t* unsupported operation\n\n"])
}

/// A rejected Negotiate token: the reason stays in the server log, not in the body.
fn unauthorised() -> Response {
    json_response(
        401,
        &json!({
            "request_id": uuid(), "lease_id": "", "renewable": false, "lease_duration": 0,
            "data": null, "wrap_info": null, "warnings": ["Unauthorised.\n\n"], "auth": null,
        }),
    )
}

fn rfc3339_nanos(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_nanos(t).to_string()
}

pub(super) fn rfc3339_seconds(secs: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::parse_ttl;

    #[test]
    fn ttl_accepts_vault_duration_forms() {
        for (v, secs) in [
            (json!("604800s"), 604_800),
            (json!("7d"), 604_800),
            (json!("24h"), 86_400),
        ] {
            assert_eq!(parse_ttl(&v).ok(), Some(secs));
        }
        assert_eq!(parse_ttl(&json!("30m")).ok(), Some(1_800));
        assert_eq!(parse_ttl(&json!(90)).ok(), Some(90));
        assert_eq!(parse_ttl(&json!("90")).ok(), Some(90));
        assert!(
            parse_ttl(&json!("1w")).is_err()
                && parse_ttl(&json!("s")).is_err()
                && parse_ttl(&json!(-1)).is_err()
        );
    }
}
