//! Tests of the status view: rows from files and state, urgency order, rendering.
#![allow(clippy::unwrap_used)]

use super::state::{Entry, Problem, StateFile};
use super::*;

const NOW: i64 = 1_000_000;

fn token(exp: i64, written: i64) -> UseSeen {
    UseSeen::Token {
        exp: Some(exp),
        mtime: written,
        ctime: crate::token::time_of(written),
    }
}

fn file(user: &str, cred: &str, usage: UseSeen) -> FileCred {
    FileCred {
        user: user.into(),
        credential: cred.into(),
        top_ctime: crate::token::time_of(NOW - 86400),
        usage,
    }
}

fn entry(user: &str, cred: &str, state: Problem) -> Entry {
    Entry {
        user: user.into(),
        credential: cred.into(),
        state,
        since: NOW - 600,
        failures: 3,
        last_error: format!("{state:?} error"),
        next_try: Some(NOW + 40),
    }
}

fn seen(files: Vec<FileCred>, problems: Vec<Entry>) -> Seen {
    Seen {
        dir: "/creds".into(),
        pid: PidState::Alive(42),
        state: Some(StateFile {
            version: state::VERSION,
            pid: 42,
            written: NOW - 3,
            last_pass: Some(NOW - 12),
            minimum: 2400,
            refresh: 1200,
            keytab_dir: None,
            problems,
        }),
        files,
        keytabs: ["bob".to_owned()].into(),
        errors: Vec::new(),
    }
}

#[test]
fn states_from_files_and_state_sorted_by_urgency() {
    let s = seen(
        vec![
            // Written 10 minutes ago, 3 hours left: fresh, renewed by age at +10 minutes.
            file("alice", "igwn", token(NOW + 10800, NOW - 600)),
            // Written 30 minutes ago (older than REFRESH): due now.
            file("dave", "igwn", token(NOW + 9000, NOW - 1800)),
            // 30 minutes left (less than MINIMUM): due.
            file("erin", "igwn", token(NOW + 1800, NOW - 60)),
            file("frank", "igwn", UseSeen::Missing),
            file("bob", "igwn", token(NOW + 2100, NOW - 1500)),
            file("carol", "igwn", token(NOW + 7000, NOW - 100)),
        ],
        vec![
            entry("bob", "igwn", Problem::Failing),
            entry("carol", "igwn", Problem::NeedsLogin),
            entry("gina", "bad", Problem::Skipped),
        ],
    );
    let rows = rows(&s, NOW);
    let got: Vec<(&str, RowState)> = rows.iter().map(|r| (r.user.as_str(), r.state)).collect();
    assert_eq!(
        got,
        vec![
            ("carol", RowState::NeedsLogin),
            ("bob", RowState::Failing),
            ("gina", RowState::Skipped),
            ("frank", RowState::Waiting),
            ("erin", RowState::Due),
            ("dave", RowState::Due),
            ("alice", RowState::Fresh),
        ]
    );
    let alice = rows.iter().find(|r| r.user == "alice").unwrap();
    assert_eq!(alice.next_due, Some(NOW + 600));
    assert_eq!(alice.last_refresh, Some(NOW - 600));
    assert_eq!(
        (alice.keytab, alice.needs_login, alice.last_error.as_deref()),
        (false, false, None)
    );
    let bob = rows.iter().find(|r| r.user == "bob").unwrap();
    assert!(bob.keytab);
    assert_eq!(
        bob.next_due,
        Some(NOW + 40),
        "a failing credential's next try"
    );
    assert_eq!(bob.last_error.as_deref(), Some("Failing error"));
    let carol = rows.iter().find(|r| r.user == "carol").unwrap();
    assert!(carol.needs_login);
}

#[test]
fn text_view_says_what_the_credmon_does_and_shows_a_table() {
    let s = seen(
        vec![
            file("alice", "igwn", token(NOW + 7980, NOW - 420)),
            file("carol", "igwn", token(NOW + 7000, NOW - 100)),
        ],
        vec![entry("carol", "igwn", Problem::NeedsLogin)],
    );
    let text = render_text(&view(&s, NOW));
    let want = "\
credmon: running (pid 42), last pass 12s ago, state written 3s ago
2 credentials: 1 needs a person, 1 fresh

USER   CREDENTIAL  STATE           USE EXPIRES  LAST REFRESH  NEXT DUE   KEYTAB  LAST ERROR
carol  igwn        needs a person  in 1h56m     1m40s ago     in 40s     no      NeedsLogin error
alice  igwn        fresh           in 2h13m     7m00s ago     in 13m00s  no      -
";
    assert_eq!(text, want);
    // Down: said so.
    let mut down = s.clone();
    down.pid = PidState::Dead(42);
    let text = render_text(&view(&down, NOW));
    assert!(
        text.starts_with("credmon: not running: pid 42 is gone"),
        "{text}"
    );
    assert!(text.contains("the credmon is down"), "{text}");
}

#[test]
fn json_view_is_stable() {
    let s = seen(
        vec![file("alice", "igwn", token(NOW + 7980, NOW - 420))],
        vec![],
    );
    let v: serde_json::Value = serde_json::from_str(&render_json(&view(&s, NOW))).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "version": 1,
            "cred_dir": "/creds",
            "now": NOW,
            "credmon": {"running": true, "pid": 42, "detail": "running (pid 42)"},
            "last_pass": NOW - 12,
            "state_written": NOW - 3,
            "credentials": [{
                "user": "alice", "credential": "igwn", "state": "fresh",
                "use_expires": NOW + 7980, "last_refresh": NOW - 420, "next_due": NOW + 780,
                "keytab": false, "needs_login": false, "failures": 0, "since": null,
                "last_error": null
            }],
            "errors": []
        })
    );
}

#[test]
fn observes_a_credential_directory_under_the_trust_rule() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("alice")).unwrap();
    std::fs::write(
        d.join("alice/igwn.top"),
        r#"{"vault_token":"hvs.x","vault_url":"https://v:8200/v1/secret/oauth/creds/igwn/alice:default"}"#,
    )
    .unwrap();
    std::fs::write(d.join("alice/scitokens.top"), "alice").unwrap();
    std::fs::create_dir(d.join("bob")).unwrap();
    std::fs::write(
        d.join("bob/igwn.top"),
        r#"{"vault_url":"https://v:8200/v1/secret/oauth/creds/igwn/bob:default"}"#,
    )
    .unwrap();
    std::fs::set_permissions(
        d.join("bob/igwn.top"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let s = observe(d, None).unwrap();
    assert_eq!(s.files.len(), 1, "only Vault credentials: {:?}", s.files);
    assert_eq!(s.files[0].usage, UseSeen::Missing);
    assert_eq!(s.pid, PidState::Missing);
    assert!(
        s.errors.iter().any(|e| e.contains("bob/igwn.top")),
        "{:?}",
        s.errors
    );
    let only_bob = observe(d, Some("bob")).unwrap();
    assert!(only_bob.files.is_empty());
    assert!(matches!(
        observe(&d.join("nope"), None),
        Err(StatusError::Dir(_))
    ));
    let text = run(d, None, false, NOW).unwrap();
    assert!(text.contains("no state file yet"), "{text}");
    assert!(text.contains("alice  igwn        waiting"), "{text}");
}
