//! `robot-credmon status`: one line per credential the credmon keeps, from
//! the credential files (`<user>/<name>.top` with a `vault_url`, its `.use`)
//! and the credmon's state file ([`state`]), sorted by urgency. Works while
//! the credmon is down (and says so). Every file is read through the trust
//! rule for the credential directory's owner, never through a link.
//!
//! Reading ([`observe`]) is kept apart from judging ([`rows`], a plain
//! function of what was seen and the time) and from printing ([`render_text`],
//! [`render_json`]; the JSON form is documented in docs/operations.md and
//! stays stable within its `version`).

pub mod login;
pub mod state;

#[cfg(test)]
mod tests;

use crate::check::credmon::{PidState, is_vault_top, read_pid};
use crate::credmon::policy::UseState;
use crate::credmon::schedule;
use crate::files::SafeDir;
use crate::token::{self, BearerToken, MAX_TOKEN_BYTES};
use serde::Serialize;
use state::{Problem, StateFile};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The JSON form's version.
pub const JSON_VERSION: u32 = 1;
/// HTCondor's defaults of the renewal knobs, used when there is no state file.
const DEFAULT_MINIMUM: u64 = 2400;
/// The default of `CREDMON_OAUTH_TOKEN_REFRESH` (half the minimum).
const DEFAULT_REFRESH: u64 = 1200;
/// Largest `.top` read.
const MAX_TOP_BYTES: usize = 1024 * 1024;

/// Why `status` could not look at all.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The credential directory cannot be read.
    #[error("{0} (run robot-credmon status as root, with -c naming the credential directory)")]
    Dir(String),
}

/// A credential's state, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowState {
    /// Only a person can fix it (an OIDC login).
    NeedsLogin,
    /// Refreshes fail; the credmon retries with backoff.
    Failing,
    /// The `.top` cannot be used as it is.
    Skipped,
    /// No usable `.use` yet: jobs that need it are held.
    Waiting,
    /// The `.use` is due for renewal now.
    Due,
    /// The `.use` is good; renewed before `next_due`.
    Fresh,
}

impl RowState {
    /// The words of the text view.
    pub fn words(self) -> &'static str {
        match self {
            RowState::NeedsLogin => "needs a person",
            RowState::Failing => "failing",
            RowState::Skipped => "skipped",
            RowState::Waiting => "waiting",
            RowState::Due => "due",
            RowState::Fresh => "fresh",
        }
    }
}

impl From<Problem> for RowState {
    fn from(p: Problem) -> Self {
        match p {
            Problem::Failing => RowState::Failing,
            Problem::Skipped => RowState::Skipped,
            Problem::NeedsLogin => RowState::NeedsLogin,
        }
    }
}

/// One credential, as `status` shows it. Times are seconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The user (directory name).
    pub user: String,
    /// `<service>` or `<service>_<handle>`.
    pub credential: String,
    /// Its state.
    pub state: RowState,
    /// The `.use` token's expiry.
    pub use_expires: Option<i64>,
    /// When the `.use` was last written.
    pub last_refresh: Option<i64>,
    /// When the credmon renews or retries it next.
    pub next_due: Option<i64>,
    /// Whether the user has a usable robot keytab in `ROBOT_CREDMON_KEYTAB_DIR`.
    pub keytab: bool,
    /// Whether a person must log in (the same as `state == needs_login`).
    pub needs_login: bool,
    /// Failed attempts in a row.
    pub failures: u32,
    /// Since when it has had its problem.
    pub since: Option<i64>,
    /// The last error, one line, no secrets.
    pub last_error: Option<String>,
}

/// The `.use` of a credential as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UseSeen {
    /// None yet.
    Missing,
    /// Present but not usable (the message says why).
    Unusable(String),
    /// A token with this expiry (if it says), written at `mtime`, changed at `ctime`.
    Token {
        /// `exp`.
        exp: Option<i64>,
        /// Modification time (seconds).
        mtime: i64,
        /// Change time.
        ctime: SystemTime,
    },
}

/// A Vault credential found in the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCred {
    /// The user.
    pub user: String,
    /// The file stem.
    pub credential: String,
    /// The `.top`'s ctime.
    pub top_ctime: SystemTime,
    /// Its `.use`.
    pub usage: UseSeen,
}

/// Everything `status` read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The credential directory.
    pub dir: PathBuf,
    /// The credmon's pid file.
    pub pid: PidState,
    /// The state file, if there is a readable one.
    pub state: Option<StateFile>,
    /// The Vault credentials in the files, sorted.
    pub files: Vec<FileCred>,
    /// Users with a usable robot keytab.
    pub keytabs: HashSet<String>,
    /// Files that could not be read (and a state file that could not).
    pub errors: Vec<String>,
}

/// The credmon as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredmonView {
    /// Its process is running.
    pub running: bool,
    /// The pid in the pid file.
    pub pid: Option<i32>,
    /// One line: what was found.
    pub detail: String,
}

/// The whole view (the JSON form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct View {
    /// [`JSON_VERSION`].
    pub version: u32,
    /// The credential directory.
    pub cred_dir: PathBuf,
    /// When the view was made.
    pub now: i64,
    /// The credmon process.
    pub credmon: CredmonView,
    /// End of the credmon's last complete pass (from the state file).
    pub last_pass: Option<i64>,
    /// When the state file was written.
    pub state_written: Option<i64>,
    /// The credentials, most urgent first.
    pub credentials: Vec<Row>,
    /// Problems reading files.
    pub errors: Vec<String>,
}

/// Reads the credential directory (only `user`'s credentials when given).
pub fn observe(dir: &Path, user: Option<&str>) -> Result<Seen, StatusError> {
    let root = SafeDir::open(dir).map_err(|e| StatusError::Dir(e.to_string()))?;
    let owner = root
        .stat_self()
        .map_err(|e| StatusError::Dir(e.to_string()))?
        .st_uid;
    let mut seen = Seen {
        dir: dir.to_owned(),
        pid: read_pid(&root, owner),
        state: None,
        files: Vec::new(),
        keytabs: HashSet::new(),
        errors: Vec::new(),
    };
    match state::read(&root, owner) {
        Ok(s) => seen.state = s,
        Err(e) => seen.errors.push(e.to_string()),
    }
    if let (Some(u), Some(s)) = (user, seen.state.as_mut()) {
        s.problems.retain(|p| p.user == u);
    }
    let mut users = match user {
        Some(u) => vec![u.to_owned()],
        None => root
            .entries()
            .map_err(|e| StatusError::Dir(e.to_string()))?,
    };
    users.sort();
    for u in users.iter().filter(|u| !u.starts_with('.')) {
        if !crate::credmon::policy::valid_cred_name(u) {
            continue;
        }
        match root.stat(u) {
            Ok(Some(st)) if st.st_mode & 0o170000 == 0o040000 => {}
            Ok(_) => continue,
            Err(e) => {
                seen.errors.push(e.to_string());
                continue;
            }
        }
        match root.open_child(u) {
            Ok(d) => observe_user(&d, u, owner, &mut seen),
            Err(e) => seen.errors.push(e.to_string()),
        }
    }
    let kdir = seen.state.as_ref().and_then(|s| s.keytab_dir.clone());
    if let Some(kdir) = kdir {
        let mut names: HashSet<&str> = seen.files.iter().map(|f| f.user.as_str()).collect();
        if let Some(s) = &seen.state {
            names.extend(s.problems.iter().map(|p| p.user.as_str()));
        }
        let usable: HashSet<String> = names
            .into_iter()
            .filter(|u| keytab_usable(&kdir, u, owner))
            .map(str::to_owned)
            .collect();
        seen.keytabs = usable;
    }
    Ok(seen)
}

/// Whether `<kdir>/<user>.keytab` is one the credmon uses: a regular file
/// (not a link) owned by `owner` that group and others cannot access.
fn keytab_usable(kdir: &Path, user: &str, owner: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(kdir.join(format!("{user}.keytab")))
        .is_ok_and(|m| m.file_type().is_file() && m.uid() == owner && m.mode() & 0o077 == 0)
}

fn observe_user(dir: &SafeDir, user: &str, owner: u32, seen: &mut Seen) {
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
        seen.files.push(FileCred {
            user: user.to_owned(),
            credential: stem.to_owned(),
            top_ctime: crate::credmon::refresh::file_ctime(&st),
            usage: read_use(dir, stem, owner),
        });
    }
}

fn read_use(dir: &SafeDir, stem: &str, owner: u32) -> UseSeen {
    match dir.read_trusted(&format!("{stem}.use"), MAX_TOKEN_BYTES + 2, owner) {
        Ok(None) => UseSeen::Missing,
        Err(e) => UseSeen::Unusable(e.to_string()),
        Ok(Some((bytes, st))) => match BearerToken::from_bytes(&bytes) {
            Ok(tok) => UseSeen::Token {
                exp: tok.claims().exp,
                mtime: st.st_mtime,
                ctime: crate::credmon::refresh::file_ctime(&st),
            },
            Err(e) => UseSeen::Unusable(format!(
                "'{}' does not hold a bearer token: {}",
                dir.path().join(format!("{stem}.use")).display(),
                crate::check::token_problem(&e)
            )),
        },
    }
}

/// The rows for what was seen at `now`, most urgent first: needs a person,
/// failing, skipped, waiting, due, fresh; then the soonest `.use` expiry.
pub fn rows(seen: &Seen, now: i64) -> Vec<Row> {
    let (minimum, refresh) = seen
        .state
        .as_ref()
        .map_or((DEFAULT_MINIMUM, DEFAULT_REFRESH), |s| {
            (s.minimum, s.refresh)
        });
    let mut problems: BTreeMap<(&str, &str), &state::Entry> = seen
        .state
        .iter()
        .flat_map(|s| &s.problems)
        .map(|p| ((p.user.as_str(), p.credential.as_str()), p))
        .collect();
    let mut out: Vec<Row> = Vec::new();
    for f in &seen.files {
        let entry = problems.remove(&(f.user.as_str(), f.credential.as_str()));
        let mut row = from_files(f, now, minimum, refresh);
        if let Some(e) = entry {
            with_problem(&mut row, e);
        }
        row.keytab = seen.keytabs.contains(&f.user);
        out.push(row);
    }
    // Problems of credentials the files do not show as Vault credentials
    // (a malformed `.top`, a provision that failed).
    for e in problems.into_values() {
        let mut row = Row {
            user: e.user.clone(),
            credential: e.credential.clone(),
            state: RowState::Failing,
            use_expires: None,
            last_refresh: None,
            next_due: None,
            keytab: seen.keytabs.contains(&e.user),
            needs_login: false,
            failures: 0,
            since: None,
            last_error: None,
        };
        with_problem(&mut row, e);
        out.push(row);
    }
    out.sort_by(|a, b| {
        (
            a.state,
            a.use_expires.unwrap_or(i64::MIN),
            &a.user,
            &a.credential,
        )
            .cmp(&(
                b.state,
                b.use_expires.unwrap_or(i64::MIN),
                &b.user,
                &b.credential,
            ))
    });
    out
}

/// A row from the files alone: waiting (no usable `.use`), due (the renewal
/// rules say renew now) or fresh, with the next renewal from the same rules.
fn from_files(f: &FileCred, now: i64, minimum: u64, refresh: u64) -> Row {
    let (state, use_expires, last_refresh, next_due) = match &f.usage {
        UseSeen::Missing | UseSeen::Unusable(_) => (RowState::Waiting, None, None, Some(now)),
        UseSeen::Token { exp, mtime, ctime } => {
            let u = UseState {
                ctime: *ctime,
                exp: exp.map(token::time_of),
            };
            let at = token::time_of(now);
            let (_, deadline) = schedule::need(Some(u), f.top_ctime, at, minimum, refresh);
            let deadline = token::unix_seconds(deadline);
            let state = if deadline <= now {
                RowState::Due
            } else {
                RowState::Fresh
            };
            (state, *exp, Some(*mtime), Some(deadline))
        }
    };
    Row {
        user: f.user.clone(),
        credential: f.credential.clone(),
        state,
        use_expires,
        last_refresh,
        next_due,
        keytab: false,
        needs_login: false,
        failures: 0,
        since: None,
        last_error: match &f.usage {
            UseSeen::Unusable(why) => Some(why.clone()),
            _ => None,
        },
    }
}

fn with_problem(row: &mut Row, e: &state::Entry) {
    row.state = e.state.into();
    row.needs_login = e.state == Problem::NeedsLogin;
    row.failures = e.failures;
    row.since = Some(e.since);
    row.next_due = e.next_try.or(row.next_due);
    row.last_error = Some(e.last_error.clone());
}

/// The view of what was seen at `now`.
pub fn view(seen: &Seen, now: i64) -> View {
    let (running, pid, detail) = match &seen.pid {
        PidState::Alive(p) => (true, Some(*p), format!("running (pid {p})")),
        PidState::Missing => (
            false,
            None,
            format!("not running: no pid file in '{}'", seen.dir.display()),
        ),
        PidState::Dead(p) => (false, Some(*p), format!("not running: pid {p} is gone")),
        PidState::Other(p, what) => (
            false,
            Some(*p),
            format!("not running: pid {p} is now {what}"),
        ),
        PidState::Invalid(why) => (false, None, format!("unknown: {why}")),
        PidState::Unverifiable(p, why) => (
            false,
            Some(*p),
            format!("unknown: pid {p} cannot be inspected ({why}; run as root)"),
        ),
    };
    View {
        version: JSON_VERSION,
        cred_dir: seen.dir.clone(),
        now,
        credmon: CredmonView {
            running,
            pid,
            detail,
        },
        last_pass: seen.state.as_ref().and_then(|s| s.last_pass),
        state_written: seen.state.as_ref().map(|s| s.written),
        credentials: rows(seen, now),
        errors: seen.errors.clone(),
    }
}

/// `in 2h13m`, `5m00s ago`, `now`, or `-`.
fn when(t: Option<i64>, now: i64) -> String {
    match t {
        None => "-".to_owned(),
        Some(t) if t > now => format!("in {}", token::format_remaining(t - now)),
        Some(t) if t == now => "now".to_owned(),
        Some(t) => format!("{} ago", token::format_remaining(now - t)),
    }
}

/// The text view: what the credmon is doing, a count by state, then a table.
pub fn render_text(v: &View) -> String {
    let mut out = format!("credmon: {}", v.credmon.detail);
    if let Some(t) = v.last_pass {
        out.push_str(&format!(", last pass {}", when(Some(t), v.now)));
    }
    match v.state_written {
        Some(t) => out.push_str(&format!(", state written {}", when(Some(t), v.now))),
        None => out.push_str(", no state file yet"),
    }
    out.push('\n');
    if !v.credmon.running {
        out.push_str("the credmon is down: the states below are as its last state file and the files show them\n");
    }
    let mut counts: BTreeMap<RowState, usize> = BTreeMap::new();
    for r in &v.credentials {
        *counts.entry(r.state).or_default() += 1;
    }
    let n = v.credentials.len();
    let parts: Vec<String> = counts
        .iter()
        .map(|(s, c)| format!("{c} {}", s.words()))
        .collect();
    out.push_str(&format!(
        "{n} credential{}{}{}\n",
        if n == 1 { "" } else { "s" },
        if parts.is_empty() { "" } else { ": " },
        parts.join(", ")
    ));
    if n > 0 {
        out.push('\n');
        out.push_str(&table(v));
    }
    for e in &v.errors {
        out.push_str(&format!("cannot read: {e}\n"));
    }
    out
}

fn table(v: &View) -> String {
    let head = [
        "USER",
        "CREDENTIAL",
        "STATE",
        "USE EXPIRES",
        "LAST REFRESH",
        "NEXT DUE",
        "KEYTAB",
        "LAST ERROR",
    ];
    let cells: Vec<[String; 8]> = v
        .credentials
        .iter()
        .map(|r| {
            let next = match r.next_due {
                Some(t) if t <= v.now => "now".to_owned(),
                t => when(t, v.now),
            };
            let expires = match r.use_expires {
                Some(t) if t <= v.now => format!("expired {}", when(Some(t), v.now)),
                t => when(t, v.now),
            };
            [
                r.user.clone(),
                r.credential.clone(),
                r.state.words().to_owned(),
                expires,
                when(r.last_refresh, v.now),
                next,
                if r.keytab { "yes" } else { "no" }.to_owned(),
                r.last_error.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    let mut width = head.map(str::len);
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: [&str; 8]| {
        let mut s = String::new();
        for (i, c) in cols.iter().enumerate() {
            if i == 7 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(head);
    for row in &cells {
        out.push_str(&line(row.each_ref().map(String::as_str)));
    }
    out
}

/// The JSON form: one object, one line.
pub fn render_json(v: &View) -> String {
    serde_json::to_string(v).unwrap_or_default() + "\n"
}

/// Runs `status` on `dir` at `now` (seconds since the epoch).
pub fn run(dir: &Path, user: Option<&str>, json: bool, now: i64) -> Result<String, StatusError> {
    let seen = observe(dir, user)?;
    let v = view(&seen, now);
    Ok(if json {
        render_json(&v)
    } else {
        render_text(&v)
    })
}
