//! Conversions of a job (import, recompute, reindex), the one shape every service answers
//! long work with.

use super::*;

impl From<domain::Job> for v1::Job {
    fn from(job: domain::Job) -> Self {
        use domain::{JobKind as K, JobStatus as S};
        let kind = match job.kind {
            K::Import => v1::JobKind::Import,
            K::Recompute => v1::JobKind::Recompute,
            K::Reindex => v1::JobKind::Reindex,
        };
        let status = match job.status {
            S::Running => v1::JobStatus::Running,
            S::Completed => v1::JobStatus::Completed,
            S::Failed => v1::JobStatus::Failed,
        };
        Self {
            id: job.id.to_string(),
            kind: kind.into(),
            status: status.into(),
            phase: job.phase,
            done: job.progress.done,
            total: job.progress.total,
            counts: job.counts.into_iter().collect(),
            failures: job
                .failures
                .into_iter()
                .map(|f| v1::ItemFailure {
                    line: f.line,
                    message: f.message,
                })
                .collect(),
            error: job.error,
            started_at: Some(timestamp(job.started_at)),
            finished_at: job.finished_at.map(timestamp),
        }
    }
}

impl TryFrom<v1::Job> for domain::Job {
    type Error = String;

    fn try_from(job: v1::Job) -> Result<Self, String> {
        use domain::{JobKind as K, JobStatus as S};
        let kind = match v1::JobKind::try_from(job.kind) {
            Ok(v1::JobKind::Import) => K::Import,
            Ok(v1::JobKind::Recompute) => K::Recompute,
            Ok(v1::JobKind::Reindex) => K::Reindex,
            _ => return Err(format!("job kind {} is unknown", job.kind)),
        };
        let status = match v1::JobStatus::try_from(job.status) {
            Ok(v1::JobStatus::Running) => S::Running,
            Ok(v1::JobStatus::Completed) => S::Completed,
            Ok(v1::JobStatus::Failed) => S::Failed,
            _ => return Err(format!("job status {} is unknown", job.status)),
        };
        Ok(Self {
            id: job.id.parse().map_err(|e| format!("job id: {e}"))?,
            kind,
            status,
            phase: job.phase,
            progress: domain::JobProgress {
                done: job.done,
                total: job.total,
            },
            counts: job.counts.into_iter().collect(),
            failures: job
                .failures
                .into_iter()
                .map(|f| domain::ItemFailure {
                    line: f.line,
                    message: f.message,
                })
                .collect(),
            error: job.error,
            started_at: required_datetime(job.started_at.as_ref(), "started_at")?,
            finished_at: datetime(job.finished_at.as_ref()),
        })
    }
}
