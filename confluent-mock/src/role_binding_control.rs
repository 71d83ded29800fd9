//! The role-binding test controls, in process ([`MockHandle`]) and over HTTP under `/_mock/`
//! (no authentication, not counted, not rate limited, never faulted):
//!
//! | request | effect |
//! |---|---|
//! | `GET /_mock/role-bindings` | every binding of the main organization (JSON array) |
//! | `POST /_mock/role-bindings` `{principal, role_name, crn_pattern}` | seed one out of band, unvalidated (201; 200 if the same one existed) |
//! | `DELETE /_mock/role-bindings/{id}` | removed out of band (204; 404) |
//! | `GET /_mock/calls/role-bindings` | the [`RoleBindingCalls`] |

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use jiff::Timestamp;

use super::error::MockError;
use super::handle::{MockHandle, Shared};
use super::respond::json;
use super::role_binding_api::{calls, render};
use super::role_bindings::{RoleBindingCalls, RoleBindingError};
use super::sync::lock;
use confluent_client::role_bindings::{CreateRoleBinding, RemoteRoleBinding};

/// The control routes (state: the shared mock).
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_mock/role-bindings", get(list).post(seed))
        .route("/_mock/role-bindings/{id}", delete(remove))
        .route("/_mock/calls/role-bindings", get(counts))
}

impl MockHandle {
    /// Every role binding of the main organization, in creation order.
    pub fn role_bindings(&self) -> Vec<RemoteRoleBinding> {
        let records = lock(&self.shared.org).role_bindings.all();
        let links = self.shared.links();
        records.iter().map(|r| render(&links, r)).collect()
    }

    /// The role bindings of another organization ([`super::OtherOrganization`]); empty for an
    /// unknown one.
    pub fn role_bindings_in(&self, org_id: &str) -> Vec<RemoteRoleBinding> {
        let Some(org) = self.shared.others.get(org_id) else {
            return Vec::new();
        };
        let records = lock(org).role_bindings.all();
        let links = self.shared.links_in(&self.shared.base_url, org_id);
        records.iter().map(|r| render(&links, r)).collect()
    }

    /// Creates a binding as if made out of band (console, CLI), without validation; an
    /// identical existing one is returned instead.
    pub fn seed_role_binding(&self, request: &CreateRoleBinding) -> RemoteRoleBinding {
        self.seed_binding(request).0
    }

    /// [`Self::seed_role_binding`], also telling whether a new binding was created.
    pub(crate) fn seed_binding(&self, request: &CreateRoleBinding) -> (RemoteRoleBinding, bool) {
        let (record, created) = lock(&self.shared.org)
            .role_bindings
            .seed(request, Timestamp::now());
        (render(&self.shared.links(), &record), created)
    }

    /// Removes a binding out of band.
    pub fn remove_role_binding(&self, id: &str) -> Result<(), MockError> {
        match lock(&self.shared.org).role_bindings.delete(id) {
            Ok(_) => Ok(()),
            Err(RoleBindingError::Missing { id }) => Err(MockError::NotFound {
                kind: "role binding",
                id,
            }),
            Err(RoleBindingError::Request(e)) => Err(e),
            Err(other) => Err(MockError::invalid_body("/", other.to_string())),
        }
    }

    /// A snapshot of the role-binding call counters ([`MockHandle::reset`] zeroes them).
    pub fn role_binding_calls(&self) -> RoleBindingCalls {
        calls(&self.shared)
    }
}

async fn list(State(shared): State<Arc<Shared>>) -> Response {
    json(StatusCode::OK, &MockHandle { shared }.role_bindings())
}

async fn seed(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: CreateRoleBinding = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return MockError::invalid_body("/", format!("Invalid JSON body: {e}")).into_response();
        }
    };
    let (binding, created) = MockHandle { shared }.seed_binding(&request);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    json(status, &binding)
}

async fn remove(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match (MockHandle { shared }).remove_role_binding(&id) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn counts(State(shared): State<Arc<Shared>>) -> Response {
    json(StatusCode::OK, &calls(&shared))
}
