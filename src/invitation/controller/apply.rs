//! The Apply stage: read the remote side as the planner asks, act on its one terminal action,
//! then write status and Events. Confluent refusals and credential problems end here, explained
//! in status; only Kubernetes failures escape to the error policy.

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::context::Context;
use super::drive::{self, Reads, Source, Stage};
use super::error::Error;
use super::role_bindings::{self, Applied};
use super::{claims, preview, report};
use crate::invitation::planner::{self, Apply, CreateCause, Remote, SpecRefusal, Step};
use crate::invitation::resource::Invitation;
use crate::invitation::status::{self, Outcome};
use crate::reason;
use confluent_client::retry::Backoff;
use confluent_client::{model::CreateInvitation, model::RemoteInvitation};

/// The least an unchanged resource waits before looking again while its credential is being
/// listed.
const AWAITING_LIST_MIN: Duration = Duration::from_secs(4);

/// How a drive through the planner ended.
enum Ended {
    /// The remote invitation as it now stands, and the Event its arrival deserves.
    Remote(Box<RemoteInvitation>, Option<(&'static str, String)>),
    /// The planner refused to act.
    Refused(SpecRefusal),
    /// Preview mode held a write.
    Held(preview::Would),
}

/// Reconciles a live (not deleting) Invitation.
pub async fn apply(obj: Arc<Invitation>, ctx: &Context) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::Unnamed)?;
    let resource = planner::Resource {
        spec: &obj.spec,
        status: obj.status.as_ref(),
        allowed_email_domains: &ctx.settings.allowed_email_domains,
    };
    // The planner's first answer needs nothing remote: a refusal of the spec comes before
    // credentials, so nothing is sent for a bad spec.
    let first = planner::plan(resource, &Remote::default());
    if let Step::Do(Apply::Refuse(r)) = first {
        return failed(ctx, &obj, r.reason(), r.message().to_owned()).await;
    }
    let client = match ctx.client_of(&obj, &ns).await {
        Ok(c) => c,
        // includes a Secret the operator may not read (RBAC): said in status, retried slowly
        Err(e) => return failed(ctx, &obj, e.reason(), e.to_string()).await,
    };
    ctx.remember_owner(&obj, &client);
    super::credentials_in_use::hold(ctx, &obj).await;
    // One owner per email per organization: the others touch nothing in Confluent, and nobody
    // acts while that cannot be told (a list needed to learn an organization failed).
    let owner = match claims::owner_other_than(ctx, &obj, &client).await {
        Ok(owner) => owner,
        Err(e) => return transient(ctx, &obj, &e).await,
    };
    if let Some(owner) = owner {
        let message = format!(
            "{owner} claims {} in the same Confluent organization and is older: it owns the invitation, and this Invitation changes nothing in Confluent Cloud until {owner} is deleted",
            obj.spec.email
        );
        return failed(ctx, &obj, reason::EMAIL_CONFLICT, message).await;
    }
    // After a failure (maybe a create whose response was lost) the look-up must be fresh: the
    // snapshot may predate that create.
    let fresh_lookup = ctx.failures_so_far(&obj) > 0;
    let reads = Reads {
        ctx,
        client: &client,
        email: &obj.spec.email,
        gets: if obj.spec_changed() {
            Source::Snapshot
        } else {
            Source::SnapshotOnly
        },
        look_ups: if fresh_lookup {
            Source::Confluent
        } else {
            Source::Snapshot
        },
    };
    let mut stage = ApplyStage {
        resource,
        client: &client,
        dry_run: ctx.settings.dry_run,
        fresh_lookup,
        created: obj.metadata.creation_timestamp.as_ref().map(|t| t.0),
        conflicts: 0,
    };
    match drive::drive(&mut stage, &reads, first).await {
        Ok(Ended::Remote(inv, event)) => {
            ctx.confluent.snapshots.record(&client, &inv);
            if let Some(org) = inv
                .resource_name()
                .and_then(confluent_client::role_bindings::organization_of)
            {
                ctx.confluent.learn_organization(&client.identity(), org);
            }
            let bindings = role_bindings::apply(ctx, &obj, &client, &inv).await?;
            succeeded(ctx, &obj, &inv, event, bindings).await
        }
        Ok(Ended::Refused(r)) => failed(ctx, &obj, r.reason(), r.message().to_owned()).await,
        Ok(Ended::Held(would)) => preview::report(&obj, ctx, &would).await,
        Err(Error::AwaitingList) => {
            // The list in flight (or the sweeper's next) reports what changed remotely, if
            // anything, and a look again costs nothing once it is in: soon at first, then
            // the longer the lists keep failing (half the time they have, up to half a resync),
            // so that on a long outage N resources do not wake every few seconds. Jittered:
            // those reconciled at once come back spread out.
            let step = (ctx.confluent.snapshots.overdue(&client) / 2).clamp(
                AWAITING_LIST_MIN,
                (ctx.settings.resync / 2).max(AWAITING_LIST_MIN),
            );
            let spread = Backoff {
                base: step,
                cap: step,
            };
            Ok(Action::requeue(spread.delay(0, None)))
        }
        Err(Error::Confluent(e)) if e.is_transient() => transient(ctx, &obj, &e).await,
        Err(Error::Confluent(e)) => failed(ctx, &obj, e.reason(), e.detail()).await,
        Err(e) => Err(e),
    }
}

/// The Apply stage's state across the steps of one reconcile.
struct ApplyStage<'a> {
    resource: planner::Resource<'a>,
    client: &'a confluent_client::Client,
    dry_run: bool,
    /// Look-ups bypass the snapshot (after a failure).
    fresh_lookup: bool,
    /// The resource's creation time, to tell adopted from recovered invitations.
    created: Option<jiff::Timestamp>,
    /// 409s met by creates in this reconcile.
    conflicts: u32,
}

impl Stage for ApplyStage<'_> {
    type Act = Apply;
    type Done = Ended;
    const NAME: &'static str = "apply";

    fn plan(&self, remote: &Remote) -> Step<Apply> {
        planner::plan(self.resource, remote)
    }

    async fn act(&mut self, act: Apply, remote: &mut Remote) -> Result<Option<Ended>, Error> {
        let email = &self.resource.spec.email;
        if self.dry_run
            && let Some(would) = preview::would(&act, email)
        {
            return Ok(Some(Ended::Held(would)));
        }
        match act {
            Apply::Observe(inv) => Ok(Some(Ended::Remote(Box::new(inv), None))),
            Apply::Adopt(inv) => {
                let id = inv.id.as_deref().unwrap_or("?");
                let state = inv
                    .status
                    .as_ref()
                    .map(|s| s.as_str())
                    .unwrap_or("unknown status");
                let own_create_unrecorded = self.fresh_lookup || self.conflicts > 0;
                let event = match planner::how_found(&inv, self.created, own_create_unrecorded) {
                    planner::Found::Adopted => (
                        reason::ADOPTED,
                        format!(
                            "Adopted the existing invitation {id} for {email} ({state}), sent before this resource was created"
                        ),
                    ),
                    planner::Found::Recovered => (
                        reason::RECOVERED,
                        format!(
                            "Found invitation {id} for {email} ({state}), sent after this resource was created: by this operator (a create whose result was not recorded, or another replica); using it"
                        ),
                    ),
                };
                Ok(Some(Ended::Remote(Box::new(inv), Some(event))))
            }
            Apply::Create(request, cause) => {
                let (reason, what) = match cause {
                    CreateCause::New => (reason::CREATED, "Sent invitation"),
                    CreateCause::Recreate => (
                        reason::RECREATED,
                        "The previous invitation was removed in Confluent Cloud; sent invitation",
                    ),
                };
                let Some(inv) = self.create(&request, remote).await? else {
                    return Ok(None);
                };
                let note = format!("{what} {} to {email}", inv.id.as_deref().unwrap_or("?"));
                Ok(Some(Ended::Remote(Box::new(inv), Some((reason, note)))))
            }
            Apply::Reinvite {
                expired_id,
                request,
            } => {
                match self.client.delete_invitation(&expired_id).await {
                    Ok(()) | Err(confluent_client::Error::NotFound(_)) => {}
                    Err(e) if e.is_transient() => return Err(e.into()),
                    // Whether an expired invitation can be deleted is undocumented: a refusal
                    // does not stop the new invitation.
                    Err(e) => tracing::info!(error = %e, "expired invitation not deleted"),
                }
                let Some(inv) = self.create(&request, remote).await? else {
                    return Ok(None);
                };
                let note = format!(
                    "Invitation {expired_id} expired unaccepted; sent invitation {} to {email}",
                    inv.id.as_deref().unwrap_or("?")
                );
                Ok(Some(Ended::Remote(
                    Box::new(inv),
                    Some((reason::REINVITED, note)),
                )))
            }
            Apply::Refuse(r) => Ok(Some(Ended::Refused(r))),
        }
    }
}

impl ApplyStage<'_> {
    /// Sends a create. The first 409 of a reconcile means the email has an invitation already
    /// (ours, from a create whose response was lost, or someone else's): it looks again, for the
    /// planner to adopt, and answers `None`. A second 409 is an error.
    async fn create(
        &mut self,
        request: &CreateInvitation,
        remote: &mut Remote,
    ) -> Result<Option<RemoteInvitation>, Error> {
        match self.client.create_invitation(request).await {
            Ok(inv) => Ok(Some(inv)),
            Err(confluent_client::Error::AlreadyExists(_)) if self.conflicts == 0 => {
                self.conflicts += 1;
                remote.by_email = Some(drive::look_up(self.client, &request.email).await?);
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }
}

async fn succeeded(
    ctx: &Context,
    obj: &Invitation,
    inv: &RemoteInvitation,
    event: Option<(&'static str, String)>,
    bindings: Option<Applied>,
) -> Result<Action, Error> {
    let now = jiff::Timestamp::now();
    let prev = obj.status.as_ref();
    // the ledger first, so Ready weighs the bindings with the invitation
    let mut base = prev.cloned();
    let applied = bindings.unwrap_or_default();
    if !applied.entries.is_empty() || base.as_ref().is_some_and(|b| !b.role_bindings.is_empty()) {
        base.get_or_insert_with(Default::default).role_bindings = applied.entries;
    }
    let mut next = status::next_status(
        base.as_ref(),
        &Outcome::Remote(inv),
        obj.metadata.generation,
        now,
    );
    if let Some(would) = &applied.would
        && next
            .ready()
            .is_some_and(|c| c.status == "True" || BINDING_REASONS.contains(&c.reason.as_str()))
    {
        // a dry run: Ready says what would change, instead of what is
        next = status::next_status(
            Some(&next),
            &Outcome::Held {
                reason: would.reason,
                message: would.message.clone(),
            },
            obj.metadata.generation,
            now,
        );
    }
    report::write_status(ctx, obj, &next).await?;
    if let Some((reason, note)) = event {
        report::event(ctx, obj, false, reason, &note).await;
    } else if prev.and_then(|p| p.phase.as_deref()) != next.phase.as_deref()
        && let Some(ready) = next.ready()
    {
        let warning = ready.status == "False";
        report::event(ctx, obj, warning, &ready.reason, &ready.message).await;
    }
    if report::ready_changed(prev, &next)
        && let Some(ready) = next.ready()
    {
        if WARNED_BINDING_REASONS.contains(&ready.reason.as_str()) {
            report::event(ctx, obj, true, &ready.reason, &ready.message).await;
        }
        for (action, note) in applied.would.iter().flat_map(|w| &w.events) {
            report::distinct_event(ctx, obj, false, action, note).await;
        }
    }
    if applied.would.is_some() {
        // the preview follows Confluent, as the invitation's does
        return Ok(Action::requeue(ctx.settings.resync));
    }
    if let Some(e) = applied.retry {
        // A binding waits for a transient failure (429, 5xx, no answer) to pass, or a delete
        // to go through: tried again at the next resync, not on the quick backoff of
        // invitations. The invitation stands; a herd of binding retries would spend the
        // credential's budget when it is tightest.
        tracing::warn!(reason = e.reason(), error = %e, "role bindings not settled; trying again at the next resync");
        ctx.metrics.error(e.reason());
        let wait = e
            .retry_after()
            .map_or(ctx.settings.resync, |w| w.max(ctx.settings.resync));
        return Ok(Action::requeue(wait));
    }
    ctx.forget_failures(obj);
    // The sweeper compares every resource with each fresh snapshot: no timer per resource,
    // except for an invitation that expires before the next resync, and a refused binding whose
    // backoff ends first.
    let check = status::next_check(&next, now, ctx.settings.resync);
    let soonest = match (check, applied.refused_retry) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(soonest.map_or_else(Action::await_change, |d| {
        Action::requeue(d.max(std::time::Duration::from_secs(1)))
    }))
}

/// The binding verdicts that are a Warning Event when Ready turns to them: a refusal, access
/// that must go but is still live, access kept that is no longer allowed.
const WARNED_BINDING_REASONS: [&str; 3] = [
    reason::ROLE_BINDING_REFUSED,
    reason::ROLE_BINDING_REVOCATION_PENDING,
    reason::ROLE_BINDING_DISALLOWED,
];

/// Every Ready reason the bindings give (the invitation itself stands): what a dry run's
/// `Would*` reason replaces.
const BINDING_REASONS: [&str; 4] = [
    reason::ROLE_BINDING_REFUSED,
    reason::ROLE_BINDING_REVOCATION_PENDING,
    reason::ROLE_BINDING_DISALLOWED,
    reason::ROLE_BINDING_PENDING,
];

/// A refusal or a permanent error: Ready=False with the reason, one Warning Event per change,
/// and a slow retry (someone has to change something first).
async fn failed(
    ctx: &Context,
    obj: &Invitation,
    reason: &str,
    message: String,
) -> Result<Action, Error> {
    tracing::warn!(reason, detail = %message, "reconcile refused");
    unsuccessful(ctx, obj, reason, message, false, None).await
}

/// 429, 5xx or no response: keep status as it was (unless it was empty), back off per object,
/// honouring the server's wait.
async fn transient(
    ctx: &Context,
    obj: &Invitation,
    e: &confluent_client::Error,
) -> Result<Action, Error> {
    tracing::warn!(reason = e.reason(), error = %e, "transient Confluent failure; backing off");
    unsuccessful(ctx, obj, e.reason(), e.detail(), true, e.retry_after()).await
}

/// What failures and transient failures share: status, one Warning Event per change of Ready,
/// the metric, and the per-object backoff (slow for refusals, quick for transient failures).
async fn unsuccessful(
    ctx: &Context,
    obj: &Invitation,
    reason: &str,
    message: String,
    is_transient: bool,
    server_wait: Option<std::time::Duration>,
) -> Result<Action, Error> {
    ctx.metrics.error(reason);
    let prev = obj.status.as_ref();
    let (outcome, backoff) = if is_transient {
        let outcome = Outcome::Transient {
            reason,
            message: message.clone(),
        };
        (outcome, ctx.settings.transient_backoff())
    } else {
        let outcome = Outcome::Failed {
            reason,
            message: message.clone(),
        };
        (outcome, ctx.settings.refusal_backoff())
    };
    let next = status::next_status(
        prev,
        &outcome,
        obj.metadata.generation,
        jiff::Timestamp::now(),
    );
    report::write_status(ctx, obj, &next).await?;
    if report::ready_changed(prev, &next) {
        report::event(ctx, obj, true, reason, &message).await;
    }
    let attempt = ctx.count_failure(obj);
    Ok(Action::requeue(backoff.delay(attempt, server_wait)))
}
