//! Writing what a reconcile found: the status (server-side apply, only when it changed) and
//! Events (on transitions, never on every loop).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use std::sync::Mutex;

use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Resource, ResourceExt};

use super::{Context, Error, FIELD_MANAGER};
use crate::crd::{Invitation, InvitationStatus};

/// Event notes are capped by the API at 1 kB.
const MAX_NOTE: usize = 1000;

/// How many Events one Recorder publishes before it is replaced by a fresh one.
pub const EVENT_MEMORY: usize = 1024;

/// Hands out kube's [`Recorder`], which turns a repeated Event (same object, type and reason)
/// into a `series` count on the first instead of a new object. Its cache keeps every Event it
/// published for 6 minutes and is only pruned by the next publish: 10 000 new invitations
/// left ~24 MiB in it for as long as nothing else happened. So a Recorder serves `limit`
/// Events, then a fresh one takes over: at most `limit` Events are remembered, and a repeat
/// after a hand-over starts a new Event instead of extending the old series.
pub struct EventSink {
    kube: kube::Client,
    reporter: Reporter,
    limit: usize,
    /// The Recorder in use and how many Events it has published.
    current: Mutex<(Recorder, usize)>,
    /// How many Recorders were replaced.
    handovers: std::sync::atomic::AtomicUsize,
}

impl EventSink {
    /// A sink whose Recorders serve `limit` Events each.
    pub fn new(kube: kube::Client, reporter: Reporter, limit: usize) -> Self {
        let recorder = Recorder::new(kube.clone(), reporter.clone());
        Self {
            kube,
            reporter,
            limit: limit.max(1),
            current: Mutex::new((recorder, 0)),
            handovers: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The Recorder for the next Event.
    pub fn recorder(&self) -> Recorder {
        // A counter and a handle: a poisoned lock still holds a usable pair.
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.1 >= self.limit {
            *current = (Recorder::new(self.kube.clone(), self.reporter.clone()), 0);
            self.handovers
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        current.1 += 1;
        current.0.clone()
    }

    /// How many times a fresh Recorder took over (the tests read it).
    pub fn handovers(&self) -> usize {
        self.handovers.load(std::sync::atomic::Ordering::Relaxed)
    }
}

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
    if let Err(e) = ctx
        .events
        .recorder()
        .publish(&ev, &obj.object_ref(&()))
        .await
    {
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
