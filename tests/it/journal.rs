//! Messages under systemd: sd-daemon `<N>` priority prefixes when stderr is
//! the journal (`JOURNAL_STREAM` names stderr's device and inode), and the
//! program name as invoked.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_robot-credmon");

/// Runs `prog` as `get` with a keytab that does not exist, stderr into a
/// file; `journal` sets JOURNAL_STREAM to that file's device:inode (`true`)
/// or to another file's (`false`).
fn failing_get(dir: &Path, prog: &Path, journal: Option<bool>) -> (i32, String) {
    let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let err_path = dir.join(format!("stderr-{n}"));
    let err = std::fs::File::create(&err_path).unwrap_or_else(|e| panic!("create: {e}"));
    let meta = std::fs::metadata(&err_path).unwrap_or_else(|e| panic!("stat: {e}"));
    let mut c = Command::new(prog);
    // igwn-robot-get takes get's options at the top level.
    if !prog.ends_with("igwn-robot-get") {
        c.arg("get");
    }
    c.args(["--nooidc", "-k"])
        .arg(dir.join("no-such.keytab"))
        .arg("-o")
        .arg(dir.join("bt"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    if let Some(matches) = journal {
        let ino = if matches { meta.ino() } else { meta.ino() + 1 };
        c.env("JOURNAL_STREAM", format!("{}:{ino}", meta.dev()));
    }
    let status = c
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", prog.display()));
    let text = std::fs::read_to_string(&err_path).unwrap_or_else(|e| panic!("read: {e}"));
    (status.code().unwrap_or(-1), text)
}

#[test]
fn journal_priorities_and_the_invoked_name() {
    let t = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let bin = Path::new(BIN);

    let (code, text) = failing_get(t.path(), bin, Some(true));
    assert_eq!(code, 1, "{text}");
    assert!(text.starts_with("<3>robot-credmon: error: "), "{text:?}");
    assert!(
        text.lines().all(|l| l.starts_with('<')),
        "every line has a priority: {text:?}"
    );

    // JOURNAL_STREAM naming another file (e.g. inherited, with stderr redirected): no prefix.
    let (code, text) = failing_get(t.path(), bin, Some(false));
    assert_eq!(code, 1, "{text}");
    assert!(text.starts_with("robot-credmon: error: "), "{text:?}");

    let (_, text) = failing_get(t.path(), bin, None);
    assert!(text.starts_with("robot-credmon: error: "), "{text:?}");

    // Invoked as igwn-robot-get, it says so.
    let link = t.path().join("igwn-robot-get");
    std::os::unix::fs::symlink(bin, &link).unwrap_or_else(|e| panic!("symlink: {e}"));
    let (code, text) = failing_get(t.path(), &link, None);
    assert_eq!(code, 1, "{text}");
    assert!(text.starts_with("igwn-robot-get: error: "), "{text:?}");
    let (_, text) = failing_get(t.path(), &link, Some(true));
    assert!(text.starts_with("<3>igwn-robot-get: error: "), "{text:?}");
}
