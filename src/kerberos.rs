//! Kerberos: checking and reading keytabs, acquiring an initiator credential
//! from a keytab into a private credential cache, and building the
//! `Authorization: Negotiate` header for a Vault login. The only module that
//! talks to GSSAPI.

use base64::prelude::*;
use libgssapi::context::{ClientCtx, CtxFlags};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_KRB5, GSS_NT_HOSTBASED_SERVICE, OidSet};
use libgssapi_sys as sys;
use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::ptr;

/// Realm appended to a principal given without one (igwn-robot-get's default).
pub const DEFAULT_REALM: &str = "LIGO.ORG";

/// What went wrong with Kerberos, naming the keytab or principal.
#[derive(Debug, thiserror::Error)]
pub enum KrbError {
    /// The keytab file does not exist.
    #[error("keytab '{0}' does not exist (give the right path with --keytab or $KRB5_KTNAME)")]
    KeytabMissing(PathBuf),
    /// The keytab cannot be read by us.
    #[error(
        "cannot read keytab '{path}': {source} (it must be readable by the user running robot-credmon)"
    )]
    KeytabUnreadable {
        /// The keytab.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Group or others may read or write the keytab.
    #[error(
        "keytab '{path}' has mode {mode:04o}, so other users can read or change it; refusing to use it (run: chmod 600 '{path}')"
    )]
    KeytabPermissions {
        /// The keytab.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// We run as root and the keytab is not root's.
    #[error(
        "keytab '{path}' is owned by uid {uid}, not root; refusing to use it (run: chown root '{path}')"
    )]
    KeytabOwner {
        /// The keytab.
        path: PathBuf,
        /// Its owner.
        uid: u32,
    },
    /// The keytab is not in MIT/Heimdal keytab format or holds no keys.
    #[error("keytab '{path}' is not a usable keytab: {why}")]
    KeytabFormat {
        /// The keytab.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The requested principal has no key in the keytab.
    #[error(
        "keytab '{path}' holds no key for principal '{principal}' (it has: {available}); give the principal the keytab was made for"
    )]
    PrincipalNotInKeytab {
        /// The keytab.
        path: PathBuf,
        /// The principal asked for.
        principal: String,
        /// The principals it does hold.
        available: String,
    },
    /// GSSAPI refused to acquire a credential (no KDC, wrong key, clock skew ...).
    #[error("cannot get a Kerberos ticket for '{principal}' from keytab '{keytab}': {detail}")]
    Acquire {
        /// The client principal.
        principal: String,
        /// The keytab.
        keytab: PathBuf,
        /// The GSSAPI message.
        detail: String,
    },
    /// Building the security context for the service failed.
    #[error(
        "cannot get a Kerberos service ticket for 'host@{service_host}': {detail} (the Vault server needs the key host/{service_host} in its keytab; try --vaultalias with the cluster name)"
    )]
    Context {
        /// Host part of the service name.
        service_host: String,
        /// The GSSAPI message.
        detail: String,
    },
    /// No usable ticket in the user's own credential cache.
    #[error(
        "no usable Kerberos ticket in the credential cache ({0}): run kinit, or give a keytab with --keytab or $KRB5_KTNAME"
    )]
    NoTicket(String),
    /// A temporary Kerberos profile could not be written.
    #[error("cannot write a temporary Kerberos profile: {0}")]
    Profile(std::io::Error),
}

/// Appends the default realm to a principal given without one.
pub fn qualify_principal(principal: &str) -> String {
    if principal.contains('@') {
        principal.to_owned()
    } else {
        format!("{principal}@{DEFAULT_REALM}")
    }
}

/// An open keytab: opened once without following a final symbolic link, checked
/// on the open descriptor (regular file, private to its owner, root's when asked),
/// and handed to GSSAPI as that same descriptor (`FILE:/proc/self/fd/N`), so the
/// file checked is the file used.
pub struct Keytab {
    path: PathBuf,
    file: std::fs::File,
    principals: Vec<String>,
}

/// Keytabs are small; anything larger is not one.
const MAX_KEYTAB_BYTES: u64 = 1 << 20;

impl Keytab {
    /// Opens and checks `path`; with `root_owned` the file must belong to root.
    /// Refuses a keytab that is missing, unreadable, not a regular file, a
    /// symbolic link, or readable or writable by group or others.
    pub fn open(path: &Path, root_owned: bool) -> Result<Keytab, KrbError> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let flags = nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags.bits())
            .open(path)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => KrbError::KeytabMissing(path.to_owned()),
                _ if source.raw_os_error() == Some(nix::libc::ELOOP) => KrbError::KeytabFormat {
                    path: path.to_owned(),
                    why: "it is a symbolic link; give the real file".into(),
                },
                _ => KrbError::KeytabUnreadable {
                    path: path.to_owned(),
                    source,
                },
            })?;
        let unreadable = |source| KrbError::KeytabUnreadable {
            path: path.to_owned(),
            source,
        };
        let meta = file.metadata().map_err(unreadable)?;
        if !meta.is_file() {
            return Err(KrbError::KeytabFormat {
                path: path.to_owned(),
                why: "not a regular file".into(),
            });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o066 != 0 {
            return Err(KrbError::KeytabPermissions {
                path: path.to_owned(),
                mode,
            });
        }
        if root_owned && meta.uid() != 0 {
            return Err(KrbError::KeytabOwner {
                path: path.to_owned(),
                uid: meta.uid(),
            });
        }
        let mut data = Vec::new();
        (&file)
            .take(MAX_KEYTAB_BYTES)
            .read_to_end(&mut data)
            .map_err(unreadable)?;
        let principals = parse_keytab_principals(&data).map_err(|why| KrbError::KeytabFormat {
            path: path.to_owned(),
            why,
        })?;
        Ok(Keytab {
            path: path.to_owned(),
            file,
            principals,
        })
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The principals in it, in file order, without duplicates.
    pub fn principals(&self) -> &[String] {
        &self.principals
    }

    /// Chooses the client principal: the one given (realm-qualified) and
    /// present in the keytab, or the keytab's first principal.
    pub fn choose_principal(&self, given: Option<&str>) -> Result<String, KrbError> {
        match given {
            None => self
                .principals
                .first()
                .cloned()
                .ok_or_else(|| KrbError::KeytabFormat {
                    path: self.path.clone(),
                    why: "it holds no keys".into(),
                }),
            Some(p) => {
                let p = qualify_principal(p);
                if self.principals.contains(&p) {
                    Ok(p)
                } else {
                    Err(KrbError::PrincipalNotInKeytab {
                        path: self.path.clone(),
                        principal: p,
                        available: self.principals.join(", "),
                    })
                }
            }
        }
    }

    /// The GSSAPI name of the open descriptor.
    fn gss_name(&self) -> String {
        use std::os::fd::AsRawFd;
        format!("FILE:/proc/self/fd/{}", self.file.as_raw_fd())
    }
}

/// A Kerberos initiator credential for one principal, taken from a keytab.
pub struct Initiator {
    cred: Cred,
}

impl Initiator {
    /// Gets a TGT for `principal` from `keytab` into `ccache`
    /// (`MEMORY:` by default, so nothing is shared with other programs).
    pub fn from_keytab(
        keytab: &Keytab,
        principal: &str,
        ccache: Option<&str>,
    ) -> Result<Self, KrbError> {
        let kt = keytab.gss_name();
        let memory = format!(
            "MEMORY:robot-credmon-{}-{:x}",
            std::process::id(),
            fastrand::u64(..)
        );
        let store = [
            ("client_keytab", kt.as_str()),
            ("ccache", ccache.unwrap_or(&memory)),
        ];
        let cred = acquire_from(&store, principal, sys::GSS_C_INITIATE).map_err(|detail| {
            KrbError::Acquire {
                principal: principal.to_owned(),
                keytab: keytab.path().to_owned(),
                detail,
            }
        })?;
        Ok(Self { cred })
    }

    /// Uses the default credential of the user's own ticket cache (`$KRB5CCNAME`),
    /// for a person at condor_submit; fails when there is no valid ticket.
    pub fn from_default_ccache() -> Result<Self, KrbError> {
        let fail =
            |e: libgssapi::error::Error| KrbError::NoTicket(e.to_string().replace('\n', " "));
        let mut mechs = OidSet::new();
        mechs.add(GSS_MECH_KRB5).map_err(fail)?;
        let cred = Cred::acquire(None, None, CredUsage::Initiate, Some(&mechs)).map_err(fail)?;
        Ok(Self { cred })
    }

    /// A fresh `Negotiate <base64>` header value for `host@<service_host>`.
    ///
    /// Each call builds a new context: a Negotiate token must never be replayed.
    pub fn negotiate_header(&self, service_host: &str) -> Result<String, KrbError> {
        let fail = |e: libgssapi::error::Error| KrbError::Context {
            service_host: service_host.to_owned(),
            detail: e.to_string().replace('\n', " "),
        };
        let target = Name::new(
            format!("host@{service_host}").as_bytes(),
            Some(GSS_NT_HOSTBASED_SERVICE),
        )
        .map_err(fail)?;
        let mut ctx = ClientCtx::new(
            Some(self.cred.clone()),
            target,
            CtxFlags::empty(),
            Some(GSS_MECH_KRB5),
        );
        let token = ctx
            .step(None, None)
            .map_err(fail)?
            .ok_or_else(|| KrbError::Context {
                service_host: service_host.to_owned(),
                detail: "GSSAPI produced no token".into(),
            })?;
        Ok(format!("Negotiate {}", BASE64_STANDARD.encode(&*token)))
    }
}

/// Keeps a temporary Kerberos profile (`rdns = false`) alive while in use.
pub struct ProfileGuard {
    _file: tempfile::NamedTempFile,
    krb5_config: String,
}

impl ProfileGuard {
    /// The value for `$KRB5_CONFIG`: the profile in front of the previous value.
    pub fn krb5_config(&self) -> &str {
        &self.krb5_config
    }
}

/// Writes a profile with `rdns = false` to put in front of `$KRB5_CONFIG`
/// (`current`, or `/etc/krb5.conf`), as htgettoken does, so that a Vault
/// cluster alias is never reverse-resolved to a node name. `main` sets the
/// variable to [`ProfileGuard::krb5_config`] before any thread starts.
pub fn disable_reverse_dns(current: Option<&str>) -> Result<ProfileGuard, KrbError> {
    use std::io::Write;
    let mut file = tempfile::Builder::new()
        .prefix("robot-credmon-krb5-")
        .suffix(".conf")
        .tempfile()
        .map_err(KrbError::Profile)?;
    file.write_all(b"[libdefaults]\n    rdns = false\n")
        .map_err(KrbError::Profile)?;
    let rest = current
        .filter(|v| !v.is_empty())
        .unwrap_or("/etc/krb5.conf");
    let krb5_config = format!("{}:{rest}", file.path().display());
    Ok(ProfileGuard {
        _file: file,
        krb5_config,
    })
}

/// `gss_acquire_cred_from` with an explicit credential store.
fn acquire_from(store: &[(&str, &str)], principal: &str, usage: u32) -> Result<Cred, String> {
    let keys = store
        .iter()
        .map(|(k, v)| Ok((CString::new(*k)?, CString::new(*v)?)))
        .collect::<Result<Vec<_>, std::ffi::NulError>>()
        .map_err(|_| "a credential store entry contains a NUL byte".to_owned())?;
    let mut elems: Vec<sys::gss_key_value_element_desc> = keys
        .iter()
        .map(|(k, v)| sys::gss_key_value_element_desc {
            key: k.as_ptr(),
            value: v.as_ptr(),
        })
        .collect();
    let set = sys::gss_key_value_set_desc {
        count: u32::try_from(elems.len()).map_err(|_| "too many store entries".to_owned())?,
        elements: elems.as_mut_ptr(),
    };
    // GSS_KRB5_NT_PRINCIPAL_NAME, 1.2.840.113554.1.2.2.1
    let mut oid_bytes = *b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01";
    // SAFETY: every pointer handed to GSSAPI points to memory that outlives
    // the calls; outputs are checked before use and released on every path.
    unsafe {
        let mut minor: u32 = 0;
        let mut name: sys::gss_name_t = ptr::null_mut();
        let mut cred: sys::gss_cred_id_t = ptr::null_mut();
        let mut buf = sys::gss_buffer_desc {
            length: principal.len(),
            value: principal.as_ptr() as *mut _,
        };
        let mut oid = sys::gss_OID_desc {
            length: 10,
            elements: oid_bytes.as_mut_ptr() as *mut _,
        };
        if sys::gss_import_name(&mut minor, &mut buf, &mut oid, &mut name) != 0 {
            return Err(format!("invalid principal name '{principal}'"));
        }
        let major = sys::gss_acquire_cred_from(
            &mut minor,
            name,
            0,
            ptr::null_mut(),
            usage as sys::gss_cred_usage_t,
            &set,
            &mut cred,
            ptr::null_mut(),
            ptr::null_mut(),
        );
        let mut release_minor = 0;
        sys::gss_release_name(&mut release_minor, &mut name);
        if major != 0 {
            let err = libgssapi::error::Error {
                major: libgssapi::error::MajorFlags::from_bits_retain(major),
                minor,
            };
            return Err(err.to_string().replace('\n', " "));
        }
        Ok(Cred::from_c(cred))
    }
}

/// Parses the principals out of a keytab file's bytes (format 0x0501 or
/// 0x0502); a clear error on anything else, never a panic.
pub fn parse_keytab_principals(data: &[u8]) -> Result<Vec<String>, String> {
    let mut r = Reader {
        data,
        pos: 0,
        big_endian: false,
    };
    if r.u8()? != 5 {
        return Err("not a keytab file (bad magic)".into());
    }
    let version = r.u8()?;
    if version != 1 && version != 2 {
        return Err(format!("unsupported keytab version {version}"));
    }
    r.big_endian = version == 2;
    let mut out: Vec<String> = Vec::new();
    while r.pos < data.len() {
        let size = r.u32()? as i32;
        if size < 0 {
            r.skip(size.unsigned_abs() as usize)?;
            continue;
        }
        let end = r.pos + size as usize;
        if end > data.len() {
            return Err("truncated entry".into());
        }
        let mut n = r.u16()? as usize;
        if version == 1 {
            n = n.saturating_sub(1);
        }
        let realm = r.string()?;
        let comps = (0..n).map(|_| r.string()).collect::<Result<Vec<_>, _>>()?;
        let p = format!("{}@{realm}", comps.join("/"));
        if !out.contains(&p) {
            out.push(p);
        }
        r.pos = end;
    }
    if out.is_empty() {
        return Err("it holds no keys".into());
    }
    Ok(out)
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    big_endian: bool,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let s = self
            .data
            .get(self.pos..self.pos + n)
            .ok_or("truncated keytab")?;
        self.pos += n;
        Ok(s)
    }
    fn skip(&mut self, n: usize) -> Result<(), String> {
        self.take(n).map(|_| ())
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b: [u8; 2] = self.take(2)?.try_into().map_err(|_| "truncated keytab")?;
        Ok(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b: [u8; 4] = self.take(4)?.try_into().map_err(|_| "truncated keytab")?;
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.u16()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "principal is not UTF-8".into())
    }
}

#[cfg(test)]
mod tests;
