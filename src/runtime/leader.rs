//! Leader election on a `coordination.k8s.io/v1` Lease (kube-lease-manager), so that of several
//! replicas only one talks to Confluent: two active replicas could both create an invitation for
//! the same new resource.

use std::time::Duration;

use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;

/// How long a lease is valid without renewal: the longest a dead leader blocks a hand-over.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How long before expiry the leader renews.
pub const LEASE_GRACE: Duration = Duration::from_secs(5);

/// Why leader election failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("leader election on Lease {namespace}/{name}: {source}")]
    Lease {
        namespace: String,
        name: String,
        #[source]
        source: LeaseManagerError,
    },
}

/// A running election: `is_leader` follows this replica's state; dropping it (or calling
/// [`Election::resign`]) releases the lease.
pub struct Election {
    pub is_leader: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

impl Election {
    /// Joins the election for `namespace/name` as `identity`.
    pub async fn join(
        kube: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
    ) -> Result<Self, Error> {
        let manager = LeaseManagerBuilder::new(kube, name)
            .with_namespace(namespace)
            .with_identity(identity)
            .with_duration(LEASE_DURATION.as_secs())
            .with_grace(LEASE_GRACE.as_secs())
            .with_field_manager(super::FIELD_MANAGER)
            .build()
            .await
            .map_err(|source| Error::Lease {
                namespace: namespace.into(),
                name: name.into(),
                source,
            })?;
        let (is_leader, task) = manager.watch().await;
        Ok(Self { is_leader, task })
    }

    /// Waits until this replica leads; `false` when the election ended first.
    pub async fn until_leader(&mut self) -> bool {
        self.is_leader.wait_for(|leader| *leader).await.is_ok()
    }

    /// Resolves when leadership is lost (or the election ended).
    pub async fn until_lost(mut rx: watch::Receiver<bool>) {
        let _ = rx.wait_for(|leader| !*leader).await;
    }

    /// Releases the lease (if held) so a standby can take over at once, not after expiry.
    pub async fn resign(self) {
        drop(self.is_leader);
        match tokio::time::timeout(LEASE_GRACE, self.task).await {
            Ok(Ok(Ok(_))) => tracing::info!("lease released"),
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "lease not released cleanly"),
            Ok(Err(e)) => tracing::warn!(error = %e, "leader election task failed"),
            Err(_) => tracing::warn!("lease release timed out; it expires by itself"),
        }
    }
}
