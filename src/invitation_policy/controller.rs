//! The wiring of InvitationPolicies: a watch cache of the policies and one of the namespaces'
//! labels they select by, each policy's status (how many namespaces it selects, whether it can
//! be applied), and the namespaces whose Invitations must be looked at again because what
//! applies to them changed. Decides nothing: [`super::decide`] does.
//!
//! Fails closed: until both caches are synced nobody may ask which policies apply
//! ([`Policies::ready`]), so no Invitation is reconciled against a partial view. A cluster
//! without the InvitationPolicy CRD has no policies at all, which is what the view then says.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ListParams, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::decide;
use super::resource::InvitationPolicy;
use crate::runtime::FIELD_MANAGER;

/// What the Invitation controller reads of the policies, and the tasks that keep it current.
pub struct Policies {
    /// `None` when the API server does not serve InvitationPolicies (the CRD is not installed):
    /// no policy can exist then.
    policies: Option<Store<InvitationPolicy>>,
    namespaces: Store<PartialObjectMeta<Namespace>>,
    tasks: Vec<JoinHandle<()>>,
}

/// The namespaces whose applying policies may have changed: their Invitations are looked at
/// again.
pub type Changed = mpsc::UnboundedReceiver<String>;

impl Policies {
    /// Starts the watches (and the status writer) on `client`; `Changed` says which namespaces
    /// to look at again.
    pub async fn start(client: &kube::Client) -> (Self, Changed) {
        let (changed_tx, changed) = mpsc::unbounded_channel();
        let (namespaces, namespace_writer) = reflector::store();
        let mut tasks = Vec::new();
        // metadata only: a namespace's labels are all a policy reads of it
        let namespace_events = watcher(
            Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(namespace_writer)
        .applied_objects();
        let policies = if served(client).await {
            let (policies, policy_writer) = reflector::store();
            let policy_events = watcher(
                Api::<InvitationPolicy>::all(client.clone()),
                watcher::Config::default(),
            )
            .default_backoff()
            .reflect(policy_writer);
            tasks.push(tokio::spawn(follow(
                client.clone(),
                policies.clone(),
                namespaces.clone(),
                policy_events.boxed(),
                namespace_events.boxed(),
                changed_tx,
            )));
            Some(policies)
        } else {
            tracing::warn!(
                "the API server does not serve InvitationPolicies (their CRD is not installed): no policy applies"
            );
            tasks.push(tokio::spawn(async move {
                // keep the namespace cache current; nothing depends on its changes
                namespace_events.for_each(|_| async {}).await;
            }));
            None
        };
        (
            Self {
                policies,
                namespaces,
                tasks,
            },
            changed,
        )
    }

    /// A view that watches nothing: `policies`, and `namespaces` with their labels. For the
    /// controller's tests, which script every request the API server sees.
    pub fn fixed(
        policies: Vec<InvitationPolicy>,
        namespaces: Vec<(String, BTreeMap<String, String>)>,
    ) -> Self {
        let (policy_store, mut policy_writer) = reflector::store();
        for p in policies {
            policy_writer.apply_watcher_event(&watcher::Event::Apply(p));
        }
        policy_writer.apply_watcher_event(&watcher::Event::InitDone);
        let (namespace_store, mut namespace_writer) = reflector::store();
        for (name, labels) in namespaces {
            let mut ns = PartialObjectMeta::<Namespace>::default();
            ns.metadata.name = Some(name);
            ns.metadata.labels = Some(labels);
            namespace_writer.apply_watcher_event(&watcher::Event::Apply(ns));
        }
        namespace_writer.apply_watcher_event(&watcher::Event::InitDone);
        Self {
            policies: Some(policy_store),
            namespaces: namespace_store,
            tasks: Vec::new(),
        }
    }

    /// Resolves once both watch caches are synced.
    pub async fn ready(&self) {
        if let Some(policies) = &self.policies {
            let _ = policies.wait_until_ready().await;
        }
        let _ = self.namespaces.wait_until_ready().await;
    }

    /// The policies that select `namespace`, by name. A namespace not (yet) in the cache has
    /// no labels: only the policies that select every namespace apply to it.
    pub fn applying(&self, namespace: &str) -> Vec<Arc<InvitationPolicy>> {
        let Some(policies) = &self.policies else {
            return Vec::new();
        };
        let labels = self.labels_of(namespace);
        let mut applying: Vec<_> = policies
            .state()
            .into_iter()
            .filter(|p| decide::selects(p, &labels).unwrap_or(false))
            .collect();
        applying.sort_by_key(|p| p.name_any());
        applying
    }

    fn labels_of(&self, namespace: &str) -> BTreeMap<String, String> {
        self.namespaces
            .get(&reflector::ObjectRef::new(namespace))
            .map(|ns| ns.labels().clone())
            .unwrap_or_default()
    }
}

impl Drop for Policies {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Whether the API server serves InvitationPolicies: a 404 on the list means the CRD is not
/// installed. Any other failure (RBAC, an outage) is no answer: the watch retries and the
/// view stays not ready, so nothing is reconciled without the policies.
async fn served(client: &kube::Client) -> bool {
    let api: Api<InvitationPolicy> = Api::all(client.clone());
    !matches!(
        api.list_metadata(&ListParams::default().limit(1)).await,
        Err(kube::Error::Api(s)) if s.code == 404
    )
}

type Events<K> = futures::stream::BoxStream<'static, Result<K, watcher::Error>>;

/// Follows both watches: after each change, the namespaces whose applying policies may differ
/// are sent on `changed`, and every policy's status is written where it differs.
async fn follow(
    client: kube::Client,
    policies: Store<InvitationPolicy>,
    namespaces: Store<PartialObjectMeta<Namespace>>,
    policy_events: Events<watcher::Event<InvitationPolicy>>,
    namespace_events: Events<PartialObjectMeta<Namespace>>,
    changed: mpsc::UnboundedSender<String>,
) {
    enum Seen {
        Policy(watcher::Event<InvitationPolicy>),
        Namespace(PartialObjectMeta<Namespace>),
    }
    let mut events = futures::stream::select(
        policy_events.map(|e| e.map(Seen::Policy)),
        namespace_events.map(|e| e.map(Seen::Namespace)),
    );
    // what each policy selected when last looked at, to tell whom a change concerns
    let mut selected: HashMap<String, BTreeSet<String>> = HashMap::new();
    while let Some(event) = events.next().await {
        let touched: BTreeSet<String> = match event {
            Ok(Seen::Namespace(ns)) => BTreeSet::from([ns.name_any()]),
            Ok(Seen::Policy(watcher::Event::Apply(p) | watcher::Event::Delete(p))) => {
                let mut touched = selected.remove(&p.name_any()).unwrap_or_default();
                touched.extend(selection(&p, &namespaces));
                touched
            }
            // a re-list: anything may have changed while the watch was down
            Ok(Seen::Policy(watcher::Event::InitDone)) => {
                selected.drain().flat_map(|(_, s)| s).collect()
            }
            Ok(Seen::Policy(_)) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "InvitationPolicy or Namespace watch failed; retrying");
                continue;
            }
        };
        for policy in policies.state() {
            let now = selection(&policy, &namespaces);
            let count = now.len();
            selected.insert(policy.name_any(), now.clone());
            write_status(&client, &policy, count).await;
        }
        for ns in touched {
            if changed.send(ns).is_err() {
                return;
            }
        }
    }
}

/// The namespaces `policy` selects now.
fn selection(
    policy: &InvitationPolicy,
    namespaces: &Store<PartialObjectMeta<Namespace>>,
) -> BTreeSet<String> {
    namespaces
        .state()
        .iter()
        .filter(|ns| decide::selects(policy, ns.labels()).unwrap_or(false))
        .map(|ns| ns.name_any())
        .collect()
}

/// Writes `policy`'s status (server-side apply of the status alone) where it differs.
async fn write_status(client: &kube::Client, policy: &InvitationPolicy, selected: usize) {
    let next = decide::status(policy, selected, jiff::Timestamp::now());
    if policy.status.as_ref() == Some(&next) {
        return;
    }
    let api: Api<InvitationPolicy> = Api::all(client.clone());
    let patch = serde_json::json!({
        "apiVersion": InvitationPolicy::api_version(&()),
        "kind": InvitationPolicy::kind(&()),
        "status": next,
    });
    if let Err(e) = api
        .patch_status(
            &policy.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
    {
        tracing::warn!(policy = %policy.name_any(), error = %e, "InvitationPolicy status not written; written at its next change");
    }
}
