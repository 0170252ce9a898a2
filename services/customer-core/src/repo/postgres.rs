//! The PostgreSQL adapter of the customer store.

use sqlx::PgPool;

use super::sql::impl_customer_repository;
use crate::Result;

#[derive(Clone)]
pub struct PostgresRepository {
    pool: PgPool,
}

impl PostgresRepository {
    /// Connects, creating the database when it does not exist yet (a fresh developer
    /// machine), and runs the migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        crm_platform::database::create_postgres_database_if_missing(url).await?;
        let pool = crm_platform::database::postgres_pool(max_connections)
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn contract() {
        let url = crm_platform::testing::fresh_postgres_url().await;
        let repo = PostgresRepository::connect(&url, 5).await.expect("connect");
        super::super::contract::run(&repo).await;
    }

    #[tokio::test]
    async fn a_racing_duplicate_is_applied_once() {
        let url = crm_platform::testing::fresh_postgres_url().await;
        let repo = PostgresRepository::connect(&url, 5).await.expect("connect");
        super::super::contract::a_racing_duplicate_is_applied_once(std::sync::Arc::new(repo)).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn bulk_segments_race_other_writers() {
        let url = crm_platform::testing::fresh_postgres_url().await;
        let repo = PostgresRepository::connect(&url, 5).await.expect("connect");
        super::super::contract::bulk_segments_race_other_writers(std::sync::Arc::new(repo)).await;
    }

    #[tokio::test]
    async fn two_relays_share_the_outbox() {
        let url = crm_platform::testing::fresh_postgres_url().await;
        let repo = PostgresRepository::connect(&url, 5).await.expect("connect");
        super::super::contract::two_relays_publish_each_event_once(std::sync::Arc::new(repo)).await;
    }

    #[tokio::test]
    async fn events_written_before_a_crash_are_published_after_it() {
        use crate::repo::CustomerRepository;
        let url = crm_platform::testing::fresh_postgres_url().await;
        let repo = PostgresRepository::connect(&url, 5).await.expect("connect");
        let draft = crm_domain::CustomerDraft {
            email: "crash@example.com".into(),
            ..Default::default()
        };
        let id = crm_domain::CustomerId::generate();
        let customer = crm_domain::Customer::create(id, draft, chrono::Utc::now()).unwrap();
        repo.insert(&customer).await.expect("insert");
        // The process dies after the commit, before any relay ran.
        repo.pool().close().await;

        let restarted = PostgresRepository::connect(&url, 5)
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
