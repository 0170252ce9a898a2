//! tantivy's generations: directories `gen-N`, the live one named by `CURRENT`.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use async_trait::async_trait;

use super::{Generation, IndexCatalog, Result, SearchIndex, TantivyIndex, engine};

/// Generations as directories `gen-N` under one directory, and the alias as the file
/// `CURRENT` naming the live one (replaced atomically by a rename); or all in memory.
pub struct TantivyCatalog {
    dir: Option<PathBuf>,
    /// The in-memory catalog's generation counter.
    next_in_memory: std::sync::atomic::AtomicU64,
}

const CURRENT: &str = "CURRENT";

impl TantivyCatalog {
    pub fn on_disk(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: Some(dir.into()),
            next_in_memory: 1.into(),
        }
    }

    pub fn in_memory() -> Self {
        Self {
            dir: None,
            next_in_memory: 1.into(),
        }
    }

    pub(super) fn generations(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(engine)? {
            let path = entry.map_err(engine)?.path();
            let number = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("gen-"))
                .and_then(|n| n.parse().ok());
            if let Some(number) = number {
                found.push((number, path));
            }
        }
        found.sort();
        Ok(found)
    }

    /// Removes every generation but `keep`.
    fn remove_others(dir: &Path, keep: &[&str]) -> Result<()> {
        for (_, path) in Self::generations(dir)? {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !keep.contains(&name)
                && let Err(error) = std::fs::remove_dir_all(&path)
            {
                tracing::warn!(%error, ?path, "cannot remove an old index generation");
            }
        }
        Ok(())
    }

    fn open_generation(&self, name: &str) -> Result<Generation> {
        let index = match &self.dir {
            // Opening may wait for the writer lock of a process that just died.
            Some(dir) => tokio::task::block_in_place(|| TantivyIndex::open(&dir.join(name)))?,
            None => TantivyIndex::in_memory()?,
        };
        Ok(Generation {
            name: name.to_owned(),
            index: Arc::new(index),
        })
    }
}

#[async_trait]
impl IndexCatalog for TantivyCatalog {
    async fn open_live(&self) -> Result<(Arc<dyn SearchIndex>, bool)> {
        let Some(dir) = &self.dir else {
            return Ok((self.create_generation().await?.index, true));
        };
        std::fs::create_dir_all(dir).map_err(engine)?;
        let current = std::fs::read_to_string(dir.join(CURRENT)).ok();
        match current.map(|c| c.trim().to_owned()) {
            Some(name) if dir.join(&name).is_dir() => {
                // Leftovers of a reindex that did not finish.
                Self::remove_others(dir, &[&name])?;
                Ok((self.open_generation(&name)?.index, false))
            }
            _ => {
                let generation = self.create_generation().await?;
                let live = self.promote(&generation).await?;
                Ok((live, true))
            }
        }
    }

    async fn create_generation(&self) -> Result<Generation> {
        let number = match &self.dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(engine)?;
                Self::generations(dir)?.last().map_or(1, |(n, _)| n + 1)
            }
            None => self
                .next_in_memory
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        };
        self.open_generation(&format!("gen-{number}"))
    }

    async fn promote(&self, generation: &Generation) -> Result<Arc<dyn SearchIndex>> {
        generation.index.refresh().await?;
        if let Some(dir) = &self.dir {
            let previous = std::fs::read_to_string(dir.join(CURRENT)).unwrap_or_default();
            let staged = dir.join("CURRENT.new");
            std::fs::write(&staged, &generation.name).map_err(engine)?;
            std::fs::rename(&staged, dir.join(CURRENT)).map_err(engine)?;
            // The previous generation may still answer searches in flight; it goes at
            // the next swap or start.
            Self::remove_others(dir, &[&generation.name, previous.trim()])?;
        }
        Ok(generation.index.clone())
    }
}
