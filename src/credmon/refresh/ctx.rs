//! State shared by the refresh workers: the configuration, one Vault API
//! per server (from the injected [`Connector`]), warnings said once (or once
//! a day), the problems the state file reports, and the file modes.

use super::Key;
use crate::credmon::config::Config;
use crate::env::{Env, Mono};
use crate::files::WriteOptions;
use crate::status::state::{Settings, Tracker};
use crate::vault::{Api, Connector, Https, Limits, ServerAddress, Trust, VaultError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

/// State shared by the workers: configuration, one Vault API per server.
pub struct Ctx {
    cfg: RwLock<Arc<Config>>,
    connector: Arc<dyn Connector>,
    clients: Mutex<HashMap<(String, u16), Arc<dyn Api>>>,
    tls: Mutex<Option<Trust>>,
    warned: Mutex<HashMap<Key, String>>,
    daily: Mutex<HashMap<Key, SystemTime>>,
    status: Tracker,
    env: Env,
}

/// How often a problem that lasts is logged again ([`Ctx::warn_daily`]).
const DAILY: Duration = Duration::from_secs(86_400);

impl Ctx {
    /// A context for `cfg` in `env`, talking to Vault over HTTPS; files are
    /// given to root when we run as root.
    pub fn new(cfg: Arc<Config>, env: &Env) -> Self {
        let status = Tracker::new(Settings::of(&cfg));
        Self {
            cfg: RwLock::new(cfg),
            connector: Arc::new(Https::new(env)),
            clients: Mutex::new(HashMap::new()),
            tls: Mutex::new(None),
            warned: Mutex::new(HashMap::new()),
            daily: Mutex::new(HashMap::new()),
            status,
            env: env.clone(),
        }
    }

    /// Owner of the files we write: root when we run as root.
    fn file_owner(&self) -> Option<(u32, u32)> {
        self.is_root().then_some((0, 0))
    }

    /// The effective uid: the owner the files we read back must have.
    pub fn euid(&self) -> u32 {
        self.env.euid()
    }

    /// Whether we run as root.
    pub fn is_root(&self) -> bool {
        self.env.is_root()
    }

    /// The time now (for token lifetimes).
    pub fn now(&self) -> SystemTime {
        self.env.now()
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
        self.status.set_settings(Settings::of(&cfg));
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

    /// Logs `msg` at warning level unless something was logged this way for
    /// `key` within the last day (a problem only a person can fix is said
    /// once a day, not at every retry).
    pub fn warn_daily(&self, key: &Key, msg: &str) {
        let now = self.now();
        let mut d = self.daily.lock().unwrap_or_else(|p| p.into_inner());
        let recent = d
            .get(key)
            .is_some_and(|t| now.duration_since(*t).is_ok_and(|age| age < DAILY));
        if !recent {
            log::warn!("{msg} (said once a day while it lasts)");
            d.insert(key.clone(), now);
        }
    }

    pub(super) fn clear_warning(&self, key: &Key) {
        self.warned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        self.daily
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// The problems the state file reports ([`crate::status::state`]).
    pub fn status(&self) -> &Tracker {
        &self.status
    }

    /// The same context reaching Vault through `connector` instead of HTTPS
    /// (the simulation's model of Vault).
    pub fn with_connector(mut self, connector: Arc<dyn Connector>) -> Self {
        self.connector = connector;
        self
    }

    /// The Vault API for `host:port` (made once, then shared by the workers).
    pub(super) fn client(&self, host: &str, port: u16) -> Result<Arc<dyn Api>, VaultError> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(&(host.to_owned(), port)) {
            return Ok(c.clone());
        }
        let cfg = self.config();
        let trust = self.tls_config()?;
        let server = ServerAddress {
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
        let client = self.connector.connect(&server, None, &trust, &limits)?;
        clients.insert((host.to_owned(), port), client.clone());
        Ok(client)
    }

    /// The TLS trust for Vault (`AUTH_SSL_CLIENT_CAFILE`/`CADIR`, made
    /// ready once by the connector, then shared); making it early keeps the
    /// first request after a SIGHUP fast and shows a bad CA file at start.
    pub fn tls_config(&self) -> Result<Trust, VaultError> {
        let mut t = self.tls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = &*t {
            return Ok(t.clone());
        }
        let cfg = self.config();
        let made = (self.connector).share(Trust::Files(cfg.cafile.clone(), cfg.capath.clone()))?;
        *t = Some(made.clone());
        Ok(made)
    }

    /// A source of random numbers (seeded in the simulation).
    pub fn rng(&self) -> fastrand::Rng {
        self.env.rng()
    }

    /// The monotonic clock now.
    pub fn mono(&self) -> Mono {
        self.env.mono()
    }

    pub(super) fn use_opts(&self) -> WriteOptions {
        WriteOptions {
            mode: 0o400,
            owner: self.file_owner(),
            existing_owner: None,
            replace_symlink: true,
        }
    }

    pub(super) fn top_opts(&self) -> WriteOptions {
        WriteOptions {
            mode: 0o600,
            owner: self.file_owner(),
            existing_owner: None,
            replace_symlink: true,
        }
    }
}
