//! Full reindex without downtime: a new generation is filled from customer-core (the
//! deleted included, so `status=deleted` still finds them) while searches read the live
//! one and events reach both; then the alias swaps. One job at a time, also across the
//! replicas that share an engine (`jobs`).

pub mod jobs;
pub mod source;

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use chrono::Utc;
use crm_domain::Job;
use uuid::Uuid;

pub use self::{
    jobs::{Build, JobBoard, MemoryJobBoard},
    source::CustomerSource,
};
use crate::{
    Error, Result,
    generations::Generations,
    index::{Generation, IndexCatalog, IndexError, SearchIndex},
    reindex::jobs::{HEARTBEAT, Revision},
};

pub struct Reindexer {
    catalog: Arc<dyn IndexCatalog>,
    generations: Arc<Generations>,
    source: Arc<dyn CustomerSource>,
    board: Arc<dyn JobBoard>,
}

/// A job this replica builds, and the board's revision that says it still may.
struct Held {
    build: Build,
    revision: Revision,
}

impl Reindexer {
    pub fn new(
        catalog: Arc<dyn IndexCatalog>,
        generations: Arc<Generations>,
        source: Arc<dyn CustomerSource>,
        board: Arc<dyn JobBoard>,
    ) -> Self {
        Self {
            catalog,
            generations,
            source,
            board,
        }
    }

    pub async fn job(&self, id: Uuid) -> Result<Job> {
        let build = self.board.job(id).await?.ok_or(Error::JobNotFound(id))?;
        Ok(build.as_seen(Utc::now()).job)
    }

    /// Starts a job in the background; refused while another runs.
    pub async fn start(self: &Arc<Self>) -> Result<Job> {
        // The job is claimed before the generation is made, so two starts at once never
        // make two generations: the second is refused here.
        let mut held = self.claim().await?;
        let generation = match self.catalog.create_generation().await {
            Ok(generation) => generation,
            Err(error) => {
                self.end(held, Some(error.to_string())).await;
                return Err(error.into());
            }
        };
        held.build.fills(&generation.name);
        // From now on events applied here reach the new generation too; once saved,
        // also those that other replicas apply.
        self.generations.start_building(generation.index.clone());
        if let Err(error) = self.save(&mut held).await {
            self.generations.finish_building(None);
            self.end(held, Some(error.to_string())).await;
            return Err(error);
        }
        tracing::info!(job = %held.build.job.id, generation = %generation.name, "reindex started");
        let job = held.build.job.clone();
        let this = self.clone();
        tokio::spawn(async move { this.run(held, generation).await });
        Ok(job)
    }

    async fn claim(&self) -> Result<Held> {
        let now = Utc::now();
        let current = self.board.current().await?;
        if let Some((running, _)) = current.as_ref().filter(|(build, _)| build.is_building(now)) {
            return Err(Error::AlreadyRunning(running.job.id));
        }
        let build = Build::start(now);
        let expected = current.as_ref().map(|(_, revision)| *revision);
        let Some(revision) = self.board.replace_current(&build, expected).await? else {
            // Another replica started one in between.
            return match self.board.current().await? {
                Some((winner, _)) => Err(Error::AlreadyRunning(winner.job.id)),
                None => Err(IndexError::Engine("the reindex job vanished".into()).into()),
            };
        };
        if let Some((abandoned, _)) = current.filter(|(build, _)| build.job.is_running()) {
            self.board.keep(&abandoned.as_seen(now)).await?;
        }
        self.board.keep(&build).await?;
        Ok(Held { build, revision })
    }

    /// Records the job's progress, and that its builder is alive; fails when another
    /// replica took the job over (this one was quiet longer than the lease).
    async fn save(&self, held: &mut Held) -> Result<()> {
        held.build.saved_at = Utc::now();
        match self
            .board
            .replace_current(&held.build, Some(held.revision))
            .await?
        {
            Some(revision) => held.revision = revision,
            None => return Err(Error::TakenOver(held.build.job.id)),
        }
        Ok(self.board.keep(&held.build).await?)
    }

    async fn run(&self, mut held: Held, generation: Generation) {
        if self.generations.shares_builds() {
            // Until every replica has learned of the build, one could apply an event to
            // the live index only; reading customer-core after that covers it.
            tokio::time::sleep(crate::generations::EVERY_REPLICA_KNOWS_WITHIN).await;
        }
        let built = self.build_saving(&mut held, generation.index.clone()).await;
        let promoted = match built {
            // Saved right before the swap: only the job's holder swaps.
            Ok(()) => match self.save(&mut held).await {
                Ok(()) => self.catalog.promote(&generation).await.map_err(Error::from),
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        let id = held.build.job.id;
        match promoted {
            Ok(live) => {
                self.generations.finish_building(Some(live));
                tracing::info!(job = %id, generation = %generation.name, "reindex completed; searches read the new generation");
                self.end(held, None).await;
            }
            Err(error) => {
                self.generations.finish_building(None);
                tracing::error!(job = %id, %error, "reindex failed; searches keep the old generation");
                self.end(held, Some(error.to_string())).await;
            }
        }
    }

    async fn end(&self, mut held: Held, error: Option<String>) {
        held.build.finish(Utc::now(), error);
        if let Err(error) = self.save(&mut held).await {
            tracing::warn!(job = %held.build.job.id, %error, "cannot record the end of the reindex job");
        }
    }

    /// Builds, saving the job's progress every `HEARTBEAT` meanwhile.
    async fn build_saving(&self, held: &mut Held, generation: Arc<dyn SearchIndex>) -> Result<()> {
        let indexed = AtomicU64::new(0);
        let build = self.build(generation, &indexed);
        tokio::pin!(build);
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                built = &mut build => {
                    held.build.job.progress.done = indexed.load(Ordering::Relaxed);
                    return built;
                }
                _ = heartbeat.tick() => {
                    held.build.job.progress.done = indexed.load(Ordering::Relaxed);
                    self.save(held).await?;
                }
            }
        }
    }

    async fn build(&self, generation: Arc<dyn SearchIndex>, indexed: &AtomicU64) -> Result<()> {
        let mut cursor = String::new();
        loop {
            let (customers, next) = self.source.page(&cursor).await?;
            generation.apply_all(&customers).await?;
            indexed.fetch_add(customers.len() as u64, Ordering::Relaxed);
            match next {
                Some(next) => cursor = next,
                None => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests;
