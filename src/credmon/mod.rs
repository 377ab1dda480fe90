//! `robot-credmon credmon`: the HTCondor credential monitor (work in progress).

use std::process::ExitCode;

/// Options of `robot-credmon credmon`.
#[derive(Debug, Clone, clap::Args)]
pub struct CredmonArgs {}

/// Runs the credmon and returns its exit code.
pub fn main(_args: CredmonArgs) -> ExitCode {
    eprintln!("robot-credmon: error: the credmon is not implemented yet");
    ExitCode::FAILURE
}
