//! One credential, end to end: read the `.top`, ask Vault for a bearer token,
//! write the `.use`; on "permission denied" log in again with the user's
//! keytab (robots) or remove the credential (everyone else, as HTCondor does).
//! Also creates `.top` files for keytab users (`ROBOT_CREDMON_PROVISION`).

use super::config::{Config, MAX_TOP_BYTES};
use super::policy::{self, Renew, UseState, VaultTarget};
use crate::files::{FileError, SafeDir, WriteOptions};
use crate::kerberos::KrbError;
use crate::token::{self, BearerToken, MAX_TOKEN_BYTES, accept};
use crate::vault::auth::{self, CredentialSource, LoginTarget, Names, Trust};
use crate::vault::{Limits, VaultClient, VaultError, VaultToken, tls};
use nix::sys::stat::FileStat;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// What to do for one credential.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The user (directory name).
    pub user: String,
    /// The file stem, `<service>` or `<service>_<handle>`.
    pub stem: String,
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.user, self.stem)
    }
}

/// The kind of work for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    /// Renew the `.use` if the rules say so.
    Refresh,
    /// Create the `.top` for a keytab user on this Vault server (`host:port`), then refresh.
    Provision(String),
}

/// How a job that worked ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// A new `.use` was written: the token's `exp` and why it was renewed
    /// (the `cause` label of the metrics, [`Renew::label`]).
    Refreshed(Option<i64>, &'static str),
    /// Nothing to do: the `.use` is fresh or the `.top` is gone.
    Nothing,
}

/// Why a job failed, by what the daemon does next. Messages name the
/// credential and the server, never a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// A passing failure (Vault unreachable or failing, a file error, a
    /// failed login): the old `.use` stays; retry after the backoff, and no
    /// sooner than `at_least` when the server asked for a pause.
    #[error("{msg}")]
    Retry {
        /// The `cause` label of the failure metrics.
        cause: &'static str,
        /// The server's own wait (`429`), if any.
        at_least: Option<Duration>,
        /// What failed.
        msg: String,
    },
    /// Vault no longer accepts the credential's Vault token: log in again
    /// with the user's keytab (handled inside [`process`]; without a keytab
    /// it becomes [`RefreshError::Remove`]).
    #[error("Vault refused the token: {msg}")]
    Relogin {
        /// Vault's own message.
        msg: String,
    },
    /// The credential is dead (its Vault token refused and no keytab, or the
    /// parent of a handle is gone): remove its `.top` and `.use`, as HTCondor does.
    #[error("{msg}")]
    Remove {
        /// The `cause` label of the failure metrics.
        cause: &'static str,
        /// Why.
        msg: String,
    },
    /// The `.top` cannot be used as it is (malformed, untrusted host, no
    /// Vault token): wait for a new `.top` (or a configuration change).
    #[error("{msg}")]
    WaitForTop {
        /// Why.
        msg: String,
    },
}

impl RefreshError {
    /// The `cause` label of the failure metrics.
    pub fn cause(&self) -> &'static str {
        match self {
            RefreshError::Retry {
                at_least: Some(_), ..
            } => "rate_limited",
            RefreshError::Retry { cause, .. } | RefreshError::Remove { cause, .. } => cause,
            RefreshError::Relogin { .. } => "permission_denied",
            RefreshError::WaitForTop { .. } => "unusable",
        }
    }

    fn retry(cause: &'static str, msg: impl Into<String>) -> Self {
        RefreshError::Retry {
            cause,
            at_least: None,
            msg: msg.into(),
        }
    }

    fn wait(msg: impl Into<String>) -> Self {
        RefreshError::WaitForTop { msg: msg.into() }
    }
}

/// The result of one job.
pub type Outcome = Result<Done, RefreshError>;

/// The `cause` label of a failed Vault request.
fn vault_cause(e: &VaultError) -> &'static str {
    match e {
        VaultError::Transport { .. } => "unreachable",
        VaultError::Status { .. } | VaultError::Protocol { .. } => "vault",
        VaultError::Tls(_) | VaultError::TlsTrust { .. } => "tls",
        VaultError::BadAddress(_) => "config",
    }
}

/// State shared by the workers: configuration, one Vault client per server.
pub struct Ctx {
    cfg: RwLock<Arc<Config>>,
    clients: Mutex<HashMap<(String, u16), Arc<VaultClient>>>,
    tls: Mutex<Option<Arc<rustls::ClientConfig>>>,
    paused: Mutex<HashMap<(String, u16), Instant>>,
    warned: Mutex<HashMap<Key, String>>,
    owner: Option<(u32, u32)>,
}

impl Ctx {
    /// A context for `cfg`; files are given to root when we run as root.
    pub fn new(cfg: Arc<Config>) -> Self {
        let owner = nix::unistd::geteuid().is_root().then_some((0, 0));
        Self {
            cfg: RwLock::new(cfg),
            clients: Mutex::new(HashMap::new()),
            tls: Mutex::new(None),
            paused: Mutex::new(HashMap::new()),
            warned: Mutex::new(HashMap::new()),
            owner,
        }
    }

    /// The current configuration.
    pub fn config(&self) -> Arc<Config> {
        self.cfg.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Installs a new configuration; Vault clients are rebuilt when trust or timeouts changed.
    pub fn set_config(&self, cfg: Arc<Config>) {
        let old = self.config();
        if old.cafile != cfg.cafile
            || old.capath != cfg.capath
            || old.request_timeout != cfg.request_timeout
        {
            *self.tls.lock().unwrap_or_else(|p| p.into_inner()) = None;
            self.clients
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
        *self.cfg.write().unwrap_or_else(|p| p.into_inner()) = cfg;
    }

    /// Logs `msg` at warning level unless the same message was logged for `key` already.
    pub fn warn_once(&self, key: &Key, msg: String) {
        let mut w = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if w.get(key) != Some(&msg) {
            log::warn!("{msg}");
            w.insert(key.clone(), msg);
        }
    }

    fn clear_warning(&self, key: &Key) {
        self.warned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    fn client(&self, host: &str, port: u16) -> Result<Arc<VaultClient>, VaultError> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(&(host.to_owned(), port)) {
            return Ok(c.clone());
        }
        let cfg = self.config();
        let tls = self.tls_config()?;
        let server = crate::vault::ServerAddress {
            host: host.to_owned(),
            port,
        };
        let limits = Limits {
            connect_timeout: Duration::from_secs(2),
            request_timeout: cfg.request_timeout,
            // One attempt: the credmon's own per-credential backoff retries.
            retry_budget: Duration::ZERO,
            ..Limits::default()
        };
        let client = Arc::new(auth::client(server, None, Trust::Shared(tls), limits)?);
        clients.insert((host.to_owned(), port), client.clone());
        Ok(client)
    }

    /// The TLS trust for Vault (built once, then shared); building it early
    /// keeps the first request after a SIGHUP fast.
    pub fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, VaultError> {
        let mut t = self.tls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = &*t {
            return Ok(t.clone());
        }
        let cfg = self.config();
        let made = tls::client_config_for(cfg.cafile.clone(), cfg.capath.clone())?;
        *t = Some(made.clone());
        Ok(made)
    }

    fn paused_until(&self, host: &str, port: u16) -> Option<Instant> {
        let p = self.paused.lock().unwrap_or_else(|p| p.into_inner());
        p.get(&(host.to_owned(), port))
            .copied()
            .filter(|t| *t > Instant::now())
    }

    fn pause(&self, host: &str, port: u16, d: Duration) {
        self.paused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((host.to_owned(), port), Instant::now() + d);
    }

    fn use_opts(&self) -> WriteOptions {
        WriteOptions {
            mode: 0o400,
            owner: self.owner,
            existing_owner: None,
            replace_symlink: true,
        }
    }

    fn top_opts(&self) -> WriteOptions {
        WriteOptions {
            mode: 0o600,
            owner: self.owner,
            existing_owner: None,
            replace_symlink: true,
        }
    }
}

/// A parsed `.top`.
pub struct Top {
    json: serde_json::Map<String, serde_json::Value>,
    vault_token: Option<VaultToken>,
    vault_url: String,
    scopes: Option<String>,
    audience: Option<String>,
}

/// A string, or a list of strings joined with commas.
fn string_field(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(a) => Some(
            a.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => None,
    }
}

/// Why a `.top` cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopError {
    /// The file is not a JSON object.
    #[error("not a JSON object")]
    NotJson,
    /// It has no `vault_url` string.
    #[error("no vault_url")]
    NoUrl,
    /// Its `vault_token` is not a token.
    #[error("vault_token is not a token")]
    BadToken,
}

/// Parses a `.top` (a JSON object with `vault_url` and, usually, `vault_token`).
pub fn parse_top(bytes: &[u8]) -> Result<Top, TopError> {
    let json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes).map_err(|_| TopError::NotJson)?;
    let vault_url = json
        .get("vault_url")
        .and_then(|v| v.as_str())
        .ok_or(TopError::NoUrl)?
        .to_owned();
    let vault_token = match json.get("vault_token") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .and_then(VaultToken::new)
                .ok_or(TopError::BadToken)?,
        ),
    };
    Ok(Top {
        scopes: string_field(json.get("scopes")),
        audience: string_field(json.get("audience")),
        json,
        vault_token,
        vault_url,
    })
}

/// `ctime` of a stat, nanoseconds since the epoch.
pub fn ctime_ns(st: &FileStat) -> i128 {
    i128::from(st.st_ctime) * 1_000_000_000 + i128::from(st.st_ctime_nsec)
}

/// `now` in nanoseconds since the epoch.
pub fn now_ns(now: SystemTime) -> i128 {
    now.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// The state of an existing `.use`; `None` when absent or not a regular file.
pub fn read_use(dir: &SafeDir, stem: &str) -> Option<UseState> {
    let name = format!("{stem}.use");
    match dir.read_trusted(&name, MAX_TOKEN_BYTES + 2, nix::unistd::geteuid().as_raw()) {
        Ok(Some((bytes, st))) => Some(UseState {
            ctime_ns: ctime_ns(&st),
            exp: BearerToken::from_bytes(&bytes)
                .ok()
                .and_then(|t| t.claims().exp),
        }),
        _ => None,
    }
}

/// Reads and checks a `.top`: regular, single link, at most 64 KiB. `Ok(None)` when absent.
fn read_top(dir: &SafeDir, stem: &str) -> Result<Option<(Top, FileStat)>, RefreshError> {
    match dir.read_trusted(
        &format!("{stem}.top"),
        MAX_TOP_BYTES,
        nix::unistd::geteuid().as_raw(),
    ) {
        Ok(None) => Ok(None),
        Ok(Some((bytes, st))) => parse_top(&bytes).map(|t| Some((t, st))).map_err(|why| {
            RefreshError::wait(format!(
                "{}: {why}",
                dir.path().join(format!("{stem}.top")).display()
            ))
        }),
        Err(e) => Err(RefreshError::wait(e.to_string())),
    }
}

/// Runs one job. With `defer_sync`, a new `.use` is renamed into place
/// without syncing its directory; the caller syncs a batch at once.
///
/// A panic (a bug; no input should cause one) fails only this credential: it
/// is caught here and the worker goes on with the next job. This is why the
/// release profile unwinds instead of aborting.
pub fn process(ctx: &Ctx, key: &Key, task: &Task, defer_sync: bool) -> Outcome {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        process_one(ctx, key, task, defer_sync)
    }))
    .unwrap_or_else(|_| {
        log::error!(
            "internal error while refreshing {key} (a bug: please report it); keeping its old .use, will retry"
        );
        Err(RefreshError::retry("internal", "internal error".to_owned()))
    })
}

fn process_one(ctx: &Ctx, key: &Key, task: &Task, defer_sync: bool) -> Outcome {
    let cfg = ctx.config();
    let root = SafeDir::open(&cfg.cred_dir).map_err(|e| {
        log::error!("{e}");
        RefreshError::retry("file", e.to_string())
    })?;
    if let Task::Provision(server) = task {
        match provision(ctx, &cfg, &root, key, server) {
            Ok(true) => {}
            Ok(false) => return Ok(Done::Nothing),
            Err(e) => {
                ctx.warn_once(key, format!("cannot provision {key}: {e}"));
                return Err(e);
            }
        }
    }
    let udir = match root.open_child(&key.user) {
        Ok(d) => d,
        Err(FileError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Done::Nothing);
        }
        Err(e) => {
            let msg = format!("skipping user {}: {e}", key.user);
            ctx.warn_once(key, msg.clone());
            return Err(RefreshError::wait(msg));
        }
    };
    let (top, top_st) = match read_top(&udir, &key.stem) {
        Ok(Some(t)) => t,
        Ok(None) => return Ok(Done::Nothing),
        Err(e) => {
            ctx.warn_once(key, format!("skipping credential {key}: {e}"));
            return Err(e);
        }
    };
    let now = SystemTime::now();
    let reason = policy::should_renew(
        read_use(&udir, &key.stem),
        ctime_ns(&top_st),
        now_ns(now),
        cfg.minimum,
        cfg.refresh,
    );
    let Some(reason) = reason else {
        return Ok(Done::Nothing);
    };
    let job = Job {
        ctx,
        cfg: &cfg,
        udir: &udir,
        key,
        defer_sync,
    };
    let outcome = job.refresh(top, reason);
    // The credd may have replaced the .top while we were asking Vault: the
    // new .use would then look newer than it and hide the change.
    let replaced = matches!(udir.stat(&format!("{}.top", key.stem)), Ok(Some(st))
        if ctime_ns(&st) != ctime_ns(&top_st));
    if replaced && matches!(outcome, Ok(Done::Refreshed(..))) {
        log::debug!("{key}.top was replaced during the refresh; refreshing again");
        if let Ok(Some((top, _))) = read_top(&udir, &key.stem) {
            return job.refresh(top, Renew::TopNewer);
        }
    }
    outcome
}

/// Removes a credential's `.top` and `.use` ([`RefreshError::Remove`]).
pub fn remove_credential(ctx: &Ctx, key: &Key) {
    let root = match SafeDir::open(&ctx.config().cred_dir) {
        Ok(d) => d,
        Err(e) => {
            log::error!("{e}");
            return;
        }
    };
    match root.open_child(&key.user) {
        Ok(udir) => remove_cred(&udir, &key.stem),
        Err(e) => log::error!("cannot remove {key}: {e}"),
    }
}

/// One refresh in progress.
struct Job<'a> {
    ctx: &'a Ctx,
    cfg: &'a Config,
    udir: &'a SafeDir,
    key: &'a Key,
    defer_sync: bool,
}

impl Job<'_> {
    fn refresh(&self, top: Top, reason: Renew) -> Outcome {
        let (ctx, cfg, key) = (self.ctx, self.cfg, self.key);
        let target =
            policy::check_vault_url(&top.vault_url, &cfg.allowed_ports, &cfg.trusted_hosts)
                .map_err(|why| {
                    let msg = format!("skipping credential {key}: {why}");
                    ctx.warn_once(key, msg.clone());
                    RefreshError::wait(msg)
                })?;
        let (vault_token, token_stem) = self.vault_token(&top)?;
        if let Some(until) = ctx.paused_until(&target.host, target.port) {
            return Err(RefreshError::Retry {
                cause: "rate_limited",
                at_least: Some(until.saturating_duration_since(Instant::now())),
                msg: format!("requests to {}:{} are paused", target.host, target.port),
            });
        }
        let client = ctx.client(&target.host, target.port).map_err(|e| {
            ctx.warn_once(key, format!("cannot refresh {key}: {e}"));
            RefreshError::retry(vault_cause(&e), e.to_string())
        })?;
        let query = policy::bearer_query(
            &target.path,
            cfg.minimum,
            top.scopes.as_deref(),
            top.audience.as_deref(),
        );
        log::debug!("refreshing {key} ({reason:?})");
        let first = client
            .read_bearer(&vault_token, &target.path, &query)
            .map_err(|e| {
                if e.is_permission_denied() {
                    RefreshError::Relogin { msg: e.to_string() }
                } else {
                    self.failed(&target, &e)
                }
            });
        match first {
            Ok(bearer) => self.write_use(&bearer, reason.label()),
            Err(RefreshError::Relogin { msg }) => match keytab_for(cfg, &key.user) {
                Some(source) => self.relogin_and_refresh(
                    &target,
                    &token_stem,
                    &source,
                    &query,
                    &client,
                    reason.label(),
                ),
                None => {
                    log::warn!(
                        "Vault refused the token of {key} ({msg}); its Vault token expired or was revoked and {} has no keytab, so {key}.top and .use were removed (the user must submit again)",
                        key.user
                    );
                    Err(RefreshError::Remove {
                        cause: "permission_denied",
                        msg,
                    })
                }
            },
            Err(e) => Err(e),
        }
    }

    /// The Vault token: the credential's own, else its parent's (handles).
    fn vault_token(&self, top: &Top) -> Result<(VaultToken, String), RefreshError> {
        let key = self.key;
        if let Some(t) = &top.vault_token {
            return Ok((t.clone(), key.stem.clone()));
        }
        let parent = policy::parent_stem(&key.stem).map(str::to_owned);
        let found = match &parent {
            Some(p) => read_top(self.udir, p),
            None => Ok(None),
        };
        match (found, parent) {
            (
                Ok(Some((
                    Top {
                        vault_token: Some(t),
                        ..
                    },
                    _,
                ))),
                Some(p),
            ) => Ok((t, p)),
            (Ok(None), Some(p)) => {
                let msg = format!(
                    "credential {key} has no vault_token and its parent {}/{p}.top is gone; removing {key}",
                    key.user
                );
                log::warn!("{msg}");
                Err(RefreshError::Remove {
                    cause: "parent_gone",
                    msg,
                })
            }
            (Err(why), _) => {
                let msg = format!("skipping credential {key}: parent: {why}");
                self.ctx.warn_once(key, msg.clone());
                Err(RefreshError::wait(msg))
            }
            _ => {
                let msg =
                    format!("skipping credential {key}: no vault_token in it or a parent .top");
                self.ctx.warn_once(key, msg.clone());
                Err(RefreshError::wait(msg))
            }
        }
    }

    fn failed(&self, target: &VaultTarget, e: &VaultError) -> RefreshError {
        if e.status() == Some(429) {
            let pause = Duration::from_secs(30);
            self.ctx.pause(&target.host, target.port, pause);
            log::warn!(
                "Vault at {}:{} asks us to slow down (429); pausing requests to it for {} s",
                target.host,
                target.port,
                pause.as_secs()
            );
            return RefreshError::Retry {
                cause: "rate_limited",
                at_least: Some(pause),
                msg: e.to_string(),
            };
        }
        log::warn!(
            "failed to refresh {}: {e}; keeping the old .use, will retry",
            self.key
        );
        RefreshError::retry(vault_cause(e), e.to_string())
    }

    fn write_use(&self, bearer: &BearerToken, cause: &'static str) -> Outcome {
        let (ctx, key) = (self.ctx, self.key);
        let now = token::unix_seconds(SystemTime::now());
        let current = read_use(self.udir, &key.stem).and_then(|u| u.exp);
        match accept::decide(bearer.claims(), current, now, ctx.config().minimum) {
            accept::Decision::Replace(Some(warning)) => {
                ctx.warn_once(key, format!("{key}: {warning}"));
            }
            accept::Decision::Replace(None) => {}
            accept::Decision::KeepCurrent(why) => {
                ctx.warn_once(key, format!("{key}: {why}"));
                return Err(RefreshError::retry("token", why.to_string()));
            }
            accept::Decision::Reject(why) => {
                log::warn!(
                    "Vault handed out a bearer token for {key} that cannot be used: {why}; keeping the old .use, will retry"
                );
                return Err(RefreshError::retry("token", why.to_string()));
            }
        }
        let name = format!("{}.use", key.stem);
        let written = if self.defer_sync {
            self.udir
                .write_atomic_deferred(&name, &bearer.file_contents(), ctx.use_opts())
        } else {
            self.udir
                .write_atomic(&name, &bearer.file_contents(), ctx.use_opts())
        };
        match written {
            Ok(()) => {
                ctx.clear_warning(key);
                let exp = bearer.claims().exp;
                log::info!(
                    "refreshed {key}: token expires {}",
                    exp.map(|e| format!(
                        "{} (in {})",
                        token::format_utc(e),
                        token::format_remaining(e - token::unix_seconds(SystemTime::now()))
                    ))
                    .unwrap_or_else(|| "never (no exp claim)".into())
                );
                Ok(Done::Refreshed(exp, cause))
            }
            Err(e) => {
                log::error!("cannot write the token of {key}: {e}");
                Err(RefreshError::retry("file", e.to_string()))
            }
        }
    }

    fn relogin_and_refresh(
        &self,
        target: &VaultTarget,
        token_stem: &str,
        source: &CredentialSource,
        query: &[(&str, String)],
        client: &VaultClient,
        cause: &'static str,
    ) -> Outcome {
        let key = self.key;
        log::info!(
            "the Vault token of {}/{token_stem} is no longer accepted; logging in again as {}",
            key.user,
            source.principal().unwrap_or_default()
        );
        // Issuer and role of the stored credential: its vault_url says them.
        let names = auth::resolve(auth::Source::Stored {
            path: &target.path,
            service: token_stem,
        });
        let token = login(client, &target.host, source, &names).map_err(|e| {
            log::warn!("cannot log in again for {key}: {e}; will retry");
            e
        })?;
        store_vault_token(self.ctx, self.udir, token_stem, &token).map_err(|e| {
            log::error!(
                "cannot store the new Vault token of {}/{token_stem}: {e}",
                key.user
            );
            e
        })?;
        log::info!("stored a new Vault token in {}/{token_stem}.top", key.user);
        match client.read_bearer(&token, &target.path, query) {
            Ok(bearer) => self.write_use(&bearer, cause),
            Err(e) => Err(self.failed(target, &e)),
        }
    }
}

/// Removes a credential's `.top` and `.use` (the entries, never what a link points to).
fn remove_cred(udir: &SafeDir, stem: &str) {
    for ext in ["use", "top"] {
        if let Err(e) = udir.remove(&format!("{stem}.{ext}")) {
            log::error!("{e}");
        }
    }
}

/// `<keytab dir>/<user>.keytab` as a login source when it exists and passes
/// the one keytab check (regular file, no symbolic link, private, root's when
/// we are root); a keytab that fails it is logged and ignored.
pub fn keytab_for(cfg: &Config, user: &str) -> Option<CredentialSource> {
    let dir = cfg.keytab_dir.as_ref()?;
    let path = dir.join(format!("{user}.keytab"));
    let root = nix::unistd::geteuid().is_root();
    match CredentialSource::keytab(&path, None, None, root) {
        Ok(source) => Some(source),
        Err(KrbError::KeytabMissing(_)) => None,
        Err(e) => {
            log::warn!("ignoring {}: {e}", path.display());
            None
        }
    }
}

/// Logs in to Vault at `host` with a robot's keytab as `names`, for a 28-day token.
fn login(
    client: &VaultClient,
    host: &str,
    source: &CredentialSource,
    names: &Names,
) -> Result<VaultToken, RefreshError> {
    let target = LoginTarget {
        names,
        service_host: host,
        ttl: auth::STORED_TTL,
    };
    auth::login(client, source, &target)
        .map(|s| s.token)
        .map_err(|e| RefreshError::retry("login", e.to_string()))
}

/// Writes `token` into `<stem>.top` (keeping its other fields) as root 0600.
fn store_vault_token(
    ctx: &Ctx,
    udir: &SafeDir,
    stem: &str,
    token: &VaultToken,
) -> Result<(), RefreshError> {
    let (mut top, _) = read_top(udir, stem)?
        .ok_or_else(|| RefreshError::retry("file", format!("{stem}.top is gone")))?;
    top.json.insert(
        "vault_token".into(),
        serde_json::Value::String(token.expose().to_owned()),
    );
    let mut bytes =
        serde_json::to_vec(&top.json).map_err(|e| RefreshError::retry("file", e.to_string()))?;
    bytes.push(b'\n');
    udir.write_atomic(&format!("{stem}.top"), &bytes, ctx.top_opts())
        .map_err(|e| RefreshError::retry("file", e.to_string()))
}

/// Creates `<user>/<service>.top` for a keytab user when missing; `Ok(true)` when created.
fn provision(
    ctx: &Ctx,
    cfg: &Config,
    root: &SafeDir,
    key: &Key,
    server: &str,
) -> Result<bool, RefreshError> {
    let fail = |e: String| RefreshError::retry("provision", e);
    let source = keytab_for(cfg, &key.user).ok_or_else(|| fail("no usable keytab".into()))?;
    let udir = match root.open_child(&key.user) {
        Ok(d) => d,
        Err(FileError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => root
            .create_dir(&key.user, 0o2700, condor_owner())
            .map_err(|e| fail(e.to_string()))?,
        Err(e) => return Err(fail(e.to_string())),
    };
    if udir
        .stat(&format!("{}.top", key.stem))
        .map_err(|e| fail(e.to_string()))?
        .is_some()
    {
        return Ok(false);
    }
    let addr = crate::vault::ServerAddress::parse(server).map_err(|e| fail(e.to_string()))?;
    let principal = source.principal().unwrap_or_default();
    let credkey = principal.split('@').next().unwrap_or(principal);
    let names = auth::resolve(auth::Source::Service(&key.stem));
    let url = format!(
        "https://{}:{}/v1/{}",
        addr.host,
        addr.port,
        names.secret_path(false, credkey)
    );
    policy::check_vault_url(&url, &cfg.allowed_ports, &cfg.trusted_hosts).map_err(fail)?;
    let client = ctx
        .client(&addr.host, addr.port)
        .map_err(|e| fail(e.to_string()))?;
    let token = login(&client, &addr.host, &source, &names).map_err(|e| fail(e.to_string()))?;
    let json = serde_json::json!({"vault_token": token.expose(), "vault_url": url});
    let mut bytes = serde_json::to_vec(&json).map_err(|e| fail(e.to_string()))?;
    bytes.push(b'\n');
    udir.write_atomic(&format!("{}.top", key.stem), &bytes, ctx.top_opts())
        .map_err(|e| fail(e.to_string()))?;
    log::info!("provisioned {key}.top for keytab principal {principal}");
    Ok(true)
}

/// Owner for user directories we create: the `condor` user, as the credd would, else root.
fn condor_owner() -> Option<(u32, u32)> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    match nix::unistd::User::from_name("condor") {
        Ok(Some(u)) => Some((u.uid.as_raw(), u.gid.as_raw())),
        _ => Some((0, 0)),
    }
}

#[cfg(test)]
mod tests;
