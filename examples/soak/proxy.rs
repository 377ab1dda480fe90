//! A TCP relay in front of the test Vault, so that Vault can be "down" the
//! way a dead server is: new connections refused (the listener is closed),
//! open ones cut. TLS passes through untouched (the certificate names
//! `localhost`, whatever the port).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The relay; stopped (and its connections cut) when dropped.
pub struct Proxy {
    port: u16,
    shared: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

struct State {
    backend: u16,
    stop: AtomicBool,
    /// The listener while up; `None` while down.
    listener: Mutex<Option<TcpListener>>,
    /// Open relays (both sockets) by number, to cut them; a relay's pump
    /// removes it when it ends.
    open: Mutex<HashMap<u64, (TcpStream, TcpStream)>>,
    next: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and relays to `127.0.0.1:backend`.
    pub fn start(backend: u16) -> Result<Proxy, String> {
        let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("proxy bind: {e}"))?;
        l.set_nonblocking(true)
            .map_err(|e| format!("proxy nonblocking: {e}"))?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        let shared = Arc::new(State {
            backend,
            stop: AtomicBool::new(false),
            listener: Mutex::new(Some(l)),
            open: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        });
        let s = shared.clone();
        let accept = std::thread::Builder::new()
            .name("proxy-accept".into())
            .spawn(move || accept_loop(&s))
            .map_err(|e| e.to_string())?;
        Ok(Proxy {
            port,
            shared,
            accept: Some(accept),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Vault goes down: the listener closes, open connections are cut.
    pub fn down(&self) {
        lock(&self.shared.listener).take();
        cut_all(&self.shared);
    }

    /// Vault is back: listening again on the same port (retried for at most 10 s).
    pub fn up(&self) -> Result<(), String> {
        let mut l = lock(&self.shared.listener);
        if l.is_some() {
            return Ok(());
        }
        let t0 = Instant::now();
        loop {
            match TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(n) => {
                    n.set_nonblocking(true).map_err(|e| e.to_string())?;
                    *l = Some(n);
                    return Ok(());
                }
                Err(e) if t0.elapsed() > Duration::from_secs(10) => {
                    return Err(format!(
                        "cannot listen on 127.0.0.1:{} again: {e}",
                        self.port
                    ));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        cut_all(&self.shared);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn cut_all(s: &State) {
    for (_, (a, b)) in lock(&s.open).drain() {
        let _ = a.shutdown(Shutdown::Both);
        let _ = b.shutdown(Shutdown::Both);
    }
}

fn accept_loop(s: &Arc<State>) {
    while !s.stop.load(Ordering::SeqCst) {
        let got = lock(&s.listener).as_ref().map(|l| l.accept());
        match got {
            Some(Ok((client, _))) => relay(s, client),
            // Nothing waiting, or down: look again soon (bounded by `stop`).
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn relay(s: &Arc<State>, client: TcpStream) {
    let _ = client.set_nonblocking(false);
    let Ok(server) = TcpStream::connect(("127.0.0.1", s.backend)) else {
        return;
    };
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let id = s.next.fetch_add(1, Ordering::SeqCst);
    if let (Ok(a), Ok(b)) = (client.try_clone(), server.try_clone()) {
        lock(&s.open).insert(id, (a, b));
    }
    pump(s, id, client, s2);
    pump(s, id, server, c2);
}

/// Copies `from` to `to` on its own thread; when `from` ends, both are shut
/// and relay `id` is forgotten.
fn pump(s: &Arc<State>, id: u64, mut from: TcpStream, mut to: TcpStream) {
    let s = s.clone();
    let _ = std::thread::Builder::new()
        .name("proxy-pump".into())
        .spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
            lock(&s.open).remove(&id);
        });
}
