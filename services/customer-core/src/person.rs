//! Person-level use cases: the 360 view, duplicates, merging, erasure and export.

use std::{future::Future, time::Duration};

use chrono::Utc;
use crm_domain::limits::{MAX_DUPLICATES, MAX_TICKETS_SHOWN};
use crm_domain::{
    Customer, CustomerEvent, CustomerId, Order, SupportTicket, TimelineEntry, ValidationErrors,
    activity, duplicates::Likeness,
};
use tracing::instrument;

use crate::{
    Error, Result,
    repo::{Erasure, Merged},
    service::{CustomerService, retry_lost_races},
};

pub const RECENT_ORDERS: u32 = 10;
pub const RECENT_EVENTS: u32 = 50;
pub const DEFAULT_DUPLICATES: u32 = 10;
/// Candidates sharing a key that are scored; a very common name yields many.
const CANDIDATES: u32 = 500;

/// How long the 360 view waits for each part, and for everything.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deadlines {
    /// Each part read from the customer store.
    pub part: Duration,
    pub whole: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            part: Duration::from_secs(2),
            whole: Duration::from_secs(5),
        }
    }
}

/// A part of the 360 view that is missing from the answer, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Degraded {
    pub part: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Customer360 {
    pub customer: Customer,
    pub recent_orders: Vec<Order>,
    pub recent_activity: Vec<CustomerEvent>,
    pub support_tickets: Vec<SupportTicket>,
    pub timeline: Vec<TimelineEntry>,
    pub degraded: Vec<Degraded>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Duplicate {
    pub customer: Customer,
    pub likeness: Likeness,
}

impl CustomerService {
    /// The customer with their orders, activity and tickets, fetched at once (the
    /// gateway adds segmentation's parts). A part that fails or misses its deadline is
    /// listed under `degraded` and the rest is served; only the customer is required.
    #[instrument(skip_all, fields(customer_id = %id))]
    pub async fn view_360(&self, id: CustomerId) -> Result<Customer360> {
        let deadlines = self.view_deadlines;
        let view = async {
            let customer = self.get(id).await?;
            let store = |e: Error| {
                tracing::warn!(error = %e, "a part of the 360 view failed");
                "the customer store failed".to_owned()
            };
            let (orders, activity, tickets) = tokio::join!(
                part(deadlines.part, async {
                    self.repo
                        .recent_orders(id, RECENT_ORDERS)
                        .await
                        .map_err(store)
                }),
                part(deadlines.part, async {
                    let events = self.repo.list_events(id, None, None, RECENT_EVENTS);
                    events.await.map_err(store)
                }),
                part(deadlines.part, async {
                    let mut tickets = self
                        .repo
                        .tickets(id, MAX_TICKETS_SHOWN)
                        .await
                        .map_err(store)?;
                    activity::open_first(&mut tickets);
                    Ok(tickets)
                }),
            );
            let mut degraded = Vec::new();
            let recent_orders = kept(&mut degraded, "recent_orders", orders);
            let recent_activity = kept(&mut degraded, "recent_activity", activity);
            let support_tickets = kept(&mut degraded, "support_tickets", tickets);
            let timeline = activity::timeline(&recent_orders, &recent_activity, &support_tickets);
            Ok(Customer360 {
                customer,
                recent_orders,
                recent_activity,
                support_tickets,
                timeline,
                degraded,
            })
        };
        tokio::time::timeout(deadlines.whole, view)
            .await
            .map_err(|_| {
                Error::TooSlow(format!(
                    "the 360 view took longer than {:?}",
                    deadlines.whole
                ))
            })?
    }

    /// Live customers who are likely the same person, most likely first.
    pub async fn duplicates(&self, id: CustomerId, limit: Option<u32>) -> Result<Vec<Duplicate>> {
        let limit = match limit.unwrap_or(0) {
            0 => DEFAULT_DUPLICATES,
            n if n <= MAX_DUPLICATES => n,
            _ => {
                let message = format!("must be between 1 and {MAX_DUPLICATES}");
                return Err(ValidationErrors::single("limit", message).into());
            }
        };
        let customer = self.get(id).await?;
        if customer.is_deleted() {
            return Ok(Vec::new());
        }
        let candidates = self
            .repo
            .duplicate_candidates(&customer, CANDIDATES)
            .await?;
        let mut found: Vec<Duplicate> = candidates
            .into_iter()
            .filter_map(|candidate| {
                let likeness = customer.likeness(&candidate)?;
                Some(Duplicate {
                    customer: candidate,
                    likeness,
                })
            })
            .collect();
        found.sort_by(|a, b| {
            b.likeness
                .score
                .total_cmp(&a.likeness.score)
                .then(a.customer.id.cmp(&b.customer.id))
        });
        found.truncate(limit as usize);
        Ok(found)
    }

    /// Merges `secondary` into `primary` (one transaction); with `dry_run` only says
    /// what the merge would make.
    #[instrument(skip_all, fields(primary = %primary, secondary = %secondary, dry_run))]
    pub async fn merge(
        &self,
        primary: CustomerId,
        secondary: CustomerId,
        dry_run: bool,
    ) -> Result<Merged> {
        // A write to either customer came between: merge their newer state.
        let merged =
            retry_lost_races(|| self.repo.merge(primary, secondary, dry_run, Utc::now())).await?;
        if !dry_run {
            self.after_commit([&merged.primary, &merged.secondary])
                .await;
            tracing::info!("customers merged");
        }
        Ok(merged)
    }

    /// Erases the person (right to be forgotten) and records who asked; erasing again
    /// changes nothing. The tombstone left behind.
    #[instrument(skip_all, fields(customer_id = %id))]
    pub async fn erase(
        &self,
        id: CustomerId,
        erased_by: &str,
        request_id: Option<String>,
    ) -> Result<Customer> {
        if erased_by.trim().is_empty() {
            let message = "must name who asks for the erasure";
            return Err(ValidationErrors::single("erased_by", message).into());
        }
        let erasure = Erasure {
            erased_by: erased_by.to_owned(),
            request_id,
            erased_at: crm_domain::stored_precision(Utc::now()),
        };
        let erased = self.repo.erase(id, &erasure).await?;
        self.after_commit(&erased).await;
        if !erased.is_empty() {
            tracing::info!(records = erased.len(), "person erased");
        }
        // The person comes first; nothing when erased before.
        match erased.into_iter().next() {
            Some(person) => Ok(person),
            None => self.repo.get(id).await?.ok_or(Error::NotFound(id)),
        }
    }

    /// Everything kept about the person as one JSON document (right of access).
    pub async fn export(&self, id: CustomerId) -> Result<serde_json::Value> {
        let record = self.repo.export(id).await?.ok_or(Error::NotFound(id))?;
        serde_json::to_value(record).map_err(|e| Error::Corrupt(e.to_string()))
    }
}

/// A part's answer, or its empty value with the part listed as degraded.
fn kept<T: Default>(degraded: &mut Vec<Degraded>, part: &'static str, got: Result<T, String>) -> T {
    got.unwrap_or_else(|reason| {
        degraded.push(Degraded { part, reason });
        T::default()
    })
}

/// One part of the 360 view under its deadline.
async fn part<T>(
    deadline: Duration,
    fetch: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(deadline, fetch)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} ms", deadline.as_millis())))
}
