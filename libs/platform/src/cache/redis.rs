//! The Redis cache adapter: one Lua script per operation, so the version comparison and
//! the write happen atomically on the server. Every call has a short deadline, and an
//! unreachable Redis is a miss, logged once per outage.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use serde::{Deserialize, Serialize};

use super::{TTL, VersionedCache};
use crate::{Result, redis::RedisClient, settings::Secret};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedisCacheSettings {
    pub url: Secret,
    /// Prepended to every key, so deployments (and tests) can share one Redis.
    pub key_prefix: String,
    /// Deadline of one cache call; past it the call counts as a miss.
    pub timeout: Duration,
}

impl Default for RedisCacheSettings {
    fn default() -> Self {
        Self {
            url: Secret::new("redis://127.0.0.1:6379"),
            key_prefix: String::new(),
            timeout: Duration::from_millis(250),
        }
    }
}

/// Values are stored as `<version>:<bytes>`; invalidation markers as `<version>!`.
const PUT: &str = r"
local current = redis.call('GET', KEYS[1])
if current then
  local held, kind = string.match(current, '^(%d+)([:!])')
  held = tonumber(held)
  local version = tonumber(ARGV[1])
  if kind == ':' and held >= version then return 0 end
  if kind == '!' and held > version then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
return 1
";

const INVALIDATE: &str = r"
local current = redis.call('GET', KEYS[1])
if current then
  local held = tonumber(string.match(current, '^(%d+)'))
  if held and held >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '!', 'PX', ARGV[2])
return 1
";

pub struct RedisCache {
    client: RedisClient,
    key_prefix: String,
    put: Script,
    invalidate: Script,
}

impl RedisCache {
    /// Connects lazily: a Redis that is down at start only means cache misses.
    pub fn new(settings: RedisCacheSettings) -> Result<Self> {
        Ok(Self {
            client: RedisClient::new(&settings.url, settings.timeout)?,
            key_prefix: settings.key_prefix,
            put: Script::new(PUT),
            invalidate: Script::new(INVALIDATE),
        })
    }

    /// How many outages began since start.
    pub fn outages(&self) -> u64 {
        self.client.outages()
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.key_prefix)
    }
}

fn ttl_millis() -> u64 {
    TTL.as_millis() as u64
}

#[async_trait]
impl VersionedCache for RedisCache {
    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let key = self.key(key);
        let raw = self
            .client
            .call(|mut conn| async move {
                redis::cmd("GET")
                    .arg(&key)
                    .query_async::<Option<Vec<u8>>>(&mut conn)
                    .await
            })
            .await??;
        let colon = raw.iter().position(|b| *b == b':')?;
        Some(raw[colon + 1..].to_vec())
    }

    async fn put(&self, key: &str, version: i64, value: &[u8]) {
        let key = self.key(key);
        let script = &self.put;
        let _: Option<i64> = self
            .client
            .call(|mut conn| async move {
                script
                    .key(&key)
                    .arg(version)
                    .arg(value)
                    .arg(ttl_millis())
                    .invoke_async(&mut conn)
                    .await
            })
            .await;
    }

    async fn invalidate(&self, key: &str, version: i64) -> bool {
        let key = self.key(key);
        let script = &self.invalidate;
        let confirmed: Option<i64> = self
            .client
            .call(|mut conn| async move {
                script
                    .key(&key)
                    .arg(version)
                    .arg(ttl_millis())
                    .invoke_async(&mut conn)
                    .await
            })
            .await;
        confirmed.is_some()
    }

    async fn ping(&self) -> Result<(), String> {
        self.client.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> RedisCacheSettings {
        RedisCacheSettings {
            url: Secret::new(url),
            key_prefix: format!("test:{}:", uuid::Uuid::new_v4()),
            ..RedisCacheSettings::default()
        }
    }

    #[tokio::test]
    async fn contract() {
        let url = std::env::var("CRM_TEST_REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into());
        let cache = RedisCache::new(settings(&url)).expect("pool");
        cache.ping().await.unwrap_or_else(|e| {
            panic!(
                "Redis is not reachable at {url} ({e}). Start it with: redis-server --daemonize \
                 yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no"
            )
        });
        super::super::contract::run(&cache, "redis").await;
        assert_eq!(cache.outages(), 0);
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_a_miss_logged_once() {
        // Port 1 refuses connections: the cache must answer (a miss) instead of failing.
        let cache = RedisCache::new(settings("redis://127.0.0.1:1")).expect("pool");
        for version in 1..=5 {
            cache.put("k", version, b"v").await;
            assert_eq!(cache.get("k").await, None);
            assert!(!cache.invalidate("k", version).await, "not confirmed");
        }
        assert_eq!(cache.outages(), 1);
    }
}
