//! `soak [--minutes M] [--seed S] [--credentials N] [--without KIND,..] [--binary PATH] [--out DIR] [--plan]`:
//! the chaos soak of the real credmon (issue 15, part 5; `scripts/soak.sh`).
//!
//! Starts the test KDC + Vault from `tests/support` in this process, with
//! 4-minute bearer tokens, behind a TCP relay that can take Vault down;
//! puts the credential directory on its own 32 MiB tmpfs; stores N
//! credentials (default 300: 60 users x 5 services, each its own Vault
//! credential and Vault token) and runs the release credmon as
//! condor_master would (restarts with the master's backoff, its `pid` file
//! and `CREDMON_COMPLETE`), with `CREDMON_OAUTH_TOKEN_MINIMUM = 60`
//! (`_REFRESH` its default, 30 s; scans every 60 s, the default). Then a
//! seeded event every 1-5 s ([`schedule`]) while a reader checks every
//! `.use` four times a second and a watcher times every new credential.
//! One line a minute (credmon RSS, threads, descriptors, Vault reads);
//! the figures at the end ([`report`]). Exit 0 when every goal is met, 1
//! when not, 2 on a set-up error. Must run as root (tmpfs, root-owned
//! `.use` files). Everything it starts is stopped by pid at the end, also
//! after an error (guards); SIGINT or SIGTERM end the run early, cleanly.

// A soak of real programs in real time.
#![allow(clippy::disallowed_methods)]
// The test support code may unwrap; this program's own code does not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

mod disk;
mod master;
mod proxy;
mod reader;
mod report;
mod schedule;
mod world;

use master::Master;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use schedule::{Event, Kind};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::procfs::status_kb;
use support::{Fault, TestEnv};
use world::{Trouble, World};

/// Bearer token lifetime of the test Vault (seconds).
const JWT_LIFETIME: u64 = 240;
/// `CREDMON_OAUTH_TOKEN_MINIMUM` (seconds).
const TOKEN_MINIMUM: u64 = 60;
/// Lifetime of the stored Vault tokens (28 days, as the storer's).
const VAULT_TOKEN_TTL: u64 = 28 * 86400;

struct Opts {
    minutes: u64,
    seed: u64,
    credentials: usize,
    binary: PathBuf,
    out: Option<PathBuf>,
    /// Print the schedule and exit.
    plan: bool,
    /// Kinds of event left out.
    without: Vec<Kind>,
}

fn opts() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    let mut o = Opts {
        minutes: 60,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000_000),
        credentials: 300,
        binary: PathBuf::from("target/release/robot-credmon"),
        out: None,
        plan: false,
        without: Vec::new(),
    };
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--minutes" => o.minutes = value()?.parse().map_err(|_| "--minutes: a number")?,
            "--seed" => o.seed = value()?.parse().map_err(|_| "--seed: a number")?,
            "--credentials" => {
                o.credentials = value()?.parse().map_err(|_| "--credentials: a number")?
            }
            "--binary" => o.binary = PathBuf::from(value()?),
            "--out" => o.out = Some(PathBuf::from(value()?)),
            "--plan" => o.plan = true,
            "--without" => {
                for n in value()?.split(',') {
                    o.without
                        .push(schedule::kind_named(n).ok_or(format!("--without: no event {n}"))?);
                }
            }
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    if o.minutes < 2 {
        return Err("--minutes: at least 2".into());
    }
    Ok(o)
}

/// Set by SIGINT or SIGTERM: end the run early.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: i32) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("soak: error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Everything the run shares.
struct Soak {
    env: TestEnv,
    world: Arc<World>,
    master: Arc<Master>,
    proxy: proxy::Proxy,
    disk: disk::Tmpfs,
    /// Credentials ever stored as (user, service), never reused.
    used: std::collections::HashSet<(String, &'static str)>,
    next_user: usize,
    target: usize,
    log: std::fs::File,
}

/// Events by kind, as `name count (per hour)`.
fn counts(events: &[Event], minutes: f64) -> String {
    schedule::WEIGHTS
        .iter()
        .map(|(k, _)| {
            let n = events.iter().filter(|e| e.kind == *k).count();
            format!(
                "{} {n} ({:.0}/h)",
                k.name(),
                n as f64 * 60.0 / minutes.max(1.0)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn run() -> Result<bool, String> {
    let o = opts()?;
    if o.plan {
        let total = Duration::from_secs(o.minutes * 60);
        let events = schedule::generate(o.seed, total, &o.without);
        for e in &events {
            println!(
                "{:9.3} {} dur {:.1} s delay {:.1} s seed {}",
                e.at.as_secs_f64(),
                e.kind.name(),
                e.dur.as_secs_f64(),
                e.delay.as_secs_f64(),
                e.seed
            );
        }
        println!("{}", counts(&events, o.minutes as f64));
        return Ok(true);
    }
    if !nix::unistd::geteuid().is_root() {
        return Err(
            "run as root (a tmpfs for the credential directory, root-owned .use files)".into(),
        );
    }
    if !o.binary.is_file() {
        return Err(format!("no credmon binary at {}", o.binary.display()));
    }
    // SIGINT/SIGTERM end the run early but cleanly (children reset the handler at exec).
    let handler = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { sigaction(sig, &handler) }.map_err(|e| e.to_string())?;
    }
    let total = Duration::from_secs(o.minutes * 60);
    let schedule = schedule::generate(o.seed, total, &o.without);
    let out = o
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("target/soak/{}", o.seed)));
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let without = if o.without.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = o.without.iter().map(|k| k.name()).collect();
        format!(" --without {}", names.join(","))
    };
    println!(
        "soak: seed {} ({} events over {} min, {} credentials); replay: scripts/soak.sh --minutes {} --seed {} --credentials {}{without}",
        o.seed,
        schedule.len(),
        o.minutes,
        o.credentials,
        o.minutes,
        o.seed,
        o.credentials
    );
    println!("soak: output in {}", out.display());
    let mut soak = set_up(&o, &out)?;
    let result = drive(&mut soak, &o, &schedule, total, &out);
    let status = soak.master.shutdown();
    println!(
        "soak: credmon stopped: {}",
        status.unwrap_or("not running".into())
    );
    let _ = std::fs::copy(
        soak.env.path().join("CredMonOAuthLog"),
        out.join("CredMonOAuthLog"),
    );
    result
}

fn set_up(o: &Opts, out: &Path) -> Result<Soak, String> {
    let env = TestEnv::start_with(|c| {
        c.jwt_lifetime = JWT_LIFETIME;
        c.log_limit = 50_000;
    })?;
    let disk = disk::Tmpfs::mount(&env.path().join("mnt"), "32m")?;
    let cred_dir = env.path().join("mnt/oauth_credentials");
    std::fs::create_dir(&cred_dir).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&cred_dir, std::fs::Permissions::from_mode(0o2770))
        .map_err(|e| e.to_string())?;
    let proxy = proxy::Proxy::start(env.vault.port())?;
    let world = Arc::new(World::new(world::Clock::start(), &cred_dir));
    let log = std::fs::File::create(out.join("events.log")).map_err(|e| e.to_string())?;
    let mut kdc_env = env.kdc.env();
    kdc_env.extend(
        [
            ("PATH", "/usr/bin:/bin".to_string()),
            (
                "_CONDOR_SEC_CREDENTIAL_DIRECTORY_OAUTH",
                cred_dir.display().to_string(),
            ),
            (
                "_CONDOR_CREDMON_OAUTH_LOG",
                env.path().join("CredMonOAuthLog").display().to_string(),
            ),
            (
                "_CONDOR_AUTH_SSL_CLIENT_CAFILE",
                env.vault.ca_file().display().to_string(),
            ),
            (
                "_CONDOR_ROBOT_CREDMON_ALLOWED_VAULT_PORTS",
                proxy.port().to_string(),
            ),
            (
                "_CONDOR_CREDMON_OAUTH_TOKEN_MINIMUM",
                TOKEN_MINIMUM.to_string(),
            ),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let master = Arc::new(Master::new(
        world.clone(),
        o.binary.clone(),
        kdc_env,
        out.join("credmon.stderr"),
        o.seed,
    ));
    let mut soak = Soak {
        env,
        world,
        master,
        proxy,
        disk,
        used: Default::default(),
        next_user: 0,
        target: o.credentials,
        log,
    };
    for _ in 0..o.credentials.div_ceil(world::SERVICES.len()) {
        let user = soak.new_user();
        for svc in world::SERVICES {
            soak.store_new(&user, svc, false)?;
        }
    }
    Ok(soak)
}

impl Soak {
    fn new_user(&mut self) -> String {
        self.next_user += 1;
        format!("su{}", self.next_user - 1)
    }

    fn url(&self, credkey: &str) -> String {
        format!(
            "https://localhost:{}{}",
            self.proxy.port(),
            support::TestVault::creds_path(TestEnv::ISSUER, credkey, TestEnv::ROLE)
        )
    }

    /// The `.top` of a credential: its own Vault credential, a new Vault token.
    fn top(&self, user: &str, svc: &str) -> String {
        let credkey = format!("{user}-{svc}");
        let token = self.env.vault.provision_token(
            TestEnv::ISSUER,
            TestEnv::ROLE,
            &credkey,
            VAULT_TOKEN_TTL,
        );
        serde_json::json!({"vault_token": token, "vault_url": self.url(&credkey)}).to_string()
    }

    /// The credd stores a new credential; `kick`: and signals the credmon.
    fn store_new(&mut self, user: &str, svc: &'static str, kick: bool) -> Result<(), String> {
        let credkey = format!("{user}-{svc}");
        self.env
            .vault
            .add_credential(TestEnv::ISSUER, &credkey, TestEnv::ROLE);
        let top = self.top(user, svc);
        self.used.insert((user.to_string(), svc));
        match self.world.store_top(user, svc, &top) {
            Ok(()) => {
                let id = self.world.add(user, svc, kick);
                if kick {
                    let sent = self.master.kick();
                    self.note(&format!("new {user}/{svc} (id {id}), kick sent: {sent}"));
                }
                Ok(())
            }
            Err(e) if kick => {
                self.note(&format!("new {user}/{svc}: store failed: {e}"));
                self.world.store_failed(e);
                Ok(())
            }
            Err(e) => Err(format!("cannot store {user}/{svc}: {e}")),
        }
    }

    fn note(&mut self, what: &str) {
        let _ = writeln!(self.log, "{:9.3} {what}", self.world.clock.now());
    }

    /// A live credential picked by `rng` (in id order, so replayable).
    fn pick_live(&self, rng: &mut fastrand::Rng) -> Option<usize> {
        let live = self.world.live();
        (!live.is_empty()).then(|| live[rng.usize(..live.len())].0)
    }

    fn churn(&mut self, rng: &mut fastrand::Rng) {
        let live = self.world.live_count() as f64;
        let p_new = (0.5 + (self.target as f64 - live) / 20.0).clamp(0.1, 0.9);
        if rng.f64() < p_new {
            // A new user, or a service an existing user never had.
            let existing: Vec<String> = {
                let creds = self.world.creds();
                let mut users: Vec<String> = creds
                    .iter()
                    .filter(|c| c.live)
                    .map(|c| c.user.clone())
                    .collect();
                users.sort();
                users.dedup();
                users
                    .into_iter()
                    .filter(|u| {
                        world::SERVICES
                            .iter()
                            .any(|s| !self.used.contains(&(u.clone(), *s)))
                    })
                    .collect()
            };
            let (user, svc) = if rng.f64() < 0.4 && !existing.is_empty() {
                let u = existing[rng.usize(..existing.len())].clone();
                let free: Vec<&'static str> = world::SERVICES
                    .iter()
                    .copied()
                    .filter(|s| !self.used.contains(&(u.clone(), *s)))
                    .collect();
                let s = free[rng.usize(..free.len())];
                (u, s)
            } else {
                let u = self.new_user();
                (u, world::SERVICES[rng.usize(..world::SERVICES.len())])
            };
            let _ = self.store_new(&user, svc, true);
        } else if let Some(id) = self.pick_live(rng) {
            let name = self.world.creds()[id].name();
            self.world.delete(id);
            self.note(&format!("delete {name} (id {id})"));
        }
    }

    fn replace(&mut self, rng: &mut fastrand::Rng) {
        let Some(id) = self.pick_live(rng) else {
            return;
        };
        let c = self.world.creds()[id].clone();
        let top = self.top(&c.user, c.svc);
        match self.world.store_top(&c.user, c.svc, &top) {
            Ok(()) => {
                // The credd signals only when there is no .use.
                let kick = !self.world.use_path(&c).exists() && self.master.kick();
                self.note(&format!("replace {} (id {id}), kick: {kick}", c.name()));
            }
            Err(e) => {
                self.note(&format!("replace {}: store failed: {e}", c.name()));
                self.world.store_failed(e);
            }
        }
    }

    fn sweep(&mut self, rng: &mut fastrand::Rng) {
        if let Some(id) = self.pick_live(rng) {
            let user = self.world.creds()[id].user.clone();
            self.world.sweep(&user);
            self.note(&format!("sweep {user}"));
        }
    }

    fn storm(&mut self, rng: &mut fastrand::Rng) {
        let n = 5 + rng.u32(..46);
        let over = Duration::from_millis(rng.u64(..200));
        let mut sent = 0;
        for k in 0..n {
            if self.master.kick() {
                sent += 1;
            }
            if k + 1 < n {
                std::thread::sleep(over / n);
            }
        }
        self.note(&format!("sighup storm: {sent}/{n} over {over:?}"));
    }

    /// Starts a fault; returns what ends it.
    fn fault(&mut self, e: &Event) -> Option<Ending> {
        let what = match e.kind {
            Kind::Vault503 => {
                self.env.vault.inject(
                    Fault::status("/v1/", 503, r#"{"errors":["Vault is sealed"]}"#).permanent(),
                );
                Trouble::Vault(e.kind.name())
            }
            Kind::Vault429 => {
                self.env.vault.inject(
                    Fault::rate_limited("/v1/")
                        .header("Retry-After", "5")
                        .permanent(),
                );
                Trouble::Vault(e.kind.name())
            }
            Kind::VaultSlow | Kind::VaultStall => {
                self.env
                    .vault
                    .inject(Fault::delay("/v1/secret/oauth/creds/", e.delay).permanent());
                Trouble::Vault(e.kind.name())
            }
            Kind::VaultDown => {
                self.proxy.down();
                Trouble::Vault(e.kind.name())
            }
            Kind::DiskFull => {
                let n = self.disk.fill();
                self.note(&format!("disk full: filler {n} bytes"));
                Trouble::DiskFull
            }
            _ => return None,
        };
        let window = self.world.open(what);
        self.note(&format!(
            "{} for {:.1} s (delay {:?})",
            e.kind.name(),
            e.dur.as_secs_f64(),
            e.delay
        ));
        Some(Ending {
            at: self.world.clock.now() + e.dur.as_secs_f64(),
            kind: e.kind,
            window,
        })
    }

    fn end(&mut self, e: &Ending) -> Result<(), String> {
        match e.kind {
            Kind::VaultDown => self.proxy.up()?,
            Kind::DiskFull => self.disk.free(),
            _ => self.env.vault.clear_faults(),
        }
        self.world.close(e.window);
        self.note(&format!("{} over", e.kind.name()));
        Ok(())
    }

    fn dispatch(&mut self, e: &Event) -> Option<Ending> {
        let mut rng = fastrand::Rng::with_seed(e.seed);
        match e.kind {
            Kind::Churn => self.churn(&mut rng),
            Kind::Replace => self.replace(&mut rng),
            Kind::HupStorm => self.storm(&mut rng),
            Kind::Sweep => self.sweep(&mut rng),
            Kind::Kill | Kind::Term => {
                let done = self.master.stop(e.kind.name());
                self.note(&format!(
                    "{}: {}",
                    e.kind.name(),
                    if done { "sent" } else { "skipped: not running" }
                ));
            }
            _ => return self.fault(e),
        }
        None
    }
}

/// The end of a fault.
struct Ending {
    at: f64,
    kind: Kind,
    window: usize,
}

/// Live credentials whose `.use` is missing or unreadable, or (with
/// `expired`) past its expiry by the world's clock.
fn without_use(soak: &Soak, expired: bool) -> usize {
    soak.world
        .live()
        .iter()
        .filter(|(_, p)| {
            std::fs::read(p)
                .ok()
                .and_then(|b| reader::parse_use(&b))
                .is_none_or(|exp| {
                    expired && soak.world.clock.of_wall(exp) <= soak.world.clock.now()
                })
        })
        .count()
}

/// Waits (bounded) for every initial credential's `.use`.
fn warm_up(soak: &Soak) -> Result<f64, String> {
    let t0 = Instant::now();
    loop {
        soak.master.tick();
        let missing = without_use(soak, false);
        if missing == 0 {
            return Ok(t0.elapsed().as_secs_f64());
        }
        if t0.elapsed() > Duration::from_secs(120) {
            return Err(format!(
                "{missing} credentials have no .use 120 s after the start"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn drive(
    soak: &mut Soak,
    o: &Opts,
    schedule: &[Event],
    total: Duration,
    out: &Path,
) -> Result<bool, String> {
    let took = warm_up(soak)?;
    println!(
        "soak: {} credentials have a .use {took:.1} s after the start; events begin",
        soak.world.live_count()
    );
    // The master's ticks, the reader and the watcher.
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(reader::Seen::default()));
    let threads = {
        let (m, s) = (soak.master.clone(), stop.clone());
        let ticker = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                m.tick();
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let (w, se, s) = (soak.world.clone(), seen.clone(), stop.clone());
        let r = std::thread::spawn(move || reader::reader(w, se, s));
        let (w, se, s) = (soak.world.clone(), seen.clone(), stop.clone());
        let wa = std::thread::spawn(move || reader::watcher(w, se, s));
        [ticker, r, wa]
    };
    let base = soak.world.clock.now();
    let mut next = 0;
    let mut endings: Vec<Ending> = Vec::new();
    let mut answers: Vec<report::Answer> = Vec::new();
    let mut last_answer = Instant::now();
    let mut rss = Vec::new();
    let mut minute = 0u64;
    let mut last_fill = 0.0;
    let mut result = Ok(());
    let mut minutes_log =
        std::fs::File::create(out.join("minutes.log")).map_err(|e| e.to_string())?;
    while soak.world.clock.now() - base < total.as_secs_f64() && !INTERRUPTED.load(Ordering::SeqCst)
    {
        let now = soak.world.clock.now();
        while let Some(e) = schedule
            .get(next)
            .filter(|e| base + e.at.as_secs_f64() <= now)
        {
            next += 1;
            if let Some(end) = soak.dispatch(e) {
                endings.push(end);
            }
        }
        let (due, rest): (Vec<Ending>, Vec<Ending>) =
            endings.into_iter().partition(|e| e.at <= now);
        endings = rest;
        for e in &due {
            if let Err(err) = soak.end(e) {
                result = Err(err);
            }
        }
        if result.is_err() {
            break;
        }
        // Keep a full disk full (the credd's deletions free space).
        if endings.iter().any(|e| e.kind == Kind::DiskFull) && now - last_fill > 0.5 {
            soak.disk.fill();
            last_fill = now;
        }
        for r in soak.env.vault.requests_since(last_answer) {
            last_answer = r.answered;
            answers.push(report::Answer {
                t: soak.world.clock.at(r.answered),
                status: r.status,
                cred: r
                    .path
                    .strip_prefix("/v1/secret/oauth/creds/")
                    .map(str::to_owned),
            });
        }
        if now - base >= (minute + 1) as f64 * 60.0 {
            minute += 1;
            let line = minute_line(soak, minute, now, &answers, &mut rss);
            println!("{line}");
            let _ = writeln!(minutes_log, "{line}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for e in &endings {
        let _ = soak.end(e);
    }
    // The final look: every live credential has a usable .use.
    let final_missing = without_use(soak, true);
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    result?;
    let duration = soak.world.clock.now() - base;
    let mut windows = soak.world.windows();
    for w in &mut windows {
        w.end = w.end.min(soak.world.clock.now());
    }
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    let creds = soak.world.creds().clone();
    let (starts, exits) = (soak.master.starts(), soak.master.exits());
    let (text, details, ok) = report::report(&report::Inputs {
        seen: &seen,
        windows: &windows,
        creds: &creds,
        starts: &starts,
        exits: &exits,
        answers: &answers,
        duration,
        rss: &rss,
    });
    let temp_left = leftovers(&soak.world.cred_dir);
    let store_errors = soak.world.store_errors.lock().map(|e| e.len()).unwrap_or(0);
    let mut text = text;
    text.push_str(&format!(
        "live credentials without a usable .use at the end: {final_missing} (goal 0); credd stores that failed (full disk): {store_errors}; credmon temporary files left: {temp_left}\n"
    ));
    let ok = ok && final_missing == 0;
    let (added, deleted) = {
        let creds = soak.world.creds();
        (
            creds.iter().filter(|c| c.created > base).count(),
            creds.iter().filter(|c| c.deleted.is_some()).count(),
        )
    };
    text.push_str(&format!(
        "events: {}; credentials stored {added}, deleted {deleted}\n",
        counts(&schedule[..next], duration / 60.0)
    ));
    let head = format!(
        "== soak: seed {}, {:.1} min, {} events, {} credentials at the end (target {}): {}\n",
        o.seed,
        duration / 60.0,
        next,
        soak.world.live_count(),
        o.credentials,
        if ok { "all goals met" } else { "GOALS MISSED" }
    );
    print!("{head}{text}");
    if !details.is_empty() {
        println!("findings (also in {}):", out.join("findings.txt").display());
        for l in details.lines().take(40) {
            println!("  {l}");
        }
    }
    let _ = std::fs::write(out.join("report.txt"), format!("{head}{text}"));
    let vault: String = answers
        .iter()
        .map(|a| {
            format!(
                "{:.3} {} {}\n",
                a.t,
                a.status,
                a.cred.as_deref().unwrap_or("-")
            )
        })
        .collect();
    let _ = std::fs::write(out.join("vault.log"), vault);
    let _ = std::fs::write(out.join("findings.txt"), details);
    Ok(ok)
}

/// The minute's line: the credmon's RSS, threads and descriptors; the Vault reads.
fn minute_line(
    soak: &Soak,
    minute: u64,
    now: f64,
    answers: &[report::Answer],
    rss: &mut Vec<report::Sample>,
) -> String {
    let reads = answers
        .iter()
        .rev()
        .take_while(|a| a.t > now - 60.0)
        .filter(|a| a.cred.is_some())
        .count();
    let troubles: Vec<String> = soak
        .world
        .windows()
        .iter()
        .filter(|w| w.end > now - 60.0)
        .map(|w| match w.what {
            Trouble::Vault(k) => k.to_string(),
            Trouble::CredmonDown => "credmon-down".into(),
            Trouble::DiskFull => "disk-full".into(),
        })
        .collect();
    let me = status_kb(std::process::id(), "VmRSS:").unwrap_or(0);
    let credmon = match soak.master.current() {
        Some((pid, up)) => {
            let kb = status_kb(pid, "VmRSS:").unwrap_or(0);
            rss.push((minute, pid, up, kb));
            format!(
                "credmon pid {pid} up {up:.0} s RSS {:.1} MB HWM {:.1} MB threads {} fds {}",
                kb as f64 / 1024.0,
                status_kb(pid, "VmHWM:").unwrap_or(0) as f64 / 1024.0,
                status_kb(pid, "Threads:").unwrap_or(0),
                std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
            )
        }
        None => "credmon not running".into(),
    };
    let live = soak.world.live();
    let unusable = live
        .iter()
        .filter(|(_, p)| {
            std::fs::read(p)
                .ok()
                .and_then(|b| reader::parse_use(&b))
                .is_none_or(|exp| soak.world.clock.of_wall(exp) <= now)
        })
        .count();
    let dirs = std::fs::read_dir(&soak.world.cred_dir)
        .map_or(0, |d| d.flatten().filter(|e| e.path().is_dir()).count());
    format!(
        "[min {minute:3}] {credmon} | live {} ({unusable} without a usable .use), {dirs} user dirs | Vault reads {reads}/min | troubles: {} | soak RSS {:.0} MB",
        live.len(),
        if troubles.is_empty() {
            "none".into()
        } else {
            troubles.join(",")
        },
        me as f64 / 1024.0
    )
}

/// The credmon's temporary files under the credential directory.
fn leftovers(dir: &Path) -> usize {
    let Ok(users) = std::fs::read_dir(dir) else {
        return 0;
    };
    users
        .flatten()
        .filter_map(|u| std::fs::read_dir(u.path()).ok())
        .flat_map(|d| d.flatten())
        .filter(|f| {
            f.file_name()
                .to_string_lossy()
                .contains("robot-credmon-tmp")
        })
        .count()
}
