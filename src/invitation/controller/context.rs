//! Everything an Invitation's reconcile shares with the others: the runtime's parts (Kubernetes,
//! Confluent, metrics), the controller's settings, the watch cache, and the per-process memory
//! of failures, credentials and refusals. Built once, after the watch cache exists. Its own
//! file, so the stages (apply, cleanup, claims...) need this and not the controller's wiring.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use super::email_claims::EmailClaims;
use crate::invitation::resource::Invitation;
use crate::invitation_policy::controller::Policies;
use crate::role_bindings::Key;
use crate::runtime::metrics::Metrics;
use crate::runtime::{Confluent, Kube, Runtime};
use confluent_client::retry::Backoff;

/// The controller's tunables.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How often every Invitation is compared with Confluent.
    pub resync: Duration,
    /// Reconciles running at once.
    pub concurrency: u16,
    /// Only this namespace (None: all).
    pub namespace: Option<String>,
    /// Only Invitations matching this label selector (for sharding a fleet across deployments).
    pub label_selector: Option<String>,
    /// Email domains that may be invited (empty: all).
    pub allowed_email_domains: Vec<String>,
    /// Roles the operator may grant, and delete under `exclusiveRoleBindings` (`None`: all).
    pub allowed_roles: Option<Vec<String>>,
    /// Preview mode: read and plan, never write to Confluent (see [`super::preview`]).
    pub dry_run: bool,
    /// A namespace that no InvitationPolicy selects may do nothing (`--require-policy`).
    pub require_policy: bool,
    /// Claims on emails shared with other installations (`--claims-namespace`).
    pub claims: Option<super::email_claims::Config>,
}

impl Settings {
    /// Backoff after a refusal: someone must change something, so retry slowly, at most at the
    /// resync interval.
    pub fn refusal_backoff(&self) -> Backoff {
        Backoff {
            base: Duration::from_secs(30).min(self.resync),
            cap: self.resync,
        }
    }

    /// Backoff before a role binding Confluent refused is tried again: a refusal (a role the
    /// scope does not take, a scope the credential may not grant) seldom ends by itself, so from
    /// a minute, doubling, up to the resync interval (at least that minute).
    pub fn binding_refusal_backoff(&self) -> Backoff {
        let base = Duration::from_secs(60);
        Backoff {
            base,
            cap: self.resync.max(base),
        }
    }

    /// Backoff after a transient failure (429/5xx/network).
    pub fn transient_backoff(&self) -> Backoff {
        Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(120).min(self.resync.max(Duration::from_secs(1))),
        }
    }
}

/// Everything a reconcile needs, shared by all of them.
pub struct Context {
    pub kube: Kube,
    pub confluent: Arc<Confluent>,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    /// The watch cache: whom else an email is claimed by, which Secrets are still used.
    pub store: Store<Invitation>,
    /// The InvitationPolicies and the namespaces they select: what each namespace may do.
    pub policies: Arc<Policies>,
    /// The claims on emails every installation sees (`--claims-namespace`); `None`: ownership
    /// holds within this installation only.
    pub(super) email_claims: Option<EmailClaims>,
    /// Wakes an object through the controller (a hand-over's successor).
    wake: futures::channel::mpsc::UnboundedSender<ObjectRef<Invitation>>,
    /// Consecutive failures per object, for per-object backoff. Entries go on success and on
    /// deletion, so it never outgrows the set of failing objects.
    failures: Mutex<HashMap<ObjectRef<Invitation>, u32>>,
    /// Which credential each reconciled object uses, so the sweeper knows whom a snapshot
    /// concerns and the ownership rule knows in which organization an object claims its email.
    /// Entries go when the object's cleanup ends.
    owners: Mutex<HashMap<ObjectRef<Invitation>, CredentialUse>>,
    /// Secrets this process put [`super::credentials_in_use::SECRET_FINALIZER`] on, with when it last
    /// tried.
    held_secrets: Mutex<HashMap<(String, String), Instant>>,
    /// Role bindings Confluent refused, per object: how many times in a row, and when to try
    /// again. Kept in memory on purpose: a restart (the operator's flags may have changed)
    /// tries every refused binding once more. Entries go when the spec changes and on deletion.
    binding_refusals: Mutex<HashMap<ObjectRef<Invitation>, Refusals>>,
    /// Objects whose cleanup ended in this process (until they leave the watch cache).
    cleaned_up: Mutex<HashSet<ObjectRef<Invitation>>>,
}

/// One object's refused role bindings: how many refusals in a row, and when to try again.
type Refusals = HashMap<Key, (u32, Instant)>;

/// The credential an object is reconciled with: the client (one per credential, so a changed
/// Secret is another client) and the credential's non-secret identity, which outlives a
/// rotation of the secret and keys what is learnt about its organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CredentialUse {
    pub(crate) client: u64,
    pub(crate) identity: Arc<str>,
}

impl CredentialUse {
    pub(crate) fn of(client: &confluent_client::Client) -> Self {
        Self {
            client: client.key(),
            identity: client.identity().into(),
        }
    }
}

impl Context {
    /// A context of the runtime's parts, over the watch cache `store` and the channel that
    /// wakes an object through the controller.
    pub fn new(
        runtime: &Runtime,
        settings: Settings,
        store: Store<Invitation>,
        policies: Arc<Policies>,
        wake: futures::channel::mpsc::UnboundedSender<ObjectRef<Invitation>>,
    ) -> Self {
        Self {
            kube: runtime.kube.clone(),
            confluent: runtime.confluent.clone(),
            metrics: runtime.metrics.clone(),
            settings,
            store,
            policies,
            email_claims: None,
            wake,
            failures: Mutex::new(HashMap::new()),
            owners: Mutex::new(HashMap::new()),
            held_secrets: Mutex::new(HashMap::new()),
            binding_refusals: Mutex::new(HashMap::new()),
            cleaned_up: Mutex::new(HashSet::new()),
        }
    }

    /// The same context, keeping claims on emails in `claims` before any write for an email.
    pub(super) fn with_email_claims(mut self, claims: EmailClaims) -> Self {
        self.email_claims = Some(claims);
        self
    }

    /// Wakes `object` through the controller (it is reconciled soon, not at the next resync).
    pub(super) fn wake(&self, object: ObjectRef<Invitation>) {
        if self.wake.unbounded_send(object).is_err() {
            tracing::debug!("controller gone; the object is woken by its next resync");
        }
    }

    fn failures(&self) -> MutexGuard<'_, HashMap<ObjectRef<Invitation>, u32>> {
        self.failures.lock()
    }

    /// Records a failure; returns how many came before it in a row.
    pub(crate) fn count_failure(&self, object: &ObjectRef<Invitation>) -> u32 {
        let mut f = self.failures();
        let n = f.entry(object.clone()).or_insert(0);
        let before = *n;
        *n = n.saturating_add(1);
        before
    }

    /// Failures recorded in a row so far, without recording one.
    pub(crate) fn failures_so_far(&self, object: &ObjectRef<Invitation>) -> u32 {
        self.failures().get(object).copied().unwrap_or(0)
    }

    pub(crate) fn forget_failures(&self, object: &ObjectRef<Invitation>) {
        self.failures().remove(object);
    }

    /// The bindings of `invitation` Confluent refused whose retry is not due yet.
    pub(crate) fn refused_recently(
        &self,
        object: &ObjectRef<Invitation>,
    ) -> std::collections::BTreeSet<Key> {
        let now = Instant::now();
        self.binding_refusals
            .lock()
            .get(object)
            .map(|held| {
                held.iter()
                    .filter(|(_, (_, next))| *next > now)
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records that Confluent refused `binding` of `invitation`; it is tried again after the refusal
    /// backoff (longer each time in a row).
    pub(crate) fn binding_refused(&self, object: &ObjectRef<Invitation>, binding: &Key) {
        let mut refusals = self.binding_refusals.lock();
        let held = refusals.entry(object.clone()).or_default();
        let attempts = held.get(binding).map_or(0, |(n, _)| *n);
        let wait = self
            .settings
            .binding_refusal_backoff()
            .delay(attempts, None);
        held.insert(
            binding.clone(),
            (attempts.saturating_add(1), Instant::now() + wait),
        );
    }

    /// Forgets `invitation`'s refusals, except those of `still_refused` (the bindings its ledger still
    /// shows refused): a binding that is no longer refused starts its backoff afresh.
    pub(crate) fn keep_binding_refusals(
        &self,
        object: &ObjectRef<Invitation>,
        still_refused: &[Key],
    ) {
        let mut refusals = self.binding_refusals.lock();
        if let Some(held) = refusals.get_mut(object) {
            held.retain(|k, _| still_refused.contains(k));
            if held.is_empty() {
                refusals.remove(object);
            }
        }
    }

    /// When the first refused binding of `invitation` is due to be tried again.
    pub(crate) fn next_binding_retry(&self, object: &ObjectRef<Invitation>) -> Option<Duration> {
        let now = Instant::now();
        self.binding_refusals
            .lock()
            .get(object)?
            .values()
            .map(|(_, next)| next.saturating_duration_since(now))
            .min()
    }

    fn owners(&self) -> MutexGuard<'_, HashMap<ObjectRef<Invitation>, CredentialUse>> {
        self.owners.lock()
    }

    /// Records the credential an object is reconciled with.
    pub(crate) fn remember_owner(
        &self,
        object: &ObjectRef<Invitation>,
        client: &confluent_client::Client,
    ) {
        let used = CredentialUse::of(client);
        let mut owners = self.owners();
        if owners.get(object) != Some(&used) {
            owners.insert(object.clone(), used);
        }
    }

    /// Moves an object already seen with a credential to the client its Secret holds now.
    pub(super) fn reassign_owner(&self, object: &ObjectRef<Invitation>, used: &CredentialUse) {
        if let Some(held) = self.owners().get_mut(object) {
            held.clone_from(used);
        }
    }

    /// Whether some object is seen with this client.
    pub(super) fn has_owners(&self, client: u64) -> bool {
        self.owners().values().any(|c| c.client == client)
    }

    /// Forgets a deleted object.
    pub(crate) fn forget_owner(&self, object: &ObjectRef<Invitation>) {
        self.owners().remove(object);
        self.binding_refusals.lock().remove(object);
    }

    pub(crate) fn held_secrets(&self) -> MutexGuard<'_, HashMap<(String, String), Instant>> {
        self.held_secrets.lock()
    }

    pub(crate) fn cleaned_up(&self) -> MutexGuard<'_, HashSet<ObjectRef<Invitation>>> {
        self.cleaned_up.lock()
    }

    /// The credential an object was last reconciled with.
    pub(crate) fn owner(&self, object: &ObjectRef<Invitation>) -> Option<CredentialUse> {
        self.owners().get(object).cloned()
    }

    /// The Confluent client of the credentials `invitation` names in its namespace `namespace`
    /// (`spec.credentialsSecretRef`), or of the operator's own.
    pub(crate) async fn client_of(
        &self,
        invitation: &Invitation,
        namespace: &str,
    ) -> Result<confluent_client::Client, crate::runtime::credentials::Error> {
        let secret = invitation
            .spec
            .credentials_secret_ref
            .as_ref()
            .map(|r| r.name.as_str());
        self.confluent
            .credentials
            .client_for(&self.kube.client, namespace, secret)
            .await
    }

    /// The credential identity an object was last reconciled with.
    pub(crate) fn owner_identity(&self, object: &ObjectRef<Invitation>) -> Option<Arc<str>> {
        self.owners().get(object).map(|c| c.identity.clone())
    }

    /// Where a credential acts: its organization once learnt, else the credential itself.
    pub(crate) fn scope_of_identity(&self, identity: &str) -> crate::invitation::ownership::Scope {
        match self.confluent.organization_of(identity) {
            Some(org) => crate::invitation::ownership::Scope::Organization(org),
            None => crate::invitation::ownership::Scope::Credential(identity.to_owned()),
        }
    }

    /// The objects whose invitations are seen with this client.
    pub(super) fn owned_by(&self, client: u64) -> Vec<ObjectRef<Invitation>> {
        self.owners()
            .iter()
            .filter(|(_, c)| c.client == client)
            .map(|(o, _)| o.clone())
            .collect()
    }
}

/// An object's key in the per-object maps: namespace and name only. `ObjectRef::from` also
/// carries the uid and resourceVersion, which the maps never compare (kube ignores them in
/// `Eq`/`Hash`) but would hold once per object.
pub(super) fn key(invitation: &Invitation) -> ObjectRef<Invitation> {
    let r = ObjectRef::new(&invitation.name_any());
    match invitation.namespace() {
        Some(ns) => r.within(&ns),
        None => r,
    }
}
