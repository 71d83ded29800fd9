//! Writing what a reconcile found: the status (server-side apply, only when it changed) and
//! Events (on transitions, never on every loop).

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use kube::{Api, Resource, ResourceExt};

use super::context::Context;
use super::error::Error;
use crate::invitation::conclusion::{Conclusion, Look, Streak};
use crate::invitation::resource::{Invitation, InvitationStatus};
use crate::runtime::FIELD_MANAGER;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;

/// Event notes are capped by the API at 1 kB.
const MAX_NOTE: usize = 1000;

/// Writes `next` as the status unless it equals what is stored. Returns whether it wrote.
pub async fn write_status(
    ctx: &Context,
    invitation: &Invitation,
    next: &InvitationStatus,
) -> Result<bool, Error> {
    if invitation.status.as_ref() == Some(next) {
        return Ok(false);
    }
    let ns = invitation.namespace().ok_or(Error::Unnamed)?;
    let api: Api<Invitation> = Api::namespaced(ctx.kube.client.clone(), &ns);
    let patch = serde_json::json!({
        "apiVersion": Invitation::api_version(&()),
        "kind": Invitation::kind(&()),
        "status": next,
    });
    api.patch_status(
        &invitation.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(true)
}

/// Performs a reconcile's conclusion: the status (when it differs), its Events, the failure
/// streak and the metric, and the next look as a controller action.
pub async fn conclude(
    ctx: &Context,
    invitation: &Invitation,
    object: &ObjectRef<Invitation>,
    conclusion: Conclusion,
) -> Result<Action, Error> {
    write_status(ctx, invitation, &conclusion.status).await?;
    for note in &conclusion.notes {
        publish(
            ctx,
            invitation,
            note.warning,
            &note.reason,
            &note.text,
            note.distinct,
        )
        .await;
    }
    let attempt = match &conclusion.streak {
        Streak::Grows { reason, detail } => {
            let transient = matches!(
                conclusion.look,
                Look::Backoff {
                    transient: true,
                    ..
                }
            );
            tracing::warn!(reason, %detail, transient, "reconcile did not succeed; backing off");
            ctx.metrics.error(reason);
            ctx.count_failure(object)
        }
        Streak::Counted(reason) => {
            ctx.metrics.error(reason);
            0
        }
        Streak::Ends => {
            ctx.forget_failures(object);
            0
        }
        Streak::Stays => 0,
    };
    Ok(match conclusion.look {
        Look::OnChange => Action::await_change(),
        Look::After(wait) => Action::requeue(wait),
        Look::Backoff {
            transient,
            server_wait,
        } => {
            let backoff = if transient {
                ctx.settings.transient_backoff()
            } else {
                ctx.settings.refusal_backoff()
            };
            Action::requeue(backoff.delay(attempt, server_wait))
        }
    })
}

/// Publishes an Event about `invitation`. A failure to publish is logged, never fatal: Events explain,
/// they do not decide. A repeat of the same reason extends the first Event's series (kube's
/// Recorder), keeping the first note.
pub async fn event(
    ctx: &Context,
    invitation: &Invitation,
    warning: bool,
    reason: &str,
    note: &str,
) {
    publish(ctx, invitation, warning, reason, note, false).await;
}

/// Publishes an Event that is never folded into an earlier one's series: for notes that name
/// what they are about (one role binding each), which a series would hide behind the first
/// note. Each stands for a remote change, so they come no oftener than changes do.
pub async fn distinct_event(
    ctx: &Context,
    invitation: &Invitation,
    warning: bool,
    reason: &str,
    note: &str,
) {
    publish(ctx, invitation, warning, reason, note, true).await;
}

async fn publish(
    ctx: &Context,
    invitation: &Invitation,
    warning: bool,
    reason: &str,
    note: &str,
    distinct: bool,
) {
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
    let reference = invitation.object_ref(&());
    let published = match own_event(&ev, &reference, ctx.kube.events.reporter(), distinct) {
        // kube's Recorder would name it `<object name>.<hex time>`, too long for the API
        // server, or would fold it into a series
        Some(event) => {
            let ns = reference.namespace.clone().unwrap_or_default();
            let api: Api<v1::Event> = Api::namespaced(ctx.kube.client.clone(), &ns);
            api.create(&PostParams::default(), &event).await.map(|_| ())
        }
        None => ctx.kube.events.recorder().publish(&ev, &reference).await,
    };
    if let Err(e) = published {
        tracing::warn!(error = %e, reason, "could not publish Event");
    }
}

/// The longest object name whose Event kube's Recorder names validly: it appends `.` and up to
/// 16 hex digits of the time to the object name, and names are at most 253 characters.
const MAX_RECORDER_NAME: usize = 253 - 17;

/// The Event this module writes itself (None: kube's Recorder writes it): a `distinct` one, or
/// one for an object whose name is too long for the Recorder to derive a valid Event name from.
/// The same fields the Recorder writes, named [`event_name`]. Such Events are not aggregated
/// into series: there are few of them, one per transition.
fn own_event(
    ev: &Event,
    reference: &ObjectReference,
    reporter: &Reporter,
    distinct: bool,
) -> Option<v1::Event> {
    let object = reference.name.as_deref()?;
    if object.len() <= MAX_RECORDER_NAME && !distinct {
        return None;
    }
    let now = jiff::Timestamp::now();
    Some(v1::Event {
        action: Some(ev.action.clone()),
        reason: Some(ev.reason.clone()),
        event_time: Some(MicroTime(now)),
        regarding: Some(reference.clone()),
        note: ev.note.clone(),
        metadata: ObjectMeta {
            namespace: reference.namespace.clone(),
            name: Some(event_name(object, now.as_nanosecond())),
            ..Default::default()
        },
        reporting_controller: Some(reporter.controller.clone()),
        reporting_instance: Some(
            reporter
                .instance
                .clone()
                .unwrap_or_else(|| reporter.controller.clone()),
        ),
        type_: Some(
            match ev.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .into(),
        ),
        ..Default::default()
    })
}

/// A valid, unique Event name for any object name: the object name if the result fits, else
/// its start, a hash of the whole name (two long names sharing a start stay apart) and the
/// time, always a DNS subdomain of at most 253 characters.
pub fn event_name(object: &str, nanos: i128) -> String {
    let time = format!("{:x}", nanos.max(0));
    if object.len() + 1 + time.len() <= 253 {
        return format!("{object}.{time}");
    }
    // FNV-1a: stable across builds and versions, and the name is no secret
    let hash = object.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let tail = format!("-{hash:016x}.{time}");
    // object names are ASCII (DNS subdomains); a label may not end in `.` or `-`
    let keep = 253 - tail.len();
    let start = object
        .get(..keep)
        .unwrap_or(object)
        .trim_end_matches(['.', '-']);
    format!("{start}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_subdomain(name: &str) -> bool {
        crate::runtime::credentials::is_object_name(name)
    }

    #[test]
    fn event_names_are_always_valid_and_distinct() {
        let nanos = 1_790_000_000_123_456_789_i128;
        assert_eq!(event_name("jane", nanos), format!("jane.{nanos:x}"));
        for name in [
            "a".repeat(253),
            format!("{}.{}", "b".repeat(200), "c".repeat(52)),
            format!("{}{}x", "a".repeat(230), "-".repeat(22)),
            format!("{}.b", "a".repeat(251)),
            format!("{}-{}", "a".repeat(220), "z".repeat(32)),
        ] {
            assert!(is_subdomain(&name), "{name}");
            let ev = event_name(&name, nanos);
            assert!(ev.len() <= 253, "{} chars", ev.len());
            assert!(is_subdomain(&ev), "{ev}");
        }
        // a cut falling on `.` or `-` leaves no empty label
        let dotted = format!("{}.{}", "a".repeat(219), "b".repeat(33));
        assert!(is_subdomain(&event_name(&dotted, nanos)));
        // names sharing their first 230 characters still get different Events
        let one = format!("{}{}", "a".repeat(230), "1".repeat(23));
        let two = format!("{}{}", "a".repeat(230), "2".repeat(23));
        assert_ne!(event_name(&one, nanos), event_name(&two, nanos));
    }
}
