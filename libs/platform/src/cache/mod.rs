//! The cache port: cache-aside with versions, so a slow reader can never put back data
//! older than a write that already committed.
//!
//! Cache-aside sets the cache after reading and deletes it after writing; a read that
//! started before a write can then put the old value back for five minutes. Here every
//! entry carries the version it was read at, and invalidation leaves a marker with the
//! committed version, so `put` refuses anything older.

mod memory;
mod outage;
mod redis;

#[cfg(test)]
mod contract;

use async_trait::async_trait;

pub use memory::MemoryCache;
pub use outage::OutageLog;
pub use redis::{RedisCache, RedisCacheSettings};

/// Time to live of every entry and marker.
pub const TTL: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// A versioned key-value cache. It never fails: an unreachable cache is a miss, and the
/// adapter logs the outage, because the database remains the source of truth.
#[async_trait]
pub trait VersionedCache: Send + Sync {
    /// The value, unless missing, invalidated or unreachable.
    async fn get(&self, key: &str) -> Option<Vec<u8>>;

    /// Stores `value`, read at `version`, unless the cache holds that version or a newer
    /// one, or an invalidation marker newer than `version`.
    async fn put(&self, key: &str, version: i64, value: &[u8]);

    /// Drops the value and refuses puts older than `version` (call after commit).
    /// Whether the cache confirmed it: `false` when it could not be told (unreachable,
    /// too slow), so the caller knows the old value may still be served.
    async fn invalidate(&self, key: &str, version: i64) -> bool;

    /// Whether the cache answers (for `/readyz`, informational only).
    async fn ping(&self) -> Result<(), String>;
}
