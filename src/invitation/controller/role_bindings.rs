//! The role bindings an Invitation lists (`spec.roleBindings`), in three places of the
//! controller: after the invitation stands (Apply), when the resource is deleted (Cleanup, per
//! deletion policy) and once per resync (the sweeper wakes the Invitations whose bindings
//! drifted). The decisions are [`crate::role_bindings`]'; this module observes (held lists, a
//! list where none is held, the exact reads the decisions ask for), records the ledger before a
//! create is sent, performs the writes, settles each into the ledger and reports.

use kube::runtime::reflector::{ObjectRef, Store};

use super::context::{Context, CredentialUse, key};
use super::error::Error;
use super::report;
use crate::invitation::conclusion::{Bindings, Would};
use crate::invitation::resource::Invitation;
use crate::invitation::status::{self, Outcome, Phase};
use crate::reason;
use crate::role_bindings::resource::{RoleBindingState, RoleBindingStatus};
use crate::role_bindings::{
    self as decide, Cleanup, DeleteCause, Demand, Desired, Done, Key, Live, Observed, OnDisallowed,
    Plan, Read, Removal, Step,
};
use confluent_client::model::RemoteInvitation;
use confluent_client::role_bindings::organization_of;
use confluent_client::role_bindings::{
    CreateRoleBinding, RemoteRoleBinding, RoleBindingFilter, user_principal,
};

/// Past this many distinct scopes per credential, one organization-wide list replaces the
/// lists per scope (it costs its pages once, whatever the scopes).
const MAX_SCOPE_LISTS: usize = 16;

/// Rounds of exact reads one reconcile makes at most: the second answers what the first showed
/// (an id that turned out to be another binding's is looked up by its key).
const READ_ROUNDS: usize = 2;

/// Whether an object has anything to do with bindings: listed, exclusive, or recorded.
fn concerned(invitation: &Invitation) -> bool {
    !invitation.spec.role_bindings.is_empty()
        || invitation.spec.exclusive_role_bindings
        || !recorded(invitation).is_empty()
}

pub(super) fn recorded(invitation: &Invitation) -> &[RoleBindingStatus] {
    invitation
        .status
        .as_ref()
        .map(|s| s.role_bindings.as_slice())
        .unwrap_or_default()
}

fn recorded_user(invitation: &Invitation) -> Option<&str> {
    invitation
        .status
        .as_ref()
        .and_then(|s| s.user_id.as_deref())
}

/// The lists that show an object's bindings: one per scope its items bind at, or the
/// organization-wide one (exclusive, or too many scopes). Empty when nothing needs a list.
fn lists_for(
    credential: u64,
    organization: Option<&str>,
    desired: &[Desired],
    exclusive: bool,
) -> Vec<RoleBindingFilter> {
    let crn_patterns = decide::crn_patterns(desired);
    let Some(org) = organization else {
        // no organization known: the absolute patterns' own scopes, and no exclusive sweep
        return crn_patterns
            .into_iter()
            .map(RoleBindingFilter::scope)
            .collect();
    };
    let demand = Demand {
        credential,
        organization: org.to_owned(),
        crn_patterns,
        exclusive,
    };
    decide::observation_lists(&[demand], MAX_SCOPE_LISTS)
        .into_values()
        .flatten()
        .collect()
}

/// What one object asks of its bindings, owned, so that [`Live`] can borrow it.
struct Ask {
    organization: Option<String>,
    user_id: Option<String>,
    desired: Vec<Desired>,
    exclusive: bool,
    refused_recently: std::collections::BTreeSet<Key>,
}

impl Ask {
    fn new(
        ctx: &Context,
        invitation: &Invitation,
        object: &ObjectRef<Invitation>,
        organization: Option<&str>,
        user_id: Option<&str>,
    ) -> Self {
        let desired = decide::desired(
            &invitation.spec.role_bindings,
            organization,
            user_id.unwrap_or_default(),
            ctx.settings.allowed_roles.as_deref(),
        );
        Self {
            organization: organization.map(str::to_owned),
            user_id: user_id.map(str::to_owned),
            desired,
            exclusive: invitation.spec.exclusive_role_bindings && organization.is_some(),
            refused_recently: ctx.refused_recently(object),
        }
    }

    fn live<'a>(&'a self, ctx: &'a Context, invitation: &'a Invitation) -> Live<'a> {
        Live {
            invitee: self.user_id.as_deref(),
            recorded_user: recorded_user(invitation),
            organization: self.organization.as_deref(),
            desired: &self.desired,
            exclusive: self.exclusive,
            allowed_roles: ctx.settings.allowed_roles.as_deref(),
            on_disallowed: OnDisallowed::Keep,
            refused_recently: &self.refused_recently,
        }
    }

    /// The lists that show the invitee's desired bindings.
    fn filters(&self, credential: u64) -> Vec<RoleBindingFilter> {
        lists_for(
            credential,
            self.organization.as_deref(),
            &self.desired,
            self.exclusive,
        )
    }
}

/// Adds to `observed` what the held lists of `credential` show of every principal the ledger
/// names (no call): whose an id is, for bindings no desired scope covers.
fn add_held(
    ctx: &Context,
    credential: u64,
    ledger: &[RoleBindingStatus],
    recorded_user: Option<&str>,
    observed: &mut Observed,
) {
    let mut principals: Vec<String> = ledger
        .iter()
        .filter_map(|e| Key::of_entry(e, recorded_user).map(|k| k.principal))
        .collect();
    principals.sort();
    principals.dedup();
    for principal in principals {
        for (filter, share) in ctx
            .confluent
            .role_binding_lists
            .held(credential, &principal)
        {
            observed.list(&principal, filter, Ok(share));
        }
    }
}

/// One exact read.
async fn read(
    client: &confluent_client::Client,
    read: &Read,
) -> Result<Option<RemoteRoleBinding>, String> {
    let answer = match read {
        Read::ById(id) => match client.get_role_binding(id).await {
            Ok(b) => Ok(Some(b)),
            Err(confluent_client::Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        },
        Read::ByKey(key) => client.find_role_binding(&key.request()).await,
    };
    answer.map_err(|e| e.detail())
}

/// Plans, making the exact reads the plan asks for and planning again with their answers.
async fn planned(
    client: &confluent_client::Client,
    observed: &mut Observed,
    plan: impl Fn(&Observed) -> Plan,
) -> Plan {
    let mut current = plan(observed);
    for _ in 0..READ_ROUNDS {
        let reads: Vec<Read> = std::mem::take(&mut current.reads)
            .into_iter()
            .filter(|r| !observed.has_read(r))
            .collect();
        if reads.is_empty() {
            break;
        }
        for r in reads {
            let answer = read(client, &r).await;
            observed.read(r, answer);
        }
        current = plan(observed);
    }
    current
}

/// The bindings step of Apply, once the remote invitation stands as `inv`. No ledger when the
/// object lists, excludes and records no binding: nothing is read for it. Fails only when the
/// ledger could not be recorded before a create (nothing was sent then).
pub(super) async fn apply(
    ctx: &Context,
    invitation: &Invitation,
    object: &ObjectRef<Invitation>,
    client: &confluent_client::Client,
    inv: &RemoteInvitation,
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
    let ask = Ask::new(ctx, invitation, object, organization, inv.user_id());
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
        add_held(
            ctx,
            client.key(),
            ledger,
            recorded_user(invitation),
            &mut observed,
        );
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
                    .map(|e| format!("{} on {}", e.role_name, e.crn_pattern))
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

/// The writes of one Apply, as they run.
struct Run<'a> {
    ctx: &'a Context,
    invitation: &'a Invitation,
    object: &'a ObjectRef<Invitation>,
    client: &'a confluent_client::Client,
    /// A failure that stops the writes still to come (a 429, refused credentials): they wait
    /// for the next resync, recorded as they were.
    stopped: Option<confluent_client::Error>,
    /// A transient failure to retry after.
    retry: Option<confluent_client::Error>,
}

/// How a failed create is settled: whether it may have been executed.
fn create_failed(e: &confluent_client::Error) -> Done {
    use confluent_client::Error as E;
    match e {
        E::RateLimited { .. } | E::Unauthenticated(_) | E::Config(_) => Done::NotSent(e.detail()),
        E::Server(_) | E::Network { .. } | E::Decode { .. } | E::Unexpected(_) => {
            Done::Unanswered(e.detail())
        }
        // a 409 whose binding an exact look-up did not find
        E::AlreadyExists(_) => Done::Unanswered(e.detail()),
        _ => Done::Refused(e.detail()),
    }
}

/// Whether a failure stops the writes after it: a 429 (the credential's budget is spent: every
/// call waits) or a refused credential. A 5xx or a lost answer concerns its own call: the
/// others still run (a failing revocation does not hold back the invitee's grants, nor the
/// other way round).
fn stops(e: &confluent_client::Error) -> bool {
    matches!(
        e,
        confluent_client::Error::RateLimited { .. } | confluent_client::Error::Unauthenticated(_)
    )
}

impl Run<'_> {
    async fn step(&mut self, plan: &mut Plan, step: Step) {
        let (ctx, invitation) = (self.ctx, self.invitation);
        match step {
            Step::Adopt {
                entry,
                id,
                recovered,
            } => {
                let Some(e) = plan.ledger.get(entry) else {
                    return;
                };
                let note = if recovered {
                    format!(
                        "Found role binding {id} ({} on {}), made by a create whose answer was lost; recorded",
                        e.role_name, e.crn_pattern
                    )
                } else {
                    format!(
                        "Role binding {id} ({} on {}) already grants what spec.roleBindings lists; it is this Invitation's now",
                        e.role_name, e.crn_pattern
                    )
                };
                tracing::info!(binding = %id, role = %e.role_name, crn = %e.crn_pattern, recovered, "role binding adopted");
                report::distinct_event(ctx, invitation, false, reason::ROLE_BINDING_ADOPTED, &note)
                    .await;
            }
            Step::Create { entry, request } => {
                if let Some(e) = &self.stopped {
                    plan.settle(
                        entry,
                        Done::NotSent(format!("not sent yet: {}", e.detail())),
                    );
                    return;
                }
                match self.create(&request).await {
                    Ok((b, why)) => {
                        self.ctx
                            .confluent
                            .role_binding_lists
                            .record(self.client.key(), &b);
                        let id = b.id.clone().unwrap_or_default();
                        tracing::info!(binding = %id, role = %request.role_name, crn = %request.crn_pattern, principal = %request.principal, reason = why, "role binding in place");
                        plan.settle(entry, Done::Created(id.clone()));
                        let note = format!(
                            "Granted {} on {} to {} (role binding {id})",
                            request.role_name, request.crn_pattern, request.principal
                        );
                        report::distinct_event(ctx, invitation, false, why, &note).await;
                    }
                    Err(e) => {
                        let done = create_failed(&e);
                        if matches!(done, Done::Refused(_)) {
                            tracing::warn!(role = %request.role_name, crn = %request.crn_pattern, error = %e, "role binding refused");
                            ctx.binding_refused(self.object, &Key::of_request(&request));
                        } else {
                            tracing::warn!(role = %request.role_name, crn = %request.crn_pattern, error = %e, "role binding not created; trying again");
                        }
                        plan.settle(entry, done);
                        self.failed(e, false);
                    }
                }
            }
            Step::Delete { entry, id, cause } => {
                if let Some(e) = &self.stopped {
                    plan.settle(
                        entry,
                        Done::NotDeleted(format!("not sent yet: {}", e.detail())),
                    );
                    return;
                }
                let describes = plan
                    .ledger
                    .get(entry)
                    .and_then(|e| Key::of_entry(e, None))
                    .map(|k| describe(&k, cause))
                    .unwrap_or_default();
                match delete(ctx, self.client, &id).await {
                    Ok(()) => {
                        tracing::info!(binding = %id, what = %describes, ?cause, "role binding deleted");
                        plan.settle(entry, Done::Deleted);
                        let (why, note) = deleted_note(&id, &describes, cause, invitation);
                        report::distinct_event(ctx, invitation, false, why, &note).await;
                    }
                    Err(e) => {
                        tracing::warn!(binding = %id, what = %describes, error = %e, "role binding not deleted; it stays recorded and is tried again");
                        plan.settle(entry, Done::NotDeleted(e.detail()));
                        // a delete refused for good still leaves access that must go: retried
                        self.failed(e, true);
                    }
                }
            }
        }
    }

    /// Keeps a failure: one that stops the writes after it, else (`retried`, or transient) one
    /// to try again after at the next resync.
    fn failed(&mut self, e: confluent_client::Error, retried: bool) {
        if stops(&e) {
            self.stopped.get_or_insert(e);
        } else if retried || e.is_transient() {
            self.retry.get_or_insert(e);
        }
    }

    /// Creates a binding. A `409`: ours from a create whose answer was lost, or someone
    /// else's: looked up exactly and taken.
    async fn create(
        &self,
        request: &CreateRoleBinding,
    ) -> Result<(RemoteRoleBinding, &'static str), confluent_client::Error> {
        match self.client.create_role_binding(request).await {
            Ok(b) => Ok((b, reason::ROLE_BINDING_CREATED)),
            Err(confluent_client::Error::AlreadyExists(r)) => {
                match self.client.find_role_binding(request).await? {
                    Some(b) => Ok((b, reason::ROLE_BINDING_ADOPTED)),
                    None => Err(confluent_client::Error::AlreadyExists(r)),
                }
            }
            Err(e) => Err(e),
        }
    }
}

/// `Role on crn`, with whose binding it is when that is what the deletion is about.
fn describe(key: &Key, cause: DeleteCause) -> String {
    match cause {
        DeleteCause::PreviousUser => {
            format!("{} of the previous user {}", key.describe(), key.user())
        }
        _ => key.describe(),
    }
}

/// The Event of a deleted binding.
fn deleted_note(
    id: &str,
    describes: &str,
    cause: DeleteCause,
    invitation: &Invitation,
) -> (&'static str, String) {
    match cause {
        DeleteCause::Exclusive => (
            reason::UNLISTED_ROLE_BINDING_DELETED,
            format!(
                "Deleted role binding {id} ({describes}) of the invitee: not in spec.roleBindings, and exclusiveRoleBindings is true"
            ),
        ),
        DeleteCause::PreviousUser => (
            reason::ROLE_BINDING_DELETED,
            format!(
                "Deleted role binding {id} ({describes}): the invitation was sent again and the invitee is a new user"
            ),
        ),
        DeleteCause::RemovedFromSpec => (
            reason::ROLE_BINDING_DELETED,
            format!("Deleted role binding {id} ({describes}): no longer in spec.roleBindings"),
        ),
        DeleteCause::Disallowed => (
            reason::ROLE_BINDING_DELETED,
            format!("Deleted role binding {id} ({describes}): its role is no longer allowed"),
        ),
        DeleteCause::Cleanup => (
            reason::ROLE_BINDING_DELETED,
            format!(
                "Deleted role binding {id} ({describes}): the Invitation is deleted (deletionPolicy {:?})",
                invitation.spec.deletion_policy
            ),
        ),
    }
}

/// Deletes a binding (gone already counts as done: a 404, or the 403 of a missing binding) and
/// forgets it in the held lists.
async fn delete(
    ctx: &Context,
    client: &confluent_client::Client,
    id: &str,
) -> Result<(), confluent_client::Error> {
    match client.delete_role_binding(id).await {
        Ok(()) | Err(confluent_client::Error::NotFound(_)) => {
            ctx.confluent.role_binding_lists.forget(client.key(), id);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Cleanup: what the deletion policy does to the ledger, before the invitation goes.
/// `successor`: the ledger of the Invitation that takes the email over; the bindings it records
/// stay. The client is asked for only when a binding must be read or deleted, so a cleanup that
/// touches none never waits for credentials. Done when no binding the policy removes is left; else an
/// error (the finalizer stays), with the ledger written so status shows what is left.
pub(super) async fn clean_up<F, Fut>(
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
        add_held(
            ctx,
            used.client,
            ledger,
            recorded_user(invitation),
            &mut observed,
        );
    }
    let first = decide::plan_cleanup(&cleanup, ledger, &observed);
    if first.reads.is_empty() && first.steps.is_empty() && !first.removals_outstanding() {
        return Ok(());
    }
    let client = client().await?;
    add_held(
        ctx,
        client.key(),
        ledger,
        recorded_user(invitation),
        &mut observed,
    );
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
        let describes = plan
            .ledger
            .get(entry)
            .and_then(|e| Key::of_entry(e, None))
            .map(|k| describe(&k, cause))
            .unwrap_or_default();
        match delete(ctx, &client, &id).await {
            Ok(()) => {
                tracing::info!(binding = %id, what = %describes, policy = ?invitation.spec.deletion_policy, "role binding deleted with the Invitation");
                plan.settle(entry, Done::Deleted);
                let (why, note) = deleted_note(&id, &describes, cause, invitation);
                report::distinct_event(ctx, invitation, false, why, &note).await;
            }
            Err(e) => {
                plan.settle(entry, Done::NotDeleted(e.detail()));
                failure = Some(e);
            }
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
pub(super) fn removal(invitation: &Invitation, handed_over: bool) -> Removal {
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
pub(super) fn named(ctx: &Context, key: &str) -> Option<std::sync::Arc<Invitation>> {
    let (namespace, name) = key.split_once('/')?;
    ctx.store.get(&ObjectRef::new(name).within(namespace))
}

/// Once per resync, after the invitation snapshots: lists again, per credential, the scopes
/// every concerned Invitation needs (each list once), and wakes the Invitations whose bindings
/// differ from what their ledger records (removed or added out of band, a pending create, a
/// binding to delete, a create to confirm). Never a call per Invitation. A list that fails
/// makes only its own scope unknown: every other Invitation is compared as usual. Credentials
/// whose invitation list just failed (`unlisted`: 429, an outage) are left alone until it
/// succeeds, as their invitations are.
pub(super) async fn sweep(
    ctx: &Context,
    store: &Store<Invitation>,
    unlisted: &[u64],
    mut wake: impl FnMut(ObjectRef<Invitation>) -> bool,
) {
    // the objects to compare, with their credential and what they ask
    let mut watched = Vec::new();
    let mut demands = Vec::new();
    for invitation in store.state() {
        if !concerned(&invitation)
            || invitation.paused()
            || invitation.metadata.deletion_timestamp.is_some()
        {
            continue;
        }
        let Some(status) = invitation.status.as_ref() else {
            continue;
        };
        let standing = status
            .ready()
            .is_some_and(|c| c.reason != reason::EMAIL_CONFLICT)
            && Phase::shown(Some(status)).stands();
        let (Some(user_id), Some(used)) = (status.user_id.clone(), ctx.owner(&key(&invitation)))
        else {
            continue;
        };
        if !standing || unlisted.contains(&used.client) {
            continue;
        }
        let organization = ctx.confluent.organization_of(&used.identity).or_else(|| {
            status
                .resource_name
                .as_deref()
                .and_then(organization_of)
                .map(str::to_owned)
        });
        // no organization known yet: nothing is listed for it, and its own reconcile lists
        let Some(org) = organization else { continue };
        let ask = Ask::new(
            ctx,
            &invitation,
            &key(&invitation),
            Some(&org),
            Some(&user_id),
        );
        demands.push(Demand {
            credential: used.client,
            organization: org,
            crn_patterns: decide::crn_patterns(&ask.desired),
            exclusive: ask.exclusive,
        });
        watched.push((invitation, used, ask));
    }
    let lists = decide::observation_lists(&demands, MAX_SCOPE_LISTS);
    let mut failed: Vec<(u64, RoleBindingFilter, String)> = Vec::new();
    for ((credential, _), filters) in &lists {
        let Some(client) = ctx.confluent.snapshots.client(*credential) else {
            continue;
        };
        for filter in filters {
            if let Err(e) = ctx
                .confluent
                .role_binding_lists
                .refresh(&client, filter)
                .await
            {
                tracing::warn!(credential = %client.identity(), crn = %filter.crn_pattern, error = %e, "role-binding list failed; the bindings at that scope are compared again next resync");
                let stop = e.is_transient();
                failed.push((*credential, filter.clone(), e.detail()));
                if stop {
                    // an outage or a 429: the credential's other lists wait too
                    for rest in filters.iter().filter(|f| *f != filter) {
                        failed.push((*credential, rest.clone(), e.detail()));
                    }
                    break;
                }
            }
        }
    }
    ctx.confluent
        .role_binding_lists
        .retain(|credential, filter| {
            lists
                .iter()
                .any(|((c, _), filters)| *c == credential && filters.contains(filter))
        });
    for (invitation, used, ask) in watched {
        if drifted(ctx, &invitation, &used, &ask, &failed)
            && !wake(ObjectRef::from(invitation.as_ref()))
        {
            return;
        }
    }
}

/// Whether the held lists show something about `invitation`'s bindings that its ledger does not
/// (read without a call; a scope whose list failed this resync is unknown).
fn drifted(
    ctx: &Context,
    invitation: &Invitation,
    used: &CredentialUse,
    ask: &Ask,
    failed: &[(u64, RoleBindingFilter, String)],
) -> bool {
    let Some(user) = ask.user_id.as_deref() else {
        return false;
    };
    let principal = user_principal(user);
    let filters = ask.filters(used.client);
    let mut observed = Observed::default();
    for filter in &filters {
        let failure = failed
            .iter()
            .find(|(c, f, _)| *c == used.client && f == filter);
        match failure {
            Some((_, _, why)) => observed.list(&principal, filter.clone(), Err(why.clone())),
            None => {
                for (f, share) in ctx.confluent.role_binding_lists.look_held(
                    used.client,
                    std::slice::from_ref(filter),
                    &principal,
                ) {
                    observed.list(&principal, f, Ok(share));
                }
            }
        }
    }
    let ledger = recorded(invitation);
    add_held(
        ctx,
        used.client,
        ledger,
        recorded_user(invitation),
        &mut observed,
    );
    let plan = decide::plan(&ask.live(ctx, invitation), ledger, &observed);
    !plan.steps.is_empty() || !plan.reads.is_empty() || plan.ledger != ledger
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role_bindings::resource::RoleBinding;
    use std::time::Duration;

    const ORG: &str = "o-1";

    fn item(role: &str, crn: &str) -> RoleBinding {
        RoleBinding {
            role_name: role.into(),
            crn_pattern: crn.into(),
        }
    }

    #[test]
    fn an_object_lists_its_scopes_or_the_whole_organization() {
        let desired = decide::desired(
            &[
                item("EnvironmentAdmin", "environment=env-a"),
                item(
                    "DeveloperRead",
                    "environment=env-a/cloud-cluster=lkc-1/kafka=lkc-1/topic=t",
                ),
            ],
            Some(ORG),
            "u-1",
            None,
        );
        let scoped = lists_for(7, Some(ORG), &desired, false);
        assert_eq!(scoped.len(), 2);
        let exclusive = lists_for(7, Some(ORG), &desired, true);
        assert_eq!(
            exclusive,
            vec![RoleBindingFilter::nested(
                "crn://confluent.cloud/organization=o-1"
            )]
        );
        // an unknown organization: relative items cannot be listed, absolute ones can
        let absolute = decide::desired(
            &[item(
                "EnvironmentAdmin",
                "crn://confluent.cloud/organization=o-1/environment=e",
            )],
            None,
            "u-1",
            None,
        );
        assert_eq!(lists_for(7, None, &absolute, true).len(), 1);
    }

    #[test]
    fn a_create_is_settled_by_whether_it_may_have_been_executed() {
        use confluent_client::error::ServerRefusal;
        let refusal = ServerRefusal::default();
        let rate_limited = confluent_client::Error::RateLimited {
            retry_after: Duration::from_secs(1),
            request_id: None,
        };
        assert!(matches!(create_failed(&rate_limited), Done::NotSent(_)));
        assert!(stops(&rate_limited));
        assert!(!stops(&confluent_client::Error::Server(refusal.clone())));
        for maybe in [
            confluent_client::Error::Server(refusal.clone()),
            confluent_client::Error::Network {
                operation: "create_role_binding",
                message: "reset".into(),
            },
            confluent_client::Error::AlreadyExists(refusal.clone()),
        ] {
            assert!(
                matches!(create_failed(&maybe), Done::Unanswered(_)),
                "{maybe:?}"
            );
        }
        for refused in [
            confluent_client::Error::Invalid(refusal.clone()),
            confluent_client::Error::Forbidden(refusal.clone()),
        ] {
            assert!(
                matches!(create_failed(&refused), Done::Refused(_)),
                "{refused:?}"
            );
            assert!(!stops(&refused));
        }
    }
}
