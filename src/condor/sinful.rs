//! HTCondor "sinful" addresses: `<host:port?param=value&...>`, as found in
//! `CONDOR_INHERIT` (`condor_utils/condor_sinful.cpp`). Only what a client
//! needs: the host, the port and the shared-port id (`sock=`).

use std::fmt;

/// A parsed sinful string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sinful {
    /// IPv4 address, bracket-less IPv6 address or host name.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The shared-port id (`sock=`): the daemon is reached through condor_shared_port.
    pub shared_port_id: Option<String>,
    /// The original text, sent back to the daemon as `ConnectSinful`.
    pub text: String,
}

/// Why a sinful string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid HTCondor address {0:?}")]
pub struct BadSinful(pub String);

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl Sinful {
    /// Parses `<host:port?params>`.
    pub fn parse(text: &str) -> Result<Sinful, BadSinful> {
        let bad = || BadSinful(text.to_owned());
        let inner = text
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix('>'))
            .ok_or_else(bad)?;
        let (addr, params) = inner.split_once('?').unwrap_or((inner, ""));
        let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
            let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
            (h, p)
        } else {
            addr.rsplit_once(':').ok_or_else(bad)?
        };
        if host.is_empty() || host.contains(['<', '>', '?', '&', ' ']) {
            return Err(bad());
        }
        let port: u16 = port.parse().map_err(|_| bad())?;
        if port == 0 {
            return Err(bad());
        }
        let mut shared_port_id = None;
        for p in params.split('&').filter(|p| !p.is_empty()) {
            if let Some(v) = p.strip_prefix("sock=") {
                let v = percent_decode(v).ok_or_else(bad)?;
                if v.is_empty() || v.bytes().any(|c| c.is_ascii_control()) {
                    return Err(bad());
                }
                shared_port_id = Some(v);
            }
        }
        Ok(Sinful {
            host: host.to_owned(),
            port,
            shared_port_id,
            text: text.to_owned(),
        })
    }
}

impl fmt::Display for Sinful {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_the_forms_condor_writes() {
        for (text, host, port, sock) in [
            ("<127.0.0.1:9618>", "127.0.0.1", 9618, None),
            (
                "<127.0.0.1:9618?addrs=127.0.0.1-9618&alias=pool.example&noUDP&sock=master_1234_ab%2Dc>",
                "127.0.0.1",
                9618,
                Some("master_1234_ab-c"),
            ),
            ("<[::1]:40000?noUDP>", "::1", 40000, None),
            (
                "<host.example:1?sock=collector>",
                "host.example",
                1,
                Some("collector"),
            ),
        ] {
            let s = Sinful::parse(text).unwrap();
            assert_eq!(
                (s.host.as_str(), s.port, s.shared_port_id.as_deref()),
                (host, port, sock),
                "{text}"
            );
            assert_eq!(s.to_string(), text);
        }
    }

    #[test]
    fn refuses_garbage() {
        for text in [
            "",
            "127.0.0.1:9618",
            "<127.0.0.1>",
            "<127.0.0.1:0>",
            "<127.0.0.1:99999>",
            "<:9618>",
            "<[::1:9618>",
            "<127.0.0.1:9618?sock=%zz>",
            "<127.0.0.1:9618?sock=>",
        ] {
            assert!(Sinful::parse(text).is_err(), "{text:?}");
        }
    }
}
