//! The Apply stage: read the remote side as the planner asks, act on its one terminal action,
//! then write status and Events. Confluent refusals and credential problems end here, explained
//! in status; only Kubernetes failures escape to the error policy.

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::{Context, Error, claims, preview, report};
use crate::confluent::{self, ListFilter, model::CreateInvitation, model::RemoteInvitation};
use crate::crd::Invitation;
use crate::planner::{self, ById, CreateCause, Remote, SpecRefusal, Step};
use crate::status::{self, Outcome};
use crate::validate;

/// More steps than any path of the planner takes (get, look-up, create, 409 look-up, create).
const MAX_STEPS: usize = 8;

/// The Ready reason of an Invitation whose email another, older Invitation owns.
pub(super) const EMAIL_CONFLICT: &str = "EmailConflict";

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
    };
    if let Err(message) =
        validate::email_domain(&obj.spec.email, &ctx.settings.allowed_email_domains)
    {
        return failed(ctx, &obj, "EmailDomainNotAllowed", message).await;
    }
    // Refusals that need no credentials come first: nothing is sent for a bad spec.
    if let Step::Refuse(r) = planner::plan(resource, &Remote::default()) {
        return failed(ctx, &obj, r.reason(), r.message().to_owned()).await;
    }
    let secret = obj
        .spec
        .credentials_secret_ref
        .as_ref()
        .map(|r| r.name.as_str());
    let client = match ctx.credentials.client_for(&ctx.kube, &ns, secret).await {
        Ok(c) => c,
        // includes a Secret the operator may not read (RBAC): said in status, retried slowly
        Err(e) => return failed(ctx, &obj, e.reason(), e.to_string()).await,
    };
    ctx.remember_owner(&obj, &client);
    super::credentials_in_use::hold(ctx, &obj).await;
    // One owner per email per organization: the others touch nothing in Confluent.
    if claims::contested(ctx, &obj)
        && let Some(owner) =
            claims::owner_other_than(ctx, &obj, claims::scope_with(ctx, &obj, &client).await).await
    {
        let message = format!(
            "{owner} claims {} in the same Confluent organization and is older: it owns the invitation, and this Invitation changes nothing in Confluent Cloud until {owner} is deleted",
            obj.spec.email
        );
        return failed(ctx, &obj, EMAIL_CONFLICT, message).await;
    }
    // After a failure (maybe a create whose response was lost) the look-up must be fresh: the
    // snapshot may predate that create.
    let fresh_lookup = ctx.failures_so_far(&obj) > 0;
    let created = obj.metadata.creation_timestamp.as_ref().map(|t| t.0);
    match drive(ctx, resource, &client, fresh_lookup, created).await {
        Ok(Ended::Remote(inv, event)) => {
            ctx.snapshots.record(&client, &inv);
            if let Some(org) = inv
                .resource_name()
                .and_then(crate::ownership::organization_of)
            {
                ctx.learn_organization(&client.identity(), org);
            }
            succeeded(ctx, &obj, &inv, event).await
        }
        Ok(Ended::Refused(r)) => failed(ctx, &obj, r.reason(), r.message().to_owned()).await,
        Ok(Ended::Held(would)) => preview::report(&obj, ctx, &would).await,
        Err(Error::Confluent(e)) if e.is_transient() => transient(ctx, &obj, &e).await,
        Err(Error::Confluent(e)) => failed(ctx, &obj, e.reason(), e.detail()).await,
        Err(e) => Err(e),
    }
}

/// Performs the planner's reads until it answers a terminal action, then performs that.
async fn drive(
    ctx: &Context,
    resource: planner::Resource<'_>,
    client: &confluent::Client,
    fresh_lookup: bool,
    created: Option<jiff::Timestamp>,
) -> Result<Ended, Error> {
    let email = &resource.spec.email;
    let mut remote = Remote::default();
    let mut conflicts = 0u32;
    for _ in 0..MAX_STEPS {
        let action = planner::plan(resource, &remote);
        if ctx.settings.dry_run
            && let Some(would) = preview::would(&action, email)
        {
            return Ok(Ended::Held(would));
        }
        match action {
            Step::Get(id) => remote.by_id = Some(observe(ctx, client, &id).await?),
            // (were the snapshot ever to miss an invitation, the create meets a 409, which
            // looks up afresh below)
            Step::LookUp if fresh_lookup => remote.by_email = Some(look_up(client, email).await?),
            Step::LookUp => {
                remote.by_email = Some(ctx.snapshots.fresh(client, |s| s.for_email(email)).await?)
            }
            Step::Observe(inv) => return Ok(Ended::Remote(Box::new(inv), None)),
            Step::Adopt(inv) => {
                let id = inv.id.as_deref().unwrap_or("?");
                let state = inv
                    .status
                    .as_ref()
                    .map(|s| s.as_str())
                    .unwrap_or("unknown status");
                let event = match planner::how_found(&inv, created, fresh_lookup || conflicts > 0) {
                    planner::Found::Adopted => (
                        "Adopted",
                        format!(
                            "Adopted the existing invitation {id} for {email} ({state}), sent before this resource was created"
                        ),
                    ),
                    planner::Found::Recovered => (
                        "Recovered",
                        format!(
                            "Found invitation {id} for {email} ({state}), sent after this resource was created: by this operator (a create whose result was not recorded, or another replica); using it"
                        ),
                    ),
                };
                return Ok(Ended::Remote(Box::new(inv), Some(event)));
            }
            Step::Create(request, cause) => {
                let (reason, what) = match cause {
                    CreateCause::New => ("Created", "Sent invitation"),
                    CreateCause::Recreate => (
                        "Recreated",
                        "The previous invitation was removed in Confluent Cloud; sent invitation",
                    ),
                };
                if let Some(inv) = create(client, &request, &mut remote, &mut conflicts).await? {
                    let note = format!("{what} {} to {email}", inv.id.as_deref().unwrap_or("?"));
                    return Ok(Ended::Remote(Box::new(inv), Some((reason, note))));
                }
            }
            Step::Reinvite {
                expired_id,
                request,
            } => {
                match client.delete_invitation(&expired_id).await {
                    Ok(()) | Err(confluent::Error::NotFound(_)) => {}
                    Err(e) if e.is_transient() => return Err(e.into()),
                    // Whether an expired invitation can be deleted is undocumented: a refusal
                    // does not stop the new invitation.
                    Err(e) => tracing::info!(error = %e, "expired invitation not deleted"),
                }
                if let Some(inv) = create(client, &request, &mut remote, &mut conflicts).await? {
                    let note = format!(
                        "Invitation {expired_id} expired unaccepted; sent invitation {} to {email}",
                        inv.id.as_deref().unwrap_or("?")
                    );
                    return Ok(Ended::Remote(Box::new(inv), Some(("Reinvited", note))));
                }
            }
            Step::Refuse(r) => return Ok(Ended::Refused(r)),
            other => return Err(Error::Internal(format!("{other:?}"), "apply")),
        }
    }
    Err(Error::Internal("no terminal action".into(), "apply"))
}

/// Sends a create. The first 409 of a reconcile means the email has an invitation already
/// (ours, from a create whose response was lost, or someone else's): it looks again, for the
/// planner to adopt, and answers `None`. A second 409 is an error.
async fn create(
    client: &confluent::Client,
    request: &CreateInvitation,
    remote: &mut Remote,
    conflicts: &mut u32,
) -> Result<Option<RemoteInvitation>, Error> {
    match client.create_invitation(request).await {
        Ok(inv) => Ok(Some(inv)),
        Err(confluent::Error::AlreadyExists(_)) if *conflicts == 0 => {
            *conflicts += 1;
            remote.by_email = Some(look_up(client, &request.email).await?);
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The invitation with this id from the credential's snapshot, or, when the snapshot does not
/// hold it (created since, or removed out of band) or cannot be refreshed (the list failed), from
/// a single GET, which the credential's rate limiter paces like every call.
async fn observe(ctx: &Context, client: &confluent::Client, id: &str) -> Result<ById, Error> {
    match ctx.snapshots.fresh(client, |s| s.get(id)).await {
        Ok(Some(inv)) if !status::pending_past_expiry(&inv, jiff::Timestamp::now()) => {
            Ok(ById::Found(inv))
        }
        // A snapshot taken before expiresAt still says SENT: the wake-up at expiry asks again.
        Ok(_) => read(client, id).await,
        Err(e) if e.is_transient() => {
            tracing::debug!(error = %e, "no fresh snapshot; reading the invitation by id");
            read(client, id).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Reads an invitation by id; 404 (and a 403 that does not blame the key) means gone.
pub(super) async fn read(client: &confluent::Client, id: &str) -> Result<ById, Error> {
    match client.get_invitation(id).await {
        Ok(inv) => Ok(ById::Found(inv)),
        Err(confluent::Error::NotFound(_)) => Ok(ById::Gone),
        Err(e) => Err(e.into()),
    }
}

/// Lists the invitations for an email.
pub(super) async fn look_up(
    client: &confluent::Client,
    email: &str,
) -> Result<Vec<RemoteInvitation>, Error> {
    Ok(client.list_invitations(&ListFilter::email(email)).await?)
}

async fn succeeded(
    ctx: &Context,
    obj: &Invitation,
    inv: &RemoteInvitation,
    event: Option<(&'static str, String)>,
) -> Result<Action, Error> {
    let now = jiff::Timestamp::now();
    let prev = obj.status.as_ref();
    let next = status::next_status(prev, &Outcome::Remote(inv), obj.metadata.generation, now);
    report::write_status(ctx, obj, &next).await?;
    ctx.forget_failures(obj);
    if let Some((reason, note)) = event {
        report::event(ctx, obj, false, reason, &note).await;
    } else if prev.and_then(|p| p.phase.as_deref()) != next.phase.as_deref()
        && let Some(ready) = next.ready()
    {
        let warning = ready.status == "False";
        report::event(ctx, obj, warning, &ready.reason, &ready.message).await;
    }
    // The sweeper compares every resource with each fresh snapshot: no timer per resource,
    // except for an invitation that expires before the next resync.
    Ok(status::next_check(&next, now, ctx.settings.resync)
        .map_or_else(Action::await_change, Action::requeue))
}

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
async fn transient(ctx: &Context, obj: &Invitation, e: &confluent::Error) -> Result<Action, Error> {
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
