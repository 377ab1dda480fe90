//! The package definitions agree with each other and with the layout
//! `dist/install.sh` stages: every staged file belongs to exactly one
//! package in `debian/*.install` and in the RPM spec's `%files`, the plain
//! `robot-credmon` package carries no HTCondor configuration, and the `/etc`
//! entry points of `robot-credmon-condor` include files that exist. (Building
//! and linting the real packages is `dist/check-package.sh --all`.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Stages the packages' layout into a temporary root; returns it and the files in it.
fn staged(env: &[(&str, &str)]) -> (tempfile::TempDir, BTreeSet<String>) {
    let t = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let st = Command::new(repo().join("dist/install.sh"))
        .arg(t.path())
        .arg(env!("CARGO_BIN_EXE_robot-credmon"))
        .envs(env.iter().copied())
        .status()
        .unwrap_or_else(|e| panic!("cannot run dist/install.sh (needs bash): {e}"));
    assert!(st.success(), "dist/install.sh failed");
    let mut files = BTreeSet::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read_dir: {e}")) {
            let p = e.unwrap_or_else(|e| panic!("entry: {e}")).path();
            if p.is_dir() && !p.is_symlink() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap_or(&p).display().to_string());
            }
        }
    }
    walk(t.path(), t.path(), &mut files);
    (t, files)
}

/// A shell-style pattern (`*` within one path component) matches `path` or a directory above it.
fn matches(pattern: &str, path: &str) -> bool {
    fn glob(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                glob(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && glob(p, &s[1..]))
            }
            (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let pattern = pattern.trim_start_matches('/');
    // A pattern naming a directory takes everything below it (as dh_install and %files do).
    let mut prefixes: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
    prefixes.push(path);
    prefixes
        .iter()
        .any(|p| glob(pattern.as_bytes(), p.as_bytes()))
}

fn owners<'a>(packages: &'a [(String, Vec<String>)], path: &str) -> Vec<&'a str> {
    packages
        .iter()
        .filter(|(_, pats)| pats.iter().any(|p| matches(p, path)))
        .map(|(n, _)| n.as_str())
        .collect()
}

#[test]
fn debian_install_files_split_the_layout() {
    let (_t, files) = staged(&[("UNITDIR", "/lib/systemd/system")]);
    let packages: Vec<(String, Vec<String>)> = ["robot-credmon", "robot-credmon-condor"]
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(repo().join(format!("debian/{p}.install")))
                .unwrap_or_else(|e| panic!("debian/{p}.install: {e}"));
            (p.to_string(), text.lines().map(str::to_owned).collect())
        })
        .collect();
    for f in &files {
        let o = owners(&packages, f);
        assert_eq!(o.len(), 1, "{f} belongs to {o:?} in debian/*.install");
        if o[0] == "robot-credmon" {
            assert!(
                !f.starts_with("etc/condor") && !f.starts_with("usr/share/robot-credmon/"),
                "robot-credmon must not carry HTCondor configuration: {f}"
            );
        }
    }
}

#[test]
fn rpm_files_sections_split_the_layout() {
    let (_t, files) = staged(&[("ZSHDIR", "/usr/share/zsh/site-functions")]);
    let spec = std::fs::read_to_string(repo().join("dist/robot-credmon.spec"))
        .unwrap_or_else(|e| panic!("spec: {e}"));
    let expand = |s: &str| {
        s.replace("%{_bindir}", "/usr/bin")
            .replace("%{_mandir}", "/usr/share/man")
            .replace("%{_datadir}", "/usr/share")
            .replace("%{_unitdir}", "/usr/lib/systemd/system")
            .replace("%{_sysconfdir}", "/etc")
            .replace("%{_docdir}", "/usr/share/doc")
            .replace("%{name}", "robot-credmon")
    };
    // %files sections: `%files` and `%files condor`; any other `%word` line ends one.
    let mut packages: Vec<(String, Vec<String>)> = Vec::new();
    let mut current: Option<usize> = None;
    for line in spec.lines().map(str::trim) {
        let directive =
            line.starts_with('%') && line[1..].starts_with(|c: char| c.is_ascii_alphabetic());
        let attribute = ["%config", "%doc", "%dir", "%license", "%ghost", "%attr"]
            .iter()
            .any(|p| line.starts_with(p));
        if let Some(rest) = line.strip_prefix("%files") {
            let name = match rest.trim() {
                "" => "robot-credmon".to_owned(),
                sub => format!("robot-credmon-{sub}"),
            };
            packages.push((name, Vec::new()));
            current = Some(packages.len() - 1);
        } else if directive && !attribute {
            current = None;
        } else if let Some(i) = current
            && !line.is_empty()
            && !line.starts_with("%dir")
            && !line.starts_with("%license")
        {
            let p = line
                .trim_start_matches("%config(noreplace) ")
                .trim_start_matches("%doc ");
            packages[i].1.push(expand(p));
        }
    }
    assert_eq!(packages.len(), 2, "{packages:?}");
    for f in files
        .iter()
        .filter(|f| !f.ends_with("THIRD-PARTY-LICENSES"))
    {
        let o = owners(&packages, f);
        assert_eq!(o.len(), 1, "{f} belongs to {o:?} in the spec's %files");
        if o[0] == "robot-credmon" {
            assert!(
                !f.starts_with("etc/condor"),
                "robot-credmon must not carry HTCondor configuration: {f}"
            );
        }
    }
}

#[test]
fn condor_entry_points_include_shipped_files() {
    for entry in ["50-robot-credmon.conf", "60-robot-credmon-submit.conf"] {
        let text = std::fs::read_to_string(repo().join("dist/condor-etc").join(entry))
            .unwrap_or_else(|e| panic!("dist/condor-etc/{entry}: {e}"));
        let includes: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("include ifexist : /usr/share/robot-credmon/condor/"))
            .collect();
        assert_eq!(
            includes,
            [entry],
            "{entry} must include only its own knobs file"
        );
        assert!(repo().join("condor-config").join(entry).is_file());
        // Nothing but the include and comments: a removed package leaves no knob.
        assert!(
            text.lines().all(|l| l.trim().is_empty()
                || l.starts_with('#')
                || l.starts_with("include ifexist : ")),
            "{entry} sets knobs itself"
        );
    }
}
