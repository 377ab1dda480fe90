//! Vault servers as the daemon sees them. A server that fails for its own
//! reasons (unreachable, 429, 502-504) is marked failing: its credentials
//! wait for it, held by the scheduler, instead of each trying again on its
//! own backoff, and only one of them at a time goes out as a probe, on the
//! server's backoff (no sooner than a `Retry-After` it gave, capped at
//! [`RETRY_AFTER_CAP`]). The first answer from the server releases every
//! credential waiting for it at once; the in-flight limit still bounds how
//! many requests follow. So an outage of any length costs about one request
//! per probe interval, and recovery is noticed within [`PROBE_CAP`].
//!
//! Pure: no clock, no threads; every call takes the time.

use crate::backoff::Backoff;
use crate::credmon::refresh::Key;
use crate::env::Mono;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The first probe of a failing server comes this long after the failure.
pub const PROBE_BASE: Duration = Duration::from_secs(1);
/// The longest time between probes: recovery is noticed within it.
pub const PROBE_CAP: Duration = Duration::from_secs(15);
/// The longest pause a server's `Retry-After` can ask of us.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(3600);
/// The credential directory's file system, tracked like a server: writes
/// that fail for its own reasons (full, read-only, I/O errors) wait for it,
/// and the first write that succeeds releases them.
pub const FILE_SYSTEM: &str = "the file system";
/// The KDC, tracked like a server: keytab logins that GSSAPI cannot make
/// (no KDC answers, a stale key) wait for it, and the next login that gets a
/// ticket releases them.
pub const KDC: &str = "the KDC";

/// A failing server.
#[derive(Debug, Clone)]
struct Trouble {
    /// Failures since it last answered.
    failures: u32,
    /// When the next probe may go out.
    probe_at: Mono,
    /// The credential out as the probe, if one is.
    probe: Option<Key>,
    /// Credentials waiting for the server, oldest first.
    held: Vec<Key>,
    /// No request before this: the server's own `Retry-After`.
    asked_until: Mono,
}

/// The health of every Vault server; servers not listed are healthy.
#[derive(Debug, Default)]
pub struct Servers {
    failing: BTreeMap<Arc<str>, Trouble>,
}

impl Servers {
    /// Whether `server` is failing.
    pub fn is_failing(&self, server: &str) -> bool {
        self.failing.contains_key(server)
    }

    /// Whether `key` may ask `server` now: it is healthy, or `key` is its probe.
    pub fn may_ask(&self, server: &str, key: &Key) -> bool {
        self.failing
            .get(server)
            .is_none_or(|t| t.probe.as_ref() == Some(key))
    }

    /// Whether `key`, which a submitter is waiting for (the credd's SIGHUP
    /// for a new credential), may ask `server` now: as [`Servers::may_ask`],
    /// and also when no probe is out and the server asked for no pause that
    /// still runs; it then goes out as the probe at once instead of waiting
    /// for the probe's turn (up to [`PROBE_CAP`] after Vault came back).
    pub fn may_ask_waiting(&mut self, server: &str, key: &Key, now: Mono) -> bool {
        let Some(t) = self.failing.get_mut(server) else {
            return true;
        };
        if t.probe.as_ref() == Some(key) {
            return true;
        }
        if t.probe.is_some() || now < t.asked_until {
            return false;
        }
        t.held.retain(|k| k != key);
        t.probe = Some(key.clone());
        true
    }

    /// How many servers are failing.
    pub fn failing_count(&self) -> usize {
        self.failing.len()
    }

    /// `key`'s request to `server` failed for the server's own reasons at
    /// `now` (`retry_after`: the server's own wait). The server is failing
    /// from now on; the next probe waits for the server's backoff (`jitter`
    /// in `[0, 1]`) and its `Retry-After`. The credential is held.
    pub fn failed(
        &mut self,
        server: &Arc<str>,
        key: &Key,
        retry_after: Option<Duration>,
        now: Mono,
        jitter: f64,
    ) {
        let entering = !self.failing.contains_key(&**server);
        let t = self.failing.entry(server.clone()).or_insert(Trouble {
            failures: 0,
            probe_at: now,
            probe: None,
            held: Vec::new(),
            asked_until: now,
        });
        let asked = retry_after.map(|r| r.min(RETRY_AFTER_CAP));
        if let Some(a) = asked {
            t.asked_until = t.asked_until.max(now + a);
        }
        if entering || t.probe.as_ref() == Some(key) {
            // The first failure, or the probe's: the next probe after the
            // server's backoff, and no sooner than it asked.
            let backoff = Backoff {
                base: PROBE_BASE,
                cap: PROBE_CAP,
            }
            .delay(t.failures, jitter);
            t.failures = t.failures.saturating_add(1);
            t.probe = None;
            t.probe_at = now + asked.map_or(backoff, |a| a.max(backoff));
        } else if let Some(a) = asked {
            // A request already in flight met the trouble too: only a longer
            // wait the server asked for moves the probe.
            t.probe_at = t.probe_at.max(now + a);
        }
        if !t.held.contains(key) {
            t.held.push(key.clone());
        }
    }

    /// `server` answered at last: every credential waiting for it, to queue
    /// again at once (the caller skips those that changed meanwhile).
    pub fn answered(&mut self, server: &str) -> Vec<Key> {
        self.failing
            .remove(server)
            .map(|t| t.held)
            .unwrap_or_default()
    }

    /// Probes due at `now`: for each failing server whose probe time has
    /// come and with no probe out, the credentials to try, oldest first;
    /// `release` queues one and says whether it could (a credential that
    /// changed or went is skipped). At most one probe per server is out.
    pub fn probe(&mut self, now: Mono, mut release: impl FnMut(&Key) -> bool) {
        for t in self.failing.values_mut() {
            if t.probe.is_some() || t.probe_at > now {
                continue;
            }
            while !t.held.is_empty() {
                let key = t.held.remove(0);
                if release(&key) {
                    t.probe = Some(key);
                    break;
                }
            }
        }
    }

    /// A job on `key` ended without meeting its server's trouble again (it
    /// got an answer, or never reached the server): if it was a probe, the
    /// next one may go out.
    pub fn ended(&mut self, key: &Key) {
        for t in self.failing.values_mut() {
            if t.probe.as_ref() == Some(key) {
                t.probe = None;
            }
        }
    }

    /// Forgets a credential that is gone or no longer waits (its `.top` changed).
    pub fn forget(&mut self, key: &Key) {
        for t in self.failing.values_mut() {
            t.held.retain(|k| k != key);
            if t.probe.as_ref() == Some(key) {
                t.probe = None;
            }
        }
    }

    /// When the next probe may go out (`None`: no failing server waits for one).
    pub fn next_probe(&self) -> Option<Mono> {
        self.failing
            .values()
            .filter(|t| t.probe.is_none() && !t.held.is_empty())
            .map(|t| t.probe_at)
            .min()
    }

    /// How many credentials wait for a server.
    pub fn held(&self) -> usize {
        self.failing.values().map(|t| t.held.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn t(d: Duration) -> Mono {
        Mono::ZERO + d
    }

    fn k(n: &str) -> Key {
        Key::new(n, "igwn")
    }

    #[test]
    fn only_the_probe_may_ask_a_failing_server() {
        let v: Arc<str> = "vault:8200".into();
        let mut s = Servers::default();
        assert!(s.may_ask("vault:8200", &k("a")), "healthy");
        s.failed(&v, &k("a"), None, t(S), 1.0);
        s.failed(&v, &k("b"), None, t(S), 1.0);
        // (credential, may ask vault:8200, may ask another server)
        let before_probe = [("a", false, true), ("b", false, true), ("c", false, true)];
        for (key, vault, other) in before_probe {
            assert_eq!(s.may_ask("vault:8200", &k(key)), vault, "{key}");
            assert_eq!(s.may_ask("other:8200", &k(key)), other, "{key}");
        }
        s.probe(t(10 * S), |_| true);
        assert!(s.may_ask("vault:8200", &k("a")), "the probe");
        assert!(!s.may_ask("vault:8200", &k("b")));
        s.answered("vault:8200");
        assert!(s.may_ask("vault:8200", &k("b")), "released");
    }

    #[test]
    fn a_credential_someone_waits_for_probes_at_once_when_no_probe_is_out() {
        // Found by the chaos soak (seed 31): new credentials stored just
        // after Vault came back waited for the probe's turn, up to 9.9 s.
        let v: Arc<str> = "vault:8200".into();
        let mut s = Servers::default();
        s.failed(&v, &k("a"), None, t(S), 1.0);
        assert!(s.may_ask_waiting("other:8200", &k("n"), t(S)), "healthy");
        assert!(!s.may_ask("vault:8200", &k("b")), "routine: waits");
        assert!(
            s.may_ask_waiting("vault:8200", &k("n"), t(S)),
            "no probe out"
        );
        assert!(s.may_ask("vault:8200", &k("n")), "it is the probe");
        assert!(
            !s.may_ask_waiting("vault:8200", &k("m"), t(S)),
            "one probe at a time"
        );
        s.probe(t(60 * S), |_| true);
        assert_eq!(s.held(), 1, "the probe is not held twice: {s:?}");
        s.answered("vault:8200");
        // A server that asked for a pause is not asked before its end.
        s.failed(&v, &k("a"), Some(30 * S), t(100 * S), 1.0);
        assert!(!s.may_ask_waiting("vault:8200", &k("n"), t(129 * S)));
        assert!(s.may_ask_waiting("vault:8200", &k("n"), t(130 * S)));
    }

    #[test]
    fn an_outage_holds_everyone_and_the_first_answer_releases_them() {
        let v: Arc<str> = "vault:8200".into();
        let mut s = Servers::default();
        for n in ["a", "b", "c"] {
            s.failed(&v, &k(n), None, t(S), 1.0);
        }
        assert!(s.is_failing("vault:8200"));
        assert_eq!(s.held(), 3);
        // the first probe after the base delay; only one at a time
        assert_eq!(s.next_probe(), Some(t(2 * S)));
        let mut out = Vec::new();
        s.probe(t(S + S / 2), |k| {
            out.push(k.clone());
            true
        });
        assert!(out.is_empty(), "too early");
        s.probe(t(2 * S), |k| {
            out.push(k.clone());
            true
        });
        s.probe(t(2 * S), |k| {
            out.push(k.clone());
            true
        });
        assert_eq!(out, vec![k("a")]);
        assert_eq!(s.next_probe(), None, "a probe is out");
        // the probe fails: the next one after twice the delay (only the
        // first failure and the probes' count, not requests already in flight)
        s.failed(&v, &k("a"), None, t(3 * S), 1.0);
        assert_eq!(s.next_probe(), Some(t(3 * S + 2 * S)));
        // an answer releases all three
        let mut back = s.answered("vault:8200");
        back.sort_by_key(Key::to_string);
        assert_eq!(back, vec![k("a"), k("b"), k("c")]);
        assert!(!s.is_failing("vault:8200"));
        assert_eq!(s.next_probe(), None);
    }

    #[test]
    fn probes_back_off_to_their_cap() {
        let v: Arc<str> = "v:8200".into();
        let mut s = Servers::default();
        let mut now = t(S);
        for _ in 0..20 {
            s.failed(&v, &k("a"), None, now, 1.0);
            let next = s.next_probe().unwrap_or(now);
            assert!(next.since(now) <= PROBE_CAP);
            now = next;
            s.probe(now, |_| true);
        }
        assert_eq!(s.next_probe(), None);
        s.failed(&v, &k("a"), None, now, 1.0);
        assert_eq!(s.next_probe(), Some(now + PROBE_CAP));
    }

    #[test]
    fn retry_after_is_honoured_never_earlier_and_capped() {
        let v: Arc<str> = "v:8200".into();
        // (Retry-After, first probe after): at least what the server asked,
        // at least the backoff, at most the cap.
        for (asked, want) in [
            (None, S),
            (Some(5 * S), 5 * S),
            (Some(S / 10), S),
            (Some(86_400 * S), RETRY_AFTER_CAP),
        ] {
            let mut s = Servers::default();
            s.failed(&v, &k("a"), asked, Mono::ZERO, 1.0);
            assert_eq!(s.next_probe(), Some(t(want)), "{asked:?}");
        }
    }

    #[test]
    fn a_probe_that_changed_meanwhile_is_skipped() {
        let v: Arc<str> = "v:8200".into();
        let mut s = Servers::default();
        s.failed(&v, &k("gone"), None, Mono::ZERO, 0.0);
        s.failed(&v, &k("next"), None, Mono::ZERO, 0.0);
        let mut sent = Vec::new();
        s.probe(t(S), |key| {
            if key == &k("gone") {
                return false;
            }
            sent.push(key.clone());
            true
        });
        assert_eq!(sent, vec![k("next")]);
        s.forget(&k("next"));
        assert_eq!(s.held(), 0);
    }

    #[test]
    fn a_probe_that_never_reached_the_server_frees_its_place() {
        let v: Arc<str> = "v:8200".into();
        let mut s = Servers::default();
        s.failed(&v, &k("a"), None, Mono::ZERO, 0.0);
        s.failed(&v, &k("b"), None, Mono::ZERO, 0.0);
        let mut sent = Vec::new();
        s.probe(t(S), |key| {
            sent.push(key.clone());
            true
        });
        assert_eq!(s.next_probe(), None, "a probe is out");
        // its .top was replaced, say: the job ended without a request
        s.ended(&sent[0]);
        assert_eq!(s.next_probe(), Some(t(S / 2)));
        s.probe(t(S), |key| {
            sent.push(key.clone());
            true
        });
        assert_eq!(sent, vec![k("a"), k("b")]);
    }
}
