//! Leader election on a coordination.k8s.io Lease: controllers run only while this replica holds
//! it, and the manager exits when it loses it (a fresh process starts cleanly as a follower).

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::runtime::lease_gate::{ActGate, watch_hold};
use crate::runtime::shutdown::Shutdown;

/// Seconds a renewal of the Lease holds it.
pub const LEASE_DURATION_SECONDS: u64 = 15;
/// Seconds before the end of the hold at which the holder renews.
pub const LEASE_GRACE_SECONDS: u64 = 5;
/// How long before the Lease can pass to another replica MAAS steps stop, when no renewal was
/// seen: less than the grace, so a working renewal always arrives first.
pub const LEASE_MARGIN: Duration = Duration::from_secs(2);

/// A held lease; dropping it releases the lease.
pub struct Leadership {
    rx: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
    namespace: String,
    lease_name: String,
    identity: String,
}

/// Why leader election ended.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The lease could not be set up.
    #[error("leader election: {0}")]
    Lease(#[from] LeaseManagerError),
    /// Shutdown came before leadership.
    #[error("shut down before becoming leader")]
    ShutdownFirst,
    /// The lease task ended.
    #[error("leader election task ended")]
    TaskEnded,
}

/// Waits until this replica leads (or shutdown fires first).
pub async fn acquire(
    client: Client,
    namespace: &str,
    lease_name: &str,
    identity: &str,
    shutdown: &Shutdown,
) -> Result<Leadership, LeaderError> {
    let manager = LeaseManagerBuilder::new(client, lease_name)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(LEASE_DURATION_SECONDS)
        .with_grace(LEASE_GRACE_SECONDS)
        .build()
        .await?;
    let (mut rx, task) = manager.watch().await;
    info!(lease = lease_name, namespace, "waiting for leadership");
    loop {
        if *rx.borrow_and_update() {
            info!(lease = lease_name, "became leader");
            return Ok(Leadership {
                rx,
                task,
                namespace: namespace.to_string(),
                lease_name: lease_name.to_string(),
                identity: identity.to_string(),
            });
        }
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return Err(LeaderError::TaskEnded) },
            _ = shutdown.wait() => return Err(LeaderError::ShutdownFirst),
        }
    }
}

impl Leadership {
    /// The gate of MAAS steps for this hold, just taken, and the task that follows the hold
    /// from the Lease (and fires `shutdown` when it ends).
    pub fn gate(&self, client: Client, shutdown: &Shutdown) -> Arc<ActGate> {
        let hold = Duration::from_secs(LEASE_DURATION_SECONDS) - LEASE_MARGIN;
        let until = jiff::Timestamp::now()
            .checked_add(hold)
            .unwrap_or_else(|_| jiff::Timestamp::now());
        let gate = Arc::new(ActGate::until(until));
        tokio::spawn(watch_hold(
            client,
            self.namespace.clone(),
            self.lease_name.clone(),
            self.identity.clone(),
            LEASE_MARGIN,
            gate.clone(),
            shutdown.clone(),
        ));
        gate
    }

    /// Resolves when leadership is lost or the lease task dies; triggers `shutdown` then.
    pub async fn watch_loss(mut self, shutdown: Shutdown) -> LeaderError {
        loop {
            tokio::select! {
                changed = self.rx.changed() => {
                    if changed.is_err() || !*self.rx.borrow_and_update() {
                        warn!("leadership lost; stopping");
                        shutdown.trigger();
                        return LeaderError::TaskEnded;
                    }
                }
                _ = shutdown.wait() => {
                    drop(self.rx);
                    // Dropping the receiver makes the task release the lease and end.
                    let _ = self.task.await;
                    return LeaderError::ShutdownFirst;
                }
            }
        }
    }
}
