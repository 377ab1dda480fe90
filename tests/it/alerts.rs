//! The shipped Prometheus alert rules (`dist/prometheus/robot-credmon.rules.yml`)
//! and Grafana dashboard (`dist/grafana/robot-credmon.json`), checked against
//! robot-credmon's own metrics: each scenario renders metrics files with the
//! crate's metrics code minute by minute, the files become promtool's input
//! series, and `promtool test rules` says which alerts fire.

use robot_credmon::metrics::{self, CredmonMetrics, GetMetrics, credmon_names, get_names};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const RULES: &str = "dist/prometheus/robot-credmon.rules.yml";
const DASHBOARD: &str = "dist/grafana/robot-credmon.json";
/// Minutes of series per scenario.
const MINUTES: u64 = 20;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// promtool, or a failure that says how to get it.
fn promtool() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("promtool"))
            .find(|f| f.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "promtool is not installed: apt-get install prometheus (scripts/install-deps.sh does)"
        )
    })
}

/// Promtool's clock starts at the epoch: minute `i` of a scenario.
fn at(minute: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(minute * 60)
}

/// Series name with labels (sorted), as promtool's input takes it.
fn series_name(s: &metrics::Sample, instance: &str) -> String {
    let mut labels: Vec<(String, String)> = s.labels.clone();
    labels.push(("instance".into(), instance.into()));
    labels.sort();
    let body: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{}{{{}}}", s.name, body.join(","))
}

/// The input series of one scenario: the metrics file written at each minute
/// (to disk and read back, as node_exporter reads it), under label `instance`.
struct Scenario {
    instance: &'static str,
    series: BTreeMap<String, Vec<Option<f64>>>,
}

impl Scenario {
    fn new(instance: &'static str) -> Self {
        Scenario {
            instance,
            series: BTreeMap::new(),
        }
    }

    fn add_file(&mut self, minute: u64, path: &Path) {
        let text = std::fs::read_to_string(path).unwrap();
        for s in metrics::parse(&text).unwrap() {
            let v = self
                .series
                .entry(series_name(&s, self.instance))
                .or_insert_with(|| vec![None; MINUTES as usize + 1]);
            v[minute as usize] = Some(s.value);
        }
    }

    fn yaml(&self) -> String {
        let mut out = String::new();
        for (name, values) in &self.series {
            let vals: Vec<String> = values
                .iter()
                .map(|v| v.map_or("_".to_owned(), |v| format!("{v}")))
                .collect();
            out += &format!(
                "      - series: '{name}'\n        values: '{}'\n",
                vals.join(" ")
            );
        }
        out
    }
}

/// A credmon scenario: `step(minute, metrics)` changes the metrics, then a
/// pass ends (unless it returns false: a stalled credmon writes nothing).
fn credmon(
    dir: &Path,
    instance: &'static str,
    mut step: impl FnMut(u64, &mut CredmonMetrics) -> bool,
) -> Scenario {
    let mut sc = Scenario::new(instance);
    let mut m = CredmonMetrics::default();
    let path = dir.join(format!("{instance}.prom"));
    for i in 0..=MINUTES {
        if step(i, &mut m) {
            m.write(&path, nix::unistd::geteuid().as_raw()).unwrap();
        }
        if path.exists() {
            sc.add_file(i, &path);
        }
    }
    sc
}

fn get(dir: &Path, instance: &'static str, mut step: impl FnMut(u64, &mut GetMetrics)) -> Scenario {
    let mut sc = Scenario::new(instance);
    let mut m = GetMetrics {
        user: "robot".into(),
        ..GetMetrics::default()
    };
    let path = dir.join(format!("{instance}.prom"));
    for i in 0..=MINUTES {
        step(i, &mut m);
        m.write(&path, nix::unistd::geteuid().as_raw()).unwrap();
        sc.add_file(i, &path);
    }
    sc
}

fn pass(m: &mut CredmonMetrics, minute: u64, expiry_in: u64) {
    m.end_pass(
        at(minute),
        BTreeMap::from([("fresh".to_owned(), 3)]),
        Some((minute * 60 + expiry_in) as i64),
    );
}

/// `(alertname, instance, extra labels)` expected to fire at the end.
type Firing = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
);

/// The annotations of `alert` in the rules file, its label templates filled in.
fn annotations(
    rules: &str,
    alert: &str,
    labels: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut lines = rules
        .lines()
        .skip_while(|l| l.trim() != format!("- alert: {alert}"));
    lines.next();
    let mut out = Vec::new();
    for l in lines.take_while(|l| !l.trim_start().starts_with("- alert:")) {
        let t = l.trim();
        for key in ["summary", "description"] {
            if let Some(v) = t.strip_prefix(&format!("{key}: ")) {
                let mut v = v.trim_matches('"').to_owned();
                for (k, val) in labels {
                    v = v.replace(&format!("{{{{ $labels.{k} }}}}"), val);
                }
                out.push((key.to_owned(), v));
            }
        }
    }
    out
}

fn severity(rules: &str, alert: &str) -> String {
    rules
        .lines()
        .skip_while(|l| l.trim() != format!("- alert: {alert}"))
        .find_map(|l| l.trim().strip_prefix("severity: "))
        .unwrap_or_else(|| panic!("{alert} has no severity"))
        .to_owned()
}

fn alert_tests(rules: &str, eval: u64, firing: &[Firing]) -> String {
    let names: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    let mut out = String::new();
    for name in names {
        out += &format!(
            "      - eval_time: {eval}m\n        alertname: {name}\n        exp_alerts:\n"
        );
        let mine: Vec<&Firing> = firing.iter().filter(|f| f.0 == name).collect();
        if mine.is_empty() {
            out.pop();
            out += " []\n";
            continue;
        }
        for (_, instance, extra) in mine {
            let mut labels: BTreeMap<String, String> = extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            labels.insert("instance".into(), instance.to_string());
            let mut all = labels.clone();
            all.insert("severity".into(), severity(rules, name));
            let json = |m: &BTreeMap<String, String>| serde_json::to_string(m).unwrap();
            let ann: BTreeMap<String, String> =
                annotations(rules, name, &labels).into_iter().collect();
            out += &format!(
                "          - exp_labels: {}\n            exp_annotations: {}\n",
                json(&all),
                json(&ann)
            );
        }
    }
    out
}

#[test]
fn shipped_alert_rules_fire_on_series_from_our_metrics_files() {
    let promtool = promtool();
    let rules_path = repo().join(RULES);
    let out = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&rules_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rules = std::fs::read_to_string(&rules_path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let scenarios = [
        // Passes every minute, tokens with two hours left, a refresh now and then: quiet.
        credmon(d, "healthy", |i, m| {
            if i % 5 == 0 {
                m.record_refresh(at(i), "age", Duration::from_millis(80));
            }
            pass(m, i, 7200);
            true
        }),
        // Killed after its first pass: the file stays as it was.
        credmon(d, "stalled", |i, m| {
            pass(m, i, 7200);
            i == 0
        }),
        // Stopped cleanly at minute 2: it wrote up 0.
        credmon(d, "stopped", |i, m| {
            if i >= 2 {
                m.stopped = true;
                return i == 2;
            }
            pass(m, i, 7200);
            true
        }),
        // A credential that needs a person.
        credmon(d, "needslogin", |i, m| {
            m.record_failure("needs_login", Duration::from_millis(50));
            m.needs_login = vec![("carol".into(), "igwn".into())];
            pass(m, i, 7200);
            true
        }),
        // Renewals fail: the soonest expiry comes near.
        credmon(d, "expiring", |i, m| {
            m.end_pass(
                at(i),
                BTreeMap::from([("failing".to_owned(), 1)]),
                Some(1500),
            );
            true
        }),
        // Vault answers 500 at every pass.
        credmon(d, "failing", |i, m| {
            m.record_failure("vault", Duration::from_millis(30));
            pass(m, i, 7200);
            true
        }),
        get(d, "get-ok", |i, m| {
            if i % 10 == 0 {
                m.record_success(at(i), Some((i * 60 + 3600) as i64), Some("expiring"));
            } else {
                m.record_success(at(i), m.expiry, None);
            }
        }),
        get(d, "get-needslogin", |i, m| {
            m.record_failure(at(i), "needs_login")
        }),
        get(d, "get-failing", |i, m| m.record_failure(at(i), "vault")),
    ];
    let firing: Vec<Firing> = vec![
        ("RobotCredmonPassTooOld", "stalled", vec![]),
        ("RobotCredmonPassTooOld", "stopped", vec![]),
        ("RobotCredmonDown", "stopped", vec![]),
        (
            "RobotCredentialNeedsLogin",
            "needslogin",
            vec![("user", "carol"), ("credential", "igwn")],
        ),
        ("RobotCredmonCredentialExpiringSoon", "expiring", vec![]),
        ("RobotCredmonRefreshesFailing", "failing", vec![]),
        (
            "RobotTokenNeedsLogin",
            "get-needslogin",
            vec![("user", "robot")],
        ),
        (
            "RobotTokenRefreshFailing",
            "get-failing",
            vec![("user", "robot")],
        ),
    ];
    let mut test = format!(
        "rule_files:\n  - {}\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n",
        rules_path.display()
    );
    for sc in &scenarios {
        test += &sc.yaml();
    }
    test += "    alert_rule_test:\n";
    test += &alert_tests(&rules, MINUTES, &firing);
    // Early on, nothing has lasted long enough to fire but the person-needed alerts.
    test += &alert_tests(
        &rules,
        1,
        &[
            (
                "RobotCredentialNeedsLogin",
                "needslogin",
                vec![("user", "carol"), ("credential", "igwn")],
            ),
            (
                "RobotTokenNeedsLogin",
                "get-needslogin",
                vec![("user", "robot")],
            ),
        ],
    );
    let test_path = d.join("robot-credmon.test.yml");
    std::fs::write(&test_path, &test).unwrap();
    let out = Command::new(&promtool)
        .args(["test", "rules"])
        .arg(&test_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool test rules:\n{}{}\n--- test file:\n{test}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_dashboard_uses_only_metrics_we_export() {
    use credmon_names as c;
    use get_names as g;
    let known: Vec<String> = [
        c::UP,
        c::LAST_PASS,
        c::LAST_SUCCESS,
        c::SOONEST_EXPIRY,
        c::CONSECUTIVE_FAILURES,
        c::CREDENTIALS,
        c::REFRESHES,
        c::FAILURES,
        c::NEEDING_LOGIN,
        c::NEEDS_LOGIN,
        g::LAST_RUN,
        g::LAST_SUCCESS,
        g::LAST_REFRESH,
        g::EXPIRY,
        g::CONSECUTIVE_FAILURES,
        g::REFRESHES,
        g::FAILURES,
        g::NEEDS_LOGIN,
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(["_bucket", "_sum", "_count"].map(|s| format!("{}{s}", c::REFRESH_DURATION)))
    .collect();
    let text = std::fs::read_to_string(repo().join(DASHBOARD)).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let panels = dash["panels"].as_array().unwrap();
    let mut exprs = 0;
    let mut used = std::collections::BTreeSet::new();
    for p in panels {
        for t in p["targets"].as_array().into_iter().flatten() {
            let e = t["expr"].as_str().unwrap();
            exprs += 1;
            for name in e
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("robot_credmon_"))
            {
                assert!(
                    known.iter().any(|k| k == name),
                    "{} uses unknown metric {name}",
                    p["title"]
                );
                used.insert(name.to_owned());
            }
        }
    }
    assert!(exprs >= 10, "{exprs} queries");
    for must in [
        c::UP,
        c::NEEDS_LOGIN,
        c::CREDENTIALS,
        g::EXPIRY,
        g::NEEDS_LOGIN,
    ] {
        assert!(used.contains(must), "the dashboard does not show {must}");
    }
    // The rules, too, use only what we export.
    let rules = std::fs::read_to_string(repo().join(RULES)).unwrap();
    for name in rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("robot_credmon_"))
    {
        assert!(
            known.iter().any(|k| k == name),
            "the rules use unknown metric {name}"
        );
    }
}
