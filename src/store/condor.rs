//! Running HTCondor's tools: `condor_config_val` and `condor_store_cred`,
//! each bounded in time and stopped by pid when it hangs.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long an HTCondor tool may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// Finds `prog` in `$PATH`, then in `/usr/sbin` and `/usr/bin` (HTCondor's storer
/// puts `/usr/sbin` on the path; we look there last so a site's wrapper wins).
pub fn find_program(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(prog))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A finished tool run.
#[derive(Debug)]
pub struct ToolRun {
    /// Exit code (-1 when killed).
    pub code: i32,
    /// Standard output (empty when passed through).
    pub stdout: String,
    /// Standard error (empty when passed through).
    pub stderr: String,
}

/// Runs `prog args`, feeding `input`; with `pass_through` the output goes to our stdout.
pub fn run_tool(
    prog: &str,
    args: &[String],
    input: Option<&[u8]>,
    pass_through: bool,
) -> Result<ToolRun, String> {
    let path = find_program(prog).ok_or_else(|| {
        format!("cannot find '{prog}' in $PATH or /usr/sbin (is HTCondor installed on this host?)")
    })?;
    let out = || {
        if pass_through {
            Stdio::inherit()
        } else {
            Stdio::piped()
        }
    };
    let mut child = Command::new(&path)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(out())
        .stderr(if pass_through {
            Stdio::inherit()
        } else {
            Stdio::piped()
        })
        .spawn()
        .map_err(|e| format!("cannot run '{}': {e}", path.display()))?;
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        // A tool that exits early closes the pipe; its exit code tells why.
        let _ = stdin.write_all(data);
    }
    let mut readers = Vec::new();
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ] {
        readers.push(std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut p) = pipe {
                let _ = p.by_ref().take(1 << 20).read_to_string(&mut s);
            }
            s
        }));
    }
    let deadline = Instant::now() + TOOL_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "'{}' did not finish within {} s",
                    path.display(),
                    TOOL_TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(format!("cannot wait for '{}': {e}", path.display())),
        }
    };
    let mut texts = readers.into_iter().map(|h| h.join().unwrap_or_default());
    Ok(ToolRun {
        code: status.code().unwrap_or(-1),
        stdout: texts.next().unwrap_or_default(),
        stderr: texts.next().unwrap_or_default(),
    })
}

/// `condor_config_val KNOB`: the value, or `None` when undefined or HTCondor is absent.
pub fn config_val(knob: &str) -> Option<String> {
    match run_tool("condor_config_val", &[knob.to_owned()], None, false) {
        Ok(r) if r.code == 0 => Some(r.stdout.trim().to_owned()),
        Ok(_) => None,
        Err(e) => {
            log::debug!("{e}");
            None
        }
    }
}
