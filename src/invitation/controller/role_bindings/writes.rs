//! The writes of the bindings, as they run: creates and deletes, each settled into the
//! ledger and reported.

use kube::runtime::reflector::ObjectRef;

use super::super::context::Context;
use super::super::report;
use crate::invitation::resource::Invitation;
use crate::reason;
use crate::role_bindings::{DeleteCause, Done, Key, Plan, Step};
use confluent_client::role_bindings::{CreateRoleBinding, RemoteRoleBinding};

/// The writes of one Apply, as they run.
pub(super) struct Run<'a> {
    pub(super) ctx: &'a Context,
    pub(super) invitation: &'a Invitation,
    pub(super) object: &'a ObjectRef<Invitation>,
    pub(super) client: &'a confluent_client::Client,
    /// A failure that stops the writes still to come (a 429, refused credentials): they wait
    /// for the next resync, recorded as they were.
    pub(super) stopped: Option<confluent_client::Error>,
    /// A transient failure to retry after.
    pub(super) retry: Option<confluent_client::Error>,
}

/// How a failed create is settled: whether it may have been executed.
pub(super) fn create_failed(e: &confluent_client::Error) -> Done {
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
pub(super) fn stops(e: &confluent_client::Error) -> bool {
    matches!(
        e,
        confluent_client::Error::RateLimited { .. } | confluent_client::Error::Unauthenticated(_)
    )
}

impl Run<'_> {
    pub(super) async fn step(&mut self, plan: &mut Plan, step: Step) {
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
                if let Err(e) =
                    delete_entry(ctx, self.client, invitation, plan, entry, &id, cause).await
                {
                    // a delete refused for good still leaves access that must go: retried
                    self.failed(e, true);
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

/// Deletes the binding `id` of ledger entry `entry`, settles the entry in `plan` and reports
/// it; a failure leaves the entry recorded, to be tried again.
pub(super) async fn delete_entry(
    ctx: &Context,
    client: &confluent_client::Client,
    invitation: &Invitation,
    plan: &mut Plan,
    entry: usize,
    id: &str,
    cause: DeleteCause,
) -> Result<(), confluent_client::Error> {
    let describes = plan
        .ledger
        .get(entry)
        .and_then(|e| Key::of_entry(e, None))
        .map(|k| describe(&k, cause))
        .unwrap_or_default();
    match delete(ctx, client, id).await {
        Ok(()) => {
            tracing::info!(binding = %id, what = %describes, ?cause, "role binding deleted");
            plan.settle(entry, Done::Deleted);
            let (why, note) = deleted_note(id, &describes, cause, invitation);
            report::distinct_event(ctx, invitation, false, why, &note).await;
            Ok(())
        }
        Err(e) => {
            tracing::warn!(binding = %id, what = %describes, error = %e, "role binding not deleted; it stays recorded and is tried again");
            plan.settle(entry, Done::NotDeleted(e.detail()));
            Err(e)
        }
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
