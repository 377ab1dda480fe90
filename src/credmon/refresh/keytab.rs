//! Keytab users: the keytab check, the Kerberos login for a 28-day Vault
//! token, and creating a `.top` for a keytab user who has none.

use super::{Ctx, Key, RefreshError};
use crate::credmon::config::Config;
use crate::credmon::policy;
use crate::files::{FileError, SafeDir};
use crate::kerberos::KrbError;
use crate::vault::auth::{self, CredentialSource, Login, Oidc, SessionPolicy, Want};

/// `<keytab dir>/<user>.keytab` as a login source when it exists and passes
/// the one keytab check (regular file, no symbolic link, private, root's when
/// we are `root`); a keytab that fails it is logged and ignored.
pub fn keytab_for(cfg: &Config, user: &str, root: bool) -> Option<CredentialSource> {
    let dir = cfg.keytab_dir.as_ref()?;
    let path = dir.join(format!("{user}.keytab"));
    match CredentialSource::keytab(&path, None, None, root) {
        Ok(source) => Some(source),
        Err(KrbError::KeytabMissing(_)) => None,
        Err(e) => {
            log::warn!("ignoring {}: {e}", path.display());
            None
        }
    }
}

/// Creates `<user>/<service>.top` for a keytab user when missing; `Ok(true)` when created.
pub(super) fn provision(
    ctx: &Ctx,
    cfg: &Config,
    root: &SafeDir,
    key: &Key,
    server: &str,
) -> Result<bool, RefreshError> {
    let fail = |e: String| RefreshError::retry("provision", e);
    let source =
        keytab_for(cfg, &key.user, ctx.is_root()).ok_or_else(|| fail("no usable keytab".into()))?;
    let udir = match root.open_child(&key.user) {
        Ok(d) => d,
        Err(FileError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => root
            .create_dir(&key.user, 0o2700, condor_owner(ctx.is_root()))
            .map_err(|e| fail(e.to_string()))?,
        Err(e) => return Err(fail(e.to_string())),
    };
    if udir
        .stat(&format!("{}.top", key.stem))
        .map_err(|e| fail(e.to_string()))?
        .is_some()
    {
        return Ok(false);
    }
    let addr = crate::vault::ServerAddress::parse(server).map_err(|e| fail(e.to_string()))?;
    let principal = source.principal().unwrap_or_default();
    let credkey = principal.split('@').next().unwrap_or(principal);
    let names = auth::resolve(auth::Source::Service(&key.stem));
    let url = format!(
        "https://{}:{}/v1/{}",
        addr.host,
        addr.port,
        names.secret_path(false, credkey)
    );
    policy::check_vault_url(&url, &cfg.allowed_ports, &cfg.trusted_hosts).map_err(fail)?;
    let token = login(ctx, &source, &names, credkey, &addr).map_err(fail)?;
    let json = serde_json::json!({"vault_token": token.expose(), "vault_url": url});
    let mut bytes = serde_json::to_vec(&json).map_err(|e| fail(e.to_string()))?;
    bytes.push(b'\n');
    udir.write_atomic(&format!("{}.top", key.stem), &bytes, ctx.top_opts())
        .map_err(|e| fail(e.to_string()))?;
    log::info!("provisioned {key}.top for keytab principal {principal}");
    Ok(true)
}

/// A robot's Kerberos login at `addr` as `names`, for a 28-day Vault token
/// (the session policy's login step; no bearer read).
fn login(
    ctx: &Ctx,
    source: &CredentialSource,
    names: &auth::Names,
    credkey: &str,
    addr: &crate::vault::ServerAddress,
) -> Result<crate::vault::VaultToken, String> {
    let client = ctx
        .client(&addr.host, addr.port)
        .map_err(|e| e.to_string())?;
    let policy = SessionPolicy {
        reuse_min_ttl: std::time::Duration::ZERO,
        login: Login::With(source),
        ttl: auth::STORED_TTL,
        shorten_minimum: false,
        oidc: Oidc::Never,
    };
    let want = Want {
        names,
        credkey: Some(credkey),
        path: None,
        exchange: false,
        query: &[],
        service_host: &addr.host,
        server_host: &addr.host,
        server_port: addr.port,
    };
    policy
        .login(&*client, &want)
        .map(|s| s.token)
        .map_err(|e| e.to_string())
}

/// Owner for user directories we create: the `condor` user, as the credd would, else root.
fn condor_owner(root: bool) -> Option<(u32, u32)> {
    root.then(|| condor_ids().unwrap_or((0, 0)))
}

static CONDOR_IDS: std::sync::OnceLock<Option<(u32, u32)>> = std::sync::OnceLock::new();

/// The `condor` user's uid and gid, looked up once: the credmon does it
/// before it is confined, as `/etc/passwd` may be replaced (a new file the
/// confined process cannot open) while it runs.
pub fn condor_ids() -> Option<(u32, u32)> {
    *CONDOR_IDS.get_or_init(|| match nix::unistd::User::from_name("condor") {
        Ok(Some(u)) => Some((u.uid.as_raw(), u.gid.as_raw())),
        _ => None,
    })
}
