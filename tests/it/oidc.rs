//! The interactive first-time login (OIDC device flow through Vault) of `get`,
//! on a pseudo-terminal made by util-linux `script`, and its refusal without one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::cmd::{Run, robot, run};
use crate::support::TestEnv;
use crate::support::vault::OidcScript;
use std::path::Path;
use std::process::Command;

const AUTH_URL: &str = "/v1/auth/oidc-igwn/oidc/auth_url";

fn env_without_credential() -> TestEnv {
    let e = TestEnv::start().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        e.vault
            .remove_credential("igwn", TestEnv::PRINCIPAL, "robot")
    );
    e
}

fn get_args(e: &TestEnv) -> Vec<String> {
    vec![
        crate::cmd::bin().display().to_string(),
        "get".into(),
        "-a".into(),
        e.vault.url(),
        "--cafile".into(),
        e.vault.ca_file().display().to_string(),
        "-k".into(),
        e.robot_keytab().display().to_string(),
        "-o".into(),
        e.path().join("bt").display().to_string(),
        "--vaulttokenfile".into(),
        e.path().join("vt").display().to_string(),
        "--oidc-timeout".into(),
        "30s".into(),
        "--web-open-command".into(),
        e.path().join("open-url").display().to_string(),
        e.kdc.principal(TestEnv::PRINCIPAL),
    ]
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Runs `get` inside `script`, so stdin, stdout and stderr are a terminal.
fn get_on_pty(e: &TestEnv) -> Run {
    let opener = e.path().join("open-url");
    std::fs::write(
        &opener,
        format!(
            "#!/bin/sh\necho \"$1\" > {}\n",
            sh_quote(&e.path().join("opened").display().to_string())
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).unwrap();
    let line = get_args(e)
        .iter()
        .map(|a| sh_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    let mut c = Command::new("script");
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", e.path())
        .env("KRB5_CONFIG", e.kdc.krb5_conf())
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    // script needs a stdin; keep it open (a pipe) until the child is done.
    let child = c
        .spawn()
        .expect("util-linux script is needed for the terminal test");
    let out = child.wait_with_output().unwrap();
    out.into()
}

fn file(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

#[test]
fn no_prompt_without_a_terminal() {
    let e = env_without_credential();
    e.vault.set_oidc(OidcScript {
        credkey: "robot".into(),
        poll_interval: 1,
        ..OidcScript::default()
    });
    let mut c = robot(e.path());
    c.env("KRB5_CONFIG", e.kdc.krb5_conf())
        .args(&get_args(&e)[1..]);
    let r = run(c);
    assert_eq!(r.code, 4, "needs a person: exit 4; stderr: {}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("holds no credential for credkey 'robot/host.example'"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("a person must log in once: run on a terminal: ")
            && r.stderr.trim_end().ends_with(" --oidc"),
        "{}",
        r.stderr
    );
    assert_eq!(e.vault.count("POST", AUTH_URL), 0);
    assert!(file(&e.path().join("bt")).is_none());
    // --oidc is refused the same way.
    let mut c = robot(e.path());
    c.env("KRB5_CONFIG", e.kdc.krb5_conf())
        .args(&get_args(&e)[1..])
        .arg("--oidc");
    let r = run(c);
    assert_eq!(r.code, 4, "stderr: {}", r.stderr);
    assert!(
        r.stderr
            .contains("--oidc was given, but there is no terminal; a person must log in once"),
        "{}",
        r.stderr
    );
    assert_eq!(e.vault.count("POST", AUTH_URL), 0);
}

#[test]
fn oidc_bootstrap_on_a_terminal_stores_the_refresh_token_and_writes_the_token() {
    let e = env_without_credential();
    e.vault.set_oidc(OidcScript {
        pending: 2,
        slow_down: 1,
        credkey: "robot".into(),
        poll_interval: 1,
        redirect_port: Some(e.vault.port()),
        ..OidcScript::default()
    });
    let r = get_on_pty(&e);
    assert_eq!(r.code, 0, "output: {}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("Complete the authentication at:"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("ABCD-EFGH"), "{}", r.stdout);
    assert!(
        file(&e.path().join("opened"))
            .unwrap()
            .contains("/device?user_code=ABCD-EFGH")
    );
    assert_eq!(e.vault.count("POST", AUTH_URL), 1);
    assert_eq!(e.vault.oidc_polls(), 4);
    // Refresh token stored at the robot's creds path; credkey saved like htgettoken.
    assert_eq!(
        e.vault.count(
            "POST",
            "/v1/secret/oauth/creds/igwn/robot/host.example:robot"
        ),
        1
    );
    assert_eq!(e.vault.credential_count(), 1);
    assert_eq!(
        file(&e.path().join(".config/htgettoken/credkey-igwn-robot")).as_deref(),
        Some("robot\n")
    );
    let current = e
        .vault
        .current_access_token("igwn", TestEnv::PRINCIPAL, "robot")
        .unwrap();
    assert_eq!(file(&e.path().join("bt")).unwrap(), format!("{current}\n"));
    assert!(file(&e.path().join("vt")).is_some());
    assert!(!r.stdout.contains("rt-from-the-issuer"));
}

#[test]
fn expired_oidc_login_writes_nothing() {
    let e = env_without_credential();
    e.vault.set_oidc(OidcScript {
        pending: 1,
        expire: true,
        credkey: "robot".into(),
        poll_interval: 1,
        ..OidcScript::default()
    });
    let r = get_on_pty(&e);
    assert_eq!(r.code, 1, "output: {}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("expired_token"), "{}", r.stdout);
    assert!(file(&e.path().join("bt")).is_none());
    assert!(file(&e.path().join("vt")).is_none());
    assert!(file(&e.path().join(".config/htgettoken/credkey-igwn-robot")).is_none());
}
