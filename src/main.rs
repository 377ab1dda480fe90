//! The `robot-credmon` binary: set up the process environment, parse the
//! command line, dispatch, and map the result to an exit code ([`Exit`]).

// No function over 60 lines (issue 16; the threshold is in clippy.toml).
#![deny(clippy::too_many_lines)]

use clap::Parser;
use robot_credmon::check::{self, State};
use robot_credmon::cli::{Cli, Command, IgwnRobotGet, RobotCredmonStorer, invoked_as};
use robot_credmon::credmon::{self, CredmonError, Outcome};
use robot_credmon::env::Env;
use robot_credmon::{generate, get, inspect, kerberos, logging, status, store};
use std::ffi::OsString;
use std::process::ExitCode;

/// Every exit code of the program, declared in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    /// 0: done. `get`: a valid token is in place; `token`: fresh enough;
    /// `credmon`: stopped by SIGTERM/SIGINT/SIGQUIT, or `--once` all fine.
    Success,
    /// 1: failed, after one error line (`get`, `store`, `token`, `generate`,
    /// `credmon` runtime errors and `--once` with failures).
    Failure,
    /// 2: the command line does not parse (clap's usage error).
    Usage,
    /// 4: `get` needs a person: Vault holds no credential for the credkey,
    /// or the issuer refused its refresh token; the error line names the
    /// command to run once on a terminal.
    NeedsLogin,
    /// `check`: the Nagios plugin state, 0 OK, 1 WARNING, 2 CRITICAL,
    /// 3 UNKNOWN (also for a command line that does not parse, so a typo in a
    /// monitoring configuration never reads as CRITICAL).
    Check(State),
    /// 44: the credmon cannot open its log (HTCondor's `DPRINTF_ERROR`).
    LogUnavailable,
    /// 99: the credmon's configuration is invalid (HTCondor's
    /// `DAEMON_NO_RESTART`: condor_master does not restart it).
    NoRestart,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(match e {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::NeedsLogin => 4,
            Exit::Check(state) => state.code(),
            Exit::LogUnavailable => 44,
            Exit::NoRestart => 99,
        })
    }
}

fn main() -> ExitCode {
    // First thing: a SIGHUP or SIGTERM during set-up must not kill the
    // credmon before its signal thread waits for them. Every other role
    // gets the default behaviour back as soon as the command line is parsed.
    let early = credmon::signals::block();
    let mut env = Env::process();
    let command = match parse(env.args()) {
        Ok(c) => c,
        Err(exit) => return exit.into(),
    };
    if !matches!(&command, Command::Credmon(a) if a.is_daemon()) {
        credmon::signals::restore(early);
    }
    logging::set_journal_stream(env.var("JOURNAL_STREAM"));
    // Environment changes, once, here: no other thread is running yet.
    let _profile = match command {
        Command::Get(_) | Command::Store(_) | Command::Credmon(_) => {
            match kerberos::disable_reverse_dns(env.var("KRB5_CONFIG").as_deref()) {
                Ok(p) => {
                    // SAFETY: single-threaded until here (nothing has spawned a thread yet).
                    unsafe { std::env::set_var("KRB5_CONFIG", p.krb5_config()) };
                    env = env.with_var("KRB5_CONFIG", Some(p.krb5_config()));
                    Some(p)
                }
                Err(e) => return error(e).into(),
            }
        }
        _ => None,
    };
    if matches!(command, Command::Credmon(_)) {
        // Takes the master's family session out of the environment.
        env = robot_credmon::condor::capture_environment(env);
        // SAFETY: single-threaded until here (nothing has spawned a thread yet).
        unsafe { std::env::remove_var("CONDOR_PRIVATE_INHERIT") };
    }
    dispatch(command, &env).into()
}

/// Parses the command line by program name; a failure has been printed.
fn parse(argv: &[OsString]) -> Result<Command, Exit> {
    let name = argv.first().map(|a| invoked_as(a)).unwrap_or_default();
    logging::set_program(&name);
    let parsed = match name.as_str() {
        "igwn-robot-get" => IgwnRobotGet::try_parse_from(argv).map(|p| Command::Get(p.args)),
        "robot-credmon-storer" => {
            RobotCredmonStorer::try_parse_from(argv).map(|p| Command::Store(p.args))
        }
        _ => Cli::try_parse_from(argv).map(|c| c.command),
    };
    parsed.map_err(|err| {
        let is_check = argv.get(1).is_some_and(|a| a == "check");
        if is_check && err.use_stderr() {
            // Monitoring systems show stdout only: one plugin line there.
            println!("{}", check::usage_verdict(&err).line());
        }
        let _ = err.print();
        match (err.use_stderr(), is_check) {
            (false, _) => Exit::Success,
            (true, true) => Exit::Check(State::Unknown),
            (true, false) => Exit::Usage,
        }
    })
}

fn dispatch(command: Command, env: &Env) -> Exit {
    match command {
        Command::Get(args) => {
            logging::init_cli(args.verbose, args.quiet);
            match get::run(&args, env) {
                Ok(_) => Exit::Success,
                Err(e) if e.needs_login() => {
                    logging::print_error(&e);
                    Exit::NeedsLogin
                }
                Err(e) => error(e),
            }
        }
        // The storer reports its own failure in condor_submit's form.
        Command::Store(args) => store::main(&args, env).map_or(Exit::Failure, |()| Exit::Success),
        Command::Token(args) => {
            logging::init_cli(0, false);
            match inspect::run(&args, env) {
                Ok(report) => {
                    print!("{}", report.text);
                    if report.stale {
                        Exit::Failure
                    } else {
                        Exit::Success
                    }
                }
                Err(e) => error(e),
            }
        }
        Command::Credmon(args) => credmon_exit(credmon::main(args, env)),
        Command::Check(args) => {
            let env = env.clone();
            let verdict = check::within(args.timeout, move || check::run(&args, &env));
            println!("{}", verdict.line());
            Exit::Check(verdict.state)
        }
        Command::Status(args) => {
            logging::init_cli(0, false);
            let dir = args
                .cred_dir
                .unwrap_or_else(|| check::DEFAULT_CRED_DIR.into());
            let now = robot_credmon::token::unix_seconds(env.now());
            let shown = status::run(&dir, args.user.as_deref(), args.json, now);
            result(shown.map(|text| print!("{text}")))
        }
        Command::Generate(args) => result(generate::run(&args).map(drop)),
    }
}

/// The credmon's exit: 99 for a bad configuration (condor_master does not
/// restart it), 44 when its log cannot be opened.
fn credmon_exit(r: Result<Outcome, CredmonError>) -> Exit {
    match r {
        Ok(Outcome::Done) => Exit::Success,
        Ok(Outcome::SomeFailed) => Exit::Failure,
        Err(e) => {
            logging::print_error(&e);
            match e {
                CredmonError::Config(_) => Exit::NoRestart,
                CredmonError::Log { .. } => Exit::LogUnavailable,
                CredmonError::Run(_) => Exit::Failure,
            }
        }
    }
}

fn result<E: std::fmt::Display>(r: Result<(), E>) -> Exit {
    r.map_or_else(error, |()| Exit::Success)
}

/// Prints one error line.
fn error<E: std::fmt::Display>(e: E) -> Exit {
    logging::print_error(&e);
    Exit::Failure
}
