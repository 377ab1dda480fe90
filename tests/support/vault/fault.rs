//! Fault injection rules for the test Vault.

use std::time::Duration;

/// An injected failure: applies to requests whose path (without query) starts with `prefix`.
///
/// By default it fires once; see [`Fault::times`] and [`Fault::permanent`]. Delays are
/// applied first, then the connection is dropped or the given status is answered (or, with
/// only a delay, the request is handled normally). `{path}` in a body is replaced by the
/// request path without `/v1/`.
#[derive(Clone, Debug)]
pub struct Fault {
    pub(super) prefix: String,
    pub(super) method: Option<String>,
    pub(super) response: Option<(u16, String)>,
    pub(super) headers: Vec<(String, String)>,
    pub(super) delay: Option<Duration>,
    pub(super) drop_connection: bool,
    pub(super) remaining: Option<u32>,
    pub(super) stream: Option<Stream>,
}

/// A 200 answer whose body is sent in pieces: `chunk` bytes every `pause`, up to `limit`.
#[derive(Clone, Debug)]
pub struct Stream {
    pub(super) chunk: usize,
    pub(super) pause: Duration,
    pub(super) limit: u64,
}

impl Fault {
    /// Answer `status` with JSON `body`.
    pub fn status(prefix: &str, status: u16, body: &str) -> Fault {
        Fault {
            prefix: prefix.to_string(),
            method: None,
            response: Some((status, body.to_string())),
            headers: Vec::new(),
            delay: None,
            drop_connection: false,
            remaining: Some(1),
            stream: None,
        }
    }

    /// Answer 200 with a body that never ends (bounded at 256 MiB, sent as fast as the
    /// client reads it): `{"data":{"access_token":"aaaa...`.
    pub fn endless_body(prefix: &str) -> Fault {
        Fault {
            response: None,
            stream: Some(Stream {
                chunk: 64 * 1024,
                pause: Duration::ZERO,
                limit: 256 * 1024 * 1024,
            }),
            ..Fault::status(prefix, 0, "")
        }
    }

    /// Answer 200 with a body that trickles: 10 bytes every `pause`, 64 KiB at most.
    pub fn slow_body(prefix: &str, pause: Duration) -> Fault {
        Fault {
            response: None,
            stream: Some(Stream {
                chunk: 10,
                pause,
                limit: 64 * 1024,
            }),
            ..Fault::status(prefix, 0, "")
        }
    }

    /// Answer 200 with this bearer token as `data.access_token`.
    pub fn access_token(prefix: &str, token: &str) -> Fault {
        let body = serde_json::json!({"data": {"access_token": token}}).to_string();
        Fault::status(prefix, 200, &body)
    }

    /// Wait `delay`, then handle the request normally (read-timeout tests).
    pub fn delay(prefix: &str, delay: Duration) -> Fault {
        Fault {
            response: None,
            delay: Some(delay),
            ..Fault::status(prefix, 0, "")
        }
    }

    /// Close the connection without answering.
    pub fn drop_connection(prefix: &str) -> Fault {
        Fault {
            response: None,
            drop_connection: true,
            ..Fault::status(prefix, 0, "")
        }
    }

    /// 500 `could not connect to LDAP` on the Kerberos login paths.
    pub fn ldap_down() -> Fault {
        Fault::status(
            "/v1/auth/kerberos-",
            500,
            r#"{"errors":["could not connect to LDAP: LDAP Result Code 200 \"Network Error\": dial tcp 127.0.0.1:389: connect: connection refused"]}"#,
        )
    }

    /// 503 `Vault is sealed` on every `/v1/` path.
    pub fn sealed() -> Fault {
        Fault::status("/v1/", 503, r#"{"errors":["Vault is sealed"]}"#)
    }

    /// 429 with OpenBao's quota message.
    pub fn rate_limited(prefix: &str) -> Fault {
        Fault::status(
            prefix,
            429,
            r#"{"errors":["request path \"{path}\": rate limit quota exceeded"]}"#,
        )
    }

    /// 307 to `location` (a standby redirecting to the leader).
    pub fn redirect(prefix: &str, location: &str) -> Fault {
        Fault::status(prefix, 307, "").header("Location", location)
    }

    /// Fire for the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Fault {
        self.remaining = Some(n);
        self
    }

    /// Wait `delay` before answering (a slow failing Vault).
    pub fn after(mut self, delay: Duration) -> Fault {
        self.delay = Some(delay);
        self
    }

    /// Fire for every matching request until [`TestVault::clear_faults`].
    pub fn permanent(mut self) -> Fault {
        self.remaining = None;
        self
    }

    /// Match only this HTTP method.
    pub fn method(mut self, method: &str) -> Fault {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Add a response header.
    pub fn header(mut self, name: &str, value: &str) -> Fault {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Wait this long before acting.
    pub fn with_delay(mut self, delay: Duration) -> Fault {
        self.delay = Some(delay);
        self
    }
}
