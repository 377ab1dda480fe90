//! `robot-credmon credmon`: HTCondor's OAuth credential monitor
//! (`CREDMON_OAUTH`) for Vault credentials, a drop-in replacement for
//! `condor_credmon_vault` that also keeps robot credentials alive from keytabs.
//!
//! * [`config`]: knobs, `_CONDOR_*` overrides and options → [`config::Config`];
//!   [`config::knobs`] declares every knob (name, kind, default, limits, doc) once;
//! * [`policy`]: pure decisions (names, ownership, renewal, Vault URLs);
//! * [`refresh`]: one credential end to end (Vault, keytab re-login, files);
//! * [`schedule`]: the pure scheduler (need, deadline, backoff);
//! * [`daemon`]: the coordinator (scans, SIGHUP, passes) and the workers;
//! * [`log`]: the HTCondor-style log file;
//! * [`sandbox`]: the confinement after start-up ([`crate::confine`]).
//!
//! With `--metrics-file` (or `ROBOT_CREDMON_METRICS_FILE`) the coordinator
//! writes [`crate::metrics::CredmonMetrics`] after every full pass and the
//! signal thread writes it on exit; under systemd it reports through
//! [`crate::notify`] (`READY=1` after the first pass, `WATCHDOG=1`, `STOPPING=1`).
//!
//! [`main`] ends in an [`Outcome`] or a [`CredmonError`]; `main.rs` maps them
//! to exit codes (0 on SIGTERM/SIGINT/SIGQUIT, 1 on runtime errors and
//! `--once` with failures, 44 when the log cannot be opened, 99 on an invalid
//! configuration).

pub mod config;
pub mod daemon;
pub mod log;
pub mod policy;
pub mod refresh;
pub mod sandbox;
pub mod schedule;
pub mod signals;

use crate::cli::CredmonArgs;
use crate::env::Env;
use crate::files::{SafeDir, WriteOptions};
use config::{Config, ConfigError};
use nix::sys::signal::{SigSet, Signal};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::sync::Arc;
use std::time::Duration;

/// Why the credmon stopped with an error; `main.rs` maps each to its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CredmonError {
    /// The configuration is invalid (exit 99: condor_master does not restart it).
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The log file cannot be opened (exit 44, HTCondor's `DPRINTF_ERROR`).
    #[error("cannot open the log file '{path}': {source}")]
    Log {
        /// The log file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Anything else (exit 1).
    #[error("{0}")]
    Run(String),
}

/// How a credmon run that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stopped by a signal, or `--once` with every credential fine, or `--check-config`.
    Done,
    /// `--once` with credentials that failed or were skipped (exit 1).
    SomeFailed,
}

fn load(args: &CredmonArgs, env: &Env) -> Result<Config, ConfigError> {
    let name = args.name.to_ascii_uppercase();
    let knobs = config::knobs::load(env.vars(), env.path_var(), &name);
    config::resolve(&knobs, &config::Overrides::from(args))
}

/// [`load`] after SIGHUP: a failing `condor_config_val` keeps the configuration in use.
fn reload(args: &CredmonArgs, env: &Env) -> Result<Config, String> {
    let name = args.name.to_ascii_uppercase();
    let knobs = config::knobs::load_strict(env.vars(), env.path_var(), &name)?;
    config::resolve(&knobs, &config::Overrides::from(args)).map_err(|e| e.to_string())
}

/// Runs the credmon with the environment `env`.
pub fn main(args: CredmonArgs, env: &Env) -> Result<Outcome, CredmonError> {
    let cfg = load(&args, env)?;
    if args.check_config {
        print!("{}", cfg.describe());
        print!("{}", sandbox::describe(&cfg, env));
        for w in cfg.warnings() {
            crate::logging::print_warning(&w);
        }
        return Ok(Outcome::Done);
    }
    log::init(
        cfg.log_file.as_deref(),
        cfg.debug,
        args.verbose,
        env.clock(),
    )
    .map_err(|source| CredmonError::Log {
        path: cfg
            .log_file
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        source,
    })?;
    ::log::set_max_level(cfg.log_level);
    run(args, cfg, env.clone()).map_err(|e| {
        ::log::error!("{e}");
        CredmonError::Run(e)
    })
}

/// One malloc arena instead of glibc's eight per core: memory the
/// coordinator frees (a scan's batches, keys) is reused by the workers and
/// the other way round, instead of each arena keeping its own high-water
/// mark (0.06 KiB less per credential than two arenas, 1 MiB less than
/// glibc's default at 10,000; docs/performance.md). The threads' allocations
/// are short and far between (a worker waits on Vault), so they hardly
/// contend. Called before any worker thread starts.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a glibc tunable; no thread allocates
    // concurrently yet (the workers start later).
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, 1);
    }
}

/// Checks the credential directory (creating it 02770 when missing) and refuses o+rwx.
fn check_cred_dir(cfg: &Config) -> Result<SafeDir, String> {
    let path = &cfg.cred_dir;
    if !path.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o2770)
            .create(path)
            .map_err(|e| {
                format!(
                    "cannot create the credential directory '{}': {e}",
                    path.display()
                )
            })?;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o2770));
    }
    let dir = SafeDir::open(path).map_err(|e| e.to_string())?;
    let st = dir.stat_self().map_err(|e| e.to_string())?;
    if st.st_mode & 0o007 != 0 {
        return Err(format!(
            "the credential directory '{}' has mode {:04o}: other users have access; run chmod o-rwx on it",
            path.display(),
            st.st_mode & 0o7777
        ));
    }
    Ok(dir)
}

fn run(args: CredmonArgs, cfg: Config, env: Env) -> Result<Outcome, String> {
    one_malloc_arena();
    let root = check_cred_dir(&cfg)?;
    let _instance =
        daemon::instance::single_instance(&cfg.cred_dir, Duration::from_secs(10), env.clock())?;
    if let Ok(n) = root.remove_stale_temps()
        && n > 0
    {
        ::log::info!(
            "removed {n} leftover temporary file(s) in {}",
            root.path().display()
        );
    }
    // Everything later, every thread and program included, runs confined.
    sandbox::confine(&cfg, &env);
    let cfg = Arc::new(cfg);
    let ctx = Arc::new(refresh::Ctx::new(cfg.clone(), &env));
    if let Err(e) = ctx.tls_config() {
        ::log::error!("{e}");
    }
    let systemd = crate::notify::Systemd::from_env(&env);
    let mut coord = daemon::Coordinator::new(
        ctx.clone(),
        env.clock().clone(),
        daemon::Reload::new(reloader(args.clone(), env.clone())),
        systemd.clone(),
    );
    let shared = coord.shared.clone();
    if args.once {
        let outcome = run_once(&mut coord, cfg.max_in_flight);
        flush_status(&ctx, &root);
        return Ok(outcome);
    }
    start_signals(&root, &cfg, &shared, &env)?;
    systemd.status("first full pass");
    coord.spawn_workers(cfg.max_in_flight);
    coord.run();
    // Stopped: let requests in flight finish (bounded), then leave. A request
    // still running is abandoned; its .use is renamed into place whole or not at all.
    let left = shared.drain(DRAIN_LIMIT);
    if left > 0 {
        ::log::info!("{left} request(s) still in flight abandoned");
    }
    systemd.stopping();
    if let Some(path) = ctx.config().metrics_file.as_deref() {
        shared.lock().metrics_mut().stopped = true;
        drop(shared.write_metrics(path, env.euid()));
    }
    flush_status(&ctx, &root);
    daemon::instance::remove_pid_file(root.path());
    ::log::logger().flush();
    Ok(Outcome::Done)
}

/// Writes the `pid` file and starts the signal thread (the signals were
/// blocked first thing in `main`).
fn start_signals(
    root: &SafeDir,
    cfg: &Config,
    shared: &Arc<daemon::Shared>,
    env: &Env,
) -> Result<(), String> {
    let signals = block_signals()?;
    let pid = write_pid(root)?;
    ::log::info!(
        "robot-credmon {} credmon started (pid {pid}) for {}",
        env!("CARGO_PKG_VERSION"),
        cfg.cred_dir.display()
    );
    let sh = shared.clone();
    let clock = env.clock().clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || signal_loop(signals, sh, clock))
        .map(drop)
        .map_err(|e| format!("cannot start the signal thread: {e}"))
}

/// Writes the state file's last changes (at exit and after `--once`).
fn flush_status(ctx: &refresh::Ctx, root: &SafeDir) {
    let now = crate::token::unix_seconds(ctx.now());
    ctx.status()
        .flush(root, std::process::id(), now, ctx.is_root());
}

/// Re-reads the configuration after SIGHUP (reopening the log); `None` keeps the old one.
fn reloader(args: CredmonArgs, env: Env) -> Box<dyn FnMut() -> Option<Config> + Send> {
    Box::new(move || match reload(&args, &env) {
        Ok(c) => {
            if let Err(e) = log::reopen(c.log_file.as_deref()) {
                ::log::error!("cannot reopen the log file: {e}");
            }
            log::set_debug(c.debug);
            ::log::set_max_level(c.log_level);
            Some(c)
        }
        Err(e) => {
            ::log::error!("invalid configuration after SIGHUP, keeping the old one: {e}");
            None
        }
    })
}

/// `--once`: one pass with `workers` workers.
fn run_once(coord: &mut daemon::Coordinator, workers: usize) -> Outcome {
    coord.spawn_workers(workers);
    let report = coord.once(Duration::from_secs(600));
    ::log::info!(
        "one pass done: {} refreshed, {} failed or skipped",
        report.refreshed,
        report.failed
    );
    if report.failed == 0 {
        Outcome::Done
    } else {
        Outcome::SomeFailed
    }
}

/// Blocks the signals the signal thread takes synchronously, in this and
/// every later thread (`main` blocked them already; this makes sure).
fn block_signals() -> Result<SigSet, String> {
    let signals = signals::set();
    signals
        .thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;
    Ok(signals)
}

/// Writes `pid` (0644: the credd, running as condor, reads it to send SIGHUP).
fn write_pid(root: &SafeDir) -> Result<String, String> {
    let pid = std::process::id().to_string();
    root.write_atomic(
        "pid",
        pid.as_bytes(),
        WriteOptions {
            mode: 0o644,
            owner: None,
            existing_owner: None,
            replace_symlink: true,
        },
    )
    .map_err(|e| e.to_string())?;
    Ok(pid)
}

/// How long in-flight requests may finish after SIGTERM (the whole exit stays under 1 s).
const DRAIN_LIMIT: Duration = Duration::from_millis(700);

/// Waits for signals: SIGHUP wakes the coordinator; the others stop it
/// (the main thread then drains the workers and exits 0).
fn signal_loop(signals: SigSet, shared: Arc<daemon::Shared>, clock: crate::env::Clock) {
    loop {
        match signals.wait() {
            Ok(Signal::SIGHUP) => {
                ::log::debug!("SIGHUP");
                shared.hup();
            }
            Ok(sig) => {
                ::log::info!("exiting on {sig}");
                shared.stop();
                return;
            }
            Err(e) => {
                ::log::error!("waiting for signals failed: {e}");
                clock.sleep(Duration::from_secs(1));
            }
        }
    }
}
