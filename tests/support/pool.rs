//! A real HTCondor personal pool for the integration tests: condor_master
//! (collector, negotiator, schedd, startd, credd and robot-credmon as
//! `CREDMON_OAUTH`) on 127.0.0.1, run as root with the `condor` user for
//! `CONDOR_IDS`, the repository's `condor-config/` snippets, the test Vault
//! and the real KDC of a [`TestEnv`], and robot users who submit jobs.
//!
//! HTCondor itself comes from `../shared/htcondor/build.sh` (see
//! `scripts/test.sh`), whose prefix is passed in `HTCONDOR_PREFIX`. The master
//! is stopped by its pid on drop (SIGQUIT, then SIGKILL after a bounded wait).

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use crate::support::TestEnv;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The default prefix of `../shared/htcondor/build.sh`.
pub const DEFAULT_PREFIX: &str = "/var/cache/robot-credmon/htcondor-25.14.0-7491a145f6";

/// The HTCondor installation: `$HTCONDOR_PREFIX`, else build.sh's default
/// when it is built, else the one whose `condor_master` is on `PATH` (from
/// HTCondor's packages: `/usr`). Fails with what to do when there is none.
pub fn prefix() -> Result<PathBuf, String> {
    let usable =
        |p: &Path| p.join("sbin/condor_master").is_file() && p.join("bin/condor_submit").is_file();
    let on_path = || {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|d| d.join("condor_master"))
            .find(|m| m.is_file())
            .and_then(|m| Some(m.parent()?.parent()?.to_path_buf()))
    };
    let p = match std::env::var_os("HTCONDOR_PREFIX") {
        Some(p) => PathBuf::from(p),
        None if usable(Path::new(DEFAULT_PREFIX)) => PathBuf::from(DEFAULT_PREFIX),
        None => on_path().unwrap_or_else(|| PathBuf::from(DEFAULT_PREFIX)),
    };
    if usable(&p) {
        Ok(p)
    } else {
        Err(format!(
            "no HTCondor under '{}': set HTCONDOR_PREFIX to an HTCondor 25 installation, install \
             HTCondor 25 (condor_master on PATH), or run ../shared/htcondor/build.sh (scripts/test.sh does)",
            p.display()
        ))
    }
}

/// A local account.
#[derive(Debug, Clone)]
pub struct User {
    /// Login name.
    pub name: String,
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Home directory.
    pub home: PathBuf,
}

/// Creates the account when missing (idempotent: CI runs on a fresh machine,
/// developers run the suite many times). `system` accounts get no home.
pub fn ensure_user(name: &str, system: bool) -> Result<User, String> {
    if nix::unistd::User::from_name(name).ok().flatten().is_none() {
        let mut c = Command::new("useradd");
        if system {
            c.args([
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ]);
        } else {
            c.args(["--user-group", "--create-home", "--shell", "/bin/sh"]);
        }
        let out = c
            .arg(name)
            .output()
            .map_err(|e| format!("cannot run useradd: {e}"))?;
        // Another test process may have created it meanwhile (exit 9).
        if !out.status.success() && out.status.code() != Some(9) {
            return Err(format!(
                "useradd {name} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    let u = nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .ok_or(format!("no user {name} after useradd"))?;
    if !system {
        std::fs::create_dir_all(&u.dir).map_err(|e| format!("home of {name}: {e}"))?;
        chown(&u.dir, Some(u.uid.as_raw()), Some(u.gid.as_raw())).map_err(|e| e.to_string())?;
    }
    Ok(User {
        name: name.to_owned(),
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
        home: u.dir,
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(19618)
}

fn mkdir(p: &Path, mode: u32, owner: Option<(u32, u32)>) {
    std::fs::create_dir_all(p).unwrap();
    if let Some((u, g)) = owner {
        chown(p, Some(u), Some(g)).unwrap();
    }
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Copies `from` to `to` with `mode` and `owner`.
pub fn install(from: &Path, to: &Path, mode: u32, owner: (u32, u32)) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", from.display(), to.display()));
    chown(to, Some(owner.0), Some(owner.1)).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The job every scenario runs: `job.sh OUTDIR SECONDS SERVICE...` copies
/// `$_CONDOR_CREDS/<service>.use` to `OUTDIR/<service>.<n>` each time it
/// changes, for SECONDS seconds (at least one look).
const JOB: &str = r#"#!/bin/sh
out=$1; secs=$2; shift 2
end=$(( $(date +%s) + secs ))
n=0
ls -la "$_CONDOR_CREDS" > "$out/creds-listing" 2>&1
while :; do
  for s in "$@"; do
    f="$_CONDOR_CREDS/$s.use"
    if [ -f "$f" ] && ! cmp -s "$f" "$out/.$s.last"; then
      cp "$f" "$out/.$s.last"; cp "$f" "$out/$s.$n"; n=$((n+1))
    fi
  done
  [ "$(date +%s)" -ge "$end" ] && break
  sleep 0.3
done
exit 0
"#;

/// A running personal pool.
pub struct Pool {
    /// The HTCondor installation.
    pub prefix: PathBuf,
    /// Everything of this pool (mode 0755, removed on drop).
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
    /// `CONDOR_CONFIG`.
    pub config: PathBuf,
    /// Included last; tests rewrite it and run `condor_reconfig`.
    pub dynamic: PathBuf,
    /// `$(LOG)`.
    pub log_dir: PathBuf,
    /// `SEC_CREDENTIAL_DIRECTORY_OAUTH`.
    pub cred_dir: PathBuf,
    /// `ROBOT_CREDMON_KEYTAB_DIR`.
    pub keytab_dir: PathBuf,
    /// The copied robot-credmon binary (runnable by every user).
    pub bin: PathBuf,
    /// The test CA, readable by everyone.
    pub ca: PathBuf,
    /// The KDC's krb5.conf, readable by everyone.
    pub krb5_conf: PathBuf,
    /// The `condor` account.
    pub condor: User,
    /// `SHARED_PORT_PORT` (the collector's port).
    pub port: u16,
    master: Option<Child>,
}

/// What one condor_master of the pool runs.
pub enum Role<'a> {
    /// The central manager, the execute node and the first access point
    /// (its credd is called `ap1@pool`): collector, negotiator, schedd, startd,
    /// credd and robot-credmon.
    Central,
    /// Another access point, `<name>@pool`: a schedd, a credd and a
    /// robot-credmon with their own directories, reporting to `central`'s
    /// collector; its jobs run on the central startd.
    Ap {
        /// The AP's name (`ap2`).
        name: &'a str,
        /// The pool it joins.
        central: &'a Pool,
    },
}

impl Pool {
    /// Starts a pool for `env`'s Vault and KDC and waits (bounded) until the
    /// collector, negotiator, schedd, startd and credd are alive.
    pub fn start(env: &TestEnv) -> Result<Pool, String> {
        let bin = option_env!("CARGO_BIN_EXE_robot-credmon")
            .ok_or("Pool::start runs from the integration tests; elsewhere use Pool::start_with")?;
        Self::start_with(env, Path::new(bin))
    }

    /// [`Pool::start`] with the robot-credmon binary `robot_credmon` (copied into the pool).
    pub fn start_with(env: &TestEnv, robot_credmon: &Path) -> Result<Pool, String> {
        Self::start_role(env, robot_credmon, Role::Central)
    }

    /// Starts another access point (schedd, credd, credmon under a second
    /// condor_master, with `central`'s robot-credmon) in `central`'s pool and
    /// waits (bounded) until its schedd and credd are alive, its credd is in
    /// the collector and its credmon has done a pass.
    pub fn start_ap(env: &TestEnv, central: &Pool, name: &str) -> Result<Pool, String> {
        let ap = Self::start_role(env, &central.bin, Role::Ap { name, central })?;
        let credd = format!("{name}@pool");
        let found = Self::wait_for(Duration::from_secs(30), || {
            central
                .ok(
                    "condor_status",
                    &["-any", "-af", "Name"],
                    Duration::from_secs(20),
                )
                .is_ok_and(|o| o.lines().any(|l| l.trim() == credd))
        });
        if !found {
            return Err(format!(
                "the credd {credd} is not in the collector after 30 s; its CredLog:\n{}",
                ap.log("CredLog")
            ));
        }
        Ok(ap)
    }

    fn start_role(env: &TestEnv, robot_credmon: &Path, role: Role) -> Result<Pool, String> {
        let prefix = prefix()?;
        let condor = ensure_user("condor", true)?;
        let tmp = tempfile::Builder::new()
            .prefix("credmon-pool-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let dir = tmp.path().to_path_buf();
        let c = Some((condor.uid, condor.gid));
        mkdir(&dir, 0o755, None);
        let local = dir.join("local");
        mkdir(&local, 0o755, None);
        for d in ["log", "spool", "lock", "run"] {
            mkdir(&local.join(d), 0o755, c);
        }
        mkdir(&local.join("execute"), 0o755, c);
        let cred_dir = dir.join("oauth_credentials");
        mkdir(&cred_dir, 0o2770, Some((0, condor.gid)));
        let keytab_dir = dir.join("robot-keytabs");
        mkdir(&keytab_dir, 0o700, Some((0, 0)));
        mkdir(&dir.join("bin"), 0o755, None);
        mkdir(&dir.join("jobs"), 0o755, None);
        let bin = dir.join("bin/robot-credmon");
        install(robot_credmon, &bin, 0o755, (0, 0));
        std::os::unix::fs::symlink("robot-credmon", dir.join("bin/robot-credmon-storer"))
            .map_err(|e| e.to_string())?;
        std::fs::write(dir.join("bin/job.sh"), JOB).map_err(|e| e.to_string())?;
        std::fs::set_permissions(
            dir.join("bin/job.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .map_err(|e| e.to_string())?;
        let ca = dir.join("ca.pem");
        install(env.vault.ca_file(), &ca, 0o644, (0, 0));
        let krb5_conf = dir.join("krb5.conf");
        install(&env.kdc.krb5_conf(), &krb5_conf, 0o644, (0, 0));
        let port = free_port();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dynamic = dir.join("dynamic.conf");
        std::fs::write(&dynamic, "# rewritten by the tests\n").map_err(|e| e.to_string())?;
        let config = dir.join("condor_config");
        let (role_lines, collector_port) = match &role {
            Role::Central => (
                "use ROLE: Personal\nCREDD_HOST = ap1@pool\n".to_owned(),
                port,
            ),
            Role::Ap { name, central } => (
                format!(
                    "use ROLE: Submit\nMASTER_NAME = {name}\nSCHEDD_NAME = {name}\nCREDD_HOST = {name}@pool\n"
                ),
                central.port,
            ),
        };
        let text = format!(
            r#"# A personal pool for robot-credmon's integration tests (tests/support/pool.rs).
RELEASE_DIR = {release}
{libexec}{role_lines}CONDOR_HOST = 127.0.0.1
NETWORK_INTERFACE = 127.0.0.1
LOCAL_DIR = {local}
LOG = $(LOCAL_DIR)/log
SPOOL = $(LOCAL_DIR)/spool
EXECUTE = $(LOCAL_DIR)/execute
LOCK = $(LOCAL_DIR)/lock
RUN = $(LOCAL_DIR)/run
CONDOR_IDS = {uid}.{gid}
SHARED_PORT_PORT = {port}
COLLECTOR_HOST = 127.0.0.1:{collector_port}
# Every tool authenticates (FS on this host); root administers the pool.
SEC_DEFAULT_AUTHENTICATION = REQUIRED
ALLOW_ADMINISTRATOR = root@*, condor@*
# The daemons of every condor_master (the condor user) may advertise.
ALLOW_DAEMON = condor@*, root@*
ALLOW_READ = 127.0.0.1, localhost
ALLOW_WRITE = 127.0.0.1, localhost
MAIL = /bin/true
# Quick turn-around for tests.
NUM_CPUS = 4
START = TRUE
SUSPEND = FALSE
PREEMPT = FALSE
KILL = FALSE
WANT_SUSPEND = FALSE
NEGOTIATOR_INTERVAL = 2
NEGOTIATOR_MIN_INTERVAL = 1
NEGOTIATOR_CYCLE_DELAY = 1
SCHEDD_INTERVAL = 2
UPDATE_INTERVAL = 2
STARTER_UPDATE_INTERVAL = 2
SHADOW_QUEUE_UPDATE_INTERVAL = 2
JOB_START_DELAY = 0
MASTER_BACKOFF_CONSTANT = 1
SEC_CREDENTIAL_REFRESH = 3
MASTER_DEBUG = D_FULLDEBUG
CREDMON_OAUTH_DEBUG = D_FULLDEBUG

# The shipped snippets, as a site installs them ...
include : {repo}/condor-config/50-robot-credmon.conf
include : {repo}/condor-config/60-robot-credmon-submit.conf

# ... and the site settings (see docs/credmon.md and docs/htcondor.md).
SEC_CREDENTIAL_DIRECTORY_OAUTH = {cred_dir}
CREDMON_OAUTH = {bin}
SEC_CREDENTIAL_STORER = {dir}/bin/robot-credmon-storer
SEC_CREDENTIAL_GETTOKEN_OPTS = -a {vault} --cafile {ca} --credkey {principal} -r robot
AUTH_SSL_CLIENT_CAFILE = {ca}
ROBOT_CREDMON_KEYTAB_DIR = {keytab_dir}
ROBOT_CREDMON_VAULT_SERVER = localhost:{vport}
ROBOT_CREDMON_ALLOWED_VAULT_PORTS = {vport}
ROBOT_CREDMON_SCAN_INTERVAL = 2
ROBOT_CREDMON_BACKOFF_BASE = 1
CREDMON_OAUTH_ENVIRONMENT = "KRB5_CONFIG={krb5}"

include : {dynamic}
"#,
            release = prefix.display(),
            // HTCondor's packages keep their helpers in /usr/libexec/condor.
            libexec = if prefix.join("libexec/condor/condor_shared_port").exists() {
                format!("LIBEXEC = {}/libexec/condor\n", prefix.display())
            } else {
                String::new()
            },
            local = local.display(),
            uid = condor.uid,
            gid = condor.gid,
            repo = repo.display(),
            cred_dir = cred_dir.display(),
            bin = bin.display(),
            dir = dir.display(),
            vault = env.vault.url(),
            ca = ca.display(),
            principal = TestEnv::PRINCIPAL,
            keytab_dir = keytab_dir.display(),
            vport = env.vault.port(),
            krb5 = krb5_conf.display(),
            dynamic = dynamic.display(),
            role_lines = role_lines,
            collector_port = collector_port,
        );
        std::fs::write(&config, text).map_err(|e| e.to_string())?;
        let mut pool = Pool {
            prefix,
            log_dir: local.join("log"),
            dir,
            _tmp: tmp,
            config,
            dynamic,
            cred_dir,
            keytab_dir,
            bin,
            ca,
            krb5_conf,
            condor,
            port,
            master: None,
        };
        let master = Command::new(pool.prefix.join("sbin/condor_master"))
            .arg("-f")
            .env_clear()
            .envs(pool.base_env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start condor_master: {e}"))?;
        pool.master = Some(master);
        let daemons: &[&str] = match role {
            Role::Central => &["COLLECTOR", "NEGOTIATOR", "SCHEDD", "STARTD", "CREDD"],
            Role::Ap { .. } => &["SCHEDD", "CREDD"],
        };
        pool.wait_daemons(daemons, 60)?;
        // The credmon has done its first pass (without relying on its ready message).
        let complete = pool.cred_dir.join("CREDMON_COMPLETE");
        if !Self::wait_for(Duration::from_secs(30), || complete.exists()) {
            return Err(format!(
                "the credmon did not complete a pass within 30 s; its log:\n{}\nMasterLog:\n{}",
                pool.log("CredMonOAuthLog"),
                pool.log("MasterLog")
            ));
        }
        Ok(pool)
    }

    fn base_env(&self) -> Vec<(String, String)> {
        vec![
            ("CONDOR_CONFIG".into(), self.config.display().to_string()),
            (
                "PATH".into(),
                format!(
                    "{}:{}:/usr/sbin:/usr/bin:/sbin:/bin",
                    self.prefix.join("bin").display(),
                    self.prefix.join("sbin").display()
                ),
            ),
            ("KRB5_CONFIG".into(), self.krb5_conf.display().to_string()),
            ("NO_PROXY".into(), "localhost,127.0.0.1".into()),
            (
                "TZ".into(),
                std::env::var("TZ").unwrap_or_else(|_| "UTC".into()),
            ),
        ]
    }

    /// The master's pid.
    pub fn master_pid(&self) -> Option<u32> {
        self.master.as_ref().map(Child::id)
    }

    /// An HTCondor tool run as root with this pool's configuration.
    pub fn tool(&self, name: &str) -> Command {
        let path = if self.prefix.join("bin").join(name).exists() {
            self.prefix.join("bin").join(name)
        } else {
            self.prefix.join("sbin").join(name)
        };
        let mut c = Command::new(path);
        c.env_clear().envs(self.base_env()).stdin(Stdio::null());
        c
    }

    /// `program args` run as `user` (setpriv, with the user's groups), in a clean
    /// environment with HOME, USER, the pool's PATH and CONDOR_CONFIG, plus `env`.
    pub fn as_user(
        &self,
        user: &User,
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Command {
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={}", user.uid))
            .arg(format!("--regid={}", user.gid))
            .arg("--init-groups")
            .arg("--")
            .arg(program)
            .args(args)
            .env_clear()
            .envs(self.base_env())
            .env("HOME", &user.home)
            .env("USER", &user.name)
            .env("LOGNAME", &user.name)
            .envs(env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .current_dir(&user.home)
            .stdin(Stdio::null());
        c
    }

    /// Runs `c` with a time limit; returns its output or a message.
    pub fn run(c: &mut Command, limit: Duration) -> Result<Output, String> {
        let child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {c:?}: {e}"))?;
        // The output is read to the end on a thread (no pipe fills up); the
        // caller waits for it with the bound, and kills the tool past it.
        let pid = Pid::from_raw(child.id() as i32);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(limit) {
            Ok(out) => out.map_err(|e| e.to_string()),
            Err(_) => {
                let _ = kill(pid, Signal::SIGKILL);
                let out = rx
                    .recv_timeout(Duration::from_secs(10))
                    .map_err(|_| format!("{c:?} outlived SIGKILL"))?
                    .map_err(|e| e.to_string())?;
                Err(format!(
                    "{c:?} did not finish within {limit:?}; stdout: {} stderr: {}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        }
    }

    /// Runs tool `name args` as root; its output when it exits 0, else a message.
    pub fn ok(&self, name: &str, args: &[&str], limit: Duration) -> Result<String, String> {
        let out = Self::run(self.tool(name).args(args), limit)?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(text)
        } else {
            Err(format!(
                "{name} {args:?} exited {:?}: {text} {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// `condor_who -wait:<secs> <constraint>` against the master's ready ad;
    /// condor_who exits 0 either way, so success is the returned ad holding
    /// every line of `expect` (e.g. `IsReady = true`).
    pub fn who_wait(&self, secs: u64, constraint: &str, expect: &[&str]) -> Result<String, String> {
        // condor_who returns at once while the master has not written its
        // address yet: wait for the address file, then ask until the time is up.
        let limit = Duration::from_secs(secs);
        let deadline = Instant::now() + limit;
        let address = self.log_dir.join(".master_address");
        if !crate::support::wait::until(limit, || address.exists()) {
            return Err(format!(
                "condor_master wrote no {} in {secs} s",
                address.display()
            ));
        }
        let mut last = Err(String::new());
        crate::support::wait::until(limit, || {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_secs()
                .max(1);
            last = self.ok(
                "condor_who",
                &[&format!("-wait:{left}"), constraint],
                Duration::from_secs(left + 15),
            );
            let Ok(ad) = &last else { return true };
            let lines: Vec<&str> = ad.lines().map(str::trim).collect();
            expect.iter().all(|e| lines.contains(e))
        });
        let ad = last?;
        match expect
            .iter()
            .find(|e| !ad.lines().map(str::trim).any(|l| l == **e))
        {
            None => Ok(ad),
            Some(missing) => Err(format!(
                "condor_who -wait:{secs} '{constraint}': no '{missing}' in the ready ad:\n{ad}"
            )),
        }
    }

    /// The master's ready ad (`condor_who -quick`).
    pub fn who_quick(&self) -> String {
        self.ok("condor_who", &["-quick"], Duration::from_secs(20))
            .unwrap_or_else(|e| e)
    }

    /// Waits until each named daemon is `Alive` in the master's ready ad.
    pub fn wait_daemons(&self, names: &[&str], secs: u64) -> Result<(), String> {
        let want: Vec<String> = names.iter().map(|n| format!("{n} = \"Alive\"")).collect();
        let constraint = want.join(" && ").replace(" = ", " == ");
        let expect: Vec<&str> = want.iter().map(String::as_str).collect();
        self.who_wait(secs, &constraint, &expect)
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "the pool did not come up: {e}\nready ad:\n{}\nMasterLog:\n{}",
                    self.who_quick(),
                    self.log("MasterLog")
                )
            })
    }

    /// Rewrites the dynamic configuration and runs `condor_reconfig`.
    pub fn reconfig(&self, text: &str) -> Result<(), String> {
        std::fs::write(&self.dynamic, format!("# rewritten by the tests\n{text}"))
            .map_err(|e| e.to_string())?;
        self.ok("condor_reconfig", &[], Duration::from_secs(20))
            .map(|_| ())
    }

    /// `knob` as the running credd has it (asked at the address it wrote
    /// in `$(LOG)/.credd_address`), or `None` while it cannot say.
    pub fn credd_config(&self, knob: &str) -> Option<String> {
        let address = std::fs::read_to_string(self.log_dir.join(".credd_address")).ok()?;
        let address = address.lines().next()?.trim().to_owned();
        self.ok(
            "condor_config_val",
            &["-address", &address, knob],
            Duration::from_secs(10),
        )
        .ok()
        .map(|v| v.trim().to_owned())
    }

    /// The text of a log in `$(LOG)`.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_dir.join(name)).unwrap_or_default()
    }

    /// Sizes of every log in `$(LOG)` (to look only at what is written later).
    pub fn log_marks(&self) -> Vec<(String, u64)> {
        let mut v = Vec::new();
        if let Ok(rd) = std::fs::read_dir(&self.log_dir) {
            for e in rd.flatten() {
                if let Ok(m) = e.metadata()
                    && m.is_file()
                {
                    v.push((e.file_name().to_string_lossy().into_owned(), m.len()));
                }
            }
        }
        v
    }

    /// Every log line written since `marks`, as `(log, line)`.
    pub fn log_lines_since(&self, marks: &[(String, u64)]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, _) in self.log_marks() {
            let from = marks
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(0, |(_, l)| *l) as usize;
            let bytes = std::fs::read(self.log_dir.join(&name)).unwrap_or_default();
            let text = String::from_utf8_lossy(bytes.get(from..).unwrap_or_default()).into_owned();
            out.extend(text.lines().map(|l| (name.clone(), l.to_owned())));
        }
        out
    }

    /// The credmon's pid from the credential directory's `pid` file.
    pub fn credmon_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.cred_dir.join("pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Waits (bounded) for `f` to hold.
    pub fn wait_for(limit: Duration, f: impl FnMut() -> bool) -> bool {
        crate::support::wait::until(limit, f)
    }

    /// A fresh job directory for `user`.
    pub fn job_dir(&self, name: &str, user: &User) -> PathBuf {
        let d = self.dir.join("jobs").join(name);
        mkdir(&d, 0o755, Some((user.uid, user.gid)));
        d
    }

    /// Submits a job running `job.sh OUT <secs> <services>` as `user` with
    /// `extra` submit lines. Returns the condor_submit output (or its failure)
    /// and the job directory.
    pub fn submit(
        &self,
        user: &User,
        name: &str,
        secs: u32,
        services: &[&str],
        extra: &str,
        env: &[(&str, String)],
    ) -> (Result<String, String>, PathBuf) {
        let d = self.job_dir(name, user);
        let sub = d.join("job.sub");
        let text = format!(
            "universe = vanilla\nexecutable = {job}\narguments = {out} {secs} {svcs}\n\
             should_transfer_files = NO\noutput = {out}/out\nerror = {out}/err\nlog = {out}/log\n\
             {extra}\nqueue\n",
            job = self.dir.join("bin/job.sh").display(),
            out = d.display(),
            svcs = services.join(" "),
        );
        std::fs::write(&sub, text).unwrap();
        let prog = self.prefix.join("bin/condor_submit");
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = Self::run(
            &mut self.as_user(user, &prog, &[sub.to_str().unwrap()], &env),
            Duration::from_secs(60),
        )
        .and_then(|o| {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            if o.status.success() {
                Ok(text)
            } else {
                Err(text)
            }
        });
        (r, d)
    }

    /// Waits (bounded) for the job logged in `dir` to finish; on failure the
    /// message has the queue's view (hold reason) and the job's stderr.
    pub fn wait_job(&self, dir: &Path, secs: u64) -> Result<(), String> {
        let log = dir.join("log");
        let r = self.ok(
            "condor_wait",
            &["-wait", &secs.to_string(), log.to_str().unwrap()],
            Duration::from_secs(secs + 15),
        );
        r.map(|_| ()).map_err(|e| {
            format!(
                "{e}\nqueue: {}\njob stderr: {}\nuser log: {}",
                self.ok(
                    "condor_q",
                    &["-allusers", "-af", "ClusterId", "JobStatus", "HoldReason"],
                    Duration::from_secs(20)
                )
                .unwrap_or_else(|e| e),
                std::fs::read_to_string(dir.join("err")).unwrap_or_default(),
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        })
    }

    /// The tokens the job in `dir` saw for `service`, in order.
    pub fn job_tokens(dir: &Path, service: &str) -> Vec<String> {
        let mut v: Vec<(u32, String)> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let n = name.strip_prefix(&format!("{service}."))?.parse().ok()?;
                        Some((n, std::fs::read_to_string(e.path()).ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v.into_iter().map(|(_, t)| t).collect()
    }

    /// Stops the pool: SIGQUIT to the master (fast shutdown of every daemon),
    /// then SIGKILL after 30 s, and the credmon by its pid if it outlived it.
    pub fn stop(&mut self) {
        let Some(mut master) = self.master.take() else {
            return;
        };
        let pid = Pid::from_raw(master.id() as i32);
        let _ = kill(pid, Signal::SIGQUIT);
        if crate::support::kdc::wait_status(&mut master, Duration::from_secs(30)).is_none() {
            let _ = master.kill();
            let _ = master.wait();
        }
        if let Some(p) = self.credmon_pid() {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop();
        // For debugging: ROBOT_CREDMON_KEEP_POOL=1 keeps the directory (logs, config).
        if std::env::var_os("ROBOT_CREDMON_KEEP_POOL").is_some() {
            let tmp = std::mem::replace(&mut self._tmp, tempfile::TempDir::new().unwrap());
            eprintln!("pool kept in {}", tmp.keep().display());
        }
    }
}
