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

use crate::env::Env;
use crate::files::{self, FileError, discovery};
use crate::token::{self, BearerToken, Claims, MAX_TOKEN_BYTES, TokenError};
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// Default HTCondor credential directory (`SEC_CREDENTIAL_DIRECTORY_OAUTH` of `use feature : OAUTH`).
pub const DEFAULT_CRED_DIR: &str = "/var/lib/condor/oauth_credentials";

pub use crate::cli::CheckArgs;
pub use crate::range::Range;

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

/// Remaining-lifetime thresholds: plugin ranges of seconds left (`3600:` alerts below 3600).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// WARNING when this range alerts.
    pub warning: Range,
    /// CRITICAL when this range alerts (and whenever the token has expired).
    pub critical: Range,
}

impl Thresholds {
    /// From the command-line ranges; refuses `-c N:` above `-w M:` (critical before warning).
    pub fn new(warning: Range, critical: Range) -> Result<Self, String> {
        if let (Some(w), Some(c)) = (warning.lower_bound_only(), critical.lower_bound_only())
            && c > w
        {
            return Err(format!(
                "the critical threshold ({c}s) is above the warning threshold ({w}s)"
            ));
        }
        Ok(Thresholds { warning, critical })
    }

    /// The state for `remaining` seconds left: an expired token is always CRITICAL.
    pub fn classify(&self, remaining: i64) -> State {
        if remaining <= 0 || self.critical.alerts(remaining) {
            State::Critical
        } else if self.warning.alerts(remaining) {
            State::Warning
        } else {
            State::Ok
        }
    }

    /// Performance data: `remaining=2699s;3600:;1800:;0`.
    pub fn perf(&self, label: &str, remaining: i64) -> String {
        format!("{label}={remaining}s;{};{};0", self.warning, self.critical)
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
    /// The file fails the file-trust rule (owned by another user, writable by
    /// its group or others, a link): possibly planted, never believed.
    Untrusted(String),
}

/// Judges a token file: a plain function of the claims, the time and the thresholds.
pub fn evaluate_token(seen: &TokenObservation, now: SystemTime, th: Thresholds) -> Verdict {
    let claims = match seen {
        TokenObservation::Token(c) => c,
        TokenObservation::Unusable(why) => return Verdict::unknown(why.clone()),
        TokenObservation::Untrusted(why) => {
            return Verdict {
                state: State::Critical,
                summary: why.clone(),
                perf: String::new(),
            };
        }
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

/// A token file whose last `get` run ended needing a person (its marker,
/// [`crate::get::login`]) is CRITICAL, with the command to run, whatever
/// time the old token has left.
pub fn with_login_marker(v: Verdict, marker: Option<crate::get::login::Marker>) -> Verdict {
    let Some(m) = marker else {
        return v;
    };
    Verdict {
        state: State::Critical,
        summary: format!("a person must log in: {}; {}", m.message, v.summary),
        perf: v.perf,
    }
}

/// Reads a token file through the file-trust rule for the effective user
/// ([`files::read_trusted`]: no link followed, owner, no group/other write)
/// and keeps only its claims; a file failing the rule is [`TokenObservation::Untrusted`].
/// `uid` is the effective user's.
pub fn observe_token(path: &std::path::Path, uid: u32) -> TokenObservation {
    match files::read_trusted(path, MAX_TOKEN_BYTES + 2, uid) {
        Ok(None) => {
            TokenObservation::Unusable(format!("there is no token file '{}'", path.display()))
        }
        Err(
            e @ (FileError::Untrusted { .. }
            | FileError::Symlink(_)
            | FileError::HardLinked(_)
            | FileError::WrongOwner { .. }),
        ) => TokenObservation::Untrusted(e.to_string()),
        Err(e) => TokenObservation::Unusable(e.to_string()),
        Ok(Some(bytes)) => match BearerToken::from_bytes(&bytes) {
            Ok(tok) => TokenObservation::Token(tok.claims().clone()),
            Err(e) => TokenObservation::Unusable(format!(
                "'{}' does not hold a bearer token: {}",
                path.display(),
                token_problem(&e)
            )),
        },
    }
}

/// Why bytes are not a token, in words for an operator (no library error names).
pub fn token_problem(e: &TokenError) -> &'static str {
    match e {
        TokenError::Empty => "the file is empty",
        TokenError::TooLarge => "the file is too large for a token",
        TokenError::BadCharacters => "it holds characters a bearer token cannot have",
        TokenError::NotJwt(_) => "it is not a JWT (three base64url parts with JSON claims)",
    }
}

/// Runs the check named by `args` in `env` (its clock, effective uid and variables).
pub fn run(args: &CheckArgs, env: &Env) -> Verdict {
    let now = env.now();
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
        let path = args
            .path
            .clone()
            .unwrap_or_else(|| discovery::bearer_token_file(|k| env.var(k), env.euid()));
        let verdict = evaluate_token(&observe_token(&path, env.euid()), now, th);
        with_login_marker(verdict, crate::get::login::read(&path, env.euid()))
    }
}

/// Runs `work` on its own thread and waits at most `limit` for its verdict;
/// past that the verdict is UNKNOWN (the plugin `-t/--timeout` rule), so a
/// hung file system never leaves the monitoring system waiting.
pub fn within(limit: Duration, work: impl FnOnce() -> Verdict + Send + 'static) -> Verdict {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("check".into())
        .spawn(move || {
            let _ = tx.send(work());
        });
    if let Err(e) = spawned {
        return Verdict::unknown(format!("cannot start the check: {e}"));
    }
    rx.recv_timeout(limit).unwrap_or_else(|_| {
        Verdict::unknown(format!(
            "the check did not finish within {} (-t/--timeout)",
            token::format_remaining(i64::try_from(limit.as_secs()).unwrap_or(i64::MAX))
        ))
    })
}

/// The plugin line for a command line that does not parse: UNKNOWN with clap's first line.
pub fn usage_verdict(err: &clap::Error) -> Verdict {
    let text = err.render().to_string();
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("invalid command line");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    Verdict::unknown(format!("usage: {first} (see robot-credmon check --help)"))
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
        Thresholds::new(Range::at_least(3600), Range::at_least(1800)).unwrap()
    }

    #[test]
    fn classify_table() {
        // (remaining, state)
        for (left, state) in [
            (100_000, State::Ok),
            (3601, State::Ok),
            (3600, State::Ok),
            (3599, State::Warning),
            (1800, State::Warning),
            (1799, State::Critical),
            (1, State::Critical),
            (0, State::Critical),
            (-5, State::Critical),
        ] {
            assert_eq!(th().classify(left), state, "{left}");
        }
        let zero = Thresholds::new(Range::at_least(0), Range::at_least(0)).unwrap();
        assert_eq!(zero.classify(1), State::Ok);
        assert_eq!(zero.classify(0), State::Critical);
        // Any plugin range works; an expired token stays CRITICAL.
        let odd = Thresholds::new(
            Range::parse("@7000:8000").unwrap(),
            Range::parse("~:100000").unwrap(),
        )
        .unwrap();
        assert_eq!(odd.classify(200_000), State::Critical);
        assert_eq!(odd.classify(7500), State::Warning);
        let odd =
            Thresholds::new(Range::parse("@7000:8000").unwrap(), Range::at_least(60)).unwrap();
        assert_eq!(odd.classify(7500), State::Warning);
        assert_eq!(odd.classify(9000), State::Ok);
        assert_eq!(odd.classify(-1), State::Critical);
    }

    #[test]
    fn thresholds_must_be_ordered() {
        let err = Thresholds::new(Range::at_least(60), Range::at_least(120)).unwrap_err();
        assert!(err.contains("above the warning"), "{err}");
        assert!(Thresholds::new(Range::at_least(60), Range::at_least(60)).is_ok());
        assert!(Thresholds::new(Range::at_least(60), Range::parse("10:200").unwrap()).is_ok());
    }

    #[test]
    fn token_verdict_table() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let iss = Some("https://cilogon.org/igwn");
        let cases = [
            (
                claims(Some("robot/host.example"), iss, Some(1_007_980)),
                "OK - token for robot/host.example@cilogon.org expires in 2h13m | remaining=7980s;3600:;1800:;0",
                State::Ok,
            ),
            (
                claims(Some("r"), iss, Some(1_003_000)),
                "WARNING - token for r@cilogon.org expires in 50m00s | remaining=3000s;3600:;1800:;0",
                State::Warning,
            ),
            (
                claims(Some("r"), None, Some(1_000_600)),
                "CRITICAL - token for r expires in 10m00s | remaining=600s;3600:;1800:;0",
                State::Critical,
            ),
            (
                claims(None, iss, Some(999_700)),
                "CRITICAL - token from cilogon.org expired 5m00s ago | remaining=-300s;3600:;1800:;0",
                State::Critical,
            ),
            (
                claims(Some("r"), iss, None),
                "UNKNOWN - token for r@cilogon.org has no exp claim",
                State::Unknown,
            ),
            (
                claims(Some("a|b\nc"), None, Some(2_000_000)),
                "OK - token for a b c expires in 11d13h | remaining=1000000s;3600:;1800:;0",
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
        let v = evaluate_token(
            &TokenObservation::Untrusted("'/x' is owned by uid 65534, not by uid 0".into()),
            now,
            th(),
        );
        assert_eq!(
            v.line(),
            "CRITICAL - '/x' is owned by uid 65534, not by uid 0"
        );
        assert_eq!(v.state.code(), 2);
    }

    #[test]
    fn a_login_marker_makes_any_token_critical_with_the_command() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let ok = evaluate_token(
            &TokenObservation::Token(claims(Some("r"), None, Some(1_007_980))),
            now,
            th(),
        );
        assert_eq!(with_login_marker(ok.clone(), None), ok);
        let m = crate::get::login::Marker {
            since: 999_000,
            message: "Vault at v holds no credential for credkey 'r' (issuer i, role r); a person must log in once: run on a terminal: igwn-robot-get -k k --oidc".into(),
        };
        let v = with_login_marker(ok, Some(m));
        assert_eq!(v.state, State::Critical);
        assert!(
            v.line()
                .starts_with("CRITICAL - a person must log in: Vault at v holds no credential"),
            "{}",
            v.line()
        );
        assert!(
            v.line()
                .contains("igwn-robot-get -k k --oidc; token for r expires in 2h13m"),
            "{}",
            v.line()
        );
    }

    #[test]
    fn timeout_gives_unknown() {
        // A check that never finishes: it waits for a message that never comes.
        let (_hold, never) = std::sync::mpsc::channel::<()>();
        let v = within(Duration::from_secs(1), move || {
            let _ = never.recv();
            Verdict::unknown("never")
        });
        assert_eq!(
            v.line(),
            "UNKNOWN - the check did not finish within 1s (-t/--timeout)"
        );
        let quick = within(Duration::from_secs(5), || Verdict::unknown("done"));
        assert_eq!(quick.line(), "UNKNOWN - done");
    }

    #[test]
    fn usage_errors_make_one_unknown_line() {
        use clap::Parser;
        let err =
            crate::cli::Cli::try_parse_from(["robot-credmon", "check", "-w", "soon"]).unwrap_err();
        let v = usage_verdict(&err);
        assert_eq!(v.state, State::Unknown);
        assert!(
            v.line()
                .starts_with("UNKNOWN - usage: invalid value 'soon'"),
            "{}",
            v.line()
        );
        assert!(!v.line().contains('\n'));
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
