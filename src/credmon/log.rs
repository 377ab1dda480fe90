//! The credmon's log: HTCondor-style lines (`MM/DD/YY HH:MM:SS.mmm LEVEL message`,
//! in local time like the condor daemons' logs) appended to `CREDMON_OAUTH_LOG`,
//! or written to stderr without one. The file is reopened on SIGHUP so that
//! log rotation works. It is opened without following a symbolic link and
//! must be a regular file with one link: the credmon runs as root and the
//! log directory belongs to condor.

use crate::env::Clock;
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
    /// Line timestamps come from this clock (the daemon's).
    clock: Option<Clock>,
}

static LOGGER: OnceLock<FileLogger> = OnceLock::new();

fn open(path: &Path) -> std::io::Result<File> {
    use nix::fcntl::OFlag;
    use std::os::unix::fs::MetadataExt;
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(nix::libc::ELOOP) {
                std::io::Error::other("it is a symbolic link")
            } else {
                e
            }
        })?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    if meta.nlink() > 1 {
        return Err(std::io::Error::other("it has several hard links"));
    }
    Ok(file)
}

/// Starts logging to `path` (stderr when `None`; also to stderr with
/// `also_stderr`), lines stamped with `clock`'s wall time.
pub fn init(
    path: Option<&Path>,
    debug: bool,
    also_stderr: bool,
    clock: &Clock,
) -> std::io::Result<()> {
    let file = path.map(open).transpose()?;
    let logger = LOGGER.get_or_init(|| FileLogger {
        sink: Mutex::new(Sink {
            path: None,
            file: None,
            also_stderr: false,
            clock: None,
        }),
    });
    {
        let mut s = logger.sink.lock().unwrap_or_else(|p| p.into_inner());
        s.path = path.map(Path::to_owned);
        s.file = file;
        s.also_stderr = also_stderr;
        s.clock = Some(clock.clone());
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

/// `11/26/26 15:26:51.123` for `t` in the system's local time zone (`TZ`, else
/// `/etc/localtime`), as condor daemons write their logs.
pub fn timestamp(t: SystemTime) -> String {
    timestamp_in(t, &jiff::tz::TimeZone::system())
}

/// [`timestamp`] in time zone `tz`.
pub fn timestamp_in(t: SystemTime, tz: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::try_from(t) {
        Ok(ts) => ts
            .to_zoned(tz.clone())
            .strftime("%m/%d/%y %H:%M:%S%.3f")
            .to_string(),
        Err(_) => humantime::format_rfc3339_millis(t).to_string(),
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
        let mut s = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        let now = s.clock.as_ref().map_or(SystemTime::UNIX_EPOCH, Clock::now);
        let line = format!(
            "{} {:<5} {}\n",
            timestamp(now),
            record.level(),
            record.args()
        );
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
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn condor_style_timestamp_in_local_time() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_706_811_123);
        assert_eq!(
            timestamp_in(t, &jiff::tz::TimeZone::UTC),
            "11/26/26 15:26:51.123"
        );
        // No tz database needed: a POSIX rule.
        let chicago = jiff::tz::TimeZone::posix("CST6CDT,M3.2.0,M11.1.0").unwrap();
        assert_eq!(timestamp_in(t, &chicago), "11/26/26 09:26:51.123");
        let plus = jiff::tz::TimeZone::fixed(jiff::tz::offset(13));
        assert_eq!(timestamp_in(t, &plus), "11/27/26 04:26:51.123");
    }

    #[test]
    fn the_log_is_never_opened_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join("CredMonOAuthLog");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = open(&link).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let hard = dir.path().join("hard");
        std::fs::hard_link(&target, &hard).unwrap();
        assert!(open(&hard).unwrap_err().to_string().contains("hard links"));
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Refused without blocking (no reader: ENXIO).
        assert!(open(&fifo).is_err());
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert!(open(&sub).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        let ok = dir.path().join("ok");
        open(&ok).unwrap();
        open(&ok).unwrap();
    }
}
