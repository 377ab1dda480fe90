//! State shared by the test Vault's accept and connection threads.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{
    Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libgssapi::credential::Cred;

use super::store::{CredStore, TokenStore};
use super::{Fault, RequestRecord, VaultConfig, http};

/// State shared by the accept and connection threads.
pub(super) struct Shared {
    pub(super) cfg: VaultConfig,
    pub(super) port: u16,
    pub(super) tls: Arc<rustls::ServerConfig>,
    pub(super) acceptor: Option<Cred>,
    pub(super) stop: AtomicBool,
    pub(super) clock_offset: AtomicI64,
    pub(super) jwt_lifetime: AtomicU64,
    pub(super) tokens: TokenStore,
    pub(super) creds: CredStore,
    pub(super) faults: Mutex<Vec<Fault>>,
    pub(super) fault_hits: AtomicU64,
    pub(super) log: Mutex<VecDeque<RequestRecord>>,
    pub(super) login_errors: Mutex<Vec<String>>,
    pub(super) refreshes: AtomicU64,
    pub(super) exchanges: AtomicU64,
    pub(super) logins: AtomicU64,
    pub(super) connections: AtomicU64,
    pub(super) active: AtomicUsize,
    /// Body bytes sent by streamed (slow or endless) answers.
    pub(super) streamed: AtomicU64,
    /// Requests being handled now, and the most at once since the last reset.
    pub(super) in_flight: AtomicUsize,
    pub(super) max_in_flight: AtomicUsize,
    pub(super) oidc: Mutex<super::oidc::OidcState>,
    /// Set when the accept loop has returned.
    pub(super) accept_done: AtomicBool,
    /// Held while a waiter looks at the state and by [`Shared::changed`].
    pub(super) gate: Mutex<()>,
    /// Signalled by [`Shared::changed`]: the server stops, a connection ends,
    /// the accept loop returns, a request is logged.
    pub(super) events: Condvar,
}

impl Shared {
    pub(super) fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    pub(super) fn issuer_url(&self, issuer: &str) -> String {
        match &self.cfg.issuer_url {
            Some(t) => t
                .replace("{issuer}", issuer)
                .replace("{port}", &self.port.to_string()),
            None => format!("{}/issuer/{issuer}", self.url()),
        }
    }

    pub(super) fn now_ms(&self) -> i64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        i64::try_from(real).unwrap_or(i64::MAX / 2)
            + self.clock_offset.load(Ordering::SeqCst) * 1000
    }

    pub(super) fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sets the stop flag and wakes every waiter.
    pub(super) fn set_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.changed();
    }

    /// Wakes every [`Shared::wait_for`]: call after changing what they look at.
    pub(super) fn changed(&self) {
        let _gate = lock(&self.gate);
        self.events.notify_all();
    }

    /// Blocks until `cond` holds (true) or `timeout` has passed (false),
    /// looking again whenever [`Shared::changed`] is called. `cond` must
    /// not call [`Shared::changed`].
    pub(super) fn wait_for(&self, timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut gate = lock(&self.gate);
        loop {
            if cond() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            gate = self
                .events
                .wait_timeout(gate, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Waits `d`, returning early when the server stops.
    pub(super) fn sleep(&self, d: Duration) {
        self.wait_for(d, || self.stopping());
    }

    /// The first fault matching this request, consuming one use of it.
    pub(super) fn take_fault(&self, method: &str, path: &str) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let idx = faults.iter().position(|f| {
            path.starts_with(&f.prefix)
                && f.method.as_deref().is_none_or(|m| m == method)
                && f.remaining != Some(0)
        })?;
        let fault = faults[idx].clone();
        if let Some(n) = faults[idx].remaining.as_mut() {
            *n -= 1;
            if *n == 0 {
                faults.remove(idx);
            }
        }
        self.fault_hits.fetch_add(1, Ordering::SeqCst);
        Some(fault)
    }

    /// One more request being handled (see [`Shared::done`]).
    pub(super) fn begin(&self) {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
    }

    /// A request was answered.
    pub(super) fn done(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    pub(super) fn record(&self, req: &http::Request, status: u16, started: Instant) {
        let has_negotiate = req.header("authorization").is_some_and(|v| {
            v.trim_start()
                .get(..9)
                .is_some_and(|s| s.eq_ignore_ascii_case("negotiate"))
        });
        let mut rec = RequestRecord {
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query.clone(),
            has_token: req.header("x-vault-token").is_some(),
            vault_token: req.header("x-vault-token").map(str::to_owned),
            has_negotiate,
            status,
            header_names: req
                .headers
                .iter()
                .map(|(k, _)| k.to_ascii_lowercase())
                .collect(),
            body: String::from_utf8_lossy(&req.body).into_owned(),
            connection: req.connection,
            started,
            answered: Instant::now(),
        };
        {
            let mut log = lock(&self.log);
            // Stamped under the lock: the log is in answer order.
            rec.answered = Instant::now();
            if log.len() >= self.cfg.log_limit.max(1) {
                log.pop_front();
            }
            log.push_back(rec);
        }
        self.changed();
    }

    pub(super) fn note_login_error(&self, e: String) {
        let mut errs = lock(&self.login_errors);
        if errs.len() >= 100 {
            errs.remove(0);
        }
        errs.push(e);
    }
}

pub(super) fn method_matches(want: &str, got: &str) -> bool {
    want == "*" || want.eq_ignore_ascii_case(got)
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}
