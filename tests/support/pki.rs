//! A throwaway test CA and a `localhost` server certificate (rcgen on aws-lc-rs).
//!
//! [`TestPki::generate`] makes a fresh ECDSA P-256 CA and a server certificate for
//! `localhost` and `127.0.0.1`, writes the CA as `ca.pem` into a directory, and hands
//! out rustls configurations for the test server and for test clients.

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA plus one server certificate signed by it.
pub struct TestPki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    ca_file: PathBuf,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: Vec<u8>,
    server_pem: String,
    server_key_pem: String,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki")
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl TestPki {
    /// Generates the CA and the `localhost`/127.0.0.1 server certificate and writes
    /// `<dir>/ca.pem` (the directory is created if missing).
    pub fn generate(dir: &Path) -> Result<TestPki, String> {
        Self::generate_for(dir, &["localhost"], &[IpAddr::V4(Ipv4Addr::LOCALHOST)])
    }

    /// Like [`TestPki::generate`], with a server certificate for these DNS
    /// names (the first is its common name) and IP addresses.
    pub fn generate_for(dir: &Path, names: &[&str], ips: &[IpAddr]) -> Result<TestPki, String> {
        let ca = make_ca()?;
        let server_key =
            KeyPair::generate().map_err(|e| format!("could not generate server key: {e}"))?;
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .map_err(|e| format!("bad server certificate name: {e}"))?;
        params
            .subject_alt_names
            .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        params.distinguished_name = dn(names.first().copied().unwrap_or("localhost"));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let server_cert = params
            .signed_by(&server_key, &ca)
            .map_err(|e| format!("could not sign server certificate: {e}"))?;
        fs::create_dir_all(dir)
            .map_err(|e| format!("could not create '{}': {e}", dir.display()))?;
        let ca_file = dir.join("ca.pem");
        let ca_pem = ca.pem();
        fs::write(&ca_file, &ca_pem)
            .map_err(|e| format!("could not write '{}': {e}", ca_file.display()))?;
        Ok(TestPki {
            ca_der: ca.der().clone(),
            ca_pem: ca_pem.clone(),
            ca_file,
            server_chain: vec![server_cert.der().clone(), ca.der().clone()],
            server_key: server_key.serialize_der(),
            server_pem: format!("{}{ca_pem}", server_cert.pem()),
            server_key_pem: server_key.serialize_pem(),
        })
    }

    /// Writes the server certificate chain and key as PEM files
    /// (`<dir>/server.pem`, `<dir>/server-key.pem`, 0600) for servers that read files.
    pub fn write_server_files(&self, dir: &Path) -> Result<(PathBuf, PathBuf), String> {
        use std::os::unix::fs::PermissionsExt;
        let (cert, key) = (dir.join("server.pem"), dir.join("server-key.pem"));
        fs::write(&cert, &self.server_pem)
            .and_then(|()| fs::write(&key, &self.server_key_pem))
            .and_then(|()| fs::set_permissions(&key, fs::Permissions::from_mode(0o600)))
            .map_err(|e| {
                format!(
                    "could not write the server files in '{}': {e}",
                    dir.display()
                )
            })?;
        Ok((cert, key))
    }

    /// The CA certificate file (`<dir>/ca.pem`).
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The CA certificate in PEM form.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate in DER form.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// Writes `ca.pem` into `dir` (created if missing), for clients that take a CA directory.
    pub fn write_ca_dir(&self, dir: &Path) -> Result<PathBuf, String> {
        fs::create_dir_all(dir)
            .map_err(|e| format!("could not create '{}': {e}", dir.display()))?;
        let path = dir.join("ca.pem");
        fs::write(&path, &self.ca_pem)
            .map_err(|e| format!("could not write '{}': {e}", path.display()))?;
        Ok(dir.to_path_buf())
    }

    /// A rustls server configuration presenting the `localhost` certificate (HTTP/1.1 only).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, String> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("rustls protocol versions: {e}"))?
            .with_no_client_auth()
            .with_single_cert(self.server_chain.clone(), key)
            .map_err(|e| format!("rustls server certificate: {e}"))?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// A rustls client configuration trusting only this CA.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.ca_der.clone())
            .map_err(|e| format!("bad CA certificate: {e}"))?;
        let cfg = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("rustls protocol versions: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(cfg))
    }
}

fn make_ca() -> Result<CertifiedIssuer<'static, KeyPair>, String> {
    let key = KeyPair::generate().map_err(|e| format!("could not generate CA key: {e}"))?;
    let mut params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| format!("bad CA params: {e}"))?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name = dn("robot-credmon test CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, key).map_err(|e| format!("could not self-sign CA: {e}"))
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "robot-credmon tests");
    dn
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}
