//! The ledger: `status.roleBindings`, one entry per binding this Invitation asked for, holds, or
//! must still remove, each with its principal, role, CRN pattern and (once known) id. What the
//! decisions read as "what this resource is responsible for", and what they write back after
//! the steps ran. An entry whose binding may exist leaves the ledger only when Confluent
//! confirmed the binding gone.

use crate::role_bindings::resource::{RoleBindingState, RoleBindingStatus};
use confluent_client::role_bindings::{
    CreateRoleBinding, RemoteRoleBinding, decoded_crn, user_principal,
};

/// One binding's identity, whatever its id: whose (`User:u-…`), which role, where (the decoded
/// absolute CRN pattern). Confluent holds at most one binding per key (a second create
/// answers 409), so a key can be looked up exactly and compared with what a list shows.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub principal: String,
    pub role_name: String,
    pub crn_pattern: String,
}

impl Key {
    /// The binding `request` would create.
    pub fn of_request(request: &CreateRoleBinding) -> Self {
        Self {
            principal: request.principal.clone(),
            role_name: request.role_name.clone(),
            crn_pattern: decoded_crn(&request.crn_pattern).into_owned(),
        }
    }

    /// An entry's binding: its own principal, or, for an entry written before entries named
    /// one, the user `status.userId` recorded (`recorded_user`).
    pub fn of_entry(entry: &RoleBindingStatus, recorded_user: Option<&str>) -> Option<Self> {
        let principal = entry
            .principal
            .clone()
            .or_else(|| recorded_user.map(user_principal))?;
        Some(Self {
            principal,
            role_name: entry.role_name.clone(),
            crn_pattern: decoded_crn(&entry.crn_pattern).into_owned(),
        })
    }

    /// A binding of a list (`None` when it lacks a field).
    pub fn of_remote(b: &RemoteRoleBinding) -> Option<Self> {
        Some(Self {
            principal: b.principal.clone()?,
            role_name: b.role_name.clone()?,
            crn_pattern: decoded_crn(b.crn_pattern.as_deref()?).into_owned(),
        })
    }

    /// The create request of this binding.
    pub fn request(&self) -> CreateRoleBinding {
        CreateRoleBinding {
            principal: self.principal.clone(),
            role_name: self.role_name.clone(),
            crn_pattern: self.crn_pattern.clone(),
        }
    }

    /// Whether `b` is this binding.
    pub fn is(&self, b: &RemoteRoleBinding) -> bool {
        b.grants(&self.principal, &self.role_name, &self.crn_pattern)
    }

    /// `Role on crn`, for messages and Events.
    pub fn describe(&self) -> String {
        format!("{} on {}", self.role_name, self.crn_pattern)
    }

    /// The user id of the principal (`u-…` of `User:u-…`).
    pub fn user(&self) -> &str {
        self.principal
            .strip_prefix("User:")
            .unwrap_or(&self.principal)
    }

    /// An entry for this binding.
    pub fn entry(
        &self,
        state: RoleBindingState,
        id: Option<String>,
        message: Option<String>,
    ) -> RoleBindingStatus {
        RoleBindingStatus {
            role_name: self.role_name.clone(),
            crn_pattern: self.crn_pattern.clone(),
            id,
            state,
            message,
            principal: Some(self.principal.clone()),
        }
    }
}

/// How a step that was planned ended, for [`super::Plan::settle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Done {
    /// The create answered 201 (or a 409 and the exact look-up found it): the binding's id.
    Created(String),
    /// Confluent refused the create (400, 403, 422...): it created nothing. Its detail.
    Refused(String),
    /// The create was not executed (429), or never sent (an earlier step's failure stopped the
    /// rest): nothing exists because of it. Why.
    NotSent(String),
    /// The create may have been executed (5xx, no answer, a 409 whose binding was not found):
    /// it stays `Creating` and is looked up next time. Why.
    Unanswered(String),
    /// The delete answered 2xx, or Confluent says the binding does not exist (404, the 403 with
    /// error code 40301): the entry leaves the ledger.
    Deleted,
    /// The delete failed or was not sent; the binding may still be live. Why.
    NotDeleted(String),
}

/// Whether an entry's binding may exist: it has an id, or a create of it may have gone through.
pub fn may_exist(entry: &RoleBindingStatus) -> bool {
    entry.id.is_some() || entry.state == RoleBindingState::Creating
}

/// The bindings a ledger recorded that may still exist, said for a deletion that leaves them
/// (`Orphan`, or a protected email): once the Invitation is gone nothing records them, so its
/// last Event names each one for whoever must revoke it by hand. `None` when there is none.
pub fn left_live(ledger: &[RoleBindingStatus]) -> Option<String> {
    let live: Vec<String> = ledger
        .iter()
        .filter(|e| may_exist(e))
        .map(|e| match &e.id {
            Some(id) => format!("{id} ({})", e.describe()),
            None => format!("{} (its create may have gone through)", e.describe()),
        })
        .collect();
    (!live.is_empty()).then(|| {
        format!(
            "{} role binding(s) it recorded stay live and are no longer managed: {}",
            live.len(),
            live.join(", ")
        )
    })
}
