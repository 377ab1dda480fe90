//! Logging set-up: terse stderr lines for the command-line roles.

use std::io::Write;

/// Logs to stderr as `robot-credmon: message`: warnings by default, `-v` info,
/// `-vv` debug, `-vvv` trace; `quiet` keeps only errors.
pub fn init_cli(verbose: u8, quiet: bool) {
    init_cli_to(verbose, quiet, env_logger::Target::Stderr);
}

/// [`init_cli`] writing to `target` (the storer's stderr, which starts with a newline).
pub fn init_cli_to(verbose: u8, quiet: bool, target: env_logger::Target) {
    let level = if quiet {
        log::LevelFilter::Error
    } else {
        match verbose {
            0 => log::LevelFilter::Warn,
            1 => log::LevelFilter::Info,
            2 => log::LevelFilter::Debug,
            _ => log::LevelFilter::Trace,
        }
    };
    let ours = level;
    let theirs = if verbose >= 4 {
        level
    } else {
        log::LevelFilter::Warn.min(level)
    };
    env_logger::Builder::new()
        .filter_level(theirs)
        .filter_module("robot_credmon", ours)
        .format(|buf, record| match record.level() {
            log::Level::Info | log::Level::Debug | log::Level::Trace => {
                writeln!(buf, "robot-credmon: {}", record.args())
            }
            l => writeln!(
                buf,
                "robot-credmon: {}: {}",
                l.as_str().to_lowercase(),
                record.args()
            ),
        })
        .target(target)
        .init();
}
