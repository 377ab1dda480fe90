//! The deterministic simulation (tests/sim): a clean run finds nothing, a
//! seed replays exactly, and each invariant is caught when a fault built in
//! on purpose breaks it.

use crate::sim::get::{GetMutant, GetParams};
use crate::sim::{self, Mutant, Params, Report};

fn run(seed: u64, days: u32, credentials: usize, mutant: Option<Mutant>) -> Report {
    sim::run(&Params {
        seed,
        days,
        credentials,
        mutant,
    })
}

fn caught(report: &Report, invariant: &str) -> bool {
    report.violations.iter().any(|v| v.invariant == invariant)
}

#[test]
fn a_clean_run_breaks_no_invariant() {
    for seed in [11, 12] {
        let r = run(seed, 2, 25, None);
        assert!(
            r.violations.is_empty(),
            "{:?}\nreplay: {}",
            r.violations,
            r.replay()
        );
        assert!(r.stats.writes > 100, "{:?}", r.stats);
    }
}

#[test]
fn a_seed_replays_exactly() {
    let a = run(7, 1, 20, None);
    let b = run(7, 1, 20, None);
    assert_eq!(a.stats, b.stats);
    let c = run(8, 1, 20, None);
    assert_ne!(a.stats.digest, c.stats.digest);
}

/// (mutant, the invariant it must break)
const MUTANTS: [(Mutant, &str); 7] = [
    (Mutant::StopWorkers, "I1"),
    (Mutant::PartialUse, "I2"),
    (Mutant::ShorterToken, "I2"),
    (Mutant::NoSighup, "I3"),
    (Mutant::Stampede, "I4"),
    (Mutant::NoKeytabs, "I5"),
    (Mutant::Leak, "I6"),
];

#[test]
fn every_invariant_is_caught_when_broken_on_purpose() {
    for (m, invariant) in MUTANTS {
        // A few seeds: one is enough to catch it; none must miss it altogether.
        let caught_by = (21..24)
            .map(|seed| run(seed, 2, 20, Some(m)))
            .find(|r| caught(r, invariant));
        assert!(
            caught_by.is_some(),
            "{m:?} did not break {invariant} in any seed"
        );
    }
}

fn run_get(seed: u64, days: u32, mutant: Option<GetMutant>) -> Report {
    sim::get::run_get(&GetParams { seed, days, mutant })
}

#[test]
fn get_under_cron_breaks_no_invariant_through_every_kind_of_trouble() {
    let mut seen = std::collections::BTreeMap::new();
    for seed in 1..=6 {
        let r = run_get(seed, 30, None);
        assert!(
            r.violations.is_empty(),
            "{:?}\nreplay: {} --get",
            r.violations,
            r.replay()
        );
        assert!(r.stats.writes > 50, "{:?}", r.stats);
        for (k, n) in r.stats.events {
            *seen.entry(k).or_insert(0) += n;
        }
    }
    // Not hollow: the runs went through what the invariants are about.
    for kind in [
        "vault-down",
        "vault-failing",
        "kdc-down",
        "keytab-rotated",
        "vault-token-revoked",
        "needs-person",
        "disk-full",
        "crash",
        "clock-step",
    ] {
        assert!(seen.contains_key(kind), "no {kind} in six seeds: {seen:?}");
    }
    let a = run_get(3, 10, None);
    let b = run_get(3, 10, None);
    assert_eq!(a.stats, b.stats, "a get seed replays exactly");
}

#[test]
fn every_get_invariant_is_caught_when_broken_on_purpose() {
    for (m, invariant) in [
        (GetMutant::TinyMinsecs, "G1"),
        (GetMutant::PartialToken, "G2"),
        (GetMutant::NoTokenRenewal, "G3"),
        (GetMutant::HiddenNeedsPerson, "G4"),
    ] {
        let caught_by = (1..=4)
            .map(|seed| run_get(seed, 30, Some(m)))
            .find(|r| caught(r, invariant));
        assert!(
            caught_by.is_some(),
            "{m:?} did not break {invariant} in any seed"
        );
    }
}
