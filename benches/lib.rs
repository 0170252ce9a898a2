//! `make bench`: the platform measured through its real API beside baselines of the same
//! machine (`platform.rs`, the program), and the pieces it is made of: a closed-loop load
//! generator (`load`), the benchmark's own seeded data (`data`), the release binaries
//! started as an operator runs them (`servers`), the rows (`rows`) and the report
//! (`report`), and `perf` around our side of each row (`profile`). The older `[[bench]]`
//! targets time single parts in-process.

pub mod data;
pub mod load;
pub mod profile;
pub mod report;
pub mod rows;
pub mod servers;

/// A size from the environment (`BENCH_EVENTS=20000`), or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}
