//! The Apply stage: read the remote side as the planner asks, act on its one terminal action,
//! then write status and Events. Confluent refusals and credential problems end here, explained
//! in status; only Kubernetes failures escape to the error policy.

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;

use super::context::Context;
use super::drive::{self, Driven, Reads, Source, Stage};
use super::email_claims::{EmailClaims, Holding};
use super::error::Error;
use super::role_bindings;
use super::{claims, preview, report};
use crate::invitation::conclusion::{self, Ending};
use crate::invitation::ownership::Scope;
use crate::invitation::planner::{self, Apply, CreateCause, Remote, SpecRefusal, Step};
use crate::invitation::resource::Invitation;
use crate::invitation_policy::decide as policy;
use crate::invitation_policy::resource::InvitationPolicy;
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

/// Reconciles a live (not deleting) Invitation: reads and acts, concludes, then performs the
/// conclusion.
pub async fn apply(
    invitation: Arc<Invitation>,
    object: &ObjectRef<Invitation>,
    ctx: &Context,
) -> Result<Action, Error> {
    let ending = act(&invitation, object, ctx).await?;
    let conclusion = conclusion::of(
        ending,
        invitation.status.as_ref(),
        invitation.metadata.generation,
        jiff::Timestamp::now(),
        ctx.settings.resync,
    );
    report::conclude(ctx, &invitation, object, conclusion).await
}

/// Reads, acts on Confluent, and says how it ended.
async fn act(
    invitation: &Invitation,
    object: &ObjectRef<Invitation>,
    ctx: &Context,
) -> Result<Ending, Error> {
    let ns = invitation.namespace().ok_or(Error::Unnamed)?;
    // The planner's first answer needs nothing remote: a refusal of the spec comes before
    // credentials, so nothing is sent for a bad spec.
    let first = planner::plan(
        planner::Resource::of(invitation, &ctx.settings.allowed_email_domains),
        &Remote::default(),
    );
    if let Step::Do(Apply::Refuse(r)) = first {
        return Ok(Ending::refused(r.reason(), r.message().to_owned()));
    }
    // What the namespace's policies forbid is refused before credentials too: nothing is
    // sent for it, not even a look-up.
    let applying = ctx.policies.applying(&ns);
    let applying: Vec<&InvitationPolicy> = applying.iter().map(AsRef::as_ref).collect();
    if let Err(refusal) = policy::admit(&applying, ctx.settings.require_policy, &invitation.spec) {
        return Ok(Ending::refused(refusal.reason, refusal.message));
    }
    let client = match ctx.client_of(invitation, &ns).await {
        Ok(c) => c,
        // includes a Secret the operator may not read (RBAC): said in status, retried slowly
        Err(e) => return Ok(Ending::refused(e.reason(), e.to_string())),
    };
    ctx.remember_owner(object, &client);
    super::credentials_in_use::hold(ctx, invitation).await;
    // One owner per email per organization: the others touch nothing in Confluent, and nobody
    // acts while that cannot be told (a list needed to learn an organization failed).
    let owner = match claims::owner_other_than(ctx, invitation, &client).await {
        Ok(owner) => owner,
        Err(e) => return Ok(Ending::Transient(e)),
    };
    if let Some(owner) = owner {
        let message = format!(
            "{owner} claims {} in the same Confluent organization and is older: it owns the invitation, and this Invitation changes nothing in Confluent Cloud until {owner} is deleted",
            invitation.spec.email
        );
        return Ok(Ending::refused(reason::EMAIL_CONFLICT, message));
    }
    // Across installations the claim every one of them sees decides, and is held before any
    // write for the email.
    let claimed = match claim_email(ctx, invitation, &client).await {
        Ok(claimed) => claimed,
        Err(ending) => return Ok(ending),
    };
    // After a failure (maybe a create whose response was lost) the look-up must be fresh: the
    // snapshot may predate that create.
    let fresh_lookup = ctx.failures_so_far(object) > 0;
    let reads = Reads {
        ctx,
        client: &client,
        email: &invitation.spec.email,
        gets: if invitation.spec_changed() {
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
        ctx,
        invitation: planner::Resource::of(invitation, &ctx.settings.allowed_email_domains),
        client: &client,
        dry_run: ctx.settings.dry_run,
        fresh_lookup,
        created: invitation.metadata.creation_timestamp.as_ref().map(|t| t.0),
        conflicts: 0,
    };
    match drive::drive(&mut stage, &reads, first).await {
        Ok(Driven::Done(Ended::Remote(inv, event))) => {
            ctx.confluent.snapshots.record(&client, &inv);
            if let Some(org) = inv
                .resource_name()
                .and_then(confluent_client::role_bindings::organization_of)
            {
                ctx.confluent.learn_organization(&client.identity(), org);
                // held under the credential while the organization was unknown: held under the
                // organization now, before any role binding is written, for claimants of other
                // credentials to find
                if let (Some(claims), Some(held @ Scope::Credential(_))) =
                    (&ctx.email_claims, &claimed)
                {
                    let under = Scope::Organization(org.to_owned());
                    if let Err(ending) = hold_under(ctx, claims, invitation, &under).await {
                        return Ok(ending);
                    }
                    if !ctx.settings.dry_run
                        && let Err(e) = claims.release_superseded(invitation, held).await
                    {
                        // (released with the Invitation's cleanup otherwise)
                        tracing::warn!(error = %e, "claim under the credential's identity not released");
                    }
                }
            }
            let bindings =
                role_bindings::apply(ctx, invitation, object, &client, (&inv, &applying)).await?;
            Ok(Ending::Stands {
                invitation: inv,
                event,
                bindings,
            })
        }
        Ok(Driven::Done(Ended::Refused(r))) => {
            Ok(Ending::refused(r.reason(), r.message().to_owned()))
        }
        Ok(Driven::Done(Ended::Held(would))) => Ok(preview::held(invitation, ctx, would)),
        Ok(Driven::AwaitingList) => {
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
            Ok(Ending::Waiting(spread.delay(0, None)))
        }
        Err(Error::Confluent(e)) if e.is_transient() => Ok(Ending::Transient(e)),
        Err(Error::Confluent(e)) => Ok(Ending::refused(e.reason(), e.detail())),
        Err(e) => Err(e),
    }
}

/// With `--claims-namespace`: holds the email's claim where `invitation` acts, and says under
/// which scope (`None`: no claims are kept); else how the reconcile ends (another holds it,
/// or the claim cannot be read or written).
async fn claim_email(
    ctx: &Context,
    invitation: &Invitation,
    client: &confluent_client::Client,
) -> Result<Option<Scope>, Ending> {
    let Some(claims) = &ctx.email_claims else {
        return Ok(None);
    };
    let scope = claims::scope_with(ctx, invitation, client)
        .await
        .map_err(Ending::Transient)?;
    hold_under(ctx, claims, invitation, &scope).await?;
    Ok(Some(scope))
}

async fn hold_under(
    ctx: &Context,
    claims: &EmailClaims,
    invitation: &Invitation,
    scope: &Scope,
) -> Result<(), Ending> {
    let held = claims
        .hold(
            &ctx.kube.client,
            &ctx.store,
            &ctx.metrics,
            invitation,
            scope,
            ctx.settings.dry_run,
        )
        .await;
    match held {
        Ok(Holding::Held) => Ok(()),
        Ok(Holding::Taken(message)) => Err(Ending::refused(reason::EMAIL_CONFLICT, message)),
        Err(e) => Err(Ending::refused(reason::CLAIM_UNAVAILABLE, e.to_string())),
    }
}

/// The Apply stage's state across the steps of one reconcile.
struct ApplyStage<'a> {
    ctx: &'a Context,
    invitation: planner::Resource<'a>,
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
        planner::plan(self.invitation, remote)
    }

    async fn act(&mut self, act: Apply, remote: &mut Remote) -> Result<Option<Ended>, Error> {
        let email = &self.invitation.spec.email;
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
                remote.by_email =
                    Some(drive::look_up(self.ctx, self.client, &request.email).await?);
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }
}
