#![allow(clippy::unwrap_used)]
use super::plan::*;
use super::*;
use std::path::PathBuf;

#[test]
fn broad_paths_are_refused() {
    for (p, broad) in [
        ("/", true),
        ("/etc", true),
        ("/var", true),
        ("/var/lib", true),
        ("/home", true),
        ("relative/dir", true),
        ("/var/log/../../etc", true),
        ("/var/log/condor", false),
        ("/etc/condor", false),
        ("/tmp", false),
    ] {
        assert_eq!(too_broad(Path::new(p)), broad, "{p}");
    }
}

#[test]
fn kdc_ports() {
    for (v, port) in [
        ("kdc.example.org", Some(88)),
        ("kdc.example.org:8888", Some(8888)),
        ("127.0.0.1:41234", Some(41234)),
        ("tcp/kdc.example.org:89", Some(89)),
        ("[::1]:750", Some(750)),
        ("::1", Some(88)),
        ("https://kdcproxy.example.org/KdcProxy", Some(443)),
        ("https://kdcproxy.example.org:8443/KdcProxy", Some(8443)),
        ("kdc:notaport", None),
        ("", None),
    ] {
        assert_eq!(kdc_port(v), port, "{v}");
    }
}

#[test]
fn krb5_profiles_name_includes_and_kdcs() {
    let text = "include /etc/krb5.local.conf\nincludedir /etc/krb5.conf.d/\n\
                [libdefaults]\n  default_realm = EXAMPLE.ORG\n\
                [realms]\n  EXAMPLE.ORG = {\n    kdc = 127.0.0.1:41234\n    master_kdc = kdc2\n    admin_server = adm:749\n  }\n";
    let r = krb5_refs(text);
    assert_eq!(r.files, [PathBuf::from("/etc/krb5.local.conf")]);
    assert_eq!(r.dirs, [PathBuf::from("/etc/krb5.conf.d/")]);
    assert_eq!(r.ports, [41234, 88], "admin_server is not a KDC");
    for (name, read) in [
        ("crypto-policies", true),
        ("local.conf", true),
        ("a_b-1", true),
        ("x.rpmsave", false),
        ("notes~", false),
        (".hidden.conf", false),
        ("", false),
    ] {
        assert_eq!(krb5_included(name), read, "{name}");
    }
}

#[test]
fn condor_config_val_sources() {
    // `condor_config_val -config` of HTCondor 25 (the headings go to stderr).
    let out = "Configuration source:\n\t/etc/condor/condor_config\n\
               Local configuration sources:\n\t/etc/condor/config.d/00-minicondor\n\t/tmp/x/inc.conf\n";
    assert_eq!(
        condor_config_sources(out),
        [
            "/etc/condor/condor_config",
            "/etc/condor/config.d/00-minicondor",
            "/tmp/x/inc.conf"
        ]
        .map(PathBuf::from)
    );
    assert!(condor_config_sources("/not/indented\n").is_empty());
}

#[test]
fn proxy_ports() {
    for (v, port) in [
        ("http://proxy:3128", Some(3128)),
        ("proxy.example.org:8080", Some(8080)),
        ("https://proxy.example.org", Some(443)),
        ("http://proxy", Some(80)),
        ("", None),
    ] {
        assert_eq!(proxy_port(v), port, "{v}");
    }
}

#[test]
fn program_directories() {
    let p = |s: &str| PathBuf::from(s);
    assert_eq!(
        program_dirs(&p("/opt/condor/bin/condor_config_val")),
        [
            "/opt/condor/bin",
            "/opt/condor/lib",
            "/opt/condor/lib64",
            "/opt/condor/libexec"
        ]
        .map(PathBuf::from)
    );
    assert_eq!(
        program_dirs(&p("/srv/tools/condor_config_val")),
        [p("/srv/tools")]
    );
    assert!(program_dirs(&p("condor_config_val")).is_empty());
}

fn inputs() -> Inputs {
    Inputs {
        cred_dir: "/var/lib/condor/oauth_credentials".into(),
        log_file: Some("/var/log/condor/CredMonOAuthLog".into()),
        metrics_file: Some("/var/lib/prometheus/node-exporter/credmon.prom".into()),
        read_dirs: vec!["/etc/robot-credmon/keytabs".into()],
        read_files: vec!["/etc/krb5.conf".into()],
        programs: vec!["/usr/bin/condor_config_val".into()],
        tcp_ports: [8200, 9618].into_iter().collect(),
        provisions: false,
        condor: Some((999, 995)),
    }
}

fn access_of(plan: &Plan, path: &str) -> Vec<Access> {
    plan.rules
        .iter()
        .filter(|r| r.path == Path::new(path))
        .map(|r| r.access)
        .collect()
}

#[test]
fn the_plan_writes_only_its_own_trees() {
    let plan = plan::plan(&inputs());
    let writable: Vec<&Path> = plan
        .rules
        .iter()
        .filter(|r| matches!(r.access, Access::Write | Access::Append))
        .map(|r| r.path.as_path())
        .collect();
    assert_eq!(
        writable,
        [
            Path::new("/var/lib/condor/oauth_credentials"),
            Path::new("/var/lib/prometheus/node-exporter"),
            Path::new("/var/log/condor")
        ]
    );
    assert_eq!(access_of(&plan, "/var/log/condor"), [Access::Append]);
    assert_eq!(
        access_of(&plan, "/etc/robot-credmon/keytabs"),
        [Access::Read]
    );
    assert_eq!(access_of(&plan, "/usr/bin"), [Access::ReadExec]);
    assert_eq!(access_of(&plan, "/dev/null"), [Access::Device]);
    assert!(access_of(&plan, "/etc").is_empty());
    assert!(access_of(&plan, "/etc/shadow").is_empty());
    assert!(plan.refused.is_empty());
    assert_eq!(plan.tcp_ports, [53, 88, 750, 8200, 9618]);
    assert_eq!(plan.caps, [Capability::CAP_DAC_OVERRIDE]);
    assert_eq!(
        (plan.owners.as_slice(), plan.groups.as_slice()),
        (&[0][..], &[0][..])
    );
}

#[test]
fn provisioning_adds_the_owner_capabilities_and_condor() {
    let plan = plan::plan(&Inputs {
        provisions: true,
        ..inputs()
    });
    assert_eq!(
        cap_names(&plan.caps),
        "CAP_DAC_OVERRIDE, CAP_CHOWN, CAP_FOWNER, CAP_FSETID"
    );
    assert_eq!(plan.owners, [0, 999]);
    assert_eq!(plan.groups, [0, 995]);
}

#[test]
fn broad_parents_get_no_rule() {
    let plan = plan::plan(&Inputs {
        log_file: Some("/CredMonOAuthLog".into()),
        metrics_file: Some("/etc/credmon.prom".into()),
        read_dirs: vec!["/home".into()],
        ..inputs()
    });
    assert_eq!(plan.refused, ["/", "/etc", "/home"].map(PathBuf::from));
    assert!(plan.rules.iter().all(|r| !too_broad(&r.path)));
}

#[test]
fn features_by_abi() {
    assert!(landlock_features(None).is_empty());
    assert_eq!(landlock_features(Some(1)), ["filesystem rules"]);
    let v4 = landlock_features(Some(4));
    assert_eq!(v4.last(), Some(&"TCP connect and bind rules"));
    assert_eq!(landlock_features(Some(7)).len(), 6);
}

#[test]
fn describe_lists_every_layer() {
    let plan = plan::plan(&inputs());
    let text = describe(&plan, Some(7));
    assert!(text.starts_with("confinement: no_new_privs; seccomp metadata filter; capabilities CAP_DAC_OVERRIDE; Landlock ABI 7: filesystem rules"));
    assert!(text.contains("confinement TCP connect: 53 88 750 8200 9618\n"));
    let none = describe(&plan, None);
    assert!(none.contains("Landlock unavailable (no Landlock"));
    assert!(!none.contains("TCP connect"));
}

#[test]
fn seccomp_programs_build() {
    let plain = seccomp::program(&[0], &[0]).unwrap();
    let with_condor = seccomp::program(&[0, 999], &[0, 995]).unwrap();
    assert!(!plain.is_empty());
    assert!(with_condor.len() > plain.len());
}

#[test]
fn the_credmons_modes_are_not_forbidden() {
    let forbidden = |mode: u32| seccomp::FORBIDDEN_MODES.iter().any(|m| mode & m == *m);
    for mode in [0o400, 0o600, 0o644, 0o700, 0o2700] {
        assert!(!forbidden(mode), "{mode:o}");
    }
    for mode in [0o4755, 0o666, 0o646, 0o2755, 0o2711, 0o620] {
        assert!(forbidden(mode), "{mode:o}");
    }
}
