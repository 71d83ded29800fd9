//! The `InvitationPolicy` kind's pure half: what Invitations may do in the namespaces a policy
//! selects (email domains, protected people, the role bindings they may list and where, the
//! deletion policies, `exclusiveRoleBindings`). No IO: the wiring lists the policies and the
//! namespaces and performs what these functions answer.
//!
//! - [`resource`]: the cluster-scoped custom resource; the CRD is generated from it.
//! - [`coverage`]: whether a grant's scope covers an Invitation item's CRN pattern.
//! - [`decide`]: the decisions over the policies that apply to one Invitation, and a policy's
//!   own status.
//!
//! Expected flow (one Invitation's reconcile): the policies whose selector selects the
//! Invitation's namespace ([`selects`]) → [`admit`] before anything is sent (a refusal is the
//! Invitation's Ready reason) → for each `spec.roleBindings` item, [`grant_refusal`] on its
//! resolved pattern (a refusal is the item's, like `--allowed-roles`') with [`on_disallowed`]
//! for what exists already → in cleanup, [`protected_by`] before deleting anyone. For each
//! policy: [`status`] with the number of namespaces it selects.
//!
//! Guarantees:
//! - AND: every applying policy must permit; a policy added can only narrow, never widen what an
//!   Invitation may do, and where several refuse, the first by name is the one reported.
//! - A grant covers by CRN segment, never by string prefix: `environment=env-a` covers its
//!   clusters and topics, not `environment=env-ab`; a `*` in an Invitation's pattern only where
//!   the grant has one; the organization itself only by a grant of the organization; nothing in
//!   another organization, and nothing by a scope that cannot be resolved.
//! - No policy grants anything it does not list: no `grants`, no role binding.
//! - Emails and domains are compared without regard to case (a capital letter makes no other
//!   person), domains exactly (a subdomain is not allowed implicitly, as with
//!   `--allowed-email-domains`).
//!
//! Assumptions: the wiring passes the policies that select the namespace, treating a policy
//! whose selector is invalid as selecting nothing (its status reports it; the schema's CEL rule
//! refuses such a selector where the API server runs CEL); patterns passed in are absolute and
//! decoded ([`crate::role_bindings::resolve`]); policies are read from one consistent cache, so
//! one reconcile decides against one set of them.

pub mod controller;
pub mod coverage;
pub mod decide;
pub mod resource;
#[cfg(test)]
mod tests;

pub use coverage::covers;
pub use decide::{
    Deletion, Refusal, admit, deletion_under, grant_refusal, on_disallowed, protected_by, selects,
    status,
};
pub use resource::{
    DisallowedExisting, Grant, InvitationPolicy, InvitationPolicySpec, InvitationPolicyStatus,
    crd_yaml,
};
