//! The credd's `.top` files.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = robot_credmon::credmon::refresh::parse_top(data);
});
