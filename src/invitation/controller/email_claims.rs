//! The wiring of [`crate::invitation::email_claim`]: a watch cache of the Leases in the claims
//! namespace, this installation's heartbeat, and the reads and writes of claims a reconcile
//! performs. Decides nothing: [`email_claim::hold`] does.
//!
//! Every write to a Lease that exists carries its resourceVersion (replace, or a delete with
//! preconditions): two installations acting on one claim at once never both win, the second
//! reads it again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use parking_lot::Mutex;
use tokio::task::JoinHandle;

use crate::invitation::email_claim::{
    self, CLAIM, Claim, Claimant, HEARTBEAT, HEARTBEAT_TTL, HOLDER_ANNOTATION, Hold,
    INSTALLATION_ANNOTATION, KIND_LABEL, Liveness, SUCCESSOR_ANNOTATION,
};
use crate::invitation::ownership::Scope;
use crate::invitation::resource::Invitation;
use crate::runtime::FIELD_MANAGER;
use crate::runtime::metrics::Metrics;

/// Where the claims live and who this installation is (`--claims-namespace`,
/// `--installation-id`, `--claims-takeover-after`).
#[derive(Clone, Debug)]
pub struct Config {
    pub namespace: String,
    pub installation: String,
    pub takeover_after: Option<Duration>,
}

/// Why a claim could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Lease API refused or failed (RBAC on the claims namespace, the API server down).
    #[error("email claim Lease {name} in namespace {namespace}: {source}")]
    Kube {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// The claim kept changing under this installation's writes (others acting on it at once).
    #[error(
        "email claim Lease {0} changed under every write; it is read again at the next reconcile"
    )]
    Contended(String),
}

/// What a reconcile may do for an email, as far as the claims tell.
#[derive(Debug, PartialEq, Eq)]
pub enum Holding {
    /// This Invitation holds the claim (or no claims are kept): it may write for the email.
    Held,
    /// Another holds it: nothing is sent; the message names the holder.
    Taken(String),
}

/// The claims of this installation's Invitations and the tasks that keep their view current.
pub struct EmailClaims {
    config: Config,
    api: Api<Lease>,
    store: Store<Lease>,
    /// Claimants whose claim another holds, by Lease name: woken when that Lease changes or
    /// goes, so a release is taken up at once rather than at the next resync.
    waiting: Arc<Mutex<HashMap<String, HashSet<ObjectRef<Invitation>>>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for EmailClaims {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl EmailClaims {
    /// Starts the watch of the claims namespace's Leases (this operator's only) and the
    /// heartbeat; a claimant waiting on a Lease that changes is sent to `wake`.
    pub fn start(
        client: &kube::Client,
        config: Config,
        wake: futures::channel::mpsc::UnboundedSender<ObjectRef<Invitation>>,
    ) -> Self {
        let api: Api<Lease> = Api::namespaced(client.clone(), &config.namespace);
        let (store, writer) = reflector::store();
        let events = watcher(api.clone(), watcher::Config::default().labels(KIND_LABEL))
            .default_backoff()
            .reflect(writer);
        let waiting: Arc<Mutex<HashMap<String, HashSet<ObjectRef<Invitation>>>>> = Arc::default();
        let follower = tokio::spawn(follow(events.boxed(), waiting.clone(), wake));
        let heartbeat = tokio::spawn(heartbeat(api.clone(), config.installation.clone()));
        Self {
            config,
            api,
            store,
            waiting,
            tasks: vec![follower, heartbeat],
        }
    }

    /// Resolves once the watch cache is synced.
    pub async fn ready(&self) {
        let _ = self.store.wait_until_ready().await;
    }

    fn lease(&self, name: &str) -> Option<Arc<Lease>> {
        self.store
            .get(&ObjectRef::new(name).within(&self.config.namespace))
    }

    fn claimant(&self, invitation: &Invitation) -> Claimant {
        Claimant {
            uid: invitation.uid().unwrap_or_default(),
            key: format!(
                "{}/{}",
                invitation.namespace().unwrap_or_default(),
                invitation.name_any()
            ),
            installation: self.config.installation.clone(),
            created: invitation.metadata.creation_timestamp.as_ref().map(|t| t.0),
        }
    }

    fn kube_error(&self, name: &str, source: kube::Error) -> Error {
        Error::Kube {
            namespace: self.config.namespace.clone(),
            name: name.to_owned(),
            source,
        }
    }

    /// Holds `invitation`'s claim on its email where `scope` says it acts, before any write for
    /// that email: creates it when nobody holds it, keeps it when held, takes it over from a
    /// holder gone (or stale past `--claims-takeover-after`); else records the claimant as the
    /// successor and says who holds it. `dry_run`: reads only.
    pub async fn hold(
        &self,
        kube: &kube::Client,
        store: &Store<Invitation>,
        metrics: &Metrics,
        invitation: &Invitation,
        scope: &Scope,
        dry_run: bool,
    ) -> Result<Holding, Error> {
        let Some(name) = email_claim::claim_name(scope, &invitation.spec.email) else {
            return Ok(Holding::Held);
        };
        let me = self.claimant(invitation);
        let mut lease = self.lease(&name).map(|l| (*l).clone());
        // a second pass only after a write lost to another (the Lease is read again)
        for _ in 0..2 {
            let claim = lease.as_ref().and_then(claim_of);
            let holder = match &claim {
                Some(c) => {
                    self.liveness(kube, store, &c.holder, &c.holder_key, &c.installation)
                        .await
                }
                None => Liveness::Live,
            };
            let successor = match claim.as_ref().and_then(|c| c.successor.as_ref()) {
                Some(s) => {
                    self.liveness(kube, store, &s.uid, &s.key, &s.installation)
                        .await
                }
                None => Liveness::Live,
            };
            let decision = email_claim::hold(
                &me,
                claim.as_ref(),
                holder,
                successor,
                self.config.takeover_after,
            );
            if dry_run {
                return Ok(match decision {
                    Hold::Taken { holder, .. } => {
                        Holding::Taken(email_claim::taken_message(&holder, None))
                    }
                    _ => Holding::Held,
                });
            }
            let written = match (&decision, &lease) {
                (Hold::Create, None) => self.create(&name, &me).await,
                // a Lease nobody holds (released by hand to an empty holder): taken as if absent
                (Hold::Create | Hold::TakeOver, Some(held)) => {
                    self.replace(held, |l| set_holder(l, &me)).await
                }
                (Hold::Mine { annotate: true }, Some(held)) => {
                    self.replace(held, |l| set_holder(l, &me)).await
                }
                (Hold::Taken { record: true, .. }, Some(held)) => {
                    self.replace(held, |l| {
                        annotations(l).insert(SUCCESSOR_ANNOTATION.into(), me.to_annotation());
                    })
                    .await
                }
                _ => Ok(true),
            };
            match written {
                Ok(true) => {}
                Ok(false) => {
                    // lost to another writer: read it again and decide again
                    lease = self
                        .api
                        .get_opt(&name)
                        .await
                        .map_err(|e| self.kube_error(&name, e))?;
                    continue;
                }
                Err(e) => return Err(e),
            }
            return Ok(match decision {
                Hold::Taken {
                    holder,
                    installation,
                    stale,
                    ..
                } => {
                    self.waiting
                        .lock()
                        .entry(name)
                        .or_default()
                        .insert(ObjectRef::from_obj(invitation));
                    let stale = stale.map(|age| (installation.as_str(), age));
                    Holding::Taken(email_claim::taken_message(&holder, stale))
                }
                Hold::TakeOver if claim.is_some() => {
                    metrics.claim_taken_over();
                    Holding::Held
                }
                _ => Holding::Held,
            });
        }
        Err(Error::Contended(name))
    }

    /// Whether the object `uid` (`key`, reconciled by `installation`) still stands: looked for
    /// when it is this installation's (the watch cache, else a GET), else told by its
    /// installation's heartbeat.
    async fn liveness(
        &self,
        kube: &kube::Client,
        store: &Store<Invitation>,
        uid: &str,
        key: &str,
        installation: &str,
    ) -> Liveness {
        if installation != self.config.installation {
            let heartbeat = self.lease(&email_claim::heartbeat_name(installation));
            return heartbeat_liveness(heartbeat.as_deref(), jiff::Timestamp::now());
        }
        if store.find(|o| o.uid().as_deref() == Some(uid)).is_some() {
            return Liveness::Live;
        }
        let Some((namespace, name)) = key.split_once('/') else {
            return Liveness::Gone;
        };
        // outside the watch cache (a label flip to another shard, another namespace): asked
        let api: Api<Invitation> = Api::namespaced(kube.clone(), namespace);
        match api.get_opt(name).await {
            Ok(Some(o)) if o.uid().as_deref() == Some(uid) => Liveness::Live,
            Ok(_) => Liveness::Gone,
            // unknown is not gone: nothing is taken on a failed read
            Err(e) => {
                tracing::debug!(error = %e, %key, "holder of an email claim not read");
                Liveness::Live
            }
        }
    }

    /// Whether `invitation` holds any claim (under its organization, or its credential's
    /// identity before the organization was known).
    pub fn holds_any(&self, invitation: &Invitation) -> bool {
        let Some(uid) = invitation.uid() else {
            return false;
        };
        self.claims()
            .iter()
            .any(|l| claim_of(l).is_some_and(|c| c.holder == uid))
    }

    /// Who else holds `invitation`'s claim where `scope` says it acts: the holder's
    /// `namespace/name`, or `None` (it holds it, or nobody does).
    pub fn held_by_another(&self, invitation: &Invitation, scope: &Scope) -> Option<String> {
        let name = email_claim::claim_name(scope, &invitation.spec.email)?;
        let claim = claim_of(&*self.lease(&name)?)?;
        (claim.holder != invitation.uid().unwrap_or_default()).then_some(claim.holder_key)
    }

    /// The live claimant recorded as successor on a claim `invitation` holds, if any: the
    /// remote invitation stays for it.
    pub async fn successor(
        &self,
        kube: &kube::Client,
        store: &Store<Invitation>,
        invitation: &Invitation,
    ) -> Option<Claimant> {
        let uid = invitation.uid()?;
        for lease in self.claims() {
            let Some(claim) = claim_of(&lease).filter(|c| c.holder == uid) else {
                continue;
            };
            let Some(next) = &claim.successor else {
                continue;
            };
            let liveness = self
                .liveness(kube, store, &next.uid, &next.key, &next.installation)
                .await;
            if let Some(next) = email_claim::successor(&claim, liveness) {
                return Some(next.clone());
            }
        }
        None
    }

    /// Releases the claim `invitation` holds under `scope`, superseded by the one it now holds
    /// under its organization (a claim made under the credential's identity before the
    /// organization was known): left, it would outlive the Invitation's need of it.
    pub async fn release_superseded(
        &self,
        invitation: &Invitation,
        scope: &Scope,
    ) -> Result<(), Error> {
        let (Some(uid), Some(name)) = (
            invitation.uid(),
            email_claim::claim_name(scope, &invitation.spec.email),
        ) else {
            return Ok(());
        };
        match self.lease(&name) {
            Some(lease) if claim_of(&lease).is_some_and(|c| c.holder == uid) => {
                self.release_held(&lease, &uid).await
            }
            _ => Ok(()),
        }
    }

    /// Releases what `invitation` holds or waits for, once its cleanup is done: its claims are
    /// deleted (with their resourceVersion: a successor recorded meanwhile makes it decide
    /// again), and it no longer waits as anyone's successor.
    pub async fn release(&self, invitation: &Invitation) -> Result<(), Error> {
        let Some(uid) = invitation.uid() else {
            return Ok(());
        };
        for lease in self.claims() {
            let Some(claim) = claim_of(&lease) else {
                continue;
            };
            let name = lease.name_any();
            if claim.holder == uid {
                self.release_held(&lease, &uid).await?;
            } else if claim.successor.as_ref().is_some_and(|s| s.uid == uid) {
                let written = self
                    .replace(&lease, |l| {
                        annotations(l).remove(SUCCESSOR_ANNOTATION);
                    })
                    .await?;
                if !written {
                    return Err(Error::Contended(name));
                }
            }
        }
        let object = ObjectRef::from_obj(invitation);
        for waiters in self.waiting.lock().values_mut() {
            waiters.remove(&object);
        }
        Ok(())
    }

    /// Deletes a claim `uid` holds. Its resourceVersion guards against deleting a claim taken
    /// over meanwhile; a claimant recording itself as successor changes it too, and is no
    /// reason to keep the claim: read again, and deleted while `uid` still holds it.
    async fn release_held(&self, held: &Lease, uid: &str) -> Result<(), Error> {
        let name = held.name_any();
        let mut lease = held.clone();
        for _ in 0..3 {
            if self.delete(&lease).await? {
                return Ok(());
            }
            match self
                .api
                .get_opt(&name)
                .await
                .map_err(|e| self.kube_error(&name, e))?
            {
                Some(now) if claim_of(&now).is_some_and(|c| c.holder == uid) => lease = now,
                // taken over, or gone: nothing of it is this Invitation's to release
                _ => return Ok(()),
            }
        }
        Err(Error::Contended(name))
    }

    /// At each resync: releases the claims this installation's Invitations held and no longer
    /// exist (force-deleted: no cleanup ran), and counts the claims whose holder's installation
    /// is stale.
    pub async fn sweep(&self, kube: &kube::Client, store: &Store<Invitation>, metrics: &Metrics) {
        let now = jiff::Timestamp::now();
        let mut stale = 0;
        for lease in self.claims() {
            let Some(claim) = claim_of(&lease) else {
                continue;
            };
            if claim.installation != self.config.installation {
                let heartbeat = self.lease(&email_claim::heartbeat_name(&claim.installation));
                if heartbeat_liveness(heartbeat.as_deref(), now) != Liveness::Live {
                    stale += 1;
                }
                continue;
            }
            let liveness = self
                .liveness(
                    kube,
                    store,
                    &claim.holder,
                    &claim.holder_key,
                    &claim.installation,
                )
                .await;
            if liveness != Liveness::Gone {
                continue;
            }
            match self.delete(&lease).await {
                Ok(true) => tracing::info!(
                    lease = %lease.name_any(),
                    holder = %claim.holder_key,
                    "released the email claim of an Invitation that no longer exists"
                ),
                // changed meanwhile (taken over, re-annotated): looked at again next resync
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "email claim of a gone Invitation not released")
                }
            }
        }
        metrics.set_stale_claims(stale);
    }

    /// The claim Leases in the cache.
    fn claims(&self) -> Vec<Arc<Lease>> {
        self.store
            .state()
            .into_iter()
            .filter(|l| l.labels().get(KIND_LABEL).map(String::as_str) == Some(CLAIM))
            .collect()
    }

    /// Creates the claim `name` held by `me`; `false` when another created it first.
    async fn create(&self, name: &str, me: &Claimant) -> Result<bool, Error> {
        let mut lease = Lease::default();
        lease.metadata.name = Some(name.to_owned());
        lease.metadata.namespace = Some(self.config.namespace.clone());
        lease.metadata.labels = Some(BTreeMap::from([(KIND_LABEL.into(), CLAIM.into())]));
        set_holder(&mut lease, me);
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(self.kube_error(name, e)),
        }
    }

    /// Deletes `held` as it was read (its resourceVersion and UID); `false` when it changed
    /// since. Gone already is deleted.
    async fn delete(&self, held: &Lease) -> Result<bool, Error> {
        let name = held.name_any();
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: held.resource_version(),
                uid: held.uid(),
            }),
            ..DeleteParams::default()
        };
        match self.api.delete(&name, &params).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(self.kube_error(&name, e)),
        }
    }

    /// Replaces `held` as `change` makes it, at `held`'s resourceVersion; `false` when the Lease
    /// changed (or went) since.
    async fn replace(&self, held: &Lease, change: impl FnOnce(&mut Lease)) -> Result<bool, Error> {
        let name = held.name_any();
        let mut lease = held.clone();
        lease.metadata.managed_fields = None;
        change(&mut lease);
        match self
            .api
            .replace(&name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => Ok(false),
            Err(e) => Err(self.kube_error(&name, e)),
        }
    }
}

/// What a claim Lease says; `None` for a Lease nobody holds.
fn claim_of(lease: &Lease) -> Option<Claim> {
    let holder = lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .filter(|h| !h.is_empty())?;
    let annotation = |key: &str| lease.annotations().get(key).cloned().unwrap_or_default();
    Some(Claim {
        holder,
        holder_key: annotation(HOLDER_ANNOTATION),
        installation: annotation(INSTALLATION_ANNOTATION),
        successor: lease
            .annotations()
            .get(SUCCESSOR_ANNOTATION)
            .and_then(|v| Claimant::from_annotation(v)),
    })
}

/// Makes `me` the holder of `lease`: holder, annotations, acquire time; a successor that was
/// `me` is no longer one.
fn set_holder(lease: &mut Lease, me: &Claimant) {
    let now = MicroTime(jiff::Timestamp::now());
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref() != Some(me.uid.as_str()) {
        spec.holder_identity = Some(me.uid.clone());
        spec.acquire_time = Some(now.clone());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.renew_time = Some(now);
    let annotations = annotations(lease);
    annotations.insert(HOLDER_ANNOTATION.into(), me.key.clone());
    annotations.insert(INSTALLATION_ANNOTATION.into(), me.installation.clone());
    if annotations
        .get(SUCCESSOR_ANNOTATION)
        .and_then(|v| Claimant::from_annotation(v))
        .is_some_and(|s| s.uid == me.uid)
    {
        annotations.remove(SUCCESSOR_ANNOTATION);
    }
}

fn annotations(lease: &mut Lease) -> &mut BTreeMap<String, String> {
    lease.metadata.annotations.get_or_insert_with(BTreeMap::new)
}

/// Whether an installation's heartbeat Lease (`None`: never seen) was renewed within its
/// lifetime.
fn heartbeat_liveness(heartbeat: Option<&Lease>, now: jiff::Timestamp) -> Liveness {
    let spec = heartbeat.and_then(|h| h.spec.as_ref());
    let renewed = spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0);
    let lifetime = spec
        .and_then(|s| s.lease_duration_seconds)
        .and_then(|s| u64::try_from(s).ok())
        .map_or(HEARTBEAT_TTL, Duration::from_secs);
    email_claim::heartbeat(renewed, lifetime, now)
}

/// Wakes the claimants waiting on a Lease that changed or went; after a re-list (a watch gap
/// may have hidden a deletion), every waiting claimant.
async fn follow(
    mut events: futures::stream::BoxStream<'static, Result<watcher::Event<Lease>, watcher::Error>>,
    waiting: Arc<Mutex<HashMap<String, HashSet<ObjectRef<Invitation>>>>>,
    wake: futures::channel::mpsc::UnboundedSender<ObjectRef<Invitation>>,
) {
    while let Some(event) = events.next().await {
        let woken: Vec<ObjectRef<Invitation>> = match event {
            Ok(watcher::Event::Apply(lease) | watcher::Event::Delete(lease)) => waiting
                .lock()
                .remove(&lease.name_any())
                .into_iter()
                .flatten()
                .collect(),
            Ok(watcher::Event::InitDone) => waiting.lock().drain().flat_map(|(_, w)| w).collect(),
            Ok(_) => Vec::new(),
            Err(e) => {
                tracing::warn!(error = %e, "watch of the email claims failed; retrying");
                Vec::new()
            }
        };
        for object in woken {
            let _ = wake.unbounded_send(object);
        }
    }
}

/// Renews this installation's heartbeat every third of its lifetime while it runs.
async fn heartbeat(api: Api<Lease>, installation: String) {
    let name = email_claim::heartbeat_name(&installation);
    let lifetime = i32::try_from(HEARTBEAT_TTL.as_secs()).unwrap_or(i32::MAX);
    loop {
        let lease = serde_json::json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": name,
                "labels": {KIND_LABEL: HEARTBEAT},
                "annotations": {INSTALLATION_ANNOTATION: installation},
            },
            "spec": {
                "holderIdentity": installation,
                "leaseDurationSeconds": lifetime,
                "renewTime": MicroTime(jiff::Timestamp::now()),
            },
        });
        if let Err(e) = api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&lease),
            )
            .await
        {
            tracing::warn!(error = %e, lease = %name, "installation heartbeat not renewed");
        }
        tokio::time::sleep(HEARTBEAT_TTL / 3).await;
    }
}
