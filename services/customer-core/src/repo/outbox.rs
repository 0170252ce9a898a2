//! The outbox: messages written with the change they announce, relayed to the bus.

use async_trait::async_trait;
use crm_platform::{bus::EventBus, dialect::Arg};

use super::{
    Outbox,
    sql::{DELETE_OUTBOX, OutboxRow},
    sql_repository::{CoreDialect, SqlRepository, placeholder_list, read_rows},
};
use crate::Result;

#[async_trait]
impl<D: CoreDialect> Outbox for SqlRepository<D> {
    async fn relay_outbox(&self, bus: &dyn EventBus, max: u32) -> Result<usize> {
        // The claimed rows stay locked until commit, so a second relay skips them
        // (PostgreSQL) or waits (SQLite, one writer): no row is published twice at once.
        // A crash before the commit publishes them again: at least once.
        let mut tx = self.pool.begin_with(D::BEGIN_READ_THEN_WRITE).await?;
        let rows = sqlx::query(D::CLAIM_OUTBOX)
            .arg(i64::from(max))
            .fetch_all(D::within(&mut tx))
            .await?;
        let rows: Vec<OutboxRow> = read_rows::<D, OutboxRow>(&rows)?;
        if rows.is_empty() {
            return Ok(0);
        }
        // In order, one broadcast per run of rows bound for the same exchange.
        for run in rows.chunk_by(|a, b| a.exchange == b.exchange) {
            let messages: Vec<_> = run.iter().map(OutboxRow::message).collect();
            bus.broadcast(&run[0].exchange, &messages).await?;
        }
        let delete = format!("{DELETE_OUTBOX}{})", placeholder_list(rows.len()));
        let mut relayed = sqlx::query(sqlx::AssertSqlSafe(delete));
        for row in &rows {
            relayed = relayed.arg(row.seq);
        }
        relayed.execute(D::within(&mut tx)).await?;
        tx.commit().await?;
        Ok(rows.len())
    }
}
