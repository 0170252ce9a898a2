//! The in-process cache of the standalone binary (moka), with the same version rules as
//! Redis.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use moka::{future::Cache, ops::compute::Op};

use super::{TTL, VersionedCache};

#[derive(Clone, Debug)]
enum Slot {
    Value { version: i64, bytes: Arc<[u8]> },
    Invalidated { version: i64 },
}

impl Slot {
    fn version(&self) -> i64 {
        match self {
            Slot::Value { version, .. } | Slot::Invalidated { version } => *version,
        }
    }
}

#[derive(Clone)]
pub struct MemoryCache {
    slots: Cache<String, Slot>,
}

impl MemoryCache {
    /// Holds at most `capacity` entries, each for the cache [`TTL`].
    pub fn new(capacity: u64) -> Self {
        Self::with_ttl(capacity, TTL)
    }

    pub fn with_ttl(capacity: u64, ttl: Duration) -> Self {
        Self {
            slots: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
        }
    }
}

#[async_trait]
impl VersionedCache for MemoryCache {
    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        match self.slots.get(key).await? {
            Slot::Value { bytes, .. } => Some(bytes.to_vec()),
            Slot::Invalidated { .. } => None,
        }
    }

    async fn put(&self, key: &str, version: i64, value: &[u8]) {
        let bytes: Arc<[u8]> = value.into();
        self.slots
            .entry(key.to_owned())
            .and_compute_with(|current| async move {
                let allowed = match current.as_ref().map(|e| e.value()) {
                    None => true,
                    Some(Slot::Value { version: held, .. }) => *held < version,
                    Some(Slot::Invalidated { version: marker }) => *marker <= version,
                };
                if allowed {
                    Op::Put(Slot::Value { version, bytes })
                } else {
                    Op::Nop
                }
            })
            .await;
    }

    async fn invalidate(&self, key: &str, version: i64) -> bool {
        self.slots
            .entry(key.to_owned())
            .and_compute_with(|current| async move {
                match current.map(|e| e.into_value()) {
                    Some(slot) if slot.version() >= version => Op::Nop,
                    _ => Op::Put(Slot::Invalidated { version }),
                }
            })
            .await;
        true
    }

    async fn ping(&self) -> Result<(), String> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn contract() {
        super::super::contract::run(&MemoryCache::new(1_000), "mem").await;
    }
}
