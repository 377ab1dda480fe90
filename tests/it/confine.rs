//! The credmon's confinement (`src/confine/`) seen from outside: what the
//! kernel refuses a confined worker whose own checks are bypassed (the
//! debug-build test hook `ROBOT_CREDMON_TEST_ESCAPE`: read, create, connect,
//! make a file set-user-ID), `NoNewPrivs` and the
//! capability sets of every thread in `/proc`, `--check-config`, and a kernel
//! without Landlock (emulated: a seccomp filter makes the Landlock system
//! calls fail with `ENOSYS`, as on a kernel built without it).

use crate::credmon::credd::Credd;
use crate::credmon::{Credmon, SVC, USER, setup, top};
use crate::support::TestEnv;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `CAP_DAC_OVERRIDE` alone.
const CAPS_PLAIN: u64 = 1 << 1;
/// With keytab provisioning: `CAP_CHOWN`, `CAP_DAC_OVERRIDE`, `CAP_FOWNER`, `CAP_FSETID`.
const CAPS_PROVISION: u64 = 1 | 1 << 1 | 1 << 3 | 1 << 4;

/// Starts a credmon with `knobs` and one credential for it to refresh; waits for the `.use`.
fn start_with_work(
    env: &TestEnv,
    credd: &Credd,
    knobs: &[(&str, &str)],
    vars: &[(&str, &str)],
) -> Credmon {
    let (mut cmd, log) = Credmon::command(env, credd, knobs);
    cmd.envs(vars.iter().copied());
    let cm = Credmon::spawn(cmd, log, credd);
    let (_, t) = top(env, 3600);
    credd.store_and_kick(USER, SVC, &t);
    assert!(
        credd
            .wait_for_use(USER, SVC, Duration::from_secs(5))
            .is_some(),
        "no .use; log:\n{}",
        cm.log_text()
    );
    cm
}

/// The test hook's log line.
fn escape_line(cm: &Credmon) -> String {
    assert!(
        cm.wait_log("test escape:", Duration::from_secs(5)),
        "the test hook did not run; log:\n{}",
        cm.log_text()
    );
    let log = cm.log_text();
    log.lines()
        .find(|l| l.contains("test escape:"))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn the_kernel_refuses_a_confined_worker_outside_its_tree() {
    let (env, credd) = setup();
    let ca = env.vault.ca_file().display().to_string();
    let cm = start_with_work(&env, &credd, &[], &[("ROBOT_CREDMON_TEST_ESCAPE", &ca)]);
    let line = escape_line(&cm);
    let denied = "Permission denied (os error 13)";
    assert!(
        line.contains(&format!(
            "chmod u+s {ca}: Operation not permitted (os error 1)"
        )),
        "{line}"
    );
    let escape = format!("/tmp/robot-credmon-escape-{}", cm.pid());
    assert!(
        line.contains(&format!("read /etc/shadow: {denied}")),
        "{line}"
    );
    assert!(
        line.contains(&format!("create {escape}: {denied}")),
        "{line}"
    );
    assert!(
        line.contains(&format!("connect 127.0.0.1:1: {denied}")),
        "{line}"
    );
    assert!(
        line.contains("unix stream socket: Operation not permitted (os error 1)"),
        "{line}"
    );
    assert!(!Path::new(&escape).exists());
    assert!(
        cm.log_text().contains("Landlock ABI 7 fully enforced"),
        "{}",
        cm.log_text()
    );
}

/// The control: the same hook, unconfined, is allowed everything (so the
/// test above fails when the confinement is missing).
#[test]
fn without_confinement_the_same_hook_gets_through() {
    let (env, credd) = setup();
    let ca = env.vault.ca_file().display().to_string();
    let cm = start_with_work(
        &env,
        &credd,
        &[("ROBOT_CREDMON_CONFINE", "False")],
        &[("ROBOT_CREDMON_TEST_ESCAPE", &ca)],
    );
    let line = escape_line(&cm);
    assert!(line.contains(&format!("chmod u+s {ca}: allowed")), "{line}");
    let escape = format!("/tmp/robot-credmon-escape-{}", cm.pid());
    assert!(line.contains("read /etc/shadow: allowed"), "{line}");
    assert!(
        line.contains(&format!("create {escape}: allowed")),
        "{line}"
    );
    assert!(
        line.contains("connect 127.0.0.1:1: Connection refused"),
        "{line}"
    );
    assert!(
        line.contains("unix stream socket: No such file or directory"),
        "{line}"
    );
    assert!(cm.log_text().contains("confinement off"));
    assert_eq!(status_field(cm.pid(), None, "NoNewPrivs"), "0");
}

/// A field of `/proc/<pid>[/task/<tid>]/status`.
fn status_field(pid: i32, tid: Option<&str>, field: &str) -> String {
    let path = match tid {
        Some(t) => format!("/proc/{pid}/task/{t}/status"),
        None => format!("/proc/{pid}/status"),
    };
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{path} has no {field}"))
        .trim()
        .to_owned()
}

/// Every thread of `pid`: `NoNewPrivs: 1`, exactly `caps` effective,
/// permitted and bounding, nothing inheritable or ambient. Returns how many threads.
fn assert_confined_threads(pid: i32, caps: u64) -> usize {
    let tasks: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for t in &tasks {
        let field = |f| status_field(pid, Some(t), f);
        let hex = |f| u64::from_str_radix(&field(f), 16).unwrap();
        assert_eq!(field("NoNewPrivs"), "1", "thread {t}");
        for set in ["CapEff", "CapPrm", "CapBnd"] {
            assert_eq!(hex(set), caps, "thread {t} {set}");
        }
        assert_eq!(hex("CapInh"), 0, "thread {t}");
        assert_eq!(hex("CapAmb"), 0, "thread {t}");
    }
    tasks.len()
}

#[test]
fn every_thread_has_no_new_privs_and_only_the_needed_capabilities() {
    let (env, credd) = setup();
    let cm = start_with_work(&env, &credd, &[], &[]);
    let threads = assert_confined_threads(cm.pid(), CAPS_PLAIN);
    assert!(
        threads > 2,
        "workers and the signal thread exist ({threads})"
    );
    assert!(
        cm.log_text().contains(
            "no_new_privs set; seccomp metadata filter on; capabilities CAP_DAC_OVERRIDE"
        ),
        "{}",
        cm.log_text()
    );
}

#[test]
fn keytab_provisioning_keeps_chown_fowner_and_fsetid() {
    let (env, credd) = setup();
    let kdir = crate::credmon::keytab_dir(&env, 0o600);
    std::fs::rename(
        kdir.join(format!("{USER}.keytab")),
        kdir.join("robot.keytab"),
    )
    .unwrap();
    let server = format!("localhost:{}", env.vault.port());
    let cm = Credmon::start(
        &env,
        &credd,
        &[
            ("ROBOT_CREDMON_KEYTAB_DIR", kdir.to_str().unwrap()),
            ("ROBOT_CREDMON_PROVISION", SVC),
            ("ROBOT_CREDMON_VAULT_SERVER", &server),
        ],
    );
    assert!(
        credd
            .wait_for_use("robot", SVC, Duration::from_secs(5))
            .is_some(),
        "no provisioned .use; log:\n{}",
        cm.log_text()
    );
    assert_confined_threads(cm.pid(), CAPS_PROVISION);
    let dir = std::fs::metadata(credd.user_dir("robot")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(dir.mode() & 0o7777, 0o2700, "setgid kept (CAP_FSETID)");
}

/// `credmon --check-config` with `knobs`, run through `wrap` (e.g. a seccomp filter).
fn check_config(env: &TestEnv, credd: &Credd, knobs: &[(&str, &str)], wrap: bool) -> String {
    let (mut cmd, _) = Credmon::command(env, credd, knobs);
    cmd.arg("--check-config");
    if wrap {
        without_landlock(&mut cmd);
    }
    let out = cmd.stdout(std::process::Stdio::piped()).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn check_config_says_what_will_be_enabled() {
    let (env, credd) = setup();
    let text = check_config(&env, &credd, &[], false);
    assert!(text.contains("ROBOT_CREDMON_CONFINE = true"), "{text}");
    assert!(
        text.contains("confinement: no_new_privs; seccomp metadata filter; capabilities CAP_DAC_OVERRIDE; Landlock ABI 7: filesystem rules"),
        "{text}"
    );
    let port = env.vault.port().to_string();
    let tcp = text
        .lines()
        .find(|l| l.starts_with("confinement TCP connect:"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(tcp.split(' ').any(|p| p == port), "{tcp}");
    let write = format!("confinement write: {}", credd.dir.display());
    assert!(text.contains(&write), "{text}");
    let off = check_config(&env, &credd, &[("ROBOT_CREDMON_CONFINE", "False")], false);
    assert!(off.contains("confinement: off"), "{off}");
    let none = check_config(&env, &credd, &[], true);
    assert!(none.contains("Landlock unavailable (no Landlock"), "{none}");
}

/// Makes the Landlock system calls of `cmd` fail with `ENOSYS`, as on a kernel
/// without Landlock: a seccomp filter installed just before `exec`.
fn without_landlock(cmd: &mut Command) {
    use nix::libc;
    // SAFETY: between fork and exec only async-signal-safe system calls
    // (prctl) run, on memory built before the fork.
    let filter: Vec<libc::sock_filter> = {
        let stmt = |code: u16, k: u32| libc::sock_filter {
            code,
            jt: 0,
            jf: 0,
            k,
        };
        let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt,
            jf,
            k,
        };
        let ld = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
        let ret = (libc::BPF_RET | libc::BPF_K) as u16;
        let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        vec![
            stmt(ld, 0), // seccomp_data.nr
            jeq(libc::SYS_landlock_create_ruleset as u32, 3, 0),
            jeq(libc::SYS_landlock_add_rule as u32, 2, 0),
            jeq(libc::SYS_landlock_restrict_self as u32, 1, 0),
            stmt(ret, libc::SECCOMP_RET_ALLOW),
            stmt(ret, enosys),
        ]
    };
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn without_landlock_the_credmon_runs_and_says_so_once() {
    let (env, credd) = setup();
    let (mut cmd, log) = Credmon::command(&env, &credd, &[]);
    without_landlock(&mut cmd);
    let cm = Credmon::spawn(cmd, log, &credd);
    let (_, t) = top(&env, 3600);
    credd.store_and_kick(USER, SVC, &t);
    assert!(
        credd
            .wait_for_use(USER, SVC, Duration::from_secs(5))
            .is_some(),
        "no .use without Landlock; log:\n{}",
        cm.log_text()
    );
    let log = cm.log_text();
    assert_eq!(
        log.matches("confinement incomplete on this kernel (no Landlock")
            .count(),
        1,
        "{log}"
    );
    assert!(
        log.contains("confinement: Landlock unavailable; no_new_privs set"),
        "{log}"
    );
    // The other layers still hold.
    assert_confined_threads(cm.pid(), CAPS_PLAIN);
}

/// The seccomp filter itself: a program run through it sees no Landlock.
#[test]
fn the_no_landlock_filter_hides_landlock() {
    let mut cmd = Command::new("python3");
    cmd.args([
        "-c",
        "import ctypes,os;l=ctypes.CDLL(None,use_errno=True);r=l.syscall(444,None,0,1);print(r,ctypes.get_errno())",
    ]);
    let plain = String::from_utf8(cmd.output().unwrap().stdout).unwrap();
    assert!(
        !plain.starts_with("-1"),
        "this kernel has Landlock: {plain}"
    );
    without_landlock(&mut cmd);
    let hidden = String::from_utf8(cmd.output().unwrap().stdout).unwrap();
    assert_eq!(hidden.trim(), format!("-1 {}", nix::libc::ENOSYS));
}

/// A `condor_config_val` that cannot read the configuration after a SIGHUP
/// (say a new file the confined credmon may not open) keeps the
/// configuration in use, instead of one from the environment alone.
#[test]
fn a_failing_condor_config_val_after_sighup_keeps_the_configuration() {
    use std::os::unix::fs::PermissionsExt;
    let (env, credd) = setup();
    let bin = env.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let conf = env.path().join("condor_config");
    std::fs::write(&conf, "VAULT_CREDMON_PROVIDER_NAMES = dune\n").unwrap();
    let broken = env.path().join("broken");
    let script = bin.join("condor_config_val");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nc='{}'\n[ -e '{}' ] && {{ echo 'cannot read the configuration' >&2; exit 1; }}\n\
             [ \"$1\" = -config ] && exec printf '\\t%s\\n' \"$c\"\n[ \"$1\" = -dump ] && exec cat \"$c\"\nexit 1\n",
            conf.display(),
            broken.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (mut cmd, log) = Credmon::command(&env, &credd, &[]);
    cmd.env("PATH", format!("{}:/usr/bin:/bin", bin.display()));
    let cm = Credmon::spawn(cmd, log, &credd);
    assert!(Credd::wait_for_file(
        &credd.dir.join("CREDMON_COMPLETE"),
        Duration::from_secs(3)
    ));
    std::fs::write(&broken, "").unwrap();
    cm.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(
        cm.wait_log("keeping the old one", Duration::from_secs(5)),
        "{}",
        cm.log_text()
    );
    let log = cm.log_text();
    assert!(
        log.contains("condor_config_val -dump failed: cannot read the configuration"),
        "{log}"
    );
    assert!(!log.contains("configuration changed"), "{log}");
}

/// Under a unit whose `CapabilityBoundingSet` lacks the provisioning
/// capabilities (`robot-credmon-credmon.service` without its drop-in), the
/// credmon runs with what it has and says what is missing.
#[test]
fn missing_capabilities_are_named() {
    let (env, credd) = setup();
    let kdir = crate::credmon::keytab_dir(&env, 0o600);
    let (mut cmd, log) = Credmon::command(&env, &credd, &crate::credmon::keytab_knob(&kdir));
    // SAFETY: only prctl between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // CAP_CHOWN (0), CAP_FSETID (4).
            for cap in [0, 4] {
                if nix::libc::prctl(nix::libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let cm = Credmon::spawn(cmd, log, &credd);
    assert!(
        cm.wait_log(
            "CAP_CHOWN, CAP_FSETID not available",
            Duration::from_secs(3)
        ),
        "{}",
        cm.log_text()
    );
    assert_confined_threads(cm.pid(), CAPS_PLAIN | 1 << 3);
}
