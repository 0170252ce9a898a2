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
    store::{Profile, PurchasedItem, SegmentStore},
    writer::{Decided, SegmentWriter},
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

    async fn apply(&self, customer: &Customer) -> Result<(), Error> {
        let now = Utc::now();
        let mut profile = Profile::of(customer);
        if !profile.deleted
            && let Some(bounds) = self.store.bounds().await?
        {
            profile.rfm = Some(profile.score(&bounds, now));
        }
        // An older snapshot than the stored one (redelivery, reordering) decides nothing.
        if !self.store.upsert_profile(&profile).await? || profile.deleted {
            return Ok(());
        }
        let decided = Decided::for_profile(&profile, &self.rules, now);
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
