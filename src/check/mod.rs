//! `robot-credmon check`: monitoring checks in Nagios/Icinga plugin form.
//!
//! `check [FILE]` looks at one bearer token file; `check --credmon [CRED_DIR]`
//! looks at a running credmon and every Vault credential it keeps. Both print
//! one plugin line with performance data and exit 0 OK, 1 WARNING,
//! 2 CRITICAL or 3 UNKNOWN. The token itself is never printed.
//!
//! Reading the files ([`observe_token`], [`credmon::observe`]) is kept apart
//! from judging them ([`evaluate_token`], [`credmon::evaluate`]), which are
//! plain functions of what was seen, the thresholds and the current time.

pub mod credmon;

use crate::files::discovery;
use crate::inspect;
use crate::token::{self, Claims};
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

/// Default HTCondor credential directory (`SEC_CREDENTIAL_DIRECTORY_OAUTH` of `use feature : OAUTH`).
pub const DEFAULT_CRED_DIR: &str = "/var/lib/condor/oauth_credentials";

/// Options of `robot-credmon check`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    about = "Monitoring check (Nagios/Icinga plugin) for a token file or a credmon",
    after_help = "Exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. The token is never printed."
)]
pub struct CheckArgs {
    /// Token file [default: the WLCG discovery rules]; with --credmon, the credential directory [default: /var/lib/condor/oauth_credentials].
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,

    /// Check a credmon: pid alive, CREDMON_COMPLETE recent, every Vault credential's .use fresh.
    #[arg(long)]
    pub credmon: bool,

    /// WARNING when a token has this little left or less (seconds, or e.g. 1h, 90m).
    #[arg(short = 'w', long, default_value = "1h", value_parser = crate::cli::parse_duration, value_name = "DURATION")]
    pub warning: Duration,

    /// CRITICAL when a token has this little left or less (seconds, or e.g. 30m).
    #[arg(short = 'c', long, default_value = "30m", value_parser = crate::cli::parse_duration, value_name = "DURATION")]
    pub critical: Duration,

    /// With --credmon: CRITICAL when CREDMON_COMPLETE is older than this (the credmon passes every 60 s).
    #[arg(long, default_value = "10m", value_parser = crate::cli::parse_duration, value_name = "DURATION")]
    pub max_age: Duration,
}

/// A plugin state; the discriminant is the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// Exit 0.
    Ok = 0,
    /// Exit 1.
    Warning = 1,
    /// Exit 2.
    Critical = 2,
    /// Exit 3: the check could not tell.
    Unknown = 3,
}

impl State {
    /// The plugin exit code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// How bad the state is when several are combined: CRITICAL > WARNING > UNKNOWN > OK.
    fn rank(self) -> u8 {
        match self {
            State::Ok => 0,
            State::Unknown => 1,
            State::Warning => 2,
            State::Critical => 3,
        }
    }

    /// The worse of two states.
    pub fn worst(self, other: State) -> State {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        })
    }
}

/// Remaining-lifetime thresholds, in seconds: at or below `warning` warns, at or below `critical` is critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// WARNING at or below this many seconds left.
    pub warning: i64,
    /// CRITICAL at or below this many seconds left.
    pub critical: i64,
}

impl Thresholds {
    /// From the command-line durations; refuses a critical threshold above the warning one.
    pub fn new(warning: Duration, critical: Duration) -> Result<Self, String> {
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let t = Thresholds {
            warning: secs(warning),
            critical: secs(critical),
        };
        if t.critical > t.warning {
            return Err(format!(
                "the critical threshold ({}s) is above the warning threshold ({}s)",
                t.critical, t.warning
            ));
        }
        Ok(t)
    }

    /// The state for `remaining` seconds left.
    pub fn classify(&self, remaining: i64) -> State {
        if remaining <= 0 || remaining <= self.critical {
            State::Critical
        } else if remaining <= self.warning {
            State::Warning
        } else {
            State::Ok
        }
    }

    /// `remaining=<n>s;<warning>;<critical>`.
    pub fn perf(&self, label: &str, remaining: i64) -> String {
        format!("{label}={remaining}s;{};{}", self.warning, self.critical)
    }
}

/// The result of a check: one state and one output line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The plugin state.
    pub state: State,
    /// Human-readable summary after `STATE - `.
    pub summary: String,
    /// Performance data after `|`, empty for none.
    pub perf: String,
}

impl Verdict {
    /// An UNKNOWN verdict with a reason.
    pub fn unknown(why: impl Into<String>) -> Self {
        Verdict {
            state: State::Unknown,
            summary: why.into(),
            perf: String::new(),
        }
    }

    /// The plugin output line, without a newline.
    pub fn line(&self) -> String {
        let summary = one_line(&self.summary);
        if self.perf.is_empty() {
            format!("{} - {summary}", self.state)
        } else {
            format!("{} - {summary} | {}", self.state, self.perf)
        }
    }
}

/// Makes text safe for the plugin line: no line breaks, no `|` (the perfdata separator).
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c == '|' || c.is_control() { ' ' } else { c })
        .collect()
}

/// A claim value fit for the output: printable, short, no `|`.
fn shown(s: &str) -> String {
    let mut out: String = one_line(s).chars().take(80).collect();
    if s.chars().count() > 80 {
        out.push_str("...");
    }
    out
}

/// The host part of an issuer URL (`https://cilogon.org/igwn` -> `cilogon.org`).
pub fn issuer_host(iss: &str) -> String {
    url::Url::parse(iss)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| iss.to_owned())
}

/// Who a token is for: `<sub>@<iss host>`, or whichever of the two exists.
pub fn token_identity(claims: &Claims) -> String {
    match (claims.sub.as_deref(), claims.iss.as_deref()) {
        (Some(sub), Some(iss)) => format!("token for {}@{}", shown(sub), shown(&issuer_host(iss))),
        (Some(sub), None) => format!("token for {}", shown(sub)),
        (None, Some(iss)) => format!("token from {}", shown(&issuer_host(iss))),
        (None, None) => "token".to_owned(),
    }
}

/// `expires in 2h13m` or `expired 5m00s ago`.
pub fn expiry_phrase(remaining: i64) -> String {
    if remaining > 0 {
        format!("expires in {}", token::format_remaining(remaining))
    } else {
        format!("expired {} ago", token::format_remaining(-remaining))
    }
}

/// What reading the token file gave.
#[derive(Debug)]
pub enum TokenObservation {
    /// The file holds a token with these claims.
    Token(Claims),
    /// The file could not be read or is not a token; the message names the path.
    Unusable(String),
}

/// Judges a token file: a plain function of the claims, the time and the thresholds.
pub fn evaluate_token(seen: &TokenObservation, now: SystemTime, th: Thresholds) -> Verdict {
    let claims = match seen {
        TokenObservation::Token(c) => c,
        TokenObservation::Unusable(why) => return Verdict::unknown(why.clone()),
    };
    let who = token_identity(claims);
    let Some(exp) = claims.exp else {
        return Verdict::unknown(format!("{who} has no exp claim"));
    };
    let remaining = exp - token::unix_seconds(now);
    Verdict {
        state: th.classify(remaining),
        summary: format!("{who} {}", expiry_phrase(remaining)),
        perf: th.perf("remaining", remaining),
    }
}

/// Reads a token file safely (no link is followed) and keeps only its claims.
pub fn observe_token(path: &std::path::Path) -> TokenObservation {
    match inspect::load(path) {
        Ok(tok) => TokenObservation::Token(tok.claims().clone()),
        Err(e) => TokenObservation::Unusable(e.to_string()),
    }
}

/// Runs the check named by `args` at `now`.
pub fn run(args: &CheckArgs, now: SystemTime) -> Verdict {
    let th = match Thresholds::new(args.warning, args.critical) {
        Ok(t) => t,
        Err(why) => return Verdict::unknown(why),
    };
    if args.credmon {
        let dir = args
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CRED_DIR));
        let seen = credmon::observe(&dir);
        let limits = credmon::Limits {
            thresholds: th,
            max_age: i64::try_from(args.max_age.as_secs()).unwrap_or(i64::MAX),
        };
        credmon::evaluate(&seen, now, limits)
    } else {
        let uid = nix::unistd::geteuid().as_raw();
        let path = args
            .path
            .clone()
            .unwrap_or_else(|| discovery::bearer_token_file(discovery::process_env, uid));
        evaluate_token(&observe_token(&path), now, th)
    }
}

/// Runs the check, prints the plugin line and returns the plugin exit code.
pub fn main(args: CheckArgs) -> ExitCode {
    let verdict = run(&args, SystemTime::now());
    println!("{}", verdict.line());
    ExitCode::from(verdict.state.code())
}

/// For `main.rs`: a command line that does not parse exits 3 (UNKNOWN) for
/// `check`, so a typo in a monitoring configuration never reads as CRITICAL;
/// every other subcommand keeps clap's usual exit status.
pub fn exit_on_parse_error(err: clap::Error, argv: &[std::ffi::OsString]) -> ! {
    let is_check = argv.get(1).is_some_and(|a| a == "check");
    if is_check && err.use_stderr() {
        let _ = err.print();
        std::process::exit(i32::from(State::Unknown.code()));
    }
    err.exit()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::UNIX_EPOCH;

    fn claims(sub: Option<&str>, iss: Option<&str>, exp: Option<i64>) -> Claims {
        Claims {
            sub: sub.map(Into::into),
            iss: iss.map(Into::into),
            exp,
            ..Claims::default()
        }
    }

    fn th() -> Thresholds {
        Thresholds::new(Duration::from_secs(3600), Duration::from_secs(1800)).unwrap()
    }

    #[test]
    fn classify_table() {
        // (remaining, state)
        for (left, state) in [
            (100_000, State::Ok),
            (3601, State::Ok),
            (3600, State::Warning),
            (1801, State::Warning),
            (1800, State::Critical),
            (1, State::Critical),
            (0, State::Critical),
            (-5, State::Critical),
        ] {
            assert_eq!(th().classify(left), state, "{left}");
        }
        let zero = Thresholds::new(Duration::ZERO, Duration::ZERO).unwrap();
        assert_eq!(zero.classify(1), State::Ok);
        assert_eq!(zero.classify(0), State::Critical);
    }

    #[test]
    fn thresholds_must_be_ordered() {
        let err = Thresholds::new(Duration::from_secs(60), Duration::from_secs(120)).unwrap_err();
        assert!(err.contains("above the warning"), "{err}");
        assert!(Thresholds::new(Duration::from_secs(60), Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn token_verdict_table() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let iss = Some("https://cilogon.org/igwn");
        let cases = [
            (
                claims(Some("robot/host.example"), iss, Some(1_007_980)),
                "OK - token for robot/host.example@cilogon.org expires in 2h13m | remaining=7980s;3600;1800",
                State::Ok,
            ),
            (
                claims(Some("r"), iss, Some(1_003_000)),
                "WARNING - token for r@cilogon.org expires in 50m00s | remaining=3000s;3600;1800",
                State::Warning,
            ),
            (
                claims(Some("r"), None, Some(1_000_600)),
                "CRITICAL - token for r expires in 10m00s | remaining=600s;3600;1800",
                State::Critical,
            ),
            (
                claims(None, iss, Some(999_700)),
                "CRITICAL - token from cilogon.org expired 5m00s ago | remaining=-300s;3600;1800",
                State::Critical,
            ),
            (
                claims(Some("r"), iss, None),
                "UNKNOWN - token for r@cilogon.org has no exp claim",
                State::Unknown,
            ),
            (
                claims(Some("a|b\nc"), None, Some(2_000_000)),
                "OK - token for a b c expires in 11d13h | remaining=1000000s;3600;1800",
                State::Ok,
            ),
        ];
        for (c, line, state) in cases {
            let v = evaluate_token(&TokenObservation::Token(c), now, th());
            assert_eq!(v.line(), line);
            assert_eq!(v.state, state);
        }
        let v = evaluate_token(
            &TokenObservation::Unusable("there is no token file '/x'".into()),
            now,
            th(),
        );
        assert_eq!(v.line(), "UNKNOWN - there is no token file '/x'");
        assert_eq!(v.state.code(), 3);
    }

    #[test]
    fn worst_state_table() {
        use State::*;
        for (a, b, w) in [
            (Ok, Ok, Ok),
            (Ok, Unknown, Unknown),
            (Unknown, Warning, Warning),
            (Warning, Critical, Critical),
            (Critical, Unknown, Critical),
        ] {
            assert_eq!(a.worst(b), w, "{a} {b}");
            assert_eq!(b.worst(a), w, "{b} {a}");
        }
    }

    #[test]
    fn issuer_hosts() {
        assert_eq!(issuer_host("https://cilogon.org/igwn"), "cilogon.org");
        assert_eq!(issuer_host("https://x.example:8443"), "x.example");
        assert_eq!(issuer_host("not a url"), "not a url");
    }
}
