//! `get` under cron in the simulation: the real `get::run_with` every 5
//! minutes or every hour (by seed) for simulated days, its token files on
//! the simulated file system, against the world's Vault and KDC with the
//! same kinds of faults as the credmon's simulation. Invariants:
//!
//! * **G1** after a run where Vault, the KDC and the disk were fine, the
//!   token file has more than `--minsecs` left (by Vault's clock, allowing
//!   for the host clock's skew);
//! * **G2** the token file is never partial or empty, and never replaced by
//!   a token that expires sooner;
//! * **G3** the saved Vault token is renewed before it expires: after a
//!   run where Vault was fine, it has at least `--vaulttokenminttl` left;
//! * **G4** a credential that needs a person is reported (exit 4, with the
//!   command) at the first run that asks Vault for it.

use super::check::Violation;
use super::world::{self, Mode, Vault};
use super::{Report, Stats};
use clap::Parser;
use robot_credmon::cli::IgwnRobotGet;
use robot_credmon::env::{Clock, Env, Mono};
use robot_credmon::files::simfs::{self, Op, SimFs};
use robot_credmon::get;
use robot_credmon::token::BearerToken;
use robot_credmon::vault::ServerAddress;
use robot_credmon::vault::api::{Api, Connector};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A fault built into `get`'s runs on purpose, to see its invariant caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetMutant {
    /// G1: cron runs `get` with `--minsecs 60` (the checker expects 3600).
    TinyMinsecs,
    /// G2: the token file is overwritten with half a token once.
    PartialToken,
    /// G3: `--vaulttokenminttl 1s`: the saved token is never renewed early.
    NoTokenRenewal,
    /// G4: Vault's "refresh failed" comes back as a 503.
    HiddenNeedsPerson,
}

/// One run's settings.
#[derive(Debug, Clone)]
pub struct GetParams {
    /// The seed.
    pub seed: u64,
    /// Simulated days.
    pub days: u32,
    /// A fault built in on purpose.
    pub mutant: Option<GetMutant>,
}

const MINSECS: u64 = 3600;
const MIN_TTL: Duration = Duration::from_secs(86_400);
const H: u64 = 3600;
const DAY: u64 = 86_400;

/// The world as a `get` connector (the credmon's simulated API).
struct Connect(Arc<dyn Api>);

impl Connector for Connect {
    fn connect(
        &self,
        _: &ServerAddress,
        _: Option<&str>,
        _: &robot_credmon::vault::api::Trust,
        _: &robot_credmon::vault::Limits,
    ) -> Result<Arc<dyn Api>, robot_credmon::vault::VaultError> {
        Ok(self.0.clone())
    }
}

/// What went on at a moment, for the invariants' excuses.
#[derive(Debug, Clone, Copy, Default)]
struct Troubles {
    vault: bool,
    kdc: bool,
    disk: bool,
}

/// Runs `get` under cron for one seed.
pub fn run_get(p: &GetParams) -> Report {
    fastrand::seed(p.seed);
    let mut rng = fastrand::Rng::with_seed(p.seed ^ 0x6e7);
    let epoch_secs = 1_767_225_600 + rng.i64(0..365 * 86_400);
    let origin = UNIX_EPOCH + Duration::from_secs(epoch_secs.unsigned_abs());
    let clock = Clock::manual(origin);
    let euid = nix::unistd::geteuid().as_raw();
    let fs = SimFs::new(clock.clone(), Duration::from_millis(4), euid, 0, 0o755);
    let prefix = PathBuf::from(format!("/robot-credmon-sim-get/{}", p.seed));
    simfs::mount(&prefix, fs.clone());
    if let Ok(d) = fs.mkdir(fs.root(), "home", 0o700) {
        let _ = fs.chown(d, euid, 0);
    }
    let home = prefix.join("home");
    let keytabs = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary directory: {e}"));
    let keytab = keytabs.path().join("robot.keytab");
    write_keytab(&keytab, 1);
    let lifetime = Duration::from_secs([3 * H, 6 * H][rng.usize(0..2)]);
    let vault = Arc::new(Vault::new(
        p.seed,
        epoch_secs,
        lifetime,
        Duration::from_secs(10),
    ));
    vault.set_keys("robot", 1, 1);
    let every = Duration::from_secs([300, 3600][rng.usize(0..2)]);
    let mut sim = GetSim {
        p: p.clone(),
        rng,
        clock: clock.clone(),
        fs,
        home,
        keytab,
        keytabs,
        vault: vault.clone(),
        violations: Vec::new(),
        stats: Stats::default(),
        last_exp: None,
        reported: None,
        every,
        events: Vec::new(),
        troubles: Troubles::default(),
        needs_person: false,
        skew: 0,
    };
    sim.schedule();
    sim.main_loop();
    sim.stats.requests = vault.requests();
    sim.stats.digest = sim.digest();
    simfs::unmount_all();
    Report {
        params: super::Params {
            seed: p.seed,
            days: p.days,
            credentials: 1,
            mutant: None,
        },
        violations: sim.violations,
        stats: sim.stats,
    }
}

/// A change of the world at a time (seconds since the start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    Vault(u16, u64),
    VaultUp,
    KdcDown(u64),
    KdcUp,
    Rotate(u64),
    Install,
    Revoke,
    NeedsPerson(u64),
    PersonLoggedIn,
    DiskFull(u64),
    DiskOk,
    Crash(u64),
    Step(i64),
    Journal,
    Mutate,
}

impl Ev {
    /// The event's name in the counts.
    fn kind(self) -> &'static str {
        match self {
            Ev::Vault(0, _) => "vault-down",
            Ev::Vault(..) => "vault-failing",
            Ev::VaultUp => "vault-up",
            Ev::KdcDown(_) => "kdc-down",
            Ev::KdcUp => "kdc-up",
            Ev::Rotate(_) => "keytab-rotated",
            Ev::Install => "keytab-installed",
            Ev::Revoke => "vault-token-revoked",
            Ev::NeedsPerson(_) => "needs-person",
            Ev::PersonLoggedIn => "person-logged-in",
            Ev::DiskFull(_) => "disk-full",
            Ev::DiskOk => "disk-ok",
            Ev::Crash(_) => "crash",
            Ev::Step(_) => "clock-step",
            Ev::Journal => "journal",
            Ev::Mutate => "mutate",
        }
    }
}

struct GetSim {
    p: GetParams,
    rng: fastrand::Rng,
    clock: Clock,
    fs: Arc<SimFs>,
    home: PathBuf,
    keytab: PathBuf,
    keytabs: tempfile::TempDir,
    vault: Arc<Vault>,
    violations: Vec<Violation>,
    stats: Stats,
    /// The token file's `exp` as last seen, and as last reported written.
    last_exp: Option<i64>,
    reported: Option<i64>,
    every: Duration,
    /// Pending events, latest first (popped from the end).
    events: Vec<(u64, Ev)>,
    troubles: Troubles,
    needs_person: bool,
    /// The host clock's offset from Vault's, seconds.
    skew: i64,
}

impl GetSim {
    fn violate(&mut self, invariant: &'static str, what: String) {
        if self.violations.len() < 100 {
            self.violations.push(Violation {
                invariant,
                at_secs: self.clock.mono().as_duration().as_secs(),
                what,
            });
        }
    }

    /// A digest of what was observed, equal for equal runs.
    fn digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.stats.requests.hash(&mut h);
        self.stats.writes.hash(&mut h);
        self.stats.crashes.hash(&mut h);
        self.last_exp.hash(&mut h);
        for v in &self.violations {
            v.what.hash(&mut h);
            v.at_secs.hash(&mut h);
        }
        for f in self.fs.files() {
            f.0.hash(&mut h);
            f.1.hash(&mut h);
        }
        h.finish()
    }

    fn schedule(&mut self) {
        let total = u64::from(self.p.days) * DAY;
        let days = f64::from(self.p.days);
        let r = &mut self.rng;
        let mut plan: Vec<(u64, Ev)> = Vec::new();
        let n = |per_day: f64, r: &mut fastrand::Rng| ((per_day * days) * (0.5 + r.f64())) as u64;
        for _ in 0..n(0.3, r) {
            let len = [30, 600, 3 * H, DAY][r.usize(0..4)];
            plan.push((r.u64(0..total), Ev::Vault(0, len / 2 + r.u64(0..len))));
        }
        for _ in 0..n(2.0, r) {
            let code = [502, 503, 504, 429, 1][r.usize(0..5)];
            plan.push((r.u64(0..total), Ev::Vault(code, r.u64(5..1800))));
        }
        for _ in 0..n(0.3, r) {
            plan.push((r.u64(0..total), Ev::KdcDown(r.u64(10..4 * H))));
        }
        for _ in 0..n(0.05, r) {
            plan.push((r.u64(0..total), Ev::Rotate(r.u64(0..2 * H))));
        }
        for _ in 0..n(0.1, r) {
            plan.push((r.u64(0..total), Ev::Revoke));
        }
        for _ in 0..n(0.05, r) {
            plan.push((r.u64(0..total), Ev::NeedsPerson(r.u64(H..2 * DAY))));
        }
        for _ in 0..n(0.2, r) {
            plan.push((r.u64(0..total), Ev::DiskFull(r.u64(60..2 * H))));
        }
        for _ in 0..n(0.3, r) {
            plan.push((r.u64(0..total), Ev::Crash(r.u64(0..30))));
        }
        for _ in 0..n(0.2, r) {
            let t = r.u64(0..total);
            plan.push((t, Ev::Step(r.i64(-300..300))));
            plan.push((t + r.u64(60..DAY), Ev::Step(0)));
        }
        let mut t = 5;
        while t < total {
            plan.push((t, Ev::Journal));
            t += 5;
        }
        if self.p.mutant.is_some() {
            plan.push((total / 4, Ev::Mutate));
        }
        plan.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
        self.events = plan;
    }

    fn main_loop(&mut self) {
        let total = u64::from(self.p.days) * DAY;
        let mut next_run = 0u64;
        while next_run < total {
            while let Some(&(t, ev)) = self.events.last() {
                if t > next_run {
                    break;
                }
                self.events.pop();
                self.clock.advance_to(Mono::ZERO + Duration::from_secs(t));
                self.apply(ev, t);
            }
            self.clock
                .advance_to(Mono::ZERO + Duration::from_secs(next_run));
            self.run_once();
            self.stats.steps += 1;
            next_run += self.every.as_secs();
        }
    }

    fn wall_now(&self) -> i64 {
        // Vault's clock: the world's true time.
        self.vault.epoch_secs
            + i64::try_from(self.clock.mono().as_duration().as_secs()).unwrap_or(i64::MAX)
    }

    fn apply(&mut self, ev: Ev, t: u64) {
        if ev != Ev::Journal {
            log::debug!(target: "sim", "{t} s: {ev:?}");
            *self.stats.events.entry(ev.kind()).or_insert(0) += 1;
        }
        let at = |d: u64| t + d;
        let mut later = Vec::new();
        match ev {
            Ev::Vault(code, secs) if !self.troubles.vault => {
                self.troubles.vault = true;
                self.vault.set_mode(match code {
                    0 => Mode::Down,
                    1 => Mode::Hanging,
                    429 => Mode::Limiting(1 + self.rng.u64(0..60)),
                    c => Mode::Failing(c),
                });
                later.push((at(secs), Ev::VaultUp));
            }
            Ev::Vault(..) => {}
            Ev::VaultUp => {
                self.troubles.vault = false;
                self.vault.set_mode(Mode::Up);
            }
            Ev::KdcDown(secs) if !self.troubles.kdc => {
                self.troubles.kdc = true;
                self.vault.set_kdc(false);
                later.push((at(secs), Ev::KdcUp));
            }
            Ev::KdcDown(_) => {}
            Ev::KdcUp => {
                self.troubles.kdc = false;
                self.vault.set_kdc(true);
            }
            Ev::Rotate(after) if !self.troubles.kdc => {
                let (kdc, tab) = self.vault.keys("robot");
                self.vault.set_keys("robot", kdc + 1, tab);
                self.troubles.kdc = true;
                later.push((at(after), Ev::Install));
            }
            Ev::Rotate(_) => {}
            Ev::Install => {
                let (kdc, _) = self.vault.keys("robot");
                write_keytab(&self.keytab, kdc);
                self.vault.set_keys("robot", kdc, kdc);
                self.troubles.kdc = false;
            }
            Ev::Revoke => self.vault.revoke("robot"),
            Ev::NeedsPerson(secs) if !self.needs_person => {
                self.needs_person = true;
                self.vault.set_needs_person("robot", true);
                later.push((at(secs), Ev::PersonLoggedIn));
            }
            Ev::NeedsPerson(_) => {}
            Ev::PersonLoggedIn => {
                self.needs_person = false;
                self.vault.set_needs_person("robot", false);
            }
            Ev::DiskFull(secs) if !self.troubles.disk => {
                self.troubles.disk = true;
                self.fs
                    .fail_next(Op::Write, nix::errno::Errno::ENOSPC, u32::MAX);
                later.push((at(secs), Ev::DiskOk));
            }
            Ev::DiskFull(_) => {}
            Ev::DiskOk => {
                self.troubles.disk = false;
                self.fs.fail_next(Op::Write, nix::errno::Errno::ENOSPC, 0);
            }
            Ev::Crash(ops) => self.fs.crash_after(ops),
            Ev::Step(s) => {
                self.clock
                    .step_wall(i128::from(s - self.skew) * 1_000_000_000);
                self.skew = s;
            }
            Ev::Journal => self.fs.commit_metadata(),
            Ev::Mutate => self.mutate(),
        }
        for e in later {
            let i = self.events.partition_point(|(t, _)| *t > e.0);
            self.events.insert(i, e);
        }
    }

    fn mutate(&mut self) {
        if self.p.mutant == Some(GetMutant::PartialToken)
            && let Some(bytes) = self.read_token_bytes()
        {
            let fs = &self.fs;
            if let Ok(dir) = fs.open_path(Path::new("home")) {
                let _ = fs.unlink(dir, "bt_u1000");
                if let Ok(f) = fs.create(dir, "bt_u1000", 0o600) {
                    let _ = fs.write(f, &bytes[..bytes.len() / 2]);
                }
            }
            self.observe(false, None);
        }
    }

    fn read_token_bytes(&self) -> Option<Vec<u8>> {
        let fs = &self.fs;
        let dir = fs.open_path(Path::new("home")).ok()?;
        let f = fs.open(dir, "bt_u1000", false).ok()?;
        fs.read(f).ok()
    }

    fn saved_vault_token(&self) -> Option<String> {
        let fs = &self.fs;
        let dir = fs.open_path(Path::new("home")).ok()?;
        let f = fs.open(dir, "vt_u1000", false).ok()?;
        let bytes = fs.read(f).ok()?;
        Some(String::from_utf8_lossy(&bytes).trim().to_owned())
    }

    /// The token file as read now: checks G2 and returns its `exp`.
    fn observe(&mut self, after_crash: bool, reported: Option<i64>) -> Option<i64> {
        let bytes = self.read_token_bytes()?;
        let ok = !bytes.is_empty()
            && bytes.last() == Some(&b'\n')
            && bytes.iter().filter(|b| **b == b'\n').count() == 1;
        let exp = if ok {
            BearerToken::from_bytes(&bytes)
                .ok()
                .and_then(|t| t.claims().exp)
        } else {
            None
        };
        let Some(exp) = exp else {
            self.violate("G2", "the token file is partial or not a token".into());
            return None;
        };
        if let Some(old) = self.last_exp
            && exp < old
            && !after_crash
        {
            self.violate(
                "G2",
                format!("the token file now expires {} s sooner", old - exp),
            );
        }
        if after_crash
            && let Some(r) = self.reported
            && exp < r
        {
            self.violate(
                "G2",
                "after a crash the token file is older than reported".into(),
            );
        }
        self.last_exp = Some(exp);
        if reported.is_some() {
            self.reported = self.reported.max(reported);
        }
        Some(exp)
    }

    fn argv(&self) -> Vec<OsString> {
        let minsecs = if self.p.mutant == Some(GetMutant::TinyMinsecs) {
            60
        } else {
            MINSECS
        };
        let mut v: Vec<OsString> = vec![
            "igwn-robot-get".into(),
            "-k".into(),
            self.keytab.clone().into(),
            "-a".into(),
            world::SERVER.into(),
            "-o".into(),
            self.home.join("bt_u1000").into(),
            "--vaulttokenfile".into(),
            self.home.join("vt_u1000").into(),
            "--minsecs".into(),
            minsecs.to_string().into(),
            "--retry-time".into(),
            "0s".into(),
        ];
        if self.p.mutant == Some(GetMutant::NoTokenRenewal) {
            v.extend(["--vaulttokenminttl".into(), "1s".into()]);
        }
        v.push("robot@SIM.ORG".into());
        v
    }

    fn run_once(&mut self) {
        let before = self.observe(false, None);
        let host_now = robot_credmon::token::unix_seconds(self.clock.now());
        let asks = before.is_none_or(|e| e - host_now <= i64::try_from(MINSECS).unwrap_or(0));
        let troubles = self.troubles;
        let crash_armed = self.fs.is_down();
        let argv = self.argv();
        let args = match IgwnRobotGet::try_parse_from(&argv) {
            Ok(a) => a.args,
            Err(e) => {
                self.violate("G1", format!("the cron line does not parse: {e}"));
                return;
            }
        };
        let env = Env::fixed(
            [("HOME", self.home.display().to_string())],
            nix::unistd::geteuid().as_raw(),
            self.clock.now(),
        )
        .with_clock(self.clock.clone())
        .with_args(argv)
        .with_seed(self.p.seed);
        let api: Arc<dyn Api> = if self.p.mutant == Some(GetMutant::HiddenNeedsPerson) {
            Arc::new(Hide(sim_api(&self.vault, &self.clock)))
        } else {
            Arc::new(sim_api(&self.vault, &self.clock))
        };
        self.vault.take_latency();
        let result = get::run_with(&args, &env, Arc::new(Connect(api)));
        // `get` saw the clock stand still; Vault's answers took this long.
        let host_then = robot_credmon::token::unix_seconds(self.clock.now());
        let latency = self.vault.take_latency();
        self.clock.advance(latency);
        self.stats.writes += u64::from(matches!(result, Ok(get::Outcome::Refreshed { .. })));
        let crashed = self.fs.is_down() || crash_armed;
        if crashed {
            log::debug!(target: "sim", "the host crashed during the run: {result:?}");
            self.stats.crashes += 1;
            let mut keep = fastrand::Rng::with_seed(self.p.seed ^ self.stats.crashes);
            self.fs.crash(|_| keep.bool());
            self.observe(true, None);
            return;
        }
        let reported = match &result {
            Ok(get::Outcome::Refreshed {
                remaining: Some(r), ..
            }) => Some(host_then + r),
            _ => None,
        };
        let exp = self.observe(false, reported);
        let healthy = !troubles.vault
            && !self.troubles.vault
            && !troubles.kdc
            && !troubles.disk
            && !self.troubles.disk
            && !self.needs_person
            && latency < Duration::from_secs(5);
        self.check_run(&result, exp, healthy, asks, latency);
    }

    fn check_run(
        &mut self,
        result: &Result<get::Outcome, get::GetError>,
        exp: Option<i64>,
        healthy: bool,
        asks: bool,
        latency: Duration,
    ) {
        let now = self.wall_now();
        let skew = self.skew.unsigned_abs();
        if healthy {
            let left = exp.map(|e| e - now);
            let enough = left.is_some_and(|l| l.unsigned_abs() + skew > MINSECS && l > 0);
            if result.is_err() || !enough {
                let why = match result {
                    Err(e) => e.to_string(),
                    Ok(_) => format!("{left:?} s left"),
                };
                self.violate(
                    "G1",
                    format!("a run with Vault fine left no token with {MINSECS} s: {why}"),
                );
            }
            if asks && let Some(saved) = self.saved_vault_token() {
                let left = self
                    .vault
                    .token_left(&saved, self.clock.mono())
                    .unwrap_or_default();
                if left + latency + Duration::from_secs(skew + 1) < MIN_TTL {
                    self.violate(
                        "G3",
                        format!(
                            "after a run the saved Vault token has only {} s left",
                            left.as_secs()
                        ),
                    );
                }
            }
        }
        let person_case = self.needs_person
            && asks
            && !self.troubles.vault
            && !self.troubles.kdc
            && !self.troubles.disk;
        if person_case && !matches!(result, Err(e) if e.needs_login()) {
            self.violate(
                "G4",
                format!("a credential that needs a person was not reported as such: {result:?}"),
            );
        }
    }
}

/// The world as the credmon's API.
fn sim_api(vault: &Arc<Vault>, clock: &Clock) -> super::SimApi {
    super::SimApi {
        vault: vault.clone(),
        clock: clock.clone(),
        origin: SystemTime::UNIX_EPOCH,
        requests: Default::default(),
    }
}

/// The G4 mutant: "refresh failed" comes back as a 503.
struct Hide(super::SimApi);

impl Api for Hide {
    fn server(&self) -> String {
        self.0.server()
    }
    fn request_count(&self) -> u32 {
        self.0.request_count()
    }
    fn login_kerberos(
        &self,
        mount: &str,
        source: &robot_credmon::vault::auth::CredentialSource,
        host: &str,
    ) -> Result<robot_credmon::vault::AuthInfo, robot_credmon::vault::api::LoginError> {
        self.0.login_kerberos(mount, source, host)
    }
    fn create_token(
        &self,
        t: &robot_credmon::vault::VaultToken,
        ttl: u64,
    ) -> Result<robot_credmon::vault::AuthInfo, robot_credmon::vault::VaultError> {
        self.0.create_token(t, ttl)
    }
    fn lookup_self_ttl(
        &self,
        t: &robot_credmon::vault::VaultToken,
    ) -> Result<u64, robot_credmon::vault::VaultError> {
        self.0.lookup_self_ttl(t)
    }
    fn read_bearer(
        &self,
        t: &robot_credmon::vault::VaultToken,
        path: &str,
        q: &[(&str, String)],
    ) -> Result<BearerToken, robot_credmon::vault::VaultError> {
        self.0.read_bearer(t, path, q).map_err(|e| match e {
            robot_credmon::vault::VaultError::Status {
                status: 400,
                server,
                path,
                ..
            } => robot_credmon::vault::VaultError::Status {
                server,
                path,
                status: 503,
                errors: vec!["unavailable".into()],
                warnings: vec![],
                retry_after: None,
            },
            e => e,
        })
    }
    fn oidc_auth_url(
        &self,
        a: &str,
        b: &str,
        c: &str,
        d: &str,
    ) -> Result<robot_credmon::vault::OidcStart, robot_credmon::vault::VaultError> {
        self.0.oidc_auth_url(a, b, c, d)
    }
    fn oidc_poll(
        &self,
        a: &str,
        b: &str,
        c: &str,
    ) -> Result<robot_credmon::vault::OidcPoll, robot_credmon::vault::VaultError> {
        self.0.oidc_poll(a, b, c)
    }
    fn store_refresh_token(
        &self,
        t: &robot_credmon::vault::VaultToken,
        a: &str,
        b: &str,
        r: &robot_credmon::vault::RefreshToken,
    ) -> Result<(), robot_credmon::vault::VaultError> {
        self.0.store_refresh_token(t, a, b, r)
    }
}

/// A keytab file for `robot@SIM.ORG` with key version `kvno`.
fn write_keytab(path: &Path, kvno: u32) {
    let bytes = super::keytab_bytes("robot", "SIM.ORG", kvno);
    let tmp = path.with_extension("tmp");
    let written = std::fs::write(&tmp, bytes)
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        panic!("cannot write a keytab for the simulation: {e}");
    }
}
