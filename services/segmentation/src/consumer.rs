//! Event-driven segments: every `customer.created` / `customer.updated` carries the
//! customer's snapshot (new metrics after an order, say); the rules decide its segment,
//! and a change is stored through customer-core, which records `customer.segment_changed`.

use async_trait::async_trait;
use chrono::Utc;
use crm_domain::{Customer, CustomerEvent, segmentation::SegmentConfig};
use crm_platform::bus::{ConsumerConfig, Delivery, EVENTS_EXCHANGE, Handler, Outcome};
use crm_proto::{
    convert::segment_to_proto,
    v1::{self, customer_service_client::CustomerServiceClient},
};
use tonic::{Code, transport::Channel};

pub const QUEUE: &str = "segmentation.customers";

pub fn config() -> ConsumerConfig {
    ConsumerConfig::new(
        QUEUE,
        EVENTS_EXCHANGE,
        &["customer.created", "customer.updated"],
    )
}

pub struct Recompute {
    rules: SegmentConfig,
    customers: CustomerServiceClient<Channel>,
}

impl Recompute {
    pub fn new(rules: SegmentConfig, customers: CustomerServiceClient<Channel>) -> Self {
        Self { rules, customers }
    }
}

#[async_trait]
impl Handler for Recompute {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        let snapshot = serde_json::from_slice::<CustomerEvent>(&delivery.message.payload)
            .map_err(|e| e.to_string())
            .and_then(|event| {
                serde_json::from_value::<Customer>(event.data["customer"].clone())
                    .map_err(|e| e.to_string())
            });
        let customer = match snapshot {
            Ok(customer) => customer,
            Err(error) => return Outcome::DeadLetter(format!("no customer snapshot: {error}")),
        };
        if customer.is_deleted() {
            return Outcome::Ack;
        }
        let decision = self
            .rules
            .decide(&customer.metrics, customer.created_at, Utc::now());
        if decision.segment == customer.segment {
            return Outcome::Ack;
        }
        let request = v1::SetSegmentRequest {
            customer_id: customer.id.to_string(),
            segment: segment_to_proto(decision.segment) as i32,
            reason: decision.reason,
            rfm: None,
            based_on_version: Some(customer.version),
        };
        match self.customers.clone().set_segment(request).await {
            Ok(_) => {
                tracing::info!(customer_id = %customer.id, segment = %decision.segment, "segment changed");
                Outcome::Ack
            }
            // A newer snapshot is on its way, or the customer is gone: nothing to do.
            Err(status)
                if matches!(
                    status.code(),
                    Code::FailedPrecondition | Code::NotFound | Code::AlreadyExists
                ) =>
            {
                Outcome::Ack
            }
            Err(status) => Outcome::Retry(format!("customer-core: {}", status.message())),
        }
    }
}
