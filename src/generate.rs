//! `robot-credmon generate`: man pages and shell completions from the clap
//! definitions, so they cannot drift from the code. The checked-in copies in
//! `dist/man/` and `dist/completions/` are made with
//! `robot-credmon generate all dist`, and a test compares them byte for byte.
//!
//! Man pages get hand-written sections (EXIT STATUS, ENVIRONMENT, FILES,
//! EXAMPLES, SEE ALSO) from `dist/man-sections/`, embedded at build time.
//! Bash completions are post-processed: clap_complete 4.6 names the case arms
//! of a hyphenated program (`robot-credmon`) differently from the names its
//! word loop builds, so nothing after a subcommand would complete.

use crate::cli::{Cli, IgwnRobotGet, RobotCredmonStorer};
use crate::files::{FileError, SafeDir, WriteOptions};
use clap::CommandFactory;
use clap_complete::Shell;
use std::path::{Path, PathBuf};

pub use crate::cli::{GenerateArgs, GenerateWhat as What};

/// The hand-written man page sections, by page name (without `.1`).
const SECTIONS: &[(&str, &str)] = &[
    (
        "robot-credmon",
        include_str!("../dist/man-sections/robot-credmon.roff"),
    ),
    (
        "robot-credmon-get",
        include_str!("../dist/man-sections/get.roff"),
    ),
    (
        "igwn-robot-get",
        include_str!("../dist/man-sections/get.roff"),
    ),
    (
        "robot-credmon-store",
        include_str!("../dist/man-sections/store.roff"),
    ),
    (
        "robot-credmon-storer",
        include_str!("../dist/man-sections/store.roff"),
    ),
    (
        "robot-credmon-token",
        include_str!("../dist/man-sections/token.roff"),
    ),
    (
        "robot-credmon-credmon",
        include_str!("../dist/man-sections/credmon.roff"),
    ),
    (
        "robot-credmon-check",
        include_str!("../dist/man-sections/check.roff"),
    ),
    (
        "robot-credmon-status",
        include_str!("../dist/man-sections/status.roff"),
    ),
];

/// The program names with their own command line, without hidden subcommands
/// (so neither man pages nor completions offer `generate`).
pub fn programs() -> Vec<clap::Command> {
    vec![
        without_hidden(Cli::command()),
        IgwnRobotGet::command(),
        RobotCredmonStorer::command(),
    ]
}

/// A copy of `robot-credmon`'s command whose hidden subcommands are left out.
fn without_hidden(cmd: clap::Command) -> clap::Command {
    let visible: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let mut out = clap::Command::new("robot-credmon")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(cmd.is_subcommand_required_set())
        .propagate_version(true)
        .subcommands(visible);
    if let Some(a) = cmd.get_about() {
        out = out.about(a.clone());
    }
    out
}

/// Renders one page: clap's sections, then the hand-written ones.
fn render_page(man: &clap_mangen::Man, extra: &str) -> Result<Vec<u8>, std::io::Error> {
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    man.render_options_section(&mut buf)?;
    let mut probe = Vec::new();
    man.render_subcommands_section(&mut probe)?;
    if probe.windows(3).any(|w| w == b".TP") {
        buf.extend_from_slice(&probe);
    }
    buf.extend_from_slice(extra.as_bytes());
    man.render_version_section(&mut buf)?;
    Ok(buf)
}

/// Every man page: `(file name, contents)`, e.g. `robot-credmon-get.1`.
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>, std::io::Error> {
    fn walk(cmd: clap::Command, out: &mut Vec<(String, Vec<u8>)>) -> Result<(), std::io::Error> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            walk(sub, out)?;
        }
        let man = clap_mangen::Man::new(cmd)
            .source(format!("robot-credmon {}", env!("CARGO_PKG_VERSION")));
        let name = man.get_filename();
        let page = name.trim_end_matches(".1");
        let extra = SECTIONS
            .iter()
            .find(|(p, _)| *p == page)
            .map(|(_, text)| *text)
            .ok_or_else(|| {
                std::io::Error::other(format!("no dist/man-sections text for the page {page}"))
            })?;
        out.push((name, render_page(&man, extra)?));
        Ok(())
    }
    let mut out = Vec::new();
    for cmd in programs() {
        let mut cmd = cmd.disable_help_subcommand(true);
        cmd.build();
        walk(cmd, &mut out)?;
    }
    out.sort();
    Ok(out)
}

/// Repairs clap_complete's bash script for a hyphenated program name: its
/// case arms say `robot__subcmd__credmon__subcmd__get` where the word loop
/// sets `robot__credmon__subcmd__get`.
pub fn fix_bash(name: &str, script: &str) -> String {
    if !name.contains('-') {
        return script.to_owned();
    }
    let wrong = format!("{}__subcmd__", name.replace('-', "__subcmd__"));
    let right = format!("{}__subcmd__", name.replace('-', "__"));
    script.replace(&wrong, &right)
}

/// Every completion script: `(file name, contents)`: `<prog>.bash`, `_<prog>`, `<prog>.fish`.
pub fn completions() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for mut cmd in programs() {
        let name = cmd.get_name().to_owned();
        for (shell, file) in [
            (Shell::Bash, format!("{name}.bash")),
            (Shell::Zsh, format!("_{name}")),
            (Shell::Fish, format!("{name}.fish")),
        ] {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, &name, &mut buf);
            if shell == Shell::Bash {
                buf = fix_bash(&name, &String::from_utf8_lossy(&buf)).into_bytes();
            }
            out.push((file, buf));
        }
    }
    out.sort();
    out
}

/// Writes files into `dir` (created if missing), each replaced atomically, mode 0644.
fn write_all(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<(), FileError> {
    std::fs::create_dir_all(dir).map_err(|e| FileError::Io {
        action: "cannot create directory",
        path: dir.to_owned(),
        source: e,
    })?;
    let d = SafeDir::open(dir)?;
    for (name, contents) in files {
        d.write_atomic(
            name,
            contents,
            WriteOptions {
                mode: 0o644,
                owner: None,
                existing_owner: None,
                replace_symlink: false,
            },
        )?;
    }
    Ok(())
}

/// Runs `generate`; returns the paths written.
pub fn run(args: &GenerateArgs) -> Result<Vec<PathBuf>, FileError> {
    let man = || {
        man_pages().map_err(|e| FileError::Io {
            action: "cannot render the man pages for",
            path: args.out_dir.clone(),
            source: e,
        })
    };
    let (man_dir, comp_dir) = match args.what {
        What::Man => (Some(args.out_dir.clone()), None),
        What::Completions => (None, Some(args.out_dir.clone())),
        What::All => (
            Some(args.out_dir.join("man")),
            Some(args.out_dir.join("completions")),
        ),
    };
    let mut written = Vec::new();
    if let Some(dir) = man_dir {
        let files = man()?;
        write_all(&dir, &files)?;
        written.extend(files.iter().map(|(n, _)| dir.join(n)));
    }
    if let Some(dir) = comp_dir {
        let files = completions();
        write_all(&dir, &files)?;
        written.extend(files.iter().map(|(n, _)| dir.join(n)));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// (Long: one list of expected pages, sections, knobs and completions.)
    #[test]
    fn one_page_per_program_and_subcommand_and_no_hidden_ones() {
        let pages = man_pages().unwrap();
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "igwn-robot-get.1",
                "robot-credmon-check.1",
                "robot-credmon-credmon.1",
                "robot-credmon-get.1",
                "robot-credmon-status.1",
                "robot-credmon-store.1",
                "robot-credmon-storer.1",
                "robot-credmon-token.1",
                "robot-credmon.1",
            ]
        );
        for (name, page) in &pages {
            let text = String::from_utf8_lossy(page);
            for section in [
                ".SH NAME",
                ".SH SYNOPSIS",
                ".SH DESCRIPTION",
                ".SH \"EXIT STATUS\"",
                ".SH ENVIRONMENT",
                ".SH FILES",
                ".SH EXAMPLES",
                ".SH \"SEE ALSO\"",
            ] {
                assert!(text.contains(section), "{name} lacks {section}");
            }
            assert!(!text.contains("generate"), "{name} mentions generate");
        }
        let credmon = pages
            .iter()
            .find(|(n, _)| n == "robot-credmon-credmon.1")
            .map(|(_, p)| String::from_utf8_lossy(p).into_owned())
            .unwrap();
        for knob in [
            "SEC_CREDENTIAL_DIRECTORY_OAUTH",
            "CREDMON_OAUTH_TOKEN_MINIMUM",
            "CREDMON_OAUTH_TOKEN_REFRESH",
            "CREDMON_OAUTH_LOG",
            "ROBOT_CREDMON_KEYTAB_DIR",
            "SIGHUP",
            "SIGTERM",
            ".B 44",
            ".B 99",
        ] {
            assert!(credmon.contains(knob), "the credmon page lacks {knob}");
        }
        let comps: Vec<String> = completions().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            comps,
            [
                "_igwn-robot-get",
                "_robot-credmon",
                "_robot-credmon-storer",
                "igwn-robot-get.bash",
                "igwn-robot-get.fish",
                "robot-credmon-storer.bash",
                "robot-credmon-storer.fish",
                "robot-credmon.bash",
                "robot-credmon.fish",
            ]
        );
        for (name, text) in completions() {
            assert!(
                !String::from_utf8_lossy(&text).contains("generate"),
                "{name} offers the hidden subcommand"
            );
        }
    }

    #[test]
    fn bash_case_arms_match_the_loop() {
        let fixed = fix_bash(
            "robot-credmon",
            "cmd=\"robot__credmon__subcmd__get\"\n        robot__subcmd__credmon__subcmd__get)\n",
        );
        assert_eq!(
            fixed,
            "cmd=\"robot__credmon__subcmd__get\"\n        robot__credmon__subcmd__get)\n"
        );
        assert_eq!(fix_bash("plain", "plain__subcmd__x)"), "plain__subcmd__x)");
    }
}
