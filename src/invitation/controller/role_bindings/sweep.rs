//! Once per resync: the held lists compared with every ledger, without a call per Invitation.

use std::collections::HashMap;
use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use super::super::context::{Context, CredentialUse, key};
use super::observe::{Ask, MAX_SCOPE_LISTS, add_held, concerned, recorded};
use crate::invitation::resource::Invitation;
use crate::invitation::status::Phase;
use crate::invitation_policy::resource::InvitationPolicy;
use crate::reason;
use crate::role_bindings::{self as decide, Demand, Observed};
use confluent_client::role_bindings::{RoleBindingFilter, organization_of, user_principal};

/// Once per resync, after the invitation snapshots: lists again, per credential, the scopes
/// every concerned Invitation needs (each list once), and wakes the Invitations whose bindings
/// differ from what their ledger records (removed or added out of band, a pending create, a
/// binding to delete, a create to confirm). Never a call per Invitation. A list that fails
/// makes only its own scope unknown: every other Invitation is compared as usual. Credentials
/// whose invitation list just failed (`unlisted`: 429, an outage) are left alone until it
/// succeeds, as their invitations are.
pub(in crate::invitation::controller) async fn sweep(
    ctx: &Context,
    store: &Store<Invitation>,
    unlisted: &[u64],
    mut wake: impl FnMut(ObjectRef<Invitation>) -> bool,
) {
    // the objects to compare, with their credential and what they ask
    let mut watched = Vec::new();
    let mut demands = Vec::new();
    // the policies applying to each namespace, read once per namespace, not per Invitation
    let mut applying: HashMap<String, Vec<Arc<InvitationPolicy>>> = HashMap::new();
    for invitation in store.state() {
        if !concerned(&invitation)
            || invitation.paused()
            || invitation.metadata.deletion_timestamp.is_some()
        {
            continue;
        }
        let Some(status) = invitation.status.as_ref() else {
            continue;
        };
        let standing = status
            .ready()
            .is_some_and(|c| c.reason != reason::EMAIL_CONFLICT)
            && Phase::shown(Some(status)).stands();
        let (Some(user_id), Some(used)) = (status.user_id.clone(), ctx.owner(&key(&invitation)))
        else {
            continue;
        };
        if !standing || unlisted.contains(&used.client) {
            continue;
        }
        let organization = ctx.confluent.organization_of(&used.identity).or_else(|| {
            status
                .resource_name
                .as_deref()
                .and_then(organization_of)
                .map(str::to_owned)
        });
        // no organization known yet: nothing is listed for it, and its own reconcile lists
        let Some(org) = organization else { continue };
        let policies = applying
            .entry(invitation.namespace().unwrap_or_default())
            .or_insert_with_key(|ns| ctx.policies.applying(ns));
        let policies: Vec<&InvitationPolicy> = policies.iter().map(AsRef::as_ref).collect();
        let ask = Ask::new(
            ctx,
            &invitation,
            &key(&invitation),
            &policies,
            (Some(&org), Some(&user_id)),
        );
        demands.push(Demand {
            credential: used.client,
            organization: org,
            crn_patterns: decide::crn_patterns(&ask.desired),
            exclusive: ask.exclusive,
        });
        watched.push((invitation, used, ask));
    }
    let lists = decide::observation_lists(&demands, MAX_SCOPE_LISTS);
    let mut failed: Vec<(u64, RoleBindingFilter, String)> = Vec::new();
    for ((credential, _), filters) in &lists {
        let Some(client) = ctx.confluent.snapshots.client(*credential) else {
            continue;
        };
        for filter in filters {
            if let Err(e) = ctx
                .confluent
                .role_binding_lists
                .refresh(&client, filter)
                .await
            {
                tracing::warn!(credential = %client.identity(), crn = %filter.crn_pattern, error = %e, "role-binding list failed; the bindings at that scope are compared again next resync");
                let stop = e.is_transient();
                failed.push((*credential, filter.clone(), e.detail()));
                if stop {
                    // an outage or a 429: the credential's other lists wait too
                    for rest in filters.iter().filter(|f| *f != filter) {
                        failed.push((*credential, rest.clone(), e.detail()));
                    }
                    break;
                }
            }
        }
    }
    ctx.confluent
        .role_binding_lists
        .retain(|credential, filter| {
            lists
                .iter()
                .any(|((c, _), filters)| *c == credential && filters.contains(filter))
        });
    for (invitation, used, ask) in watched {
        if drifted(ctx, &invitation, &used, &ask, &failed)
            && !wake(ObjectRef::from(invitation.as_ref()))
        {
            return;
        }
    }
}

/// Whether the held lists show something about `invitation`'s bindings that its ledger does not
/// (read without a call; a scope whose list failed this resync is unknown).
fn drifted(
    ctx: &Context,
    invitation: &Invitation,
    used: &CredentialUse,
    ask: &Ask,
    failed: &[(u64, RoleBindingFilter, String)],
) -> bool {
    let Some(user) = ask.user_id.as_deref() else {
        return false;
    };
    let principal = user_principal(user);
    let filters = ask.filters(used.client);
    let mut observed = Observed::default();
    for filter in &filters {
        let failure = failed
            .iter()
            .find(|(c, f, _)| *c == used.client && f == filter);
        match failure {
            Some((_, _, why)) => observed.list(&principal, filter.clone(), Err(why.clone())),
            None => {
                for (f, share) in ctx.confluent.role_binding_lists.look_held(
                    used.client,
                    std::slice::from_ref(filter),
                    &principal,
                ) {
                    observed.list(&principal, f, Ok(share));
                }
            }
        }
    }
    let ledger = recorded(invitation);
    add_held(ctx, used.client, invitation, &mut observed);
    let plan = decide::plan(&ask.live(ctx, invitation), ledger, &observed);
    !plan.steps.is_empty() || !plan.reads.is_empty() || plan.ledger != ledger
}
