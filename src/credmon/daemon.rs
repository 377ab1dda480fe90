//! The daemon: a coordinator thread that scans the credential directory and
//! fills a two-level queue (urgent first), and a fixed set of worker threads
//! that refresh credentials concurrently. SIGHUP makes the coordinator look
//! at changed user directories at once (new credentials jump the queue),
//! re-read the configuration and start a full pass.

use super::config::{Config, MAX_TOP_BYTES};
use super::policy::{self, NotOurs};
use super::refresh::{self, Ctx, Key, Outcome, Task};
use crate::backoff::Backoff;
use crate::files::SafeDir;
use crate::metrics::CredmonMetrics;
use crate::notify;
use nix::sys::stat::SFlag;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// Longest per-credential retry delay.
const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// How long an unusable `.top` is left alone unless it changes.
const UNUSABLE_RETRY: Duration = Duration::from_secs(3600);

struct Entry {
    task: Task,
    pass: bool,
    top_ctime: i128,
}

struct Retry {
    failures: u32,
    at: Instant,
    top_ctime: i128,
    /// The `.top` is unusable (not a passing failure).
    unusable: bool,
}

/// What a worker did to a credential since the scan of the current pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// A new `.use` with this expiry.
    Refreshed(Option<i64>),
    /// The credential was removed.
    Removed,
}

#[derive(Default)]
struct QState {
    urgent: VecDeque<Key>,
    normal: VecDeque<Key>,
    queued: HashMap<Key, Entry>,
    in_flight: HashSet<Key>,
    retry: HashMap<Key, Retry>,
    pass_active: bool,
    pass_pending: usize,
    pass_failed: usize,
    pass_refreshed: usize,
    hup: bool,
    /// A background configuration read has finished.
    reload_done: bool,
    stop: bool,
    workers: usize,
    /// Results since the scan of the current pass (for the per-state counts).
    seen: HashMap<Key, Seen>,
    metrics: CredmonMetrics,
}

/// The work queue shared by the coordinator and the workers.
pub struct Queue {
    st: Mutex<QState>,
    work: Condvar,
    coord: Condvar,
    /// Held while the metrics file is written (and by the exiting signal
    /// thread); the last write error, logged once.
    metrics_file: Mutex<Option<String>>,
}

impl Queue {
    /// An empty queue served by `workers` threads.
    pub fn new(workers: usize) -> Self {
        Self {
            st: Mutex::new(QState {
                workers,
                ..QState::default()
            }),
            work: Condvar::new(),
            coord: Condvar::new(),
            metrics_file: Mutex::new(None),
        }
    }

    /// Writes the metrics to `path` atomically and returns the write lock:
    /// whoever holds it keeps everyone else from writing the file (the
    /// signal thread holds it until the process exits). Errors are logged.
    pub fn write_metrics(&self, path: &Path) -> MutexGuard<'_, Option<String>> {
        let mut last_error = self.metrics_file.lock().unwrap_or_else(|p| p.into_inner());
        let metrics = self.lock().metrics.clone();
        match metrics.write(path) {
            Ok(()) => *last_error = None,
            Err(e) => {
                let msg = format!("cannot write the metrics file: {e}");
                if last_error.as_deref() != Some(msg.as_str()) {
                    log::error!("{msg}");
                    *last_error = Some(msg);
                }
            }
        }
        last_error
    }

    fn lock(&self) -> MutexGuard<'_, QState> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks for an immediate look at the credential directory (SIGHUP).
    pub fn hup(&self) {
        self.lock().hup = true;
        self.coord.notify_all();
    }

    /// Sets how many workers may run requests at once.
    fn set_workers(&self, n: usize) {
        self.lock().workers = n;
        self.work.notify_all();
    }
}

/// Adds a job; urgent jobs go ahead of everything queued. Returns whether it is queued.
fn enqueue(
    st: &mut QState,
    key: Key,
    task: Task,
    urgent: bool,
    pass: bool,
    top_ctime: i128,
) -> bool {
    if st.in_flight.contains(&key) {
        return false;
    }
    if let Some(r) = st.retry.get(&key)
        && r.at > Instant::now()
        && r.top_ctime == top_ctime
        && task == Task::Refresh
    {
        return false;
    }
    if let Some(e) = st.queued.get_mut(&key) {
        // Already waiting: a SIGHUP does not promote it. Only credentials that
        // are new to the queue jump it, so that during a full pass the new
        // arrival is not mixed with thousands of queued ones.
        if pass && !e.pass {
            e.pass = true;
            st.pass_pending += 1;
        }
        return true;
    }
    if urgent {
        st.urgent.push_back(key.clone());
    } else {
        st.normal.push_back(key.clone());
    }
    if pass {
        st.pass_pending += 1;
    }
    st.queued.insert(
        key,
        Entry {
            task,
            pass,
            top_ctime,
        },
    );
    true
}

/// Index of the extra worker that only serves urgent jobs (SIGHUP arrivals),
/// so that they never wait for a busy worker during a full pass.
pub const URGENT_WORKER: usize = usize::MAX;

/// The worker loop: take the most urgent job, run it, record the outcome.
pub fn worker(index: usize, ctx: Arc<Ctx>, q: Arc<Queue>) {
    loop {
        let job = {
            let mut st = q.lock();
            loop {
                if st.stop {
                    return;
                }
                let next = if index == URGENT_WORKER {
                    st.urgent.pop_front()
                } else if index < st.workers {
                    st.urgent.pop_front().or_else(|| st.normal.pop_front())
                } else {
                    None
                };
                if let Some(key) = next {
                    if let Some(e) = st.queued.remove(&key) {
                        st.in_flight.insert(key.clone());
                        break (key, e);
                    }
                    continue;
                }
                st = q
                    .work
                    .wait_timeout(st, Duration::from_secs(5))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
        };
        let (key, entry) = job;
        let t0 = Instant::now();
        let outcome = refresh::process(&ctx, &key, &entry.task);
        let took = t0.elapsed();
        let base = ctx.config().backoff_base;
        let mut st = q.lock();
        st.in_flight.remove(&key);
        record(&mut st, &key, &entry, &outcome, base, took);
        if entry.pass {
            st.pass_pending = st.pass_pending.saturating_sub(1);
            if st.pass_pending == 0 {
                q.coord.notify_all();
            }
        }
    }
}

fn record(
    st: &mut QState,
    key: &Key,
    entry: &Entry,
    outcome: &Outcome,
    base: Duration,
    took: Duration,
) {
    let backoff = Backoff {
        base,
        cap: BACKOFF_CAP,
    };
    let now = Instant::now();
    if let Outcome::Refreshed(exp, cause) = outcome {
        st.metrics.record_refresh(SystemTime::now(), cause, took);
        st.seen.insert(key.clone(), Seen::Refreshed(*exp));
    }
    if let Some(cause) = outcome.failure_cause() {
        st.metrics.record_failure(cause, took);
    }
    let failures = st.retry.get(key).map_or(0, |r| r.failures);
    let retry_at = match outcome {
        Outcome::Refreshed(..) | Outcome::Nothing | Outcome::Removed(_) => {
            st.retry.remove(key);
            if matches!(outcome, Outcome::Removed(_)) {
                st.seen.insert(key.clone(), Seen::Removed);
            }
            if matches!(outcome, Outcome::Refreshed(..)) && entry.pass {
                st.pass_refreshed += 1;
            }
            return;
        }
        Outcome::Unusable => now + UNUSABLE_RETRY,
        Outcome::Failed(_) => now + backoff.delay(failures, fastrand::f64()),
        Outcome::RateLimited(d) => now + (*d).max(backoff.delay(failures, fastrand::f64())),
    };
    if entry.pass {
        st.pass_failed += 1;
    }
    st.retry.insert(
        key.clone(),
        Retry {
            failures: failures.saturating_add(1),
            at: retry_at,
            top_ctime: entry.top_ctime,
            unusable: *outcome == Outcome::Unusable,
        },
    );
}

/// A credential the scan found in need of work.
pub struct Found {
    key: Key,
    task: Task,
    urgent: bool,
    top_ctime: i128,
}

/// What the coordinator remembers between scans.
#[derive(Default)]
pub struct Scanner {
    dir_stamps: HashMap<String, (i128, i128)>,
    /// Per user directory, as of a full look: its stamp and its credentials.
    full_cache: HashMap<String, ((i128, i128), Vec<Cached>)>,
    full_scans: u64,
    /// Credentials queued or in flight, skipped by quick looks (set around them).
    known: HashSet<Key>,
    use_cache: HashMap<Key, (u64, i128, i64, Option<i64>)>,
    cleaned: HashSet<String>,
    warned: HashSet<String>,
    /// Problems (bad names, unusable files) found by the last scan.
    pub problems: usize,
}

/// What a full look found about one credential.
#[derive(Clone)]
struct Cached {
    stem: String,
    top_ctime: i128,
    use_state: Option<policy::UseState>,
}

/// Every this many full passes, every user directory is read again even if
/// its stamp did not change (a `.top` rewritten in place, a touched `.use`).
const COMPLETE_SCAN_EVERY: u64 = 10;

fn is_dir(st: &nix::sys::stat::FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR
}

fn kind(st: &nix::sys::stat::FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

fn ns(s: i64, n: i64) -> i128 {
    i128::from(s) * 1_000_000_000 + i128::from(n)
}

impl Scanner {
    fn warn(&mut self, msg: String) {
        self.problems += 1;
        if self.warned.insert(msg.clone()) {
            log::warn!("{msg}");
        }
    }

    /// Looks at every user directory (or only those changed since the last
    /// look) and returns the credentials that need work.
    pub fn scan(&mut self, cfg: &Config, root: &SafeDir, only_changed: bool) -> Vec<Found> {
        self.problems = 0;
        let mut out = Vec::new();
        let names = match root.entries() {
            Ok(n) => n,
            Err(e) => {
                log::error!("{e}");
                self.problems += 1;
                return out;
            }
        };
        let now = refresh::now_ns(SystemTime::now());
        let mut seen = HashSet::new();
        let use_full_cache = if only_changed {
            false
        } else {
            self.full_scans += 1;
            self.full_scans % COMPLETE_SCAN_EVERY != 1
        };
        for user in names {
            let Ok(Some(st)) = root.stat(&user) else {
                continue;
            };
            if kind(&st) == SFlag::S_IFLNK {
                self.warn(format!(
                    "skipping {}: a symbolic link where a user directory should be",
                    root.path().join(&user).display()
                ));
                continue;
            }
            if !is_dir(&st) {
                continue;
            }
            if !policy::valid_cred_name(&user) {
                if !user.starts_with('.') {
                    self.warn(format!(
                        "skipping user directory with an invalid name {user:?}"
                    ));
                }
                continue;
            }
            seen.insert(user.clone());
            let stamp = (
                ns(st.st_mtime, st.st_mtime_nsec),
                ns(st.st_ctime, st.st_ctime_nsec),
            );
            if only_changed && self.dir_stamps.get(&user) == Some(&stamp) {
                continue;
            }
            self.dir_stamps.insert(user.clone(), stamp);
            if !only_changed && use_full_cache {
                // Unchanged since the last full look: decide from memory, no system calls.
                if let Some((s, creds)) = self.full_cache.get(&user)
                    && *s == stamp
                {
                    for c in creds {
                        let reason = policy::should_renew(
                            c.use_state,
                            c.top_ctime,
                            now,
                            cfg.minimum,
                            cfg.refresh,
                        );
                        if let Some(reason) = reason {
                            out.push(Found {
                                key: Key {
                                    user: user.clone(),
                                    stem: c.stem.clone(),
                                },
                                task: Task::Refresh,
                                urgent: reason.urgent(),
                                top_ctime: c.top_ctime,
                            });
                        }
                    }
                    continue;
                }
            }
            let creds = self.scan_user(cfg, root, &user, now, only_changed, &mut out);
            if !only_changed {
                self.full_cache.insert(user.clone(), (stamp, creds));
            }
        }
        if !only_changed {
            self.dir_stamps.retain(|u, _| seen.contains(u));
            self.full_cache.retain(|u, _| seen.contains(u));
            self.use_cache.retain(|k, _| seen.contains(&k.user));
        }
        out
    }

    fn scan_user(
        &mut self,
        cfg: &Config,
        root: &SafeDir,
        user: &str,
        now: i128,
        quick: bool,
        out: &mut Vec<Found>,
    ) -> Vec<Cached> {
        let mut creds = Vec::new();
        let dir = match root.open_child(user) {
            Ok(d) => d,
            Err(e) => {
                self.warn(format!("skipping user {user}: {e}"));
                return creds;
            }
        };
        if self.cleaned.insert(user.to_owned()) {
            match dir.remove_stale_temps() {
                Ok(0) => {}
                Ok(n) => log::info!(
                    "removed {n} leftover temporary file(s) in {}",
                    dir.path().display()
                ),
                Err(e) => log::warn!("{e}"),
            }
        }
        let entries = match dir.entries() {
            Ok(e) => e,
            Err(e) => {
                self.warn(e.to_string());
                return creds;
            }
        };
        for name in entries {
            let Some(stem) = name.strip_suffix(".top") else {
                continue;
            };
            if stem.starts_with('.') {
                continue;
            }
            if !policy::valid_cred_name(stem) {
                self.warn(format!("skipping {user}/{name:?}: invalid credential name"));
                continue;
            }
            match policy::ours(stem, &cfg.providers) {
                Ok(()) => {}
                Err(NotOurs::TrailingUnderscore) => {
                    self.warn(format!(
                        "skipping {user}/{name}: a name must not end in '_'"
                    ));
                    continue;
                }
                Err(_) => continue,
            }
            let key = Key {
                user: user.to_owned(),
                stem: stem.to_owned(),
            };
            if quick && self.known.contains(&key) {
                continue;
            }
            let top = match dir.stat(&name) {
                Ok(Some(st)) => st,
                _ => continue,
            };
            let path = dir.path().join(&name);
            if kind(&top) != SFlag::S_IFREG {
                self.warn(format!("skipping {}: not a regular file", path.display()));
                continue;
            }
            if top.st_nlink > 1 {
                self.warn(format!(
                    "skipping {}: it has several hard links",
                    path.display()
                ));
                continue;
            }
            if top.st_size as u64 > MAX_TOP_BYTES as u64 {
                self.warn(format!(
                    "skipping {}: larger than {MAX_TOP_BYTES} bytes",
                    path.display()
                ));
                continue;
            }
            let top_ctime = refresh::ctime_ns(&top);
            if quick {
                // Only new or replaced credentials: a stat is enough.
                let fresh = matches!(dir.stat(&format!("{stem}.use")), Ok(Some(u))
                    if kind(&u) == SFlag::S_IFREG && refresh::ctime_ns(&u) >= top_ctime);
                if !fresh {
                    out.push(Found {
                        key,
                        task: Task::Refresh,
                        urgent: true,
                        top_ctime,
                    });
                }
                continue;
            }
            let use_state = self.use_state(&dir, &key);
            creds.push(Cached {
                stem: key.stem.clone(),
                top_ctime,
                use_state,
            });
            if let Some(reason) =
                policy::should_renew(use_state, top_ctime, now, cfg.minimum, cfg.refresh)
            {
                out.push(Found {
                    key,
                    task: Task::Refresh,
                    urgent: reason.urgent(),
                    top_ctime,
                });
            }
        }
        creds
    }

    /// The `.use` state, reading the file only when it changed since last time.
    fn use_state(&mut self, dir: &SafeDir, key: &Key) -> Option<policy::UseState> {
        let name = format!("{}.use", key.stem);
        let st = dir.stat(&name).ok().flatten()?;
        if kind(&st) != SFlag::S_IFREG {
            return None;
        }
        let ctime = refresh::ctime_ns(&st);
        let id = (st.st_ino, ctime, st.st_size);
        if let Some(&(ino, c, size, exp)) = self.use_cache.get(key)
            && (ino, c, size) == id
        {
            return Some(policy::UseState {
                ctime_ns: ctime,
                exp,
            });
        }
        let state = refresh::read_use(dir, &key.stem)?;
        self.use_cache
            .insert(key.clone(), (st.st_ino, ctime, st.st_size, state.exp));
        Some(state)
    }

    /// Keytab users' missing provisioned `.top` files.
    pub fn provision(&mut self, cfg: &Config, root: &SafeDir) -> Vec<Found> {
        let mut out = Vec::new();
        let Some(kdir) = &cfg.keytab_dir else {
            return out;
        };
        if cfg.provision.is_empty() {
            return out;
        }
        let names = match std::fs::read_dir(kdir) {
            Ok(r) => r,
            Err(e) => {
                self.warn(format!(
                    "cannot read ROBOT_CREDMON_KEYTAB_DIR '{}': {e}",
                    kdir.display()
                ));
                return out;
            }
        };
        for entry in names.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(user) = name.strip_suffix(".keytab") else {
                continue;
            };
            if !policy::valid_cred_name(user) {
                continue;
            }
            let udir = root.open_child(user).ok();
            for p in &cfg.provision {
                let exists = udir
                    .as_ref()
                    .is_some_and(|d| matches!(d.stat(&format!("{}.top", p.service)), Ok(Some(_))));
                if !exists {
                    out.push(Found {
                        key: Key {
                            user: user.to_owned(),
                            stem: p.service.clone(),
                        },
                        task: Task::Provision(p.server.clone()),
                        urgent: true,
                        top_ctime: 0,
                    });
                }
            }
        }
        out
    }
}

/// The single-instance lock file in the credential directory (a dot file,
/// which the credd and the scans ignore).
pub const LOCK_FILE: &str = ".robot-credmon.lock";

/// Takes the credential directory's single-instance lock, held until the
/// returned file is dropped (the process exits). Another credmon holding it
/// is waited for up to `wait` (condor_restart may start the new credmon
/// while the old one is still exiting); then this is an error naming it.
pub fn single_instance(cred_dir: &Path, wait: Duration) -> Result<std::fs::File, String> {
    use nix::fcntl::OFlag;
    use std::os::unix::fs::OpenOptionsExt;
    let path = cred_dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
        .open(&path)
        .map_err(|e| format!("cannot open the lock file '{}': {e}", path.display()))?;
    match file.metadata() {
        Ok(m) if m.file_type().is_file() => {}
        _ => {
            return Err(format!(
                "the lock file '{}' is not a regular file; remove it",
                path.display()
            ));
        }
    }
    let deadline = Instant::now() + wait;
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                let other = std::fs::read_to_string(cred_dir.join("pid")).unwrap_or_default();
                let other = other.trim();
                if Instant::now() >= deadline {
                    return Err(format!(
                        "another credmon (pid {}) is already running on '{}'; stop it first",
                        if other.is_empty() { "unknown" } else { other },
                        cred_dir.display()
                    ));
                }
                if !told {
                    log::info!(
                        "waiting for the other credmon (pid {other}) on {} to exit",
                        cred_dir.display()
                    );
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock '{}': {e}", path.display()));
            }
        }
    }
}

/// Removes the credential directory's `pid` file when it names this process
/// (clean exit), so that the credd signals no stale pid.
pub fn remove_pid_file(cred_dir: &Path) {
    let Ok(dir) = SafeDir::open(cred_dir) else {
        return;
    };
    let ours = std::process::id().to_string();
    if let Ok(Some((text, _))) = dir.read("pid", 64, true)
        && String::from_utf8_lossy(&text).trim() == ours
        && let Err(e) = dir.remove("pid")
    {
        log::warn!("{e}");
    }
}

/// SIGHUP: queues every credential skipped as unusable at once (the checks
/// are local, and a corrected configuration or `.top` must heal it without
/// waiting for the hourly retry); when the configuration changed, failing
/// credentials are retried at once too. Returns how many were queued.
fn retry_skipped(st: &mut QState, config_changed: bool, now: Instant) -> usize {
    let keys: Vec<(Key, i128, bool)> = st
        .retry
        .iter()
        .filter(|(_, r)| r.unusable || config_changed)
        .map(|(k, r)| (k.clone(), r.top_ctime, r.unusable))
        .collect();
    let mut n = 0;
    for (key, top_ctime, unusable) in keys {
        if unusable {
            st.retry.remove(&key);
        } else if let Some(r) = st.retry.get_mut(&key) {
            r.at = now;
            continue;
        }
        if enqueue(st, key, Task::Refresh, true, false, top_ctime) {
            n += 1;
        }
    }
    n
}

/// Sends `DC_SET_READY` to the parent condor_master (when there is one) from a
/// short-lived thread, so that a slow master never holds up the passes.
/// A failure is a warning: the credmon works on either way.
fn tell_master_ready(name: &str) {
    if !crate::condor::under_master() {
        return;
    }
    let name = name.to_owned();
    let started = std::thread::Builder::new()
        .name("master-ready".into())
        .spawn(move || match crate::condor::set_ready(&name, "Ready") {
            Ok(()) => log::info!("told condor_master that {name} is ready (DC_SET_READY)"),
            Err(e) => log::warn!("could not tell condor_master that {name} is ready: {e}"),
        });
    if let Err(e) = started {
        log::warn!("could not tell condor_master that the credmon is ready: {e}");
    }
}

/// Queues what a scan found; returns how many were queued.
/// Full passes queue everything as normal work; only SIGHUP arrivals jump the queue.
fn queue_found(q: &Queue, found: Vec<Found>, pass: bool) -> usize {
    let mut st = q.lock();
    let mut n = 0;
    for f in found {
        if enqueue(&mut st, f.key, f.task, f.urgent && !pass, pass, f.top_ctime) {
            n += 1;
        }
    }
    drop(st);
    if n > 0 {
        q.work.notify_all();
    }
    n
}

/// Everything the coordinator needs.
pub struct Coordinator {
    /// Worker context.
    pub ctx: Arc<Ctx>,
    /// The queue.
    pub queue: Arc<Queue>,
    /// Scan memory.
    pub scanner: Scanner,
    /// Re-reads the configuration (SIGHUP); `None` keeps the current one.
    /// It runs on its own thread (`condor_config_val` may take seconds), so
    /// that SIGHUPs for new credentials are served meanwhile.
    pub reload: Reload,
    /// Worker threads started so far.
    pub spawned: usize,
    /// Full passes completed; systemd is told `READY=1` after the first.
    pub passes: u64,
}

/// The configuration reader and its background run.
pub struct Reload {
    read: Option<ReadConfig>,
    running: Option<std::thread::JoinHandle<(ReadConfig, Option<Config>)>>,
    again: bool,
}

type ReadConfig = Box<dyn FnMut() -> Option<Config> + Send>;

impl Reload {
    /// Wraps the function that re-reads the configuration.
    pub fn new(read: impl FnMut() -> Option<Config> + Send + 'static) -> Self {
        Reload {
            read: Some(Box::new(read)),
            running: None,
            again: false,
        }
    }
}

/// Result of a `--once` pass.
pub struct PassReport {
    /// Credentials refreshed.
    pub refreshed: usize,
    /// Credentials that failed or could not be used.
    pub failed: usize,
}

impl Coordinator {
    /// Starts worker threads until `n` exist.
    pub fn spawn_workers(&mut self, n: usize) {
        if self.spawned == 0 {
            let (ctx, q) = (self.ctx.clone(), self.queue.clone());
            let started = std::thread::Builder::new()
                .name("worker-urgent".into())
                .stack_size(1024 * 1024)
                .spawn(move || worker(URGENT_WORKER, ctx, q));
            if let Err(e) = started {
                log::error!("cannot start a worker thread: {e}");
            }
        }
        while self.spawned < n {
            let (ctx, q, i) = (self.ctx.clone(), self.queue.clone(), self.spawned);
            let started = std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .stack_size(1024 * 1024)
                .spawn(move || worker(i, ctx, q));
            if let Err(e) = started {
                log::error!("cannot start a worker thread: {e}");
                return;
            }
            self.spawned += 1;
        }
    }

    fn root(&self) -> Option<SafeDir> {
        let cfg = self.ctx.config();
        match SafeDir::open(&cfg.cred_dir) {
            Ok(d) => Some(d),
            Err(e) => {
                log::error!("{e}");
                None
            }
        }
    }

    /// Starts a full pass: removes `CREDMON_COMPLETE`, scans everything, queues the work.
    fn start_pass(&mut self) {
        let cfg = self.ctx.config();
        let Some(root) = self.root() else {
            return;
        };
        if let Err(e) = root.remove("CREDMON_COMPLETE") {
            log::warn!("{e}");
        }
        let t0 = Instant::now();
        // Results from here on override what the scan reads.
        self.queue.lock().seen.clear();
        let mut found = self.scanner.provision(&cfg, &root);
        found.extend(self.scanner.scan(&cfg, &root, false));
        // Interleave users so that concurrent writes go to different directories.
        found.sort_by(|a, b| (&a.key.stem, &a.key.user).cmp(&(&b.key.stem, &b.key.user)));
        {
            let mut st = self.queue.lock();
            st.pass_active = true;
            st.pass_failed = self.scanner.problems;
            st.pass_refreshed = 0;
        }
        let n = queue_found(&self.queue, found, true);
        log::debug!(
            "full pass: {n} credential(s) queued after a {:.1} ms scan",
            t0.elapsed().as_secs_f64() * 1000.0
        );
    }

    fn finish_pass(&mut self) {
        let (refreshed, failed) = {
            let mut st = self.queue.lock();
            st.pass_active = false;
            (st.pass_refreshed, st.pass_failed)
        };
        if let Some(root) = self.root() {
            let touch = root.write_atomic(
                "CREDMON_COMPLETE",
                b"",
                crate::files::WriteOptions {
                    mode: 0o644,
                    owner: None,
                    existing_owner: None,
                    replace_symlink: true,
                },
            );
            if let Err(e) = touch {
                log::error!("{e}");
            }
        }
        if refreshed > 0 || failed > 0 {
            log::info!("pass complete: {refreshed} refreshed, {failed} failed or skipped");
        }
        let status = format!(
            "{}; last pass: {refreshed} refreshed, {failed} failed or skipped",
            self.end_pass_metrics()
        );
        self.passes += 1;
        if self.passes == 1 {
            notify::ready(&status);
            tell_master_ready(&self.ctx.config().name);
        } else {
            notify::status(&status);
        }
        // Take note of our own writes so that the next SIGHUP looks only at new changes.
        let cfg = self.ctx.config();
        if let Some(root) = self.root() {
            let found = self.scanner.scan(&cfg, &root, true);
            queue_found(&self.queue, found, false);
        }
    }

    /// Runs one full pass and waits for it (`--once`), at most `limit`.
    pub fn once(&mut self, limit: Duration) -> PassReport {
        self.start_pass();
        let deadline = Instant::now() + limit;
        let mut st = self.queue.lock();
        while st.pass_pending > 0 && Instant::now() < deadline {
            st = self
                .queue
                .coord
                .wait_timeout(st, Duration::from_millis(200))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        let failed = st.pass_failed + st.pass_pending;
        let refreshed = st.pass_refreshed;
        st.stop = true;
        drop(st);
        self.queue.work.notify_all();
        self.end_pass_metrics();
        PassReport { refreshed, failed }
    }

    /// Credentials by state and the soonest token expiry, from the scan of the
    /// pass and the workers' results since.
    fn credential_states(&self) -> (BTreeMap<String, u64>, Option<i64>) {
        let st = self.queue.lock();
        let mut states: BTreeMap<String, u64> = BTreeMap::new();
        let mut soonest: Option<i64> = None;
        let mut count = |state: &str, exp: Option<i64>| {
            *states.entry(state.to_owned()).or_insert(0) += 1;
            if let Some(e) = exp {
                soonest = Some(soonest.map_or(e, |s| s.min(e)));
            }
        };
        let mut counted = HashSet::new();
        for (user, (_, creds)) in &self.scanner.full_cache {
            for c in creds {
                let key = Key {
                    user: user.clone(),
                    stem: c.stem.clone(),
                };
                let (has_use, exp) = match st.seen.get(&key) {
                    Some(Seen::Removed) => continue,
                    Some(Seen::Refreshed(exp)) => (true, *exp),
                    None => (c.use_state.is_some(), c.use_state.and_then(|u| u.exp)),
                };
                let state = match st.retry.get(&key) {
                    Some(r) if r.unusable => "unusable",
                    Some(_) => "failing",
                    None if has_use => "fresh",
                    None => "missing",
                };
                count(state, exp);
                counted.insert(key);
            }
        }
        // Credentials the scan did not see (provisioned during the pass).
        for (key, seen) in &st.seen {
            if let Seen::Refreshed(exp) = seen
                && !counted.contains(key)
            {
                let state = if st.retry.contains_key(key) {
                    "failing"
                } else {
                    "fresh"
                };
                count(state, *exp);
            }
        }
        (states, soonest)
    }

    /// Ends the pass in the metrics and writes the metrics file when one is
    /// configured; returns a summary of the credentials for systemd's status line.
    fn end_pass_metrics(&mut self) -> String {
        let (states, soonest) = self.credential_states();
        let total: u64 = states.values().sum();
        let summary = format!(
            "{total} credential(s) ({})",
            states
                .iter()
                .map(|(s, n)| format!("{n} {s}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        self.queue
            .lock()
            .metrics
            .end_pass(SystemTime::now(), states, soonest);
        if let Some(path) = &self.ctx.config().metrics_file {
            drop(self.queue.write_metrics(path));
        }
        summary
    }

    /// The daemon loop; returns only when asked to stop.
    /// With systemd's watchdog on, `WATCHDOG=1` is sent at least every
    /// [`notify::watchdog_interval`] and no wait is longer.
    pub fn run(&mut self) {
        let mut next_pass = Instant::now();
        let mut pass_again = false;
        let watchdog = notify::watchdog_interval();
        let mut next_ping = Instant::now();
        loop {
            let now = Instant::now();
            if let Some(every) = watchdog
                && now >= next_ping
            {
                notify::watchdog();
                next_ping = now + every;
            }
            let (hup, pass_done) = {
                let mut st = self.queue.lock();
                if st.stop {
                    return;
                }
                let pass_done = st.pass_active && st.pass_pending == 0;
                let due: Vec<Key> = st
                    .retry
                    .iter()
                    .filter(|(_, r)| r.at <= now)
                    .map(|(k, _)| k.clone())
                    .collect();
                if !st.hup && !st.reload_done && !pass_done && due.is_empty() && now < next_pass {
                    let next_retry = st.retry.values().map(|r| r.at).min();
                    let mut wake = next_retry.map_or(next_pass, |r| r.min(next_pass));
                    if watchdog.is_some() {
                        wake = wake.min(next_ping);
                    }
                    let wait = wake
                        .saturating_duration_since(now)
                        .clamp(Duration::from_millis(1), Duration::from_secs(60));
                    let (g, _) = self
                        .queue
                        .coord
                        .wait_timeout(st, wait)
                        .unwrap_or_else(|p| p.into_inner());
                    drop(g);
                    continue;
                }
                for key in &due {
                    let top_ctime = st.retry.get(key).map_or(0, |r| r.top_ctime);
                    enqueue(&mut st, key.clone(), Task::Refresh, false, false, top_ctime);
                    if let Some(r) = st.retry.get_mut(key) {
                        // Re-armed by the outcome of the job just queued.
                        r.at = now + UNUSABLE_RETRY;
                    }
                }
                if !due.is_empty() {
                    self.queue.work.notify_all();
                }
                (std::mem::take(&mut st.hup), pass_done)
            };
            let reloaded = self.reload_finished();
            if hup || reloaded {
                if hup {
                    self.on_hup();
                }
                if self.queue.lock().pass_active {
                    pass_again = true;
                } else {
                    next_pass = Instant::now();
                }
            }
            if pass_done {
                self.finish_pass();
                let interval = self.ctx.config().scan_interval;
                if std::mem::take(&mut pass_again) {
                    next_pass = Instant::now();
                } else {
                    next_pass = Instant::now() + interval;
                }
            }
            if Instant::now() >= next_pass && !self.queue.lock().pass_active {
                next_pass = Instant::now() + self.ctx.config().scan_interval;
                self.start_pass();
            }
        }
    }

    /// SIGHUP: urgent look at changed directories first, then the configuration.
    fn on_hup(&mut self) {
        let t0 = Instant::now();
        let cfg = self.ctx.config();
        if let Some(root) = self.root() {
            self.scanner.known = {
                let st = self.queue.lock();
                st.queued
                    .keys()
                    .chain(st.in_flight.iter())
                    .cloned()
                    .collect()
            };
            let found = self.scanner.scan(&cfg, &root, true);
            self.scanner.known = HashSet::new();
            let n = queue_found(&self.queue, found, false);
            log::debug!(
                "SIGHUP: {n} credential(s) queued after a {:.1} ms look at changed directories",
                t0.elapsed().as_secs_f64() * 1000.0
            );
        }
        self.start_reload();
    }

    /// Starts reading the configuration on a thread (or asks for another read
    /// when one is running).
    fn start_reload(&mut self) {
        if self.reload.running.is_some() {
            self.reload.again = true;
            return;
        }
        let Some(mut read) = self.reload.read.take() else {
            return;
        };
        let q = self.queue.clone();
        let started = std::thread::Builder::new()
            .name("reload".into())
            .spawn(move || {
                let new = read();
                q.lock().reload_done = true;
                q.coord.notify_all();
                (read, new)
            });
        match started {
            Ok(h) => self.reload.running = Some(h),
            Err(e) => log::error!("cannot start the configuration reader: {e}"),
        }
    }

    /// Applies a finished configuration read; returns whether one finished.
    fn reload_finished(&mut self) -> bool {
        if !std::mem::take(&mut self.queue.lock().reload_done) {
            return false;
        }
        let Some(h) = self.reload.running.take() else {
            return false;
        };
        let Ok((read, new)) = h.join() else {
            log::error!("the configuration reader failed");
            return true;
        };
        self.reload.read = Some(read);
        let cfg = self.ctx.config();
        let mut changed = false;
        if let Some(new) = new {
            let new = Arc::new(new);
            if *new != *cfg {
                log::info!("configuration changed; re-read on SIGHUP");
                self.queue.set_workers(new.max_in_flight);
                self.spawn_workers(new.max_in_flight);
                // Settings that change which credentials are ours need a full look.
                self.scanner.dir_stamps.clear();
                self.scanner.full_cache.clear();
                changed = true;
            }
            self.ctx.set_config(new);
        }
        let n = retry_skipped(&mut self.queue.lock(), changed, Instant::now());
        if n > 0 {
            log::info!("SIGHUP: looking again at {n} skipped or failing credential(s)");
            self.queue.work.notify_all();
        }
        if std::mem::take(&mut self.reload.again) {
            self.start_reload();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn key(u: &str) -> Key {
        Key {
            user: u.into(),
            stem: "igwn_robot".into(),
        }
    }

    #[test]
    fn urgent_jobs_go_first_and_duplicates_merge() {
        let mut st = QState::default();
        assert!(enqueue(&mut st, key("a"), Task::Refresh, false, true, 1));
        assert!(enqueue(&mut st, key("b"), Task::Refresh, false, true, 1));
        assert!(enqueue(&mut st, key("c"), Task::Refresh, true, false, 1));
        // Already queued: neither promoted nor counted twice.
        assert!(enqueue(&mut st, key("b"), Task::Refresh, true, true, 1));
        assert_eq!(st.pass_pending, 2);
        assert_eq!(st.queued.len(), 3);
        assert_eq!(st.urgent, VecDeque::from([key("c")]));
        assert_eq!(st.normal, VecDeque::from([key("a"), key("b")]));
        st.in_flight.insert(key("d"));
        assert!(!enqueue(&mut st, key("d"), Task::Refresh, true, true, 1));
    }

    #[test]
    fn one_instance_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pid"), "4242").unwrap();
        let held = single_instance(dir.path(), Duration::ZERO).unwrap();
        let t0 = Instant::now();
        let e = single_instance(dir.path(), Duration::from_millis(300)).unwrap_err();
        assert!(t0.elapsed() >= Duration::from_millis(300));
        assert!(e.contains("another credmon (pid 4242)"), "{e}");
        drop(held);
        let again = single_instance(dir.path(), Duration::ZERO).unwrap();
        drop(again);
        // Never through a link.
        let other = tempfile::tempdir().unwrap();
        std::fs::remove_file(dir.path().join(LOCK_FILE)).unwrap();
        std::os::unix::fs::symlink(other.path().join("x"), dir.path().join(LOCK_FILE)).unwrap();
        assert!(single_instance(dir.path(), Duration::ZERO).is_err());
        assert!(!other.path().join("x").exists());
    }

    #[test]
    fn the_pid_file_is_removed_only_when_it_is_ours() {
        let dir = tempfile::tempdir().unwrap();
        let pid = dir.path().join("pid");
        std::fs::write(&pid, "1").unwrap();
        remove_pid_file(dir.path());
        assert!(pid.exists());
        std::fs::write(&pid, std::process::id().to_string()).unwrap();
        remove_pid_file(dir.path());
        assert!(!pid.exists());
    }

    #[test]
    fn sighup_requeues_skipped_credentials_at_once() {
        let entry = |pass| Entry {
            task: Task::Refresh,
            pass,
            top_ctime: 7,
        };
        let base = Duration::from_secs(10);
        let mut st = QState::default();
        record(
            &mut st,
            &key("bad"),
            &entry(false),
            &Outcome::Unusable,
            base,
            Duration::ZERO,
        );
        record(
            &mut st,
            &key("down"),
            &entry(false),
            &Outcome::Failed("vault"),
            base,
            Duration::ZERO,
        );
        // Held back: the same .top, within the retry delay.
        assert!(!enqueue(
            &mut st,
            key("bad"),
            Task::Refresh,
            false,
            false,
            7
        ));
        let now = Instant::now();
        // A SIGHUP without a configuration change: only the skipped one.
        assert_eq!(retry_skipped(&mut st, false, now), 1);
        assert_eq!(st.urgent, VecDeque::from([key("bad")]));
        assert!(!st.retry.contains_key(&key("bad")));
        assert!(st.retry[&key("down")].at > now);
        // A changed configuration: the failing one is due now as well, its
        // failure count kept for the backoff.
        st.queued.clear();
        st.urgent.clear();
        assert_eq!(retry_skipped(&mut st, true, now), 0);
        assert_eq!(st.retry[&key("down")].at, now);
        assert_eq!(st.retry[&key("down")].failures, 1);
    }

    #[test]
    fn outcomes_set_the_backoff() {
        let base = Duration::from_secs(10);
        let entry = Entry {
            task: Task::Refresh,
            pass: true,
            top_ctime: 7,
        };
        for (outcome, min, max) in [
            (Outcome::Failed("vault"), 5, 10),
            (Outcome::RateLimited(Duration::from_secs(30)), 30, 30),
            (Outcome::Unusable, 3600, 3600),
        ] {
            let mut st = QState::default();
            let t0 = Instant::now();
            record(&mut st, &key("a"), &entry, &outcome, base, Duration::ZERO);
            let r = &st.retry[&key("a")];
            let wait = r.at.duration_since(t0).as_secs_f64();
            assert!(
                wait >= min as f64 - 0.1 && wait <= max as f64 + 0.1,
                "{outcome:?}: {wait}"
            );
            assert_eq!((r.failures, r.top_ctime, st.pass_failed), (1, 7, 1));
            // The gate holds the same .top back, not a replaced one.
            assert!(!enqueue(&mut st, key("a"), Task::Refresh, false, false, 7));
            assert!(enqueue(&mut st, key("a"), Task::Refresh, false, false, 8));
        }
        let mut st = QState::default();
        let took = Duration::from_millis(300);
        record(
            &mut st,
            &key("a"),
            &entry,
            &Outcome::Failed("vault"),
            base,
            took,
        );
        record(
            &mut st,
            &key("a"),
            &entry,
            &Outcome::Refreshed(None, "missing"),
            base,
            took,
        );
        assert!(st.retry.is_empty());
        assert_eq!(st.pass_refreshed, 1);
        assert_eq!(st.metrics.failures_by_cause["vault"], 1);
        assert_eq!(st.metrics.refreshes_by_cause["missing"], 1);
        assert_eq!(st.metrics.refresh_duration.count(), 2);
        assert_eq!(st.seen[&key("a")], Seen::Refreshed(None));
    }
}
