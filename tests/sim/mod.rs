//! A deterministic simulation of the credmon: the real core (coordinator,
//! scheduler, server health, decisions, `SafeDir` writes and group commits)
//! driven in virtual time, on the in-memory file system
//! (`robot_credmon::files::simfs`), against a modelled Vault, KDC, credd and
//! host, all from one seed. The same seed replays the same run exactly.
//!
//! Included by `examples/simulate.rs` (the command line of
//! `scripts/simulate.sh`) and by `tests/it/sim.rs` (the invariants' own
//! tests: each breaks one on purpose and sees it caught).

#![allow(dead_code)]

pub mod check;
pub mod get;
pub mod world;

use check::{Checker, Violation};
use robot_credmon::credmon::config::{self, Config, knobs::Knobs};
use robot_credmon::credmon::daemon::core::{Job, Worker};
use robot_credmon::credmon::daemon::{Coordinator, Reload, workers};
use robot_credmon::credmon::refresh::{self, Ctx, Fetched};
use robot_credmon::env::{Clock, Env, Mono};
use robot_credmon::files::SafeDir;
use robot_credmon::files::simfs::{self, Op, SimFs};
use robot_credmon::kerberos::KrbError;
use robot_credmon::notify::Systemd;
use robot_credmon::token::BearerToken;
use robot_credmon::vault::api::Api;
use robot_credmon::vault::auth::CredentialSource;
use robot_credmon::vault::{
    AuthInfo, LoginError, OidcPoll, OidcStart, RefreshToken, ServerAddress, VaultError, VaultToken,
};
use std::collections::{BTreeMap, BinaryHeap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use world::{Mode, Vault};

/// A fault built into the system on purpose, to see an invariant caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutant {
    /// I1: the workers stop for two hours.
    StopWorkers,
    /// I2: a `.use` is overwritten in place with half a token.
    PartialUse,
    /// I2: a `.use` is overwritten with a token that expires sooner.
    ShorterToken,
    /// I3: the credd's SIGHUP never arrives.
    NoSighup,
    /// I4: three times as many workers as the in-flight limit allows.
    Stampede,
    /// I5: the credmon is not told where the keytabs are.
    NoKeytabs,
    /// I6: the scanner's table gains a phantom user every minute.
    Leak,
}

/// One run's settings.
#[derive(Debug, Clone)]
pub struct Params {
    /// The seed: everything follows from it.
    pub seed: u64,
    /// Simulated days.
    pub days: u32,
    /// Credentials (one per user).
    pub credentials: usize,
    /// A fault built in on purpose.
    pub mutant: Option<Mutant>,
}

/// What a run counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Vault requests, and those while it was not serving.
    pub requests: (u64, u64),
    /// Events applied, by kind.
    pub events: BTreeMap<&'static str, u64>,
    /// Host crashes.
    pub crashes: u64,
    /// `.use` files the credmon reported writing.
    pub writes: u64,
    /// The most Vault requests at once.
    pub peak_in_flight: usize,
    /// A digest of everything observed, equal for equal runs.
    pub digest: u64,
    /// Steps of the simulation loop.
    pub steps: u64,
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The parameters.
    pub params: Params,
    /// Broken invariants.
    pub violations: Vec<Violation>,
    /// Counts.
    pub stats: Stats,
}

impl Report {
    /// The one command that replays this run.
    pub fn replay(&self) -> String {
        format!(
            "scripts/simulate.sh --seeds 1 --first-seed {} --days {} --credentials {}{}",
            self.params.seed,
            self.params.days,
            self.params.credentials,
            self.params
                .mutant
                .map(|m| format!(" --mutant {m:?}"))
                .unwrap_or_default()
        )
    }
}

/// An event of the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// The credd stores (or replaces) a user's `.top`, then SIGHUPs.
    Store(usize),
    /// The credd removes a user's credential.
    Delete(usize),
    /// Many SIGHUPs at once.
    Hups(u32),
    /// Vault's mood changes for a while (the code of a [`Mode`]; seconds).
    Vault(u16, u64),
    /// Vault is back.
    VaultUp,
    /// A user's Vault tokens are revoked.
    Revoke(usize),
    /// The KDC is down for a while (seconds).
    KdcDown(u64),
    /// The KDC is back.
    KdcUp,
    /// A robot's key is rotated at the KDC; its keytab follows later (seconds).
    Rotate(usize, u64),
    /// The new keytab of a robot is installed.
    Install(usize),
    /// The host goes down after this many file operations.
    Crash(u64),
    /// The disk is full for a while (seconds).
    DiskFull(u64),
    /// The disk has room again.
    DiskOk,
    /// The next fsync fails with EIO.
    Eio,
    /// NTP steps the host's wall clock: it is this many seconds off Vault's
    /// from now on (0: right again).
    Step(i64),
    /// The file system's journal commits directory changes (every 5 s).
    Journal,
    /// Once an hour: I4's rates and I6's sizes.
    Hour,
    /// The mutant acts.
    Mutate,
}

/// An event at a time; the heap pops the earliest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct At(Mono, u64, Ev);

impl Ord for At {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.0, o.1).cmp(&(self.0, self.1))
    }
}

impl PartialOrd for At {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

/// Vault through the world's model: the credmon's [`Api`].
pub(crate) struct SimApi {
    pub(crate) vault: Arc<Vault>,
    pub(crate) clock: Clock,
    pub(crate) origin: SystemTime,
    /// Requests made through it, for `get`'s log line.
    pub(crate) requests: std::sync::atomic::AtomicU32,
}

impl SimApi {
    /// The world's true time (the host's wall clock may be off).
    fn now(&self) -> Mono {
        self.clock.mono()
    }

    /// One request to the modelled Vault: counted; the world's time.
    fn request(&self) -> Mono {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.now()
    }
}

impl Api for SimApi {
    fn server(&self) -> String {
        world::SERVER.into()
    }

    fn read_bearer(
        &self,
        token: &VaultToken,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<BearerToken, VaultError> {
        let minimum = query
            .iter()
            .find(|(k, _)| *k == "minimum_seconds")
            .and_then(|(_, v)| v.parse::<u64>().ok())
            .unwrap_or(0);
        self.vault
            .read_bearer(token, path, Duration::from_secs(minimum), self.request())
    }

    fn request_count(&self) -> u32 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The model's Kerberos login: the keytab's user (its file stem) at the
    /// KDC and Vault; a login token of the model's lifetime (no exchange is
    /// needed: it is the credmon's 28 days).
    fn login_kerberos(
        &self,
        _mount: &str,
        source: &CredentialSource,
        _service_host: &str,
    ) -> Result<AuthInfo, LoginError> {
        let CredentialSource::Keytab {
            keytab, principal, ..
        } = source
        else {
            return Err(LoginError::Kerberos(KrbError::NoTicket(
                "simulation".into(),
            )));
        };
        let user = keytab
            .path()
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let _ = self.origin;
        match self.vault.kerberos_login(&user, self.request()) {
            Ok(l) => Ok(AuthInfo {
                token: l.token,
                lease_duration: Some(self.vault.token_ttl.as_secs()),
                policies: Vec::new(),
                user: None,
            }),
            Err(detail) if detail.starts_with("cannot reach") || detail.contains("answered") => {
                Err(LoginError::Vault(VaultError::Transport {
                    server: world::SERVER.into(),
                    detail,
                }))
            }
            Err(detail) => Err(LoginError::Kerberos(KrbError::Acquire {
                principal: principal.clone(),
                keytab: keytab.path().to_owned(),
                detail,
            })),
        }
    }

    fn create_token(&self, token: &VaultToken, ttl_secs: u64) -> Result<AuthInfo, VaultError> {
        let (token, lease) =
            self.vault
                .create_token(token, Duration::from_secs(ttl_secs), self.request())?;
        Ok(AuthInfo {
            token,
            lease_duration: Some(lease.as_secs()),
            policies: Vec::new(),
            user: None,
        })
    }

    fn lookup_self_ttl(&self, token: &VaultToken) -> Result<u64, VaultError> {
        self.vault.lookup_self_ttl(token, self.request())
    }

    fn oidc_auth_url(
        &self,
        path: &str,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<OidcStart, VaultError> {
        Err(unmodelled(path))
    }

    fn oidc_poll(&self, path: &str, _: &str, _: &str) -> Result<OidcPoll, VaultError> {
        Err(unmodelled(path))
    }

    fn store_refresh_token(
        &self,
        _: &VaultToken,
        path: &str,
        _: &str,
        _: &RefreshToken,
    ) -> Result<(), VaultError> {
        Err(unmodelled(path))
    }
}

/// A request the credmon never makes (the model answers it as an error).
fn unmodelled(path: &str) -> VaultError {
    VaultError::Protocol {
        server: world::SERVER.into(),
        path: path.to_owned(),
        detail: "not in the simulation's model of Vault".into(),
    }
}

/// A worker slot: idle, or busy with a job until its request ends.
struct Slot {
    worker: Worker,
    busy: Option<(Mono, Job, Fetched, Mono)>,
}

/// The credmon as it runs: context, coordinator, worker slots.
struct Credmon {
    ctx: Arc<Ctx>,
    coord: Coordinator,
    slots: Vec<Slot>,
    wake: Mono,
}

/// Everything one run holds.
struct Sim {
    p: Params,
    rng: fastrand::Rng,
    clock: Clock,
    fs: Arc<SimFs>,
    cred_dir: PathBuf,
    keytabs: tempfile::TempDir,
    vault: Arc<Vault>,
    check: Checker,
    events: BinaryHeap<At>,
    seq: u64,
    stats: Stats,
    cfg: Config,
    robots: Vec<bool>,
    stored: Vec<bool>,
    credmon: Option<Credmon>,
    crashed: bool,
    end: Mono,
    reads_day: Mono,
    leak: usize,
    /// How far the host's wall clock is off (nanoseconds).
    skew: i128,
    /// Vault's, the disk's and the KDC's current trouble ends then (a new
    /// one of the same kind meanwhile is skipped: one at a time).
    busy: BTreeMap<&'static str, Mono>,
}

/// Runs one seed.
pub fn run(p: &Params) -> Report {
    let mut sim = Sim::new(p.clone());
    sim.main_loop();
    simfs::unmount_all();
    let stats = sim.finish();
    Report {
        params: p.clone(),
        violations: sim.check.violations,
        stats,
    }
}

const H: u64 = 3600;
const DAY: u64 = 86_400;

fn mono(secs: u64) -> Mono {
    Mono::ZERO + Duration::from_secs(secs)
}

impl Sim {
    fn new(p: Params) -> Self {
        // Temporary-file names come from this thread's generator: seeded, a
        // run replays exactly.
        fastrand::seed(p.seed);
        let mut rng = fastrand::Rng::with_seed(p.seed);
        let epoch_secs = 1_767_225_600 + rng.i64(0..365 * 86_400);
        let origin = UNIX_EPOCH + Duration::from_secs(epoch_secs.unsigned_abs());
        let clock = Clock::manual(origin);
        let euid = nix::unistd::geteuid().as_raw();
        let fs = SimFs::new(clock.clone(), Duration::from_millis(4), euid, 0, 0o755);
        let prefix = PathBuf::from(format!("/robot-credmon-sim/{}", p.seed));
        simfs::mount(&prefix, fs.clone());
        if let Ok(d) = fs.mkdir(fs.root(), "oauth", 0o2770) {
            let _ = fs.chmod(d, 0o2770);
        }
        let cred_dir = prefix.join("oauth");
        let keytabs = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary directory: {e}"));
        // The knobs vary by seed: HTCondor's defaults, or renewal by expiry only.
        let lifetime = Duration::from_secs([3 * H, 3 * H, H, 6 * H][rng.usize(0..4)]);
        let by_expiry = rng.bool();
        let workers = [1usize, 4, 8, 8, 16][rng.usize(0..5)];
        let mut knobs: Knobs = [
            (
                "SEC_CREDENTIAL_DIRECTORY_OAUTH",
                cred_dir.display().to_string(),
            ),
            ("ROBOT_CREDMON_MAX_IN_FLIGHT", workers.to_string()),
            ("ROBOT_CREDMON_CONFINE", "False".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if by_expiry {
            knobs.insert("CREDMON_OAUTH_TOKEN_REFRESH".into(), (30 * DAY).to_string());
        }
        if p.mutant != Some(Mutant::NoKeytabs) {
            knobs.insert(
                "ROBOT_CREDMON_KEYTAB_DIR".into(),
                keytabs.path().display().to_string(),
            );
        }
        let cfg = config::resolve(&knobs, &config::Overrides::default())
            .unwrap_or_else(|e| panic!("the simulation's configuration: {e}"));
        let vault = Arc::new(Vault::new(
            p.seed,
            epoch_secs,
            lifetime,
            cfg.request_timeout,
        ));
        let n = p.credentials;
        let robots: Vec<bool> = (0..n).map(|_| rng.f64() < 0.3).collect();
        let end = mono(u64::from(p.days) * DAY);
        let fill_until = mono(60 + (n as u64 * 40) / (workers as u64 + 1) / 1000 + 60);
        let mut sim = Sim {
            check: Checker::new(epoch_secs, fill_until),
            p,
            rng,
            clock,
            fs,
            cred_dir,
            keytabs,
            vault,
            events: BinaryHeap::new(),
            seq: 0,
            stats: Stats::default(),
            cfg,
            robots,
            stored: vec![false; n],
            credmon: None,
            crashed: false,
            end,
            reads_day: Mono::ZERO,
            leak: 0,
            skew: 0,
            busy: BTreeMap::new(),
        };
        for u in 0..n {
            if sim.robots[u] {
                sim.write_keytab(u, 1);
                sim.vault.set_keys(&user(u), 1, 1);
            }
            sim.store(u);
        }
        sim.schedule_world();
        sim.start_credmon();
        sim
    }

    fn at(&mut self, t: Mono, ev: Ev) {
        self.seq += 1;
        self.events.push(At(t, self.seq, ev));
    }

    /// The whole schedule of the world, from the seed.
    fn schedule_world(&mut self) {
        let n = self.p.credentials;
        let days = u64::from(self.p.days);
        let total = days * DAY;
        let count = |rng: &mut fastrand::Rng, per_day: f64| -> u64 {
            let mean = per_day * days as f64;
            (mean * (0.5 + rng.f64())).round() as u64
        };
        let mut plan: Vec<(u64, Ev)> = Vec::new();
        let r = &mut self.rng;
        // The credd: resubmissions (a new .top), deletions, new users, storms.
        for _ in 0..count(r, n as f64 / 7.0) {
            plan.push((r.u64(60..total.max(61)), Ev::Store(r.usize(0..n.max(1)))));
        }
        for _ in 0..count(r, n as f64 / 60.0) {
            let u = r.usize(0..n.max(1));
            let t = r.u64(60..total.max(61));
            plan.push((t, Ev::Delete(u)));
            plan.push((t + r.u64(60..3 * DAY), Ev::Store(u)));
        }
        for _ in 0..count(r, 3.0) {
            plan.push((r.u64(0..total), Ev::Hups(r.u32(10..200))));
        }
        // Vault: outages from seconds to days, failing and limiting spells, hangs.
        for _ in 0..count(r, 1.0 / 3.0) {
            let len = [5, 60, 600, 3 * H, DAY, 2 * DAY][r.usize(0..6)];
            let len = len / 2 + r.u64(0..len.max(2));
            plan.push((r.u64(0..total), Ev::Vault(0, len)));
        }
        for _ in 0..count(r, 2.0) {
            let code = [502, 503, 504, 429, 1][r.usize(0..5)];
            plan.push((r.u64(0..total), Ev::Vault(code, r.u64(5..1800))));
        }
        for _ in 0..count(r, n as f64 / 100.0) {
            plan.push((r.u64(0..total), Ev::Revoke(r.usize(0..n.max(1)))));
        }
        // Kerberos: the KDC down, keys rotated.
        for _ in 0..count(r, 0.5) {
            plan.push((r.u64(0..total), Ev::KdcDown(r.u64(10..4 * H))));
        }
        for _ in 0..count(r, n as f64 / 300.0) {
            plan.push((
                r.u64(0..total),
                Ev::Rotate(r.usize(0..n.max(1)), r.u64(0..2 * H)),
            ));
        }
        // The host: crashes, a full disk, I/O errors, clock steps.
        for _ in 0..count(r, 0.5) {
            plan.push((r.u64(0..total), Ev::Crash(r.u64(0..200))));
        }
        for _ in 0..count(r, 0.2) {
            plan.push((r.u64(0..total), Ev::DiskFull(r.u64(5..2 * H))));
        }
        for _ in 0..count(r, 1.0) {
            plan.push((r.u64(0..total), Ev::Eio));
        }
        for _ in 0..count(r, 0.2) {
            let t = r.u64(0..total);
            plan.push((t, Ev::Step(r.i64(-600..600))));
            plan.push((t + r.u64(60..DAY), Ev::Step(0)));
        }
        for h in 1..(total / H) {
            plan.push((h * H, Ev::Hour));
        }
        plan.push((5, Ev::Journal));
        if let Some(m) = self.p.mutant {
            let t = match m {
                Mutant::Leak => 0,
                _ => total / 4 + r.u64(0..H),
            };
            plan.push((t, Ev::Mutate));
        }
        for (t, ev) in plan {
            self.at(mono(t), ev);
        }
    }

    fn start_credmon(&mut self) {
        let env = Env::fixed(
            Vec::<(String, String)>::new(),
            nix::unistd::geteuid().as_raw(),
            self.clock.now(),
        )
        .with_clock(self.clock.clone())
        .with_seed(self.p.seed ^ self.stats.crashes);
        let api = Arc::new(SimApi {
            vault: self.vault.clone(),
            requests: Default::default(),
            clock: self.clock.clone(),
            origin: self.clock.now(),
        });
        let ctx = Arc::new(
            Ctx::new(Arc::new(self.cfg.clone()), &env).with_connector(Arc::new(
                move |_: &ServerAddress| -> Arc<dyn Api> { api.clone() },
            )),
        );
        if let Ok(root) = SafeDir::open(&self.cred_dir) {
            let _ = root.remove_stale_temps();
        }
        let coord = Coordinator::new(
            ctx.clone(),
            self.clock.clone(),
            Reload::inline(|| None),
            Systemd::disabled(),
        );
        let mut workers = self.cfg.max_in_flight;
        if self.p.mutant == Some(Mutant::Stampede) {
            workers *= 3;
        }
        let mut slots = vec![Slot {
            worker: Worker::Reserved,
            busy: None,
        }];
        for i in 0..workers {
            slots.push(Slot {
                worker: Worker::Regular(i.min(self.cfg.max_in_flight.saturating_sub(1))),
                busy: None,
            });
        }
        self.credmon = Some(Credmon {
            ctx,
            coord,
            slots,
            wake: self.clock.mono(),
        });
    }

    fn user_dir(&self) -> PathBuf {
        self.cred_dir.clone()
    }

    /// A robot's keytab file with key version `kvno` (one entry).
    fn write_keytab(&self, u: usize, kvno: u32) {
        let path = self.keytabs.path().join(format!("{}.keytab", user(u)));
        let principal = format!("{}/robot.sim", user(u));
        let bytes = keytab_bytes(&principal, "SIM.ORG", kvno);
        let tmp = path.with_extension("tmp");
        let written = std::fs::write(&tmp, bytes)
            .and_then(|()| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            })
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            panic!("cannot write a keytab for the simulation: {e}");
        }
    }

    /// The credd stores `u`'s `.top` (a new Vault token) and SIGHUPs the credmon.
    fn store(&mut self, u: usize) {
        let now = self.clock.mono();
        let token = self.vault.mint_vault_token(&user(u), now);
        let url = format!(
            "{}/v1/secret/oauth/{}",
            world::SERVER,
            world::cred_path(&user(u))
        );
        let body = format!(
            r#"{{"vault_token":"{}","vault_url":"{url}"}}"#,
            token.expose()
        );
        let fs = &self.fs;
        let Ok(root) = fs.open_path(Path::new("oauth")) else {
            return;
        };
        let dir = match fs.open(root, &user(u), true) {
            Ok(d) => d,
            Err(_) => match fs.mkdir(root, &user(u), 0o2700) {
                Ok(d) => d,
                Err(_) => return,
            },
        };
        let tmp = format!(".{}.top.credd", "igwn");
        let _ = fs.unlink(dir, &tmp);
        let written = fs
            .create(dir, &tmp, 0o600)
            .and_then(|f| fs.write(f, body.as_bytes()).map(|()| f))
            .and_then(|f| fs.fsync(f))
            .and_then(|()| fs.rename(dir, &tmp, "igwn.top"));
        if written.is_err() {
            let _ = fs.unlink(dir, &tmp);
            return;
        }
        let new = !self.stored[u];
        self.stored[u] = true;
        let running = self.credmon.is_some();
        self.check.stored(u, self.robots[u], now, new, running);
        if let Some(c) = &self.credmon
            && self.p.mutant != Some(Mutant::NoSighup)
        {
            c.coord.shared.hup();
        }
    }

    /// The credd removes `u`'s credential.
    fn delete(&mut self, u: usize) {
        let fs = &self.fs;
        if let Ok(root) = fs.open_path(Path::new("oauth"))
            && let Ok(dir) = fs.open(root, &user(u), true)
        {
            let _ = fs.unlink(dir, "igwn.top");
            let _ = fs.unlink(dir, "igwn.use");
        }
        self.stored[u] = false;
        self.check.gone(u);
    }

    /// Reads `u`'s `.use` as a starter would.
    fn read_use(&self, u: usize) -> Result<Option<i64>, String> {
        let fs = &self.fs;
        let Ok(root) = fs.open_path(Path::new("oauth")) else {
            return Ok(None);
        };
        let Ok(dir) = fs.open(root, &user(u), true) else {
            return Ok(None);
        };
        let Ok(f) = fs.open(dir, "igwn.use", false) else {
            return Ok(None);
        };
        let bytes = fs.read(f).map_err(|e| format!("cannot be read: {e}"))?;
        if bytes.is_empty() {
            return Err("is empty".into());
        }
        if bytes.last() != Some(&b'\n') || bytes.iter().filter(|b| **b == b'\n').count() != 1 {
            return Err("is not one token and a newline".into());
        }
        BearerToken::from_bytes(&bytes)
            .map(|t| t.claims().exp)
            .map_err(|e| format!("is not a token: {e}"))
    }

    fn has_top(&self, u: usize) -> bool {
        let fs = &self.fs;
        fs.open_path(Path::new("oauth"))
            .and_then(|root| fs.open(root, &user(u), true))
            .and_then(|dir| fs.lookup(dir, "igwn.top"))
            .is_ok()
    }

    fn main_loop(&mut self) {
        let mut same_instant = 0u32;
        let mut last = Mono::ZERO;
        loop {
            let now = self.clock.mono();
            if now >= self.end {
                break;
            }
            if now == last {
                same_instant += 1;
                if same_instant > 100_000 {
                    self.check
                        .violate("I6", now, "the simulation made no progress in time".into());
                    break;
                }
            } else {
                same_instant = 0;
                last = now;
            }
            self.stats.steps += 1;
            self.apply_events(now);
            self.complete(now);
            if self.crashed || self.fs.is_down() {
                self.crash_and_restart(now);
                continue;
            }
            self.coordinate(now);
            let started = self.start_jobs(now);
            self.stats.peak_in_flight = self.stats.peak_in_flight.max(self.vault.peak_in_flight());
            let limit = self.cfg.max_in_flight + 1;
            if self.vault.peak_in_flight() > limit {
                let peak = self.vault.peak_in_flight();
                self.check.violate(
                    "I4",
                    now,
                    format!("{peak} requests at once, over the in-flight limit {limit}"),
                );
                self.vault.reset_peak();
            }
            self.check.step(now);
            if started {
                continue;
            }
            let next = self.next_time(now);
            self.clock
                .advance_to(next.max(now + Duration::from_micros(1)));
        }
    }

    fn next_time(&self, now: Mono) -> Mono {
        let mut next = self.end;
        if let Some(At(t, _, _)) = self.events.peek() {
            next = next.min(*t);
        }
        if let Some(c) = &self.credmon {
            next = next.min(c.wake);
            for s in &c.slots {
                match &s.busy {
                    Some((done, ..)) => next = next.min(*done),
                    None => {
                        let core = c.coord.shared.lock();
                        next = next.min(core.next_look(s.worker, now));
                    }
                }
            }
        }
        let next = match self.check.next_deadline() {
            Some(t) if t > now => next.min(t),
            _ => next,
        };
        if next <= now && std::env::var_os("SIM_DEBUG").is_some() {
            let ev = self.events.peek().map(|a| a.0);
            let c = self.credmon.as_ref().map(|c| {
                let looks: Vec<_> = c
                    .slots
                    .iter()
                    .map(|s| match &s.busy {
                        Some((d, ..)) => format!("busy {d:?}"),
                        None => {
                            format!("look {:?}", c.coord.shared.lock().next_look(s.worker, now))
                        }
                    })
                    .collect();
                (c.wake, looks)
            });
            eprintln!(
                "stuck at {now:?}: event {ev:?} credmon {c:?} check {:?}",
                self.check.next_deadline()
            );
        }
        next
    }

    fn coordinate(&mut self, now: Mono) {
        let Some(c) = &mut self.credmon else {
            return;
        };
        let wanted = c.coord.shared.lock().coordinator_wanted();
        if now >= c.wake || wanted {
            c.wake = c.coord.step().unwrap_or(self.end);
        }
    }

    /// Idle workers take due jobs and send their requests; true when any did.
    fn start_jobs(&mut self, now: Mono) -> bool {
        if self.p.mutant == Some(Mutant::StopWorkers)
            && self.stats.events.contains_key("mutate")
            && now < self.mutated_until()
        {
            return false;
        }
        let Some(c) = &mut self.credmon else {
            return false;
        };
        let mut any = false;
        for s in c.slots.iter_mut() {
            if s.busy.is_some() {
                continue;
            }
            let Some(job) = c.coord.shared.lock().take(s.worker, now) else {
                continue;
            };
            self.vault.take_latency();
            let may_ask = |server: &str| c.coord.shared.lock().may_ask(server, &job, now);
            let fetched = refresh::fetch(&c.ctx, &job.key, &job.task, &may_ask);
            let latency = self.vault.take_latency();
            if latency > Duration::from_millis(500) {
                self.check.slow(now, now + latency);
            }
            s.busy = Some((now + latency, job, fetched, now));
            any = true;
        }
        any
    }

    fn mutated_until(&self) -> Mono {
        mono(u64::from(self.p.days) * DAY / 4 + 3 * H)
    }

    /// Jobs whose requests end now: committed together, then recorded.
    fn complete(&mut self, now: Mono) {
        let Some(c) = &mut self.credmon else {
            return;
        };
        let mut done = Vec::new();
        for s in c.slots.iter_mut() {
            if s.busy.as_ref().is_some_and(|(t, ..)| *t <= now)
                && let Some((_, job, fetched, started)) = s.busy.take()
            {
                done.push((job, fetched, started));
            }
        }
        if done.is_empty() {
            return;
        }
        let users: Vec<(usize, bool)> = done
            .iter()
            .filter_map(|(j, f, _)| {
                user_of(&j.key.user).map(|u| (u, matches!(f, Fetched::Write(_))))
            })
            .collect();
        workers::complete(&c.ctx, &c.coord.shared, done);
        if self.fs.is_down() {
            self.crashed = true;
            return;
        }
        for (u, wrote) in users {
            self.stats.writes += u64::from(wrote);
            let seen = self.read_use(u);
            self.check.observed(u, seen, now, false, wrote);
            self.robot_kept(u, now);
        }
    }

    /// I5: a robot's credential is never removed by the credmon.
    fn robot_kept(&mut self, u: usize, now: Mono) {
        if self.robots[u] && self.stored[u] && !self.has_top(u) {
            self.check.violate(
                "I5",
                now,
                format!("robot user{u}'s credential was removed by the credmon"),
            );
            self.stored[u] = false;
            self.check.gone(u);
        }
        if !self.robots[u] && self.stored[u] && !self.has_top(u) {
            // Its Vault token was refused: HTCondor's rule removes it.
            self.stored[u] = false;
            self.check.gone(u);
        }
    }

    fn crash_and_restart(&mut self, now: Mono) {
        self.stats.crashes += 1;
        self.crashed = false;
        self.credmon = None;
        self.vault.host_down();
        let mut keep = fastrand::Rng::with_seed(self.p.seed ^ (self.stats.crashes << 32));
        self.fs.crash(|_| keep.bool());
        self.check.blip(now);
        for u in 0..self.p.credentials {
            if self.stored[u] {
                if !self.has_top(u) {
                    // The credd's .top write itself was lost: it stores again.
                    self.store(u);
                }
                let seen = self.read_use(u);
                self.check.observed(u, seen, now, true, false);
            }
        }
        self.start_credmon();
    }

    fn apply_events(&mut self, now: Mono) {
        while let Some(At(t, _, ev)) = self.events.peek().copied() {
            if t > now {
                break;
            }
            self.events.pop();
            self.apply(ev, now);
        }
    }

    fn count(&mut self, kind: &'static str) {
        *self.stats.events.entry(kind).or_insert(0) += 1;
    }

    fn apply(&mut self, ev: Ev, now: Mono) {
        if ev != Ev::Journal {
            log::debug!("sim {:.3}: {ev:?}", now.as_duration().as_secs_f64());
        }
        match ev {
            Ev::Store(u) => {
                self.count("store");
                self.store(u);
            }
            Ev::Delete(u) => {
                self.count("delete");
                self.delete(u);
            }
            Ev::Hups(n) => {
                self.count("sighup storm");
                if let Some(c) = &self.credmon {
                    for _ in 0..n {
                        c.coord.shared.hup();
                    }
                }
            }
            Ev::Vault(code, secs) => self.vault_trouble(code, secs, now),
            Ev::VaultUp => {
                self.vault.set_mode(Mode::Up);
                self.check.trouble_ends("vault", now);
            }
            Ev::Revoke(u) => {
                self.count("revoke");
                self.vault.revoke(&user(u));
            }
            Ev::KdcDown(secs) if !self.free("kdc", now, secs) => {}
            Ev::KdcDown(secs) => {
                self.count("kdc down");
                self.vault.set_kdc(false);
                self.check.trouble_begins("kdc", now, true);
                self.at(now + Duration::from_secs(secs), Ev::KdcUp);
            }
            Ev::KdcUp => {
                self.vault.set_kdc(true);
                self.check.trouble_ends("kdc", now);
            }
            Ev::Rotate(u, after) => {
                if self.robots[u] {
                    self.count("key rotation");
                    let (kdc, tab) = self.vault.keys(&user(u));
                    self.vault.set_keys(&user(u), kdc + 1, tab);
                    self.check
                        .trouble_begins(&format!("keytab {}", user(u)), now, true);
                    self.at(now + Duration::from_secs(after), Ev::Install(u));
                }
            }
            Ev::Install(u) => {
                let (kdc, _) = self.vault.keys(&user(u));
                self.write_keytab(u, kdc);
                self.vault.set_keys(&user(u), kdc, kdc);
                self.check.trouble_ends(&format!("keytab {}", user(u)), now);
            }
            Ev::Crash(ops) => {
                self.count("crash");
                self.fs.crash_after(ops);
            }
            Ev::DiskFull(secs) if !self.free("disk", now, secs) => {}
            Ev::DiskFull(secs) => {
                self.count("disk full");
                self.fs
                    .fail_next(Op::Write, nix::errno::Errno::ENOSPC, u32::MAX);
                self.check.trouble_begins("disk", now, false);
                self.at(now + Duration::from_secs(secs), Ev::DiskOk);
            }
            Ev::DiskOk => {
                self.fs.fail_next(Op::Write, nix::errno::Errno::ENOSPC, 0);
                self.check.trouble_ends("disk", now);
            }
            Ev::Eio => {
                self.count("eio");
                self.fs.fail_next(Op::Fsync, nix::errno::Errno::EIO, 1);
                self.check.blip(now);
            }
            Ev::Step(s) => {
                self.count("clock step");
                let to = i128::from(s) * 1_000_000_000;
                self.clock.step_wall(to - self.skew);
                self.skew = to;
            }
            Ev::Hour => self.hourly(now),
            Ev::Journal => {
                self.fs.commit_metadata();
                self.at(now + Duration::from_secs(5), Ev::Journal);
            }
            Ev::Mutate => self.mutate(now),
        }
    }

    /// Whether `what` is free of trouble at `now`; if so it is busy for `secs` from now.
    fn free(&mut self, what: &'static str, now: Mono, secs: u64) -> bool {
        if self.busy.get(what).is_some_and(|until| *until > now) {
            return false;
        }
        self.busy.insert(what, now + Duration::from_secs(secs));
        true
    }

    fn vault_trouble(&mut self, code: u16, secs: u64, now: Mono) {
        if !self.free("vault", now, secs) {
            return;
        }
        let mode = match code {
            0 => Mode::Down,
            1 => Mode::Hanging,
            429 => Mode::Limiting(1 + self.rng.u64(0..60)),
            c => Mode::Failing(c),
        };
        self.count(match mode {
            Mode::Down => "vault down",
            Mode::Hanging => "vault hangs",
            Mode::Limiting(_) => "vault 429",
            _ => "vault 5xx",
        });
        self.vault.set_mode(mode);
        let asked = match mode {
            Mode::Limiting(s) => Duration::from_secs(s),
            _ => Duration::ZERO,
        };
        self.check.trouble_begins_with("vault", now, false, asked);
        self.at(now + Duration::from_secs(secs), Ev::VaultUp);
    }

    /// Once an hour: I6's sizes, and (on quiet days) I4's steady read rate.
    fn hourly(&mut self, now: Mono) {
        let live = self.check.live();
        if let Some(c) = &self.credmon {
            let queued = c.coord.shared.lock().queued();
            let table = c.coord.scanner.table.len();
            let users = c.coord.scanner.table.users().count();
            let nodes = self.fs.node_count();
            let n = self.p.credentials;
            // Nodes: a user directory, its .top and .use, a temporary
            // file or two; unlinked ones are collected in batches of half.
            if queued > n + 10 || table > n + 10 || users > n + 10 || nodes > 2 * (5 * n + 64) {
                self.check.violate(
                    "I6",
                    now,
                    format!(
                        "state grew: {queued} queued, {table} credentials and {users} users in the table, {nodes} file system nodes, for {n} credentials"
                    ),
                );
            }
        }
        let _ = live;
        if secs_of(now).is_multiple_of(DAY) {
            let from = self.reads_day;
            self.reads_day = now;
            let reads = self.vault.take_reads();
            if self.check.quiet(from, now) && self.stats.crashes == 0 || self.check.quiet(from, now)
            {
                let period = self
                    .cfg
                    .refresh
                    .min(
                        self.vault
                            .lifetime
                            .as_secs()
                            .saturating_sub(self.cfg.minimum),
                    )
                    .max(60);
                // A host clock ahead of Vault's costs a few reads per
                // token (Done::Later); steps are part of a quiet day.
                let allowed = 2 * (DAY / period) + 3;
                for (path, n) in reads {
                    if n > allowed {
                        self.check.violate(
                            "I4",
                            now,
                            format!("{n} reads of {path} on a quiet day (the renewal rules call for {allowed})"),
                        );
                    }
                }
            }
        }
    }

    fn mutate(&mut self, now: Mono) {
        self.count("mutate");
        let Some(m) = self.p.mutant else {
            return;
        };
        match m {
            Mutant::PartialUse | Mutant::ShorterToken => {
                let Some(u) = (0..self.p.credentials)
                    .find(|u| self.stored[*u] && self.read_use(*u).ok().flatten().is_some())
                else {
                    return;
                };
                let fs = &self.fs;
                if let Ok(root) = fs.open_path(Path::new("oauth"))
                    && let Ok(dir) = fs.open(root, &user(u), true)
                    && let Ok(f) = fs.open(dir, "igwn.use", false)
                    && let Ok(old) = fs.read(f)
                {
                    let bytes = if m == Mutant::PartialUse {
                        old[..old.len() / 2].to_vec()
                    } else {
                        let exp = self.read_use(u).ok().flatten().unwrap_or(0) - 600;
                        let t = world::jwt("short", exp, exp - 3600);
                        t.file_contents()
                    };
                    let _ = fs.unlink(dir, "igwn.use");
                    if let Ok(f) = fs.create(dir, "igwn.use", 0o400) {
                        let _ = fs.write(f, &bytes);
                    }
                    let seen = self.read_use(u);
                    self.check.observed(u, seen, now, false, false);
                }
            }
            Mutant::Leak => {
                if let Some(c) = &mut self.credmon {
                    for _ in 0..100 {
                        self.leak += 1;
                        c.coord.scanner.table.user(&format!("ghost{}", self.leak));
                    }
                }
                self.at(now + Duration::from_secs(60), Ev::Mutate);
            }
            Mutant::NoKeytabs => {
                // Every robot's Vault token refused: only a keytab login saves them.
                for u in 0..self.p.credentials {
                    if self.robots[u] {
                        self.vault.revoke(&user(u));
                    }
                }
            }
            Mutant::StopWorkers | Mutant::NoSighup | Mutant::Stampede => {}
        }
    }

    fn finish(&mut self) -> Stats {
        self.stats.requests = self.vault.requests();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        use std::hash::{Hash, Hasher};
        self.stats.requests.hash(&mut h);
        self.stats.writes.hash(&mut h);
        self.stats.crashes.hash(&mut h);
        for v in &self.check.violations {
            v.what.hash(&mut h);
            v.at_secs.hash(&mut h);
        }
        for f in self.fs.files() {
            f.0.hash(&mut h);
            f.1.hash(&mut h);
        }
        self.stats.digest = h.finish();
        self.stats.clone()
    }
}

fn secs_of(t: Mono) -> u64 {
    t.as_duration().as_secs()
}

/// The name of user number `u`.
pub fn user(u: usize) -> String {
    format!("user{u}")
}

fn user_of(name: &str) -> Option<usize> {
    name.strip_prefix("user")?.parse().ok()
}

/// A keytab file (format 0x0502) with one entry for `principal@realm`.
pub(crate) fn keytab_bytes(principal: &str, realm: &str, kvno: u32) -> Vec<u8> {
    let mut e = Vec::new();
    let comps: Vec<&str> = principal.split('/').collect();
    e.extend_from_slice(&(comps.len() as u16).to_be_bytes());
    e.extend_from_slice(&(realm.len() as u16).to_be_bytes());
    e.extend_from_slice(realm.as_bytes());
    for c in comps {
        e.extend_from_slice(&(c.len() as u16).to_be_bytes());
        e.extend_from_slice(c.as_bytes());
    }
    e.extend_from_slice(&1u32.to_be_bytes());
    e.extend_from_slice(&0u32.to_be_bytes());
    e.push(kvno as u8);
    e.extend_from_slice(&18u16.to_be_bytes());
    e.extend_from_slice(&32u16.to_be_bytes());
    e.extend_from_slice(&[7u8; 32]);
    e.extend_from_slice(&kvno.to_be_bytes());
    let mut out = vec![5u8, 2];
    out.extend_from_slice(&(e.len() as i32).to_be_bytes());
    out.extend_from_slice(&e);
    out
}
