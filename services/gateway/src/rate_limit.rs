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

/// The bucket kept in Redis and taken from atomically (a script, on Redis's clock): up to
/// ARGV[3] whole tokens at once while the bucket is more than half full, one at a time
/// below that (so that many requests arriving together each find a token, not a few of
/// them a lease each). The answer is "granted wait": how many tokens were taken, and when
/// none were, the wait in seconds for one.
const TAKE: &str = r"
local rate, burst, wanted = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(held[1]) or burst
local at = tonumber(held[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
if tokens <= burst / 2 then wanted = 1 end
local granted, wait = math.min(wanted, math.floor(tokens)), 0
if granted >= 1 then tokens = tokens - granted else granted = 0; wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(granted) .. ' ' .. tostring(wait)
";

/// How long a replica may hold tokens it took ahead; unused ones are dropped then.
const LEASE_TTL: Duration = Duration::from_secs(1);

/// Buckets shared by every replica through Redis. While Redis does not answer, each
/// replica limits on its own (the API stays up; the rate is per replica for that time).
///
/// While a caller's bucket is more than half full, a replica takes its tokens in leases
/// of a sixteenth of the burst (at most 64): a busy caller well within its rate costs one
/// Redis call per lease instead of one per request; near its limit, one call per request
/// as before. Every token served was taken from the shared bucket, so N replicas never
/// give more than the rate; tokens a replica holds when its caller moves to another are
/// dropped after a second.
pub struct RedisLimiter {
    client: crm_platform::redis::RedisClient,
    prefix: String,
    script: Script,
    lease: u32,
    leased: Mutex<HashMap<String, (u32, Instant)>>,
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
            lease: (burst / 16).clamp(1, 64),
            leased: Mutex::default(),
            local: MemoryLimiter::new(per_second, burst),
        }
    }

    /// A token from the caller's lease, while it holds one.
    fn take_leased(&self, caller: &str, now: Instant) -> bool {
        let mut leased = self.leased.lock().expect("rate leases");
        match leased.get_mut(caller) {
            Some((left, until)) if *left > 0 && now < *until => {
                *left -= 1;
                true
            }
            Some(_) => {
                leased.remove(caller);
                false
            }
            None => false,
        }
    }

    /// Keeps the tokens taken beyond this request for the next ones.
    fn keep_lease(&self, caller: &str, left: u32, now: Instant) {
        if left == 0 {
            return;
        }
        let mut leased = self.leased.lock().expect("rate leases");
        if leased.len() >= MAX_BUCKETS {
            leased.retain(|_, (_, until)| now < *until);
        }
        // Requests that went to Redis together each add what they did not use.
        let held = leased.entry(caller.to_owned()).or_insert((0, now));
        *held = (held.0 + left, now + LEASE_TTL);
    }
}

#[async_trait]
impl RateLimit for RedisLimiter {
    async fn take(&self, caller: &str) -> Result<(), Duration> {
        if self.take_leased(caller, Instant::now()) {
            return Ok(());
        }
        // The caller's name's length keeps names holding ':' apart.
        let key = format!("{}{}:{caller}", self.prefix, caller.len());
        let (per_second, burst, script) = (self.local.per_second, self.local.burst, &self.script);
        let lease = self.lease;
        let answer: Option<String> = self
            .client
            .call(|mut conn| async move {
                script
                    .key(&key)
                    .arg(per_second)
                    .arg(burst)
                    .arg(lease)
                    .invoke_async(&mut conn)
                    .await
            })
            .await;
        let parsed = answer.as_deref().and_then(|answer| {
            let (granted, wait) = answer.split_once(' ')?;
            Some((granted.parse::<u32>().ok()?, wait.parse::<f64>().ok()?))
        });
        match parsed {
            // Requests that went to Redis beside this one may have leased what it needs.
            Some((0, _)) if self.take_leased(caller, Instant::now()) => Ok(()),
            Some((0, wait)) => Err(Duration::from_secs_f64(wait.max(0.001))),
            Some((granted, _)) => {
                self.keep_lease(caller, granted - 1, Instant::now());
                Ok(())
            }
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

    /// The test Redis, and two replicas' limiters on a key prefix of their own.
    fn two_replicas(
        per_second: f64,
        burst: u32,
    ) -> (
        crm_platform::settings::Secret,
        String,
        RedisLimiter,
        RedisLimiter,
    ) {
        let url = std::env::var("CRM_TEST_REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into());
        let url = crm_platform::settings::Secret::new(url);
        let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
        let replica = || {
            let client = crm_platform::redis::RedisClient::new(&url, Duration::from_secs(2))
                .expect("client");
            RedisLimiter::new(client, &prefix, per_second, burst)
        };
        let (one, two) = (replica(), replica());
        (url, prefix, one, two)
    }

    #[tokio::test]
    async fn replicas_sharing_redis_share_each_callers_bucket() {
        let (_, _, one, two) = two_replicas(0.5, 4);
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

    #[tokio::test]
    async fn replicas_take_tokens_in_leases_and_never_more_than_the_burst() {
        let (url, prefix, one, two) = two_replicas(0.01, 64);
        assert_eq!(one.lease, 4, "a sixteenth of the burst");
        assert!(one.take("web").await.is_ok());
        let client = redis::Client::open(url.expose()).expect("client");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("Redis must be running on 127.0.0.1:6379");
        let key = format!("{prefix}rate:3:web");
        let left: f64 = redis::cmd("HGET")
            .arg(&key)
            .arg("tokens")
            .query_async::<String>(&mut conn)
            .await
            .expect("the shared bucket")
            .parse()
            .expect("a number");
        assert!(
            (59.0..60.01).contains(&left),
            "one call took a lease of 4: {left}"
        );
        let mut taken = 1;
        for _ in 0..40 {
            taken += usize::from(one.take("web").await.is_ok());
            taken += usize::from(two.take("web").await.is_ok());
        }
        assert_eq!(taken, 64, "the burst across both replicas, not more");
        assert!(one.take("web").await.is_err() && two.take("web").await.is_err());
    }

    #[tokio::test]
    async fn requests_arriving_together_each_get_a_token_of_the_burst() {
        let (_, _, one, _) = two_replicas(0.01, 1_000);
        let takes = (0..500).map(|_| one.take("web"));
        let answers = futures::future::join_all(takes).await;
        let taken = answers.iter().filter(|answer| answer.is_ok()).count();
        assert_eq!(taken, 500, "500 requests at once fit a burst of 1,000");
    }
}
