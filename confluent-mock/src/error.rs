//! The mock's one error type, shared by the organization model, the HTTP handlers and the test
//! controls, so a refusal decided by the pure model maps to exactly one HTTP answer.

use std::net::SocketAddr;

/// Where a request error points, so the HTTP layer can fill `source.pointer` (a body property,
/// code `invalid_configuration`) or `source.parameter` (a query parameter, code `invalid_filter`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorLocation {
    /// A JSON pointer into the request body, e.g. `/email`.
    Body(String),
    /// A query-string parameter, e.g. `page_size`.
    Query(String),
}

/// Everything that can go wrong in the mock, from binding its socket to refusing a request.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why the OS refused.
        #[source]
        source: std::io::Error,
    },
    /// No such object (or, for invitations, already deactivated: the real API's 404).
    #[error("the {kind} '{id}' was not found")]
    NotFound {
        /// `invitation` or `user`.
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The email already has a pending or accepted invitation, or is a member (HTTP 409).
    #[error("This user already exists within the Organization")]
    AlreadyExists {
        /// The email that was invited again.
        email: String,
    },
    /// An accepted invitation cannot be deleted (HTTP 400, as the real service answers).
    #[error("The invitation was already accepted")]
    AlreadyAccepted {
        /// The invitation id.
        id: String,
    },
    /// A test control asked for a transition the invitation's status does not allow.
    #[error("cannot {action} invitation '{id}': its status is {status}")]
    InvalidState {
        /// The invitation id.
        id: String,
        /// Its current status.
        status: String,
        /// What was attempted (`accept`, `expire`).
        action: &'static str,
    },
    /// The request itself is malformed (HTTP 400).
    #[error("{detail}")]
    InvalidRequest {
        /// The offending body property or query parameter.
        at: ErrorLocation,
        /// A human-readable explanation.
        detail: String,
    },
}

impl MockError {
    /// Shorthand for [`MockError::NotFound`] on an invitation.
    pub(crate) fn invitation_not_found(id: &str) -> Self {
        Self::NotFound {
            kind: "invitation",
            id: id.to_owned(),
        }
    }

    /// Shorthand for [`MockError::NotFound`] on a user.
    pub(crate) fn user_not_found(id: &str) -> Self {
        Self::NotFound {
            kind: "user",
            id: id.to_owned(),
        }
    }

    /// Shorthand for [`MockError::InvalidRequest`] about a body property (a JSON pointer).
    pub(crate) fn invalid_body(pointer: &str, detail: impl Into<String>) -> Self {
        Self::invalid(ErrorLocation::Body(pointer.to_owned()), detail)
    }

    /// Shorthand for [`MockError::InvalidRequest`] about a query parameter.
    pub(crate) fn invalid_query(parameter: &str, detail: impl Into<String>) -> Self {
        Self::invalid(ErrorLocation::Query(parameter.to_owned()), detail)
    }

    /// Shorthand for [`MockError::InvalidRequest`].
    pub(crate) fn invalid(at: ErrorLocation, detail: impl Into<String>) -> Self {
        Self::InvalidRequest {
            at,
            detail: detail.into(),
        }
    }
}
