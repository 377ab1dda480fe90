//! Operations: `robot-credmon check` as a monitoring plugin, and the checked-in
//! man pages and completions matching the current command line.

use base64::prelude::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_robot-credmon");

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// An unsigned JWT with these claims (the check never verifies signatures).
fn jwt(claims: serde_json::Value) -> String {
    let h = BASE64_URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let p = BASE64_URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{h}.{p}.c2lnbmF0dXJl")
}

fn robot_token(left: i64) -> String {
    jwt(serde_json::json!({
        "sub": "robot/host.example",
        "iss": "https://cilogon.org/igwn",
        "exp": now() + left,
        "scope": "read:/frames",
    }))
}

/// Runs the binary; returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out: Output = Command::new(BIN)
        .args(args)
        .env_remove("BEARER_TOKEN_FILE")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `check`, asserts one output line and that no token leaked.
fn check(args: &[&str], secrets: &[&str]) -> (i32, String) {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = run(&all);
    for s in secrets {
        // Neither the whole token nor its payload segment.
        let payload = s.split('.').nth(1).unwrap_or(s);
        assert!(
            !stdout.contains(payload) && !stderr.contains(payload),
            "the token was printed: {stdout}{stderr}"
        );
    }
    assert_eq!(stdout.lines().count(), 1, "one plugin line: {stdout:?}");
    (code, stdout.trim_end().to_owned())
}

fn path_str(p: &Path) -> &str {
    p.to_str()
        .unwrap_or_else(|| panic!("non-UTF-8 temp path {p:?}"))
}

#[test]
fn check_token_file_states_and_exit_codes() {
    let t = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    // (seconds left, thresholds, exit code, line start)
    let cases: [(i64, [&str; 4], i32, &str); 6] = [
        (
            7990,
            ["-w", "3600", "-c", "1800"],
            0,
            "OK - token for robot/host.example@cilogon.org expires in 2h13m | remaining=79",
        ),
        (
            7990,
            ["-w", "3h", "-c", "1h"],
            1,
            "WARNING - token for robot/host.example@cilogon.org expires in 2h13m | remaining=79",
        ),
        (
            3005,
            ["-w", "1h", "-c", "30m"],
            1,
            "WARNING - token for robot/host.example@cilogon.org expires in 50m0",
        ),
        (
            605,
            ["--warning", "1h", "--critical", "30m"],
            2,
            "CRITICAL - token for robot/host.example@cilogon.org expires in 10m0",
        ),
        (
            -300,
            ["-w", "1h", "-c", "30m"],
            2,
            "CRITICAL - token for robot/host.example@cilogon.org expired 5m0",
        ),
        (
            100_000,
            ["-w", "1h30m", "-c", "600"],
            0,
            "OK - token for robot/host.example@cilogon.org expires in 1d3h | remaining=",
        ),
    ];
    for (i, (left, th, code, start)) in cases.into_iter().enumerate() {
        let tok = robot_token(left);
        let file = t.path().join(format!("bt_{i}"));
        fs::write(&file, format!("{tok}\n")).unwrap_or_else(|e| panic!("write: {e}"));
        let mut args = th.to_vec();
        args.push(path_str(&file));
        let (got, line) = check(&args, &[&tok]);
        assert_eq!(got, code, "{line}");
        assert!(
            line.starts_with(start),
            "{line:?} should start with {start:?}"
        );
    }
    // The thresholds appear in the performance data, in seconds.
    let tok = robot_token(7990);
    let file = t.path().join("bt_perf");
    fs::write(&file, &tok).unwrap_or_else(|e| panic!("write: {e}"));
    let (_, line) = check(&["-w", "1h", "-c", "30m", path_str(&file)], &[&tok]);
    assert!(line.ends_with("s;3600:;1800:;0"), "{line}");
    // Plugin ranges are accepted as such: `3600:` is the same as `3600` and `1h`.
    let (code, line) = check(&["-w", "3600:", "-c", "1800:", path_str(&file)], &[&tok]);
    assert_eq!(code, 0, "{line}");
    assert!(line.ends_with("s;3600:;1800:;0"), "{line}");
    let (code, line) = check(&["-w", "@7000:8000", "-c", "60:", path_str(&file)], &[&tok]);
    assert_eq!(code, 1, "{line}");
    assert!(line.ends_with("s;@7000:8000;60:;0"), "{line}");
}

#[test]
fn check_bad_inputs_are_unknown() {
    let t = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dir = t.path();
    let not_jwt = dir.join("not_jwt");
    fs::write(&not_jwt, "hvs.notajwtatall\n").unwrap_or_else(|e| panic!("write: {e}"));
    let tok = robot_token(7200);
    let real = dir.join("real");
    fs::write(&real, &tok).unwrap_or_else(|e| panic!("write: {e}"));
    let link = dir.join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap_or_else(|e| panic!("symlink: {e}"));
    let a_dir = dir.join("a_dir");
    fs::create_dir(&a_dir).unwrap_or_else(|e| panic!("mkdir: {e}"));
    let no_exp = dir.join("no_exp");
    let no_exp_tok = jwt(serde_json::json!({"sub": "robot", "iss": "https://i.example"}));
    fs::write(&no_exp, &no_exp_tok).unwrap_or_else(|e| panic!("write: {e}"));

    let missing = dir.join("missing");
    let no_dir = dir.join("no/such/dir/bt");
    // (arguments, text the line must contain)
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec![path_str(&not_jwt)],
            format!(
                "'{}' does not hold a bearer token: it is not a JWT",
                not_jwt.display()
            ),
        ),
        (
            vec![path_str(&missing)],
            format!("there is no token file '{}'", missing.display()),
        ),
        (
            vec![path_str(&no_dir)],
            "No such file or directory".to_owned(),
        ),
        (vec![path_str(&a_dir)], "is not a regular file".to_owned()),
        (vec![path_str(&no_exp)], "has no exp claim".to_owned()),
        (
            vec!["-w", "10m", "-c", "1h", path_str(&real)],
            "the critical threshold (3600s) is above the warning threshold (600s)".to_owned(),
        ),
        (
            vec!["--credmon", path_str(&no_dir)],
            "No such file or directory".to_owned(),
        ),
    ];
    for (args, want) in cases {
        let (code, line) = check(&args, &[&tok, &no_exp_tok]);
        assert_eq!(code, 3, "{args:?}: {line}");
        assert!(line.starts_with("UNKNOWN - "), "{line}");
        assert!(line.contains(&want), "{line:?} should contain {want:?}");
        // Words for operators, not library error names such as "(invalidtoken)".
        assert!(!line.to_lowercase().contains("invalidtoken"), "{line}");
    }
    // A link may be planted: never believed, CRITICAL with the reason.
    let (code, line) = check(&[path_str(&link)], &[&tok]);
    assert_eq!(code, 2, "{line}");
    assert!(line.starts_with("CRITICAL - "), "{line}");
    assert!(line.contains("is a symbolic link"), "{line}");
    // A command line that does not parse is UNKNOWN too, not clap's usual 2
    // (CRITICAL), with one plugin line on stdout and clap's message on stderr.
    for (args, want) in [
        (
            vec!["-w", "soon", path_str(&real)],
            "invalid threshold 'soon'",
        ),
        (vec!["--no-such-option"], "--no-such-option"),
        (vec!["-t", "0", path_str(&real)], "below one second"),
        (vec!["-w"], "-w"),
    ] {
        let mut all = vec!["check"];
        all.extend_from_slice(&args);
        let (code, stdout, stderr) = run(&all);
        assert_eq!(code, 3, "{args:?}: {stdout}{stderr}");
        assert_eq!(stdout.lines().count(), 1, "{args:?}: {stdout:?}");
        assert!(stdout.starts_with("UNKNOWN - usage: "), "{stdout}");
        assert!(stdout.contains(want), "{stdout} should contain {want}");
        assert!(!stdout.contains('|'), "{stdout}");
        assert!(stderr.contains(want), "{stderr}");
    }
    // Other subcommands keep clap's exit status.
    let (code, _, _) = run(&["token", "--no-such-option"]);
    assert_eq!(code, 2);
}

/// A credential directory laid out as HTCondor's credd and a credmon leave it.
struct CredDir {
    _tmp: tempfile::TempDir,
    path: PathBuf,
    tokens: Vec<String>,
}

impl CredDir {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let path = tmp.path().join("oauth_credentials");
        fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir: {e}"));
        CredDir {
            _tmp: tmp,
            path,
            tokens: Vec::new(),
        }
    }

    fn write(&self, rel: &str, contents: &str) {
        let p = self.path.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir: {e}"));
        }
        fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }

    fn vault_cred(&mut self, user: &str, name: &str, left: Option<i64>) {
        self.write(
            &format!("{user}/{name}.top"),
            r#"{"vault_token":"hvs.CAESIsecret","vault_url":"https://vault.example:8200/v1/secret/igwn/creds/alice:default"}"#,
        );
        if let Some(left) = left {
            let tok = robot_token(left);
            self.write(&format!("{user}/{name}.use"), &format!("{tok}\n"));
            self.tokens.push(tok);
        }
    }

    fn complete(&self, age: u64) {
        self.write("CREDMON_COMPLETE", "");
        let f = fs::File::options()
            .write(true)
            .open(self.path.join("CREDMON_COMPLETE"))
            .unwrap_or_else(|e| panic!("open: {e}"));
        f.set_modified(SystemTime::now() - Duration::from_secs(age))
            .unwrap_or_else(|e| panic!("set mtime: {e}"));
    }

    fn check(&self, extra: &[&str]) -> (i32, String) {
        let mut args = vec!["--credmon", "-w", "1h", "-c", "30m"];
        args.extend_from_slice(extra);
        args.push(path_str(&self.path));
        let mut secrets: Vec<&str> = self.tokens.iter().map(String::as_str).collect();
        secrets.push("hvs.CAESIsecret");
        check(&args, &secrets)
    }
}

/// A real `robot-credmon credmon` on an empty credential directory of its
/// own, so that `check --credmon` sees a live credmon process; killed by pid on drop.
struct LiveCredmon {
    child: std::process::Child,
    _tmp: tempfile::TempDir,
}

impl LiveCredmon {
    fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let creds = tmp.path().join("creds");
        let child = Command::new(BIN)
            .args(["credmon", "-c", path_str(&creds), "-l"])
            .arg(tmp.path().join("log"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN} credmon: {e}"));
        let c = LiveCredmon { child, _tmp: tmp };
        let pid = c.pid().to_string();
        assert!(
            crate::support::wait::until(Duration::from_secs(5), || {
                fs::read_to_string(creds.join("pid")).ok().as_deref() == Some(pid.as_str())
            }),
            "the credmon wrote no pid file within 5 s"
        );
        c
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for LiveCredmon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A healthy credmon's directory, with `pid` naming the live credmon `pid`.
fn healthy_of(pid: u32) -> CredDir {
    let mut d = CredDir::new();
    d.write("pid", &pid.to_string());
    d.complete(30);
    d.vault_cred("alice", "igwn", Some(7990));
    d.vault_cred("bob", "igwn_readonly", Some(20_000));
    // Not Vault credentials: ignored.
    d.write("carol/scitokens.top", "carol");
    d.write("dave/oauth.top", r#"{"refresh_token":"x"}"#);
    d.write("alice.mark", "");
    d
}

#[test]
fn check_credmon_states() {
    let credmon = LiveCredmon::start();
    let pid = credmon.pid();
    let healthy = || healthy_of(pid);
    let d = healthy();
    let (code, line) = d.check(&[]);
    assert_eq!(code, 0, "{line}");
    // Ages and lifetimes may move by a second while the test runs.
    assert!(
        line.starts_with(&format!("OK - credmon pid {pid} running, last pass 3")),
        "{line}"
    );
    assert!(
        line.contains(
            "s ago, 2 vault credentials, soonest alice/igwn expires in 2h13m | remaining=79"
        ),
        "{line}"
    );
    assert!(
        line.contains(";3600:;1800:;0 credentials=2;;;0 problems=0;;;0 last_pass=3"),
        "{line}"
    );
    assert!(line.ends_with("s;;0:600;0"), "{line}");

    // A new .top whose .use the credmon has not written yet is pending, not a problem.
    let mut d = healthy();
    d.vault_cred("erin", "igwn", None);
    let (code, line) = d.check(&[]);
    assert_eq!(code, 0, "{line}");
    assert!(line.contains("3 vault credentials"), "{line}");

    let mut d = healthy();
    d.vault_cred("erin", "igwn", Some(3005));
    let (code, line) = d.check(&[]);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.starts_with("WARNING - erin/igwn expires in 50m0"),
        "{line}"
    );

    let mut d = healthy();
    d.vault_cred("erin", "igwn", Some(-60));
    let (code, line) = d.check(&[]);
    assert_eq!(code, 2, "{line}");
    assert!(
        line.starts_with("CRITICAL - erin/igwn expired 1m0"),
        "{line}"
    );

    let d = healthy();
    d.complete(3600);
    let (code, line) = d.check(&["--max-age", "10m"]);
    assert_eq!(code, 2, "{line}");
    assert!(
        line.starts_with("CRITICAL - the last complete pass was 1h00m ago (more than 10m00s)"),
        "{line}"
    );

    let d = healthy();
    fs::remove_file(d.path.join("CREDMON_COMPLETE")).unwrap_or_else(|e| panic!("rm: {e}"));
    let (code, line) = d.check(&[]);
    assert_eq!(code, 1, "{line}");
    assert!(line.starts_with("WARNING - no CREDMON_COMPLETE"), "{line}");

    let d = healthy();
    fs::remove_file(d.path.join("pid")).unwrap_or_else(|e| panic!("rm: {e}"));
    let (code, line) = d.check(&[]);
    assert_eq!(code, 2, "{line}");
    assert!(line.starts_with("CRITICAL - no pid file in"), "{line}");

    // The pid of a process that has exited.
    let mut child = Command::new("true")
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run true (install coreutils): {e}"));
    let dead = child.id();
    child.wait().unwrap_or_else(|e| panic!("wait: {e}"));
    let d = healthy();
    d.write("pid", &dead.to_string());
    let (code, line) = d.check(&[]);
    assert_eq!(code, 2, "{line}");
    assert!(
        line.starts_with(&format!("CRITICAL - credmon pid {dead} is not running")),
        "{line}"
    );

    // A pid that a credmon once had, now reused by another program: not OK.
    let mut other = Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run sleep (install coreutils): {e}"));
    let d = healthy();
    d.write("pid", &other.id().to_string());
    let (code, line) = d.check(&[]);
    let _ = other.kill();
    let _ = other.wait();
    assert_eq!(code, 2, "{line}");
    assert!(
        line.starts_with(&format!(
            "CRITICAL - credmon pid {} is not running: that pid is now 'sleep 30'",
            other.id()
        )),
        "{line}"
    );

    let d = healthy();
    d.write("pid", "not a pid");
    let (code, line) = d.check(&[]);
    assert_eq!(code, 3, "{line}");
    assert!(line.contains("pid' does not hold a process id"), "{line}");

    // A .use that is not a token, and one that is a symbolic link.
    let d = healthy();
    d.write("alice/igwn.use", "garbage\n");
    let (code, line) = d.check(&[]);
    assert_eq!(code, 3, "{line}");
    assert!(line.starts_with("UNKNOWN - alice/igwn: '"), "{line}");
    assert!(
        line.contains("does not hold") || line.contains("not a JWT"),
        "{line}"
    );

    let d = healthy();
    let use_file = d.path.join("bob/igwn_readonly.use");
    fs::remove_file(&use_file).unwrap_or_else(|e| panic!("rm: {e}"));
    std::os::unix::fs::symlink(d.path.join("alice/igwn.use"), &use_file)
        .unwrap_or_else(|e| panic!("symlink: {e}"));
    let (code, line) = d.check(&[]);
    assert_eq!(code, 3, "{line}");
    assert!(line.contains("is a symbolic link"), "{line}");

    // Files another user planted, or could have changed, are not evidence:
    // a fresh .use owned by nobody, a group-writable one, a foreign .top and pid.
    const NOBODY: u32 = 65534;
    let d = healthy();
    std::os::unix::fs::chown(d.path.join("bob/igwn_readonly.use"), Some(NOBODY), None)
        .unwrap_or_else(|e| panic!("chown: {e}"));
    let (code, line) = d.check(&[]);
    assert_eq!(code, 3, "{line}");
    assert!(
        line.contains("igwn_readonly.use' is owned by uid 65534"),
        "{line}"
    );
    let d = healthy();
    fs::set_permissions(
        d.path.join("alice/igwn.use"),
        fs::Permissions::from_mode(0o664),
    )
    .unwrap_or_else(|e| panic!("chmod: {e}"));
    let (code, line) = d.check(&[]);
    assert_eq!(code, 3, "{line}");
    assert!(
        line.contains("writable by its group or by others"),
        "{line}"
    );
    let mut d = healthy();
    d.vault_cred("mallory", "igwn", Some(20_000));
    std::os::unix::fs::chown(d.path.join("mallory/igwn.top"), Some(NOBODY), None)
        .unwrap_or_else(|e| panic!("chown: {e}"));
    let (code, line) = d.check(&[]);
    assert_eq!(code, 3, "{line}");
    assert!(line.contains("igwn.top' is owned by uid 65534"), "{line}");
    let d = healthy();
    std::os::unix::fs::chown(d.path.join("pid"), Some(NOBODY), None)
        .unwrap_or_else(|e| panic!("chown: {e}"));
    let (code, line) = d.check(&[]);
    assert_ne!(code, 0, "{line}");
    assert!(line.contains("pid' is owned by uid 65534"), "{line}");
}

fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| {
            let e = e.unwrap_or_else(|e| panic!("read_dir: {e}"));
            let name = e.file_name().to_string_lossy().into_owned();
            let bytes = fs::read(e.path()).unwrap_or_else(|err| panic!("read {name}: {err}"));
            (name, bytes)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn man_pages_and_completions_match_the_cli() {
    let t = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (code, _, stderr) = run(&["generate", "all", path_str(t.path())]);
    assert_eq!(code, 0, "generate failed: {stderr}");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist");
    for sub in ["man", "completions"] {
        let fresh = listing(&t.path().join(sub));
        let shipped = listing(&repo.join(sub));
        let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        let stale: Vec<&str> = fresh
            .iter()
            .filter(|f| !shipped.contains(f))
            .map(|(n, _)| n.as_str())
            .collect();
        assert!(
            names(&fresh) == names(&shipped) && stale.is_empty(),
            "dist/{sub} does not match the command line (differs: {stale:?}; generated {:?}, checked in {:?}); \
             regenerate with: cargo run -q -- generate all dist",
            names(&fresh),
            names(&shipped)
        );
    }
    let page = fs::read_to_string(repo.join("man/robot-credmon-check.1"))
        .unwrap_or_else(|e| panic!("read: {e}"));
    assert!(page.contains("\\-\\-warning"), "{page}");
}
