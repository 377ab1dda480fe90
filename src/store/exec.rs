//! The storer's executor: carries out [`plan`](super::plan)'s decisions for
//! one request with Vault, the credd (`condor_store_cred`) and the files.

use super::options::HtOpts;
use super::plan::{self, BearerFrom, Mint, Owner, Query};
use super::request::Request;
use super::{Context, LOCAL_TTL, STORED_TTL, StoreError, condor, say};
use crate::files::{self, SafeDir, WriteOptions};
use crate::token::{self, BearerToken, accept};
use crate::vault::auth::{
    self, AuthError, CredentialSource, Login, Names, Oidc, Person, Session, SessionPolicy, Want,
    oidc,
};
use crate::vault::{Api, Limits, ServerAddress, Trust, VaultToken};
use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

/// One Vault service for one request, stored into one credd.
struct Service<'a> {
    ctx: &'a Context<'a>,
    client: Arc<dyn Api>,
    server: ServerAddress,
    service_host: String,
    names: Names,
    opts: HtOpts,
    opts_source: &'a str,
    /// The credd by name (`--credd`); `None`: the local one.
    credd: Option<String>,
    /// A token minted for this request already (for another credd): used again.
    minted: &'a RefCell<Option<Minted>>,
}

/// A freshly minted long-lived Vault token.
#[derive(Clone)]
struct Minted {
    token: VaultToken,
    expires: i64,
    bearer: BearerToken,
    credkey: String,
}

/// Stores the credential(s) of one request; services of other credmons are left alone.
pub(super) fn store_request(ctx: &Context<'_>, req: &Request) -> Result<(), StoreError> {
    if !is_ours(ctx, req) {
        return Ok(());
    }
    plan::check_vault_service(&req.service).map_err(StoreError::Usage)?;
    let (opts, opts_source) = ctx.options_for(req)?;
    let server = ServerAddress::parse(
        opts.vaultserver
            .as_deref()
            .ok_or_else(|| StoreError::NoServer(req.service.clone()))?,
    )?;
    let service_host = match &opts.vaultalias {
        Some(a) => ServerAddress::host_of(a)?,
        None => server.host.clone(),
    };
    let trust = Trust::Files(
        opts.cafile.clone().or_else(|| ctx.settings.cafile.clone()),
        opts.capath.clone().or_else(|| ctx.settings.capath.clone()),
    );
    let client = ctx.settings.connector.connect(
        &server,
        opts.vaultcertname.as_deref(),
        &trust,
        &Limits::default(),
    )?;
    let names = auth::resolve(auth::Source::Htgettoken {
        issuer: opts.issuer.as_deref(),
        role: opts.role.as_deref(),
    });
    let minted = RefCell::new(None);
    let service = |credd: Option<&str>| Service {
        ctx,
        client: client.clone(),
        server: server.clone(),
        service_host: service_host.clone(),
        names: names.clone(),
        opts: opts.clone(),
        opts_source,
        credd: credd.map(str::to_owned),
        minted: &minted,
    };
    if ctx.credds.is_empty() {
        return service(None).store(req).map(drop);
    }
    store_each(&ctx.credds, req, |name| service(Some(name)).store(req))
}

/// Whether the request's service is a Vault one, ours to store; the
/// services of other credmons are left alone (said at info or warning level).
fn is_ours(ctx: &Context<'_>, req: &Request) -> bool {
    match ctx.owner(&req.service) {
        Owner::Vault => true,
        Owner::Pelican => {
            log::warn!(
                "service '{}' belongs to the Pelican credmon; robot-credmon stores only Vault credentials and leaves it alone",
                req.service
            );
            false
        }
        Owner::Other => {
            log::info!(
                "service '{}' is managed by another credmon; skipping",
                req.service
            );
            false
        }
    }
}

/// Stores into every named credd in turn, one line each: a failure at one
/// does not stop the others; the error names the credds that failed.
fn store_each(
    credds: &[String],
    req: &Request,
    mut store: impl FnMut(&str) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let mut failed = Vec::new();
    for name in credds {
        match store(name) {
            Ok(true) => say(&format!("credd {name}: stored {}", req.service)),
            Ok(false) => say(&format!("credd {name}: {} already stored", req.service)),
            Err(e) => {
                say(&format!("credd {name}: FAILED: {e}"));
                failed.push(name.clone());
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Credds {
            failed,
            total: credds.len(),
        })
    }
}

/// Writes a bearer token file under its lock (the one `get` takes), so that
/// a run holding the lock may remove any temporary file of ours beside it.
fn write(ctx: &Context<'_>, path: &Path, contents: &[u8]) -> Result<(), StoreError> {
    let (dir, name) = SafeDir::open_parent(path)?;
    let wait = std::time::Duration::from_secs(30);
    let _lock = files::LockFile::acquire(&dir, &name, Some(ctx.uid()), wait, ctx.env.clock())?;
    dir.write_atomic(&name, contents, WriteOptions::user_file(0o600, ctx.uid()))?;
    Ok(())
}

/// A state file of ours, when it passes the trust rule (owner `uid`);
/// otherwise `None` with a warning (a planted file is never used or sent).
fn read(path: &Path, uid: u32) -> Option<String> {
    match files::read_trusted(path, 8192, uid) {
        Ok(b) => b.and_then(|b| String::from_utf8(b).ok()),
        Err(e) => {
            log::warn!("ignoring {}: {e}", path.display());
            None
        }
    }
}

impl Service<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.server)
    }

    /// Stores the request's credential; whether a new Vault token went to the credd.
    fn store(&self, req: &Request) -> Result<bool, StoreError> {
        let ctx = self.ctx;
        let name = &req.service;
        let vt_svc = plan::service_vault_token_file(&ctx.vault_token_dir, &ctx.id, name);
        let state =
            plan::stored_state_file(&ctx.vault_token_dir, &ctx.id, name, self.credd.as_deref());
        let credkey = self.opts.credkey.clone().or_else(|| {
            oidc::read_credkey(&ctx.home, &self.names.issuer, &self.names.role, ctx.uid())
        });

        // The credd first: what it holds decides whether a login is needed.
        let query = self.query(name, None, None)?;
        let now = token::unix_seconds(ctx.env.now());
        let stored_expires = read(&state, ctx.uid())
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v.get("expires").and_then(|e| e.as_i64()));
        let restore = query == Query::Stored
            && plan::restore_needed(now, stored_expires, ctx.settings.restore_before);
        let local = match (&credkey, auth::read_saved(&vt_svc, ctx.uid())) {
            (Some(ck), Some(tok)) => self.try_local(&tok, ck)?,
            _ => None,
        };
        let actions = plan::plan_service(query, restore, local.is_some())
            .map_err(|_| StoreError::Mismatch(name.clone()))?;
        let minted = match actions.mint {
            Some(why) => {
                match why {
                    Mint::ExpiresSoon => log::warn!(
                        "the Vault token stored in the credd for {name} expires in {}; storing a new one",
                        token::format_remaining(stored_expires.unwrap_or(now) - now)
                    ),
                    Mint::NotInCredd => log::info!(
                        "the credd holds no credential for {name}; making a new Vault token"
                    ),
                }
                Some(self.mint_once(name, credkey.clone())?)
            }
            None => {
                log::info!("credentials for {name} are already stored");
                None
            }
        };
        let bearer = match actions.bearer {
            BearerFrom::Minted => minted.as_ref().map(|m| &m.bearer),
            BearerFrom::Local => local.as_ref(),
            BearerFrom::Nothing => None,
        };
        if let Some(bearer) = bearer {
            self.write_bearer(name, bearer)?;
        }
        let credkey = minted.as_ref().map(|m| m.credkey.clone()).or(credkey);
        if let (Some(m), Some(ck)) = (&minted, &credkey) {
            self.store_minted(name, m, ck, &vt_svc, &state)?;
        }
        if let Some(hname) = req.handle_service() {
            self.store_handle(req, &hname, credkey.as_deref(), minted.as_ref())?;
        }
        Ok(minted.is_some())
    }

    /// [`Service::mint`], once per request: another credd's token is used again.
    fn mint_once(&self, name: &str, credkey: Option<String>) -> Result<Minted, StoreError> {
        if let Some(m) = self.minted.borrow().clone() {
            return Ok(m);
        }
        let m = self.mint(name, credkey)?;
        *self.minted.borrow_mut() = Some(m.clone());
        Ok(m)
    }

    /// The user's bearer token files for `name`.
    fn write_bearer(&self, name: &str, bearer: &BearerToken) -> Result<(), StoreError> {
        let ctx = self.ctx;
        for f in plan::bearer_token_files(|k| ctx.env.var(k), &ctx.id, name) {
            self.write_bearer_file(&f, bearer)?;
        }
        Ok(())
    }

    /// Writes `bearer` to the token file `f` when it is usable and lives
    /// longer than the token already there ([`accept::decide`]).
    fn write_bearer_file(&self, f: &Path, bearer: &BearerToken) -> Result<(), StoreError> {
        let ctx = self.ctx;
        let now = token::unix_seconds(ctx.env.now());
        let current = files::read_trusted(f, token::MAX_TOKEN_BYTES + 2, ctx.uid())
            .ok()
            .flatten()
            .and_then(|b| BearerToken::from_bytes(&b).ok())
            .and_then(|t| t.claims().exp);
        let minsecs = self.opts.minsecs.unwrap_or(60);
        match accept::decide(bearer.claims(), current, now, minsecs) {
            accept::Decision::Replace(warning) => {
                if let Some(w) = warning {
                    log::warn!("{w}");
                }
                write(ctx, f, &bearer.file_contents())?;
                log::info!("Storing bearer token in {}", f.display());
            }
            accept::Decision::KeepCurrent(why) => log::info!("{why}: {}", f.display()),
            accept::Decision::Reject(why) => log::warn!(
                "Vault at {} handed out a bearer token that cannot be used: {why}; {} was left unchanged",
                self.client.server(),
                f.display()
            ),
        }
        Ok(())
    }

    /// After a mint: the local tokens, the credd's credential, our note of its expiry.
    fn store_minted(
        &self,
        name: &str,
        m: &Minted,
        credkey: &str,
        vt_svc: &Path,
        state: &Path,
    ) -> Result<(), StoreError> {
        let ctx = self.ctx;
        let creds_url = self.url(&self.names.secret_path(false, credkey));
        let local_tok = self
            .client
            .create_token(&m.token, LOCAL_TTL.as_secs())?
            .token;
        // The bearer token and the credd come first: a Vault token that
        // cannot be saved locally only costs a login next time (a warning).
        auth::save(vt_svc, &local_tok, ctx.uid(), ctx.env.now());
        auth::save(
            &plan::vault_token_file(&ctx.vault_token_dir, &ctx.id),
            &local_tok,
            ctx.uid(),
            ctx.env.now(),
        );
        self.add(
            name,
            None,
            None,
            &plan::cred_json(Some(m.token.expose()), &creds_url),
        )?;
        let st = serde_json::json!({"expires": m.expires, "vault_url": creds_url});
        write(ctx, state, format!("{st}\n").as_bytes())
    }

    /// A handle: added after a new token, or when the credd lacks it.
    fn store_handle(
        &self,
        req: &Request,
        hname: &str,
        credkey: Option<&str>,
        minted: Option<&Minted>,
    ) -> Result<(), StoreError> {
        let (s, a) = (req.scopes.as_deref(), req.audience.as_deref());
        let query = match minted {
            Some(_) => None,
            None => Some(self.query(hname, s, a)?),
        };
        let add = plan::handle_needs_add(minted.is_some(), query)
            .map_err(|_| StoreError::Mismatch(hname.to_owned()))?;
        if !add {
            log::info!("credentials for {hname} are already stored");
            return Ok(());
        }
        let credkey = credkey.ok_or_else(|| {
            StoreError::Usage(format!("cannot store {hname}: {}", self.no_credkey()))
        })?;
        let exchange = s.is_some() || a.is_some();
        let url = self.url(&self.names.secret_path(exchange, credkey));
        let tok = minted.map(|m| m.token.expose());
        self.add(hname, s, a, &plan::cred_json(tok, &url))
    }

    fn no_credkey(&self) -> String {
        format!(
            "no credkey for issuer '{}' and role '{}' (no --credkey in {} and no {})",
            self.names.issuer,
            self.names.role,
            self.opts_source,
            oidc::credkey_file(&self.ctx.home, &self.names.issuer, &self.names.role).display()
        )
    }

    fn query_params(&self) -> Vec<(&'static str, String)> {
        vec![(
            "minimum_seconds",
            self.opts.minsecs.unwrap_or(60).to_string(),
        )]
    }

    /// The credential of this service as the session policy sees it.
    fn want<'w>(
        &'w self,
        credkey: Option<&'w str>,
        query: &'w [(&'static str, String)],
    ) -> Want<'w> {
        Want {
            names: &self.names,
            credkey,
            path: None,
            exchange: false,
            query,
            service_host: &self.service_host,
            server_host: &self.server.host,
            server_port: self.server.port,
        }
    }

    /// The storer's session policy: `--vaulttokenminttl` for a saved token,
    /// Kerberos unless `--nokerberos`, and a person's OIDC login on a
    /// terminal (also after a failed Kerberos login) unless `--nooidc`.
    fn policy<'p>(&'p self, login: Login<'p>, ttl: std::time::Duration) -> SessionPolicy<'p> {
        let oidc = if self.ctx.settings.oidc && !self.opts.nooidc {
            Oidc::Person(Box::new(Person {
                interactive: self.ctx.interactive,
                settings: self.oidc_settings(),
                command: self.ctx.settings.command_hint.clone(),
                save_credkey_in: self
                    .opts
                    .credkey
                    .is_none()
                    .then_some(self.ctx.home.as_path()),
                uid: self.ctx.uid(),
                after_login_failure: true,
                first: None,
                say,
            }))
        } else {
            Oidc::Never
        };
        SessionPolicy {
            reuse_min_ttl: self.opts.vaulttokenminttl.unwrap_or_default(),
            login,
            ttl,
            shorten_minimum: true,
            oidc,
        }
    }

    /// The local token reads a bearer token: `Some`; refused, too old or
    /// failing for good: `None` (only a passing failure is an error).
    fn try_local(
        &self,
        tok: &VaultToken,
        credkey: &str,
    ) -> Result<Option<BearerToken>, StoreError> {
        let query = self.query_params();
        let policy = self.policy(Login::Never, LOCAL_TTL);
        match policy.try_saved(&*self.client, &self.want(Some(credkey), &query), tok) {
            Ok(found) => Ok(found),
            Err(e) if e.is_transient() => Err(e.into()),
            Err(e) => {
                log::info!("the saved Vault token does not work: {e}");
                Ok(None)
            }
        }
    }

    /// A new 28-day token: Kerberos first, then (on a terminal) OIDC.
    fn mint(&self, name: &str, credkey: Option<String>) -> Result<Minted, StoreError> {
        let ttl = self.opts.vaulttokenttl.unwrap_or(STORED_TTL);
        let source = if self.opts.nokerberos {
            None
        } else {
            match self.kerberos_source() {
                Ok(s) => Some(s),
                Err(e) if self.ctx.interactive && !self.opts.nooidc => {
                    log::info!("Kerberos login failed: {e}");
                    None
                }
                Err(e) => return Err(e.into()),
            }
        };
        let login = source.as_ref().map_or(Login::Never, Login::With);
        let policy = self.policy(login, ttl);
        let query = self.query_params();
        let want = self.want(credkey.as_deref(), &query);
        log::debug!("making a new Vault token for {name}");
        let obtained = policy.obtain(&*self.client, &want, None);
        let bearer = obtained.bearer?;
        let (Some(session), Some(credkey)) = (obtained.fresh, obtained.credkey) else {
            return Err(StoreError::Usage(format!(
                "cannot store {name}: {}",
                self.no_credkey()
            )));
        };
        self.minted(session, bearer, credkey)
    }

    /// A minted token with its expiry time (from its lease, else `lookup-self`).
    fn minted(
        &self,
        session: Session,
        bearer: BearerToken,
        credkey: String,
    ) -> Result<Minted, StoreError> {
        let lease = match session.lease {
            Some(l) => l,
            None => self.client.lookup_self_ttl(&session.token)?,
        };
        let now = token::unix_seconds(self.ctx.env.now());
        Ok(Minted {
            token: session.token,
            expires: now + i64::try_from(lease).unwrap_or(i64::MAX / 4),
            bearer,
            credkey,
        })
    }

    fn oidc_settings(&self) -> oidc::OidcSettings {
        let host = self
            .opts
            .vaultalias
            .as_deref()
            .and_then(|a| ServerAddress::parse(a).ok())
            .unwrap_or_else(|| self.server.clone());
        oidc::OidcSettings {
            issuer: self.names.issuer.clone(),
            role: self.names.role.clone(),
            redirect_host: format!("{}:{}", host.host, host.port),
            web_open_command: self
                .opts
                .web_open_command
                .clone()
                .or_else(|| self.ctx.web_open_command.clone()),
            timeout: self.ctx.settings.oidc_timeout,
            path_var: self.ctx.env.path_var(),
            clock: self.ctx.env.clock().clone(),
        }
    }

    /// The keytab (with the settings' principal), else the user's ticket cache.
    fn kerberos_source(&self) -> Result<CredentialSource, AuthError> {
        Ok(match &self.ctx.settings.keytab {
            Some(kt) => {
                CredentialSource::keytab(kt, self.ctx.settings.principal.as_deref(), None, false)?
            }
            None => CredentialSource::UserCcache,
        })
    }

    /// `condor_store_cred <op> ... -s name [-S s] [-A a]`; `input` on stdin,
    /// which only `add-oauth` takes (and whose output `-v` shows).
    fn store_cred(
        &self,
        op: &str,
        name: &str,
        (s, a): (Option<&str>, Option<&str>),
        input: Option<&[u8]>,
    ) -> Result<condor::ToolRun, StoreError> {
        let ctx = self.ctx;
        let args = plan::store_cred_args(op, ctx.user.as_deref(), name, s, a, &ctx.storecred_opts);
        let show = ctx.settings.verbose && input.is_some();
        let vars: Vec<(&str, &str)> = self
            .credd
            .as_deref()
            .map(|c| (plan::CREDD_KNOB, c))
            .into_iter()
            .collect();
        condor::run_tool_with("condor_store_cred", &args, &vars, input, show, &ctx.env)
            .map_err(StoreError::Tool)
    }

    fn query(&self, name: &str, s: Option<&str>, a: Option<&str>) -> Result<Query, StoreError> {
        let r = self.store_cred("query-oauth", name, (s, a), None)?;
        let q = plan::query_result(r.code);
        log::debug!(
            "condor_store_cred query-oauth -s {name}: exit {} ({q:?})",
            r.code
        );
        q.ok_or_else(|| {
            StoreError::Tool(format!(
                "{}\nQuerying condor credentials failed",
                first_line(&r.stdout, &r.stderr)
            ))
        })
    }

    fn add(
        &self,
        name: &str,
        s: Option<&str>,
        a: Option<&str>,
        json: &str,
    ) -> Result<(), StoreError> {
        log::info!("Storing condor credentials for {name}");
        let r = self.store_cred("add-oauth", name, (s, a), Some(json.as_bytes()))?;
        if r.code != 0 {
            let said = first_line(&r.stderr, &r.stdout);
            return Err(StoreError::StoreFailed {
                name: name.to_owned(),
                detail: if said.is_empty() {
                    format!(
                        "condor_store_cred exited with {} (run with -v to see its output)",
                        r.code
                    )
                } else {
                    plan::store_failure_detail(&said, json)
                },
            });
        }
        Ok(())
    }
}

/// The first line either text has, trimmed.
fn first_line(a: &str, b: &str) -> String {
    a.trim()
        .lines()
        .chain(b.trim().lines())
        .next()
        .unwrap_or("")
        .to_owned()
}
