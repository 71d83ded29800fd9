//! The controller: wires the watch, the finalizer, the planner, the Confluent client and the
//! status/Event writers together. It decides nothing itself: see [`crate::invitation::planner`] and
//! [`crate::invitation::status`].

mod apply;
mod claims;
mod cleanup;
mod context;
pub mod credentials_in_use;
mod drive;
pub mod email_claims;
mod error;
pub mod gauges;
mod pause;
pub mod preview;
pub mod report;
mod role_bindings;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::runtime::PredicateConfig;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::finalizer;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, ResourceExt};

use context::CredentialUse;
pub use context::{Context, Settings};
pub use error::Error;

use crate::invitation::conclusion;
use crate::invitation::resource::{FINALIZER, Invitation};
use crate::invitation::status::{self, Outcome};
use crate::invitation_policy::controller::{self as policy_controller, Policies};
use crate::runtime::Runtime;
use crate::runtime::snapshot::Snapshot;

/// One reconcile: the finalizer helper splits it into Apply and Cleanup.
async fn reconcile(invitation: Arc<Invitation>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let ns = invitation.namespace().ok_or(Error::Unnamed)?;
    let name = invitation.name_any();
    let span = tracing::info_span!("reconcile", namespace = %ns, invitation = %name);
    let object = context::key(&invitation);
    if invitation.paused() {
        let result =
            tracing::Instrument::instrument(pause::hold(&invitation, &object, &ctx), span).await;
        ctx.metrics.reconciled(result.is_ok(), started.elapsed());
        return result;
    }
    if ctx.settings.dry_run
        && invitation.metadata.deletion_timestamp.is_some()
        && invitation.finalizers().iter().any(|f| f == FINALIZER)
        && let Some(would) = preview::would_clean_up(&invitation)
    {
        let held = conclusion::of(
            preview::held(&invitation, &ctx, would),
            invitation.status.as_ref(),
            invitation.metadata.generation,
            jiff::Timestamp::now(),
            ctx.settings.resync,
        );
        let result = tracing::Instrument::instrument(
            report::conclude(&ctx, &invitation, &object, held),
            span,
        )
        .await;
        ctx.metrics.reconciled(result.is_ok(), started.elapsed());
        return result;
    }
    let api: Api<Invitation> = Api::namespaced(ctx.kube.client.clone(), &ns);
    let invitation = match current_when_deleting(&api, invitation).await {
        Ok(Some(invitation)) => invitation,
        Ok(None) => return Ok(Action::await_change()),
        Err(e) => {
            ctx.metrics.reconciled(false, started.elapsed());
            return Err(e);
        }
    };
    let result = tracing::Instrument::instrument(
        finalizer::finalizer(&api, FINALIZER, invitation, |event| async {
            match event {
                finalizer::Event::Apply(o) => apply::apply(o, &object, &ctx).await,
                finalizer::Event::Cleanup(o) => cleanup::cleanup(o, &object, &ctx).await,
            }
        }),
        span,
    )
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics.reconciled(result.is_ok(), started.elapsed());
    result
}

/// The object a cleanup decides on: read from the API server when it is being deleted with the
/// finalizer on, since the watch cache can still show it as it was before this process's own
/// last status write (the ledger's `Creating` entry, recorded just before a create is sent). A
/// cleanup deciding on that older ledger would let the finalizer go with the grant still live.
/// `None`: the object is gone already.
async fn current_when_deleting(
    api: &Api<Invitation>,
    invitation: Arc<Invitation>,
) -> Result<Option<Arc<Invitation>>, Error> {
    let finalizing = invitation.metadata.deletion_timestamp.is_some()
        && invitation.finalizers().iter().any(|f| f == FINALIZER);
    if !finalizing {
        return Ok(Some(invitation));
    }
    let Some(mut current) = api.get_opt(&invitation.name_any()).await? else {
        return Ok(None);
    };
    strip_for_cache(&mut current);
    Ok(Some(Arc::new(current)))
}

/// Per-object backoff for failures that escaped the reconcile (Kubernetes API errors, cleanup
/// failures), honouring a server-requested wait.
fn error_policy(invitation: Arc<Invitation>, err: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(
        namespace = invitation.namespace().unwrap_or_default(),
        name = %invitation.name_any(),
        reason = err.reason(),
        error = %err,
        "reconcile failed; backing off"
    );
    ctx.metrics.error(err.reason());
    let attempt = ctx.count_failure(&context::key(&invitation));
    Action::requeue(
        ctx.settings
            .transient_backoff()
            .delay(attempt, err.retry_after()),
    )
}

/// What a reconcile depends on in the object itself: the spec (generation), the finalizers, the
/// deletion mark and the pause annotation. Status and metadata written by the operator are left out, so its own writes
/// never wake it; remote changes are found by the periodic requeue instead.
fn user_changes(inv: &Invitation) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    inv.metadata.generation.hash(&mut h);
    inv.metadata.deletion_timestamp.is_some().hash(&mut h);
    inv.finalizers().hash(&mut h);
    inv.paused().hash(&mut h);
    Some(h.finish())
}

/// Drops what the operator never reads from an object before the watch cache keeps it: managed
/// fields, annotations but the pause annotation (`kubectl apply` keeps a whole copy of the
/// manifest in one) and labels (the label selector is applied by the API server). Status is written by server-side apply of
/// the status alone and finalizers by a JSON patch of their own, so nothing written is built from
/// what is dropped here.
fn strip_for_cache(inv: &mut Invitation) {
    inv.managed_fields_mut().clear();
    inv.annotations_mut()
        .retain(|k, _| k == crate::invitation::resource::PAUSED_ANNOTATION);
    inv.labels_mut().clear();
}

/// The watch configuration: label selector, and nothing more than needed.
pub fn watcher_config(settings: &Settings) -> watcher::Config {
    let mut config = watcher::Config::default();
    if let Some(selector) = &settings.label_selector {
        config = config.labels(selector);
    }
    config
}

/// Runs the controller until `shutdown` resolves, then lets in-flight reconciles finish.
/// `on_ready` is called once the watch cache has synced. The context is built here, once the
/// watch cache exists. Nothing is reconciled before `policies` are known (their caches
/// synced); the Invitations of a namespace in `changed` are looked at again.
pub async fn run(
    runtime: &Runtime,
    settings: Settings,
    (policies, changed): (Policies, policy_controller::Changed),
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    on_ready: impl FnOnce(kube::runtime::reflector::Store<Invitation>) + Send + 'static,
) {
    let mut shutdown = Box::pin(shutdown);
    tokio::select! {
        () = policies.ready() => {}
        () = &mut shutdown => return,
    }
    let api: Api<Invitation> = match &settings.namespace {
        Some(ns) => Api::namespaced(runtime.kube.client.clone(), ns),
        None => Api::all(runtime.kube.client.clone()),
    };
    let config = controller::Config::default().concurrency(settings.concurrency);
    let (store, writer) = reflector::store();
    let events = watcher(api, watcher_config(&settings))
        .default_backoff()
        .modify(strip_for_cache)
        .reflect(writer)
        .touched_objects()
        // our own status writes must not trigger reconciles: only what a user changes does
        .predicate_filter(user_changes, PredicateConfig::default());
    let (wake, woken) = futures::channel::mpsc::unbounded();
    let policies = Arc::new(policies);
    let email_claims = settings
        .claims
        .clone()
        .map(|config| email_claims::EmailClaims::start(&runtime.kube.client, config, wake.clone()));
    let mut ctx = Context::new(runtime, settings, store.clone(), policies, wake.clone());
    if let Some(claims) = email_claims {
        // no claim is judged against a partial view of the claims namespace
        tokio::select! {
            () = claims.ready() => {}
            () = &mut shutdown => return,
        }
        ctx = ctx.with_email_claims(claims);
    }
    let ctx = Arc::new(ctx);
    let controller = Controller::for_stream(events, store.clone())
        .with_config(config)
        .reconcile_on(woken);
    let sweeper = tokio::spawn(sweep(ctx.clone(), store.clone(), wake.clone()));
    let follower = tokio::spawn(follow_policies(changed, store.clone(), wake));
    tokio::spawn(async move {
        // kube-runtime's readiness signal is a shared oneshot that wakes only its last waiter,
        // and the controller waits on it too: poll it again until it answers.
        loop {
            match tokio::time::timeout(Duration::from_millis(200), store.wait_until_ready()).await {
                Ok(Ok(())) => return on_ready(store),
                Ok(Err(_)) => return,
                Err(_) => {}
            }
        }
    });
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile error");
            }
        })
        .await;
    sweeper.abort();
    follower.abort();
}

/// Wakes the Invitations of every namespace whose applying policies may have changed.
async fn follow_policies(
    mut changed: policy_controller::Changed,
    store: reflector::Store<Invitation>,
    wake: futures::channel::mpsc::UnboundedSender<ObjectRef<Invitation>>,
) {
    while let Some(namespace) = changed.recv().await {
        for invitation in store.state() {
            if invitation.namespace().as_deref() == Some(namespace.as_str())
                && wake
                    .unbounded_send(ObjectRef::from(invitation.as_ref()))
                    .is_err()
            {
                return;
            }
        }
    }
}

/// Once per resync interval: refresh every credential's snapshot (one paginated list each) and
/// wake exactly the resources whose remote invitation changed or vanished. This is what looks at
/// healthy resources again: their reconciles do not requeue themselves.
async fn sweep(
    ctx: Arc<Context>,
    store: reflector::Store<Invitation>,
    wake: futures::channel::mpsc::UnboundedSender<ObjectRef<Invitation>>,
) {
    let mut tick = tokio::time::interval(ctx.settings.resync);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate: the first reconciles list anyway
    loop {
        tick.tick().await;
        let now = jiff::Timestamp::now();
        // Safety net: an object whose status does not describe its current generation (or that
        // is being deleted) is woken whatever happened to its own event: a reconcile can be
        // dropped when it races a watch re-list (the object is not in the store yet then).
        for invitation in store.state() {
            if needs_attention(&invitation)
                && wake
                    .unbounded_send(ObjectRef::from(invitation.as_ref()))
                    .is_err()
            {
                return;
            }
        }
        follow_secrets(&ctx, &store).await;
        if let Some(claims) = &ctx.email_claims {
            claims.sweep(&ctx.kube.client, &store, &ctx.metrics).await;
        }
        let mut closed = false;
        // credentials whose list failed: their role bindings are not listed this resync either
        let mut unlisted = Vec::new();
        let listing = Instant::now();
        ctx.confluent.snapshots
            .refresh_all(|client, identity, result| {
                if result.is_err() {
                    unlisted.push(client);
                }
                let snapshot = match result {
                    Ok(s) => s,
                    // The credential itself was refused: definitive, and every resource using
                    // it must say so. Their reconciles read the refusal, not a Confluent call.
                    Err(e @ confluent_client::Error::Unauthenticated(_)) => {
                        tracing::warn!(credential = %identity, error = %e, "Confluent refused the credential; resources using it are told");
                        for object in ctx.owned_by(client) {
                            let Some(invitation) = store.get(&object) else {
                                continue;
                            };
                            if !shows_refused_credentials(&invitation)
                                && wake.unbounded_send(object).is_err()
                            {
                                closed = true;
                                return;
                            }
                        }
                        return;
                    }
                    // Status stays as last observed until a list succeeds again (retried next
                    // resync). Waking every resource to GET its invitation instead would spend
                    // N calls per resync, at the rate limit, on an outage.
                    Err(e) => {
                        tracing::warn!(credential = %identity, error = %e, "snapshot refresh failed; status stays as last observed until a list succeeds");
                        return;
                    }
                };
                for object in ctx.owned_by(client) {
                    let Some(invitation) = store.get(&object) else {
                        continue;
                    };
                    if remote_changed(&invitation, snapshot, now) && wake.unbounded_send(object).is_err() {
                        closed = true; // the controller is gone
                        return;
                    }
                }
            })
            .await;
        if closed {
            return;
        }
        // The invitation lists took more than half the interval: the credential's budget is
        // tight (429s, a slow server), and what users asked for (new Invitations, changes) goes
        // first. Bindings are compared at the next resync with room; their own reconciles
        // still list what they need.
        if listing.elapsed() < ctx.settings.resync / 2 {
            role_bindings::sweep(&ctx, &store, &unlisted, |object| {
                wake.unbounded_send(object).is_ok()
            })
            .await;
        } else {
            tracing::info!(
                listing = ?listing.elapsed(),
                "invitation lists took over half the resync interval; role bindings are compared at a later resync"
            );
        }
        credentials_in_use::release_unused(&ctx).await;
    }
}

/// Once per resync, before the lists: resolves every credential in use again (one Secret GET per
/// distinct Secret referenced), so a Secret whose credentials changed is listed with its new
/// ones, and the snapshots of replaced or unused clients are dropped (a client several Secrets
/// share stays while any of their resources uses it). Without a watch on Secrets, a change is
/// seen within one resync interval.
async fn follow_secrets(ctx: &Context, store: &reflector::Store<Invitation>) {
    let mut resolved: HashMap<(String, Option<String>), Option<CredentialUse>> = HashMap::new();
    for invitation in store.state() {
        let Some(ns) = invitation.namespace() else {
            continue;
        };
        let secret = invitation
            .spec
            .credentials_secret_ref
            .as_ref()
            .map(|r| r.name.clone());
        let at = (ns, secret);
        let client = match resolved.get(&at) {
            Some(c) => c.clone(),
            None => {
                let client = ctx
                    .confluent
                    .credentials
                    .client_for(&ctx.kube.client, &at.0, at.1.as_deref())
                    .await
                    .ok();
                let used = client.map(|c| {
                    ctx.confluent.snapshots.track(&c);
                    CredentialUse::of(&c)
                });
                resolved.insert(at, used.clone());
                used
            }
        };
        // unresolvable now (Secret gone or broken): its reconcile says so; keep what it had
        if let Some(used) = client {
            ctx.reassign_owner(&context::key(&invitation), &used);
        }
    }
    // The Secrets no resource names any more (a changed credentialsSecretRef) are forgotten with
    // their clients. Read from the cache again: a resource created since the loop began (whose
    // reconcile read its Secret) keeps its Secret's client.
    let state = store.state();
    let named: HashSet<(&str, &str)> = state
        .iter()
        .filter_map(|i| {
            Some((
                i.metadata.namespace.as_deref()?,
                i.spec.credentials_secret_ref.as_ref()?.name.as_str(),
            ))
        })
        .collect();
    ctx.confluent
        .credentials
        .retain_secrets(|ns, name| named.contains(&(ns, name)));
    ctx.confluent.snapshots.retain(|key| ctx.has_owners(key));
}

/// Whether an object already shows that its credential was refused.
fn shows_refused_credentials(invitation: &Invitation) -> bool {
    invitation
        .status
        .as_ref()
        .and_then(|s| s.ready())
        .is_some_and(|c| c.status == "False" && c.reason == confluent_client::CREDENTIALS_INVALID)
}

/// Whether an object has not been brought to its current generation, or is being deleted.
fn needs_attention(invitation: &Invitation) -> bool {
    invitation.metadata.deletion_timestamp.is_some() || invitation.spec_changed()
}

/// Whether the snapshot says something the object's status does not: a changed invitation, or
/// one that is missing (removed out of band, or not listed yet).
fn remote_changed(invitation: &Invitation, snapshot: &Snapshot, now: jiff::Timestamp) -> bool {
    let Some(status) = &invitation.status else {
        return false;
    };
    let Some(id) = status.invitation_id.as_deref() else {
        return false;
    };
    match snapshot.get(id) {
        None => true,
        Some(inv) => {
            status::next_status(
                Some(status),
                &Outcome::Remote(&inv),
                invitation.metadata.generation,
                now,
            ) != *status
        }
    }
}
