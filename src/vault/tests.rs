use super::*;

#[test]
fn retry_after_parsing() {
    for (v, want) in [
        ("0", Some(0)),
        ("7", Some(7)),
        (" 120 ", Some(120)),
        ("99999999999", None),
        ("-1", None),
        ("1.5", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ("", None),
    ] {
        assert_eq!(parse_retry_after(v), want.map(Duration::from_secs), "{v:?}");
    }
}

fn status(code: u16) -> VaultError {
    VaultError::Status {
        server: "s".into(),
        path: "p".into(),
        status: code,
        errors: vec![],
        warnings: vec![],
        retry_after: None,
    }
}

#[test]
fn retry_decision_table() {
    let transport = || VaultError::Transport {
        server: "s".into(),
        detail: "reset".into(),
    };
    let b = Duration::from_millis(500);
    let f = |error, sent, retry_after: Option<u64>| Failure {
        error,
        sent,
        retry_after: retry_after.map(Duration::from_secs),
    };
    // (failure, retry kind, expected delay)
    let cases = [
        (f(status(503), true, None), Retry::Always, Some(b)),
        (f(status(503), true, None), Retry::UnlessSent, Some(b)),
        (
            f(status(429), true, Some(3)),
            Retry::Always,
            Some(Duration::from_secs(3)),
        ),
        (
            f(status(429), true, Some(3600)),
            Retry::Always,
            Some(MAX_RETRY_AFTER),
        ),
        (f(status(429), true, None), Retry::Always, Some(b)),
        (f(status(400), true, None), Retry::Always, None),
        (f(status(403), true, None), Retry::Always, None),
        (f(status(404), true, Some(1)), Retry::Always, None),
        (f(transport(), true, None), Retry::Always, Some(b)),
        (f(transport(), true, None), Retry::UnlessSent, None),
        (f(transport(), false, None), Retry::UnlessSent, Some(b)),
        (
            f(
                VaultError::TlsTrust {
                    server: "s".into(),
                    detail: "unknown issuer".into(),
                },
                false,
                None,
            ),
            Retry::Always,
            None,
        ),
    ];
    for (failure, retry, want) in cases {
        assert_eq!(
            retry_delay(&failure, retry, b),
            want,
            "{failure:?} {retry:?}"
        );
    }
}

#[test]
fn answers_that_need_a_person() {
    let status = |code: u16, path: &str, errors: &[&str]| VaultError::Status {
        server: "s".into(),
        path: path.into(),
        status: code,
        errors: errors.iter().map(|e| e.to_string()).collect(),
        warnings: vec![],
        retry_after: None,
    };
    let creds = "secret/oauth/creds/igwn/alice:default";
    for (e, want) in [
        (status(404, creds, &[]), Some(LoginNeeded::NoCredential)),
        (
            status(404, "secret/oauth/sts/igwn/a:r", &[]),
            Some(LoginNeeded::NoCredential),
        ),
        (status(404, "auth/kerberos-igwn_robot/login", &[]), None),
        (
            status(400, creds, &["refresh failed: invalid_grant"]),
            Some(LoginNeeded::RefreshRefused),
        ),
        (status(400, creds, &["token expired"]), None),
        (status(403, creds, &["permission denied"]), None),
        (status(500, creds, &[]), None),
    ] {
        assert_eq!(e.login_needed(), want, "{e}");
    }
}
