//! What the deletion policy does to the ledger, before the invitation goes.

use kube::runtime::reflector::ObjectRef;

use super::super::context::{Context, key};
use super::super::error::Error;
use super::super::report;
use super::observe::{add_held, planned, recorded, recorded_user};
use super::writes::delete_entry;
use crate::invitation::resource::Invitation;
use crate::invitation::status::Phase;
use crate::reason;
use crate::role_bindings::resource::RoleBindingStatus;
use crate::role_bindings::{self as decide, Cleanup, Observed, Removal, Step};

/// Cleanup: what the deletion policy does to the ledger, before the invitation goes.
/// `successor`: the ledger of the Invitation that takes the email over; the bindings it records
/// stay. The client is asked for only when a binding must be read or deleted, so a cleanup that
/// touches none never waits for credentials. Done when no binding the policy removes is left; else an
/// error (the finalizer stays), with the ledger written so status shows what is left.
pub(in crate::invitation::controller) async fn clean_up<F, Fut>(
    ctx: &Context,
    invitation: &Invitation,
    successor: Option<&[RoleBindingStatus]>,
    client: F,
) -> Result<(), Error>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<confluent_client::Client, Error>>,
{
    let ledger = recorded(invitation);
    if ledger.is_empty() {
        return Ok(());
    }
    let cleanup = Cleanup {
        removal: removal(invitation, successor.is_some()),
        recorded_user: recorded_user(invitation),
        successor,
    };
    let mut observed = Observed::default();
    if let Some(used) = ctx.owner(&key(invitation)) {
        add_held(ctx, used.client, invitation, &mut observed);
    }
    let first = decide::plan_cleanup(&cleanup, ledger, &observed);
    if first.reads.is_empty() && first.steps.is_empty() && !first.removals_outstanding() {
        return Ok(());
    }
    let client = client().await?;
    add_held(ctx, client.key(), invitation, &mut observed);
    let mut plan = planned(&client, &mut observed, |seen| {
        decide::plan_cleanup(&cleanup, ledger, seen)
    })
    .await;
    let mut failure = None;
    for step in plan.steps.clone() {
        let Step::Delete { entry, id, cause } = step else {
            continue;
        };
        if failure.is_some() {
            break;
        }
        if let Err(e) = delete_entry(ctx, &client, invitation, &mut plan, entry, &id, cause).await {
            failure = Some(e);
        }
    }
    if !plan.removals_outstanding() {
        return Ok(());
    }
    let left = plan.into_ledger();
    let mut next = invitation.status.clone().unwrap_or_default();
    next.role_bindings = left;
    if let Err(e) = report::write_status(ctx, invitation, &next).await {
        tracing::debug!(error = %e, "the ledger of an unfinished cleanup was not written");
    }
    Err(match failure {
        Some(e) => e.into(),
        None => Error::BindingsLeft,
    })
}

/// Which bindings of `invitation`'s ledger its deletion removes (`handed_over`: another Invitation
/// takes the email over).
pub(in crate::invitation::controller) fn removal(
    invitation: &Invitation,
    handed_over: bool,
) -> Removal {
    let status = invitation.status.as_ref();
    invitation.spec.deletion_policy.binding_removal(
        Phase::shown(status) == Phase::Accepted,
        status
            .and_then(|s| s.ready())
            .is_some_and(|c| c.reason == reason::EMAIL_CONFLICT),
        handed_over,
    )
}

/// The live object `key` (`namespace/name`) names, from the watch cache.
pub(in crate::invitation::controller) fn named(
    ctx: &Context,
    key: &str,
) -> Option<std::sync::Arc<Invitation>> {
    let (namespace, name) = key.split_once('/')?;
    ctx.store.get(&ObjectRef::new(name).within(namespace))
}
