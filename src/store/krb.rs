//! A Kerberos initiator from the user's own ticket cache (`$KRB5CCNAME`), for
//! a person at condor_submit; robots use [`crate::kerberos::Initiator`] with a keytab.

use base64::prelude::*;
use libgssapi::context::{ClientCtx, CtxFlags};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_KRB5, GSS_NT_HOSTBASED_SERVICE, OidSet};

/// The default credential of the user's ticket cache.
pub struct CcacheInitiator {
    cred: Cred,
}

impl CcacheInitiator {
    /// Uses the default ccache; fails when there is no valid ticket.
    pub fn new() -> Result<Self, String> {
        let fail = |e: libgssapi::error::Error| e.to_string().replace('\n', " ");
        let mut mechs = OidSet::new();
        mechs.add(GSS_MECH_KRB5).map_err(fail)?;
        let cred = Cred::acquire(None, None, CredUsage::Initiate, Some(&mechs)).map_err(|e| {
            format!(
                "no usable Kerberos ticket in the credential cache ({}): run kinit, or give a keytab with --keytab or $KRB5_KTNAME",
                fail(e)
            )
        })?;
        Ok(Self { cred })
    }

    /// A fresh `Negotiate <base64>` header for `host@<service_host>`.
    pub fn negotiate_header(&self, service_host: &str) -> Result<String, String> {
        let fail = |e: libgssapi::error::Error| {
            format!(
                "Kerberos context for host@{service_host}: {}",
                e.to_string().replace('\n', " ")
            )
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
            .ok_or_else(|| format!("GSSAPI produced no token for host@{service_host}"))?;
        Ok(format!("Negotiate {}", BASE64_STANDARD.encode(&*token)))
    }
}
