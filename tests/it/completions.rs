//! Shell completions, tested by using them: the checked-in scripts in
//! `dist/completions/` are loaded into real bash, zsh and fish and asked to
//! complete, as a user's <TAB> would.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("dist/completions")
        .join(name)
}

/// Completes `line` (split on spaces; a trailing space starts an empty word)
/// with the bash script for its program; returns the candidates.
fn bash_complete(line: &str) -> Vec<String> {
    let words: Vec<&str> = line.split(' ').collect();
    let prog = words[0];
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    // What bash does on <TAB>: look up the function registered with
    // `complete -F`, set COMP_WORDS/COMP_CWORD/COMP_LINE/COMP_POINT and call
    // it with the program, the current word and the previous word.
    let program = format!(
        r#"set -u
source '{script}'
spec=$(complete -p '{prog}') || {{ echo "no completion registered for {prog}" >&2; exit 1; }}
fn=$(printf '%s\n' "$spec" | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
COMP_WORDS=({words})
COMP_CWORD={cword}
COMP_LINE='{line}'
COMP_POINT=${{#COMP_LINE}}
COMPREPLY=()
"$fn" '{prog}' '{cur}' '{prev}'
printf '%s\n' "${{COMPREPLY[@]}}"
"#,
        script = script(&format!("{prog}.bash")).display(),
        words = quoted.join(" "),
        cur = words[cword],
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .unwrap_or_else(|e| panic!("cannot run bash (apt-get install bash): {e}"));
    assert!(
        out.status.success(),
        "bash completion of {line:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn assert_has(got: &[String], want: &[&str], what: &str) {
    for w in want {
        assert!(
            got.iter().any(|g| g == w),
            "{what}: {w} missing from {got:?}"
        );
    }
}

#[test]
fn bash_completes_subcommand_options() {
    let got = bash_complete("robot-credmon get --vau");
    assert_has(
        &got,
        &[
            "--vaultserver",
            "--vaulttokenfile",
            "--vaulttokenminttl",
            "--vaulttokenttl",
        ],
        "robot-credmon get --vau",
    );
    assert!(got.iter().all(|g| g.starts_with("--vau")), "{got:?}");

    let got = bash_complete("igwn-robot-get --key");
    assert_eq!(got, ["--keytab"], "igwn-robot-get --key");

    let got = bash_complete("robot-credmon check -");
    assert_has(
        &got,
        &[
            "-w",
            "-c",
            "-t",
            "--warning",
            "--critical",
            "--timeout",
            "--credmon",
            "--max-age",
        ],
        "robot-credmon check -",
    );

    let got = bash_complete("robot-credmon-storer --vault");
    assert_eq!(got, ["--vaulttokendir"], "robot-credmon-storer --vault");

    let got = bash_complete("robot-credmon credmon --on");
    assert_eq!(got, ["--once"], "robot-credmon credmon --on");
}

#[test]
fn bash_offers_subcommands_but_not_hidden_ones() {
    let got = bash_complete("robot-credmon ");
    assert_has(
        &got,
        &["get", "store", "token", "credmon", "check"],
        "robot-credmon <TAB>",
    );
    assert!(!got.iter().any(|g| g == "generate"), "{got:?}");
    let got = bash_complete("robot-credmon help ");
    assert!(!got.iter().any(|g| g == "generate"), "{got:?}");
}

/// fish: `complete -C` prints what <TAB> would offer, one `candidate<TAB>description` a line.
fn fish_complete(line: &str) -> Vec<String> {
    let prog = line.split(' ').next().unwrap_or_default();
    let program = format!(
        "source '{}'; complete -C '{line}'",
        script(&format!("{prog}.fish")).display()
    );
    let out = Command::new("fish")
        .args(["--no-config", "-c", &program])
        .output()
        .unwrap_or_else(|e| panic!("cannot run fish (apt-get install fish): {e}"));
    assert!(
        out.status.success(),
        "fish completion of {line:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn fish_completes_subcommand_options() {
    let got = fish_complete("robot-credmon get --vau");
    assert_has(
        &got,
        &["--vaultserver", "--vaulttokenfile"],
        "fish get --vau",
    );
    let got = fish_complete("igwn-robot-get --key");
    assert_has(&got, &["--keytab"], "fish igwn-robot-get --key");
    let got = fish_complete("robot-credmon check --");
    assert_has(
        &got,
        &["--warning", "--critical", "--timeout"],
        "fish check --",
    );
    let got = fish_complete("robot-credmon ");
    assert_has(&got, &["get", "check"], "fish subcommands");
    assert!(!got.iter().any(|g| g == "generate"), "{got:?}");
}

/// zsh: an interactive zsh in a pseudo-terminal completes the line (see
/// `tests/support/zsh_complete.zsh`); bounded by coreutils `timeout`. zsh gets
/// an empty home of its own, and must leave it, and `/dev/null`, untouched
/// (compinit's dump once replaced `/dev/null` with a regular file when run as
/// root, which later broke cargo's own compiler probes).
fn zsh_complete(line: &str) -> Vec<String> {
    let helper = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/zsh_complete.zsh");
    let fpath = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/completions");
    let home = tempfile::tempdir().unwrap();
    let out = Command::new("timeout")
        .arg("30")
        .arg("zsh")
        .arg("-f")
        .arg(&helper)
        .arg(&fpath)
        .arg(line)
        .env("TERM", "dumb")
        .env("HOME", home.path())
        .env("ZDOTDIR", home.path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run timeout/zsh (apt-get install coreutils zsh): {e}"));
    let dev_null = std::fs::metadata("/dev/null").unwrap();
    assert!(
        dev_null.file_type().is_char_device(),
        "zsh replaced /dev/null with a regular file; restore it with \
         `rm /dev/null && mknod -m 666 /dev/null c 1 3`"
    );
    let left: Vec<_> = std::fs::read_dir(home.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "zsh wrote {left:?} into its home");
    assert!(
        out.status.success(),
        "zsh completion of {line:?} failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn zsh_completes_subcommand_options() {
    let got = zsh_complete("robot-credmon get --vau");
    assert_has(
        &got,
        &["--vaultserver", "--vaulttokenfile"],
        "zsh get --vau",
    );
    let got = zsh_complete("igwn-robot-get --key");
    assert_eq!(got, ["--keytab"], "zsh igwn-robot-get --key");
    let got = zsh_complete("robot-credmon check -");
    assert_has(&got, &["-w", "--warning", "--timeout"], "zsh check -");
    let got = zsh_complete("robot-credmon ");
    assert_has(&got, &["get", "check"], "zsh subcommands");
    assert!(!got.iter().any(|g| g == "generate"), "{got:?}");
}
