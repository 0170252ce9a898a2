//! How often each caller may call: a token bucket per caller of `per_second` sustained
//! and `burst` at once. In memory for one gateway; in Redis when the gateway has one, so
//! that N replicas give a caller the same rate as one (not N times it).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use redis::Script;

#[async_trait]
pub trait RateLimit: Send + Sync {
    /// Takes a token for `caller`, or says how long until one is there.
    async fn take(&self, caller: &str) -> Result<(), Duration>;
}

/// The buckets of one process.
pub struct MemoryLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

/// Callers remembered at most; the fullest buckets are forgotten first.
const MAX_BUCKETS: usize = 10_000;

impl MemoryLimiter {
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self {
            per_second: per_second.max(0.001),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::default(),
        }
    }

    fn take_at(&self, caller: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().expect("rate buckets");
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(caller) {
            // A full bucket is the same as no bucket.
            let (per_second, burst) = (self.per_second, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + at.elapsed().as_secs_f64() * per_second < burst
            });
        }
        let (tokens, at) = buckets
            .entry(caller.to_owned())
            .or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.per_second))
        }
    }
}

#[async_trait]
impl RateLimit for MemoryLimiter {
    async fn take(&self, caller: &str) -> Result<(), Duration> {
        self.take_at(caller, Instant::now())
    }
}

/// The bucket kept in Redis and taken from atomically (a script, on Redis's clock); the
/// answer is the wait in seconds, 0 for a token taken.
const TAKE: &str = r"
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(held[1]) or burst
local at = tonumber(held[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
";

/// Buckets shared by every replica through Redis. While Redis does not answer, each
/// replica limits on its own (the API stays up; the rate is per replica for that time).
pub struct RedisLimiter {
    client: crm_platform::redis::RedisClient,
    prefix: String,
    script: Script,
    local: MemoryLimiter,
}

impl RedisLimiter {
    pub fn new(
        client: crm_platform::redis::RedisClient,
        prefix: &str,
        per_second: f64,
        burst: u32,
    ) -> Self {
        Self {
            client,
            prefix: format!("{prefix}rate:"),
            script: Script::new(TAKE),
            local: MemoryLimiter::new(per_second, burst),
        }
    }
}

#[async_trait]
impl RateLimit for RedisLimiter {
    async fn take(&self, caller: &str) -> Result<(), Duration> {
        // The caller's name's length keeps names holding ':' apart.
        let key = format!("{}{}:{caller}", self.prefix, caller.len());
        let (per_second, burst, script) = (self.local.per_second, self.local.burst, &self.script);
        let answer: Option<String> = self
            .client
            .call(|mut conn| async move {
                script
                    .key(&key)
                    .arg(per_second)
                    .arg(burst)
                    .invoke_async(&mut conn)
                    .await
            })
            .await;
        match answer.and_then(|wait| wait.parse::<f64>().ok()) {
            Some(wait) if wait > 0.0 => Err(Duration::from_secs_f64(wait)),
            Some(_) => Ok(()),
            None => self.local.take(caller).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_one_per_interval() {
        let limiter = MemoryLimiter::new(2.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take_at("web", start).is_ok());
        }
        let wait = limiter.take_at("web", start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(
            limiter.take_at("other", start).is_ok(),
            "each caller has its own bucket"
        );
        assert!(
            limiter
                .take_at("web", start + Duration::from_millis(500))
                .is_ok()
        );
    }

    #[tokio::test]
    async fn replicas_sharing_redis_share_each_callers_bucket() {
        let url = std::env::var("CRM_TEST_REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into());
        let url = crm_platform::settings::Secret::new(url);
        let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
        let replica = || {
            let client = crm_platform::redis::RedisClient::new(&url, Duration::from_secs(2))
                .expect("client");
            RedisLimiter::new(client, &prefix, 0.5, 4)
        };
        let (one, two) = (replica(), replica());
        let mut taken = 0;
        for _ in 0..4 {
            taken += usize::from(one.take("web").await.is_ok());
            taken += usize::from(two.take("web").await.is_ok());
        }
        assert_eq!(taken, 4, "a burst of 4 across both replicas, not 4 each");
        let wait = one.take("web").await.unwrap_err();
        assert!(
            wait > Duration::from_millis(500) && wait <= Duration::from_secs(2),
            "{wait:?}"
        );
        assert!(
            two.take("other").await.is_ok(),
            "each caller has its own bucket"
        );
        assert_eq!(
            one.client.outages(),
            0,
            "Redis must be running on 127.0.0.1:6379"
        );
    }
}
