//! `bench_credmon [BINARY] [--credentials N] [--idle-seconds N] [--latency-ms N] [--dir BASE] [--python VENV_PYTHON:SRC_DIR]`:
//! the credmon benchmark of issues 3, 10 and 16.
//!
//! Starts the test KDC + Vault from `tests/support` in this process (every
//! bearer read delayed by `--latency-ms`, default 20 ms, like a real Vault
//! behind LDAP), fills a credential directory with N/5 users x 5 services
//! (`--credentials N`, default 10,000 `.top` files, each with its own Vault
//! token), then runs the
//! credmon binary (default `target/release/robot-credmon`) and measures:
//!
//! 1. fill: start → `CREDMON_COMPLETE` with all 10,000 `.use` written; CPU per credential;
//! 2. SIGHUP → `.use` for a new credential while idle (10 samples);
//! 3. CPU and context switches (all threads) while idle over `--idle-seconds`
//!    (default 300), once the credmon has gone quiet after the fill (under
//!    2 ms of CPU in half a second: the look at the `.use` files it just
//!    wrote is over);
//! 4. SIGHUP → `.use` for a new credential right after every `.top` was replaced (5 samples);
//! 5. the same after a restart with every `.use` near expiry
//!    (`CREDMON_OAUTH_TOKEN_MINIMUM` 60 s below the token lifetime of 3 h, so
//!    every `.use` written more than a minute ago is due; 5 samples);
//! 6. peak RSS (`VmHWM`).
//!
//! `--python PY:DIR` also runs HTCondor's `condor_credmon_vault` (from DIR,
//! with the interpreter PY that has the `htcondor` bindings) for steps 1 and 2.
//! `--dir BASE` puts the credential directory under BASE. Must run as root
//! (the credmon chowns `.use` files to root). Prints one line per measure,
//! `name<TAB>value`, for scripts/bench-credmon.sh.

// A benchmark and a demo server: real programs in real time.
#![allow(clippy::disallowed_methods)]
// The test support code may unwrap; this benchmark's own code does not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "../tests/support/credd.rs"]
mod credd;

use credd::Credd;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use support::procfs::status_kb;
use support::{Fault, TestEnv};

const SERVICES: [&str; 5] = [
    "igwn_robot",
    "igwn_robot_a",
    "igwn_robot_b",
    "igwn_c",
    "igwn_d",
];

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_credmon: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The credmon under test.
#[derive(Clone)]
enum Subject {
    /// robot-credmon.
    Rust(PathBuf),
    /// HTCondor's Python credmon: interpreter and source directory.
    Python(PathBuf, PathBuf),
}

/// A running credmon, stopped (SIGTERM, then SIGKILL) when dropped, also on errors.
struct Running(Child);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            stop(&mut self.0);
        }
    }
}

fn spawn(
    who: &Subject,
    env: &TestEnv,
    credd: &Credd,
    extra: &[(&str, &str)],
) -> Result<Running, String> {
    let log = env.path().join("CredMonOAuthLog");
    let mut cmd = match who {
        Subject::Rust(bin) => {
            let mut c = Command::new(bin);
            c.arg("credmon");
            c
        }
        Subject::Python(py, dir) => {
            let mut c = Command::new(py);
            c.arg(dir.join("condor_credmon_vault"));
            c
        }
    };
    cmd.env_clear()
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
        // Extra knobs for experiments, e.g. _CONDOR_ROBOT_CREDMON_MAX_IN_FLIGHT=16.
        .envs(std::env::vars().filter(|(k, _)| k.starts_with("_CONDOR_")))
        .envs(
            extra
                .iter()
                .map(|(k, v)| (format!("_CONDOR_{k}"), v.to_string())),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Subject::Python(_, dir) = who {
        // Configuration from the environment only; its modules from the source tree.
        cmd.env("PYTHONPATH", dir)
            .env("CONDOR_CONFIG", "ONLY_ENV")
            .env("_CONDOR_LOG", env.path().display().to_string())
            .env("_CONDOR_LIBEXEC", dir.display().to_string());
    }
    cmd.spawn()
        .map(Running)
        .map_err(|e| format!("cannot start the credmon: {e}"))
}

fn wait_for(path: &Path, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if path.exists() {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    None
}

/// utime + stime in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100);
    Some(ticks as f64 / hz as f64)
}

/// CPU seconds of `pid` and all its descendants (the Python credmon forks a worker).
fn tree_cpu_seconds(pid: u32) -> Option<f64> {
    let mut total = cpu_seconds(pid)?;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Some(total);
    };
    for e in dir.flatten() {
        let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 2..].split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            total += tree_cpu_seconds(child).unwrap_or(0.0);
        }
    }
    Some(total)
}

fn stop(child: &mut Child) {
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    let _ = child.wait();
}

fn sighup_latency(credd: &Credd, url: &str, env: &TestEnv, name: &str) -> Result<Duration, String> {
    let token = env.provision_token(86400);
    credd.store(name, "igwn_robot", &Credd::vault_top(Some(&token), url));
    let t0 = Instant::now();
    credd.kick();
    wait_for(&credd.use_path(name, "igwn_robot"), Duration::from_secs(30))
        .map(|_| t0.elapsed())
        .ok_or_else(|| format!("no .use for {name} within 30 s"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Waits (bounded) for the pid file of `child`.
fn wait_pid(credd: &Credd, child: &Child) -> Result<(), String> {
    let t0 = Instant::now();
    while credd.pid() != Some(child.id() as i32) {
        if t0.elapsed() > Duration::from_secs(10) {
            return Err("no pid file within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// Context switches (voluntary and not) of every thread of `pid`.
/// CPU time of `pid`'s threads in seconds, exact: the scheduler's own
/// account (`/proc/PID/task/*/schedstat`, nanoseconds on the CPU), where
/// `/proc/PID/stat` charges whole clock ticks to whoever runs when one
/// strikes and tripled a 5-minute idle figure that is a few dozen ticks.
/// Threads that exit in between are not counted (none do while idle).
fn run_seconds(pid: u32) -> Option<f64> {
    let mut ns: u64 = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let s = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
        ns += s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Some(ns as f64 / 1e9)
}

/// Waits (at most 60 s) until the fill's pass has ended (`CREDMON_COMPLETE`)
/// and what follows it is over (the first look at the `.use` files just
/// written): the credmon used less than 2 ms of CPU in half a second.
/// Returns how long that took.
fn settle(pid: u32, dir: &Path) -> Result<f64, String> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(60);
    let mut last = run_seconds(pid).ok_or("cannot read /proc schedstat")?;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        let now = run_seconds(pid).ok_or("cannot read /proc schedstat")?;
        if dir.join("CREDMON_COMPLETE").exists() && now - last < 0.002 {
            return Ok(start.elapsed().as_secs_f64());
        }
        last = now;
    }
    Err("the credmon did not go quiet within 60 s of the fill".into())
}

fn context_switches(pid: u32) -> Option<u64> {
    let mut total = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let s = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        for l in s.lines() {
            if l.starts_with("voluntary_ctxt_switches:")
                || l.starts_with("nonvoluntary_ctxt_switches:")
            {
                total += l
                    .split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    Some(total)
}

fn all_use(credd: &Credd, users: usize) -> usize {
    (0..users)
        .flat_map(|u| SERVICES.iter().map(move |s| (u, *s)))
        .filter(|(u, s)| credd.use_path(&format!("user{u}"), s).exists())
        .count()
}

fn report(name: &str, value: String) {
    println!("{name}\t{value}");
}

fn samples(v: &[f64]) -> String {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    format!(
        "median {:.1} max {:.1} ({} samples)",
        median(s.clone()),
        s.last().copied().unwrap_or(0.0),
        s.len()
    )
}

struct Opts {
    subject: Subject,
    python: Option<Subject>,
    idle_secs: u64,
    latency: Duration,
    only_python: bool,
    base: Option<PathBuf>,
    /// User directories (5 credentials each).
    users: usize,
}

fn opts() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    let mut o = Opts {
        subject: Subject::Rust(PathBuf::from("target/release/robot-credmon")),
        python: None,
        idle_secs: 300,
        latency: Duration::from_millis(20),
        only_python: false,
        base: None,
        users: 2000,
    };
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--dir" => o.base = Some(PathBuf::from(value()?)),
            "--idle-seconds" => {
                o.idle_secs = value()?.parse().map_err(|_| "--idle-seconds: a number")?
            }
            "--latency-ms" => {
                o.latency =
                    Duration::from_millis(value()?.parse().map_err(|_| "--latency-ms: a number")?)
            }
            "--only-python" => o.only_python = true,
            "--credentials" => {
                let n: usize = value()?.parse().map_err(|_| "--credentials: a number")?;
                o.users = n.div_ceil(SERVICES.len()).max(1);
            }
            "--python" => {
                let v = value()?;
                let (py, dir) = v.split_once(':').ok_or("--python PY:DIR")?;
                o.python = Some(Subject::Python(py.into(), dir.into()));
            }
            _ => o.subject = Subject::Rust(PathBuf::from(a)),
        }
    }
    Ok(o)
}

/// Fill and idle latency; returns the running child.
fn fill(
    label: &str,
    who: &Subject,
    env: &TestEnv,
    credd: &Credd,
    url: &str,
    users: usize,
) -> Result<Running, String> {
    let complete = credd.dir.join("CREDMON_COMPLETE");
    let _ = std::fs::remove_file(&complete);
    let t0 = Instant::now();
    let mut child = spawn(who, env, credd, &[])?;
    let pid = child.id();
    while !complete.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "{label}: the credmon ended ({status}) before its first pass; run it by hand to see why (the Python credmon's virtual environment needs htcondor, cryptography, requests and urllib3)"
            ));
        }
        if t0.elapsed() > Duration::from_secs(1200) {
            return Err("no CREDMON_COMPLETE within 1200 s".into());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let took = t0.elapsed();
    let n = all_use(credd, users);
    if n < users * SERVICES.len() {
        let log = std::fs::read_to_string(env.path().join("CredMonOAuthLog")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(8).collect();
        return Err(format!(
            "{label}: only {n} .use files after the first pass; the log ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    let cpu = tree_cpu_seconds(pid).unwrap_or(0.0);
    report(
        &format!("{label} fill wall s"),
        format!("{:.2}", took.as_secs_f64()),
    );
    report(&format!("{label} fill CPU s"), format!("{cpu:.2}"));
    report(
        &format!("{label} fill CPU per credential ms"),
        format!("{:.3}", cpu * 1000.0 / n as f64),
    );
    std::thread::sleep(Duration::from_secs(2));
    let mut idle = Vec::new();
    for i in 0..10 {
        idle.push(ms(sighup_latency(
            credd,
            url,
            env,
            &format!("{label}idle{i}"),
        )?));
        std::thread::sleep(Duration::from_millis(200));
    }
    report(&format!("{label} SIGHUP idle ms"), samples(&idle));
    Ok(child)
}

fn run() -> Result<(), String> {
    let o = opts()?;
    if !nix::unistd::geteuid().is_root() {
        return Err("run as root".into());
    }
    let env = TestEnv::start_with(|c| {
        c.log_limit = 10_000;
        c.jwt_lifetime = 10_800;
        // The Python credmon refuses Vault URLs on any port but 8200.
        if o.python.is_some() {
            c.port = 8200;
        }
    })?;
    let cred_dir = match &o.base {
        Some(b) => b.join(format!("bench-oauth-{}", std::process::id())),
        None => env.path().join("oauth_credentials"),
    };
    let credd = Credd::new(&cred_dir);
    let url = env.creds_url();
    eprintln!("creating {} credentials...", o.users * SERVICES.len());
    report("credentials", (o.users * SERVICES.len()).to_string());
    let mut tops = Vec::new();
    for u in 0..o.users {
        for s in SERVICES {
            let token = env.provision_token(86400);
            let top = Credd::vault_top(Some(&token), &url);
            credd.store(&format!("user{u}"), s, &top);
            tops.push((format!("user{u}"), s, top));
        }
    }
    if !o.latency.is_zero() {
        env.vault
            .inject(Fault::delay("/v1/secret/oauth/creds/", o.latency).permanent());
    }
    report("latency ms", format!("{}", o.latency.as_millis()));
    report(
        "serial lower bound s",
        format!("{:.1}", o.latency.as_secs_f64() * tops.len() as f64),
    );

    if !o.only_python {
        robot_credmon(&o, &env, &credd, &url, &tops)?;
    }
    // The Python credmon: fill from nothing and idle latency.
    if let Some(py) = &o.python {
        for (u, s, _) in &tops {
            let _ = std::fs::remove_file(credd.use_path(u, s));
        }
        let mut child = fill("python", py, &env, &credd, &url, o.users)?;
        report(
            "python peak RSS MB",
            format!(
                "{:.1}",
                status_kb(child.id(), "VmHWM:").unwrap_or(0) as f64 / 1024.0
            ),
        );
        stop(&mut child);
    }
    if o.base.is_some() {
        let _ = std::fs::remove_dir_all(&cred_dir);
    }
    Ok(())
}

/// Steps 1 to 6 for robot-credmon.
fn robot_credmon(
    o: &Opts,
    env: &TestEnv,
    credd: &Credd,
    url: &str,
    tops: &[(String, &str, String)],
) -> Result<(), String> {
    // 1-3. Fill, idle latency, idle CPU.
    let mut child = fill("rust", &o.subject, env, credd, url, o.users)?;
    let pid = child.id();
    let fill_rss = status_kb(pid, "VmHWM:").unwrap_or(0);
    report(
        "rust peak RSS after the fill MB",
        format!("{:.1}", fill_rss as f64 / 1024.0),
    );
    report(
        "rust quiet after the fill s",
        format!("{:.1}", settle(pid, &credd.dir)?),
    );
    let c0 = run_seconds(pid).ok_or("cannot read /proc schedstat")?;
    let s0 = context_switches(pid).ok_or("cannot read /proc task status")?;
    std::thread::sleep(Duration::from_secs(o.idle_secs));
    let idle_cpu = run_seconds(pid).ok_or("cannot read /proc schedstat")? - c0;
    let switches = context_switches(pid).ok_or("cannot read /proc task status")? - s0;
    report(
        "rust idle CPU s per 5 min",
        format!("{:.3}", idle_cpu * 300.0 / o.idle_secs as f64),
    );
    report(
        "rust idle context switches per minute",
        format!("{:.1}", switches as f64 * 60.0 / o.idle_secs as f64),
    );

    // 4. Every .top replaced (the credd re-stored everything), then a new credential.
    for (u, s, top) in tops {
        credd.store(u, s, top);
    }
    credd.kick();
    std::thread::sleep(Duration::from_millis(300));
    let mut busy = Vec::new();
    for i in 0..5 {
        busy.push(ms(sighup_latency(
            credd,
            url,
            env,
            &format!("replaced{i}"),
        )?));
        std::thread::sleep(Duration::from_millis(100));
    }
    let pending = tops
        .iter()
        .filter(|(u, s, _)| {
            let (t, us) = (credd.top_path(u, s), credd.use_path(u, s));
            Credd::mtime(&us) <= Credd::mtime(&t)
        })
        .count();
    report("rust SIGHUP all .top replaced ms", samples(&busy));
    report(
        "rust routine refreshes pending after those samples",
        pending.to_string(),
    );
    let rss1 = status_kb(pid, "VmHWM:").unwrap_or(0);
    stop(&mut child);

    // 5. Restart with every .use near expiry.
    let mut child = spawn(
        &o.subject,
        env,
        credd,
        &[("CREDMON_OAUTH_TOKEN_MINIMUM", "10740")],
    )?;
    wait_pid(credd, &child)?;
    std::thread::sleep(Duration::from_secs(2));
    let mut expiring = Vec::new();
    for i in 0..5 {
        expiring.push(ms(sighup_latency(
            credd,
            url,
            env,
            &format!("expiring{i}"),
        )?));
        std::thread::sleep(Duration::from_millis(100));
    }
    let in_pass = !credd.dir.join("CREDMON_COMPLETE").exists();
    report("rust SIGHUP all .use near expiry ms", samples(&expiring));
    report(
        "rust pass still running after those samples",
        in_pass.to_string(),
    );
    let rss2 = status_kb(child.id(), "VmHWM:").unwrap_or(0);
    stop(&mut child);
    report(
        "rust peak RSS MB",
        format!("{:.1} / {:.1}", rss1 as f64 / 1024.0, rss2 as f64 / 1024.0),
    );

    Ok(())
}
