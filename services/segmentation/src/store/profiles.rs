//! Profiles: what segmentation keeps of each customer's latest snapshot.

use async_trait::async_trait;
use crm_domain::CustomerId;
use crm_platform::dialect::Arg;

use super::{
    Profile, ProfileStore, SegmentCounts,
    sql::{
        COUNT_BY_RFM_SEGMENT, COUNT_BY_SEGMENT, COUNT_LIVE, ProfileRow, SELECT_PROFILE,
        UPSERT_PROFILE, micros,
    },
    sql_store::{SegmentDialect, SqlStore},
};
use crate::Result;

#[async_trait]
impl<D: SegmentDialect> ProfileStore for SqlStore<D> {
    async fn upsert_profile(&self, p: &Profile) -> Result<bool> {
        let categories = serde_json::to_string(&p.categories).expect("strings serialize");
        let done = sqlx::query(UPSERT_PROFILE)
            .arg(p.customer_id.as_uuid())
            .arg(p.version)
            .arg(p.deleted)
            .arg(p.segment.as_str().to_owned())
            .arg(micros(p.created_at))
            .arg(p.total_orders)
            .arg(p.total_spent)
            .arg(p.lifetime_value)
            .arg(p.last_order_at.map(micros))
            .arg(categories)
            .arg(p.rfm.map(|r| i16::from(r.score.recency)))
            .arg(p.rfm.map(|r| i16::from(r.score.frequency)))
            .arg(p.rfm.map(|r| i16::from(r.score.monetary)))
            .arg(p.rfm.map(|r| r.segment.as_str().to_owned()))
            .arg(p.rfm.map(|r| micros(r.computed_at)))
            .execute(D::on(&self.pool))
            .await?;
        Ok(D::rows_affected(&done) > 0)
    }

    async fn profile(&self, id: CustomerId) -> Result<Option<Profile>> {
        let row = sqlx::query(SELECT_PROFILE)
            .arg(id.as_uuid())
            .fetch_optional(D::on(&self.pool))
            .await?;
        row.map(|row| {
            let row: ProfileRow = D::read(&row)?;
            row.try_into()
        })
        .transpose()
    }

    async fn counts(&self) -> Result<SegmentCounts> {
        let mut counts = Vec::new();
        for statement in [COUNT_BY_SEGMENT, COUNT_BY_RFM_SEGMENT] {
            let rows = sqlx::query(statement).fetch_all(D::on(&self.pool)).await?;
            let mut by_name = std::collections::BTreeMap::new();
            for row in rows {
                let (name, n): (String, i64) = D::read(&row)?;
                by_name.insert(name, u64::try_from(n).unwrap_or_default());
            }
            counts.push(by_name);
        }
        let by_rfm_segment = counts.pop().unwrap_or_default();
        let by_segment = counts.pop().unwrap_or_default();
        Ok(SegmentCounts {
            by_segment,
            by_rfm_segment,
        })
    }

    async fn count_live(&self) -> Result<u64> {
        self.count(&self.pool, sqlx::query(COUNT_LIVE)).await
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("select 1").execute(D::on(&self.pool)).await?;
        Ok(())
    }
}
