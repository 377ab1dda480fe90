//! HTCondor configuration values: `condor_config_val -dump` text, then the
//! credmon's validation of the knobs it reads.

#![no_main]

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use robot_credmon::cli::{Cli, Command};
use robot_credmon::credmon::config;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let knobs = config::knobs::parse_dump(&text);
    if let Ok(cli) = Cli::try_parse_from(["robot-credmon", "credmon"])
        && let Command::Credmon(args) = cli.command
    {
        let _ = config::resolve(&knobs, &config::Overrides::from(&args));
    }
});
