//! Pure decisions of the storer: which credmon owns a service, what to mint,
//! write and add for it, file names, the JSON handed to the credd,
//! `condor_store_cred` arguments, and whether to store again.

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
/// `<dir>/vt_<id>-<service>.stored` for the local credd, with `@<credd>`
/// before `.stored` for a credd named with `--credd`.
pub fn stored_state_file(dir: &Path, id: &str, service: &str, credd: Option<&str>) -> PathBuf {
    match credd {
        None => dir.join(format!("vt_{id}-{service}.stored")),
        Some(c) => dir.join(format!("vt_{id}-{service}@{c}.stored")),
    }
}

/// The HTCondor knob (set in `condor_store_cred`'s environment) that names
/// the credd it talks to; `condor_store_cred` then finds that credd in the
/// collector by name. (`condor_store_cred -n NAME` cannot be used: it sends
/// to the *schedd* called NAME, which on Linux does not handle STORE_CRED.)
pub const CREDD_KNOB: &str = "_CONDOR_CREDD_HOST";

/// The knob listing the credds `store` and `get --condor` store into when
/// no `--credd` is given.
pub const CREDDS_KNOB: &str = "ROBOT_CREDMON_CREDDS";

/// The credds to store into: the `--credd` names when any are given, else
/// the names in [`CREDDS_KNOB`] (commas and/or white space between them);
/// none means the local credd, as before. Names become part of a file name
/// and an HTCondor knob, so only `A-Z a-z 0-9 . _ - @ :` are allowed;
/// repeats are dropped.
pub fn credd_names(given: &[String], knob: Option<&str>) -> Result<Vec<String>, String> {
    let names: Vec<String> = if given.is_empty() {
        name_list(knob.map(str::to_owned))
    } else {
        given.to_vec()
    };
    let mut out: Vec<String> = Vec::new();
    for n in names {
        let ok = !n.is_empty()
            && n.len() <= 255
            && !n.starts_with('.')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-@:".contains(c));
        if !ok {
            return Err(format!(
                "invalid credd name '{n}' (--credd or {CREDDS_KNOB}): use the name the credd has in the collector, such as ap1.example.org"
            ));
        }
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
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

/// What to say when `condor_store_cred add-oauth` refused `json` with
/// `said`: HTCondor's own words, and for the credd's untrusted-host refusal
/// ("Credential requires interacting with an untrusted host") the
/// `TRUSTED_VAULT_HOSTS` entry to add: the `host:port` of the stored
/// `vault_url`, exactly as the credd compares it.
pub fn store_failure_detail(said: &str, json: &str) -> String {
    if !said.contains("untrusted host") {
        return said.to_owned();
    }
    let url = serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|v| v.get("vault_url")?.as_str().map(str::to_owned))
        .unwrap_or_default();
    let authority = url
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or_default())
        .unwrap_or_default();
    if authority.is_empty() {
        return said.to_owned();
    }
    format!(
        "{said} ({url}): the credd compares each TRUSTED_VAULT_HOSTS entry with host:port; add '{authority}' to TRUSTED_VAULT_HOSTS on the credd's host and run condor_reconfig"
    )
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

/// Maps the exit code of `query-oauth`; `None` when the query itself failed.
pub fn query_result(code: i32) -> Option<Query> {
    match code {
        0 => Some(Query::Stored),
        1 => Some(Query::NotStored),
        2 => Some(Query::Mismatch),
        _ => None,
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

/// Which credmon owns a requested service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The Vault credmon: ours to store.
    Vault,
    /// The Pelican credmon: left alone.
    Pelican,
    /// The local, OAuth2 or client credmon: left alone.
    Other,
}

/// Other credmons' provider names (`*_CREDMON_PROVIDER_NAMES`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Providers {
    /// `PELICAN_CREDMON_PROVIDER_NAMES`.
    pub pelican: Vec<String>,
    /// `LOCAL_CREDMON_PROVIDER_NAMES`, else `LOCAL_CREDMON_PROVIDER_NAME`.
    pub local: Vec<String>,
    /// `OAUTH2_CREDMON_PROVIDER_NAMES`.
    pub oauth2: Vec<String>,
    /// `CLIENT_CREDMON_PROVIDER_NAMES`.
    pub client: Vec<String>,
}

/// A provider list: names separated by commas and/or white space.
fn name_list(value: Option<String>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split([',', ' ', '\t'])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Providers {
    /// Reads the lists through `knob` (the HTCondor configuration; `None` when unset).
    pub fn from_knobs(knob: impl Fn(&str) -> Option<String>) -> Providers {
        Providers {
            pelican: name_list(knob("PELICAN_CREDMON_PROVIDER_NAMES")),
            local: name_list(
                knob("LOCAL_CREDMON_PROVIDER_NAMES")
                    .or_else(|| knob("LOCAL_CREDMON_PROVIDER_NAME")),
            ),
            oauth2: name_list(knob("OAUTH2_CREDMON_PROVIDER_NAMES")),
            client: name_list(knob("CLIENT_CREDMON_PROVIDER_NAMES")),
        }
    }
}

/// Who owns `service`, as HTCondor's `condor_credential_storer` decides:
/// condor_submit's `CONDOR_CREDENTIAL_STORER_MODE` when set (`pelican`,
/// `other`, anything else is Vault), else the provider lists (a Pelican or
/// local provider by service or issuer name, OAuth2 and client ones by
/// service name), else Vault.
pub fn owner(mode: Option<&str>, service: &str, providers: &Providers) -> Owner {
    match mode.filter(|m| !m.is_empty()) {
        Some("pelican") => return Owner::Pelican,
        Some("other") => return Owner::Other,
        Some(_) => return Owner::Vault,
        None => {}
    }
    let issuer = service.split_once('_').map_or(service, |(i, _)| i);
    let named = |list: &[String], by_issuer: bool| {
        list.iter()
            .any(|n| n == service || (by_issuer && n == issuer))
    };
    if named(&providers.pelican, true) {
        Owner::Pelican
    } else if named(&providers.local, true)
        || named(&providers.oauth2, false)
        || named(&providers.client, false)
    {
        Owner::Other
    } else {
        Owner::Vault
    }
}

/// A Vault service name has at most one underscore (`issuer[_role]`).
pub fn check_vault_service(service: &str) -> Result<(), String> {
    match service.split_once('_') {
        Some((_, role)) if role.contains('_') => {
            Err("Only one underscore allowed in use_oauth_services name".into())
        }
        _ => Ok(()),
    }
}

/// Why a new long-lived Vault token is minted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mint {
    /// The credd does not hold the credential.
    NotInCredd,
    /// The Vault token we stored there is close to expiry.
    ExpiresSoon,
}

/// Which Vault token writes the user's bearer token files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerFrom {
    /// The newly minted one.
    Minted,
    /// The local per-service token, which still works.
    Local,
    /// None: the credd holds the credential and no local token works.
    Nothing,
}

/// What to do for a service: mint (and then write the local tokens, the
/// state note, and add the credential to the credd), and where the bearer
/// token files come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actions {
    /// Mint a new long-lived Vault token, and why; `None`: the credd's is used.
    pub mint: Option<Mint>,
    /// The source of the bearer token files.
    pub bearer: BearerFrom,
}

/// The credd holds the credential with other scopes or audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch;

/// Decides for a service from what the credd said (`query`), whether the
/// token we stored there expires soon (`restore`), and whether the local
/// per-service token still reads a bearer token. The credd comes first: when
/// it holds the credential, no login is needed, whatever the local token.
pub fn plan_service(query: Query, restore: bool, local_works: bool) -> Result<Actions, Mismatch> {
    let mint = match query {
        Query::Mismatch => return Err(Mismatch),
        Query::NotStored => Some(Mint::NotInCredd),
        Query::Stored if restore => Some(Mint::ExpiresSoon),
        Query::Stored => None,
    };
    let bearer = match (mint, local_works) {
        (Some(_), _) => BearerFrom::Minted,
        (None, true) => BearerFrom::Local,
        (None, false) => BearerFrom::Nothing,
    };
    Ok(Actions { mint, bearer })
}

/// Whether a handle is added to the credd: always after a new token
/// (`query` is then not asked), else when the credd lacks it.
pub fn handle_needs_add(minted: bool, query: Option<Query>) -> Result<bool, Mismatch> {
    match (minted, query) {
        (true, _) => Ok(true),
        (false, Some(Query::Mismatch)) => Err(Mismatch),
        (false, Some(Query::Stored)) => Ok(false),
        (false, Some(Query::NotStored) | None) => Ok(true),
    }
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
    fn untrusted_host_refusal_names_the_entry_to_add() {
        let json = cred_json(
            Some("hvs.X"),
            "https://vault.example.org:8200/v1/secret/oauth/creds/igwn/a:b",
        );
        let said = "Credential requires interacting with an untrusted host";
        let d = store_failure_detail(said, &json);
        assert!(d.starts_with(said), "{d}");
        assert!(
            d.contains("add 'vault.example.org:8200' to TRUSTED_VAULT_HOSTS"),
            "{d}"
        );
        assert!(!d.contains("hvs.X"), "{d}");
        // Other refusals are passed on as they are.
        assert_eq!(
            store_failure_detail("Operation failed.", &json),
            "Operation failed."
        );
        assert_eq!(store_failure_detail(said, "not json"), said);
    }

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
            stored_state_file(d, "u5", "igwn", None),
            PathBuf::from("/tmp/vt_u5-igwn.stored")
        );
        assert_eq!(
            stored_state_file(d, "u5", "igwn", Some("ap2.example")),
            PathBuf::from("/tmp/vt_u5-igwn@ap2.example.stored")
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
            (0, Some(Query::Stored)),
            (1, Some(Query::NotStored)),
            (2, Some(Query::Mismatch)),
            (3, None),
            (-1, None),
        ] {
            assert_eq!(query_result(code), q);
        }
    }

    #[test]
    fn credd_names_table() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // (--credd, knob) -> names or error
        type Case<'a> = (&'a [&'a str], Option<&'a str>, Result<&'a [&'a str], ()>);
        let cases: [Case; 8] = [
            (&[], None, Ok(&[])),
            (&[], Some(""), Ok(&[])),
            (
                &[],
                Some("ap1.example, ap2.example ap1.example"),
                Ok(&["ap1.example", "ap2.example"]),
            ),
            (&["ap3@host"], Some("ap1.example"), Ok(&["ap3@host"])),
            (&["ap1", "ap1", "ap2:9618"], None, Ok(&["ap1", "ap2:9618"])),
            (&["../x"], None, Err(())),
            (&["a/b"], None, Err(())),
            (&[], Some("good, b\u{e4}d"), Err(())),
        ];
        for (given, knob, want) in cases {
            let got = credd_names(&v(given), knob).map_err(|_| ());
            assert_eq!(got, want.map(v), "{given:?} {knob:?}");
        }
        assert!(credd_names(&v(&[""]), None).is_err());
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
    }

    #[test]
    fn service_plan_table() {
        use BearerFrom as B;
        // (credd says, restore, local works) -> (mint, bearer files from)
        for (q, restore, local, want) in [
            (Query::Stored, false, true, Ok((None, B::Local))),
            // Issue 8 fix 3: stored in the credd, no local token: no login.
            (Query::Stored, false, false, Ok((None, B::Nothing))),
            (
                Query::Stored,
                true,
                true,
                Ok((Some(Mint::ExpiresSoon), B::Minted)),
            ),
            (
                Query::Stored,
                true,
                false,
                Ok((Some(Mint::ExpiresSoon), B::Minted)),
            ),
            (
                Query::NotStored,
                false,
                true,
                Ok((Some(Mint::NotInCredd), B::Minted)),
            ),
            (
                Query::NotStored,
                false,
                false,
                Ok((Some(Mint::NotInCredd), B::Minted)),
            ),
            (Query::Mismatch, false, true, Err(Mismatch)),
        ] {
            let got = plan_service(q, restore, local).map(|a| (a.mint, a.bearer));
            assert_eq!(got, want, "{q:?} {restore} {local}");
        }
        // (minted, handle query) -> add
        for (minted, q, want) in [
            (true, None, Ok(true)),
            (false, Some(Query::Stored), Ok(false)),
            (false, Some(Query::NotStored), Ok(true)),
            (false, Some(Query::Mismatch), Err(Mismatch)),
        ] {
            assert_eq!(handle_needs_add(minted, q), want, "{minted} {q:?}");
        }
    }

    #[test]
    fn owner_table() {
        let p = Providers::from_knobs(|k| match k {
            "PELICAN_CREDMON_PROVIDER_NAMES" => Some("osdf, pelican2".into()),
            "LOCAL_CREDMON_PROVIDER_NAME" => Some("scitokens".into()),
            "OAUTH2_CREDMON_PROVIDER_NAMES" => Some("box,github".into()),
            "CLIENT_CREDMON_PROVIDER_NAMES" => Some("client1".into()),
            _ => None,
        });
        assert_eq!(p.local, ["scitokens"]);
        // (mode, service) -> owner
        for (mode, service, want) in [
            (None, "igwn", Owner::Vault),
            (None, "igwn_robot", Owner::Vault),
            (None, "osdf", Owner::Pelican),
            (None, "osdf_read", Owner::Pelican),
            (None, "pelican2", Owner::Pelican),
            (None, "scitokens", Owner::Other),
            (None, "scitokens_x", Owner::Other),
            (None, "box", Owner::Other),
            // OAuth2 and client providers match by service name only.
            (None, "box_x", Owner::Vault),
            (None, "client1", Owner::Other),
            (Some("vault"), "osdf", Owner::Vault),
            (Some("pelican"), "igwn", Owner::Pelican),
            (Some("other"), "igwn", Owner::Other),
            (Some("something"), "box", Owner::Vault),
            (Some(""), "box", Owner::Other),
        ] {
            assert_eq!(owner(mode, service, &p), want, "{mode:?} {service}");
        }
        assert_eq!(owner(None, "osdf", &Providers::default()), Owner::Vault);
        // LOCAL_CREDMON_PROVIDER_NAMES wins over the singular knob.
        let p = Providers::from_knobs(|k| match k {
            "LOCAL_CREDMON_PROVIDER_NAMES" => Some("a b".into()),
            "LOCAL_CREDMON_PROVIDER_NAME" => Some("c".into()),
            _ => None,
        });
        assert_eq!(p.local, ["a", "b"]);
        assert!(check_vault_service("igwn_robot").is_ok());
        assert!(check_vault_service("igwn").is_ok());
        assert!(check_vault_service("igwn_ro_bot").is_err());
    }
}
