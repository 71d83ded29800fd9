//! The controller's side of [`crate::invitation::ownership`]: the claims on an email, gathered from the
//! watch cache (every watched Invitation, live or finalizing), and where each one acts.
//!
//! Where an Invitation acts (its [`Scope`]) is, in order: the organization in the CRN its status
//! shows (`status.resourceName`), else the organization this process learnt for its credential
//! (from the CRN of any invitation that credential listed or created), else the identity of its
//! credential, else unknown (not reconciled by this process yet).

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use super::context::{Context, key};
use crate::invitation::ownership::{self, Claim, Scope};
use crate::invitation::resource::Invitation;

/// The organization in an object's status, if it shows a CRN.
fn status_organization(invitation: &Invitation) -> Option<String> {
    invitation
        .status
        .as_ref()
        .and_then(|s| s.resource_name.as_deref())
        .and_then(confluent_client::role_bindings::organization_of)
        .map(str::to_owned)
}

/// The scope of an object from what this process knows without any call.
fn scope_of(ctx: &Context, invitation: &Invitation) -> Scope {
    if let Some(org) = status_organization(invitation) {
        return Scope::Organization(org);
    }
    match ctx.owner_identity(&key(invitation)) {
        Some(identity) => ctx.scope_of_identity(&identity),
        None => Scope::Unknown,
    }
}

/// The scope of another object, resolving its credentials when this process does not know its
/// organization yet (after a restart): a Secret read, and at most one list of its credential's
/// snapshot. A credential's identity alone is not enough when an organization can be learnt:
/// an owner whose status shows its organization would take a rival with the same credential,
/// known only by that identity, for another organization's, and delete the invitation the rival
/// was to take over. What is known stands when its credentials cannot be had (unknown: such an
/// object cannot act in Confluent either).
async fn scope_resolved(
    ctx: &Context,
    invitation: &Invitation,
) -> Result<Scope, confluent_client::Error> {
    let known = scope_of(ctx, invitation);
    if matches!(known, Scope::Organization(_)) {
        return Ok(known);
    }
    let Some(ns) = invitation.namespace() else {
        return Ok(known);
    };
    match ctx.client_of(invitation, &ns).await {
        Ok(client) => scope_with(ctx, invitation, &client).await,
        Err(_) => Ok(known),
    }
}

fn claim(invitation: &Invitation, scope: Scope) -> Claim {
    Claim {
        namespace: invitation.namespace().unwrap_or_default(),
        name: invitation.name_any(),
        created: invitation.metadata.creation_timestamp.as_ref().map(|t| t.0),
        email: invitation.spec.email.clone(),
        scope,
        deleting: invitation.metadata.deletion_timestamp.is_some(),
    }
}

/// The scope of the object being reconciled with `client`: its status's organization, else its
/// credential's. The credential's organization is learnt from its snapshot (the list every
/// reconcile reads anyway) when no CRN was seen yet; an organization without any invitation
/// shows none, and the credential's identity stands for it meanwhile. A list that failed
/// transiently is an error, not that fallback: two Invitations of one organization with
/// different credentials would each take the other for another organization's and both act on
/// the email (the younger one binding its roles to the older one's invitee).
pub(super) async fn scope_with(
    ctx: &Context,
    invitation: &Invitation,
    client: &confluent_client::Client,
) -> Result<Scope, confluent_client::Error> {
    if let Some(org) = status_organization(invitation) {
        return Ok(Scope::Organization(org));
    }
    let identity = client.identity();
    if let Scope::Organization(org) = ctx.scope_of_identity(&identity) {
        return Ok(Scope::Organization(org));
    }
    match ctx
        .confluent
        .snapshots
        .fresh(client, |s| s.organization())
        .await
    {
        Ok(Some(org)) => {
            ctx.confluent.learn_organization(&identity, &org);
            Ok(Scope::Organization(org))
        }
        Ok(None) => Ok(Scope::Credential(identity)),
        Err(e) if e.is_transient() => Err(e),
        // a refused credential acts nowhere: its identity is all there is
        Err(e) => {
            tracing::debug!(error = %e, "no snapshot to learn the organization from");
            Ok(Scope::Credential(identity))
        }
    }
}

/// The scope of an object being deleted, known without resolving its credentials (they may be
/// gone): `None` when only its credentials could tell.
pub(super) fn known_scope(ctx: &Context, invitation: &Invitation) -> Option<Scope> {
    match scope_of(ctx, invitation) {
        Scope::Unknown => None,
        known => Some(known),
    }
}

/// Whether another watched object claims `invitation`'s email at all: the usual answer, no, costs a
/// scan of the cache and nothing else (no scope resolved, no call).
pub(super) fn contested(ctx: &Context, invitation: &Invitation) -> bool {
    ctx.store
        .find(|o| claims_same_email(o, invitation))
        .is_some()
}

/// Whether `other` is another object than `invitation` with the same email (any letter case).
fn claims_same_email(other: &Invitation, invitation: &Invitation) -> bool {
    other
        .spec
        .email
        .eq_ignore_ascii_case(&invitation.spec.email)
        && (other.namespace(), other.name_any()) != (invitation.namespace(), invitation.name_any())
}

/// Every other watched object claiming the same email, with its scope. Usually none: the scan
/// of the cache compares emails only, and scopes are resolved for the few that match.
async fn rivals(
    ctx: &Context,
    invitation: &Invitation,
) -> Result<Vec<Claim>, confluent_client::Error> {
    let matching: Vec<_> = ctx
        .store
        .state()
        .into_iter()
        .filter(|o| claims_same_email(o, invitation))
        .collect();
    let mut claims = Vec::with_capacity(matching.len());
    for o in matching {
        let scope = scope_resolved(ctx, &o).await?;
        claims.push(claim(&o, scope));
    }
    Ok(claims)
}

/// The `namespace/name` of the live object that owns `invitation`'s email, when it is not `invitation`
/// (reconciled with `client`); an error when a claimant's organization cannot be learnt now (a
/// list failed). Uncontested, the usual case, costs a scan of the cache only.
pub(super) async fn owner_other_than(
    ctx: &Context,
    invitation: &Invitation,
    client: &confluent_client::Client,
) -> Result<Option<String>, confluent_client::Error> {
    if !contested(ctx, invitation) {
        return Ok(None);
    }
    let scope = scope_with(ctx, invitation, client).await?;
    let rivals = rivals(ctx, invitation).await?;
    Ok(ownership::owner_other_than(&claim(invitation, scope), &rivals).map(Claim::key))
}

/// The live object that takes `invitation`'s email over when `invitation` goes (woken, so it adopts the
/// remote invitation now rather than at the next resync), if any.
pub(super) async fn hand_over(
    ctx: &Context,
    invitation: &Invitation,
    scope: Scope,
) -> Result<Option<String>, confluent_client::Error> {
    let rivals = rivals(ctx, invitation).await?;
    let Some(next) = ownership::successor(&claim(invitation, scope), &rivals) else {
        return Ok(None);
    };
    ctx.wake(ObjectRef::new(&next.name).within(&next.namespace));
    Ok(Some(next.key()))
}
