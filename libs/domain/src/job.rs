//! Long work a service runs for a caller: an import, a segment recompute, a reindex. All
//! three are one `Job`, so a client (and the REST API) follows each the same way: its
//! status, how far it got, what it counted and why it failed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{customer::wire_enum, limits::MAX_IMPORT_ERRORS};

wire_enum!(
    /// What a job does.
    JobKind, "import, recompute, reindex" {
        Import = "import",
        Recompute = "recompute",
        Reindex = "reindex",
    }
);

wire_enum!(
    JobStatus, "running, completed, failed" {
        Running = "running",
        Completed = "completed",
        Failed = "failed",
    }
);

/// The phase of every job that has ended.
pub const DONE: &str = "done";

/// How far a job got: items done, of how many when that is known up front (an upload
/// streams in, so an import's total is unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobProgress {
    pub done: u64,
    pub total: Option<u64>,
}

/// One item a job could not handle (an import's row), and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemFailure {
    /// Where the item was (an import's line; the CSV header is line 1).
    pub line: u64,
    pub message: String,
}

/// A job as every service reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Job {
    pub id: Uuid,
    pub kind: JobKind,
    pub status: JobStatus,
    /// What it does now, in words ("scoring RFM"); `done` once it ended.
    pub phase: String,
    pub progress: JobProgress,
    /// What it counted, by name: an import's `created`, `updated`, `unchanged` and
    /// `failed` rows, a recompute's `changed` customers.
    pub counts: BTreeMap<String, u64>,
    /// The first items that failed (at most `MAX_IMPORT_ERRORS`), in the order met.
    pub failures: Vec<ItemFailure>,
    /// Why the whole job failed, when it did.
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Job {
    pub fn start(id: Uuid, kind: JobKind, phase: &str, now: DateTime<Utc>) -> Self {
        Self {
            id,
            kind,
            status: JobStatus::Running,
            phase: phase.to_owned(),
            progress: JobProgress::default(),
            counts: BTreeMap::new(),
            failures: Vec::new(),
            error: None,
            started_at: now,
            finished_at: None,
        }
    }

    pub fn is_running(&self) -> bool {
        self.status == JobStatus::Running
    }

    /// The count named `name` (0 when never counted).
    pub fn count(&self, name: &str) -> u64 {
        self.counts.get(name).copied().unwrap_or_default()
    }

    /// Adds `n` to the count named `name`.
    pub fn add(&mut self, name: &str, n: u64) {
        *self.counts.entry(name.to_owned()).or_default() += n;
    }

    /// Records an item that failed: counted as `failed`, and kept while fewer than
    /// `MAX_IMPORT_ERRORS` are.
    pub fn fail_item(&mut self, line: u64, message: String) {
        self.add("failed", 1);
        if self.failures.len() < MAX_IMPORT_ERRORS {
            self.failures.push(ItemFailure { line, message });
        }
    }

    /// Ends the job: completed, or failed for `error`.
    pub fn finish(&mut self, now: DateTime<Utc>, error: Option<String>) {
        self.status = match error {
            None => JobStatus::Completed,
            Some(_) => JobStatus::Failed,
        };
        self.phase = DONE.to_owned();
        self.error = error;
        self.finished_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, second).unwrap()
    }

    #[test]
    fn wire_names_are_what_serde_writes() {
        JobKind::wire_names_match_serde();
        JobStatus::wire_names_match_serde();
    }

    #[test]
    fn a_job_counts_keeps_the_first_failures_and_ends_once() {
        let mut job = Job::start(Uuid::nil(), JobKind::Import, "reading rows", at(0));
        assert!(job.is_running());
        job.add("created", 2);
        job.add("created", 1);
        for line in 0..(MAX_IMPORT_ERRORS as u64 + 5) {
            job.fail_item(line + 2, format!("row {line}"));
        }
        assert_eq!(job.count("created"), 3);
        assert_eq!(job.count("failed"), MAX_IMPORT_ERRORS as u64 + 5);
        assert_eq!(job.count("unchanged"), 0);
        assert_eq!(job.failures.len(), MAX_IMPORT_ERRORS);
        assert_eq!(job.failures[0].line, 2, "the first failures are kept");

        job.finish(at(5), Some("the upload broke off".into()));
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.phase, DONE);
        assert_eq!(job.finished_at, Some(at(5)));

        let mut other = Job::start(Uuid::nil(), JobKind::Reindex, "indexing", at(0));
        other.finish(at(1), None);
        assert_eq!(other.status, JobStatus::Completed);
        assert_eq!(other.error, None);
    }
}
