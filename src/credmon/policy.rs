//! Pure decisions of the credmon, each a plain function of its inputs
//! (including the current time): which names are acceptable, which
//! credentials are ours, when a `.use` must be renewed, which Vault URLs may
//! be contacted and with which query.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

/// Which `.top` files belong to this (Vault) credmon: the Python credmon's
/// filter, the input of [`ours`] (built from the knobs by `config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderFilter {
    /// `VAULT_CREDMON_PROVIDER_NAMES`; `["*"]` means every provider no other credmon claims.
    pub vault: Vec<String>,
    /// Providers claimed by the other credmons (local, OAuth2, client, Pelican).
    pub others: HashSet<String>,
    /// Providers with a `<provider>_CLIENT_ID` knob (OAuth2).
    pub client_ids: HashSet<String>,
    /// `CREDMON_ALLOW_SPECIAL_CHAR_NAMES`: the provider is the whole file stem.
    pub special_chars: bool,
}

/// Whether a user, service or handle name from the credential directory is
/// acceptable: the credd's `[A-Za-z0-9-+=_.]`, not starting with a dot.
pub fn valid_cred_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-+=_.".contains(&b))
}

/// Why a `.top` is not handled by this credmon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotOurs {
    /// The stem ends in `_`, which the Python credmon refuses with a warning.
    TrailingUnderscore,
    /// Another credmon (local, OAuth2, client, Pelican) owns the provider.
    OtherCredmon,
    /// The provider is not in `VAULT_CREDMON_PROVIDER_NAMES`.
    NotListed,
}

/// The provider of a credential file stem: before the first `_`, or the whole
/// stem with `CREDMON_ALLOW_SPECIAL_CHAR_NAMES`.
pub fn provider_of(stem: &str, special_chars: bool) -> &str {
    if special_chars {
        stem
    } else {
        stem.split('_').next().unwrap_or(stem)
    }
}

/// The Python Vault credmon's ownership filter (`check_access_token`).
pub fn ours(stem: &str, f: &ProviderFilter) -> Result<(), NotOurs> {
    if stem.ends_with('_') {
        return Err(NotOurs::TrailingUnderscore);
    }
    let provider = provider_of(stem, f.special_chars);
    if f.vault.iter().any(|p| p == provider) {
        return Ok(());
    }
    if !f.vault.iter().any(|p| p == "*") {
        return Err(NotOurs::NotListed);
    }
    if provider == "scitokens"
        || f.others.contains(provider)
        || f.client_ids.contains(&provider.to_ascii_uppercase())
    {
        return Err(NotOurs::OtherCredmon);
    }
    Ok(())
}

/// The parent credential of a handle (`<service>_<handle>` → `<service>`),
/// found as the Python credmon does: up to the last `_`.
pub fn parent_stem(stem: &str) -> Option<&str> {
    stem.rfind('_')
        .map(|i| &stem[..i])
        .filter(|s| !s.is_empty())
}

/// What we know about an existing `.use` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UseState {
    /// Its ctime.
    pub ctime: SystemTime,
    /// The token's `exp`, `None` when unreadable or absent.
    pub exp: Option<SystemTime>,
}

/// Why a credential is renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renew {
    /// There is no `.use` yet.
    Missing,
    /// The `.top` was replaced after the `.use` was written.
    TopNewer,
    /// The `.use` is older than `CREDMON_OAUTH_TOKEN_REFRESH`.
    Age,
    /// The token has less than `CREDMON_OAUTH_TOKEN_MINIMUM` left (or no readable expiry).
    Expiring,
}

impl Renew {
    /// Whether the job should skip the queue (a new or replaced credential).
    pub fn urgent(self) -> bool {
        matches!(self, Renew::Missing | Renew::TopNewer)
    }

    /// The `cause` label of the refresh metrics.
    pub fn label(self) -> &'static str {
        match self {
            Renew::Missing => "missing",
            Renew::TopNewer => "new_top",
            Renew::Age => "age",
            Renew::Expiring => "expiring",
        }
    }
}

/// `should_renew`: the Python credmon's ctime rules plus the token's own
/// expiry, at wall time `now`, with the knobs `CREDMON_OAUTH_TOKEN_MINIMUM`
/// and `_REFRESH` in seconds.
pub fn should_renew(
    use_state: Option<UseState>,
    top_ctime: SystemTime,
    now: SystemTime,
    minimum: u64,
    refresh: u64,
) -> Option<Renew> {
    let Some(u) = use_state else {
        return Some(Renew::Missing);
    };
    if top_ctime > u.ctime {
        return Some(Renew::TopNewer);
    }
    let aged = u
        .ctime
        .checked_add(Duration::from_secs(refresh))
        .is_some_and(|t| now > t);
    if aged {
        return Some(Renew::Age);
    }
    match u.exp.and_then(|e| e.duration_since(now).ok()) {
        Some(left) if left >= Duration::from_secs(minimum) => None,
        _ => Some(Renew::Expiring),
    }
}

/// A Vault URL that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultTarget {
    /// Host, lower case.
    pub host: String,
    /// Port.
    pub port: u16,
    /// The API path after `/v1/`.
    pub path: String,
}

/// HTCondor's `request_url` checks plus `TRUSTED_VAULT_HOSTS`: https, an allowed
/// port (8200 in HTCondor), a `/v1/` path, no credentials or query in the URL.
pub fn check_vault_url(
    url: &str,
    allowed_ports: &[u16],
    trusted_hosts: &[String],
) -> Result<VaultTarget, String> {
    let u = url::Url::parse(url).map_err(|_| "vault_url is not a URL".to_owned())?;
    if u.scheme() != "https" {
        return Err("vault_url must start with https://".into());
    }
    if !u.username().is_empty() || u.password().is_some() || u.query().is_some() {
        return Err("vault_url must not hold credentials or a query".into());
    }
    let host = match u.host() {
        Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
        Some(url::Host::Ipv4(a)) => a.to_string(),
        Some(url::Host::Ipv6(a)) => a.to_string(),
        None => return Err("vault_url has no host".into()),
    };
    let port = u.port_or_known_default().unwrap_or(443);
    if !allowed_ports.contains(&port) {
        return Err(format!(
            "vault_url port {port} is not allowed (HTCondor allows 8200; see ROBOT_CREDMON_ALLOWED_VAULT_PORTS)"
        ));
    }
    if !trusted_hosts.is_empty() && !trusted_vault_host(url, &host, trusted_hosts) {
        return Err(format!(
            "vault_url host '{}' is not in TRUSTED_VAULT_HOSTS",
            url_authority(url).unwrap_or(&host)
        ));
    }
    let path = u
        .path()
        .strip_prefix("/v1/")
        .filter(|p| !p.is_empty() && !p.split('/').any(|s| s == ".." || s == "."))
        .ok_or_else(|| "vault_url path must start with /v1/".to_owned())?;
    Ok(VaultTarget {
        host,
        port,
        path: path.to_owned(),
    })
}

/// What the credd calls the host of a URL (`ParseURL` in `condor_url.cpp`):
/// everything between `://` and the next `/`, so `host:port` when the URL
/// names a port.
pub fn url_authority(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme.is_empty() || scheme.contains('/') {
        return None;
    }
    let authority = rest.split('/').next().unwrap_or(rest);
    (!authority.is_empty()).then_some(authority)
}

/// Whether `TRUSTED_VAULT_HOSTS` admits `url` (whose host is `host`). An
/// entry matches as the credd compares it (`store_cred.cpp`: the URL's
/// `host[:port]` as written, ignoring case), so `vault.example.org:8200`
/// admits `https://vault.example.org:8200/...`; and an entry without a port
/// also matches the bare host on any allowed port, so `vault.example.org`
/// keeps admitting the credentials the credmon provisions itself.
pub fn trusted_vault_host(url: &str, host: &str, trusted: &[String]) -> bool {
    let authority = url_authority(url);
    trusted.iter().any(|entry| {
        authority.is_some_and(|a| a.eq_ignore_ascii_case(entry))
            || (!entry_has_port(entry) && entry.trim_matches(['[', ']']).eq_ignore_ascii_case(host))
    })
}

fn entry_has_port(entry: &str) -> bool {
    match entry.rsplit_once(':') {
        // `[::1]:8200` has one, `::1` and `[::1]` have none.
        Some((h, p)) => {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (!h.contains(':') || h.ends_with(']'))
        }
        None => false,
    }
}

/// The query of the bearer-token read, exactly as the Python credmon sends it:
/// `minimum_seconds`, `scopes` when given, and `audience` on `/creds/` URLs,
/// `audiences` on the others (`/sts/`).
pub fn bearer_query(
    path: &str,
    minimum: u64,
    scopes: Option<&str>,
    audience: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut q = vec![("minimum_seconds", minimum.to_string())];
    if let Some(s) = scopes.filter(|s| !s.is_empty()) {
        q.push(("scopes", s.to_owned()));
    }
    if let Some(a) = audience.filter(|a| !a.is_empty()) {
        let key = if format!("/{path}").contains("/creds/") {
            "audience"
        } else {
            "audiences"
        };
        q.push((key, a.to_owned()));
    }
    q
}

#[cfg(test)]
mod tests;
