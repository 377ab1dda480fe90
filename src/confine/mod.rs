//! Least privilege for the credmon, which condor_master starts as root: after
//! start-up (configuration read, log, instance lock open) and before any
//! other thread starts, [`apply`] confines the process with what Linux offers:
//!
//! * `PR_SET_NO_NEW_PRIVS`: no program it runs gains privileges (set-user-ID,
//!   file capabilities);
//! * a Landlock ruleset (kernel >= 5.13; the `landlock` crate) from a
//!   [`Plan`]: writes only beneath the credential directory, the log
//!   directory (append and create) and the metrics file's directory; reads
//!   of the keytab and CA paths, the Kerberos profiles, HTCondor's
//!   configuration and the system files the C library needs; execution only
//!   of system and HTCondor programs; with Landlock ABI 4 TCP connections
//!   only to the planned ports and no listening; with ABI 6 no signals to
//!   processes outside the sandbox;
//! * capabilities reduced to [`plan::capabilities`] in the effective,
//!   permitted and bounding sets (the bounding set matters: root's children,
//!   such as `condor_config_val`, get every capability left in it), the
//!   inheritable and ambient sets emptied;
//! * a seccomp filter ([`seccomp`]) for what Landlock does not govern:
//!   `chmod`, `chown` and extended attributes of files the process can open,
//!   and UNIX stream sockets (systemd, D-Bus).
//!
//! Every layer applies per thread: every thread started later inherits them,
//! and [`apply`] reports when other threads already exist. Where the kernel
//! lacks a feature the rest still applies and [`Report`] says what was left
//! out (logged once).

pub mod plan;
pub mod seccomp;

pub use plan::{Access, Inputs, Plan, Rule};

use caps::{CapSet, Capability, CapsHashSet};
use landlock::{
    ABI, Access as _, AccessFs, AccessNet, BitFlags, NetPort, PathBeneath, PathFd,
    RestrictionStatus, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};
use std::path::Path;

/// The Landlock ABI whose rights the ruleset asks for (6: filesystem, TCP, scopes).
const TARGET_ABI: ABI = ABI::V6;

/// The Landlock ABI of the running kernel (`None`: no Landlock, or disabled at boot).
pub fn kernel_abi() -> Option<i32> {
    // SAFETY: landlock_create_ruleset with a null attribute, size 0 and the
    // VERSION flag only returns a number; it reads and writes no memory.
    let v = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    (v > 0).then(|| i32::try_from(v).unwrap_or(i32::MAX))
}

/// What Landlock enforces at ABI `abi` for this plan, in words (empty when nothing).
pub fn landlock_features(abi: Option<i32>) -> Vec<&'static str> {
    let abi = abi.unwrap_or(0);
    [
        (1, "filesystem rules"),
        (2, "cross-directory renames"),
        (3, "truncation"),
        (4, "TCP connect and bind rules"),
        (5, "device ioctls"),
        (6, "signal scope"),
    ]
    .into_iter()
    .filter(|(v, _)| abi >= *v)
    .map(|(_, f)| f)
    .collect()
}

/// What [`apply`] achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The kernel's Landlock ABI, if any.
    pub abi: Option<i32>,
    /// Landlock's result: fully, partly or not enforced, or why it failed.
    pub landlock: Result<String, String>,
    /// `PR_SET_NO_NEW_PRIVS` is set.
    pub no_new_privs: bool,
    /// The seccomp metadata filter, or why it is missing.
    pub seccomp: Result<(), String>,
    /// The capabilities kept, or why they could not be reduced.
    pub caps: Result<Vec<Capability>, String>,
    /// Threads that existed before (1 when called in time).
    pub threads: usize,
}

impl Report {
    /// Whether every layer was applied in full.
    pub fn complete(&self) -> bool {
        self.landlock.as_deref() == Ok("fully enforced")
            && self.no_new_privs
            && self.seccomp.is_ok()
            && self.caps.is_ok()
            && self.threads == 1
    }

    /// Logs what was enabled (info) and, once, what could not be (warning).
    pub fn log(&self, plan: &Plan) {
        let caps = match &self.caps {
            Ok(c) => cap_names(c),
            Err(e) => format!("not reduced ({e})"),
        };
        let landlock = match &self.landlock {
            _ if self.abi.is_none() => "Landlock unavailable".to_owned(),
            Ok(s) => format!(
                "Landlock ABI {} {s} ({} rules; TCP connect to {})",
                self.abi.unwrap_or(0),
                plan.rules.len(),
                ports(&plan.tcp_ports)
            ),
            Err(e) => format!("Landlock not enforced: {e}"),
        };
        log::info!(
            "confinement: {landlock}; no_new_privs {}; seccomp metadata filter {}; capabilities {caps}",
            if self.no_new_privs { "set" } else { "NOT set" },
            match &self.seccomp {
                Ok(()) => "on".to_owned(),
                Err(e) => format!("off ({e})"),
            }
        );
        self.warn_missing_caps(plan);
        for p in &plan.refused {
            log::warn!(
                "confinement: no rule for {}: it would open too much; move that file to a directory of its own",
                p.display()
            );
        }
        if self.threads != 1 {
            log::error!(
                "confinement: {} threads existed before it: only the calling thread and its later threads are confined (a bug: please report it)",
                self.threads
            );
        }
        if !self.complete() && self.threads == 1 {
            log::warn!(
                "confinement incomplete on this kernel ({}): the credmon runs, relying on its own checks for what is missing; set ROBOT_CREDMON_CONFINE = False only to debug",
                kernel_words(self.abi)
            );
        }
    }
}

impl Report {
    /// Warns when capabilities the plan keeps were not there to keep.
    fn warn_missing_caps(&self, plan: &Plan) {
        if let Ok(kept) = &self.caps {
            let missing: Vec<Capability> = plan
                .caps
                .iter()
                .filter(|c| !kept.contains(c))
                .copied()
                .collect();
            if !missing.is_empty() {
                log::warn!(
                    "confinement: {} not available (not root, or left out of a systemd unit's CapabilityBoundingSet): {}",
                    cap_names(&missing),
                    "CAP_DAC_OVERRIDE opens condor's user directories; CAP_CHOWN, CAP_FOWNER and CAP_FSETID give the directories ROBOT_CREDMON_PROVISION makes to condor (docs/security.md)"
                );
            }
        }
    }
}

fn kernel_words(abi: Option<i32>) -> String {
    match abi {
        None => {
            "no Landlock: kernel older than 5.13, or landlock missing from the lsm= boot parameter"
                .into()
        }
        Some(v) if v < 4 => format!("Landlock ABI {v}: no TCP rules before Linux 6.7"),
        Some(v) => format!("Landlock ABI {v}"),
    }
}

/// `CAP_A, CAP_B` (or `none`).
pub fn cap_names(caps: &[Capability]) -> String {
    if caps.is_empty() {
        return "none".into();
    }
    caps.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn ports(p: &[u16]) -> String {
    p.iter().map(u16::to_string).collect::<Vec<_>>().join(" ")
}

/// Threads of this process now.
fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

/// Confines this process (and every thread and program it starts later) to `plan`.
pub fn apply(plan: &Plan) -> Report {
    let threads = thread_count();
    let no_new_privs = nix::sys::prctl::set_no_new_privs().is_ok();
    let seccomp = seccomp::apply(&plan.owners, &plan.groups);
    let landlock = landlock(plan)
        .map(|s| {
            match s.ruleset {
                RulesetStatus::FullyEnforced => "fully enforced",
                RulesetStatus::PartiallyEnforced => "partly enforced",
                RulesetStatus::NotEnforced => "not enforced",
            }
            .to_owned()
        })
        .map_err(|e| e.to_string());
    Report {
        abi: kernel_abi(),
        landlock,
        no_new_privs,
        seccomp,
        caps: reduce_caps(&plan.caps),
        threads,
    }
}

/// The Landlock rights of an [`Access`].
fn rights(access: Access) -> BitFlags<AccessFs> {
    use AccessFs as A;
    match access {
        Access::Read => A::ReadFile | A::ReadDir,
        Access::ReadExec => A::ReadFile | A::ReadDir | A::Execute,
        Access::Append => A::WriteFile | A::MakeReg,
        Access::Write => {
            A::ReadFile
                | A::ReadDir
                | A::WriteFile
                | A::Truncate
                | A::MakeReg
                | A::MakeDir
                | A::RemoveFile
                | A::Refer
        }
        Access::Device => A::ReadFile | A::WriteFile,
    }
}

/// Builds and enforces the Landlock ruleset (best effort: what the kernel supports).
fn landlock(plan: &Plan) -> Result<RestrictionStatus, landlock::RulesetError> {
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(TARGET_ABI))?
        .handle_access(AccessNet::from_all(TARGET_ABI))?
        .scope(Scope::Signal)?
        .create()?;
    for rule in &plan.rules {
        // A path that does not exist on this host needs no rule.
        let Ok(fd) = PathFd::new(&rule.path) else {
            log::debug!("confinement: {} does not exist", rule.path.display());
            continue;
        };
        let mut access = rights(rule.access);
        if !is_dir(&rule.path) {
            access &= AccessFs::from_file(TARGET_ABI);
        }
        ruleset = ruleset.add_rule(PathBeneath::new(fd, access))?;
    }
    for port in &plan.tcp_ports {
        ruleset = ruleset.add_rule(NetPort::new(*port, AccessNet::ConnectTcp))?;
    }
    ruleset.restrict_self()
}

fn is_dir(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_dir())
}

/// Keeps only `keep` (of what is permitted now) in the effective, permitted
/// and bounding sets; empties the inheritable and ambient sets.
fn reduce_caps(keep: &[Capability]) -> Result<Vec<Capability>, String> {
    fn e(what: &'static str) -> impl Fn(caps::errors::CapsError) -> String {
        move |err| format!("{what}: {err}")
    }
    let permitted = caps::read(None, CapSet::Permitted).map_err(e("reading"))?;
    let keep: CapsHashSet = keep
        .iter()
        .filter(|c| permitted.contains(c))
        .copied()
        .collect();
    if caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP).unwrap_or(false) {
        for cap in caps::runtime::thread_all_supported() {
            if !keep.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap).map_err(e("bounding set"))?;
            }
        }
    }
    caps::clear(None, CapSet::Ambient).map_err(e("ambient set"))?;
    caps::clear(None, CapSet::Inheritable).map_err(e("inheritable set"))?;
    caps::set(None, CapSet::Effective, &keep).map_err(e("effective set"))?;
    caps::set(None, CapSet::Permitted, &keep).map_err(e("permitted set"))?;
    let mut kept: Vec<Capability> = keep.into_iter().collect();
    kept.sort_by_key(|c| c.index());
    Ok(kept)
}

/// `--check-config`: what confinement will be enabled on this kernel.
pub fn describe(plan: &Plan, abi: Option<i32>) -> String {
    let features = landlock_features(abi);
    let mut lines = vec![format!(
        "confinement: no_new_privs; seccomp metadata filter; capabilities {}; Landlock {}",
        cap_names(&plan.caps),
        if features.is_empty() {
            format!("unavailable ({})", kernel_words(abi))
        } else {
            format!("ABI {}: {}", abi.unwrap_or(0), features.join(", "))
        }
    )];
    if abi.unwrap_or(0) >= 4 {
        lines.push(format!(
            "confinement TCP connect: {}",
            ports(&plan.tcp_ports)
        ));
    }
    for (access, name) in [
        (Access::Write, "write"),
        (Access::Append, "append"),
        (Access::Read, "read"),
        (Access::ReadExec, "read+exec"),
        (Access::Device, "device"),
    ] {
        let paths: Vec<String> = plan
            .rules
            .iter()
            .filter(|r| r.access == access && r.path.exists())
            .map(|r| r.path.display().to_string())
            .collect();
        lines.push(format!("confinement {name}: {}", paths.join(", ")));
    }
    for p in &plan.refused {
        lines.push(format!("confinement refused (too broad): {}", p.display()));
    }
    lines.push(String::new());
    lines.join("\n")
}

#[cfg(debug_assertions)]
static ESCAPE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Arms the test hook [`test_escape`] with `value`, a file the hook tries to
/// make set-user-ID (debug builds only; a release build ignores it and has
/// no hook at all).
pub fn arm_test_escape(value: Option<String>) {
    #[cfg(debug_assertions)]
    if let Ok(mut e) = ESCAPE.lock() {
        *e = value;
    }
    #[cfg(not(debug_assertions))]
    let _ = value;
}

/// The test hook (debug builds only, once, when armed): the calling worker,
/// with plain system calls and none of our own checks in the way, opens
/// `/etc/shadow`, creates `/tmp/robot-credmon-escape-<pid>`, connects to TCP
/// port 1 on loopback and to a UNIX stream socket, adds the set-user-ID bit
/// to the armed file (put back at once if that worked), and logs what the
/// kernel answered. The
/// integration tests read that line.
pub fn test_escape() {
    #[cfg(debug_assertions)]
    if let Some(file) = ESCAPE.lock().ok().and_then(|mut e| e.take()) {
        escape(&file);
    }
}

#[cfg(debug_assertions)]
fn escape(file: &str) {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let outcome = |r: std::io::Result<()>| match r {
        Ok(()) => "allowed".to_owned(),
        Err(e) => e.to_string(),
    };
    let read = outcome(std::fs::File::open("/etc/shadow").map(drop));
    let path = format!("/tmp/robot-credmon-escape-{}", std::process::id());
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path);
    if created.is_ok() {
        let _ = std::fs::remove_file(&path);
    }
    // Port 1 (tcpmux) has no listener: refused unconfined, EACCES confined.
    let connect = outcome(std::net::TcpStream::connect(("127.0.0.1", 1)).map(drop));
    let unix = outcome(
        std::os::unix::net::UnixStream::connect("/run/robot-credmon-escape.sock").map(drop),
    );
    let setuid = outcome(std::fs::File::open(file).and_then(|f| {
        let mode = f.metadata()?.permissions().mode() & 0o7777;
        f.set_permissions(std::fs::Permissions::from_mode(mode | 0o4000))?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))
    }));
    log::warn!(
        "test escape: read /etc/shadow: {read}; create {path}: {}; connect 127.0.0.1:1: {connect}; unix stream socket: {unix}; chmod u+s {file}: {setuid}",
        outcome(created.map(drop))
    );
}

#[cfg(test)]
mod tests;
