//! Bearer tokens and their claims: parsing, the acceptance decision, lifetimes
//! and the claim lines shown to people. Input: token text, or (with a leading
//! `{`) a claims object wrapped in a JWT frame.

#![no_main]

use libfuzzer_sys::fuzz_target;
use robot_credmon::token::{self, BearerToken, accept};
use std::time::{Duration, UNIX_EPOCH};

fn frame(payload: &[u8]) -> String {
    use robot_credmon_fuzz_b64::encode;
    format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", encode(payload))
}

mod robot_credmon_fuzz_b64 {
    /// Unpadded base64url.
    pub fn encode(data: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for c in data.chunks(3) {
            let n = c.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..=c.len() {
                out.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
            }
        }
        out
    }
}

fuzz_target!(|data: &[u8]| {
    let text = if data.first() == Some(&b'{') {
        frame(data)
    } else {
        String::from_utf8_lossy(data).into_owned()
    };
    let Ok(tok) = BearerToken::parse(&text) else {
        let _ = BearerToken::from_bytes(data);
        return;
    };
    let now_s = data.len() as i64 * 1_000_003 + 1_700_000_000;
    let now = UNIX_EPOCH + Duration::from_secs(now_s as u64);
    for current in [None, tok.claims().exp, Some(i64::MIN), Some(now_s + 7200)] {
        if let accept::Decision::Replace(_) = accept::decide(tok.claims(), current, now_s, 3600) {
            let exp = tok.claims().exp.unwrap_or(i64::MIN);
            assert!(exp > now_s + accept::SAFETY_MARGIN && exp <= accept::MAX_EPOCH);
        }
    }
    let _ = tok.remaining(now);
    let _ = tok.is_fresh(now, 3600);
    for (_, v) in token::describe_claims(&tok, now) {
        assert!(!v.chars().any(char::is_control));
    }
});
