//! Two replicas that share one engine, as two Elasticsearch-backed indexers do: the
//! engine here is in memory, generations behind an alias, the jobs on one board.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use chrono::Utc;
use crm_domain::Customer;
use tokio::sync::Semaphore;

use super::*;
use crate::index::{self, Applied, SearchQuery, SearchResults, TantivyIndex, contract::customer};

#[derive(Default)]
struct Engine {
    generations: Mutex<BTreeMap<String, Arc<dyn SearchIndex>>>,
    alias: Mutex<String>,
}

impl Engine {
    fn live(&self) -> Arc<dyn SearchIndex> {
        let alias = self.alias.lock().unwrap().clone();
        self.generations.lock().unwrap()[&alias].clone()
    }

    fn create(&self) -> Generation {
        let mut generations = self.generations.lock().unwrap();
        let name = format!("customers-{}", generations.len() + 1);
        let index: Arc<dyn SearchIndex> = Arc::new(TantivyIndex::in_memory().unwrap());
        generations.insert(name.clone(), index.clone());
        Generation { name, index }
    }
}

/// What searches read: whatever generation the alias points at.
struct Alias(Arc<Engine>);

#[async_trait]
impl SearchIndex for Alias {
    async fn apply_all(&self, customers: &[Customer]) -> index::Result<Vec<Applied>> {
        self.0.live().apply_all(customers).await
    }
    async fn search(&self, query: &SearchQuery) -> index::Result<SearchResults> {
        self.0.live().search(query).await
    }
    async fn refresh(&self) -> index::Result<()> {
        self.0.live().refresh().await
    }
    async fn ping(&self) -> index::Result<()> {
        Ok(())
    }
}

struct SharedCatalog {
    engine: Arc<Engine>,
    board: Arc<MemoryJobBoard>,
}

#[async_trait]
impl IndexCatalog for SharedCatalog {
    async fn open_live(&self) -> index::Result<(Arc<dyn SearchIndex>, bool)> {
        let alias = Arc::new(Alias(self.engine.clone()));
        if !self.engine.alias.lock().unwrap().is_empty() {
            return Ok((alias, false));
        }
        *self.engine.alias.lock().unwrap() = self.engine.create().name;
        Ok((alias, true))
    }
    async fn create_generation(&self) -> index::Result<Generation> {
        Ok(self.engine.create())
    }
    async fn promote(&self, generation: &Generation) -> index::Result<Arc<dyn SearchIndex>> {
        *self.engine.alias.lock().unwrap() = generation.name.clone();
        Ok(Arc::new(Alias(self.engine.clone())))
    }
    fn shared_jobs(&self) -> Option<Arc<dyn JobBoard>> {
        Some(self.board.clone())
    }
    fn generation(&self, name: &str) -> Option<Arc<dyn SearchIndex>> {
        self.engine.generations.lock().unwrap().get(name).cloned()
    }
}

/// customer-core's customers, in one page that waits until the test lets it go.
struct HeldBack {
    customers: Vec<Customer>,
    gate: Semaphore,
}

#[async_trait]
impl CustomerSource for HeldBack {
    async fn page(&self, _cursor: &str) -> Result<(Vec<Customer>, Option<String>)> {
        let _pass = self.gate.acquire().await.expect("gate");
        Ok((self.customers.clone(), None))
    }
}

struct Replica {
    generations: Arc<Generations>,
    reindexer: Arc<Reindexer>,
}

async fn replica(catalog: &Arc<SharedCatalog>, source: &Arc<HeldBack>) -> Replica {
    let catalog: Arc<dyn IndexCatalog> = catalog.clone();
    let (live, _) = catalog.open_live().await.unwrap();
    let board = catalog.shared_jobs().unwrap();
    let generations = Arc::new(Generations::new(
        live,
        Some((board.clone(), catalog.clone())),
    ));
    let reindexer = Reindexer::new(catalog, generations.clone(), source.clone(), board);
    Replica {
        generations,
        reindexer: Arc::new(reindexer),
    }
}

fn emails(found: &SearchResults) -> Vec<String> {
    let mut emails: Vec<String> = found
        .hits
        .iter()
        .map(|hit| hit.customer.email.as_str().to_owned())
        .collect();
    emails.sort();
    emails
}

#[tokio::test(flavor = "multi_thread")]
async fn one_build_at_a_time_and_it_gets_the_events_every_replica_applies() {
    let catalog = Arc::new(SharedCatalog {
        engine: Arc::default(),
        board: Arc::default(),
    });
    let source = Arc::new(HeldBack {
        customers: vec![customer("ada@example.com", "Ada", "Lovelace", None, &[])],
        gate: Semaphore::new(0),
    });
    let (a, b) = (
        replica(&catalog, &source).await,
        replica(&catalog, &source).await,
    );

    let job = a.reindexer.start().await.expect("started");
    let refused = b.reindexer.start().await.unwrap_err();
    assert!(
        matches!(refused, Error::AlreadyRunning(id) if id == job.id),
        "{refused}"
    );
    let seen_elsewhere = b
        .reindexer
        .job(job.id)
        .await
        .expect("the other replica knows it");
    assert_eq!(seen_elsewhere.status, crm_domain::JobStatus::Running);
    assert_eq!(seen_elsewhere.phase, "indexing customers into customers-2");

    // A customer created during the build, whose event the other replica consumes.
    let grace = customer("grace@example.com", "Grace", "Hopper", None, &[]);
    b.generations.apply(&grace).await.expect("applied");

    source.gate.add_permits(1);
    let done = loop {
        let job = b.reindexer.job(job.id).await.unwrap();
        if job.status != crm_domain::JobStatus::Running {
            break job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(
        (done.status, done.progress.done),
        (crm_domain::JobStatus::Completed, 1)
    );
    let live = b.generations.live();
    live.refresh().await.unwrap();
    let everyone = SearchQuery {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        emails(&live.search(&everyone).await.unwrap()),
        ["ada@example.com", "grace@example.com"],
        "the new generation has what was read and what the other replica applied"
    );
    assert!(b.reindexer.start().await.is_ok(), "the next one may start");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_whose_builder_stopped_is_failed_and_another_may_start() {
    let catalog = Arc::new(SharedCatalog {
        engine: Arc::default(),
        board: Arc::default(),
    });
    let source = Arc::new(HeldBack {
        customers: Vec::new(),
        gate: Semaphore::new(0),
    });
    let b = replica(&catalog, &source).await;
    let mut gone = Build::start(Utc::now() - chrono::Duration::minutes(1));
    gone.fills("customers-9");
    catalog.board.replace_current(&gone, None).await.unwrap();
    catalog.board.keep(&gone).await.unwrap();

    let job = b.reindexer.start().await.expect("taken over");
    assert_ne!(job.id, gone.job.id);
    let gone = b.reindexer.job(gone.job.id).await.unwrap();
    assert_eq!(gone.status, crm_domain::JobStatus::Failed);
    assert!(gone.error.unwrap().contains("stopped"));
}
