//! A real OpenBao 2.6.2 high-availability cluster: three `bao server`
//! nodes with integrated (raft) storage, configured as htvault-config's
//! `vault.raft.template` does (`retry_join` to the two peers with the CA
//! file, `api_addr`/`cluster_addr` per node, `disable_standby_reads`, 672 h
//! lease TTLs), initialised with one unseal key, and Kerberos configured as
//! in [`super::openbao`] for the cluster's name (`host/<name>`).
//!
//! Every node listens on the same port on its own loopback address
//! (127.0.0.x): one name (see [`super::hosts`]) then stands for the whole
//! cluster, as a DNS round-robin name does at a site. One difference from
//! htvault-config: raft's `performance_multiplier` is 1 (OpenBao's default
//! is 5), so a leader election takes 1 – 3 s instead of 5 – 15 s; the tests
//! measure the election they cause and bound their waits by it.
//!
//! Nodes are stopped by pid on drop (SIGKILL: raft is crash-safe, and the
//! cluster's files are thrown away).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use super::kdc::Kdc;
use super::openbao::{Api, ISSUER, ROLE, configure_htvault, find_bao, start_slapd};
use super::pki::TestPki;
use serde_json::json;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One node: its address, config file and (while running) process.
struct Node {
    ip: IpAddr,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A running three-node cluster and its slapd.
pub struct BaoCluster {
    nodes: Vec<Node>,
    slapd: Child,
    /// The port every node serves on.
    pub port: u16,
    /// The cluster's name (in the certificate and the Kerberos service name).
    pub name: String,
    ca: PathBuf,
    root: String,
    unseal_key: String,
    dir: PathBuf,
}

impl BaoCluster {
    /// Starts three nodes on `ips` (one each), serving `name`, with a CA in
    /// `dir`; initialises, unseals and joins them; configures Kerberos with
    /// `kdc`'s service keytab (which must hold `host/<name>`). The port is
    /// also free on `also_free` (for the tests' stand-ins of broken nodes).
    pub fn start(
        dir: &Path,
        kdc: &Kdc,
        name: &str,
        ips: [IpAddr; 3],
        also_free: &[IpAddr],
    ) -> Result<BaoCluster, String> {
        let bao = find_bao()?;
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let pki = TestPki::generate_for(&dir.join("pki"), &[name, "localhost"], &ips)?;
        let (cert, key) = pki.write_server_files(&dir.join("pki"))?;
        let ca = pki.ca_file().to_owned();
        let (slapd, ldap_port) = start_slapd(dir)?;
        let all: Vec<IpAddr> = ips.iter().chain(also_free).copied().collect();
        let port = common_free_port(&all)?;
        let cluster_port = common_free_port(&ips)?;
        let mut nodes = Vec::new();
        for (i, ip) in ips.iter().enumerate() {
            let ndir = dir.join(format!("node{i}"));
            std::fs::create_dir_all(ndir.join("raft")).map_err(|e| e.to_string())?;
            let peers: String = ips
                .iter()
                .map(|p| {
                    format!(
                        "  retry_join {{\n    leader_api_addr = \"https://{p}:{port}\"\n    leader_ca_cert_file = \"{}\"\n  }}\n",
                        ca.display()
                    )
                })
                .collect();
            let config = ndir.join("config.hcl");
            std::fs::write(
                &config,
                format!(
                    "storage \"raft\" {{\n  path = \"{raft}\"\n  node_id = \"node{i}\"\n  performance_multiplier = 1\n  autopilot_reconcile_interval = \"1s\"\n  autopilot_update_interval = \"500ms\"\n{peers}}}\n\
                     listener \"tcp\" {{\n  address = \"{ip}:{port}\"\n  cluster_address = \"{ip}:{cluster_port}\"\n  tls_cert_file = \"{cert}\"\n  tls_key_file = \"{key}\"\n}}\n\
                     api_addr = \"https://{ip}:{port}\"\ncluster_addr = \"https://{ip}:{cluster_port}\"\n\
                     disable_standby_reads = true\ndefault_lease_ttl = \"672h\"\nmax_lease_ttl = \"672h\"\n",
                    raft = ndir.join("raft").display(),
                    cert = cert.display(),
                    key = key.display(),
                ),
            )
            .map_err(|e| e.to_string())?;
            nodes.push(Node {
                ip: *ip,
                config,
                log: ndir.join("server.log"),
                child: None,
            });
        }
        let mut c = BaoCluster {
            nodes,
            slapd,
            port,
            name: name.to_owned(),
            ca,
            root: String::new(),
            unseal_key: String::new(),
            dir: dir.to_owned(),
        };
        for i in 0..3 {
            c.spawn(i, &bao)?;
        }
        c.initialise()?;
        configure_htvault(
            &c.api(c.leader().ok_or("no leader after start")?)?,
            kdc.service_keytab(),
            ldap_port,
            &format!("host/{name}"),
        )?;
        Ok(c)
    }

    fn spawn(&mut self, i: usize, bao: &Path) -> Result<(), String> {
        let n = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&n.log)
            .map_err(|e| format!("{}: {e}", n.log.display()))?;
        let child = Command::new(bao)
            .arg("server")
            .arg(format!("-config={}", n.config.display()))
            .env_remove("BAO_ADDR")
            .env_remove("VAULT_ADDR")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start bao: {e}"))?;
        n.child = Some(child);
        Ok(())
    }

    /// Initialises node 0 (one key share), unseals every node (the others
    /// join through `retry_join` while unsealing), and waits until the
    /// cluster has three voters.
    fn initialise(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let a0 = self.api_as(0, None)?;
        let init = wait_ok(deadline, || {
            a0.ok(
                "PUT",
                "sys/init",
                Some(json!({"secret_shares": 1, "secret_threshold": 1})),
            )
        })
        .map_err(|e| self.failed("initialising node 0", &e))?;
        self.root = init["root_token"].as_str().unwrap_or_default().to_owned();
        self.unseal_key = init["keys_base64"][0]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.unseal(0, deadline)?;
        wait_ok(deadline, || match self.leader() {
            Some(_) => Ok(()),
            None => Err("no active node yet".to_owned()),
        })
        .map_err(|e| self.failed("electing node 0", &e))?;
        // Quick promotion of the joining nodes to voters (default 10 s).
        self.api(0)?.ok(
            "POST",
            "sys/storage/raft/autopilot/configuration",
            Some(json!({"server_stabilization_time": "1s", "cleanup_dead_servers": false})),
        )?;
        // Join at once (retry_join alone waits seconds between its tries).
        let ca_pem = std::fs::read_to_string(&self.ca).map_err(|e| e.to_string())?;
        let leader_api = format!("https://{}:{}", self.nodes[0].ip, self.port);
        let me = &*self;
        std::thread::scope(|s| {
            let joins: Vec<_> = (1..3)
                .map(|i| {
                    let (ca_pem, leader_api) = (&ca_pem, &leader_api);
                    s.spawn(move || {
                        let a = me.api_as(i, None)?;
                        wait_ok(deadline, || {
                            a.ok(
                                "POST",
                                "sys/storage/raft/join",
                                Some(json!({"leader_api_addr": leader_api, "leader_ca_cert": ca_pem})),
                            )
                        })?;
                        me.unseal(i, deadline)
                    })
                })
                .collect();
            joins
                .into_iter()
                .try_for_each(|j| j.join().unwrap_or(Err("join panicked".into())))
        })?;
        let a = self.api(0)?;
        wait_ok(deadline, || {
            let cfg = a.ok("GET", "sys/storage/raft/configuration", None)?;
            let voters = cfg["data"]["config"]["servers"]
                .as_array()
                .map_or(0, |s| s.iter().filter(|s| s["voter"] == true).count());
            if voters == 3 {
                Ok(())
            } else {
                Err(format!("{voters} voters"))
            }
        })
        .map_err(|e| self.failed("joining the cluster", &e))?;
        Ok(())
    }

    /// Unseals node `i` (retried until it has joined and is unsealed).
    fn unseal(&self, i: usize, deadline: Instant) -> Result<(), String> {
        let a = self.api_as(i, None)?;
        wait_ok(deadline, || {
            let st = a.ok("PUT", "sys/unseal", Some(json!({"key": self.unseal_key})))?;
            if st["sealed"] == false {
                Ok(())
            } else {
                Err(format!("still sealed: {st}"))
            }
        })
        .map_err(|e| self.failed(&format!("unsealing node {i}"), &e))
    }

    fn failed(&self, what: &str, e: &str) -> String {
        let logs: Vec<String> = self
            .nodes
            .iter()
            .map(|n| {
                let text = std::fs::read_to_string(&n.log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                format!(
                    "{}:\n{}",
                    n.log.display(),
                    lines[lines.len().saturating_sub(10)..].join("\n")
                )
            })
            .collect();
        format!("OpenBao cluster: {what}: {e}\n{}", logs.join("\n"))
    }

    /// The API of node `i` as root.
    pub fn api(&self, i: usize) -> Result<Api, String> {
        self.api_as(i, Some(&self.root))
    }

    fn api_as(&self, i: usize, token: Option<&str>) -> Result<Api, String> {
        Api::new(
            &self.ca,
            &format!("https://{}:{}", self.nodes[i].ip, self.port),
            token,
        )
    }

    /// `https://<name>:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}:{}", self.name, self.port)
    }

    /// The CA of the nodes' certificate.
    pub fn ca_file(&self) -> &Path {
        &self.ca
    }

    /// The loopback address of node `i`.
    pub fn ip(&self, i: usize) -> IpAddr {
        self.nodes[i].ip
    }

    /// Every node's address.
    pub fn ips(&self) -> Vec<IpAddr> {
        self.nodes.iter().map(|n| n.ip).collect()
    }

    /// The socket address of node `i`.
    pub fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::new(self.nodes[i].ip, self.port)
    }

    /// Whether node `i` runs.
    pub fn is_running(&mut self, i: usize) -> bool {
        self.nodes[i]
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The active node, as the running nodes see it (`sys/health` 200).
    pub fn leader(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| {
            self.nodes[i].child.is_some()
                && self
                    .api_as(i, None)
                    .and_then(|a| a.call("GET", "sys/health", None))
                    .is_ok_and(|(status, _)| status == 200)
        })
    }

    /// Kills node `i` with SIGKILL and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts node `i` again and unseals it (it rejoins from its raft data;
    /// it serves once a quorum of nodes runs).
    pub fn start_node(&mut self, i: usize) -> Result<(), String> {
        self.spawn(i, &find_bao()?)?;
        self.unseal(i, Instant::now() + Duration::from_secs(30))
    }

    /// Starts node `i` again and unseals it (it rejoins from its raft data);
    /// returns once it forwards requests to the active node.
    pub fn restart(&mut self, i: usize) -> Result<(), String> {
        self.start_node(i)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let a = self.api(i)?;
        wait_ok(deadline, || a.ok("GET", "auth/token/lookup-self", None))
            .map(|_| ())
            .map_err(|e| self.failed(&format!("node {i} after its restart"), &e))
    }

    /// Waits (at most `limit`) until some running node is active; the time it took.
    pub fn wait_leader(&self, limit: Duration) -> Result<(usize, Duration), String> {
        let t0 = Instant::now();
        let mut found = None;
        super::wait::until(limit, || {
            found = self.leader();
            found.is_some()
        });
        match found {
            Some(i) => Ok((i, t0.elapsed())),
            None => Err(self.failed(
                "waiting for an active node",
                &format!("none within {limit:?}"),
            )),
        }
    }

    /// Creates a token with `policies` (orphan, 24 h) as root.
    pub fn token(&self, api: &Api, policies: &[&str]) -> Result<String, String> {
        let r = api.ok(
            "POST",
            "auth/token/create",
            Some(json!({"policies": policies, "ttl": "24h", "no_parent": true})),
        )?;
        r["auth"]["client_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no client_token in {r}"))
    }

    /// Stores an access token for `credkey` in the KV mount standing in for oauthapp.
    pub fn put_credential(
        &self,
        api: &Api,
        credkey: &str,
        access_token: &str,
    ) -> Result<(), String> {
        api.ok(
            "POST",
            &format!("secret/oauth/creds/{ISSUER}/{credkey}:{ROLE}"),
            Some(json!({"access_token": access_token, "type": "Bearer"})),
        )
        .map(|_| ())
    }

    /// `n` tokens with `policies` (see [`BaoCluster::token`]), twelve requests
    /// at a time (raft commits concurrent writes together).
    pub fn tokens(&self, api: &Api, policies: &[&str], n: usize) -> Result<Vec<String>, String> {
        let per = n.div_ceil(12).max(1);
        std::thread::scope(|s| {
            let jobs: Vec<_> = (0..n)
                .collect::<Vec<_>>()
                .chunks(per)
                .map(|part| {
                    let k = part.len();
                    s.spawn(move || {
                        (0..k)
                            .map(|_| self.token(api, policies))
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
                .collect();
            let mut all = Vec::with_capacity(n);
            for j in jobs {
                all.extend(j.join().map_err(|_| "a token thread panicked")??);
            }
            Ok(all)
        })
    }

    /// Stores `access_token(credkey)` for every credkey, four requests at a time.
    pub fn put_credentials(
        &self,
        api: &Api,
        credkeys: &[String],
        access_token: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<(), String> {
        std::thread::scope(|s| {
            let jobs: Vec<_> = credkeys
                .chunks(credkeys.len().div_ceil(4).max(1))
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .try_for_each(|k| self.put_credential(api, k, &access_token(k)))
                    })
                })
                .collect();
            jobs.into_iter().try_for_each(|j| {
                j.join()
                    .map_err(|_| "a credential thread panicked".to_owned())?
            })
        })
    }

    /// A policy `name` that reads every credential of the issuer (for tokens
    /// made without Kerberos, as the credd's `.top` files hold).
    pub fn read_policy(&self, api: &Api, name: &str) -> Result<(), String> {
        let policy =
            format!("path \"secret/oauth/creds/{ISSUER}/*\" {{ capabilities = [\"read\"] }}\n");
        api.ok(
            "PUT",
            &format!("sys/policies/acl/{name}"),
            Some(json!({"policy": policy})),
        )
        .map(|_| ())
    }

    /// The cluster's directory (logs under `node<i>/server.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for BaoCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        let _ = self.slapd.kill();
        let _ = self.slapd.wait();
    }
}

/// Calls `f` until it succeeds or `deadline` passes (then its last error).
fn wait_ok<T>(deadline: Instant, mut f: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let mut last = Err(String::from("not tried"));
    super::wait::until(deadline.saturating_duration_since(Instant::now()), || {
        last = f();
        last.is_ok()
    });
    last
}

/// A TCP port free on every one of `ips` right now.
pub fn common_free_port(ips: &[IpAddr]) -> Result<u16, String> {
    for _ in 0..50 {
        let first = TcpListener::bind((ips[0], 0)).map_err(|e| format!("bind {}: {e}", ips[0]))?;
        let port = first.local_addr().map_err(|e| e.to_string())?.port();
        if ips[1..]
            .iter()
            .all(|ip| TcpListener::bind((*ip, port)).is_ok())
        {
            return Ok(port);
        }
    }
    Err(format!("no port free on all of {ips:?}"))
}
