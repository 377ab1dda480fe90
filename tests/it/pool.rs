//! robot-credmon under a real HTCondor 25 personal pool (`tests/support/pool.rs`):
//! condor_submit -> robot-credmon-storer -> credd (.top) -> robot-credmon
//! credmon (.use) -> shadow -> starter -> the job, and the credmon as one of
//! condor_master's daemons.
//!
//! One pool serves every scenario, in order (each starts from what the
//! previous left: the pool takes ~10 s to start). Each scenario runs even when
//! an earlier one failed; the test fails listing every failed scenario.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/pool.rs"]
mod pool_support;

use crate::support::TestEnv;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use pool_support::{Pool, User, ensure_user, install};
use std::os::unix::fs::MetadataExt;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

type R = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

const SVC: &str = "igwn";
/// The provisioned service: issuer igwn, role robot (the test Vault's mount).
const PROV: &str = "igwn_robot";

struct World {
    env: TestEnv,
    pool: Pool,
    /// The second access point (`two_aps_*` scenarios), once started.
    ap2: std::cell::OnceCell<Pool>,
    robot: User,
    prov: User,
    /// Held for the whole run (see [`machine_lock`]).
    _lock: std::fs::File,
}

/// Two pool runs on one machine (two checkouts testing at once) would share
/// the robot users' homes and their `/tmp` token files: the second run waits,
/// at most 20 minutes, for the first to finish.
fn machine_lock() -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    let path = "/tmp/robot-credmon-pool-test.lock";
    let f = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
    let locked = crate::support::wait::until(Duration::from_secs(1200), || match f.try_lock() {
        Ok(()) => true,
        Err(std::fs::TryLockError::WouldBlock) => false,
        Err(std::fs::TryLockError::Error(e)) => panic!("cannot lock {path}: {e}"),
    });
    assert!(
        locked,
        "another HTCondor pool test held {path} for 20 minutes"
    );
    f
}

fn claims(token: &str) -> serde_json::Value {
    use base64::prelude::*;
    let payload = token.trim().split('.').nth(1).unwrap_or_default();
    BASE64_URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null)
}

fn now() -> i64 {
    crate::cmd::now()
}

fn valid_jwt(token: &str) -> bool {
    claims(token)["exp"]
        .as_i64()
        .is_some_and(|e| e > now() + 60)
}

fn use_path(w: &World, user: &str, svc: &str) -> std::path::PathBuf {
    w.pool.cred_dir.join(user).join(format!("{svc}.use"))
}

fn top_path(w: &World, user: &str, svc: &str) -> std::path::PathBuf {
    w.pool.cred_dir.join(user).join(format!("{svc}.top"))
}

/// The submit environment of `user`: the robot's keytab, nothing for the provisioned robot.
fn krb_env(w: &World, user: &User) -> Vec<(&'static str, String)> {
    if user.name == w.robot.name {
        vec![(
            "KRB5_KTNAME",
            w.robot.home.join("robot.keytab").display().to_string(),
        )]
    } else {
        Vec::new()
    }
}

/// The dynamic configuration every scenario starts from.
const BASE: &str = "ROBOT_CREDMON_PROVISION = igwn_robot\n";

/// Rewrites the tests' configuration and runs `condor_reconfig`, which
/// returns before the daemons re-read theirs: then waits (bounded) until the
/// credd serves the `TRUSTED_VAULT_HOSTS` set in `extra` (the credd knob the
/// scenarios change) and the credmon has re-read its configuration.
fn reconfig(w: &World, extra: &str) -> R {
    let mark = credmon_log(w).len();
    w.pool.reconfig(&format!("{BASE}{extra}"))?;
    for (knob, value) in extra.lines().filter_map(|l| l.split_once('=')) {
        let (knob, value) = (knob.trim(), value.trim());
        if knob != "TRUSTED_VAULT_HOSTS" {
            continue;
        }
        ensure!(
            crate::support::wait::until(Duration::from_secs(20), || w
                .pool
                .credd_config(knob)
                .as_deref()
                == Some(value)),
            "the credd does not have {knob} = {value} 20 s after condor_reconfig"
        );
    }
    ensure!(
        crate::support::wait::until(Duration::from_secs(20), || credmon_log(w)
            .get(mark..)
            .is_some_and(|t| t.contains("re-read on SIGHUP"))),
        "the credmon did not re-read its configuration within 20 s of condor_reconfig; log:\n{}",
        tail(&credmon_log(w), 20)
    );
    Ok(())
}

/// Waits (bounded) until the credmon has ended `n` more full passes: each
/// touches `CREDMON_COMPLETE` (every `ROBOT_CREDMON_SCAN_INTERVAL`, 2 s here).
fn full_passes(w: &World, n: u32, limit: Duration) -> bool {
    let stamp = || {
        std::fs::metadata(w.pool.cred_dir.join("CREDMON_COMPLETE"))
            .and_then(|m| m.modified())
            .ok()
    };
    let mut last = stamp();
    let mut seen = 0;
    crate::support::wait::until(limit, || {
        let now = stamp();
        if now != last {
            last = now;
            seen += 1;
        }
        seen >= n
    })
}

fn credmon_log(w: &World) -> String {
    w.pool.log("CredMonOAuthLog")
}

/// Submits and waits; the robot's storer logs in with its keytab, `rcm-prov` has no Kerberos at all.
fn run_job(
    w: &World,
    user: &User,
    name: &str,
    secs: u32,
    svcs: &[&str],
    extra: &str,
) -> Result<std::path::PathBuf, String> {
    let (r, dir) = w
        .pool
        .submit(user, name, secs, svcs, extra, &krb_env(w, user));
    r.map_err(|e| format!("condor_submit failed: {e}"))?;
    w.pool.wait_job(&dir, u64::from(secs) + 60)?;
    Ok(dir)
}

// -- scenarios ------------------------------------------------------------------------------

/// condor_master hears DC_SET_READY: Alive/Ready, and `condor_who -wait:N IsReady` returns.
fn master_sees_the_credmon_ready(w: &World) -> R {
    let t0 = Instant::now();
    w.pool.who_wait(
        30,
        "IsReady",
        &[
            "IsReady = true",
            "CREDMON_OAUTH = \"Alive\"",
            "CREDMON_OAUTH_State = \"Ready\"",
        ],
    )?;
    eprintln!("pool: IsReady after {:.1} s", t0.elapsed().as_secs_f64());
    let master = w.pool.log("MasterLog");
    ensure!(
        master.contains("Setting ready state 'Ready' for CREDMON_OAUTH"),
        "MasterLog has no ready state for the credmon:\n{master}"
    );
    ensure!(
        credmon_log(w).contains("told condor_master that CREDMON_OAUTH is ready"),
        "{}",
        credmon_log(w)
    );
    Ok(())
}

/// The credmon condor_master started runs confined (docs/security.md): every
/// scenario of this pool runs with Landlock, no_new_privs and the reduced
/// capabilities; condor_master's DC_SET_READY above went through the TCP rule.
fn the_credmon_runs_confined(w: &World) -> R {
    let pid = std::fs::read_to_string(w.pool.cred_dir.join("pid")).map_err(|e| e.to_string())?;
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim()))
        .map_err(|e| e.to_string())?;
    ensure!(status.contains("NoNewPrivs:\t1"), "{status}");
    ensure!(status.contains("CapEff:\t000000000000001b"), "{status}");
    let log = credmon_log(w);
    ensure!(
        log.contains("fully enforced")
            && log.contains("capabilities CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID"),
        "{log}"
    );
    Ok(())
}

/// condor_submit -> storer -> .top -> .use -> the job sees a valid token.
fn submit_gives_the_job_a_valid_token(w: &World) -> R {
    let dir = run_job(
        w,
        &w.robot,
        "submit",
        1,
        &[SVC],
        &format!("use_oauth_services = {SVC}"),
    )?;
    let top = top_path(w, &w.robot.name, SVC);
    let use_ = use_path(w, &w.robot.name, SVC);
    let tm = std::fs::metadata(&top).map_err(|e| format!("{}: {e}", top.display()))?;
    ensure!(
        tm.mode() & 0o777 == 0o600 && tm.uid() == 0,
        "{} mode {:o} uid {}",
        top.display(),
        tm.mode(),
        tm.uid()
    );
    let um = std::fs::metadata(&use_).map_err(|e| format!("{}: {e}", use_.display()))?;
    ensure!(
        um.mode() & 0o777 == 0o400 && um.uid() == 0,
        "{} mode {:o}",
        use_.display(),
        um.mode()
    );
    let seen = Pool::job_tokens(&dir, SVC);
    ensure!(
        !seen.is_empty(),
        "the job saw no token; listing: {}",
        std::fs::read_to_string(dir.join("creds-listing")).unwrap_or_default()
    );
    ensure!(
        valid_jwt(&seen[0]),
        "the job's token is not a valid JWT: {:?}",
        claims(&seen[0])
    );
    let top_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&top).unwrap()).unwrap();
    ensure!(
        top_json["vault_url"] == w.env.creds_url(),
        "vault_url {} != {}",
        top_json["vault_url"],
        w.env.creds_url()
    );
    Ok(())
}

/// A renewed .use reaches a running job (the starter fetches it every SEC_CREDENTIAL_REFRESH).
fn renewal_reaches_a_running_job(w: &World) -> R {
    // The credmon renews every .use older than 3 s.
    reconfig(w, "CREDMON_OAUTH_TOKEN_REFRESH = 3\n")?;
    let (r, dir) = w.pool.submit(
        &w.robot,
        "renewal",
        40,
        &[SVC],
        &format!("use_oauth_services = {SVC}"),
        &krb_env(w, &w.robot),
    );
    r.map_err(|e| format!("condor_submit failed: {e}"))?;
    ensure!(
        Pool::wait_for(Duration::from_secs(40), || !Pool::job_tokens(&dir, SVC)
            .is_empty()),
        "the job never started or saw no token: {}",
        w.pool.wait_job(&dir, 1).err().unwrap_or_default()
    );
    let first = Pool::job_tokens(&dir, SVC)[0].clone();
    // Vault now hands out a new access token on the next read.
    w.env.vault.expire_access_tokens();
    let renewed = Pool::wait_for(Duration::from_secs(30), || {
        Pool::job_tokens(&dir, SVC)
            .iter()
            .any(|t| *t != first && valid_jwt(t))
    });
    let _ = w.pool.ok("condor_rm", &["-all"], Duration::from_secs(20));
    ensure!(
        renewed,
        "the running job never saw a renewed token; credmon log:\n{}",
        credmon_log(w)
    );
    Ok(())
}

/// `<service>_oauth_permissions_<handle>`: the handle's .use carries its scopes.
fn handles_get_their_scopes(w: &World) -> R {
    let dir = run_job(
        w,
        &w.robot,
        "handle",
        1,
        &[SVC, "igwn_readonly"],
        "use_oauth_services = igwn\nigwn_oauth_permissions_readonly = read:/frames\nigwn_oauth_resource_readonly = https://frames.example",
    )?;
    let seen = Pool::job_tokens(&dir, "igwn_readonly");
    ensure!(
        !seen.is_empty(),
        "no handle token in the job; listing: {}",
        std::fs::read_to_string(dir.join("creds-listing")).unwrap_or_default()
    );
    let c = claims(&seen[0]);
    ensure!(
        c["scope"]
            .as_str()
            .is_some_and(|s| s.contains("read:/frames")),
        "handle claims: {c}"
    );
    ensure!(
        c.to_string().contains("https://frames.example"),
        "handle audience: {c}"
    );
    Ok(())
}

/// A keytab user's credential exists before any submit (2700 dir like the credd's).
fn provisioning_with_no_submit(w: &World) -> R {
    let use_ = use_path(w, &w.prov.name, PROV);
    ensure!(
        Pool::wait_for(Duration::from_secs(20), || use_.exists()),
        "no provisioned {}; credmon log:\n{}",
        use_.display(),
        credmon_log(w)
    );
    let d = std::fs::metadata(w.pool.cred_dir.join(&w.prov.name)).unwrap();
    ensure!(
        d.mode() & 0o7777 == 0o2700,
        "user dir mode {:o}",
        d.mode() & 0o7777
    );
    ensure!(d.uid() == w.pool.condor.uid, "user dir owner {}", d.uid());
    let out = Pool::run(
        &mut w.pool.as_user(
            &w.prov,
            &w.pool.prefix.join("sbin/condor_store_cred"),
            &["query-oauth", "-s", PROV],
            &[],
        ),
        Duration::from_secs(20),
    )?;
    ensure!(
        out.status.success(),
        "query-oauth: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A provisioned robot submits with no Kerberos at all: the storer asks the credd first.
fn robot_submits_without_kerberos(w: &World) -> R {
    let dir = run_job(
        w,
        &w.prov,
        "nokrb",
        1,
        &[PROV],
        &format!("use_oauth_services = {PROV}"),
    )?;
    let seen = Pool::job_tokens(&dir, PROV);
    ensure!(
        seen.first().is_some_and(|t| valid_jwt(t)),
        "no valid token in the job"
    );
    let out = std::fs::read_to_string(dir.join("err")).unwrap_or_default();
    ensure!(!out.contains("Kerberos"), "{out}");
    Ok(())
}

/// Keytab re-login for a `--role` credential: role and issuer from the .top's vault_url.
fn keytab_relogin_uses_the_role_of_the_vault_url(w: &World) -> R {
    let top = top_path(w, &w.robot.name, SVC);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&top).unwrap()).unwrap();
    let old = json["vault_token"].as_str().unwrap_or_default().to_owned();
    ensure!(
        w.env.vault.revoke_token(&old),
        "could not revoke the stored Vault token"
    );
    w.env.vault.expire_access_tokens();
    let logins_robot = w
        .env
        .vault
        .count("POST", "/v1/auth/kerberos-igwn_robot/login");
    let before = std::fs::read_to_string(use_path(w, &w.robot.name, SVC)).unwrap_or_default();
    // Force a renewal now.
    let _ = std::fs::remove_file(use_path(w, &w.robot.name, SVC));
    kill(
        Pid::from_raw(w.pool.credmon_pid().unwrap_or(0)),
        Signal::SIGHUP,
    )
    .ok();
    let ok = Pool::wait_for(Duration::from_secs(20), || {
        std::fs::read_to_string(use_path(w, &w.robot.name, SVC))
            .is_ok_and(|t| t != before && valid_jwt(&t))
    });
    ensure!(
        ok,
        "no new .use after the Vault token was revoked; credmon log:\n{}",
        credmon_log(w)
    );
    ensure!(
        w.env
            .vault
            .count("POST", "/v1/auth/kerberos-igwn_robot/login")
            > logins_robot,
        "no login at auth/kerberos-igwn_robot"
    );
    ensure!(
        w.env
            .vault
            .count("POST", "/v1/auth/kerberos-igwn_default/login")
            == 0,
        "logged in with the wrong role (kerberos-igwn_default)"
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&top).unwrap()).unwrap();
    ensure!(
        json["vault_token"].as_str() != Some(old.as_str()),
        "the .top still holds the revoked token"
    );
    Ok(())
}

/// `robot-credmon status` (root) on the pool's credential directory, as JSON.
fn status_json(w: &World) -> Result<serde_json::Value, String> {
    let out = Pool::run(
        std::process::Command::new(&w.pool.bin)
            .args(["status", "--json", "-c"])
            .arg(&w.pool.cred_dir),
        Duration::from_secs(20),
    )?;
    ensure!(
        out.status.success(),
        "status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

fn state_of(v: &serde_json::Value, user: &str, cred: &str) -> Option<serde_json::Value> {
    v["credentials"]
        .as_array()?
        .iter()
        .find(|r| r["user"] == user && r["credential"] == cred)
        .cloned()
}

/// `status` under the real credmon, and a credential that needs a person:
/// Vault loses the provisioned robot's credential; the credmon says so once,
/// `status` and `check --credmon` show the command, the credd says
/// "waiting for processing", a job is held; a person's login heals it.
fn status_and_a_credential_that_needs_a_person(w: &World) -> R {
    let v = status_json(w)?;
    ensure!(v["credmon"]["running"] == true, "status: {v}");
    let prov = state_of(&v, &w.prov.name, PROV).ok_or(format!("no {PROV} row: {v}"))?;
    ensure!(prov["state"] == "fresh" && prov["keytab"] == true, "{prov}");
    let marks = w.pool.log_marks();
    ensure!(
        w.env
            .vault
            .remove_credential("igwn", TestEnv::PRINCIPAL, "robot"),
        "no Vault credential to remove"
    );
    w.env.vault.expire_access_tokens();
    let use_ = use_path(w, &w.prov.name, PROV);
    let _ = std::fs::remove_file(&use_);
    kill(
        Pid::from_raw(w.pool.credmon_pid().unwrap_or(0)),
        Signal::SIGHUP,
    )
    .ok();
    let mut last = serde_json::Value::Null;
    let seen = Pool::wait_for(Duration::from_secs(20), || {
        last = status_json(w).unwrap_or_default();
        state_of(&last, &w.prov.name, PROV).is_some_and(|r| r["state"] == "needs_login")
    });
    let restore = || {
        w.env
            .vault
            .add_credential("igwn", TestEnv::PRINCIPAL, "robot")
    };
    if !seen {
        restore();
        return Err(format!(
            "status never showed needs_login: {last}\nlog:\n{}",
            tail(&credmon_log(w), 20)
        ));
    }
    let row = state_of(&last, &w.prov.name, PROV).unwrap_or_default();
    let command = format!(
        "as {}, run on a terminal: htgettoken -a localhost:{} -i igwn -r robot --credkey {}",
        w.prov.name,
        w.env.vault.port(),
        TestEnv::PRINCIPAL
    );
    let err = row["last_error"].as_str().unwrap_or_default().to_owned();
    let text = Pool::run(
        std::process::Command::new(&w.pool.bin)
            .args(["status", "-c"])
            .arg(&w.pool.cred_dir),
        Duration::from_secs(20),
    )
    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())?;
    eprintln!("pool: robot-credmon status:\n{text}");
    let check = Pool::run(
        std::process::Command::new(&w.pool.bin)
            .args(["check", "--credmon"])
            .arg(&w.pool.cred_dir),
        Duration::from_secs(20),
    )?;
    let check_line = String::from_utf8_lossy(&check.stdout).into_owned();
    // The credd: stored, waiting for processing; a job that needs it is held.
    let query = Pool::run(
        &mut w.pool.as_user(
            &w.prov,
            &w.pool.prefix.join("sbin/condor_store_cred"),
            &["query-oauth", "-s", PROV],
            &[],
        ),
        Duration::from_secs(20),
    )?;
    let query_text = String::from_utf8_lossy(&query.stdout).into_owned();
    let (sub, _) = w.pool.submit(
        &w.prov,
        "held",
        1,
        &[PROV],
        &format!("use_oauth_services = {PROV}"),
        &[],
    );
    let mut hold = String::new();
    let held = sub.is_ok()
        && Pool::wait_for(Duration::from_secs(40), || {
            hold = w
                .pool
                .ok(
                    "condor_q",
                    &["-allusers", "-af", "HoldReason"],
                    Duration::from_secs(20),
                )
                .unwrap_or_default();
            hold.contains("Job credentials are not available")
        });
    let _ = w.pool.ok("condor_rm", &["-all"], Duration::from_secs(20));
    let said = w
        .pool
        .log_lines_since(&marks)
        .into_iter()
        .filter(|(log, l)| log == "CredMonOAuthLog" && l.contains("needs a person"))
        .map(|(_, l)| l)
        .collect::<Vec<_>>();
    // A person logs in (Vault holds the credential again): the next retry heals it.
    restore();
    let healed = Pool::wait_for(Duration::from_secs(30), || use_.exists());
    ensure!(
        err.contains("holds no credential for credkey") && err.ends_with(&command),
        "last_error: {err}"
    );
    ensure!(row["needs_login"] == true, "{row}");
    ensure!(text.contains("needs a person"), "{text}");
    ensure!(
        check.status.code() == Some(2)
            && check_line.contains("needs a person")
            && check_line.contains(&command),
        "check --credmon: {check_line}"
    );
    ensure!(
        said.len() == 1,
        "the credmon log should say it once: {said:?}"
    );
    eprintln!("pool: CredMonOAuthLog: {}", said[0]);
    ensure!(
        query_text.contains("waiting for processing"),
        "query-oauth: {query_text}"
    );
    eprintln!("pool: condor_store_cred query-oauth: {}", query_text.trim());
    ensure!(held, "no held job: submit {sub:?}, hold reason {hold:?}");
    eprintln!("pool: condor_q HoldReason: {}", hold.trim());
    ensure!(
        healed,
        "no .use after the credential came back; log:\n{}",
        tail(&credmon_log(w), 20)
    );
    let fresh = Pool::wait_for(Duration::from_secs(15), || {
        status_json(w)
            .ok()
            .and_then(|v| state_of(&v, &w.prov.name, PROV))
            .is_some_and(|r| r["state"] == "fresh")
    });
    ensure!(
        fresh,
        "status did not return to fresh: {}",
        status_json(w).unwrap_or_default()
    );
    Ok(())
}

/// `condor_store_cred delete-oauth`: the credd removes the files; the credmon does not resurrect them.
fn delete_oauth(w: &World) -> R {
    let out = Pool::run(
        &mut w.pool.as_user(
            &w.robot,
            &w.pool.prefix.join("sbin/condor_store_cred"),
            &["delete-oauth", "-s", "igwn_readonly"],
            &[],
        ),
        Duration::from_secs(20),
    )?;
    ensure!(
        out.status.success(),
        "delete-oauth: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        Pool::wait_for(Duration::from_secs(10), || !top_path(
            w,
            &w.robot.name,
            "igwn_readonly"
        )
        .exists()),
        "the .top is still there"
    );
    // Two full passes end (the first may have begun before the deletion).
    ensure!(
        full_passes(w, 2, Duration::from_secs(30)),
        "the credmon ended no two passes in 30 s; log:\n{}",
        tail(&credmon_log(w), 20)
    );
    ensure!(
        !use_path(w, &w.robot.name, "igwn_readonly").exists(),
        "the .use came back"
    );
    ensure!(
        !top_path(w, &w.robot.name, "igwn_readonly").exists(),
        "the .top came back"
    );
    ensure!(
        top_path(w, &w.robot.name, SVC).exists(),
        "the parent credential went too"
    );
    Ok(())
}

/// `robot-credmon get --condor` (igwn-robot-get --condor) from the robot's cron.
fn get_condor(w: &World) -> R {
    let cfg_dir = w.robot.home.join(".condor");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    std::os::unix::fs::chown(&cfg_dir, Some(w.robot.uid), Some(w.robot.gid)).unwrap();
    let uc = cfg_dir.join("user_config");
    std::fs::write(
        &uc,
        format!(
            "SEC_CREDENTIAL_GETTOKEN_OPTS = --credkey={} --role=robot --vaultserver={}\n",
            TestEnv::PRINCIPAL,
            w.env.vault.url()
        ),
    )
    .unwrap();
    // The credd holds nothing for this robot yet.
    let _ = Pool::run(
        &mut w.pool.as_user(
            &w.robot,
            &w.pool.prefix.join("sbin/condor_store_cred"),
            &["delete-oauth", "-s", SVC],
            &[],
        ),
        Duration::from_secs(20),
    );
    let keytab = w.robot.home.join("robot.keytab");
    let principal = w.env.kdc.principal(TestEnv::PRINCIPAL);
    let r = Pool::run(
        &mut w.pool.as_user(
            &w.robot,
            &w.pool.bin,
            &[
                "get",
                "--cafile",
                w.pool.ca.to_str().unwrap(),
                "-a",
                &w.env.vault.url(),
                "-k",
                keytab.to_str().unwrap(),
                "--condor",
                &principal,
            ],
            &[],
        ),
        Duration::from_secs(60),
    );
    let _ = std::fs::remove_file(&uc);
    let out = r?;
    ensure!(
        out.status.success(),
        "get --condor: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        Pool::wait_for(Duration::from_secs(15), || use_path(w, &w.robot.name, SVC)
            .exists()),
        "no .use after get --condor; credmon log:\n{}",
        credmon_log(w)
    );
    Ok(())
}

/// HTCondor's logs hold no complaint about anything robot-credmon wrote.
fn htcondor_logs_have_no_complaints(w: &World, marks: &[(String, u64)]) -> R {
    let bad: Vec<String> = w
        .pool
        .log_lines_since(marks)
        .into_iter()
        .filter(|(log, _)| log != "CredMonOAuthLog")
        .filter(|(_, l)| {
            let about_us = l.contains("oauth_credentials")
                || l.contains(".use")
                || l.contains(".top")
                || l.contains("CREDMON")
                || l.contains("redential");
            let complaint = [
                "ERROR",
                "rror",
                "ailed",
                "annot",
                "Can't",
                "nvalid",
                "Rejecting",
                "not available",
                "WARNING",
            ]
            .iter()
            .any(|w| l.contains(w));
            about_us && complaint
        })
        .map(|(log, l)| format!("{log}: {l}"))
        .collect();
    ensure!(
        bad.is_empty(),
        "complaints in HTCondor's logs:\n{}",
        bad.join("\n")
    );
    Ok(())
}

fn wait_credmon_back(w: &World, old: i32, what: &str) -> R {
    let back = Pool::wait_for(Duration::from_secs(40), || {
        w.pool.credmon_pid().is_some_and(|p| p != old)
    });
    ensure!(
        back,
        "{what}: the master did not restart the credmon; MasterLog tail:\n{}",
        tail(&w.pool.log("MasterLog"), 30)
    );
    w.pool
        .who_wait(
            30,
            "CREDMON_OAUTH_State =?= \"Ready\" && IsReady",
            &["IsReady = true", "CREDMON_OAUTH_State = \"Ready\""],
        )
        .map_err(|e| format!("{what}: not ready again: {e}"))?;
    Ok(())
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The master restarts the credmon after SIGTERM and SIGKILL, condor_restart and condor_off/on.
fn the_master_restarts_the_credmon(w: &World) -> R {
    for sig in [Signal::SIGTERM, Signal::SIGKILL] {
        let pid = w.pool.credmon_pid().ok_or("no credmon pid")?;
        kill(Pid::from_raw(pid), sig).map_err(|e| e.to_string())?;
        wait_credmon_back(w, pid, &format!("{sig}"))?;
    }
    // condor_off -subsystem: stopped, its pid file removed (a clean exit); condor_on: back.
    let pid = w.pool.credmon_pid().ok_or("no credmon pid")?;
    w.pool.ok(
        "condor_off",
        &["-subsystem", "CREDMON_OAUTH"],
        Duration::from_secs(20),
    )?;
    ensure!(
        Pool::wait_for(Duration::from_secs(20), || kill(Pid::from_raw(pid), None)
            .is_err()),
        "condor_off did not stop the credmon"
    );
    ensure!(
        !w.pool.cred_dir.join("pid").exists(),
        "the pid file stayed after a clean exit"
    );
    w.pool.ok(
        "condor_on",
        &["-subsystem", "CREDMON_OAUTH"],
        Duration::from_secs(20),
    )?;
    wait_credmon_back(w, pid, "condor_on")?;
    // condor_restart: every daemon again; the credmon is ready again and keeps working.
    let pid = w.pool.credmon_pid().ok_or("no credmon pid")?;
    w.pool.ok("condor_restart", &[], Duration::from_secs(20))?;
    wait_credmon_back(w, pid, "condor_restart")?;
    w.pool.wait_daemons(&["SCHEDD", "STARTD", "CREDD"], 60)?;
    ensure!(
        Pool::wait_for(Duration::from_secs(20), || w
            .pool
            .cred_dir
            .join("CREDMON_COMPLETE")
            .exists()),
        "no CREDMON_COMPLETE after condor_restart"
    );
    let starts = credmon_log(w).matches("credmon started").count();
    ensure!(starts >= 5, "expected five starts, log has {starts}");
    Ok(())
}

/// TRUSTED_VAULT_HOSTS in each documented form, through the credd and the credmon.
fn trusted_vault_hosts_forms(w: &World) -> R {
    let hostport = format!("localhost:{}", w.env.vault.port());
    // The credd's form (host:port as in vault_url): submit and job work.
    reconfig(w, &format!("TRUSTED_VAULT_HOSTS = {hostport}\n"))?;
    let _ = Pool::run(
        &mut w.pool.as_user(
            &w.robot,
            &w.pool.prefix.join("sbin/condor_store_cred"),
            &["delete-oauth", "-s", SVC],
            &[],
        ),
        Duration::from_secs(20),
    );
    ensure!(
        Pool::wait_for(Duration::from_secs(10), || !top_path(w, &w.robot.name, SVC)
            .exists()
            && !use_path(w, &w.robot.name, SVC).exists()),
        "the deleted credential is still there"
    );
    run_job(
        w,
        &w.robot,
        "trusted-hostport",
        1,
        &[SVC],
        &format!("use_oauth_services = {SVC}"),
    )
    .map_err(|e| format!("host:port form: {e}"))?;
    // Both forms listed: works too.
    reconfig(w, &format!("TRUSTED_VAULT_HOSTS = localhost, {hostport}\n"))?;
    run_job(
        w,
        &w.robot,
        "trusted-both",
        1,
        &[SVC],
        &format!("use_oauth_services = {SVC}"),
    )
    .map_err(|e| format!("both forms: {e}"))?;
    // The bare host: the credd refuses to store a vault_url with a port
    // (documented); the credmon still accepts the credentials it provisions.
    reconfig(w, "TRUSTED_VAULT_HOSTS = localhost\n")?;
    let _ = Pool::run(
        &mut w.pool.as_user(
            &w.robot,
            &w.pool.prefix.join("sbin/condor_store_cred"),
            &["delete-oauth", "-s", SVC],
            &[],
        ),
        Duration::from_secs(20),
    );
    let (r, _) = w.pool.submit(
        &w.robot,
        "trusted-bare",
        1,
        &[SVC],
        &format!("use_oauth_services = {SVC}"),
        &krb_env(w, &w.robot),
    );
    let refused = r
        .err()
        .ok_or("bare host: the credd accepted a vault_url with a port")?;
    let entry = format!("add '{hostport}' to TRUSTED_VAULT_HOSTS");
    ensure!(
        refused.contains("Credential requires interacting with an untrusted host")
            && refused.contains(&entry),
        "bare host: the storer does not name the entry to add ({entry}):\n{refused}"
    );
    eprintln!(
        "pool: the storer under condor_submit: {}",
        refused
            .lines()
            .find(|l| l.contains("untrusted host"))
            .unwrap_or_default()
    );
    ensure!(
        w.pool
            .log("CredLog")
            .contains("Rejecting vault token from untrusted host"),
        "bare host: no rejection in CredLog"
    );
    let _ = std::fs::remove_file(use_path(w, &w.prov.name, PROV));
    ensure!(
        Pool::wait_for(Duration::from_secs(20), || use_path(w, &w.prov.name, PROV)
            .exists()),
        "bare host: the provisioned credential is not served; log:\n{}",
        tail(&credmon_log(w), 20)
    );
    reconfig(w, "")?;
    Ok(())
}

/// A credential skipped under a wrong TRUSTED_VAULT_HOSTS heals right after
/// condor_reconfig with the fixed setting.
fn reconfig_heals_a_skipped_credential(w: &World) -> R {
    let use_ = use_path(w, &w.robot.name, SVC);
    if !top_path(w, &w.robot.name, SVC).exists() {
        run_job(
            w,
            &w.robot,
            "heal-store",
            1,
            &[SVC],
            &format!("use_oauth_services = {SVC}"),
        )?;
    }
    reconfig(w, "TRUSTED_VAULT_HOSTS = elsewhere.example:8200\n")?;
    let _ = std::fs::remove_file(&use_);
    ensure!(
        Pool::wait_for(Duration::from_secs(15), || credmon_log(w)
            .contains("not in TRUSTED_VAULT_HOSTS")),
        "the credential was not skipped; log:\n{}",
        tail(&credmon_log(w), 20)
    );
    ensure!(!use_.exists(), "a .use for an untrusted host");
    let t0 = Instant::now();
    reconfig(
        w,
        &format!("TRUSTED_VAULT_HOSTS = localhost:{}\n", w.env.vault.port()),
    )?;
    ensure!(
        Pool::wait_for(Duration::from_secs(10), || use_.exists()),
        "no .use 10 s after condor_reconfig with the fixed setting; log:\n{}",
        tail(&credmon_log(w), 20)
    );
    eprintln!(
        "pool: healed {:.1} s after condor_reconfig",
        t0.elapsed().as_secs_f64()
    );
    reconfig(w, "")?;
    Ok(())
}

/// The knobs of HTCondor's own `40-vault-credmon.conf` mean the same to
/// robot-credmon: the log named by `SEC_CREDENTIAL_MONITOR_OAUTH_LOG`, the
/// level by `CREDMON_OAUTH_LOG_LEVEL` (after condor_reconfig).
fn htcondors_credmon_log_knobs(w: &World) -> R {
    // The credmon's log moves, so the waits are for the log files themselves.
    w.pool.reconfig(&format!(
        "{BASE}CREDMON_OAUTH_LOG =\nCREDMON_OAUTH_DEBUG =\nSEC_CREDENTIAL_MONITOR_OAUTH_LOG = $(LOG)/VaultCredmonLog\nCREDMON_OAUTH_LOG_LEVEL = DEBUG\n",
    ))?;
    let ok = Pool::wait_for(Duration::from_secs(15), || {
        w.pool.log("VaultCredmonLog").contains("DEBUG")
    });
    let text = w.pool.log("VaultCredmonLog");
    let mark = credmon_log(w).len();
    w.pool.reconfig(BASE)?;
    ensure!(ok, "no DEBUG lines in $(LOG)/VaultCredmonLog: {text:?}");
    ensure!(
        Pool::wait_for(Duration::from_secs(20), || credmon_log(w).len() > mark),
        "the credmon did not log to CredMonOAuthLog again within 20 s of restoring its knobs"
    );
    Ok(())
}

// -- two access points ----------------------------------------------------------------------
//
// A second condor_master runs another access point (`ap2@pool`: schedd, credd
// and robot-credmon, each with its own directories and CONDOR_CONFIG) and
// reports to the first one's collector; jobs from both APs run on the one
// startd. Credds are named by CREDD_HOST (`ap1@pool`, `ap2@pool`), which is
// how `condor_store_cred` finds a credd by name in the collector.

const AP1: &str = "ap1@pool";
const AP2: &str = "ap2@pool";

fn ap2(w: &World) -> Result<&Pool, String> {
    w.ap2
        .get()
        .ok_or_else(|| "the second AP did not start".to_owned())
}

/// `condor_store_cred <args>` as `user` with `ap`'s configuration.
fn store_cred(ap: &Pool, user: &User, args: &[&str]) -> Result<std::process::Output, String> {
    Pool::run(
        &mut ap.as_user(user, &ap.prefix.join("sbin/condor_store_cred"), args, &[]),
        Duration::from_secs(30),
    )
}

/// A second condor_master with another AP joins the pool.
fn two_aps_second_ap_joins_the_pool(w: &World) -> R {
    let t0 = Instant::now();
    let ap = Pool::start_ap(&w.env, &w.pool, "ap2")?;
    eprintln!("pool: second AP up in {:.1} s", t0.elapsed().as_secs_f64());
    ensure!(
        ap.cred_dir != w.pool.cred_dir && ap.credmon_pid() != w.pool.credmon_pid(),
        "the second AP shares the first one's credential directory or credmon"
    );
    let _ = w.ap2.set(ap);
    Ok(())
}

/// A robot's jobs on both APs get their tokens, each from its own AP's credd and credmon.
fn two_aps_jobs_on_both_aps_get_their_tokens(w: &World) -> R {
    let ap = ap2(w)?;
    let svcs = [SVC];
    let extra = format!("use_oauth_services = {SVC}");
    let one = run_job(w, &w.robot, "two-aps-1", 1, &svcs, &extra)?;
    let (r, two) = ap.submit(
        &w.robot,
        "two-aps-2",
        1,
        &svcs,
        &extra,
        &krb_env(w, &w.robot),
    );
    r.map_err(|e| format!("condor_submit on ap2 failed: {e}"))?;
    ap.wait_job(&two, 60)?;
    for (which, dir) in [("ap1", &one), ("ap2", &two)] {
        let seen = Pool::job_tokens(dir, SVC);
        ensure!(
            seen.first().is_some_and(|t| valid_jwt(t)),
            "the job on {which} saw no valid token; listing: {}",
            std::fs::read_to_string(dir.join("creds-listing")).unwrap_or_default()
        );
    }
    for (which, pool) in [("ap1", &w.pool), ("ap2", ap)] {
        let use_ = pool.cred_dir.join(&w.robot.name).join(format!("{SVC}.use"));
        ensure!(use_.exists(), "no {} on {which}", use_.display());
    }
    Ok(())
}

/// Each credmon writes only into its own credential directory: with ap2's
/// credmon stopped, nothing renews ap2's `.use`, while ap1's credmon runs
/// its passes; a handle stored only on ap2 never reaches ap1.
fn two_aps_each_credmon_touches_only_its_own_directory(w: &World) -> R {
    let ap = ap2(w)?;
    // A handle on ap2 only.
    let (r, dir) = ap.submit(
        &w.robot,
        "two-aps-handle",
        1,
        &[SVC, "igwn_aptwo"],
        "use_oauth_services = igwn\nigwn_oauth_permissions_aptwo = read:/aptwo",
        &krb_env(w, &w.robot),
    );
    r.map_err(|e| format!("condor_submit on ap2 failed: {e}"))?;
    ap.wait_job(&dir, 60)?;
    let ap2_use = ap.cred_dir.join(&w.robot.name).join(format!("{SVC}.use"));
    ap.ok(
        "condor_off",
        &["-subsystem", "CREDMON_OAUTH"],
        Duration::from_secs(20),
    )?;
    let off = Pool::wait_for(Duration::from_secs(20), || ap.credmon_pid().is_none());
    ensure!(off, "ap2's credmon did not stop");
    let _ = std::fs::remove_file(&ap2_use);
    // ap1's credmon rewrites its CREDMON_COMPLETE after each full pass
    // (every ROBOT_CREDMON_SCAN_INTERVAL = 2 s here): wait for two.
    let complete = w.pool.cred_dir.join("CREDMON_COMPLETE");
    let stamp = || std::fs::metadata(&complete).and_then(|m| m.modified()).ok();
    let mut seen = vec![stamp()];
    if let Some(pid) = w.pool.credmon_pid() {
        let _ = kill(Pid::from_raw(pid), Signal::SIGHUP);
    }
    let passes = Pool::wait_for(Duration::from_secs(20), || {
        let now = stamp();
        if now.is_some() && !seen.contains(&now) {
            seen.push(now);
        }
        seen.len() >= 3
    });
    let untouched = !ap2_use.exists();
    ap.ok(
        "condor_on",
        &["-subsystem", "CREDMON_OAUTH"],
        Duration::from_secs(20),
    )?;
    ensure!(
        untouched,
        "something but ap2's credmon wrote {}",
        ap2_use.display()
    );
    ensure!(passes, "ap1's credmon made no two passes in 20 s");
    ensure!(
        Pool::wait_for(Duration::from_secs(30), || ap2_use.exists()),
        "ap2's credmon, back, did not renew {}",
        ap2_use.display()
    );
    let ap1_log = credmon_log(w);
    let ap2_log = ap.log("CredMonOAuthLog");
    ensure!(
        ap2_log.contains("igwn_aptwo") && !ap1_log.contains("igwn_aptwo"),
        "the ap2-only handle: in ap2's log {}, in ap1's log {}",
        ap2_log.contains("igwn_aptwo"),
        ap1_log.contains("igwn_aptwo")
    );
    ensure!(
        !w.pool
            .cred_dir
            .join(&w.robot.name)
            .join("igwn_aptwo.use")
            .exists(),
        "ap1's directory has the ap2-only handle"
    );
    for (log, other) in [(&ap1_log, &ap.cred_dir), (&ap2_log, &w.pool.cred_dir)] {
        ensure!(
            !log.contains(&other.display().to_string()),
            "a credmon log names the other AP's directory {}",
            other.display()
        );
    }
    Ok(())
}

/// `get --condor` run as `user`, with `extra` arguments, in ap1's configuration.
fn get_condor_as(w: &World, extra: &[&str]) -> Result<std::process::Output, String> {
    let keytab = w.robot.home.join("robot.keytab").display().to_string();
    let principal = w.env.kdc.principal(TestEnv::PRINCIPAL);
    let (ca, url) = (w.pool.ca.display().to_string(), w.env.vault.url());
    let mut args = vec![
        "get", "--cafile", &ca, "-a", &url, "-k", &keytab, "--condor",
    ];
    args.extend(extra);
    args.push(&principal);
    Pool::run(
        &mut w.pool.as_user(&w.robot, &w.pool.bin, &args, &[]),
        Duration::from_secs(90),
    )
}

/// One cron job for every credd: `get --condor` with the credd list (knob,
/// then `--credd`) stores into both APs' credds; a credd that cannot be
/// reached is reported and stops neither of the others.
fn two_aps_get_condor_stores_into_every_credd(w: &World) -> R {
    let ap = ap2(w)?;
    let cfg_dir = w.robot.home.join(".condor");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    std::os::unix::fs::chown(&cfg_dir, Some(w.robot.uid), Some(w.robot.gid)).unwrap();
    let uc = cfg_dir.join("user_config");
    let forget = || {
        for pool in [&w.pool, ap] {
            let _ = store_cred(pool, &w.robot, &["delete-oauth", "-s", SVC]);
        }
    };
    let stored = |pool: &Pool| {
        pool.cred_dir
            .join(&w.robot.name)
            .join(format!("{SVC}.top"))
            .exists()
    };
    let result = (|| -> R {
        std::fs::write(
            &uc,
            format!(
                "SEC_CREDENTIAL_GETTOKEN_OPTS = --credkey={} --role=robot --vaultserver={}\nROBOT_CREDMON_CREDDS = {AP1}, {AP2}\n",
                TestEnv::PRINCIPAL,
                w.env.vault.url()
            ),
        )
        .unwrap();
        forget();
        ensure!(
            Pool::wait_for(Duration::from_secs(10), || !stored(&w.pool) && !stored(ap)),
            "delete-oauth left a .top behind"
        );
        let out = get_condor_as(w, &[])?;
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(
            out.status.success(),
            "get --condor with ROBOT_CREDMON_CREDDS: {err}"
        );
        for line in [
            format!("credd {AP1}: stored {SVC}"),
            format!("credd {AP2}: stored {SVC}"),
        ] {
            ensure!(err.contains(&line), "no '{line}' in:\n{err}");
        }
        for (which, pool) in [("ap1", &w.pool), ("ap2", ap)] {
            let use_ = pool.cred_dir.join(&w.robot.name).join(format!("{SVC}.use"));
            ensure!(
                Pool::wait_for(Duration::from_secs(20), || use_.exists()),
                "no .use on {which} after get --condor"
            );
        }
        // A credd that is not there: reported, the others still get the credential.
        forget();
        ensure!(
            Pool::wait_for(Duration::from_secs(10), || !stored(&w.pool) && !stored(ap)),
            "delete-oauth left a .top behind"
        );
        let out = get_condor_as(
            w,
            &["--credd", AP1, "--credd", "nosuch@pool", "--credd", AP2],
        )?;
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(
            out.status.code() == Some(1),
            "get --condor with a missing credd exited {:?}: {err}",
            out.status.code()
        );
        for line in [
            format!("credd {AP1}: stored {SVC}"),
            "credd nosuch@pool: FAILED".to_owned(),
            format!("credd {AP2}: stored {SVC}"),
            "storing failed at 1 of 3 credds: nosuch@pool".to_owned(),
        ] {
            ensure!(err.contains(&line), "no '{line}' in:\n{err}");
        }
        ensure!(
            stored(&w.pool) && stored(ap),
            "a credd lacks the credential:\n{err}"
        );
        Ok(())
    })();
    let _ = std::fs::remove_file(&uc);
    result
}

/// Why `--credd` does not use `condor_store_cred -n NAME`: with `-n` it
/// sends to the *schedd* of that name, which on Linux has no STORE_CRED handler.
fn two_aps_condor_store_cred_n_reaches_no_credd(w: &World) -> R {
    let ap = ap2(w)?;
    let schedd = ap
        .ok(
            "condor_status",
            &["-schedd", "-af", "Name"],
            Duration::from_secs(20),
        )?
        .lines()
        .map(str::trim)
        .find(|n| n.starts_with("ap2"))
        .map(str::to_owned)
        .ok_or("no ap2 schedd in the collector")?;
    let out = store_cred(
        &w.pool,
        &w.robot,
        &["query-oauth", "-s", SVC, "-n", &schedd],
    )?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        !out.status.success(),
        "condor_store_cred -n {schedd} worked ({said}): --credd could use it"
    );
    ensure!(
        Pool::wait_for(Duration::from_secs(10), || ap
            .log("SchedLog")
            .contains("UNREGISTERED COMMAND")),
        "ap2's schedd did not log the unregistered STORE_CRED command"
    );
    Ok(())
}

fn setup() -> World {
    pool_support::prefix().unwrap_or_else(|e| panic!("{e}"));
    let lock = machine_lock();
    let env = TestEnv::start().expect("test environment (KDC + Vault)");
    let robot = ensure_user("rcm-robot", false).expect("robot user");
    let prov = ensure_user("rcm-prov", false).expect("provisioned robot user");
    let pool = Pool::start(&env).unwrap_or_else(|e| panic!("{e}"));
    // The robot's own keytab (for the storer and get --condor) ...
    install(
        &env.robot_keytab(),
        &robot.home.join("robot.keytab"),
        0o600,
        (robot.uid, robot.gid),
    );
    // ... and the credmon's copies (root 0600), for keytab re-login and provisioning.
    for u in [&robot, &prov] {
        install(
            &env.robot_keytab(),
            &pool.keytab_dir.join(format!("{}.keytab", u.name)),
            0o600,
            (0, 0),
        );
    }
    // Leftovers of earlier runs (another Vault): the storer's local token files.
    for u in [&robot, &prov] {
        if let Ok(rd) = std::fs::read_dir("/tmp") {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with(&format!("vt_u{}", u.uid))
                    || n.starts_with(&format!("bt_u{}", u.uid))
                {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
    pool.reconfig(BASE).expect("reconfig");
    World {
        env,
        pool,
        ap2: std::cell::OnceCell::new(),
        robot,
        prov,
        _lock: lock,
    }
}

#[test]
fn htcondor_pool_end_to_end() {
    let t0 = Instant::now();
    let mut w = setup();
    // Every scenario starts from the base configuration.
    let keep = |w: &World| {
        if !std::fs::read_to_string(&w.pool.dynamic)
            .unwrap_or_default()
            .ends_with(&format!("\n{BASE}"))
        {
            let _ = w.pool.reconfig(BASE);
        }
    };
    let marks = w.pool.log_marks();
    let mut failed = Vec::new();
    // For debugging: ROBOT_CREDMON_POOL_ONLY=name,name runs only those scenarios.
    let only = std::env::var("ROBOT_CREDMON_POOL_ONLY").ok();
    let mut step = |name: &str, f: &dyn Fn(&World) -> R, w: &World| {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|n| n == name))
        {
            return;
        }
        let s = Instant::now();
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| f(w)))
            .unwrap_or_else(|p| Err(format!("panicked: {:?}", p.downcast_ref::<String>())));
        eprintln!(
            "pool: {name}: {} ({:.1} s)",
            if r.is_ok() { "ok" } else { "FAILED" },
            s.elapsed().as_secs_f64()
        );
        if let Err(e) = r {
            failed.push(format!("--- {name}:\n{e}"));
        }
        keep(w);
    };
    step(
        "master_sees_the_credmon_ready",
        &master_sees_the_credmon_ready,
        &w,
    );
    step("the_credmon_runs_confined", &the_credmon_runs_confined, &w);
    step(
        "submit_gives_the_job_a_valid_token",
        &submit_gives_the_job_a_valid_token,
        &w,
    );
    step(
        "renewal_reaches_a_running_job",
        &renewal_reaches_a_running_job,
        &w,
    );
    step("handles_get_their_scopes", &handles_get_their_scopes, &w);
    step(
        "provisioning_with_no_submit",
        &provisioning_with_no_submit,
        &w,
    );
    step(
        "robot_submits_without_kerberos",
        &robot_submits_without_kerberos,
        &w,
    );
    step(
        "htcondor_logs_have_no_complaints",
        &|w: &World| htcondor_logs_have_no_complaints(w, &marks),
        &w,
    );
    step(
        "keytab_relogin_uses_the_role_of_the_vault_url",
        &keytab_relogin_uses_the_role_of_the_vault_url,
        &w,
    );
    step(
        "status_and_a_credential_that_needs_a_person",
        &status_and_a_credential_that_needs_a_person,
        &w,
    );
    step("delete_oauth", &delete_oauth, &w);
    step("get_condor", &get_condor, &w);
    step("trusted_vault_hosts_forms", &trusted_vault_hosts_forms, &w);
    step(
        "reconfig_heals_a_skipped_credential",
        &reconfig_heals_a_skipped_credential,
        &w,
    );
    step(
        "the_master_restarts_the_credmon",
        &the_master_restarts_the_credmon,
        &w,
    );
    step(
        "htcondors_credmon_log_knobs",
        &htcondors_credmon_log_knobs,
        &w,
    );
    let two = Instant::now();
    step(
        "two_aps_second_ap_joins_the_pool",
        &two_aps_second_ap_joins_the_pool,
        &w,
    );
    step(
        "two_aps_jobs_on_both_aps_get_their_tokens",
        &two_aps_jobs_on_both_aps_get_their_tokens,
        &w,
    );
    step(
        "two_aps_each_credmon_touches_only_its_own_directory",
        &two_aps_each_credmon_touches_only_its_own_directory,
        &w,
    );
    step(
        "two_aps_get_condor_stores_into_every_credd",
        &two_aps_get_condor_stores_into_every_credd,
        &w,
    );
    step(
        "two_aps_condor_store_cred_n_reaches_no_credd",
        &two_aps_condor_store_cred_n_reaches_no_credd,
        &w,
    );
    eprintln!(
        "pool: two_aps scenarios in {:.1} s",
        two.elapsed().as_secs_f64()
    );
    if let Some(mut ap) = w.ap2.take() {
        ap.stop();
    }
    w.pool.stop();
    eprintln!("pool: all scenarios in {:.1} s", t0.elapsed().as_secs_f64());
    assert!(
        failed.is_empty(),
        "{} scenario(s) failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}
