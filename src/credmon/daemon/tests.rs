//! The coordinator and the pool in virtual time: no threads, no sleeps. A
//! test plays the workers (`take`, then `finish` with the outcome it wants)
//! against a real credential directory, and moves the clock itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// Bounded waits for the filesystem's real clock.
#![allow(clippy::disallowed_methods)]

use super::core::{Job, Worker};
use super::*;
use crate::credmon::config::{self, knobs::Knobs};
use crate::credmon::refresh::{Done, Key, Ran, RefreshError, Task};
use crate::credmon::schedule::Need;
use base64::prelude::*;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;

const S: Duration = Duration::from_secs(1);

struct Rig {
    dir: tempfile::TempDir,
    clock: Clock,
    coord: Coordinator,
    knobs: Arc<Mutex<Knobs>>,
}

fn resolve(knobs: &Knobs) -> Config {
    config::resolve(knobs, &config::Overrides::default()).unwrap()
}

fn rig(extra: &[(&str, &str)]) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let mut knobs: Knobs = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    knobs.insert(
        "SEC_CREDENTIAL_DIRECTORY_OAUTH".into(),
        dir.path().display().to_string(),
    );
    knobs
        .entry("ROBOT_CREDMON_BACKOFF_BASE".into())
        .or_insert_with(|| "10".into());
    let knobs = Arc::new(Mutex::new(knobs));
    let cfg = resolve(&knobs.lock().unwrap());
    let ctx = Arc::new(Ctx::new(Arc::new(cfg), &crate::env::Env::process()));
    // Virtual time from the real wall clock: the files' ctimes are real.
    #[allow(clippy::disallowed_methods)] // the files' real ctimes set the start
    let clock = Clock::manual(std::time::SystemTime::now());
    let k = knobs.clone();
    let reload = Reload::new(move || Some(resolve(&k.lock().unwrap())));
    let coord = Coordinator::new(
        ctx,
        clock.clone(),
        reload,
        crate::notify::Systemd::disabled(),
    );
    Rig {
        dir,
        clock,
        coord,
        knobs,
    }
}

fn key(user: &str) -> Key {
    Key::new(user, "igwn_robot")
}

/// Writes a file as the credd does: temporary file, then rename.
fn put(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Waits (bounded, real time) until the filesystem's coarse clock has moved
/// past the last write, so that a later write has a newer ctime.
fn next_tick(dir: &Path) {
    let probe = dir.join(".tick");
    std::fs::write(&probe, b"").unwrap();
    let first = std::fs::metadata(&probe).unwrap();
    let t0 = std::time::Instant::now();
    loop {
        std::fs::write(&probe, b"").unwrap();
        let m = std::fs::metadata(&probe).unwrap();
        if (m.ctime(), m.ctime_nsec()) != (first.ctime(), first.ctime_nsec()) {
            break;
        }
        assert!(t0.elapsed() < S, "the filesystem clock does not move");
    }
    std::fs::remove_file(&probe).unwrap();
}

impl Rig {
    fn now(&self) -> Mono {
        self.clock.mono()
    }

    /// Moves virtual time on to `t`.
    fn advance_to(&self, t: Mono) {
        self.clock.advance_to(t);
    }

    fn top(&self, user: &str) {
        let body = br#"{"vault_token":"hvs.x","vault_url":"https://vault.example:8200/v1/secret/oauth/creds/igwn/u:robot"}"#;
        put(&self.dir.path().join(user).join("igwn_robot.top"), body);
    }

    /// A `.use` whose token expires `left` after the virtual now.
    fn use_file(&self, user: &str, left: Duration) {
        let exp = crate::token::unix_seconds(self.clock.now() + left);
        let h = BASE64_URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let p = BASE64_URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"s","exp":{exp}}}"#));
        put(
            &self.dir.path().join(user).join("igwn_robot.use"),
            format!("{h}.{p}.c2ln\n").as_bytes(),
        );
    }

    /// Takes a job as a regular worker (or the reserved one) at the virtual now.
    fn take(&self, reserved: bool) -> Option<(Key, Task)> {
        let worker = if reserved {
            Worker::Reserved
        } else {
            Worker::Regular(0)
        };
        let job = self.coord.shared.lock().take(worker, self.now())?;
        Some((job.key, job.task))
    }

    /// Records `outcome` for `key`'s job.
    fn finish(&self, key: &Key, task: Task, outcome: Outcome) {
        let job = Job {
            key: key.clone(),
            task,
            need: Need::Routine,
        };
        self.coord
            .shared
            .record(&job, &Ran::local(outcome), Duration::ZERO);
    }

    /// Takes a job and finishes it with `outcome`; a refresh writes the `.use`.
    fn run(&self, outcome: Outcome) -> Option<Key> {
        let (k, task) = self.take(false)?;
        if matches!(outcome, Ok(Done::Refreshed(..))) {
            self.use_file(&k.user, 3600 * S);
        }
        self.finish(&k, task, outcome);
        Some(k)
    }

    /// When an idle regular worker would look again.
    fn next_look(&self) -> Mono {
        self.coord
            .shared
            .lock()
            .next_look(Worker::Regular(0), self.now())
    }

    /// SIGHUP: the coordinator's quick look, then (once the configuration
    /// reader's thread is done) the configuration applied.
    fn sighup(&mut self) {
        self.coord.shared.hup();
        self.coord.step();
        wait_for_reload(&self.coord.shared);
        self.coord.step();
    }
}

/// Blocks (at most 10 s) until the configuration reader's thread has
/// finished, on the condition variable it signals: no sleeping.
fn wait_for_reload(shared: &Shared) {
    let t0 = std::time::Instant::now();
    let mut st = shared.lock();
    while !st.events().reload_done {
        let left = (10 * S).saturating_sub(t0.elapsed());
        assert!(!left.is_zero(), "the configuration read never ended");
        st = shared
            .coord
            .wait_timeout(st, left)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
}

use crate::credmon::refresh::Outcome;
use crate::env::Mono;

fn refreshed() -> Outcome {
    Ok(Done::Refreshed(None, "missing"))
}

fn retry() -> Outcome {
    Err(RefreshError::Retry {
        cause: "vault",
        at_least: None,
        msg: "500".into(),
        server_failing: false,
    })
}

/// `n` credentials with a good `.use`, after a first pass that found nothing to do.
fn settled(n: usize) -> Rig {
    let mut r = rig(&[]);
    for i in 0..n {
        r.top(&format!("u{i}"));
        r.use_file(&format!("u{i}"), 3600 * S);
    }
    r.coord.step();
    assert_eq!(r.take(false), None, "nothing to do");
    r.coord.step();
    assert_eq!(r.coord.passes, 1);
    assert!(r.dir.path().join("CREDMON_COMPLETE").exists());
    r
}

#[test]
fn a_new_credential_goes_before_every_replaced_top() {
    let mut r = settled(50);
    next_tick(r.dir.path());
    for i in 0..50 {
        r.top(&format!("u{i}"));
    }
    r.top("newcomer");
    r.sighup();
    // The reserved worker serves the newcomer at once, and nothing else.
    assert_eq!(r.take(true).map(|j| j.0), Some(key("newcomer")));
    assert_eq!(r.take(true), None);
    // The replaced .top files, whose .use is still good, are routine work.
    let mut n = 0;
    while r.run(refreshed()).is_some() {
        n += 1;
    }
    assert_eq!(n, 50);
}

#[test]
fn a_new_credential_goes_before_every_credential_near_expiry() {
    let mut r = settled(50);
    // Every token now has less than CREDMON_OAUTH_TOKEN_MINIMUM left.
    for i in 0..50 {
        r.use_file(&format!("u{i}"), 600 * S);
    }
    r.clock.advance(61 * S);
    r.coord.step();
    r.top("newcomer");
    r.sighup();
    assert_eq!(r.run(refreshed()), Some(key("newcomer")));
    let mut n = 0;
    while r.run(refreshed()).is_some() {
        n += 1;
    }
    assert_eq!(n, 50);
}

#[test]
fn a_failed_credential_is_retried_after_its_backoff_not_at_the_next_pass() {
    let mut r = rig(&[]);
    r.top("alice");
    r.coord.step();
    let t0 = r.now();
    assert_eq!(r.run(retry()), Some(key("alice")));
    // Half-jittered first delay of the documented 10 s base: 5 to 10 s.
    r.clock.advance(Duration::from_millis(4900));
    assert_eq!(r.take(false), None, "retried before its backoff");
    let wake = r.next_look();
    assert!(wake <= t0 + 10 * S, "{:?}", wake.since(t0));
    r.advance_to(wake);
    r.coord.step();
    assert_eq!(r.run(refreshed()), Some(key("alice")));
    assert!(r.now().since(t0) <= 15 * S);
    assert!(r.now().since(t0) < r.coord.ctx.config().scan_interval);
}

#[test]
fn a_pass_neither_cuts_a_backoff_short_nor_waits_for_it() {
    let mut r = rig(&[("ROBOT_CREDMON_BACKOFF_BASE", "120")]);
    r.top("alice");
    r.coord.step();
    assert_eq!(r.run(retry()), Some(key("alice")));
    r.coord.step();
    // The next pass (60 s) comes while alice backs off (60 to 120 s): it
    // counts her as failed and completes without her.
    r.clock.advance(59 * S);
    r.coord.step();
    r.clock.advance(S);
    r.coord.step();
    assert_eq!(r.take(false), None);
    r.coord.step();
    assert_eq!(r.coord.passes, 2);
}

#[test]
fn provisioning_retries_honour_the_backoff_and_stay_provisions() {
    let kdir = tempfile::tempdir().unwrap();
    std::fs::write(kdir.path().join("robot.keytab"), b"").unwrap();
    let kd = kdir.path().display().to_string();
    let mut r = rig(&[
        ("ROBOT_CREDMON_KEYTAB_DIR", &kd),
        ("ROBOT_CREDMON_PROVISION", "igwn_robot@vault.example:8200"),
    ]);
    r.coord.step();
    let t0 = r.now();
    let (k, task) = r.take(false).unwrap();
    assert_eq!(k, key("robot"));
    assert!(matches!(task, Task::Provision(_)), "{task:?}");
    let failed = Err(RefreshError::Retry {
        cause: "provision",
        at_least: None,
        msg: "KDC down".into(),
        server_failing: false,
    });
    r.finish(&k, task, failed);
    r.clock.advance(4 * S);
    r.coord.step();
    assert_eq!(r.take(false), None, "retried before its backoff");
    r.advance_to(t0 + 10 * S);
    let (k, task) = r.take(false).unwrap();
    assert_eq!(k, key("robot"));
    assert!(
        matches!(task, Task::Provision(_)),
        "a refresh now: {task:?}"
    );
}

#[test]
fn every_sighup_requeues_every_skipped_credential() {
    let mut r = rig(&[]);
    for u in ["a", "b", "c"] {
        r.top(u);
    }
    r.coord.step();
    let unusable = || {
        Err(RefreshError::WaitForTop {
            msg: "untrusted host".into(),
        })
    };
    for _ in 0..3 {
        assert!(r.run(unusable()).is_some());
    }
    // Parked: later passes leave them alone.
    r.coord.step();
    r.clock.advance(3600 * S);
    r.coord.step();
    assert_eq!(r.take(false), None);
    // A SIGHUP, with or without a configuration change: all three at once.
    r.sighup();
    let mut got: Vec<_> =
        std::iter::from_fn(|| r.run(unusable()).map(|k| k.user.to_string())).collect();
    got.sort();
    assert_eq!(got, ["a", "b", "c"]);
    r.knobs
        .lock()
        .unwrap()
        .insert("TRUSTED_VAULT_HOSTS".into(), "vault.example".into());
    r.sighup();
    let mut got: Vec<_> = std::iter::from_fn(|| r.run(refreshed())).collect();
    got.sort_by_key(Key::to_string);
    assert_eq!(got, vec![key("a"), key("b"), key("c")]);
}

#[test]
fn a_configuration_change_retries_failing_credentials_at_once() {
    let mut r = rig(&[]);
    r.top("a");
    r.coord.step();
    assert_eq!(r.run(retry()), Some(key("a")));
    // Backing off: a SIGHUP without a change does not cut it short.
    r.sighup();
    assert_eq!(r.take(false), None);
    r.knobs
        .lock()
        .unwrap()
        .insert("ROBOT_CREDMON_REQUEST_TIMEOUT".into(), "20".into());
    r.sighup();
    assert_eq!(r.run(refreshed()), Some(key("a")));
}

#[test]
fn a_slow_configuration_read_does_not_hold_up_new_credentials() {
    let mut r = rig(&[]);
    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().unwrap();
    let g = gate.clone();
    let k = r.knobs.clone();
    r.coord.reload = Reload::new(move || {
        // Blocked while the test holds the gate (released at the latest
        // when the test ends, even by a failed assertion).
        drop(g.lock());
        Some(resolve(&k.lock().unwrap()))
    });
    r.coord.step();
    r.coord.shared.hup();
    r.coord.step();
    // The reader is blocked; the next SIGHUP's new credential is served.
    r.top("new");
    r.coord.shared.hup();
    r.coord.step();
    assert_eq!(r.run(refreshed()), Some(key("new")));
    assert!(!r.coord.shared.lock().events().reload_done);
    drop(held);
    // The read asked for meanwhile runs after the first one.
    for _ in 0..2 {
        wait_for_reload(&r.coord.shared);
        r.coord.step();
    }
    assert!(r.coord.reload.running.is_none());
    assert!(!r.coord.reload.again);
}

#[test]
fn a_changed_top_clears_a_park() {
    let mut r = rig(&[]);
    r.top("a");
    r.coord.step();
    let unusable = Err(RefreshError::WaitForTop { msg: "bad".into() });
    assert!(r.run(unusable).is_some());
    r.coord.step();
    next_tick(r.dir.path());
    r.top("a");
    r.sighup();
    assert_eq!(r.run(refreshed()), Some(key("a")));
}

#[test]
fn credmon_complete_after_every_pass_member_was_tried() {
    let mut r = rig(&[]);
    r.top("a");
    r.top("b");
    r.coord.step();
    assert!(!r.dir.path().join("CREDMON_COMPLETE").exists());
    assert!(r.run(refreshed()).is_some());
    r.coord.step();
    assert_eq!(r.coord.passes, 0, "one member left");
    assert!(r.run(retry()).is_some());
    r.coord.step();
    assert_eq!(r.coord.passes, 1);
    assert!(r.dir.path().join("CREDMON_COMPLETE").exists());
    // The next pass is due one scan interval later.
    let next = r.coord.step().unwrap();
    assert_eq!(next.since(r.now()), r.coord.ctx.config().scan_interval);
}

#[test]
fn stop_ends_the_coordinator_and_hands_out_no_more_jobs() {
    let mut r = rig(&[]);
    r.top("a");
    r.coord.shared.stop();
    assert_eq!(r.coord.step(), None);
    assert_eq!(r.take(false), None);
    assert_eq!(r.coord.shared.drain(Duration::ZERO), 0);
}

/// How a job met a failing Vault server (`at_least`: its `Retry-After`).
fn server_failing(at_least: Option<Duration>) -> Ran {
    Ran {
        outcome: Err(RefreshError::Retry {
            cause: "vault",
            at_least,
            msg: "503".into(),
            server_failing: true,
        }),
        server: Some("vault.example:8200".into()),
        answered: true,
        disk_failing: false,
        kdc: None,
    }
}

/// A job the server answered with a token.
fn server_answered() -> Ran {
    Ran {
        outcome: refreshed(),
        server: Some("vault.example:8200".into()),
        answered: true,
        disk_failing: false,
        kdc: None,
    }
}

impl Rig {
    /// Takes a job as a regular worker and records `ran` for it.
    fn run_ran(&self, ran: Ran) -> Option<Key> {
        let (key, task) = self.take(false)?;
        let job = Job {
            key: key.clone(),
            task,
            need: Need::Routine,
        };
        self.coord.shared.record(&job, &ran, Duration::ZERO);
        Some(key)
    }
}

#[test]
fn a_failing_server_holds_its_credentials_until_its_first_answer() {
    // Each credential's own backoff is two minutes: only the server's
    // probes can bring them back sooner.
    let mut r = rig(&[("ROBOT_CREDMON_BACKOFF_BASE", "120")]);
    for u in ["a", "b", "c", "d"] {
        r.top(u);
    }
    r.coord.step();
    let t0 = r.now();
    let mut tried = 0;
    while r.run_ran(server_failing(None)).is_some() {
        tried += 1;
    }
    assert_eq!(tried, 4, "each tried once");
    // Held: nothing is due, and no pass brings them back on its own.
    assert_eq!(r.take(false), None);
    // One probe at a time, after the server's first backoff (at most 1 s).
    let wake = r.next_look();
    assert!(wake.since(t0) <= S, "{:?}", wake.since(t0));
    r.advance_to(wake);
    let probe = r.take(false).expect("a probe");
    assert_eq!(r.take(false), None, "only one probe out");
    let job = Job {
        key: probe.0,
        task: probe.1,
        need: Need::Routine,
    };
    r.coord
        .shared
        .record(&job, &server_failing(None), Duration::ZERO);
    assert_eq!(r.take(false), None, "the failed probe waits again");
    // The next probe comes within the cap; this one gets an answer.
    let wake = r.next_look();
    assert!(wake.since(r.now()) <= servers::PROBE_CAP);
    r.advance_to(wake);
    assert!(r.run_ran(server_answered()).is_some());
    // Every other credential is due at once, at the same instant.
    let released: Vec<_> = std::iter::from_fn(|| r.run(refreshed())).collect();
    assert!(released.len() >= 2, "{released:?}");
    assert!(
        r.now().since(t0) < 60 * S,
        "the backlog waited {:?}",
        r.now().since(t0)
    );
}

#[test]
fn a_job_that_waited_without_asking_goes_again_once_the_server_is_back() {
    let mut r = rig(&[("ROBOT_CREDMON_BACKOFF_BASE", "120")]);
    r.top("a");
    r.coord.step();
    // Its worker saw the server failing and did not ask; by the time the job
    // is recorded the server has answered someone else.
    let not_asked = Ran {
        outcome: Err(RefreshError::Retry {
            cause: "waiting_for_server",
            at_least: None,
            msg: "Vault at vault.example:8200 is failing; waiting for it".into(),
            server_failing: true,
        }),
        server: Some("vault.example:8200".into()),
        answered: false,
        disk_failing: false,
        kdc: None,
    };
    assert!(r.run_ran(not_asked).is_some());
    assert!(
        r.take(false).is_some(),
        "held behind a server that is not failing"
    );
}

#[test]
fn retry_after_is_never_cut_short() {
    let mut r = rig(&[]);
    r.top("a");
    r.top("b");
    r.coord.step();
    let t0 = r.now();
    assert!(r.run_ran(server_failing(Some(30 * S))).is_some());
    assert!(r.run_ran(server_failing(None)).is_some());
    // Not before the 30 s the server asked for, and then one probe.
    let wake = r.next_look();
    assert!(wake.since(t0) >= 30 * S, "{:?}", wake.since(t0));
    r.advance_to(t0 + 29 * S);
    assert_eq!(r.take(false), None);
    r.advance_to(t0 + 30 * S);
    assert!(r.run_ran(server_answered()).is_some());
    assert!(r.run(refreshed()).is_some(), "the other one released");
}

#[test]
fn a_long_pass_never_makes_the_coordinator_wake_in_the_past() {
    // Found by the simulation: while a pass outlived its interval (a
    // request hanging), every step asked to wake at the past pass time and
    // the real loop spun every millisecond.
    let mut r = rig(&[]);
    r.top("slow");
    r.coord.step();
    let (k, task) = r.take(false).expect("the pass's job");
    // The request hangs far past the next pass time.
    r.clock.advance(300 * S);
    for _ in 0..3 {
        let wake = r.coord.step().expect("running");
        assert!(
            wake > r.now(),
            "woke in the past: {wake:?} at {:?}",
            r.now()
        );
    }
    r.finish(&k, task, refreshed());
    r.coord.step();
    assert_eq!(r.coord.passes, 1);
}

#[test]
fn a_full_disk_holds_its_credentials_until_a_write_succeeds() {
    // Found by the simulation (seed 1, two days, 30 credentials): after a
    // full disk each credential waited out its own backoff (up to 5 min)
    // and a token expired after the disk had room again.
    let mut r = rig(&[("ROBOT_CREDMON_BACKOFF_BASE", "120")]);
    for u in ["a", "b", "c"] {
        r.top(u);
    }
    r.coord.step();
    let t0 = r.now();
    let full = || Ran {
        outcome: Err(RefreshError::Retry {
            cause: "file",
            at_least: None,
            msg: "No space left on device".into(),
            server_failing: false,
        }),
        server: Some("vault.example:8200".into()),
        answered: true,
        disk_failing: true,
        kdc: None,
    };
    while r.run_ran(full()).is_some() {}
    // One probe after the first backoff (at most 1 s), which succeeds: the
    // other two are released at once, not after their two minutes.
    r.advance_to(r.next_look());
    assert!(r.now().since(t0) <= S);
    assert!(r.run_ran(server_answered()).is_some());
    let back: Vec<_> = std::iter::from_fn(|| r.run(refreshed())).collect();
    assert_eq!(back.len(), 2, "{back:?}");
}

#[test]
fn a_kdc_outage_holds_the_robots_until_a_login_succeeds() {
    // Found by the simulation (seed 114, 30 days, 60 credentials): robots
    // whose keytab logins failed while the KDC was down each waited out
    // their own backoff after it came back, past their tokens' expiry.
    let mut r = rig(&[("ROBOT_CREDMON_BACKOFF_BASE", "120")]);
    for u in ["a", "b", "c"] {
        r.top(u);
    }
    r.coord.step();
    let t0 = r.now();
    let no_kdc = || Ran {
        outcome: Err(RefreshError::Retry {
            cause: "login",
            at_least: None,
            msg: "cannot contact any KDC".into(),
            server_failing: false,
        }),
        server: Some("vault.example:8200".into()),
        answered: true,
        disk_failing: false,
        kdc: Some(false),
    };
    while r.run_ran(no_kdc()).is_some() {}
    assert_eq!(r.take(false), None, "held, not retried on their own");
    r.advance_to(r.next_look());
    assert!(r.now().since(t0) <= S, "the first probe within a second");
    let logged_in = Ran {
        kdc: Some(true),
        ..server_answered()
    };
    assert!(r.run_ran(logged_in).is_some());
    let back: Vec<_> = std::iter::from_fn(|| r.run(refreshed())).collect();
    assert_eq!(back.len(), 2, "{back:?}");
}

#[test]
fn a_credential_failing_again_and_again_waits_longer_each_time() {
    // What `credmon::vault_500_keeps_the_old_use_and_backs_off` cannot show
    // in real time: with a pass every second and the age rule asking for a
    // refresh at each, a failing credential is tried again only after its
    // backoff, which doubles with every failure; no pass cuts it short.
    let mut r = rig(&[
        ("ROBOT_CREDMON_BACKOFF_BASE", "2"),
        ("ROBOT_CREDMON_SCAN_INTERVAL", "1"),
        ("CREDMON_OAUTH_TOKEN_REFRESH", "1"),
    ]);
    r.top("a");
    r.use_file("a", 3600 * S);
    let end = r.now() + 120 * S;
    let mut tries = Vec::new();
    for _ in 0..10_000 {
        if r.now() >= end {
            break;
        }
        r.coord.step();
        while let Some((k, task)) = r.take(false) {
            tries.push(r.now());
            r.finish(&k, task, retry());
        }
        // The coordinator takes note of a pass's end at once, as it does
        // when the last job of a pass wakes it.
        let wake = r.coord.step().expect("running");
        r.advance_to(wake.min(r.next_look()));
    }
    assert!(r.now() >= end, "virtual time stood still at {:?}", r.now());
    assert!(r.coord.passes >= 100, "{} passes", r.coord.passes);
    let policy = backoff(&r.coord.ctx.config());
    let gaps: Vec<Duration> = tries.windows(2).map(|w| w[1].since(w[0])).collect();
    assert!(gaps.len() >= 5, "{gaps:?}");
    for (n, gap) in gaps.iter().enumerate() {
        let ceiling = policy.ceiling(n as u32);
        assert!(
            (ceiling / 2..=ceiling).contains(gap),
            "retry {n} after {gap:?}, not within its backoff (ceiling {ceiling:?}): {gaps:?}"
        );
    }
}
