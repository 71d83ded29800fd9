//! The reasons the operator itself writes, in one table: the Ready condition's (README, "Ready
//! reasons") and the Events' (README, "Operations"). Two other sources complete them and keep
//! their own tables, since they are matches over their own types: the remote states
//! ([`crate::invitation::status::Phase`], whose names are Ready reasons too) and the Confluent client's
//! errors (`confluent_client::Error::reason`), as the client knows nothing of the operator.
//!
//! Plain constants rather than `strum` derives: most reasons are not their variant's name
//! (`Unauthenticated` is `CredentialsInvalid`), so a derive would need one attribute per variant,
//! the same table in a less greppable place, for a new dependency.

// ---- Ready reasons ----
/// Confluent reports a status this version does not know.
pub const UNKNOWN_REMOTE_STATUS: &str = "UnknownRemoteStatus";
/// The pause annotation holds every Confluent call.
pub const PAUSED: &str = "Paused";
/// An immutable field differs from the remote invitation's.
pub const IMMUTABLE_FIELD_CHANGED: &str = "ImmutableFieldChanged";
/// The spec cannot be sent.
pub const INVALID_SPEC: &str = "InvalidSpec";
/// An invitation for the email exists with another auth type.
pub const AUTH_TYPE_CONFLICT: &str = "AuthTypeConflict";
/// The email's domain is not among `--allowed-email-domains`, or not among an applying
/// InvitationPolicy's `allowedEmailDomains`.
pub const EMAIL_DOMAIN_NOT_ALLOWED: &str = "EmailDomainNotAllowed";
/// An older Invitation owns the email in the same organization, or, with
/// `--claims-namespace`, another Invitation holds the email's claim.
pub const EMAIL_CONFLICT: &str = "EmailConflict";
/// The email's claim (a Lease in `--claims-namespace`) cannot be read or written: RBAC on the
/// claims namespace, or the API server failed. Nothing is sent meanwhile.
pub const CLAIM_UNAVAILABLE: &str = "ClaimUnavailable";
/// InvitationGroup: every member's Invitation is Ready.
pub const MEMBERS_READY: &str = "MembersReady";
/// InvitationGroup: some member's Invitation is not Ready (the message names them).
pub const MEMBERS_NOT_READY: &str = "MembersNotReady";
/// InvitationGroup: removed members wait for the next removal window (`maxRemovalsPerSync`).
pub const REMOVAL_THROTTLED: &str = "RemovalThrottled";
/// InvitationGroup: growing it would pass `--role-binding-budget`; nothing is added.
pub const ROLE_BINDING_BUDGET: &str = "RoleBindingBudget";
/// InvitationGroup: `spec.members` is empty without the allow-empty annotation; nobody removed.
pub const EMPTY_MEMBERS: &str = "EmptyMembers";
/// InvitationGroup: `spec.members` lists one address twice (in two letter cases); nothing done.
pub const DUPLICATE_MEMBERS: &str = "DuplicateMembers";
/// InvitationGroup Event: members' Invitations were created.
pub const MEMBERS_ADDED: &str = "MembersAdded";
/// InvitationGroup Event: removed members' Invitations were deleted.
pub const MEMBERS_REMOVED: &str = "MembersRemoved";
/// InvitationGroup member: its Invitation is about to be created.
pub const CREATING: &str = "Creating";
/// InvitationGroup member: removed from the list, its Invitation is being deleted.
pub const REMOVING: &str = "Removing";
/// No credentials for the resource (also an Event when cleanup is blocked by it).
pub const CREDENTIALS_MISSING: &str = "CredentialsMissing";
/// The operator may not read the credentials' Secret, or the API server failed.
pub const CREDENTIALS_UNREADABLE: &str = "CredentialsUnreadable";
/// Confluent refused a listed role binding (also a Warning Event on the change).
pub const ROLE_BINDING_REFUSED: &str = "RoleBindingRefused";
/// A listed role binding is not in place yet (waiting for the invitee, a transient failure, or
/// a create whose answer is being confirmed).
pub const ROLE_BINDING_PENDING: &str = "RoleBindingPending";
/// A binding that must go (its item left the spec, a previous invitee's, an unlisted one under
/// `exclusiveRoleBindings`) is not deleted yet: access that should be gone may still be live
/// (also a Warning Event on the change).
pub const ROLE_BINDING_REVOCATION_PENDING: &str = "RoleBindingRevocationPending";
/// A listed binding exists but is no longer allowed (`--allowed-roles`); kept until the
/// Invitation is deleted (also a Warning Event on the change).
pub const ROLE_BINDING_DISALLOWED: &str = "RoleBindingDisallowed";
/// No InvitationPolicy selects the Invitation's namespace, and the operator requires one.
pub const POLICY_MISSING: &str = "PolicyMissing";
/// An applying InvitationPolicy lists the email in `protectedEmails`.
pub const PRINCIPAL_PROTECTED: &str = "PrincipalProtected";
/// An applying InvitationPolicy does not allow the Invitation's `deletionPolicy` or
/// `exclusiveRoleBindings`.
pub const POLICY_VIOLATION: &str = "PolicyViolation";

// ---- InvitationPolicy's Ready reasons ----
/// The policy's selector and grants can be read: it is enforced.
pub const ENFORCED: &str = "Enforced";
/// The policy's selector or a grant's scope cannot be read; the message names the field.
pub const INVALID_POLICY: &str = "InvalidPolicy";

// ---- dry run: Ready reasons and Normal Events ----
pub const WOULD_CREATE: &str = "WouldCreate";
pub const WOULD_RECREATE: &str = "WouldRecreate";
pub const WOULD_REINVITE: &str = "WouldReinvite";
pub const WOULD_ADOPT: &str = "WouldAdopt";
pub const WOULD_DELETE: &str = "WouldDelete";
pub const WOULD_DELETE_USER: &str = "WouldDeleteUser";
/// Events only: a role binding the operator would create or delete.
pub const WOULD_CREATE_ROLE_BINDING: &str = "WouldCreateRoleBinding";
pub const WOULD_DELETE_ROLE_BINDING: &str = "WouldDeleteRoleBinding";

// ---- Events ----
/// A new invitation was sent.
pub const CREATED: &str = "Created";
/// An invitation sent before the resource existed is now managed by it.
pub const ADOPTED: &str = "Adopted";
/// An invitation this operator sent but did not record is used.
pub const RECOVERED: &str = "Recovered";
/// The invitation was removed in Confluent Cloud and sent again.
pub const RECREATED: &str = "Recreated";
/// An expired invitation was replaced.
pub const REINVITED: &str = "Reinvited";
/// Cleanup deleted the pending invitation.
pub const DELETED: &str = "Deleted";
/// Cleanup deleted the accepted member's user.
pub const USER_DELETED: &str = "UserDeleted";
/// Cleanup left the accepted member in place.
pub const ACCEPTED_USER_KEPT: &str = "AcceptedUserKept";
/// Cleanup left the invitation as it is (`deletionPolicy: Orphan`).
pub const ORPHANED: &str = "Orphaned";
/// Cleanup left the invitation for the next claimant of the email.
pub const HANDED_OVER: &str = "HandedOver";
/// Cleanup failed (one Warning per streak of failures).
pub const CLEANUP_FAILED: &str = "CleanupFailed";
/// Cleanup waits for credentials.
pub const CLEANUP_BLOCKED: &str = "CleanupBlocked";
/// A listed role binding was created.
pub const ROLE_BINDING_CREATED: &str = "RoleBindingCreated";
/// A listed role binding existed already (made elsewhere, or a create whose answer was lost)
/// and is now this resource's.
pub const ROLE_BINDING_ADOPTED: &str = "RoleBindingAdopted";
/// A binding of this resource was deleted: its item left the spec, or the resource was deleted.
pub const ROLE_BINDING_DELETED: &str = "RoleBindingDeleted";
/// `exclusiveRoleBindings`: another binding of the invitee was deleted.
pub const UNLISTED_ROLE_BINDING_DELETED: &str = "UnlistedRoleBindingDeleted";

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reason of the table, for the documentation check.
    const ALL: &[&str] = &[
        UNKNOWN_REMOTE_STATUS,
        PAUSED,
        IMMUTABLE_FIELD_CHANGED,
        INVALID_SPEC,
        AUTH_TYPE_CONFLICT,
        EMAIL_DOMAIN_NOT_ALLOWED,
        EMAIL_CONFLICT,
        CLAIM_UNAVAILABLE,
        MEMBERS_READY,
        MEMBERS_NOT_READY,
        REMOVAL_THROTTLED,
        ROLE_BINDING_BUDGET,
        EMPTY_MEMBERS,
        DUPLICATE_MEMBERS,
        MEMBERS_ADDED,
        MEMBERS_REMOVED,
        CREATING,
        REMOVING,
        CREDENTIALS_MISSING,
        CREDENTIALS_UNREADABLE,
        ROLE_BINDING_REFUSED,
        ROLE_BINDING_PENDING,
        ROLE_BINDING_REVOCATION_PENDING,
        ROLE_BINDING_DISALLOWED,
        POLICY_MISSING,
        PRINCIPAL_PROTECTED,
        POLICY_VIOLATION,
        ENFORCED,
        INVALID_POLICY,
        WOULD_CREATE,
        WOULD_RECREATE,
        WOULD_REINVITE,
        WOULD_ADOPT,
        WOULD_DELETE,
        WOULD_DELETE_USER,
        WOULD_CREATE_ROLE_BINDING,
        WOULD_DELETE_ROLE_BINDING,
        CREATED,
        ADOPTED,
        RECOVERED,
        RECREATED,
        REINVITED,
        DELETED,
        USER_DELETED,
        ACCEPTED_USER_KEPT,
        ORPHANED,
        HANDED_OVER,
        CLEANUP_FAILED,
        CLEANUP_BLOCKED,
        ROLE_BINDING_CREATED,
        ROLE_BINDING_ADOPTED,
        ROLE_BINDING_DELETED,
        UNLISTED_ROLE_BINDING_DELETED,
    ];

    #[test]
    fn every_reason_is_documented_in_the_readme() {
        let readme = include_str!("../README.md");
        for reason in ALL {
            assert!(
                readme.contains(&format!("`{reason}`")),
                "README.md does not name the reason `{reason}`"
            );
        }
    }
}
