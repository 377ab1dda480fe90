//! The fault matrix of `get` (docs/reliability.md): one test per failure
//! class against the test Vault and a real KDC. Each asserts the exit code,
//! one clear line, the previous token byte-for-byte intact, no temporary
//! files left, and no secret in any output.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::cmd::{Run, now, robot, run, unsigned_jwt};
use crate::support::pki::TestPki;
use crate::support::{Fault, TestEnv, wait};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CREATE: &str = "/v1/auth/token/create";
const CREDS: &str = "/v1/secret/oauth/creds/igwn/robot/host.example:robot";
const TEMP_MARKER: &str = ".robot-credmon-tmp.";
/// A user that owns nothing of ours: the "other user" of the planted-file cases.
const NOBODY: u32 = 65534;

fn env() -> TestEnv {
    TestEnv::start().unwrap_or_else(|e| panic!("{e}"))
}

/// `get` with the test's KDC, Vault, CA and keytab, writing into `dir`.
fn get_in(e: &TestEnv, dir: &Path, retry: &str, extra: &[&str]) -> Run {
    let mut c = robot(e.path());
    c.env("KRB5_CONFIG", e.kdc.krb5_conf())
        .arg("get")
        .args(["-a", &e.vault.url()])
        .arg("-k")
        .arg(e.robot_keytab())
        .arg("-o")
        .arg(dir.join("bt"))
        .arg("--vaulttokenfile")
        .arg(dir.join("vt"))
        .args(["--retry-time", retry]);
    if !extra.contains(&"--cafile") {
        c.arg("--cafile").arg(e.vault.ca_file());
    }
    c.args(extra).arg(e.kdc.principal(TestEnv::PRINCIPAL));
    run(c)
}

fn get(e: &TestEnv, extra: &[&str]) -> Run {
    get_in(e, e.path(), "2s", extra)
}

fn bt(e: &TestEnv) -> PathBuf {
    e.path().join("bt")
}

fn vt(e: &TestEnv) -> PathBuf {
    e.path().join("vt")
}

/// A token that expires in `secs` (unsigned; `get` never verifies signatures).
fn token_expiring_in(secs: i64) -> String {
    unsigned_jwt(&serde_json::json!({"sub": TestEnv::PRINCIPAL, "exp": now() + secs, "iat": now()}))
}

fn write_token(path: &Path, text: &str) -> Vec<u8> {
    let bytes = format!("{text}\n").into_bytes();
    std::fs::write(path, &bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    bytes
}

/// A first good run (saved Vault token), then a token with 100 s left in
/// place, so the next run must refresh. Returns the token file's bytes.
fn prepared(e: &TestEnv) -> Vec<u8> {
    let r = get(e, &[]);
    assert_eq!(r.code, 0, "first run: {}", r.stderr);
    let before = write_token(&bt(e), &token_expiring_in(100));
    e.vault.reset_counters();
    before
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|d| d.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains(TEMP_MARKER))
        .collect()
}

/// Every secret this test has seen: Vault tokens sent or saved, the bearer tokens Vault holds.
fn secrets(e: &TestEnv, dir: &Path) -> Vec<String> {
    let mut s: Vec<String> = e
        .vault
        .requests()
        .into_iter()
        .filter_map(|r| r.vault_token)
        .collect();
    if let Ok(t) = std::fs::read_to_string(dir.join("vt")) {
        s.push(t.trim().to_owned());
    }
    if let Some(t) =
        e.vault
            .current_access_token(TestEnv::ISSUER, TestEnv::PRINCIPAL, TestEnv::ROLE)
    {
        s.push(t);
    }
    s.retain(|t| !t.is_empty());
    s
}

/// The common assertions of a failure: exit 1, one `robot-credmon: error:`
/// line containing `needle`, the token file unchanged, no temporary files,
/// no secret in the output.
fn assert_failed_safely(e: &TestEnv, dir: &Path, r: &Run, before: &[u8], needle: &str) {
    assert_eq!(r.code, 1, "stderr: {}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {}", r.stderr);
    assert!(
        lines[0].starts_with("robot-credmon: error: "),
        "{}",
        r.stderr
    );
    assert!(
        lines[0].contains(needle),
        "expected '{needle}' in: {}",
        r.stderr
    );
    assert_eq!(
        std::fs::read(dir.join("bt")).unwrap(),
        before,
        "token changed"
    );
    assert_no_leftovers_or_secrets(e, dir, r);
}

fn assert_no_leftovers_or_secrets(e: &TestEnv, dir: &Path, r: &Run) {
    assert_eq!(
        temp_files(dir),
        Vec::<String>::new(),
        "temporary files left"
    );
    for s in secrets(e, dir) {
        assert!(
            !r.stderr.contains(&s) && !r.stdout.contains(&s),
            "a secret was printed: {}{}",
            r.stdout,
            r.stderr
        );
    }
}

#[test]
fn fault_5xx_keeps_the_token() {
    let e = env();
    let before = prepared(&e);
    e.vault.inject(Fault::sealed().permanent());
    let r = get(&e, &[]);
    assert_failed_safely(&e, e.path(), &r, &before, "503");
}

#[test]
fn fault_429_retry_after_is_honoured() {
    let e = env();
    let before = prepared(&e);
    e.vault
        .inject(Fault::rate_limited(CREDS).header("Retry-After", "2"));
    let start = Instant::now();
    let r = get_in(&e, e.path(), "10s", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        start.elapsed() >= Duration::from_millis(1900),
        "retried after {:?}, before Retry-After",
        start.elapsed()
    );
    assert_eq!(e.vault.count("GET", CREDS), 2);
    assert_ne!(std::fs::read(bt(&e)).unwrap(), before);
    assert_no_leftovers_or_secrets(&e, e.path(), &r);
}

#[test]
fn fault_429_without_retry_after_backs_off_then_fails() {
    let e = env();
    let before = prepared(&e);
    e.vault.inject(Fault::rate_limited(CREDS).permanent());
    let r = get(&e, &[]);
    assert_failed_safely(&e, e.path(), &r, &before, "rate limit");
    assert!(e.vault.count("GET", CREDS) >= 2, "no retry");
}

#[test]
fn fault_connection_reset_keeps_the_token() {
    let e = env();
    let before = prepared(&e);
    e.vault.inject(Fault::drop_connection(CREDS).permanent());
    let r = get(&e, &[]);
    assert_failed_safely(&e, e.path(), &r, &before, "cannot reach Vault");
}

#[test]
fn fault_token_create_is_not_retried_once_sent() {
    let e = env();
    let before = write_token(&bt(&e), &token_expiring_in(100));
    e.vault.inject(Fault::drop_connection(CREATE));
    let r = get(&e, &[]);
    assert_failed_safely(&e, e.path(), &r, &before, "cannot reach Vault");
    assert_eq!(e.vault.count("POST", CREATE), 1, "{:?}", e.vault.requests());
}

#[test]
fn fault_endless_body_is_cut_off() {
    let e = env();
    let before = prepared(&e);
    e.vault.inject(Fault::endless_body(CREDS).permanent());
    let r = get(&e, &[]);
    assert_failed_safely(&e, e.path(), &r, &before, "larger than");
    let sent = e.vault.streamed_bytes();
    assert!(
        sent < 16 * 1024 * 1024,
        "read {sent} bytes of an endless body"
    );
}

#[test]
fn fault_slow_body_times_out() {
    let e = env();
    let before = prepared(&e);
    e.vault
        .inject(Fault::slow_body(CREDS, Duration::from_millis(200)).permanent());
    let start = Instant::now();
    let r = get(&e, &["--request-timeout", "1s"]);
    assert_failed_safely(&e, e.path(), &r, &before, "cannot reach Vault");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn fault_non_json_answer() {
    let e = env();
    let before = prepared(&e);
    e.vault
        .inject(Fault::status(CREDS, 200, "<html>proxy error</html>").permanent());
    let r = get(&e, &[]);
    assert_failed_safely(&e, e.path(), &r, &before, "not JSON");
}

#[test]
fn fault_non_jwt_token() {
    let e = env();
    let before = prepared(&e);
    e.vault
        .inject(Fault::access_token(CREDS, "opaque-token-value").permanent());
    let r = get(&e, &[]);
    assert_failed_safely(&e, e.path(), &r, &before, "not a JWT");
}

/// A token with these claims from Vault is refused and the old one kept.
fn refused_token(claims: serde_json::Value, needle: &str) {
    let e = env();
    let before = prepared(&e);
    let bad = unsigned_jwt(&claims);
    e.vault.inject(Fault::access_token(CREDS, &bad).permanent());
    let r = get(&e, &[]);
    assert_failed_safely(&e, e.path(), &r, &before, needle);
    assert!(!r.stderr.contains(&bad));
}

#[test]
fn fault_expired_token_is_never_written() {
    refused_token(
        serde_json::json!({"sub": "x", "exp": now() - 3600, "iat": now() - 14400}),
        "expired 1h",
    );
}

#[test]
fn fault_far_future_exp_is_invalid() {
    refused_token(
        serde_json::json!({"sub": "x", "exp": 253_402_300_800_i64}),
        "exp claim (253402300800) is out of range",
    );
}

#[test]
fn fault_negative_exp_does_not_wrap() {
    refused_token(
        serde_json::json!({"sub": "x", "exp": -9.3e18}),
        "out of range",
    );
}

#[test]
fn fault_token_without_exp() {
    refused_token(serde_json::json!({"sub": "x"}), "no exp claim");
}

#[test]
fn fault_issuer_clock_behind_is_named() {
    let e = env();
    let before = prepared(&e);
    // The issuer (Vault's clock here) 4 h behind, 3 h tokens: already expired.
    e.vault.set_clock_offset(-4 * 3600);
    e.vault.expire_access_tokens();
    let r = get(&e, &[]);
    assert_failed_safely(&e, e.path(), &r, &before, "clock");
    assert!(r.stderr.contains("is 4h00m in the past"), "{}", r.stderr);
}

#[test]
fn fault_short_lived_token_is_kept_with_one_warning() {
    let e = env();
    prepared(&e);
    e.vault.set_jwt_lifetime(1800);
    e.vault.expire_access_tokens();
    let r = get(&e, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", r.stderr);
    assert!(lines[0].contains("not over --minsecs 3600"), "{}", r.stderr);
    let t = std::fs::read_to_string(bt(&e)).unwrap();
    assert_eq!(
        Some(t.trim().to_owned()),
        e.vault
            .current_access_token(TestEnv::ISSUER, TestEnv::PRINCIPAL, TestEnv::ROLE)
    );
}

#[test]
fn fault_shorter_lived_token_never_replaces_a_longer_one() {
    let e = env();
    prepared(&e);
    // In place: 50 min left (under --minsecs); Vault's newest: 30 min.
    let before = write_token(&bt(&e), &token_expiring_in(3000));
    e.vault.set_jwt_lifetime(1800);
    e.vault.expire_access_tokens();
    let r = get(&e, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("keeping the one in place"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read(bt(&e)).unwrap(), before);
    assert_no_leftovers_or_secrets(&e, e.path(), &r);
}

#[test]
fn fault_wrong_ca_is_permanent() {
    let e = env();
    let before = prepared(&e);
    let other = TestPki::generate(&e.path().join("other-ca")).unwrap();
    let ca = other.ca_file().to_str().unwrap().to_owned();
    let start = Instant::now();
    let r = get_in(&e, e.path(), "10s", &["--cafile", &ca]);
    assert_failed_safely(&e, e.path(), &r, &before, "cannot trust Vault");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "retried: {:?}",
        start.elapsed()
    );
}

#[test]
fn fault_wrong_name_is_permanent() {
    let e = env();
    let before = prepared(&e);
    let start = Instant::now();
    let r = get_in(
        &e,
        e.path(),
        "10s",
        &["--vaultcertname", "not-vault.example"],
    );
    assert_failed_safely(&e, e.path(), &r, &before, "cannot trust Vault");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "retried: {:?}",
        start.elapsed()
    );
}

#[test]
fn fault_revoked_vault_token_logs_in_again() {
    let e = env();
    prepared(&e);
    let saved = std::fs::read_to_string(vt(&e)).unwrap();
    assert!(e.vault.revoke_token(saved.trim()));
    let r = get(&e, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(e.vault.logins(), 1);
    assert_no_leftovers_or_secrets(&e, e.path(), &r);
}

#[test]
fn fault_kdc_down_keeps_the_token() {
    let mut e = env();
    let before = prepared(&e);
    let saved = std::fs::read_to_string(vt(&e)).unwrap();
    e.vault.revoke_token(saved.trim());
    e.kdc.stop();
    let r = get(&e, &[]);
    assert_failed_safely(&e, e.path(), &r, &before, "");
}

#[test]
fn fault_wrong_kvno_keeps_the_token() {
    let e = env();
    let before = prepared(&e);
    let saved = std::fs::read_to_string(vt(&e)).unwrap();
    e.vault.revoke_token(saved.trim());
    e.kdc.randomize_key(TestEnv::PRINCIPAL).unwrap();
    let r = get(&e, &[]);
    assert_failed_safely(&e, e.path(), &r, &before, "");
}

/// A small tmpfs mounted for one test and unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(at)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "cannot mount a tmpfs at {} (these tests run as root)",
            at.display()
        );
        Tmpfs(at.to_owned())
    }

    fn remount(&self, opts: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.0)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "cannot remount {}", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn fault_disk_full_keeps_the_token() {
    let e = env();
    assert_eq!(get(&e, &[]).code, 0);
    let fs = Tmpfs::mount(&e.path().join("small"), "64k");
    let dir = fs.0.clone();
    std::fs::copy(vt(&e), dir.join("vt")).unwrap();
    let before = write_token(&dir.join("bt"), &token_expiring_in(100));
    // Fill the rest of the file system.
    let _ = std::fs::write(dir.join("filler"), vec![b'x'; 256 * 1024]);
    let r = get_in(&e, &dir, "2s", &[]);
    assert_failed_safely(&e, &dir, &r, &before, "No space left on device");
}

#[test]
fn fault_read_only_directory_keeps_the_token() {
    let e = env();
    assert_eq!(get(&e, &[]).code, 0);
    let fs = Tmpfs::mount(&e.path().join("ro"), "1m");
    let dir = fs.0.clone();
    std::fs::copy(vt(&e), dir.join("vt")).unwrap();
    let before = write_token(&dir.join("bt"), &token_expiring_in(100));
    fs.remount("ro");
    let r = get_in(&e, &dir, "2s", &[]);
    assert_failed_safely(&e, &dir, &r, &before, "Read-only file system");
}

#[test]
fn fault_planted_bearer_token_is_refused() {
    let e = env();
    // A shared, sticky directory like /tmp, holding another user's fresh token.
    let shared = e.path().join("tmp");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let before = write_token(&shared.join("bt"), &token_expiring_in(7200));
    std::os::unix::fs::chown(shared.join("bt"), Some(NOBODY), Some(NOBODY)).unwrap();
    let r = get_in(&e, &shared, "2s", &[]);
    assert_failed_safely(&e, &shared, &r, &before, "refusing to trust it");
    assert!(r.stderr.contains("XDG_RUNTIME_DIR"), "{}", r.stderr);
    assert_eq!(e.vault.requests().len(), 0);
}

#[test]
fn fault_group_writable_bearer_token_is_refused() {
    let e = env();
    let before = write_token(&bt(&e), &token_expiring_in(7200));
    std::fs::set_permissions(bt(&e), std::fs::Permissions::from_mode(0o620)).unwrap();
    let r = get(&e, &[]);
    assert_failed_safely(
        &e,
        e.path(),
        &r,
        &before,
        "writable by its group or by others",
    );
}

#[test]
fn fault_planted_vault_token_is_never_sent() {
    let e = env();
    let before = write_token(&bt(&e), &token_expiring_in(100));
    let planted = e
        .vault
        .provision_token(TestEnv::ISSUER, TestEnv::ROLE, "attacker", 86400);
    std::fs::write(vt(&e), format!("{planted}\n")).unwrap();
    std::os::unix::fs::chown(vt(&e), Some(NOBODY), Some(NOBODY)).unwrap();
    let r = get(&e, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        e.vault
            .requests()
            .iter()
            .all(|q| q.vault_token.as_deref() != Some(planted.as_str())),
        "the planted Vault token was sent"
    );
    assert_ne!(std::fs::read(bt(&e)).unwrap(), before, "no new token");
    assert_eq!(std::fs::metadata(bt(&e)).unwrap().uid(), nix_euid());
    assert_eq!(std::fs::read_to_string(vt(&e)).unwrap().trim(), planted);
    assert!(!r.stderr.contains(&planted));
}

fn nix_euid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

#[test]
fn fault_symlinked_bearer_token_is_refused() {
    let e = env();
    prepared(&e);
    let victim = e.path().join("victim");
    std::fs::write(&victim, b"precious\n").unwrap();
    std::fs::remove_file(bt(&e)).unwrap();
    symlink(&victim, bt(&e)).unwrap();
    let r = get(&e, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
    assert_no_leftovers_or_secrets(&e, e.path(), &r);
}

#[test]
fn fault_unsavable_vault_token_costs_no_bearer_token() {
    let e = env();
    let before = write_token(&bt(&e), &token_expiring_in(100));
    let victim = e.path().join("victim");
    std::fs::write(&victim, b"precious\n").unwrap();
    symlink(&victim, vt(&e)).unwrap();
    let r = get(&e, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // One warning for the refused link, one for the token not saved; no error.
    assert!(
        r.stderr
            .lines()
            .all(|l| l.starts_with("robot-credmon: warn: ")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("cannot save the Vault token"),
        "{}",
        r.stderr
    );
    assert_ne!(
        std::fs::read(bt(&e)).unwrap(),
        before,
        "bearer token discarded"
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
    assert_no_leftovers_or_secrets(&e, e.path(), &r);
}

#[test]
fn fault_sigkill_mid_run_then_leftovers_removed() {
    let e = env();
    let before = prepared(&e);
    e.vault.inject(Fault::delay(CREDS, Duration::from_secs(20)));
    let mut c = robot(e.path());
    c.env("KRB5_CONFIG", e.kdc.krb5_conf())
        .arg("get")
        .args(["-a", &e.vault.url()])
        .arg("--cafile")
        .arg(e.vault.ca_file())
        .arg("-k")
        .arg(e.robot_keytab())
        .arg("-o")
        .arg(bt(&e))
        .arg("--vaulttokenfile")
        .arg(vt(&e))
        .arg(e.kdc.principal(TestEnv::PRINCIPAL))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    // Killed while its bearer-token request is in flight (the delay fault has
    // fired; the request is only logged once answered).
    let fired = e.vault.faults_fired();
    let seen = wait::until(Duration::from_secs(20), || e.vault.faults_fired() > fired);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    assert!(seen, "the run never reached Vault");
    assert_eq!(std::fs::read(bt(&e)).unwrap(), before);
    e.vault.clear_faults();

    // What runs killed during their writes leave: an old temporary file and
    // one written a moment ago. Every writer of a bearer token file holds
    // its lock, so the next run that takes the lock removes both at once,
    // with no waiting for them to age.
    let old = e.path().join(format!(".bt{TEMP_MARKER}00000000deadbeef"));
    let fresh = e.path().join(format!(".bt{TEMP_MARKER}00000000cafef00d"));
    for f in [&old, &fresh] {
        std::fs::write(f, b"secret\n").unwrap();
    }
    let hour_ago = nix::sys::time::TimeSpec::new(now() - 3600, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        &old,
        &hour_ago,
        &hour_ago,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
    let r = get(&e, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!old.exists(), "a killed run's old temporary file was left");
    assert!(
        !fresh.exists(),
        "a killed run's fresh temporary file was left"
    );
}

#[test]
fn far_future_token_in_place_is_replaced_without_panic() {
    let e = env();
    let t = unsigned_jwt(&serde_json::json!({"sub": "x", "exp": 253_402_300_800_i64, "iat": 9e18}));
    write_token(&bt(&e), &t);
    let r = get(&e, &["-vv"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert_ne!(std::fs::read_to_string(bt(&e)).unwrap().trim(), t);
}

#[test]
fn token_command_shows_extreme_claims_without_panic() {
    let e = env();
    for exp in [
        serde_json::json!(253_402_300_800_i64),
        serde_json::json!(-9.3e18),
        serde_json::json!(i64::MAX),
    ] {
        let t = unsigned_jwt(&serde_json::json!({"sub": "a\u{1b}[2Jb", "exp": exp, "iat": exp}));
        write_token(&bt(&e), &t);
        let mut c = robot(e.path());
        c.arg("token").arg(bt(&e));
        let r = run(c);
        assert!(
            !r.stderr.contains("panicked") && r.code != 101 && r.code != -1,
            "{exp}: {} {}",
            r.code,
            r.stderr
        );
        assert!(
            !r.stdout.contains('\u{1b}'),
            "raw control character: {:?}",
            r.stdout
        );
    }
}
