//! Logging set-up: terse stderr lines for the command-line roles, named after
//! the program as invoked (`igwn-robot-get: error: ...`), with sd-daemon
//! priority prefixes (`<3>`) when stderr is the systemd journal.

use std::io::Write;
use std::sync::OnceLock;

static PROGRAM: OnceLock<String> = OnceLock::new();
static JOURNAL: OnceLock<bool> = OnceLock::new();
static JOURNAL_STREAM: OnceLock<Option<String>> = OnceLock::new();

/// Records `$JOURNAL_STREAM` as the environment gave it (`main.rs`, once).
pub fn set_journal_stream(value: Option<String>) {
    let _ = JOURNAL_STREAM.set(value);
}

/// Records the name the program was invoked as (`main.rs` calls this first).
pub fn set_program(name: &str) {
    let name = if name.is_empty() {
        "robot-credmon"
    } else {
        name
    };
    let _ = PROGRAM.set(name.to_owned());
}

/// The name messages start with: as invoked, else `robot-credmon`.
pub fn program() -> &'static str {
    PROGRAM.get().map_or("robot-credmon", String::as_str)
}

/// Whether `JOURNAL_STREAM` (`<device>:<inode>`) names the file with this
/// device and inode number (systemd's rule for "stderr is the journal").
pub fn journal_stream_matches(journal_stream: Option<&str>, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = journal_stream.and_then(|v| v.trim().split_once(':')) else {
        return false;
    };
    d.parse::<u64>() == Ok(dev) && i.parse::<u64>() == Ok(ino)
}

/// Whether stderr is connected to the journal (computed once).
pub fn stderr_is_journal() -> bool {
    *JOURNAL.get_or_init(|| {
        let var = JOURNAL_STREAM.get().cloned().flatten();
        if var.is_none() {
            return false;
        }
        match nix::sys::stat::fstat(std::io::stderr()) {
            Ok(st) => journal_stream_matches(var.as_deref(), st.st_dev, st.st_ino),
            Err(_) => false,
        }
    })
}

/// The sd-daemon prefix for a level (`<3>` error ... `<7>` debug), or `""`
/// when not writing to the journal.
pub fn priority_prefix(level: log::Level, journal: bool) -> &'static str {
    if !journal {
        return "";
    }
    match level {
        log::Level::Error => "<3>",
        log::Level::Warn => "<4>",
        log::Level::Info => "<6>",
        log::Level::Debug | log::Level::Trace => "<7>",
    }
}

/// One log line: `[<N>]<program>: [level: ]message` (info and below have no level word).
pub fn format_line(program: &str, level: log::Level, journal: bool, message: &str) -> String {
    let prefix = priority_prefix(level, journal);
    match level {
        log::Level::Info | log::Level::Debug | log::Level::Trace => {
            format!("{prefix}{program}: {message}")
        }
        l => format!(
            "{prefix}{program}: {}: {message}",
            l.as_str().to_lowercase()
        ),
    }
}

/// Prints the one closing error line of a failed run on stderr.
pub fn print_error(e: &dyn std::fmt::Display) {
    eprintln!(
        "{}",
        format_line(
            program(),
            log::Level::Error,
            stderr_is_journal(),
            &e.to_string()
        )
    );
}

/// Prints one warning line on stderr (`<program>: warning: ...`).
pub fn print_warning(message: &str) {
    eprintln!(
        "{}",
        format_line(program(), log::Level::Warn, stderr_is_journal(), message)
    );
}

/// Logs to stderr as `<program>: message`: warnings by default, `-v` info,
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
    let journal = stderr_is_journal();
    env_logger::Builder::new()
        .filter_level(theirs)
        .filter_module("robot_credmon", ours)
        .format(move |buf, record| {
            writeln!(
                buf,
                "{}",
                format_line(
                    program(),
                    record.level(),
                    journal,
                    &record.args().to_string()
                )
            )
        })
        .target(target)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_table() {
        for (var, dev, ino, want) in [
            (Some("8:1234"), 8, 1234, true),
            (Some(" 8:1234\n"), 8, 1234, true),
            (Some("8:1234"), 8, 1235, false),
            (Some("9:1234"), 8, 1234, false),
            (Some("8"), 8, 1234, false),
            (Some(""), 0, 0, false),
            (Some("x:y"), 0, 0, false),
            (None, 8, 1234, false),
        ] {
            assert_eq!(journal_stream_matches(var, dev, ino), want, "{var:?}");
        }
    }

    #[test]
    fn line_table() {
        use log::Level::*;
        for (level, journal, want) in [
            (Error, false, "igwn-robot-get: error: no keytab"),
            (Error, true, "<3>igwn-robot-get: error: no keytab"),
            (Warn, true, "<4>igwn-robot-get: warn: no keytab"),
            (Info, true, "<6>igwn-robot-get: no keytab"),
            (Debug, true, "<7>igwn-robot-get: no keytab"),
            (Trace, false, "igwn-robot-get: no keytab"),
        ] {
            assert_eq!(
                format_line("igwn-robot-get", level, journal, "no keytab"),
                want
            );
        }
    }
}
