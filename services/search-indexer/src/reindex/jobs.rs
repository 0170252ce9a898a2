//! Reindex jobs and where they are kept. Replicas that write one shared engine
//! (Elasticsearch) keep their jobs in it, so any replica answers for a job and only one
//! builds at a time: the running job is the *current* one, and its builder holds it by
//! saving it at least every `HEARTBEAT`. A current job not saved for `LEASE` lost its
//! builder (killed, partitioned): it counts as failed and another may start.

use std::{collections::VecDeque, sync::Mutex, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_domain::{Job, JobKind};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::index::Result;

/// How often a builder saves its job (its progress, and that it is alive).
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long a running job outlives its last save.
pub const LEASE: Duration = Duration::from_secs(30);
/// Finished jobs an indexer of its own remembers (the newest).
const JOBS_KEPT: usize = 50;

/// One build of a new generation as the board keeps it: the job clients follow, and what
/// only builders need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Build {
    pub job: Job,
    /// The generation being filled (the alias points at it once the job completed);
    /// empty until it exists.
    pub generation: String,
    /// The builder's last save.
    pub saved_at: DateTime<Utc>,
}

impl Build {
    pub fn start(now: DateTime<Utc>) -> Self {
        Self {
            job: Job::start(
                Uuid::now_v7(),
                JobKind::Reindex,
                "creating a generation",
                now,
            ),
            generation: String::new(),
            saved_at: now,
        }
    }

    /// From now on it fills `generation`.
    pub fn fills(&mut self, generation: &str) {
        self.generation = generation.to_owned();
        self.job.phase = format!("indexing customers into {generation}");
    }

    /// Running, and its builder saved it within the lease.
    pub fn is_building(&self, now: DateTime<Utc>) -> bool {
        self.job.is_running() && now - self.saved_at <= lease()
    }

    /// The build as a reader should see it: one whose builder is gone failed.
    pub fn as_seen(mut self, now: DateTime<Utc>) -> Self {
        if self.job.is_running() && !self.is_building(now) {
            let error = "the indexer building it stopped before it finished".to_owned();
            self.job.finish(self.saved_at + lease(), Some(error));
        }
        self
    }

    pub fn finish(&mut self, now: DateTime<Utc>, error: Option<String>) {
        self.job.finish(now, error);
        self.saved_at = now;
    }
}

fn lease() -> chrono::Duration {
    chrono::Duration::from_std(LEASE).expect("a short lease")
}

/// Which write of the current job a board holds, so that a replace only lands on the
/// one its writer read (Elasticsearch's sequence number and primary term).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revision {
    pub seq_no: i64,
    pub primary_term: i64,
}

/// Where jobs are kept.
#[async_trait]
pub trait JobBoard: Send + Sync {
    /// The latest started job and the revision it is at.
    async fn current(&self) -> Result<Option<(Build, Revision)>>;
    /// Makes `job` the current one if the board still holds `expected` (`None`: no
    /// current job yet); answers the new revision, or `None` when another writer got
    /// there first.
    async fn replace_current(
        &self,
        job: &Build,
        expected: Option<Revision>,
    ) -> Result<Option<Revision>>;
    /// Keeps `job` for lookups by id.
    async fn keep(&self, job: &Build) -> Result<()>;
    /// A kept job as its builder last saved it.
    async fn job(&self, id: Uuid) -> Result<Option<Build>>;
}

/// The jobs of an indexer whose index is its own (tantivy): its memory.
#[derive(Default)]
pub struct MemoryJobBoard {
    state: Mutex<Memory>,
}

#[derive(Default)]
struct Memory {
    current: Option<(Build, Revision)>,
    /// Newest last.
    kept: VecDeque<Build>,
}

#[async_trait]
impl JobBoard for MemoryJobBoard {
    async fn current(&self) -> Result<Option<(Build, Revision)>> {
        Ok(self.state.lock().expect("jobs").current.clone())
    }

    async fn replace_current(
        &self,
        job: &Build,
        expected: Option<Revision>,
    ) -> Result<Option<Revision>> {
        let mut state = self.state.lock().expect("jobs");
        let held = state.current.as_ref().map(|(_, revision)| *revision);
        if held != expected {
            return Ok(None);
        }
        let revision = Revision {
            seq_no: held.map_or(0, |r| r.seq_no + 1),
            primary_term: 1,
        };
        state.current = Some((job.clone(), revision));
        Ok(Some(revision))
    }

    async fn keep(&self, job: &Build) -> Result<()> {
        let mut state = self.state.lock().expect("jobs");
        match state.kept.iter_mut().find(|kept| kept.job.id == job.job.id) {
            Some(kept) => *kept = job.clone(),
            None => {
                state.kept.push_back(job.clone());
                if state.kept.len() > JOBS_KEPT {
                    state.kept.pop_front();
                }
            }
        }
        Ok(())
    }

    async fn job(&self, id: Uuid) -> Result<Option<Build>> {
        let state = self.state.lock().expect("jobs");
        Ok(state.kept.iter().find(|build| build.job.id == id).cloned())
    }
}

/// What every board does (run on the memory board here, on Elasticsearch's recorded
/// exchanges beside its adapter).
#[cfg(test)]
pub mod contract {
    use chrono::TimeZone;

    use super::*;

    /// A job with fixed ids and times, so the requests an adapter sends are the same
    /// every run.
    pub fn job(n: u8) -> Build {
        let at = Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, n.into()).unwrap();
        let mut build = Build::start(at);
        build.job.id = Uuid::from_bytes([n; 16]);
        build
    }

    pub async fn run(board: &dyn JobBoard) {
        assert_eq!(board.current().await.expect("current"), None);
        let first = job(1);
        let revision = board
            .replace_current(&first, None)
            .await
            .expect("claim")
            .expect("the first claim wins");
        board.keep(&first).await.expect("keep");
        let second = job(2);
        assert_eq!(
            board.replace_current(&second, None).await.expect("claim"),
            None,
            "a claim on a board that has a current job loses"
        );

        let mut saved = first.clone();
        saved.fills("customers-2");
        saved.job.progress.done = 100;
        let revision = board
            .replace_current(&saved, Some(revision))
            .await
            .expect("save")
            .expect("the holder saves");
        board.keep(&saved).await.expect("keep");
        assert_eq!(
            board.current().await.expect("current"),
            Some((saved.clone(), revision))
        );
        assert_eq!(board.job(first.job.id).await.expect("job"), Some(saved));
        assert_eq!(board.job(second.job.id).await.expect("job"), None);

        let stale = Revision {
            seq_no: revision.seq_no - 1,
            ..revision
        };
        assert_eq!(
            board
                .replace_current(&second, Some(stale))
                .await
                .expect("take over"),
            None,
            "a writer that read an older revision loses"
        );
        assert!(
            board
                .replace_current(&second, Some(revision))
                .await
                .expect("take over")
                .is_some()
        );
        assert_eq!(board.current().await.expect("current").unwrap().0, second);
    }

    #[tokio::test]
    async fn memory_board() {
        run(&MemoryJobBoard::default()).await;
    }

    #[test]
    fn a_running_job_whose_builder_went_quiet_is_failed() {
        let job = job(1);
        let now = job.saved_at + chrono::Duration::seconds(29);
        assert!(job.is_building(now));
        assert_eq!(job.clone().as_seen(now), job);
        let later = job.saved_at + chrono::Duration::seconds(31);
        assert!(!job.is_building(later));
        let seen = job.as_seen(later);
        assert_eq!(seen.job.status, crm_domain::JobStatus::Failed);
        assert!(seen.job.error.unwrap().contains("stopped"));
    }
}
