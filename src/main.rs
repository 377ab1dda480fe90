//! The `robot-credmon` binary: parse the command line, dispatch, map the result to an exit code.

use clap::Parser;
use robot_credmon::cli::{Cli, Command, IgwnRobotGet, RobotCredmonStorer, invoked_as};
use robot_credmon::{check, credmon, generate, get, inspect, logging, store};
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let name = argv.first().map(|a| invoked_as(a)).unwrap_or_default();
    logging::set_program(&name);
    let command = if name == "igwn-robot-get" {
        Command::Get(IgwnRobotGet::parse_from(&argv).args)
    } else if name == "robot-credmon-storer" {
        Command::Store(RobotCredmonStorer::parse_from(&argv).args)
    } else {
        Cli::try_parse_from(&argv)
            .unwrap_or_else(|e| check::exit_on_parse_error(e, &argv))
            .command
    };
    match command {
        Command::Get(args) => {
            logging::init_cli(args.verbose, args.quiet);
            finish(get::run(&args).map(|_| ()))
        }
        Command::Store(args) => store::main(&args),
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
        Command::Generate(args) => finish(generate::run(&args).map(|_| ())),
    }
}

/// Prints one error line and returns the exit code.
fn finish<E: std::fmt::Display>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            logging::print_error(&e);
            ExitCode::FAILURE
        }
    }
}
