//! The Cleanup stage, run by the finalizer when an Invitation is deleted: apply its deletion
//! policy remotely, and only then let the finalizer go. Any failure keeps the finalizer, so
//! nothing is left behind by a deleted `Delete`/`DeleteUser` resource.

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;

use super::context::Context;
use super::drive::{self, Driven, Reads, Source, Stage};
use super::error::Error;
use super::{claims, report, role_bindings};
use crate::invitation::planner::{self, Cleanup, Remote, Step};
use crate::invitation::resource::{DeletionPolicy, Invitation};
use crate::invitation::status::{self, Outcome};
use crate::invitation_policy::decide::{self as policy, Deletion};
use crate::invitation_policy::resource::InvitationPolicy;
use crate::reason;
use crate::role_bindings::ledger;

/// The recorded bindings a deletion that touches nothing leaves live, said in its Event.
fn left_live(invitation: &Invitation) -> Option<String> {
    ledger::left_live(
        invitation
            .status
            .as_ref()
            .map_or(&[][..], |s| &s.role_bindings),
    )
}

/// Cleans up after a deleted Invitation; `Ok` releases the finalizer.
pub async fn cleanup(
    invitation: Arc<Invitation>,
    object: &ObjectRef<Invitation>,
    ctx: &Context,
) -> Result<Action, Error> {
    let mut result = run(&invitation, ctx).await;
    if result.is_ok()
        && let Some(claims) = &ctx.email_claims
    {
        // the claim goes once what it guarded is done: a successor takes it then
        result = claims.release(&invitation).await.map_err(Error::from);
    }
    if result.is_ok() {
        // the Secret's finalizer goes with its last user; a failure retries the whole cleanup,
        // whose remote steps are idempotent
        result = super::credentials_in_use::release(ctx, &invitation)
            .await
            .map_err(Error::from);
    }
    match &result {
        Ok(()) => {
            ctx.forget_failures(object);
            ctx.forget_owner(object);
        }
        // (an unreadable Secret, e.g. the API server down, is a plain failure: it passes)
        Err(Error::Credentials(
            e @ (crate::runtime::credentials::Error::Missing(_)
            | crate::runtime::credentials::Error::Invalid(_)),
        )) => blocked(ctx, &invitation, e).await,
        Err(e) => {
            // one Warning per streak of failures, not one per retry (error_policy counts them)
            if ctx.failures_so_far(object) == 0 {
                report::event(
                    ctx,
                    &invitation,
                    true,
                    reason::CLEANUP_FAILED,
                    &e.to_string(),
                )
                .await;
            }
        }
    }
    result.map(|()| Action::await_change())
}

async fn run(invitation: &Invitation, ctx: &Context) -> Result<(), Error> {
    let namespace = invitation.namespace().ok_or(Error::Unnamed)?;
    // What the namespace's policies forbid is not done on the way out either: a protected
    // person is not touched, and a deletion policy no longer allowed gives way to one that is
    // (which still removes what this Invitation recorded, so no grant of it is forgotten).
    let applying = ctx.policies.applying(&namespace);
    let applying: Vec<&InvitationPolicy> = applying.iter().map(AsRef::as_ref).collect();
    let instead;
    let invitation = match policy::deletion_under(&applying, &invitation.spec) {
        Deletion::AsSpecified => invitation,
        Deletion::Instead(deletion_policy, refusal) => {
            report::distinct_event(ctx, invitation, true, refusal.reason, &refusal.message).await;
            let mut under = invitation.clone();
            under.spec.deletion_policy = deletion_policy;
            instead = under;
            &instead
        }
        Deletion::Untouched(refusal) => {
            let message = match left_live(invitation) {
                Some(left) => format!("{}; {left}", refusal.message),
                None => refusal.message,
            };
            tracing::warn!(%message, "deletion of a protected email");
            report::distinct_event(ctx, invitation, true, refusal.reason, &message).await;
            return Ok(());
        }
    };
    // Across installations, a claim another holds means this one never owned the invitation:
    // it stays for the holder; what this one recorded goes per its policy.
    if let Some(holder) = held_by_another(ctx, invitation, &namespace).await? {
        hand_over_bindings(ctx, invitation, &namespace, &holder).await?;
        return handed_over(ctx, invitation, &holder).await;
    }
    // Another live Invitation claims the email: the remote invitation stays for it, whatever
    // the policy (decided without credentials when this process knows where this one acted).
    let contested = claims::contested(ctx, invitation);
    let known_scope = claims::known_scope(ctx, invitation);
    if contested
        && let Some(scope) = known_scope.clone()
        && let Some(next) = claims::hand_over(ctx, invitation, scope).await?
    {
        hand_over_bindings(ctx, invitation, &namespace, &next).await?;
        return handed_over(ctx, invitation, &next).await;
    }
    if invitation.spec.deletion_policy == DeletionPolicy::Orphan {
        let id = invitation
            .status
            .as_ref()
            .and_then(|s| s.invitation_id.as_deref());
        let left: Vec<String> = id
            .map(|id| format!("invitation {id} left in Confluent Cloud as it is"))
            .into_iter()
            .chain(left_live(invitation))
            .collect();
        if !left.is_empty() {
            let note = format!("deletionPolicy Orphan: {}", left.join("; "));
            report::event(ctx, invitation, false, reason::ORPHANED, &note).await;
        }
        return Ok(());
    }
    let client = ctx.client_of(invitation, &namespace).await?;
    if contested && known_scope.is_none() {
        let scope = claims::scope_with(ctx, invitation, &client).await?;
        if let Some(next) = claims::hand_over(ctx, invitation, scope).await? {
            hand_over_bindings(ctx, invitation, &namespace, &next).await?;
            return handed_over(ctx, invitation, &next).await;
        }
    }
    // a claimant of another installation waits for the email: the invitation stays for it
    if let Some(claims) = &ctx.email_claims
        && let Some(next) = claims
            .successor(&ctx.kube.client, &ctx.store, invitation)
            .await
    {
        hand_over_bindings(ctx, invitation, &namespace, &next.key).await?;
        return handed_over(ctx, invitation, &next.key).await;
    }
    // the bindings first: once a pending invitation is deleted, its user may be gone and its
    // bindings no longer reachable by id
    role_bindings::clean_up(ctx, invitation, None, || async { Ok(client.clone()) }).await?;
    let first = planner::plan_cleanup(
        planner::Resource::of(invitation, &ctx.settings.allowed_email_domains),
        &Remote::default(),
    );
    let reads = Reads {
        ctx,
        client: &client,
        email: &invitation.spec.email,
        // what cleanup deletes is read afresh: a snapshot may be a resync old
        gets: Source::Confluent,
        look_ups: Source::Confluent,
    };
    let mut stage = CleanupStage {
        ctx,
        invitation,
        client: &client,
    };
    match drive::drive(&mut stage, &reads, first).await? {
        Driven::Done(()) => Ok(()),
        // (cleanup reads from Confluent itself, never from a snapshot: it has no list to await)
        Driven::AwaitingList => Err(Error::Unsettled(CleanupStage::NAME)),
    }
}

/// With `--claims-namespace`: the holder of the email's claim when another holds it and this
/// one holds none (its deletion policy then touches nothing of the invitation). `Orphan`
/// touches nothing remote either way and is not asked.
async fn held_by_another(
    ctx: &Context,
    invitation: &Invitation,
    namespace: &str,
) -> Result<Option<String>, Error> {
    let Some(claims) = &ctx.email_claims else {
        return Ok(None);
    };
    if invitation.spec.deletion_policy == DeletionPolicy::Orphan || claims.holds_any(invitation) {
        return Ok(None);
    }
    let scope = match claims::known_scope(ctx, invitation) {
        Some(scope) => scope,
        None => {
            let client = ctx.client_of(invitation, namespace).await?;
            claims::scope_with(ctx, invitation, &client).await?
        }
    };
    Ok(claims.held_by_another(invitation, &scope))
}

/// The invitation stays for `next`: the bindings this resource recorded go per its policy,
/// except those `next`'s own ledger records (its user is the same, and it holds them).
/// Credentials are read only when a binding must be read or deleted: `Orphan`, or nothing to
/// delete, waits for none.
async fn hand_over_bindings(
    ctx: &Context,
    invitation: &Invitation,
    namespace: &str,
    next: &str,
) -> Result<(), Error> {
    if invitation.spec.deletion_policy == DeletionPolicy::Orphan {
        return Ok(());
    }
    // (gone from the watch cache meanwhile: it records nothing this one could leave to it)
    let successor = role_bindings::named(ctx, next);
    let theirs = successor
        .as_deref()
        .map(role_bindings::recorded)
        .unwrap_or_default();
    role_bindings::clean_up(ctx, invitation, Some(theirs), || async {
        Ok(ctx.client_of(invitation, namespace).await?)
    })
    .await?;
    // woken again now the bindings it does not record are gone: it creates those it lists
    // at once, instead of taking an adopted one just deleted for its own until a resync
    if let Some(successor) = successor {
        ctx.wake(ObjectRef::from_obj(successor.as_ref()));
    }
    Ok(())
}

/// The Cleanup stage of one deleted Invitation.
struct CleanupStage<'a> {
    ctx: &'a Context,
    invitation: &'a Invitation,
    client: &'a confluent_client::Client,
}

impl Stage for CleanupStage<'_> {
    type Act = Cleanup;
    type Done = ();
    const NAME: &'static str = "cleanup";

    fn plan(&self, remote: &Remote) -> Step<Cleanup> {
        let domains = &self.ctx.settings.allowed_email_domains;
        planner::plan_cleanup(planner::Resource::of(self.invitation, domains), remote)
    }

    async fn act(&mut self, act: Cleanup, remote: &mut Remote) -> Result<Option<()>, Error> {
        let (ctx, invitation) = (self.ctx, self.invitation);
        match act {
            Cleanup::DeleteInvitation(id) => match self.client.delete_invitation(&id).await {
                Ok(()) | Err(confluent_client::Error::NotFound(_)) => {
                    let note = format!("Deleted invitation {id} for {}", invitation.spec.email);
                    report::event(ctx, invitation, false, reason::DELETED, &note).await;
                    Ok(Some(()))
                }
                // accepted in the meantime: read it again and apply the policy to a member
                Err(confluent_client::Error::AlreadyAccepted(_)) => {
                    *remote = Remote::default();
                    Ok(None)
                }
                Err(e) => Err(e.into()),
            },
            Cleanup::DeleteUser(user) => match self.client.delete_user(&user).await {
                Ok(()) | Err(confluent_client::Error::NotFound(_)) => {
                    let note = format!(
                        "deletionPolicy DeleteUser: deleted user {user} ({}), with their API keys and role bindings",
                        invitation.spec.email
                    );
                    report::event(ctx, invitation, false, reason::USER_DELETED, &note).await;
                    Ok(Some(()))
                }
                Err(e) => Err(e.into()),
            },
            Cleanup::KeepAcceptedMember(user) => {
                let note = format!(
                    "{} accepted the invitation; user {user} stays a member of the organization (deletionPolicy Delete). Use deletionPolicy DeleteUser to remove accepted members.",
                    invitation.spec.email
                );
                report::event(ctx, invitation, false, reason::ACCEPTED_USER_KEPT, &note).await;
                Ok(Some(()))
            }
            Cleanup::Release => Ok(Some(())),
        }
    }
}

/// The remote invitation is left for `next`, which owns the email now (or already did).
async fn handed_over(ctx: &Context, invitation: &Invitation, next: &str) -> Result<(), Error> {
    let note = format!(
        "{next} also claims {}: its invitation is left in Confluent Cloud for {next}, which owns it now (deletionPolicy applies when the last claimant goes)",
        invitation.spec.email
    );
    report::event(ctx, invitation, false, reason::HANDED_OVER, &note).await;
    Ok(())
}

/// The credentials cleanup needs cannot be had (the Secret was deleted without the operator's
/// finalizer, e.g. with RBAC lacking `patch` on secrets, or its content is unusable): say in
/// status and in one Warning Event per streak what is blocked and how to release it, instead of
/// hanging silently with the finalizer.
async fn blocked(ctx: &Context, invitation: &Invitation, e: &crate::runtime::credentials::Error) {
    let release = if invitation.spec.deletion_policy == DeletionPolicy::Orphan {
        "restore the credentials to let it go"
    } else {
        "to release this Invitation without touching Confluent Cloud, set spec.deletionPolicy: Orphan"
    };
    let message = format!(
        "Cleanup is blocked: {e}. The remote invitation for {} is not cleaned up and the finalizer stays until the credentials are back; {release}",
        invitation.spec.email
    );
    let next = status::next_status(
        invitation.status.as_ref(),
        &Outcome::Failed {
            reason: e.reason(),
            message: message.clone(),
        },
        invitation.metadata.generation,
        jiff::Timestamp::now(),
    );
    if let Err(err) = report::write_status(ctx, invitation, &next).await {
        tracing::debug!(error = %err, "status of a blocked cleanup not written");
    }
    if ctx.failures_so_far(&super::context::key(invitation)) == 0 {
        report::event(ctx, invitation, true, reason::CLEANUP_BLOCKED, &message).await;
    }
}
