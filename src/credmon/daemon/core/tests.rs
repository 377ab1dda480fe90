//! The core alone: submissions, jobs and outcomes in virtual time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::backoff::Backoff;

const S: Duration = Duration::from_secs(1);

fn core() -> Core {
    Core::new(
        2,
        Backoff {
            base: 10 * S,
            cap: 300 * S,
        },
    )
}

fn found(user: &str) -> Found {
    Found {
        key: Key::new(user, "igwn"),
        task: Task::Refresh,
        need: Need::Missing,
        deadline: SystemTime::UNIX_EPOCH,
        changed: false,
    }
}

/// Submits `user`'s credential, runs it and records a refresh.
fn refresh(core: &mut Core, user: &str, in_pass: bool) {
    let now = Mono::ZERO;
    let how = Submit {
        in_pass,
        hup: false,
    };
    core.submit(vec![found(user)], how, now, SystemTime::UNIX_EPOCH);
    let job = core.take(Worker::Regular(0), now).expect("a job is due");
    let ran = Ran::local(Ok(Done::Refreshed(Some(1_000), "missing")));
    core.record(&job, &ran, S, now, SystemTime::UNIX_EPOCH, 0.0);
}

#[test]
fn results_are_kept_only_for_the_running_pass() {
    let mut core = core();
    // A mass refresh between passes keeps no table of results.
    refresh(&mut core, "between", false);
    assert_eq!(core.seen(&Key::new("between", "igwn")), None);
    assert_eq!(core.seen_all().count(), 0);
    // During a pass, the count of states needs them.
    core.begin_pass();
    refresh(&mut core, "during", true);
    assert_eq!(
        core.seen(&Key::new("during", "igwn")),
        Some(Seen::Refreshed(Some(1_000)))
    );
    core.end_pass();
    core.forget_results();
    assert_eq!(core.seen_all().count(), 0);
}
