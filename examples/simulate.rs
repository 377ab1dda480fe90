//! `simulate [--seeds N] [--first-seed S] [--days D] [--credentials C] [--mutant M] [--get]`:
//! the deterministic simulation of the credmon (tests/sim), or with `--get`
//! of `get` run by cron (tests/sim/get.rs), seed after seed on every core;
//! `scripts/simulate.sh` builds and runs it. Prints a line per
//! failing seed with the one command that replays it, then
//! `simulated: N seeds x D days x C credentials, V invariant violations`;
//! exits 1 when V > 0.

// The simulation reads no clock of the machine; its command line is read
// here, at the edge, and it reports progress in real time.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/sim/mod.rs"]
mod sim;

use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

struct Args {
    seeds: u64,
    first: u64,
    days: u32,
    credentials: usize,
    mutant: Option<sim::Mutant>,
    get: bool,
    get_mutant: Option<sim::get::GetMutant>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        seeds: 1,
        first: 1,
        days: 365,
        credentials: 1000,
        mutant: None,
        get: false,
        get_mutant: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or(format!("{k} needs a value"));
        match k.as_str() {
            "--seeds" => a.seeds = v()?.parse().map_err(|_| "--seeds: a number")?,
            "--first-seed" => a.first = v()?.parse().map_err(|_| "--first-seed: a number")?,
            "--days" => a.days = v()?.parse().map_err(|_| "--days: a number")?,
            "--credentials" => {
                a.credentials = v()?.parse().map_err(|_| "--credentials: a number")?
            }
            "--mutant" => {
                let m = v()?;
                a.mutant = Some(match m.as_str() {
                    "StopWorkers" => sim::Mutant::StopWorkers,
                    "PartialUse" => sim::Mutant::PartialUse,
                    "ShorterToken" => sim::Mutant::ShorterToken,
                    "NoSighup" => sim::Mutant::NoSighup,
                    "Stampede" => sim::Mutant::Stampede,
                    "NoKeytabs" => sim::Mutant::NoKeytabs,
                    "Leak" => sim::Mutant::Leak,
                    _ => {
                        a.get_mutant = Some(match m.as_str() {
                            "TinyMinsecs" => sim::get::GetMutant::TinyMinsecs,
                            "PartialToken" => sim::get::GetMutant::PartialToken,
                            "NoTokenRenewal" => sim::get::GetMutant::NoTokenRenewal,
                            "HiddenNeedsPerson" => sim::get::GetMutant::HiddenNeedsPerson,
                            _ => return Err(format!("unknown mutant {m}")),
                        });
                        continue;
                    }
                });
            }
            "--get" => a.get = true,
            _ => return Err(format!("unknown option {k}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("simulate: {e}");
            return ExitCode::from(2);
        }
    };
    // SIM_LOG=debug shows the credmon's own log lines (to follow a replayed seed).
    if let Ok(level) = std::env::var("SIM_LOG") {
        env_logger::Builder::new()
            .parse_filters(&level)
            .format_timestamp(None)
            .init();
    }
    let next = AtomicU64::new(a.first);
    let violations = AtomicU64::new(0);
    let out = Mutex::new(());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t0 = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= a.first + a.seeds {
                        return;
                    }
                    let report = if a.get {
                        sim::get::run_get(&sim::get::GetParams {
                            seed,
                            days: a.days,
                            mutant: a.get_mutant,
                        })
                    } else {
                        sim::run(&sim::Params {
                            seed,
                            days: a.days,
                            credentials: a.credentials,
                            mutant: a.mutant,
                        })
                    };
                    let _lock = out.lock();
                    if !report.violations.is_empty() {
                        violations.fetch_add(report.violations.len() as u64, Ordering::Relaxed);
                        println!("seed {seed}: {} violation(s)", report.violations.len());
                        for v in report.violations.iter().take(5) {
                            println!("  {} at {} s: {}", v.invariant, v.at_secs, v.what);
                        }
                        let get = if a.get { " --get" } else { "" };
                        println!("  replay: {}{get}", report.replay());
                    }
                    eprintln!(
                        "seed {seed}: {} steps, {} requests, {} writes, {} crashes, digest {:016x}",
                        report.stats.steps,
                        report.stats.requests.0,
                        report.stats.writes,
                        report.stats.crashes,
                        report.stats.digest
                    );
                }
            });
        }
    });
    let v = violations.load(Ordering::Relaxed);
    eprintln!("({:.1} s)", t0.elapsed().as_secs_f64());
    if a.get {
        println!(
            "simulated get under cron: {} seeds x {} days, {v} invariant violations",
            a.seeds, a.days
        );
    } else {
        println!(
            "simulated: {} seeds x {} days x {} credentials, {v} invariant violations",
            a.seeds, a.days, a.credentials
        );
    }
    if v > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
