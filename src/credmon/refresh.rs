//! One credential, end to end: read the `.top`, ask Vault for a bearer token,
//! write the `.use`; on "permission denied" log in again with the user's
//! keytab (robots) or remove the credential (everyone else, as HTCondor does).
//! Also creates `.top` files for keytab users (`ROBOT_CREDMON_PROVISION`).

mod ctx;
mod error;
pub mod keytab;
mod top;

pub use ctx::Ctx;
use error::vault_cause;
pub use error::{Outcome, RefreshError};
pub use keytab::keytab_for;
use keytab::{login, provision};
pub use top::{Top, TopError, parse_top};
use top::{read_top, store_vault_token};

use super::config::Config;
use super::policy::{self, Renew, UseState, VaultTarget};
use crate::files::{FileError, SafeDir};
use crate::token::{self, BearerToken, MAX_TOKEN_BYTES, accept};
use crate::vault::auth::{self, CredentialSource};
use crate::vault::{VaultClient, VaultError, VaultToken};
use nix::sys::stat::FileStat;
use std::time::{Duration, SystemTime};

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
pub fn read_use(dir: &SafeDir, stem: &str, owner: u32) -> Option<UseState> {
    let name = format!("{stem}.use");
    match dir.read_trusted(&name, MAX_TOKEN_BYTES + 2, owner) {
        Ok(Some((bytes, st))) => Some(UseState {
            ctime_ns: ctime_ns(&st),
            exp: BearerToken::from_bytes(&bytes)
                .ok()
                .and_then(|t| t.claims().exp),
        }),
        _ => None,
    }
}

/// Runs one job. With `defer_sync`, a new `.use` is renamed into place
/// without syncing its directory; the caller syncs a batch at once.
///
/// A panic (a bug; no input should cause one) fails only this credential: it
/// is caught here and the worker goes on with the next job. This is why the
/// release profile unwinds instead of aborting.
pub fn process(ctx: &Ctx, key: &Key, task: &Task, defer_sync: bool) -> Outcome {
    crate::confine::test_escape();
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
    let Some(udir) = open_user(ctx, &root, key)? else {
        return Ok(Done::Nothing);
    };
    let (top, top_st) = match read_top(&udir, &key.stem, ctx.euid()) {
        Ok(Some(t)) => t,
        Ok(None) => return Ok(Done::Nothing),
        Err(e) => {
            ctx.warn_once(key, format!("skipping credential {key}: {e}"));
            return Err(e);
        }
    };
    let now = ctx.now();
    let reason = policy::should_renew(
        read_use(&udir, &key.stem, ctx.euid()),
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
        if let Ok(Some((top, _))) = read_top(&udir, &key.stem, ctx.euid()) {
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
                at_least: Some(until.since(ctx.mono())),
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
            Err(RefreshError::Relogin { msg }) => {
                let Some(source) = keytab_for(cfg, &key.user, ctx.is_root()) else {
                    return Err(self.dead(msg));
                };
                self.relogin_and_refresh(
                    &target,
                    &token_stem,
                    &source,
                    &query,
                    &client,
                    reason.label(),
                )
            }
            Err(e) => Err(e),
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
            return Ok((t.clone(), key.stem.clone()));
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
        let now = token::unix_seconds(self.ctx.now());
        let current = read_use(self.udir, &key.stem, self.ctx.euid()).and_then(|u| u.exp);
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
                        token::format_remaining(e - token::unix_seconds(self.ctx.now()))
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

#[cfg(test)]
mod tests;
