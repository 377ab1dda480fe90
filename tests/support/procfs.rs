//! What `/proc` says about a process, for the benchmarks and the soak.

/// The value (in kB) of `key` (e.g. `"VmHWM:"`) in `/proc/<pid>/status`.
pub fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
