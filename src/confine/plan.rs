//! What the confined credmon may touch, as a plain function of its inputs:
//! [`plan`] turns the credmon's paths, ports and duties ([`Inputs`]) into
//! filesystem rules, TCP ports and capabilities ([`Plan`]). The parsers of
//! the files that name more paths and ports (Kerberos profiles,
//! `condor_config_val -config`) are here too, as functions of their text.

use caps::Capability;
use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

/// What a rule allows beneath its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Read files and list directories.
    Read,
    /// Read, and execute programs (system and HTCondor binaries, libraries).
    ReadExec,
    /// Create files and append to them (the log directory: rotation makes a new file).
    Append,
    /// Read, write, create, rename and remove files and create directories.
    Write,
    /// Read and write an existing device file (`/dev/null`).
    Device,
}

/// One filesystem rule: `access` beneath `path`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    /// A file or a directory (the rule covers everything beneath it).
    pub path: PathBuf,
    /// What is allowed.
    pub access: Access,
}

/// Everything the credmon touches after start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    /// The credential directory (read and written).
    pub cred_dir: PathBuf,
    /// The log file (its directory gets new files: log rotation).
    pub log_file: Option<PathBuf>,
    /// The metrics file (written atomically: its directory is written).
    pub metrics_file: Option<PathBuf>,
    /// Directories only read: keytabs, CA directories, `includedir`s, HTCondor's `LOCAL_CONFIG_DIR`.
    pub read_dirs: Vec<PathBuf>,
    /// Files only read: CA bundles, Kerberos profiles, HTCondor configuration files.
    pub read_files: Vec<PathBuf>,
    /// Programs run later (`condor_config_val`): their directory, and the
    /// `lib*`/`libexec` beside a `bin`/`sbin`, are readable and executable.
    pub programs: Vec<PathBuf>,
    /// TCP ports connected to (Vault, the KDCs, condor_master, DNS, a proxy).
    pub tcp_ports: BTreeSet<u16>,
    /// Whether the credmon may create user directories for keytab robots
    /// (`ROBOT_CREDMON_PROVISION`, which needs `ROBOT_CREDMON_KEYTAB_DIR`):
    /// they are given to `condor`, mode 02700.
    pub provisions: bool,
    /// The `condor` user's uid and gid (owner of the directories provisioning makes).
    pub condor: Option<(u32, u32)>,
}

/// The confinement to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Filesystem rules (Landlock), sorted, without duplicates.
    pub rules: Vec<Rule>,
    /// Paths left out because a rule there would open too much (say `/etc`).
    pub refused: Vec<PathBuf>,
    /// TCP ports that may be connected to; every other connect and every bind is refused.
    pub tcp_ports: Vec<u16>,
    /// Capabilities kept (effective, permitted and bounding sets).
    pub caps: Vec<Capability>,
    /// Owners `fchown` may give (root, and `condor` when provisioning).
    pub owners: Vec<u32>,
    /// Groups `fchown` may give.
    pub groups: Vec<u32>,
}

/// Directories of programs and libraries, read and executed (no secrets live there).
pub const SYSTEM_EXEC: &[&str] = &["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin"];

/// System files and directories the C library, GSSAPI and DNS read: name
/// service, resolver, time zone, dynamic linker, GSS mechanisms, public CA
/// certificates, HTCondor's configuration, random numbers.
pub const SYSTEM_READ: &[&str] = &[
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/host.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/passwd",
    "/etc/group",
    "/etc/localtime",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/gss",
    "/etc/ssl/certs",
    "/etc/pki/tls/certs",
    "/etc/pki/ca-trust/extracted",
    "/etc/condor",
    "/var/lib/sss/mc",
    "/sys/devices/system/cpu",
    "/dev/urandom",
    "/dev/random",
];

/// Device files opened for reading and writing (a child's standard input).
pub const DEVICES: &[&str] = &["/dev/null"];

/// TCP ports always allowed: DNS over TCP and Kerberos (88, and 750 of older KDCs).
pub const BASE_PORTS: &[u16] = &[53, 88, 750];

/// Top-level directories a rule may never cover whole: a rule there would
/// open every secret on the host (`/etc/shadow`, home directories, other
/// daemons' state).
const TOO_BROAD: &[&str] = &[
    "/", "/etc", "/root", "/home", "/var", "/var/lib", "/run", "/proc", "/sys", "/dev", "/boot",
];

/// Whether a rule on `path` would open too much (a relative path is refused too).
pub fn too_broad(path: &Path) -> bool {
    !path.is_absolute()
        || TOO_BROAD.iter().any(|b| Path::new(b) == path)
        || path.components().any(|c| c == Component::ParentDir)
}

/// The parent directory of a file path (`None` for `/` or a bare name).
fn parent(p: &Path) -> Option<PathBuf> {
    p.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_owned)
}

/// The directories a program needs: its own, and beside a `bin`/`sbin` the
/// `lib`, `lib64` and `libexec` of the same prefix (HTCondor's layout).
pub fn program_dirs(program: &Path) -> Vec<PathBuf> {
    let Some(dir) = parent(program) else {
        return Vec::new();
    };
    let mut out = vec![dir.clone()];
    if matches!(
        dir.file_name().and_then(|n| n.to_str()),
        Some("bin" | "sbin")
    ) && let Some(prefix) = parent(&dir)
    {
        out.extend(["lib", "lib64", "libexec"].map(|l| prefix.join(l)));
    }
    out
}

/// The capabilities the credmon keeps, and why:
/// * `CAP_DAC_OVERRIDE`: the user directories are the credd's (`condor`,
///   mode 0700); reading `.top` and writing `.use` there needs it;
/// * with a keytab directory (provisioning), `CAP_CHOWN` (a new user directory is given to
///   `condor`, as the credd makes them), `CAP_FOWNER` (its mode is set after
///   that, on a directory root no longer owns) and `CAP_FSETID` (its set-group-ID
///   bit survives although root is not in group `condor`).
pub fn capabilities(provisions: bool) -> Vec<Capability> {
    let mut caps = vec![Capability::CAP_DAC_OVERRIDE];
    if provisions {
        caps.extend([
            Capability::CAP_CHOWN,
            Capability::CAP_FOWNER,
            Capability::CAP_FSETID,
        ]);
    }
    caps
}

/// The confinement for `inputs`.
pub fn plan(inputs: &Inputs) -> Plan {
    let mut rules = Vec::new();
    let mut add = |path: PathBuf, access| rules.push(Rule { path, access });
    add(inputs.cred_dir.clone(), Access::Write);
    if let Some(d) = inputs.log_file.as_deref().and_then(parent) {
        add(d, Access::Append);
    }
    if let Some(d) = inputs.metrics_file.as_deref().and_then(parent) {
        add(d, Access::Write);
    }
    for p in inputs.read_dirs.iter().chain(&inputs.read_files) {
        add(p.clone(), Access::Read);
    }
    for d in inputs.programs.iter().flat_map(|p| program_dirs(p)) {
        add(d, Access::ReadExec);
    }
    for p in SYSTEM_EXEC {
        add(PathBuf::from(p), Access::ReadExec);
    }
    for p in SYSTEM_READ {
        add(PathBuf::from(p), Access::Read);
    }
    for p in DEVICES {
        add(PathBuf::from(p), Access::Device);
    }
    let (mut rules, mut refused): (Vec<Rule>, Vec<Rule>) =
        rules.into_iter().partition(|r| !too_broad(&r.path));
    rules.sort();
    rules.dedup();
    refused.sort();
    let mut refused: Vec<PathBuf> = refused.into_iter().map(|r| r.path).collect();
    refused.dedup();
    let mut ports: BTreeSet<u16> = inputs.tcp_ports.clone();
    ports.extend(BASE_PORTS);
    ports.remove(&0);
    let condor = inputs.condor.filter(|_| inputs.provisions);
    Plan {
        rules,
        refused,
        tcp_ports: ports.into_iter().collect(),
        caps: capabilities(inputs.provisions),
        owners: [0].into_iter().chain(condor.map(|c| c.0)).collect(),
        groups: [0].into_iter().chain(condor.map(|c| c.1)).collect(),
    }
}

/// What a Kerberos profile names: files it includes, directories it
/// includes, and the TCP ports of its KDCs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Krb5Refs {
    /// `include FILE` lines.
    pub files: Vec<PathBuf>,
    /// `includedir DIR` lines.
    pub dirs: Vec<PathBuf>,
    /// Ports of `kdc`, `master_kdc` and `primary_kdc` entries (88 when not given).
    pub ports: Vec<u16>,
}

/// Parses a Kerberos profile's text (MIT's format) for [`Krb5Refs`].
pub fn krb5_refs(text: &str) -> Krb5Refs {
    let mut refs = Krb5Refs::default();
    for line in text.lines().map(str::trim) {
        if let Some(f) = line.strip_prefix("include ") {
            refs.files.push(PathBuf::from(f.trim()));
        } else if let Some(d) = line.strip_prefix("includedir ") {
            refs.dirs.push(PathBuf::from(d.trim()));
        } else if let Some((k, v)) = line.split_once('=')
            && matches!(k.trim(), "kdc" | "master_kdc" | "primary_kdc")
            && let Some(port) = kdc_port(v.trim())
        {
            refs.ports.push(port);
        }
    }
    refs
}

/// The TCP port of a KDC entry: `host`, `host:port`, `[v6]:port`,
/// `tcp/host:port`, or an MS-KKDCP `https://host[:port]/path` URL.
pub fn kdc_port(v: &str) -> Option<u16> {
    if v.starts_with("https://") {
        return url::Url::parse(v).ok()?.port_or_known_default();
    }
    let v = v
        .strip_prefix("tcp/")
        .or_else(|| v.strip_prefix("udp/"))
        .unwrap_or(v);
    let port = match v.strip_prefix('[') {
        Some(rest) => rest.split_once("]:").map(|(_, p)| p),
        None if v.matches(':').count() == 1 => v.split_once(':').map(|(_, p)| p),
        None => None,
    };
    match port {
        Some(p) => p.trim().parse().ok(),
        None if v.is_empty() => None,
        None => Some(88),
    }
}

/// Whether a file in an `includedir` is read by the Kerberos library: names
/// of letters, digits, `-` and `_` only, or ending in `.conf`.
pub fn krb5_included(name: &str) -> bool {
    (!name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        || (name.ends_with(".conf") && !name.starts_with('.'))
}

/// The files `condor_config_val -config` lists (each on its own indented line).
pub fn condor_config_sources(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter(|l| l.starts_with([' ', '\t']))
        .map(str::trim)
        .filter(|l| l.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

/// The ports of proxy URLs (`HTTPS_PROXY`, `ALL_PROXY`, ... values).
pub fn proxy_port(url: &str) -> Option<u16> {
    let url = url.trim();
    if url.is_empty() {
        return None;
    }
    let with_scheme = if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    };
    url::Url::parse(&with_scheme).ok()?.port_or_known_default()
}
