//! `check --credmon`: is the credmon alive, has it finished a pass recently,
//! and does every Vault credential have a fresh `.use`?
//!
//! Follows HTCondor's credmon interface: `<cred_dir>/pid` holds the credmon's
//! pid, `CREDMON_COMPLETE` is touched after each full pass, and each
//! `<user>/<name>.top` whose JSON has a `vault_url` is a Vault credential the
//! credmon must turn into `<user>/<name>.use`. Files are read through
//! [`SafeDir`], never through a symbolic link, and only when they pass the
//! trust rule for the owner of the credential directory (root in production):
//! a file another user planted is reported, never taken as evidence.

use super::{State, Thresholds, Verdict, expiry_phrase};
use crate::files::SafeDir;
use crate::token::{self, BearerToken, MAX_TOKEN_BYTES};
use nix::errno::Errno;
use nix::sys::stat::{FileStat, SFlag};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Largest `.top` file we read.
const MAX_TOP_BYTES: usize = 1024 * 1024;

/// How many problems the output line names before "and N more".
const SHOWN_PROBLEMS: usize = 3;

/// Limits of the credmon check, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Remaining-lifetime thresholds for each `.use`.
    pub thresholds: Thresholds,
    /// Oldest acceptable `CREDMON_COMPLETE`; also how long a new `.top` may wait for its `.use`.
    pub max_age: i64,
}

/// What the `pid` file said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PidState {
    /// There is no pid file.
    Missing,
    /// The pid file could not be read or holds no pid; the message says why.
    Invalid(String),
    /// The process exists and is a robot-credmon credmon.
    Alive(i32),
    /// No such process.
    Dead(i32),
    /// The pid now belongs to another program (the credmon died and the pid
    /// was reused); the text says what runs there.
    Other(i32, String),
    /// The process exists but cannot be inspected; the text says why.
    Unverifiable(i32, String),
}

/// What a Vault credential's `.use` file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UseState {
    /// There is no `.use` yet.
    Missing,
    /// The `.use` could not be read or is not a token; the message says why.
    Unusable(String),
    /// A token expiring at this time (seconds since the epoch), if it says.
    Token(Option<i64>),
}

/// One Vault credential: `<user>/<name>.top` with a `vault_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// `<user>/<name>`.
    pub name: String,
    /// When the `.top` was last changed (ctime, seconds since the epoch).
    pub top_changed: i64,
    /// The `.use`.
    pub usage: UseState,
}

/// Everything the check saw in a credential directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The directory.
    pub dir: PathBuf,
    /// Set when the directory itself could not be read; nothing else is then known.
    pub unreadable: Option<String>,
    /// The `pid` file.
    pub pid: PidState,
    /// Modification time of `CREDMON_COMPLETE`, if it exists.
    pub complete: Option<i64>,
    /// The Vault credentials, sorted by name.
    pub credentials: Vec<Credential>,
    /// Files or directories that could not be read.
    pub errors: Vec<String>,
    /// Credentials the credmon's state file says need a person: `user/name: what and the command`.
    pub needs_login: Vec<String>,
}

impl Observation {
    fn empty(dir: &Path) -> Self {
        Observation {
            dir: dir.to_owned(),
            unreadable: None,
            pid: PidState::Missing,
            complete: None,
            credentials: Vec::new(),
            errors: Vec::new(),
            needs_login: Vec::new(),
        }
    }
}

/// Reads the credential directory. Never fails: problems become part of the observation.
pub fn observe(dir: &Path) -> Observation {
    let mut seen = Observation::empty(dir);
    let top = match SafeDir::open(dir) {
        Ok(d) => d,
        Err(e) => {
            seen.unreadable = Some(e.to_string());
            return seen;
        }
    };
    // The credd's files belong to the owner of its directory (root in
    // production); anything else in there was planted and is not evidence.
    let owner = match top.stat_self() {
        Ok(st) => st.st_uid,
        Err(e) => {
            seen.unreadable = Some(e.to_string());
            return seen;
        }
    };
    seen.pid = read_pid(&top, owner);
    read_needs_login(&top, owner, &mut seen);
    match top.stat("CREDMON_COMPLETE") {
        Ok(st) => seen.complete = st.map(|st| st.st_mtime),
        Err(e) => seen.errors.push(e.to_string()),
    }
    let mut names = match top.entries() {
        Ok(n) => n,
        Err(e) => {
            seen.unreadable = Some(e.to_string());
            return seen;
        }
    };
    names.sort();
    for user in names.iter().filter(|n| !n.starts_with('.')) {
        match top.stat(user) {
            Ok(Some(st)) if is_kind(&st, SFlag::S_IFDIR) => {}
            Ok(_) => continue,
            Err(e) => {
                seen.errors.push(e.to_string());
                continue;
            }
        }
        match top.open_child(user) {
            Ok(d) => observe_user(&d, user, owner, &mut seen),
            Err(e) => seen.errors.push(e.to_string()),
        }
    }
    seen
}

/// The credentials the credmon's state file says need a person.
fn read_needs_login(top: &SafeDir, owner: u32, seen: &mut Observation) {
    use crate::status::state::{self, Problem};
    match state::read(top, owner) {
        Ok(Some(file)) => {
            seen.needs_login = file
                .problems
                .iter()
                .filter(|p| p.state == Problem::NeedsLogin)
                .map(|p| {
                    format!(
                        "{}/{} needs a person: {}",
                        p.user, p.credential, p.last_error
                    )
                })
                .collect();
        }
        Ok(None) => {}
        Err(e) => seen.errors.push(e.to_string()),
    }
}

fn is_kind(st: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == kind
}

/// The credmon's `pid` file in `dir`, read under the trust rule for `owner`,
/// and whether that process is a robot-credmon credmon.
pub fn read_pid(dir: &SafeDir, owner: u32) -> PidState {
    let bytes = match dir.read_trusted("pid", 255, owner) {
        Ok(Some((b, _))) => b,
        Ok(None) => return PidState::Missing,
        Err(e) => return PidState::Invalid(e.to_string()),
    };
    let text = String::from_utf8_lossy(&bytes);
    match text.trim().parse::<i32>() {
        Ok(pid) if pid > 0 => match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
            Ok(()) | Err(Errno::EPERM) => identify(pid),
            Err(_) => PidState::Dead(pid),
        },
        _ => PidState::Invalid(format!(
            "'{}' does not hold a process id",
            dir.path().join("pid").display()
        )),
    }
}

/// Looks at `/proc/<pid>` to tell a credmon from a process that got its pid later.
fn identify(pid: i32) -> PidState {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let cmdline = match std::fs::read(proc_dir.join("cmdline")) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return PidState::Dead(pid),
        Err(e) => {
            return PidState::Unverifiable(
                pid,
                format!("cannot read {}/cmdline: {e}", proc_dir.display()),
            );
        }
    };
    let argv: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    // Readable by root (and the owner) only; without it argv[0] decides.
    let exe = std::fs::read_link(proc_dir.join("exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    match credmon_process(exe.as_deref(), &argv) {
        Ok(()) => PidState::Alive(pid),
        Err(what) => PidState::Other(pid, what),
    }
}

/// Whether a process is a robot-credmon credmon, from its executable (when
/// readable) and its arguments: the program is `robot-credmon` (also after a
/// package upgrade replaced the file: ` (deleted)`) and its subcommand is
/// `credmon`. On failure, says what the process is instead.
pub fn credmon_process(exe: Option<&str>, argv: &[String]) -> Result<(), String> {
    let base = |p: &str| {
        let p = p.strip_suffix(" (deleted)").unwrap_or(p);
        Path::new(p)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let program = match (exe, argv.first()) {
        (Some(e), _) => base(e),
        (None, Some(a)) => base(a),
        (None, None) => return Err("a process without a command line".to_owned()),
    };
    if program == "robot-credmon" && argv.get(1).is_some_and(|a| a == "credmon") {
        return Ok(());
    }
    let shown: String = argv
        .iter()
        .take(3)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control() && *c != '|')
        .take(60)
        .collect();
    if shown.is_empty() {
        Err(format!("'{program}'"))
    } else {
        Err(format!("'{shown}'"))
    }
}

fn observe_user(dir: &SafeDir, user: &str, owner: u32, seen: &mut Observation) {
    let mut names = match dir.entries() {
        Ok(n) => n,
        Err(e) => {
            seen.errors.push(e.to_string());
            return;
        }
    };
    names.sort();
    for top_name in names
        .iter()
        .filter(|n| !n.starts_with('.') && n.ends_with(".top"))
    {
        let stem = top_name.trim_end_matches(".top");
        let (bytes, st) = match dir.read_trusted(top_name, MAX_TOP_BYTES, owner) {
            Ok(Some(found)) => found,
            Ok(None) => continue,
            Err(e) => {
                seen.errors.push(e.to_string());
                continue;
            }
        };
        if !is_vault_top(&bytes) {
            continue;
        }
        seen.credentials.push(Credential {
            name: format!("{user}/{stem}"),
            top_changed: st.st_ctime,
            usage: read_use(dir, &format!("{stem}.use"), owner),
        });
    }
}

/// Whether a `.top` is a Vault credential: a JSON object with a string `vault_url`.
pub fn is_vault_top(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("vault_url").map(serde_json::Value::is_string))
        .unwrap_or(false)
}

fn read_use(dir: &SafeDir, name: &str, owner: u32) -> UseState {
    match dir.read_trusted(name, MAX_TOKEN_BYTES + 2, owner) {
        Ok(None) => UseState::Missing,
        Err(e) => UseState::Unusable(e.to_string()),
        Ok(Some((bytes, _))) => match BearerToken::from_bytes(&bytes) {
            Ok(tok) => UseState::Token(tok.claims().exp),
            Err(e) => UseState::Unusable(format!("'{}' {e}", path_of(dir, name).display())),
        },
    }
}

fn path_of(dir: &SafeDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// A finding about one part of the credmon.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Finding {
    state: State,
    text: String,
}

/// What was found so far, in the order found.
#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, state: State, text: String) {
        self.0.push(Finding { state, text });
    }
}

/// Judges an observation at `now`: a plain function of what was seen.
pub fn evaluate(seen: &Observation, now: SystemTime, limits: Limits) -> Verdict {
    if let Some(why) = &seen.unreadable {
        return Verdict::unknown(why.clone());
    }
    let now = token::unix_seconds(now);
    let mut found = Findings::default();
    let pid_text = judge_pid(seen, &mut found);
    let (pass_text, last_pass) = judge_pass(seen.complete, now, limits, &mut found);
    let soonest = judge_credentials(&seen.credentials, now, limits, &mut found);
    for e in &seen.needs_login {
        found.add(State::Critical, e.clone());
    }
    for e in &seen.errors {
        found.add(State::Unknown, e.clone());
    }
    let findings = found.0;

    let state = findings.iter().fold(State::Ok, |acc, f| acc.worst(f.state));
    let n = seen.credentials.len();
    let mut context = format!(
        "{pid_text}, {pass_text}, {n} vault credential{}",
        if n == 1 { "" } else { "s" }
    );
    if let Some((left, name)) = soonest {
        context.push_str(&format!(", soonest {name} {}", expiry_phrase(left)));
    }
    let mut perf = Vec::new();
    if let Some((left, _)) = soonest {
        perf.push(limits.thresholds.perf("remaining", left));
    }
    perf.push(format!("credentials={n};;;0"));
    perf.push(format!("problems={};;;0", findings.len()));
    if let Some(age) = last_pass {
        perf.push(format!(
            "last_pass={age}s;;{};0",
            super::Range::at_most(limits.max_age)
        ));
    }
    Verdict {
        state,
        summary: summary(&findings, context),
        perf: perf.join(" "),
    }
}

/// The pid file's finding, if any, and its part of the status line.
fn judge_pid(seen: &Observation, found: &mut Findings) -> String {
    match &seen.pid {
        PidState::Missing => {
            found.add(
                State::Critical,
                format!(
                    "no pid file in '{}' (is the credmon running?)",
                    seen.dir.display()
                ),
            );
            "no credmon pid".to_owned()
        }
        PidState::Invalid(why) => {
            found.add(State::Unknown, why.clone());
            "credmon pid unknown".to_owned()
        }
        PidState::Dead(pid) => {
            found.add(State::Critical, format!("credmon pid {pid} is not running"));
            format!("credmon pid {pid} not running")
        }
        PidState::Other(pid, what) => {
            found.add(
                State::Critical,
                format!("credmon pid {pid} is not running: that pid is now {what}"),
            );
            format!("credmon pid {pid} not running")
        }
        PidState::Unverifiable(pid, why) => {
            found.add(
                State::Unknown,
                format!(
                    "cannot tell whether pid {pid} is the credmon: {why} (run the check as root)"
                ),
            );
            format!("credmon pid {pid} unverified")
        }
        PidState::Alive(pid) => format!("credmon pid {pid} running"),
    }
}

/// The last complete pass's finding, its part of the status line and its age.
fn judge_pass(
    complete: Option<i64>,
    now: i64,
    limits: Limits,
    found: &mut Findings,
) -> (String, Option<i64>) {
    let Some(t) = complete else {
        found.add(
            State::Warning,
            "no CREDMON_COMPLETE: the credmon has not finished a pass".to_owned(),
        );
        return ("no complete pass".to_owned(), None);
    };
    let age = (now - t).max(0);
    if age > limits.max_age {
        found.add(
            State::Critical,
            format!(
                "the last complete pass was {} ago (more than {})",
                token::format_remaining(age),
                token::format_remaining(limits.max_age)
            ),
        );
    }
    (
        format!("last pass {} ago", token::format_remaining(age)),
        Some(age),
    )
}

/// Each credential's finding; the soonest-expiring `.use` (seconds left, name).
fn judge_credentials<'a>(
    credentials: &'a [Credential],
    now: i64,
    limits: Limits,
    found: &mut Findings,
) -> Option<(i64, &'a str)> {
    let mut soonest: Option<(i64, &'a str)> = None;
    for cred in credentials {
        match &cred.usage {
            UseState::Missing => {
                let waiting = (now - cred.top_changed).max(0);
                if waiting > limits.max_age {
                    found.add(
                        State::Critical,
                        format!(
                            "{} has no .use {} after its .top was stored",
                            cred.name,
                            token::format_remaining(waiting)
                        ),
                    );
                }
            }
            UseState::Unusable(why) => found.add(State::Unknown, format!("{}: {why}", cred.name)),
            UseState::Token(None) => found.add(
                State::Unknown,
                format!("{}: the .use token has no exp claim", cred.name),
            ),
            UseState::Token(Some(exp)) => {
                let left = exp - now;
                let state = limits.thresholds.classify(left);
                if state != State::Ok {
                    found.add(state, format!("{} {}", cred.name, expiry_phrase(left)));
                }
                if soonest.is_none_or(|(s, _)| left < s) {
                    soonest = Some((left, &cred.name));
                }
            }
        }
    }
    soonest
}

/// The status line: the worst problems first (then in the order found), then `context`.
fn summary(findings: &[Finding], context: String) -> String {
    if findings.is_empty() {
        return context;
    }
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by_key(|f| std::cmp::Reverse(f.state.rank()));
    let mut text: Vec<String> = sorted
        .iter()
        .take(SHOWN_PROBLEMS)
        .map(|f| f.text.clone())
        .collect();
    if sorted.len() > SHOWN_PROBLEMS {
        text.push(format!("and {} more", sorted.len() - SHOWN_PROBLEMS));
    }
    format!("{}; {context}", text.join("; "))
}

#[cfg(test)]
mod tests;
