//! `bench_outage [BINARY] [--backend test|openbao] [--credentials N]
//! [--outage-seconds S] [--due-after-seconds D] [--latency-ms L]
//! [--recovery-limit-seconds R] [--steady-seconds T]`: the outage benchmark
//! of issue 17 §2.
//!
//! Runs the credmon (default `target/release/robot-credmon`) over N
//! credentials (default 1,000: N/5 users x 5 services, each `.top` with its
//! own Vault token) until every `.use` is written, then takes Vault down for
//! S seconds (default 600) while every credential falls due D seconds
//! (default S/3) into the outage, brings Vault back and measures:
//!
//! 1. during the outage: the most requests Vault saw at once, the tries per
//!    credential (all of them, the most for one credential, and how many
//!    credentials tried twice within half a backoff base, i.e. faster than
//!    any backoff step allows);
//! 2. after it: how long until every credential had a new `.use` (the
//!    target is 30 s, not the 5-minute backoff cap), how many `.use` had
//!    expired by then, and the most requests at once while catching up.
//!
//! With `--steady-seconds T` (test Vault only) it first counts the reads of
//! T seconds of normal running after the fill, as reads per hour per 1,000
//! credentials (the Vault load; scale T and `CREDMON_OAUTH_TOKEN_REFRESH`
//! together to see the default in less than an hour), and `--outage-seconds 0`
//! skips the outage.
//!
//! Backends: `test`, the in-process test Vault (`tests/support`), down as
//! a sealed Vault (every request answered 503 after `--latency-ms`, default
//! 20); `openbao`, the three-node OpenBao cluster of `tests/it/ha.rs` behind
//! one name in a private `/etc/hosts`, down as every node killed (connection
//! refused), back as every node restarted and unsealed. The test Vault
//! counts requests itself; with OpenBao the tries are counted from the
//! credmon's log (its lines about failed tries) and requests at once are
//! not measured. Knobs for experiments pass through as `_CONDOR_*`
//! variables (e.g. `_CONDOR_ROBOT_CREDMON_MAX_IN_FLIGHT=16`,
//! `_CONDOR_ROBOT_CREDMON_BACKOFF_BASE=10`). Must run as root. Prints one
//! line per measure, `name<TAB>value`.

// A benchmark: real programs in real time.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "../tests/support/credd.rs"]
mod credd;

use credd::Credd;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::hosts::{PrivateHosts, with_private_hosts};
use support::openbao_ha::BaoCluster;
use support::{Fault, TestEnv};

const SERVICES: [&str; 5] = [
    "igwn_robot",
    "igwn_robot_a",
    "igwn_robot_b",
    "igwn_c",
    "igwn_d",
];
/// `CREDMON_OAUTH_TOKEN_MINIMUM`'s default: a `.use` with less left is due.
const MINIMUM: u64 = 2400;
const NAME: &str = "vault.ha.example";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_outage: error: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Opts {
    bin: PathBuf,
    openbao: bool,
    n: usize,
    outage: Duration,
    due_after: Duration,
    latency: Duration,
    recovery_limit: Duration,
    steady: Duration,
}

fn opts() -> Result<Opts, String> {
    let mut o = Opts {
        bin: PathBuf::from("target/release/robot-credmon"),
        openbao: false,
        n: 1000,
        outage: Duration::from_secs(600),
        due_after: Duration::ZERO,
        latency: Duration::from_millis(20),
        recovery_limit: Duration::from_secs(900),
        steady: Duration::ZERO,
    };
    let mut due = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = || -> Result<u64, String> {
            args.next()
                .ok_or(format!("{a} needs a value"))?
                .parse()
                .map_err(|_| format!("{a}: a number"))
        };
        match a.as_str() {
            "--backend" => {
                o.openbao = match args.next().as_deref() {
                    Some("test") => false,
                    Some("openbao") => true,
                    _ => return Err("--backend test|openbao".into()),
                }
            }
            "--credentials" => o.n = num()? as usize,
            "--outage-seconds" => o.outage = Duration::from_secs(num()?),
            "--due-after-seconds" => due = Some(Duration::from_secs(num()?)),
            "--latency-ms" => o.latency = Duration::from_millis(num()?),
            "--recovery-limit-seconds" => o.recovery_limit = Duration::from_secs(num()?),
            "--steady-seconds" => o.steady = Duration::from_secs(num()?),
            _ => o.bin = PathBuf::from(a),
        }
    }
    o.due_after = due.unwrap_or(o.outage / 3);
    if !o.outage.is_zero() && o.due_after >= o.outage {
        return Err("--due-after-seconds must be less than --outage-seconds".into());
    }
    Ok(o)
}

fn report(name: &str, value: impl std::fmt::Display) {
    println!("{name}\t{value}");
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The credentials: (user, service).
fn keys(n: usize) -> Vec<(String, &'static str)> {
    (0..n)
        .map(|i| {
            (
                format!("user{}", i / SERVICES.len()),
                SERVICES[i % SERVICES.len()],
            )
        })
        .collect()
}

/// What the outage and the recovery do to the backend, and what it counted.
trait Backend {
    /// Vault goes down.
    fn down(&mut self) -> Result<(), String>;
    /// Vault comes back; returns when it serves again.
    fn up(&mut self) -> Result<(), String>;
    /// The most requests at once since the last call, if the backend counts them.
    fn max_in_flight(&self) -> Option<usize>;
    /// Tries per Vault token between `from` and `to`, if the backend counts them.
    fn tries(&self, from: Instant, to: Instant) -> Option<HashMap<String, Vec<Instant>>>;
    /// Reads between `from` and `to`, if the backend counts them.
    fn reads(&self, from: Instant, to: Instant) -> Option<usize> {
        self.tries(from, to).map(|t| t.values().map(Vec::len).sum())
    }
}

struct TestBackend<'a> {
    env: &'a TestEnv,
    latency: Duration,
}

impl Backend for TestBackend<'_> {
    fn down(&mut self) -> Result<(), String> {
        self.env
            .vault
            .inject(Fault::sealed().after(self.latency).permanent());
        Ok(())
    }

    fn up(&mut self) -> Result<(), String> {
        self.env.vault.clear_faults();
        Ok(())
    }

    fn max_in_flight(&self) -> Option<usize> {
        Some(self.env.vault.take_max_in_flight())
    }

    fn tries(&self, from: Instant, to: Instant) -> Option<HashMap<String, Vec<Instant>>> {
        let mut by: HashMap<String, Vec<Instant>> = HashMap::new();
        for r in self.env.vault.requests() {
            if r.started >= from && r.started < to && r.path.starts_with("/v1/secret/") {
                by.entry(r.vault_token.unwrap_or_default())
                    .or_default()
                    .push(r.started);
            }
        }
        Some(by)
    }
}

struct BaoBackend<'a> {
    bao: &'a mut BaoCluster,
    api: support::openbao::Api,
    users: Vec<String>,
}

impl Backend for BaoBackend<'_> {
    fn down(&mut self) -> Result<(), String> {
        // oauthapp hands out a new token when less than the minimum is left;
        // the KV stand-in hands out what it holds: new tokens for after the
        // outage, stored while Vault is still up (the credmon reads them only
        // once they are due, by then Vault is down).
        self.bao
            .put_credentials(&self.api, &self.users, &|u: &str| {
                jwt(u, unix_now() + 3 * 3600)
            })?;
        for i in 0..3 {
            self.bao.kill(i);
        }
        Ok(())
    }

    fn up(&mut self) -> Result<(), String> {
        for i in 0..3 {
            self.bao.start_node(i)?;
        }
        self.bao.wait_leader(Duration::from_secs(60)).map(|_| ())
    }

    fn max_in_flight(&self) -> Option<usize> {
        None
    }

    fn tries(&self, _: Instant, _: Instant) -> Option<HashMap<String, Vec<Instant>>> {
        None
    }
}

/// A running credmon, stopped by pid when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0.id() as i32), Signal::SIGTERM);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(bin: &Path, dir: &Path, credd: &Credd, ca: &Path, port: u16) -> Result<Running, String> {
    Command::new(bin)
        .arg("credmon")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("_CONDOR_SEC_CREDENTIAL_DIRECTORY_OAUTH", &credd.dir)
        .env("_CONDOR_CREDMON_OAUTH_LOG", dir.join("CredMonOAuthLog"))
        .env("_CONDOR_AUTH_SSL_CLIENT_CAFILE", ca)
        .env(
            "_CONDOR_ROBOT_CREDMON_ALLOWED_VAULT_PORTS",
            port.to_string(),
        )
        .envs(std::env::vars().filter(|(k, _)| k.starts_with("_CONDOR_")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Running)
        .map_err(|e| format!("cannot start the credmon: {e}"))
}

/// `exp` of a `.use`, if it holds a JWT.
fn use_exp(path: &Path) -> Option<i64> {
    use base64::prelude::*;
    let text = std::fs::read_to_string(path).ok()?;
    let payload = text.trim().split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&BASE64_URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims["exp"].as_i64()
}

fn wait(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// The credmon's lines about a failed try of `<user>/<service>`, by credential, with their times.
fn log_tries(log: &str) -> HashMap<String, Vec<f64>> {
    let mut by: HashMap<String, Vec<f64>> = HashMap::new();
    for line in log.lines() {
        // "failed to refresh <key>: ..." or "Vault at ... is failing (...);
        // keeping the old .use of <key>, its credentials wait for the server".
        let key = if let Some(rest) = line.split("failed to refresh ").nth(1) {
            rest.split(':').next()
        } else if let Some(rest) = line.split("keeping the old .use of ").nth(1) {
            rest.split(',').next()
        } else {
            continue;
        };
        let key = key.unwrap_or_default().to_owned();
        // "MM/DD/YY HH:MM:SS.mmm LEVEL ...": seconds of the day.
        let t = line
            .split_whitespace()
            .nth(1)
            .and_then(|hms| {
                let v: Vec<f64> = hms.split(':').filter_map(|x| x.parse().ok()).collect();
                (v.len() == 3).then(|| v[0] * 3600.0 + v[1] * 60.0 + v[2])
            })
            .unwrap_or(0.0);
        by.entry(key).or_default().push(t);
    }
    by
}

/// Tries per credential: (all, the most for one, credentials with two tries
/// within `close` of each other).
fn summarise(tries: &[Vec<f64>], close: f64) -> (usize, usize, usize) {
    let all = tries.iter().map(Vec::len).sum();
    let most = tries.iter().map(Vec::len).max().unwrap_or(0);
    let fast = tries
        .iter()
        .filter(|t| {
            let mut t = (*t).clone();
            t.sort_by(|a, b| a.total_cmp(b));
            t.windows(2).any(|w| w[1] - w[0] < close)
        })
        .count();
    (all, most, fast)
}

/// Fill, outage, recovery: the measures.
fn measure(
    o: &Opts,
    dir: &Path,
    credd: &Credd,
    keys: &[(String, &str)],
    credmon: impl FnOnce() -> Result<Running, String>,
    backend: &mut dyn Backend,
) -> Result<(), String> {
    let all_use = || {
        keys.iter()
            .filter(|(u, s)| credd.use_path(u, s).exists())
            .count()
    };
    let t0 = Instant::now();
    let _cm = credmon()?;
    if !wait(Duration::from_secs(600), || all_use() == keys.len()) {
        return Err(format!(
            "fill: {} of {} .use after 600 s",
            all_use(),
            keys.len()
        ));
    }
    report("fill s", format!("{:.2}", t0.elapsed().as_secs_f64()));
    let fill_exp = keys
        .iter()
        .filter_map(|(u, s)| use_exp(&credd.use_path(u, s)))
        .max()
        .unwrap_or(0);
    if !o.steady.is_zero() {
        let t = Instant::now();
        std::thread::sleep(o.steady);
        if let Some(reads) = backend.reads(t, Instant::now()) {
            let per_hour = reads as f64 * 3600.0 / o.steady.as_secs_f64();
            report("reads in the steady phase", reads);
            report(
                "reads per hour per 1,000 credentials (steady)",
                format!("{:.0}", per_hour * 1000.0 / keys.len() as f64),
            );
        }
    }
    if o.outage.is_zero() {
        return Ok(());
    }
    let log = dir.join("CredMonOAuthLog");
    let log_mark = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) as usize;
    let _ = backend.max_in_flight();
    let down = Instant::now();
    backend.down()?;
    report("outage s", o.outage.as_secs());
    std::thread::sleep(o.outage);
    let outage_in_flight = backend.max_in_flight();
    let up_start = Instant::now();
    backend.up()?;
    let up = Instant::now();
    let up_wall = unix_now();
    report(
        "Vault back after s (restart)",
        format!("{:.2}", up.duration_since(up_start).as_secs_f64()),
    );
    let expired = keys
        .iter()
        .filter(|(u, s)| use_exp(&credd.use_path(u, s)).is_none_or(|e| e <= up_wall))
        .count();
    let fresh =
        |(u, s): &(String, &str)| use_exp(&credd.use_path(u, s)).is_some_and(|e| e > fill_exp);
    let done = wait(o.recovery_limit, || keys.iter().all(fresh));
    let recovered = up.elapsed();
    let left = keys.iter().filter(|k| !fresh(k)).count();
    report("expired .use when Vault came back", expired);
    report(
        "recovery s (Vault back -> every credential refreshed)",
        if done {
            format!("{:.2}", recovered.as_secs_f64())
        } else {
            format!("> {:.0} ({left} not refreshed)", recovered.as_secs_f64())
        },
    );
    report(
        "recovery within 30 s",
        if done && recovered <= Duration::from_secs(30) {
            "yes"
        } else {
            "no"
        },
    );
    if let Some(n) = outage_in_flight {
        report("most requests at once during the outage", n);
    }
    if let Some(n) = backend.max_in_flight() {
        report("most requests at once during the recovery", n);
    }
    let base = std::env::var("_CONDOR_ROBOT_CREDMON_BACKOFF_BASE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(10.0);
    if let Some(by) = backend.tries(down, up) {
        let tries: Vec<Vec<f64>> = by
            .values()
            .map(|v| {
                v.iter()
                    .map(|t| t.duration_since(down).as_secs_f64())
                    .collect()
            })
            .collect();
        let (all, most, fast) = summarise(&tries, base / 2.0);
        report("Vault reads during the outage (server)", all);
        report(
            "reads per credential during the outage (server)",
            format!("{:.2} (most {most})", all as f64 / keys.len() as f64),
        );
        report(
            "credentials tried twice within half a backoff base (server)",
            fast,
        );
    }
    let text = std::fs::read(&log).unwrap_or_default();
    let outage_log = String::from_utf8_lossy(text.get(log_mark..).unwrap_or_default());
    let by = log_tries(&outage_log);
    let tries: Vec<Vec<f64>> = by.into_values().collect();
    let (all, most, fast) = summarise(&tries, base / 2.0);
    report("failed tries after the outage began (credmon log)", all);
    report(
        "failed tries per credential (credmon log)",
        format!("{:.2} (most {most})", all as f64 / keys.len() as f64),
    );
    report(
        "credentials tried twice within half a backoff base (credmon log)",
        fast,
    );
    report("due after s", o.due_after.as_secs());
    Ok(())
}

fn run() -> Result<(), String> {
    let o = opts()?;
    if !nix::unistd::geteuid().is_root() {
        return Err("run as root".into());
    }
    let keys = keys(o.n);
    report("credentials", keys.len());
    report("backend", if o.openbao { "openbao" } else { "test" });
    if o.openbao {
        return openbao(&o, &keys);
    }
    let lifetime = MINIMUM + o.due_after.as_secs();
    let env = TestEnv::start_with(|c| {
        c.log_limit = 2_000_000;
        c.jwt_lifetime = lifetime;
    })?;
    let credd = Credd::new(&env.path().join("oauth_credentials"));
    let url = env.creds_url();
    for (u, s) in &keys {
        let token = env.provision_token(86400);
        credd.store(u, s, &Credd::vault_top(Some(&token), &url));
    }
    let mut backend = TestBackend {
        env: &env,
        latency: o.latency,
    };
    report("latency of the outage answers ms", o.latency.as_millis());
    let dir = env.path().to_owned();
    measure(
        &o,
        &dir,
        &credd,
        &keys,
        || spawn(&o.bin, &dir, &credd, env.vault.ca_file(), env.vault.port()),
        &mut backend,
    )
}

/// An unsigned JWT for `sub` expiring at `exp` (the KV stand-in's access tokens).
fn jwt(sub: &str, exp: i64) -> String {
    use base64::prelude::*;
    let h = BASE64_URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let p = BASE64_URL_SAFE_NO_PAD.encode(serde_json::json!({"sub": sub, "exp": exp}).to_string());
    format!("{h}.{p}.c2lnbmF0dXJl")
}

/// The OpenBao cluster behind one name, in a private `/etc/hosts`.
fn openbao(o: &Opts, keys: &[(String, &'static str)]) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = tmp.path().to_owned();
    with_private_hosts(&dir.clone(), move |hosts: &PrivateHosts| {
        let nodes = [4, 5, 6].map(|l| IpAddr::V4(Ipv4Addr::new(127, 0, 0, l)));
        hosts.set(NAME, &nodes);
        let kdc = support::Kdc::start(&dir.join("kdc"), &[], &[&format!("host/{NAME}")])?;
        let mut bao = BaoCluster::start(&dir.join("bao"), &kdc, NAME, nodes, &[])?;
        let (leader, _) = bao.wait_leader(Duration::from_secs(30))?;
        let api = bao.api(leader)?;
        bao.read_policy(&api, "credmon-read")?;
        let mut users: Vec<String> = keys.iter().map(|(u, _)| u.clone()).collect();
        users.dedup();
        // Tokens for the fill that fall due D seconds from now.
        let due = unix_now() + (MINIMUM + o.due_after.as_secs()) as i64;
        bao.put_credentials(&api, &users, &|u: &str| jwt(u, due))?;
        let tokens = bao.tokens(&api, &["credmon-read"], keys.len())?;
        let credd = Credd::new(&dir.join("oauth_credentials"));
        for ((u, s), t) in keys.iter().zip(tokens) {
            let url = format!("{}/v1/secret/oauth/creds/igwn/{u}:robot", bao.url());
            credd.store(u, s, &Credd::vault_top(Some(&t), &url));
        }
        let (ca, port) = (bao.ca_file().to_owned(), bao.port);
        let mut backend = BaoBackend {
            bao: &mut bao,
            api,
            users,
        };
        measure(
            o,
            &dir,
            &credd,
            keys,
            || spawn(&o.bin, &dir, &credd, &ca, port),
            &mut backend,
        )
    })?
}
