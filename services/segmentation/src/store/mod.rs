//! Segmentation's own store: a projection of customer-core's snapshots (the metrics the
//! rules and RFM need), the RFM bounds, the batch jobs, and the purchases and product
//! views recommendations learn from: three ports, one adapter over SQL (`sql_store.rs`)
//! whose code and SQL text serve PostgreSQL in production and SQLite in `crm` alike; one
//! contract suite tests both.

#[cfg(test)]
mod contract;
mod interactions;
mod postgres;
mod profiles;
mod recompute;
mod sql;
mod sql_store;
mod sqlite;

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_domain::{
    Customer, CustomerId, CustomerMetrics, Job, Segment,
    rfm::{RfmBounds, RfmInput, RfmScore, RfmSegment},
    segmentation::{SegmentConfig, days_since},
};
use futures::stream::BoxStream;
use uuid::Uuid;

pub use postgres::PostgresStore;
/// The statements the 360 view's parts read, for the benchmark to run them as they are.
pub use sql::{
    BEST_SELLERS, BOUGHT_TOGETHER, PURCHASED, SELECT_BOUNDS, SELECT_PROFILE, VIEWED_TOGETHER,
};
pub use sql_store::SqlStore;
pub use sqlite::SqliteStore;

use crate::Result;

/// What segmentation keeps of one customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub customer_id: CustomerId,
    pub version: i64,
    pub deleted: bool,
    /// The segment customer-core stores.
    pub segment: Segment,
    pub created_at: DateTime<Utc>,
    pub total_orders: i64,
    pub total_spent: f64,
    pub lifetime_value: f64,
    pub last_order_at: Option<DateTime<Utc>>,
    pub categories: Vec<String>,
    pub rfm: Option<ScoredRfm>,
}

/// A customer's RFM scores, their segment name, and when they were computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredRfm {
    pub score: RfmScore,
    pub segment: RfmSegment,
    pub computed_at: DateTime<Utc>,
}

impl Profile {
    pub fn of(customer: &Customer) -> Self {
        let m = &customer.metrics;
        Self {
            customer_id: customer.id,
            version: customer.version,
            deleted: customer.is_deleted(),
            segment: customer.segment,
            created_at: customer.created_at,
            total_orders: m.total_orders,
            total_spent: m.total_spent,
            lifetime_value: m.lifetime_value,
            last_order_at: m.last_order_date,
            categories: customer
                .preferences
                .categories
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            rfm: None,
        }
    }

    /// The metrics the segment rules read.
    pub fn metrics(&self) -> CustomerMetrics {
        CustomerMetrics {
            total_orders: self.total_orders,
            total_spent: self.total_spent,
            lifetime_value: self.lifetime_value,
            last_order_date: self.last_order_at,
            ..CustomerMetrics::default()
        }
    }

    pub fn decide(
        &self,
        rules: &SegmentConfig,
        now: DateTime<Utc>,
    ) -> crm_domain::segmentation::Decision {
        rules.decide(&self.metrics(), self.created_at, now)
    }

    pub fn rfm_input(&self, now: DateTime<Utc>) -> RfmInput {
        RfmInput {
            days_since_last_order: self.last_order_at.map(|at| days_since(at, now)),
            total_orders: self.total_orders,
            total_spent: self.total_spent,
        }
    }

    /// Scores against stored bounds.
    pub fn score(&self, bounds: &RfmBounds, now: DateTime<Utc>) -> ScoredRfm {
        let score = bounds.score(&self.rfm_input(now));
        ScoredRfm {
            score,
            segment: score.segment(),
            computed_at: now,
        }
    }
}

/// Customers per segment and per RFM segment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SegmentCounts {
    pub by_segment: BTreeMap<String, u64>,
    pub by_rfm_segment: BTreeMap<String, u64>,
}

/// How often `candidate` went with `anchor` (a product the customer bought or viewed).
#[derive(Debug, Clone, PartialEq)]
pub struct CoOccurrence {
    pub anchor: String,
    /// When the customer last bought or viewed the anchor.
    pub anchor_at: DateTime<Utc>,
    pub candidate: String,
    /// Orders (or viewers) that had both.
    pub together: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BestSeller {
    pub product_id: String,
    pub sold: i64,
}

/// An item of a completed order.
#[derive(Debug, Clone, PartialEq)]
pub struct PurchasedItem {
    pub product_id: String,
    pub quantity: i64,
    pub category: Option<String>,
}

/// Products recommendations start from: the customer's most recent ones.
pub const MAX_ANCHORS: i64 = 20;

/// Profiles: the projection of customer-core's snapshots.
#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// Keeps a newer snapshot, with its RFM scores when it has them (else the stored
    /// ones stay); `false` when the stored one is as new or newer.
    async fn upsert_profile(&self, profile: &Profile) -> Result<bool>;
    async fn profile(&self, id: CustomerId) -> Result<Option<Profile>>;
    async fn counts(&self) -> Result<SegmentCounts>;
    async fn count_live(&self) -> Result<u64>;
    async fn ping(&self) -> Result<()>;
}

/// The recompute: RFM bounds and scores over the base, pending segment changes, jobs.
#[async_trait]
pub trait RecomputeStore: Send + Sync {
    /// The bounds of the last batch.
    async fn bounds(&self) -> Result<Option<RfmBounds>>;
    /// Computes the quintile bounds of the live base (nearest rank, as
    /// `Quintiles::of`) and stores them; `None` for an empty base.
    async fn compute_bounds(&self, now: DateTime<Utc>) -> Result<Option<RfmBounds>>;
    /// Scores every live customer against `bounds` in one statement, writing only the
    /// scores that changed; how many did.
    async fn score_all(&self, bounds: &RfmBounds, now: DateTime<Utc>) -> Result<u64>;
    /// Live customers whose stored segment is not what the rules say at `now`, streamed
    /// from one query (the batch reads them a thousand at a time).
    fn pending_changes<'a>(
        &'a self,
        rules: &SegmentConfig,
        now: DateTime<Utc>,
    ) -> BoxStream<'a, Result<Profile>>;
    /// How many live customers `pending_changes` would list.
    async fn count_pending(&self, rules: &SegmentConfig, now: DateTime<Utc>) -> Result<u64>;

    /// Registers a running job (times keep microseconds), unless one runs:
    /// `Error::AlreadyRunning`. A running job without a heartbeat for `stale_after` is
    /// marked failed first (its process died).
    async fn start_job(&self, now: DateTime<Utc>, stale_after: chrono::Duration) -> Result<Job>;
    /// Saves progress (and the heartbeat).
    async fn save_job(&self, job: &Job, now: DateTime<Utc>) -> Result<()>;
    /// Says a running job is alive at `now` (its lease against `start_job`'s stale window).
    async fn heartbeat(&self, id: Uuid, now: DateTime<Utc>) -> Result<()>;
    async fn job(&self, id: Uuid) -> Result<Option<Job>>;
}

/// Purchases and product views, and what recommendations read of them.
#[async_trait]
pub trait InteractionStore: Send + Sync {
    /// Records a completed order's items once per event id.
    async fn record_purchase(
        &self,
        event_id: Uuid,
        customer: CustomerId,
        order_id: &str,
        items: &[PurchasedItem],
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// Records a product view once per event id.
    async fn record_view(
        &self,
        event_id: Uuid,
        customer: CustomerId,
        product_id: &str,
        category: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// Products bought in the same orders as the customer's recent purchases.
    async fn bought_together(&self, customer: CustomerId) -> Result<Vec<CoOccurrence>>;
    /// Products viewed by the same customers as the customer's recent views.
    async fn viewed_together(&self, customer: CustomerId) -> Result<Vec<CoOccurrence>>;
    async fn purchased(&self, customer: CustomerId) -> Result<Vec<String>>;
    /// Most sold products, of one category or overall.
    async fn best_sellers(&self, category: Option<&str>, limit: u32) -> Result<Vec<BestSeller>>;
}

/// Everything segmentation keeps, as its services use it.
pub trait SegmentStore: ProfileStore + RecomputeStore + InteractionStore {}

impl<T: ProfileStore + RecomputeStore + InteractionStore> SegmentStore for T {}
