//! The `CustomerRepository` of both adapters, written once over a sqlx pool type: the
//! statements are `sql.rs`'s, the rows `rows.rs`'s. Where PostgreSQL and SQLite differ
//! (how a read-then-write transaction begins, how rows are locked or claimed), the adapter
//! names the difference in a constant of its own (`postgres.rs`, `sqlite.rs`).

/// The `CustomerRepository` implementation over one sqlx pool type; both adapters use
/// it, so PostgreSQL and SQLite cannot drift apart.
macro_rules! impl_customer_repository {
    ($adapter:ty) => {
        #[async_trait::async_trait]
        impl $crate::repo::CustomerRepository for $adapter {
            async fn insert(&self, customer: &crm_domain::Customer) -> $crate::Result<()> {
                use crm_domain::CustomerEventType;
                let mut tx = self.pool.begin().await?;
                let query = $crate::repo::sql::bind_customer!(
                    sqlx::query($crate::repo::sql::INSERT),
                    customer
                );
                query
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::repo::sql::map_write_error)?;
                let created = $crate::repo::sql::OutboxMessage::customer_changed(
                    CustomerEventType::CustomerCreated,
                    customer,
                );
                $crate::repo::sql::insert_outbox!(tx, [created]);
                tx.commit().await?;
                Ok(())
            }

            async fn get(
                &self,
                id: crm_domain::CustomerId,
            ) -> $crate::Result<Option<crm_domain::Customer>> {
                $crate::repo::sql::select_customer!(&self.pool, id)
            }

            async fn update(
                &self,
                customer: &crm_domain::Customer,
                change: &$crate::repo::Change,
            ) -> $crate::Result<()> {
                use $crate::repo::{Change, sql};
                let mut tx = self.pool.begin().await?;
                let query = sql::bind_customer!(sqlx::query(sql::UPDATE), customer)
                    .bind(customer.version - 1);
                let done = query
                    .execute(&mut *tx)
                    .await
                    .map_err(sql::map_write_error)?;
                if done.rows_affected() == 0 {
                    let exists = sqlx::query(sql::EXISTS)
                        .bind(customer.id.as_uuid())
                        .fetch_optional(&mut *tx)
                        .await?;
                    return Err(match exists {
                        Some(_) => $crate::Error::VersionConflict,
                        None => $crate::Error::NotFound(customer.id),
                    });
                }
                let announcement = match change {
                    Change::Snapshot(event_type) => {
                        sql::OutboxMessage::customer_changed(*event_type, customer)
                    }
                    Change::Activity(event) => {
                        sql::insert_event!(tx, event, chrono::Utc::now())?;
                        sql::OutboxMessage::event(event)
                    }
                };
                sql::insert_outbox!(tx, [announcement]);
                tx.commit().await?;
                Ok(())
            }

            async fn set_segments(
                &self,
                changes: &[$crate::repo::SegmentChange],
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<Vec<crm_domain::Customer>> {
                use $crate::repo::sql;
                if changes.is_empty() {
                    return Ok(Vec::new());
                }
                let mut tx = self.pool.begin_with(Self::BEGIN_READ_THEN_WRITE).await?;
                let mut select = sqlx::QueryBuilder::new(sql::SELECT_SOME);
                let mut ids = select.separated(", ");
                for change in changes {
                    ids.push_bind(change.id.as_uuid());
                }
                select.push(")");
                let rows: Vec<sql::CustomerRow> =
                    select.build_query_as().fetch_all(&mut *tx).await?;
                let current = rows
                    .into_iter()
                    .map(|row| crm_domain::Customer::try_from(row).map(|c| (c.id, c)))
                    .collect::<$crate::Result<std::collections::HashMap<_, _>>>()?;
                let decided = sql::segment_changes(&current, changes, now);
                if decided.is_empty() {
                    return Ok(Vec::new());
                }
                // Only rows still at the version read above change; a writer in between
                // wins and that decision is skipped.
                let mut update = sqlx::QueryBuilder::new(sql::UPDATE_SEGMENTS_FROM);
                update.push_values(&decided, |mut row, (customer, _)| {
                    row.push_bind(customer.id.as_uuid())
                        .push_bind(customer.segment.as_str())
                        .push_bind(customer.version)
                        .push_bind(customer.updated_at);
                });
                update.push(sql::UPDATE_SEGMENTS_WHERE);
                let updated: Vec<(uuid::Uuid,)> =
                    update.build_query_as().fetch_all(&mut *tx).await?;
                let updated: std::collections::HashSet<uuid::Uuid> =
                    updated.into_iter().map(|(id,)| id).collect();
                let decided: Vec<_> = decided
                    .into_iter()
                    .filter(|(customer, _)| updated.contains(&customer.id.as_uuid()))
                    .collect();
                if !decided.is_empty() {
                    let mut events = sqlx::QueryBuilder::new(sql::INSERT_EVENTS);
                    events.push_values(&decided, |mut row, (_, event)| {
                        row.push_bind(event.id)
                            .push_bind(event.customer_id.as_uuid())
                            .push_bind(event.event_type.as_str())
                            .push_bind(sqlx::types::Json(event.data.clone()))
                            .push_bind(event.source.clone())
                            .push_bind(event.timestamp)
                            .push_bind(event.timestamp.timestamp_micros())
                            .push_bind(now);
                    });
                    events.build().execute(&mut *tx).await?;
                    let mut outbox = sqlx::QueryBuilder::new(sql::INSERT_OUTBOX_ROWS);
                    outbox.push_values(&decided, |mut row, (_, event)| {
                        let message = sql::OutboxMessage::event(event);
                        row.push_bind(message.id)
                            .push_bind(message.exchange)
                            .push_bind(message.routing_key)
                            .push_bind(sqlx::types::Json(message.payload))
                            .push_bind(message.at);
                    });
                    outbox.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(decided.into_iter().map(|(customer, _)| customer).collect())
            }

            async fn list(
                &self,
                after: Option<crm_domain::CustomerId>,
                limit: u32,
                include_deleted: bool,
            ) -> $crate::Result<Vec<crm_domain::Customer>> {
                let rows: Vec<$crate::repo::sql::CustomerRow> =
                    sqlx::query_as($crate::repo::sql::SELECT_PAGE)
                        .bind(after.map(|id| id.as_uuid()))
                        .bind(i64::from(limit))
                        .bind(include_deleted)
                        .fetch_all(&self.pool)
                        .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn record_event(
                &self,
                event: &crm_domain::CustomerEvent,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::repo::EventOutcome> {
                use $crate::repo::{EventOutcome, sql};
                // The customer's row is locked until commit, so events of one customer
                // apply one after the other, and an erasure or a merge never interleaves
                // with one (even an event that leaves the row unchanged). A write that does
                // not lock (an update through the API) still loses its version race and
                // retries, as may this loop.
                for _ in 0..5 {
                    let mut tx = self.pool.begin_with(Self::BEGIN_READ_THEN_WRITE).await?;
                    let customer_id = event.customer_id.as_uuid();
                    let locked =
                        sql::select_customer!(&mut *tx, event.customer_id, Self::SELECT_FOR_WRITE)?;
                    let Some(current) = locked else {
                        return Ok(EventOutcome::UnknownCustomer);
                    };
                    if let Some(primary) = current.merged_into {
                        return Ok(EventOutcome::MergedInto(primary));
                    }
                    if current.is_erased() {
                        return Ok(EventOutcome::Erased);
                    }
                    let inserted = sql::insert_event!(tx, event, now);
                    match inserted {
                        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                            return Ok(EventOutcome::UnknownCustomer);
                        }
                        Err(e) => return Err(e.into()),
                        Ok(done) if done.rows_affected() == 0 => {
                            return Ok(EventOutcome::Duplicate);
                        }
                        Ok(_) => {}
                    }
                    let mut completed_total = None;
                    if let Some(order) = event.order() {
                        let completed =
                            event.event_type == crm_domain::CustomerEventType::OrderCompleted;
                        let statement = if completed {
                            sql::UPSERT_COMPLETED_ORDER
                        } else {
                            sql::UPSERT_PLACED_ORDER
                        };
                        let done = sqlx::query(statement)
                            .bind(customer_id)
                            .bind(order.order_id)
                            .bind(order.total)
                            .bind(order.currency)
                            .bind(sqlx::types::Json(order.items))
                            .bind(event.timestamp)
                            .execute(&mut *tx)
                            .await?;
                        if completed && done.rows_affected() == 1 {
                            completed_total = Some(order.total);
                        }
                    } else if let Some(ticket) = event.ticket() {
                        sqlx::query(sql::UPSERT_TICKET)
                            .bind(customer_id)
                            .bind(ticket.ticket_id)
                            .bind(ticket.subject)
                            .bind(ticket.status)
                            .bind(event.timestamp)
                            .execute(&mut *tx)
                            .await?;
                    } else if let Some((product_id, category)) = event.viewed_product() {
                        sqlx::query(sql::UPSERT_PRODUCT_VIEW)
                            .bind(customer_id)
                            .bind(product_id)
                            .bind(category)
                            .bind(event.timestamp)
                            .execute(&mut *tx)
                            .await?;
                    }
                    let next = current.after_activity(event.timestamp, completed_total, now);
                    let changed = next.version != current.version;
                    if changed {
                        let update =
                            $crate::repo::sql::bind_customer!(sqlx::query(sql::UPDATE), &next)
                                .bind(current.version);
                        if update.execute(&mut *tx).await?.rows_affected() == 0 {
                            continue;
                        }
                        let updated = crm_domain::CustomerEventType::CustomerUpdated;
                        let message = sql::OutboxMessage::customer_changed(updated, &next);
                        $crate::repo::sql::insert_outbox!(tx, [message]);
                    }
                    if let (Some(total), Some(order)) = (completed_total, event.order()) {
                        sqlx::query(sql::UPSERT_DAILY_SALES)
                            .bind(event.timestamp.date_naive())
                            .bind(current.segment.as_str())
                            .bind(order.currency.to_ascii_uppercase())
                            .bind(total)
                            .execute(&mut *tx)
                            .await?;
                    }
                    let notifications =
                        crm_domain::notification::notifications_for(event, &current, &next)
                            .into_iter()
                            .map(sql::OutboxMessage::notification);
                    $crate::repo::sql::insert_outbox!(tx, notifications);
                    tx.commit().await?;
                    return Ok(EventOutcome::Applied {
                        customer: Box::new(next),
                        changed,
                    });
                }
                Err($crate::Error::VersionConflict)
            }

            async fn list_events(
                &self,
                customer: crm_domain::CustomerId,
                event_type: Option<crm_domain::CustomerEventType>,
                before: Option<$crate::repo::FeedPosition>,
                limit: u32,
            ) -> $crate::Result<Vec<crm_domain::CustomerEvent>> {
                let rows: Vec<$crate::repo::sql::EventRow> =
                    sqlx::query_as($crate::repo::sql::SELECT_EVENTS)
                        .bind(customer.as_uuid())
                        .bind(event_type.map(|t| t.as_str()))
                        .bind(before.map(|p| p.sort_key))
                        .bind(before.map(|p| p.id))
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn relay_outbox(
                &self,
                bus: &dyn crm_platform::bus::EventBus,
                max: u32,
            ) -> $crate::Result<usize> {
                // The claimed rows stay locked until commit, so a second relay skips them
                // (PostgreSQL) or waits (SQLite, one writer): no row is published twice at
                // once. A crash before the commit publishes them again: at least once.
                let mut tx = self.pool.begin_with(Self::BEGIN_READ_THEN_WRITE).await?;
                let rows: Vec<$crate::repo::sql::OutboxRow> = sqlx::query_as(Self::CLAIM_OUTBOX)
                    .bind(i64::from(max))
                    .fetch_all(&mut *tx)
                    .await?;
                if rows.is_empty() {
                    return Ok(0);
                }
                // In order, one broadcast per run of rows bound for the same exchange.
                for run in rows.chunk_by(|a, b| a.exchange == b.exchange) {
                    let messages: Vec<crm_platform::bus::Message> = run
                        .iter()
                        .map($crate::repo::sql::OutboxRow::message)
                        .collect();
                    bus.broadcast(&run[0].exchange, &messages).await?;
                }
                for row in &rows {
                    sqlx::query($crate::repo::sql::DELETE_OUTBOX)
                        .bind(row.seq)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(rows.len())
            }

            async fn daily_sales(
                &self,
                from: chrono::NaiveDate,
                to: chrono::NaiveDate,
            ) -> $crate::Result<Vec<$crate::repo::DailySales>> {
                let rows: Vec<$crate::repo::sql::DailySalesRow> =
                    sqlx::query_as($crate::repo::sql::SELECT_DAILY_SALES)
                        .bind(from)
                        .bind(to)
                        .fetch_all(&self.pool)
                        .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn find_live_by_email(
                &self,
                email: &crm_domain::Email,
            ) -> $crate::Result<Option<crm_domain::Customer>> {
                let row: Option<$crate::repo::sql::CustomerRow> =
                    sqlx::query_as($crate::repo::sql::SELECT_LIVE_BY_EMAIL)
                        .bind(email.as_str())
                        .fetch_optional(&self.pool)
                        .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn save_import(&self, job: &$crate::import::ImportJob) -> $crate::Result<()> {
                let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                sqlx::query($crate::repo::sql::UPSERT_IMPORT)
                    .bind(job.id)
                    .bind(job.status.as_str())
                    .bind(count(job.created))
                    .bind(count(job.updated))
                    .bind(count(job.unchanged))
                    .bind(count(job.failed))
                    .bind(sqlx::types::Json(&job.errors))
                    .bind(&job.reason)
                    .bind(job.started_at)
                    .bind(job.finished_at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn get_import(
                &self,
                id: uuid::Uuid,
            ) -> $crate::Result<Option<$crate::import::ImportJob>> {
                let row: Option<$crate::repo::sql::ImportRow> =
                    sqlx::query_as($crate::repo::sql::SELECT_IMPORT)
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn ping(&self) -> $crate::Result<()> {
                sqlx::query("select 1").execute(&self.pool).await?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_customer_repository;
