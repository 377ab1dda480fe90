#![allow(clippy::unwrap_used)]
use super::*;
use std::time::{Duration, UNIX_EPOCH};

const NOW: i64 = 1_000_000;

fn limits() -> Limits {
    Limits {
        thresholds: Thresholds {
            warning: super::super::Range::at_least(3600),
            critical: super::super::Range::at_least(1800),
        },
        max_age: 600,
    }
}

fn at(s: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(s).unwrap())
}

fn healthy() -> Observation {
    Observation {
        dir: PathBuf::from("/creds"),
        unreadable: None,
        pid: PidState::Alive(42),
        complete: Some(NOW - 35),
        credentials: vec![
            Credential {
                name: "alice/igwn".into(),
                top_changed: NOW - 86400,
                usage: UseState::Token(Some(NOW + 7980)),
            },
            Credential {
                name: "bob/igwn".into(),
                top_changed: NOW - 86400,
                usage: UseState::Token(Some(NOW + 9000)),
            },
        ],
        errors: Vec::new(),
        needs_login: Vec::new(),
    }
}

fn with(f: impl FnOnce(&mut Observation)) -> Observation {
    let mut o = healthy();
    f(&mut o);
    o
}

fn cred(name: &str, top_changed: i64, usage: UseState) -> Credential {
    Credential {
        name: name.into(),
        top_changed,
        usage,
    }
}

#[test]
fn healthy_line() {
    let v = evaluate(&healthy(), at(NOW), limits());
    assert_eq!(
        v.line(),
        "OK - credmon pid 42 running, last pass 35s ago, 2 vault credentials, soonest alice/igwn expires in 2h13m \
             | remaining=7980s;3600:;1800:;0 credentials=2;;;0 problems=0;;;0 last_pass=35s;;0:600;0"
    );
}

/// (Long: one table of cases, one row per rule of `evaluate`.)
#[test]
fn state_table() {
    // (observation, state, text the summary starts with)
    let cases: Vec<(Observation, State, &str)> = vec![
        (healthy(), State::Ok, "credmon pid 42 running"),
        (
            with(|o| o.pid = PidState::Missing),
            State::Critical,
            "no pid file in '/creds' (is the credmon running?)",
        ),
        (
            with(|o| o.pid = PidState::Dead(42)),
            State::Critical,
            "credmon pid 42 is not running",
        ),
        (
            with(|o| o.pid = PidState::Other(42, "'sleep 60'".into())),
            State::Critical,
            "credmon pid 42 is not running: that pid is now 'sleep 60'",
        ),
        (
            with(|o| o.pid = PidState::Unverifiable(42, "denied".into())),
            State::Unknown,
            "cannot tell whether pid 42 is the credmon: denied",
        ),
        (
            with(|o| o.pid = PidState::Invalid("'/creds/pid' does not hold a process id".into())),
            State::Unknown,
            "'/creds/pid' does not hold a process id",
        ),
        (
            with(|o| o.complete = None),
            State::Warning,
            "no CREDMON_COMPLETE",
        ),
        (
            with(|o| o.complete = Some(NOW - 601)),
            State::Critical,
            "the last complete pass was 10m01s ago (more than 10m00s)",
        ),
        (with(|o| o.complete = Some(NOW - 600)), State::Ok, "credmon"),
        (
            with(|o| {
                o.needs_login = vec![
                    "carol/igwn needs a person: ...; as carol, run on a terminal: htgettoken -a v -i igwn -r r --credkey carol".into(),
                ]
            }),
            State::Critical,
            "carol/igwn needs a person: ...; as carol, run on a terminal: htgettoken",
        ),
        (
            with(|o| o.credentials[1].usage = UseState::Token(Some(NOW + 3000))),
            State::Warning,
            "bob/igwn expires in 50m00s",
        ),
        (
            with(|o| o.credentials[1].usage = UseState::Token(Some(NOW - 60))),
            State::Critical,
            "bob/igwn expired 1m00s ago",
        ),
        (
            with(|o| {
                o.credentials
                    .push(cred("carol/igwn", NOW - 700, UseState::Missing))
            }),
            State::Critical,
            "carol/igwn has no .use 11m40s after its .top was stored",
        ),
        (
            with(|o| {
                o.credentials
                    .push(cred("carol/igwn", NOW - 30, UseState::Missing))
            }),
            State::Ok,
            "credmon",
        ),
        (
            with(|o| {
                o.credentials.push(cred(
                    "carol/igwn",
                    NOW,
                    UseState::Unusable("not a JWT".into()),
                ))
            }),
            State::Unknown,
            "carol/igwn: not a JWT",
        ),
        (
            with(|o| o.credentials[0].usage = UseState::Token(None)),
            State::Unknown,
            "alice/igwn: the .use token has no exp claim",
        ),
        (
            with(|o| {
                o.errors
                    .push("cannot open directory '/creds/x': denied".into())
            }),
            State::Unknown,
            "cannot open directory '/creds/x': denied",
        ),
        (
            with(|o| o.unreadable = Some("cannot open directory '/creds': gone".into())),
            State::Unknown,
            "cannot open directory '/creds': gone",
        ),
        // The worst finding wins and comes first.
        (
            with(|o| {
                o.errors.push("unreadable".into());
                o.credentials[0].usage = UseState::Token(Some(NOW + 10));
            }),
            State::Critical,
            "alice/igwn expires in 10s; unreadable",
        ),
    ];
    for (o, state, start) in cases {
        let v = evaluate(&o, at(NOW), limits());
        assert_eq!(v.state, state, "{}", v.line());
        assert!(v.summary.starts_with(start), "{} / {start}", v.summary);
    }
}

#[test]
fn many_problems_are_counted() {
    let o = with(|o| {
        for i in 0..5 {
            o.credentials.push(cred(
                &format!("u{i}/igwn"),
                NOW,
                UseState::Token(Some(NOW - 1)),
            ));
        }
    });
    let v = evaluate(&o, at(NOW), limits());
    assert!(v.summary.contains("; and 2 more; "), "{}", v.summary);
    assert!(v.perf.contains("problems=5;;;0"), "{}", v.perf);
}

#[test]
fn credmon_process_table() {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // (exe, argv, is the credmon)
    let cases: [(Option<&str>, Vec<String>, bool); 9] = [
        (
            Some("/usr/bin/robot-credmon"),
            v(&["/usr/bin/robot-credmon", "credmon"]),
            true,
        ),
        (
            Some("/usr/bin/robot-credmon (deleted)"),
            v(&["robot-credmon", "credmon", "-d"]),
            true,
        ),
        (
            None,
            v(&["/usr/bin/robot-credmon", "credmon", "-c", "/x"]),
            true,
        ),
        (
            Some("/usr/bin/robot-credmon"),
            v(&["robot-credmon", "get"]),
            false,
        ),
        (
            Some("/usr/bin/robot-credmon"),
            v(&["igwn-robot-get", "credmon"]),
            true,
        ),
        (
            Some("/usr/bin/sleep"),
            v(&["robot-credmon", "credmon"]),
            false,
        ),
        (
            Some("/usr/bin/python3"),
            v(&["python3", "/usr/sbin/condor_credmon_vault"]),
            false,
        ),
        (None, v(&["sleep", "60"]), false),
        (None, v(&[]), false),
    ];
    for (exe, argv, ok) in cases {
        let got = credmon_process(exe, &argv);
        assert_eq!(got.is_ok(), ok, "{exe:?} {argv:?}: {got:?}");
    }
    assert_eq!(
        credmon_process(None, &v(&["sleep", "60"])).unwrap_err(),
        "'sleep 60'"
    );
}

#[test]
fn vault_tops() {
    for (json, vault) in [
        (
            r#"{"vault_token":"hvs.x","vault_url":"https://v:8200/v1/x"}"#,
            true,
        ),
        (r#"{"vault_url":"https://v:8200/v1/x","scopes":"a"}"#, true),
        (r#"{"refresh_token":"x"}"#, false),
        (r#"{"vault_url":7}"#, false),
        ("alice", false),
        ("", false),
    ] {
        assert_eq!(is_vault_top(json.as_bytes()), vault, "{json}");
    }
}
