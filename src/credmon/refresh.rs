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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new `.use` was written: the token's `exp` and why it was renewed
    /// (the `cause` label of the metrics, [`Renew::label`]).
    Refreshed(Option<i64>, &'static str),
    /// Nothing to do: the `.use` is fresh or the `.top` is gone.
    Nothing,
    /// Vault refused the token (or the parent `.top` is gone) and the credential
    /// was removed; the `cause` label of the failure metrics.
    Removed(&'static str),
    /// The `.top` is unusable (logged once); retried only when it changes.
    Unusable,
    /// A failure worth retrying later (logged); the `cause` label of the metrics.
    Failed(&'static str),
    /// Vault asked us to slow down (429); retry after this long.
    RateLimited(Duration),
}

impl Outcome {
    /// The `cause` label when this is a failed refresh; `None` for successes and no-ops.
    pub fn failure_cause(&self) -> Option<&'static str> {
        match self {
            Outcome::Refreshed(..) | Outcome::Nothing => None,
            Outcome::Removed(cause) | Outcome::Failed(cause) => Some(cause),
            Outcome::Unusable => Some("unusable"),
            Outcome::RateLimited(_) => Some("rate_limited"),
        }
    }
}

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

/// Parses a `.top` (a JSON object with `vault_url` and, usually, `vault_token`).
pub fn parse_top(bytes: &[u8]) -> Result<Top, String> {
    let json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes).map_err(|_| "not a JSON object".to_owned())?;
    let vault_url = json
        .get("vault_url")
        .and_then(|v| v.as_str())
        .ok_or_else(|| "no vault_url".to_owned())?
        .to_owned();
    let vault_token = match json.get("vault_token") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .and_then(VaultToken::new)
                .ok_or_else(|| "vault_token is not a token".to_owned())?,
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
fn read_top(dir: &SafeDir, stem: &str) -> Result<Option<(Top, FileStat)>, String> {
    match dir.read_trusted(
        &format!("{stem}.top"),
        MAX_TOP_BYTES,
        nix::unistd::geteuid().as_raw(),
    ) {
        Ok(None) => Ok(None),
        Ok(Some((bytes, st))) => parse_top(&bytes).map(|t| Some((t, st))).map_err(|why| {
            format!(
                "{}: {why}",
                dir.path().join(format!("{stem}.top")).display()
            )
        }),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs one job. A panic (a bug; no input should cause one) fails only this
/// credential: it is caught here and the worker goes on with the next job.
/// This is why the release profile unwinds instead of aborting.
pub fn process(ctx: &Ctx, key: &Key, task: &Task) -> Outcome {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| process_one(ctx, key, task))) {
        Ok(outcome) => outcome,
        Err(_) => {
            log::error!(
                "internal error while refreshing {key} (a bug: please report it); keeping its old .use, will retry"
            );
            Outcome::Failed("internal")
        }
    }
}

fn process_one(ctx: &Ctx, key: &Key, task: &Task) -> Outcome {
    let cfg = ctx.config();
    let root = match SafeDir::open(&cfg.cred_dir) {
        Ok(d) => d,
        Err(e) => {
            log::error!("{e}");
            return Outcome::Failed("file");
        }
    };
    if let Task::Provision(server) = task {
        match provision(ctx, &cfg, &root, key, server) {
            Ok(true) => {}
            Ok(false) => return Outcome::Nothing,
            Err(why) => {
                ctx.warn_once(key, format!("cannot provision {key}: {why}"));
                return Outcome::Failed("provision");
            }
        }
    }
    let udir = match root.open_child(&key.user) {
        Ok(d) => d,
        Err(FileError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Outcome::Nothing;
        }
        Err(e) => {
            ctx.warn_once(key, format!("skipping user {}: {e}", key.user));
            return Outcome::Unusable;
        }
    };
    let (top, top_st) = match read_top(&udir, &key.stem) {
        Ok(Some(t)) => t,
        Ok(None) => return Outcome::Nothing,
        Err(why) => {
            ctx.warn_once(key, format!("skipping credential {key}: {why}"));
            return Outcome::Unusable;
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
        return Outcome::Nothing;
    };
    let outcome = refresh(ctx, &cfg, &udir, key, top, reason);
    // The credd may have replaced the .top while we were asking Vault: the
    // new .use would then look newer than it and hide the change.
    let replaced = matches!(udir.stat(&format!("{}.top", key.stem)), Ok(Some(st))
        if ctime_ns(&st) != ctime_ns(&top_st));
    if replaced && matches!(outcome, Outcome::Refreshed(..)) {
        log::debug!("{key}.top was replaced during the refresh; refreshing again");
        if let Ok(Some((top, _))) = read_top(&udir, &key.stem) {
            return refresh(ctx, &cfg, &udir, key, top, Renew::TopNewer);
        }
    }
    outcome
}

fn refresh(ctx: &Ctx, cfg: &Config, udir: &SafeDir, key: &Key, top: Top, reason: Renew) -> Outcome {
    let target =
        match policy::check_vault_url(&top.vault_url, &cfg.allowed_ports, &cfg.trusted_hosts) {
            Ok(t) => t,
            Err(why) => {
                ctx.warn_once(key, format!("skipping credential {key}: {why}"));
                return Outcome::Unusable;
            }
        };
    // The Vault token: the credential's own, else its parent's (handles).
    let (vault_token, token_stem) = match &top.vault_token {
        Some(t) => (t.clone(), key.stem.clone()),
        None => {
            let parent = policy::parent_stem(&key.stem).map(str::to_owned);
            let found = match &parent {
                Some(p) => read_top(udir, p),
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
                ) => (t, p),
                (Ok(None), Some(p)) => {
                    log::warn!(
                        "credential {key} has no vault_token and its parent {}/{p}.top is gone; removing {key}",
                        key.user
                    );
                    remove_cred(udir, &key.stem);
                    return Outcome::Removed("parent_gone");
                }
                (Err(why), _) => {
                    ctx.warn_once(key, format!("skipping credential {key}: parent: {why}"));
                    return Outcome::Unusable;
                }
                _ => {
                    ctx.warn_once(
                        key,
                        format!("skipping credential {key}: no vault_token in it or a parent .top"),
                    );
                    return Outcome::Unusable;
                }
            }
        }
    };
    if let Some(until) = ctx.paused_until(&target.host, target.port) {
        return Outcome::RateLimited(until.saturating_duration_since(Instant::now()));
    }
    let client = match ctx.client(&target.host, target.port) {
        Ok(c) => c,
        Err(e) => {
            ctx.warn_once(key, format!("cannot refresh {key}: {e}"));
            return Outcome::Failed(vault_cause(&e));
        }
    };
    let query = policy::bearer_query(
        &target.path,
        cfg.minimum,
        top.scopes.as_deref(),
        top.audience.as_deref(),
    );
    log::debug!("refreshing {key} ({reason:?})");
    match client.read_bearer(&vault_token, &target.path, &query) {
        Ok(bearer) => write_use(ctx, udir, key, &bearer, reason.label()),
        Err(e) if e.is_permission_denied() => match keytab_for(cfg, &key.user) {
            Some(source) => relogin_and_refresh(
                ctx,
                udir,
                key,
                &target,
                &token_stem,
                &source,
                &query,
                &client,
                reason.label(),
            ),
            None => {
                log::warn!(
                    "Vault refused the token of {key} ({e}); its Vault token expired or was revoked and {} has no keytab, so {key}.top and .use were removed (the user must submit again)",
                    key.user
                );
                remove_cred(udir, &key.stem);
                Outcome::Removed("permission_denied")
            }
        },
        Err(e) => failed(ctx, key, &target, &e),
    }
}

fn failed(ctx: &Ctx, key: &Key, target: &VaultTarget, e: &VaultError) -> Outcome {
    if e.status() == Some(429) {
        let pause = Duration::from_secs(30);
        ctx.pause(&target.host, target.port, pause);
        log::warn!(
            "Vault at {}:{} asks us to slow down (429); pausing requests to it for {} s",
            target.host,
            target.port,
            pause.as_secs()
        );
        return Outcome::RateLimited(pause);
    }
    log::warn!("failed to refresh {key}: {e}; keeping the old .use, will retry");
    Outcome::Failed(vault_cause(e))
}

fn write_use(
    ctx: &Ctx,
    udir: &SafeDir,
    key: &Key,
    bearer: &BearerToken,
    cause: &'static str,
) -> Outcome {
    let now = token::unix_seconds(SystemTime::now());
    let current = read_use(udir, &key.stem).and_then(|u| u.exp);
    match accept::decide(bearer.claims(), current, now, ctx.config().minimum) {
        accept::Decision::Replace(Some(warning)) => ctx.warn_once(key, format!("{key}: {warning}")),
        accept::Decision::Replace(None) => {}
        accept::Decision::KeepCurrent(why) => {
            ctx.warn_once(key, format!("{key}: {why}"));
            return Outcome::Failed("token");
        }
        accept::Decision::Reject(why) => {
            log::warn!(
                "Vault handed out a bearer token for {key} that cannot be used: {why}; keeping the old .use, will retry"
            );
            return Outcome::Failed("token");
        }
    }
    match udir.write_atomic(
        &format!("{}.use", key.stem),
        &bearer.file_contents(),
        ctx.use_opts(),
    ) {
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
            Outcome::Refreshed(exp, cause)
        }
        Err(e) => {
            log::error!("cannot write the token of {key}: {e}");
            Outcome::Failed("file")
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
) -> Result<VaultToken, String> {
    let target = LoginTarget {
        names,
        service_host: host,
        ttl: auth::STORED_TTL,
    };
    auth::login(client, source, &target)
        .map(|s| s.token)
        .map_err(|e| e.to_string())
}

/// Writes `token` into `<stem>.top` (keeping its other fields) as root 0600.
fn store_vault_token(
    ctx: &Ctx,
    udir: &SafeDir,
    stem: &str,
    token: &VaultToken,
) -> Result<(), String> {
    let (mut top, _) = read_top(udir, stem)?.ok_or_else(|| format!("{stem}.top is gone"))?;
    top.json.insert(
        "vault_token".into(),
        serde_json::Value::String(token.expose().to_owned()),
    );
    let mut bytes = serde_json::to_vec(&top.json).map_err(|e| e.to_string())?;
    bytes.push(b'\n');
    udir.write_atomic(&format!("{stem}.top"), &bytes, ctx.top_opts())
        .map_err(|e| e.to_string())
}

#[allow(clippy::too_many_arguments)]
fn relogin_and_refresh(
    ctx: &Ctx,
    udir: &SafeDir,
    key: &Key,
    target: &VaultTarget,
    token_stem: &str,
    source: &CredentialSource,
    query: &[(&str, String)],
    client: &VaultClient,
    cause: &'static str,
) -> Outcome {
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
    let token = match login(client, &target.host, source, &names) {
        Ok(t) => t,
        Err(why) => {
            log::warn!("cannot log in again for {key}: {why}; will retry");
            return Outcome::Failed("login");
        }
    };
    if let Err(why) = store_vault_token(ctx, udir, token_stem, &token) {
        log::error!(
            "cannot store the new Vault token of {}/{token_stem}: {why}",
            key.user
        );
        return Outcome::Failed("file");
    }
    log::info!("stored a new Vault token in {}/{token_stem}.top", key.user);
    match client.read_bearer(&token, &target.path, query) {
        Ok(bearer) => write_use(ctx, udir, key, &bearer, cause),
        Err(e) => failed(ctx, key, target, &e),
    }
}

/// Creates `<user>/<service>.top` for a keytab user when missing; `Ok(true)` when created.
fn provision(
    ctx: &Ctx,
    cfg: &Config,
    root: &SafeDir,
    key: &Key,
    server: &str,
) -> Result<bool, String> {
    let source = keytab_for(cfg, &key.user).ok_or("no usable keytab")?;
    let udir = match root.open_child(&key.user) {
        Ok(d) => d,
        Err(FileError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => root
            .create_dir(&key.user, 0o2700, condor_owner())
            .map_err(|e| e.to_string())?,
        Err(e) => return Err(e.to_string()),
    };
    if udir
        .stat(&format!("{}.top", key.stem))
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Ok(false);
    }
    let addr = crate::vault::ServerAddress::parse(server).map_err(|e| e.to_string())?;
    let principal = source.principal().unwrap_or_default();
    let credkey = principal.split('@').next().unwrap_or(principal);
    let names = auth::resolve(auth::Source::Service(&key.stem));
    let url = format!(
        "https://{}:{}/v1/{}",
        addr.host,
        addr.port,
        names.secret_path(false, credkey)
    );
    policy::check_vault_url(&url, &cfg.allowed_ports, &cfg.trusted_hosts)?;
    let client = ctx
        .client(&addr.host, addr.port)
        .map_err(|e| e.to_string())?;
    let token = login(&client, &addr.host, &source, &names)?;
    let json = serde_json::json!({"vault_token": token.expose(), "vault_url": url});
    let mut bytes = serde_json::to_vec(&json).map_err(|e| e.to_string())?;
    bytes.push(b'\n');
    udir.write_atomic(&format!("{}.top", key.stem), &bytes, ctx.top_opts())
        .map_err(|e| e.to_string())?;
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
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn top_parsing() {
        let t = parse_top(br#"{"vault_token":"hvs.x","vault_url":"https://v:8200/v1/a","scopes":"a,b","audience":["x","y"],"other":1}"#).unwrap();
        assert_eq!(t.vault_token.unwrap().expose(), "hvs.x");
        assert_eq!(t.scopes.as_deref(), Some("a,b"));
        assert_eq!(t.audience.as_deref(), Some("x,y"));
        assert!(t.json.contains_key("other"));
        assert!(
            parse_top(br#"{"vault_url":"https://v:8200/v1/a"}"#)
                .unwrap()
                .vault_token
                .is_none()
        );
        for bad in [
            &b"[]"[..],
            b"{}",
            b"not json",
            br#"{"vault_url":"u","vault_token":""}"#,
        ] {
            assert!(parse_top(bad).is_err());
        }
    }
}
