//! The OIDC device flow of htvault-config (vault-token-service.md §1.8):
//! `auth/oidc-<issuer>/oidc/auth_url` and `.../poll`, scripted by the test
//! ([`OidcScript`]): `authorization_pending` N times, `slow_down` M times, or
//! `expired_token`, then success with `metadata.credkey` and
//! `metadata.oauth2_refresh_token` and an OIDC token (policy `oidc-<issuer>_<role>`).

use std::collections::HashMap;

use serde_json::{Value, json};

use super::api::{envelope, errors, json_response};
use super::http::{Request, Response};
use super::store::TokenEntry;
use super::{Shared, lock};

/// How the next OIDC logins behave.
#[derive(Clone, Debug, Default)]
pub struct OidcScript {
    /// `authorization_pending` answers before success.
    pub pending: usize,
    /// `slow_down` answers (after the pending ones).
    pub slow_down: usize,
    /// Answer `expired_token` instead of succeeding.
    pub expire: bool,
    /// `metadata.credkey` of the person.
    pub credkey: String,
    /// `poll_interval` given by `auth_url` (a string, as htvault-config does).
    pub poll_interval: u64,
    /// Allowed redirect URI port (`None`: any).
    pub redirect_port: Option<u16>,
}

#[derive(Default)]
pub(super) struct OidcState {
    pub script: Option<OidcScript>,
    /// state -> (issuer, role, nonce, polls so far)
    pub sessions: HashMap<String, (String, String, String, usize)>,
}

pub(super) fn route(sh: &Shared, req: &Request, issuer: &str, op: &str) -> Response {
    if req.method != "POST" && req.method != "PUT" {
        return errors(405, &["unsupported operation"]);
    }
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let s = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut st = lock(&sh.oidc);
    let Some(script) = st.script.clone() else {
        return errors(400, &["OIDC is not configured"]);
    };
    match op {
        "auth_url" => {
            let (role, nonce, redirect) = (s("role"), s("client_nonce"), s("redirect_uri"));
            if nonce.is_empty() {
                return errors(400, &["missing client_nonce"]);
            }
            let want = format!("/v1/auth/oidc-{issuer}/oidc/callback");
            let port_ok = script
                .redirect_port
                .is_none_or(|p| redirect.contains(&format!(":{p}/")));
            if !redirect.ends_with(&want) || !port_ok || !redirect.starts_with("https://") {
                return json_response(
                    200,
                    &envelope(json!({"auth_url": ""}), Value::Null, Value::Null),
                );
            }
            let state = format!("st_{}", super::store::uuid());
            st.sessions
                .insert(state.clone(), (issuer.to_string(), role, nonce, 0));
            let url = format!("https://localhost:{}/device?user_code=ABCD-EFGH", sh.port);
            json_response(
                200,
                &envelope(
                    json!({"auth_url": url, "user_code": "ABCD-EFGH", "state": state,
                           "poll_interval": script.poll_interval.to_string()}),
                    Value::Null,
                    Value::Null,
                ),
            )
        }
        "poll" => {
            let (state, nonce) = (s("state"), s("client_nonce"));
            let Some(sess) = st.sessions.get_mut(&state) else {
                return errors(400, &["no state"]);
            };
            if sess.2 != nonce {
                return errors(400, &["invalid client_nonce"]);
            }
            sess.3 += 1;
            let n = sess.3;
            let role = sess.1.clone();
            if n <= script.pending {
                return errors(400, &["authorization_pending"]);
            }
            if n <= script.pending + script.slow_down {
                return errors(400, &["slow_down"]);
            }
            if script.expire {
                return errors(400, &["expired_token"]);
            }
            st.sessions.remove(&state);
            drop(st);
            let policies = vec![format!("oidc-{issuer}_{role}"), "tokenops".to_string()];
            let lease = 672 * 3600;
            let mut e = TokenEntry::new(
                policies.clone(),
                Some(script.credkey.clone()),
                sh.now_ms(),
                lease,
                &format!("auth/oidc-{issuer}/oidc/poll"),
            );
            e.renewable = true;
            e.display_name = format!("oidc-{}", script.credkey);
            let id = sh.tokens.insert(e);
            json_response(
                200,
                &envelope(
                    Value::Null,
                    json!({"client_token": id, "policies": policies, "lease_duration": lease,
                           "renewable": true,
                           "metadata": {"credkey": script.credkey,
                                        "oauth2_refresh_token": "rt-from-the-issuer"}}),
                    Value::Null,
                ),
            )
        }
        _ => errors(404, &[]),
    }
}
