//! The controller's error type: one variant per stage, whose reason becomes the metrics label.

use crate::runtime::credentials;

/// Why a reconcile failed in a way the controller retries with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing Kubernetes objects failed (status patch, finalizer patch).
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Credentials could not be resolved (cleanup keeps its finalizer meanwhile).
    #[error("credentials: {0}")]
    Credentials(#[from] credentials::Error),
    /// A Confluent call failed during cleanup (the finalizer stays until it succeeds).
    #[error("confluent: {0}")]
    Confluent(#[from] confluent_client::Error),
    /// An email's claim could not be read or written (cleanup keeps its finalizer meanwhile).
    #[error("{0}")]
    Claims(#[from] super::email_claims::Error),
    /// Cleanup left a role binding its policy removes (it could not be checked or deleted yet):
    /// the finalizer stays, and the ledger shows which.
    #[error(
        "role bindings the deletion policy removes are not deleted yet (see status.roleBindings)"
    )]
    BindingsLeft,
    /// The finalizer helper failed around our reconcile.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// The object has no name or namespace (never true for a namespaced object from the API).
    #[error("object without name or namespace")]
    Unnamed,
    /// The planner asked for more steps than any of its paths takes: a bug, not input.
    #[error("internal: the planner did not settle during {0}")]
    Unsettled(&'static str),
}

impl Error {
    /// A stable reason for metrics and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Kube(_) => "KubernetesError",
            Self::Credentials(e) => e.reason(),
            Self::Confluent(e) => e.reason(),
            Self::Finalizer(e) => match e.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(inner)
                | kube::runtime::finalizer::Error::CleanupFailed(inner) => inner.reason(),
                _ => "FinalizerError",
            },
            Self::Claims(_) => crate::reason::CLAIM_UNAVAILABLE,
            Self::BindingsLeft => "RoleBindingRevocationPending",
            Self::Unnamed => "Unnamed",
            Self::Unsettled(_) => "InternalError",
        }
    }

    /// The server's requested wait, if this error carries one.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Confluent(e) => e.retry_after(),
            Self::Finalizer(e) => match e.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(inner)
                | kube::runtime::finalizer::Error::CleanupFailed(inner) => inner.retry_after(),
                _ => None,
            },
            _ => None,
        }
    }
}
