//! Elasticsearch's generations: indices `<alias>-<n>` behind the alias searches read,
//! and the reindex jobs kept beside them.

use std::sync::Arc;

use async_trait::async_trait;
use elasticsearch::{
    Elasticsearch,
    indices::{IndicesCreateParts, IndicesGetAliasParts},
};
use serde_json::json;

use super::{
    ElasticIndex, ElasticJobBoard, Generation, IndexCatalog, IndexError, Result, SearchIndex,
    client, expect_success, index_body, send,
};
use crate::reindex::JobBoard;

/// Generations `<alias>-<n>` behind the alias searches read.
pub struct ElasticCatalog {
    client: Elasticsearch,
    alias: String,
}

impl ElasticCatalog {
    pub fn new(url: &str, alias: &str) -> Result<Self> {
        Ok(Self {
            client: client(url)?,
            alias: alias.to_owned(),
        })
    }

    fn index(&self, name: &str) -> Arc<dyn SearchIndex> {
        Arc::new(ElasticIndex::new(self.client.clone(), name))
    }

    /// The generations that exist, and the ones the alias points at.
    async fn generations(&self) -> Result<(Vec<String>, Vec<String>)> {
        let pattern = format!("{}-*", self.alias);
        let response = send("list generations", || async {
            self.client
                .indices()
                .get_alias(IndicesGetAliasParts::Index(&[&pattern]))
                .send()
                .await
        })
        .await?;
        let found = expect_success("list generations", response)?;
        let mut all: Vec<String> = found
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect();
        all.sort_by_key(|name| self.number(name));
        let live = found
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, v)| v["aliases"].get(&self.alias).is_some())
            .map(|(k, _)| k.clone())
            .collect();
        Ok((all, live))
    }

    fn number(&self, name: &str) -> u64 {
        name.strip_prefix(&format!("{}-", self.alias))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    async fn create(&self, name: &str, with_alias: bool) -> Result<()> {
        let body = index_body(with_alias.then_some(self.alias.as_str()));
        let response = send("create index", || async {
            self.client
                .indices()
                .create(IndicesCreateParts::Index(name))
                .body(body.clone())
                .send()
                .await
        })
        .await?;
        expect_success("create index", response).map(drop)
    }
}

#[async_trait]
impl IndexCatalog for ElasticCatalog {
    async fn open_live(&self) -> Result<(Arc<dyn SearchIndex>, bool)> {
        let (all, live) = self.generations().await?;
        if !live.is_empty() {
            return Ok((self.index(&self.alias), false));
        }
        let next = all.last().map_or(1, |n| self.number(n) + 1);
        match self.create(&format!("{}-{next}", self.alias), true).await {
            Ok(()) => Ok((self.index(&self.alias), true)),
            // Another replica starting at the same moment made it (and fills it).
            Err(IndexError::Rejected(reason))
                if reason.contains("resource_already_exists_exception") =>
            {
                Ok((self.index(&self.alias), false))
            }
            Err(error) => Err(error),
        }
    }

    async fn create_generation(&self) -> Result<Generation> {
        let (all, _) = self.generations().await?;
        let next = all.last().map_or(1, |n| self.number(n) + 1);
        let name = format!("{}-{next}", self.alias);
        self.create(&name, false).await?;
        Ok(Generation {
            index: self.index(&name),
            name,
        })
    }

    fn shared_jobs(&self) -> Option<Arc<dyn JobBoard>> {
        Some(Arc::new(ElasticJobBoard::new(
            self.client.clone(),
            &self.alias,
        )))
    }

    fn generation(&self, name: &str) -> Option<Arc<dyn SearchIndex>> {
        Some(self.index(name))
    }

    async fn promote(&self, generation: &Generation) -> Result<Arc<dyn SearchIndex>> {
        generation.index.refresh().await?;
        let (all, _) = self.generations().await?;
        // One atomic step: the alias moves and the older generations go.
        let mut actions = vec![json!({ "add": { "index": generation.name, "alias": self.alias } })];
        actions.extend(
            all.iter()
                .filter(|name| **name != generation.name)
                .map(|name| json!({ "remove_index": { "index": name } })),
        );
        let body = json!({ "actions": actions });
        let response = send("swap alias", || async {
            self.client
                .indices()
                .update_aliases()
                .body(body.clone())
                .send()
                .await
        })
        .await?;
        expect_success("swap alias", response)?;
        Ok(self.index(&self.alias))
    }
}
