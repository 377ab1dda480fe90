//! Vault server addresses: a bare host gets `https://` and port 8200, as in htgettoken.

use super::VaultError;
use std::fmt;

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
}
