//! Keytab files (through a file, as the program reads them).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("robot-credmon-fuzz-{}.keytab", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        let _ = robot_credmon::kerberos::keytab_principals(&path);
    }
});
