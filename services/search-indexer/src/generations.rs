//! The index searches read and, while a reindex runs, the generation it builds. Every
//! snapshot goes to both, so nothing applied during the build is missing after the swap
//! (the version rule makes the reindex's older copy of a customer a no-op). Replicas
//! that share an engine learn of a build another replica runs from the jobs board.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use crm_domain::Customer;

use crate::{
    index::{Applied, IndexCatalog, Result, SearchIndex},
    reindex::JobBoard,
};

/// How long a replica trusts what it last learned of other replicas' builds.
const TRUSTED_FOR: Duration = Duration::from_secs(1);
/// How long after a build is on the board every replica applies events to it too:
/// what each learned before is no longer trusted (with a margin for a slow answer).
pub const EVERY_REPLICA_KNOWS_WITHIN: Duration = Duration::from_secs(2);

#[derive(Clone)]
struct Targets {
    live: Arc<dyn SearchIndex>,
    /// The generation this replica builds.
    building: Option<Arc<dyn SearchIndex>>,
}

pub struct Generations {
    // Both read under one lock: a snapshot applied during the swap reaches the new
    // generation whichever side of the swap it falls on.
    targets: RwLock<Targets>,
    /// Builds of other replicas, when replicas share the engine.
    others: Option<OtherBuilds>,
}

struct OtherBuilds {
    board: Arc<dyn JobBoard>,
    catalog: Arc<dyn IndexCatalog>,
    known: tokio::sync::Mutex<Known>,
}

#[derive(Default)]
struct Known {
    /// When the board was asked (before the question left, so the answer is trusted
    /// no longer than it may be true).
    asked_at: Option<Instant>,
    building: Option<(String, Arc<dyn SearchIndex>)>,
}

impl Generations {
    /// `shared`: where replicas that share the engine keep their jobs.
    pub fn new(
        live: Arc<dyn SearchIndex>,
        shared: Option<(Arc<dyn JobBoard>, Arc<dyn IndexCatalog>)>,
    ) -> Self {
        Self {
            targets: RwLock::new(Targets {
                live,
                building: None,
            }),
            others: shared.map(|(board, catalog)| OtherBuilds {
                board,
                catalog,
                known: Default::default(),
            }),
        }
    }

    fn targets(&self) -> Targets {
        self.targets.read().expect("index targets").clone()
    }

    /// What searches read.
    pub fn live(&self) -> Arc<dyn SearchIndex> {
        self.targets().live
    }

    /// Whether a build must reach the events other replicas apply.
    pub fn shares_builds(&self) -> bool {
        self.others.is_some()
    }

    /// Applies a snapshot to the live index and to the generation being built.
    pub async fn apply(&self, customer: &Customer) -> Result<Applied> {
        let mut applied = self.apply_all(std::slice::from_ref(customer)).await?;
        Ok(applied.pop().unwrap_or(Applied::Stale))
    }

    /// Applies snapshots to the live index and to the generation being built, each in
    /// one engine batch.
    pub async fn apply_all(&self, customers: &[Customer]) -> Result<Vec<Applied>> {
        let Targets { live, building } = self.targets();
        let building = match (building, &self.others) {
            (Some(building), _) => Some(building),
            (None, Some(others)) => others.building().await?,
            (None, None) => None,
        };
        let applied = live.apply_all(customers).await?;
        if let Some(building) = building {
            building.apply_all(customers).await?;
        }
        Ok(applied)
    }

    /// From now on snapshots go to `generation` too.
    pub fn start_building(&self, generation: Arc<dyn SearchIndex>) {
        self.targets.write().expect("index targets").building = Some(generation);
    }

    /// Ends a build: `Some(new live)` after the swap, `None` when it failed.
    pub fn finish_building(&self, promoted: Option<Arc<dyn SearchIndex>>) {
        let mut targets = self.targets.write().expect("index targets");
        if let Some(live) = promoted {
            targets.live = live;
        }
        targets.building = None;
    }
}

impl OtherBuilds {
    /// The generation a replica builds now, as learned within `TRUSTED_FOR`.
    async fn building(&self) -> Result<Option<Arc<dyn SearchIndex>>> {
        let mut known = self.known.lock().await;
        if known.asked_at.is_some_and(|at| at.elapsed() < TRUSTED_FOR) {
            return Ok(known.building.as_ref().map(|(_, index)| index.clone()));
        }
        let asked_at = Instant::now();
        let current = self.board.current().await?;
        let name = current
            .filter(|(job, _)| job.is_building(chrono::Utc::now()) && !job.generation.is_empty())
            .map(|(job, _)| job.generation);
        known.building = match (name, known.building.take()) {
            (Some(name), Some((same, index))) if name == same => Some((same, index)),
            (Some(name), _) => self.catalog.generation(&name).map(|index| (name, index)),
            (None, _) => None,
        };
        known.asked_at = Some(asked_at);
        Ok(known.building.as_ref().map(|(_, index)| index.clone()))
    }
}
