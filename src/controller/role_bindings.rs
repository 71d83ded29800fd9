//! The role bindings an Invitation lists (`spec.roleBindings`), in three places of the
//! controller: after the invitation stands (Apply: observe, create, adopt, delete), when the
//! resource is deleted (Cleanup, per deletion policy) and once per resync (the sweeper wakes the
//! Invitations whose bindings drifted). The decisions are [`crate::role_bindings`]'; this
//! module lists, calls and reports.

use kube::runtime::reflector::{ObjectRef, Store};

use super::context::{Context, CredentialUse};
use super::error::Error;
use super::report;
use crate::crd::{Invitation, RoleBindingState, RoleBindingStatus};
use crate::ownership::organization_of;
use crate::reason;
use crate::role_bindings::{
    self as decide, Created, DeleteCause, Demand, Observed, Plan, Step, Wanted,
};
use crate::status::Phase;
use confluent_client::model::RemoteInvitation;
use confluent_client::role_bindings::{
    CreateRoleBinding, RemoteRoleBinding, RoleBindingFilter, user_principal,
};

/// Past this many distinct scopes per credential, one organization-wide list replaces the
/// lists per scope (it costs its pages once, whatever the scopes).
const MAX_SCOPE_LISTS: usize = 16;

/// What the bindings of one Apply came to.
pub(super) struct Applied {
    /// `status.roleBindings`.
    pub(super) entries: Vec<RoleBindingStatus>,
    /// A transient failure (429, 5xx, network, a delete that did not go through): try again
    /// at the next resync.
    pub(super) retry: Option<confluent_client::Error>,
}

/// Whether an object has anything to do with bindings: listed, exclusive, or recorded.
fn concerned(obj: &Invitation) -> bool {
    !obj.spec.role_bindings.is_empty()
        || obj.spec.exclusive_role_bindings
        || obj
            .status
            .as_ref()
            .is_some_and(|s| !s.role_bindings.is_empty())
}

fn recorded(obj: &Invitation) -> &[RoleBindingStatus] {
    obj.status
        .as_ref()
        .map(|s| s.role_bindings.as_slice())
        .unwrap_or_default()
}

/// The lists that show an object's bindings: one per scope its items bind at, or the
/// organization-wide one (exclusive, or too many scopes). Empty when nothing needs a list.
fn lists_for(
    credential: u64,
    organization: Option<&str>,
    wanted: &[Wanted],
    exclusive: bool,
) -> Vec<RoleBindingFilter> {
    let crn_patterns = decide::crn_patterns(wanted);
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

/// Whether `filters` is the organization-wide list, which alone shows every binding of a user.
fn organization_wide(filters: &[RoleBindingFilter], organization: Option<&str>) -> bool {
    organization.is_some_and(|org| {
        filters == [RoleBindingFilter::nested(&decide::organization_crn(org))].as_slice()
    })
}

/// The bindings step of Apply, once the remote invitation stands as `inv`. `None` when the
/// object lists, excludes and records no binding: nothing is read for it. `recovering`: the
/// object's last reconcile failed, maybe a create whose answer was lost after the held lists
/// were taken: each create is preceded by an exact look-up of its binding (one small call, not
/// a new list of the whole scope), since a duplicate's `409` is declared but not proven.
pub(super) async fn apply(
    ctx: &Context,
    obj: &Invitation,
    client: &confluent_client::Client,
    inv: &RemoteInvitation,
    recovering: bool,
) -> Option<Applied> {
    if !concerned(obj) {
        return None;
    }
    let recorded = recorded(obj);
    // Bindings are for a standing invitation (pending or accepted): an expired or deactivated
    // one keeps what status says until it stands again.
    if !Phase::of(inv.status.as_ref()).stands() {
        return Some(Applied {
            entries: recorded.to_vec(),
            retry: None,
        });
    }
    let organization = inv.resource_name().and_then(organization_of);
    let items = &obj.spec.role_bindings;
    let Some(user_id) = inv.user_id() else {
        return Some(Applied {
            entries: decide::waiting_for_user(items, organization),
            retry: None,
        });
    };
    let wanted = decide::wanted(items, organization, user_id);
    let retry_refused = obj.spec_changed();
    let recorded_user = obj.status.as_ref().and_then(|s| s.user_id.as_deref());
    let (own, previous_users) = decide::of_current_user(recorded, recorded_user, user_id);
    let invitee = Invitee {
        organization,
        user_id,
        wanted: &wanted,
    };
    let plan = match invitee.plan(ctx, client, obj, &own, retry_refused).await {
        Ok(plan) => plan,
        Err(e) if e.is_transient() => {
            return Some(Applied {
                entries: pending_after(&wanted, recorded, &e),
                retry: Some(e),
            });
        }
        // the list itself refused (e.g. a credential that may not read bindings): every item
        // says so; nothing is created blind
        Err(e) => {
            return Some(Applied {
                entries: refused_by(&wanted, &e),
                retry: None,
            });
        }
    };
    let mut run = Run {
        ctx,
        obj,
        client,
        entries: plan.entries,
        retry: None,
        recovering,
    };
    for step in plan.steps.into_iter().chain(previous_users) {
        if run.retry.is_some() {
            break; // a 429 or an outage: the rest waits for the next resync
        }
        run.step(step, recorded).await;
    }
    Some(Applied {
        entries: run.entries,
        retry: run.retry,
    })
}

/// An object's invitee and wanted set, to plan from the credential's held lists: what Apply and
/// the sweep's comparison share.
struct Invitee<'a> {
    organization: Option<&'a str>,
    user_id: &'a str,
    wanted: &'a [Wanted],
}

impl Invitee<'_> {
    /// The plan from the lists that show the invitee's bindings (held ones are read without a
    /// call), against `recorded`.
    async fn plan(
        &self,
        ctx: &Context,
        client: &confluent_client::Client,
        obj: &Invitation,
        recorded: &[RoleBindingStatus],
        retry_refused: bool,
    ) -> Result<Plan, confluent_client::Error> {
        let exclusive = obj.spec.exclusive_role_bindings && self.organization.is_some();
        let filters = lists_for(client.key(), self.organization, self.wanted, exclusive);
        let bindings = ctx
            .role_binding_lists
            .look(client, &filters, &user_principal(self.user_id))
            .await?;
        Ok(decide::plan(
            self.user_id,
            self.wanted,
            Observed {
                bindings: &bindings,
                organization_wide: organization_wide(&filters, self.organization),
            },
            recorded,
            exclusive,
            &ctx.settings.allowed_roles,
            retry_refused,
        ))
    }
}

/// Every wanted item `Pending` with the failure's words (its binding as recorded, if any).
fn pending_after(
    wanted: &[Wanted],
    recorded: &[RoleBindingStatus],
    e: &confluent_client::Error,
) -> Vec<RoleBindingStatus> {
    let mut entries: Vec<RoleBindingStatus> = wanted
        .iter()
        .map(|w| {
            let pending = w.entry(
                RoleBindingState::Pending,
                None,
                Some(format!("not listed yet: {}", e.detail())),
            );
            recorded
                .iter()
                .find(|r| {
                    r.role_name == pending.role_name
                        && confluent_client::role_bindings::same_crn(
                            &r.crn_pattern,
                            &pending.crn_pattern,
                        )
                })
                .cloned()
                .unwrap_or(pending)
        })
        .collect();
    // recorded bindings no longer wanted stay recorded until they are deleted
    for r in recorded {
        if r.id.is_some() && !entries.iter().any(|e| e.id == r.id) {
            entries.push(r.clone());
        }
    }
    entries
}

/// Every wanted item `Refused` with Confluent's words.
fn refused_by(wanted: &[Wanted], e: &confluent_client::Error) -> Vec<RoleBindingStatus> {
    wanted
        .iter()
        .map(|w| {
            w.entry(
                RoleBindingState::Refused,
                None,
                Some(format!("listing role bindings was refused: {}", e.detail())),
            )
        })
        .collect()
}

/// The steps of one Apply, as they run.
struct Run<'a> {
    ctx: &'a Context,
    obj: &'a Invitation,
    client: &'a confluent_client::Client,
    entries: Vec<RoleBindingStatus>,
    retry: Option<confluent_client::Error>,
    /// Look each binding up before creating it (see [`apply`]).
    recovering: bool,
}

impl Run<'_> {
    async fn step(&mut self, step: Step, recorded: &[RoleBindingStatus]) {
        let (ctx, obj) = (self.ctx, self.obj);
        if ctx.settings.dry_run {
            return self.would(step).await;
        }
        match step {
            Step::Adopt { index, id } => {
                let Some(entry) = self.entries.get(index) else {
                    return;
                };
                let note = format!(
                    "Role binding {id} ({} on {}) already grants what spec.roleBindings lists; it is this Invitation's now",
                    entry.role_name, entry.crn_pattern
                );
                report::distinct_event(ctx, obj, false, reason::ROLE_BINDING_ADOPTED, &note).await;
            }
            Step::Create { index, request } => {
                let found = if self.recovering {
                    self.client
                        .find_role_binding(&request)
                        .await
                        .map(|b| b.map(|b| (b, reason::ROLE_BINDING_ADOPTED)))
                } else {
                    Ok(None)
                };
                let created = match found {
                    Ok(Some(adopted)) => Ok(adopted),
                    Err(e) => Err(e),
                    Ok(None) => self.create(&request).await,
                };
                let Some(entry) = self.entries.get_mut(index) else {
                    return;
                };
                match created {
                    Ok((b, why)) => {
                        ctx.role_binding_lists.record(self.client.key(), &b);
                        let id = b.id.clone().unwrap_or_default();
                        tracing::info!(binding = %id, role = %request.role_name, crn = %request.crn_pattern, principal = %request.principal, reason = why, "role binding in place");
                        *entry = decide::settle(entry, Created::Bound(id.clone()));
                        let note = format!(
                            "Granted {} on {} to {} (role binding {id})",
                            request.role_name, request.crn_pattern, request.principal
                        );
                        report::distinct_event(ctx, obj, false, why, &note).await;
                    }
                    Err(e)
                        if e.is_transient()
                            || matches!(e, confluent_client::Error::AlreadyExists(_)) =>
                    {
                        *entry = decide::settle(entry, Created::Failed(e.detail()));
                        self.retry = Some(e);
                    }
                    Err(e) => {
                        tracing::warn!(role = %request.role_name, crn = %request.crn_pattern, error = %e, "role binding refused");
                        *entry = decide::settle(entry, Created::Refused(e.detail()));
                    }
                }
            }
            Step::Delete {
                id,
                describes,
                cause,
            } => match delete(ctx, self.client, &id).await {
                Ok(()) => {
                    tracing::info!(binding = %id, what = %describes, ?cause, "role binding deleted");
                    let (why, note) = match cause {
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
                        DeleteCause::RemovedFromSpec | DeleteCause::Cleanup => (
                            reason::ROLE_BINDING_DELETED,
                            format!(
                                "Deleted role binding {id} ({describes}): no longer in spec.roleBindings"
                            ),
                        ),
                    };
                    report::distinct_event(ctx, obj, false, why, &note).await;
                }
                Err(e) => {
                    tracing::warn!(binding = %id, error = %e, "role binding not deleted; trying again");
                    // a binding of this resource stays recorded until it is gone
                    if let Some(r) = recorded.iter().find(|r| r.id.as_deref() == Some(&id))
                        && !self.entries.iter().any(|e| e.id.as_deref() == Some(&id))
                    {
                        let mut kept = r.clone();
                        kept.message = Some(format!("to be deleted: {}", e.detail()));
                        if cause == DeleteCause::PreviousUser {
                            // status.userId names the new user from now on: the entry says whose
                            // it is, or the next reconcile would take it for the new user's
                            let recorded_user =
                                obj.status.as_ref().and_then(|s| s.user_id.as_deref());
                            kept.principal = decide::holder(r, recorded_user);
                        }
                        self.entries.push(kept);
                    }
                    self.retry = Some(e);
                }
            },
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

    /// `--dry-run`: says what a step would do, does nothing remote.
    async fn would(&mut self, step: Step) {
        let (ctx, obj) = (self.ctx, self.obj);
        let (action, note) = match step {
            Step::Adopt { .. } => return,
            Step::Create { index, request } => {
                if let Some(entry) = self.entries.get_mut(index) {
                    entry.message = Some("dry run: would be created".to_owned());
                }
                (
                    reason::WOULD_CREATE_ROLE_BINDING,
                    format!(
                        "Would grant {} on {} to {}",
                        request.role_name, request.crn_pattern, request.principal
                    ),
                )
            }
            Step::Delete { id, describes, .. } => (
                reason::WOULD_DELETE_ROLE_BINDING,
                format!("Would delete role binding {id} ({describes})"),
            ),
        };
        ctx.metrics.dry_run(action);
        report::distinct_event(ctx, obj, false, action, &note).await;
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
            ctx.role_binding_lists.forget(client.key(), id);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Cleanup: deletes the bindings the deletion policy removes, before the invitation goes.
/// `successor`: the Invitation that takes the email over, whose listed bindings stay.
pub(super) async fn clean_up(
    ctx: &Context,
    obj: &Invitation,
    client: &confluent_client::Client,
    successor: Option<&Invitation>,
) -> Result<(), Error> {
    let recorded = recorded(obj);
    if recorded.is_empty() {
        return Ok(());
    }
    let status = obj.status.as_ref();
    let accepted = Phase::shown(status) == Phase::Accepted;
    let loser = status
        .and_then(|s| s.ready())
        .is_some_and(|c| c.reason == reason::EMAIL_CONFLICT);
    let successor_wanted = successor.map(|next| {
        let organization = status
            .and_then(|s| s.resource_name.as_deref())
            .and_then(organization_of);
        let user_id = status
            .and_then(|s| s.user_id.as_deref())
            .unwrap_or_default();
        decide::wanted(&next.spec.role_bindings, organization, user_id)
    });
    let steps = decide::plan_cleanup(
        obj.spec.deletion_policy,
        accepted,
        loser,
        recorded,
        successor_wanted.as_deref(),
    );
    for step in steps {
        let Step::Delete { id, describes, .. } = step else {
            continue;
        };
        match delete(ctx, client, &id).await {
            Ok(()) => {
                tracing::info!(binding = %id, what = %describes, policy = ?obj.spec.deletion_policy, "role binding deleted with the Invitation");
                let note = format!(
                    "Deleted role binding {id} ({describes}): the Invitation is deleted (deletionPolicy {:?})",
                    obj.spec.deletion_policy
                );
                report::distinct_event(ctx, obj, false, reason::ROLE_BINDING_DELETED, &note).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The live object `key` (`namespace/name`) names, from the watch cache.
pub(super) fn named(ctx: &Context, key: &str) -> Option<std::sync::Arc<Invitation>> {
    let (namespace, name) = key.split_once('/')?;
    ctx.store
        .get()?
        .get(&ObjectRef::new(name).within(namespace))
}

/// Once per resync, after the invitation snapshots: lists again, per credential, the scopes
/// every concerned Invitation needs (each list once), and wakes the Invitations whose bindings
/// differ from what their status records (removed or added out of band, a pending create, a
/// binding to delete). Never a call per Invitation. Credentials whose invitation list just
/// failed (`unlisted`: 429, an outage) are left alone until it succeeds, as their invitations are.
pub(super) async fn sweep(
    ctx: &Context,
    store: &Store<Invitation>,
    unlisted: &[u64],
    mut wake: impl FnMut(ObjectRef<Invitation>) -> bool,
) {
    // the objects to compare, with their credential, organization and wanted set
    let mut watched = Vec::new();
    let mut demands = Vec::new();
    for obj in store.state() {
        if !concerned(&obj) || obj.paused() || obj.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(status) = obj.status.as_ref() else {
            continue;
        };
        let standing = status
            .ready()
            .is_some_and(|c| c.reason != reason::EMAIL_CONFLICT)
            && Phase::shown(Some(status)).stands();
        let (Some(user_id), Some(used)) = (status.user_id.clone(), ctx.owner(&obj)) else {
            continue;
        };
        if !standing {
            continue;
        }
        let organization = ctx.organization_of(&used.identity).or_else(|| {
            status
                .resource_name
                .as_deref()
                .and_then(organization_of)
                .map(str::to_owned)
        });
        let wanted = decide::wanted(&obj.spec.role_bindings, organization.as_deref(), &user_id);
        if let Some(org) = &organization {
            demands.push(Demand {
                credential: used.client,
                organization: org.clone(),
                crn_patterns: decide::crn_patterns(&wanted),
                exclusive: obj.spec.exclusive_role_bindings,
            });
        }
        watched.push((obj, used, organization, user_id, wanted));
    }
    let lists = decide::observation_lists(&demands, MAX_SCOPE_LISTS);
    let mut failed: Vec<u64> = unlisted.to_vec();
    for ((credential, _), filters) in &lists {
        if failed.contains(credential) {
            continue;
        }
        let Some(client) = ctx.snapshots.client(*credential) else {
            continue;
        };
        for filter in filters {
            if let Err(e) = ctx.role_binding_lists.refresh(&client, filter).await {
                tracing::warn!(credential = %client.identity(), error = %e, "role-binding list failed; bindings are compared again next resync");
                failed.push(*credential);
                break;
            }
        }
    }
    ctx.role_binding_lists.retain(|credential, filter| {
        lists
            .iter()
            .any(|((c, _), filters)| *c == credential && filters.contains(filter))
    });
    for (obj, used, organization, user_id, wanted) in watched {
        // no organization known yet: nothing was listed for it, and its own reconcile lists
        if organization.is_none() || failed.contains(&used.client) {
            continue;
        }
        if drifted(ctx, &obj, &used, organization.as_deref(), &user_id, &wanted).await
            && !wake(ObjectRef::from(obj.as_ref()))
        {
            return;
        }
    }
}

/// Whether the held lists show something about `obj`'s bindings that its status does not.
async fn drifted(
    ctx: &Context,
    obj: &Invitation,
    used: &CredentialUse,
    organization: Option<&str>,
    user_id: &str,
    wanted: &[Wanted],
) -> bool {
    let Some(client) = ctx.snapshots.client(used.client) else {
        return false;
    };
    let invitee = Invitee {
        organization,
        user_id,
        wanted,
    };
    // the lists were just refreshed: this reads them without a call
    let recorded = recorded(obj);
    let Ok(plan) = invitee.plan(ctx, &client, obj, recorded, false).await else {
        return false;
    };
    !plan.steps.is_empty() || plan.entries != recorded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::RoleBinding;

    const ORG: &str = "o-1";

    fn item(role: &str, crn: &str) -> RoleBinding {
        RoleBinding {
            role_name: role.into(),
            crn_pattern: crn.into(),
        }
    }

    #[test]
    fn an_object_lists_its_scopes_or_the_whole_organization() {
        let wanted = decide::wanted(
            &[
                item("EnvironmentAdmin", "environment=env-a"),
                item(
                    "DeveloperRead",
                    "environment=env-a/cloud-cluster=lkc-1/kafka=lkc-1/topic=t",
                ),
            ],
            Some(ORG),
            "u-1",
        );
        let scoped = lists_for(7, Some(ORG), &wanted, false);
        assert_eq!(scoped.len(), 2);
        assert!(!organization_wide(&scoped, Some(ORG)));
        let exclusive = lists_for(7, Some(ORG), &wanted, true);
        assert_eq!(
            exclusive,
            vec![RoleBindingFilter::nested(
                "crn://confluent.cloud/organization=o-1"
            )]
        );
        assert!(organization_wide(&exclusive, Some(ORG)));
        // an unknown organization: relative items cannot be listed, absolute ones can
        let absolute = decide::wanted(
            &[item(
                "EnvironmentAdmin",
                "crn://confluent.cloud/organization=o-1/environment=e",
            )],
            None,
            "u-1",
        );
        assert_eq!(lists_for(7, None, &absolute, true).len(), 1);
    }

    #[test]
    fn a_failed_list_keeps_recorded_bindings_and_says_why_the_rest_waits() {
        let wanted = decide::wanted(
            &[item("EnvironmentAdmin", "environment=env-a")],
            Some(ORG),
            "u-1",
        );
        let old = RoleBindingStatus {
            role_name: "DeveloperRead".into(),
            crn_pattern: "crn://confluent.cloud/organization=o-1/environment=env-b".into(),
            id: Some("rb-9".into()),
            state: RoleBindingState::Bound,
            message: None,
            principal: None,
        };
        let e = confluent_client::Error::Network {
            operation: "list_role_bindings",
            message: "timed out".into(),
        };
        let entries = pending_after(&wanted, std::slice::from_ref(&old), &e);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].state, RoleBindingState::Pending);
        assert!(
            entries[0]
                .message
                .as_deref()
                .unwrap_or_default()
                .contains("timed out")
        );
        // the binding no longer listed stays recorded, so it is still deleted later
        assert_eq!(entries[1], old);
    }
}
