//! `TestVault`: an in-process HTTPS imitation of htvault-config on OpenBao (Kerberos login,
//! token store, oauthapp `creds`/`sts`) with a fake RS256 token issuer, fault injection and
//! a request log. See vault-token-service.md §1 and §5.4 for the behaviour it copies.
//!
//! * Kerberos logins are checked by a real GSS acceptor (the `service.keytab` of a
//!   [`Kdc`](super::kdc::Kdc)) with a file replay cache, so replayed headers fail.
//! * The Vault clock is real time plus an offset the test sets ([`TestVault::advance_clock`]);
//!   token TTLs, JWT `iat`/`exp` and `minimum_seconds` all use it.
//! * Request records never show token values in `Debug` output.
//!
//! Threads: one accept thread and one per connection; dropping the `TestVault` stops them
//! (bounded wait).

mod api;
mod fault;
mod http;
mod jwt;
mod oauth;
mod oidc;
mod shared;
mod store;

use std::collections::VecDeque;
use std::fmt;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::gss;
use super::kdc::Kdc;
use super::pki::TestPki;
use store::{CredStore, Credential, TokenEntry, TokenStore};

pub use fault::Fault;
#[allow(unused_imports)]
pub use jwt::KEY_ID;
#[allow(unused_imports)]
pub use oidc::OidcScript;
use shared::{Shared, lock, method_matches, read, write};

/// Settings of a [`TestVault`]; build with [`VaultConfig::new`] or [`VaultConfig::for_kdc`].
#[derive(Clone, Debug)]
pub struct VaultConfig {
    /// Directory for `ca.pem` and the replay cache.
    pub dir: PathBuf,
    /// Configured Kerberos mounts as (issuer, role): `auth/kerberos-<issuer>_<role>`.
    pub mounts: Vec<(String, String)>,
    /// Keytab of the service principal(s) (`host/localhost`); `None` makes every login 401.
    pub service_keytab: Option<PathBuf>,
    /// Directory of the acceptor's replay cache file (defaults to `dir`).
    pub rcache_dir: PathBuf,
    /// Only clients of this realm may log in; `None` accepts any.
    pub realm: Option<String>,
    /// `lease_duration` of login tokens (htvault-config: 672 h).
    pub login_lease: u64,
    /// Cap for `auth/token/create` TTLs, and the TTL when none is asked for.
    pub token_max_ttl: u64,
    /// Lifetime of minted access tokens in seconds (can be changed later).
    pub jwt_lifetime: u64,
    /// `iss` claim template with `{issuer}` and `{port}`; default
    /// `https://localhost:{port}/issuer/{issuer}` (served with its JWKS).
    pub issuer_url: Option<String>,
    /// `scope` of a credential's base access token.
    pub default_scope: String,
    /// `aud` of a credential's base access token.
    pub default_audience: String,
    /// Maximum simultaneous connections; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Idle keep-alive connections are closed after this long.
    pub idle_timeout: Duration,
    /// The request log keeps at most this many records (oldest dropped first), so a
    /// long-running benchmark cannot grow without bound; counts cover only kept records.
    pub log_limit: usize,
    /// Port on 127.0.0.1; 0 (the default) picks a free one. HTCondor's Python
    /// credmon accepts only Vault URLs on port 8200, so its benchmark uses that.
    pub port: u16,
}

impl VaultConfig {
    /// Defaults: mount `igwn_robot`, no keytab, 2 419 200 s logins, 3 h tokens.
    pub fn new(dir: &Path) -> VaultConfig {
        VaultConfig {
            dir: dir.to_path_buf(),
            mounts: vec![("igwn".to_string(), "robot".to_string())],
            service_keytab: None,
            rcache_dir: dir.to_path_buf(),
            realm: None,
            login_lease: 2_419_200,
            token_max_ttl: 2_419_200,
            jwt_lifetime: 10_800,
            issuer_url: None,
            default_scope: "storage.read:/ storage.create:/ compute.create".to_string(),
            default_audience: "https://wlcg.cern.ch/jwt/v1/any".to_string(),
            max_connections: 256,
            idle_timeout: Duration::from_secs(120),
            log_limit: 1_000_000,
            port: 0,
        }
    }

    /// [`VaultConfig::new`] with the KDC's service keytab and realm.
    pub fn for_kdc(dir: &Path, kdc: &Kdc) -> VaultConfig {
        VaultConfig {
            service_keytab: Some(kdc.service_keytab().to_path_buf()),
            realm: Some(kdc.realm().to_string()),
            ..VaultConfig::new(dir)
        }
    }
}

/// One request as the Vault saw it. `Debug` shows no header values and no body text.
#[derive(Clone)]
pub struct RequestRecord {
    pub method: String,
    /// Path without query string.
    pub path: String,
    /// Raw query string (no `?`).
    pub query: String,
    /// An `X-Vault-Token` header was sent.
    pub has_token: bool,
    /// The `X-Vault-Token` sent (a secret: not shown by `Debug`).
    pub vault_token: Option<String>,
    /// An `Authorization: Negotiate` header was sent.
    pub has_negotiate: bool,
    /// Status answered; 0 if the connection was dropped.
    pub status: u16,
    /// Lower-case names of the request headers.
    pub header_names: Vec<String>,
    /// Request body (may hold secrets such as refresh tokens; not shown by `Debug`).
    pub body: String,
    /// Connection number (same number = same keep-alive connection).
    pub connection: u64,
    /// When the request had arrived and when it was answered.
    pub started: Instant,
    pub answered: Instant,
}

impl fmt::Debug for RequestRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}{}{} -> {} (token: {}, negotiate: {}, body: {} bytes, conn {})",
            self.method,
            self.path,
            if self.query.is_empty() { "" } else { "?" },
            self.query,
            self.status,
            self.has_token,
            self.has_negotiate,
            self.body.len(),
            self.connection
        )
    }
}

/// What the Vault knows about a token (see [`TestVault::token_info`]).
#[derive(Clone, Debug)]
pub struct TokenInfo {
    pub policies: Vec<String>,
    /// Entity alias: Kerberos user (principal without realm) or OIDC credkey.
    pub alias: Option<String>,
    /// Remaining seconds on the Vault clock (negative once expired).
    pub ttl: i64,
    pub creation_ttl: u64,
    pub renewable: bool,
    pub revoked: bool,
    /// Created by `auth/token/create` from another token.
    pub has_parent: bool,
    /// `auth/kerberos-…/login`, `auth/token/create` or `provisioned`.
    pub path: String,
}

/// The running fake Vault; stopped on drop.
pub struct TestVault {
    shared: Arc<Shared>,
    pki: TestPki,
    accept: Option<JoinHandle<()>>,
}

impl fmt::Debug for TestVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestVault")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl TestVault {
    /// Generates a CA into `cfg.dir`, loads the acceptor credential, and starts listening on
    /// 127.0.0.1 (`cfg.port`, by default a free one).
    pub fn start(cfg: VaultConfig) -> Result<TestVault, String> {
        std::fs::create_dir_all(&cfg.dir)
            .map_err(|e| format!("could not create '{}': {e}", cfg.dir.display()))?;
        let pki = TestPki::generate(&cfg.dir)?;
        let acceptor = match &cfg.service_keytab {
            Some(kt) => Some(gss::acceptor_cred(
                kt,
                &cfg.rcache_dir.join("vault.rcache2"),
            )?),
            None => None,
        };
        jwt::warm_up()?;
        let listener = TcpListener::bind(("127.0.0.1", cfg.port))
            .map_err(|e| format!("could not bind 127.0.0.1:{}: {e}", cfg.port))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("no local address: {e}"))?
            .port();
        let shared = Arc::new(Shared {
            tls: pki.server_config()?,
            jwt_lifetime: AtomicU64::new(cfg.jwt_lifetime),
            cfg,
            port,
            acceptor,
            stop: AtomicBool::new(false),
            clock_offset: AtomicI64::new(0),
            tokens: TokenStore::default(),
            creds: CredStore::default(),
            faults: Mutex::new(Vec::new()),
            fault_hits: AtomicU64::new(0),
            streamed: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            log: Mutex::new(VecDeque::new()),
            login_errors: Mutex::new(Vec::new()),
            refreshes: AtomicU64::new(0),
            exchanges: AtomicU64::new(0),
            logins: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            oidc: Mutex::new(oidc::OidcState::default()),
            accept_done: AtomicBool::new(false),
            gate: Mutex::new(()),
            events: Condvar::new(),
        });
        let sh = shared.clone();
        let accept = thread::Builder::new()
            .name("test-vault-accept".into())
            .spawn(move || {
                http::accept_loop(sh.clone(), listener);
                sh.accept_done.store(true, Ordering::SeqCst);
                sh.changed();
            })
            .map_err(|e| format!("could not start accept thread: {e}"))?;
        Ok(TestVault {
            shared,
            pki,
            accept: Some(accept),
        })
    }

    /// `https://localhost:<port>` (Kerberos needs `localhost`: the service is `host/localhost`).
    pub fn url(&self) -> String {
        self.shared.url()
    }

    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// The CA certificate that signed the server certificate.
    pub fn ca_file(&self) -> &Path {
        self.pki.ca_file()
    }

    pub fn pki(&self) -> &TestPki {
        &self.pki
    }

    /// `/v1/auth/kerberos-<issuer>_<role>/login`.
    pub fn login_path(issuer: &str, role: &str) -> String {
        format!("/v1/auth/kerberos-{issuer}_{role}/login")
    }

    /// `/v1/secret/oauth/creds/<issuer>/<credkey>:<role>`.
    pub fn creds_path(issuer: &str, credkey: &str, role: &str) -> String {
        format!("/v1/secret/oauth/creds/{issuer}/{credkey}:{role}")
    }

    /// `/v1/secret/oauth/sts/<issuer>/<credkey>:<role>`.
    pub fn sts_path(issuer: &str, credkey: &str, role: &str) -> String {
        format!("/v1/secret/oauth/sts/{issuer}/{credkey}:{role}")
    }

    /// Full URL of the creds path (what goes into a `.top` file as `vault_url`).
    pub fn creds_url(&self, issuer: &str, credkey: &str, role: &str) -> String {
        format!("{}{}", self.url(), Self::creds_path(issuer, credkey, role))
    }

    /// The `iss` claim of tokens from `issuer`.
    pub fn issuer_url(&self, issuer: &str) -> String {
        self.shared.issuer_url(issuer)
    }

    /// The JWKS served at `<url>/issuer/<issuer>/jwks`.
    pub fn jwks(&self) -> Result<serde_json::Value, String> {
        jwt::jwks()
    }

    // -- clock -----------------------------------------------------------------------------

    /// Vault clock in seconds since the epoch.
    pub fn now(&self) -> i64 {
        self.shared.now_ms().div_euclid(1000)
    }

    /// Sets the Vault clock to real time plus `secs`.
    pub fn set_clock_offset(&self, secs: i64) {
        self.shared.clock_offset.store(secs, Ordering::SeqCst);
    }

    /// Moves the Vault clock forward by `secs` (negative: back).
    pub fn advance_clock(&self, secs: i64) {
        self.shared.clock_offset.fetch_add(secs, Ordering::SeqCst);
    }

    pub fn clock_offset(&self) -> i64 {
        self.shared.clock_offset.load(Ordering::SeqCst)
    }

    // -- tokens ----------------------------------------------------------------------------

    /// A token as a Kerberos login of `alias` (principal without realm) on mount
    /// `<issuer>_<role>` would get, with lifetime `ttl` s, without Kerberos.
    pub fn provision_token(&self, issuer: &str, role: &str, alias: &str, ttl: u64) -> String {
        let policies = vec![format!("kerberos-{issuer}_{role}"), "tokenops".to_string()];
        let mut e = TokenEntry::new(
            policies,
            Some(alias.to_string()),
            self.shared.now_ms(),
            ttl,
            "provisioned",
        );
        e.display_name = format!("kerberos-{alias}");
        self.shared.tokens.insert(e)
    }

    /// A token like an OIDC login of `credkey` for `<issuer>`/`<role>` (may store refresh tokens).
    pub fn provision_oidc_token(
        &self,
        issuer: &str,
        role: &str,
        credkey: &str,
        ttl: u64,
    ) -> String {
        let policies = vec![format!("oidc-{issuer}_{role}"), "tokenops".to_string()];
        let mut e = TokenEntry::new(
            policies,
            Some(credkey.to_string()),
            self.shared.now_ms(),
            ttl,
            "provisioned",
        );
        e.display_name = format!("oidc-{credkey}");
        self.shared.tokens.insert(e)
    }

    /// Revokes `token` and its children; false if unknown.
    pub fn revoke_token(&self, token: &str) -> bool {
        self.shared.tokens.revoke(token)
    }

    /// Makes `token` expire now; false if unknown.
    pub fn expire_token(&self, token: &str) -> bool {
        self.shared.tokens.expire(token, self.shared.now_ms())
    }

    /// Makes every token issued so far expire now.
    pub fn expire_all_tokens(&self) {
        self.shared.tokens.expire_all(self.shared.now_ms());
    }

    pub fn token_info(&self, token: &str) -> Option<TokenInfo> {
        let e = self.shared.tokens.get(token)?;
        Some(TokenInfo {
            ttl: e.ttl(self.shared.now_ms()),
            policies: e.policies,
            alias: e.alias,
            creation_ttl: e.creation_ttl,
            renewable: e.renewable,
            revoked: e.revoked,
            has_parent: e.parent.is_some(),
            path: e.path,
        })
    }

    /// Number of tokens ever issued (logins, children, provisioned).
    pub fn token_count(&self) -> usize {
        self.shared.tokens.len()
    }

    /// Successful Kerberos logins.
    pub fn logins(&self) -> u64 {
        self.shared.logins.load(Ordering::SeqCst)
    }

    /// Why recent Kerberos logins failed (server-side reasons, newest last, at most 100).
    pub fn login_errors(&self) -> Vec<String> {
        lock(&self.shared.login_errors).clone()
    }

    // -- oauthapp credentials -------------------------------------------------------------

    /// Registers credential `<issuer>/<credkey>:<role>` with a valid refresh token (as if the
    /// owner had done the OIDC flow). Replaces an existing one.
    pub fn add_credential(&self, issuer: &str, credkey: &str, role: &str) {
        let cfg = &self.shared.cfg;
        let cred = Credential::new(credkey, &cfg.default_scope, &cfg.default_audience);
        self.shared
            .creds
            .insert(CredStore::key(issuer, credkey, role), cred);
    }

    /// Like [`TestVault::add_credential`] with explicit `scope` and `aud` claims.
    pub fn add_credential_with(
        &self,
        issuer: &str,
        credkey: &str,
        role: &str,
        scope: &str,
        audience: &str,
    ) {
        self.shared.creds.insert(
            CredStore::key(issuer, credkey, role),
            Credential::new(credkey, scope, audience),
        );
    }

    pub fn remove_credential(&self, issuer: &str, credkey: &str, role: &str) -> bool {
        self.shared
            .creds
            .remove(&CredStore::key(issuer, credkey, role))
    }

    pub fn credential_count(&self) -> usize {
        self.shared.creds.len()
    }

    /// Makes the issuer refuse this credential's refresh token (`refresh failed: invalid_grant`
    /// once the cached access token is no longer good enough).
    pub fn revoke_refresh_token(&self, issuer: &str, credkey: &str, role: &str) -> bool {
        self.with_credential(issuer, credkey, role, |c| c.refresh_valid = false)
            .is_some()
    }

    /// Makes every cached access (and sts) token expire now, forcing refreshes.
    pub fn expire_access_tokens(&self) {
        let now = self.now();
        for cred in self.shared.creds.all() {
            let mut c = lock(&cred);
            if let Some(a) = c.access.as_mut() {
                a.exp = a.exp.min(now);
            }
            c.sts.clear();
        }
    }

    /// The access token the Vault currently caches for the credential.
    pub fn current_access_token(&self, issuer: &str, credkey: &str, role: &str) -> Option<String> {
        self.with_credential(issuer, credkey, role, |c| {
            c.access.as_ref().map(|a| a.token.clone())
        })
        .flatten()
    }

    /// Issuer refreshes for one credential.
    pub fn credential_refreshes(&self, issuer: &str, credkey: &str, role: &str) -> u64 {
        self.with_credential(issuer, credkey, role, |c| c.refreshes)
            .unwrap_or(0)
    }

    /// Issuer refreshes (new base access tokens) over all credentials.
    pub fn issuer_refreshes(&self) -> u64 {
        self.shared.refreshes.load(Ordering::SeqCst)
    }

    /// Token exchanges done for `sts` reads.
    pub fn sts_exchanges(&self) -> u64 {
        self.shared.exchanges.load(Ordering::SeqCst)
    }

    /// Changes the lifetime of access tokens minted from now on.
    pub fn set_jwt_lifetime(&self, secs: u64) {
        self.shared.jwt_lifetime.store(secs, Ordering::SeqCst);
    }

    fn with_credential<T>(
        &self,
        issuer: &str,
        credkey: &str,
        role: &str,
        f: impl FnOnce(&mut Credential) -> T,
    ) -> Option<T> {
        let cred = self
            .shared
            .creds
            .get(&CredStore::key(issuer, credkey, role))?;
        let mut c = lock(&cred);
        Some(f(&mut c))
    }

    /// Enables the OIDC endpoints with this script (they answer 400 until then).
    pub fn set_oidc(&self, script: OidcScript) {
        lock(&self.shared.oidc).script = Some(script);
    }

    /// OIDC polls answered so far.
    pub fn oidc_polls(&self) -> usize {
        self.count_where(|r| r.path.ends_with("/oidc/poll"))
    }

    // -- faults -----------------------------------------------------------------------------

    /// Adds a fault; faults are tried in the order they were added.
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Body bytes sent so far by streamed (slow or endless) fault answers.
    pub fn streamed_bytes(&self) -> u64 {
        self.shared.streamed.load(Ordering::SeqCst)
    }

    /// How many requests a fault has fired on.
    pub fn faults_fired(&self) -> u64 {
        self.shared.fault_hits.load(Ordering::SeqCst)
    }

    /// Faults that can still fire.
    pub fn faults_pending(&self) -> usize {
        lock(&self.shared.faults).len()
    }

    // -- request log ------------------------------------------------------------------------

    /// The request log, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.log).iter().cloned().collect()
    }

    /// The requests logged after `t`, oldest first (a long run's incremental view).
    pub fn requests_since(&self, t: Instant) -> Vec<RequestRecord> {
        let log = lock(&self.shared.log);
        let newer = log.iter().rev().take_while(|r| r.answered > t).count();
        log.iter().skip(log.len() - newer).cloned().collect()
    }

    /// Requests with this method (`"*"` = any) and exactly this path.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.count_where(|r| method_matches(method, &r.method) && r.path == path)
    }

    /// Requests with this method (`"*"` = any) whose path starts with `prefix`.
    pub fn count_prefix(&self, method: &str, prefix: &str) -> usize {
        self.count_where(|r| method_matches(method, &r.method) && r.path.starts_with(prefix))
    }

    /// Requests under `prefix` answered with `status`.
    pub fn count_status(&self, prefix: &str, status: u16) -> usize {
        self.count_where(|r| r.status == status && r.path.starts_with(prefix))
    }

    pub fn count_where(&self, pred: impl Fn(&RequestRecord) -> bool) -> usize {
        lock(&self.shared.log).iter().filter(|r| pred(r)).count()
    }

    /// Waits (bounded by `timeout`) until [`TestVault::count_prefix`] reaches `n`.
    pub fn wait_for_count(&self, method: &str, prefix: &str, n: usize, timeout: Duration) -> bool {
        self.shared
            .wait_for(timeout, || self.count_prefix(method, prefix) >= n)
    }

    /// Clears the request log and the refresh/exchange/login/connection counters.
    pub fn reset_counters(&self) {
        lock(&self.shared.log).clear();
        for c in [
            &self.shared.refreshes,
            &self.shared.exchanges,
            &self.shared.logins,
            &self.shared.connections,
        ] {
            c.store(0, Ordering::SeqCst);
        }
        self.shared.fault_hits.store(0, Ordering::SeqCst);
    }

    /// The most requests handled at once since the start or the last call
    /// (which starts counting again from those in flight now).
    pub fn take_max_in_flight(&self) -> usize {
        let now = self.shared.in_flight.load(Ordering::SeqCst);
        self.shared.max_in_flight.swap(now, Ordering::SeqCst)
    }

    /// TLS connections accepted (keep-alive reuse keeps this low).
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Stops the listener and waits (at most ~3 s) for connection threads. Idempotent.
    pub fn stop(&mut self) {
        self.shared.set_stop();
        let Some(accept) = self.accept.take() else {
            return;
        };
        // Wake the blocking accept().
        let _ = TcpStream::connect_timeout(
            &([127, 0, 0, 1], self.shared.port).into(),
            Duration::from_millis(500),
        );
        let deadline = Instant::now() + Duration::from_secs(3);
        let sh = &self.shared;
        if sh.wait_for(Duration::from_secs(3), || {
            sh.accept_done.load(Ordering::SeqCst)
        }) {
            let _ = accept.join();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        sh.wait_for(left, || sh.active.load(Ordering::SeqCst) == 0);
    }
}

impl Drop for TestVault {
    fn drop(&mut self) {
        self.stop();
    }
}
