//! Writing what a reconcile found: the status (server-side apply, only when it changed) and
//! Events (on transitions, never on every loop).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};

use super::{Context, Error, FIELD_MANAGER};
use crate::crd::{Invitation, InvitationStatus};

/// Event notes are capped by the API at 1 kB.
const MAX_NOTE: usize = 1000;

/// Writes `next` as the status unless it equals what is stored. Returns whether it wrote.
pub async fn write_status(
    ctx: &Context,
    obj: &Invitation,
    next: &InvitationStatus,
) -> Result<bool, Error> {
    if obj.status.as_ref() == Some(next) {
        return Ok(false);
    }
    let ns = obj.namespace().ok_or(Error::Unnamed)?;
    let api: Api<Invitation> = Api::namespaced(ctx.kube.clone(), &ns);
    let patch = serde_json::json!({
        "apiVersion": Invitation::api_version(&()),
        "kind": Invitation::kind(&()),
        "status": next,
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(true)
}

/// Publishes an Event about `obj`. A failure to publish is logged, never fatal: Events explain,
/// they do not decide.
pub async fn event(ctx: &Context, obj: &Invitation, warning: bool, reason: &str, note: &str) {
    let mut note = note.to_owned();
    if note.len() > MAX_NOTE {
        let mut cut = MAX_NOTE;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
    }
    let ev = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.to_owned(),
        note: Some(note),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    ctx.metrics.event(reason, warning);
    if let Err(e) = ctx.recorder.publish(&ev, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "could not publish Event");
    }
}

/// Whether the Ready condition's status, reason or message differ between two statuses: the
/// transitions worth an Event.
pub fn ready_changed(prev: Option<&InvitationStatus>, next: &InvitationStatus) -> bool {
    let key =
        |c: Option<&Condition>| c.map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()));
    key(prev.and_then(InvitationStatus::ready)) != key(next.ready())
}
