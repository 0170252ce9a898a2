//! The recompute batch: time moves customers between segments without any event (a
//! regular customer drifts to at risk), so everyone is recomputed on a schedule and on
//! demand. It is set-based: RFM bounds and scores are a few statements over the whole
//! base, and only the customers whose segment changes leave the database, a thousand per
//! call to customer-core. One batch runs at a time across replicas (a row in
//! `recompute_jobs`); the second start is refused with the running job's id.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use crm_domain::{Job, segmentation::SegmentConfig};
use crm_platform::Shutdown;
use futures::StreamExt;

use crate::{
    Error, Result,
    clients::{SegmentDecision, SegmentWriter},
    store::SegmentStore,
};

/// A running job whose heartbeat is older than this belongs to a process that died; the
/// next start (on any replica) marks it failed and runs.
const STALE_AFTER: Duration = Duration::from_secs(10 * 60);
/// The job's count of customers whose segment changed.
pub const CHANGED: &str = "changed";
/// How often a running job says it is alive, whatever its statements take.
const HEARTBEAT: Duration = Duration::from_secs(30);

pub struct Batch {
    store: Arc<dyn SegmentStore>,
    writer: Arc<dyn SegmentWriter>,
    rules: SegmentConfig,
    stale_after: Duration,
    heartbeat: Duration,
}

impl Batch {
    pub fn new(
        store: Arc<dyn SegmentStore>,
        writer: Arc<dyn SegmentWriter>,
        rules: SegmentConfig,
    ) -> Self {
        Self {
            store,
            writer,
            rules,
            stale_after: STALE_AFTER,
            heartbeat: HEARTBEAT,
        }
    }

    /// Other lease timings (tests).
    pub fn with_lease(mut self, stale_after: Duration, heartbeat: Duration) -> Self {
        self.stale_after = stale_after;
        self.heartbeat = heartbeat;
        self
    }

    /// Registers a job and runs it in the background; the job as registered, or
    /// `AlreadyRunning`.
    pub async fn start(self: &Arc<Self>) -> Result<Job> {
        let now = crm_domain::stored_precision(Utc::now());
        let job = self
            .store
            .start_job(
                now,
                chrono::Duration::from_std(self.stale_after).expect("a short window"),
            )
            .await?;
        let batch = self.clone();
        let started = job.clone();
        tokio::spawn(async move { batch.run(started, now).await });
        Ok(job)
    }

    /// Runs a registered job to its end, recording how it ended.
    pub async fn run(&self, mut job: Job, now: DateTime<Utc>) -> Job {
        tracing::info!(job_id = %job.id, "segment recompute started");
        // The heartbeat goes on while a statement runs for minutes (scoring millions),
        // so another replica never takes a job over that is alive.
        let id = job.id;
        let outcome = tokio::select! {
            outcome = self.recompute(&mut job, now) => outcome,
            never = self.beat(id) => match never {},
        };
        let finished = crm_domain::stored_precision(Utc::now());
        match outcome {
            Ok(()) => {
                job.finish(finished, None);
                tracing::info!(job_id = %job.id, total = ?job.progress.total,
                    changed = job.count(CHANGED), "segment recompute completed");
            }
            Err(error) => {
                tracing::error!(job_id = %job.id, %error, "segment recompute failed");
                job.finish(finished, Some(error.to_string()));
            }
        }
        if let Err(error) = self.store.save_job(&job, Utc::now()).await {
            tracing::error!(job_id = %job.id, %error, "cannot record the end of the recompute");
        }
        job
    }

    async fn recompute(&self, job: &mut Job, now: DateTime<Utc>) -> Result<()> {
        let total = self.store.count_live().await?;
        job.progress.total = Some(total);
        self.progress(job, "computing RFM bounds").await?;
        if let Some(bounds) = self.store.compute_bounds(now).await? {
            self.progress(job, "scoring RFM").await?;
            self.store.score_all(&bounds, now).await?;
        }
        let pending = self.store.count_pending(&self.rules, now).await?;
        job.progress.done = total.saturating_sub(pending);
        self.progress(job, "storing changed segments").await?;
        let mut pending = self
            .store
            .pending_changes(&self.rules, now)
            .chunks(crm_domain::limits::MAX_SEGMENT_CHANGES);
        while let Some(page) = pending.next().await {
            let page = page.into_iter().collect::<Result<Vec<_>>>()?;
            let decisions: Vec<SegmentDecision> = page
                .iter()
                .map(|profile| SegmentDecision::for_profile(profile, &self.rules, now))
                .collect();
            let changed = self.writer.store(decisions).await?;
            job.add(CHANGED, changed);
            job.progress.done += page.len() as u64;
            self.save(job).await?;
        }
        // Every customer has been looked at (pages shrink when snapshots arrive meanwhile).
        job.progress.done = total;
        Ok(())
    }

    async fn beat(&self, job: uuid::Uuid) -> std::convert::Infallible {
        loop {
            tokio::time::sleep(self.heartbeat).await;
            if let Err(error) = self.store.heartbeat(job, Utc::now()).await {
                tracing::warn!(job_id = %job, %error, "cannot record the recompute's heartbeat");
            }
        }
    }

    async fn progress(&self, job: &mut Job, phase: &str) -> Result<()> {
        job.phase = phase.into();
        self.save(job).await
    }

    async fn save(&self, job: &Job) -> Result<()> {
        self.store.save_job(job, Utc::now()).await
    }

    /// Starts a batch every `interval` until shutdown; a batch still running then is
    /// left alone.
    pub async fn run_every(self: Arc<Self>, interval: Duration, shutdown: Shutdown) {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = shutdown.wait() => return,
            }
            match self.start().await {
                Ok(_) => {}
                Err(Error::AlreadyRunning(job)) => {
                    tracing::info!(?job, "scheduled recompute skipped: one is running")
                }
                Err(error) => tracing::error!(%error, "cannot start the scheduled recompute"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::{Duration as Days, TimeZone};
    use crm_domain::{CustomerId, Segment};

    use super::*;
    use crate::store::{Profile, ProfileStore, RecomputeStore, SqliteStore};

    /// Records decisions and, like customer-core, applies those made from the
    /// current version.
    #[derive(Default)]
    struct RecordingWriter(Mutex<Vec<SegmentDecision>>);

    #[async_trait::async_trait]
    impl SegmentWriter for RecordingWriter {
        async fn store(&self, decisions: Vec<SegmentDecision>) -> Result<u64> {
            let n = decisions.len() as u64;
            self.0.lock().unwrap().extend(decisions);
            Ok(n)
        }
    }

    #[tokio::test]
    async fn recomputes_everyone_and_stores_only_what_changed() {
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
        let store = Arc::new(SqliteStore::in_memory().await.unwrap());
        let profile = |segment, last_order_days_ago| Profile {
            customer_id: CustomerId::generate(),
            version: 4,
            deleted: false,
            segment,
            created_at: now - Days::days(400),
            total_orders: 1,
            total_spent: 50.0,
            lifetime_value: 50.0,
            last_order_at: Some(now - Days::days(last_order_days_ago)),
            categories: vec![],
            rfm: None,
        };
        let drifted = profile(Segment::Regular, 91);
        let settled = profile(Segment::Regular, 10);
        for p in [&drifted, &settled] {
            store.upsert_profile(p).await.unwrap();
        }
        let writer = Arc::new(RecordingWriter::default());
        let batch = Batch::new(store.clone(), writer.clone(), SegmentConfig::default());
        let job = store
            .start_job(now, chrono::Duration::minutes(10))
            .await
            .unwrap();

        let done = batch.run(job, now).await;

        assert_eq!(
            done.status,
            crm_domain::JobStatus::Completed,
            "{:?}",
            done.error
        );
        assert_eq!(
            (done.progress.total, done.progress.done, done.count(CHANGED)),
            (Some(2), 2, 1)
        );
        assert_eq!(
            *writer.0.lock().unwrap(),
            [SegmentDecision {
                customer_id: drifted.customer_id,
                based_on_version: 4,
                segment: Segment::AtRisk,
                reason: "91 days since the last order (over 90)".into(),
            }]
        );
        assert_eq!(store.job(done.id).await.unwrap(), Some(done));
        let rfm = store
            .profile(settled.customer_id)
            .await
            .unwrap()
            .unwrap()
            .rfm;
        assert!(rfm.is_some(), "RFM is scored for everyone");
    }

    /// A regular customer whose last order was 200 days ago: the rules churn them.
    fn drifted() -> Profile {
        Profile {
            customer_id: CustomerId::generate(),
            version: 1,
            deleted: false,
            segment: Segment::Regular,
            created_at: Utc::now() - Days::days(400),
            total_orders: 1,
            total_spent: 50.0,
            lifetime_value: 50.0,
            last_order_at: Some(Utc::now() - Days::days(200)),
            categories: vec![],
            rfm: None,
        }
    }

    #[tokio::test]
    async fn the_schedule_starts_a_batch_every_interval() {
        let store = Arc::new(SqliteStore::in_memory().await.unwrap());
        let drifted = drifted();
        store.upsert_profile(&drifted).await.unwrap();
        let writer = Arc::new(RecordingWriter::default());
        let batch = Arc::new(Batch::new(store, writer.clone(), SegmentConfig::default()));
        let shutdown = Shutdown::new();
        let schedule = tokio::spawn(batch.run_every(Duration::from_millis(20), shutdown.clone()));

        let decided = async {
            loop {
                if let Some(decision) = writer.0.lock().unwrap().first().cloned() {
                    return decision;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        let decision = tokio::time::timeout(Duration::from_secs(10), decided)
            .await
            .expect("a scheduled batch ran");
        shutdown.trigger();
        schedule.await.unwrap();

        assert_eq!(decision.customer_id, drifted.customer_id);
        assert_eq!(decision.segment, Segment::Churned);
    }

    /// A writer that holds the batch until told to go on, as a statement over millions
    /// of customers would.
    struct HeldWriter(tokio::sync::Semaphore);

    #[async_trait::async_trait]
    impl SegmentWriter for HeldWriter {
        async fn store(&self, decisions: Vec<SegmentDecision>) -> Result<u64> {
            let _go = self.0.acquire().await.expect("open");
            Ok(decisions.len() as u64)
        }
    }

    #[tokio::test]
    async fn a_long_batch_keeps_its_lease_and_a_second_start_is_refused() {
        let store = Arc::new(SqliteStore::in_memory().await.unwrap());
        let drifted = drifted();
        store.upsert_profile(&drifted).await.unwrap();
        let writer = Arc::new(HeldWriter(tokio::sync::Semaphore::new(0)));
        let replica = |writer: Arc<HeldWriter>| {
            let batch = Batch::new(store.clone(), writer, SegmentConfig::default())
                .with_lease(Duration::from_millis(300), Duration::from_millis(50));
            Arc::new(batch)
        };
        let (one, two) = (replica(writer.clone()), replica(writer.clone()));
        let first = one.start().await.unwrap();
        // Well past the stale window, the first batch still holds the lease.
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            match two.start().await {
                Err(Error::AlreadyRunning(Some(id))) => assert_eq!(id, first.id),
                other => panic!("a second batch ran beside the first: {other:?}"),
            }
        }
        writer.0.add_permits(1_000);
        let finished = async {
            loop {
                let job = store.job(first.id).await.unwrap().unwrap();
                if job.status != crm_domain::JobStatus::Running {
                    return job;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let job = tokio::time::timeout(Duration::from_secs(10), finished)
            .await
            .unwrap();
        assert_eq!(
            job.status,
            crm_domain::JobStatus::Completed,
            "{:?}",
            job.error
        );
    }
}
