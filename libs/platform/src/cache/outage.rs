//! Logs a dependency outage once when it starts and once when it ends, not per request.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct OutageLog {
    down: AtomicBool,
    outages: AtomicU64,
}

impl OutageLog {
    /// Records a failure; warns only on the first one of an outage.
    pub fn failed(&self, dependency: &str, error: &dyn std::fmt::Display) {
        if !self.down.swap(true, Ordering::Relaxed) {
            self.outages.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                dependency,
                %error,
                "dependency unreachable; serving from the database until it is back"
            );
        }
    }

    /// Records a success; logs the recovery when an outage was going on.
    pub fn succeeded(&self, dependency: &str) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!(dependency, "dependency reachable again");
        }
    }

    /// How many outages began since start.
    pub fn outages(&self) -> u64 {
        self.outages.load(Ordering::Relaxed)
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_counts_once_however_many_requests_fail() {
        let log = OutageLog::default();
        for _ in 0..100 {
            log.failed("redis", &"connection refused");
        }
        assert_eq!(log.outages(), 1);
        log.succeeded("redis");
        assert!(!log.is_down());
        log.failed("redis", &"connection refused");
        assert_eq!(log.outages(), 2);
    }
}
