//! The wiring of InvitationGroups: a generator with no Confluent call of its own. Each pass lists
//! the group's children (its label, its controller reference), performs what
//! [`super::decide::plan`] answers (creates, puts back, deletes), and writes the group's status
//! from the children's. The children are Invitations: their own controller does the rest.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};

use super::decide::{self, Budget, Child, Group};
use super::resource::{GROUP_LABEL, InvitationGroup, InvitationGroupStatus, RemovalWindow};
use crate::invitation::resource::{Invitation, InvitationSpec};
use crate::reason;
use crate::runtime::conditions;
use crate::runtime::events::EventSink;
use crate::runtime::{FIELD_MANAGER, Runtime};
use kube::runtime::events::{Event, EventType};
use parking_lot::Mutex;

/// The group controller's tunables.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The length of a removal window, and how often each group is looked at again.
    pub resync: Duration,
    /// Only this namespace (None: all).
    pub namespace: Option<String>,
    /// The Invitations the operator manages, for the budget (its `--label-selector`).
    pub label_selector: Option<String>,
    /// `--role-binding-budget`: the most role bindings every managed Invitation may list.
    pub role_binding_budget: usize,
}

/// Why a pass failed (retried with backoff; the status says nothing new meanwhile).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Listing, writing or deleting an Invitation, or writing the group's status, failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The group has no namespace or uid (never true for one read from the API server).
    #[error("group without namespace or uid")]
    Unnamed,
}

struct Context {
    client: kube::Client,
    /// Publishes the groups' Events (members added and removed, refusals).
    events: Arc<EventSink>,
    settings: Settings,
    /// Each group's removal window as this process last wrote it, by uid: the watch cache may
    /// still show the status before that write when the next pass runs (the deletions wake
    /// it), and a window read stale would let a second batch go in the same interval.
    windows: Mutex<HashMap<String, RemovalWindow>>,
}

/// Runs the group controller until `shutdown` resolves.
pub async fn run(
    runtime: &Runtime,
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = runtime.kube.client.clone();
    let (groups, children): (Api<InvitationGroup>, Api<Invitation>) = match &settings.namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    if let Err(kube::Error::Api(s)) = groups.list_metadata(&ListParams::default().limit(1)).await
        && s.code == 404
    {
        tracing::warn!(
            "the API server does not serve InvitationGroups (their CRD is not installed): no group is reconciled"
        );
        return shutdown.await;
    }
    let ctx = Arc::new(Context {
        client,
        events: runtime.kube.events.clone(),
        settings,
        windows: Mutex::new(HashMap::new()),
    });
    // the groups of this operator's slice: a group's children carry its labels, so the
    // Invitations it makes fall in the same slice
    let mut group_watch = watcher::Config::default();
    if let Some(selector) = &ctx.settings.label_selector {
        group_watch = group_watch.labels(selector);
    }
    Controller::new(groups, group_watch)
        // a child changed (its status, a hand edit, its deletion): its group looks again
        .owns(children, watcher::Config::default().labels(GROUP_LABEL))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
}

fn error_policy(group: Arc<InvitationGroup>, err: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(
        namespace = group.namespace().unwrap_or_default(),
        group = %group.name_any(),
        error = %err,
        "group pass failed; trying again"
    );
    Action::requeue(Duration::from_secs(5).min(ctx.settings.resync))
}

async fn reconcile(group: Arc<InvitationGroup>, ctx: Arc<Context>) -> Result<Action, Error> {
    // deleted: the garbage collector deletes the children (their controller reference), each
    // running its own cleanup
    if group.meta().deletion_timestamp.is_some() {
        if let Some(uid) = group.uid() {
            ctx.windows.lock().remove(&uid);
        }
        return Ok(Action::await_change());
    }
    let ns = group.namespace().ok_or(Error::Unnamed)?;
    let uid = group.uid().ok_or(Error::Unnamed)?;
    let name = group.name_any();
    let api: Api<Invitation> = Api::namespaced(ctx.client.clone(), &ns);
    let selector = format!("{GROUP_LABEL}={}", decide::label_value(&name));
    let listed: Vec<Invitation> = api
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        // only those it controls: a label alone is anybody's to write
        .filter(|i| {
            i.owner_references()
                .iter()
                .any(|o| o.controller == Some(true) && o.uid == uid)
        })
        .collect();
    let children: Vec<Child> = listed.iter().map(child_of).collect();
    let spec = &group.spec;
    let (after, held) = decide::growth(spec, &children);
    let used = if after > held {
        Some(bindings_in_use(&ctx).await?)
    } else {
        None
    };
    let remembered = ctx.windows.lock().get(&uid).cloned();
    let window = decide::latest(
        group.status.as_ref().and_then(|s| s.removals.as_ref()),
        remembered.as_ref(),
    );
    let plan = decide::plan(
        Group {
            name: &name,
            spec,
            allows_empty: group.allows_empty(),
            window,
            labels: group.labels(),
        },
        &children,
        Budget {
            used,
            limit: ctx.settings.role_binding_budget,
        },
        jiff::Timestamp::now(),
        ctx.settings.resync,
    );
    let owner = group.controller_owner_ref(&()).ok_or(Error::Unnamed)?;
    let labels = decide::child_labels(&name, group.labels());
    for (child, spec) in &plan.create {
        let invitation = child_object(child, &ns, &labels, spec, &owner);
        match api.create(&PostParams::default(), &invitation).await {
            Ok(_) => {
                tracing::info!(group = %name, invitation = %child, "member Invitation created")
            }
            // created meanwhile (a pass racing the watch): the next pass compares it
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    for (child, spec) in &plan.put_back {
        let Some(current) = listed.iter().find(|i| i.name_any() == *child) else {
            continue;
        };
        let mut back = current.clone();
        back.spec = spec.clone();
        back.labels_mut().extend(labels.clone());
        back.metadata.managed_fields = None;
        match api.replace(child, &PostParams::default(), &back).await {
            Ok(_) => {
                tracing::info!(group = %name, invitation = %child, "member Invitation put back as the group says")
            }
            // changed meanwhile (its controller wrote its finalizer): the next pass
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    // The window is recorded before any deletion it counts (in memory, then in status, which
    // shows those members Removing): a crash after the deletions cannot forget them.
    if let Some(window) = &plan.window {
        ctx.windows.lock().insert(uid.clone(), window.clone());
    }
    let after_pass: Vec<Child> = children
        .into_iter()
        .map(|mut c| {
            c.deleting |= plan.delete.contains(&c.name);
            c
        })
        .collect();
    write_status(&ctx, &group, &after_pass, &plan).await?;
    announce(&ctx, &group, &plan).await;
    for child in &plan.delete {
        match api.delete(child, &DeleteParams::default()).await {
            Ok(_) => {
                tracing::info!(group = %name, invitation = %child, "removed member's Invitation deleted")
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Action::requeue(
        plan.next_window.unwrap_or(ctx.settings.resync),
    ))
}

/// The pass's Events: the members added and removed (one Event each way, naming the first
/// few), and a Warning when the group starts refusing something (not again while it still
/// does: the status says so meanwhile).
async fn announce(ctx: &Context, group: &InvitationGroup, plan: &decide::Plan) {
    let emails = |specs: Vec<&str>| {
        let shown: Vec<&str> = specs.iter().take(5).copied().collect();
        let more = specs.len().saturating_sub(shown.len());
        let mut text = shown.join(", ");
        if more > 0 {
            text.push_str(&format!(" and {more} more"));
        }
        text
    };
    let mut notes: Vec<(bool, &str, String)> = Vec::new();
    if !plan.create.is_empty() {
        let added = plan.create.iter().map(|(_, s)| s.email.as_str()).collect();
        notes.push((
            false,
            reason::MEMBERS_ADDED,
            format!(
                "Created the Invitations of {} members: {}",
                plan.create.len(),
                emails(added)
            ),
        ));
    }
    if !plan.delete.is_empty() {
        notes.push((
            false,
            reason::MEMBERS_REMOVED,
            format!(
                "Deleted the Invitations of {} removed members (memberRemovalPolicy {:?} applies to each): {}",
                plan.delete.len(),
                group.spec.member_removal_policy,
                emails(plan.delete.iter().map(String::as_str).collect())
            ),
        ));
    }
    let was = group
        .status
        .as_ref()
        .and_then(|s| s.ready())
        .map(|c| c.reason.as_str());
    let refusal = plan
        .refusal
        .as_ref()
        .map(|r| (r.reason, r.message.clone()))
        .or_else(|| {
            (!plan.throttled.is_empty()).then(|| {
                (
                    reason::REMOVAL_THROTTLED,
                    format!(
                        "{} removed members wait for the next resync interval (maxRemovalsPerSync {})",
                        plan.throttled.len(),
                        group.spec.max_removals_per_sync
                    ),
                )
            })
        });
    if let Some((why, message)) = refusal
        && was != Some(why)
    {
        notes.push((true, why, message));
    }
    let reference = group.object_ref(&());
    for (warning, why, note) in notes {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: why.to_owned(),
            note: Some(note),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        if let Err(e) = ctx.events.recorder().publish(&event, &reference).await {
            tracing::warn!(error = %e, reason = why, "could not publish the group's Event");
        }
    }
}

fn child_of(invitation: &Invitation) -> Child {
    Child {
        name: invitation.name_any(),
        spec: invitation.spec.clone(),
        labels: invitation.labels().clone(),
        status: invitation.status.clone(),
        deleting: invitation.metadata.deletion_timestamp.is_some(),
    }
}

fn child_object(
    name: &str,
    namespace: &str,
    labels: &std::collections::BTreeMap<String, String>,
    spec: &InvitationSpec,
    owner: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> Invitation {
    let mut invitation = Invitation::new(name, spec.clone());
    invitation.metadata.namespace = Some(namespace.to_owned());
    invitation.metadata.labels = Some(labels.clone());
    invitation.metadata.owner_references = Some(vec![owner.clone()]);
    invitation
}

/// The role bindings every Invitation this operator manages lists (its namespace and label
/// selector), in pages: counted only when a group would grow.
async fn bindings_in_use(ctx: &Context) -> Result<usize, Error> {
    let api: Api<Invitation> = match &ctx.settings.namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let mut params = ListParams::default().limit(500);
    if let Some(selector) = &ctx.settings.label_selector {
        params = params.labels(selector);
    }
    let mut used = 0;
    loop {
        let page = api.list(&params).await?;
        used += page
            .items
            .iter()
            .filter(|i| i.metadata.deletion_timestamp.is_none())
            .map(|i| i.spec.role_bindings.len())
            .sum::<usize>();
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(used),
        }
    }
}

/// Writes the group's status when it differs from the stored one.
async fn write_status(
    ctx: &Context,
    group: &InvitationGroup,
    children: &[Child],
    plan: &decide::Plan,
) -> Result<(), Error> {
    let (members, summary, (ready, reason, message)) =
        decide::status(&group.spec, &group.name_any(), children, plan);
    let stored = group.status.clone().unwrap_or_default();
    let mut next = InvitationGroupStatus {
        members,
        summary,
        removals: plan.window.clone(),
        observed_generation: group.metadata.generation,
        conditions: stored.conditions.clone(),
    };
    conditions::set_ready(
        &mut next.conditions,
        ready,
        reason.to_owned(),
        message,
        group.metadata.generation,
        jiff::Timestamp::now(),
    );
    if next == stored {
        return Ok(());
    }
    let api: Api<InvitationGroup> =
        Api::namespaced(ctx.client.clone(), &group.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": "iam.ccloud.dev/v1alpha1",
        "kind": "InvitationGroup",
        "status": next,
    });
    api.patch_status(
        &group.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}
