//! One credential, end to end, in two steps. [`fetch`]: read the `.top`,
//! decide, ask Vault for a bearer token and accept it (on "permission
//! denied" log in again with the user's keytab (robots) or remove the
//! credential, as HTCondor does). Then the daemon writes the token as a
//! [`Write`]: staged beside the `.use`, made durable and renamed in a batch
//! with others ([`crate::files::commit_batch`]), and only then reported.
//! Also creates `.top` files for keytab users (`ROBOT_CREDMON_PROVISION`).

mod ctx;
mod error;
pub mod keytab;
mod top;

pub use ctx::Ctx;
use error::vault_cause;
pub use error::{Outcome, RefreshError};
pub use keytab::keytab_for;
use keytab::provision;
pub use top::{Top, TopError, parse_top};
use top::{read_top, store_vault_token};

use super::config::Config;
use super::policy::{self, Renew, UseState, VaultTarget};
use crate::files::{FileError, SafeDir, Staged};
use crate::kerberos::KrbError;
use crate::status::login::{VaultCredential, credmon_message};
use crate::token::{self, BearerToken, MAX_TOKEN_BYTES, accept};
use crate::vault::auth::{self, AuthError, Login, Oidc, SessionPolicy, Step};
use crate::vault::{Api, VaultError, VaultToken};
use nix::sys::stat::FileStat;
use std::sync::Arc;
use std::time::SystemTime;

/// A credential: its user (directory name) and file stem. Cheap to clone
/// and small (one pointer: the scheduler's tables hold a key per queued
/// credential, some twice); the names inside are shared with the scan table.
///
/// Keys compare by a hash of the names first, then by the names: the
/// scheduler's B-trees compare keys at every step, and a hash read from the
/// key's own allocation costs one memory access where two names cost four.
/// The order is fixed (no random seed), so replayed simulations repeat.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(Arc<Names>);

/// The names of a credential ([`Key`] dereferences to them).
#[derive(Debug)]
pub struct Names {
    hash: u64,
    /// The user (directory name).
    pub user: Arc<str>,
    /// The file stem, `<service>` or `<service>_<handle>`.
    pub stem: Arc<str>,
}

impl Names {
    fn order(&self) -> (u64, &str, &str) {
        (self.hash, &self.user, &self.stem)
    }
}

impl PartialEq for Names {
    fn eq(&self, other: &Self) -> bool {
        self.order() == other.order()
    }
}

impl Eq for Names {}

impl PartialOrd for Names {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Names {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order().cmp(&other.order())
    }
}

impl std::hash::Hash for Names {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// FNV-1a of `user`, a separator no name contains, and `stem`.
fn names_hash(user: &str, stem: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in user.bytes().chain([b'/']).chain(stem.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl std::ops::Deref for Key {
    type Target = Names;

    fn deref(&self) -> &Names {
        &self.0
    }
}

impl Key {
    /// The key of `user`'s credential `stem`.
    pub fn new(user: &str, stem: &str) -> Self {
        Key::of(user.into(), stem.into())
    }

    /// The key of `user`'s credential `stem`, sharing the names.
    pub fn of(user: Arc<str>, stem: Arc<str>) -> Self {
        let hash = names_hash(&user, &stem);
        Key(Arc::new(Names { hash, user, stem }))
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.user, self.stem)
    }
}

/// The kind of work for a key (the default: refresh).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Task {
    /// Renew the `.use` if the rules say so.
    #[default]
    Refresh,
    /// Create the `.top` for a keytab user on this Vault server (`host:port`), then refresh.
    /// (An `Arc<String>`: one pointer, so that a queued job stays small.)
    Provision(Arc<String>),
}

/// How a job that worked ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// A new `.use` was written: the token's `exp` and why it was renewed
    /// (the `cause` label of the metrics, [`Renew::label`]).
    Refreshed(Option<i64>, &'static str),
    /// Nothing to do: the `.use` is fresh or the `.top` is gone.
    Nothing,
    /// Vault handed back the very token in place: by Vault's clock it still
    /// has the minimum left (this host's clock is ahead). Nothing is
    /// written; look again after this long.
    Later(std::time::Duration),
}

/// How a job ended, and the Vault server (`host:port`) it talked to when
/// it got that far: the daemon tracks each server's health.
#[derive(Debug, Clone)]
pub struct Ran {
    /// The result.
    pub outcome: Outcome,
    /// The credential's Vault server, once its `.top` was read.
    pub server: Option<Arc<str>>,
    /// The server answered (a token, or any HTTP status): unless the answer
    /// says the server is failing (429, 502-504), it is up.
    pub answered: bool,
    /// The write failed for the file system's own reasons (full, read-only,
    /// I/O errors): the credential waits for the file system, not its backoff.
    pub disk_failing: bool,
    /// A keytab login was tried: `Some(true)` when the KDC gave a ticket,
    /// `Some(false)` when GSSAPI could not get one (no KDC, a stale key):
    /// the credential then waits for the KDC, which the next robot's
    /// successful login releases.
    pub kdc: Option<bool>,
}

impl Ran {
    /// A job that ended before talking to its server.
    pub fn local(outcome: Outcome) -> Self {
        Ran {
            outcome,
            server: None,
            answered: false,
            disk_failing: false,
            kdc: None,
        }
    }
}

/// Whether a file error is the file system's (full, over quota, read-only,
/// I/O errors) rather than one file's.
pub fn disk_trouble(e: &FileError) -> bool {
    let FileError::Io { source, .. } = e else {
        return false;
    };
    matches!(
        source.raw_os_error(),
        Some(nix::libc::ENOSPC | nix::libc::EDQUOT | nix::libc::EIO | nix::libc::EROFS)
    )
}

/// The first step's result: a token to write, or the job's end.
#[derive(Debug)]
pub enum Fetched {
    /// An accepted bearer token to write as the `.use`.
    Write(Box<Write>),
    /// Nothing to write.
    Done(Ran),
}

/// A bearer token accepted for a credential, to be written as its `.use`.
#[derive(Debug)]
pub struct Write {
    /// The user's directory.
    pub udir: SafeDir,
    /// The credential.
    pub key: Key,
    bearer: BearerToken,
    cause: &'static str,
    server: Option<Arc<str>>,
    kdc: Option<bool>,
}

impl Write {
    /// The `.use`'s name.
    pub fn name(&self) -> String {
        format!("{}.use", self.key.stem)
    }

    /// Writes the token to a temporary file beside the `.use` (not synced).
    pub fn stage(&self, ctx: &Ctx) -> Result<Staged, FileError> {
        self.udir
            .stage(&self.name(), &self.bearer.file_contents(), ctx.use_opts())
    }

    /// The job's end once the write was committed (or failed).
    pub fn finish(self, ctx: &Ctx, written: Result<(), FileError>) -> Ran {
        let key = &self.key;
        let outcome = match written {
            Ok(()) => {
                ctx.clear_warning(key);
                let exp = self.bearer.claims().exp;
                log::info!(
                    "refreshed {key}: token expires {}",
                    exp.map(|e| format!(
                        "{} (in {})",
                        token::format_utc(e),
                        token::format_remaining(e - token::unix_seconds(ctx.now()))
                    ))
                    .unwrap_or_else(|| "never (no exp claim)".into())
                );
                Ok(Done::Refreshed(exp, self.cause))
            }
            Err(e) => {
                log::error!("cannot write the token of {key}: {e}");
                Err(RefreshError::file(&e))
            }
        };
        Ran {
            disk_failing: outcome.as_ref().is_err_and(RefreshError::disk_trouble),
            outcome,
            server: self.server,
            answered: true,
            kdc: self.kdc,
        }
    }
}

/// `ctime` of a stat.
pub fn file_ctime(st: &FileStat) -> SystemTime {
    super::daemon::table::Ns::ctime(st).time()
}

/// The state of an existing `.use`; `None` when absent or not a regular file.
pub fn read_use(dir: &SafeDir, stem: &str, owner: u32) -> Option<UseState> {
    let name = format!("{stem}.use");
    match dir.read_trusted(&name, MAX_TOKEN_BYTES + 2, owner) {
        Ok(Some((bytes, st))) => Some(UseState {
            ctime: file_ctime(&st),
            exp: BearerToken::from_bytes(&bytes)
                .ok()
                .and_then(|t| t.claims().exp)
                .map(token::time_of),
        }),
        _ => None,
    }
}

/// The first step of a job: everything up to an accepted token (see the module).
///
/// A panic (a bug; no input should cause one) fails only this credential: it
/// is caught here and the worker goes on with the next job. This is why the
/// release profile unwinds instead of aborting.
///
/// `may_ask(server)` says whether this job may send its request to the
/// credential's Vault server (`host:port`): while the server is failing only
/// its probe may, and the others wait for it without asking.
pub fn fetch(ctx: &Ctx, key: &Key, task: &Task, may_ask: &dyn Fn(&str) -> bool) -> Fetched {
    crate::confine::test_escape();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fetch_one(ctx, key, task, may_ask)
    }))
        .unwrap_or_else(|_| {
            log::error!(
                "internal error while refreshing {key} (a bug: please report it); keeping its old .use, will retry"
            );
            Fetched::Done(Ran::local(Err(RefreshError::retry(
                "internal",
                "internal error".to_owned(),
            ))))
        })
}

/// Both steps for one job on its own (`--once` and tests): fetch, then a
/// batch of one write.
pub fn process(ctx: &Ctx, key: &Key, task: &Task) -> Ran {
    match fetch(ctx, key, task, &|_| true) {
        Fetched::Done(ran) => ran,
        Fetched::Write(w) => {
            let written = match (w.stage(ctx), SafeDir::open(&ctx.config().cred_dir)) {
                (Ok(staged), Ok(root)) => {
                    crate::files::commit_batch(&root, vec![(&w.udir, staged)])
                        .pop()
                        .unwrap_or(Ok(()))
                }
                (Ok(staged), Err(e)) => {
                    w.udir.discard(staged);
                    Err(e)
                }
                (Err(e), _) => Err(e),
            };
            w.finish(ctx, written)
        }
    }
}

/// The user's directory; `None` when it is gone (nothing to do).
fn open_user(ctx: &Ctx, root: &SafeDir, key: &Key) -> Result<Option<SafeDir>, RefreshError> {
    match root.open_child(&key.user) {
        Ok(d) => Ok(Some(d)),
        Err(FileError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => {
            let msg = format!("skipping user {}: {e}", key.user);
            ctx.warn_once(key, msg.clone());
            Err(RefreshError::wait(msg))
        }
    }
}

fn fetch_one(ctx: &Ctx, key: &Key, task: &Task, may_ask: &dyn Fn(&str) -> bool) -> Fetched {
    let cfg = ctx.config();
    let (udir, top, top_st) = match open_credential(ctx, &cfg, key, task) {
        Ok(Some(found)) => found,
        Ok(None) => return Fetched::Done(Ran::local(Ok(Done::Nothing))),
        Err(e) => return Fetched::Done(Ran::local(Err(e))),
    };
    let reason = policy::should_renew(
        read_use(&udir, &key.stem, ctx.euid()),
        file_ctime(&top_st),
        ctx.now(),
        cfg.minimum,
        cfg.refresh,
    );
    let Some(reason) = reason else {
        return Fetched::Done(Ran::local(Ok(Done::Nothing)));
    };
    let mut job = Job {
        ctx,
        cfg: &cfg,
        udir: &udir,
        key,
        may_ask,
        server: None,
        answered: std::cell::Cell::new(false),
        kdc: std::cell::Cell::new(None),
    };
    let mut got = job.refresh(top, reason);
    // The credd may have replaced the .top while we were asking Vault: a
    // token from the old one would look newer than the new .top and hide it.
    let replaced = matches!(udir.stat(&format!("{}.top", key.stem)), Ok(Some(st))
        if file_ctime(&st) != file_ctime(&top_st));
    if replaced && got.is_ok() {
        log::debug!("{key}.top was replaced during the refresh; refreshing again");
        if let Ok(Some((top, _))) = read_top(&udir, &key.stem, ctx.euid()) {
            got = job.refresh(top, Renew::TopNewer);
        }
    }
    let (server, kdc, answered) = (job.server.take(), job.kdc.get(), job.answered.get());
    fetched(key, udir, got, server, kdc, answered)
}

/// The credential's directory and `.top` (with its status), provisioned
/// first when the task says so; `None` when there is nothing to do (the
/// user's directory or the `.top` is gone, or provisioning found one).
fn open_credential(
    ctx: &Ctx,
    cfg: &Config,
    key: &Key,
    task: &Task,
) -> Result<Option<(SafeDir, Top, FileStat)>, RefreshError> {
    let root = SafeDir::open(&cfg.cred_dir).map_err(|e| {
        log::error!("{e}");
        RefreshError::retry("file", e.to_string())
    })?;
    if let Task::Provision(server) = task {
        match provision(ctx, cfg, &root, key, server) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => {
                ctx.warn_once(key, format!("cannot provision {key}: {e}"));
                return Err(e);
            }
        }
    }
    let Some(udir) = open_user(ctx, &root, key)? else {
        return Ok(None);
    };
    match read_top(&udir, &key.stem, ctx.euid()) {
        Ok(Some((top, st))) => Ok(Some((udir, top, st))),
        Ok(None) => Ok(None),
        Err(e) => {
            ctx.warn_once(key, format!("skipping credential {key}: {e}"));
            Err(e)
        }
    }
}

/// The first step's end: a token to write, the token in place handed
/// back, or a failure, with what the job learnt about the server and the KDC.
fn fetched(
    key: &Key,
    udir: SafeDir,
    got: Accepted,
    server: Option<Arc<str>>,
    kdc: Option<bool>,
    answered: bool,
) -> Fetched {
    match got {
        Ok(Got::Unchanged(after)) => {
            log::debug!(
                "{key}: Vault handed back the token in place (its clock says it still has the minimum); looking again in {} s",
                after.as_secs()
            );
            Fetched::Done(Ran {
                outcome: Ok(Done::Later(after)),
                server,
                answered: true,
                disk_failing: false,
                kdc,
            })
        }
        Ok(Got::Token(bearer, cause)) => Fetched::Write(Box::new(Write {
            udir,
            key: key.clone(),
            bearer: *bearer,
            cause,
            server,
            kdc,
        })),
        Err(e) => Fetched::Done(Ran {
            disk_failing: e.disk_trouble(),
            outcome: Err(e),
            server,
            answered,
            kdc,
        }),
    }
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
    /// Whether the job may ask a server now (see [`fetch`]).
    may_ask: &'a dyn Fn(&str) -> bool,
    /// The Vault server (`host:port`), once the `.top` named one that passed the checks.
    server: Option<Arc<str>>,
    /// The server answered a request (a token or any HTTP status).
    answered: std::cell::Cell<bool>,
    /// A keytab login got a ticket (`Some(true)`) or GSSAPI could not (`Some(false)`).
    kdc: std::cell::Cell<Option<bool>>,
}

/// An accepted bearer token and why it was renewed (the metrics' `cause`).
type Accepted = Result<Got, RefreshError>;

/// What a refresh got from Vault.
enum Got {
    /// A token to write, and why it was renewed (the metrics' `cause`).
    Token(Box<BearerToken>, &'static str),
    /// The token in place again (see [`Done::Later`]).
    Unchanged(std::time::Duration),
}

impl Job<'_> {
    fn refresh(&mut self, top: Top, reason: Renew) -> Accepted {
        let (ctx, cfg, key) = (self.ctx, self.cfg, self.key);
        let target =
            policy::check_vault_url(&top.vault_url, &cfg.allowed_ports, &cfg.trusted_hosts)
                .map_err(|why| {
                    let msg = format!("skipping credential {key}: {why}");
                    ctx.warn_once(key, msg.clone());
                    RefreshError::wait(msg)
                })?;
        let server: Arc<str> = format!("{}:{}", target.host, target.port).into();
        self.server = Some(server.clone());
        if !(self.may_ask)(&server) {
            log::debug!("{key}: Vault at {server} is failing; waiting for it without asking");
            return Err(RefreshError::waiting_for(&server));
        }
        let (vault_token, token_stem) = self.vault_token(&top)?;
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
        let obtained = self.obtain(&*client, &target, &token_stem, &vault_token, &query);
        if obtained.answered {
            self.answered.set(true);
        }
        if let Some(session) = &obtained.fresh {
            self.kdc.set(Some(true));
            self.keep_token(&token_stem, &session.token)?;
        }
        if let (Err(AuthError::Kerberos(k)), Step::Login) = (&obtained.bearer, &obtained.step)
            && matches!(k, KrbError::Acquire { .. } | KrbError::Context { .. })
        {
            self.kdc.set(Some(false));
        }
        match (obtained.bearer, obtained.step) {
            (Ok(bearer), _) => self.accept(bearer, reason.label()),
            (Err(AuthError::Refused { why }), _) => Err(self.dead(why)),
            (Err(e), Step::Login) if obtained.fresh.is_none() => Err(self.login_failed(&e)),
            (Err(e), _) => Err(self.failed(&target, &e)),
        }
    }

    /// The credmon's session policy on the `.top`'s Vault token: used as it
    /// is (no `lookup-self`); on "permission denied" a login with the user's
    /// keytab (opened only then) for a 28-day token; never a person's OIDC login.
    fn obtain(
        &self,
        client: &dyn Api,
        target: &VaultTarget,
        token_stem: &str,
        vault_token: &VaultToken,
        query: &[(&'static str, String)],
    ) -> auth::Obtained {
        // Issuer and role of the stored credential: its vault_url says them.
        let names = auth::resolve(auth::Source::Stored {
            path: &target.path,
            service: token_stem,
        });
        let credkey = auth::names::parse_vault_path(&target.path)
            .ok()
            .map(|c| c.credkey);
        let want = auth::Want {
            names: &names,
            credkey: credkey.as_deref(),
            path: Some(&target.path),
            exchange: false,
            query,
            service_host: &target.host,
            server_host: &target.host,
            server_port: target.port,
        };
        let keytab = || keytab_for(self.cfg, &self.key.user, self.ctx.is_root());
        let policy = SessionPolicy {
            reuse_min_ttl: std::time::Duration::ZERO,
            login: Login::Lazy(&keytab),
            ttl: auth::STORED_TTL,
            shorten_minimum: false,
            oidc: Oidc::Never,
        };
        policy.obtain(client, &want, Some(vault_token))
    }

    /// Writes the Vault token of a new login into `<token_stem>.top`.
    fn keep_token(&self, token_stem: &str, token: &VaultToken) -> Result<(), RefreshError> {
        let user = &self.key.user;
        store_vault_token(self.ctx, self.udir, token_stem, token).map_err(|e| {
            log::error!("cannot store the new Vault token of {user}/{token_stem}: {e}");
            e
        })?;
        log::info!("stored a new Vault token in {user}/{token_stem}.top");
        Ok(())
    }

    /// The login with the keytab failed: retry (when the server is failing,
    /// it waits for the server).
    fn login_failed(&self, e: &AuthError) -> RefreshError {
        log::warn!("cannot log in again for {}: {e}; will retry", self.key);
        let vault = e.vault_error();
        RefreshError::Retry {
            cause: "login",
            at_least: vault.and_then(VaultError::retry_after),
            msg: e.to_string(),
            server_failing: vault.is_some_and(VaultError::server_failing),
        }
    }

    /// A Vault token refused with no keytab to log in again: the credential
    /// is dead and is removed, as HTCondor does.
    fn dead(&self, msg: String) -> RefreshError {
        let key = self.key;
        log::warn!(
            "Vault refused the token of {key} ({msg}); its Vault token expired or was revoked and {} has no keytab, so {key}.top and .use were removed (the user must submit again)",
            key.user
        );
        RefreshError::Remove {
            cause: "permission_denied",
            msg,
        }
    }

    /// The Vault token: the credential's own, else its parent's (handles).
    fn vault_token(&self, top: &Top) -> Result<(VaultToken, String), RefreshError> {
        let key = self.key;
        if let Some(t) = &top.vault_token {
            return Ok((t.clone(), key.stem.to_string()));
        }
        let parent = policy::parent_stem(&key.stem).map(str::to_owned);
        let found = match &parent {
            Some(p) => read_top(self.udir, p, self.ctx.euid()),
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

    fn failed(&self, target: &VaultTarget, e: &AuthError) -> RefreshError {
        let Some(vault) = e.vault_error() else {
            return self.login_failed(e);
        };
        if vault.server_failing() {
            let asked = vault
                .retry_after()
                .map(|d| format!(" and asks us to wait {} s", d.as_secs()))
                .unwrap_or_default();
            log::warn!(
                "Vault at {}:{} is failing ({e}){asked}; keeping the old .use of {}, its credentials wait for the server",
                target.host,
                target.port,
                self.key
            );
            return RefreshError::Retry {
                cause: if vault.status() == Some(429) {
                    "rate_limited"
                } else {
                    vault_cause(vault)
                },
                at_least: vault.retry_after(),
                msg: e.to_string(),
                server_failing: true,
            };
        }
        if let Some(msg) = self.login_needed(target, vault) {
            self.ctx
                .warn_daily(self.key, &format!("{} needs a person: {msg}", self.key));
            return RefreshError::retry(crate::status::state::NEEDS_LOGIN, msg);
        }
        log::warn!(
            "failed to refresh {}: {e}; keeping the old .use, will retry",
            self.key
        );
        RefreshError::retry(vault_cause(vault), e.to_string())
    }

    /// When Vault's answer means only a person can fix the credential (no
    /// credential for the credkey, or a refused refresh token): one line
    /// saying so, with the command its user runs.
    fn login_needed(&self, target: &VaultTarget, e: &VaultError) -> Option<String> {
        let what = e.login_needed()?;
        let login = VaultCredential::from_parts(&target.host, target.port, &target.path)?;
        Some(credmon_message(&self.key.user, &login, what))
    }

    /// Whether a token from Vault may replace the current `.use` (see [`accept::decide`]).
    fn accept(&self, bearer: BearerToken, cause: &'static str) -> Accepted {
        let (ctx, key) = (self.ctx, self.key);
        let now = token::unix_seconds(self.ctx.now());
        let current = read_use(self.udir, &key.stem, self.ctx.euid())
            .and_then(|u| u.exp)
            .map(token::unix_seconds);
        if let Some(after) = unchanged_expiring(bearer.claims().exp, current, now, cause) {
            return Ok(Got::Unchanged(after));
        }
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
        Ok(Got::Token(Box::new(bearer), cause))
    }
}

/// When a refresh asked because the token in place was expiring and Vault
/// handed back that same token (same `exp`), Vault's clock says it still
/// has the minimum left: this host's clock runs ahead. Rewriting it would
/// change nothing and the next pass would ask again; instead look again
/// after an eighth of the time it has left by our clock (at least a
/// minute), so a few minutes of skew cost a few reads, not one per pass.
fn unchanged_expiring(
    new: Option<i64>,
    current: Option<i64>,
    now: i64,
    cause: &str,
) -> Option<std::time::Duration> {
    if cause != Renew::Expiring.label() || new.is_none() || new != current {
        return None;
    }
    let left = new?.saturating_sub(now).max(0).unsigned_abs();
    Some(std::time::Duration::from_secs((left / 8).max(60)))
}

/// Removes a credential's `.top` and `.use` (the entries, never what a link points to).
fn remove_cred(udir: &SafeDir, stem: &str) {
    for ext in ["use", "top"] {
        if let Err(e) = udir.remove(&format!("{stem}.{ext}")) {
            log::error!("{e}");
        }
    }
}

#[cfg(test)]
mod tests;
