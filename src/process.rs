//! The one way robot-credmon runs other programs (`condor_config_val`,
//! `condor_store_cred`, the OIDC web-open command): found by the same search
//! path rules, given their input on stdin, bounded in time (stopped by pid
//! when they hang) and in output, with the reader threads joined before
//! the result is returned.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Default cap on each captured stream.
pub const DEFAULT_MAX_OUTPUT: u64 = 1 << 20;

/// Why a program could not be run to the end.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Not found in the search path.
    #[error("cannot find '{0}' in $PATH, /usr/sbin or /usr/bin (is it installed on this host?)")]
    NotFound(String),
    /// Starting it failed.
    #[error("cannot run '{path}': {source}")]
    Spawn {
        /// The program.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// It did not finish in time and was killed.
    #[error("'{path}' did not finish within {secs} s")]
    Timeout {
        /// The program.
        path: PathBuf,
        /// The limit.
        secs: u64,
    },
    /// Waiting for it failed.
    #[error("cannot wait for '{path}': {source}")]
    Wait {
        /// The program.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Where a program's stdout and stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Captured, up to the cap.
    Capture,
    /// Our own stdout and stderr.
    Inherit,
    /// Discarded.
    Null,
}

/// A program to run.
#[derive(Debug, Clone)]
pub struct Tool {
    /// Program name (searched for) or path (used as is when it holds a `/`).
    pub program: String,
    /// Arguments.
    pub args: Vec<OsString>,
    /// Bytes for stdin; `None` gives it `/dev/null`.
    pub input: Option<Vec<u8>>,
    /// Time limit.
    pub timeout: Duration,
    /// Where the output goes.
    pub output: Output,
    /// Cap on each captured stream, in bytes.
    pub max_output: u64,
    /// The `$PATH` to search (the caller's environment's; [`Tool::new`] takes the process's).
    pub path_var: Option<OsString>,
}

/// A finished run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Exit code; `None` when ended by a signal.
    pub code: Option<i32>,
    /// Standard output (empty unless captured).
    pub stdout: String,
    /// Standard error (empty unless captured).
    pub stderr: String,
}

impl Finished {
    /// Whether the program exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl Tool {
    /// `program args…` with no input, captured output, the default cap and a time limit.
    pub fn new<I, S>(program: &str, args: I, timeout: Duration) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Tool {
            program: program.to_owned(),
            args: args.into_iter().map(Into::into).collect(),
            input: None,
            timeout,
            output: Output::Capture,
            max_output: DEFAULT_MAX_OUTPUT,
            path_var: std::env::var_os("PATH"),
        }
    }

    /// Runs the program to its end (or the time limit).
    pub fn run(&self) -> Result<Finished, RunError> {
        let path = self.locate()?;
        let mut child = self.spawn(&path)?;
        let stdout = reader(child.stdout.take(), self.max_output);
        let stderr = reader(child.stderr.take(), self.max_output);
        let stdin = writer(child.stdin.take(), self.input.clone());
        let deadline = Instant::now().checked_add(self.timeout);
        let status = wait_until(&mut child, &path, deadline, self.timeout);
        // A program it started may still hold the pipes: wait for them until
        // the deadline, then stop its whole process group, so the joins end.
        while [&stdout, &stderr]
            .iter()
            .any(|r| r.as_ref().is_some_and(|h| !h.is_finished()))
            || stdin.as_ref().is_some_and(|h| !h.is_finished())
        {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                kill_group(&child);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(h) = stdin {
            let _ = h.join();
        }
        let stdout = join(stdout);
        let stderr = join(stderr);
        let code = status?;
        Ok(Finished {
            code,
            stdout,
            stderr,
        })
    }

    /// Starts the program with its output discarded and does not wait for it
    /// (a browser may outlive us); a background thread reaps it.
    pub fn start_detached(&self) -> Result<(), RunError> {
        let path = self.locate()?;
        let mut child = self.spawn(&path)?;
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || child.wait())
            .map(drop)
            .map_err(|source| RunError::Spawn { path, source })
    }

    fn locate(&self) -> Result<PathBuf, RunError> {
        find_program(&self.program, self.path_var.as_deref())
            .ok_or_else(|| RunError::NotFound(self.program.clone()))
    }

    fn spawn(&self, path: &Path) -> Result<Child, RunError> {
        let out = || match self.output {
            Output::Capture => Stdio::piped(),
            Output::Inherit => Stdio::inherit(),
            Output::Null => Stdio::null(),
        };
        Command::new(path)
            .args(&self.args)
            // Its own process group, so that a hung tool and what it started stop together.
            .process_group(0)
            .stdin(if self.input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(out())
            .stderr(out())
            .spawn()
            .map_err(|source| RunError::Spawn {
                path: path.to_owned(),
                source,
            })
    }
}

/// Finds `prog`: a name with a `/` is used as is; otherwise each directory of
/// `path_var`, then `/usr/sbin` and `/usr/bin` (HTCondor's storer puts
/// `/usr/sbin` on the path; they come last so a site's wrapper wins).
pub fn find_program(prog: &str, path_var: Option<&OsStr>) -> Option<PathBuf> {
    if prog.contains('/') {
        return is_executable(Path::new(prog)).then(|| PathBuf::from(prog));
    }
    if prog.is_empty() {
        return None;
    }
    std::env::split_paths(path_var.unwrap_or_default())
        .filter(|d| !d.as_os_str().is_empty())
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(prog))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

type Reader = Option<JoinHandle<String>>;

/// Reads a pipe to its end in a thread, keeping the first `cap` bytes.
fn reader<R: Read + Send + 'static>(pipe: Option<R>, cap: u64) -> Reader {
    let mut pipe = pipe?;
    std::thread::Builder::new()
        .name("tool-output".into())
        .spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.by_ref().take(cap).read_to_end(&mut buf);
            // Drain the rest so the program is not blocked on a full pipe.
            let _ = std::io::copy(&mut pipe, &mut std::io::sink());
            String::from_utf8_lossy(&buf).into_owned()
        })
        .ok()
}

/// Feeds `data` to the program's stdin in a thread (a program that does not
/// read must not block us past the time limit), then closes it.
fn writer(pipe: Option<ChildStdin>, data: Option<Vec<u8>>) -> Option<JoinHandle<()>> {
    let (mut pipe, data) = (pipe?, data?);
    std::thread::Builder::new()
        .name("tool-input".into())
        .spawn(move || {
            // A program that exits early closes the pipe; its exit code tells why.
            let _ = pipe.write_all(&data);
        })
        .ok()
}

fn join(r: Reader) -> String {
    r.and_then(|h| h.join().ok()).unwrap_or_default()
}

/// Waits for the child until `deadline`, then kills its process group and reaps it.
fn wait_until(
    child: &mut Child,
    path: &Path,
    deadline: Option<Instant>,
    limit: Duration,
) -> Result<Option<i32>, RunError> {
    loop {
        let failure = match child.try_wait() {
            Ok(Some(st)) => return Ok(st.code()),
            Ok(None) if deadline.is_none_or(|d| Instant::now() < d) => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Ok(None) => RunError::Timeout {
                path: path.to_owned(),
                secs: limit.as_secs(),
            },
            Err(source) => RunError::Wait {
                path: path.to_owned(),
                source,
            },
        };
        kill_group(child);
        let _ = child.kill();
        let _ = child.wait();
        return Err(failure);
    }
}

/// SIGKILL to the child's process group (it leads its own, see [`Tool::run`]).
fn kill_group(child: &Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sh(script: &str, timeout: Duration) -> Tool {
        Tool::new("sh", ["-c", script], timeout)
    }

    #[test]
    fn captures_output_exit_code_and_stdin() {
        let mut t = sh("cat; echo err >&2; exit 3", Duration::from_secs(10));
        t.input = Some(b"hello".to_vec());
        let done = t.run().unwrap();
        assert_eq!(done.code, Some(3));
        assert!(!done.success());
        assert_eq!(
            (done.stdout.as_str(), done.stderr.as_str()),
            ("hello", "err\n")
        );
    }

    #[test]
    fn a_hanging_program_is_killed_at_the_time_limit() {
        let start = Instant::now();
        let err = sh("sleep 30", Duration::from_millis(300))
            .run()
            .unwrap_err();
        assert!(matches!(err, RunError::Timeout { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(10));
        // A program that exits but leaves a child holding its output.
        let start = Instant::now();
        let done = sh("sleep 30 & echo started", Duration::from_millis(500))
            .run()
            .unwrap();
        assert_eq!((done.code, done.stdout.as_str()), (Some(0), "started\n"));
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_program_that_never_reads_its_input_is_bounded() {
        let start = Instant::now();
        let mut t = sh("sleep 30", Duration::from_millis(300));
        t.input = Some(vec![b'x'; 1 << 20]);
        assert!(matches!(t.run().unwrap_err(), RunError::Timeout { .. }));
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn output_is_bounded_and_the_rest_drained() {
        let mut t = sh(
            "head -c 300000 /dev/zero | tr '\\0' x",
            Duration::from_secs(10),
        );
        t.max_output = 1000;
        let done = t.run().unwrap();
        assert!(done.success());
        assert_eq!(done.stdout.len(), 1000);
    }

    #[test]
    fn search_path_rules() {
        let dir = tempfile::tempdir().unwrap();
        let prog = dir.path().join("mytool");
        std::fs::write(&prog, "#!/bin/sh\necho mine\n").unwrap();
        let path_var = OsString::from(dir.path());
        // Not executable: not found.
        assert_eq!(find_program("mytool", Some(&path_var)), None);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_program("mytool", Some(&path_var)), Some(prog.clone()));
        // A path is used as is; /usr/bin comes after $PATH.
        assert_eq!(
            find_program(prog.to_str().unwrap(), None),
            Some(prog.clone())
        );
        assert_eq!(
            find_program("sh", Some(&OsString::new())),
            Some("/usr/bin/sh".into())
        );
        assert_eq!(find_program("", Some(&path_var)), None);
        let mut t = Tool::new("mytool", Vec::<String>::new(), Duration::from_secs(10));
        t.path_var = Some(path_var);
        assert_eq!(t.run().unwrap().stdout, "mine\n");
        t.program = "no-such-tool-here".into();
        assert!(matches!(t.run().unwrap_err(), RunError::NotFound(_)));
    }

    #[test]
    fn detached_start() {
        let mut t = sh("exit 0", Duration::ZERO);
        t.output = Output::Null;
        t.start_detached().unwrap();
        t.program = "no-such-tool-here".into();
        assert!(t.start_detached().is_err());
    }
}
