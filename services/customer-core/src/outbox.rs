//! The outbox relay: publishes the `customer.*` events that writes left in the outbox
//! table, oldest first, and removes them once the broker confirmed. Several replicas may
//! run it at once; row locks keep them from publishing a row twice at the same time.

use std::{sync::Arc, time::Duration};

use crm_platform::{Shutdown, bus::EventBus};
use tokio::sync::Notify;

use crate::repo::CustomerRepository;

/// Events per round trip.
const BATCH: u32 = 100;
/// How often to look even without a wake-up (another replica's writes, a failed round).
const POLL: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub async fn relay(
    repo: Arc<dyn CustomerRepository>,
    bus: Arc<dyn EventBus>,
    wake: Arc<Notify>,
    shutdown: Shutdown,
) {
    let mut backoff = Duration::from_millis(100);
    let mut failing = false;
    loop {
        let wait = match repo.relay_outbox(bus.as_ref(), BATCH).await {
            Ok(published) => {
                if failing {
                    tracing::info!("outbox relay publishing again");
                    failing = false;
                }
                backoff = Duration::from_millis(100);
                if published == BATCH as usize {
                    continue;
                }
                POLL
            }
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "outbox relay cannot publish; retrying with backoff");
                    failing = true;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                backoff
            }
        };
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = wake.notified(), if !failing => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
