//! Benchmarks live in this crate's `[[bench]]` targets; run them with `make bench`.

/// A size from the environment (`BENCH_EVENTS=20000`), or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}
