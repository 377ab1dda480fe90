#![allow(clippy::unwrap_used)]
use super::*;
use std::os::unix::fs::MetadataExt;
use std::time::UNIX_EPOCH;
use std::time::{Duration, SystemTime};

fn at(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(s)
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .map(|s| s.value)
}

#[test]
fn get_metrics_round_trip_through_the_file() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("robot.prom");
    let mut m = GetMetrics::load(&path).unwrap();
    assert_eq!(m, GetMetrics::default());
    m.user = "robot".into();
    m.record_failure(at(1000), "vault");
    m.record_failure(at(1100), "vault");
    m.record_failure(at(1150), "kerberos");
    m.record_success(at(1200), Some(5000), Some("expiring"));
    m.record_failure(at(1300), "file");
    m.write(&path, nix::unistd::geteuid().as_raw()).unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    let samples = parse(&text).unwrap();
    use get_names::*;
    let u = ("user", "robot");
    assert_eq!(value(&samples, LAST_RUN, &[u]), Some(1300.0));
    assert_eq!(value(&samples, LAST_SUCCESS, &[u]), Some(1200.0));
    assert_eq!(value(&samples, LAST_REFRESH, &[u]), Some(1200.0));
    assert_eq!(value(&samples, EXPIRY, &[u]), Some(5000.0));
    assert_eq!(value(&samples, CONSECUTIVE_FAILURES, &[u]), Some(1.0));
    assert_eq!(
        value(&samples, FAILURES, &[u, ("cause", "vault")]),
        Some(2.0)
    );
    assert_eq!(
        value(&samples, REFRESHES, &[u, ("cause", "expiring")]),
        Some(1.0)
    );
    assert!(text.contains("# TYPE robot_credmon_get_failures_total counter\n"));

    // The next run carries the counters on.
    let mut again = GetMetrics::load(&path).unwrap();
    assert_eq!(again, m);
    again.record_success(at(2000), None, None);
    assert_eq!(again.consecutive_failures, 0);
    assert_eq!(again.expiry, Some(5000));
    assert_eq!(again.refreshes_by_cause["expiring"], 1);
    assert_eq!(again.last_refresh, Some(1200));
}

#[test]
fn replaced_atomically_never_in_place() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("m.prom");
    let mut m = GetMetrics::default();
    m.record_success(at(1), Some(2), Some("missing"));
    m.write(&path, nix::unistd::geteuid().as_raw()).unwrap();
    let before = std::fs::metadata(&path).unwrap();
    // A reader that opened the old file keeps seeing the old contents.
    let old_reader = std::fs::read_to_string(&path).unwrap();
    let held = std::fs::File::open(&path).unwrap();
    m.record_failure(at(3), "vault");
    m.write(&path, nix::unistd::geteuid().as_raw()).unwrap();
    let after = std::fs::metadata(&path).unwrap();
    assert_ne!(before.ino(), after.ino(), "the file must be renamed over");
    assert_eq!(after.mode() & 0o777, 0o644);
    let mut still = String::new();
    std::io::Read::read_to_string(&mut &held, &mut still).unwrap();
    assert_eq!(still, old_reader);
    let names: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["m.prom"], "no temporary file is left behind");
}

#[test]
fn refuses_a_symlink_and_reports_damage() {
    let t = tempfile::tempdir().unwrap();
    let victim = t.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let link = t.path().join("m.prom");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let err = GetMetrics::default()
        .write(&link, nix::unistd::geteuid().as_raw())
        .unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

    let bad = t.path().join("bad.prom");
    std::fs::write(&bad, "# ok\nrobot_credmon_get_consecutive_failures two\n").unwrap();
    let err = GetMetrics::load(&bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "'{}' line 2 is not prometheus text format: invalid value 'two'",
            bad.display()
        )
    );
    assert_eq!(GetMetrics::load_or_default(&bad), GetMetrics::default());
}

#[test]
fn labels_never_carry_tokens() {
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
    for (input, out) in [
        ("vault", "vault"),
        ("permission_denied", "permission_denied"),
        ("alice.smith", "alice.smith"),
        (jwt, "other"),
        ("a.b.c", "other"),
        ("hvs.CAESIabc", "hvs.CAESIabc"),
        (&"x".repeat(65), "other"),
        ("with space", "other"),
        ("quote\"", "other"),
        ("", "other"),
    ] {
        assert_eq!(label_value(input), out, "{input}");
    }
    let mut m = GetMetrics::default();
    m.record_failure(at(1), jwt);
    assert!(!m.render().contains(jwt));
}

#[test]
fn credmon_metrics_and_histogram() {
    let mut m = CredmonMetrics::default();
    m.record_refresh(at(100), "missing", Duration::from_millis(300));
    m.record_failure("vault", Duration::from_secs(12));
    m.end_pass(
        at(110),
        BTreeMap::from([("fresh".into(), 3), ("failing".into(), 1)]),
        Some(9000),
    );
    assert_eq!(m.consecutive_failures, 1);
    let samples = parse(&m.render()).unwrap();
    use credmon_names::*;
    assert_eq!(value(&samples, LAST_PASS, &[]), Some(110.0));
    assert_eq!(value(&samples, LAST_SUCCESS, &[]), Some(100.0));
    assert_eq!(value(&samples, SOONEST_EXPIRY, &[]), Some(9000.0));
    assert_eq!(
        value(&samples, CREDENTIALS, &[("state", "fresh")]),
        Some(3.0)
    );
    assert_eq!(value(&samples, FAILURES, &[("cause", "vault")]), Some(1.0));
    let bucket = format!("{REFRESH_DURATION}_bucket");
    // (le, cumulative count)
    for (le, n) in [
        ("0.25", 0.0),
        ("0.5", 1.0),
        ("10", 1.0),
        ("30", 2.0),
        ("+Inf", 2.0),
    ] {
        assert_eq!(value(&samples, &bucket, &[("le", le)]), Some(n), "le={le}");
    }
    assert_eq!(
        value(&samples, &format!("{REFRESH_DURATION}_sum"), &[]),
        Some(12.3)
    );
    assert_eq!(
        value(&samples, &format!("{REFRESH_DURATION}_count"), &[]),
        Some(2.0)
    );
    assert_eq!(
        value(&samples, NEEDING_LOGIN, &[]),
        Some(0.0),
        "always written"
    );
    assert!(
        !samples.iter().any(|s| s.name == NEEDS_LOGIN),
        "no series while none needs a person"
    );
    m.needs_login = vec![("carol".into(), "igwn_robot".into())];
    let samples = parse(&m.render()).unwrap();
    assert_eq!(value(&samples, NEEDING_LOGIN, &[]), Some(1.0));
    assert_eq!(
        value(
            &samples,
            NEEDS_LOGIN,
            &[("user", "carol"), ("credential", "igwn_robot")]
        ),
        Some(1.0)
    );
    m.end_pass(at(170), BTreeMap::new(), None);
    assert_eq!(m.consecutive_failures, 0);

    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("credmon.prom");
    m.write(&path, nix::unistd::geteuid().as_raw()).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), m.render());
}

#[test]
fn parser_table() {
    let s = parse("a 1\nb{x=\"y\\\"z\",w=\"v\"} -2.5 1700000000\n# c 3\nd{} +Inf\n").unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(
        s[1].labels,
        vec![("x".into(), "y\"z".into()), ("w".into(), "v".into())]
    );
    assert_eq!(s[1].value, -2.5);
    assert!(s[2].value.is_infinite());
    for (bad, line) in [
        ("1abc 2", 1),
        ("a 1\nb{x=y} 1", 2),
        ("a{x=\"y} 1", 1),
        ("a", 1),
    ] {
        assert_eq!(parse(bad).unwrap_err().0, line, "{bad}");
    }
}
