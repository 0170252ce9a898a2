//! A Redis client for what may fail without harm (a cache, a courtesy dedupe): every
//! call has a deadline, a failure is `None`, and an outage is logged once.

use std::time::Duration;

use deadpool_redis::{Config, Connection, Pool, PoolConfig, Runtime};

use crate::{Error, Result, cache::OutageLog, settings::Secret};

/// Connections to Redis at most, per client.
const MAX_CONNECTIONS: usize = 64;

pub struct RedisClient {
    pool: Pool,
    timeout: Duration,
    outage: OutageLog,
}

impl RedisClient {
    /// Connects lazily: a Redis that is down at start only means failed calls.
    pub fn new(url: &Secret, timeout: Duration) -> Result<Self> {
        let mut config = Config::from_url(url.expose());
        // The default (two per core) makes a burst of requests queue for a connection
        // past the deadline: a cache miss, an invalidation not confirmed. Redis takes
        // many connections easily.
        config.pool = Some(PoolConfig::new(MAX_CONNECTIONS));
        let pool = config
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| Error::Connect {
                what: "redis",
                reason: e.to_string(),
            })?;
        Ok(Self {
            pool,
            timeout,
            outage: OutageLog::default(),
        })
    }

    /// How many outages began since start.
    pub fn outages(&self) -> u64 {
        self.outage.outages()
    }

    /// Runs `op` with a connection within the deadline; a failure becomes `None`.
    pub async fn call<T, F>(&self, op: impl FnOnce(Connection) -> F) -> Option<T>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let attempt = async {
            let conn = self.pool.get().await.map_err(|e| e.to_string())?;
            op(conn).await.map_err(|e| e.to_string())
        };
        let outcome = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        };
        match outcome {
            Ok(value) => {
                self.outage.succeeded("redis");
                Some(value)
            }
            Err(error) => {
                self.outage.failed("redis", &error);
                None
            }
        }
    }

    /// Whether Redis answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), String> {
        let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
