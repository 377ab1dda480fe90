//! GSS-API helpers: the Vault's acceptor credential, and Negotiate tokens made in a child
//! process.
//!
//! libkrb5 reads `KRB5_CONFIG` from the process environment, and changing the environment of
//! a multi-threaded test process is racy (several tests run KDCs with different ports at once).
//! The acceptor does not need it: it only decrypts with an explicit keytab from a credential
//! store. The initiator does need it to find the KDC, so [`negotiate_headers`] runs the
//! initiator in a child: the current test binary re-run with the filter `gss_token_child`
//! and `--ignored`, with the KDC's environment set on that `Command` only. This works from
//! any test binary that includes this support module; it does not work from examples.

use std::ffi::CString;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::ptr;
use std::time::Duration;

use libgssapi::credential::Cred;
use libgssapi_sys as sys;

use super::kdc::Kdc;

/// GSS mechanism of a client token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mech {
    /// Raw Kerberos 5 token (what htgettoken 2.x sends).
    Krb5,
    /// SPNEGO-wrapped token (what htgettoken 1.x and browsers send).
    Spnego,
}

impl Mech {
    fn as_str(self) -> &'static str {
        match self {
            Mech::Krb5 => "krb5",
            Mech::Spnego => "spnego",
        }
    }
}

const CHILD_TIMEOUT: Duration = Duration::from_secs(30);

/// `gss_acquire_cred_from` with an explicit credential store.
///
/// Initiator: `[("client_keytab", kt), ("ccache", "MEMORY:x")]`, `usage = GSS_C_INITIATE`.
/// Acceptor: `[("keytab", kt), ("rcache", "file2:/path")]`, `usage = GSS_C_ACCEPT`.
pub fn acquire_from(store: &[(&str, &str)], usage: u32) -> Result<Cred, String> {
    let pairs: Vec<(CString, CString)> = store
        .iter()
        .map(|(k, v)| Ok((CString::new(*k)?, CString::new(*v)?)))
        .collect::<Result<_, std::ffi::NulError>>()
        .map_err(|e| format!("NUL in credential store: {e}"))?;
    let mut elements: Vec<sys::gss_key_value_element_desc> = pairs
        .iter()
        .map(|(k, v)| sys::gss_key_value_element_desc {
            key: k.as_ptr(),
            value: v.as_ptr(),
        })
        .collect();
    let set = sys::gss_key_value_set_desc {
        count: u32::try_from(elements.len())
            .map_err(|_| "credential store too large".to_string())?,
        elements: elements.as_mut_ptr(),
    };
    let mut minor: u32 = 0;
    let mut cred: sys::gss_cred_id_t = ptr::null_mut();
    // SAFETY: `set` points into `elements`/`pairs`, which outlive the call; the output
    // credential handle is owned by `Cred` afterwards and released on its drop.
    let major = unsafe {
        sys::gss_acquire_cred_from(
            &mut minor,
            ptr::null_mut(),
            0,
            ptr::null_mut(),
            usage as sys::gss_cred_usage_t,
            &set,
            &mut cred,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    if major != 0 {
        let err = libgssapi::error::Error {
            major: libgssapi::error::MajorFlags::from_bits_retain(major),
            minor,
        };
        return Err(format!("gss_acquire_cred_from failed: {err}"));
    }
    // SAFETY: `cred` is a valid credential handle just returned by GSS-API.
    Ok(unsafe { Cred::from_c(cred) })
}

/// An acceptor credential for every key in `keytab`, with a file replay cache at `rcache`
/// (so the same token presented twice is rejected).
pub fn acceptor_cred(keytab: &Path, rcache: &Path) -> Result<Cred, String> {
    let kt = format!("FILE:{}", keytab.display());
    let rc = format!("file2:{}", rcache.display());
    acquire_from(&[("keytab", &kt), ("rcache", &rc)], sys::GSS_C_ACCEPT)
        .map_err(|e| format!("service keytab '{}': {e}", keytab.display()))
}

/// One `Negotiate <base64>` header value for `host@<target_host>`, made from `keytab`'s
/// first principal in a child process (see the module docs).
pub fn negotiate_header(
    kdc: &Kdc,
    keytab: &Path,
    target_host: &str,
    mech: Mech,
) -> Result<String, String> {
    negotiate_headers(kdc, keytab, target_host, mech, 1)?
        .pop()
        .ok_or_else(|| "child produced no token".to_string())
}

/// `count` distinct `Negotiate <base64>` header values (one GSS context each) from one child.
pub fn negotiate_headers(
    kdc: &Kdc,
    keytab: &Path,
    target_host: &str,
    mech: Mech,
    count: usize,
) -> Result<Vec<String>, String> {
    // /proc/self/exe still runs this binary if a concurrent rebuild replaced the file.
    let proc_exe = Path::new("/proc/self/exe");
    let exe = if proc_exe.exists() {
        proc_exe.to_path_buf()
    } else {
        std::env::current_exe().map_err(|e| format!("no current exe: {e}"))?
    };
    let tag = fastrand::u64(..);
    let out = kdc.dir().join(format!("gss-child-{tag}.out"));
    let log = kdc.dir().join(format!("gss-child-{tag}.log"));
    let log_file =
        fs::File::create(&log).map_err(|e| format!("could not create '{}': {e}", log.display()))?;
    let log_err = log_file
        .try_clone()
        .map_err(|e| format!("could not dup log: {e}"))?;
    let mut cmd = Command::new(&exe);
    cmd.args([
        "gss_token_child",
        "--ignored",
        "--test-threads=1",
        "--nocapture",
    ]);
    for (k, v) in kdc.env() {
        cmd.env(k, v);
    }
    for k in [
        "KRB5CCNAME",
        "KRB5_KTNAME",
        "KRB5_CLIENT_KTNAME",
        "KRB5_TRACE",
    ] {
        cmd.env_remove(k);
    }
    cmd.env("SUPPORT_GSS_CHILD", "1")
        .env("SUPPORT_GSS_KEYTAB", keytab)
        .env("SUPPORT_GSS_TARGET", format!("host@{target_host}"))
        .env("SUPPORT_GSS_MECH", mech.as_str())
        .env("SUPPORT_GSS_COUNT", count.to_string())
        .env("SUPPORT_GSS_OUT", &out)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("could not run '{}': {e}", exe.display()))?;
    let Some(status) = super::kdc::wait_status(&mut child, CHILD_TIMEOUT) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!(
            "token child did not finish within {CHILD_TIMEOUT:?}"
        ));
    };
    let text = fs::read_to_string(&out).unwrap_or_default();
    let logs = fs::read_to_string(&log).unwrap_or_default();
    let _ = fs::remove_file(&out);
    let _ = fs::remove_file(&log);
    let headers: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("Negotiate "))
        .map(String::from)
        .collect();
    if !status.success() || headers.len() != count {
        let error = text.lines().find(|l| l.starts_with("ERROR:")).unwrap_or("");
        return Err(format!(
            "token child failed ({status}): {error}{}",
            if error.is_empty() { logs.trim() } else { "" }
        ));
    }
    Ok(headers)
}

/// Runs in the child started by [`negotiate_headers`]; a no-op anywhere else.
#[cfg(test)]
#[test]
#[ignore = "helper run in a child process by support::gss::negotiate_headers"]
fn gss_token_child() {
    use std::io::Write;
    if std::env::var_os("SUPPORT_GSS_CHILD").is_none() {
        return;
    }
    let Some(out) = std::env::var_os("SUPPORT_GSS_OUT") else {
        return;
    };
    let result = child_tokens();
    let text = match &result {
        Ok(headers) => headers.join("\n") + "\n",
        Err(e) => format!("ERROR: {e}\n"),
    };
    let written = fs::File::create(&out).and_then(|mut f| f.write_all(text.as_bytes()));
    assert!(
        written.is_ok() && result.is_ok(),
        "token child failed: {text}"
    );
}

#[cfg(test)]
fn child_tokens() -> Result<Vec<String>, String> {
    use base64::prelude::*;
    use libgssapi::context::{ClientCtx, CtxFlags};
    use libgssapi::name::Name;
    use libgssapi::oid::{GSS_MECH_KRB5, GSS_MECH_SPNEGO, GSS_NT_HOSTBASED_SERVICE};

    let var = |k: &str| std::env::var(k).map_err(|_| format!("{k} not set"));
    let keytab = format!("FILE:{}", var("SUPPORT_GSS_KEYTAB")?);
    let target = var("SUPPORT_GSS_TARGET")?;
    let mech = if var("SUPPORT_GSS_MECH")? == "spnego" {
        GSS_MECH_SPNEGO
    } else {
        GSS_MECH_KRB5
    };
    let count: usize = var("SUPPORT_GSS_COUNT")?
        .parse()
        .map_err(|e| format!("bad count: {e}"))?;
    let ccache = format!("MEMORY:support-{}", std::process::id());
    let cred = acquire_from(
        &[("client_keytab", &keytab), ("ccache", &ccache)],
        sys::GSS_C_INITIATE,
    )?;
    (0..count)
        .map(|_| {
            let name = Name::new(target.as_bytes(), Some(GSS_NT_HOSTBASED_SERVICE))
                .map_err(|e| format!("bad target '{target}': {e}"))?;
            let mut ctx = ClientCtx::new(
                Some(cred.clone()),
                name,
                CtxFlags::GSS_C_MUTUAL_FLAG,
                Some(mech),
            );
            let token = ctx
                .step(None, None)
                .map_err(|e| format!("gss_init_sec_context for '{target}': {e}"))?
                .ok_or_else(|| "no initial token".to_string())?;
            Ok(format!("Negotiate {}", BASE64_STANDARD.encode(&*token)))
        })
        .collect()
}
