//! Event-driven segmentation. Every `customer.*` event of customer-core carries the
//! customer's snapshot (new metrics after an order, say): it updates segmentation's
//! profile, the customer is scored against the stored RFM bounds, the rules decide its
//! segment, and a change is stored through customer-core. Completed orders and product
//! views feed the recommendations.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use crm_domain::{Customer, CustomerEvent, CustomerEventType, segmentation::SegmentConfig};
use crm_platform::bus::{ConsumerConfig, Delivery, EVENTS_EXCHANGE, Handler, Outcome};

use crate::{
    Error,
    clients::{SegmentDecision, SegmentWriter},
    store::{Profile, PurchasedItem, SegmentStore},
};

pub const CUSTOMERS_QUEUE: &str = "segmentation.customers";
pub const ACTIVITY_QUEUE: &str = "segmentation.activity";

pub fn customers_config() -> ConsumerConfig {
    ConsumerConfig::new(
        CUSTOMERS_QUEUE,
        EVENTS_EXCHANGE,
        &CustomerEventType::snapshot_keys(),
    )
}

pub fn activity_config() -> ConsumerConfig {
    ConsumerConfig::new(
        ACTIVITY_QUEUE,
        EVENTS_EXCHANGE,
        &["order.completed", "product.viewed"],
    )
}

fn event(delivery: &Delivery) -> Result<CustomerEvent, Outcome> {
    serde_json::from_slice(&delivery.message.payload)
        .map_err(|e| Outcome::DeadLetter(format!("not an event: {e}")))
}

/// Store errors are worth a retry; anything else already said what is wrong.
fn retry(error: Error) -> Outcome {
    Outcome::Retry(error.to_string())
}

pub struct Snapshots {
    store: Arc<dyn SegmentStore>,
    writer: Arc<dyn SegmentWriter>,
    rules: SegmentConfig,
}

impl Snapshots {
    pub fn new(
        store: Arc<dyn SegmentStore>,
        writer: Arc<dyn SegmentWriter>,
        rules: SegmentConfig,
    ) -> Self {
        Self {
            store,
            writer,
            rules,
        }
    }

    /// The stored RFM bounds; on a fresh deployment, the first customer with orders has
    /// them computed at once (from what is stored, this customer included) and everyone
    /// scored, rather than nobody until the scheduled recompute.
    async fn bounds_for(
        &self,
        profile: &Profile,
        now: chrono::DateTime<Utc>,
    ) -> Result<Option<crm_domain::rfm::RfmBounds>, Error> {
        if let Some(bounds) = self.store.bounds().await? {
            return Ok(Some(bounds));
        }
        if profile.total_orders == 0 {
            return Ok(None);
        }
        self.store.upsert_profile(profile).await?;
        let bounds = self.store.compute_bounds(now).await?;
        if let Some(bounds) = &bounds {
            let scored = self.store.score_all(bounds, now).await?;
            tracing::info!(scored, "first RFM bounds computed");
        }
        Ok(bounds)
    }

    async fn apply(&self, customer: &Customer) -> Result<(), Error> {
        let now = Utc::now();
        let mut profile = Profile::of(customer);
        if !profile.deleted
            && let Some(bounds) = self.bounds_for(&profile, now).await?
        {
            profile.rfm = Some(profile.score(&bounds, now));
        }
        if profile.deleted {
            self.store.upsert_profile(&profile).await?;
            return Ok(());
        }
        // An older snapshot than the stored one (reordering) decides nothing: the newer
        // one decides. The same one again (a redelivery, after customer-core was away
        // when it was first decided) decides again, or its decision would be lost.
        if !self.store.upsert_profile(&profile).await? {
            let stored = self.store.profile(profile.customer_id).await?;
            if stored.is_none_or(|stored| stored.version != profile.version) {
                return Ok(());
            }
        }
        let decided = SegmentDecision::for_profile(&profile, &self.rules, now);
        if decided.segment == profile.segment {
            return Ok(());
        }
        let segment = decided.segment;
        if self.writer.store(vec![decided]).await? > 0 {
            tracing::info!(customer_id = %profile.customer_id, %segment, "segment changed");
        }
        Ok(())
    }
}

#[async_trait]
impl Handler for Snapshots {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        let event = match event(delivery) {
            Ok(event) => event,
            Err(outcome) => return outcome,
        };
        let customer = match event.snapshot() {
            Ok(customer) => customer,
            Err(error) => return Outcome::DeadLetter(format!("no customer snapshot: {error}")),
        };
        match self.apply(&customer).await {
            Ok(()) => Outcome::Ack,
            Err(error) => retry(error),
        }
    }
}

/// Completed orders' items and product views, for recommendations.
pub struct Activity {
    store: Arc<dyn SegmentStore>,
}

impl Activity {
    pub fn new(store: Arc<dyn SegmentStore>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Handler for Activity {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        let event = match event(delivery) {
            Ok(event) => event,
            Err(outcome) => return outcome,
        };
        let at = event.timestamp;
        let (id, customer) = (event.id, event.customer_id);
        let recorded = match event.event_type {
            CustomerEventType::OrderCompleted => {
                let Some(order) = event.order() else {
                    return Outcome::DeadLetter("an order without order_id or items".into());
                };
                let items: Vec<PurchasedItem> = order
                    .items
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|item| {
                        Some(PurchasedItem {
                            product_id: item.get("product_id")?.as_str()?.to_owned(),
                            quantity: item.get("quantity")?.as_i64()?,
                            category: item
                                .get("category")
                                .and_then(|c| c.as_str())
                                .map(str::to_owned),
                        })
                    })
                    .collect();
                let order_id = order.order_id.to_owned();
                self.store
                    .record_purchase(id, customer, &order_id, &items, at)
                    .await
            }
            CustomerEventType::ProductViewed => {
                let Some((product, category)) = event.viewed_product() else {
                    return Outcome::DeadLetter("a view without product_id".into());
                };
                self.store
                    .record_view(id, customer, product, category, at)
                    .await
            }
            _ => return Outcome::Ack,
        };
        match recorded {
            Ok(()) => Outcome::Ack,
            Err(error) => retry(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use crm_domain::{CustomerDraft, CustomerId};

    use super::*;
    use crate::{
        Result,
        store::{ProfileStore, RecomputeStore, SqliteStore},
    };

    /// customer-core away for the first call, then storing what it gets.
    #[derive(Default)]
    struct AwayOnce(Mutex<(bool, Vec<SegmentDecision>)>);

    #[async_trait]
    impl SegmentWriter for AwayOnce {
        async fn store(&self, decisions: Vec<SegmentDecision>) -> Result<u64> {
            let mut state = self.0.lock().unwrap();
            if !state.0 {
                state.0 = true;
                return Err(tonic::Status::unavailable("customer-core is away").into());
            }
            let n = decisions.len() as u64;
            state.1.extend(decisions);
            Ok(n)
        }
    }

    /// A customer of many orders, at version 3.
    fn big_spender() -> Customer {
        let now = Utc::now();
        let draft = CustomerDraft {
            email: "big@example.com".into(),
            ..CustomerDraft::default()
        };
        let mut customer = Customer::create(CustomerId::generate(), draft, now).unwrap();
        customer.metrics.total_orders = 20;
        customer.metrics.total_spent = 20_000.0;
        customer.metrics.lifetime_value = 20_000.0;
        customer.metrics.last_order_date = Some(now);
        customer.version = 3;
        customer
    }

    #[tokio::test]
    async fn the_first_customer_with_orders_is_scored_without_waiting_for_a_recompute() {
        let store = Arc::new(SqliteStore::in_memory().await.unwrap());
        let writer = Arc::new(AwayOnce::default());
        let snapshots = Snapshots::new(store.clone(), writer, SegmentConfig::default());
        assert!(
            store.bounds().await.unwrap().is_none(),
            "a fresh deployment"
        );
        let customer = big_spender();
        let _ = snapshots.apply(&customer).await;
        assert!(store.bounds().await.unwrap().is_some());
        let profile = store.profile(customer.id).await.unwrap().unwrap();
        assert!(profile.rfm.is_some(), "{profile:?}");
    }

    #[tokio::test]
    async fn a_decision_customer_core_missed_is_made_again_on_redelivery() {
        let store = Arc::new(SqliteStore::in_memory().await.unwrap());
        let writer = Arc::new(AwayOnce::default());
        let snapshots = Snapshots::new(store.clone(), writer.clone(), SegmentConfig::default());
        let customer = big_spender();

        assert!(
            snapshots.apply(&customer).await.is_err(),
            "customer-core was away"
        );
        snapshots.apply(&customer).await.unwrap();
        let stored = writer.0.lock().unwrap().1.clone();
        assert_eq!(stored.len(), 1, "the redelivery stores the decision");
        assert_ne!(stored[0].segment, customer.segment);
        assert_eq!(stored[0].based_on_version, customer.version);

        // An older snapshot than the one stored decides nothing.
        let older = Customer {
            version: 2,
            ..customer.clone()
        };
        snapshots.apply(&older).await.unwrap();
        assert_eq!(writer.0.lock().unwrap().1.len(), 1);
    }
}
