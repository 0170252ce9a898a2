//! A closed-loop load generator: a fixed number of workers, each sending its next request
//! as soon as the last one answered, with every latency kept for exact percentiles.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// What one run of requests gave.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub requests: u64,
    pub errors: u64,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// Runs `requests` operations on `concurrency` workers, each worker taking the next
/// number (0, 1, 2, ...) as soon as its last operation ended. `operation` answers whether
/// it succeeded; a failure counts as an error, its latency still counts.
pub async fn closed_loop<F, Fut>(concurrency: usize, requests: u64, operation: F) -> Summary
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (next, errors, operation) = (next.clone(), errors.clone(), operation.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= requests {
                        return latencies;
                    }
                    let sent = Instant::now();
                    if !operation(n).await {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    latencies.push(sent.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests as usize);
    for worker in workers {
        latencies.extend(worker.await.expect("a load worker panicked"));
    }
    let elapsed = started.elapsed();
    summarize(latencies, errors.load(Ordering::Relaxed), elapsed)
}

fn summarize(mut latencies: Vec<Duration>, errors: u64, elapsed: Duration) -> Summary {
    latencies.sort_unstable();
    let at = |q: f64| {
        if latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len());
        latencies[index - 1]
    };
    Summary {
        requests: latencies.len() as u64,
        errors,
        per_second: latencies.len() as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
        p50: at(0.50),
        p99: at(0.99),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_exact_ranks() {
        let latencies = (1..=100).map(Duration::from_millis).collect();
        let summary = summarize(latencies, 2, Duration::from_secs(4));
        assert_eq!(summary.p50, Duration::from_millis(50));
        assert_eq!(summary.p99, Duration::from_millis(99));
        assert_eq!((summary.requests, summary.errors), (100, 2));
        assert_eq!(summary.per_second, 25.0);
    }

    #[tokio::test]
    async fn every_request_runs_once_and_failures_count() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        let summary = closed_loop(8, 1_000, move |n| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(n);
                n % 10 != 0
            }
        })
        .await;
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..1_000).collect::<Vec<_>>());
        assert_eq!((summary.requests, summary.errors), (1_000, 100));
    }
}
