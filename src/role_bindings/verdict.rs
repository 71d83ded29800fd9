//! What the ledger says about Ready. It applies only while the invitation's own Ready is True
//! (Sent, Staged, Accepted): the invitation's own reason (Expired, EmailConflict, ...) comes
//! first, and its phase is never changed by bindings.

use crate::reason;
use crate::role_bindings::resource::{RoleBindingState, RoleBindingStatus};

/// The most of a Ready message the binding verdict fills, whatever Confluent says.
pub const MAX_VERDICT_MESSAGE: usize = 2048;

/// What the bindings say about Ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every listed binding is bound, and nothing else is to account for: Ready follows the
    /// invitation.
    Bound,
    /// Ready=False with `reason` and `message`.
    NotReady {
        reason: &'static str,
        message: String,
    },
}

/// The Ready verdict of a ledger, worst first:
/// 1. a binding that must go is still live ([`reason::ROLE_BINDING_REVOCATION_PENDING`]): access
///    that should be gone is a security matter, and GitOps must not show green meanwhile;
/// 2. a listed binding Confluent (or the operator's rules) refused ([`reason::ROLE_BINDING_REFUSED`]);
/// 3. a live binding no longer allowed, kept ([`reason::ROLE_BINDING_DISALLOWED`]);
/// 4. a listed binding not in place yet, or a create not confirmed yet
///    ([`reason::ROLE_BINDING_PENDING`]).
pub fn verdict(entries: &[RoleBindingStatus]) -> Verdict {
    let of = |state: RoleBindingState| -> Vec<String> {
        entries
            .iter()
            .filter(|e| e.state == state)
            .map(|e| {
                let id =
                    e.id.as_deref()
                        .map(|id| format!(" ({id})"))
                        .unwrap_or_default();
                let whose = e
                    .principal
                    .as_deref()
                    .map(|p| format!(" of {p}"))
                    .unwrap_or_default();
                match &e.message {
                    Some(m) => format!("{}{id}{whose}: {m}", e.describe()),
                    None => format!("{}{id}{whose}", e.describe()),
                }
            })
            .collect()
    };
    let worst = [
        (
            RoleBindingState::Deleting,
            reason::ROLE_BINDING_REVOCATION_PENDING,
            "role binding(s) must be deleted and may still grant access",
        ),
        (
            RoleBindingState::Refused,
            reason::ROLE_BINDING_REFUSED,
            "role binding(s) refused",
        ),
        (
            RoleBindingState::Disallowed,
            reason::ROLE_BINDING_DISALLOWED,
            "role binding(s) exist but are no longer allowed",
        ),
    ];
    for (state, reason, what) in worst {
        let listed = of(state);
        if !listed.is_empty() {
            return Verdict::NotReady {
                reason,
                message: bounded(&format!("{} {what}: {}", listed.len(), listed.join("; "))),
            };
        }
    }
    let mut pending = of(RoleBindingState::Pending);
    pending.extend(of(RoleBindingState::Creating));
    if pending.is_empty() {
        Verdict::Bound
    } else {
        Verdict::NotReady {
            reason: reason::ROLE_BINDING_PENDING,
            message: bounded(&format!(
                "{} role binding(s) not in place yet: {}",
                pending.len(),
                pending.join("; ")
            )),
        }
    }
}

fn bounded(text: &str) -> String {
    if text.len() <= MAX_VERDICT_MESSAGE {
        return text.to_owned();
    }
    let mut cut = MAX_VERDICT_MESSAGE;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}
