//! The index searches read and, while a reindex runs, the generation it builds. Every
//! snapshot goes to both, so nothing applied during the build is missing after the swap
//! (the version rule makes the reindex's older copy of a customer a no-op).

use std::sync::{Arc, RwLock};

use crm_domain::Customer;

use crate::index::{Applied, Result, SearchIndex};

#[derive(Clone)]
struct Targets {
    live: Arc<dyn SearchIndex>,
    building: Option<Arc<dyn SearchIndex>>,
}

pub struct Indices {
    // Both read under one lock: a snapshot applied during the swap reaches the new
    // generation whichever side of the swap it falls on.
    targets: RwLock<Targets>,
}

impl Indices {
    pub fn new(live: Arc<dyn SearchIndex>) -> Self {
        Self {
            targets: RwLock::new(Targets {
                live,
                building: None,
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

    /// Applies a snapshot to the live index and to the generation being built.
    pub async fn apply(&self, customer: &Customer) -> Result<Applied> {
        let Targets { live, building } = self.targets();
        let applied = live.apply(customer).await?;
        if let Some(building) = building {
            building.apply(customer).await?;
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
