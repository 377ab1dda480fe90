//! The credmon's confinement ([`crate::confine`]): which paths, ports and
//! capabilities its configuration needs, found on this host at start-up
//! (Kerberos profiles and what they include, `condor_config_val` and the
//! configuration files it reads, the master's port), then applied once.

use super::config::Config;
use crate::confine::{self, Inputs, Plan};
use crate::env::Env;
use crate::process::{Tool, find_program};
use crate::vault::tls::TrustSources;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How many Kerberos profile files are followed through `include`s at most.
const MAX_KRB5_FILES: usize = 64;

/// How long `condor_config_val -config` may take.
const CONFIG_VAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Proxy variables whose ports the Vault client may connect to.
const PROXY_VARS: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The paths, ports and duties of the credmon configured by `cfg` in `env`.
pub fn inputs(cfg: &Config, env: &Env) -> Inputs {
    let mut i = Inputs {
        cred_dir: cfg.cred_dir.clone(),
        log_file: cfg.log_file.clone(),
        metrics_file: cfg.metrics_file.clone(),
        // Provisioning may be switched on by a SIGHUP; it needs the keytab
        // directory, which (like every path) is confined at start-up.
        provisions: cfg.keytab_dir.is_some(),
        ..Inputs::default()
    };
    i.read_dirs.extend(cfg.keytab_dir.clone());
    if i.provisions {
        i.condor = super::refresh::keytab::condor_ids();
    }
    let trust = TrustSources::with_defaults(cfg.cafile.clone(), cfg.capath.clone(), |k| env.var(k));
    i.read_files.extend(trust.cafile);
    i.read_dirs.extend(trust.capath);
    krb5(&env.var("KRB5_CONFIG").unwrap_or_default(), &mut i);
    condor_config(env, &mut i);
    i.tcp_ports.extend(&cfg.allowed_ports);
    i.tcp_ports.extend(
        cfg.provision
            .iter()
            .filter_map(|p| p.server.rsplit_once(':'))
            .filter_map(|(_, port)| port.parse::<u16>().ok()),
    );
    i.tcp_ports.extend(crate::condor::master_port());
    i.tcp_ports.extend(
        PROXY_VARS
            .iter()
            .filter_map(|v| env.var(v))
            .filter_map(|u| confine::plan::proxy_port(&u)),
    );
    i
}

/// The Kerberos profiles of `krb5_config` (`$KRB5_CONFIG`, else `/etc/krb5.conf`),
/// every file and directory they include, and their KDCs' ports.
fn krb5(krb5_config: &str, i: &mut Inputs) {
    let mut todo: Vec<PathBuf> = krb5_config
        .split(':')
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect();
    if todo.is_empty() {
        todo.push(PathBuf::from("/etc/krb5.conf"));
    }
    let mut seen = BTreeSet::new();
    while let Some(file) = todo.pop() {
        if seen.len() >= MAX_KRB5_FILES || !seen.insert(file.clone()) {
            continue;
        }
        i.read_files.push(file.clone());
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let refs = confine::plan::krb5_refs(&text);
        i.tcp_ports.extend(refs.ports);
        todo.extend(refs.files);
        for dir in refs.dirs {
            todo.extend(krb5_dir(&dir));
            i.read_dirs.push(dir);
        }
    }
}

/// The files of an `includedir` the Kerberos library reads.
fn krb5_dir(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(confine::plan::krb5_included)
        })
        .map(|e| e.path())
        .collect()
}

/// `condor_config_val` (run again on SIGHUP), the files it reads
/// (`-config`) and HTCondor's `LOCAL_CONFIG_DIR`.
fn condor_config(env: &Env, i: &mut Inputs) {
    let path_var = env.path_var();
    let Some(program) = find_program("condor_config_val", path_var.as_deref()) else {
        return;
    };
    let run = |args: &[&str]| -> Option<String> {
        Tool::new(
            &program.display().to_string(),
            args.iter().copied(),
            CONFIG_VAL_TIMEOUT,
            path_var.clone(),
        )
        .run()
        .ok()
        .filter(|f| f.success())
        .map(|f| f.stdout)
    };
    if let Some(text) = run(&["-config"]) {
        i.read_files
            .extend(confine::plan::condor_config_sources(&text));
    }
    if let Some(dirs) = run(&["LOCAL_CONFIG_DIR"]) {
        i.read_dirs.extend(
            crate::credmon::config::knobs::list(&dirs)
                .into_iter()
                .map(PathBuf::from),
        );
    }
    if let Ok(real) = std::fs::canonicalize(&program)
        && real != program
    {
        i.programs.push(real);
    }
    i.programs.push(program);
}

/// The plan for `cfg` in `env`.
pub fn plan(cfg: &Config, env: &Env) -> Plan {
    confine::plan::plan(&inputs(cfg, env))
}

/// Confines the credmon when `ROBOT_CREDMON_CONFINE` is on (logging what
/// was enabled), and arms the test hook of debug builds.
pub fn confine(cfg: &Config, env: &Env) {
    confine::arm_test_escape(env.var("ROBOT_CREDMON_TEST_ESCAPE"));
    if !cfg.confine {
        log::warn!(
            "confinement off (ROBOT_CREDMON_CONFINE = False): the credmon keeps every root privilege"
        );
        return;
    }
    let inputs = inputs(cfg, env);
    if inputs.provisions && inputs.condor.is_none() {
        log::warn!("no user 'condor': user directories made for keytab robots will be root's");
    }
    let plan = confine::plan::plan(&inputs);
    confine::apply(&plan).log(&plan);
}

/// `--check-config`: what confinement will be enabled here.
pub fn describe(cfg: &Config, env: &Env) -> String {
    if !cfg.confine {
        return "confinement: off (ROBOT_CREDMON_CONFINE = False)\n".into();
    }
    confine::describe(&plan(cfg, env), confine::kernel_abi())
}
