//! `robot-credmon check` output read by a parser of the Monitoring Plugins
//! output format (development guidelines: "Plugin Output", "Performance
//! data", "Threshold and ranges"), written here independently of the code
//! under test: one line `STATE - text | 'label'=value[UOM];[warn];[crit];[min];[max] ...`,
//! the exit code matching the state, and the state matching the thresholds
//! the performance data declares.

use crate::cmd::unsigned_jwt;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_robot-credmon");

/// A range as the guidelines define it: `[@][start:][end]`, `~` for minus infinity.
#[derive(Debug, PartialEq)]
struct PluginRange {
    start: f64,
    end: f64,
    inside: bool,
}

impl PluginRange {
    fn parse(text: &str) -> Result<Self, String> {
        let (inside, body) = match text.strip_prefix('@') {
            Some(b) => (true, b),
            None => (false, text),
        };
        let num = |s: &str| {
            s.parse::<f64>()
                .map_err(|_| format!("bad number {s:?} in range {text:?}"))
        };
        let (start, end) = match body.split_once(':') {
            None => (0.0, num(body)?),
            Some((s, e)) => (
                if s == "~" {
                    f64::NEG_INFINITY
                } else if s.is_empty() {
                    0.0
                } else {
                    num(s)?
                },
                if e.is_empty() { f64::INFINITY } else { num(e)? },
            ),
        };
        if start > end {
            return Err(format!("range {text:?} starts after it ends"));
        }
        Ok(PluginRange { start, end, inside })
    }

    /// Whether `v` raises the alert: outside the range, or inside it with `@`.
    fn alerts(&self, v: f64) -> bool {
        let within = v >= self.start && v <= self.end;
        within == self.inside
    }
}

#[derive(Debug)]
struct Perf {
    label: String,
    value: f64,
    uom: String,
    warn: Option<PluginRange>,
    crit: Option<PluginRange>,
    min: Option<f64>,
}

#[derive(Debug)]
struct PluginOutput {
    state: String,
    text: String,
    perf: Vec<Perf>,
}

const UOMS: [&str; 10] = ["", "s", "ms", "us", "%", "B", "KB", "MB", "TB", "c"];

fn parse_output(stdout: &str) -> Result<PluginOutput, String> {
    let lines: Vec<&str> = stdout.lines().collect();
    if lines.len() != 1 {
        return Err(format!(
            "want exactly one line, got {}: {stdout:?}",
            lines.len()
        ));
    }
    let line = lines[0];
    let (head, perfdata) = match line.split_once(" | ") {
        Some((h, p)) => (h, p),
        None if line.contains('|') => return Err(format!("stray '|' in {line:?}")),
        None => (line, ""),
    };
    let (state, text) = head
        .split_once(" - ")
        .ok_or_else(|| format!("no 'STATE - text' in {line:?}"))?;
    if !["OK", "WARNING", "CRITICAL", "UNKNOWN"].contains(&state) {
        return Err(format!("unknown state {state:?}"));
    }
    if text.trim().is_empty() {
        return Err("empty text".into());
    }
    let mut perf = Vec::new();
    for item in perfdata.split(' ').filter(|s| !s.is_empty()) {
        let (label, rest) = item
            .split_once('=')
            .ok_or_else(|| format!("perfdata item without '=': {item:?}"))?;
        let label = match label.strip_prefix('\'') {
            Some(l) => l
                .strip_suffix('\'')
                .ok_or_else(|| format!("unterminated quoted label in {item:?}"))?,
            None => label,
        };
        if label.is_empty() || label.contains(['\'', '=']) {
            return Err(format!("bad label {label:?}"));
        }
        let fields: Vec<&str> = rest.split(';').collect();
        if fields.len() > 5 {
            return Err(format!("too many fields in {item:?}"));
        }
        let v = fields[0];
        let digits_end = v
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
            .unwrap_or(v.len());
        let (value, uom) = v.split_at(digits_end);
        let value: f64 = value
            .parse()
            .map_err(|_| format!("bad value in {item:?}"))?;
        if !UOMS.contains(&uom) {
            return Err(format!("unit {uom:?} is not one of {UOMS:?}"));
        }
        let range = |i: usize| -> Result<Option<PluginRange>, String> {
            match fields.get(i) {
                None | Some(&"") => Ok(None),
                Some(t) => PluginRange::parse(t).map(Some),
            }
        };
        let min = match fields.get(3) {
            None | Some(&"") => None,
            Some(t) => Some(
                t.parse::<f64>()
                    .map_err(|_| format!("bad min in {item:?}"))?,
            ),
        };
        perf.push(Perf {
            label: label.to_owned(),
            value,
            uom: uom.to_owned(),
            warn: range(1)?,
            crit: range(2)?,
            min,
        });
    }
    Ok(PluginOutput {
        state: state.to_owned(),
        text: text.to_owned(),
        perf,
    })
}

fn exit_code_of(state: &str) -> i32 {
    match state {
        "OK" => 0,
        "WARNING" => 1,
        "CRITICAL" => 2,
        _ => 3,
    }
}

/// Runs `check` and parses its output; asserts the exit code matches the state.
fn check(args: &[&str]) -> PluginOutput {
    let out = Command::new(BIN)
        .arg("check")
        .args(args)
        .env_remove("BEARER_TOKEN_FILE")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let parsed = parse_output(&stdout).unwrap_or_else(|e| panic!("check {args:?}: {e}"));
    assert_eq!(
        out.status.code(),
        Some(exit_code_of(&parsed.state)),
        "exit code of {stdout:?}"
    );
    parsed
}

fn token_file(dir: &Path, name: &str, left: i64) -> String {
    let tok = unsigned_jwt(&serde_json::json!({
        "sub": "robot/host.example",
        "iss": "https://cilogon.org/igwn",
        "exp": crate::cmd::now() + left,
    }));
    let p = dir.join(name);
    std::fs::write(&p, format!("{tok}\n")).unwrap_or_else(|e| panic!("write: {e}"));
    p.display().to_string()
}

#[test]
fn the_parser_reads_the_guidelines_examples() {
    let o =
        parse_output("OK - fine | time=0.05s;1;2;0 'size'=5MB;;;0;10 load=1.5;@0:2;~:5").unwrap();
    assert_eq!(o.perf.len(), 3);
    assert_eq!(
        PluginRange::parse("10").unwrap(),
        PluginRange {
            start: 0.0,
            end: 10.0,
            inside: false
        }
    );
    assert!(PluginRange::parse("10:").unwrap().alerts(9.0));
    assert!(!PluginRange::parse("10:").unwrap().alerts(10.0));
    assert!(PluginRange::parse("~:10").unwrap().alerts(11.0));
    assert!(PluginRange::parse("@10:20").unwrap().alerts(15.0));
    assert!(parse_output("").is_err());
    assert!(parse_output("OK - a\nb").is_err());
    assert!(parse_output("FINE - a").is_err());
    assert!(parse_output("OK - a | x=1q").is_err());
}

#[test]
fn token_check_states_follow_the_declared_thresholds() {
    let t = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    // (seconds left, -w, -c)
    let cases: [(i64, &str, &str); 9] = [
        (7990, "3600:", "1800:"),
        (2699, "3600:", "1800:"),
        (1000, "3600:", "1800:"),
        (-300, "3600:", "1800:"),
        (7990, "1h", "30m"),
        (3000, "3600", "1800"),
        (7990, "3h:", "1h:"),
        (7990, "@7000:8000", "1800:"),
        (7990, "~:1000", "1800:"),
    ];
    for (i, (left, w, c)) in cases.into_iter().enumerate() {
        let file = token_file(t.path(), &format!("bt{i}"), left);
        let o = check(&["-w", w, "-c", c, &file]);
        let remaining = o
            .perf
            .iter()
            .find(|p| p.label == "remaining")
            .unwrap_or_else(|| panic!("no remaining perfdata: {o:?}"));
        assert_eq!(remaining.uom, "s");
        assert_eq!(remaining.min, Some(0.0));
        assert!((remaining.value - left as f64).abs() <= 2.0, "{o:?}");
        let warn = remaining
            .warn
            .as_ref()
            .unwrap_or_else(|| panic!("no warn range: {o:?}"));
        let crit = remaining
            .crit
            .as_ref()
            .unwrap_or_else(|| panic!("no crit range: {o:?}"));
        let want = if crit.alerts(remaining.value) {
            "CRITICAL"
        } else if warn.alerts(remaining.value) {
            "WARNING"
        } else {
            "OK"
        };
        assert_eq!(o.state, want, "-w {w} -c {c}, {left}s left: {o:?}");
    }
    // The example of the issue, exactly.
    let file = token_file(t.path(), "bt_exact", 2699);
    let o = check(&["-w", "3600:", "-c", "1800:", &file]);
    let r = &o.perf[0];
    assert_eq!(
        r.warn,
        Some(PluginRange {
            start: 3600.0,
            end: f64::INFINITY,
            inside: false
        })
    );
    assert_eq!(
        r.crit,
        Some(PluginRange {
            start: 1800.0,
            end: f64::INFINITY,
            inside: false
        })
    );
    assert_eq!(o.state, "WARNING");
}

#[test]
fn unknown_on_usage_errors_and_unreadable_input() {
    let t = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let file = token_file(t.path(), "bt", 7990);
    let missing = t.path().join("missing").display().to_string();
    for args in [
        vec!["-w", "soon", file.as_str()],
        vec!["--no-such-option"],
        vec!["-t", "x", file.as_str()],
        vec!["-w", "20:10", file.as_str()],
        vec![missing.as_str()],
        vec!["-w", "10m", "-c", "1h", file.as_str()],
    ] {
        let o = check(&args);
        assert_eq!(o.state, "UNKNOWN", "{args:?}: {o:?}");
        assert!(o.perf.is_empty(), "{args:?}: {o:?}");
    }
    // A generous timeout changes nothing; the timeout itself is in check::tests.
    let o = check(&["-t", "30", &file]);
    assert_eq!(o.state, "OK", "{o:?}");
}

#[test]
fn credmon_check_perfdata_parses() {
    let t = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dir = t.path().join("creds");
    std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir: {e}"));
    // No pid file: CRITICAL, and the perfdata still parses.
    std::fs::write(dir.join("CREDMON_COMPLETE"), "").unwrap_or_else(|e| panic!("write: {e}"));
    let o = check(&["--credmon", &dir.display().to_string()]);
    assert_eq!(o.state, "CRITICAL", "{o:?}");
    let last = o
        .perf
        .iter()
        .find(|p| p.label == "last_pass")
        .unwrap_or_else(|| panic!("no last_pass: {o:?}"));
    assert_eq!(
        last.crit,
        Some(PluginRange {
            start: 0.0,
            end: 600.0,
            inside: false
        })
    );
    assert!(o.text.contains("no pid file"), "{o:?}");
}
