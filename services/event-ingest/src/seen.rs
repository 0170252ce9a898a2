//! Which event ids were accepted before, so a resent event counts as a duplicate. This
//! is the courtesy answer to the client; the guarantee that an event has no second
//! effect is customer-core's idempotent append.

use std::time::Duration;

use async_trait::async_trait;
use crm_platform::{redis::RedisClient, settings::RedisSettings};
use uuid::Uuid;

/// How long an id is remembered.
pub const REMEMBER_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

/// Only a confirmed publish makes an id seen: an id is remembered after the broker
/// confirmed its event, never before, so a request that failed or was cancelled half way
/// leaves nothing behind and the client's retry is published. (Two requests racing with
/// one id may both publish it; customer-core applies it once.)
#[async_trait]
pub trait SeenEvents: Send + Sync {
    /// For each id, whether its event was published before. An unreachable store says
    /// "no" (the consumers still deduplicate).
    async fn seen(&self, ids: &[Uuid]) -> Vec<bool>;

    /// Remembers ids whose events the broker confirmed.
    async fn remember(&self, ids: &[Uuid]);
}

/// In-process, for the standalone binary.
pub struct MemorySeen(moka::future::Cache<Uuid, ()>);

impl MemorySeen {
    pub fn new(capacity: u64) -> Self {
        Self(
            moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(REMEMBER_FOR)
                .build(),
        )
    }
}

#[async_trait]
impl SeenEvents for MemorySeen {
    async fn seen(&self, ids: &[Uuid]) -> Vec<bool> {
        ids.iter().map(|id| self.0.contains_key(id)).collect()
    }

    async fn remember(&self, ids: &[Uuid]) {
        for id in ids {
            self.0.insert(*id, ()).await;
        }
    }
}

/// Redis `SET NX` per id, shared by every replica.
pub struct RedisSeen {
    client: RedisClient,
    prefix: String,
}

impl RedisSeen {
    pub fn new(settings: &RedisSettings) -> crm_platform::Result<Self> {
        Ok(Self {
            client: RedisClient::new(&settings.redis_url, settings.timeout())?,
            prefix: settings.redis_key_prefix.clone(),
        })
    }

    /// Whether Redis answers (readiness).
    pub async fn ping(&self) -> Result<(), String> {
        self.client.ping().await
    }

    fn key(&self, id: &Uuid) -> String {
        format!("{}event:{id}", self.prefix)
    }

    async fn run<T: redis::FromRedisValue>(&self, pipe: redis::Pipeline) -> Option<T> {
        self.client
            .call(|mut conn| async move { pipe.query_async::<T>(&mut conn).await })
            .await
    }
}

#[async_trait]
impl SeenEvents for RedisSeen {
    async fn seen(&self, ids: &[Uuid]) -> Vec<bool> {
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("EXISTS").arg(self.key(id));
        }
        match self.run::<Vec<bool>>(pipe).await {
            Some(answers) => answers,
            None => vec![false; ids.len()],
        }
    }

    async fn remember(&self, ids: &[Uuid]) {
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("SET")
                .arg(self.key(id))
                .arg(1)
                .arg("PX")
                .arg(REMEMBER_FOR.as_millis() as u64)
                .ignore();
        }
        let _: Option<()> = self.run(pipe).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn contract(seen: &dyn SeenEvents) {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(seen.seen(&[a, b]).await, [false, false]);
        assert_eq!(seen.seen(&[a]).await, [false], "asking remembers nothing");
        seen.remember(&[a]).await;
        assert_eq!(seen.seen(&[a, b]).await, [true, false]);
    }

    #[tokio::test]
    async fn memory() {
        contract(&MemorySeen::new(100)).await;
    }

    #[tokio::test]
    async fn redis() {
        let seen = RedisSeen::new(&RedisSettings {
            redis_key_prefix: format!("test:{}:", Uuid::new_v4().simple()),
            ..RedisSettings::default()
        })
        .unwrap();
        contract(&seen).await;
        assert_eq!(
            seen.client.outages(),
            0,
            "Redis must be running on 127.0.0.1:6379"
        );
    }
}
