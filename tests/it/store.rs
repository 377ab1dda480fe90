//! `robot-credmon store` (SEC_CREDENTIAL_STORER) and `get --condor` against the
//! test Vault, a real MIT KDC and the `condor_store_cred` stand-in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::cmd::{Run, robot, run};
use crate::support::TestEnv;
use crate::support::store_cred::StoreCred;
use std::os::unix::fs::{MetadataExt, symlink};
use std::process::Command;

const LOGIN: &str = "/v1/auth/kerberos-igwn_robot/login";

fn env() -> TestEnv {
    TestEnv::start().unwrap_or_else(|e| panic!("{e}"))
}

fn gettoken_opts(e: &TestEnv) -> String {
    format!(
        "-a {} --cafile {} --credkey {} -r robot",
        e.vault.url(),
        e.vault.ca_file().display(),
        TestEnv::PRINCIPAL
    )
}

/// The storer's environment: stand-ins first in PATH, keytab, options as a condor knob.
fn base(e: &TestEnv, sc: &StoreCred, mut c: Command) -> Command {
    c.env("PATH", sc.path_env())
        .env("KRB5_CONFIG", e.kdc.krb5_conf())
        .env("KRB5_KTNAME", e.robot_keytab())
        .env("XDG_RUNTIME_DIR", e.path());
    c
}

fn store_cmd(e: &TestEnv, sc: &StoreCred, requests: &[&str]) -> Command {
    let mut c = base(e, sc, robot(e.path()));
    c.env("_CONDOR_SEC_CREDENTIAL_GETTOKEN_OPTS", gettoken_opts(e))
        .arg("store")
        .arg("--vaulttokendir")
        .arg(e.path())
        .args(requests);
    c
}

fn store(e: &TestEnv, sc: &StoreCred, requests: &[&str]) -> Run {
    run(store_cmd(e, sc, requests))
}

#[test]
fn first_store_logs_in_and_stores_a_28_day_token_with_the_creds_url() {
    let e = env();
    let sc = StoreCred::install(e.path());
    let r = store(&e, &sc, &["igwn"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(r.stderr, "", "nothing to say, not even a newline");
    // Issue 16: the one configuration reader, one `condor_config_val -dump`
    // (not one process per knob).
    assert_eq!(sc.config_calls(), ["-dump"]);
    assert_eq!(e.vault.count("POST", LOGIN), 1);
    assert_eq!(
        sc.calls(),
        ["query-oauth -s igwn", "add-oauth -s igwn -i -"]
    );
    let top = sc.top("igwn").unwrap();
    assert_eq!(top["vault_url"], e.creds_url());
    let stored = top["vault_token"].as_str().unwrap();
    let info = e.vault.token_info(stored).unwrap();
    assert_eq!(info.creation_ttl, 28 * 86400, "{info:?}");
    // The local per-service token is a 7-day child, 0600; the bearer token is written.
    let local = e.path().join("vt_u0-igwn");
    let local_tok = std::fs::read_to_string(&local).unwrap();
    assert_eq!(
        e.vault.token_info(local_tok.trim()).unwrap().creation_ttl,
        7 * 86400
    );
    assert_eq!(std::fs::metadata(&local).unwrap().mode() & 0o777, 0o600);
    assert!(e.path().join("bt_u0-igwn").exists() && e.path().join("bt_u0").exists());
    assert!(!r.stderr.contains(stored), "token in output");
}

#[test]
fn storer_link_name_runs_the_storer() {
    let e = env();
    let sc = StoreCred::install(e.path());
    let link = e.path().join("robot-credmon-storer");
    symlink(crate::cmd::bin(), &link).unwrap();
    let mut c = base(&e, &sc, Command::new(&link));
    c.env("HOME", e.path())
        .env("_CONDOR_SEC_CREDENTIAL_GETTOKEN_OPTS", gettoken_opts(&e))
        .env("_CONDOR_SEC_CREDENTIAL_VAULT_STORER_OPTS", "-v")
        .arg("--vaulttokendir")
        .arg(e.path())
        .arg("igwn");
    let r = run(c);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(sc.count("add-oauth"), 1);
    assert!(
        r.stdout.contains("Operation succeeded."),
        "-v shows condor_store_cred output: {}",
        r.stdout
    );
}

#[test]
fn second_submit_stores_nothing() {
    let e = env();
    let sc = StoreCred::install(e.path());
    assert_eq!(store(&e, &sc, &["igwn"]).code, 0);
    e.vault.reset_counters();
    let r = store(&e, &sc, &["igwn"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(e.vault.count("POST", LOGIN), 0);
    assert_eq!(sc.count("add-oauth"), 1);
    // One question to the credd per run.
    assert_eq!(sc.count("query-oauth"), 2);
}

#[test]
fn credd_without_the_credential_gets_a_new_token() {
    let e = env();
    let sc = StoreCred::install(e.path());
    assert_eq!(store(&e, &sc, &["igwn"]).code, 0);
    std::fs::remove_file(sc.bin.join("creds/igwn.top")).unwrap();
    let r = store(&e, &sc, &["igwn"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(sc.count("add-oauth"), 2);
    assert_eq!(e.vault.logins(), 2);
}

#[test]
fn handle_with_scopes_and_audience_gets_an_sts_url_and_minus_s_minus_a() {
    let e = env();
    let sc = StoreCred::install(e.path());
    let req = "igwn&handle=h1&scopes=read:/a,write:/b&audience=https://x.example";
    let r = store(&e, &sc, &[req]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert!(
        sc.calls().contains(
            &"add-oauth -s igwn_h1 -S read:/a,write:/b -A https://x.example -i -".to_owned()
        ),
        "{:?}",
        sc.calls()
    );
    let h = sc.top("igwn_h1").unwrap();
    assert_eq!(
        h["vault_url"],
        format!(
            "{}/v1/secret/oauth/sts/igwn/{}:robot",
            e.vault.url(),
            TestEnv::PRINCIPAL
        )
    );
    assert_eq!(h["scopes"], "read:/a,write:/b");
    assert_eq!(h["audience"], "https://x.example");
    assert_eq!(h["vault_token"], sc.top("igwn").unwrap()["vault_token"]);
    // Second submit: both stored, nothing added.
    let r = store(&e, &sc, &[req]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(sc.count("add-oauth"), 2);
    // Handle missing from the credd: stored again, without a vault_token.
    std::fs::remove_file(sc.bin.join("creds/igwn_h1.top")).unwrap();
    let r = store(&e, &sc, &[req]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(sc.count("add-oauth"), 3);
    assert!(sc.top("igwn_h1").unwrap().get("vault_token").is_none());
}

#[test]
fn scopes_mismatch_exits_1_with_the_delete_oauth_hint() {
    let e = env();
    let sc = StoreCred::install(e.path());
    assert_eq!(store(&e, &sc, &["igwn&handle=h&scopes=read:/a"]).code, 0);
    let r = store(&e, &sc, &["igwn&handle=h&scopes=read:/b"]);
    assert_eq!(r.code, 1, "stderr: {}", r.stderr);
    assert!(
        r.stderr
            .contains("Credentials exist that do not match the request."),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("condor_store_cred delete-oauth -s igwn_h"),
        "{}",
        r.stderr
    );
    assert_eq!(sc.count("add-oauth"), 2);
}

#[test]
fn scopes_without_handle_is_refused() {
    let e = env();
    let sc = StoreCred::install(e.path());
    let r = store(&e, &sc, &["igwn&scopes=read:/a"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("reduced scopes or audience require a handle"),
        "{}",
        r.stderr
    );
}

#[test]
fn missing_options_gives_htcondors_message() {
    let e = env();
    let sc = StoreCred::install(e.path());
    let mut c = base(&e, &sc, robot(e.path()));
    c.arg("store")
        .arg("--vaulttokendir")
        .arg(e.path())
        .arg("igwn");
    let r = run(c);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(
            "Neither SEC_CREDENTIAL_GETTOKEN_OPTS condor value nor $HTGETTOKENOPTS environment set"
        ),
        "{}",
        r.stderr
    );
    assert!(sc.calls().is_empty());
    // $HTGETTOKENOPTS is enough.
    let mut c = base(&e, &sc, robot(e.path()));
    c.env("HTGETTOKENOPTS", gettoken_opts(&e))
        .arg("store")
        .arg("--vaulttokendir")
        .arg(e.path())
        .arg("igwn");
    let r = run(c);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
}

#[test]
fn stored_token_close_to_expiry_is_stored_again() {
    // The server caps tokens at 6 days: the token in the credd is always under the
    // 7-day margin, so every submit replaces it (HTCondor's storer would not).
    let e = TestEnv::start_with(|c| {
        c.token_max_ttl = 6 * 86400;
        c.login_lease = 6 * 86400;
    })
    .unwrap();
    let sc = StoreCred::install(e.path());
    assert_eq!(store(&e, &sc, &["igwn"]).code, 0);
    let first = sc.top("igwn").unwrap()["vault_token"].clone();
    let r = store(&e, &sc, &["-v", "igwn"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(sc.count("add-oauth"), 2);
    assert_ne!(sc.top("igwn").unwrap()["vault_token"], first);
    assert!(r.stderr.contains("expires in"), "{}", r.stderr);
}

#[test]
fn no_stray_newline_only_one_before_what_is_said() {
    let e = env();
    let sc = StoreCred::install(e.path());
    assert_eq!(store(&e, &sc, &["igwn"]).code, 0);
    let r = store(&e, &sc, &["igwn"]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (0, ""),
        "silent when all is well"
    );
    // An error: one leading newline, the message, and where to find more.
    let r = store(&e, &sc, &["igwn&scopes=read:/a"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .starts_with("\nrobot-credmon store: reduced scopes"),
        "{:?}",
        r.stderr
    );
    assert!(!r.stderr.starts_with("\n\n"), "{:?}", r.stderr);
    assert!(
        r.stderr.contains(
            "More details might be available by running\n    robot-credmon store -v \"igwn&scopes=read:/a\""
        ),
        "{}",
        r.stderr
    );
    // -v says what it does, after one newline.
    let r = store(&e, &sc, &["-v", "igwn"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert!(r.stderr.starts_with("\nrobot-credmon: "), "{:?}", r.stderr);
    assert!(!r.stderr[1..].contains("\n\n"), "{:?}", r.stderr);
}

/// Issue 8 fix 3: a robot whose credential the credmon provisioned submits
/// on a host with neither keytab nor ticket.
#[test]
fn credd_holding_the_credential_needs_no_ticket_and_stores_nothing() {
    let e = env();
    let sc = StoreCred::install(e.path());
    std::fs::write(
        sc.bin.join("creds/igwn.top"),
        serde_json::json!({"vault_token": e.provision_token(3600), "vault_url": e.creds_url()})
            .to_string(),
    )
    .unwrap();
    let mut c = store_cmd(&e, &sc, &["igwn", "igwn&handle=h1"]);
    c.env_remove("KRB5_KTNAME").env(
        "KRB5CCNAME",
        format!("FILE:{}", e.path().join("none.ccache").display()),
    );
    let r = run(c);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(r.stderr, "");
    assert_eq!(e.vault.count("POST", LOGIN), 0, "no login");
    assert_eq!(e.vault.requests().len(), 0, "Vault is not asked at all");
    // The service is left as the credmon made it; the missing handle is added
    // with the credd's Vault token (no vault_token of its own).
    assert_eq!(sc.count("add-oauth"), 1, "{:?}", sc.calls());
    let h = sc.top("igwn_h1").unwrap();
    assert_eq!(h["vault_url"], e.creds_url());
    assert!(h.get("vault_token").is_none());
    assert!(!e.path().join("vt_u0-igwn").exists());
}

#[test]
fn services_of_other_credmons_are_left_alone() {
    let e = env();
    let sc = StoreCred::install(e.path());
    // Without CONDOR_CREDENTIAL_STORER_MODE: HTCondor's provider lists decide.
    let mut c = store_cmd(&e, &sc, &["osdf", "scitokens", "box", "igwn"]);
    c.env("_CONDOR_PELICAN_CREDMON_PROVIDER_NAMES", "osdf")
        .env("_CONDOR_LOCAL_CREDMON_PROVIDER_NAMES", "scitokens")
        .env("_CONDOR_OAUTH2_CREDMON_PROVIDER_NAMES", "box, github");
    let r = run(c);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(
        sc.calls(),
        ["query-oauth -s igwn", "add-oauth -s igwn -i -"],
        "only the Vault service is stored"
    );
    assert!(
        r.stderr
            .contains("service 'osdf' belongs to the Pelican credmon"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("no credkey"), "{}", r.stderr);
    // condor_submit's mode: other credmons' services need no htgettoken options.
    for (mode, said) in [("other", false), ("pelican", true)] {
        let mut c = base(&e, &sc, robot(e.path()));
        c.env("CONDOR_CREDENTIAL_STORER_MODE", mode)
            .arg("store")
            .arg("--vaulttokendir")
            .arg(e.path())
            .arg("osdf");
        let r = run(c);
        assert_eq!(r.code, 0, "{mode}: {}", r.stderr);
        assert_eq!(!r.stderr.is_empty(), said, "{mode}: {:?}", r.stderr);
        assert!(r.stderr.is_empty() || r.stderr.starts_with('\n'));
    }
    assert_eq!(sc.count("query-oauth"), 1);
    // Mode vault: a Vault service even when a list names it.
    let mut c = store_cmd(&e, &sc, &["osdf"]);
    c.env("CONDOR_CREDENTIAL_STORER_MODE", "vault")
        .env("_CONDOR_PELICAN_CREDMON_PROVIDER_NAMES", "osdf");
    let r = run(c);
    assert_eq!(sc.count("query-oauth -s osdf"), 1, "{}", r.stderr);
}

#[test]
fn several_credds_each_get_the_credential_and_one_failure_stops_none() {
    let e = env();
    let sc = StoreCred::install(e.path());
    std::fs::write(sc.bin.join("fail-add@ap2.example"), "").unwrap();
    let mut c = store_cmd(&e, &sc, &["igwn"]);
    c.args([
        "--credd",
        "ap1.example",
        "--credd",
        "ap2.example",
        "--credd",
        "ap3.example",
    ]);
    let r = run(c);
    assert_eq!(r.code, 1, "stderr: {}", r.stderr);
    for line in [
        "credd ap1.example: stored igwn",
        "credd ap2.example: FAILED: Failed to store condor credentials for igwn: Operation failed.",
        "credd ap3.example: stored igwn",
        "storing failed at 1 of 3 credds: ap2.example",
    ] {
        assert!(r.stderr.contains(line), "no '{line}' in:\n{}", r.stderr);
    }
    assert!(sc.top_at("ap1.example", "igwn").is_some());
    assert!(sc.top_at("ap3.example", "igwn").is_some());
    assert!(sc.top_at("ap2.example", "igwn").is_none());
    assert!(sc.top("igwn").is_none(), "the local credd was not asked");
    // One Kerberos login and one 28-day token for every credd.
    assert_eq!(e.vault.count("POST", LOGIN), 1);
    assert_eq!(
        sc.top_at("ap1.example", "igwn").unwrap()["vault_token"],
        sc.top_at("ap3.example", "igwn").unwrap()["vault_token"]
    );
    // The knob names the list; the credd that failed gets it next time, the others hold it.
    std::fs::remove_file(sc.bin.join("fail-add@ap2.example")).unwrap();
    let mut c = store_cmd(&e, &sc, &["igwn"]);
    c.env(
        "_CONDOR_ROBOT_CREDMON_CREDDS",
        "ap1.example, ap2.example ap3.example",
    );
    let r = run(c);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    for line in [
        "credd ap1.example: igwn already stored",
        "credd ap2.example: stored igwn",
        "credd ap3.example: igwn already stored",
    ] {
        assert!(r.stderr.contains(line), "no '{line}' in:\n{}", r.stderr);
    }
    assert!(sc.top_at("ap2.example", "igwn").is_some());
}

// -- get --condor ---------------------------------------------------------------------------

fn condor_get(e: &TestEnv, sc: &StoreCred) -> Run {
    let mut c = base(e, sc, robot(e.path()));
    c.arg("get")
        .args(["-a", &e.vault.url()])
        .arg("--cafile")
        .arg(e.vault.ca_file())
        .arg("-k")
        .arg(e.robot_keytab())
        .arg("--condor")
        .arg(e.kdc.principal(TestEnv::PRINCIPAL));
    run(c)
}

fn wanted(e: &TestEnv) -> String {
    format!(
        "--credkey={} --role=robot --vaultserver={}",
        TestEnv::PRINCIPAL,
        e.vault.url()
    )
}

#[test]
fn get_condor_without_user_config_suggests_one() {
    let e = env();
    let sc = StoreCred::install(e.path());
    let r = condor_get(&e, &sc);
    assert_eq!(r.code, 1, "stderr: {}", r.stderr);
    let cfg = e.path().join(".condor/user_config");
    assert!(
        r.stderr.contains(&format!(
            "No HTCondor user_config file found at {}.\nPlease consider creating one with the following contents:\n\nSEC_CREDENTIAL_GETTOKEN_OPTS = {}",
            cfg.display(),
            wanted(&e)
        )),
        "{}",
        r.stderr
    );
    assert!(sc.calls().is_empty());
}

#[test]
fn get_condor_with_other_options_reports_the_mismatch() {
    let e = env();
    let sc = StoreCred::install(e.path());
    std::fs::create_dir_all(e.path().join(".condor")).unwrap();
    std::fs::write(
        e.path().join(".condor/user_config"),
        "SEC_CREDENTIAL_GETTOKEN_OPTS = -a vault.example\n",
    )
    .unwrap();
    let r = condor_get(&e, &sc);
    assert_eq!(r.code, 1, "stderr: {}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "HTCondor user_config value for SEC_CREDENTIAL_GETTOKEN_OPTS in {} doesn't match current options: '-a vault.example' vs '{}'",
            e.path().join(".condor/user_config").display(),
            wanted(&e)
        )),
        "{}",
        r.stderr
    );
    assert!(sc.calls().is_empty());
}

#[test]
fn get_condor_with_matching_config_stores_the_credential() {
    let e = env();
    let sc = StoreCred::install(e.path());
    std::fs::create_dir_all(e.path().join(".condor")).unwrap();
    std::fs::write(
        e.path().join(".condor/user_config"),
        format!("SEC_CREDENTIAL_GETTOKEN_OPTS = {}\n", wanted(&e)),
    )
    .unwrap();
    let r = condor_get(&e, &sc);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(sc.count("add-oauth"), 1, "{:?}", sc.calls());
    assert_eq!(sc.top("igwn").unwrap()["vault_url"], e.creds_url());
    // Issue 16: `get --condor` and the storer it calls share one read of the configuration.
    assert_eq!(sc.config_calls(), ["-dump"]);
    // The cron line again: nothing new to store.
    let r = condor_get(&e, &sc);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(sc.count("add-oauth"), 1);
}

/// A person at condor_submit: no keytab, a ticket from `kinit` in their ccache.
fn store_with_ccache(e: &TestEnv, sc: &StoreCred, ccache: &std::path::Path) -> Run {
    let mut c = store_cmd(e, sc, &["igwn"]);
    c.env_remove("KRB5_KTNAME")
        .env("KRB5CCNAME", format!("FILE:{}", ccache.display()));
    run(c)
}

#[test]
fn a_person_with_a_kinit_ticket_is_stored_without_a_keytab() {
    let e = env();
    let sc = StoreCred::install(e.path());
    let ccache = e.path().join("person.ccache");
    let kinit =
        crate::support::openbao::find("kinit").expect("kinit is needed: apt-get install krb5-user");
    let out = Command::new(kinit)
        .env("KRB5_CONFIG", e.kdc.krb5_conf())
        .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
        .arg("-k")
        .arg("-t")
        .arg(e.robot_keytab())
        .arg(e.kdc.principal(TestEnv::PRINCIPAL))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kinit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = store_with_ccache(&e, &sc, &ccache);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(e.vault.count("POST", LOGIN), 1);
    assert_eq!(sc.count("add-oauth"), 1);
}

#[test]
fn no_ticket_and_no_keytab_says_to_run_kinit() {
    let e = env();
    let sc = StoreCred::install(e.path());
    let r = store_with_ccache(&e, &sc, &e.path().join("empty.ccache"));
    assert_eq!(r.code, 1, "stderr: {}", r.stderr);
    assert!(r.stderr.contains("run kinit"), "{}", r.stderr);
    assert_eq!(e.vault.count("POST", LOGIN), 0);
    assert_eq!(sc.count("add-oauth"), 0);
}

#[test]
fn an_unsavable_vault_token_is_a_warning_and_the_credential_is_still_stored() {
    let e = env();
    let sc = StoreCred::install(e.path());
    let victim = e.path().join("victim");
    std::fs::write(&victim, b"precious\n").unwrap();
    symlink(&victim, e.path().join("vt_u0-igwn")).unwrap();
    let r = store(&e, &sc, &["igwn"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert!(
        r.stderr.contains("cannot save the Vault token"),
        "{}",
        r.stderr
    );
    assert_eq!(
        sc.calls(),
        ["query-oauth -s igwn", "add-oauth -s igwn -i -"]
    );
    assert!(e.path().join("bt_u0-igwn").exists());
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
}

#[test]
fn a_planted_local_vault_token_is_never_sent() {
    let e = env();
    let sc = StoreCred::install(e.path());
    let planted = e
        .vault
        .provision_token(TestEnv::ISSUER, TestEnv::ROLE, "attacker", 86400);
    let f = e.path().join("vt_u0-igwn");
    std::fs::write(&f, format!("{planted}\n")).unwrap();
    std::os::unix::fs::chown(&f, Some(65534), Some(65534)).unwrap();
    let r = store(&e, &sc, &["igwn"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert!(r.stderr.contains("refusing to trust it"), "{}", r.stderr);
    assert!(
        e.vault
            .requests()
            .iter()
            .all(|q| q.vault_token.as_deref() != Some(planted.as_str())),
        "the planted Vault token was sent"
    );
    assert!(!r.stderr.contains(&planted));
}
