//! CEDAR, HTCondor's TCP message layer (`condor_io/reli_sock.cpp`,
//! `stream.cpp`, `condor_crypt_aesgcm.cpp`), as much as a client needs to
//! resume a security session and send one command.
//!
//! * A message is one or more packets; a packet is a 5-byte header (1 when it
//!   ends the message, else 0; then the payload length, big-endian u32) and
//!   the payload. Integers are 8 bytes big-endian; strings are NUL-terminated,
//!   and once encryption is on they are preceded by their length (with the NUL)
//!   as an integer.
//! * A ClassAd is the number of attributes, one `Name = expression` string
//!   each, and two empty strings (the old MyType/TargetType).
//! * Until encryption starts, each side keeps a SHA-256 digest of every packet
//!   it sent and of every packet it received (header and payload).
//! * AES-256-GCM with a 16-byte IV: the first encrypted packet carries the IV
//!   before the ciphertext; packet `n` uses the IV whose first four bytes, read
//!   as a big-endian number, are increased by `n`. The 16-byte tag follows the
//!   ciphertext. The additional data is the packet header, preceded in the
//!   first encrypted packet by the sent and the received digests (32 zero
//!   bytes for a direction with no packets).
//! * Session keys are HKDF-SHA256 of the exported key text, salt `htcondor`,
//!   info `keygen`, 32 bytes (`Condor_Crypt_Base::hkdf`).

use aes_gcm::AesGcm;
use aes_gcm::aead::consts::U16;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};

/// AES-256-GCM with HTCondor's 16-byte IV.
pub type Aes256Gcm16 = AesGcm<Aes256, U16>;

/// Largest message this client sends or accepts.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// A protocol or I/O failure.
#[derive(Debug, thiserror::Error)]
pub enum CedarError {
    /// The socket failed or timed out.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The peer sent something this client does not understand.
    #[error("unexpected data from the peer: {0}")]
    Protocol(&'static str),
    /// A message would exceed [`MAX_MESSAGE`].
    #[error("message too large")]
    TooLarge,
    /// Encryption failed (the packet counter is exhausted).
    #[error("encryption failed")]
    Crypto,
}

/// A value of a ClassAd attribute sent by this client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// An integer.
    Int(i64),
    /// A string (quoted and escaped on the wire).
    Str(&'a str),
    /// A boolean.
    Bool(bool),
}

/// `Name = value` in ClassAd syntax.
pub fn ad_line(name: &str, value: Value<'_>) -> String {
    match value {
        Value::Int(i) => format!("{name} = {i}"),
        Value::Bool(b) => format!("{name} = {b}"),
        Value::Str(s) => {
            let mut q = String::with_capacity(s.len() + 2);
            q.push('"');
            for c in s.chars() {
                if c == '"' || c == '\\' {
                    q.push('\\');
                }
                q.push(c);
            }
            q.push('"');
            format!("{name} = {q}")
        }
    }
}

/// HTCondor's session key derivation for AES-GCM.
pub fn derive_key(exported: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    let hk = hkdf::Hkdf::<Sha256>::new(Some(b"htcondor"), exported.as_bytes());
    // 32 bytes is far below HKDF's limit of 255 * 32.
    if hk.expand(b"keygen", &mut out).is_err() {
        out = [0u8; 32];
    }
    out
}

/// The IV of packet `n` from the connection's initial IV.
pub fn packet_iv(iv0: &[u8; 16], n: u32) -> [u8; 16] {
    let mut iv = *iv0;
    let base = u32::from_be_bytes([iv0[0], iv0[1], iv0[2], iv0[3]]);
    iv[..4].copy_from_slice(&base.wrapping_add(n).to_be_bytes());
    iv
}

struct Crypto {
    cipher: Aes256Gcm16,
    iv0: [u8; 16],
    sent: u32,
    /// The two handshake digests, used once in the first encrypted packet.
    digests: Option<[u8; 64]>,
}

/// One CEDAR connection over any byte stream.
pub struct Conn<S> {
    stream: S,
    out: Vec<u8>,
    input: Vec<u8>,
    pos: usize,
    send_md: Option<Sha256>,
    recv_md: Option<Sha256>,
    crypto: Option<Crypto>,
}

impl<S: Read + Write> Conn<S> {
    /// A connection with nothing sent or received yet.
    pub fn new(stream: S) -> Self {
        Conn {
            stream,
            out: Vec::new(),
            input: Vec::new(),
            pos: 0,
            send_md: None,
            recv_md: None,
            crypto: None,
        }
    }

    /// The underlying stream.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Whether outgoing packets are encrypted.
    pub fn encrypting(&self) -> bool {
        self.crypto.is_some()
    }

    /// Appends an integer to the current message.
    pub fn put_int(&mut self, i: i64) {
        self.out.extend_from_slice(&i.to_be_bytes());
    }

    /// Appends a string to the current message.
    pub fn put_str(&mut self, s: &str) {
        if self.encrypting() {
            self.put_int(s.len() as i64 + 1);
        }
        self.out.extend_from_slice(s.as_bytes());
        self.out.push(0);
    }

    /// Appends a ClassAd.
    pub fn put_ad(&mut self, attrs: &[(&str, Value<'_>)]) {
        self.put_int(attrs.len() as i64);
        for (name, value) in attrs {
            self.put_str(&ad_line(name, *value));
        }
        self.put_str("");
        self.put_str("");
    }

    /// Sends the current message as one packet, outside the handshake digest
    /// (the shared-port hand-off, which the shared-port daemon swallows).
    pub fn end_of_message_undigested(&mut self) -> Result<(), CedarError> {
        let payload = std::mem::take(&mut self.out);
        let hdr = header(&payload)?;
        self.stream.write_all(&hdr)?;
        self.stream.write_all(&payload)?;
        self.stream.flush()?;
        Ok(())
    }

    /// Sends the current message (as one packet).
    pub fn end_of_message(&mut self) -> Result<(), CedarError> {
        let payload = std::mem::take(&mut self.out);
        let packet = match self.crypto.as_mut() {
            None => {
                let hdr = header(&payload)?;
                let md = self.send_md.get_or_insert_with(Sha256::new);
                md.update(hdr);
                md.update(&payload);
                [hdr.as_slice(), &payload].concat()
            }
            Some(c) => seal(c, &payload)?,
        };
        self.stream.write_all(&packet)?;
        self.stream.flush()?;
        Ok(())
    }

    /// Turns on AES-GCM for everything sent from now on, with `iv0` as the
    /// initial IV (random in real use).
    pub fn start_aes(&mut self, key: &[u8; 32], iv0: [u8; 16]) {
        let mut digests = [0u8; 64];
        if let Some(md) = self.send_md.take() {
            digests[..32].copy_from_slice(&md.finalize());
        }
        if let Some(md) = self.recv_md.take() {
            digests[32..].copy_from_slice(&md.finalize());
        }
        self.crypto = Some(Crypto {
            cipher: Aes256Gcm16::new(key.into()),
            iv0,
            sent: 0,
            digests: Some(digests),
        });
    }

    /// Reads one whole plaintext message; its fields are then taken with the
    /// `get_*` methods.
    pub fn read_message(&mut self) -> Result<(), CedarError> {
        if self.encrypting() {
            return Err(CedarError::Protocol("an encrypted reply"));
        }
        self.input.clear();
        self.pos = 0;
        loop {
            let mut hdr = [0u8; 5];
            self.stream.read_exact(&mut hdr)?;
            let len = u32::from_be_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]) as usize;
            if hdr[0] > 1 {
                return Err(CedarError::Protocol("a bad packet header"));
            }
            if self.input.len() + len > MAX_MESSAGE {
                return Err(CedarError::TooLarge);
            }
            let start = self.input.len();
            self.input.resize(start + len, 0);
            self.stream.read_exact(&mut self.input[start..])?;
            let md = self.recv_md.get_or_insert_with(Sha256::new);
            md.update(hdr);
            md.update(&self.input[start..]);
            if hdr[0] == 1 {
                return Ok(());
            }
        }
    }

    /// The next integer of the message read.
    pub fn get_int(&mut self) -> Result<i64, CedarError> {
        let b = self
            .input
            .get(self.pos..self.pos + 8)
            .ok_or(CedarError::Protocol("a short message"))?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        self.pos += 8;
        Ok(i64::from_be_bytes(a))
    }

    /// The next string of the message read.
    pub fn get_str(&mut self) -> Result<String, CedarError> {
        let rest = self.input.get(self.pos..).unwrap_or_default();
        let nul = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(CedarError::Protocol("an unterminated string"))?;
        let s = String::from_utf8_lossy(&rest[..nul]).into_owned();
        self.pos += nul + 1;
        Ok(s)
    }

    /// The next ClassAd of the message read, as `(name, expression)` pairs.
    pub fn get_ad(&mut self) -> Result<Vec<(String, String)>, CedarError> {
        let n = self.get_int()?;
        if !(0..=10_000).contains(&n) {
            return Err(CedarError::Protocol("a bad attribute count"));
        }
        let mut ad = Vec::new();
        for _ in 0..n {
            let line = self.get_str()?;
            let (name, value) = line
                .split_once('=')
                .ok_or(CedarError::Protocol("an attribute without '='"))?;
            ad.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        self.get_str()?;
        self.get_str()?;
        Ok(ad)
    }
}

fn header(payload: &[u8]) -> Result<[u8; 5], CedarError> {
    if payload.len() > MAX_MESSAGE {
        return Err(CedarError::TooLarge);
    }
    let len = (payload.len() as u32).to_be_bytes();
    Ok([1, len[0], len[1], len[2], len[3]])
}

/// Encrypts one whole message as a packet.
fn seal(c: &mut Crypto, payload: &[u8]) -> Result<Vec<u8>, CedarError> {
    if payload.len() > MAX_MESSAGE {
        return Err(CedarError::TooLarge);
    }
    if c.sent == u32::MAX {
        return Err(CedarError::Crypto);
    }
    let first = c.sent == 0;
    let ct_len = payload.len() + 16 + if first { 16 } else { 0 };
    let len = (ct_len as u32).to_be_bytes();
    let hdr = [1, len[0], len[1], len[2], len[3]];
    let aad = match c.digests.take() {
        Some(d) => [d.as_slice(), &hdr].concat(),
        None => hdr.to_vec(),
    };
    let iv = packet_iv(&c.iv0, c.sent);
    let ct = c
        .cipher
        .encrypt(
            (&iv).into(),
            Payload {
                msg: payload,
                aad: &aad,
            },
        )
        .map_err(|_| CedarError::Crypto)?;
    c.sent += 1;
    let mut packet = Vec::with_capacity(5 + ct_len);
    packet.extend_from_slice(&hdr);
    if first {
        packet.extend_from_slice(&iv);
    }
    packet.extend_from_slice(&ct);
    Ok(packet)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::io::Cursor;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// Known answers computed independently (Python `cryptography`: HKDF-SHA256
    /// and AESGCM with a 16-byte nonce), not with this code.
    #[test]
    fn key_derivation_matches_htcondor() {
        assert_eq!(
            hex(&derive_key("0123456789abcdef0123456789abcdef")),
            KAT_KEY
        );
    }

    #[test]
    fn the_iv_counter_wraps_like_int32_addition() {
        let iv0 = [
            0xff, 0xff, 0xff, 0xfe, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ];
        assert_eq!(packet_iv(&iv0, 0), iv0);
        assert_eq!(packet_iv(&iv0, 1)[..4], [0xff, 0xff, 0xff, 0xff]);
        assert_eq!(packet_iv(&iv0, 3)[..4], [0, 0, 0, 1]);
        assert_eq!(packet_iv(&iv0, 3)[4..], iv0[4..]);
    }

    #[test]
    fn plaintext_framing_and_encodings() {
        let mut c = Conn::new(Cursor::new(Vec::new()));
        c.put_int(60010);
        c.put_ad(&[
            ("A", Value::Int(-1)),
            ("B", Value::Str("x\"y\\z")),
            ("C", Value::Bool(true)),
        ]);
        c.end_of_message().unwrap();
        let wire = c.get_mut().get_ref().clone();
        let mut want = vec![0, 0, 0, 0, 0, 0, 0xea, 0x6a, 0, 0, 0, 0, 0, 0, 0, 3];
        want.extend_from_slice(b"A = -1\0B = \"x\\\"y\\\\z\"\0C = true\0\0\0");
        let mut hdr = vec![1];
        hdr.extend_from_slice(&(want.len() as u32).to_be_bytes());
        assert_eq!(wire, [hdr, want.clone()].concat());

        // The same bytes read back as a message.
        let mut r = Conn::new(Cursor::new(wire));
        r.read_message().unwrap();
        assert_eq!(r.get_int().unwrap(), 60010);
        let ad = r.get_ad().unwrap();
        assert_eq!(ad[0], ("A".to_string(), "-1".to_string()));
        assert_eq!(ad[2], ("C".to_string(), "true".to_string()));
        assert!(r.get_int().is_err());
    }

    #[test]
    fn a_message_may_span_packets_and_bad_input_is_refused() {
        let mut wire = vec![0, 0, 0, 0, 2, b'a', 0, 1, 0, 0, 0, 2, b'b', 0];
        let mut r = Conn::new(Cursor::new(wire.clone()));
        r.read_message().unwrap();
        assert_eq!(r.get_str().unwrap(), "a");
        assert_eq!(r.get_str().unwrap(), "b");
        wire[0] = 7;
        assert!(Conn::new(Cursor::new(wire)).read_message().is_err());
        let huge = [1, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            Conn::new(Cursor::new(huge.to_vec())).read_message(),
            Err(CedarError::TooLarge)
        ));
        let short = [1, 0, 0, 0, 9, 1];
        assert!(
            Conn::new(Cursor::new(short.to_vec()))
                .read_message()
                .is_err()
        );
        let mut r = Conn::new(Cursor::new(vec![1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0x7f]));
        r.read_message().unwrap();
        assert!(r.get_ad().is_err());
    }

    /// Reads from one buffer, writes to another.
    struct Duplex {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Duplex {
        fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(b)
        }
    }

    impl Write for Duplex {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.output.write(b)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// One plaintext packet each way, then two encrypted packets: the bytes
    /// must be exactly what an independent AES-GCM implementation produces
    /// with HTCondor's IV and additional-data rules.
    #[test]
    fn encrypted_packets_match_independent_known_answers() {
        let key = derive_key("0123456789abcdef0123456789abcdef");
        let iv0: [u8; 16] = core::array::from_fn(|i| i as u8 + 0xa0);
        // What the peer sent us: one plaintext packet.
        let mut c = Conn::new(Duplex {
            input: Cursor::new(vec![1u8, 0, 0, 0, 3, b'h', b'i', 0]),
            output: Vec::new(),
        });
        c.put_str("hello");
        c.end_of_message().unwrap();
        c.read_message().unwrap();
        assert_eq!(c.get_str().unwrap(), "hi");
        assert_eq!(hex(&c.get_mut().output), "010000000668656c6c6f00");
        c.get_mut().output.clear();
        c.start_aes(&key, iv0);
        assert!(c.encrypting());
        c.put_str("secret");
        c.end_of_message().unwrap();
        c.put_int(7);
        c.end_of_message().unwrap();
        assert_eq!(hex(&c.get_mut().output), KAT_WIRE);
        // Replies are not expected once encrypted.
        assert!(c.read_message().is_err());
    }

    // Produced by: HKDF(SHA256, length=32, salt=b"htcondor", info=b"keygen")
    // on the key text; AESGCM(key).encrypt(iv, msg, aad) with
    // aad1 = sha256(sent packet) || sha256(received packet) || header1, aad2 = header2.
    const KAT_KEY: &str = "e0a016ed14c1e76b3a4c16ed4a0d955bdb72decd9e8e4a23e234288dc3e37286";
    const KAT_WIRE: &str = "010000002fa0a1a2a3a4a5a6a7a8a9aaabacadaeaff2eb9eb817dd6990972bad23b3ac887f4ce4a19ada9ad7195e72738949ec520100000018ee6ea5aa72e6dd6b09b772f37c21c755356b5ee85ad36d37";
}
