//! htgettoken's options (`SEC_CREDENTIAL_GETTOKEN_OPTS`, `$HTGETTOKENOPTS`,
//! a request's `&options=`), parsed by clap with htgettoken's spellings and
//! optparse's rules: long options may be shortened to a unique prefix, a
//! value may follow `=` or come as the next word (even one starting with
//! `-`), short options take their value attached (`-rprod`), and a later
//! option wins. Errors are worded as htgettoken's (optparse's), which is what
//! condor_submit users see. htgettoken options we do not carry out are
//! refused by name; the ones that only concern htgettoken's own files and
//! output are accepted and ignored.

use crate::duration::{MAX_SECONDS, parse_ttl};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{ArgAction, Parser};
use std::path::PathBuf;
use std::time::Duration;

/// The htgettoken options the storer carries out, with htgettoken's
/// defaults where it has them (`None`: the caller decides), and the ones it
/// accepts (ignored) or refuses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Parser)]
#[command(
    name = "htgettoken",
    no_binary_name = true,
    disable_help_flag = true,
    disable_version_flag = true,
    args_override_self = true,
    infer_long_args = true
)]
pub struct HtOpts {
    /// `-a/--vaultserver`.
    #[arg(
        short = 'a',
        long,
        allow_hyphen_values = true,
        value_name = "HostOrURL"
    )]
    pub vaultserver: Option<String>,
    /// `-i/--issuer` (default `default`).
    #[arg(
        short = 'i',
        long,
        allow_hyphen_values = true,
        value_name = "issuername"
    )]
    pub issuer: Option<String>,
    /// `-r/--role` (default `default`).
    #[arg(short = 'r', long, allow_hyphen_values = true, value_name = "rolename")]
    pub role: Option<String>,
    /// `--credkey`.
    #[arg(long, allow_hyphen_values = true, value_name = "key")]
    pub credkey: Option<String>,
    /// `--vaulttokenttl`.
    #[arg(long, allow_hyphen_values = true, value_name = "time", value_parser = ttl)]
    pub vaulttokenttl: Option<Duration>,
    /// `--vaulttokenminttl`.
    #[arg(long, allow_hyphen_values = true, value_name = "time", value_parser = ttl)]
    pub vaulttokenminttl: Option<Duration>,
    /// `--minsecs`.
    #[arg(long, allow_hyphen_values = true, value_name = "seconds",
          value_parser = clap::value_parser!(u64).range(..=MAX_SECONDS))]
    pub minsecs: Option<u64>,
    /// `--cafile`.
    #[arg(long, allow_hyphen_values = true, value_name = "file")]
    pub cafile: Option<PathBuf>,
    /// `--capath`.
    #[arg(long, allow_hyphen_values = true, value_name = "path")]
    pub capath: Option<PathBuf>,
    /// `--vaultalias`.
    #[arg(long, allow_hyphen_values = true, value_name = "HostOrURL")]
    pub vaultalias: Option<String>,
    /// `--vaultcertname`.
    #[arg(long, allow_hyphen_values = true, value_name = "Host")]
    pub vaultcertname: Option<String>,
    /// `--scopes`.
    #[arg(long, allow_hyphen_values = true, value_name = "scopes")]
    pub scopes: Option<String>,
    /// `--audience`.
    #[arg(long, allow_hyphen_values = true, value_name = "audience")]
    pub audience: Option<String>,
    /// `--web-open-command`.
    #[arg(long, allow_hyphen_values = true, value_name = "command")]
    pub web_open_command: Option<String>,
    /// `--nooidc` (also set by `--novaulttoken`).
    #[arg(long)]
    pub nooidc: bool,
    /// `--nokerberos` (also set by `--novaulttoken`).
    #[arg(long)]
    pub nokerberos: bool,
    /// `--novaulttoken` (htgettoken 2.5): `--nooidc --nokerberos --nossh`.
    #[arg(long)]
    pub novaulttoken: bool,
    /// Accepted and ignored: htgettoken's own output and files.
    #[command(flatten)]
    pub ignored: Ignored,
    /// htgettoken options robot-credmon does not carry out (refused by name).
    #[command(flatten)]
    pub unsupported: Unsupported,
}

/// htgettoken options that only concern htgettoken's own output and files
/// (the storer decides its own): accepted, ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct Ignored {
    #[arg(short = 'v', long, action = ArgAction::SetTrue)]
    verbose: bool,
    #[arg(short = 'd', long, action = ArgAction::SetTrue)]
    debug: bool,
    #[arg(short = 'q', long, action = ArgAction::SetTrue)]
    quiet: bool,
    #[arg(long, action = ArgAction::SetTrue)]
    nossh: bool,
    #[arg(long, action = ArgAction::SetTrue)]
    showbearerurl: bool,
    #[arg(short = 'o', long, allow_hyphen_values = true)]
    outfile: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    vaulttokenfile: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    vaulttokeninfile: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    kerbprincipal: Option<String>,
}

/// htgettoken options that change what htgettoken does in ways the storer
/// does not: refused with their name.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct Unsupported {
    #[arg(short = 's', long, allow_hyphen_values = true)]
    optserver: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    kerbpath: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    oidcpath: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    sshpath: Option<String>,
    #[arg(short = 'c', long, allow_hyphen_values = true)]
    configdir: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    secretpath: Option<String>,
    #[arg(long, action = ArgAction::SetTrue)]
    registerssh: bool,
    #[arg(long, action = ArgAction::SetTrue)]
    nobearertoken: bool,
}

impl Unsupported {
    /// The first option given, as htgettoken spells it.
    fn given(&self) -> Option<&'static str> {
        [
            (self.optserver.is_some(), "--optserver"),
            (self.kerbpath.is_some(), "--kerbpath"),
            (self.oidcpath.is_some(), "--oidcpath"),
            (self.sshpath.is_some(), "--sshpath"),
            (self.configdir.is_some(), "--configdir"),
            (self.secretpath.is_some(), "--secretpath"),
            (self.registerssh, "--registerssh"),
            (self.nobearertoken, "--nobearertoken"),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then_some(name))
    }
}

/// What the storer carries out, for the message refusing an option.
const UNDERSTOOD: &str = "-a/--vaultserver -i/--issuer -r/--role --credkey --vaulttokenttl --vaulttokenminttl --minsecs --cafile --capath --vaultalias --vaultcertname --scopes --audience --web-open-command --nooidc --nokerberos --novaulttoken, and ignores -v -d -q --nossh --showbearerurl -o/--outfile --vaulttokenfile --vaulttokeninfile --kerbprincipal";

fn ttl(s: &str) -> Result<Duration, String> {
    parse_ttl(s)
}

/// Parses htgettoken options (words already split; later ones win).
/// `source` names where they came from, for the error message.
pub fn parse(words: &[String], source: &str) -> Result<HtOpts, String> {
    let mut o = HtOpts::try_parse_from(words).map_err(|e| message(&e, source))?;
    if let Some(name) = o.unsupported.given() {
        return Err(format!(
            "unsupported htgettoken option '{name}' in {source} (robot-credmon understands {UNDERSTOOD})"
        ));
    }
    if o.novaulttoken {
        o.nooidc = true;
        o.nokerberos = true;
    }
    Ok(o)
}

/// A clap error in htgettoken's (optparse's) words.
fn message(e: &clap::Error, source: &str) -> String {
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.join(", "),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    // "--vaultserver <HostOrURL>": the option as it is spelled.
    let option = || {
        let arg = context(ContextKind::InvalidArg);
        arg.split([' ', '=']).next().unwrap_or_default().to_owned()
    };
    let why = match e.kind() {
        ErrorKind::UnknownArgument => {
            let word = context(ContextKind::InvalidArg);
            if word.starts_with('-') {
                format!(
                    "no such option: {}",
                    word.split('=').next().unwrap_or(&word)
                )
            } else {
                "no non-option arguments expected".to_owned()
            }
        }
        ErrorKind::InvalidValue if context(ContextKind::InvalidValue).is_empty() => {
            format!("{} option requires an argument", option())
        }
        ErrorKind::TooManyValues => {
            format!("{} option does not take a value", option())
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => format!(
            "option {}: invalid value: '{}'{}",
            option(),
            context(ContextKind::InvalidValue),
            std::error::Error::source(e)
                .map(|s| format!(" ({s})"))
                .unwrap_or_default()
        ),
        _ => e.kind().to_string(),
    };
    format!("htgettoken option error in {source}: {why}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn w(s: &str) -> Vec<String> {
        crate::condor::config::words(s).unwrap()
    }

    #[test]
    fn htgettoken_spellings() {
        let o = parse(
            &w("-a vault.example:8200 --credkey=robot/h.example -r robot -i igwn --vaulttokenttl 28d --nooidc -q --minsecs=60 -rprod"),
            "X",
        )
        .unwrap();
        assert_eq!(o.vaultserver.as_deref(), Some("vault.example:8200"));
        assert_eq!(o.credkey.as_deref(), Some("robot/h.example"));
        assert_eq!(o.role.as_deref(), Some("prod"), "the later -r wins");
        assert_eq!(o.issuer.as_deref(), Some("igwn"));
        assert_eq!(o.vaulttokenttl, Some(Duration::from_secs(28 * 86400)));
        assert_eq!(o.minsecs, Some(60));
        assert!(o.nooidc && !o.nokerberos);
        let o = parse(&w("--novaulttoken -vq --nossh -o /x --showbearerurl"), "X").unwrap();
        assert!(o.nooidc && o.nokerberos);
        // optparse: unique prefixes of long options, values that start with '-'.
        let o = parse(
            &w("--vaultserv v --cred -odd --web-open-command=firefox"),
            "X",
        )
        .unwrap();
        assert_eq!(o.vaultserver.as_deref(), Some("v"));
        assert_eq!(o.credkey.as_deref(), Some("-odd"));
        assert_eq!(o.web_open_command.as_deref(), Some("firefox"));
    }

    #[test]
    fn htgettoken_errors() {
        for (opts, want) in [
            (
                "-s optserver",
                "unsupported htgettoken option '--optserver' in SRC (robot-credmon understands -a/--vaultserver",
            ),
            (
                "--nobearertoken",
                "unsupported htgettoken option '--nobearertoken' in SRC",
            ),
            ("-x", "htgettoken option error in SRC: no such option: -x"),
            (
                "--colour=red",
                "htgettoken option error in SRC: no such option: --colour",
            ),
            (
                "-a",
                "htgettoken option error in SRC: --vaultserver option requires an argument",
            ),
            (
                "stray",
                "htgettoken option error in SRC: no non-option arguments expected",
            ),
            (
                "--minsecs abc",
                "htgettoken option error in SRC: option --minsecs: invalid value: 'abc'",
            ),
            (
                "--nooidc=yes",
                "htgettoken option error in SRC: --nooidc option does not take a value",
            ),
        ] {
            let e = parse(&w(opts), "SRC").unwrap_err();
            assert!(e.starts_with(want), "{opts}: {e}");
        }
        // Lifetimes are range-checked where they are parsed.
        for opts in [
            "--vaulttokenttl 100000d",
            "--vaulttokenminttl=99999999999999999",
            "--minsecs 18446744073709551615",
        ] {
            let e = parse(&w(opts), "X").unwrap_err();
            assert!(
                e.starts_with("htgettoken option error in X: option --"),
                "{opts}: {e}"
            );
        }
    }
}
