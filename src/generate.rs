//! `robot-credmon generate`: man pages and shell completions from the clap
//! definitions, so they cannot drift from the code. The checked-in copies in
//! `dist/man/` and `dist/completions/` are made with
//! `robot-credmon generate all dist`, and a test compares them byte for byte.

use crate::cli::{Cli, IgwnRobotGet};
use crate::files::{FileError, SafeDir, WriteOptions};
use clap::CommandFactory;
use clap_complete::Shell;
use std::path::{Path, PathBuf};

/// What `generate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum What {
    /// Man pages (section 1) into OUT_DIR.
    Man,
    /// bash, zsh and fish completions into OUT_DIR.
    Completions,
    /// Both, into OUT_DIR/man and OUT_DIR/completions.
    All,
}

/// Options of the (hidden) `robot-credmon generate`.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// What to generate.
    #[arg(value_enum)]
    pub what: What,
    /// Directory to write into (created if missing).
    pub out_dir: PathBuf,
}

/// The program names with their own command line.
fn programs() -> Vec<clap::Command> {
    vec![Cli::command(), IgwnRobotGet::command()]
}

/// Every man page: `(file name, contents)`, e.g. `robot-credmon-get.1`.
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>, std::io::Error> {
    fn walk(cmd: clap::Command, out: &mut Vec<(String, Vec<u8>)>) -> Result<(), std::io::Error> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            walk(sub, out)?;
        }
        let man = clap_mangen::Man::new(cmd);
        let mut buf = Vec::new();
        man.render(&mut buf)?;
        out.push((man.get_filename(), buf));
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

    #[test]
    fn one_page_per_subcommand_and_no_hidden_ones() {
        let names: Vec<String> = man_pages().unwrap().into_iter().map(|(n, _)| n).collect();
        for want in [
            "robot-credmon.1",
            "robot-credmon-get.1",
            "robot-credmon-token.1",
            "robot-credmon-credmon.1",
            "robot-credmon-check.1",
            "igwn-robot-get.1",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }
        assert!(!names.iter().any(|n| n.contains("generate")), "{names:?}");
        let comps: Vec<String> = completions().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            comps,
            [
                "_igwn-robot-get",
                "_robot-credmon",
                "igwn-robot-get.bash",
                "igwn-robot-get.fish",
                "robot-credmon.bash",
                "robot-credmon.fish"
            ]
        );
    }
}
