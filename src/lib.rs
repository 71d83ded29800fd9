//! confluent-invitation-operator: reconciles `Invitation` resources against the Confluent Cloud
//! IAM v2 API.
//!
//! The crate is a house of a shared runtime and one folder per kind (ARCHITECTURE.md draws it):
//! - [`confluent_client`] (its own crate, `confluent-client/`): the HTTP client for Confluent
//!   Cloud; knows nothing of Kubernetes.
//! - [`runtime`]: what every kind shares: credentials and their clients, the snapshots and
//!   role-binding lists, metrics, Events, leader election, the HTTP endpoint, telemetry.
//! - [`invitation`]: the `Invitation` kind: its resource, pure decisions (planner, status,
//!   ownership) and the controller wiring that performs them.
//! - [`invitation_policy`]: the `InvitationPolicy` kind's pure half: what Invitations may do in
//!   the namespaces a policy selects.
//! - [`invitation_group`]: the `InvitationGroup` kind: one child Invitation per member of a team.
//! - [`role_bindings`]: the pure decisions about the access an Invitation grants.
//! - [`cli`] and [`operator`]: the process: flags, the `run` command.
//!
//! The Confluent mock used by tests, benchmarks and the sandbox is the `confluent-mock` crate
//! (`confluent-mock/`), a dev-dependency only: the operator links no mock code.

pub mod cli;
pub mod invitation;
pub mod invitation_group;
pub mod invitation_policy;
pub mod operator;
pub mod reason;
pub mod role_bindings;
pub mod runtime;
