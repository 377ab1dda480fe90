//! The seeded schedule of events: every event, its time and its
//! parameters follow from the seed alone, so one seed replays the same
//! schedule (the credmon's own timing is real, so its answers may differ).

use std::time::Duration;

/// What happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The credd stores a new credential (and kicks the credmon), or
    /// `delete-oauth` removes one; biased to keep the population near N.
    Churn,
    /// The credd stores a new `.top` (new Vault token) over a live one; no kick.
    Replace,
    /// The credd kicks the credmon many times within 200 ms.
    HupStorm,
    /// The credd's mark-and-sweep removes a user's whole directory.
    Sweep,
    /// `kill -9` of the credmon; condor_master restarts it after its backoff.
    Kill,
    /// `condor_restart -subsystem CREDMON_OAUTH`: SIGTERM, restart after 1 s.
    Term,
    /// Vault answers 503 "Vault is sealed" to everything.
    Vault503,
    /// Vault answers 429 with `Retry-After: 5` to everything.
    Vault429,
    /// Bearer reads take 1-3 s (below the 10 s request timeout).
    VaultSlow,
    /// Bearer reads take 12 s (beyond the 10 s request timeout).
    VaultStall,
    /// Vault is down: connections refused, open ones cut.
    VaultDown,
    /// The credential directory's file system is full.
    DiskFull,
}

impl Kind {
    /// Faults of Vault: one at a time.
    pub fn is_vault(self) -> bool {
        matches!(
            self,
            Kind::Vault503 | Kind::Vault429 | Kind::VaultSlow | Kind::VaultStall | Kind::VaultDown
        )
    }

    /// The name in logs and reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Churn => "churn",
            Kind::Replace => "replace",
            Kind::HupStorm => "sighup-storm",
            Kind::Sweep => "sweep",
            Kind::Kill => "kill-9",
            Kind::Term => "sigterm",
            Kind::Vault503 => "vault-503",
            Kind::Vault429 => "vault-429",
            Kind::VaultSlow => "vault-slow",
            Kind::VaultStall => "vault-stall",
            Kind::VaultDown => "vault-down",
            Kind::DiskFull => "disk-full",
        }
    }
}

/// Relative weights of the kinds (per drawn event).
pub const WEIGHTS: [(Kind, f64); 12] = [
    (Kind::Churn, 32.0),
    (Kind::Replace, 22.0),
    (Kind::HupStorm, 18.0),
    (Kind::Sweep, 2.0),
    (Kind::Kill, 1.0),
    (Kind::Term, 1.0),
    (Kind::Vault503, 0.5),
    (Kind::Vault429, 0.6),
    (Kind::VaultSlow, 0.4),
    (Kind::VaultStall, 0.3),
    (Kind::VaultDown, 0.5),
    (Kind::DiskFull, 0.4),
];

/// Events start after this warm-up (the first pass of 300 credentials).
pub const WARM_UP: Duration = Duration::from_secs(20);
/// No event starts in the last part of the run; faults end before it.
pub const QUIET_TAIL: Duration = Duration::from_secs(60);

/// One scheduled event.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// When, from the start of the run.
    pub at: Duration,
    pub kind: Kind,
    /// How long a fault lasts (zero for instant events).
    pub dur: Duration,
    /// The slower Vault's delay (VaultSlow, VaultStall).
    pub delay: Duration,
    /// Seed of the event's own choices (which credential, how many SIGHUPs).
    pub seed: u64,
}

/// condor_master's restart delay after `restarts` unexpected exits since
/// the daemon last ran `MASTER_RECOVER_FACTOR` (300 s):
/// `MASTER_BACKOFF_CONSTANT` (9) + ceil(`MASTER_BACKOFF_FACTOR` (2) ^ restarts),
/// capped by `MASTER_BACKOFF_CEILING` (3600) (`masterDaemon.cpp`, `NextStart`).
pub fn master_delay(restarts: u32) -> Duration {
    let s = 9.0 + 2f64.powi(restarts.min(30) as i32).ceil();
    Duration::from_secs_f64(s.min(3600.0))
}

/// Uptime after which condor_master forgets earlier restarts.
pub const MASTER_RECOVER: Duration = Duration::from_secs(300);

/// Delay of a restart condor_master was asked for (`condor_restart`: 1 s).
pub const MASTER_COMMAND_DELAY: Duration = Duration::from_secs(1);

fn secs(rng: &mut fastrand::Rng, lo: f64, hi: f64) -> Duration {
    Duration::from_secs_f64(lo + rng.f64() * (hi - lo))
}

/// A kind drawn by weight among the allowed ones (`None`: none is).
fn pick(rng: &mut fastrand::Rng, allowed: impl Fn(Kind) -> bool) -> Option<Kind> {
    let total: f64 = WEIGHTS
        .iter()
        .filter(|(k, _)| allowed(*k))
        .map(|w| w.1)
        .sum();
    let mut x = rng.f64() * total;
    let mut last = None;
    for (k, w) in WEIGHTS.iter().filter(|(k, _)| allowed(*k)) {
        if x < *w {
            return Some(*k);
        }
        x -= w;
        last = Some(*k);
    }
    last
}

/// The model of the credmon's process the schedule keeps, so that a kill
/// is never drawn while condor_master is still waiting to restart it.
struct MasterModel {
    up_at: Duration,
    restarts: u32,
}

impl MasterModel {
    fn stopped(&mut self, at: Duration, by_command: bool) {
        let uptime = at.saturating_sub(self.up_at);
        if by_command || uptime >= MASTER_RECOVER {
            self.restarts = 0;
        }
        let delay = if by_command {
            MASTER_COMMAND_DELAY
        } else {
            master_delay(self.restarts)
        };
        if !by_command {
            self.restarts += 1;
        }
        self.up_at = at + delay;
    }
}

/// The kind named `name`.
pub fn kind_named(name: &str) -> Option<Kind> {
    WEIGHTS.iter().map(|w| w.0).find(|k| k.name() == name)
}

/// The schedule for `seed` over a run of `total`: an event every 1-5 s
/// (uniform), at most one Vault fault and one full disk at a time, no kill
/// while the credmon is down, nothing in the last [`QUIET_TAIL`], no event
/// of the kinds `without`.
pub fn generate(seed: u64, total: Duration, without: &[Kind]) -> Vec<Event> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = Vec::new();
    let mut t = WARM_UP;
    let mut vault_free = Duration::ZERO;
    let mut disk_free = Duration::ZERO;
    let mut master = MasterModel {
        up_at: Duration::ZERO,
        restarts: 0,
    };
    let end = total.saturating_sub(QUIET_TAIL);
    while t < end {
        t += secs(&mut rng, 1.0, 5.0);
        let kind = pick(&mut rng, |k| {
            !(without.contains(&k)
                || k.is_vault() && t < vault_free
                || k == Kind::DiskFull && t < disk_free
                || matches!(k, Kind::Kill | Kind::Term)
                    && t < master.up_at + Duration::from_secs(2))
        });
        let Some(kind) = kind else {
            // Nothing allowed now (a run of faults only): a quiet moment.
            continue;
        };
        let (dur, delay) = match kind {
            Kind::Vault503 => (secs(&mut rng, 3.0, 90.0), Duration::ZERO),
            Kind::Vault429 => (secs(&mut rng, 2.0, 30.0), Duration::ZERO),
            Kind::VaultSlow => (secs(&mut rng, 10.0, 60.0), secs(&mut rng, 1.0, 3.0)),
            Kind::VaultStall => (secs(&mut rng, 15.0, 60.0), Duration::from_secs(12)),
            Kind::VaultDown if rng.f64() < 0.15 => (secs(&mut rng, 150.0, 300.0), Duration::ZERO),
            Kind::VaultDown => (secs(&mut rng, 5.0, 120.0), Duration::ZERO),
            Kind::DiskFull => (secs(&mut rng, 10.0, 90.0), Duration::ZERO),
            _ => (Duration::ZERO, Duration::ZERO),
        };
        let seed = rng.u64(..);
        if t + dur >= end {
            break;
        }
        if kind.is_vault() {
            vault_free = t + dur + Duration::from_secs(5);
        }
        if kind == Kind::DiskFull {
            disk_free = t + dur + Duration::from_secs(5);
        }
        if matches!(kind, Kind::Kill | Kind::Term) {
            master.stopped(t, kind == Kind::Term);
        }
        out.push(Event {
            at: t,
            kind,
            dur,
            delay,
            seed,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_and_faults_never_overlap() {
        let a = generate(7, Duration::from_secs(3600), &[]);
        let b = generate(7, Duration::from_secs(3600), &[]);
        let c = generate(7, Duration::from_secs(3600), &[Kind::Kill]);
        assert!(c.iter().all(|e| e.kind != Kind::Kill));
        assert_eq!(a.len(), b.len());
        let mut vault_end = Duration::ZERO;
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((x.at, x.kind, x.seed), (y.at, y.kind, y.seed));
            if x.kind.is_vault() {
                assert!(x.at >= vault_end);
                vault_end = x.at + x.dur;
            }
        }
        assert_eq!(master_delay(0), Duration::from_secs(10));
        assert_eq!(master_delay(3), Duration::from_secs(17));
    }
}
