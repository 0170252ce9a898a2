//! Reindex jobs kept in the cluster, beside the generations they build: every replica
//! reads the same jobs, and the current one changes only with the sequence number its
//! writer read (optimistic concurrency), so only one replica holds it.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use elasticsearch::{
    Elasticsearch,
    http::{Method, StatusCode, headers::HeaderMap, request::JsonBody},
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    IndexError, Result,
    elasticsearch::{expect_success, send},
};
use crate::reindex::{Build, JobBoard, jobs::Revision};

const CURRENT: &str = "current";

pub struct ElasticJobBoard {
    client: Elasticsearch,
    /// `<alias>_reindex`: outside the `<alias>-*` generations, which a swap removes.
    index: String,
    created: AtomicBool,
}

impl ElasticJobBoard {
    pub fn new(client: Elasticsearch, alias: &str) -> Self {
        Self {
            client,
            index: format!("{alias}_reindex"),
            created: AtomicBool::new(false),
        }
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, i64)],
        body: Option<Value>,
    ) -> Result<(StatusCode, Value)> {
        send(path, || async {
            let query = (!query.is_empty()).then_some(query);
            let body = body.clone().map(JsonBody::new);
            self.client
                .send(method, path, HeaderMap::new(), query, body, None)
                .await
        })
        .await
    }

    /// The document with `id` and its revision; `None` when there is none (nor the
    /// index).
    async fn get(&self, id: &str) -> Result<Option<(Build, Revision)>> {
        let path = format!("/{}/_doc/{id}", self.index);
        let (status, body) = self.request(Method::Get, &path, &[], None).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body = expect_success("read reindex job", (status, body))?;
        let job = serde_json::from_value(body["_source"].clone())
            .map_err(|e| IndexError::Corrupt(format!("reindex job {id}: {e}")))?;
        Ok(Some((job, revision(&body)?)))
    }

    async fn create_index(&self) -> Result<()> {
        if self.created.load(Ordering::Relaxed) {
            return Ok(());
        }
        let path = format!("/{}", self.index);
        let body = json!({ "mappings": { "dynamic": false } });
        let (status, answer) = self.request(Method::Put, &path, &[], Some(body)).await?;
        let exists = answer["error"]["type"] == "resource_already_exists_exception";
        if !exists {
            expect_success("create the reindex jobs index", (status, answer))?;
        }
        self.created.store(true, Ordering::Relaxed);
        Ok(())
    }
}

fn revision(body: &Value) -> Result<Revision> {
    match (body["_seq_no"].as_i64(), body["_primary_term"].as_i64()) {
        (Some(seq_no), Some(primary_term)) => Ok(Revision {
            seq_no,
            primary_term,
        }),
        _ => Err(IndexError::Corrupt(format!("no revision in {body}"))),
    }
}

#[async_trait]
impl JobBoard for ElasticJobBoard {
    async fn current(&self) -> Result<Option<(Build, Revision)>> {
        self.get(CURRENT).await
    }

    async fn replace_current(
        &self,
        job: &Build,
        expected: Option<Revision>,
    ) -> Result<Option<Revision>> {
        let body = serde_json::to_value(job).map_err(|e| IndexError::Corrupt(e.to_string()))?;
        let answer = match expected {
            None => {
                self.create_index().await?;
                let path = format!("/{}/_create/{CURRENT}", self.index);
                self.request(Method::Put, &path, &[], Some(body)).await?
            }
            Some(revision) => {
                let path = format!("/{}/_doc/{CURRENT}", self.index);
                let only_over = [
                    ("if_seq_no", revision.seq_no),
                    ("if_primary_term", revision.primary_term),
                ];
                self.request(Method::Put, &path, &only_over, Some(body))
                    .await?
            }
        };
        if answer.0 == StatusCode::CONFLICT {
            // Either another writer got there first, or this write landed and only its
            // answer was lost (then retried): the board holds this very job.
            return Ok(self
                .current()
                .await?
                .filter(|(held, _)| held == job)
                .map(|(_, revision)| revision));
        }
        revision(&expect_success("save the current reindex job", answer)?).map(Some)
    }

    async fn keep(&self, job: &Build) -> Result<()> {
        let body = serde_json::to_value(job).map_err(|e| IndexError::Corrupt(e.to_string()))?;
        let path = format!("/{}/_doc/{}", self.index, job.job.id);
        let answer = self.request(Method::Put, &path, &[], Some(body)).await?;
        expect_success("keep the reindex job", answer).map(drop)
    }

    async fn job(&self, id: Uuid) -> Result<Option<Build>> {
        Ok(self.get(&id.to_string()).await?.map(|(job, _)| job))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{index::recorded::Elastic, reindex::jobs::contract};

    #[tokio::test(flavor = "multi_thread")]
    async fn jobs_contract_on_recorded_exchanges() {
        let elastic = Elastic::start("jobs", &["jobs_reindex"]).await;
        let board = ElasticJobBoard::new(
            super::super::elasticsearch::client(&elastic.url).unwrap(),
            "jobs",
        );
        contract::run(&board).await;
        elastic.finish();
    }
}
