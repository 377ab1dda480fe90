//! `robot-credmon check`: Nagios/Icinga-style monitoring checks (work in progress).

use std::process::ExitCode;

/// Options of `robot-credmon check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {}

/// Runs the check and returns the plugin exit code.
pub fn main(_args: CheckArgs) -> ExitCode {
    println!("UNKNOWN - not implemented yet");
    ExitCode::from(3)
}
