//! The PostgreSQL adapter of the customer store.

use crm_platform::database::{PostgresLimits, postgres_options, postgres_pool};
use sqlx::{Connection, PgConnection, PgPool};

use super::{people::impl_person_store, sql::impl_customer_repository};
use crate::Result;

#[derive(Clone)]
pub struct PostgresRepository {
    pool: PgPool,
}

impl PostgresRepository {
    /// Connects, creating the database when it does not exist yet (a fresh developer
    /// machine), and runs the migrations (on a connection of their own: building an index
    /// over millions of rows may take longer than the statement timeout).
    pub async fn connect(url: &str, limits: PostgresLimits) -> Result<Self> {
        crm_platform::database::create_postgres_database_if_missing(url).await?;
        let mut setup = PgConnection::connect(url).await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&mut setup)
            .await?;
        setup.close().await?;
        let pool = postgres_pool(limits.max_connections)
            .connect_with(postgres_options(url, limits.statement_timeout)?)
            .await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl PostgresRepository {
    /// A transaction that reads rows and then writes them: row locks do the rest.
    const BEGIN_READ_THEN_WRITE: &str = "begin";
    /// Rows another relay holds are skipped, not waited for: replicas share the work.
    const CLAIM_OUTBOX: &str = "select seq, exchange, id, routing_key, payload from outbox order by seq \
         limit $1 for update skip locked";
}

impl_customer_repository!(PostgresRepository);
impl_person_store!(PostgresRepository);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn contract() {
        let url = crm_platform::testing::fresh_postgres_url().await;
        let repo = PostgresRepository::connect(&url, PostgresLimits::default())
            .await
            .expect("connect");
        super::super::contract::run(&repo).await;
    }

    #[tokio::test]
    async fn a_racing_duplicate_is_applied_once() {
        let url = crm_platform::testing::fresh_postgres_url().await;
        let repo = PostgresRepository::connect(&url, PostgresLimits::default())
            .await
            .expect("connect");
        super::super::contract::a_racing_duplicate_is_applied_once(std::sync::Arc::new(repo)).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn bulk_segments_race_other_writers() {
        let url = crm_platform::testing::fresh_postgres_url().await;
        let repo = PostgresRepository::connect(&url, PostgresLimits::default())
            .await
            .expect("connect");
        super::super::contract::bulk_segments_race_other_writers(std::sync::Arc::new(repo)).await;
    }

    #[tokio::test]
    async fn two_relays_share_the_outbox() {
        let url = crm_platform::testing::fresh_postgres_url().await;
        let repo = PostgresRepository::connect(&url, PostgresLimits::default())
            .await
            .expect("connect");
        super::super::contract::two_relays_publish_each_event_once(std::sync::Arc::new(repo)).await;
    }

    /// The database connection of a merge is killed half way (orders moved, views not
    /// yet): nothing of it remains.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_merge_cut_off_from_its_database_leaves_both_customers_unchanged() {
        use crate::repo::{CustomerRepository, PersonStore};
        let url = crm_platform::testing::fresh_postgres_url().await;
        let repo = std::sync::Arc::new(
            PostgresRepository::connect(&url, PostgresLimits::default())
                .await
                .unwrap(),
        );
        let now = chrono::Utc::now();
        let mut ids = Vec::new();
        for (email, order) in [("a@example.com", "o-1"), ("b@example.com", "o-2")] {
            let draft = crm_domain::CustomerDraft {
                email: email.into(),
                ..Default::default()
            };
            let customer =
                crm_domain::Customer::create(crm_domain::CustomerId::generate(), draft, now)
                    .unwrap();
            repo.insert(&customer).await.unwrap();
            for (event_type, data) in [
                (
                    crm_domain::CustomerEventType::OrderCompleted,
                    serde_json::json!({"order_id": order, "total": 10.0, "currency": "EUR", "items": []}),
                ),
                (
                    crm_domain::CustomerEventType::ProductViewed,
                    serde_json::json!({"product_id": "p-1"}),
                ),
            ] {
                let event = crm_domain::CustomerEvent {
                    id: uuid::Uuid::now_v7(),
                    customer_id: customer.id,
                    event_type,
                    data,
                    source: "test".into(),
                    timestamp: now,
                };
                repo.record_event(&event, now).await.unwrap();
            }
            ids.push(customer.id);
        }
        let (primary, secondary) = (ids[0], ids[1]);
        let before = (
            repo.get(primary).await.unwrap(),
            repo.get(secondary).await.unwrap(),
        );

        // Product views are held, so the merge stops there with the orders moved.
        let mut holder = crm_platform::testing::lock_table(&url, "product_views").await;
        let merging = tokio::spawn({
            let repo = repo.clone();
            async move { repo.merge(primary, secondary, false, now).await }
        });
        let waiting = "select pid from pg_stat_activity where datname = current_database() \
             and wait_event_type = 'Lock' and query like '%into product_views%'";
        // Polled from another connection: in a transaction the activity view is a
        // snapshot.
        let pid: i32 = loop {
            if let Some((pid,)) = sqlx::query_as(waiting)
                .fetch_optional(repo.pool())
                .await
                .unwrap()
            {
                break pid;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        sqlx::query("select pg_terminate_backend($1)")
            .bind(pid)
            .execute(repo.pool())
            .await
            .unwrap();
        sqlx::query("rollback").execute(&mut holder).await.unwrap();

        let outcome = merging.await.unwrap();
        assert!(outcome.is_err(), "the merge cannot succeed: {outcome:?}");
        let after = (
            repo.get(primary).await.unwrap(),
            repo.get(secondary).await.unwrap(),
        );
        assert_eq!(after, before, "both customers as they were");
        let orders = |id| {
            let repo = repo.clone();
            async move { repo.recent_orders(id, 10).await.unwrap() }
        };
        assert_eq!(orders(primary).await[0].order_id, "o-1");
        assert_eq!(orders(secondary).await[0].order_id, "o-2", "not moved");
        let events = repo.list_events(secondary, None, None, 10).await.unwrap();
        assert_eq!(events.len(), 2, "the secondary keeps its activity");
        // Nothing is half done: the merge works now.
        let merged = repo.merge(primary, secondary, false, now).await.unwrap();
        assert_eq!(merged.primary.metrics.total_orders, 2);
    }

    /// A statement stuck behind a lock gives up after the statement timeout, as an error
    /// callers may retry (gRPC `Unavailable`, HTTP 503), instead of hanging.
    #[tokio::test]
    async fn a_statement_stuck_behind_a_lock_ends_as_unavailable() {
        use crate::repo::CustomerRepository;
        let url = crm_platform::testing::fresh_postgres_url().await;
        let limits = PostgresLimits {
            max_connections: 2,
            statement_timeout: std::time::Duration::from_millis(300),
        };
        let repo = PostgresRepository::connect(&url, limits).await.unwrap();
        let mut holder = crm_platform::testing::lock_table(&url, "customers").await;

        let error = repo
            .get(crm_domain::CustomerId::generate())
            .await
            .expect_err("cancelled by the statement timeout");
        assert_eq!(tonic::Status::from(error).code(), tonic::Code::Unavailable);

        sqlx::query("rollback").execute(&mut holder).await.unwrap();
        let missing = repo.get(crm_domain::CustomerId::generate()).await.unwrap();
        assert!(
            missing.is_none(),
            "the store answers again once the lock is gone"
        );
    }

    #[tokio::test]
    async fn events_written_before_a_crash_are_published_after_it() {
        use crate::repo::CustomerRepository;
        let url = crm_platform::testing::fresh_postgres_url().await;
        let repo = PostgresRepository::connect(&url, PostgresLimits::default())
            .await
            .expect("connect");
        let draft = crm_domain::CustomerDraft {
            email: "crash@example.com".into(),
            ..Default::default()
        };
        let id = crm_domain::CustomerId::generate();
        let customer = crm_domain::Customer::create(id, draft, chrono::Utc::now()).unwrap();
        repo.insert(&customer).await.expect("insert");
        // The process dies after the commit, before any relay ran.
        repo.pool().close().await;

        let restarted = PostgresRepository::connect(&url, PostgresLimits::default())
            .await
            .expect("reconnect");
        let bus = super::super::contract::RecordingBus::default();
        assert_eq!(restarted.relay_outbox(&bus, 10).await.expect("relay"), 1);
        assert_eq!(
            bus.published.lock().unwrap()[0].1.routing_key,
            "customer.created"
        );
    }
}
