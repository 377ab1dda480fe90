//! The exchange against a simulated condor_master that checks every byte by
//! HTCondor's rules (digests, IV, additional data) with its own code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::cedar::{Aes256Gcm16, derive_key};
use super::inherit::{self, Parent};
use super::*;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn parent(port: u16, sock: Option<&str>, info: &str) -> Parent {
    let addr = match sock {
        Some(s) => format!("<127.0.0.1:{port}?addrs=127.0.0.1-{port}&noUDP&sock={s}>"),
        None => format!("<127.0.0.1:{port}>"),
    };
    inherit::parse(
        Some(&format!("99 {addr} 0")),
        Some(&format!("FamilySessionKey:family:test:1#[{info}]{KEY}")),
    )
    .unwrap()
}

const AES_INFO: &str = "Encryption=\"YES\";Integrity=\"YES\";CryptoMethods=\"AES\";CryptoMethodsList=\"AES.BLOWFISH\";ShortVersion=\"25.14.0\";";

fn read_packet(s: &mut impl Read) -> ([u8; 5], Vec<u8>) {
    let mut hdr = [0u8; 5];
    s.read_exact(&mut hdr).unwrap();
    let len = u32::from_be_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]) as usize;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (hdr, body)
}

struct Reader<'a> {
    b: &'a [u8],
    encrypted: bool,
}

impl Reader<'_> {
    fn int(&mut self) -> i64 {
        let (h, t) = self.b.split_at(8);
        self.b = t;
        i64::from_be_bytes(h.try_into().unwrap())
    }
    fn string(&mut self) -> String {
        if self.encrypted {
            let n = self.int() as usize;
            let (h, t) = self.b.split_at(n);
            self.b = t;
            assert_eq!(h[n - 1], 0);
            return String::from_utf8(h[..n - 1].to_vec()).unwrap();
        }
        let nul = self.b.iter().position(|&c| c == 0).unwrap();
        let s = String::from_utf8(self.b[..nul].to_vec()).unwrap();
        self.b = &self.b[nul + 1..];
        s
    }
    fn ad(&mut self) -> Vec<String> {
        let n = self.int();
        let lines = (0..n).map(|_| self.string()).collect();
        assert_eq!(
            (self.string(), self.string()),
            (String::new(), String::new())
        );
        lines
    }
}

fn plain_packet(payload: &[u8]) -> Vec<u8> {
    let mut p = vec![1];
    p.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// What the simulated master saw.
#[derive(Debug)]
struct Seen {
    shared_port: Option<Vec<String>>,
    resume: Vec<String>,
    command: Vec<String>,
}

/// A one-connection master that answers `code`.
/// (Long: one scripted conversation, read and answered in protocol order.)
fn master(code: &'static str, shared_port: bool) -> (u16, mpsc::Receiver<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let sp = shared_port.then(|| {
            let (_, body) = read_packet(&mut s);
            let mut r = Reader {
                b: &body,
                encrypted: false,
            };
            let v = vec![
                r.int().to_string(),
                r.string(),
                r.string(),
                r.int().to_string(),
                r.int().to_string(),
            ];
            v
        });
        let mut recv_md = Sha256::new();
        let (hdr, body) = read_packet(&mut s);
        assert_eq!(hdr[0], 1);
        recv_md.update(hdr);
        recv_md.update(&body);
        let mut r = Reader {
            b: &body,
            encrypted: false,
        };
        assert_eq!(r.int(), DC_AUTHENTICATE);
        let resume = r.ad();
        let mut reply = Vec::new();
        reply.extend_from_slice(&2i64.to_be_bytes());
        reply.extend_from_slice(format!("ReturnCode = \"{code}\"\0").as_bytes());
        reply.extend_from_slice(b"RemoteVersion = \"$CondorVersion: 25.14.0 $\"\0\0\0");
        let reply = plain_packet(&reply);
        s.write_all(&reply).unwrap();
        let send_md = Sha256::digest(&reply);
        if code != "AUTHORIZED" {
            let _ = tx.send(Seen {
                shared_port: sp,
                resume,
                command: Vec::new(),
            });
            return;
        }
        let (hdr, body) = read_packet(&mut s);
        assert_eq!(hdr[0], 1);
        let (iv, ct) = body.split_at(16);
        let aad = [&recv_md.finalize()[..], &send_md[..], &hdr].concat();
        let key = derive_key(KEY);
        let plain = Aes256Gcm16::new((&key).into())
            .decrypt(iv.into(), Payload { msg: ct, aad: &aad })
            .expect("the command decrypts with HTCondor's IV and AAD rules");
        let command = Reader {
            b: &plain,
            encrypted: true,
        }
        .ad();
        let _ = tx.send(Seen {
            shared_port: sp,
            resume,
            command,
        });
    });
    (port, rx)
}

#[test]
fn set_ready_resumes_the_family_session_and_encrypts_the_command() {
    let (port, rx) = master("AUTHORIZED", false);
    let p = parent(port, None, AES_INFO);
    send_ready(
        &p,
        4321,
        "CREDMON_OAUTH",
        "Ready",
        Duration::from_secs(5),
        std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    )
    .unwrap();
    let seen = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(seen.shared_port.is_none());
    let r = seen.resume.join("\n");
    for want in [
        "UseSession = \"YES\"",
        "Sid = \"family:test:1\"",
        "Command = 60043",
        "CryptoMethods = \"AES\"",
        "ResumeResponse = true",
        "RemoteVersion = \"$CondorVersion: 25.14.0 ",
    ] {
        assert!(r.contains(want), "{want} in {r}");
    }
    assert!(!r.contains(KEY), "the key never travels");
    assert_eq!(
        seen.command,
        [
            "DaemonPID = 4321",
            "DaemonName = \"CREDMON_OAUTH\"",
            "DaemonState = \"Ready\""
        ]
    );
}

#[test]
fn a_shared_port_address_is_handed_over_first() {
    let (port, rx) = master("AUTHORIZED", true);
    let p = parent(port, Some("master_99_1"), AES_INFO);
    send_ready(
        &p,
        1,
        "CREDMON_OAUTH",
        "Ready",
        Duration::from_secs(5),
        std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    )
    .unwrap();
    let seen = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        seen.shared_port.unwrap(),
        ["75", "master_99_1", "robot-credmon credmon", "5", "0"]
    );
    assert_eq!(seen.command.len(), 3);
}

#[test]
fn failures_are_errors_not_panics() {
    let (port, rx) = master("SID_NOT_FOUND", false);
    let p = parent(port, None, AES_INFO);
    let e = send_ready(
        &p,
        1,
        "X",
        "Ready",
        Duration::from_secs(5),
        std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    )
    .unwrap_err();
    assert!(e.to_string().contains("SID_NOT_FOUND"), "{e}");
    rx.recv_timeout(Duration::from_secs(10)).unwrap();

    let p = parent(port, None, "CryptoMethods=\"BLOWFISH\";");
    let e = send_ready(
        &p,
        1,
        "X",
        "Ready",
        Duration::from_secs(1),
        std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    )
    .unwrap_err();
    assert!(matches!(e, MasterError::NoAes(_)), "{e}");

    let p = parent(port, None, "SessionExpires=1;");
    assert!(matches!(
        send_ready(
            &p,
            1,
            "X",
            "Ready",
            Duration::from_secs(1),
            std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        ),
        Err(MasterError::Expired)
    ));

    // Nobody listens any more.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = l.local_addr().unwrap().port();
    drop(l);
    let e = send_ready(
        &parent(closed, None, AES_INFO),
        1,
        "X",
        "Ready",
        Duration::from_secs(1),
        std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    )
    .unwrap_err();
    assert!(matches!(e, MasterError::Connect { .. }), "{e}");

    // A master that hangs up instead of answering.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let _ = read_packet(&mut s);
    });
    let e = send_ready(
        &parent(port, None, AES_INFO),
        1,
        "X",
        "Ready",
        Duration::from_secs(2),
        std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    )
    .unwrap_err();
    assert!(matches!(e, MasterError::Cedar { .. }), "{e}");
}
