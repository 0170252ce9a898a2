//! Never an older read after a write, from any replica, even when the cache misses an
//! invalidation.
//!
//! Every new version of a customer records the cache entry it makes stale in the same
//! transaction (a trigger on `customers`, see the migration `cache_invalidations`). The
//! writer tells the cache after the commit, as before; what it could not tell (Redis
//! unreachable or slow, the request cancelled, the process killed) stays recorded. Each
//! replica then:
//! - retries the recorded invalidations until the cache confirms them (`drain`);
//! - serves reads from the cache only under a lease: a look at the database, at most
//!   `LEASE` old, that found nothing overdue (`renew`). Overdue is an invalidation the
//!   writer reported undelivered, or one nobody delivered within `GRACE`.
//!
//! A writer whose invalidation failed reports it and waits until every lease granted
//! before its report has run out (`fence`) before it answers: from then on no replica
//! reads the cache until the invalidation is delivered. Redis being away costs reads
//! nothing but their speed, and writes at most one lease of waiting.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crm_domain::CustomerId;
use crm_platform::{Shutdown, cache::VersionedCache};
use futures::StreamExt;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{Result, service::cache_key};

/// How long one clean look at the database lets a replica trust the cache.
pub const LEASE: Duration = Duration::from_secs(1);
/// How often a replica looks (and delivers what is recorded).
const RENEW_EVERY: Duration = Duration::from_millis(200);
/// How long a recorded invalidation may wait for delivery before it counts as overdue.
const GRACE: Duration = Duration::from_secs(2);
/// Invalidations delivered per round trip.
const BATCH: i64 = 1_000;

/// Whether this replica may read the cache, and what keeps that true.
pub struct Freshness {
    /// `None`: the cache lives in this process and every invalidation reaches it (the
    /// standalone binary); it is always trusted.
    ledger: Option<PgPool>,
    cache: Arc<dyn VersionedCache>,
    trusted_until: Mutex<Option<Instant>>,
}

impl Freshness {
    /// For a cache in this process, which no invalidation can miss.
    pub fn in_process(cache: Arc<dyn VersionedCache>) -> Arc<Self> {
        Arc::new(Self {
            ledger: None,
            cache,
            trusted_until: Mutex::new(None),
        })
    }

    /// For a cache shared by replicas, with the invalidations recorded in `pool`. The
    /// cache is not read until `run` has found nothing overdue.
    pub fn shared(pool: PgPool, cache: Arc<dyn VersionedCache>) -> Arc<Self> {
        Arc::new(Self {
            ledger: Some(pool),
            cache,
            trusted_until: Mutex::new(None),
        })
    }

    /// Whether a read may be answered from the cache now.
    pub fn trusted(&self) -> bool {
        if self.ledger.is_none() {
            return true;
        }
        let until = *self.trusted_until.lock().expect("lease");
        until.is_some_and(|until| Instant::now() < until)
    }

    fn distrust(&self) {
        *self.trusted_until.lock().expect("lease") = None;
    }

    /// Tells the cache that these customers changed; when it does not confirm every one,
    /// waits until no replica can serve their old entries. Call after the commit, before
    /// answering.
    pub async fn invalidate(&self, changed: &[(CustomerId, i64)]) {
        let (_, failed) = self.tell_cache(changed.to_vec()).await;
        if !failed.is_empty() {
            self.fence(&failed).await;
        }
    }

    /// Invalidates each `(customer, version)` in the cache: (confirmed, not confirmed).
    async fn tell_cache(
        &self,
        changed: Vec<(CustomerId, i64)>,
    ) -> (Vec<(CustomerId, i64)>, Vec<(CustomerId, i64)>) {
        let told: Vec<((CustomerId, i64), bool)> = futures::stream::iter(changed)
            .map(|(id, version)| async move {
                let confirmed = self.cache.invalidate(&cache_key(id), version).await;
                ((id, version), confirmed)
            })
            .buffer_unordered(64)
            .collect()
            .await;
        let (confirmed, failed): (Vec<_>, Vec<_>) = told.into_iter().partition(|(_, ok)| *ok);
        let pairs =
            |told: Vec<((CustomerId, i64), bool)>| told.into_iter().map(|(p, _)| p).collect();
        (pairs(confirmed), pairs(failed))
    }

    async fn fence(&self, failed: &[(CustomerId, i64)]) {
        let Some(pool) = &self.ledger else {
            return;
        };
        self.distrust();
        let ids: Vec<Uuid> = failed.iter().map(|(id, _)| id.as_uuid()).collect();
        let reported = sqlx::query_scalar::<_, bool>(include_str!("mark_failed.sql"))
            .bind(&ids)
            .bind(LEASE.as_secs_f64())
            .fetch_one(pool)
            .await;
        let wait = match reported {
            // Something has been overdue for a lease already: nobody trusts the cache.
            Ok(true) => Duration::ZERO,
            Ok(false) => LEASE,
            // Unreported, the invalidations still turn overdue after the grace.
            Err(error) => {
                tracing::warn!(%error, "cannot report undelivered cache invalidations");
                GRACE + LEASE
            }
        };
        tracing::warn!(
            customers = failed.len(),
            wait_ms = wait.as_millis() as u64,
            "the cache did not confirm an invalidation; reads go to the database until it does"
        );
        tokio::time::sleep(wait).await;
    }

    /// Delivers recorded invalidations and renews the lease until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        let Some(pool) = self.ledger.clone() else {
            return;
        };
        let mut clean = true;
        loop {
            let round = self.round(&pool).await;
            let was_clean = std::mem::replace(
                &mut clean,
                matches!(round, Ok(Round { lease: Some(_), .. })),
            );
            match &round {
                Ok(Round {
                    lease: Some(until), ..
                }) => {
                    *self.trusted_until.lock().expect("lease") = Some(*until);
                }
                Ok(_) => self.distrust(),
                Err(error) => {
                    if was_clean {
                        tracing::warn!(%error, "cannot check cache invalidations; reads skip the cache");
                    }
                    self.distrust();
                }
            }
            if clean && !was_clean {
                tracing::info!("cache invalidations delivered; reads use the cache again");
            }
            if matches!(round, Ok(Round { full: true, .. })) {
                continue;
            }
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tokio::time::sleep(RENEW_EVERY) => {}
            }
        }
    }

    /// Delivers one batch of recorded invalidations, then looks for overdue ones.
    async fn round(&self, pool: &PgPool) -> Result<Round> {
        let taken: Vec<(Uuid, i64)> = sqlx::query_as(include_str!("take_pending.sql"))
            .bind(BATCH)
            .fetch_all(pool)
            .await?;
        let recorded = taken
            .iter()
            .map(|(id, version)| (CustomerId::from(*id), *version))
            .collect();
        let (delivered, _) = self.tell_cache(recorded).await;
        if !delivered.is_empty() {
            let (ids, versions): (Vec<Uuid>, Vec<i64>) =
                delivered.iter().map(|(id, v)| (id.as_uuid(), *v)).unzip();
            sqlx::query(include_str!("forget_delivered.sql"))
                .bind(ids)
                .bind(versions)
                .execute(pool)
                .await?;
        }
        // A lease counts from before the look that grants it.
        let looked = Instant::now();
        let overdue: bool = sqlx::query_scalar(include_str!("any_overdue.sql"))
            .bind(GRACE.as_secs_f64())
            .fetch_one(pool)
            .await?;
        let all_delivered = delivered.len() == taken.len();
        Ok(Round {
            lease: (all_delivered && !overdue).then_some(looked + LEASE),
            full: all_delivered && taken.len() as i64 == BATCH,
        })
    }
}

struct Round {
    /// Everything taken was delivered and nothing is overdue: the cache may be read
    /// until then.
    lease: Option<Instant>,
    /// A whole batch was delivered: more may be waiting.
    full: bool,
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use async_trait::async_trait;
    use crm_domain::{CustomerDraft, CustomerPatch};
    use crm_platform::{cache::MemoryCache, database::PostgresLimits};

    use super::*;
    use crate::{CustomerService, repo::PostgresRepository};

    /// One cache shared by the replicas (as Redis is) that drops every invalidation while
    /// `dropping` is set, and counts the reads it answers.
    struct Flaky {
        inner: MemoryCache,
        dropping: AtomicBool,
        hits: AtomicU64,
    }

    impl Flaky {
        fn new() -> Arc<Self> {
            Arc::new(Self {
                inner: MemoryCache::new(1_000),
                dropping: AtomicBool::new(false),
                hits: AtomicU64::new(0),
            })
        }
    }

    #[async_trait]
    impl VersionedCache for Flaky {
        async fn get(&self, key: &str) -> Option<Vec<u8>> {
            let value = self.inner.get(key).await;
            if value.is_some() {
                self.hits.fetch_add(1, Ordering::SeqCst);
            }
            value
        }
        async fn put(&self, key: &str, version: i64, value: &[u8]) {
            self.inner.put(key, version, value).await;
        }
        async fn invalidate(&self, key: &str, version: i64) -> bool {
            !self.dropping.load(Ordering::SeqCst) && self.inner.invalidate(key, version).await
        }
        async fn ping(&self) -> Result<(), String> {
            Ok(())
        }
    }

    async fn replica(url: &str, cache: Arc<Flaky>, shutdown: &Shutdown) -> CustomerService {
        let repo = PostgresRepository::connect(url, PostgresLimits::default())
            .await
            .expect("connect");
        let freshness = Freshness::shared(repo.pool().clone(), cache.clone());
        tokio::spawn(freshness.clone().run(shutdown.clone()));
        CustomerService::new(Arc::new(repo), cache).with_freshness(freshness)
    }

    async fn until(what: &str, mut condition: impl FnMut() -> bool) {
        for _ in 0..200 {
            if condition() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting until {what}");
    }

    #[tokio::test]
    async fn a_write_the_cache_did_not_hear_of_is_never_read_older_from_any_replica() {
        let url = crm_platform::testing::fresh_postgres_url().await;
        let cache = Flaky::new();
        let shutdown = Shutdown::new();
        let writer = replica(&url, cache.clone(), &shutdown).await;
        let reader = replica(&url, cache.clone(), &shutdown).await;
        until("both replicas trust the cache", || {
            writer.freshness.trusted() && reader.freshness.trusted()
        })
        .await;

        let draft = CustomerDraft {
            email: "fresh@example.com".into(),
            first_name: Some("Old".into()),
            ..CustomerDraft::default()
        };
        let created = writer.create(draft).await.unwrap();
        reader.get(created.id).await.unwrap();
        assert_eq!(reader.get(created.id).await.unwrap().version, 1);
        assert!(cache.hits.load(Ordering::SeqCst) > 0, "reads use the cache");

        // Every invalidation is lost now. Each answered write is still read back, at
        // once, by the other replica.
        cache.dropping.store(true, Ordering::SeqCst);
        for (round, name) in ["New", "Newer", "Newest"].into_iter().enumerate() {
            let patch: CustomerPatch =
                serde_json::from_value(serde_json::json!({ "first_name": name })).unwrap();
            let written = writer.update(created.id, &patch, None).await.unwrap();
            assert_eq!(written.version, round as i64 + 2);
            let read = reader.get(created.id).await.unwrap();
            assert_eq!(
                read.version, written.version,
                "the reader saw an older version"
            );
            assert_eq!(read.first_name.as_ref().map(|n| n.as_str()), Some(name));
        }

        // Once the cache hears again, the recorded invalidations are delivered and the
        // replicas read from it again.
        cache.dropping.store(false, Ordering::SeqCst);
        until("the replicas trust the cache again", || {
            writer.freshness.trusted() && reader.freshness.trusted()
        })
        .await;
        let hits = cache.hits.load(Ordering::SeqCst);
        reader.get(created.id).await.unwrap();
        let read = reader.get(created.id).await.unwrap();
        assert_eq!(read.version, 4);
        assert!(
            cache.hits.load(Ordering::SeqCst) > hits,
            "the cache serves again"
        );
        shutdown.trigger();
    }
}
