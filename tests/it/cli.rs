//! The command line at the edge: range-checked durations (usage error, exit 2,
//! never an abort), and the exit-code policy of `main.rs` for every program name.

use crate::cmd::{bin, robot, run};

/// Runs `robot-credmon args…` in a scratch home.
fn code_of(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let home = tempfile::tempdir().unwrap();
    let mut c = robot(home.path());
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let r = run(c);
    (r.code, r.stderr)
}

#[test]
fn huge_durations_are_usage_errors_not_aborts() {
    // (arguments, exit code)
    let cases: &[(&[&str], i32)] = &[
        (&["get", "--retry-time", "99999999999999999999"], 2),
        (&["get", "--retry-time", "500000000000000000d"], 2),
        (&["get", "--retry-time", "2d"], 2),
        (&["get", "--request-timeout", "18446744073709551615s"], 2),
        (&["get", "--request-timeout", "0"], 2),
        (&["get", "--vaulttokenttl", "100000000d"], 2),
        (&["get", "--vaulttokenminttl", "9999999999"], 2),
        (&["get", "--oidc-timeout", "1000000000000d"], 2),
        (&["get", "-m", "18446744073709551615"], 2),
        (&["store", "--restore-before", "99999999999d", "igwn"], 2),
        (&["token", "-m", "99999999999999", "/nonexistent"], 2),
        (&["check", "-w", "99999999999999999999d"], 3),
        (&["check", "--max-age", "nonsense"], 3),
    ];
    for (args, want) in cases {
        let (code, stderr) = code_of(args, &[]);
        assert_eq!(code, *want, "{args:?}: {stderr}");
        assert!(
            stderr.contains("out of range") || stderr.contains("invalid"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn exit_policy_for_help_and_program_names() {
    assert_eq!(code_of(&["--help"], &[]).0, 0);
    assert_eq!(code_of(&["check", "--help"], &[]).0, 0);
    assert_eq!(code_of(&["no-such-command"], &[]).0, 2);
    assert_eq!(code_of(&["check", "--no-such-option"], &[]).0, 3);
    // The program names parse their own options with the same policy.
    let dir = tempfile::tempdir().unwrap();
    for name in ["igwn-robot-get", "robot-credmon-storer"] {
        let link = dir.path().join(name);
        std::os::unix::fs::symlink(bin(), &link).unwrap();
        let mut c = std::process::Command::new(&link);
        c.env_clear().args(["--retry-time", "1000000000d", "x"]);
        let r = run(c);
        assert_eq!(r.code, 2, "{name}: {}", r.stderr);
    }
}

#[test]
fn credmon_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let cred = dir.path().join("cred");
    let cred = cred.to_str().unwrap();
    let base = [("_CONDOR_SEC_CREDENTIAL_DIRECTORY_OAUTH", cred)];
    // A huge TTL knob is an invalid configuration: 99, condor_master does not restart it.
    let (code, stderr) = code_of(
        &["credmon", "--check-config"],
        &[
            base[0],
            ("_CONDOR_CREDMON_OAUTH_TOKEN_MINIMUM", "99999999999999"),
        ],
    );
    assert_eq!(code, 99, "{stderr}");
    assert!(stderr.contains("CREDMON_OAUTH_TOKEN_MINIMUM"), "{stderr}");
    // SEC_CREDENTIAL_MONITOR_OAUTH_LOG names the log; one that cannot be opened is 44.
    let (code, stderr) = code_of(
        &["credmon", "--once"],
        &[
            base[0],
            (
                "_CONDOR_SEC_CREDENTIAL_MONITOR_OAUTH_LOG",
                "/nonexistent/dir/CredMonOAuthLog",
            ),
        ],
    );
    assert_eq!(code, 44, "{stderr}");
    assert!(
        stderr.contains("/nonexistent/dir/CredMonOAuthLog"),
        "{stderr}"
    );
}

/// Issue 15: tests wait for events, not for time. `thread::sleep` stays in
/// at most ten places in src/ and tests/, each with a comment on it or just
/// above it saying why it must be a real pause.
#[test]
fn sleeps_are_few_and_explained() {
    // Spelled in two parts so that this test is not one of its own finds.
    let needle = concat!("thread", "::sleep(");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    let mut unexplained = Vec::new();
    let mut dirs = vec![root.join("src"), root.join("tests")];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                if !code.contains(needle) {
                    continue;
                }
                let place = format!("{}:{}", path.strip_prefix(root).unwrap().display(), i + 1);
                let explained = lines[i.saturating_sub(2)..=i]
                    .iter()
                    .any(|l| l.contains("//"));
                if !explained {
                    unexplained.push(place.clone());
                }
                found.push(place);
            }
        }
    }
    assert!(
        found.len() <= 10,
        "{} thread::sleep calls (at most 10): {found:?}",
        found.len()
    );
    assert!(
        unexplained.is_empty(),
        "thread::sleep without a comment saying why: {unexplained:?}"
    );
    assert!(
        !found.is_empty(),
        "the search found nothing: is it looking in the right place?"
    );
}
