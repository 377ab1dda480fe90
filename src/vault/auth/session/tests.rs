//! The fallback chain against a scripted Vault that is not HTTP: an
//! [`Api`] that answers from a table, as a simulation does.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::vault::auth::Names;
use crate::vault::{AuthInfo, LoginError, OidcPoll, OidcStart, RefreshToken};
use base64::prelude::*;
use std::sync::Mutex;

/// What the scripted Vault answers to a bearer read with a token.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Read {
    Ok,
    Denied,
    Missing,
    Sealed,
    /// 400 "token expired" unless `minimum_seconds=60`.
    ShortLived,
}

struct Scripted {
    saved: Read,
    fresh: Read,
    login_fails: bool,
    calls: Mutex<Vec<String>>,
}

fn jwt() -> BearerToken {
    let h = BASE64_URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let p = BASE64_URL_SAFE_NO_PAD.encode(br#"{"sub":"robot","exp":4000000000}"#);
    BearerToken::parse(&format!("{h}.{p}.c2ln")).unwrap()
}

fn status(code: u16, error: &str) -> VaultError {
    status_at("p", code, error)
}

fn status_at(path: &str, code: u16, error: &str) -> VaultError {
    VaultError::Status {
        server: "https://v:8200".into(),
        path: path.into(),
        status: code,
        errors: vec![error.into()],
        warnings: vec![],
        retry_after: None,
    }
}

impl Scripted {
    fn new(saved: Read, fresh: Read) -> Self {
        Scripted {
            saved,
            fresh,
            login_fails: false,
            calls: Mutex::new(Vec::new()),
        }
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn call(&self, c: String) {
        self.calls.lock().unwrap().push(c);
    }
}

impl Api for Scripted {
    fn server(&self) -> String {
        "https://v:8200".into()
    }

    fn request_count(&self) -> u32 {
        u32::try_from(self.calls().len()).unwrap()
    }

    fn login_kerberos(
        &self,
        mount: &str,
        _source: &CredentialSource,
        service_host: &str,
    ) -> Result<AuthInfo, LoginError> {
        self.call(format!("login {mount} host@{service_host}"));
        if self.login_fails {
            return Err(LoginError::Vault(status(403, "permission denied")));
        }
        Ok(AuthInfo {
            token: VaultToken::new("fresh-login").unwrap(),
            lease_duration: Some(3600),
            policies: vec![],
            user: None,
        })
    }

    fn create_token(&self, _: &VaultToken, ttl_secs: u64) -> Result<AuthInfo, VaultError> {
        self.call(format!("create {ttl_secs}"));
        Ok(AuthInfo {
            token: VaultToken::new("fresh").unwrap(),
            lease_duration: Some(ttl_secs),
            policies: vec![],
            user: None,
        })
    }

    fn lookup_self_ttl(&self, _: &VaultToken) -> Result<u64, VaultError> {
        self.call("lookup".into());
        Ok(100)
    }

    fn read_bearer(
        &self,
        token: &VaultToken,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<BearerToken, VaultError> {
        let min = &query[0].1;
        self.call(format!("read {} {path} {min}", token.expose()));
        let how = if token.expose() == "saved" {
            self.saved
        } else {
            self.fresh
        };
        match how {
            Read::Ok => Ok(jwt()),
            Read::Denied => Err(status_at(path, 403, "permission denied")),
            Read::Missing => Err(status_at(path, 404, "")),
            Read::Sealed => Err(status_at(path, 503, "Vault is sealed")),
            Read::ShortLived if min == "60" => Ok(jwt()),
            Read::ShortLived => Err(status_at(path, 400, "token expired")),
        }
    }

    fn oidc_auth_url(&self, _: &str, _: &str, _: &str, _: &str) -> Result<OidcStart, VaultError> {
        self.call("oidc".into());
        Err(status(500, "not scripted"))
    }

    fn oidc_poll(&self, _: &str, _: &str, _: &str) -> Result<OidcPoll, VaultError> {
        Err(status(500, "not scripted"))
    }

    fn store_refresh_token(
        &self,
        _: &VaultToken,
        _: &str,
        _: &str,
        _: &RefreshToken,
    ) -> Result<(), VaultError> {
        Err(status(500, "not scripted"))
    }
}

fn names() -> Names {
    Names {
        issuer: "igwn".into(),
        role: "robot".into(),
    }
}

fn query() -> Vec<(&'static str, String)> {
    vec![("minimum_seconds", "3600".into())]
}

fn want<'a>(names: &'a Names, query: &'a [(&'static str, String)]) -> Want<'a> {
    Want {
        names,
        credkey: Some("robot/h"),
        path: None,
        exchange: false,
        query,
        service_host: "alias",
        server_host: "vault.example",
        server_port: 8200,
    }
}

fn policy<'a>(login: Login<'a>, oidc: Oidc<'a>) -> SessionPolicy<'a> {
    SessionPolicy {
        reuse_min_ttl: Duration::ZERO,
        login,
        ttl: Duration::from_secs(600),
        shorten_minimum: false,
        oidc,
    }
}

fn no_terminal() -> Oidc<'static> {
    Oidc::Person(Box::new(Person {
        interactive: false,
        settings: OidcSettings {
            issuer: "igwn".into(),
            role: "robot".into(),
            redirect_host: "alias:8200".into(),
            web_open_command: None,
            timeout: Duration::from_secs(60),
            path_var: None,
            clock: crate::env::Clock::manual(std::time::SystemTime::UNIX_EPOCH),
        },
        command: "robot-credmon get -k kt".into(),
        save_credkey_in: None,
        uid: 1,
        after_login_failure: true,
        first: None,
        say: |_| {},
    }))
}

const CREDS: &str = "secret/oauth/creds/igwn/robot/h:robot";

#[test]
fn a_working_saved_token_is_all_it_takes() {
    let (n, q) = (names(), query());
    let api = Scripted::new(Read::Ok, Read::Ok);
    let src = CredentialSource::UserCcache;
    let saved = VaultToken::new("saved").unwrap();
    let got = policy(Login::With(&src), Oidc::Never).obtain(&api, &want(&n, &q), Some(&saved));
    assert!(got.bearer.is_ok());
    assert_eq!((got.step, got.fresh.is_none()), (Step::Saved, true));
    assert_eq!(api.calls(), [format!("read saved {CREDS} 3600")]);
}

#[test]
fn a_refused_saved_token_leads_to_a_login_exchange_and_read() {
    let (n, q) = (names(), query());
    let api = Scripted::new(Read::Denied, Read::Ok);
    let src = CredentialSource::UserCcache;
    let saved = VaultToken::new("saved").unwrap();
    let got = policy(Login::With(&src), Oidc::Never).obtain(&api, &want(&n, &q), Some(&saved));
    assert!(got.bearer.is_ok());
    assert_eq!(got.step, Step::Login);
    assert_eq!(got.fresh.unwrap().token.expose(), "fresh");
    assert_eq!(
        api.calls(),
        [
            format!("read saved {CREDS} 3600"),
            "login kerberos-igwn_robot host@alias".into(),
            "create 600".into(),
            format!("read fresh {CREDS} 3600"),
        ]
    );
}

/// The credmon without a keytab: a refused token is final, and no login is tried.
#[test]
fn refused_without_a_way_to_log_in_is_final() {
    let (n, q) = (names(), query());
    let api = Scripted::new(Read::Denied, Read::Ok);
    let none = || None;
    let saved = VaultToken::new("saved").unwrap();
    let got = policy(Login::Lazy(&none), Oidc::Never).obtain(&api, &want(&n, &q), Some(&saved));
    match got.bearer {
        Err(AuthError::Refused { why }) => assert!(why.contains("permission denied"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(api.calls().len(), 1);
}

/// A passing failure of the saved token is an error to retry, not a login.
#[test]
fn a_sealed_vault_is_not_a_reason_to_log_in() {
    let (n, q) = (names(), query());
    let api = Scripted::new(Read::Sealed, Read::Ok);
    let src = CredentialSource::UserCcache;
    let saved = VaultToken::new("saved").unwrap();
    let got = policy(Login::With(&src), Oidc::Never).obtain(&api, &want(&n, &q), Some(&saved));
    assert_eq!(got.step, Step::Saved);
    assert!(got.bearer.unwrap_err().is_transient());
    assert_eq!(api.calls().len(), 1);
}

/// No credential after a login: only a person can fix it, with the one
/// wording and command; their OIDC login is offered only on a terminal
/// (here: the error says to run the command on one).
#[test]
fn no_credential_needs_a_person() {
    let (n, q) = (names(), query());
    let api = Scripted::new(Read::Ok, Read::Missing);
    let src = CredentialSource::UserCcache;
    let got = policy(Login::With(&src), Oidc::Never).obtain(&api, &want(&n, &q), None);
    assert!(
        got.fresh.is_some(),
        "the login's token is the role's to keep"
    );
    let e = got.bearer.unwrap_err();
    assert_eq!(
        e.to_string(),
        "Vault at vault.example holds no credential for credkey 'robot/h' (issuer igwn, role robot); a person must log in once: run on a terminal: htgettoken -a vault.example -i igwn -r robot --credkey robot/h"
    );
    assert!(e.vault_error().is_some_and(|v| v.status() == Some(404)));
    let got = policy(Login::With(&src), no_terminal()).obtain(&api, &want(&n, &q), None);
    assert_eq!(got.step, Step::Oidc);
    let e = got.bearer.unwrap_err().to_string();
    assert!(
        e.starts_with("Vault at vault.example holds no credential"),
        "{e}"
    );
    assert!(
        e.contains("run the same command on a terminal (robot-credmon get -k kt)"),
        "{e}"
    );
    assert!(
        !api.calls().contains(&"oidc".to_owned()),
        "no person, no OIDC request"
    );
}

/// The saved token's credential is gone: no login is tried (it cannot help).
#[test]
fn a_missing_credential_behind_the_saved_token_needs_a_person_without_a_login() {
    let (n, q) = (names(), query());
    let api = Scripted::new(Read::Missing, Read::Ok);
    let src = CredentialSource::UserCcache;
    let saved = VaultToken::new("saved").unwrap();
    let got = policy(Login::With(&src), Oidc::Never).obtain(&api, &want(&n, &q), Some(&saved));
    assert_eq!(got.step, Step::Saved);
    assert!(got.answered);
    assert!(got.bearer.unwrap_err().needs_login().is_some());
    assert_eq!(api.calls().len(), 1);
}

/// The storer: a failed Kerberos login leads to a person's OIDC login; get's policy stops.
#[test]
fn a_failed_login_leads_to_oidc_only_when_the_policy_says_so() {
    let (n, q) = (names(), query());
    let mut api = Scripted::new(Read::Ok, Read::Ok);
    api.login_fails = true;
    let src = CredentialSource::UserCcache;
    let got = policy(Login::With(&src), no_terminal()).obtain(&api, &want(&n, &q), None);
    assert_eq!(got.step, Step::Oidc);
    assert!(
        got.bearer
            .unwrap_err()
            .to_string()
            .contains("permission denied")
    );
    let got = policy(Login::With(&src), Oidc::Never).obtain(&api, &want(&n, &q), None);
    assert_eq!(got.step, Step::Login);
    let e = got.bearer.unwrap_err().to_string();
    assert!(e.contains("there is no Kerberos login for"), "{e}");
}

/// The cron role's rule: tokens that live less than the minimum are asked
/// for with 60 s; other roles take the error.
#[test]
fn short_lived_tokens_are_asked_for_with_sixty_seconds_when_the_policy_says_so() {
    let (n, q) = (names(), query());
    let api = Scripted::new(Read::ShortLived, Read::Ok);
    let saved = VaultToken::new("saved").unwrap();
    let mut p = policy(Login::Never, Oidc::Never);
    assert!(p.obtain(&api, &want(&n, &q), Some(&saved)).bearer.is_err());
    p.shorten_minimum = true;
    assert!(p.obtain(&api, &want(&n, &q), Some(&saved)).bearer.is_ok());
    assert_eq!(
        api.calls().last().unwrap(),
        &format!("read saved {CREDS} 60")
    );
}

/// A saved token with too little left is not used: `lookup-self` first.
#[test]
fn a_saved_token_is_checked_when_the_policy_asks() {
    let (n, q) = (names(), query());
    let api = Scripted::new(Read::Ok, Read::Ok);
    let src = CredentialSource::UserCcache;
    let saved = VaultToken::new("saved").unwrap();
    let mut p = policy(Login::With(&src), Oidc::Never);
    p.reuse_min_ttl = Duration::from_secs(3600);
    let got = p.obtain(&api, &want(&n, &q), Some(&saved));
    assert_eq!(got.step, Step::Login);
    assert_eq!(api.calls()[0], "lookup");
    assert_eq!(api.calls()[1], "login kerberos-igwn_robot host@alias");
}
