//! Calls to other services. Where segment decisions go: customer-core stores them (a new version and a
//! `customer.segment_changed` through its outbox). A port, so the batch's unit tests can
//! see what it decided.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_domain::{CustomerId, Segment, segmentation::SegmentConfig};
use crm_platform::grpc::InternalChannel as Channel;
use crm_proto::{
    convert::segment_to_proto,
    v1::{self, customer_service_client::CustomerServiceClient},
};

use crate::{Result, store::Profile};

/// A segment decision, made from one version of the customer.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentDecision {
    pub customer_id: CustomerId,
    pub based_on_version: i64,
    pub segment: Segment,
    pub reason: String,
}

impl SegmentDecision {
    /// What the rules say of `profile` at `now`, decided from its version.
    pub fn for_profile(profile: &Profile, rules: &SegmentConfig, now: DateTime<Utc>) -> Self {
        let decision = profile.decide(rules, now);
        Self {
            customer_id: profile.customer_id,
            based_on_version: profile.version,
            segment: decision.segment,
            reason: decision.reason,
        }
    }
}

#[async_trait]
pub trait SegmentWriter: Send + Sync {
    /// Stores up to `crm_domain::limits::MAX_SEGMENT_CHANGES`; how many changed a customer (decisions made from
    /// an older version, or for a deleted customer, are skipped).
    async fn store(&self, decisions: Vec<SegmentDecision>) -> Result<u64>;
}

pub struct CustomerCoreWriter {
    client: CustomerServiceClient<Channel>,
}

impl CustomerCoreWriter {
    pub fn new(channel: Channel) -> Self {
        Self {
            client: CustomerServiceClient::new(channel),
        }
    }
}

#[async_trait]
impl SegmentWriter for CustomerCoreWriter {
    async fn store(&self, decisions: Vec<SegmentDecision>) -> Result<u64> {
        let changes = decisions
            .into_iter()
            .map(|d| v1::SetSegmentRequest {
                customer_id: d.customer_id.to_string(),
                segment: segment_to_proto(d.segment) as i32,
                reason: d.reason,
                rfm: None,
                based_on_version: Some(d.based_on_version),
            })
            .collect();
        let answer = self
            .client
            .clone()
            .set_segments(v1::SetSegmentsRequest { changes })
            .await?;
        Ok(u64::from(answer.into_inner().changed))
    }
}
