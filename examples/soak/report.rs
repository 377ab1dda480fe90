//! The figures, from what the reader, the watcher, condor_master's part and
//! the Vault saw, judged against the trouble windows.
//!
//! A bad read (no usable `.use` of a live credential, at time `t`, the
//! credential having lost its usable `.use` at `lost`) is *excused* when one
//! stretch of outage covers both `lost` and `t`: outages (a Vault fault
//! other than "slow", the credmon not running, a full disk) are merged
//! after each is extended by [`ALLOWANCE`] for recovery. That is the
//! issue's "an outage longer than its remaining life": the `.use` had
//! `lost - start` left when the outage began, and the outage (plus the
//! allowance) lasted longer. The strict figure uses no allowance.

use super::master::{Exit, Start};
use super::reader::Seen;
use super::world::{Cred, Trouble, Window};
use std::fmt::Write as _;

/// Time allowed after an outage for the credmon to notice and catch up:
/// its longest probe interval (15 s) plus 5 s.
pub const ALLOWANCE: f64 = 20.0;

/// The goal a new credential's `.use` must meet while all is healthy.
pub const NEW_WITHIN: f64 = 1.0;

/// Outage windows (`all`: every trouble, a slow Vault too) extended by
/// `allowance` and merged.
pub fn merged(windows: &[Window], allowance: f64, all: bool) -> Vec<(f64, f64)> {
    let mut w: Vec<(f64, f64)> = windows
        .iter()
        .filter(|w| all || w.what.is_outage())
        .map(|w| (w.start, w.end + allowance))
        .collect();
    w.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (s, e) in w {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Whether one merged window holds both `lost` and `t`.
pub fn excused(m: &[(f64, f64)], lost: f64, t: f64) -> bool {
    m.iter()
        .any(|(s, e)| *s <= lost && lost <= *e && *s <= t && t <= *e)
}

/// Whether any trouble at all (slow Vault included) overlaps `[a, b]`.
pub fn troubled(windows: &[Window], a: f64, b: f64) -> bool {
    windows.iter().any(|w| w.start <= b && a <= w.end)
}

/// One Vault answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub t: f64,
    pub status: u16,
    /// The credential of a bearer read (`None`: another request).
    pub cred: Option<String>,
}

/// A minute's sample of the credmon: (minute, pid, uptime s, RSS kB).
pub type Sample = (u64, u32, f64, u64);

/// Everything the report is made from.
pub struct Inputs<'a> {
    pub seen: &'a Seen,
    pub windows: &'a [Window],
    pub creds: &'a [Cred],
    pub starts: &'a [Start],
    pub exits: &'a [Exit],
    pub answers: &'a [Answer],
    pub duration: f64,
    /// Per-minute samples of the credmon.
    pub rss: &'a [Sample],
}

fn q(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i]
}

/// The figures as text, the details of every finding, and whether every
/// goal was met.
pub fn report(i: &Inputs) -> (String, String, bool) {
    let mut out = String::new();
    let mut details = String::new();
    let loose = merged(i.windows, ALLOWANCE, false);
    let strict = merged(i.windows, 0.0, false);
    // A new credential not served yet: any trouble excuses it.
    let loose_new = merged(i.windows, ALLOWANCE, true);
    let strict_new = merged(i.windows, 0.0, true);
    let s = i.seen;
    let name = |id: usize| i.creds.get(id).map_or("?".into(), Cred::name);

    // Reads.
    let unexcused: Vec<_> = s
        .bad
        .iter()
        .filter(|b| !excused(if b.new { &loose_new } else { &loose }, b.lost, b.t))
        .collect();
    let strict_n = s
        .bad
        .iter()
        .filter(|b| !excused(if b.new { &strict_new } else { &strict }, b.lost, b.t))
        .count();
    let _ = writeln!(
        out,
        "reads of .use: {} in {} rounds (every {} ms; longest round {:.0} ms)",
        s.reads,
        s.cycles,
        super::reader::READ_EVERY.as_millis(),
        s.longest_cycle * 1000.0
    );
    let _ = writeln!(
        out,
        "reads that found no usable .use of a live credential: {} (missing {}, of which {} new ones not served yet; expired {})",
        s.bad.len(),
        s.bad.iter().filter(|b| b.missing).count(),
        s.bad.iter().filter(|b| b.new).count(),
        s.bad.iter().filter(|b| !b.missing).count()
    );
    let _ = writeln!(
        out,
        "  outside an outage longer than its remaining life (+{ALLOWANCE:.0} s to recover): {} (goal 0); with no allowance: {strict_n}",
        unexcused.len()
    );
    let mut episodes: Vec<(usize, f64, f64, f64, usize, bool)> = Vec::new();
    for b in &unexcused {
        match episodes
            .iter_mut()
            .find(|e| e.0 == b.id && (e.1 - b.lost).abs() < 1e-6)
        {
            Some(e) => {
                e.3 = b.t;
                e.4 += 1;
            }
            None => episodes.push((b.id, b.lost, b.t, b.t, 1, b.missing)),
        }
    }
    for (id, lost, first, last, n, missing) in &episodes {
        let _ = writeln!(
            details,
            "unexcused: {} {} at {lost:.1} s, seen {first:.1}..{last:.1} s ({n} reads); troubles near: {}",
            name(*id),
            if *missing { "missing since" } else { "expired" },
            near(i.windows, *lost)
        );
    }
    let _ = writeln!(
        out,
        "  credentials affected: {} unexcused episodes",
        episodes.len()
    );
    let _ = writeln!(
        out,
        "partial or malformed .use files read: {} (goal 0)",
        s.partial.len()
    );
    for (t, id, len, head) in &s.partial {
        let _ = writeln!(
            details,
            "partial: {} at {t:.1} s, {len} bytes, starts {head:?}",
            name(*id)
        );
    }
    let _ = writeln!(
        out,
        ".use replaced by a token that expires sooner: {} (goal 0)",
        s.shorter.len()
    );
    for (t, id, old, new) in &s.shorter {
        let _ = writeln!(
            details,
            "shorter: {} at {t:.1} s, exp {old} -> {new}",
            name(*id)
        );
    }
    let _ = writeln!(
        out,
        "deleted credentials whose .use came back: {}",
        s.resurrected.len()
    );
    for (t, id, d) in &s.resurrected {
        let _ = writeln!(
            details,
            "resurrected: {} deleted at {d:.1} s, .use found at {t:.1} s",
            name(*id)
        );
    }
    if !s.errors.is_empty() {
        let _ = writeln!(out, "other read errors: {}", s.errors.len());
    }

    // New credentials.
    let mut healthy = Vec::new();
    let mut late_healthy = Vec::new();
    let mut late_troubled = 0;
    let mut never = 0;
    for (id, stored, lat) in &s.new_latency {
        let Some(l) = lat else {
            never += 1;
            continue;
        };
        if troubled(i.windows, *stored, stored + NEW_WITHIN) {
            if *l > NEW_WITHIN {
                late_troubled += 1;
            }
        } else {
            healthy.push(*l);
            if *l > NEW_WITHIN {
                late_healthy.push((*id, *stored, *l));
            }
        }
    }
    let n_healthy = healthy.len();
    let _ = writeln!(
        out,
        "new credentials: {} ({n_healthy} while all was healthy: median {:.0} ms, 99th {:.0} ms, max {:.0} ms)",
        s.new_latency.len(),
        q(&mut healthy, 0.5) * 1000.0,
        q(&mut healthy, 0.99) * 1000.0,
        q(&mut healthy, 1.0) * 1000.0
    );
    let _ = writeln!(
        out,
        "  later than {NEW_WITHIN:.0} s while Vault was healthy: {} (goal 0); later during trouble: {late_troubled}; deleted before served: {never}",
        late_healthy.len()
    );
    for (id, stored, l) in &late_healthy {
        let _ = writeln!(
            details,
            "late new credential: {} stored at {stored:.1} s, .use after {l:.2} s; troubles near: {}",
            name(*id),
            near(i.windows, *stored)
        );
    }

    // The credmon's processes.
    let disk_full = |at: f64| {
        i.windows
            .iter()
            .any(|w| w.what == Trouble::DiskFull && w.start <= at && at <= w.end + 1.0)
    };
    let at_exec =
        |e: &Exit| e.status == "signal 1" && e.hup_after_exec_ms.is_some() && e.uptime < 1.0;
    let on_full_disk = |e: &Exit| e.status == "exit 1" && disk_full(e.at);
    let ours = |e: &Exit| !e.cause.is_empty();
    let unexpected: Vec<&Exit> = i
        .exits
        .iter()
        .filter(|e| !ours(e) && !at_exec(e) && !on_full_disk(e))
        .collect();
    let bad_term: Vec<&Exit> = i
        .exits
        .iter()
        .filter(|e| e.cause == "sigterm" && e.status != "exit 0")
        .collect();
    let mut pidf: Vec<f64> = i.starts.iter().filter_map(|s| s.pid_file_after).collect();
    let mut comp: Vec<f64> = i.starts.iter().filter_map(|s| s.complete_after).collect();
    let _ = writeln!(
        out,
        "credmon starts: {} ({} after kill -9, {} after SIGTERM); pid file after median {:.0} ms, max {:.0} ms; first CREDMON_COMPLETE after median {:.2} s, max {:.2} s",
        i.starts.len(),
        i.exits.iter().filter(|e| e.cause == "kill-9").count(),
        i.exits.iter().filter(|e| e.cause == "sigterm").count(),
        q(&mut pidf, 0.5) * 1000.0,
        q(&mut pidf, 1.0) * 1000.0,
        q(&mut comp, 0.5),
        q(&mut comp, 1.0)
    );
    let hup_sent: Vec<f64> = i
        .starts
        .iter()
        .filter_map(|s| s.hup_after_exec_ms)
        .collect();
    let mut killed: Vec<f64> = i
        .exits
        .iter()
        .filter(|e| at_exec(e))
        .filter_map(|e| e.hup_after_exec_ms)
        .collect();
    killed.sort_by(f64::total_cmp);
    let _ = writeln!(
        out,
        "  SIGHUP 0-10 ms after exec: {} sent, {} killed the credmon before main() blocked it (at {} ms)",
        hup_sent.len(),
        killed.len(),
        killed
            .iter()
            .map(|k| format!("{k:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        out,
        "  exit 1 at start on a full disk (no room for the pid file): {}",
        i.exits
            .iter()
            .filter(|e| !ours(e) && on_full_disk(e))
            .count()
    );
    let _ = writeln!(
        out,
        "  other exits we did not cause: {} (goal 0); SIGTERM not ending in exit 0: {} (goal 0)",
        unexpected.len(),
        bad_term.len()
    );
    for e in i
        .exits
        .iter()
        .filter(|e| !ours(e))
        .chain(bad_term.iter().copied())
    {
        let _ = writeln!(
            details,
            "credmon pid {} ended at {:.1} s after {:.3} s up: {} (cause: {}; SIGHUP after exec: {:?} ms; disk full: {})",
            e.pid,
            e.at,
            e.uptime,
            e.status,
            if e.cause.is_empty() { "none" } else { e.cause },
            e.hup_after_exec_ms,
            disk_full(e.at)
        );
    }

    // Troubles and Vault.
    write_troubles(&mut out, i);
    write_vault(&mut out, i, &loose);
    write_rss(&mut out, i.rss);

    let ok = unexcused.is_empty()
        && s.partial.is_empty()
        && s.shorter.is_empty()
        && late_healthy.is_empty()
        && unexpected.is_empty()
        && bad_term.is_empty();
    (out, details, ok)
}

/// The troubles around `t`, for a finding's context.
fn near(windows: &[Window], t: f64) -> String {
    let v: Vec<String> = windows
        .iter()
        .filter(|w| w.start - 120.0 <= t && t <= w.end + 120.0)
        .map(|w| format!("{} {:.1}..{:.1}", label(w.what), w.start, w.end))
        .collect();
    if v.is_empty() {
        "none within 120 s".into()
    } else {
        v.join(", ")
    }
}

fn label(t: Trouble) -> &'static str {
    match t {
        Trouble::Vault(k) => k,
        Trouble::CredmonDown => "credmon-down",
        Trouble::DiskFull => "disk-full",
    }
}

fn write_troubles(out: &mut String, i: &Inputs) {
    let mut kinds: Vec<&'static str> = i.windows.iter().map(|w| label(w.what)).collect();
    kinds.sort();
    kinds.dedup();
    let mut parts = Vec::new();
    for k in kinds {
        let ws: Vec<&Window> = i.windows.iter().filter(|w| label(w.what) == k).collect();
        let total: f64 = ws.iter().map(|w| w.end - w.start).sum();
        let longest = ws.iter().map(|w| w.end - w.start).fold(0.0, f64::max);
        parts.push(format!(
            "{k} {}x {:.0} s (longest {:.0} s)",
            ws.len(),
            total,
            longest
        ));
    }
    let outage: f64 = merged(i.windows, 0.0, false)
        .iter()
        .map(|(s, e)| e - s)
        .sum();
    let _ = writeln!(
        out,
        "troubles over {:.0} s: {}; some outage {:.0}% of the time",
        i.duration,
        parts.join(", "),
        100.0 * outage / i.duration.max(1.0)
    );
}

fn write_vault(out: &mut String, i: &Inputs, loose: &[(f64, f64)]) {
    let reads: Vec<&Answer> = i.answers.iter().filter(|a| a.cred.is_some()).collect();
    let quiet = reads
        .iter()
        .filter(|a| !loose.iter().any(|(s, e)| *s <= a.t && a.t <= *e))
        .count();
    let quiet_time: f64 = i.duration
        - loose
            .iter()
            .map(|(s, e)| e.min(i.duration) - s)
            .sum::<f64>();
    let _ = writeln!(
        out,
        "Vault bearer reads: {} ({:.1}/s outside outages and their recovery)",
        reads.len(),
        quiet as f64 / quiet_time.max(1.0)
    );
    let first_ok = |after: f64| {
        i.answers
            .iter()
            .find(|a| a.t > after && a.status == 200)
            .map_or("-".into(), |a| format!("{:.1} s", a.t - after))
    };
    for w in i
        .windows
        .iter()
        .filter(|w| w.what == Trouble::Vault("vault-429"))
    {
        let _ = writeln!(out, "  {}", burst_429(i, w));
    }
    for w in i.windows.iter().filter(|w| {
        matches!(
            w.what,
            Trouble::Vault("vault-503" | "vault-stall" | "vault-down")
        )
    }) {
        let during: Vec<&Answer> = i
            .answers
            .iter()
            .filter(|a| a.t >= w.start && a.t <= w.end)
            .collect();
        let mut per_second: std::collections::HashMap<i64, usize> =
            std::collections::HashMap::new();
        for a in &during {
            *per_second.entry(a.t.floor() as i64).or_default() += 1;
        }
        let _ = writeln!(
            out,
            "  {} at {:.0} s for {:.1} s: {} requests answered during it ({}; at most {} in one second); first 200 {} after it; {}",
            label(w.what),
            w.start,
            w.end - w.start,
            during.len(),
            per_credential(&during),
            per_second.values().max().copied().unwrap_or(0),
            first_ok(w.end),
            restored(i, w)
        );
    }
}

/// A 429 burst (`Retry-After: 5`): how many requests went out while a
/// Retry-After was pending (within 5 s of an earlier 429), the repeats
/// (requests of credentials already answered 429: probes, or a credential
/// whose `.top` changed) and their shortest wait, and when the credentials
/// answered 429 were served again.
fn burst_429(i: &Inputs, w: &Window) -> String {
    let during: Vec<&Answer> = i
        .answers
        .iter()
        .filter(|a| a.t >= w.start && a.t <= w.end + 0.5)
        .collect();
    let t429: Vec<f64> = during
        .iter()
        .filter(|a| a.status == 429)
        .map(|a| a.t)
        .collect();
    let early = during
        .iter()
        .filter(|a| t429.iter().any(|t| *t < a.t && a.t - t < 5.0))
        .count();
    let mut last: std::collections::HashMap<&str, f64> = std::collections::HashMap::new();
    let (mut repeats, mut shortest) = (0, f64::INFINITY);
    for a in &during {
        let Some(c) = a.cred.as_deref() else { continue };
        if let Some(prev) = last.get(c) {
            repeats += 1;
            shortest = shortest.min(a.t - prev);
        }
        if a.status == 429 {
            last.insert(c, a.t);
        }
    }
    let resumed = i
        .answers
        .iter()
        .find(|a| a.t > w.end && a.cred.as_deref().is_some_and(|c| last.contains_key(c)))
        .map_or("-".into(), |a| format!("{:.1} s", a.t - w.end));
    let answered: Vec<&Answer> = during.iter().filter(|a| a.status == 429).copied().collect();
    format!(
        "429 burst (Retry-After: 5) at {:.0} s for {:.1} s: {} answered 429 ({}); {early} requests sent within 5 s of an earlier 429; {repeats} repeats by credentials already answered 429 (shortest wait {}); those credentials served again {resumed} after the burst; {}",
        w.start,
        w.end - w.start,
        t429.len(),
        per_credential(&answered),
        if repeats == 0 {
            "-".into()
        } else {
            format!("{shortest:.1} s")
        },
        restored(i, w)
    )
}

/// How many credentials lost their `.use` in window `w` (or its recovery
/// allowance), and when the last of them had one again.
fn restored(i: &Inputs, w: &Window) -> String {
    let lost: Vec<&super::reader::BadRead> = i
        .seen
        .bad
        .iter()
        .filter(|b| !b.new && b.lost >= w.start && b.lost <= w.end + ALLOWANCE)
        .collect();
    let mut ids: Vec<usize> = lost.iter().map(|b| b.id).collect();
    ids.sort_unstable();
    ids.dedup();
    match lost.iter().map(|b| b.t).reduce(f64::max) {
        None => "no .use lost".into(),
        Some(last) => format!(
            "{} lost their .use, the last seen without one {:.1} s after it",
            ids.len(),
            last - w.end
        ),
    }
}

/// "N credentials, at most M requests each".
fn per_credential(a: &[&Answer]) -> String {
    let mut n: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for x in a {
        if let Some(c) = &x.cred {
            *n.entry(c.as_str()).or_default() += 1;
        }
    }
    format!(
        "{} credentials, at most {} requests each",
        n.len(),
        n.values().max().copied().unwrap_or(0)
    )
}

fn write_rss(out: &mut String, rss: &[Sample]) {
    let settled: Vec<u64> = rss.iter().filter(|r| r.2 >= 120.0).map(|r| r.3).collect();
    let (lo, hi) = settled
        .iter()
        .fold((u64::MAX, 0), |(l, h), v| (l.min(*v), h.max(*v)));
    if settled.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "credmon RSS (minute samples, process up >= 2 min): {:.1}..{:.1} MB over {} samples",
        lo as f64 / 1024.0,
        hi as f64 / 1024.0,
        settled.len()
    );
    // The longest-lived process: its RSS from its second minute to its last.
    let mut best: Option<(u32, Vec<&Sample>)> = None;
    for r in rss {
        let v: Vec<_> = rss.iter().filter(|x| x.1 == r.1).collect();
        if best.as_ref().is_none_or(|b| v.len() > b.1.len()) {
            best = Some((r.1, v));
        }
    }
    if let Some((pid, v)) = best
        && let (Some(a), Some(b)) = (v.iter().find(|x| x.2 >= 120.0), v.last())
    {
        let _ = writeln!(
            out,
            "  longest-lived credmon (pid {pid}, {:.0} s up): RSS {:.1} MB at {:.0} s up, {:.1} MB at {:.0} s up",
            b.2,
            a.3 as f64 / 1024.0,
            a.2,
            b.3 as f64 / 1024.0,
            b.2
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excuse_needs_one_window_over_both_times() {
        let w = |s, e| Window {
            what: Trouble::Vault("vault-down"),
            start: s,
            end: e,
        };
        let m = merged(&[w(100.0, 200.0), w(210.0, 230.0)], 20.0, false);
        assert_eq!(m, vec![(100.0, 250.0)]);
        assert!(excused(&m, 150.0, 240.0));
        assert!(!excused(&m, 90.0, 150.0), "expired before the outage");
        assert!(!excused(&m, 150.0, 260.0), "still expired after recovery");
    }
}
