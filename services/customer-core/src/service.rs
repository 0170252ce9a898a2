//! The customer use cases: `CustomerService`, with cache-aside reads and
//! optimistic-concurrency writes. gRPC handlers and (later) bus consumers both call it.

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{Days, NaiveDate, Utc};
use crm_domain::limits::{MAX_PAGE_SIZE, MAX_SALES_DAYS, MAX_SEGMENT_CHANGES};
use crm_domain::{
    Customer, CustomerDraft, CustomerEvent, CustomerEventType, CustomerId, CustomerPatch, Segment,
    ValidationErrors,
};
use crm_platform::cache::VersionedCache;
use tokio::sync::Notify;
use tracing::instrument;
use uuid::Uuid;

use crate::{
    Error, Result,
    freshness::Freshness,
    reads::SharedReads,
    repo::{Change, CustomerRepository, DailySales, EventOutcome, FeedPosition, SegmentChange},
};

pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// How long a write that keeps losing its version race tries again: the events of a busy
/// customer may win many times in a row (each holds the row for milliseconds), and an
/// answered write must not fail for that.
const RACE_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs `attempt` again, after a short random pause, while it loses its version race
/// (`VersionConflict`), for up to `RACE_BUDGET`.
pub(crate) async fn retry_lost_races<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let started = std::time::Instant::now();
    let mut round = 0u32;
    loop {
        match attempt().await {
            Err(Error::VersionConflict) if started.elapsed() < RACE_BUDGET => {
                round += 1;
                let jitter = u64::from(Uuid::new_v4().as_bytes()[0] % 8);
                let pause = (1u64 << round.min(5)) + jitter;
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
            outcome => return outcome,
        }
    }
}
/// How many merges an event follows to the customer who holds its record now.
const MAX_MERGE_HOPS: usize = 8;

#[derive(Clone)]
pub struct CustomerService {
    pub(crate) repo: Arc<dyn CustomerRepository>,
    pub(crate) cache: Arc<dyn VersionedCache>,
    /// Whether the cache may be read now, and the delivery of invalidations.
    pub(crate) freshness: Arc<Freshness>,
    /// Cache misses of one customer at once share one database read.
    pub(crate) reads: Arc<SharedReads>,
    /// Wakes the outbox relay after a commit, so events leave without polling delay.
    pub(crate) outbox: Arc<Notify>,
    pub(crate) view_deadlines: crate::person::Deadlines,
}

/// One page of a customer's activity and the cursor of the next one.
#[derive(Debug)]
pub struct EventPage {
    pub events: Vec<CustomerEvent>,
    pub next_cursor: Option<String>,
}

/// One page of customers and the cursor of the next one.
#[derive(Debug)]
pub struct CustomerPage {
    pub customers: Vec<Customer>,
    pub next_cursor: Option<String>,
}

pub(crate) fn cache_key(id: CustomerId) -> String {
    format!("customer:{id}")
}

impl CustomerService {
    /// After a commit that wrote `customers`: their cached copies go (older versions
    /// only; when the cache cannot be told, this waits until no replica reads it), and
    /// the outbox relay wakes for what the commit announced.
    pub(crate) async fn after_commit<'a>(&self, customers: impl IntoIterator<Item = &'a Customer>) {
        let changed: Vec<(CustomerId, i64)> =
            customers.into_iter().map(|c| (c.id, c.version)).collect();
        if changed.is_empty() {
            return;
        }
        self.freshness.invalidate(&changed).await;
        self.outbox.notify_one();
    }

    /// With the cache in this process (always told of every change). A cache shared by
    /// replicas comes with `with_freshness`.
    pub fn new(repo: Arc<dyn CustomerRepository>, cache: Arc<dyn VersionedCache>) -> Self {
        Self {
            repo,
            freshness: Freshness::in_process(cache.clone()),
            reads: Arc::default(),
            cache,
            outbox: Arc::new(Notify::new()),
            view_deadlines: crate::person::Deadlines::default(),
        }
    }

    /// How reads know the shared cache is current (see `crate::freshness`).
    pub fn with_freshness(mut self, freshness: Arc<Freshness>) -> Self {
        self.freshness = freshness;
        self
    }

    pub fn freshness(&self) -> Arc<Freshness> {
        self.freshness.clone()
    }

    /// How long the 360 view waits for its parts.
    pub fn with_view_deadlines(mut self, deadlines: crate::person::Deadlines) -> Self {
        self.view_deadlines = deadlines;
        self
    }

    /// Notified after every commit that wrote to the outbox.
    pub fn outbox_signal(&self) -> Arc<Notify> {
        self.outbox.clone()
    }

    pub fn repository(&self) -> Arc<dyn CustomerRepository> {
        self.repo.clone()
    }

    #[instrument(skip_all)]
    pub async fn create(&self, draft: CustomerDraft) -> Result<Customer> {
        let customer = Customer::create(CustomerId::generate(), draft, Utc::now())?;
        self.repo.insert(&customer).await?;
        self.outbox.notify_one();
        tracing::info!(customer_id = %customer.id, "customer created");
        Ok(customer)
    }

    #[instrument(skip_all, fields(customer_id = %id))]
    pub async fn update(
        &self,
        id: CustomerId,
        patch: &CustomerPatch,
        expected_version: Option<i64>,
    ) -> Result<Customer> {
        self.write(id, expected_version, |current| {
            if current.is_deleted() {
                return Err(Error::Deleted(id));
            }
            let next = current.patched(patch, Utc::now())?;
            Ok((next, Change::Snapshot(CustomerEventType::CustomerUpdated)))
        })
        .await
    }

    /// Soft delete; deleting a deleted customer changes nothing.
    #[instrument(skip_all, fields(customer_id = %id))]
    pub async fn delete(&self, id: CustomerId, expected_version: Option<i64>) -> Result<Customer> {
        self.write(id, expected_version, |current| {
            let next = if current.is_deleted() {
                current.clone()
            } else {
                current.deleted(Utc::now())
            };
            Ok((next, Change::Snapshot(CustomerEventType::CustomerDeleted)))
        })
        .await
    }

    /// Reads the current row (never the cache), applies `change`, writes the result with
    /// its announcement if the version is still the one read, and invalidates the cache
    /// after the commit. A result of the same version is no change and writes nothing.
    async fn write(
        &self,
        id: CustomerId,
        expected_version: Option<i64>,
        change: impl Fn(&Customer) -> Result<(Customer, Change)>,
    ) -> Result<Customer> {
        // Another writer won: without a precondition try again on its result; with one,
        // the next round reports the version that won.
        let written = retry_lost_races(|| async {
            let current = self.repo.get(id).await?.ok_or(Error::NotFound(id))?;
            if let Some(expected) = expected_version.filter(|v| *v != current.version) {
                return Err(Error::StaleVersion {
                    expected,
                    current: current.version,
                });
            }
            let (next, announcement) = change(&current)?;
            if next.version == current.version {
                return Ok(None);
            }
            self.repo.update(&next, &announcement).await?;
            Ok(Some(next))
        })
        .await?;
        match written {
            Some(next) => {
                self.after_commit([&next]).await;
                Ok(next)
            }
            None => self.repo.get(id).await?.ok_or(Error::NotFound(id)),
        }
    }

    /// Puts the customer in `segment` (the segmentation service decides); a change is a
    /// new version and a `customer.segment_changed` event with the old and the new
    /// segment and the reason, in its activity and on the bus. The same segment again
    /// changes nothing.
    #[instrument(skip_all, fields(customer_id = %id))]
    pub async fn set_segment(
        &self,
        id: CustomerId,
        segment: Segment,
        reason: &str,
        based_on_version: Option<i64>,
    ) -> Result<Customer> {
        self.write(id, based_on_version, |current| {
            if current.is_deleted() {
                return Err(Error::Deleted(id));
            }
            if current.segment == segment {
                let unchanged = Change::Snapshot(CustomerEventType::CustomerUpdated);
                return Ok((current.clone(), unchanged));
            }
            let now = Utc::now();
            let next = current.with_segment(segment, now);
            let event = CustomerEvent::segment_changed(&next, current.segment, reason, now);
            Ok((next, Change::Activity(event)))
        })
        .await
    }

    /// Stores many segment decisions at once (the segmentation batch), as `set_segment`
    /// would one by one but set-based; stale, deleted and unknown customers are skipped.
    /// How many changed.
    #[instrument(skip_all, fields(changes = changes.len()))]
    pub async fn set_segments(&self, changes: &[SegmentChange]) -> Result<usize> {
        if changes.len() > MAX_SEGMENT_CHANGES {
            let message = format!("at most {MAX_SEGMENT_CHANGES} per request");
            return Err(ValidationErrors::single("changes", message).into());
        }
        let changed = self.repo.set_segments(changes, Utc::now()).await?;
        self.after_commit(&changed).await;
        Ok(changed.len())
    }

    /// Records an event of the customer's activity; invalidates the cache after the
    /// commit when the customer changed. An event for a merged-away customer is
    /// recorded for the customer it was merged into.
    #[instrument(skip_all, fields(customer_id = %event.customer_id, event_id = %event.id))]
    pub async fn record_event(&self, event: &CustomerEvent) -> Result<EventOutcome> {
        let mut event = std::borrow::Cow::Borrowed(event);
        let mut recorded = self.repo.record_event(&event, Utc::now()).await?;
        // Merges may chain (a merged into b, b into c); a bound keeps a corrupt cycle
        // from spinning.
        for _ in 0..MAX_MERGE_HOPS {
            let EventOutcome::MergedInto(primary) = recorded else {
                break;
            };
            event.to_mut().customer_id = primary;
            recorded = self.repo.record_event(&event, Utc::now()).await?;
        }
        if let EventOutcome::Applied {
            customer,
            changed: true,
        } = &recorded
        {
            self.after_commit([&**customer]).await;
        }
        Ok(recorded)
    }

    /// Records many events (a consumer's delivery batch) in one transaction; their
    /// outcomes in the same order. Events for merged-away customers follow the merge one
    /// by one; when the batch cannot be written whole (another writer got in between, a
    /// statement failed), each event is recorded on its own, with its own outcome.
    #[instrument(skip_all, fields(events = events.len()))]
    pub async fn record_events(&self, events: &[CustomerEvent]) -> Vec<Result<EventOutcome>> {
        let recorded = match self.repo.record_events(events, Utc::now()).await {
            Ok(recorded) => recorded,
            Err(error) => {
                metrics::counter!("crm_event_batches_split_total").increment(1);
                tracing::debug!(%error, "event batch recorded one by one");
                let mut outcomes = Vec::with_capacity(events.len());
                for event in events {
                    outcomes.push(self.record_event(event).await);
                }
                return outcomes;
            }
        };
        let changed = recorded.iter().filter_map(|outcome| match outcome {
            EventOutcome::Applied {
                customer,
                changed: true,
            } => Some(&**customer),
            _ => None,
        });
        self.after_commit(changed).await;
        let mut outcomes = Vec::with_capacity(events.len());
        for (event, outcome) in events.iter().zip(recorded) {
            outcomes.push(match outcome {
                EventOutcome::MergedInto(_) => self.record_event(event).await,
                other => Ok(other),
            });
        }
        outcomes
    }

    /// The customer's activity, newest first.
    pub async fn events(
        &self,
        id: CustomerId,
        event_type: Option<CustomerEventType>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<EventPage> {
        let limit = page_size(limit)?;
        // An unknown customer is a 404, not an empty feed.
        self.get(id).await?;
        let before = cursor
            .filter(|c| !c.is_empty())
            .map(decode_feed_cursor)
            .transpose()?;
        let mut events = self
            .repo
            .list_events(id, event_type, before, limit + 1)
            .await?;
        let next_cursor = if events.len() > limit as usize {
            events.truncate(limit as usize);
            events
                .last()
                .map(|e| encode_feed_cursor(FeedPosition::of(e)))
        } else {
            None
        };
        Ok(EventPage {
            events,
            next_cursor,
        })
    }

    /// Purchase analytics for `from..=to` (at most a year; defaults: the last 30 days).
    pub async fn daily_sales(
        &self,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<DailySales>> {
        let mut errors = ValidationErrors::default();
        let day = |field: &str, raw: Option<&str>, errors: &mut ValidationErrors| {
            let raw = raw.filter(|r| !r.is_empty())?;
            let parsed = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .map_err(|_| "must be a date, e.g. 2026-11-24".to_owned());
            errors.check(field, parsed)
        };
        let to_day = day("to", to, &mut errors).unwrap_or_else(|| Utc::now().date_naive());
        let from_day = day("from", from, &mut errors).unwrap_or(to_day - Days::new(30));
        if from_day > to_day {
            errors.push("from", "must not be after to");
        } else if (to_day - from_day).num_days() > MAX_SALES_DAYS {
            errors.push(
                "from",
                format!("the range may span at most {MAX_SALES_DAYS} days"),
            );
        }
        if !errors.is_empty() {
            return Err(errors.into());
        }
        self.repo.daily_sales(from_day, to_day).await
    }

    /// A page of customers in id order; the deleted too with `include_deleted` (a
    /// search reindex wants them, to find them with `status=deleted`).
    pub async fn list(
        &self,
        cursor: Option<&str>,
        limit: Option<u32>,
        include_deleted: bool,
    ) -> Result<CustomerPage> {
        let limit = page_size(limit)?;
        let after = cursor
            .filter(|c| !c.is_empty())
            .map(decode_cursor)
            .transpose()?;
        // One extra row tells whether another page follows.
        let mut customers = self.repo.list(after, limit + 1, include_deleted).await?;
        let next_cursor = if customers.len() > limit as usize {
            customers.truncate(limit as usize);
            customers.last().map(|c| encode_cursor(c.id))
        } else {
            None
        };
        Ok(CustomerPage {
            customers,
            next_cursor,
        })
    }
}

fn page_size(limit: Option<u32>) -> Result<u32> {
    match limit.unwrap_or(0) {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n <= MAX_PAGE_SIZE => Ok(n),
        _ => {
            let message = format!("must be between 1 and {MAX_PAGE_SIZE}");
            Err(ValidationErrors::single("limit", message).into())
        }
    }
}

/// A feed cursor: the last event's sort key and id.
fn encode_feed_cursor(position: FeedPosition) -> String {
    let mut bytes = position.sort_key.to_be_bytes().to_vec();
    bytes.extend_from_slice(position.id.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode_feed_cursor(cursor: &str) -> Result<FeedPosition> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .filter(|b| b.len() == 24);
    bytes
        .and_then(|b| {
            let sort_key = i64::from_be_bytes(b[..8].try_into().ok()?);
            Some(FeedPosition {
                sort_key,
                id: Uuid::from_slice(&b[8..]).ok()?,
            })
        })
        .ok_or_else(|| Error::Malformed("cursor is not valid; pass next_cursor unchanged".into()))
}

fn encode_cursor(id: CustomerId) -> String {
    URL_SAFE_NO_PAD.encode(id.as_uuid().as_bytes())
}

fn decode_cursor(cursor: &str) -> Result<CustomerId> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| Uuid::from_slice(&bytes).ok())
        .map(CustomerId::from)
        .ok_or_else(|| Error::Malformed("cursor is not valid; pass next_cursor unchanged".into()))
}

#[cfg(test)]
mod tests;
