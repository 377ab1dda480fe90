//! Pure decisions for `get`: which principal, credkey, role, paths and Vault
//! paths a run uses, given its options, environment and uid.

use crate::cli::GetArgs;
use crate::files::discovery;
use crate::vault::auth::{self, Names};
use crate::vault::{ServerAddress, VaultError};
use std::path::PathBuf;
use std::time::Duration;

/// Everything a `get` run needs to know, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Client principal, realm-qualified.
    pub principal: String,
    /// The Vault server.
    pub server: ServerAddress,
    /// Host for the Kerberos service name `host@<this>`.
    pub service_host: String,
    /// Name checked in the server certificate, when not the server host.
    pub certname: Option<String>,
    /// Issuer and role (from the one resolver).
    pub names: Names,
    /// Vault credential key.
    pub credkey: String,
    /// The Kerberos auth mount, `kerberos-<issuer>_<role>`.
    pub mount: String,
    /// The secret path to read the bearer token from (`creds` or `sts`).
    pub secret_path: String,
    /// Query parameters of the bearer read.
    pub query: Vec<(&'static str, String)>,
    /// Where the Vault token is kept.
    pub vault_token_file: PathBuf,
    /// Keep the saved Vault token while it has at least this much left.
    pub vault_token_min_ttl: Duration,
    /// Exchange login tokens longer than this for one of this length.
    pub vault_token_ttl: Duration,
}

/// The bearer token file for these options: `-o`, else WLCG discovery.
pub fn outfile(args: &GetArgs, env: impl Fn(&str) -> Option<String>, uid: u32) -> PathBuf {
    args.outfile
        .clone()
        .unwrap_or_else(|| discovery::bearer_token_file(env, uid))
}

/// The keytab from `-k` or `$KRB5_KTNAME`, without a `FILE:`/`WRFILE:` prefix.
pub fn keytab_path(args: &GetArgs, env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let raw = args
        .keytab
        .clone()
        .filter(|k| !k.is_empty())
        .or_else(|| env("KRB5_KTNAME").filter(|k| !k.is_empty()))?;
    let path = raw
        .strip_prefix("FILE:")
        .or_else(|| raw.strip_prefix("WRFILE:"))
        .unwrap_or(&raw);
    Some(PathBuf::from(path))
}

/// Builds the plan once the principal is known.
pub fn plan(args: &GetArgs, principal: &str, uid: u32) -> Result<Plan, VaultError> {
    let server = ServerAddress::parse(&args.vaultserver)?;
    let service_host = match &args.vaultalias {
        Some(alias) => ServerAddress::host_of(alias)?,
        None => server.host.clone(),
    };
    let bare = principal.split('@').next().unwrap_or(principal);
    let credkey = args.credkey.clone().unwrap_or_else(|| bare.to_owned());
    let names = auth::resolve(auth::Source::Options {
        issuer: &args.issuer,
        role: args.role.as_deref(),
        principal,
    });
    let exchange = args.scopes.is_some() || args.audience.is_some();
    let secret_path = names.secret_path(exchange, &credkey);
    let mut query = vec![("minimum_seconds", args.minsecs.to_string())];
    if let Some(s) = &args.scopes {
        query.push(("scopes", s.clone()));
    }
    if let Some(a) = &args.audience {
        query.push(("audiences", a.clone()));
    }
    Ok(Plan {
        principal: principal.to_owned(),
        certname: args.vaultcertname.clone(),
        server,
        service_host,
        mount: names.mount(),
        names,
        credkey,
        secret_path,
        query,
        vault_token_file: args
            .vaulttokenfile
            .clone()
            .unwrap_or_else(|| discovery::vault_token_file(uid)),
        vault_token_min_ttl: args.vaulttokenminttl,
        vault_token_ttl: args.vaulttokenttl,
    })
}

/// Whether a bearer token file with several hard links may be replaced in
/// its directory (owner `dir_uid`, permission bits `dir_mode`) by user `uid`:
/// only when the directory is the user's own (theirs, and neither group nor
/// others may write in it), so no one else can have made the link. The file
/// itself is never trusted; a rename replaces the name, never the linked
/// file. `Err` says why not.
pub fn may_replace_hard_link(dir_uid: u32, dir_mode: u32, uid: u32) -> Result<(), String> {
    if dir_uid != uid {
        return Err(format!(
            "its directory belongs to uid {dir_uid}, not to uid {uid}"
        ));
    }
    if dir_mode & 0o022 != 0 {
        return Err(format!(
            "its directory is writable by others (mode {:04o})",
            dir_mode & 0o7777
        ));
    }
    Ok(())
}

/// The options igwn-robot-get `--condor` requires in `SEC_CREDENTIAL_GETTOKEN_OPTS`.
pub fn condor_options(credkey: &str, role: &str, vaultserver: &str) -> Vec<String> {
    vec![
        format!("--credkey={credkey}"),
        format!("--role={role}"),
        format!("--vaultserver={vaultserver}"),
    ]
}

/// Python's `shlex.quote`.
pub fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_alphanumeric() || "@%+=:,./-_".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

/// The command a person runs once on a terminal when `get` needs a login:
/// this run's own command line (`argv`) with `--oidc` (and without
/// `--nooidc`), each word quoted for a shell.
pub fn login_command(argv: &[String]) -> String {
    let mut words: Vec<String> = argv
        .iter()
        .filter(|a| *a != "--nooidc")
        .map(|a| shell_quote(a))
        .collect();
    if !argv.iter().any(|a| a == "--oidc") {
        words.push("--oidc".to_owned());
    }
    words.join(" ")
}

/// Python's `repr` of a string (the common cases).
fn py_repr(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// igwn-robot-get's check of the user's HTCondor config: `found` (the
/// `SEC_CREDENTIAL_GETTOKEN_OPTS` value, split into words) must hold exactly
/// the `wanted` options, in any order. The error is igwn-robot-get's message.
pub fn condor_config_check(
    found: Option<&str>,
    found_words: &[String],
    wanted: &[String],
    config: &std::path::Path,
    config_exists: bool,
) -> Result<(), String> {
    use std::collections::BTreeSet;
    let a: BTreeSet<&String> = found_words.iter().collect();
    let b: BTreeSet<&String> = wanted.iter().collect();
    if found.is_some() && a == b {
        return Ok(());
    }
    if !config_exists {
        return Err(format!(
            "No HTCondor user_config file found at {}.\nPlease consider creating one with the following contents:\n\nSEC_CREDENTIAL_GETTOKEN_OPTS = {}\n",
            config.display(),
            wanted.join(" ")
        ));
    }
    Err(format!(
        "HTCondor user_config value for SEC_CREDENTIAL_GETTOKEN_OPTS in {} doesn't match current options: {} vs {}",
        config.display(),
        py_repr(found.unwrap_or("")),
        py_repr(
            &wanted
                .iter()
                .map(|w| shell_quote(w))
                .collect::<Vec<_>>()
                .join(" ")
        )
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::cli::IgwnRobotGet;
    use clap::Parser;

    #[test]
    fn login_command_is_this_command_with_oidc() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            login_command(&v(&[
                "/usr/bin/igwn-robot-get",
                "-k",
                "/k t/robot.keytab",
                "--nooidc",
                "r/h"
            ])),
            "/usr/bin/igwn-robot-get -k '/k t/robot.keytab' r/h --oidc"
        );
        assert_eq!(
            login_command(&v(&["robot-credmon", "get", "--oidc", "-k", "k"])),
            "robot-credmon get --oidc -k k"
        );
    }

    fn args(extra: &[&str]) -> GetArgs {
        let mut v = vec!["igwn-robot-get"];
        v.extend_from_slice(extra);
        IgwnRobotGet::try_parse_from(v).unwrap().args
    }

    #[test]
    fn derives_credkey_role_and_paths() {
        let p = plan(&args(&[]), "robot/host.example@LIGO.ORG", 1000).unwrap();
        assert_eq!(p.credkey, "robot/host.example");
        assert_eq!(p.names.role, "robot");
        assert_eq!(p.mount, "kerberos-igwn_robot");
        assert_eq!(
            p.secret_path,
            "secret/oauth/creds/igwn/robot/host.example:robot"
        );
        assert_eq!(p.query, vec![("minimum_seconds", "3600".to_owned())]);
        assert_eq!(p.server.to_string(), "https://vault.ligo.org:8200");
        assert_eq!(p.service_host, "vault.ligo.org");
        assert_eq!(p.vault_token_file, PathBuf::from("/tmp/vt_u1000"));
    }

    #[test]
    fn explicit_options_win_and_sts_is_used() {
        let a = args(&[
            "-a",
            "node1.example:8300",
            "--vaultalias",
            "vault.example",
            "-i",
            "cilogon",
            "-r",
            "prod",
            "--credkey",
            "ck",
            "--scopes",
            "read:/a,write:/b",
            "--audience",
            "https://x",
            "-m",
            "60",
            "--vaulttokenfile",
            "/v",
        ]);
        let p = plan(&a, "bot@R", 1).unwrap();
        assert_eq!(p.service_host, "vault.example");
        assert_eq!(p.server.to_string(), "https://node1.example:8300");
        assert_eq!(p.secret_path, "secret/oauth/sts/cilogon/ck:prod");
        assert_eq!(p.mount, "kerberos-cilogon_prod");
        assert_eq!(
            p.query,
            vec![
                ("minimum_seconds", "60".to_owned()),
                ("scopes", "read:/a,write:/b".to_owned()),
                ("audiences", "https://x".to_owned())
            ]
        );
        assert_eq!(p.vault_token_file, PathBuf::from("/v"));
    }

    #[test]
    fn keytab_sources() {
        let env = |k: &str| (k == "KRB5_KTNAME").then(|| "FILE:/etc/robot.keytab".to_owned());
        assert_eq!(
            keytab_path(&args(&[]), env),
            Some(PathBuf::from("/etc/robot.keytab"))
        );
        assert_eq!(
            keytab_path(&args(&["-k", "/mine"]), env),
            Some(PathBuf::from("/mine"))
        );
        assert_eq!(keytab_path(&args(&[]), |_| None), None);
        assert_eq!(keytab_path(&args(&[]), |_| Some(String::new())), None);
    }

    #[test]
    fn condor_config_rules() {
        let wanted = condor_options("robot/h.example", "robot", "vault.ligo.org");
        assert_eq!(
            wanted.join(" "),
            "--credkey=robot/h.example --role=robot --vaultserver=vault.ligo.org"
        );
        let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let cfg = std::path::Path::new("/home/r/.condor/user_config");
        let same = "--role=robot --vaultserver=vault.ligo.org --credkey=robot/h.example";
        assert_eq!(
            condor_config_check(Some(same), &words(same), &wanted, cfg, true),
            Ok(())
        );
        let other = "-a vault.ligo.org";
        assert_eq!(
            condor_config_check(Some(other), &words(other), &wanted, cfg, true),
            Err("HTCondor user_config value for SEC_CREDENTIAL_GETTOKEN_OPTS in /home/r/.condor/user_config doesn't match current options: '-a vault.ligo.org' vs '--credkey=robot/h.example --role=robot --vaultserver=vault.ligo.org'".to_owned())
        );
        assert_eq!(
            condor_config_check(None, &[], &wanted, cfg, false),
            Err("No HTCondor user_config file found at /home/r/.condor/user_config.\nPlease consider creating one with the following contents:\n\nSEC_CREDENTIAL_GETTOKEN_OPTS = --credkey=robot/h.example --role=robot --vaultserver=vault.ligo.org\n".to_owned())
        );
        assert!(
            condor_config_check(None, &[], &wanted, cfg, true)
                .unwrap_err()
                .contains("'' vs")
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("https://v:8200/x"), "https://v:8200/x");
    }

    #[test]
    fn hard_links_are_replaced_only_in_the_users_own_directory() {
        // (directory owner, directory mode, replace?)
        for (owner, mode, ok) in [
            (1000, 0o700, true),
            (1000, 0o755, true),
            (1000, 0o2750, true),
            (1000, 0o770, false),
            (1000, 0o777, false),
            (0, 0o1777, false),
            (0, 0o700, false),
        ] {
            assert_eq!(
                may_replace_hard_link(owner, mode, 1000).is_ok(),
                ok,
                "{owner} {mode:o}"
            );
        }
        assert_eq!(
            may_replace_hard_link(0, 0o1777, 1000).unwrap_err(),
            "its directory belongs to uid 0, not to uid 1000"
        );
        assert_eq!(
            may_replace_hard_link(1000, 0o1777, 1000).unwrap_err(),
            "its directory is writable by others (mode 1777)"
        );
    }

    #[test]
    fn outfile_rules() {
        assert_eq!(
            outfile(&args(&["-o", "/x"]), |_| None, 5),
            PathBuf::from("/x")
        );
        assert_eq!(
            outfile(&args(&[]), |_| None, 5),
            PathBuf::from("/tmp/bt_u5")
        );
    }
}
