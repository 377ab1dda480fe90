#![allow(clippy::unwrap_used)]
use super::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

fn opts() -> WriteOptions {
    WriteOptions {
        mode: 0o600,
        owner: None,
        existing_owner: None,
        replace_symlink: false,
    }
}

#[test]
fn writes_atomically_with_mode() {
    let t = tempfile::tempdir().unwrap();
    let d = SafeDir::open(t.path()).unwrap();
    d.write_atomic("tok", b"one\n", opts()).unwrap();
    d.write_atomic(
        "tok",
        b"two\n",
        WriteOptions {
            mode: 0o400,
            ..opts()
        },
    )
    .unwrap();
    let p = t.path().join("tok");
    assert_eq!(std::fs::read(&p).unwrap(), b"two\n");
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o400
    );
    assert_eq!(d.entries().unwrap(), vec!["tok".to_string()]);
}

#[test]
fn refuses_symlink_target_and_leaves_victim_alone() {
    let t = tempfile::tempdir().unwrap();
    let victim = t.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    symlink(&victim, t.path().join("tok")).unwrap();
    let d = SafeDir::open(t.path()).unwrap();
    assert!(matches!(
        d.write_atomic("tok", b"x", opts()),
        Err(FileError::Symlink(_))
    ));
    assert!(matches!(
        d.read("tok", 100, false),
        Err(FileError::Symlink(_))
    ));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    // Replacing the link itself is allowed on request and still spares the victim.
    d.write_atomic(
        "tok",
        b"x",
        WriteOptions {
            replace_symlink: true,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(
        !std::fs::symlink_metadata(t.path().join("tok"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn read_limits_and_hard_links() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("big"), vec![b'a'; 100]).unwrap();
    std::fs::hard_link(t.path().join("big"), t.path().join("link")).unwrap();
    let d = SafeDir::open(t.path()).unwrap();
    assert!(matches!(
        d.read("big", 10, false),
        Err(FileError::TooLarge { .. })
    ));
    assert!(matches!(
        d.read("link", 1000, true),
        Err(FileError::HardLinked(_))
    ));
    assert!(d.read("missing", 10, false).unwrap().is_none());
    assert!(matches!(
        d.read("../x", 10, false),
        Err(FileError::BadName(_))
    ));
}

#[test]
fn wrong_owner_refused() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("tok"), b"x").unwrap();
    let me = std::fs::metadata(t.path().join("tok")).unwrap().uid();
    let d = SafeDir::open(t.path()).unwrap();
    let err = d.write_atomic(
        "tok",
        b"y",
        WriteOptions {
            existing_owner: Some(me + 1),
            ..opts()
        },
    );
    assert!(matches!(err, Err(FileError::WrongOwner { .. })));
}

#[test]
fn stale_temp_table() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("f"), b"x").unwrap();
    let d = SafeDir::open(t.path()).unwrap();
    let st = d.stat("f").unwrap().unwrap();
    let me = st.st_uid;
    let at = |secs: i64| {
        std::time::UNIX_EPOCH + std::time::Duration::from_secs((st.st_mtime + secs) as u64)
    };
    let tmp = format!(".bt{TEMP_MARKER}0123456789abcdef");
    // (entry, target, owner, seconds since mtime, stale?)
    let cases = [
        (tmp.as_str(), "bt", me, 121, true),
        (tmp.as_str(), "bt", me, 120, true),
        (tmp.as_str(), "bt", me, 119, false),
        (tmp.as_str(), "bt", me, 0, false),
        (tmp.as_str(), "bt", me + 1, 3600, false),
        (tmp.as_str(), "vt", me, 3600, false),
        ("bt", "bt", me, 3600, false),
    ];
    for (entry, name, owner, age, want) in cases {
        assert_eq!(
            is_stale_temp(entry, name, &st, owner, at(age), STALE_TEMP_AGE),
            want,
            "{entry} {name} {owner} {age}"
        );
    }
    let dir_st = d.stat_self().unwrap();
    assert!(!is_stale_temp(
        &tmp,
        "bt",
        &dir_st,
        dir_st.st_uid,
        at(1_000_000),
        STALE_TEMP_AGE
    ));
}

#[test]
fn fresh_temps_of_a_running_writer_are_kept() {
    let t = tempfile::tempdir().unwrap();
    let fresh = t.path().join(format!(".bt{TEMP_MARKER}1"));
    std::fs::write(&fresh, b"x").unwrap();
    let d = SafeDir::open(t.path()).unwrap();
    let me = d.stat_self().unwrap().st_uid;
    let fresh_st = d.stat(&format!(".bt{TEMP_MARKER}1")).unwrap().unwrap();
    let written = std::time::SystemTime::UNIX_EPOCH
        + std::time::Duration::from_secs(u64::try_from(fresh_st.st_mtime).unwrap());
    assert_eq!(
        d.remove_stale_temps_of("bt", me, written, STALE_TEMP_AGE)
            .unwrap(),
        0
    );
    assert!(fresh.exists());
    // Under the target's lock (zero minimum age) the same file goes at once.
    assert_eq!(
        d.remove_stale_temps_of("bt", me, written, std::time::Duration::ZERO)
            .unwrap(),
        1
    );
    assert!(!fresh.exists());
}

#[test]
fn stale_temps_removed() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join(format!(".a.use{TEMP_MARKER}1234")), b"x").unwrap();
    std::fs::write(t.path().join("a.use"), b"x").unwrap();
    let d = SafeDir::open(t.path()).unwrap();
    assert_eq!(d.remove_stale_temps().unwrap(), 1);
    assert_eq!(d.entries().unwrap(), vec!["a.use".to_string()]);
}
