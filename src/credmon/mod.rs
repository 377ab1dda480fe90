//! `robot-credmon credmon`: HTCondor's OAuth credential monitor
//! (`CREDMON_OAUTH`) for Vault credentials, a drop-in replacement for
//! `condor_credmon_vault` that also keeps robot credentials alive from keytabs.
//!
//! * [`config`]: HTCondor knobs, `_CONDOR_*` overrides and options → [`config::Config`];
//! * [`policy`]: pure decisions (names, ownership, renewal, Vault URLs);
//! * [`refresh`]: one credential end to end (Vault, keytab re-login, files);
//! * [`schedule`]: the pure scheduler (need, deadline, backoff);
//! * [`daemon`]: the coordinator (scans, SIGHUP, passes) and the workers;
//! * [`log`]: the HTCondor-style log file.
//!
//! With `--metrics-file` (or `ROBOT_CREDMON_METRICS_FILE`) the coordinator
//! writes [`crate::metrics::CredmonMetrics`] after every full pass and the
//! signal thread writes it on exit; under systemd it reports through
//! [`crate::notify`] (`READY=1` after the first pass, `WATCHDOG=1`, `STOPPING=1`).
//!
//! Exit codes: 0 on SIGTERM/SIGINT/SIGQUIT, 1 on runtime errors (and
//! `--once` with failures), 44 when the log cannot be opened, 99 on an
//! invalid configuration (condor_master does not restart it).

pub mod config;
pub mod daemon;
pub mod log;
pub mod policy;
pub mod refresh;
pub mod schedule;

use crate::files::{SafeDir, WriteOptions};
use config::Config;
use daemon::clock::SystemClock;
use nix::sys::signal::{SigSet, Signal};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Exit code when the log cannot be opened (HTCondor's `DPRINTF_ERROR`).
pub const EXIT_LOG: u8 = 44;
/// Exit code for an invalid configuration (HTCondor's `DAEMON_NO_RESTART`).
pub const EXIT_NO_RESTART: u8 = 99;

/// Options of `robot-credmon credmon` (those of the Python credmon, plus `--once` and `--check-config`).
#[derive(Debug, Clone, clap::Args)]
pub struct CredmonArgs {
    /// Daemon name: the prefix of the `<NAME>_LOG` and `<NAME>_DEBUG` knobs.
    #[arg(short = 'n', long, default_value = "CREDMON_OAUTH")]
    pub name: String,
    /// Credential directory [default: SEC_CREDENTIAL_DIRECTORY_OAUTH].
    #[arg(short = 'c', long = "cred-dir", value_name = "DIR")]
    pub cred_dir: Option<PathBuf>,
    /// Log file [default: <NAME>_LOG, else $(LOG)/CredMonOAuthLog, else stderr].
    #[arg(short = 'l', long = "log-file", value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Debug logging.
    #[arg(short = 'd', long)]
    pub debug: bool,
    /// Also log to stderr.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Do one pass and exit: 0 when every credential is fine, 1 when any failed.
    #[arg(long, conflicts_with = "check_config")]
    pub once: bool,
    /// Print the resolved settings and exit (99 when they are invalid).
    #[arg(long)]
    pub check_config: bool,
    /// Write Prometheus metrics (node_exporter textfile format) to this file after
    /// every full pass and on exit [default: ROBOT_CREDMON_METRICS_FILE, else none].
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
}

fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

fn load(args: &CredmonArgs) -> Result<Config, config::ConfigError> {
    let knobs = config::load_knobs(&process_env());
    config::resolve(&knobs, args)
}

/// Runs the credmon and returns its exit code.
pub fn main(args: CredmonArgs) -> ExitCode {
    let cfg = match load(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("robot-credmon: error: invalid configuration: {e}");
            return ExitCode::from(EXIT_NO_RESTART);
        }
    };
    if args.check_config {
        print!("{}", cfg.describe());
        return ExitCode::SUCCESS;
    }
    if let Err(e) = log::init(cfg.log_file.as_deref(), cfg.debug, args.verbose) {
        eprintln!(
            "robot-credmon: error: cannot open the log file '{}': {e}",
            cfg.log_file
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
        return ExitCode::from(EXIT_LOG);
    }
    match run(args, cfg) {
        Ok(code) => code,
        Err(e) => {
            ::log::error!("{e}");
            eprintln!("robot-credmon: error: {e}");
            ExitCode::FAILURE
        }
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

fn run(args: CredmonArgs, cfg: Config) -> Result<ExitCode, String> {
    let root = check_cred_dir(&cfg)?;
    if let Ok(n) = root.remove_stale_temps()
        && n > 0
    {
        ::log::info!(
            "removed {n} leftover temporary file(s) in {}",
            root.path().display()
        );
    }
    // Before any thread exists: changes the environment.
    let _profile = crate::kerberos::disable_reverse_dns().map_err(|e| e.to_string())?;
    let cfg = Arc::new(cfg);
    let ctx = Arc::new(refresh::Ctx::new(cfg.clone()));
    if let Err(e) = ctx.tls_config() {
        ::log::error!("{e}");
    }
    let reload_args = args.clone();
    let reload: daemon::Reload = Box::new(move || match load(&reload_args) {
        Ok(c) => {
            if let Err(e) = log::reopen(c.log_file.as_deref()) {
                ::log::error!("cannot reopen the log file: {e}");
            }
            log::set_debug(c.debug);
            Some(c)
        }
        Err(e) => {
            ::log::error!("invalid configuration after SIGHUP, keeping the old one: {e}");
            None
        }
    });
    let mut coord = daemon::Coordinator::new(ctx.clone(), Arc::new(SystemClock), reload);
    let shared = coord.shared.clone();

    if args.once {
        coord.spawn_workers(cfg.max_in_flight);
        let report = coord.once(Duration::from_secs(600));
        ::log::info!(
            "one pass done: {} refreshed, {} failed or skipped",
            report.refreshed,
            report.failed
        );
        return Ok(if report.failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }

    // Signals are taken synchronously by one thread; block them everywhere else.
    let mut signals = SigSet::empty();
    for s in [
        Signal::SIGHUP,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGQUIT,
    ] {
        signals.add(s);
    }
    signals
        .thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;
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
    ::log::info!(
        "robot-credmon {} credmon started (pid {pid}) for {}",
        env!("CARGO_PKG_VERSION"),
        cfg.cred_dir.display()
    );
    let sh = shared.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || signal_loop(signals, sh))
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    crate::notify::status("first full pass");
    coord.spawn_workers(cfg.max_in_flight);
    coord.run();
    // Stopped: let requests in flight finish (bounded), then leave. A request
    // still running is abandoned; its .use is renamed into place whole or not at all.
    let left = shared.drain(DRAIN_LIMIT);
    if left > 0 {
        ::log::info!("{left} request(s) still in flight abandoned");
    }
    crate::notify::stopping();
    if let Some(path) = ctx.config().metrics_file.as_deref() {
        drop(shared.write_metrics(path));
    }
    // Hook: release the single-instance lock here.
    if let Err(e) = root.remove("pid") {
        ::log::warn!("{e}");
    }
    ::log::logger().flush();
    Ok(ExitCode::SUCCESS)
}

/// How long in-flight requests may finish after SIGTERM (the whole exit stays under 1 s).
const DRAIN_LIMIT: Duration = Duration::from_millis(700);

/// Waits for signals: SIGHUP wakes the coordinator; the others stop it
/// (the main thread then drains the workers and exits 0).
fn signal_loop(signals: SigSet, shared: Arc<daemon::pool::Shared>) {
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
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}
