//! The `SegmentStore` of both adapters, written once over a sqlx pool type: the
//! statements and rows are `sql.rs`'s; where PostgreSQL and SQLite differ, the adapter
//! says so in its own file (`postgres.rs`, `sqlite.rs`).

/// The `SegmentStore` implementation over one sqlx pool type; both adapters use it, so
/// PostgreSQL and SQLite cannot drift apart. The recompute's statements over all profiles
/// run on the adapter's `batch_pool()`, whose statements may take longer.
macro_rules! impl_segment_store {
    ($adapter:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::SegmentStore for $adapter {
            async fn upsert_profile(&self, p: &$crate::store::Profile) -> $crate::Result<bool> {
                use $crate::store::sql::{UPSERT_PROFILE, micros};
                let categories = serde_json::to_string(&p.categories).expect("strings serialize");
                let done = sqlx::query(UPSERT_PROFILE)
                    .bind(p.customer_id.as_uuid())
                    .bind(p.version)
                    .bind(p.deleted)
                    .bind(p.segment.as_str())
                    .bind(micros(p.created_at))
                    .bind(p.total_orders)
                    .bind(p.total_spent)
                    .bind(p.lifetime_value)
                    .bind(p.last_order_at.map(micros))
                    .bind(categories)
                    .bind(p.rfm.map(|r| i16::from(r.score.recency)))
                    .bind(p.rfm.map(|r| i16::from(r.score.frequency)))
                    .bind(p.rfm.map(|r| i16::from(r.score.monetary)))
                    .bind(p.rfm.map(|r| r.segment.as_str()))
                    .bind(p.rfm.map(|r| micros(r.computed_at)))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn profile(
                &self,
                id: crm_domain::CustomerId,
            ) -> $crate::Result<Option<$crate::store::Profile>> {
                let row: Option<$crate::store::sql::ProfileRow> =
                    sqlx::query_as($crate::store::sql::SELECT_PROFILE)
                        .bind(id.as_uuid())
                        .fetch_optional(&self.pool)
                        .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn counts(&self) -> $crate::Result<$crate::store::SegmentCounts> {
                use $crate::store::sql::{COUNT_BY_RFM_SEGMENT, COUNT_BY_SEGMENT};
                let count = |rows: Vec<(String, i64)>| {
                    rows.into_iter()
                        .map(|(name, n)| (name, u64::try_from(n).unwrap_or_default()))
                        .collect()
                };
                let by_segment = sqlx::query_as(COUNT_BY_SEGMENT)
                    .fetch_all(&self.pool)
                    .await?;
                let by_rfm = sqlx::query_as(COUNT_BY_RFM_SEGMENT)
                    .fetch_all(&self.pool)
                    .await?;
                Ok($crate::store::SegmentCounts {
                    by_segment: count(by_segment),
                    by_rfm_segment: count(by_rfm),
                })
            }

            async fn bounds(&self) -> $crate::Result<Option<crm_domain::rfm::RfmBounds>> {
                let row: Option<(String,)> = sqlx::query_as($crate::store::sql::SELECT_BOUNDS)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|(json,)| {
                    serde_json::from_str(&json).map_err(|e| $crate::Error::Corrupt(e.to_string()))
                })
                .transpose()
            }

            async fn compute_bounds(
                &self,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<Option<crm_domain::rfm::RfmBounds>> {
                use $crate::store::sql::{self, FREQUENCY, MONETARY, RECENCY};
                let now_us = sql::micros(now);
                let mut quintiles = Vec::new();
                for (value, only_ordered) in
                    [(RECENCY, true), (FREQUENCY, false), (MONETARY, false)]
                {
                    let cuts: (Option<f64>, Option<f64>, Option<f64>, Option<f64>) =
                        sqlx::query_as(sqlx::AssertSqlSafe(sql::quintiles(value, only_ordered)))
                            .bind(now_us)
                            .fetch_one(self.batch_pool())
                            .await?;
                    quintiles.push(match cuts {
                        (Some(a), Some(b), Some(c), Some(d)) => {
                            Some(crm_domain::rfm::Quintiles([a, b, c, d]))
                        }
                        _ => None,
                    });
                }
                let [recency, Some(frequency), Some(monetary)]: [_; 3] =
                    quintiles.try_into().expect("three dimensions")
                else {
                    return Ok(None);
                };
                let bounds = crm_domain::rfm::RfmBounds {
                    recency,
                    frequency,
                    monetary,
                    computed_at: now,
                };
                sqlx::query(sql::SAVE_BOUNDS)
                    .bind(serde_json::to_string(&bounds).expect("bounds serialize"))
                    .execute(self.batch_pool())
                    .await?;
                Ok(Some(bounds))
            }

            async fn score_all(
                &self,
                bounds: &crm_domain::rfm::RfmBounds,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<u64> {
                let statement = $crate::store::sql::score_all(bounds);
                let done = sqlx::query(sqlx::AssertSqlSafe(statement))
                    .bind($crate::store::sql::micros(now))
                    .execute(self.batch_pool())
                    .await?;
                Ok(done.rows_affected())
            }

            async fn count_live(&self) -> $crate::Result<u64> {
                let (n,): (i64,) = sqlx::query_as($crate::store::sql::COUNT_LIVE)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(u64::try_from(n).unwrap_or_default())
            }

            fn pending_changes<'a>(
                &'a self,
                rules: &crm_domain::segmentation::SegmentConfig,
                now: chrono::DateTime<chrono::Utc>,
            ) -> futures::stream::BoxStream<'a, $crate::Result<$crate::store::Profile>> {
                use futures::StreamExt;
                use $crate::store::sql::{PENDING_CHANGES, ProfileRow, bind_rules};
                bind_rules!(sqlx::query_as::<_, ProfileRow>(PENDING_CHANGES), rules, now)
                    .fetch(self.batch_pool())
                    .map(|row| row.map_err($crate::Error::from).and_then(TryInto::try_into))
                    .boxed()
            }

            async fn count_pending(
                &self,
                rules: &crm_domain::segmentation::SegmentConfig,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<u64> {
                use $crate::store::sql::{COUNT_PENDING, bind_rules};
                let (n,): (i64,) = bind_rules!(sqlx::query_as(COUNT_PENDING), rules, now)
                    .fetch_one(self.batch_pool())
                    .await?;
                Ok(u64::try_from(n).unwrap_or_default())
            }

            async fn start_job(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                stale_after: chrono::Duration,
            ) -> $crate::Result<$crate::store::RecomputeJob> {
                use $crate::store::{JobStatus, RecomputeJob, sql};
                sqlx::query(sql::FAIL_STALE_JOBS)
                    .bind(sql::micros(now - stale_after))
                    .execute(&self.pool)
                    .await?;
                let job = RecomputeJob {
                    id: uuid::Uuid::now_v7(),
                    status: JobStatus::Running,
                    phase: "starting".into(),
                    total: 0,
                    processed: 0,
                    changed: 0,
                    error: None,
                    started_at: now,
                    finished_at: None,
                };
                let inserted = sqlx::query(sql::INSERT_JOB)
                    .bind(job.id)
                    .bind(job.status.as_str())
                    .bind(job.phase.clone())
                    .bind(0_i64)
                    .bind(0_i64)
                    .bind(0_i64)
                    .bind(None::<String>)
                    .bind(sql::micros(now))
                    .bind(sql::micros(now))
                    .bind(None::<i64>)
                    .execute(&self.pool)
                    .await;
                match inserted {
                    Ok(_) => Ok(job),
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        let running: Option<sql::JobRow> = sqlx::query_as(sql::SELECT_RUNNING_JOB)
                            .fetch_optional(&self.pool)
                            .await?;
                        let running: Option<RecomputeJob> =
                            running.map(TryInto::try_into).transpose()?;
                        Err($crate::Error::AlreadyRunning(running.map(|j| j.id)))
                    }
                    Err(other) => Err(other.into()),
                }
            }

            async fn save_job(
                &self,
                job: &$crate::store::RecomputeJob,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                use $crate::store::sql;
                sql::bind_job!(sqlx::query(sql::UPDATE_JOB), job, now)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn heartbeat(
                &self,
                id: uuid::Uuid,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                use $crate::store::sql;
                sqlx::query(sql::JOB_HEARTBEAT)
                    .bind(id)
                    .bind(sql::micros(now))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn job(
                &self,
                id: uuid::Uuid,
            ) -> $crate::Result<Option<$crate::store::RecomputeJob>> {
                let row: Option<$crate::store::sql::JobRow> =
                    sqlx::query_as($crate::store::sql::SELECT_JOB)
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn record_purchase(
                &self,
                event_id: uuid::Uuid,
                customer: crm_domain::CustomerId,
                order_id: &str,
                items: &[$crate::store::PurchasedItem],
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                use $crate::store::sql;
                let mut tx = sql::begin_first_time!(self.pool, event_id);
                for item in items {
                    sqlx::query(sql::INSERT_PURCHASE)
                        .bind(customer.as_uuid())
                        .bind(order_id)
                        .bind(&item.product_id)
                        .bind(item.quantity)
                        .bind(sql::micros(at))
                        .execute(&mut *tx)
                        .await?;
                    if let Some(category) = &item.category {
                        sqlx::query(sql::UPSERT_PRODUCT)
                            .bind(&item.product_id)
                            .bind(category)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            async fn record_view(
                &self,
                event_id: uuid::Uuid,
                customer: crm_domain::CustomerId,
                product_id: &str,
                category: Option<&str>,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                use $crate::store::sql;
                let mut tx = sql::begin_first_time!(self.pool, event_id);
                sqlx::query(sql::UPSERT_VIEW)
                    .bind(customer.as_uuid())
                    .bind(product_id)
                    .bind(sql::micros(at))
                    .execute(&mut *tx)
                    .await?;
                if let Some(category) = category {
                    sqlx::query(sql::UPSERT_PRODUCT)
                        .bind(product_id)
                        .bind(category)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn bought_together(
                &self,
                customer: crm_domain::CustomerId,
            ) -> $crate::Result<Vec<$crate::store::CoOccurrence>> {
                let rows = sqlx::query_as($crate::store::sql::BOUGHT_TOGETHER)
                    .bind(customer.as_uuid())
                    .bind($crate::store::MAX_ANCHORS)
                    .fetch_all(&self.pool)
                    .await?;
                $crate::store::sql::co_occurrences(rows)
            }

            async fn viewed_together(
                &self,
                customer: crm_domain::CustomerId,
            ) -> $crate::Result<Vec<$crate::store::CoOccurrence>> {
                let rows = sqlx::query_as($crate::store::sql::VIEWED_TOGETHER)
                    .bind(customer.as_uuid())
                    .bind($crate::store::MAX_ANCHORS)
                    .fetch_all(&self.pool)
                    .await?;
                $crate::store::sql::co_occurrences(rows)
            }

            async fn purchased(
                &self,
                customer: crm_domain::CustomerId,
            ) -> $crate::Result<Vec<String>> {
                let rows: Vec<(String,)> = sqlx::query_as($crate::store::sql::PURCHASED)
                    .bind(customer.as_uuid())
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.into_iter().map(|(p,)| p).collect())
            }

            async fn best_sellers(
                &self,
                category: Option<&str>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::store::BestSeller>> {
                let rows: Vec<(String, i64)> = sqlx::query_as($crate::store::sql::BEST_SELLERS)
                    .bind(category)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(product_id, sold)| $crate::store::BestSeller { product_id, sold })
                    .collect())
            }

            async fn ping(&self) -> $crate::Result<()> {
                sqlx::query("select 1").execute(&self.pool).await?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_segment_store;
