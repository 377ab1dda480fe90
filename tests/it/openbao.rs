//! End to end against a real OpenBao 2.6.2 server with its built-in Kerberos
//! auth method, configured as htvault-config does, a real MIT KDC and slapd.

use crate::cmd::{now, robot, run, unsigned_jwt};
use crate::support::kdc::Kdc;
use crate::support::openbao::OpenBao;
use std::path::Path;

const ROBOT: &str = "robot/host.example";

struct Setup {
    _tmp: tempfile::TempDir,
    kdc: Kdc,
    bao: OpenBao,
    dir: std::path::PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let kdc = Kdc::start(&dir.join("kdc"), &[ROBOT], &["host/localhost"])
        .unwrap_or_else(|e| panic!("{e}"));
    let bao = OpenBao::start(&dir.join("openbao"), &kdc).unwrap_or_else(|e| panic!("{e}"));
    Setup {
        _tmp: tmp,
        kdc,
        bao,
        dir,
    }
}

fn get(s: &Setup, out: &Path) -> crate::cmd::Run {
    let mut c = robot(&s.dir);
    c.env("KRB5_CONFIG", s.kdc.krb5_conf())
        .arg("get")
        .arg("-v")
        .args(["-a", &s.bao.url()])
        .arg("--cafile")
        .arg(s.bao.ca_file())
        .arg("-k")
        .arg(s.kdc.client_keytab(ROBOT))
        .arg("-o")
        .arg(out)
        .arg("--vaulttokenfile")
        .arg(s.dir.join("vt"))
        .args(["--retry-time", "1s"])
        .arg(s.kdc.principal(ROBOT));
    run(c)
}

#[test]
fn openbao_kerberos_login_writes_the_robot_token() {
    let s = setup();
    let jwt = unsigned_jwt(
        &serde_json::json!({"sub": ROBOT, "iss": "https://issuer.example", "exp": now() + 3 * 3600}),
    );
    s.bao.put_credential(ROBOT, &jwt).unwrap();
    let out = s.dir.join("bt");

    let r = get(&s, &out);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), format!("{jwt}\n"));
    assert!(r.stderr.contains("Kerberos login"), "{}", r.stderr);
    assert!(!r.stderr.contains(&jwt), "token leaked into output");
    let vt = std::fs::read_to_string(s.dir.join("vt")).unwrap();
    assert!(vt.starts_with("s."), "OpenBao tokens start with s.");

    // The exchanged token is a 7-day child of the 28-day login token.
    let lookup = s
        .bao
        .bao(&["token", "lookup", "-format=json", vt.trim()])
        .unwrap();
    let info: serde_json::Value = serde_json::from_str(&lookup).unwrap();
    let ttl = info["data"]["ttl"].as_u64().unwrap();
    assert!((604_000..=604_800).contains(&ttl), "ttl {ttl}");
    assert_eq!(info["data"]["path"], "auth/token/create");

    // Second run: the token is still good, nothing changes.
    let before = std::fs::read(&out).unwrap();
    let r = get(&s, &out);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert!(r.stderr.contains("nothing to do"), "{}", r.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), before);
}

#[test]
fn openbao_revoked_vault_token_leads_to_a_new_kerberos_login() {
    let s = setup();
    let fresh = unsigned_jwt(&serde_json::json!({"sub": ROBOT, "exp": now() + 3 * 3600}));
    s.bao.put_credential(ROBOT, &fresh).unwrap();
    let out = s.dir.join("bt");
    assert_eq!(get(&s, &out).code, 0);
    let first_vt = std::fs::read_to_string(s.dir.join("vt")).unwrap();

    // The saved Vault token is revoked and the bearer token is about to expire.
    s.bao.revoke(first_vt.trim()).unwrap();
    let stale = unsigned_jwt(&serde_json::json!({"sub": ROBOT, "exp": now() + 60}));
    std::fs::write(&out, format!("{stale}\n")).unwrap();

    let r = get(&s, &out);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert!(r.stderr.contains("Kerberos login"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), format!("{fresh}\n"));
    let second_vt = std::fs::read_to_string(s.dir.join("vt")).unwrap();
    assert_ne!(first_vt, second_vt);
}

#[test]
fn openbao_unknown_role_is_a_clear_error() {
    let s = setup();
    let out = s.dir.join("bt");
    let mut c = robot(&s.dir);
    c.env("KRB5_CONFIG", s.kdc.krb5_conf())
        .args([
            "get",
            "-a",
            &s.bao.url(),
            "-r",
            "nosuchrole",
            "--retry-time",
            "1s",
        ])
        .arg("--cafile")
        .arg(s.bao.ca_file())
        .arg("-k")
        .arg(s.kdc.client_keytab(ROBOT))
        .arg("-o")
        .arg(&out)
        .arg("--vaulttokenfile")
        .arg(s.dir.join("vt"));
    let r = run(c);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with("robot-credmon: error: "),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("auth/kerberos-igwn_nosuchrole"),
        "{}",
        r.stderr
    );
    assert!(!out.exists());
}
