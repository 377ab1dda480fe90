#![allow(clippy::unwrap_used)]
use super::*;

fn entry(realm: &str, comps: &[&str]) -> Vec<u8> {
    let mut e = Vec::new();
    e.extend((comps.len() as u16).to_be_bytes());
    for s in std::iter::once(&realm).chain(comps.iter()) {
        e.extend((s.len() as u16).to_be_bytes());
        e.extend(s.as_bytes());
    }
    e.extend(1u32.to_be_bytes()); // name type
    e.extend(0u32.to_be_bytes()); // timestamp
    e.push(1); // kvno
    e.extend(18u16.to_be_bytes());
    e.extend(2u16.to_be_bytes());
    e.extend([0xaa, 0xbb]);
    let mut out = (e.len() as u32).to_be_bytes().to_vec();
    out.extend(e);
    out
}

#[test]
fn parses_keytab() {
    let mut kt = vec![5, 2];
    kt.extend(entry("EXAMPLE.TEST", &["robot", "host.example"]));
    kt.extend((-4i32).to_be_bytes()); // a hole
    kt.extend([0; 4]);
    kt.extend(entry("EXAMPLE.TEST", &["robot", "host.example"]));
    kt.extend(entry("EXAMPLE.TEST", &["other"]));
    assert_eq!(
        parse_keytab_principals(&kt).unwrap(),
        vec!["robot/host.example@EXAMPLE.TEST", "other@EXAMPLE.TEST"]
    );
    assert!(parse_keytab_principals(&[5, 2]).is_err());
    assert!(parse_keytab_principals(b"hello").is_err());
}

#[test]
fn qualifies() {
    assert_eq!(qualify_principal("robot/h"), "robot/h@LIGO.ORG");
    assert_eq!(qualify_principal("a@B"), "a@B");
}

#[test]
fn keytab_checks_on_the_open_file() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("kt");
    assert!(matches!(
        Keytab::open(&p, false),
        Err(KrbError::KeytabMissing(_))
    ));
    let mut kt = vec![5, 2];
    kt.extend(entry("EXAMPLE.TEST", &["robot", "h"]));
    std::fs::write(&p, &kt).unwrap();
    // (mode, accepted): group or others may neither read nor write.
    for (mode, ok) in [
        (0o644, false),
        (0o640, false),
        (0o620, false),
        (0o604, false),
        (0o600, true),
        (0o400, true),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        let r = Keytab::open(&p, false);
        assert_eq!(r.is_ok(), ok, "{mode:o}");
        if !ok {
            assert!(
                r.err()
                    .unwrap()
                    .to_string()
                    .contains(&format!("{mode:04o}"))
            );
        }
    }
    let k = Keytab::open(&p, false).unwrap();
    assert_eq!(k.principals(), ["robot/h@EXAMPLE.TEST"]);
    assert_eq!(k.choose_principal(None).unwrap(), "robot/h@EXAMPLE.TEST");
    assert!(k.choose_principal(Some("other@EXAMPLE.TEST")).is_err());
    assert!(k.gss_name().starts_with("FILE:/proc/self/fd/"));
    // Not root's: refused when root ownership is required (unless we are root and it is).
    let owned_by_root = std::fs::metadata(&p).unwrap().uid() == 0;
    assert_eq!(Keytab::open(&p, true).is_ok(), owned_by_root);
    // A symbolic link is not followed, a directory is not a keytab.
    let link = t.path().join("link");
    std::os::unix::fs::symlink(&p, &link).unwrap();
    let e = Keytab::open(&link, false).err().unwrap();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    let e = Keytab::open(t.path(), false).err().unwrap();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    std::fs::write(&p, b"junk").unwrap();
    assert!(matches!(
        Keytab::open(&p, false),
        Err(KrbError::KeytabFormat { .. })
    ));
}
