//! The simulated world around the credmon: Vault (with htvault-config's
//! oauthapp behaviour), the KDC, and the seeded schedule of what happens to
//! them. Time here is the world's true time: the monotonic clock since the
//! start, whatever the host's wall clock says.

use base64::prelude::*;
use robot_credmon::env::Mono;
use robot_credmon::token::BearerToken;
use robot_credmon::vault::{VaultError, VaultToken};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

/// The Vault server every credential of the simulation uses.
pub const SERVER: &str = "https://vault.sim:8200";
/// Its `host:port`, as the credmon names it.
pub const HOST_PORT: &str = "vault.sim:8200";

/// What Vault does at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answers.
    Up,
    /// Refuses connections.
    Down,
    /// Accepts connections and never answers: every request times out.
    Hanging,
    /// Answers this status (502, 503, 504) to everything.
    Failing(u16),
    /// Answers 429 with this `Retry-After` in seconds.
    Limiting(u64),
}

impl Mode {
    /// Whether Vault serves tokens.
    pub fn serving(self) -> bool {
        self == Mode::Up
    }
}

/// A Vault token's life.
#[derive(Debug, Clone)]
struct TokenState {
    expires: Mono,
    revoked: bool,
    /// The credential path it may read (`creds/igwn/<user>:robot`).
    path: String,
    /// The token it was made from (revoking that revokes this one).
    parent: Option<String>,
}

/// The issuer's side of one credential (oauthapp's cached access token).
#[derive(Debug, Clone, Copy)]
struct Issued {
    /// Expiry of the cached access token, in true time since the start.
    exp: Mono,
}

/// Everything Vault knows, and its mood.
#[derive(Debug)]
pub struct Vault {
    /// Wall time at true time zero (the tokens' `exp` are wall seconds).
    pub epoch_secs: i64,
    /// Access tokens' lifetime.
    pub lifetime: Duration,
    /// A Vault token's TTL when the credd or a keytab login makes one.
    pub token_ttl: Duration,
    /// The request timeout of the credmon (what a hanging Vault costs).
    pub request_timeout: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    mode: Mode,
    tokens: HashMap<String, TokenState>,
    issued: HashMap<String, Issued>,
    next_token: u64,
    /// Requests being answered now, and the most seen at once.
    outstanding: Vec<Mono>,
    peak: usize,
    /// Reads per credential path.
    reads: BTreeMap<String, u64>,
    /// Every request, and those while Vault was not serving.
    requests: u64,
    requests_while_bad: u64,
    /// The KDC: up or not, and each robot's current key version and the one
    /// installed in its keytab file.
    kdc_up: bool,
    kvno: HashMap<String, (u32, u32)>,
    /// Credential paths whose issuer refresh token is gone: only a
    /// person's OIDC login brings them back.
    needs_person: std::collections::BTreeSet<String>,
    /// The latency of the requests since the driver last asked.
    latency: Duration,
    rng: fastrand::Rng,
}

impl State {
    /// Issues a new Vault token in state `t`.
    fn mint(&mut self, t: TokenState) -> VaultToken {
        let n = self.next_token;
        self.next_token += 1;
        let text = format!("hvs.sim{n:016x}");
        self.tokens.insert(text.clone(), t);
        VaultToken::new(&text).expect("a well-formed Vault token")
    }
}

/// A login's answer: the new Vault token.
#[derive(Debug, Clone)]
pub struct Login {
    /// The token.
    pub token: VaultToken,
}

impl Vault {
    /// A Vault whose token answers depend on `seed`.
    pub fn new(seed: u64, epoch_secs: i64, lifetime: Duration, request_timeout: Duration) -> Self {
        Vault {
            epoch_secs,
            lifetime,
            token_ttl: Duration::from_secs(28 * 86_400),
            request_timeout,
            state: Mutex::new(State {
                mode: Mode::Up,
                tokens: HashMap::new(),
                issued: HashMap::new(),
                next_token: 1,
                outstanding: Vec::new(),
                peak: 0,
                reads: BTreeMap::new(),
                requests: 0,
                requests_while_bad: 0,
                kdc_up: true,
                kvno: HashMap::new(),
                needs_person: std::collections::BTreeSet::new(),
                latency: Duration::ZERO,
                rng: fastrand::Rng::with_seed(seed ^ 0x5eed_0f7a),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Vault's mood from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.lock().mode = mode;
    }

    /// Vault's mood.
    pub fn mode(&self) -> Mode {
        self.lock().mode
    }

    /// The KDC up or down.
    pub fn set_kdc(&self, up: bool) {
        self.lock().kdc_up = up;
    }

    /// Whether the KDC answers.
    pub fn kdc_up(&self) -> bool {
        self.lock().kdc_up
    }

    /// A robot's keys: `(KDC's current kvno, kvno in its keytab file)`.
    pub fn set_keys(&self, user: &str, kdc: u32, keytab: u32) {
        self.lock().kvno.insert(user.to_owned(), (kdc, keytab));
    }

    /// A robot's keys.
    pub fn keys(&self, user: &str) -> (u32, u32) {
        self.lock().kvno.get(user).copied().unwrap_or((1, 1))
    }

    /// A new Vault token for `user`'s credential, valid for the token TTL from `now`.
    pub fn mint_vault_token(&self, user: &str, now: Mono) -> VaultToken {
        self.lock().mint(TokenState {
            expires: now + self.token_ttl,
            revoked: false,
            path: cred_path(user),
            parent: None,
        })
    }

    /// Revokes every Vault token of `user`.
    pub fn revoke(&self, user: &str) {
        let path = cred_path(user);
        let mut st = self.lock();
        for t in st.tokens.values_mut() {
            if t.path == path {
                t.revoked = true;
            }
        }
    }

    /// Whether `token` is good at `now` (neither expired nor revoked, nor
    /// made from a revoked one).
    fn valid(st: &State, token: &str, now: Mono) -> bool {
        let mut t = Some(token.to_owned());
        while let Some(name) = t {
            match st.tokens.get(&name) {
                Some(s) if !s.revoked && s.expires > now => t = s.parent.clone(),
                _ => return false,
            }
        }
        true
    }

    fn denied(path: &str) -> VaultError {
        VaultError::Status {
            server: SERVER.into(),
            path: path.into(),
            status: 403,
            errors: vec!["permission denied".into()],
            warnings: vec![],
            retry_after: None,
        }
    }

    /// `auth/token/lookup-self`: the seconds `token` has left.
    pub fn lookup_self_ttl(&self, token: &VaultToken, now: Mono) -> Result<u64, VaultError> {
        self.begin(now)?;
        let st = self.lock();
        if !Self::valid(&st, token.expose(), now) {
            return Err(Self::denied("auth/token/lookup-self"));
        }
        let left = st
            .tokens
            .get(token.expose())
            .map_or(Duration::ZERO, |t| t.expires.since(now));
        Ok(left.as_secs())
    }

    /// `auth/token/create`: a child of `parent` living `ttl` (no longer
    /// than its parent).
    pub fn create_token(
        &self,
        parent: &VaultToken,
        ttl: Duration,
        now: Mono,
    ) -> Result<(VaultToken, Duration), VaultError> {
        self.begin(now)?;
        let mut st = self.lock();
        if !Self::valid(&st, parent.expose(), now) {
            return Err(Self::denied("auth/token/create"));
        }
        let Some(p) = st.tokens.get(parent.expose()).cloned() else {
            return Err(Self::denied("auth/token/create"));
        };
        let expires = (now + ttl).min(p.expires);
        let token = st.mint(TokenState {
            expires,
            revoked: false,
            path: p.path,
            parent: Some(parent.expose().to_owned()),
        });
        Ok((token, expires.since(now)))
    }

    /// The issuer's refresh token of `user`'s credential is gone (or back).
    pub fn set_needs_person(&self, user: &str, gone: bool) {
        let path = cred_path(user);
        let mut st = self.lock();
        if gone {
            st.needs_person.insert(path);
        } else {
            st.needs_person.remove(&path);
        }
    }

    /// How long `token` has left at `now`, if Vault knows it and it is good.
    pub fn token_left(&self, token: &str, now: Mono) -> Option<Duration> {
        let st = self.lock();
        if !Self::valid(&st, token, now) {
            return None;
        }
        st.tokens.get(token).map(|t| t.expires.since(now))
    }

    /// A request starts at `now` (its latency is added up for the driver):
    /// fine, or the error that ends it.
    fn begin(&self, now: Mono) -> Result<(), VaultError> {
        let timeout = self.request_timeout;
        let mut st = self.lock();
        st.requests += 1;
        // A job's requests follow one another: this one starts when the
        // job's previous ones (since the driver last asked) ended.
        let now = now + st.latency;
        st.outstanding.retain(|end| *end > now);
        let mode = st.mode;
        if !mode.serving() {
            st.requests_while_bad += 1;
        }
        let transport = |detail: &str| VaultError::Transport {
            server: SERVER.into(),
            detail: detail.into(),
        };
        let status = |code: u16, retry_after: Option<Duration>| VaultError::Status {
            server: SERVER.into(),
            path: "secret/oauth/creds".into(),
            status: code,
            errors: vec![format!("simulated {code}")],
            warnings: vec![],
            retry_after,
        };
        let (latency, err) = match mode {
            Mode::Down => (
                Duration::from_micros(200),
                Some(transport("connection refused")),
            ),
            Mode::Hanging => (timeout, Some(transport("operation timed out"))),
            Mode::Failing(code) => (Duration::from_millis(2), Some(status(code, None))),
            Mode::Limiting(secs) => (
                Duration::from_millis(1),
                Some(status(429, Some(Duration::from_secs(secs)))),
            ),
            Mode::Up => {
                // Mostly quick, sometimes slow, rarely very slow.
                let r = st.rng.f64();
                let ms = if r < 0.9 {
                    3 + st.rng.u64(0..30)
                } else if r < 0.995 {
                    100 + st.rng.u64(0..900)
                } else {
                    2000 + st.rng.u64(0..6000)
                };
                (Duration::from_millis(ms).min(timeout), None)
            }
        };
        st.outstanding.push(now + latency);
        st.peak = st.peak.max(st.outstanding.len());
        st.latency += latency;
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// `GET secret/oauth/creds/...` with `token` at true time `now`, wanting
    /// `minimum` seconds left: the cached access token when it has them,
    /// else a fresh one from the issuer.
    pub fn read_bearer(
        &self,
        token: &VaultToken,
        path: &str,
        minimum: Duration,
        now: Mono,
    ) -> Result<BearerToken, VaultError> {
        self.begin(now)?;
        let mut st = self.lock();
        *st.reads.entry(path.to_owned()).or_insert(0) += 1;
        let ok = Self::valid(&st, token.expose(), now)
            && st
                .tokens
                .get(token.expose())
                .is_some_and(|t| path.ends_with(&t.path));
        if !ok {
            return Err(Self::denied(path));
        }
        if st.needs_person.iter().any(|p| path.ends_with(p.as_str())) {
            return Err(VaultError::Status {
                server: SERVER.into(),
                path: path.into(),
                status: 400,
                errors: vec!["1 error occurred: refresh failed: invalid_grant".into()],
                warnings: vec![],
                retry_after: None,
            });
        }
        let fresh = now + minimum;
        let exp = match st.issued.get(path) {
            Some(i) if i.exp > fresh => i.exp,
            _ => {
                let exp = now + self.lifetime;
                st.issued.insert(path.to_owned(), Issued { exp });
                exp
            }
        };
        let exp_secs = self.epoch_secs + i64::try_from(exp.as_duration().as_secs()).unwrap_or(0);
        let iat = self.epoch_secs + i64::try_from(now.as_duration().as_secs()).unwrap_or(0);
        Ok(jwt(path, exp_secs, iat))
    }

    /// A keytab login of `user` with its keytab's key version at true time `now`.
    pub fn kerberos_login(&self, user: &str, now: Mono) -> Result<Login, String> {
        let (kdc_up, (kdc, tab)) = {
            let st = self.lock();
            (st.kdc_up, st.kvno.get(user).copied().unwrap_or((1, 1)))
        };
        if !kdc_up {
            return Err("cannot contact any KDC for realm 'SIM.ORG'".into());
        }
        if kdc != tab {
            return Err(format!(
                "the keytab's key version {tab} is not the KDC's {kdc}"
            ));
        }
        self.begin(now).map_err(|e| e.to_string())?;
        Ok(Login {
            token: self.mint_vault_token(user, now),
        })
    }

    /// The latency of the requests since the last call (how long a job's
    /// requests kept its worker).
    pub fn take_latency(&self) -> Duration {
        std::mem::take(&mut self.lock().latency)
    }

    /// The most requests in flight at once so far.
    pub fn peak_in_flight(&self) -> usize {
        self.lock().peak
    }

    /// The host went down: its requests end with it (their connections are gone).
    pub fn host_down(&self) {
        let mut st = self.lock();
        st.outstanding.clear();
        st.peak = 0;
        st.latency = Duration::ZERO;
    }

    /// Forgets the peak (after a check).
    pub fn reset_peak(&self) {
        let mut st = self.lock();
        st.peak = st.outstanding.len();
    }

    /// Requests so far, and those while Vault was not serving.
    pub fn requests(&self) -> (u64, u64) {
        let st = self.lock();
        (st.requests, st.requests_while_bad)
    }

    /// Reads of each credential so far, taken (and reset).
    pub fn take_reads(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut self.lock().reads)
    }
}

/// The credential path of `user` (credkey = user, role `robot`).
pub fn cred_path(user: &str) -> String {
    format!("creds/igwn/{user}:robot")
}

/// A JWT with these claims (unsigned: the credmon never verifies).
pub fn jwt(sub: &str, exp: i64, iat: i64) -> BearerToken {
    let h = BASE64_URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT","kid":"sim"}"#);
    let p = BASE64_URL_SAFE_NO_PAD.encode(format!(
        r#"{{"iss":"https://issuer.sim","sub":"{sub}","exp":{exp},"iat":{iat}}}"#
    ));
    let text = format!("{h}.{p}.c2lt");
    BearerToken::parse(&text).unwrap_or_else(|_| jwt("x", exp, iat))
}
