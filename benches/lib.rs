//! Benchmarks live in this crate's `[[bench]]` targets; run them with `make bench`.
