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
