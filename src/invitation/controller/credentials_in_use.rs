//! A finalizer the operator keeps on a credentials Secret while Invitations it watches use it,
//! as Crossplane keeps a ProviderConfig "in use": deleting a namespace (or pruning an app) then
//! deletes the Secret last, after every Invitation's cleanup has used it, also when the operator
//! is down meanwhile and cleans up later.
//!
//! Added with a strategic-merge patch (finalizers merge as a set) by the reconciles that read
//! the Secret, removed with a merge patch conditional on the resourceVersion by the cleanup of its
//! last user (or by the sweeper once no Invitation names it). RBAC: `patch` on `secrets`
//! (SECURITY.md).

use std::collections::HashSet;
use std::time::Instant;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;

use super::context::{Context, key};
use crate::invitation::resource::Invitation;

/// The finalizer kept on a Secret an Invitation uses.
pub const SECRET_FINALIZER: &str = "iam.ccloud.dev/credentials-in-use";

/// (namespace, name) of the Secret `invitation` names, if any.
fn secret_of(invitation: &Invitation) -> Option<(String, String)> {
    let namespace = invitation.namespace()?;
    Some((
        namespace,
        invitation
            .spec
            .credentials_secret_ref
            .as_ref()?
            .name
            .clone(),
    ))
}

/// Puts the finalizer on the Secret `invitation` uses, at most once per Secret per resync interval
/// (a patch that changes nothing writes nothing; again after a resync so that a Secret deleted
/// and recreated meanwhile gets it back). A failure (the Secret is being deleted, or RBAC
/// without `patch`) is logged and retried after a resync: it does not stop the invitation.
pub(super) async fn hold(ctx: &Context, invitation: &Invitation) {
    let Some(secret) = secret_of(invitation) else {
        return;
    };
    let now = Instant::now();
    {
        let mut held = ctx.held_secrets();
        if held
            .get(&secret)
            .is_some_and(|at| now.duration_since(*at) < ctx.settings.resync)
        {
            return;
        }
        held.insert(secret.clone(), now);
    }
    let (ns, name) = secret;
    let api: Api<Secret> = Api::namespaced(ctx.kube.client.clone(), &ns);
    let patch = serde_json::json!({ "metadata": { "finalizers": [SECRET_FINALIZER] } });
    if let Err(e) = api
        .patch(&name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
    {
        tracing::warn!(secret = %format!("{ns}/{name}"), error = %e, "could not mark the credentials Secret in use; deleting its namespace may block the cleanup of its Invitations");
    }
}

/// After `invitation`'s cleanup: takes the finalizer off its Secret when no other watched Invitation
/// (live, or finalizing and not done yet) names it. An error keeps `invitation`'s own finalizer, so
/// the release is retried.
pub(super) async fn release(ctx: &Context, invitation: &Invitation) -> Result<(), kube::Error> {
    let Some((ns, name)) = secret_of(invitation) else {
        return Ok(());
    };
    if still_used(ctx, invitation, &ns, &name) {
        return Ok(());
    }
    ctx.held_secrets().remove(&(ns.clone(), name.clone()));
    unmark(ctx, &ns, &name).await
}

/// Once per resync: takes the finalizer off the Secrets this process marked that no watched
/// Invitation names any more (its `credentialsSecretRef` was changed to another Secret), so that
/// deleting them does not wait for nothing. One that gained a user meanwhile is marked again.
pub(super) async fn release_unused(ctx: &Context) {
    let store = &ctx.store;
    let held: Vec<(String, String)> = ctx.held_secrets().keys().cloned().collect();
    for (ns, name) in held {
        let used = |state: &[std::sync::Arc<Invitation>]| {
            state
                .iter()
                .any(|o| secret_of(o).is_some_and(|(n, s)| n == ns && s == name))
        };
        if used(&store.state()) {
            continue;
        }
        ctx.held_secrets().remove(&(ns.clone(), name.clone()));
        if let Err(e) = unmark(ctx, &ns, &name).await {
            tracing::debug!(secret = %format!("{ns}/{name}"), error = %e, "unused credentials Secret not released; tried again after it is marked next");
            continue;
        }
        if let Some(user) = store
            .state()
            .iter()
            .find(|o| secret_of(o).is_some_and(|(n, s)| n == ns && s == name))
        {
            hold(ctx, user).await;
        }
    }
}

/// Removes the finalizer from a Secret, if it is there.
async fn unmark(ctx: &Context, ns: &str, name: &str) -> Result<(), kube::Error> {
    let api: Api<Secret> = Api::namespaced(ctx.kube.client.clone(), ns);
    let Some(secret) = api.get_opt(name).await? else {
        return Ok(());
    };
    if !secret.finalizers().iter().any(|f| f == SECRET_FINALIZER) {
        return Ok(());
    }
    let rest: Vec<&String> = secret
        .finalizers()
        .iter()
        .filter(|f| *f != SECRET_FINALIZER)
        .collect();
    // the resourceVersion makes the write conditional: a list changed since the GET is a
    // conflict (retried), never a lost finalizer of someone else
    let patch = serde_json::json!({
        "metadata": { "resourceVersion": secret.resource_version(), "finalizers": rest }
    });
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

/// Whether another watched Invitation still needs the Secret. `invitation` is marked done first, under
/// the same lock, so that of two cleanups finishing at once the second sees the first done and
/// releases (each seeing the other pending would leave the finalizer forever).
pub(super) fn still_used(ctx: &Context, invitation: &Invitation, ns: &str, name: &str) -> bool {
    let store = &ctx.store;
    let mut done = ctx.cleaned_up();
    done.insert(key(invitation));
    let state = store.state();
    // forget the objects that left the cache: their finalizer is gone
    let present: HashSet<ObjectRef<Invitation>> = state.iter().map(|o| key(o)).collect();
    done.retain(|o| present.contains(o) || *o == key(invitation));
    state
        .iter()
        .any(|o| !done.contains(&key(o)) && secret_of(o).is_some_and(|(n, s)| n == ns && s == name))
}
