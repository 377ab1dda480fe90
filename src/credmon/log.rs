//! The credmon's log: HTCondor-style lines (`MM/DD/YY HH:MM:SS.mmm LEVEL message`,
//! UTC) appended to `CREDMON_OAUTH_LOG`, or written to stderr without one.
//! The file is reopened on SIGHUP so that log rotation works.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

struct FileLogger {
    sink: Mutex<Sink>,
}

struct Sink {
    path: Option<PathBuf>,
    file: Option<File>,
    also_stderr: bool,
}

static LOGGER: OnceLock<FileLogger> = OnceLock::new();

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)
}

/// Starts logging to `path` (stderr when `None`; also to stderr with `also_stderr`).
pub fn init(path: Option<&Path>, debug: bool, also_stderr: bool) -> std::io::Result<()> {
    let file = path.map(open).transpose()?;
    let logger = LOGGER.get_or_init(|| FileLogger {
        sink: Mutex::new(Sink {
            path: None,
            file: None,
            also_stderr: false,
        }),
    });
    {
        let mut s = logger.sink.lock().unwrap_or_else(|p| p.into_inner());
        s.path = path.map(Path::to_owned);
        s.file = file;
        s.also_stderr = also_stderr;
    }
    let _ = log::set_logger(logger);
    set_debug(debug);
    Ok(())
}

/// Changes the level: debug or info.
pub fn set_debug(debug: bool) {
    log::set_max_level(if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    });
}

/// Reopens the log file (after rotation) or switches to a new path.
pub fn reopen(path: Option<&Path>) -> std::io::Result<()> {
    let Some(logger) = LOGGER.get() else {
        return Ok(());
    };
    let file = path.map(open).transpose()?;
    let mut s = logger.sink.lock().unwrap_or_else(|p| p.into_inner());
    s.path = path.map(Path::to_owned);
    s.file = file;
    Ok(())
}

/// `11/26/26 15:26:51.123` for `t`, in UTC.
pub fn timestamp(t: SystemTime) -> String {
    let rfc = humantime::format_rfc3339_millis(t).to_string();
    // 2026-11-26T15:26:51.123Z
    match (
        rfc.get(2..4),
        rfc.get(5..7),
        rfc.get(8..10),
        rfc.get(11..23),
    ) {
        (Some(y), Some(m), Some(d), Some(time)) => format!("{m}/{d}/{y} {time}"),
        _ => rfc,
    }
}

impl log::Log for FileLogger {
    fn enabled(&self, meta: &log::Metadata) -> bool {
        meta.target().starts_with("robot_credmon") || meta.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "{} {:<5} {}\n",
            timestamp(SystemTime::now()),
            record.level(),
            record.args()
        );
        let mut s = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        let to_stderr = s.also_stderr || s.file.is_none();
        if let Some(f) = s.file.as_mut() {
            let _ = f.write_all(line.as_bytes());
        }
        if to_stderr {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {
        let mut s = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = s.file.as_mut() {
            let _ = f.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn condor_style_timestamp() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_706_811_123);
        assert_eq!(timestamp(t), "11/26/26 15:26:51.123");
    }
}
