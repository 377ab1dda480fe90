//! Test harness: a throwaway MIT KDC ([`kdc`]), a test CA ([`pki`]), GSS-API helpers
//! ([`gss`]), an in-process fake htvault-config/OpenBao server ([`vault`]), and a real
//! OpenBao launcher ([`openbao`]).
//!
//! Include it from a test binary with `#[path = "../support/mod.rs"] mod support;`.
//! [`TestEnv`] bundles the common case: a temp dir, a KDC with `robot/host.example`, and a
//! `TestVault` with mount `igwn_robot` and the credential `igwn/robot/host.example:robot`.
//!
//! Nothing here changes the test process's environment; Kerberos clients must get
//! [`kdc::Kdc::env`] on their `Command`.

#![allow(dead_code)]

pub mod gss;
pub mod hosts;
pub mod kdc;
pub mod openbao;
pub mod openbao_ha;
pub mod pki;
pub mod procfs;
pub mod store_cred;
pub mod vault;
pub mod wait;

use std::path::{Path, PathBuf};

// Not every test binary uses every re-export.
#[allow(unused_imports)]
pub use kdc::Kdc;
#[allow(unused_imports)]
pub use vault::{Fault, RequestRecord, TestVault, TokenInfo, VaultConfig};

/// Temp dir + KDC + Vault for the common robot case. Fields drop in order: Vault, KDC, dir.
pub struct TestEnv {
    pub vault: TestVault,
    pub kdc: Kdc,
    pub dir: tempfile::TempDir,
}

impl TestEnv {
    pub const ISSUER: &'static str = "igwn";
    pub const ROLE: &'static str = "robot";
    /// Client principal without realm; also the credkey and the Vault alias.
    pub const PRINCIPAL: &'static str = "robot/host.example";

    /// Starts everything with default settings.
    pub fn start() -> Result<TestEnv, String> {
        TestEnv::start_with(|_| {})
    }

    /// Starts everything, letting `tune` adjust the Vault settings first.
    pub fn start_with(tune: impl FnOnce(&mut VaultConfig)) -> Result<TestEnv, String> {
        let dir = tempfile::Builder::new()
            .prefix("credmon-test-")
            .tempdir()
            .map_err(|e| format!("could not create temp dir: {e}"))?;
        let kdc = Kdc::start(&dir.path().join("kdc"), &[Self::PRINCIPAL], &[])?;
        let mut cfg = VaultConfig::for_kdc(&dir.path().join("vault"), &kdc);
        cfg.mounts = vec![(Self::ISSUER.to_string(), Self::ROLE.to_string())];
        tune(&mut cfg);
        let vault = TestVault::start(cfg)?;
        vault.add_credential(Self::ISSUER, Self::PRINCIPAL, Self::ROLE);
        Ok(TestEnv { vault, kdc, dir })
    }

    /// The temp dir (removed on drop).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Keytab of [`TestEnv::PRINCIPAL`].
    pub fn robot_keytab(&self) -> PathBuf {
        self.kdc.client_keytab(Self::PRINCIPAL)
    }

    /// `https://localhost:<port>/v1/secret/oauth/creds/igwn/robot/host.example:robot`.
    pub fn creds_url(&self) -> String {
        self.vault
            .creds_url(Self::ISSUER, Self::PRINCIPAL, Self::ROLE)
    }

    /// `/v1/auth/kerberos-igwn_robot/login`.
    pub fn login_path(&self) -> String {
        TestVault::login_path(Self::ISSUER, Self::ROLE)
    }

    /// A valid Vault token for the robot (as after a Kerberos login), without Kerberos.
    pub fn provision_token(&self, ttl: u64) -> String {
        self.vault
            .provision_token(Self::ISSUER, Self::ROLE, Self::PRINCIPAL, ttl)
    }

    /// Environment for a child process acting as the robot: the KDC's variables, plus
    /// `KRB5_CLIENT_KTNAME` (robot keytab) and a private `KRB5CCNAME`.
    pub fn robot_env(&self) -> Vec<(String, String)> {
        let mut env = self.kdc.env();
        env.push((
            "KRB5_CLIENT_KTNAME".into(),
            format!("FILE:{}", self.robot_keytab().display()),
        ));
        env.push((
            "KRB5CCNAME".into(),
            format!("FILE:{}", self.path().join("robot.ccache").display()),
        ));
        env
    }
}
