//! The one way robot-credmon runs other programs (`condor_config_val`,
//! `condor_store_cred`, the OIDC web-open command): found by the same search
//! path rules, given their input on stdin, bounded in time (stopped by pid
//! when they hang) and in output, with the reader threads joined before
//! the result is returned.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
    /// The `$PATH` to search (the caller's environment's, see [`crate::env::Env`]).
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
        if let (Some(data), Some(mut stdin)) = (&self.input, child.stdin.take()) {
            // A program that exits early closes the pipe; its exit code tells why.
            let _ = stdin.write_all(data);
        }
        let stdout = reader(child.stdout.take(), self.max_output);
        let stderr = reader(child.stderr.take(), self.max_output);
        let status = wait_until(&mut child, &path, self.timeout);
        // Killed or exited: the pipes are closed, so the readers end.
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

fn join(r: Reader) -> String {
    r.and_then(|h| h.join().ok()).unwrap_or_default()
}

/// Waits for the child for up to `limit`, then kills it by pid and reaps it.
fn wait_until(child: &mut Child, path: &Path, limit: Duration) -> Result<Option<i32>, RunError> {
    let deadline = Instant::now().checked_add(limit);
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
        let _ = child.kill();
        let _ = child.wait();
        return Err(failure);
    }
}
