//! Purchase analytics: completed orders per day, segment and currency.

use async_trait::async_trait;
use chrono::NaiveDate;
use crm_platform::dialect::Arg;

use super::{
    DailySales, Sales,
    sql::{DailySalesRow, SELECT_DAILY_SALES},
    sql_repository::{CoreDialect, SqlRepository, read_rows},
};
use crate::Result;

#[async_trait]
impl<D: CoreDialect> Sales for SqlRepository<D> {
    async fn daily_sales(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<DailySales>> {
        let rows = sqlx::query(SELECT_DAILY_SALES)
            .arg(from)
            .arg(to)
            .fetch_all(D::on(&self.pool))
            .await?;
        read_rows::<D, DailySalesRow>(&rows)?
            .into_iter()
            .map(TryInto::try_into)
            .collect()
    }
}
