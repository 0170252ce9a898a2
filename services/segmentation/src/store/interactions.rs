//! Purchases and product views, once per event, and what recommendations read of them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_domain::CustomerId;
use crm_platform::dialect::Arg;
use uuid::Uuid;

use super::{
    BestSeller, CoOccurrence, InteractionStore, MAX_ANCHORS, PurchasedItem,
    sql::{
        BEST_SELLERS, BOUGHT_TOGETHER, INSERT_PURCHASE, PURCHASED, UPSERT_PRODUCT, UPSERT_VIEW,
        VIEWED_TOGETHER, co_occurrences, micros,
    },
    sql_store::{SegmentDialect, SqlStore},
};
use crate::Result;

impl<D: SegmentDialect> SqlStore<D> {
    /// Rows of `statement` for the customer's recent anchors.
    async fn together(
        &self,
        statement: &'static str,
        customer: CustomerId,
    ) -> Result<Vec<CoOccurrence>> {
        let rows = sqlx::query(statement)
            .arg(customer.as_uuid())
            .arg(MAX_ANCHORS)
            .fetch_all(D::on(&self.pool))
            .await?;
        let rows = rows
            .iter()
            .map(|row| D::read(row))
            .collect::<Result<Vec<(String, i64, String, i64)>, sqlx::Error>>()?;
        co_occurrences(rows)
    }
}

#[async_trait]
impl<D: SegmentDialect> InteractionStore for SqlStore<D> {
    async fn record_purchase(
        &self,
        event_id: Uuid,
        customer: CustomerId,
        order_id: &str,
        items: &[PurchasedItem],
        at: DateTime<Utc>,
    ) -> Result<()> {
        let Some(mut tx) = self.first_time(event_id).await? else {
            return Ok(());
        };
        for item in items {
            sqlx::query(INSERT_PURCHASE)
                .arg(customer.as_uuid())
                .arg(order_id.to_owned())
                .arg(item.product_id.clone())
                .arg(item.quantity)
                .arg(micros(at))
                .execute(D::within(&mut tx))
                .await?;
            if let Some(category) = &item.category {
                sqlx::query(UPSERT_PRODUCT)
                    .arg(item.product_id.clone())
                    .arg(category.clone())
                    .execute(D::within(&mut tx))
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn record_view(
        &self,
        event_id: Uuid,
        customer: CustomerId,
        product_id: &str,
        category: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let Some(mut tx) = self.first_time(event_id).await? else {
            return Ok(());
        };
        sqlx::query(UPSERT_VIEW)
            .arg(customer.as_uuid())
            .arg(product_id.to_owned())
            .arg(micros(at))
            .execute(D::within(&mut tx))
            .await?;
        if let Some(category) = category {
            sqlx::query(UPSERT_PRODUCT)
                .arg(product_id.to_owned())
                .arg(category.to_owned())
                .execute(D::within(&mut tx))
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn bought_together(&self, customer: CustomerId) -> Result<Vec<CoOccurrence>> {
        self.together(BOUGHT_TOGETHER, customer).await
    }

    async fn viewed_together(&self, customer: CustomerId) -> Result<Vec<CoOccurrence>> {
        self.together(VIEWED_TOGETHER, customer).await
    }

    async fn purchased(&self, customer: CustomerId) -> Result<Vec<String>> {
        let rows = sqlx::query(PURCHASED)
            .arg(customer.as_uuid())
            .fetch_all(D::on(&self.pool))
            .await?;
        rows.iter()
            .map(|row| D::read(row).map(|(product,): (String,)| product))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn best_sellers(&self, category: Option<&str>, limit: u32) -> Result<Vec<BestSeller>> {
        let rows = sqlx::query(BEST_SELLERS)
            .arg(category.map(str::to_owned))
            .arg(i64::from(limit))
            .fetch_all(D::on(&self.pool))
            .await?;
        rows.iter()
            .map(|row| {
                let (product_id, sold): (String, i64) = D::read(row)?;
                Ok(BestSeller { product_id, sold })
            })
            .collect()
    }
}
