//! Memory of the benchmark's own process, for the benchmarks that run the code under test
//! in-process (`lifecycle`, `links_preview`).

/// (VmRSS, VmHWM) of this process in MiB (Linux); zeros elsewhere.
pub fn own_memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
