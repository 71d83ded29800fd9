//! confluent-invitation-operator: reconciles `Invitation` resources against the Confluent Cloud
//! IAM v2 Invitations API.
//!
//! The crate is layered so each concern can be tested alone:
//! - [`confluent_client`] (its own crate, `confluent-client/`): the HTTP client for Confluent
//!   Cloud; knows nothing of Kubernetes.
//! - [`crd`]: the `Invitation` resource and its generated CRD.
//! - [`planner`] and [`status`]: pure decisions, no IO.
//! - [`role_bindings`]: the pure decisions about `spec.roleBindings`, acted on by the
//!   controller's `role_bindings` stage.
//! - [`controller`]: the thin wiring of watch, finalizer, planner, client and status writes.
//! - [`operator`]: the `run` command: HTTP endpoints, signals, leader election, the controller.
//!
//! The Confluent mock used by tests, benchmarks and the sandbox is the `confluent-mock` crate
//! (`confluent-mock/`), a dev-dependency only: the operator links no mock code. ARCHITECTURE.md
//! draws the crates and which module may import which.

pub mod cli;
pub mod controller;
pub mod crd;
pub mod credentials;
pub mod export;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod operator;
pub mod ownership;
pub mod planner;
pub mod reason;
pub mod role_bindings;
pub mod snapshot;
pub mod status;
pub mod telemetry;
pub mod validate;
