//! Table tests of [`super::resolve`] and `--check-config`.
use super::knobs::tests::knobs;
use super::*;

fn args() -> Overrides {
    Overrides {
        name: "CREDMON_OAUTH".into(),
        ..Overrides::default()
    }
}

#[test]
fn defaults_and_fallbacks() {
    let c = resolve(&knobs(&[("SEC_CREDENTIAL_DIRECTORY", "/x")]), &args()).unwrap();
    assert_eq!(c.cred_dir, PathBuf::from("/x"));
    assert_eq!((c.minimum, c.refresh), (2400, 1200));
    assert_eq!(c.providers.vault, vec!["*"]);
    assert!(c.providers.others.contains("scitokens"));
    assert_eq!(c.allowed_ports, vec![8200]);
    assert_eq!(c.max_in_flight, 8);
    assert_eq!(c.log_file, None);
    let c = resolve(
        &knobs(&[
            ("SEC_CREDENTIAL_DIRECTORY_OAUTH", "/o"),
            ("SEC_CREDENTIAL_DIRECTORY", "/x"),
            ("LOG", "/var/log/condor"),
            ("CREDMON_OAUTH_TOKEN_MINIMUM", "1000"),
            ("AUTH_SSL_CLIENT_CAFILE", ""),
            ("DUNE_CLIENT_ID", "abc"),
            ("TRUSTED_VAULT_HOSTS", "Vault.Example.org, other"),
        ]),
        &args(),
    )
    .unwrap();
    assert_eq!(c.cred_dir, PathBuf::from("/o"));
    assert_eq!(
        c.log_file,
        Some(PathBuf::from("/var/log/condor/CredMonOAuthLog"))
    );
    assert_eq!((c.minimum, c.refresh), (1000, 500));
    assert_eq!(c.cafile, None);
    assert!(c.providers.client_ids.contains("DUNE"));
    assert_eq!(c.trusted_hosts, vec!["vault.example.org", "other"]);
}

#[test]
fn options_override_knobs() {
    let mut a = args();
    a.cred_dir = Some("/opt".into());
    a.log_file = Some("/l".into());
    a.debug = true;
    let c = resolve(
        &knobs(&[
            ("SEC_CREDENTIAL_DIRECTORY_OAUTH", "/o"),
            ("CREDMON_OAUTH_LOG", "/k"),
        ]),
        &a,
    )
    .unwrap();
    assert_eq!(c.cred_dir, PathBuf::from("/opt"));
    assert_eq!(c.log_file, Some(PathBuf::from("/l")));
    assert!(c.debug);
}

#[test]
fn metrics_file_option_over_knob() {
    let base = [("SEC_CREDENTIAL_DIRECTORY_OAUTH", "/o")];
    let c = resolve(&knobs(&base), &args()).unwrap();
    assert_eq!(c.metrics_file, None);
    let mut k = knobs(&base);
    k.insert("ROBOT_CREDMON_METRICS_FILE".into(), "/m/knob.prom".into());
    let c = resolve(&k, &args()).unwrap();
    assert_eq!(c.metrics_file, Some(PathBuf::from("/m/knob.prom")));
    assert!(
        c.describe()
            .contains("ROBOT_CREDMON_METRICS_FILE = /m/knob.prom\n")
    );
    let mut a = args();
    a.metrics_file = Some("/m/opt.prom".into());
    let c = resolve(&k, &a).unwrap();
    assert_eq!(c.metrics_file, Some(PathBuf::from("/m/opt.prom")));
}

#[test]
fn invalid_configurations() {
    let base = [("SEC_CREDENTIAL_DIRECTORY_OAUTH", "/o")];
    assert_eq!(
        resolve(&knobs(&[]), &args()).unwrap_err(),
        ConfigError::NoCredDir
    );
    for (knob, value) in [
        ("VAULT_CREDMON_PROVIDER_NAMES", "igwn, bad_name"),
        ("CREDMON_OAUTH_TOKEN_MINIMUM", "soon"),
        ("CREDMON_ALLOW_SPECIAL_CHAR_NAMES", "maybe"),
        ("ROBOT_CREDMON_MAX_IN_FLIGHT", "0"),
        ("ROBOT_CREDMON_ALLOWED_VAULT_PORTS", "8200 http"),
        ("ROBOT_CREDMON_PROVISION", "igwn_robot"),
        ("ROBOT_CREDMON_PROVISION", "../x@vault"),
    ] {
        let mut k = knobs(&base);
        k.insert(knob.into(), value.into());
        assert!(
            matches!(resolve(&k, &args()), Err(ConfigError::Invalid { .. })),
            "{knob} = {value}"
        );
    }
}

#[test]
fn provision_entries() {
    let c = resolve(
        &knobs(&[
            ("SEC_CREDENTIAL_DIRECTORY_OAUTH", "/o"),
            ("ROBOT_CREDMON_VAULT_SERVER", "vault.example.org"),
            ("ROBOT_CREDMON_PROVISION", "igwn_robot, dune@other:8201"),
        ]),
        &args(),
    )
    .unwrap();
    assert_eq!(
        c.provision,
        vec![
            Provision {
                service: "igwn_robot".into(),
                server: "vault.example.org:8200".into()
            },
            Provision {
                service: "dune".into(),
                server: "other:8201".into()
            },
        ]
    );
}

type Check = fn(&Config) -> bool;
const BASE: (&str, &str) = ("SEC_CREDENTIAL_DIRECTORY_OAUTH", "/o");

/// Resolves each case's knobs and checks what HTCondor means by them.
fn check_cases(cases: &[(&[(&str, &str)], Check)]) {
    for (pairs, check) in cases {
        let c = resolve(&knobs(pairs), &args()).unwrap();
        assert!(check(&c), "{pairs:?}: {c:?}");
    }
}

/// Log knob parity with HTCondor's Python credmons and their shipped configurations.
/// (Long: one table of cases, one row per HTCondor meaning.)
#[test]
fn htcondor_log_knob_parity() {
    let base = BASE;
    check_cases(&[
        // 40-vault-credmon.conf names the log SEC_CREDENTIAL_MONITOR_OAUTH_LOG.
        (
            &[
                base,
                ("SEC_CREDENTIAL_MONITOR_OAUTH_LOG", "/l/m"),
                ("LOG", "/l"),
            ],
            |c| c.log_file == Some("/l/m".into()),
        ),
        // Its pre-8.9.7 branch sets SEC_CREDENTIAL_MONITOR_LOG; the OAuth name wins.
        (
            &[
                base,
                ("SEC_CREDENTIAL_MONITOR_LOG", "/l/old"),
                ("LOG", "/l"),
            ],
            |c| c.log_file == Some("/l/old".into()),
        ),
        (
            &[
                base,
                ("SEC_CREDENTIAL_MONITOR_LOG", "/l/old"),
                ("SEC_CREDENTIAL_MONITOR_OAUTH_LOG", "/l/m"),
            ],
            |c| c.log_file == Some("/l/m".into()),
        ),
        // use feature : OAUTH sets CREDMON_OAUTH_LOG; it wins.
        (
            &[
                base,
                ("CREDMON_OAUTH_LOG", "/l/c"),
                ("SEC_CREDENTIAL_MONITOR_OAUTH_LOG", "/l/m"),
            ],
            |c| c.log_file == Some("/l/c".into()),
        ),
        (&[base, ("CREDMON_OAUTH_LOG", " "), ("LOG", "/l")], |c| {
            c.log_file == Some("/l/CredMonOAuthLog".into())
        }),
        (&[base], |c| {
            c.log_file.is_none() && c.log_level == log::LevelFilter::Info && !c.debug
        }),
        (&[base, ("CREDMON_OAUTH_LOG_LEVEL", "warning")], |c| {
            c.log_level == log::LevelFilter::Warn && !c.debug
        }),
        (&[base, ("CREDMON_OAUTH_LOG_LEVEL", "DEBUG")], |c| c.debug),
        (&[base, ("CREDMON_OAUTH_DEBUG", "D_FULLDEBUG")], |c| {
            c.debug && c.log_level == log::LevelFilter::Debug
        }),
        (&[base, ("CREDMON_OAUTH_DEBUG", "D_ALWAYS")], |c| !c.debug),
    ]);
    let bad = knobs(&[base, ("CREDMON_OAUTH_LOG_LEVEL", "loud")]);
    assert!(matches!(
        resolve(&bad, &args()),
        Err(ConfigError::Invalid { .. })
    ));
}

/// Directory, lifetime, TLS, trust and provider knobs mean what they mean to HTCondor.
/// (Long: one table of cases, one row per HTCondor meaning.)
#[test]
fn htcondor_knob_parity() {
    let base = BASE;
    check_cases(&[
        // SEC_CREDENTIAL_DIRECTORY_OAUTH, falling back to SEC_CREDENTIAL_DIRECTORY.
        (
            &[
                ("SEC_CREDENTIAL_DIRECTORY_OAUTH", ""),
                ("SEC_CREDENTIAL_DIRECTORY", "/old"),
            ],
            |c| c.cred_dir == std::path::Path::new("/old"),
        ),
        // Python: minimum 2400, refresh minimum / 2.
        (
            &[
                base,
                ("CREDMON_OAUTH_TOKEN_MINIMUM", "2400"),
                ("CREDMON_OAUTH_TOKEN_REFRESH", "1200"),
            ],
            |c| (c.minimum, c.refresh) == (2400, 1200),
        ),
        (&[base, ("CREDMON_OAUTH_TOKEN_MINIMUM", "600")], |c| {
            (c.minimum, c.refresh) == (600, 300)
        }),
        // AUTH_SSL_CLIENT_CAFILE/CADIR: empty or blank means unset (HTCONDOR-3086).
        (
            &[
                base,
                ("AUTH_SSL_CLIENT_CAFILE", "  "),
                ("AUTH_SSL_CLIENT_CADIR", ""),
            ],
            |c| c.cafile.is_none() && c.capath.is_none(),
        ),
        (
            &[
                base,
                ("AUTH_SSL_CLIENT_CAFILE", "/ca.pem"),
                ("AUTH_SSL_CLIENT_CADIR", "/cadir"),
            ],
            |c| c.cafile == Some("/ca.pem".into()) && c.capath == Some("/cadir".into()),
        ),
        // TRUSTED_VAULT_HOSTS: both forms the credd compares, kept as written (lower case).
        (
            &[
                base,
                ("TRUSTED_VAULT_HOSTS", "Vault.example.org vault2:8200,"),
            ],
            |c| c.trusted_hosts == ["vault.example.org", "vault2:8200"],
        ),
        // Providers: "*" serves all but scitokens, other credmons' lists and <p>_CLIENT_ID.
        (
            &[
                base,
                ("PELICAN_CREDMON_PROVIDER_NAMES", "osdf"),
                ("BOX_CLIENT_ID", ""),
            ],
            |c| {
                c.providers.vault == ["*"]
                    && ["osdf", "scitokens"]
                        .iter()
                        .all(|p| c.providers.others.contains(*p))
                    && c.providers.client_ids.contains("BOX")
            },
        ),
        (
            &[
                base,
                ("LOCAL_CREDMON_PROVIDER_NAME", "mylocal"),
                ("OAUTH2_CREDMON_PROVIDER_NAMES", "box, *"),
            ],
            |c| {
                ["mylocal", "box"]
                    .iter()
                    .all(|p| c.providers.others.contains(*p))
                    && !c.providers.others.contains("*")
            },
        ),
        (
            &[
                base,
                ("VAULT_CREDMON_PROVIDER_NAMES", "igwn dune"),
                ("CREDMON_ALLOW_SPECIAL_CHAR_NAMES", "True"),
            ],
            |c| c.providers.vault == ["igwn", "dune"] && c.providers.special_chars,
        ),
    ]);
    let huge = knobs(&[base, ("CREDMON_OAUTH_TOKEN_MINIMUM", "99999999999999")]);
    assert!(matches!(
        resolve(&huge, &args()),
        Err(ConfigError::Invalid { .. })
    ));
}

#[test]
fn daemon_name_knobs_and_check_config() {
    let mut a = args();
    a.name = "my_credmon".into();
    let c = resolve(
        &knobs(&[
            ("SEC_CREDENTIAL_DIRECTORY_OAUTH", "/o"),
            ("MY_CREDMON_LOG", "/l/mine"),
            ("MY_CREDMON_DEBUG", "D_FULLDEBUG"),
        ]),
        &a,
    )
    .unwrap();
    assert_eq!(c.log_file, Some("/l/mine".into()));
    assert!(c.debug);
    let text = c.describe();
    for line in [
        "name = MY_CREDMON\n",
        "MY_CREDMON_LOG = /l/mine\n",
        "CREDMON_OAUTH_LOG_LEVEL = DEBUG\n",
        "CREDMON_OAUTH_TOKEN_REFRESH = 1200\n",
        "ROBOT_CREDMON_ALLOWED_VAULT_PORTS = 8200\n",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    // Every knob with a resolved value is shown.
    let shown = k::TABLE.iter().filter(|kn| kn.show.is_some()).count();
    assert_eq!(
        text.lines().filter(|l| l.contains(" = ")).count(),
        shown + 2
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn knob_name() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(
                k::TABLE
                    .iter()
                    .map(|kn| kn.name.to_owned())
                    .collect::<Vec<_>>()
            ),
            "[A-Z_]{1,20}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Any knob values resolve to a configuration or a clear error, never a panic,
        /// and what resolves respects the declared limits.
        #[test]
        fn resolve_never_panics(pairs in prop::collection::vec((knob_name(), "\\PC{0,30}"), 0..12)) {
            let mut raw: Knobs = pairs.into_iter().collect();
            raw.insert("SEC_CREDENTIAL_DIRECTORY_OAUTH".into(), "/o".into());
            if let Ok(c) = resolve(&raw, &args()) {
                prop_assert!((1..=256).contains(&c.max_in_flight));
                prop_assert!(c.minimum <= 400 * 86400 && c.refresh <= 400 * 86400);
                prop_assert!((1..=3600).contains(&c.scan_interval.as_secs()));
                prop_assert!(!c.describe().is_empty());
            }
        }

        /// `condor_config_val -dump` output of any shape parses without a panic.
        #[test]
        fn dump_parsing_never_panics(text in "\\PC{0,200}") {
            let d = k::parse_dump(&text);
            prop_assert!(d.keys().all(|key| !key.is_empty() && !key.contains(char::is_whitespace)));
        }
    }
}

#[test]
fn check_config_warns_when_trusted_vault_hosts_lacks_the_storers_port() {
    let t = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let opts = Some("-a vault.example.org --credkey x");
    // (TRUSTED_VAULT_HOSTS, SEC_CREDENTIAL_GETTOKEN_OPTS, the warning names)
    for (trusted, opts, want) in [
        (
            t(&["vault.example.org"]),
            opts,
            Some("holds 'vault.example.org' without the port"),
        ),
        (
            t(&["other.example"]),
            opts,
            Some("does not hold 'vault.example.org:8200'"),
        ),
        (t(&["VAULT.example.org:8200"]), opts, None),
        (
            t(&["vault.example.org", "vault.example.org:8200"]),
            opts,
            None,
        ),
        (t(&[]), opts, None),
        (t(&["vault.example.org"]), None, None),
        (
            t(&["v"]),
            Some("-a https://v:8443"),
            Some("add 'v:8443' to TRUSTED_VAULT_HOSTS"),
        ),
    ] {
        let got = trusted_hosts_warning(&trusted, opts);
        match want {
            None => assert_eq!(got, None, "{trusted:?} {opts:?}"),
            Some(w) => {
                let got = got.unwrap_or_default();
                assert!(got.contains(w), "{trusted:?} {opts:?}: {got}");
                assert!(got.contains("add '"), "{got}");
            }
        }
    }
    let c = resolve(
        &knobs(&[
            ("SEC_CREDENTIAL_DIRECTORY_OAUTH", "/o"),
            ("TRUSTED_VAULT_HOSTS", "vault.example.org"),
            ("SEC_CREDENTIAL_GETTOKEN_OPTS", "-a vault.example.org"),
        ]),
        &args(),
    )
    .unwrap();
    assert_eq!(c.warnings().len(), 1);
}
