//! The starter's view: a reader that opens every live credential's `.use`
//! several times a second and judges what it finds, and a watcher that
//! times each new credential's first `.use` (every 2 ms).
//!
//! A read is *bad* when the `.use` of a live credential is missing or
//! expired; it carries `lost`, the time the credential lost its usable
//! `.use`: the token's `exp`, or for a missing file the last good read (or,
//! for a new credential that never had one, its store time + 1 s; reads
//! before that are not judged: a new credential not served yet is judged
//! like the watcher's figure, against every kind of trouble). Whether a bad read is excused is decided at
//! the end ([`super::report`]), when every trouble window is known.

use super::world::World;
use base64::Engine;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often each `.use` is read.
pub const READ_EVERY: Duration = Duration::from_millis(250);

/// A read that found no usable `.use`.
#[derive(Debug, Clone, Copy)]
pub struct BadRead {
    pub t: f64,
    pub id: usize,
    /// When the credential lost its usable `.use`.
    pub lost: f64,
    pub missing: bool,
    /// A new credential that never had a `.use` yet.
    pub new: bool,
}

/// What the reader and the watcher saw.
#[derive(Default)]
pub struct Seen {
    pub reads: u64,
    pub cycles: u64,
    /// The longest cycle over all live credentials, seconds.
    pub longest_cycle: f64,
    pub bad: Vec<BadRead>,
    /// Partial or malformed `.use` files: (time, id, length, first bytes).
    pub partial: Vec<(f64, usize, usize, String)>,
    /// A `.use` replaced by a token that expires sooner: (time, id, old exp, new exp).
    pub shorter: Vec<(f64, usize, i64, i64)>,
    /// Reads that failed otherwise: (time, id, error).
    pub errors: Vec<(f64, usize, String)>,
    /// A `.use` found again after its credential was deleted: (time, id, deleted at).
    pub resurrected: Vec<(f64, usize, f64)>,
    /// New credentials: (id, stored at, first `.use` after s, or `None` if deleted first).
    pub new_latency: Vec<(usize, f64, Option<f64>)>,
}

/// The `exp` of a `.use` that is a JWT and one newline, else `None`.
pub fn parse_use(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let jwt = text.strip_suffix('\n')?;
    let parts: Vec<&str> = jwt.split('.').collect();
    let b64 = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if parts.len() != 3 || !parts.iter().all(|p| b64(p)) {
        return None;
    }
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    v.get("exp")?.as_i64()
}

#[derive(Default, Clone, Copy)]
struct State {
    exp: Option<i64>,
    good_at: Option<f64>,
}

/// Reads every live `.use` every [`READ_EVERY`] until `stop`.
pub fn reader(world: Arc<World>, seen: Arc<std::sync::Mutex<Seen>>, stop: Arc<AtomicBool>) {
    let mut state: HashMap<usize, State> = HashMap::new();
    let mut deleted_checked: HashMap<usize, bool> = HashMap::new();
    while !stop.load(Ordering::SeqCst) {
        let t0 = world.clock.now();
        let live = world.live();
        let mut out = Seen::default();
        for (id, path) in &live {
            look(&world, *id, path, state.entry(*id).or_default(), &mut out);
        }
        resurrections(&world, &mut deleted_checked, &mut out);
        let took = world.clock.now() - t0;
        {
            let mut s = seen.lock().unwrap_or_else(|p| p.into_inner());
            s.reads += live.len() as u64;
            s.cycles += 1;
            s.longest_cycle = s.longest_cycle.max(took);
            s.bad.append(&mut out.bad);
            s.partial.append(&mut out.partial);
            s.shorter.append(&mut out.shorter);
            s.errors.append(&mut out.errors);
            s.resurrected.append(&mut out.resurrected);
        }
        let left = READ_EVERY.as_secs_f64() - took;
        if left > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(left));
        }
    }
}

/// One read of one credential's `.use`.
fn look(world: &World, id: usize, path: &Path, st: &mut State, out: &mut Seen) {
    let t = world.clock.now();
    let read = std::fs::read(path);
    // A credential deleted while it was read is not judged.
    if !world.is_live(id) {
        return;
    }
    let created = world.creds().get(id).map_or(0.0, |c| c.created);
    match read {
        Ok(bytes) => match parse_use(&bytes) {
            Some(exp) => {
                if let Some(old) = st.exp
                    && exp < old
                {
                    out.shorter.push((t, id, old, exp));
                }
                st.exp = Some(exp);
                let lost = world.clock.of_wall(exp);
                if lost <= t {
                    out.bad.push(BadRead {
                        t,
                        id,
                        lost,
                        missing: false,
                        new: false,
                    });
                } else {
                    st.good_at = Some(t);
                }
            }
            None => {
                let head = String::from_utf8_lossy(&bytes[..bytes.len().min(12)]).into_owned();
                out.partial.push((t, id, bytes.len(), head));
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let lost = st.good_at.unwrap_or(created + 1.0);
            if t > lost {
                out.bad.push(BadRead {
                    t,
                    id,
                    lost,
                    missing: true,
                    new: st.good_at.is_none(),
                });
            }
        }
        Err(e) => out.errors.push((t, id, e.to_string())),
    }
}

/// A deleted credential's `.use` must stay gone: each is looked at for ten
/// minutes after its deletion, and reported once if it comes back.
fn resurrections(world: &World, checked: &mut HashMap<usize, bool>, out: &mut Seen) {
    let now = world.clock.now();
    let gone: Vec<(usize, f64, std::path::PathBuf)> = world
        .creds()
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let d = c.deleted?;
            (now - d < 600.0 && !c.live).then(|| (i, d, world.use_path(c)))
        })
        .collect();
    for (id, deleted, path) in gone {
        if checked.get(&id).copied().unwrap_or(false) {
            continue;
        }
        if path.exists() {
            checked.insert(id, true);
            out.resurrected.push((now, id, deleted));
        }
    }
}

/// Times each new credential's first usable `.use`, looking every 2 ms.
pub fn watcher(world: Arc<World>, seen: Arc<std::sync::Mutex<Seen>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        let pending = world
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (id, stored) in pending {
            let (path, live) = {
                let creds = world.creds();
                let Some(c) = creds.get(id) else { continue };
                (world.use_path(c), c.live)
            };
            let now = world.clock.now();
            let done = if !live {
                Some(None)
            } else {
                std::fs::read(&path)
                    .ok()
                    .and_then(|b| parse_use(&b))
                    .map(|_| Some(now - stored))
            };
            if let Some(latency) = done {
                world
                    .pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .retain(|(i, _)| *i != id);
                seen.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .new_latency
                    .push((id, stored, latency));
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
