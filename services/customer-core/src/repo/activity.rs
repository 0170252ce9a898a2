//! A customer's activity: each event recorded once with what it changes (the order,
//! ticket or product view it is about, the customer's metrics, the day's sales, the
//! notifications it triggers), and the feed read back.

use async_trait::async_trait;
use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use crm_domain::{CustomerEvent, CustomerEventType, CustomerId, notification};
use crm_platform::dialect::Arg;

use super::{
    Activity, EventOutcome, FeedPosition,
    sql::{
        EventRow, OutboxMessage, SELECT_EVENTS, UPSERT_COMPLETED_ORDER, UPSERT_DAILY_SALES,
        UPSERT_PLACED_ORDER, UPSERT_PRODUCT_VIEW, UPSERT_TICKET,
    },
    sql_repository::{
        CoreDialect, SqlRepository, insert_event, insert_outbox, read_rows, select_customer,
        write_customer,
    },
};
use crate::{Error, Result};

#[async_trait]
impl<D: CoreDialect> Activity for SqlRepository<D> {
    async fn record_event(
        &self,
        event: &CustomerEvent,
        now: DateTime<Utc>,
    ) -> Result<EventOutcome> {
        // A write that does not lock (an update through the API) may still win the
        // version race between this read and write; the event then applies again.
        for _ in 0..5 {
            let mut tx = self.pool.begin_with(D::BEGIN_READ_THEN_WRITE).await?;
            let mut sales = Sales::new();
            let outcome = match apply_event::<D>(&mut tx, event, now, &mut sales).await {
                Err(Error::Database(sqlx::Error::Database(e))) if e.is_foreign_key_violation() => {
                    return Ok(EventOutcome::UnknownCustomer);
                }
                Err(other) => return Err(other),
                Ok(None) => continue,
                Ok(Some(outcome)) => outcome,
            };
            if matches!(outcome, EventOutcome::Applied { .. }) {
                add_sales::<D>(&mut tx, sales).await?;
                tx.commit().await?;
            }
            return Ok(outcome);
        }
        Err(Error::VersionConflict)
    }

    async fn record_events(
        &self,
        events: &[CustomerEvent],
        now: DateTime<Utc>,
    ) -> Result<Vec<EventOutcome>> {
        // Customers are locked in id order, as every batch does: two batches never
        // wait for each other in a cycle.
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by_key(|&i| events[i].customer_id.as_uuid());
        let mut outcomes = Vec::with_capacity(events.len());
        let mut sales = Sales::new();
        let mut tx = self.pool.begin_with(D::BEGIN_READ_THEN_WRITE).await?;
        for i in order {
            let outcome = apply_event::<D>(&mut tx, &events[i], now, &mut sales).await?;
            outcomes.push((i, outcome.ok_or(Error::VersionConflict)?));
        }
        add_sales::<D>(&mut tx, sales).await?;
        tx.commit().await?;
        outcomes.sort_by_key(|(i, _)| *i);
        Ok(outcomes.into_iter().map(|(_, outcome)| outcome).collect())
    }

    async fn list_events(
        &self,
        customer: CustomerId,
        event_type: Option<CustomerEventType>,
        before: Option<FeedPosition>,
        limit: u32,
    ) -> Result<Vec<CustomerEvent>> {
        let rows = sqlx::query(SELECT_EVENTS)
            .arg(customer.as_uuid())
            .arg(event_type.map(|t| t.as_str().to_owned()))
            .arg(before.map(|p| p.sort_key))
            .arg(before.map(|p| p.id))
            .arg(i64::from(limit))
            .fetch_all(D::on(&self.pool))
            .await?;
        read_rows::<D, EventRow>(&rows)?
            .into_iter()
            .map(TryInto::try_into)
            .collect()
    }
}

/// Completed orders and revenue per (day, segment, currency), added to `daily_sales`
/// last in a transaction and in key order: every event of a day shares its row, which
/// stays locked until commit, so taking it last keeps batches from waiting in a cycle.
type Sales = BTreeMap<(NaiveDate, String, String), (i64, f64)>;

async fn add_sales<D: CoreDialect>(tx: &mut D::Connection, sales: Sales) -> Result<()> {
    for ((day, segment, currency), (orders, revenue)) in sales {
        sqlx::query(UPSERT_DAILY_SALES)
            .arg(day)
            .arg(segment)
            .arg(currency)
            .arg(orders)
            .arg(revenue)
            .execute(D::within(&mut *tx))
            .await?;
    }
    Ok(())
}

/// Records `event` inside `tx`: its activity row, its projection, the customer's new
/// metrics and what they announce; its share of the day's sales goes into `sales`. The customer's row is locked until commit, so events
/// of one customer apply one after the other, and an erasure or a merge never
/// interleaves with one (even an event that leaves the row unchanged). `None` when
/// another writer changed the customer between the read and the write.
async fn apply_event<D: CoreDialect>(
    tx: &mut D::Connection,
    event: &CustomerEvent,
    now: DateTime<Utc>,
    sales: &mut Sales,
) -> Result<Option<EventOutcome>> {
    let customer_id = event.customer_id.as_uuid();
    let locked = select_customer::<D>(&mut *tx, event.customer_id, D::SELECT_FOR_WRITE);
    let Some(current) = locked.await? else {
        return Ok(Some(EventOutcome::UnknownCustomer));
    };
    if let Some(primary) = current.merged_into {
        return Ok(Some(EventOutcome::MergedInto(primary)));
    }
    if current.is_erased() {
        return Ok(Some(EventOutcome::Erased));
    }
    // A failed statement ends the transaction: the error goes up, never an outcome.
    if !insert_event::<D>(&mut *tx, event, now).await? {
        return Ok(Some(EventOutcome::Duplicate));
    }
    let mut completed_total = None;
    if let Some(order) = event.order() {
        let completed = event.event_type == CustomerEventType::OrderCompleted;
        let statement = if completed {
            UPSERT_COMPLETED_ORDER
        } else {
            UPSERT_PLACED_ORDER
        };
        let done = sqlx::query(statement)
            .arg(customer_id)
            .arg(order.order_id.to_owned())
            .arg(order.total)
            .arg(order.currency.to_owned())
            .json(order.items)
            .arg(event.timestamp)
            .execute(D::within(&mut *tx))
            .await?;
        if completed && D::rows_affected(&done) == 1 {
            completed_total = Some(order.total);
        }
    } else if let Some(ticket) = event.ticket() {
        sqlx::query(UPSERT_TICKET)
            .arg(customer_id)
            .arg(ticket.ticket_id.to_owned())
            .arg(ticket.subject.to_owned())
            .arg(ticket.status.to_owned())
            .arg(event.timestamp)
            .execute(D::within(&mut *tx))
            .await?;
    } else if let Some((product_id, category)) = event.viewed_product() {
        sqlx::query(UPSERT_PRODUCT_VIEW)
            .arg(customer_id)
            .arg(product_id.to_owned())
            .arg(category.map(str::to_owned))
            .arg(event.timestamp)
            .execute(D::within(&mut *tx))
            .await?;
    }
    let next = current.after_activity(event.timestamp, completed_total, now);
    let changed = next.version != current.version;
    if changed {
        if write_customer::<D>(&mut *tx, &next).await? == 0 {
            return Ok(None);
        }
        let updated = CustomerEventType::CustomerUpdated;
        insert_outbox::<D>(&mut *tx, [OutboxMessage::customer_changed(updated, &next)]).await?;
    }
    if let (Some(total), Some(order)) = (completed_total, event.order()) {
        let key = (
            event.timestamp.date_naive(),
            current.segment.as_str().to_owned(),
            order.currency.to_ascii_uppercase(),
        );
        let day = sales.entry(key).or_default();
        day.0 += 1;
        day.1 += total;
    }
    let notifications = notification::notifications_for(event, &current, &next)
        .into_iter()
        .map(OutboxMessage::notification);
    insert_outbox::<D>(&mut *tx, notifications).await?;
    Ok(Some(EventOutcome::Applied {
        customer: Box::new(next),
        changed,
    }))
}
