//! A small HTTPS/1.1 server on std threads: one accept thread, one thread per connection
//! (bounded by `max_connections`), keep-alive, Content-Length and chunked request bodies.
//!
//! Every blocking call is bounded: sockets poll the stop flag every 100 ms, idle
//! connections close after `idle_timeout`, writes time out after 10 s.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use rustls::{ServerConnection, StreamOwned};

use super::{Shared, api};

const POLL: Duration = Duration::from_millis(100);
/// The pause after a failed `accept` or thread start before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(5);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 4 * 1024 * 1024;

/// A parsed request.
pub(super) struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub keep_alive: bool,
    pub connection: u64,
}

impl Request {
    /// First header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response to write.
pub(super) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What to do with a request.
pub(super) enum Outcome {
    Respond(Response),
    /// Answer 200 with a streamed body, then close.
    Stream(super::fault::Stream),
    /// Close the connection without answering.
    Drop,
}

/// Accepts connections until the stop flag is set; each runs on its own thread.
pub(super) fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut next_id: u64 = 0;
    loop {
        // At the connection limit: wait for a connection to end (or the stop).
        while !shared.wait_for(POLL, || {
            shared.stopping() || shared.active.load(Ordering::SeqCst) < shared.cfg.max_connections
        }) {}
        if shared.stopping() {
            return;
        }
        let accepted = listener.accept();
        if shared.stopping() {
            return;
        }
        let Ok((tcp, _)) = accepted else {
            // Out of descriptors, say: a pause before trying again (ends at the stop).
            shared.sleep(ACCEPT_RETRY);
            continue;
        };
        next_id += 1;
        shared.connections.fetch_add(1, Ordering::SeqCst);
        shared.active.fetch_add(1, Ordering::SeqCst);
        let guard = ActiveGuard(shared.clone());
        let id = next_id;
        let spawned = thread::Builder::new()
            .name(format!("test-vault-conn-{id}"))
            .spawn(move || {
                let _guard = guard;
                serve_connection(&_guard.0, tcp, id);
            });
        if spawned.is_err() {
            shared.sleep(ACCEPT_RETRY);
        }
    }
}

/// Decrements the active-connection count when the connection thread ends (or never starts).
struct ActiveGuard(Arc<Shared>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
        self.0.changed();
    }
}

fn serve_connection(shared: &Shared, tcp: TcpStream, id: u64) {
    if tcp.set_read_timeout(Some(POLL)).is_err()
        || tcp.set_write_timeout(Some(WRITE_TIMEOUT)).is_err()
    {
        return;
    }
    let _ = tcp.set_nodelay(true);
    let Ok(conn) = ServerConnection::new(shared.tls.clone()) else {
        return;
    };
    let mut stream = StreamOwned::new(conn, tcp);
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let mut last_activity = Instant::now();
    loop {
        match parse_request(&buf, id) {
            Parsed::Complete(req, used) => {
                buf.drain(..used);
                let keep_alive = req.keep_alive;
                match api::dispatch(shared, &req) {
                    Outcome::Respond(resp) => {
                        let close = !keep_alive || shared.stopping();
                        if write_response(&mut stream, &resp, close).is_err() || close {
                            break;
                        }
                    }
                    Outcome::Drop => {
                        let _ = stream.sock.shutdown(Shutdown::Both);
                        return;
                    }
                    Outcome::Stream(s) => {
                        write_stream(shared, &mut stream, &s);
                        let _ = stream.sock.shutdown(Shutdown::Both);
                        return;
                    }
                }
                last_activity = Instant::now();
                continue;
            }
            Parsed::Invalid(status, msg) => {
                let body = serde_json::json!({"errors": [msg]})
                    .to_string()
                    .into_bytes();
                let _ = write_response(
                    &mut stream,
                    &Response {
                        status,
                        headers: Vec::new(),
                        body,
                    },
                    true,
                );
                break;
            }
            Parsed::ExpectContinue => {
                if stream
                    .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                    .and_then(|()| stream.flush())
                    .is_err()
                {
                    break;
                }
            }
            Parsed::Partial => {}
        }
        if shared.stopping() {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                last_activity = Instant::now();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if last_activity.elapsed() > shared.cfg.idle_timeout {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    stream.conn.send_close_notify();
    let _ = stream.flush();
    let _ = stream.sock.shutdown(Shutdown::Both);
}

/// Writes a 200 answer whose body is `limit` bytes long, in pieces; stops when the
/// client goes away, the server stops, or the limit is reached. Counts the bytes sent.
fn write_stream(shared: &Shared, stream: &mut impl Write, s: &super::fault::Stream) {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        s.limit
    );
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let prefix = br#"{"data":{"access_token":""#;
    let mut sent: u64 = 0;
    let mut piece = prefix.to_vec();
    while sent < s.limit && !shared.stopping() {
        piece.resize(s.chunk.max(prefix.len()), b'a');
        let n = piece
            .len()
            .min(usize::try_from(s.limit - sent).unwrap_or(usize::MAX));
        if stream
            .write_all(&piece[..n])
            .and_then(|()| stream.flush())
            .is_err()
        {
            return;
        }
        sent += n as u64;
        shared.streamed.fetch_add(n as u64, Ordering::SeqCst);
        piece.clear();
        if !s.pause.is_zero() {
            shared.sleep(s.pause);
        }
    }
}

fn write_response(stream: &mut impl Write, resp: &Response, close: bool) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        head += &format!("{k}: {v}\r\n");
    }
    if resp.status != 204 && resp.status != 304 {
        if !resp.body.is_empty() {
            head += "Content-Type: application/json\r\n";
        }
        head += &format!("Content-Length: {}\r\n", resp.body.len());
    }
    head += "Cache-Control: no-store\r\n";
    head += if close {
        "Connection: close\r\n\r\n"
    } else {
        "Connection: keep-alive\r\n\r\n"
    };
    let mut out = head.into_bytes();
    if resp.status != 204 && resp.status != 304 {
        out.extend_from_slice(&resp.body);
    }
    stream.write_all(&out)?;
    stream.flush()
}

enum Parsed {
    Complete(Request, usize),
    Partial,
    ExpectContinue,
    Invalid(u16, String),
}

fn parse_request(buf: &[u8], connection: u64) -> Parsed {
    if buf.is_empty() {
        return Parsed::Partial;
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Parsed::Invalid(431, "request header too large".into());
        }
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(e) => return Parsed::Invalid(400, format!("malformed request: {e}")),
    };
    let method = req.method.unwrap_or("GET").to_string();
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let connection_hdr = find("connection").unwrap_or("").to_ascii_lowercase();
    let keep_alive = if req.version == Some(0) {
        connection_hdr.contains("keep-alive")
    } else {
        !connection_hdr.contains("close")
    };
    let chunked =
        find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let rest = &buf[head_len..];
    let (body, used) = if chunked {
        match decode_chunked(rest) {
            Ok(Some((body, used))) => (body, used),
            Ok(None) => return Parsed::Partial,
            Err(msg) => return Parsed::Invalid(400, msg),
        }
    } else {
        let len = match find("content-length").map(|v| v.trim().parse::<usize>()) {
            None => 0,
            Some(Ok(n)) if n <= MAX_BODY => n,
            Some(Ok(_)) => return Parsed::Invalid(413, "request body too large".into()),
            Some(Err(_)) => return Parsed::Invalid(400, "bad Content-Length".into()),
        };
        if rest.len() < len {
            let expects = find("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
            return if expects && rest.is_empty() {
                Parsed::ExpectContinue
            } else {
                Parsed::Partial
            };
        }
        (rest[..len].to_vec(), len)
    };
    Parsed::Complete(
        Request {
            method,
            path: path.to_string(),
            query: query.to_string(),
            headers,
            body,
            keep_alive,
            connection,
        },
        head_len + used,
    )
}

/// Decodes a chunked body; `Ok(None)` if incomplete.
fn decode_chunked(mut rest: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let start = rest.len();
    let mut body = Vec::new();
    loop {
        let (skip, size) = match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete(v)) => v,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err("bad chunk size".into()),
        };
        let size = usize::try_from(size).map_err(|_| "chunk too large".to_string())?;
        if body.len() + size > MAX_BODY {
            return Err("request body too large".into());
        }
        rest = &rest[skip..];
        if size == 0 {
            // Trailers (none expected) end with an empty line.
            return match rest.windows(2).position(|w| w == b"\r\n") {
                Some(0) => Ok(Some((body, start - rest.len() + 2))),
                Some(_) => match rest.windows(4).position(|w| w == b"\r\n\r\n") {
                    Some(p) => Ok(Some((body, start - rest.len() + p + 4))),
                    None => Ok(None),
                },
                None => Ok(None),
            };
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn complete(buf: &[u8]) -> (Request, usize) {
        match parse_request(buf, 1) {
            Parsed::Complete(r, n) => (r, n),
            _ => panic!("expected a complete request"),
        }
    }

    #[test]
    fn parses_pipelined_requests_with_length_and_chunked_bodies() {
        let raw = b"POST /v1/a?x=1 HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi\
                    POST /v1/b HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
                    3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let (a, n) = complete(raw);
        assert_eq!(
            (
                a.path.as_str(),
                a.query.as_str(),
                a.body.as_slice(),
                a.keep_alive
            ),
            ("/v1/a", "x=1", &b"hi"[..], true)
        );
        let (b, m) = complete(&raw[n..]);
        assert_eq!(
            (b.path.as_str(), b.body.as_slice(), b.keep_alive),
            ("/v1/b", &b"abcde"[..], false)
        );
        assert_eq!(n + m, raw.len());
    }

    #[test]
    fn incomplete_requests_wait_for_more_bytes() {
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\nHost: x\r\n", 1),
            Parsed::Partial
        ));
        assert!(matches!(
            parse_request(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", 1),
            Parsed::Partial
        ));
        let expect = b"POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
        assert!(matches!(parse_request(expect, 1), Parsed::ExpectContinue));
        assert!(matches!(
            parse_request(
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
                1
            ),
            Parsed::Partial
        ));
        assert!(matches!(
            parse_request(b"GET / HTTP/1.0\r\n\r\n", 1),
            Parsed::Complete(
                Request {
                    keep_alive: false,
                    ..
                },
                _
            )
        ));
    }
}
