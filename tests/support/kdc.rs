//! A throwaway MIT Kerberos KDC on 127.0.0.1 for tests.
//!
//! [`Kdc::start`] creates a realm database in a directory, adds client and
//! service principals with `kadmin.local`, writes one keytab per client
//! principal plus one `service.keytab`, and runs `krb5kdc` in the foreground
//! (`-n`) as a child of the test process on a random loopback port. Nothing
//! here touches the process environment: every tool gets `KRB5_CONFIG` and
//! `KRB5_KDC_PROFILE` on its own `Command`, and [`Kdc::env`] hands the same
//! variables to whoever runs Kerberos clients (child processes).
//!
//! Dropping the [`Kdc`] stops `krb5kdc` by the pid from its `-P` pidfile and
//! reaps it, waiting at most a few seconds.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, mpsc};
use std::thread;
use std::time::Duration;

use super::wait;
use nix::sys::wait::{Id, WaitPidFlag, waitid};

use nix::sys::signal::{Signal, kill};
use nix::sys::stat::{Mode, umask};
use nix::unistd::Pid;

/// The realm every test KDC serves.
pub const REALM: &str = "EXAMPLE.TEST";
/// The service principal created when none is given (the Vault's `host@localhost`).
pub const DEFAULT_SERVICE: &str = "host/localhost";
/// Principal behind [`Kdc::wrong_keytab`]: its key was re-randomized after the keytab was written.
pub const STALE_PRINCIPAL: &str = "robot/stale.example";
/// Principal behind [`Kdc::unknown_keytab`]: deleted from the KDC after the keytab was written.
pub const DELETED_PRINCIPAL: &str = "robot/deleted.example";

const INSTALL_HINT: &str =
    "install krb5-kdc krb5-admin-server (apt-get install krb5-kdc krb5-admin-server krb5-user)";
const START_TIMEOUT: Duration = Duration::from_secs(5);
const TOOL_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(3);
const PORT_ATTEMPTS: usize = 5;

/// Knobs for [`Kdc::start_with`]; [`Kdc::start`] uses the defaults.
#[derive(Clone, Debug)]
pub struct KdcOptions {
    /// Client principals without realm; each gets its own keytab ([`Kdc::client_keytab`]).
    pub client_princs: Vec<String>,
    /// Service principals without realm, all in `service.keytab`; empty means `host/localhost`.
    pub service_princs: Vec<String>,
    /// Maximum ticket lifetime (`max_life` in kdc.conf), e.g. `"30s"`; short values exercise renewal.
    pub max_life: String,
}

impl Default for KdcOptions {
    fn default() -> Self {
        KdcOptions {
            client_princs: vec!["robot/host.example".to_string()],
            service_princs: vec![DEFAULT_SERVICE.to_string()],
            max_life: "10h".to_string(),
        }
    }
}

/// A running `krb5kdc` with its realm files; stopped on drop.
#[derive(Debug)]
pub struct Kdc {
    dir: PathBuf,
    port: u16,
    pid: u32,
    child: Option<Child>,
    tools: Tools,
    service_keytab: PathBuf,
    clients: Mutex<BTreeMap<String, PathBuf>>,
}

impl Kdc {
    /// Sets up realm [`REALM`] in `dir` (created if missing) and starts the KDC.
    ///
    /// `service_princs` empty means [`DEFAULT_SERVICE`]. Principals are given without realm.
    pub fn start(
        dir: &Path,
        client_princs: &[&str],
        service_princs: &[&str],
    ) -> Result<Kdc, String> {
        let mut opts = KdcOptions {
            client_princs: client_princs.iter().map(|p| p.to_string()).collect(),
            ..KdcOptions::default()
        };
        if !service_princs.is_empty() {
            opts.service_princs = service_princs.iter().map(|p| p.to_string()).collect();
        }
        Kdc::start_with(dir, &opts)
    }

    /// Like [`Kdc::start`], with all knobs.
    pub fn start_with(dir: &Path, opts: &KdcOptions) -> Result<Kdc, String> {
        let tools = Tools::find()?;
        fs::create_dir_all(dir)
            .map_err(|e| format!("could not create KDC dir '{}': {e}", dir.display()))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| format!("could not resolve KDC dir '{}': {e}", dir.display()))?;
        check_path_word(&dir)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("could not chmod '{}': {e}", dir.display()))?;
        let services: Vec<String> = if opts.service_princs.is_empty() {
            vec![DEFAULT_SERVICE.to_string()]
        } else {
            opts.service_princs.clone()
        };
        remove_stale_realm(&dir)?;
        let mut kdc = Kdc {
            service_keytab: dir.join("service.keytab"),
            dir,
            port: 0,
            pid: 0,
            child: None,
            tools,
            clients: Mutex::new(BTreeMap::new()),
        };
        kdc.write_confs(free_port()?, &opts.max_life)?;
        kdc.create_database()?;
        kdc.create_principals(&opts.client_princs, &services)?;
        kdc.launch(&opts.max_life)?;
        Ok(kdc)
    }

    /// The realm, [`REALM`].
    pub fn realm(&self) -> &str {
        REALM
    }

    /// `princ@REALM`.
    pub fn principal(&self, princ: &str) -> String {
        format!("{princ}@{REALM}")
    }

    /// The KDC's port on 127.0.0.1 (UDP and TCP).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The pid of `krb5kdc`, read from its pidfile.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The directory holding the realm.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The client profile to use as `KRB5_CONFIG`.
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.join("krb5.conf")
    }

    /// The KDC profile to use as `KRB5_KDC_PROFILE`.
    pub fn kdc_conf(&self) -> PathBuf {
        self.dir.join("kdc.conf")
    }

    /// Environment for Kerberos programs talking to this KDC: `KRB5_CONFIG`, `KRB5_KDC_PROFILE`,
    /// `KRB5RCACHEDIR`. Set these on a `Command`, never on the test process.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "KRB5_CONFIG".to_string(),
                self.krb5_conf().display().to_string(),
            ),
            (
                "KRB5_KDC_PROFILE".to_string(),
                self.kdc_conf().display().to_string(),
            ),
            (
                "KRB5RCACHEDIR".to_string(),
                self.dir.join("rcache").display().to_string(),
            ),
        ]
    }

    /// Keytab holding every service principal (default `host/localhost`).
    pub fn service_keytab(&self) -> &Path {
        &self.service_keytab
    }

    /// The keytab file of client principal `princ` (no realm). The path is derived from the
    /// name, so for a principal that was never added it names a file that does not exist.
    pub fn client_keytab(&self, princ: &str) -> PathBuf {
        if let Some(path) = lock(&self.clients).get(princ) {
            return path.clone();
        }
        self.dir.join(keytab_file_name(princ))
    }

    /// Client principals added so far (without realm).
    pub fn clients(&self) -> Vec<String> {
        lock(&self.clients).keys().cloned().collect()
    }

    /// Adds client principal `princ` (no realm) and writes its keytab (mode 0600).
    pub fn add_client(&self, princ: &str) -> Result<PathBuf, String> {
        let keytab = self.reserve_keytab(princ)?;
        let full = self.principal(princ);
        let script = format!(
            "addprinc -randkey {full}\nktadd -k {} -norandkey {full}\n",
            keytab.display()
        );
        let result = self.kadmin(&script).and_then(|_| private_file(&keytab));
        if result.is_err() {
            lock(&self.clients).remove(princ);
        }
        result.map(|()| keytab)
    }

    /// Gives `princ` a new random key (kvno + 1), so keytabs written before become stale.
    pub fn randomize_key(&self, princ: &str) -> Result<(), String> {
        check_principal(princ)?;
        self.kadmin(&format!("cpw -randkey {}\n", self.principal(princ)))
            .map(|_| ())
    }

    /// Deletes `princ` from the KDC database (its keytab stays on disk).
    pub fn delete_principal(&self, princ: &str) -> Result<(), String> {
        check_principal(princ)?;
        self.kadmin(&format!("delprinc -force {}\n", self.principal(princ)))
            .map(|_| ())
    }

    /// A keytab for [`STALE_PRINCIPAL`], whose key was re-randomized after the keytab was
    /// written: `kinit` with it fails with a preauthentication/password error.
    pub fn wrong_keytab(&self) -> PathBuf {
        self.dir.join("wrong.keytab")
    }

    /// A keytab for [`DELETED_PRINCIPAL`], which no longer exists in the KDC:
    /// `kinit` with it fails with "not found in Kerberos database".
    pub fn unknown_keytab(&self) -> PathBuf {
        self.dir.join("unknown.keytab")
    }

    /// Runs a `kadmin.local` script (one query per line) against this realm and returns its
    /// stdout. Fails if kadmin reports anything but the usual "no policy" notices.
    pub fn kadmin(&self, script: &str) -> Result<String, String> {
        let mut cmd = Command::new(&self.tools.kadmin_local);
        cmd.arg("-r").arg(REALM);
        let out = self.run_tool(cmd, Some(script), "kadmin")?;
        let errors: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.contains("No policy specified"))
            .collect();
        if !errors.is_empty() {
            return Err(format!("kadmin.local failed: {}", errors.join("; ")));
        }
        Ok(out.stdout)
    }

    /// Whether `krb5kdc` is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops the KDC (SIGTERM by pid, SIGKILL after a bounded wait) and reaps it. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = Pid::from_raw(self.pid as i32);
        if matches!(child.try_wait(), Ok(None)) {
            let _ = kill(pid, Signal::SIGTERM);
            if !wait_child(&mut child, STOP_TIMEOUT) {
                let _ = kill(pid, Signal::SIGKILL);
                wait_child(&mut child, STOP_TIMEOUT);
            }
        }
    }

    fn reserve_keytab(&self, princ: &str) -> Result<PathBuf, String> {
        check_principal(princ)?;
        let path = self.dir.join(keytab_file_name(princ));
        let mut clients = lock(&self.clients);
        if clients.contains_key(princ) {
            return Err(format!("client principal '{princ}' already exists"));
        }
        if clients.values().any(|p| *p == path) {
            return Err(format!(
                "client principal '{princ}' maps to a keytab name already in use"
            ));
        }
        clients.insert(princ.to_string(), path.clone());
        Ok(path)
    }

    fn write_confs(&mut self, port: u16, max_life: &str) -> Result<(), String> {
        check_conf_value(max_life)?;
        self.port = port;
        let d = self.dir.display();
        let krb5 = format!(
            "[libdefaults]\n    default_realm = {REALM}\n    dns_lookup_kdc = false\n    \
             dns_lookup_realm = false\n    dns_canonicalize_hostname = false\n    rdns = false\n    \
             udp_preference_limit = 1\n    forwardable = true\n    ticket_lifetime = 10h\n\
             [realms]\n    {REALM} = {{\n        kdc = 127.0.0.1:{port}\n    }}\n\
             [domain_realm]\n    localhost = {REALM}\n    .example = {REALM}\n    host.example = {REALM}\n"
        );
        let kdc = format!(
            "[kdcdefaults]\n    kdc_listen = 127.0.0.1:{port}\n    kdc_tcp_listen = 127.0.0.1:{port}\n\
             [realms]\n    {REALM} = {{\n        database_name = {d}/principal\n        \
             key_stash_file = {d}/stash\n        max_life = {max_life}\n        max_renewable_life = 7d\n        \
             default_principal_flags = +preauth\n    }}\n\
             [logging]\n    kdc = FILE:{d}/kdc.log\n    admin_server = FILE:{d}/kadmin.log\n    \
             default = FILE:{d}/kadmin.log\n"
        );
        write_file(&self.krb5_conf(), &krb5)?;
        write_file(&self.kdc_conf(), &kdc)?;
        fs::create_dir_all(self.dir.join("rcache"))
            .map_err(|e| format!("could not create rcache dir: {e}"))
    }

    fn create_database(&self) -> Result<(), String> {
        let master = format!("master-{}", fastrand::u64(..));
        let mut cmd = Command::new(&self.tools.kdb5_util);
        cmd.args(["-r", REALM, "create", "-s", "-W", "-P", &master]);
        let out = self.run_tool(cmd, None, "kdb5_util")?;
        if !out.status_ok {
            return Err(format!("kdb5_util create failed: {}", out.stderr.trim()));
        }
        Ok(())
    }

    fn create_principals(&self, clients: &[String], services: &[String]) -> Result<(), String> {
        let mut script = String::new();
        let mut keytabs = Vec::new();
        for princ in clients {
            let keytab = self.reserve_keytab(princ)?;
            let full = self.principal(princ);
            script += &format!(
                "addprinc -randkey {full}\nktadd -k {} -norandkey {full}\n",
                keytab.display()
            );
            keytabs.push(keytab);
        }
        for princ in services {
            check_principal(princ)?;
            let full = self.principal(princ);
            script += &format!(
                "addprinc -randkey {full}\nktadd -k {} -norandkey {full}\n",
                self.service_keytab.display()
            );
        }
        let stale = self.principal(STALE_PRINCIPAL);
        let deleted = self.principal(DELETED_PRINCIPAL);
        script += &format!(
            "addprinc -randkey {stale}\nktadd -k {} -norandkey {stale}\ncpw -randkey {stale}\n\
             addprinc -randkey {deleted}\nktadd -k {} -norandkey {deleted}\ndelprinc -force {deleted}\n",
            self.wrong_keytab().display(),
            self.unknown_keytab().display()
        );
        self.kadmin(&script)?;
        keytabs.push(self.service_keytab.clone());
        keytabs.push(self.wrong_keytab());
        keytabs.push(self.unknown_keytab());
        keytabs.iter().try_for_each(|k| private_file(k))
    }

    /// Starts krb5kdc, moving to another random port if the chosen one is taken.
    fn launch(&mut self, max_life: &str) -> Result<(), String> {
        let mut last_error = String::new();
        for attempt in 0..PORT_ATTEMPTS {
            if attempt > 0 {
                self.write_confs(free_port()?, max_life)?;
            }
            match self.launch_once() {
                Ok(()) => return Ok(()),
                Err(Launch::PortBusy(msg)) => last_error = msg,
                Err(Launch::Failed(msg)) => return Err(msg),
            }
        }
        Err(format!(
            "krb5kdc could not bind a port after {PORT_ATTEMPTS} attempts: {last_error}"
        ))
    }

    fn launch_once(&mut self) -> Result<(), Launch> {
        let log = self.dir.join("kdc.log");
        let pidfile = self.dir.join("kdc.pid");
        let _ = fs::remove_file(&pidfile);
        write_file(&log, "").map_err(Launch::Failed)?;
        let stdio = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("kdc.stdio"))
            .map_err(|e| Launch::Failed(format!("could not open kdc.stdio: {e}")))?;
        let stdio2 = stdio
            .try_clone()
            .map_err(|e| Launch::Failed(format!("could not dup kdc.stdio: {e}")))?;
        let mut cmd = Command::new(&self.tools.krb5kdc);
        cmd.args(["-n", "-r", REALM, "-P"]).arg(&pidfile);
        self.prepare(&mut cmd);
        cmd.stdin(Stdio::null()).stdout(stdio).stderr(stdio2);
        let mut child = cmd.spawn().map_err(|e| {
            Launch::Failed(format!(
                "could not run '{}': {e}",
                self.tools.krb5kdc.display()
            ))
        })?;
        // Started: the log says so and the pid file is written; or it exited.
        let (mut log_text, mut exited, mut pid) = (String::new(), None, None);
        wait::until(START_TIMEOUT, || {
            log_text = fs::read_to_string(&log).unwrap_or_default();
            exited = child.try_wait().ok().flatten();
            pid = fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
                .filter(|_| log_text.contains("commencing operation"));
            exited.is_some() || pid.is_some()
        });
        if let Some(status) = exited {
            let msg = format!("krb5kdc exited ({status}): {}", log_text.trim());
            return Err(if log_text.contains("Address already in use") {
                Launch::PortBusy(msg)
            } else {
                Launch::Failed(msg)
            });
        }
        let Some(pid) = pid else {
            let _ = child.kill();
            wait_child(&mut child, STOP_TIMEOUT);
            return Err(Launch::Failed(format!(
                "krb5kdc did not start within {START_TIMEOUT:?}: {}",
                log_text.trim()
            )));
        };
        self.pid = pid;
        self.child = Some(child);
        Ok(())
    }

    /// Environment and umask for every Kerberos tool started here.
    fn prepare(&self, cmd: &mut Command) {
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        for k in [
            "KRB5CCNAME",
            "KRB5_KTNAME",
            "KRB5_CLIENT_KTNAME",
            "KRB5_TRACE",
        ] {
            cmd.env_remove(k);
        }
        // SAFETY: umask(2) is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                umask(Mode::from_bits_truncate(0o077));
                Ok(())
            });
        }
    }

    /// Runs a short-lived tool with stdout/stderr in files, killing it after [`TOOL_TIMEOUT`].
    fn run_tool(
        &self,
        mut cmd: Command,
        stdin: Option<&str>,
        name: &str,
    ) -> Result<ToolOutput, String> {
        let out_path = self.dir.join(format!("{name}.out"));
        let err_path = self.dir.join(format!("{name}.err"));
        let out =
            fs::File::create(&out_path).map_err(|e| format!("could not create {name}.out: {e}"))?;
        let err =
            fs::File::create(&err_path).map_err(|e| format!("could not create {name}.err: {e}"))?;
        self.prepare(&mut cmd);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(out).stderr(err);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("could not run {name}: {e}"))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())
                .map_err(|e| format!("could not feed {name}: {e}"))?;
        }
        let status_ok = match wait_status(&mut child, TOOL_TIMEOUT) {
            Some(status) => status.success(),
            None => {
                let _ = child.kill();
                wait_child(&mut child, STOP_TIMEOUT);
                return Err(format!("{name} did not finish within {TOOL_TIMEOUT:?}"));
            }
        };
        Ok(ToolOutput {
            status_ok,
            stdout: fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: fs::read_to_string(&err_path).unwrap_or_default(),
        })
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Paths of the MIT server tools.
#[derive(Debug)]
struct Tools {
    krb5kdc: PathBuf,
    kdb5_util: PathBuf,
    kadmin_local: PathBuf,
}

impl Tools {
    fn find() -> Result<Tools, String> {
        let find = |name: &str| {
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path)
                .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
                .map(|d| d.join(name))
                .find(|p| p.is_file())
                .ok_or_else(|| format!("{name} not found in PATH or /usr/sbin: {INSTALL_HINT}"))
        };
        Ok(Tools {
            krb5kdc: find("krb5kdc")?,
            kdb5_util: find("kdb5_util")?,
            kadmin_local: find("kadmin.local")?,
        })
    }
}

struct ToolOutput {
    status_ok: bool,
    stdout: String,
    stderr: String,
}

enum Launch {
    PortBusy(String),
    Failed(String),
}

/// Removes the database, keytabs and pidfile of an earlier realm in `dir`, so a directory
/// can be reused. A KDC still running from it is not touched (it is not ours to stop).
fn remove_stale_realm(dir: &Path) -> Result<(), String> {
    let entries =
        fs::read_dir(dir).map_err(|e| format!("could not list '{}': {e}", dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = name.starts_with("principal")
            || name.ends_with(".keytab")
            || ["stash", "kdc.pid", "kdc.log"].contains(&name.as_str());
        if stale {
            fs::remove_file(entry.path())
                .map_err(|e| format!("could not remove '{}': {e}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// A port that is free for both UDP and TCP on 127.0.0.1 right now.
fn free_port() -> Result<u16, String> {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0")
            .map_err(|e| format!("could not bind a UDP port: {e}"))?;
        let port = udp
            .local_addr()
            .map_err(|e| format!("no local address: {e}"))?
            .port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err("could not find a free port on 127.0.0.1".to_string())
}

/// `client-<principal with unsafe characters replaced>.keytab`, never hidden, never a path.
fn keytab_file_name(princ: &str) -> String {
    let safe: String = princ
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("client-{safe}.keytab")
}

/// Principals end up on kadmin command lines: allow only a conservative character set.
fn check_principal(princ: &str) -> Result<(), String> {
    let ok = !princ.is_empty()
        && !princ.starts_with('/')
        && princ
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "unsupported principal name '{princ}' (give it without realm)"
        ))
    }
}

fn check_path_word(dir: &Path) -> Result<(), String> {
    let s = dir
        .to_str()
        .ok_or_else(|| format!("KDC dir '{}' is not UTF-8", dir.display()))?;
    if s.chars()
        .any(|c| c.is_whitespace() || "\"'#;\\".contains(c))
    {
        return Err(format!(
            "KDC dir '{s}' contains characters kadmin cannot quote"
        ));
    }
    Ok(())
}

fn check_conf_value(v: &str) -> Result<(), String> {
    if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == ':') {
        return Err(format!("bad KDC setting '{v}'"));
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("could not write '{}': {e}", path.display()))
}

fn private_file(path: &Path) -> Result<(), String> {
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("keytab '{}' missing or not chmod-able: {e}", path.display()))
}

/// Waits until `child` exits or `timeout` passes; true if it was reaped.
fn wait_child(child: &mut Child, timeout: Duration) -> bool {
    wait_status(child, timeout).is_some()
}

/// Waits until `child` exits (its status, reaped) or `timeout` passes
/// (`None`). A helper thread blocks in `waitid(WNOWAIT)`, which sees the exit
/// without reaping, and says so on a channel the caller waits on with the
/// timeout. After a timeout the thread ends when the caller kills and reaps.
pub(crate) fn wait_status(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    let pid = Pid::from_raw(child.id() as i32);
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("child-exit".into())
        .spawn(move || {
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
            while waitid(Id::Pid(pid), flags) == Err(nix::errno::Errno::EINTR) {}
            let _ = tx.send(());
        })
        .ok()?;
    rx.recv_timeout(timeout).ok()?;
    child.try_wait().ok().flatten()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
