//! condor_master's part: runs the credmon, restarts it after it dies (its
//! backoff: 9 s + 2^n, n reset after 300 s up) or 1 s after a
//! `condor_restart` (SIGTERM), watches for its `pid` file, and signals it
//! only while it is our unreaped child (a stale `pid` file never makes us
//! signal another process on this machine).

use super::schedule::{MASTER_COMMAND_DELAY, MASTER_RECOVER, master_delay};
use super::world::{Trouble, World};
use nix::sys::signal::{
    SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, kill, pthread_sigmask, sigaction,
};
use nix::unistd::Pid;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How a credmon process ended.
#[derive(Debug, Clone)]
pub struct Exit {
    pub pid: u32,
    pub at: f64,
    pub uptime: f64,
    /// "exit N" or "signal N".
    pub status: String,
    /// What we did to it: "kill-9", "sigterm", or "" (nothing: a finding).
    pub cause: &'static str,
    /// A SIGHUP sent this many ms after exec, if one was.
    pub hup_after_exec_ms: Option<f64>,
}

/// One start of the credmon.
#[derive(Debug, Clone)]
pub struct Start {
    pub at: f64,
    /// Seconds from exec to the `pid` file naming it.
    pub pid_file_after: Option<f64>,
    /// Seconds from exec to its first `CREDMON_COMPLETE`.
    pub complete_after: Option<f64>,
    pub hup_after_exec_ms: Option<f64>,
}

struct Running {
    child: Child,
    started: Instant,
    start_index: usize,
    /// What we did to it, and when (to give up on SIGTERM after 10 s).
    stopping: Option<(&'static str, Instant)>,
}

struct Inner {
    running: Option<Running>,
    /// When to start it again, and the restart counter after that start.
    restart_at: Option<Instant>,
    restarts: u32,
    /// The open `CredmonDown` window.
    down: Option<usize>,
    starts: Vec<Start>,
    exits: Vec<Exit>,
    rng: fastrand::Rng,
}

/// The credmon's supervisor.
pub struct Master {
    inner: Mutex<Inner>,
    world: Arc<World>,
    binary: PathBuf,
    env: Vec<(String, String)>,
    stderr: PathBuf,
}

impl Master {
    /// A supervisor that starts `binary credmon` with `env` as soon as
    /// [`Master::tick`] runs.
    pub fn new(
        world: Arc<World>,
        binary: PathBuf,
        env: Vec<(String, String)>,
        stderr: PathBuf,
        seed: u64,
    ) -> Master {
        let down = world.open(Trouble::CredmonDown);
        Master {
            inner: Mutex::new(Inner {
                running: None,
                restart_at: Some(Instant::now()),
                restarts: 0,
                down: Some(down),
                starts: Vec::new(),
                exits: Vec::new(),
                rng: fastrand::Rng::with_seed(seed ^ 0x6d61_7374_6572),
            }),
            world,
            binary,
            env,
            stderr,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The running credmon's pid and uptime.
    pub fn current(&self) -> Option<(u32, f64)> {
        let g = self.lock();
        let r = g.running.as_ref()?;
        Some((r.child.id(), r.started.elapsed().as_secs_f64()))
    }

    /// The credd's kick: SIGHUP to the pid in the `pid` file, only if that
    /// is the running credmon. Returns whether it was sent.
    pub fn kick(&self) -> bool {
        let pid = std::fs::read_to_string(self.world.cred_dir.join("pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        let g = self.lock();
        match (&g.running, pid) {
            (Some(r), Some(p)) if r.child.id() == p && r.stopping.is_none() => {
                kill(Pid::from_raw(p as i32), Signal::SIGHUP).is_ok()
            }
            _ => false,
        }
    }

    /// `kill -9` (`"kill-9"`) or SIGTERM (`"sigterm"`); false when no credmon runs.
    pub fn stop(&self, how: &'static str) -> bool {
        let mut g = self.lock();
        let Some(r) = g.running.as_mut().filter(|r| r.stopping.is_none()) else {
            return false;
        };
        let sig = if how == "kill-9" {
            Signal::SIGKILL
        } else {
            Signal::SIGTERM
        };
        let _ = kill(Pid::from_raw(r.child.id() as i32), sig);
        r.stopping = Some((how, Instant::now()));
        if g.down.is_none() {
            g.down = Some(self.world.open(Trouble::CredmonDown));
        }
        true
    }

    /// One look (every few ms): reap, restart, watch the `pid` file and `CREDMON_COMPLETE`.
    pub fn tick(&self) {
        let mut g = self.lock();
        self.reap(&mut g);
        if g.running.is_none()
            && let Some(at) = g.restart_at
            && Instant::now() >= at
        {
            g.restart_at = None;
            self.spawn(&mut g);
        }
        self.watch(&mut g);
    }

    fn reap(&self, g: &mut Inner) {
        let Some(r) = g.running.as_mut() else { return };
        let status = match r.child.try_wait() {
            Ok(Some(s)) => s,
            Ok(None) => {
                // condor_master gives a SIGTERM'd daemon time, then kills it.
                if let Some(("sigterm", at)) = r.stopping
                    && at.elapsed() > Duration::from_secs(10)
                {
                    let _ = r.child.kill();
                }
                return;
            }
            Err(_) => return,
        };
        let Some(r) = g.running.take() else { return };
        let uptime = r.started.elapsed();
        let cause = r.stopping.map_or("", |s| s.0);
        let hup = g
            .starts
            .get(r.start_index)
            .and_then(|s| s.hup_after_exec_ms);
        g.exits.push(Exit {
            pid: r.child.id(),
            at: self.world.clock.now(),
            uptime: uptime.as_secs_f64(),
            status: match (status.code(), status.signal()) {
                (Some(c), _) => format!("exit {c}"),
                (_, Some(s)) => format!("signal {s}"),
                _ => "unknown".into(),
            },
            cause,
            hup_after_exec_ms: hup,
        });
        if g.down.is_none() {
            g.down = Some(self.world.open(Trouble::CredmonDown));
        }
        let by_command = cause == "sigterm";
        if by_command || uptime >= MASTER_RECOVER {
            g.restarts = 0;
        }
        let delay = if by_command {
            MASTER_COMMAND_DELAY
        } else {
            let d = master_delay(g.restarts);
            g.restarts += 1;
            d
        };
        g.restart_at = Some(Instant::now() + delay);
    }

    fn spawn(&self, g: &mut Inner) {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("credmon")
            .env_clear()
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr)
        {
            Ok(f) => cmd.stderr(f),
            Err(_) => cmd.stderr(Stdio::null()),
        };
        // SAFETY: only async-signal-safe calls between fork and exec: the
        // child starts as under condor_master, with no signal blocked and
        // the default actions (`nohup` would leave SIGHUP ignored).
        unsafe {
            cmd.pre_exec(|| {
                let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
                for sig in [
                    Signal::SIGHUP,
                    Signal::SIGTERM,
                    Signal::SIGINT,
                    Signal::SIGQUIT,
                ] {
                    sigaction(sig, &dfl).map_err(std::io::Error::from)?;
                }
                pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
                    .map_err(std::io::Error::from)
            });
        }
        let hup_at = (g.rng.f64() < 0.5).then(|| g.rng.f64() * 10.0);
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("soak: cannot start the credmon: {e}; retrying in 10 s");
                g.restart_at = Some(Instant::now() + Duration::from_secs(10));
                return;
            }
        };
        let started = Instant::now();
        let mut hup_after = None;
        if let Some(ms) = hup_at {
            // condor_reconfig right after the start: SIGHUP within 10 ms of exec.
            let at = started + Duration::from_secs_f64(ms / 1000.0);
            while Instant::now() < at {
                std::hint::spin_loop();
            }
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGHUP);
            hup_after = Some(started.elapsed().as_secs_f64() * 1000.0);
        }
        g.starts.push(Start {
            at: self.world.clock.at(started),
            pid_file_after: None,
            complete_after: None,
            hup_after_exec_ms: hup_after,
        });
        g.running = Some(Running {
            child,
            started,
            start_index: g.starts.len() - 1,
            stopping: None,
        });
    }

    fn watch(&self, g: &mut Inner) {
        let Some(r) = g.running.as_ref() else { return };
        let (pid, started, i) = (r.child.id(), r.started, r.start_index);
        let Some(s) = g.starts.get_mut(i) else { return };
        if s.pid_file_after.is_none() {
            let named = std::fs::read_to_string(self.world.cred_dir.join("pid"))
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok());
            if named == Some(pid) {
                s.pid_file_after = Some(started.elapsed().as_secs_f64());
                if let Some(w) = g.down.take() {
                    self.world.close(w);
                }
            }
        } else if s.complete_after.is_none() {
            let done = std::fs::metadata(self.world.cred_dir.join("CREDMON_COMPLETE"))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| self.world.clock.of_wall(0) + d.as_secs_f64());
            if let Some(t) = done
                && t > s.at
            {
                s.complete_after = Some(t - s.at);
            }
        }
    }

    /// Stops the credmon for good (SIGTERM, then SIGKILL after 10 s);
    /// returns its exit status.
    pub fn shutdown(&self) -> Option<String> {
        let mut g = self.lock();
        g.restart_at = None;
        let mut r = g.running.take()?;
        let _ = kill(Pid::from_raw(r.child.id() as i32), Signal::SIGTERM);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(s)) = r.child.try_wait() {
                return Some(format!("{s}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = r.child.kill();
        let _ = r.child.wait();
        Some("killed after 10 s".into())
    }

    pub fn starts(&self) -> Vec<Start> {
        self.lock().starts.clone()
    }

    pub fn exits(&self) -> Vec<Exit> {
        self.lock().exits.clone()
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        let mut g = self.lock();
        if let Some(mut r) = g.running.take() {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
    }
}
