//! The role bindings an Invitation lists (`spec.roleBindings`), in three places of the
//! controller: after the invitation stands (Apply), when the resource is deleted (Cleanup, per
//! deletion policy) and once per resync (the sweeper wakes the Invitations whose bindings
//! drifted). The decisions are [`crate::role_bindings`]'; this module observes (held lists, a
//! list where none is held, the exact reads the decisions ask for), records the ledger before a
//! create is sent, performs the writes, settles each into the ledger and reports.

mod clean_up;
mod observe;
mod sweep;
#[cfg(test)]
mod tests;
mod writes;

pub(super) use clean_up::{clean_up, named, removal};
pub(super) use observe::recorded;
pub(super) use sweep::sweep;

use kube::runtime::reflector::ObjectRef;

use super::context::Context;
use super::error::Error;
use super::report;
use crate::invitation::conclusion::{Bindings, Would};
use crate::invitation::resource::Invitation;
use crate::invitation::status::{self, Outcome, Phase};
use crate::invitation_policy::resource::InvitationPolicy;
use crate::reason;
use crate::role_bindings::resource::{RoleBindingState, RoleBindingStatus};
use crate::role_bindings::{self as decide, Key, Observed, Plan, Step};
use confluent_client::model::RemoteInvitation;
use confluent_client::role_bindings::{organization_of, user_principal};
use observe::{Ask, add_held, concerned, planned};
use writes::Run;

/// The bindings step of Apply, once the remote invitation stands as `inv`, under the
/// InvitationPolicies `applying` to its namespace (as Apply read them, once per reconcile). No
/// ledger when the object lists, excludes and records no binding: nothing is read for it.
/// Fails only when the ledger could not be recorded before a create (nothing was sent then).
pub(super) async fn apply(
    ctx: &Context,
    invitation: &Invitation,
    object: &ObjectRef<Invitation>,
    client: &confluent_client::Client,
    (inv, applying): (&RemoteInvitation, &[&InvitationPolicy]),
) -> Result<Bindings, Error> {
    if !concerned(invitation) {
        return Ok(Bindings::default());
    }
    let ledger = recorded(invitation);
    // Bindings are for a standing invitation (pending or accepted): an expired or deactivated
    // one keeps its ledger as it is until it stands again.
    if !Phase::of(inv.status.as_ref()).stands() {
        return Ok(Bindings {
            ledger: Some(ledger.to_vec()),
            ..Bindings::default()
        });
    }
    if invitation.spec_changed() {
        // the spec changed: every refused binding is tried again
        ctx.keep_binding_refusals(object, &[]);
    }
    let organization = inv.resource_name().and_then(organization_of);
    let ask = Ask::new(
        ctx,
        invitation,
        object,
        applying,
        (organization, inv.user_id()),
    );
    let live = ask.live(ctx, invitation);
    let mut observed = Observed::default();
    let mut retry = None;
    if let Some(user) = inv.user_id() {
        let principal = user_principal(user);
        let filters = ask.filters(client.key());
        for (filter, answer) in ctx
            .confluent
            .role_binding_lists
            .look(client, &filters, &principal)
            .await
        {
            let shown = answer.map_err(|e| {
                tracing::warn!(crn = %filter.crn_pattern, error = %e, "role-binding list failed; its bindings stay as recorded");
                let detail = e.detail();
                if e.is_transient() && retry.is_none() {
                    retry = Some(e);
                }
                detail
            });
            observed.list(&principal, filter, shown);
        }
        add_held(ctx, client.key(), invitation, &mut observed);
    }
    let mut plan = planned(client, &mut observed, |seen| {
        decide::plan(&live, ledger, seen)
    })
    .await;
    if ctx.settings.dry_run {
        return Ok(preview(ctx, plan));
    }
    if plan.creates() {
        // recorded before any create is sent: a create whose answer is lost (or whose status
        // write fails, or a crash) is then `Creating` in the ledger, and looked up, whatever
        // happens to the spec meanwhile
        record(ctx, invitation, inv, &plan.ledger).await?;
    }
    let steps = plan.steps.clone();
    let mut run = Run {
        ctx,
        invitation,
        object,
        client,
        stopped: None,
        retry,
    };
    for step in steps {
        run.step(&mut plan, step).await;
    }
    let entries = plan.into_ledger();
    let still_refused: Vec<Key> = entries
        .iter()
        .filter(|e| e.state == RoleBindingState::Refused)
        .filter_map(|e| Key::of_entry(e, None))
        .collect();
    ctx.keep_binding_refusals(object, &still_refused);
    let retry = run.retry.or(run.stopped).map(|e| {
        tracing::warn!(reason = e.reason(), error = %e, "role bindings not settled; trying again at the next resync");
        (e.reason(), e.retry_after())
    });
    Ok(Bindings {
        ledger: Some(entries),
        retry,
        would: None,
        refused_retry: ctx.next_binding_retry(object),
    })
}

/// Writes the status with `ledger`, before creates are sent.
async fn record(
    ctx: &Context,
    invitation: &Invitation,
    inv: &RemoteInvitation,
    ledger: &[RoleBindingStatus],
) -> Result<(), Error> {
    let mut base = invitation.status.clone().unwrap_or_default();
    base.role_bindings = ledger.to_vec();
    let next = status::next_status(
        Some(&base),
        &Outcome::Remote(inv),
        invitation.metadata.generation,
        jiff::Timestamp::now(),
    );
    report::write_status(ctx, invitation, &next).await.map(drop)
}

/// `--dry-run`: what the writes would be, nothing sent; the ledger as recorded.
fn preview(ctx: &Context, plan: Plan) -> Bindings {
    let mut events = Vec::new();
    let mut deletes = Vec::new();
    let mut creates = Vec::new();
    for step in &plan.steps {
        match step {
            Step::Create { request, .. } => {
                creates.push(format!("{} on {}", request.role_name, request.crn_pattern));
                events.push((
                    reason::WOULD_CREATE_ROLE_BINDING,
                    format!(
                        "Would grant {} on {} to {}",
                        request.role_name, request.crn_pattern, request.principal
                    ),
                ));
            }
            Step::Delete { entry, id, .. } => {
                let what = plan
                    .ledger
                    .get(*entry)
                    .map(RoleBindingStatus::describe)
                    .unwrap_or_default();
                deletes.push(format!("{id} ({what})"));
                events.push((
                    reason::WOULD_DELETE_ROLE_BINDING,
                    format!("Would delete role binding {id} ({what})"),
                ));
            }
            Step::Adopt { .. } => {}
        }
    }
    for (action, _) in &events {
        ctx.metrics.dry_run(action);
    }
    let would = match (deletes.is_empty(), creates.is_empty()) {
        (true, true) => None,
        _ => {
            let mut parts = Vec::new();
            if !deletes.is_empty() {
                parts.push(format!(
                    "would delete role binding(s) {}",
                    deletes.join(", ")
                ));
            }
            if !creates.is_empty() {
                parts.push(format!("would grant {}", creates.join(", ")));
            }
            let reason = if deletes.is_empty() {
                reason::WOULD_CREATE_ROLE_BINDING
            } else {
                reason::WOULD_DELETE_ROLE_BINDING
            };
            Some(Would {
                reason,
                message: format!("dry run: {}", parts.join("; ")),
                events,
            })
        }
    };
    Bindings {
        ledger: Some(plan.previewed()),
        would,
        ..Bindings::default()
    }
}
