//! Bulk imports: their rows, written many to a transaction, and their progress,
//! readable while an upload runs.

use async_trait::async_trait;
use crm_domain::{Customer, CustomerEventType, Email, Job};
use crm_platform::dialect::Arg;
use uuid::Uuid;

use super::{
    Imports,
    sql::{
        CUSTOMER_COLUMNS, INSERT_OUTBOX_ROWS, INSERT_ROWS, ImportRow, OutboxMessage, SELECT_IMPORT,
        SELECT_LIVE_BY_EMAILS, UPSERT_IMPORT, map_write_error,
    },
    sql_repository::{
        CoreDialect, SqlRepository, bind_customer, bind_message, placeholder_list, read_customer,
        update_customer, values_rows,
    },
};
use crate::Result;

/// Rows per multi-row statement: 26 binds each stays under SQLite's 32,766 and
/// PostgreSQL's 65,535 binds per statement.
const ROWS_PER_STATEMENT: usize = 500;

#[async_trait]
impl<D: CoreDialect> Imports for SqlRepository<D> {
    async fn save_import(&self, job: &Job) -> Result<()> {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        sqlx::query(UPSERT_IMPORT)
            .arg(job.id)
            .arg(job.status.as_str().to_owned())
            .arg(count(job.count("created")))
            .arg(count(job.count("updated")))
            .arg(count(job.count("unchanged")))
            .arg(count(job.count("failed")))
            .json(&job.failures)
            .arg(job.error.clone())
            .arg(job.started_at)
            .arg(job.finished_at)
            .execute(D::on(&self.pool))
            .await?;
        Ok(())
    }

    async fn find_live_by_emails(&self, emails: &[Email]) -> Result<Vec<Customer>> {
        let mut found = Vec::new();
        for chunk in emails.chunks(ROWS_PER_STATEMENT) {
            let select = format!("{SELECT_LIVE_BY_EMAILS}{})", placeholder_list(chunk.len()));
            let mut query = sqlx::query(sqlx::AssertSqlSafe(select));
            for email in chunk {
                query = query.arg(email.as_str().to_owned());
            }
            for row in query.fetch_all(D::on(&self.pool)).await? {
                found.push(read_customer::<D>(&row)?);
            }
        }
        Ok(found)
    }

    async fn write_import_batch(&self, created: &[Customer], updated: &[Customer]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for chunk in created.chunks(ROWS_PER_STATEMENT) {
            let insert = format!(
                "{INSERT_ROWS}{}",
                values_rows(chunk.len(), CUSTOMER_COLUMNS)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(insert));
            for customer in chunk {
                query = bind_customer(query, customer);
            }
            query
                .execute(D::within(&mut tx))
                .await
                .map_err(map_write_error)?;
        }
        for customer in updated {
            update_customer::<D>(&mut tx, customer).await?;
        }
        let mut announcements = created
            .iter()
            .map(|c| (CustomerEventType::CustomerCreated, c))
            .chain(
                updated
                    .iter()
                    .map(|c| (CustomerEventType::CustomerUpdated, c)),
            )
            .map(|(event_type, c)| OutboxMessage::customer_changed(event_type, c))
            .collect::<Vec<_>>()
            .into_iter()
            .peekable();
        while announcements.peek().is_some() {
            let chunk: Vec<_> = announcements.by_ref().take(ROWS_PER_STATEMENT).collect();
            let insert = format!("{INSERT_OUTBOX_ROWS}{}", values_rows(chunk.len(), 5));
            let mut query = sqlx::query(sqlx::AssertSqlSafe(insert));
            for message in chunk {
                query = bind_message(query, message);
            }
            query.execute(D::within(&mut tx)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get_import(&self, id: Uuid) -> Result<Option<Job>> {
        let row = sqlx::query(SELECT_IMPORT)
            .arg(id)
            .fetch_optional(D::on(&self.pool))
            .await?;
        let row: Option<ImportRow> = row.map(|row| D::read(&row)).transpose()?;
        row.map(TryInto::try_into).transpose()
    }
}
