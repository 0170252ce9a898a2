//! The customers themselves: create, read, change, list, and the segment decisions of
//! the segmentation batch, set-based.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_domain::{Customer, CustomerEventType, CustomerId, Email};
use crm_platform::dialect::Arg;
use uuid::Uuid;

use super::{
    Change, Customers, SegmentChange,
    sql::{
        self, EXISTS, INSERT, INSERT_EVENTS, INSERT_OUTBOX_ROWS, OutboxMessage, SELECT_BY_ID,
        SELECT_LIVE_BY_EMAIL, SELECT_PAGE, SELECT_SOME, UPDATE, UPDATE_SEGMENTS_FROM,
        UPDATE_SEGMENTS_WHERE, map_write_error,
    },
    sql_repository::{
        CoreDialect, SqlRepository, bind_customer, bind_event, bind_message, insert_event,
        insert_outbox, placeholder_list, read_customer, read_rows, select_customer, values_rows,
    },
};
use crate::{Error, Result};

#[async_trait]
impl<D: CoreDialect> Customers for SqlRepository<D> {
    async fn insert(&self, customer: &Customer) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        bind_customer(sqlx::query(INSERT), customer)
            .execute(D::within(&mut tx))
            .await
            .map_err(map_write_error)?;
        let created = OutboxMessage::customer_changed(CustomerEventType::CustomerCreated, customer);
        insert_outbox::<D>(&mut tx, [created]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get(&self, id: CustomerId) -> Result<Option<Customer>> {
        let mut connection = self.pool.acquire().await?;
        select_customer::<D>(&mut connection, id, SELECT_BY_ID).await
    }

    async fn update(&self, customer: &Customer, change: &Change) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let done = bind_customer(sqlx::query(UPDATE), customer)
            .arg(customer.version - 1)
            .execute(D::within(&mut tx))
            .await
            .map_err(map_write_error)?;
        if D::rows_affected(&done) == 0 {
            let exists = sqlx::query(EXISTS)
                .arg(customer.id.as_uuid())
                .fetch_optional(D::within(&mut tx))
                .await?;
            return Err(match exists {
                Some(_) => Error::VersionConflict,
                None => Error::NotFound(customer.id),
            });
        }
        let announcement = match change {
            Change::Snapshot(event_type) => OutboxMessage::customer_changed(*event_type, customer),
            Change::Activity(event) => {
                insert_event::<D>(&mut tx, event, Utc::now()).await?;
                OutboxMessage::event(event)
            }
        };
        insert_outbox::<D>(&mut tx, [announcement]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_segments(
        &self,
        changes: &[SegmentChange],
        now: DateTime<Utc>,
    ) -> Result<Vec<Customer>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin_with(D::BEGIN_READ_THEN_WRITE).await?;
        let select = format!("{SELECT_SOME}{})", placeholder_list(changes.len()));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(select));
        for change in changes {
            query = query.arg(change.id.as_uuid());
        }
        let rows = query.fetch_all(D::within(&mut tx)).await?;
        let current = rows
            .iter()
            .map(|row| read_customer::<D>(row).map(|c| (c.id, c)))
            .collect::<Result<HashMap<_, _>>>()?;
        let decided = sql::segment_changes(&current, changes, now);
        if decided.is_empty() {
            return Ok(Vec::new());
        }
        // Only rows still at the version read above change; a writer in between wins
        // and that decision is skipped.
        let update = format!(
            "{UPDATE_SEGMENTS_FROM}{}{UPDATE_SEGMENTS_WHERE}",
            values_rows(decided.len(), 4)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(update));
        for (customer, _) in &decided {
            query = query
                .arg(customer.id.as_uuid())
                .arg(customer.segment.as_str().to_owned())
                .arg(customer.version)
                .arg(customer.updated_at);
        }
        let rows = query.fetch_all(D::within(&mut tx)).await?;
        let updated: HashSet<Uuid> = read_rows::<D, (Uuid,)>(&rows)?
            .into_iter()
            .map(|(id,)| id)
            .collect();
        let decided: Vec<_> = decided
            .into_iter()
            .filter(|(customer, _)| updated.contains(&customer.id.as_uuid()))
            .collect();
        if !decided.is_empty() {
            let insert = format!("{INSERT_EVENTS}{}", values_rows(decided.len(), 8));
            let mut events = sqlx::query(sqlx::AssertSqlSafe(insert));
            for (_, event) in &decided {
                events = bind_event(events, event, now);
            }
            events.execute(D::within(&mut tx)).await?;
            let insert = format!("{INSERT_OUTBOX_ROWS}{}", values_rows(decided.len(), 5));
            let mut outbox = sqlx::query(sqlx::AssertSqlSafe(insert));
            for (_, event) in &decided {
                outbox = bind_message(outbox, OutboxMessage::event(event));
            }
            outbox.execute(D::within(&mut tx)).await?;
        }
        tx.commit().await?;
        Ok(decided.into_iter().map(|(customer, _)| customer).collect())
    }

    async fn list(
        &self,
        after: Option<CustomerId>,
        limit: u32,
        include_deleted: bool,
    ) -> Result<Vec<Customer>> {
        let rows = sqlx::query(SELECT_PAGE)
            .arg(after.map(|id| id.as_uuid()))
            .arg(i64::from(limit))
            .arg(include_deleted)
            .fetch_all(D::on(&self.pool))
            .await?;
        rows.iter().map(read_customer::<D>).collect()
    }

    async fn find_live_by_email(&self, email: &Email) -> Result<Option<Customer>> {
        let row = sqlx::query(SELECT_LIVE_BY_EMAIL)
            .arg(email.as_str().to_owned())
            .fetch_optional(D::on(&self.pool))
            .await?;
        row.map(|row| read_customer::<D>(&row)).transpose()
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("select 1").execute(D::on(&self.pool)).await?;
        Ok(())
    }
}
