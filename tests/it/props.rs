//! Property tests of every parser of outside input (bounded so CI stays
//! fast): arbitrary input gives a value or a clear error, never a panic, and
//! tokens from Vault are accepted only when usable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use clap::Parser;
use proptest::prelude::*;
use robot_credmon::cli::{Cli, Command};
use robot_credmon::credmon::{config, refresh};
use robot_credmon::store::{options, request};
use robot_credmon::token::{self, BearerToken, accept};
use std::time::{Duration, UNIX_EPOCH};

fn jwt(payload: &[u8]) -> String {
    use base64::prelude::*;
    format!(
        "{}.{}.c2ln",
        BASE64_URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        BASE64_URL_SAFE_NO_PAD.encode(payload)
    )
}

/// Claim values that stress the arithmetic: small, huge, negative, floats, non-numbers.
fn time_value() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        any::<i64>().prop_map(serde_json::Value::from),
        (0i64..=accept::MAX_EPOCH + 10).prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        Just(serde_json::json!("soon")),
        Just(serde_json::Value::Null),
    ]
}

fn config_for(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config_for(256))]

    /// Any text: a token or an error; never a panic.
    #[test]
    fn token_text_never_panics(s in "\\PC{0,200}") {
        let _ = BearerToken::parse(&s);
    }

    /// Any payload bytes inside a JWT frame.
    #[test]
    fn jwt_payload_never_panics(p in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = BearerToken::parse(&jwt(&p));
    }

    /// Any claim times: decisions, lifetimes and descriptions never panic or
    /// wrap, and an accepted token always has more than the safety margin left.
    #[test]
    fn claim_times_are_checked(
        exp in time_value(),
        iat in time_value(),
        nbf in time_value(),
        now in prop_oneof![any::<i64>(), 0i64..=accept::MAX_EPOCH],
        current in proptest::option::of(any::<i64>()),
        minsecs in any::<u64>(),
        sub in "\\PC{0,20}|[\\x00-\\x1f\\x7f]{1,5}",
    ) {
        let payload = serde_json::json!({"exp": exp, "iat": iat, "nbf": nbf, "sub": sub});
        let tok = BearerToken::parse(&jwt(payload.to_string().as_bytes())).unwrap();
        let decision = accept::decide(tok.claims(), current, now, minsecs);
        if let accept::Decision::Replace(_) = decision {
            let e = tok.claims().exp.unwrap();
            prop_assert!((0..=accept::MAX_EPOCH).contains(&e));
            prop_assert!(e.checked_sub(now).is_some_and(|l| l > accept::SAFETY_MARGIN));
            if (0..=accept::MAX_EPOCH).contains(&now)
                && let Some(c) = current.filter(|c| (0..=accept::MAX_EPOCH).contains(c))
            {
                prop_assert!(c - now <= accept::SAFETY_MARGIN || e >= c);
            }
        }
        let t = UNIX_EPOCH + Duration::from_secs(now.clamp(0, accept::MAX_EPOCH) as u64);
        let _ = tok.remaining(t);
        let _ = tok.is_fresh(t, minsecs);
        for (_, v) in token::describe_claims(&tok, t) {
            prop_assert!(!v.chars().any(char::is_control));
        }
        let _ = token::format_utc(now);
        let _ = token::format_remaining(now);
    }

    /// `.top` files: any bytes or JSON object.
    #[test]
    fn top_json_never_panics(
        raw in proptest::collection::vec(any::<u8>(), 0..200),
        url in proptest::option::of("\\PC{0,40}"),
        tok in proptest::option::of("\\PC{0,40}"),
        scopes in proptest::option::of(prop_oneof![
            "\\PC{0,20}".prop_map(serde_json::Value::from),
            proptest::collection::vec("\\PC{0,8}", 0..4).prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
        ]),
    ) {
        let _ = refresh::parse_top(&raw);
        let mut obj = serde_json::Map::new();
        if let Some(u) = url { obj.insert("vault_url".into(), u.into()); }
        if let Some(t) = tok { obj.insert("vault_token".into(), t.into()); }
        if let Some(s) = scopes { obj.insert("scopes".into(), s); }
        let _ = refresh::parse_top(serde_json::Value::Object(obj).to_string().as_bytes());
    }

    /// htgettoken options and storer requests: shell words, options, requests.
    #[test]
    fn htgettoken_options_never_panic(
        text in "[-a-z =\"'\\\\&:/.0-9]{0,80}",
        words in proptest::collection::vec(
            prop_oneof![
                Just("-a".to_owned()), Just("-i".to_owned()), Just("-r".to_owned()),
                Just("--credkey".to_owned()), Just("--minsecs".to_owned()),
                Just("--vaulttokenttl".to_owned()), Just("--vaulttokenminttl".to_owned()),
                Just("--nokerberos".to_owned()), Just("--scopes".to_owned()),
                "\\PC{0,12}",
            ],
            0..8,
        ),
    ) {
        if let Ok(w) = robot_credmon::condor::config::words(&text) {
            let _ = options::parse(&w, "test");
        }
        let _ = options::parse(&words, "test");
        let _ = request::parse_request(&text);
    }

    /// Durations on the command line.
    #[test]
    fn durations_never_panic(s in "[0-9]{0,25}[a-z ]{0,6}[0-9]{0,5}") {
        let _ = robot_credmon::cli::parse_duration(&s);
    }

    /// HTCondor configuration values: `condor_config_val -dump` text, then
    /// the credmon's validation of every knob it reads.
    #[test]
    fn condor_config_values_never_panic(
        minimum in "\\PC{0,12}|[0-9]{1,25}|-[0-9]{1,20}",
        refresh_v in "\\PC{0,12}|[0-9]{1,25}",
        ports in "[0-9, ]{0,30}|\\PC{0,12}",
        junk in "\\PC{0,60}",
    ) {
        let dump = format!(
            "SEC_CREDENTIAL_DIRECTORY_OAUTH = /tmp/creds\nCREDMON_OAUTH_TOKEN_MINIMUM = {minimum}\nCREDMON_OAUTH_TOKEN_REFRESH = {refresh_v}\nCREDMON_OAUTH_ALLOWED_PORTS = {ports}\n{junk}\n"
        );
        let knobs = config::knobs::parse_dump(&dump);
        let Command::Credmon(args) = Cli::try_parse_from(["robot-credmon", "credmon"]).unwrap().command else {
            panic!("not the credmon");
        };
        let _ = config::resolve(&knobs, &config::Overrides::from(&args));
    }
}

proptest! {
    // Each case writes a file: fewer of them.
    #![proptest_config(config_for(48))]

    /// Keytab files: any bytes, and real-looking headers with garbage after.
    #[test]
    fn keytab_bytes_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..400),
        header in prop_oneof![Just(vec![0x05u8, 0x02]), Just(vec![0x05u8, 0x01]), Just(vec![])],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.keytab");
        let mut bytes = header;
        bytes.extend(body);
        let _ = robot_credmon::kerberos::parse_keytab_principals(&bytes);
        std::fs::write(&path, &bytes).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let _ = robot_credmon::kerberos::Keytab::open(&path, false);
    }
}
