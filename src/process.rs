//! The one way robot-credmon runs other programs (`condor_config_val`,
//! `condor_store_cred`, the OIDC web-open command): found by the same search
//! path rules, given their input on stdin, bounded in time (stopped by pid
//! when they hang) and in output, with the reader threads joined before
//! the result is returned. The run waits for events (the program's exit,
//! its pipes closing) until a real-time deadline: a real program's time
//! limit is real whatever clock the caller reads.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
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
    /// The `$PATH` to search (the caller's environment's; none: only
    /// `/usr/sbin` and `/usr/bin`).
    pub path_var: Option<OsString>,
    /// Variables set for the program on top of the ones it inherits.
    pub vars: Vec<(OsString, OsString)>,
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
    /// `program args…` with no input, captured output, the default cap, a
    /// time limit and the search path `path_var` (an environment's `$PATH`).
    pub fn new<I, S>(program: &str, args: I, timeout: Duration, path_var: Option<OsString>) -> Self
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
            path_var,
            vars: Vec::new(),
        }
    }

    /// Runs the program to its end (or the time limit).
    pub fn run(&self) -> Result<Finished, RunError> {
        let path = self.locate()?;
        let mut child = self.spawn(&path)?;
        let (tx, events) = mpsc::channel();
        let stdout = reader(child.stdout.take(), self.max_output, tx.clone());
        let stderr = reader(child.stderr.take(), self.max_output, tx.clone());
        let stdin = writer(child.stdin.take(), self.input.clone(), tx.clone());
        let pipes_left = [stdout.is_some(), stderr.is_some(), stdin.is_some()]
            .into_iter()
            .filter(|b| *b)
            .count();
        watch_exit(&child, tx);
        #[allow(clippy::disallowed_methods)] // a real program: its time limit is real time
        let deadline = Instant::now().checked_add(self.timeout);
        let mut progress = Progress {
            events,
            deadline,
            pipes_left,
            exited: false,
        };
        let status = wait_exit(&mut child, &path, &mut progress, self.timeout);
        // A program it started may still hold the pipes: wait for them until
        // the deadline, then stop its whole process group, so the joins end.
        if !progress.pipes_done() {
            kill_group(&child);
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
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
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

/// What the helper threads of a run report: the program exited, or one of
/// its pipes is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Exited,
    PipeDone,
}

/// Reads a pipe to its end in a thread, keeping the first `cap` bytes.
fn reader<R: Read + Send + 'static>(pipe: Option<R>, cap: u64, done: Sender<Event>) -> Reader {
    let mut pipe = pipe?;
    std::thread::Builder::new()
        .name("tool-output".into())
        .spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.by_ref().take(cap).read_to_end(&mut buf);
            // Drain the rest so the program is not blocked on a full pipe.
            let _ = std::io::copy(&mut pipe, &mut std::io::sink());
            let _ = done.send(Event::PipeDone);
            String::from_utf8_lossy(&buf).into_owned()
        })
        .ok()
}

/// Feeds `data` to the program's stdin in a thread (a program that does not
/// read must not block us past the time limit), then closes it.
fn writer(
    pipe: Option<ChildStdin>,
    data: Option<Vec<u8>>,
    done: Sender<Event>,
) -> Option<JoinHandle<()>> {
    let (mut pipe, data) = (pipe?, data?);
    std::thread::Builder::new()
        .name("tool-input".into())
        .spawn(move || {
            // A program that exits early closes the pipe; its exit code tells why.
            let _ = pipe.write_all(&data);
            drop(pipe);
            let _ = done.send(Event::PipeDone);
        })
        .ok()
}

/// Reports the child's exit without reaping it (`waitid` with `WNOWAIT`), so
/// the caller can still stop its process group and reap it.
fn watch_exit(child: &Child, done: Sender<Event>) {
    let Ok(pid) = i32::try_from(child.id()) else {
        let _ = done.send(Event::Exited);
        return;
    };
    let watcher = std::thread::Builder::new()
        .name("tool-exit".into())
        .spawn(move || {
            use nix::sys::wait::{Id, WaitPidFlag, waitid};
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
            while let Err(nix::errno::Errno::EINTR) =
                waitid(Id::Pid(nix::unistd::Pid::from_raw(pid)), flags)
            {}
            let _ = done.send(Event::Exited);
        });
    if watcher.is_err() {
        // No thread: the caller's wait ends at the deadline and kills the program.
        log::warn!("cannot start a thread to wait for process {pid}");
    }
}

/// The events of one run so far, and its deadline.
struct Progress {
    events: Receiver<Event>,
    deadline: Option<Instant>,
    pipes_left: usize,
    exited: bool,
}

impl Progress {
    /// Waits for the next event; false at the deadline (or when no thread
    /// is left to send one).
    fn step(&mut self) -> bool {
        let event = match self.deadline {
            None => self.events.recv().ok(),
            Some(deadline) => {
                #[allow(clippy::disallowed_methods)] // a real program: its time limit is real time
                let left = deadline.saturating_duration_since(Instant::now());
                self.events.recv_timeout(left).ok()
            }
        };
        match event {
            Some(Event::Exited) => self.exited = true,
            Some(Event::PipeDone) => self.pipes_left = self.pipes_left.saturating_sub(1),
            None => return false,
        }
        true
    }

    /// Waits until every pipe is done; false when time ran out first.
    fn pipes_done(&mut self) -> bool {
        while self.pipes_left > 0 {
            if !self.step() {
                return false;
            }
        }
        true
    }
}

fn join(r: Reader) -> String {
    r.and_then(|h| h.join().ok()).unwrap_or_default()
}

/// Waits for the child's exit until the deadline, then kills its process
/// group and reaps it.
fn wait_exit(
    child: &mut Child,
    path: &Path,
    progress: &mut Progress,
    limit: Duration,
) -> Result<Option<i32>, RunError> {
    loop {
        let failure = match child.try_wait() {
            // Pipe events may come first; the exit event (or the deadline) ends the wait.
            Ok(None) if !progress.exited && progress.step() => continue,
            Ok(Some(st)) => return Ok(st.code()),
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
    // Real programs: the tests measure their real duration.
    #![allow(clippy::disallowed_methods)]
    use super::*;

    fn sh(script: &str, timeout: Duration) -> Tool {
        Tool::new("sh", ["-c", script], timeout, Some("/usr/bin:/bin".into()))
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
        let mut t = Tool::new(
            "mytool",
            Vec::<String>::new(),
            Duration::from_secs(10),
            Some(path_var),
        );
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
