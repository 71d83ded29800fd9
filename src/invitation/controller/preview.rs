//! Preview mode (`--dry-run`): the operator reads (lists, GETs) and plans as usual, but every
//! action that would write to Confluent Cloud (create, adopt, reinvite, delete) stops here and
//! is reported instead: a log line, a Normal Event named for it (`WouldCreate`, ...), Ready=False
//! with that reason, and the `dry_run_actions_total` metric. This is the one gate: apply and
//! cleanup ask it before acting.

use kube::ResourceExt;

use super::context::Context;
use crate::invitation::conclusion::Ending;
use crate::invitation::planner::{Apply, CreateCause};
use crate::invitation::resource::{DeletionPolicy, Invitation};
use crate::invitation::status::Phase;
use crate::reason;

/// What the operator would have done, had it not been previewing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Would {
    /// The Event and Ready reason: `WouldCreate`, `WouldRecreate`, `WouldReinvite`,
    /// `WouldAdopt`, `WouldDelete`, `WouldDeleteUser`.
    pub reason: &'static str,
    pub message: String,
}

/// The preview of an Apply action that changes something, or `None` for observations and
/// refusals, which may run as usual (reads never come here: they are no [`Apply`]).
pub fn would(action: &Apply, email: &str) -> Option<Would> {
    let (reason, message) = match action {
        Apply::Create(_, CreateCause::New) => (
            reason::WOULD_CREATE,
            format!("would send an invitation to {email}"),
        ),
        Apply::Create(_, CreateCause::Recreate) => (
            reason::WOULD_RECREATE,
            format!(
                "the previous invitation was removed in Confluent Cloud; would send a new one to {email}"
            ),
        ),
        Apply::Reinvite { expired_id, .. } => (
            reason::WOULD_REINVITE,
            format!(
                "invitation {expired_id} expired unaccepted; would delete it and send a new one to {email}"
            ),
        ),
        Apply::Adopt(inv) => (
            reason::WOULD_ADOPT,
            format!(
                "would adopt the existing invitation {} for {email} ({})",
                inv.id.as_deref().unwrap_or("?"),
                inv.status
                    .as_ref()
                    .map(|s| s.as_str())
                    .unwrap_or("unknown status")
            ),
        ),
        _ => return None,
    };
    Some(Would {
        reason,
        message: format!("dry run: {message}"),
    })
}

/// The preview of a deletion, from what status last observed (no read: the real cleanup reads
/// again before it acts), or `None` for `Orphan`, whose cleanup sends nothing and may run.
pub fn would_clean_up(invitation: &Invitation) -> Option<Would> {
    let status = invitation.status.as_ref();
    let id = status.and_then(|s| s.invitation_id.as_deref());
    let accepted = Phase::shown(status) == Phase::Accepted;
    let user = status
        .and_then(|s| s.user_id.as_deref())
        .unwrap_or("unknown");
    let email = &invitation.spec.email;
    let (reason, message) = match (invitation.spec.deletion_policy, accepted) {
        (DeletionPolicy::Orphan, _) => return None,
        (DeletionPolicy::DeleteUser, true) => (
            reason::WOULD_DELETE_USER,
            format!(
                "deletionPolicy DeleteUser: would delete user {user} ({email}), with their API keys and role bindings"
            ),
        ),
        // nothing would be deleted, but the real cleanup reads again before it decides: it
        // waits like every other deletion, so a preview never releases a finalizer by itself
        (DeletionPolicy::Delete, true) => (
            reason::WOULD_DELETE,
            format!(
                "deletionPolicy Delete: {email} accepted; would keep user {user} and release the finalizer"
            ),
        ),
        (_, false) => (
            reason::WOULD_DELETE,
            format!(
                "deletionPolicy {:?}: would delete invitation {} for {email}",
                invitation.spec.deletion_policy,
                id.unwrap_or("(looked up by email)")
            ),
        ),
    };
    // the recorded role bindings the policy removes first (the same decision as the cleanup's)
    let recorded = status
        .map(|s| s.role_bindings.as_slice())
        .unwrap_or_default();
    let cleanup = crate::role_bindings::Cleanup {
        removal: super::role_bindings::removal(invitation, false),
        recorded_user: status.and_then(|s| s.user_id.as_deref()),
        successor: None,
    };
    let plan = crate::role_bindings::plan_cleanup(
        &cleanup,
        recorded,
        &crate::role_bindings::Observed::default(),
    );
    let bindings: Vec<String> = plan
        .ledger
        .iter()
        .filter(|e| e.state == crate::role_bindings::resource::RoleBindingState::Deleting)
        .filter_map(|e| {
            let id = e.id.as_deref()?;
            Some(format!("{id} ({})", e.describe()))
        })
        .collect();
    let message = if bindings.is_empty() {
        message
    } else {
        format!(
            "would delete role binding(s) {}, then: {message}",
            bindings.join(", ")
        )
    };
    Some(Would {
        reason,
        message: format!(
            "dry run: {message}; the finalizer stays until the operator runs without --dry-run"
        ),
    })
}

/// A held action, logged and counted; concluded like any other ending, the preview looking
/// again at the next resync so that it follows Confluent.
pub fn held(invitation: &Invitation, ctx: &Context, would: Would) -> Ending {
    tracing::info!(
        namespace = invitation.namespace().unwrap_or_default(),
        name = %invitation.name_any(),
        action = would.reason,
        "{}",
        would.message
    );
    ctx.metrics.dry_run(would.reason);
    Ending::Held {
        reason: would.reason,
        message: would.message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invitation::planner::SpecRefusal;
    use crate::invitation::resource::{InvitationSpec, InvitationStatus};
    use confluent_client::model::{CreateInvitation, InviteStatus, RemoteInvitation};

    fn request() -> CreateInvitation {
        CreateInvitation {
            email: "jane@example.com".into(),
            auth_type: None,
        }
    }

    #[test]
    fn every_write_is_held_and_what_writes_nothing_passes() {
        let email = "jane@example.com";
        let held = |a: &Apply| would(a, email).map(|w| w.reason);
        assert_eq!(
            held(&Apply::Create(request(), CreateCause::New)),
            Some("WouldCreate")
        );
        assert_eq!(
            held(&Apply::Create(request(), CreateCause::Recreate)),
            Some("WouldRecreate")
        );
        let reinvite = Apply::Reinvite {
            expired_id: "i-1".into(),
            request: request(),
        };
        assert_eq!(held(&reinvite), Some("WouldReinvite"));
        let existing = RemoteInvitation {
            id: Some("i-9".into()),
            status: Some(InviteStatus::Sent),
            ..Default::default()
        };
        let adopt = would(&Apply::Adopt(existing.clone()), email).unwrap();
        assert_eq!(adopt.reason, "WouldAdopt");
        assert!(adopt.message.contains("i-9") && adopt.message.starts_with("dry run:"));
        for unchanged in [
            Apply::Observe(existing),
            Apply::Refuse(SpecRefusal::InvalidSpec("spec.email: no @".into())),
        ] {
            assert_eq!(held(&unchanged), None, "{unchanged:?}");
        }
    }

    fn deleting(policy: DeletionPolicy, phase: &str) -> Invitation {
        let mut invitation = Invitation::new(
            "jane",
            InvitationSpec {
                deletion_policy: policy,
                ..InvitationSpec::of_email("jane@example.com")
            },
        );
        invitation.status = Some(InvitationStatus {
            invitation_id: Some("i-1".into()),
            user_id: Some("u-1".into()),
            phase: Some(phase.into()),
            ..Default::default()
        });
        invitation
    }

    #[test]
    fn a_deletion_is_previewed_by_its_policy() {
        let reason = |p, phase| would_clean_up(&deleting(p, phase)).map(|w| w.reason);
        assert_eq!(reason(DeletionPolicy::Delete, "Sent"), Some("WouldDelete"));
        assert_eq!(
            reason(DeletionPolicy::DeleteUser, "Sent"),
            Some("WouldDelete")
        );
        assert_eq!(
            reason(DeletionPolicy::DeleteUser, "Accepted"),
            Some("WouldDeleteUser")
        );
        assert_eq!(
            reason(DeletionPolicy::Delete, "Accepted"),
            Some("WouldDelete")
        );
        assert_eq!(reason(DeletionPolicy::Orphan, "Sent"), None);
        let w = would_clean_up(&deleting(DeletionPolicy::Delete, "Sent")).unwrap();
        assert!(w.message.contains("i-1"), "{}", w.message);
        // recorded role bindings are named, except where the policy keeps them or the user's
        // deletion takes them
        let bound = |p, phase| {
            let mut invitation = deleting(p, phase);
            if let Some(s) = invitation.status.as_mut() {
                s.role_bindings = vec![crate::role_bindings::resource::RoleBindingStatus {
                    role_name: "EnvironmentAdmin".into(),
                    crn_pattern: "crn://confluent.cloud/organization=o/environment=e".into(),
                    id: Some("rb-7".into()),
                    state: crate::role_bindings::resource::RoleBindingState::Bound,
                    message: None,
                    principal: None,
                }];
            }
            would_clean_up(&invitation).map(|w| w.message)
        };
        for (policy, phase) in [
            (DeletionPolicy::Delete, "Sent"),
            (DeletionPolicy::Delete, "Accepted"),
            (DeletionPolicy::DeleteUser, "Sent"),
        ] {
            let m = bound(policy, phase).unwrap();
            assert!(m.contains("would delete role binding(s) rb-7"), "{m}");
        }
        let m = bound(DeletionPolicy::DeleteUser, "Accepted").unwrap();
        assert!(!m.contains("rb-7"), "{m}");
        assert_eq!(bound(DeletionPolicy::Orphan, "Sent"), None);
    }
}
