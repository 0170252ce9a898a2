//! Bulk imports' progress, readable while an upload runs.

use async_trait::async_trait;
use crm_platform::dialect::Arg;
use uuid::Uuid;

use super::{
    Imports,
    sql::{ImportRow, SELECT_IMPORT, UPSERT_IMPORT},
    sql_repository::{CoreDialect, SqlRepository},
};
use crate::Result;
use crm_domain::Job;

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

    async fn get_import(&self, id: Uuid) -> Result<Option<Job>> {
        let row = sqlx::query(SELECT_IMPORT)
            .arg(id)
            .fetch_optional(D::on(&self.pool))
            .await?;
        let row: Option<ImportRow> = row.map(|row| D::read(&row)).transpose()?;
        row.map(TryInto::try_into).transpose()
    }
}
