//! Pure decisions of the storer: file names, URLs, the JSON handed to the
//! credd, `condor_store_cred` arguments, and whether to store again.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// `CONDOR_VAULT_STORER_ID`, else `u<uid>`.
pub fn storer_id(env_id: Option<String>, uid: u32) -> String {
    env_id
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("u{uid}"))
}

/// The per-service Vault token file `<dir>/vt_<id>-<service>`.
pub fn service_vault_token_file(dir: &Path, id: &str, service: &str) -> PathBuf {
    dir.join(format!("vt_{id}-{service}"))
}

/// The shared Vault token file `<dir>/vt_<id>`.
pub fn vault_token_file(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("vt_{id}"))
}

/// Where we note when the Vault token stored in the credd expires (no secret in it):
/// `<dir>/vt_<id>-<service>.stored`.
pub fn stored_state_file(dir: &Path, id: &str, service: &str) -> PathBuf {
    dir.join(format!("vt_{id}-{service}.stored"))
}

/// Bearer token files: `$BEARER_TOKEN_FILE` alone, else
/// `${XDG_RUNTIME_DIR:-/tmp}/bt_<id>-<service>` and its copy `bt_<id>`.
pub fn bearer_token_files(
    env: impl Fn(&str) -> Option<String>,
    id: &str,
    service: &str,
) -> Vec<PathBuf> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(f) = set("BEARER_TOKEN_FILE") {
        return vec![PathBuf::from(f)];
    }
    let dir = PathBuf::from(set("XDG_RUNTIME_DIR").unwrap_or_else(|| "/tmp".into()));
    vec![
        dir.join(format!("bt_{id}-{service}")),
        dir.join(format!("bt_{id}")),
    ]
}

/// The JSON piped to `condor_store_cred add-oauth`, as HTCondor's storer writes it.
pub fn cred_json(vault_token: Option<&str>, vault_url: &str) -> String {
    let q = |s: &str| serde_json::Value::from(s).to_string();
    match vault_token {
        Some(t) => format!(
            "{{\n  \"vault_token\": {},\n  \"vault_url\": {}\n}}\n",
            q(t),
            q(vault_url)
        ),
        None => format!("{{\n  \"vault_url\": {}\n}}\n", q(vault_url)),
    }
}

/// What `condor_store_cred query-oauth` said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// Exit 0: stored.
    Stored,
    /// Exit 1: not stored.
    NotStored,
    /// Exit 2: stored with other scopes or audience.
    Mismatch,
}

/// Maps the exit code of `query-oauth`.
pub fn query_result(code: i32) -> Query {
    match code {
        0 => Query::Stored,
        2 => Query::Mismatch,
        _ => Query::NotStored,
    }
}

/// Arguments of `condor_store_cred <op> [-u user] -s name [-S scopes] [-A aud] <extra> [-i -]`.
pub fn store_cred_args(
    op: &str,
    user: Option<&str>,
    name: &str,
    scopes: Option<&str>,
    audience: Option<&str>,
    extra: &[String],
) -> Vec<String> {
    let mut v = vec![op.to_owned()];
    if let Some(u) = user.filter(|u| !u.is_empty()) {
        v.extend(["-u".into(), u.to_owned()]);
    }
    v.extend(["-s".into(), name.to_owned()]);
    if let Some(s) = scopes {
        v.extend(["-S".into(), s.to_owned()]);
    }
    if let Some(a) = audience {
        v.extend(["-A".into(), a.to_owned()]);
    }
    v.extend(extra.iter().cloned());
    if op == "add-oauth" {
        v.extend(["-i".into(), "-".into()]);
    }
    v
}

/// Whether the Vault token we stored in the credd (expiring at `stored_expires`,
/// unix seconds, when we know it) is too close to expiry at `now` and must be
/// replaced, even though the credd reports the credential as stored.
pub fn restore_needed(now: i64, stored_expires: Option<i64>, margin: Duration) -> bool {
    let margin = i64::try_from(margin.as_secs()).unwrap_or(i64::MAX);
    stored_expires.is_some_and(|exp| exp.saturating_sub(now) < margin)
}

/// Whether this run must mint a new long-lived Vault token: when the local
/// per-service token did not work, the credd lacks the credential, or the
/// stored one is close to expiry.
pub fn new_token_needed(local_token_works: bool, query: Option<Query>, restore: bool) -> bool {
    !local_token_works || query == Some(Query::NotStored) || restore
}

/// The hint HTCondor's storer gives on a scopes/audience mismatch.
pub fn mismatch_message(name: &str) -> String {
    format!(
        "Credentials exist that do not match the request.\nThey can be removed by\n  condor_store_cred delete-oauth -s {name}\nbut make sure no other job is using them."
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_and_paths() {
        assert_eq!(storer_id(None, 1000), "u1000");
        assert_eq!(storer_id(Some(String::new()), 7), "u7");
        assert_eq!(storer_id(Some("robotA".into()), 7), "robotA");
        let d = Path::new("/tmp");
        assert_eq!(
            service_vault_token_file(d, "u5", "igwn_prod"),
            PathBuf::from("/tmp/vt_u5-igwn_prod")
        );
        assert_eq!(vault_token_file(d, "u5"), PathBuf::from("/tmp/vt_u5"));
        assert_eq!(
            stored_state_file(d, "u5", "igwn"),
            PathBuf::from("/tmp/vt_u5-igwn.stored")
        );
        let env = |k: &str| (k == "XDG_RUNTIME_DIR").then(|| "/run/user/5".to_owned());
        assert_eq!(
            bearer_token_files(env, "u5", "igwn"),
            [
                PathBuf::from("/run/user/5/bt_u5-igwn"),
                PathBuf::from("/run/user/5/bt_u5")
            ]
        );
        assert_eq!(
            bearer_token_files(|_| None, "u5", "igwn")[1],
            PathBuf::from("/tmp/bt_u5")
        );
        let env = |k: &str| (k == "BEARER_TOKEN_FILE").then(|| "/x/bt".to_owned());
        assert_eq!(
            bearer_token_files(env, "u5", "igwn"),
            [PathBuf::from("/x/bt")]
        );
        assert_eq!(
            crate::vault::secret_path(true, "igwn", "r/h", "robot"),
            "secret/oauth/sts/igwn/r/h:robot"
        );
        assert_eq!(
            crate::vault::secret_path(false, "igwn", "r/h", "robot"),
            "secret/oauth/creds/igwn/r/h:robot"
        );
    }

    #[test]
    fn json_and_args() {
        assert_eq!(
            cred_json(Some("hvs.X"), "https://v:8200/v1/secret/oauth/creds/i/k:r"),
            "{\n  \"vault_token\": \"hvs.X\",\n  \"vault_url\": \"https://v:8200/v1/secret/oauth/creds/i/k:r\"\n}\n"
        );
        assert_eq!(
            cred_json(None, "u\"x"),
            "{\n  \"vault_url\": \"u\\\"x\"\n}\n"
        );
        assert_eq!(
            store_cred_args(
                "add-oauth",
                Some("bob"),
                "igwn_h",
                Some("a,b"),
                Some("x"),
                &["-d".into()]
            ),
            [
                "add-oauth",
                "-u",
                "bob",
                "-s",
                "igwn_h",
                "-S",
                "a,b",
                "-A",
                "x",
                "-d",
                "-i",
                "-"
            ]
        );
        assert_eq!(
            store_cred_args("query-oauth", None, "igwn", None, None, &[]),
            ["query-oauth", "-s", "igwn"]
        );
        for (code, q) in [
            (0, Query::Stored),
            (1, Query::NotStored),
            (2, Query::Mismatch),
            (-1, Query::NotStored),
        ] {
            assert_eq!(query_result(code), q);
        }
    }

    #[test]
    fn restore_rules() {
        let week = Duration::from_secs(7 * 86400);
        let now = 1_000_000_000;
        // (stored expiry, restore?)
        for (exp, want) in [
            (None, false),
            (Some(now + 28 * 86400), false),
            (Some(now + 7 * 86400), false),
            (Some(now + 7 * 86400 - 1), true),
            (Some(now - 5), true),
        ] {
            assert_eq!(restore_needed(now, exp, week), want, "{exp:?}");
        }
        // (local token works, query, restore) -> new token
        for (works, q, restore, want) in [
            (true, Some(Query::Stored), false, false),
            (true, Some(Query::NotStored), false, true),
            (true, Some(Query::Stored), true, true),
            (false, None, false, true),
        ] {
            assert_eq!(new_token_needed(works, q, restore), want);
        }
    }
}
