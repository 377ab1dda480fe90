//! Trust anchors for talking to Vault: a CA bundle file (`--cafile`, else the
//! system bundle) plus an OpenSSL-style hashed CA directory (`--capath`,
//! `$X509_CERT_DIR`, or `/etc/grid-security/certificates`), as htgettoken uses.

use super::VaultError;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// System CA bundles tried, in order, when no `--cafile` is given.
const SYSTEM_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/tls/cert.pem",
];

/// The grid CA directory used when it exists and nothing else is given.
pub const GRID_CA_DIR: &str = "/etc/grid-security/certificates";

/// Where trust anchors come from, after defaults are applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustSources {
    /// A PEM bundle.
    pub cafile: Option<PathBuf>,
    /// A directory of PEM certificates.
    pub capath: Option<PathBuf>,
}

impl TrustSources {
    /// Applies htgettoken's defaults: the system bundle, and `$X509_CERT_DIR` or
    /// the grid CA directory when it exists. Empty strings mean "unset".
    pub fn with_defaults(
        cafile: Option<PathBuf>,
        capath: Option<PathBuf>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let nonempty = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
        let cafile = nonempty(cafile).or_else(|| {
            env("SSL_CERT_FILE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| {
                    SYSTEM_BUNDLES
                        .iter()
                        .map(PathBuf::from)
                        .find(|p| p.exists())
                })
        });
        let capath = nonempty(capath).or_else(|| {
            env("X509_CERT_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| Some(PathBuf::from(GRID_CA_DIR)).filter(|p| p.is_dir()))
        });
        Self { cafile, capath }
    }
}

/// [`client_config`] for `--cafile`/`--capath` (either may be unset), with
/// htgettoken's defaults taken from `env`.
pub fn client_config_for(
    cafile: Option<PathBuf>,
    capath: Option<PathBuf>,
    env: &crate::env::Env,
) -> Result<Arc<rustls::ClientConfig>, VaultError> {
    client_config(&TrustSources::with_defaults(cafile, capath, |k| env.var(k)))
}

/// Builds a rustls client configuration trusting exactly these sources.
pub fn client_config(sources: &TrustSources) -> Result<Arc<rustls::ClientConfig>, VaultError> {
    let mut roots = RootCertStore::empty();
    if let Some(file) = &sources.cafile {
        let certs = read_pem_certs(file).map_err(|why| {
            VaultError::Tls(format!("cannot read CA file '{}': {why}", file.display()))
        })?;
        let (ok, _) = roots.add_parsable_certificates(certs);
        if ok == 0 {
            return Err(VaultError::Tls(format!(
                "CA file '{}' holds no usable certificate",
                file.display()
            )));
        }
    }
    if let Some(dir) = &sources.capath {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            VaultError::Tls(format!("cannot read CA directory '{}': {e}", dir.display()))
        })?;
        for entry in entries.flatten().take(MAX_CA_DIR_ENTRIES) {
            let name = entry.file_name();
            if is_ca_file_name(&name.to_string_lossy())
                && let Ok(certs) = read_pem_certs(&entry.path())
            {
                roots.add_parsable_certificates(certs);
            }
        }
    }
    if roots.is_empty() {
        return Err(VaultError::Tls(
            "no trusted CA certificates found (give --cafile or --capath)".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| VaultError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// CA directory entries we read: OpenSSL hash links (`1a2b3c4d.0`) and `*.pem`/`*.crt`.
fn is_ca_file_name(name: &str) -> bool {
    let hashed = name.len() > 9
        && name.as_bytes()[8] == b'.'
        && name[..8].bytes().all(|b| b.is_ascii_hexdigit())
        && name[9..].bytes().all(|b| b.is_ascii_digit());
    hashed || name.ends_with(".pem") || name.ends_with(".crt")
}

/// Largest CA file we read (a full system bundle is well under 1 MiB).
pub const MAX_CA_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Most entries of a CA directory we look at.
pub const MAX_CA_DIR_ENTRIES: usize = 10_000;

/// Reads the certificates of a PEM file: a regular file of at most
/// [`MAX_CA_FILE_BYTES`] (so `/dev/zero` or a fifo is refused, not read forever).
fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_CA_FILE_BYTES {
        return Err(format!("larger than {MAX_CA_FILE_BYTES} bytes"));
    }
    let mut pem = Vec::new();
    file.take(MAX_CA_FILE_BYTES + 1)
        .read_to_end(&mut pem)
        .map_err(|e| e.to_string())?;
    if pem.len() as u64 > MAX_CA_FILE_BYTES {
        return Err(format!("larger than {MAX_CA_FILE_BYTES} bytes"));
    }
    Ok(CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ca_dir_names() {
        for (n, ok) in [
            ("1a2b3c4d.0", true),
            ("1a2b3c4d.12", true),
            ("1a2b3c4d.r0", false),
            ("1a2b3c4d.signing_policy", false),
            ("ca.pem", true),
            ("x.namespaces", false),
        ] {
            assert_eq!(is_ca_file_name(n), ok, "{n}");
        }
    }

    #[test]
    fn endless_or_special_ca_files_are_refused() {
        let e = read_pem_certs(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(e, "not a regular file");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let big = dir.path().join("big.pem");
        let f = std::fs::File::create(&big).unwrap_or_else(|e| panic!("{e}"));
        f.set_len(MAX_CA_FILE_BYTES + 1)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(read_pem_certs(&big).unwrap_err().starts_with("larger than"));
        let err = client_config(&TrustSources {
            cafile: Some("/dev/zero".into()),
            capath: None,
        })
        .unwrap_err();
        assert!(err.to_string().contains("/dev/zero"), "{err}");
    }

    #[test]
    fn defaults() {
        let env = |k: &str| match k {
            "X509_CERT_DIR" => Some("/certs".to_owned()),
            "SSL_CERT_FILE" => Some("/bundle.pem".to_owned()),
            _ => None,
        };
        let s = TrustSources::with_defaults(None, None, env);
        assert_eq!(s.cafile, Some(PathBuf::from("/bundle.pem")));
        assert_eq!(s.capath, Some(PathBuf::from("/certs")));
        let s = TrustSources::with_defaults(Some("/a".into()), Some("/b".into()), env);
        assert_eq!((s.cafile, s.capath), (Some("/a".into()), Some("/b".into())));
    }
}
