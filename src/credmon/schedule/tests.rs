use super::*;
use crate::credmon::policy::UseState;
use std::time::{SystemTime, UNIX_EPOCH};

const S: Duration = Duration::from_secs(1);

/// Monotonic time `d` after the origin.
fn t(d: Duration) -> Mono {
    Mono::ZERO + d
}

fn sched() -> Scheduler<&'static str, ()> {
    Scheduler::new(Backoff {
        base: 10 * S,
        cap: 300 * S,
    })
}

/// Takes everything due at `now`, in order.
fn drain(s: &mut Scheduler<&'static str, ()>, now: Mono) -> Vec<&'static str> {
    let mut out = Vec::new();
    while let Some((k, (), _)) = s.take(now, false) {
        out.push(k);
        s.finish(&k, Finish::Done, now, 0.0);
    }
    out
}

#[test]
fn need_and_deadline_from_the_use_file() {
    let w = |secs: u64| -> SystemTime { UNIX_EPOCH + Duration::from_secs(secs) };
    let now = w(10_000);
    let u = |ctime: u64, exp: Option<u64>| {
        Some(UseState {
            ctime: w(ctime),
            exp: exp.map(w),
        })
    };
    // (.use, .top ctime in s, want need, want deadline in s); minimum 2400, refresh 1200
    let table = [
        (None, 0, Need::Missing, 10_000),
        (u(9_000, None), 0, Need::Missing, 10_000),
        (u(9_000, Some(9_999)), 0, Need::Missing, 10_000),
        (u(9_000, Some(0)), 0, Need::Missing, 10_000),
        // a replaced .top with a good .use is routine work, due now
        (u(9_000, Some(20_000)), 9_500, Need::Routine, 10_000),
        // the age rule comes first
        (u(9_000, Some(20_000)), 0, Need::Routine, 10_200),
        // the expiry rule comes first
        (u(9_900, Some(12_000)), 0, Need::Routine, 9_600),
        (
            u(9_900, Some(u64::from(u32::MAX))),
            0,
            Need::Routine,
            11_100,
        ),
    ];
    for (use_state, top, want_need, want_deadline) in table {
        assert_eq!(
            need(use_state, w(top), now, 2400, 1200),
            (want_need, w(want_deadline)),
            "{use_state:?} top {top}"
        );
    }
}

#[test]
fn ordering_rules() {
    use Need::{Missing as M, Routine as R, Waiting as W};
    // (submissions: key, need, deadline in s), the order they are taken at t = 1000 s.
    type Submissions = &'static [(&'static str, Need, u64)];
    let table: &[(Submissions, &[&str])] = &[
        // a submitter waiting for a new credential goes before everything
        (
            &[("m", M, 0), ("r", R, 0), ("new", W, 999)],
            &["new", "m", "r"],
        ),
        // a missing .use goes first whatever arrived before it
        (
            &[("a", R, 0), ("b", R, 0), ("new", M, 900)],
            &["new", "a", "b"],
        ),
        // among routine work the earliest deadline first
        (&[("late", R, 500), ("soon", R, 100)], &["soon", "late"]),
        // equal need and deadline: order of arrival
        (&[("x", M, 5), ("y", M, 5), ("z", M, 5)], &["x", "y", "z"]),
        // missing ones by deadline too
        (
            &[("m2", M, 20), ("m1", M, 10), ("r", R, 0)],
            &["m1", "m2", "r"],
        ),
        // a routine job resubmitted as missing is promoted
        (&[("r1", R, 0), ("r2", R, 0), ("r2", M, 999)], &["r2", "r1"]),
        // a later, less pressing submission does not demote it
        (&[("m", M, 10), ("r", R, 0), ("m", R, 0)], &["m", "r"]),
    ];
    for (subs, want) in table {
        let mut s = sched();
        for (k, need, d) in subs.iter() {
            s.submit(*k, (), *need, t(S * (*d as u32)), false, t(1000 * S));
        }
        assert_eq!(drain(&mut s, t(1000 * S)), *want, "{subs:?}");
        assert_eq!(s.queued(), 0);
    }
}

#[test]
fn the_reserved_worker_takes_only_missing_jobs() {
    let mut s = sched();
    s.submit("waiting", (), Need::Waiting, t(S), false, t(S));
    assert_eq!(s.take(t(S), true), Some(("waiting", (), Need::Waiting)));
    s.submit("routine", (), Need::Routine, t(S), false, t(S));
    assert_eq!(s.take(t(S), true), None);
    s.submit("new", (), Need::Missing, t(9 * S), false, t(S));
    assert_eq!(s.take(t(S), true), Some(("new", (), Need::Missing)));
    assert_eq!(s.take(t(S), true), None);
    assert_eq!(s.take(t(S), false), Some(("routine", (), Need::Routine)));
}

#[test]
fn a_new_credential_beats_ten_thousand_routine_refreshes() {
    let mut s = Scheduler::new(Backoff {
        base: 10 * S,
        cap: 300 * S,
    });
    let now = t(100 * S);
    for i in 0..10_000u32 {
        s.submit(i, (), Need::Routine, now, true, now);
    }
    for _ in 0..10 {
        assert!(s.take(now, false).is_some_and(|t| t.2 == Need::Routine));
    }
    s.submit(99_999, (), Need::Missing, now, true, now);
    assert_eq!(s.take(now, false), Some((99_999, (), Need::Missing)));
}

#[test]
fn a_failure_is_retried_after_its_backoff_not_at_the_next_pass() {
    let mut s = sched();
    let t0 = t(50 * S);
    s.submit("new", (), Need::Missing, t0, false, t0);
    assert!(s.take(t0, false).is_some());
    // jitter 1.0: the full first ceiling, the documented base of 10 s
    s.finish(&"new", Finish::Retry { at_least: None }, t0, 1.0);
    assert_eq!(s.take(t0 + 9 * S, false), None);
    assert_eq!(s.next_due(t0 + 9 * S), Some(t0 + 10 * S));
    assert_eq!(s.take(t0 + 10 * S, false), Some(("new", (), Need::Missing)));
    // second failure: 20 s; a Retry-After of 60 s wins over it
    s.finish(
        &"new",
        Finish::Retry {
            at_least: Some(60 * S),
        },
        t0 + 10 * S,
        1.0,
    );
    assert_eq!(s.next_due(t0 + 10 * S), Some(t0 + 70 * S));
    assert_eq!(s.failures(&"new"), 2);
    // a new .top clears the backoff at once
    assert_eq!(
        s.submit("new", (), Need::Missing, t0, true, t0 + 11 * S),
        Submitted::Merged
    );
    assert_eq!(s.take(t0 + 11 * S, false), Some(("new", (), Need::Missing)));
    s.finish(&"new", Finish::Done, t0 + 11 * S, 0.0);
    assert_eq!(s.failures(&"new"), 0);
    assert_eq!(s.queued(), 0);
}

#[test]
fn a_pass_does_not_cut_a_backoff_short() {
    let mut s = sched();
    s.submit("k", (), Need::Missing, t(S), false, t(S));
    s.take(t(S), false);
    s.finish(&"k", Finish::Retry { at_least: None }, t(S), 0.0);
    // the next pass finds it again, unchanged: still backing off
    assert_eq!(
        s.submit("k", (), Need::Missing, t(S), false, t(2 * S)),
        Submitted::Merged
    );
    assert_eq!(s.take(t(2 * S), false), None);
    assert_eq!(s.take(t(6 * S), false), Some(("k", (), Need::Missing)));
}

#[test]
fn parked_credentials_wait_for_a_change_or_a_reconfig() {
    let mut s = sched();
    s.submit("bad", (), Need::Missing, t(S), false, t(S));
    s.take(t(S), false);
    s.finish(&"bad", Finish::Park, t(S), 0.0);
    assert_eq!(
        s.submit("bad", (), Need::Missing, t(S), false, t(2 * S)),
        Submitted::Held
    );
    assert_eq!(s.take(t(10_000 * S), false), None);
    assert_eq!(s.next_due(t(3 * S)), None);
    // SIGHUP with a configuration change: every parked one at once
    assert_eq!(s.wake_parked(t(3 * S)), 1);
    assert_eq!(s.take(t(3 * S), false), Some(("bad", (), Need::Missing)));
    s.finish(&"bad", Finish::Park, t(3 * S), 0.0);
    // a replaced .top also wakes it
    assert_eq!(
        s.submit("bad", (), Need::Missing, t(S), true, t(4 * S)),
        Submitted::Queued
    );
    assert!(s.take(t(4 * S), false).is_some());
}

#[test]
fn a_reconfig_retries_backing_off_credentials_at_once_keeping_their_count() {
    let mut s = sched();
    s.submit("down", (), Need::Routine, t(S), false, t(S));
    s.submit("fine", (), Need::Routine, t(S), false, t(S));
    s.take(t(S), false);
    s.finish(&"down", Finish::Retry { at_least: None }, t(S), 0.0);
    assert_eq!(s.take(t(2 * S), false), Some(("fine", (), Need::Routine)));
    assert_eq!(s.take(t(2 * S), false), None, "backing off");
    assert_eq!(s.retry_now(t(2 * S)), 1);
    assert_eq!(s.take(t(2 * S), false), Some(("down", (), Need::Routine)));
    assert_eq!(s.failures(&"down"), 1);
    s.finish(&"down", Finish::Retry { at_least: None }, t(2 * S), 0.0);
    assert_eq!(s.failures(&"down"), 2);
    assert_eq!(s.retry_now(t(2 * S)), 1);
    assert_eq!(s.retry_now(t(2 * S)), 0, "nothing left backing off");
}

#[test]
fn a_submission_during_flight_runs_once_more_afterwards() {
    let mut s = sched();
    s.submit("k", (), Need::Routine, t(S), false, t(S));
    s.take(t(S), false);
    assert!(s.in_flight(&"k"));
    assert_eq!(s.take(t(S), false), None);
    assert_eq!(
        s.submit("k", (), Need::Missing, t(S), true, t(S)),
        Submitted::Again
    );
    assert_eq!(
        s.submit("k", (), Need::Routine, t(S), false, t(S)),
        Submitted::Again
    );
    // the finished job does not cancel the newer request, and a failure
    // does not delay it (the .top changed meanwhile)
    s.finish(&"k", Finish::Retry { at_least: None }, t(2 * S), 1.0);
    assert_eq!(s.take(t(2 * S), false), Some(("k", (), Need::Missing)));
    s.finish(&"k", Finish::Done, t(2 * S), 0.0);
    assert_eq!(s.take(t(2 * S), false), None);
    assert_eq!(s.queued(), 0);
}

#[test]
fn forgetting_drops_queued_and_parked_but_not_in_flight() {
    let mut s = sched();
    s.submit("q", (), Need::Routine, t(S), false, t(S));
    s.submit("f", (), Need::Missing, t(S), false, t(S));
    assert_eq!(s.take(t(S), false).map(|t| t.0), Some("f"));
    s.forget(&"q");
    s.forget(&"f");
    assert_eq!(s.queued(), 0);
    assert!(s.in_flight(&"f"));
    s.finish(&"f", Finish::Done, t(S), 0.0);
    assert!(!s.in_flight(&"f"));
}

#[test]
fn later_requeues_without_a_failure_and_a_pass_does_not_cut_it_short() {
    let mut s = sched();
    s.submit("k", (), Need::Routine, t(S), false, t(S));
    s.take(t(S), false);
    s.finish(&"k", Finish::Later(300 * S), t(S), 0.0);
    assert_eq!(s.failures(&"k"), 0);
    assert_eq!(s.take(t(2 * S), false), None);
    // the next pass finds it due again: it still waits
    s.submit("k", (), Need::Routine, t(S), false, t(60 * S));
    assert_eq!(s.take(t(60 * S), false), None);
    assert_eq!(s.take(t(301 * S), false), Some(("k", (), Need::Routine)));
}

#[test]
fn a_queued_credential_costs_few_bytes() {
    // Every credential is queued at once in a fill or a mass refresh: at
    // 100,000 credentials each byte here is 100 kB (docs/performance.md).
    use crate::credmon::refresh::{Key, Task};
    use std::mem::size_of;
    assert_eq!(size_of::<Key>(), 8);
    assert_eq!(size_of::<Task>(), 8);
    assert_eq!(size_of::<Mono>(), 8);
    assert_eq!(size_of::<Slot>(), 24);
    assert!(size_of::<ReadyKey<Key>>() <= 24);
}

#[test]
fn a_credential_submitted_again_keeps_one_copy_of_its_key() {
    // Every scan makes a new key (one allocation); the scheduler keeps the
    // first, in its table and its indexes alike.
    use crate::credmon::refresh::Key;
    let mut s: Scheduler<Key, ()> = Scheduler::new(Backoff {
        base: 10 * S,
        cap: 300 * S,
    });
    let first = Key::new("alice", "igwn");
    let again = Key::new("alice", "igwn");
    s.submit(first.clone(), (), Need::Routine, t(10 * S), false, t(S));
    // more pressing: it is indexed again
    s.submit(again.clone(), (), Need::Missing, t(S), false, t(S));
    let same = |k: &Key| std::ptr::eq::<crate::credmon::refresh::Names>(&**k, &*first);
    assert!(s.key(&again).is_some_and(same));
    let taken = s.take(t(S), false);
    assert!(
        matches!(&taken, Some((k, (), Need::Missing)) if same(k)),
        "{taken:?}"
    );
}

#[test]
fn stale_entries_of_the_due_heap_stay_bounded_and_never_run() {
    let mut s = sched();
    // Every submission is more pressing than the last: each leaves a stale entry.
    for i in 0..1_000 {
        s.submit("a", (), Need::Routine, t((10_000 - i) * S), false, t(S));
    }
    // Gone while due: its entry is stale too.
    s.submit("b", (), Need::Missing, t(S), false, t(S));
    s.forget(&"b");
    assert_eq!(s.queued(), 1);
    assert!(s.ready.len() <= 2 * s.ready_live + 64, "{}", s.ready.len());
    assert_eq!(drain(&mut s, t(S)), vec!["a"]);
    assert_eq!((s.queued(), s.next_due(t(S))), (0, None));
    assert!(s.ready.is_empty());
}

#[test]
fn a_task_other_than_the_default_is_kept_aside_while_the_credential_is_held() {
    let mut s: Scheduler<&'static str, u8> = Scheduler::new(Backoff {
        base: 10 * S,
        cap: 300 * S,
    });
    s.submit("k", 7, Need::Missing, t(S), false, t(S));
    assert_eq!(s.take(t(S), false), Some(("k", 7, Need::Missing)));
    // retried after its backoff, still the same task
    s.finish(&"k", Finish::Retry { at_least: None }, t(S), 0.0);
    assert_eq!(s.take(t(20 * S), false), Some(("k", 7, Need::Missing)));
    // a resubmission with another task while in flight runs next, with its task
    s.submit("k", 9, Need::Missing, t(S), true, t(20 * S));
    s.finish(&"k", Finish::Done, t(20 * S), 0.0);
    assert_eq!(s.take(t(20 * S), false), Some(("k", 9, Need::Missing)));
    // parked: it keeps the task it ran with, not an unchanged resubmission's
    s.submit("k", 0, Need::Missing, t(S), false, t(20 * S));
    s.finish(&"k", Finish::Park, t(20 * S), 0.0);
    s.wake_parked(t(21 * S));
    assert_eq!(s.take(t(21 * S), false), Some(("k", 9, Need::Missing)));
    // done: nothing of it stays
    s.finish(&"k", Finish::Done, t(21 * S), 0.0);
    assert!(!s.holds(&"k") && s.tasks.is_empty());
    s.submit("k", 0, Need::Routine, t(S), false, t(22 * S));
    assert_eq!(s.take(t(22 * S), false), Some(("k", 0, Need::Routine)));
}
