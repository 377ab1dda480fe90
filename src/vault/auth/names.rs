//! The one resolver of a credential's Vault issuer and role: every role asks
//! it, so the Kerberos mount `kerberos-<issuer>_<role>` a login uses and the
//! `secret/oauth/...` path a token is read from always agree.

/// Issuer and role of a Vault credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// Issuer name in Vault.
    pub issuer: String,
    /// Vault role.
    pub role: String,
}

/// Where the names come from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// `get`'s options: `--issuer`, and `--role` or else the primary of the
    /// client principal (`robot` for `robot/host@REALM`).
    Options {
        /// `--issuer`.
        issuer: &'a str,
        /// `--role`.
        role: Option<&'a str>,
        /// The client principal.
        principal: &'a str,
    },
    /// htgettoken options (the storer, after the service's `-i`/`-r`):
    /// htgettoken's default `default` for what is not given.
    Htgettoken {
        /// `-i`.
        issuer: Option<&'a str>,
        /// `-r`.
        role: Option<&'a str>,
    },
    /// A service name `issuer[_role]` (a credd file stem), role `default` when absent.
    Service(&'a str),
    /// A stored credential (the credmon): the path of its `vault_url` after
    /// `/v1/`, `secret/oauth/{creds|sts}/<issuer>/<credkey>:<role>`; the
    /// service name only when the path is not of that form.
    Stored {
        /// The `vault_url` path.
        path: &'a str,
        /// The credential's service name (file stem).
        service: &'a str,
    },
}

/// What a Vault path says about its credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialPath {
    /// Issuer and role.
    pub names: Names,
    /// The credential key (may contain `/`).
    pub credkey: String,
    /// `sts` (token exchange) rather than `creds`.
    pub exchange: bool,
}

/// Characters allowed in issuer and role names (they become a mount name).
fn plain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Parses `secret/oauth/{creds|sts}/<issuer>/<credkey>:<role>`.
pub fn parse_vault_path(path: &str) -> Result<CredentialPath, String> {
    let bad = || format!("'{path}' is not a secret/oauth/creds|sts/<issuer>/<credkey>:<role> path");
    let rest = path.trim_start_matches('/');
    let rest = rest.strip_prefix("v1/").unwrap_or(rest);
    let rest = rest.strip_prefix("secret/oauth/").ok_or_else(bad)?;
    let (kind, rest) = rest.split_once('/').ok_or_else(bad)?;
    let exchange = match kind {
        "creds" => false,
        "sts" => true,
        _ => return Err(bad()),
    };
    let (issuer, rest) = rest.split_once('/').ok_or_else(bad)?;
    let (credkey, role) = rest.rsplit_once(':').ok_or_else(bad)?;
    if !plain(issuer) || !plain(role) || credkey.is_empty() {
        return Err(bad());
    }
    Ok(CredentialPath {
        names: Names {
            issuer: issuer.to_owned(),
            role: role.to_owned(),
        },
        credkey: credkey.to_owned(),
        exchange,
    })
}

/// Issuer and role from `source`.
pub fn resolve(source: Source<'_>) -> Names {
    let names = |issuer: &str, role: &str| Names {
        issuer: issuer.to_owned(),
        role: role.to_owned(),
    };
    match source {
        Source::Options {
            issuer,
            role,
            principal,
        } => {
            let bare = principal.split('@').next().unwrap_or(principal);
            let primary = bare.split('/').next().unwrap_or(bare);
            names(issuer, role.unwrap_or(primary))
        }
        Source::Htgettoken { issuer, role } => {
            names(issuer.unwrap_or("default"), role.unwrap_or("default"))
        }
        Source::Service(service) => match service.split_once('_') {
            Some((i, r)) if !r.is_empty() => names(i, r),
            Some((i, _)) => names(i, "default"),
            None => names(service, "default"),
        },
        Source::Stored { path, service } => match parse_vault_path(path) {
            Ok(p) => p.names,
            Err(why) => {
                log::debug!("{why}; taking issuer and role from the service name '{service}'");
                resolve(Source::Service(service))
            }
        },
    }
}

impl Names {
    /// The Kerberos auth mount, `kerberos-<issuer>_<role>`.
    pub fn mount(&self) -> String {
        crate::vault::kerberos_mount(&self.issuer, &self.role)
    }

    /// The oauthapp path of `credkey` (`sts` for a token exchange).
    pub fn secret_path(&self, exchange: bool, credkey: &str) -> String {
        crate::vault::secret_path(exchange, &self.issuer, credkey, &self.role)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn check(cases: Vec<(Source, (&str, &str))>) {
        for (source, (issuer, role)) in cases {
            let want = Names {
                issuer: issuer.into(),
                role: role.into(),
            };
            assert_eq!(resolve(source), want, "{source:?}");
        }
    }

    #[test]
    fn names_from_options_and_service_names() {
        let p = "robot/host.example@LIGO.ORG";
        let options = |issuer, role, principal| Source::Options {
            issuer,
            role,
            principal,
        };
        let htgettoken = |issuer, role| Source::Htgettoken { issuer, role };
        check(vec![
            (options("igwn", None, p), ("igwn", "robot")),
            (options("cilogon", Some("prod"), p), ("cilogon", "prod")),
            (options("igwn", None, "bot@R"), ("igwn", "bot")),
            (htgettoken(None, None), ("default", "default")),
            (htgettoken(Some("igwn"), Some("robot")), ("igwn", "robot")),
            (Source::Service("igwn_robot"), ("igwn", "robot")),
            (Source::Service("igwn"), ("igwn", "default")),
            (Source::Service("igwn_"), ("igwn", "default")),
        ]);
    }

    #[test]
    fn names_of_stored_credentials() {
        let stored = |path| Source::Stored {
            path,
            service: "svc_fallback",
        };
        let fallback = ("svc", "fallback");
        check(vec![
            // Issue 8 fix 2: service `igwn`, stored with --role=robot.
            (
                stored("secret/oauth/creds/igwn/robot/host.example:robot"),
                ("igwn", "robot"),
            ),
            (
                stored("/v1/secret/oauth/sts/cilogon/ck:prod"),
                ("cilogon", "prod"),
            ),
            (
                stored("secret/oauth/creds/igwn/a:b:robot"),
                ("igwn", "robot"),
            ),
            (stored("secret/oauth/creds/igwn/ck"), fallback),
            (stored("secret/oauth/other/igwn/ck:r"), fallback),
            (stored("secret/kv/igwn/ck:r"), fallback),
            (stored("secret/oauth/creds/igwn/:r"), fallback),
            (stored("secret/oauth/creds/igwn/ck:"), fallback),
            (stored("secret/oauth/creds/ig%20wn/ck:r"), fallback),
            (stored("secret/oauth/creds/igwn/ck:r/x"), fallback),
        ]);
    }

    #[test]
    fn paths_and_mounts() {
        let c = parse_vault_path("secret/oauth/sts/igwn/robot/h.example:robot").unwrap();
        assert_eq!(c.credkey, "robot/h.example");
        assert!(c.exchange);
        assert_eq!(c.names.mount(), "kerberos-igwn_robot");
        assert_eq!(
            c.names.secret_path(false, &c.credkey),
            "secret/oauth/creds/igwn/robot/h.example:robot"
        );
    }
}
