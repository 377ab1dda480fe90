#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn top_parsing() {
    let t = parse_top(br#"{"vault_token":"hvs.x","vault_url":"https://v:8200/v1/a","scopes":"a,b","audience":["x","y"],"other":1}"#).unwrap();
    assert_eq!(t.vault_token.unwrap().expose(), "hvs.x");
    assert_eq!(t.scopes.as_deref(), Some("a,b"));
    assert_eq!(t.audience.as_deref(), Some("x,y"));
    assert!(t.json.contains_key("other"));
    assert!(
        parse_top(br#"{"vault_url":"https://v:8200/v1/a"}"#)
            .unwrap()
            .vault_token
            .is_none()
    );
    for bad in [
        &b"[]"[..],
        b"{}",
        b"not json",
        br#"{"vault_url":"u","vault_token":""}"#,
    ] {
        assert!(parse_top(bad).is_err());
    }
}

#[test]
fn the_token_in_place_handed_back_means_look_again_later() {
    let expiring = Renew::Expiring.label();
    let m = |s: u64| Some(std::time::Duration::from_secs(s));
    // (new exp, current exp, now, why asked, look again after)
    let table = [
        // same token, asked because expiring: an eighth of what is left
        (Some(10_000), Some(10_000), 10_000 - 2_400, expiring, m(300)),
        // close to the end: at least a minute
        (Some(10_000), Some(10_000), 10_000 - 100, expiring, m(60)),
        // a new token: write it
        (Some(12_000), Some(10_000), 7_600, expiring, None),
        // asked for another reason (age, new .top): write it as before
        (Some(10_000), Some(10_000), 7_600, Renew::Age.label(), None),
        (
            Some(10_000),
            Some(10_000),
            7_600,
            Renew::TopNewer.label(),
            None,
        ),
        // nothing in place, or no expiry: write it
        (Some(10_000), None, 7_600, expiring, None),
        (None, None, 7_600, expiring, None),
    ];
    for (new, current, now, cause, want) in table {
        assert_eq!(
            unchanged_expiring(new, current, now, cause),
            want,
            "{new:?} {current:?} {now} {cause}"
        );
    }
}

#[test]
fn a_write_the_file_system_refuses_holds_the_credential_behind_the_disk() {
    // Found by the simulation (seeds 124 and 131, 30 days, 60 credentials):
    // a robot's Vault token revoked while the disk was full; its new token
    // could not be saved in the `.top`, and that failure was not counted as
    // the disk's, so after the disk had room it waited out its own backoff
    // and its `.use` expired.
    use std::io::{Error, ErrorKind};
    let err = |code: i32| FileError::io("cannot write", "/x/.top", Error::from_raw_os_error(code));
    // (error, cause, the disk's trouble)
    let table = [
        (err(nix::libc::ENOSPC), "disk", true),
        (err(nix::libc::EDQUOT), "disk", true),
        (err(nix::libc::EROFS), "disk", true),
        (err(nix::libc::EIO), "disk", true),
        (err(nix::libc::EACCES), "file", false),
        (
            FileError::io("cannot open", "/x", Error::from(ErrorKind::NotFound)),
            "file",
            false,
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (e, cause, disk) in table {
        let refused = RefreshError::file(&e);
        assert_eq!(
            (refused.cause(), refused.disk_trouble()),
            (cause, disk),
            "{e}"
        );
        let Fetched::Done(ran) = fetched(
            &Key::new("u", "igwn"),
            SafeDir::open(dir.path()).unwrap(),
            Err(refused),
            Some("vault.example:8200".into()),
            None,
            true,
        ) else {
            panic!("a failure is the job's end");
        };
        assert_eq!(ran.disk_failing, disk, "{e}");
    }
}

#[test]
fn keys_are_equal_by_their_names_whoever_made_them() {
    let a = Key::new("alice", "igwn_robot");
    let b = Key::of("alice".into(), "igwn_robot".into());
    assert_eq!(a, b);
    assert_eq!(a.cmp(&b), std::cmp::Ordering::Equal);
    for other in [
        Key::new("alice", "igwn"),
        Key::new("alic", "eigwn_robot"),
        Key::new("bob", "igwn_robot"),
    ] {
        assert_ne!(a, other);
        assert_ne!(a.cmp(&other), std::cmp::Ordering::Equal);
    }
    let set: std::collections::HashSet<Key> = [a.clone(), b].into_iter().collect();
    assert_eq!(set.len(), 1);
    assert_eq!(a.to_string(), "alice/igwn_robot");
}
