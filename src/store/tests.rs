//! The storer's context from an injected environment.

#![allow(clippy::unwrap_used)]

use super::*;
use std::time::UNIX_EPOCH;

fn context(vars: &[(&str, &str)]) -> Context {
    let env = Env::fixed(
        vars.iter().copied(),
        1234,
        UNIX_EPOCH + Duration::from_secs(1_000_000),
    );
    Context::from_env(
        &env,
        None,
        None,
        None,
        Duration::from_secs(60),
        "hint".into(),
    )
    .unwrap()
}

#[test]
fn the_context_comes_from_the_injected_environment() {
    let ctx = context(&[
        ("HOME", "/home/robot"),
        ("CONDOR_VAULT_STORER_ID", "pipeline"),
        ("CONDOR_VAULT_STORER_USER", "robot"),
        ("SEC_CREDENTIAL_STORECRED_OPTS", "-d 'a b'"),
        ("CONDOR_CREDENTIAL_STORER_MODE", "vault"),
    ]);
    assert_eq!(ctx.home, PathBuf::from("/home/robot"));
    assert_eq!(ctx.id, "pipeline");
    assert_eq!(ctx.user.as_deref(), Some("robot"));
    assert_eq!(ctx.storecred_opts, ["-d", "a b"]);
    assert_eq!(ctx.mode.as_deref(), Some("vault"));
    assert_eq!(ctx.uid(), 1234);
    assert_eq!(ctx.env.now(), UNIX_EPOCH + Duration::from_secs(1_000_000));
    assert_eq!(ctx.restore_before, RESTORE_BEFORE_DEFAULT);
    assert!(!ctx.verbose);

    // Unset or empty: the uid names the storer, no user, no mode.
    let ctx = context(&[
        ("CONDOR_VAULT_STORER_USER", ""),
        ("CONDOR_CREDENTIAL_STORER_MODE", ""),
    ]);
    assert_eq!(ctx.id, "u1234");
    assert_eq!(ctx.user, None);
    assert_eq!(ctx.mode, None);
    assert_eq!(ctx.home, PathBuf::new());
    assert!(ctx.storecred_opts.is_empty());
}
