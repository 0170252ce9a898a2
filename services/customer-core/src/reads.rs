//! Reading a customer: from the cache while this replica may trust it
//! (`crate::freshness`), else from the database. Concurrent cache misses of one customer
//! share one database read: when a popular customer falls out of the cache (or the cache
//! is away), 500 requests for it cost the database one read per process, not 500.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crm_domain::{Customer, CustomerId};
use futures::{
    FutureExt,
    future::{BoxFuture, Shared},
};
use tracing::instrument;

use crate::{
    Error, Result,
    service::{CustomerService, cache_key},
};

impl CustomerService {
    /// Cache first, then the database; the cache is filled only from a committed read
    /// and only if no newer write has invalidated it meanwhile. Misses of one customer
    /// at once share one database read.
    #[instrument(skip_all, fields(customer_id = %id))]
    pub async fn get(&self, id: CustomerId) -> Result<Customer> {
        if let Some(customer) = self.cached(id).await {
            return Ok(customer);
        }
        let service = self.clone();
        let shared = self.reads.read(id, move || async move {
            // A read that just finished may have filled the cache after this one missed.
            if let Some(customer) = service.cached(id).await {
                return Ok(Some(customer));
            }
            metrics::counter!("crm_customer_database_reads_total").increment(1);
            let customer = service.repo.get(id).await.map_err(|_| ())?;
            if let Some(customer) = &customer
                && let Ok(bytes) = serde_json::to_vec(customer)
            {
                service
                    .cache
                    .put(&cache_key(id), customer.version, &bytes)
                    .await;
            }
            Ok(customer)
        });
        let found = match shared.await {
            Ok(found) => found,
            // The shared read failed: this caller's own says why.
            Err(()) => self.repo.get(id).await?,
        };
        found.ok_or(Error::NotFound(id))
    }

    /// The cached customer, when the cache may be read and holds it.
    async fn cached(&self, id: CustomerId) -> Option<Customer> {
        if !self.freshness.trusted() {
            return None;
        }
        let lookup =
            |outcome| metrics::counter!("crm_customer_cache_lookups_total", "outcome" => outcome);
        let Some(bytes) = self.cache.get(&cache_key(id)).await else {
            lookup("miss").increment(1);
            return None;
        };
        match serde_json::from_slice::<Customer>(&bytes) {
            Ok(customer) => {
                lookup("hit").increment(1);
                Some(customer)
            }
            Err(error) => {
                tracing::warn!(%error, "ignoring unreadable cache entry");
                None
            }
        }
    }
}

/// One read under way; `Err` when it failed (each waiter then reads on its own, to
/// answer with its own error).
type Loading = Shared<BoxFuture<'static, Result<Option<Customer>, ()>>>;

#[derive(Default)]
pub struct SharedReads {
    under_way: Arc<Mutex<HashMap<CustomerId, Loading>>>,
}

impl SharedReads {
    /// What `read` (the database read, and filling the cache) finds for `id`, shared
    /// with every caller that asks while it runs. It runs to its end even when the caller
    /// that started it goes away, as long as one other waits.
    pub async fn read<F>(
        &self,
        id: CustomerId,
        read: impl FnOnce() -> F,
    ) -> Result<Option<Customer>, ()>
    where
        F: Future<Output = Result<Option<Customer>, ()>> + Send + 'static,
    {
        let loading = {
            let mut under_way = self.under_way.lock().expect("reads under way");
            match under_way.get(&id) {
                Some(loading) => loading.clone(),
                None => {
                    let done = Arc::clone(&self.under_way);
                    let reading = read();
                    let loading = async move {
                        let found = reading.await;
                        done.lock().expect("reads under way").remove(&id);
                        found
                    }
                    .boxed()
                    .shared();
                    under_way.insert(id, loading.clone());
                    loading
                }
            }
        };
        loading.await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_reads_of_one_customer_share_one_read_and_the_next_reads_again() {
        let reads = SharedReads::default();
        let count = Arc::new(AtomicU32::new(0));
        let id = CustomerId::generate();
        let read = || {
            let count = count.clone();
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                Ok(None)
            }
        };
        let all = (0..100).map(|_| reads.read(id, read));
        let found = futures::future::join_all(all).await;
        assert!(found.iter().all(|f| *f == Ok(None)));
        assert_eq!(count.load(Ordering::SeqCst), 1);
        reads.read(id, read).await.unwrap();
        assert_eq!(
            count.load(Ordering::SeqCst),
            2,
            "a read after it reads again"
        );
    }
}
