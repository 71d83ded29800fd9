//! A paused Invitation (annotation [`PAUSED_ANNOTATION`] = `"true"`): no Confluent call at all,
//! not even its deletion policy. Status says so (Ready=False, reason `Paused`) with the remote
//! facts last observed; removing the annotation resumes the usual reconcile, and a deletion made
//! while paused waits behind the finalizer until then.

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;

use super::context::Context;
use super::error::Error;
use super::report;
use crate::invitation::conclusion::{self, Look, Streak};
use crate::invitation::resource::{Invitation, PAUSED_ANNOTATION};
use crate::reason;

/// Holds a paused Invitation: status and one Event per change, then waits for a change of the
/// object (the annotation's removal is one).
pub async fn hold(
    invitation: &Invitation,
    object: &ObjectRef<Invitation>,
    ctx: &Context,
) -> Result<Action, Error> {
    let message = if invitation.metadata.deletion_timestamp.is_some() {
        format!(
            "Paused by the annotation {PAUSED_ANNOTATION}: deletion waits; remove the annotation to apply deletionPolicy {:?} and release the finalizer",
            invitation.spec.deletion_policy
        )
    } else {
        format!(
            "Paused by the annotation {PAUSED_ANNOTATION}: nothing is sent to Confluent Cloud until it is removed"
        )
    };
    tracing::info!(namespace = invitation.namespace().unwrap_or_default(), name = %invitation.name_any(), "paused: no Confluent call");
    let held = conclusion::held(
        invitation.status.as_ref(),
        reason::PAUSED,
        message,
        (Look::OnChange, Streak::Ends),
        invitation.metadata.generation,
        jiff::Timestamp::now(),
    );
    report::conclude(ctx, invitation, object, held).await
}
