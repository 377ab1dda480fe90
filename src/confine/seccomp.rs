//! The gap Landlock leaves: it does not govern metadata changes (`chmod`,
//! `chown`, extended attributes and ACLs). A process running as uid 0 owns
//! most system files and may change their mode without any capability, so a
//! hijacked credmon could make a root-owned program it can read set-user-ID
//! or world-writable. This seccomp filter (the `seccompiler` crate) answers
//! `EPERM` to:
//!
//! * `chmod`, `fchmodat`, `fchmodat2`, `chown`, `lchown`, `fchownat`: the
//!   credmon changes modes and owners only through descriptors it opened;
//! * `fchmod` to a mode that is set-user-ID, group- or world-writable, or
//!   set-group-ID and executable by group or others (the credmon's modes are
//!   0400, 0600, 0644 and the directories' 02700);
//! * `fchown` to an owner or group other than root or `condor`;
//! * every `setxattr`/`removexattr` call (ACLs, file capabilities);
//! * `socket(AF_UNIX)` of stream and seqpacket sockets: as root a process may
//!   ask systemd (`/run/systemd/private`), D-Bus or udev to do anything, and
//!   Landlock governs connecting to named UNIX sockets only from ABI 9 on.
//!   The credmon needs none after start-up (`sd_notify` is a datagram; the
//!   `condor` user is looked up before; without nscd the C library resolves
//!   names itself).
//!
//! Every other system call is allowed: an allow-list of what the C library,
//! GSSAPI and `condor_config_val` call would be long and brittle.

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition,
    SeccompFilter, SeccompRule,
};
use std::collections::BTreeMap;

/// Mode bits `fchmod` may not set together (each entry: mask, all of it set).
pub const FORBIDDEN_MODES: &[u32] = &[0o4000, 0o020, 0o002, 0o2010, 0o2001];

/// Calls refused whatever their arguments.
const ALWAYS: &[nix::libc::c_long] = &[
    nix::libc::SYS_chmod,
    nix::libc::SYS_fchmodat,
    nix::libc::SYS_fchmodat2,
    nix::libc::SYS_chown,
    nix::libc::SYS_lchown,
    nix::libc::SYS_fchownat,
    nix::libc::SYS_setxattr,
    nix::libc::SYS_lsetxattr,
    nix::libc::SYS_fsetxattr,
    nix::libc::SYS_removexattr,
    nix::libc::SYS_lremovexattr,
    nix::libc::SYS_fremovexattr,
];

fn cond(arg: u8, op: Op, value: u64) -> Result<SeccompCondition, seccompiler::BackendError> {
    SeccompCondition::new(arg, Len::Dword, op, value)
}

/// Rule matching when argument `arg` is none of `allowed`.
fn none_of(arg: u8, allowed: &[u32]) -> Result<SeccompRule, seccompiler::BackendError> {
    let conds = allowed
        .iter()
        .map(|v| cond(arg, Op::Ne, u64::from(*v)))
        .collect::<Result<_, _>>()?;
    SeccompRule::new(conds)
}

/// The filter, with `owners` the uids and `groups` the gids `fchown` may give.
pub fn program(owners: &[u32], groups: &[u32]) -> Result<BpfProgram, seccompiler::Error> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        ALWAYS.iter().map(|s| (*s, Vec::new())).collect();
    let modes = FORBIDDEN_MODES
        .iter()
        .map(|m| SeccompRule::new(vec![cond(1, Op::MaskedEq(u64::from(*m)), u64::from(*m))?]))
        .collect::<Result<_, _>>()?;
    rules.insert(nix::libc::SYS_fchmod, modes);
    let keep = u32::MAX; // -1: unchanged
    let uids: Vec<u32> = owners.iter().copied().chain([keep]).collect();
    let gids: Vec<u32> = groups.iter().copied().chain([keep]).collect();
    rules.insert(
        nix::libc::SYS_fchown,
        vec![none_of(1, &uids)?, none_of(2, &gids)?],
    );
    let unix = |kind: i32| -> Result<SeccompRule, seccompiler::BackendError> {
        SeccompRule::new(vec![
            cond(0, Op::Eq, nix::libc::AF_UNIX as u64)?,
            cond(1, Op::MaskedEq(0xf), kind as u64)?,
        ])
    };
    rules.insert(
        nix::libc::SYS_socket,
        vec![
            unix(nix::libc::SOCK_STREAM)?,
            unix(nix::libc::SOCK_SEQPACKET)?,
        ],
    );
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(nix::libc::EPERM as u32),
        std::env::consts::ARCH.try_into()?,
    )?;
    Ok(filter.try_into()?)
}

/// Installs the filter on the calling thread (and the threads and programs it starts).
pub fn apply(owners: &[u32], groups: &[u32]) -> Result<(), String> {
    let prog = program(owners, groups).map_err(|e| e.to_string())?;
    seccompiler::apply_filter(&prog).map_err(|e| e.to_string())
}
