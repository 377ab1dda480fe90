//! `demo-pool ROBOT_CREDMON`: the pool part of `scripts/demo.sh --pool`. Starts
//! the test KDC and Vault, a real HTCondor personal pool (HTCONDOR_PREFIX, or
//! condor_master on PATH) with ROBOT_CREDMON as its CREDMON_OAUTH, gives the
//! robot account `rcm-prov` a keytab in ROBOT_CREDMON_KEYTAB_DIR (the
//! credmon provisions its credential `igwn_robot`), submits a job that prints
//! its token's claims, and shows the job's output and `robot-credmon status`.
//! Run as root; everything is stopped by pid at the end.

// A demo and benchmark tool: real programs in real time.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "../tests/support/pool.rs"]
mod pool;

use pool::{Pool, ensure_user, install};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;
use support::TestEnv;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo-pool: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let bin = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .ok_or("usage: demo-pool ROBOT_CREDMON_BINARY")?;
    let env = TestEnv::start()?;
    let prov = ensure_user("rcm-prov", false)?;
    let t0 = std::time::Instant::now();
    let pool = Pool::start_with(&env, &bin)?;
    println!(
        "pool up in {:.1} s: condor_master, collector, negotiator, schedd, startd, credd and robot-credmon",
        t0.elapsed().as_secs_f64()
    );
    install(
        &env.robot_keytab(),
        &pool.keytab_dir.join(format!("{}.keytab", prov.name)),
        0o600,
        (0, 0),
    );
    pool.reconfig("ROBOT_CREDMON_PROVISION = igwn_robot\n")?;
    let use_ = pool.cred_dir.join(&prov.name).join("igwn_robot.use");
    if !Pool::wait_for(Duration::from_secs(20), || use_.exists()) {
        return Err(format!(
            "no {} after 20 s:\n{}",
            use_.display(),
            pool.log("CredMonOAuthLog")
        ));
    }
    println!("{}: provisioned from the robot's keytab", use_.display());
    let dir = pool.job_dir("claims", &prov);
    let script = dir.join("claims.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"the job sees $_CONDOR_CREDS/igwn_robot.use\"\n{} token \"$_CONDOR_CREDS/igwn_robot.use\"\n",
            pool.bin.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    make_executable(&script)?;
    let sub = dir.join("claims.sub");
    std::fs::write(
        &sub,
        format!(
            "universe = vanilla\nexecutable = {}\nuse_oauth_services = igwn_robot\n\
             should_transfer_files = NO\noutput = {d}/out\nerror = {d}/err\nlog = {d}/log\nqueue\n",
            script.display(),
            d = dir.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let submit = pool.prefix.join("bin/condor_submit");
    let out = Pool::run(
        &mut pool.as_user(&prov, &submit, &[sub.to_str().unwrap_or_default()], &[]),
        Duration::from_secs(60),
    )?;
    println!(
        "$ condor_submit claims.sub   (as {}, no Kerberos ticket)\n{}",
        prov.name,
        String::from_utf8_lossy(&out.stdout).trim()
    );
    pool.wait_job(&dir, 120)?;
    println!(
        "the job's output:\n{}",
        std::fs::read_to_string(dir.join("out")).unwrap_or_default()
    );
    let status = Command::new(&pool.bin)
        .args(["status", "-c"])
        .arg(&pool.cred_dir)
        .output()
        .map_err(|e| e.to_string())?;
    println!(
        "$ robot-credmon status\n{}",
        String::from_utf8_lossy(&status.stdout)
    );
    Ok(())
}

fn make_executable(p: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())
}
