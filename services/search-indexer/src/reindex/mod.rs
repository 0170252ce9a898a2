//! Full reindex without downtime: a new generation is filled from customer-core (the
//! deleted included, so `status=deleted` still finds them) while searches read the live
//! one and events reach both; then the alias swaps. One job at a time per indexer.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_domain::Customer;
use crm_platform::grpc::InternalChannel as Channel;
use crm_proto::v1::{self, customer_service_client::CustomerServiceClient};
use uuid::Uuid;

use crate::{
    Error, Result,
    index::{IndexCatalog, SearchIndex},
    indices::Indices,
};

/// Customers asked of customer-core per call (its page limit).
const PAGE: u32 = 100;
/// Finished jobs remembered for `GET` (the newest).
const JOBS_KEPT: usize = 50;
/// customer-core may still be starting when the first build begins.
const SOURCE_ATTEMPTS: u32 = 6;
/// The longest wait between those attempts.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Where a reindex reads every customer.
#[async_trait]
pub trait CustomerSource: Send + Sync {
    /// A page after `cursor` ("" for the first) and the next cursor, `None` at the end.
    async fn page(&self, cursor: &str) -> Result<(Vec<Customer>, Option<String>)>;
}

pub struct CustomerCore(CustomerServiceClient<Channel>);

impl CustomerCore {
    pub fn new(channel: Channel) -> Self {
        Self(CustomerServiceClient::new(channel))
    }
}

#[async_trait]
impl CustomerSource for CustomerCore {
    async fn page(&self, cursor: &str) -> Result<(Vec<Customer>, Option<String>)> {
        let request = v1::ListCustomersRequest {
            page: Some(v1::Page {
                limit: PAGE,
                cursor: cursor.to_owned(),
            }),
            include_deleted: true,
        };
        let mut attempt = 0;
        let page = loop {
            match self.0.clone().list_customers(request.clone()).await {
                Ok(page) => break page.into_inner(),
                Err(status)
                    if status.code() == tonic::Code::Unavailable && attempt < SOURCE_ATTEMPTS =>
                {
                    attempt += 1;
                    let wait = crm_platform::backoff(Duration::from_millis(500), MAX_WAIT, attempt);
                    tokio::time::sleep(wait).await;
                }
                Err(status) => return Err(status.into()),
            }
        };
        let customers = page
            .customers
            .into_iter()
            .map(Customer::try_from)
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| Error::CustomerCore(tonic::Status::internal(e)))?;
        let next = Some(page.next_cursor).filter(|c| !c.is_empty());
        Ok((customers, next))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Running,
    Completed,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReindexJob {
    pub id: Uuid,
    pub status: JobStatus,
    /// The generation being built (the alias points at it once completed).
    pub generation: String,
    /// Customers written to the new generation so far.
    pub indexed: u64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

pub struct Reindexer {
    catalog: Arc<dyn IndexCatalog>,
    indices: Arc<Indices>,
    source: Arc<dyn CustomerSource>,
    /// Newest last.
    jobs: Mutex<VecDeque<ReindexJob>>,
}

impl Reindexer {
    pub fn new(
        catalog: Arc<dyn IndexCatalog>,
        indices: Arc<Indices>,
        source: Arc<dyn CustomerSource>,
    ) -> Self {
        Self {
            catalog,
            indices,
            source,
            jobs: Mutex::default(),
        }
    }

    pub fn job(&self, id: Uuid) -> Result<ReindexJob> {
        self.jobs
            .lock()
            .expect("jobs")
            .iter()
            .find(|job| job.id == id)
            .cloned()
            .ok_or(Error::JobNotFound(id))
    }

    fn update(&self, id: Uuid, change: impl FnOnce(&mut ReindexJob)) {
        if let Some(job) = self
            .jobs
            .lock()
            .expect("jobs")
            .iter_mut()
            .find(|j| j.id == id)
        {
            change(job);
        }
    }

    /// Starts a job in the background; refused while another runs.
    pub async fn start(self: &Arc<Self>) -> Result<ReindexJob> {
        let mut job = ReindexJob {
            id: Uuid::now_v7(),
            status: JobStatus::Running,
            generation: String::new(),
            indexed: 0,
            started_at: Utc::now(),
            finished_at: None,
            error: None,
        };
        // The slot is taken before the generation is made, so two starts at once never
        // make two generations: the second is refused here.
        {
            let mut jobs = self.jobs.lock().expect("jobs");
            if let Some(running) = jobs.iter().find(|j| j.status == JobStatus::Running) {
                return Err(Error::AlreadyRunning(running.id));
            }
            jobs.push_back(job.clone());
            if jobs.len() > JOBS_KEPT {
                jobs.pop_front();
            }
        }
        let generation = match self.catalog.create_generation().await {
            Ok(generation) => generation,
            Err(error) => {
                self.jobs.lock().expect("jobs").retain(|j| j.id != job.id);
                return Err(error.into());
            }
        };
        job.generation = generation.name.clone();
        self.update(job.id, |j| j.generation = generation.name.clone());
        // From now on events reach the new generation too; everything older is read
        // from customer-core below.
        self.indices.start_building(generation.index.clone());
        tracing::info!(job = %job.id, generation = %generation.name, "reindex started");
        let this = self.clone();
        let id = job.id;
        tokio::spawn(async move {
            let built = this.build(id, generation.index.clone()).await;
            let promoted = match built {
                Ok(()) => this.catalog.promote(&generation).await.map_err(Error::from),
                Err(error) => Err(error),
            };
            let finished_at = Some(Utc::now());
            match promoted {
                Ok(live) => {
                    this.indices.finish_building(Some(live));
                    this.update(id, |job| {
                        job.status = JobStatus::Completed;
                        job.finished_at = finished_at;
                    });
                    tracing::info!(job = %id, generation = %generation.name, "reindex completed; searches read the new generation");
                }
                Err(error) => {
                    this.indices.finish_building(None);
                    tracing::error!(job = %id, %error, "reindex failed; searches keep the old generation");
                    this.update(id, |job| {
                        job.status = JobStatus::Failed;
                        job.finished_at = finished_at;
                        job.error = Some(error.to_string());
                    });
                }
            }
        });
        Ok(job)
    }

    async fn build(&self, id: Uuid, generation: Arc<dyn SearchIndex>) -> Result<()> {
        let mut cursor = String::new();
        loop {
            let (customers, next) = self.source.page(&cursor).await?;
            generation.apply_all(&customers).await?;
            self.update(id, |job| job.indexed += customers.len() as u64);
            match next {
                Some(next) => cursor = next,
                None => return Ok(()),
            }
        }
    }
}
