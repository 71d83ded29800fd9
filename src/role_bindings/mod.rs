//! Pure decisions about the role bindings an Invitation lists (`spec.roleBindings`). No IO: the
//! controller lists, reads and calls; this module decides, and its tables are unit-tested.
//!
//! Three views, each in its file:
//! - [`desired`]: what the spec asks for, resolved for the invitee (`User:<status.userId>`, an
//!   absolute CRN pattern), and whether the operator may grant it;
//! - [`observed`]: what Confluent showed (the held lists, exact reads), "unknown" where a list
//!   or a read failed;
//! - [`ledger`]: `status.roleBindings`, every binding this Invitation asked for, holds, or must
//!   still remove, with its principal and id.
//!
//! [`plan`] turns the three into the reads still needed, the writes, and the next ledger; each
//! write's end is settled into that ledger ([`Plan::settle`]); [`verdict`] turns a ledger into
//! Ready.
//!
//! Expected flow (one reconcile): desired + observed + ledger → plan → (reads → plan again) →
//! record the ledger if a create is to be sent → writes, each settled into the ledger → the
//! ledger and the verdict are written with the status.
//!
//! Guarantees:
//! - Exactly one binding per desired item: an existing one is taken (its id recorded), never
//!   created again; a create whose answer is lost stays `Creating` and is looked up exactly
//!   before anything else is decided for it (also when its item is removed, and in cleanup).
//! - An entry whose binding may exist leaves the ledger only when Confluent confirmed it gone
//!   (DELETE 2xx/404/403-40301, or an exact read of this reconcile found nothing). Failed
//!   lists, steps that did not run, refusals, dry runs, rule changes drop nothing.
//! - An id is deleted only once a list or a read shows it is the entry's principal, role and
//!   CRN: an id written into status by hand never deletes someone else's binding.
//! - A previous invitee's bindings (the invitation was sent again to a new user) go, whatever
//!   the lists show of the new user's.
//! - Without `exclusiveRoleBindings`, a binding neither desired nor recorded is never touched;
//!   with it, every other binding of the invitee of a role the operator may manage is deleted,
//!   but only from an organization-wide list (a list per scope cannot show what else exists).
//! - Only the owner of the email plans bindings: an `EmailConflict` loser touches none.
//!
//! Assumptions: Confluent holds at most one binding per (principal, role, CRN) (a duplicate
//! create answers 409), ids are never reused, and an exact list is consistent with the writes
//! that came before it.

pub mod desired;
pub mod ledger;
pub mod observed;
pub mod plan;
pub mod resource;
mod settle;
#[cfg(test)]
mod tests;
pub mod verdict;

pub use desired::{
    Desired, PatternError, crn_patterns, desired, organization_crn, resolve, role_allowed,
    role_refusal,
};
pub use ledger::{Done, Key};
pub use observed::{
    Demand, Observed, Read, Seen, by_principal, covers, in_scope, observation_lists,
};
pub use plan::{Cleanup, DeleteCause, Live, OnDisallowed, Plan, Removal, Step, plan, plan_cleanup};
pub use verdict::{MAX_VERDICT_MESSAGE, Verdict, verdict};
