//! `test-vault DIR [options]`: a throwaway MIT KDC plus the in-process test Vault from
//! `tests/support`, for demos and benchmarks.
//!
//! Prints shell `export` lines (also written to `DIR/env.sh`; `VAULT_PID` comes last, so
//! a caller polling for it sees a complete file), then serves until SIGTERM/SIGINT, EOF on
//! stdin (only when stdin is a pipe or socket), or `--serve-seconds` (default 600).
//!
//! ```sh
//! target/debug/examples/test-vault /tmp/tv >/tmp/tv.env 2>/tmp/tv.log &
//! until grep -q VAULT_PID /tmp/tv.env; do sleep 0.05; done; . /tmp/tv.env
//! ```
//!
//! Options: `--serve-seconds N`, `--jwt-lifetime SECS` (10800), `--login-lease SECS`
//! (2419200), `--credentials N` (also register `bench<i>/host.example` credentials with
//! provisioned Vault tokens, listed in `DIR/credentials.tsv` as `credkey<TAB>url<TAB>token`).

// A benchmark and a demo server: real programs in real time.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

use support::{Kdc, TestVault, VaultConfig};

const ISSUER: &str = "igwn";
const ROLE: &str = "robot";
const ROBOT: &str = "robot/host.example";

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

struct Args {
    dir: PathBuf,
    serve: Duration,
    jwt_lifetime: u64,
    login_lease: u64,
    credentials: usize,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("test-vault: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    install_signal_handlers()?;
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| format!("could not create '{}': {e}", args.dir.display()))?;
    let dir = args
        .dir
        .canonicalize()
        .map_err(|e| format!("bad dir '{}': {e}", args.dir.display()))?;

    let t0 = Instant::now();
    let kdc = Kdc::start(&dir.join("kdc"), &[ROBOT], &[])?;
    let kdc_ms = t0.elapsed().as_millis();
    let mut cfg = VaultConfig::for_kdc(&dir.join("vault"), &kdc);
    cfg.mounts = vec![(ISSUER.to_string(), ROLE.to_string())];
    cfg.jwt_lifetime = args.jwt_lifetime;
    cfg.login_lease = args.login_lease;
    let vault = TestVault::start(cfg)?;
    vault.add_credential(ISSUER, ROBOT, ROLE);
    if args.credentials > 0 {
        write_credentials(
            &vault,
            &dir.join("credentials.tsv"),
            args.credentials,
            args.login_lease,
        )?;
    }
    eprintln!(
        "test-vault: KDC pid {} on 127.0.0.1:{} ({kdc_ms} ms), Vault {} (ready after {} ms)",
        kdc.pid(),
        kdc.port(),
        vault.url(),
        t0.elapsed().as_millis()
    );

    let exports = exports(&kdc, &vault, &dir, args.credentials > 0);
    write_private(&dir.join("env.sh"), &exports)?;
    let mut out = std::io::stdout().lock();
    out.write_all(exports.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))?;
    drop(out);

    watch_stdin();
    let reason = wait(args.serve);
    eprintln!(
        "test-vault: stopping ({reason}); {} requests, {} Kerberos logins, {} issuer refreshes, {} connections",
        vault.requests().len(),
        vault.logins(),
        vault.issuer_refreshes(),
        vault.connections()
    );
    drop(vault);
    drop(kdc);
    Ok(())
}

fn parse_args() -> Result<Args, String> {
    let usage = "usage: test-vault DIR [--serve-seconds N] [--jwt-lifetime S] [--login-lease S] [--credentials N]";
    let mut dir = None;
    let mut a = Args {
        dir: PathBuf::new(),
        serve: Duration::from_secs(600),
        jwt_lifetime: 10_800,
        login_lease: 2_419_200,
        credentials: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            let v = it
                .next()
                .ok_or_else(|| format!("{name} needs a value\n{usage}"))?;
            v.parse()
                .map_err(|_| format!("{name}: not a number: '{v}'"))
        };
        match arg.as_str() {
            "--serve-seconds" => a.serve = Duration::from_secs(num("--serve-seconds")?),
            "--jwt-lifetime" => a.jwt_lifetime = num("--jwt-lifetime")?,
            "--login-lease" => a.login_lease = num("--login-lease")?,
            "--credentials" => {
                a.credentials = usize::try_from(num("--credentials")?).map_err(|e| e.to_string())?
            }
            "-h" | "--help" => return Err(usage.to_string()),
            s if s.starts_with('-') => return Err(format!("unknown option '{s}'\n{usage}")),
            s if dir.is_none() => dir = Some(PathBuf::from(s)),
            s => return Err(format!("unexpected argument '{s}'\n{usage}")),
        }
    }
    a.dir = dir.ok_or_else(|| usage.to_string())?;
    Ok(a)
}

fn exports(kdc: &Kdc, vault: &TestVault, dir: &Path, credentials: bool) -> String {
    let mut vars = vec![
        ("KRB5_CONFIG", kdc.krb5_conf().display().to_string()),
        ("KRB5_KDC_PROFILE", kdc.kdc_conf().display().to_string()),
        ("ROBOT_PRINCIPAL", kdc.principal(ROBOT)),
        (
            "ROBOT_KEYTAB",
            kdc.client_keytab(ROBOT).display().to_string(),
        ),
        ("VAULT_URL", vault.url()),
        ("VAULT_CAFILE", vault.ca_file().display().to_string()),
        ("VAULT_ISSUER", ISSUER.to_string()),
        ("VAULT_ROLE", ROLE.to_string()),
        ("VAULT_CREDS_URL", vault.creds_url(ISSUER, ROBOT, ROLE)),
        ("KDC_PID", kdc.pid().to_string()),
    ];
    if credentials {
        vars.push((
            "VAULT_CREDENTIALS",
            dir.join("credentials.tsv").display().to_string(),
        ));
    }
    vars.push(("VAULT_PID", std::process::id().to_string()));
    vars.iter()
        .map(|(k, v)| format!("export {k}='{}'\n", v.replace('\'', r"'\''")))
        .collect()
}

fn write_credentials(vault: &TestVault, path: &Path, n: usize, ttl: u64) -> Result<(), String> {
    let mut text = String::with_capacity(n * 120);
    for i in 0..n {
        let credkey = format!("bench{i}/host.example");
        vault.add_credential(ISSUER, &credkey, ROLE);
        let token = vault.provision_token(ISSUER, ROLE, &credkey, ttl);
        text += &format!(
            "{credkey}\t{}\t{token}\n",
            vault.creds_url(ISSUER, &credkey, ROLE)
        );
    }
    write_private(path, &text)
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("could not write '{}': {e}", path.display()))
}

fn install_signal_handlers() -> Result<(), String> {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(sig, &action) }.map_err(|e| format!("sigaction {sig}: {e}"))?;
    }
    Ok(())
}

/// Stops on EOF of stdin, but only when stdin is a pipe or socket the caller controls
/// (a terminal or /dev/null would otherwise stop it at once or never).
fn watch_stdin() {
    let stdin = std::io::stdin();
    let Ok(meta) = std::fs::metadata("/proc/self/fd/0") else {
        return;
    };
    if !(meta.file_type().is_fifo() || meta.file_type().is_socket()) {
        return;
    }
    let _ = std::thread::Builder::new()
        .name("stdin-eof".into())
        .spawn(move || {
            let mut buf = [0u8; 4096];
            let mut lock = stdin.lock();
            loop {
                match lock.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            STOP.store(true, Ordering::SeqCst);
        });
}

fn wait(limit: Duration) -> &'static str {
    let deadline = Instant::now() + limit;
    loop {
        if STOP.load(Ordering::SeqCst) {
            return "signal or stdin EOF";
        }
        if Instant::now() >= deadline {
            return "--serve-seconds elapsed";
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
