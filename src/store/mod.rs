//! `robot-credmon store` (also run as `robot-credmon-storer`): HTCondor's
//! `SEC_CREDENTIAL_STORER` for Vault credentials, with the algorithm and
//! results of HTCondor's `condor_vault_storer` (htcondor-credmon-interface.md
//! §2.6-2.7), done in-process instead of through htgettoken:
//!
//! 1. the local per-service Vault token `vt_<id>-<service>` reads a bearer
//!    token: the credd is asked (`query-oauth`) whether it holds the credential;
//! 2. otherwise (or when the credd lacks it, or the Vault token we stored there
//!    is close to expiry) a 28-day Vault token comes from Kerberos (keytab or
//!    the user's ticket cache), or on a terminal from the OIDC login, and is
//!    stored with `condor_store_cred add-oauth`; the local file gets a 7-day child;
//! 3. a handle is stored when a new token was made or the credd lacks it.
//!
//! Messages go to stderr after a leading newline; exit 0 or 1.

pub mod condor;
pub mod plan;
pub mod request;

use crate::cli::StoreArgs;
use crate::files::{self, FileError, WriteOptions};
use crate::kerberos::{self, Initiator, KrbError};
use crate::oidc::{self, OidcError, OidcSettings};
use crate::token::{self, BearerToken, accept};
use crate::vault::{
    ClientConfig, Limits, LoginError, ServerAddress, VaultClient, VaultError, VaultToken, tls,
};
use plan::Query;
use request::{HtOpts, Request};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

/// Lifetime of the Vault token stored in the credd (`--vaulttokenttl=28d`).
pub const STORED_TTL: Duration = Duration::from_secs(28 * 86400);
/// Lifetime of the local per-service Vault token (htgettoken's default 7d).
pub const LOCAL_TTL: Duration = Duration::from_secs(7 * 86400);

/// Why storing failed. Messages name the service, file or server and the fix.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Neither option source is set (HTCondor's storer's own message).
    #[error(
        "Neither SEC_CREDENTIAL_GETTOKEN_OPTS condor value nor $HTGETTOKENOPTS environment set"
    )]
    NoOptions,
    /// A storer mode that is not ours.
    #[error(
        "CONDOR_CREDENTIAL_STORER_MODE={0} is not supported: robot-credmon stores only Vault credentials (set SEC_CREDENTIAL_STORER to the storer for that mode)"
    )]
    Mode(String),
    /// Bad request or options.
    #[error("{0}")]
    Usage(String),
    /// No Vault server in the options.
    #[error("no Vault server for service '{0}': add '-a HOST' to SEC_CREDENTIAL_GETTOKEN_OPTS")]
    NoServer(String),
    /// The credd holds the credential with other scopes/audience.
    #[error("{}", plan::mismatch_message(.0))]
    Mismatch(String),
    /// `condor_store_cred add-oauth` failed.
    #[error("Failed to store condor credentials for {name}: {detail}")]
    StoreFailed {
        /// The credential name.
        name: String,
        /// What condor_store_cred said.
        detail: String,
    },
    /// An HTCondor tool could not be run.
    #[error("{0}")]
    Tool(String),
    /// A Vault problem.
    #[error("{error}{}", hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Vault {
        /// What Vault said.
        error: Box<VaultError>,
        /// What to do.
        hint: Option<String>,
    },
    /// A Kerberos problem (keytab or the user's ticket cache).
    #[error(transparent)]
    Kerberos(#[from] KrbError),
    /// The OIDC login failed or needs a terminal.
    #[error(transparent)]
    Oidc(#[from] OidcError),
    /// A file problem.
    #[error(transparent)]
    File(#[from] FileError),
}

impl From<VaultError> for StoreError {
    fn from(error: VaultError) -> Self {
        StoreError::Vault {
            error: Box::new(error),
            hint: None,
        }
    }
}

/// Everything the storer takes from its environment, read once.
#[derive(Debug, Clone)]
pub struct Context {
    /// Words of `SEC_CREDENTIAL_GETTOKEN_OPTS` (or `$HTGETTOKENOPTS`).
    pub gettoken_words: Vec<String>,
    /// Where those came from, for messages.
    pub opts_source: String,
    /// Keytab for the Kerberos login (`None`: the user's ticket cache).
    pub keytab: Option<PathBuf>,
    /// Principal to use from the keytab (`None`: its first one).
    pub principal: Option<String>,
    /// CA bundle when the htgettoken options give none.
    pub cafile: Option<PathBuf>,
    /// CA directory when the htgettoken options give none.
    pub capath: Option<PathBuf>,
    /// Directory of the Vault token files.
    pub vault_token_dir: PathBuf,
    /// `CONDOR_VAULT_STORER_ID` or `u<uid>`.
    pub id: String,
    /// `CONDOR_VAULT_STORER_USER` (`-u`).
    pub user: Option<String>,
    /// `SEC_CREDENTIAL_STORECRED_OPTS` words.
    pub storecred_opts: Vec<String>,
    /// Show condor_store_cred's output.
    pub verbose: bool,
    /// Re-store when the stored Vault token has less than this left.
    pub restore_before: Duration,
    /// The home directory (credkey files).
    pub home: PathBuf,
    /// Whether a person is at a terminal (OIDC allowed).
    pub interactive: bool,
    /// `--web-open-command`.
    pub web_open_command: Option<String>,
    /// `--oidc-timeout`.
    pub oidc_timeout: Duration,
    /// The command a person should run interactively, for messages.
    pub command_hint: String,
    /// The effective uid.
    pub uid: u32,
}

/// Entry point of `robot-credmon store`: leading newline, messages on stderr, exit 0 or 1.
pub fn main(args: &StoreArgs) -> ExitCode {
    // "When condor_submit launches this the cursor is not at the beginning of a new line."
    eprintln!();
    let extra = condor::config_val("SEC_CREDENTIAL_VAULT_STORER_OPTS")
        .and_then(|v| request::shell_words(&v).ok())
        .unwrap_or_default();
    let verbose = args.verbose || extra.iter().any(|w| w == "-v");
    let debug = args.debug || extra.iter().any(|w| w == "-d");
    crate::logging::init_cli(if debug { 2 } else { u8::from(verbose) }, false);
    match run(args, verbose || debug) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("robot-credmon: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every request.
pub fn run(args: &StoreArgs, verbose: bool) -> Result<(), StoreError> {
    let env = crate::files::discovery::process_env;
    match env("CONDOR_CREDENTIAL_STORER_MODE").filter(|m| !m.is_empty()) {
        Some(m) if m != "vault" => return Err(StoreError::Mode(m)),
        _ => {}
    }
    let requests = args
        .requests
        .iter()
        .map(|r| request::parse_request(r))
        .collect::<Result<Vec<Request>, String>>()
        .map_err(StoreError::Usage)?;
    let keytab = args
        .keytab
        .clone()
        .filter(|k| !k.is_empty())
        .or_else(|| env("KRB5_KTNAME").filter(|k| !k.is_empty()))
        .map(|k| PathBuf::from(k.strip_prefix("FILE:").unwrap_or(&k)));
    let mut command_hint = String::from("robot-credmon store");
    for r in &args.requests {
        command_hint.push_str(&format!(" '{r}'"));
    }
    let ctx = Context::from_env(
        keytab,
        args.vaulttokendir.clone(),
        verbose,
        args.restore_before,
        args.web_open_command.clone(),
        args.oidc_timeout,
        command_hint,
    )?;
    let _profile = kerberos::disable_reverse_dns()?;
    for req in &requests {
        store_request(&ctx, req)?;
    }
    Ok(())
}

impl Context {
    /// Reads the option sources and the environment.
    pub fn from_env(
        keytab: Option<PathBuf>,
        vault_token_dir: Option<PathBuf>,
        verbose: bool,
        restore_before: Duration,
        web_open_command: Option<String>,
        oidc_timeout: Duration,
        command_hint: String,
    ) -> Result<Context, StoreError> {
        let env = crate::files::discovery::process_env;
        let (text, source) = match condor::config_val("SEC_CREDENTIAL_GETTOKEN_OPTS") {
            Some(v) if !v.is_empty() => (v, "SEC_CREDENTIAL_GETTOKEN_OPTS"),
            _ => match env("HTGETTOKENOPTS").filter(|v| !v.is_empty()) {
                Some(v) => (v, "$HTGETTOKENOPTS"),
                None => return Err(StoreError::NoOptions),
            },
        };
        let gettoken_words = request::shell_words(&text).map_err(StoreError::Usage)?;
        let storecred_opts = env("SEC_CREDENTIAL_STORECRED_OPTS")
            .map(|v| request::shell_words(&v).map_err(StoreError::Usage))
            .transpose()?
            .unwrap_or_default();
        let uid = nix::unistd::geteuid().as_raw();
        Ok(Context {
            gettoken_words,
            opts_source: source.to_owned(),
            keytab,
            principal: None,
            cafile: None,
            capath: None,
            vault_token_dir: vault_token_dir.unwrap_or_else(|| PathBuf::from("/tmp")),
            id: plan::storer_id(env("CONDOR_VAULT_STORER_ID"), uid),
            user: env("CONDOR_VAULT_STORER_USER").filter(|u| !u.is_empty()),
            storecred_opts,
            verbose,
            restore_before,
            home: env("HOME").map(PathBuf::from).unwrap_or_default(),
            interactive: oidc::process_is_interactive(),
            web_open_command: oidc::web_open_command(
                web_open_command.as_deref(),
                env("SSH_CLIENT").as_deref(),
            ),
            oidc_timeout,
            command_hint,
            uid,
        })
    }

    fn options_for(&self, req: &Request) -> Result<HtOpts, StoreError> {
        let mut words = self.gettoken_words.clone();
        words.extend(["-i".to_owned(), req.issuer().to_owned()]);
        if let Some(role) = req.role() {
            words.extend(["-r".to_owned(), role.to_owned()]);
        }
        if let Some(o) = &req.options {
            words.extend(request::shell_words(o).map_err(StoreError::Usage)?);
        }
        request::parse_htgettoken_opts(&words, &self.opts_source).map_err(StoreError::Usage)
    }

    fn read_bytes(&self, path: &Path, limit: usize) -> Option<Vec<u8>> {
        files::read_trusted(path, limit, self.uid).ok().flatten()
    }

    fn write(&self, path: &Path, contents: &[u8]) -> Result<(), StoreError> {
        files::write_file(path, contents, WriteOptions::user_file(0o600, self.uid))?;
        Ok(())
    }

    /// A state file of ours, when it passes the trust rule; otherwise `None`
    /// with a warning (a planted file is never used or sent anywhere).
    fn read(&self, path: &Path) -> Option<String> {
        match files::read_trusted(path, 8192, self.uid) {
            Ok(b) => b.and_then(|b| String::from_utf8(b).ok()),
            Err(e) => {
                log::warn!("ignoring {}: {e}", path.display());
                None
            }
        }
    }
}

/// One Vault service for one request.
struct Service<'a> {
    ctx: &'a Context,
    client: VaultClient,
    server: ServerAddress,
    service_host: String,
    issuer: String,
    role: String,
    opts: HtOpts,
}

/// A freshly minted long-lived Vault token.
struct Minted {
    token: VaultToken,
    expires: i64,
    bearer: BearerToken,
    credkey: String,
}

/// Stores the credential(s) of one request.
pub fn store_request(ctx: &Context, req: &Request) -> Result<(), StoreError> {
    let opts = ctx.options_for(req)?;
    let server = ServerAddress::parse(
        opts.vaultserver
            .as_deref()
            .ok_or_else(|| StoreError::NoServer(req.service.clone()))?,
    )?;
    let service_host = match &opts.vaultalias {
        Some(a) => ServerAddress::host_of(a)?,
        None => server.host.clone(),
    };
    let client = VaultClient::new(ClientConfig {
        server: server.clone(),
        certname: opts.vaultcertname.clone(),
        tls: tls::client_config_for(
            opts.cafile.clone().or_else(|| ctx.cafile.clone()),
            opts.capath.clone().or_else(|| ctx.capath.clone()),
        )?,
        limits: Limits::default(),
    });
    let svc = Service {
        ctx,
        client,
        server,
        service_host,
        issuer: opts.issuer.clone().unwrap_or_else(|| "default".into()),
        role: opts.role.clone().unwrap_or_else(|| "default".into()),
        opts,
    };
    svc.store(req)
}

impl Service<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.server)
    }

    fn store(&self, req: &Request) -> Result<(), StoreError> {
        let ctx = self.ctx;
        let name = &req.service;
        let vt_svc = plan::service_vault_token_file(&ctx.vault_token_dir, &ctx.id, name);
        let state = plan::stored_state_file(&ctx.vault_token_dir, &ctx.id, name);
        let credkey = self
            .opts
            .credkey
            .clone()
            .or_else(|| oidc::read_credkey(&ctx.home, &self.issuer, &self.role));

        // Step 3 of HTCondor's storer: does the local token still work?
        let local = match (
            &credkey,
            ctx.read(&vt_svc).as_deref().and_then(VaultToken::new),
        ) {
            (Some(ck), Some(tok)) => self.try_local(&tok, ck)?,
            _ => None,
        };
        let query = match &local {
            Some(_) => Some(self.query(name, None, None)?),
            None => None,
        };
        if query == Some(Query::Mismatch) {
            return Err(StoreError::Mismatch(name.clone()));
        }
        let now = token::unix_seconds(SystemTime::now());
        let stored_expires = ctx
            .read(&state)
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v.get("expires").and_then(|e| e.as_i64()));
        let restore = query == Some(Query::Stored)
            && plan::restore_needed(now, stored_expires, ctx.restore_before);
        if restore {
            log::warn!(
                "the Vault token stored in the credd for {name} expires in {}; storing a new one",
                token::format_remaining(stored_expires.unwrap_or(now) - now)
            );
        }
        if query == Some(Query::NotStored) {
            log::info!("the credd holds no credential for {name}; making a new Vault token");
        }
        let minted = if plan::new_token_needed(local.is_some(), query, restore) {
            Some(self.mint(name, credkey.clone())?)
        } else {
            log::info!("credentials for {name} are already stored");
            None
        };
        let credkey = match (&minted, credkey) {
            (Some(m), _) => m.credkey.clone(),
            (None, Some(ck)) => ck,
            (None, None) => return Ok(()),
        };
        if let Some(bearer) = minted.as_ref().map(|m| &m.bearer).or(local.as_ref()) {
            for f in plan::bearer_token_files(crate::files::discovery::process_env, &ctx.id, name) {
                self.write_bearer(&f, bearer)?;
            }
        }
        let creds_url = self.url(&crate::vault::secret_path(
            false,
            &self.issuer,
            &credkey,
            &self.role,
        ));
        if let Some(m) = &minted {
            let local_tok = self
                .client
                .create_token(&m.token, LOCAL_TTL.as_secs())?
                .token;
            let mut text = zeroize::Zeroizing::new(local_tok.expose().as_bytes().to_vec());
            text.push(b'\n');
            // The bearer token and the credd come first: a Vault token that
            // cannot be saved locally only costs a login next time.
            for f in [
                vt_svc.clone(),
                plan::vault_token_file(&ctx.vault_token_dir, &ctx.id),
            ] {
                match ctx.write(&f, &text) {
                    Ok(()) => log::info!("Storing vault token in {}", f.display()),
                    Err(e) => log::warn!(
                        "cannot save the Vault token, the next run will log in again: {e}"
                    ),
                }
            }
            self.add(
                name,
                None,
                None,
                &plan::cred_json(Some(m.token.expose()), &creds_url),
            )?;
            let st = serde_json::json!({"expires": m.expires, "vault_url": creds_url});
            ctx.write(&state, format!("{st}\n").as_bytes())?;
        }
        if let Some(hname) = req.handle_service() {
            let (s, a) = (req.scopes.as_deref(), req.audience.as_deref());
            let exchange = s.is_some() || a.is_some();
            let url = self.url(&crate::vault::secret_path(
                exchange,
                &self.issuer,
                &credkey,
                &self.role,
            ));
            let need = match &minted {
                Some(_) => true,
                None => match self.query(&hname, s, a)? {
                    Query::Stored => false,
                    Query::NotStored => true,
                    Query::Mismatch => return Err(StoreError::Mismatch(hname)),
                },
            };
            if need {
                let tok = minted.as_ref().map(|m| m.token.expose());
                self.add(&hname, s, a, &plan::cred_json(tok, &url))?;
            } else {
                log::info!("credentials for {hname} are already stored");
            }
        }
        Ok(())
    }

    /// Writes `bearer` to the token file `f` when it is usable and lives
    /// longer than the token already there ([`accept::decide`]).
    fn write_bearer(&self, f: &Path, bearer: &BearerToken) -> Result<(), StoreError> {
        let ctx = self.ctx;
        let now = token::unix_seconds(SystemTime::now());
        let current = ctx
            .read_bytes(f, token::MAX_TOKEN_BYTES + 2)
            .and_then(|b| BearerToken::from_bytes(&b).ok())
            .and_then(|t| t.claims().exp);
        let minsecs = self.opts.minsecs.unwrap_or(60);
        match accept::decide(bearer.claims(), current, now, minsecs) {
            accept::Decision::Replace(warning) => {
                if let Some(w) = warning {
                    log::warn!("{w}");
                }
                ctx.write(f, &bearer.file_contents())?;
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

    /// The local token reads a bearer token: `Some`; refused or too old: `None`.
    fn try_local(
        &self,
        tok: &VaultToken,
        credkey: &str,
    ) -> Result<Option<BearerToken>, StoreError> {
        if let Some(min) = self.opts.vaulttokenminttl.filter(|d| !d.is_zero()) {
            match self.client.lookup_self_ttl(tok) {
                Ok(ttl) if crate::get::plan::vault_token_usable(ttl, min) => {}
                Ok(_) => return Ok(None),
                Err(e) if e.is_transient() => return Err(e.into()),
                Err(_) => return Ok(None),
            }
        }
        let path = crate::vault::secret_path(false, &self.issuer, credkey, &self.role);
        match self.client.read_bearer(tok, &path, &self.query_params()) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.is_permission_denied() => {
                log::info!("the saved Vault token is no longer accepted");
                Ok(None)
            }
            Err(e) if e.is_transient() => Err(e.into()),
            Err(e) => {
                log::info!("the saved Vault token does not work: {e}");
                Ok(None)
            }
        }
    }

    fn query_params(&self) -> Vec<(&'static str, String)> {
        vec![(
            "minimum_seconds",
            self.opts.minsecs.unwrap_or(60).to_string(),
        )]
    }

    /// A new 28-day token: Kerberos first, then (on a terminal) OIDC.
    fn mint(&self, name: &str, credkey: Option<String>) -> Result<Minted, StoreError> {
        let ttl = self.opts.vaulttokenttl.unwrap_or(STORED_TTL);
        let mut why = None;
        if let (Some(ck), false) = (&credkey, self.opts.nokerberos) {
            match self.kerberos_login() {
                Ok(tok) => {
                    let (token, expires) = self.shorten(tok, ttl)?;
                    let path = crate::vault::secret_path(false, &self.issuer, ck, &self.role);
                    match self.client.read_bearer(&token, &path, &self.query_params()) {
                        Ok(bearer) => {
                            return Ok(Minted {
                                token,
                                expires,
                                bearer,
                                credkey: ck.clone(),
                            });
                        }
                        Err(e) if e.status() == Some(404) => {
                            why = Some(format!(
                                "Vault at {} holds no credential for credkey '{ck}' of issuer '{}' and role '{}'",
                                self.client.server(),
                                self.issuer,
                                self.role
                            ));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) if self.oidc_allowed() => {
                    log::info!("Kerberos login failed: {e}");
                    why = Some(e.to_string());
                }
                Err(e) => return Err(e),
            }
        }
        let why = why.unwrap_or_else(|| {
            format!(
                "no credkey for issuer '{}' and role '{}' (no --credkey in {} and no {})",
                self.issuer,
                self.role,
                self.ctx.opts_source,
                oidc::credkey_file(&self.ctx.home, &self.issuer, &self.role).display()
            )
        });
        if !self.oidc_allowed() {
            return Err(OidcError::NoTerminal {
                why,
                command: self.ctx.command_hint.clone(),
            }
            .into());
        }
        eprintln!("Authentication needed for {name}");
        let login = oidc::login(&self.client, &self.oidc_settings())?;
        let credkey = match credkey.or_else(|| login.credkey.clone()) {
            Some(ck) => ck,
            None => {
                return Err(OidcError::Incomplete {
                    server: self.client.server(),
                    what: "no credkey in the login metadata",
                }
                .into());
            }
        };
        if self.opts.credkey.is_none()
            && let Some(ck) = &login.credkey
        {
            oidc::save_credkey(&self.ctx.home, &self.issuer, &self.role, ck)?;
        }
        oidc::store_refresh_token(&self.client, &login, &self.issuer, &credkey, &self.role)?;
        let (token, expires) = self.shorten(login.auth, ttl)?;
        let path = crate::vault::secret_path(false, &self.issuer, &credkey, &self.role);
        let bearer = self
            .client
            .read_bearer(&token, &path, &self.query_params())?;
        Ok(Minted {
            token,
            expires,
            bearer,
            credkey,
        })
    }

    fn oidc_allowed(&self) -> bool {
        self.ctx.interactive && !self.opts.nooidc
    }

    fn oidc_settings(&self) -> OidcSettings {
        let host = self
            .opts
            .vaultalias
            .as_deref()
            .and_then(|a| ServerAddress::parse(a).ok())
            .unwrap_or_else(|| self.server.clone());
        OidcSettings {
            issuer: self.issuer.clone(),
            role: self.role.clone(),
            redirect_host: format!("{}:{}", host.host, host.port),
            web_open_command: self
                .opts
                .web_open_command
                .clone()
                .or_else(|| self.ctx.web_open_command.clone()),
            timeout: self.ctx.oidc_timeout,
        }
    }

    /// Exchanges a login token longer than `ttl`; returns it with its expiry time.
    fn shorten(
        &self,
        auth: crate::vault::AuthInfo,
        ttl: Duration,
    ) -> Result<(VaultToken, i64), StoreError> {
        let auth = if crate::get::plan::needs_exchange(auth.lease_duration, ttl) {
            self.client.create_token(&auth.token, ttl.as_secs())?
        } else {
            auth
        };
        let lease = match auth.lease_duration {
            Some(l) => l,
            None => self.client.lookup_self_ttl(&auth.token)?,
        };
        let now = token::unix_seconds(SystemTime::now());
        Ok((
            auth.token,
            now + i64::try_from(lease).unwrap_or(i64::MAX / 4),
        ))
    }

    fn kerberos_login(&self) -> Result<crate::vault::AuthInfo, StoreError> {
        let mount = crate::vault::kerberos_mount(&self.issuer, &self.role);
        let host = self.service_host.clone();
        let init = match &self.ctx.keytab {
            Some(kt) => {
                kerberos::check_keytab(kt)?;
                let principal = kerberos::choose_principal(kt, self.ctx.principal.as_deref())?;
                Initiator::from_keytab(kt, &principal, None)?
            }
            None => Initiator::from_default_ccache()?,
        };
        let result = self
            .client
            .login_kerberos(&mount, &mut || init.negotiate_header(&host))
            .map_err(|e| match e {
                LoginError::Kerberos(k) => StoreError::Kerberos(k),
                LoginError::Vault(v) => StoreError::from(v),
            })?;
        log::info!(
            "Kerberos login to {} at auth/{mount} succeeded",
            self.client.server()
        );
        Ok(result)
    }

    fn query(&self, name: &str, s: Option<&str>, a: Option<&str>) -> Result<Query, StoreError> {
        let ctx = self.ctx;
        let args = plan::store_cred_args(
            "query-oauth",
            ctx.user.as_deref(),
            name,
            s,
            a,
            &ctx.storecred_opts,
        );
        let r =
            condor::run_tool("condor_store_cred", &args, None, false).map_err(StoreError::Tool)?;
        let q = plan::query_result(r.code);
        log::debug!(
            "condor_store_cred query-oauth -s {name}: exit {} ({q:?})",
            r.code
        );
        Ok(q)
    }

    fn add(
        &self,
        name: &str,
        s: Option<&str>,
        a: Option<&str>,
        json: &str,
    ) -> Result<(), StoreError> {
        let ctx = self.ctx;
        let args = plan::store_cred_args(
            "add-oauth",
            ctx.user.as_deref(),
            name,
            s,
            a,
            &ctx.storecred_opts,
        );
        log::info!("Storing condor credentials for {name}");
        let r = condor::run_tool(
            "condor_store_cred",
            &args,
            Some(json.as_bytes()),
            ctx.verbose,
        )
        .map_err(StoreError::Tool)?;
        if r.code != 0 {
            let said = r
                .stderr
                .trim()
                .lines()
                .chain(r.stdout.trim().lines())
                .next()
                .unwrap_or("")
                .to_owned();
            return Err(StoreError::StoreFailed {
                name: name.to_owned(),
                detail: if said.is_empty() {
                    format!(
                        "condor_store_cred exited with {} (run with -v to see its output)",
                        r.code
                    )
                } else {
                    said
                },
            });
        }
        Ok(())
    }
}
