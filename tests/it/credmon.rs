//! `robot-credmon credmon` end to end: the real binary against the test Vault,
//! the real KDC and a credd simulator, configured through `_CONDOR_*` variables
//! (and a fake `condor_config_val` for the SIGHUP reconfiguration test; like
//! the real one it lists the files it reads with `-config`, which the
//! confined credmon may then read).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/credd.rs"]
pub(crate) mod credd;

use crate::support::{Fault, TestEnv, wait};
use credd::Credd;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use robot_credmon::metrics;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

pub(crate) const USER: &str = "alice";
pub(crate) const SVC: &str = "igwn_robot";

/// A running credmon; killed by pid on drop.
pub(crate) struct Credmon {
    pub(crate) child: Child,
    pub(crate) log: PathBuf,
    /// Its credential directory.
    cred_dir: PathBuf,
    /// [`pass_stamp`] just before it started.
    stamp: Option<SystemTime>,
}

/// When the last complete pass ended: the time of `<cred_dir>/CREDMON_COMPLETE`,
/// touched at the end of every pass and removed at the start of the next
/// (`None` while a pass runs, and before the first).
pub(crate) fn pass_stamp(cred_dir: &Path) -> Option<SystemTime> {
    Credd::mtime(&cred_dir.join("CREDMON_COMPLETE"))
}

impl Credmon {
    pub(crate) fn command(
        env: &TestEnv,
        credd: &Credd,
        knobs: &[(&str, &str)],
    ) -> (Command, PathBuf) {
        let log = env.path().join("CredMonOAuthLog");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_robot-credmon"));
        cmd.arg("credmon")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(env.kdc.env())
            .env(
                "_CONDOR_SEC_CREDENTIAL_DIRECTORY_OAUTH",
                credd.dir.display().to_string(),
            )
            .env("_CONDOR_CREDMON_OAUTH_LOG", log.display().to_string())
            .env(
                "_CONDOR_AUTH_SSL_CLIENT_CAFILE",
                env.vault.ca_file().display().to_string(),
            )
            .env(
                "_CONDOR_ROBOT_CREDMON_ALLOWED_VAULT_PORTS",
                env.vault.port().to_string(),
            )
            .env("_CONDOR_ROBOT_CREDMON_BACKOFF_BASE", "1")
            .env("_CONDOR_CREDMON_OAUTH_DEBUG", "D_FULLDEBUG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in knobs {
            cmd.env(format!("_CONDOR_{k}"), v);
        }
        (cmd, log)
    }

    pub(crate) fn start(env: &TestEnv, credd: &Credd, knobs: &[(&str, &str)]) -> Credmon {
        let (cmd, log) = Self::command(env, credd, knobs);
        Self::spawn(cmd, log, credd)
    }

    /// Starts `cmd` and waits (bounded) for its pid file.
    pub(crate) fn spawn(cmd: Command, log: PathBuf, credd: &Credd) -> Credmon {
        let c = Self::spawn_only(cmd, log, credd);
        let pid = c.pid();
        c.wait(
            "the credmon wrote no pid file",
            Duration::from_secs(5),
            || credd.pid() == Some(pid),
        );
        c
    }

    /// Starts `cmd` on `credd`'s directory, waiting for nothing.
    fn spawn_only(mut cmd: Command, log: PathBuf, credd: &Credd) -> Credmon {
        let stamp = pass_stamp(&credd.dir);
        let child = cmd.spawn().expect("cannot start robot-credmon");
        Credmon {
            child,
            log,
            cred_dir: credd.dir.clone(),
            stamp,
        }
    }

    /// Waits (bounded) until `cond` holds; fails naming `what` did not
    /// happen, with the log.
    pub(crate) fn wait(&self, what: &str, bound: Duration, cond: impl FnMut() -> bool) {
        assert!(
            wait::until(bound, cond),
            "{what} within {bound:?}; log:\n{}",
            self.log_text()
        );
    }

    /// Waits (bounded) for the end of this credmon's first pass.
    pub(crate) fn wait_first_pass(&self, bound: Duration) {
        let before = self.stamp;
        self.wait("no first pass", bound, || {
            pass_stamp(&self.cred_dir).is_some_and(|t| before.is_none_or(|b| t > b))
        });
    }

    /// Waits (bounded, each) for the end of a pass that starts after this
    /// call: the next one when none runs, else the one after the running one.
    pub(crate) fn wait_next_pass(&self, bound: Duration) {
        let mut last = pass_stamp(&self.cred_dir);
        let ends = if last.is_some() { 1 } else { 2 };
        for _ in 0..ends {
            self.wait("no next pass", bound, || match pass_stamp(&self.cred_dir) {
                Some(t) if last.is_none_or(|l| t > l) => {
                    last = Some(t);
                    true
                }
                _ => false,
            });
        }
    }

    pub(crate) fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) for `needle` to appear in the log.
    pub(crate) fn wait_log(&self, needle: &str, limit: Duration) -> bool {
        wait::until(limit, || self.log_text().contains(needle))
    }

    pub(crate) fn signal(&self, s: Signal) {
        kill(Pid::from_raw(self.pid()), s).unwrap();
    }

    /// Sends `s` and waits (bounded) for the exit; returns the status and how long it took.
    fn stop_with(&mut self, s: Signal, limit: Duration) -> (Option<i32>, Duration) {
        let t0 = Instant::now();
        self.signal(s);
        let mut code = None;
        wait::until(limit, || match self.child.try_wait().unwrap() {
            Some(st) => {
                code = st.code();
                true
            }
            None => false,
        });
        (code, t0.elapsed())
    }
}

impl Drop for Credmon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = kill(Pid::from_raw(self.pid()), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

pub(crate) fn setup() -> (TestEnv, Credd) {
    let env = TestEnv::start().expect("test environment (KDC + Vault)");
    let credd = Credd::new(&env.path().join("oauth_credentials"));
    (env, credd)
}

pub(crate) fn top(env: &TestEnv, ttl: u64) -> (String, String) {
    let token = env.provision_token(ttl);
    (
        token.clone(),
        Credd::vault_top(Some(&token), &env.creds_url()),
    )
}

/// A keytab directory with `<USER>.keytab` (the robot's keytab) of this mode.
pub(crate) fn keytab_dir(env: &TestEnv, mode: u32) -> PathBuf {
    let kdir = env.path().join("robot-keytabs");
    std::fs::create_dir(&kdir).unwrap();
    std::fs::set_permissions(&kdir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let kt = kdir.join(format!("{USER}.keytab"));
    std::fs::copy(env.robot_keytab(), &kt).unwrap();
    std::fs::set_permissions(&kt, std::fs::Permissions::from_mode(mode)).unwrap();
    kdir
}

/// `ROBOT_CREDMON_KEYTAB_DIR` set to `kdir`.
pub(crate) fn keytab_knob(kdir: &Path) -> [(&str, &str); 1] {
    [("ROBOT_CREDMON_KEYTAB_DIR", kdir.to_str().unwrap())]
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

fn assert_use_file(credd: &Credd, user: &str, name: &str) -> String {
    let p = credd.use_path(user, name);
    let meta = std::fs::symlink_metadata(&p).unwrap();
    assert!(
        meta.file_type().is_file(),
        "{} is not a regular file",
        p.display()
    );
    assert_eq!(meta.uid(), 0, "{} must be root's", p.display());
    assert_eq!(meta.mode() & 0o777, 0o400, "{} mode", p.display());
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(
        text.ends_with('\n') && text.matches('\n').count() == 1,
        "token + one newline"
    );
    assert_eq!(text.trim().split('.').count(), 3, "a JWT");
    text
}

#[test]
fn new_top_with_sighup_gives_use_within_1s() {
    let (env, credd) = setup();
    let cm = Credmon::start(&env, &credd, &[]);
    // Idle: its first pass (of nothing) is over.
    cm.wait_first_pass(Duration::from_secs(5));
    let (_, t) = top(&env, 3600);
    credd.store_and_kick(USER, SVC, &t);
    let took = credd.wait_for_use(USER, SVC, Duration::from_secs(1));
    if took.is_none() {
        // For the message below: whether it came late, and what the log says then.
        credd.wait_for_use(USER, SVC, Duration::from_secs(3));
    }
    assert!(
        took.is_some(),
        "no .use within 1 s; log:\n{}",
        cm.log_text()
    );
    assert_use_file(&credd, USER, SVC);
    assert!(
        cm.wait_log(
            "refreshed alice/igwn_robot: token expires",
            Duration::from_secs(2)
        ),
        "{}",
        cm.log_text()
    );
    let log = cm.log_text();
    assert!(!log.contains(&t[20..40]), "a token in the log");
}

#[test]
fn refreshes_by_age_and_by_token_expiry() {
    let (env, credd) = setup();
    let (_, t) = top(&env, 3600);
    credd.store(USER, SVC, &t);
    // An expired JWT in a .use newer than the .top: only the expiry rule renews it.
    let expired = format!(
        "eyJhbGciOiJub25lIn0.{}.c2ln\n",
        base64url(r#"{"exp":1000,"sub":"x"}"#)
    );
    std::fs::write(credd.use_path(USER, SVC), &expired).unwrap();
    let cm = Credmon::start(
        &env,
        &credd,
        &[
            ("CREDMON_OAUTH_TOKEN_REFRESH", "2"),
            ("ROBOT_CREDMON_SCAN_INTERVAL", "1"),
        ],
    );
    credd
        .wait_for_change(USER, SVC, &expired, Duration::from_secs(3))
        .unwrap_or_else(|| panic!("expired .use not renewed; log:\n{}", cm.log_text()));
    assert_use_file(&credd, USER, SVC);
    // The age rule (CREDMON_OAUTH_TOKEN_REFRESH = 2 s) renews it again, and
    // not sooner: the new .use is at least 2 s younger than the one before
    // (both times from the file system, whatever the load on this machine).
    let use_path = credd.use_path(USER, SVC);
    let first = ctime(&use_path);
    let n0 = env.vault.count_prefix("GET", "/v1/secret/oauth/creds/");
    cm.wait("no renewal by age", Duration::from_secs(10), || {
        ctime(&use_path) != first
    });
    let n1 = env.vault.count_prefix("GET", "/v1/secret/oauth/creds/");
    assert!(n1 > n0, "renewed without Vault; log:\n{}", cm.log_text());
    assert_use_file(&credd, USER, SVC);
    let gap = ctime(&use_path).duration_since(first).unwrap();
    assert!(
        gap >= Duration::from_millis(1990),
        "renewed {gap:?} after the last renewal, before its age of 2 s; log:\n{}",
        cm.log_text()
    );
}

/// The status change time of `p` (what the credmon's age rule reads).
fn ctime(p: &Path) -> SystemTime {
    let m = std::fs::symlink_metadata(p).unwrap();
    SystemTime::UNIX_EPOCH + Duration::new(m.ctime() as u64, m.ctime_nsec() as u32)
}

fn base64url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[test]
fn replaced_top_is_picked_up_without_a_signal() {
    let (env, credd) = setup();
    let (old_token, t) = top(&env, 3600);
    credd.store(USER, SVC, &t);
    let cm = Credmon::start(&env, &credd, &[("ROBOT_CREDMON_SCAN_INTERVAL", "1")]);
    assert!(
        credd
            .wait_for_use(USER, SVC, Duration::from_secs(3))
            .is_some()
    );
    let before = credd.read_use(USER, SVC).unwrap();
    // The credd does not signal when a .use exists; the old Vault token is revoked.
    env.vault.revoke_token(&old_token);
    let (_, t2) = top(&env, 3600);
    credd.store(USER, SVC, &t2);
    let top_mtime = Credd::mtime(&credd.top_path(USER, SVC)).unwrap();
    cm.wait(
        "replaced .top not picked up",
        Duration::from_secs(5),
        || Credd::mtime(&credd.use_path(USER, SVC)).unwrap() > top_mtime,
    );
    assert_use_file(&credd, USER, SVC);
    assert!(credd.top_path(USER, SVC).exists(), "the .top must stay");
    let _ = before;
}

#[test]
fn expired_vault_token_with_keytab_logs_in_again() {
    let (env, credd) = setup();
    let kdir = keytab_dir(&env, 0o600);
    let (token, t) = top(&env, 3600);
    let mut json: serde_json::Value = serde_json::from_str(&t).unwrap();
    json["extra"] = serde_json::json!("kept");
    credd.store(USER, SVC, &json.to_string());
    env.vault.expire_token(&token);
    let cm = Credmon::start(&env, &credd, &keytab_knob(&kdir));
    assert!(
        credd
            .wait_for_use(USER, SVC, Duration::from_secs(5))
            .is_some(),
        "no .use after re-login; log:\n{}",
        cm.log_text()
    );
    assert_use_file(&credd, USER, SVC);
    assert_eq!(env.vault.logins(), 1, "one Kerberos login");
    let top_path = credd.top_path(USER, SVC);
    assert_eq!(mode(&top_path), 0o600);
    assert_eq!(std::fs::metadata(&top_path).unwrap().uid(), 0);
    let new: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&top_path).unwrap()).unwrap();
    assert_ne!(new["vault_token"].as_str().unwrap(), token);
    assert_eq!(new["extra"], "kept");
    assert_eq!(new["vault_url"], json["vault_url"]);
    let info = env
        .vault
        .token_info(new["vault_token"].as_str().unwrap())
        .unwrap();
    assert!(info.ttl > 0);
    assert!(!cm.log_text().contains(new["vault_token"].as_str().unwrap()));
}

/// Issue 8 fix 2: a credential stored with `--role=robot` under the service
/// `igwn` logs in again at the mount its `vault_url` names, not `igwn_default`.
#[test]
fn keytab_relogin_of_a_role_credential_uses_the_role_in_its_vault_url() {
    let (env, credd) = setup();
    let kdir = keytab_dir(&env, 0o600);
    let (token, t) = top(&env, 3600);
    assert!(t.contains(":robot"), "{t}");
    credd.store(USER, "igwn", &t);
    env.vault.expire_token(&token);
    let [keytabs] = keytab_knob(&kdir);
    let cm = Credmon::start(
        &env,
        &credd,
        &[keytabs, ("ROBOT_CREDMON_SCAN_INTERVAL", "1")],
    );
    assert!(
        credd
            .wait_for_use(USER, "igwn", Duration::from_secs(5))
            .is_some(),
        "no .use after re-login; log:\n{}",
        cm.log_text()
    );
    assert_use_file(&credd, USER, "igwn");
    assert_eq!(env.vault.count("POST", &env.login_path()), 1);
    assert_eq!(
        env.vault
            .count_prefix("POST", "/v1/auth/kerberos-igwn_default"),
        0
    );
    // The new token in the .top works, so later passes do not log in again.
    cm.wait_next_pass(Duration::from_secs(5));
    assert_eq!(env.vault.logins(), 1, "log:\n{}", cm.log_text());
}

/// The one keytab rule: group-readable keytabs (0640) are refused here too.
#[test]
fn group_readable_keytab_is_not_used_for_relogin() {
    let (env, credd) = setup();
    let kdir = keytab_dir(&env, 0o640);
    let (token, t) = top(&env, 3600);
    credd.store(USER, SVC, &t);
    env.vault.expire_token(&token);
    let cm = Credmon::start(&env, &credd, &keytab_knob(&kdir));
    assert!(
        cm.wait_log("mode 0640", Duration::from_secs(5)),
        "log:\n{}",
        cm.log_text()
    );
    // The line docs/troubleshooting.md quotes.
    let log = cm.log_text();
    eprintln!(
        "{}",
        log.lines()
            .find(|l| l.contains("mode 0640"))
            .unwrap_or_default()
    );
    assert_eq!(env.vault.logins(), 0);
}

#[test]
fn expired_vault_token_without_keytab_removes_the_credential() {
    let (env, credd) = setup();
    let (token, t) = top(&env, 3600);
    credd.store(USER, SVC, &t);
    env.vault.expire_token(&token);
    let cm = Credmon::start(&env, &credd, &[("ROBOT_CREDMON_SCAN_INTERVAL", "1")]);
    cm.wait("the .top was not removed", Duration::from_secs(5), || {
        !credd.top_path(USER, SVC).exists()
    });
    assert!(!credd.use_path(USER, SVC).exists());
    // Said once: not again in a later pass.
    cm.wait_next_pass(Duration::from_secs(5));
    let log = cm.log_text();
    assert_eq!(
        log.matches("Vault refused the token of alice/igwn_robot")
            .count(),
        1,
        "{log}"
    );
    assert!(credd.dir.join(USER).is_dir(), "the user directory stays");
}

#[test]
fn vault_500_keeps_the_old_use_and_backs_off() {
    let (env, credd) = setup();
    let (_, t) = top(&env, 3600);
    credd.store(USER, SVC, &t);
    let cm = Credmon::start(
        &env,
        &credd,
        &[
            ("CREDMON_OAUTH_TOKEN_REFRESH", "1"),
            ("ROBOT_CREDMON_SCAN_INTERVAL", "1"),
            ("ROBOT_CREDMON_BACKOFF_BASE", "2"),
        ],
    );
    assert!(
        credd
            .wait_for_use(USER, SVC, Duration::from_secs(3))
            .is_some()
    );
    let good = credd.read_use(USER, SVC).unwrap();
    env.vault.inject(
        Fault::status(
            "/v1/secret/oauth/creds/",
            500,
            r#"{"errors":["internal error"]}"#,
        )
        .permanent(),
    );
    // A failure and its retry (the age rule asks every second).
    const FAILED: &str = "failed to refresh alice/igwn_robot";
    cm.wait("no retry", Duration::from_secs(15), || {
        cm.log_text().matches(FAILED).count() >= 2
    });
    assert_eq!(
        credd.read_use(USER, SVC).unwrap(),
        good,
        "the old .use stays"
    );
    // The retry waited its backoff (base 2 s, half jitter: at least 1 s),
    // by the credmon's own clock in its log. That later retries wait longer
    // and passes do not cut a backoff short is shown in virtual time
    // (`daemon::tests::a_credential_failing_again_and_again_waits_longer_each_time`).
    let log = cm.log_text();
    let at: Vec<f64> = log
        .lines()
        .filter(|l| l.contains(FAILED))
        .map(log_seconds)
        .collect();
    let gap = (at[1] - at[0]).rem_euclid(86_400.0);
    assert!(gap >= 0.99, "retried after {gap} s:\n{log}");
    let before = Credd::mtime(&credd.use_path(USER, SVC)).unwrap();
    env.vault.clear_faults();
    cm.wait("no recovery", Duration::from_secs(20), || {
        Credd::mtime(&credd.use_path(USER, SVC)).unwrap() > before
    });
}

/// The time of day of a credmon log line (`05/14/26 14:47:01.123 ...`), in seconds.
fn log_seconds(line: &str) -> f64 {
    let time = line.split(' ').nth(1).unwrap_or_default();
    let parts: Vec<f64> = time.split(':').map(|p| p.parse().unwrap()).collect();
    assert_eq!(parts.len(), 3, "{line}");
    parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
}

#[test]
fn vault_timeout_keeps_the_old_use() {
    let (env, credd) = setup();
    let (_, t) = top(&env, 3600);
    credd.store(USER, SVC, &t);
    let cm = Credmon::start(
        &env,
        &credd,
        &[
            ("CREDMON_OAUTH_TOKEN_REFRESH", "1"),
            ("ROBOT_CREDMON_SCAN_INTERVAL", "1"),
            ("ROBOT_CREDMON_REQUEST_TIMEOUT", "1"),
        ],
    );
    assert!(
        credd
            .wait_for_use(USER, SVC, Duration::from_secs(3))
            .is_some()
    );
    let good = credd.read_use(USER, SVC).unwrap();
    env.vault
        .inject(Fault::delay("/v1/secret/oauth/creds/", Duration::from_secs(3)).permanent());
    // The next refresh (the age rule asks every second) times out.
    assert!(
        cm.wait_log(
            "keeping the old .use of alice/igwn_robot",
            Duration::from_secs(10)
        ),
        "{}",
        cm.log_text()
    );
    assert_eq!(
        credd.read_use(USER, SVC).unwrap(),
        good,
        "the old .use stays"
    );
    env.vault.clear_faults();
}

#[test]
fn handles_with_and_without_their_own_vault_token_use_sts_with_scopes_and_audiences() {
    let (env, credd) = setup();
    let (_, t) = top(&env, 3600);
    credd.store(USER, SVC, &t);
    let sts = env.creds_url().replace("/creds/", "/sts/");
    // Handle without vault_token: the parent's is used.
    credd.store(
        USER,
        "igwn_robot_ro",
        &serde_json::json!({"vault_url": sts, "scopes": "storage.read:/", "audience": "https://aud.example"}).to_string(),
    );
    // Handle with its own token.
    let own = env.provision_token(3600);
    credd.store(
        USER,
        "igwn_robot_own",
        &serde_json::json!({"vault_token": own, "vault_url": sts, "scopes": "compute.create"})
            .to_string(),
    );
    let cm = Credmon::start(&env, &credd, &[]);
    for name in [SVC, "igwn_robot_ro", "igwn_robot_own"] {
        assert!(
            credd
                .wait_for_use(USER, name, Duration::from_secs(5))
                .is_some(),
            "no {name}.use; log:\n{}",
            cm.log_text()
        );
        assert_use_file(&credd, USER, name);
    }
    let reqs = env.vault.requests();
    let sts_reqs: Vec<_> = reqs
        .iter()
        .filter(|r| r.path.starts_with("/v1/secret/oauth/sts/"))
        .collect();
    assert_eq!(sts_reqs.len(), 2, "{reqs:?}");
    assert!(sts_reqs.iter().all(|r| r.has_token && r.method == "GET"));
    assert!(
        sts_reqs
            .iter()
            .all(|r| r.query.contains("minimum_seconds=2400"))
    );
    assert!(sts_reqs.iter().any(|r| r.query.contains("scopes=storage.read")
        && r.query.contains("audiences=https")));
    assert!(
        sts_reqs
            .iter()
            .any(|r| r.query.contains("scopes=compute.create"))
    );
}

#[test]
fn provider_filtering_and_special_character_names() {
    let (env, credd) = setup();
    let (_, t) = top(&env, 3600);
    for name in [
        "igwn_robot",
        "scitokens",
        "box_x",
        "dune",
        "igwn_",
        "mine_a",
    ] {
        credd.store(USER, name, &t);
    }
    // A file name the credd would refuse.
    std::fs::write(credd.user_dir(USER).join("bad name.top"), &t).unwrap();
    let cm = Credmon::start(
        &env,
        &credd,
        &[
            ("VAULT_CREDMON_PROVIDER_NAMES", "*"),
            ("BOX_CLIENT_ID", "abc"),
            ("LOCAL_CREDMON_PROVIDER_NAMES", "mine"),
        ],
    );
    assert!(
        credd
            .wait_for_use(USER, "igwn_robot", Duration::from_secs(3))
            .is_some()
    );
    assert!(
        credd
            .wait_for_use(USER, "dune", Duration::from_secs(3))
            .is_some()
    );
    // Every credential had its turn.
    cm.wait_first_pass(Duration::from_secs(5));
    for name in ["scitokens", "box_x", "igwn_", "mine_a", "bad name"] {
        assert!(
            !credd.use_path(USER, name).exists(),
            "{name}.use must not exist"
        );
    }
    let log = cm.log_text();
    assert!(log.contains("must not end in '_'"), "{log}");
    assert!(log.contains("invalid credential name"), "{log}");
    drop(cm);

    // With CREDMON_ALLOW_SPECIAL_CHAR_NAMES the provider is the whole stem.
    let credd2 = Credd::new(&env.path().join("oauth2"));
    credd2.store(USER, "igwn_robot", &t);
    credd2.store(USER, "igwn", &t);
    let cm = Credmon::start(
        &env,
        &credd2,
        &[
            ("VAULT_CREDMON_PROVIDER_NAMES", "igwn_robot"),
            ("CREDMON_ALLOW_SPECIAL_CHAR_NAMES", "True"),
        ],
    );
    assert!(
        credd2
            .wait_for_use(USER, "igwn_robot", Duration::from_secs(3))
            .is_some(),
        "log:\n{}",
        cm.log_text()
    );
    cm.wait_first_pass(Duration::from_secs(5));
    assert!(!credd2.use_path(USER, "igwn").exists());
}

#[test]
fn invalid_provider_names_exit_99() {
    let (env, credd) = setup();
    let (mut cmd, _) = Credmon::command(
        &env,
        &credd,
        &[("VAULT_CREDMON_PROVIDER_NAMES", "igwn_robot")],
    );
    let st = cmd.status().unwrap();
    assert_eq!(st.code(), Some(99));
}

#[test]
fn symlink_and_hard_link_attacks_stay_inside_the_credential_directory() {
    let (env, credd) = setup();
    let (_, t) = top(&env, 3600);
    let outside = env.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let victim = outside.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    // 1. .use is a symlink to a root file outside.
    credd.store(USER, SVC, &t);
    std::os::unix::fs::symlink(&victim, credd.use_path(USER, SVC)).unwrap();
    // 2. A user "directory" that is a symlink to a directory outside, holding a .top.
    std::fs::write(outside.join(format!("{SVC}.top")), &t).unwrap();
    std::os::unix::fs::symlink(&outside, credd.dir.join("mallory")).unwrap();
    // 3. A .top hard-linked to a file outside.
    credd.user_dir("bob");
    let linked = outside.join("linked.top");
    std::fs::write(&linked, &t).unwrap();
    std::fs::hard_link(&linked, credd.dir.join("bob").join(format!("{SVC}.top"))).unwrap();

    let cm = Credmon::start(&env, &credd, &[]);
    cm.wait(
        "the symlinked .use was not replaced",
        Duration::from_secs(3),
        || {
            std::fs::symlink_metadata(credd.use_path(USER, SVC))
                .unwrap()
                .file_type()
                .is_file()
        },
    );
    // Every entry had its turn.
    cm.wait_first_pass(Duration::from_secs(5));
    assert_use_file(&credd, USER, SVC);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(mode(&victim), 0o644);
    assert!(
        !outside.join(format!("{SVC}.use")).exists(),
        "wrote through a symlinked dir"
    );
    assert!(!credd.dir.join("bob").join(format!("{SVC}.use")).exists());
    let log = cm.log_text();
    assert!(log.contains("several hard links"), "{log}");
    assert!(log.contains("symbolic link"), "{log}");
}

#[test]
fn malformed_and_huge_top_files_are_skipped_with_one_log_line() {
    let (env, credd) = setup();
    let (_, t) = top(&env, 3600);
    credd.store(USER, "igwn_bad", "{not json");
    credd.store(
        USER,
        "igwn_huge",
        &format!("{{\"x\":\"{}\"}}", "a".repeat(100_000)),
    );
    credd.store(USER, "igwn_nourl", r#"{"vault_token":"hvs.x"}"#);
    credd.store(USER, SVC, &t);
    let cm = Credmon::start(&env, &credd, &[("ROBOT_CREDMON_SCAN_INTERVAL", "1")]);
    assert!(
        credd
            .wait_for_use(USER, SVC, Duration::from_secs(3))
            .is_some()
    );
    // Said once: not again in a later pass.
    cm.wait_next_pass(Duration::from_secs(5));
    let log = cm.log_text();
    assert_eq!(
        log.matches("igwn_bad.top: not a JSON object").count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches("igwn_huge.top: larger than").count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches("igwn_nourl.top: no vault_url").count(),
        1,
        "{log}"
    );
    for name in ["igwn_bad", "igwn_huge", "igwn_nourl"] {
        assert!(!credd.use_path(USER, name).exists());
    }
}

#[test]
fn sigterm_sigint_and_sigquit_exit_0_within_1s() {
    let (env, credd) = setup();
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGQUIT] {
        let mut cm = Credmon::start(&env, &credd, &[]);
        cm.wait_first_pass(Duration::from_secs(5));
        let (code, took) = cm.stop_with(sig, Duration::from_secs(1));
        assert_eq!(code, Some(0), "{sig} exit; log:\n{}", cm.log_text());
        assert!(took < Duration::from_secs(1), "{sig}: {took:?}");
        assert!(
            !credd.dir.join("pid").exists(),
            "{sig}: the pid file must go on a clean exit"
        );
    }
    // Killed: the pid stays (nothing can remove it), and the next credmon replaces it.
    let cm = Credmon::start(&env, &credd, &[]);
    let old = cm.pid();
    drop(cm);
    assert_eq!(credd.pid(), Some(old));
    let cm = Credmon::start(&env, &credd, &[]);
    assert_eq!(credd.pid(), Some(cm.pid()));
}

#[test]
fn one_credmon_per_credential_directory() {
    let (env, credd) = setup();
    let mut first = Credmon::start(&env, &credd, &[]);
    // A second one waits for the first (as after condor_restart) and takes
    // over once it has exited.
    let (cmd, log) = Credmon::command(&env, &credd, &[]);
    let mut second = Credmon::spawn_only(cmd, log, &credd);
    // The log (both write it) says the second is waiting for the first's lock.
    let waiting = format!("waiting for the other credmon (pid {})", first.pid());
    first.wait("the second does not wait", Duration::from_secs(5), || {
        first.log_text().contains(&waiting)
    });
    assert!(
        second.child.try_wait().unwrap().is_none(),
        "the second must wait"
    );
    assert_eq!(
        credd.pid(),
        Some(first.pid()),
        "the second must not touch pid"
    );
    assert_eq!(
        first.stop_with(Signal::SIGTERM, Duration::from_secs(2)).0,
        Some(0)
    );
    second.wait(
        "the second did not take over",
        Duration::from_secs(5),
        || credd.pid() == Some(second.pid()),
    );
}

/// condor_config_val can take seconds (it did in the real pool): a new
/// credential's SIGHUP is served while the configuration is being re-read.
#[test]
fn a_slow_configuration_read_does_not_delay_new_credentials() {
    let (env, credd) = setup();
    let bin = env.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let conf = env.path().join("condor_config");
    std::fs::write(
        &conf,
        format!("SEC_CREDENTIAL_DIRECTORY_OAUTH = {}\n", credd.dir.display()),
    )
    .unwrap();
    let script = bin.join("condor_config_val");
    let slow = env.path().join("slow");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ -e '{}' ] && sleep 3\nc='{}'\n[ \"$1\" = -config ] && exec printf '\\t%s\\n' \"$c\"\n[ \"$1\" = -dump ] && exec cat \"$c\"\nexit 1\n",
            slow.display(),
            conf.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (mut cmd, log) = Credmon::command(&env, &credd, &[]);
    cmd.env_remove("_CONDOR_SEC_CREDENTIAL_DIRECTORY_OAUTH")
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()));
    let cm = Credmon::spawn_only(cmd, log, &credd);
    assert!(Credd::wait_for_file(
        &credd.dir.join("CREDMON_COMPLETE"),
        Duration::from_secs(3)
    ));
    std::fs::write(&slow, "").unwrap();
    // condor_reconfig: a 3 s read starts (the SIGHUP's quick look, logged
    // just before the reader thread starts) ...
    let hups = || cm.log_text().matches("SIGHUP: ").count();
    let seen = hups();
    cm.signal(Signal::SIGHUP);
    cm.wait("the SIGHUP was not handled", Duration::from_secs(2), || {
        hups() > seen
    });
    // ... and the credd stores a credential meanwhile.
    let (_, t) = top(&env, 3600);
    let t0 = Instant::now();
    credd.store_and_kick(USER, SVC, &t);
    assert!(
        credd
            .wait_for_use(USER, SVC, Duration::from_secs(1))
            .is_some(),
        "the new credential waited for the configuration read; log:\n{}",
        cm.log_text()
    );
    assert!(t0.elapsed() < Duration::from_secs(1));
}

#[test]
fn sighup_heals_a_credential_skipped_under_a_wrong_setting() {
    let (env, credd) = setup();
    let bin = env.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let conf = env.path().join("condor_config");
    let write_conf = |trusted: &str| {
        std::fs::write(
            &conf,
            format!(
                "SEC_CREDENTIAL_DIRECTORY_OAUTH = {}\nTRUSTED_VAULT_HOSTS = {trusted}\n",
                credd.dir.display()
            ),
        )
        .unwrap();
    };
    write_conf("vault.example.org");
    let script = bin.join("condor_config_val");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nc='{}'\n[ \"$1\" = -config ] && exec printf '\\t%s\\n' \"$c\"\n[ \"$1\" = -dump ] && exec cat \"$c\"\nexit 1\n",
            conf.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (_, t) = top(&env, 3600);
    credd.store(USER, SVC, &t);
    let (mut cmd, log) = Credmon::command(&env, &credd, &[]);
    cmd.env_remove("_CONDOR_SEC_CREDENTIAL_DIRECTORY_OAUTH")
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()));
    let cm = Credmon::spawn_only(cmd, log, &credd);
    assert!(
        cm.wait_log("not in TRUSTED_VAULT_HOSTS", Duration::from_secs(3)),
        "{}",
        cm.log_text()
    );
    // The credd's form, host:port as in the vault_url: the next SIGHUP
    // (condor_reconfig) heals it at once, not after the hourly retry.
    write_conf(&format!(
        "vault.example.org, localhost:{}",
        env.vault.port()
    ));
    let t0 = Instant::now();
    cm.signal(Signal::SIGHUP);
    assert!(
        credd
            .wait_for_use(USER, SVC, Duration::from_secs(2))
            .is_some(),
        "not healed after SIGHUP; log:\n{}",
        cm.log_text()
    );
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[test]
fn sighup_is_harmless_and_rescans() {
    let (env, credd) = setup();
    let cm = Credmon::start(&env, &credd, &[]);
    for _ in 0..5 {
        cm.signal(Signal::SIGHUP);
    }
    let (_, t) = top(&env, 3600);
    credd.store_and_kick("carol", SVC, &t);
    assert!(
        credd
            .wait_for_use("carol", SVC, Duration::from_secs(1))
            .is_some()
    );
    let mut cm = cm;
    assert!(
        cm.child.try_wait().unwrap().is_none(),
        "SIGHUP must not stop it"
    );
}

#[test]
fn a_crash_mid_write_leaves_no_partial_use_and_temps_are_cleaned() {
    let (env, credd) = setup();
    let (_, t) = top(&env, 3600);
    for i in 0..200 {
        credd.store(&format!("u{i}"), SVC, &t);
    }
    // A leftover temporary file of ours from an earlier crash.
    let stale = credd
        .user_dir("u0")
        .join(format!(".{SVC}.use.robot-credmon-tmp.0123456789abcdef"));
    std::fs::write(&stale, "partial").unwrap();
    let mut cm = Credmon::start(&env, &credd, &[]);
    // Killed while it writes: after its first write, with most still to do.
    cm.wait("no refresh", Duration::from_secs(5), || {
        cm.log_text().contains("refreshed u")
    });
    cm.signal(Signal::SIGKILL);
    let _ = cm.child.wait();
    assert!(!stale.exists(), "stale temp file not removed at start");
    let mut done = 0;
    for i in 0..200 {
        if let Some(text) = credd.read_use(&format!("u{i}"), SVC) {
            assert!(
                text.ends_with('\n') && text.trim().split('.').count() == 3,
                "partial .use"
            );
            done += 1;
        }
    }
    // A restart finishes the job and removes whatever temp files the kill left.
    let cm2 = Credmon::start(&env, &credd, &[]);
    for i in 0..200 {
        assert!(
            credd
                .wait_for_use(&format!("u{i}"), SVC, Duration::from_secs(10))
                .is_some(),
            "u{i}; log:\n{}",
            cm2.log_text()
        );
    }
    cm2.wait_first_pass(Duration::from_secs(10));
    for i in 0..200 {
        for e in std::fs::read_dir(credd.dir.join(format!("u{i}"))).unwrap() {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!n.contains("robot-credmon-tmp"), "leftover {n}");
        }
    }
    let _ = done;
}

#[test]
fn pid_and_credmon_complete_protocol() {
    let (env, credd) = setup();
    let (_, t) = top(&env, 3600);
    credd.store(USER, SVC, &t);
    let complete = credd.dir.join("CREDMON_COMPLETE");
    std::fs::write(&complete, "").unwrap();
    let before = Credd::mtime(&complete).unwrap();
    let cm = Credmon::start(&env, &credd, &[("ROBOT_CREDMON_SCAN_INTERVAL", "1")]);
    assert_eq!(credd.pid(), Some(cm.pid()));
    let pid_file = credd.dir.join("pid");
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        cm.pid().to_string()
    );
    assert_eq!(
        mode(&pid_file) & 0o040,
        0o040,
        "pid readable by the condor group"
    );
    // Touched after the first pass, with the .use in place.
    cm.wait("no CREDMON_COMPLETE", Duration::from_secs(3), || {
        Credd::mtime(&complete).is_some_and(|m| m > before)
    });
    assert!(
        credd.use_path(USER, SVC).exists(),
        "complete before the .use"
    );
    // Removed and touched again around the next pass.
    let first = Credd::mtime(&complete).unwrap();
    cm.wait("no second pass", Duration::from_secs(3), || {
        Credd::mtime(&complete).is_some_and(|m| m > first)
    });
    // The cred dir must not be open to others.
    let bad = Credd::new(&env.path().join("open"));
    std::fs::set_permissions(&bad.dir, std::fs::Permissions::from_mode(0o2777)).unwrap();
    let (mut cmd, _) = Credmon::command(&env, &bad, &[]);
    let st = cmd.status().unwrap();
    assert_eq!(st.code(), Some(1));
    assert!(!bad.dir.join("pid").exists());
}

#[test]
fn log_that_cannot_be_opened_exits_44_and_check_config_and_once() {
    let (env, credd) = setup();
    let (mut cmd, _) = Credmon::command(&env, &credd, &[]);
    cmd.env("_CONDOR_CREDMON_OAUTH_LOG", "/nonexistent/dir/log");
    assert_eq!(cmd.status().unwrap().code(), Some(44));

    let (mut cmd, _) = Credmon::command(&env, &credd, &[("CREDMON_OAUTH_TOKEN_MINIMUM", "1000")]);
    let out = cmd
        .arg("--check-config")
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("CREDMON_OAUTH_TOKEN_MINIMUM = 1000"),
        "{text}"
    );
    assert!(text.contains("CREDMON_OAUTH_TOKEN_REFRESH = 500"), "{text}");

    let (_, t) = top(&env, 3600);
    credd.store(USER, SVC, &t);
    let (mut cmd, _) = Credmon::command(&env, &credd, &[]);
    assert_eq!(cmd.arg("--once").status().unwrap().code(), Some(0));
    assert_use_file(&credd, USER, SVC);
    // --once is a pass of the daemon's own: it ends with CREDMON_COMPLETE.
    assert!(credd.dir.join("CREDMON_COMPLETE").is_file());
    credd.store(USER, "igwn_broken", "{");
    let (mut cmd, _) = Credmon::command(&env, &credd, &[]);
    assert_eq!(cmd.arg("--once").status().unwrap().code(), Some(1));
}

#[test]
fn config_is_reread_on_sighup_through_condor_config_val() {
    let (env, credd) = setup();
    let bin = env.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let conf = env.path().join("condor_config");
    let write_conf = |providers: &str| {
        std::fs::write(
            &conf,
            format!(
                "# fake\nSEC_CREDENTIAL_DIRECTORY_OAUTH = {}\nVAULT_CREDMON_PROVIDER_NAMES = {providers}\n",
                credd.dir.display()
            ),
        )
        .unwrap();
    };
    write_conf("dune");
    let script = bin.join("condor_config_val");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nc='{}'\n[ \"$1\" = -config ] && exec printf '\\t%s\\n' \"$c\"\n[ \"$1\" = -dump ] && exec cat \"$c\"\nexit 1\n",
            conf.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (_, t) = top(&env, 3600);
    credd.store(USER, SVC, &t);
    let (mut cmd, log) = Credmon::command(&env, &credd, &[]);
    cmd.env_remove("_CONDOR_SEC_CREDENTIAL_DIRECTORY_OAUTH")
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()));
    let cm = Credmon::spawn_only(cmd, log, &credd);
    assert!(Credd::wait_for_file(
        &credd.dir.join("CREDMON_COMPLETE"),
        Duration::from_secs(3)
    ));
    assert!(
        !credd.use_path(USER, SVC).exists(),
        "igwn is not listed yet"
    );
    write_conf("igwn");
    cm.signal(Signal::SIGHUP);
    assert!(
        credd
            .wait_for_use(USER, SVC, Duration::from_secs(2))
            .is_some(),
        "config not re-read; log:\n{}",
        cm.log_text()
    );
}

#[test]
fn keytab_robots_are_provisioned_before_any_submit() {
    let (env, credd) = setup();
    let kdir = env.path().join("robot-keytabs");
    std::fs::create_dir(&kdir).unwrap();
    let kt = kdir.join("robot.keytab");
    std::fs::copy(env.robot_keytab(), &kt).unwrap();
    std::fs::set_permissions(&kt, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cm = Credmon::start(
        &env,
        &credd,
        &[
            ("ROBOT_CREDMON_KEYTAB_DIR", kdir.to_str().unwrap()),
            ("ROBOT_CREDMON_PROVISION", SVC),
            (
                "ROBOT_CREDMON_VAULT_SERVER",
                &format!("localhost:{}", env.vault.port()),
            ),
        ],
    );
    assert!(
        credd
            .wait_for_use("robot", SVC, Duration::from_secs(5))
            .is_some(),
        "no provisioned .use; log:\n{}",
        cm.log_text()
    );
    assert_use_file(&credd, "robot", SVC);
    let top_path = credd.top_path("robot", SVC);
    assert_eq!(mode(&top_path), 0o600);
    // Like the credd's: setgid, owner only.
    assert_eq!(mode(top_path.parent().unwrap()), 0o2700);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&top_path).unwrap()).unwrap();
    assert_eq!(json["vault_url"], env.creds_url());
}

#[test]
fn a_new_credential_does_not_wait_behind_a_full_pass() {
    let (env, credd) = setup();
    let (_, t) = top(&env, 3600);
    for i in 0..100 {
        credd.store(&format!("u{i}"), SVC, &t);
    }
    // Every read takes 100 ms: the pass of 100 credentials takes > 1 s with 8 in flight.
    env.vault
        .inject(Fault::delay("/v1/secret/oauth/creds/", Duration::from_millis(100)).permanent());
    let cm = Credmon::start(&env, &credd, &[]);
    // The pass is under way: its first requests are out.
    assert!(
        cm.wait_log("refreshing u", Duration::from_secs(5)),
        "{}",
        cm.log_text()
    );
    credd.store_and_kick("newcomer", SVC, &t);
    let took = credd.wait_for_use("newcomer", SVC, Duration::from_secs(1));
    assert!(
        took.is_some(),
        "waited behind the pass; log:\n{}",
        cm.log_text()
    );
    let pending = (0..100)
        .filter(|i| !credd.use_path(&format!("u{i}"), SVC).exists())
        .count();
    assert!(
        pending > 0,
        "the pass was already over: test proves nothing"
    );
    env.vault.clear_faults();
}

/// The next datagram on `sock` before `deadline`, if any.
fn next_notification(sock: &UnixDatagram, deadline: Instant) -> Option<String> {
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match sock.recv(&mut buf) {
            Ok(n) => return Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("notify socket: {e}"),
        }
    }
    None
}

#[test]
fn systemd_notify_ready_after_the_first_pass_watchdog_while_idle_stopping_on_sigterm() {
    let (env, credd) = setup();
    let (_, t) = top(&env, 3600);
    credd.store(USER, SVC, &t);
    let sock_path = env.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let (mut cmd, log) = Credmon::command(&env, &credd, &[]);
    // 300 ms: WATCHDOG=1 every 150 ms; the scan interval (60 s) alone would sleep far longer.
    cmd.env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "300000");
    let mut cm = Credmon::spawn(cmd, log, &credd);
    let complete = credd.dir.join("CREDMON_COMPLETE");

    // READY=1 comes once the first pass is complete, with a status line.
    let deadline = Instant::now() + Duration::from_secs(5);
    let ready = loop {
        let msg = next_notification(&sock, deadline)
            .unwrap_or_else(|| panic!("no READY=1 within 5 s; log:\n{}", cm.log_text()));
        if msg.lines().any(|l| l == "READY=1") {
            break msg;
        }
        assert!(!msg.contains("STOPPING=1"), "{msg}");
    };
    assert!(complete.exists(), "READY=1 before CREDMON_COMPLETE");
    assert!(
        credd.use_path(USER, SVC).exists(),
        "READY=1 before the .use"
    );
    assert!(
        ready.contains("STATUS=1 credential(s) (1 fresh); last pass: 1 refreshed"),
        "{ready}"
    );

    // Idle: WATCHDOG=1 keeps coming, about every 150 ms, without flooding.
    let t0 = Instant::now();
    let window = Duration::from_millis(1500);
    let mut pings = Vec::new();
    while let Some(msg) = next_notification(&sock, t0 + window) {
        assert!(!msg.contains("READY=1"), "READY=1 twice: {msg}");
        if msg == "WATCHDOG=1\n" {
            pings.push(Instant::now());
        }
    }
    assert!(
        (5..=15).contains(&pings.len()),
        "{} WATCHDOG=1 in {window:?}; log:\n{}",
        pings.len(),
        cm.log_text()
    );
    let longest = pings
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    assert!(longest < Duration::from_secs(1), "gap of {longest:?}");

    // SIGTERM: STOPPING=1, exit 0.
    let (code, _) = cm.stop_with(Signal::SIGTERM, Duration::from_secs(2));
    assert_eq!(code, Some(0), "log:\n{}", cm.log_text());
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut stopping = false;
    while let Some(msg) = next_notification(&sock, deadline) {
        if msg.lines().any(|l| l == "STOPPING=1") {
            stopping = true;
            break;
        }
    }
    assert!(stopping, "no STOPPING=1; log:\n{}", cm.log_text());
}

/// The value of the sample `name{labels}` in `samples`.
fn sample(samples: &[metrics::Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels.iter().all(|(k, v)| s.label(k) == Some(*v))
        })
        .map(|s| s.value)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64
}

fn read_metrics(path: &Path) -> (String, Vec<metrics::Sample>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let samples = metrics::parse(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    (text, samples)
}

#[test]
fn metrics_file_after_each_pass_on_exit_and_with_once() {
    use metrics::credmon_names::*;
    let (env, credd) = setup();
    let (good_token, t) = top(&env, 3600);
    credd.store(USER, SVC, &t);
    // bob's credential goes through the STS path, which fails with 500.
    let bad_token = env.provision_token(3600);
    let sts = env.creds_url().replace("/creds/", "/sts/");
    credd.store("bob", SVC, &Credd::vault_top(Some(&bad_token), &sts));
    env.vault.inject(
        Fault::status(
            "/v1/secret/oauth/sts/",
            500,
            r#"{"errors":["internal error"]}"#,
        )
        .permanent(),
    );
    let prom_dir = env.path().join("node-exporter");
    std::fs::create_dir(&prom_dir).unwrap();
    let prom = prom_dir.join("robot-credmon-credmon.prom");
    let started = unix_now();
    let (mut cmd, log) = Credmon::command(&env, &credd, &[]);
    cmd.arg("--metrics-file").arg(&prom);
    let mut cm = Credmon::spawn(cmd, log, &credd);
    assert!(
        Credd::wait_for_file(&prom, Duration::from_secs(5)),
        "no metrics file after the first pass; log:\n{}",
        cm.log_text()
    );
    assert!(credd.dir.join("CREDMON_COMPLETE").exists());
    let (text, s) = read_metrics(&prom);
    let use_text = credd.read_use(USER, SVC).unwrap();
    let exp = {
        use base64::Engine;
        let payload = use_text.trim().split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        claims["exp"].as_i64().unwrap() as f64
    };
    let last_success = sample(&s, LAST_SUCCESS, &[]).expect(&text);
    assert!(
        (started - 1.0..=unix_now() + 1.0).contains(&last_success),
        "{text}"
    );
    assert!(sample(&s, LAST_PASS, &[]).expect(&text) >= last_success);
    assert_eq!(sample(&s, SOONEST_EXPIRY, &[]), Some(exp), "{text}");
    assert_eq!(sample(&s, CONSECUTIVE_FAILURES, &[]), Some(1.0), "{text}");
    assert_eq!(
        sample(&s, REFRESHES, &[("cause", "missing")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&s, FAILURES, &[("cause", "vault")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&s, CREDENTIALS, &[("state", "fresh")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&s, CREDENTIALS, &[("state", "failing")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&s, &format!("{REFRESH_DURATION}_count"), &[]),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&s, &format!("{REFRESH_DURATION}_bucket"), &[("le", "+Inf")]),
        Some(2.0),
        "{text}"
    );
    let no_tokens = |text: &str| {
        for secret in [good_token.as_str(), bad_token.as_str(), use_text.trim()]
            .into_iter()
            .chain(use_text.trim().split('.'))
        {
            assert!(!text.contains(secret), "a token in the metrics:\n{text}");
        }
    };
    no_tokens(&text);
    assert_eq!(
        std::fs::metadata(&prom).unwrap().mode() & 0o777,
        0o644,
        "readable by the collector"
    );

    // bob is retried with backoff (base 1 s) between passes; the exit writes the counts.
    cm.wait("no retry", Duration::from_secs(5), || {
        cm.log_text()
            .matches("failed to refresh bob/igwn_robot")
            .count()
            >= 2
    });
    // The failure is counted when its job ends, just after it is logged: the
    // SIGTERM's drain waits for that job before the exit writes the metrics.
    let (code, _) = cm.stop_with(Signal::SIGTERM, Duration::from_secs(2));
    assert_eq!(code, Some(0));
    let (text, s) = read_metrics(&prom);
    let failures = sample(&s, FAILURES, &[("cause", "vault")]).expect(&text);
    assert!(failures >= 2.0, "not written on exit:\n{text}");
    assert_eq!(
        sample(&s, REFRESHES, &[("cause", "missing")]),
        Some(1.0),
        "{text}"
    );
    no_tokens(&text);
    let leftovers: Vec<_> = std::fs::read_dir(&prom_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");

    // --once, with the file from the ROBOT_CREDMON_METRICS_FILE knob: alice is
    // fresh (nothing to do), bob fails again.
    let once_prom = prom_dir.join("once.prom");
    let (mut cmd, _) = Credmon::command(
        &env,
        &credd,
        &[("ROBOT_CREDMON_METRICS_FILE", once_prom.to_str().unwrap())],
    );
    assert_eq!(cmd.arg("--once").status().unwrap().code(), Some(1));
    let (text, s) = read_metrics(&once_prom);
    assert_eq!(
        sample(&s, REFRESHES, &[("cause", "missing")]),
        None,
        "{text}"
    );
    assert_eq!(
        sample(&s, FAILURES, &[("cause", "vault")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&s, CREDENTIALS, &[("state", "fresh")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&s, CREDENTIALS, &[("state", "failing")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&s, SOONEST_EXPIRY, &[]), Some(exp), "{text}");
    assert!(sample(&s, LAST_PASS, &[]).is_some(), "{text}");
    no_tokens(&text);
    env.vault.clear_faults();
}

#[test]
fn an_expired_token_from_vault_never_replaces_a_use() {
    let (env, credd) = setup();
    let (_, t) = top(&env, 3600);
    credd.store(USER, SVC, &t);
    let cm = Credmon::start(
        &env,
        &credd,
        &[
            ("CREDMON_OAUTH_TOKEN_REFRESH", "1"),
            ("ROBOT_CREDMON_SCAN_INTERVAL", "1"),
        ],
    );
    assert!(
        credd
            .wait_for_use(USER, SVC, Duration::from_secs(3))
            .is_some()
    );
    let good = credd.read_use(USER, SVC).unwrap();
    let expired = crate::cmd::unsigned_jwt(&serde_json::json!({
        "sub": "x", "exp": crate::cmd::now() - 3600, "iat": crate::cmd::now() - 14400
    }));
    env.vault
        .inject(Fault::access_token("/v1/secret/oauth/creds/", &expired).permanent());
    assert!(
        cm.wait_log("cannot be used: it expired", Duration::from_secs(10)),
        "log:\n{}",
        cm.log_text()
    );
    assert_eq!(
        credd.read_use(USER, SVC).unwrap(),
        good,
        "the old .use stays"
    );
    assert!(!cm.log_text().contains(&expired));
}

#[test]
fn a_top_not_owned_by_root_is_never_trusted() {
    let (env, credd) = setup();
    let (token, t) = top(&env, 3600);
    credd.store(USER, SVC, &t);
    std::os::unix::fs::chown(credd.top_path(USER, SVC), Some(65534), Some(65534)).unwrap();
    let cm = Credmon::start(&env, &credd, &[("ROBOT_CREDMON_SCAN_INTERVAL", "1")]);
    assert!(
        cm.wait_log("refusing to trust it", Duration::from_secs(5)),
        "log:\n{}",
        cm.log_text()
    );
    assert!(
        credd.read_use(USER, SVC).is_none(),
        "a .use from a planted .top"
    );
    assert!(
        env.vault
            .requests()
            .iter()
            .all(|r| r.vault_token.as_deref() != Some(token.as_str())),
        "the planted Vault token was sent"
    );
}

#[test]
fn a_failed_new_credential_is_retried_after_its_backoff_not_at_the_next_pass() {
    let (env, credd) = setup();
    let cm = Credmon::start(
        &env,
        &credd,
        &[
            ("ROBOT_CREDMON_BACKOFF_BASE", "2"),
            ("ROBOT_CREDMON_SCAN_INTERVAL", "60"),
        ],
    );
    assert!(Credd::wait_for_file(
        &credd.dir.join("CREDMON_COMPLETE"),
        Duration::from_secs(5)
    ));
    // Two 500s (this credential's trouble, not the server's): the first try
    // and the first retry fail.
    env.vault.inject(
        Fault::status(
            "/v1/secret/oauth/creds/",
            500,
            r#"{"errors":["1 error occurred: refresh failed"]}"#,
        )
        .times(2),
    );
    let (_, t) = top(&env, 3600);
    let t0 = Instant::now();
    credd.store_and_kick(USER, SVC, &t);
    let took = credd
        .wait_for_use(USER, SVC, Duration::from_secs(15))
        .unwrap_or_else(|| panic!("no .use within 15 s; log:\n{}", cm.log_text()));
    let total = t0.elapsed();
    assert_eq!(
        env.vault.count_status("/v1/secret/oauth/creds/", 500),
        2,
        "{}",
        cm.log_text()
    );
    // Backoff of 2 s base, half jitter: 1-2 s, then 2-4 s. Not sooner, and not at the next 60 s pass.
    assert!(
        total >= Duration::from_millis(2900),
        "retried too early: {total:?}"
    );
    assert!(
        took <= Duration::from_secs(8),
        "waited for the next pass: {took:?}"
    );
}

#[test]
fn sigterm_drains_requests_in_flight_and_leaves_no_partial_file() {
    let (env, credd) = setup();
    let (_, t) = top(&env, 3600);
    for i in 0..4 {
        credd.store(&format!("u{i}"), SVC, &t);
    }
    // Short requests finish during the drain.
    env.vault
        .inject(Fault::delay("/v1/secret/oauth/creds/", Duration::from_millis(300)).permanent());
    let mut cm = Credmon::start(&env, &credd, &[]);
    // All four requests have reached Vault (each met the delay): none is
    // still to be taken when the SIGTERM stops handing out jobs.
    cm.wait("not all four requests sent", Duration::from_secs(5), || {
        env.vault.faults_fired() >= 4
    });
    let (code, took) = cm.stop_with(Signal::SIGTERM, Duration::from_secs(2));
    assert_eq!(code, Some(0), "{}", cm.log_text());
    assert!(took < Duration::from_secs(1), "{took:?}");
    let log = cm.log_text();
    assert!(!log.contains("abandoned"), "{log}");
    for i in 0..4 {
        assert!(
            credd.use_path(&format!("u{i}"), SVC).exists(),
            "u{i}: the request in flight was not finished; log:\n{log}"
        );
        assert_use_file(&credd, &format!("u{i}"), SVC);
    }
    assert!(credd.pid().is_none(), "pid file left behind");
    // Requests that cannot finish in time are abandoned: exit 0 within 1 s, no partial file.
    env.vault.clear_faults();
    env.vault
        .inject(Fault::delay("/v1/secret/oauth/creds/", Duration::from_secs(5)).permanent());
    credd.store("slow", SVC, &t);
    let mut cm = Credmon::start(&env, &credd, &[]);
    assert!(
        cm.wait_log("refreshing slow", Duration::from_secs(5)),
        "{}",
        cm.log_text()
    );
    let (code, took) = cm.stop_with(Signal::SIGTERM, Duration::from_secs(2));
    assert_eq!(code, Some(0), "{}", cm.log_text());
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(cm.log_text().contains("abandoned"), "{}", cm.log_text());
    assert!(!credd.use_path("slow", SVC).exists());
    for entry in std::fs::read_dir(credd.user_dir("slow")).unwrap() {
        let n = entry.unwrap().file_name().into_string().unwrap();
        assert!(!n.contains("robot-credmon-tmp"), "leftover {n}");
    }
    env.vault.clear_faults();
}

/// Vault answers 503: the first credential to meet it marks the server
/// failing; from then on one request at a time goes to it: a probe on the
/// server's backoff, or a new credential whose submitter waits (the credd's
/// SIGHUP), which goes out at once when no probe is out, so that it is
/// served as soon as Vault answers again. Each new credential asks at most
/// once while it fails; the server's first answer after the outage releases
/// all of them at once, well before any credential's own backoff (two
/// minutes here) would. (Routine credentials falling due wait without
/// asking at all: `examples/bench_outage.rs`, docs/performance.md.)
#[test]
fn an_outage_holds_credentials_until_the_servers_first_answer() {
    const CREDS: &str = "/v1/secret/oauth/creds/";
    const N: usize = 30;
    let (env, credd) = setup();
    let cm = Credmon::start(&env, &credd, &[("ROBOT_CREDMON_BACKOFF_BASE", "120")]);
    assert!(Credd::wait_for_file(
        &credd.dir.join("CREDMON_COMPLETE"),
        Duration::from_secs(5)
    ));
    env.vault
        .inject(Fault::status(CREDS, 503, r#"{"errors":["Vault is sealed"]}"#).permanent());
    let outage = Instant::now();
    let (_, t) = top(&env, 3600);
    credd.store_and_kick("first", SVC, &t);
    assert!(
        cm.wait_log(
            "its credentials wait for the server",
            Duration::from_secs(5)
        ),
        "{}",
        cm.log_text()
    );
    let users: Vec<String> = (0..N).map(|i| format!("user{i}")).collect();
    for u in &users {
        let (_, t) = top(&env, 3600);
        credd.store_and_kick(u, SVC, &t);
    }
    // Every new credential met the outage (asked once, or waited for the
    // probe out at the time).
    let met = || {
        let log = cm.log_text();
        users
            .iter()
            .filter(|u| {
                log.contains(&format!("{u}/{SVC}: Vault at"))
                    || log.contains(&format!("refreshing {u}/{SVC}"))
            })
            .count()
    };
    assert!(
        wait::until(Duration::from_secs(10), || met() >= N),
        "{} of {N} new credentials were tried; log:\n{}",
        met(),
        cm.log_text()
    );
    // Let a probe fail (an event, not a pause: the count moves); every
    // failure so far lengthened the server's backoff, now at its 15 s cap.
    let before = env.vault.count_status(CREDS, 503);
    assert!(wait::until(Duration::from_secs(20), || env
        .vault
        .count_status(CREDS, 503)
        > before));
    env.vault.clear_faults();
    let down = outage.elapsed();
    let back = Instant::now();
    for u in users.iter().chain([&"first".to_owned()]) {
        assert!(
            credd
                .wait_for_use(u, SVC, Duration::from_secs(30))
                .is_some(),
            "{u} got no .use after the outage; log:\n{}",
            cm.log_text()
        );
    }
    let recovered = back.elapsed();
    assert!(
        recovered <= Duration::from_secs(17),
        "the backlog waited {recovered:?} after Vault was back (probes are at most 15 s apart)"
    );
    // During the outage: the first credential's try, each new credential at
    // most once, and probes at most one per second (the first probe
    // interval).
    let failed = env.vault.count_status(CREDS, 503);
    let probes_max = 1 + down.as_secs() as usize + 1;
    assert!(
        failed <= N + probes_max,
        "{failed} requests during a {down:?} outage for {} credentials; log:\n{}",
        N + 1,
        cm.log_text()
    );
}

/// `robot-credmon status` on a credential directory, as JSON.
fn status_json(credd: &Credd) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_robot-credmon"))
        .args(["status", "--json", "-c"])
        .arg(&credd.dir)
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn row<'a>(v: &'a serde_json::Value, user: &str) -> &'a serde_json::Value {
    v["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["user"] == user)
        .unwrap_or_else(|| panic!("no row for {user}: {v}"))
}

/// Waits (bounded) until `status` shows `user` in `state`; returns that view.
fn wait_state(credd: &Credd, user: &str, state: &str, limit: Duration) -> serde_json::Value {
    let mut v = serde_json::Value::Null;
    let mut looked: Option<Instant> = None;
    let found = wait::until(limit, || {
        // A run of `status` is a process: one every 50 ms at most.
        if looked.is_some_and(|t| t.elapsed() < Duration::from_millis(50)) {
            return false;
        }
        looked = Some(Instant::now());
        v = status_json(credd);
        v["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["user"] == user && r["state"] == state)
    });
    assert!(found, "{user} not {state} within {limit:?}: {v}");
    v
}

#[test]
fn status_and_needs_a_person_from_the_state_file_also_while_the_credmon_is_down() {
    use metrics::credmon_names::*;
    let (env, credd) = setup();
    let (good_token, t) = top(&env, 3600);
    credd.store(USER, SVC, &t);
    // bob: Vault holds no credential for his credkey (no first login yet).
    let bob_token = env.vault.provision_token("igwn", "robot", "bob", 3600);
    let bob_url = env.vault.creds_url("igwn", "bob", "robot");
    credd.store("bob", SVC, &Credd::vault_top(Some(&bob_token), &bob_url));
    // carol: the issuer refuses the refresh token Vault holds (lost in a restart).
    env.vault.add_credential("igwn", "carol", "robot");
    assert!(env.vault.revoke_refresh_token("igwn", "carol", "robot"));
    let carol_token = env.vault.provision_token("igwn", "robot", "carol", 3600);
    let carol_url = env.vault.creds_url("igwn", "carol", "robot");
    credd.store(
        "carol",
        SVC,
        &Credd::vault_top(Some(&carol_token), &carol_url),
    );
    let prom = env.path().join("credmon.prom");
    // A pass every second: the metrics file is rewritten after each.
    let (mut cmd, log) = Credmon::command(
        &env,
        &credd,
        &[
            ("ROBOT_CREDMON_STATE_INTERVAL", "1"),
            ("ROBOT_CREDMON_SCAN_INTERVAL", "1"),
        ],
    );
    cmd.arg("--metrics-file").arg(&prom);
    let mut cm = Credmon::spawn(cmd, log, &credd);
    wait_state(&credd, "carol", "needs_login", Duration::from_secs(10));
    wait_state(&credd, "bob", "needs_login", Duration::from_secs(10));
    let v = wait_state(&credd, USER, "fresh", Duration::from_secs(10));
    assert_eq!(v["credmon"]["running"], true, "{v}");
    assert_eq!(v["credmon"]["pid"], cm.pid(), "{v}");
    let states: Vec<(&str, &str)> = v["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["user"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("bob", "needs_login"),
            ("carol", "needs_login"),
            (USER, "fresh")
        ],
        "{v}"
    );
    let bob = row(&v, "bob");
    let command = format!(
        "as bob, run on a terminal: htgettoken -a localhost:{} -i igwn -r robot --credkey bob",
        env.vault.port()
    );
    let err = bob["last_error"].as_str().unwrap();
    assert!(
        err.contains("holds no credential for credkey 'bob'") && err.ends_with(&command),
        "{err}"
    );
    assert_eq!(bob["needs_login"], true);
    assert!(bob["next_due"].as_i64().is_some(), "{v}");
    assert!(
        row(&v, "carol")["last_error"]
            .as_str()
            .unwrap()
            .contains("the issuer refused the refresh token"),
        "{v}"
    );
    let alice = row(&v, USER);
    assert!(
        alice["use_expires"].as_i64().unwrap() > crate::cmd::now() + 600,
        "{v}"
    );
    assert!(
        alice["next_due"].as_i64().unwrap() > crate::cmd::now(),
        "{v}"
    );
    assert_eq!(alice["last_error"], serde_json::Value::Null);
    // The state file: root's, 0644, no token in it.
    let state_path = credd.dir.join(".robot-credmon-state.json");
    let meta = std::fs::symlink_metadata(&state_path).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o644));
    let text = std::fs::read_to_string(&state_path).unwrap();
    for secret in [&good_token, &bob_token, &carol_token] {
        assert!(
            !text.contains(secret.as_str()),
            "a Vault token in the state file"
        );
    }
    assert!(!text.contains("eyJ"), "a JWT in the state file: {text}");
    // Retried with backoff (base 1 s), but said once per credential.
    assert!(
        env.vault.wait_for_count(
            "GET",
            "/v1/secret/oauth/creds/igwn/bob:robot",
            3,
            Duration::from_secs(15)
        ),
        "bob was not retried"
    );
    assert_eq!(
        cm.log_text()
            .matches("bob/igwn_robot needs a person")
            .count(),
        1,
        "{}",
        cm.log_text()
    );
    // check --credmon is CRITICAL with the command; the metrics name both credentials.
    let out = Command::new(env!("CARGO_BIN_EXE_robot-credmon"))
        .args(["check", "--credmon"])
        .arg(&credd.dir)
        .env_clear()
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{line}");
    assert!(
        line.starts_with("CRITICAL - bob/igwn_robot needs a person: ") && line.contains(&command),
        "{line}"
    );
    // The metrics after a pass that began once both were known to need a
    // person. (Those of the pass that finds them may miss the one found
    // last: its worker tells the state tracker just after the pass can end.)
    cm.wait(
        "no metrics naming both credentials",
        Duration::from_secs(5),
        || {
            std::fs::read_to_string(&prom).is_ok_and(|t| {
                metrics::parse(&t).is_ok_and(|s| sample(&s, NEEDING_LOGIN, &[]) == Some(2.0))
            })
        },
    );
    let (ptext, s) = read_metrics(&prom);
    assert_eq!(sample(&s, NEEDING_LOGIN, &[]), Some(2.0), "{ptext}");
    assert_eq!(
        sample(&s, NEEDS_LOGIN, &[("user", "bob"), ("credential", SVC)]),
        Some(1.0),
        "{ptext}"
    );
    assert!(sample(&s, NEEDS_LOGIN, &[("user", USER), ("credential", SVC)]).is_none());
    // The text view: most urgent first.
    let out = Command::new(env!("CARGO_BIN_EXE_robot-credmon"))
        .args(["status", "-c"])
        .arg(&credd.dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("3 credentials: 2 needs a person, 1 fresh"),
        "{text}"
    );
    // Down: still shown, and said so.
    assert_eq!(
        cm.stop_with(Signal::SIGTERM, Duration::from_secs(5)).0,
        Some(0)
    );
    let v = status_json(&credd);
    assert_eq!(v["credmon"]["running"], false, "{v}");
    assert_eq!(row(&v, "bob")["state"], "needs_login", "{v}");
    let out = Command::new(env!("CARGO_BIN_EXE_robot-credmon"))
        .args(["status", "-c"])
        .arg(&credd.dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("credmon: not running: no pid file in"),
        "{text}"
    );
    // A person logged in for bob: the next credmon clears it.
    env.vault.add_credential("igwn", "bob", "robot");
    let _cm = Credmon::start(&env, &credd, &[("ROBOT_CREDMON_STATE_INTERVAL", "1")]);
    let v = wait_state(&credd, "bob", "fresh", Duration::from_secs(10));
    assert_eq!(row(&v, "bob")["state"], "fresh", "{v}");
    assert_eq!(row(&v, "bob")["needs_login"], false, "{v}");
    // carol's first try by the new credmon finds she still needs a person.
    let v = wait_state(&credd, "carol", "needs_login", Duration::from_secs(10));
    assert_eq!(row(&v, "carol")["state"], "needs_login", "{v}");
}
