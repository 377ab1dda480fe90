//! `robot-credmon get` against the test Vault and a real MIT KDC: every
//! scenario of the cron role, counted at the HTTP level.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::cmd::{Run, now, robot, run, unsigned_jwt};
use crate::support::{Fault, TestEnv};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LOGIN: &str = "/v1/auth/kerberos-igwn_robot/login";
const CREATE: &str = "/v1/auth/token/create";
const LOOKUP: &str = "/v1/auth/token/lookup-self";
const CREDS: &str = "/v1/secret/oauth/creds/igwn/robot/host.example:robot";

fn env() -> TestEnv {
    TestEnv::start().unwrap_or_else(|e| panic!("{e}"))
}

fn out(e: &TestEnv) -> PathBuf {
    e.path().join("bt")
}

fn vt(e: &TestEnv) -> PathBuf {
    e.path().join("vt")
}

/// `robot-credmon get` with the test's KDC, Vault, CA, keytab and files.
fn get_cmd(e: &TestEnv) -> Command {
    let mut c = get_cmd_without_principal(e);
    c.arg(e.kdc.principal(TestEnv::PRINCIPAL));
    c
}

fn get_cmd_without_principal(e: &TestEnv) -> Command {
    let mut c = robot(e.path());
    c.env("KRB5_CONFIG", e.kdc.krb5_conf())
        .arg("get")
        .args(["-a", &e.vault.url()])
        .arg("--cafile")
        .arg(e.vault.ca_file())
        .arg("-k")
        .arg(e.robot_keytab())
        .arg("-o")
        .arg(out(e))
        .arg("--vaulttokenfile")
        .arg(vt(e))
        .args(["--retry-time", "2s"]);
    c
}

fn get(e: &TestEnv, extra: &[&str]) -> Run {
    let mut c = get_cmd(e);
    c.args(extra);
    run(c)
}

fn write_token(path: &Path, exp_in: i64) -> String {
    let t = unsigned_jwt(&serde_json::json!({"sub": TestEnv::PRINCIPAL, "exp": now() + exp_in}));
    std::fs::write(path, format!("{t}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    t
}

fn assert_one_error_line(r: &Run) {
    assert_eq!(r.code, 1, "stderr: {}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {}", r.stderr);
    assert!(
        lines[0].starts_with("robot-credmon: error: "),
        "{}",
        r.stderr
    );
}

#[test]
fn cold_run_logs_in_exchanges_reads_once_and_writes_0600() {
    let e = env();
    let r = get(&e, &[]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(e.vault.logins(), 1);
    assert_eq!(e.vault.count("POST", LOGIN), 1);
    assert_eq!(e.vault.count("POST", CREATE), 1);
    assert_eq!(e.vault.count("GET", CREDS), 1);
    assert_eq!(e.vault.requests().len(), 3, "{:?}", e.vault.requests());
    let q = &e.vault.requests()[2].query;
    assert_eq!(q, "minimum_seconds=3600");

    let current = e
        .vault
        .current_access_token("igwn", TestEnv::PRINCIPAL, "robot")
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(out(&e)).unwrap(),
        format!("{current}\n")
    );
    for f in [out(&e), vt(&e)] {
        assert_eq!(
            std::fs::metadata(&f).unwrap().mode() & 0o777,
            0o600,
            "{}",
            f.display()
        );
    }
    // The saved token is the 7-day child, not the 28-day login token.
    let saved = std::fs::read_to_string(vt(&e)).unwrap();
    let info = e.vault.token_info(saved.trim()).unwrap();
    assert!(info.has_parent && info.creation_ttl == 604_800, "{info:?}");
    assert!(
        r.stdout.is_empty() && r.stderr.is_empty(),
        "quiet by default: {}{}",
        r.stdout,
        r.stderr
    );
}

#[test]
fn rerun_with_time_left_makes_no_request_and_leaves_the_file_alone() {
    let e = env();
    assert_eq!(get(&e, &[]).code, 0);
    let before = std::fs::read(out(&e)).unwrap();
    let mtime = std::fs::metadata(out(&e)).unwrap().mtime_nsec();
    e.vault.reset_counters();
    // Stop the KDC too: the fast path must not need it.
    let r = get(&e, &["-v"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(e.vault.requests().len(), 0);
    assert_eq!(std::fs::read(out(&e)).unwrap(), before);
    assert_eq!(std::fs::metadata(out(&e)).unwrap().mtime_nsec(), mtime);
    assert!(r.stderr.contains("nothing to do"), "{}", r.stderr);
}

#[test]
fn token_near_expiry_reuses_the_saved_vault_token() {
    let e = env();
    assert_eq!(get(&e, &[]).code, 0);
    write_token(&out(&e), 100);
    e.vault.reset_counters();
    let r = get(&e, &["-m", "600"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(e.vault.count("POST", LOGIN), 0);
    assert_eq!(e.vault.count("GET", LOOKUP), 1);
    assert_eq!(e.vault.count("GET", CREDS), 1);
    let current = e
        .vault
        .current_access_token("igwn", TestEnv::PRINCIPAL, "robot")
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(out(&e)).unwrap(),
        format!("{current}\n")
    );
}

#[test]
fn revoked_vault_token_leads_to_a_kerberos_login() {
    let e = env();
    assert_eq!(get(&e, &[]).code, 0);
    let saved = std::fs::read_to_string(vt(&e)).unwrap();
    assert!(e.vault.revoke_token(saved.trim()));
    write_token(&out(&e), 100);
    e.vault.reset_counters();
    let r = get(&e, &["-m", "600", "-v"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(e.vault.count("POST", LOGIN), 1);
    assert_ne!(std::fs::read_to_string(vt(&e)).unwrap(), saved);
    assert!(r.stderr.contains("Kerberos login"), "{}", r.stderr);
}

#[test]
fn expired_vault_token_without_ttl_check_gets_403_then_logs_in() {
    let e = env();
    assert_eq!(get(&e, &[]).code, 0);
    let saved = std::fs::read_to_string(vt(&e)).unwrap();
    assert!(e.vault.expire_token(saved.trim()));
    write_token(&out(&e), 100);
    e.vault.reset_counters();
    let r = get(&e, &["-m", "600", "--vaulttokenminttl", "0"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(e.vault.count("GET", LOOKUP), 0);
    assert_eq!(e.vault.count_status(CREDS, 403), 1);
    assert_eq!(e.vault.count("POST", LOGIN), 1);
}

fn keeps_old_token_on(fault: Fault, extra: &[&str], expect: &str) {
    let e = env();
    let old = write_token(&out(&e), 100);
    e.vault.inject(fault.permanent());
    let r = get(&e, extra);
    assert_one_error_line(&r);
    assert!(r.stderr.contains(expect), "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("https://localhost:{}", e.vault.port())),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(out(&e)).unwrap(),
        format!("{old}\n")
    );
    assert!(!r.stderr.contains(&old));
}

#[test]
fn server_error_keeps_the_previous_token_and_exits_1() {
    keeps_old_token_on(
        Fault::ldap_down(),
        &["--retry-time", "1500ms"],
        "could not connect to LDAP",
    );
}

#[test]
fn timeout_keeps_the_previous_token_and_exits_1() {
    keeps_old_token_on(
        Fault::delay("/v1/", Duration::from_secs(3)),
        &["--request-timeout", "500ms", "--retry-time", "1s"],
        "cannot reach Vault",
    );
}

#[test]
fn dropped_connection_keeps_the_previous_token_and_exits_1() {
    keeps_old_token_on(
        Fault::drop_connection("/v1/"),
        &["--retry-time", "1s"],
        "cannot reach Vault",
    );
}

#[test]
fn transient_errors_are_retried_with_backoff() {
    let e = env();
    e.vault.inject(
        Fault::status(
            "/v1/auth/kerberos-",
            503,
            r#"{"errors":["Vault is sealed"]}"#,
        )
        .times(2),
    );
    let r = get(&e, &["--retry-time", "10s", "-v"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(e.vault.count_status(LOGIN, 503), 2);
    assert_eq!(e.vault.count_status(LOGIN, 200), 1);
    assert!(r.stderr.contains("retrying in"), "{}", r.stderr);
}

#[test]
fn missing_keytab_is_refused_by_name() {
    let e = env();
    let r = get(&e, &["-k", "/nonexistent/robot.keytab"]);
    assert_one_error_line(&r);
    assert!(
        r.stderr
            .contains("'/nonexistent/robot.keytab' does not exist"),
        "{}",
        r.stderr
    );
    assert_eq!(e.vault.requests().len(), 0);
}

#[test]
fn keytab_readable_by_others_is_refused() {
    let e = env();
    std::fs::set_permissions(e.robot_keytab(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = get(&e, &[]);
    assert_one_error_line(&r);
    assert!(
        r.stderr.contains("mode 0644") && r.stderr.contains("chmod 600"),
        "{}",
        r.stderr
    );
    assert_eq!(e.vault.requests().len(), 0);
}

#[test]
fn unreadable_keytab_is_refused() {
    let e = env();
    let mut c = get_cmd(&e);
    if nix::unistd::geteuid().is_root() {
        // root reads everything: run as nobody, with a work dir nobody can use.
        std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        std::os::unix::process::CommandExt::uid(&mut c, 65534);
    } else {
        std::fs::set_permissions(e.robot_keytab(), std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    let r = run(c);
    assert_one_error_line(&r);
    assert!(r.stderr.contains("cannot read keytab"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&e.robot_keytab().display().to_string()),
        "{}",
        r.stderr
    );
}

#[test]
fn keytab_without_the_principal_is_refused() {
    let e = env();
    let mut c = get_cmd_without_principal(&e);
    c.arg("someone/else@EXAMPLE.TEST");
    let r = run(c);
    assert_one_error_line(&r);
    assert!(
        r.stderr
            .contains("holds no key for principal 'someone/else@EXAMPLE.TEST'"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("robot/host.example@EXAMPLE.TEST"),
        "{}",
        r.stderr
    );
}

#[test]
fn stale_keytab_key_gives_a_kerberos_error() {
    let e = env();
    let mut c = get_cmd_without_principal(&e);
    c.arg("-k")
        .arg(e.kdc.wrong_keytab())
        .arg("robot/stale.example@EXAMPLE.TEST");
    let r = run(c);
    assert_one_error_line(&r);
    assert!(
        r.stderr
            .contains("cannot get a Kerberos ticket for 'robot/stale.example@EXAMPLE.TEST'"),
        "{}",
        r.stderr
    );
    assert_eq!(e.vault.requests().len(), 0);
}

#[test]
fn planted_symlink_at_the_output_is_refused() {
    let e = env();
    let victim = e.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    symlink(&victim, out(&e)).unwrap();
    let r = get(&e, &[]);
    assert_one_error_line(&r);
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(
        std::fs::symlink_metadata(out(&e))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn output_owned_by_another_user_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        panic!("this test needs root (to chown a file to another user); run the suite as root");
    }
    let e = env();
    let old = write_token(&out(&e), 100);
    std::os::unix::fs::chown(out(&e), Some(4242), Some(4242)).unwrap();
    let r = get(&e, &[]);
    assert_one_error_line(&r);
    assert!(r.stderr.contains("owned by uid 4242"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(out(&e)).unwrap(),
        format!("{old}\n")
    );
}

/// Issue 16: a hard-linked token file in the user's own directory is not
/// trusted (not even a fresh token in it) and is replaced by a rename; the
/// other link keeps the old file.
#[test]
fn hard_linked_output_in_own_directory_is_replaced_not_trusted() {
    let e = env();
    let other = e.path().join("other");
    let old = write_token(&other, 7200);
    std::fs::hard_link(&other, out(&e)).unwrap();
    let r = get(&e, &[]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(
        e.vault.count("GET", CREDS),
        1,
        "the linked token is not trusted"
    );
    let current = e
        .vault
        .current_access_token("igwn", TestEnv::PRINCIPAL, "robot")
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(out(&e)).unwrap(),
        format!("{current}\n")
    );
    assert_eq!(std::fs::metadata(out(&e)).unwrap().nlink(), 1);
    assert_eq!(std::fs::read_to_string(&other).unwrap(), format!("{old}\n"));
    assert!(r.stderr.contains("several hard links"), "{}", r.stderr);
}

/// Issue 16: elsewhere (a directory others may write in) it is refused with the reason.
#[test]
fn hard_linked_output_in_a_shared_directory_is_refused_with_the_reason() {
    let e = env();
    let shared = e.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let other = shared.join("other");
    let old = write_token(&other, 100);
    let linked = shared.join("bt");
    std::fs::hard_link(&other, &linked).unwrap();
    let mut c = get_cmd(&e);
    c.arg("-o").arg(&linked);
    let r = run(c);
    assert_one_error_line(&r);
    assert!(
        r.stderr
            .contains("has several hard links and its directory is writable by others (mode 0777)"),
        "{}",
        r.stderr
    );
    assert_eq!(e.vault.requests().len(), 0, "{:?}", e.vault.requests());
    assert_eq!(
        std::fs::read_to_string(&linked).unwrap(),
        format!("{old}\n")
    );
}

/// Issue 16: `token --verify` fetches the issuer's documents through the
/// Vault HTTP layer, with its retries: a passing 503 of the JWKS is retried.
#[test]
fn token_verify_retries_a_passing_failure_of_the_issuer() {
    let e = env();
    assert_eq!(get(&e, &[]).code, 0);
    e.vault.inject(
        Fault::status("/issuer/", 503, r#"{"errors":["try again"]}"#)
            .method("GET")
            .times(1),
    );
    let mut c = robot(e.path());
    c.arg("token")
        .arg("--verify")
        .arg(out(&e))
        .arg("--cafile")
        .arg(e.vault.ca_file());
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("signature  verified"), "{}", r.stdout);
    assert_eq!(e.vault.faults_fired(), 1);
}

#[test]
fn twenty_concurrent_runs_refresh_once() {
    let e = env();
    assert_eq!(get(&e, &[]).code, 0);
    write_token(&out(&e), 100);
    e.vault.reset_counters();
    let children: Vec<_> = (0..20)
        .map(|_| {
            let mut c = get_cmd(&e);
            c.args(["-m", "600"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for child in children {
        let r: Run = child.wait_with_output().unwrap().into();
        assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    }
    let reads = e.vault.count("GET", CREDS);
    assert!((1..=2).contains(&reads), "{reads} bearer reads");
    let current = e
        .vault
        .current_access_token("igwn", TestEnv::PRINCIPAL, "robot")
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(out(&e)).unwrap(),
        format!("{current}\n")
    );
    let leftovers: Vec<_> = std::fs::read_dir(e.path())
        .unwrap()
        .filter_map(|d| d.ok())
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("robot-credmon-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// `get` without `-o`, in a given environment; returns where the token went.
fn default_output(e: &TestEnv, vars: &[(&str, &Path)]) -> Run {
    let mut c = robot(e.path());
    c.env("KRB5_CONFIG", e.kdc.krb5_conf());
    for (k, v) in vars {
        c.env(k, v);
    }
    c.arg("get")
        .args(["-a", &e.vault.url()])
        .arg("--cafile")
        .arg(e.vault.ca_file())
        .arg("-k")
        .arg(e.robot_keytab())
        .arg("--vaulttokenfile")
        .arg(vt(e))
        .arg(e.kdc.principal(TestEnv::PRINCIPAL));
    run(c)
}

#[test]
fn default_output_follows_wlcg_discovery() {
    let e = env();
    let uid = nix::unistd::geteuid().as_raw();
    let xdg = e.path().join("run");
    std::fs::create_dir(&xdg).unwrap();
    let explicit = e.path().join("explicit-bt");

    let r = default_output(&e, &[("XDG_RUNTIME_DIR", &xdg)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(xdg.join(format!("bt_u{uid}")).is_file());

    let r = default_output(
        &e,
        &[("XDG_RUNTIME_DIR", &xdg), ("BEARER_TOKEN_FILE", &explicit)],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(explicit.is_file());

    let tmp = PathBuf::from(format!("/tmp/bt_u{uid}"));
    let saved = std::fs::read(&tmp).ok();
    let _ = std::fs::remove_file(&tmp);
    let r = default_output(&e, &[]);
    let written = tmp.is_file();
    match saved {
        Some(bytes) => std::fs::write(&tmp, bytes).unwrap(),
        None => {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    let _ = std::fs::remove_file(format!("/tmp/.bt_u{uid}.lock"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(written, "no token in {}", tmp.display());
}

#[test]
fn invoked_as_igwn_robot_get_behaves_as_get() {
    let e = env();
    let link = e.path().join("igwn-robot-get");
    symlink(crate::cmd::bin(), &link).unwrap();
    let v = run({
        let mut c = Command::new(&link);
        c.arg("--version");
        c
    });
    assert_eq!(v.code, 0);
    assert!(v.stdout.starts_with("igwn-robot-get "), "{}", v.stdout);
    let mut c = Command::new(&link);
    c.env_clear()
        .env("KRB5_CONFIG", e.kdc.krb5_conf())
        .env(
            "KRB5_KTNAME",
            format!("FILE:{}", e.robot_keytab().display()),
        )
        .env("BEARER_TOKEN_FILE", out(&e))
        .args([
            "-a",
            &e.vault.url(),
            "--minsecs",
            "3600",
            "--vaulttokenfile",
        ])
        .arg(vt(&e))
        .arg("--cafile")
        .arg(e.vault.ca_file());
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(out(&e).is_file());
    // Usage errors exit 2, as argparse does.
    let bad = run({
        let mut c = Command::new(&link);
        c.arg("--no-such-option");
        c
    });
    assert_eq!(bad.code, 2);
}

#[test]
fn verbose_output_shows_claims_but_never_tokens() {
    let e = env();
    let r = get(&e, &["-vv"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let bearer = std::fs::read_to_string(out(&e)).unwrap();
    let vault_token = std::fs::read_to_string(vt(&e)).unwrap();
    for needle in ["iss ", "sub ", "exp ", "wrote a new bearer token to"] {
        assert!(
            r.stderr.contains(needle),
            "missing {needle:?} in {}",
            r.stderr
        );
    }
    assert!(r.stderr.contains(&out(&e).display().to_string()));
    assert!(!r.stderr.contains(bearer.trim()) && !r.stderr.contains(vault_token.trim()));
    assert!(!r.stdout.contains(bearer.trim()));
}

#[test]
fn rejected_kerberos_login_names_the_service_and_the_likely_causes() {
    let e = TestEnv::start_with(|cfg| cfg.service_keytab = None).unwrap();
    let r = get(&e, &[]);
    assert_one_error_line(&r);
    for needle in ["answered 401", "host/localhost", "clock", "decode_pac"] {
        assert!(
            r.stderr.contains(needle),
            "missing {needle:?}: {}",
            r.stderr
        );
    }
}

/// `robot-credmon check` on the test's token file.
fn check_token(e: &TestEnv) -> Run {
    let mut c = robot(e.path());
    c.arg("check").arg(out(e));
    run(c)
}

#[test]
fn missing_credential_says_a_person_must_log_in_once() {
    let e = env();
    assert!(
        e.vault
            .remove_credential("igwn", TestEnv::PRINCIPAL, "robot")
    );
    let r = get(&e, &["--nooidc"]);
    assert_eq!(
        r.code, 4,
        "needs a person: its own exit status; {}",
        r.stderr
    );
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", r.stderr);
    let want = format!(
        "robot-credmon: error: Vault at localhost:{} holds no credential for credkey 'robot/host.example' (issuer igwn, role robot); a person must log in once: run on a terminal: ",
        e.vault.port()
    );
    assert!(lines[0].starts_with(&want), "{}", r.stderr);
    // The command: this one, with --oidc instead of --nooidc.
    // The line docs/troubleshooting.md quotes.
    eprintln!("{}", lines[0]);
    let command = &lines[0][want.len()..];
    assert!(
        command.contains(" get -a ") && command.ends_with(" --oidc"),
        "{command}"
    );
    assert!(!command.contains("--nooidc"), "{command}");
    assert!(
        !vt(&e).exists(),
        "a Vault token is saved only after a successful read"
    );
    // check is CRITICAL with that command, even though an old token is still good.
    write_token(&out(&e), 7200);
    let c = check_token(&e);
    assert_eq!(c.code, 2, "{}", c.stdout);
    assert!(
        c.stdout
            .starts_with("CRITICAL - a person must log in: Vault at localhost:")
            && c.stdout.contains(command),
        "{}",
        c.stdout
    );
    // The refused refresh token of a credential that existed: the same signal.
    e.vault.add_credential("igwn", TestEnv::PRINCIPAL, "robot");
    assert!(
        e.vault
            .revoke_refresh_token("igwn", TestEnv::PRINCIPAL, "robot")
    );
    std::fs::remove_file(out(&e)).unwrap();
    let r = get(&e, &[]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("the issuer refused the refresh token"),
        "{}",
        r.stderr
    );
    // Once a person has logged in, the next run clears the marker and check is OK.
    e.vault.add_credential("igwn", TestEnv::PRINCIPAL, "robot");
    let r = get(&e, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!e.path().join(".bt.login-needed").exists());
    let c = check_token(&e);
    assert_eq!(c.code, 0, "{}", c.stdout);
}

#[test]
fn scopes_and_audience_use_token_exchange() {
    let e = env();
    let r = get(
        &e,
        &[
            "--scopes",
            "storage.read:/frames",
            "--audience",
            "https://se.example",
            "-m",
            "60",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let reads: Vec<_> = e
        .vault
        .requests()
        .into_iter()
        .filter(|q| q.path.contains("/sts/"))
        .collect();
    assert_eq!(reads.len(), 1, "{:?}", e.vault.requests());
    assert_eq!(
        reads[0].path,
        "/v1/secret/oauth/sts/igwn/robot/host.example:robot"
    );
    for part in [
        "minimum_seconds=60",
        "scopes=storage.read%3A%2Fframes",
        "audiences=https%3A%2F%2Fse.example",
    ] {
        assert!(reads[0].query.contains(part), "{}", reads[0].query);
    }
    let shown = run({
        let mut c = robot(e.path());
        c.args(["token", "--json"]).arg(out(&e));
        c
    });
    let claims: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(claims["scope"], "storage.read:/frames");
    assert_eq!(claims["aud"], serde_json::json!(["https://se.example"]));
}

#[test]
fn token_command_shows_claims_verifies_and_judges_lifetime() {
    let e = env();
    assert_eq!(get(&e, &[]).code, 0);
    let show = |args: &[&str]| {
        let mut c = robot(e.path());
        c.arg("token")
            .args(args)
            .arg(out(&e))
            .arg("--cafile")
            .arg(e.vault.ca_file());
        run(c)
    };
    let r = show(&["--verify"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("signature  verified"), "{}", r.stdout);
    assert!(
        r.stdout.contains("remaining  2h") || r.stdout.contains("remaining  3h"),
        "{}",
        r.stdout
    );
    let j = show(&["--json"]);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["sub"], TestEnv::PRINCIPAL);
    // More than the token's lifetime asked for: exit 1.
    assert_eq!(show(&["-m", "20000"]).code, 1);
    // A forged token fails verification.
    write_token(&out(&e), 3600);
    let forged = show(&["--verify"]);
    assert_eq!(forged.code, 1);
    assert!(forged.stderr.contains("cannot verify"), "{}", forged.stderr);
    // Not a token at all.
    std::fs::write(out(&e), "hello world\n").unwrap();
    let junk = show(&[]);
    assert_eq!(junk.code, 1);
    assert!(
        junk.stderr.contains("does not hold a bearer token"),
        "{}",
        junk.stderr
    );
}

#[test]
fn metrics_file_records_refreshes_and_failures() {
    use robot_credmon::metrics::{GetMetrics, get_names};
    let e = env();
    let metrics = e.path().join("robot.prom");
    let m = metrics.to_str().unwrap();
    assert_eq!(get(&e, &["--metrics-file", m]).code, 0);
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(text.contains(get_names::REFRESHES), "{text}");
    let first = GetMetrics::load(&metrics).unwrap();
    assert_eq!(first.refreshes_by_cause.get("missing"), Some(&1));
    assert!(first.expiry.unwrap() > now() + 3000, "{first:?}");
    assert_eq!(first.consecutive_failures, 0);

    write_token(&out(&e), 100);
    e.vault.inject(Fault::ldap_down().permanent());
    e.vault
        .inject(Fault::status("/v1/", 500, r#"{"errors":["internal error"]}"#).permanent());
    assert_eq!(
        get(
            &e,
            &["--metrics-file", m, "--retry-time", "1s", "-m", "600"]
        )
        .code,
        1
    );
    let second = GetMetrics::load(&metrics).unwrap();
    assert_eq!(second.consecutive_failures, 1);
    assert_eq!(second.failures_by_cause.get("vault"), Some(&1));
    assert_eq!(
        second.refreshes_by_cause.get("missing"),
        Some(&1),
        "counters carry over"
    );
    assert!(!text.contains(std::fs::read_to_string(out(&e)).unwrap().trim()));
}

#[test]
fn vault_token_min_ttl_must_be_below_its_ttl() {
    let e = env();
    let r = get(&e, &["--vaulttokenminttl", "8d"]);
    assert_one_error_line(&r);
    assert!(
        r.stderr
            .contains("--vaulttokenminttl (691200 s) must be less than --vaulttokenttl (604800 s)"),
        "{}",
        r.stderr
    );
    assert_eq!(e.vault.requests().len(), 0);
}

#[test]
fn help_and_usage_errors_print_once() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        vec!["--help"],
        vec!["get", "--help"],
        vec!["get", "--bogus"],
    ] {
        let mut c = robot(tmp.path());
        c.args(&args);
        let r = run(c);
        let all = format!("{}{}", r.stdout, r.stderr);
        assert_eq!(all.matches("Usage:").count(), 1, "{args:?}: {all}");
        assert_eq!(
            r.code,
            if args.contains(&"--bogus") { 2 } else { 0 },
            "{args:?}"
        );
    }
}
