//! The Vault (OpenBao / htvault-config) HTTP client: Kerberos login, token
//! exchange, `lookup-self`, and bearer token reads from the oauthapp
//! `creds`/`sts` paths, as the [`Api`] the roles see through a [`Connector`].
//! All HTTP lives here (also the issuer documents `token --verify` fetches).
//! A client sends every request to one of its server name's addresses (IPv4
//! first, in resolver order), moves on to the next when that one cannot be
//! reached (refused, or no TCP and TLS handshake within the 2 s connect
//! timeout) and stays there; it looks the name up again every five minutes
//! ([`RESOLVE_INTERVAL`], on the injected clock). Transient failures are
//! retried with bounded, jittered backoff.

mod address;
pub mod api;
pub mod auth;
mod error;
mod requests;
mod retry;
pub mod tls;
mod types;

use address::Addresses;
pub use address::{RESOLVE_INTERVAL, ServerAddress};
pub use api::{Api, Connector, Https, LoginError, Trust};
pub use error::{LoginNeeded, VaultError, scrub};
use retry::{Failure, Retry, parse_retry_after, retry_delay};
pub use types::{AuthInfo, OidcLogin, OidcPoll, OidcStart, RefreshToken, VaultToken};

use crate::backoff::Backoff;
use crate::env::Clock;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde::Deserialize;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The Kerberos auth mount of an issuer and role, `kerberos-<issuer>_<role>`.
pub fn kerberos_mount(issuer: &str, role: &str) -> String {
    format!("kerberos-{issuer}_{role}")
}

/// The oauthapp path of a credential, `secret/oauth/creds/<issuer>/<credkey>:<role>`,
/// with `sts` instead of `creds` for a token exchange (scopes or audiences).
pub fn secret_path(exchange: bool, issuer: &str, credkey: &str, role: &str) -> String {
    let kind = if exchange { "sts" } else { "creds" };
    format!("secret/oauth/{kind}/{issuer}/{credkey}:{role}")
}

/// Timeouts and retry limits for one client.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Time allowed for one request once connected.
    pub request_timeout: Duration,
    /// Total time budget for retries of one operation.
    pub retry_budget: Duration,
    /// Backoff between retries.
    pub backoff: Backoff,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            retry_budget: Duration::from_secs(25),
            backoff: Backoff {
                base: Duration::from_millis(500),
                cap: Duration::from_secs(8),
            },
        }
    }
}

/// Where to send requests and whom to trust.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server (`https://host:port`).
    pub server: ServerAddress,
    /// Name to check in the server certificate (default: the server host).
    pub certname: Option<String>,
    /// TLS configuration (trust anchors).
    pub tls: Arc<rustls::ClientConfig>,
    /// Timeouts and retries.
    pub limits: Limits,
    /// The clock retries wait on.
    pub clock: Clock,
}

/// A client for one Vault server. Safe to share between threads.
pub struct VaultClient {
    cfg: ClientConfig,
    state: Mutex<Pinned>,
    requests: std::sync::atomic::AtomicU32,
}

/// The server's addresses and the HTTP client of the one in use.
#[derive(Default)]
struct Pinned {
    addrs: Addresses,
    http: Option<(SocketAddr, Client)>,
}

/// An answer as received: status, `Retry-After`, body.
struct Raw {
    status: u16,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

#[derive(Deserialize, Default)]
struct Envelope {
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    auth: Option<RawAuth>,
    #[serde(default)]
    errors: Option<Vec<String>>,
    #[serde(default)]
    warnings: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawAuth {
    client_token: String,
    #[serde(default)]
    lease_duration: Option<u64>,
    #[serde(default)]
    policies: Option<Vec<String>>,
    #[serde(default)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

impl VaultClient {
    /// Creates a client; nothing is resolved or connected until the first request.
    pub fn new(cfg: ClientConfig) -> Self {
        Self {
            cfg,
            state: Mutex::new(Pinned::default()),
            requests: Default::default(),
        }
    }

    /// Uses these addresses, in order, instead of resolving the server's name
    /// (like curl's `--resolve`); the first one that accepts a connection is kept.
    pub fn with_addresses(self, addrs: Vec<SocketAddr>) -> Self {
        {
            let mut st = self.lock();
            st.addrs = Addresses::fixed(addrs);
            st.http = None;
        }
        self
    }

    /// The server as `https://host:port`.
    pub fn server(&self) -> String {
        self.cfg.server.to_string()
    }

    /// The clock this client's retries wait on.
    pub fn clock(&self) -> &Clock {
        &self.cfg.clock
    }

    /// How many HTTP requests this client has sent (attempts included).
    pub fn request_count(&self) -> u32 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends a request for the API path `path` (under `/v1/`), retrying
    /// transient failures within the budget, and decodes Vault's answer.
    fn execute(
        &self,
        path: &str,
        retry: Retry,
        build: &mut dyn FnMut(&Client, &str) -> Option<RequestBuilder>,
    ) -> Result<Envelope, VaultError> {
        let url_path = format!("/v1/{path}");
        self.with_retries(retry, &mut || {
            let raw = self.attempt(&url_path, build)?;
            self.decode(path, raw)
        })
    }

    /// Runs `one` (one attempt) until it succeeds, fails for good, or the
    /// retry budget is spent.
    fn with_retries<T>(
        &self,
        retry: Retry,
        one: &mut dyn FnMut() -> Result<T, Box<Failure>>,
    ) -> Result<T, VaultError> {
        let clock = &self.cfg.clock;
        let start = clock.mono();
        let mut attempt = 0u32;
        loop {
            let failure = match one() {
                Ok(t) => return Ok(t),
                Err(f) => f,
            };
            let backoff = self.cfg.limits.backoff.delay(attempt, fastrand::f64());
            let delay = match retry_delay(&failure, retry, backoff) {
                Some(d) => d,
                None => return Err(failure.error),
            };
            if clock.mono().since(start) + delay >= self.cfg.limits.retry_budget {
                return Err(failure.error);
            }
            log::info!(
                "{}; retrying in {:.1} s",
                failure.error,
                delay.as_secs_f64()
            );
            clock.sleep(delay);
            attempt += 1;
        }
    }

    /// Fetches a document (`GET https://<server>/<url_path>`, e.g. an
    /// issuer's `/.well-known/openid-configuration`) through the same
    /// transport: pinning, failover, retries, time and size limits. Any
    /// status but 200 is an error.
    pub fn fetch_document(&self, url_path: &str) -> Result<Vec<u8>, VaultError> {
        let url_path = format!("/{}", url_path.trim_start_matches('/'));
        self.with_retries(Retry::Always, &mut || {
            let raw = self.attempt(&url_path, &mut |http, url| Some(http.get(url)))?;
            match raw {
                Some(r) if r.status == 200 => Ok(r.body),
                Some(r) => Err(Box::new(Failure {
                    error: self.status_error(
                        &url_path,
                        r.status,
                        vec![first_line(&r.body)],
                        vec![],
                        r.retry_after,
                    ),
                    sent: true,
                    retry_after: r.retry_after,
                })),
                None => Err(Failure::sent(
                    self.protocol(&url_path, "request was not built"),
                )),
            }
        })
    }

    /// One attempt at `url_path` (from the root, e.g. `/v1/auth/...`),
    /// failing over to the next address on connect errors (each address
    /// tried at most once); `None` when `build` made no request.
    fn attempt(
        &self,
        url_path: &str,
        build: &mut dyn FnMut(&Client, &str) -> Option<RequestBuilder>,
    ) -> Result<Option<Raw>, Box<Failure>> {
        let url = format!(
            "https://{}:{}{url_path}",
            self.tls_name(),
            self.cfg.server.port
        );
        let mut tried = Vec::new();
        loop {
            let (http, addr) = self.pinned().map_err(Failure::unsent)?;
            let Some(req) = build(&http, &url) else {
                return Ok(None);
            };
            self.requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            log::trace!("request {url_path} to {addr}");
            let e = match req.send() {
                Ok(resp) => return self.raw(url_path, resp).map(Some),
                Err(e) => e,
            };
            if !e.is_connect() || is_tls_trust_error(&e) {
                return Err(self.send_failure(&e, addr));
            }
            tried.push(addr);
            match self.fail_over(addr, &tried) {
                Some(next) => log::info!(
                    "cannot connect to {} at {addr}: {}; trying {next}",
                    self.server(),
                    short(&e)
                ),
                None => return Err(self.send_failure(&e, addr)),
            }
        }
    }

    /// A request to `addr` that could not be sent or answered.
    fn send_failure(&self, e: &reqwest::Error, addr: SocketAddr) -> Box<Failure> {
        if is_tls_trust_error(e) {
            return Failure::unsent(VaultError::TlsTrust {
                server: self.server(),
                detail: short(e),
            });
        }
        let error = VaultError::Transport {
            server: self.server(),
            detail: format!("{addr}: {}", short(e)),
        };
        if e.is_connect() {
            Failure::unsent(error)
        } else {
            Failure::sent(error)
        }
    }

    /// The status, `Retry-After` and body of an answer.
    fn raw(&self, url_path: &str, resp: Response) -> Result<Raw, Box<Failure>> {
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = self.read_body(url_path, resp)?;
        Ok(Raw {
            status,
            retry_after,
            body,
        })
    }

    /// Vault's answer to `path`: its envelope, or the error it reports.
    fn decode(&self, path: &str, raw: Option<Raw>) -> Result<Envelope, Box<Failure>> {
        let Some(Raw {
            status,
            retry_after,
            body,
        }) = raw
        else {
            return Err(Failure::unsent(
                self.protocol(path, "request was not built"),
            ));
        };
        let env: Envelope = if body.is_empty() {
            Envelope::default()
        } else {
            match serde_json::from_slice(&body) {
                Ok(env) => env,
                Err(_) if (200..300).contains(&status) => {
                    return Err(Failure::sent(self.protocol(path, "the answer is not JSON")));
                }
                Err(_) => Envelope {
                    errors: Some(vec![first_line(&body)]),
                    ..Envelope::default()
                },
            }
        };
        if status == 200 || status == 204 {
            return Ok(env);
        }
        Err(Box::new(Failure {
            error: self.status_error(
                path,
                status,
                env.errors.unwrap_or_default(),
                env.warnings.unwrap_or_default(),
                retry_after,
            ),
            sent: true,
            retry_after,
        }))
    }

    fn status_error(
        &self,
        path: &str,
        status: u16,
        errors: Vec<String>,
        warnings: Vec<String>,
        retry_after: Option<Duration>,
    ) -> VaultError {
        VaultError::Status {
            server: self.server(),
            path: path.to_owned(),
            status,
            errors,
            warnings,
            retry_after,
        }
    }

    /// Reads an answer's body within the request timeout and [`MAX_BODY_BYTES`].
    fn read_body(&self, path: &str, resp: Response) -> Result<Vec<u8>, Box<Failure>> {
        use std::io::Read;
        let announced = resp.content_length();
        // reqwest's timeout bounds each read, not the whole body: a server
        // that trickles a byte at a time is cut off here.
        #[allow(clippy::disallowed_methods)] // a real socket: its deadline is real time
        let deadline = Instant::now() + self.cfg.limits.request_timeout;
        let mut body = Vec::new();
        let mut reader = resp.take(MAX_BODY_BYTES as u64 + 1);
        let mut buf = [0u8; 16 * 1024];
        loop {
            #[allow(clippy::disallowed_methods)] // a real socket: its deadline is real time
            let late = Instant::now() > deadline;
            if late {
                return Err(Failure::sent(VaultError::Transport {
                    server: self.server(),
                    detail: format!(
                        "the answer to {path} took longer than {} s",
                        self.cfg.limits.request_timeout.as_secs()
                    ),
                }));
            }
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => body.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(Failure::sent(VaultError::Transport {
                        server: self.server(),
                        detail: format!("reading the answer: {}", short(&e)),
                    }));
                }
            }
        }
        if body.len() > MAX_BODY_BYTES {
            return Err(Failure::sent(self.protocol(
                path,
                &format!("the answer is larger than {MAX_BODY_BYTES} bytes"),
            )));
        }
        // A timeout while reading can end the body early without an error.
        if announced.is_some_and(|n| (body.len() as u64) < n) {
            return Err(Failure::sent(VaultError::Transport {
                server: self.server(),
                detail: format!(
                    "the answer to {path} was cut off (timed out after {} s, or the connection dropped)",
                    self.cfg.limits.request_timeout.as_secs()
                ),
            }));
        }
        Ok(body)
    }

    fn auth_of(&self, path: &str, env: Envelope) -> Result<AuthInfo, VaultError> {
        let auth = env
            .auth
            .ok_or_else(|| self.protocol(path, "no auth block in the answer"))?;
        let token = VaultToken::new(&auth.client_token)
            .ok_or_else(|| self.protocol(path, "empty client_token"))?;
        Ok(AuthInfo {
            token,
            lease_duration: auth.lease_duration,
            policies: auth.policies.unwrap_or_default(),
            user: auth
                .metadata
                .and_then(|m| m.get("user").and_then(|u| u.as_str()).map(str::to_owned)),
        })
    }

    fn protocol(&self, path: &str, detail: &str) -> VaultError {
        VaultError::Protocol {
            server: self.server(),
            path: path.to_owned(),
            detail: detail.to_owned(),
        }
    }

    fn tls_name(&self) -> &str {
        self.cfg
            .certname
            .as_deref()
            .unwrap_or(&self.cfg.server.host)
    }

    /// The address in use and its HTTP client; the server's name is looked
    /// up first when it never was or [`RESOLVE_INTERVAL`] has passed (outside
    /// the lock: a slow resolver does not hold up other requests).
    fn pinned(&self) -> Result<(Client, SocketAddr), VaultError> {
        let now = self.cfg.clock.mono();
        let due = self.lock().addrs.due(now);
        let found = due.then(|| self.resolve());
        let mut st = self.lock();
        match found {
            Some(Ok(found)) => {
                let before = st.addrs.list().to_vec();
                if let Some(list) = st.addrs.adopt(found, now)
                    && !before.is_empty()
                {
                    log::info!(
                        "{} now resolves to {} (was {})",
                        self.server(),
                        addr_list(list),
                        addr_list(&before)
                    );
                }
            }
            Some(Err(e)) if st.addrs.list().is_empty() => return Err(e),
            Some(Err(e)) => {
                log::warn!("{e}; keeping {}", addr_list(st.addrs.list()));
                st.addrs.keep(now);
            }
            None => {}
        }
        let addr = st
            .addrs
            .current()
            .ok_or_else(|| self.protocol("", "no address"))?;
        match &st.http {
            Some((a, http)) if *a == addr => Ok((http.clone(), addr)),
            _ => {
                let http = self.build_http(addr)?;
                st.http = Some((addr, http.clone()));
                Ok((http, addr))
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pinned> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `failed` could not be reached: the address to try now, if any is left
    /// untried by this request (see [`Addresses::fail_over`]).
    fn fail_over(&self, failed: SocketAddr, tried: &[SocketAddr]) -> Option<SocketAddr> {
        self.lock().addrs.fail_over(failed, tried)
    }

    /// Resolves the server: IPv4 addresses if there are any, else IPv6, in DNS order.
    fn resolve(&self) -> Result<Vec<SocketAddr>, VaultError> {
        let host = &self.cfg.server.host;
        let all: Vec<SocketAddr> = (host.as_str(), self.cfg.server.port)
            .to_socket_addrs()
            .map_err(|e| VaultError::Transport {
                server: self.server(),
                detail: format!("cannot resolve '{host}': {e}"),
            })?
            .collect();
        let v4: Vec<SocketAddr> = all.iter().copied().filter(SocketAddr::is_ipv4).collect();
        let chosen = if v4.is_empty() { all } else { v4 };
        if chosen.is_empty() {
            return Err(VaultError::Transport {
                server: self.server(),
                detail: format!("'{host}' has no addresses"),
            });
        }
        Ok(chosen)
    }

    fn build_http(&self, addr: SocketAddr) -> Result<Client, VaultError> {
        let tls = (*self.cfg.tls).clone();
        Client::builder()
            .tls_backend_preconfigured(tls)
            .resolve(self.tls_name(), addr)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.cfg.limits.connect_timeout)
            .timeout(self.cfg.limits.request_timeout)
            .user_agent(concat!("robot-credmon/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| VaultError::Tls(format!("cannot set up the HTTPS client: {}", short(&e))))
    }
}

/// Largest answer body we read from Vault.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The longest `Retry-After` we honour; longer ones are cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Whether a transport error is a failure to trust the server (unknown CA,
/// wrong name, expired certificate): permanent, never retried.
fn is_tls_trust_error(e: &reqwest::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if let Some(r) = s.downcast_ref::<rustls::Error>() {
            return matches!(
                r,
                rustls::Error::InvalidCertificate(_)
                    | rustls::Error::NoCertificatesPresented
                    | rustls::Error::UnsupportedNameType
            );
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(r) = inner.downcast_ref::<rustls::Error>()
        {
            return matches!(
                r,
                rustls::Error::InvalidCertificate(_)
                    | rustls::Error::NoCertificatesPresented
                    | rustls::Error::UnsupportedNameType
            );
        }
        src = s.source();
    }
    // Some layers box the TLS error as text: rustls's own wording.
    let text = short(e);
    text.contains("invalid peer certificate") || text.contains("peer sent no certificates")
}

/// Addresses for messages: `127.0.0.1:8200, 127.0.0.2:8200`.
fn addr_list(list: &[SocketAddr]) -> String {
    let v: Vec<String> = list.iter().map(SocketAddr::to_string).collect();
    v.join(", ")
}

/// An error and its sources (reqwest's, an I/O error's) on one line, each cause once.
fn short(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        src = s.source();
    }
    msg
}

fn first_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(1024)]);
    text.lines().next().unwrap_or("").trim().to_owned()
}

#[cfg(test)]
mod tests;
