//! The `InvitationGroup` kind: a team as one resource. A generator: it makes no Confluent call
//! of its own, it keeps one child `Invitation` per member, so everything an Invitation
//! guarantees (one remote invitation, adoption, the finalizer, one owner per email, role
//! bindings, tenant policies, pause, dry run) holds for every member without being written
//! twice.
//!
//! - [`resource`]: the namespaced custom resource; its CRD is generated from it.
//! - [`decide`]: pure: the children a group should have, which of them go in this pass
//!   (`maxRemovalsPerSync` per resync interval), the role-binding budget, the group's status.
//! - [`export`]: pure: `export --groups`, members sharing the same access as one group.
//! - [`controller`]: the wiring: lists the children, creates, puts back and deletes them, writes
//!   the group's status.
//!
//! Guarantees:
//! - A member is one child, named from the group and the lower-cased email (no email in the
//!   name), controlled by the group (ownerReference) and labelled with it; a child edited by
//!   hand is put back; a child's own status is never written by the group.
//! - Removing a member deletes its child, so its `memberRemovalPolicy` runs there; at most
//!   `maxRemovalsPerSync` per resync interval. An empty member list is refused unless annotated
//!   `iam.ccloud.dev/allow-empty: "true"`. Deleting the group deletes every child (the garbage
//!   collector, through the controller reference), each with its policy.
//! - A group that would pass `--role-binding-budget` (counted over every Invitation the
//!   operator manages) adds no member and no binding, and says by how much.

pub mod controller;
pub mod decide;
pub mod export;
pub mod resource;

pub use resource::{InvitationGroup, InvitationGroupSpec, InvitationGroupStatus, crd_yaml};
