//! The one HTCondor configuration reader, for the credmon, the storer and
//! `get --condor`: `condor_config_val -dump` once when HTCondor is installed
//! (its values as written, the user's `user_config` included), the knobs a
//! role reads expanded one by one when they hold macros (`$(LOG)/x`), and the
//! `_CONDOR_<KNOB>` variables over it all. The credmon's typed knob table
//! (`credmon::config::knobs`) reads through it; the storer's and `get`'s
//! few knobs are plain values ([`Knobs`], [`value`]).

use crate::env::Env;
use crate::process::Tool;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Duration;

/// Raw knobs, keyed by upper-case name (HTCondor knob names ignore case).
pub type Knobs = BTreeMap<String, String>;

/// How long `condor_config_val` may take.
const CONFIG_VAL_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest `condor_config_val -dump` we read.
const MAX_DUMP_BYTES: u64 = 16 << 20;

/// Reads the configuration of `env` (its `$PATH` and `_CONDOR_*` variables),
/// expanding the macros of the knobs `expand` says are read.
pub fn read(env: &Env, expand: impl Fn(&str) -> bool) -> Knobs {
    load(env.vars(), env.path_var(), expand)
}

/// Reads the knobs: `condor_config_val -dump` when it is installed (on
/// `path_var`), each knob `expand` accepts and whose value holds a macro
/// asked for again (expanded), then the `_CONDOR_<KNOB>` variables of `env`
/// over it. An installed `condor_config_val` that fails is logged (debug).
pub fn load<'e>(
    env: impl IntoIterator<Item = (&'e str, &'e str)>,
    path_var: Option<OsString>,
    expand: impl Fn(&str) -> bool,
) -> Knobs {
    let (knobs, failed) = load_reporting(env, path_var, expand);
    if let Some(e) = failed {
        log::debug!("{e}");
    }
    knobs
}

/// Like [`load`], and why an installed `condor_config_val -dump` failed
/// (`None`: it worked, or HTCondor is not installed).
pub fn load_reporting<'e>(
    env: impl IntoIterator<Item = (&'e str, &'e str)>,
    path_var: Option<OsString>,
    expand: impl Fn(&str) -> bool,
) -> (Knobs, Option<String>) {
    let mut knobs = Knobs::new();
    let mut failed = None;
    match config_val(&["-dump"], &path_var) {
        Ok(dump) => {
            knobs = parse_dump(&dump);
            // -dump shows macros unexpanded; ask for the knobs we use one by one.
            let wanted: Vec<String> = knobs
                .iter()
                .filter(|(k, v)| v.contains("$(") && expand(k))
                .map(|(k, _)| k.clone())
                .collect();
            for k in wanted {
                if let Ok(v) = config_val(&[k.as_str()], &path_var) {
                    knobs.insert(k, v.trim().to_owned());
                }
            }
        }
        Err(why) => failed = why,
    }
    knobs.extend(env_knobs(env));
    (knobs, failed)
}

/// `condor_config_val args`: its output; `Err(None)` when it is not
/// installed, `Err(Some(why))` when it failed.
fn config_val(args: &[&str], path_var: &Option<OsString>) -> Result<String, Option<String>> {
    let mut tool = Tool::new(
        "condor_config_val",
        args.iter().copied(),
        CONFIG_VAL_TIMEOUT,
        path_var.clone(),
    );
    tool.max_output = MAX_DUMP_BYTES;
    match tool.run() {
        Ok(f) if f.success() => Ok(f.stdout),
        Ok(f) => Err(Some(format!(
            "condor_config_val {} failed: {}",
            args.join(" "),
            f.stderr.lines().next().unwrap_or_default()
        ))),
        Err(e @ crate::process::RunError::NotFound(_)) => {
            log::debug!("{e}");
            Err(None)
        }
        Err(e) => Err(Some(e.to_string())),
    }
}

/// A knob's trimmed value; `None` when unset or empty ("empty means unset").
pub fn value<'a>(knobs: &'a Knobs, name: &str) -> Option<&'a str> {
    knobs
        .get(&name.to_ascii_uppercase())
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

/// The `_CONDOR_<KNOB>` (or `_condor_<KNOB>`) variables, upper-cased.
pub fn env_knobs<'e>(env: impl IntoIterator<Item = (&'e str, &'e str)>) -> Knobs {
    env.into_iter()
        .filter_map(|(k, v)| {
            let rest = k
                .strip_prefix("_CONDOR_")
                .or_else(|| k.strip_prefix("_condor_"))?;
            (!rest.is_empty()).then(|| (rest.to_ascii_uppercase(), v.to_owned()))
        })
        .collect()
}

/// Parses `condor_config_val -dump` output: `NAME = value` lines, `#` comments.
pub fn parse_dump(text: &str) -> Knobs {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let k = k.trim();
            (!k.is_empty() && !k.contains(char::is_whitespace))
                .then(|| (k.to_ascii_uppercase(), v.trim().to_owned()))
        })
        .collect()
}

/// Splits an option value into words as a POSIX shell does (quotes and
/// backslashes group, `#` at the start of a word begins a comment), with the
/// `shlex` crate; an open quote or a trailing backslash is an error.
pub fn words(text: &str) -> Result<Vec<String>, String> {
    shlex::split(text)
        .ok_or_else(|| format!("unbalanced quotes or a trailing backslash in '{text}'"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn env_and_dump_parsing() {
        let env = [
            ("_CONDOR_SEC_CREDENTIAL_DIRECTORY_OAUTH", "/a"),
            ("_condor_trusted_vault_hosts", "h"),
            ("PATH", "/bin"),
        ];
        let k = env_knobs(env);
        assert_eq!(k.len(), 2);
        assert_eq!(k["TRUSTED_VAULT_HOSTS"], "h");
        let d = parse_dump("# from /etc/condor\nLOG = /var/log/condor\nfoo=bar baz\nE = \n\n");
        assert_eq!(d["LOG"], "/var/log/condor");
        assert_eq!(d["FOO"], "bar baz");
        assert_eq!(value(&d, "foo"), Some("bar baz"));
        assert_eq!(value(&d, "E"), None, "empty means unset");
        assert_eq!(value(&d, "MISSING"), None);
    }

    #[test]
    fn load_expands_wanted_macros_and_env_wins() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("condor_config_val");
        std::fs::write(
            &tool,
            "#!/bin/sh\ncase \"$1\" in\n\
             -dump) printf 'LOG = /var/log/condor\\nSEC_CREDENTIAL_MONITOR_OAUTH_LOG = $(LOG)/CredMonOAuthLog\\nOTHER = $(LOG)/x\\nTRUSTED_VAULT_HOSTS = a\\n' ;;\n\
             SEC_CREDENTIAL_MONITOR_OAUTH_LOG) echo /var/log/condor/CredMonOAuthLog ;;\n\
             *) exit 1 ;;\nesac\n",
        )
        .unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let env = [("_CONDOR_TRUSTED_VAULT_HOSTS", "b"), ("HOME", "/h")];
        let ours = |k: &str| k == "SEC_CREDENTIAL_MONITOR_OAUTH_LOG";
        let k = load(env, Some(dir.path().into()), ours);
        assert_eq!(
            k["SEC_CREDENTIAL_MONITOR_OAUTH_LOG"],
            "/var/log/condor/CredMonOAuthLog"
        );
        assert_eq!(k["OTHER"], "$(LOG)/x", "only wanted knobs are expanded");
        assert_eq!(k["TRUSTED_VAULT_HOSTS"], "b");
        // Without HTCondor: only the environment.
        let empty = tempfile::tempdir().unwrap();
        let k = load(env, Some(empty.path().into()), ours);
        assert!(!k.contains_key("OTHER"));
        assert_eq!(k["TRUSTED_VAULT_HOSTS"], "b");
    }

    #[test]
    fn words_like_a_shell() {
        for (text, want) in [
            ("-a v  --credkey=x", vec!["-a", "v", "--credkey=x"]),
            ("'a b' \"c d\" e\\ f", vec!["a b", "c d", "e f"]),
            ("-a v # comment -r x", vec!["-a", "v"]),
            ("-a v\n# a comment line\n-r x", vec!["-a", "v", "-r", "x"]),
            ("a#b", vec!["a#b"]),
            ("\"a\\$b\" \"a\\xb\"", vec!["a$b", "a\\xb"]),
            ("", vec![]),
        ] {
            assert_eq!(words(text).unwrap(), want, "{text}");
        }
        for bad in ["'open", "\"open", "trailing\\"] {
            assert!(words(bad).is_err(), "{bad}");
        }
    }
}
