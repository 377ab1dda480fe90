//! Vault server addresses: a bare host gets `https://` and port 8200, as in
//! htgettoken; and the network addresses a server name stands for
//! ([`Addresses`]): which one requests go to, which to try next when it
//! cannot be reached, and when to look the name up again.

use super::VaultError;
use crate::env::Mono;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// How often a client looks its server's name up again, as HTCondor's
/// Python credmon does: a long-lived client (the credmon's) follows a name
/// whose addresses change within this time.
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(300);

/// An HTTPS server address, `https://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddress {
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl ServerAddress {
    /// Parses `host`, `host:port`, `https://host[:port][/]`; the default port is 8200.
    pub fn parse(input: &str) -> Result<Self, VaultError> {
        let bad = || VaultError::BadAddress(input.to_owned());
        let s = input.trim();
        let with_scheme = if s.contains("://") {
            s.to_owned()
        } else {
            format!("https://{s}")
        };
        let url = url::Url::parse(&with_scheme).map_err(|_| bad())?;
        if url.scheme() != "https" || !url.username().is_empty() || url.query().is_some() {
            return Err(bad());
        }
        if !(url.path().is_empty() || url.path() == "/") {
            return Err(bad());
        }
        let host = match url.host().ok_or_else(bad)? {
            url::Host::Domain(d) => d.to_owned(),
            url::Host::Ipv4(a) => a.to_string(),
            url::Host::Ipv6(a) => a.to_string(),
        };
        let port = if s.contains("://") || has_port(s) {
            url.port()
                .unwrap_or(if has_port_in_url(s) { 443 } else { 8200 })
        } else {
            8200
        };
        Ok(Self { host, port })
    }

    /// The host part of an alias or server name given as host, host:port or URL.
    pub fn host_of(input: &str) -> Result<String, VaultError> {
        Self::parse(input).map(|a| a.host)
    }
}

/// `url` drops the default port 443, so tell "https://h:443" apart from "https://h".
fn has_port_in_url(s: &str) -> bool {
    let rest = s.split_once("://").map_or(s, |(_, r)| r);
    let hostport = rest.split('/').next().unwrap_or("");
    has_port(hostport)
}

fn has_port(hostport: &str) -> bool {
    let hp = hostport.split_once("://").map_or(hostport, |(_, r)| r);
    let hp = hp.split('/').next().unwrap_or("");
    if let Some(end) = hp.find(']') {
        hp[end..].contains(':')
    } else {
        hp.contains(':')
    }
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "https://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "https://{}:{}", self.host, self.port)
        }
    }
}

/// The addresses of one server name, in resolver order, the one requests go
/// to (`current`), and when the name was last looked up. An address that
/// cannot be reached is left for the next one and not used again until the
/// one in use fails too (or the name stops resolving to it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Addresses {
    list: Vec<SocketAddr>,
    current: usize,
    resolved_at: Option<Mono>,
    fixed: bool,
}

impl Addresses {
    /// These addresses, never looked up again.
    pub(super) fn fixed(list: Vec<SocketAddr>) -> Self {
        Addresses {
            list,
            fixed: true,
            ..Self::default()
        }
    }

    /// Whether the name must be looked up (again) at `now`: never looked up,
    /// or [`RESOLVE_INTERVAL`] since the last look-up; never for fixed addresses.
    pub(super) fn due(&self, now: Mono) -> bool {
        !self.fixed
            && (self.list.is_empty()
                || self
                    .resolved_at
                    .is_none_or(|t| now.since(t) >= RESOLVE_INTERVAL))
    }

    /// Takes the result of a look-up at `now`. The address in use stays in
    /// use while the name still resolves to it; otherwise the first new one
    /// is used. Returns the addresses when they changed.
    pub(super) fn adopt(&mut self, new: Vec<SocketAddr>, now: Mono) -> Option<&[SocketAddr]> {
        self.resolved_at = Some(now);
        if new == self.list || new.is_empty() {
            return None;
        }
        let keep = self
            .current()
            .and_then(|c| new.iter().position(|a| *a == c));
        self.current = keep.unwrap_or(0);
        self.list = new;
        Some(&self.list)
    }

    /// A look-up at `now` failed: the known addresses stay in use until the next one.
    pub(super) fn keep(&mut self, now: Mono) {
        self.resolved_at = Some(now);
    }

    /// The address requests go to.
    pub(super) fn current(&self) -> Option<SocketAddr> {
        self.list.get(self.current).copied()
    }

    /// The known addresses, in resolver order.
    pub(super) fn list(&self) -> &[SocketAddr] {
        &self.list
    }

    /// `failed` could not be reached; `tried` holds every address this
    /// request tried (`failed` too). Returns the address to try now: the one
    /// in use when another request already moved on to an untried one, else
    /// the next untried one after `failed`, wrapping around (which then
    /// becomes the one in use); `None` when every address was tried.
    pub(super) fn fail_over(
        &mut self,
        failed: SocketAddr,
        tried: &[SocketAddr],
    ) -> Option<SocketAddr> {
        let untried = |a: &SocketAddr| !tried.contains(a);
        if let Some(c) = self.current()
            && c != failed
            && untried(&c)
        {
            return Some(c);
        }
        let n = self.list.len();
        let from = self
            .list
            .iter()
            .position(|a| *a == failed)
            .unwrap_or(self.current);
        let next = (1..=n)
            .map(|k| (from + k) % n)
            .find(|&i| untried(&self.list[i]))?;
        self.current = next;
        self.current()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn address_table() {
        for (input, want) in [
            ("vault.ligo.org", "https://vault.ligo.org:8200"),
            ("vault.ligo.org:8201", "https://vault.ligo.org:8201"),
            ("https://vault.ligo.org", "https://vault.ligo.org:8200"),
            ("https://vault.ligo.org:443", "https://vault.ligo.org:443"),
            (
                "https://vault.ligo.org:9999/",
                "https://vault.ligo.org:9999",
            ),
            ("localhost:12345", "https://localhost:12345"),
            ("127.0.0.1", "https://127.0.0.1:8200"),
            ("[::1]:8300", "https://[::1]:8300"),
        ] {
            assert_eq!(
                ServerAddress::parse(input).unwrap().to_string(),
                want,
                "{input}"
            );
        }
        for bad in ["http://vault", "https://v/x", "", "https://u@v"] {
            assert!(ServerAddress::parse(bad).is_err(), "{bad}");
        }
    }

    fn a(last: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, last], 8200))
    }

    fn at(secs: u64) -> Mono {
        Mono::from_duration(Duration::from_secs(secs))
    }

    #[test]
    fn look_ups_are_due_every_five_minutes() {
        let mut s = Addresses::default();
        assert!(s.due(at(0)), "never looked up");
        s.adopt(vec![a(1)], at(10));
        for (now, due) in [(10, false), (309, false), (310, true), (4000, true)] {
            assert_eq!(s.due(at(now)), due, "{now}");
        }
        s.keep(at(400));
        assert!(!s.due(at(699)));
        assert!(s.due(at(700)));
        let fixed = Addresses::fixed(vec![a(1)]);
        assert!(!fixed.due(at(0)) && !fixed.due(at(100_000)));
    }

    #[test]
    fn the_address_in_use_stays_while_the_name_has_it() {
        // (old list, address in use, new list) -> address in use after
        let cases = [
            (vec![1, 2, 3], 2, vec![3, 2, 1], 2),
            (vec![1, 2, 3], 2, vec![4, 5], 4),
            (vec![1, 2], 1, vec![1, 2], 1),
            (vec![1, 2], 2, vec![1, 2, 3], 2),
            (vec![], 0, vec![7, 8], 7),
        ];
        for (old, using, new, want) in cases {
            let mut s = Addresses::default();
            s.adopt(old.iter().map(|&l| a(l)).collect(), at(0));
            if using != 0 {
                while s.current() != Some(a(using)) {
                    let c = s.current().unwrap();
                    s.fail_over(c, &[c]);
                }
            }
            let changed = s
                .adopt(new.iter().map(|&l| a(l)).collect(), at(1))
                .is_some();
            assert_eq!(changed, old != new, "{old:?} -> {new:?}");
            assert_eq!(
                s.current(),
                Some(a(want)),
                "{old:?} using {using} -> {new:?}"
            );
        }
        // An empty answer changes nothing.
        let mut s = Addresses::default();
        s.adopt(vec![a(1)], at(0));
        assert!(s.adopt(vec![], at(1)).is_none());
        assert_eq!(s.list(), [a(1)]);
    }

    #[test]
    fn fail_over_tries_each_address_once_and_wraps_around() {
        let mut s = Addresses::default();
        s.adopt(vec![a(1), a(2), a(3)], at(0));
        // 1 fails: 2 next, and 2 is now the one in use.
        assert_eq!(s.fail_over(a(1), &[a(1)]), Some(a(2)));
        assert_eq!(s.current(), Some(a(2)));
        // A request still holding 1 learns that 2 is in use.
        assert_eq!(s.fail_over(a(1), &[a(1)]), Some(a(2)));
        // 2 and then 3 fail in one request: 1 again (wrapped), then nothing left.
        assert_eq!(s.fail_over(a(2), &[a(2)]), Some(a(3)));
        assert_eq!(s.fail_over(a(3), &[a(2), a(3)]), Some(a(1)));
        assert_eq!(s.current(), Some(a(1)));
        assert_eq!(s.fail_over(a(1), &[a(2), a(3), a(1)]), None);
        // One address: nothing to fail over to.
        let mut one = Addresses::fixed(vec![a(9)]);
        assert_eq!(one.fail_over(a(9), &[a(9)]), None);
        assert_eq!(one.current(), Some(a(9)));
    }
}
