//! Tests of the test harness itself: the KDC, the GSS token child, and the fake Vault.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use nix::sys::signal::kill;
use nix::unistd::Pid;
use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};

use crate::support::gss::{self, Mech};
use crate::support::kdc::{self, Kdc};
use crate::support::{Fault, TestEnv, TestVault};

const ISSUER: &str = TestEnv::ISSUER;
const ROLE: &str = TestEnv::ROLE;
const ROBOT: &str = TestEnv::PRINCIPAL;

fn client(vault: &TestVault) -> Client {
    Client::builder()
        .tls_backend_preconfigured((*vault.pki().client_config().unwrap()).clone())
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn json_of(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    (
        status,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        },
    )
}

fn login(c: &Client, env: &TestEnv, header: Option<&str>) -> (u16, Value) {
    let mut req = c.post(format!("{}{}", env.vault.url(), env.login_path()));
    if let Some(h) = header {
        req = req.header("Authorization", h);
    }
    json_of(req.send().unwrap())
}

fn read_creds(c: &Client, env: &TestEnv, token: &str, query: &str) -> (u16, Value) {
    json_of(
        c.get(format!("{}?{query}", env.creds_url()))
            .header("X-Vault-Token", token)
            .send()
            .unwrap(),
    )
}

fn alive(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok()
}

fn kinit(
    kdc: &Kdc,
    keytab: &std::path::Path,
    princ: &str,
    ccache: &std::path::Path,
) -> std::process::Output {
    let mut cmd = Command::new("kinit");
    cmd.envs(kdc.env())
        .env("KRB5CCNAME", format!("FILE:{}", ccache.display()));
    cmd.args(["-k", "-t"]).arg(keytab).arg(kdc.principal(princ));
    cmd.output().expect("kinit (krb5-user) not runnable")
}

#[test]
fn kdc_starts_issues_tickets_and_stops_by_pid() {
    let tmp = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let mut kdc = Kdc::start(&tmp.path().join("kdc"), &[ROBOT, "alice"], &[]).unwrap();
    eprintln!("KDC start: {} ms", t0.elapsed().as_millis());
    let pid = kdc.pid();
    assert!(alive(pid) && kdc.is_running());
    assert_eq!(kdc.realm(), "EXAMPLE.TEST");
    let conf = std::fs::read_to_string(kdc.krb5_conf()).unwrap();
    assert!(conf.contains("dns_canonicalize_hostname = false") && conf.contains("rdns = false"));

    let keytab = kdc.client_keytab(ROBOT);
    assert_eq!(
        keytab.file_name().unwrap(),
        "client-robot_host.example.keytab"
    );
    assert_eq!(
        std::fs::metadata(&keytab).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_ne!(kdc.client_keytab("alice"), keytab);

    let out = kinit(&kdc, &keytab, ROBOT, &tmp.path().join("cc1"));
    assert!(
        out.status.success(),
        "kinit: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = kinit(
        &kdc,
        &kdc.wrong_keytab(),
        kdc::STALE_PRINCIPAL,
        &tmp.path().join("cc2"),
    );
    assert!(!out.status.success(), "stale keytab must not work");
    let out = kinit(
        &kdc,
        &kdc.unknown_keytab(),
        kdc::DELETED_PRINCIPAL,
        &tmp.path().join("cc3"),
    );
    assert!(!out.status.success(), "deleted principal must not work");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not found"),
        "{out:?}"
    );

    let later = kdc.add_client("late/host.example").unwrap();
    assert_eq!(later, kdc.client_keytab("late/host.example"));
    assert!(
        kinit(&kdc, &later, "late/host.example", &tmp.path().join("cc4"))
            .status
            .success()
    );
    assert!(
        kdc.add_client("late/host.example").is_err(),
        "duplicate principal"
    );
    assert!(kdc.add_client("bad name").is_err());

    kdc.randomize_key("alice").unwrap();
    assert!(
        !kinit(
            &kdc,
            &kdc.client_keytab("alice"),
            "alice",
            &tmp.path().join("cc5")
        )
        .status
        .success()
    );

    drop(kdc);
    assert!(!alive(pid), "krb5kdc {pid} still running after drop");
}

#[test]
fn kerberos_login_with_real_gss_tokens_and_replay_detection() {
    let t = Instant::now();
    let env = TestEnv::start().unwrap();
    eprintln!(
        "TestEnv start (KDC + Vault): {} ms",
        t.elapsed().as_millis()
    );
    let c = client(&env.vault);
    let t0 = Instant::now();
    let headers =
        gss::negotiate_headers(&env.kdc, &env.robot_keytab(), "localhost", Mech::Krb5, 2).unwrap();
    eprintln!(
        "2 krb5 Negotiate tokens (child process): {} ms",
        t0.elapsed().as_millis()
    );
    assert!(
        headers[0].starts_with("Negotiate YII"),
        "raw krb5 token expected"
    );
    assert_ne!(headers[0], headers[1]);

    let t1 = Instant::now();
    let (status, body) = login(&c, &env, Some(&headers[0]));
    eprintln!("login round trip: {} ms", t1.elapsed().as_millis());
    assert_eq!(status, 200, "{body} {:?}", env.vault.login_errors());
    let auth = &body["auth"];
    let token = auth["client_token"].as_str().unwrap();
    assert!(token.starts_with("s.") && token.len() == 26, "{token}");
    assert_eq!(auth["lease_duration"], 2_419_200);
    assert_eq!(auth["renewable"], false);
    assert_eq!(
        auth["metadata"],
        json!({"user": ROBOT, "domain": "EXAMPLE.TEST"})
    );
    assert_eq!(auth["policies"], json!(["kerberos-igwn_robot", "tokenops"]));
    assert_eq!(
        env.vault.token_info(token).unwrap().alias.as_deref(),
        Some(ROBOT)
    );

    // The same header again is a replay.
    let (status, body) = login(&c, &env, Some(&headers[0]));
    assert_eq!(status, 401);
    assert_eq!(body["warnings"], json!(["Unauthorised.\n\n"]));
    assert!(body.get("errors").is_none());
    assert!(
        env.vault.login_errors().last().unwrap().contains("replay"),
        "{:?}",
        env.vault.login_errors()
    );

    // A fresh context works; so does SPNEGO.
    assert_eq!(login(&c, &env, Some(&headers[1])).0, 200);
    let spnego =
        gss::negotiate_header(&env.kdc, &env.robot_keytab(), "localhost", Mech::Spnego).unwrap();
    assert!(spnego.starts_with("Negotiate YII"));
    assert_eq!(login(&c, &env, Some(&spnego)).0, 200);
    assert_eq!(env.vault.logins(), 3);

    // No header: 401 with a Negotiate challenge. Garbage: 401 Unauthorised. Unknown mount: 403.
    let r = c
        .post(format!("{}{}", env.vault.url(), env.login_path()))
        .send()
        .unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Negotiate");
    assert_eq!(
        json_of(r),
        (401, json!({"errors": ["authentication required"]}))
    );
    let (status, body) = login(&c, &env, Some("Negotiate Z2FyYmFnZQ=="));
    assert_eq!(
        (status, &body["warnings"]),
        (401, &json!(["Unauthorised.\n\n"]))
    );
    let r = c
        .post(format!(
            "{}{}",
            env.vault.url(),
            TestVault::login_path("igwn", "nosuchrole")
        ))
        .send()
        .unwrap();
    assert_eq!(json_of(r), (403, json!({"errors": ["permission denied"]})));

    // A ticket for a wrong service principal cannot be made; the child reports why.
    let err =
        gss::negotiate_header(&env.kdc, &env.robot_keytab(), "nosuchhost", Mech::Krb5).unwrap_err();
    assert!(err.contains("not found"), "{err}");

    let logins = env.vault.count("POST", &env.login_path());
    assert_eq!(logins, 6);
    assert!(
        env.vault
            .requests()
            .iter()
            .all(|r| !format!("{r:?}").contains("Negotiate"))
    );
}

#[test]
fn token_store_create_lookup_revoke_and_clock() {
    let env = TestEnv::start().unwrap();
    let c = client(&env.vault);
    let url = env.vault.url();
    let parent = env.provision_token(2_419_200);

    let create = |token: &str, body: Value| {
        json_of(
            c.post(format!("{url}/v1/auth/token/create"))
                .header("X-Vault-Token", token)
                .json(&body)
                .send()
                .unwrap(),
        )
    };
    let lookup = |token: &str| {
        json_of(
            c.get(format!("{url}/v1/auth/token/lookup-self"))
                .header("X-Vault-Token", token)
                .send()
                .unwrap(),
        )
    };

    let (status, body) = create(&parent, json!({"ttl": "604800s", "renewable": "false"}));
    assert_eq!(status, 200, "{body}");
    let child = body["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(body["auth"]["lease_duration"], 604_800);
    assert_eq!(body["auth"]["orphan"], false);
    assert_eq!(
        body["auth"]["policies"],
        json!(["kerberos-igwn_robot", "tokenops"])
    );

    let (status, body) = lookup(&child);
    assert_eq!(status, 200);
    let ttl = body["data"]["ttl"].as_i64().unwrap();
    assert!((604_799..=604_800).contains(&ttl), "{ttl}");
    assert_eq!(body["data"]["path"], "auth/token/create");
    assert_eq!(body["data"]["renewable"], false);

    env.vault.advance_clock(3600);
    let ttl2 = lookup(&child).1["data"]["ttl"].as_i64().unwrap();
    assert!((ttl - 3601..=ttl - 3599).contains(&ttl2), "{ttl} -> {ttl2}");

    for (ttl, secs) in [("7d", 604_800), ("24h", 86_400), ("30m", 1_800), ("90", 90)] {
        let (status, body) = create(&parent, json!({"ttl": ttl}));
        assert_eq!(
            (status, body["auth"]["lease_duration"].as_u64()),
            (200, Some(secs)),
            "{ttl}"
        );
    }
    assert_eq!(create(&parent, json!({"ttl": "1w"})).0, 400);
    let (status, body) = create(&parent, json!({"ttl": "60s", "policies": ["root"]}));
    assert_eq!(
        (status, body),
        (
            400,
            json!({"errors": ["child policies must be subset of parent"]})
        )
    );

    // Revoking the parent revokes the child.
    assert!(env.vault.revoke_token(&parent));
    assert_eq!(
        lookup(&child),
        (403, json!({"errors": ["permission denied"]}))
    );
    assert_eq!(lookup("s.nosuchtoken").0, 403);
    let r = c
        .get(format!("{url}/v1/auth/token/lookup-self"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    // revoke-self, expiry and expire_all.
    let t = env.provision_token(100);
    let r = c
        .post(format!("{url}/v1/auth/token/revoke-self"))
        .header("X-Vault-Token", &t)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(lookup(&t).0, 403);
    let short = env.provision_token(100);
    assert_eq!(lookup(&short).0, 200);
    env.vault.advance_clock(101);
    assert_eq!(lookup(&short).0, 403);
    let long = env.provision_token(10_000);
    env.vault.expire_all_tokens();
    assert_eq!(lookup(&long).0, 403);
    let log = format!("{:?}", env.vault.requests());
    assert!(
        !log.contains(&child) && !log.contains(&parent),
        "token values in Debug output"
    );
}

#[test]
fn creds_read_returns_a_jwt_that_verifies_against_the_served_jwks() {
    let env = TestEnv::start().unwrap();
    let c = client(&env.vault);
    let token = env.provision_token(3600);
    let (status, body) = read_creds(&c, &env, &token, "minimum_seconds=60");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["type"], "Bearer");
    assert_eq!(body["data"]["server"], ISSUER);
    assert!(body["data"]["expire_time"].as_str().unwrap().ends_with('Z'));
    let jwt = body["data"]["access_token"].as_str().unwrap();

    // Discover the JWKS from the issuer, as a verifying client would.
    let iss = env.vault.issuer_url(ISSUER);
    let (status, conf) = json_of(
        c.get(format!("{iss}/.well-known/openid-configuration"))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    let (_, jwks) = json_of(c.get(conf["jwks_uri"].as_str().unwrap()).send().unwrap());
    let set: JwkSet = serde_json::from_value(jwks).unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let key = DecodingKey::from_jwk(set.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&["https://wlcg.cern.ch/jwt/v1/any"]);
    v.set_issuer(&[&iss]);
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &v).unwrap().claims;
    assert_eq!(claims["sub"], ROBOT);
    assert_eq!(claims["wlcg.ver"], "1.0");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        10_800
    );
    assert!(claims["jti"].is_string() && claims["nbf"].is_i64() && claims["scope"].is_string());

    // ACL, missing credential, missing token.
    let other = env
        .vault
        .provision_token(ISSUER, ROLE, "someone/else.example", 3600);
    assert_eq!(
        read_creds(&c, &env, &other, ""),
        (
            403,
            json!({"errors": ["1 error occurred:\n\t* permission denied\n\n"]})
        )
    );
    let wrong_role = env.vault.provision_token(ISSUER, "other", ROBOT, 3600);
    assert_eq!(read_creds(&c, &env, &wrong_role, "").0, 403);
    assert!(env.vault.remove_credential(ISSUER, ROBOT, ROLE));
    assert_eq!(
        read_creds(&c, &env, &token, ""),
        (404, json!({"errors": []}))
    );
    let r = c.get(env.creds_url()).send().unwrap();
    assert_eq!(json_of(r), (403, json!({"errors": ["permission denied"]})));

    // Kerberos tokens may delete but not store; OIDC tokens may store for `<alias>/*`.
    env.vault.add_credential(ISSUER, ROBOT, ROLE);
    let r = c
        .delete(env.creds_url())
        .header("X-Vault-Token", &token)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(env.vault.credential_count(), 0);
    let store = json!({"server": ISSUER, "refresh_token": "rt-123"});
    let r = c
        .post(env.creds_url())
        .header("X-Vault-Token", &token)
        .json(&store)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let oidc = env
        .vault
        .provision_oidc_token(ISSUER, "default", "robot", 3600);
    let r = c
        .post(env.creds_url())
        .header("X-Vault-Token", &oidc)
        .json(&store)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(read_creds(&c, &env, &token, "").0, 200);
    assert!(
        !format!("{:?}", env.vault.requests()).contains("rt-123"),
        "refresh token in Debug output"
    );
}

#[test]
fn minimum_seconds_caching_sts_and_refresh_failures() {
    let env = TestEnv::start_with(|cfg| cfg.jwt_lifetime = 1200).unwrap();
    let c = client(&env.vault);
    let token = env.provision_token(86_400);
    let access = |body: &Value| body["data"]["access_token"].as_str().unwrap().to_string();

    let (_, a) = read_creds(&c, &env, &token, "minimum_seconds=60");
    let (_, b) = read_creds(&c, &env, &token, "minimum_seconds=60");
    assert_eq!(
        access(&a),
        access(&b),
        "cached while it has enough time left"
    );
    assert_eq!(env.vault.issuer_refreshes(), 1);

    // Asking for more than is left forces a refresh; more than a lifetime cannot be met.
    env.vault.advance_clock(30);
    let (_, d) = read_creds(&c, &env, &token, "minimum_seconds=1180");
    assert_ne!(access(&a), access(&d));
    assert_eq!(
        read_creds(&c, &env, &token, "minimum_seconds=1300"),
        (400, json!({"errors": ["token expired"]}))
    );
    assert_eq!(env.vault.credential_refreshes(ISSUER, ROBOT, ROLE), 3);

    // Time passes on the Vault clock.
    let (_, e) = read_creds(&c, &env, &token, "minimum_seconds=60");
    env.vault.advance_clock(1150);
    let (_, f) = read_creds(&c, &env, &token, "minimum_seconds=60");
    assert_ne!(access(&e), access(&f));
    let (_, g) = read_creds(&c, &env, &token, "");
    assert_eq!(access(&f), access(&g), "minimum_seconds defaults to 10 s");

    // sts: separate cache keyed on scopes/audiences, narrowed claims, no `server`.
    let sts = format!(
        "{}{}",
        env.vault.url(),
        TestVault::sts_path(ISSUER, ROBOT, ROLE)
    );
    let get_sts = |q: &str| {
        json_of(
            c.get(format!("{sts}?{q}"))
                .header("X-Vault-Token", &token)
                .send()
                .unwrap(),
        )
    };
    let (status, s1) = get_sts(
        "minimum_seconds=60&scopes=storage.read:/frames,storage.read:/h&audiences=https://a.example",
    );
    assert_eq!(status, 200, "{s1}");
    assert!(s1["data"].get("server").is_none());
    let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(access(&s1)).unwrap();
    assert_eq!(claims["scope"], "storage.read:/frames storage.read:/h");
    assert_eq!(claims["aud"], "https://a.example");
    let (_, s2) = get_sts(
        "minimum_seconds=60&scopes=storage.read:/frames storage.read:/h&audiences=https://a.example",
    );
    assert_eq!(
        access(&s1),
        access(&s2),
        "space- and comma-separated lists share the cache"
    );
    let (_, s3) = get_sts("audiences=https://a.example,https://b.example");
    assert_ne!(access(&s1), access(&s3));
    let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(access(&s3)).unwrap();
    assert_eq!(
        claims["aud"],
        json!(["https://a.example", "https://b.example"])
    );
    assert_eq!(env.vault.sts_exchanges(), 2);
    let (_, w) = get_sts("audience=https://a.example");
    assert_eq!(
        w["warnings"],
        json!(["Endpoint ignored these unrecognized parameters: [audience]"])
    );

    // A revoked refresh token fails only once the cached token is not good enough.
    assert!(env.vault.revoke_refresh_token(ISSUER, ROBOT, ROLE));
    assert_eq!(read_creds(&c, &env, &token, "minimum_seconds=60").0, 200);
    env.vault.expire_access_tokens();
    assert_eq!(
        read_creds(&c, &env, &token, "minimum_seconds=60"),
        (400, json!({"errors": ["refresh failed: invalid_grant"]}))
    );
}

#[test]
fn fault_injection_status_delay_drop_and_permanent() {
    let env = TestEnv::start().unwrap();
    let c = client(&env.vault);
    let token = env.provision_token(3600);

    env.vault.inject(Fault::ldap_down().times(2));
    for _ in 0..2 {
        let (status, body) = login(&c, &env, Some("Negotiate Z2FyYmFnZQ=="));
        assert_eq!(status, 500);
        assert!(
            body["errors"][0]
                .as_str()
                .unwrap()
                .starts_with("could not connect to LDAP")
        );
    }
    assert_eq!(
        login(&c, &env, Some("Negotiate Z2FyYmFnZQ==")).0,
        401,
        "fault used up"
    );

    env.vault
        .inject(Fault::rate_limited("/v1/secret/").method("GET"));
    let (status, body) = read_creds(&c, &env, &token, "");
    assert_eq!(status, 429);
    assert_eq!(
        body["errors"][0],
        format!(
            "request path \"secret/oauth/creds/{ISSUER}/{ROBOT}:{ROLE}\": rate limit quota exceeded"
        )
    );

    env.vault.inject(Fault::sealed().permanent());
    for _ in 0..3 {
        assert_eq!(read_creds(&c, &env, &token, "").0, 503);
    }
    assert_eq!(env.vault.faults_pending(), 1);
    env.vault.clear_faults();
    assert_eq!(read_creds(&c, &env, &token, "").0, 200);

    env.vault
        .inject(Fault::delay("/v1/secret/", Duration::from_millis(300)));
    let t = Instant::now();
    assert_eq!(read_creds(&c, &env, &token, "").0, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));

    let slow = Client::builder()
        .tls_backend_preconfigured((*env.vault.pki().client_config().unwrap()).clone())
        .no_proxy()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    env.vault
        .inject(Fault::delay("/v1/secret/", Duration::from_secs(2)));
    let r = slow
        .get(env.creds_url())
        .header("X-Vault-Token", &token)
        .send();
    assert!(r.unwrap_err().is_timeout());

    env.vault.inject(Fault::drop_connection("/v1/secret/"));
    assert!(
        c.get(env.creds_url())
            .header("X-Vault-Token", &token)
            .send()
            .is_err()
    );
    assert_eq!(read_creds(&c, &env, &token, "").0, 200);

    assert_eq!(env.vault.faults_fired(), 9);
    assert_eq!(
        env.vault.count_status("/v1/secret/", 0),
        1,
        "dropped request recorded with status 0"
    );
    env.vault.reset_counters();
    assert_eq!(env.vault.requests().len(), 0);
}

#[test]
fn concurrent_keep_alive_reads_of_many_credentials() {
    let env = TestEnv::start().unwrap();
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let tokens: Vec<(String, String)> = (0..n)
        .map(|i| {
            let alias = format!("bench{i}/host.example");
            env.vault.add_credential(ISSUER, &alias, ROLE);
            let t = env.vault.provision_token(ISSUER, ROLE, &alias, 3600);
            (env.vault.creds_url(ISSUER, &alias, ROLE), t)
        })
        .collect();
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for chunk in tokens.chunks(n / 8) {
            let c = client(&env.vault);
            s.spawn(move || {
                for pass in 0..2 {
                    let tp = Instant::now();
                    for (url, token) in chunk {
                        let r = c
                            .get(format!("{url}?minimum_seconds=60"))
                            .header("X-Vault-Token", token)
                            .send()
                            .unwrap();
                        assert_eq!(r.status().as_u16(), 200);
                    }
                    eprintln!("pass {pass}: {} ms", tp.elapsed().as_millis());
                }
            });
        }
    });
    let elapsed = t0.elapsed();
    eprintln!(
        "{} creds reads by 8 threads: {} ms ({:.0}/s)",
        2 * n,
        elapsed.as_millis(),
        (2 * n) as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(env.vault.issuer_refreshes(), n as u64);
    assert!(
        env.vault.connections() <= 16,
        "keep-alive: {} connections",
        env.vault.connections()
    );
}
