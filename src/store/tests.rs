//! The storer's context from injected settings, configuration and environment.

#![allow(clippy::unwrap_used)]

use super::*;
use clap::Parser;
use std::time::UNIX_EPOCH;

fn settings(env: &Env) -> Settings {
    let args = match crate::cli::Cli::try_parse_from(["robot-credmon", "store", "igwn"])
        .unwrap()
        .command
    {
        crate::cli::Command::Store(a) => a,
        _ => unreachable!("not the storer"),
    };
    Settings::from_args(&args, false, env)
}

fn with_context(vars: &[(&str, &str)], knobs: &[(&str, &str)], check: impl Fn(&Context<'_>)) {
    let env = Env::fixed(
        vars.iter().copied(),
        1234,
        UNIX_EPOCH + Duration::from_secs(1_000_000),
    );
    let config: Knobs = knobs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let settings = settings(&env);
    check(&Context::new(&settings, &env, &config).unwrap());
}

#[test]
fn the_context_comes_from_the_injected_environment() {
    let vars = [
        ("HOME", "/home/robot"),
        ("CONDOR_VAULT_STORER_ID", "pipeline"),
        ("CONDOR_VAULT_STORER_USER", "robot"),
        ("SEC_CREDENTIAL_STORECRED_OPTS", "-d 'a b'"),
        ("CONDOR_CREDENTIAL_STORER_MODE", "vault"),
    ];
    with_context(&vars, &[], |ctx| {
        assert_eq!(ctx.home, PathBuf::from("/home/robot"));
        assert_eq!(ctx.id, "pipeline");
        assert_eq!(ctx.user.as_deref(), Some("robot"));
        assert_eq!(ctx.storecred_opts, ["-d", "a b"]);
        assert_eq!(ctx.mode.as_deref(), Some("vault"));
        assert_eq!(ctx.uid(), 1234);
        assert_eq!(ctx.env.now(), UNIX_EPOCH + Duration::from_secs(1_000_000));
        assert_eq!(ctx.settings.restore_before, RESTORE_BEFORE_DEFAULT);
        assert!(!ctx.settings.verbose);
        assert_eq!(ctx.gettoken, None);
    });
    // Unset or empty: the uid names the storer, no user, no mode.
    let vars = [
        ("CONDOR_VAULT_STORER_USER", ""),
        ("CONDOR_CREDENTIAL_STORER_MODE", ""),
        ("HTGETTOKENOPTS", "-a env.example"),
    ];
    with_context(&vars, &[], |ctx| {
        assert_eq!(ctx.id, "u1234");
        assert_eq!(ctx.user, None);
        assert_eq!(ctx.mode, None);
        assert_eq!(ctx.home, PathBuf::new());
        assert!(ctx.storecred_opts.is_empty());
        let (words, source) = ctx.gettoken.clone().unwrap();
        assert_eq!(
            (words.join(" "), source.as_str()),
            ("-a env.example".into(), "$HTGETTOKENOPTS")
        );
    });
}

/// The knobs come from the one configuration reader's table: the options
/// knob wins over `$HTGETTOKENOPTS`, and the provider lists decide the owner.
#[test]
fn the_knobs_come_from_the_configuration() {
    let knobs = [
        (
            "SEC_CREDENTIAL_GETTOKEN_OPTS",
            "-a knob.example --credkey='r b'",
        ),
        ("PELICAN_CREDMON_PROVIDER_NAMES", "osdf"),
    ];
    with_context(&[("HTGETTOKENOPTS", "-a env.example")], &knobs, |ctx| {
        let (words, source) = ctx.gettoken.clone().unwrap();
        assert_eq!(words, ["-a", "knob.example", "--credkey=r b"]);
        assert_eq!(source, "SEC_CREDENTIAL_GETTOKEN_OPTS");
        assert_eq!(ctx.owner("osdf"), plan::Owner::Pelican);
        assert_eq!(ctx.owner("igwn"), plan::Owner::Vault);
    });
}
