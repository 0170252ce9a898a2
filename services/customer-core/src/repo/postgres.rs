//! The PostgreSQL adapter of the customer store.

use crm_platform::database::{PostgresLimits, postgres_options, postgres_pool};
use sqlx::{Connection, PgConnection, PgPool, Postgres};

use super::{SqlRepository, sql_repository::Locking};
use crate::Result;

pub type PostgresRepository = SqlRepository<Postgres>;

impl SqlRepository<Postgres> {
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

impl Locking for Postgres {
    /// A transaction that reads rows and then writes them: row locks do the rest.
    const BEGIN_READ_THEN_WRITE: &str = "begin";
    /// Writes that must not interleave (events, merges, erasures) lock the customer row.
    const SELECT_FOR_WRITE: &str = super::sql::SELECT_BY_ID_FOR_UPDATE;
    /// Rows another relay holds are skipped, not waited for: replicas share the work.
    const CLAIM_OUTBOX: &str = include_str!("queries/postgres/claim_outbox.sql");
}

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
        use crate::repo::ports::*;
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
        use crate::repo::ports::*;
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
        use crate::repo::ports::*;
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

    /// Waits until a statement like `like` waits for a lock (seen from another
    /// connection: in a transaction the activity view is a snapshot).
    async fn until_waiting(repo: &PostgresRepository, like: &str) {
        for _ in 0..500 {
            if lock_waits(repo, like).await > 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("nothing waits on a lock like {like}");
    }

    async fn lock_waits(repo: &PostgresRepository, like: &str) -> i64 {
        let waiting = "select count(*) from pg_stat_activity where datname = current_database() \
             and wait_event_type = 'Lock' and query like $1";
        sqlx::query_scalar(waiting)
            .bind(like)
            .fetch_one(repo.pool())
            .await
            .unwrap()
    }

    /// Until `task` waits for a customer row (or, without the row lock, is done).
    async fn until_waiting_for_the_row<T>(
        repo: &PostgresRepository,
        task: &tokio::task::JoinHandle<T>,
    ) {
        for _ in 0..500 {
            if task.is_finished() || lock_waits(repo, "%for update%").await > 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    async fn fresh_repo() -> (String, std::sync::Arc<PostgresRepository>) {
        let url = crm_platform::testing::fresh_postgres_url().await;
        let repo = PostgresRepository::connect(&url, PostgresLimits::default())
            .await
            .unwrap();
        (url, std::sync::Arc::new(repo))
    }

    async fn customer_with_activity(
        repo: &PostgresRepository,
        email: &str,
    ) -> crm_domain::CustomerId {
        use crate::repo::ports::*;
        let draft = crm_domain::CustomerDraft {
            email: email.into(),
            ..Default::default()
        };
        let now = chrono::Utc::now();
        let customer =
            crm_domain::Customer::create(crm_domain::CustomerId::generate(), draft, now).unwrap();
        repo.insert(&customer).await.unwrap();
        repo.record_event(&review(customer.id, "first", now), now)
            .await
            .unwrap();
        customer.id
    }

    /// A review written a day before it arrives: it changes no customer field, so it
    /// writes no new version of the customer.
    fn review(
        customer_id: crm_domain::CustomerId,
        text: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> crm_domain::CustomerEvent {
        crm_domain::CustomerEvent {
            id: uuid::Uuid::now_v7(),
            customer_id,
            event_type: crm_domain::CustomerEventType::ReviewSubmitted,
            data: serde_json::json!({"product_id": "p-1", "rating": 5, "text": text}),
            source: "test".into(),
            timestamp: now - chrono::Duration::days(1),
        }
    }

    /// An event that arrives while the person is being erased waits for the erasure and
    /// is refused; its free text is nowhere.
    #[tokio::test(flavor = "multi_thread")]
    async fn an_event_during_an_erasure_finds_the_person_erased() {
        use crate::repo::{Erasure, EventOutcome, ports::*};
        let (url, repo) = fresh_repo().await;
        let id = customer_with_activity(&repo, "erased@example.com").await;
        // Ticket subjects are held: the erasure stops there, its events already wiped.
        let mut holder = crm_platform::testing::lock_table(&url, "support_tickets").await;
        let erasing = tokio::spawn({
            let repo = repo.clone();
            let erasure = Erasure {
                erased_by: "test".into(),
                request_id: None,
                erased_at: chrono::Utc::now(),
            };
            async move { repo.erase(id, &erasure).await }
        });
        until_waiting(&repo, "%support_tickets%").await;
        let now = chrono::Utc::now();
        let recording = tokio::spawn({
            let repo = repo.clone();
            async move {
                repo.record_event(&review(id, "secret words", now), now)
                    .await
            }
        });
        until_waiting_for_the_row(&repo, &recording).await;
        sqlx::query("rollback").execute(&mut holder).await.unwrap();

        erasing.await.unwrap().unwrap();
        let recorded = recording.await.unwrap().unwrap();
        assert!(matches!(recorded, EventOutcome::Erased), "{recorded:?}");
        let export = repo.export(id).await.unwrap().unwrap();
        let exported = serde_json::to_string(&export).unwrap();
        assert!(!exported.contains("secret words"), "{exported}");
    }

    /// An event of the merged-away customer that arrives during the merge follows it to
    /// the customer who stays.
    #[tokio::test(flavor = "multi_thread")]
    async fn an_event_during_a_merge_follows_the_merged_customer() {
        use crate::repo::{EventOutcome, ports::*};
        let (url, repo) = fresh_repo().await;
        let primary = customer_with_activity(&repo, "stays@example.com").await;
        let secondary = customer_with_activity(&repo, "goes@example.com").await;
        // The outbox is held: the merge stops there, its events already moved.
        let mut holder = crm_platform::testing::lock_table(&url, "outbox").await;
        let now = chrono::Utc::now();
        let merging = tokio::spawn({
            let repo = repo.clone();
            async move { repo.merge(primary, secondary, false, now).await }
        });
        until_waiting(&repo, "%outbox%").await;
        let recording = tokio::spawn({
            let repo = repo.clone();
            async move {
                repo.record_event(&review(secondary, "late", now), now)
                    .await
            }
        });
        until_waiting_for_the_row(&repo, &recording).await;
        sqlx::query("rollback").execute(&mut holder).await.unwrap();

        merging.await.unwrap().unwrap();
        let recorded = recording.await.unwrap().unwrap();
        assert!(
            matches!(recorded, EventOutcome::MergedInto(into) if into == primary),
            "{recorded:?}"
        );
        let left = repo.list_events(secondary, None, None, 10).await.unwrap();
        assert!(
            left.is_empty(),
            "nothing stays on the merged-away record: {left:?}"
        );
    }

    /// Many events of one customer at once all apply (none loses its version race for
    /// good and ends in a dead-letter queue).
    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_events_of_one_customer_all_apply() {
        use crate::repo::{EventOutcome, ports::*};
        let (_, repo) = fresh_repo().await;
        let id = customer_with_activity(&repo, "hot@example.com").await;
        let orders = (0..40).map(|n| {
            let repo = repo.clone();
            tokio::spawn(async move {
                let now = chrono::Utc::now();
                let event = crm_domain::CustomerEvent {
                    id: uuid::Uuid::now_v7(),
                    customer_id: id,
                    event_type: crm_domain::CustomerEventType::OrderCompleted,
                    data: serde_json::json!({
                        "order_id": format!("o-{n}"), "total": 1.0, "currency": "EUR", "items": []
                    }),
                    source: "test".into(),
                    timestamp: now,
                };
                repo.record_event(&event, now).await
            })
        });
        for order in futures::future::join_all(orders).await {
            let recorded = order.unwrap().unwrap();
            assert!(
                matches!(recorded, EventOutcome::Applied { .. }),
                "{recorded:?}"
            );
        }
        let customer = repo.get(id).await.unwrap().unwrap();
        assert_eq!(customer.metrics.total_orders, 40);
    }
}
