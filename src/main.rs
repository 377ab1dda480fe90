//! The `robot-credmon` binary: parse the command line, dispatch, map the result to an exit code.

use clap::Parser;
use robot_credmon::cli::{Cli, Command, IgwnRobotGet, invoked_as};
use robot_credmon::{check, credmon, get, inspect, logging};
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let name = argv.first().map(|a| invoked_as(a)).unwrap_or_default();
    let command = if name == "igwn-robot-get" {
        Command::Get(IgwnRobotGet::parse_from(&argv).args)
    } else {
        Cli::parse_from(&argv).command
    };
    match command {
        Command::Get(args) => {
            logging::init_cli(args.verbose, args.quiet);
            finish(get::run(&args).map(|_| ()))
        }
        Command::Token(args) => {
            logging::init_cli(0, false);
            match inspect::run(&args) {
                Ok(report) => {
                    print!("{}", report.text);
                    if report.stale {
                        ExitCode::FAILURE
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(e) => finish(Err(e)),
            }
        }
        Command::Credmon(args) => credmon::main(args),
        Command::Check(args) => check::main(args),
    }
}

/// Prints one error line and returns the exit code.
fn finish<E: std::fmt::Display>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("robot-credmon: error: {e}");
            ExitCode::FAILURE
        }
    }
}
