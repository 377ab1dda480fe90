//! The keytab parser itself (format 0x0501 or 0x0502), on any bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = robot_credmon::kerberos::parse_keytab_principals(data);
});
